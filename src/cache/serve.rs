//! Answering from a stored object: full, 304 for a matching conditional
//! request, 206 for a single satisfiable Range, 416 for an unsatisfiable one.
//!
//! Sans-io: `plan` reads the request's conditional and Range headers against
//! the object; `write_head` writes the head for that plan (the caller adds
//! Age, X-Cache, Cache-Status and Connection, then the body slice).
//!
//! Rules: RFC 9110 §13.1.2 (If-None-Match, weak comparison, `*`), §13.1.3
//! (If-Modified-Since, only without If-None-Match), §14.2 (a single byte
//! range; several ranges get the whole representation, which the RFC allows);
//! ranges only on 200 responses.

use super::store::Object;
use std::ops::Range;

/// How a hit is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HitKind {
    Full,
    NotModified,
    Partial(Range<usize>),
    Unsatisfiable,
}

fn strip_weak(t: &[u8]) -> &[u8] {
    let t = t.trim_ascii();
    t.strip_prefix(b"W/").unwrap_or(t)
}

/// Weak comparison of an If-None-Match list against the object's ETag.
fn none_match(list: &[u8], etag: Option<&[u8]>) -> bool {
    let list = list.trim_ascii();
    if list == b"*" {
        return true;
    }
    let Some(etag) = etag else { return false };
    let etag = strip_weak(etag);
    list.split(|&b| b == b',').any(|t| strip_weak(t) == etag)
}

