//! Origin responses are untrusted input (SPEC §3.5): bytes after a
//! response's end never become another request's response, the viewer only
//! ever gets framing ringfront wrote, and odd statuses are failed responses.
mod common;
use common::scripted::{Reply, ScriptedOrigin};
use common::*;

const GENUINE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nCache-Control: max-age=600\r\n\r\ngenuine";
const POISON: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nCache-Control: max-age=600\r\n\r\nPOISONED";

/// An origin that answers `/victim` genuinely and anything else with
/// `first`, followed by [`POISON`] on the same connection when the test
/// releases it.
fn poisoning_origin(first: &[u8]) -> ScriptedOrigin {
    let first = first.to_vec();
    ScriptedOrigin::start(move |head| {
        if head.contains("/victim") {
            Reply::now(GENUINE)
        } else {
            Reply {
                now: first.clone(),
                later: Some(POISON.to_vec()),
                ..Default::default()
            }
        }
    })
}

fn cached_proxy(o: &ScriptedOrigin, driver: &str) -> Proxy {
    let cfg = config(&[("o", o.addr)], "o", "")
        .replace("cache = false\n", "cache = true\n")
        .replace("workers = 1\n", &format!("workers = 1\nio_driver = \"{driver}\"\n"));
    Proxy::start(&cfg)
}

/// Bytes that arrive in a later TCP segment after a response's end (a body
/// on a HEAD, 204 or 304 answer; more bytes than Content-Length) are never
/// read as the next request's response on that pooled connection, whatever
/// its idle time (nginx serves the genuine /victim in every such case).
#[test]
fn late_bytes_after_a_response_never_answer_the_next_request() {
    let cases: &[(&str, &str, &[u8])] = &[
        ("HEAD", "/head", b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n"),
        ("GET", "/204", b"HTTP/1.1 204 No Content\r\n\r\n"),
        ("GET", "/304", b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
        (
            "GET",
            "/long",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\nok",
        ),
    ];
    for driver in ["io_uring", "epoll"] {
        for (method, path, first) in cases {
            let o = poisoning_origin(first);
            let p = cached_proxy(&o, driver);
            let mut c = p.client();
            c.send(format!("{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
            let r = c.read_response(*method == "HEAD").expect("first response");
            assert!(r.status < 400, "{driver} {method} {path}: {}", r.status);
            // The stray bytes now sit in the pooled connection's socket.
            o.release();
            for round in 0..2 {
                c.send(b"GET /victim HTTP/1.1\r\nHost: test\r\n\r\n");
                let Some(v) = c.read_response(false) else {
                    panic!("{driver} {method} {path}: no response; log:\n{}", p.log_text());
                };
                assert_eq!(
                    String::from_utf8_lossy(&v.body),
                    "genuine",
                    "{driver}, after {method} {path}, round {round}"
                );
            }
        }
    }
}

/// Sends `GET path` with `Connection: close` to a proxy in front of an
/// origin that answers `response` once; returns the raw bytes the viewer got.
fn raw_answer(response: &[u8], path: &str) -> String {
    let response = response.to_vec();
    let o = ScriptedOrigin::start(move |_| Reply {
        now: response.clone(),
        close: true,
        ..Default::default()
    });
    let p = Proxy::start(&config(&[("o", o.addr)], "o", ""));
    let mut s = std::net::TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    use std::io::Write;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    String::from_utf8_lossy(&read_until_close(&mut s)).into_owned()
}

fn count_lines(raw: &str, name: &str) -> usize {
    let head = raw.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with(&format!("{name}:")))
        .count()
}

/// The viewer only ever gets framing ringfront wrote (SPEC §3.5): one
/// canonical Content-Length, or chunk framing of its own.
#[test]
fn origin_framing_is_rewritten_never_passed_on() {
    // TE and CL: read by TE, forwarded without the CL.
    let raw = raw_answer(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 113\r\n\r\nf;ext=1\r\n0123456789abcde\r\n0\r\nX-T: 1\r\n\r\n",
        "/te-cl",
    );
    assert_eq!(count_lines(&raw, "content-length"), 0, "{raw}");
    assert_eq!(count_lines(&raw, "transfer-encoding"), 1, "{raw}");
    assert!(
        raw.ends_with("\r\n\r\nf\r\n0123456789abcde\r\n0\r\n\r\n"),
        "chunk framing of our own: {raw:?}"
    );
    // A list of equal lengths, or two equal lines: one canonical line.
    for resp in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ] {
        let raw = raw_answer(resp, "/cl");
        assert_eq!(count_lines(&raw, "content-length"), 1, "{raw}");
        assert!(
            raw.contains("\r\nContent-Length: 5\r\n") && raw.ends_with("\r\n\r\nhello"),
            "{raw}"
        );
    }
    // No body, no length: a 204's Content-Length is dropped.
    let raw = raw_answer(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", "/204");
    assert!(raw.starts_with("HTTP/1.1 204"), "{raw}");
    assert_eq!(count_lines(&raw, "content-length"), 0, "{raw}");
}

/// A Transfer-Encoding other than exactly `chunked`, or a status outside
/// 100..=599, is a malformed response: 502, and nothing of it reaches the
/// viewer (nginx answers 502 too).
#[test]
fn malformed_origin_framing_and_statuses_are_502() {
    let cases: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nsecret",
        b"HTTP/1.1 000 Zero\r\nContent-Length: 6\r\n\r\nsecret",
        b"HTTP/1.1 099 Low\r\nContent-Length: 6\r\n\r\nsecret",
        b"HTTP/1.1 600 High\r\nContent-Length: 6\r\n\r\nsecret",
    ];
    for resp in cases {
        let raw = raw_answer(resp, "/bad");
        assert!(
            raw.starts_with("HTTP/1.1 502 "),
            "{:?} -> {raw:?}",
            String::from_utf8_lossy(resp)
        );
        assert!(!raw.contains("secret"), "{raw}");
    }
}

/// A body sent on a response that has none (204, 304, an answer to HEAD)
/// can arrive after the next request already went out on the connection,
/// where no check can tell it from that request's response; so a connection
/// is never reused after a bodiless response (the review's timing: the
/// stray bytes 5 ms after the 204, the next request sooner).
#[test]
fn no_connection_is_reused_after_a_bodiless_response() {
    for (method, first) in [
        ("GET", &b"HTTP/1.1 204 No Content\r\n\r\n"[..]),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n"),
    ] {
        let o = std::sync::Arc::new(poisoning_origin(first));
        let p = cached_proxy(&o, "io_uring");
        let mut c = p.client();
        c.send(format!("{method} /first HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        c.read_response(method == "HEAD").expect("first response");
        // The next request goes out; the stray bytes follow once it is on
        // its way (on a new connection, or, if reused, the old one).
        c.send(b"GET /victim HTTP/1.1\r\nHost: test\r\n\r\n");
        let releaser = {
            let o = o.clone();
            std::thread::spawn(move || {
                let t0 = std::time::Instant::now();
                while o.connections() < 2 && t0.elapsed() < std::time::Duration::from_millis(500) {
                    std::thread::yield_now();
                }
                o.release();
            })
        };
        let v = c.read_response(false).expect("victim response");
        releaser.join().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&v.body),
            "genuine",
            "after {method} {:?}",
            o.request_lines()
        );
        assert_eq!(
            o.connections(),
            2,
            "the connection was reused after a bodiless response"
        );
    }
}
