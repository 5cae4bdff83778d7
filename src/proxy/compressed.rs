//! `compress = true` on the cache's side (SPEC §4): a recorded response
//! that may be compressed ([`compress::eligible`]) is stored three times,
//! identity, brotli and gzip, so one origin request serves every viewer
//! and a hit costs no compression.
//!
//! The body is compressed into both codings on the compression pool
//! ([`compress::pool`]), off the event loop, whatever the requester
//! accepts; the three objects are stored as variants keyed by the
//! response's own Vary names and Accept-Encoding, with the values
//! `identity`, `br` and `gzip` ([`vary::with_value`]): the key a later
//! request selects with its normalised Accept-Encoding
//! ([`key::normalize_accept_encoding`]). Each stored head says `Vary:
//! Accept-Encoding`; the coded ones their coding, their own length and a
//! weak ETag ([`compress::head`]). Each object is charged its own body.
//!
//! A response that may not be compressed, or whose compression the pool
//! could not take or finish in time, is stored as it came. A URL whose
//! record has no room for three more variants loses its oldest ones (the
//! store's rule, `MAX_VARIANTS`).
//!
//! A response that is not stored is compressed as it streams through
//! ([`on_the_fly`] decides, `deliver` codes it).

use super::exchange::Exchange;
use super::record::Recording;
use super::viewer::Viewer;
use crate::cache::key::normalize_accept_encoding;
use crate::cache::store::{Object, Store};
use crate::cache::vary::{self, request_lines, Vary};
use crate::compress::{self, Coding, Facts};
use crate::config::Behavior;
use crate::http::parse::RequestHead;
use crate::http::response::RespBody;
use bytes::Bytes;
use std::sync::Arc;

/// The normalised Accept-Encoding values of the three variants, identity
/// first, then [`Coding::ALL`]'s order.
const VALUES: [&[u8]; 3] = [b"identity", b"br", b"gzip"];

/// Stores the recorded response `r` (compressed too, when it may be) and
/// returns whether it was stored and the object that answers `request`
/// (its buffer and head): the variant its Accept-Encoding selects.
pub(super) async fn store(
    store: &Store,
    behavior: &Behavior,
    r: &Recording,
    (buf, request): (&[u8], &RequestHead),
) -> (bool, Arc<Object>) {
    if may_compress(behavior, request.method.of(buf), &r.obj) {
        if let Some(variants) = compressed(r).await {
            let stored = variants
                .iter()
                .all(|(key, names, obj)| store.insert_with_vary(key, names, obj.clone()));
            let asked = normalize_accept_encoding(request_lines(buf, request, b"accept-encoding"));
            let i = VALUES.iter().position(|v| *v == asked).unwrap_or(0);
            return (stored, variants[i].2.clone());
        }
    }
    (r.store_in(store), r.obj.clone())
}

/// Whether the stored response `obj` to a request of `method` is
/// compressed, read off its stored head.
fn may_compress(b: &Behavior, method: &[u8], obj: &Object) -> bool {
    if !b.compress {
        return false;
    }
    let fields = crate::cache::update::index(&obj.head, obj.status);
    let ce = fields.header_list(&obj.head, b"content-encoding");
    let cc = fields.header_list(&obj.head, b"cache-control");
    compress::eligible(&Facts {
        enabled: true,
        method,
        status: obj.status,
        content_encoding: ce.as_deref(),
        cache_control: cc.as_deref(),
        content_type: fields.header(&obj.head, b"content-type"),
        len: Some(obj.body.len() as u64),
    })
}

/// A variant to store: its key, the names it varies on, the object.
type Variant = (Vec<u8>, Vary, Arc<Object>);

/// The three variants of `r` (in [`VALUES`]' order); `None` when the pool
/// did not compress the body, or the key cannot take one more name.
async fn compressed(r: &Recording) -> Option<[Variant; 3]> {
    let [br, gzip] = compress::pool::compress_all(&r.obj.body).await?;
    let bodies = [
        (None, r.obj.body.clone()),
        (Some(Coding::Br), Bytes::from(br.into_boxed_slice())),
        (Some(Coding::Gzip), Bytes::from(gzip.into_boxed_slice())),
    ];
    let mut out = Vec::with_capacity(3);
    for (value, (coding, body)) in VALUES.into_iter().zip(bodies) {
        let (names, key) = vary::with_value(&r.key, &r.vary, b"accept-encoding", value)?;
        out.push((key, names, Arc::new(coded(&r.obj, coding, body))));
    }
    out.try_into().ok()
}

/// `obj` as the representation in `coding` (`None`: identity) whose body
/// is `body`: its head rewritten ([`compress::head::rewrite`]), a weak
/// ETag for a coded one, the rest as `obj`'s.
fn coded(obj: &Object, coding: Option<Coding>, body: Bytes) -> Object {
    let mut head = Vec::with_capacity(obj.head.len() + 64);
    compress::head::rewrite(&obj.head, coding, Some(body.len() as u64), &mut head);
    let etag = match coding {
        None => obj.etag.clone(),
        Some(_) => obj.etag.as_deref().map(|t| {
            let mut weak = Vec::with_capacity(t.len() + 2);
            compress::head::weak_etag(t, &mut weak);
            Bytes::from(weak)
        }),
    };
    Object {
        head: Bytes::from(head.into_boxed_slice()),
        body,
        status: obj.status,
        stored: obj.stored,
        initial_age: obj.initial_age,
        ttl: obj.ttl,
        stale_while_revalidate: obj.stale_while_revalidate,
        stale_if_error: obj.stale_if_error,
        etag,
        last_modified: obj.last_modified.clone(),
    }
}

/// The coding a response about to stream through (not stored: the
/// behavior does not cache, or the response may not be stored) is
/// compressed in on the fly: the one the viewer's Accept-Encoding selects,
/// when the response may be compressed and its head gives its length.
pub(super) fn on_the_fly(ex: &Exchange<'_>, v: &Viewer) -> Option<Coding> {
    if !ex.behavior.compress {
        return None;
    }
    let asked = normalize_accept_encoding(request_lines(v.buf(), v.head(), b"accept-encoding"));
    let coding = Coding::accepted(asked)?;
    let (buf, head) = (&ex.buf, &ex.head);
    let ce = head.header_list(buf, b"content-encoding");
    let cc = head.header_list(buf, b"cache-control");
    let len = match head.body() {
        RespBody::Length(n) => Some(n),
        _ => None,
    };
    compress::eligible(&Facts {
        enabled: true,
        method: v.method(),
        status: head.status,
        content_encoding: ce.as_deref(),
        cache_control: cc.as_deref(),
        content_type: head.header(buf, b"content-type"),
        len,
    })
    .then_some(coding)
}
