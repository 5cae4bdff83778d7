//! `[cluster]` (SPEC §2, §8): several ringfront hosts acting as one cache,
//! parsed, checked and resolved. Each problem names its key
//! (`cluster.self`, `cluster.peers[2].address`); the resolved [`Cluster`]
//! carries the [`Ring`] of its peer ids, a pure function of those ids, so
//! every host and every reload with the same peers picks the same owners.

use super::validate::{check_range, resolve_addrs, Errors, Seg};
use super::{d, Dur};
use crate::cluster::Ring;
use crate::http::token::is_token;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

/// `[cluster]` as written. Required keys default to empty so that their
/// absence is reported as the others are, naming the key.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    #[serde(default)]
    pub id: String,
    #[serde(default, rename = "self")]
    pub self_id: String,
    #[serde(default)]
    pub peers: Vec<RawPeer>,
    #[serde(default = "default_connection_timeout")]
    pub connection_timeout: Dur,
    #[serde(default = "default_response_timeout")]
    pub response_timeout: Dur,
    #[serde(default = "default_fast_fail_after")]
    pub fast_fail_after: u32,
    #[serde(default = "default_probe_interval")]
    pub fast_fail_probe_interval: Dur,
    #[serde(default = "yes")]
    pub store_peer_fetches: bool,
}

/// One entry of `cluster.peers`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawPeer {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub address: String,
    pub admin: Option<String>,
}

fn default_connection_timeout() -> Dur {
    d(1_000)
}
fn default_response_timeout() -> Dur {
    d(10_000)
}
fn default_fast_fail_after() -> u32 {
    1
}
fn default_probe_interval() -> Dur {
    d(2_000)
}
fn yes() -> bool {
    true
}

/// A peer, resolved: the viewer-facing listener other hosts fetch from, and
/// the admin listener `/invalidate` fans out to (SPEC §8).
#[derive(Debug, Clone)]
pub struct Peer {
    pub id: String,
    /// `host:port` as written.
    pub address: String,
    pub addrs: Vec<SocketAddr>,
    /// `admin` as written; `None`: invalidations are not fanned out to it.
    pub admin: Option<String>,
    pub admin_addrs: Vec<SocketAddr>,
}

/// `[cluster]`, resolved.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The cluster's `CDN-Loop` token (RFC 8586), the same on every host.
    pub id: String,
    /// This host: an index into `peers` (and into the ring's owners).
    pub self_peer: usize,
    /// In config order; ring owners are indices into this list.
    pub peers: Vec<Peer>,
    /// Owner of a cache key: `peers[ring.owner(url_key)]`.
    pub ring: Ring,
    pub connection_timeout: Duration,
    pub response_timeout: Duration,
    pub fast_fail_after: u32,
    pub fast_fail_probe_interval: Duration,
    pub store_peer_fetches: bool,
}

impl Cluster {
    /// The peer that owns `key` (a cache key's URL part).
    pub fn owner(&self, key: &[u8]) -> usize {
        self.ring.owner(key)
    }

    /// Whether `peer` is this host.
    pub fn is_self(&self, peer: usize) -> bool {
        peer == self.self_peer
    }
}

