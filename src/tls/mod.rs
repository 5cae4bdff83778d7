//! TLS on both sides: `[server.tls]` listeners and `protocol = "https"`
//! origins, with rustls (ring provider) run over monoio by adapters of our
//! own: [`server::ServerTls`] for viewers (rustls' unbuffered API, record
//! buffers held only while in use), [`client::ClientTls`] for origins.
//!
//! What is here:
//! - [`Stream`]: the one connection type the proxy, the pool and the sample
//!   origin read and write. `Plain` is a bare TCP stream (the fast path,
//!   unchanged); `Tls` wraps one in a TLS session.
//! - [`server_config`]: certificates loaded from PEM files, chosen per
//!   connection by SNI ([`ByName`]: exact names, then `*.` wildcards, else
//!   the first certificate); TLS 1.2 and 1.3; ALPN `http/1.1`; resumption
//!   by session id (TLS 1.2) and by stateless tickets (both versions).
//! - [`client_config`]: origin certificates verified against the system
//!   roots or a `ca_file`; ALPN `http/1.1`; a per-config session cache, so
//!   connections the pool opens later to the same origin resume.
//! - [`accept`] / [`connect`]: the handshakes, bounded by a deadline.
//! - [`Stream::has_buffered_input`]: whether a connection's TLS layer holds
//!   bytes nobody has read (SPEC §3.5: such an origin connection is never
//!   pooled); see `client.rs` for why the origin side has an adapter of its
//!   own.
//! - Parking ([`Stream::into_parked`], [`Stream::resume`], [`TlsSession`]):
//!   an idle TLS viewer parks like a plain one (`proxy::park`), keeping only
//!   its session state (no buffers: see `server.rs` and `buffers.rs`).
//!
//! Why the guard in [`Tls`]: both adapters move their record buffers into
//! the kernel operation while a read or write is in flight. When a future
//! is dropped mid-flight (a timeout), the buffer goes with it: the next
//! operation would go on without ciphertext the cancelled read may already
//! have taken off the socket, or after half a record was sent. Network
//! timing must never panic the proxy nor desynchronise a session, so a TLS
//! stream whose operation was dropped is marked broken and every later
//! operation fails with an error, which the callers already treat as "close
//! this connection". (Every caller does close after a timeout; the guard
//! makes that a guarantee, not a habit.) The idle wait before parking is
//! not such a drop: it cancels its read and awaits it
//! ([`Stream::idle_fill`]).
//!
//! Consequence, for viewers: a TLS connection whose head or body read times
//! out is closed without a 408 (as nginx closes a connection whose
//! `client_header_timeout` expires, without an answer).
//!
//! Locks: rustls keeps session caches and the ticket key behind its own
//! mutexes, shared by the workers. They are taken once or twice per
//! handshake, never per request on an established connection.

mod buffers;
mod client;
mod rent;
mod server;

use client::ClientTls;
use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, Canceller};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use server::ServerTls;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The ALPN protocol both sides offer and accept.
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// A viewer or origin connection: plain TCP, or TLS over TCP.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<Tls>),
}

/// A TLS session over TCP, with the drop guard described in the module doc.
pub struct Tls {
    side: Side,
    /// The TCP socket's descriptor (both adapters keep the stream private).
    fd: RawFd,
    /// An operation was started and never finished (its future was dropped).
    broken: bool,
}

/// Most bytes a TLS writev gathers: one record's worth of plaintext.
const GATHER_MAX: usize = 16 * 1024;

enum Side {
    /// A viewer connection (we are the server).
    Server(ServerTls),
    /// An origin connection (we are the client), boxed: rustls' client
    /// connection is over a KiB inline, a viewer's side under 100 bytes.
    Client(Box<ClientTls>),
}

fn broken_err() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "TLS stream abandoned mid-operation")
}

