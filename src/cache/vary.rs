//! Vary (RFC 9111 §4.1), pure: which request headers a stored response
//! varies on, and the part of a variant's key made of a request's values
//! of those headers (SPEC §4).
//!
//! A response with `Vary` is stored as one variant per set of request
//! values: its key is the URL's key ([`key::build`](super::key::build)),
//! `NUL` and the names (so a key says which headers it was made from, and
//! keys made from other names never meet), then for each name in order
//! `NUL` and either `-` (the request has no such header) or `=` and the
//! normalised value. Names are tokens and request values never hold a NUL
//! (the parser refuses control bytes), so the URL part of any key ends at
//! its second NUL ([`key::url_len`](super::key::url_len)) and the names at
//! its third ([`key_names`]).
//!
//! Values match when §4.1 lets them ("after any normalization that might
//! take place") and the origin could not have told them apart: it is sent
//! the values as the viewer wrote them, so a normalisation it does not
//! share stores one request's answer for another (an origin echoing
//! `Origin: https://a.example,` with its comma, stored for
//! `https://a.example`; one reading the first of `X-Device:` and
//! `X-Device: mobile`, stored for `mobile`). Hence:
//!
//! - `Accept`, `Accept-Charset` and `Accept-Language` (RFC 9110 §12.5):
//!   lists of case-insensitive members, ringfront's one normalisation of
//!   them: every line as one list ("combining multiple header field
//!   lines with the same field name"), members split at commas outside
//!   quoted strings and trimmed of whitespace, empty members dropped
//!   ("adding or removing whitespace, where allowed"), lowercased
//!   ("case-normalization, where values are defined to be
//!   case-insensitive").
//! - `Accept-Encoding`: reduced to the one coding the origin is sent,
//!   `br`, `gzip` or `identity`
//!   ([`normalize_accept_encoding`](super::key::normalize_accept_encoding)),
//!   which is what the origin gets in its place.
//! - Every other header, `Origin` and `Cookie` included: as sent, each
//!   line's value trimmed of leading and trailing whitespace (no part of
//!   a field value, RFC 9110 §5.5), the lines in order joined by a
//!   `0x01` byte, which no value holds (the parser refuses control
//!   bytes), an empty line kept. Case is kept too, `Origin`'s included:
//!   RFC 6454 §4 lowercases an origin's scheme and host (they are
//!   case-insensitive) and a browser sends that lowercase ASCII
//!   serialisation (§6.2), but it checks the
//!   `Access-Control-Allow-Origin` echoed back byte for byte (Fetch,
//!   "CORS check"), so folding `HTTPS://A.example` into
//!   `https://a.example` could hand one client the other's echo; kept
//!   apart, the worst is one more variant.
//!
//! Only the lines an origin is sent count ([`request_lines`]): a header
//! the request's `Connection` names is hop-by-hop (RFC 9110 §7.6.1),
//! never forwarded, and keyed as absent.
//!
//! A behavior's key policy (SPEC §2 `cache_key_headers`,
//! `cache_key_cookies`) joins the key through the same names: every
//! response of such a behavior is stored as if it varied on its own Vary
//! names, the key headers and one pseudo-name per key cookie,
//! `cookie;NAME` ([`cookie_name`]). A `;` is no token character (RFC 9110
//! §5.6.2), so a pseudo-name never equals a header name (the `Cookie`
//! header itself, from an origin's `Vary: Cookie`, included), and cookie
//! names are tokens (RFC 6265 §4.1.1), so it holds no comma either. Its
//! value is `-` when the request has no such cookie, else `=` and the
//! cookie's values in the order sent, joined by `;` (which no cookie value
//! holds), read from every Cookie line by the parser the origin request
//! is written with ([`crate::http::cookie::values`]: pairs that are not
//! RFC 6265 cookie-octets count for neither): the request's other
//! cookies, and the order of its cookies, make no other variant.

use super::key::normalize_accept_encoding;
use crate::http::parse::{HeaderClass, HeaderRef, RequestHead};
use crate::http::token::{list_members, trim_ows};

/// What a key cookie's pseudo-name starts with, its name following.
pub const COOKIE: &[u8] = b"cookie;";

