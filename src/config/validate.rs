//! Range and cross-reference checks, and resolution of names to indices.
//!
//! Every check appends to one list of errors instead of stopping at the first,
//! so an operator sees all problems in one `ringfront check` run. Each error
//! names its key as a path (`origin[1].connection_timeout`); the line is looked
//! up in a span-keeping parse of the same text.

use super::*;
use std::net::ToSocketAddrs;

/// A CloudFront path pattern: `*` matches any run of characters (including
/// `/`), `?` exactly one character; everything else literally, case-sensitive.
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
}

impl Pattern {
    pub fn new(text: &str) -> Pattern {
        Pattern { text: text.to_string() }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Glob match without recursion: the classic two-pointer algorithm with
    /// one backtrack point, O(n·m) worst case and no allocation.
    pub fn matches(&self, path: &[u8]) -> bool {
        let p = self.text.as_bytes();
        let (mut pi, mut si) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while si < path.len() {
            if pi < p.len() && (p[pi] == b'?' || p[pi] == path[si]) {
                pi += 1;
                si += 1;
            } else if pi < p.len() && p[pi] == b'*' {
                star = Some((pi, si));
                pi += 1;
            } else if let Some((sp, ss)) = star {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            } else {
                return false;
            }
        }
        while pi < p.len() && p[pi] == b'*' {
            pi += 1;
        }
        pi == p.len()
    }
}

/// Where a behavior sends misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Origin(usize),
    Group(usize),
}

pub use crate::cache::key::{KeyPolicy, QueryKey};
pub use crate::http::edit::{CookieForward, ForwardPolicy, HeaderActions, ResponseEdits, ValuePart};

/// A behavior, resolved.
#[derive(Debug, Clone)]
pub struct Behavior {
    pub path: String,
    pub pattern: Pattern,
    pub target: Target,
    pub allowed_methods: Vec<String>,
    pub cache: bool,
    /// The cache key policy: query string, key headers, key cookies.
    pub cache_key: KeyPolicy,
    /// The origin request policy (`forward_*`).
    pub forward: ForwardPolicy,
    /// `compress`: gzip/br for viewers that accept them (SPEC §4).
    pub compress: bool,
    /// The response headers policy, applied last to every response.
    pub viewer_response: ResponseEdits,
    pub min_ttl: Duration,
    pub default_ttl: Duration,
    pub max_ttl: Duration,
    pub origin_request: HeaderActions,
    pub origin_response: HeaderActions,
}

impl Behavior {
    pub fn allows(&self, method: &[u8]) -> bool {
        self.allowed_methods.iter().any(|m| m.as_bytes() == method)
    }
}

