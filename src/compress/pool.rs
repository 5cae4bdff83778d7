//! The compression pool: a few threads that compress stored bodies off the
//! workers' event loops.
//!
//! Compressing 1 MiB takes tens of milliseconds (see [`codec`](super::codec));
//! on a worker's thread that would hold every other viewer of the worker
//! for as long. The pool's threads are started the first time a body is
//! submitted (one per allowed CPU, at most [`MAX_THREADS`]) and run at
//! `SCHED_IDLE` (or, where that is refused, nice 19): the kernel runs them
//! only on CPU time no worker wants, and preempts them the moment a
//! worker wakes, so a compression never delays another viewer's hit. They
//! may run on any CPU the process may (a thread started from a pinned
//! worker would otherwise inherit its pinning).
//!
//! Every job is bounded: at most [`MAX_JOBS`] queued, and at most
//! [`MAX_BYTES`] of bodies queued or being compressed (the bodies are the
//! stored ones, shared, not copied). A job that finds no room is refused,
//! and the response is stored as it came: compression is an optimisation,
//! never a queue to wait in. The result comes back through a one-shot
//! ([`oneshot`](super::oneshot)) awaited within a time budget; a job whose
//! waiter gave up before it started is skipped.

use super::codec::{self, Coding};
use super::oneshot::{self, Receiver, Sender};
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

/// At most this many threads (one per allowed CPU below it).
pub const MAX_THREADS: usize = 2;

/// Jobs waiting at most.
pub const MAX_JOBS: usize = 64;

/// Bytes of bodies queued or being compressed at most. The bodies are the
/// stored objects' own (`Bytes` shared, not copied); what this bounds is
/// the work queued and the coded output being written (at most as large).
/// A dozen objects of the largest compressible size (10 MB) fit.
pub const MAX_BYTES: u64 = 128 << 20;

struct Job {
    data: Bytes,
    coding: Coding,
    tx: Sender<Vec<u8>>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Bytes of the bodies queued or being compressed.
    bytes: u64,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
}

struct Pool {
    shared: Arc<Shared>,
    threads: usize,
}

/// The process's pool, started on first use.
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(Pool::start)
}

impl Pool {
    fn start() -> Pool {
        let shared = Arc::new(Shared::default());
        let cpus = process_cpus().map_or(1, |set| cpu_count(&set));
        let want = cpus.clamp(1, MAX_THREADS);
        let mut threads = 0;
        for i in 0..want {
            let s = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ringfront-compress{i}"))
                .spawn(move || work(&s));
            match spawned {
                Ok(_) => threads += 1,
                Err(e) => log::warn!("compression: cannot start a pool thread: {e}"),
            }
        }
        log::info!("compression: {threads} pool thread(s) started");
        Pool { shared, threads }
    }
}

/// Queues `data` to be compressed in `coding`; the receiver gets the
/// coded bytes. `None`: no room in the pool (or no pool), compress nothing.
pub fn submit(data: Bytes, coding: Coding) -> Option<Receiver<Vec<u8>>> {
    let p = pool();
    if p.threads == 0 {
        return None;
    }
    let len = data.len() as u64;
    let (tx, rx) = oneshot::channel();
    {
        // try_lock: a worker never waits on a pool thread at idle priority
        // that holds the lock (priority inversion); busy means no room.
        let mut q = p.shared.queue.try_lock().ok()?;
        if q.jobs.len() >= MAX_JOBS || q.bytes.saturating_add(len) > MAX_BYTES {
            return None;
        }
        q.bytes += len;
        q.jobs.push_back(Job { data, coding, tx });
    }
    p.shared.ready.notify_one();
    Some(rx)
}

/// How long the request that stored a body of `len` bytes waits for its
/// compression before it is answered from the identity object (which
/// stands in for the coded ones until they are ready): half a second, and
/// a tenth of a second per MiB (the slowest coder, gzip 6, does 34 MB/s on
/// an idle CPU: a budget for a third of that speed, as a pool at
/// SCHED_IDLE gets only the CPU the workers leave).
pub fn budget(len: usize) -> Duration {
    Duration::from_millis(500 + 100 * (len as u64 >> 20))
}

