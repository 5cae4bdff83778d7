//! Streaming an origin's response that is not stored to its viewer.
//!
//! The head is rewritten once ([`write_response_head`]: hop-by-hop headers
//! dropped, framing of ringfront's own, Via, X-Cache, Cache-Status,
//! Proxy-Status, the behavior's actions, the hooks' lines, and last its
//! response headers policy, [`edit::apply`]); the body goes
//! through the exchange's one reusable buffer, so a 100 MiB body costs the
//! proxy 64 KiB. A chunked body is decoded and framed again (or delimited by
//! close for an HTTP/1.0 viewer). Every read from the origin is bounded by
//! its `response_timeout`, every write to the viewer by the write timeout.
//!
//! A response being recorded whose body outgrew its room (`record`) is
//! streamed on from where the recording stopped ([`resume`]): the head, the
//! body recorded so far (written from its buffer, not copied), the data the
//! recording had no room for, then the rest as it comes.
//!
//! With `compress = true`, a response that may be compressed
//! ([`compressed::on_the_fly`](super::compressed::on_the_fly)) is coded as
//! it streams, in the coding the viewer's Accept-Encoding selects: the head
//! says so ([`compress::head::rewrite`]: Content-Encoding, `Vary:
//! Accept-Encoding`, a weak ETag) and has no Content-Length (chunked to an
//! HTTP/1.1 viewer, delimited by close to an HTTP/1.0 one). The coder takes
//! the data that came with the head at once (at most the 64 KiB buffer,
//! about half a millisecond), then reads of at most [`SLICE`] bytes, so a
//! step of the event loop spent coding stays near 0.2 ms.
//!
//! A body that ends short (its length not met, chunked without the last
//! chunk, a close-delimited one ended by a reset rather than a FIN: RFC 9112
//! §8) is a failed body: the viewer's connection is aborted, never ended as
//! if the response were whole.

use super::exchange::Exchange;
use super::viewer::Viewer;
use crate::cache::store::Reservation;
use crate::compress::{self, Coding, Encoder};
use crate::config::Behavior;
use crate::http::edit;
use crate::http::frame;
use crate::http::response::RespBody;
use crate::http::write::{write_response_head, AttemptCtx, ResponseRewrite, ViewerFraming};
use crate::net;
use crate::origin::attempt::Event;
use crate::origin::pool::OriginConn;
use crate::origin::reuse::{ResponseReader, Reuse};
use std::time::Duration;

/// What delivering a response came to.
pub(super) struct Delivered {
    /// For the machine: `BodyDone`, `BodyFailed` or `ViewerGone`.
    pub event: Event,
    /// The origin connection, when it can go back to the pool.
    pub conn: Option<OriginConn>,
    /// The viewer connection stays open.
    pub viewer_keep: bool,
    /// Bytes written to the viewer.
    pub bytes: u64,
}

/// The largest read from the origin while its body is compressed on the
/// fly: about 0.16 ms of coding (see `compress::codec`).
const SLICE: usize = 16 * 1024;

/// One response on its way: the body's reader and the viewer's framing.
struct Stream<'e, 'w> {
    ex: &'e mut Exchange<'w>,
    reader: ResponseReader,
    framing: ViewerFraming,
    /// The origin's body is chunked: decoded, then framed again.
    decode: bool,
    /// The body is compressed on the fly: its coding, and the coder until
    /// the body ends.
    coding: Option<Coding>,
    encoder: Option<Encoder>,
    /// The worker's streaming-coder slot this one holds (`MAX_STREAMS`).
    _slot: Option<compress::StreamSlot>,
    /// What the coder gave for the data at hand.
    coded: Vec<u8>,
    ranges: Vec<std::ops::Range<usize>>,
    timeout: Duration,
    bytes: u64,
}

/// Streams the response the exchange holds to the viewer. `keep`: the
/// request allows the viewer connection to stay open.
pub(super) async fn deliver(ex: &mut Exchange<'_>, v: &mut Viewer, mut c: OriginConn, keep: bool) -> Delivered {
    let reader = ResponseReader::after_head(&ex.head);
    let (coding, slot) = super::compressed::on_the_fly(ex, v).unzip();
    let (mut s, viewer_keep) = Stream::new(ex, reader, v, (keep, coding, slot));
    let end = match s.head_and_first(v, viewer_keep).await {
        Ok(()) => s.rest(v, &mut c).await,
        Err(ev) => End::Failed(ev),
    };
    s.delivered(end, viewer_keep, c)
}