/// Turns a serde/TOML error into one line with the key and line.
pub(super) fn toml_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e.span().map(|s| line_of(text, s.start));
    let key = e
        .span()
        .map(|s| key_at(text, s.start))
        .unwrap_or_else(|| "config".into());
    ConfigError {
        key,
        line,
        message: e.message().trim().replace('\n', " "),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

/// The dotted key at a byte offset: the nearest table header above it plus
/// the key written on that line (best effort, for error messages only).
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[offset..].find('\n').map(|i| offset + i).unwrap_or(text.len());
    let line = text[line_start..line_end].trim();
    let mut table = String::new();
    for l in text[..line_start].lines() {
        let l = l.trim();
        if l.starts_with('[') {
            table = l.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
    }
    if line.starts_with('[') {
        return line.trim_matches(|c| c == '[' || c == ']').trim().to_string();
    }
    let key = line.split('=').next().unwrap_or("").trim().trim_matches('"');
    match (table.is_empty(), key.is_empty()) {
        (true, true) => "config".into(),
        (true, false) => key.into(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

/// A key path inside the document: `["origin", 1, "id"]`.
#[derive(Clone)]
pub(super) enum Seg {
    K(&'static str),
    I(usize),
}

pub(super) struct Errors<'a> {
    doc: Option<toml_edit::ImDocument<&'a str>>,
    text: &'a str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    /// How many problems so far.
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    pub(super) fn push(&mut self, path: &[Seg], message: impl Into<String>) {
        let mut key = String::new();
        for s in path {
            match s {
                Seg::K(k) => {
                    if !key.is_empty() {
                        key.push('.');
                    }
                    key.push_str(k);
                }
                Seg::I(i) => key.push_str(&format!("[{i}]")),
            }
        }
        let line = self.span(path).map(|s| line_of(self.text, s.start));
        self.list.push(ConfigError {
            key,
            line,
            message: message.into(),
        });
    }

    /// The span of the deepest item of `path` present in the document.
    fn span(&self, path: &[Seg]) -> Option<std::ops::Range<usize>> {
        let doc = self.doc.as_ref()?;
        let mut item: &toml_edit::Item = doc.as_item();
        let mut best = None;
        for s in path {
            let next = match s {
                Seg::K(k) => item.get(*k),
                Seg::I(i) => item.get(*i),
            };
            match next {
                Some(n) => {
                    item = n;
                    if let Some(sp) = n.span() {
                        best = Some(sp);
                    } else if let Some(t) = n.as_table_like() {
                        // Tables of an array have no span of their own; use a key's.
                        if let Some((_, v)) = t.iter().next() {
                            best = v.span().or(best);
                        }
                    }
                }
                None => break,
            }
        }
        best
    }
}

pub(super) fn resolve_addrs(key: &[Seg], s: &str, e: &mut Errors, what: &str) -> Vec<SocketAddr> {
    match s.to_socket_addrs() {
        Ok(a) => {
            let v: Vec<SocketAddr> = a.collect();
            if v.is_empty() {
                e.push(key, format!("{what} {s:?} resolves to no address"));
            }
            v
        }
        Err(err) => {
            e.push(key, format!("{what} {s:?} is not a valid host:port ({err})"));
            Vec::new()
        }
    }
}

pub(super) fn check_range(e: &mut Errors, key: &[Seg], v: Duration, lo_ms: u64, hi_ms: u64) {
    if v < Duration::from_millis(lo_ms) || v > Duration::from_millis(hi_ms) {
        e.push(
            key,
            format!(
                "{} is out of range {}..={}",
                Dur(v),
                Dur(Duration::from_millis(lo_ms)),
                Dur(Duration::from_millis(hi_ms))
            ),
        );
    }
}

pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_template(s: &str) -> Result<Vec<ValuePart>, String> {
    if s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err("header values must not contain CR, LF or NUL".into());
    }
    let mut parts = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(ValuePart::Lit(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed placeholder in {s:?}"))?;
        let name = &rest[open + 1..open + close];
        parts.push(match name {
            "attempt" => ValuePart::Attempt,
            "origin" => ValuePart::Origin,
            "role" => ValuePart::Role,
            other => {
                return Err(format!(
                    "unknown placeholder {{{other}}} (use {{attempt}}, {{origin}}, {{role}})"
                ))
            }
        });
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(ValuePart::Lit(rest.to_string()));
    }
    Ok(parts)
}

fn header_actions(e: &mut Errors, key: &[Seg], raw: &RawHeaderActions) -> HeaderActions {
    let mut out = HeaderActions::default();
    for (name, value) in &raw.set {
        let mut k = key.to_vec();
        k.push(Seg::K("set"));
        if !is_token(name) {
            e.push(&k, format!("{name:?} is not a valid header name"));
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if out.set.iter().any(|(n, _)| *n == lower) {
            e.push(&k, format!("{name}: set twice (header names are case-insensitive)"));
            continue;
        }
        match parse_template(value) {
            Ok(p) => out.set.push((lower, p)),
            Err(m) => e.push(&k, format!("{name}: {m}")),
        }
    }
    for name in &raw.remove {
        if !is_token(name) {
            let mut k = key.to_vec();
            k.push(Seg::K("remove"));
            e.push(&k, format!("{name:?} is not a valid header name"));
            continue;
        }
        out.remove.push(name.to_ascii_lowercase());
    }
    out
}

/// The methods of RFC 9110 §9.3 (and PATCH) that config may write in any case.
const METHODS: [&str; 7] = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"];

/// A `listen` key (`server.listen`, `server.tls.listen`): one or more
/// `ip:port` addresses.
fn listen_addrs(e: &mut Errors, key: &[Seg], listen: &OneOrMany) -> Vec<SocketAddr> {
    let list = listen.to_vec();
    if list.is_empty() {
        e.push(key, "at least one address is required");
    }
    let mut addrs = Vec::new();
    for l in &list {
        match l.parse::<SocketAddr>() {
            Ok(a) => addrs.push(a),
            Err(_) => e.push(key, format!("{l:?} is not an ip:port address")),
        }
    }
    addrs
}

/// `[server.tls]`: the listeners and the certificates, loaded and checked.
fn server_tls(t: &RawTls, base: &Path, e: &mut Errors) -> Option<ServerTls> {
    use Seg::{I, K};
    let listen = listen_addrs(e, &[K("server"), K("tls"), K("listen")], &t.listen);
    if t.certificates.is_empty() {
        e.push(
            &[K("server"), K("tls"), K("certificates")],
            "at least one certificate is required",
        );
        return None;
    }
    let mut files_ok = true;
    for (i, c) in t.certificates.iter().enumerate() {
        for (k, p) in [("cert", &c.cert), ("key", &c.key)] {
            if let Err(m) = super::check_file(&base.join(p), super::MAX_PEM_FILE) {
                files_ok = false;
                e.push(&[K("server"), K("tls"), K("certificates"), I(i), K(k)], m);
            }
        }
        for n in &c.names {
            let bare = n.strip_prefix("*.").unwrap_or(n);
            if bare.is_empty() || bare.contains('*') || n.bytes().any(|b| b <= b' ' || b == 0x7f) {
                e.push(
                    &[K("server"), K("tls"), K("certificates"), I(i), K("names")],
                    format!("{n:?} is not a host name or a \"*.\" wildcard"),
                );
            }
        }
    }
    if !files_ok {
        return None;
    }
    let paths: Vec<(PathBuf, PathBuf)> = t
        .certificates
        .iter()
        .map(|c| (base.join(&c.cert), base.join(&c.key)))
        .collect();
    let sources: Vec<crate::tls::CertSource<'_>> = t
        .certificates
        .iter()
        .zip(&paths)
        .map(|(c, (cert, key))| crate::tls::CertSource {
            names: &c.names,
            cert,
            key,
        })
        .collect();
    match crate::tls::server_config(&sources) {
        Ok(config) => Some(ServerTls {
            listen,
            config,
            names: t.certificates.iter().map(|c| c.names.clone()).collect(),
        }),
        Err(err) => {
            e.push(
                &[K("server"), K("tls"), K("certificates"), I(err.index), K(err.field)],
                err.message,
            );
            None
        }
    }
}

/// An origin's TLS settings: `ca_file` and `sni` apply to https origins
/// only; the server name is `sni`, else the `host_header`'s host, else the
/// `address`'s host.
fn origin_tls(i: usize, o: &RawOrigin, base: &Path, e: &mut Errors) -> Option<crate::tls::OriginTls> {
    use Seg::{I, K};
    if o.protocol == Protocol::Http {
        for (k, v) in [("ca_file", &o.ca_file), ("sni", &o.sni)] {
            if !v.is_empty() {
                e.push(
                    &[K("origin"), I(i), K(k)],
                    "applies to protocol = \"https\" origins only",
                );
            }
        }
        return None;
    }
    let ca = (!o.ca_file.is_empty()).then(|| base.join(&o.ca_file));
    if let Some(p) = &ca {
        if let Err(m) = super::check_file(p, super::MAX_PEM_FILE) {
            e.push(&[K("origin"), I(i), K("ca_file")], m);
            return None;
        }
    }
    let (name_key, name) = if !o.sni.is_empty() {
        ("sni", o.sni.as_str())
    } else if !o.host_header.is_empty() {
        ("host_header", host_of(&o.host_header))
    } else {
        ("address", host_of(&o.address))
    };
    let name = match crate::tls::server_name(name) {
        Ok(n) => n,
        Err(m) => {
            e.push(&[K("origin"), I(i), K(name_key)], m);
            return None;
        }
    };
    match crate::tls::client_config(ca.as_deref()) {
        Ok(cfg) => Some(crate::tls::OriginTls {
            config: cfg,
            name,
            ca_file: ca,
        }),
        Err(m) => {
            let key = if ca.is_some() { "ca_file" } else { "protocol" };
            e.push(&[K("origin"), I(i), K(key)], m);
            None
        }
    }
}

/// The host part of `host:port`, `[v6]:port`, or a bare host.
fn host_of(s: &str) -> &str {
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match s.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => s,
    }
}

pub(super) fn validate(raw: RawConfig, text: &str, base: &Path) -> Result<Config, Vec<ConfigError>> {
    use Seg::{I, K};
    let mut e = Errors {
        doc: toml_edit::ImDocument::parse(text).ok(),
        text,
        list: Vec::new(),
    };

    // [server]
    let rs = &raw.server;
    let listen = listen_addrs(&mut e, &[K("server"), K("listen")], &rs.listen);
    if rs.workers > 1024 {
        e.push(
            &[K("server"), K("workers")],
            format!("{} is out of range 0..=1024", rs.workers),
        );
    }
    if rs.max_connections == 0 {
        e.push(&[K("server"), K("max_connections")], "must be at least 1");
    }
    check_range(
        &mut e,
        &[K("server"), K("client_header_timeout")],
        rs.client_header_timeout.0,
        10,
        3_600_000,
    );
    check_range(
        &mut e,
        &[K("server"), K("client_idle_timeout")],
        rs.client_idle_timeout.0,
        10,
        86_400_000,
    );
    if rs.max_request_head.0 < 1024 || rs.max_request_head.0 > (1 << 20) {
        e.push(
            &[K("server"), K("max_request_head")],
            format!("{} is out of range 1KiB..=1MiB", rs.max_request_head),
        );
    }
    if rs.via.is_empty() || !is_token(&rs.via) {
        e.push(
            &[K("server"), K("via")],
            format!("{:?} must be a non-empty token (letters, digits, -._)", rs.via),
        );
    }
    let access_log = if rs.access_log.is_empty() || rs.access_log == "-" {
        rs.access_log.clone()
    } else {
        base.join(&rs.access_log).to_string_lossy().into_owned()
    };
    let tls = rs.tls.as_ref().and_then(|t| server_tls(t, base, &mut e));
    let server = Server {
        listen,
        workers: rs.workers,
        pin_workers: rs.pin_workers,
        io_driver: rs.io_driver,
        max_connections: rs.max_connections,
        client_header_timeout: rs.client_header_timeout.0,
        client_idle_timeout: rs.client_idle_timeout.0,
        max_request_head: rs.max_request_head.0 as usize,
        access_log,
        via: rs.via.clone(),
        tls,
    };

    let admin = raw.admin.as_ref().and_then(|a| match a.listen.parse::<SocketAddr>() {
        Ok(x) => Some(x),
        Err(_) => {
            e.push(
                &[K("admin"), K("listen")],
                format!("{:?} is not an ip:port address", a.listen),
            );
            None
        }
    });

    // ids must be unique across origins and groups
    let mut ids: Vec<String> = Vec::new();
    let mut seen = |e: &mut Errors, id: &str, path: Vec<Seg>| {
        if id.is_empty() {
            e.push(&path, "id must not be empty");
        } else if ids.iter().any(|x| x == id) {
            e.push(
                &path,
                format!("duplicate id {id:?} (ids are unique across origins and origin groups)"),
            );
        }
        ids.push(id.to_string());
    };

    let mut origins = Vec::new();
    for (i, o) in raw.origin.iter().enumerate() {
        seen(&mut e, &o.id, vec![K("origin"), I(i), K("id")]);
        let addrs = resolve_addrs(&[K("origin"), I(i), K("address")], &o.address, &mut e, "address");
        let tls = origin_tls(i, o, base, &mut e);
        if !(1..=10).contains(&o.connection_attempts) {
            e.push(
                &[K("origin"), I(i), K("connection_attempts")],
                format!("{} is out of range 1..=10", o.connection_attempts),
            );
        }
        check_range(
            &mut e,
            &[K("origin"), I(i), K("connection_timeout")],
            o.connection_timeout.0,
            10,
            60_000,
        );
        check_range(
            &mut e,
            &[K("origin"), I(i), K("response_timeout")],
            o.response_timeout.0,
            10,
            300_000,
        );
        check_range(
            &mut e,
            &[K("origin"), I(i), K("keepalive_timeout")],
            o.keepalive_timeout.0,
            0,
            3_600_000,
        );
        if o.max_idle_connections > 65536 {
            e.push(
                &[K("origin"), I(i), K("max_idle_connections")],
                format!("{} is out of range 0..=65536", o.max_idle_connections),
            );
        }
        if !o.host_header.is_empty() && o.host_header.bytes().any(|b| b <= b' ' || b == 0x7f) {
            e.push(
                &[K("origin"), I(i), K("host_header")],
                "must not contain spaces or control characters",
            );
        }
        origins.push(Origin {
            id: o.id.clone(),
            address: o.address.clone(),
            addrs,
            protocol: o.protocol,
            tls,
            host_header: (!o.host_header.is_empty()).then(|| o.host_header.clone()),
            connection_attempts: o.connection_attempts,
            connection_timeout: o.connection_timeout.0,
            response_timeout: o.response_timeout.0,
            keepalive_timeout: o.keepalive_timeout.0,
            max_idle_connections: o.max_idle_connections,
        });
    }
    let origin_idx = |id: &str| raw.origin.iter().position(|o| o.id == id);

    let mut groups = Vec::new();
    for (i, g) in raw.origin_group.iter().enumerate() {
        seen(&mut e, &g.id, vec![K("origin_group"), I(i), K("id")]);
        let mut member = |field: &'static str, id: &str| match origin_idx(id) {
            Some(x) => x,
            None => {
                e.push(&[K("origin_group"), I(i), K(field)], format!("{id:?} names no origin"));
                0
            }
        };
        let primary = member("primary", &g.primary);
        let secondary = member("secondary", &g.secondary);
        if g.primary == g.secondary {
            e.push(&[K("origin_group"), I(i), K("secondary")], "must differ from primary");
        }
        if g.failover_status.is_empty() {
            e.push(
                &[K("origin_group"), I(i), K("failover_status")],
                "must list at least one status",
            );
        }
        for s in &g.failover_status {
            if !(400..=599).contains(s) {
                e.push(
                    &[K("origin_group"), I(i), K("failover_status")],
                    format!("{s} is out of range 400..=599"),
                );
            }
        }
        if !(1..=1000).contains(&g.fast_fail_after) {
            e.push(
                &[K("origin_group"), I(i), K("fast_fail_after")],
                format!("{} is out of range 1..=1000", g.fast_fail_after),
            );
        }
        check_range(
            &mut e,
            &[K("origin_group"), I(i), K("fast_fail_probe_interval")],
            g.fast_fail_probe_interval.0,
            10,
            3_600_000,
        );
        groups.push(Group {
            id: g.id.clone(),
            primary,
            secondary,
            failover_status: g.failover_status.clone(),
            primary_fast_fail: g.primary_fast_fail,
            fast_fail_after: g.fast_fail_after,
            fast_fail_probe_interval: g.fast_fail_probe_interval.0,
        });
    }

    let mut behaviors = Vec::new();
    if raw.behavior.is_empty() {
        e.push(
            &[K("behavior")],
            "at least one behavior is required, and the last must have path = \"*\"",
        );
    } else if raw.behavior.last().map(|b| b.path.as_str()) != Some("*") {
        e.push(
            &[K("behavior"), I(raw.behavior.len() - 1), K("path")],
            "the last behavior must be the default one, with path = \"*\"",
        );
    }
    for (i, b) in raw.behavior.iter().enumerate() {
        if b.path.is_empty() || b.path.bytes().any(|c| c <= b' ' || c == 0x7f) {
            e.push(
                &[K("behavior"), I(i), K("path")],
                format!("{:?} is not a valid path pattern", b.path),
            );
        }
        let target = if let Some(x) = origin_idx(&b.target) {
            Target::Origin(x)
        } else if let Some(x) = raw.origin_group.iter().position(|g| g.id == b.target) {
            Target::Group(x)
        } else {
            e.push(
                &[K("behavior"), I(i), K("target")],
                format!("{:?} names no origin or origin group", b.target),
            );
            Target::Origin(0)
        };
        let mut methods = Vec::new();
        for m in &b.allowed_methods {
            // RFC 9110 §9.1: any token is a method; the standard ones may be
            // written in any case, others are kept as written (methods are
            // case-sensitive).
            let m = match METHODS.iter().find(|s| s.eq_ignore_ascii_case(m)) {
                Some(s) => s.to_string(),
                None => m.clone(),
            };
            if !crate::http::token::is_token(m.as_bytes()) {
                e.push(
                    &[K("behavior"), I(i), K("allowed_methods")],
                    format!("{m:?} is not a method (an RFC 9110 token)"),
                );
            } else if !methods.contains(&m) {
                methods.push(m);
            }
        }
        for must in ["GET", "HEAD"] {
            if !methods.iter().any(|m| m == must) {
                e.push(
                    &[K("behavior"), I(i), K("allowed_methods")],
                    format!("must include {must}"),
                );
            }
        }
        if !(b.min_ttl <= b.default_ttl && b.default_ttl <= b.max_ttl) {
            e.push(
                &[K("behavior"), I(i), K("default_ttl")],
                format!(
                    "ttls must satisfy min_ttl <= default_ttl <= max_ttl (have {} / {} / {})",
                    b.min_ttl, b.default_ttl, b.max_ttl
                ),
            );
        }
        let origin_request = header_actions(&mut e, &[K("behavior"), I(i), K("origin_request")], &b.origin_request);
        let origin_response = header_actions(&mut e, &[K("behavior"), I(i), K("origin_response")], &b.origin_response);
        let p = super::policy::resolve(&mut e, i, b);
        behaviors.push(Behavior {
            path: b.path.clone(),
            pattern: Pattern::new(&b.path),
            target,
            allowed_methods: methods,
            cache: b.cache,
            cache_key: p.cache_key,
            forward: p.forward,
            compress: b.compress,
            viewer_response: p.viewer_response,
            min_ttl: b.min_ttl.0,
            default_ttl: b.default_ttl.0,
            max_ttl: b.max_ttl.0,
            origin_request,
            origin_response,
        });
    }

    let mut error_pages: Vec<ErrorPage> = Vec::new();
    for (i, r) in raw.error_response.iter().enumerate() {
        if !(400..=599).contains(&r.status) {
            e.push(
                &[K("error_response"), I(i), K("status")],
                format!("{} is out of range 400..=599", r.status),
            );
        }
        if error_pages.iter().any(|p| p.status == r.status) {
            e.push(
                &[K("error_response"), I(i), K("status")],
                format!("duplicate error_response for {}", r.status),
            );
        }
        let response_status = r.response_status.unwrap_or(r.status);
        if !(200..=599).contains(&response_status) || (204..=205).contains(&response_status) || response_status == 304 {
            e.push(
                &[K("error_response"), I(i), K("response_status")],
                format!("{response_status} is out of range 200..=599 (and cannot be 204, 205 or 304)"),
            );
        }
        let path = base.join(&r.file);
        let body = match super::read_file(&path, super::MAX_ERROR_PAGE) {
            Ok(b) => bytes::Bytes::from(b),
            Err(m) => {
                e.push(&[K("error_response"), I(i), K("file")], m);
                bytes::Bytes::new()
            }
        };
        error_pages.push(ErrorPage {
            status: r.status,
            content_type: content_type_for(&path),
            file: path,
            body,
            response_status,
            min_ttl: r.min_ttl.0,
        });
    }

    if raw.cache.max_object_size.0 == 0 && raw.cache.capacity.0 > 0 {
        e.push(
            &[K("cache"), K("max_object_size")],
            "must be above 0 when the cache is enabled",
        );
    }

    let cluster = raw.cluster.as_ref().and_then(|c| super::cluster::resolve(&mut e, c));

    if !e.list.is_empty() {
        return Err(e.list);
    }
    Ok(Config {
        server,
        admin,
        cache: Cache {
            capacity: raw.cache.capacity.0,
            max_object_size: raw.cache.max_object_size.0,
        },
        origins,
        groups,
        behaviors,
        error_page_statuses: error_pages.iter().map(|p| p.status).collect(),
        error_pages,
        cluster,
    })
}

/// Content-Type of an error page, by extension.
fn content_type_for(p: &Path) -> &'static str {
    match p
        .extension()
        .and_then(|x| x.to_str())
        .map(|x| x.to_ascii_lowercase())
        .as_deref()
    {
        Some("html") | Some("htm") => "text/html; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = "127.0.0.1:0"

[[origin]]
id = "primary"
address = "127.0.0.1:9001"

[[origin]]
id = "secondary"
address = "127.0.0.1:9002"

[[origin_group]]
id = "site"
primary = "primary"
secondary = "secondary"

[[behavior]]
path = "/static/*"
target = "site"

[[behavior]]
path = "*"
target = "primary"
"#;

    fn errs(text: &str) -> Vec<ConfigError> {
        Config::from_str(text, Path::new(".")).expect_err("config accepted")
    }

    #[test]
    fn good_config_resolves() {
        let c = Config::from_str(GOOD, Path::new(".")).unwrap();
        assert_eq!(c.origins.len(), 2);
        assert_eq!(c.groups[0].primary, 0);
        assert_eq!(c.groups[0].secondary, 1);
        assert_eq!(c.behaviors[0].target, Target::Group(0));
        assert_eq!(c.behavior_for(b"/static/a.css").path, "/static/*");
        assert_eq!(c.behavior_for(b"/other").path, "*");
        assert_eq!(c.origins[0].connection_attempts, 3);
        assert_eq!(c.origins[0].connection_timeout, Duration::from_secs(10));
        assert_eq!(c.server.max_request_head, 32 << 10);
    }

    #[test]
    fn unknown_key_named_with_line() {
        let t = GOOD.replace(
            "listen = \"127.0.0.1:0\"",
            "listen = \"127.0.0.1:0\"\nlisten_backlog = 5",
        );
        let e = errs(&t);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].key, "server.listen_backlog", "{e:?}");
        assert_eq!(e[0].line, Some(4));
    }

    #[test]
    fn duplicate_id_named() {
        let t = GOOD.replace("id = \"secondary\"", "id = \"primary\"");
        let e = errs(&t);
        assert!(
            e.iter()
                .any(|x| x.key == "origin[1].id" && x.message.contains("duplicate")),
            "{e:?}"
        );
        assert_eq!(e.iter().find(|x| x.key == "origin[1].id").unwrap().line, Some(10));
    }

    #[test]
    fn group_id_clashing_with_origin() {
        let t = GOOD
            .replace("id = \"site\"", "id = \"primary\"")
            .replace("target = \"site\"", "target = \"primary\"");
        let e = errs(&t);
        assert!(e.iter().any(|x| x.key == "origin_group[0].id"), "{e:?}");
    }

    #[test]
    fn missing_default_behavior_named() {
        let t = GOOD.replace("path = \"*\"", "path = \"/x\"");
        let e = errs(&t);
        assert!(
            e.iter()
                .any(|x| x.key == "behavior[1].path" && x.message.contains("default")),
            "{e:?}"
        );
    }

    #[test]
    fn dangling_target_named() {
        let t = GOOD.replace("target = \"site\"", "target = \"nowhere\"");
        let e = errs(&t);
        assert_eq!(e[0].key, "behavior[0].target", "{e:?}");
        assert!(e[0].message.contains("nowhere"));
        assert!(e[0].line.is_some());
    }

    #[test]
    fn out_of_range_timeout_named() {
        let t = GOOD.replace(
            "address = \"127.0.0.1:9001\"",
            "address = \"127.0.0.1:9001\"\nconnection_timeout = \"61s\"",
        );
        let e = errs(&t);
        assert_eq!(e[0].key, "origin[0].connection_timeout", "{e:?}");
        assert_eq!(e[0].line, Some(8));
        let t = GOOD.replace(
            "address = \"127.0.0.1:9001\"",
            "address = \"127.0.0.1:9001\"\nresponse_timeout = \"5ms\"",
        );
        assert_eq!(errs(&t)[0].key, "origin[0].response_timeout");
    }

    #[test]
    fn bad_duration_named() {
        let t = GOOD.replace(
            "address = \"127.0.0.1:9001\"",
            "address = \"127.0.0.1:9001\"\nresponse_timeout = \"10 parsecs\"",
        );
        let e = errs(&t);
        assert_eq!(e[0].key, "origin.response_timeout", "{e:?}");
        assert_eq!(e[0].line, Some(8));
    }

    #[test]
    fn several_errors_at_once() {
        let t = GOOD
            .replace(
                "address = \"127.0.0.1:9001\"",
                "address = \"127.0.0.1:9001\"\nconnection_attempts = 11",
            )
            .replace(
                "secondary = \"secondary\"",
                "secondary = \"ghost\"\nfailover_status = [200]",
            );
        let e = errs(&t);
        let keys: Vec<&str> = e.iter().map(|x| x.key.as_str()).collect();
        assert!(keys.contains(&"origin[0].connection_attempts"), "{keys:?}");
        assert!(keys.contains(&"origin_group[0].secondary"), "{keys:?}");
        assert!(keys.contains(&"origin_group[0].failover_status"), "{keys:?}");
    }

    #[test]
    fn a_header_action_set_twice_in_two_cases_is_rejected() {
        let text = GOOD.replace(
            "[[behavior]]\npath = \"/static/*\"\n",
            "[[behavior]]\npath = \"/static/*\"\norigin_request = { set = { \"X-A\" = \"1\", \"x-a\" = \"2\" } }\n",
        );
        let e = errs(&text);
        assert_eq!(e[0].key, "behavior[0].origin_request.set", "{e:?}");
        assert!(e[0].message.contains("set twice"), "{e:?}");
    }

    #[test]
    fn header_action_placeholders() {
        let t = GOOD.replace(
            "path = \"/static/*\"",
            "path = \"/static/*\"\norigin_request = { set = { \"x-try\" = \"{attempt}-{role}@{origin}\" }, remove = [\"Cookie\"] }",
        );
        let c = Config::from_str(&t, Path::new(".")).unwrap();
        let a = &c.behaviors[0].origin_request;
        let mut out = Vec::new();
        HeaderActions::render(&a.set[0].1, 2, "secondary", "secondary", &mut out);
        assert_eq!(out, b"2-secondary@secondary");
        assert_eq!(a.remove, vec!["cookie".to_string()]);
        let bad = GOOD.replace(
            "path = \"/static/*\"",
            "path = \"/static/*\"\norigin_request = { set = { \"x\" = \"{nope}\" } }",
        );
        assert_eq!(errs(&bad)[0].key, "behavior[0].origin_request.set");
    }

    #[test]
    fn patterns() {
        let p = Pattern::new("/static/*.css");
        assert!(p.matches(b"/static/a/b.css"));
        assert!(!p.matches(b"/static/a/b.js"));
        assert!(Pattern::new("*").matches(b""));
        assert!(Pattern::new("/a?c").matches(b"/abc"));
        assert!(!Pattern::new("/a?c").matches(b"/ac"));
        assert!(Pattern::new("*a*b*c").matches(b"xxaxxbxxc"));
        assert!(!Pattern::new("*a*b*c").matches(b"xxaxxcxxb"));
        assert!(Pattern::new("/img/*").matches(b"/img/"));
        assert!(!Pattern::new("/img/*").matches(b"/img"));
    }

    #[test]
    fn missing_error_page_file() {
        let t = format!("{GOOD}\n[[error_response]]\nstatus = 503\nfile = \"does/not/exist.html\"\n");
        let e = errs(&t);
        assert_eq!(e[0].key, "error_response[0].file", "{e:?}");
    }
}
