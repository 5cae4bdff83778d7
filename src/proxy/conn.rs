//! One viewer connection: read heads, route, forward, repeat.
//!
//! The connection's read buffer holds the current request head and whatever
//! followed it (body bytes, pipelined requests). Requests are handled one at a
//! time in arrival order, so pipelined requests are answered in order without
//! any queue: the next head is simply already in the buffer.
//!
//! Invariants (see `src/http/LIFECYCLE.md`): nothing read from the network can
//! panic this code; every read and write has a timeout; a request whose
//! framing is in doubt gets 400 and the connection is closed before anything
//! of it reaches an origin.

use super::forward::{self, Request};
use super::park::PARK_AFTER;
use super::Worker;
use crate::cache::collapse::Join;
use crate::cache::lookup::{self, Lookup};
use crate::http::parse::{parse_request, BodyKind, HeadError, RequestHead};
use crate::http::write::HitLabel;
use crate::http::write::{write_generated_head, Generated};
use crate::net;
use crate::tls::Stream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A viewer connection's state between requests.
pub struct Viewer {
    /// Plain TCP, or TLS from a `[server.tls]` listener.
    pub stream: Stream,
    pub peer: SocketAddr,
    /// `peer`'s IP as text, for X-Forwarded-For.
    pub peer_ip: String,
    /// Read buffer: the current head, then what followed it.
    pub buf: Vec<u8>,
    pub head: RequestHead,
    /// The origin response head of the current request (reused).
    pub resp: crate::http::response::ResponseHead,
    /// Scratch for heads written to the viewer or the origin.
    pub out: Vec<u8>,
    /// Reused for cache hits: stored head + per-response lines, and the body.
    /// An `Option` so taking it out does not build (allocate) a new one.
    pub hit: Option<net::HeadAndBody>,
    /// The cache key buffer, reused.
    pub key: Vec<u8>,
    /// Cancels the keep-alive read that waits [`PARK_AFTER`] (reused).
    pub canceller: monoio::io::Canceller,
}

/// What happens after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
    /// Close without the signs of a clean end: the response was cut short
    /// (for TLS, no close_notify, so the viewer can tell a close-delimited
    /// body was truncated).
    Abort,
}

enum HeadOutcome {
    Ready,
    /// Peer closed or went idle: close quietly.
    Gone,
    /// Head not complete in time: 408.
    Timeout,
    Invalid(HeadError),
    /// Idle in keep-alive past [`PARK_AFTER`]: park until readable or until
    /// the idle deadline.
    Park(Instant),
}

/// Serves one viewer connection until it closes or parks. `guard` lives as
/// long as the connection (it counts open connections). `first_by` is when
/// the first request's head must be complete (`client_header_timeout` from
/// accept); `None` for a connection resumed from [`park`](super::park::park).
/// A TLS stream arrives with its handshake done (see [`accept_tls`]).
pub async fn serve(
    mut w: Rc<Worker>,
    stream: Stream,
    peer: SocketAddr,
    guard: super::ConnGuard,
    first_by: Option<Instant>,
) {
    let mut v = Viewer {
        stream,
        peer,
        peer_ip: peer.ip().to_string(),
        resp: Default::default(),
        buf: Vec::with_capacity(8 * 1024),
        head: RequestHead::default(),
        out: Vec::with_capacity(4 * 1024),
        hit: None,
        key: Vec::with_capacity(256),
        canceller: Default::default(),
    };
    let mut first_by = first_by;
    let mut clean_end = true;
    loop {
        match read_head(&w, &mut v, first_by).await {
            HeadOutcome::Ready => {}
            HeadOutcome::Gone => break,
            HeadOutcome::Park(until) => {
                if let Stream::Plain(tcp) = v.stream {
                    super::park::park(&w, tcp, guard, until);
                }
                return;
            }
            HeadOutcome::Timeout => {
                let bytes = send_error(&w, &mut v, 408, false).await;
                log_client_error(&w, &v, 408, bytes, None);
                break;
            }
            HeadOutcome::Invalid(e) => {
                let bytes = send_error(&w, &mut v, e.status(), false).await;
                log_client_error(&w, &v, e.status(), bytes, None);
                break;
            }
        }
        first_by = None;
        // A reloaded config applies from the next request head on.
        w = w.current();
        w.busy.set(w.busy.get() + 1);
        let next = handle(&w, &mut v).await;
        w.busy.set(w.busy.get() - 1);
        match next {
            Next::KeepAlive if !w.shared.is_stopping() => {}
            Next::Abort => {
                clean_end = false;
                break;
            }
            _ => break,
        }
    }
    // TLS: tell the viewer the close is deliberate (nothing was cut short).
    if clean_end {
        v.stream.close_notify(CLOSE_NOTIFY_WITHIN).await;
    }
    drop(guard);
}

