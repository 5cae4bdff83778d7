//! The cache over sockets: hits, HEAD from GET, what is never stored, expiry.
mod common;
use common::*;

fn cached(o: &SampleOrigin) -> Proxy {
    cached_at(o.addr())
}

/// A caching proxy in front of the origin at `addr`.
fn cached_at(addr: std::net::SocketAddr) -> Proxy {
    let cfg = config(&[("o", addr)], "o", "").replace("cache = false\n", "cache = true\n");
    Proxy::start(&cfg)
}

#[test]
fn second_get_is_a_hit_and_the_origin_is_asked_once() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    let first = c.get("/page?size=5000&cc=max-age=60");
    assert_eq!(first.header("x-cache"), Some("Miss from ringfront"));
    assert_eq!(first.header("cache-status"), Some("ringfront; fwd=miss; stored"));
    let second = c.get("/page?size=5000&cc=max-age=60");
    assert_eq!(second.status, 200);
    assert_eq!(second.header("x-cache"), Some("Hit from ringfront"));
    assert!(second
        .header("cache-status")
        .unwrap()
        .starts_with("ringfront; hit; ttl="));
    assert!(second.has_header("age"));
    assert_eq!(second.body, first.body);
    assert_eq!(second.header("x-request-count"), first.header("x-request-count"));
    assert_eq!(o.requests(), 1);
    // Another connection sees the same object.
    assert_eq!(
        p.client().get("/page?size=5000&cc=max-age=60").header("x-cache"),
        Some("Hit from ringfront")
    );
    assert_eq!(o.requests(), 1);
}

#[test]
fn head_is_answered_from_a_cached_get() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    c.get("/h?size=300");
    c.send(b"HEAD /h?size=300 HTTP/1.1\r\nHost: test\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.header("x-cache"), Some("Hit from ringfront"));
    assert_eq!(r.header("content-length"), Some("300"));
    // The connection stays in sync: no body followed the HEAD answer.
    assert_eq!(c.get("/h?size=300").body.len(), 300);
    assert_eq!(o.requests(), 1);
}

#[test]
fn what_is_never_cached() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    for q in [
        "cc=no-store",
        "cc=private",
        "cc=no-cache",
        "cookie=1",
        // Vary: User-Agent is stored as variants (tests/rfc9111_vary.rs); `*` never.
        "vary=*",
        "status=302",
    ] {
        let url = format!("/n?{q}");
        c.get(&url);
        let r = c.get(&url);
        assert_ne!(r.header("x-cache"), Some("Hit from ringfront"), "{q} was cached");
    }
    // Authorization without public/s-maxage.
    for _ in 0..2 {
        c.send(b"GET /auth HTTP/1.1\r\nHost: test\r\nAuthorization: Basic eDp5\r\n\r\n");
        assert_eq!(
            c.read_response(false).unwrap().header("x-cache"),
            Some("Miss from ringfront")
        );
    }
    // Vary: Accept-Encoding is cached, per normalised encoding.
    c.send(b"GET /v?vary=Accept-Encoding HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip, br\r\n\r\n");
    c.read_response(false).unwrap();
    c.send(b"GET /v?vary=Accept-Encoding HTTP/1.1\r\nHost: test\r\nAccept-Encoding: br;q=1, deflate\r\n\r\n");
    assert_eq!(
        c.read_response(false).unwrap().header("x-cache"),
        Some("Hit from ringfront")
    );
    c.send(b"GET /v?vary=Accept-Encoding HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n");
    assert_eq!(
        c.read_response(false).unwrap().header("x-cache"),
        Some("Miss from ringfront")
    );
}

#[test]
fn max_age_one_expires_after_a_second() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    c.get("/e?cc=max-age=1");
    assert_eq!(c.get("/e?cc=max-age=1").header("x-cache"), Some("Hit from ringfront"));
    let t0 = std::time::Instant::now();
    eventually("the object expires", || {
        t0.elapsed() > std::time::Duration::from_millis(1100)
            && c.get("/e?cc=max-age=1").header("x-cache") == Some("Miss from ringfront")
    });
    assert!(o.requests() >= 2);
}

