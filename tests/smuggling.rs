//! Strict request framing and request smuggling over real sockets: every
//! request that two HTTP/1.1 parsers could frame differently gets 400, the
//! connection is closed, and nothing of it (nor anything hidden behind it)
//! reaches the origin. The cases: ambiguous lengths, the classic smuggling
//! shapes (RFC 9112 §6.1, §6.3, §11.2) and parser-differential oddities.
mod common;
use common::*;

/// Each must get 400 + close, and the origin must see nothing.
const REJECTED: &[(&str, &[u8])] = &[
    (
        "CL then TE",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE then CL",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    ),
    (
        "two differing CLs",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    ),
    ("CL with trailing junk", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello"),
    ("negative CL", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\nhello"),
    (
        "TE chunked, then identity",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    ),
    ("TE without chunked", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nxxxx"),
    ("obs-fold with space", b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n"),
    ("NUL inside a header value", b"GET / HTTP/1.1\r\nHost: t\r\nX-Nul: a\0b\r\n\r\n"),
    ("bare CR inside a header value", b"GET / HTTP/1.1\r\nHost: t\r\nX-Cr: a\rb\r\n\r\n"),
    ("HTTP/1.1 with no headers at all", b"GET / HTTP/1.1\r\n\r\n"),
    (
        "CL.TE",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED",
    ),
    (
        "TE.CL",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE.TE, second coding not chunked",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE obfuscated value",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE chunked not last",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    ),
    (
        "space before colon",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    ),
    (
        "duplicate CL, same value split in two headers with another between",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nX: y\r\nContent-Length: 30\r\n\r\nabc",
    ),
    ("CL with plus sign", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc"),
    ("CL with inner space", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3 0\r\n\r\nabc"),
    (
        "CL overflowing 64 bits",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\nabc",
    ),
    ("CL hex", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x3\r\n\r\nabc"),
    (
        "obs-fold continuing Transfer-Encoding",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n chunked\r\n\r\n0\r\n\r\n",
    ),
    ("obs-fold with tab", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n"),
    ("bare CR inside a header line", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rX-B: b\r\n\r\n"),
    ("bare CR ending the request line", b"GET / HTTP/1.1\rHost: t\r\n\r\n"),
    ("bare LF line endings", b"GET / HTTP/1.1\nHost: t\n\n"),
    ("bare LF ending one header line", b"GET / HTTP/1.1\r\nHost: t\nX-A: 1\r\n\r\n"),
    (
        "bare LF hiding a Content-Length",
        b"POST / HTTP/1.1\r\nHost: t\r\nX-A: 1\nContent-Length: 3\r\n\r\nabc",
    ),
    ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: t\r\nX-A: \0\r\n\r\n"),
    ("NUL in the request target", b"GET /a\0b HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("NUL in a header name", b"GET / HTTP/1.1\r\nHost: t\r\nX\0A: 1\r\n\r\n"),
    ("two spaces in the request line", b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("trailing space after the version", b"GET / HTTP/1.1 \r\nHost: t\r\n\r\n"),
    ("tab as request line separator", b"GET\t/ HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("version with two digits", b"GET / HTTP/1.10\r\nHost: t\r\n\r\n"),
    ("missing version", b"GET /\r\nHost: t\r\n\r\n"),
    ("space in the target", b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n"),
    ("header without colon", b"GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n"),
    ("empty header name", b"GET / HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n"),
    ("whitespace before the first header", b"GET / HTTP/1.1\r\n Host: t\r\n\r\n"),
    ("two Host headers", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    ("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nX: y\r\n\r\n"),
    ("TE on HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    // SPEC §3.1: a length or a coding given twice or as a list, an empty
    // Host (nginx and HAProxy answer 400 or re-frame).
    ("CL as a list of equal values", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello"),
    (
        "CL twice with equal values",
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ),
    (
        "TE chunked twice",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ),
    ("TE with an empty list element", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n"),
    ("TE as a list", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
    ("empty Host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n"),
    // Chunk lines outside RFC 9112 §7.1, sent with the head: refused before
    // anything reaches the origin.
    ("chunk ext without a name", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;\r\nhello\r\n0\r\n\r\n"),
    ("chunk ext with a bracket", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;bad[=x\r\nhello\r\n0\r\n\r\n"),
    ("space after chunk size", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
    ("chunk ext with VT", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;\x0b\r\nhello\r\n0\r\n\r\n"),
    ("chunk ext with 0xff", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;\xff\r\nhello\r\n0\r\n\r\n"),
    (
        "a request line as trailer",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nGET /smuggled HTTP/1.1\r\n\r\n",
    ),
    ("chunk size zz", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
    (
        "chunk size of 20 hex digits",
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000005\r\nhello\r\n0\r\n\r\n",
    ),
];

#[test]
fn smuggling_shapes_get_400_close_and_reach_no_origin() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let mut failures = Vec::new();
    for (name, req) in REJECTED {
        let mut c = p.client();
        c.send(req);
        match c.read_response(false) {
            Some(r) if r.status == 400 && r.header("connection") == Some("close") && c.closed() => {}
            Some(r) => failures.push(format!("{name}: {} {:?}", r.status, r.headers)),
            None => failures.push(format!("{name}: no response")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(o.requests(), 0, "reached the origin: {:?}", o.control().heads());
}

/// A version this proxy does not speak: 505, closed, nothing forwarded.
#[test]
fn other_major_versions_get_505_and_close() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    for req in [
        &b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"[..],
        b"GET / HTTP/3.0\r\nHost: t\r\n\r\n",
    ] {
        let mut c = p.client();
        c.send(req);
        let r = c.read_response(false).expect("an answer");
        assert_eq!(r.status, 505, "{:?}", String::from_utf8_lossy(req));
        assert!(c.closed());
    }
    assert_eq!(o.requests(), 0);
}

/// Bodies that hide a request: the origin gets one request whose body holds
/// the hidden bytes, never a second request of its own.
#[test]
fn a_request_hidden_in_a_body_stays_body() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let hidden = b"GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    // By Content-Length.
    let mut c = p.client();
    let mut req = format!(
        "POST /cl HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        hidden.len()
    )
    .into_bytes();
    req.extend_from_slice(hidden);
    c.send(&req);
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-received-bytes"), Some(hidden.len().to_string().as_str()));
    // By chunks, with a chunk extension and a trailer.
    let mut req = b"POST /te HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(format!("{:x};ext=1\r\n", hidden.len()).as_bytes());
    req.extend_from_slice(hidden);
    req.extend_from_slice(b"\r\n0\r\nX-Trailer: 1\r\n\r\n");
    c.send(&req);
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-received-bytes"), Some(hidden.len().to_string().as_str()));
    // Then a real follow-up request on the same connection.
    assert_eq!(c.get("/after").status, 200);
    let heads = o.control().heads();
    assert_eq!(heads.len(), 3, "{heads:?}");
    assert!(heads.iter().all(|h| !h.starts_with("GET /smuggled")), "{heads:?}");
}

/// A chunk size beyond 64 bits, or with junk after it, gets 400 and ends the
/// connection without a complete body reaching the origin; the bytes after
/// it are never read as a request.
#[test]
fn oversize_and_malformed_chunk_sizes_close_the_connection() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let bodies = [
        &b"fffffffffffffffff\r\nx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"[..],
        b"1 1\r\nx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
        b"-1\r\nx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
        b"0x1\r\nx\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"11111111111111111\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5;\nhello\r\n",
    ];
    for body in bodies {
        let mut c = p.client();
        c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
        c.send(body);
        let r = c.read_response(false);
        assert_eq!(r.map(|r| r.status), Some(400), "{:?}", String::from_utf8_lossy(body));
        assert!(c.closed(), "{:?}", String::from_utf8_lossy(body));
    }
    // The origin saw at most the heads of the POSTs, never a request made
    // of the bytes after a bad chunk size.
    let heads = o.control().heads();
    assert!(heads.len() <= bodies.len(), "{heads:?}");
    assert!(heads.iter().all(|h| h.starts_with("POST /up")), "{heads:?}");
}

/// What reaches the origin is framed by ringfront (SPEC §3.1): one canonical
/// Content-Length, or chunk-size lines of its own without extensions and no
/// trailer; a small chunked body is sent whole with a Content-Length.
#[test]
fn forwarded_bodies_are_framed_by_ringfront() {
    use common::scripted::{Reply, ScriptedOrigin};
    let o = ScriptedOrigin::start(|_| Reply::now(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let p = Proxy::start(&config(&[("o", o.addr)], "o", ""));
    let mut c = p.client();
    // Small chunked body, extensions and a trailer: decoded, sent whole.
    c.send(b"POST /small HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3;a=b\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
    // Large chunked body arriving in pieces: streamed, framed again.
    c.send(b"POST /large HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    let piece = vec![b'x'; 40_000];
    for _ in 0..3 {
        c.send(format!("{:x};ext=\"v\"\r\n", piece.len()).as_bytes());
        c.send(&piece);
        c.send(b"\r\n");
    }
    c.send(b"0\r\nX-Trailer: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let got = o.received();
    assert_eq!(got.len(), 2);
    let small = String::from_utf8_lossy(&got[0]);
    assert!(small.contains("\r\nContent-Length: 5\r\n"), "{small}");
    assert!(!small.to_ascii_lowercase().contains("transfer-encoding"), "{small}");
    assert!(small.ends_with("\r\n\r\nabcde"), "{small}");
    let large = &got[1];
    let text = String::from_utf8_lossy(large);
    assert!(text.contains("\r\nTransfer-Encoding: chunked\r\n"), "{}", &text[..200]);
    assert!(
        !text.contains("ext=") && !text.contains("X-Trailer"),
        "extensions or trailer passed on"
    );
    assert!(text.ends_with("\r\n0\r\n\r\n"));
    let body_at = large.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut d = ringfront::http::chunked::ChunkedDecoder::new();
    let mut data = Vec::new();
    d.feed(&large[body_at..], |r| data.extend_from_slice(&large[body_at..][r]))
        .unwrap();
    assert!(d.is_done());
    assert_eq!(data.len(), 120_000);
}

/// An error inside a streamed chunked body: 400 to the viewer, and the
/// origin connection is closed before the request is complete.
#[test]
fn a_bad_chunk_inside_a_streamed_body_gets_400() {
    use common::scripted::{Reply, ScriptedOrigin};
    let o = ScriptedOrigin::start(|_| Reply::now(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    let p = Proxy::start(&config(&[("o", o.addr)], "o", ""));
    let mut c = p.client();
    c.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    // The first chunk is on its way to the origin; then a bad size line.
    c.send(b"zz\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).expect("an answer");
    assert_eq!(r.status, 400);
    assert!(c.closed());
    assert!(o.request_lines().iter().all(|l| !l.contains("smuggled")));
    assert!(o.received().is_empty(), "a request completed at the origin");
}