impl Stream {
    /// True when a connection's TLS layer holds input nobody has read:
    /// plaintext, part of a record, or close_notify (see
    /// [`ClientTls::has_buffered_input`]); also for a broken TLS stream,
    /// whose state is unknown. After a response's end this means bytes
    /// followed it, and an origin connection must not carry another
    /// request. False for plain TCP (the socket itself holds the input;
    /// peek it).
    pub fn has_buffered_input(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Tls(t) => match &t.side {
                _ if t.broken => true,
                Side::Client(c) => c.has_buffered_input(),
                Side::Server(s) => s.has_buffered_input(),
            },
        }
    }

    /// The socket's descriptor (for liveness peeks and socket options).
    pub fn raw_fd(&self) -> RawFd {
        match self {
            Stream::Plain(s) => s.as_raw_fd(),
            Stream::Tls(t) => t.fd,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Sends TLS close_notify (nothing for plain TCP), bounded by `within`.
    /// Best effort: the connection is being closed either way. False when
    /// it could not go out within `within` (the peer stopped reading).
    pub async fn close_notify(&mut self, within: std::time::Duration) -> bool {
        !self.is_tls() || monoio::time::timeout(within, self.shutdown()).await.is_ok()
    }

    // ---- parking (proxy::park) ----

    /// Whether an idle viewer connection may park: plain TCP, or a TLS
    /// viewer session that holds nothing but its state (no input unread,
    /// nothing unsent, not broken).
    pub fn parkable(&self) -> bool {
        match self {
            Stream::Plain(_) => true,
            Stream::Tls(t) => !t.broken && matches!(&t.side, Side::Server(s) if s.is_idle()),
        }
    }

    /// The socket and, for TLS, the session, apart, to park; `None` unless
    /// [`Stream::parkable`].
    pub fn into_parked(self) -> Option<(TcpStream, Option<TlsSession>)> {
        match self {
            Stream::Plain(tcp) => Some((tcp, None)),
            Stream::Tls(t) if t.broken => None,
            Stream::Tls(t) => match t.side {
                Side::Server(s) => s.park().ok().map(|(tcp, s)| (tcp, Some(TlsSession(s)))),
                Side::Client(_) => None,
            },
        }
    }

    /// A parked connection back on its socket.
    pub fn resume(tcp: TcpStream, tls: Option<TlsSession>) -> Stream {
        match tls {
            None => Stream::Plain(tcp),
            Some(TlsSession(s)) => {
                let fd = tcp.as_raw_fd();
                Stream::Tls(Tls::new(Side::Server(ServerTls::resume(tcp, s)), fd))
            }
        }
    }

    /// An idle TLS viewer's wait for its next request: ciphertext read
    /// within `patience` (`Some(Ok(true))`; `Some(Ok(false))` at EOF), or
    /// `None`, the read cancelled (not abandoned) and no buffer held. Plain
    /// streams and origin sessions answer `Some(Ok(true))` at once.
    pub async fn idle_fill(&mut self, patience: Duration, c: &mut Canceller) -> Option<io::Result<bool>> {
        let Stream::Tls(t) = self else { return Some(Ok(true)) };
        if t.broken {
            return Some(Err(broken_err()));
        }
        let Side::Server(s) = &mut t.side else {
            return Some(Ok(true));
        };
        t.broken = true;
        let r = s.idle_fill(patience, c).await;
        t.broken = false;
        r
    }
}

/// A TLS viewer session parked without its socket or task: rustls' state
/// and nothing else.
pub struct TlsSession(Box<server::Session>);

impl TlsSession {
    /// Sends close_notify on the parked socket `fd` without waiting (it is
    /// being closed: idle deadline or stop). Best effort.
    pub fn farewell(mut self, fd: RawFd) {
        self.0.farewell(fd);
    }
}

impl Tls {
    fn new(side: Side, fd: RawFd) -> Box<Tls> {
        Box::new(Tls {
            side,
            fd,
            broken: false,
        })
    }
}

/// Frees the TLS record buffers this worker has kept spare but nobody took
/// since the last call (called once a second by each worker).
pub fn trim_buffers() {
    buffers::trim();
}

/// Runs one operation on either side's stream under the drop guard:
/// `tls_op!(tls, (Err(broken_err()), buf), s => s.read(buf))`, where the
/// second argument is returned at once when the stream is already broken.
macro_rules! tls_op {
    ($t:expr, $if_broken:expr, $s:ident => $op:expr) => {{
        if $t.broken {
            return $if_broken;
        }
        $t.broken = true;
        let r = match &mut $t.side {
            Side::Server($s) => $op.await,
            Side::Client($s) => $op.await,
        };
        $t.broken = false;
        r
    }};
}

impl AsyncReadRent for Stream {
    async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(t) => tls_op!(t, (Err(broken_err()), buf), s => s.read(buf)),
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(s) => s.readv(buf).await,
            Stream::Tls(t) => tls_op!(t, (Err(broken_err()), buf), s => s.readv(buf)),
        }
    }
}

