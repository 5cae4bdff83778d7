//! The owner of a cache key (SPEC §8): ketama consistent hashing placed as
//! nginx's `hash $key consistent` places it, so a ring of ringfront peers
//! and an nginx upstream of the same names pick the same owner.
//!
//! Placement (ngx_http_upstream_hash_module.c, `init_chash`; the scheme of
//! Cache::Memcached::Fast): a name is split at its last `:` into host and
//! port (a name without one is all host, with an empty port); its base
//! hash is CRC-32 over `host NUL port`. Its 160 points are, in turn,
//! `crc32(base ‖ prev)` where `prev` is the previous point's hash as four
//! little-endian bytes (0 for the first). The points of all names are
//! sorted by hash and equal hashes kept once. A key's hash is CRC-32 of its
//! bytes; its owner is the name of the first point whose hash is at least
//! the key's, wrapping past the last point to the first (`find_chash_point`
//! with `point % number`). When that peer is down, nginx steps on to the
//! next point, and so does [`Ring::owner_excluding`].
//!
//! Peer ids are tokens (RFC 9110 §5.6.2), which hold no `:`, so an id is
//! hashed as nginx hashes a `server` named without a port. Where nginx
//! leaves a tie between two names' equal points to its unstable sort, the
//! point here stays with the smaller name, so the ring is a function of the
//! set of ids alone: equal peer lists, in any order, give equal owners.
//!
//! Build once per config (allocates the points); [`Ring::owner`] is a
//! binary search that allocates nothing.
//!
//! Why not a crate: pingora-ketama (Cloudflare's port of this algorithm,
//! well kept) places points by a `SocketAddr`, so its owners would follow
//! peer addresses rather than ids (SPEC §8: 160 points per peer id), and a
//! host given a new address would lose its keys; the other ring crates use
//! other hashes (MD5 libmemcached ketama, FNV) and are not nginx's. This is
//! the same placement over names, on `crc32fast` (the CRC that crate uses),
//! checked below against owners nginx chose.

/// Points per peer (nginx: 160 per unit of weight; every peer weighs 1).
pub const POINTS_PER_PEER: usize = 160;

/// One point: its place on the circle and the index of the peer it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    hash: u32,
    peer: u32,
}

/// The ring of a non-empty list of peer ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// Sorted by hash, each hash once; never empty.
    points: Box<[Point]>,
    peers: usize,
}

impl Ring {
    /// The ring of `ids` (peer indices are positions in `ids`); `None` when
    /// `ids` is empty or longer than `u32::MAX` (no ring to hash onto).
    pub fn new<S: AsRef<str>>(ids: &[S]) -> Option<Ring> {
        if ids.is_empty() || u32::try_from(ids.len()).is_err() {
            return None;
        }
        let mut points = Vec::with_capacity(ids.len().saturating_mul(POINTS_PER_PEER));
        for (peer, id) in (0u32..).zip(ids) {
            place(id.as_ref(), peer, &mut points);
        }
        // Equal hashes: the point stays with the smaller name (see above).
        points.sort_unstable_by(|a, b| {
            a.hash
                .cmp(&b.hash)
                .then_with(|| name(ids, a.peer).cmp(name(ids, b.peer)))
                .then_with(|| a.peer.cmp(&b.peer))
        });
        points.dedup_by_key(|p| p.hash);
        Some(Ring {
            points: points.into_boxed_slice(),
            peers: ids.len(),
        })
    }

    /// How many peers the ring was built from.
    pub fn peers(&self) -> usize {
        self.peers
    }

    /// The index of the peer that owns `key` (for a cache key, its URL
    /// part, `&key[..cache::key::url_len(key)]`, so every variant of a URL
    /// has one owner).
    pub fn owner(&self, key: &[u8]) -> usize {
        self.peer_at(self.first_point(key))
    }

