//! `compress = true` (SPEC §2, §4), over sockets: a compressible response
//! is stored identity, brotli and gzip from one origin request, each
//! viewer served the coding its Accept-Encoding selects (brotli over
//! gzip), every one with `Vary: Accept-Encoding`; responses that are not
//! compressible (an image, under 1,000 bytes, already encoded,
//! `no-transform`) are stored and served as they came; a response that is
//! not stored is compressed as it streams through. Coded bodies are
//! decoded here and compared with the origin's bytes.
mod common;
use common::rfc::origin_requests;
use common::scripted::{Reply, ScriptedOrigin};
use common::{config, Client, Proxy, Response};
use std::io::{Read, Write};

const HIT: Option<&str> = Some("Hit from ringfront");
const BR: &str = "Accept-Encoding: gzip, deflate, br\r\n";
const GZIP: &str = "Accept-Encoding: gzip\r\n";

/// `n` bytes of an HTML-like page (compressible, not trivially).
fn page(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 64);
    let mut i = 0u64;
    while out.len() < n {
        i += 1;
        out.extend_from_slice(format!("<li class=\"item\" id=\"i{}\">entry {}</li>\n", i * 7919 % 10007, i).as_bytes());
    }
    out.truncate(n);
    out
}

/// What the origin answers for one path: its header lines (each ending
/// in CRLF, Content-Length added) and body.
#[derive(Clone)]
struct Answer {
    lines: String,
    body: Vec<u8>,
}

/// A cacheable 200 of `n` bytes of `content_type`.
fn answer(content_type: &str, n: usize) -> Answer {
    Answer {
        lines: format!("Content-Type: {content_type}\r\nCache-Control: max-age=3600\r\nETag: \"v1\"\r\n"),
        body: page(n),
    }
}