/// Checks and resolves `[cluster]`; `None` when anything is wrong (each
/// problem pushed to `e`).
pub(super) fn resolve(e: &mut Errors, raw: &RawCluster) -> Option<Cluster> {
    let before = e.len();
    let key = |k: &'static str| [Seg::K("cluster"), Seg::K(k)];
    if raw.id.is_empty() {
        e.push(
            &key("id"),
            "is required: the cluster's CDN-Loop token (RFC 8586), the same on every host",
        );
    } else if !is_token(raw.id.as_bytes()) {
        e.push(
            &key("id"),
            format!(
                "{:?} is not a token (RFC 9110 §5.6.2): it is sent as the CDN-Loop pseudonym (RFC 8586)",
                raw.id
            ),
        );
    }
    let peers = peers(e, &raw.peers);
    let self_peer = raw.peers.iter().position(|p| p.id == raw.self_id);
    if raw.self_id.is_empty() {
        e.push(&key("self"), "is required: this host's id, one of cluster.peers");
    } else if self_peer.is_none() && !raw.peers.is_empty() {
        let ids: Vec<&str> = raw.peers.iter().map(|p| p.id.as_str()).collect();
        e.push(
            &key("self"),
            format!("{:?} names no peer (peers: {})", raw.self_id, ids.join(", ")),
        );
    }
    check_range(e, &key("connection_timeout"), raw.connection_timeout.0, 10, 60_000);
    check_range(e, &key("response_timeout"), raw.response_timeout.0, 10, 300_000);
    if !(1..=1000).contains(&raw.fast_fail_after) {
        e.push(
            &key("fast_fail_after"),
            format!("{} is out of range 1..=1000", raw.fast_fail_after),
        );
    }
    check_range(
        e,
        &key("fast_fail_probe_interval"),
        raw.fast_fail_probe_interval.0,
        10,
        3_600_000,
    );
    let ids: Vec<&str> = raw.peers.iter().map(|p| p.id.as_str()).collect();
    let ring = Ring::new(&ids);
    if e.len() != before {
        return None;
    }
    Some(Cluster {
        id: raw.id.clone(),
        self_peer: self_peer?,
        peers,
        ring: ring?,
        connection_timeout: raw.connection_timeout.0,
        response_timeout: raw.response_timeout.0,
        fast_fail_after: raw.fast_fail_after,
        fast_fail_probe_interval: raw.fast_fail_probe_interval.0,
        store_peer_fetches: raw.store_peer_fetches,
    })
}

/// `cluster.peers`: ids unique tokens, addresses resolved (as origins'
/// are, once, at load), no two peers at one address.
fn peers(e: &mut Errors, raw: &[RawPeer]) -> Vec<Peer> {
    use Seg::{I, K};
    if raw.is_empty() {
        e.push(
            &[K("cluster"), K("peers")],
            "at least one peer is required: every host of the cluster, this one included",
        );
    }
    let mut out: Vec<Peer> = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        let key = |k: &'static str| [K("cluster"), K("peers"), I(i), K(k)];
        if !is_token(p.id.as_bytes()) {
            e.push(
                &key("id"),
                format!(
                    "{:?} is not a token (RFC 9110 §5.6.2): it names the peer in Proxy-Status",
                    p.id
                ),
            );
        } else if let Some(j) = raw[..i].iter().position(|q| q.id == p.id) {
            e.push(&key("id"), format!("duplicate peer id {:?} (also peers[{j}])", p.id));
        }
        let addrs = address(e, &key("address"), &p.address, "address");
        if let Some((j, a)) = out
            .iter()
            .enumerate()
            .find_map(|(j, q)| q.addrs.iter().find(|a| addrs.contains(a)).map(|a| (j, a)))
        {
            e.push(&key("address"), format!("{a} is also the address of peers[{j}]"));
        }
        let admin_addrs = match &p.admin {
            Some(a) => address(e, &key("admin"), a, "admin"),
            None => Vec::new(),
        };
        out.push(Peer {
            id: p.id.clone(),
            address: p.address.clone(),
            addrs,
            admin: p.admin.clone(),
            admin_addrs,
        });
    }
    out
}

/// A `host:port`, resolved; an empty one is reported as missing.
fn address(e: &mut Errors, key: &[Seg], s: &str, what: &str) -> Vec<SocketAddr> {
    if s.is_empty() {
        e.push(key, format!("is required (host:port of the peer's {what} listener)"));
        return Vec::new();
    }
    resolve_addrs(key, s, e, what)
}

