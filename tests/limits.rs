//! Viewer-side limits: max_request_head (431), client_header_timeout (408),
//! client_idle_timeout, max_connections.
mod common;
use common::*;
use std::time::{Duration, Instant};

fn proxy_with(server_extra: &str) -> (SampleOrigin, Proxy) {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace(
        "pin_workers = false\n",
        &format!("pin_workers = false\n{server_extra}\n"),
    );
    (o, Proxy::start(&cfg))
}

#[test]
fn oversized_head_gets_431_and_close() {
    let (o, p) = proxy_with("max_request_head = \"2KiB\"");
    let mut c = p.client();
    c.send(format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(3000)).as_bytes());
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 431);
    assert!(c.closed());
    // Just under the limit is fine.
    let mut c = p.client();
    let r = c.get(&format!("/?pad={}", "b".repeat(1500)));
    assert_eq!(r.status, 200);
    assert_eq!(o.requests(), 1);
}

#[test]
fn a_connection_that_never_sends_is_closed_quietly_at_the_header_timeout() {
    let (o, p) = proxy_with("client_header_timeout = \"300ms\"");
    let mut s = std::net::TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let t0 = Instant::now();
    let got = read_until_close(&mut s);
    assert!(got.is_empty(), "sent {:?}", String::from_utf8_lossy(&got));
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(250), "closed too early: {waited:?}");
    assert!(waited < WAIT, "never closed");
    assert_eq!(o.requests(), 0);
}

#[test]
fn slow_head_gets_408_and_close() {
    let (o, p) = proxy_with("client_header_timeout = \"300ms\"");
    let mut c = p.client();
    let t0 = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 408);
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert!(c.closed());
    assert_eq!(o.requests(), 0);
}

#[test]
fn idle_keep_alive_connection_closed_after_idle_timeout() {
    let (_o, p) = proxy_with("client_idle_timeout = \"300ms\"\nclient_header_timeout = \"5s\"");
    let mut c = p.client();
    assert_eq!(c.get("/").status, 200);
    let t0 = Instant::now();
    assert!(c.closed(), "idle connection not closed");
    let idle = t0.elapsed();
    assert!(idle >= Duration::from_millis(250), "closed too early: {idle:?}");
}

#[test]
fn max_connections_makes_accept_wait_without_stalling_open_ones() {
    let (_o, p) = proxy_with("max_connections = 2");
    let mut a = p.client();
    let mut b = p.client();
    assert_eq!(a.get("/a").status, 200);
    assert_eq!(b.get("/b").status, 200);
    // A third connection completes the TCP handshake (backlog) but is not served yet.
    let mut third = p.client();
    third.send(b"GET /c HTTP/1.1\r\nHost: t\r\n\r\n");
    third.s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut one = [0u8; 1];
    let waited = std::io::Read::read(&mut third.s, &mut one);
    assert!(waited.is_err(), "third connection was served beyond max_connections");
    // Existing connections keep working.
    assert_eq!(a.get("/a2").status, 200);
    // Closing one lets the waiting one in.
    drop(b);
    third.s.set_read_timeout(Some(WAIT)).unwrap();
    let r = third.read_response(false).unwrap();
    assert_eq!(r.status, 200);
}

/// Slowloris on the body: a request body that stops arriving is cut at
/// `client_idle_timeout` (the bound on each wait for viewer bytes), and a
/// small body that never completed is never sent to the origin.
#[test]
fn stalled_request_body_is_cut_at_the_idle_timeout() {
    let (o, p) = proxy_with("client_idle_timeout = \"400ms\"\nclient_header_timeout = \"5s\"");
    let mut c = p.client();
    let t0 = Instant::now();
    c.send(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
    if let Some(r) = c.read_response(false) {
        assert!(r.status >= 400, "a cut body got {}", r.status);
    }
    assert!(c.closed());
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(350), "cut too early: {waited:?}");
    assert!(waited < Duration::from_secs(10), "not cut: {waited:?}");
    assert_eq!(o.requests(), 0);
}

/// Slowloris on many connections at once: each is cut by its own header
/// timeout and none stalls a well-behaved client meanwhile.
#[test]
fn many_slow_heads_do_not_stall_a_normal_client() {
    let (o, p) = proxy_with("client_header_timeout = \"500ms\"");
    let mut slow: Vec<Client> = (0..50).map(|_| p.client()).collect();
    for c in slow.iter_mut() {
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
    }
    let mut fine = p.client();
    assert_eq!(fine.get("/ok").status, 200);
    for c in slow.iter_mut() {
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 408);
        assert!(c.closed());
    }
    assert_eq!(o.requests(), 1);
}
