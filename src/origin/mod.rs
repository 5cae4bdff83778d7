//! The upstream side: where a miss goes and how it gets there.
//!
//! - [`attempt`]: the sans-io state machine deciding, attempt by attempt,
//!   which origin a request goes to, with timeouts and failover.
//! - [`pool`]: the per-worker pool of idle keep-alive connections.
//! - [`client`]: the I/O that carries out the machine's actions over the pool.
//! - [`reuse`]: the sans-io reader of one response that decides whether its
//!   connection may go back to the pool.
//! - [`health`]: `primary_fast_fail`, the one piece of state kept across requests.
//!
//! The split keeps every rule of SPEC §3.5 in one place that is tested without
//! sockets; `client` only performs actions and reports events.

pub mod attempt;
pub mod client;
pub mod health;
pub mod pool;
pub mod reuse;
