//! The origin request policy (SPEC §2 `forward_headers`, `forward_cookies`,
//! `forward_query_string`, CloudFront's origin request policy), over
//! sockets: a scripted origin records exactly what the proxy sent.
//!
//! With a listed `forward_headers`, the origin gets the listed end-to-end
//! headers, Host, the cache key's headers and what ringfront writes itself
//! (Via, X-Forwarded-For, the actions, validators, the body's framing and
//! description): a viewer's `X-Forwarded-Host` or `X-HTTP-Method-Override`
//! never reaches it, the structural answer to unkeyed-header cache
//! poisoning. The policy holds for every request to an origin: a miss, a
//! pass-through, a revalidation, a background refresh, a failover attempt.
mod common;
use common::scripted::{Reply, ScriptedOrigin};
use common::{config, eventually, request_values as values, Client, Proxy, Response, GROUP};

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nok";

/// An origin answering every request with [`OK`].
fn ok_origin() -> ScriptedOrigin {
    ScriptedOrigin::start(|_| Reply::now(OK))
}

/// A proxy in front of `o` whose default behavior has the lines `policy`
/// (caching off unless they say `cache = true`).
fn proxy(o: &ScriptedOrigin, policy: &str) -> Proxy {
    let cfg = config(&[("o", o.addr)], "o", "");
    let cfg = if policy.contains("cache = true") {
        cfg.replace("cache = false\n", &format!("{policy}\n"))
    } else {
        cfg.replace("cache = false\n", &format!("cache = false\n{policy}\n"))
    };
    Proxy::start(&cfg)
}

/// `method target` with the header lines `lines` (each ending in CRLF).
fn send(c: &mut Client, method: &str, target: &str, lines: &str) -> Response {
    c.send(format!("{method} {target} HTTP/1.1\r\nHost: test\r\n{lines}\r\n").as_bytes());
    c.read_response(method == "HEAD").expect("response")
}

/// The head of every request the origin received, as sent.
fn heads(o: &ScriptedOrigin) -> Vec<String> {
    o.received()
        .iter()
        .map(|r| {
            let s = String::from_utf8_lossy(r);
            s.split("\r\n\r\n").next().unwrap_or("").to_string()
        })
        .collect()
}

/// The one request the origin received.
fn only_head(o: &ScriptedOrigin) -> String {
    let h = heads(o);
    assert_eq!(h.len(), 1, "{h:?}");
    h.into_iter().next().unwrap_or_default()
}

fn has(head: &str, name: &str) -> bool {
    !values(head, name).is_empty()
}

/// Lines a poisoning viewer sends: headers that change what an origin
/// answers without joining the key.
const POISON: &str = "X-Forwarded-Host: evil.example\r\nX-HTTP-Method-Override: DELETE\r\nX-Original-URL: /admin\r\n";

/// The acceptance case: a listed header is forwarded; the
/// unlisted X-Forwarded-Host, X-HTTP-Method-Override and User-Agent are
/// not; Host and what ringfront adds (Via, X-Forwarded-For, the
/// origin_request actions) are.
#[test]
fn a_listed_policy_forwards_only_the_listed_headers_and_what_ringfront_adds() {
    let o = ok_origin();
    let p = proxy(
        &o,
        "forward_headers = [\"X-Listed\"]\norigin_request = { set = { \"x-edge\" = \"ringfront\" } }",
    );
    let mut c = p.client();
    let lines = format!("X-Listed: yes\r\nUser-Agent: curl\r\nX-Forwarded-For: 10.0.0.1\r\n{POISON}");
    assert_eq!(send(&mut c, "GET", "/a?q=1", &lines).status, 200);
    let head = only_head(&o);
    assert!(head.starts_with("GET /a?q=1 HTTP/1.1\r\nHost: test\r\n"), "{head}");
    assert_eq!(values(&head, "x-listed"), ["yes"], "{head}");
    for gone in [
        "x-forwarded-host",
        "x-http-method-override",
        "x-original-url",
        "user-agent",
    ] {
        assert!(!has(&head, gone), "{gone} reached the origin: {head}");
    }
    assert_eq!(values(&head, "x-forwarded-for"), ["10.0.0.1, 127.0.0.1"], "{head}");
    assert_eq!(values(&head, "via"), ["1.1 ringfront"], "{head}");
    assert_eq!(values(&head, "x-edge"), ["ringfront"], "{head}");
}

