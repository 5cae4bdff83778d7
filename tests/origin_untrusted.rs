//! Origin responses are untrusted input (SPEC §3.5): bytes after a
//! response's end never become another request's response, the viewer only
//! ever gets framing ringfront wrote, and odd statuses are failed responses.
mod common;
use common::scripted::{Reply, ScriptedOrigin};
use common::*;

const GENUINE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nCache-Control: max-age=600\r\n\r\ngenuine";
const POISON: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nCache-Control: max-age=600\r\n\r\nPOISONED";

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
            let first = first.to_vec();
            let o = ScriptedOrigin::start(move |head| {
                if head.contains("/victim") {
                    Reply::now(GENUINE)
                } else {
                    Reply {
                        now: first.clone(),
                        later: Some(POISON.to_vec()),
                        close: false,
                    }
                }
            });
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
