//! The admin listener: /healthz (200, then 503 while draining) and
//! POST /invalidate (exact paths and prefixes).
mod common;
use common::*;
use std::io::{Read, Write};

fn admin(addr: std::net::SocketAddr, req: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn proxy(o: &SampleOrigin) -> Proxy {
    let cfg = config(&[("o", o.addr())], "o", "\n[admin]\nlisten = \"127.0.0.1:0\"\n")
        .replace("cache = false\n", "cache = true\n");
    Proxy::start(&cfg)
}

#[test]
fn healthz_and_invalidate() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = proxy(&o);
    let a = p.admin_addr();
    assert_eq!(
        admin(a, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"),
        (200, "ok\n".into())
    );
    // HEAD: the same status and length, no body.
    assert_eq!(admin(a, "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n"), (200, "".into()));
    assert_eq!(admin(a, "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n"), (200, "".into()));
    let mut c = p.client();
    for path in ["/a.css", "/img/1.png", "/img/2.png", "/img/2.png?v=1"] {
        c.get(path);
        assert_eq!(c.get(path).header("x-cache"), Some("Hit from ringfront"), "{path}");
    }
    let body = "/a.css\n/img/*\n";
    let (st, n) = admin(
        a,
        &format!(
            "POST /invalidate HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!((st, n.as_str()), (200, "4\n"));
    for path in ["/a.css", "/img/1.png"] {
        assert_eq!(c.get(path).header("x-cache"), Some("Miss from ringfront"), "{path}");
    }
    assert_eq!(admin(a, "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n").0, 404);
    assert_eq!(admin(a, "DELETE /invalidate HTTP/1.1\r\nHost: a\r\n\r\n").0, 405);
    assert_eq!(admin(a, "garbage\r\n\r\n").0, 400);
}

#[test]
fn healthz_is_503_while_draining() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let mut p = proxy(&o);
    let a = p.admin_addr();
    let addr = p.addr;
    let slow = std::thread::spawn(move || Client::connect(addr).get("/slow?delay=1500&cc=no-store"));
    eventually("request in flight", || o.requests() == 1);
    unsafe {
        libc::kill(p.pid() as i32, libc::SIGTERM);
    }
    eventually("healthz says draining", || {
        admin(a, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n").0 == 503
    });
    assert_eq!(slow.join().unwrap().status, 200);
    assert!(p.terminate().success());
}