/// The pseudo-name key cookie `name` (case kept) is stored by.
pub fn cookie_name(name: &[u8]) -> Vec<u8> {
    [COOKIE, name].concat()
}

/// At most this many variants of one URL are stored (SPEC §4); the 17th
/// replaces the oldest.
pub const MAX_VARIANTS: usize = 16;

/// A response that varies on more request headers than this is not
/// stored: every lookup of its URL would read them all.
pub const MAX_NAMES: usize = 16;

/// The request header names a stored response varies on: lowercased,
/// sorted, each once, joined by commas. Empty: it does not vary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vary {
    names: Box<[u8]>,
}

impl Vary {
    /// The names a response's `Vary` (every line as one list) selects on.
    /// `None` when the response may not be stored: a member `*` (§4.1: it
    /// "always fails to match"), one that is not a field name (RFC 9110
    /// §5.1: a token), or more than [`MAX_NAMES`] names.
    pub fn parse(list: Option<&[u8]>) -> Option<Vary> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        for member in list.unwrap_or_default().split(|&b| b == b',') {
            let name = member.trim_ascii();
            if name == b"*" || (!name.is_empty() && !crate::http::token::is_token(name)) {
                return None;
            }
            if !name.is_empty() {
                names.push(name.to_ascii_lowercase());
            }
        }
        Vary::from_names(names)
    }

    /// `names` sorted, each once, as a `Vary`; `None` past [`MAX_NAMES`].
    fn from_names<N: std::borrow::Borrow<[u8]> + Ord>(mut names: Vec<N>) -> Option<Vary> {
        names.sort_unstable();
        names.dedup();
        if names.len() > MAX_NAMES {
            return None;
        }
        Some(Vary {
            names: names.join(&b","[..]).into_boxed_slice(),
        })
    }

    /// These names and `extra` (lowercase names, or the pseudo-names a
    /// behavior's key policy selects on), sorted, each once; `None` past
    /// [`MAX_NAMES`]. What a response is stored by when its behavior keys
    /// on more than its Vary names, or it is compressed (Accept-Encoding).
    pub fn with<'a>(&'a self, extra: impl IntoIterator<Item = &'a [u8]>) -> Option<Vary> {
        Vary::from_names(self.names().chain(extra).filter(|n| !n.is_empty()).collect())
    }

    /// The response does not vary.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.names.split(|&b| b == b',').filter(|n| !n.is_empty())
    }

    /// Bytes held, for the cache's accounting.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The names as a variant's key holds them ([`key_names`]).
    pub fn as_bytes(&self) -> &[u8] {
        &self.names
    }
}

/// The names part of a variant's key (what [`append_values`] wrote after
/// the URL); `None` for a URL's key.
pub fn key_names(key: &[u8]) -> Option<&[u8]> {
    let rest = key.get(super::key::url_len(key) + 1..)?;
    Some(&rest[..memchr::memchr(0, rest).unwrap_or(rest.len())])
}

/// Whether a response's `Vary` list allows storing it ([`Vary::parse`]
/// gives `Some`).
pub fn storable(list: &[u8]) -> bool {
    Vary::parse(Some(list)).is_some()
}

/// Every line of request header `name` (any case) in `head` over `buf`
/// that an origin is sent: not a hop-by-hop header, nor one the request's
/// Connection names (RFC 9110 §7.6.1: "connection options", which a proxy
/// removes before forwarding, as `http::write` does). A variant is keyed
/// on what the origin answered, so a header the origin never saw is
/// absent: keyed as sent, `X-Device: mobile` with `Connection: X-Device`
/// would store the answer for no X-Device under `mobile`.
pub fn request_lines<'a>(buf: &'a [u8], head: &'a RequestHead, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    head.headers
        .iter()
        .filter(move |h| h.name.of(buf).eq_ignore_ascii_case(name) && forwarded(buf, head, h))
        .map(move |h| h.value.of(buf))
}

/// True when header line `h` of `head` may reach an origin
/// ([`request_lines`]).
fn forwarded(buf: &[u8], head: &RequestHead, h: &HeaderRef) -> bool {
    h.class != HeaderClass::HopByHop && (head.connection_tokens.is_empty() || !head.named_by_connection(buf, h.name))
}

