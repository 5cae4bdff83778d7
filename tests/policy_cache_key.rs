//! The cache key policy of a behavior (SPEC §2 `cache_query_string`,
//! `cache_key_headers`, `cache_key_cookies`), over sockets: what joins the
//! key splits the cache, what does not join it never does.
//!
//! The origin here echoes the request's `X-Device` and `Cookie` values and
//! its target in the body, so a hit with the wrong object shows in the
//! body, and it counts the requests it gets, so an object fetched twice
//! shows in the count.
mod common;
use common::scripted::{Reply, ScriptedOrigin};
use common::{admin_post, config, eventually, Client, Proxy, Response};

const HIT: Option<&str> = Some("Hit from ringfront");
const MISS: Option<&str> = Some("Miss from ringfront");

/// `/k/*` keys on the X-Device header and the `session` cookie, `/q/*` on
/// the query parameters `a`, `b` and `id` only.
const BEHAVIORS: &str = r#"
[admin]
listen = "127.0.0.1:0"

[[behavior]]
path = "/k/*"
target = "o"
cache = true
allowed_methods = ["GET", "HEAD", "POST"]
cache_key_headers = ["X-Device"]
cache_key_cookies = ["session"]

[[behavior]]
path = "/q/*"
target = "o"
cache = true
cache_query_string = ["b", "a", "id"]
"#;

/// Every value of request header `name` in `head`, trimmed, joined by "|"
/// ("-" when absent).
fn values(head: &str, name: &str) -> String {
    let v = common::request_values(head, name);
    if v.is_empty() {
        "-".into()
    } else {
        v.join("|")
    }
}

