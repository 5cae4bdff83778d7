//! Request collapsing over sockets: waiting requests cost nothing while
//! they wait (issue 12: followers are woken, never poll).
mod common;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

fn proc_cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = s.rsplit_once(')').map_or("", |x| x.1).split_whitespace().collect();
    let n = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

/// 10,000 requests wait on one slow miss, spread over two workers: while
/// they wait the proxy uses under 5% of a core, then every one of them gets
/// the object, and the origin was asked once.
#[test]
fn ten_thousand_waiters_on_one_slow_miss_cost_almost_no_cpu() {
    let o = SampleOrigin::start_threads("127.0.0.1:0", "o", 2).unwrap();
    let cfg = config(&[("o", o.addr())], "o", "\n[admin]\nlisten = \"127.0.0.1:0\"\n")
        .replace("cache = false\n", "cache = true\n")
        .replace("workers = 1\n", "workers = 2\n")
        .replace("response_timeout = \"20s\"", "response_timeout = \"30s\"");
    let p = Proxy::start(&cfg);
    let admin = p.admin_addr();
    const N: usize = 10_000;
    let path = "/slow?delay=10000&size=100&cc=max-age=60";
    let mut conns = Vec::with_capacity(N);
    for _ in 0..N {
        let mut s = std::net::TcpStream::connect(p.addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .unwrap();
        conns.push(s);
    }
    let sent = Instant::now();
    // 10 s from when the origin got the leader's request.
    eventually("every connection accepted", || {
        scrape(admin)
            .lines()
            .find_map(|l| l.strip_prefix("ringfront_connections_open "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .is_some_and(|n| n as usize >= N)
    });
    // Let the heads be read (a settling margin, not a synchronisation: the
    // figure below is a rate over a window inside the 10 s wait).
    std::thread::sleep(Duration::from_millis(800));
    let t0 = proc_cpu_ticks(p.pid());
    let w0 = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    let used = proc_cpu_ticks(p.pid()) - t0;
    let window = w0.elapsed();
    // The window was inside the wait: no answer has arrived yet.
    conns[0].set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    assert!(
        matches!(conns[0].peek(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the measuring window ended {:?} after sending, past the origin's 10 s delay: accepting \
         and reading the heads took that long (waiting requests starving the workers?)",
        sent.elapsed()
    );
    conns[0].set_nonblocking(false).unwrap();
    let hz = 100.0;
    let share = used as f64 / hz / window.as_secs_f64();
    eprintln!(
        "10,000 waiting requests used {:.2}% of a core over {window:?}",
        share * 100.0
    );
    assert!(share < 0.05, "waiting used {:.1}% of a core", share * 100.0);
    for s in conns {
        let mut c = Client::from_stream(s);
        let r = c.read_response(false).expect("a response");
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), 100);
    }
    assert_eq!(o.requests(), 1);
}

/// A leader whose viewer stops reading does not hold up the requests that
/// wait for the same object: the fetch is stored as soon as the origin has
/// sent it, and the waiters are answered from the store (SPEC §3.4).
#[test]
fn a_non_reading_leader_does_not_delay_its_followers() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace("cache = false\n", "cache = true\n");
    let p = Proxy::start(&cfg);
    let path = "/big?size=15000000&cc=max-age=600&delay=200";
    let mut leader = std::net::TcpStream::connect(p.addr).unwrap();
    leader
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .unwrap();
    // The leader never reads. The follower joins while the origin waits.
    eventually("the leader's fetch reached the origin", || o.requests() == 1);
    let t0 = Instant::now();
    let mut follower = p.client();
    follower.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r = follower.get(path);
    let waited = t0.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 15_000_000);
    assert_eq!(o.requests(), 1, "the follower fetched on its own: {:?}", r.headers);
    eprintln!("the follower got 15 MB in {waited:?}");
    assert!(waited < Duration::from_secs(3), "the follower waited {waited:?}");
    drop(leader);
}
