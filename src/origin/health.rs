//! `primary_fast_fail`: remembering, across requests, that a group's primary
//! cannot be connected.
//!
//! CloudFront's rule (and the default here) is that every request starts at
//! the primary, so during a primary outage every request pays
//! `connection_attempts × connection_timeout` before it reaches the
//! secondary — 30 s with the defaults when the primary is blackholed. With
//! `primary_fast_fail = true`, once the primary has failed
//! `fast_fail_after` connects in a row (counted across requests and workers),
//! requests skip it and go straight to the secondary, except one request per
//! `fast_fail_probe_interval`, which still tries the primary; the first
//! successful connect to the primary ends the outage.
//!
//! The trade-off: during an outage the probe request still pays the full
//! connect penalty, and after the primary recovers, requests keep going to the
//! secondary until the next probe succeeds (up to one probe interval).
//!
//! State is a pair of atomics per group, touched only on a connect failure, on
//! the first success after failures, and once per request while the primary is
//! marked down: nothing on the fast path of a healthy group but one load.
//!
//! The same mechanism marks a cluster peer down (SPEC §8, always on there,
//! with `[cluster]`'s `fast_fail_after` and `fast_fail_probe_interval`):
//! [`Health`] is the state of one upstream under a [`Rule`], and
//! [`GroupHealth`] applies it to a group's primary.

use crate::config::Group;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When an upstream is down, and how often a request still probes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Failed connects in a row that mark it down (at least 1).
    pub after: u32,
    pub probe_interval: Duration,
}

/// Fast-fail state of one upstream (a group's primary, a cluster peer).
#[derive(Debug)]
pub struct Health {
    epoch: Instant,
    /// Consecutive failed connects.
    failures: AtomicU32,
    /// Milliseconds since `epoch` when the next probe may go to it.
    next_probe_ms: AtomicU64,
}

