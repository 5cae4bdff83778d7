//! One pooled origin connection over a sequence of exchanges, read with
//! `origin::reuse::ResponseReader` and pooled the way the proxy pools.
//!
//! The input is decoded into up to 16 exchanges. For request `i` (GET or
//! HEAD) the origin writes bytes tagged `i` into the connection's socket: a
//! response built from input choices (interim 1xx heads, status, version,
//! Connection, Content-Length / chunked / both / neither, a body, and maybe a
//! lie: a wrong Content-Length, a body on a bodiless answer, garbage or a
//! whole second response after the end) or raw input bytes; it may then
//! close. The proxy reads segments of input-chosen sizes and feeds each to
//! the reader until the response is done, fails, or the socket runs dry (a
//! timeout: the viewer gets an error). While the connection is idle in the
//! pool, stray bytes tagged "none" and/or the origin's FIN may arrive.
//!
//! The pool is modelled as the proxy has it: the connection is put back only
//! on `Reuse::Reusable`, and `take` closes it when it became readable while
//! idle (anything left in its socket, or FIN), so the next exchange starts on
//! a fresh connection. Stricter than the proxy (which clears its read buffer
//! between exchanges), bytes left in the read buffer travel with a reused
//! connection and are fed first to the next exchange, so a wrong verdict
//! shows up as cross-talk.
//!
//! The model assumes what was not read is visible to the pool's watch. That
//! holds for plain TCP (it is in the kernel's socket buffer); over TLS, bytes
//! already taken off the socket are held by the origin-side adapter, which
//! the pool asks as well (`Stream::has_buffered_input`, see
//! `tests/origin_untrusted_tls.rs`).
//!
//! Invariants beyond "no panic":
//! - every byte delivered to viewer `i`, head and body data, came from bytes
//!   tagged `i`, or viewer `i` gets an error;
//! - bytes left in the read buffer beyond a response's end make the verdict
//!   `Close`; `Reusable` only for a complete, error-free response;
//! - the outcome (status, data, error, whether the connection is retired)
//!   is the same as when everything the origin sent is read at once;
//! - an honest response (framing that tells the truth, nothing after it)
//!   yields its status and body exactly, and its connection is retired only
//!   when its head forbids reuse or the origin closed;
//! - agreement with the rules `proxy::forward` applies today:
//!   `response_complete` on the buffer that completed the head, and
//!   `rh.keep_alive && !extra_bytes` at the end of `deliver`.
//!
//! With `POOLED_ORIGIN_STATS` set, each input prints a line of counters to
//! stderr (exchanges, reused, retired, errors, honest, stray, leftover).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringfront::http::response::{RespBody, ResponseHead};
use ringfront::origin::reuse::{ResponseReader, Reuse};
use std::collections::VecDeque;
use std::io::Write;

/// Which write a byte came from: the exchange index, or [`STRAY`].
type Tag = u8;
const STRAY: Tag = u8::MAX;
const MAX_EXCHANGES: usize = 16;

/// The decoded input; reads past its end give zeros / nothing.
struct Src<'a> {
    d: &'a [u8],
    i: usize,
}

impl<'a> Src<'a> {
    fn u8(&mut self) -> u8 {
        let b = self.d.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        b
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = self.i.min(self.d.len());
        let e = s.saturating_add(n).min(self.d.len());
        self.i = e;
        &self.d[s..e]
    }
    fn done(&self) -> bool {
        self.i >= self.d.len()
    }
    /// The size of the next read.
    fn segment(&mut self) -> usize {
        if self.done() {
            return usize::MAX;
        }
        match self.u8() {
            b @ 0..=0xDF => 1 + (b as usize % 24),
            _ => usize::MAX, // all that is there
        }
    }
}

/// What an honest response must come to.
struct Honest {
    status: u16,
    data: Vec<u8>,
    /// Its head allows the connection to be reused.
    head_reusable: bool,
    /// The body runs to the origin's close.
    close_delimited: bool,
}

