//! Updating a stored response from a newer response, pure: which stored
//! response a 304 may update (RFC 9111 §4.3.4), whether a HEAD's 200 updates
//! the stored GET (§4.3.5), and the update itself (§3.2): "the cache MUST
//! add each header field in the provided response to the stored response,
//! replacing field values that are already present", except
//!
//! - fields never stored (§3.1): hop-by-hop ones (Connection and what it
//!   names, Keep-Alive, TE, Trailer, Upgrade, Proxy-Connection,
//!   Proxy-Authorization), Transfer-Encoding, Proxy-Authenticate and
//!   Proxy-Authentication-Info, and `Set-Cookie` (SPEC §4: a shared cache
//!   never stores one);
//! - "The Content-Length header field": the stored body keeps its length;
//! - "Header fields that the cache's stored response depends upon":
//!   Content-Encoding (the stored bytes are in that coding, and the key says
//!   which) and Vary (the key it is stored under);
//! - "fields ... automatically processed and removed", such as
//!   Content-Range, which the cache writes itself;
//! - `Age` (the stored head has none: every answer from the cache carries
//!   its own, §4; the newer response's Age counts in the object's age) and
//!   `Via` (the stored response's path, ringfront's own hop included);
//! - fields the behavior's header actions set or remove (the caller says
//!   which): the stored head holds the action's result.
//!
//! A newer response without `Date` gets the time it was received (RFC 9110
//! §6.6.1: "A recipient with a clock that receives a response message
//! without a Date header field MUST record the time it was received and
//! append a corresponding Date header field to the message's header section
//! if it is cached"): the stored Date would otherwise age the refreshed
//! response by the time since the first one.

use crate::http::date;
use crate::http::parse::{classify, HeaderClass, HeaderRef, Span, MAX_HEADERS};
use crate::http::response::{ResponseHead, MAX_RESPONSE_HEAD};
use std::time::SystemTime;

/// The validators a response carries, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Validators<'a> {
    pub etag: Option<&'a [u8]>,
    pub last_modified: Option<&'a [u8]>,
}