/// Appends to `out` (a URL's key) the names `vary` holds and the request's
/// values of those headers, making the key of the variant the request
/// selects; nothing when `vary` is empty. Allocates nothing beyond `out`'s
/// growth.
pub fn append_values(out: &mut Vec<u8>, vary: &Vary, buf: &[u8], head: &RequestHead) {
    if vary.is_empty() {
        return;
    }
    out.push(0);
    out.extend_from_slice(&vary.names);
    for name in vary.names() {
        out.push(0);
        if let Some(cookie) = name.strip_prefix(COOKIE) {
            append_cookie(out, cookie, buf, head);
            continue;
        }
        if name == b"accept-encoding" {
            // No header means identity (SPEC §4): absent and `identity`
            // are one variant, as they are one request to the origin.
            out.push(b'=');
            out.extend_from_slice(normalize_accept_encoding(request_lines(buf, head, name)));
            continue;
        }
        let mut lines = request_lines(buf, head, name).peekable();
        if lines.peek().is_none() {
            // §4.1: "If ... a header field is absent from a request, it can
            // only match another request if it is also absent there."
            out.push(b'-');
            continue;
        }
        out.push(b'=');
        if is_negotiation_list(name) {
            append_list(out, lines);
        } else {
            append_as_sent(out, lines);
        }
    }
}

/// The headers keyed as lists ([module doc](self)): `Accept`,
/// `Accept-Charset` and `Accept-Language` (RFC 9110 §12.5), lists whose
/// members are case-insensitive and whose whitespace and empty members
/// carry nothing (§5.6.1). `name` is lowercase.
fn is_negotiation_list(name: &[u8]) -> bool {
    matches!(name, b"accept" | b"accept-charset" | b"accept-language")
}

/// Appends every line as one list: members trimmed, empty ones dropped,
/// lowercased, joined by commas.
fn append_list<'a>(out: &mut Vec<u8>, lines: impl Iterator<Item = &'a [u8]>) {
    let mut first = true;
    for m in lines.flat_map(list_members) {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend(m.iter().map(u8::to_ascii_lowercase));
    }
}

/// Separates the lines of a header keyed as sent: a control byte, which
/// the parser refuses in a value (RFC 9110 §5.5), so no value holds it;
/// not NUL, which separates a key's parts.
const LINE_SEP: u8 = 0x01;

/// Appends the lines as sent: each trimmed of whitespace, which is no part
/// of a field value (RFC 9110 §5.5), in order, joined by [`LINE_SEP`],
/// empty ones kept.
fn append_as_sent<'a>(out: &mut Vec<u8>, lines: impl Iterator<Item = &'a [u8]>) {
    for (i, line) in lines.enumerate() {
        if i > 0 {
            out.push(LINE_SEP);
        }
        out.extend_from_slice(trim_ows(line));
    }
}

/// Appends a key cookie's part of a variant key: `-` when the request has
/// no cookie `name`, else `=` and its values joined by `;`.
fn append_cookie(out: &mut Vec<u8>, name: &[u8], buf: &[u8], head: &RequestHead) {
    let mut sep = b'=';
    for v in crate::http::cookie::values(request_lines(buf, head, b"cookie"), name) {
        out.push(sep);
        out.extend_from_slice(v);
        sep = b';';
    }
    if sep == b'=' {
        out.push(b'-');
    }
}