impl AsyncWriteRent for Stream {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        match self {
            Stream::Plain(s) => s.write(buf).await,
            Stream::Tls(t) => tls_op!(t, (Err(broken_err()), buf), s => s.write(buf)),
        }
    }

    /// Plain: one writev. TLS: the buffers are gathered, up to one
    /// record's worth ([`GATHER_MAX`]), into a buffer lent by the worker,
    /// and sent as one record in one send (a short write beyond that;
    /// callers finish the rest). Encryption copies the bytes anyway;
    /// gathering saves a record and a syscall per extra buffer (a cache
    /// hit's head and body).
    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        let t = match self {
            Stream::Plain(s) => return s.writev(buf).await,
            Stream::Tls(t) => t,
        };
        if t.broken {
            return (Err(broken_err()), buf);
        }
        let mut gather = buffers::take();
        let mut len = 0;
        // SAFETY: an IoVecBuf promises `read_iovec_len()` valid iovecs at
        // `read_iovec_ptr()`, each over initialised bytes, while it lives;
        // `buf` is held until this function returns.
        let iovs = unsafe { std::slice::from_raw_parts(buf.read_iovec_ptr(), buf.read_iovec_len()) };
        for iov in iovs {
            let room = GATHER_MAX.min(gather.len()) - len;
            if room == 0 {
                break;
            }
            let n = iov.iov_len.min(room);
            // SAFETY: as above; `n` is within this iovec.
            let part = unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, n) };
            if let Some(to) = gather.get_mut(len..len + n) {
                to.copy_from_slice(part);
                len += n;
            }
        }
        let (r, gathered) = tls_op!(t, (Err(broken_err()), buf), s => s.write(gather.slice(0..len)));
        buffers::give(gathered.into_inner());
        (r, buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush().await,
            Stream::Tls(t) => tls_op!(t, Err(broken_err()), s => s.flush()),
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(t) => {
                let r = tls_op!(t, Err(broken_err()), s => s.shutdown());
                // Nothing may follow close_notify.
                t.broken = true;
                r
            }
        }
    }
}

/// How a TLS handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// Not finished by the deadline.
    Timeout,
    /// The peer's certificate was not acceptable (untrusted, wrong name, expired).
    Certificate,
    /// Anything else: alerts, no common version or cipher, resets, EOF.
    Protocol,
}

/// An I/O error from a handshake, with or without a rustls error inside.
fn classify_io(e: &io::Error) -> HandshakeError {
    classify_rustls(e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()))
}

fn classify_rustls(e: Option<&rustls::Error>) -> HandshakeError {
    match e {
        Some(rustls::Error::InvalidCertificate(_)) | Some(rustls::Error::NoCertificatesPresented) => {
            HandshakeError::Certificate
        }
        _ => HandshakeError::Protocol,
    }
}

/// The viewer side of a handshake with `config`, finished by `deadline`.
pub async fn accept(tcp: TcpStream, config: &Arc<ServerConfig>, deadline: Instant) -> Result<Stream, HandshakeError> {
    let fd = tcp.as_raw_fd();
    let hs = ServerTls::handshake(tcp, config.clone());
    match monoio::time::timeout_at(deadline.into(), hs).await {
        Err(_) => Err(HandshakeError::Timeout),
        Ok(Err(e)) => Err(classify_io(&e)),
        Ok(Ok(s)) => Ok(Stream::Tls(Tls::new(Side::Server(s), fd))),
    }
}