/// A 200 with the response lines `lines` and a body naming the request's
/// target, X-Device and Cookie values.
fn echo(head: &str, lines: &str) -> Vec<u8> {
    let target = head.split(' ').nth(1).unwrap_or("");
    let body = format!(
        "{target} device={} cookie={}",
        values(head, "x-device"),
        values(head, "cookie")
    );
    format!("HTTP/1.1 200 OK\r\n{lines}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// An origin answering GETs with a body [`echo`] makes, fresh for an hour,
/// and anything else with an uncacheable 200.
fn origin() -> ScriptedOrigin {
    ScriptedOrigin::start(|head| {
        if head.starts_with("GET ") {
            Reply::now(&echo(head, "Cache-Control: max-age=3600\r\n"))
        } else {
            Reply::now(b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 0\r\n\r\n")
        }
    })
}

fn proxy(o: &ScriptedOrigin) -> Proxy {
    Proxy::start(&config(&[("o", o.addr)], "o", BEHAVIORS))
}

/// `GET path` with the header lines `lines` (each ending in CRLF).
fn get(c: &mut Client, path: &str, lines: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{lines}\r\n").as_bytes());
    c.read_response(false).expect("response")
}

/// How many GETs the origin got.
fn fetches(o: &ScriptedOrigin) -> usize {
    o.request_lines().iter().filter(|l| l.starts_with("GET ")).count()
}

fn cached(r: &Response) -> (Option<&str>, String) {
    (r.header("x-cache"), r.text())
}

/// SPEC §2: an allow-list keeps its parameters "sorted" in the key: the
/// order they come in makes no other object, and parameters outside the
/// list (`utm_*`) are dropped from it. The origin is asked once.
#[test]
fn an_allow_listed_query_is_one_object_whatever_the_order_and_the_noise() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let first = get(&mut c, "/q/p?b=2&a=1", "");
    assert_eq!(first.header("x-cache"), MISS);
    for target in ["/q/p?a=1&b=2", "/q/p?utm_source=x&b=2&a=1", "/q/p?a=1&fbclid=y&b=2"] {
        let r = get(&mut c, target, "");
        assert_eq!(cached(&r), (HIT, first.text()), "{target}");
    }
    assert_eq!(get(&mut c, "/q/x?utm_source=x&id=1", "").header("x-cache"), MISS);
    assert_eq!(get(&mut c, "/q/x?id=1", "").header("x-cache"), HIT);
    // A listed parameter with another value is another object.
    assert_eq!(get(&mut c, "/q/x?id=2", "").header("x-cache"), MISS);
    assert_eq!(fetches(&o), 3);
}

/// SPEC §2 `cache_key_headers`: two viewers with different values of a key
/// header get different objects, each a hit afterwards; a header outside
/// the key splits nothing.
#[test]
fn a_key_header_splits_the_cache_and_another_header_does_not() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let (phone, desktop) = ("X-Device: phone\r\n", "X-Device: desktop\r\n");
    assert_eq!(
        cached(&get(&mut c, "/k/h", phone)),
        (MISS, "/k/h device=phone cookie=-".into())
    );
    assert_eq!(
        cached(&get(&mut c, "/k/h", desktop)),
        (MISS, "/k/h device=desktop cookie=-".into())
    );
    assert_eq!(
        cached(&get(&mut c, "/k/h", "")),
        (MISS, "/k/h device=- cookie=-".into())
    );
    for _ in 0..2 {
        let r = get(&mut c, "/k/h", &format!("{phone}X-Other: {}\r\n", fetches(&o)));
        assert_eq!(cached(&r), (HIT, "/k/h device=phone cookie=-".into()));
        let r = get(&mut c, "/k/h", desktop);
        assert_eq!(cached(&r), (HIT, "/k/h device=desktop cookie=-".into()));
        let r = get(&mut c, "/k/h", "X-Other: z\r\n");
        assert_eq!(cached(&r), (HIT, "/k/h device=- cookie=-".into()));
    }
    // Whitespace around a value is no part of it (RFC 9110 §5.5).
    let r = get(&mut c, "/k/h", "X-Device:   phone  \r\n");
    assert_eq!(cached(&r), (HIT, "/k/h device=phone cookie=-".into()));
    assert_eq!(fetches(&o), 3);
}

/// SPEC §2 `cache_key_cookies`: two viewers with different values of a key
/// cookie get different objects; a viewer without it a third.
#[test]
fn a_key_cookie_splits_the_cache() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let (a, b) = ("Cookie: session=a\r\n", "Cookie: session=b\r\n");
    assert_eq!(get(&mut c, "/k/c", a).text(), "/k/c device=- cookie=session=a");
    assert_eq!(get(&mut c, "/k/c", b).text(), "/k/c device=- cookie=session=b");
    assert_eq!(get(&mut c, "/k/c", "").text(), "/k/c device=- cookie=-");
    for _ in 0..2 {
        assert_eq!(
            cached(&get(&mut c, "/k/c", a)),
            (HIT, "/k/c device=- cookie=session=a".into())
        );
        assert_eq!(
            cached(&get(&mut c, "/k/c", b)),
            (HIT, "/k/c device=- cookie=session=b".into())
        );
        assert_eq!(cached(&get(&mut c, "/k/c", "")), (HIT, "/k/c device=- cookie=-".into()));
    }
    // Cookie names are case-sensitive (RFC 6265 §5.4): `Session` is not
    // the key cookie, so this viewer has none of it.
    let r = get(&mut c, "/k/c", "Cookie: Session=a\r\n");
    assert_eq!(cached(&r), (HIT, "/k/c device=- cookie=-".into()));
    assert_eq!(fetches(&o), 3);
}

/// SPEC §2: only the cookies the behavior names join the key; a tracking
/// or per-viewer cookie outside it never splits the cache (the origin is
/// asked once for all these viewers).
#[test]
fn a_cookie_outside_the_key_does_not_split_the_cache() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let first = get(&mut c, "/k/n", "Cookie: session=s; _ga=1\r\n");
    assert_eq!(first.header("x-cache"), MISS);
    for lines in [
        "Cookie: session=s; _ga=2\r\n",
        "Cookie: _ga=3;session=s;theme=dark\r\n",
        "Cookie: session=s\r\n",
        "Cookie: sessionid=x; session=s; xsession=y\r\n",
    ] {
        assert_eq!(cached(&get(&mut c, "/k/n", lines)), (HIT, first.text()), "{lines:?}");
    }
    assert_eq!(fetches(&o), 1);
}

/// RFC 6265 §5.4: a Cookie header is a list of `name=value` pairs; which
/// order they come in, and whether they come on one line or several (as
/// a proxy joining HTTP/2 cookie fields would send them, RFC 9113
/// §8.2.3), makes no other object.
#[test]
fn the_order_and_the_lines_of_cookies_do_not_matter() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let first = get(&mut c, "/k/o", "Cookie: a=1; session=x; b=2\r\n");
    assert_eq!(first.header("x-cache"), MISS);
    for lines in [
        "Cookie: session=x; a=1; b=2\r\n",
        "Cookie: b=2;  session=x ;a=1\r\n",
        "Cookie: a=1\r\nCookie: session=x\r\n",
        "X-Other: 1\r\nCookie: session=x\r\n",
    ] {
        assert_eq!(cached(&get(&mut c, "/k/o", lines)), (HIT, first.text()), "{lines:?}");
    }
    assert_eq!(fetches(&o), 1);
}

