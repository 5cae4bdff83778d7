//! The forward phase: drive the attempt machine over the pool and stream the
//! answer to the viewer.
//!
//! The machine decides; this file performs. Each loop turn takes one
//! [`Action`], does its I/O with the deadline the action carries, and feeds
//! the resulting [`Event`] back. Request bodies are either small enough to be
//! kept whole (up to [`REPLAY_MAX`], so a failed attempt can be sent again to
//! a fresh connection or to the secondary) or streamed once on a fresh
//! connection. Response bodies are always streamed through one reusable
//! buffer, so a 100 MiB body costs the proxy 64 KiB.

use super::conn::{write_timeout, Next, Viewer};
use super::Worker;
use crate::config::{Behavior, Target};
use crate::http::body::BodyCursor;
use crate::http::frame;
use crate::http::parse::BodyKind;
use crate::http::response::{RespBody, ResponseHead};
use crate::http::write::HitLabel;
use crate::http::write::{
    write_generated_head, write_request_head, write_response_head, AttemptCtx, Generated, RequestFraming,
    RequestRewrite, ResponseRewrite, ViewerFraming,
};
use crate::net;
use crate::origin::attempt::{Action, AttemptMachine, Event, Failure, Plan, Role, Step};
use crate::origin::client;
use crate::origin::pool::OriginConn;
use crate::origin::reuse::{ResponseReader, Reuse};
use crate::proxy::conn::answer_from_cache;
use crate::proxy::hooks::{AttemptInfo, HeaderLines};
use crate::proxy::record::Capture;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Request bodies up to this size are read whole before forwarding, which
/// makes the request replayable (retry, failover).
pub const REPLAY_MAX: u64 = 64 * 1024;

/// A routed request on its way to an origin.
pub struct Request<'a> {
    pub behavior: &'a crate::config::Behavior,
    pub received: Instant,
    /// The cache key, when the response may be stored (a GET without a body
    /// on a caching behavior, with a cache configured).
    pub cache_key: Option<Vec<u8>>,
    /// A stale stored object for this key: revalidated with the origin, and
    /// served if the origin group fails within its stale-if-error window.
    pub stale: Option<std::sync::Arc<crate::cache::store::Object>>,
    /// The normalised Accept-Encoding the cache key holds (SPEC §4), sent
    /// instead of the viewer's (GET and HEAD on a caching behavior).
    pub accept_encoding: Option<&'static [u8]>,
    /// This request leads its key's collapsed flight: other requests for
    /// the key wait for it. Dropped (so they are released, the key marked
    /// pass) as soon as the response turns out not storable (SPEC §3.4).
    pub leader: Option<crate::cache::collapse::LeaderGuard<'a>>,
}

/// True when `obj` may still be served because the origins failed.
fn stale_on_error_ok(obj: &crate::cache::store::Object, now: Instant) -> bool {
    obj.may_serve_on_error(now)
}

/// The refreshed object after a 304: same stored bytes, new age, and the
/// freshness the 304 gives (else the old lifetime).
pub(crate) fn refreshed(
    b: &Behavior,
    old: &crate::cache::store::Object,
    buf: &[u8],
    rh: &ResponseHead,
    now: Instant,
) -> crate::cache::store::Object {
    use crate::cache::freshness::{lifetime, Policy, ResponseFacts};
    let cc = rh.header_list(buf, b"cache-control");
    let age = rh.header_list(buf, b"age");
    let cdn = rh.header_list(buf, b"cdn-cache-control");
    let facts = ResponseFacts {
        status: old.status,
        cache_control: cc.as_deref(),
        expires: rh.header(buf, b"expires"),
        date: rh.header(buf, b"date"),
        vary: None,
        set_cookie: false,
        cdn_cache_control: cdn.as_deref(),
        age: age.as_deref(),
    };
    let policy = Policy {
        min_ttl: b.min_ttl,
        default_ttl: old.ttl,
        max_ttl: b.max_ttl,
    };
    let life = lifetime(&facts, false, &policy, None, std::time::SystemTime::now());
    crate::cache::store::Object {
        head: old.head.clone(),
        body: old.body.clone(),
        status: old.status,
        stored: now,
        initial_age: life.map_or(std::time::Duration::ZERO, |l| l.initial_age),
        ttl: life.map_or(old.ttl, |l| l.ttl),
        stale_while_revalidate: life.map_or(old.stale_while_revalidate, |l| l.stale_while_revalidate),
        stale_if_error: life.map_or(old.stale_if_error, |l| l.stale_if_error),
        etag: old.etag.clone(),
        last_modified: old.last_modified.clone(),
    }
}

