//! The viewer side of TLS: rustls' unbuffered server connection driven
//! over monoio's owned-buffer `TcpStream`, holding record buffers only
//! while it uses them.
//!
//! Why rustls' unbuffered API (`UnbufferedServerConnection`), not a
//! `ServerConnection` as on the origin side: a `ServerConnection` reads
//! ciphertext into a buffer of its own, which `read_tls` sizes to at least
//! 4 KiB and never frees for the session's life, so an idle session could
//! not get under 4 KiB. The unbuffered connection reads from and writes
//! into buffers we own, and between requests we give them back. It costs
//! no more CPU: with either API rustls copies a record's plaintext out of
//! the ciphertext buffer, and encrypts into a record of its own that is
//! then copied out.
//!
//! Buffers (`buffers.rs`): `input` (ciphertext read, not yet processed to
//! the end), `output` (records on their way to the socket) and `plain`
//! (plaintext decrypted beyond what the reader asked for). Each is borrowed
//! from the worker's spares when needed and given back when it empties, so
//! once a response is written and the next request has not arrived, a
//! session holds none: its task may wait or it may park
//! ([`ServerTls::park`]) with rustls' state alone.
//!
//! Driving: [`Session::drive`] runs rustls over the ciphertext held until
//! it needs something only a socket can give (records sent, or more
//! ciphertext) or the job at hand (a read, a write, close_notify) is done;
//! the async methods do the socket side in between.

use super::buffers::{Held, RECORD_BUF};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Canceller};
use monoio::net::TcpStream;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, InsufficientSizeError};
use rustls::ServerConfig;
use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

/// Most plaintext encrypted per write: one full record.
const MAX_PLAINTEXT: usize = 1 << 14;

/// Most bytes `output` or `plain` may hold: a server flight with a long
/// certificate chain, or the plaintext of one full input buffer.
const MAX_HELD: usize = 4 * RECORD_BUF;

/// Most ciphertext held while a handshake message is assembled: rustls'
/// own limit on a handshake message (64 KiB) and a record.
const MAX_HANDSHAKE: usize = 0xffff + RECORD_BUF;

/// Most states rustls may go through in one drive: a full input buffer of
/// the smallest records is under 1,000; this only guards against a loop.
const MAX_STEPS: usize = 1 << 16;

/// A server TLS session over TCP.
pub struct ServerTls {
    tcp: TcpStream,
    s: Box<Session>,
}

/// A session apart from its socket: what a parked connection keeps.
pub struct Session {
    conn: UnbufferedServerConnection,
    input: Held,
    output: Held,
    plain: Held,
    /// The peer sent close_notify.
    peer_closed: bool,
}

/// What a session needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Records wait in `output`: send them, then drive again.
    Send,
    /// Nothing more happens without ciphertext from the peer.
    Read,
    /// The peer closed the session (nothing more will arrive).
    Eof,
    /// The write job encrypted this many bytes (or close_notify, 0) into
    /// `output`.
    Wrote(usize),
}

