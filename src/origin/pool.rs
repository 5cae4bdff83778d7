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
//! plain connection put in the pool is watched, as nginx's keepalive cache
//! watches its idle connections for read events: a readiness poll is armed
//! on its socket (an io_uring `POLL_ADD`, queued with the worker's other
//! submissions, so no syscall of its own), and `take` looks at it without
//! waiting. A connection that became readable (stray bytes, or the origin's
//! FIN/RST) is closed, whatever its idle time. The poll is not cancelled
//! when the connection is handed out: it simply completes when that
//! request's response arrives, and the next `put` arms a new one, so a
//! request costs one poll and no cancellation.
//!
//! The same window as nginx's remains: bytes that arrive after the
//! response's last read but before the ring has processed the new poll are
//! not yet seen by a `take` in the same event-loop turn.
//!
//! TLS connections, whose socket the TLS adapter keeps private, are peeked
//! with one non-blocking `recv` at `take` instead, and so are all
//! connections on the epoll fallback driver (whose edge-triggered readiness
//! missed stray bytes in tests). Bytes the TLS adapter already took off the
//! socket with the response are out of reach of both; the adapter says
//! whether it holds any (`Stream::has_buffered_input`: plaintext beyond
//! what was read, part of a record, close_notify), and such a connection
//! is never pooled (`tests/origin_untrusted_tls.rs`).
//! A sweep (every second, per worker) closes expired and dead connections.
//! What still slips through (the origin closing at the very moment of
//! reuse) is covered by the attempt machine's single fresh-connection retry.

use crate::net;
use crate::tls::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

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

/// A readiness poll on a connection's socket.
type Readable = Pin<Box<dyn Future<Output = std::io::Result<()>>>>;

/// Polls `f` once without waiting: true when it has completed.
fn completed(f: &mut Readable) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(f.as_mut().poll(&mut cx), Poll::Ready(_))
}

/// An origin connection that can carry requests.
pub struct OriginConn {
    /// The readiness poll armed when the connection was last put in the
    /// pool (see the module doc). It holds a reference to `*stream`, so it
    /// is declared first: fields drop in order, the poll before the stream.
    watch: Option<Readable>,
    /// Boxed so the watched stream keeps its address while the connection
    /// moves.
    stream: Box<Stream>,
    /// Requests this connection has carried.
    pub uses: u32,
}

impl OriginConn {
    pub fn new(stream: Stream) -> OriginConn {
        OriginConn {
            watch: None,
            stream: Box::new(stream),
            uses: 0,
        }
    }

    pub fn stream(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// Arms a fresh watch for an idle spell; false when the connection is
    /// known readable already (then it must not be pooled).
    fn arm(&mut self) -> bool {
        // The previous watch fired with the response it was armed before
        // (or, rarely, has not been reaped yet): either way a new one
        // checks the socket as it is now.
        self.watch = None;
        if self.stream.has_buffered_input() {
            return false;
        }
        let Stream::Plain(tcp) = &*self.stream else { return true };
        if !RING_POLLS.get() {
            return true;
        }
        // SAFETY: the stream is boxed and never replaced, so this address is
        // valid as long as `self`; the watch is dropped before the box (field
        // order, and `arm` clears it first). monoio's `readable` reads
        // through the reference only when first polled, right here, to
        // submit the poll; later polls look at the operation alone, so the
        // `&mut Stream` handed out by `stream()` afterwards is never aliased
        // by a read.
        let tcp: &'static monoio::net::TcpStream = unsafe { &*(tcp as *const monoio::net::TcpStream) };
        let mut w: Readable = Box::pin(tcp.readable(false));
        if completed(&mut w) {
            return false;
        }
        self.watch = Some(w);
        true
    }

    /// True when the idle connection has something to read (it must not be
    /// reused): its TLS layer holds input, its watch fired, or, unwatched, a
    /// peek finds bytes or EOF.
    fn readable(&mut self) -> bool {
        if self.stream.has_buffered_input() {
            return true;
        }
        match self.watch.as_mut() {
            Some(w) => {
                let fired = completed(w);
                if fired {
                    self.watch = None; // never poll a completed future again
                }
                fired
            }
            None => !net::idle_conn_alive(self.stream.raw_fd()),
        }
    }
}

/// An idle connection.
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
            if now.saturating_duration_since(idle.since) >= po.keepalive {
                continue; // expired: dropping closes it
            }
            let mut conn = idle.conn;
            if !conn.readable() {
                return Some(conn); // its watch stays armed: see the module doc
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
        let mut conn = conn;
        if !conn.arm() {
            return; // bytes after the response's end, or closed: never reused
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
            po.idle
                .retain_mut(|i| now.saturating_duration_since(i.since) < keepalive && !i.conn.readable());
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
