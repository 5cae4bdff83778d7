//! The admin listener (SPEC §6), only where `[admin]` is configured.
//!
//! It runs on its own thread and runtime, away from the workers, so a slow
//! scrape or a large invalidation never delays a viewer request. Every
//! connection carries one request and is closed; bodies are bounded (1 MiB)
//! and every wait has a timeout, as on the viewer side.
//!
//! | endpoint | answer |
//! |---|---|
//! | `GET /healthz` | 200 `ok` while serving, 503 `draining` after a stop signal |
//! | `GET /metrics` | Prometheus text, summed over the workers (see [`crate::metrics`]) |
//! | `POST /invalidate` | body: one path per line, `prefix*` for a prefix; answers the count removed; in a cluster, applied on every peer too, one answer line per peer ([`fanout`]) |

use crate::cache::store::Store;
use crate::http::body::BodyCursor;
use crate::http::parse::{parse_request, BodyKind, RequestHead};
use crate::net;
use crate::proxy::Shared;
use monoio::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod fanout;

/// Bound on any admin request (head and body together).
const MAX_REQUEST: usize = 1 << 20;
/// Bound on each wait of an admin connection.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// What the admin endpoints act on.
pub struct Admin {
    pub shared: Arc<Shared>,
    pub cache: Option<Arc<Store>>,
    /// Set when the admin listener itself should stop (after the workers).
    pub stop: Arc<AtomicBool>,
}

/// Serves the admin listener until `admin.stop` is set.
pub async fn serve(listener: std::net::TcpListener, admin: Arc<Admin>) {
    let Ok(l) = monoio::net::TcpListener::from_std(listener) else {
        log::error!("admin listener: cannot register socket");
        return;
    };
    // A failed accept (no descriptor left) backs off instead of spinning.
    let mut backoff = net::AcceptBackoff::default();
    while !admin.stop.load(Ordering::Relaxed) {
        match monoio::time::timeout(Duration::from_millis(250), l.accept()).await {
            Ok(Ok((s, _))) => {
                backoff.accepted();
                monoio::spawn(handle(s, admin.clone()));
            }
            Ok(Err(e)) => {
                let wait = backoff.failed("admin", &e);
                if !wait.is_zero() {
                    monoio::time::sleep(wait).await;
                }
            }
            Err(_) => {}
        }
    }
}

async fn handle(mut s: TcpStream, admin: Arc<Admin>) {
    let mut buf = Vec::with_capacity(4096);
    let mut head = RequestHead::default();
    // Head.
    let n = loop {
        match parse_request(&buf, 64 * 1024, &mut head) {
            Ok(Some(n)) => break n,
            Ok(None) => {}
            Err(_) => return reply(&mut s, 400, "bad request\n").await,
        }
        match monoio::time::timeout(IO_TIMEOUT, net::read_more(&mut s, buf, 4096, MAX_REQUEST)).await {
            Ok((Ok(k), b)) if k > 0 => buf = b,
            _ => return,
        }
    };
    // Body (bounded).
    let mut cursor = match head.body {
        BodyKind::None => BodyCursor::length(0),
        BodyKind::Length(l) if l as usize <= MAX_REQUEST => BodyCursor::length(l),
        BodyKind::Chunked => BodyCursor::chunked(),
        BodyKind::Length(_) => return reply(&mut s, 413, "too large\n").await,
    };
    let mut body = Vec::new();
    let mut at = n;
    loop {
        let mut data = Vec::new();
        let used = match cursor.feed(&buf[at..], |r| data.push(r)) {
            Ok(u) => u,
            Err(_) => return reply(&mut s, 400, "bad body\n").await,
        };
        for r in data {
            body.extend_from_slice(&buf[at + r.start..at + r.end]);
        }
        at += used;
        if cursor.is_done() {
            break;
        }
        if buf.len() >= MAX_REQUEST {
            return reply(&mut s, 413, "too large\n").await;
        }
        match monoio::time::timeout(IO_TIMEOUT, net::read_more(&mut s, buf, 16 * 1024, MAX_REQUEST)).await {
            Ok((Ok(k), b)) if k > 0 => buf = b,
            _ => return,
        }
    }
    let method = head.method(&buf).to_vec();
    // The same normalisation as the proxy's (SPEC §3.1): `/./metrics` is `/metrics`.
    let mut path = Vec::new();
    match crate::http::path::normalize(head.path_only(&buf), &mut path) {
        Ok(true) => {}
        Ok(false) => path.extend_from_slice(head.path_only(&buf)),
        Err(e) => return reply(&mut s, 400, &format!("{e}\n")).await,
    }
    const TEXT: &str = "text/plain; charset=utf-8";
    let (status, content_type, text) = match (&method[..], &path[..]) {
        (b"GET" | b"HEAD", b"/healthz") => {
            if admin.shared.is_stopping() {
                (503, TEXT, "draining\n".to_string())
            } else {
                (200, TEXT, "ok\n".to_string())
            }
        }
        (b"POST", b"/invalidate") => {
            let loops = crate::cache::vary::request_lines(&buf, &head, b"cdn-loop");
            (200, TEXT, invalidate_answer(&admin, &body, loops).await)
        }
        (b"GET" | b"HEAD", b"/metrics") => {
            let metrics = admin.shared.latest().map(|g| g.metrics.clone()).unwrap_or_default();
            let text = metrics.render(&crate::metrics::Gauges {
                cache: admin.cache.as_ref().map(|c| c.stats()),
                open_connections: admin.shared.open_connections.load(Ordering::Relaxed) as u64,
                parked_connections: admin.shared.parked_connections.load(Ordering::Relaxed) as u64,
            });
            (200, "text/plain; version=0.0.4; charset=utf-8", text)
        }
        (_, b"/healthz") | (_, b"/invalidate") | (_, b"/metrics") => (405, TEXT, "method not allowed\n".to_string()),
        _ => (404, TEXT, "not found\n".to_string()),
    };
    // A HEAD answer carries the GET answer's length but no body (RFC 9110 §9.3.2).
    reply_typed(&mut s, status, content_type, &text, method == b"HEAD").await
}

