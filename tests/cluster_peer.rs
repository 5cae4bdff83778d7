//! A cluster host over loopback (SPEC §8): a cacheable miss whose key
//! another peer owns is fetched from that peer, marked with the cluster's
//! `CDN-Loop` token; a marked request is never sent on; a dead owner's
//! keys go to the origin group (Proxy-Status names the peer) and, once it
//! is marked down, straight there but for one probe per interval;
//! `store_peer_fetches`; one Cache-Status member per host. The peers here
//! are a scripted server that records what it was sent, or a second proxy.
//! The same over network namespaces, three hosts behind an anycast
//! address: `tests/cluster.rs`.
mod common;
use common::scripted::{Reply, ScriptedOrigin};
use common::*;
use ringfront::cache::key::{build, QueryKey};
use ringfront::cluster::Ring;
use std::net::SocketAddr;

/// The cluster's CDN-Loop token in these tests.
const CLUSTER: &str = "site";

/// A caching host `me` of a cluster of `peers` (id, address), in front of
/// `origins` (the last behavior targets `target`); `cluster_extra` goes
/// into `[cluster]`.
fn host(
    me: &str,
    origins: &[(&str, SocketAddr)],
    target: &str,
    peers: &[(&str, SocketAddr)],
    cluster_extra: &str,
) -> String {
    let list: Vec<String> = peers
        .iter()
        .map(|(id, a)| format!("  {{ id = \"{id}\", address = \"{a}\" }},\n"))
        .collect();
    host_listing(me, origins, target, &list.concat(), cluster_extra)
}

/// [`host`] with the peers' TOML lines as given.
fn host_listing(me: &str, origins: &[(&str, SocketAddr)], target: &str, list: &str, cluster_extra: &str) -> String {
    let group = if target == "site" { GROUP } else { "" };
    config(origins, target, group)
        .replace("cache = false\n", "cache = true\n")
        .replace("pin_workers = false\n", &format!("pin_workers = false\nvia = \"{me}\"\n"))
        + &format!(
            "\n[cluster]\nid = \"{CLUSTER}\"\nself = \"{me}\"\nconnection_timeout = \"300ms\"\n{cluster_extra}peers = [\n{}]\n\
             [admin]\nlisten = \"127.0.0.1:0\"\n",
            list
        )
}

/// A path (host `test`, as [`Client::get`] sends) whose key `owner` owns
/// among `ids`, distinct per `tag`.
fn owned_by(ids: &[&str], owner: &str, tag: &str) -> String {
    let ring = Ring::new(ids).unwrap();
    let want = ids.iter().position(|i| *i == owner).unwrap();
    (0..)
        .map(|i| format!("/{tag}/{i}?cc=max-age%3D60"))
        .find(|p| {
            let mut k = Vec::new();
            build(&mut k, b"test", p.as_bytes(), &QueryKey::All);
            ring.owner(&k) == want
        })
        .unwrap()
}

/// Every value of header `name`, in order.
fn all(r: &Response, name: &str) -> Vec<String> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .collect()
}

/// A peer answering every request with `head` and a 4-byte body "peer".
fn scripted_peer(head: &'static str) -> ScriptedOrigin {
    ScriptedOrigin::start(move |_| Reply::now(format!("{head}Content-Length: 4\r\n\r\npeer").as_bytes()))
}

const PEER_OK: &str =
    "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nX-Cache: Miss from b\r\nCache-Status: b; fwd=miss; stored\r\n";

