//! Whether an origin connection may carry another request: a sans-io reader
//! of one response exchange.
//!
//! Origin responses are untrusted input (SPEC §3.5). A pooled connection is
//! only safe to reuse when the proxy and the origin agree on where the
//! response ended; otherwise the rest of one response would be read as the
//! next request's response (and cached under its key). [`ResponseReader`]
//! is fed what was read from the connection for one exchange, in reads of any
//! size, and says:
//!
//! - the final head (1xx interim heads other than 101 are skipped, as
//!   `origin::client::read_head` does; 101 is an error);
//! - the body data for the viewer, as ranges into each input: the payload
//!   without chunk framing for a chunked body, the bytes themselves for a
//!   Content-Length or close-delimited body;
//! - when the response is complete, or why it failed;
//! - at the end, the [`Reuse`] verdict: [`Reuse::Reusable`] only when the
//!   response was complete, framed (not close-delimited), keep-alive, not
//!   framed by both Transfer-Encoding and Content-Length, and nothing read
//!   went beyond its end.
//!
//! It parses nothing itself: heads go through
//! [`parse_response`](crate::http::response::parse_response) and bodies
//! through [`BodyCursor`], so the verdict is taken on exactly the framing the
//! proxy forwards.
//!
//! What it cannot see is what was never read: bytes that arrive after the
//! reads stopped stay in the socket, and the pool's watch closes such a
//! connection instead of handing it out (see `origin::pool`).
//!
//! # Use
//!
//! From the first byte of an exchange: [`ResponseReader::new`], then
//! [`feed`](ResponseReader::feed) every read until
//! [`is_done`](ResponseReader::is_done) (or an error), calling
//! [`eof`](ResponseReader::eof) when the origin closes (which completes a
//! close-delimited body). When the head was already parsed in the caller's
//! buffer (`client::read_head`), start from [`ResponseReader::after_head`] and
//! feed the bytes after the head. [`complete_in`] answers for a buffer that
//! holds a head and whatever followed it, when nothing more will be read.

use crate::http::body::BodyCursor;
use crate::http::chunked::ChunkError;
use crate::http::response::{parse_response, RespBody, ResponseError, ResponseHead};
use std::ops::Range;

/// What may become of the connection after the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// It may go back to the pool.
    Reusable,
    /// It must be closed.
    Close,
}

/// Why a response failed (a 502 or failover before the head, a cut-off
/// response after it). The connection is never reused after one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadError {
    /// The head is malformed or too large.
    Head(ResponseError),
    /// `101 Switching Protocols`: origin connections are never upgraded.
    Switching,
    /// The chunked body is malformed.
    Body(ChunkError),
    /// The origin closed the connection before the response's end.
    Truncated,
}

/// What one [`ResponseReader::feed`] did with its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fed {
    /// Leading bytes of the input that belong to this response (interim
    /// heads, the final head, the body). Any after them lie beyond the
    /// response's end, and the verdict is then [`Reuse::Close`].
    pub used: usize,
    /// This input completed the final head.
    pub head: bool,
    /// The response is complete.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
    Done,
    Failed(ReadError),
}

/// Reads one response from an origin connection; see the module doc.
#[derive(Debug)]
pub struct ResponseReader {
    head_request: bool,
    phase: Phase,
    /// Head phase: the bytes of the head so far. Afterwards: the final head
    /// (`head`'s spans point into it), empty for [`ResponseReader::after_head`].
    hbuf: Vec<u8>,
    head: ResponseHead,
    /// `head` was parsed here (not given to `after_head`).
    own_head: bool,
    status: Option<u16>,
    body: Option<RespBody>,
    cursor: BodyCursor,
    /// The head allows reuse (keep-alive, framed, not TE with CL).
    keep_alive: bool,
    /// Something was read beyond the response's end.
    beyond_end: bool,
    /// The origin closed the connection.
    closed: bool,
    /// Bytes of interim heads skipped before the final head.
    skipped: u64,
}

/// The body cursor for a response framed as `body`.
fn cursor_for(body: RespBody) -> BodyCursor {
    match body {
        RespBody::None => BodyCursor::length(0),
        RespBody::Length(n) => BodyCursor::length(n),
        RespBody::Chunked => BodyCursor::chunked(),
        RespBody::Close => BodyCursor::until_close(),
    }
}

