//! Small socket helpers shared by the proxy, the admin listener and the
//! sample origin: listeners with SO_REUSEPORT, owned-buffer read/write
//! wrappers for monoio's rent-style I/O, and connect error classification.
//!
//! monoio's I/O takes buffers by value and hands them back with the result
//! (io_uring owns the memory while the operation is in flight). These helpers
//! keep that shape but hide the slicing, so callers keep one `Vec<u8>` per
//! direction and reuse it.

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt, CancelableAsyncReadRent, Canceller};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::Duration;

/// A listening socket with SO_REUSEADDR and SO_REUSEPORT, so each worker can
/// own one bound to the same address and the kernel spreads connections.
pub fn reuseport_listener(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(backlog)?;
    Ok(s.into())
}

/// Backing off a listener whose accepts fail. The usual failure is running
/// out of descriptors (EMFILE, ENFILE): retrying at once only spins, and
/// logging each retry floods the log. So each failure in a row waits twice
/// as long as the one before, from [`AcceptBackoff::FIRST`] up to
/// [`AcceptBackoff::MAX`], and the failures are logged at most once per
/// [`AcceptBackoff::LOG_EVERY`], with a count of the ones not logged. A
/// successful accept starts over. New connections wait in the listener's
/// accept queue meanwhile; open ones are not touched.
#[derive(Debug, Default)]
pub struct AcceptBackoff {
    delay: Duration,
    logged_at: Option<std::time::Instant>,
    unlogged: u64,
}

impl AcceptBackoff {
    pub const FIRST: Duration = Duration::from_millis(10);
    pub const MAX: Duration = Duration::from_millis(500);
    pub const LOG_EVERY: Duration = Duration::from_secs(1);

    /// An accept succeeded: the next failure waits [`Self::FIRST`] again.
    pub fn accepted(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// An accept of `who` (for the log line) failed with `e`: logs it unless
    /// a line was logged within [`Self::LOG_EVERY`], and returns how long to
    /// wait before the next accept. A connection reset before it could be
    /// accepted is no reason to wait, nor to log.
    pub fn failed(&mut self, who: &str, e: &io::Error) -> Duration {
        if e.kind() == io::ErrorKind::ConnectionAborted {
            return Duration::ZERO;
        }
        self.delay = (self.delay * 2).clamp(Self::FIRST, Self::MAX);
        let now = std::time::Instant::now();
        if self.logged_at.is_some_and(|t| now.duration_since(t) < Self::LOG_EVERY) {
            self.unlogged += 1;
            return self.delay;
        }
        let more = match self.unlogged {
            0 => String::new(),
            n => format!(" ({n} more since the last line)"),
        };
        log::warn!("{who}: accept: {e}; retrying in {:?}{more}", self.delay);
        self.logged_at = Some(now);
        self.unlogged = 0;
        self.delay
    }
}

/// Reads more bytes onto the end of `buf`, growing it to keep at least
/// `min_spare` bytes free (but never past `max_len`). `Ok(0)` is EOF.
pub async fn read_more<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    min_spare: usize,
    max_len: usize,
) -> (io::Result<usize>, Vec<u8>) {
    let range = spare_range(&mut buf, min_spare, max_len);
    let (res, slice) = s.read(buf.slice_mut(range)).await;
    (res, slice.into_inner())
}

/// Makes room per [`read_more`] and returns the range to read into.
fn spare_range(buf: &mut Vec<u8>, min_spare: usize, max_len: usize) -> std::ops::Range<usize> {
    let spare = buf.capacity() - buf.len();
    if spare < min_spare {
        let want = (buf.len() + min_spare).min(max_len.max(buf.len() + 1));
        buf.reserve(want - buf.len());
    }
    let len = buf.len();
    len..buf.capacity().min(max_len.max(len + 1))
}

/// [`read_more`] that gives up when nothing arrived within `patience`,
/// without losing anything: the read is cancelled and then awaited, so a read
/// the kernel completed just before the cancel still returns its bytes.
/// (Dropping an in-flight io_uring read would throw them away.) The result
/// is `None` when it gave up. `c` is reused across calls: after its first use, a read
/// through it allocates nothing.
pub async fn read_more_within<S: CancelableAsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    min_spare: usize,
    max_len: usize,
    patience: Duration,
    c: &mut Canceller,
) -> (Option<io::Result<usize>>, Vec<u8>) {
    let range = spare_range(&mut buf, min_spare, max_len);
    let (res, slice) = read_within(s, buf.slice_mut(range), patience, c).await;
    (res, slice.into_inner())
}

/// One read into `buf` that gives up when nothing arrived within
/// `patience`, as [`read_more_within`] does, into any owned buffer.
pub async fn read_within<S: CancelableAsyncReadRent, B: IoBufMut>(
    s: &mut S,
    buf: B,
    patience: Duration,
    c: &mut Canceller,
) -> (Option<io::Result<usize>>, B) {
    let read = s.cancelable_read(buf, c.handle());
    let mut read = std::pin::pin!(read);
    let mut timer = std::pin::pin!(monoio::time::sleep(patience));
    let mut cancelled = false;
    let (res, buf) = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = read.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if !cancelled && timer.as_mut().poll(cx).is_ready() {
            cancelled = true;
            *c = std::mem::take(c).cancel();
            // The read now completes, with ECANCELED or with what it got.
            return match read.as_mut().poll(cx) {
                Poll::Ready(r) => Poll::Ready(r),
                Poll::Pending => Poll::Pending,
            };
        }
        Poll::Pending
    })
    .await;
    // A cancelled recv ends with ECANCELED (or EINTR on older kernels)
    // having consumed nothing.
    let gave_up =
        cancelled && matches!(&res, Err(e) if matches!(e.raw_os_error(), Some(libc::ECANCELED) | Some(libc::EINTR)));
    (if gave_up { None } else { Some(res) }, buf)
}

