//! Parked keep-alive connections.
//!
//! A viewer connection that sits idle in keep-alive for [`PARK_AFTER`] gives
//! back its task, buffers and per-request state: the big connection task
//! ends and a small one waits for the socket to become readable, then starts
//! a new connection task for the next request. A busy connection never
//! parks, so the request path pays nothing for this; an idle connection
//! costs a few hundred bytes instead of ~18 KiB, which is what lets a worker
//! hold tens of thousands of idle viewers.
//!
//! The parked task has no timer of its own (a timer would double its size).
//! Instead each worker keeps a registry of parked sockets and their idle
//! deadlines; its once-a-second sweep shuts expired ones down, which wakes
//! their poll with end-of-file, and at stop it shuts all of them down so
//! idle connections close at once instead of holding up the exit.

use super::{ConnGuard, Worker};
use slab::Slab;
use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a keep-alive connection may idle with its buffers before it parks.
pub const PARK_AFTER: Duration = Duration::from_millis(200);

/// One worker's parked sockets: fd and idle deadline.
#[derive(Default)]
pub struct Parked {
    slots: RefCell<Slab<(RawFd, Instant)>>,
}

impl Parked {
    fn insert(&self, fd: RawFd, until: Instant) -> usize {
        self.slots.borrow_mut().insert((fd, until))
    }

    /// Removes slot `key` if it still holds `fd`, and says whether it did (a
    /// sweep may have removed it and the slot been reused; the fd stays
    /// unique while its socket is open).
    fn remove(&self, key: usize, fd: RawFd) -> bool {
        let mut s = self.slots.borrow_mut();
        let mine = s.get(key).map(|e| e.0) == Some(fd);
        if mine {
            s.remove(key);
        }
        mine
    }

    /// Shuts down the parked sockets whose deadline is at or before `now`
    /// (all of them when `all`); their tasks wake, see the deadline passed
    /// or the proxy stopping, and close them. Returns how many.
    pub fn sweep(&self, now: Instant, all: bool) -> usize {
        let mut s = self.slots.borrow_mut();
        let mut n = 0;
        s.retain(|_, e| {
            if all || e.1 <= now {
                // SAFETY: e.0 is the fd of a socket its parked task still
                // owns (the task removes its entry before dropping it).
                unsafe {
                    libc::shutdown(e.0, libc::SHUT_RDWR);
                }
                n += 1;
                false
            } else {
                true
            }
        });
        n
    }

    pub fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parks `stream` until it is readable, its idle deadline `until` passes, or
/// the proxy stops; on readable, serves it in a new connection task. The
/// parked task holds only the socket and the worker (about 200 bytes): the
/// deadline is in the registry, the peer address is asked again on resume,
/// and the open-connection count is carried over without a guard. The poll
/// consumes no bytes, so ending it loses nothing.
pub fn park(w: Rc<Worker>, stream: monoio::net::TcpStream, guard: ConnGuard, until: Instant) {
    let key = w.parked.insert(stream.as_raw_fd(), until);
    guard.carry();
    w.shared.parked_connections.fetch_add(1, Ordering::Relaxed);
    monoio::spawn(async move {
        let ready = stream.readable(false).await;
        w.shared.parked_connections.fetch_sub(1, Ordering::Relaxed);
        let guard = ConnGuard::carried(&w.shared);
        // Gone from the registry: a sweep shut it down (deadline or stop).
        let mine = w.parked.remove(key, stream.as_raw_fd());
        if ready.is_ok() && mine && !w.shared.is_stopping() {
            if let Ok(peer) = stream.peer_addr() {
                monoio::spawn(super::conn::serve(w, stream, peer, guard, false));
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_only_expired_and_remove_checks_the_fd() {
        let p = Parked::default();
        let now = Instant::now();
        // Not real sockets: shutdown on them fails harmlessly (EBADF/ENOTSOCK).
        let a = p.insert(-1, now);
        let _b = p.insert(-2, now + Duration::from_secs(60));
        assert_eq!(p.sweep(now, false), 1);
        assert_eq!(p.len(), 1);
        // Slot `a` is free again; a new entry may take it.
        let c = p.insert(-3, now + Duration::from_secs(60));
        assert_eq!(c, a);
        assert!(!p.remove(a, -1), "the swept task's late remove must not drop -3");
        assert_eq!(p.len(), 2);
        assert!(p.remove(c, -3));
        assert_eq!(p.len(), 1);
        assert_eq!(p.sweep(now, true), 1);
        assert!(p.is_empty());
    }
}
