//! Cache keys. A URL's key is `host NUL path[?query]`; a variant of a
//! response that varies (RFC 9111 §4.1) is keyed by its URL's key followed
//! by the names of the headers it varies on and the request's values of
//! them ([`vary::append_values`](super::vary::append_values)). Neither
//! host nor target holds a NUL (the parser refuses control bytes), so the
//! URL part of any key ends at its second NUL ([`url_len`]).
//!
//! The host is lowercased (host names are case-insensitive) and a default
//! port is kept as sent; the path is taken byte for byte (paths are
//! case-sensitive). Accept-Encoding is not part of a URL's key: a response
//! that does not vary is one object whatever the viewer accepts (SPEC §4).
//! It is normalised as CloudFront does, to the one coding the origin is
//! sent and a `Vary: Accept-Encoding` variant is keyed by: `br` if
//! accepted, else `gzip`, else `identity`, so `gzip, deflate, br` and
//! `br;q=1, gzip` are one request.

use super::vary::Vary;
use crate::http::parse::RequestHead;

/// What of the query string joins a URL's key (`cache_query_string`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum QueryKey {
    /// The whole query string, byte for byte.
    #[default]
    All,
    /// None of it.
    None,
    /// Only these parameters (names as written in the config, sorted and
    /// deduplicated), in name order, so `?b=2&a=1` and `?a=1&b=2` are one
    /// object and anything else (`utm_*`, `fbclid`) is dropped. A
    /// parameter is kept, as sent, when an origin would read it as a
    /// listed name: compared percent-decoded (`i%64` is `id`), legacy
    /// `;`-separated pieces included, case-sensitively (an ASP.NET
    /// origin's case-insensitive names are not covered:
    /// [`crate::http::query`]).
    Only(Vec<Box<[u8]>>),
}

impl QueryKey {
    /// An allow-list: the names sorted and deduplicated.
    pub fn only(names: impl IntoIterator<Item = Box<[u8]>>) -> QueryKey {
        let mut v: Vec<Box<[u8]>> = names.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        QueryKey::Only(v)
    }
}

/// A behavior's cache key policy (SPEC §2, CloudFront's cache policy):
/// what of a request, besides its host and path, makes it another object.
/// Whatever joins the key is also forwarded to the origin.
///
/// The query string is part of a URL's key ([`build`]); the key headers
/// and cookies are not (invalidation finds every object of a URL by its
/// URL's key whatever they are): they select a variant of the URL, as the
/// headers a response's Vary names do ([`vary`](super::vary)), under
/// [`KeyPolicy::names`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    /// `cache_query_string`.
    pub query: QueryKey,
    /// `cache_key_headers`: request header names, lowercased, sorted, each
    /// once.
    pub headers: Vec<Box<[u8]>>,
    /// `cache_key_cookies`: cookie names (case-sensitive, RFC 6265), sorted,
    /// each once.
    pub cookies: Vec<Box<[u8]>>,
    /// The names every response of the behavior is stored by, besides
    /// its own Vary's: `headers` and a pseudo-name per cookie
    /// ([`vary::cookie_name`](super::vary::cookie_name)), built once by
    /// [`KeyPolicy::new`] so a request builds none. Empty: the key is the
    /// URL's.
    pub names: Vary,
}

impl KeyPolicy {
    /// A policy keying on `query`, the request headers `headers` (any
    /// case) and the cookies `cookies`; `None` when those name more than
    /// [`MAX_NAMES`](super::vary::MAX_NAMES) together (nothing could be
    /// stored).
    pub fn new(query: QueryKey, headers: Vec<Box<[u8]>>, cookies: Vec<Box<[u8]>>) -> Option<KeyPolicy> {
        let mut headers: Vec<Box<[u8]>> = headers.into_iter().map(|h| h.to_ascii_lowercase().into()).collect();
        headers.sort_unstable();
        headers.dedup();
        let mut cookies = cookies;
        cookies.sort_unstable();
        cookies.dedup();
        let pseudo: Vec<Vec<u8>> = cookies.iter().map(|c| super::vary::cookie_name(c)).collect();
        let names = Vary::default().with(headers.iter().map(|h| &h[..]).chain(pseudo.iter().map(|c| &c[..])))?;
        Some(KeyPolicy {
            query,
            headers,
            cookies,
            names,
        })
    }

