//! Issue 15's acceptance, in network namespaces (`tests/common/netns.rs`):
//! three ringfront edges behind an anycast address that the router spreads
//! new connections over (ECMP), acting as one cache (SPEC §8); an origin;
//! a shield tier. Each test makes its own topology (unique names, fixed
//! ports inside), so the tests run in parallel; each takes seconds.
//! Skipped, saying why, where namespaces cannot be made (not root).
//!
//! Who fetched a URL from the origin is read from the origin's side: the
//! last `Via` line of the request it received names the host that sent it
//! (a non-owner's request reaches the owner with its own Via, and the
//! owner appends its own when it goes to the origin).
mod common;
use common::netns::{Topology, VIP};
use common::*;
use ringfront::cache::key::{build, QueryKey};
use ringfront::cluster::Ring;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The edges' ids, which are also their `via`, in topology order.
const IDS: [&str; 3] = ["edge-a", "edge-b", "edge-c"];
/// Viewer port of every ringfront host, and its admin port.
const PORT: u16 = 8080;
const ADMIN: u16 = 9901;
const ORIGIN_PORT: u16 = 8000;
/// `[cluster] connection_timeout` and `fast_fail_probe_interval` here.
const PEER_CONNECT: Duration = Duration::from_millis(300);
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// What the edges fetch from.
#[derive(Clone, Copy, PartialEq)]
enum Upstream {
    /// The origin itself.
    Origin,
    /// An origin group: the shield host, then the origin.
    Shield,
}

/// A running topology: the edges (a slot each, `None` once stopped), the
/// shield host if any, the origin. Fields drop in order: the processes,
/// then the namespaces.
struct Site {
    edges: Vec<Option<Proxy>>,
    shield: Option<Proxy>,
    origin: SampleOrigin,
    t: Topology,
}

