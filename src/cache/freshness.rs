//! What may be cached, and for how long (SPEC §4, after CloudFront).
//!
//! - Directives: a valid `CDN-Cache-Control` (RFC 9213, parsed in
//!   [`super::targeted`]) when present; then `Cache-Control` and `Expires`
//!   count for nothing (RFC 9213 §2.1). Else `Cache-Control`, every line of
//!   it as one list (RFC 9110 §5.3).
//! - TTL: `s-maxage`, else `max-age`, else `Expires` − `Date` (not under
//!   CDN-Cache-Control), else the behavior's `default_ttl`; then clamped to
//!   `[min_ttl, max_ttl]`.
//! - Age (RFC 9111 §4.2.3): the response arrives
//!   `max(apparent_age, age_value)` old, where apparent_age is now − `Date`
//!   (0 when Date is absent, invalid or ahead of our clock) and age_value
//!   the first member of `Age` (ignored unless `1*DIGIT`, RFC 9111 §5.1).
//!   That initial age counts against the TTL and the stale windows. The
//!   response_delay is not added here: the stored object counts its age
//!   from when the request was received (`Object::stored`), which includes
//!   it (conservatively, for the apparent age too).
//! - A response that arrives older than its TTL plus its longest stale
//!   window could never be served without asking the origin (RFC 9111
//!   §4.2.4): it is not stored, as a `max-age=0` one is not.
//! - `no-store`, `no-cache` and `private` prevent caching unless
//!   `min_ttl` > 0; then the object is cached for `min_ttl` (CloudFront).
//! - A response with `Set-Cookie` is not cached; nor a response to a request
//!   with `Authorization`, unless it says `public`, `s-maxage` or
//!   `must-revalidate` (RFC 9111 §3.5).
//! - `must-revalidate` / `proxy-revalidate` (§5.2.2.2, §5.2.2.8): no stale
//!   window. `must-understand` (§5.2.2.3): stored only with a status
//!   ringfront understands, and then `no-store` does not count.
//! - `Vary: *` prevents caching (RFC 9111 §4.1: it "always fails to
//!   match"), as does a Vary of more than `vary::MAX_NAMES` names or with
//!   a member that is not a field name; other Vary lists are stored as
//!   variants ([`super::vary`]).
//! - A status with an `error_response` is cached for
//!   `max(error_response.min_ttl, explicit freshness)`, where explicit
//!   freshness is `s-maxage`, else `max-age`, else `Expires` − `Date`.
//! - Any final status but 206 and 304 with explicit freshness, statuses
//!   RFC 9110 §15.1 calls heuristically cacheable, and non-errors marked
//!   `public` follow the TTL rules (RFC 9111 §3); but an error (status ≥
//!   400) is stored only with explicit freshness: `default_ttl` never
//!   applies to an error.
//! - `stale-while-revalidate` and `stale-if-error` are kept for serving stale.
//! - Every delta-seconds (`max-age`, `s-maxage`, `stale-while-revalidate`,
//!   `stale-if-error`, `Age`), `Expires` − `Date` and now − `Date` is at most
//!   [`MAX_DELTA_SECONDS`] (2^31 s, RFC 9111 §1.2.2), however large the
//!   origin's number: no later sum of durations can overflow.
//!
//! Pure functions of the parsed response, so every rule is tested here with
//! an injected clock.

use std::time::{Duration, SystemTime};

/// The behavior's TTL bounds.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub min_ttl: Duration,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
}

/// The response facts the rules read (header values as sent).
#[derive(Debug, Default, Clone, Copy)]
pub struct ResponseFacts<'a> {
    pub status: u16,
    pub cache_control: Option<&'a [u8]>,
    pub expires: Option<&'a [u8]>,
    pub date: Option<&'a [u8]>,
    pub vary: Option<&'a [u8]>,
    pub set_cookie: bool,
    /// `CDN-Cache-Control`, every line joined (RFC 9213).
    pub cdn_cache_control: Option<&'a [u8]>,
    /// `Age`, every line joined (RFC 9111 §5.1: its first member counts).
    pub age: Option<&'a [u8]>,
}

