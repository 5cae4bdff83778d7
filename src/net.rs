//! Small socket helpers shared by the proxy, the admin listener and the
//! sample origin: listeners with SO_REUSEPORT, owned-buffer read/write
//! wrappers for monoio's rent-style I/O, and connect error classification.
//!
//! monoio's I/O takes buffers by value and hands them back with the result
//! (io_uring owns the memory while the operation is in flight). These helpers
//! keep that shape but hide the slicing, so callers keep one `Vec<u8>` per
//! direction and reuse it.

use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use std::io;
use std::net::SocketAddr;

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

/// Reads more bytes onto the end of `buf`, growing it to keep at least
/// `min_spare` bytes free (but never past `max_len`). `Ok(0)` is EOF.
pub async fn read_more<S: AsyncReadRent>(
    s: &mut S,
    mut buf: Vec<u8>,
    min_spare: usize,
    max_len: usize,
) -> (io::Result<usize>, Vec<u8>) {
    let spare = buf.capacity() - buf.len();
    if spare < min_spare {
        let want = (buf.len() + min_spare).min(max_len.max(buf.len() + 1));
        buf.reserve(want - buf.len());
    }
    let len = buf.len();
    let cap = buf.capacity().min(max_len.max(len + 1));
    let (res, slice) = s.read(buf.slice_mut(len..cap)).await;
    (res, slice.into_inner())
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
