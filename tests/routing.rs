//! Behaviors: first matching path pattern wins; methods outside
//! allowed_methods get 403 and never reach the origin.
mod common;
use common::*;

#[test]
fn first_match_wins_and_methods_are_enforced() {
    let a = SampleOrigin::start("127.0.0.1:0", "a").unwrap();
    let b = SampleOrigin::start("127.0.0.1:0", "b").unwrap();
    let extra = "\n[[behavior]]\npath = \"/static/*.css\"\ntarget = \"a\"\n\n[[behavior]]\npath = \"/static/?/*\"\ntarget = \"a\"\nallowed_methods = [\"GET\", \"HEAD\", \"OPTIONS\"]\n";
    let p = Proxy::start(&config(&[("a", a.addr()), ("b", b.addr())], "b", extra));
    let mut c = p.client();
    assert_eq!(c.get("/static/x/y.css").header("x-origin"), Some("a"));
    assert_eq!(c.get("/static/q/img.png").header("x-origin"), Some("a"));
    assert_eq!(c.get("/static/qq/img.png").header("x-origin"), Some("b"));
    assert_eq!(c.get("/other").header("x-origin"), Some("b"));
    // POST to a GET/HEAD-only behavior: 403, origin untouched.
    let before = a.requests();
    c.send(b"POST /static/a.css HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(a.requests(), before);
    // OPTIONS allowed on the second behavior, DELETE not.
    let mut c = p.client();
    c.send(b"OPTIONS /static/q/x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
    c.send(b"DELETE /static/q/x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 403);
    // A 403 without a body keeps the connection.
    assert_eq!(c.get("/other").status, 200);
}

#[test]
fn curl_through_the_proxy() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = Proxy::start(&config(&[("o", o.addr())], "o", ""));
    let url = format!("http://{}/hello", p.addr);
    let out = curl(&["-i", &url]);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("X-Cache: Miss from ringfront"));
    assert!(out.ends_with("ok o\n"));
}

/// RFC 9110 §9.1: "method = token"; any registered or extension method
/// (the SSDP `M-SEARCH`, WebDAV's `PROPFIND`) may be allowed by name, and is
/// forwarded as written (methods are case-sensitive).
#[test]
fn any_token_method_may_be_allowed() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let extra = "\n[[behavior]]\npath = \"/dav/*\"\ntarget = \"o\"\nallowed_methods = [\"GET\", \"HEAD\", \"M-SEARCH\", \"PROPFIND\"]\n";
    let p = Proxy::start(&config(&[("o", o.addr())], "o", extra));
    let mut c = p.client();
    c.send(b"M-SEARCH /dav/x HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-origin"), Some("o"));
    c.send(b"PROPFIND /dav/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
    // Not listed: 403, and methods are case-sensitive.
    c.send(b"propfind /dav/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 403);
    c.send(b"MKCOL /dav/x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 403);
}
