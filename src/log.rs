//! The access log (SPEC §7): one tab-separated line per request.
//!
//! Workers never block on it. Each worker formats lines into its own buffer
//! (no lock, no syscall per request) and hands a full buffer — or whatever it
//! has, once a second and at shutdown — to one writer thread over a channel.
//! The writer thread does the blocking `write`s to the file or stderr.
//!
//! Fields, in order: time (RFC 3339, ms, UTC), client address, method, host,
//! path+query, status, response bytes, result (`Hit`, `RefreshHit`, `Miss`,
//! `Error`), detailed result, origin id that served (`-` if none), attempts,
//! total ms, origin ms. Bytes of the request that could be hostile (method,
//! host, path) are written with control characters, tabs and non-ASCII
//! escaped as `\xNN`, so a line is always one line of eight-bit-clean fields.

use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

/// A buffer handed to the writer thread once it reaches this size.
const FLUSH_AT: usize = 32 * 1024;

/// The process-wide writer; see the module doc.
pub struct AccessLog {
    tx: Option<Sender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl AccessLog {
    /// `""` = off, `"-"` = stderr, else a file opened for appending.
    pub fn open(target: &str) -> std::io::Result<AccessLog> {
        if target.is_empty() {
            return Ok(AccessLog { tx: None, thread: None });
        }
        let mut out: Box<dyn Write + Send> = if target == "-" {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(target)?)
        };
        let (tx, rx) = channel::<Vec<u8>>();
        let thread = std::thread::Builder::new()
            .name("ringfront-log".into())
            .spawn(move || {
                // An empty chunk is the stop message (see `close`): worker
                // handles may outlive the workers, so the channel alone
                // would not tell the end.
                for chunk in rx {
                    if chunk.is_empty() {
                        break;
                    }
                    if let Err(e) = out.write_all(&chunk) {
                        log::warn!("access log: {e}");
                    }
                    let _ = out.flush();
                }
            })?;
        Ok(AccessLog {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// A handle for one worker.
    pub fn worker(&self) -> WorkerLog {
        WorkerLog {
            tx: self.tx.clone(),
            buf: RefCell::new(Vec::new()),
        }
    }

    /// Waits until everything sent so far is written (workers must have flushed).
    pub fn close(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Vec::new());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request's line.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub client: SocketAddr,
    pub method: &'a [u8],
    pub host: &'a [u8],
    pub path: &'a [u8],
    /// The detailed result and the status sent.
    pub outcome: crate::outcome::Outcome,
    pub bytes: u64,
    pub origin: Option<&'a str>,
    pub attempts: u32,
    pub total: Duration,
    pub origin_time: Option<Duration>,
}

/// A worker's side of the access log.
pub struct WorkerLog {
    tx: Option<Sender<Vec<u8>>>,
    buf: RefCell<Vec<u8>>,
}

impl WorkerLog {
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Appends one line; hands the buffer over when it is full.
    pub fn record(&self, e: &Entry<'_>) {
        if self.tx.is_none() {
            return;
        }
        let mut b = self.buf.borrow_mut();
        format_line(&mut b, SystemTime::now(), e);
        if b.len() >= FLUSH_AT {
            drop(b);
            self.flush();
        }
    }

    /// Hands whatever is buffered to the writer thread.
    pub fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let mut b = self.buf.borrow_mut();
        if b.is_empty() {
            return;
        }
        let chunk = std::mem::replace(&mut *b, Vec::with_capacity(FLUSH_AT + 1024));
        let _ = tx.send(chunk);
    }
}

fn field(out: &mut Vec<u8>, v: &[u8]) {
    if v.is_empty() {
        out.push(b'-');
        return;
    }
    for &c in v {
        if c.is_ascii_graphic() {
            out.push(c);
        } else {
            let _ = write!(out, "\\x{c:02x}");
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Formats one line (with its newline) onto `out`.
pub fn format_line(out: &mut Vec<u8>, now: SystemTime, e: &Entry<'_>) {
    let _ = write!(out, "{}\t{}\t", humantime::format_rfc3339_millis(now), e.client);
    field(out, e.method);
    out.push(b'\t');
    field(out, e.host);
    out.push(b'\t');
    field(out, e.path);
    let _ = write!(
        out,
        "\t{}\t{}\t{}\t{}\t{}\t{}\t{:.3}\t",
        e.outcome.status,
        e.bytes,
        e.outcome.class().as_str(),
        e.outcome.detail.as_str(),
        e.origin.unwrap_or("-"),
        e.attempts,
        ms(e.total)
    );
    match e.origin_time {
        Some(d) => {
            let _ = writeln!(out, "{:.3}", ms(d));
        }
        None => out.extend_from_slice(b"-\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_has_thirteen_tab_separated_fields() {
        let mut out = Vec::new();
        let e = Entry {
            client: "127.0.0.1:5555".parse().unwrap(),
            method: b"GET",
            host: b"example.com",
            path: b"/a\tb?x=\x01",
            outcome: crate::outcome::Outcome::new(crate::outcome::Detail::Miss, 200),
            bytes: 1234,
            origin: Some("secondary"),
            attempts: 2,
            total: Duration::from_micros(1500),
            origin_time: Some(Duration::from_micros(1200)),
        };
        format_line(
            &mut out,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            &e,
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with('\n'));
        let f: Vec<&str> = s.trim_end().split('\t').collect();
        assert_eq!(f.len(), 13, "{s:?}");
        assert_eq!(f[0], "2023-11-14T22:13:20.123Z");
        assert_eq!(f[4], "/a\\x09b?x=\\x01");
        assert_eq!(
            &f[5..],
            ["200", "1234", "Miss", "Miss", "secondary", "2", "1.500", "1.200"]
        );
    }
}