/// Stores a fully recorded response.
/// Caches the error page answered for `status` (SPEC §4: for
/// `max(error_response.min_ttl, origin max-age)`), when the request is
/// cacheable and that is above zero.
fn store_error_page(w: &Worker, req: &Request<'_>, status: u16, origin_max_age: Option<u64>, now: Instant) -> bool {
    let (Some(store), Some(key), Some(page)) = (w.cache.as_ref(), req.cache_key.as_deref(), w.cfg.error_page(status))
    else {
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
    let obj = crate::cache::store::Object::simple(
        bytes::Bytes::from(head),
        page.body.clone(),
        page.response_status,
        now,
        ttl,
    );
    store.insert(key, std::sync::Arc::new(obj))
}

/// Builds the machine's plan for a request.
pub(crate) fn plan<'a>(w: &'a Worker, b: &Behavior, method: &[u8], replayable: bool) -> Plan<'a> {
    let cfg = &w.cfg;
    let step = |i: usize, role: Role| {
        let o = &cfg.origins[i];
        Step {
            origin: i,
            role,
            connection_attempts: o.connection_attempts,
            connection_timeout: o.connection_timeout,
            response_timeout: o.response_timeout,
        }
    };
    let (steps, failover_status) = match b.target {
        Target::Origin(i) => ([Some(step(i, Role::Single)), None], &[][..]),
        Target::Group(g) => {
            let g = &cfg.groups[g];
            (
                [
                    Some(step(g.primary, Role::Primary)),
                    Some(step(g.secondary, Role::Secondary)),
                ],
                &g.failover_status[..],
            )
        }
    };
    Plan {
        steps,
        failover_status,
        method_fails_over: matches!(method, b"GET" | b"HEAD" | b"OPTIONS"),
        replayable,
        // primary_fast_fail: skip a primary marked down (all but the probe).
        skip_primary: match b.target {
            Target::Group(g) => w.health[g].skip_primary(&cfg.groups[g], Instant::now()),
            Target::Origin(_) => false,
        },
        error_pages: &cfg.error_page_statuses,
    }
}

/// Carries out a `Connect` action: a pooled connection when allowed, else a
/// new connect by `deadline`. Connects to a group's primary feed
/// `primary_fast_fail`. Returns the connection, the event for the machine
/// and the time to feed it at.
pub(crate) async fn acquire(
    w: &Worker,
    b: &Behavior,
    origin: usize,
    role: Role,
    pooled: bool,
    deadline: Instant,
    attempt: u32,
) -> (Option<OriginConn>, Event, Instant) {
    if pooled {
        if let Some(c) = w.pool.borrow_mut().take(origin, Instant::now()) {
            return (Some(c), Event::Connected { reused: true }, Instant::now());
        }
    }
    let cfg = &w.cfg;
    let o = &cfg.origins[origin];
    let addr = o.addrs[(attempt as usize - 1) % o.addrs.len().max(1)];
    let result = client::connect(addr, deadline, o.tls.as_ref()).await;
    if let (Target::Group(g), Role::Primary) = (b.target, role) {
        let h = &w.health[g];
        match result {
            Ok(_) => h.connect_ok(&cfg.groups[g], &o.id),
            Err(_) => h.connect_failed(&cfg.groups[g], &o.id, Instant::now()),
        }
    }
    match result {
        Ok(c) => (Some(c), Event::Connected { reused: false }, Instant::now()),
        Err(crate::origin::attempt::ConnectError::Timeout) => (None, Event::Timer, Instant::now().max(deadline)),
        Err(e) => (None, Event::ConnectFailed(e), Instant::now()),
    }
}

/// How the request body travels.
enum ReqBody {
    /// No body, or the whole body is `buf[head_len..head_len + n]`.
    Whole(usize),
    /// A chunked body that came whole with the head (up to [`REPLAY_MAX`]),
    /// decoded: sent with a Content-Length, replayable. `raw`: the bytes of
    /// the viewer buffer it took.
    Decoded { data: Vec<u8>, raw: usize },
    /// Streamed from the viewer while sending.
    Stream(BodyCursor),
}

/// Reads the rest of a small body into the viewer buffer.
async fn read_whole_body(w: &Worker, v: &mut Viewer, n: usize) -> bool {
    let want = v.head.head_len + n;
    while v.buf.len() < want {
        let buf = std::mem::take(&mut v.buf);
        let need = want - buf.len();
        let fut = net::read_more(&mut v.stream, buf, need, want);
        match monoio::time::timeout(write_timeout(w), fut).await {
            Ok((Ok(k), b)) if k > 0 => v.buf = b,
            _ => return false,
        }
    }
    true
}

async fn send_continue(w: &Worker, v: &mut Viewer) -> bool {
    let fut = monoio::io::AsyncWriteRentExt::write_all(&mut v.stream, &b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
    matches!(monoio::time::timeout(write_timeout(w), fut).await, Ok((Ok(_), _)))
}

/// What the access log needs to know about a forwarded request.
#[derive(Debug, Default)]
pub struct Report {
    pub status: u16,
    pub bytes: u64,
    /// Origin index whose response (or failure) ended the request.
    pub origin: Option<usize>,
    pub attempts: u32,
    /// Detailed result (SPEC §7).
    pub detail: &'static str,
    pub origin_time: Option<std::time::Duration>,
    /// The response was stored in the cache.
    pub stored: bool,
}

/// Per-request context for the code hooks.
fn attempt_info<'a>(w: &'a Worker, v: &'a Viewer, m: &AttemptMachine<'_>) -> AttemptInfo<'a> {
    let step = m.current();
    AttemptInfo {
        attempt: m.attempts(),
        origin: &w.cfg.origins[step.origin].id,
        role: step.role,
        method: v.head.method(&v.buf),
        path: v.head.path.of(&v.buf),
    }
}

