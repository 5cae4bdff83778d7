//! The per-connection request flow, in named phases.
//!
//! A viewer connection ([`conn`]) loops over requests:
//!
//! 1. **read head** — bounded by `max_request_head`, `client_header_timeout`
//!    and, between requests, `client_idle_timeout`;
//! 2. **route** — the first behavior whose path pattern matches; method check;
//! 3. **cache lookup** — GET/HEAD on a caching behavior ([`crate::cache::lookup`],
//!    `conn::look_up`): a fresh hit is answered (`hit`), a stale one
//!    refreshed in the background ([`refresh`]) or revalidated, a miss joins
//!    its key's collapsed flight; in a cluster, the miss that fetches goes
//!    to its key's owner first (`peer`, SPEC §8);
//! 4. **forward** ([`forward`]) — one origin `exchange` (the attempt machine
//!    over the worker's pool, the owner as its first step: connect, write
//!    the head with its edits, hooks
//!    and actions, send the body (`upload`), read the head, forwarding
//!    interim 1xx heads); a success to an unsafe method invalidates what it
//!    changed (`invalidate`, RFC 9111 §4.4); then a storable
//!    response is recorded whole, stored (with its compressed variants,
//!    `compressed`), its waiters released, and answered from the store
//!    (`record`), any other is streamed to the viewer (`deliver`, compressed
//!    on the fly where it may be), or an error page, 502 or 504 is answered
//!    (`answers`);
//! 5. **finish** — keep the connection for the next request, or close.
//!
//! The viewer connection is a [`viewer::Viewer`] (private fields: its
//! buffer, parsed head, stream and reusable output buffers); a background
//! refresh runs the same `exchange` with no viewer at all.
//!
//! A [`Worker`] holds what the phases share on one thread: the config, the
//! upstream pool and reusable buffers. It is used through `Rc` by the tasks of
//! its own thread only, so nothing here needs a lock.
//!
//! **Reload** (SIGHUP): the main thread publishes a new [`Generation`] (config,
//! metrics, fast-fail state) in [`Shared`]. Each thread builds a successor
//! worker the first time one of its tasks asks [`Worker::current`] (at every
//! request start; one relaxed load when nothing changed). Requests in flight
//! finish on the worker they started on; connections, parked sockets, the
//! access log and the cache carry over; the pool too when the origins did
//! not change.

mod answers;
mod compressed;
pub mod conn;
mod deliver;
mod exchange;
pub mod forward;
mod hit;
pub mod hooks;
mod invalidate;
pub mod park;
mod peer;
mod record;
pub mod refresh;
mod revalidated;
mod upload;
pub mod viewer;

/// What happens after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
    /// Close without the signs of a clean end: the response was cut short
    /// (for TLS, no close_notify, so the viewer can tell a close-delimited
    /// body was truncated).
    Abort,
}

use crate::cluster::PeerHealth;
use crate::config::Config;
use crate::origin::health::GroupHealth;
use crate::origin::pool::Pool;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Bumped by each reload; workers compare it with their own.
    pub generation: AtomicU64,
    /// The latest generation (None only in `Shared::default()`, for tests).
    latest: Mutex<Option<Arc<Generation>>>,
}

/// What a config reload replaces, published to all workers at once.
#[derive(Debug)]
pub struct Generation {
    pub number: u64,
    pub cfg: Arc<Config>,
    /// Per-worker counters for `/metrics` (kept across a reload that leaves
    /// the origin and group ids as they were).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `primary_fast_fail` state per origin group (kept likewise).
    pub health: Arc<Vec<GroupHealth>>,
    /// Fast-fail state of the cluster's peers (kept while they stay the
    /// same peers at the same addresses).
    pub peers: Arc<PeerHealth>,
}

impl Generation {
    fn first(cfg: Arc<Config>, workers: usize) -> Generation {
        Generation {
            number: 0,
            metrics: Arc::new(crate::metrics::Metrics::new(&cfg, workers)),
            health: Arc::new(new_health(&cfg)),
            peers: Arc::new(PeerHealth::new(cfg.cluster.as_ref())),
            cfg,
        }
    }
}

fn new_health(cfg: &Config) -> Vec<GroupHealth> {
    let epoch = std::time::Instant::now();
    cfg.groups.iter().map(|_| GroupHealth::new(epoch)).collect()
}

/// Same origins, in the same order, reached the same way (the addresses as
/// resolved at load, the protocol, for https the TLS name and roots), and
/// the same cluster peers at the same addresses: pooled connections stay
/// valid.
fn same_origins(a: &Config, b: &Config) -> bool {
    same_peers(a, b)
        && a.origins.len() == b.origins.len()
        && a.origins.iter().zip(&b.origins).all(|(x, y)| {
            x.id == y.id
                && x.addrs == y.addrs
                && x.protocol == y.protocol
                && match (&x.tls, &y.tls) {
                    (Some(a), Some(b)) => a.same_trust(b),
                    (a, b) => a.is_none() && b.is_none(),
                }
                && x.max_idle_connections == y.max_idle_connections
                && x.keepalive_timeout == y.keepalive_timeout
        })
}

