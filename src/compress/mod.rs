//! `compress = true` (SPEC §2, §4): brotli and gzip for viewers that
//! accept them, crate-like: nothing here knows the proxy.
//!
//! - [`eligible`]: whether a response is compressed, pure (CloudFront's
//!   conditions, and RFC 9110 §7.7's `no-transform`);
//! - [`codec`]: the two codings, whole bodies and streams, and the levels
//!   chosen (measured);
//! - [`head`]: the head of a coded representation, pure (Vary,
//!   Content-Encoding, Content-Length, a weak ETag);
//! - [`pool`]: the threads that compress stored bodies off the event loops,
//!   at idle priority, bounded, answered through [`oneshot`].
//!
//! The proxy's side is `proxy/compressed.rs` (three stored variants per
//! response: identity, br, gzip) and `proxy/deliver.rs` (compression on
//! the fly for responses that pass through).

pub mod codec;
pub mod eligible;
pub mod head;
pub mod oneshot;
pub mod pool;

pub use codec::{Coding, Encoder, StreamSlot};
pub use eligible::{eligible, Facts};