/// The origin's bytes for one request.
fn origin_writes(s: &mut Src, head_request: bool) -> (Vec<u8>, Option<Honest>) {
    let mode = s.u8();
    if mode % 4 == 0 {
        let n = s.u8() as usize * 2;
        return (s.take(n).to_vec(), None);
    }
    let mut out = Vec::new();
    for _ in 0..(mode >> 2) % 3 {
        let st = [100u16, 102, 103, 199][s.u8() as usize % 4];
        let _ = write!(out, "HTTP/1.1 {st} Interim\r\nLink: </i>\r\n\r\n");
    }
    let status = [200u16, 204, 304, 404, 503, 206, 299, 101][s.u8() as usize % 8];
    let v = s.u8();
    let http10 = v & 1 == 1;
    let conn = (v >> 1) % 3; // 0 none, 1 close, 2 keep-alive
    let framing = (v >> 3) % 4; // 0 Content-Length, 1 chunked, 2 both, 3 neither
    let lie = v >> 5; // 0..=3 honest; 4 wrong length; 5 body anyway; 6 garbage after; 7 a second response after
    let len = s.u8() as usize % 48;
    let mut body = s.take(len).to_vec();
    body.resize(len, b'b');
    let bodiless = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let _ = write!(out, "HTTP/1.{} {status} X\r\n", if http10 { 0 } else { 1 });
    match conn {
        1 => out.extend_from_slice(b"Connection: close\r\n"),
        2 => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        _ => {}
    }
    if framing == 0 || framing == 2 {
        let declared = if lie == 4 {
            (len + (s.u8() as usize % 5)).saturating_sub(2)
        } else {
            len
        };
        let _ = write!(out, "Content-Length: {declared}\r\n");
    }
    if framing == 1 || framing == 2 {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !bodiless || lie == 5 {
        if framing == 1 || framing == 2 {
            let mut rest = &body[..];
            while !rest.is_empty() {
                let k = (1 + s.u8() as usize % 16).min(rest.len());
                let _ = write!(out, "{k:x}");
                if s.u8() & 1 == 1 {
                    out.extend_from_slice(b";ext=1");
                }
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&rest[..k]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[k..];
            }
            out.extend_from_slice(b"0\r\n");
            if s.u8() & 1 == 1 {
                out.extend_from_slice(b"X-Trailer: t\r\n");
            }
            out.extend_from_slice(b"\r\n");
        } else {
            out.extend_from_slice(&body);
        }
    }
    match lie {
        6 => {
            let n = 1 + s.u8() as usize % 8;
            let g = s.take(n);
            out.extend_from_slice(if g.is_empty() { b"\r\n" } else { g });
        }
        7 => out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"),
        _ => {}
    }
    let honest = (lie < 4 && status != 101).then(|| {
        let keep = conn != 1 && (!http10 || conn == 2);
        Honest {
            status,
            data: if bodiless { Vec::new() } else { body },
            // Never after a bodiless response (origin::reuse).
            head_reusable: keep && !bodiless && framing != 3 && framing != 2,
            close_delimited: !bodiless && framing == 3,
        }
    });
    (out, honest)
}

/// The pooling rule for a buffered response, stated independently of the
/// reader: framed, keep-alive, with a body (never after a bodiless
/// response), ending exactly at the end of the buffer.
fn legacy_response_complete(buf: &[u8], rh: &ResponseHead) -> bool {
    if !rh.keep_alive {
        return false;
    }
    match rh.body() {
        RespBody::None => false,
        RespBody::Length(n) => buf.len() as u64 == rh.head_len as u64 + n,
        RespBody::Chunked | RespBody::Close => false,
    }
}

/// An origin connection: what its socket holds, and whether FIN came.
#[derive(Default)]
struct Conn {
    sock: VecDeque<(u8, Tag)>,
    fin: bool,
}

impl Conn {
    /// The pool's watch: anything to read (bytes or FIN) closes it.
    fn readable(&self) -> bool {
        !self.sock.is_empty() || self.fin
    }
}

/// What one exchange came to.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: Option<u16>,
    data: Vec<u8>,
    error: bool,
    /// The connection does not go on: verdict Close, or readable at `take`.
    retired: bool,
}

