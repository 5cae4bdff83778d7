//! Metrics for the admin listener's `GET /metrics` (SPEC §6).
//!
//! Each worker counts into its own block, padded to its own cache lines,
//! with plain relaxed loads and stores: one writer per counter, so no
//! read-modify-write, no lock prefix and no line bouncing between cores on
//! the request path. A scrape (on the admin thread) reads every block with
//! relaxed loads and sums them; a sum may be a few requests behind, never
//! torn or double-counted.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `ringfront_requests_total` | counter | `result` (Hit, RefreshHit, Miss, Error) | requests answered, by the access log's result |
//! | `ringfront_request_duration_seconds` | histogram | | from a complete request head to the end of the response (requests refused before a complete head are counted in `ringfront_requests_total` only) |
//! | `ringfront_origin_attempts_total` | counter | `origin`, `outcome` | attempts by how they ended: `response`, or a Proxy-Status error type (`connection_refused`, `connection_timeout`, `destination_unavailable`, `http_response_timeout`, `http_response_incomplete`, `http_protocol_error`, `tls_certificate_error`, `tls_protocol_error`, `http_response_status` for a failover status) |
//! | `ringfront_peer_fetches_total` | counter | `peer`, `outcome` | requests sent to the key's owner in a cluster (SPEC §8), by how they ended: `response` (whatever its status), or the error type of a failure (then the origin group was next) |
//! | `ringfront_origin_duration_seconds` | histogram | | from the first connect to the end of the origin's part of a request (a peer's included) |
//! | `ringfront_failovers_total` | counter | `group`, `reason` (`connect`, `timeout`, `status`, `response`) | requests that moved from the primary to the secondary |
//! | `ringfront_cache_objects` | gauge | | objects in the cache |
//! | `ringfront_cache_bytes` | gauge | | bytes the cache accounts for |
//! | `ringfront_cache_evictions_total` | counter | | objects evicted to make room |
//! | `ringfront_connections_open` | gauge | | viewer connections open |
//! | `ringfront_connections_parked` | gauge | | of those, parked idle in keep-alive |
//! | `ringfront_pool_idle_connections` | gauge | | idle origin connections in the workers' pools |

use crate::origin::attempt::{FailedAttempt, Failure, Role};
use crate::outcome::Class;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The failure kinds, in the order of their `outcome` series after
/// `response` (see [`outcome_index`]); each series is named by the kind's
/// Proxy-Status error type.
const FAILURES: [Failure; 9] = [
    Failure::ConnectionRefused,
    Failure::ConnectionTimeout,
    Failure::DestinationUnavailable,
    Failure::ResponseTimeout,
    Failure::ResponseIncomplete,
    Failure::ProtocolError,
    Failure::Status(0),
    Failure::TlsCertificateError,
    Failure::TlsProtocolError,
];

/// Attempt outcomes: `response`, then one per [`FAILURES`] kind.
const OUTCOMES: usize = FAILURES.len() + 1;

fn outcome_name(i: usize) -> &'static str {
    match i.checked_sub(1) {
        None => "response",
        Some(k) => FAILURES[k].error_type(),
    }
}

const REASONS: [&str; 4] = ["connect", "timeout", "status", "response"];

/// Upper bounds of the latency buckets, in microseconds (+Inf is implied).
const BUCKETS_US: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// A counter with one writer (its worker).
#[derive(Debug, Default)]
struct Counter(AtomicU64);

impl Counter {
    #[inline]
    fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [Counter; BUCKETS_US.len() + 1],
    sum_us: Counter,
}

impl Histogram {
    #[inline]
    fn observe(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let i = BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(BUCKETS_US.len());
        self.buckets[i].add(1);
        self.sum_us.add(us);
    }
}

/// One worker's counters.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerMetrics {
    requests: [Counter; Class::ALL.len()],
    duration: Histogram,
    origin_duration: Histogram,
    /// Per hop (the origins in config order, then the cluster's peers:
    /// `Config::peer_hop`), per outcome.
    attempts: Vec<[Counter; OUTCOMES]>,
    /// Per group (config order), per reason.
    failovers: Vec<[Counter; REASONS.len()]>,
    /// Idle connections in this worker's pool (set by the worker).
    pool_idle: AtomicU64,
}

impl WorkerMetrics {
    fn new(hops: usize, groups: usize) -> WorkerMetrics {
        WorkerMetrics {
            attempts: (0..hops).map(|_| Default::default()).collect(),
            failovers: (0..groups).map(|_| Default::default()).collect(),
            ..Default::default()
        }
    }

