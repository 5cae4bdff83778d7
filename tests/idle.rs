//! Idle keep-alive connections park (give up their task and buffers) after
//! a short idle spell, and come back for the next request intact; TLS ones
//! too, keeping only their session. A viewer that stops reading a
//! response is reset at its write timeout, plain or TLS.
mod common;
use common::pki::Pki;
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

/// A connection `c` makes a request and parks; the next head arrives in
/// two pieces (two records on TLS): the resumed connection reads the rest
/// with its header timeout, not as a new idle spell. Then it parks again.
fn parks_and_resumes_on_a_split_head(c: &mut Client, running: &ringfront::runtime::Running) {
    assert_eq!(c.get("/one?size=10").status, 200);
    eventually("the idle connection parks", || parked(running) == 1);
    c.send(b"GET /two?size=20 HTT");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"P/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).expect("response after park");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, pattern_body(20));
    assert_eq!(parked(running), 0);
    eventually("the idle connection parks again", || parked(running) == 1);
}

/// `c` closes; the proxy counts it neither open nor parked.
fn closed_and_uncounted(c: Client, running: &ringfront::runtime::Running) {
    drop(c);
    eventually("the closed connection is no longer counted", || {
        running.shared.open_connections.load(Ordering::Relaxed) == 0 && parked(running) == 0
    });
}

fn parked_connection_resumes(server: &str) {
    let (o, running) = start(server);
    let mut c = Client::connect(running.addrs[0]);
    parks_and_resumes_on_a_split_head(&mut c, &running);
    // Two pipelined requests in one write.
    c.send(b"GET /p1?size=5 HTTP/1.1\r\nHost: t\r\n\r\nGET /p2?size=6 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body, pattern_body(5));
    assert_eq!(c.read_response(false).unwrap().body, pattern_body(6));
    assert_eq!(o.requests(), 4);
    assert_eq!(running.shared.open_connections.load(Ordering::Relaxed), 1);
    closed_and_uncounted(c, &running);
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

/// A proxy with a `[server.tls]` listener too (certificate for
/// `www.example.test`, files in the returned folder), and a client config
/// that trusts it.
fn start_tls(
    extra_server: &str,
) -> (
    SampleOrigin,
    ringfront::runtime::Running,
    Arc<rustls::ClientConfig>,
    tempfile::TempDir,
) {
    let pki = Pki::new("ringfront test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = pki.leaf(&["www.example.test"]).write(dir.path(), "viewer");
    let origin = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\npin_workers = false\n{extra_server}\n\
         [server.tls]\nlisten = \"127.0.0.1:0\"\n\
         certificates = [ {{ names = [\"www.example.test\"], cert = \"{cert}\", key = \"{key}\" }} ]\n\
         [[origin]]\nid = \"o\"\naddress = \"{}\"\n[[behavior]]\npath = \"*\"\ntarget = \"o\"\ncache = false\n\
         allowed_methods = [\"GET\", \"HEAD\", \"POST\"]\n",
        origin.addr()
    );
    let cfg = Arc::new(ringfront::config::Config::from_str(&text, dir.path()).unwrap());
    let running = ringfront::runtime::start(cfg).unwrap();
    (origin, running, pki.client_config(&["http/1.1"]), dir)
}

#[test]
fn a_parked_tls_connection_serves_its_next_requests_even_in_pieces_and_pipelined() {
    parked_tls_connection_resumes("");
}

#[test]
fn tls_parking_works_on_the_epoll_driver_too() {
    parked_tls_connection_resumes("io_driver = \"epoll\"");
}

fn parked_tls_connection_resumes(server: &str) {
    let (o, running, client, _dir) = start_tls(server);
    let mut c = Client::connect_tls(running.tls_addrs[0], client, "www.example.test");
    parks_and_resumes_on_a_split_head(&mut c, &running);
    // Two pipelined requests in one record, the second with a response of
    // many records.
    c.send(b"GET /p1?size=5 HTTP/1.1\r\nHost: t\r\n\r\nGET /p2?size=100000 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body, pattern_body(5));
    assert_eq!(c.read_response(false).unwrap().body, pattern_body(100_000));
    // And once more, with a request body of many records.
    eventually("the idle TLS connection parks a third time", || parked(&running) == 1);
    let body = pattern_body(70_000);
    let mut req = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req);
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-received-bytes"), Some("70000"));
    assert_eq!(o.requests(), 5);
    assert_eq!(running.shared.open_connections.load(Ordering::Relaxed), 1);
    closed_and_uncounted(c, &running);
}

#[test]
fn a_parked_tls_connection_ends_with_close_notify_at_its_idle_deadline() {
    let (_o, running, client, _dir) = start_tls("client_idle_timeout = \"1s\"");
    let mut c = Client::connect_tls(running.tls_addrs[0], client, "www.example.test");
    assert_eq!(c.get("/x").status, 200);
    let t0 = Instant::now();
    eventually("the idle TLS connection parks", || parked(&running) == 1);
    let (got, clean) = c.read_to_close();
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(clean, "the idle close is announced with close_notify");
    let idle = t0.elapsed();
    assert!(idle >= Duration::from_millis(900), "closed too early: {idle:?}");
    eventually("the parked count drops", || {
        parked(&running) == 0 && running.shared.open_connections.load(Ordering::Relaxed) == 0
    });
}

#[test]
fn stopping_closes_parked_tls_connections_at_once_with_close_notify() {
    let (_o, running, client, _dir) = start_tls("client_idle_timeout = \"60s\"");
    let addr = running.tls_addrs[0];
    let mut clients: Vec<Client> = (0..20)
        .map(|_| Client::connect_tls(addr, client.clone(), "www.example.test"))
        .collect();
    for c in clients.iter_mut() {
        assert_eq!(c.get("/y").status, 200);
    }
    eventually("all idle TLS connections park", || parked(&running) == 20);
    let t0 = Instant::now();
    drop(running); // stop: drains, closes parked connections
    for c in clients.iter_mut() {
        let (got, clean) = c.read_to_close();
        assert!(
            got.is_empty() && clean,
            "parked TLS connection not closed with close_notify"
        );
    }
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "stop waited for idle connections"
    );
}

/// The proxy's sockets for connections accepted on `listen`, from
/// /proc/net/tcp: (TCP state, bytes queued unsent) of each, the listening
/// socket left out.
fn accepted_sockets(listen: std::net::SocketAddr) -> Vec<(u8, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!("0100007F:{:04X}", listen.port());
    let hex = |t: &str| u64::from_str_radix(t, 16).ok();
    let socket = |line: &str| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let state = hex(f.get(3)?)? as u8;
        let unsent = hex(f.get(4)?.split(':').next()?)?;
        (*f.get(1)? == local && state != 0x0A).then_some((state, unsent))
    };
    table.lines().skip(1).filter_map(socket).collect()
}

