//! Origin groups over real sockets: every failure mode of the primary sends
//! the request to the secondary, per SPEC §3.5, and nothing else does.
mod common;
use common::*;
use std::time::{Duration, Instant};

struct Setup {
    p: SampleOrigin,
    s: SampleOrigin,
    proxy: Proxy,
}

fn setup() -> Setup {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let proxy = Proxy::start(&config(
        &[("primary", p.addr()), ("secondary", s.addr())],
        "site",
        GROUP,
    ));
    Setup { p, s, proxy }
}

#[test]
fn refused_primary_fails_over_after_its_connection_attempts() {
    let t = setup();
    t.p.set_mode(Mode::Refuse);
    let r = t.proxy.client().get("/x");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-origin"), Some("secondary"));
    let ps = r.header("proxy-status").unwrap();
    assert_eq!(
        ps.matches("error=connection_refused; next-hop=\"primary\"").count(),
        2,
        "{ps}"
    );
    assert_eq!(t.s.requests(), 1);
}

#[test]
fn blackholed_primary_fails_over_after_attempts_times_connect_timeout() {
    let bh = Blackhole::new();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let cfg = config(&[("primary", bh.addr), ("secondary", s.addr())], "site", GROUP).replacen(
        "connection_timeout = \"5s\"",
        "connection_timeout = \"200ms\"",
        1,
    );
    let proxy = Proxy::start(&cfg);
    let t0 = Instant::now();
    let r = proxy.client().get("/x");
    let took = t0.elapsed();
    eprintln!("blackholed primary, attempts=2, connection_timeout=200ms: secondary answered after {took:?}");
    assert_eq!(r.header("x-origin"), Some("secondary"));
    assert!(
        took >= Duration::from_millis(390),
        "failover after {took:?}, before 2 x 200ms"
    );
    assert!(took < Duration::from_millis(3000), "failover after {took:?}");
    let ps = r.header("proxy-status").unwrap();
    assert_eq!(ps.matches("error=connection_timeout").count(), 2, "{ps}");
}

#[test]
fn stalled_primary_fails_over_after_response_timeout() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let cfg = config(&[("primary", p.addr()), ("secondary", s.addr())], "site", GROUP).replacen(
        "response_timeout = \"20s\"",
        "response_timeout = \"300ms\"",
        1,
    );
    let proxy = Proxy::start(&cfg);
    let t0 = Instant::now();
    let r = proxy.client().get("/x?primary.fail=stall");
    assert!(t0.elapsed() >= Duration::from_millis(290));
    assert_eq!(r.header("x-origin"), Some("secondary"));
    assert!(r
        .header("proxy-status")
        .unwrap()
        .contains("error=http_response_timeout; next-hop=\"primary\""));
}

#[test]
fn each_failover_status_goes_to_the_secondary_and_others_do_not() {
    let t = setup();
    let mut c = t.proxy.client();
    for st in [500, 502, 503, 504] {
        let r = c.get(&format!("/s?primary.status={st}"));
        assert_eq!(r.status, 200, "status {st}");
        assert_eq!(r.header("x-origin"), Some("secondary"));
        assert!(r
            .header("proxy-status")
            .unwrap()
            .contains(&format!("received-status={st}")));
    }
    for st in [404, 403, 501, 200, 301] {
        let r = c.get(&format!("/n?primary.status={st}"));
        assert_eq!(r.status, st);
        assert_eq!(r.header("x-origin"), Some("primary"));
        assert!(!r.has_header("proxy-status"));
    }
    assert_eq!(t.s.requests(), 4);
}

