//! Record buffers lent to TLS connections by their worker.
//!
//! A TLS connection needs a buffer of about one record (18 KiB) for the
//! ciphertext it reads, one for the records it sends, and one to gather a
//! write's pieces into one record, but only while a read, a write or a
//! handshake is under way: between requests it holds none of them (see
//! `server.rs`). A connection takes a buffer when it starts one and gives it
//! back when it is done, so a worker keeps as many as its connections use at
//! once, reused request after request (no allocation per request once
//! warm). Buffers are per thread, and so per worker (thread-per-core): no
//! lock, no sharing.
//!
//! The spare ones are trimmed once a second ([`trim`]): those nobody took
//! in the last interval are freed, so a load that went away does not leave
//! its buffers behind.

use std::cell::RefCell;
use std::io;
use std::ops::Range;

/// A buffer's size: the largest TLS record on the wire, a 5-byte header and
/// 2^14 bytes of plaintext plus the 2,048 bytes of expansion TLS 1.2 allows
/// (RFC 5246 §6.2.3; TLS 1.3 allows 256, RFC 8446 §5.2).
pub const RECORD_BUF: usize = 5 + (1 << 14) + 2048;

/// Most spare buffers a worker keeps (about 18 MiB); more are freed when
/// given back.
const KEEP: usize = 1024;

/// One worker's spare buffers, and the fewest it held since the last trim
/// (that many went unused).
#[derive(Default)]
struct Spares {
    free: Vec<Box<[u8]>>,
    low: usize,
}

thread_local! {
    static SPARES: RefCell<Spares> = RefCell::new(Spares::default());
}

/// A zeroed buffer of [`RECORD_BUF`] bytes: a spare one, else a new one.
pub fn take() -> Box<[u8]> {
    let spare = SPARES.with(|s| {
        let mut s = s.borrow_mut();
        let b = s.free.pop();
        s.low = s.low.min(s.free.len());
        b
    });
    spare.unwrap_or_else(|| vec![0u8; RECORD_BUF].into_boxed_slice())
}

/// Gives a buffer back (its contents are left as they are: every user
/// tracks how much of it holds bytes). One of another size is freed.
pub fn give(b: Box<[u8]>) {
    if b.len() != RECORD_BUF {
        return;
    }
    SPARES.with(|s| {
        let mut s = s.borrow_mut();
        if s.free.len() < KEEP {
            s.free.push(b);
        }
    });
}

/// Frees the spare buffers no one took since the last trim. Called once a
/// second by each worker.
pub fn trim() {
    SPARES.with(|s| {
        let mut s = s.borrow_mut();
        let unused = s.low.min(s.free.len());
        let keep = s.free.len() - unused;
        s.free.truncate(keep);
        if s.free.is_empty() {
            s.free = Vec::new();
        }
        s.low = s.free.len();
    });
}

/// Bytes held in a lent buffer, `buf[start..end]`; no buffer at all once
/// they are used up and it is [released](Held::release).
#[derive(Default)]
pub struct Held {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Whether a buffer is lent.
    #[cfg(test)]
    pub fn has_buffer(&self) -> bool {
        !self.buf.is_empty()
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.buf.get_mut(self.start..self.end).unwrap_or_default()
    }