/// An origin answering each path of `table` with its [`Answer`] (HEAD
/// without the body); other paths get 404.
fn origin(table: Vec<(&'static str, Answer)>) -> ScriptedOrigin {
    ScriptedOrigin::start(move |head| {
        let mut parts = head.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let Some((_, a)) = table.iter().find(|(p, _)| *p == path) else {
            return Reply::now(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        };
        let mut r = format!("HTTP/1.1 200 OK\r\n{}Content-Length: {}\r\n\r\n", a.lines, a.body.len()).into_bytes();
        if method != "HEAD" {
            r.extend_from_slice(&a.body);
        }
        Reply::now(&r)
    })
}

/// A proxy in front of `o` whose default behavior caches (`cache`) and
/// compresses.
fn proxy(o: &ScriptedOrigin, cache: bool) -> Proxy {
    let behavior = if cache { "cache = true\n" } else { "cache = false\n" };
    let cfg = config(&[("o", o.addr)], "o", "").replace("cache = false\n", &format!("{behavior}compress = true\n"));
    Proxy::start(&cfg)
}

/// `method path` with the header lines `lines` (each ending in CRLF).
fn request(c: &mut Client, method: &str, path: &str, lines: &str) -> Response {
    c.send(format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{lines}\r\n").as_bytes());
    c.read_response(method == "HEAD").expect("response")
}

fn get(c: &mut Client, path: &str, lines: &str) -> Response {
    request(c, "GET", path, lines)
}

/// The body of `r`, decoded from its Content-Encoding.
fn decoded(r: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    match r.header("content-encoding") {
        None => return r.body.clone(),
        Some("br") => brotli::Decompressor::new(&r.body[..], 4096).read_to_end(&mut out),
        Some("gzip") => flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut out),
        Some(other) => panic!("unexpected coding {other}"),
    }
    .expect("a body that decodes");
    out
}

/// The response's Vary names Accept-Encoding.
fn varies_on_encoding(r: &Response) -> bool {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("vary"))
        .any(|(_, v)| v.split(',').any(|m| m.trim().eq_ignore_ascii_case("accept-encoding")))
}

/// Waits until both coded variants of `path` are stored. The pool
/// compresses at idle priority: on a machine kept busy (a loaded test run)
/// the request that stored the response may have been answered, within its
/// budget, from the identity object standing in for them.
fn wait_coded(p: &Proxy, path: &str) {
    for (lines, coding) in [(BR, "br"), (GZIP, "gzip")] {
        common::eventually(&format!("the {coding} variant of {path}"), || {
            get(&mut Client::connect(p.addr), path, lines).header("content-encoding") == Some(coding)
        });
    }
}

/// The first response of a compressible object: the origin's bytes in
/// the viewer's coding, or (the pool still busy) identity, saying
/// `Vary: Accept-Encoding` either way.
fn first_answer(r: &Response, body: &[u8], asked: &str) {
    assert_eq!(r.status, 200);
    assert!(decoded(r) == body, "the origin's bytes");
    assert!(varies_on_encoding(r), "{:?}", r.headers);
    let coding = r.header("content-encoding");
    assert!(coding.is_none() || coding == Some(asked), "{coding:?}");
}

/// One origin request serves all three codings: the brotli viewer's miss
/// stores identity, br and gzip; the gzip and identity viewers are hits;
/// each body decodes to the origin's bytes, each response says `Vary:
/// Accept-Encoding`, the coded ones a weak ETag, the identity one the
/// origin's.
#[test]
fn br_gzip_and_identity_viewers_get_their_coding_from_one_origin_request() {
    let a = answer("text/html; charset=utf-8", 50_000);
    let o = origin(vec![("/page", a.clone())]);
    let p = proxy(&o, true);
    let mut c = p.client();
    first_answer(&get(&mut c, "/page", BR), &a.body, "br");
    wait_coded(&p, "/page");
    let br = get(&mut c, "/page", BR);
    assert_eq!((br.status, br.header("content-encoding")), (200, Some("br")));
    assert!(br.body.len() < a.body.len() / 3, "{} bytes", br.body.len());
    let gz = get(&mut c, "/page", GZIP);
    let id = get(&mut c, "/page", "");
    let id2 = get(&mut c, "/page", "Accept-Encoding: identity\r\n");
    assert_eq!(
        (gz.header("content-encoding"), gz.header("x-cache")),
        (Some("gzip"), HIT)
    );
    assert_eq!((id.header("content-encoding"), id.header("x-cache")), (None, HIT));
    assert_eq!(id2.header("x-cache"), HIT);
    for r in [&br, &gz, &id, &id2] {
        assert!(decoded(r) == a.body, "the origin's bytes");
        assert!(varies_on_encoding(r), "{:?}", r.headers);
        assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
    }
    assert_eq!(br.header("etag"), Some("W/\"v1\""));
    assert_eq!(gz.header("etag"), Some("W/\"v1\""));
    assert_eq!(id.header("etag"), Some("\"v1\""));
    // And the brotli viewer's next request is a hit too.
    assert_eq!(get(&mut c, "/page", BR).header("x-cache"), HIT);
    assert_eq!(origin_requests(&o, "/page"), 1);
}

/// A viewer that accepts gzip only, first, stores the three codings too.
#[test]
fn a_gzip_viewers_miss_stores_the_brotli_variant_too() {
    let a = answer("application/json", 20_000);
    let o = origin(vec![("/data", a.clone())]);
    let p = proxy(&o, true);
    let mut c = p.client();
    first_answer(&get(&mut c, "/data", GZIP), &a.body, "gzip");
    wait_coded(&p, "/data");
    let gz = get(&mut c, "/data", GZIP);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let br = get(&mut c, "/data", "Accept-Encoding: br\r\n");
    assert_eq!((br.header("content-encoding"), br.header("x-cache")), (Some("br"), HIT));
    assert!(decoded(&gz) == a.body, "the origin's bytes");
    assert!(decoded(&br) == a.body, "the origin's bytes");
    assert_eq!(origin_requests(&o, "/data"), 1);
}

/// Responses that may not be compressed are served as they came, without
/// `Vary: Accept-Encoding`: an image, a body under 1,000 bytes, a body the
/// origin encoded already, and `Cache-Control: no-transform` (RFC 9110
/// §7.7). Each is still stored once (one origin request).
#[test]
fn images_small_bodies_encoded_bodies_and_no_transform_are_not_compressed() {
    let gzipped = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&page(5000)).unwrap();
        e.finish().unwrap()
    };
    let table = vec![
        ("/image", answer("image/png", 5000)),
        ("/small", answer("text/html", 999)),
        (
            "/encoded",
            Answer {
                lines: "Content-Type: text/html\r\nContent-Encoding: gzip\r\nCache-Control: max-age=3600\r\n".into(),
                body: gzipped,
            },
        ),
        (
            "/no-transform",
            Answer {
                lines: "Content-Type: text/html\r\nCache-Control: max-age=3600, no-transform\r\n".into(),
                body: page(5000),
            },
        ),
    ];
    let o = origin(table.clone());
    let p = proxy(&o, true);
    let mut c = p.client();
    for (path, a) in &table {
        let first = get(&mut c, path, BR);
        let second = get(&mut c, path, GZIP);
        for r in [&first, &second] {
            assert!(r.body == a.body, "{path}: the origin's bytes");
            assert!(!varies_on_encoding(r), "{path}: {:?}", r.headers);
        }
        let origin_coding = if *path == "/encoded" { Some("gzip") } else { None };
        assert_eq!(first.header("content-encoding"), origin_coding, "{path}");
        assert_eq!(second.header("x-cache"), HIT, "{path}");
        assert_eq!(origin_requests(&o, path), 1, "{path}");
    }
}