fn at(ip: std::net::Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

impl Site {
    /// The topology with the origin, the shield host (for
    /// [`Upstream::Shield`]) and the three edges running; `None` when
    /// namespaces are unavailable (the test is then skipped).
    fn up(test: &str, upstream: Upstream) -> Option<Site> {
        let t = Topology::or_skip(test)?;
        let origin = t.run_in(&t.origin, || {
            SampleOrigin::start(&at(t.origin.addr, ORIGIN_PORT).to_string(), "origin").expect("origin")
        });
        let shield = (upstream == Upstream::Shield).then(|| {
            let cfg = shield_config(&t);
            Proxy::start_with(&cfg, t.command(&t.shield, Proxy::BIN))
        });
        let edges = (0..3)
            .map(|i| {
                let cfg = edge_config(&t, i, &[0, 1, 2], upstream);
                Some(Proxy::start_with(&cfg, t.command(&t.edges[i], Proxy::BIN)))
            })
            .collect();
        Some(Site {
            edges,
            shield,
            origin,
            t,
        })
    }

    fn vip(&self) -> SocketAddr {
        at(VIP, PORT)
    }

    fn edge_addr(&self, i: usize) -> SocketAddr {
        at(self.t.edges[i].addr, PORT)
    }

    /// `GET path` on a new connection from the client namespace, and how
    /// long it took.
    fn get(&self, to: SocketAddr, path: &str) -> (Response, Duration) {
        self.t.run_in(&self.t.client, || {
            let t0 = Instant::now();
            let r = Client::connect(to).get(path);
            (r, t0.elapsed())
        })
    }

    /// Stops edge `i` as a host goes down: the process ends, its address
    /// stops answering (connects to it time out), and the router no longer
    /// sends it the VIP's connections.
    fn kill_edge(&mut self, i: usize) {
        if let Some(mut p) = self.edges[i].take() {
            p.terminate();
        }
        self.t.blackhole(&self.t.edges[i]);
        self.t.withdraw(&self.t.edges[i]);
    }

    /// Rewrites edge `i`'s config for the peers `peers` and reloads it
    /// (SIGHUP), waiting until it is logged.
    fn reload_edge(&self, i: usize, peers: &[usize]) {
        let Some(p) = self.edges[i].as_ref() else { return };
        let before = p.log_text().matches("reloaded").count();
        std::fs::write(&p.config_path, edge_config(&self.t, i, peers, Upstream::Origin)).unwrap();
        p.hup();
        eventually("the reload is logged", || {
            p.log_text().matches("reloaded").count() > before
        });
    }

    /// `(path, host)` of each request the origin received: its target and
    /// the last Via pseudonym (the host that sent it).
    fn fetches(&self) -> Vec<(String, String)> {
        self.origin
            .control()
            .heads()
            .iter()
            .map(|h| {
                let path = h.split(' ').nth(1).unwrap_or("").to_string();
                let via = h
                    .lines()
                    .filter_map(|l| l.strip_prefix("Via: "))
                    .next_back()
                    .and_then(|v| v.split(' ').nth(1))
                    .unwrap_or("")
                    .to_string();
                (path, via)
            })
            .collect()
    }
}

/// An edge's config: `me` of the cluster of `peers` (indices into [`IDS`]).
fn edge_config(t: &Topology, me: usize, peers: &[usize], upstream: Upstream) -> String {
    let own = t.edges[me].addr;
    let list: String = peers
        .iter()
        .map(|&p| {
            let a = t.edges[p].addr;
            format!(
                "  {{ id = \"{}\", address = \"{}\", admin = \"{}\" }},\n",
                IDS[p],
                at(a, PORT),
                at(a, ADMIN)
            )
        })
        .collect();
    let origin = at(t.origin.addr, ORIGIN_PORT);
    let (origins, target) = match upstream {
        Upstream::Origin => (origin_section("origin", origin), "origin"),
        Upstream::Shield => (
            origin_section("shield", at(t.shield.addr, PORT))
                + &origin_section("origin", origin)
                + "[[origin_group]]\nid = \"site\"\nprimary = \"shield\"\nsecondary = \"origin\"\n",
            "site",
        ),
    };
    format!(
        "[server]\nlisten = [\"{VIP}:{PORT}\", \"{own}:{PORT}\"]\nworkers = 2\npin_workers = false\nvia = \"{id}\"\n\
         [admin]\nlisten = \"{own}:{ADMIN}\"\n\
         {origins}\
         [[behavior]]\npath = \"*\"\ntarget = \"{target}\"\n\
         [cluster]\nid = \"rf-test\"\nself = \"{id}\"\nconnection_timeout = \"{}ms\"\nfast_fail_probe_interval = \"{}ms\"\npeers = [\n{list}]\n",
        PEER_CONNECT.as_millis(),
        PROBE_EVERY.as_millis(),
        id = IDS[me],
    )
}

fn origin_section(id: &str, addr: SocketAddr) -> String {
    format!("[[origin]]\nid = \"{id}\"\naddress = \"{addr}\"\nconnection_attempts = 1\nconnection_timeout = \"1s\"\n")
}

/// The shield host: one ringfront, caching, in front of the origin.
fn shield_config(t: &Topology) -> String {
    format!(
        "[server]\nlisten = \"{}\"\nworkers = 2\npin_workers = false\nvia = \"shield\"\n{}\
         [[behavior]]\npath = \"*\"\ntarget = \"origin\"\n",
        at(t.shield.addr, PORT),
        origin_section("origin", at(t.origin.addr, ORIGIN_PORT))
    )
}

/// The ring's owner of `path` (host `test`, as [`Client::get`] sends)
/// among `ids`.
fn owner<'a>(ids: &[&'a str], path: &str) -> &'a str {
    let mut k = Vec::new();
    build(&mut k, b"test", path.as_bytes(), &QueryKey::All);
    ids[Ring::new(ids).unwrap().owner(&k)]
}

/// The host that answered the viewer: its Cache-Status member is the last.
fn answered_by(r: &Response) -> String {
    let last = r
        .headers
        .iter()
        .rfind(|(n, _)| n.eq_ignore_ascii_case("cache-status"))
        .map_or("", |(_, v)| v.as_str());
    last.split(';').next().unwrap_or("").to_string()
}

/// A cacheable URL (the origin allows 5 minutes).
fn url(tag: &str, i: usize) -> String {
    format!("/{tag}/{i}?size=100&cc=max-age=300")
}

#[test]
fn sixty_urls_nine_times_each_over_new_connections_to_the_vip_reach_the_origin_once_each() {
    let Some(site) = Site::up("sixty_urls_nine_times_each", Upstream::Origin) else {
        return;
    };
    let vip = site.vip();
    // Each URL's nine requests at once, so hosts collapse them too: the
    // owner collapses its peers' requests with its viewers'.
    let answers: Vec<(String, Response)> = site.t.run_in(&site.t.client, || {
        let mut all = Vec::new();
        for u in 0..60 {
            let path = url("sixty", u);
            let got: Vec<Response> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..9).map(|_| s.spawn(|| Client::connect(vip).get(&path))).collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            all.extend(got.into_iter().map(|r| (path.clone(), r)));
        }
        all
    });
    assert_eq!(answers.len(), 540);
    for (path, r) in &answers {
        assert_eq!((r.status, r.body.len()), (200, 100), "{path}: {:?}", r.headers);
    }
    let fetched = site.fetches();
    let mut paths: Vec<&str> = fetched.iter().map(|f| f.0.as_str()).collect();
    paths.sort_unstable();
    let before = paths.len();
    paths.dedup();
    assert_eq!((before, paths.len()), (60, 60), "each URL once: {fetched:?}");
    for (path, by) in &fetched {
        assert_eq!(by, owner(&IDS, path), "{path} fetched by a host that does not own it");
    }
    let mut by_edge = [0; 3];
    for (_, r) in &answers {
        if let Some(i) = IDS.iter().position(|id| *id == answered_by(r)) {
            by_edge[i] += 1;
        }
    }
    eprintln!("answers per edge: {by_edge:?}");
    assert!(by_edge.iter().all(|&n| n > 0), "ECMP reached every edge: {by_edge:?}");
}