#[test]
fn a_cut_body_is_never_cached() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    c.send(b"GET /cut?size=100000&fail=close_mid_body HTTP/1.1\r\nHost: test\r\n\r\n");
    let _ = read_until_close(&mut c.s);
    let mut c = p.client();
    c.send(b"GET /cut?size=100000&fail=close_mid_body HTTP/1.1\r\nHost: test\r\n\r\n");
    let got = read_until_close(&mut c.s);
    // A storable response is recorded whole before it is answered, so a
    // cut one is a 502 (nothing had gone to the viewer), and not stored.
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 502 "), "{got}");
    assert!(!got.contains("Hit from"), "{got}");
    assert_eq!(o.requests(), 2);
}

#[test]
fn capacity_is_respected_under_a_flood_of_objects() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(
        &[("o", o.addr())],
        "o",
        "\n[cache]\ncapacity = \"2MiB\"\nmax_object_size = \"64KiB\"\n",
    )
    .replace("cache = false\n", "cache = true\n");
    let p = Proxy::start(&cfg);
    let mut c = p.client();
    for i in 0..600 {
        assert_eq!(c.get(&format!("/f/{i}?size=20000")).status, 200);
    }
    // 600 x 20 KB = 12 MB through a 2 MiB cache: RSS stays bounded.
    let rss = p.status_kib("VmRSS");
    assert!(rss < 40 * 1024, "RSS {rss} KiB");
    // Recent objects are hits, the first ones were evicted.
    assert_eq!(c.get("/f/599?size=20000").header("x-cache"), Some("Hit from ringfront"));
    assert_eq!(c.get("/f/0?size=20000").header("x-cache"), Some("Miss from ringfront"));
}

#[test]
fn conditional_and_range_requests_from_cache() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    let full = c.get("/r?size=1000&etag=abc");
    assert_eq!(full.header("etag"), Some("\"abc\""));
    c.send(b"GET /r?size=1000&etag=abc HTTP/1.1\r\nHost: test\r\nIf-None-Match: W/\"abc\"\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 304);
    assert_eq!(r.header("x-cache"), Some("Hit from ringfront"));
    assert!(r.body.is_empty());
    c.send(b"GET /r?size=1000&etag=abc HTTP/1.1\r\nHost: test\r\nRange: bytes=100-199\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1000"));
    assert_eq!(r.body, &full.body[100..200]);
    c.send(b"GET /r?size=1000&etag=abc HTTP/1.1\r\nHost: test\r\nRange: bytes=5000-\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
    c.send(b"GET /r?size=1000&etag=abc HTTP/1.1\r\nHost: test\r\nRange: bytes=0-1,5-6\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body.len(), 1000);
    assert_eq!(o.requests(), 1);
}

fn herd(p: &Proxy, path: &'static str, n: usize) -> Vec<Response> {
    let addr = p.addr;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                b.wait();
                c.get(path)
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn a_herd_of_misses_makes_one_origin_request() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "")
        .replace("cache = false\n", "cache = true\n")
        .replace("workers = 1", "workers = 2");
    let p = Proxy::start(&cfg);
    let rs = herd(&p, "/herd?size=2000&delay=400", 100);
    assert!(rs.iter().all(|r| r.status == 200 && r.body.len() == 2000));
    assert_eq!(
        o.requests(),
        1,
        "100 concurrent misses made {} origin requests",
        o.requests()
    );
    assert_eq!(
        rs.iter()
            .filter(|r| r.header("x-cache") == Some("Miss from ringfront"))
            .count(),
        1
    );
}

#[test]
fn a_herd_shares_one_failover() {
    let pr = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let se = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let group = "\n[[origin_group]]\nid = \"site\"\nprimary = \"primary\"\nsecondary = \"secondary\"\n";
    let cfg = config(&[("primary", pr.addr()), ("secondary", se.addr())], "site", group)
        .replace("cache = false\n", "cache = true\n")
        .replace("workers = 1", "workers = 2");
    let p = Proxy::start(&cfg);
    let rs = herd(&p, "/fo?primary.status=503&delay=400", 100);
    assert!(rs
        .iter()
        .all(|r| r.status == 200 && r.header("x-origin") == Some("secondary")));
    assert_eq!((pr.requests(), se.requests()), (1, 1));
}

#[test]
fn followers_of_an_unstorable_response_fetch_on_their_own() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let rs = herd(&p, "/private?cc=private&delay=300", 10);
    assert!(rs.iter().all(|r| r.status == 200));
    assert_eq!(o.requests(), 10);
    // The key is now marked pass: later misses go straight to the origin.
    let t0 = std::time::Instant::now();
    let rs = herd(&p, "/private?cc=private&delay=300", 10);
    assert!(rs.iter().all(|r| r.status == 200));
    assert!(
        t0.elapsed() < std::time::Duration::from_millis(2500),
        "misses queued behind each other"
    );
}

