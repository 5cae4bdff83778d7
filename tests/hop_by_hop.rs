//! Hop-by-hop headers are not forwarded either way; Via and X-Forwarded-For are added.
mod common;
use common::*;

#[test]
fn request_hop_by_hop_removed_and_forwarding_headers_added() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let mut c = p.client();
    c.send(
        b"GET /h?echo=1 HTTP/1.1\r\nHost: site.example\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\n\
Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\n\
Proxy-Authorization: Basic eDp5\r\nX-Forwarded-For: 203.0.113.7\r\nX-End: kept\r\n\r\n",
    );
    let r = c.read_response(false).unwrap();
    let seen = r.text();
    for gone in [
        "Connection:",
        "X-Private",
        "Keep-Alive",
        "TE:",
        "Trailer",
        "Upgrade",
        "Proxy-Connection",
        "Proxy-Authorization",
    ] {
        assert!(!seen.contains(gone), "{gone} reached the origin:\n{seen}");
    }
    assert!(
        seen.starts_with("GET /h?echo=1 HTTP/1.1\r\nHost: site.example\r\n"),
        "{seen}"
    );
    assert!(seen.contains("X-End: kept\r\n"));
    assert!(seen.contains("X-Forwarded-For: 203.0.113.7, 127.0.0.1\r\n"), "{seen}");
    assert!(seen.contains("Via: 1.1 ringfront\r\n"));
}

#[test]
fn response_hop_by_hop_removed() {
    let addr = one_shot_origin(
        b"HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=9\r\nTrailer: X-T\r\nUpgrade: h2c\r\nProxy-Connection: keep-alive\r\nX-Public: p\r\nContent-Length: 2\r\n\r\nok",
    );
    let p = Proxy::start(&config(&[("o", addr)], "o", ""));
    let r = p.client().get("/");
    assert_eq!(r.body, b"ok");
    for gone in ["x-secret", "keep-alive", "trailer", "upgrade", "proxy-connection"] {
        assert!(!r.has_header(gone), "{gone} reached the viewer: {:?}", r.headers);
    }
    assert_eq!(r.header("x-public"), Some("p"));
    assert_eq!(r.header("via"), Some("1.1 ringfront"));
}

#[test]
fn host_header_override() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace(
        "response_timeout = \"20s\"\n",
        "response_timeout = \"20s\"\nhost_header = \"origin.internal\"\n",
    );
    let p = Proxy::start(&cfg);
    let r = p.client().get("/?echo=1");
    assert!(r.text().contains("Host: origin.internal\r\n"), "{}", r.text());
}
