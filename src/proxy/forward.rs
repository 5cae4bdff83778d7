//! The forward phase of a viewer's request: one origin exchange, then the
//! answer its decision calls for.
//!
//! 1. [`Upload::prepare`] decides how the request body travels (read whole
//!    when small, so the request can be sent again; else streamed once).
//! 2. [`Exchange::run`] drives the attempt machine: connect or take a pooled
//!    connection, write the head (and body), read the response head; retries
//!    and failover happen there, and it returns the machine's decision.
//! 3. The decision is answered here (a success to an unsafe method first
//!    invalidates what it changed, [`invalidate`](super::invalidate)):
//!    - a 304 to our revalidation updates the stored object (RFC 9111
//!      §4.3.4: its fields and its freshness), and the viewer is answered
//!      from it ([`answer_revalidated`]); a 304 naming another
//!      representation updates nothing, and the request is sent again
//!      without conditions;
//!    - a HEAD's 200 updates the stored GET when it matches it (§4.3.5),
//!      and the viewer is answered from the updated object;
//!    - a 5xx with a stale object within its stale-if-error window serves
//!      the stale object;
//!    - a storable response is recorded whole, stored, its waiters released,
//!      and answered from the store ([`record`](super::record)); one whose
//!      length was unknown (chunked, close-delimited) and outgrew its room
//!      streams on instead;
//!    - any other response streams to the viewer ([`deliver`](super::deliver));
//!    - no response at all: stale-if-error again, else the `error_response`
//!      page, 502 or 504 ([`answers`](super::answers)).

use super::deliver::{deliver, Delivered};
use super::exchange::{Decision, Exchange, Rewrite, Stop};
use super::record::{record_then_serve, Capture, Recorded};
use super::revalidated;
use super::upload::Upload;
use super::viewer::Viewer;
use super::{Next, Worker};
use crate::cache::admission::Asked;
use crate::cache::store::Object;
use crate::http::edit::ResponseEdits;
use crate::http::write::HitLabel;
use crate::origin::attempt::Event;
use crate::origin::pool::OriginConn;
use crate::outcome::Detail;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use super::upload::REPLAY_MAX;

/// A routed request on its way to an origin.
pub struct Request<'a> {
    pub behavior: &'a crate::config::Behavior,
    pub received: Instant,
    /// The cache key, when the response may be stored (a GET without a body
    /// on a caching behavior, with a cache configured): the URL's key, or
    /// the variant's the request selects when the URL's stored responses
    /// vary (or the behavior keys on headers or cookies). A response is
    /// stored under its URL and the values of its own Vary's and the
    /// behavior's key names (`record::Capture`).
    pub cache_key: Option<Vec<u8>>,
    /// A HEAD's cache key: its response updates the GET stored there
    /// (RFC 9111 §4.3.4, §4.3.5), it is not stored itself.
    pub head_key: Option<Vec<u8>>,
    /// A stale stored object for this key: revalidated with the origin, and
    /// served if the origin group fails within its stale-if-error window.
    pub stale: Option<Arc<Object>>,
    /// The normalised Accept-Encoding (SPEC §4), sent instead of the
    /// viewer's (GET and HEAD on a caching behavior).
    pub accept_encoding: Option<&'static [u8]>,
    /// This request leads its key's collapsed flight: other requests for
    /// the key wait for it. Dropped (so they are released, the key marked
    /// pass) as soon as the response turns out not storable (SPEC §3.4).
    pub leader: Option<crate::cache::collapse::LeaderGuard<'a>>,
    /// The cluster peer asked before the origin group: the key's owner
    /// (SPEC §8, [`super::peer::first_hop`]).
    pub peer: Option<usize>,
}

/// What the access log and the metrics need to know about a forwarded
/// request.
#[derive(Debug, Default)]
pub struct Report {
    /// The status sent (0: none).
    pub status: u16,
    pub bytes: u64,
    /// The origin whose response (or failure) ended the request.
    pub origin: Option<usize>,
    pub attempts: u32,
    /// How it was answered, when the answer says (else the exchange's
    /// outcome decides: a failure's detail, `OriginStatus`, or `Miss`).
    pub detail: Option<Detail>,
    pub origin_time: Option<Duration>,
    /// The response was stored in the cache.
    pub stored: bool,
}

