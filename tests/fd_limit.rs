//! At the descriptor limit (EMFILE) the proxy keeps every connection it has:
//! idle keep-alive viewers that cannot park (parking duplicates the socket)
//! stay with their task; accepting backs off and says so at most once a
//! second; once descriptors free up, accepting resumes.
mod common;
use common::*;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The proxy's RLIMIT_NOFILE for the test.
const LIMIT: u64 = 128;
/// Connections opened beyond the limit (they wait in the accept queue).
const EXTRA: u64 = 300;
/// A cacheable object: after the first request every viewer request is a
/// hit, which needs no origin connection (no descriptor) at the limit.
const OBJECT: &str = "/cached?size=10&cc=max-age=600";

fn start(server: &str) -> (SampleOrigin, Proxy) {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    // The flood's connections send nothing: a long header timeout keeps
    // them open (and the proxy at its limit) for the whole test.
    let cfg = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\npin_workers = false\n\
         client_header_timeout = \"10m\"\nclient_idle_timeout = \"10m\"\n{server}\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [[origin]]\nid = \"o\"\naddress = \"{}\"\n\
         [[behavior]]\npath = \"*\"\ntarget = \"o\"\n",
        o.addr()
    );
    let p = Proxy::start(&cfg);
    (o, p)
}

/// The proxy's log lines about failed accepts by `who` ("worker 0", "admin").
fn accept_warnings(p: &Proxy, who: &str) -> usize {
    let marker = format!("{who}: accept: ");
    p.log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&marker) && l.contains("Too many open files"))
        .count()
}

/// CPU time (user + system, in clock ticks) of the proxy's thread `name`.
fn thread_ticks(p: &Proxy, name: &str) -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{}/task", p.pid())).unwrap().flatten() {
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid ...": utime and stime are the 12th and
        // 13th fields after the comm.
        let Some((comm, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if comm.ends_with(&format!("({name}")) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let tick = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
            total += tick(11) + tick(12);
        }
    }
    total
}

/// Whether the proxy closed `c` (end of file, without blocking).
fn closed_by_proxy(c: &Client) -> bool {
    c.s.set_nonblocking(true).unwrap();
    let r = c.s.peek(&mut [0u8; 1]);
    c.s.set_nonblocking(false).unwrap();
    matches!(r, Ok(0))
}

#[test]
fn at_the_descriptor_limit_idle_viewers_stay_and_accepting_backs_off_quietly() {
    at_the_limit("");
}

#[test]
fn at_the_descriptor_limit_on_the_epoll_driver_too() {
    at_the_limit("io_driver = \"epoll\"");
}

/// Raises this test process's own descriptor limit as far as its hard limit
/// allows (the tests here open hundreds of sockets each, in parallel).
fn raise_own_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls on a valid rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn at_the_limit(server: &str) {
    raise_own_limit();
    let (_o, p) = start(server);
    let admin = p.admin_addr();
    let mut viewers: Vec<Client> = (0..3).map(|_| p.client()).collect();
    for v in &mut viewers {
        assert_eq!(v.get(OBJECT).status, 200);
    }
    eventually("the three idle viewers park", || {
        scrape(admin).lines().any(|l| l == "ringfront_connections_parked 3")
    });
    p.limit_open_files(LIMIT);
    assert!(p.fd_count() < LIMIT as usize / 2, "{} descriptors open", p.fd_count());

    // Far more connections than the proxy may have descriptors: the proxy
    // accepts until EMFILE, the rest wait in its accept queue.
    let admin_ticks = thread_ticks(&p, "ringfront-admin");
    let t0 = Instant::now();
    let extra: Vec<TcpStream> = (0..LIMIT + EXTRA)
        .map(|_| TcpStream::connect(p.addr).expect("connect (the accept queue takes it)"))
        .collect();
    eventually("the proxy reaches its descriptor limit", || {
        accept_warnings(&p, "worker 0") > 0
    });

    // Each viewer comes back from the lot (no new descriptor), gets a hit,
    // and goes idle again, now unable to park: it must stay open.
    for v in &mut viewers {
        assert_eq!(v.get(OBJECT).status, 200);
    }
    // Give the viewers several times PARK_AFTER (200ms) to try parking,
    // failing at once if the proxy closes one.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(1) {
        for (i, v) in viewers.iter().enumerate() {
            assert!(
                !closed_by_proxy(v),
                "idle viewer {i} was closed at the descriptor limit"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, v) in viewers.iter_mut().enumerate() {
        v.send(format!("GET {OBJECT} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        let r = v.read_response(false);
        assert_eq!(
            r.map(|r| r.status),
            Some(200),
            "idle viewer {i} at the descriptor limit"
        );
    }
    let secs = t0.elapsed().as_secs() as usize;
    for who in ["worker 0", "admin"] {
        let warned = accept_warnings(&p, who);
        assert!(
            warned <= secs + 2,
            "{warned} accept warnings from {who} in {secs}s (at most one a second); log:\n{}",
            p.log_text().lines().take(20).collect::<Vec<_>>().join("\n")
        );
    }
    // The admin listener backs off too, rather than spinning on EMFILE.
    let spent = thread_ticks(&p, "ringfront-admin") - admin_ticks;
    assert!(
        spent <= 20,
        "the admin thread used {spent} ticks of CPU in {secs}s at the limit"
    );

    // Descriptors free up: accepting resumes.
    drop(extra);
    let mut fresh = p.client();
    assert_eq!(fresh.get(OBJECT).status, 200, "a new connection after the flood");
}