/// Applies an invalidation here and, in a cluster, on the other peers
/// unless `cdn_loop` (the call's CDN-Loop lines) marks it as a peer's
/// fan-out ([`fanout`]); the answer's text.
async fn invalidate_answer<'a>(admin: &Admin, body: &[u8], cdn_loop: impl IntoIterator<Item = &'a [u8]>) -> String {
    let cfg = admin.shared.latest().map(|g| g.cfg.clone());
    let n = invalidate(admin.cache.as_deref(), cfg.as_deref(), body);
    log::info!("admin: invalidated {n} object(s)");
    match cfg.as_deref().and_then(|c| c.cluster.as_ref()) {
        Some(c) if !fanout::is_fanned_out(c, cdn_loop) => fanout::invalidate_everywhere(c, body, n).await,
        _ => format!("{n}\n"),
    }
}

/// Removes the objects whose path (with its query) equals a listed path, or
/// starts with one that ends in `*`; any host, every variant
/// ([`Store::remove_urls`]). Listed
/// paths are normalised as request paths are (SPEC §3.1), since keys hold
/// normalised paths: `/p/%7Euser` removes what `/p/~user` stored. Each key
/// costs a few hash lookups however many paths are listed ([`Patterns`]),
/// and the store is walked in batches ([`Store::remove_where`]).
///
/// An exact path names a URL as a viewer requests it: its query is also
/// taken as the behavior its path falls under (in `cfg`) keys it
/// (`cache_query_string`), so under an allow-list `/p?b=2&utm_source=x&a=1`
/// removes the object stored for `/p?a=1&b=2`, as a request for it would
/// find it. The path as written is matched too. Prefixes match keys as
/// written.
pub fn invalidate(store: Option<&Store>, cfg: Option<&crate::config::Config>, body: &[u8]) -> usize {
    let Some(store) = store else { return 0 };
    let patterns = Patterns::parse(body, cfg);
    if patterns.is_empty() {
        return 0;
    }
    store.remove_urls(|url| crate::cache::key::target(url).is_some_and(|t| patterns.matches(t)))
}

/// Invalidation paths: exact ones in a set, prefixes in a set with the
/// lengths they come in, so a target is checked with one lookup per
/// distinct prefix length.
#[derive(Default)]
struct Patterns {
    exact: std::collections::HashSet<Vec<u8>, ahash::RandomState>,
    prefixes: std::collections::HashSet<Vec<u8>, ahash::RandomState>,
    prefix_lens: Vec<usize>,
}

impl Patterns {
    fn parse(body: &[u8], cfg: Option<&crate::config::Config>) -> Patterns {
        let mut p = Patterns::default();
        let lines = body
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).trim_ascii())
            .filter(|l| !l.is_empty());
        for line in lines {
            let mut n = normalized_pattern(line);
            if n.pop_if(|b| *b == b'*').is_some() {
                p.prefix_lens.push(n.len());
                p.prefixes.insert(n);
            } else {
                if let Some(keyed) = cfg.and_then(|c| keyed_target(c, &n)) {
                    p.exact.insert(keyed);
                }
                p.exact.insert(n);
            }
        }
        p.prefix_lens.sort_unstable();
        p.prefix_lens.dedup();
        p
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    fn matches(&self, target: &[u8]) -> bool {
        self.exact.contains(target)
            || self
                .prefix_lens
                .iter()
                .any(|&n| target.get(..n).is_some_and(|p| self.prefixes.contains(p)))
    }
}

/// The target (path and query) a cache key holds for a request of
/// `target`, under the query policy of the behavior its path falls
/// under ([`crate::cache::key::build`]); `None` when it is `target` itself.
fn keyed_target(cfg: &crate::config::Config, target: &[u8]) -> Option<Vec<u8>> {
    let path = memchr::memchr(b'?', target).map_or(target, |i| &target[..i]);
    let mut key = Vec::with_capacity(target.len() + 1);
    crate::cache::key::build(&mut key, b"", target, &cfg.behavior_for(path).cache_key.query);
    let keyed = crate::cache::key::target(&key)?;
    (keyed != target).then(|| keyed.to_vec())
}

