//! A sans-io decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! The proxy forwards chunked bodies byte for byte, so it does not need the
//! data, only where the message ends and whether it is well formed; when a
//! viewer speaks HTTP/1.0 it also needs the data ranges to strip the framing.
//! The decoder therefore walks bytes it is given, reports data ranges through
//! a callback, and says how many bytes belong to the message. It holds no
//! buffer and keeps its state between calls, so a body split anywhere across
//! reads decodes the same.
//!
//! Strictness (a smuggling defence, RFC 9112 §7.1 and §11.2): chunk sizes are
//! hex digits only and at most 16 of them; lines end in CRLF (bare LF or CR is
//! an error); chunk extensions follow their grammar (§7.1.1: `;` name
//! [`=` token or quoted-string], whitespace only around `;` and `=`); trailer
//! lines are field lines (§7.1.2: a token, `:`, a value without controls);
//! extensions and the trailer section are bounded. Neither is ever passed
//! on: what ringfront forwards is framed again (`http::frame`).

use super::token::is_tchar;
use std::ops::Range;

/// Why a chunked body is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk-size line that is not `1*HEXDIG [ BWS ; ext ] CRLF`.
    BadSize,
    /// The CRLF after chunk data is missing.
    BadDataEnd,
    /// A chunk extension or the trailer section is over its bound.
    TooLong,
    /// A malformed line ending in the trailer section.
    BadTrailer,
}

const MAX_EXT: u32 = 4096;
const MAX_TRAILER: u32 = 16 * 1024;

/// Where a chunk extension is (RFC 9112 §7.1.1):
/// `*( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtPart {
    /// After `;`: whitespace, then a name.
    BeforeName,
    Name,
    /// After the name: whitespace, then `=`, `;` or CR.
    AfterName,
    /// After `=`: whitespace, then a token or a quoted string.
    BeforeValue,
    Token,
    Quoted,
    QuotedEscape,
    /// After a value: whitespace, then `;` or CR.
    AfterValue,
}

impl ExtPart {
    /// The part after byte `b`; `None` when `b` breaks the grammar. CR is
    /// handled by the caller (it ends the extension where that is allowed).
    fn next(self, b: u8) -> Option<ExtPart> {
        use ExtPart::*;
        let ws = b == b' ' || b == b'\t';
        Some(match self {
            BeforeName if ws => BeforeName,
            BeforeName | Name if is_tchar(b) => Name,
            Name | AfterName if ws => AfterName,
            Name | AfterName | Token | AfterValue if b == b';' => BeforeName,
            Name | AfterName if b == b'=' => BeforeValue,
            BeforeValue if ws => BeforeValue,
            BeforeValue if b == b'"' => Quoted,
            BeforeValue | Token if is_tchar(b) => Token,
            Token | AfterValue if ws => AfterValue,
            Quoted if b == b'"' => AfterValue,
            Quoted if b == b'\\' => QuotedEscape,
            Quoted | QuotedEscape if b == b'\t' || b == b' ' || (b >= 0x21 && b != 0x7f) => Quoted,
            _ => return None,
        })
    }