/// Key headers and cookies together: each combination of their values is
/// its own object.
#[test]
fn key_headers_and_cookies_split_together() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let combos = [
        "X-Device: phone\r\nCookie: session=a\r\n",
        "X-Device: phone\r\nCookie: session=b\r\n",
        "X-Device: tv\r\nCookie: session=a\r\n",
    ];
    for lines in combos {
        assert_eq!(get(&mut c, "/k/both", lines).header("x-cache"), MISS, "{lines:?}");
    }
    for lines in combos {
        let r = get(&mut c, "/k/both", lines);
        let device = lines.split_once(": ").unwrap().1.split("\r\n").next().unwrap();
        let session = lines.rsplit_once("session=").unwrap().1.trim_end();
        let body = format!("/k/both device={device} cookie=session={session}");
        assert_eq!(cached(&r), (HIT, body), "{lines:?}");
    }
    assert_eq!(fetches(&o), 3);
}

/// SPEC §6 `POST /invalidate`: a URL's objects go whatever the key headers
/// and cookies they were stored by, as an exact path and as a prefix.
#[test]
fn invalidating_a_url_removes_every_key_variant() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let viewers = [
        "X-Device: phone\r\n",
        "X-Device: desktop\r\nCookie: session=z\r\n",
        "Cookie: session=y\r\n",
    ];
    for (path, body) in [("/k/inv", "/k/inv\n"), ("/k/pre/x", "/k/pre/*\n")] {
        for lines in viewers {
            get(&mut c, path, lines);
            assert_eq!(get(&mut c, path, lines).header("x-cache"), HIT, "{path} {lines:?}");
        }
        assert_eq!(admin_post(&p, "/invalidate", body), "3\n", "{path}");
        for lines in viewers {
            assert_eq!(get(&mut c, path, lines).header("x-cache"), MISS, "{path} {lines:?}");
        }
    }
}

/// An exact `/invalidate` path names a URL as a viewer would request it:
/// under an allow-list its parameters in any order, and others among
/// them, remove the one object the behavior keeps for them.
#[test]
fn an_exact_invalidation_finds_the_object_its_query_is_keyed_as() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    get(&mut c, "/q/inv?a=1&b=2", "");
    assert_eq!(get(&mut c, "/q/inv?a=1&b=2", "").header("x-cache"), HIT);
    assert_eq!(admin_post(&p, "/invalidate", "/q/inv?b=2&utm_source=x&a=1\n"), "1\n");
    assert_eq!(get(&mut c, "/q/inv?a=1&b=2", "").header("x-cache"), MISS);
    // As written still works, and other parameter values stay.
    get(&mut c, "/q/inv?a=2&b=2", "");
    assert_eq!(admin_post(&p, "/invalidate", "/q/inv?a=1&b=2\n"), "1\n");
    assert_eq!(get(&mut c, "/q/inv?a=2&b=2", "").header("x-cache"), HIT);
}

/// RFC 9111 §4.4: a POST's non-error response invalidates every stored
/// response for its target URI, each key variant included.
#[test]
fn an_unsafe_request_invalidates_every_key_variant() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let viewers = ["X-Device: phone\r\n", "Cookie: session=q\r\n", ""];
    for lines in viewers {
        get(&mut c, "/k/post", lines);
        assert_eq!(get(&mut c, "/k/post", lines).header("x-cache"), HIT);
    }
    c.send(b"POST /k/post HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(c.read_response(false).expect("response").status, 200);
    for lines in viewers {
        assert_eq!(get(&mut c, "/k/post", lines).header("x-cache"), MISS, "{lines:?}");
    }
}