    /// A request answered, by its result class; `total` runs from
    /// its complete head (None when it never had one: 400, 408, 431).
    #[inline]
    pub fn request(&self, class: Class, total: Option<Duration>) {
        self.requests[class as usize].add(1);
        if let Some(t) = total {
            self.duration.observe(t);
        }
    }

    /// The origin side of a forwarded request: every failed attempt, the
    /// attempt that answered (`answered_by`), a failover if the request moved
    /// from a group's primary to its secondary, and the time spent.
    pub fn forwarded(
        &self,
        failures: &[FailedAttempt],
        answered_by: Option<(usize, Role)>,
        group: Option<usize>,
        origin_time: Option<Duration>,
    ) {
        for f in failures {
            if let Some(a) = self.attempts.get(f.origin) {
                a[outcome_index(f.failure)].add(1);
            }
        }
        if let Some((o, _)) = answered_by {
            if let Some(a) = self.attempts.get(o) {
                a[0].add(1);
            }
        }
        // A failover: the primary failed and the request went on.
        let moved = failures.iter().rev().find(|f| f.role == Role::Primary);
        let went_on = answered_by.is_some_and(|(_, r)| r == Role::Secondary)
            || failures.iter().any(|f| f.role == Role::Secondary);
        if let (Some(f), Some(g), true) = (moved, group, went_on) {
            if let Some(c) = self.failovers.get(g) {
                c[reason_index(f.failure)].add(1);
            }
        }
        if let Some(t) = origin_time {
            self.origin_duration.observe(t);
        }
    }

    pub fn set_pool_idle(&self, n: usize) {
        self.pool_idle.store(n as u64, Ordering::Relaxed);
    }
}

fn outcome_index(f: Failure) -> usize {
    match f {
        Failure::ConnectionRefused => 1,
        Failure::ConnectionTimeout => 2,
        Failure::DestinationUnavailable => 3,
        Failure::ResponseTimeout => 4,
        Failure::ResponseIncomplete => 5,
        Failure::ProtocolError => 6,
        Failure::Status(_) => 7,
        Failure::TlsCertificateError => 8,
        Failure::TlsProtocolError => 9,
    }
}

fn reason_index(f: Failure) -> usize {
    match f {
        Failure::ConnectionRefused
        | Failure::DestinationUnavailable
        | Failure::TlsCertificateError
        | Failure::TlsProtocolError => 0,
        Failure::ConnectionTimeout | Failure::ResponseTimeout => 1,
        Failure::Status(_) => 2,
        Failure::ResponseIncomplete | Failure::ProtocolError => 3,
    }
}

/// All workers' counters, plus the names the labels need.
#[derive(Debug, Default)]
pub struct Metrics {
    workers: Vec<WorkerMetrics>,
    origins: Vec<String>,
    /// The cluster's peers, counted after the origins.
    peers: Vec<String>,
    groups: Vec<String>,
}

/// Values read elsewhere at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    pub cache: Option<crate::cache::store::Stats>,
    pub open_connections: u64,
    pub parked_connections: u64,
}

impl Metrics {
    pub fn new(cfg: &crate::config::Config, workers: usize) -> Metrics {
        let hops = cfg.origins.len() + cfg.peers().len();
        Metrics {
            workers: (0..workers)
                .map(|_| WorkerMetrics::new(hops, cfg.groups.len()))
                .collect(),
            origins: cfg.origins.iter().map(|o| o.id.clone()).collect(),
            peers: cfg.peers().iter().map(|p| p.id.clone()).collect(),
            groups: cfg.groups.iter().map(|g| g.id.clone()).collect(),
        }
    }

