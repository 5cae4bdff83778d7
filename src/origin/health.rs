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

use crate::config::Group;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

/// Health of one group's primary.
#[derive(Debug)]
pub struct GroupHealth {
    epoch: Instant,
    /// Consecutive failed connects to the primary.
    failures: AtomicU32,
    /// Milliseconds since `epoch` when the next probe may go to the primary.
    next_probe_ms: AtomicU64,
}

impl GroupHealth {
    pub fn new(epoch: Instant) -> GroupHealth {
        GroupHealth {
            epoch,
            failures: AtomicU32::new(0),
            next_probe_ms: AtomicU64::new(0),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// True while the primary is marked down.
    pub fn is_down(&self, g: &Group) -> bool {
        g.primary_fast_fail && self.failures.load(Ordering::Relaxed) >= g.fast_fail_after
    }

    /// Whether this request should skip the primary. While the primary is
    /// down, exactly one caller per probe interval gets `false` (the probe).
    pub fn skip_primary(&self, g: &Group, now: Instant) -> bool {
        if !self.is_down(g) {
            return false;
        }
        let now_ms = self.ms(now);
        let next = self.next_probe_ms.load(Ordering::Relaxed);
        if now_ms < next {
            return true;
        }
        let after = now_ms + g.fast_fail_probe_interval.as_millis() as u64;
        // Only the caller that moves the probe time forward probes.
        self.next_probe_ms
            .compare_exchange(next, after, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    }

    /// A connect to the primary failed.
    pub fn connect_failed(&self, g: &Group, origin: &str, now: Instant) {
        if !g.primary_fast_fail {
            return;
        }
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n == g.fast_fail_after {
            let after = self.ms(now) + g.fast_fail_probe_interval.as_millis() as u64;
            self.next_probe_ms.store(after, Ordering::Release);
            log::warn!(
                "origin_group {:?}: primary {origin:?} marked down after {n} connect failures in a row; \
                 requests go to the secondary, probing every {:?}",
                g.id,
                g.fast_fail_probe_interval
            );
        }
    }

    /// A connect to the primary succeeded.
    pub fn connect_ok(&self, g: &Group, origin: &str) {
        if self.failures.load(Ordering::Relaxed) == 0 {
            return;
        }
        let was = self.failures.swap(0, Ordering::AcqRel);
        if g.primary_fast_fail && was >= g.fast_fail_after {
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
}
