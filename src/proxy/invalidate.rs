//! Invalidation by unsafe methods (RFC 9111 §4.4), carried out: after a
//! non-error response to an unsafe request, every stored response for the
//! target URI, and for a same-host Location or Content-Location, is
//! removed. Which responses and URIs count is decided in
//! [`crate::cache::invalidation`]; here they become keys.

use super::viewer::Viewer;
use super::Worker;
use crate::cache::invalidation::{invalidates, same_host_target};
use crate::cache::store::Store;
use crate::http::response::ResponseHead;

/// Invalidates what the origin's response `head` (in `buf`) to the request
/// in `v` calls for. Called before the response is answered, so the
/// viewer's next request cannot meet what it just changed.
pub(super) fn after_response(w: &Worker, v: &Viewer, buf: &[u8], head: &ResponseHead) {
    let Some(store) = w.cache.as_deref() else { return };
    if !invalidates(v.method(), head.status) {
        return;
    }
    let mut key = Vec::new();
    remove_uri(w, store, v.host(), v.target(), &mut key);
    let (mut target, mut normal) = (Vec::new(), Vec::new());
    for name in [&b"location"[..], b"content-location"] {
        let Some(value) = head.header(buf, name) else { continue };
        if !same_host_target(value, v.host(), v.target(), &mut target) {
            continue;
        }
        // Keys hold normalised paths (SPEC §3): `/a/./b` names `/a/b`.
        normal.clear();
        let uri = match crate::http::path::normalize(&target, &mut normal) {
            Ok(false) => &target,
            Ok(true) => &normal,
            Err(_) => continue,
        };
        remove_uri(w, store, v.host(), uri, &mut key);
    }
}

/// Removes every stored response for `host` + `target` (path and query),
/// keyed as the behavior its path falls under keys it.
fn remove_uri(w: &Worker, store: &Store, host: &[u8], target: &[u8], key: &mut Vec<u8>) {
    let path = memchr::memchr(b'?', target).map_or(target, |i| &target[..i]);
    let behavior = w.cfg.behavior_for(path);
    if !behavior.cache {
        return;
    }
    key.clear();
    crate::cache::key::build(key, host, target, &behavior.cache_key.query);
    store.remove_url(key);
}