/// Reads toward a response head and runs the `origin_response` hook on it.
#[allow(clippy::too_many_arguments)]
async fn read_head_hooked(
    w: &Worker,
    v: &Viewer,
    m: &AttemptMachine<'_>,
    c: &mut OriginConn,
    obuf: Vec<u8>,
    deadline: Instant,
    rhead: &mut ResponseHead,
    got_bytes: &mut bool,
    reused: bool,
    resp_extra: &mut Vec<u8>,
) -> (Event, Vec<u8>) {
    let head_request = v.head.is_head(&v.buf);
    let (ev, b) = client::read_head(c, obuf, deadline, head_request, rhead, got_bytes, reused).await;
    if let (Event::Head { status }, Some(h)) = (ev, w.hooks.as_ref()) {
        resp_extra.clear();
        h.origin_response(&attempt_info(w, v, m), status, &mut HeaderLines::new(resp_extra));
    }
    (ev, b.unwrap_or_else(|| w.take_buf()))
}

/// Forwards the request in `v` and answers the viewer.
pub async fn forward(w: &Rc<Worker>, v: &mut Viewer, req: &mut Request<'_>, report: &mut Report) -> Next {
    let cfg = w.cfg.clone();
    let head_len = v.head.head_len;
    let head_request = v.head.is_head(&v.buf);
    let viewer_http10 = v.head.minor == 0;
    let continue_needed = v.head.expect_continue && !viewer_http10;

    // Decide how the body travels.
    let mut body = match v.head.body {
        BodyKind::None => ReqBody::Whole(0),
        BodyKind::Length(n) if n <= REPLAY_MAX => {
            let n = n as usize;
            if v.buf.len() < head_len + n {
                if continue_needed && !send_continue(w, v).await {
                    report.detail = "ClientError";
                    return Next::Close;
                }
                if !read_whole_body(w, v, n).await {
                    report.detail = "ClientError";
                    return Next::Close;
                }
            }
            ReqBody::Whole(n)
        }
        BodyKind::Length(n) => ReqBody::Stream(BodyCursor::length(n)),
        // What came with the head is checked first: a bad chunk line there
        // is refused before anything reaches an origin (SPEC §3.1).
        BodyKind::Chunked => match frame::decode_buffered(&v.buf[head_len..], REPLAY_MAX as usize) {
            Ok(frame::Buffered::Whole { data, raw }) => ReqBody::Decoded { data, raw },
            Ok(frame::Buffered::Partial) => ReqBody::Stream(BodyCursor::chunked()),
            Err(_) => return refuse_body(w, v, report).await,
        },
    };
    let replayable = !matches!(body, ReqBody::Stream(_));
    let idempotent = is_idempotent(v.head.method(&v.buf));
    let framing = match &body {
        ReqBody::Decoded { data, .. } => RequestFraming::Length(data.len() as u64),
        _ => RequestFraming::of(&v.head),
    };
    // The viewer's request body has been read to its end (else the connection
    // cannot carry another request).
    let mut body_done = replayable;
    let plan = plan(w, req.behavior, v.head.method(&v.buf), replayable);
    // Revalidate a stale object with the origin, unless the viewer sent its
    // own conditions or a range (those requests are forwarded as they are).
    let revalidate = req.stale.as_ref().filter(|o| {
        (o.etag.is_some() || o.last_modified.is_some())
            && ![&b"if-none-match"[..], b"if-modified-since", b"if-range", b"range"]
                .iter()
                .any(|h| v.head.header(&v.buf, h).is_some())
    });
    let mut m = AttemptMachine::new(plan);
    let mut conn: Option<OriginConn> = None;
    let mut reused = false;
    let mut got_bytes = false;
    let mut obuf = w.take_buf();
    let mut rhead = std::mem::take(&mut v.resp);
    // Header lines the hooks add to the request / the delivered response.
    let mut req_extra: Vec<u8> = Vec::new();
    let mut resp_extra: Vec<u8> = Vec::new();
    // Bytes of `v.buf` that belong to this request (head + body read so far).
    let mut consumed = head_len
        + match body {
            ReqBody::Whole(n) => n,
            ReqBody::Decoded { raw, .. } => raw,
            ReqBody::Stream(_) => 0,
        };
    // Bytes read past the end of a streamed body (the next pipelined request).
    let mut leftover: Vec<u8> = Vec::new();
    let mut next = Next::Close;
    let mut origin_started: Option<Instant> = None;
    let mut origin_ended: Option<Instant> = None;

    let mut last_event = Event::Timer;
    let mut act = m.start(Instant::now());
    loop {
        act = match act {
            Action::Connect {
                origin,
                role,
                pooled,
                deadline,
                attempt,
            } => {
                origin_started.get_or_insert_with(Instant::now);
                // After a failover on status the previous origin's answer may
                // be complete in `obuf`: keep its connection instead of closing.
                if let Some(c) = conn.take() {
                    if let Event::Head { .. } = last_event {
                        if response_complete(&obuf, &rhead) {
                            let prev = m.failures().last().map_or(origin, |f| f.origin);
                            w.pool.borrow_mut().put(prev, c, Instant::now());
                        }
                    }
                }
                // That head belonged to the connection just let go: a later
                // Connect (after this one's send fails) must not pool the
                // failed connection on its account.
                last_event = Event::Timer;
                // A non-idempotent request never takes a pooled connection:
                // a failure there would be retried on a fresh one, and a
                // proxy must not send it twice (RFC 9110 §9.2.2).
                let pooled = pooled && replayable && idempotent;
                let (c, ev, at) = acquire(w, req.behavior, origin, role, pooled, deadline, attempt).await;
                reused = ev == (Event::Connected { reused: true });
                conn = c;
                m.on(ev, at)
            }
            Action::Send { deadline } => {
                let Some(c) = conn.as_mut() else {
                    break;
                };
                got_bytes = false;
                let step = m.current();
                let o = &cfg.origins[step.origin];
                req_extra.clear();
                if let Some(h) = w.hooks.as_ref() {
                    h.origin_request(&attempt_info(w, v, &m), &mut HeaderLines::new(&mut req_extra));
                }
                if let Some(o) = revalidate {
                    if let Some(etag) = &o.etag {
                        req_extra.extend_from_slice(b"If-None-Match: ");
                        req_extra.extend_from_slice(etag);
                        req_extra.extend_from_slice(b"\r\n");
                    }
                    if let Some(lm) = &o.last_modified {
                        req_extra.extend_from_slice(b"If-Modified-Since: ");
                        req_extra.extend_from_slice(lm);
                        req_extra.extend_from_slice(b"\r\n");
                    }
                }
                // Build the head for this attempt.
                let mut out = std::mem::take(&mut v.out);
                out.clear();
                write_request_head(
                    &mut out,
                    &v.buf,
                    &v.head,
                    &RequestRewrite {
                        host_override: o.host_header.as_deref(),
                        host_fallback: &o.address,
                        client_ip: v.peer_ip.as_bytes(),
                        via: &cfg.server.via,
                        actions: &req.behavior.origin_request,
                        ctx: AttemptCtx {
                            attempt: m.attempts(),
                            origin: &o.id,
                            role: step.role.as_str(),
                        },
                        extra: &req_extra,
                        framing,
                        accept_encoding: req.accept_encoding,
                        drop_conditionals: false,
                    },
                );
                let sent = match &mut body {
                    ReqBody::Whole(n) => {
                        out.extend_from_slice(&v.buf[head_len..head_len + *n]);
                        let (r, o) = write_with_deadline(c.stream(), out, deadline).await;
                        v.out = o;
                        r
                    }
                    ReqBody::Decoded { data, .. } => {
                        out.extend_from_slice(data);
                        let (r, o) = write_with_deadline(c.stream(), out, deadline).await;
                        v.out = o;
                        r
                    }
                    ReqBody::Stream(cursor) => {
                        let (r, o) = write_with_deadline(c.stream(), out, deadline).await;
                        v.out = o;
                        match r {
                            Ok(()) => {
                                match stream_request_body(w, v, c, cursor, continue_needed, &mut obuf, &mut leftover)
                                    .await
                                {
                                    BodyStream::Done(used) => {
                                        consumed = head_len + used;
                                        body_done = true;
                                        Ok(())
                                    }
                                    BodyStream::OriginFailed => Err(()),
                                    BodyStream::Malformed => {
                                        // The origin connection closes with
                                        // the request incomplete.
                                        conn = None;
                                        m.on(Event::ViewerGone, Instant::now());
                                        next = refuse_body(w, v, report).await;
                                        break;
                                    }
                                    BodyStream::ViewerFailed => {
                                        m.on(Event::ViewerGone, Instant::now());
                                        report.detail = "ClientError";
                                        break;
                                    }
                                }
                            }
                            Err(()) => Err(()),
                        }
                    }
                };
                c.uses += 1;
                match sent {
                    Err(()) => m.on(Event::FailedBeforeResponse { reused }, Instant::now()),
                    Ok(()) => {
                        // The second half of `Send`: wait for the head,
                        // exactly as `AwaitHead` does.
                        obuf.clear();
                        Action::AwaitHead { deadline }
                    }
                }
            }
            Action::AwaitHead { deadline } => {
                let Some(c) = conn.as_mut() else {
                    break;
                };
                let (ev, b) = read_head_hooked(
                    w,
                    v,
                    &m,
                    c,
                    obuf,
                    deadline,
                    &mut rhead,
                    &mut got_bytes,
                    reused,
                    &mut resp_extra,
                )
                .await;
                obuf = b;
                last_event = ev;
                m.on(ev, Instant::now())
            }
            Action::Deliver { status } => {
                origin_ended = Some(Instant::now());
                let Some(c) = conn.take() else {
                    break;
                };
                let now = Instant::now();
                // 304 to our revalidation: the stored object is fresh again.
                if let (Some(old), 304) = (revalidate, status) {
                    let obj = std::sync::Arc::new(refreshed(req.behavior, old, &obuf, &rhead, now));
                    if let (Some(store), Some(k)) = (w.cache.as_ref(), req.cache_key.as_deref()) {
                        report.stored = store.insert(k, obj.clone());
                    }
                    if response_complete(&obuf, &rhead) {
                        w.pool.borrow_mut().put(m.current().origin, c, now);
                    }
                    let (n, st, bytes) = answer_from_cache(w, v, &obj, now, HitLabel::RefreshHit, b"").await;
                    (next, report.status, report.bytes, report.detail) = (n, st, bytes, "RefreshHit");
                    m.on(Event::BodyDone, now);
                    break;
                }
                // stale-if-error: the origin group answered with a server error.
                if let Some(old) = req
                    .stale
                    .as_ref()
                    .filter(|o| status >= 500 && stale_on_error_ok(o, now))
                {
                    drop(c);
                    let (n, st, bytes) = answer_from_cache(w, v, old, now, HitLabel::StaleOnError(status), b"").await;
                    (next, report.status, report.bytes, report.detail) = (n, st, bytes, "StaleHit");
                    m.on(Event::ViewerGone, now);
                    break;
                }
                let keep = v.head.keep_alive && body_done;
                let capture = req.cache_key.as_deref().and_then(|k| {
                    let auth = v.head.header(&v.buf, b"authorization").is_some();
                    Capture::start(w, req.behavior, k, (&obuf, &rhead), head_request, auth)
                });
                if let Some(cap) = capture {
                    // Storable: recorded whole and stored first, then this
                    // viewer is answered from the store (`record`).
                    let f = super::record::Fetched {
                        head: &rhead,
                        machine: &m,
                        behavior: req.behavior,
                        hook_lines: &resp_extra,
                        received: req.received,
                    };
                    let r = super::record::record_then_serve(w, v, c, obuf, &f, cap, &mut req.leader).await;
                    match r {
                        super::record::Recorded::Served {
                            next: n,
                            status: st,
                            bytes,
                            stored,
                            conn: reusable,
                            buf,
                        } => {
                            obuf = buf;
                            (next, report.status, report.bytes, report.stored) = (n, st, bytes, stored);
                            if let Some(c) = reusable {
                                w.pool.borrow_mut().put(m.current().origin, c, Instant::now());
                            }
                            m.on(Event::BodyDone, Instant::now());
                        }
                        super::record::Recorded::Failed { buf } => {
                            // Nothing went to the viewer yet: it gets a 502.
                            obuf = buf;
                            let (_, st, bytes) = generated(w, v, &m, 502, false, false, head_request).await;
                            (next, report.status, report.bytes) = (Next::Close, st, bytes);
                            m.on(Event::BodyFailed, Instant::now());
                        }
                    }
                    break;
                }
                // Not storable: the waiters fetch on their own now, instead
                // of after this viewer's whole body.
                req.leader = None;
                let d = deliver(
                    w,
                    v,
                    c,
                    obuf,
                    &rhead,
                    &m,
                    req.behavior,
                    keep,
                    viewer_http10,
                    &resp_extra,
                )
                .await;
                obuf = d.buf;
                report.status = status;
                report.bytes = d.bytes;
                if d.reusable {
                    w.pool.borrow_mut().put(m.current().origin, d.conn, Instant::now());
                }
                next = if d.viewer_keep { Next::KeepAlive } else { Next::Close };
                m.on(d.event, Instant::now())
            }
            Action::ServePage { status } | Action::Generate { status } => {
                origin_ended = Some(Instant::now());
                conn = None;
                let now = Instant::now();
                if let Some(old) = req.stale.as_ref().filter(|o| stale_on_error_ok(o, now)) {
                    let (n, st, bytes) = answer_from_cache(w, v, old, now, HitLabel::StaleOnError(status), b"").await;
                    (next, report.status, report.bytes, report.detail) = (n, st, bytes, "StaleHit");
                    break;
                }
                let keep = v.head.keep_alive && body_done;
                let page = matches!(act, Action::ServePage { .. });
                let (n, sent_status, bytes) = generated(w, v, &m, status, page, keep, head_request).await;
                next = n;
                report.status = sent_status;
                report.bytes = bytes;
                if page {
                    // The origin's own max-age, when the status came from an origin.
                    let origin_max_age = m
                        .final_failure()
                        .is_none()
                        .then(|| rhead.header_list(&obuf, b"cache-control"))
                        .flatten()
                        .and_then(|cc| crate::cache::freshness::parse_cache_control(&cc).max_age);
                    report.stored = store_error_page(w, req, status, origin_max_age, now);
                }
                break;
            }
            Action::AbortViewer => {
                next = Next::Abort;
                break;
            }
            Action::Done => break,
        };
    }
    drop(conn);
    v.resp = rhead;
    w.give_buf(obuf);
    report.attempts = m.attempts();
    report.origin = (m.attempts() > 0).then(|| m.current().origin);
    report.origin_time = origin_started.map(|t| origin_ended.unwrap_or_else(Instant::now) - t);
    count_attempts(w, &m, req.behavior, report.origin_time);
    if report.detail.is_empty() {
        report.detail = match m.final_failure() {
            Some(f) => f.detail(),
            None if report.status >= 400 => "OriginStatus",
            None => "Miss",
        };
    }
    if next == Next::KeepAlive {
        let consumed = consumed.min(v.buf.len());
        v.buf.drain(..consumed);
        v.buf.extend_from_slice(&leftover);
    }
    next
}

