//! TLS over real sockets: HTTPS viewers (certificate chosen by SNI, ALPN,
//! TLS 1.2 and 1.3, resumption, bounded handshakes), https origins
//! (verification against `ca_file`, SNI, sessions resumed across pooled
//! connections), and a failed origin handshake making the primary fail over.
mod common;
use common::pki::{Leaf, Pki};
use common::*;
use rustls::server::StoresServerSessions;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An origin's TLS session store that counts resumptions (a stored
/// session found again).
#[derive(Debug)]
struct CountingStore {
    inner: Arc<dyn StoresServerSessions>,
    resumed: Arc<AtomicUsize>,
}

impl StoresServerSessions for CountingStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.inner.put(key, value)
    }
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let v = self.inner.get(key);
        if v.is_some() {
            self.resumed.fetch_add(1, Ordering::SeqCst);
        }
        v
    }
    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let v = self.inner.take(key);
        if v.is_some() {
            self.resumed.fetch_add(1, Ordering::SeqCst);
        }
        v
    }
    fn can_cache(&self) -> bool {
        self.inner.can_cache()
    }
}

/// An HTTPS sample origin presenting `leaf`; the counter counts resumed
/// handshakes.
fn https_origin(name: &str, leaf: &Leaf) -> (SampleOrigin, Arc<AtomicUsize>) {
    let resumed = Arc::new(AtomicUsize::new(0));
    let mut cfg = leaf.server_config();
    cfg.session_storage = Arc::new(CountingStore {
        inner: rustls::server::ServerSessionMemoryCache::new(256),
        resumed: resumed.clone(),
    });
    let o = SampleOrigin::start_tls("127.0.0.1:0", name, 1, Arc::new(cfg)).unwrap();
    (o, resumed)
}

/// Makes origin `id` of a [`config`] text an https origin trusting
/// `ca.pem` and verifying the name `localhost`.
fn https(cfg: String, id: &str) -> String {
    cfg.replace(
        &format!("id = \"{id}\"\n"),
        &format!("id = \"{id}\"\nprotocol = \"https\"\nca_file = \"ca.pem\"\nsni = \"localhost\"\n"),
    )
}

/// A `[server.tls]` section with certificates written into `dir`:
/// `certs[i]` = (names, leaf).
fn tls_section(dir: &std::path::Path, certs: &[(&[&str], &Leaf)]) -> String {
    let mut s = String::from("\n[server.tls]\nlisten = \"127.0.0.1:0\"\ncertificates = [\n");
    for (i, (names, leaf)) in certs.iter().enumerate() {
        let (c, k) = leaf.write(dir, &format!("viewer{i}"));
        let names: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        s.push_str(&format!(
            "  {{ names = [{}], cert = \"{c}\", key = \"{k}\" }},\n",
            names.join(", ")
        ));
    }
    s.push_str("]\n");
    s
}

/// A proxy with a plain sample origin behind it and an HTTPS listener
/// presenting `certs`; `server_extra` is added to `[server]`.
struct HttpsProxy {
    proxy: Proxy,
    /// The HTTPS listener.
    addr: SocketAddr,
    _origin: SampleOrigin,
}

fn https_proxy(certs: &[(&[&str], &Leaf)], server_extra: &str) -> HttpsProxy {
    let origin = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&[("primary", origin.addr())], "primary", "")
        .replace("[server]\n", &format!("[server]\n{server_extra}"))
        + &tls_section(dir.path(), certs);
    let proxy = Proxy::start_in(&cfg, dir);
    let addr = proxy.tls_addr();
    HttpsProxy {
        proxy,
        addr,
        _origin: origin,
    }
}

fn curl_https(dir: &std::path::Path, host: &str, addr: SocketAddr, path: &str, body_to: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D", "-", "-w", "version=%{http_version}\n"])
        .arg("--cacert")
        .arg(dir.join("ca.pem"))
        .arg("--resolve")
        .arg(format!("{host}:{}:127.0.0.1", addr.port()))
        .arg("-o")
        .arg(dir.join(body_to))
        .arg(format!("https://{host}:{}{path}", addr.port()))
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
}

