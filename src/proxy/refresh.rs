//! Background refresh for `stale-while-revalidate`.
//!
//! A request that finds its object stale but within the object's
//! stale-while-revalidate window is answered from the stale object at once;
//! the object is refreshed behind it by one background fetch per key (the
//! collapsing flight makes it "once": concurrent stale hits find the flight
//! and do not start another). The fetch goes through the same attempt machine
//! (failover included) with a conditional GET built from the stored
//! validators; a 304 refreshes the object, a storable 200 with a
//! Content-Length replaces it, anything else leaves the stale object alone.

use super::forward::{acquire, plan, refreshed, response_complete};
use super::Worker;
use crate::cache::collapse::Join;
use crate::cache::store::{Object, Store};
use crate::config::Behavior;
use crate::http::body::BodyCursor;
use crate::http::response::{RespBody, ResponseHead};
use crate::http::write::{write_response_core, AttemptCtx, ResponseRewrite, ViewerFraming};
use crate::net;
use crate::origin::attempt::{Action, AttemptMachine, Event};
use crate::origin::client;
use crate::origin::pool::OriginConn;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// What the background fetch needs from the viewer's request.
pub struct RefreshJob {
    pub store: Arc<Store>,
    pub key: Vec<u8>,
    pub behavior: usize,
    pub host: Vec<u8>,
    pub target: Vec<u8>,
    pub stale: Arc<Object>,
}

/// Spawns the refresh on this worker unless one is already in flight.
pub fn spawn(w: &Rc<Worker>, job: RefreshJob) {
    let w = w.clone();
    monoio::spawn(async move {
        let store = job.store.clone();
        let mut guard = match store.flights.join(&job.key) {
            Join::Leader(g) => g,
            Join::Follower(_) | Join::Pass => return,
        };
        // Another refresh may have finished between this stale hit and now.
        if store.get(&job.key).is_some_and(|o| o.is_fresh(Instant::now())) {
            guard.abandon();
            return;
        }
        if run(&w, &job).await {
            guard.stored();
        } else {
            guard.abandon();
        }
    });
}

