//! Shared test harness: the real `ringfront` binary on a free loopback port,
//! in-process sample origins, and a raw HTTP/1.1 client over std sockets.
//!
//! Every wait is bounded; conditions are polled with a deadline, never slept
//! for a fixed time.
#![allow(dead_code)]

pub mod netns;
pub mod pki;
pub mod rfc;
pub mod scripted;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use ringfront::sample_origin::{pattern_body, Mode, SampleOrigin};

/// Generous bound for anything a test waits on.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running `ringfront run` process.
pub struct Proxy {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The config file the proxy was started with (rewrite it to test reloads).
    pub config_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts the proxy with `config` (its `listen` should be "127.0.0.1:0").
    pub fn start(config: &str) -> Proxy {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(config, dir)
    }

    /// Starts the proxy with a config written into `dir` (for relative paths).
    pub fn start_in(config: &str, dir: tempfile::TempDir) -> Proxy {
        Self::start_in_env(config, dir, &[])
    }

    /// [`Proxy::start_in`] with extra environment variables.
    pub fn start_in_env(config: &str, dir: tempfile::TempDir, env: &[(&str, &std::path::Path)]) -> Proxy {
        let mut cmd = Command::new(Self::BIN);
        cmd.envs(env.iter().map(|(k, v)| (*k, *v)));
        Self::spawn(config, dir, cmd)
    }

    /// The `ringfront` binary under test.
    pub const BIN: &'static str = env!("CARGO_BIN_EXE_ringfront");

    /// Starts the proxy with `config` through `cmd`, a command that runs
    /// [`Proxy::BIN`] some other way, e.g. inside a network namespace
    /// (`Topology::command(ns, Proxy::BIN)`, which execs it: the child is
    /// the proxy, so signals reach it). `run --config FILE` is appended.
    pub fn start_with(config: &str, cmd: Command) -> Proxy {
        Self::spawn(config, tempfile::tempdir().expect("tempdir"), cmd)
    }