/// A response whose recording outgrew its room, left to stream.
pub(super) struct Partial {
    /// The origin's response head as received (`ex.head`'s spans point
    /// into it).
    pub head: Vec<u8>,
    /// The body data recorded so far.
    pub body: bytes::Bytes,
    /// Its room in the recording share, held until it is written.
    pub room: Reservation,
    /// The body's reader, past all that was read.
    pub reader: ResponseReader,
    /// Body data in the exchange's buffer, after `body`, that the reader
    /// took but the recording had no room for.
    pub pending: std::ops::Range<usize>,
}

/// Streams the rest of the response in `p` to the viewer: the head, what
/// was recorded and is pending, then the rest as it comes. `keep`: the
/// request allows the viewer connection to stay open.
pub(super) async fn resume(
    ex: &mut Exchange<'_>,
    v: &mut Viewer,
    mut c: OriginConn,
    keep: bool,
    p: Partial,
) -> Delivered {
    let Partial {
        head,
        body,
        room,
        reader,
        pending,
    } = p;
    let (mut s, viewer_keep) = Stream::new(ex, reader, v, (keep, None, None));
    let end = match s.recorded(v, viewer_keep, &head, body).await {
        Ok(open_chunk) => {
            drop(room);
            match s.pending(v, pending, open_chunk).await {
                Ok(()) => s.rest(v, &mut c).await,
                Err(ev) => End::Failed(ev),
            }
        }
        Err(ev) => End::Failed(ev),
    };
    s.delivered(end, viewer_keep, c)
}

/// How the body ended.
enum End {
    Done {
        reusable: bool,
    },
    /// A close-delimited body ended with the connection.
    ClosedAtEof,
    /// `BodyFailed` (the origin) or `ViewerGone`.
    Failed(Event),
}

impl<'e, 'w> Stream<'e, 'w> {
    /// A stream of the response the exchange holds, its body read by
    /// `reader` (and coded in `coding`), and whether the viewer connection
    /// may stay open after it (`keep`: the request allows it).
    fn new(
        ex: &'e mut Exchange<'w>,
        reader: ResponseReader,
        v: &Viewer,
        (keep, coding, slot): (bool, Option<Coding>, Option<compress::StreamSlot>),
    ) -> (Self, bool) {
        let framing = match coding {
            // The coded length is known only at its end.
            Some(_) if v.http10() => ViewerFraming::Close,
            Some(_) => ViewerFraming::Chunked,
            None => ViewerFraming::of(&ex.head, v.http10()),
        };
        let viewer_keep = keep && framing != ViewerFraming::Close && !ex.w.shared.is_stopping();
        let s = Stream {
            reader,
            decode: ex.head.body() == RespBody::Chunked,
            framing,
            coding,
            encoder: coding.map(Encoder::stream),
            _slot: slot,
            coded: Vec::new(),
            ranges: Vec::new(),
            timeout: super::answers::write_timeout(ex.w),
            bytes: 0,
            ex,
        };
        (s, viewer_keep)
    }

    /// What the stream came to, given how it ended.
    fn delivered(self, end: End, viewer_keep: bool, c: OriginConn) -> Delivered {
        let (event, reusable, viewer_keep) = match end {
            End::Done { reusable } => (Event::BodyDone, reusable, viewer_keep),
            End::ClosedAtEof => (Event::BodyDone, false, viewer_keep),
            End::Failed(ev) => (ev, false, false),
        };
        Delivered {
            event,
            conn: reusable.then_some(c),
            viewer_keep,
            bytes: self.bytes,
        }
    }

    /// Feeds origin bytes in `ex.buf[from..]` to the reader and returns the
    /// length of the body data they hold, compacted to `ex.buf[from..]`
    /// when decoding.
    fn feed(&mut self, from: usize) -> Result<usize, Event> {
        let decode = self.decode;
        self.ranges.clear();
        let ranges = &mut self.ranges;
        let buf = &mut self.ex.buf;
        let used = match self.reader.feed(&buf[from..], |r| {
            if decode {
                ranges.push(r)
            }
        }) {
            Ok(f) => f.used,
            Err(_) => return Err(Event::BodyFailed),
        };
        Ok(if decode {
            frame::compact(&mut buf[from..], &self.ranges)
        } else {
            used
        })
    }

