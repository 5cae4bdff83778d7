//! RFC 9111 §3 (Storing Responses in Caches), §3.3 (Storing Incomplete
//! Responses) and §3.4, with RFC 9112 §6.3 (Message Body Length) and §8
//! (Handling Incomplete Messages), over sockets: a response framed by
//! chunks or by the close of the connection is stored once it is complete,
//! with a Content-Length of ringfront's own (SPEC §4); one cut short is never
//! stored, and its viewer never gets it as a whole response.
//!
//! The origins are scripted: each test says byte for byte what the origin
//! sends and how its connection ends (a FIN, or a reset).
mod common;
use common::rfc::{origin_requests, proxy, twice};
use common::scripted::{Reply, ScriptedOrigin};
use common::{config, Proxy, WAIT};
use ringfront::http::chunked::ChunkedDecoder;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// `n` body bytes that do not repeat with any chunk size used here.
fn body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

/// A storable head without a length: framed by chunks or by the close.
fn head(chunked: bool) -> Vec<u8> {
    let te = if chunked { "Transfer-Encoding: chunked\r\n" } else { "" };
    format!("HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\n{te}\r\n").into_bytes()
}

/// `data` as chunks of `piece` bytes (the first with a chunk extension),
/// then, when `last`, the last chunk and a trailer section.
fn chunks(data: &[u8], piece: usize, last: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in data.chunks(piece).enumerate() {
        let ext = if i == 0 { ";ext=1" } else { "" };
        out.extend_from_slice(format!("{:x}{ext}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    if last {
        out.extend_from_slice(b"0\r\nX-Sum: 1\r\n\r\n");
    }
    out
}

/// An origin answering every request with `reply`.
fn origin(reply: Reply) -> ScriptedOrigin {
    ScriptedOrigin::start(move |_| reply.clone())
}

/// A caching proxy as `rfc::proxy` makes it, with `max_object_size`.
fn proxy_max(o: &ScriptedOrigin, max: &str) -> Proxy {
    let extra = format!("\n[cache]\nmax_object_size = \"{max}\"\n");
    let cfg = config(&[("o", o.addr)], "o", &extra).replace("cache = false\n", "cache = true\ndefault_ttl = \"0s\"\n");
    Proxy::start(&cfg)
}

/// What a viewer got for one GET on a connection of its own: every byte
/// until the proxy ended the connection, and whether it ended with a reset.
struct Raw {
    bytes: Vec<u8>,
    reset: bool,
}

fn get_raw(p: &Proxy, path: &str) -> Raw {
    let mut s = TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut bytes = Vec::new();
    let mut b = [0u8; 65536];
    loop {
        match s.read(&mut b) {
            Ok(0) => return Raw { bytes, reset: false },
            Ok(n) => bytes.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Raw { bytes, reset: true },
            Err(e) => panic!("the proxy did not end the connection: {e}"),
        }
    }
}

/// The status and body in `raw` when the response is whole by its own
/// framing (RFC 9112 §8): chunked up to its last chunk, as long as its
/// Content-Length, or delimited by a close that was not a reset. `None`:
/// visibly cut short.
fn whole(raw: &Raw) -> Option<(u16, Vec<u8>)> {
    let mut hdrs = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut hdrs);
    let Ok(httparse::Status::Complete(n)) = r.parse(&raw.bytes) else {
        return None;
    };
    let status = r.code?;
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let rest = &raw.bytes[n..];
    if header("transfer-encoding").is_some() {
        let mut d = ChunkedDecoder::new();
        let mut data = Vec::new();
        d.feed(rest, |rg| data.extend_from_slice(&rest[rg])).ok()?;
        return d.is_done().then_some((status, data));
    }
    if let Some(cl) = header("content-length") {
        let cl: usize = cl.trim().parse().ok()?;
        return (rest.len() >= cl).then(|| (status, rest[..cl].to_vec()));
    }
    (!raw.reset).then(|| (status, rest.to_vec()))
}

/// A response cut short at the origin reached the viewer as something it
/// can tell from a whole one: an error status, or a body visibly cut.
fn assert_not_passed_off_as_whole(raw: &Raw, what: &str) {
    if let Some((200, b)) = whole(raw) {
        panic!("{what}: the viewer got a well-framed 200 of {} bytes", b.len());
    }
}

/// The second GET for `path` went to the origin again: nothing was stored.
fn assert_not_stored(p: &Proxy, o: &ScriptedOrigin, path: &str) {
    let before = origin_requests(o, path);
    let _ = get_raw(p, path);
    assert!(
        origin_requests(o, path) > before,
        "{path} was answered from the cache after it was cut short"
    );
}

/// RFC 9112 §6.3: "If a Transfer-Encoding header field is present and the
/// chunked transfer coding (Section 7.1) is the final encoding, the message
/// body length is determined by reading and decoding the chunked data until
/// the transfer coding indicates the data is complete", and §7.1.3's
/// decoding ends with "Content-Length := length; Remove "chunked" from
/// Transfer-Encoding". RFC 9111 §3 lets a complete response be stored
/// however it was framed: a 2 MiB chunked response (with a chunk extension
/// and a trailer) is a hit on the second GET, the same bytes, framed by a
/// Content-Length (the acceptance).
#[test]
fn a_chunked_response_is_stored_and_hit_with_a_content_length() {
    let data = body(2 << 20);
    let mut reply = head(true);
    reply.extend(chunks(&data, 7777, true));
    let o = origin(Reply::now(&reply));
    let p = proxy(&o);
    let mut c = p.client();
    let (first, second, hit) = twice(&mut c, &o, "/chunked");
    assert!(first.body == data, "the first answer's body differs");
    assert!(hit, "not a hit: {:?}", second.headers);
    assert!(second.body == data, "the hit's body differs");
    assert_eq!(second.header("content-length"), Some("2097152"));
    assert!(!second.has_header("transfer-encoding"), "{:?}", second.headers);
    assert!(!second.has_header("x-sum"), "a trailer field became a header");
}

/// RFC 9112 §6.3: "Otherwise, this is a response message without a
/// declared message body length, so the message body length is determined
/// by the number of octets received prior to the server closing the
/// connection", and §8: such a response "is considered complete unless an
/// error was indicated by the underlying connection". Complete, it is
/// stored (RFC 9111 §3), and a hit says its length.
#[test]
fn a_close_delimited_response_is_stored_once_the_origin_closes() {
    let data = body(100_000);
    let mut reply = head(false);
    reply.extend_from_slice(&data);
    let o = origin(Reply {
        close: true,
        ..Reply::now(&reply)
    });
    let p = proxy(&o);
    let mut c = p.client();
    let (first, second, hit) = twice(&mut c, &o, "/closed");
    assert!(first.body == data, "the first answer's body differs");
    assert!(hit, "not a hit: {:?}", second.headers);
    assert!(second.body == data, "the hit's body differs");
    assert_eq!(second.header("content-length"), Some("100000"));
}

/// RFC 9112 §8: "A message body that uses the chunked transfer coding is
/// incomplete if the zero-sized chunk that terminates the encoding has not
/// been received." RFC 9111 §3.3: "a cache MUST NOT use an incomplete
/// response to answer requests unless the response has been made
/// complete"; ringfront stores none (SPEC §4). The origin closes (FIN)
/// before its last chunk.
#[test]
fn a_chunked_response_without_its_last_chunk_is_not_stored() {
    let mut reply = head(true);
    reply.extend(chunks(&body(50_000), 4096, false));
    cut_while_recording(&reply, "/unterminated", "chunked without its last chunk");
}

/// RFC 9112 §8: a close-delimited response is complete "unless an error
/// was indicated by the underlying connection"; a reset is such an error.
/// RFC 9111 §3.4: "A response might transfer only a partial representation
/// if the connection closed prematurely". Not stored, and the viewer is not
/// handed the part as the whole.
#[test]
fn a_close_delimited_response_ended_by_a_reset_is_not_stored() {
    let mut reply = head(false);
    reply.extend_from_slice(&body(1000));
    let o = origin(Reply {
        reset: true,
        ..Reply::now(&reply)
    });
    let p = proxy(&o);
    let raw = get_raw(&p, "/reset");
    assert_not_passed_off_as_whole(&raw, "close-delimited, ended by a reset");
    assert_not_stored(&p, &o, "/reset");
}

/// RFC 9112 §6.3: "If the sender closes the connection or the recipient
/// times out before the indicated number of octets are received, the
/// recipient MUST consider the message to be incomplete and close the
/// connection." Not stored (RFC 9111 §3.3).
#[test]
fn a_response_short_of_its_content_length_is_not_stored() {
    let mut reply = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nContent-Length: 1000\r\n\r\n".to_vec();
    reply.extend_from_slice(&body(500));
    cut_while_recording(&reply, "/short", "500 of 1000 bytes");
}

/// An origin answers `reply` and closes before the body is complete: the
/// viewer gets a 502 (nothing went out while the response was recorded),
/// never the part as the whole, and nothing is stored.
fn cut_while_recording(reply: &[u8], path: &str, what: &str) {
    let o = origin(Reply {
        close: true,
        ..Reply::now(reply)
    });
    let p = proxy(&o);
    let raw = get_raw(&p, path);
    assert_not_passed_off_as_whole(&raw, what);
    assert_eq!(
        whole(&raw).map(|w| w.0),
        Some(502),
        "{what}: nothing went out before the body failed"
    );
    assert_not_stored(&p, &o, path);
}

/// SPEC §4: "Objects over `max_object_size` are not stored." A chunked
/// response only says how large it is as it ends: once past the limit it
/// streams on to its viewer, whole and in order, and is not stored.
#[test]
fn a_chunked_response_past_max_object_size_streams_whole_and_is_not_stored() {
    let data = body(300_000);
    let mut reply = head(true);
    reply.extend(chunks(&data, 10_000, true));
    let o = origin(Reply::now(&reply));
    let p = proxy_max(&o, "64KiB");
    let mut c = p.client();
    let r = c.get("/large");
    assert_eq!(r.status, 200);
    assert!(r.body == data, "got {} bytes, not the origin's", r.body.len());
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    // The viewer connection carries the next request: the response ended
    // where its framing said.
    let r = c.get("/large");
    assert!(r.body == data);
    assert_eq!(origin_requests(&o, "/large"), 2, "stored past max_object_size");
}

/// The same, close-delimited, for a viewer that closes nothing: the body
/// ends when the origin's connection does, and so does the viewer's.
#[test]
fn a_close_delimited_response_past_max_object_size_streams_whole() {
    let data = body(300_000);
    let mut reply = head(false);
    reply.extend_from_slice(&data);
    let o = origin(Reply {
        close: true,
        ..Reply::now(&reply)
    });
    let p = proxy_max(&o, "64KiB");
    let raw = get_raw(&p, "/large");
    let (status, got) = whole(&raw).expect("a whole response");
    assert_eq!(status, 200);
    assert!(got == data, "got {} bytes, not the origin's", got.len());
    assert_not_stored(&p, &o, "/large");
}

/// RFC 9112 §8, once the response is streaming (past max_object_size, so
/// the head is already with the viewer): a chunked body cut before its last
/// chunk reaches the viewer without one.
#[test]
fn a_chunked_response_cut_after_outgrowing_max_object_size_is_cut_for_the_viewer() {
    let mut reply = head(true);
    reply.extend(chunks(&body(300_000), 10_000, false));
    let o = origin(Reply {
        close: true,
        ..Reply::now(&reply)
    });
    let p = proxy_max(&o, "64KiB");
    let raw = get_raw(&p, "/large-cut");
    assert!(raw.bytes.starts_with(b"HTTP/1.1 200 "), "streamed, not answered 502");
    assert_not_passed_off_as_whole(&raw, "chunked without its last chunk, streaming");
    assert_not_stored(&p, &o, "/large-cut");
}

/// RFC 9112 §8, once streaming: a close-delimited body ended by a reset is
/// incomplete, and the viewer (whose body is delimited by close as well)
/// sees its connection reset, not closed as if the body were whole.
#[test]
fn a_close_delimited_response_reset_while_streaming_resets_the_viewer() {
    let mut reply = head(false);
    reply.extend_from_slice(&body(300_000));
    let o = origin(Reply {
        reset: true,
        ..Reply::now(&reply)
    });
    let p = proxy_max(&o, "64KiB");
    let raw = get_raw(&p, "/large-reset");
    assert_not_passed_off_as_whole(&raw, "close-delimited, reset while streaming");
    assert!(raw.reset, "the viewer's connection was closed, not reset");
    assert_not_stored(&p, &o, "/large-reset");
}

/// An origin whose first response is held back after `split` bytes until
/// the test releases it; later requests get it whole at once.
fn held_origin(reply: Vec<u8>, split: usize) -> ScriptedOrigin {
    let n = Arc::new(AtomicUsize::new(0));
    ScriptedOrigin::start(move |_| {
        if n.fetch_add(1, Ordering::SeqCst) > 0 {
            return Reply::now(&reply);
        }
        Reply {
            now: reply[..split].to_vec(),
            later: Some(reply[split..].to_vec()),
            ..Default::default()
        }
    })
}

/// A leader's GET of `/herd` reaches the held origin, a follower joins, the
/// origin is released: both get `data`; returns the follower's response.
fn leader_and_follower(p: &Proxy, o: &ScriptedOrigin, data: &[u8]) -> common::Response {
    let mut leader = p.client();
    leader.send(b"GET /herd HTTP/1.1\r\nHost: test\r\n\r\n");
    common::eventually("the leader's request reached the origin", || {
        origin_requests(o, "/herd") == 1
    });
    let addr = p.addr;
    let follower = std::thread::spawn(move || common::Client::connect(addr).get("/herd"));
    o.release();
    let r = leader.read_response(false).expect("the leader's response");
    assert!(r.body == data, "the leader's body");
    let r = follower.join().unwrap();
    assert!(r.body == data, "the follower's body");
    r
}

/// Requests that wait on a chunked miss (SPEC §3.4, collapsing) are
/// answered from the object it stored, whenever they joined: the origin
/// is asked once.
#[test]
fn waiters_on_a_chunked_miss_get_the_stored_object() {
    let data = body(200_000);
    let mut reply = head(true);
    reply.extend(chunks(&data, 10_000, true));
    let o = held_origin(reply, 50_000);
    let p = proxy(&o);
    let r = leader_and_follower(&p, &o, &data);
    assert_eq!(r.header("x-cache"), Some("Hit from ringfront"));
    assert_eq!(origin_requests(&o, "/herd"), 1);
}

/// When the chunked miss outgrows max_object_size, the waiters are let go
/// to fetch on their own (nothing will be stored for them), and the leader
/// still gets the whole response.
#[test]
fn waiters_on_a_chunked_miss_too_large_to_store_fetch_on_their_own() {
    let data = body(300_000);
    let mut reply = head(true);
    reply.extend(chunks(&data, 10_000, true));
    let o = held_origin(reply, 30_000);
    let p = proxy_max(&o, "64KiB");
    leader_and_follower(&p, &o, &data);
    assert_eq!(origin_requests(&o, "/herd"), 2);
}

/// SPEC §2/§4: `max_object_size` bounds the object, and only larger
/// responses stream through uncached: a body of exactly that size is
/// stored, however it was framed, and a hit says what is true of it.
#[test]
fn a_body_of_exactly_max_object_size_is_stored() {
    for chunked in [false, true] {
        let data = body(65_536);
        let mut reply = head(chunked);
        if chunked {
            reply.extend(chunks(&data, 8192, true));
        } else {
            reply = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nContent-Length: 65536\r\n\r\n".to_vec();
            reply.extend_from_slice(&data);
        }
        let o = origin(Reply::now(&reply));
        let p = proxy_max(&o, "64KiB");
        let mut c = p.client();
        let first = c.get("/exact");
        assert_eq!(first.body, data);
        let second = c.get("/exact");
        assert_eq!(second.body, data);
        assert_eq!(origin_requests(&o, "/exact"), 1, "chunked={chunked}: not stored");
        assert_eq!(second.header("x-cache"), Some("Hit from ringfront"));
    }
}
