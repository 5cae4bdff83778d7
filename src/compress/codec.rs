//! The two content codings (RFC 9110 §8.4.1): brotli (RFC 7932) and gzip
//! (RFC 1952), whole bodies for the cache and streams for responses that
//! pass through.
//!
//! Levels, measured on a 1 MiB HTML page (the Rust book's print.html),
//! release build, CPU time of one thread on the development machine (a
//! small bench of these two crates; runs agree within about 10%):
//!
//! | coder | MB/s | size |
//! |---|---|---|
//! | brotli q1, window 2^18 | 186 | 27.1% |
//! | brotli q3, window 2^18 | 108 | 25.4% |
//! | brotli q4, window 2^20 | 104 | 22.3% |
//! | brotli q5, window 2^22 | 53 | 21.5% |
//! | brotli q6, window 2^22 | 37 | 21.0% |
//! | gzip 1 | 187 | 35.7% |
//! | gzip 3 | 85 | 24.8% |
//! | gzip 5 | 56 | 24.2% |
//! | gzip 6 | 32 | 23.7% |
//! | gzip 9 | 28 | 23.6% |
//!
//! A stored body is compressed once, on a pool thread, and served many
//! times, so bytes saved count more than CPU spent: brotli q5 (3.6% smaller
//! than q4 for twice the time, paid once; q6 would cost 40% more time for
//! 2% less) with the 4 MiB window (bodies up to 10 MB find matches across
//! it; for 1 MiB the time is the same as with 1 MiB), about 20 ms per MiB;
//! gzip 6, the usual default (gzip is for the viewers without brotli),
//! about 33 ms per MiB. A body streamed through is compressed on the event
//! loop, a read at a time: brotli q3 over a 256 KiB window and gzip 3 do
//! about 100 MB/s, so a 16 KiB read costs about 0.16 ms; gzip 3 is within
//! 5% of gzip 6's size (gzip 1, twice as fast, is a third larger), brotli
//! q3 a sixth larger than q5 and still smaller than gzip; q1 would save
//! half the time for 7% more bytes.

use std::io::Write;

/// A content coding ringfront produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
}

impl Coding {
    /// Both, in the order of preference (SPEC §4: brotli over gzip).
    pub const ALL: [Coding; 2] = [Coding::Br, Coding::Gzip];

    /// The coding's token (Content-Encoding, and the normalised
    /// Accept-Encoding that selects it).
    pub fn token(self) -> &'static [u8] {
        match self {
            Coding::Br => b"br",
            Coding::Gzip => b"gzip",
        }
    }

    /// The coding a normalised Accept-Encoding (`br`, `gzip`, `identity`:
    /// [`normalize_accept_encoding`](crate::cache::key::normalize_accept_encoding))
    /// asks for; `None`: identity.
    pub fn accepted(normalised: &[u8]) -> Option<Coding> {
        Coding::ALL.into_iter().find(|c| c.token() == normalised)
    }
}

/// Brotli quality and window (log2) for stored bodies.
const STORED_BR: (u32, u32) = (5, 22);
/// Gzip level for stored bodies.
const STORED_GZIP: u32 = 6;
/// Brotli quality and window (log2) for streamed bodies.
const STREAM_BR: (u32, u32) = (3, 18);
/// Gzip level for streamed bodies.
const STREAM_GZIP: u32 = 3;
/// The brotli writer's buffer between the coder and the output.
const BR_BUFFER: usize = 16 * 1024;

/// `data` compressed whole in `coding`, at the stored levels. Blocking: a
/// pool thread's work. `None` only if the coder failed (writing into a
/// `Vec` does not).
pub fn compress(coding: Coding, data: &[u8]) -> Option<Vec<u8>> {
    let mut e = Encoder::with(coding, STORED_BR, STORED_GZIP, data.len() / 4);
    let mut out = Vec::new();
    e.push(data, &mut out).then_some(())?;
    e.finish(&mut out).then_some(out)
}

/// Responses a worker compresses as they stream, at once, at most: each
/// coder holds about 1 MiB of state (brotli's window and tables) and each
/// step of one is a slice of the event loop's time, so a burst of
/// uncacheable compressible responses (or viewers that request them and
/// never read) neither grows memory without bound nor queues more than a
/// few slices ahead of a hit. Past it, responses stream as they came.
pub const MAX_STREAMS: usize = 8;

