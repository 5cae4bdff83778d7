//! The response headers policy (SPEC §2 `viewer_response`), over sockets:
//! SPEC §5, "`viewer_response` actions of the behavior apply last, to every
//! response (hits, misses, errors, 304s)". A set header replaces whatever
//! the origin or ringfront said under its name (never a second line); a
//! removed one is gone, the origin's and ringfront's own alike.
mod common;
use common::rfc::values;
use common::scripted::{Reply, ScriptedOrigin};
use common::{config, refused_addr, Proxy, Response};

/// The policy under test: two headers set (one of them the origin's
/// `Server`, and `Strict-Transport-Security`, which the origin also sends),
/// one removed.
const POLICY: &str = "viewer_response = { set = { \"strict-transport-security\" = \"max-age=63072000\", \
                      \"Server\" = \"edge\" }, remove = [\"X-Powered-By\"] }\n";

/// Header lines of an origin with opinions of its own.
const ORIGIN_LINES: &str = "Server: origin-httpd\r\nX-Powered-By: php/8\r\nStrict-Transport-Security: max-age=1\r\n";

/// An origin answering every request with `status`, [`ORIGIN_LINES`],
/// `lines`, and the body `ok`; a request with `If-None-Match` gets a 304.
fn origin(status: &'static str, lines: &'static str) -> ScriptedOrigin {
    ScriptedOrigin::start(move |head| {
        let reply = if head.to_ascii_lowercase().contains("if-none-match:") {
            format!("HTTP/1.1 304 Not Modified\r\n{ORIGIN_LINES}{lines}\r\n")
        } else {
            format!("HTTP/1.1 {status}\r\n{ORIGIN_LINES}{lines}Content-Length: 2\r\n\r\nok")
        };
        Reply::now(reply.as_bytes())
    })
}

/// A proxy in front of `o` whose behavior has `policy` (and caches when
/// `cache`).
fn proxy(o: std::net::SocketAddr, cache: bool, policy: &str) -> Proxy {
    let cache = if cache { "cache = true\n" } else { "cache = false\n" };
    let cfg = config(&[("o", o)], "o", "").replace("cache = false\n", &format!("{cache}{policy}"));
    Proxy::start(&cfg)
}

/// `r` carries the policy's edits: one `Server: edge`, one
/// `Strict-Transport-Security` (ours), no `X-Powered-By`.
#[track_caller]
fn assert_edited(r: &Response) {
    assert_eq!(values(r, "server"), ["edge"], "{r:?}");
    assert_eq!(values(r, "strict-transport-security"), ["max-age=63072000"], "{r:?}");
    assert!(!r.has_header("x-powered-by"), "{r:?}");
}

/// A response streamed through (a behavior that does not cache): the
/// origin's X-Powered-By removed, its Server and Strict-Transport-Security
/// replaced, once each.
#[test]
fn a_miss_streamed_through_gets_the_policy() {
    let o = origin("200 OK", "");
    let p = proxy(o.addr, false, POLICY);
    let r = p.client().get("/a");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_edited(&r);
    assert_eq!(r.header("x-cache"), Some("Miss from ringfront"));
}

/// A stored miss (answered from the recording) and the hits after it,
/// the full object and a range of it (206).
#[test]
fn a_stored_miss_and_its_hits_get_the_policy() {
    let o = origin("200 OK", "Cache-Control: max-age=3600\r\nETag: \"v1\"\r\n");
    let p = proxy(o.addr, true, POLICY);
    let mut c = p.client();
    let miss = c.get("/a");
    assert!(miss.header("cache-status").unwrap_or("").contains("stored"), "{miss:?}");
    assert_edited(&miss);
    let hit = c.get("/a");
    assert_eq!(hit.header("x-cache"), Some("Hit from ringfront"), "{hit:?}");
    assert_edited(&hit);
    c.send(b"GET /a HTTP/1.1\r\nHost: test\r\nRange: bytes=1-1\r\n\r\n");
    let part = c.read_response(false).unwrap();
    assert_eq!((part.status, part.text().as_str()), (206, "k"));
    assert_edited(&part);
    assert_eq!(o.received().len(), 1);
}

