//! The in-memory cache: the store, freshness rules and keys.
//!
//! - [`lookup`]: the cache decision for a request, pure: bypass (and why),
//!   fresh, serve-stale-and-refresh, stale, miss.
//! - [`admission`]: may a response be stored, for how long, with what
//!   validators; a 304's refresh of a stored object. Pure.
//! - [`store`]: sharded, byte-bounded (objects charged what they cost,
//!   recordings reserving their room), S3-FIFO eviction; objects are
//!   immutable `Bytes` so hits copy nothing.
//! - [`collapse`]: one origin fetch for concurrent misses of a key; the
//!   waiting requests are woken (across workers), never polling.
//! - [`freshness`]: what may be stored and for how long (SPEC §4, CloudFront's
//!   rules), as pure functions of the response, the request and the behavior.
//! - [`targeted`]: `CDN-Cache-Control` (RFC 9213), a Structured Fields
//!   Dictionary read into the same directives as Cache-Control.
//! - [`invalidation`]: which responses to unsafe methods invalidate what
//!   (RFC 9111 §4.4).
//! - [`serve`]: a hit's answer: full, 304, 206 or 416.
//! - [`key`]: cache keys (host, path, optional query) and the normalised
//!   Accept-Encoding.
//! - [`vary`]: the variants of a response that varies (RFC 9111 §4.1): the
//!   header names, and the request values that key a variant; a behavior's
//!   key headers and cookies join the key as such names (the cookies read
//!   by [`crate::http::cookie`], as the origin is sent them).
//! - [`update`]: a stored response updated from a 304 or a HEAD's 200
//!   (RFC 9111 §3.2, §4.3.4, §4.3.5): which may update it, and the merged
//!   head. Pure.
//!
//! The design note is `src/cache/README.md`.

pub mod admission;
pub mod collapse;
pub mod freshness;
pub mod invalidation;
pub mod key;
pub mod lookup;
pub mod serve;
pub mod store;
pub mod targeted;
pub mod update;
pub mod vary;