/// After `request` asked `listen` for a response far larger than the
/// socket buffers and never read: the response stalls (the proxy's socket
/// established, bytes queued), then the write timeout ends the connection
/// with a reset, so the proxy's socket is gone at once. A plain close would
/// leave it orphaned in FIN-WAIT-1 holding megabytes of unsent response in
/// kernel memory for minutes, out of reach of `max_connections` (nginx's
/// `reset_timedout_connection`).
fn stalled_viewer_is_reset(listen: std::net::SocketAddr) {
    eventually("the response fills the socket buffers", || {
        accepted_sockets(listen)
            .iter()
            .any(|&(state, unsent)| state == 1 && unsent > 0)
    });
    eventually(
        "the proxy's socket is gone, not orphaned with the unsent response",
        || accepted_sockets(listen).is_empty(),
    );
}

const STALLING_REQUEST: &[u8] = b"GET /big?size=33554432 HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn a_viewer_that_stops_reading_is_reset_at_its_write_timeout() {
    let (_o, running) = start("client_idle_timeout = \"1s\"");
    let mut s = std::net::TcpStream::connect(running.addrs[0]).unwrap();
    s.write_all(STALLING_REQUEST).unwrap();
    stalled_viewer_is_reset(running.addrs[0]);
    drop(s);
}

#[test]
fn a_tls_viewer_that_stops_reading_is_reset_at_its_write_timeout() {
    let (_o, running, client, _dir) = start_tls("client_idle_timeout = \"1s\"");
    let mut c = Client::connect_tls(running.tls_addrs[0], client, "www.example.test");
    c.send(STALLING_REQUEST);
    stalled_viewer_is_reset(running.tls_addrs[0]);
    drop(c);
}