/// The key of the variant whose value of header `name` (lowercase) is
/// `=value`, the others those of `key`: `key` is a URL's key or a
/// variant's that [`append_values`] made from `vary`'s names, and the
/// result's names are `vary`'s and `name` ([`Vary::with`]). How one
/// response is stored under several values of a header the request had
/// one value of (its compressed variants, one per Accept-Encoding); the
/// request's own values are written by [`append_values`] alone. `None`
/// past [`MAX_NAMES`], or when `key` was not made from `vary`.
pub fn with_value(key: &[u8], vary: &Vary, name: &[u8], value: &[u8]) -> Option<(Vary, Vec<u8>)> {
    let url = &key[..super::key::url_len(key)];
    let mut old = key.get(url.len() + 1..).unwrap_or_default().split(|&b| b == 0);
    let values: Vec<&[u8]> = match vary.is_empty() {
        true if url.len() == key.len() => Vec::new(),
        false if old.next() == Some(vary.as_bytes()) => old.collect(),
        _ => return None,
    };
    if values.len() != vary.names().count() {
        return None;
    }
    let names = vary.with([name])?;
    let mut out = Vec::with_capacity(key.len() + name.len() + value.len() + 3);
    out.extend_from_slice(url);
    out.push(0);
    out.extend_from_slice(names.as_bytes());
    for n in names.names() {
        out.push(0);
        match vary.names().position(|o| o == n) {
            Some(i) if n != name => out.extend_from_slice(values[i]),
            _ => {
                out.push(b'=');
                out.extend_from_slice(value);
            }
        }
    }
    Some((names, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::parse_request;

    fn vary(v: &str) -> Option<Vary> {
        Vary::parse(Some(v.as_bytes()))
    }

    fn names(v: &Vary) -> Vec<String> {
        v.names().map(|n| String::from_utf8_lossy(n).into_owned()).collect()
    }

    /// The key part `vary` makes of a request with header lines `lines`.
    fn values(vary: &Vary, lines: &str) -> Vec<u8> {
        let raw = format!("GET / HTTP/1.1\r\nHost: h\r\n{lines}\r\n");
        let mut head = RequestHead::default();
        assert!(matches!(parse_request(raw.as_bytes(), 8192, &mut head), Ok(Some(_))));
        let mut out = Vec::new();
        append_values(&mut out, vary, raw.as_bytes(), &head);
        let names = [&[0][..], vary.as_bytes()].concat();
        out.strip_prefix(&names[..]).expect("the names first").to_vec()
    }

    #[test]
    fn names_are_lowercased_sorted_and_deduplicated() {
        let v = vary(" Origin,accept-language , ORIGIN,,X-Tenant").unwrap();
        assert_eq!(names(&v), ["accept-language", "origin", "x-tenant"]);
        assert_eq!(v, vary("x-tenant, Accept-Language, origin").unwrap());
        assert!(Vary::parse(None).unwrap().is_empty());
        assert!(vary(" , ").unwrap().is_empty());
        assert!(vary("Origin, X Tenant").is_none(), "not a token");
        assert!(vary("Origin, \"x\"").is_none(), "not a token");
        assert_eq!(Vary::parse(None).unwrap().names().count(), 0);
    }

    #[test]
    fn star_and_too_many_names_are_not_stored() {
        assert!(vary("Origin, *").is_none());
        assert!(!storable(b"Origin, *"));
        let many: Vec<String> = (0..=MAX_NAMES).map(|i| format!("h{i}")).collect();
        assert!(vary(&many.join(",")).is_none());
        assert!(!storable(many.join(",").as_bytes()));
        assert!(vary(&many[..MAX_NAMES].join(",")).is_some());
        assert!(storable(many[..MAX_NAMES].join(",").as_bytes()));
        // Duplicates count once.
        let dup = format!("{}, h0", many[..MAX_NAMES].join(","));
        assert!(storable(dup.as_bytes()) && vary(&dup).is_some());
    }

    #[test]
    fn a_variant_key_holds_the_url_the_names_and_the_values() {
        let raw = "GET / HTTP/1.1\r\nHost: h\r\nOrigin: o\r\n\r\n";
        let mut head = RequestHead::default();
        assert!(matches!(parse_request(raw.as_bytes(), 8192, &mut head), Ok(Some(_))));
        let mut key = b"h\0/p".to_vec();
        append_values(&mut key, &vary("Origin, X-Tenant").unwrap(), raw.as_bytes(), &head);
        assert_eq!(key, b"h\0/p\0origin,x-tenant\0=o\0-");
        assert_eq!(key_names(&key), Some(&b"origin,x-tenant"[..]));
        assert_eq!(super::super::key::url_len(&key), 4);
        assert_eq!(key_names(b"h\0/p"), None);
        let mut url = b"h\0/p".to_vec();
        append_values(&mut url, &Vary::default(), raw.as_bytes(), &head);
        assert_eq!(url, b"h\0/p", "no Vary: the URL's key");
    }

    /// A header other than the Accept lists is keyed as sent: each line
    /// trimmed of whitespace, lines joined by 0x01, empty ones kept.
    #[test]
    fn values_are_keyed_as_sent_and_absent_told_from_empty() {
        let v = vary("X-Tenant, Origin").unwrap();
        assert_eq!(values(&v, "Origin: a\r\nX-Tenant: b\r\n"), b"\0=a\0=b");
        assert_eq!(values(&v, "x-tenant: \t b , c \t\r\n"), b"\0-\0=b , c");
        assert_eq!(values(&v, "X-Tenant: b\r\nX-Tenant: ,c\r\n"), b"\0-\0=b\x01,c");
        assert_eq!(values(&v, "X-Tenant:\r\nX-Tenant: c\r\n"), b"\0-\0=\x01c");
        assert_eq!(values(&v, "X-Tenant: c\r\nX-Tenant:\r\n"), b"\0-\0=c\x01");
        assert_eq!(values(&v, "X-Tenant:\r\n"), b"\0-\0=");
        assert_eq!(values(&v, "X-Tenant: B\r\n"), b"\0-\0=B", "case kept");
        assert_eq!(
            values(&v, "Origin: https://a.example,\r\n"),
            b"\0=https://a.example,\0-"
        );
        assert_eq!(values(&v, "X-Tenant: \"a, \\\"b\" ,c\r\n"), b"\0-\0=\"a, \\\"b\" ,c");
        // The separator is a byte no request value holds.
        let mut head = RequestHead::default();
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nX-Tenant: b\x01c\r\n\r\n";
        assert!(parse_request(raw, 8192, &mut head).is_err());
    }

    /// RFC 9110 §7.6.1: what Connection names, and hop-by-hop headers,
    /// never reach the origin, so they key as absent.
    #[test]
    fn a_header_the_origin_is_not_sent_is_absent() {
        let v = vary("X-Tenant, Origin").unwrap();
        assert_eq!(values(&v, "X-Tenant: b\r\nConnection: x-tenant\r\n"), b"\0-\0-");
        let lines = "Connection: close, X-TENANT\r\nX-Tenant: b\r\nOrigin: o\r\n";
        assert_eq!(values(&v, lines), b"\0=o\0-");
        assert_eq!(values(&v, "Connection: origin\r\nX-Tenant: b\r\n"), b"\0-\0=b");
        let c = Vary::default().with([&cookie_name(b"s")[..]]).unwrap();
        assert_eq!(values(&c, "Cookie: s=1\r\nConnection: cookie\r\n"), b"\0-");
        assert_eq!(values(&vary("TE").unwrap(), "TE: trailers\r\n"), b"\0-");
        let ae = vary("Accept-Encoding").unwrap();
        assert_eq!(
            values(&ae, "Accept-Encoding: br\r\nConnection: accept-encoding\r\n"),
            b"\0=identity"
        );
    }

    /// The key `with_value` makes is the key `append_values` makes for a
    /// request with that value: whatever the request's own.
    #[test]
    fn a_value_set_for_one_name_keys_as_a_request_with_that_value() {
        let request = |lines: &str| {
            let raw = format!("GET / HTTP/1.1\r\nHost: h\r\n{lines}\r\n");
            let mut head = RequestHead::default();
            assert!(matches!(parse_request(raw.as_bytes(), 8192, &mut head), Ok(Some(_))));
            (raw, head)
        };
        let key_for = |v: &Vary, lines: &str| {
            let (raw, head) = request(lines);
            let mut k = b"h\0/p".to_vec();
            append_values(&mut k, v, raw.as_bytes(), &head);
            k
        };
        let ae = Vary::parse(Some(b"accept-encoding")).unwrap();
        // A response that did not vary: its URL key gains the name.
        let (names, k) = with_value(b"h\0/p", &Vary::default(), b"accept-encoding", b"br").unwrap();
        assert_eq!(names, ae);
        assert_eq!(k, key_for(&ae, "Accept-Encoding: gzip, br\r\n"));
        // One that varied on other names keeps their values.
        let origin = vary("Origin, X-Tenant").unwrap();
        let lines = "Origin: o\r\nAccept-Encoding: gzip\r\n";
        let (names, k) = with_value(&key_for(&origin, lines), &origin, b"accept-encoding", b"identity").unwrap();
        assert_eq!(names, vary("Origin, X-Tenant, Accept-Encoding").unwrap());
        assert_eq!(k, key_for(&names, "Origin: o\r\n"));
        // One that varied on Accept-Encoding already: the value replaced.
        let both = vary("Accept-Encoding, Origin").unwrap();
        let (names, k) = with_value(&key_for(&both, lines), &both, b"accept-encoding", b"br").unwrap();
        assert_eq!(names, both);
        assert_eq!(k, key_for(&both, "Origin: o\r\nAccept-Encoding: br\r\n"));
        // A key not made from those names.
        assert!(with_value(b"h\0/p", &origin, b"accept-encoding", b"br").is_none());
        assert!(with_value(&key_for(&both, lines), &origin, b"accept-encoding", b"br").is_none());
        let full: Vec<String> = (0..MAX_NAMES).map(|i| format!("h{i}")).collect();
        let full = vary(&full.join(",")).unwrap();
        assert!(with_value(&key_for(&full, ""), &full, b"accept-encoding", b"br").is_none());
    }

    #[test]
    fn accept_values_lowercased_and_encoding_normalised() {
        let v = vary("Accept-Language, Accept, Accept-Encoding").unwrap();
        assert_eq!(
            values(
                &v,
                "Accept: Text/HTML\r\nAccept-Language: EN-us, Fr\r\nAccept-Encoding: GZIP, br\r\n"
            ),
            b"\0=text/html\0=br\0=en-us,fr"
        );
        assert_eq!(values(&v, ""), b"\0-\0=identity\0-");
        let lines = "Accept: a/b,,\r\nAccept: ,C/D\r\nAccept-Language: , fr\r\n";
        assert_eq!(values(&v, lines), b"\0=a/b,c/d\0=identity\0=fr");
        let c = vary("Accept-Charset, Accept-Datetime").unwrap();
        let lines = "Accept-Charset: UTF-8 ,\r\nAccept-Datetime: Thu, 31 May 2007 20:35:00 GMT\r\n";
        assert_eq!(
            values(&c, lines),
            b"\0=utf-8\0=Thu, 31 May 2007 20:35:00 GMT",
            "the three lists only"
        );
        assert_eq!(
            values(&v, "Accept-Encoding: identity\r\n"),
            values(&v, ""),
            "no Accept-Encoding means identity"
        );
    }

    /// A key cookie's pseudo-name is keyed by that cookie's value alone:
    /// absent, present, other cookies and their order.
    #[test]
    fn a_key_cookie_is_keyed_by_its_value_alone() {
        let name = cookie_name(b"session");
        let v = Vary::default().with([&name[..], b"x-device"]).unwrap();
        assert_eq!(v.as_bytes(), b"cookie;session,x-device");
        assert_eq!(values(&v, ""), b"\0-\0-");
        assert_eq!(values(&v, "Cookie: a=1\r\n"), b"\0-\0-");
        assert_eq!(values(&v, "Cookie: a=1; session=s1\r\n"), b"\0=s1\0-");
        assert_eq!(values(&v, "Cookie: session=s1;a=2\r\n"), b"\0=s1\0-");
        assert_eq!(values(&v, "Cookie: a=2\r\nCookie: session=s1\r\n"), b"\0=s1\0-");
        assert_eq!(values(&v, "Cookie: session=\r\n"), b"\0=\0-", "empty is not absent");
        assert_eq!(values(&v, "Cookie: session=a; session=b\r\n"), b"\0=a;b\0-");
        assert_eq!(values(&v, "Cookie: Session=S\r\nX-Device: tv\r\n"), b"\0-\0=tv");
        // The Cookie header's own name, from an origin's Vary, is another.
        let both = v.with([&b"cookie"[..]]).unwrap();
        assert_eq!(values(&both, "Cookie: session=s; a=1\r\n"), b"\0=session=s; a=1\0=s\0-");
    }
}
