//! The viewer's request on its way to an origin: how its body travels.
//!
//! A body up to [`REPLAY_MAX`] is read whole before the first attempt (a
//! chunked one decoded, then sent with a Content-Length), so a failed
//! attempt can be sent again to a fresh connection or to the secondary.
//! A larger one is streamed once, from the viewer to a fresh connection,
//! framed again by ringfront (SPEC §3.1). `Expect: 100-continue` is answered
//! by the proxy when it is about to read the body.

use super::exchange::{Outgoing, Sent, Stop};
use super::viewer::{write_within, Viewer};
use super::Worker;
use crate::http::body::BodyCursor;
use crate::http::frame;
use crate::http::parse::{BodyKind, RequestHead};
use crate::http::write::RequestFraming;
use crate::origin::pool::OriginConn;
use std::time::Instant;

/// Request bodies up to this size are read whole before forwarding, which
/// makes the request replayable (retry, failover).
pub const REPLAY_MAX: u64 = 64 * 1024;

/// How the request body travels.
enum Body {
    /// No body, or the whole body is `buf[head_len..head_len + n]`.
    Whole(usize),
    /// A chunked body that came whole with the head (up to [`REPLAY_MAX`]),
    /// decoded: sent with a Content-Length, replayable.
    Decoded(Vec<u8>),
    /// Streamed from the viewer while sending.
    Stream(BodyCursor),
}

/// The viewer's request, as an exchange sends it.
pub(super) struct Upload<'v> {
    pub v: &'v mut Viewer,
    body: Body,
    continue_needed: bool,
    /// Bytes of the viewer's buffer that belong to this request (head and
    /// the body read so far).
    pub consumed: usize,
    /// Bytes read past the end of a streamed body (the next request).
    pub leftover: Vec<u8>,
    /// The body has been read to its end (else the connection cannot carry
    /// another request).
    pub body_done: bool,
    /// Read buffer for a streamed body.
    tmp: Vec<u8>,
}

impl<'v> Upload<'v> {
    /// Decides how the body travels, reading a small one whole (after a
    /// `100 Continue` when the viewer waits for one). `Err`: the viewer
    /// failed (`ViewerGone`) or its chunked framing is malformed.
    pub async fn prepare(w: &Worker, v: &'v mut Viewer) -> Result<Upload<'v>, Stop> {
        let head_len = v.head().head_len;
        let continue_needed = v.head().expect_continue && !v.http10();
        let (body, consumed) = match v.head().body {
            BodyKind::None => (Body::Whole(0), head_len),
            BodyKind::Length(n) if n <= REPLAY_MAX => {
                let n = n as usize;
                if v.buf().len() < head_len + n {
                    if continue_needed && !send_continue(v, super::answers::write_timeout(w)).await {
                        return Err(Stop::ViewerGone);
                    }
                    if !v.fill_to(head_len + n, super::answers::write_timeout(w)).await {
                        return Err(Stop::ViewerGone);
                    }
                }
                (Body::Whole(n), head_len + n)
            }
            BodyKind::Length(n) => (Body::Stream(BodyCursor::length(n)), head_len),
            // What came with the head is checked first: a bad chunk line there
            // is refused before anything reaches an origin (SPEC §3.1).
            BodyKind::Chunked => match frame::decode_buffered(&v.buf()[head_len..], REPLAY_MAX as usize) {
                Ok(frame::Buffered::Whole { data, raw }) => (Body::Decoded(data), head_len + raw),
                Ok(frame::Buffered::Partial) => (Body::Stream(BodyCursor::chunked()), head_len),
                Err(_) => return Err(Stop::Malformed),
            },
        };
        let body_done = !matches!(body, Body::Stream(_));
        Ok(Upload {
            v,
            body,
            continue_needed,
            consumed,
            leftover: Vec::new(),
            body_done,
            tmp: Vec::new(),
        })
    }

    /// The request can be sent again (its body is held whole).
    pub fn replayable(&self) -> bool {
        !matches!(self.body, Body::Stream(_))
    }

    /// How the forwarded body is framed.
    pub fn framing(&self) -> RequestFraming {
        match &self.body {
            Body::Decoded(data) => RequestFraming::Length(data.len() as u64),
            _ => RequestFraming::of(self.v.head()),
        }
    }

    /// Streams the rest of the body after the head went out.
    async fn stream(&mut self, w: &Worker, c: &mut OriginConn) -> Sent {
        let Body::Stream(cursor) = &mut self.body else {
            return Sent::Done;
        };
        let mut s = Streaming {
            cursor,
            chunked: self.v.head().body == BodyKind::Chunked,
            framed: Vec::new(),
            timeout: super::answers::write_timeout(w),
        };
        match s
            .run(self.v, c, self.continue_needed, &mut self.tmp, &mut self.leftover)
            .await
        {
            Ok(used) => {
                self.consumed = self.v.head().head_len + used;
                self.body_done = true;
                Sent::Done
            }
            Err(sent) => sent,
        }
    }
}

impl Outgoing for Upload<'_> {
    fn request(&self) -> (&[u8], &RequestHead) {
        (self.v.buf(), self.v.head())
    }