fn request_head(job: &RefreshJob, via: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(&job.target);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(&job.host);
    out.extend_from_slice(b"\r\nVia: 1.1 ");
    out.extend_from_slice(via.as_bytes());
    out.extend_from_slice(b"\r\n");
    // The key ends in the normalised encoding this variant was stored for.
    if let Some(enc) = job.key.rsplit(|&b| b == 0).next().filter(|e| *e != b"identity") {
        out.extend_from_slice(b"Accept-Encoding: ");
        out.extend_from_slice(enc);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(etag) = &job.stale.etag {
        out.extend_from_slice(b"If-None-Match: ");
        out.extend_from_slice(etag);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(lm) = &job.stale.last_modified {
        out.extend_from_slice(b"If-Modified-Since: ");
        out.extend_from_slice(lm);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Fetches and stores; true when the store was refreshed.
async fn run(w: &Rc<Worker>, job: &RefreshJob) -> bool {
    let cfg = w.cfg.clone();
    let b: &Behavior = &cfg.behaviors[job.behavior];
    let mut m = AttemptMachine::new(plan(w, b, b"GET", true));
    let mut conn: Option<OriginConn> = None;
    let mut reused = false;
    let mut got_bytes = false;
    let mut obuf = w.take_buf();
    let mut rh = ResponseHead::default();
    let mut head = Vec::with_capacity(512);
    request_head(job, &cfg.server.via, &mut head);
    let started = Instant::now();
    let mut act = m.start(started);
    let stored = loop {
        act = match act {
            Action::Connect {
                origin,
                role,
                pooled,
                deadline,
                attempt,
            } => {
                let (c, ev, at) = acquire(w, b, origin, role, pooled, deadline, attempt).await;
                reused = ev == (Event::Connected { reused: true });
                conn = c;
                m.on(ev, at)
            }
            Action::Send { deadline } => {
                let Some(c) = conn.as_mut() else { break false };
                got_bytes = false;
                let fut = net::write_all(c.stream(), std::mem::take(&mut head));
                match monoio::time::timeout_at(deadline.into(), fut).await {
                    Ok((Ok(()), h)) => {
                        head = h;
                        obuf.clear();
                        Action::AwaitHead { deadline }
                    }
                    Ok((Err(_), h)) => {
                        head = h;
                        m.on(Event::FailedBeforeResponse { reused }, Instant::now())
                    }
                    Err(_) => break false,
                }
            }
            Action::AwaitHead { deadline } => {
                let Some(c) = conn.as_mut() else { break false };
                let (ev, buf) = client::read_head(c, obuf, deadline, false, &mut rh, &mut got_bytes, reused).await;
                obuf = buf.unwrap_or_else(|| w.take_buf());
                m.on(ev, Instant::now())
            }
            Action::Deliver { status } => {
                let Some(c) = conn.take() else { break false };
                break store_result(w, b, job, &m, c, std::mem::take(&mut obuf), &rh, status).await;
            }
            Action::ServePage { .. } | Action::Generate { .. } | Action::AbortViewer | Action::Done => break false,
        };
    };
    super::forward::count_attempts(w, &m, b, Some(started.elapsed()));
    w.give_buf(obuf);
    stored
}

#[allow(clippy::too_many_arguments)]
async fn store_result(
    w: &Rc<Worker>,
    b: &Behavior,
    job: &RefreshJob,
    m: &AttemptMachine<'_>,
    mut c: OriginConn,
    mut buf: Vec<u8>,
    rh: &ResponseHead,
    status: u16,
) -> bool {
    let now = Instant::now();
    let origin = m.current().origin;
    if status == 304 {
        let obj = refreshed(b, &job.stale, &buf, rh, now);
        if response_complete(&buf, rh) {
            w.pool.borrow_mut().put(origin, c, now);
        }
        return job.store.insert(&job.key, Arc::new(obj));
    }
    // A new representation: store it if it may be stored and is whole.
    use crate::cache::freshness::{lifetime, Policy, ResponseFacts};
    let RespBody::Length(len) = rh.body() else { return false };
    if len > w.cfg.cache.max_object_size {
        return false;
    }
    let facts = ResponseFacts {
        status,
        cache_control: rh.header(&buf, b"cache-control"),
        expires: rh.header(&buf, b"expires"),
        date: rh.header(&buf, b"date"),
        vary: rh.header(&buf, b"vary"),
        set_cookie: rh.header(&buf, b"set-cookie").is_some(),
    };
    let policy = Policy {
        min_ttl: b.min_ttl,
        default_ttl: b.default_ttl,
        max_ttl: b.max_ttl,
    };
    let Some(life) = lifetime(&facts, false, &policy, None, std::time::SystemTime::now()) else {
        return false;
    };
    let mut stored_head = Vec::with_capacity(rh.head_len + 64);
    let step = m.current();
    write_response_core(
        &mut stored_head,
        &buf,
        rh,
        &ResponseRewrite {
            via: &w.cfg.server.via,
            x_cache: b"",
            cache_status: b"",
            proxy_status: b"",
            actions: &b.origin_response,
            ctx: AttemptCtx {
                attempt: m.attempts(),
                origin: &w.cfg.origins[step.origin].id,
                role: step.role.as_str(),
            },
            framing: ViewerFraming::Length(len),
            keep_alive: true,
            viewer_http10: false,
            extra: b"",
        },
    );
    let validator = |name: &[u8]| rh.header(&buf, name).map(bytes::Bytes::copy_from_slice);
    let (etag, last_modified) = (validator(b"etag"), validator(b"last-modified"));
    let mut body = bytes::BytesMut::with_capacity(len as usize);
    let mut cursor = BodyCursor::length(len);
    let first = &buf[rh.head_len..];
    let used = cursor.feed(first, |_| {}).unwrap_or(0);
    body.extend_from_slice(&first[..used]);
    let rt = w.cfg.origins[origin].response_timeout;
    while !cursor.is_done() {
        buf.clear();
        let fut = net::read_more(c.stream(), buf, super::IO_BUF, super::IO_BUF);
        match monoio::time::timeout(rt, fut).await {
            Ok((Ok(n), b)) if n > 0 => buf = b,
            _ => return false,
        }
        let used = cursor.feed(&buf, |_| {}).unwrap_or(0);
        body.extend_from_slice(&buf[..used]);
    }
    let obj = Object {
        head: bytes::Bytes::from(stored_head),
        body: body.freeze(),
        status,
        stored: now,
        ttl: life.ttl,
        stale_while_revalidate: life.stale_while_revalidate,
        stale_if_error: life.stale_if_error,
        etag,
        last_modified,
    };
    job.store.insert(&job.key, Arc::new(obj))
}
