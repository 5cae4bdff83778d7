//! One origin exchange, the same for a viewer's miss, a revalidation and a
//! background refresh: the I/O shell around the sans-io
//! [`AttemptMachine`](crate::origin::attempt::AttemptMachine).
//!
//! [`Exchange::run`] carries out the machine's actions until it decides:
//!
//! - `Connect`: a pooled connection when allowed, else a new connect by the
//!   action's deadline ([`Exchange::acquire`]); a group's primary feeds
//!   `primary_fast_fail`, a cluster peer its own fast-fail state;
//! - `Send`: the head is written here, the one place request headers are
//!   edited for an origin ([`write_request_head`] with the behavior's
//!   origin request policy ([`forwarding`]), its `origin_request` actions,
//!   the hooks' lines, the stored validators of a revalidation; to a
//!   cluster peer, the viewer's request as it came with `CDN-Loop`,
//!   [`Exchange::write_peer_head`]); the body, if any, is the [`Outgoing`]
//!   request's business;
//!   then the response head is awaited by the same deadline;
//! - `AwaitHead`: more of the head, and the `origin_response` hook on it;
//! - `Deliver`, `ServePage`, `Generate`: returned as a [`Decision`] for the
//!   caller, which reports how the body went with [`Exchange::body_ended`].
//!
//! [`Exchange::end`] counts the attempts in the metrics and gives back the
//! buffers.

use super::Worker;
use crate::cache::key::QueryKey;
use crate::cache::store::Object;
use crate::config::{Behavior, Target};
use crate::http::edit::HeaderActions;
use crate::http::parse::RequestHead;
use crate::http::response::ResponseHead;
use crate::http::write::{
    write_interim_head, write_request_head, AttemptCtx, Forwarding, QueryForward, RequestFraming, RequestRewrite,
};
use crate::origin::attempt::{Action, AttemptMachine, ConnectError, Event, Failure, Plan, Role, Step};
use crate::origin::client::{self, HeadRead};
use crate::origin::pool::OriginConn;
use crate::origin::reuse::Reuse;
use crate::proxy::hooks::{AttemptInfo, HeaderLines};
use std::time::{Duration, Instant};

/// The request an exchange sends, attempt after attempt.
pub(super) trait Outgoing {
    /// The request as received: its bytes and its parsed head.
    fn request(&self) -> (&[u8], &RequestHead);
    /// The viewer's address as text, for X-Forwarded-For.
    fn client_ip(&self) -> &[u8];
    /// A scratch buffer for the head (given back through `send`).
    fn scratch(&mut self) -> Vec<u8>;
    /// Sends `head` (already rewritten) and the body on `c` by `deadline`.
    async fn send(&mut self, w: &Worker, c: &mut OriginConn, head: Vec<u8>, deadline: Instant) -> Sent;
    /// Forwards an interim (1xx) response head, already rewritten, to
    /// whoever waits for this response (nobody, by default: a background
    /// refresh has no viewer). `head` came from `scratch`.
    async fn interim(&mut self, _w: &Worker, _head: Vec<u8>) {}
}

/// Interim responses one exchange accepts (RFC 9110 §15.2 sets no bound;
/// the first-byte timeout re-arms on each, so without one an origin could
/// hold a viewer forever).
const MAX_INTERIM: u32 = 32;

/// How sending one attempt's request went.
pub(super) enum Sent {
    Done,
    /// The origin connection failed: a failed attempt.
    OriginFailed,
    /// The viewer side failed while its body was streamed: the exchange
    /// stops.
    Stopped(Stop),
}

/// Why an exchange stopped without an answer to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// The viewer went away, or its body stopped coming.
    ViewerGone,
    /// The viewer's chunked body is malformed: 400.
    Malformed,
    /// Nothing more to do (no connection to act on).
    Done,
}

/// What the machine decided.
pub(super) enum Decision {
    /// An origin's response head to deliver (in [`Exchange::head`] over
    /// [`Exchange::buf`]); the connection holds the rest of it.
    Deliver {
        status: u16,
        conn: OriginConn,
    },
    /// No response to deliver: the error page for `status` (`page`) or the
    /// generated status.
    Answer {
        status: u16,
        page: bool,
    },
    Stopped(Stop),
}

