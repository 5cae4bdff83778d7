//! Idle keep-alive connections park (give up their task and buffers) after
//! a short idle spell, and come back for the next request intact.
mod common;
use common::*;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn start(extra_server: &str) -> (SampleOrigin, ringfront::runtime::Running) {
    let origin = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\npin_workers = false\n{extra_server}\n\
         [[origin]]\nid = \"o\"\naddress = \"{}\"\n[[behavior]]\npath = \"*\"\ntarget = \"o\"\ncache = false\n",
        origin.addr()
    );
    let cfg = Arc::new(ringfront::config::Config::from_str(&text, std::path::Path::new(".")).unwrap());
    (origin, ringfront::runtime::start(cfg).unwrap())
}

fn parked(r: &ringfront::runtime::Running) -> usize {
    r.shared.parked_connections.load(Ordering::Relaxed)
}

#[test]
fn a_parked_connection_serves_its_next_requests_even_in_pieces_and_pipelined() {
    parked_connection_resumes("");
}

#[test]
fn parking_works_on_the_epoll_driver_too() {
    parked_connection_resumes("io_driver = \"epoll\"");
}

fn parked_connection_resumes(server: &str) {
    let (o, running) = start(server);
    let mut c = Client::connect(running.addrs[0]);
    assert_eq!(c.get("/one?size=10").status, 200);
    eventually("the idle connection parks", || parked(&running) == 1);
    // The next head arrives in two pieces: the resumed connection reads the
    // rest with its header timeout, not as a new idle spell.
    c.send(b"GET /two?size=20 HTT");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"P/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).expect("response after park");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, pattern_body(20));
    assert_eq!(parked(&running), 0);
    // Park again, then two pipelined requests in one write.
    eventually("the idle connection parks again", || parked(&running) == 1);
    c.send(b"GET /p1?size=5 HTTP/1.1\r\nHost: t\r\n\r\nGET /p2?size=6 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body, pattern_body(5));
    assert_eq!(c.read_response(false).unwrap().body, pattern_body(6));
    assert_eq!(o.requests(), 4);
    assert_eq!(running.shared.open_connections.load(Ordering::Relaxed), 1);
    drop(c);
    eventually("the closed connection is no longer counted", || {
        running.shared.open_connections.load(Ordering::Relaxed) == 0 && parked(&running) == 0
    });
}

#[test]
fn a_parked_connection_is_closed_at_its_idle_deadline() {
    let (_o, running) = start("client_idle_timeout = \"1s\"");
    let mut c = Client::connect(running.addrs[0]);
    assert_eq!(c.get("/x").status, 200);
    let t0 = Instant::now();
    eventually("the idle connection parks", || parked(&running) == 1);
    assert!(c.closed(), "parked connection not closed at the idle deadline");
    let idle = t0.elapsed();
    assert!(idle >= Duration::from_millis(900), "closed too early: {idle:?}");
    eventually("the parked count drops", || {
        parked(&running) == 0 && running.shared.open_connections.load(Ordering::Relaxed) == 0
    });
}

#[test]
fn stopping_closes_parked_connections_at_once() {
    let (_o, running) = start("client_idle_timeout = \"60s\"");
    let mut clients: Vec<Client> = (0..20).map(|_| Client::connect(running.addrs[0])).collect();
    for c in clients.iter_mut() {
        assert_eq!(c.get("/y").status, 200);
    }
    eventually("all idle connections park", || parked(&running) == 20);
    let t0 = Instant::now();
    drop(running); // stop: drains, closes parked connections
    for c in clients.iter_mut() {
        assert!(c.closed(), "parked connection left open by stop");
    }
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "stop waited for idle connections"
    );
}

#[test]
fn a_connection_that_sends_garbage_after_parking_gets_400() {
    let (o, running) = start("");
    let mut c = Client::connect(running.addrs[0]);
    assert_eq!(c.get("/z").status, 200);
    eventually("the idle connection parks", || parked(&running) == 1);
    c.s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 400);
    assert!(c.closed());
    assert_eq!(o.requests(), 1);
}
