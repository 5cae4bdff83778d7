//! The attempt state machine: where a request goes, attempt by attempt.
//!
//! Sans-io by design. The proxy feeds it [`Event`]s (a connect finished, a
//! response head arrived, a timer fired…) with the current time, and it
//! answers with one [`Action`] (connect to origin X by a deadline, send the
//! request, deliver the response, answer with a page or a status, abort).
//! It never touches a socket or reads a clock, so every sequence of events,
//! timer edges included, is tested exhaustively in this file, and the socket
//! tests then only check that the proxy drives it faithfully.
//!
//! Rules (SPEC §3.5, CloudFront origin groups):
//! - every request starts at the primary (or the single origin);
//! - up to `connection_attempts` connects per origin, each bounded by
//!   `connection_timeout`; a pooled connection that fails before any response
//!   byte is retried once on a fresh connection, and that retry is not an
//!   attempt;
//! - `response_timeout` bounds the wait for the first response byte and every
//!   later gap between reads of the head;
//! - failover to the secondary when the primary's connects are exhausted, its
//!   response times out or breaks before the head, or its status is in
//!   `failover_status` — and only for GET, HEAD and OPTIONS with a request
//!   that can be sent again;
//! - the decision is made on the response head; once the head has been
//!   delivered, a failure aborts the viewer connection;
//! - when the last origin fails: an error page for the final status when
//!   configured, else connect failure → 502, timeout → 504, an origin status →
//!   that response.
//!
//! In a cluster (SPEC §8) a cacheable miss whose key another host owns has
//! a first step before all that: the owner ([`Plan::peer`], [`Role::Peer`]),
//! one connect bounded by `[cluster]`'s timeouts. Whatever the owner
//! answers, whatever its status, is the answer (it applied the origin
//! group's failover and error pages itself); if it cannot be connected,
//! does not answer in time or breaks before a head, the request moves on
//! to the origin group as if it had started there (the owner's failure
//! stays in [`AttemptMachine::failures`], for Proxy-Status), provided it
//! can be sent again.

use std::time::{Duration, Instant};

/// Which member of the target an attempt goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Secondary,
    /// The target is a single origin, not a group.
    Single,
    /// The key's owner in the cluster, before the origin group.
    Peer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Single => "single",
            Role::Peer => "peer",
        }
    }
}

/// One origin (or peer) the request may go to, with its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The upstream's index: an origin's in the config, or for
    /// [`Role::Peer`] the index the driver gives the peer (after the
    /// origins: see `Config::hop_id`).
    pub origin: usize,
    pub role: Role,
    pub connection_attempts: u32,
    pub connection_timeout: Duration,
    pub response_timeout: Duration,
}

/// Everything the machine needs to know about one request up front.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The key's owner when it is another host of the cluster (SPEC §8):
    /// tried once before the origin group (see the module doc).
    pub peer: Option<Step>,
    /// The primary (or single origin), then the secondary if any.
    pub steps: [Option<Step>; 2],
    /// Statuses that send the request on to the secondary.
    pub failover_status: &'a [u16],
    /// GET, HEAD or OPTIONS: only those fail over.
    pub method_fails_over: bool,
    /// The request can be sent again (no body, or a body kept whole). If not,
    /// nothing is retried once sending has begun.
    pub replayable: bool,
    /// `primary_fast_fail` has marked the primary down and this request is
    /// not the probe: go straight to the secondary.
    pub skip_primary: bool,
    /// Final statuses that have an `error_response` page.
    pub error_pages: &'a [u16],
}

/// Why a connect failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    Refused,
    Timeout,
    /// Unreachable, or reset during connect.
    Unavailable,
    /// The TLS handshake failed on the origin's certificate (untrusted,
    /// wrong name, expired).
    TlsCertificate,
    /// The TLS handshake failed otherwise (alert, no common version or
    /// cipher suite, the connection cut mid-handshake).
    TlsProtocol,
}

/// What happened, as reported by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The last `Connect` succeeded; `reused` if it came from the pool.
    Connected {
        reused: bool,
    },
    ConnectFailed(ConnectError),
    /// Sending, or reading the head, failed before any response byte.
    FailedBeforeResponse {
        reused: bool,
    },
    /// Some bytes of the head arrived (re-arms the gap timeout).
    Progress,
    /// A complete response head (1xx already skipped by the driver).
    Head {
        status: u16,
    },
    /// The head was malformed, or the connection broke inside it.
    BadHead,
    /// The timer of the current action fired.
    Timer,
    /// The response body reached the viewer completely.
    BodyDone,
    /// The body failed (origin closed early, reset, timed out between reads).
    BodyFailed,
    /// The viewer went away.
    ViewerGone,
}

