//! RFC 9111 §4.1 (Calculating Cache Keys with the Vary Header Field), over
//! sockets: a response that varies is stored as one variant per set of
//! request values it was selected by (SPEC §4: Accept, Accept-Charset
//! and Accept-Language list members trimmed and lowercased, other values
//! as sent, each line trimmed, Accept-Encoding normalised, at most 16 per
//! URL), and a response that does not vary is stored once, whatever the
//! viewer's headers.
//!
//! The origin here echoes the request's values of one header in the body,
//! so a hit with the wrong variant shows in the body.
mod common;
use common::rfc::{origin, origin_requests};
use common::scripted::{Reply, ScriptedOrigin};
use common::{admin_post, config, eventually, request_values, scrape, Client, Proxy, Response};

const HIT: Option<&str> = Some("Hit from ringfront");

/// A 200 with `Cache-Control: max-age=3600`, the response lines `vary`
/// and a body naming the request's values of `echo` ([`echo_reply_with`]).
fn echo_reply(head: &str, vary: &str, echo: &str) -> Vec<u8> {
    echo_reply_with(head, &format!("Cache-Control: max-age=3600\r\n{vary}"), echo)
}

/// A 200 with the response lines `lines` and a body naming the request's
/// values of `echo` ("-" when absent, lines joined by "|").
fn echo_reply_with(head: &str, lines: &str, echo: &str) -> Vec<u8> {
    let values = request_values(head, echo);
    let body = if values.is_empty() {
        "-".to_string()
    } else {
        values.join("|")
    };
    format!("HTTP/1.1 200 OK\r\n{lines}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// An origin answering every GET with [`echo_reply`].
fn echo_origin(vary: &'static str, echo: &'static str) -> ScriptedOrigin {
    ScriptedOrigin::start(move |head| Reply::now(&echo_reply(head, vary, echo)))
}

/// `GET path` with the header lines `lines` (each ending in CRLF).
fn get(c: &mut Client, path: &str, lines: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{lines}\r\n").as_bytes());
    c.read_response(false).expect("response")
}

/// §4.1: "the cache MUST NOT use that stored response without
/// revalidation unless all the presented request header fields nominated
/// by that Vary field value match those fields in the original request":
/// two Origin values are two stored responses, each a hit afterwards with
/// its own body (the issue's acceptance case).
#[test]
fn vary_origin_with_two_values_gives_two_variants_each_a_hit() {
    let o = echo_origin("Vary: Origin\r\n", "origin");
    let p = proxy(&o);
    let mut c = p.client();
    let (a, b) = ("Origin: https://a.example\r\n", "Origin: https://b.example\r\n");
    assert_eq!(get(&mut c, "/o", a).text(), "https://a.example");
    assert_eq!(get(&mut c, "/o", b).text(), "https://b.example");
    for _ in 0..2 {
        let ra = get(&mut c, "/o", a);
        assert_eq!((ra.header("x-cache"), ra.text().as_str()), (HIT, "https://a.example"));
        let rb = get(&mut c, "/o", b);
        assert_eq!((rb.header("x-cache"), rb.text().as_str()), (HIT, "https://b.example"));
    }
    assert_eq!(origin_requests(&o, "/o"), 2);
}

/// §4.1: "A stored response with a Vary header field value containing a
/// member "*" always fails to match" (SPEC §4: not stored).
#[test]
fn vary_star_is_not_stored() {
    let o = echo_origin("Vary: *\r\n", "origin");
    let p = proxy(&o);
    let mut c = p.client();
    get(&mut c, "/star", "");
    let again = get(&mut c, "/star", "");
    assert_eq!(again.header("x-cache"), Some("Miss from ringfront"));
    assert_eq!(origin_requests(&o, "/star"), 2);
}

/// §4.1 applies to "a stored response [that] contains a Vary header
/// field"; one without Vary matches any request for its URI (SPEC §4:
/// "Responses that do not vary are stored once, whatever the viewer's
/// headers"): other Accept-Encodings and a Range request with
/// `Accept-Encoding: identity` are hits on the one object.
#[test]
fn a_response_without_vary_is_one_object_whatever_the_accept_encoding() {
    let o = origin(&[("/plain", "Cache-Control: max-age=3600\r\n".into())]);
    let p = proxy(&o);
    let mut c = p.client();
    get(&mut c, "/plain", "Accept-Encoding: gzip\r\n");
    for lines in ["Accept-Encoding: br\r\n", "", "Accept-Encoding: identity\r\n"] {
        let r = get(&mut c, "/plain", lines);
        assert_eq!((r.header("x-cache"), r.text().as_str()), (HIT, "ok"), "{lines:?}");
    }
    let r = get(&mut c, "/plain", "Range: bytes=0-0\r\nAccept-Encoding: identity\r\n");
    assert_eq!((r.status, r.header("x-cache"), r.text().as_str()), (206, HIT, "o"));
    assert_eq!(origin_requests(&o, "/plain"), 1);
    assert_eq!(scrape_objects(&p), 1, "one stored object");
}

/// `Vary: Accept-Encoding` keeps one variant per normalised coding (SPEC
/// §4: "br, gzip or identity (the best the viewer accepts; no header means
/// identity) ... and that normalised value is what the origin receives");
/// §4.1 lets requests match after "normalizing both header field values in
/// a way that is known to have identical semantics".
#[test]
fn vary_accept_encoding_keeps_br_gzip_and_identity_and_the_origin_gets_the_normalised_value() {
    let o = echo_origin("Vary: Accept-Encoding\r\n", "accept-encoding");
    let p = proxy(&o);
    let mut c = p.client();
    let cases = [
        ("Accept-Encoding: gzip, deflate, br\r\n", "br"),
        ("Accept-Encoding: gzip;q=1.0, deflate\r\n", "gzip"),
        ("", "identity"),
    ];
    for (lines, sent) in cases {
        assert_eq!(
            get(&mut c, "/ae", lines).text(),
            sent,
            "the origin received {sent} for {lines:?}"
        );
    }
    let same = [
        ("Accept-Encoding: BR\r\n", "br"),
        ("Accept-Encoding: x-gzip\r\nAccept-Encoding: deflate\r\n", "gzip"),
        ("Accept-Encoding: deflate\r\n", "identity"),
        ("Accept-Encoding: br;q=0, gzip;q=0\r\n", "identity"),
    ];
    for (lines, body) in cases.into_iter().chain(same) {
        let r = get(&mut c, "/ae", lines);
        assert_eq!((r.header("x-cache"), r.text().as_str()), (HIT, body), "{lines:?}");
    }
    assert_eq!(origin_requests(&o, "/ae"), 3);
}

/// RFC 9110 §5.3: repeated Vary lines are one list; §4.1: requests match
/// after "adding or removing whitespace, where allowed in the header
/// field's syntax" and "combining multiple header field lines with the
/// same field name": for Accept-Language, a list ringfront reads as such.
/// Another header is keyed as the origin is sent it, each line trimmed:
/// its other spellings are other variants, each the origin's answer to it.
#[test]
fn multiple_vary_lines_are_one_list_and_accept_language_members_are_trimmed() {
    let o = echo_origin("Vary: Origin\r\nVary:  x-tenant ,Accept-Language\r\n", "x-tenant");
    let p = proxy(&o);
    let mut c = p.client();
    let first = "X-Tenant: a, b\r\nAccept-Language: en, fr\r\n";
    assert_eq!(get(&mut c, "/multi", first).text(), "a, b");
    for lines in [
        first,
        "X-Tenant:  a, b \r\nAccept-Language:  en ,fr \r\n",
        "X-Tenant: a, b\r\nAccept-Language: en\r\nAccept-Language: fr\r\n",
        "Accept-Language: en,,fr\r\nX-Tenant: a, b\r\n",
    ] {
        let r = get(&mut c, "/multi", lines);
        assert_eq!((r.header("x-cache"), r.text().as_str()), (HIT, "a, b"), "{lines:?}");
    }
    for (lines, body) in [
        ("X-Tenant: a,b\r\nAccept-Language: en, fr\r\n", "a,b"),
        ("X-Tenant: a\r\nX-Tenant: b\r\nAccept-Language: en, fr\r\n", "a|b"),
    ] {
        let r = get(&mut c, "/multi", lines);
        let miss = Some("Miss from ringfront");
        assert_eq!((r.header("x-cache"), r.text().as_str()), (miss, body), "{lines:?}");
    }
    // Another value of a header named on the second line is another variant.
    let r = get(&mut c, "/multi", "X-Tenant: a, b\r\nAccept-Language: de\r\n");
    assert_eq!(r.header("x-cache"), Some("Miss from ringfront"));
    // And so is another value of the header on the first line.
    let r = get(&mut c, "/multi", &format!("{first}Origin: https://x.example\r\n"));
    assert_eq!(r.header("x-cache"), Some("Miss from ringfront"));
    assert_eq!(origin_requests(&o, "/multi"), 5);
}

/// §4.1: "If (after any normalization that might take place) a header
/// field is absent from a request, it can only match another request if
/// it is also absent there." Present but empty is not absent.
#[test]
fn a_header_absent_and_present_are_different_variants() {
    let o = echo_origin("Vary: X-Tenant\r\n", "x-tenant");
    let p = proxy(&o);
    let mut c = p.client();
    let cases = [("", "-"), ("X-Tenant:\r\n", ""), ("X-Tenant: a\r\n", "a")];
    for (lines, body) in cases {
        let r = get(&mut c, "/absent", lines);
        assert_eq!(
            (r.header("x-cache"), r.text().as_str()),
            (Some("Miss from ringfront"), body),
            "{lines:?}"
        );
    }
    for (lines, body) in cases {
        let r = get(&mut c, "/absent", lines);
        assert_eq!((r.header("x-cache"), r.text().as_str()), (HIT, body), "{lines:?}");
    }
}

/// SPEC §4: "Accept-* values lowercased" (RFC 9110 §12.5.4: language tags
/// are case-insensitive, so §4.1 "case-normalization, where values are
/// defined to be case-insensitive" applies); other headers' values keep
/// their case.
#[test]
fn accept_values_match_in_any_case_other_values_do_not() {
    let o = echo_origin("Vary: Accept-Language, X-Tenant\r\n", "accept-language");
    let p = proxy(&o);
    let mut c = p.client();
    get(&mut c, "/case", "Accept-Language: EN-us, Fr\r\nX-Tenant: A\r\n");
    let r = get(&mut c, "/case", "Accept-Language: en-US,fr\r\nX-Tenant: A\r\n");
    assert_eq!((r.header("x-cache"), r.text().as_str()), (HIT, "EN-us, Fr"));
    let r = get(&mut c, "/case", "Accept-Language: en-US,fr\r\nX-Tenant: a\r\n");
    assert_eq!(r.header("x-cache"), Some("Miss from ringfront"));
}

/// SPEC §4: "at most 16 variants per URL". The 17th replaces the oldest:
/// the newest is the one most likely asked for again (and §4.1 lets a
/// cache keep any subset; refusing would keep 16 stale choices forever).
#[test]
fn the_seventeenth_variant_evicts_the_oldest() {
    let o = echo_origin("Vary: X-Tenant\r\n", "x-tenant");
    let p = proxy(&o);
    let mut c = p.client();
    let tenant = |i: usize| format!("X-Tenant: t{i}\r\n");
    for i in 0..17 {
        assert_eq!(get(&mut c, "/many", &tenant(i)).text(), format!("t{i}"));
    }
    for i in 1..17 {
        let r = get(&mut c, "/many", &tenant(i));
        assert_eq!((r.header("x-cache"), r.text()), (HIT, format!("t{i}")), "variant {i}");
    }
    let r = get(&mut c, "/many", &tenant(0));
    assert_eq!(r.header("x-cache"), Some("Miss from ringfront"), "the oldest left");
    assert_eq!(scrape_objects(&p), 16);
}

/// A changed Vary: the newest response's Vary decides what is stored for
/// the URI (§4: "When more than one suitable response is stored, a cache
/// MUST use the most recent one"; the variants of the old Vary are gone).
#[test]
fn the_newest_response_s_vary_wins() {
    let o = ScriptedOrigin::start(|head| {
        // Origin b is answered with a different Vary.
        let vary = if head.contains("Origin: b") {
            "Vary: X-Tenant\r\n"
        } else {
            "Vary: Origin\r\n"
        };
        Reply::now(&echo_reply(head, vary, "origin"))
    });
    let p = proxy(&o);
    let mut c = p.client();
    assert_eq!(get(&mut c, "/changed", "Origin: a\r\n").text(), "a");
    assert_eq!(get(&mut c, "/changed", "Origin: a\r\n").header("x-cache"), HIT);
    assert_eq!(get(&mut c, "/changed", "Origin: b\r\n").text(), "b");
    // Now the response varies on X-Tenant only, absent from both requests.
    let r = get(&mut c, "/changed", "Origin: a\r\n");
    assert_eq!((r.header("x-cache"), r.text().as_str()), (HIT, "b"));
    assert_eq!(scrape_objects(&p), 1, "the Origin variant was dropped");
}

/// A stale variant is revalidated for its own request values and refreshed
/// under its own key (RFC 9111 §4.3.4: the 304 updates "each stored
/// response" it selects, here the one variant), in the background
/// (stale-while-revalidate, RFC 5861 §3); the other variants stay as they
/// were.
#[test]
fn a_stale_variant_is_refreshed_under_its_own_key() {
    let o = ScriptedOrigin::start(|head| {
        let origin = request_values(head, "origin").join("");
        if !request_values(head, "if-none-match").is_empty() {
            let reply =
                format!("HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=3600\r\nETag: \"e-{origin}\"\r\n\r\n");
            return Reply::now(reply.as_bytes());
        }
        // Stale on arrival (Age 20 > max-age 10), within its stale window.
        let lines = format!(
            "Cache-Control: max-age=10, stale-while-revalidate=600\r\nAge: 20\r\nETag: \"e-{origin}\"\r\nVary: Origin\r\n"
        );
        Reply::now(&echo_reply_with(head, &lines, "origin"))
    });
    let p = proxy(&o);
    let mut c = p.client();
    let (a, b) = ("Origin: a\r\n", "Origin: b\r\n");
    get(&mut c, "/swr", a);
    get(&mut c, "/swr", b);
    let stale = get(&mut c, "/swr", a);
    assert_eq!((stale.header("x-cache"), stale.text().as_str()), (HIT, "a"));
    let fresh = |r: &Response| r.header("cache-status").is_some_and(|v| !v.contains("ttl=-"));
    eventually("variant a refreshed", || {
        let r = get(&mut p.client(), "/swr", a);
        r.text() == "a" && fresh(&r)
    });
    let conditional: Vec<String> = o
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .filter(|r| r.contains("If-None-Match"))
        .collect();
    assert!(!conditional.is_empty());
    assert!(conditional[0].contains("Origin: a\r\n") && conditional[0].contains("If-None-Match: \"e-a\""));
    let r = get(&mut c, "/swr", b);
    assert_eq!((r.header("x-cache"), r.text().as_str()), (HIT, "b"));
    assert!(
        !fresh(&r),
        "variant b was not refreshed: {:?}",
        r.header("cache-status")
    );
}

/// SPEC §4.4-style removal by the operator: `POST /invalidate` of an exact
/// path, or a prefix, removes every variant of the URI.
#[test]
fn admin_invalidate_removes_every_variant() {
    let o = echo_origin("Vary: Origin\r\n", "origin");
    let p = proxy(&o);
    let mut c = p.client();
    for (path, body) in [("/inv/exact", "/inv/exact\n"), ("/inv/prefix/x", "/inv/prefix/*\n")] {
        for origin in ["a", "b", "c"] {
            get(&mut c, path, &format!("Origin: {origin}\r\n"));
            assert_eq!(
                get(&mut c, path, &format!("Origin: {origin}\r\n")).header("x-cache"),
                HIT
            );
        }
        assert_eq!(admin_post(&p, "/invalidate", body), "3\n", "{path}");
        for origin in ["a", "b", "c"] {
            let r = get(&mut c, path, &format!("Origin: {origin}\r\n"));
            assert_eq!(r.header("x-cache"), Some("Miss from ringfront"), "{path} {origin}");
        }
    }
}

/// Collapsing keys on what a request will be answered from: requests that
/// wait on a fetch whose response turns out to vary, and whose values
/// differ, are not handed the leader's variant (§4.1); they fetch their
/// own, and those with the leader's values get its response.
#[test]
fn waiting_requests_of_another_variant_do_not_get_the_leaders_response() {
    let first = std::sync::atomic::AtomicBool::new(true);
    let o = ScriptedOrigin::start(move |head| {
        let reply = echo_reply(head, "Vary: Origin\r\n", "origin");
        if head.contains("Origin: slow") && first.swap(false, std::sync::atomic::Ordering::SeqCst) {
            // The leader's: the head now, the body when the test says.
            let at = reply.len() - "slow".len();
            return Reply {
                now: reply[..at].to_vec(),
                later: Some(reply[at..].to_vec()),
                ..Default::default()
            };
        }
        Reply::now(&reply)
    });
    let p = proxy(&o);
    let mut leader = p.client();
    leader.send(b"GET /herd HTTP/1.1\r\nHost: test\r\nOrigin: slow\r\n\r\n");
    eventually("the leader's fetch reached the origin", || {
        origin_requests(&o, "/herd") == 1
    });
    let mut others: Vec<(Client, &str)> = ["other", "slow", "third"]
        .into_iter()
        .map(|origin| {
            let mut c = p.client();
            c.send(format!("GET /herd HTTP/1.1\r\nHost: test\r\nOrigin: {origin}\r\n\r\n").as_bytes());
            (c, origin)
        })
        .collect();
    // The proxy has taken the waiting requests' connections (they are read
    // and joined to the flight right after).
    eventually("four viewer connections open", || {
        gauge(&p, "ringfront_connections_open") >= 4.0
    });
    o.release();
    assert_eq!(leader.read_response(false).expect("the leader's answer").text(), "slow");
    for (c, origin) in others.iter_mut() {
        let r = c.read_response(false).expect("an answer");
        assert_eq!(r.text(), *origin, "Origin: {origin} got another variant");
    }
    // The leader's values were answered from its fetch; the others each
    // fetched their own.
    assert_eq!(origin_requests(&o, "/herd"), 3);
}

/// A caching proxy in front of `o` as `common::rfc::proxy` makes it
/// (`default_ttl = "0s"`), with an admin listener.
fn proxy(o: &ScriptedOrigin) -> Proxy {
    let cfg = config(&[("o", o.addr)], "o", "\n[admin]\nlisten = \"127.0.0.1:0\"\n")
        .replace("cache = false\n", "cache = true\ndefault_ttl = \"0s\"\n");
    Proxy::start(&cfg)
}

/// A gauge from the proxy's metrics.
fn gauge(p: &Proxy, name: &str) -> f64 {
    let prefix = format!("{name} ");
    scrape(p.admin_addr())
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(-1.0)
}

/// The number of stored objects, from the proxy's metrics.
fn scrape_objects(p: &Proxy) -> u64 {
    gauge(p, "ringfront_cache_objects") as u64
}
