//! HTTP/1.1 on the wire, without I/O: parsing heads, body framing, writing heads.
//!
//! - [`parse`]: request heads as spans over the read buffer, strict framing.
//! - [`path`]: request path normalisation (RFC 3986 §6.2.2).
//! - [`query`]: the query parameters a policy keeps (key and forwarding).
//! - [`cookie`]: the cookies of a request's Cookie header (RFC 6265), one
//!   reading for the cache key and the origin request.
//! - [`response`]: origin response heads and their body framing.
//! - [`chunked`]: an incremental chunked-coding decoder.
//! - [`body`]: the request/response body cursor that both directions share.
//! - [`frame`]: chunk framing of ringfront's own: bodies are decoded and
//!   framed again, never passed on with the sender's framing.
//! - [`date`]: HTTP-date in its three formats (RFC 9110 §5.6.7).
//! - [`token`]: the RFC 9110 token grammar.
//! - [`cdn_loop`]: the CDNs a request passed through (RFC 8586).
//! - [`edit`]: the header actions of a behavior, as data the writers apply,
//!   and the response headers policy applied in place to a written head.
//! - [`write`]: heads sent to origins and viewers (the one framing line of
//!   ringfront's own), and generated responses.
//!
//! Everything here is sans-io and unit tested beside the code; the proxy
//! drives it over sockets. The design rules are in `LIFECYCLE.md` beside this file.

pub mod body;
pub mod cdn_loop;
pub mod chunked;
pub mod cookie;
pub mod date;
pub mod edit;
pub mod frame;
pub mod parse;
pub mod path;
pub mod query;
pub mod response;
pub mod token;
pub mod write;
