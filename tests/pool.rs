//! The upstream pool: connections are reused, bounded, and per worker.
mod common;
use common::*;

#[test]
fn ten_thousand_requests_over_eight_viewer_connections_use_few_origin_connections() {
    let o = SampleOrigin::start_threads("127.0.0.1:0", "o", 2).unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace("workers = 1", "workers = 2");
    let p = Proxy::start(&cfg);
    let addr = p.addr;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for i in 0..1250 {
                    let r = c.get(&format!("/t{t}/{i}?size=64"));
                    assert_eq!(r.status, 200);
                    assert_eq!(r.body.len(), 64);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(o.requests(), 10_000);
    let conns = o.connections();
    assert!(conns <= 16, "{conns} origin connections for 8 viewer connections");
}

#[test]
fn max_idle_connections_bounds_the_pool() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace(
        "response_timeout = \"20s\"\n",
        "response_timeout = \"20s\"\nmax_idle_connections = 1\n",
    );
    let p = Proxy::start(&cfg);
    // Three concurrent slow requests need three origin connections.
    let addr = p.addr;
    let hs: Vec<_> = (0..3)
        .map(|i| std::thread::spawn(move || Client::connect(addr).get(&format!("/s{i}?delay=300")).status))
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(o.connections(), 3);
    // Only one was kept: sequential requests now reuse it and open at most... none.
    let mut c = p.client();
    for _ in 0..5 {
        assert_eq!(c.get("/again").status, 200);
    }
    assert_eq!(o.connections(), 3, "the one idle connection was not reused");
}

#[test]
fn keepalive_timeout_closes_idle_origin_connections() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace(
        "response_timeout = \"20s\"\n",
        "response_timeout = \"20s\"\nkeepalive_timeout = \"100ms\"\n",
    );
    let p = Proxy::start(&cfg);
    let mut c = p.client();
    assert_eq!(c.get("/").status, 200);
    // After the keepalive timeout the pooled connection is not used again.
    let t0 = std::time::Instant::now();
    eventually("keepalive timeout passes", || {
        t0.elapsed() > std::time::Duration::from_millis(150)
    });
    assert_eq!(c.get("/").status, 200);
    assert_eq!(o.connections(), 2);
}

/// A non-idempotent request is never sent twice (RFC 9110 §9.2.2: a proxy
/// MUST NOT automatically retry one): it does not take a pooled connection,
/// whose failure before any response byte would otherwise be retried on a
/// fresh one.
#[test]
fn a_post_is_never_replayed_on_a_fresh_connection() {
    use common::scripted::{Reply, ScriptedOrigin};
    let o = ScriptedOrigin::start(|head| {
        if head.starts_with("POST") {
            // Read, then close without answering (as a keep-alive
            // connection the origin timed out would).
            Reply {
                close: true,
                ..Default::default()
            }
        } else {
            Reply::now(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
    });
    let p = Proxy::start(&config(&[("o", o.addr)], "o", ""));
    let mut c = p.client();
    assert_eq!(c.get("/warm").status, 200); // leaves a pooled connection
    c.send(b"POST /transfer HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    let r = c.read_response(false).expect("an answer");
    assert_eq!(r.status, 502);
    let posts = o.request_lines().iter().filter(|l| l.starts_with("POST")).count();
    assert_eq!(posts, 1, "the POST reached the origin {posts} times");
    // Idempotent requests still reuse the pool.
    let mut c = p.client();
    assert_eq!(c.get("/again").status, 200);
}
