//! Origin I/O: carrying out the attempt machine's `Connect`, `Send` and
//! `AwaitHead` actions and turning what happened into its events.
//!
//! Every wait here is bounded by a deadline the machine gave; when a deadline
//! passes the function reports `Event::Timer` and lets the machine decide
//! (it alone knows whether that was the connect timeout, the first-byte
//! timeout or a gap inside the head).

use super::attempt::{ConnectError, Event};
use super::pool::OriginConn;
use crate::http::response::{parse_response, ResponseHead};
use crate::net;
use crate::tls::{HandshakeError, OriginTls, Stream};
use monoio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

/// Connects to `addr` by `deadline`; for an https origin (`tls`) the TLS
/// handshake must also finish by then. A handshake failure is a connect
/// failure: the attempt machine retries and fails over as for a refused
/// connection, and reports it as `tls_certificate_error` or
/// `tls_protocol_error`.
pub async fn connect(addr: SocketAddr, deadline: Instant, tls: Option<&OriginTls>) -> Result<OriginConn, ConnectError> {
    let tcp = match monoio::time::timeout_at(deadline.into(), TcpStream::connect_addr(addr)).await {
        Err(_) => return Err(ConnectError::Timeout),
        Ok(Err(e)) => {
            return Err(match e.kind() {
                io::ErrorKind::ConnectionRefused => ConnectError::Refused,
                io::ErrorKind::TimedOut => ConnectError::Timeout,
                _ => ConnectError::Unavailable,
            })
        }
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let stream = match tls {
        None => Stream::Plain(tcp),
        Some(t) => crate::tls::connect(tcp, t, deadline).await.map_err(|e| match e {
            HandshakeError::Timeout => ConnectError::Timeout,
            HandshakeError::Certificate => ConnectError::TlsCertificate,
            HandshakeError::Protocol => ConnectError::TlsProtocol,
        })?,
    };
    Ok(OriginConn::new(stream))
}

/// What [`read_head`] keeps across calls for one attempt.
#[derive(Debug, Default)]
pub struct HeadRead {
    /// The request was HEAD (the response has no body).
    pub head_request: bool,
    /// The connection came from the pool.
    pub reused: bool,
    /// A response byte has arrived on this connection, which decides
    /// whether a failure is retryable.
    pub got_bytes: bool,
    /// Length of an interim (1xx) head at the front of the buffer, parsed
    /// into `head`, for the caller to forward and remove; 0 when none.
    pub interim: usize,
}

/// Reads from the origin until a complete final head, an interim head, a
/// timeout, or an error.
///
/// `buf` accumulates the head; on `Head` the head is its first
/// `head.head_len` bytes and body bytes may follow. An interim response
/// (RFC 9110 §15.2) other than `100 Continue` (the viewer gets its own from
/// the proxy) and `101` (an error: ringfront asks for no upgrade) is
/// reported as `Progress` with `st.interim` set: the caller forwards it,
/// removes it from `buf` and calls again.
pub async fn read_head(
    conn: &mut OriginConn,
    mut buf: Vec<u8>,
    deadline: Instant,
    head: &mut ResponseHead,
    st: &mut HeadRead,
) -> (Event, Option<Vec<u8>>) {
    st.interim = 0;
    // Whether `buf` may already hold a complete head (bytes left from a 1xx).
    let mut parse_first = !buf.is_empty();
    // Bytes arrived during this call (progress is reported only for those).
    let mut fresh = false;
    loop {
        if parse_first {
            match parse_response(&buf, st.head_request, head) {
                Ok(Some(n)) => {
                    if head.status == 101 {
                        return (Event::BadHead, Some(buf));
                    }
                    if head.status == 100 {
                        buf.drain(..n);
                        parse_first = !buf.is_empty();
                        continue;
                    }
                    if (100..200).contains(&head.status) {
                        st.interim = n;
                        return (Event::Progress, Some(buf));
                    }
                    return (Event::Head { status: head.status }, Some(buf));
                }
                // Bytes arrived but the head is incomplete: report progress
                // so the machine re-arms the gap timeout.
                Ok(None) if fresh => return (Event::Progress, Some(buf)),
                Ok(None) => {}
                Err(_) => return (Event::BadHead, Some(buf)),
            }
        }
        let fut = net::read_more(
            conn.stream(),
            buf,
            16 * 1024,
            crate::http::response::MAX_RESPONSE_HEAD + 64 * 1024,
        );
        match monoio::time::timeout_at(deadline.into(), fut).await {
            Err(_) => return (Event::Timer, None),
            Ok((Ok(0), b)) | Ok((Err(_), b)) => {
                return (
                    Event::FailedBeforeResponse {
                        reused: st.reused && !st.got_bytes,
                    },
                    Some(b),
                );
            }
            Ok((Ok(_), b)) => {
                buf = b;
                st.got_bytes = true;
                fresh = true;
                parse_first = true;
            }
        }
    }
}
