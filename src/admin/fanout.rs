//! `POST /invalidate` across a cluster (SPEC §8): the host that receives
//! it applies it, then posts the same body to every other peer that has
//! an `admin` address, all at once, each within [`PER_PEER`] (the connect
//! within `[cluster] connection_timeout`), on the admin listener's own
//! thread: a slow or dead peer delays only this answer, never a viewer.
//!
//! A fanned-out call is marked with the cluster's token in `CDN-Loop`
//! (RFC 8586, as the proxy marks the requests it sends to a peer), and a
//! marked call is applied locally only and answered with its count, as
//! without a cluster: nothing is fanned out twice, whatever the peers'
//! configs say.
//!
//! The answer has one line per peer, in config order: `<id>: <n> removed`
//! or `<id>: error <reason>` (a peer without an admin address says so).

use crate::config::Cluster;
use crate::http::response::{parse_response, RespBody, ResponseHead};
use crate::net;
use monoio::net::TcpStream;
use std::fmt::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Bound on one peer's part: connect, send, answer.
const PER_PEER: Duration = Duration::from_secs(5);
/// Bound on a peer's answer (a count and a few headers).
const MAX_ANSWER: usize = 16 * 1024;

/// True when the call came from a peer's fan-out: its `CDN-Loop` lines
/// carry the cluster's token.
pub(super) fn is_fanned_out<'a>(c: &Cluster, cdn_loop: impl IntoIterator<Item = &'a [u8]>) -> bool {
    crate::http::cdn_loop::carries(cdn_loop, c.id.as_bytes())
}

/// Posts `body` to every other peer with an admin address, concurrently;
/// returns the answer lines, `local` (what this host removed) on its own.
pub(super) async fn invalidate_everywhere(c: &Cluster, body: &[u8], local: usize) -> String {
    let body: Rc<[u8]> = body.into();
    let calls: Vec<_> = c
        .peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let to = p.admin_addrs.first().copied().filter(|_| !c.is_self(i));
            let (body, id, connect) = (body.clone(), c.id.clone(), c.connection_timeout);
            to.map(|addr| monoio::spawn(async move { post(addr, &id, &body, connect).await }))
        })
        .collect();
    let mut out = String::new();
    for ((i, p), call) in c.peers.iter().enumerate().zip(calls) {
        let line = match call {
            _ if c.is_self(i) => Ok(local as u64),
            Some(call) => call.await,
            None => Err("no admin address".to_string()),
        };
        let _ = match line {
            Ok(n) => writeln!(out, "{}: {n} removed", p.id),
            Err(why) => writeln!(out, "{}: error {why}", p.id),
        };
    }
    out
}

/// One peer's `POST /invalidate`, marked; its count, or why there is none.
async fn post(addr: SocketAddr, cluster: &str, body: &[u8], connect: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + PER_PEER;
    let mut s = match monoio::time::timeout(connect.min(PER_PEER), TcpStream::connect_addr(addr)).await {
        Err(_) => return Err("connect timed out".into()),
        Ok(Err(e)) => return Err(e.kind().to_string()),
        Ok(Ok(s)) => s,
    };
    let mut req = format!(
        "POST /invalidate HTTP/1.1\r\nHost: {addr}\r\nCDN-Loop: {cluster}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    match monoio::time::timeout_at(deadline.into(), net::write_all(&mut s, req)).await {
        Err(_) => return Err("timed out".into()),
        Ok((Err(e), _)) => return Err(e.kind().to_string()),
        Ok((Ok(()), _)) => {}
    }
    let mut buf = Vec::with_capacity(1024);
    loop {
        match monoio::time::timeout_at(deadline.into(), net::read_more(&mut s, buf, 1024, MAX_ANSWER)).await {
            Err(_) => return Err("timed out".into()),
            Ok((Err(e), _)) => return Err(e.kind().to_string()),
            Ok((Ok(0), b)) => return count_in(&b),
            Ok((Ok(_), b)) if complete(&b) => return count_in(&b),
            Ok((Ok(_), b)) if b.len() >= MAX_ANSWER => return Err("answer too large".into()),
            Ok((Ok(_), b)) => buf = b,
        }
    }
}

/// True once `answer` holds a whole response with a Content-Length body
/// (the peer need not close first).
fn complete(answer: &[u8]) -> bool {
    let mut head = ResponseHead::default();
    match (parse_response(answer, false, &mut head), head.body()) {
        (Ok(Some(n)), RespBody::Length(len)) => (answer.len() - n.min(answer.len())) as u64 >= len,
        _ => false,
    }
}

/// The count a peer's admin listener answered with (a 200 whose body is
/// the number removed).
fn count_in(answer: &[u8]) -> Result<u64, String> {
    let mut head = ResponseHead::default();
    let n = match parse_response(answer, false, &mut head) {
        Ok(Some(n)) => n,
        _ => return Err("unreadable answer".into()),
    };
    let body = answer.get(n..).unwrap_or_default();
    let body = match head.body() {
        RespBody::Length(len) => body.get(..usize::try_from(len).unwrap_or(usize::MAX)).unwrap_or(body),
        _ => body,
    };
    if head.status != 200 {
        return Err(format!("status {}", head.status));
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| "unreadable answer".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peers_count_is_read_from_its_answer() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n7\n";
        assert_eq!(count_in(ok), Ok(7));
        assert!(complete(ok) && !complete(&ok[..ok.len() - 1]));
        let refused = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(count_in(refused), Err("status 503".into()));
        for bad in [
            &b"HTTP/1.1 200 OK\r\n\r\nseven\n"[..],
            b"garbage",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert_eq!(count_in(bad), Err("unreadable answer".into()), "{bad:?}");
        }
    }
}
