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

#[test]
fn a_connection_that_failed_its_send_after_a_failover_is_not_pooled_for_the_primary() {
    // The primary answers 503 in full (its connection goes back to its
    // pool); the secondary's pooled connection was reset, so the send on it
    // fails and a fresh one is made. The failed connection must not be
    // filed under the primary, whose next request would then pick it.
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let proxy = Proxy::start(&config(
        &[("primary", p.addr()), ("secondary", s.addr())],
        "site",
        GROUP,
    ));
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
