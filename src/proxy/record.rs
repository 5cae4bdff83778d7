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
//! records the same way ([`record`]) and only stores. With `compress =
//! true`, a compressible response is stored as three variants, identity,
//! brotli and gzip, before the waiters are released
//! ([`compressed`](super::compressed)), and this viewer is answered from
//! the one its Accept-Encoding selects.
//!
//! A chunked or close-delimited body has no length until it ends (RFC 9112
//! §6.3): its room grows as it comes ([`Reservation::grow`]), it is decoded
//! (the chunk framing, extensions and trailer fields dropped), and once
//! complete (the last chunk read, or the origin's close: a FIN, never a
//! reset; RFC 9112 §8) it is stored with a Content-Length of its own. Should
//! it pass `max_object_size` or the recording share first, nothing is
//! stored: the waiters are let go, and this viewer gets what was recorded so
//! far and then the rest as it comes ([`deliver::resume`]). A body cut short
//! is never stored.

use super::deliver::{self, Delivered, Partial};
use super::exchange::Exchange;
use super::viewer::Viewer;
use super::{Next, Worker};
use crate::cache::admission::{self, Asked};
use crate::cache::collapse::LeaderGuard;
use crate::cache::freshness::{Lifetime, Policy};
use crate::cache::store::{Object, Reservation, Store};
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
    room: Reservation,
    /// The key it is stored under: its URL's, and the request's values of
    /// the headers it varies on.
    key: Vec<u8>,
    vary: Vary,
    life: Lifetime,
    head: Vec<u8>,
    body: bytes::BytesMut,
    /// The body's length when the head gave it; `None`: chunked or
    /// delimited by close, known at its end (the body's room grows).
    len: Option<u64>,
    /// `max_object_size`: a body of unknown length past it is not recorded.
    max: u64,
    /// A body of unknown length: the origin's head as received, to stream
    /// the response from if it outgrows its room.
    origin_head: Vec<u8>,
}

/// The first room a body of unknown length gets; it doubles from there.
const FIRST_ROOM: u64 = 16 * 1024;