#[test]
fn a_miss_another_peer_owns_is_fetched_from_it_marked_with_the_clusters_cdn_loop() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let peer = scripted_peer(PEER_OK);
    let p = Proxy::start(&host(
        "a",
        &[("o", o.addr())],
        "o",
        &[("a", refused_addr()), ("b", peer.addr)],
        "",
    ));
    let path = owned_by(&["a", "b"], "b", "p");
    let mut c = p.client();
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\nCDN-Loop: other-cdn; v=1\r\nX-Mine: 1\r\n\r\n").as_bytes());
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "peer"));
    // RFC 9211: the owner's member comes through, this host's after it.
    assert_eq!(all(&r, "cache-status"), ["b; fwd=miss; stored", "a; fwd=miss; stored"]);
    assert_eq!(o.requests(), 0, "the origin is the owner's business");
    let sent = String::from_utf8(peer.received().concat()).unwrap();
    assert!(
        sent.starts_with(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n")),
        "{sent}"
    );
    // The viewer's request as it came, its CDN-Loop list with ours appended.
    assert!(sent.contains("X-Mine: 1\r\n"), "{sent}");
    let loops: Vec<&str> = sent.lines().filter(|l| l.starts_with("CDN-Loop:")).collect();
    assert_eq!(loops, ["CDN-Loop: other-cdn; v=1", "CDN-Loop: site"], "{sent}");
    assert!(sent.contains("Via: 1.1 a\r\n"), "{sent}");
    // store_peer_fetches (default true): the next one is a hit here.
    let again = c.get(&path);
    assert_eq!(all(&again, "x-cache"), ["Miss from b", "Hit from a"]);
    assert_eq!(peer.received().len(), 1);
    let m = scrape(p.admin_addr());
    assert!(
        m.contains("ringfront_peer_fetches_total{peer=\"b\",outcome=\"response\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("ringfront_origin_attempts_total{origin=\"o\",outcome=\"response\"} 0\n"),
        "{m}"
    );
}

#[test]
fn whatever_status_the_owner_answers_is_the_answer() {
    let primary = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let secondary = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let peer = scripted_peer("HTTP/1.1 503 Service Unavailable\r\n");
    let origins = [("primary", primary.addr()), ("secondary", secondary.addr())];
    let p = Proxy::start(&host(
        "a",
        &origins,
        "site",
        &[("a", refused_addr()), ("b", peer.addr)],
        "",
    ));
    let r = p.client().get(&owned_by(&["a", "b"], "b", "s"));
    assert_eq!((r.status, r.text().as_str()), (503, "peer"));
    assert!(!r.has_header("proxy-status"), "not a failure: the owner's answer");
    assert_eq!(primary.requests() + secondary.requests(), 0);
}

#[test]
fn this_hosts_keys_marked_requests_and_authorized_ones_go_to_the_origin() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let peer = scripted_peer(PEER_OK);
    let p = Proxy::start(&host(
        "a",
        &[("o", o.addr())],
        "o",
        &[("a", refused_addr()), ("b", peer.addr)],
        "",
    ));
    let mut c = p.client();
    assert_eq!(c.get(&owned_by(&["a", "b"], "a", "mine")).header("x-origin"), Some("o"));
    // Marked by this cluster: from a peer, so never sent to another.
    let marked = owned_by(&["a", "b"], "b", "marked");
    c.send(format!("GET {marked} HTTP/1.1\r\nHost: test\r\nCDN-Loop: x, SITE; hop=2\r\n\r\n").as_bytes());
    assert_eq!(c.read_response(false).unwrap().header("x-origin"), Some("o"));
    // Another cluster's mark is no mark.
    let other = owned_by(&["a", "b"], "b", "other");
    c.send(format!("GET {other} HTTP/1.1\r\nHost: test\r\nCDN-Loop: site-2\r\n\r\n").as_bytes());
    assert_eq!(c.read_response(false).unwrap().text(), "peer");
    let authorized = owned_by(&["a", "b"], "b", "auth");
    c.send(format!("GET {authorized} HTTP/1.1\r\nHost: test\r\nAuthorization: Basic eDp5\r\n\r\n").as_bytes());
    assert_eq!(c.read_response(false).unwrap().header("x-origin"), Some("o"));
    assert_eq!(peer.received().len(), 1);
    assert_eq!(o.requests(), 3);
}