/// How the head is rewritten for the origin, beyond what every request
/// gets.
pub(super) struct Rewrite<'a> {
    /// The normalised Accept-Encoding (SPEC §4): what a variant that
    /// varies on it is keyed by.
    pub accept_encoding: Option<&'static [u8]>,
    /// Revalidate: send this stored object's validators.
    pub validators: Option<&'a Object>,
    /// Leave out the viewer's own conditions and range.
    pub drop_conditionals: bool,
    pub framing: RequestFraming,
}

/// The origin side of one request.
pub(super) struct Exchange<'w> {
    pub w: &'w Worker,
    pub behavior: &'w Behavior,
    pub machine: AttemptMachine<'w>,
    rewrite: Rewrite<'w>,
    conn: Option<OriginConn>,
    /// The response head read's state for this attempt.
    read: HeadRead,
    /// Interim responses received in this exchange (at most
    /// [`MAX_INTERIM`]).
    interims: u32,
    /// The origin's bytes: the response head, then what followed it.
    pub buf: Vec<u8>,
    pub head: ResponseHead,
    /// Lines the `origin_response` hook added for the viewer.
    pub hook_lines: Vec<u8>,
    /// Lines the `origin_request` hook and the revalidation add.
    req_lines: Vec<u8>,
    /// A pooled connection may carry the request (idempotent, replayable).
    pooled_ok: bool,
    /// The last event was a head: on failover its connection may be pooled.
    had_head: bool,
    started: Option<Instant>,
    ended: Option<Instant>,
}

/// What an exchange came to, for the report.
pub(super) struct Summary {
    pub attempts: u32,
    /// The origin whose response (or failure) ended the request.
    pub origin: Option<usize>,
    pub origin_time: Option<Duration>,
    pub final_failure: Option<Failure>,
}