    fn spawn(config: &str, dir: tempfile::TempDir, mut cmd: Command) -> Proxy {
        let path = dir.path().join("ringfront.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = cmd
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringfront");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let addr = match rx.recv_timeout(WAIT) {
            Ok(a) => a.parse().expect("listen address"),
            Err(_) => {
                let _ = child.kill();
                panic!("proxy did not start; log: {:?}", log.lock().unwrap());
            }
        };
        Proxy {
            child,
            addr,
            log,
            config_path: path,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the proxy process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// A `/proc/PID/status` field in KiB (VmRSS, VmHWM).
    pub fn status_kib(&self, field: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The first `[server.tls]` listener's address (waits for its log line).
    pub fn tls_addr(&self) -> SocketAddr {
        self.logged_addr("listening on https://")
    }

    /// The admin listener's address (waits for its log line).
    pub fn admin_addr(&self) -> SocketAddr {
        self.logged_addr("admin listening on http://")
    }

    /// The address logged right after `marker` (waits for the line).
    fn logged_addr(&self, marker: &str) -> SocketAddr {
        let mut found = None;
        eventually(marker, || {
            found = self.log.lock().unwrap().iter().find_map(|l| {
                l.split(marker)
                    .nth(1)
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|a| a.parse().ok())
            });
            found.is_some()
        });
        found.expect("a logged address")
    }

    /// Sends SIGHUP (reload the config file).
    pub fn hup(&self) {
        // SAFETY: sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.pid() as i32, libc::SIGHUP) }, 0);
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.terminate_within(WAIT)
    }

    /// Sends SIGTERM and waits up to `within` for the exit status (panics,
    /// with the log, when the proxy is still running then).
    pub fn terminate_within(&mut self, within: Duration) -> std::process::ExitStatus {
        // SAFETY: sends a signal to our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t0 = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st;
            }
            if t0.elapsed() > within {
                let _ = self.child.kill();
                panic!(
                    "proxy did not exit within {within:?} of SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lowers the running proxy's RLIMIT_NOFILE (soft and hard) to `n`.
    pub fn limit_open_files(&self, n: u64) {
        let lim = libc::rlimit {
            rlim_cur: n,
            rlim_max: n,
        };
        // SAFETY: prlimit on our own child; `lim` is a valid rlimit, the old value is not wanted.
        let rc = unsafe { libc::prlimit(self.pid() as i32, libc::RLIMIT_NOFILE, &lim, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `[[origin_group]]` "site" over origins "primary" and "secondary".
pub const GROUP: &str = "\n[[origin_group]]\nid = \"site\"\nprimary = \"primary\"\nsecondary = \"secondary\"\n";

/// An address nothing listens on (bound, then let go): connects are refused.
pub fn refused_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Runs `ringfront check` on `text`, written beside `files` (name,
/// content); returns the exit code, stdout and stderr.
pub fn check_config(text: &str, files: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    check_file(&path)
}

/// Runs `ringfront check --config path`; returns the exit code (-1 for a
/// signal), stdout and stderr. Its address space is capped at 1 GiB and it
/// is killed after `WAIT`, so a check that reads a device or a huge file
/// fails the test instead of taking the machine's memory or hanging it.
pub fn check_file(path: &std::path::Path) -> (i32, String, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringfront"));
    cmd.args(["check", "--config"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn ringfront check");
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let t0 = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if t0.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ringfront check {} did not finish within {WAIT:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    (status.code().unwrap_or(-1), out, err)
}

/// `ringfront check` fails (exit 2) with exactly one error line, naming
/// `key`; returns that line.
pub fn one_error_with(text: &str, files: &[(&str, &str)], key: &str) -> String {
    let (code, out, err) = check_config(text, files);
    assert_eq!(code, 2, "stdout: {out}\nstderr: {err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    assert!(lines[0].contains(key), "{key} not named in: {err}");
    lines[0].to_string()
}

/// A minimal proxy config: one worker, origins given as `(id, addr)`, the
/// last behavior targeting `target` with caching off (these tests are about
/// forwarding; the cache tests turn it on). `extra` is appended verbatim.
pub fn config(origins: &[(&str, SocketAddr)], target: &str, extra: &str) -> String {
    let mut c = String::from("[server]\nlisten = \"127.0.0.1:0\"\nworkers = 1\npin_workers = false\n");
    for (id, addr) in origins {
        c.push_str(&format!(
            "\n[[origin]]\nid = \"{id}\"\naddress = \"{addr}\"\nconnection_attempts = 2\nconnection_timeout = \"5s\"\nresponse_timeout = \"20s\"\n"
        ));
    }
    c.push_str(extra);
    c.push_str(&format!(
        "\n[[behavior]]\npath = \"*\"\ntarget = \"{target}\"\ncache = false\nallowed_methods = [\"GET\", \"HEAD\", \"OPTIONS\", \"PUT\", \"POST\", \"PATCH\", \"DELETE\"]\n"
    ));
    c
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.1 client over one connection, plain or TLS.
pub struct Client {
    /// The TCP socket (for a TLS client, a second handle on it: use it for
    /// socket options and shutdown, not for reading or writing).
    pub s: TcpStream,
    tls: Option<Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>>,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            s,
            tls: None,
            buf: Vec::new(),
        }
    }

    /// A client over a socket the test opened itself.
    pub fn from_stream(s: TcpStream) -> Client {
        s.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            s,
            tls: None,
            buf: Vec::new(),
        }
    }

    /// A TLS client: the handshake with `name` as SNI (unless an IP
    /// address) is done before this returns.
    pub fn connect_tls(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, name: &str) -> Client {
        Client::try_connect_tls(addr, cfg, name).expect("TLS handshake")
    }

    /// [`Client::connect_tls`], with a failed handshake as an error.
    pub fn try_connect_tls(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, name: &str) -> std::io::Result<Client> {
        let mut c = Client::connect(addr);
        let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).expect("server name");
        let conn = rustls::ClientConnection::new(cfg, server_name).expect("client connection");
        let mut tls = rustls::StreamOwned::new(conn, c.s.try_clone().expect("clone socket"));
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        c.tls = Some(Box::new(tls));
        Ok(c)
    }

    /// The TLS session, for a TLS client.
    pub fn tls(&self) -> &rustls::ClientConnection {
        &self.tls.as_ref().expect("a TLS client").conn
    }

    pub fn send(&mut self, bytes: &[u8]) {
        match self.tls.as_mut() {
            Some(t) => t.write_all(bytes).and_then(|_| t.flush()).expect("send"),
            None => self.s.write_all(bytes).expect("send"),
        }
    }

    /// `GET path` with Host and keep-alive.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false).expect("response")
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut tmp = [0u8; 65536];
        let n = match self.tls.as_mut() {
            Some(t) => t.read(&mut tmp)?,
            None => self.s.read(&mut tmp)?,
        };
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// Reads one response; `head_request` means no body. `None` on EOF before a head.
    pub fn read_response(&mut self, head_request: bool) -> Option<Response> {
        loop {
            let mut hdrs = [httparse::EMPTY_HEADER; 128];
            let mut r = httparse::Response::new(&mut hdrs);
            match r.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    let status = r.code.unwrap();
                    let headers: Vec<(String, String)> = r
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
                        .collect();
                    self.buf.drain(..n);
                    if (100..200).contains(&status) {
                        continue;
                    }
                    let resp = Response {
                        status,
                        headers,
                        body: Vec::new(),
                    };
                    return Some(self.read_body(resp, head_request));
                }
                Ok(httparse::Status::Partial) => match self.fill() {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
                Err(e) => panic!("bad response head: {e:?}: {:?}", String::from_utf8_lossy(&self.buf)),
            }
        }
    }

    fn read_body(&mut self, mut resp: Response, head_request: bool) -> Response {
        if head_request || resp.status == 204 || resp.status == 304 {
            return resp;
        }
        if resp.header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut d = ringfront::http::chunked::ChunkedDecoder::new();
            loop {
                let mut data = Vec::new();
                let buf = std::mem::take(&mut self.buf);
                let used = d.feed(&buf, |r| data.extend_from_slice(&buf[r])).expect("chunked");
                resp.body.extend_from_slice(&data);
                self.buf = buf[used..].to_vec();
                if d.is_done() {
                    return resp;
                }
                if self.fill().unwrap_or(0) == 0 {
                    panic!("EOF inside chunked body");
                }
            }
        }
        if let Some(cl) = resp.header("content-length") {
            let n: usize = cl.trim().parse().expect("content-length");
            while self.buf.len() < n {
                if self.fill().unwrap_or(0) == 0 {
                    panic!("EOF after {} of {n} body bytes", self.buf.len());
                }
            }
            resp.body = self.buf.drain(..n).collect();
            return resp;
        }
        while self.fill().unwrap_or(0) > 0 {}
        resp.body = std::mem::take(&mut self.buf);
        resp
    }

    /// Reads until the server ends the connection; returns what arrived
    /// and whether a TLS client saw close_notify (a clean end) rather than
    /// a bare TCP close. (Plain clients: always true on EOF.)
    pub fn read_to_close(&mut self) -> (Vec<u8>, bool) {
        loop {
            match self.fill() {
                Ok(0) => return (std::mem::take(&mut self.buf), true),
                Ok(_) => {}
                Err(_) => return (std::mem::take(&mut self.buf), false),
            }
        }
    }

    /// True when the server closed the connection (EOF within the wait bound).
    pub fn closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        matches!(self.fill(), Ok(0) | Err(_))
    }
}

/// POSTs `body` to the admin listener's `path`; returns the answer's body.
pub fn admin_post(p: &Proxy, path: &str, body: &str) -> String {
    let mut s = TcpStream::connect(p.admin_addr()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// Every value of header `name` in a request head as an origin received
/// it (`head`, text), one per line, trimmed, in order.
pub fn request_values(head: &str, name: &str) -> Vec<String> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// `GET /metrics` from an admin listener: the Prometheus text.
pub fn scrape(admin: SocketAddr) -> String {
    let mut s = TcpStream::connect(admin).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("Content-Type: text/plain; version=0.0.4"), "{out}");
    out.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// Polls `cond` until true or `WAIT` passes.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        if t0.elapsed() > WAIT {
            panic!("timed out waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs curl with args; returns stdout.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A listener whose accept queue is full and never drained: connects to it
/// hang in SYN-SENT until they time out, like a blackholed host. Keep the
/// returned value alive for as long as the blackhole is needed.
pub struct Blackhole {
    pub addr: SocketAddr,
    _listener: socket2::Socket,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    pub fn new() -> Blackhole {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        s.listen(0).unwrap();
        let addr = s.local_addr().unwrap().as_socket().unwrap();
        let mut fillers = Vec::new();
        // Fill the queue until a connect no longer completes.
        for _ in 0..16 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(c) => fillers.push(c),
                Err(_) => break,
            }
        }
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err(),
            "blackhole still accepts connections"
        );
        Blackhole {
            addr,
            _listener: s,
            _fillers: fillers,
        }
    }
}

/// An origin that answers the first connection once with `response`
/// (whatever the request) and then closes: for responses the sample origin
/// cannot make (no length, odd hop-by-hop headers).
pub fn one_shot_origin(response: &'static [u8]) -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Some(Ok(mut s)) = l.incoming().next() {
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b);
            let _ = s.write_all(response);
        }
    });
    addr
}

/// Reads everything until the peer closes (or the wait bound passes).
pub fn read_until_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut b = [0u8; 65536];
    loop {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&b[..n]),
        }
    }
}