#[test]
fn https_viewer_to_https_origin_end_to_end() {
    let pki = Pki::new("ringfront test CA");
    let dir = tempfile::tempdir().unwrap();
    pki.write_ca(dir.path());
    let (origin, _) = https_origin("primary", &pki.leaf(&["localhost"]));
    let viewer = pki.leaf(&["www.example.test"]);
    let cfg = https(config(&[("primary", origin.addr())], "primary", ""), "primary")
        .replace("cache = false", "cache = true")
        + &tls_section(dir.path(), &[(&["www.example.test"], &viewer)]);
    let path = dir.path().to_path_buf();
    let proxy = Proxy::start_in(&cfg, dir);
    let addr = proxy.tls_addr();

    // curl offers h2 and http/1.1 by ALPN; HTTP/1.1 is what it gets.
    let big = 100_000;
    let head = curl_https(
        &path,
        "www.example.test",
        addr,
        &format!("/e2e?size={big}&cc=max-age=60"),
        "b1",
    );
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("x-origin: primary"), "{head}");
    assert!(head.contains("x-cache: miss from ringfront"), "{head}");
    assert!(head.contains("version=1.1"), "{head}");
    assert_eq!(std::fs::read(path.join("b1")).unwrap(), pattern_body(big));
    // The same object again: a hit, written from the cache over TLS.
    let head = curl_https(
        &path,
        "www.example.test",
        addr,
        &format!("/e2e?size={big}&cc=max-age=60"),
        "b2",
    );
    assert!(head.contains("x-cache: hit from ringfront"), "{head}");
    assert_eq!(std::fs::read(path.join("b2")).unwrap(), pattern_body(big));
    assert_eq!(origin.requests(), 1);

    // Keep-alive on both sides: three uncached requests on one viewer TLS
    // connection travel on one pooled origin TLS connection.
    let conns = origin.connections();
    let mut c = Client::connect_tls(addr, pki.client_config(&["http/1.1"]), "www.example.test");
    for i in 0..3 {
        let r = c.get(&format!("/ka{i}?size=3000&cc=no-store"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, pattern_body(3000));
        assert_eq!(r.header("x-origin"), Some("primary"));
    }
    assert_eq!(origin.connections(), conns, "the pooled TLS connection was reused");
    // A request body over TLS reaches the origin intact.
    let body = pattern_body(70_000);
    let mut req = format!(
        "POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req);
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-received-bytes"), Some("70000"));
}

#[test]
fn bad_origin_certificate_makes_the_primary_fail_over() {
    let pki = Pki::new("ringfront test CA");
    let stranger = Pki::new("someone else's CA");
    let (secondary, _) = https_origin("secondary", &pki.leaf(&["localhost"]));
    let plain = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let untrusted = https_origin("primary", &stranger.leaf(&["localhost"]));
    let wrong_name = https_origin("primary", &pki.leaf(&["other.test"]));
    let cases = [
        ("an untrusted CA", untrusted.0.addr(), "tls_certificate_error"),
        (
            "a certificate for another name",
            wrong_name.0.addr(),
            "tls_certificate_error",
        ),
        ("plain HTTP where TLS was expected", plain.addr(), "tls_protocol_error"),
    ];
    for (what, primary, error) in cases {
        let dir = tempfile::tempdir().unwrap();
        pki.write_ca(dir.path());
        let cfg = config(&[("primary", primary), ("secondary", secondary.addr())], "site", GROUP);
        let cfg = https(https(cfg, "primary"), "secondary");
        let proxy = Proxy::start_in(&cfg, dir);
        let r = proxy.client().get("/x?size=10");
        assert_eq!(r.status, 200, "{what}");
        assert_eq!(r.header("x-origin"), Some("secondary"), "{what}");
        let ps = r.header("proxy-status").unwrap_or_default();
        // Both connection attempts to the primary failed the handshake.
        assert_eq!(
            ps.matches(&format!("error={error}; next-hop=\"primary\"")).count(),
            2,
            "{what}: {ps}"
        );
    }
    // The primaries never saw an HTTP request.
    assert_eq!(untrusted.0.requests() + wrong_name.0.requests(), 0);
    assert_eq!(secondary.requests(), 3);
}

#[test]
fn sni_picks_the_certificate_and_the_first_is_the_default() {
    let pki = Pki::new("ringfront test CA");
    let default = pki.leaf(&["default.test", "127.0.0.1"]);
    let wild = pki.leaf(&["*.example.test"]);
    let exact = pki.leaf(&["a.example.test"]);
    let certs: [(&[&str], &Leaf); 3] = [
        (&["default.test"], &default),
        (&["*.example.test"], &wild),
        (&["a.example.test"], &exact),
    ];
    let p = https_proxy(&certs, "");
    let addr = p.addr;
    let client = pki.client_config(&["h2", "http/1.1"]);
    for (name, want) in [
        ("127.0.0.1", &default), // an IP address: no SNI, the default
        ("default.test", &default),
        ("b.example.test", &wild),
        ("a.example.test", &exact), // an exact name beats an earlier wildcard
    ] {
        let mut c = Client::connect_tls(addr, client.clone(), name);
        let presented = c.tls().peer_certificates().and_then(|p| p.first().cloned());
        assert_eq!(presented.as_ref(), Some(&want.cert_der), "certificate for {name}");
        assert_eq!(c.tls().alpn_protocol(), Some(&b"http/1.1"[..]), "ALPN for {name}");
        assert_eq!(c.get("/x").status, 200, "request over {name}");
    }
}

#[test]
fn viewer_sessions_resume_on_tls12_and_tls13() {
    let pki = Pki::new("ringfront test CA");
    let leaf = pki.leaf(&["www.example.test"]);
    let p = https_proxy(&[(&["www.example.test"], &leaf)], "");
    let addr = p.addr;
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let client = pki.client_config_versions(&["http/1.1"], &[version]);
        let mut first = Client::connect_tls(addr, client.clone(), "www.example.test");
        assert_eq!(first.tls().protocol_version(), Some(version.version));
        assert_eq!(first.tls().handshake_kind(), Some(rustls::HandshakeKind::Full));
        // (A TLS 1.3 ticket arrives after the handshake, before this answer.)
        assert_eq!(first.get("/x").status, 200);
        drop(first);
        let mut again = Client::connect_tls(addr, client, "www.example.test");
        assert_eq!(
            again.tls().handshake_kind(),
            Some(rustls::HandshakeKind::Resumed),
            "{:?}",
            version.version
        );
        assert_eq!(again.get("/x").status, 200);
    }
}

