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
