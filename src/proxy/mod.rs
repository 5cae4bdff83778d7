//! The per-connection request flow, in named phases.
//!
//! A viewer connection ([`conn`]) loops over requests:
//!
//! 1. **read head** — bounded by `max_request_head`, `client_header_timeout`
//!    and, between requests, `client_idle_timeout`;
//! 2. **route** — the first behavior whose path pattern matches; method check;
//! 3. **cache lookup** — GET/HEAD on a caching behavior (the cache issue adds
//!    the store; today every request continues as a miss);
//! 4. **forward** ([`forward`]) — the attempt machine over the worker's pool:
//!    connect, send, read the head, deliver or answer;
//! 5. **finish** — keep the connection for the next request, or close.
//!
//! A [`Worker`] holds what the phases share on one thread: the config, the
//! upstream pool and reusable buffers. It is used through `Rc` by the tasks of
//! its own thread only, so nothing here needs a lock.

pub mod conn;
pub mod forward;
pub mod hooks;
pub mod park;
pub mod refresh;

use crate::config::Config;
use crate::origin::pool::Pool;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Process-wide state shared by all workers (touched per connection, or on
/// origin connect failures; never on a healthy request's path).
#[derive(Debug, Default)]
pub struct Shared {
    /// Viewer connections open across workers (for `max_connections`).
    pub open_connections: AtomicUsize,
    /// Of those, the ones parked idle in keep-alive (see [`park`]).
    pub parked_connections: AtomicUsize,
    /// Set on SIGTERM/SIGINT: stop accepting, finish in-flight requests.
    pub stopping: AtomicBool,
    /// `primary_fast_fail` state, per origin group (config order).
    pub health: Vec<crate::origin::health::GroupHealth>,
    /// Per-worker counters for `/metrics`.
    pub metrics: crate::metrics::Metrics,
}

impl Shared {
    pub fn new(cfg: &Config, workers: usize) -> Shared {
        let epoch = std::time::Instant::now();
        Shared {
            open_connections: AtomicUsize::new(0),
            parked_connections: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            health: cfg
                .groups
                .iter()
                .map(|_| crate::origin::health::GroupHealth::new(epoch))
                .collect(),
            metrics: crate::metrics::Metrics::new(cfg, workers),
        }
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// Counts one viewer connection in [`Shared::open_connections`] while it lives.
pub struct ConnGuard {
    shared: Arc<Shared>,
}

impl ConnGuard {
    pub fn new(shared: &Arc<Shared>) -> ConnGuard {
        shared.open_connections.fetch_add(1, Ordering::Relaxed);
        ConnGuard { shared: shared.clone() }
    }

    /// Keeps the connection counted without holding a guard (a parked
    /// connection); [`ConnGuard::carried`] takes the count up again.
    pub fn carry(self) {
        std::mem::forget(self);
    }

    /// The guard of a connection whose count was [`carry`](Self::carry)-ed.
    pub fn carried(shared: &Arc<Shared>) -> ConnGuard {
        ConnGuard { shared: shared.clone() }
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.open_connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything one worker thread's tasks share.
pub struct Worker {
    pub id: usize,
    pub cfg: Arc<Config>,
    pub shared: Arc<Shared>,
    /// Code hooks, when the proxy is embedded as a library.
    pub hooks: Option<Arc<dyn hooks::OriginHooks>>,
    /// This worker's side of the access log.
    pub log: crate::log::WorkerLog,
    /// The cache store shared by all workers (None when `cache.capacity` is 0).
    pub cache: Option<Arc<crate::cache::store::Store>>,
    pub pool: RefCell<Pool>,
    /// Requests being handled right now (drain waits for these).
    pub busy: std::cell::Cell<usize>,
    /// Parked idle keep-alive connections.
    pub parked: park::Parked,
    bufs: RefCell<Vec<Vec<u8>>>,
    /// Precomputed header values.
    pub x_cache_miss: Vec<u8>,
    pub x_cache_error: Vec<u8>,
    pub cache_status_miss: Vec<u8>,
    pub cache_status_stored: Vec<u8>,
    pub cache_status_bypass: Vec<u8>,
    pub cache_status_method: Vec<u8>,
}

/// Size of the buffers used to stream bodies.
pub const IO_BUF: usize = 64 * 1024;

impl Worker {
    pub fn new(
        id: usize,
        cfg: Arc<Config>,
        shared: Arc<Shared>,
        hooks: Option<Arc<dyn hooks::OriginHooks>>,
        log: crate::log::WorkerLog,
        cache: Option<Arc<crate::cache::store::Store>>,
    ) -> Worker {
        let pool = Pool::new(
            cfg.origins
                .iter()
                .map(|o| (o.max_idle_connections, o.keepalive_timeout)),
        );
        let via = &cfg.server.via;
        Worker {
            id,
            x_cache_miss: format!("Miss from {via}").into_bytes(),
            x_cache_error: format!("Error from {via}").into_bytes(),
            cache_status_miss: format!("{via}; fwd=miss").into_bytes(),
            cache_status_stored: format!("{via}; fwd=miss; stored").into_bytes(),
            cache_status_bypass: format!("{via}; fwd=bypass").into_bytes(),
            cache_status_method: format!("{via}; fwd=method").into_bytes(),
            cfg,
            shared,
            hooks,
            log,
            cache,
            pool: RefCell::new(pool),
            busy: std::cell::Cell::new(0),
            parked: Default::default(),
            bufs: RefCell::new(Vec::new()),
        }
    }

    /// This worker's counters.
    pub fn metrics(&self) -> &crate::metrics::WorkerMetrics {
        self.shared.metrics.worker(self.id)
    }

    /// A cleared I/O buffer from the worker's free list.
    pub fn take_buf(&self) -> Vec<u8> {
        let mut b = self
            .bufs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(IO_BUF));
        b.clear();
        b
    }

    /// Returns a buffer to the free list (bounded, so bursts do not pin memory).
    pub fn give_buf(&self, b: Vec<u8>) {
        let mut l = self.bufs.borrow_mut();
        if l.len() < 64 && b.capacity() >= IO_BUF && b.capacity() <= 4 * IO_BUF {
            l.push(b);
        }
    }
}