/// The head lets the connection carry another request once the response
/// has ended. `parse_response` already folds these into `keep_alive`; they
/// are checked again here so the rule is stated in one place.
/// Whether the head lets its connection be reused. Never after a response
/// without a body (HEAD, 204, 304): a body sent on one anyway, arriving after
/// the next request went out on the connection, would be read as that
/// request's response, and no check can tell it from one (the watch sees
/// only bytes that come while the connection is idle). Those are the common
/// desync shapes, and they are rare enough on the hot path to cost nothing.
fn head_allows_reuse(rh: &ResponseHead) -> bool {
    let body = rh.body();
    rh.keep_alive
        && body != RespBody::Close
        && body != RespBody::None
        && !(body == RespBody::Chunked && rh.content_length.is_some())
}

impl ResponseReader {
    /// A reader for an exchange from its first byte. `head_request`: the
    /// request was HEAD (the response has no body whatever it says).
    pub fn new(head_request: bool) -> Self {
        ResponseReader {
            head_request,
            phase: Phase::Head,
            hbuf: Vec::new(),
            head: ResponseHead::default(),
            own_head: false,
            status: None,
            body: None,
            cursor: BodyCursor::length(0),
            keep_alive: false,
            beyond_end: false,
            closed: false,
            skipped: 0,
        }
    }

    /// A reader whose final head `rh` was parsed by the caller (with the
    /// right `head_request`, interim heads already skipped): feed it the
    /// bytes after `rh.head_len`, then every later read. [`head`](Self::head)
    /// is `None` (the caller has it).
    pub fn after_head(rh: &ResponseHead) -> Self {
        let mut r = ResponseReader::new(false);
        r.start_body(rh);
        r
    }

    fn start_body(&mut self, rh: &ResponseHead) {
        let body = rh.body();
        self.status = Some(rh.status);
        self.body = Some(body);
        self.cursor = cursor_for(body);
        self.keep_alive = head_allows_reuse(rh);
        self.phase = Phase::Body;
    }

    fn fail(&mut self, e: ReadError) -> Result<Fed, ReadError> {
        self.phase = Phase::Failed(e);
        Err(e)
    }

    /// Offers the next bytes read from the connection. Body data for the
    /// viewer goes to `on_data` as ranges into `input`, in order. Bytes the
    /// head is not complete without are kept (copied) by the reader.
    ///
    /// Input offered after the response's end (`used < input.len()`, or any
    /// input once done) makes the verdict [`Reuse::Close`]. After an error
    /// every call returns that error again.
    pub fn feed(&mut self, input: &[u8], mut on_data: impl FnMut(Range<usize>)) -> Result<Fed, ReadError> {
        let mut fed = Fed::default();
        match self.phase {
            Phase::Failed(e) => return Err(e),
            Phase::Done => {
                self.beyond_end |= !input.is_empty();
                fed.done = true;
                return Ok(fed);
            }
            Phase::Head => match self.read_head(input) {
                Ok(None) => {
                    fed.used = input.len();
                    return Ok(fed);
                }
                Ok(Some(body_start)) => {
                    fed.used = body_start;
                    fed.head = true;
                }
                Err(e) => return self.fail(e),
            },
            Phase::Body => {}
        }
        let start = fed.used;
        let rest = input.get(start..).unwrap_or_default();
        let n = match self.cursor.feed(rest, |r| on_data(r.start + start..r.end + start)) {
            Ok(n) => n,
            Err(e) => return self.fail(ReadError::Body(e)),
        };
        fed.used += n;
        if self.cursor.is_done() {
            self.phase = Phase::Done;
            fed.done = true;
            self.beyond_end |= fed.used < input.len();
        }
        Ok(fed)
    }