/// `forward_headers = "all"` (the default) forwards every end-to-end
/// header, as before the policy existed.
#[test]
fn forward_headers_all_forwards_every_end_to_end_header() {
    let o = ok_origin();
    let p = proxy(&o, "forward_headers = \"all\"");
    send(&mut p.client(), "GET", "/a", &format!("User-Agent: curl\r\n{POISON}"));
    let head = only_head(&o);
    for kept in ["user-agent", "x-forwarded-host", "x-http-method-override"] {
        assert!(has(&head, kept), "{kept} not forwarded: {head}");
    }
}

/// SPEC §2: "Whatever joins the key is also forwarded to the origin": a
/// `cache_key_headers` header reaches the origin under an empty list.
#[test]
fn a_cache_key_header_is_forwarded_though_unlisted() {
    let o = ok_origin();
    let p = proxy(
        &o,
        "cache = true\ncache_key_headers = [\"X-Device\"]\nforward_headers = []",
    );
    send(&mut p.client(), "GET", "/k", &format!("x-device: mobile\r\n{POISON}"));
    let head = only_head(&o);
    assert_eq!(values(&head, "x-device"), ["mobile"], "{head}");
    assert!(!has(&head, "x-forwarded-host"), "{head}");
}

/// Under a listed policy the viewer's conditions, Range and Authorization
/// are ordinary headers: not forwarded unless listed (the origin answers
/// in full, which HTTP allows: RFC 9110 §13.2.1, §14.2), forwarded when
/// listed.
#[test]
fn conditionals_range_and_authorization_are_forwarded_only_when_listed() {
    let lines = "If-None-Match: \"v\"\r\nIf-Modified-Since: Mon, 23 Nov 2026 10:00:00 GMT\r\nRange: bytes=0-0\r\nAuthorization: Bearer t\r\n";
    let names = ["if-none-match", "if-modified-since", "range", "authorization"];
    let unlisted = ok_origin();
    let p = proxy(&unlisted, "forward_headers = []");
    assert_eq!(send(&mut p.client(), "GET", "/c", lines).status, 200);
    let head = only_head(&unlisted);
    for n in names {
        assert!(!has(&head, n), "{n} forwarded unlisted: {head}");
    }
    let listed = ok_origin();
    let p = proxy(
        &listed,
        "forward_headers = [\"if-none-match\", \"if-modified-since\", \"range\", \"authorization\"]",
    );
    send(&mut p.client(), "GET", "/c", lines);
    let head = only_head(&listed);
    for n in names {
        assert!(has(&head, n), "{n} listed but not forwarded: {head}");
    }
}

