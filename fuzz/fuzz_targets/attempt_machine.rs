//! The attempt state machine, driven by arbitrary plans, events and times.
//!
//! Invariants beyond "no panic":
//! - at most one answer (Deliver, ServePage or Generate) whatever the events,
//!   even ones no driver sends (those end the request with AbortViewer,
//!   which may only cut a delivery short); nothing but Done after Done or
//!   AbortViewer;
//! - attempts never exceed the plan's connection attempts (plus one fresh
//!   retry per step for a failed pooled connection);
//! - Connect targets an origin of the plan, and the secondary only in a group;
//! - only a group fails over, and (unless the primary is skipped as down)
//!   only after a failure of the primary;
//! - with a cluster owner first (`peer`), the owner is tried once, first,
//!   and the origins only after it failed (never after a status from it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringfront::origin::attempt::{Action, AttemptMachine, ConnectError, Event, Failure, Plan, Role, Step};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (cfg, events) = data.split_at(3);
    let grouped = cfg[0] & 1 == 1;
    let attempts = [1 + (cfg[0] >> 1 & 3) as u32, 1 + (cfg[0] >> 3 & 3) as u32];
    let step = |origin: usize, role: Role, a: u32| Step {
        origin,
        role,
        connection_attempts: a,
        connection_timeout: Duration::from_millis(100),
        response_timeout: Duration::from_millis(300),
    };
    let statuses = [500u16, 502, 503, 504];
    let pages = [502u16, 504, 404];
    let peered = cfg[2] & 1 == 1;
    let plan = Plan {
        peer: peered.then(|| step(2, Role::Peer, 1)),
        steps: if grouped {
            [Some(step(0, Role::Primary, attempts[0])), Some(step(1, Role::Secondary, attempts[1]))]
        } else {
            [Some(step(0, Role::Single, attempts[0])), None]
        },
        failover_status: &statuses[..(cfg[1] & 3) as usize + 1],
        method_fails_over: cfg[1] & 4 != 0,
        replayable: cfg[1] & 8 != 0,
        skip_primary: grouped && cfg[1] & 16 != 0,
        error_pages: if cfg[1] & 32 != 0 { &pages } else { &[] },
    };
    let max_attempts = attempts[0] + if grouped { attempts[1] } else { 0 } + u32::from(peered);
    let t0 = Instant::now();
    let mut now = t0;
    let mut m = AttemptMachine::new(plan.clone());
    // Every Connect goes to an origin of the plan, in its role.
    let check = |act: &Action| {
        if let Action::Connect { origin, role, .. } = *act {
            assert!(origin == 0 || (grouped && origin == 1) || (peered && origin == 2));
            assert!(grouped || role == Role::Single || (peered && role == Role::Peer));
            assert_eq!(origin == 2, role == Role::Peer);
        }
    };
    let act = m.start(now);
    check(&act);
    let mut answers = 0;
    let mut done = false;
    for &b in events {
        now += Duration::from_millis((b >> 4) as u64 * 25);
        let ev = match b & 15 {
            0 => Event::Connected { reused: false },
            1 => Event::Connected { reused: true },
            2 => Event::ConnectFailed(ConnectError::Refused),
            3 => Event::ConnectFailed(ConnectError::Timeout),
            4 => Event::ConnectFailed(match (b >> 4) % 3 {
                0 => ConnectError::Unavailable,
                1 => ConnectError::TlsCertificate,
                _ => ConnectError::TlsProtocol,
            }),
            5 => Event::FailedBeforeResponse { reused: false },
            6 => Event::FailedBeforeResponse { reused: true },
            7 => Event::Progress,
            8 => Event::Head { status: 200 },
            9 => Event::Head { status: 503 },
            10 => Event::Head { status: 404 },
            11 => Event::BadHead,
            12 => Event::Timer,
            13 => Event::BodyDone,
            14 => Event::BodyFailed,
            _ => Event::ViewerGone,
        };
        if done {
            assert_eq!(m.on(ev, now), Action::Done, "an action after the end");
            continue;
        }
        let act = m.on(ev, now);
        check(&act);
        match act {
            Action::Deliver { .. } | Action::ServePage { .. } | Action::Generate { .. } => answers += 1,
            Action::AbortViewer | Action::Done => done = true,
            _ => {}
        }
        assert!(answers <= 1, "two answers");
        // (A pooled connection's fresh retry is not an attempt.)
        assert!(m.attempts() <= max_attempts, "{} attempts for a plan of {max_attempts}", m.attempts());
        if peered && m.current().role != Role::Peer {
            let owner_failed = m.failures().iter().any(|f| f.role == Role::Peer);
            assert!(owner_failed || m.attempts() == 0, "the origins before the owner failed");
            assert!(
                m.failures()
                    .iter()
                    .all(|f| f.role != Role::Peer || !matches!(f.failure, Failure::Status(_))),
                "the owner's status taken as a failure"
            );
        }
        if m.failed_over() {
            assert!(grouped, "a single origin failed over");
            if !plan.skip_primary {
                assert!(m.failures().iter().any(|f| f.role == Role::Primary), "failover without a primary failure");
            }
        }
    }
});
