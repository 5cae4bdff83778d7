//! SPEC §3.5 over an https origin: bytes after a response's end must make
//! the connection unusable even when they were already taken off the socket
//! by the TLS layer, where the pool's `MSG_PEEK` cannot see them. The
//! origin-side TLS adapter (`src/tls/client.rs`) reads ciphertext up to
//! 16 KiB at a time and gives all of it to rustls at once, so such bytes
//! are plaintext (or part of a record) rustls holds, which
//! `Stream::has_buffered_input` reports and the pool refuses.
mod common;
use common::pki::Pki;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const GENUINE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine";
const POISON: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED";

/// What the origin sends for one request.
#[derive(Default)]
struct Answer {
    /// Each written as a TLS record of its own.
    records: Vec<Vec<u8>>,
    /// Then close_notify (the socket stays open).
    close_notify: bool,
    /// Then these raw bytes, outside any complete record.
    raw_tail: Vec<u8>,
}

impl Answer {
    fn records(records: Vec<Vec<u8>>) -> Answer {
        Answer {
            records,
            ..Answer::default()
        }
    }

    /// Sends something after the response's end.
    fn stray(&self) -> bool {
        self.records.len() > 1 || self.close_notify || !self.raw_tail.is_empty()
    }
}

/// An https origin that answers each request head with `answer(head)`; all
/// of an answer goes out in one `write` (so it arrives together). Counts
/// the requests that arrive on a connection after it sent stray bytes.
fn tls_origin(cfg: Arc<rustls::ServerConfig>, answer: fn(&str) -> Answer) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let reused = Arc::new(AtomicUsize::new(0));
    let counter = reused.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut sock) = s else { break };
            let cfg = cfg.clone();
            let reused = counter.clone();
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(WAIT));
                let mut conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut plain = Vec::new();
                let mut sent_stray = false;
                loop {
                    let head = loop {
                        if let Some(i) = plain.windows(4).position(|w| w == b"\r\n\r\n") {
                            let h: Vec<u8> = plain.drain(..i + 4).collect();
                            break String::from_utf8_lossy(&h).into_owned();
                        }
                        if conn.wants_write() {
                            if conn.write_tls(&mut sock).is_err() {
                                return;
                            }
                            continue;
                        }
                        match conn.read_tls(&mut sock) {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        if conn.process_new_packets().is_err() {
                            return;
                        }
                        let mut tmp = [0u8; 4096];
                        loop {
                            match conn.reader().read(&mut tmp) {
                                Ok(0) => return,
                                Ok(n) => plain.extend_from_slice(&tmp[..n]),
                                Err(_) => break,
                            }
                        }
                    };
                    if sent_stray {
                        reused.fetch_add(1, Ordering::SeqCst);
                    }
                    let a = answer(&head);
                    sent_stray |= a.stray();
                    for record in &a.records {
                        conn.writer().write_all(record).unwrap();
                    }
                    if a.close_notify {
                        conn.send_close_notify();
                    }
                    let mut out = Vec::new();
                    while conn.wants_write() {
                        conn.write_tls(&mut out).unwrap();
                    }
                    out.extend_from_slice(&a.raw_tail);
                    if sock.write_all(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, reused)
}

/// A bodiless answer (a 204, or a 200 with Content-Length for HEAD) padded to
/// `pad` bytes of head, then a whole second response (bytes after the first
/// one's end) in a record of its own.
fn answer(head: &str) -> Answer {
    if head.contains("/victim") {
        return Answer::records(vec![GENUINE.to_vec()]);
    }
    let pad: usize = head
        .split("pad=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let mut a = if head.contains("/204") {
        b"HTTP/1.1 204 No Content\r\nX-Pad: ".to_vec()
    } else {
        b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Pad: ".to_vec()
    };
    let fixed = a.len() + 4;
    a.resize(a.len() + pad.saturating_sub(fixed), b'p');
    a.extend_from_slice(b"\r\n\r\n");
    Answer::records(vec![a, POISON.to_vec()])
}

/// Bytes after a bodiless response's end (a HEAD answer; a 204 with the
/// cache on), in a TLS record of their own that arrives with it, never answer
/// the next request on that connection, nor get cached under its key.
///
/// The pads put the first response's record on either side of 4 KiB on the
/// wire: with monoio-rustls (which fed rustls 4 KiB at a time from its
/// 16 KiB read) the first piece completed the first record only, the proxy
/// saw exactly one whole response, pooled the connection, and the pool's
/// peek found the socket empty; the next request's read then decrypted the
/// stray record, and `/victim` was answered with `POISONED` (and, with the
/// cache on, stored). Now both records are in rustls once the first is
/// read, the stray one as plaintext nobody asked for, and the connection is
/// closed instead of pooled.
#[test]
fn stray_bytes_buffered_by_tls_never_answer_the_next_request() {
    let pki = Pki::new("ringfront test CA");
    let (origin, _) = tls_origin(Arc::new(pki.leaf(&["localhost"]).server_config()), answer);
    let mut poisoned = Vec::new();
    for (method, path, cache) in [("HEAD", "/head", false), ("GET", "/204", true)] {
        let dir = tempfile::tempdir().unwrap();
        pki.write_ca(dir.path());
        let cfg = config(&[("o", origin)], "o", "")
            .replace(
                "id = \"o\"\n",
                "id = \"o\"\nprotocol = \"https\"\nca_file = \"ca.pem\"\nsni = \"localhost\"\n",
            )
            .replace("cache = false\n", &format!("cache = {cache}\n"));
        let p = Proxy::start_in(&cfg, dir);
        for pad in (3800..4100).step_by(20) {
            let mut c = p.client();
            c.send(format!("{method} {path}?pad={pad} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
            let r = c.read_response(true).expect("first response");
            assert!(r.status < 300, "{method} {path}: {}", r.status);
            let v = c.get(&format!("/victim?{method}{pad}"));
            if v.body != b"genuine" {
                let again = c.get(&format!("/victim?{method}{pad}"));
                poisoned.push(format!(
                    "{method} {path} pad {pad}: {:?}, then {:?} ({})",
                    String::from_utf8_lossy(&v.body),
                    String::from_utf8_lossy(&again.body),
                    again.header("x-cache").unwrap_or("")
                ));
            }
        }
    }
    assert!(
        poisoned.is_empty(),
        "victim answered by stray bytes:\n{}",
        poisoned.join("\n")
    );
}

/// A whole response, then (per the path) part of a record, or close_notify
/// with the socket left open: bytes the proxy's read of the response never
/// shows it, and the socket is empty after them.
fn answer_then_tail(head: &str) -> Answer {
    let mut a = Answer::records(vec![GENUINE.to_vec()]);
    if head.contains("/partial") {
        // An application-data record header announcing 64 bytes, and 3 of them.
        a.raw_tail = vec![23, 3, 3, 0, 64, 1, 2, 3];
    } else if head.contains("/notify") {
        a.close_notify = true;
    }
    a
}

/// Stray bytes that the TLS layer takes in without producing plaintext
/// (part of a record, a close_notify) still make the connection unusable:
/// it is never pooled, so no request goes to it, and the next request is
/// answered over a new connection.
#[test]
fn a_partial_record_or_close_notify_after_a_response_is_never_pooled() {
    let pki = Pki::new("ringfront test CA");
    let (origin, reused) = tls_origin(Arc::new(pki.leaf(&["localhost"]).server_config()), answer_then_tail);
    let dir = tempfile::tempdir().unwrap();
    pki.write_ca(dir.path());
    let cfg = config(&[("o", origin)], "o", "").replace(
        "id = \"o\"\n",
        "id = \"o\"\nprotocol = \"https\"\nca_file = \"ca.pem\"\nsni = \"localhost\"\n",
    );
    let p = Proxy::start_in(&cfg, dir);
    let mut c = p.client();
    for path in ["/partial", "/notify", "/partial", "/notify"] {
        assert_eq!(c.get(path).body, b"genuine", "{path}");
        assert_eq!(c.get(&format!("/victim{path}")).body, b"genuine", "after {path}");
    }
    assert_eq!(
        reused.load(Ordering::SeqCst),
        0,
        "requests sent over a connection that had sent bytes after a response"
    );
}