/// Reads one response from `c` (after feeding `carry`, bytes left in the
/// read buffer), checks the per-exchange invariants, and returns the outcome,
/// the reader and the bytes left in the read buffer.
fn exchange(
    s: &mut Src,
    c: &mut Conn,
    carry: Vec<(u8, Tag)>,
    head_request: bool,
    tag: Tag,
) -> (Outcome, ResponseReader, Vec<(u8, Tag)>) {
    let mut r = ResponseReader::new(head_request);
    let mut buf = carry;
    let mut data: Vec<(u8, Tag)> = Vec::new();
    // Every byte the reader said belongs to the response, in order.
    let mut fed: Vec<(u8, Tag)> = Vec::new();
    let mut leftover: Vec<(u8, Tag)> = Vec::new();
    let mut error = false;
    let mut legacy_extra = false;
    loop {
        if buf.is_empty() {
            if c.sock.is_empty() {
                // FIN, or nothing more comes: the response timeout.
                error = !c.fin || r.eof().is_err();
                break;
            }
            let n = s.segment().min(c.sock.len());
            buf.extend(c.sock.drain(..n));
        }
        let bytes: Vec<u8> = buf.iter().map(|b| b.0).collect();
        let mut last = 0;
        let res = r.feed(&bytes, |rg| {
            assert!(
                rg.start >= last && rg.start < rg.end && rg.end <= bytes.len(),
                "range {rg:?}"
            );
            last = rg.end;
            data.extend_from_slice(&buf[rg]);
        });
        let f = match res {
            Ok(f) => f,
            Err(_) => {
                error = true;
                break;
            }
        };
        assert!(f.used <= bytes.len() && last <= f.used);
        fed.extend_from_slice(&buf[..f.used]);
        if f.used < bytes.len() {
            assert!(f.done, "bytes left over before the response's end");
            leftover = buf[f.used..].to_vec();
            legacy_extra = true;
        }
        if f.head {
            // `forward` pools on `response_complete` of the buffer holding
            // the head (interims drained) and all that was read with it.
            let skipped = r.skipped() as usize;
            let (hb, rh) = r.head().expect("head after Fed::head");
            let mut legacy_buf: Vec<u8> = fed[skipped..].iter().map(|b| b.0).collect();
            legacy_buf.extend(leftover.iter().map(|b| b.0));
            assert!(legacy_buf.starts_with(hb));
            let legacy = legacy_response_complete(&legacy_buf, rh);
            if legacy {
                assert!(
                    f.done && r.verdict() == Reuse::Reusable,
                    "response_complete pools, reader does not"
                );
            }
            if f.done && r.verdict() == Reuse::Reusable && rh.body() != RespBody::Chunked {
                assert!(legacy, "reader pools, response_complete does not");
            }
        }
        buf.clear();
        if f.done {
            break;
        }
    }
    let verdict = r.verdict();
    if verdict == Reuse::Reusable {
        assert!(!error && r.is_done());
        assert!(leftover.is_empty(), "Reusable with bytes beyond the end in the buffer");
    }
    if !leftover.is_empty() || error {
        assert_eq!(verdict, Reuse::Close);
    }
    if r.is_done() && !error {
        // `deliver`: `rh.keep_alive && !extra_bytes` once the body is done
        // (a close-delimited body ends at EOF, never reused).
        let (_, rh) = r.head().expect("head when done");
        let legacy = rh.keep_alive && !legacy_extra && rh.body() != RespBody::Close && rh.body() != RespBody::None;
        assert_eq!(legacy, verdict == Reuse::Reusable, "deliver's rule disagrees");
    }
    // The head came from this request's bytes, and is where the reader says.
    if let Some((hb, rh)) = r.head() {
        let at = r.skipped() as usize;
        let head = fed.get(at..at + rh.head_len).expect("head inside what was fed");
        assert!(head.iter().map(|b| b.0).eq(hb.iter().copied()));
        if !error {
            assert!(head.iter().all(|b| b.1 == tag), "head from another write");
        }
    }
    if !error {
        assert!(data.iter().all(|b| b.1 == tag), "body data from another write");
    }
    let out = Outcome {
        status: r.status(),
        data: data.iter().map(|b| b.0).collect(),
        error,
        retired: error || verdict == Reuse::Close || c.readable(),
    };
    (out, r, leftover)
}

