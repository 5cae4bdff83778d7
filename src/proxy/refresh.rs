//! Background refresh for `stale-while-revalidate`.
//!
//! A request that finds its object stale but within the object's
//! stale-while-revalidate window is answered from the stale object at once;
//! the object is refreshed behind it by one background fetch per key (the
//! collapsing flight makes it "once": concurrent stale hits find the flight
//! and do not start another). The fetch is the same [`Exchange`] a miss
//! uses (failover, header actions and hooks included), sending the viewer's
//! request with the stored validators in place of its own conditions; a
//! 304 updates the object (its fields and freshness, RFC 9111 §4.3.4), a
//! storable response is recorded and replaces it, anything else leaves the
//! stale object alone.

use super::exchange::{Decision, Exchange, Outgoing, Rewrite, Sent};
use super::record::record;
use super::viewer::write_within;
use super::Worker;
use crate::cache::admission::Asked;
use crate::cache::collapse::Join;
use crate::cache::store::{Object, Store};
use crate::http::parse::{parse_request, RequestHead};
use crate::http::write::RequestFraming;
use crate::origin::pool::OriginConn;
use crate::origin::reuse::Reuse;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// What the background fetch needs from the viewer's request.
pub struct RefreshJob {
    pub store: Arc<Store>,
    /// The key the stale object was found under (its URL's or its
    /// variant's): the flight's key.
    pub key: Vec<u8>,
    pub behavior: usize,
    /// The viewer's request head (a GET without a body), so the refresh
    /// sends what a miss would: its end-to-end headers, the actions, the hooks.
    pub head: Vec<u8>,
    /// The viewer's address as text, for X-Forwarded-For.
    pub client_ip: String,
    pub stale: Arc<Object>,
    /// The cluster peer asked first (SPEC §8): the key's owner, or none.
    pub peer: Option<usize>,
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

/// The refresh's request: the viewer's head, parsed again, with no body.
struct Refetch<'a> {
    job: &'a RefreshJob,
    head: RequestHead,
    scratch: Vec<u8>,
}

impl Outgoing for Refetch<'_> {
    fn request(&self) -> (&[u8], &RequestHead) {
        (&self.job.head, &self.head)
    }

    fn client_ip(&self) -> &[u8] {
        self.job.client_ip.as_bytes()
    }

    fn scratch(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.scratch)
    }

    async fn send(&mut self, _: &Worker, c: &mut OriginConn, head: Vec<u8>, deadline: Instant) -> Sent {
        let n = head.len();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (r, b) = write_within(c.stream(), head, 0..n, timeout).await;
        self.scratch = b.unwrap_or_default();
        // A failed or timed-out send is a failed attempt, as on a miss: the
        // machine retries or fails over.
        if r.is_ok() {
            Sent::Done
        } else {
            Sent::OriginFailed
        }
    }
}

/// Fetches and stores; true when the store was refreshed.
async fn run(w: &Rc<Worker>, job: &RefreshJob) -> bool {
    let cfg = w.cfg.clone();
    let Some(b) = cfg.behaviors.get(job.behavior) else {
        return false;
    };
    let mut out = Refetch {
        job,
        head: RequestHead::default(),
        scratch: Vec::with_capacity(512),
    };
    if !matches!(parse_request(&job.head, usize::MAX, &mut out.head), Ok(Some(_))) {
        return false;
    }
    let lines = crate::cache::vary::request_lines(&job.head, &out.head, b"accept-encoding");
    let rewrite = Rewrite {
        // What a miss sends: the viewer's Accept-Encoding, normalised.
        accept_encoding: Some(crate::cache::key::normalize_accept_encoding(lines)),
        validators: Some(&job.stale),
        drop_conditionals: true,
        framing: RequestFraming::None,
    };
    let mut ex = Exchange::new(w, b, (b"GET", true, job.peer), rewrite, Default::default());
    let stored = match ex.run(&mut out).await {
        Decision::Deliver { status, conn } => store_result(&mut ex, job, &out.head, (status, conn)).await,
        Decision::Answer { .. } | Decision::Stopped(_) => false,
    };
    ex.end();
    stored
}

/// Stores what the origin answered to the request `head` (the job's): a
/// 304 that validates the stale object updates it (RFC 9111 §4.3.4: its
/// fields and its freshness; one naming another representation updates
/// nothing); a new representation is recorded as a miss's is, if it may be
/// stored (under its own Vary's key).
async fn store_result(
    ex: &mut Exchange<'_>,
    job: &RefreshJob,
    head: &RequestHead,
    (status, mut c): (u16, OriginConn),
) -> bool {
    let now = Instant::now();
    if status == 304 {
        ex.pool_if_complete(c);
        return super::revalidated::validates(ex, &job.stale)
            && super::revalidated::update(ex, Some((&job.store, &job.key)), &job.stale).1;
    }
    if !super::forward::keeps_copy(ex) {
        return false;
    }
    let Some(cap) = super::record::Capture::start(ex, &job.key, (&job.head, head), Asked::default()) else {
        return false;
    };
    match record(ex, &mut c, cap, now).await {
        Ok(r) => {
            if r.reuse == Reuse::Reusable {
                ex.pool(c);
            }
            super::compressed::store(&job.store, ex.behavior, &r, (&job.head, head))
                .await
                .0
        }
        // Failed, or too large to store after all: the stale object stays.
        Err(_) => false,
    }
}