/// How long the coded variants are waited for at all: a pool starved by
/// busy workers may take this long (a minute, and two seconds per MiB);
/// past it they are given up and the identity object keeps standing in.
pub fn patience(len: usize) -> Duration {
    Duration::from_millis(60_000 + 2_000 * (len as u64 >> 20))
}

/// `body` queued for both codings ([`Coding::ALL`]'s order); `None` when
/// the pool had no room for both (a job queued alone is skipped, its
/// receiver dropped).
pub fn submit_all(body: &Bytes) -> Option<[Receiver<Vec<u8>>; 2]> {
    let br = submit(body.clone(), Coding::Br)?;
    let gzip = submit(body.clone(), Coding::Gzip)?;
    Some([br, gzip])
}

/// A pool thread: lowers its priority, then compresses jobs one after
/// another. Ends only if the queue's lock is poisoned.
fn work(shared: &Shared) {
    unpin();
    lower_priority();
    loop {
        let job = {
            let Ok(mut q) = shared.queue.lock() else { return };
            loop {
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                q = match shared.ready.wait(q) {
                    Ok(q) => q,
                    Err(_) => return,
                };
            }
        };
        let len = job.data.len() as u64;
        if !job.tx.is_closed() {
            if let Some(out) = codec::compress(job.coding, &job.data) {
                job.tx.send(out);
            }
        }
        let Ok(mut q) = shared.queue.lock() else { return };
        q.bytes = q.bytes.saturating_sub(len);
    }
}

/// `SCHED_IDLE` for the calling thread (Linux applies scheduling policies
/// per thread; pid 0 is the caller), else nice 19.
fn lower_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: plain syscalls on the calling thread with a valid argument.
    let idle = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0;
    if !idle {
        // SAFETY: as above; on Linux PRIO_PROCESS with 0 is the calling thread.
        let niced = unsafe { libc::setpriority(libc::PRIO_PROCESS as _, 0, 19) } == 0;
        if !niced {
            log::warn!(
                "compression: pool thread at normal priority ({})",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// The CPUs the process may run on: its main thread's mask (workers pin
/// themselves; the main thread never does).
fn process_cpus() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let pid = libc::getpid();
        (libc::sched_getaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0).then_some(set)
    }
}

fn cpu_count(set: &libc::cpu_set_t) -> usize {
    // SAFETY: reads the set only.
    unsafe { libc::CPU_COUNT(set) as usize }
}

/// Lets the calling thread run on every CPU of the process.
fn unpin() {
    if let Some(set) = process_cpus() {
        // SAFETY: a valid mask of the process's CPUs, for the calling thread.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    /// Polls `f` to its end, parked between wakes.
    fn block_on<F: Future>(f: F) -> F::Output {
        let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park_timeout(Duration::from_secs(30));
        }
    }

    #[test]
    fn a_submitted_body_comes_back_compressed_from_a_pool_thread() {
        let data = Bytes::from(b"<li>an item of a list</li>\n".repeat(2000));
        let rx = submit(data.clone(), Coding::Gzip).expect("room in the pool");
        let out = block_on(rx).expect("compressed");
        assert!(out.len() < data.len() / 10);
        assert_eq!(super::super::codec::tests::gunzip(&out), data);
    }

    #[test]
    fn a_body_past_the_bytes_bound_is_refused() {
        let huge = Bytes::from(vec![b'a'; MAX_BYTES as usize + 1]);
        assert!(submit(huge, Coding::Br).is_none());
    }

    #[test]
    fn the_budget_grows_with_the_size() {
        assert_eq!(budget(1000), Duration::from_millis(500));
        assert_eq!(budget(10 << 20), Duration::from_millis(1500));
    }
}
