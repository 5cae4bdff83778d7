//! The owned-buffer I/O traits (monoio's `AsyncReadRent`/`AsyncWriteRent`)
//! for a TLS adapter, in one place: both adapters ([`super::client`],
//! [`super::server`]) read and write through plain slices, and this turns
//! monoio's owned buffers and iovecs into those slices. A type using
//! [`rent_io!`] provides `read_into(&mut [u8])`, `write_from(&[u8])`,
//! `flush_tls()` and `close_tls()` (close_notify, then the TCP write side).

/// Implements `AsyncReadRent` and `AsyncWriteRent` for `$t` over its
/// slice methods (see the module doc). Vectored calls use the first buffer
/// only: a short read or write, as readv and writev allow.
macro_rules! rent_io {
    ($t:ty) => {
        impl monoio::io::AsyncReadRent for $t {
            async fn read<T: monoio::buf::IoBufMut>(&mut self, mut buf: T) -> monoio::BufResult<usize, T> {
                // SAFETY: an IoBufMut is `bytes_total()` writable bytes at
                // `write_ptr()`, which stay put while `buf` lives (it is
                // held here until this returns); only copies write into it.
                let dst = unsafe { std::slice::from_raw_parts_mut(buf.write_ptr(), buf.bytes_total()) };
                let r = self.read_into(dst).await;
                if let Ok(n) = r {
                    // SAFETY: the first `n` bytes were written.
                    unsafe { buf.set_init(n) };
                }
                (r, buf)
            }

            async fn readv<T: monoio::buf::IoVecBufMut>(&mut self, mut buf: T) -> monoio::BufResult<usize, T> {
                // SAFETY: the iovec points into `buf`, held until this returns.
                let r = match unsafe { monoio::buf::RawBuf::new_from_iovec_mut(&mut buf) } {
                    Some(raw) => self.read(raw).await.0,
                    None => Ok(0),
                };
                if let Ok(n) = r {
                    // SAFETY: `n` bytes of the first iovec were written.
                    unsafe { buf.set_init(n) };
                }
                (r, buf)
            }
        }

        impl monoio::io::AsyncWriteRent for $t {
            async fn write<T: monoio::buf::IoBuf>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
                // SAFETY: an IoBuf is `bytes_init()` initialised bytes at
                // `read_ptr()`, valid while `buf` lives.
                let src = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
                let r = self.write_from(src).await;
                (r, buf)
            }

            async fn writev<T: monoio::buf::IoVecBuf>(&mut self, buf: T) -> monoio::BufResult<usize, T> {
                // SAFETY: the iovec points into `buf`, held until this returns.
                let r = match unsafe { monoio::buf::RawBuf::new_from_iovec(&buf) } {
                    Some(raw) => self.write(raw).await.0,
                    None => Ok(0),
                };
                (r, buf)
            }

            async fn flush(&mut self) -> std::io::Result<()> {
                self.flush_tls().await
            }

            async fn shutdown(&mut self) -> std::io::Result<()> {
                self.close_tls().await
            }
        }
    };
}

pub(super) use rent_io;