fn not_modified_since(ims: &[u8], last_modified: Option<&[u8]>) -> bool {
    let parse = |v: &[u8]| crate::http::date::parse(v, std::time::SystemTime::now());
    match (parse(ims), last_modified.and_then(parse)) {
        (Some(since), Some(lm)) => lm <= since,
        _ => false,
    }
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` against a body of `len`.
/// `None`: not a single byte range (ignored: the whole body is sent).
/// Positions too large for a u64 count as u64::MAX: beyond any body.
fn single_range(v: &[u8], len: usize) -> Option<Result<Range<usize>, ()>> {
    let spec = v.trim_ascii().strip_prefix(b"bytes=")?;
    if spec.contains(&b',') {
        return None;
    }
    let dash = spec.iter().position(|&b| b == b'-')?;
    let num = |s: &[u8]| -> Option<Option<u64>> {
        let s = s.trim_ascii();
        if s.is_empty() {
            return Some(None);
        }
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let digit = |d: u8| u64::from(d - b'0');
        Some(Some(
            s.iter()
                .fold(0, |n: u64, &d| n.saturating_mul(10).saturating_add(digit(d))),
        ))
    };
    let (first, last) = (num(&spec[..dash])?, num(&spec[dash + 1..])?);
    let len64 = len as u64;
    let r = match (first, last) {
        (Some(a), Some(b)) if a <= b => {
            if a >= len64 {
                return Some(Err(()));
            }
            a..b.min(len64 - 1) + 1
        }
        (Some(_), Some(_)) => return None, // a > b: invalid, ignore
        (Some(a), None) => {
            if a >= len64 {
                return Some(Err(()));
            }
            a..len64
        }
        (None, Some(n)) => {
            if n == 0 || len == 0 {
                return Some(Err(()));
            }
            len64.saturating_sub(n)..len64
        }
        (None, None) => return None,
    };
    Some(Ok(r.start as usize..r.end as usize))
}

/// RFC 9110 §13.1.5 If-Range: the Range applies only if the validator
/// names the stored representation: an entity-tag by strong comparison
/// with the ETag the stored head shows (a compressed variant's is weak, so
/// a range of its coded bytes is never spliced onto another
/// representation's), a date by exact match with its Last-Modified.
/// Otherwise the whole representation is sent.
fn range_still_applies(obj: &Object, if_range: &[u8]) -> bool {
    let v = if_range.trim_ascii();
    if v.starts_with(b"\"") || v.starts_with(b"W/") {
        let shown = stored_field(&obj.head, b"etag").map(<[u8]>::trim_ascii);
        return !v.starts_with(b"W/") && shown == Some(v);
    }
    obj.last_modified.as_deref().map(<[u8]>::trim_ascii) == Some(v)
}

/// The value of the first `name` line of a stored head (ringfront's own
/// writing: one field per line), without allocating.
fn stored_field<'h>(head: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let colon = memchr::memchr(b':', line)?;
        line[..colon].eq_ignore_ascii_case(name).then(|| &line[colon + 1..])
    })
}

/// Decides how to answer a request for `obj`.
pub fn plan(
    obj: &Object,
    if_none_match: Option<&[u8]>,
    if_modified_since: Option<&[u8]>,
    (range, if_range): (Option<&[u8]>, Option<&[u8]>),
) -> HitKind {
    if matches!(obj.status, 200 | 203) || obj.status == 204 {
        if let Some(inm) = if_none_match {
            if none_match(inm, obj.etag.as_deref()) {
                return HitKind::NotModified;
            }
        } else if let Some(ims) = if_modified_since {
            if not_modified_since(ims, obj.last_modified.as_deref()) {
                return HitKind::NotModified;
            }
        }
    }
    if obj.status == 200 && if_range.is_none_or(|v| range_still_applies(obj, v)) {
        if let Some(r) = range.and_then(|r| single_range(r, obj.body.len())) {
            return match r {
                Ok(r) => HitKind::Partial(r),
                Err(()) => HitKind::Unsatisfiable,
            };
        }
    }
    HitKind::Full
}

/// Headers a 304 carries over from the stored response (RFC 9110 §15.4.5).
const KEEP_ON_304: [&[u8]; 7] = [
    b"cache-control",
    b"content-location",
    b"date",
    b"etag",
    b"expires",
    b"vary",
    b"last-modified",
];

/// `kind`, except that a Partial not lying within a body of `len` bytes
/// (which [`plan`] never makes) is answered as Unsatisfiable.
fn checked(kind: &HitKind, len: usize) -> &HitKind {
    match kind {
        HitKind::Partial(r) if r.start >= r.end || r.end > len => &HitKind::Unsatisfiable,
        k => k,
    }
}

/// Writes the head for `kind` (without the per-response lines and final CRLF).
pub fn write_head(out: &mut Vec<u8>, obj: &Object, kind: &HitKind) {
    let kind = checked(kind, obj.body.len());
    if *kind == HitKind::Full {
        out.extend_from_slice(&obj.head);
        return;
    }
    let status: &[u8] = match kind {
        HitKind::NotModified => b"HTTP/1.1 304 Not Modified\r\n",
        HitKind::Partial(_) => b"HTTP/1.1 206 Partial Content\r\n",
        _ => b"HTTP/1.1 416 Range Not Satisfiable\r\n",
    };
    out.extend_from_slice(status);
    let mut lines = obj.head.split(|&b| b == b'\n').skip(1);
    for line in lines.by_ref() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or(b"").trim_ascii();
        let keep = match kind {
            HitKind::NotModified => {
                KEEP_ON_304.iter().any(|k| name.eq_ignore_ascii_case(k)) || name.eq_ignore_ascii_case(b"via")
            }
            _ => !name.eq_ignore_ascii_case(b"content-length") && !name.eq_ignore_ascii_case(b"content-range"),
        };
        if keep {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
    let len = obj.body.len();
    let mut n = itoa::Buffer::new();
    match kind {
        HitKind::Partial(r) => {
            out.extend_from_slice(b"Content-Range: bytes ");
            out.extend_from_slice(n.format(r.start).as_bytes());
            out.push(b'-');
            out.extend_from_slice(n.format(r.end.saturating_sub(1)).as_bytes());
            out.push(b'/');
            out.extend_from_slice(n.format(len).as_bytes());
            out.extend_from_slice(b"\r\nContent-Length: ");
            out.extend_from_slice(n.format(r.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        HitKind::Unsatisfiable => {
            out.extend_from_slice(b"Content-Range: bytes */");
            out.extend_from_slice(n.format(len).as_bytes());
            out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
        }
        _ => {}
    }
}

/// The body bytes to send for `kind` (HEAD sends none).
pub fn body(obj: &Object, kind: &HitKind) -> bytes::Bytes {
    match checked(kind, obj.body.len()) {
        HitKind::Full => obj.body.clone(),
        HitKind::Partial(r) => obj.body.slice(r.clone()),
        _ => bytes::Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::{Duration, Instant};

    fn obj() -> Object {
        Object {
            head: Bytes::from_static(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: \"v1\"\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 10\r\nVia: 1.1 rf\r\n",
            ),
            body: Bytes::from_static(b"0123456789"),
            status: 200,
            stored: Instant::now(),
            initial_age: Duration::ZERO,
            ttl: Duration::from_secs(60),
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
            etag: Some(Bytes::from_static(b"\"v1\"")),
            last_modified: Some(Bytes::from_static(b"Sun, 06 Nov 1994 08:49:37 GMT")),
        }
    }

    #[test]
    fn a_range_applies_only_while_if_range_names_the_stored_representation() {
        let o = obj();
        let with = |v: &[u8]| plan(&o, None, None, (Some(b"bytes=0-3"), Some(v)));
        assert_eq!(with(b"\"v1\""), HitKind::Partial(0..4));
        assert_eq!(with(b"Sun, 06 Nov 1994 08:49:37 GMT"), HitKind::Partial(0..4));
        assert_eq!(with(b"\"other\""), HitKind::Full, "another representation");
        assert_eq!(
            with(b"W/\"v1\""),
            HitKind::Full,
            "a weak tag never matches (strong comparison)"
        );
        assert_eq!(with(b"Sat, 05 Nov 1994 08:49:37 GMT"), HitKind::Full);
        // A compressed variant shows a weak tag: its bytes are not ranged
        // under the origin's strong one.
        let mut coded = obj();
        coded.head = Bytes::from_static(b"HTTP/1.1 200 OK\r\nETag: W/\"v1\"\r\nContent-Encoding: br\r\n");
        let p = plan(&coded, None, None, (Some(b"bytes=0-3"), Some(b"\"v1\"")));
        assert_eq!(p, HitKind::Full);
    }

    #[test]
    fn conditionals() {
        let o = obj();
        assert_eq!(plan(&o, Some(b"\"v1\""), None, (None, None)), HitKind::NotModified);
        assert_eq!(plan(&o, Some(b"W/\"v1\""), None, (None, None)), HitKind::NotModified);
        assert_eq!(
            plan(&o, Some(b"\"x\", \"v1\""), None, (None, None)),
            HitKind::NotModified
        );
        assert_eq!(plan(&o, Some(b"*"), None, (None, None)), HitKind::NotModified);
        assert_eq!(plan(&o, Some(b"\"v2\""), None, (None, None)), HitKind::Full);
        assert_eq!(
            plan(&o, None, Some(b"Sun, 06 Nov 1994 08:49:37 GMT"), (None, None)),
            HitKind::NotModified
        );
        assert_eq!(
            plan(&o, None, Some(b"Sat, 05 Nov 1994 08:49:37 GMT"), (None, None)),
            HitKind::Full
        );
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            plan(
                &o,
                Some(b"\"v2\""),
                Some(b"Sun, 06 Nov 1994 08:49:37 GMT"),
                (None, None)
            ),
            HitKind::Full
        );
        let mut out = Vec::new();
        write_head(&mut out, &o, &HitKind::NotModified);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 304 Not Modified\r\n"));
        assert!(s.contains("ETag: \"v1\"\r\n") && !s.contains("Content-Length") && !s.contains("Content-Type"));
    }

    #[test]
    fn ranges() {
        let o = obj();
        let p = |r: &[u8]| plan(&o, None, None, (Some(r), None));
        assert_eq!(p(b"bytes=0-3"), HitKind::Partial(0..4));
        assert_eq!(p(b"bytes=7-"), HitKind::Partial(7..10));
        assert_eq!(p(b"bytes=-3"), HitKind::Partial(7..10));
        assert_eq!(p(b"bytes=5-100"), HitKind::Partial(5..10));
        assert_eq!(p(b"bytes=-100"), HitKind::Partial(0..10));
        assert_eq!(p(b"bytes=10-"), HitKind::Unsatisfiable);
        assert_eq!(p(b"bytes=-0"), HitKind::Unsatisfiable);
        assert_eq!(p(b"bytes=0-1,3-4"), HitKind::Full);
        assert_eq!(p(b"bytes=5-2"), HitKind::Full);
        assert_eq!(p(b"items=0-1"), HitKind::Full);
        assert_eq!(p(b"bytes=x-1"), HitKind::Full);
        let mut out = Vec::new();
        write_head(&mut out, &o, &HitKind::Partial(2..5));
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{s}");
        assert!(s.contains("Content-Range: bytes 2-4/10\r\nContent-Length: 3\r\n"));
        assert_eq!(s.matches("Content-Length").count(), 1);
        assert_eq!(&body(&o, &HitKind::Partial(2..5))[..], b"234");
        let mut out = Vec::new();
        write_head(&mut out, &o, &HitKind::Unsatisfiable);
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("Content-Range: bytes */10\r\n"));
    }

    #[test]
    fn range_numbers_from_a_viewer_cannot_overflow() {
        let o = obj();
        let p = |r: &[u8]| plan(&o, None, None, (Some(r), None));
        let u64_max = "18446744073709551615";
        let beyond = "999999999999999999999999999999";
        for n in [u64_max, beyond] {
            assert_eq!(p(format!("bytes={n}-").as_bytes()), HitKind::Unsatisfiable, "{n}-");
            assert_eq!(
                p(format!("bytes={n}-{n}").as_bytes()),
                HitKind::Unsatisfiable,
                "{n}-{n}"
            );
            assert_eq!(p(format!("bytes=0-{n}").as_bytes()), HitKind::Partial(0..10), "0-{n}");
            assert_eq!(p(format!("bytes=9-{n}").as_bytes()), HitKind::Partial(9..10), "9-{n}");
            assert_eq!(p(format!("bytes=-{n}").as_bytes()), HitKind::Partial(0..10), "-{n}");
        }
        assert_eq!(p(b"bytes=-0"), HitKind::Unsatisfiable);
        assert_eq!(p(b"bytes=-10"), HitKind::Partial(0..10));
        assert_eq!(p(b"bytes=-11"), HitKind::Partial(0..10), "suffix longer than the body");
        assert_eq!(p(b"bytes=9-9"), HitKind::Partial(9..10));
        // Not a byte range: ignored.
        for r in [
            "bytes=",
            "bytes=-",
            "bytes=--1",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=1--2",
            "bytes=0x1-2",
        ] {
            assert_eq!(p(r.as_bytes()), HitKind::Full, "{r}");
        }
        // Many ranges get the whole representation, whatever their number.
        let many: String = (0..10_000).map(|i| format!("{i}-{i},")).collect();
        assert_eq!(p(format!("bytes={many}").as_bytes()), HitKind::Full);
        // An empty body has no satisfiable range.
        let mut empty = obj();
        empty.body = Bytes::new();
        for r in ["bytes=0-", "bytes=0-0", "bytes=-1", "bytes=-0"] {
            assert_eq!(
                plan(&empty, None, None, (Some(r.as_bytes()), None)),
                HitKind::Unsatisfiable,
                "{r}"
            );
        }
    }

    #[test]
    fn a_partial_plan_outside_the_body_cannot_panic() {
        let o = obj();
        let reversed = Range { start: 5, end: 3 };
        for r in [0..0, reversed, 8..20, 20..30, usize::MAX - 1..usize::MAX] {
            let kind = HitKind::Partial(r.clone());
            let mut out = Vec::new();
            write_head(&mut out, &o, &kind);
            let head = String::from_utf8(out).unwrap();
            assert!(head.starts_with("HTTP/1.1 416 "), "{r:?}: {head}");
            assert!(body(&o, &kind).is_empty(), "{r:?}");
        }
    }
}
