//! Connection churn: 10,000 connections opened and killed leave no leaked
//! file descriptors and no dead workers.
mod common;
use common::*;
use std::io::Write;
use std::os::fd::AsRawFd;

fn rst(s: &std::net::TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[test]
fn ten_thousand_killed_connections_leak_nothing() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    // Warm up so pooled origin connections exist before the baseline.
    assert_eq!(p.client().get("/warm").status, 200);
    let baseline = p.fd_count();
    let addr = p.addr;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..2500 {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    match (t + i) % 5 {
                        0 => {}
                        1 => {
                            let _ = s.write_all(b"GET / HTTP/1.1\r\nHo");
                        }
                        2 => {
                            let _ = s.write_all(b"GET /?delay=50 HTTP/1.1\r\nHost: t\r\n\r\n");
                        }
                        3 => {
                            let _ = s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nabc");
                        }
                        _ => {
                            let _ = s.write_all(b"GET /?size=100000 HTTP/1.1\r\nHost: t\r\n\r\n");
                        }
                    }
                    if i % 2 == 0 {
                        rst(&s);
                    }
                    drop(s);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every viewer connection and the origin connections they used are closed.
    eventually("fds back to baseline", || p.fd_count() <= baseline + 2);
    // Still serving.
    let r = p.client().get("/after");
    assert_eq!(r.status, 200);
    assert!(!p.log_text().contains("panicked"), "{}", p.log_text());
}