#[test]
fn origin_tls_sessions_resume_across_pooled_connections() {
    let pki = Pki::new("ringfront test CA");
    let dir = tempfile::tempdir().unwrap();
    pki.write_ca(dir.path());
    let (origin, resumed) = https_origin("primary", &pki.leaf(&["localhost"]));
    let cfg = https(config(&[("primary", origin.addr())], "primary", ""), "primary");
    let proxy = Proxy::start_in(&cfg, dir);
    let mut c = proxy.client();
    // `close=1`: the origin closes after each answer, so each request
    // needs a new origin connection; all but the first resume.
    for _ in 0..4 {
        let r = c.get("/x?close=1");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-origin"), Some("primary"));
    }
    assert_eq!(origin.connections(), 4);
    assert_eq!(resumed.load(Ordering::SeqCst), 3);
}

#[test]
fn tls_handshakes_are_bounded_and_garbage_is_closed() {
    let pki = Pki::new("ringfront test CA");
    let leaf = pki.leaf(&["www.example.test"]);
    let p = https_proxy(&[(&["www.example.test"], &leaf)], "client_header_timeout = \"500ms\"\n");
    let addr = p.addr;
    // Silent: closed once the header timeout passes.
    let t0 = Instant::now();
    let mut silent = Client::connect(addr);
    assert!(silent.closed());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // A handshake, then half a head: closed at the same deadline (over TLS
    // without a 408: the session cannot go on after its read was abandoned).
    let t0 = Instant::now();
    let mut slow = Client::connect_tls(addr, pki.client_config(&["http/1.1"]), "www.example.test");
    slow.send(b"GET /x HTTP/1.1\r\n");
    let (got, _) = slow.read_to_close();
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // Plain HTTP on the TLS port: an alert at most, then the close.
    let mut plain = Client::connect(addr);
    plain.send(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n");
    let (got, _) = plain.read_to_close();
    assert!(!got.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&got));
    // A client that offers only h2 gets no connection either (no common
    // ALPN protocol), and the listener still serves a good client after.
    let h2_only = pki.client_config(&["h2"]);
    assert!(
        Client::try_connect_tls(addr, h2_only, "www.example.test").is_err(),
        "a handshake without http/1.1 must fail"
    );
    let mut good = Client::connect_tls(addr, pki.client_config(&["http/1.1"]), "www.example.test");
    assert_eq!(good.get("/x").status, 200);
}