/// What the driver should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Get a connection to `origin`: from the pool when `pooled`, else a new
    /// connect that must finish by `deadline`. Report `Connected` or
    /// `ConnectFailed`, or `Timer` at the deadline.
    Connect {
        origin: usize,
        role: Role,
        attempt: u32,
        pooled: bool,
        deadline: Instant,
    },
    /// Send the request (head and body), then wait for the response head
    /// until `deadline`; report `Head`, `Progress`, `BadHead`,
    /// `FailedBeforeResponse`, or `Timer`.
    Send { deadline: Instant },
    /// Keep reading the head until `deadline`.
    AwaitHead { deadline: Instant },
    /// Forward this response head and stream its body; report `BodyDone` or
    /// `BodyFailed` (or `ViewerGone`).
    Deliver { status: u16 },
    /// Answer the viewer with the configured error page for `status`.
    ServePage { status: u16 },
    /// Answer the viewer with a status ringfront generates (502 or 504).
    Generate { status: u16 },
    /// Close the viewer connection: the response was cut short.
    AbortViewer,
    /// Nothing more to do.
    Done,
}

/// RFC 9209 error types ringfront reports in Proxy-Status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    ConnectionRefused,
    ConnectionTimeout,
    DestinationUnavailable,
    ResponseTimeout,
    /// The connection broke before or inside the head.
    ResponseIncomplete,
    /// The head was not valid HTTP.
    ProtocolError,
    /// The origin's TLS certificate was refused.
    TlsCertificateError,
    /// The TLS handshake with the origin failed otherwise.
    TlsProtocolError,
    /// The origin answered with a status in `failover_status`.
    Status(u16),
}

impl Failure {
    /// The Proxy-Status error type.
    pub fn error_type(self) -> &'static str {
        match self {
            Failure::ConnectionRefused => "connection_refused",
            Failure::ConnectionTimeout => "connection_timeout",
            Failure::DestinationUnavailable => "destination_unavailable",
            Failure::ResponseTimeout => "http_response_timeout",
            Failure::ResponseIncomplete => "http_response_incomplete",
            Failure::ProtocolError => "http_protocol_error",
            Failure::TlsCertificateError => "tls_certificate_error",
            Failure::TlsProtocolError => "tls_protocol_error",
            Failure::Status(_) => "http_response_status",
        }
    }

    /// The access log's detailed result for a request that ended on this failure.
    pub fn detail(self) -> crate::outcome::Detail {
        use crate::outcome::Detail;
        match self {
            Failure::ConnectionRefused
            | Failure::ConnectionTimeout
            | Failure::DestinationUnavailable
            | Failure::TlsCertificateError
            | Failure::TlsProtocolError => Detail::OriginConnectError,
            Failure::ResponseTimeout => Detail::OriginReadTimeout,
            Failure::ResponseIncomplete | Failure::ProtocolError => Detail::OriginResponseError,
            Failure::Status(_) => Detail::OriginStatus,
        }
    }
}

/// One failed attempt, for Proxy-Status, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedAttempt {
    pub origin: usize,
    pub role: Role,
    pub failure: Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Connecting { pooled: bool, deadline: Instant },
    Waiting { deadline: Instant },
    Delivering,
    Finished,
}

/// The state of one request's trip to its origins; see the module doc.
#[derive(Debug)]
pub struct AttemptMachine<'a> {
    plan: Plan<'a>,
    /// The current step is the plan's peer (then `step` is unused yet).
    on_peer: bool,
    step: usize,
    phase: Phase,
    /// Connect attempts made on the current step.
    connects: u32,
    /// Attempts made across the request (1-based number of the current one).
    attempt: u32,
    /// The one fresh-connection retry of a failed pooled connection is used.
    pooled_retry_used: bool,
    /// Bytes of the request have been sent on some connection.
    sent: bool,
    failures: Vec<FailedAttempt>,
    /// The status delivered, or generated.
    outcome: Option<u16>,
    /// The failure the request ended on, if it did not end with a delivered status.
    final_failure: Option<Failure>,
}

impl<'a> AttemptMachine<'a> {
    pub fn new(plan: Plan<'a>) -> Self {
        AttemptMachine {
            on_peer: plan.peer.is_some(),
            plan,
            step: 0,
            phase: Phase::Start,
            connects: 0,
            attempt: 0,
            pooled_retry_used: false,
            sent: false,
            failures: Vec::new(),
            outcome: None,
            final_failure: None,
        }
    }

    /// The first action.
    pub fn start(&mut self, now: Instant) -> Action {
        debug_assert_eq!(self.phase, Phase::Start);
        self.step = self.first_origin();
        self.connect(now, true)
    }

    /// Where the origin group starts: the primary, or the secondary when
    /// the primary is skipped as down.
    fn first_origin(&self) -> usize {
        usize::from(self.plan.skip_primary && self.plan.steps[1].is_some())
    }

    /// Attempts that failed so far, in order.
    pub fn failures(&self) -> &[FailedAttempt] {
        &self.failures
    }

