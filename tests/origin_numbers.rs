//! Numbers an origin sends are hostile (SPEC §3.5): delta-seconds too large
//! for any integer must not crash the proxy once the object goes stale.
mod common;
use common::*;
use std::time::{Duration, Instant};

/// u64::MAX seconds, which overflowed `ttl + stale window` as a `Duration`.
const HUGE: &str = "18446744073709551615";

fn cached(o: &SampleOrigin) -> Proxy {
    let cfg = config(&[("o", o.addr())], "o", "").replace("cache = false\n", "cache = true\n");
    Proxy::start(&cfg)
}

/// Stores `url` (max-age=1) and waits until it is stale: at least 1.1 s
/// after the response arrived, so after the proxy received the request.
fn store_then_let_expire(p: &Proxy, url: &str) -> Response {
    let first = p.client().get(url);
    assert_eq!(
        first.header("x-cache"),
        Some("Miss from ringfront"),
        "{:?}",
        first.headers
    );
    let t0 = Instant::now();
    eventually("the object goes stale", || t0.elapsed() > Duration::from_millis(1100));
    first
}

/// The proxy still answers on a fresh connection.
fn still_alive(p: &Proxy) {
    assert_eq!(p.client().get("/alive").status, 200, "the proxy died");
}

#[test]
fn a_huge_stale_while_revalidate_is_served_stale_without_a_crash() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let url = format!("/swr?size=100&cc=max-age=1,%20stale-while-revalidate={HUGE}");
    let first = store_then_let_expire(&p, &url);
    let r = get_or_none(&p, &url).unwrap_or_else(|| panic!("no response; proxy log:\n{}", p.log_text()));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-cache"), Some("Hit from ringfront"), "{:?}", r.headers);
    assert_eq!(r.body, first.body);
    still_alive(&p);
}

#[test]
fn a_huge_stale_if_error_serves_the_stale_object_on_a_503_without_a_crash() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let url = format!("/sie?size=100&cc=max-age=1,%20stale-if-error={HUGE}");
    let first = store_then_let_expire(&p, &url);
    o.set_mode(Mode::Unavailable);
    let r = get_or_none(&p, &url).unwrap_or_else(|| panic!("no response; proxy log:\n{}", p.log_text()));
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.body, first.body);
    let cs = r.header("cache-status").unwrap_or("");
    assert!(cs.contains("fwd=stale; fwd-status=503"), "{cs}");
    o.set_mode(Mode::Normal);
    still_alive(&p);
}

/// A GET that reports a closed connection as `None` (the proxy died).
fn get_or_none(p: &Proxy, path: &str) -> Option<Response> {
    let mut c = p.client();
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    c.read_response(false)
}
