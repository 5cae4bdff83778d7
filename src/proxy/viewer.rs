//! The viewer's side of one connection: its socket, the buffer its requests
//! arrive in, and the reusable buffers its answers are written from.
//!
//! The read buffer holds the current request head and whatever followed it
//! (body bytes, pipelined requests); [`Viewer::read_head`] fills it and
//! parses the head in place, and [`Viewer::finish`] drops the request's
//! bytes once it has been answered, so the next head is simply already
//! there. Fields are private: the phases see the request through accessors
//! and write through the methods here, each bounded by a timeout.

use super::park::PARK_AFTER;
use crate::config::Server;
use crate::http::parse::{parse_request, HeadError, RequestHead};
use crate::http::response::ResponseHead;
use crate::net;
use crate::tls::Stream;
use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant};

/// A viewer connection's state between requests.
pub struct Viewer {
    /// Plain TCP, or TLS from a `[server.tls]` listener.
    stream: Stream,
    peer: SocketAddr,
    /// `peer`'s IP as text, for X-Forwarded-For.
    peer_ip: String,
    /// Read buffer: the current head, then what followed it.
    buf: Vec<u8>,
    head: RequestHead,
    /// The origin response head of the current request (reused).
    resp: ResponseHead,
    /// Scratch for heads written to the viewer or the origin.
    out: Vec<u8>,
    /// Reused for cache hits: stored head + per-response lines, and the body.
    /// An `Option` so taking it out does not build (allocate) a new one.
    hit: Option<net::HeadAndBody>,
    /// The cache key buffer, reused.
    key: Vec<u8>,
    /// Cancels the keep-alive read that waits [`PARK_AFTER`] (reused).
    canceller: monoio::io::Canceller,
    /// A write timed out: the viewer stopped reading. The connection is
    /// reset as it closes (see [`Viewer::close`]).
    stalled: bool,
}

/// How reading a request head ended.
pub enum HeadOutcome {
    Ready,
    /// Peer closed or went idle: close quietly.
    Gone,
    /// Head not complete in time: 408.
    Timeout,
    Invalid(HeadError),
    /// Idle in keep-alive past [`PARK_AFTER`]: park until readable or until
    /// the idle deadline.
    Park(Instant),
}

impl Viewer {
    pub fn new(stream: Stream, peer: SocketAddr) -> Viewer {
        Viewer {
            stream,
            peer,
            peer_ip: peer.ip().to_string(),
            resp: Default::default(),
            buf: Vec::with_capacity(8 * 1024),
            head: RequestHead::default(),
            out: Vec::with_capacity(4 * 1024),
            hit: None,
            key: Vec::with_capacity(256),
            canceller: Default::default(),
            stalled: false,
        }
    }

    // ---- the current request ----

    /// The parsed head of the current request.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The read buffer the head's spans point into.
    pub fn buf(&self) -> &[u8] {
        &self.buf
    }

    /// The request head's bytes.
    pub fn head_bytes(&self) -> &[u8] {
        &self.buf[..self.head.head_len.min(self.buf.len())]
    }

    pub fn method(&self) -> &[u8] {
        self.head.method(&self.buf)
    }

    /// The normalised path with its query.
    pub fn target(&self) -> &[u8] {
        self.head.path.of(&self.buf)
    }

    pub fn path_only(&self) -> &[u8] {
        self.head.path_only(&self.buf)
    }