#[test]
fn owners_spread_and_one_edge_fetches_a_url_whichever_edge_the_viewer_reached() {
    let Some(site) = Site::up("owners_spread", Upstream::Origin) else {
        return;
    };
    for i in 0..200 {
        assert_eq!(site.get(site.vip(), &url("own", i)).0.status, 200);
    }
    let fetched = site.fetches();
    assert_eq!(fetched.len(), 200);
    let mut owned = [0usize; 3];
    for (path, by) in &fetched {
        assert_eq!(by, owner(&IDS, path), "{path}");
        owned[IDS.iter().position(|id| id == by).unwrap()] += 1;
    }
    eprintln!("owners of 200 keys: {owned:?}");
    for n in owned {
        assert!((30..=110).contains(&n), "each edge owns 15-55% of the keys: {owned:?}");
    }
    // Each URL first asked at a different edge, then at the other two.
    for j in 0..30 {
        let path = url("whichever", j);
        let bodies: Vec<Vec<u8>> = (0..3)
            .map(|k| {
                let (r, _) = site.get(site.edge_addr((j + k) % 3), &path);
                assert_eq!(r.status, 200);
                assert_eq!(answered_by(&r), IDS[(j + k) % 3]);
                r.body
            })
            .collect();
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    }
    let later: Vec<(String, String)> = site.fetches().into_iter().skip(200).collect();
    assert_eq!(later.len(), 30, "one fetch per URL: {later:?}");
    for (path, by) in &later {
        assert_eq!(by, owner(&IDS, path), "{path}");
    }
}

#[test]
fn a_dead_edges_urls_are_still_answered_and_its_removal_moves_only_its_keys() {
    let Some(mut site) = Site::up("a_dead_edges_urls", Upstream::Origin) else {
        return;
    };
    site.kill_edge(2);
    let dead: Vec<String> = (0..)
        .map(|i| url("dead", i))
        .filter(|p| owner(&IDS, p) == "edge-c")
        .take(24)
        .collect();
    let t0 = Instant::now();
    let mut first_at = [true; 2];
    let mut slow = 0;
    for path in &dead {
        let (r, took) = site.get(site.vip(), path);
        assert_eq!(r.status, 200, "{path}");
        let by = answered_by(&r);
        let i = IDS.iter().position(|id| *id == by).expect("an edge answered");
        assert!(i < 2, "the withdrawn edge answered");
        if std::mem::take(&mut first_at[i]) {
            // SPEC §8: the owner's failure is a Proxy-Status member.
            assert_eq!(
                r.header("proxy-status"),
                Some(format!("{by}; error=connection_timeout; next-hop=\"edge-c\"").as_str()),
                "the first answer of {by}"
            );
        }
        if took >= PEER_CONNECT {
            slow += 1;
        }
    }
    // Each surviving edge waits on the dead one once, then once per probe
    // interval at most.
    let intervals = (t0.elapsed().as_millis() / PROBE_EVERY.as_millis()) as usize + 1;
    eprintln!("{slow} of {} requests waited, over {:?}", dead.len(), t0.elapsed());
    assert!(
        slow <= 2 * intervals,
        "{slow} slow requests in {intervals} probe intervals"
    );

    // edge-c removed from the survivors' configs: keys owned by survivors
    // keep their owner, edge-c's move to them.
    site.reload_edge(0, &[0, 1]);
    site.reload_edge(1, &[0, 1]);
    let seen = site.fetches().len();
    let after: Vec<String> = (0..60).map(|i| url("after", i)).collect();
    for path in &after {
        let (r, _) = site.get(site.vip(), path);
        assert_eq!(r.status, 200);
        assert!(!r.has_header("proxy-status"), "{path}: {:?}", r.headers);
    }
    let fetched: Vec<(String, String)> = site.fetches().into_iter().skip(seen).collect();
    assert_eq!(fetched.len(), 60);
    let mut moved = 0;
    for (path, by) in &fetched {
        let was = owner(&IDS, path);
        if was == "edge-c" {
            moved += 1;
        } else {
            assert_eq!(by, was, "{path} changed owner");
        }
        assert_eq!(by, owner(&IDS[..2], path), "{path}");
    }
    assert!(moved > 0, "no key of edge-c among 60");
}