    /// True when a CR may end the extension here.
    fn may_end(self) -> bool {
        matches!(
            self,
            ExtPart::Name | ExtPart::AfterName | ExtPart::Token | ExtPart::AfterValue
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` so far.
    Size { digits: u8 },
    /// After the digits: `;`, CR, or whitespace before a `;`.
    SizeWs,
    /// Whitespace after the digits: a `;` must follow.
    SizeBws,
    /// Inside a chunk extension (`len` bytes so far), at `part` of its grammar.
    Ext { len: u32, part: ExtPart },
    /// Expecting the LF that ends the size line.
    SizeLf,
    /// Chunk data remaining.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field name (`named`: at least one token character).
    TrailerName { named: bool },
    /// Inside a trailer field value.
    TrailerLine,
    /// Expecting LF after a CR at the end of a trailer line.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    EndLf,
    /// The message is complete.
    Done,
}

/// Incremental chunked decoder; see the module doc.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    remaining: u64,
    trailer: u32,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {
            state: State::Size { digits: 0 },
            remaining: 0,
            trailer: 0,
        }
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Walks `buf`. Data ranges (indices into `buf`) go to `on_data`. Returns
    /// how many bytes of `buf` belong to this message: all of it unless the
    /// message ended inside `buf`, in which case bytes after the end belong to
    /// whatever follows (a pipelined request, say).
    pub fn feed(&mut self, buf: &[u8], mut on_data: impl FnMut(Range<usize>)) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < buf.len() {
            let b = buf[i];
            match self.state {
                State::Done => return Ok(i),
                State::Data => {
                    let n = (self.remaining.min((buf.len() - i) as u64)) as usize;
                    on_data(i..i + n);
                    self.remaining -= n as u64;
                    i += n;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                    continue;
                }
                State::Size { digits } => {
                    if let Some(v) = hex(b) {
                        if digits >= 16 {
                            return Err(ChunkError::BadSize);
                        }
                        self.remaining = (self.remaining << 4) | v as u64;
                        self.state = State::Size { digits: digits + 1 };
                    } else if digits == 0 {
                        return Err(ChunkError::BadSize);
                    } else {
                        self.state = State::SizeWs;
                        continue; // re-examine this byte
                    }
                }
                State::SizeWs => match b {
                    // Whitespace after the size only before an extension.
                    b' ' | b'\t' => self.state = State::SizeBws,
                    b';' => self.state = ext(0, ExtPart::BeforeName),
                    b'\r' => self.state = State::SizeLf,
                    _ => return Err(ChunkError::BadSize),
                },
                State::SizeBws => match b {
                    b' ' | b'\t' => {}
                    b';' => self.state = ext(0, ExtPart::BeforeName),
                    _ => return Err(ChunkError::BadSize),
                },
                State::Ext { len, part } => match b {
                    b'\r' if part.may_end() => self.state = State::SizeLf,
                    _ if len >= MAX_EXT => return Err(ChunkError::TooLong),
                    _ => match part.next(b) {
                        Some(p) => self.state = ext(len + 1, p),
                        None => return Err(ChunkError::BadSize),
                    },
                },
                State::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadSize);
                    }
                    self.state = if self.remaining == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    };
                }
                State::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError::BadDataEnd);
                    }
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadDataEnd);
                    }
                    self.state = State::Size { digits: 0 };
                    self.remaining = 0;
                }
                State::TrailerStart => match b {
                    b'\r' => self.state = State::EndLf,
                    _ if is_tchar(b) => self.trailer_byte(State::TrailerName { named: true })?,
                    _ => return Err(ChunkError::BadTrailer),
                },
                State::TrailerName { named } => match b {
                    b':' if named => self.trailer_byte(State::TrailerLine)?,
                    _ if is_tchar(b) => self.trailer_byte(State::TrailerName { named: true })?,
                    _ => return Err(ChunkError::BadTrailer),
                },
                State::TrailerLine => match b {
                    b'\r' => self.trailer_byte(State::TrailerLf)?,
                    // A field value: no controls but HTAB (RFC 9110 §5.5).
                    b'\t' => self.trailer_byte(State::TrailerLine)?,
                    _ if b < 0x20 || b == 0x7f => return Err(ChunkError::BadTrailer),
                    _ => self.trailer_byte(State::TrailerLine)?,
                },
                State::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadTrailer);
                    }
                    self.trailer_byte(State::TrailerStart)?;
                }
                State::EndLf => {
                    if b != b'\n' {
                        return Err(ChunkError::BadTrailer);
                    }
                    self.state = State::Done;
                    return Ok(i + 1);
                }
            }
            i += 1;
        }
        Ok(i)
    }

    fn trailer_byte(&mut self, next: State) -> Result<(), ChunkError> {
        self.trailer += 1;
        if self.trailer > MAX_TRAILER {
            return Err(ChunkError::TooLong);
        }
        self.state = next;
        Ok(())
    }
}

fn ext(len: u32, part: ExtPart) -> State {
    State::Ext { len, part }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut d = ChunkedDecoder::new();
        let mut data = Vec::new();
        let mut consumed = 0;
        for part in input.chunks(step.max(1)) {
            let n = d.feed(part, |r| data.extend_from_slice(&part[r]))?;
            consumed += n;
            if d.is_done() {
                break;
            }
        }
        assert!(d.is_done(), "not done");
        Ok((data, consumed))
    }

    #[test]
    fn simple_body_any_split() {
        let msg = b"5\r\nhello\r\n6;name=val\r\n world\r\n0\r\n\r\nGET / HTTP/1.1";
        for step in 1..msg.len() {
            let (data, used) = decode_all(msg, step).unwrap();
            assert_eq!(data, b"hello world");
            assert_eq!(used, msg.len() - "GET / HTTP/1.1".len(), "step {step}");
        }
    }

    #[test]
    fn trailers() {
        let msg = b"3\r\nabc\r\n0\r\nx-sum: 1\r\nx-b: 2\r\n\r\n";
        let (data, used) = decode_all(msg, 4).unwrap();
        assert_eq!(data, b"abc");
        assert_eq!(used, msg.len());
    }

    #[test]
    fn extensions_in_their_grammar_pass() {
        for ext in [
            &b";a"[..],
            b";a=b",
            b" ; a = b ; c",
            b";a=\"q u\\\"o;te\"",
            b";a=\"\" ;b=tok",
        ] {
            let mut msg = b"3".to_vec();
            msg.extend_from_slice(ext);
            msg.extend_from_slice(b"\r\nabc\r\n0\r\n\r\n");
            let (data, _) =
                decode_all(&msg, 1).unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(&msg)));
            assert_eq!(data, b"abc");
        }
    }

    #[test]
    fn uppercase_hex_and_ws_before_ext() {
        let (data, _) = decode_all(b"A ;x\r\n0123456789\r\n0\r\n\r\n", 3).unwrap();
        assert_eq!(data.len(), 10);
    }

    #[test]
    fn rejects_bad_framing() {
        let cases: &[(&[u8], ChunkError)] = &[
            (b"\r\n", ChunkError::BadSize),
            (b"x\r\n", ChunkError::BadSize),
            (b"-1\r\n", ChunkError::BadSize),
            (b"+5\r\nhello\r\n", ChunkError::BadSize),
            (b"0x5\r\nhello\r\n", ChunkError::BadSize),
            (b"5\nhello\r\n", ChunkError::BadSize),
            (b"5\rhello", ChunkError::BadSize),
            (b"11111111111111111\r\n", ChunkError::BadSize),
            (b"5\r\nhelloX\r\n", ChunkError::BadDataEnd),
            (b"5\r\nhello\n0\r\n\r\n", ChunkError::BadDataEnd),
            (b"0\r\n\n", ChunkError::BadTrailer),
            (b"0\r\nx: y\n\r\n", ChunkError::BadTrailer),
            (b"0\r\n obs-fold\r\n\r\n", ChunkError::BadTrailer),
            // Extensions outside their grammar (RFC 9112 §7.1.1).
            (b"5;\r\nhello\r\n", ChunkError::BadSize),
            (b"5;bad[=x\r\nhello\r\n", ChunkError::BadSize),
            (b"5 \r\nhello\r\n", ChunkError::BadSize),
            (b"5;\x0b\r\nhello\r\n", ChunkError::BadSize),
            (b"5;\xff\r\nhello\r\n", ChunkError::BadSize),
            (b"5;a=\r\nhello\r\n", ChunkError::BadSize),
            (b"5;a=\"x\r\nhello\r\n", ChunkError::BadSize),
            (b"5;a b\r\nhello\r\n", ChunkError::BadSize),
            // Trailer lines are field lines (§7.1.2).
            (b"0\r\nGET /smuggled HTTP/1.1\r\n\r\n", ChunkError::BadTrailer),
            (b"0\r\n: v\r\n\r\n", ChunkError::BadTrailer),
            (b"0\r\nx-a: b\x01\r\n\r\n", ChunkError::BadTrailer),
        ];
        for (input, want) in cases {
            let mut d = ChunkedDecoder::new();
            assert_eq!(
                d.feed(input, |_| {}),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn sixteen_hex_digits_is_the_bound() {
        let mut d = ChunkedDecoder::new();
        assert!(d.feed(b"000000000000000F\r\n", |_| {}).is_ok());
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.feed(b"0000000000000000F", |_| {}), Err(ChunkError::BadSize));
    }

    #[test]
    fn extension_and_trailer_bounded() {
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'a', 5000));
        assert_eq!(ChunkedDecoder::new().feed(&long, |_| {}), Err(ChunkError::TooLong));
        let mut t = b"0\r\n".to_vec();
        for _ in 0..2000 {
            t.extend_from_slice(b"x-a: bbbbbbbbbbbb\r\n");
        }
        assert_eq!(ChunkedDecoder::new().feed(&t, |_| {}), Err(ChunkError::TooLong));
    }

    #[test]
    fn incomplete_is_not_done() {
        let mut d = ChunkedDecoder::new();
        assert_eq!(d.feed(b"5\r\nhel", |_| {}), Ok(6));
        assert!(!d.is_done());
    }
}