    /// Head phase: takes `input` in; `Some(i)` when the final head ends at
    /// `input[i]` (the body starts there).
    fn read_head(&mut self, input: &[u8]) -> Result<Option<usize>, ReadError> {
        let held = self.hbuf.len();
        self.hbuf.extend_from_slice(input);
        // Bytes of interim heads removed from the front during this call.
        let mut dropped = 0usize;
        loop {
            match parse_response(&self.hbuf, self.head_request, &mut self.head) {
                Ok(None) => return Ok(None),
                Err(e) => return Err(ReadError::Head(e)),
                Ok(Some(_)) if self.head.status == 101 => return Err(ReadError::Switching),
                Ok(Some(n)) if (100..200).contains(&self.head.status) => {
                    self.hbuf.drain(..n);
                    self.skipped += n as u64;
                    dropped += n;
                }
                Ok(Some(n)) => {
                    // `hbuf[0]` sat at `input[dropped - held]` (before the
                    // input when negative); the head could not end inside
                    // bytes that were already there (they were parsed then).
                    let end = (dropped + n)
                        .checked_sub(held)
                        .filter(|&e| e <= input.len())
                        .ok_or(ReadError::Head(ResponseError::Malformed))?;
                    self.hbuf.truncate(n);
                    self.own_head = true;
                    let head = std::mem::take(&mut self.head);
                    self.start_body(&head);
                    self.head = head;
                    return Ok(Some(end));
                }
            }
        }
    }

    /// The origin closed the connection (a read returned 0 or failed). This
    /// completes a close-delimited body; before any other response's end it
    /// is [`ReadError::Truncated`]. The verdict is [`Reuse::Close`] from now on.
    pub fn eof(&mut self) -> Result<(), ReadError> {
        self.closed = true;
        match self.phase {
            Phase::Failed(e) => Err(e),
            Phase::Done => Ok(()),
            Phase::Body if self.cursor.is_close_delimited() => {
                self.phase = Phase::Done;
                Ok(())
            }
            Phase::Head | Phase::Body => {
                self.phase = Phase::Failed(ReadError::Truncated);
                Err(ReadError::Truncated)
            }
        }
    }

    /// True when the response is complete.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The error the response failed with, if it did.
    pub fn error(&self) -> Option<ReadError> {
        match self.phase {
            Phase::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The final status, once the head is known.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// How the body is framed, once the head is known.
    pub fn body(&self) -> Option<RespBody> {
        self.body
    }

    /// The final head and the buffer its spans point into, once parsed here
    /// (never for [`after_head`](Self::after_head)).
    pub fn head(&self) -> Option<(&[u8], &ResponseHead)> {
        self.own_head.then_some((&self.hbuf[..], &self.head))
    }

    /// Bytes of interim (1xx) heads skipped before the final head: the final
    /// head is the `head_len` bytes after them in what was fed.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Something was read beyond the response's end.
    pub fn beyond_end(&self) -> bool {
        self.beyond_end
    }

    /// Whether the connection may go back to the pool. [`Reuse::Reusable`]
    /// only when the response is complete, its head allows reuse (keep-alive,
    /// framed by a length or chunks, not by both Transfer-Encoding and
    /// Content-Length), nothing beyond its end was read and the origin has
    /// not closed. Asked before the end, the answer is [`Reuse::Close`].
    pub fn verdict(&self) -> Reuse {
        if self.phase == Phase::Done && self.keep_alive && !self.beyond_end && !self.closed {
            Reuse::Reusable
        } else {
            Reuse::Close
        }
    }
}

/// The verdict for `buf`, which holds the final head `rh` (parsed from its
/// start) and everything read after it, when no more will be read for this
/// response (failover on a status, a 304 answering a revalidation):
/// [`Reuse::Reusable`] only when `buf` is exactly one whole response on a
/// reusable connection.
pub fn complete_in(buf: &[u8], rh: &ResponseHead) -> Reuse {
    let mut r = ResponseReader::after_head(rh);
    match r.feed(buf.get(rh.head_len..).unwrap_or_default(), |_| {}) {
        Ok(_) => r.verdict(),
        Err(_) => Reuse::Close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a reader reported for one input.
    #[derive(Debug, PartialEq, Eq)]
    struct Outcome {
        status: Option<u16>,
        data: Vec<u8>,
        done: bool,
        error: Option<ReadError>,
        verdict: Reuse,
        /// Total bytes the reader said belong to the response (0 after an
        /// error, where it depends on how the input was cut).
        used: usize,
    }

    /// Feeds `input` cut at `cuts` (increasing offsets), every piece even
    /// after the end, then EOF when `eof`.
    fn run(input: &[u8], cuts: &[usize], head_request: bool, eof: bool) -> Outcome {
        let mut r = ResponseReader::new(head_request);
        let mut data = Vec::new();
        let mut used = 0;
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&input.len())) {
            let piece = &input[from..to];
            from = to;
            let mut last = 0;
            match r.feed(piece, |rg| {
                assert!(rg.start >= last && rg.start < rg.end && rg.end <= piece.len());
                last = rg.end;
                data.extend_from_slice(&piece[rg]);
            }) {
                Ok(f) => {
                    assert!(f.used <= piece.len() && last <= f.used);
                    used += f.used;
                }
                Err(_) => break,
            }
        }
        if eof {
            let _ = r.eof();
        }
        Outcome {
            status: r.status(),
            data,
            done: r.is_done(),
            error: r.error(),
            verdict: r.verdict(),
            used: if r.error().is_some() { 0 } else { used },
        }
    }

    /// `run` whole, and cut at every single boundary and every pair of them:
    /// all give the same outcome.
    fn every_split(input: &[u8], head_request: bool, eof: bool) -> Outcome {
        let whole = run(input, &[], head_request, eof);
        for i in 0..=input.len() {
            assert_eq!(run(input, &[i], head_request, eof), whole, "cut at {i}");
        }
        let step = (input.len() / 24).max(1);
        for i in (0..=input.len()).step_by(step) {
            for j in (i..=input.len()).step_by(step) {
                assert_eq!(run(input, &[i, j], head_request, eof), whole, "cuts at {i}, {j}");
            }
        }
        let bytes: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(input, &bytes, head_request, eof), whole, "byte by byte");
        whole
    }