/// The same cluster peers, in the same order, at the same addresses.
fn same_peers(a: &Config, b: &Config) -> bool {
    let (x, y) = (a.peers(), b.peers());
    x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.id == q.id && p.addrs == q.addrs)
}

fn same_ids(a: &Config, b: &Config) -> bool {
    let peer_ids = |c: &Config| c.peers().iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    peer_ids(a) == peer_ids(b)
        && a.origins.len() == b.origins.len()
        && a.origins.iter().zip(&b.origins).all(|(x, y)| x.id == y.id)
        && a.groups.len() == b.groups.len()
        && a.groups.iter().zip(&b.groups).all(|(x, y)| x.id == y.id)
}

/// Same groups over the same primaries and secondaries at the same
/// addresses: what `primary_fast_fail` learned still holds.
fn same_groups(a: &Config, b: &Config) -> bool {
    let reach = |c: &Config, i: usize| c.origins.get(i).map(|o| (o.id.clone(), o.addrs.clone(), o.protocol));
    a.groups.len() == b.groups.len()
        && a.groups.iter().zip(&b.groups).all(|(x, y)| {
            x.id == y.id && reach(a, x.primary) == reach(b, y.primary) && reach(a, x.secondary) == reach(b, y.secondary)
        })
}

impl Shared {
    pub fn new(cfg: Arc<Config>, workers: usize) -> Shared {
        Shared {
            latest: Mutex::new(Some(Arc::new(Generation::first(cfg, workers)))),
            ..Default::default()
        }
    }

    /// The latest generation.
    pub fn latest(&self) -> Option<Arc<Generation>> {
        self.latest.lock().ok().and_then(|g| g.clone())
    }

