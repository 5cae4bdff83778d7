//! Parked keep-alive connections.
//!
//! A viewer connection that sits idle in keep-alive for [`PARK_AFTER`] gives
//! back everything but its socket: the connection task ends, its buffers
//! and per-request state are freed, and the socket goes into this worker's
//! parking lot. A busy connection never parks, so the request path pays
//! nothing for this; an idle connection costs a slot of 32 bytes here plus
//! the kernel's own socket state, which is what lets one worker hold tens of
//! thousands of idle viewers in a few MiB. A TLS connection parks with its
//! session ([`TlsSession`]: rustls' state and no buffers, about 3.5 KiB
//! for a TLS 1.3 session).
//!
//! The lot is an epoll instance of the worker's own, with each parked socket
//! registered one-shot for input. One task per worker waits for the epoll
//! descriptor to become readable (through the worker's ring like any other
//! wait), collects the ready sockets and starts a new connection task for
//! each. A task per parked socket would cost ten times the memory.
//!
//! Deadlines live in the lot's slots; the worker's once-a-second sweep
//! closes expired ones, and at stop it closes all of them, so idle
//! connections never hold up an exit. A TLS one is closed with close_notify,
//! sent without waiting, as an idle TLS connection with a task closes.

use super::{ConnGuard, Worker};
use crate::tls::{Stream, TlsSession};
use slab::Slab;
use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a keep-alive connection may idle with its buffers before it parks.
pub const PARK_AFTER: Duration = Duration::from_millis(200);

/// One worker's parked sockets.
pub struct Parked {
    /// The epoll instance (None if it could not be created: then nothing parks).
    ep: Option<OwnedFd>,
    /// The attendant is watching the epoll instance; only then may sockets park.
    attended: std::cell::Cell<bool>,
    /// Each parked socket and its idle deadline; the slot key is the epoll data.
    slots: RefCell<Slab<Slot>>,
}

/// A parked connection: its socket, its idle deadline and, for TLS, its
/// session.
struct Slot {
    fd: OwnedFd,
    until: Instant,
    tls: Option<TlsSession>,
}

impl Slot {
    /// Closes the connection (TLS: close_notify first, best effort).
    fn close(self) {
        if let Some(s) = self.tls {
            s.farewell(self.fd.as_raw_fd());
        }
    }
}

impl Default for Parked {
    fn default() -> Self {
        // SAFETY: plain syscall; the result is checked before use.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        Parked {
            // SAFETY: ep is a new descriptor this struct now owns.
            ep: (ep >= 0).then(|| unsafe { OwnedFd::from_raw_fd(ep) }),
            attended: std::cell::Cell::new(false),
            slots: RefCell::new(Slab::new()),
        }
    }
}

impl Parked {
    /// Whether idle connections may park here (else they keep their task and
    /// wait out `client_idle_timeout` as before).
    pub fn usable(&self) -> bool {
        self.ep.is_some() && self.attended.get()
    }

    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a connection in; gives it back if it cannot be registered.
    fn insert(&self, slot: Slot) -> Result<(), Slot> {
        let Some(ep) = self.ep.as_ref() else { return Err(slot) };
        let mut slots = self.slots.borrow_mut();
        let raw = slot.fd.as_raw_fd();
        let entry = slots.vacant_entry();
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: entry.key() as u64,
        };
        // SAFETY: both descriptors are open; ev is a valid epoll_event.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, raw, &mut ev) } != 0 {
            return Err(slot);
        }
        entry.insert(slot);
        Ok(())
    }

    /// Takes slot `key` out of the lot (and out of the epoll set).
    fn take(&self, key: usize) -> Option<Slot> {
        let e = self.slots.borrow_mut().try_remove(key)?;
        if let Some(ep) = self.ep.as_ref() {
            // SAFETY: both descriptors are open; DEL ignores the event argument.
            unsafe {
                libc::epoll_ctl(
                    ep.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    e.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                );
            }
        }
        Some(e)
    }

    /// Closes the parked sockets whose deadline is at or before `now` (all
    /// of them when `all`). Returns how many.
    pub fn sweep(&self, shared: &std::sync::Arc<super::Shared>, now: Instant, all: bool) -> usize {
        let expired: Vec<usize> = self
            .slots
            .borrow()
            .iter()
            .filter(|(_, e)| all || e.until <= now)
            .map(|(k, _)| k)
            .collect();
        for &k in &expired {
            if let Some(slot) = self.take(k) {
                slot.close();
                close_parked(shared);
            }
        }
        expired.len()
    }
}

/// Accounts for a parked connection being closed (its fd is already dropped).
fn close_parked(shared: &std::sync::Arc<super::Shared>) {
    shared.parked_connections.fetch_sub(1, Ordering::Relaxed);
    drop(ConnGuard::carried(shared));
}

/// Parks `stream` (and its TLS session `tls`) until it is readable, its
/// idle deadline `until` passes, or the proxy stops. The socket is kept as
/// a duplicate descriptor (the monoio stream closes its own); `guard`'s
/// count is carried over. When it cannot park (no descriptor for the
/// duplicate: the process is at its descriptor limit), the connection stays
/// open with a task, see [`stay`].
pub fn park(w: &Rc<Worker>, stream: monoio::net::TcpStream, tls: Option<TlsSession>, guard: ConnGuard, until: Instant) {
    if w.shared.is_stopping() {
        if let Some(s) = tls {
            s.farewell(stream.as_raw_fd());
        }
        return; // closes: idle connections end at stop
    }
    let dup = dup_cloexec(stream.as_raw_fd());
    if dup < 0 {
        monoio::spawn(stay(w.clone(), stream, tls, guard, until));
        return;
    }
    // SAFETY: dup is a new descriptor owned from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(dup) };
    match w.parked.insert(Slot { fd, until, tls }) {
        Ok(()) => {
            drop(stream);
            guard.carry();
            w.shared.parked_connections.fetch_add(1, Ordering::Relaxed);
        }
        Err(slot) => {
            drop(slot.fd);
            monoio::spawn(stay(w.clone(), stream, slot.tls, guard, until));
        }
    }
}