/// What a drive is for, besides processing what arrived.
#[derive(Clone, Copy)]
enum Job<'a> {
    Read,
    Write(&'a [u8]),
    Close,
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn protocol(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Session {
    /// Processes the ciphertext held until a socket is needed or the job is
    /// done; plaintext goes into `dst` (counted in `got`), what does not fit
    /// into `plain`. On a TLS error, the alert rustls queued is left in
    /// `output` (to send, best effort).
    fn drive(&mut self, job: Job<'_>, dst: &mut [u8], got: &mut usize) -> io::Result<Next> {
        for _ in 0..MAX_STEPS {
            let status = self.conn.process_tls_records(self.input.bytes_mut());
            let discard = status.discard;
            let step = match status.state {
                Ok(state) => {
                    let mut to = Sink {
                        output: &mut self.output,
                        plain: &mut self.plain,
                        peer_closed: &mut self.peer_closed,
                        dst: &mut *dst,
                        got: &mut *got,
                    };
                    to.handle(state, job)
                }
                Err(e) => Err(invalid(e)),
            };
            self.input.consume(discard);
            match step {
                Ok(None) => {}
                Ok(Some(next)) => {
                    self.input.release();
                    return Ok(next);
                }
                Err(e) => {
                    self.queue_alerts();
                    return Err(e);
                }
            }
        }
        Err(protocol("TLS made no progress"))
    }

    /// Encodes the alerts rustls queued after an error into `output`.
    fn queue_alerts(&mut self) {
        // While records are queued, rustls hands them out before it looks
        // at any input.
        while self.conn.wants_write() {
            let status = self.conn.process_tls_records(self.input.bytes_mut());
            let Ok(ConnectionState::EncodeTlsData(mut e)) = status.state else {
                break;
            };
            if encode(&mut e, &mut self.output).is_err() {
                break;
            }
        }
    }

    /// Input nobody has read: ciphertext, plaintext, or close_notify.
    fn has_buffered_input(&self) -> bool {
        !self.input.is_empty() || !self.plain.is_empty() || self.peer_closed
    }

    /// Nothing held but rustls' state: no input, nothing to send.
    fn is_idle(&self) -> bool {
        !self.has_buffered_input() && self.output.is_empty()
    }

    /// Gives back every buffer that holds nothing.
    fn release(&mut self) {
        self.input.release();
        self.output.release();
        self.plain.release();
    }

    /// Sends close_notify on a parked session's socket without waiting
    /// (the socket's send buffer is empty; the alert is a few dozen
    /// bytes). Best effort: the connection is being closed either way.
    pub fn farewell(&mut self, fd: RawFd) {
        if !self.is_idle() {
            return;
        }
        let mut got = 0;
        for _ in 0..4 {
            let next = self.drive(Job::Close, &mut [], &mut got);
            let bytes = self.output.bytes();
            // SAFETY: a plain send of initialised bytes on an open socket.
            unsafe {
                libc::send(
                    fd,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                );
            }
            self.output.clear();
            if !matches!(next, Ok(Next::Send)) {
                break;
            }
        }
        self.release();
    }
}

/// Where one rustls state's results go (the session's fields a state does
/// not borrow).
struct Sink<'a> {
    output: &'a mut Held,
    plain: &'a mut Held,
    peer_closed: &'a mut bool,
    dst: &'a mut [u8],
    got: &'a mut usize,
}

impl Sink<'_> {
    /// Acts on one state: `None` to go on processing.
    fn handle(
        &mut self,
        state: ConnectionState<'_, '_, ServerConnectionData>,
        job: Job<'_>,
    ) -> io::Result<Option<Next>> {
        match state {
            ConnectionState::EncodeTlsData(mut e) => encode(&mut e, self.output).map(|()| None),
            ConnectionState::TransmitTlsData(t) if self.output.is_empty() => {
                t.done();
                Ok(None)
            }
            ConnectionState::TransmitTlsData(_) => Ok(Some(Next::Send)),
            ConnectionState::ReadTraffic(mut r) => {
                while let Some(record) = r.next_record() {
                    self.deliver(record.map_err(invalid)?.payload)?;
                }
                Ok(None)
            }
            ConnectionState::PeerClosed => {
                *self.peer_closed = true;
                Ok(None)
            }
            ConnectionState::Closed => {
                *self.peer_closed = true;
                Ok(Some(Next::Eof))
            }
            ConnectionState::BlockedHandshake => Ok(Some(Next::Read)),
            ConnectionState::WriteTraffic(mut w) => match job {
                Job::Read if *self.peer_closed => Ok(Some(Next::Eof)),
                Job::Read => Ok(Some(Next::Read)),
                Job::Write(src) => {
                    let src = src.get(..MAX_PLAINTEXT).unwrap_or(src);
                    let r = fit(self.output, |out| w.encrypt(src, out));
                    Ok(Some(r?.map_or(Next::Send, |()| Next::Wrote(src.len()))))
                }
                Job::Close => {
                    let r = fit(self.output, |out| w.queue_close_notify(out));
                    Ok(Some(r?.map_or(Next::Send, |()| Next::Wrote(0))))
                }
            },
            // Early data is never enabled; nothing else is known.
            _ => Err(protocol("unexpected TLS state")),
        }
    }

    /// A record's plaintext: into `dst` while it has room, then `plain`.
    fn deliver(&mut self, payload: &[u8]) -> io::Result<()> {
        let room = self.dst.get_mut(*self.got..).unwrap_or_default();
        let n = room.len().min(payload.len());
        if let (Some(d), Some(s)) = (room.get_mut(..n), payload.get(..n)) {
            d.copy_from_slice(s);
            *self.got += n;
        }
        match payload.get(n..) {
            Some(rest) if !rest.is_empty() => self.plain.append(rest, MAX_HELD),
            _ => Ok(()),
        }
    }
}