/// Adds a finished attempt machine's attempts and failover to the metrics
/// (also for background refreshes).
pub(super) fn count_attempts(w: &Worker, m: &AttemptMachine<'_>, b: &Behavior, origin_time: Option<Duration>) {
    let s = m.current();
    // The origin answered: a status was decided without a final failure, and
    // that answer is not itself a failover status already counted as a
    // failure of this attempt (a last origin's 503 is delivered as it is).
    let counted_as_failure = matches!(
        m.failures().last(),
        Some(f) if matches!(f.failure, Failure::Status(_)) && f.origin == s.origin && f.role == s.role
    );
    let answered_by = (m.attempts() > 0 && m.outcome().is_some() && m.final_failure().is_none() && !counted_as_failure)
        .then_some((s.origin, s.role));
    let group = match b.target {
        Target::Group(g) => Some(g),
        Target::Origin(_) => None,
    };
    w.metrics().forwarded(m.failures(), answered_by, group, origin_time);
}

/// [`write_within`] the whole of `out` by `deadline`; a buffer lost with a
/// timed-out write is replaced.
async fn write_with_deadline(s: &mut crate::tls::Stream, out: Vec<u8>, deadline: Instant) -> (Result<(), ()>, Vec<u8>) {
    let n = out.len();
    let (r, o) = write_within(s, out, 0..n, deadline.saturating_duration_since(Instant::now())).await;
    (r, o.unwrap_or_else(|| Vec::with_capacity(4096)))
}