/// How long a closing TLS connection may take to send close_notify.
const CLOSE_NOTIFY_WITHIN: Duration = Duration::from_millis(500);

/// A connection accepted on a `[server.tls]` listener: the handshake, bounded
/// by `client_header_timeout`, then [`serve`]. A failed handshake is closed
/// quietly (nothing HTTP can be said on it).
pub async fn accept_tls(w: Rc<Worker>, tcp: monoio::net::TcpStream, peer: SocketAddr, guard: super::ConnGuard) {
    let _ = tcp.set_nodelay(true);
    let Some(tls) = w.cfg.server.tls.as_ref() else { return };
    let acceptor = monoio_rustls::TlsAcceptor::from(tls.config.clone());
    // One deadline for the handshake and the first request's head.
    let deadline = Instant::now() + w.cfg.server.client_header_timeout;
    match crate::tls::accept(tcp, &acceptor, deadline).await {
        Ok(stream) => serve(w, stream, peer, guard, Some(deadline)).await,
        Err(e) => log::debug!("TLS handshake from {peer} failed: {e:?}"),
    }
}

/// Reads until `v.buf` starts with a complete head (parsed into `v.head`).
async fn read_head(w: &Worker, v: &mut Viewer, first_by: Option<Instant>) -> HeadOutcome {
    let s = &w.cfg.server;
    let max = s.max_request_head;
    // The first request's head must complete within the header timeout from
    // accept; later ones may idle first, then get the header timeout.
    let mut deadline = match first_by {
        Some(d) => Some(d),
        None if !v.buf.is_empty() => Some(Instant::now() + s.client_header_timeout),
        None => None,
    };
    let mut scanned = 0usize;
    loop {
        if v.buf.len() > scanned {
            // Parse only when a line end arrived since the last try.
            if memchr::memchr(b'\n', &v.buf[scanned..]).is_some() || v.buf.len() >= max {
                match parse_request(&v.buf, max, &mut v.head) {
                    Ok(Some(_)) => {
                        return match normalize_path(v, max) {
                            Ok(()) => HeadOutcome::Ready,
                            Err(e) => HeadOutcome::Invalid(e),
                        }
                    }
                    Ok(None) => {}
                    Err(e) => return HeadOutcome::Invalid(e),
                }
            }
            scanned = v.buf.len();
        }
        let (limit, on_timeout) = match deadline {
            Some(d) => (d, HeadOutcome::Timeout),
            None => (Instant::now() + s.client_idle_timeout, HeadOutcome::Gone),
        };
        let buf = std::mem::take(&mut v.buf);
        let parkable = match &mut v.stream {
            Stream::Plain(tcp) => Some(tcp),
            Stream::Tls(_) => None, // its session state stays with the task
        };
        if let Some(tcp) = parkable
            .filter(|_| deadline.is_none() && buf.is_empty() && s.client_idle_timeout > PARK_AFTER && w.parked.usable())
        {
            // Keep-alive idle: read with the buffer posted for a while, then park.
            let (res, b) = net::read_more_within(tcp, buf, 4096, max + 1, PARK_AFTER, &mut v.canceller).await;
            v.buf = b;
            match res {
                None => return HeadOutcome::Park(limit),
                Some(Ok(0)) | Some(Err(_)) => return HeadOutcome::Gone,
                Some(Ok(_)) => {
                    deadline = Some(Instant::now() + s.client_header_timeout);
                    continue;
                }
            }
        }
        let had_bytes = !buf.is_empty();
        let fut = net::read_more(&mut v.stream, buf, 4096, max + 1);
        match monoio::time::timeout_at(limit.into(), fut).await {
            // A connection that sent nothing of a request is closed quietly,
            // as nginx does: a 408 would only confuse a browser's preconnect.
            Err(_) if !had_bytes => return HeadOutcome::Gone,
            Err(_) => return on_timeout,
            Ok((Ok(0), _)) | Ok((Err(_), _)) => return HeadOutcome::Gone,
            Ok((Ok(_), b)) => {
                v.buf = b;
                if deadline.is_none() {
                    deadline = Some(Instant::now() + s.client_header_timeout);
                }
            }
        }
    }
}

