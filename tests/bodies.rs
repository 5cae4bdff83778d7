//! Bodies both ways: Content-Length and chunked, streamed, 100-continue, and
//! a 100 MiB body with the proxy's memory staying far below it.
mod common;
use common::*;
use std::io::{Read, Write};

fn setup() -> (SampleOrigin, Proxy) {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    (o, p)
}

fn sum(b: &[u8]) -> u64 {
    b.iter().map(|&x| x as u64).sum()
}

#[test]
fn small_and_large_content_length_request_bodies() {
    let (_o, p) = setup();
    let mut c = p.client();
    for size in [1usize, 1000, 64 * 1024, 64 * 1024 + 1, 3 << 20] {
        let body = pattern_body(size);
        c.send(format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {size}\r\n\r\n").as_bytes());
        c.send(&body);
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200, "size {size}");
        assert_eq!(r.header("x-received-bytes"), Some(size.to_string().as_str()));
        assert_eq!(r.header("x-received-sum"), Some(sum(&body).to_string().as_str()));
    }
}

#[test]
fn chunked_request_body_streamed() {
    let (_o, p) = setup();
    let mut c = p.client();
    let body = pattern_body(200_000);
    c.send(b"PUT /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for part in body.chunks(7000) {
        c.send(format!("{:x}\r\n", part.len()).as_bytes());
        c.send(part);
        c.send(b"\r\n");
    }
    c.send(b"0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("x-received-bytes"), Some("200000"));
    assert_eq!(r.header("x-received-sum"), Some(sum(&body).to_string().as_str()));
    // The connection is still usable.
    assert_eq!(c.get("/after").status, 200);
}

#[test]
fn expect_100_continue() {
    let (_o, p) = setup();
    for size in [10usize, 500_000] {
        let mut c = p.client();
        c.send(
            format!("POST /e HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {size}\r\n\r\n").as_bytes(),
        );
        // The proxy asks for the body before the client sends it.
        let mut got = Vec::new();
        let mut b = [0u8; 256];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = c.s.read(&mut b).unwrap();
            assert!(n > 0, "closed before 100 Continue");
            got.extend_from_slice(&b[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 100 Continue\r\n"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        c.send(&pattern_body(size));
        let r = c.read_response(false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-received-bytes"), Some(size.to_string().as_str()));
    }
}

#[test]
fn chunked_and_sized_responses() {
    let (_o, p) = setup();
    let mut c = p.client();
    let r = c.get("/r?size=300000&chunked=1");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, pattern_body(300000));
    let r = c.get("/r?size=300000");
    assert_eq!(r.body, pattern_body(300000));
    c.send(b"HEAD /r?size=300000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.header("content-length"), Some("300000"));
    let r = c.get("/r?status=204");
    assert_eq!(r.status, 204);
    assert_eq!(c.get("/r?size=1").body, pattern_body(1));
}

#[test]
fn hundred_mib_each_way_with_bounded_rss() {
    let (_o, p) = setup();
    const N: usize = 100 << 20;
    let rss_before = p.status_kib("VmRSS");
    // Download.
    let mut c = p.client();
    c.send(format!("GET /big?size={N} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    let mut head = Vec::new();
    let mut b = vec![0u8; 1 << 16];
    let mut body_read;
    loop {
        let n = c.s.read(&mut b).unwrap();
        assert!(n > 0);
        head.extend_from_slice(&b[..n]);
        if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            body_read = head.len() - i - 4;
            break;
        }
    }
    let mut checked = pattern_body(1 << 16);
    while body_read < N {
        let n = c.s.read(&mut b).unwrap();
        assert!(n > 0, "EOF after {body_read} bytes");
        body_read += n;
    }
    assert_eq!(body_read, N);
    // Upload.
    let mut c = p.client();
    c.send(format!("POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: {N}\r\n\r\n").as_bytes());
    checked.truncate(1 << 16);
    let mut sent = 0;
    while sent < N {
        let n = (N - sent).min(checked.len());
        c.s.write_all(&checked[..n]).unwrap();
        sent += n;
    }
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("x-received-bytes"), Some(N.to_string().as_str()));
    let peak = p.status_kib("VmHWM");
    // Far below 100 MiB: the bodies were streamed, not buffered.
    assert!(peak < 32 * 1024, "proxy peak RSS {peak} KiB (before: {rss_before} KiB)");
}