enum BodyStream {
    /// The body is complete; `usize` bytes of it came from the viewer buffer.
    Done(usize),
    OriginFailed,
    ViewerFailed,
    /// The viewer's chunk framing is malformed: 400.
    Malformed,
}

/// Methods a proxy may send again (RFC 9110 §9.2.2).
fn is_idempotent(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE")
}

/// Answers 400 to a request whose body framing is malformed, and closes.
async fn refuse_body(w: &Worker, v: &mut Viewer, report: &mut Report) -> Next {
    report.bytes = super::conn::send_error(w, v, 400, false).await;
    report.status = 400;
    report.detail = "ClientError";
    Next::Close
}

/// Feeds body bytes to `cursor`; a chunked body is framed again into
/// `framed` (SPEC §3.1). Returns the bytes of `input` that are body.
fn pass_body(cursor: &mut BodyCursor, chunked: bool, input: &[u8], framed: &mut Vec<u8>) -> Result<usize, ()> {
    framed.clear();
    if chunked {
        frame::reframe(cursor, input, framed).map_err(|_| ())
    } else {
        cursor.feed(input, |_| {}).map_err(|_| ())
    }
}

/// Streams a request body from the viewer to the origin.
async fn stream_request_body(
    w: &Worker,
    v: &mut Viewer,
    c: &mut OriginConn,
    cursor: &mut BodyCursor,
    continue_needed: bool,
    tmp: &mut Vec<u8>,
    leftover: &mut Vec<u8>,
) -> BodyStream {
    let head_len = v.head.head_len;
    let timeout = write_timeout(w);
    let chunked = v.head.body == BodyKind::Chunked;
    let mut framed = Vec::new();
    // Body bytes that arrived with the head.
    let Ok(used) = pass_body(cursor, chunked, &v.buf[head_len..], &mut framed) else {
        return BodyStream::Malformed;
    };
    if used > 0 {
        let buf = std::mem::take(&mut v.buf);
        let (r, b) = if chunked {
            let n = framed.len();
            let (r, f) = write_within(c.stream(), framed, 0..n, timeout).await;
            framed = f.unwrap_or_default();
            (r, Some(buf))
        } else {
            write_within(c.stream(), buf, head_len..head_len + used, timeout).await
        };
        v.buf = b.unwrap_or_default();
        if r.is_err() {
            return BodyStream::OriginFailed;
        }
    }
    if cursor.is_done() {
        return BodyStream::Done(used);
    }
    if continue_needed && used == 0 && !send_continue(w, v).await {
        return BodyStream::ViewerFailed;
    }
    // The rest comes in through `tmp`; the head stays in `v.buf`.
    v.buf.truncate(head_len + used);
    loop {
        let mut b = std::mem::take(tmp);
        b.clear();
        let fut = net::read_more(&mut v.stream, b, super::IO_BUF, super::IO_BUF);
        let b = match monoio::time::timeout(timeout, fut).await {
            Ok((Ok(n), b)) if n > 0 => b,
            _ => return BodyStream::ViewerFailed,
        };
        let Ok(n) = pass_body(cursor, chunked, &b, &mut framed) else {
            return BodyStream::Malformed;
        };
        if n < b.len() {
            leftover.extend_from_slice(&b[n..]);
        }
        let r = if chunked {
            *tmp = b;
            let len = framed.len();
            let (r, f) = write_within(c.stream(), framed, 0..len, timeout).await;
            framed = f.unwrap_or_default();
            r
        } else {
            let (r, b) = write_within(c.stream(), b, 0..n, timeout).await;
            *tmp = b.unwrap_or_default();
            r
        };
        if r.is_err() {
            return BodyStream::OriginFailed;
        }
        if cursor.is_done() {
            return BodyStream::Done(used);
        }
    }
}