    /// The owner of `key` among the peers that are not `down`: the peer of
    /// the first point, walking on from the key's, whose peer is up (nginx's
    /// next point on failure). `None` when every peer is down. At most one
    /// lap of the ring, `down` asked once per point met.
    pub fn owner_excluding(&self, key: &[u8], down: impl Fn(usize) -> bool) -> Option<usize> {
        let start = self.first_point(key);
        let n = self.points.len();
        (0..n)
            .map(|step| self.peer_at((start + step) % n))
            .find(|&peer| !down(peer))
    }

    /// Each peer's share of the hash space (0.0..=1.0, summing to 1), for
    /// `ringfront check`: a point owns the arc from the point before it.
    pub fn shares(&self) -> Vec<f64> {
        let mut arcs = vec![0u64; self.peers];
        let mut prev = self.points.last().map_or(0, |p| p.hash);
        for p in self.points.iter() {
            // The first point's arc wraps past u32::MAX; modular distance.
            let arc = u64::from(p.hash.wrapping_sub(prev));
            let arc = if arc == 0 { 1u64 << 32 } else { arc };
            if let Some(a) = arcs.get_mut(p.peer as usize) {
                *a += arc;
            }
            prev = p.hash;
        }
        arcs.iter().map(|&a| a as f64 / (1u64 << 32) as f64).collect()
    }

    /// The index of the first point at or after the key's hash, wrapping.
    fn first_point(&self, key: &[u8]) -> usize {
        let h = crc32fast::hash(key);
        let i = self.points.partition_point(|p| p.hash < h);
        if i == self.points.len() {
            0
        } else {
            i
        }
    }

    fn peer_at(&self, i: usize) -> usize {
        self.points.get(i).map_or(0, |p| p.peer as usize)
    }
}

fn name<S: AsRef<str>>(ids: &[S], peer: u32) -> &str {
    ids.get(peer as usize).map_or("", |s| s.as_ref())
}

