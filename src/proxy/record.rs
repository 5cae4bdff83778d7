//! A storable response is recorded whole before it is answered (SPEC §3.4:
//! the fetch belongs to the collapsed group, not to its first viewer).
//!
//! The body is read from the origin into the recording (its room reserved
//! against the cache's capacity beforehand), the object is stored, the
//! requests waiting on the key's flight are released to it, and only then
//! is this request's viewer answered, from the stored object, as a hit is.
//! A viewer that reads slowly, or not at all, holds up neither the origin
//! connection nor the waiting requests; it costs the proxy nothing beyond
//! the stored object it shares with them. Responses that cannot be stored
//! stream through ([`deliver`](super::deliver)). A background refresh
//! records the same way ([`record`]) and only stores.

use super::exchange::Exchange;
use super::viewer::Viewer;
use super::{Next, Worker};
use crate::cache::admission::{self, Asked};
use crate::cache::collapse::LeaderGuard;
use crate::cache::freshness::{Lifetime, Policy};
use crate::cache::store::{Object, Store};
use crate::cache::vary::{self, Vary};
use crate::config::Behavior;
use crate::http::parse::RequestHead;
use crate::http::write::{write_stored_head, AttemptCtx, HitLabel, ResponseRewrite, ViewerFraming};
use crate::net;
use crate::origin::pool::OriginConn;
use crate::origin::reuse::{ResponseReader, Reuse};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// The behavior's TTL bounds, as the cache rules take them.
pub(super) fn policy(b: &Behavior) -> Policy {
    Policy {
        min_ttl: b.min_ttl,
        default_ttl: b.default_ttl,
        max_ttl: b.max_ttl,
    }
}

/// A response being recorded for the cache: its room reserved against the
/// cache's capacity, its lifetime decided at the head.
pub(super) struct Capture {
    _room: crate::cache::store::Reservation,
    /// The key it is stored under: its URL's, and the request's values of
    /// the headers it varies on.
    key: Vec<u8>,
    vary: Vary,
    life: Lifetime,
    head: Vec<u8>,
    body: bytes::BytesMut,
    len: u64,
}

impl Capture {
    /// Decides at the head the exchange holds whether the response may be
    /// stored ([`admission::admit`]) and there is room within the recording
    /// share; `Some` starts recording it. `key` is the request's cache key
    /// (its URL's, or a variant's); the response is stored under its URL
    /// and, when it varies, the values `request` (buffer and head) has for
    /// the headers its own Vary names (RFC 9111 §4.1).
    pub(super) fn start(
        ex: &Exchange<'_>,
        key: &[u8],
        (buf, request): (&[u8], &RequestHead),
        asked: Asked,
    ) -> Option<Capture> {
        let w = ex.w;
        let admitted = admission::admit(
            (&ex.buf, &ex.head),
            asked,
            &policy(ex.behavior),
            w.cfg.cache.max_object_size,
            SystemTime::now(),
        )?;
        let mut key = key[..crate::cache::key::url_len(key)].to_vec();
        vary::append_values(&mut key, &admitted.vary, buf, request);
        let charge = admitted.len + ex.head.head_len as u64 + key.len() as u64;
        let room = w.cache.as_ref()?.reserve(charge)?;
        Some(Capture {
            _room: room,
            key,
            vary: admitted.vary,
            life: admitted.life,
            head: Vec::with_capacity(ex.head.head_len + 64),
            body: bytes::BytesMut::with_capacity(admitted.len as usize),
            len: admitted.len,
        })
    }
}

/// A recorded response: its key and what it varies on, the object (not
/// yet stored), and whether the connection may be reused.
pub(super) struct Recording {
    pub key: Vec<u8>,
    pub vary: Vary,
    pub obj: Arc<Object>,
    pub reuse: Reuse,
}

impl Recording {
    /// Stores the object under its key; false when the store refused it.
    pub(super) fn store_in(&self, store: &Store) -> bool {
        store.insert_with_vary(&self.key, &self.vary, self.obj.clone())
    }
}

/// Records the whole response the exchange holds into an object: the
/// stored head, the body read to its end, the validators. `received`: when
/// the request was sent (the object's age counts from then). `None`: the
/// body failed (timeout, reset, bad framing, cut short); nothing is stored.
pub(super) async fn record(
    ex: &mut Exchange<'_>,
    c: &mut OriginConn,
    mut cap: Capture,
    received: Instant,
) -> Option<Recording> {
    stored_head(ex, &mut cap.head);
    let validator = |name: &[u8]| ex.head.header(&ex.buf, name).map(bytes::Bytes::copy_from_slice);
    let (etag, last_modified) = (validator(b"etag"), validator(b"last-modified"));
    let reader = read_body(ex, c, &mut cap).await?;
    let obj = Arc::new(Object {
        stale_while_revalidate: cap.life.stale_while_revalidate,
        stale_if_error: cap.life.stale_if_error,
        etag,
        last_modified,
        initial_age: cap.life.initial_age,
        ..Object::recorded(cap.head, cap.body, ex.head.status, received, cap.life.ttl)
    });
    Some(Recording {
        key: cap.key,
        vary: cap.vary,
        obj,
        reuse: reader.verdict(),
    })
}

