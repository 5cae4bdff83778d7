//! Upstream failures of a single-origin target: 502 on exhausted connects, 504
//! on a response timeout, Proxy-Status, and the retry of a stale pooled connection.
mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn exhausted_connects_give_502_with_proxy_status() {
    let p = Proxy::start(&config(&[("dead", refused_addr())], "dead", ""));
    let r = p.client().get("/");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-cache"), Some("Error from ringfront"));
    let ps = r.header("proxy-status").expect("proxy-status");
    // connection_attempts = 2 in the test config: two members.
    assert_eq!(ps.matches("error=connection_refused").count(), 2, "{ps}");
    assert!(ps.contains("next-hop=\"dead\""));
}

#[test]
fn stalled_origin_gives_504_after_response_timeout() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace("response_timeout = \"20s\"", "response_timeout = \"400ms\"");
    let p = Proxy::start(&cfg);
    let t0 = Instant::now();
    let r = p.client().get("/?fail=stall");
    let took = t0.elapsed();
    assert_eq!(r.status, 504);
    assert!(took >= Duration::from_millis(380), "504 after {took:?}");
    assert!(r
        .header("proxy-status")
        .unwrap()
        .contains("error=http_response_timeout"));
}

#[test]
fn origin_wide_stall_mode_also_times_out() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    o.set_mode(Mode::Stall);
    let cfg = config(&[("o", o.addr())], "o", "").replace("response_timeout = \"20s\"", "response_timeout = \"200ms\"");
    let p = Proxy::start(&cfg);
    assert_eq!(p.client().get("/").status, 504);
}

#[test]
fn origin_reset_before_response_gives_502() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let r = p.client().get("/?fail=reset");
    assert_eq!(r.status, 502);
    assert!(r.header("proxy-status").unwrap().contains("http_response_incomplete"));
    let r = p.client().get("/?fail=reset_mid_head");
    assert_eq!(r.status, 502);
}

#[test]
fn origin_closing_mid_body_aborts_viewer_connection() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let mut c = p.client();
    c.send(b"GET /?size=200000&fail=close_mid_body HTTP/1.1\r\nHost: t\r\n\r\n");
    // Head arrives with Content-Length 200000, then the connection ends short.
    let all = read_until_close(&mut c.s);
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(all.starts_with(b"HTTP/1.1 200"));
    assert!(
        all.len() - head_end < 200000,
        "got a full body from a cut origin response"
    );
}

#[test]
fn refuse_mode_gives_502_and_recovers() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    assert_eq!(p.client().get("/").status, 200);
    o.set_mode(Mode::Refuse);
    assert_eq!(p.client().get("/?x=1").status, 502);
    o.set_mode(Mode::Normal);
    assert_eq!(p.client().get("/?x=2").status, 200);
}

#[test]
fn stale_pooled_connection_is_retried_once_on_a_fresh_one() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let mut c = p.client();
    // The origin answers keep-alive, then closes: the pooled connection is stale.
    assert_eq!(c.get("/?drop_after=1").status, 200);
    eventually("origin closed its side", || o.connections() == 1);
    let r = c.get("/second");
    assert_eq!(r.status, 200, "{:?}", r);
    assert!(
        !r.has_header("proxy-status"),
        "a stale pooled connection is not a failed attempt"
    );
    assert_eq!(o.connections(), 2);
    assert_eq!(o.requests(), 2);
}