thread_local! {
    static STREAMS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One of this thread's [`MAX_STREAMS`] streaming coders, given back when
/// dropped.
pub struct StreamSlot(());

impl StreamSlot {
    /// A slot, when this thread has one free.
    pub fn take() -> Option<StreamSlot> {
        STREAMS.with(|n| (n.get() < MAX_STREAMS).then(|| n.set(n.get() + 1)))?;
        Some(StreamSlot(()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        STREAMS.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// A coder fed a body piece by piece.
pub enum Encoder {
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
}

impl Encoder {
    /// A coder at the streaming levels.
    pub fn stream(coding: Coding) -> Encoder {
        Encoder::with(coding, STREAM_BR, STREAM_GZIP, 0)
    }

    fn with(coding: Coding, (quality, lgwin): (u32, u32), level: u32, capacity: usize) -> Encoder {
        let sink = Vec::with_capacity(capacity);
        match coding {
            Coding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(sink, BR_BUFFER, quality, lgwin))),
            Coding::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(sink, flate2::Compression::new(level))),
        }
    }

    /// Compresses `data`, moving what the coder has written so far to the
    /// end of `out` (it may hold data back until it has a block). False:
    /// the coder failed.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let sink = match self {
            Encoder::Br(w) => w.write_all(data).map(|_| w.get_mut()),
            Encoder::Gzip(w) => w.write_all(data).map(|_| w.get_mut()),
        };
        let Ok(sink) = sink else { return false };
        if out.is_empty() {
            std::mem::swap(out, sink);
        } else {
            out.append(sink);
        }
        true
    }

    /// Ends the stream, appending the rest of it to `out`. False: the
    /// coder failed.
    pub fn finish(self, out: &mut Vec<u8>) -> bool {
        let rest = match self {
            Encoder::Br(w) => Ok(w.into_inner()),
            Encoder::Gzip(w) => w.finish(),
        };
        let Ok(mut rest) = rest else { return false };
        if out.is_empty() {
            *out = rest;
        } else {
            out.append(&mut rest);
        }
        true
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    pub(crate) fn unbrotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        brotli::Decompressor::new(data, 4096).read_to_end(&mut out).unwrap();
        out
    }

    pub(crate) fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data).read_to_end(&mut out).unwrap();
        out
    }

    fn text(n: usize) -> Vec<u8> {
        (0..n).map(|i| b"<p>ringfront compresses text</p>\n"[i % 33]).collect()
    }

    #[test]
    fn a_whole_body_round_trips_in_both_codings() {
        let data = text(100_000);
        let br = compress(Coding::Br, &data).unwrap();
        let gz = compress(Coding::Gzip, &data).unwrap();
        assert!(br.len() < data.len() / 10 && gz.len() < data.len() / 10);
        assert_eq!(unbrotli(&br), data);
        assert_eq!(gunzip(&gz), data);
        assert_eq!(unbrotli(&compress(Coding::Br, b"").unwrap()), b"");
    }

    #[test]
    fn a_stream_fed_in_pieces_round_trips() {
        let data = text(300_000);
        for c in Coding::ALL {
            let mut e = Encoder::stream(c);
            let mut out = Vec::new();
            let mut wire = Vec::new();
            for piece in data.chunks(16 * 1024) {
                assert!(e.push(piece, &mut out));
                wire.append(&mut out);
            }
            assert!(e.finish(&mut out));
            wire.append(&mut out);
            let back = match c {
                Coding::Br => unbrotli(&wire),
                Coding::Gzip => gunzip(&wire),
            };
            assert_eq!(back, data, "{c:?}");
        }
    }

    #[test]
    fn tokens_and_accepted_codings() {
        assert_eq!(Coding::accepted(b"br"), Some(Coding::Br));
        assert_eq!(Coding::accepted(b"gzip"), Some(Coding::Gzip));
        assert_eq!(Coding::accepted(b"identity"), None);
        assert_eq!(Coding::Br.token(), b"br");
    }
}
