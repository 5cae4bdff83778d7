//! The sample origin: a small, fast, fault-injecting HTTP/1.1 server.
//!
//! `ringfront demo`, the integration tests and `scripts/bench` all use it, so
//! the faults the tests inject are the same ones an operator can try by hand.
//! It binds loopback addresses only, and the benchmarking range
//! 198.18.0.0/15 (RFC 2544, where the namespace tests of a cluster put their
//! hosts: `tests/common/netns.rs`), never an address the world can reach.
//!
//! Per-request knobs come from the query string; a knob may be prefixed with
//! the origin's name (`primary.status=503`) to apply to that origin only,
//! which is how one URL fails on the primary and succeeds on the secondary:
//!
//! | knob | effect |
//! |---|---|
//! | `size=N` | body of N bytes (a fixed 64-byte pattern repeated; see [`pattern_body`]) |
//! | `text=1` | with `size`: the body is HTML-like text (words, tags; compresses about as a web page does; see [`text_body`]) and the type `text/html` |
//! | `type=MIME` | the Content-Type (default `text/plain`; `%2F` decoded) |
//! | `status=N` | response status |
//! | `chunked=1` | chunked transfer coding |
//! | `delay=MS` | wait before the response head |
//! | `cc=VALUE` | a Cache-Control header (`%20` and `%2C` decoded) |
//! | `cookie=1` | a Set-Cookie header |
//! | `vary=NAME` | a Vary header |
//! | `etag=TAG` | an ETag header; a request with a matching If-None-Match gets 304 |
//! | `close=1` | `Connection: close` and close after the response |
//! | `fail=reset` | reset the connection instead of answering |
//! | `fail=close` | close the connection without answering |
//! | `fail=stall` | never answer (hold the connection) |
//! | `fail=reset_mid_head` | send half a head, then reset |
//! | `fail=close_mid_body` | send the head and half the body, then close |
//! | `echo=1` | the body is the request head as received |
//! | `drop_after=1` | answer as keep-alive, then close the connection anyway |
//! | `drop_after=reset` | answer as keep-alive, then reset the connection (counted by [`SampleOrigin::resets`]) |
//!
//! Every response carries `X-Origin: NAME`, `X-Request-Count: N` and, when
//! the request had a body, `X-Received-Bytes` and `X-Received-Sum` (a byte sum
//! of the body) so tests can check what arrived.
//!
//! Origin-wide modes ([`Mode`]) are set in process through [`Control`], or
//! over HTTP with `GET /__origin/mode?set=refuse|stall|503|normal[&for=MS]`.
//!
//! [`SampleOrigin::start_tls`] serves HTTPS instead, for the https-origin
//! tests; the knobs and modes are the same.

use crate::http::body::BodyCursor;
use crate::http::parse::{parse_request, BodyKind, RequestHead};
use crate::net;
use crate::tls::Stream;
use monoio::io::AsyncWriteRentExt;
use monoio::net::TcpListener;
use std::cell::Cell;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Origin-wide behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Answer requests.
    Normal = 0,
    /// Not listening: connects are refused, and requests on connections
    /// opened earlier are answered with a reset.
    Refuse = 1,
    /// Accept connections, read requests, never answer.
    Stall = 2,
    /// Answer every request with 503 Service Unavailable.
    Unavailable = 3,
}

/// Shared state of one sample origin: its mode and what it has seen.
#[derive(Debug)]
pub struct Control {
    pub name: String,
    mode: AtomicU8,
    /// Mode generation the accept loop has applied.
    applied: AtomicU64,
    wanted: AtomicU64,
    requests: AtomicU64,
    connections: AtomicU64,
    /// Connections reset by `drop_after=reset`, counted once reset.
    resets: AtomicU64,
    heads: Mutex<std::collections::VecDeque<Vec<u8>>>,
}

const MAX_KEPT_HEADS: usize = 4096;