/// `compress = false` (the default): nothing is compressed.
#[test]
fn without_compress_nothing_is_compressed() {
    let a = answer("text/html", 5000);
    let o = origin(vec![("/page", a.clone())]);
    let cfg = config(&[("o", o.addr)], "o", "").replace("cache = false\n", "cache = true\n");
    let p = Proxy::start(&cfg);
    let r = get(&mut p.client(), "/page", BR);
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.body == a.body, "the origin's bytes");
    assert!(!varies_on_encoding(&r));
}

/// A response that varies on Accept-Encoding already, and came identity
/// (the origin was sent `br` and did not compress), is compressed the
/// same way: one Vary line naming the origin's members once.
#[test]
fn a_response_varying_on_accept_encoding_is_compressed_too() {
    let mut a = answer("text/css", 8000);
    a.lines.push_str("Vary: Accept-Encoding, Origin\r\n");
    let o = origin(vec![("/style", a.clone())]);
    let p = proxy(&o, true);
    let mut c = p.client();
    first_answer(&get(&mut c, "/style", BR), &a.body, "br");
    wait_coded(&p, "/style");
    let br = get(&mut c, "/style", BR);
    let gz = get(&mut c, "/style", GZIP);
    let id = get(&mut c, "/style", "");
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(
        (gz.header("content-encoding"), gz.header("x-cache")),
        (Some("gzip"), HIT)
    );
    assert_eq!((id.header("content-encoding"), id.header("x-cache")), (None, HIT));
    for r in [&br, &gz, &id] {
        assert!(decoded(r) == a.body, "the origin's bytes");
        assert_eq!(common::rfc::values(r, "vary"), ["Accept-Encoding, Origin"]);
    }
    assert_eq!(origin_requests(&o, "/style"), 1);
}

