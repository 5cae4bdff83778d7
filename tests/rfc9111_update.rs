//! RFC 9111 §3.2 (Updating Stored Header Fields), §4.3.4 (Freshening Stored
//! Responses upon Validation) and §4.3.5 (Freshening Responses with HEAD),
//! over sockets: a 304 or a HEAD's 200 refreshes the stored response's
//! header fields as well as its freshness.
//!
//! Nothing here sleeps: an object is stale on arrival by its `Age` (or an
//! `Expires` in the past), and kept by a stale window.
mod common;
use common::rfc::{date_ago, date_in, proxy, ttl, values};
use common::scripted::{Reply, ScriptedOrigin};
use common::{eventually, Client};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Stale on arrival (120 s old, max-age=60), yet stored: the
/// stale-if-error window keeps it servable.
const STALE: &str = "Cache-Control: max-age=60, stale-if-error=86400\r\nAge: 120\r\n";

/// A 200 with `lines` and the body `ok`.
fn ok(lines: &str) -> Reply {
    Reply::now(format!("HTTP/1.1 200 OK\r\n{lines}Content-Length: 2\r\n\r\nok").as_bytes())
}

/// A 304 with `lines`.
fn not_modified(lines: &str) -> Reply {
    Reply::now(format!("HTTP/1.1 304 Not Modified\r\n{lines}\r\n").as_bytes())
}

/// Whether the request head carries header `name` (any value).
fn has(head: &str, name: &str) -> bool {
    head.lines()
        .any(|l| l.split(':').next().is_some_and(|n| n.trim().eq_ignore_ascii_case(name)))
}

/// How many requests the origin saw.
fn seen(o: &ScriptedOrigin) -> usize {
    o.received().len()
}

