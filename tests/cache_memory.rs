//! The cache's memory stays within its capacity, responses still being
//! recorded included (SPEC §4, issue 12).
mod common;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

/// 160 viewers ask for 15 MiB misses and never read: what is being
/// recorded for the cache counts against capacity, so past the share for
/// recordings a response streams through unrecorded, and the proxy's RSS
/// stays under capacity + 64 MiB.
#[test]
fn non_reading_viewers_of_large_misses_stay_within_capacity() {
    let o = SampleOrigin::start_threads("127.0.0.1:0", "o", 4).unwrap();
    let cfg = config(
        &[("o", o.addr())],
        "o",
        "\n[cache]\ncapacity = \"64MiB\"\nmax_object_size = \"16MiB\"\n",
    )
    .replace("cache = false\n", "cache = true\n");
    let p = Proxy::start(&cfg);
    let mut viewers = Vec::new();
    for i in 0..160 {
        let mut s = std::net::TcpStream::connect(p.addr).unwrap();
        s.write_all(format!("GET /big/{i}?size=15728640&cc=max-age=600 HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        viewers.push(s);
    }
    eventually("every miss reached the origin", || o.requests() >= 160);
    // The buffers between origin, proxy and the stalled viewers fill within
    // moments; watch the proxy's RSS for a while.
    let mut peak = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        peak = peak.max(p.status_kib("VmRSS"));
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("peak RSS {} MiB with 160 stalled 15 MiB misses", peak / 1024);
    assert!(peak < (64 + 64) * 1024, "RSS {} MiB at capacity 64 MiB", peak / 1024);
    drop(viewers);
}