/// HEAD is answered from the stored GET of its coding: the coded
/// Content-Length, no body (the next response on the connection reads
/// cleanly).
#[test]
fn a_head_from_a_compressed_variant_has_its_length_and_no_body() {
    let a = answer("application/javascript", 30_000);
    let o = origin(vec![("/app.js", a.clone())]);
    let p = proxy(&o, true);
    let mut c = p.client();
    first_answer(&get(&mut c, "/app.js", BR), &a.body, "br");
    wait_coded(&p, "/app.js");
    let get_br = get(&mut c, "/app.js", BR);
    let head = request(&mut c, "HEAD", "/app.js", BR);
    assert_eq!((head.status, head.header("x-cache")), (200, HIT));
    assert_eq!(head.header("content-encoding"), Some("br"));
    assert_eq!(
        head.header("content-length"),
        Some(get_br.body.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    let again = get(&mut c, "/app.js", GZIP);
    assert_eq!((again.status, again.header("content-encoding")), (200, Some("gzip")));
    assert_eq!(origin_requests(&o, "/app.js"), 1);
}

/// A 1 MiB compressible object is compressed and served in every coding.
#[test]
fn a_one_mebibyte_object_is_compressed_and_served() {
    let a = answer("text/html", 1 << 20);
    let o = origin(vec![("/big", a.clone())]);
    let p = proxy(&o, true);
    let mut c = p.client();
    first_answer(&get(&mut c, "/big", BR), &a.body, "br");
    wait_coded(&p, "/big");
    let br = get(&mut c, "/big", BR);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert!(decoded(&br) == a.body, "the origin's bytes");
    let gz = get(&mut c, "/big", GZIP);
    assert_eq!(
        (gz.header("content-encoding"), gz.header("x-cache")),
        (Some("gzip"), HIT)
    );
    assert!(decoded(&gz) == a.body, "the origin's bytes");
    assert_eq!(origin_requests(&o, "/big"), 1);
}

/// A behavior with `cache = false` compresses as the response streams
/// through: Content-Encoding, `Vary: Accept-Encoding`, a weak ETag, no
/// Content-Length: chunked to an HTTP/1.1 viewer (the connection stays
/// open), delimited by close to an HTTP/1.0 one; a viewer that accepts
/// neither gets the origin's bytes as they are.
#[test]
fn a_pass_through_response_is_compressed_as_it_streams() {
    let a = answer("text/plain", 200_000);
    let o = origin(vec![("/log", a.clone())]);
    let p = proxy(&o, false);
    let mut c = p.client();
    for (lines, coding) in [(BR, "br"), (GZIP, "gzip")] {
        let r = get(&mut c, "/log", lines);
        assert_eq!(r.header("content-encoding"), Some(coding));
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert!(!r.has_header("content-length"));
        assert!(varies_on_encoding(&r));
        assert_eq!(r.header("etag"), Some("W/\"v1\""));
        assert!(decoded(&r) == a.body, "the origin's bytes");
        assert!(r.body.len() < a.body.len() / 3);
    }
    let plain = get(&mut c, "/log", "");
    assert_eq!(plain.header("content-encoding"), None);
    assert!(plain.body == a.body, "the origin's bytes");
    assert_eq!(origin_requests(&o, "/log"), 3, "nothing stored");
    // HTTP/1.0: no chunked coding; the body ends with the connection.
    let mut old = p.client();
    old.send(format!("GET /log HTTP/1.0\r\nHost: test\r\n{BR}\r\n").as_bytes());
    let r = old.read_response(false).expect("response");
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert!(!r.has_header("transfer-encoding") && !r.has_header("content-length"));
    assert!(decoded(&r) == a.body, "the origin's bytes");
}

/// A response that may not be stored (`private`) on a caching behavior is
/// compressed as it streams through too.
#[test]
fn a_response_not_stored_is_compressed_as_it_streams() {
    let mut a = answer("application/json", 10_000);
    a.lines = a.lines.replace("max-age=3600", "private");
    let o = origin(vec![("/me", a.clone())]);
    let p = proxy(&o, true);
    let mut c = p.client();
    let r = get(&mut c, "/me", BR);
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert!(decoded(&r) == a.body, "the origin's bytes");
    let r = get(&mut c, "/me", GZIP);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert!(decoded(&r) == a.body, "the origin's bytes");
    assert_eq!(origin_requests(&o, "/me"), 2);
}

/// Requests that wait on the miss (collapsed on its flight) are released
/// once all three codings are stored, and each finds its own: the origin
/// is asked once, whatever the waiters accept.
#[test]
fn waiters_with_any_encoding_find_their_coding_after_one_miss() {
    let a = answer("text/html", 40_000);
    let head = format!("HTTP/1.1 200 OK\r\n{}Content-Length: {}\r\n\r\n", a.lines, a.body.len());
    let (first, rest) = a.body.split_at(10_000);
    let reply = Reply {
        now: [head.as_bytes(), first].concat(),
        later: Some(rest.to_vec()),
        ..Default::default()
    };
    let o = ScriptedOrigin::start(move |_| reply.clone());
    let p = proxy(&o, true);
    let mut leader = p.client();
    leader.send(format!("GET /herd HTTP/1.1\r\nHost: test\r\n{BR}\r\n").as_bytes());
    common::eventually("the leader's request reached the origin", || {
        origin_requests(&o, "/herd") == 1
    });
    let addr = p.addr;
    let followers: Vec<_> = [GZIP, "", BR]
        .into_iter()
        .map(|lines| std::thread::spawn(move || get(&mut Client::connect(addr), "/herd", lines)))
        .collect();
    o.release();
    let r = leader.read_response(false).expect("the leader's response");
    first_answer(&r, &a.body, "br");
    // Each gets its own coding, or (the pool still busy) identity.
    for (f, asked) in followers.into_iter().zip(["gzip", "identity", "br"]) {
        first_answer(&f.join().unwrap(), &a.body, asked);
    }
    wait_coded(&p, "/herd");
    assert_eq!(
        get(&mut Client::connect(addr), "/herd", "").header("content-encoding"),
        None
    );
    assert_eq!(origin_requests(&o, "/herd"), 1);
}

/// A background refresh (stale-while-revalidate) stores the three
/// codings of the new response too: the origin is asked once by the
/// refresh, and every coding is then the new one, fresh.
#[test]
fn a_background_refresh_stores_every_coding_of_the_new_response() {
    let v1 = page(6000);
    let v2: Vec<u8> = page(7000).iter().map(u8::to_ascii_uppercase).collect();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (b1, b2, n) = (v1.clone(), v2.clone(), asked.clone());
    let o = ScriptedOrigin::start(move |_| {
        // The first answer is stale on arrival (Age past max-age) within
        // its stale-while-revalidate window; the refreshed one is fresh.
        let (cc, body) = match n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => ("max-age=1, stale-while-revalidate=600\r\nAge: 5", &b1),
            _ => ("max-age=3600", &b2),
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: {cc}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        Reply::now(&[head.as_bytes(), body].concat())
    });
    let p = proxy(&o, true);
    let mut c = p.client();
    assert!(decoded(&get(&mut c, "/swr", BR)) == v1);
    // Stale: answered at once, refreshed behind.
    let stale = get(&mut c, "/swr", GZIP);
    assert!(decoded(&stale) == v1, "the stale gzip variant");
    common::eventually("the refresh stored the gzip variant", || {
        let r = get(&mut Client::connect(p.addr), "/swr", GZIP);
        r.header("x-cache") == HIT && decoded(&r) == v2
    });
    for lines in [BR, ""] {
        let r = get(&mut c, "/swr", lines);
        assert_eq!(r.header("x-cache"), HIT);
        assert!(decoded(&r) == v2, "the refreshed body");
        assert!(varies_on_encoding(&r));
    }
    assert_eq!(origin_requests(&o, "/swr"), 2);
}

/// A stale compressed variant is revalidated with the origin's own strong
/// tag and a 304 refreshes it: its body is not fetched again, and it still
/// shows the weak tag (the 304's strong one names the origin's bytes, not
/// the coded ones: RFC 9110 §8.8.1).
#[test]
fn a_compressed_variant_is_revalidated_with_the_origins_tag() {
    let body = page(6000);
    let b = body.clone();
    let o = ScriptedOrigin::start(move |head| {
        if head.to_ascii_lowercase().contains("if-none-match: \"v1\"") {
            return Reply::now(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=3600\r\n\r\n");
        }
        // Stale on arrival (Age past max-age), kept for stale-if-error.
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: \"v1\"\r\nCache-Control: max-age=1, stale-if-error=600\r\nAge: 5\r\nContent-Length: {}\r\n\r\n",
            b.len()
        );
        Reply::now(&[head.as_bytes(), &b].concat())
    });
    let p = proxy(&o, true);
    let mut c = p.client();
    let first = get(&mut c, "/stale", BR);
    assert!(decoded(&first) == body);
    let again = get(&mut c, "/stale", BR);
    assert_eq!(
        again.header("x-cache"),
        Some("RefreshHit from ringfront"),
        "{:?}",
        again.headers
    );
    assert_eq!(again.header("content-encoding"), Some("br"));
    assert_eq!(again.header("etag"), Some("W/\"v1\""));
    assert!(decoded(&again) == body);
    let asked = o.received();
    assert_eq!(asked.len(), 2, "one fetch, one revalidation");
    assert!(String::from_utf8_lossy(&asked[1]).contains("If-None-Match: \"v1\""));
    assert_eq!(get(&mut c, "/stale", BR).header("x-cache"), HIT);
}

/// The origin's own `Content-Encoding: identity` (or an empty one) is not
/// kept on a coded variant: one Content-Encoding line, the coding's (a
/// list `identity, gzip` is refused by clients).
#[test]
fn an_origin_content_encoding_of_identity_is_not_kept_on_a_coded_variant() {
    let mut a = answer("text/html", 5000);
    a.lines
        .push_str("Content-Encoding: identity\r\nContent-MD5: bm90IGl0\r\n");
    let o = origin(vec![("/ce", a.clone())]);
    let p = proxy(&o, true);
    let mut c = p.client();
    first_answer(&get(&mut c, "/ce", GZIP), &a.body, "gzip");
    wait_coded(&p, "/ce");
    let gz = get(&mut c, "/ce", GZIP);
    assert_eq!(common::rfc::values(&gz, "content-encoding"), ["gzip"]);
    assert!(!gz.has_header("content-md5"), "a digest of the identity bytes");
    assert!(decoded(&gz) == a.body);
}

/// A body that compression does not shrink (random bytes labelled text)
/// is served as identity to every coding, from the one stored object:
/// never a miss per request of a coding.
#[test]
fn a_body_that_does_not_shrink_is_served_as_identity_to_every_coding() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let body: Vec<u8> = (0..5000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let a = Answer {
        lines: "Content-Type: text/html\r\nCache-Control: max-age=3600\r\n".into(),
        body,
    };
    let o = origin(vec![("/noise", a.clone())]);
    let p = proxy(&o, true);
    let mut c = p.client();
    first_answer(&get(&mut c, "/noise", BR), &a.body, "br");
    for lines in [BR, GZIP, BR, ""] {
        let r = get(&mut c, "/noise", lines);
        assert_eq!((r.header("x-cache"), r.header("content-encoding")), (HIT, None));
        assert!(r.body == a.body);
    }
    assert_eq!(origin_requests(&o, "/noise"), 1);
}

/// At most `MAX_STREAMS` (8) responses per worker are compressed as they
/// stream: with eight held open (their origin still sending), the ninth
/// streams as it came, and once one ends the next is compressed again.
#[test]
fn a_worker_compresses_at_most_eight_streams_at_once() {
    let a = answer("text/plain", 40_000);
    let head = format!("HTTP/1.1 200 OK\r\n{}Content-Length: {}\r\n\r\n", a.lines, a.body.len());
    let (part, rest) = a.body.split_at(20_000);
    let reply = Reply {
        now: [head.as_bytes(), part].concat(),
        later: Some(rest.to_vec()),
        ..Default::default()
    };
    let whole = [head.as_bytes(), &a.body].concat();
    let o = ScriptedOrigin::start(move |h| {
        if h.starts_with("GET /slow/last ") {
            Reply::now(&whole)
        } else {
            reply.clone()
        }
    });
    let p = proxy(&o, false);
    let mut held: Vec<Client> = (0..8).map(|_| p.client()).collect();
    for (i, c) in held.iter_mut().enumerate() {
        c.send(format!("GET /slow/{i} HTTP/1.1\r\nHost: test\r\n{BR}\r\n").as_bytes());
    }
    common::eventually("eight requests at the origin", || o.received().len() == 8);
    let mut ninth = p.client();
    ninth.send(format!("GET /slow/8 HTTP/1.1\r\nHost: test\r\n{BR}\r\n").as_bytes());
    common::eventually("the ninth at the origin", || o.received().len() == 9);
    // The origin sends the rest of each response, in arrival order.
    for _ in 0..9 {
        o.release();
    }
    let r = ninth.read_response(false).expect("the ninth response");
    assert_eq!(r.header("content-encoding"), None, "past the limit: as it came");
    assert!(r.body == a.body);
    for c in &mut held {
        let r = c.read_response(false).expect("a held response");
        assert_eq!(r.header("content-encoding"), Some("br"));
        assert!(decoded(&r) == a.body);
    }
    assert_eq!(
        get(&mut p.client(), "/slow/last", BR).header("content-encoding"),
        Some("br")
    );
}
