//! RFC 9213 (Targeted HTTP Cache Control), over sockets: ringfront is a CDN
//! cache, so a valid `CDN-Cache-Control` decides its own caching in place
//! of `Cache-Control` and `Expires`, and is passed on to the viewer as the
//! origin sent it (SPEC §4).
mod common;
use common::rfc::{date_ago, date_in, origin, origin_requests, proxy, ttl, twice, values};

/// §2.1: the cache "MUST select the first (in target-list order) field with
/// a valid, non-empty value and use its value to determine the caching
/// policy for the response". With `default_ttl = "0s"`, only
/// CDN-Cache-Control makes these fresh.
#[test]
fn cdn_max_age_alone_makes_a_response_fresh() {
    let o = origin(&[
        ("/cdn", "CDN-Cache-Control: max-age=3600\r\n".into()),
        ("/cdn-ext", "CDN-Cache-Control: foobar, max-age=3600\r\n".into()),
        ("/cdn-max", "CDN-Cache-Control: max-age=2147483648\r\n".into()),
        ("/cdn-s", "CDN-Cache-Control: s-maxage=3600, max-age=1\r\n".into()),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    for path in ["/cdn", "/cdn-ext", "/cdn-max", "/cdn-s"] {
        let (_, second, hit) = twice(&mut c, &o, path);
        assert!(hit, "{path}");
        assert!(
            ttl(&second).unwrap() > 3000,
            "{path}: {:?}",
            second.header("cache-status")
        );
    }
}

/// §2.1: "... and it MUST ignore the Cache-Control and Expires header fields
/// in that response". A longer Cache-Control loses to a shorter
/// CDN-Cache-Control, a shorter one to a longer; Expires, past or future,
/// counts for nothing.
#[test]
fn cdn_cache_control_overrides_cache_control_and_expires() {
    let o = origin(&[
        (
            "/short-cc",
            "Cache-Control: max-age=60\r\nCDN-Cache-Control: max-age=3600\r\n".into(),
        ),
        // Aged 100 s: fresh under Cache-Control, stale under CDN-Cache-Control.
        (
            "/short-cdn",
            "Cache-Control: max-age=3600\r\nCDN-Cache-Control: max-age=60\r\nAge: 100\r\n".into(),
        ),
        (
            "/past-expires",
            format!(
                "CDN-Cache-Control: max-age=3600\r\nDate: {}\r\nExpires: {}\r\n",
                date_ago(0),
                date_ago(10_000)
            ),
        ),
        (
            "/invalid-expires",
            "CDN-Cache-Control: max-age=3600\r\nExpires: 0\r\n".into(),
        ),
        (
            "/zero-future-expires",
            format!(
                "CDN-Cache-Control: max-age=0\r\nDate: {}\r\nExpires: {}\r\n",
                date_ago(0),
                date_in(10_000)
            ),
        ),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    for (path, fresh) in [
        ("/short-cc", true),
        ("/short-cdn", false),
        ("/past-expires", true),
        ("/invalid-expires", true),
        ("/zero-future-expires", false),
    ] {
        let (_, second, hit) = twice(&mut c, &o, path);
        assert_eq!(hit, fresh, "{path}: {:?}", second.header("cache-status"));
        if hit {
            assert!(
                ttl(&second).unwrap() > 3000,
                "{path}: {:?}",
                second.header("cache-status")
            );
        }
    }
}

/// §2.1: "Caches that use a targeted field MUST implement the semantics of
/// the following cache directives: max-age, must-revalidate, no-store,
/// no-cache, private". Its no-store, no-cache and private keep a response
/// out of the cache whatever Cache-Control and Expires say; and a
/// Cache-Control no-store is not ringfront's to obey when
/// CDN-Cache-Control allows storing.
#[test]
fn cdn_no_store_private_no_cache_win_over_cache_control() {
    let fresh_cc = format!("Cache-Control: max-age=10000\r\nExpires: {}\r\n", date_in(10_000));
    let o = origin(&[
        ("/no-store", format!("{fresh_cc}CDN-Cache-Control: no-store\r\n")),
        ("/private", format!("{fresh_cc}CDN-Cache-Control: private\r\n")),
        ("/no-cache", format!("{fresh_cc}CDN-Cache-Control: no-cache\r\n")),
        (
            "/cc-no-store",
            "Cache-Control: no-store\r\nCDN-Cache-Control: max-age=10000\r\n".into(),
        ),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    for (path, fresh) in [
        ("/no-store", false),
        ("/private", false),
        ("/no-cache", false),
        ("/cc-no-store", true),
    ] {
        let (_, _, hit) = twice(&mut c, &o, path);
        assert_eq!(hit, fresh, "{path}");
    }
}

/// §2.2: "If a targeted field in a given response is empty, or a parsing
/// error is encountered, that field MUST be ignored by the cache (i.e., it
/// behaves as if the field were not present, likely falling back to other
/// cache-control mechanisms present)." Each of these is not a valid
/// Structured Fields Dictionary (RFC 8941 §4.2.2), or gives max-age a value
/// that is not an Integer (§2.1: "the max-age directive ... has an integer
/// value"): ignored whole, so Cache-Control's no-store applies.
#[test]
fn an_invalid_cdn_cache_control_is_ignored_as_a_whole() {
    let invalid = [
        "max-age=10000, &&&&&",
        "max-age=\"10000\"",
        "max-age =10000",
        "max-age= 10000",
        "MAX-AGE=10000",
        "max-age=10000,",
        "max-age=1.5",
        "max-age=-1",
        "max-age=10000, no-store=\"unterminated",
        "",
    ];
    let mut table: Vec<(String, String)> = invalid
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                format!("/invalid{i}"),
                format!("Cache-Control: no-store\r\nCDN-Cache-Control: {v}\r\n"),
            )
        })
        .collect();
    // The valid counterpart is stored: the difference is the parse.
    table.push((
        "/valid".into(),
        "Cache-Control: no-store\r\nCDN-Cache-Control: max-age=10000;p=1, x=?1, y=(a b)\r\n".into(),
    ));
    let table: Vec<(&str, String)> = table.iter().map(|(p, l)| (p.as_str(), l.clone())).collect();
    let o = origin(&table);
    let p = proxy(&o);
    let mut c = p.client();
    for (path, lines) in &table {
        let (_, _, hit) = twice(&mut c, &o, path);
        assert_eq!(hit, *path == "/valid", "{path}: {lines:?}");
    }
}

/// RFC 9110 §5.3: "A recipient MAY combine multiple field lines within a
/// field section that have the same field name into one field line ... by
/// appending each subsequent field line value to the initial field line
/// value in order, separated by a comma"; RFC 8941 §4.2 parses the combined
/// value. A no-store on a second line counts; so does a max-age.
#[test]
fn repeated_cdn_cache_control_lines_are_one_list() {
    let o = origin(&[
        (
            "/second-no-store",
            "CDN-Cache-Control: max-age=3600\r\nCDN-Cache-Control: no-store\r\n".into(),
        ),
        (
            "/second-max-age",
            "Cache-Control: no-store\r\nCDN-Cache-Control: public\r\nCDN-Cache-Control: max-age=3600\r\n".into(),
        ),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    assert!(!twice(&mut c, &o, "/second-no-store").2);
    assert!(twice(&mut c, &o, "/second-max-age").2);
}

/// RFC 9111 §4.2.3 applies to a lifetime from CDN-Cache-Control too: an Age
/// beyond its max-age makes the response stale on arrival, though the
/// Cache-Control it overrides would have left it fresh.
#[test]
fn an_age_beyond_cdn_max_age_is_never_a_hit() {
    let o = origin(&[(
        "/aged",
        "Cache-Control: max-age=10000\r\nCDN-Cache-Control: max-age=3600\r\nAge: 7200\r\n".into(),
    )]);
    let p = proxy(&o);
    assert!(!twice(&mut p.client(), &o, "/aged").2);
    assert_eq!(origin_requests(&o, "/aged"), 2);
}

/// §3: "CDN caches that use CDN-Cache-Control will typically forward this
/// header so that downstream CDN caches can use it as well; doing so is
/// encouraged"; SPEC §4: forwarded unchanged, on a miss, a hit, and a
/// response that is not stored.
#[test]
fn cdn_cache_control_reaches_the_viewer_unchanged() {
    let o = origin(&[
        (
            "/fwd",
            "Cache-Control: max-age=10000\r\nCDN-Cache-Control: foo, max-age=60\r\nCDN-Cache-Control: bar\r\n".into(),
        ),
        ("/pass", "CDN-Cache-Control: no-store, Foo\r\n".into()),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    let (first, second, hit) = twice(&mut c, &o, "/fwd");
    assert!(hit);
    for r in [&first, &second] {
        assert_eq!(
            values(r, "cdn-cache-control"),
            ["foo, max-age=60", "bar"],
            "{:?}",
            r.headers
        );
    }
    let r = c.get("/pass");
    assert_eq!(values(&r, "cdn-cache-control"), ["no-store, Foo"]);
}