#[test]
fn a_dead_owners_keys_go_to_the_origin_and_then_straight_there_but_for_a_probe() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let dead = refused_addr();
    let extra = "fast_fail_after = 2\nfast_fail_probe_interval = \"500ms\"\n";
    let p = Proxy::start(&host(
        "a",
        &[("o", o.addr())],
        "o",
        &[("a", refused_addr()), ("b", dead)],
        extra,
    ));
    let ids = ["a", "b"];
    let mut c = p.client();
    for i in 0..2 {
        let r = c.get(&owned_by(&ids, "b", &format!("dead{i}")));
        assert_eq!((r.status, r.header("x-origin")), (200, Some("o")));
        // Named as an origin's failure is (SPEC §5, RFC 9209).
        assert_eq!(
            r.header("proxy-status"),
            Some("a; error=connection_refused; next-hop=\"b\"")
        );
    }
    // Down after two failures in a row: straight to the origin.
    let skipped = c.get(&owned_by(&ids, "b", "skipped"));
    assert_eq!(skipped.header("x-origin"), Some("o"));
    assert!(!skipped.has_header("proxy-status"), "the dead owner was asked again");
    // One request per probe interval still asks it.
    let mut n = 0;
    eventually("a probe of the dead owner", || {
        n += 1;
        let r = c.get(&owned_by(&ids, "b", &format!("probe{n}")));
        assert_eq!(r.status, 200);
        r.has_header("proxy-status")
    });
    // Two failures, then the probe's; the skipped requests asked no one.
    let m = scrape(p.admin_addr());
    let refused = "ringfront_peer_fetches_total{peer=\"b\",outcome=\"connection_refused\"} ";
    let n: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix(refused))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(n >= 3, "{m}");
    assert!(
        m.contains("ringfront_peer_fetches_total{peer=\"b\",outcome=\"response\"} 0\n"),
        "{m}"
    );
}

#[test]
fn without_store_peer_fetches_only_the_owner_keeps_a_copy() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let peer = scripted_peer(PEER_OK);
    let extra = "store_peer_fetches = false\n";
    let p = Proxy::start(&host(
        "a",
        &[("o", o.addr())],
        "o",
        &[("a", refused_addr()), ("b", peer.addr)],
        extra,
    ));
    let path = owned_by(&["a", "b"], "b", "nostore");
    let mut c = p.client();
    for _ in 0..2 {
        let r = c.get(&path);
        assert_eq!(r.text(), "peer");
        assert_eq!(all(&r, "cache-status"), ["b; fwd=miss; stored", "a; fwd=miss"]);
    }
    assert_eq!(peer.received().len(), 2);
}

#[test]
fn the_owner_answers_a_peer_from_its_cache_and_each_host_adds_its_cache_status() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    // b: the owner. Its view of a's address does not matter here.
    let b = Proxy::start(&host(
        "b",
        &[("o", o.addr())],
        "o",
        &[("a", refused_addr()), ("b", refused_addr())],
        "",
    ));
    let a = Proxy::start(&host(
        "a",
        &[("o", o.addr())],
        "o",
        &[("a", refused_addr()), ("b", b.addr)],
        "",
    ));
    let path = owned_by(&["a", "b"], "b", "owned");
    // A viewer of b fetches it; a viewer of a then gets b's copy.
    assert_eq!(
        b.client().get(&path).header("cache-status"),
        Some("b; fwd=miss; stored")
    );
    let r = a.client().get(&path);
    assert_eq!(r.status, 200);
    let members = all(&r, "cache-status");
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(members[0].starts_with("b; hit; ttl="), "{members:?}");
    assert_eq!(members[1], "a; fwd=miss; stored");
    assert_eq!(all(&r, "via"), ["1.1 b", "1.1 a"]);
    assert_eq!(o.requests(), 1);
    // A URL b owns, first asked at a: b fetches it once for both.
    let fresh = owned_by(&["a", "b"], "b", "fresh");
    assert_eq!(a.client().get(&fresh).status, 200);
    assert!(b
        .client()
        .get(&fresh)
        .header("cache-status")
        .unwrap()
        .starts_with("b; hit"));
    assert_eq!(o.requests(), 2);
    let seen = o.control().heads().last().cloned().unwrap_or_default();
    assert!(
        seen.contains("CDN-Loop: site\r\n"),
        "the owner forwards the mark: {seen}"
    );
}

