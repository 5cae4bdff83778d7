//! Request collapsing: concurrent misses for one key make one origin fetch.
//!
//! The first miss for a key becomes the leader and fetches (failover
//! included); later misses for the key follow: they wait until the leader is
//! done and then look the key up again, so a herd of 100 viewers costs the
//! origin group one request, and a failover happens once for all of them.
//!
//! Followers may run on other workers: each waits on its flight with a
//! [`Waker`] (monoio's `sync` feature sends a wake to another worker's ring
//! through its eventfd), and the leader wakes them all as the flight ends.
//! A waiting request costs no CPU at all, however many wait.
//!
//! When the leader's response could not be stored (private, Set-Cookie, an
//! error, a cut body), its followers fetch on their own, and the key is
//! marked pass for [`PASS_FOR`]: later misses go straight to the origin
//! instead of queueing behind one another (Varnish's hit-for-miss).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How long a key whose response was not storable skips collapsing.
pub const PASS_FOR: Duration = Duration::from_secs(10);

/// One fetch in progress.
#[derive(Debug, Default)]
pub struct Flight {
    done: AtomicBool,
    /// The followers' wakers, woken when the flight ends.
    waiters: Mutex<Vec<Waker>>,
}

impl Flight {
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Completes when the flight ends (wrap it in a timeout).
    pub fn wait(&self) -> Wait<'_> {
        Wait { flight: self }
    }

    fn finish(&self) {
        self.done.store(true, Ordering::Release);
        let waiters = match self.waiters.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => return,
        };
        for w in waiters {
            w.wake();
        }
    }
}

/// The future of [`Flight::wait`].
pub struct Wait<'a> {
    flight: &'a Flight,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.flight.is_done() {
            return Poll::Ready(());
        }
        let Ok(mut w) = self.flight.waiters.lock() else {
            return Poll::Ready(()); // poisoned: look the key up again
        };
        // Checked again under the lock `finish` takes after setting `done`.
        if self.flight.is_done() {
            return Poll::Ready(());
        }
        if !w.iter().any(|x| x.will_wake(cx.waker())) {
            w.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// In-flight fetches and pass marks, shared by all workers.
#[derive(Default)]
pub struct Flights {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    flights: HashMap<Vec<u8>, Arc<Flight>, ahash::RandomState>,
    pass: HashMap<Vec<u8>, Instant, ahash::RandomState>,
}

/// What a miss should do.
pub enum Join<'a> {
    /// Fetch; dropping the guard releases the followers.
    Leader(LeaderGuard<'a>),
    /// Wait for this flight, then look the key up again.
    Follower(Arc<Flight>),
    /// The key is marked pass: fetch without collapsing.
    Pass,
}

/// Held by the leader while it fetches.
pub struct LeaderGuard<'a> {
    flights: &'a Flights,
    key: Vec<u8>,
    flight: Arc<Flight>,
    stored: bool,
}

impl LeaderGuard<'_> {
    /// The fetched response was stored: followers will find it.
    pub fn stored(&mut self) {
        self.stored = true;
    }

    /// Ends the flight without marking the key pass (a background refresh
    /// that failed: the next stale hit may try again).
    pub fn abandon(mut self) {
        self.stored = true;
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut i) = self.flights.inner.lock() {
            i.flights.remove(&self.key);
            if !self.stored {
                let now = Instant::now();
                i.pass.retain(|_, until| *until > now);
                i.pass.insert(std::mem::take(&mut self.key), now + PASS_FOR);
            }
        }
        self.flight.finish();
    }
}

impl Flights {
    /// Joins the fetch for `key`, or starts it.
    pub fn join(&self, key: &[u8]) -> Join<'_> {
        let Ok(mut i) = self.inner.lock() else {
            return Join::Pass;
        };
        if let Some(until) = i.pass.get(key) {
            if *until > Instant::now() {
                return Join::Pass;
            }
            i.pass.remove(key);
        }
        if let Some(f) = i.flights.get(key) {
            return Join::Follower(f.clone());
        }
        let flight = Arc::new(Flight::default());
        i.flights.insert(key.to_vec(), flight.clone());
        Join::Leader(LeaderGuard {
            flights: self,
            key: key.to_vec(),
            flight,
            stored: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_many_followers_then_release() {
        let f = Flights::default();
        let mut lead = match f.join(b"k") {
            Join::Leader(g) => g,
            _ => panic!("first miss must lead"),
        };
        let followers: Vec<Arc<Flight>> = (0..10)
            .map(|_| match f.join(b"k") {
                Join::Follower(fl) => fl,
                _ => panic!("later misses must follow"),
            })
            .collect();
        assert!(followers.iter().all(|x| !x.is_done()));
        lead.stored();
        drop(lead);
        assert!(followers.iter().all(|x| x.is_done()));
        // A finished flight's wait completes at once.
        let mut cx = Context::from_waker(Waker::noop());
        assert!(std::pin::pin!(followers[0].wait()).poll(&mut cx).is_ready());
        // Stored: the next miss (after expiry, say) leads again.
        assert!(matches!(f.join(b"k"), Join::Leader(_)));
    }

    #[test]
    fn followers_are_woken_when_the_flight_ends() {
        use std::sync::atomic::AtomicUsize;
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let f = Flights::default();
        let lead = match f.join(b"k") {
            Join::Leader(g) => g,
            _ => panic!(),
        };
        let Join::Follower(fl) = f.join(b"k") else { panic!() };
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut w = std::pin::pin!(fl.wait());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        assert!(w.as_mut().poll(&mut cx).is_pending(), "polled again: one waker kept");
        drop(lead);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(w.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn unstorable_response_marks_the_key_pass() {
        let f = Flights::default();
        let lead = match f.join(b"k") {
            Join::Leader(g) => g,
            _ => panic!(),
        };
        drop(lead);
        assert!(matches!(f.join(b"k"), Join::Pass));
        assert!(matches!(f.join(b"other"), Join::Leader(_)));
    }
}
