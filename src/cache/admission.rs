//! Cache admission, pure: may this origin response be stored, for how long,
//! and what a `304 Not Modified` makes of the stored object (SPEC §4).
//!
//! The rules themselves live in [`freshness`](super::freshness); this file
//! reads them off a parsed response head (repeated header lines as one list,
//! RFC 9110 §5.3) and adds what the framing tells: a Content-Length within
//! `max_object_size`, or no length yet (chunked, or delimited by close: RFC
//! 9112 §6.3), which the recording checks against that limit as the body
//! comes, storing it only once complete (RFC 9112 §8; SPEC §4).

use super::freshness::{lifetime, Lifetime, Policy, ResponseFacts};
use super::store::Object;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted {
    pub life: Lifetime,
    /// The body's length when the head says it (a Content-Length, or no
    /// body); `None` for a chunked or close-delimited body, whose length is
    /// known only once it is complete.
    pub len: Option<u64>,
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
    Some(Admitted { life, len })
}

/// The stored object after a 304 to its revalidation: the same stored bytes,
/// a new age, and the freshness the 304 gives (else the old lifetime).
/// `policy`'s `default_ttl` is ignored: the old TTL stands in for it.
pub fn refreshed(
    old: &Object,
    (buf, head): (&[u8], &ResponseHead),
    policy: &Policy,
    now: Instant,
    wall: SystemTime,
) -> Object {
    let policy = Policy {
        default_ttl: old.ttl,
        ..*policy
    };
    let life = with_facts(buf, head, |facts| {
        let facts = ResponseFacts {
            status: old.status,
            vary: None,
            set_cookie: false,
            ..*facts
        };
        lifetime(&facts, false, &policy, None, wall)
    });
    Object {
        head: old.head.clone(),
        body: old.body.clone(),
        status: old.status,
        stored: now,
        initial_age: life.map_or(Duration::ZERO, |l| l.initial_age),
        ttl: life.map_or(old.ttl, |l| l.ttl),
        stale_while_revalidate: life.map_or(old.stale_while_revalidate, |l| l.stale_while_revalidate),
        stale_if_error: life.map_or(old.stale_if_error, |l| l.stale_if_error),
        etag: old.etag.clone(),
        last_modified: old.last_modified.clone(),
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

    #[test]
    fn a_304_gives_the_stored_object_its_new_freshness() {
        let now = Instant::now();
        let old = Object::simple(
            bytes::Bytes::from_static(b"HTTP/1.1 200 OK\r\n"),
            bytes::Bytes::from_static(b"x"),
            200,
            now,
            Duration::from_secs(10),
        );
        let raw = b"HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=99\r\n\r\n";
        let h = parsed(raw);
        let new = refreshed(&old, (raw, &h), &POLICY, now, SystemTime::now());
        assert_eq!((new.ttl, new.status), (Duration::from_secs(99), 200));
        let raw = b"HTTP/1.1 304 Not Modified\r\n\r\n";
        let h = parsed(raw);
        let kept = refreshed(&old, (raw, &h), &POLICY, now, SystemTime::now());
        assert_eq!(kept.ttl, Duration::from_secs(10));
    }
}
