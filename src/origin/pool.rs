//! The per-worker upstream connection pool.
//!
//! Each worker owns one pool (no locks: thread-per-core), holding idle
//! keep-alive connections per origin in a LIFO stack: the most recently used
//! connection is the one most likely still open on the origin's side and warm
//! in its caches, and the oldest ones age out at the bottom. Bounds per origin:
//! `max_idle_connections` (beyond it the oldest is closed) and
//! `keepalive_timeout` (idle longer is closed).
//!
//! A connection the origin closed while idle is found in two ways: a sweep
//! (every second, per worker) closes expired connections and peeks the rest
//! without blocking, and `take` peeks connections idle for more than
//! [`PEEK_AFTER`]. Anything that still slips through (the origin closing at
//! the very moment of reuse) is covered by the attempt machine's single
//! fresh-connection retry, so the hot path pays no syscall for a connection
//! reused within milliseconds.

use crate::net;
use crate::tls::Stream;
use std::time::{Duration, Instant};

/// Idle time after which `take` checks a connection before reusing it.
pub const PEEK_AFTER: Duration = Duration::from_millis(1000);

/// An origin connection that can carry requests.
pub struct OriginConn {
    pub stream: Stream,
    /// Requests this connection has carried.
    pub uses: u32,
}

struct Idle {
    conn: OriginConn,
    since: Instant,
}

struct PerOrigin {
    idle: Vec<Idle>,
    max_idle: usize,
    keepalive: Duration,
}

/// Idle connections of one worker, per origin.
pub struct Pool {
    origins: Vec<PerOrigin>,
    /// Replaced by a config reload (see [`Pool::retire`]).
    retired: bool,
}

impl Pool {
    /// `limits[i]` = (max idle connections, keepalive timeout) of origin `i`.
    pub fn new(limits: impl IntoIterator<Item = (usize, Duration)>) -> Pool {
        Pool {
            origins: limits
                .into_iter()
                .map(|(max_idle, keepalive)| PerOrigin {
                    idle: Vec::with_capacity(max_idle.min(64)),
                    max_idle,
                    keepalive,
                })
                .collect(),
            retired: false,
        }
    }

    /// The most recently returned live connection to `origin`, if any.
    pub fn take(&mut self, origin: usize, now: Instant) -> Option<OriginConn> {
        let po = self.origins.get_mut(origin)?;
        while let Some(idle) = po.idle.pop() {
            let age = now.saturating_duration_since(idle.since);
            if age >= po.keepalive {
                continue; // expired: dropping closes it
            }
            if age >= PEEK_AFTER && !net::idle_conn_alive(idle.conn.stream.raw_fd()) {
                continue;
            }
            return Some(idle.conn);
        }
        None
    }

    /// Returns a connection after a complete response that allows reuse.
    pub fn put(&mut self, origin: usize, conn: OriginConn, now: Instant) {
        if self.retired {
            return; // a reload replaced this pool: close instead
        }
        let Some(po) = self.origins.get_mut(origin) else { return };
        if po.max_idle == 0 || po.keepalive.is_zero() {
            return;
        }
        if po.idle.len() >= po.max_idle {
            po.idle.remove(0); // the oldest
        }
        po.idle.push(Idle { conn, since: now });
    }

    /// Closes expired and dead idle connections.
    pub fn sweep(&mut self, now: Instant) {
        for po in &mut self.origins {
            let keepalive = po.keepalive;
            po.idle.retain(|i| {
                now.saturating_duration_since(i.since) < keepalive && net::idle_conn_alive(i.conn.stream.raw_fd())
            });
        }
    }

    /// Idle connections held, all origins.
    pub fn idle_count(&self) -> usize {
        self.origins.iter().map(|p| p.idle.len()).sum()
    }

    /// Idle connections held for one origin.
    pub fn idle_for(&self, origin: usize) -> usize {
        self.origins.get(origin).map_or(0, |p| p.idle.len())
    }

    /// Closes everything (shutdown).
    pub fn clear(&mut self) {
        for po in &mut self.origins {
            po.idle.clear();
        }
    }

    /// Closes every idle connection and keeps no more: a config reload
    /// replaced this pool, and requests still running on the old config
    /// close their connections instead of returning them.
    pub fn retire(&mut self) {
        self.clear();
        self.retired = true;
    }
}
