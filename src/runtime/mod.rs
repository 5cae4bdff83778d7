//! Workers: one thread per core, each its own monoio runtime and listeners.
//!
//! Thread-per-core means nothing on the request path is shared between
//! threads: each worker owns its SO_REUSEPORT listener sockets (the kernel
//! spreads connections across them), its upstream pool and its buffers.
//! Workers are pinned to the CPUs the process may run on, in order (the
//! process's cpuset is respected, so `taskset -c 1 ringfront ...` gives one
//! worker on core 1).
//!
//! Each worker picks its I/O driver: io_uring when the kernel has it (probed,
//! with the reason logged when it does not), or epoll.

use crate::config::{Config, IoDriver};
use crate::log::{AccessLog, WorkerLog};
use crate::net::{self, AcceptBackoff};
use crate::proxy::hooks::OriginHooks;
use crate::proxy::{conn, ConnGuard, Shared, Worker};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The CPUs this process may run on (its affinity mask), ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

fn pin_to(cpu: usize) -> std::io::Result<()> {
    // SAFETY: as above; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The driver a worker will use, and why.
#[derive(Debug, Clone)]
pub enum Driver {
    IoUring,
    Epoll(String),
}

/// Decides the driver from the config and a probe of the kernel.
///
/// The probe runs on a short-lived thread of its own. A thread that sets up
/// a ring gets io_uring task state, and the kernel later runs the ring's
/// teardown as task work on that thread, which interrupts whatever blocking
/// call it is in: a socket read with a timeout then fails with EINTR. The
/// caller (the main thread, or a program embedding the proxy) must not get
/// that surprise.
pub fn choose_driver(wanted: IoDriver) -> Result<Driver, String> {
    let probe = || -> Result<(), String> {
        std::thread::spawn(|| {
            io_uring::IoUring::new(8).map_err(|e| format!("io_uring_setup failed: {e}"))?;
            if monoio::utils::detect_uring() {
                Ok(())
            } else {
                Err("the kernel lacks io_uring operations monoio needs (or MONOIO_FORCE_LEGACY_DRIVER is set)".into())
            }
        })
        .join()
        .unwrap_or_else(|_| Err("the io_uring probe failed".into()))
    };
    match wanted {
        IoDriver::Epoll => Ok(Driver::Epoll("server.io_driver = \"epoll\"".into())),
        IoDriver::IoUring => probe()
            .map(|_| Driver::IoUring)
            .map_err(|e| format!("server.io_driver = \"io_uring\" but io_uring is unavailable: {e}")),
        IoDriver::Auto => Ok(match probe() {
            Ok(()) => Driver::IoUring,
            Err(e) => Driver::Epoll(e),
        }),
    }
}

/// Ring setup flags. COOP_TASKRUN: completions that arrive from another CPU
/// (loopback and NIC softirqs) do not interrupt the worker with an IPI; their
/// task work runs at the worker's next `io_uring_enter`, which a busy worker
/// makes every loop turn anyway. Measured before/after on the 1 KiB proxy
/// bench: see the commit message. Kernels without it (< 5.19) get a plain ring.
fn uring_builder() -> io_uring::Builder {
    let mut b = io_uring::IoUring::builder();
    let supported = io_uring::IoUring::<io_uring::squeue::Entry, io_uring::cqueue::Entry>::builder()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(8)
        .is_ok();
    if supported {
        b.setup_coop_taskrun().setup_taskrun_flag();
    }
    b
}

/// Runs `f`'s future to completion on a new runtime of the given driver.
pub fn block_on<F, Fut>(driver: &Driver, f: F) -> std::io::Result<Fut::Output>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future,
{
    match driver {
        Driver::IoUring => {
            let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .uring_builder(uring_builder())
                .with_entries(1024)
                .enable_timer()
                .build()?;
            crate::origin::pool::set_ring_polls(true);
            Ok(rt.block_on(f()))
        }
        Driver::Epoll(_) => {
            crate::origin::pool::set_ring_polls(false);
            let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()?;
            Ok(rt.block_on(f()))
        }
    }
}

/// A running proxy: its addresses and worker threads.
pub struct Running {
    pub addrs: Vec<SocketAddr>,
    /// The `[server.tls]` listeners' addresses.
    pub tls_addrs: Vec<SocketAddr>,
    /// The admin listener's address, when `[admin]` is configured.
    pub admin_addr: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    workers: usize,
    threads: Vec<std::thread::JoinHandle<()>>,
    admin: Option<(Arc<std::sync::atomic::AtomicBool>, std::thread::JoinHandle<()>)>,
    access_log: Option<AccessLog>,
}

/// How long in-flight requests may take to finish after a stop signal.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

impl Running {
    /// Stops accepting, lets in-flight requests finish (up to
    /// [`DRAIN_DEADLINE`]) and joins the workers.
    pub fn stop(self) {
        drop(self);
    }

    /// Applies a new config to new requests: see [`Reloader::reload`].
    pub fn reload(&self, cfg: Arc<Config>) -> Vec<String> {
        self.reloader().reload(cfg)
    }

    /// What a reload needs of this proxy, for a thread of its own (see
    /// [`crate::reload`]).
    pub fn reloader(&self) -> Reloader {
        Reloader {
            shared: self.shared.clone(),
            workers: self.workers,
        }
    }
}

/// Publishes reloaded configs to a running proxy's workers.
#[derive(Clone)]
pub struct Reloader {
    shared: Arc<Shared>,
    workers: usize,
}

impl Reloader {
    /// Applies a new config to new requests (SIGHUP): routes, origins,
    /// groups, timeouts, limits, header actions and error pages. Open
    /// connections, parked ones and the cache stay. Returns one line per
    /// setting that only a restart can change (listeners, workers, pinning,
    /// the I/O driver, the access log, the admin listener, the cache size);
    /// those keep their running values.
    pub fn reload(&self, cfg: Arc<Config>) -> Vec<String> {
        let mut restart_only = Vec::new();
        if let Some(old) = self.shared.latest() {
            let (a, b) = (&old.cfg, &cfg);
            let mut check = |key: &str, same: bool| {
                if !same {
                    restart_only.push(format!("{key} changed: it applies after a restart"));
                }
            };
            check("server.listen", a.server.listen == b.server.listen);
            let tls_listen = |c: &Config| c.server.tls.as_ref().map(|t| t.listen.clone());
            check("server.tls.listen", tls_listen(a) == tls_listen(b));
            check("server.workers", a.server.workers == b.server.workers);
            check("server.pin_workers", a.server.pin_workers == b.server.pin_workers);
            check("server.io_driver", a.server.io_driver == b.server.io_driver);
            check("server.access_log", a.server.access_log == b.server.access_log);
            check("admin.listen", a.admin == b.admin);
            check(
                "cache.capacity",
                a.cache.capacity == b.cache.capacity && a.cache.max_object_size == b.cache.max_object_size,
            );
        }
        self.shared.publish(cfg, self.workers);
        restart_only
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        // The admin listener answers 503 on /healthz until the workers are done.
        if let Some((stop, t)) = self.admin.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
        if let Some(l) = self.access_log.take() {
            l.close();
        }
    }
}

/// Binds the listeners and starts the workers.
pub fn start(cfg: Arc<Config>) -> Result<Running, String> {
    start_with_hooks(cfg, None)
}

/// [`start`] with code hooks (see [`crate::proxy::hooks`]).
pub fn start_with_hooks(cfg: Arc<Config>, hooks: Option<Arc<dyn OriginHooks>>) -> Result<Running, String> {
    let cache = (cfg.cache.capacity > 0).then(|| {
        Arc::new(crate::cache::store::Store::new(
            cfg.cache.capacity,
            cfg.cache.max_object_size,
        ))
    });
    let access_log = AccessLog::open(&cfg.server.access_log)
        .map_err(|e| format!("server.access_log: cannot open {:?}: {e}", cfg.server.access_log))?;
    let cpus = allowed_cpus();
    let n = if cfg.server.workers == 0 {
        cpus.len().max(1)
    } else {
        cfg.server.workers
    };
    let shared = Arc::new(Shared::new(cfg.clone(), n));
    let driver = choose_driver(cfg.server.io_driver)?;
    // Bind the first socket of each address here so port 0 resolves once and
    // every worker binds the same port. (key, address, TLS?)
    let mut wanted: Vec<(&str, SocketAddr, bool)> =
        cfg.server.listen.iter().map(|a| ("server.listen", *a, false)).collect();
    if let Some(t) = &cfg.server.tls {
        wanted.extend(t.listen.iter().map(|a| ("server.tls.listen", *a, true)));
    }
    let mut firsts = Vec::new();
    let mut bound = Vec::new();
    for (key, a, tls) in &wanted {
        let l = net::reuseport_listener(*a, 4096).map_err(|e| format!("{key}: cannot listen on {a}: {e}"))?;
        let local = l.local_addr().map_err(|e| e.to_string())?;
        bound.push((*key, local, *tls));
        firsts.push(Some(l));
    }
    let mut threads = Vec::new();
    for i in 0..n {
        let mut ls = Vec::new();
        for (j, (key, a, tls)) in bound.iter().enumerate() {
            let l = match firsts[j].take() {
                Some(l) => l,
                None => net::reuseport_listener(*a, 4096).map_err(|e| format!("{key}: cannot listen on {a}: {e}"))?,
            };
            ls.push((l, *tls));
        }
        let cpu = if cfg.server.pin_workers && !cpus.is_empty() {
            Some(cpus[i % cpus.len()])
        } else {
            None
        };
        let cfg = cfg.clone();
        let shared = shared.clone();
        let driver = driver.clone();
        let hooks = hooks.clone();
        let wlog = access_log.worker();
        let cache = cache.clone();
        let t = std::thread::Builder::new()
            .name(format!("ringfront-w{i}"))
            .spawn(move || {
                let pinned = match cpu {
                    Some(c) => match pin_to(c) {
                        Ok(()) => format!("core {c}"),
                        Err(e) => format!("unpinned (pinning to core {c} failed: {e})"),
                    },
                    None => "unpinned".to_string(),
                };
                match &driver {
                    Driver::IoUring => log::info!("worker {i}: {pinned}, driver io_uring"),
                    Driver::Epoll(why) => log::info!("worker {i}: {pinned}, driver epoll ({why})"),
                }
                if let Err(e) = block_on(&driver, || worker_main(i, cfg, shared, ls, hooks, wlog, cache)) {
                    log::error!("worker {i}: cannot start runtime: {e}");
                }
            })
            .map_err(|e| format!("cannot spawn worker: {e}"))?;
        threads.push(t);
    }
    for (_, a, tls) in &bound {
        let scheme = if *tls { "https" } else { "http" };
        log::info!("listening on {scheme}://{a} with {n} worker(s)");
    }
    let addrs = bound.iter().filter(|b| !b.2).map(|b| b.1).collect();
    let tls_addrs = bound.iter().filter(|b| b.2).map(|b| b.1).collect();
    let (admin_addr, admin) = match cfg.admin {
        Some(a) => {
            let l = net::reuseport_listener(a, 128).map_err(|e| format!("admin.listen: cannot listen on {a}: {e}"))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let state = Arc::new(crate::admin::Admin {
                shared: shared.clone(),
                cache: cache.clone(),
                stop: stop.clone(),
            });
            let driver = driver.clone();
            let t = std::thread::Builder::new()
                .name("ringfront-admin".into())
                .spawn(move || {
                    if let Err(e) = block_on(&driver, || crate::admin::serve(l, state)) {
                        log::error!("admin: cannot start runtime: {e}");
                    }
                })
                .map_err(|e| format!("cannot spawn admin thread: {e}"))?;
            log::info!("admin listening on http://{local}");
            (Some(local), Some((stop, t)))
        }
        None => (None, None),
    };
    Ok(Running {
        addrs,
        tls_addrs,
        admin_addr,
        shared,
        workers: n,
        threads,
        admin,
        access_log: Some(access_log),
    })
}

/// How often an accept loop looks at the stop flag, and how often the pool is swept.
const TICK: Duration = Duration::from_millis(250);

/// Accepts on one of a worker's listeners until the proxy stops. The accept
/// is never cancelled: with io_uring a cancelled accept can race with a
/// completed one and drop the accepted connection on the floor. On stop the
/// listener is shut down, which fails the accept. Failed accepts (most
/// often: no descriptor left) back off, see [`AcceptBackoff`].
async fn accept_loop(w: Rc<Worker>, l: monoio::net::TcpListener, tls: bool, backoff: Rc<RefCell<AcceptBackoff>>) {
    let shared = w.shared.clone();
    loop {
        // Read every turn: a reload may change it.
        let max = w.current().cfg.server.max_connections;
        if shared.is_stopping() {
            return;
        }
        if shared.open_connections.load(Ordering::Relaxed) >= max {
            // At the limit: leave new connections in the backlog.
            monoio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        match l.accept().await {
            Ok((s, _)) if shared.is_stopping() => drop(s),
            Ok((s, peer)) => {
                backoff.borrow_mut().accepted();
                spawn_connection(&w, s, peer, tls);
            }
            Err(_) if shared.is_stopping() => return,
            Err(e) => {
                let wait = backoff.borrow_mut().failed(&format!("worker {}", w.id), &e);
                if !wait.is_zero() {
                    monoio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// Starts serving an accepted connection on its own task.
fn spawn_connection(w: &Rc<Worker>, s: monoio::net::TcpStream, peer: SocketAddr, tls: bool) {
    let guard = ConnGuard::new(&w.shared);
    if tls {
        monoio::spawn(conn::accept_tls(w.current(), s, peer, guard));
    } else {
        let _ = s.set_nodelay(true);
        let s = crate::tls::Stream::Plain(s);
        let w = w.current();
        let first_by = Instant::now() + w.cfg.server.client_header_timeout;
        monoio::spawn(conn::serve(w, s, peer, guard, Some(first_by)));
    }
}

async fn worker_main(
    id: usize,
    cfg: Arc<Config>,
    shared: Arc<Shared>,
    listeners: Vec<(std::net::TcpListener, bool)>,
    hooks: Option<Arc<dyn OriginHooks>>,
    log: WorkerLog,
    cache: Option<Arc<crate::cache::store::Store>>,
) {
    let w = Rc::new(Worker::new(id, cfg.clone(), shared.clone(), hooks, log, cache));
    let mut accepts = Vec::new();
    let mut fds = Vec::new();
    // One per worker, so its listeners together log at most a line a second.
    let backoff = Rc::new(RefCell::new(AcceptBackoff::default()));
    for (l, tls) in listeners {
        let l = match monoio::net::TcpListener::from_std(l) {
            Ok(l) => l,
            Err(e) => {
                log::error!("worker {id}: listener: {e}");
                continue;
            }
        };
        fds.push(l.as_raw_fd());
        accepts.push(monoio::spawn(accept_loop(w.clone(), l, tls, backoff.clone())));
    }
    // The parking lot's attendant resumes idle connections that get input.
    monoio::spawn(crate::proxy::park::attend(w.clone()));
    // Once a second: sweep the pool and the parking lot, hand buffered
    // access log lines over.
    {
        let w = w.clone();
        let shared = shared.clone();
        monoio::spawn(async move {
            while !shared.is_stopping() {
                monoio::time::sleep(Duration::from_secs(1)).await;
                let w = w.current();
                let now = Instant::now();
                w.pool.borrow_mut().sweep(now);
                w.metrics().set_pool_idle(w.pool.borrow().idle_count());
                crate::tls::trim_buffers();
                if w.parked.sweep(&w.shared, now, false) > 0 || w.busy.get() == 0 {
                    // Hand memory freed by closed or parked connections back
                    // to the OS: mimalloc purges lazily, on later allocations,
                    // which an idle worker does not make.
                    // SAFETY: a plain call into the allocator for this thread's heap.
                    unsafe { libmimalloc_sys::mi_collect(false) };
                }
                w.log.flush();
            }
        });
    }
    while !shared.is_stopping() {
        monoio::time::sleep(TICK).await;
    }
    // Stop accepting: shutting the listeners down fails their pending accepts.
    for fd in fds {
        // SAFETY: fd is a listening socket this worker owns and still has open.
        unsafe {
            libc::shutdown(fd, libc::SHUT_RDWR);
        }
    }
    for a in accepts {
        let _ = monoio::time::timeout(Duration::from_secs(1), a).await;
    }
    // Parked (idle) connections close now; requests in flight may finish,
    // up to the deadline. Connections idle less than PARK_AFTER close with
    // the runtime.
    w.parked.sweep(&w.shared, Instant::now(), true);
    let t0 = Instant::now();
    while w.busy.get() > 0 && t0.elapsed() < DRAIN_DEADLINE {
        monoio::time::sleep(Duration::from_millis(20)).await;
    }
    // Connections that went idle during the drain parked after the first sweep.
    let w = w.current();
    w.parked.sweep(&w.shared, Instant::now(), true);
    w.pool.borrow_mut().clear();
    w.log.flush();
}