#[test]
fn stale_objects_are_revalidated_and_refreshed_by_304() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    let url = "/rv?size=500&etag=v1&cc=max-age=1";
    let first = c.get(url);
    assert_eq!(first.header("x-cache"), Some("Miss from ringfront"));
    let t0 = std::time::Instant::now();
    eventually("the object goes stale", || {
        t0.elapsed() > std::time::Duration::from_millis(1100)
    });
    let r = c.get(url);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-cache"),
        Some("RefreshHit from ringfront"),
        "{:?}",
        r.headers
    );
    assert!(r.header("cache-status").unwrap().contains("fwd=stale; fwd-status=304"));
    assert_eq!(r.body, first.body);
    // The origin saw a conditional request.
    let heads = o.control().heads();
    assert!(heads[1].contains("If-None-Match: \"v1\"\r\n"), "{}", heads[1]);
    // Fresh again: a plain hit.
    assert_eq!(c.get(url).header("x-cache"), Some("Hit from ringfront"));
    assert_eq!(o.requests(), 2);
}

#[test]
fn stale_if_error_serves_the_stale_object_when_the_origins_fail() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    let url = "/sie?size=300&cc=max-age=1,%20stale-if-error=60";
    let first = c.get(url);
    let t0 = std::time::Instant::now();
    eventually("the object goes stale", || {
        t0.elapsed() > std::time::Duration::from_millis(1100)
    });
    o.set_mode(Mode::Refuse);
    let r = c.get(url);
    assert_eq!(r.status, 200, "{:?}", r.headers);
    assert_eq!(r.body, first.body);
    assert!(
        r.header("cache-status").unwrap().contains("fwd=stale; fwd-status=502"),
        "{:?}",
        r.headers
    );
    // Without stale-if-error the failure shows.
    o.set_mode(Mode::Normal);
    c.get("/nosie?cc=max-age=1");
    let t1 = std::time::Instant::now();
    eventually("stale", || t1.elapsed() > std::time::Duration::from_millis(1100));
    o.set_mode(Mode::Refuse);
    assert_eq!(p.client().get("/nosie?cc=max-age=1").status, 502);
}

#[test]
fn min_ttl_overrides_no_cache() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let cfg = config(&[("o", o.addr())], "o", "").replace("cache = false\n", "cache = true\nmin_ttl = \"30s\"\n");
    let p = Proxy::start(&cfg);
    let mut c = p.client();
    c.get("/m?cc=no-cache");
    let r = c.get("/m?cc=no-cache");
    assert_eq!(r.header("x-cache"), Some("Hit from ringfront"));
    assert!(
        r.header("cache-status").unwrap().contains("ttl=3"),
        "{:?}",
        r.header("cache-status")
    );
    assert_eq!(o.requests(), 1);
}

#[test]
fn stale_if_error_with_both_origins_of_a_group_down() {
    let pr = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let se = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let group = "\n[[origin_group]]\nid = \"site\"\nprimary = \"primary\"\nsecondary = \"secondary\"\n";
    let cfg = config(&[("primary", pr.addr()), ("secondary", se.addr())], "site", group)
        .replace("cache = false\n", "cache = true\n");
    let p = Proxy::start(&cfg);
    let url = "/g?size=100&cc=max-age=1,%20stale-if-error=60";
    let first = p.client().get(url);
    let t0 = std::time::Instant::now();
    eventually("stale", || t0.elapsed() > std::time::Duration::from_millis(1100));
    pr.set_mode(Mode::Refuse);
    se.set_mode(Mode::Refuse);
    let r = p.client().get(url);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, first.body);
    assert!(r.header("cache-status").unwrap().contains("fwd=stale; fwd-status=502"));
}

