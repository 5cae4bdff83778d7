//! The origin side of TLS: rustls' `ClientConnection` driven directly over
//! monoio's owned-buffer `TcpStream`.
//!
//! Why not a ready-made adapter such as monoio-rustls (which the viewer
//! side used to run on, before `server.rs`): it reads ciphertext 16 KiB
//! at a time into a private buffer and hands it to rustls 4 KiB at a time,
//! so bytes that arrived after a response's end can sit inside the adapter
//! where neither the proxy (which sees only plaintext it asked for) nor the
//! pool (which peeks at the raw socket) can see them, and they would answer
//! the next request on a pooled connection (SPEC §3.5,
//! `tests/origin_untrusted_tls.rs`). Here every byte taken off the socket
//! is given to rustls at once (`read_tls` until the buffer is consumed,
//! `process_new_packets` after each), so anything after a response's end
//! is plaintext rustls holds, or part of a record it is still assembling,
//! or (only while rustls holds over 16 KiB of plaintext, when it takes no
//! more) ciphertext in our own buffer; [`ClientTls::has_buffered_input`]
//! sees all three.
//!
//! Buffers: one ciphertext read buffer and one write buffer per
//! connection, allocated at the handshake and reused; a read or write
//! allocates nothing beyond what rustls does itself.

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};
use std::io::{self, Read};
use std::sync::Arc;

/// Ciphertext read at most per socket read (about one full-size record).
const READ_SIZE: usize = 16 * 1024;

/// rustls' received-plaintext limit: while it holds more plaintext than
/// this, `read_tls` refuses more ciphertext (with an error).
const PLAINTEXT_LIMIT: usize = 16 * 1024;

/// A client TLS session over TCP.
pub struct ClientTls {
    tcp: TcpStream,
    conn: ClientConnection,
    /// Ciphertext read from the socket; `cipher[fed..]` is not yet in
    /// rustls (rustls held too much plaintext to take it, see `feed`, or
    /// it came after a close_notify, beyond which rustls takes nothing).
    cipher: Vec<u8>,
    fed: usize,
    /// Records encrypted by rustls, on their way to the socket.
    out: Vec<u8>,
    /// Where the ciphertext given to rustls stands in TLS record framing.
    records: Records,
}

/// What one fill of rustls from the socket found.
enum Filled {
    /// This many ciphertext bytes went into rustls.
    Fed(usize),
    /// The peer closed the TCP connection (rustls was told).
    Eof,
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl ClientTls {
    /// Connects a TLS session over `tcp` to `name` with `config` (whose
    /// session store makes later connections resume). Not bounded here:
    /// the caller puts a deadline on it. Errors from rustls are carried
    /// inside the `io::Error` (see `super::classify_io`).
    pub async fn handshake(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> io::Result<ClientTls> {
        let conn = ClientConnection::new(config, name).map_err(invalid)?;
        let mut t = ClientTls {
            tcp,
            conn,
            cipher: Vec::with_capacity(READ_SIZE),
            fed: 0,
            out: Vec::new(),
            records: Records::default(),
        };
        while t.conn.is_handshaking() {
            if t.conn.wants_write() {
                t.send_tls().await?;
            } else if !t.conn.wants_read() {
                // A close_notify (or plaintext) before the handshake ended.
                return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS handshake stalled"));
            } else if let Filled::Eof = t.fill().await? {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "TLS handshake EOF"));
            }
        }
        // The client's last flight (its Finished) is queued as the
        // handshake completes.
        t.send_tls().await?;
        Ok(t)
    }

    /// True when something arrived that nobody has read: plaintext rustls
    /// holds, part of a record it is still assembling, ciphertext not yet
    /// given to it, or the peer's close_notify. After a response's end, any
    /// of these means the connection must not carry another request.
    pub fn has_buffered_input(&self) -> bool {
        // Once the handshake is done, rustls wants to read unless it holds
        // plaintext or has received close_notify.
        !self.conn.wants_read() || self.fed < self.cipher.len() || self.records.mid_record()
    }

    /// Reads from the socket once (when everything read before is in
    /// rustls) and gives rustls all of it. On a TLS error the alert rustls
    /// queued is sent, best effort, and the error returned.
    async fn fill(&mut self) -> io::Result<Filled> {
        if self.fed == self.cipher.len() {
            let mut buf = std::mem::take(&mut self.cipher);
            buf.clear();
            let (r, buf) = self.tcp.read(buf).await;
            self.cipher = buf;
            self.fed = 0;
            if r? == 0 {
                self.conn.read_tls(&mut io::empty())?;
                return Ok(Filled::Eof);
            }
        }
        match self.feed() {
            Ok(n) => Ok(Filled::Fed(n)),
            Err(e) => {
                let _ = self.send_tls().await;
                Err(e)
            }
        }
    }

