//! Cache admission, pure: may this origin response be stored, for how long,
//! and what a `304 Not Modified` or a HEAD's 200 makes of the stored object
//! (SPEC §4).
//!
//! The rules themselves live in [`freshness`](super::freshness); this file
//! reads them off a parsed response head (repeated header lines as one list,
//! RFC 9110 §5.3) and adds what the framing tells: a Content-Length within
//! `max_object_size`, or no length yet (chunked, or delimited by close: RFC
//! 9112 §6.3), which the recording checks against that limit as the body
//! comes, storing it only once complete (RFC 9112 §8; SPEC §4).

use super::freshness::{lifetime, Lifetime, Policy, ResponseFacts};
use super::store::Object;
use super::update;
use super::vary::Vary;
use crate::http::response::{RespBody, ResponseHead};
use std::time::{Duration, Instant, SystemTime};

/// What the request tells the rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked {
    /// A HEAD: its response has no body to store.
    pub head_request: bool,
    /// The request carried Authorization.
    pub authorization: bool,
}

/// A response the cache may store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub life: Lifetime,
    /// The body's length when the head says it (a Content-Length, or no
    /// body); `None` for a chunked or close-delimited body, whose length is
    /// known only once it is complete.
    pub len: Option<u64>,
    /// The request headers it varies on (RFC 9111 §4.1; empty: none).
    pub vary: Vary,
}