/// `HEAD path` on `c`.
fn head(c: &mut Client, path: &str) -> common::Response {
    c.send(format!("HEAD {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    c.read_response(true).expect("response")
}

/// §4.3.4: "For each stored response identified, the cache MUST update its
/// header fields with the header fields provided in the 304 (Not Modified)
/// response, as per Section 3.2", and §3.2: "the cache MUST add each header
/// field in the provided response to the stored response, replacing field
/// values that are already present". The new `Cache-Control: max-age=3600`
/// is what the viewer sees, and it makes the object fresh for an hour.
#[test]
fn a_304_with_a_new_max_age_is_fresh_for_an_hour_and_shows_it() {
    let o = ScriptedOrigin::start(|h| {
        if has(h, "if-none-match") {
            not_modified("ETag: \"v1\"\r\nCache-Control: max-age=3600\r\n")
        } else {
            ok(&format!("{STALE}ETag: \"v1\"\r\n"))
        }
    });
    let p = proxy(&o);
    let mut c = p.client();
    let first = c.get("/a");
    assert!(
        first.header("cache-status").unwrap_or("").contains("stored"),
        "{first:?}"
    );
    let refreshed = c.get("/a");
    assert_eq!(refreshed.header("x-cache"), Some("RefreshHit from ringfront"));
    assert_eq!(values(&refreshed, "cache-control"), ["max-age=3600"], "{refreshed:?}");
    assert_eq!(refreshed.text(), "ok");
    let hit = c.get("/a");
    assert_eq!(hit.header("x-cache"), Some("Hit from ringfront"), "{hit:?}");
    assert_eq!(values(&hit, "cache-control"), ["max-age=3600"], "{hit:?}");
    assert!(ttl(&hit).unwrap() > 3500, "{:?}", hit.header("cache-status"));
    assert_eq!(seen(&o), 2);
}

/// §3.2: "replacing field values that are already present": a 304 to an
/// If-Modified-Since revalidation brings a new ETag, a new Expires (which,
/// §4.2.1, sets the lifetime) and a new value of a field the cache knows
/// nothing of; later hits carry them, once each, and a conditional request
/// is answered against the new ETag. §4.3.4: the Last-Modified both carry is
/// the strong validator that selects the stored response.
#[test]
fn a_304_updates_etag_expires_and_other_fields_on_later_hits() {
    let lm = date_ago(86_400);
    let expires = date_in(3600);
    let stored = format!(
        "Last-Modified: {lm}\r\nCache-Control: stale-if-error=86400\r\nExpires: {}\r\nX-Foo: a\r\n",
        date_ago(60)
    );
    let update = format!("Last-Modified: {lm}\r\nETag: \"v2\"\r\nExpires: {expires}\r\nX-Foo: b\r\n");
    let o = ScriptedOrigin::start(move |h| {
        if has(h, "if-modified-since") {
            not_modified(&update)
        } else {
            ok(&stored)
        }
    });
    let p = proxy(&o);
    let mut c = p.client();
    c.get("/e");
    let refreshed = c.get("/e");
    assert_eq!(refreshed.header("x-cache"), Some("RefreshHit from ringfront"));
    let hit = c.get("/e");
    assert_eq!(hit.header("x-cache"), Some("Hit from ringfront"), "{hit:?}");
    assert_eq!(values(&hit, "etag"), ["\"v2\""], "{hit:?}");
    assert_eq!(values(&hit, "expires"), [expires.as_str()], "{hit:?}");
    assert_eq!(values(&hit, "x-foo"), ["b"], "{hit:?}");
    assert_eq!(values(&hit, "last-modified"), [lm.as_str()], "{hit:?}");
    c.send(b"GET /e HTTP/1.1\r\nHost: test\r\nIf-None-Match: \"v2\"\r\n\r\n");
    let conditional = c.read_response(false).unwrap();
    assert_eq!(conditional.status, 304, "{conditional:?}");
    assert_eq!(seen(&o), 2);
}

/// §3.2: the update excepts "The Content-Length header field" and "Header
/// fields excepted from storage in Section 3.1", which are "The Connection
/// header field and fields whose names are listed in it" (and the other
/// hop-by-hop fields). A 304 saying `Content-Length: 999` leaves the stored
/// body's length alone; its hop-by-hop fields are not stored; its other
/// fields are.
#[test]
fn a_304_does_not_copy_content_length_or_hop_by_hop_fields() {
    let o = ScriptedOrigin::start(|h| {
        if has(h, "if-none-match") {
            not_modified(
                "ETag: \"v1\"\r\nCache-Control: max-age=3600\r\nContent-Length: 999\r\n\
                 Connection: X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Foo: b\r\n",
            )
        } else {
            ok(&format!("{STALE}ETag: \"v1\"\r\nX-Foo: a\r\n"))
        }
    });
    let p = proxy(&o);
    let mut c = p.client();
    c.get("/cl");
    c.get("/cl");
    let hit = c.get("/cl");
    assert_eq!(hit.header("x-cache"), Some("Hit from ringfront"), "{hit:?}");
    assert_eq!(values(&hit, "x-foo"), ["b"], "{hit:?}");
    assert_eq!(values(&hit, "content-length"), ["2"], "{hit:?}");
    assert_eq!(hit.text(), "ok");
    assert!(!hit.has_header("x-hop") && !hit.has_header("keep-alive"), "{hit:?}");
}

/// §4.3.4: "If the new response contains one or more strong validators ...
/// If none of the initial set contains at least one of the same strong
/// validators, then the cache MUST NOT use the new response to update any
/// stored responses." A 304 naming ETag "v2" for a stored "v1" updates
/// nothing; the viewer gets the representation, asked for again without
/// conditions, and that is what is stored.
#[test]
fn a_304_with_another_etag_updates_nothing() {
    let n = AtomicUsize::new(0);
    let o = ScriptedOrigin::start(move |h| {
        if has(h, "if-none-match") {
            not_modified("ETag: \"v2\"\r\nCache-Control: max-age=3600\r\nX-Foo: b\r\n")
        } else if n.fetch_add(1, Ordering::SeqCst) == 0 {
            ok(&format!("{STALE}ETag: \"v1\"\r\nX-Foo: a\r\n"))
        } else {
            ok("ETag: \"v2\"\r\nCache-Control: max-age=3600\r\nX-Foo: c\r\n")
        }
    });
    let p = proxy(&o);
    let mut c = p.client();
    c.get("/tag");
    let second = c.get("/tag");
    assert_eq!(second.status, 200);
    assert_eq!(values(&second, "x-foo"), ["c"], "{second:?}");
    assert_eq!(values(&second, "etag"), ["\"v2\""], "{second:?}");
    let received = o.received();
    assert_eq!(received.len(), 3, "{:?}", o.request_lines());
    assert!(!has(&String::from_utf8_lossy(&received[2]), "if-none-match"));
    let hit = c.get("/tag");
    assert_eq!(hit.header("x-cache"), Some("Hit from ringfront"), "{hit:?}");
    assert_eq!(values(&hit, "x-foo"), ["c"], "{hit:?}");
}

/// §4.3.5: "When a cache makes an inbound HEAD request for a target URI and
/// receives a 200 (OK) response, the cache SHOULD update or invalidate each
/// of its stored GET responses that could have been chosen for that
/// request"; "if ... the HEAD response has a Content-Length header field,
/// the value of Content-Length matches that of the stored response, the
/// cache SHOULD update the stored response ...; otherwise, the cache SHOULD
/// consider the stored response to be stale", and "the cache MUST use the
/// header fields provided in the HEAD response to update the stored
/// response (see Section 3.2)". A HEAD whose Content-Length differs updates
/// nothing (the next HEAD still goes to the origin); one that matches makes
/// the stored GET fresh with its fields, keeping the fields it did not send.
#[test]
fn a_head_response_updates_the_stored_get() {
    let heads = AtomicUsize::new(0);
    let o = ScriptedOrigin::start(move |h| {
        if !h.starts_with("HEAD ") {
            return ok(&format!("{STALE}X-Kept: 1\r\nX-Foo: a\r\n"));
        }
        let len = if heads.fetch_add(1, Ordering::SeqCst) == 0 {
            5
        } else {
            2
        };
        Reply::now(
            format!("HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nX-Foo: b\r\nContent-Length: {len}\r\n\r\n")
                .as_bytes(),
        )
    });
    let p = proxy(&o);
    let mut c = p.client();
    c.get("/h");
    let other_length = head(&mut c, "/h");
    assert_eq!(other_length.status, 200);
    let matching = head(&mut c, "/h");
    assert_eq!(
        o.request_lines(),
        ["GET /h HTTP/1.1", "HEAD /h HTTP/1.1", "HEAD /h HTTP/1.1"],
        "the first HEAD (another length) updated the stored GET"
    );
    assert_eq!(values(&matching, "x-foo"), ["b"], "{matching:?}");
    assert_eq!(values(&matching, "x-kept"), ["1"], "{matching:?}");
    let hit = c.get("/h");
    assert_eq!(hit.header("x-cache"), Some("Hit from ringfront"), "{hit:?}");
    assert_eq!(values(&hit, "x-foo"), ["b"], "{hit:?}");
    assert_eq!(values(&hit, "x-kept"), ["1"], "{hit:?}");
    assert_eq!(values(&hit, "cache-control"), ["max-age=3600"], "{hit:?}");
    assert_eq!(hit.text(), "ok");
    assert_eq!(seen(&o), 3);
}

/// §4.3.4 for a HEAD: "When a cache receives a 304 (Not Modified)
/// response, it needs to identify stored responses that are suitable for
/// updating with the new information provided, and then do so." A stale
/// GET revalidated for a HEAD (If-None-Match from the stored ETag) is
/// updated and stored as a GET's revalidation is: the next GET is a hit.
#[test]
fn a_304_to_a_head_revalidation_updates_the_stored_get() {
    let o = ScriptedOrigin::start(|h| {
        if has(h, "if-none-match") {
            not_modified("ETag: \"v1\"\r\nCache-Control: max-age=3600\r\nX-Foo: b\r\n")
        } else {
            ok(&format!("{STALE}ETag: \"v1\"\r\nX-Foo: a\r\n"))
        }
    });
    let p = proxy(&o);
    let mut c = p.client();
    c.get("/hr");
    let r = head(&mut c, "/hr");
    assert_eq!(r.header("x-cache"), Some("RefreshHit from ringfront"), "{r:?}");
    assert_eq!(values(&r, "x-foo"), ["b"], "{r:?}");
    assert_eq!(o.request_lines(), ["GET /hr HTTP/1.1", "HEAD /hr HTTP/1.1"]);
    let hit = c.get("/hr");
    assert_eq!(hit.header("x-cache"), Some("Hit from ringfront"), "{hit:?}");
    assert_eq!(values(&hit, "x-foo"), ["b"], "{hit:?}");
    assert_eq!(hit.text(), "ok");
}

/// RFC 5861 §3 with RFC 9111 §4.3.4: the background revalidation behind a
/// stale-while-revalidate answer updates the stored fields too ("the cache
/// MUST update its header fields with the header fields provided in the
/// 304").
#[test]
fn a_background_refresh_updates_the_stored_fields() {
    let o = ScriptedOrigin::start(|h| {
        if has(h, "if-none-match") {
            not_modified("ETag: \"v1\"\r\nCache-Control: max-age=3600\r\nX-Foo: b\r\n")
        } else {
            ok("Cache-Control: max-age=60, stale-while-revalidate=86400\r\nAge: 120\r\nETag: \"v1\"\r\nX-Foo: a\r\n")
        }
    });
    let p = proxy(&o);
    let mut c = p.client();
    c.get("/swr");
    let stale = c.get("/swr");
    assert_eq!(values(&stale, "x-foo"), ["a"], "served stale at once");
    eventually("the refresh updates X-Foo", || values(&c.get("/swr"), "x-foo") == ["b"]);
    let hit = c.get("/swr");
    assert_eq!(values(&hit, "cache-control"), ["max-age=3600"], "{hit:?}");
    assert!(ttl(&hit).unwrap() > 3500, "{:?}", hit.header("cache-status"));
    assert_eq!(seen(&o), 2, "{:?}", o.request_lines());
}