/// The origin side of a handshake, finished by `deadline`.
pub async fn connect(tcp: TcpStream, origin: &OriginTls, deadline: Instant) -> Result<Stream, HandshakeError> {
    let fd = tcp.as_raw_fd();
    let hs = ClientTls::handshake(tcp, origin.config.clone(), origin.name.clone());
    match monoio::time::timeout_at(deadline.into(), hs).await {
        Err(_) => Err(HandshakeError::Timeout),
        Ok(Err(e)) => Err(classify_io(&e)),
        Ok(Ok(c)) => Ok(Stream::Tls(Tls::new(Side::Client(Box::new(c)), fd))),
    }
}

/// The crypto provider for both sides.
fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// One configured viewer certificate.
pub struct CertSource<'a> {
    pub names: &'a [String],
    pub cert: &'a Path,
    pub key: &'a Path,
}

/// A certificate that failed to load: which entry, which key (`cert` or
/// `key`), and why.
#[derive(Debug)]
pub struct CertError {
    pub index: usize,
    pub field: &'static str,
    pub message: String,
}

/// Loads a PEM certificate chain (leaf first).
pub fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = crate::config::read_file(path, crate::config::MAX_PEM_FILE)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate file: {e}", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no CERTIFICATE block", path.display()));
    }
    Ok(chain)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = crate::config::read_file(path, crate::config::MAX_PEM_FILE)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: no usable PEM private key: {e}", path.display()))
}

/// Builds the viewer-side TLS config from the `[server.tls]` certificates
/// (the first is the default).
pub fn server_config(certs: &[CertSource<'_>]) -> Result<Arc<ServerConfig>, CertError> {
    let p = provider();
    let mut by_name = ByName { certs: Vec::new() };
    for (index, c) in certs.iter().enumerate() {
        let err = |field, message| CertError { index, field, message };
        let chain = load_chain(c.cert).map_err(|m| err("cert", m))?;
        let key = load_key(c.key).map_err(|m| err("key", m))?;
        let ck = CertifiedKey::from_der(chain, key, &p).map_err(|e| {
            err(
                "key",
                format!("{}: does not match the certificate: {e}", c.key.display()),
            )
        })?;
        by_name
            .certs
            .push((c.names.iter().map(|n| n.to_ascii_lowercase()).collect(), Arc::new(ck)));
    }
    if by_name.certs.is_empty() {
        return Err(CertError {
            index: 0,
            field: "certificates",
            message: "at least one certificate is needed".into(),
        });
    }
    let mut cfg = ServerConfig::builder_with_provider(p)
        .with_safe_default_protocol_versions()
        .map_err(|e| CertError {
            index: 0,
            field: "certificates",
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(by_name));
    cfg.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    let (sessions, tickets) = server_resumption();
    cfg.session_storage = sessions;
    if let Some(t) = tickets {
        cfg.ticketer = t;
    }
    Ok(Arc::new(cfg))
}

/// Resumption state for viewers, one per process so that a config reload
/// (new certificates) keeps it: TLS 1.2 session ids in a bounded in-memory
/// cache, and stateless tickets (both versions), which any worker can
/// decrypt, whichever worker issued them. Both sit behind rustls' own locks,
/// taken once or twice per handshake, never per request.
fn server_resumption() -> (
    Arc<dyn rustls::server::StoresServerSessions>,
    Option<Arc<dyn rustls::server::ProducesTickets>>,
) {
    type Resumption = (
        Arc<dyn rustls::server::StoresServerSessions>,
        Option<Arc<dyn rustls::server::ProducesTickets>>,
    );
    static R: OnceLock<Resumption> = OnceLock::new();
    R.get_or_init(|| {
        (
            rustls::server::ServerSessionMemoryCache::new(16 * 1024),
            rustls::crypto::ring::Ticketer::new().ok(),
        )
    })
    .clone()
}

/// Chooses the certificate for a connection by its SNI name.
#[derive(Debug)]
pub struct ByName {
    /// (lowercase names, certificate), in config order.
    certs: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl ByName {
    /// Index of the certificate for `sni`: an exact name first, then a
    /// wildcard `*.rest` that covers exactly one more label, else 0.
    fn pick(&self, sni: Option<&str>) -> usize {
        let Some(host) = sni.map(|s| s.trim_end_matches('.').to_ascii_lowercase()) else {
            return 0;
        };
        if let Some(i) = self.certs.iter().position(|(names, _)| names.contains(&host)) {
            return i;
        }
        let parent = host.split_once('.').map(|(_, rest)| rest);
        self.certs
            .iter()
            .position(|(names, _)| {
                names
                    .iter()
                    .any(|n| n.strip_prefix("*.").is_some_and(|suffix| Some(suffix) == parent))
            })
            .unwrap_or(0)
    }
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certs.get(self.pick(hello.server_name())).map(|(_, c)| c.clone())
    }
}

/// What an https origin's connections need: the config (with its session
/// cache) and the name to send and verify.
#[derive(Clone)]
pub struct OriginTls {
    pub config: Arc<ClientConfig>,
    pub name: ServerName<'static>,
    /// The CA bundle the connector trusts (None: the system roots).
    pub ca_file: Option<std::path::PathBuf>,
}

impl OriginTls {
    /// Whether connections made with `self` are as good as ones made with
    /// `other`: the same name, verified against the same roots.
    pub fn same_trust(&self, other: &OriginTls) -> bool {
        self.name == other.name && self.ca_file == other.ca_file
    }
}

impl std::fmt::Debug for OriginTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginTls")
            .field("name", &self.name)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The system's root certificates, loaded once.
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err("no system root certificates found (install ca-certificates, or set ca_file)".into());
            }
            Ok(Arc::new(store))
        })
        .clone()
}

