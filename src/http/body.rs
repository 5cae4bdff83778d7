//! A body cursor: how much of what was read belongs to the current message.
//!
//! Request and response bodies are streamed, never buffered whole. Each read
//! is offered to a [`BodyCursor`], which says how many of those bytes are body
//! (to be forwarded as they are, framing included) and when the message ends,
//! so bytes after it stay in the buffer for the next message (pipelining).

use super::chunked::{ChunkError, ChunkedDecoder};
use std::ops::Range;

#[derive(Debug, Clone)]
enum Kind {
    Length(u64),
    Chunked(ChunkedDecoder),
    /// Until the peer closes (responses only).
    Close,
}

/// Tracks progress through one message body.
#[derive(Debug, Clone)]
pub struct BodyCursor {
    kind: Kind,
    /// Body bytes seen so far (raw, framing included).
    pub seen: u64,
}

impl BodyCursor {
    pub fn length(n: u64) -> Self {
        BodyCursor {
            kind: Kind::Length(n),
            seen: 0,
        }
    }
    pub fn chunked() -> Self {
        BodyCursor {
            kind: Kind::Chunked(ChunkedDecoder::new()),
            seen: 0,
        }
    }
    pub fn until_close() -> Self {
        BodyCursor {
            kind: Kind::Close,
            seen: 0,
        }
    }

    /// True when the body is complete (never, for a close-delimited body).
    pub fn is_done(&self) -> bool {
        match &self.kind {
            Kind::Length(n) => *n == 0,
            Kind::Chunked(d) => d.is_done(),
            Kind::Close => false,
        }
    }

    pub fn is_close_delimited(&self) -> bool {
        matches!(self.kind, Kind::Close)
    }

    /// Offers `buf`; returns how many leading bytes belong to the body.
    /// `on_data` receives the payload ranges (chunk framing stripped).
    pub fn feed(&mut self, buf: &[u8], mut on_data: impl FnMut(Range<usize>)) -> Result<usize, ChunkError> {
        let n = match &mut self.kind {
            Kind::Length(rem) => {
                let n = (*rem).min(buf.len() as u64) as usize;
                *rem -= n as u64;
                if n > 0 {
                    on_data(0..n);
                }
                n
            }
            Kind::Chunked(d) => d.feed(buf, on_data)?,
            Kind::Close => {
                if !buf.is_empty() {
                    on_data(0..buf.len());
                }
                buf.len()
            }
        };
        self.seen += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_stops_at_boundary() {
        let mut c = BodyCursor::length(5);
        assert_eq!(c.feed(b"abc", |_| {}).unwrap(), 3);
        assert!(!c.is_done());
        assert_eq!(c.feed(b"deGET", |_| {}).unwrap(), 2);
        assert!(c.is_done());
        assert_eq!(c.seen, 5);
    }

    #[test]
    fn chunked_reports_payload() {
        let mut c = BodyCursor::chunked();
        let mut got = Vec::new();
        let msg = b"3\r\nabc\r\n0\r\n\r\nrest";
        let n = c.feed(msg, |r| got.extend_from_slice(&msg[r])).unwrap();
        assert_eq!(n, msg.len() - 4);
        assert_eq!(got, b"abc");
        assert!(c.is_done());
    }

    #[test]
    fn close_takes_everything() {
        let mut c = BodyCursor::until_close();
        assert_eq!(c.feed(b"abc", |_| {}).unwrap(), 3);
        assert!(!c.is_done());
        assert!(c.is_close_delimited());
    }
}