/// The same exchange with everything the origin sent read at once.
fn read_at_once(bytes: &[u8], fin: bool, head_request: bool) -> Outcome {
    let mut r = ResponseReader::new(head_request);
    let mut data = Vec::new();
    let mut error = r.feed(bytes, |rg| data.extend_from_slice(&bytes[rg])).is_err();
    if !error && !r.is_done() {
        error = !fin || r.eof().is_err();
    }
    Outcome {
        status: r.status(),
        data,
        error,
        retired: error || r.verdict() == Reuse::Close || fin,
    }
}

#[derive(Default, Debug)]
struct Stats {
    exchanges: u32,
    reused: u32,
    retired: u32,
    errors: u32,
    honest: u32,
    stray: u32,
    leftover: u32,
}

fuzz_target!(|input: &[u8]| {
    let mut s = Src { d: input, i: 0 };
    let mut st = Stats::default();
    // The pool: at most one idle connection, with its read buffer.
    let mut idle: Option<(Conn, Vec<(u8, Tag)>)> = None;
    for i in 0..MAX_EXCHANGES {
        if s.done() {
            break;
        }
        let tag = i as Tag;
        let flags = s.u8();
        let head_request = flags & 1 == 1;
        // `take`: a connection that became readable while idle is closed.
        let (mut c, carry) = match idle.take() {
            Some((c, carry)) if !c.readable() => {
                st.reused += 1;
                (c, carry)
            }
            _ => (Conn::default(), Vec::new()),
        };
        let fresh_buffer = carry.is_empty();
        let (bytes, honest) = origin_writes(&mut s, head_request);
        c.sock.extend(bytes.iter().map(|&b| (b, tag)));
        // The origin closes after its response (one time in four).
        c.fin = flags & 6 == 6;
        let (out, reader, leftover) = exchange(&mut s, &mut c, carry, head_request, tag);
        st.exchanges += 1;
        st.errors += out.error as u32;
        st.retired += out.retired as u32;
        st.leftover += !leftover.is_empty() as u32;
        if fresh_buffer {
            assert_eq!(
                out,
                read_at_once(&bytes, c.fin, head_request),
                "outcome depends on segmentation"
            );
        }
        if let (Some(h), true) = (&honest, fresh_buffer) {
            st.honest += 1;
            if h.close_delimited && !c.fin {
                assert!(out.error, "close-delimited body ended without a close");
            } else {
                assert!(!out.error, "honest response failed");
                assert_eq!(out.status, Some(h.status));
                assert!(out.data == h.data, "honest body altered");
                assert_eq!(out.retired, !h.head_reusable || c.fin, "honest response's connection");
            }
        }
        // `forward` puts the connection back only on Reusable (then nothing
        // is left in the buffer); `Pool::put` and `take` close it when it
        // is readable (the check at the top of the loop).
        if reader.verdict() == Reuse::Reusable {
            idle = Some((c, leftover));
        }
        // While idle: stray bytes and/or the origin's FIN.
        if let Some((c, _)) = idle.as_mut() {
            if flags & 8 == 8 {
                let n = 1 + s.u8() as usize % 8;
                let b = s.take(n);
                let b = if b.is_empty() { &b"\r\n"[..] } else { b };
                c.sock.extend(b.iter().map(|&b| (b, STRAY)));
                st.stray += 1;
            }
            if flags & 0x30 == 0x30 {
                c.fin = true;
            }
        }
    }
    if std::env::var_os("POOLED_ORIGIN_STATS").is_some() {
        eprintln!("pooled_origin_stats {st:?}");
    }
});