/// Writes `buf[range]` fully.
pub async fn write_range<S: AsyncWriteRentExt>(
    s: &mut S,
    buf: Vec<u8>,
    range: std::ops::Range<usize>,
) -> (io::Result<()>, Vec<u8>) {
    if range.is_empty() {
        return (Ok(()), buf);
    }
    let (res, slice) = s.write_all(buf.slice(range)).await;
    (res.map(|_| ()), slice.into_inner())
}

/// Writes all of `buf`.
pub async fn write_all<S: AsyncWriteRentExt>(s: &mut S, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    let n = buf.len();
    write_range(s, buf, 0..n).await
}

/// True for errors that mean the peer reset or closed the connection.
pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
    )
}

/// Sets SO_LINGER to zero so that closing sends RST (used to inject resets).
pub fn set_linger_zero(fd: std::os::fd::RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: fd is an open socket owned by the caller; the option struct is valid.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Non-blocking liveness check of an idle connection: `false` when the peer
/// has closed it, reset it, or sent unsolicited bytes (either way the
/// connection cannot carry a new request).
pub fn idle_conn_alive(fd: std::os::fd::RawFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: fd is an open socket; b is a valid one-byte buffer.
    let n = unsafe {
        libc::recv(
            fd,
            b.as_mut_ptr() as *mut libc::c_void,
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return e.kind() == io::ErrorKind::WouldBlock;
    }
    false
}

/// A head and a shared body written with one `writev`: the cache hit path.
/// The body is a `Bytes` handle on the stored object, so nothing is copied;
/// the struct is reused per connection, so nothing is allocated either.
pub struct HeadAndBody {
    /// Boxed: monoio reads the iovec pointer before the buffer moves into the
    /// operation, so the array must not live inside the moving struct.
    iov: Box<[libc::iovec; 2]>,
    pub head: Vec<u8>,
    pub body: bytes::Bytes,
}

impl Default for HeadAndBody {
    fn default() -> Self {
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        HeadAndBody {
            iov: Box::new([empty, empty]),
            head: Vec::new(),
            body: bytes::Bytes::new(),
        }
    }
}

impl HeadAndBody {
    /// Points the iovecs at `head` and `body`; call after filling them.
    fn prepare(&mut self) {
        *self.iov = [
            libc::iovec {
                iov_base: self.head.as_ptr() as *mut libc::c_void,
                iov_len: self.head.len(),
            },
            libc::iovec {
                iov_base: self.body.as_ptr() as *mut libc::c_void,
                iov_len: self.body.len(),
            },
        ];
    }

    pub fn len(&self) -> usize {
        self.head.len() + self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// SAFETY: the iovec array is on the heap and points into `head` and `body`,
// whose heap data the struct owns and which do not move or change while it is
// owned by a write operation; `prepare` re-points them before every write.
unsafe impl monoio::buf::IoVecBuf for HeadAndBody {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iov.as_ptr()
    }
    fn read_iovec_len(&self) -> usize {
        2
    }
}

/// Writes `hb.head` then `hb.body` with one `writev` in the common case.
pub async fn write_head_and_body<S: AsyncWriteRentExt + monoio::io::AsyncWriteRent>(
    s: &mut S,
    mut hb: HeadAndBody,
) -> (io::Result<()>, HeadAndBody) {
    hb.prepare();
    let total = hb.len();
    let (res, hb) = s.writev(hb).await;
    let n = match res {
        Ok(n) => n,
        Err(e) => return (Err(e), hb),
    };
    if n >= total {
        return (Ok(()), hb);
    }
    // A short write: finish with plain writes (rare; big bodies, full buffers).
    let HeadAndBody { iov, head, body } = hb;
    let (head_res, head) = if n < head.len() {
        let hl = head.len();
        write_range(s, head, n..hl).await
    } else {
        (Ok(()), head)
    };
    let from = n.saturating_sub(head.len());
    let res = match head_res {
        Ok(()) if from < body.len() => s.write_all(bytes::Bytes::slice(&body, from..)).await.0.map(|_| ()),
        other => other,
    };
    (res, HeadAndBody { iov, head, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_backoff_doubles_to_its_bound_and_starts_over_after_a_success() {
        let mut b = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        let waits: Vec<u128> = (0..8).map(|_| b.failed("test", &emfile).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 500, 500]);
        // Only the first of these was logged; the rest are counted.
        assert_eq!(b.unlogged, 7);
        b.accepted();
        assert_eq!(b.failed("test", &emfile), AcceptBackoff::FIRST);
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(b.failed("test", &aborted), Duration::ZERO);
    }
}