/// The `ringfront check` lines of a cluster: one for the cluster, one per
/// peer with its share of the keys. `via`: `server.via`, which should be
/// this host's id (SPEC §8) so that Cache-Status names the host.
pub(super) fn describe(c: &Cluster, via: &str) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let me = c.peers.get(c.self_peer).map_or("", |p| p.id.as_str());
    let _ = writeln!(
        o,
        "cluster {:?}: self = {me:?}, {} peers, connection_timeout = {}, response_timeout = {}, fast_fail_after = {}, fast_fail_probe_interval = {}, store_peer_fetches = {}",
        c.id,
        c.peers.len(),
        Dur(c.connection_timeout),
        Dur(c.response_timeout),
        c.fast_fail_after,
        Dur(c.fast_fail_probe_interval),
        c.store_peer_fetches
    );
    if via != me {
        let _ = writeln!(
            o,
            "  server.via = {via:?}: set it to {me:?} so each host's Cache-Status member names it (SPEC §8)"
        );
    }
    let shares = c.ring.shares();
    for (i, p) in c.peers.iter().enumerate() {
        let list = |a: &[SocketAddr]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ");
        let admin = match &p.admin {
            Some(a) => format!("{a} ({})", list(&p.admin_addrs)),
            None => "none".into(),
        };
        let _ = writeln!(
            o,
            "  peer {:?}{}: {} ({}), admin {admin}, owns {:.1}% of keys",
            p.id,
            if c.is_self(i) { " (self)" } else { "" },
            p.address,
            list(&p.addrs),
            shares.get(i).copied().unwrap_or(0.0) * 100.0
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;
    use std::time::Duration;

    const BASE: &str =
        "[[origin]]\nid = \"o\"\naddress = \"127.0.0.1:9001\"\n\n[[behavior]]\npath = \"*\"\ntarget = \"o\"\n";

    fn cluster(body: &str) -> Result<Config, Vec<ConfigError>> {
        Config::from_str(&format!("{BASE}\n[cluster]\n{body}"), Path::new("."))
    }

    const PEERS: &str = "peers = [\n  { id = \"edge-a\", address = \"127.0.0.1:8080\", admin = \"127.0.0.1:9901\" },\n  { id = \"edge-b\", address = \"127.0.0.2:8080\" },\n]\n";

    #[test]
    fn defaults_and_resolution() {
        let c = cluster(&format!("id = \"site-edge\"\nself = \"edge-b\"\n{PEERS}")).unwrap();
        let k = c.cluster.expect("a cluster");
        assert_eq!(k.id, "site-edge");
        assert_eq!(k.self_peer, 1);
        assert!(k.is_self(1) && !k.is_self(0));
        assert_eq!(k.connection_timeout, Duration::from_secs(1));
        assert_eq!(k.response_timeout, Duration::from_secs(10));
        assert_eq!(k.fast_fail_after, 1);
        assert_eq!(k.fast_fail_probe_interval, Duration::from_secs(2));
        assert!(k.store_peer_fetches);
        assert_eq!(k.peers[0].addrs, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(k.peers[0].admin_addrs, vec!["127.0.0.1:9901".parse().unwrap()]);
        assert_eq!(k.peers[1].admin, None);
        assert!(k.peers[1].admin_addrs.is_empty());
        // The ring is the ring of the peer ids, whatever else the config says.
        assert_eq!(k.ring, crate::cluster::Ring::new(&["edge-a", "edge-b"]).unwrap());
    }

    #[test]
    fn no_cluster_section_no_cluster() {
        let c = Config::from_str(BASE, Path::new(".")).unwrap();
        assert!(c.cluster.is_none());
    }

    #[test]
    fn equal_configs_give_equal_rings_on_every_host() {
        let a = cluster(&format!("id = \"x\"\nself = \"edge-a\"\n{PEERS}")).unwrap();
        let b = cluster(&format!(
            "id = \"x\"\nself = \"edge-b\"\nconnection_timeout = \"3s\"\n{PEERS}"
        ))
        .unwrap();
        let (a, b) = (a.cluster.unwrap(), b.cluster.unwrap());
        assert_eq!(a.ring, b.ring);
        for i in 0..100 {
            let key = format!("h\0/{i}");
            assert_eq!(a.owner(key.as_bytes()), b.owner(key.as_bytes()));
        }
    }

    #[test]
    fn missing_keys_are_named() {
        let e = cluster("").unwrap_err();
        let keys: Vec<&str> = e.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["cluster.id", "cluster.peers", "cluster.self"], "{e:?}");
        let e = cluster("id = \"x\"\nself = \"edge-a\"\npeers = [{ id = \"edge-a\" }]\n").unwrap_err();
        assert_eq!(e[0].key, "cluster.peers[0].address", "{e:?}");
        assert_eq!(e[0].line, Some(12), "{e:?}");
    }

    #[test]
    fn two_peers_at_one_address_are_refused() {
        let t = PEERS.replace("127.0.0.2:8080", "127.0.0.1:8080");
        let e = cluster(&format!("id = \"x\"\nself = \"edge-a\"\n{t}")).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].key, "cluster.peers[1].address");
        assert!(e[0].message.contains("peers[0]"), "{e:?}");
    }
}
