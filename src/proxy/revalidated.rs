//! What an origin's 304, or its 200 to a HEAD, makes of the stored object
//! (RFC 9111 §4.3.4, §4.3.5): the I/O side of [`cache::update`], for the
//! revalidation of a viewer's request ([`forward`](super::forward)) and the
//! background refresh ([`refresh`](super::refresh)) alike.
//!
//! The update itself is pure ([`admission::refreshed`]): the stored head
//! merged with the response's fields (§3.2), freshness read from the merged
//! head, the same body `Bytes`. It replaces the stored object; a merged
//! response that may no longer be stored (`no-store` arrived) removes it.

use super::exchange::Exchange;
use crate::cache::admission;
use crate::cache::store::{Object, Store};
use crate::cache::update::{self, Validators};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The validators of a stored object.
fn stored(o: &Object) -> Validators<'_> {
    Validators {
        etag: o.etag.as_deref(),
        last_modified: o.last_modified.as_deref(),
    }
}

/// Whether `o` is a representation ringfront coded (`compress`): its head
/// says `W/` and the origin's strong tag, which [`Object::etag`] holds.
fn weakened_etag(o: &Object) -> bool {
    let Some(origin) = o.etag.as_deref() else { return false };
    let shown = update::index(&o.head, o.status)
        .header(&o.head, b"etag")
        .map(<[u8]>::trim_ascii);
    !origin.starts_with(b"W/") && shown.and_then(|t| t.strip_prefix(b"W/")) == Some(origin.trim_ascii())
}

/// Whether the 304 the exchange holds validates `old`, the object its
/// conditional request was made from (§4.3.4); if not, it updates nothing.
pub(super) fn validates(ex: &Exchange<'_>, old: &Object) -> bool {
    update::selects(stored(old), Validators::of(&ex.buf, &ex.head), SystemTime::now())
}

/// `old` updated by the response the exchange holds, stored under `key`
/// when there is one (or the key's object removed, when the update may not
/// be stored). Returns the updated object and whether it was stored.
pub(super) fn update(ex: &Exchange<'_>, at: Option<(&Store, &[u8])>, old: &Object) -> (Arc<Object>, bool) {
    let policy = super::record::policy(ex.behavior);
    let actions = &ex.behavior.origin_response;
    // A compressed variant shows a weak ETag (its bytes are not the
    // origin's) and keeps the origin's tag to revalidate with: the 304's
    // strong tag must not replace the weak one (RFC 9110 §8.8.1).
    let weakened = weakened_etag(old);
    let r = admission::refreshed(
        old,
        (&ex.buf, &ex.head),
        &policy,
        |name| actions.touches(name) || (weakened && name.eq_ignore_ascii_case(b"etag")),
        (Instant::now(), SystemTime::now()),
    );
    let mut obj = r.obj;
    if weakened {
        obj.etag = old.etag.clone();
    }
    let obj = Arc::new(obj);
    let stored = match at {
        Some((store, key)) if r.storable => store.insert(key, obj.clone()),
        Some((store, key)) => {
            store.remove(key);
            false
        }
        None => false,
    };
    (obj, stored)
}

/// A HEAD's 200 (the exchange's response): the GET stored under `key`,
/// updated and stored again when the response matches it (§4.3.5). `None`:
/// nothing stored, or it did not match; then "the cache SHOULD consider the
/// stored response to be stale", which it already is (a HEAD goes to the
/// origin only when its object is stale or missing).
pub(super) fn head_update(ex: &Exchange<'_>, store: &Store, key: &[u8]) -> Option<(Arc<Object>, bool)> {
    let old = store.get(key)?;
    let new = Validators::of(&ex.buf, &ex.head);
    let matches = old.status == 200
        && update::head_matches(
            stored(&old),
            old.body.len(),
            new,
            ex.head.content_length,
            SystemTime::now(),
        );
    matches.then(|| update(ex, Some((store, key)), &old))
}