#[test]
fn post_gets_the_primarys_503_and_never_reaches_the_secondary() {
    let t = setup();
    let mut c = t.proxy.client();
    c.send(b"POST /p?primary.status=503 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-origin"), Some("primary"));
    assert_eq!(r.header("x-cache"), Some("Error from ringfront"));
    assert_eq!(t.s.requests(), 0);
    // OPTIONS and HEAD do fail over.
    c.send(b"OPTIONS /o?primary.status=503 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().header("x-origin"), Some("secondary"));
    c.send(b"HEAD /h?primary.status=503 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(true).unwrap().header("x-origin"), Some("secondary"));
}

#[test]
fn every_request_starts_at_the_primary() {
    let t = setup();
    let mut c = t.proxy.client();
    assert_eq!(c.get("/a?primary.status=503").header("x-origin"), Some("secondary"));
    assert_eq!(c.get("/b").header("x-origin"), Some("primary"));
    assert_eq!(c.get("/c?primary.status=503").header("x-origin"), Some("secondary"));
    assert_eq!(c.get("/d").header("x-origin"), Some("primary"));
    assert_eq!(t.p.requests(), 4);
    assert_eq!(t.s.requests(), 2);
}

#[test]
fn primary_reset_before_or_inside_the_head_fails_over() {
    let t = setup();
    let mut c = t.proxy.client();
    for fail in ["reset", "reset_mid_head", "close"] {
        let r = c.get(&format!("/r?primary.fail={fail}"));
        assert_eq!(r.header("x-origin"), Some("secondary"), "{fail}");
        assert!(r.header("proxy-status").unwrap().contains("next-hop=\"primary\""));
    }
}

#[test]
fn primary_closing_mid_body_aborts_the_viewer_and_skips_the_secondary() {
    let t = setup();
    let mut c = t.proxy.client();
    c.send(b"GET /m?size=300000&primary.fail=close_mid_body HTTP/1.1\r\nHost: t\r\n\r\n");
    let all = read_until_close(&mut c.s);
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200"));
    assert!(text.contains("X-Origin: primary"));
    assert!(all.len() < 300000, "a cut response was completed");
    assert_eq!(t.s.requests(), 0);
}

#[test]
fn both_down_gives_502_or_504() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let cfg = config(&[("primary", p.addr()), ("secondary", s.addr())], "site", GROUP)
        .replace("response_timeout = \"20s\"", "response_timeout = \"300ms\"");
    let proxy = Proxy::start(&cfg);
    let r = proxy.client().get("/x?fail=stall");
    assert_eq!(r.status, 504);
    let ps = r.header("proxy-status").unwrap();
    assert!(
        ps.contains("next-hop=\"primary\"") && ps.contains("next-hop=\"secondary\""),
        "{ps}"
    );
    p.set_mode(Mode::Refuse);
    s.set_mode(Mode::Refuse);
    let r = proxy.client().get("/y");
    assert_eq!(r.status, 502);
    assert_eq!(
        r.header("proxy-status").unwrap().matches("connection_refused").count(),
        4
    );
    // The secondary's own failover status is its answer.
    p.set_mode(Mode::Normal);
    s.set_mode(Mode::Normal);
    let r = proxy.client().get("/z?status=503");
    assert_eq!(r.status, 503);
    assert_eq!(r.header("x-origin"), Some("secondary"));
}

#[test]
fn a_connection_that_failed_its_send_after_a_failover_is_not_pooled_for_the_primary() {
    // The primary answers 503 in full (its connection goes back to its
    // pool); the secondary's pooled connection was reset, so the send on it
    // fails and a fresh one is made. The failed connection must not be
    // filed under the primary, whose next request would then pick it.
    let Setup { p, s, proxy } = setup();
    let mut c = proxy.client();
    let r = c.get("/a?primary.status=503&secondary.drop_after=reset");
    assert_eq!(r.header("x-origin"), Some("secondary"));
    eventually("the secondary reset its connection", || s.resets() == 1);
    let r = c.get("/b?primary.status=503");
    assert_eq!(r.header("x-origin"), Some("secondary"));
    assert_eq!((p.connections(), s.connections()), (1, 2));
    // The primary's next request reuses the primary's own connection.
    let r = c.get("/c");
    assert_eq!(r.header("x-origin"), Some("primary"));
    assert_eq!(p.connections(), 1, "the primary's pool held a dead connection");
}