impl<'w> Exchange<'w> {
    /// An exchange for `method` on `behavior`. `replayable`: the request can
    /// be sent again (retry, failover). `peer`: the cluster peer to ask
    /// before the origins ([`super::peer::first_hop`]). `head`: a reused
    /// head to parse into.
    pub fn new(
        w: &'w Worker,
        behavior: &'w Behavior,
        (method, replayable, peer): (&[u8], bool, Option<usize>),
        rewrite: Rewrite<'w>,
        head: ResponseHead,
    ) -> Exchange<'w> {
        Exchange {
            w,
            behavior,
            machine: AttemptMachine::new(plan(w, behavior, (method, replayable), peer)),
            rewrite,
            conn: None,
            read: HeadRead {
                head_request: method == b"HEAD",
                ..HeadRead::default()
            },
            interims: 0,
            buf: w.take_buf(),
            head,
            hook_lines: Vec::new(),
            req_lines: Vec::new(),
            pooled_ok: replayable && is_idempotent(method),
            had_head: false,
            started: None,
            ended: None,
        }
    }

    /// Drives the machine until it decides.
    pub async fn run(&mut self, o: &mut impl Outgoing) -> Decision {
        let mut act = self.machine.start(Instant::now());
        loop {
            act = match act {
                Action::Connect {
                    origin,
                    role,
                    pooled,
                    deadline,
                    attempt,
                } => self.connect(Step0 { origin, role, attempt }, pooled, deadline).await,
                Action::Send { deadline } => match self.send(o, deadline).await {
                    Ok(a) => a,
                    Err(stop) => return Decision::Stopped(stop),
                },
                Action::AwaitHead { deadline } => self.await_head(o, deadline).await,
                Action::Deliver { status } => {
                    self.ended = Some(Instant::now());
                    return match self.conn.take() {
                        Some(conn) => Decision::Deliver { status, conn },
                        None => Decision::Stopped(Stop::Done),
                    };
                }
                Action::ServePage { status } | Action::Generate { status } => {
                    self.ended = Some(Instant::now());
                    self.conn = None;
                    let page = matches!(act, Action::ServePage { .. });
                    return Decision::Answer { status, page };
                }
                Action::AbortViewer | Action::Done => return Decision::Stopped(Stop::Done),
            };
        }
    }

    /// The stored object this exchange revalidates, if any.
    pub fn validators(&self) -> Option<&'w Object> {
        self.rewrite.validators
    }

    /// Tells the machine how the delivered body ended; true when the viewer
    /// connection must be aborted (the response was cut short).
    pub fn body_ended(&mut self, ev: Event) -> bool {
        self.machine.on(ev, Instant::now()) == Action::AbortViewer
    }

    /// Puts the connection that carried the delivered response back in the
    /// pool.
    pub fn pool(&self, c: OriginConn) {
        let origin = self.machine.current().origin;
        self.w.pool.borrow_mut().put(origin, c, Instant::now());
    }

    /// Pools `c` when the response the exchange holds ended exactly where
    /// the read did (a bodiless one read whole: [`crate::origin::reuse::complete_in`]);
    /// otherwise it closes.
    pub fn pool_if_complete(&self, c: OriginConn) {
        if crate::origin::reuse::complete_in(&self.buf, &self.head) == Reuse::Reusable {
            self.pool(c);
        }
    }

    /// The header actions for the answer's head: the behavior's
    /// `origin_response`, none for a peer's answer (the owner applied them).
    pub fn response_actions(&self) -> &'w HeaderActions {
        if self.machine.on_peer() {
            &NO_ACTIONS
        } else {
            &self.behavior.origin_response
        }
    }

    /// The origin's response, as `Proxy-Status` names its failed attempts.
    pub fn proxy_status(&self, out: &mut Vec<u8>) {
        super::answers::proxy_status(self.w, &self.machine, out);
    }

    /// The explicit max-age of the origin's answer, when the status being
    /// answered came from an origin (for an error page's TTL).
    pub fn origin_max_age(&self) -> Option<u64> {
        if self.machine.final_failure().is_some() || self.machine.attempts() == 0 {
            return None;
        }
        let cc = self.head.header_list(&self.buf, b"cache-control")?;
        crate::cache::freshness::parse_cache_control(&cc).max_age
    }

    /// Counts the attempts in the metrics and gives back the buffers; the
    /// response head goes back to its owner.
    pub fn end(self) -> (Summary, ResponseHead) {
        let m = &self.machine;
        let started = self.started;
        let origin_time = started.map(|t| self.ended.unwrap_or_else(Instant::now).saturating_duration_since(t));
        count_attempts(self.w, m, self.behavior, origin_time);
        let summary = Summary {
            attempts: m.attempts(),
            origin: (m.attempts() > 0).then(|| m.current().origin),
            origin_time,
            final_failure: m.final_failure(),
        };
        self.w.give_buf(self.buf);
        (summary, self.head)
    }

    async fn connect(&mut self, s: Step0, pooled: bool, deadline: Instant) -> Action {
        self.started.get_or_insert_with(Instant::now);
        // After a failover on status the previous origin's answer may be
        // complete in `buf`: keep its connection instead of closing it.
        if let Some(c) = self.conn.take() {
            if self.had_head && crate::origin::reuse::complete_in(&self.buf, &self.head) == Reuse::Reusable {
                let prev = self.machine.failures().last().map_or(s.origin, |f| f.origin);
                self.w.pool.borrow_mut().put(prev, c, Instant::now());
            }
        }
        // That head belonged to the connection just let go: a later Connect
        // (after this one's send fails) must not pool the failed one.
        self.had_head = false;
        // A non-idempotent request never takes a pooled connection: a
        // failure there would be retried on a fresh one, and a proxy must
        // not send it twice (RFC 9110 §9.2.2).
        let pooled = pooled && self.pooled_ok;
        let (c, ev, at) = self.acquire(s, pooled, deadline).await;
        self.read.reused = ev == (Event::Connected { reused: true });
        self.conn = c;
        self.machine.on(ev, at)
    }

    /// A pooled connection when allowed, else a new connect by `deadline`.
    /// Returns the connection, the event for the machine and the time to
    /// feed it at.
    async fn acquire(&self, s: Step0, pooled: bool, deadline: Instant) -> (Option<OriginConn>, Event, Instant) {
        let w = self.w;
        if pooled {
            if let Some(c) = w.pool.borrow_mut().take(s.origin, Instant::now()) {
                return (Some(c), Event::Connected { reused: true }, Instant::now());
            }
        }
        let cfg = &w.cfg;
        if s.role == Role::Peer {
            return self.acquire_peer(s, deadline).await;
        }
        let Some(o) = cfg.origins.get(s.origin) else {
            return (None, Event::ConnectFailed(ConnectError::Unavailable), Instant::now());
        };
        let addr = o.addrs[(s.attempt as usize).saturating_sub(1) % o.addrs.len().max(1)];
        let result = client::connect(addr, deadline, o.tls.as_ref()).await;
        if let (Target::Group(g), Role::Primary) = (self.behavior.target, s.role) {
            let h = &w.health[g];
            match result {
                Ok(_) => h.connect_ok(&cfg.groups[g], &o.id),
                Err(_) => h.connect_failed(&cfg.groups[g], &o.id, Instant::now()),
            }
        }
        connected(result, deadline)
    }

    /// A new connection to a cluster peer (plain HTTP/1.1, its first
    /// address), feeding the peer's fast-fail state.
    async fn acquire_peer(&self, s: Step0, deadline: Instant) -> (Option<OriginConn>, Event, Instant) {
        let cfg = &self.w.cfg;
        let (Some(c), Some(p)) = (cfg.cluster.as_ref(), cfg.hop_peer(s.origin)) else {
            return (None, Event::ConnectFailed(ConnectError::Unavailable), Instant::now());
        };
        let Some(&addr) = p.addrs.first() else {
            return (None, Event::ConnectFailed(ConnectError::Unavailable), Instant::now());
        };
        let peer = s.origin.saturating_sub(cfg.origins.len());
        let result = client::connect(addr, deadline, None).await;
        match result {
            Ok(_) => self.w.peers.connect_ok(c, peer),
            Err(_) => self.w.peers.connect_failed(c, peer, Instant::now()),
        }
        connected(result, deadline)
    }

    /// Writes this attempt's request, then waits for the head by the same
    /// deadline. `Err`: the viewer side stopped the exchange.
    async fn send(&mut self, o: &mut impl Outgoing, deadline: Instant) -> Result<Action, Stop> {
        let Some(mut c) = self.conn.take() else {
            return Err(Stop::Done);
        };
        self.read.got_bytes = false;
        let mut head = o.scratch();
        head.clear();
        self.write_head(o, &mut head);
        let sent = o.send(self.w, &mut c, head, deadline).await;
        c.uses += 1;
        self.conn = Some(c);
        match sent {
            Sent::Done => {
                self.buf.clear();
                Ok(self.await_head(o, deadline).await)
            }
            Sent::OriginFailed => Ok(self.machine.on(
                Event::FailedBeforeResponse {
                    reused: self.read.reused,
                },
                Instant::now(),
            )),
            Sent::Stopped(stop) => {
                // The origin connection closes with the request incomplete.
                self.conn = None;
                self.machine.on(Event::ViewerGone, Instant::now());
                Err(stop)
            }
        }
    }

    /// The request head for the current attempt: the one place request
    /// headers are edited for an origin (or a peer).
    fn write_head(&mut self, o: &impl Outgoing, out: &mut Vec<u8>) {
        let cfg = &self.w.cfg;
        let step = self.machine.current();
        let Some(origin) = cfg.origins.get(step.origin) else {
            return self.write_peer_head(o, out);
        };
        let (buf, head) = o.request();
        self.req_lines.clear();
        if let Some(h) = self.w.hooks.as_ref() {
            let info = attempt_info(self.w, &self.machine, buf, head);
            h.origin_request(&info, &mut HeaderLines::new(&mut self.req_lines));
        }
        validator_lines(self.rewrite.validators, &mut self.req_lines);
        let rw = RequestRewrite {
            host_override: origin.host_header.as_deref(),
            host_fallback: &origin.address,
            client_ip: o.client_ip(),
            via: &cfg.server.via,
            actions: &self.behavior.origin_request,
            ctx: AttemptCtx {
                attempt: self.machine.attempts(),
                origin: &origin.id,
                role: step.role.as_str(),
            },
            extra: &self.req_lines,
            framing: self.rewrite.framing,
            accept_encoding: self.rewrite.accept_encoding,
            drop_conditionals: self.rewrite.drop_conditionals,
            forwarding: forwarding(self.behavior),
        };
        write_request_head(out, buf, head, &rw);
    }

    /// The request to the key's owner (SPEC §8): the viewer's request as it
    /// came, every header (the owner applies the behavior's origin request
    /// policy, actions and hooks when it goes to the origin, and keys the
    /// request as this host did), with what every hop adds (Via,
    /// X-Forwarded-For, the normalised Accept-Encoding), a revalidation's
    /// validators, and this cluster's `CDN-Loop` member after the viewer's
    /// (RFC 8586 §2: a second field line appends to the list, RFC 9110
    /// §5.3), which keeps the owner from sending it on.
    fn write_peer_head(&mut self, o: &impl Outgoing, out: &mut Vec<u8>) {
        let cfg = &self.w.cfg;
        let step = self.machine.current();
        let (buf, head) = o.request();
        self.req_lines.clear();
        validator_lines(self.rewrite.validators, &mut self.req_lines);
        let (Some(c), Some(p)) = (cfg.cluster.as_ref(), cfg.hop_peer(step.origin)) else {
            return;
        };
        for part in [&b"CDN-Loop: "[..], c.id.as_bytes(), b"\r\n"] {
            self.req_lines.extend_from_slice(part);
        }
        let rw = RequestRewrite {
            host_override: None,
            host_fallback: &p.address,
            client_ip: o.client_ip(),
            via: &cfg.server.via,
            actions: &NO_ACTIONS,
            ctx: AttemptCtx {
                attempt: self.machine.attempts(),
                origin: &p.id,
                role: step.role.as_str(),
            },
            extra: &self.req_lines,
            framing: self.rewrite.framing,
            accept_encoding: self.rewrite.accept_encoding,
            drop_conditionals: self.rewrite.drop_conditionals,
            forwarding: Forwarding::ALL,
        };
        write_request_head(out, buf, head, &rw);
    }

    /// Reads toward a response head and runs the `origin_response` hook on
    /// it.
    async fn await_head(&mut self, o: &mut impl Outgoing, deadline: Instant) -> Action {
        let Some(c) = self.conn.as_mut() else {
            return self.machine.on(Event::ViewerGone, Instant::now());
        };
        let buf = std::mem::take(&mut self.buf);
        let (ev, b) = client::read_head(c, buf, deadline, &mut self.head, &mut self.read).await;
        self.buf = b.unwrap_or_else(|| self.w.take_buf());
        if self.read.interim > 0 {
            return self.interim(o).await;
        }
        self.had_head = matches!(ev, Event::Head { .. });
        // The origin hooks are for origins' answers; a peer's ran on the owner.
        let hooks = self.w.hooks.as_ref().filter(|_| !self.machine.on_peer());
        if let (Event::Head { status }, Some(h)) = (ev, hooks) {
            self.hook_lines.clear();
            let (buf, head) = o.request();
            let info = attempt_info(self.w, &self.machine, buf, head);
            h.origin_response(&info, status, &mut HeaderLines::new(&mut self.hook_lines));
        }
        self.machine.on(ev, Instant::now())
    }

    /// An interim (1xx) head at the front of the buffer: forwarded to the
    /// viewer (RFC 9110 §15.2: "A proxy MUST forward 1xx responses unless
    /// the proxy itself requested the generation of the 1xx response"),
    /// then removed. More than [`MAX_INTERIM`] in one exchange is a bad
    /// head: an origin sending them without end never answers.
    async fn interim(&mut self, o: &mut impl Outgoing) -> Action {
        let n = std::mem::take(&mut self.read.interim);
        self.interims = self.interims.saturating_add(1);
        if self.interims > MAX_INTERIM {
            return self.machine.on(Event::BadHead, Instant::now());
        }
        let mut lines = o.scratch();
        lines.clear();
        write_interim_head(&mut lines, &self.buf, &self.head, &self.w.cfg.server.via);
        // SPEC §5: the behavior's viewer_response applies to every
        // response, a forwarded 1xx included (ringfront's own 100
        // Continue, which no origin sent, is written bare: upload.rs).
        crate::http::edit::apply(&mut lines, 0, &self.behavior.viewer_response);
        o.interim(self.w, lines).await;
        self.buf.drain(..n.min(self.buf.len()));
        self.machine.on(Event::Progress, Instant::now())
    }
}

