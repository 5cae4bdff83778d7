//! The floor reference of `scripts/bench`: a minimal single-thread HTTP/1.1
//! responder on io_uring, not part of ringfront. Whatever a proxy does to
//! answer a 1 KiB request from memory, this does less: it never parses a
//! request beyond finding where its head ends, and answers every request
//! with the same stored bytes. The bench reports each proxy's CPU per
//! request as a multiple of this one's.
//!
//! ```text
//! cargo build --release --manifest-path scripts/floor/Cargo.toml --target-dir target/floor
//! taskset -c 1 target/floor/release/floor [--listen 127.0.0.1:0] [--size 1024]
//! ```
//!
//! It prints `listening on http://ADDR` and serves until killed. The ring is
//! set up the way a tuned io_uring server is (kernel permitting):
//! `COOP_TASKRUN`, `SINGLE_ISSUER` and `DEFER_TASKRUN`; a multishot accept
//! straight into the fixed-file table; per connection a multishot receive
//! into a provided-buffer ring; one send in flight per connection, of as
//! many stored responses as requests have arrived (pipelined requests are
//! answered in order). Requests are counted by their `\r\n\r\n`; request
//! bodies are not supported (wrk sends GETs).

use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

/// Fixed-file slots: connections at once.
const SLOTS: u32 = 4096;
/// Provided buffers (a power of two) and their size.
const BUFS: u16 = 512;
const BUF_SIZE: usize = 4096;
const GROUP: u16 = 0;
/// Responses gathered into one send.
const BATCH: usize = 16;

const ACCEPT: u64 = 1;
const RECV: u64 = 2;
const SEND: u64 = 3;
const CLOSE: u64 = 4;

fn main() {
    if let Err(e) = run() {
        eprintln!("floor: {e}");
        std::process::exit(1);
    }
}

fn run() -> io::Result<()> {
    let (listen, size) = args()?;
    let listener = TcpListener::bind(listen)?;
    let one = stored_response(size);
    let batch = one.repeat(BATCH);
    let (mut ring, flags) = new_ring()?;
    raise_nofile(SLOTS as u64 + 64);
    ring.submitter().register_files_sparse(SLOTS)?;
    let mut bufs = BufRing::new(&ring)?;
    let mut conns: Vec<Conn> = (0..SLOTS).map(|_| Conn::default()).collect();
    push(&mut ring, accept(listener.as_raw_fd()))?;
    println!("ring: {flags}");
    println!("listening on http://{}", listener.local_addr()?);
    io::stdout().flush()?;
    let mut server = Server {
        one_len: one.len(),
        batch,
        conns: &mut conns,
    };
    loop {
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) || e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => return Err(e),
        }
        let done: Vec<(u64, i32, u32)> = ring
            .completion()
            .map(|c| (c.user_data(), c.result(), c.flags()))
            .collect();
        for (data, res, flags) in done {
            server.complete(&mut ring, &mut bufs, listener.as_raw_fd(), data, res, flags)?;
        }
    }
}

/// `--listen ADDR` (default 127.0.0.1:0) and `--size N` (default 1024).
fn args() -> io::Result<(SocketAddr, usize)> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    let mut listen: SocketAddr = "127.0.0.1:0".parse().map_err(|_| bad("address"))?;
    let mut size = 1024;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| bad("a flag without its value"))?;
        match a.as_str() {
            "--listen" => listen = v.parse().map_err(|_| bad("--listen ADDR"))?,
            "--size" => size = v.parse().map_err(|_| bad("--size N"))?,
            _ => return Err(bad("usage: floor [--listen ADDR] [--size N]")),
        }
    }
    Ok((listen, size))
}

/// A response like a cache hit's, body included: the same bytes every time.
fn stored_response(size: usize) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: text/plain\r\n\
         Cache-Control: max-age=3600\r\nContent-Length: {size}\r\n\r\n"
    )
    .into_bytes();
    r.extend((0..size).map(|i| b"0123456789abcdef"[i % 16]));
    r
}