    /// True when a URL whose stored responses were selected by `vary`'s
    /// names was selected by every name of this policy too (both lists
    /// are sorted: one merge walk, no allocation). False for a record
    /// stored before a reload gave the behavior more key names: its
    /// variants were chosen without them, so none is this request's.
    pub fn selects_within(&self, vary: &Vary) -> bool {
        let mut have = vary.names();
        self.names.names().all(|want| have.any(|n| n == want))
    }

    /// The names a response whose own Vary names `own` is stored by:
    /// those and the policy's ([`Vary::with`]); `None` past
    /// [`MAX_NAMES`](super::vary::MAX_NAMES): it is not stored.
    pub fn stored_vary(&self, own: Vary) -> Option<Vary> {
        if self.names.is_empty() {
            return Some(own);
        }
        if own.is_empty() {
            return Some(self.names.clone());
        }
        own.with(self.names.names())
    }
}

/// Keying a request on key cookies reads each of its cookie pairs once
/// per key cookie, inside the cache shard's lock
/// ([`Store::lookup`](super::store::Store::lookup)), and on an allow-list
/// puts its kept parameters in order on the stack ([`append_kept`]): a
/// request with more query parameters than this (`&` and the legacy `;`
/// both separate them), or more cookie pairs (empty ones counted), when
/// its behavior keys on them, is not looked up at all but passed to the
/// origin as uncacheable ([`KeyPolicy::too_costly`]), so `?&&&…` or
/// `Cookie: ;;;…` cost a hit no more than a few hundred pieces do.
pub const MAX_KEYED_PIECES: usize = 256;
const _: () = assert!(MAX_KEYED_PIECES <= crate::http::query::KEPT_ON_STACK);

impl KeyPolicy {
    /// True when keying the request `head` (over `buf`) with target
    /// `target` would read more than [`MAX_KEYED_PIECES`] query
    /// parameters or cookie pairs. Counts separators with memchr, stopping
    /// at the bound; allocates nothing.
    pub fn too_costly(&self, target: &[u8], buf: &[u8], head: &RequestHead) -> bool {
        if let (QueryKey::Only(_), Some(q)) = (&self.query, memchr::memchr(b'?', target)) {
            // n separators make n + 1 parameters.
            if memchr::memchr2_iter(b'&', b';', &target[q + 1..])
                .nth(MAX_KEYED_PIECES - 1)
                .is_some()
            {
                return true;
            }
        }
        if self.cookies.is_empty() {
            return false;
        }
        let mut pairs = 0usize;
        for h in head
            .headers
            .iter()
            .filter(|h| h.name.of(buf).eq_ignore_ascii_case(b"cookie"))
        {
            // A line of n `;` holds n + 1 pairs, empty ones included.
            let left = MAX_KEYED_PIECES.saturating_sub(pairs);
            let seps = memchr::memchr_iter(b';', h.value.of(buf)).take(left).count();
            pairs = pairs.saturating_add(seps + 1);
            if pairs > MAX_KEYED_PIECES {
                return true;
            }
        }
        false
    }
}

/// Appends the key of a request's URL to `out`.
pub fn build(out: &mut Vec<u8>, host: &[u8], target: &[u8], query: &QueryKey) {
    out.extend(host.iter().map(u8::to_ascii_lowercase));
    out.push(0);
    let (path, q) = match memchr::memchr(b'?', target) {
        Some(i) => (&target[..i], Some(&target[i + 1..])),
        None => (target, None),
    };
    match (query, q) {
        (QueryKey::All, _) => out.extend_from_slice(target),
        (QueryKey::None, _) | (QueryKey::Only(_), None) => out.extend_from_slice(path),
        (QueryKey::Only(names), Some(q)) => {
            out.extend_from_slice(path);
            append_kept(out, q, names, b'?');
        }
    }
}

pub use crate::http::query::append_kept;

/// The length of the URL part of `key`: all of a URL's key, the part
/// before the request values in a variant's key.
pub fn url_len(key: &[u8]) -> usize {
    let Some(first) = memchr::memchr(0, key) else {
        return key.len();
    };
    memchr::memchr(0, &key[first + 1..]).map_or(key.len(), |i| first + 1 + i)
}

/// The target (path and query) of a key, URL or variant.
pub fn target(key: &[u8]) -> Option<&[u8]> {
    let start = memchr::memchr(0, key)? + 1;
    key.get(start..url_len(key))
}

