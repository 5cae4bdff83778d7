//! Idle TLS viewers: what one costs the proxy in memory once it has made a
//! request and gone quiet: it parks (`src/proxy/park.rs`) keeping only its
//! session state (`src/tls/server.rs`); and what a connection costs that
//! opened and never spoke: no record buffer while it is silent.
mod common;
use common::pki::Pki;
use common::*;
use std::net::SocketAddr;
use std::time::Duration;

/// Idle TLS connections held at once.
const CONNS: usize = 2000;

/// Most a parked TLS connection may cost, in KiB of the proxy's RSS. It
/// measures about 3.9 KiB (of which rustls' state for a TLS 1.3 session is
/// 3.3: keys, key schedule, the connection itself; a parked plain
/// connection costs 0.25); the margin absorbs allocator and page
/// granularity. Before TLS sessions parked, one cost 34.6 KiB: two fixed
/// 16 KiB record buffers and the connection task.
const MAX_KIB_PER_CONN: f64 = 6.0;

/// A `ringfront_connections_*` gauge (`parked`, `open`) from the admin
/// listener.
fn connections(admin: SocketAddr, gauge: &str) -> usize {
    let prefix = format!("ringfront_connections_{gauge} ");
    scrape(admin)
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Lets this process hold `n` more sockets (two per TLS client).
fn raise_fd_limit(n: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on this process's own limits.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < n {
            lim.rlim_cur = lim.rlim_max.min(n);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A caching proxy with a TLS listener and an admin listener (`server`:
/// extra `[server]` keys), warmed up: the hit cached, the handshake and
/// ticket machinery built, the allocator's heaps in use; then nothing open
/// and freed memory returned. Gives the proxy, its TLS and admin
/// addresses, the client config and the RSS (KiB) at that point.
fn warmed_up(
    server: &str,
) -> (
    Proxy,
    SampleOrigin,
    SocketAddr,
    SocketAddr,
    std::sync::Arc<rustls::ClientConfig>,
    u64,
) {
    let pki = Pki::new("ringfront test CA");
    let leaf = pki.leaf(&["www.example.test"]);
    let origin = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = leaf.write(dir.path(), "viewer");
    let cfg = config(&[("o", origin.addr())], "o", "\n[admin]\nlisten = \"127.0.0.1:0\"\n")
        .replace("cache = false", "cache = true")
        .replace("pin_workers = false\n", &format!("pin_workers = false\n{server}\n"))
        + &format!(
            "\n[server.tls]\nlisten = \"127.0.0.1:0\"\ncertificates = [ {{ names = [\"www.example.test\"], cert = \"{c}\", key = \"{k}\" }} ]\n"
        );
    let proxy = Proxy::start_in(&cfg, dir);
    let (addr, admin) = (proxy.tls_addr(), proxy.admin_addr());
    let client = pki.client_config(&["http/1.1"]);
    for _ in 0..20 {
        let mut c = Client::connect_tls(addr, client.clone(), "www.example.test");
        assert_eq!(c.get(HIT).status, 200);
    }
    eventually("the warm-up connections are gone", || connections(admin, "open") == 0);
    std::thread::sleep(Duration::from_millis(1500)); // a sweep returns freed memory
    let before = proxy.status_kib("VmRSS");
    (proxy, origin, addr, admin, client, before)
}

const HIT: &str = "/idle?size=1024&cc=max-age=3600";

#[test]
fn idle_tls_connections_cost_a_few_kib_each() {
    raise_fd_limit(2 * CONNS as u64 + 1000);
    let (proxy, _origin, addr, admin, client, before) = warmed_up("");
    let mut held = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let mut c = Client::connect_tls(addr, client.clone(), "www.example.test");
        assert_eq!(c.get(HIT).body.len(), 1024);
        held.push(c);
    }
    eventually("every idle TLS connection parks", || {
        connections(admin, "parked") == CONNS
    });
    // Sweeps return freed memory (mimalloc purges what it was given back
    // over a few of them; too early, and the figure is up to 0.2 KiB high).
    std::thread::sleep(Duration::from_millis(3500));
    let after = proxy.status_kib("VmRSS");
    let per_conn = (after.saturating_sub(before)) as f64 / CONNS as f64;
    eprintln!("{CONNS} idle TLS connections: RSS {before} -> {after} KiB, {per_conn:.2} KiB each");
    assert!(
        per_conn < MAX_KIB_PER_CONN,
        "an idle TLS connection costs {per_conn:.2} KiB (RSS {before} -> {after} KiB)"
    );
    // Parked, they still serve.
    for c in held.iter_mut().step_by(97) {
        assert_eq!(c.get(HIT).body.len(), 1024);
    }
}

/// Most a silent TLS connection (open, nothing sent) may cost, in KiB of
/// the proxy's RSS: its task and rustls' connection state, about 10.3. When
/// its first read borrowed an 18 KiB record buffer, one cost 14.3 here
/// (fresh pages, mostly untouched) and about 30 in the hostile review
/// (recycled ones), for as long as `client_header_timeout`.
const MAX_SILENT_KIB: f64 = 12.0;

#[test]
fn silent_tls_connections_borrow_no_record_buffer() {
    raise_fd_limit(2 * CONNS as u64 + 1000);
    let (proxy, _origin, addr, admin, _client, before) = warmed_up("client_header_timeout = \"60s\"");
    let held: Vec<std::net::TcpStream> = (0..CONNS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    eventually("every silent connection is open", || {
        connections(admin, "open") == CONNS
    });
    // Their first reads are submitted as their tasks start; watch for a
    // while and take the peak.
    let mut peak = 0;
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_secs(1) {
        peak = peak.max(proxy.status_kib("VmRSS"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let per_conn = peak.saturating_sub(before) as f64 / CONNS as f64;
    eprintln!("{CONNS} silent TLS connections: RSS {before} -> {peak} KiB, {per_conn:.2} KiB each");
    assert!(
        per_conn < MAX_SILENT_KIB,
        "a silent TLS connection costs {per_conn:.2} KiB (RSS {before} -> {peak} KiB)"
    );
    drop(held);
}
