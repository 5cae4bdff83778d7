//! A storable miss is recorded whole before it is answered (SPEC §3.4: the
//! fetch belongs to the collapsed group, not to its first viewer).
//!
//! The body is read from the origin into the recording (its room reserved
//! against the cache's capacity beforehand), the object is stored, the
//! requests waiting on the key's flight are released to it, and only then
//! is this request's viewer answered, from the stored object, as a hit is.
//! A viewer that reads slowly, or not at all, holds up neither the origin
//! connection nor the waiting requests; it costs the proxy nothing beyond
//! the stored object it shares with them. Responses that cannot be stored
//! stream through (`forward::deliver`).

use super::conn::{answer_from_cache, Next, Viewer};
use super::forward::proxy_status;
use super::Worker;
use crate::cache::collapse::LeaderGuard;
use crate::cache::store::Object;
use crate::config::Behavior;
use crate::http::response::{RespBody, ResponseHead};
use crate::http::write::{write_stored_head, AttemptCtx, HitLabel, ResponseRewrite, ViewerFraming};
use crate::net;
use crate::origin::attempt::AttemptMachine;
use crate::origin::pool::OriginConn;
use crate::origin::reuse::{ResponseReader, Reuse};
use std::sync::Arc;
use std::time::Instant;

/// A response being recorded for the cache: its room reserved against the
/// cache's capacity, its lifetime decided at the head.
pub(super) struct Capture {
    _room: crate::cache::store::Reservation,
    key: Vec<u8>,
    life: crate::cache::freshness::Lifetime,
    head: Vec<u8>,
    body: bytes::BytesMut,
    len: u64,
}

impl Capture {
    /// Decides at the head (`buf` holds it, `rh` parsed it) whether the
    /// response may be stored under `key` (SPEC §4: bodies with a length
    /// only, so a cut one is detected; room within the recording share);
    /// `Some` starts recording it. `authorization`: the request carried one.
    pub(super) fn start(
        w: &Worker,
        b: &Behavior,
        key: &[u8],
        (buf, rh): (&[u8], &ResponseHead),
        head_request: bool,
        authorization: bool,
    ) -> Option<Capture> {
        use crate::cache::freshness::{lifetime, Policy, ResponseFacts};
        let len = match rh.body() {
            RespBody::Length(n) if n <= w.cfg.cache.max_object_size => n,
            RespBody::None if !head_request => 0,
            _ => return None,
        };
        let cc = rh.header_list(buf, b"cache-control");
        let vary = rh.header_list(buf, b"vary");
        let age = rh.header_list(buf, b"age");
        let cdn = rh.header_list(buf, b"cdn-cache-control");
        let facts = ResponseFacts {
            status: rh.status,
            cache_control: cc.as_deref(),
            expires: rh.header(buf, b"expires"),
            date: rh.header(buf, b"date"),
            vary: vary.as_deref(),
            set_cookie: rh.header(buf, b"set-cookie").is_some(),
            cdn_cache_control: cdn.as_deref(),
            age: age.as_deref(),
        };
        let policy = Policy {
            min_ttl: b.min_ttl,
            default_ttl: b.default_ttl,
            max_ttl: b.max_ttl,
        };
        let life = lifetime(&facts, authorization, &policy, None, std::time::SystemTime::now())?;
        let room = w.cache.as_ref()?.reserve(len + rh.head_len as u64 + key.len() as u64)?;
        Some(Capture {
            _room: room,
            key: key.to_vec(),
            life,
            head: Vec::with_capacity(rh.head_len + 64),
            body: bytes::BytesMut::with_capacity(len as usize),
            len,
        })
    }
}

/// The response being recorded, as the attempt machine decided it.
pub(super) struct Fetched<'a> {
    pub head: &'a ResponseHead,
    pub machine: &'a AttemptMachine<'a>,
    pub behavior: &'a Behavior,
    /// Header lines the hooks added to the response.
    pub hook_lines: &'a [u8],
    pub received: Instant,
}

/// What recording came to.
pub(super) enum Recorded {
    /// Stored (or not, if the store refused it) and answered.
    Served {
        next: Next,
        status: u16,
        bytes: u64,
        stored: bool,
        /// The origin connection, when it may go back to the pool.
        conn: Option<OriginConn>,
        buf: Vec<u8>,
    },
    /// The body failed (timeout, reset, bad framing) before anything went
    /// to the viewer: nothing is stored, and the viewer may still get a 502.
    Failed { buf: Vec<u8> },
}