    /// Gives rustls the ciphertext read, processing each piece it takes:
    /// all of it, unless rustls holds more plaintext than it accepts
    /// ciphertext behind (possible when a record begun in an earlier read
    /// completes in this one); the rest waits in `cipher`, where
    /// [`Self::has_buffered_input`] sees it, and is fed once the plaintext
    /// has been read. Called only when rustls holds no plaintext.
    fn feed(&mut self) -> io::Result<usize> {
        let start = self.fed;
        let mut held = 0;
        while let Some(rest) = self.cipher.get(self.fed..).filter(|r| !r.is_empty()) {
            if held > PLAINTEXT_LIMIT {
                break;
            }
            let mut rd = rest;
            let n = self.conn.read_tls(&mut rd)?;
            if n == 0 {
                break; // close_notify received: rustls takes nothing more
            }
            self.records.advance(rest.get(..n).unwrap_or(rest));
            self.fed += n;
            held = self
                .conn
                .process_new_packets()
                .map_err(invalid)?
                .plaintext_bytes_to_read();
        }
        let n = self.fed - start;
        if self.fed == self.cipher.len() {
            self.cipher.clear();
            self.fed = 0;
        }
        Ok(n)
    }

    /// Plaintext into `dst`: what rustls holds, else what the next socket
    /// read brings. `Ok(0)` after close_notify; `UnexpectedEof` on a TCP
    /// close without one (as rustls' reader says).
    async fn read_into(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(dst) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                r => return r,
            }
            if let Filled::Fed(0) = self.fill().await? {
                // Bytes rustls would not take, and no plaintext.
                return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS made no progress"));
            }
        }
    }

    /// Sends every record rustls has queued.
    async fn send_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.out)?;
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        let (r, mut out) = self.tcp.write_all(out).await;
        out.clear();
        self.out = out;
        r.map(|_| ())
    }
}

super::rent::rent_io!(ClientTls);

impl ClientTls {
    /// Encrypts what rustls accepts of `src` (all of it, unless beyond its
    /// 64 KiB send buffer: a short write) and sends it.
    async fn write_from(&mut self, src: &[u8]) -> io::Result<usize> {
        let n = io::Write::write(&mut self.conn.writer(), src)?;
        self.send_tls().await?;
        Ok(n)
    }

    async fn flush_tls(&mut self) -> io::Result<()> {
        io::Write::flush(&mut self.conn.writer())?;
        self.send_tls().await
    }

    /// Sends close_notify, then ends the TCP write side.
    async fn close_tls(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.send_tls().await?;
        self.tcp.shutdown().await
    }
}

/// Tracks TLS record framing over a byte stream (5-byte headers whose last
/// two bytes are the body length), to tell whether the bytes so far end
/// exactly at a record boundary. Costs a few steps per record, not per byte.
#[derive(Debug, Default)]
struct Records {
    /// Header bytes of the current record seen so far (0..5).
    head: u8,
    /// The length's high byte, once seen.
    len_hi: u8,
    /// Body bytes of the current record still to come.
    body_left: usize,
}

impl Records {
    const HEADER: u8 = 5;

    fn advance(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = bytes.get(n..).unwrap_or_default();
                continue;
            }
            let Some((&b, rest)) = bytes.split_first() else { break };
            bytes = rest;
            match self.head {
                3 => self.len_hi = b,
                4 => self.body_left = usize::from(self.len_hi) << 8 | usize::from(b),
                _ => {}
            }
            self.head = (self.head + 1) % Self::HEADER;
        }
    }

    /// The bytes so far end inside a record (its header or its body).
    fn mid_record(&self) -> bool {
        self.head > 0 || self.body_left > 0
    }
}

#[cfg(test)]
mod tests {
    use super::Records;

    fn record(len: usize) -> Vec<u8> {
        let mut r = vec![23, 3, 3, (len >> 8) as u8, len as u8];
        r.resize(5 + len, 0xaa);
        r
    }

    #[test]
    fn records_end_only_at_record_boundaries() {
        let mut stream = record(300);
        stream.extend(record(0));
        stream.extend(record(17000));
        let ends = [305, 310, stream.len()];
        // Whatever the pieces, the stream is mid-record exactly away from
        // the boundaries.
        for piece in [1, 2, 3, 4, 5, 7, 300, 4096, 20000] {
            let mut r = Records::default();
            let mut at = 0;
            for chunk in stream.chunks(piece) {
                r.advance(chunk);
                at += chunk.len();
                assert_eq!(r.mid_record(), !ends.contains(&at), "piece {piece}, at {at}");
            }
        }
        let mut r = Records::default();
        assert!(!r.mid_record());
        r.advance(&[]);
        assert!(!r.mid_record());
    }
}
