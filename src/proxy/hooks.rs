//! Per-attempt hooks: the proxy's extension points toward origins.
//!
//! Like Pingora's `ProxyHttp` phases, but deliberately small: two calls per
//! attempt, made by the worker thread on the request path, so an
//! implementation must be quick and must not block. They run once per
//! attempt that reaches the point (on failover, twice per request — the same
//! as CloudFront's Lambda@Edge origin triggers):
//!
//! - [`OriginHooks::origin_request`] before the request head goes to an
//!   origin; it may add header lines;
//! - [`OriginHooks::origin_response`] when an origin's response head arrives
//!   (also for a head that triggers failover); it may add header lines to the
//!   response the viewer gets, if this is the response delivered.
//!
//! The config form is the behavior's `origin_request` / `origin_response`
//! header actions, applied by the proxy itself; code hooks run after them.
//!
//! ```
//! use ringfront::proxy::hooks::{AttemptInfo, HeaderLines, OriginHooks};
//!
//! struct Tag;
//! impl OriginHooks for Tag {
//!     fn origin_request(&self, a: &AttemptInfo<'_>, h: &mut HeaderLines<'_>) {
//!         h.add("x-edge-try", &format!("{}:{}", a.attempt, a.origin));
//!     }
//! }
//! ```

use crate::origin::attempt::Role;

/// Which attempt a hook runs for.
#[derive(Debug, Clone, Copy)]
pub struct AttemptInfo<'a> {
    /// 1-based across the request (connection attempts included).
    pub attempt: u32,
    /// The origin's id.
    pub origin: &'a str,
    pub role: Role,
    pub method: &'a [u8],
    /// Path and query as the viewer sent them.
    pub path: &'a [u8],
}

/// Header lines a hook adds; names and values are checked, so a hook cannot
/// break the framing of the message it edits.
pub struct HeaderLines<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> HeaderLines<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>) -> Self {
        HeaderLines { out }
    }

    /// Adds `name: value`. Returns false (and adds nothing) for a name that
    /// is not a token, a value with CR, LF or NUL, or a framing header
    /// (Content-Length, Transfer-Encoding, Connection, Host).
    pub fn add(&mut self, name: &str, value: &str) -> bool {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let framing = ["content-length", "transfer-encoding", "connection", "host"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        if !token || framing || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return false;
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        true
    }
}

/// Code hooks a library user implements; see the module doc.
pub trait OriginHooks: Send + Sync + 'static {
    /// Before the request goes to the origin of this attempt.
    fn origin_request(&self, attempt: &AttemptInfo<'_>, headers: &mut HeaderLines<'_>) {
        let _ = (attempt, headers);
    }

    /// When a response head arrives from the origin of this attempt.
    fn origin_response(&self, attempt: &AttemptInfo<'_>, status: u16, headers: &mut HeaderLines<'_>) {
        let _ = (attempt, status, headers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lines_refuse_what_would_break_framing() {
        let mut out = Vec::new();
        let mut h = HeaderLines::new(&mut out);
        assert!(h.add("x-ok", "1"));
        assert!(!h.add("x bad", "1"));
        assert!(!h.add("x-inject", "a\r\nx-evil: 1"));
        assert!(!h.add("Content-Length", "0"));
        assert!(!h.add("", "v"));
        assert_eq!(out, b"x-ok: 1\r\n");
    }
}