    /// Number of attempts made (connects started).
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The step (origin or peer) currently or last in use.
    pub fn current(&self) -> Step {
        let step = if self.on_peer {
            self.plan.peer
        } else {
            self.plan.steps[self.step]
        };
        step.unwrap_or(Step {
            origin: 0,
            role: Role::Single,
            connection_attempts: 1,
            connection_timeout: Duration::ZERO,
            response_timeout: Duration::ZERO,
        })
    }

    /// True once the group's secondary was used.
    pub fn failed_over(&self) -> bool {
        !self.on_peer && self.step > 0
    }

    /// True while the request is with the cluster's owner of its key.
    pub fn on_peer(&self) -> bool {
        self.on_peer
    }

    /// The final status (delivered or generated) once decided.
    pub fn outcome(&self) -> Option<u16> {
        self.outcome
    }

    /// The failure the request ended on, when no origin status was delivered.
    pub fn final_failure(&self) -> Option<Failure> {
        self.final_failure
    }

    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    fn connect(&mut self, now: Instant, pooled: bool) -> Action {
        let s = self.current();
        self.connects += 1;
        self.attempt += 1;
        let deadline = now + s.connection_timeout;
        self.phase = Phase::Connecting { pooled, deadline };
        Action::Connect {
            origin: s.origin,
            role: s.role,
            attempt: self.attempt,
            pooled,
            deadline,
        }
    }

    /// The fresh-connection retry of a pooled connection: not an attempt.
    fn retry_fresh(&mut self, now: Instant) -> Action {
        self.pooled_retry_used = true;
        let s = self.current();
        let deadline = now + s.connection_timeout;
        self.phase = Phase::Connecting {
            pooled: false,
            deadline,
        };
        Action::Connect {
            origin: s.origin,
            role: s.role,
            attempt: self.attempt,
            pooled: false,
            deadline,
        }
    }

    fn can_fail_over(&self) -> bool {
        !self.on_peer
            && self.step == 0
            && self.plan.steps[1].is_some()
            && self.plan.method_fails_over
            && (self.plan.replayable || !self.sent)
    }

    /// Records a failure of the current origin and moves on: to the next
    /// connect on this origin, to the secondary, or to the final answer.
    fn origin_failed(&mut self, now: Instant, f: Failure, connect_phase: bool) -> Action {
        let s = self.current();
        self.failures.push(FailedAttempt {
            origin: s.origin,
            role: s.role,
            failure: f,
        });
        if connect_phase && self.connects < s.connection_attempts {
            return self.connect(now, false);
        }
        if self.on_peer && (self.plan.replayable || !self.sent) {
            // SPEC §8: the owner failed; the origin group, from its start.
            self.on_peer = false;
            self.step = self.first_origin();
            self.connects = 0;
            self.pooled_retry_used = false;
            return self.connect(now, true);
        }
        if self.can_fail_over() {
            self.step = 1;
            self.connects = 0;
            self.pooled_retry_used = false;
            return self.connect(now, true);
        }
        self.finish_with_failure(f)
    }

    fn finish_with_failure(&mut self, f: Failure) -> Action {
        self.final_failure = Some(f);
        let status = if f == Failure::ResponseTimeout { 504 } else { 502 };
        self.finish_generated(status)
    }

    fn finish_generated(&mut self, status: u16) -> Action {
        self.outcome = Some(status);
        self.phase = Phase::Finished;
        if self.plan.error_pages.contains(&status) {
            Action::ServePage { status }
        } else {
            Action::Generate { status }
        }
    }

    fn head(&mut self, now: Instant, status: u16) -> Action {
        if self.on_peer {
            // SPEC §8: whatever the owner answers is the answer.
            self.outcome = Some(status);
            self.phase = Phase::Delivering;
            return Action::Deliver { status };
        }
        if self.plan.failover_status.contains(&status) && self.can_fail_over() {
            return self.origin_failed(now, Failure::Status(status), false);
        }
        if self.plan.failover_status.contains(&status) {
            // The last origin's failover status is still its answer; it is
            // recorded so Proxy-Status names it.
            let s = self.current();
            self.failures.push(FailedAttempt {
                origin: s.origin,
                role: s.role,
                failure: Failure::Status(status),
            });
        }
        self.outcome = Some(status);
        if self.plan.error_pages.contains(&status) {
            self.phase = Phase::Finished;
            Action::ServePage { status }
        } else {
            self.phase = Phase::Delivering;
            Action::Deliver { status }
        }
    }

