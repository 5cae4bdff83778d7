//! Chunk framing of ringfront's own (RFC 9112 §7.1).
//!
//! Neither side's framing is ever passed on (SPEC §3.1, §3.5): a chunked
//! body is decoded (`http::chunked`) and its data framed again here, with
//! plain chunk-size lines (no extensions) and an empty trailer section, so
//! the next hop reads exactly the message boundaries ringfront read.

use super::body::BodyCursor;
use super::chunked::{ChunkError, ChunkedDecoder};
use std::ops::Range;

/// The last chunk and the empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `data` as one chunk (nothing when it is empty), then the last
/// chunk when `last`.
pub fn chunk(out: &mut Vec<u8>, data: &[u8], last: bool) {
    if !data.is_empty() {
        size_line(out, data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    if last {
        out.extend_from_slice(LAST_CHUNK);
    }
}

/// Appends the line that starts a chunk of `n` bytes (the data and its
/// CRLF are the caller's, for data written from elsewhere).
pub fn size_line(out: &mut Vec<u8>, n: usize) {
    let mut hex = [0u8; 16];
    let mut n = n;
    let mut i = hex.len();
    while n > 0 || i == hex.len() {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
}

/// Feeds `input` (the next bytes of a chunked body) to `cursor` and
/// appends to `out` what to forward: each data range as a chunk of our own,
/// and the last chunk once the body ends (the sender's extensions and
/// trailer fields, validated by the decoder, are dropped). Returns how many
/// bytes of `input` belong to the body.
pub fn reframe(cursor: &mut BodyCursor, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
    let was_done = cursor.is_done();
    let used = cursor.feed(input, |r| chunk(out, &input[r], false))?;
    if cursor.is_done() && !was_done {
        out.extend_from_slice(LAST_CHUNK);
    }
    Ok(used)
}

/// What the start of a chunked body already in a buffer says.
#[derive(Debug, PartialEq, Eq)]
pub enum Buffered {
    /// The whole body is there: its data (at most the bound) and how many
    /// bytes of the buffer it took.
    Whole { data: Vec<u8>, raw: usize },
    /// Incomplete, or larger than the bound: stream it.
    Partial,
}

/// Decodes the chunked body at the start of `buf` when it is complete and
/// its data is at most `max` bytes; an error anywhere in what is there is
/// an error (the request is refused before anything reaches an origin).
pub fn decode_buffered(buf: &[u8], max: usize) -> Result<Buffered, ChunkError> {
    let mut d = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut fits = true;
    let used = d.feed(buf, |r| {
        fits &= data.len() + r.len() <= max;
        if fits {
            data.extend_from_slice(&buf[r]);
        }
    })?;
    Ok(if d.is_done() && fits {
        Buffered::Whole { data, raw: used }
    } else {
        Buffered::Partial
    })
}

/// Moves the data `ranges` of `buf` (in order, as a decoder reports them)
/// to its front; returns their total length.
pub fn compact(buf: &mut [u8], ranges: &[Range<usize>]) -> usize {
    let mut at = 0;
    for r in ranges {
        if r.end <= buf.len() && r.start >= at {
            // Data already in place (an unframed body) is not moved.
            if r.start > at {
                buf.copy_within(r.clone(), at);
            }
            at += r.len();
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::chunked::ChunkedDecoder;

    #[test]
    fn chunks_decode_to_the_same_data() {
        let mut out = Vec::new();
        chunk(&mut out, b"hello", false);
        chunk(&mut out, b"", false);
        chunk(&mut out, &[b'x'; 300], true);
        assert!(out.starts_with(b"5\r\nhello\r\n12c\r\n"));
        assert!(out.ends_with(b"\r\n0\r\n\r\n"));
        let mut d = ChunkedDecoder::new();
        let mut data = Vec::new();
        let used = d.feed(&out, |r| data.extend_from_slice(&out[r])).unwrap();
        assert!(d.is_done());
        assert_eq!(used, out.len());
        assert_eq!(data.len(), 305);
    }

    #[test]
    fn reframing_drops_extensions_and_trailers() {
        let input = b"5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for split in 1..input.len() {
            let mut c = BodyCursor::chunked();
            let mut out = Vec::new();
            let a = reframe(&mut c, &input[..split], &mut out).unwrap();
            let b = if c.is_done() {
                0
            } else {
                reframe(&mut c, &input[split..], &mut out).unwrap()
            };
            assert_eq!(a + b, input.len() - 4, "split {split}");
            let mut d = ChunkedDecoder::new();
            let mut data = Vec::new();
            d.feed(&out, |r| data.extend_from_slice(&out[r])).unwrap();
            assert!(d.is_done(), "split {split}: {:?}", String::from_utf8_lossy(&out));
            assert_eq!(data, b"hello");
            assert!(!out.windows(2).any(|w| w == b";a" || w == b"X-"), "split {split}");
        }
    }

    #[test]
    fn buffered_bodies_whole_partial_or_refused() {
        let whole = decode_buffered(b"3\r\nabc\r\n0\r\n\r\nrest", 10).unwrap();
        assert_eq!(
            whole,
            Buffered::Whole {
                data: b"abc".to_vec(),
                raw: 13
            }
        );
        assert_eq!(decode_buffered(b"3\r\nab", 10).unwrap(), Buffered::Partial);
        assert_eq!(decode_buffered(b"3\r\nabc\r\n0\r\n\r\n", 2).unwrap(), Buffered::Partial);
        assert!(decode_buffered(b"zz\r\n", 10).is_err());
    }

    #[test]
    fn compact_moves_data_to_the_front() {
        let mut b = b"3\r\nabc\r\n2;x\r\nde\r\n".to_vec();
        assert_eq!(compact(&mut b, &[3..6, 13..15]), 5);
        assert_eq!(&b[..5], b"abcde");
    }
}