/// How long a response may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub ttl: Duration,
    pub stale_while_revalidate: Duration,
    pub stale_if_error: Duration,
    /// How old the response was on arrival (RFC 9111 §4.2.3
    /// corrected_initial_age, without the response delay): counts against
    /// `ttl` and the stale windows.
    pub initial_age: Duration,
}

/// Parsed Cache-Control directives that matter to a shared cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheControl {
    pub s_maxage: Option<u64>,
    pub max_age: Option<u64>,
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    pub public: bool,
    /// `must-revalidate` or `proxy-revalidate` (RFC 9111 §5.2.2.2,
    /// §5.2.2.8): never served stale.
    pub must_revalidate: bool,
    /// `must-understand` (§5.2.2.3): stored only with a status the cache
    /// understands, and then `no-store` does not count.
    pub must_understand: bool,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
}

/// Parses a Cache-Control value (RFC 9111 §5.2): comma-separated
/// directives, case-insensitive names, optional (possibly quoted) values.
/// A malformed delta-seconds makes that directive count as absent, except
/// for `max-age`/`s-maxage`, where it counts as 0 (stale) per RFC 9111 §4.2.1.
/// A value above [`MAX_DELTA_SECONDS`], however long, counts as that.
pub fn parse_cache_control(v: &[u8]) -> CacheControl {
    let mut cc = CacheControl::default();
    for part in crate::http::token::list_members(v) {
        let (name, value) = match part.iter().position(|&b| b == b'=') {
            Some(i) => (trim(&part[..i]), Some(unquote(trim(&part[i + 1..])))),
            None => (trim(part), None),
        };
        let secs = || value.and_then(delta_seconds);
        let n = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        if n("s-maxage") {
            cc.s_maxage = Some(secs().unwrap_or(0));
        } else if n("max-age") {
            cc.max_age = Some(secs().unwrap_or(0));
        } else if n("no-store") {
            cc.no_store = true;
        } else if n("no-cache") {
            cc.no_cache = true;
        } else if n("private") {
            cc.private = true;
        } else if n("public") {
            cc.public = true;
        } else if n("must-revalidate") || n("proxy-revalidate") {
            cc.must_revalidate = true;
        } else if n("must-understand") {
            cc.must_understand = true;
        } else if n("stale-while-revalidate") {
            cc.stale_while_revalidate = secs();
        } else if n("stale-if-error") {
            cc.stale_if_error = secs();
        }
    }
    cc
}

/// The largest delta-seconds a cache keeps (RFC 9111 §1.2.2): 2^31 seconds,
/// about 68 years. Larger values, and values too large for any integer,
/// count as this.
pub const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// Parses delta-seconds (`1*DIGIT`), clamped to [`MAX_DELTA_SECONDS`]; `None`
/// when it is not all digits (a sign, a fraction, empty).
fn delta_seconds(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n: u64, &d| {
        n.saturating_mul(10)
            .saturating_add(u64::from(d - b'0'))
            .min(MAX_DELTA_SECONDS)
    }))
}

fn trim(v: &[u8]) -> &[u8] {
    let s = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let e = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(s, |e| e + 1);
    &v[s..e.max(s)]
}