impl Control {
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Acquire) {
            1 => Mode::Refuse,
            2 => Mode::Stall,
            3 => Mode::Unavailable,
            _ => Mode::Normal,
        }
    }

    /// Requests received (heads parsed).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Acquire)
    }

    /// The request heads received, oldest first (the last 4096).
    pub fn heads(&self) -> Vec<String> {
        self.heads
            .lock()
            .map(|h| h.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect())
            .unwrap_or_default()
    }

    fn set_mode_async(&self, m: Mode) {
        self.mode.store(m as u8, Ordering::Release);
        self.wanted.fetch_add(1, Ordering::AcqRel);
    }
}

/// A running sample origin.
pub struct SampleOrigin {
    addr: SocketAddr,
    ctl: Arc<Control>,
}

impl SampleOrigin {
    /// Starts a sample origin on `addr` (port 0 picks a free port) with one thread.
    pub fn start(addr: &str, name: &str) -> std::io::Result<SampleOrigin> {
        Self::start_threads(addr, name, 1)
    }

    /// Starts a sample origin with `threads` worker threads sharing the port.
    pub fn start_threads(addr: &str, name: &str, threads: usize) -> std::io::Result<SampleOrigin> {
        Self::start_inner(addr, name, threads, None)
    }

    /// Starts an HTTPS sample origin: each connection is a TLS handshake
    /// with `tls` (certificates, session cache), then the same server.
    pub fn start_tls(
        addr: &str,
        name: &str,
        threads: usize,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<SampleOrigin> {
        Self::start_inner(addr, name, threads, Some(tls))
    }

    fn start_inner(
        addr: &str,
        name: &str,
        threads: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> std::io::Result<SampleOrigin> {
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad address"))?;
        if !may_bind(addr.ip()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the sample origin binds loopback and 198.18.0.0/15 addresses only",
            ));
        }
        let first = net::reuseport_listener(addr, 1024)?;
        let addr = first.local_addr()?;
        let ctl = Arc::new(Control {
            name: name.to_string(),
            mode: AtomicU8::new(0),
            applied: AtomicU64::new(0),
            wanted: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            heads: Mutex::new(std::collections::VecDeque::new()),
        });
        let mut first = Some(first);
        for i in 0..threads.max(1) {
            let l = match first.take() {
                Some(l) => l,
                None => net::reuseport_listener(addr, 1024)?,
            };
            let ctl = ctl.clone();
            let tls = tls.clone();
            std::thread::Builder::new()
                .name(format!("origin-{name}-{i}"))
                .spawn(move || {
                    // The same runtime set-up as the proxy's workers.
                    let driver = crate::runtime::choose_driver(crate::config::IoDriver::Auto)
                        .unwrap_or(crate::runtime::Driver::Epoll(String::new()));
                    if let Err(e) = crate::runtime::block_on(&driver, || accept_loop(l, addr, ctl, i == 0, tls)) {
                        log::error!("sample origin runtime: {e}");
                    }
                })?;
        }
        Ok(SampleOrigin { addr, ctl })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn control(&self) -> &Arc<Control> {
        &self.ctl
    }

    /// Sets the origin-wide mode and waits (up to 10 s) until it applies.
    pub fn set_mode(&self, m: Mode) {
        self.ctl.set_mode_async(m);
        let want = self.ctl.wanted.load(Ordering::Acquire);
        let t0 = std::time::Instant::now();
        while self.ctl.applied.load(Ordering::Acquire) < want && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn requests(&self) -> u64 {
        self.ctl.requests()
    }

    pub fn connections(&self) -> u64 {
        self.ctl.connections()
    }

    /// Connections reset after an answer by `drop_after=reset`; each is
    /// counted after the reset was sent.
    pub fn resets(&self) -> u64 {
        self.ctl.resets.load(Ordering::Acquire)
    }
}

/// Loopback, or the benchmarking range 198.18.0.0/15 (RFC 2544 §C.2.2: not
/// routed on the Internet).
fn may_bind(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback() || v4.octets()[0] == 198 && v4.octets()[1] & 0xfe == 18,
        std::net::IpAddr::V6(v6) => v6.is_loopback(),
    }
}

/// How often the accept loop looks at the mode while idle.
const MODE_POLL: Duration = Duration::from_millis(20);

async fn accept_loop(
    l: std::net::TcpListener,
    addr: SocketAddr,
    ctl: Arc<Control>,
    leader: bool,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let mut listener = TcpListener::from_std(l).ok();
    // The accept is never cancelled (with io_uring a cancelled accept can race
    // with a completed one and lose the connection). A mode change that needs
    // the listener gone is made by a watcher shutting the listener down, which
    // fails the pending accept.
    let fd = Rc::new(Cell::new(listener.as_ref().map_or(-1, |l| l.as_raw_fd())));
    if leader {
        monoio::spawn(watch_mode(ctl.clone(), fd.clone()));
    }
    loop {
        if leader {
            // Only the first thread applies mode changes that need the listener.
            let wanted = ctl.wanted.load(Ordering::Acquire);
            if ctl.mode() == Mode::Refuse {
                listener = None;
            } else if listener.is_none() {
                listener = net::reuseport_listener(addr, 1024)
                    .ok()
                    .and_then(|l| TcpListener::from_std(l).ok());
            }
            fd.set(listener.as_ref().map_or(-1, |l| l.as_raw_fd()));
            ctl.applied.store(wanted, Ordering::Release);
        }
        let Some(l) = listener.as_ref() else {
            monoio::time::sleep(MODE_POLL).await;
            continue;
        };
        match l.accept().await {
            Ok((s, _)) => {
                ctl.connections.fetch_add(1, Ordering::AcqRel);
                let _ = s.set_nodelay(true);
                let (ctl, tls) = (ctl.clone(), tls.clone());
                monoio::spawn(async move {
                    let s = match tls {
                        None => Stream::Plain(s),
                        Some(config) => {
                            let deadline = std::time::Instant::now() + Duration::from_secs(30);
                            match crate::tls::accept(s, &config, deadline).await {
                                Ok(s) => s,
                                Err(_) => return,
                            }
                        }
                    };
                    serve(s, ctl).await
                });
            }
            // Shut down by the watcher (or broken): make a new one next turn.
            Err(_) => {
                listener = None;
                fd.set(-1);
            }
        }
    }
}

/// Acknowledges mode changes; for Refuse, shuts the listener down so the
/// accept loop wakes and drops it.
async fn watch_mode(ctl: Arc<Control>, fd: Rc<Cell<i32>>) {
    loop {
        monoio::time::sleep(MODE_POLL).await;
        let wanted = ctl.wanted.load(Ordering::Acquire);
        if ctl.applied.load(Ordering::Acquire) >= wanted || fd.get() < 0 {
            // Nothing new, or the accept loop is between listeners and applies it.
            continue;
        }
        if ctl.mode() == Mode::Refuse {
            // SAFETY: fd is the accept loop's open listening socket.
            unsafe {
                libc::shutdown(fd.get(), libc::SHUT_RDWR);
            }
        } else {
            ctl.applied.store(wanted, Ordering::Release);
        }
    }
}

/// The deterministic body pattern for `size=N`: bytes `i % 64` of a fixed alphabet.
pub fn pattern_body(n: usize) -> Vec<u8> {
    pattern().iter().cycle().take(n).copied().collect()
}

const ALPHABET: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
const PATTERN_LEN: usize = 64 * 1024;

/// The deterministic body for `text=1&size=N`: HTML-like text, the first
/// N bytes of [`TEXT_LEN`] repeated.
pub fn text_body(n: usize) -> Vec<u8> {
    text().iter().cycle().take(n).copied().collect()
}

/// 1 MiB: 16 KiB pieces never wrap.
const TEXT_LEN: usize = 1024 * 1024;

/// Paragraphs of words drawn from a small vocabulary by a fixed LCG: text
/// that gzip and brotli shrink 3–5×, as they do a web page (the 64-byte
/// pattern shrinks to nothing, which would flatter a compressed hit).
fn text() -> &'static [u8] {
    static T: OnceLock<Box<[u8]>> = OnceLock::new();
    T.get_or_init(|| {
        const WORDS: [&str; 48] = [
            "the",
            "edge",
            "cache",
            "origin",
            "request",
            "response",
            "viewer",
            "behavior",
            "policy",
            "header",
            "cookie",
            "query",
            "object",
            "variant",
            "stored",
            "fresh",
            "stale",
            "served",
            "failover",
            "primary",
            "secondary",
            "group",
            "connection",
            "timeout",
            "status",
            "body",
            "length",
            "chunk",
            "gzip",
            "brotli",
            "compress",
            "encoding",
            "vary",
            "key",
            "host",
            "path",
            "normalised",
            "shared",
            "memory",
            "shard",
            "eviction",
            "queue",
            "worker",
            "ring",
            "socket",
            "buffer",
            "event",
            "loop",
        ];
        let mut out = Vec::with_capacity(TEXT_LEN + 64);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) as usize
        };
        while out.len() < TEXT_LEN {
            out.extend_from_slice(b"<p class=\"t\">");
            for i in 0..8 + next() % 24 {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(WORDS[next() % WORDS.len()].as_bytes());
                if next() % 9 == 0 {
                    out.extend_from_slice(itoa::Buffer::new().format(next() % 10_000).as_bytes());
                }
            }
            out.extend_from_slice(b".</p>\n");
        }
        out.truncate(TEXT_LEN);
        out.into_boxed_slice()
    })
}