impl Health {
    pub fn new(epoch: Instant) -> Health {
        Health {
            epoch,
            failures: AtomicU32::new(0),
            next_probe_ms: AtomicU64::new(0),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    fn after_interval(&self, r: Rule, now: Instant) -> u64 {
        let interval = u64::try_from(r.probe_interval.as_millis()).unwrap_or(u64::MAX);
        self.ms(now).saturating_add(interval)
    }

    /// True while the upstream is marked down.
    pub fn is_down(&self, r: Rule) -> bool {
        self.failures.load(Ordering::Relaxed) >= r.after.max(1)
    }

    /// Whether this request should skip the upstream. While it is down,
    /// exactly one caller per probe interval gets `false` (the probe).
    pub fn skip(&self, r: Rule, now: Instant) -> bool {
        if !self.is_down(r) {
            return false;
        }
        let next = self.next_probe_ms.load(Ordering::Relaxed);
        if self.ms(now) < next {
            return true;
        }
        // Only the caller that moves the probe time forward probes.
        self.next_probe_ms
            .compare_exchange(next, self.after_interval(r, now), Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    }

    /// A connect failed; true when this failure marked the upstream down.
    pub fn connect_failed(&self, r: Rule, now: Instant) -> bool {
        let n = self.failures.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        if n == r.after.max(1) {
            self.next_probe_ms.store(self.after_interval(r, now), Ordering::Release);
            return true;
        }
        false
    }

    /// A connect succeeded; true when the upstream was down until now.
    pub fn connect_ok(&self, r: Rule) -> bool {
        if self.failures.load(Ordering::Relaxed) == 0 {
            return false;
        }
        self.failures.swap(0, Ordering::AcqRel) >= r.after.max(1)
    }
}

/// Health of one group's primary.
#[derive(Debug)]
pub struct GroupHealth(Health);

fn rule(g: &Group) -> Rule {
    Rule {
        after: g.fast_fail_after,
        probe_interval: g.fast_fail_probe_interval,
    }
}

impl GroupHealth {
    pub fn new(epoch: Instant) -> GroupHealth {
        GroupHealth(Health::new(epoch))
    }

    /// True while the primary is marked down.
    pub fn is_down(&self, g: &Group) -> bool {
        g.primary_fast_fail && self.0.is_down(rule(g))
    }

    /// Whether this request should skip the primary. While the primary is
    /// down, exactly one caller per probe interval gets `false` (the probe).
    pub fn skip_primary(&self, g: &Group, now: Instant) -> bool {
        g.primary_fast_fail && self.0.skip(rule(g), now)
    }

    /// A connect to the primary failed.
    pub fn connect_failed(&self, g: &Group, origin: &str, now: Instant) {
        if g.primary_fast_fail && self.0.connect_failed(rule(g), now) {
            log::warn!(
                "origin_group {:?}: primary {origin:?} marked down after {} connect failures in a row; \
                 requests go to the secondary, probing every {:?}",
                g.id,
                g.fast_fail_after,
                g.fast_fail_probe_interval
            );
        }
    }

    /// A connect to the primary succeeded.
    pub fn connect_ok(&self, g: &Group, origin: &str) {
        if self.0.connect_ok(rule(g)) && g.primary_fast_fail {
            log::info!("origin_group {:?}: primary {origin:?} is back", g.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn group(on: bool) -> Group {
        Group {
            id: "g".into(),
            primary: 0,
            secondary: 1,
            failover_status: vec![503],
            primary_fast_fail: on,
            fast_fail_after: 3,
            fast_fail_probe_interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn marks_down_after_k_failures_and_probes_once_per_interval() {
        let t0 = Instant::now();
        let g = group(true);
        let h = GroupHealth::new(t0);
        for _ in 0..2 {
            h.connect_failed(&g, "p", t0);
        }
        assert!(!h.skip_primary(&g, t0));
        h.connect_failed(&g, "p", t0);
        assert!(h.skip_primary(&g, t0));
        assert!(h.skip_primary(&g, t0 + Duration::from_millis(99)));
        // At the interval exactly one request probes.
        let t1 = t0 + Duration::from_millis(100);
        assert!(!h.skip_primary(&g, t1));
        assert!(h.skip_primary(&g, t1));
        assert!(h.skip_primary(&g, t1 + Duration::from_millis(50)));
        // A success ends the outage.
        h.connect_ok(&g, "p");
        assert!(!h.skip_primary(&g, t1));
        assert!(!h.skip_primary(&g, t1));
    }

    #[test]
    fn off_by_default() {
        let t0 = Instant::now();
        let g = group(false);
        let h = GroupHealth::new(t0);
        for _ in 0..10 {
            h.connect_failed(&g, "p", t0);
        }
        assert!(!h.skip_primary(&g, t0));
    }

    #[test]
    fn interleaved_success_resets_the_count() {
        let t0 = Instant::now();
        let g = group(true);
        let h = GroupHealth::new(t0);
        h.connect_failed(&g, "p", t0);
        h.connect_failed(&g, "p", t0);
        h.connect_ok(&g, "p");
        h.connect_failed(&g, "p", t0);
        h.connect_failed(&g, "p", t0);
        assert!(!h.is_down(&g));
    }

    #[test]
    fn one_failure_marks_a_peer_down_and_one_success_brings_it_back() {
        let t0 = Instant::now();
        let r = Rule {
            after: 1,
            probe_interval: Duration::from_millis(500),
        };
        let h = Health::new(t0);
        assert!(!h.skip(r, t0));
        assert!(h.connect_failed(r, t0), "the first failure marks it down");
        assert!(!h.connect_failed(r, t0), "only once");
        assert!(h.skip(r, t0 + Duration::from_millis(499)));
        let probe = t0 + Duration::from_millis(500);
        assert!(!h.skip(r, probe), "the probe");
        assert!(h.skip(r, probe));
        assert!(h.connect_ok(r));
        assert!(!h.connect_ok(r));
        assert!(!h.skip(r, probe));
    }
}
