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
use super::viewer::{HeadOutcome, Viewer};
use super::{Next, Worker};
use crate::cache::collapse::Join;
use crate::cache::lookup::{self, Lookup};
use crate::http::parse::BodyKind;
use crate::outcome::{Class, Detail, Outcome};
use crate::tls::Stream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

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
    let mut v = Viewer::new(stream, peer);
    let mut first_by = first_by;
    let mut clean_end = true;
    loop {
        let parkable = v.parkable() && w.parked.usable();
        match v.read_head(&w.cfg.server, parkable, first_by).await {
            HeadOutcome::Ready => {}
            HeadOutcome::Gone => break,
            HeadOutcome::Park(until) => {
                if let Some((tcp, tls)) = v.into_parked() {
                    super::park::park(&w, tcp, tls, guard, until);
                }
                return;
            }
            // Never routed: no behavior, so no viewer_response (SPEC §5
            // applies a behavior's policy to the responses of its requests).
            HeadOutcome::Timeout => {
                let bytes = super::answers::client_error(&w, &mut v, 408, false, None).await;
                log_client_error(&w, &v, 408, bytes, None);
                break;
            }
            HeadOutcome::Invalid(e) => {
                let bytes = super::answers::client_error(&w, &mut v, e.status(), false, None).await;
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
    v.close(clean_end, CLOSE_NOTIFY_WITHIN).await;
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
    // One deadline for the handshake and the first request's head.
    let deadline = Instant::now() + w.cfg.server.client_header_timeout;
    match crate::tls::accept(tcp, &tls.config, deadline).await {
        Ok(stream) => serve(w, stream, peer, guard, Some(deadline)).await,
        Err(e) => log::debug!("TLS handshake from {peer} failed: {e:?}"),
    }
}

/// Logs a request refused before routing or by the method check. `started`
/// is when its head was complete (None: the head never was).
fn log_client_error(w: &Worker, v: &Viewer, status: u16, bytes: u64, started: Option<Instant>) {
    let outcome = Outcome::new(Detail::ClientError, status);
    w.metrics().request(Class::Error, started.map(|t| t.elapsed()));
    if !w.log.enabled() {
        return;
    }
    let parsed = started.is_some();
    let part = |b: &'_ [u8]| if parsed { b.to_vec() } else { Vec::new() };
    let (method, host, path) = (part(v.method()), part(v.host()), part(v.target()));
    w.log.record(&crate::log::Entry {
        client: v.peer(),
        method: &method,
        host: &host,
        path: &path,
        outcome,
        bytes,
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
    let behavior = cfg.behavior_for(v.path_only());
    if !behavior.allows(v.method()) {
        // The body, if any, was not read: close rather than parse it as a request.
        let keep = v.head().keep_alive && v.head().body == BodyKind::None;
        let bytes = super::answers::client_error(w, v, 403, keep, Some(&behavior.viewer_response)).await;
        log_client_error(w, v, 403, bytes, Some(received));
        if keep {
            let n = v.head().head_len;
            v.finish(n, b"");
            return Next::KeepAlive;
        }
        return Next::Close;
    }
    // Held here: a flight's leader guard borrows the store.
    let store = w.cache.clone();
    let mut req = match look_up(w, v, (behavior, store.as_deref()), received).await {
        Ok(req) => req,
        Err(answered) => return answered,
    };
    let mut report = forward::Report::default();
    // The log line needs the request's method, host and path, which leave
    // the viewer's buffer when the connection moves to the next request;
    // keep a copy only when logging (the access log is off by default).
    let logged = w
        .log
        .enabled()
        .then(|| (v.method().to_vec(), v.host().to_vec(), v.target().to_vec()));
    let next = forward::forward(w, v, &mut req, &mut report).await;
    if let Some(k) = req.cache_key.take() {
        v.put_key(k);
    }
    if let Some(mut g) = req.leader.take() {
        if report.stored {
            g.stored();
        }
    }
    record_forwarded(w, v, &report, received, logged);
    next
}

/// The cache phase of a request (`cache::lookup`, then collapsing): a fresh
/// object is served at once (`Err` with what follows it); otherwise the
/// request goes to the origin with what the lookup found (a stale object to
/// revalidate, the flight it leads).
async fn look_up<'c>(
    w: &Rc<Worker>,
    v: &mut Viewer,
    (behavior, store): (&'c crate::config::Behavior, Option<&'c crate::cache::store::Store>),
    received: Instant,
) -> Result<Request<'c>, Next> {
    // Cache lookup phase (`cache::lookup`): GET/HEAD without a body on a
    // caching behavior. The key becomes the variant's when the URL's
    // stored responses vary (RFC 9111 §4.1).
    let mut cache_key = cache_key(w, v, behavior);
    let mut stale = None;
    if let (Some(store), Some(k)) = (w.cache.as_ref(), cache_key.as_mut()) {
        match lookup::decide(find(store, v, k, &behavior.cache_key), received, v.method() == b"GET") {
            Lookup::Fresh(obj) => {
                v.put_key(cache_key.unwrap_or_default());
                return Err(super::hit::serve(w, v, &obj, received, &behavior.viewer_response).await);
            }
            Lookup::ServeAndRefresh(obj) => {
                spawn_refresh(w, v, store, k, behavior, &obj);
                v.put_key(cache_key.unwrap_or_default());
                return Err(super::hit::serve(w, v, &obj, received, &behavior.viewer_response).await);
            }
            // Revalidated with the origin, and served if the origin group
            // fails within its stale-if-error window.
            Lookup::Stale(obj) => stale = Some(obj),
            Lookup::Miss => {}
        }
    }
    // The origin gets the normalised Accept-Encoding (SPEC §4).
    let accept_encoding = cache_key.as_ref().map(|_| {
        let lines = crate::cache::vary::request_lines(v.buf(), v.head(), b"accept-encoding");
        crate::cache::key::normalize_accept_encoding(lines)
    });
    // Only a GET's response is stored (a HEAD's has no body); a HEAD's
    // updates the stored GET (RFC 9111 §4.3.5).
    let (mut cache_key, head_key) = if v.method() == b"GET" {
        (cache_key, None)
    } else {
        (None, cache_key)
    };
    // Collapsing: one fetch per key at a time; followers wait, then look again.
    let mut leader = None;
    if let (Some(store), Some(k)) = (store, cache_key.as_mut()) {
        // Twice at most: a flight whose response varies may have been for
        // other values; the request then joins its own variant's flight.
        for _ in 0..2 {
            let flight = match store.flights.join(k) {
                Join::Leader(g) => {
                    leader = Some(g);
                    break;
                }
                Join::Pass => break,
                Join::Follower(flight) => flight,
            };
            let before = k.clone();
            if let Some(obj) = follow(w, (store, &behavior.cache_key), v, k, &flight, received).await {
                return Err(super::hit::serve(w, v, &obj, received, &behavior.viewer_response).await);
            }
            if *k == before {
                // The leader's response was not storable: fetch on our own.
                break;
            }
        }
    }
    // SPEC §8: a miss the cluster's owner of the key serves, asked once
    // this request is the one that fetches (a follower served by the
    // flight asks no one).
    let peer = cache_key
        .as_deref()
        .or(head_key.as_deref())
        .and_then(|k| super::peer::first_hop(w, (v.buf(), v.head()), k));
    Ok(Request {
        behavior,
        received,
        cache_key,
        head_key,
        stale,
        accept_encoding,
        leader,
        peer,
    })
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
    let outcome = Outcome::new(report.detail.unwrap_or_default(), report.status);
    w.metrics().request(outcome.class(), Some(received.elapsed()));
    let Some((method, host, path)) = logged else { return };
    w.log.record(&crate::log::Entry {
        client: v.peer(),
        method: &method,
        host: &host,
        path: &path,
        outcome,
        bytes: report.bytes,
        origin: report.origin.map(|o| w.cfg.hop_id(o)),
        attempts: report.attempts,
        total: received.elapsed(),
        origin_time: report.origin_time,
    });
}

/// The URL's cache key for this request, when it may use the cache
/// ([`lookup::cacheable`]). The key buffer is the connection's, reused
/// request after request.
fn cache_key(w: &Worker, v: &mut Viewer, behavior: &crate::config::Behavior) -> Option<Vec<u8>> {
    let body = v.head().body != BodyKind::None;
    lookup::cacheable(w.cache.is_some(), behavior.cache, v.method(), body).ok()?;
    // Too many parameters or cookie pairs to key cheaply: not looked up,
    // passed as uncacheable (`KeyPolicy::too_costly`).
    if behavior.cache_key.too_costly(v.target(), v.buf(), v.head()) {
        return None;
    }
    let mut k = v.take_key();
    k.clear();
    crate::cache::key::build(&mut k, v.host(), v.target(), &behavior.cache_key.query);
    Some(k)
}

/// The object the request in `v` is answered from, looked up from its
/// URL's key `k`, which becomes the variant's key when the URL's stored
/// responses vary ([`Store::lookup`](crate::cache::store::Store::lookup)),
/// or the behavior keys on headers or cookies (`policy`).
fn find(
    store: &crate::cache::store::Store,
    v: &Viewer,
    k: &mut Vec<u8>,
    policy: &crate::config::KeyPolicy,
) -> Option<std::sync::Arc<crate::cache::store::Object>> {
    let found = store.lookup(k, |vary, k| {
        // Stored before a reload added key names: selected without them,
        // so no variant is this request's; `k` left as the URL's key
        // matches nothing, and the response fetched replaces the record.
        if policy.selects_within(vary) {
            crate::cache::vary::append_values(k, vary, v.buf(), v.head());
        }
    });
    if policy.names.is_empty() || k.len() > crate::cache::key::url_len(k) {
        return found;
    }
    // SPEC §2: the key headers and cookies select what the request gets.
    // No record for the URL, so nothing stored by them: the fetch
    // collapses on (and an error page is stored under) the variant their
    // values select, so viewers of other values do not wait for it. An
    // object under the URL's key alone, or a record of variants without
    // every key name (stored before a reload gave the behavior its key
    // names), is for no one.
    crate::cache::vary::append_values(k, &policy.names, v.buf(), v.head());
    None
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
        head: v.head_bytes().to_vec(),
        client_ip: v.peer_ip().to_string(),
        stale: obj.clone(),
        peer: super::peer::first_hop(w, (v.buf(), v.head()), key),
    };
    crate::proxy::refresh::spawn(w, job);
}

/// Waits (woken, never polling) for the flight fetching `key`, then looks
/// again from the URL's key, as the request in `v` selects now (the
/// leader's response may vary, on other values or other headers): the
/// object, if the leader stored it fresh. `key` is left holding the key
/// looked under.
async fn follow(
    w: &Worker,
    (store, policy): (&crate::cache::store::Store, &crate::config::KeyPolicy),
    v: &Viewer,
    key: &mut Vec<u8>,
    flight: &crate::cache::collapse::Flight,
    received: Instant,
) -> Option<std::sync::Arc<crate::cache::store::Object>> {
    let give_up = received + w.cfg.server.client_idle_timeout;
    let _ = monoio::time::timeout_at(give_up.into(), flight.wait()).await;
    key.truncate(crate::cache::key::url_len(key));
    find(store, v, key, policy).filter(|o| o.is_fresh(Instant::now()))
}