pub(super) fn proxy_status(w: &Worker, m: &AttemptMachine<'_>, out: &mut Vec<u8>) {
    use std::io::Write;
    for (i, f) in m.failures().iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let _ = write!(
            out,
            "{}; error={}; next-hop=\"{}\"",
            w.cfg.server.via,
            f.failure.error_type(),
            w.cfg.origins[f.origin].id
        );
        if let crate::origin::attempt::Failure::Status(s) = f.failure {
            let _ = write!(out, "; received-status={s}");
        }
    }
}

/// Cache-Status for a forwarded response (RFC 9211 `fwd` reasons).
fn cache_status<'w>(w: &'w Worker, b: &Behavior, method_ok: bool) -> &'w [u8] {
    if !b.cache {
        &w.cache_status_bypass
    } else if !method_ok {
        &w.cache_status_method
    } else {
        &w.cache_status_miss
    }
}

/// True when `buf` holds exactly one complete response (head and body) on a
/// connection that allows reuse.
pub(crate) fn response_complete(buf: &[u8], rh: &ResponseHead) -> bool {
    crate::origin::reuse::complete_in(buf, rh) == Reuse::Reusable
}

/// What delivering a response came to.
struct Delivered {
    /// For the machine: `BodyDone`, `BodyFailed` or `ViewerGone`.
    event: Event,
    /// The origin connection can go back to the pool.
    reusable: bool,
    /// The viewer connection stays open.
    viewer_keep: bool,
    conn: OriginConn,
    buf: Vec<u8>,
    /// Bytes written to the viewer.
    bytes: u64,
}