fn unquote(v: &[u8]) -> &[u8] {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// An HTTP-date in any of its formats ([`crate::http::date`]); `now`
/// resolves two-digit years.
fn http_date(v: &[u8], now: SystemTime) -> Option<SystemTime> {
    crate::http::date::parse(v, now)
}

/// Statuses a cache may store without explicit freshness (RFC 9110 §15.1).
fn heuristically_cacheable(status: u16) -> bool {
    matches!(status, 200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501)
}

/// Statuses whose caching requirements ringfront understands, for
/// `must-understand` (RFC 9111 §5.2.2.3): the heuristically cacheable ones
/// and the other redirects and server errors RFC 9110 §15 defines, which
/// it stores by their freshness (an unregistered 599 is not understood).
fn understood(status: u16) -> bool {
    heuristically_cacheable(status) || matches!(status, 302 | 303 | 307 | 500..=505)
}

/// Whether and for how long the response may be cached.
///
/// `authorization`: the request carried Authorization. `error_min_ttl`: the
/// `min_ttl` of an `error_response` configured for this status.
pub fn lifetime(
    r: &ResponseFacts<'_>,
    authorization: bool,
    policy: &Policy,
    error_min_ttl: Option<Duration>,
    now: SystemTime,
) -> Option<Lifetime> {
    if r.set_cookie {
        return None;
    }
    if r.vary.is_some_and(|v| !super::vary::storable(v)) {
        return None;
    }
    // RFC 9213 §2.1: a cache using a valid targeted field "MUST ignore the
    // Cache-Control and Expires header fields in that response".
    let (cc, expires) = match r.cdn_cache_control.and_then(super::targeted::parse) {
        Some(cdn) => (cdn, None),
        None => (r.cache_control.map(parse_cache_control).unwrap_or_default(), r.expires),
    };
    // RFC 9111 §3.5: a response to a request with Authorization only with
    // "a must-revalidate, public, or s-maxage response directive".
    if authorization && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate) {
        return None;
    }
    let explicit = explicit_ttl(&cc, expires, r.date, now);
    let ttl = match error_min_ttl {
        Some(min) => min.max(explicit.unwrap_or(Duration::ZERO)),
        None => policy_ttl(r.status, &cc, explicit, policy)?,
    };
    // §5.2.2.2: once stale, "a cache MUST NOT reuse that response to
    // satisfy another request until it has been successfully validated":
    // no stale window, whatever stale-* says.
    let stale = |d: Option<u64>| Duration::from_secs(if cc.must_revalidate { 0 } else { d.unwrap_or(0) });
    let life = Lifetime {
        ttl,
        stale_while_revalidate: stale(cc.stale_while_revalidate),
        stale_if_error: stale(cc.stale_if_error),
        initial_age: initial_age(r.age, r.date, now),
    };
    // RFC 9111 §4.2.4: "A cache MUST NOT generate a stale response unless
    // ... explicitly permitted": one already past every window it may be
    // served in is not worth its memory.
    let servable = ttl.saturating_add(life.stale_while_revalidate.max(life.stale_if_error));
    (life.initial_age < servable).then_some(life)
}

/// How old a response is on arrival (RFC 9111 §4.2.3), at most
/// [`MAX_DELTA_SECONDS`]: "corrected_initial_age = max(apparent_age,
/// corrected_age_value)", with "apparent_age = max(0, response_time -
/// date_value)" (`now` is the response time) and the Age received. Whole
/// seconds, as Age is sent.
pub fn initial_age(age: Option<&[u8]>, date: Option<&[u8]>, now: SystemTime) -> Duration {
    let age_value = age.and_then(age_value).unwrap_or(0);
    let apparent = date
        .and_then(|d| http_date(d, now))
        .and_then(|d| now.duration_since(d).ok())
        .map_or(0, |d| d.as_secs());
    Duration::from_secs(age_value.max(apparent).min(MAX_DELTA_SECONDS))
}

/// The `Age` value (RFC 9111 §5.1): "a cache encountering a message with a
/// list-based Age field value SHOULD use the first member of the field
/// value, discarding subsequent ones. If the field value (after discarding
/// additional members, as per above) is invalid (e.g., it contains
/// something other than a non-negative integer), a cache SHOULD ignore the
/// field." `None`: ignored.
fn age_value(v: &[u8]) -> Option<u64> {
    let first = v.split(|&b| b == b',').next().unwrap_or(v);
    delta_seconds(trim(first))
}

/// The origin's explicit freshness: `s-maxage`, else `max-age`, else
/// `Expires` − `Date` (`now` without a Date), each at most
/// [`MAX_DELTA_SECONDS`]; `None` when the origin gave none.
fn explicit_ttl(cc: &CacheControl, expires: Option<&[u8]>, date: Option<&[u8]>, now: SystemTime) -> Option<Duration> {
    if let Some(s) = cc.s_maxage.or(cc.max_age) {
        return Some(Duration::from_secs(s.min(MAX_DELTA_SECONDS)));
    }
    // An invalid Expires (such as "0") means already expired.
    let Some(exp) = http_date(expires?, now) else {
        return Some(Duration::ZERO);
    };
    let base = date.and_then(|d| http_date(d, now)).unwrap_or(now);
    let ttl = exp.duration_since(base).unwrap_or(Duration::ZERO);
    Some(ttl.min(Duration::from_secs(MAX_DELTA_SECONDS)))
}

