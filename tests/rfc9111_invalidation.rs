//! RFC 9111 §4.4 (Invalidating Stored Responses), over sockets: a
//! successful response to an unsafe method removes what the cache holds
//! for the target URI, and for a same-host Location or Content-Location.
mod common;
use common::rfc::proxy;
use common::scripted::{Reply, ScriptedOrigin};
use common::*;

/// GETs are answered fresh for an hour (`/v` varying on Accept-Encoding); other methods get what their path
/// says: `/err` a 500, `/create` a 201 pointing at `/a` (Location) and `/b`
/// (Content-Location), `/away` a Location on another host, `/abs` an
/// absolute same-host Location, anything else a 204.
fn site() -> ScriptedOrigin {
    ScriptedOrigin::start(|head| {
        let mut words = head.split(' ');
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let reply = match (method, path) {
            ("GET", "/v") => {
                "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nVary: Accept-Encoding\r\nContent-Length: 2\r\n\r\nok"
            }
            ("GET", _) => "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nContent-Length: 2\r\n\r\nok",
            (_, "/err") => "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
            (_, "/create") => {
                "HTTP/1.1 201 Created\r\nLocation: /a\r\nContent-Location: /b?v=1\r\nContent-Length: 0\r\n\r\n"
            }
            (_, "/away") => "HTTP/1.1 200 OK\r\nLocation: http://elsewhere.example/a\r\nContent-Length: 0\r\n\r\n",
            (_, "/abs") => "HTTP/1.1 303 See Other\r\nLocation: http://TEST/a#top\r\nContent-Length: 0\r\n\r\n",
            _ => "HTTP/1.1 204 No Content\r\n\r\n",
        };
        Reply::now(reply.as_bytes())
    })
}

/// Whether a GET of `path` is answered from the cache.
fn cached(c: &mut Client, path: &str) -> bool {
    c.get(path).header("x-cache") == Some("Hit from ringfront")
}

/// Sends `method path` without a body and returns the status.
fn unsafe_request(c: &mut Client, method: &str, path: &str) -> u16 {
    c.send(format!("{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n").as_bytes());
    c.read_response(false).expect("response").status
}

/// Stores `paths` (a miss, then a hit each).
fn store(c: &mut Client, paths: &[&str]) {
    for p in paths {
        c.get(p);
        assert!(cached(c, p), "{p} was not stored");
    }
}

/// §4.4: "A cache MUST invalidate the target URI when it receives a
/// non-error status code in response to an unsafe request method
/// (including methods whose safety is unknown)."
#[test]
fn a_successful_unsafe_request_invalidates_its_target() {
    let o = site();
    let p = proxy(&o);
    let mut c = p.client();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        store(&mut c, &["/doc", "/other"]);
        assert_eq!(unsafe_request(&mut c, method, "/doc"), 204);
        assert!(!cached(&mut c, "/doc"), "{method} left /doc in the cache");
        assert!(cached(&mut c, "/other"), "{method} /doc removed /other");
    }
}

/// §4.4: "(including methods whose safety is unknown)": an extension method
/// counts as unsafe; a safe one (OPTIONS) does not invalidate.
#[test]
fn an_unknown_method_invalidates_and_a_safe_one_does_not() {
    let o = site();
    let cfg = common::config(&[("o", o.addr)], "o", "")
        .replace("cache = false\n", "cache = true\ndefault_ttl = \"0s\"\n")
        .replace("\"DELETE\"]", "\"DELETE\", \"PROPPATCH\"]");
    let p = Proxy::start(&cfg);
    let mut c = p.client();
    store(&mut c, &["/doc"]);
    assert_eq!(unsafe_request(&mut c, "OPTIONS", "/doc"), 204);
    assert!(cached(&mut c, "/doc"), "OPTIONS is safe");
    assert_eq!(unsafe_request(&mut c, "PROPPATCH", "/doc"), 204);
    assert!(!cached(&mut c, "/doc"), "an extension method is of unknown safety");
}

/// §4.4: "non-error status code": a 500 to the POST leaves the stored
/// response in place.
#[test]
fn an_error_response_invalidates_nothing() {
    let o = site();
    let p = proxy(&o);
    let mut c = p.client();
    store(&mut c, &["/err"]);
    assert_eq!(unsafe_request(&mut c, "POST", "/err"), 500);
    assert!(cached(&mut c, "/err"));
}

/// §4.4: "A cache MAY invalidate other URIs when it receives a non-error
/// status code in response to an unsafe request method. In particular, the
/// URI reference in the Location and Content-Location response header
/// fields (if present) are candidates" (SPEC §4 makes this a MUST for a
/// same-host one).
#[test]
fn location_and_content_location_on_the_same_host_are_invalidated() {
    let o = site();
    let p = proxy(&o);
    let mut c = p.client();
    store(&mut c, &["/a", "/b?v=1", "/c"]);
    assert_eq!(unsafe_request(&mut c, "POST", "/create"), 201);
    assert!(!cached(&mut c, "/a"), "Location: /a was left");
    assert!(!cached(&mut c, "/b?v=1"), "Content-Location: /b?v=1 was left");
    assert!(cached(&mut c, "/c"));
    // An absolute URI on this host (any case, fragment dropped) counts too.
    store(&mut c, &["/a"]);
    assert_eq!(unsafe_request(&mut c, "POST", "/abs"), 303);
    assert!(!cached(&mut c, "/a"), "Location: http://TEST/a#top was left");
}

/// §4.4: "a cache MUST NOT invalidate a URI from a Location or
/// Content-Location response header field if the host part of that URI
/// differs from the host part in the target URI".
#[test]
fn a_location_on_another_host_is_left_alone() {
    let o = site();
    let p = proxy(&o);
    let mut c = p.client();
    store(&mut c, &["/a"]);
    assert_eq!(unsafe_request(&mut c, "POST", "/away"), 200);
    assert!(cached(&mut c, "/a"));
}

/// Every stored response for the target URI is invalidated, each variant
/// of a response that varies (SPEC §4: "all variants").
#[test]
fn every_variant_of_the_target_is_invalidated() {
    let o = site();
    let p = proxy(&o);
    let mut c = p.client();
    let get = |c: &mut Client, ae: &str| {
        c.send(format!("GET /v HTTP/1.1\r\nHost: test\r\nAccept-Encoding: {ae}\r\n\r\n").as_bytes());
        c.read_response(false).unwrap().header("x-cache") == Some("Hit from ringfront")
    };
    for ae in ["br", "gzip", "identity"] {
        get(&mut c, ae);
        assert!(get(&mut c, ae));
    }
    assert_eq!(unsafe_request(&mut c, "PUT", "/v"), 204);
    for ae in ["br", "gzip", "identity"] {
        assert!(!get(&mut c, ae), "{ae} variant left");
    }
}