/// `POST /invalidate` with `body` and the extra header lines `extra` to an
/// admin listener; the status and the answer's body.
fn invalidate(admin: SocketAddr, body: &str, extra: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let req = format!(
        "POST /invalidate HTTP/1.1\r\nHost: admin\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

#[test]
fn an_invalidation_is_applied_here_and_posted_to_every_peer_with_an_admin_listener_once() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let admin_b = ScriptedOrigin::start(|_| Reply::now(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n4\n"));
    let admin_e =
        ScriptedOrigin::start(|_| Reply::now(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"));
    let peer = |id: &str, admin: Option<SocketAddr>| {
        let admin = admin.map(|a| format!(", admin = \"{a}\"")).unwrap_or_default();
        format!("  {{ id = \"{id}\", address = \"{}\"{admin} }},\n", refused_addr())
    };
    let list = [
        peer("a", Some(refused_addr())),
        peer("b", Some(admin_b.addr)),
        peer("c", Some(refused_addr())),
        peer("d", None),
        peer("e", Some(admin_e.addr)),
    ];
    let p = Proxy::start(&host_listing("a", &[("o", o.addr())], "o", &list.concat(), ""));
    let path = (0..)
        .map(|i| format!("/inv/{i}?cc=max-age%3D60"))
        .find(|p| {
            let mut k = Vec::new();
            build(&mut k, b"test", p.as_bytes(), &QueryKey::All);
            Ring::new(&["a", "b", "c", "d", "e"]).unwrap().owner(&k) == 0
        })
        .unwrap();
    assert_eq!(p.client().get(&path).header("x-cache"), Some("Miss from a"));
    let (status, text) = invalidate(p.admin_addr(), &format!("{path}\n"), "");
    assert_eq!(status, 200);
    assert_eq!(
        text,
        "a: 1 removed\nb: 4 removed\nc: error connection refused\nd: error no admin address\ne: error status 503\n"
    );
    let sent = String::from_utf8(admin_b.received().concat()).unwrap();
    assert!(sent.starts_with("POST /invalidate HTTP/1.1\r\n"), "{sent}");
    assert!(sent.contains("\r\nCDN-Loop: site\r\n"), "marked: {sent}");
    assert!(sent.ends_with(&format!("\r\n\r\n{path}\n")), "the same body: {sent}");
    assert_eq!(
        p.client().get(&path).header("x-cache"),
        Some("Miss from a"),
        "removed here"
    );
    // A peer's fan-out is applied here only, and answered with its count.
    let (status, text) = invalidate(p.admin_addr(), &format!("{path}\n"), "CDN-Loop: other, site\r\n");
    assert_eq!((status, text.as_str()), (200, "1\n"));
    assert_eq!(admin_b.received().len(), 1, "fanned out again");
}

#[test]
fn a_head_miss_another_peer_owns_is_asked_of_it_too() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let peer = ScriptedOrigin::start(|req| {
        let body = if req.starts_with("HEAD ") { "" } else { "peer" };
        Reply::now(format!("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{body}").as_bytes())
    });
    let p = Proxy::start(&host(
        "a",
        &[("o", o.addr())],
        "o",
        &[("a", refused_addr()), ("b", peer.addr)],
        "",
    ));
    let path = owned_by(&["a", "b"], "b", "head");
    let mut c = p.client();
    c.send(format!("HEAD {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    let r = c.read_response(true).unwrap();
    assert_eq!((r.status, r.header("content-length")), (200, Some("4")));
    // The connection is in step: no body followed the HEAD's answer.
    assert_eq!(c.get(&path).text(), "peer");
    assert_eq!(
        peer.request_lines(),
        [format!("HEAD {path} HTTP/1.1"), format!("GET {path} HTTP/1.1")]
    );
    assert_eq!(o.requests(), 0);
}