    pub fn host(&self) -> &[u8] {
        self.head.host.map_or(&b""[..], |h| h.of(&self.buf))
    }

    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.head.header(&self.buf, name)
    }

    pub fn is_head_request(&self) -> bool {
        self.head.is_head(&self.buf)
    }

    /// The viewer speaks HTTP/1.0.
    pub fn http10(&self) -> bool {
        self.head.minor == 0
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn peer_ip(&self) -> &str {
        &self.peer_ip
    }

    // ---- reused buffers ----

    /// The scratch buffer, cleared; give it back with [`Viewer::put_out`].
    pub fn take_out(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out
    }

    pub fn put_out(&mut self, out: Vec<u8>) {
        self.out = out;
    }

    pub fn take_key(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.key)
    }

    pub fn put_key(&mut self, key: Vec<u8>) {
        self.key = key;
    }

    pub fn take_resp(&mut self) -> ResponseHead {
        std::mem::take(&mut self.resp)
    }

    pub fn put_resp(&mut self, resp: ResponseHead) {
        self.resp = resp;
    }

    pub fn take_hit(&mut self) -> net::HeadAndBody {
        self.hit.take().unwrap_or_default()
    }

    pub fn put_hit(&mut self, hit: net::HeadAndBody) {
        self.hit = Some(hit);
    }

    // ---- writing to the viewer ----

    /// Writes all of `out` within `timeout`; the buffer becomes the scratch
    /// buffer again. False when the write failed or timed out.
    pub async fn send(&mut self, out: Vec<u8>, timeout: Duration) -> bool {
        match monoio::time::timeout(timeout, net::write_all(&mut self.stream, out)).await {
            Ok((r, o)) => {
                self.out = o;
                r.is_ok()
            }
            Err(_) => {
                self.stalled = true;
                false
            }
        }
    }

    /// Writes `buf[range]` within `timeout`; the buffer comes back unless the
    /// write timed out (then it went with the abandoned operation).
    pub async fn write_range(
        &mut self,
        buf: Vec<u8>,
        range: Range<usize>,
        timeout: Duration,
    ) -> (Result<(), ()>, Option<Vec<u8>>) {
        let (r, buf) = write_within(&mut self.stream, buf, range, timeout).await;
        // The buffer stays with an operation abandoned at its timeout.
        self.stalled |= buf.is_none();
        (r, buf)
    }

    /// A stored head and a shared body in one writev, within `timeout`.
    pub async fn send_head_and_body(&mut self, hb: net::HeadAndBody, timeout: Duration) -> bool {
        match monoio::time::timeout(timeout, net::write_head_and_body(&mut self.stream, hb)).await {
            Ok((r, mut hb)) => {
                // Let go of the stored body now; keep the buffers for the next hit.
                hb.body = bytes::Bytes::new();
                self.hit = Some(hb);
                r.is_ok()
            }
            Err(_) => {
                self.stalled = true;
                false
            }
        }
    }

    /// Ends the connection (the socket closes as the viewer drops). It is
    /// reset (SO_LINGER 0) when:
    /// - the viewer stopped reading (a write timed out), plain or TLS, as
    ///   nginx's `reset_timedout_connection` does: a plain close would leave
    ///   the socket orphaned in FIN-WAIT-1, holding what was queued for the
    ///   viewer in kernel memory for minutes, out of reach of
    ///   `max_connections`; a TLS close_notify that does not go out
    ///   `within` counts the same;
    /// - a response was cut short (`!clean_end`) on plain TCP, so a body
    ///   delimited by close is not taken for whole. A TLS connection says
    ///   as much by closing without close_notify.
    ///
    /// Otherwise a TLS viewer is told the close is deliberate.
    pub async fn close(&mut self, clean_end: bool, within: Duration) {
        let reset = if self.stalled {
            true
        } else if clean_end {
            !self.stream.close_notify(within).await
        } else {
            self.is_plain()
        };
        if reset {
            net::set_linger_zero(self.stream.raw_fd());
        }
    }

    /// Plain TCP.
    fn is_plain(&self) -> bool {
        matches!(self.stream, Stream::Plain(_))
    }

    /// Whether the connection may park when idle: plain TCP, or a TLS
    /// session holding nothing but its state ([`Stream::parkable`]).
    pub fn parkable(&self) -> bool {
        self.stream.parkable()
    }

    /// The socket and, for TLS, the session, to park them.
    pub fn into_parked(self) -> Option<(monoio::net::TcpStream, Option<crate::tls::TlsSession>)> {
        self.stream.into_parked()
    }

    // ---- reading the request body ----

    /// Reads until the buffer holds `want` bytes, each read within `timeout`.
    pub async fn fill_to(&mut self, want: usize, timeout: Duration) -> bool {
        while self.buf.len() < want {
            let buf = std::mem::take(&mut self.buf);
            let need = want - buf.len();
            let fut = net::read_more(&mut self.stream, buf, need, want);
            match monoio::time::timeout(timeout, fut).await {
                Ok((Ok(k), b)) if k > 0 => self.buf = b,
                Ok((_, b)) => {
                    self.buf = b;
                    return false;
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads what comes next (up to `max` bytes) into `into`, within
    /// `timeout`; `None` when the viewer closed, failed or timed out.
    pub async fn read_into(&mut self, into: Vec<u8>, max: usize, timeout: Duration) -> Option<Vec<u8>> {
        match monoio::time::timeout(timeout, net::read_more(&mut self.stream, into, max, max)).await {
            Ok((Ok(n), b)) if n > 0 => Some(b),
            _ => None,
        }
    }

    /// Keeps only the first `len` bytes of the buffer (the head and the body
    /// bytes already used; what follows is read elsewhere).
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// The request is answered: its first `consumed` bytes leave the buffer,
    /// and `leftover` (read past a streamed body) joins what remains.
    pub fn finish(&mut self, consumed: usize, leftover: &[u8]) {
        let consumed = consumed.min(self.buf.len());
        self.buf.drain(..consumed);
        self.buf.extend_from_slice(leftover);
    }

    // ---- reading the request head ----

    /// Reads until the buffer starts with a complete head, parsed into
    /// [`Viewer::head`] with its path normalised. `first_by`: when the first
    /// request's head must be complete.
    pub async fn read_head(&mut self, s: &Server, parkable: bool, first_by: Option<Instant>) -> HeadOutcome {
        let max = s.max_request_head;
        // The first request's head must complete within the header timeout from
        // accept; later ones may idle first, then get the header timeout.
        let mut deadline = match first_by {
            Some(d) => Some(d),
            None if !self.buf.is_empty() => Some(Instant::now() + s.client_header_timeout),
            None => None,
        };
        let mut scanned = 0usize;
        loop {
            if self.buf.len() > scanned {
                // Parse only when a line end arrived since the last try.
                if memchr::memchr(b'\n', &self.buf[scanned..]).is_some() || self.buf.len() >= max {
                    match parse_request(&self.buf, max, &mut self.head) {
                        Ok(Some(_)) => {
                            return match self.normalize_path(max) {
                                Ok(()) => HeadOutcome::Ready,
                                Err(e) => HeadOutcome::Invalid(e),
                            }
                        }
                        Ok(None) => {}
                        Err(e) => return HeadOutcome::Invalid(e),
                    }
                }
                scanned = self.buf.len();
            }
            let idle = deadline.is_none() && self.buf.is_empty();
            if idle && parkable && s.client_idle_timeout > PARK_AFTER {
                if let Some(end) = self.idle_read(s).await {
                    return end;
                }
                deadline = Some(Instant::now() + s.client_header_timeout);
                continue;
            }
            match self.read_some(s, deadline).await {
                Some(end) => return end,
                None if deadline.is_none() => deadline = Some(Instant::now() + s.client_header_timeout),
                None => {}
            }
        }
    }

    /// Keep-alive idle: reads with the buffer posted for [`PARK_AFTER`]
    /// (TLS: the session's ciphertext buffer, lent by the worker), then
    /// asks to park. `None`: bytes arrived.
    async fn idle_read(&mut self, s: &Server) -> Option<HeadOutcome> {
        let limit = Instant::now() + s.client_idle_timeout;
        let res = match &mut self.stream {
            Stream::Plain(tcp) => {
                let buf = std::mem::take(&mut self.buf);
                let max = s.max_request_head;
                let (res, b) = net::read_more_within(tcp, buf, 4096, max + 1, PARK_AFTER, &mut self.canceller).await;
                self.buf = b;
                res.map(|r| r.map(|n| n > 0))
            }
            tls => tls.idle_fill(PARK_AFTER, &mut self.canceller).await,
        };
        match res {
            None => Some(HeadOutcome::Park(limit)),
            Some(Ok(false)) | Some(Err(_)) => Some(HeadOutcome::Gone),
            Some(Ok(true)) => None,
        }
    }

    /// One read toward the head, by `deadline` (None: the idle timeout).
    /// `None`: bytes arrived.
    async fn read_some(&mut self, s: &Server, deadline: Option<Instant>) -> Option<HeadOutcome> {
        let (limit, on_timeout) = match deadline {
            Some(d) => (d, HeadOutcome::Timeout),
            None => (Instant::now() + s.client_idle_timeout, HeadOutcome::Gone),
        };
        let buf = std::mem::take(&mut self.buf);
        let had_bytes = !buf.is_empty();
        let max = s.max_request_head;
        let fut = net::read_more(&mut self.stream, buf, 4096, max + 1);
        match monoio::time::timeout_at(limit.into(), fut).await {
            // A connection that sent nothing of a request is closed quietly,
            // as nginx does: a 408 would only confuse a browser's preconnect.
            Err(_) if !had_bytes => Some(HeadOutcome::Gone),
            Err(_) => Some(on_timeout),
            Ok((Ok(0), _)) | Ok((Err(_), _)) => Some(HeadOutcome::Gone),
            Ok((Ok(_), b)) => {
                self.buf = b;
                None
            }
        }
    }

    /// Normalises the parsed head's path (SPEC §3.1) before anything uses it:
    /// when it changes, the target's bytes in the buffer are replaced (never
    /// by longer ones) and the head is parsed again, so every span is right.
    /// An already-normal path costs one scan, no allocation.
    fn normalize_path(&mut self, max: usize) -> Result<(), HeadError> {
        let mut normal = Vec::new();
        match crate::http::path::normalize(self.head.path.of(&self.buf), &mut normal) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(HeadError::Bad(e.reason())),
        }
        self.buf.splice(self.head.path.range(), normal);
        match parse_request(&self.buf, max, &mut self.head) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(HeadError::Bad("request head lost in path normalisation")),
            Err(e) => Err(e),
        }
    }
}

/// Writes `buf[range]` to `s` within `timeout`; the buffer comes back unless
/// the write timed out (then it went with the abandoned operation).
pub async fn write_within(
    s: &mut Stream,
    buf: Vec<u8>,
    range: Range<usize>,
    timeout: Duration,
) -> (Result<(), ()>, Option<Vec<u8>>) {
    if range.is_empty() {
        return (Ok(()), Some(buf));
    }
    match monoio::time::timeout(timeout, net::write_range(s, buf, range)).await {
        Ok((Ok(()), b)) => (Ok(()), Some(b)),
        Ok((Err(_), b)) => (Err(()), Some(b)),
        Err(_) => (Err(()), None),
    }
}