/// `br`, `gzip` or `identity`: the best coding the viewer accepts, given
/// every line of its Accept-Encoding (none: `identity`).
pub fn normalize_accept_encoding<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> &'static [u8] {
    let mut br = false;
    let mut gzip = false;
    for part in lines.into_iter().flat_map(|v| v.split(|&b| b == b',')) {
        let mut it = part.split(|&b| b == b';');
        let coding = it.next().unwrap_or(&[]).trim_ascii();
        // "q=0" means not acceptable.
        let refused = it.any(|p| {
            let p = p.trim_ascii();
            p.len() >= 3 && p[..2].eq_ignore_ascii_case(b"q=") && p[2..].iter().all(|&c| c == b'0' || c == b'.')
        });
        if refused {
            continue;
        }
        if coding.eq_ignore_ascii_case(b"br") {
            br = true;
        } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            gzip = true;
        }
    }
    if br {
        b"br"
    } else if gzip {
        b"gzip"
    } else {
        b"identity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str, target: &str, q: bool) -> Vec<u8> {
        let mut k = Vec::new();
        let q = if q { QueryKey::All } else { QueryKey::None };
        build(&mut k, host.as_bytes(), target.as_bytes(), &q);
        k
    }

    fn only(target: &str, names: &[&str]) -> String {
        let mut k = Vec::new();
        let q = QueryKey::only(names.iter().map(|n| n.as_bytes().into()));
        build(&mut k, b"h", target.as_bytes(), &q);
        String::from_utf8(k[2..].to_vec()).unwrap()
    }

    #[test]
    fn an_allow_list_keeps_its_parameters_sorted_and_drops_the_rest() {
        assert_eq!(only("/p?b=2&a=1", &["a", "b"]), "/p?a=1&b=2");
        assert_eq!(only("/p?a=1&b=2", &["b", "a"]), "/p?a=1&b=2");
        assert_eq!(only("/p?utm_source=x&id=7&fbclid=y", &["id"]), "/p?id=7");
        assert_eq!(only("/p?utm_source=x", &["id"]), "/p");
        assert_eq!(only("/p", &["id"]), "/p");
        assert_eq!(only("/p?id=2&id=1&flag", &["id", "flag"]), "/p?flag&id=2&id=1");
        assert_eq!(only("/p?ida=1&i=2", &["id"]), "/p", "names match whole");
    }

    #[test]
    fn host_case_folded_path_not() {
        assert_eq!(key("Example.COM", "/A?b=1", true), key("example.com", "/A?b=1", true));
        assert_ne!(key("example.com", "/A", true), key("example.com", "/a", true));
        assert_ne!(key("a.example", "/x", true), key("b.example", "/x", true));
    }

    #[test]
    fn query_included_or_not() {
        assert_ne!(key("h", "/p?a=1", true), key("h", "/p?a=2", true));
        assert_eq!(key("h", "/p?a=1", false), key("h", "/p?a=2", false));
        assert_eq!(key("h", "/p?a=1", false), key("h", "/p", false));
    }

    #[test]
    fn no_ambiguity_between_host_and_path() {
        assert_ne!(key("ab", "/c", true), key("a", "b/c", true));
    }

    #[test]
    fn accept_encoding_normalised() {
        let n = |v: &str| normalize_accept_encoding(Some(v.as_bytes()));
        assert_eq!(n("gzip, deflate, br"), b"br");
        assert_eq!(n("br;q=1.0, gzip;q=0.8"), b"br");
        assert_eq!(n("gzip"), b"gzip");
        assert_eq!(n("GZIP, br;q=0"), b"gzip");
        assert_eq!(n("deflate"), b"identity");
        assert_eq!(n(""), b"identity");
        assert_eq!(normalize_accept_encoding(None::<&[u8]>), b"identity");
        assert_eq!(normalize_accept_encoding([&b"deflate"[..], b"br"]), b"br", "every line");
    }

    #[test]
    fn the_url_part_of_url_and_variant_keys() {
        let url = key("h", "/p?q=1", true);
        assert_eq!(url_len(&url), url.len());
        assert_eq!(target(&url), Some(&b"/p?q=1"[..]));
        let mut variant = url.clone();
        variant.extend_from_slice(b"\0=a\0-");
        assert_eq!(url_len(&variant), url.len());
        assert_eq!(target(&variant), Some(&b"/p?q=1"[..]));
        assert_eq!(url_len(b"no-nul"), 6);
        assert_eq!(target(b"no-nul"), None);
        assert_eq!(target(b"h\0"), Some(&b""[..]));
    }

    #[test]
    fn a_request_with_too_many_parameters_or_cookie_pairs_is_too_costly_to_key() {
        use crate::http::parse::parse_request;
        let costly = |p: &KeyPolicy, target: &str, lines: &str| {
            let raw = format!("GET {target} HTTP/1.1\r\nHost: h\r\n{lines}\r\n");
            let mut head = RequestHead::default();
            assert!(matches!(parse_request(raw.as_bytes(), 65536, &mut head), Ok(Some(_))));
            p.too_costly(head.path.of(raw.as_bytes()), raw.as_bytes(), &head)
        };
        let listed = KeyPolicy::new(QueryKey::only(bytes(&["id"])), vec![], bytes(&["s"])).unwrap();
        let amps = |n: usize| format!("/p?{}", "&".repeat(n));
        assert!(!costly(&listed, &amps(255), ""), "256 parameters");
        assert!(costly(&listed, &amps(256), ""), "257 parameters");
        assert!(costly(
            &listed,
            &format!("/p?{}", "a;".repeat(200) + &"&".repeat(100)),
            ""
        ));
        assert!(
            !costly(&KeyPolicy::default(), &amps(1000), ""),
            "the whole query: not counted"
        );
        let semis = |n: usize| format!("Cookie: {}\r\n", ";".repeat(n));
        assert!(!costly(&listed, "/p", &semis(255)));
        assert!(costly(&listed, "/p", &semis(256)));
        assert!(
            costly(&listed, "/p", &format!("{}{}", semis(200), semis(55))),
            "lines add up"
        );
        assert!(!costly(&listed, "/p", &format!("{}{}", semis(200), semis(54))));
        assert!(
            !costly(&KeyPolicy::default(), "/p", &semis(1000)),
            "no key cookies: not counted"
        );
    }

    fn bytes(list: &[&str]) -> Vec<Box<[u8]>> {
        list.iter().map(|s| s.as_bytes().into()).collect()
    }

    #[test]
    fn a_policy_names_its_headers_and_its_cookies_apart() {
        let p = KeyPolicy::new(
            QueryKey::All,
            bytes(&["X-Device", "origin", "x-device"]),
            bytes(&["sid", "Sid"]),
        )
        .unwrap();
        assert_eq!(p.headers, bytes(&["origin", "x-device"]));
        assert_eq!(p.cookies, bytes(&["Sid", "sid"]));
        assert_eq!(p.names.as_bytes(), b"cookie;Sid,cookie;sid,origin,x-device");
        assert!(KeyPolicy::default().names.is_empty());
        assert!(KeyPolicy::new(QueryKey::None, vec![], vec![]).unwrap().names.is_empty());
        let many: Vec<String> = (0..=super::super::vary::MAX_NAMES).map(|i| format!("h{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(KeyPolicy::new(QueryKey::All, bytes(&many), vec![]).is_none());
    }

    #[test]
    fn a_record_is_selected_by_the_policy_when_it_holds_every_key_name() {
        let own = |v: &str| Vary::parse(Some(v.as_bytes())).unwrap();
        let p = KeyPolicy::new(QueryKey::All, bytes(&["x-device"]), bytes(&["sid"])).unwrap();
        assert!(p.selects_within(&p.names));
        assert!(p.selects_within(&p.stored_vary(own("origin, accept, zz")).unwrap()));
        assert!(!p.selects_within(&own("origin")));
        assert!(!p.selects_within(&own("x-device")));
        assert!(!p.selects_within(&Vary::default()));
        let cookie_only = KeyPolicy::new(QueryKey::All, vec![], bytes(&["sid"])).unwrap();
        assert!(!cookie_only.selects_within(&own("x-device")));
        assert!(KeyPolicy::default().selects_within(&own("origin")));
        assert!(KeyPolicy::default().selects_within(&Vary::default()));
    }

    #[test]
    fn a_response_is_stored_by_its_own_names_and_the_policy_s() {
        let own = |v: &str| Vary::parse(Some(v.as_bytes())).unwrap();
        let p = KeyPolicy::new(QueryKey::All, bytes(&["x-device"]), bytes(&["sid"])).unwrap();
        assert_eq!(p.stored_vary(Vary::default()).unwrap(), p.names);
        assert_eq!(
            p.stored_vary(own("Origin, X-Device")).unwrap().as_bytes(),
            b"cookie;sid,origin,x-device"
        );
        assert_eq!(KeyPolicy::default().stored_vary(own("Origin")).unwrap(), own("origin"));
        let sixteen: Vec<String> = (0..super::super::vary::MAX_NAMES).map(|i| format!("h{i}")).collect();
        assert!(
            p.stored_vary(own(&sixteen.join(","))).is_none(),
            "past the limit: not stored"
        );
    }
}
