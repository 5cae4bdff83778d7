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
use super::record::{record, Capture, Fetched};
use super::Worker;
use crate::cache::collapse::Join;
use crate::cache::store::{Object, Store};
use crate::config::Behavior;
use crate::http::parse::{parse_request, RequestHead};
use crate::http::response::ResponseHead;
use crate::http::write::{write_request_head, AttemptCtx, RequestFraming, RequestRewrite};
use crate::net;
use crate::origin::attempt::{Action, AttemptMachine, Event};
use crate::origin::client;
use crate::origin::pool::OriginConn;
use crate::proxy::hooks::{AttemptInfo, HeaderLines};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// What the background fetch needs from the viewer's request.
pub struct RefreshJob {
    pub store: Arc<Store>,
    pub key: Vec<u8>,
    pub behavior: usize,
    /// The viewer's request head (a GET without a body), so the refresh
    /// sends what a miss would: its end-to-end headers, the actions, the hooks.
    pub head: Vec<u8>,
    /// The viewer's address as text, for X-Forwarded-For.
    pub client_ip: String,
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

/// Writes the refresh's head for this attempt: the viewer's request as a
/// miss would forward it (`write_request_head`: actions, hooks, Via,
/// X-Forwarded-For, the normalised Accept-Encoding of this variant's key),
/// with the viewer's own conditions replaced by the stored validators.
fn request_head(w: &Worker, job: &RefreshJob, viewer: &RequestHead, m: &AttemptMachine<'_>, out: &mut Vec<u8>) {
    let cfg = &w.cfg;
    let b = &cfg.behaviors[job.behavior];
    let step = m.current();
    let o = &cfg.origins[step.origin];
    let mut extra = Vec::new();
    if let Some(h) = w.hooks.as_ref() {
        let info = AttemptInfo {
            attempt: m.attempts(),
            origin: &o.id,
            role: step.role,
            method: b"GET",
            path: viewer.path.of(&job.head),
        };
        h.origin_request(&info, &mut HeaderLines::new(&mut extra));
    }
    for (name, v) in [
        (&b"If-None-Match"[..], &job.stale.etag),
        (b"If-Modified-Since", &job.stale.last_modified),
    ] {
        if let Some(v) = v {
            extra.extend_from_slice(name);
            extra.extend_from_slice(b": ");
            extra.extend_from_slice(v);
            extra.extend_from_slice(b"\r\n");
        }
    }
    // The key ends in the normalised encoding this variant was stored for.
    let encoding = crate::cache::key::encoding(&job.key);
    out.clear();
    write_request_head(
        out,
        &job.head,
        viewer,
        &RequestRewrite {
            host_override: o.host_header.as_deref(),
            host_fallback: &o.address,
            client_ip: job.client_ip.as_bytes(),
            via: &cfg.server.via,
            actions: &b.origin_request,
            ctx: AttemptCtx {
                attempt: m.attempts(),
                origin: &o.id,
                role: step.role.as_str(),
            },
            extra: &extra,
            framing: RequestFraming::None,
            accept_encoding: encoding,
            drop_conditionals: true,
        },
    );
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
    let mut viewer = RequestHead::default();
    if !matches!(parse_request(&job.head, usize::MAX, &mut viewer), Ok(Some(_))) {
        return false;
    }
    let mut head = Vec::with_capacity(512);
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
                request_head(w, job, &viewer, &m, &mut head);
                let fut = net::write_all(c.stream(), std::mem::take(&mut head));
                match monoio::time::timeout_at(deadline.into(), fut).await {
                    Ok((Ok(()), h)) => {
                        head = h;
                        obuf.clear();
                        Action::AwaitHead { deadline }
                    }
                    // A failed or timed-out send is a failed attempt, as on a
                    // miss: the machine retries or fails over.
                    Ok((Err(_), h)) => {
                        head = h;
                        m.on(Event::FailedBeforeResponse { reused }, Instant::now())
                    }
                    Err(_) => {
                        head = Vec::with_capacity(512);
                        m.on(Event::FailedBeforeResponse { reused }, Instant::now())
                    }
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
    buf: Vec<u8>,
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
    // A new representation: recorded and stored as a miss's is, if it may
    // be stored and arrives whole.
    let Some(cap) = Capture::start(w, b, &job.key, (&buf, rh), false, false) else {
        return false;
    };
    let f = Fetched {
        head: rh,
        machine: m,
        behavior: b,
        hook_lines: b"",
        received: now,
    };
    match record(w, &mut c, buf, &f, cap).await {
        Ok((key, obj, _, _)) => job.store.insert(&key, obj),
        Err(_) => false,
    }
}