/// Normalises the parsed head's path (SPEC §3.1) before anything uses it:
/// when it changes, the target's bytes in `v.buf` are replaced (never by
/// longer ones) and the head is parsed again, so every span is right. An
/// already-normal path costs one scan, no allocation.
fn normalize_path(v: &mut Viewer, max: usize) -> Result<(), HeadError> {
    let mut normal = Vec::new();
    match crate::http::path::normalize(v.head.path.of(&v.buf), &mut normal) {
        Ok(false) => return Ok(()),
        Ok(true) => {}
        Err(e) => return Err(HeadError::Bad(e.reason())),
    }
    v.buf.splice(v.head.path.range(), normal);
    match parse_request(&v.buf, max, &mut v.head) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(HeadError::Bad("request head lost in path normalisation")),
        Err(e) => Err(e),
    }
}

/// Logs a request refused before routing or by the method check. `started`
/// is when its head was complete (None: the head never was).
fn log_client_error(w: &Worker, v: &Viewer, status: u16, bytes: u64, started: Option<Instant>) {
    w.metrics().request("Error", started.map(|t| t.elapsed()));
    if !w.log.enabled() {
        return;
    }
    let parsed = started.is_some();
    let part = |s: crate::http::parse::Span| if parsed { s.of(&v.buf) } else { &b""[..] };
    w.log.record(&crate::log::Entry {
        client: v.peer,
        method: part(v.head.method),
        host: v.head.host.filter(|_| parsed).map_or(&b""[..], |h| h.of(&v.buf)),
        path: part(v.head.path),
        status,
        bytes,
        result: "Error",
        detail: "ClientError",
        origin: None,
        attempts: 0,
        total: started.map_or(Duration::ZERO, |t| t.elapsed()),
        origin_time: None,
    });
}

/// Routes one parsed request and answers it.
async fn handle(w: &Rc<Worker>, v: &mut Viewer) -> Next {
    let received = Instant::now();
    let cfg = w.cfg.clone();
    let path = v.head.path_only(&v.buf);
    let behavior = cfg.behavior_for(path);
    if !behavior.allows(v.head.method(&v.buf)) {
        // The body, if any, was not read: close rather than parse it as a request.
        let keep = v.head.keep_alive && v.head.body == BodyKind::None;
        let bytes = send_error(w, v, 403, keep).await;
        log_client_error(w, v, 403, bytes, Some(received));
        if keep {
            let n = v.head.head_len;
            v.buf.drain(..n);
            return Next::KeepAlive;
        }
        return Next::Close;
    }
    // Cache lookup phase (`cache::lookup`): GET/HEAD without a body on a
    // caching behavior.
    let cache_key = cache_key(w, v, behavior);
    let mut stale = None;
    if let (Some(store), Some(k)) = (w.cache.as_ref(), cache_key.as_deref()) {
        let is_get = v.head.method(&v.buf) == b"GET";
        match lookup::decide(store.get(k), received, is_get) {
            Lookup::Fresh(obj) => {
                v.key = cache_key.unwrap_or_default();
                return serve_hit(w, v, &obj, received).await;
            }
            Lookup::ServeAndRefresh(obj) => {
                spawn_refresh(w, v, store, k, behavior, &obj);
                v.key = cache_key.unwrap_or_default();
                return serve_hit(w, v, &obj, received).await;
            }
            // Revalidated with the origin, and served if the origin group
            // fails within its stale-if-error window.
            Lookup::Stale(obj) => stale = Some(obj),
            Lookup::Miss => {}
        }
    }
    // The key holds the normalised Accept-Encoding: that is what the origin gets.
    let accept_encoding = cache_key.as_deref().and_then(crate::cache::key::encoding);
    // Only a GET's response is stored (a HEAD's has no body).
    let cache_key = cache_key.filter(|_| v.head.method(&v.buf) == b"GET");
    // Collapsing: one fetch per key at a time; followers wait, then look again.
    let store = w.cache.clone();
    let mut leader = None;
    if let (Some(store), Some(k)) = (store.as_deref(), cache_key.as_deref()) {
        match store.flights.join(k) {
            Join::Leader(g) => leader = Some(g),
            Join::Follower(flight) => {
                if let Some(obj) = follow(w, store, k, &flight, received).await {
                    return serve_hit(w, v, &obj, received).await;
                }
                // The leader's response was not storable: fetch on our own.
            }
            Join::Pass => {}
        }
    }
    let mut req = Request {
        behavior,
        received,
        cache_key,
        stale,
        accept_encoding,
        leader,
    };
    let mut report = forward::Report::default();
    // The log line needs the request's method, host and path, which live in
    // `v.buf` and are drained when the connection moves to the next request;
    // keep a copy only when logging (the access log is off by default).
    let logged = w.log.enabled().then(|| {
        let h = &v.head;
        (
            h.method(&v.buf).to_vec(),
            h.host.map_or(Vec::new(), |s| s.of(&v.buf).to_vec()),
            h.path.of(&v.buf).to_vec(),
        )
    });
    let next = forward::forward(w, v, &mut req, &mut report).await;
    if let Some(k) = req.cache_key.take() {
        v.key = k;
    }
    if let Some(mut g) = req.leader.take() {
        if report.stored {
            g.stored();
        }
    }
    record_forwarded(w, v, &report, received, logged);
    next
}