/// Streams the delivered response to the viewer.
#[allow(clippy::too_many_arguments)]
async fn deliver(
    w: &Worker,
    v: &mut Viewer,
    mut c: OriginConn,
    mut obuf: Vec<u8>,
    rh: &ResponseHead,
    m: &AttemptMachine<'_>,
    b: &Behavior,
    request_keep: bool,
    viewer_http10: bool,
    hook_lines: &[u8],
) -> Delivered {
    let mut bytes = 0u64;
    macro_rules! done {
        ($ev:expr, $reusable:expr, $keep:expr, $buf:expr) => {
            return Delivered {
                event: $ev,
                reusable: $reusable,
                viewer_keep: $keep,
                conn: c,
                buf: $buf,
                bytes,
            }
        };
    }
    let cfg = &w.cfg;
    let timeout = write_timeout(w);
    let rt = cfg.origins[m.current().origin].response_timeout;
    // The viewer gets framing of ringfront's own (SPEC §3.5): a chunked
    // body is decoded and framed again (or delimited by close for HTTP/1.0).
    let framing = ViewerFraming::of(rh, viewer_http10);
    let decode = rh.body() == RespBody::Chunked;
    let viewer_keep = request_keep && framing != ViewerFraming::Close && !w.shared.is_stopping();
    let mut ps = Vec::new();
    proxy_status(w, m, &mut ps);
    let method = v.head.method(&v.buf);
    let cs = cache_status(w, b, method == b"GET" || method == b"HEAD");
    let step = m.current();
    let mut out = std::mem::take(&mut v.out);
    out.clear();
    let rw = ResponseRewrite {
        via: &cfg.server.via,
        x_cache: if rh.status >= 400 {
            &w.x_cache_error
        } else {
            &w.x_cache_miss
        },
        cache_status: cs,
        proxy_status: &ps,
        actions: &b.origin_response,
        ctx: AttemptCtx {
            attempt: m.attempts(),
            origin: &cfg.origins[step.origin].id,
            role: step.role.as_str(),
        },
        framing,
        keep_alive: viewer_keep,
        viewer_http10,
        extra: hook_lines,
    };
    write_response_head(&mut out, &obuf, rh, &rw);
    let mut reader = ResponseReader::after_head(rh);
    // Body bytes that came with the head.
    let start = rh.head_len;
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    let used = match reader.feed(&obuf[start..], |r| {
        if decode {
            ranges.push(r)
        }
    }) {
        Ok(f) => f.used,
        Err(_) => done!(Event::BodyFailed, false, false, obuf),
    };
    if decode {
        let n = frame::compact(&mut obuf[start..], &ranges);
        put_data(&mut out, framing, &obuf[start..start + n], reader.is_done());
    } else {
        out.extend_from_slice(&obuf[start..start + used]);
    }
    let head_and_first = out.len() as u64;
    let (r, o) = match monoio::time::timeout(timeout, net::write_all(&mut v.stream, out)).await {
        Ok(x) => x,
        Err(_) => done!(Event::ViewerGone, false, false, obuf),
    };
    v.out = o;
    if r.is_err() {
        done!(Event::ViewerGone, false, false, obuf);
    }
    bytes += head_and_first;
    while !reader.is_done() {
        obuf.clear();
        let fut = net::read_more(c.stream(), obuf, super::IO_BUF, super::IO_BUF);
        let b = match monoio::time::timeout(rt, fut).await {
            Err(_) => done!(Event::BodyFailed, false, false, w.take_buf()),
            Ok((Ok(0), b)) | Ok((Err(_), b)) => {
                // EOF completes a close-delimited body (never reusable).
                if reader.eof().is_ok() {
                    done!(Event::BodyDone, false, viewer_keep, b);
                }
                done!(Event::BodyFailed, false, false, b);
            }
            Ok((Ok(_), b)) => b,
        };
        obuf = b;
        ranges.clear();
        let used = match reader.feed(&obuf, |r| {
            if decode {
                ranges.push(r)
            }
        }) {
            Ok(f) => f.used,
            Err(_) => done!(Event::BodyFailed, false, false, obuf),
        };
        // What goes to the viewer: `obuf[..end]`, or framed into `out`.
        let mut end = used;
        let mut framed = None;
        if decode {
            end = frame::compact(&mut obuf, &ranges);
            if framing == ViewerFraming::Chunked {
                let mut out = std::mem::take(&mut v.out);
                out.clear();
                frame::chunk(&mut out, &obuf[..end], reader.is_done());
                framed = Some(out);
            }
        }
        let (r, n) = match framed {
            Some(out) => {
                let n = out.len();
                let (r, o) = write_within(&mut v.stream, out, 0..n, timeout).await;
                v.out = o.unwrap_or_default();
                (r, n)
            }
            None => {
                let (r, b) = write_within(&mut v.stream, obuf, 0..end, timeout).await;
                obuf = b.unwrap_or_else(|| w.take_buf());
                (r, end)
            }
        };
        if r.is_err() {
            done!(Event::ViewerGone, false, false, obuf);
        }
        bytes += n as u64;
    }
    done!(Event::BodyDone, reader.verdict() == Reuse::Reusable, viewer_keep, obuf)
}