    /// Feeds one event at time `now`; returns the next action.
    pub fn on(&mut self, ev: Event, now: Instant) -> Action {
        match (self.phase, ev) {
            (Phase::Finished, _) => Action::Done,
            (_, Event::ViewerGone) => {
                self.phase = Phase::Finished;
                Action::Done
            }
            (Phase::Connecting { .. }, Event::Connected { .. }) => {
                let deadline = now + self.current().response_timeout;
                self.sent = true;
                self.phase = Phase::Waiting { deadline };
                Action::Send { deadline }
            }
            (Phase::Connecting { .. }, Event::ConnectFailed(e)) => {
                let f = match e {
                    ConnectError::Refused => Failure::ConnectionRefused,
                    ConnectError::Timeout => Failure::ConnectionTimeout,
                    ConnectError::Unavailable => Failure::DestinationUnavailable,
                    ConnectError::TlsCertificate => Failure::TlsCertificateError,
                    ConnectError::TlsProtocol => Failure::TlsProtocolError,
                };
                self.origin_failed(now, f, true)
            }
            (Phase::Connecting { pooled, deadline }, Event::Timer) => {
                if now >= deadline {
                    self.origin_failed(now, Failure::ConnectionTimeout, true)
                } else {
                    // Early wake: keep waiting for the same connect.
                    Action::Connect {
                        origin: self.current().origin,
                        role: self.current().role,
                        attempt: self.attempt,
                        pooled,
                        deadline,
                    }
                }
            }
            (Phase::Waiting { .. }, Event::FailedBeforeResponse { reused }) => {
                if reused && !self.pooled_retry_used && self.plan.replayable {
                    self.retry_fresh(now)
                } else {
                    self.origin_failed(now, Failure::ResponseIncomplete, false)
                }
            }
            (Phase::Waiting { .. }, Event::Progress) => {
                let deadline = now + self.current().response_timeout;
                self.phase = Phase::Waiting { deadline };
                Action::AwaitHead { deadline }
            }
            (Phase::Waiting { deadline }, Event::Timer) => {
                if now >= deadline {
                    self.origin_failed(now, Failure::ResponseTimeout, false)
                } else {
                    Action::AwaitHead { deadline }
                }
            }
            (Phase::Waiting { .. }, Event::BadHead) => self.origin_failed(now, Failure::ProtocolError, false),
            (Phase::Waiting { .. }, Event::Head { status }) => self.head(now, status),
            (Phase::Delivering, Event::BodyDone) => {
                self.phase = Phase::Finished;
                Action::Done
            }
            (Phase::Delivering, Event::BodyFailed) => {
                let s = self.current();
                self.failures.push(FailedAttempt {
                    origin: s.origin,
                    role: s.role,
                    failure: Failure::ResponseIncomplete,
                });
                self.final_failure = Some(Failure::ResponseIncomplete);
                self.phase = Phase::Finished;
                Action::AbortViewer
            }
            // Any other event is a driver bug; end the request safely rather
            // than panic on a path that network input reaches.
            (_, _) => {
                self.phase = Phase::Finished;
                self.final_failure.get_or_insert(Failure::ProtocolError);
                Action::AbortViewer
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: Duration = Duration::from_millis(200);
    const RT: Duration = Duration::from_millis(1000);

    fn step(origin: usize, role: Role, attempts: u32) -> Step {
        Step {
            origin,
            role,
            connection_attempts: attempts,
            connection_timeout: CT,
            response_timeout: RT,
        }
    }

    fn single(attempts: u32) -> Plan<'static> {
        Plan {
            peer: None,
            steps: [Some(step(0, Role::Single, attempts)), None],
            failover_status: &[],
            method_fails_over: true,
            replayable: true,
            skip_primary: false,
            error_pages: &[],
        }
    }

    fn group(attempts: u32) -> Plan<'static> {
        Plan {
            peer: None,
            steps: [
                Some(step(0, Role::Primary, attempts)),
                Some(step(1, Role::Secondary, attempts)),
            ],
            failover_status: &[500, 502, 503, 504],
            method_fails_over: true,
            replayable: true,
            skip_primary: false,
            error_pages: &[],
        }
    }

    /// The peer's index in these tests (after the two origins).
    const PEER: usize = 2;

    /// `p` with the cluster's owner as its first step.
    fn peered(mut p: Plan<'static>) -> Plan<'static> {
        p.peer = Some(step(PEER, Role::Peer, 1));
        p
    }

    fn connect_of(a: Action) -> (usize, u32, bool, Instant) {
        match a {
            Action::Connect {
                origin,
                attempt,
                pooled,
                deadline,
                ..
            } => (origin, attempt, pooled, deadline),
            other => panic!("expected Connect, got {other:?}"),
        }
    }

    #[test]
    fn single_origin_happy_path() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(single(3));
        let (o, n, pooled, dl) = connect_of(m.start(t0));
        assert_eq!((o, n, pooled, dl), (0, 1, true, t0 + CT));
        assert_eq!(
            m.on(Event::Connected { reused: false }, t0),
            Action::Send { deadline: t0 + RT }
        );
        assert_eq!(m.on(Event::Head { status: 200 }, t0), Action::Deliver { status: 200 });
        assert_eq!(m.on(Event::BodyDone, t0), Action::Done);
        assert!(m.is_finished());
        assert!(m.failures().is_empty());
        assert_eq!(m.attempts(), 1);
    }

    #[test]
    fn refused_connects_exhaust_then_502() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(single(3));
        m.start(t0);
        let (_, n, pooled, _) = connect_of(m.on(Event::ConnectFailed(ConnectError::Refused), t0));
        assert_eq!((n, pooled), (2, false));
        connect_of(m.on(Event::ConnectFailed(ConnectError::Refused), t0));
        assert_eq!(
            m.on(Event::ConnectFailed(ConnectError::Refused), t0),
            Action::Generate { status: 502 }
        );
        assert_eq!(m.failures().len(), 3);
        assert_eq!(m.final_failure(), Some(Failure::ConnectionRefused));
        assert_eq!(m.outcome(), Some(502));
    }