    /// The first `n` bytes are used up.
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.is_empty() {
            (self.start, self.end) = (0, 0);
        }
    }

    /// Room after the bytes: a buffer is taken when there is none, and the
    /// bytes move to its front first.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = take();
            (self.start, self.end) = (0, 0);
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
        }
        self.buf.get_mut(self.end..).unwrap_or_default()
    }

    /// `n` bytes were written into [`Held::spare`].
    pub fn added(&mut self, n: usize) {
        self.end = self.end.saturating_add(n).min(self.buf.len());
    }

    /// Appends `bytes`, growing the buffer up to `max` bytes held.
    pub fn append(&mut self, bytes: &[u8], max: usize) -> io::Result<()> {
        if self.spare().len() < bytes.len() {
            self.grow(bytes.len(), max)?;
        }
        if let Some(room) = self.spare().get_mut(..bytes.len()) {
            room.copy_from_slice(bytes);
            self.added(bytes.len());
        }
        Ok(())
    }

    /// Makes room for `need` more bytes (a bigger buffer, freed rather than
    /// kept when given back), unless that would hold more than `max`.
    pub fn grow(&mut self, need: usize, max: usize) -> io::Result<()> {
        let held = self.bytes().len();
        let len = held.saturating_add(need);
        if len > max {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS buffer bound exceeded"));
        }
        if self.spare().len() >= need {
            return Ok(());
        }
        let mut bigger = vec![0u8; len].into_boxed_slice();
        if let Some(front) = bigger.get_mut(..held) {
            front.copy_from_slice(self.bytes());
        }
        give(std::mem::replace(&mut self.buf, bigger));
        (self.start, self.end) = (0, held);
        Ok(())
    }

    /// Copies bytes into `dst` (as many as fit) and uses them up.
    pub fn copy_out(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.bytes().len());
        if let (Some(d), Some(s)) = (dst.get_mut(..n), self.bytes().get(..n)) {
            d.copy_from_slice(s);
        }
        self.consume(n);
        self.release();
        n
    }

    /// The buffer, to read into its spare room (the range) by an operation
    /// that owns it meanwhile; [`Held::restore`] it after.
    pub fn lend_spare(&mut self) -> (Box<[u8]>, Range<usize>) {
        let room = self.spare().len();
        let range = self.end..self.end + room;
        (std::mem::take(&mut self.buf), range)
    }

    /// The buffer, to send its bytes (the range) by an operation that owns
    /// it meanwhile; [`Held::restore`] it after.
    pub fn lend_bytes(&mut self) -> (Box<[u8]>, Range<usize>) {
        (std::mem::take(&mut self.buf), self.start..self.end)
    }

    pub fn restore(&mut self, buf: Box<[u8]>) {
        self.buf = buf;
        self.end = self.end.min(self.buf.len());
        self.start = self.start.min(self.end);
    }

    /// Forgets the bytes held.
    pub fn clear(&mut self) {
        (self.start, self.end) = (0, 0);
    }

    /// Gives the buffer back if it holds nothing.
    pub fn release(&mut self) {
        if self.is_empty() && !self.buf.is_empty() {
            give(std::mem::take(&mut self.buf));
            (self.start, self.end) = (0, 0);
        }
    }
}

/// Spare buffers this thread holds.
#[cfg(test)]
pub fn spares() -> usize {
    SPARES.with(|s| s.borrow().free.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_and_unused_spares_are_trimmed() {
        let a = take();
        let b = take();
        assert_eq!(a.len(), RECORD_BUF);
        let pb = b.as_ptr();
        give(a);
        give(b);
        assert_eq!(spares(), 2);
        trim(); // both were in use in this interval: both stay
        assert_eq!(spares(), 2);
        // Reused: the last one given back comes out first.
        let again = take();
        assert_eq!(again.as_ptr(), pb);
        give(again);
        // One spare went untouched in this interval: it goes; then the other.
        trim();
        assert_eq!(spares(), 1);
        trim();
        assert_eq!(spares(), 0);
        // A buffer of another size is not kept.
        give(vec![0u8; 10].into_boxed_slice());
        assert_eq!(spares(), 0);
    }

    #[test]
    fn held_bytes_borrow_a_buffer_only_while_there_are_some() {
        let mut h = Held::default();
        assert!(h.is_empty() && !h.has_buffer());
        h.append(b"hello world", RECORD_BUF).unwrap();
        assert!(h.has_buffer());
        assert_eq!(h.bytes(), b"hello world");
        h.consume(6);
        assert_eq!(h.bytes(), b"world");
        // New room moves what is held to the front.
        assert_eq!(h.spare().len(), RECORD_BUF - 5);
        assert_eq!(h.bytes(), b"world");
        let mut out = [0u8; 3];
        assert_eq!(h.copy_out(&mut out), 3);
        assert_eq!(&out, b"wor");
        assert!(h.has_buffer(), "two bytes still held");
        assert_eq!(h.copy_out(&mut out), 2);
        assert!(h.is_empty() && !h.has_buffer(), "given back once used up");
        assert_eq!(spares(), 1);
        // Beyond one buffer it grows, up to the bound, keeping the bytes.
        let big: Vec<u8> = (0..RECORD_BUF + 100).map(|i| i as u8).collect();
        h.append(&big[..10], RECORD_BUF * 2).unwrap();
        h.append(&big[10..], RECORD_BUF * 2).unwrap();
        assert_eq!(h.bytes(), &big[..]);
        assert!(h.append(&big, RECORD_BUF * 2).is_err(), "the bound holds");
        h.clear();
        h.release();
        assert!(!h.has_buffer());
        // The grown buffer is not kept as a spare; the one it replaced is.
        assert_eq!(spares(), 1);
    }
}