/// Appends the [`POINTS_PER_PEER`] points of one name, as nginx's
/// `init_chash` computes them.
fn place(name: &str, peer: u32, points: &mut Vec<Point>) {
    let (host, port) = match name.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (name, ""),
    };
    let mut base = crc32fast::Hasher::new();
    base.update(host.as_bytes());
    base.update(&[0]);
    base.update(port.as_bytes());
    let mut prev = 0u32;
    for _ in 0..POINTS_PER_PEER {
        let mut h = base.clone();
        h.update(&prev.to_le_bytes());
        prev = h.finalize();
        points.push(Point { hash: prev, peer });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: [&str; 3] = ["edge-a", "edge-b", "edge-c"];

    fn ring(ids: &[&str]) -> Ring {
        Ring::new(ids).expect("a ring")
    }

    /// Cache keys as `cache::key::build` writes them: host NUL path.
    fn keys(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("www.example.com\0/objects/{i}.jpg").into_bytes())
            .collect()
    }

    fn owner_id<'a>(ids: &[&'a str], r: &Ring, key: &[u8]) -> &'a str {
        ids[r.owner(key)]
    }

    #[test]
    fn an_empty_peer_list_has_no_ring() {
        assert!(Ring::new::<&str>(&[]).is_none());
    }

    #[test]
    fn each_peer_places_160_points() {
        let r = ring(&ABC);
        assert_eq!(r.peers(), 3);
        assert_eq!(r.points.len(), 3 * POINTS_PER_PEER);
        assert!(r.points.windows(2).all(|w| w[0].hash < w[1].hash));
    }

    #[test]
    fn owners_are_deterministic_and_independent_of_the_peer_order() {
        let a = ring(&ABC);
        let b = ring(&ABC);
        assert_eq!(a, b);
        let shuffled = ["edge-c", "edge-a", "edge-b"];
        let c = ring(&shuffled);
        for k in keys(500) {
            assert_eq!(owner_id(&ABC, &a, &k), owner_id(&ABC, &b, &k));
            assert_eq!(owner_id(&ABC, &a, &k), owner_id(&shuffled, &c, &k));
        }
    }

    /// Owners that nginx's `hash $request_uri consistent` chose for an
    /// upstream of `server 127.0.0.1:7777; server 127.0.0.1:7778;`, as
    /// recorded by pingora-ketama's tests of the same algorithm.
    #[test]
    fn names_with_a_port_are_placed_as_nginx_places_them() {
        let ids = ["127.0.0.1:7777", "127.0.0.1:7778"];
        let r = ring(&ids);
        for (uri, want) in [
            ("/some/path", "127.0.0.1:7778"),
            ("/some/longer/path", "127.0.0.1:7777"),
            ("/sad/zaidoon", "127.0.0.1:7778"),
            ("/g", "127.0.0.1:7777"),
            ("/pingora/team/is/cool/and/this/is/a/long/uri", "127.0.0.1:7778"),
            ("/i/am/not/confident/in/this/code", "127.0.0.1:7777"),
        ] {
            assert_eq!(owner_id(&ids, &r, uri.as_bytes()), want, "{uri}");
        }
    }

    /// nginx walks on to the next point when a peer is down: for "doghash"
    /// over :7777, :7778, :7779 the points met are :7778, :7779, :7779,
    /// :7777 (pingora-ketama's record of the same walk).
    #[test]
    fn a_down_owner_passes_its_key_to_the_next_point_on_the_ring() {
        let ids = ["127.0.0.1:7777", "127.0.0.1:7778", "127.0.0.1:7779"];
        let r = ring(&ids);
        assert_eq!(r.owner(b"doghash"), 1);
        assert_eq!(r.owner_excluding(b"doghash", |_| false), Some(1));
        assert_eq!(r.owner_excluding(b"doghash", |p| p == 1), Some(2));
        assert_eq!(r.owner_excluding(b"doghash", |p| p != 0), Some(0));
        assert_eq!(r.owner_excluding(b"doghash", |_| true), None);
    }

    #[test]
    fn two_hundred_keys_spread_over_three_peers() {
        let r = ring(&ABC);
        let mut n = [0usize; 3];
        for k in keys(200) {
            n[r.owner(&k)] += 1;
        }
        for (i, c) in n.iter().enumerate() {
            assert!((30..=110).contains(c), "{} owns {c} of 200: {n:?}", ABC[i]);
        }
        let shares = r.shares();
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{shares:?}");
        assert!(shares.iter().all(|s| (0.15..=0.55).contains(s)), "{shares:?}");
    }

    #[test]
    fn removing_a_peer_moves_only_the_keys_it_owned() {
        let before = ring(&ABC);
        let rest = ["edge-a", "edge-c"];
        let after = ring(&rest);
        let mut moved = 0;
        for k in keys(1000) {
            let was = owner_id(&ABC, &before, &k);
            let now = owner_id(&rest, &after, &k);
            if was == "edge-b" {
                moved += 1;
            } else {
                assert_eq!(was, now, "a key of {was} moved to {now}");
            }
            // Removing a peer is the same as marking it down.
            let down = before.owner_excluding(&k, |p| ABC[p] == "edge-b").map(|p| ABC[p]);
            assert_eq!(down, Some(now));
        }
        assert!(moved > 0);
    }

    #[test]
    fn adding_a_peer_moves_about_one_in_n_keys_all_to_it() {
        let before = ring(&ABC);
        let four = ["edge-a", "edge-b", "edge-c", "edge-d"];
        let after = ring(&four);
        let mut moved = 0;
        for k in keys(1000) {
            let was = owner_id(&ABC, &before, &k);
            let now = owner_id(&four, &after, &k);
            if was != now {
                assert_eq!(now, "edge-d", "a key moved from {was} to {now}");
                moved += 1;
            }
        }
        assert!((120..=400).contains(&moved), "{moved} of 1000 keys moved");
    }

    #[test]
    fn a_single_peer_owns_everything() {
        let r = ring(&["edge-a"]);
        assert_eq!(r.shares(), vec![1.0]);
        for k in keys(50) {
            assert_eq!(r.owner(&k), 0);
        }
    }
}