#[test]
fn stale_while_revalidate_serves_stale_and_refreshes_once_in_the_background() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let url = "/swr?size=200&etag=s1&cc=max-age=1,%20stale-while-revalidate=30";
    let first = p.client().get(url);
    let t0 = std::time::Instant::now();
    eventually("stale", || t0.elapsed() > std::time::Duration::from_millis(1100));
    // A burst of stale requests: all answered from the stale object at once.
    let addr = p.addr;
    let burst = std::time::Instant::now();
    let hs: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || Client::connect(addr).get(url)))
        .collect();
    for h in hs {
        let r = h.join().unwrap();
        assert_eq!(r.header("x-cache"), Some("Hit from ringfront"));
        assert_eq!(r.body, first.body);
    }
    let burst = burst.elapsed();
    // One background revalidation reached the origin (the 304 keeps
    // max-age=1, so a burst slower than a second may legitimately refresh
    // again: only then is a second refresh allowed).
    eventually("background refresh", || o.requests() >= 2);
    assert!(o.control().heads()[1].contains("If-None-Match: \"s1\"\r\n"));
    if burst < std::time::Duration::from_millis(800) {
        assert_eq!(o.requests(), 2, "the burst made more than one refresh");
    }
    eventually("fresh again", || {
        let r = p.client().get(url);
        r.header("cache-status").is_some_and(|v| !v.contains("ttl=-"))
    });
}

#[test]
fn errors_are_stored_only_with_explicit_freshness() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let p = cached(&o);
    let mut c = p.client();
    // A 405 without freshness (say, to X-HTTP-Method-Override: DELETE) is
    // not stored for default_ttl: the next viewer reaches the origin.
    for _ in 0..2 {
        let r = c.get("/poison?status=405");
        assert_eq!(r.status, 405);
        assert_eq!(r.header("x-cache"), Some("Error from ringfront"), "{:?}", r.headers);
    }
    assert_eq!(o.requests(), 2, "the 405 was served from cache");
    // An error with explicit freshness is stored.
    c.get("/gone?status=404&cc=max-age=60");
    let r = c.get("/gone?status=404&cc=max-age=60");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-cache"), Some("Hit from ringfront"), "{:?}", r.headers);
    assert_eq!(o.requests(), 3);
    // A success without freshness still gets default_ttl (one day).
    c.get("/plain");
    let r = c.get("/plain");
    assert_eq!(r.header("x-cache"), Some("Hit from ringfront"));
    let cs = r.header("cache-status").unwrap_or("");
    let ttl: u64 = cs.rsplit("ttl=").next().and_then(|t| t.parse().ok()).unwrap_or(0);
    assert!((86_000..=86_400).contains(&ttl), "{cs}");
    assert_eq!(o.requests(), 4);
}