/// A response that varies on its own (Vary: Origin) on a behavior with key
/// headers is stored by both: its Vary's headers and the key's.
#[test]
fn an_origin_vary_and_the_key_headers_both_select() {
    let o = ScriptedOrigin::start(|head| {
        let body = format!("{} origin={}", values(head, "x-device"), values(head, "origin"));
        let reply = format!(
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\nVary: Origin\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Reply::now(reply.as_bytes())
    });
    let p = proxy(&o);
    let mut c = p.client();
    let combos = [
        ("X-Device: a\r\nOrigin: x\r\n", "a origin=x"),
        ("X-Device: a\r\nOrigin: y\r\n", "a origin=y"),
        ("X-Device: b\r\nOrigin: x\r\n", "b origin=x"),
    ];
    for (lines, body) in combos {
        assert_eq!(cached(&get(&mut c, "/k/vary", lines)), (MISS, body.into()));
    }
    for (lines, body) in combos {
        assert_eq!(cached(&get(&mut c, "/k/vary", lines)), (HIT, body.into()));
    }
}

/// A stale object revalidated with a 304 (RFC 9111 §4.3.4) stays the
/// object of its key's values: the other viewer's object is not touched,
/// and neither is replaced by one for every viewer.
#[test]
fn a_revalidated_object_keeps_its_key_values() {
    let o = ScriptedOrigin::start(|head| {
        if values(head, "if-none-match") != "-" {
            return Reply::now(b"HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=3600\r\n\r\n");
        }
        // Stale on arrival (Age 20 > max-age 10), kept by its
        // stale-if-error window.
        Reply::now(&echo(
            head,
            "Cache-Control: max-age=10, stale-if-error=600\r\nAge: 20\r\nETag: \"e\"\r\n",
        ))
    });
    let p = proxy(&o);
    let mut c = p.client();
    let (a, b) = ("X-Device: a\r\n", "X-Device: b\r\n");
    get(&mut c, "/k/reval", a);
    get(&mut c, "/k/reval", b);
    let r = get(&mut c, "/k/reval", a);
    assert_eq!(
        (r.header("x-cache"), r.text().as_str()),
        (Some("RefreshHit from ringfront"), "/k/reval device=a cookie=-")
    );
    assert_eq!(
        cached(&get(&mut c, "/k/reval", a)),
        (HIT, "/k/reval device=a cookie=-".into())
    );
    let r = get(&mut c, "/k/reval", b);
    assert_eq!(
        (r.header("x-cache"), r.text().as_str()),
        (Some("RefreshHit from ringfront"), "/k/reval device=b cookie=-")
    );
}

/// A background refresh (stale-while-revalidate) that gets a new
/// representation stores it under the key values of the request it was
/// made for: the other viewer still has its own object.
#[test]
fn a_background_refresh_stores_under_the_key_values() {
    let o = ScriptedOrigin::start(|head| {
        if values(head, "if-none-match") != "-" {
            // A new representation, fresh for an hour.
            return Reply::now(&echo(head, "Cache-Control: max-age=3600\r\nETag: \"new\"\r\n"));
        }
        Reply::now(&echo(
            head,
            "Cache-Control: max-age=10, stale-while-revalidate=600\r\nAge: 20\r\nETag: \"old\"\r\n",
        ))
    });
    let p = proxy(&o);
    let mut c = p.client();
    let (a, b) = ("X-Device: a\r\n", "X-Device: b\r\n");
    get(&mut c, "/k/swr", a);
    get(&mut c, "/k/swr", b);
    assert_eq!(get(&mut c, "/k/swr", a).header("x-cache"), HIT, "stale, served");
    let fresh = |r: &Response| r.header("cache-status").is_some_and(|v| !v.contains("ttl=-"));
    eventually("a's object refreshed", || {
        let r = get(&mut p.client(), "/k/swr", a);
        r.text() == "/k/swr device=a cookie=-" && fresh(&r)
    });
    let r = get(&mut c, "/k/swr", b);
    assert_eq!(cached(&r), (HIT, "/k/swr device=b cookie=-".into()));
    assert!(!fresh(&r), "b's object is its own, still stale");
}

/// Viewers of other key values are other objects from the first request
/// on: one viewer's fetch of a cold URL does not hold up another's (they
/// do not collapse on the URL).
#[test]
fn viewers_of_other_key_values_do_not_wait_for_each_other() {
    let o = ScriptedOrigin::start(|head| {
        let reply = echo(head, "Cache-Control: max-age=3600\r\n");
        if !head.contains("X-Device: slow") {
            return Reply::now(&reply);
        }
        // The head and the body's first byte now, the rest when released.
        let split = reply.len() - 1;
        Reply {
            now: reply[..split].to_vec(),
            later: Some(reply[split..].to_vec()),
            ..Default::default()
        }
    });
    let p = proxy(&o);
    let mut slow = p.client();
    slow.send(b"GET /k/cold HTTP/1.1\r\nHost: test\r\nX-Device: slow\r\n\r\n");
    eventually("the slow fetch reached the origin", || fetches(&o) == 1);
    let r = get(&mut p.client(), "/k/cold", "X-Device: fast\r\n");
    assert_eq!(cached(&r), (MISS, "/k/cold device=fast cookie=-".into()));
    o.release();
    let r = slow.read_response(false).expect("response");
    assert_eq!(cached(&r), (MISS, "/k/cold device=slow cookie=-".into()));
    let r = get(&mut p.client(), "/k/cold", "X-Device: slow\r\n");
    assert_eq!(cached(&r), (HIT, "/k/cold device=slow cookie=-".into()));
}

/// An error page (`[[error_response]]`, SPEC §4) answered for one viewer's
/// key values is stored for those values only.
#[test]
fn an_error_page_is_stored_for_its_key_values() {
    let o = ScriptedOrigin::start(|head| {
        if head.contains("X-Device: gone") {
            return Reply::now(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
        Reply::now(&echo(head, "Cache-Control: max-age=3600\r\n"))
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("404.html"), "gone\n").unwrap();
    let pages = "\n[[error_response]]\nstatus = 404\nfile = \"404.html\"\nmin_ttl = \"30s\"\n";
    let p = Proxy::start_in(&config(&[("o", o.addr)], "o", &format!("{BEHAVIORS}{pages}")), dir);
    let mut c = p.client();
    let (gone, here) = ("X-Device: gone\r\n", "X-Device: here\r\n");
    assert_eq!(get(&mut c, "/k/err", gone).text(), "gone\n");
    assert_eq!(cached(&get(&mut c, "/k/err", gone)), (HIT, "gone\n".into()));
    assert_eq!(
        cached(&get(&mut c, "/k/err", here)),
        (MISS, "/k/err device=here cookie=-".into())
    );
    assert_eq!(
        cached(&get(&mut c, "/k/err", here)),
        (HIT, "/k/err device=here cookie=-".into())
    );
    assert_eq!(cached(&get(&mut c, "/k/err", gone)), (HIT, "gone\n".into()));
    assert_eq!(fetches(&o), 2);
}

/// An origin decodes a parameter's name before it reads it (RFC 3986
/// §2.1, §2.3: `i%64` is `id`), and old Rack and Python split parameters
/// at `;` too: a parameter the origin reads as an allow-listed one joins
/// the key, so `?id=1&i%64=666` (which the origin may answer as id 666)
/// is not the viewer's `?id=1`, and neither is `?x=1;id=666` a URL
/// without `id`.
#[test]
fn a_parameter_the_origin_reads_as_listed_joins_the_key() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    assert_eq!(get(&mut c, "/q/enc?id=1", "").header("x-cache"), MISS);
    assert_eq!(get(&mut c, "/q/enc?id=1", "").header("x-cache"), HIT);
    let r = get(&mut c, "/q/enc?id=1&i%64=666", "");
    assert_eq!(cached(&r), (MISS, "/q/enc?id=1&i%64=666 device=- cookie=-".into()));
    assert_eq!(get(&mut c, "/q/enc?id=1&utm=x&i%64=666", "").header("x-cache"), HIT);
    assert_eq!(get(&mut c, "/q/enc?id=1", "").header("x-cache"), HIT);
    assert_eq!(get(&mut c, "/q/semi", "").header("x-cache"), MISS);
    let r = get(&mut c, "/q/semi?x=1;id=666", "");
    assert_eq!(cached(&r), (MISS, "/q/semi?x=1;id=666 device=- cookie=-".into()));
    assert_eq!(get(&mut c, "/q/semi?utm=2", "").header("x-cache"), HIT);
    assert_eq!(fetches(&o), 4);
}

/// Keying reads every parameter once per listed name, and every cookie
/// pair once per key cookie, under the cache shard's lock: a request with
/// more than 256 query parameters (on an allow-list) or 256 cookie pairs
/// (empty ones counted, on key cookies) is not looked up at all. It goes
/// to the origin as uncacheable (never a hit, never stored), so `?&&&…`
/// or `Cookie: ;;;…` cost a hit no more than a normal request.
#[test]
fn requests_too_long_to_key_cheaply_pass_to_the_origin() {
    let o = origin();
    let p = proxy(&o);
    let mut c = p.client();
    let query = |n: usize| format!("/q/many?id=1{}", "&".repeat(n - 1));
    for _ in 0..2 {
        assert_eq!(get(&mut c, &query(257), "").header("x-cache"), MISS);
    }
    assert_eq!(fetches(&o), 2);
    assert_eq!(get(&mut c, &query(256), "").header("x-cache"), MISS);
    assert_eq!(get(&mut c, &query(256), "").header("x-cache"), HIT);
    let cookie = |n: usize| format!("Cookie: session=a{}\r\n", ";".repeat(n - 1));
    for _ in 0..2 {
        let r = get(&mut c, "/k/many", &cookie(257));
        assert_eq!(r.header("x-cache"), MISS);
        assert!(!r.header("cache-status").unwrap_or("").contains("stored"), "{r:?}");
    }
    let split = format!("{}Cookie: ;\r\n", cookie(256));
    assert_eq!(
        get(&mut c, "/k/many", &split).header("x-cache"),
        MISS,
        "lines are one list"
    );
    assert_eq!(fetches(&o), 6);
    assert_eq!(get(&mut c, "/k/many", &cookie(256)).header("x-cache"), MISS);
    assert_eq!(get(&mut c, "/k/many", &cookie(256)).header("x-cache"), HIT);
    // What the behavior does not key on is not counted.
    let many = format!("/k/all?{}", "&".repeat(300));
    assert_eq!(get(&mut c, &many, "").header("x-cache"), MISS);
    assert_eq!(get(&mut c, &many, "").header("x-cache"), HIT, "the whole query keys");
    assert_eq!(get(&mut c, "/q/c", &cookie(300)).header("x-cache"), MISS);
    assert_eq!(
        get(&mut c, "/q/c", &cookie(300)).header("x-cache"),
        HIT,
        "no key cookies"
    );
}

/// `/r/*` caching, keyed on `key` (TOML lines) and marked `x-config: n`.
fn reloadable(o: &ScriptedOrigin, n: u32, key: &str) -> String {
    let behavior = format!(
        "[[behavior]]\npath = \"/r/*\"\ntarget = \"o\"\ncache = true\n{key}\n\
         viewer_response = {{ set = {{ \"x-config\" = \"{n}\" }} }}\n"
    );
    config(&[("o", o.addr)], "o", &behavior)
}

/// A key header or cookie added by a reload (SIGHUP) takes effect for a
/// URL whose responses were stored as variants of other names (here its
/// own `Vary: Origin`): those variants were not selected by the new key
/// names, so the first request after the reload goes to the origin and
/// its response, stored by every name, replaces them.
#[test]
fn key_names_added_by_a_reload_apply_to_variants_stored_before() {
    let o = ScriptedOrigin::start(|head| Reply::now(&echo(head, "Cache-Control: max-age=3600\r\nVary: Origin\r\n")));
    let p = Proxy::start(&reloadable(&o, 1, ""));
    let mut c = p.client();
    let (a, b) = ("Origin: x\r\nX-Device: a\r\n", "Origin: x\r\nX-Device: b\r\n");
    assert_eq!(get(&mut c, "/r/v", a).header("x-cache"), MISS);
    assert_eq!(cached(&get(&mut c, "/r/v", b)), (HIT, "/r/v device=a cookie=-".into()));
    for (n, key, other, body) in [
        (2, "cache_key_headers = [\"x-device\"]", b, "/r/v device=b cookie=-"),
        (
            3,
            "cache_key_headers = [\"x-device\"]\ncache_key_cookies = [\"s\"]",
            "Origin: x\r\nX-Device: b\r\nCookie: s=2\r\n",
            "/r/v device=b cookie=s=2",
        ),
    ] {
        std::fs::write(&p.config_path, reloadable(&o, n, key)).unwrap();
        p.hup();
        let marked = n.to_string();
        eventually("the reload applies", || {
            get(&mut c, "/r/probe", "").header("x-config") == Some(marked.as_str())
        });
        assert_eq!(cached(&get(&mut c, "/r/v", other)), (MISS, body.into()), "{key}");
        assert_eq!(cached(&get(&mut c, "/r/v", other)), (HIT, body.into()), "{key}");
    }
}