/// The metrics and the access log line of a forwarded request. `logged`:
/// its method, host and path, copied before they left the buffer.
fn record_forwarded(
    w: &Worker,
    v: &Viewer,
    report: &forward::Report,
    received: Instant,
    logged: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
) {
    // Status 0: nothing was sent (the viewer went away, or the body failed).
    let result = match report.detail {
        _ if report.status >= 400 || report.status == 0 => "Error",
        "RefreshHit" => "RefreshHit",
        "StaleHit" => "Hit",
        _ => "Miss",
    };
    w.metrics().request(result, Some(received.elapsed()));
    let Some((method, host, path)) = logged else { return };
    w.log.record(&crate::log::Entry {
        client: v.peer,
        method: &method,
        host: &host,
        path: &path,
        status: report.status,
        bytes: report.bytes,
        result,
        detail: report.detail,
        origin: report.origin.map(|o| w.cfg.origins[o].id.as_str()),
        attempts: report.attempts,
        total: received.elapsed(),
        origin_time: report.origin_time,
    });
}

/// The cache key for this request, when it may use the cache
/// ([`lookup::cacheable`]). The key buffer is the connection's, reused
/// request after request.
fn cache_key(w: &Worker, v: &mut Viewer, behavior: &crate::config::Behavior) -> Option<Vec<u8>> {
    let method = v.head.method(&v.buf);
    lookup::cacheable(w.cache.is_some(), behavior.cache, method, v.head.body != BodyKind::None).ok()?;
    let mut k = std::mem::take(&mut v.key);
    k.clear();
    let host = v.head.host.map_or(&b""[..], |h| h.of(&v.buf));
    crate::cache::key::build(&mut k, host, v.head.path.of(&v.buf), behavior.cache_query_string);
    crate::cache::key::add_encoding(&mut k, v.head.header(&v.buf, b"accept-encoding"));
    Some(k)
}

/// stale-while-revalidate: one background refresh behind the stale answer.
fn spawn_refresh(
    w: &Rc<Worker>,
    v: &Viewer,
    store: &std::sync::Arc<crate::cache::store::Store>,
    key: &[u8],
    behavior: &crate::config::Behavior,
    obj: &std::sync::Arc<crate::cache::store::Object>,
) {
    let job = crate::proxy::refresh::RefreshJob {
        store: store.clone(),
        key: key.to_vec(),
        behavior: w
            .cfg
            .behaviors
            .iter()
            .position(|b| std::ptr::eq(b, behavior))
            .unwrap_or(0),
        head: v.buf[..v.head.head_len].to_vec(),
        client_ip: v.peer_ip.clone(),
        stale: obj.clone(),
    };
    crate::proxy::refresh::spawn(w, job);
}

/// Waits (woken, never polling) for the flight fetching `key`, then looks
/// again: the object, if the leader stored it fresh.
async fn follow(
    w: &Worker,
    store: &crate::cache::store::Store,
    key: &[u8],
    flight: &crate::cache::collapse::Flight,
    received: Instant,
) -> Option<std::sync::Arc<crate::cache::store::Object>> {
    let give_up = received + w.cfg.server.client_idle_timeout;
    let _ = monoio::time::timeout_at(give_up.into(), flight.wait()).await;
    store.get(key).filter(|o| o.is_fresh(Instant::now()))
}