/// Builds the origin-side TLS config: roots from `ca_file` (a PEM bundle)
/// or the system's.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let roots = match ca_file {
        None => system_roots()?,
        Some(path) => {
            let mut store = RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(load_chain(path)?);
            if added == 0 {
                return Err(format!("{}: no usable CA certificate", path.display()));
            }
            Arc::new(store)
        }
    };
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    // Sessions are kept per origin config and shared by every worker's pool:
    // a connection opened later resumes instead of a full handshake.
    cfg.resumption = rustls::client::Resumption::in_memory_sessions(1024);
    Ok(Arc::new(cfg))
}

/// The TLS server name for `host` (a DNS name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_string()).map_err(|_| format!("{host:?} is not a valid TLS server name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_name(sets: &[&[&str]]) -> ByName {
        let kp = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.test".to_string()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        let key = PrivateKeyDer::try_from(kp.serialize_der()).unwrap();
        let ck = Arc::new(CertifiedKey::from_der(vec![cert.der().clone()], key, &provider()).unwrap());
        ByName {
            certs: sets
                .iter()
                .map(|names| (names.iter().map(|s| s.to_string()).collect(), ck.clone()))
                .collect(),
        }
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_default() {
        let b = by_name(&[&["default.test"], &["*.example.com"], &["a.example.com", "example.com"]]);
        assert_eq!(b.pick(None), 0);
        assert_eq!(b.pick(Some("unknown.test")), 0);
        assert_eq!(b.pick(Some("default.test")), 0);
        // The exact name wins over an earlier wildcard.
        assert_eq!(b.pick(Some("a.example.com")), 2);
        assert_eq!(b.pick(Some("A.Example.COM.")), 2);
        assert_eq!(b.pick(Some("example.com")), 2);
        // A wildcard covers one label, no more and no less.
        assert_eq!(b.pick(Some("b.example.com")), 1);
        assert_eq!(b.pick(Some("x.b.example.com")), 0);
    }

    #[test]
    fn bad_files_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        std::fs::write(&cert, "not pem").unwrap();
        std::fs::write(&key, "not pem").unwrap();
        let names = vec!["a.test".to_string()];
        let e = server_config(&[CertSource {
            names: &names,
            cert: &cert,
            key: &key,
        }])
        .unwrap_err();
        assert_eq!((e.index, e.field), (0, "cert"));

        let kp = rcgen::KeyPair::generate().unwrap();
        let c = rcgen::CertificateParams::new(names.clone())
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        std::fs::write(&cert, c.pem()).unwrap();
        let e = server_config(&[CertSource {
            names: &names,
            cert: &cert,
            key: &key,
        }])
        .unwrap_err();
        assert_eq!(e.field, "key");
        // A key that is not the certificate's.
        std::fs::write(&key, rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
        let e = server_config(&[CertSource {
            names: &names,
            cert: &cert,
            key: &key,
        }])
        .unwrap_err();
        assert_eq!(e.field, "key");
        assert!(e.message.contains("does not match"), "{}", e.message);
        std::fs::write(&key, kp.serialize_pem()).unwrap();
        assert!(server_config(&[CertSource {
            names: &names,
            cert: &cert,
            key: &key,
        }])
        .is_ok());
    }

    /// A TLS pair over loopback: (server side, client side).
    async fn pair() -> (Stream, Stream) {
        pair_with(rustls::DEFAULT_VERSIONS).await
    }

    /// [`pair`] with the client offering only `versions`.
    async fn pair_with(versions: &[&'static rustls::SupportedProtocolVersion]) -> (Stream, Stream) {
        let (server, origin) = configs(versions);
        connect_pair(&server, &origin).await
    }

    /// A server config for `pair.test` and a client config that trusts
    /// it, offering `versions`.
    fn configs(versions: &[&'static rustls::SupportedProtocolVersion]) -> (Arc<ServerConfig>, OriginTls) {
        let kp = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["pair.test".to_string()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, kp.serialize_pem()).unwrap();
        let names = vec!["pair.test".to_string()];
        let server = server_config(&[CertSource {
            names: &names,
            cert: &c,
            key: &k,
        }])
        .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        let origin = OriginTls {
            config: Arc::new(config),
            name: server_name("pair.test").unwrap(),
            ca_file: Some(c.clone()),
        };
        (server, origin)
    }

    /// One connection between the two sides: (server side, client side).
    async fn connect_pair(server: &Arc<ServerConfig>, origin: &OriginTls) -> (Stream, Stream) {
        let l = monoio::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        let server = server.clone();
        let accepting = monoio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            accept(tcp, &server, deadline).await
        });
        let tcp = TcpStream::connect_addr(addr).await.unwrap();
        let client = connect(tcp, origin, deadline).await.unwrap();
        (accepting.await.unwrap(), client)
    }

    /// Abandons a read on `s` at a timeout (nothing to read), then checks
    /// that `s` is broken: it counts as holding input (never pooled), later
    /// reads and writes fail, close_notify is a no-op, and `peer` sees the
    /// connection end when `s` is dropped.
    async fn abandon_a_read(mut s: Stream, peer: &mut Stream) {
        let read = crate::net::read_more(&mut s, Vec::new(), 64, 64);
        assert!(monoio::time::timeout(std::time::Duration::from_millis(20), read)
            .await
            .is_err());
        if let Stream::Tls(t) = &s {
            if matches!(t.side, Side::Client(_)) {
                assert!(s.has_buffered_input());
            }
        }
        let (r, _) = crate::net::read_more(&mut s, Vec::new(), 64, 64).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        let (r, _) = crate::net::write_all(&mut s, b"x".to_vec()).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        s.close_notify(std::time::Duration::from_secs(1)).await;
        drop(s);
        let read = crate::net::read_more(peer, Vec::new(), 64, 64);
        let ended = monoio::time::timeout(std::time::Duration::from_secs(30), read).await;
        assert!(matches!(ended, Ok((Ok(0) | Err(_), _))), "the peer sees the end");
    }

    /// A read abandoned by a timeout leaves the TLS stream failing with an
    /// error (not panicking), and the data path works
    /// before that.
    #[test]
    fn abandoned_tls_operation_breaks_the_stream_without_panic() {
        let driver = crate::runtime::choose_driver(crate::config::IoDriver::Auto).unwrap();
        crate::runtime::block_on(&driver, || async {
            let (mut server, mut client) = pair().await;
            let (r, _) = crate::net::write_all(&mut client, b"ping".to_vec()).await;
            r.unwrap();
            let (r, got) = crate::net::read_more(&mut server, Vec::new(), 64, 64).await;
            assert_eq!((r.unwrap(), &got[..]), (4, &b"ping"[..]));
            abandon_a_read(server, &mut client).await;
        })
        .unwrap();
    }

    /// The origin side reports plaintext it holds beyond what was read (two
    /// records arrived together, one was asked for), and nothing once all
    /// of it is read.
    #[test]
    fn origin_side_reports_input_beyond_what_was_read() {
        let driver = crate::runtime::choose_driver(crate::config::IoDriver::Auto).unwrap();
        crate::runtime::block_on(&driver, || async {
            let (mut server, mut client) = pair().await;
            assert!(!client.has_buffered_input());
            // Two writes: two records, both on the wire before the read.
            for part in [b"hello".to_vec(), b"world".to_vec()] {
                let (r, _) = crate::net::write_all(&mut server, part).await;
                r.unwrap();
            }
            monoio::time::sleep(std::time::Duration::from_millis(50)).await;
            let (r, got) = crate::net::read_more(&mut client, Vec::new(), 5, 5).await;
            assert_eq!((r.unwrap(), &got[..]), (5, &b"hello"[..]));
            assert!(client.has_buffered_input(), "the second record was taken in");
            let (r, got) = crate::net::read_more(&mut client, Vec::new(), 5, 5).await;
            assert_eq!((r.unwrap(), &got[..]), (5, &b"world"[..]));
            assert!(!client.has_buffered_input());
            // close_notify: input (the end), and reads say EOF.
            server.close_notify(std::time::Duration::from_secs(5)).await;
            let (r, _) = crate::net::read_more(&mut client, Vec::new(), 64, 64).await;
            assert_eq!(r.unwrap(), 0);
            assert!(client.has_buffered_input());
        })
        .unwrap();
    }

    /// A read abandoned by a timeout on the origin side breaks the stream
    /// too: later operations fail, and it counts as holding input (never
    /// pooled).
    #[test]
    fn abandoned_origin_side_read_breaks_the_stream() {
        let driver = crate::runtime::choose_driver(crate::config::IoDriver::Auto).unwrap();
        crate::runtime::block_on(&driver, || async {
            let (mut server, client) = pair().await;
            abandon_a_read(client, &mut server).await;
        })
        .unwrap();
    }

    /// Many records queued at once, read 64 KiB at a time: the origin side
    /// feeds rustls all it will take (it refuses ciphertext while holding
    /// over 16 KiB of plaintext, which 6,000-byte records reach within one
    /// socket read; the rest waits in the adapter), and every byte arrives,
    /// in order.
    #[test]
    fn origin_side_reads_a_burst_of_records_whole() {
        let driver = crate::runtime::choose_driver(crate::config::IoDriver::Auto).unwrap();
        crate::runtime::block_on(&driver, || async {
            let (mut server, mut client) = pair().await;
            let body: Vec<u8> = (0..120_000u32).map(|i| (i % 251) as u8).collect();
            for part in body.chunks(6000) {
                let (r, _) = crate::net::write_all(&mut server, part.to_vec()).await;
                r.unwrap();
            }
            monoio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut got = Vec::new();
            while got.len() < body.len() {
                let (r, b) = crate::net::read_more(&mut client, got, 64 * 1024, 1 << 20).await;
                assert!(r.unwrap() > 0);
                got = b;
            }
            assert!(got == body, "the bytes arrive whole and in order");
            assert!(!client.has_buffered_input());
        })
        .unwrap();
    }

    /// Writes `body` on `from` while reading it on `to` in pieces of
    /// changing sizes; checks it arrives whole.
    async fn carry(from: &mut Stream, to: &mut Stream, body: &[u8]) {
        let write = crate::net::write_all(from, body.to_vec());
        let read = async {
            let mut got = Vec::new();
            let mut piece = 7;
            while got.len() < body.len() {
                let (r, b) = crate::net::read_more(to, got, piece, 1 << 20).await;
                assert!(r.unwrap() > 0);
                got = b;
                piece = piece * 3 % 40_000 + 1;
            }
            got
        };
        let ((r, _), got) = monoio::join!(write, read);
        r.unwrap();
        assert!(got == body, "the bytes arrive whole and in order");
    }

    /// The viewer side on TLS 1.2 and 1.3, full and resumed handshakes: a
    /// request and a response of many records each way, read in small and
    /// large pieces, then the client's close_notify; between exchanges the
    /// session holds nothing but its state.
    #[test]
    fn viewer_side_carries_records_both_ways_and_closes_cleanly() {
        let driver = crate::runtime::choose_driver(crate::config::IoDriver::Auto).unwrap();
        for versions in [&[&rustls::version::TLS12], &[&rustls::version::TLS13]] {
            crate::runtime::block_on(&driver, || async {
                let (server_config, origin) = configs(versions);
                for _ in 0..2 {
                    let (mut server, mut client) = connect_pair(&server_config, &origin).await;
                    assert!(server.parkable(), "idle after the handshake");
                    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
                    carry(&mut client, &mut server, &body).await;
                    carry(&mut server, &mut client, &body).await;
                    assert!(server.parkable(), "idle after the exchange");
                    client.close_notify(std::time::Duration::from_secs(5)).await;
                    let (r, _) = crate::net::read_more(&mut server, Vec::new(), 64, 64).await;
                    assert_eq!(r.unwrap(), 0, "the server sees close_notify");
                    assert!(server.has_buffered_input() && !server.parkable(), "the end is input");
                }
            })
            .unwrap();
        }
    }

    /// A TLS record header followed by `body`.
    fn record(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut r = vec![typ, 3, 1, (body.len() >> 8) as u8, body.len() as u8];
        r.extend_from_slice(body);
        r
    }

    /// Hostile bytes on a viewer handshake end it with an error, never a
    /// panic, and never by holding more than the bounds: plain HTTP, random
    /// bytes, an oversized record, a ClientHello claiming more than rustls
    /// takes, and one of 40,000 bytes of garbage over three records (the
    /// input buffer grows past one record to assemble it, then rustls
    /// rejects it).
    #[test]
    fn hostile_bytes_end_a_viewer_handshake_with_an_error() {
        let mut hello = vec![1, 0, 0x9c, 0x40]; // ClientHello, 40,000 bytes
        hello.resize(4 + 40_000, 0x41);
        let mut three_records = Vec::new();
        for part in hello.chunks(16_384) {
            three_records.extend(record(22, part));
        }
        let mut huge = vec![1, 0x01, 0x11, 0x70]; // 70,000 bytes claimed
        huge.resize(16_000, 0x42);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("plain HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            (
                "random bytes",
                (0..5000u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                    .collect(),
            ),
            ("an oversized record", record(22, &vec![0u8; 20_000])),
            ("a ClientHello over 64 KiB", record(22, &huge)),
            ("40,000 bytes of garbage ClientHello", three_records),
        ];
        let (server, _) = configs(rustls::DEFAULT_VERSIONS);
        let driver = crate::runtime::choose_driver(crate::config::IoDriver::Auto).unwrap();
        for (what, bytes) in cases {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let client = std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
                let _ = s.write_all(&bytes);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            });
            let server = server.clone();
            crate::runtime::block_on(&driver, || async move {
                let l = monoio::net::TcpListener::from_std(l).unwrap();
                let (tcp, _) = l.accept().await.unwrap();
                let deadline = Instant::now() + std::time::Duration::from_secs(30);
                let r = accept(tcp, &server, deadline).await;
                assert_eq!(r.err(), Some(HandshakeError::Protocol), "{what}");
            })
            .unwrap();
            // (After the runtime, which closes the socket, so the client
            // sees the end.)
            client.join().unwrap();
        }
    }
}
