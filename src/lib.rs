//! ringfront: an HTTP/1.1 edge caching reverse proxy on io_uring.
//!
//! # Map of the crate
//!
//! | module | concern |
//! |---|---|
//! | [`admin`] | the admin listener: `/healthz`, `/invalidate` |
//! | [`cache`] | the cache decision, admission, the store (sharded, S3-FIFO), freshness rules, keys and Vary variants, 304/HEAD updates, invalidation, collapsing |
//! | [`cluster`] | several hosts as one cache (SPEC §8): the ring that names a cache key's owner, and the peers' fast-fail state |
//! | [`compress`] | `compress = true`: which responses, brotli and gzip, the coded heads, the idle-priority pool that compresses stored bodies |
//! | [`config`] | the TOML schema (SPEC §2), defaults, validation, `check` |
//! | [`runtime`] | worker threads: one monoio runtime per core, pinning, driver choice, listeners |
//! | [`reload`] | SIGHUP: config reloads on a thread of their own, one at a time |
//! | [`http`] | HTTP/1.1 without I/O: head parsing, path normalisation, strict framing, chunked, re-framing, head writing |
//! | [`proxy`] | the per-connection flow in phases: read head, route, cache lookup, forward, finish; the hooks trait |
//! | [`outcome`] | a request's typed outcome (hit, refresh hit, miss, error and the detail), shared by the access log and `/metrics` |
//! | [`origin`] | the upstream side: the attempt state machine, the watched connection pool, the reuse verdict, origin I/O |
//! | [`log`] | the access log: per-worker buffers, one writer thread |
//! | [`net`] | socket helpers shared by the proxy and the sample origin |
//! | [`tls`] | rustls on both sides: the plain-or-TLS stream, SNI certificate choice, origin verification |
//! | [`sample_origin`] | the fault-injecting origin used by the demo, tests and benchmarks |
//! | [`demo`] | `ringfront demo`: two sample origins and the proxy, in one process |
//!
//! # The life of a request
//!
//! 1. A worker ([`runtime`]) accepts on its own SO_REUSEPORT socket and spawns
//!    [`proxy::conn::serve`] for the connection (after a TLS handshake on a
//!    `[server.tls]` listener, [`tls`]).
//! 2. The head is read into the connection's buffer and parsed in place
//!    ([`http::parse`]); framing is checked strictly, so a request that could
//!    be read two ways is refused with 400 before anything reaches an origin.
//!    The path is normalised ([`http::path`]) before anything uses it.
//! 3. The first matching behavior ([`config::Behavior`]) gives the target and
//!    the allowed methods.
//! 4. GET and HEAD look in the cache ([`cache::lookup`], in
//!    `proxy::conn::look_up`); a fresh hit is written from the stored object
//!    without copying it; concurrent misses of a key wait for one fetch
//!    ([`cache::collapse`]), woken when it is stored.
//! 5. [`proxy::forward`] reads top to bottom as a miss with failover: an
//!    `Exchange` (`proxy/exchange.rs`) drives the
//!    [`origin::attempt::AttemptMachine`] for misses, revalidations and
//!    background refreshes alike: it takes a pooled connection or connects
//!    ([`origin::pool`], [`origin::client`]), writes the head with every
//!    header edit, hook and action in one place ([`http::write`]), sends the
//!    body (`proxy/upload.rs`, framed by [`http::frame`]) and reads the
//!    response head. Then a storable response is recorded whole, admitted
//!    ([`cache::admission`]), stored and answered from the store
//!    (`proxy/record.rs`, `proxy/hit.rs`); any other is streamed to the
//!    viewer with framing of its own (`proxy/deliver.rs`); a failure is
//!    answered with an error page, 502 or 504 (`proxy/answers.rs`, where
//!    every generated answer lives). The viewer's side of all this is one
//!    type, [`proxy::viewer::Viewer`].
//! 6. The origin connection goes back to the pool when the response ended
//!    exactly where the read did ([`origin::reuse`]), watched while idle;
//!    the viewer connection waits for its next request, and after a short
//!    idle spell parks ([`proxy::park`]) so an idle viewer costs a few
//!    hundred bytes.

pub mod admin;
pub mod cache;
pub mod cluster;
pub mod compress;
pub mod config;
pub mod demo;
pub mod http;
pub mod log;
pub mod metrics;
pub mod net;
pub mod origin;
pub mod outcome;
pub mod proxy;
pub mod reload;
pub mod runtime;
pub mod sample_origin;
pub mod signals;
pub mod tls;