/// No header actions: what a request to a peer and a peer's answer get
/// (the owner applied the behavior's when it went to the origin).
pub(super) static NO_ACTIONS: HeaderActions = HeaderActions {
    set: Vec::new(),
    remove: Vec::new(),
};

/// The event a connect's result is for the machine, and the time to feed
/// it at (a timeout at its deadline, so the machine takes it as one).
fn connected(result: Result<OriginConn, ConnectError>, deadline: Instant) -> (Option<OriginConn>, Event, Instant) {
    match result {
        Ok(c) => (Some(c), Event::Connected { reused: false }, Instant::now()),
        Err(ConnectError::Timeout) => (None, Event::Timer, Instant::now().max(deadline)),
        Err(e) => (None, Event::ConnectFailed(e), Instant::now()),
    }
}

/// A revalidation's conditions: the stored object's validators.
fn validator_lines(validators: Option<&Object>, out: &mut Vec<u8>) {
    let Some(obj) = validators else { return };
    for (name, v) in [
        (&b"If-None-Match"[..], &obj.etag),
        (b"If-Modified-Since", &obj.last_modified),
    ] {
        if let Some(v) = v {
            for part in [name, b": ", v, b"\r\n"] {
                out.extend_from_slice(part);
            }
        }
    }
}

/// The parts of a `Connect` action an acquire needs.
#[derive(Clone, Copy)]
struct Step0 {
    origin: usize,
    role: Role,
    attempt: u32,
}