impl Report {
    /// Records an answer: what follows, the status and the bytes sent.
    fn answered(&mut self, (next, status, bytes): (Next, u16, u64), detail: Option<Detail>) -> Next {
        (self.status, self.bytes) = (status, bytes);
        if detail.is_some() {
            self.detail = detail;
        }
        next
    }
}

/// Forwards the request in `v` and answers the viewer.
pub async fn forward(w: &Worker, v: &mut Viewer, req: &mut Request<'_>, report: &mut Report) -> Next {
    let mut up = match Upload::prepare(w, v).await {
        Ok(up) => up,
        Err(stop) => return stopped(w, v, stop, &req.behavior.viewer_response, report).await,
    };
    // Revalidate a stale object with the origin, unless the viewer sent its
    // own conditions or a range (those requests are forwarded as they are).
    let stale = req.stale.clone();
    let revalidate = stale.as_deref().filter(|o| {
        (o.etag.is_some() || o.last_modified.is_some())
            && ![&b"if-none-match"[..], b"if-modified-since", b"if-range", b"range"]
                .iter()
                .any(|h| up.v.header(h).is_some())
    });
    let next = match exchange(w, &mut up, req, report, revalidate).await {
        Some(next) => next,
        // The origin's 304 validated another representation than the
        // stored one (RFC 9111 §4.3.4): ask again, without conditions.
        None => exchange(w, &mut up, req, report, None).await.unwrap_or(Next::Close),
    };
    if next == Next::KeepAlive {
        up.v.finish(up.consumed, &up.leftover);
    }
    next
}

/// One origin exchange for the request, sending `validators`' validators
/// when there are any, and its answer. `None`: a 304 that does not
/// validate them; nothing was answered.
async fn exchange(
    w: &Worker,
    up: &mut Upload<'_>,
    req: &mut Request<'_>,
    report: &mut Report,
    validators: Option<&Object>,
) -> Option<Next> {
    let rewrite = Rewrite {
        accept_encoding: req.accept_encoding,
        validators,
        drop_conditionals: false,
        framing: up.framing(),
    };
    let resp = up.v.take_resp();
    let route = (up.v.method(), up.replayable(), req.peer);
    let mut ex = Exchange::new(w, req.behavior, route, rewrite, resp);
    let next = match ex.run(up).await {
        Decision::Deliver { status: 304, conn } if validators.is_some_and(|o| !revalidated::validates(&ex, o)) => {
            ex.pool_if_complete(conn);
            ex.body_ended(Event::BodyDone);
            None
        }
        Decision::Deliver { status, conn } => Some(respond(&mut ex, up, req, report, (status, conn)).await),
        Decision::Answer { status, page } => Some(answer_failure(&mut ex, up, req, report, (status, page)).await),
        Decision::Stopped(stop) => Some(stopped(w, up.v, stop, &req.behavior.viewer_response, report).await),
    };
    let (summary, resp) = ex.end();
    up.v.put_resp(resp);
    report.attempts += summary.attempts;
    report.origin = summary.origin;
    report.origin_time = match (report.origin_time, summary.origin_time) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    if next.is_some() {
        report.detail.get_or_insert(match summary.final_failure {
            Some(f) => f.detail(),
            None if report.status >= 400 => Detail::OriginStatus,
            None => Detail::Miss,
        });
    }
    next
}

/// The exchange stopped on the viewer's side: a malformed body gets 400
/// (with `edits`, the response headers policy of the behavior the request
/// was routed to), a viewer gone gets nothing.
async fn stopped(w: &Worker, v: &mut Viewer, stop: Stop, edits: &ResponseEdits, report: &mut Report) -> Next {
    match stop {
        Stop::Malformed => {
            report.bytes = super::answers::client_error(w, v, 400, false, Some(edits)).await;
            report.status = 400;
            report.detail = Some(Detail::ClientError);
        }
        Stop::ViewerGone => report.detail = Some(Detail::ClientError),
        Stop::Done => {}
    }
    Next::Close
}

