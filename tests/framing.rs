//! Strict request framing over real sockets: every ambiguous request gets 400,
//! the connection is closed, and nothing of it reaches the origin.
mod common;
use common::*;

const BAD: &[&[u8]] = &[
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxxxx",
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-Nul: a\0b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nX-Cr: a\rb\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
];

#[test]
fn ambiguous_framing_is_400_close_and_never_forwarded() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    for req in BAD {
        let mut c = p.client();
        c.send(req);
        let r = c.read_response(false).expect("an answer");
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(req));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(
            c.closed(),
            "connection left open after {:?}",
            String::from_utf8_lossy(req)
        );
    }
    assert_eq!(
        o.requests(),
        0,
        "a rejected request reached the origin: {:?}",
        o.control().heads()
    );
}

#[test]
fn invalid_chunk_sizes_never_complete_at_the_origin() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    for body in [
        &b"zz\r\nhello\r\n0\r\n\r\n"[..],
        b"11111111111111111\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5;\nhello\r\n",
    ] {
        let mut c = p.client();
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.send(body);
        // The proxy closes the connection: no response claims the body was fine.
        match c.read_response(false) {
            None => {}
            Some(r) => assert_ne!(r.status, 200, "{:?}", String::from_utf8_lossy(body)),
        }
    }
    // The origin never saw a complete request body.
    assert!(o.control().heads().len() <= 4);
    // Smuggled follow-up requests never arrived as requests of their own.
    assert!(o.control().heads().iter().all(|h| h.starts_with("POST /up")));
}
