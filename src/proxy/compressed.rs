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
use crate::compress::{self, Coding, Facts, StreamSlot};
use crate::config::Behavior;
use crate::http::parse::RequestHead;
use crate::http::response::RespBody;
use bytes::Bytes;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// The normalised Accept-Encoding values of the three variants, identity
/// first, then [`Coding::ALL`]'s order.
const VALUES: [&[u8]; 3] = [b"identity", b"br", b"gzip"];

/// Stores the recorded response `r` (compressed too, when it may be) and
/// returns whether it was stored and the object that answers `request`
/// (its buffer and head): the variant its Accept-Encoding selects.
pub(super) async fn store(
    store: &Arc<Store>,
    behavior: &Behavior,
    r: &Recording,
    (buf, request): (&[u8], &RequestHead),
) -> (bool, Arc<Object>) {
    if may_compress(behavior, request.method.of(buf), &r.obj) {
        let asked = normalize_accept_encoding(request_lines(buf, request, b"accept-encoding"));
        if let Some(answer) = store_coded(store, r, asked).await {
            return answer;
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

/// The keys of the three variants of `r` (in [`VALUES`]' order) and the
/// names each varies on; `None` when the key cannot take one more name.
fn keys(r: &Recording) -> Option<[(Vec<u8>, Vary); 3]> {
    let mut out = Vec::with_capacity(3);
    for value in VALUES {
        let (names, key) = vary::with_value(&r.key, &r.vary, b"accept-encoding", value)?;
        out.push((key, names));
    }
    out.try_into().ok()
}

/// Compresses `r`'s body on the pool ([`compress::pool`], off the event
/// loop) and stores the three variants; returns whether they were stored
/// and the object for `asked`. The request (and those waiting on its
/// flight, released after this) waits up to
/// [`pool::budget`](compress::pool::budget) so that each gets its own
/// coding. Past that, a pool starved by busy workers does not hold it up:
/// the identity object is stored under all three keys, so no request for
/// the URL goes to the origin meanwhile, and each coded variant replaces
/// its stand-in when the pool is done ([`Upgrade`]), unless the URL was
/// invalidated or stored again meanwhile ([`Store::replace`]).
async fn store_coded(store: &Arc<Store>, r: &Recording, asked: &[u8]) -> Option<(bool, Arc<Object>)> {
    let [identity_key, br_key, gzip_key] = keys(r)?;
    let identity = Arc::new(coded(&r.obj, None, r.obj.body.clone()));
    let i = VALUES.iter().position(|v| *v == asked).unwrap_or(0);
    let handoff = Rc::new(RefCell::new(Handoff::default()));
    if let Some(jobs) = compress::pool::submit_all(&r.obj.body) {
        let (done, finished) = compress::oneshot::channel();
        let up = Upgrade {
            store: store.clone(),
            keys: [br_key.clone(), gzip_key.clone()],
            original: r.obj.clone(),
            handoff: handoff.clone(),
        };
        monoio::spawn(up.run(jobs, done));
        let _ = monoio::time::timeout(compress::pool::budget(r.obj.body.len()), finished).await;
    }
    let keys = [identity_key, br_key, gzip_key];
    let bodies = handoff.borrow_mut().bodies.take();
    let objects: [Arc<Object>; 3] = match bodies {
        Some([br, gzip]) => [
            identity.clone(),
            worth(&r.obj, Coding::Br, br).unwrap_or_else(|| identity.clone()),
            worth(&r.obj, Coding::Gzip, gzip).unwrap_or(identity),
        ],
        None => {
            handoff.borrow_mut().stand_in = Some(identity.clone());
            [identity.clone(), identity.clone(), identity]
        }
    };
    let mut stored = [false; 3];
    for (((key, names), obj), ok) in keys.iter().zip(&objects).zip(&mut stored) {
        // A coded variant the store refuses (past max_object_size) leaves
        // the identity one in its place: else every request of that coding
        // would go to the origin and be compressed again.
        *ok = store.insert_with_vary(key, names, obj.clone())
            || (!Arc::ptr_eq(obj, &objects[0]) && store.insert_with_vary(key, names, objects[0].clone()));
    }
    let answer = if stored[i] {
        objects[i].clone()
    } else {
        objects[0].clone()
    };
    Some((stored[0], answer))
}

/// The coded representation of `original` whose body is `body`, when it
/// is smaller than the identity one (random bytes labelled text are not:
/// then the identity variant serves that coding too).
fn worth(original: &Object, coding: Coding, body: Vec<u8>) -> Option<Arc<Object>> {
    (body.len() < original.body.len())
        .then(|| Arc::new(coded(original, Some(coding), Bytes::from(body.into_boxed_slice()))))
}

/// What the pool's task and the request that stored a response pass each
/// other (one thread: the worker's).
#[derive(Default)]
struct Handoff {
    /// The br and gzip bodies, when the pool finished while the request
    /// still waited.
    bodies: Option<[Vec<u8>; 2]>,
    /// The identity object stored in the coded variants' place, once the
    /// request stopped waiting: the task then stores them itself.
    stand_in: Option<Arc<Object>>,
}

/// The coded variants of one stored response, waited for on a task of
/// their own.
struct Upgrade {
    store: Arc<Store>,
    /// The br and gzip variants' keys and names.
    keys: [(Vec<u8>, Vary); 2],
    /// The response as recorded.
    original: Arc<Object>,
    handoff: Rc<RefCell<Handoff>>,
}

impl Upgrade {
    /// Waits (at most [`pool::patience`](compress::pool::patience)) for the
    /// pool's two codings; hands them to the request if it still waits,
    /// else stores each in place of its stand-in. Then says it is done.
    async fn run(self, [br, gzip]: [compress::oneshot::Receiver<Vec<u8>>; 2], done: compress::oneshot::Sender<()>) {
        let both = async { Some([br.await?, gzip.await?]) };
        let patience = compress::pool::patience(self.original.body.len());
        let Ok(Some(bodies)) = monoio::time::timeout(patience, both).await else {
            return;
        };
        let stand_in = self.handoff.borrow().stand_in.clone();
        match stand_in {
            None => self.handoff.borrow_mut().bodies = Some(bodies),
            Some(stand_in) => {
                for ((key, names), (coding, body)) in self.keys.iter().zip(Coding::ALL.into_iter().zip(bodies)) {
                    if let Some(obj) = worth(&self.original, coding, body) {
                        self.store.replace(key, names, &stand_in, obj);
                    }
                }
            }
        }
        done.send(());
    }
}

/// `obj` as the representation in `coding` (`None`: identity) whose body
/// is `body`: its head rewritten ([`compress::head::rewrite`]), a weak
/// ETag for a coded one, the rest as `obj`'s.
fn coded(obj: &Object, coding: Option<Coding>, body: Bytes) -> Object {
    let mut head = Vec::with_capacity(obj.head.len() + 64);
    compress::head::rewrite(&obj.head, coding, Some(body.len() as u64), &mut head);
    Object {
        head: Bytes::from(head.into_boxed_slice()),
        body,
        status: obj.status,
        stored: obj.stored,
        initial_age: obj.initial_age,
        ttl: obj.ttl,
        stale_while_revalidate: obj.stale_while_revalidate,
        stale_if_error: obj.stale_if_error,
        // The origin's tag, to revalidate with; the head shows a coded
        // variant's weak form ([`compress::head::rewrite`]).
        etag: obj.etag.clone(),
        last_modified: obj.last_modified.clone(),
    }
}

/// The coding a response about to stream through (not stored: the
/// behavior does not cache, or the response may not be stored) is
/// compressed in on the fly: the one the viewer's Accept-Encoding selects,
/// when the response may be compressed and its head gives its length.
pub(super) fn on_the_fly(ex: &Exchange<'_>, v: &Viewer) -> Option<(Coding, StreamSlot)> {
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
    .then(StreamSlot::take)
    .flatten()
    .map(|slot| (coding, slot))
}
