//! RFC 9111 §4.2 (Freshness) and §3 (Storing Responses), over sockets, for
//! header fields sent on more than one line: RFC 9110 §5.3 makes repeated
//! lines one list, and the cache reads them so.
mod common;
use common::rfc::{origin, proxy, ttl, twice};

/// RFC 9110 §5.3: "A recipient MAY combine multiple field lines within a
/// field section that have the same field name into one field line ... by
/// appending each subsequent field line value to the initial field line
/// value in order, separated by a comma", and RFC 9111 §5.2.2.10: "the
/// maximum age specified by this directive [s-maxage] overrides the maximum
/// age specified by either the max-age directive or the Expires header
/// field". The s-maxage on the second line sets the lifetime.
#[test]
fn a_second_cache_control_line_with_s_maxage_wins() {
    let o = origin(&[
        (
            "/five",
            "Cache-Control: max-age=1\r\nCache-Control: s-maxage=5\r\n".into(),
        ),
        (
            "/hour",
            "Cache-Control: max-age=1\r\nCache-Control: s-maxage=3600\r\n".into(),
        ),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    let (_, second, hit) = twice(&mut c, &o, "/five");
    assert!(hit);
    // max-age=1 would leave at most 1 s; s-maxage=5 leaves 5 s less the
    // (whole) seconds between the two requests.
    let left = ttl(&second).unwrap();
    assert!((2..=5).contains(&left), "{:?}", second.header("cache-status"));
    let (_, second, hit) = twice(&mut c, &o, "/hour");
    assert!(hit);
    assert!(ttl(&second).unwrap() > 3000, "{:?}", second.header("cache-status"));
}

/// RFC 9111 §4.1: "A stored response with a Vary header field value
/// containing a member "*" always fails to match", so it is not worth
/// storing; a `*` on a second Vary line is a member of the one list
/// (RFC 9110 §5.3).
#[test]
fn vary_star_on_a_second_line_prevents_storing() {
    let o = origin(&[
        (
            "/star",
            "Cache-Control: max-age=3600\r\nVary: Accept-Encoding\r\nVary: *\r\n".into(),
        ),
        (
            "/star-list",
            "Cache-Control: max-age=3600\r\nVary: Accept-Encoding, *\r\n".into(),
        ),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    for path in ["/star", "/star-list"] {
        let (first, _, hit) = twice(&mut c, &o, path);
        assert!(!hit, "{path} was stored");
        assert_eq!(first.header("cache-status"), Some("ringfront; fwd=miss"), "{path}");
    }
}

/// RFC 9111 §5.2.2.5: "The no-store response directive indicates that a
/// cache MUST NOT store any part of either the immediate request or the
/// response", wherever in the list it is: here on a third line.
#[test]
fn no_store_on_a_later_line_prevents_storing() {
    let o = origin(&[(
        "/late",
        "Cache-Control: public\r\nCache-Control: max-age=3600\r\nCache-Control: no-store\r\n".into(),
    )]);
    let p = proxy(&o);
    assert!(!twice(&mut p.client(), &o, "/late").2);
}

/// An origin answering each path with the status line and header lines
/// given (each ending in CRLF) and the body `ok`.
fn statuses(table: &'static [(&'static str, &'static str)]) -> common::scripted::ScriptedOrigin {
    common::scripted::ScriptedOrigin::start(move |head| {
        let path = head.split(' ').nth(1).unwrap_or("");
        let head = table
            .iter()
            .find(|(p, _)| *p == path)
            .map_or("HTTP/1.1 404 Not Found\r\n", |(_, h)| *h);
        common::scripted::Reply::now(format!("{head}Content-Length: 2\r\n\r\nok").as_bytes())
    })
}

/// RFC 9111 §3: a cache may store a response when "the response status code
/// is final" and it "contains ... a max-age response directive", whatever
/// the status: a redirect, a 299 no registry knows, an error (SPEC §4:
/// errors with explicit freshness).
#[test]
fn any_final_status_with_explicit_freshness_is_stored() {
    let o = statuses(&[
        (
            "/found",
            "HTTP/1.1 302 Found\r\nLocation: /x\r\nCache-Control: max-age=3600\r\n",
        ),
        (
            "/temp",
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /x\r\nCache-Control: s-maxage=3600\r\n",
        ),
        ("/odd", "HTTP/1.1 299 Whatever\r\nCache-Control: max-age=3600\r\n"),
        ("/bad", "HTTP/1.1 400 Bad Request\r\nCache-Control: max-age=3600\r\n"),
    ]);
    let p = proxy(&o);
    for path in ["/found", "/temp", "/odd", "/bad"] {
        let (first, second, hit) = twice(&mut p.client(), &o, path);
        assert!(hit, "{path}: {} then {:?}", first.status, second.headers);
        assert_eq!(first.status, second.status);
    }
}

/// §3: "if the response status code is 206 or 304, or the must-understand
/// cache directive (see Section 5.2.2.3) is present: the cache understands
/// the response status code"; §5.2.2.3: "When the cache is obligated to obey
/// must-understand, it SHOULD ignore the no-store directive".
#[test]
fn must_understand_stores_only_understood_statuses_and_overrides_no_store() {
    let o = statuses(&[
        (
            "/known",
            "HTTP/1.1 200 OK\r\nCache-Control: must-understand, no-store, max-age=3600\r\n",
        ),
        (
            "/unknown",
            "HTTP/1.1 299 Whatever\r\nCache-Control: must-understand, max-age=3600\r\n",
        ),
    ]);
    let p = proxy(&o);
    assert!(twice(&mut p.client(), &o, "/known").2, "a 200 is understood");
    assert!(!twice(&mut p.client(), &o, "/unknown").2, "a 299 is not understood");
    assert!(!twice(&mut p.client(), &o, "/unknown-5xx").2, "nor an unregistered 599");
}

/// §3.5: "A shared cache MUST NOT use a cached response to a request with an
/// Authorization header field ... unless ... the response contains a
/// must-revalidate, public, or s-maxage response directive" (here
/// must-revalidate).
#[test]
fn must_revalidate_lets_an_authorized_response_be_stored() {
    let o = statuses(&[(
        "/me",
        "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600, must-revalidate\r\n",
    )]);
    let p = proxy(&o);
    let mut c = p.client();
    let get = |c: &mut common::Client| {
        c.send(b"GET /me HTTP/1.1\r\nHost: test\r\nAuthorization: Basic YTpi\r\n\r\n");
        c.read_response(false).unwrap()
    };
    get(&mut c);
    assert_eq!(get(&mut c).header("x-cache"), Some("Hit from ringfront"));
    assert_eq!(common::rfc::origin_requests(&o, "/me"), 1);
}

/// §5.2.2.2 must-revalidate: "once the response has become stale, a cache
/// MUST NOT reuse that response to satisfy another request until it has
/// been successfully validated by the origin", which stale-while-revalidate
/// does not override. Arriving stale (Age past max-age), it is never served.
#[test]
fn must_revalidate_forbids_serving_stale() {
    let o = statuses(&[(
        "/strict",
        "HTTP/1.1 200 OK\r\nAge: 100\r\nCache-Control: max-age=10, stale-while-revalidate=3600, must-revalidate\r\n",
    )]);
    let p = proxy(&o);
    let (_, second, _) = twice(&mut p.client(), &o, "/strict");
    assert_eq!(common::rfc::origin_requests(&o, "/strict"), 2, "{:?}", second.headers);
}

/// RFC 9110 §5.6.7: "A recipient that parses a timestamp value in an HTTP
/// header field MUST accept all three HTTP-date formats"; an asctime
/// Expires, and names in the wrong case, still give freshness. A date of
/// another shape (`UTC`) is invalid, and RFC 9111 §5.3: "A cache recipient
/// MUST interpret invalid date formats ... as representing a time in the
/// past (i.e., 'already expired')".
#[test]
fn expires_in_every_http_date_format() {
    let o = origin(&[
        ("/asctime", "Expires: Thu Aug  8 02:01:18 2050\r\n".into()),
        ("/case", "Expires: THU, 18 AUG 2050 02:01:18 gmt\r\n".into()),
        ("/utc", "Expires: Thu, 18 Aug 2050 02:01:18 UTC\r\n".into()),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    assert!(twice(&mut c, &o, "/asctime").2, "asctime-date");
    assert!(twice(&mut c, &o, "/case").2, "names in another case");
    assert!(!twice(&mut c, &o, "/utc").2, "UTC is not GMT");
}
