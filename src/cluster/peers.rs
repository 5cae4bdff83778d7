//! Where a cluster host sends a cacheable miss (SPEC §8): to the key's
//! owner on the ring, unless the owner is this host or is marked down.
//!
//! A peer is marked down after `fast_fail_after` failed connects in a row
//! (counted across requests and workers); while down, its keys go straight
//! to the origin group, except one request per `fast_fail_probe_interval`
//! that still tries it, and the first successful connect ends the outage.
//! That is `primary_fast_fail`'s mechanism ([`Health`]), always on here:
//! a dead peer would otherwise cost every request for a third of the keys
//! one `connection_timeout`.
//!
//! Only the owner is tried: a down owner's keys are not moved to the next
//! peer on the ring (nginx's `owner_excluding`), since the next peer does not
//! hold them either; this host fetches from the origin group itself.

use crate::config::Cluster;
use crate::origin::health::{Health, Rule};
use std::time::Instant;

/// What this host knows of the peers' health, one entry per peer.
#[derive(Debug, Default)]
pub struct PeerHealth {
    peers: Vec<Health>,
}

fn rule(c: &Cluster) -> Rule {
    Rule {
        after: c.fast_fail_after,
        probe_interval: c.fast_fail_probe_interval,
    }
}

impl PeerHealth {
    /// Fresh state for the peers of `c` (none without a cluster).
    pub fn new(c: Option<&Cluster>) -> PeerHealth {
        let epoch = Instant::now();
        let n = c.map_or(0, |c| c.peers.len());
        PeerHealth {
            peers: (0..n).map(|_| Health::new(epoch)).collect(),
        }
    }

    /// The peer to fetch the key `url_key` (a cache key's URL part) from:
    /// its owner, when that is another host and not skipped as down (see
    /// the module doc; a skip is decided once per call, so call it once
    /// per fetch).
    pub fn route(&self, c: &Cluster, url_key: &[u8], now: Instant) -> Option<usize> {
        let owner = c.owner(url_key);
        if c.is_self(owner) {
            return None;
        }
        let h = self.peers.get(owner)?;
        (!h.skip(rule(c), now)).then_some(owner)
    }

    /// A connect to `peer` failed.
    pub fn connect_failed(&self, c: &Cluster, peer: usize, now: Instant) {
        let (Some(h), Some(p)) = (self.peers.get(peer), c.peers.get(peer)) else {
            return;
        };
        if h.connect_failed(rule(c), now) {
            log::warn!(
                "cluster peer {:?} marked down after {} connect failure(s) in a row; its keys go to the \
                 origin group, probing every {:?}",
                p.id,
                c.fast_fail_after,
                c.fast_fail_probe_interval
            );
        }
    }

    /// A connect to `peer` succeeded.
    pub fn connect_ok(&self, c: &Cluster, peer: usize) {
        let (Some(h), Some(p)) = (self.peers.get(peer), c.peers.get(peer)) else {
            return;
        };
        if h.connect_ok(rule(c)) {
            log::info!("cluster peer {:?} is back", p.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::time::Duration;

    fn cluster(self_id: &str) -> Cluster {
        let text = format!(
            "[[origin]]\nid = \"o\"\naddress = \"127.0.0.1:9\"\n\
             [[behavior]]\npath = \"*\"\ntarget = \"o\"\n\
             [cluster]\nid = \"c\"\nself = \"{self_id}\"\nfast_fail_probe_interval = \"1s\"\npeers = [\n\
             {{ id = \"a\", address = \"127.0.0.1:1001\" }},\n\
             {{ id = \"b\", address = \"127.0.0.1:1002\" }},\n]\n"
        );
        Config::from_str(&text, std::path::Path::new("."))
            .unwrap()
            .cluster
            .unwrap()
    }

    /// A key `want` owns.
    fn key_of(c: &Cluster, want: usize) -> Vec<u8> {
        (0..)
            .map(|i| format!("h\0/k{i}").into_bytes())
            .find(|k| c.owner(k) == want)
            .unwrap()
    }

    #[test]
    fn the_owner_is_asked_unless_it_is_this_host() {
        let c = cluster("a");
        let h = PeerHealth::new(Some(&c));
        let now = Instant::now();
        assert_eq!(h.route(&c, &key_of(&c, 1), now), Some(1));
        assert_eq!(h.route(&c, &key_of(&c, 0), now), None);
    }

    #[test]
    fn a_down_owner_is_skipped_but_for_one_probe_per_interval() {
        let c = cluster("a");
        let h = PeerHealth::new(Some(&c));
        let k = key_of(&c, 1);
        let t0 = Instant::now();
        h.connect_failed(&c, 1, t0);
        assert_eq!(h.route(&c, &k, t0), None);
        let probe = t0 + Duration::from_secs(1);
        assert_eq!(h.route(&c, &k, probe), Some(1));
        assert_eq!(h.route(&c, &k, probe), None);
        h.connect_ok(&c, 1);
        assert_eq!(h.route(&c, &k, probe), Some(1));
        // Out of range: nothing happens.
        h.connect_failed(&c, 7, t0);
        h.connect_ok(&c, 7);
    }
}