fn pattern() -> &'static [u8] {
    static P: OnceLock<Box<[u8]>> = OnceLock::new();
    P.get_or_init(|| ALPHABET.iter().cycle().take(PATTERN_LEN).copied().collect())
}

/// The `type` knob (`%2F` decoded; only token, `/`, `;`, `=` and space
/// characters kept, so a knob cannot break the head), else `text/html` for
/// `text=1`, else `text/plain`.
fn content_type(k: &Knobs) -> String {
    match k.get("type") {
        Some(t) => t
            .replace("%2F", "/")
            .replace("%20", " ")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "/;=+-. ".contains(*c))
            .collect(),
        None if k.get("text") == Some("1") => "text/html".into(),
        None => "text/plain".into(),
    }
}

struct Knobs<'a> {
    name: &'a str,
    query: &'a str,
}

impl Knobs<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let mut plain = None;
        for kv in self.query.split('&') {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            if let Some(rest) = k.strip_prefix(self.name).and_then(|r| r.strip_prefix('.')) {
                if rest == key {
                    return Some(v);
                }
            } else if k == key && plain.is_none() {
                plain = Some(v);
            }
        }
        plain
    }
    fn num(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(|v| v.parse().ok())
    }
}

async fn serve(mut s: Stream, ctl: Arc<Control>) {
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut head = RequestHead::default();
    loop {
        // Read a head.
        let n = loop {
            if !buf.is_empty() {
                match parse_request(&buf, 64 * 1024, &mut head) {
                    Ok(Some(n)) => break n,
                    Ok(None) => {}
                    Err(_) => {
                        let _ = s
                            .write_all(
                                &b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..],
                            )
                            .await;
                        return;
                    }
                }
            }
            buf = match read_some(&mut s, buf).await {
                Some(b) => b,
                None => return,
            };
        };
        ctl.requests.fetch_add(1, Ordering::AcqRel);
        let count = ctl.requests();
        if let Ok(mut h) = ctl.heads.lock() {
            if h.len() >= MAX_KEPT_HEADS {
                h.pop_front();
            }
            h.push_back(buf[..n].to_vec());
        }
        let keep_alive = head.keep_alive;
        let target = String::from_utf8_lossy(head.path.of(&buf)).into_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let head_req = head.is_head(&buf);
        let if_none_match = head.header(&buf, b"if-none-match").map(<[u8]>::to_vec);
        let echo = if query.contains("echo=1") {
            buf[..n].to_vec()
        } else {
            Vec::new()
        };
        let body_kind = head.body;
        buf.drain(..n);

        // Read the request body, counting it.
        let mut received: u64 = 0;
        let mut sum: u64 = 0;
        let mut cursor = match body_kind {
            BodyKind::None => None,
            BodyKind::Length(l) => Some(BodyCursor::length(l)),
            BodyKind::Chunked => Some(BodyCursor::chunked()),
        };
        if let Some(c) = cursor.as_mut() {
            loop {
                let mut data = 0u64;
                let mut s_add = 0u64;
                let used = match c.feed(&buf, |r| {
                    data += r.len() as u64;
                    s_add += buf[r].iter().map(|&b| b as u64).sum::<u64>();
                }) {
                    Ok(u) => u,
                    Err(_) => return,
                };
                received += data;
                sum = sum.wrapping_add(s_add);
                buf.drain(..used);
                if c.is_done() {
                    break;
                }
                buf = match read_some(&mut s, buf).await {
                    Some(b) => b,
                    None => return,
                };
            }
        }

        if path.starts_with("/__origin/mode") {
            let k = Knobs { name: "", query };
            let m = match k.get("set") {
                Some("refuse") => Mode::Refuse,
                Some("stall") => Mode::Stall,
                Some("503") => Mode::Unavailable,
                _ => Mode::Normal,
            };
            if let Some(ms) = k.num("for") {
                let ctl2 = ctl.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(ms.min(3_600_000)));
                    ctl2.set_mode_async(Mode::Normal);
                });
            }
            ctl.set_mode_async(m);
            let _ = s
                .write_all(&b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"[..])
                .await;
            return;
        }

        if ctl.mode() == Mode::Refuse {
            // A refusing origin is down: its open connections die too.
            net::set_linger_zero(s.raw_fd());
            return;
        }
        if ctl.mode() == Mode::Stall {
            stall(&mut s).await;
            return;
        }

        let k = Knobs { name: &ctl.name, query };
        if let Some(ms) = k.num("delay") {
            monoio::time::sleep(Duration::from_millis(ms.min(600_000))).await;
        }
        match k.get("fail") {
            Some("reset") => {
                net::set_linger_zero(s.raw_fd());
                return;
            }
            Some("close") => return,
            Some("stall") => {
                stall(&mut s).await;
                return;
            }
            Some("reset_mid_head") => {
                let _ = s.write_all(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]).await;
                net::set_linger_zero(s.raw_fd());
                return;
            }
            _ => {}
        }
        let mut status: u16 = k
            .num("status")
            .map(|v| v as u16)
            .filter(|v| (200..=599).contains(v))
            .unwrap_or(200);
        if ctl.mode() == Mode::Unavailable {
            status = 503;
        }
        // A matching If-None-Match gets 304 (the `etag` knob names the tag).
        if let (Some(tag), Some(inm)) = (k.get("etag"), if_none_match.as_deref()) {
            if inm == format!("\"{tag}\"").as_bytes() && status == 200 {
                status = 304;
            }
        }
        let close = k.get("close") == Some("1") || !keep_alive;
        let chunked = k.get("chunked") == Some("1");
        let mid_body = k.get("fail") == Some("close_mid_body");
        let body_echo = k.get("echo") == Some("1");
        let body_len = if body_echo {
            echo.len()
        } else {
            k.num("size").map_or(format!("ok {}\n", ctl.name).len(), |v| v as usize)
        };
        let no_body = head_req || status == 204 || status == 304;

        out.clear();
        use std::io::Write;
        let _ = write!(
            out,
            "HTTP/1.1 {status} {}\r\nServer: ringfront-sample-origin\r\nX-Origin: {}\r\nX-Request-Count: {count}\r\nContent-Type: {}\r\n",
            crate::http::write::reason(status),
            ctl.name,
            content_type(&k)
        );
        if body_kind != BodyKind::None {
            let _ = write!(out, "X-Received-Bytes: {received}\r\nX-Received-Sum: {sum}\r\n");
        }
        if k.get("cookie") == Some("1") {
            out.extend_from_slice(b"Set-Cookie: session=1\r\n");
        }
        if let Some(vary) = k.get("vary") {
            let _ = write!(out, "Vary: {vary}\r\n");
        }
        if let Some(etag) = k.get("etag") {
            let _ = write!(out, "ETag: \"{etag}\"\r\n");
        }
        if let Some(cc) = k.get("cc") {
            let _ = write!(out, "Cache-Control: {}\r\n", cc.replace("%20", " ").replace("%2C", ","));
        }
        if status != 204 {
            if chunked {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
            } else {
                let _ = write!(out, "Content-Length: {body_len}\r\n");
            }
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if no_body {
            let (r, o) = net::write_all(&mut s, out).await;
            out = o;
            if r.is_err() || close {
                return;
            }
            continue;
        }
        let html = k.get("text") == Some("1");
        let src: Option<Vec<u8>> = if body_echo {
            Some(echo)
        } else if k.get("size").is_none() {
            Some(format!("ok {}\n", ctl.name).into_bytes())
        } else {
            None
        };
        let piece = |off: usize, n: usize| -> &[u8] {
            match &src {
                Some(v) => &v[off..off + n],
                None if html => &text()[off % TEXT_LEN..off % TEXT_LEN + n],
                None => &pattern()[off % PATTERN_LEN..off % PATTERN_LEN + n],
            }
        };
        let send_len = if mid_body { body_len / 2 } else { body_len };
        // Pieces of 16 KiB (which divides the pattern length, so a piece never
        // wraps), gathered into writes of at least 16 KiB; a small body goes
        // out with the head in one write.
        let mut off = 0;
        while off < send_len {
            let n = (send_len - off).min(16 * 1024);
            if chunked {
                let _ = write!(out, "{n:x}\r\n");
            }
            out.extend_from_slice(piece(off, n));
            if chunked {
                out.extend_from_slice(b"\r\n");
            }
            off += n;
            if out.len() >= 16 * 1024 && off < send_len {
                let (r, o) = net::write_all(&mut s, out).await;
                out = o;
                out.clear();
                if r.is_err() {
                    return;
                }
            }
        }
        if chunked && !mid_body {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        let (r, o) = net::write_all(&mut s, out).await;
        out = o;
        if r.is_err() {
            return;
        }
        if k.get("drop_after") == Some("reset") {
            net::set_linger_zero(s.raw_fd());
            drop(s);
            ctl.resets.fetch_add(1, Ordering::AcqRel);
            return;
        }
        if mid_body || close || k.get("drop_after") == Some("1") {
            return;
        }
    }
}

/// Reads more onto `buf` (two minutes at most); `None` on EOF, error or timeout.
async fn read_some(s: &mut Stream, buf: Vec<u8>) -> Option<Vec<u8>> {
    match monoio::time::timeout(Duration::from_secs(120), net::read_more(s, buf, 64 * 1024, 1 << 20)).await {
        Ok((Ok(n), b)) if n > 0 => Some(b),
        _ => None,
    }
}

/// Holds a connection without answering until the peer closes it (or 10 minutes).
async fn stall(s: &mut Stream) {
    let mut b = Vec::with_capacity(4096);
    let until = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        b.clear();
        match monoio::time::timeout_at(until.into(), net::read_more(s, b, 4096, 4096)).await {
            Ok((Ok(n), bb)) if n > 0 => b = bb,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn binds_loopback_and_the_benchmarking_range_only() {
        let ok = |s: &str| super::may_bind(s.parse().unwrap());
        assert!(ok("127.0.0.1") && ok("::1") && ok("198.18.2.2") && ok("198.19.255.255"));
        assert!(!ok("198.20.0.1") && !ok("198.17.0.1") && !ok("0.0.0.0") && !ok("10.0.0.1"));
    }
}