/// Appends body data for the viewer in `framing` (chunked: one chunk of our
/// own, and the last chunk when `last`).
fn put_data(out: &mut Vec<u8>, framing: ViewerFraming, data: &[u8], last: bool) {
    if framing == ViewerFraming::Chunked {
        frame::chunk(out, data, last);
    } else {
        out.extend_from_slice(data);
    }
}

/// Writes `buf[range]` to the viewer within `timeout`; the buffer comes back
/// unless the write timed out (then it went with the abandoned operation).
async fn write_within(
    s: &mut crate::tls::Stream,
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
    timeout: Duration,
) -> (Result<(), ()>, Option<Vec<u8>>) {
    if range.is_empty() {
        return (Ok(()), Some(buf));
    }
    match monoio::time::timeout(timeout, net::write_range(s, buf, range)).await {
        Ok((Ok(()), b)) => (Ok(()), Some(b)),
        Ok((Err(_), b)) => (Err(()), Some(b)),
        Err(_) => (Err(()), None),
    }
}

/// Answers with an error page (`page`) or a generated status; returns what
/// follows, the status sent and the bytes written.
async fn generated(
    w: &Worker,
    v: &mut Viewer,
    m: &AttemptMachine<'_>,
    status: u16,
    page: bool,
    keep: bool,
    head_request: bool,
) -> (Next, u16, u64) {
    let cfg = &w.cfg;
    let keep = keep && !w.shared.is_stopping();
    let (resp_status, body, ctype): (u16, &[u8], &str) = match (page, cfg.error_page(status)) {
        (true, Some(p)) => (p.response_status, &p.body, p.content_type),
        _ => (
            status,
            crate::http::write::reason(status).as_bytes(),
            "text/plain; charset=utf-8",
        ),
    };
    let mut extra = Vec::with_capacity(160);
    extra.extend_from_slice(b"Via: 1.1 ");
    extra.extend_from_slice(cfg.server.via.as_bytes());
    extra.extend_from_slice(b"\r\nX-Cache: ");
    extra.extend_from_slice(if resp_status >= 400 {
        &w.x_cache_error
    } else {
        &w.x_cache_miss
    });
    extra.extend_from_slice(b"\r\nCache-Status: ");
    extra.extend_from_slice(&w.cache_status_miss);
    extra.extend_from_slice(b"\r\n");
    let mut ps = Vec::new();
    proxy_status(w, m, &mut ps);
    if !ps.is_empty() {
        extra.extend_from_slice(b"Proxy-Status: ");
        extra.extend_from_slice(&ps);
        extra.extend_from_slice(b"\r\n");
    }
    let mut out = std::mem::take(&mut v.out);
    out.clear();
    write_generated_head(
        &mut out,
        &Generated {
            status: resp_status,
            content_type: ctype,
            body_len: body.len(),
            keep_alive: keep,
            viewer_http10: v.head.minor == 0,
            via: &cfg.server.via,
            extra: &extra,
        },
    );
    if !head_request {
        out.extend_from_slice(body);
    }
    let len = out.len() as u64;
    match monoio::time::timeout(write_timeout(w), net::write_all(&mut v.stream, out)).await {
        Ok((Ok(()), o)) => {
            v.out = o;
            (if keep { Next::KeepAlive } else { Next::Close }, resp_status, len)
        }
        _ => (Next::Close, resp_status, 0),
    }
}
