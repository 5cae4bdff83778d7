//! Which requests a cluster host fetches from a peer (SPEC §8).
//!
//! A cacheable miss — GET or HEAD on a caching behavior, without a body
//! (what has a cache key) — goes to its key's owner first, unless:
//!
//! - it carries `Authorization`: its response is this viewer's, stored
//!   only when the origin says so (RFC 9111 §3.5), and never another
//!   host's business;
//! - it carries this cluster's `CDN-Loop` token (RFC 8586): it came from a
//!   peer, and is served from this host's cache or its own origin fetch,
//!   collapsed with viewers' requests for the key like any other (a host
//!   that thinks another owns the key, in the middle of a reload, does not
//!   send it on: no loop);
//! - the owner is this host, or is marked down (`cluster::PeerHealth`).
//!
//! The owner is looked up by the URL part of the key, so every variant of
//! a URL has one owner, which holds all of them.

use super::Worker;
use crate::http::parse::RequestHead;
use std::time::Instant;

/// The peer (an index into `[cluster] peers`) the request `(buf, head)`,
/// whose cache key is `key`, is fetched from first; `None`: the origin
/// group. Called once per fetch: a down peer's probe is handed out here.
pub(super) fn first_hop(w: &Worker, (buf, head): (&[u8], &RequestHead), key: &[u8]) -> Option<usize> {
    let c = w.cfg.cluster.as_ref()?;
    if head.header(buf, b"authorization").is_some() {
        return None;
    }
    let loops = crate::cache::vary::request_lines(buf, head, b"cdn-loop");
    if crate::http::cdn_loop::carries(loops, c.id.as_bytes()) {
        return None;
    }
    let url = key.get(..crate::cache::key::url_len(key)).unwrap_or(key);
    w.peers.route(c, url, Instant::now())
}
