//! Freshness rules, stale windows and Range planning on origin-sent numbers.
//!
//! Input: 33 bytes of numbers (status, flags, policy, clock), then eight
//! newline-separated fields (Cache-Control, Expires, Date, Vary, Range,
//! If-None-Match, Age, CDN-Cache-Control), each used when its flag is set;
//! the rest is the body.
//!
//! Invariants beyond "no panic": without an `error_response`,
//! `min_ttl <= ttl <= max(max_ttl, min_ttl)`; with one, `ttl >= its min_ttl`;
//! every duration taken from the origin is at most 2^31 s (the policy's own
//! bounds aside), the initial age included; what is stored arrived younger
//! than the end of its longest window; an error is stored only with explicit
//! freshness; the stale windows contain the fresh one and Cache-Status's ttl
//! agrees with it; a 206 lies inside the body and its head says so.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringfront::cache::freshness::{lifetime, parse_cache_control, Policy, ResponseFacts, MAX_DELTA_SECONDS};
use ringfront::cache::serve::{self, HitKind};
use ringfront::cache::store::Object;
use ringfront::cache::targeted;
use std::time::{Duration, Instant, SystemTime};

const MAX: Duration = Duration::from_secs(MAX_DELTA_SECONDS);
/// A duration as a config file writes it (milliseconds).
const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn u64_at(d: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[i..i + 8]);
    u64::from_le_bytes(b)
}

/// The behavior's TTLs as validation allows them: min <= default <= max.
fn policy(a: u64, b: u64, c: u64) -> Policy {
    let mut v = [a, b, c];
    v.sort_unstable();
    Policy {
        min_ttl: ms(v[0]),
        default_ttl: ms(v[1]),
        max_ttl: ms(v[2]),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 33 {
        return;
    }
    let (nums, rest) = data.split_at(33);
    let status = u16::from_le_bytes([nums[0], nums[1]]);
    let (flags, flags2) = (nums[2], nums[32]);
    let p = policy(u64_at(nums, 3) >> 8, u64_at(nums, 11) >> 8, u64_at(nums, 19) >> 8);
    let error_min_ttl = (flags & 4 != 0).then(|| ms(u64::from(nums[27]) * 1000));
    // From 1970 to the end of 9999, where HTTP dates end.
    let clock = u64::from(u32::from_le_bytes([nums[28], nums[29], nums[30], 0]));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(clock * 15_104);
    let elapsed = Duration::from_millis(u64::from(nums[31]) * 100);

    let mut fields = rest.splitn(9, |&b| b == b'\n');
    let mut field = |on: bool| fields.next().filter(|_| on);
    let (cc, expires) = (field(flags & 8 != 0), field(flags & 16 != 0));
    let (date, vary) = (field(flags & 32 != 0), field(flags & 64 != 0));
    let (range, inm) = (field(flags2 & 1 != 0), field(flags2 & 2 != 0));
    let (age, cdn) = (field(flags2 & 8 != 0), field(flags2 & 16 != 0));
    let body = fields.next().unwrap_or(&[]);

    let targeted = cdn.and_then(targeted::parse);
    let parsed = targeted.unwrap_or_else(|| cc.map(parse_cache_control).unwrap_or_default());
    for v in [
        parsed.max_age,
        parsed.s_maxage,
        parsed.stale_while_revalidate,
        parsed.stale_if_error,
    ] {
        assert!(v.unwrap_or(0) <= MAX_DELTA_SECONDS, "{parsed:?}");
    }
    let facts = ResponseFacts {
        status,
        cache_control: cc,
        expires,
        date,
        vary,
        set_cookie: flags & 1 != 0,
        cdn_cache_control: cdn,
        age,
    };
    let life = lifetime(&facts, flags & 2 != 0, &p, error_min_ttl, now);
    if let Some(l) = life {
        assert!(!facts.set_cookie);
        match error_min_ttl {
            None => assert!(p.min_ttl <= l.ttl && l.ttl <= p.max_ttl.max(p.min_ttl), "{l:?} {p:?}"),
            Some(min) => assert!(min <= l.ttl && l.ttl <= min.max(MAX), "{l:?} {min:?}"),
        }
        assert!(l.stale_while_revalidate <= MAX && l.stale_if_error <= MAX, "{l:?}");
        assert!(l.initial_age <= MAX, "{l:?}");
        let longest = l.ttl.saturating_add(l.stale_while_revalidate.max(l.stale_if_error));
        assert!(l.initial_age < longest, "stored though past every window: {l:?}");
        if status >= 400 && error_min_ttl.is_none() {
            // Under a valid CDN-Cache-Control, Expires counts for nothing.
            let expires = expires.filter(|_| targeted.is_none());
            let explicit = parsed.max_age.is_some() || parsed.s_maxage.is_some() || expires.is_some();
            assert!(explicit, "error {status} stored without explicit freshness: {l:?}");
        }
    }
    // Without a lifetime, the object takes the policy's extremes instead.
    let (ttl, swr, sie, initial_age) = life.map_or((p.max_ttl, p.min_ttl, p.max_ttl, MAX), |l| {
        (l.ttl, l.stale_while_revalidate, l.stale_if_error, l.initial_age)
    });
    let stored = Instant::now();
    let obj = Object {
        head: bytes::Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nETag: \"e\""),
        body: bytes::Bytes::copy_from_slice(body),
        status: if flags2 & 4 != 0 { 200 } else { status },
        stored,
        initial_age,
        ttl,
        stale_while_revalidate: swr,
        stale_if_error: sie,
        etag: Some(bytes::Bytes::from_static(b"\"e\"")),
        last_modified: None,
    };
    check_windows(&obj, stored + elapsed);
    check_windows(&obj, stored.checked_sub(elapsed).unwrap_or(stored));
    check_plan(&obj, inm, range);
});

fn check_windows(obj: &Object, at: Instant) {
    let fresh = obj.is_fresh(at);
    let swr = obj.may_serve_while_revalidating(at);
    let sie = obj.may_serve_on_error(at);
    assert!(!fresh || (swr && sie), "a fresh object outside its stale windows");
    let left = obj.ttl_left_secs(at);
    assert!(
        if fresh { left >= 0 } else { left <= 0 },
        "fresh {fresh}, ttl left {left}"
    );
}

fn check_plan(obj: &Object, inm: Option<&[u8]>, range: Option<&[u8]>) {
    let kind = serve::plan(obj, inm, None, range);
    let len = obj.body.len();
    let mut head = Vec::new();
    serve::write_head(&mut head, obj, &kind);
    let sent = serve::body(obj, &kind);
    match &kind {
        HitKind::Partial(r) => {
            assert!(obj.status == 200 && r.start < r.end && r.end <= len, "{r:?} of {len}");
            assert_eq!(sent.len(), r.len());
            let want = format!(
                "Content-Range: bytes {}-{}/{len}\r\nContent-Length: {}\r\n",
                r.start,
                r.end - 1,
                r.len()
            );
            assert!(head.ends_with(want.as_bytes()), "{}", String::from_utf8_lossy(&head));
        }
        HitKind::Unsatisfiable => {
            assert_eq!(obj.status, 200);
            assert!(sent.is_empty() && head.starts_with(b"HTTP/1.1 416 "));
        }
        HitKind::NotModified => assert!(sent.is_empty() && head.starts_with(b"HTTP/1.1 304 ")),
        HitKind::Full => assert_eq!(sent.len(), len),
    }
}