#[test]
fn an_invalidation_on_one_hosts_admin_listener_reaches_all_three() {
    let Some(site) = Site::up("an_invalidation_reaches_all_three", Upstream::Origin) else {
        return;
    };
    // Every edge holds a copy of every URL: the owner's, and the others'
    // (store_peer_fetches).
    let fetch_everywhere = || {
        for i in 0..10 {
            for e in 0..3 {
                assert_eq!(site.get(site.edge_addr(e), &url("inv", i)).0.status, 200);
            }
        }
    };
    fetch_everywhere();
    assert_eq!(site.fetches().len(), 10);
    let admin = at(site.t.edges[1].addr, ADMIN);
    let answer = site.t.run_in(&site.t.client, || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(admin).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let body = "/inv/*\n";
        let req = format!(
            "POST /invalidate HTTP/1.1\r\nHost: admin\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    });
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("\r\n\r\nedge-a: 10 removed\nedge-b: 10 removed\nedge-c: 10 removed\n"),
        "{answer}"
    );
    // Gone everywhere: each URL is fetched again, once.
    fetch_everywhere();
    assert_eq!(site.fetches().len(), 20);
}

#[test]
fn a_shield_tier_fetches_each_url_once_and_edges_fail_over_when_it_stops() {
    let Some(mut site) = Site::up("a_shield_tier", Upstream::Shield) else {
        return;
    };
    for round in 0..3 {
        for i in 0..60 {
            let (r, _) = site.get(site.vip(), &url("shielded", i));
            assert_eq!(r.status, 200, "round {round}");
        }
    }
    let fetched = site.fetches();
    assert_eq!(fetched.len(), 60, "one origin fetch per URL: {fetched:?}");
    assert!(fetched.iter().all(|(_, by)| by == "shield"), "{fetched:?}");
    // The shield stops: the edges fail over to the origin.
    if let Some(mut s) = site.shield.take() {
        s.terminate();
    }
    for i in 0..30 {
        let path = url("unshielded", i);
        let (r, _) = site.get(site.vip(), &path);
        assert_eq!(r.status, 200, "{path}");
        let ps = r.header("proxy-status").unwrap_or("");
        assert!(ps.contains("next-hop=\"shield\""), "{path}: {ps}");
    }
    let later: Vec<(String, String)> = site.fetches().into_iter().skip(60).collect();
    assert_eq!(later.len(), 30);
    for (path, by) in &later {
        assert_eq!(by, owner(&IDS, path), "{path}: the owner fails over, once");
    }
}

/// Issue 15's cost: a non-owner's miss that the owner answers from its
/// cache adds under 1 ms p50 over a local miss (the owner's own fetch from
/// the origin), both through the same edge in the same run, interleaved.
/// Noise only adds time, so the best of three rounds is taken: a loaded
/// machine (the whole suite at once) does not fail it.
#[test]
fn a_miss_served_by_the_owners_cache_adds_under_a_millisecond() {
    let Some(site) = Site::up("a_miss_served_by_the_owners_cache", Upstream::Origin) else {
        return;
    };
    let mut rounds = Vec::new();
    for round in 0..3 {
        let (local, remote) = cost_round(&site, &format!("cost{round}"));
        eprintln!("p50: local miss {local:?}, miss served by the owner's cache {remote:?}");
        if remote <= local + Duration::from_millis(1) {
            return;
        }
        rounds.push((local, remote));
    }
    panic!("the owner's cache added over 1 ms p50 in every round: {rounds:?}");
}

/// One round through edge-a: 100 URLs it owns (a local miss: the origin)
/// interleaved with 100 that edge-b owns and already holds (a miss here,
/// a hit there); the p50 of each.
fn cost_round(site: &Site, tag: &str) -> (Duration, Duration) {
    let owned_by = |who: &str| -> Vec<String> {
        (0..)
            .map(|i| url(tag, i))
            .filter(|p| owner(&IDS, p) == who)
            .take(100)
            .collect()
    };
    let (mine, theirs) = (owned_by("edge-a"), owned_by("edge-b"));
    for p in &theirs {
        assert_eq!(site.get(site.edge_addr(1), p).0.status, 200);
    }
    let (local, remote): (Vec<Duration>, Vec<Duration>) = site.t.run_in(&site.t.client, || {
        let mut c = Client::connect(site.edge_addr(0));
        let mut time = |p: &str| {
            let t0 = Instant::now();
            assert_eq!(c.get(p).status, 200);
            t0.elapsed()
        };
        mine.iter().zip(&theirs).map(|(a, b)| (time(a), time(b))).unzip()
    });
    let p50 = |mut v: Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    (p50(local), p50(remote))
}