/// Records the whole response into an object (not yet stored): the stored
/// head, the body read to its end, the validators. Also returns whether the
/// connection may be reused, and the buffer; `Err` gives the buffer back.
pub(super) async fn record(
    w: &Worker,
    c: &mut OriginConn,
    obuf: Vec<u8>,
    f: &Fetched<'_>,
    mut cap: Capture,
) -> Result<(Vec<u8>, Arc<Object>, Reuse, Vec<u8>), Vec<u8>> {
    stored_head(w, f, &obuf, &mut cap.head);
    let validator = |name: &[u8]| f.head.header(&obuf, name).map(bytes::Bytes::copy_from_slice);
    let (etag, last_modified) = (validator(b"etag"), validator(b"last-modified"));
    let (reader, buf) = read_body(w, c, obuf, f, &mut cap).await?;
    let obj = Arc::new(Object {
        stale_while_revalidate: cap.life.stale_while_revalidate,
        stale_if_error: cap.life.stale_if_error,
        etag,
        last_modified,
        initial_age: cap.life.initial_age,
        ..Object::recorded(cap.head, cap.body, f.head.status, f.received, cap.life.ttl)
    });
    Ok((cap.key, obj, reader.verdict(), buf))
}

/// Records the whole response, stores it, releases `leader`'s waiters, and
/// answers the viewer from the stored object.
pub(super) async fn record_then_serve(
    w: &Worker,
    v: &mut Viewer,
    mut c: OriginConn,
    obuf: Vec<u8>,
    f: &Fetched<'_>,
    cap: Capture,
    leader: &mut Option<LeaderGuard<'_>>,
) -> Recorded {
    let (key, obj, reuse, buf) = match record(w, &mut c, obuf, f, cap).await {
        Ok(x) => x,
        Err(buf) => return Recorded::Failed { buf },
    };
    let stored = w.cache.as_ref().is_some_and(|s| s.insert(&key, obj.clone()));
    // The waiters find the object now, whatever this viewer does next.
    if let Some(mut g) = leader.take() {
        if stored {
            g.stored();
        }
    }
    let mut extra = Vec::new();
    let mut ps = Vec::new();
    proxy_status(w, f.machine, &mut ps);
    if !ps.is_empty() {
        extra.extend_from_slice(b"Proxy-Status: ");
        extra.extend_from_slice(&ps);
        extra.extend_from_slice(b"\r\n");
    }
    let (next, status, bytes) = answer_from_cache(w, v, &obj, Instant::now(), HitLabel::Stored, &extra).await;
    let conn = (reuse == Reuse::Reusable).then_some(c);
    Recorded::Served {
        next,
        status,
        bytes,
        stored,
        conn,
        buf,
    }
}

/// The head the cache stores: the origin's end-to-end headers, the framing
/// line of ringfront's own, Via, the behavior's actions and the hook lines.
fn stored_head(w: &Worker, f: &Fetched<'_>, obuf: &[u8], out: &mut Vec<u8>) {
    let step = f.machine.current();
    let rw = ResponseRewrite {
        via: &w.cfg.server.via,
        x_cache: b"",
        cache_status: b"",
        proxy_status: b"",
        actions: &f.behavior.origin_response,
        ctx: AttemptCtx {
            attempt: f.machine.attempts(),
            origin: &w.cfg.origins[step.origin].id,
            role: step.role.as_str(),
        },
        framing: ViewerFraming::of(f.head, false),
        keep_alive: true,
        viewer_http10: false,
        extra: f.hook_lines,
    };
    write_stored_head(out, obuf, f.head, &rw);
}

/// Reads the rest of the body into the recording; every read within the
/// origin's `response_timeout`. `Err` gives the buffer back.
async fn read_body(
    w: &Worker,
    c: &mut OriginConn,
    mut obuf: Vec<u8>,
    f: &Fetched<'_>,
    cap: &mut Capture,
) -> Result<(ResponseReader, Vec<u8>), Vec<u8>> {
    let rt = w.cfg.origins[f.machine.current().origin].response_timeout;
    let mut reader = ResponseReader::after_head(f.head);
    let first = obuf.get(f.head.head_len..).unwrap_or_default();
    if reader.feed(first, |r| cap.body.extend_from_slice(&first[r])).is_err() {
        return Err(obuf);
    }
    while !reader.is_done() {
        obuf.clear();
        let fut = net::read_more(c.stream(), obuf, super::IO_BUF, super::IO_BUF);
        obuf = match monoio::time::timeout(rt, fut).await {
            Ok((Ok(n), b)) if n > 0 => b,
            Ok((_, b)) => return Err(b),
            Err(_) => return Err(w.take_buf()),
        };
        if reader.feed(&obuf, |r| cap.body.extend_from_slice(&obuf[r])).is_err() {
            return Err(obuf);
        }
    }
    if cap.body.len() as u64 != cap.len {
        return Err(obuf); // never stores a body cut short
    }
    Ok((reader, obuf))
}
