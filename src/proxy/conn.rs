//! One viewer connection: read heads, route, forward, repeat.
//!
//! The connection's read buffer holds the current request head and whatever
//! followed it (body bytes, pipelined requests). Requests are handled one at a
//! time in arrival order, so pipelined requests are answered in order without
//! any queue: the next head is simply already in the buffer.
//!
//! Invariants (see `src/http/LIFECYCLE.md`): nothing read from the network can
//! panic this code; every read and write has a timeout; a request whose
//! framing is in doubt gets 400 and the connection is closed before anything
//! of it reaches an origin.

use super::forward::{self, Request};
use super::Worker;
use crate::http::parse::{parse_request, HeadError, RequestHead};
use crate::http::write::{write_generated_head, Generated};
use crate::net;
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A viewer connection's state between requests.
pub struct Viewer {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// `peer`'s IP as text, for X-Forwarded-For.
    pub peer_ip: String,
    /// Read buffer: the current head, then what followed it.
    pub buf: Vec<u8>,
    pub head: RequestHead,
    /// The origin response head of the current request (reused).
    pub resp: crate::http::response::ResponseHead,
    /// Scratch for heads written to the viewer or the origin.
    pub out: Vec<u8>,
}

/// What happens after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
}

enum HeadOutcome {
    Ready,
    /// Peer closed or went idle: close quietly.
    Gone,
    /// Head not complete in time: 408.
    Timeout,
    Invalid(HeadError),
}

/// Serves one viewer connection to the end.
pub async fn serve(w: Rc<Worker>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let mut v = Viewer {
        stream,
        peer,
        peer_ip: peer.ip().to_string(),
        resp: Default::default(),
        buf: Vec::with_capacity(8 * 1024),
        head: RequestHead::default(),
        out: Vec::with_capacity(4 * 1024),
    };
    let mut first = true;
    loop {
        match read_head(&w, &mut v, first).await {
            HeadOutcome::Ready => {}
            HeadOutcome::Gone => return,
            HeadOutcome::Timeout => {
                send_error(&w, &mut v, 408, false).await;
                return;
            }
            HeadOutcome::Invalid(e) => {
                send_error(&w, &mut v, e.status(), false).await;
                return;
            }
        }
        first = false;
        w.busy.set(w.busy.get() + 1);
        let next = handle(&w, &mut v).await;
        w.busy.set(w.busy.get() - 1);
        match next {
            Next::KeepAlive if !w.shared.is_stopping() => {}
            _ => return,
        }
    }
}

/// Reads until `v.buf` starts with a complete head (parsed into `v.head`).
async fn read_head(w: &Worker, v: &mut Viewer, first: bool) -> HeadOutcome {
    let s = &w.cfg.server;
    let max = s.max_request_head;
    // The first request's head must complete within the header timeout from
    // accept; later ones may idle first, then get the header timeout.
    let mut deadline = if first || !v.buf.is_empty() {
        Some(Instant::now() + s.client_header_timeout)
    } else {
        None
    };
    let mut scanned = 0usize;
    loop {
        if v.buf.len() > scanned {
            // Parse only when a line end arrived since the last try.
            if memchr::memchr(b'\n', &v.buf[scanned..]).is_some() || v.buf.len() >= max {
                match parse_request(&v.buf, max, &mut v.head) {
                    Ok(Some(_)) => return HeadOutcome::Ready,
                    Ok(None) => {}
                    Err(e) => return HeadOutcome::Invalid(e),
                }
            }
            scanned = v.buf.len();
        }
        let (limit, on_timeout) = match deadline {
            Some(d) => (d, HeadOutcome::Timeout),
            None => (Instant::now() + s.client_idle_timeout, HeadOutcome::Gone),
        };
        let buf = std::mem::take(&mut v.buf);
        let fut = net::read_more(&mut v.stream, buf, 4096, max + 1);
        match monoio::time::timeout_at(limit.into(), fut).await {
            Err(_) => return on_timeout,
            Ok((Ok(0), _)) | Ok((Err(_), _)) => return HeadOutcome::Gone,
            Ok((Ok(_), b)) => {
                v.buf = b;
                if deadline.is_none() {
                    deadline = Some(Instant::now() + s.client_header_timeout);
                }
            }
        }
    }
}

/// Routes one parsed request and answers it.
async fn handle(w: &Rc<Worker>, v: &mut Viewer) -> Next {
    let cfg = w.cfg.clone();
    let path = v.head.path_only(&v.buf);
    let behavior = cfg.behavior_for(path);
    if !behavior.allows(v.head.method(&v.buf)) {
        // The body, if any, was not read: close rather than parse it as a request.
        let keep = v.head.keep_alive && v.head.body == crate::http::parse::BodyKind::None;
        send_error(w, v, 403, keep).await;
        if keep {
            let n = v.head.head_len;
            v.buf.drain(..n);
            return Next::KeepAlive;
        }
        return Next::Close;
    }
    // Cache lookup phase: GET/HEAD on a caching behavior would be answered
    // here from the store; until the cache lands, every request is a miss.
    let req = Request {
        behavior,
        received: Instant::now(),
    };
    forward::forward(w, v, req).await
}

/// Writes a generated error response (small text body); `keep` keeps the connection.
pub async fn send_error(w: &Worker, v: &mut Viewer, status: u16, keep: bool) {
    let body = crate::http::write::reason(status);
    let http10 = v.head.minor == 0;
    let mut out = std::mem::take(&mut v.out);
    out.clear();
    let x_cache = if status >= 400 {
        &w.x_cache_error
    } else {
        &w.x_cache_miss
    };
    let mut extra = Vec::with_capacity(64);
    extra.extend_from_slice(b"X-Cache: ");
    extra.extend_from_slice(x_cache);
    extra.extend_from_slice(b"\r\n");
    write_generated_head(
        &mut out,
        &Generated {
            status,
            content_type: "text/plain; charset=utf-8",
            body_len: body.len() + 1,
            keep_alive: keep,
            viewer_http10: http10,
            via: &w.cfg.server.via,
            extra: &extra,
        },
    );
    out.extend_from_slice(body.as_bytes());
    out.push(b'\n');
    let fut = net::write_all(&mut v.stream, out);
    if let Ok((_, o)) = monoio::time::timeout(write_timeout(w), fut).await {
        v.out = o;
    }
}

/// Bound on any single write to a viewer.
pub fn write_timeout(w: &Worker) -> Duration {
    w.cfg.server.client_idle_timeout
}