    #[test]
    fn connect_timer_edge() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(single(1));
        let (_, _, _, dl) = connect_of(m.start(t0));
        // One nanosecond early: still connecting.
        let early = dl - Duration::from_nanos(1);
        assert_eq!(connect_of(m.on(Event::Timer, early)).3, dl);
        // Exactly at the deadline: timed out.
        assert_eq!(m.on(Event::Timer, dl), Action::Generate { status: 502 });
        assert_eq!(m.final_failure(), Some(Failure::ConnectionTimeout));
    }

    #[test]
    fn response_timer_edge_and_progress() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(single(1));
        m.start(t0);
        let Action::Send { deadline } = m.on(Event::Connected { reused: false }, t0) else {
            panic!()
        };
        assert_eq!(
            m.on(Event::Timer, deadline - Duration::from_nanos(1)),
            Action::AwaitHead { deadline }
        );
        let t1 = t0 + Duration::from_millis(700);
        assert_eq!(m.on(Event::Progress, t1), Action::AwaitHead { deadline: t1 + RT });
        assert_eq!(m.on(Event::Timer, deadline), Action::AwaitHead { deadline: t1 + RT });
        assert_eq!(m.on(Event::Timer, t1 + RT), Action::Generate { status: 504 });
        assert_eq!(m.final_failure(), Some(Failure::ResponseTimeout));
    }

    #[test]
    fn pooled_failure_retried_once_fresh_without_new_attempt() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(single(1));
        m.start(t0);
        m.on(Event::Connected { reused: true }, t0);
        let (_, n, pooled, _) = connect_of(m.on(Event::FailedBeforeResponse { reused: true }, t0));
        assert_eq!((n, pooled), (1, false));
        m.on(Event::Connected { reused: false }, t0);
        assert_eq!(
            m.on(Event::FailedBeforeResponse { reused: false }, t0),
            Action::Generate { status: 502 }
        );
        assert_eq!(m.attempts(), 1);
    }

    #[test]
    fn group_fails_over_on_status_and_not_for_post() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(group(3));
        m.start(t0);
        m.on(Event::Connected { reused: false }, t0);
        let (o, n, pooled, _) = connect_of(m.on(Event::Head { status: 503 }, t0));
        assert_eq!((o, n, pooled), (1, 2, true));
        m.on(Event::Connected { reused: false }, t0);
        assert_eq!(m.on(Event::Head { status: 200 }, t0), Action::Deliver { status: 200 });
        assert!(m.failed_over());

        let mut p = group(3);
        p.method_fails_over = false;
        let mut m = AttemptMachine::new(p);
        m.start(t0);
        m.on(Event::Connected { reused: false }, t0);
        assert_eq!(m.on(Event::Head { status: 503 }, t0), Action::Deliver { status: 503 });
        assert!(!m.failed_over());
    }

    #[test]
    fn error_page_for_final_status() {
        let t0 = Instant::now();
        let mut p = group(1);
        p.error_pages = &[502, 404];
        let mut m = AttemptMachine::new(p);
        m.start(t0);
        connect_of(m.on(Event::ConnectFailed(ConnectError::Refused), t0));
        assert_eq!(
            m.on(Event::ConnectFailed(ConnectError::Refused), t0),
            Action::ServePage { status: 502 }
        );
        let mut p = group(1);
        p.error_pages = &[404];
        let mut m = AttemptMachine::new(p);
        m.start(t0);
        m.on(Event::Connected { reused: false }, t0);
        assert_eq!(m.on(Event::Head { status: 404 }, t0), Action::ServePage { status: 404 });
    }

    #[test]
    fn body_failure_aborts_viewer_never_fails_over() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(group(1));
        m.start(t0);
        m.on(Event::Connected { reused: false }, t0);
        m.on(Event::Head { status: 200 }, t0);
        assert_eq!(m.on(Event::BodyFailed, t0), Action::AbortViewer);
        assert!(!m.failed_over());
        assert_eq!(m.on(Event::Timer, t0), Action::Done);
    }

    #[test]
    fn unreplayable_body_does_not_fail_over_after_send() {
        let t0 = Instant::now();
        let mut p = group(1);
        p.replayable = false;
        let mut m = AttemptMachine::new(p.clone());
        m.start(t0);
        m.on(Event::Connected { reused: true }, t0);
        assert_eq!(
            m.on(Event::FailedBeforeResponse { reused: true }, t0),
            Action::Generate { status: 502 }
        );
        // but a connect failure, before anything was sent, still fails over
        let mut m = AttemptMachine::new(p);
        m.start(t0);
        assert_eq!(connect_of(m.on(Event::ConnectFailed(ConnectError::Refused), t0)).0, 1);
    }

    #[test]
    fn the_owner_answers_whatever_its_status() {
        let t0 = Instant::now();
        let mut p = peered(group(2));
        p.error_pages = &[503];
        let mut m = AttemptMachine::new(p);
        let (o, n, pooled, dl) = connect_of(m.start(t0));
        assert_eq!((o, n, pooled, dl), (PEER, 1, true, t0 + CT));
        assert_eq!(m.current().role, Role::Peer);
        m.on(Event::Connected { reused: false }, t0);
        // A failover status, with an error page for it: the owner's answer.
        assert_eq!(m.on(Event::Head { status: 503 }, t0), Action::Deliver { status: 503 });
        assert!(m.failures().is_empty());
        assert!(!m.failed_over());
        assert_eq!(m.on(Event::BodyDone, t0), Action::Done);
    }

    #[test]
    fn an_owner_that_cannot_be_connected_sends_the_request_to_the_primary() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(peered(group(2)));
        m.start(t0);
        // One connect only, whatever the group's connection_attempts.
        let (o, n, pooled, _) = connect_of(m.on(Event::ConnectFailed(ConnectError::Refused), t0));
        assert_eq!((o, n, pooled), (0, 2, true));
        assert_eq!(m.current().role, Role::Primary);
        assert!(!m.failed_over());
        assert_eq!(
            m.failures(),
            &[FailedAttempt {
                origin: PEER,
                role: Role::Peer,
                failure: Failure::ConnectionRefused
            }]
        );
        m.on(Event::Connected { reused: false }, t0);
        assert_eq!(m.on(Event::Head { status: 200 }, t0), Action::Deliver { status: 200 });
    }

    #[test]
    fn an_owner_that_times_out_sends_the_request_on_and_a_down_primary_stays_skipped() {
        let t0 = Instant::now();
        let mut p = peered(group(1));
        p.skip_primary = true;
        let mut m = AttemptMachine::new(p);
        m.start(t0);
        let Action::Send { deadline } = m.on(Event::Connected { reused: false }, t0) else {
            panic!()
        };
        let (o, n, _, _) = connect_of(m.on(Event::Timer, deadline));
        assert_eq!((o, n), (1, 2), "straight to the secondary");
        assert_eq!(m.failures()[0].failure, Failure::ResponseTimeout);
        assert_eq!(m.failures()[0].role, Role::Peer);
    }

    #[test]
    fn a_failed_pooled_connection_to_the_owner_is_retried_fresh_first() {
        let t0 = Instant::now();
        let mut m = AttemptMachine::new(peered(single(1)));
        m.start(t0);
        m.on(Event::Connected { reused: true }, t0);
        let (o, n, pooled, _) = connect_of(m.on(Event::FailedBeforeResponse { reused: true }, t0));
        assert_eq!((o, n, pooled), (PEER, 1, false));
        m.on(Event::Connected { reused: false }, t0);
        let (o, n, _, _) = connect_of(m.on(Event::BadHead, t0));
        assert_eq!((o, n), (0, 2));
    }

    #[test]
    fn an_unreplayable_request_sent_to_the_owner_is_not_sent_again() {
        let t0 = Instant::now();
        let mut p = peered(group(1));
        p.replayable = false;
        let mut m = AttemptMachine::new(p);
        m.start(t0);
        m.on(Event::Connected { reused: false }, t0);
        assert_eq!(
            m.on(Event::FailedBeforeResponse { reused: false }, t0),
            Action::Generate { status: 502 }
        );
    }

    /// Every event sequence a driver can produce, for every kind of plan,
    /// checked against the rules in the module doc. Progress and early timer
    /// wakes are allowed once per sequence so the search stays finite.
    #[test]
    fn exhaustive_event_sequences_keep_the_rules() {
        let mut paths = 0u64;
        for &grouped in &[false, true] {
            for &fails_over in &[false, true] {
                for &replayable in &[false, true] {
                    for &attempts in &[1u32, 2] {
                        for pages in [&[][..], &[502u16, 504, 404][..]] {
                            for (skip, owner) in [(false, false), (true, false), (false, true), (true, true)] {
                                // With an owner first, one connect per origin
                                // keeps the search finite in time.
                                if owner && attempts > 1 {
                                    continue;
                                }
                                let mut p = if grouped { group(attempts) } else { single(attempts) };
                                if owner {
                                    p = peered(p);
                                }
                                p.method_fails_over = fails_over;
                                p.replayable = replayable;
                                p.error_pages = pages;
                                p.skip_primary = skip;
                                let t0 = Instant::now();
                                let mut m = AttemptMachine::new(p.clone());
                                let first = m.start(t0);
                                let mut trace = Trace::default();
                                explore(&p, m, first, t0, &mut trace, &mut paths);
                            }
                        }
                    }
                }
            }
        }
        assert!(paths > 10_000, "only {paths} paths explored");
    }

    #[derive(Clone, Default)]
    struct Trace {
        actions: Vec<Action>,
        events: Vec<Event>,
        progress_used: bool,
        early_used: bool,
    }

    fn events_for(a: Action, now: Instant, deadline: Option<Instant>, t: &Trace) -> Vec<(Event, Instant)> {
        let mut v = Vec::new();
        match a {
            Action::Connect { pooled, .. } => {
                v.push((Event::Connected { reused: false }, now));
                if pooled {
                    v.push((Event::Connected { reused: true }, now));
                }
                v.push((Event::ConnectFailed(ConnectError::Refused), now));
                v.push((Event::ConnectFailed(ConnectError::Unavailable), now));
                v.push((Event::ConnectFailed(ConnectError::Timeout), now));
                v.push((Event::ConnectFailed(ConnectError::TlsCertificate), now));
            }
            Action::Send { .. } | Action::AwaitHead { .. } => {
                for s in [200u16, 404, 503] {
                    v.push((Event::Head { status: s }, now));
                }
                v.push((Event::BadHead, now));
                v.push((Event::FailedBeforeResponse { reused: true }, now));
                v.push((Event::FailedBeforeResponse { reused: false }, now));
                if !t.progress_used {
                    v.push((Event::Progress, now + Duration::from_millis(10)));
                }
            }
            Action::Deliver { .. } => {
                v.push((Event::BodyDone, now));
                v.push((Event::BodyFailed, now));
            }
            _ => return v,
        }
        if let Some(d) = deadline {
            v.push((Event::Timer, d));
            if !t.early_used {
                v.push((Event::Timer, d - Duration::from_nanos(1)));
            }
        }
        v.push((Event::ViewerGone, now));
        v
    }

    fn deadline_of(a: Action) -> Option<Instant> {
        match a {
            Action::Connect { deadline, .. } | Action::Send { deadline } | Action::AwaitHead { deadline } => {
                Some(deadline)
            }
            _ => None,
        }
    }

    fn explore(p: &Plan<'_>, m: AttemptMachine<'_>, a: Action, now: Instant, t: &mut Trace, paths: &mut u64) {
        t.actions.push(a);
        let evs = events_for(a, now, deadline_of(a), t);
        if evs.is_empty() || t.actions.len() > 24 {
            check(p, &m, t);
            *paths += 1;
            t.actions.pop();
            return;
        }
        for (ev, at) in evs {
            let mut m2 = AttemptMachine {
                plan: m.plan.clone(),
                on_peer: m.on_peer,
                step: m.step,
                phase: m.phase,
                connects: m.connects,
                attempt: m.attempt,
                pooled_retry_used: m.pooled_retry_used,
                sent: m.sent,
                failures: m.failures.clone(),
                outcome: m.outcome,
                final_failure: m.final_failure,
            };
            let next = m2.on(ev, at);
            let mut t2 = t.clone();
            t2.events.push(ev);
            if ev == Event::Progress {
                t2.progress_used = true;
            }
            if ev == Event::Timer && Some(at) != deadline_of(a) {
                t2.early_used = true;
                // An early wake changes nothing: the same wait goes on.
                let same = match (a, next) {
                    (Action::Send { deadline: d1 }, Action::AwaitHead { deadline: d2 }) => d1 == d2,
                    _ => next == a,
                };
                assert!(same, "early timer changed {a:?} to {next:?}: {:?}", t2.events);
            }
            if ev == Event::Timer && Some(at) == deadline_of(a) {
                // A timer at the deadline is a timeout, never a wait.
                assert_ne!(next, a, "timer at the deadline ignored: {:?}", t2.events);
            }
            explore(p, m2, next, at, &mut t2, paths);
        }
        t.actions.pop();
    }

    /// The owner: the origin group only after the owner failed (not on a
    /// status: its answer is the answer), and never the owner again.
    fn check_owner(p: &Plan<'_>, m: &AttemptMachine<'_>, connects: &[(usize, u32, bool)], ctx: &dyn Fn() -> String) {
        let to_origins = connects.iter().any(|c| c.0 != PEER);
        if let (Some(_), true) = (p.peer, to_origins) {
            let owner_failed = m
                .failures
                .iter()
                .any(|f| f.role == Role::Peer && !matches!(f.failure, Failure::Status(_)));
            assert!(owner_failed, "{}", ctx());
            assert!(
                connects.iter().skip_while(|c| c.0 == PEER).all(|c| c.0 != PEER),
                "{}",
                ctx()
            );
        }
        assert!(
            m.failures
                .iter()
                .all(|f| f.role != Role::Peer || !matches!(f.failure, Failure::Status(_))),
            "{}",
            ctx()
        );
    }

    fn check(p: &Plan<'_>, m: &AttemptMachine<'_>, t: &Trace) {
        let ctx = || format!("plan {p:?}\nevents {:?}\nactions {:?}", t.events, t.actions);
        let primary = p.steps[0].unwrap().origin;
        // An early timer re-issues the same Connect: count it once.
        let mut distinct = t.actions.clone();
        distinct.dedup();
        let connects: Vec<(usize, u32, bool)> = distinct
            .iter()
            .filter_map(|a| match a {
                Action::Connect {
                    origin,
                    attempt,
                    pooled,
                    ..
                } => Some((*origin, *attempt, *pooled)),
                _ => None,
            })
            .collect();
        // Starts at the owner, else at the primary (or the secondary when
        // the primary is skipped).
        let first = connects[0];
        let expect_first = if p.peer.is_some() {
            PEER
        } else if p.skip_primary && p.steps[1].is_some() {
            1
        } else {
            primary
        };
        assert_eq!((first.0, first.1), (expect_first, 1), "{}", ctx());
        check_owner(p, m, &connects, &ctx);
        // Attempt numbers: +1 per new connect; a fresh retry after a pooled
        // failure keeps the number.
        for w in connects.windows(2) {
            assert!(w[1].1 == w[0].1 + 1 || (w[1].1 == w[0].1 && !w[1].2), "{}", ctx());
        }
        // Per origin, at most connection_attempts numbered attempts.
        for s in p.steps.iter().chain([&p.peer]).flatten() {
            let mut nums: Vec<u32> = connects.iter().filter(|c| c.0 == s.origin).map(|c| c.1).collect();
            nums.dedup();
            assert!(nums.len() as u32 <= s.connection_attempts, "{}", ctx());
        }
        // The secondary only after a failure of the primary, and only when allowed.
        if let Some(sec) = p.steps[1] {
            if connects.iter().any(|c| c.0 == sec.origin) && !p.skip_primary {
                assert!(p.method_fails_over, "{}", ctx());
                assert!(m.failures.iter().any(|f| f.origin == primary), "{}", ctx());
            }
        } else {
            assert!(connects.iter().all(|c| c.0 == primary || c.0 == PEER), "{}", ctx());
        }
        // Exactly one final answer, and nothing after it.
        let finals: Vec<&Action> = t
            .actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::Deliver { .. } | Action::ServePage { .. } | Action::Generate { .. }
                )
            })
            .collect();
        let gone = t.events.last() == Some(&Event::ViewerGone);
        assert!(finals.len() <= 1, "{}", ctx());
        if !gone {
            assert_eq!(finals.len(), 1, "no answer: {}", ctx());
        }
        let last = *t.actions.last().unwrap();
        match last {
            Action::Done | Action::ServePage { .. } | Action::Generate { .. } | Action::AbortViewer => {}
            other => panic!("ended on {other:?}: {}", ctx()),
        }
        match finals.first().copied() {
            Some(Action::Generate { status }) => {
                assert!(!p.error_pages.contains(status), "{}", ctx());
                let want = if m.final_failure == Some(Failure::ResponseTimeout) {
                    504
                } else {
                    502
                };
                assert_eq!(*status, want, "{}", ctx());
            }
            Some(Action::ServePage { status }) => assert!(p.error_pages.contains(status), "{}", ctx()),
            Some(Action::Deliver { status }) => {
                if p.failover_status.contains(status) && !m.on_peer {
                    // A failover status is delivered only by the last origin
                    // or when failing over was not allowed.
                    assert!(
                        m.step == 1 || p.steps[1].is_none() || !p.method_fails_over || (!p.replayable && m.sent),
                        "{}",
                        ctx()
                    );
                }
                // A body failure after delivery aborts; it never fails over.
                if t.events.last() == Some(&Event::BodyFailed) {
                    assert_eq!(last, Action::AbortViewer, "{}", ctx());
                }
            }
            _ => {}
        }
        // Unreplayable requests are never sent twice.
        if !p.replayable {
            let sends = t.actions.iter().filter(|a| matches!(a, Action::Send { .. })).count();
            assert!(sends <= 1, "{}", ctx());
        }
    }
}