    /// Publishes `cfg` to every worker (see the module doc). Keeps the
    /// metrics and fast-fail state when the origin and group ids are as they
    /// were. `workers` sizes new metrics.
    pub fn publish(&self, cfg: Arc<Config>, workers: usize) {
        let Ok(mut latest) = self.latest.lock() else { return };
        let Some(old) = latest.clone() else { return };
        let keep_ids = same_ids(&old.cfg, &cfg);
        let g = Generation {
            number: old.number + 1,
            metrics: if keep_ids {
                old.metrics.clone()
            } else {
                Arc::new(crate::metrics::Metrics::new(&cfg, workers))
            },
            health: if same_groups(&old.cfg, &cfg) {
                old.health.clone()
            } else {
                Arc::new(new_health(&cfg))
            },
            peers: if same_peers(&old.cfg, &cfg) {
                old.peers.clone()
            } else {
                Arc::new(PeerHealth::new(cfg.cluster.as_ref()))
            },
            cfg,
        };
        let n = g.number;
        *latest = Some(Arc::new(g));
        self.generation.store(n, Ordering::Release);
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

thread_local! {
    /// This thread's newest worker (set once a reload has made one).
    static CURRENT: RefCell<Option<Rc<Worker>>> = const { RefCell::new(None) };
}

/// Everything one worker thread's tasks share.
pub struct Worker {
    pub id: usize,
    /// The [`Generation`] this worker was built from.
    pub generation: u64,
    pub cfg: Arc<Config>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// `primary_fast_fail` state per origin group.
    pub health: Arc<Vec<GroupHealth>>,
    /// Fast-fail state of the cluster's peers.
    pub peers: Arc<PeerHealth>,
    pub shared: Arc<Shared>,
    /// Code hooks, when the proxy is embedded as a library.
    pub hooks: Option<Arc<dyn hooks::OriginHooks>>,
    /// This thread's side of the access log (kept across reloads, as are
    /// `busy`, `parked` and the buffers).
    pub log: Rc<crate::log::WorkerLog>,
    /// The cache store shared by all workers (None when `cache.capacity` is 0).
    pub cache: Option<Arc<crate::cache::store::Store>>,
    pub pool: Rc<RefCell<Pool>>,
    /// Requests being handled right now on this thread (drain waits for these).
    pub busy: Rc<Cell<usize>>,
    /// Parked idle keep-alive connections.
    pub parked: Rc<park::Parked>,
    bufs: Rc<RefCell<Vec<Vec<u8>>>>,
    /// Precomputed header values.
    pub x_cache_miss: Vec<u8>,
    pub x_cache_error: Vec<u8>,
    pub cache_status_miss: Vec<u8>,
    pub cache_status_bypass: Vec<u8>,
    pub cache_status_method: Vec<u8>,
}

/// What one thread keeps across worker generations.
struct Lane {
    log: Rc<crate::log::WorkerLog>,
    busy: Rc<Cell<usize>>,
    parked: Rc<park::Parked>,
    bufs: Rc<RefCell<Vec<Vec<u8>>>>,
}

/// Idle connections kept per worker to each cluster peer.
const PEER_MAX_IDLE: usize = 64;
/// How long an idle connection to a peer is kept: below a peer's default
/// `client_idle_timeout` (60 s), so the peer rarely closes one first (and
/// when it does, the fresh-connection retry covers it).
const PEER_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// A pool with one slot per hop: the origins, then the cluster's peers
/// ([`Config::peer_hop`]).
fn new_pool(cfg: &Config) -> Pool {
    let origins = cfg
        .origins
        .iter()
        .map(|o| (o.max_idle_connections, o.keepalive_timeout));
    let peers = cfg.peers().iter().map(|_| (PEER_MAX_IDLE, PEER_KEEPALIVE));
    Pool::new(origins.chain(peers))
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
        // The latest generation's config, not necessarily `cfg`: a reload
        // may have been published while this worker's thread was starting,
        // and a worker must never pair a generation number with an older
        // config (it would keep that config until the next reload).
        let (generation, cfg, metrics, health) = match shared.latest() {
            Some(g) => (
                g.number,
                g.cfg.clone(),
                g.metrics.clone(),
                (g.health.clone(), g.peers.clone()),
            ),
            None => (
                0,
                cfg.clone(),
                Default::default(),
                (
                    Arc::new(new_health(&cfg)),
                    Arc::new(PeerHealth::new(cfg.cluster.as_ref())),
                ),
            ),
        };
        let pool = Rc::new(RefCell::new(new_pool(&cfg)));
        let lane = Lane {
            log: Rc::new(log),
            busy: Default::default(),
            parked: Default::default(),
            bufs: Default::default(),
        };
        Worker::build(id, generation, cfg, shared, hooks, cache, metrics, health, pool, lane)
    }

    /// The worker new requests on this thread should use: this one, or the
    /// successor built for a newer [`Generation`] (see the module doc).
    pub fn current(self: &Rc<Self>) -> Rc<Worker> {
        let g = self.shared.generation.load(Ordering::Acquire);
        if g == self.generation {
            return self.clone();
        }
        CURRENT.with(|c| {
            let mut c = c.borrow_mut();
            // Only workers of this proxy (a thread might in principle host another).
            let mine = c.clone().filter(|cur| Arc::ptr_eq(&cur.shared, &self.shared));
            if let Some(cur) = mine.as_ref().filter(|cur| cur.generation == g) {
                return cur.clone();
            }
            let Some(gen) = self.shared.latest() else {
                return self.clone();
            };
            let base = mine.unwrap_or_else(|| self.clone());
            let next = Rc::new(base.successor(&gen));
            *c = Some(next.clone());
            next
        })
    }

    /// A worker for `gen` that carries over this thread's connections'
    /// state: log, parked sockets, busy count, buffers, and the pool when
    /// the origins did not change.
    fn successor(&self, gen: &Generation) -> Worker {
        let pool = if same_origins(&self.cfg, &gen.cfg) {
            self.pool.clone()
        } else {
            // Requests still running on the old config close their origin
            // connections instead of returning them to a pool no one reads.
            self.pool.borrow_mut().retire();
            Rc::new(RefCell::new(new_pool(&gen.cfg)))
        };
        let lane = Lane {
            log: self.log.clone(),
            busy: self.busy.clone(),
            parked: self.parked.clone(),
            bufs: self.bufs.clone(),
        };
        Worker::build(
            self.id,
            gen.number,
            gen.cfg.clone(),
            self.shared.clone(),
            self.hooks.clone(),
            self.cache.clone(),
            gen.metrics.clone(),
            (gen.health.clone(), gen.peers.clone()),
            pool,
            lane,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        id: usize,
        generation: u64,
        cfg: Arc<Config>,
        shared: Arc<Shared>,
        hooks: Option<Arc<dyn hooks::OriginHooks>>,
        cache: Option<Arc<crate::cache::store::Store>>,
        metrics: Arc<crate::metrics::Metrics>,
        (health, peers): (Arc<Vec<GroupHealth>>, Arc<PeerHealth>),
        pool: Rc<RefCell<Pool>>,
        lane: Lane,
    ) -> Worker {
        let via = &cfg.server.via;
        Worker {
            id,
            generation,
            metrics,
            health,
            peers,
            pool,
            log: lane.log,
            busy: lane.busy,
            parked: lane.parked,
            bufs: lane.bufs,
            x_cache_miss: format!("Miss from {via}").into_bytes(),
            x_cache_error: format!("Error from {via}").into_bytes(),
            cache_status_miss: format!("{via}; fwd=miss").into_bytes(),
            cache_status_bypass: format!("{via}; fwd=bypass").into_bytes(),
            cache_status_method: format!("{via}; fwd=method").into_bytes(),
            cfg,
            shared,
            hooks,
            cache,
        }
    }

    /// This worker's counters.
    pub fn metrics(&self) -> &crate::metrics::WorkerMetrics {
        self.metrics.worker(self.id)
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
