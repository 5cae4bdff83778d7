//! Helpers for the RFC-indexed cache tests (`tests/rfc*.rs`): an origin
//! that answers each path with header lines the test chooses, a caching
//! proxy configured as the conformance runs are (`default_ttl = "0s"`, so
//! only what the origin says makes a response fresh), and a way to ask
//! whether a second request was answered from the cache.

use super::scripted::{Reply, ScriptedOrigin};
use super::{config, Client, Proxy, Response};
use std::time::{Duration, SystemTime};

/// An origin answering `GET path` with `200 OK`, the header lines given
/// for that path (each ending in CRLF) and the body `ok`; any other path
/// gets a 404 that says it may not be stored.
pub fn origin(table: &[(&str, String)]) -> ScriptedOrigin {
    let table: Vec<(String, String)> = table.iter().map(|(p, l)| (p.to_string(), l.clone())).collect();
    ScriptedOrigin::start(move |head| {
        let path = head.split(' ').nth(1).unwrap_or("");
        let reply = match table.iter().find(|(p, _)| p == path) {
            Some((_, lines)) => format!("HTTP/1.1 200 OK\r\n{lines}Content-Length: 2\r\n\r\nok"),
            None => "HTTP/1.1 404 Not Found\r\nCache-Control: no-store\r\nContent-Length: 0\r\n\r\n".to_string(),
        };
        Reply::now(reply.as_bytes())
    })
}

/// A caching proxy in front of `o`, with `default_ttl = "0s"`.
pub fn proxy(o: &ScriptedOrigin) -> Proxy {
    let cfg = config(&[("o", o.addr)], "o", "").replace("cache = false\n", "cache = true\ndefault_ttl = \"0s\"\n");
    Proxy::start(&cfg)
}

/// How many requests for `path` reached the origin.
pub fn origin_requests(o: &ScriptedOrigin, path: &str) -> usize {
    let line = format!("GET {path} HTTP/1.1");
    o.request_lines().iter().filter(|l| **l == line).count()
}

/// GETs `path` twice on `c`; returns both responses and whether the second
/// was answered from the cache (the origin saw one request, and the
/// response says it is a hit).
pub fn twice(c: &mut Client, o: &ScriptedOrigin, path: &str) -> (Response, Response, bool) {
    let first = c.get(path);
    let second = c.get(path);
    let hit = origin_requests(o, path) == 1 && second.header("x-cache") == Some("Hit from ringfront");
    (first, second, hit)
}

/// Every value of header `name` in `r`, in order.
pub fn values<'a>(r: &'a Response, name: &str) -> Vec<&'a str> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The `ttl=` of a Cache-Status, if any.
pub fn ttl(r: &Response) -> Option<i64> {
    r.header("cache-status")?.rsplit("ttl=").next()?.parse().ok()
}

/// An HTTP-date `secs` seconds before now.
pub fn date_ago(secs: u64) -> String {
    httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(secs))
}

/// An HTTP-date `secs` seconds after now.
pub fn date_in(secs: u64) -> String {
    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(secs))
}