/// An invalidation pattern with its path normalised (a trailing `*` kept);
/// one that does not normalise (above the root) is kept as written.
fn normalized_pattern(p: &[u8]) -> Vec<u8> {
    let (path, star) = match p.strip_suffix(b"*") {
        Some(prefix) => (prefix, true),
        None => (p, false),
    };
    let mut out = Vec::new();
    let mut n = match crate::http::path::normalize(path, &mut out) {
        Ok(true) => out,
        _ => path.to_vec(),
    };
    if star {
        n.push(b'*');
    }
    n
}

async fn reply(s: &mut TcpStream, status: u16, body: &str) {
    reply_typed(s, status, "text/plain; charset=utf-8", body, false).await
}

async fn reply_typed(s: &mut TcpStream, status: u16, content_type: &str, body: &str, head_only: bool) {
    let out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        crate::http::write::reason(status),
        body.len(),
        if head_only { "" } else { body }
    );
    let _ = monoio::time::timeout(IO_TIMEOUT, net::write_all(s, out.into_bytes())).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::Object;
    use bytes::Bytes;
    use std::time::Instant;

    /// Stores a `Vary: Accept-Encoding` variant for `enc`.
    fn put(s: &Store, host: &str, target: &str, enc: &str) {
        let mut k = Vec::new();
        crate::cache::key::build(
            &mut k,
            host.as_bytes(),
            target.as_bytes(),
            &crate::cache::key::QueryKey::All,
        );
        k.extend_from_slice(b"\0accept-encoding\0=");
        k.extend_from_slice(enc.as_bytes());
        let vary = crate::cache::vary::Vary::parse(Some(b"Accept-Encoding")).unwrap();
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\n");
        let obj = Object::simple(
            head,
            Bytes::from_static(b"x"),
            200,
            Instant::now(),
            Duration::from_secs(60),
        );
        assert!(s.insert_with_vary(&k, &vary, Arc::new(obj)));
    }

    #[test]
    fn exact_and_prefix_invalidation() {
        let s = Store::new(1 << 20, 1 << 16);
        put(&s, "a", "/img/1.png", "identity");
        put(&s, "a", "/img/1.png", "gzip");
        put(&s, "b", "/img/2.png", "identity");
        put(&s, "a", "/css/x.css", "identity");
        put(&s, "a", "/img/1.png?v=2", "identity");
        assert_eq!(invalidate(Some(&s), None, b"/img/1.png\n"), 2);
        assert_eq!(invalidate(Some(&s), None, b"\r\n/img/*\r\n/nothing\n"), 2);
        assert_eq!(s.stats().objects, 1);
        assert_eq!(invalidate(Some(&s), None, b""), 0);
        assert_eq!(invalidate(None, None, b"/x"), 0);
        put(&s, "h", "/p/~user", "identity");
        put(&s, "h", "/q/a/b", "identity");
        assert_eq!(
            invalidate(Some(&s), None, b"/p/%7Euser\n/q/x/../a/*\n"),
            2,
            "patterns are normalised like paths"
        );
    }

    /// An exact path's query is also taken as its behavior keys it: under
    /// an allow-list, in any order and with other parameters.
    #[test]
    fn an_exact_path_is_keyed_as_its_behavior_keys_it() {
        let text = "[[origin]]\nid = \"o\"\naddress = \"127.0.0.1:9\"\n\
                    [[behavior]]\npath = \"/q/*\"\ntarget = \"o\"\ncache_query_string = [\"a\", \"b\"]\n\
                    [[behavior]]\npath = \"*\"\ntarget = \"o\"\n";
        let cfg = crate::config::Config::from_str(text, std::path::Path::new(".")).unwrap();
        let keyed = |t: &str| keyed_target(&cfg, t.as_bytes()).map(|k| String::from_utf8(k).unwrap());
        assert_eq!(keyed("/q/p?b=2&x=1&a=1").as_deref(), Some("/q/p?a=1&b=2"));
        assert_eq!(keyed("/q/p?a=1&b=2"), None, "as written");
        assert_eq!(keyed("/r?b=2&a=1"), None, "the whole query");
        let s = Store::new(1 << 20, 1 << 16);
        let mut k = Vec::new();
        crate::cache::key::build(&mut k, b"h", b"/q/p?a=1&b=2", &cfg.behaviors[0].cache_key.query);
        let obj = Object::simple(Bytes::new(), Bytes::new(), 200, Instant::now(), Duration::from_secs(60));
        assert!(s.insert(&k, Arc::new(obj)));
        assert_eq!(invalidate(Some(&s), None, b"/q/p?b=2&a=1\n"), 0);
        assert_eq!(invalidate(Some(&s), Some(&cfg), b"/q/p?b=2&a=1\n"), 1);
    }
}