/// The TTL under the behavior's policy, for a status without an
/// `error_response`; `None`: not stored.
fn policy_ttl(status: u16, cc: &CacheControl, explicit: Option<Duration>, policy: &Policy) -> Option<Duration> {
    // RFC 9111 §3: a final status; 206 and 304 are never stored as they
    // come (ringfront stores whole responses, and a 304 updates one).
    if status < 200 || status == 206 || status == 304 {
        return None;
    }
    // §3: "if the response status code is 206 or 304, or the
    // must-understand cache directive is present: the cache understands
    // the response status code".
    if cc.must_understand && !understood(status) {
        return None;
    }
    // §3: stored with explicit freshness ("a max-age response directive",
    // s-maxage, "an Expires header field"), with `public` (freshness then
    // the default), or a heuristically cacheable status (§4.2.2).
    if !(heuristically_cacheable(status) || explicit.is_some() || (cc.public && status < 400)) {
        return None;
    }
    // default_ttl never applies to an error: without explicit freshness, one
    // odd request (X-HTTP-Method-Override, a bad query) would poison the URL.
    if status >= 400 && explicit.is_none() {
        return None;
    }
    // §5.2.2.3: "When the cache is obligated to obey must-understand, it
    // SHOULD ignore the no-store directive".
    let no_store = cc.no_store && !cc.must_understand;
    if no_store || cc.no_cache || cc.private {
        // CloudFront: not cached, unless min_ttl > 0; then for min_ttl.
        return (!policy.min_ttl.is_zero()).then_some(policy.min_ttl);
    }
    let ttl = explicit.unwrap_or(policy.default_ttl);
    Some(ttl.clamp(policy.min_ttl, policy.max_ttl.max(policy.min_ttl)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn policy(min: u64) -> Policy {
        Policy {
            min_ttl: Duration::from_secs(min),
            default_ttl: DAY,
            max_ttl: 365 * DAY,
        }
    }

    fn facts(cc: &'static str) -> ResponseFacts<'static> {
        ResponseFacts {
            status: 200,
            cache_control: (!cc.is_empty()).then_some(cc.as_bytes()),
            ..Default::default()
        }
    }

    fn ttl_of(r: &ResponseFacts<'_>, p: &Policy) -> Option<u64> {
        lifetime(r, false, p, None, SystemTime::UNIX_EPOCH + DAY * 10000).map(|l| l.ttl.as_secs())
    }

    #[test]
    fn ttl_precedence() {
        let p = policy(0);
        assert_eq!(ttl_of(&facts("max-age=60, s-maxage=120"), &p), Some(120));
        assert_eq!(ttl_of(&facts("max-age=60"), &p), Some(60));
        assert_eq!(ttl_of(&facts(""), &p), Some(86400));
        let mut r = facts("");
        r.date = Some(b"Mon, 19 May 1997 00:00:00 GMT");
        r.expires = Some(b"Mon, 19 May 1997 01:00:00 GMT");
        assert_eq!(ttl_of(&r, &p), Some(3600));
        r.cache_control = Some(b"max-age=5");
        assert_eq!(ttl_of(&r, &p), Some(5), "max-age beats Expires");
        let mut r = facts("");
        r.expires = Some(b"0");
        assert_eq!(ttl_of(&r, &p), None, "invalid Expires is already stale");
    }

    #[test]
    fn clamp_to_min_and_max() {
        let p = Policy {
            min_ttl: Duration::from_secs(10),
            default_ttl: Duration::from_secs(100),
            max_ttl: Duration::from_secs(1000),
        };
        assert_eq!(ttl_of(&facts("max-age=1"), &p), Some(10));
        assert_eq!(ttl_of(&facts("max-age=99999"), &p), Some(1000));
        assert_eq!(ttl_of(&facts(""), &p), Some(100));
    }

    #[test]
    fn no_store_no_cache_private() {
        for cc in [
            "no-store",
            "no-cache",
            "private",
            "private, max-age=60",
            "no-cache=\"set-cookie\"",
        ] {
            assert_eq!(ttl_of(&facts(cc), &policy(0)), None, "{cc}");
            assert_eq!(ttl_of(&facts(cc), &policy(30)), Some(30), "{cc} with min_ttl");
        }
    }

    #[test]
    fn set_cookie_vary_authorization() {
        let p = policy(0);
        let mut r = facts("max-age=60");
        r.set_cookie = true;
        assert_eq!(ttl_of(&r, &p), None);
        // Any Vary but `*` is stored (as variants, `vary.rs`).
        let mut r = facts("max-age=60");
        r.vary = Some(b"User-Agent");
        assert!(ttl_of(&r, &p).is_some());
        r.vary = Some(b"accept-encoding, Cookie");
        assert!(ttl_of(&r, &p).is_some());
        r.vary = Some(b"Accept-Encoding, *");
        assert_eq!(ttl_of(&r, &p), None);
        let now = SystemTime::now();
        assert!(lifetime(&facts("max-age=60"), true, &p, None, now).is_none());
        assert!(lifetime(&facts("public, max-age=60"), true, &p, None, now).is_some());
        assert!(lifetime(&facts("s-maxage=60"), true, &p, None, now).is_some());
    }

    #[test]
    fn statuses() {
        let p = policy(0);
        for (st, cached) in [
            (200, true),
            (301, true),
            (404, false), // an error without explicit freshness
            (503, false),
            (302, false),
            (400, false),
            (206, false),
        ] {
            let mut r = facts("");
            r.status = st;
            assert_eq!(ttl_of(&r, &p).is_some(), cached, "{st}");
        }
        // With explicit freshness any final status but 206 and 304.
        for (st, cached) in [
            (302, true),
            (299, true),
            (400, true),
            (206, false),
            (304, false),
            (103, false),
        ] {
            let mut r = facts("max-age=60");
            r.status = st;
            assert_eq!(ttl_of(&r, &p).is_some(), cached, "{st} with max-age");
        }
        // `public` lets a redirect take the default TTL, not an error.
        let mut r = facts("public");
        r.status = 302;
        assert!(ttl_of(&r, &p).is_some());
        r.status = 400;
        assert!(ttl_of(&r, &p).is_none());
    }

    #[test]
    fn must_understand_and_must_revalidate() {
        let p = policy(0);
        let mut r = facts("must-understand, no-store, max-age=60");
        assert_eq!(ttl_of(&r, &p), Some(60));
        r.status = 299;
        assert_eq!(ttl_of(&r, &p), None);
        r.status = 599;
        assert_eq!(ttl_of(&r, &p), None, "an unregistered status is not understood");
        r.status = 503;
        assert_eq!(ttl_of(&r, &p), Some(60));
        let r = facts("max-age=60, stale-while-revalidate=30, stale-if-error=30, must-revalidate");
        let now = SystemTime::now();
        let l = lifetime(&r, true, &p, None, now).expect("must-revalidate allows Authorization");
        assert_eq!(
            (l.stale_while_revalidate, l.stale_if_error),
            (Duration::ZERO, Duration::ZERO)
        );
        assert!(lifetime(&facts("max-age=60"), true, &p, None, now).is_none());
    }

    #[test]
    fn error_pages_use_their_min_ttl() {
        let p = policy(0);
        let mut r = facts("no-store");
        r.status = 503;
        let now = SystemTime::now();
        let l = lifetime(&r, false, &p, Some(Duration::from_secs(10)), now).unwrap();
        assert_eq!(l.ttl, Duration::from_secs(10));
        r.cache_control = Some(b"max-age=30");
        let l = lifetime(&r, false, &p, Some(Duration::from_secs(10)), now).unwrap();
        assert_eq!(l.ttl, Duration::from_secs(30));
    }

    #[test]
    fn stale_directives_and_parsing() {
        let cc =
            parse_cache_control(b"public,  MAX-AGE=\"10\" , stale-while-revalidate=30,stale-if-error=600, x=\"a,b\"");
        assert_eq!(cc.max_age, Some(10));
        assert!(cc.public);
        assert_eq!(cc.stale_while_revalidate, Some(30));
        assert_eq!(cc.stale_if_error, Some(600));
        assert_eq!(parse_cache_control(b"max-age=abc").max_age, Some(0));
        let l = lifetime(
            &facts("max-age=1, stale-if-error=60"),
            false,
            &policy(0),
            None,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(l.stale_if_error, Duration::from_secs(60));
    }

    const MAX: Duration = Duration::from_secs(MAX_DELTA_SECONDS);

    #[test]
    fn delta_seconds_too_large_count_as_2_pow_31() {
        let u64_max = "18446744073709551615";
        let beyond = "99999999999999999999999999999999999999";
        for v in [u64_max, beyond, "2147483648", "2147483649"] {
            let cc = parse_cache_control(format!("max-age={v}, s-maxage={v}").as_bytes());
            assert_eq!((cc.max_age, cc.s_maxage), (Some(1 << 31), Some(1 << 31)), "{v}");
            let cc = parse_cache_control(format!("stale-while-revalidate={v}, stale-if-error=\"{v}\"").as_bytes());
            assert_eq!(cc.stale_while_revalidate, Some(1 << 31), "{v}");
            assert_eq!(cc.stale_if_error, Some(1 << 31), "{v}");
        }
        assert_eq!(parse_cache_control(b"max-age=2147483647").max_age, Some(2147483647));
        // Not delta-seconds: a sign, a fraction, nothing.
        for v in ["+5", "-1", "1.5", "", "1 2"] {
            let cc = parse_cache_control(format!("max-age={v}, stale-if-error={v}").as_bytes());
            assert_eq!((cc.max_age, cc.stale_if_error), (Some(0), None), "{v:?}");
        }
        let p = Policy {
            min_ttl: Duration::ZERO,
            default_ttl: DAY,
            max_ttl: Duration::from_secs(u64::MAX),
        };
        let r = facts("max-age=18446744073709551615, stale-while-revalidate=18446744073709551615, stale-if-error=1e99");
        let l = lifetime(&r, false, &p, None, SystemTime::now()).unwrap();
        assert_eq!(
            (l.ttl, l.stale_while_revalidate, l.stale_if_error),
            (MAX, MAX, Duration::ZERO)
        );
        let l = lifetime(&r, false, &p, Some(Duration::from_secs(u64::MAX)), SystemTime::now()).unwrap();
        assert_eq!(
            l.ttl,
            Duration::from_secs(u64::MAX),
            "error_response min_ttl is the operator's"
        );
    }

    #[test]
    fn expires_minus_date_saturates() {
        let p = Policy {
            min_ttl: Duration::ZERO,
            default_ttl: DAY,
            max_ttl: Duration::from_secs(u64::MAX),
        };
        let mut r = facts("");
        r.date = Some(b"Thu, 01 Jan 1970 00:00:00 GMT");
        r.expires = Some(b"Fri, 31 Dec 9999 23:59:59 GMT");
        let now = SystemTime::UNIX_EPOCH;
        assert_eq!(lifetime(&r, false, &p, None, now).unwrap().ttl, MAX);
        r.date = None;
        assert_eq!(lifetime(&r, false, &p, None, now).unwrap().ttl, MAX);
        // Expires before Date: already stale, whatever the distance.
        r.date = Some(b"Fri, 31 Dec 9999 23:59:59 GMT");
        r.expires = Some(b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(lifetime(&r, false, &p, None, now), None);
    }

    #[test]
    fn errors_need_explicit_freshness() {
        let p = policy(0);
        let error = |status: u16, cc: &'static str| {
            let mut r = facts(cc);
            r.status = status;
            r
        };
        for st in [404, 405, 410, 414, 501, 500, 503] {
            assert_eq!(ttl_of(&error(st, ""), &p), None, "{st} without freshness");
            assert_eq!(ttl_of(&error(st, "max-age=60"), &p), Some(60), "{st} max-age");
            assert_eq!(ttl_of(&error(st, "s-maxage=70"), &p), Some(70), "{st} s-maxage");
            // min_ttl applies to explicit freshness, but does not create it.
            assert_eq!(ttl_of(&error(st, "max-age=0"), &policy(30)), Some(30), "{st}");
            assert_eq!(ttl_of(&error(st, ""), &policy(30)), None, "{st} with min_ttl");
            assert_eq!(ttl_of(&error(st, "no-cache"), &policy(30)), None, "{st} no-cache");
        }
        let mut r = error(404, "");
        r.date = Some(b"Mon, 19 May 1997 00:00:00 GMT");
        r.expires = Some(b"Mon, 19 May 1997 01:00:00 GMT");
        assert_eq!(ttl_of(&r, &p), Some(3600), "Expires is explicit");
        // Successes still get default_ttl.
        assert_eq!(ttl_of(&error(200, ""), &p), Some(86400));
        assert_eq!(ttl_of(&error(301, ""), &p), Some(86400));
        // An error_response's min_ttl against the origin's explicit freshness.
        let now = SystemTime::UNIX_EPOCH + DAY * 10000;
        let ten = Some(Duration::from_secs(10));
        let l = |r: &ResponseFacts<'_>| lifetime(r, false, &p, ten, now).map(|l| l.ttl.as_secs());
        assert_eq!(l(&error(404, "")), Some(10));
        assert_eq!(l(&error(404, "s-maxage=40, max-age=5")), Some(40));
        assert_eq!(l(&r), Some(3600));
    }

    /// RFC 9111 §4.2.3 with an injected clock: the response arrives
    /// max(now − Date, Age) old, whole seconds, at most 2^31 s.
    #[test]
    fn initial_age_is_the_larger_of_apparent_age_and_age() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 10:49:37 GMT").unwrap();
        let date: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT"; // two hours earlier
        let age = |a: Option<&'static str>, d: Option<&[u8]>| initial_age(a.map(str::as_bytes), d, now).as_secs();
        assert_eq!(age(None, None), 0);
        assert_eq!(age(None, Some(date)), 7200);
        assert_eq!(age(Some("60"), Some(date)), 7200);
        assert_eq!(age(Some("9000"), Some(date)), 9000);
        assert_eq!(age(Some("60"), None), 60);
        // A Date ahead of our clock, or not a date, counts as no apparent age.
        assert_eq!(age(Some("5"), Some(b"Sun, 06 Nov 1994 12:00:00 GMT")), 5);
        assert_eq!(age(Some("5"), Some(b"yesterday")), 5);
        // A Date before 1970 - 68 years: still at most 2^31.
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799);
        assert_eq!(
            initial_age(None, Some(b"Thu, 01 Jan 1970 00:00:00 GMT"), far).as_secs(),
            MAX_DELTA_SECONDS
        );
    }

    /// RFC 9111 §5.1: the first member of a list counts; an invalid value
    /// is ignored; RFC 9111 §1.2.2: a huge one is 2^31.
    #[test]
    fn age_values() {
        for (v, want) in [
            ("0", Some(0)),
            ("30", Some(30)),
            (" 30 ", Some(30)),
            ("7200, 0", Some(7200)),
            ("0,7200", Some(0)),
            ("2147483647", Some(2147483647)),
            ("2147483648", Some(MAX_DELTA_SECONDS)),
            ("99999999999999999999", Some(MAX_DELTA_SECONDS)),
            ("abc", None),
            ("-7200", None),
            ("7200.0", None),
            ("+1", None),
            ("", None),
            (",5", None),
            ("1 2", None),
        ] {
            assert_eq!(age_value(v.as_bytes()), want, "{v:?}");
        }
    }

    /// §4.2: "response_is_fresh = (freshness_lifetime > current_age)": the
    /// age on arrival is kept for the store, and a response that arrives
    /// past every window it could be served in is not stored.
    #[test]
    fn age_counts_against_the_lifetime() {
        let p = policy(0);
        let now = SystemTime::UNIX_EPOCH + DAY * 10000;
        let life = |cc: &'static str, age: &'static str| {
            let mut r = facts(cc);
            r.age = Some(age.as_bytes());
            lifetime(&r, false, &p, None, now)
        };
        let l = life("max-age=3600", "3000").unwrap();
        assert_eq!((l.ttl.as_secs(), l.initial_age.as_secs()), (3600, 3000));
        assert_eq!(life("max-age=3600", "3600"), None, "exactly its lifetime: stale");
        assert_eq!(life("max-age=3600", "7200"), None);
        assert_eq!(life("max-age=3600", "2147483648"), None);
        assert_eq!(life("max-age=2147483648", "2147483648"), None, "2^31 against 2^31");
        assert!(life("max-age=3600", "abc").is_some(), "an invalid Age is ignored");
        // Within a stale window: stored, stale on arrival.
        let l = life("max-age=60, stale-while-revalidate=3600", "100").unwrap();
        assert_eq!(l.initial_age.as_secs(), 100);
        assert!(life("max-age=60, stale-if-error=30", "100").is_none());
        assert!(life("max-age=60, stale-if-error=60", "100").is_some());
        // Expires − Date is the lifetime; now − Date the age.
        let mut r = facts("");
        r.date = Some(b"Sun, 06 Nov 1994 08:49:37 GMT");
        r.expires = Some(b"Sun, 06 Nov 1994 11:49:37 GMT");
        let two_hours_later = httpdate::parse_http_date("Sun, 06 Nov 1994 10:49:37 GMT").unwrap();
        let l = lifetime(&r, false, &p, None, two_hours_later).unwrap();
        assert_eq!((l.ttl.as_secs(), l.initial_age.as_secs()), (10800, 7200));
        // default_ttl is a lifetime like any other.
        let mut r = facts("");
        r.age = Some(b"100");
        assert_eq!(lifetime(&r, false, &p, None, now).unwrap().initial_age.as_secs(), 100);
    }

    /// RFC 9213 §2.1: a valid CDN-Cache-Control replaces Cache-Control and
    /// Expires for the cache's own decisions; an invalid one is ignored.
    #[test]
    fn cdn_cache_control_takes_precedence() {
        let p = policy(0);
        let now = SystemTime::UNIX_EPOCH + DAY * 10000;
        let ttl = |cc: &'static str, cdn: &'static str| {
            let mut r = facts(cc);
            r.cdn_cache_control = Some(cdn.as_bytes());
            lifetime(&r, false, &p, None, now).map(|l| l.ttl.as_secs())
        };
        assert_eq!(ttl("max-age=60", "max-age=3600"), Some(3600));
        assert_eq!(ttl("max-age=3600", "max-age=60"), Some(60));
        assert_eq!(ttl("max-age=3600", "s-maxage=10, max-age=60"), Some(10));
        assert_eq!(ttl("max-age=3600", "no-store"), None);
        assert_eq!(ttl("max-age=3600", "private"), None);
        assert_eq!(ttl("max-age=3600", "no-cache"), None);
        assert_eq!(ttl("no-store", "max-age=60"), Some(60));
        assert_eq!(
            ttl("private", "public"),
            Some(86400),
            "default_ttl, Cache-Control ignored"
        );
        // Invalid or empty: Cache-Control decides.
        assert_eq!(ttl("max-age=30", "max-age=\"60\""), Some(30));
        assert_eq!(ttl("no-store", "MAX-AGE=60"), None);
        assert_eq!(ttl("max-age=30", ""), Some(30));
        // Expires is ignored under it, even when Cache-Control is empty.
        let mut r = facts("");
        r.date = Some(b"Mon, 19 May 1997 00:00:00 GMT");
        r.expires = Some(b"Sun, 18 May 1997 23:59:59 GMT");
        r.cdn_cache_control = Some(b"max-age=5");
        assert_eq!(ttl_of(&r, &p), Some(5));
        r.cdn_cache_control = Some(b"public");
        assert_eq!(ttl_of(&r, &p), Some(86400));
        // Authorization: its public or s-maxage, not Cache-Control's.
        let mut r = facts("public, max-age=60");
        r.cdn_cache_control = Some(b"max-age=60");
        assert!(lifetime(&r, true, &p, None, now).is_none());
        r.cache_control = None;
        r.cdn_cache_control = Some(b"public, max-age=60");
        assert!(lifetime(&r, true, &p, None, now).is_some());
        // min_ttl still overrides its no-store (CloudFront).
        let mut r = facts("max-age=60");
        r.cdn_cache_control = Some(b"no-store");
        assert_eq!(ttl_of(&r, &policy(30)), Some(30));
    }
}