impl<'a> Validators<'a> {
    /// The ETag and Last-Modified of `head` over `buf`.
    pub fn of(buf: &'a [u8], head: &ResponseHead) -> Validators<'a> {
        Validators {
            etag: head.header(buf, b"etag"),
            last_modified: head.header(buf, b"last-modified"),
        }
    }

    fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// Whether a 304 carrying `new` validates the stored response carrying
/// `stored`, the one the conditional request was made from (RFC 9111
/// §4.3.4). The validators both carry decide, the entity tag first: "If the
/// new response contains one or more strong validators ... All the stored
/// responses in the initial set with one of those same strong validators
/// are identified for update. If none of the initial set contains at least
/// one of the same strong validators, then the cache MUST NOT use the new
/// response to update any stored responses"; a weak tag selects by weak
/// comparison ("those validators correspond"). A 304 with a validator the
/// stored response lacks names another representation.
///
/// A 304 without validators updates the response the request was made for.
/// §4.3.4 selects it only if it "also lacks a validator"; but that rule is
/// for a cache choosing among several stored responses, and ringfront's
/// conditional request named only this one (If-Modified-Since answers often
/// come without Last-Modified, which RFC 9110 §15.4.5 does not require).
///
/// `now` resolves the two-digit years of rfc850 dates ([`date::parse`]).
pub fn selects(stored: Validators<'_>, new: Validators<'_>, now: SystemTime) -> bool {
    if let (Some(s), Some(n)) = (stored.etag, new.etag) {
        let (s, n) = (s.trim_ascii(), n.trim_ascii());
        return match n.strip_prefix(b"W/") {
            Some(weak) => s.strip_prefix(b"W/").unwrap_or(s) == weak,
            None => s == n,
        };
    }
    if let (Some(s), Some(n)) = (stored.last_modified, new.last_modified) {
        return same_date(s, n, now);
    }
    new.is_empty()
}

/// Whether a HEAD's 200 (validators `new`, Content-Length `new_len`) may
/// update the stored GET response (validators `stored`, body of
/// `stored_len` bytes), RFC 9111 §4.3.5: "if the stored response and HEAD
/// response have matching values for any received validator fields (ETag
/// and Last-Modified) and, if the HEAD response has a Content-Length header
/// field, the value of Content-Length matches that of the stored response".
/// Otherwise "the cache SHOULD consider the stored response to be stale".
/// `now` as for [`selects`].
pub fn head_matches(
    stored: Validators<'_>,
    stored_len: usize,
    new: Validators<'_>,
    new_len: Option<u64>,
    now: SystemTime,
) -> bool {
    let same = |s: Option<&[u8]>, n: Option<&[u8]>, eq: &dyn Fn(&[u8], &[u8]) -> bool| match n {
        None => true,
        Some(n) => s.is_some_and(|s| eq(s, n)),
    };
    same(stored.etag, new.etag, &|s, n| s.trim_ascii() == n.trim_ascii())
        && same(stored.last_modified, new.last_modified, &|s, n| same_date(s, n, now))
        && new_len.is_none_or(|n| n == stored_len as u64)
}

/// Two HTTP-dates naming the same second (or the same bytes), read as
/// every date is ([`date::parse`]).
fn same_date(a: &[u8], b: &[u8], now: SystemTime) -> bool {
    let (a, b) = (a.trim_ascii(), b.trim_ascii());
    a == b || matches!((date::parse(a, now), date::parse(b, now)), (Some(x), Some(y)) if x == y)
}

/// Fields of a newer response that never update the stored response (the
/// module doc says why), besides those [`classify`] sets apart (framing,
/// hop-by-hop, Via).
const NOT_UPDATED: [&[u8]; 8] = [
    b"age",
    b"content-range",
    b"content-encoding",
    b"vary",
    b"set-cookie",
    b"set-cookie2",
    b"proxy-authenticate",
    b"proxy-authentication-info",
];

/// Whether header `h` of the newer response (`head` over `buf`) replaces
/// the stored fields of its name. `kept`: names the stored head keeps
/// whatever the newer response says (the behavior's header actions).
fn updates(buf: &[u8], head: &ResponseHead, h: &HeaderRef, kept: &impl Fn(&[u8]) -> bool) -> bool {
    let name = h.name.of(buf);
    h.class == HeaderClass::Plain
        && !head.named_by_connection(buf, h.name)
        && !NOT_UPDATED.iter().any(|n| name.eq_ignore_ascii_case(n))
        && !kept(name)
}

/// The lines of a stored head after its status line, each `(name, line)`
/// without the CRLF. The stored head is ringfront's own writing: one field
/// per line, `name: value`.
fn stored_lines(stored: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    stored
        .split(|&b| b == b'\n')
        .skip(1)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .map(|l| (l.split(|&b| b == b':').next().unwrap_or(l).trim_ascii(), l))
}

/// Writes to `out` the stored head `stored` (status line and field lines,
/// without the final CRLF, as [`Object::head`](super::store::Object::head))
/// updated by the newer response `new` over `buf` (RFC 9111 §3.2): each
/// stored field the newer response carries is replaced by its lines, the
/// others kept, in order; the newer lines follow. `kept`: names never
/// updated (the behavior's header actions). `received`: the HTTP-date the
/// newer response arrived, its `Date` when it has none.
pub fn merge(
    stored: &[u8],
    (buf, new): (&[u8], &ResponseHead),
    kept: impl Fn(&[u8]) -> bool,
    received: &[u8],
    out: &mut Vec<u8>,
) {
    let fresh: Vec<&HeaderRef> = new.headers.iter().filter(|h| updates(buf, new, h, &kept)).collect();
    let carries = |name: &[u8]| fresh.iter().any(|h| h.name.of(buf).eq_ignore_ascii_case(name));
    // The stored Date always goes (unless an action owns it): the newer
    // response's, or the time it arrived, follows.
    let dated = !kept(b"date");
    let replaced = |name: &[u8]| carries(name) || (dated && name.eq_ignore_ascii_case(b"date"));
    let status_end = stored.iter().position(|&b| b == b'\n').map_or(stored.len(), |i| i + 1);
    out.extend_from_slice(&stored[..status_end]);
    for (name, line) in stored_lines(stored) {
        if !replaced(name) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    for h in &fresh {
        out.extend_from_slice(&buf[h.name.start as usize..h.value.end as usize]);
        out.extend_from_slice(b"\r\n");
    }
    if dated && !carries(b"date") {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(received);
        out.extend_from_slice(b"\r\n");
    }
}

/// Whether a merged head (`fields` over `head`) may be stored: twice what
/// one origin head may hold, lines and bytes, leaves room for ringfront's
/// own lines and any honest update, while an origin adding new fields on
/// every 304 cannot grow the stored head without end.
pub fn bounded(head: &[u8], fields: &ResponseHead) -> bool {
    head.len() <= 2 * MAX_RESPONSE_HEAD && fields.headers.len() <= 2 * MAX_HEADERS
}

/// A stored head's fields as a [`ResponseHead`] over it (status `status`),
/// so the rules that read an origin's head read it too. No limit on the
/// number of lines: the head is ringfront's, already bounded.
pub fn index(stored: &[u8], status: u16) -> ResponseHead {
    let mut head = ResponseHead {
        status,
        head_len: stored.len(),
        ..ResponseHead::default()
    };
    for (name, line) in stored_lines(stored) {
        let value = line.get(name.len()..).unwrap_or_default();
        let value = value.strip_prefix(b":").unwrap_or(value).trim_ascii();
        head.headers.push(HeaderRef {
            name: Span::within(stored, name),
            value: Span::within(stored, value),
            class: classify(name),
        });
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::parse_response;

    fn parsed(raw: &[u8]) -> ResponseHead {
        let mut h = ResponseHead::default();
        assert!(matches!(parse_response(raw, false, &mut h), Ok(Some(_))));
        h
    }

    fn merged(stored: &str, new: &str, kept: &[&str]) -> String {
        let raw = format!("HTTP/1.1 304 Not Modified\r\n{new}\r\n");
        let h = parsed(raw.as_bytes());
        let mut out = Vec::new();
        let kept = |n: &[u8]| kept.iter().any(|k| n.eq_ignore_ascii_case(k.as_bytes()));
        merge(
            stored.as_bytes(),
            (raw.as_bytes(), &h),
            kept,
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    const STORED: &str = "HTTP/1.1 200 OK\r\nDate: Sat, 05 Nov 1994 08:00:00 GMT\r\nCache-Control: max-age=1\r\nX-A: 1\r\nX-A: 2\r\nETag: \"v1\"\r\nContent-Length: 2\r\nContent-Encoding: gzip\r\nVia: 1.1 rf\r\n";

    /// RFC 9111 §3.2: "replacing field values that are already present";
    /// every line of a replaced field goes, the others stay in order.
    #[test]
    fn the_newer_fields_replace_the_stored_ones_of_their_name() {
        let out = merged(
            STORED,
            "Date: Sun, 06 Nov 1994 09:00:00 GMT\r\ncache-control: max-age=3600\r\nX-A: 3\r\nX-New: n\r\n",
            &[],
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 2\r\nContent-Encoding: gzip\r\nVia: 1.1 rf\r\n\
             Date: Sun, 06 Nov 1994 09:00:00 GMT\r\ncache-control: max-age=3600\r\nX-A: 3\r\nX-New: n\r\n"
        );
    }

    /// §3.2: not "The Content-Length header field", nor fields excepted
    /// from storage (§3.1: Connection and what it names, hop-by-hop ones),
    /// nor those the stored response depends upon or the cache writes
    /// itself; Age and Via stay ringfront's.
    #[test]
    fn framing_hop_by_hop_and_cache_owned_fields_are_not_updated() {
        let new = "Content-Length: 999\r\nConnection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
                   Trailer: X\r\nUpgrade: h2c\r\nProxy-Connection: close\r\nAge: 50\r\nVia: 1.1 other\r\n\
                   Content-Encoding: br\r\nContent-Range: bytes 0-1/2\r\nVary: Origin\r\nSet-Cookie: a=b\r\nX-A: 9\r\n";
        let out = merged(STORED, new, &[]);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=1\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\
             Content-Encoding: gzip\r\nVia: 1.1 rf\r\nX-A: 9\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        );
    }

    /// Fields the behavior's header actions own keep their stored value;
    /// a newer response without Date is dated when it arrived.
    #[test]
    fn action_owned_fields_are_kept_and_a_missing_date_is_added() {
        let out = merged(STORED, "X-A: 9\r\nCache-Control: max-age=5\r\n", &["x-a"]);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-A: 2\r\nETag: \"v1\"\r\nContent-Length: 2\r\nContent-Encoding: gzip\r\n\
             Via: 1.1 rf\r\nCache-Control: max-age=5\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        );
    }

    #[test]
    fn the_index_reads_the_stored_fields() {
        let h = index(STORED.as_bytes(), 200);
        let b = STORED.as_bytes();
        assert_eq!(h.header(b, b"etag"), Some(&b"\"v1\""[..]));
        assert_eq!(h.header_list(b, b"x-a").as_deref(), Some(&b"1, 2"[..]));
        assert_eq!(h.header(b, b"cache-control"), Some(&b"max-age=1"[..]));
        assert_eq!(h.header(b, b"x-none"), None);
    }

    fn v<'a>(etag: Option<&'a str>, lm: Option<&'a str>) -> Validators<'a> {
        Validators {
            etag: etag.map(str::as_bytes),
            last_modified: lm.map(str::as_bytes),
        }
    }

    const LM: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

    /// The clock the comparisons run at (2026).
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_000_000)
    }

    fn sel(stored: Validators<'_>, new: Validators<'_>) -> bool {
        selects(stored, new, now())
    }

    fn head(stored: Validators<'_>, stored_len: usize, new: Validators<'_>, new_len: Option<u64>) -> bool {
        head_matches(stored, stored_len, new, new_len, now())
    }

    /// §4.3.4: a strong tag selects by strong comparison, a weak one by weak
    /// comparison; a tag or date the stored response lacks, or a different
    /// one, selects nothing; a 304 without validators updates the response
    /// it answered.
    #[test]
    fn which_304_updates_the_stored_response() {
        let stored = v(Some("\"a\""), Some(LM));
        assert!(sel(stored, v(Some("\"a\""), None)));
        assert!(!sel(stored, v(Some("\"b\""), Some(LM))), "the tag decides");
        assert!(sel(stored, v(Some("W/\"a\""), None)), "weak comparison");
        assert!(
            !sel(v(Some("W/\"a\""), None), v(Some("\"a\""), None)),
            "strong comparison"
        );
        assert!(sel(stored, v(None, Some("Sunday, 06-Nov-94 08:49:37 GMT"))));
        assert!(!sel(stored, v(None, Some("Sun, 06 Nov 1994 08:49:38 GMT"))));
        assert!(
            sel(v(None, Some(LM)), v(Some("\"new\""), Some(LM))),
            "the date they share"
        );
        assert!(!sel(v(None, Some(LM)), v(Some("\"new\""), None)));
        assert!(!sel(v(None, None), v(Some("\"a\""), None)));
        assert!(sel(stored, v(None, None)));
        assert!(sel(v(None, None), v(None, None)));
    }

    /// §4.3.5: every validator the HEAD response carries matches, and its
    /// Content-Length, if any, is the stored body's.
    #[test]
    fn which_head_response_updates_the_stored_get() {
        let stored = v(Some("\"a\""), Some(LM));
        assert!(head(stored, 2, v(None, None), None));
        assert!(head(stored, 2, v(Some("\"a\""), Some(LM)), Some(2)));
        assert!(!head(stored, 2, v(None, None), Some(5)));
        assert!(!head(stored, 2, v(Some("\"b\""), None), None));
        assert!(!head(stored, 2, v(None, Some("Mon, 07 Nov 1994 08:49:37 GMT")), None));
        assert!(!head(v(None, None), 2, v(Some("\"a\""), None), Some(2)));
    }
}