/// The origin receives the Accept-Encoding the cache key holds (SPEC §4):
/// `br`, `gzip` or `identity`, never the viewer's own list, so a stored
/// variant is always in the coding its key names.
#[test]
fn the_origin_gets_the_normalised_accept_encoding_the_key_holds() {
    use common::scripted::{Reply, ScriptedOrigin};
    let o = ScriptedOrigin::start(|head| {
        let ae = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("accept-encoding:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| "none".into());
        Reply::now(
            format!(
                "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nVary: Accept-Encoding\r\nContent-Length: {}\r\n\r\n{ae}",
                ae.len()
            )
            .as_bytes(),
        )
    });
    let p = cached_at(o.addr);
    let mut c = p.client();
    let mut get = |path: &str, ae: Option<&str>| {
        let extra = ae.map(|v| format!("Accept-Encoding: {v}\r\n")).unwrap_or_default();
        c.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n").as_bytes());
        c.read_response(false).unwrap().text()
    };
    assert_eq!(get("/a", Some("gzip, deflate, br, zstd")), "br");
    assert_eq!(get("/a", Some("gzip, deflate, br")), "br", "served from the br variant");
    assert_eq!(get("/b", Some("deflate")), "identity");
    assert_eq!(get("/b", None), "identity", "served from the identity variant");
    assert_eq!(get("/c", Some("gzip, deflate")), "gzip");
    let sent: Vec<String> = o
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert!(
        sent.iter().all(|r| r.matches("ccept-Encoding").count() == 1),
        "{sent:?}"
    );
}

/// A background refresh (stale-while-revalidate) is the same origin request
/// as a miss, plus the stored validators: the behavior's origin_request
/// actions, X-Forwarded-For, the viewer's end-to-end headers (issue 12).
#[test]
fn a_background_refresh_carries_the_origin_request_actions() {
    use common::scripted::{Reply, ScriptedOrigin};
    let o = ScriptedOrigin::start(|_| {
        Reply::now(
            b"HTTP/1.1 200 OK\r\nCache-Control: max-age=1, stale-while-revalidate=60\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\nok",
        )
    });
    let cfg = config(&[("o", o.addr)], "o", "").replace(
        "cache = false\n",
        "cache = true\norigin_request = { set = { \"x-secret\" = \"s3\" } }\n",
    );
    let p = Proxy::start(&cfg);
    let mut c = p.client();
    let get = |c: &mut Client| {
        c.send(b"GET /swr HTTP/1.1\r\nHost: t\r\nX-Viewer: v\r\n\r\n");
        c.read_response(false).unwrap()
    };
    assert_eq!(get(&mut c).header("x-cache"), Some("Miss from ringfront"));
    let t0 = std::time::Instant::now();
    eventually("the object is stale", || {
        t0.elapsed() > std::time::Duration::from_millis(1100)
    });
    assert_eq!(get(&mut c).header("x-cache"), Some("Hit from ringfront"));
    eventually("the refresh reached the origin", || o.received().len() >= 2);
    let heads: Vec<String> = o
        .received()
        .iter()
        .map(|r| String::from_utf8_lossy(r).to_ascii_lowercase())
        .collect();
    let refresh = &heads[1];
    for want in [
        "x-secret: s3",
        "x-forwarded-for: 127.0.0.1",
        "x-viewer: v",
        "if-none-match: \"v1\"",
    ] {
        assert!(
            heads[0].contains(want) || want.starts_with("if-"),
            "miss lacks {want}: {}",
            heads[0]
        );
        assert!(refresh.contains(want), "refresh lacks {want}: {refresh}");
    }
    assert_eq!(refresh.matches("if-none-match").count(), 1, "{refresh}");
}

/// A response that turns out not storable releases the requests waiting on
/// its flight at its head: they fetch on their own instead of waiting for
/// the first viewer's whole body (SPEC §3.4).
#[test]
fn an_uncacheable_response_releases_its_waiters_at_the_head() {
    use common::scripted::{Reply, ScriptedOrigin};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let n = AtomicUsize::new(0);
    let o = ScriptedOrigin::start(move |_| {
        let head = b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n";
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            // The first viewer's body stalls until the test releases it.
            Reply {
                now: head.to_vec(),
                later: Some(b"4\r\nrest\r\n0\r\n\r\n".to_vec()),
                ..Default::default()
            }
        } else {
            let mut all = head.to_vec();
            all.extend_from_slice(b"4\r\nrest\r\n0\r\n\r\n");
            Reply::now(&all)
        }
    });
    let p = cached_at(o.addr);
    let mut first = p.client();
    first.send(b"GET /u HTTP/1.1\r\nHost: t\r\n\r\n");
    // The first viewer has the head and the first chunk; its body stalls.
    let mut got = Vec::new();
    eventually("the first chunk reached the first viewer", || {
        let mut b = [0u8; 4096];
        use std::io::Read;
        let n = first.s.read(&mut b).unwrap_or(0);
        got.extend_from_slice(&b[..n]);
        String::from_utf8_lossy(&got).contains("first")
    });
    // A second viewer is not held behind it.
    let mut second = p.client();
    second
        .s
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    second.send(b"GET /u HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = second
        .read_response(false)
        .expect("the second viewer answered while the first stalls");
    assert_eq!(r.text(), "firstrest");
    o.release();
}

/// Repeated Cache-Control lines are one list (RFC 9110 §5.3): a `private`
/// or `no-store` on a second line keeps the response out of the cache (the
/// review stored Alice's account page for everyone).
#[test]
fn a_second_cache_control_line_counts() {
    use common::scripted::{Reply, ScriptedOrigin};
    let o = ScriptedOrigin::start(|head| {
        let who = head
            .lines()
            .find_map(|l| l.strip_prefix("Authorization: "))
            .unwrap_or("anonymous")
            .to_string();
        let second = if head.contains("/nostore") {
            "no-store"
        } else {
            "private"
        };
        Reply::now(
            format!(
                "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=100\r\nCache-Control: {second}\r\nContent-Length: {}\r\n\r\n{who}",
                who.len()
            )
            .as_bytes(),
        )
    });
    let p = cached_at(o.addr);
    let mut c = p.client();
    for path in ["/account", "/nostore"] {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer alice\r\n\r\n").as_bytes());
        assert_eq!(c.read_response(false).unwrap().text(), "Bearer alice");
        let r = c.get(path);
        assert_eq!(r.text(), "anonymous", "{path}: another viewer got Alice's response");
    }
}
