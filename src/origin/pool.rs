//! The per-worker upstream connection pool.
//!
//! Each worker owns one pool (no locks: thread-per-core), holding idle
//! keep-alive connections per origin in a LIFO stack: the most recently used
//! connection is the one most likely still open on the origin's side and warm
//! in its caches, and the oldest ones age out at the bottom. Bounds per origin:
//! `max_idle_connections` (beyond it the oldest is closed) and
//! `keepalive_timeout` (idle longer is closed).
//!
//! An idle connection must carry nothing (SPEC §3.5): bytes that arrive
//! after a response's end (a body on a HEAD, 204 or 304 answer, more bytes
//! than Content-Length, sent in a later TCP segment) would otherwise be read
//! as the *next* request's response, and cached under its key. So every
//! plain connection put in the pool is watched: a readiness poll is armed on
//! its socket (an io_uring `POLL_ADD`, queued with the worker's other
//! submissions, so no syscall of its own), and `take` looks at it without
//! waiting. A connection that became readable (stray bytes, or the origin's
//! FIN/RST) is closed, whatever its idle time; otherwise the poll is
//! cancelled and the connection handed out. TLS connections, whose socket
//! the TLS adapter keeps private, are peeked with one non-blocking `recv`
//! instead, and so are all connections on the epoll fallback driver (whose
//! edge-triggered readiness missed stray bytes in tests). A sweep (every second, per worker) closes expired and dead
//! connections. What still slips through (the origin closing at the very
//! moment of reuse) is covered by the attempt machine's single
//! fresh-connection retry.

use crate::net;
use crate::tls::Stream;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// An origin connection that can carry requests.
pub struct OriginConn {
    pub stream: Stream,
    /// Requests this connection has carried.
    pub uses: u32,
}

thread_local! {
    /// This thread's runtime is on io_uring: idle connections are watched
    /// by ring polls. On the epoll fallback they are peeked at `take`.
    static RING_POLLS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Says whether the calling thread's runtime runs on io_uring (called by
/// the runtime as a worker starts).
pub fn set_ring_polls(on: bool) {
    RING_POLLS.set(on);
}

/// A readiness poll on an idle connection's socket.
type Readable = Pin<Box<dyn Future<Output = std::io::Result<()>>>>;

/// An idle connection and the poll that watches it (see the module doc).
struct Idle {
    /// Borrows the stream behind `conn`: always dropped before it.
    watch: Option<Readable>,
    /// From `Box::into_raw`, so the stream stays put while it is watched.
    conn: NonNull<OriginConn>,
    since: Instant,
    /// The watch completed: the connection must not be reused.
    dead: bool,
}

/// Polls `f` once without waiting: true when it has completed.
fn completed(f: &mut Readable) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(f.as_mut().poll(&mut cx), Poll::Ready(_))
}

impl Idle {
    /// Starts watching `conn`; `None` when it is readable already (bytes
    /// after the response, or closed), and then it is closed.
    fn watch(conn: OriginConn, since: Instant) -> Option<Idle> {
        let conn = NonNull::from(Box::leak(Box::new(conn)));
        // SAFETY: `conn` points to a live heap allocation that does not move
        // and is freed only in `into_conn` or `drop`, each of which drops
        // `watch` (the only holder of this reference) first.
        let stream: &'static Stream = unsafe { &(*conn.as_ptr()).stream };
        let watch: Option<Readable> = match stream {
            Stream::Plain(tcp) if RING_POLLS.get() => Some(Box::pin(tcp.readable(false))),
            _ => None,
        };
        let mut idle = Idle {
            watch,
            conn,
            since,
            dead: false,
        };
        if idle.readable() {
            return None;
        }
        Some(idle)
    }

    /// True when the connection has something to read (it must not be reused).
    fn readable(&mut self) -> bool {
        if self.dead {
            return true;
        }
        self.dead = match self.watch.as_mut() {
            Some(w) => completed(w),
            // SAFETY: see `watch`; the pointer is live until `into_conn`/drop.
            None => !net::idle_conn_alive(unsafe { self.conn.as_ref() }.stream.raw_fd()),
        };
        if self.dead {
            // A completed future must not be polled again.
            self.watch = None;
        }
        self.dead
    }

    /// The connection, when it may carry a request; the watch is cancelled.
    fn into_conn(mut self) -> Option<OriginConn> {
        if self.readable() {
            return None; // dropping self closes it
        }
        self.watch = None;
        let conn = self.conn;
        std::mem::forget(self);
        // SAFETY: the allocation came from `Box::leak` in `watch`, its only
        // borrower (the watch) is gone, and `self` was forgotten, so this is
        // the one owner.
        Some(*unsafe { Box::from_raw(conn.as_ptr()) })
    }
}

impl Drop for Idle {
    fn drop(&mut self) {
        self.watch = None;
        // SAFETY: as in `into_conn`: the watch is gone, and drop runs once.
        drop(unsafe { Box::from_raw(self.conn.as_ptr()) });
    }
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
            if now.saturating_duration_since(idle.since) >= po.keepalive {
                continue; // expired: dropping closes it
            }
            if let Some(conn) = idle.into_conn() {
                return Some(conn);
            }
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
        let Some(idle) = Idle::watch(conn, now) else {
            return; // bytes after the response's end, or closed: never reused
        };
        if po.idle.len() >= po.max_idle {
            po.idle.remove(0); // the oldest
        }
        po.idle.push(idle);
    }

    /// Closes expired and dead idle connections.
    pub fn sweep(&mut self, now: Instant) {
        for po in &mut self.origins {
            let keepalive = po.keepalive;
            po.idle
                .retain_mut(|i| now.saturating_duration_since(i.since) < keepalive && !i.readable());
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