/// Reads the facts the rules need off `head` (over `buf`) and hands them to
/// `f`.
fn with_facts<R>(buf: &[u8], head: &ResponseHead, f: impl FnOnce(&ResponseFacts<'_>) -> R) -> R {
    let cc = head.header_list(buf, b"cache-control");
    let vary = head.header_list(buf, b"vary");
    let age = head.header_list(buf, b"age");
    let cdn = head.header_list(buf, b"cdn-cache-control");
    let facts = ResponseFacts {
        status: head.status,
        cache_control: cc.as_deref(),
        expires: head.header(buf, b"expires"),
        date: head.header(buf, b"date"),
        vary: vary.as_deref(),
        set_cookie: head.header(buf, b"set-cookie").is_some(),
        cdn_cache_control: cdn.as_deref(),
        age: age.as_deref(),
    };
    f(&facts)
}

/// Whether the response whose head is `head` (over `buf`) may be stored.
pub fn admit(
    (buf, head): (&[u8], &ResponseHead),
    asked: Asked,
    policy: &Policy,
    max_object_size: u64,
    now: SystemTime,
) -> Option<Admitted> {
    let len = match head.body() {
        RespBody::Length(n) if n <= max_object_size => Some(n),
        RespBody::None if !asked.head_request => Some(0),
        RespBody::Chunked | RespBody::Close if !asked.head_request => None,
        _ => return None,
    };
    let life = with_facts(buf, head, |facts| {
        lifetime(facts, asked.authorization, policy, None, now)
    })?;
    let vary = Vary::parse(head.header_list(buf, b"vary").as_deref())?;
    Some(Admitted { life, len, vary })
}

/// A stored object updated by a 304 or a HEAD's 200 ([`refreshed`]).
#[derive(Debug)]
pub struct Refreshed {
    pub obj: Object,
    /// The updated response may be stored; else it answers the request at
    /// hand only, and the stored one is dropped.
    pub storable: bool,
}

/// The stored object `old` updated by a 304 to its revalidation, or a
/// HEAD's 200 (`head` over `buf`; RFC 9111 §3.2, §4.3.4, §4.3.5): the
/// merged head ([`update::merge`]; `kept`: names the behavior's header
/// actions own), the same body `Bytes`, validators and freshness read from
/// the merged head as a miss's are from the origin's (its Date, the newer
/// response's Age), counted from `now`.
pub fn refreshed(
    old: &Object,
    (buf, head): (&[u8], &ResponseHead),
    policy: &Policy,
    kept: impl Fn(&[u8]) -> bool,
    (now, wall): (Instant, SystemTime),
) -> Refreshed {
    let mut merged = Vec::with_capacity(old.head.len() + head.head_len + 40);
    let received = httpdate::fmt_http_date(wall);
    update::merge(&old.head, (buf, head), kept, received.as_bytes(), &mut merged);
    let fields = update::index(&merged, old.status);
    let age = head.header_list(buf, b"age");
    let life = with_facts(&merged, &fields, |facts| {
        let facts = ResponseFacts {
            vary: None,
            set_cookie: false,
            age: age.as_deref(),
            ..*facts
        };
        lifetime(&facts, false, policy, None, wall)
    });
    let validator = |name: &[u8]| fields.header(&merged, name).map(bytes::Bytes::copy_from_slice);
    let (etag, last_modified) = (validator(b"etag"), validator(b"last-modified"));
    let bounded = update::bounded(&merged, &fields);
    let obj = Object {
        stale_while_revalidate: life.map_or(Duration::ZERO, |l| l.stale_while_revalidate),
        stale_if_error: life.map_or(Duration::ZERO, |l| l.stale_if_error),
        initial_age: life.map_or(Duration::ZERO, |l| l.initial_age),
        etag,
        last_modified,
        ..Object::simple(
            bytes::Bytes::from(merged.into_boxed_slice()),
            old.body.clone(),
            old.status,
            now,
            life.map_or(Duration::ZERO, |l| l.ttl),
        )
    };
    Refreshed {
        obj,
        storable: life.is_some() && bounded,
    }
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

    const POLICY: Policy = Policy {
        min_ttl: Duration::ZERO,
        default_ttl: Duration::from_secs(60),
        max_ttl: Duration::from_secs(86_400),
    };

    /// Chunked and close-delimited bodies are admitted without a length:
    /// the recording learns it at their end (SPEC §4).
    #[test]
    fn a_body_without_a_length_is_admitted_with_its_length_unknown() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n",
        ] {
            let h = parsed(raw);
            let a = admit((raw, &h), Asked::default(), &POLICY, 1 << 20, SystemTime::now());
            assert_eq!(a.map(|a| a.len), Some(None), "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn an_object_over_the_size_limit_is_not_admitted() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n";
        let h = parsed(raw);
        assert_eq!(
            admit((raw, &h), Asked::default(), &POLICY, 1000, SystemTime::now()),
            None
        );
        let ok = admit((raw, &h), Asked::default(), &POLICY, 2000, SystemTime::now());
        assert_eq!(
            ok.map(|a| (a.len, a.life.ttl)),
            Some((Some(2000), Duration::from_secs(60)))
        );
    }

    #[test]
    fn two_cache_control_lines_are_read_as_one_list() {
        let raw =
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=1\r\nCache-Control: s-maxage=5\r\nContent-Length: 0\r\n\r\n";
        let h = parsed(raw);
        let a = admit((raw, &h), Asked::default(), &POLICY, 1000, SystemTime::now());
        assert_eq!(a.map(|a| a.life.ttl), Some(Duration::from_secs(5)));
    }

    /// RFC 9110 §5.3: two Vary lines are one list; RFC 9111 §4.1: a `*`
    /// member anywhere "always fails to match", so it is not stored.
    #[test]
    fn vary_lines_name_the_variants_and_a_star_prevents_storing() {
        let raw = b"HTTP/1.1 200 OK\r\nVary: Origin\r\nVary: accept-language, origin\r\nContent-Length: 0\r\n\r\n";
        let h = parsed(raw);
        let a = admit((raw, &h), Asked::default(), &POLICY, 1000, SystemTime::now()).unwrap();
        assert_eq!(a.vary, Vary::parse(Some(b"Accept-Language, Origin")).unwrap());
        let raw = b"HTTP/1.1 200 OK\r\nVary: Origin\r\nVary: *\r\nContent-Length: 0\r\n\r\n";
        let h = parsed(raw);
        assert_eq!(
            admit((raw, &h), Asked::default(), &POLICY, 1000, SystemTime::now()),
            None
        );
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let h = parsed(raw);
        assert!(admit((raw, &h), Asked::default(), &POLICY, 1000, SystemTime::now())
            .unwrap()
            .vary
            .is_empty());
    }

    /// RFC 9111 §3.2, §4.3.4: the merged head decides the freshness: the
    /// 304's Cache-Control replaces the stored one, a 304 without it leaves
    /// the stored one in force, and the 304's Age counts.
    #[test]
    fn a_304_gives_the_stored_object_its_new_freshness() {
        let now = Instant::now();
        let old = Object::simple(
            bytes::Bytes::from_static(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=10\r\nContent-Length: 1\r\n"),
            bytes::Bytes::from_static(b"x"),
            200,
            now,
            Duration::from_secs(10),
        );
        let update = |raw: &[u8]| {
            let h = parsed(raw);
            refreshed(&old, (raw, &h), &POLICY, |_| false, (now, SystemTime::now()))
        };
        let new = update(b"HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=99\r\nAge: 9\r\n\r\n");
        let o = &new.obj;
        assert!(new.storable);
        assert_eq!(
            (o.ttl, o.initial_age, o.status),
            (Duration::from_secs(99), Duration::from_secs(9), 200)
        );
        assert!(o
            .head
            .starts_with(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nCache-Control: max-age=99\r\nDate: "));
        assert_eq!(o.body.as_ptr(), old.body.as_ptr(), "the body is shared, not copied");
        let kept = update(b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n");
        assert_eq!(kept.obj.ttl, Duration::from_secs(10));
        assert_eq!(kept.obj.etag.as_deref(), Some(&b"\"e\""[..]));
        let gone = update(b"HTTP/1.1 304 Not Modified\r\nCache-Control: no-store\r\n\r\n");
        assert!(!gone.storable);
    }

    /// An origin adding new fields on every 304 cannot grow the stored head
    /// without end: past twice an origin head's lines, the update is not
    /// stored.
    #[test]
    fn a_304_cannot_grow_the_stored_head_without_end() {
        let now = Instant::now();
        let lines: String = (0..200).map(|i| format!("X-Old-{i}: v\r\n")).collect();
        let old = Object::simple(
            bytes::Bytes::from(format!("HTTP/1.1 200 OK\r\nCache-Control: max-age=10\r\n{lines}")),
            bytes::Bytes::new(),
            200,
            now,
            Duration::from_secs(10),
        );
        let new: String = (0..100).map(|i| format!("X-New-{i}: v\r\n")).collect();
        let raw = format!("HTTP/1.1 304 Not Modified\r\n{new}\r\n");
        let h = parsed(raw.as_bytes());
        let r = refreshed(&old, (raw.as_bytes(), &h), &POLICY, |_| false, (now, SystemTime::now()));
        assert!(!r.storable);
        let raw = b"HTTP/1.1 304 Not Modified\r\nX-New: v\r\n\r\n";
        let h = parsed(raw);
        assert!(refreshed(&old, (raw, &h), &POLICY, |_| false, (now, SystemTime::now())).storable);
    }
}