    /// Writes the rewritten head and the body bytes that came with it.
    async fn head_and_first(&mut self, v: &mut Viewer, viewer_keep: bool) -> Result<(), Event> {
        let mut out = v.take_out();
        self.write_head(v, viewer_keep, &mut out, &self.ex.buf);
        let start = self.ex.head.head_len;
        let n = self.feed(start)?;
        self.append_body(&mut out, start..start + n)?;
        self.send(v, out).await
    }

    /// Appends the body bytes in `ex.buf[range]` to `out` in the viewer's
    /// framing (a chunk of ringfront's own, and the last chunk when the body
    /// ended there), compressed first when the stream codes.
    fn append_body(&mut self, out: &mut Vec<u8>, range: std::ops::Range<usize>) -> Result<(), Event> {
        let data = self.ex.buf.get(range).unwrap_or_default();
        let done = self.reader.is_done();
        let data = match self.encoder.as_mut() {
            Some(e) => {
                self.coded.clear();
                let mut ok = e.push(data, &mut self.coded);
                if done {
                    ok &= self.encoder.take().is_some_and(|e| e.finish(&mut self.coded));
                }
                if !ok {
                    return Err(Event::BodyFailed);
                }
                &self.coded[..]
            }
            None => data,
        };
        if self.framing == ViewerFraming::Chunked {
            frame::chunk(out, data, done);
        } else {
            out.extend_from_slice(data);
        }
        Ok(())
    }

    /// Writes `out` to the viewer and counts it.
    async fn send(&mut self, v: &mut Viewer, out: Vec<u8>) -> Result<(), Event> {
        let len = out.len() as u64;
        if !v.send(out, self.timeout).await {
            return Err(Event::ViewerGone);
        }
        self.bytes += len;
        Ok(())
    }

    /// Writes the rewritten head; `origin` holds the bytes `ex.head`'s spans
    /// point into. Both ways a streamed response starts (its head with the
    /// first body bytes, or after a recording that outgrew its room) come
    /// here.
    fn write_head(&self, v: &Viewer, viewer_keep: bool, out: &mut Vec<u8>, origin: &[u8]) {
        let ex = &*self.ex;
        let start = out.len();
        let w = ex.w;
        let mut ps = Vec::new();
        ex.proxy_status(&mut ps);
        let step = ex.machine.current();
        let rw = ResponseRewrite {
            via: &w.cfg.server.via,
            x_cache: super::answers::x_cache(w, ex.head.status),
            cache_status: cache_status(w, ex.behavior, v.method()),
            proxy_status: &ps,
            actions: ex.response_actions(),
            ctx: AttemptCtx {
                attempt: ex.machine.attempts(),
                origin: w.cfg.hop_id(step.origin),
                role: step.role.as_str(),
            },
            framing: self.framing,
            keep_alive: viewer_keep,
            viewer_http10: v.http10(),
            extra: &ex.hook_lines,
        };
        let Some(coding) = self.coding else {
            write_response_head(out, origin, &ex.head, &rw);
            // SPEC §5: the behavior's viewer_response applies last.
            edit::apply(out, start, &ex.behavior.viewer_response);
            return;
        };
        // The head of the coded representation, rewritten from the plain
        // one (a response coded on the fly allocates its coder anyway).
        let mut plain = Vec::with_capacity(ex.head.head_len + 256);
        write_response_head(&mut plain, origin, &ex.head, &rw);
        compress::head::rewrite(&plain, Some(coding), None, out);
        edit::apply(out, start, &ex.behavior.viewer_response);
    }