/// Answers an origin's response head the exchange decided to deliver.
async fn respond(
    ex: &mut Exchange<'_>,
    up: &mut Upload<'_>,
    req: &mut Request<'_>,
    report: &mut Report,
    (status, conn): (u16, OriginConn),
) -> Next {
    let now = Instant::now();
    super::invalidate::after_response(ex.w, up.v, &ex.buf, &ex.head);
    // 304 to our revalidation (one that validates the stored object, as
    // `exchange` checked): the stored object is fresh again.
    if let (Some(old), 304) = (ex.validators(), status) {
        let r = answer_revalidated(ex, up.v, req, old, conn).await;
        report.stored = r.1;
        ex.body_ended(Event::BodyDone);
        return report.answered(r.0, Some(Detail::RefreshHit));
    }
    // A HEAD's 200 updates the stored GET (RFC 9111 §4.3.5).
    if let (Some(store), Some(key), 200) = (ex.w.cache.as_deref(), req.head_key.as_deref(), status) {
        if let Some((obj, stored)) = revalidated::head_update(ex, store, key) {
            report.stored = stored;
            let r = answer_updated(ex, up.v, &obj, conn, HitLabel::RefreshHit(200)).await;
            ex.body_ended(Event::BodyDone);
            return report.answered(r, Some(Detail::RefreshHit));
        }
    }
    // stale-if-error: the origin group answered with a server error.
    if let Some(old) = req
        .stale
        .as_ref()
        .filter(|o| status >= 500 && o.may_serve_on_error(now))
    {
        drop(conn);
        let r = answer_stale(ex, up.v, old, status).await;
        ex.body_ended(Event::ViewerGone);
        return report.answered(r, Some(Detail::StaleHit));
    }
    let keep = up.v.head().keep_alive && up.body_done;
    let asked = Asked {
        head_request: up.v.is_head_request(),
        authorization: up.v.header(b"authorization").is_some(),
    };
    let request = (up.v.buf(), up.v.head());
    if let Some(cap) = req
        .cache_key
        .as_deref()
        .filter(|_| keeps_copy(ex))
        .and_then(|k| Capture::start(ex, k, request, asked))
    {
        return record_and_answer(ex, up.v, req, report, (conn, cap, keep)).await;
    }
    // Not storable: the waiters fetch on their own now, instead of after
    // this viewer's whole body.
    req.leader = None;
    let d = deliver(ex, up.v, conn, keep).await;
    streamed(ex, report, status, d)
}

/// Whether the answer may be stored here: an origin's, or a peer's with
/// `store_peer_fetches` (SPEC §8: false, only the owner stores; the
/// collapsed waiters are then released at the head, each asking the owner,
/// which collapses them in turn).
pub(super) fn keeps_copy(ex: &Exchange<'_>) -> bool {
    !ex.machine.on_peer() || ex.w.cfg.cluster.as_ref().is_some_and(|c| c.store_peer_fetches)
}

/// Answers for a response streamed to the viewer: the origin connection
/// pooled if it may be, the viewer's aborted if the body was cut short.
fn streamed(ex: &mut Exchange<'_>, report: &mut Report, status: u16, d: Delivered) -> Next {
    if let Some(c) = d.conn {
        ex.pool(c);
    }
    let next = if d.viewer_keep { Next::KeepAlive } else { Next::Close };
    let aborted = ex.body_ended(d.event);
    report.answered((if aborted { Next::Abort } else { next }, status, d.bytes), None)
}