/// Encrypts into `output`'s spare room with `f`: `Ok(None)` when that needs
/// the records already there sent first (`f` left nothing behind); an empty
/// `output` grows to fit.
fn fit(output: &mut Held, mut f: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>) -> io::Result<Option<()>> {
    match f(output.spare()) {
        Ok(n) => {
            output.added(n);
            return Ok(Some(()));
        }
        Err(EncryptError::InsufficientSize(_)) if !output.is_empty() => return Ok(None),
        Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
            output.grow(required_size, MAX_HELD)?
        }
        Err(EncryptError::EncryptExhausted) => return Err(protocol("TLS keys exhausted")),
    }
    let n = f(output.spare()).map_err(|_| protocol("TLS record does not fit"))?;
    output.added(n);
    Ok(Some(()))
}

/// Encodes a handshake (or alert) record into `output`, growing it when
/// needed: an encoding not done loses the record.
fn encode(e: &mut rustls::unbuffered::EncodeTlsData<'_, ServerConnectionData>, output: &mut Held) -> io::Result<()> {
    let n = match e.encode(output.spare()) {
        Ok(n) => n,
        Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
            output.grow(required_size, MAX_HELD)?;
            e.encode(output.spare())
                .map_err(|_| protocol("TLS record does not fit"))?
        }
        Err(_) => return Err(protocol("TLS record encoded twice")),
    };
    output.added(n);
    Ok(())
}