/// Per-attempt context for the code hooks.
fn attempt_info<'a>(w: &'a Worker, m: &AttemptMachine<'_>, buf: &'a [u8], head: &RequestHead) -> AttemptInfo<'a> {
    let step = m.current();
    AttemptInfo {
        attempt: m.attempts(),
        origin: w.cfg.hop_id(step.origin),
        role: step.role,
        method: head.method(buf),
        path: head.path.of(buf),
    }
}

/// The behavior's origin request policy with its key's names (SPEC §2),
/// for every request to an origin: a miss, a pass-through, a revalidation,
/// a background refresh, each attempt. Without `forward_query_string` the
/// origin gets the query the key keeps: all of it, none, or the allow-list's
/// parameters, sorted.
fn forwarding(b: &Behavior) -> Forwarding<'_> {
    let query = match (b.forward.query_string, &b.cache_key.query) {
        (true, _) | (false, QueryKey::All) => QueryForward::AsSent,
        (false, QueryKey::None) => QueryForward::None,
        (false, QueryKey::Only(names)) => QueryForward::Only(names),
    };
    Forwarding {
        headers: b.forward.headers.as_deref(),
        key_headers: &b.cache_key.headers,
        cookies: &b.forward.cookies,
        key_cookies: &b.cache_key.cookies,
        query,
    }
}

/// Methods a proxy may send again (RFC 9110 §9.2.2).
pub(super) fn is_idempotent(method: &[u8]) -> bool {
    matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE")
}

/// The machine's plan for a request on behavior `b`, asking cluster peer
/// `peer` first when there is one (SPEC §8: one connect, `[cluster]`'s
/// timeouts).
fn plan<'a>(w: &'a Worker, b: &Behavior, (method, replayable): (&[u8], bool), peer: Option<usize>) -> Plan<'a> {
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
    let peer = peer.zip(cfg.cluster.as_ref()).map(|(p, c)| Step {
        origin: cfg.peer_hop(p),
        role: Role::Peer,
        connection_attempts: 1,
        connection_timeout: c.connection_timeout,
        response_timeout: c.response_timeout,
    });
    Plan {
        peer,
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

/// Adds a finished machine's attempts and failover to the metrics.
fn count_attempts(w: &Worker, m: &AttemptMachine<'_>, b: &Behavior, origin_time: Option<Duration>) {
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
