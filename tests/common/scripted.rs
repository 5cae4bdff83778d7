//! A scripted raw-TCP origin: answers each request with bytes a test
//! chooses, optionally followed later (when the test says so) by more bytes
//! on the same connection. For origins that misbehave in ways the sample
//! origin cannot (bytes after a response's end, odd framing, odd statuses),
//! and for seeing exactly what the proxy sent.

use super::WAIT;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// What the origin sends for one request.
#[derive(Default, Clone)]
pub struct Reply {
    /// Written as soon as the request is read.
    pub now: Vec<u8>,
    /// Written on the same connection when the test calls
    /// [`ScriptedOrigin::release`] (a later TCP segment).
    pub later: Option<Vec<u8>>,
    /// Close the connection after this reply.
    pub close: bool,
    /// Reset the connection (RST, SO_LINGER 0) after this reply.
    pub reset: bool,
}

impl Reply {
    pub fn now(bytes: &[u8]) -> Reply {
        Reply {
            now: bytes.to_vec(),
            ..Default::default()
        }
    }
}

type Script = dyn Fn(&str) -> Reply + Send + Sync;

pub struct ScriptedOrigin {
    pub addr: SocketAddr,
    /// Every request received, raw (head and body), in arrival order.
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    connections: Arc<AtomicUsize>,
    release_tx: Sender<()>,
    written_rx: Mutex<Receiver<()>>,
}

impl ScriptedOrigin {
    /// Starts an origin that answers each request with `script(request
    /// head)`.
    pub fn start(script: impl Fn(&str) -> Reply + Send + Sync + 'static) -> ScriptedOrigin {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = channel::<()>();
        let (written_tx, written_rx) = channel::<()>();
        let shared = Arc::new(Shared {
            script: Box::new(script),
            received: received.clone(),
            release: Mutex::new(release_rx),
            written: Mutex::new(written_tx),
        });
        let conns = connections.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { break };
                conns.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                std::thread::spawn(move || serve(s, &shared));
            }
        });
        ScriptedOrigin {
            addr,
            received,
            connections,
            release_tx,
            written_rx: Mutex::new(written_rx),
        }
    }

    /// Lets one pending `later` part go out, and waits until it is written.
    pub fn release(&self) {
        self.release_tx.send(()).unwrap();
        self.written_rx
            .lock()
            .unwrap()
            .recv_timeout(WAIT)
            .expect("the later part was written");
    }

    /// Requests received so far (raw bytes, head and body).
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().unwrap().clone()
    }

    /// Request lines received so far.
    pub fn request_lines(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| {
                let s = String::from_utf8_lossy(r);
                s.lines().next().unwrap_or("").to_string()
            })
            .collect()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

struct Shared {
    script: Box<Script>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    release: Mutex<Receiver<()>>,
    written: Mutex<Sender<()>>,
}

fn serve(mut s: TcpStream, shared: &Shared) {
    let _ = s.set_read_timeout(Some(WAIT));
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut s, &mut buf) else {
            return;
        };
        let head = String::from_utf8_lossy(&req).into_owned();
        shared.received.lock().unwrap().push(req);
        let reply = (shared.script)(&head);
        if s.write_all(&reply.now).is_err() {
            return;
        }
        if let Some(later) = reply.later {
            if shared.release.lock().unwrap().recv_timeout(WAIT).is_err() {
                return;
            }
            let _ = s.write_all(&later);
            let _ = shared.written.lock().unwrap().send(());
        }
        if reply.reset {
            let _ = socket2::SockRef::from(&s).set_linger(Some(std::time::Duration::ZERO));
            return;
        }
        if reply.close {
            return;
        }
    }
}

/// Reads one request (head, then a Content-Length or chunked body) from
/// `s`, keeping what follows in `buf`. None at EOF.
fn read_request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(s, buf)?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    let end = if let Some(n) = field("content-length:").and_then(|v| v.parse::<usize>().ok()) {
        while buf.len() < head_end + n {
            fill(s, buf)?;
        }
        head_end + n
    } else if field("transfer-encoding:").is_some() {
        let mut d = ringfront::http::chunked::ChunkedDecoder::new();
        let mut at = head_end;
        loop {
            let used = d.feed(&buf[at..], |_| {}).ok()?;
            at += used;
            if d.is_done() {
                break at;
            }
            fill(s, buf)?;
        }
    } else {
        head_end
    };
    Some(buf.drain(..end).collect())
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut tmp = [0u8; 16384];
    match s.read(&mut tmp) {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            Some(())
        }
    }
}