    /// Worker `i`'s block (a spare block when out of range, e.g. in tests).
    pub fn worker(&self, i: usize) -> &WorkerMetrics {
        static SPARE: std::sync::OnceLock<WorkerMetrics> = std::sync::OnceLock::new();
        self.workers
            .get(i)
            .unwrap_or_else(|| SPARE.get_or_init(WorkerMetrics::default))
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self, g: &Gauges) -> String {
        let mut o = String::with_capacity(8192);
        let sum = |f: &dyn Fn(&WorkerMetrics) -> u64| self.workers.iter().map(f).sum::<u64>();

        help(
            &mut o,
            "ringfront_requests_total",
            "counter",
            "Requests answered, by result.",
        );
        for (i, r) in Class::ALL.iter().map(|c| c.as_str()).enumerate() {
            let _ = writeln!(
                o,
                "ringfront_requests_total{{result=\"{r}\"}} {}",
                sum(&|w| w.requests[i].get())
            );
        }
        self.histogram(
            &mut o,
            "ringfront_request_duration_seconds",
            "From a complete request head to the end of the response.",
            |w| &w.duration,
        );
        self.attempts(&mut o);
        self.histogram(
            &mut o,
            "ringfront_origin_duration_seconds",
            "From the first connect to the end of the origin's part of a request.",
            |w| &w.origin_duration,
        );
        self.two_labels(
            &mut o,
            "ringfront_failovers_total",
            "Requests that moved from a group's primary to its secondary, by reason.",
            ("group", &self.groups),
            ("reason", &REASONS),
            |w, i, k| w.failovers.get(i).map_or(0, |a| a[k].get()),
        );
        let c = g.cache.unwrap_or_default();
        gauge(
            &mut o,
            "ringfront_cache_objects",
            "gauge",
            "Objects in the cache.",
            c.objects,
        );
        gauge(
            &mut o,
            "ringfront_cache_bytes",
            "gauge",
            "Bytes the cache accounts for.",
            c.bytes,
        );
        gauge(
            &mut o,
            "ringfront_cache_evictions_total",
            "counter",
            "Objects evicted to make room.",
            c.evictions,
        );
        gauge(
            &mut o,
            "ringfront_connections_open",
            "gauge",
            "Viewer connections open.",
            g.open_connections,
        );
        gauge(
            &mut o,
            "ringfront_connections_parked",
            "gauge",
            "Viewer connections parked idle in keep-alive.",
            g.parked_connections,
        );
        gauge(
            &mut o,
            "ringfront_pool_idle_connections",
            "gauge",
            "Idle origin connections in the workers' pools.",
            sum(&|w| w.pool_idle.load(Ordering::Relaxed)),
        );
        o
    }

    /// Attempts by origin, and fetches from a cluster's owners by peer
    /// (the hops after the origins), by outcome.
    fn attempts(&self, o: &mut String) {
        let outcomes: Vec<&str> = (0..OUTCOMES).map(outcome_name).collect();
        self.two_labels(
            o,
            "ringfront_origin_attempts_total",
            "Origin attempts by origin and how they ended.",
            ("origin", &self.origins),
            ("outcome", &outcomes),
            |w, i, k| w.attempts.get(i).map_or(0, |a| a[k].get()),
        );
        if self.peers.is_empty() {
            return;
        }
        let base = self.origins.len();
        self.two_labels(
            o,
            "ringfront_peer_fetches_total",
            "Requests sent to the key's owner in the cluster, by peer and how they ended.",
            ("peer", &self.peers),
            ("outcome", &outcomes),
            |w, i, k| w.attempts.get(base + i).map_or(0, |a| a[k].get()),
        );
    }

    /// A counter family with two labels, one series per pair of values,
    /// summed over the workers.
    fn two_labels<A: AsRef<str>>(
        &self,
        o: &mut String,
        name: &str,
        text: &str,
        first: (&str, &[A]),
        second: (&str, &[&str]),
        get: impl Fn(&WorkerMetrics, usize, usize) -> u64,
    ) {
        help(o, name, "counter", text);
        for (i, a) in first.1.iter().enumerate() {
            for (k, b) in second.1.iter().enumerate() {
                let v: u64 = self.workers.iter().map(|w| get(w, i, k)).sum();
                let _ = writeln!(
                    o,
                    "{name}{{{}=\"{}\",{}=\"{b}\"}} {v}",
                    first.0,
                    escape(a.as_ref()),
                    second.0
                );
            }
        }
    }

    fn histogram(&self, o: &mut String, name: &str, text: &str, h: impl Fn(&WorkerMetrics) -> &Histogram) {
        help(o, name, "histogram", text);
        let mut cumulative = 0u64;
        for (i, b) in BUCKETS_US.iter().enumerate() {
            cumulative += self.workers.iter().map(|w| h(w).buckets[i].get()).sum::<u64>();
            let _ = writeln!(o, "{name}_bucket{{le=\"{}\"}} {cumulative}", *b as f64 / 1e6);
        }
        cumulative += self
            .workers
            .iter()
            .map(|w| h(w).buckets[BUCKETS_US.len()].get())
            .sum::<u64>();
        let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum_us: u64 = self.workers.iter().map(|w| h(w).sum_us.get()).sum();
        let _ = writeln!(o, "{name}_sum {}", sum_us as f64 / 1e6);
        let _ = writeln!(o, "{name}_count {cumulative}");
    }
}

