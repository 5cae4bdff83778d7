//! A cluster of ringfront hosts acting as one cache (SPEC §8, `[cluster]`).
//!
//! [`Ring`] says which peer owns a cache key: ketama consistent hashing with
//! nginx's point placement, so removing a peer moves only the keys it owned.
//! [`PeerHealth`] says where a cacheable miss goes: the owner, unless it is
//! this host or marked down.

mod peers;
mod ring;

pub use peers::PeerHealth;
pub use ring::{Ring, POINTS_PER_PEER};
