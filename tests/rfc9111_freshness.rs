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
