//! The cache decision for one request, pure (no I/O, the clock injected):
//! whether the request may use the cache at all, and what the object found
//! for its key allows. The connection code carries the decision out
//! (`proxy::conn`): answer, answer and refresh, revalidate, or fetch.

use super::store::Object;
use std::sync::Arc;
use std::time::Instant;

/// Why a request does not use the cache (RFC 9211 `fwd=bypass`, `fwd=method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bypass {
    /// No cache is configured (`cache.capacity = 0`).
    NoStore,
    /// The behavior has `cache = false`.
    Behavior,
    /// Only GET and HEAD are looked up (RFC 9111 §2).
    Method,
    /// A request with a body is not answered from the cache.
    Body,
}

/// Whether a request may be looked up in the cache.
pub fn cacheable(store: bool, behavior: bool, method: &[u8], has_body: bool) -> Result<(), Bypass> {
    if !store {
        Err(Bypass::NoStore)
    } else if !behavior {
        Err(Bypass::Behavior)
    } else if method != b"GET" && method != b"HEAD" {
        Err(Bypass::Method)
    } else if has_body {
        Err(Bypass::Body)
    } else {
        Ok(())
    }
}

/// What the stored object allows.
#[derive(Debug)]
pub enum Lookup {
    /// Fresh: answer from it.
    Fresh(Arc<Object>),
    /// Stale within its stale-while-revalidate window, for a GET: answer
    /// from it now and refresh it in the background (RFC 5861 §3).
    ServeAndRefresh(Arc<Object>),
    /// Stale: revalidate it with the origin (or fetch anew), and serve it if
    /// the origins fail within its stale-if-error window.
    Stale(Arc<Object>),
    /// Nothing stored: fetch (collapsed with other misses for the key).
    Miss,
}

/// Decides from the object found for the key at `now`.
pub fn decide(found: Option<Arc<Object>>, now: Instant, is_get: bool) -> Lookup {
    match found {
        None => Lookup::Miss,
        Some(o) if o.is_fresh(now) => Lookup::Fresh(o),
        Some(o) if is_get && o.may_serve_while_revalidating(now) => Lookup::ServeAndRefresh(o),
        Some(o) => Lookup::Stale(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::time::Duration;

    fn obj(stored: Instant, ttl: u64, swr: u64) -> Arc<Object> {
        let mut o = Object::simple(Bytes::new(), Bytes::new(), 200, stored, Duration::from_secs(ttl));
        o.stale_while_revalidate = Duration::from_secs(swr);
        Arc::new(o)
    }

    #[test]
    fn fresh_stale_and_stale_while_revalidate() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(matches!(decide(None, t0, true), Lookup::Miss));
        assert!(matches!(decide(Some(obj(t0, 10, 0)), at(5), true), Lookup::Fresh(_)));
        assert!(matches!(decide(Some(obj(t0, 10, 0)), at(10), true), Lookup::Stale(_)));
        assert!(matches!(
            decide(Some(obj(t0, 10, 30)), at(20), true),
            Lookup::ServeAndRefresh(_)
        ));
        assert!(
            matches!(decide(Some(obj(t0, 10, 30)), at(20), false), Lookup::Stale(_)),
            "HEAD does not refresh"
        );
        assert!(matches!(decide(Some(obj(t0, 10, 30)), at(40), true), Lookup::Stale(_)));
        assert!(matches!(
            decide(Some(obj(t0, 10, u64::MAX >> 1)), at(40), true),
            Lookup::ServeAndRefresh(_)
        ));
    }

    #[test]
    fn what_may_use_the_cache() {
        assert_eq!(cacheable(true, true, b"GET", false), Ok(()));
        assert_eq!(cacheable(true, true, b"HEAD", false), Ok(()));
        assert_eq!(cacheable(false, true, b"GET", false), Err(Bypass::NoStore));
        assert_eq!(cacheable(true, false, b"GET", false), Err(Bypass::Behavior));
        assert_eq!(cacheable(true, true, b"POST", false), Err(Bypass::Method));
        assert_eq!(cacheable(true, true, b"GET", true), Err(Bypass::Body));
    }
}
