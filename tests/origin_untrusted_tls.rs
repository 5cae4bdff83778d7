//! SPEC §3.5 over an https origin: bytes after a response's end must make
//! the connection unusable even when they were already taken off the socket
//! by the TLS layer (monoio-rustls reads ciphertext 16 KiB at a time, rustls
//! deframes 4 KiB at a time), where the pool's `MSG_PEEK` cannot see them.
mod common;
use common::pki::Pki;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

const GENUINE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine";
const POISON: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED";

/// An https origin that answers each request head with `answer(head)`: each
/// element is written as a TLS record of its own, and all of them go out in
/// one `write` (so they arrive together).
fn tls_origin(cfg: Arc<rustls::ServerConfig>, answer: fn(&str) -> Vec<Vec<u8>>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut sock) = s else { break };
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(WAIT));
                let mut conn = rustls::ServerConnection::new(cfg).unwrap();
                let mut plain = Vec::new();
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
                    for record in answer(&head) {
                        conn.writer().write_all(&record).unwrap();
                    }
                    let mut out = Vec::new();
                    while conn.wants_write() {
                        conn.write_tls(&mut out).unwrap();
                    }
                    if sock.write_all(&out).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A bodiless answer (a 204, or a 200 with Content-Length for HEAD) padded to
/// `pad` bytes of head, then a whole second response (bytes after the first
/// one's end) in a record of its own.
fn answer(head: &str) -> Vec<Vec<u8>> {
    if head.contains("/victim") {
        return vec![GENUINE.to_vec()];
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
    vec![a, POISON.to_vec()]
}

/// Bytes after a bodiless response's end (a HEAD answer; a 204 with the
/// cache on), in a TLS record of their own that arrives with it, never answer
/// the next request on that connection, nor get cached under its key.
///
/// Fails today: with the first response in one record of about 4,000 bytes
/// on the wire and the stray record after it, rustls's first 4 KiB read of
/// what monoio-rustls took off the socket completes the first record only.
/// The proxy sees exactly one whole response (nothing extra), pools the
/// connection, and the pool's peek finds the socket empty; the next
/// request's read then decrypts the rest of the stray record, and `/victim`
/// is answered with `POISONED` (and, with the cache on, stored).
#[test]
#[ignore = "known defect: stray bytes buffered inside the TLS layer escape the pool's peek"]
fn stray_bytes_buffered_by_tls_never_answer_the_next_request() {
    let pki = Pki::new("ringfront test CA");
    let origin = tls_origin(Arc::new(pki.leaf(&["localhost"]).server_config()), answer);
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
