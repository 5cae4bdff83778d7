//! Viewer-side connection handling: keep-alive, HTTP/1.0, pipelining.
mod common;
use common::*;

fn setup() -> (SampleOrigin, Proxy) {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    (o, p)
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let (o, p) = setup();
    let mut c = p.client();
    for i in 0..50 {
        let r = c.get(&format!("/k{i}?size=100"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, pattern_body(100));
        assert_eq!(r.header("via"), Some("1.1 ringfront"));
        assert_eq!(r.header("x-cache"), Some("Miss from ringfront"));
    }
    assert_eq!(o.requests(), 50);
    assert_eq!(o.connections(), 1, "upstream connection was not reused");
}

#[test]
fn http10_closes_unless_keep_alive_asked() {
    let (_o, p) = setup();
    let mut c = p.client();
    c.send(b"GET /a HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());

    let mut c = p.client();
    c.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    c.send(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
}

#[test]
fn http10_viewer_gets_chunked_origin_body_dechunked() {
    let (_o, p) = setup();
    let mut c = p.client();
    c.send(b"GET /c?size=70000&chunked=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert!(!r.has_header("transfer-encoding"));
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, pattern_body(70000));
}

#[test]
fn pipelined_requests_answered_in_order() {
    let (_o, p) = setup();
    let mut c = p.client();
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend_from_slice(format!("GET /p?size={} HTTP/1.1\r\nHost: t\r\n\r\n", 10 + i).as_bytes());
    }
    // A HEAD and a POST with a body in the middle of the pipeline.
    batch.extend_from_slice(b"HEAD /h?size=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    batch.extend_from_slice(b"POST /post HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd");
    batch.extend_from_slice(b"GET /last?size=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(&batch);
    for i in 0..20 {
        let r = c.read_response(false).unwrap();
        assert_eq!(r.body.len(), 10 + i, "response {i} out of order");
    }
    let h = c.read_response(true).unwrap();
    assert_eq!(h.header("content-length"), Some("5000"));
    let post = c.read_response(false).unwrap();
    assert_eq!(post.header("x-received-bytes"), Some("4"));
    let last = c.read_response(false).unwrap();
    assert_eq!(last.body, pattern_body(3));
}

#[test]
fn connection_close_from_viewer_is_honoured() {
    let (_o, p) = setup();
    let mut c = p.client();
    c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());
}

#[test]
fn close_delimited_origin_response_closes_viewer() {
    // An origin body without length: the viewer sees it end by close.
    let addr = one_shot_origin(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
    let p = Proxy::start(&config(&[("o", addr)], "o", ""));
    let mut c = p.client();
    let r = c.get("/");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"until close");
    assert_eq!(r.header("connection"), Some("close"));
}