/// The ring with the flags the kernel has (most first), and their names.
fn new_ring() -> io::Result<(IoUring, &'static str)> {
    let mut b = IoUring::builder();
    b.setup_coop_taskrun().setup_single_issuer().setup_defer_taskrun();
    b.setup_cqsize(8192);
    if let Ok(r) = b.build(1024) {
        return Ok((r, "COOP_TASKRUN SINGLE_ISSUER DEFER_TASKRUN"));
    }
    let mut b = IoUring::builder();
    b.setup_coop_taskrun().setup_cqsize(8192);
    if let Ok(r) = b.build(1024) {
        return Ok((r, "COOP_TASKRUN"));
    }
    Ok((IoUring::new(1024)?, "no setup flags"))
}

/// The fixed-file table can be as large as RLIMIT_NOFILE allows.
fn raise_nofile(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn push(ring: &mut IoUring, e: squeue::Entry) -> io::Result<()> {
    // SAFETY: every entry points at memory that outlives the operation (the
    // stored responses, the buffer ring) or at none.
    unsafe {
        if ring.submission().push(&e).is_ok() {
            return Ok(());
        }
        ring.submit()?;
        ring.submission()
            .push(&e)
            .map_err(|_| io::Error::other("submission queue full"))
    }
}

fn accept(fd: i32) -> squeue::Entry {
    opcode::AcceptMulti::new(types::Fd(fd))
        .allocate_file_index(true)
        .build()
        .user_data(ACCEPT << 32)
}

fn recv(slot: u32) -> squeue::Entry {
    opcode::RecvMulti::new(types::Fixed(slot), GROUP)
        .build()
        .user_data(RECV << 32 | slot as u64)
}

#[derive(Default)]
struct Conn {
    /// How much of `\r\n\r\n` the data so far ends with.
    matched: u8,
    /// Requests received and not yet answered.
    owed: usize,
    /// Bytes of the send in flight, and how many of them were sent.
    sending: Option<(usize, usize)>,
    closing: bool,
}

struct Server<'a> {
    one_len: usize,
    batch: Vec<u8>,
    conns: &'a mut [Conn],
}

impl Server<'_> {
    fn complete(
        &mut self,
        ring: &mut IoUring,
        bufs: &mut BufRing,
        listener: i32,
        data: u64,
        res: i32,
        flags: u32,
    ) -> io::Result<()> {
        let slot = (data & 0xffff_ffff) as u32;
        match data >> 32 {
            ACCEPT => {
                if res >= 0 {
                    push(ring, recv(res as u32))?;
                }
                if !cqueue::more(flags) {
                    push(ring, accept(listener))?;
                }
            }
            RECV => self.received(ring, bufs, slot, res, flags)?,
            SEND => self.sent(ring, slot, res)?,
            _ => {}
        }
        Ok(())
    }

    fn received(&mut self, ring: &mut IoUring, bufs: &mut BufRing, slot: u32, res: i32, flags: u32) -> io::Result<()> {
        let Some(c) = self.conns.get_mut(slot as usize) else {
            return Ok(());
        };
        if res > 0 {
            if let Some(bid) = cqueue::buffer_select(flags) {
                c.owed += count_heads(&mut c.matched, bufs.data(bid, res as usize));
                bufs.give_back(bid);
            }
            if !cqueue::more(flags) {
                push(ring, recv(slot))?;
            }
            return self.send_owed(ring, slot);
        }
        if res == -libc::ENOBUFS {
            return push(ring, recv(slot));
        }
        // End of stream or an error: close once nothing is in flight.
        c.closing = true;
        if c.sending.is_none() {
            self.close(ring, slot)?;
        }
        Ok(())
    }

    fn sent(&mut self, ring: &mut IoUring, slot: u32, res: i32) -> io::Result<()> {
        let Some(c) = self.conns.get_mut(slot as usize) else {
            return Ok(());
        };
        let Some((len, done)) = c.sending.take() else {
            return Ok(());
        };
        if res <= 0 || c.closing {
            c.closing = true;
            return self.close(ring, slot);
        }
        let done = done + res as usize;
        if done < len {
            c.sending = Some((len, done));
            return push(ring, self.send(slot, done, len));
        }
        self.send_owed(ring, slot)
    }

    /// Sends up to BATCH owed responses, when no send is in flight.
    fn send_owed(&mut self, ring: &mut IoUring, slot: u32) -> io::Result<()> {
        let Some(c) = self.conns.get_mut(slot as usize) else {
            return Ok(());
        };
        if c.sending.is_some() || c.owed == 0 {
            return Ok(());
        }
        let n = c.owed.min(BATCH);
        c.owed -= n;
        let len = n * self.one_len;
        c.sending = Some((len, 0));
        push(ring, self.send(slot, 0, len))
    }

    fn send(&self, slot: u32, from: usize, to: usize) -> squeue::Entry {
        let b = &self.batch[from..to];
        opcode::Send::new(types::Fixed(slot), b.as_ptr(), b.len() as u32)
            .build()
            .user_data(SEND << 32 | slot as u64)
    }

    fn close(&mut self, ring: &mut IoUring, slot: u32) -> io::Result<()> {
        if let Some(c) = self.conns.get_mut(slot as usize) {
            *c = Conn::default();
        }
        push(
            ring,
            opcode::Close::new(types::Fixed(slot))
                .build()
                .user_data(CLOSE << 32 | slot as u64),
        )
    }
}

