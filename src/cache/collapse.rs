//! Request collapsing: concurrent misses for one key make one origin fetch.
//!
//! The first miss for a key becomes the leader and fetches (failover
//! included); later misses for the key follow: they wait until the leader is
//! done and then look the key up again, so a herd of 100 viewers costs the
//! origin group one request, and a failover happens once for all of them.
//!
//! Followers may run on other workers, and a monoio task cannot be woken
//! from another thread, so a follower checks its flight every
//! [`FOLLOW_POLL`] (only while a fetch is in flight; a hit never gets here).
//!
//! When the leader's response could not be stored (private, Set-Cookie, an
//! error, a cut body), its followers fetch on their own, and the key is
//! marked pass for [`PASS_FOR`]: later misses go straight to the origin
//! instead of queueing behind one another (Varnish's hit-for-miss).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a follower looks at its flight.
pub const FOLLOW_POLL: Duration = Duration::from_millis(2);
/// How long a key whose response was not storable skips collapsing.
pub const PASS_FOR: Duration = Duration::from_secs(10);

/// One fetch in progress.
#[derive(Debug, Default)]
pub struct Flight {
    done: AtomicBool,
}

impl Flight {
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
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
        self.flight.done.store(true, Ordering::Release);
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
        // Stored: the next miss (after expiry, say) leads again.
        assert!(matches!(f.join(b"k"), Join::Leader(_)));
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