    fn client_ip(&self) -> &[u8] {
        self.v.peer_ip().as_bytes()
    }

    fn scratch(&mut self) -> Vec<u8> {
        self.v.take_out()
    }

    async fn send(&mut self, w: &Worker, c: &mut OriginConn, mut head: Vec<u8>, deadline: Instant) -> Sent {
        let head_len = self.v.head().head_len;
        match &self.body {
            Body::Whole(n) => head.extend_from_slice(&self.v.buf()[head_len..head_len + n]),
            Body::Decoded(data) => head.extend_from_slice(data),
            Body::Stream(_) => {}
        }
        let n = head.len();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (r, out) = write_within(c.stream(), head, 0..n, timeout).await;
        self.v.put_out(out.unwrap_or_else(|| Vec::with_capacity(4096)));
        if r.is_err() {
            return Sent::OriginFailed;
        }
        self.stream(w, c).await
    }

    /// RFC 9110 §15.2: "A server MUST NOT send a 1xx response to an
    /// HTTP/1.0 client."
    async fn interim(&mut self, w: &Worker, head: Vec<u8>) {
        if self.v.http10() {
            self.v.put_out(head);
        } else {
            // A viewer that cannot take it fails the final write too.
            self.v.send(head, super::answers::write_timeout(w)).await;
        }
    }
}

/// A body streamed from the viewer to an origin connection.
struct Streaming<'a> {
    cursor: &'a mut BodyCursor,
    chunked: bool,
    /// A chunked body framed again by ringfront.
    framed: Vec<u8>,
    timeout: std::time::Duration,
}

impl Streaming<'_> {
    /// Feeds body bytes to the cursor; a chunked body is framed again into
    /// `framed` (SPEC §3.1). Returns the bytes of `input` that are body.
    fn pass(&mut self, input: &[u8]) -> Result<usize, Sent> {
        self.framed.clear();
        let r = if self.chunked {
            frame::reframe(self.cursor, input, &mut self.framed)
        } else {
            self.cursor.feed(input, |_| {})
        };
        r.map_err(|_| Sent::Stopped(Stop::Malformed))
    }

    /// Writes `buf[..n]` (or, chunked, what `pass` framed) to the origin;
    /// returns `buf` unless the write timed out.
    async fn forward(
        &mut self,
        c: &mut OriginConn,
        buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> Result<Vec<u8>, Sent> {
        let r = if self.chunked {
            let framed = std::mem::take(&mut self.framed);
            let n = framed.len();
            let (r, f) = write_within(c.stream(), framed, 0..n, self.timeout).await;
            self.framed = f.unwrap_or_default();
            (r, Some(buf))
        } else {
            write_within(c.stream(), buf, range, self.timeout).await
        };
        match r {
            (Ok(()), b) => Ok(b.unwrap_or_default()),
            (Err(()), _) => Err(Sent::OriginFailed),
        }
    }

    /// Streams the body: what came with the head, then the rest through
    /// `tmp` (the head stays in the viewer's buffer). Returns the body
    /// bytes that came from the viewer's buffer.
    async fn run(
        &mut self,
        v: &mut Viewer,
        c: &mut OriginConn,
        continue_needed: bool,
        tmp: &mut Vec<u8>,
        leftover: &mut Vec<u8>,
    ) -> Result<usize, Sent> {
        let head_len = v.head().head_len;
        let used = self.pass(&v.buf()[head_len..])?;
        if used > 0 {
            let scratch = v.take_out();
            let mut first = scratch;
            first.extend_from_slice(&v.buf()[head_len..head_len + used]);
            let n = first.len();
            let b = self.forward(c, first, 0..n).await?;
            v.put_out(b);
        }
        if self.cursor.is_done() {
            return Ok(used);
        }
        if continue_needed && used == 0 && !send_continue(v, self.timeout).await {
            return Err(Sent::Stopped(Stop::ViewerGone));
        }
        v.truncate(head_len + used);
        loop {
            let mut b = std::mem::take(tmp);
            b.clear();
            let Some(b) = v.read_into(b, super::IO_BUF, self.timeout).await else {
                return Err(Sent::Stopped(Stop::ViewerGone));
            };
            let n = self.pass(&b)?;
            if n < b.len() {
                leftover.extend_from_slice(&b[n..]);
            }
            *tmp = self.forward(c, b, 0..n).await?;
            if self.cursor.is_done() {
                return Ok(used);
            }
        }
    }
}

/// `100 Continue`: the proxy is about to read the body (RFC 9110 §10.1.1).
/// ringfront's own answer to the viewer's Expect, not a response of the
/// origin's, so written bare: the behavior's viewer_response edits the
/// origin's interim responses and every final one (SPEC §5).
async fn send_continue(v: &mut Viewer, timeout: std::time::Duration) -> bool {
    let mut out = v.take_out();
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    v.send(out, timeout).await
}