#[test]
fn tls_config_errors_name_the_key() {
    let pki = Pki::new("ringfront test CA");
    let leaf = pki.leaf(&["www.example.test"]);
    let other = pki.leaf(&["www.example.test"]);
    let ca = pki.ca_pem();
    let base = "[server]\nlisten = \"127.0.0.1:8080\"\n\n[[origin]]\nid = \"o\"\naddress = \"127.0.0.1:9001\"\nORIGIN\n[[behavior]]\npath = \"*\"\ntarget = \"o\"\n";
    let viewer = |cert: &str, key: &str| {
        base.replace("ORIGIN", "")
            + &format!(
                "\n[server.tls]\nlisten = \"127.0.0.1:8443\"\ncertificates = [ {{ names = [\"www.example.test\"], cert = \"{cert}\", key = \"{key}\" }} ]\n"
            )
    };
    let files = [
        ("c.pem", leaf.cert_pem.as_str()),
        ("k.pem", leaf.key_pem.as_str()),
        ("other.key", other.key_pem.as_str()),
        ("ca.pem", ca.as_str()),
        ("junk.pem", "not a certificate"),
    ];
    let (code, _, err) = check_config(&viewer("c.pem", "k.pem"), &files);
    assert_eq!(code, 0, "{err}");
    for (cfg, key, says) in [
        (
            viewer("missing.pem", "k.pem"),
            "server.tls.certificates[0].cert",
            "not found",
        ),
        (
            viewer("junk.pem", "k.pem"),
            "server.tls.certificates[0].cert",
            "CERTIFICATE",
        ),
        (
            viewer("c.pem", "other.key"),
            "server.tls.certificates[0].key",
            "does not match",
        ),
        (
            base.replace("ORIGIN", "protocol = \"https\"\nca_file = \"junk.pem\"\n"),
            "origin[0].ca_file",
            "",
        ),
        (
            base.replace(
                "ORIGIN",
                "protocol = \"https\"\nca_file = \"ca.pem\"\nsni = \"bad name!\"\n",
            ),
            "origin[0].sni",
            "server name",
        ),
        (
            base.replace("ORIGIN", "ca_file = \"ca.pem\"\n"),
            "origin[0].ca_file",
            "https",
        ),
    ] {
        let line = one_error_with(&cfg, &files, key);
        assert!(line.contains(says), "{key} / {says}: {line}");
    }
    // A good https origin passes, and the summary names its TLS name.
    let (code, _, err) = check_config(
        &base.replace("ORIGIN", "protocol = \"https\"\nca_file = \"ca.pem\"\n"),
        &files,
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn sighup_reloads_certificates_for_new_connections() {
    let pki = Pki::new("ringfront test CA");
    let old = pki.leaf(&["www.example.test"]);
    let p = https_proxy(&[(&["www.example.test"], &old)], "");
    let (addr, proxy) = (p.addr, &p.proxy);
    let client = pki.client_config(&["http/1.1"]);
    let mut open = Client::connect_tls(addr, client.clone(), "www.example.test");
    assert_eq!(open.get("/x").status, 200);

    let new = pki.leaf(&["www.example.test"]);
    // Over the files the config names (they sit beside it).
    new.write(p.proxy.config_path.parent().expect("the config's folder"), "viewer0");
    proxy.hup();
    eventually("new connections get the new certificate", || {
        let c = Client::connect_tls(addr, client.clone(), "www.example.test");
        c.tls().peer_certificates().and_then(|p| p.first().cloned()).as_ref() == Some(&new.cert_der)
    });
    // The connection opened before the reload carries on.
    assert_eq!(open.get("/x").status, 200);
    assert!(
        !proxy.log_text().contains("server.tls.listen changed"),
        "{}",
        proxy.log_text()
    );
}

#[test]
fn a_cut_short_response_ends_without_close_notify() {
    let pki = Pki::new("ringfront test CA");
    let leaf = pki.leaf(&["www.example.test"]);
    let p = https_proxy(&[(&["www.example.test"], &leaf)], "");
    let addr = p.addr;
    let client = pki.client_config(&["http/1.1"]);
    // HTTP/1.0: the (de-chunked) body is delimited by the close, so the
    // close_notify is the viewer's only sign that the body is whole.
    let mut whole = Client::connect_tls(addr, client.clone(), "www.example.test");
    whole.send(b"GET /x?size=200000&chunked=1 HTTP/1.0\r\nHost: t\r\n\r\n");
    let (got, clean) = whole.read_to_close();
    assert!(got.ends_with(&pattern_body(200_000)[190_000..]));
    assert!(clean, "a complete response ends with close_notify");

    let mut cut = Client::connect_tls(addr, client, "www.example.test");
    cut.send(b"GET /x?size=200000&chunked=1&fail=close_mid_body HTTP/1.0\r\nHost: t\r\n\r\n");
    let (got, clean) = cut.read_to_close();
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got[..got.len().min(200)])
    );
    assert!(got.len() < 200_000);
    assert!(!clean, "a cut-short response must not end with close_notify");
}

#[test]
fn an_https_origin_without_ca_file_is_verified_against_the_system_roots() {
    // rustls-native-certs reads the system store from SSL_CERT_FILE when
    // set; pointing it at the test CA stands in for a public CA.
    let pki = Pki::new("ringfront test CA");
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.write_ca(dir.path());
    let (origin, _) = https_origin("primary", &pki.leaf(&["localhost"]));
    let cfg =
        https(config(&[("primary", origin.addr())], "primary", ""), "primary").replace("ca_file = \"ca.pem\"\n", "");
    assert!(!cfg.contains("ca_file"));
    let proxy = Proxy::start_in_env(&cfg, dir, &[("SSL_CERT_FILE", ca.as_path())]);
    let r = proxy.client().get("/x?size=10");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-origin"), Some("primary"));
}