/// What recording and answering came to.
pub(super) enum Recorded {
    /// Stored (or not, if the store refused it) and answered.
    Served {
        next: Next,
        status: u16,
        bytes: u64,
        stored: bool,
        /// The origin connection, when it may go back to the pool.
        conn: Option<OriginConn>,
    },
    /// The body failed before anything went to the viewer: nothing is
    /// stored, and the viewer may still get a 502.
    Failed,
}

/// Records the whole response, stores it, releases `leader`'s waiters, and
/// answers the viewer from the stored object.
pub(super) async fn record_then_serve(
    ex: &mut Exchange<'_>,
    v: &mut Viewer,
    mut c: OriginConn,
    cap: Capture,
    (leader, received): (&mut Option<LeaderGuard<'_>>, Instant),
) -> Recorded {
    let Some(r) = record(ex, &mut c, cap, received).await else {
        return Recorded::Failed;
    };
    let stored = ex.w.cache.as_ref().is_some_and(|s| r.store_in(s));
    // The waiters find the object now, whatever this viewer does next.
    if let Some(mut g) = leader.take() {
        if stored {
            g.stored();
        }
    }
    let mut extra = Vec::new();
    let mut ps = Vec::new();
    ex.proxy_status(&mut ps);
    super::answers::proxy_status_line(&mut extra, &ps);
    let (next, status, bytes) = super::hit::answer(ex.w, v, &r.obj, Instant::now(), HitLabel::Stored, &extra).await;
    Recorded::Served {
        next,
        status,
        bytes,
        stored,
        conn: (r.reuse == Reuse::Reusable).then_some(c),
    }
}

/// The head the cache stores: the origin's end-to-end headers, the framing
/// line of ringfront's own, Via, the behavior's actions and the hook lines.
fn stored_head(ex: &Exchange<'_>, out: &mut Vec<u8>) {
    let step = ex.machine.current();
    let rw = ResponseRewrite {
        via: &ex.w.cfg.server.via,
        x_cache: b"",
        cache_status: b"",
        proxy_status: b"",
        actions: &ex.behavior.origin_response,
        ctx: AttemptCtx {
            attempt: ex.machine.attempts(),
            origin: &ex.w.cfg.origins[step.origin].id,
            role: step.role.as_str(),
        },
        framing: ViewerFraming::of(&ex.head, false),
        keep_alive: true,
        viewer_http10: false,
        extra: &ex.hook_lines,
    };
    write_stored_head(out, &ex.buf, &ex.head, &rw);
}

/// Reads the rest of the body into the recording; every read within the
/// origin's `response_timeout`. `None`: it failed or came short.
async fn read_body(ex: &mut Exchange<'_>, c: &mut OriginConn, cap: &mut Capture) -> Option<ResponseReader> {
    let w = ex.w;
    let rt = w.cfg.origins[ex.machine.current().origin].response_timeout;
    let mut reader = ResponseReader::after_head(&ex.head);
    let first = ex.buf.get(ex.head.head_len..).unwrap_or_default();
    reader.feed(first, |r| cap.body.extend_from_slice(&first[r])).ok()?;
    while !reader.is_done() {
        let mut buf = std::mem::take(&mut ex.buf);
        buf.clear();
        let fut = net::read_more(c.stream(), buf, super::IO_BUF, super::IO_BUF);
        ex.buf = match monoio::time::timeout(rt, fut).await {
            Ok((Ok(n), b)) if n > 0 => b,
            Ok((_, b)) => {
                ex.buf = b;
                return None;
            }
            Err(_) => {
                ex.buf = w.take_buf();
                return None;
            }
        };
        let buf = &ex.buf;
        reader.feed(buf, |r| cap.body.extend_from_slice(&buf[r])).ok()?;
    }
    // Never stores a body cut short.
    (cap.body.len() as u64 == cap.len).then_some(reader)
}

/// Stores the error page answered for `status` (SPEC §4: for
/// `max(error_response.min_ttl, origin max-age)`), when the request is
/// cacheable and that is above zero. True when stored.
pub(super) fn store_error_page(w: &Worker, key: Option<&[u8]>, status: u16, origin_max_age: Option<u64>) -> bool {
    let (Some(store), Some(key), Some(page)) = (w.cache.as_ref(), key, w.cfg.error_page(status)) else {
        return false;
    };
    let ttl = page
        .min_ttl
        .max(std::time::Duration::from_secs(origin_max_age.unwrap_or(0)));
    if ttl.is_zero() {
        return false;
    }
    let via = &w.cfg.server.via;
    let head = format!(
        "HTTP/1.1 {} {}\r\nServer: {via}\r\nContent-Type: {}\r\nContent-Length: {}\r\nVia: 1.1 {via}\r\n",
        page.response_status,
        crate::http::write::reason(page.response_status),
        page.content_type,
        page.body.len()
    );
    let obj = Object::simple(
        bytes::Bytes::from(head),
        page.body.clone(),
        page.response_status,
        Instant::now(),
        ttl,
    );
    store.insert(key, Arc::new(obj))
}