    fn ok(status: u16, data: &[u8], verdict: Reuse, used: usize) -> Outcome {
        Outcome {
            status: Some(status),
            data: data.to_vec(),
            done: true,
            error: None,
            verdict,
            used,
        }
    }

    #[test]
    fn length_body_reusable() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(
            every_split(r, false, false),
            ok(200, b"hello", Reuse::Reusable, r.len())
        );
    }

    #[test]
    fn bytes_beyond_the_end_close() {
        let cases: [(&[u8], bool, u16, &[u8]); 6] = [
            (b"HTTP/1.1 204 No Content\r\n\r\nX", false, 204, b""),
            (
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\nabc",
                false,
                304,
                b"",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", true, 200, b""),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcd", false, 200, b"abc"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\r\n",
                false,
                200,
                b"abc",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                false,
                200,
                b"",
            ),
        ];
        for (input, head_request, status, data) in cases {
            let o = every_split(input, head_request, false);
            assert_eq!(o.status, Some(status));
            assert_eq!(o.data, data);
            assert!(o.done && o.error.is_none());
            assert_eq!(o.verdict, Reuse::Close, "{}", String::from_utf8_lossy(input));
            assert!(o.used < input.len());
            // The same response without the extra bytes is reusable,
            // unless it has no body (see `head_allows_reuse`).
            let exact = run(&input[..o.used], &[], head_request, false);
            let bodiless = head_request || status == 204 || status == 304;
            let want = if bodiless { Reuse::Close } else { Reuse::Reusable };
            assert_eq!(exact.verdict, want, "{}", String::from_utf8_lossy(input));
        }
    }

    /// A response without a body never lets its connection be reused: a
    /// body sent on it anyway may come after the next request went out.
    #[test]
    fn bodiless_never_reused() {
        for (input, head_request) in [
            (&b"HTTP/1.1 204 No Content\r\n\r\n"[..], false),
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n", false),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true),
        ] {
            let o = every_split(input, head_request, false);
            assert!(o.done && o.data.is_empty());
            assert_eq!(o.verdict, Reuse::Close);
        }
    }

    #[test]
    fn chunked_with_trailer() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 1\r\n\r\n";
        assert_eq!(
            every_split(r, false, false),
            ok(200, b"hello world", Reuse::Reusable, r.len())
        );
    }

    #[test]
    fn close_delimited() {
        let r = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        assert_eq!(
            every_split(r, false, true),
            ok(200, b"all of it", Reuse::Close, r.len())
        );
        // Without the EOF it never ends.
        let o = run(r, &[], false, false);
        assert!(!o.done && o.verdict == Reuse::Close && o.data == b"all of it");
    }

    #[test]
    fn head_forbids_reuse() {
        for r in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"[..],
            b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        ] {
            let o = every_split(r, false, false);
            assert!(o.done && o.data == b"x", "{}", String::from_utf8_lossy(r));
            assert_eq!(o.verdict, Reuse::Close, "{}", String::from_utf8_lossy(r));
        }
        let r = b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\nx";
        assert_eq!(every_split(r, false, false).verdict, Reuse::Reusable);
        // A TE+CL head on a HEAD response: no body, still not reused.
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n";
        let o = every_split(r, true, false);
        assert!(o.done && o.verdict == Reuse::Close);
    }

    #[test]
    fn interim_heads_are_skipped() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(every_split(r, false, false), ok(200, b"ok", Reuse::Reusable, r.len()));
        let mut reader = ResponseReader::new(false);
        reader.feed(r, |_| {}).unwrap();
        let (buf, head) = reader.head().unwrap();
        let skipped = reader.skipped() as usize;
        assert_eq!(&r[skipped..skipped + head.head_len], buf);
        assert!(buf.starts_with(b"HTTP/1.1 200 OK\r\n"));
        // An interim head's own Content-Length frames nothing.
        let r = b"HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(every_split(r, false, false), ok(200, b"", Reuse::Reusable, r.len()));
    }

    #[test]
    fn errors() {
        let o = every_split(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", false, false);
        assert_eq!((o.error, o.verdict), (Some(ReadError::Switching), Reuse::Close));
        let o = every_split(b"HTTP/1.1 600 X\r\n\r\n", false, false);
        assert_eq!(o.error, Some(ReadError::Head(ResponseError::BadStatus)));
        let o = every_split(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n",
            false,
            false,
        );
        assert_eq!(o.error, Some(ReadError::Body(ChunkError::BadSize)));
        assert_eq!(o.verdict, Reuse::Close);
        let o = every_split(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", false, true);
        assert_eq!(
            (o.error, o.data, o.verdict),
            (Some(ReadError::Truncated), b"hel".to_vec(), Reuse::Close)
        );
        let o = every_split(b"HTTP/1.1 200 OK\r\nContent-Le", false, true);
        assert_eq!(o.error, Some(ReadError::Truncated));
        // Not finished, not failed: no verdict but Close.
        let o = run(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", &[], false, false);
        assert!(!o.done && o.error.is_none() && o.verdict == Reuse::Close);
    }

    #[test]
    fn eof_after_the_end_closes() {
        let mut r = ResponseReader::new(false);
        r.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", |_| {}).unwrap();
        assert_eq!(r.verdict(), Reuse::Reusable);
        assert_eq!(r.eof(), Ok(()));
        assert_eq!(r.verdict(), Reuse::Close);
    }

    fn parsed(buf: &[u8], head_request: bool) -> ResponseHead {
        let mut h = ResponseHead::default();
        parse_response(buf, head_request, &mut h).unwrap().unwrap();
        h
    }

    #[test]
    fn after_head_matches_new() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nX";
        let rh = parsed(r, false);
        let mut a = ResponseReader::after_head(&rh);
        let mut data = Vec::new();
        let rest = &r[rh.head_len..];
        let f = a.feed(rest, |rg| data.extend_from_slice(&rest[rg])).unwrap();
        assert!(a.head().is_none());
        assert_eq!((f.used, f.head, f.done), (rest.len() - 1, false, true));
        assert_eq!((data.as_slice(), a.verdict()), (&b"ab"[..], Reuse::Close));
        assert_eq!(run(r, &[], false, false).verdict, Reuse::Close);
    }

    #[test]
    fn complete_in_buffer() {
        let cases: [(&[u8], bool, Reuse); 7] = [
            (b"HTTP/1.1 304 Not Modified\r\n\r\n", false, Reuse::Close),
            (b"HTTP/1.1 304 Not Modified\r\n\r\nX", false, Reuse::Close),
            (
                b"HTTP/1.1 503 No\r\nContent-Length: 2\r\n\r\nno",
                false,
                Reuse::Reusable,
            ),
            (b"HTTP/1.1 503 No\r\nContent-Length: 2\r\n\r\nn", false, Reuse::Close),
            (b"HTTP/1.1 503 No\r\nContent-Length: 2\r\n\r\nnoX", false, Reuse::Close),
            // Unlike the old `response_complete`, a whole chunked body counts.
            (
                b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n",
                false,
                Reuse::Reusable,
            ),
            (b"HTTP/1.1 503 No\r\n\r\nno", false, Reuse::Close),
        ];
        for (buf, head_request, want) in cases {
            assert_eq!(
                complete_in(buf, &parsed(buf, head_request)),
                want,
                "{}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}