impl ServerTls {
    /// Accepts a TLS session over `tcp` with `config` (certificate chosen
    /// by SNI, ALPN, resumption: all the config's). Not bounded here: the
    /// caller puts a deadline on it. Errors from rustls are carried inside
    /// the `io::Error` (see `super::classify_io`).
    pub async fn handshake(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<ServerTls> {
        let conn = UnbufferedServerConnection::new(config).map_err(invalid)?;
        let mut t = ServerTls {
            tcp,
            s: Box::new(Session {
                conn,
                input: Held::default(),
                output: Held::default(),
                plain: Held::default(),
                peer_closed: false,
            }),
        };
        loop {
            if !t.s.output.is_empty() {
                t.send().await?;
            }
            if !t.s.conn.is_handshaking() {
                return Ok(t);
            }
            match t.drive(Job::Read, &mut []).await?.0 {
                Next::Send => {}
                // The handshake may have ended (its last message arrived).
                Next::Read if !t.s.conn.is_handshaking() => {}
                Next::Read => {
                    // A silent peer (nothing sent yet, or the rest of its
                    // flight held back) borrows no record buffer while it
                    // waits: readiness first, then the read.
                    if t.s.input.is_empty() {
                        t.tcp.readable(false).await?;
                    }
                    if !t.fill().await? {
                        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "TLS handshake EOF"));
                    }
                }
                Next::Eof | Next::Wrote(_) => return Err(protocol("TLS handshake stalled")),
            }
        }
    }

    /// [`Session::drive`]; on an error, the alert is sent (best effort).
    async fn drive(&mut self, job: Job<'_>, dst: &mut [u8]) -> io::Result<(Next, usize)> {
        let mut got = 0;
        match self.s.drive(job, dst, &mut got) {
            Ok(next) => Ok((next, got)),
            Err(e) => {
                let _ = self.send().await;
                Err(e)
            }
        }
    }

    /// Reads ciphertext from the socket once into `input`. False at EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        if self.s.input.spare().is_empty() {
            // Only a handshake message can span more than a full buffer
            // (every record fits in one): rustls takes up to 64 KiB.
            if !self.s.conn.is_handshaking() {
                return Err(protocol("TLS input exceeds the record buffer"));
            }
            self.s.input.grow(RECORD_BUF, MAX_HANDSHAKE)?;
        }
        let (buf, range) = self.s.input.lend_spare();
        let (r, slice) = self.tcp.read(buf.slice_mut(range)).await;
        self.s.input.restore(slice.into_inner());
        let n = r?;
        self.s.input.added(n);
        self.s.input.release();
        Ok(n > 0)
    }

    /// Sends every record in `output`, then gives its buffer back.
    async fn send(&mut self) -> io::Result<()> {
        if self.s.output.is_empty() {
            return Ok(());
        }
        let (buf, range) = self.s.output.lend_bytes();
        let (r, slice) = self.tcp.write_all(buf.slice(range)).await;
        self.s.output.restore(slice.into_inner());
        r?;
        self.s.output.clear();
        self.s.output.release();
        Ok(())
    }

    /// Plaintext into `dst`: what is held, else what the ciphertext held
    /// and then the socket bring. `Ok(0)` after close_notify;
    /// `UnexpectedEof` on a TCP close without one.
    async fn read_into(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.s.plain.is_empty() {
                return Ok(self.s.plain.copy_out(dst));
            }
            let (next, got) = self.drive(Job::Read, dst).await?;
            if next == Next::Send {
                self.send().await?;
            }
            if got > 0 {
                return Ok(got);
            }
            match next {
                Next::Send => {}
                Next::Read => {
                    if !self.fill().await? {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "TLS EOF without close_notify",
                        ));
                    }
                }
                Next::Eof => return Ok(0),
                Next::Wrote(_) => return Err(protocol("TLS state")),
            }
        }
    }

    /// Encrypts up to a record's worth of `src` and sends it.
    async fn write_from(&mut self, src: &[u8]) -> io::Result<usize> {
        if src.is_empty() {
            return Ok(0);
        }
        loop {
            match self.drive(Job::Write(src), &mut []).await?.0 {
                Next::Wrote(n) => {
                    self.send().await?;
                    return Ok(n);
                }
                Next::Send => self.send().await?,
                Next::Read | Next::Eof => {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "TLS session cannot send"))
                }
            }
        }
    }

    /// Waits up to `patience` for ciphertext (reading it into `input`),
    /// cancelling the read if none comes: `None` then, with no buffer held.
    /// `Some(Ok(false))` at EOF.
    pub async fn idle_fill(&mut self, patience: Duration, c: &mut Canceller) -> Option<io::Result<bool>> {
        let (buf, range) = self.s.input.lend_spare();
        let (res, slice) = crate::net::read_within(&mut self.tcp, buf.slice_mut(range), patience, c).await;
        self.s.input.restore(slice.into_inner());
        if let Some(Ok(n)) = res {
            self.s.input.added(n);
        }
        self.s.input.release();
        res.map(|r| r.map(|n| n > 0))
    }

    /// Input nobody has read: ciphertext, plaintext, or close_notify.
    pub fn has_buffered_input(&self) -> bool {
        self.s.has_buffered_input()
    }

    /// Whether the session holds nothing but rustls' state (so it may park).
    pub fn is_idle(&self) -> bool {
        self.s.is_idle()
    }

    /// The socket and the session, apart, to park (see `proxy::park`);
    /// `self` back unless [idle](Self::is_idle).
    pub fn park(mut self) -> Result<(TcpStream, Box<Session>), ServerTls> {
        if !self.is_idle() {
            return Err(self);
        }
        self.s.release();
        Ok((self.tcp, self.s))
    }

    /// A parked session back on its socket.
    pub fn resume(tcp: TcpStream, s: Box<Session>) -> ServerTls {
        ServerTls { tcp, s }
    }
}

super::rent::rent_io!(ServerTls);

impl ServerTls {
    async fn flush_tls(&mut self) -> io::Result<()> {
        self.send().await
    }

    /// Sends close_notify, then ends the TCP write side.
    async fn close_tls(&mut self) -> io::Result<()> {
        while let Next::Send = self.drive(Job::Close, &mut []).await?.0 {
            self.send().await?;
        }
        self.send().await?;
        self.tcp.shutdown().await
    }
}