/// A 304 the cache answers to a matching If-None-Match (RFC 9111 §4.3.2).
#[test]
fn a_304_from_the_cache_gets_the_policy() {
    let o = origin("200 OK", "Cache-Control: max-age=3600\r\nETag: \"v1\"\r\n");
    let p = proxy(o.addr, true, POLICY);
    let mut c = p.client();
    c.get("/a");
    c.send(b"GET /a HTTP/1.1\r\nHost: test\r\nIf-None-Match: \"v1\"\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(r.header("x-cache"), Some("Hit from ringfront"), "{r:?}");
    assert_edited(&r);
    assert_eq!(o.received().len(), 1);
}

/// A stale object the origin confirms with a 304 (RFC 9111 §4.3.4): the
/// answer from the updated object.
#[test]
fn a_revalidated_answer_gets_the_policy() {
    let o = origin(
        "200 OK",
        "Cache-Control: max-age=60, stale-if-error=86400\r\nAge: 120\r\nETag: \"v1\"\r\n",
    );
    let p = proxy(o.addr, true, POLICY);
    let mut c = p.client();
    c.get("/a");
    let r = c.get("/a");
    assert_eq!(r.header("x-cache"), Some("RefreshHit from ringfront"), "{r:?}");
    assert_eq!(r.text(), "ok");
    assert_edited(&r);
}

/// An origin's error status, streamed through.
#[test]
fn a_404_from_the_origin_gets_the_policy() {
    let o = origin("404 Not Found", "");
    let p = proxy(o.addr, true, POLICY);
    let r = p.client().get("/missing");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-cache"), Some("Error from ringfront"), "{r:?}");
    assert_edited(&r);
}

/// A response ringfront makes itself when no origin answers: its own
/// `Server` line replaced too.
#[test]
fn a_502_made_by_ringfront_gets_the_policy() {
    let p = proxy(refused_addr(), true, POLICY);
    let r = p.client().get("/a");
    assert_eq!(r.status, 502);
    assert!(r.has_header("proxy-status"), "{r:?}");
    assert_eq!(values(&r, "server"), ["edge"], "{r:?}");
    assert_eq!(values(&r, "strict-transport-security"), ["max-age=63072000"], "{r:?}");
}

/// The 403 to a method the behavior does not allow: the request was
/// routed, so its behavior's policy applies.
#[test]
fn a_403_for_a_method_not_allowed_gets_the_policy() {
    let o = origin("200 OK", "");
    let cfg = config(&[("o", o.addr)], "o", "").replace(
        "allowed_methods = [\"GET\", \"HEAD\", \"OPTIONS\", \"PUT\", \"POST\", \"PATCH\", \"DELETE\"]",
        &format!("allowed_methods = [\"GET\", \"HEAD\"]\n{POLICY}"),
    );
    let p = Proxy::start(&cfg);
    let mut c = p.client();
    c.send(b"DELETE /a HTTP/1.1\r\nHost: test\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(values(&r, "server"), ["edge"], "{r:?}");
    assert_eq!(values(&r, "strict-transport-security"), ["max-age=63072000"], "{r:?}");
    assert!(o.received().is_empty());
}

/// A request that never got routed (here a malformed head, 400) has no
/// behavior, so no policy.
#[test]
fn a_400_before_routing_has_no_policy() {
    let o = origin("200 OK", "");
    let p = proxy(o.addr, false, POLICY);
    let mut c = p.client();
    c.send(b"GET /a HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 400);
    assert!(!r.has_header("strict-transport-security"), "{r:?}");
}

/// "Apply last": ringfront's own lines can be removed (X-Cache) and
/// overridden (Cache-Status, Age), on a miss and on a hit.
#[test]
fn the_policy_applies_after_x_cache_cache_status_and_age() {
    let o = origin("200 OK", "Cache-Control: max-age=3600\r\n");
    let policy = "viewer_response = { set = { \"cache-status\" = \"edge\", \"age\" = \"7\" }, \
                  remove = [\"x-cache\", \"via\"] }\n";
    let p = proxy(o.addr, true, policy);
    let mut c = p.client();
    for r in [c.get("/a"), c.get("/a")] {
        assert!(!r.has_header("x-cache") && !r.has_header("via"), "{r:?}");
        assert_eq!(values(&r, "cache-status"), ["edge"], "{r:?}");
        assert_eq!(values(&r, "age"), ["7"], "{r:?}");
        assert_eq!(r.text(), "ok");
    }
    assert_eq!(o.received().len(), 1);
}

/// A response whose recording outgrew `max_object_size` streams on from
/// where the recording stopped: its head gets the policy too.
#[test]
fn a_response_past_max_object_size_gets_the_policy() {
    let data = vec![b'x'; 200_000];
    let mut reply =
        format!("HTTP/1.1 200 OK\r\n{ORIGIN_LINES}Cache-Control: max-age=3600\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for piece in data.chunks(10_000) {
        reply.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        reply.extend_from_slice(piece);
        reply.extend_from_slice(b"\r\n");
    }
    reply.extend_from_slice(b"0\r\n\r\n");
    let o = ScriptedOrigin::start(move |_| Reply::now(&reply));
    let cfg = config(&[("o", o.addr)], "o", "\n[cache]\nmax_object_size = \"64KiB\"\n")
        .replace("cache = false\n", &format!("cache = true\n{POLICY}"));
    let p = Proxy::start(&cfg);
    let r = p.client().get("/large");
    assert_eq!(r.status, 200);
    assert!(r.body == data, "got {} bytes", r.body.len());
    assert_edited(&r);
}

/// An `[[error_response]]` page in place of the origin's 404, and the same
/// page answered again from the cache (its `min_ttl`).
#[test]
fn an_error_page_and_its_cached_copy_get_the_policy() {
    let o = origin("404 Not Found", "");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("404.html"), "<h1>not here</h1>\n").unwrap();
    let pages = "\n[[error_response]]\nstatus = 404\nfile = \"404.html\"\nmin_ttl = \"1h\"\n";
    let cfg = config(&[("o", o.addr)], "o", pages).replace("cache = false\n", &format!("cache = true\n{POLICY}"));
    let p = Proxy::start_in(&cfg, dir);
    let mut c = p.client();
    for r in [c.get("/missing"), c.get("/missing")] {
        assert_eq!((r.status, r.text().as_str()), (404, "<h1>not here</h1>\n"));
        assert_eq!(values(&r, "server"), ["edge"], "{r:?}");
        assert_eq!(values(&r, "strict-transport-security"), ["max-age=63072000"], "{r:?}");
    }
}

/// A routed request whose body turns out malformed (a bad chunk size, RFC
/// 9112 §7.1) gets a 400 with its behavior's policy.
#[test]
fn a_400_for_a_malformed_body_of_a_routed_request_gets_the_policy() {
    let o = origin("200 OK", "");
    let p = proxy(o.addr, false, POLICY);
    let mut c = p.client();
    c.send(b"POST /a HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(values(&r, "server"), ["edge"], "{r:?}");
    assert_eq!(values(&r, "strict-transport-security"), ["max-age=63072000"], "{r:?}");
}

/// SPEC §5 "to every response": an origin's interim response forwarded
/// to the viewer (103 Early Hints, RFC 9110 §15.2) gets the policy too,
/// before the final response does; ringfront's own `100 Continue`, which
/// answers the viewer's Expect and no origin sent, stays bare.
#[test]
fn a_forwarded_interim_response_gets_the_policy_and_100_continue_stays_bare() {
    let o = ScriptedOrigin::start(|_| {
        let reply = format!(
            "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n{ORIGIN_LINES}\r\n\
             HTTP/1.1 200 OK\r\n{ORIGIN_LINES}Content-Length: 2\r\n\r\nok"
        );
        Reply::now(reply.as_bytes())
    });
    let p = proxy(o.addr, false, POLICY);
    let mut s = std::net::TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(
        &mut s,
        b"GET /hints HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let out = String::from_utf8_lossy(&common::read_until_close(&mut s)).into_owned();
    let (interim, fin) = out.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{out}"));
    assert!(interim.starts_with("HTTP/1.1 103 "), "{out}");
    let lower = interim.to_ascii_lowercase();
    assert!(lower.contains("\r\nlink: </s.css>; rel=preload"), "{interim}");
    assert!(!lower.contains("x-powered-by"), "{interim}");
    assert_eq!(lower.matches("\r\nserver: ").count(), 1, "{interim}");
    assert!(lower.contains("\r\nserver: edge"), "{interim}");
    assert!(
        lower.contains("\r\nstrict-transport-security: max-age=63072000"),
        "{interim}"
    );
    assert!(!lower.contains("max-age=1"), "{interim}");
    assert!(fin.starts_with("HTTP/1.1 200 ") && fin.ends_with("ok"), "{out}");
    assert!(!fin.to_ascii_lowercase().contains("x-powered-by"), "{fin}");

    let mut c = p.client();
    c.send(b"POST /up HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = std::io::Read::read(&mut c.s, &mut b).unwrap();
        assert!(n > 0, "closed before 100 Continue");
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&got), "HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"hi");
    let fin = c.read_response(false).unwrap();
    assert_eq!(fin.status, 200, "{fin:?}");
    assert_edited(&fin);
}
