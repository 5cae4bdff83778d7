//! Answers ringfront makes up itself: client errors (400, 403, 408, 431…),
//! the origin group's failure (an `error_response` page, 502, 504), and the
//! lines that say why (`Proxy-Status`, RFC 9209).

use super::viewer::Viewer;
use super::{Next, Worker};
use crate::http::edit::{self, ResponseEdits};
use crate::http::write::{write_generated_head, Generated};
use crate::origin::attempt::{AttemptMachine, Failure};
use std::time::Duration;

/// Bound on any single write to a viewer.
pub fn write_timeout(w: &Worker) -> Duration {
    w.cfg.server.client_idle_timeout
}

/// Writes a generated error response to a request refused by the proxy
/// (small text body); `keep` keeps the connection. `edits`: the
/// `viewer_response` of the request's behavior, `None` for a request that
/// was never routed (400, 408, 431 on its head: no behavior, so no policy
/// to apply). Returns the bytes written.
pub async fn client_error(w: &Worker, v: &mut Viewer, status: u16, keep: bool, edits: Option<&ResponseEdits>) -> u64 {
    let body = crate::http::write::reason(status);
    let mut extra = Vec::with_capacity(64);
    extra.extend_from_slice(b"X-Cache: ");
    extra.extend_from_slice(x_cache(w, status));
    extra.extend_from_slice(b"\r\n");
    let mut out = v.take_out();
    write_generated_head(
        &mut out,
        &Generated {
            status,
            content_type: "text/plain; charset=utf-8",
            body_len: body.len() + 1,
            keep_alive: keep,
            viewer_http10: v.http10(),
            via: &w.cfg.server.via,
            extra: &extra,
        },
    );
    if let Some(edits) = edits {
        // SPEC §5: the behavior's viewer_response applies last.
        edit::apply(&mut out, 0, edits);
    }
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
    let len = out.len() as u64;
    if v.send(out, write_timeout(w)).await {
        len
    } else {
        0
    }
}

/// The answer when no origin response is delivered.
pub(super) struct Failed<'a> {
    pub status: u16,
    /// Serve the `error_response` page configured for `status`.
    pub page: bool,
    pub keep: bool,
    /// The `Proxy-Status` value naming the failed attempts (may be empty).
    pub proxy_status: &'a [u8],
    /// The behavior's `viewer_response`.
    pub edits: &'a ResponseEdits,
}

/// Answers with an error page or a generated status; returns what follows,
/// the status sent and the bytes written.
pub(super) async fn origin_failed(w: &Worker, v: &mut Viewer, f: &Failed<'_>) -> (Next, u16, u64) {
    let cfg = &w.cfg;
    let keep = f.keep && !w.shared.is_stopping();
    let (status, body, ctype): (u16, &[u8], &str) = match (f.page, cfg.error_page(f.status)) {
        (true, Some(p)) => (p.response_status, &p.body, p.content_type),
        _ => (
            f.status,
            crate::http::write::reason(f.status).as_bytes(),
            "text/plain; charset=utf-8",
        ),
    };
    let mut extra = Vec::with_capacity(160);
    for part in [
        &b"Via: 1.1 "[..],
        cfg.server.via.as_bytes(),
        b"\r\nX-Cache: ",
        x_cache(w, status),
        b"\r\nCache-Status: ",
        &w.cache_status_miss,
        b"\r\n",
    ] {
        extra.extend_from_slice(part);
    }
    proxy_status_line(&mut extra, f.proxy_status);
    let mut out = v.take_out();
    write_generated_head(
        &mut out,
        &Generated {
            status,
            content_type: ctype,
            body_len: body.len(),
            keep_alive: keep,
            viewer_http10: v.http10(),
            via: &cfg.server.via,
            extra: &extra,
        },
    );
    // SPEC §5: the behavior's viewer_response applies last.
    edit::apply(&mut out, 0, f.edits);
    if !v.is_head_request() {
        out.extend_from_slice(body);
    }
    let len = out.len() as u64;
    if v.send(out, write_timeout(w)).await {
        (if keep { Next::KeepAlive } else { Next::Close }, status, len)
    } else {
        (Next::Close, status, 0)
    }
}

/// `X-Cache` for a response not served from the cache.
pub(super) fn x_cache(w: &Worker, status: u16) -> &[u8] {
    if status >= 400 {
        &w.x_cache_error
    } else {
        &w.x_cache_miss
    }
}

/// The `Proxy-Status` value for `m`'s failed attempts: one member each.
pub(super) fn proxy_status(w: &Worker, m: &AttemptMachine<'_>, out: &mut Vec<u8>) {
    use std::io::Write;
    for (i, f) in m.failures().iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        let _ = write!(
            out,
            "{}; error={}; next-hop=\"{}\"",
            w.cfg.server.via,
            f.failure.error_type(),
            w.cfg.hop_id(f.origin)
        );
        if let Failure::Status(s) = f.failure {
            let _ = write!(out, "; received-status={s}");
        }
    }
}

/// Appends `Proxy-Status: value` when there is a value.
pub(super) fn proxy_status_line(out: &mut Vec<u8>, value: &[u8]) {
    if !value.is_empty() {
        out.extend_from_slice(b"Proxy-Status: ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
}