/// An API behavior that forwards no viewer headers still works for a
/// POST: the body goes with ringfront's framing line and the Content-Type
/// and Content-Encoding that describe it; the viewer's method override
/// does not.
#[test]
fn a_post_with_a_body_still_works_under_an_empty_list() {
    let o = ok_origin();
    let p = proxy(&o, "forward_headers = []");
    let mut c = p.client();
    let lines =
        format!("Content-Type: application/json\r\nContent-Encoding: identity\r\nContent-Length: 7\r\n{POISON}");
    c.send(format!("POST /api HTTP/1.1\r\nHost: test\r\n{lines}\r\n{{\"a\":1}}").as_bytes());
    assert_eq!(c.read_response(false).expect("response").status, 200);
    c.send(b"PUT /api HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    assert_eq!(c.read_response(false).expect("response").status, 200);
    let got = o.received();
    assert_eq!(got.len(), 2);
    let post = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(post.ends_with("\r\n\r\n{\"a\":1}"), "{post}");
    assert_eq!(values(&post, "content-type"), ["application/json"], "{post}");
    assert_eq!(values(&post, "content-encoding"), ["identity"], "{post}");
    assert_eq!(values(&post, "content-length"), ["7"], "{post}");
    assert!(!has(&post, "x-http-method-override"), "{post}");
    let put = String::from_utf8_lossy(&got[1]).into_owned();
    assert_eq!(values(&put, "content-type"), ["text/plain"], "{put}");
    // A small chunked body is read whole and sent with its length.
    assert_eq!(values(&put, "content-length"), ["3"], "{put}");
    assert!(put.ends_with("\r\n\r\nabc"), "{put}");
}

/// Content-Type and Content-Encoding go under an empty list only to
/// describe a body (RFC 9110 §8.3, §8.4): a GET or POST with
/// `Content-Length: 0` has none, so a viewer's cannot reach the origin
/// through them.
#[test]
fn an_empty_body_brings_no_content_headers_under_an_empty_list() {
    let o = ok_origin();
    let p = proxy(&o, "forward_headers = []");
    let mut c = p.client();
    let lines = "Content-Type: application/x-www-form-urlencoded\r\nContent-Encoding: gzip\r\nContent-Length: 0\r\n";
    for method in ["GET", "POST"] {
        assert_eq!(send(&mut c, method, "/e", lines).status, 200);
    }
    for head in heads(&o) {
        assert!(!has(&head, "content-type"), "{head}");
        assert!(!has(&head, "content-encoding"), "{head}");
    }
    assert_eq!(heads(&o).len(), 2);
}

/// `forward_cookies = "none"`: no Cookie line at all.
#[test]
fn forward_cookies_none_sends_no_cookie_line() {
    let o = ok_origin();
    let p = proxy(&o, "forward_cookies = \"none\"");
    send(&mut p.client(), "GET", "/n", "Cookie: a=1; b=2\r\nCookie: c=3\r\n");
    let head = only_head(&o);
    assert!(!has(&head, "cookie"), "{head}");
}

/// `forward_cookies = "none"` with a key cookie: the key's cookie is
/// forwarded (whatever joins the key reaches the origin), alone.
#[test]
fn a_cache_key_cookie_is_forwarded_under_forward_cookies_none() {
    let o = ok_origin();
    let p = proxy(
        &o,
        "cache = true\ncache_key_cookies = [\"lang\"]\nforward_cookies = \"none\"",
    );
    send(&mut p.client(), "GET", "/n", "Cookie: session=s3cret; lang=fr\r\n");
    let head = only_head(&o);
    assert_eq!(values(&head, "cookie"), ["lang=fr"], "{head}");
}

/// `forward_cookies = [names]`: one Cookie line with only those cookies,
/// in the order sent, several Cookie lines read as one list (RFC 6265
/// §5.4); a pair without `=` is dropped; no Cookie line when none is left.
#[test]
fn forward_cookies_list_keeps_the_named_cookies_in_the_order_sent() {
    let o = ok_origin();
    let p = proxy(&o, "forward_cookies = [\"b\", \"a\"]\nforward_headers = []");
    let mut c = p.client();
    send(&mut c, "GET", "/l", "Cookie: b=2; x=9; a\r\nCookie: y=8;a=1\r\n");
    send(&mut c, "GET", "/l", "Cookie: x=9; y=8\r\n");
    let h = heads(&o);
    assert_eq!(h.len(), 2);
    assert_eq!(values(&h[0], "cookie"), ["b=2; a=1"], "{}", h[0]);
    assert!(!has(&h[1], "cookie"), "{}", h[1]);
}

/// `forward_cookies = "all"` (the default) sends the Cookie lines as sent,
/// whatever `forward_headers` lists (Cookie follows `forward_cookies`).
#[test]
fn forward_cookies_all_sends_the_cookie_lines_as_sent() {
    let o = ok_origin();
    let p = proxy(&o, "forward_headers = []");
    send(&mut p.client(), "GET", "/all", "Cookie: b=2; x\r\nCookie: a=1\r\n");
    let head = only_head(&o);
    assert_eq!(values(&head, "cookie"), ["b=2; x", "a=1"], "{head}");
}

/// `forward_query_string = false`: the origin's target is the path and
/// only the key's parameters, sorted as the key keeps them.
#[test]
fn without_forward_query_string_the_origin_sees_only_the_sorted_key_parameters() {
    let o = ok_origin();
    let p = proxy(
        &o,
        "cache = true\ncache_query_string = [\"b\", \"a\"]\nforward_query_string = false",
    );
    send(&mut p.client(), "GET", "/p?utm_source=x&b=2&a=1&fbclid=y", "");
    assert_eq!(o.request_lines(), ["GET /p?a=1&b=2 HTTP/1.1"]);
}

/// `forward_query_string = false` with no query in the key: the path
/// alone; with the whole query in the key: the query as sent. With
/// `forward_query_string = true` the query as sent, whatever the key.
#[test]
fn without_forward_query_string_the_query_follows_the_key() {
    for (policy, want) in [
        (
            "cache_query_string = false\nforward_query_string = false",
            "GET /p HTTP/1.1",
        ),
        (
            "cache_query_string = true\nforward_query_string = false",
            "GET /p?z=1&a=2 HTTP/1.1",
        ),
        (
            "cache_query_string = [\"a\"]\nforward_query_string = true",
            "GET /p?z=1&a=2 HTTP/1.1",
        ),
    ] {
        let o = ok_origin();
        let p = proxy(&o, policy);
        send(&mut p.client(), "GET", "/p?z=1&a=2", "");
        assert_eq!(o.request_lines(), [want], "{policy}");
    }
}

/// The policy every request to an origin obeys, for the cases below: no
/// viewer header but `X-Listed`, only the `keep` cookie, only the `id`
/// parameter.
const STRICT: &str = "cache = true\nforward_headers = [\"x-listed\"]\nforward_cookies = [\"keep\"]\ncache_query_string = [\"id\"]\nforward_query_string = false";

/// What a viewer sends in the cases below.
fn viewer_lines() -> String {
    format!("X-Listed: yes\r\nCookie: keep=1; drop=2\r\n{POISON}")
}

/// Asserts `head` is what [`STRICT`] lets through for [`viewer_lines`].
fn assert_strict(head: &str) {
    assert!(head.starts_with("GET /r?id=7 HTTP/1.1\r\n"), "{head}");
    assert_eq!(values(head, "x-listed"), ["yes"], "{head}");
    assert_eq!(values(head, "cookie"), ["keep=1"], "{head}");
    for gone in ["x-forwarded-host", "x-http-method-override", "x-original-url"] {
        assert!(!has(head, gone), "{gone} reached the origin: {head}");
    }
}

/// A revalidation of a stale object is a request to the origin like a
/// miss: it carries ringfront's validators and obeys the policy.
#[test]
fn a_revalidation_obeys_the_policy() {
    let o = ScriptedOrigin::start(|h| {
        if h.to_ascii_lowercase().contains("if-none-match") {
            Reply::now(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nCache-Control: max-age=60\r\n\r\n")
        } else {
            // Age beyond max-age: stale at once (kept for stale-if-error).
            Reply::now(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60, stale-if-error=3600\r\nAge: 120\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\nok")
        }
    });
    let p = proxy(&o, STRICT);
    let mut c = p.client();
    let lines = viewer_lines();
    assert_eq!(send(&mut c, "GET", "/r?id=7&utm=1", &lines).status, 200);
    let again = send(&mut c, "GET", "/r?id=7&utm=2", &lines);
    assert_eq!(again.header("x-cache"), Some("RefreshHit from ringfront"), "{again:?}");
    let h = heads(&o);
    assert_eq!(h.len(), 2, "{h:?}");
    for head in &h {
        assert_strict(head);
    }
    assert_eq!(values(&h[1], "if-none-match"), ["\"v1\""], "{}", h[1]);
}

/// A background refresh (stale-while-revalidate) obeys the policy too.
#[test]
fn a_background_refresh_obeys_the_policy() {
    let o = ScriptedOrigin::start(|_| {
        Reply::now(b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60, stale-while-revalidate=3600\r\nAge: 120\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\nok")
    });
    let p = proxy(&o, STRICT);
    let mut c = p.client();
    let lines = viewer_lines();
    send(&mut c, "GET", "/r?id=7", &lines);
    let stale = send(&mut c, "GET", "/r?id=7&utm=1", &lines);
    assert_eq!(stale.header("x-cache"), Some("Hit from ringfront"), "{stale:?}");
    eventually("the refresh reached the origin", || o.received().len() >= 2);
    let h = heads(&o);
    for head in &h {
        assert_strict(head);
    }
    assert_eq!(values(&h[1], "if-none-match"), ["\"v1\""], "{}", h[1]);
}

/// A failover attempt sends the same filtered request to the secondary.
#[test]
fn a_failover_attempt_obeys_the_policy() {
    let primary =
        ScriptedOrigin::start(|_| Reply::now(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"));
    let secondary = ok_origin();
    let group = format!("{GROUP}failover_status = [503]\n");
    let cfg = config(
        &[("primary", primary.addr), ("secondary", secondary.addr)],
        "site",
        &group,
    )
    .replace("cache = false\n", &format!("{STRICT}\n"));
    let p = Proxy::start(&cfg);
    let r = send(&mut p.client(), "GET", "/r?id=7&utm=1", &viewer_lines());
    assert_eq!(r.status, 200, "{r:?}");
    assert_strict(&only_head(&primary));
    assert_strict(&only_head(&secondary));
}
