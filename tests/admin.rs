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

/// An invalidation of 40,000 paths over 10,000 stored objects does not stop
/// the worker: hits on other keys keep being answered while it runs (each
/// key costs a few hash lookups, and shards are walked in batches with the
/// lock released between them).
#[test]
fn invalidating_forty_thousand_paths_does_not_stall_hits() {
    let o = SampleOrigin::start_threads("127.0.0.1:0", "o", 2).unwrap();
    let p = proxy(&o);
    let a = p.admin_addr();
    let addr = p.addr;
    let fillers: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in (t..10_000).step_by(4) {
                    assert_eq!(c.get(&format!("/o/{i}?size=10&cc=max-age=600")).status, 200);
                }
            })
        })
        .collect();
    for f in fillers {
        f.join().unwrap();
    }
    let mut hot = p.client();
    assert_eq!(hot.get("/hot?size=10&cc=max-age=600").status, 200);
    let mut body = String::new();
    for i in 0..39_998 {
        body.push_str(&format!("/nothing/{i}\n"));
    }
    body.push_str("/o/5?size=10&cc=max-age=600\n/o/99*\n");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let admin_call = {
        let done = done.clone();
        std::thread::spawn(move || {
            let r = admin(
                a,
                &format!(
                    "POST /invalidate HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                ),
            );
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            r
        })
    };
    let mut worst = std::time::Duration::ZERO;
    let mut hits = 0;
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let t = std::time::Instant::now();
        let r = hot.get("/hot?size=10&cc=max-age=600");
        worst = worst.max(t.elapsed());
        assert_eq!(r.header("x-cache"), Some("Hit from ringfront"));
        hits += 1;
    }
    let (status, text) = admin_call.join().unwrap();
    assert_eq!(status, 200, "{text}");
    // /o/5 and /o/99, /o/990..=999, /o/9900..=9999: 1 + 1 + 10 + 100.
    assert!(text.contains("112"), "{text}");
    eprintln!("{hits} hits during the invalidation, slowest {worst:?}");
    assert!(
        worst < std::time::Duration::from_millis(50),
        "a hit waited {worst:?} during the invalidation"
    );
}