impl Capture {
    /// Decides at the head the exchange holds whether the response may be
    /// stored ([`admission::admit`]) and there is room within the recording
    /// share; `Some` starts recording it. `key` is the request's cache key
    /// (its URL's, or a variant's); the response is stored under its URL
    /// and, when it varies, the values `request` (buffer and head) has for
    /// the headers its own Vary names (RFC 9111 §4.1) and the behavior's
    /// key headers and cookies (SPEC §2).
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
        let vary = ex.behavior.cache_key.stored_vary(admitted.vary)?;
        let mut key = key[..crate::cache::key::url_len(key)].to_vec();
        vary::append_values(&mut key, &vary, buf, request);
        let known = admitted.len.unwrap_or(0);
        let charge = known + ex.head.head_len as u64 + key.len() as u64;
        let room = w.cache.as_ref()?.reserve(charge)?;
        let origin_head = match admitted.len {
            Some(_) => Vec::new(),
            None => ex.buf.get(..ex.head.head_len).unwrap_or_default().to_vec(),
        };
        Some(Capture {
            room,
            key,
            vary,
            life: admitted.life,
            head: Vec::with_capacity(ex.head.head_len + 64),
            body: bytes::BytesMut::with_capacity(usize::try_from(known).ok()?),
            len: admitted.len,
            max: w.cfg.cache.max_object_size,
            origin_head,
        })
    }

    /// Makes room in the body for `n` more bytes: false when a body of
    /// unknown length would pass `max_object_size`, or its room the
    /// recording share. (A known length has its room from the start.) The
    /// room doubles, in an allocation of exactly the reserved size.
    fn room_for(&mut self, n: usize) -> bool {
        let have = self.body.capacity() as u64;
        let need = self.body.len() as u64 + n as u64;
        if need <= have {
            return true;
        }
        if self.len.is_some() || need > self.max {
            return false;
        }
        let target = have.saturating_mul(2).max(FIRST_ROOM).min(self.max).max(need);
        let Ok(size) = usize::try_from(target) else {
            return false;
        };
        if !self.room.grow(target - have) {
            return false;
        }
        let mut body = bytes::BytesMut::with_capacity(size);
        body.extend_from_slice(&self.body);
        self.body = body;
        true
    }

    /// What is left to stream once the body outgrew its room: the origin's
    /// head, the body so far (its room held until it is written), and the
    /// data in `pending` of the exchange's buffer that the reader took but
    /// the recording had no room for.
    fn into_partial(self, reader: ResponseReader, pending: std::ops::Range<usize>) -> Partial {
        Partial {
            head: self.origin_head,
            body: self.body.freeze(),
            room: self.room,
            reader,
            pending,
        }
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

/// Why a response was not recorded.
pub(super) enum Unrecorded {
    /// The body failed (timeout, reset, bad framing, cut short).
    Failed,
    /// A body of unknown length outgrew its room: the rest is to stream.
    Outgrown(Box<Partial>),
}

/// Records the whole response the exchange holds into an object: the
/// stored head, the body read to its end, the validators. `received`: when
/// the request was sent (the object's age counts from then). On an error
/// nothing is stored.
pub(super) async fn record(
    ex: &mut Exchange<'_>,
    c: &mut OriginConn,
    mut cap: Capture,
    received: Instant,
) -> Result<Recording, Unrecorded> {
    stored_head(ex, &mut cap.head, cap.len.is_some());
    let validator = |name: &[u8]| ex.head.header(&ex.buf, name).map(bytes::Bytes::copy_from_slice);
    let (etag, last_modified) = (validator(b"etag"), validator(b"last-modified"));
    let reader = match read_body(ex, c, &mut cap).await {
        Body::Whole(reader) => reader,
        Body::Failed => return Err(Unrecorded::Failed),
        Body::Outgrown(reader, pending) => {
            return Err(Unrecorded::Outgrown(Box::new(cap.into_partial(reader, pending))))
        }
    };
    if cap.len.is_none() {
        // RFC 9112 §7.1.3: "Content-Length := length".
        ViewerFraming::Length(cap.body.len() as u64).write_line(&mut cap.head);
    }
    let obj = Arc::new(Object {
        stale_while_revalidate: cap.life.stale_while_revalidate,
        stale_if_error: cap.life.stale_if_error,
        etag,
        last_modified,
        initial_age: cap.life.initial_age,
        ..Object::recorded(cap.head, cap.body, ex.head.status, received, cap.life.ttl)
    });
    Ok(Recording {
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
    /// The body outgrew its room: nothing is stored, the waiters were let
    /// go, and the response was streamed to the viewer.
    Streamed(Delivered),
}

/// Records the whole response, stores it, releases `leader`'s waiters, and
/// answers the viewer from the stored object. `keep`: the request allows
/// the viewer connection to stay open (should the response stream after
/// all).
pub(super) async fn record_then_serve(
    ex: &mut Exchange<'_>,
    v: &mut Viewer,
    mut c: OriginConn,
    cap: Capture,
    (leader, received, keep): (&mut Option<LeaderGuard<'_>>, Instant, bool),
) -> Recorded {
    let r = match record(ex, &mut c, cap, received).await {
        Ok(r) => r,
        Err(Unrecorded::Failed) => return Recorded::Failed,
        Err(Unrecorded::Outgrown(p)) => {
            // Nothing will be stored: the waiters fetch on their own now.
            *leader = None;
            return Recorded::Streamed(deliver::resume(ex, v, c, keep, *p).await);
        }
    };
    // Stored as it came, or with its compressed variants (`compressed`).
    let (stored, obj) = match ex.w.cache.as_ref() {
        Some(s) => super::compressed::store(s, ex.behavior, &r, (v.buf(), v.head())).await,
        None => (false, r.obj.clone()),
    };
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
    // A refused insert (no room in its shard) is said as a plain miss.
    let label = if stored { HitLabel::Stored } else { HitLabel::Unstored };
    let (next, status, bytes) = super::hit::answer(
        ex.w,
        v,
        &obj,
        Instant::now(),
        label,
        &extra,
        &ex.behavior.viewer_response,
    )
    .await;
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
/// Without `known_len` (a chunked or close-delimited body) the framing line
/// is left out, for the Content-Length the body's end gives.
fn stored_head(ex: &Exchange<'_>, out: &mut Vec<u8>, known_len: bool) {
    let step = ex.machine.current();
    let rw = ResponseRewrite {
        via: &ex.w.cfg.server.via,
        x_cache: b"",
        cache_status: b"",
        proxy_status: b"",
        actions: ex.response_actions(),
        ctx: AttemptCtx {
            attempt: ex.machine.attempts(),
            origin: ex.w.cfg.hop_id(step.origin),
            role: step.role.as_str(),
        },
        framing: if known_len {
            ViewerFraming::of(&ex.head, false)
        } else {
            ViewerFraming::Close
        },
        keep_alive: true,
        viewer_http10: false,
        extra: &ex.hook_lines,
    };
    write_stored_head(out, &ex.buf, &ex.head, &rw);
}

/// How reading the body into the recording ended.
enum Body {
    /// Complete, by its framing.
    Whole(ResponseReader),
    /// Failed or came short.
    Failed,
    /// No room for the decoded data in this range of `ex.buf`, which the
    /// reader has taken.
    Outgrown(ResponseReader, std::ops::Range<usize>),
}

/// Reads the rest of the body into the recording, decoded; every read
/// within the origin's `response_timeout`.
async fn read_body(ex: &mut Exchange<'_>, c: &mut OriginConn, cap: &mut Capture) -> Body {
    let w = ex.w;
    let rt = ex.machine.current().response_timeout;
    let mut reader = ResponseReader::after_head(&ex.head);
    let mut ranges = Vec::new();
    let mut from = ex.head.head_len.min(ex.buf.len());
    loop {
        let Some(n) = decode(&mut reader, &mut ex.buf[from..], &mut ranges) else {
            return Body::Failed;
        };
        if !cap.room_for(n) {
            return match cap.len {
                // (Never: a known length has its room from the start.)
                Some(_) => Body::Failed,
                None => Body::Outgrown(reader, from..from + n),
            };
        }
        cap.body.extend_from_slice(&ex.buf[from..from + n]);
        if reader.is_done() {
            break;
        }
        let mut buf = std::mem::take(&mut ex.buf);
        buf.clear();
        from = 0;
        let fut = net::read_more(c.stream(), buf, super::IO_BUF, super::IO_BUF);
        ex.buf = match monoio::time::timeout(rt, fut).await {
            Ok((Ok(n), b)) if n > 0 => b,
            // The origin closed (a FIN): the end of a close-delimited body,
            // else one cut short (RFC 9112 §8).
            Ok((Ok(_), b)) => {
                ex.buf = b;
                if reader.eof().is_err() {
                    return Body::Failed;
                }
                break;
            }
            // A reset or another error: never a complete body, however it
            // is framed.
            Ok((Err(_), b)) => {
                ex.buf = b;
                return Body::Failed;
            }
            Err(_) => {
                ex.buf = w.take_buf();
                return Body::Failed;
            }
        };
    }
    // Never stores a body cut short.
    match cap.len {
        Some(n) if n != cap.body.len() as u64 => Body::Failed,
        _ => Body::Whole(reader),
    }
}

/// Feeds `buf` to `reader` and moves the body data it holds (chunk framing
/// stripped) to its front; returns its length. `None`: bad framing.
fn decode(reader: &mut ResponseReader, buf: &mut [u8], ranges: &mut Vec<std::ops::Range<usize>>) -> Option<usize> {
    ranges.clear();
    reader.feed(buf, |r| ranges.push(r)).ok()?;
    Some(crate::http::frame::compact(buf, ranges))
}

/// Stores the error page answered for `status` (SPEC §4: for
/// `max(error_response.min_ttl, origin max-age)`), when the request is
/// cacheable and that is above zero, under the request's `key`; `names`:
/// the behavior's key names (SPEC §2), which a key made of them alone
/// (nothing stored for its URL yet) is stored by. True when stored.
pub(super) fn store_error_page(
    w: &Worker,
    (key, names): (Option<&[u8]>, &Vary),
    status: u16,
    origin_max_age: Option<u64>,
) -> bool {
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
    if !names.is_empty() && vary::key_names(key) == Some(names.as_bytes()) {
        return store.insert_with_vary(key, names, Arc::new(obj));
    }
    store.insert(key, Arc::new(obj))
}