/// An idle connection that could not park keeps a small task (its buffers
/// are already freed): it waits for input until its idle deadline and is
/// then served like one resumed from the lot, or closed at the deadline. At
/// stop it closes with the worker's runtime, as an idle connection not yet
/// parked does.
async fn stay(
    w: Rc<Worker>,
    stream: monoio::net::TcpStream,
    tls: Option<TlsSession>,
    guard: ConnGuard,
    until: Instant,
) {
    let ready = monoio::time::timeout_at(until.into(), stream.readable(false)).await;
    if !matches!(ready, Ok(Ok(()))) || w.shared.is_stopping() {
        if let Some(s) = tls {
            s.farewell(stream.as_raw_fd());
        }
        return; // closes: the deadline passed or the socket failed
    }
    if let Ok(peer) = stream.peer_addr() {
        let stream = Stream::resume(stream, tls);
        // Spawned, not awaited: the waiting task stays small.
        monoio::spawn(super::conn::serve(w.current(), stream, peer, guard, None));
    }
}

/// The worker's lot attendant: waits for parked sockets to become readable
/// and serves each in a new connection task. Runs until the worker stops.
pub async fn attend(w: Rc<Worker>) {
    let Some(ep) = w.parked.ep.as_ref() else { return };
    // The epoll descriptor is waited on through monoio like a socket: a
    // duplicate wrapped as a stream, used for readiness only, never read.
    let dup = dup_cloexec(ep.as_raw_fd());
    if dup < 0 {
        return;
    }
    // SAFETY: dup is a new descriptor the std stream now owns.
    let waiter = match monoio::net::TcpStream::from_std(unsafe { std::net::TcpStream::from_raw_fd(dup) }) {
        Ok(s) => s,
        Err(_) => return,
    };
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 128];
    w.parked.attended.set(true);
    while !w.shared.is_stopping() {
        if waiter.readable(false).await.is_err() {
            break;
        }
        loop {
            // SAFETY: events is a valid buffer of the given length.
            let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, 0) };
            if n <= 0 {
                break;
            }
            for e in &events[..n as usize] {
                resume(&w, e.u64 as usize);
            }
            if (n as usize) < events.len() {
                break;
            }
        }
    }
    // No one watches the lot any more: nothing parks, and what is parked closes.
    w.parked.attended.set(false);
    w.parked.sweep(&w.shared, Instant::now(), true);
}

/// A duplicate of `fd` with close-on-exec set (so a child process started by
/// an embedder never inherits a viewer's socket); negative on failure.
fn dup_cloexec(fd: RawFd) -> RawFd {
    // SAFETY: plain fcntl on an open descriptor; the result is checked by the caller.
    unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }
}

/// A parked socket became readable (or hung up): serve it, or close it if
/// its deadline passed or the proxy is stopping.
fn resume(w: &Rc<Worker>, key: usize) {
    let Some(slot) = w.parked.take(key) else { return };
    if w.shared.is_stopping() || Instant::now() >= slot.until {
        slot.close();
        close_parked(&w.shared);
        return;
    }
    w.shared.parked_connections.fetch_sub(1, Ordering::Relaxed);
    let guard = ConnGuard::carried(&w.shared);
    let stream = match monoio::net::TcpStream::from_std(std::net::TcpStream::from(slot.fd)) {
        Ok(s) => s,
        Err(_) => return,
    };
    if let Ok(peer) = stream.peer_addr() {
        let stream = Stream::resume(stream, slot.tls);
        monoio::spawn(super::conn::serve(w.current(), stream, peer, guard, None));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn socket_pair() -> (std::os::unix::net::UnixStream, OwnedFd) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        (a, OwnedFd::from(b))
    }

    #[test]
    fn sweep_closes_only_expired_sockets_and_counts_them() {
        let shared = Arc::new(crate::proxy::Shared::default());
        let p = Parked::default();
        let now = Instant::now();
        let (peer_a, a) = socket_pair();
        let (peer_b, b) = socket_pair();
        for (fd, until) in [(a, now), (b, now + Duration::from_secs(60))] {
            std::mem::forget(ConnGuard::new(&shared));
            shared.parked_connections.fetch_add(1, Ordering::Relaxed);
            assert!(p.insert(Slot { fd, until, tls: None }).is_ok());
        }
        assert_eq!(p.sweep(&shared, now, false), 1);
        assert_eq!(p.len(), 1);
        assert_eq!(shared.open_connections.load(Ordering::Relaxed), 1);
        // The expired one is closed: its peer reads end-of-file.
        let mut buf = [0u8; 1];
        assert_eq!(std::io::Read::read(&mut &peer_a, &mut buf).unwrap(), 0);
        peer_b.set_nonblocking(true).unwrap();
        assert!(std::io::Read::read(&mut &peer_b, &mut buf).is_err(), "live one closed");
        assert_eq!(p.sweep(&shared, now, true), 1);
        assert!(p.is_empty());
        assert_eq!(shared.open_connections.load(Ordering::Relaxed), 0);
        assert_eq!(shared.parked_connections.load(Ordering::Relaxed), 0);
    }
}