/// Counts the request heads ending in `data` (`\r\n\r\n`), carrying a
/// partial terminator across receives in `matched`.
fn count_heads(matched: &mut u8, data: &[u8]) -> usize {
    const END: &[u8; 4] = b"\r\n\r\n";
    let mut n = 0;
    let mut m = *matched as usize;
    for &b in data {
        if b == END[m] {
            m += 1;
            if m == 4 {
                n += 1;
                m = 0;
            }
        } else {
            m = usize::from(b == b'\r');
        }
    }
    *matched = m as u8;
    n
}

/// The provided-buffer ring: BUFS entries and their buffers.
struct BufRing {
    ring: *mut types::BufRingEntry,
    mem: Vec<u8>,
    tail: u16,
}

impl BufRing {
    fn new(uring: &IoUring) -> io::Result<BufRing> {
        let bytes = BUFS as usize * std::mem::size_of::<types::BufRingEntry>();
        // SAFETY: an anonymous private mapping (page-aligned, as the kernel
        // requires), never unmapped: it lives as long as the process.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut b = BufRing {
            ring: ring.cast(),
            mem: vec![0; BUFS as usize * BUF_SIZE],
            tail: 0,
        };
        // SAFETY: the mapping holds BUFS entries and stays mapped.
        unsafe { uring.submitter().register_buf_ring(ring as u64, BUFS, GROUP)? };
        for bid in 0..BUFS {
            b.give_back(bid);
        }
        Ok(b)
    }

    fn data(&self, bid: u16, len: usize) -> &[u8] {
        let at = bid as usize % BUFS as usize * BUF_SIZE;
        &self.mem[at..at + len.min(BUF_SIZE)]
    }

    /// Puts buffer `bid` back at the ring's tail.
    fn give_back(&mut self, bid: u16) {
        let bid = bid % BUFS;
        let at = bid as usize * BUF_SIZE;
        // SAFETY: the entry index is masked into the mapping; the tail is
        // published with a release store after the entry is written, as
        // io_uring_buf_ring_advance does.
        unsafe {
            let e = &mut *self.ring.add((self.tail & (BUFS - 1)) as usize);
            e.set_addr(self.mem.as_mut_ptr().add(at) as u64);
            e.set_len(BUF_SIZE as u32);
            e.set_bid(bid);
            self.tail = self.tail.wrapping_add(1);
            let tail = types::BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::count_heads;

    #[test]
    fn heads_are_counted_across_receives() {
        let mut m = 0;
        assert_eq!(
            count_heads(&mut m, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r"),
            1
        );
        assert_eq!(count_heads(&mut m, b"\n"), 1);
        assert_eq!(count_heads(&mut m, b"\r\r\n\r\n"), 1);
        assert_eq!(m, 0);
    }
}
