//! Answering from a stored object: a fresh hit, a stale one (served while
//! refreshed, or because the origins failed), a revalidated one, and the
//! leader of a recorded miss.
//!
//! The stored head (or a 304/206/416 head built from it), the per-response
//! lines (Age, X-Cache, Cache-Status, Connection), the behavior's response
//! headers policy over all of it, then the body straight from the shared
//! buffer, without a copy, in one writev. Nothing here allocates on a hit:
//! the head buffer is the connection's, reused, and edited in place.

use super::viewer::Viewer;
use super::{Next, Worker};
use crate::cache::store::Object;
use crate::http::edit::{self, ResponseEdits};
use crate::http::write::HitLabel;
use crate::outcome::{Detail, Outcome};
use std::time::Instant;

/// Answers from `obj`. `extra`: lines to add (Proxy-Status); `edits`: the
/// behavior's `viewer_response`. Returns what follows, the status sent and
/// the bytes written; the caller logs and drains the request.
pub async fn answer(
    w: &Worker,
    v: &mut Viewer,
    obj: &Object,
    now: Instant,
    label: HitLabel,
    extra: &[u8],
    edits: &ResponseEdits,
) -> (Next, u16, u64) {
    use crate::cache::serve;
    let keep = v.head().keep_alive && !w.shared.is_stopping();
    let kind = serve::plan(
        obj,
        v.header(b"if-none-match"),
        v.header(b"if-modified-since"),
        (v.header(b"range"), v.header(b"if-range")),
    );
    let mut hb = v.take_hit();
    hb.head.clear();
    serve::write_head(&mut hb.head, obj, &kind);
    hb.head.extend_from_slice(extra);
    crate::http::write::write_hit_lines(
        &mut hb.head,
        &w.cfg.server.via,
        obj.age(now).as_secs(),
        obj.ttl_left_secs(now),
        label,
        keep,
        v.http10(),
    );
    // SPEC §5: the behavior's viewer_response applies last, over Age,
    // X-Cache and Cache-Status too.
    edit::apply(&mut hb.head, 0, edits);
    hb.body = if v.is_head_request() {
        bytes::Bytes::new()
    } else {
        serve::body(obj, &kind)
    };
    let status = match kind {
        serve::HitKind::Full => obj.status,
        serve::HitKind::NotModified => 304,
        serve::HitKind::Partial(_) => 206,
        serve::HitKind::Unsatisfiable => 416,
    };
    let bytes = hb.len() as u64;
    let ok = v.send_head_and_body(hb, super::answers::write_timeout(w)).await;
    let next = if ok && keep { Next::KeepAlive } else { Next::Close };
    (next, status, if ok { bytes } else { 0 })
}

/// A fresh hit: answer, log, and make the connection ready for the next
/// request. `edits`: the behavior's `viewer_response`.
pub async fn serve(w: &Worker, v: &mut Viewer, obj: &Object, received: Instant, edits: &ResponseEdits) -> Next {
    let (next, status, bytes) = answer(w, v, obj, received, HitLabel::Hit, b"", edits).await;
    let outcome = Outcome::new(Detail::Hit, status);
    w.metrics().request(outcome.class(), Some(received.elapsed()));
    if w.log.enabled() {
        w.log.record(&crate::log::Entry {
            client: v.peer(),
            method: v.method(),
            host: v.host(),
            path: v.target(),
            outcome,
            bytes,
            origin: None,
            attempts: 0,
            total: received.elapsed(),
            origin_time: None,
        });
    }
    if next == Next::KeepAlive {
        let n = v.head().head_len;
        v.finish(n, b"");
    }
    next
}
