//! Chunk framing of ringfront's own (RFC 9112 §7.1).
//!
//! Neither side's framing is ever passed on (SPEC §3.1, §3.5): a chunked
//! body is decoded (`http::chunked`) and its data framed again here, with
//! plain chunk-size lines (no extensions) and an empty trailer section, so
//! the next hop reads exactly the message boundaries ringfront read.

use std::ops::Range;

/// The last chunk and the empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// Appends `data` as one chunk (nothing when it is empty), then the last
/// chunk when `last`.
pub fn chunk(out: &mut Vec<u8>, data: &[u8], last: bool) {
    if !data.is_empty() {
        let mut hex = [0u8; 16];
        let mut n = data.len();
        let mut i = hex.len();
        while n > 0 || i == hex.len() {
            i -= 1;
            hex[i] = b"0123456789abcdef"[n & 0xf];
            n >>= 4;
        }
        out.extend_from_slice(&hex[i..]);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    if last {
        out.extend_from_slice(LAST_CHUNK);
    }
}

/// Moves the data `ranges` of `buf` (in order, as a decoder reports them)
/// to its front; returns their total length.
pub fn compact(buf: &mut [u8], ranges: &[Range<usize>]) -> usize {
    let mut at = 0;
    for r in ranges {
        if r.end <= buf.len() && r.start >= at {
            buf.copy_within(r.clone(), at);
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
    fn compact_moves_data_to_the_front() {
        let mut b = b"3\r\nabc\r\n2;x\r\nde\r\n".to_vec();
        assert_eq!(compact(&mut b, &[3..6, 13..15]), 5);
        assert_eq!(&b[..5], b"abcde");
    }
}