/// Answers from a stored object: its head (or a 304/206/416 head), the
/// per-response lines, then the body straight from the shared buffer (no
/// copy), in one writev. Returns what follows, the status sent and the bytes
/// written; the caller logs and drains the request.
pub async fn answer_from_cache(
    w: &Worker,
    v: &mut Viewer,
    obj: &crate::cache::store::Object,
    now: Instant,
    label: HitLabel,
    extra: &[u8],
) -> (Next, u16, u64) {
    use crate::cache::serve;
    let head_request = v.head.is_head(&v.buf);
    let keep = v.head.keep_alive && !w.shared.is_stopping();
    let age = obj.age(now);
    let h = &v.head;
    let kind = serve::plan(
        obj,
        h.header(&v.buf, b"if-none-match"),
        h.header(&v.buf, b"if-modified-since"),
        h.header(&v.buf, b"range"),
    );
    let mut hb = v.hit.take().unwrap_or_default();
    hb.head.clear();
    serve::write_head(&mut hb.head, obj, &kind);
    hb.head.extend_from_slice(extra);
    let ttl_left = obj.ttl_left_secs(now);
    crate::http::write::write_hit_lines(
        &mut hb.head,
        &w.cfg.server.via,
        age.as_secs(),
        ttl_left,
        label,
        keep,
        v.head.minor == 0,
    );
    hb.body = if head_request {
        bytes::Bytes::new()
    } else {
        serve::body(obj, &kind)
    };
    let status = match kind {
        serve::HitKind::Full => obj.status,
        serve::HitKind::NotModified => 304,
        serve::HitKind::Partial(_) => 206,
        serve::HitKind::Unsatisfiable => 416,
    };
    let bytes = hb.len() as u64;
    let ok = match monoio::time::timeout(write_timeout(w), net::write_head_and_body(&mut v.stream, hb)).await {
        Ok((r, mut hb)) => {
            // Let go of the stored body now; keep the buffers for the next hit.
            hb.body = bytes::Bytes::new();
            v.hit = Some(hb);
            r.is_ok()
        }
        Err(_) => false,
    };
    let next = if ok && keep { Next::KeepAlive } else { Next::Close };
    (next, status, if ok { bytes } else { 0 })
}

/// A fresh hit: answer, log, and make the connection ready for the next request.
async fn serve_hit(w: &Worker, v: &mut Viewer, obj: &crate::cache::store::Object, received: Instant) -> Next {
    let (next, status, bytes) = answer_from_cache(w, v, obj, received, HitLabel::Hit, b"").await;
    w.metrics().request("Hit", Some(received.elapsed()));
    if w.log.enabled() {
        let h = &v.head;
        w.log.record(&crate::log::Entry {
            client: v.peer,
            method: h.method(&v.buf),
            host: h.host.map_or(&b""[..], |s| s.of(&v.buf)),
            path: h.path.of(&v.buf),
            status,
            bytes,
            result: "Hit",
            detail: "Hit",
            origin: None,
            attempts: 0,
            total: received.elapsed(),
            origin_time: None,
        });
    }
    if next == Next::KeepAlive {
        let n = v.head.head_len;
        v.buf.drain(..n);
    }
    next
}

/// Writes a generated error response (small text body); `keep` keeps the
/// connection. Returns the bytes written.
pub async fn send_error(w: &Worker, v: &mut Viewer, status: u16, keep: bool) -> u64 {
    let body = crate::http::write::reason(status);
    let http10 = v.head.minor == 0;
    let mut out = std::mem::take(&mut v.out);
    out.clear();
    let x_cache = if status >= 400 {
        &w.x_cache_error
    } else {
        &w.x_cache_miss
    };
    let mut extra = Vec::with_capacity(64);
    extra.extend_from_slice(b"X-Cache: ");
    extra.extend_from_slice(x_cache);
    extra.extend_from_slice(b"\r\n");
    write_generated_head(
        &mut out,
        &Generated {
            status,
            content_type: "text/plain; charset=utf-8",
            body_len: body.len() + 1,
            keep_alive: keep,
            viewer_http10: http10,
            via: &w.cfg.server.via,
            extra: &extra,
        },
    );
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
    let len = out.len() as u64;
    let fut = net::write_all(&mut v.stream, out);
    match monoio::time::timeout(write_timeout(w), fut).await {
        Ok((r, o)) => {
            v.out = o;
            if r.is_ok() {
                len
            } else {
                0
            }
        }
        Err(_) => 0,
    }
}

/// Bound on any single write to a viewer.
pub fn write_timeout(w: &Worker) -> Duration {
    w.cfg.server.client_idle_timeout
}
