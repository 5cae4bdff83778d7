//! `primary_fast_fail`: during a primary outage requests stop paying the
//! connect penalty, one request per interval probes, and recovery ends it.
mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn fast_fail_cuts_failover_latency_and_probes_once_per_interval() {
    let bh = Blackhole::new();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let group = "\n[[origin_group]]\nid = \"site\"\nprimary = \"primary\"\nsecondary = \"secondary\"\n\
                 primary_fast_fail = true\nfast_fail_after = 2\nfast_fail_probe_interval = \"500ms\"\n";
    let cfg = config(&[("primary", bh.addr), ("secondary", s.addr())], "site", group).replacen(
        "connection_attempts = 2\nconnection_timeout = \"5s\"",
        "connection_attempts = 1\nconnection_timeout = \"300ms\"",
        1,
    );
    let px = Proxy::start(&cfg);
    let mut c = px.client();
    // Two requests pay the connect timeout and mark the primary down.
    for _ in 0..2 {
        let t0 = Instant::now();
        assert_eq!(c.get("/x").header("x-origin"), Some("secondary"));
        assert!(t0.elapsed() >= Duration::from_millis(290));
    }
    eventually("outage logged", || px.log_text().contains("marked down"));
    // Now requests go straight to the secondary.
    let t0 = Instant::now();
    let mut fast = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let r = c.get("/y");
        assert_eq!(r.header("x-origin"), Some("secondary"));
        if t.elapsed() < Duration::from_millis(290) {
            fast += 1;
        }
    }
    assert!(
        fast >= 4,
        "only {fast} of 5 skipped the blackholed primary (took {:?})",
        t0.elapsed()
    );
    // After the probe interval one request tries the (still blackholed)
    // primary again and pays its connect timeout.
    let t1 = Instant::now();
    eventually("probe interval passes", || t1.elapsed() > Duration::from_millis(550));
    let t = Instant::now();
    c.get("/probe");
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "no probe to the primary after the interval"
    );
}

#[test]
fn fast_fail_ends_when_the_primary_recovers() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let group = "\n[[origin_group]]\nid = \"site\"\nprimary = \"primary\"\nsecondary = \"secondary\"\n\
                 primary_fast_fail = true\nfast_fail_after = 2\nfast_fail_probe_interval = \"200ms\"\n";
    let px = Proxy::start(&config(
        &[("primary", p.addr()), ("secondary", s.addr())],
        "site",
        group,
    ));
    let mut c = px.client();
    p.set_mode(Mode::Refuse);
    // connection_attempts = 2: one request makes two failed connects.
    assert_eq!(c.get("/a").header("x-origin"), Some("secondary"));
    eventually("outage logged", || px.log_text().contains("marked down"));
    let before = p.connections();
    assert_eq!(c.get("/b").header("x-origin"), Some("secondary"));
    assert!(
        !c.get("/b2").has_header("proxy-status"),
        "the primary was skipped, not tried"
    );
    assert_eq!(p.connections(), before);
    p.set_mode(Mode::Normal);
    // Within a probe interval or two a probe reaches the recovered primary.
    eventually("primary serves again", || {
        c.get("/c").header("x-origin") == Some("primary")
    });
    eventually("recovery logged", || px.log_text().contains("is back"));
    for _ in 0..5 {
        assert_eq!(c.get("/d").header("x-origin"), Some("primary"));
    }
}