fn help(o: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(o, "# HELP {name} {text}\n# TYPE {name} {kind}");
}

fn gauge(o: &mut String, name: &str, kind: &str, text: &str, v: u64) {
    help(o, name, kind, text);
    let _ = writeln!(o, "{name} {v}");
}

/// Label values: backslash, double quote and newline escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fa(origin: usize, role: Role, failure: Failure) -> FailedAttempt {
        FailedAttempt { origin, role, failure }
    }

    #[test]
    fn outcome_series_follow_the_failure_table() {
        for (i, f) in FAILURES.iter().enumerate() {
            assert_eq!(outcome_index(*f), i + 1, "{f:?}");
            assert_eq!(outcome_name(i + 1), f.error_type());
        }
        assert_eq!(outcome_name(0), "response");
    }

    #[test]
    fn counts_sum_across_workers_and_histograms_are_cumulative() {
        let m = Metrics {
            workers: vec![WorkerMetrics::new(3, 1), WorkerMetrics::new(3, 1)],
            origins: vec!["p".into(), "s\"x".into()],
            peers: vec!["edge-b".into()],
            groups: vec!["g".into()],
        };
        m.worker(0).request(Class::Hit, Some(Duration::from_micros(300)));
        m.worker(1).request(Class::Hit, Some(Duration::from_millis(3)));
        m.worker(1).request(Class::Error, Some(Duration::from_secs(20)));
        m.worker(1).request(Class::Error, None);
        m.worker(0).forwarded(
            &[fa(0, Role::Primary, Failure::Status(503))],
            Some((1, Role::Secondary)),
            Some(0),
            Some(Duration::from_millis(2)),
        );
        m.worker(1).forwarded(
            &[
                fa(0, Role::Primary, Failure::ConnectionRefused),
                fa(0, Role::Primary, Failure::ConnectionRefused),
            ],
            Some((1, Role::Secondary)),
            Some(0),
            None,
        );
        // A single-origin request that answered: no failover.
        m.worker(1).forwarded(&[], Some((0, Role::Single)), None, None);
        // The owner answered one; another went on to the group's primary.
        m.worker(0).forwarded(&[], Some((2, Role::Peer)), Some(0), None);
        m.worker(1).forwarded(
            &[fa(2, Role::Peer, Failure::ConnectionTimeout)],
            Some((0, Role::Primary)),
            Some(0),
            None,
        );
        let text = m.render(&Gauges::default());
        for line in [
            "ringfront_requests_total{result=\"Hit\"} 2",
            "ringfront_requests_total{result=\"Error\"} 2",
            "ringfront_request_duration_seconds_bucket{le=\"0.0005\"} 1",
            "ringfront_request_duration_seconds_bucket{le=\"0.005\"} 2",
            "ringfront_request_duration_seconds_bucket{le=\"10\"} 2",
            "ringfront_request_duration_seconds_bucket{le=\"+Inf\"} 3",
            "ringfront_request_duration_seconds_count 3",
            "ringfront_origin_attempts_total{origin=\"p\",outcome=\"http_response_status\"} 1",
            "ringfront_origin_attempts_total{origin=\"p\",outcome=\"connection_refused\"} 2",
            "ringfront_origin_attempts_total{origin=\"s\\\"x\",outcome=\"response\"} 2",
            "ringfront_failovers_total{group=\"g\",reason=\"status\"} 1",
            "ringfront_failovers_total{group=\"g\",reason=\"connect\"} 1",
            "ringfront_failovers_total{group=\"g\",reason=\"timeout\"} 0",
            "ringfront_origin_duration_seconds_count 1",
            "ringfront_peer_fetches_total{peer=\"edge-b\",outcome=\"response\"} 1",
            "ringfront_peer_fetches_total{peer=\"edge-b\",outcome=\"connection_timeout\"} 1",
            "ringfront_peer_fetches_total{peer=\"edge-b\",outcome=\"connection_refused\"} 0",
            "ringfront_origin_attempts_total{origin=\"p\",outcome=\"response\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