/// A storable response: recorded whole and stored first, then this viewer
/// is answered from the store.
async fn record_and_answer(
    ex: &mut Exchange<'_>,
    v: &mut Viewer,
    req: &mut Request<'_>,
    report: &mut Report,
    (conn, cap, keep): (OriginConn, Capture, bool),
) -> Next {
    match record_then_serve(ex, v, conn, cap, (&mut req.leader, req.received, keep)).await {
        Recorded::Served {
            next,
            status,
            bytes,
            stored,
            conn,
        } => {
            report.stored = stored;
            if let Some(c) = conn {
                ex.pool(c);
            }
            ex.body_ended(Event::BodyDone);
            report.answered((next, status, bytes), None)
        }
        Recorded::Streamed(d) => {
            let status = ex.head.status;
            streamed(ex, report, status, d)
        }
        Recorded::Failed => {
            // Nothing went to the viewer yet: it gets a 502.
            let mut ps = Vec::new();
            ex.proxy_status(&mut ps);
            let failed = super::answers::Failed {
                status: 502,
                page: false,
                keep: false,
                proxy_status: &ps,
                edits: &ex.behavior.viewer_response,
            };
            let (_, status, bytes) = super::answers::origin_failed(ex.w, v, &failed).await;
            ex.body_ended(Event::BodyFailed);
            report.answered((Next::Close, status, bytes), None)
        }
    }
}

/// The origin confirmed the stale object (304): it is stored again, updated
/// by the 304 (RFC 9111 §4.3.4), and the viewer is answered from it.
/// Returns the answer and whether it was stored.
async fn answer_revalidated(
    ex: &Exchange<'_>,
    v: &mut Viewer,
    req: &Request<'_>,
    old: &Object,
    conn: OriginConn,
) -> ((Next, u16, u64), bool) {
    let key = req.cache_key.as_deref().or(req.head_key.as_deref());
    let at = ex.w.cache.as_deref().zip(key);
    let (obj, stored) = revalidated::update(ex, at, old);
    let r = answer_updated(ex, v, &obj, conn, HitLabel::RefreshHit(304)).await;
    (r, stored)
}

/// Answers the viewer from an object the origin's response (without a
/// body: a 304, a HEAD's 200) just updated, and pools the connection.
async fn answer_updated(
    ex: &Exchange<'_>,
    v: &mut Viewer,
    obj: &Object,
    conn: OriginConn,
    label: HitLabel,
) -> (Next, u16, u64) {
    ex.pool_if_complete(conn);
    super::hit::answer(ex.w, v, obj, Instant::now(), label, b"", &ex.behavior.viewer_response).await
}

/// The stale object `old` served within its stale-if-error window, the
/// origin group having failed with `status` (RFC 5861 §4).
async fn answer_stale(ex: &Exchange<'_>, v: &mut Viewer, old: &Object, status: u16) -> (Next, u16, u64) {
    let label = HitLabel::StaleOnError(status);
    super::hit::answer(ex.w, v, old, Instant::now(), label, b"", &ex.behavior.viewer_response).await
}

/// No origin response to deliver: a stale object within its
/// stale-if-error window, else the error page, 502 or 504.
async fn answer_failure(
    ex: &mut Exchange<'_>,
    up: &mut Upload<'_>,
    req: &Request<'_>,
    report: &mut Report,
    (status, page): (u16, bool),
) -> Next {
    let now = Instant::now();
    if let Some(old) = req.stale.as_ref().filter(|o| o.may_serve_on_error(now)) {
        let r = answer_stale(ex, up.v, old, status).await;
        return report.answered(r, Some(Detail::StaleHit));
    }
    let mut ps = Vec::new();
    ex.proxy_status(&mut ps);
    let failed = super::answers::Failed {
        status,
        page,
        keep: up.v.head().keep_alive && up.body_done,
        proxy_status: &ps,
        edits: &ex.behavior.viewer_response,
    };
    let r = super::answers::origin_failed(ex.w, up.v, &failed).await;
    if page {
        let key = req.cache_key.as_deref();
        let names = &ex.behavior.cache_key.names;
        report.stored = super::record::store_error_page(ex.w, (key, names), status, ex.origin_max_age());
    }
    report.answered(r, None)
}