    /// Writes the head (from `origin`, the origin's head as received) and
    /// `body`, the data recorded so far, in one writev. In a chunked framing
    /// that data is one chunk whose closing CRLF is left to
    /// [`Self::pending`]: true when such a chunk is open.
    async fn recorded(
        &mut self,
        v: &mut Viewer,
        viewer_keep: bool,
        origin: &[u8],
        body: bytes::Bytes,
    ) -> Result<bool, Event> {
        let mut hb = v.take_hit();
        hb.head.clear();
        self.write_head(v, viewer_keep, &mut hb.head, origin);
        let open_chunk = self.framing == ViewerFraming::Chunked && !body.is_empty();
        if open_chunk {
            frame::size_line(&mut hb.head, body.len());
        }
        hb.body = body;
        let len = hb.len() as u64;
        if !v.send_head_and_body(hb, self.timeout).await {
            return Err(Event::ViewerGone);
        }
        self.bytes += len;
        Ok(open_chunk)
    }

    /// Writes the data in `ex.buf[pending]` (after what [`Self::recorded`]
    /// wrote, closing its chunk when `open_chunk`), and the last chunk if
    /// the body ended there.
    async fn pending(
        &mut self,
        v: &mut Viewer,
        pending: std::ops::Range<usize>,
        open_chunk: bool,
    ) -> Result<(), Event> {
        let mut out = v.take_out();
        if open_chunk {
            out.extend_from_slice(b"\r\n");
        }
        self.append_body(&mut out, pending)?;
        self.send(v, out).await
    }

    /// Reads the rest of the body from the origin and writes it on.
    async fn rest(&mut self, v: &mut Viewer, c: &mut OriginConn) -> End {
        let w = self.ex.w;
        let rt = self.ex.machine.current().response_timeout;
        let max = if self.encoder.is_some() { SLICE } else { super::IO_BUF };
        while !self.reader.is_done() {
            let mut buf = std::mem::take(&mut self.ex.buf);
            buf.clear();
            let fut = net::read_more(c.stream(), buf, max, max);
            self.ex.buf = match monoio::time::timeout(rt, fut).await {
                Err(_) => {
                    self.ex.buf = w.take_buf();
                    return End::Failed(Event::BodyFailed);
                }
                Ok((Ok(n), b)) if n > 0 => b,
                Ok((Ok(_), b)) => {
                    self.ex.buf = b;
                    // EOF completes a close-delimited body (never reusable).
                    return match self.reader.eof() {
                        Ok(_) => End::ClosedAtEof,
                        Err(_) => End::Failed(Event::BodyFailed),
                    };
                }
                // A reset ends no body well (RFC 9112 §8).
                Ok((Err(_), b)) => {
                    self.ex.buf = b;
                    return End::Failed(Event::BodyFailed);
                }
            };
            let n = match self.feed(0) {
                Ok(n) => n,
                Err(ev) => return End::Failed(ev),
            };
            if let Err(ev) = self.write_data(v, n).await {
                return End::Failed(ev);
            }
        }
        End::Done {
            reusable: self.reader.verdict() == Reuse::Reusable,
        }
    }

    /// Writes body data `ex.buf[..n]` to the viewer in its framing.
    async fn write_data(&mut self, v: &mut Viewer, n: usize) -> Result<(), Event> {
        if self.encoder.is_some() {
            let mut out = v.take_out();
            self.append_body(&mut out, 0..n)?;
            if out.is_empty() {
                // The coder holds it all back for now.
                v.put_out(out);
                return Ok(());
            }
            return self.send(v, out).await;
        }
        let (r, len) = if self.decode && self.framing == ViewerFraming::Chunked {
            let mut out = v.take_out();
            frame::chunk(&mut out, &self.ex.buf[..n], self.reader.is_done());
            let len = out.len();
            (v.send(out, self.timeout).await, len)
        } else {
            let buf = std::mem::take(&mut self.ex.buf);
            let (r, b) = v.write_range(buf, 0..n, self.timeout).await;
            self.ex.buf = b.unwrap_or_else(|| self.ex.w.take_buf());
            (r.is_ok(), n)
        };
        if !r {
            return Err(Event::ViewerGone);
        }
        self.bytes += len as u64;
        Ok(())
    }
}

/// Cache-Status for a forwarded response (RFC 9211 `fwd` reasons).
fn cache_status<'w>(w: &'w super::Worker, b: &Behavior, method: &[u8]) -> &'w [u8] {
    if !b.cache {
        &w.cache_status_bypass
    } else if !matches!(method, b"GET" | b"HEAD") {
        &w.cache_status_method
    } else {
        &w.cache_status_miss
    }
}
