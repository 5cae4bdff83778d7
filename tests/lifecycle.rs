//! Process lifecycle: drivers, startup logs, and draining on SIGTERM.
mod common;
use common::*;

#[test]
fn epoll_driver_serves_and_is_logged_with_reason() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace("workers = 1", "workers = 2\nio_driver = \"epoll\"");
    let p = Proxy::start(&cfg);
    let mut c = p.client();
    for _ in 0..20 {
        assert_eq!(c.get("/?size=2000").body.len(), 2000);
    }
    eventually("both workers logged", || {
        p.log_text().matches("driver epoll").count() == 2
    });
    assert!(
        p.log_text().contains("server.io_driver = \"epoll\""),
        "{}",
        p.log_text()
    );
}

#[test]
fn auto_driver_logs_each_worker_and_its_core() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace("pin_workers = false", "pin_workers = true");
    let p = Proxy::start(&cfg);
    assert_eq!(p.client().get("/").status, 200);
    eventually("worker logged", || p.log_text().contains("worker 0: core "));
    let log = p.log_text();
    assert!(
        log.contains("driver io_uring") || log.contains("driver epoll ("),
        "{log}"
    );
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let mut p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let addr = p.addr;
    let inflight = std::thread::spawn(move || Client::connect(addr).get("/slow?delay=700&size=10"));
    eventually("request reached the origin", || o.requests() == 1);
    let status = p.terminate();
    assert!(status.success(), "exit status {status:?}");
    let r = inflight.join().unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 10);
    assert_eq!(r.header("connection"), Some("close"));
    // No longer accepting.
    assert!(std::net::TcpStream::connect(addr).is_err());
}
