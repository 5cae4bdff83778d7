//! Configuration: the TOML schema of SPEC §2, its defaults, and validation.
//!
//! Loading is two passes. serde (with `deny_unknown_fields` everywhere) turns
//! the text into the typed schema below, so unknown keys and wrong types are
//! caught with the TOML layer's position. [`validate`] then checks ranges and
//! cross references and resolves names to indices, producing the [`Config`]
//! the runtime uses. Every problem becomes one [`ConfigError`] line naming the
//! key, with the line number found through a span-keeping parse of the same
//! text (toml_edit), so `ringfront check` can print all of them at once.

mod cluster;
mod files;
mod policy;
mod units;
mod validate;

pub use cluster::{Cluster, Peer, RawCluster, RawPeer};
pub use files::{check_file, read_file, MAX_ERROR_PAGE, MAX_PEM_FILE};
pub use units::{parse_duration, parse_size, Dur, Size};
pub use validate::{
    Behavior, CookieForward, ForwardPolicy, HeaderActions, KeyPolicy, Pattern, QueryKey, ResponseEdits, Target,
};

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// One problem with a config file: the key it concerns and, where known, the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// `"a"` or `["a", "b"]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Which I/O driver workers use.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IoDriver {
    Auto,
    IoUring,
    Epoll,
}

/// Upstream protocol of an origin.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Https,
}

fn d(ms: u64) -> Dur {
    Dur(Duration::from_millis(ms))
}

/// `[server]`
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: OneOrMany,
    pub workers: usize,
    pub pin_workers: bool,
    pub io_driver: IoDriver,
    pub max_connections: usize,
    pub client_header_timeout: Dur,
    pub client_idle_timeout: Dur,
    pub max_request_head: Size,
    pub access_log: String,
    pub via: String,
    pub tls: Option<RawTls>,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: OneOrMany::One("0.0.0.0:8080".into()),
            workers: 0,
            pin_workers: true,
            io_driver: IoDriver::Auto,
            max_connections: 65536,
            client_header_timeout: d(10_000),
            client_idle_timeout: d(60_000),
            max_request_head: Size(32 << 10),
            access_log: String::new(),
            via: "ringfront".into(),
            tls: None,
        }
    }
}

/// `[server.tls]`
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub listen: OneOrMany,
    pub certificates: Vec<RawCertificate>,
}

/// One entry of `server.tls.certificates`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    pub names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[admin]`
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: String,
}

/// `[cache]`
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct RawCache {
    pub capacity: Size,
    pub max_object_size: Size,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            capacity: Size(256 << 20),
            max_object_size: Size(16 << 20),
        }
    }
}

/// `[[origin]]`
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawOrigin {
    pub id: String,
    pub address: String,
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
    #[serde(default)]
    pub ca_file: String,
    #[serde(default)]
    pub sni: String,
    #[serde(default)]
    pub host_header: String,
    #[serde(default = "default_attempts")]
    pub connection_attempts: u32,
    #[serde(default = "default_connection_timeout")]
    pub connection_timeout: Dur,
    #[serde(default = "default_response_timeout")]
    pub response_timeout: Dur,
    #[serde(default = "default_keepalive_timeout")]
    pub keepalive_timeout: Dur,
    #[serde(default = "default_max_idle")]
    pub max_idle_connections: usize,
}

fn default_protocol() -> Protocol {
    Protocol::Http
}
fn default_attempts() -> u32 {
    3
}
fn default_connection_timeout() -> Dur {
    d(10_000)
}
fn default_response_timeout() -> Dur {
    d(30_000)
}
fn default_keepalive_timeout() -> Dur {
    d(5_000)
}
fn default_max_idle() -> usize {
    64
}

/// `[[origin_group]]`
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    pub id: String,
    pub primary: String,
    pub secondary: String,
    #[serde(default = "default_failover_status")]
    pub failover_status: Vec<u16>,
    #[serde(default)]
    pub primary_fast_fail: bool,
    #[serde(default = "default_fast_fail_after")]
    pub fast_fail_after: u32,
    #[serde(default = "default_probe_interval")]
    pub fast_fail_probe_interval: Dur,
}

fn default_failover_status() -> Vec<u16> {
    vec![500, 502, 503, 504]
}
fn default_fast_fail_after() -> u32 {
    5
}
fn default_probe_interval() -> Dur {
    d(2_000)
}

/// `origin_request` / `origin_response` of a behavior.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawHeaderActions {
    pub set: BTreeMap<String, String>,
    pub remove: Vec<String>,
}

/// `[[behavior]]`
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawBehavior {
    pub path: String,
    pub target: String,
    #[serde(default = "default_methods")]
    pub allowed_methods: Vec<String>,
    #[serde(default = "yes")]
    pub cache: bool,
    /// true | false | a list of parameter names (checked in `policy`).
    #[serde(default)]
    pub cache_query_string: Option<toml::Value>,
    #[serde(default)]
    pub cache_key_headers: Vec<String>,
    #[serde(default)]
    pub cache_key_cookies: Vec<String>,
    /// "all" | a list of header names.
    #[serde(default)]
    pub forward_headers: Option<toml::Value>,
    /// "all" | "none" | a list of cookie names.
    #[serde(default)]
    pub forward_cookies: Option<toml::Value>,
    #[serde(default = "yes")]
    pub forward_query_string: bool,
    #[serde(default)]
    pub compress: bool,
    #[serde(default = "zero_dur")]
    pub min_ttl: Dur,
    #[serde(default = "default_ttl")]
    pub default_ttl: Dur,
    #[serde(default = "max_ttl")]
    pub max_ttl: Dur,
    #[serde(default)]
    pub origin_request: RawHeaderActions,
    #[serde(default)]
    pub origin_response: RawHeaderActions,
    #[serde(default)]
    pub viewer_response: RawHeaderActions,
}

fn default_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into()]
}
fn yes() -> bool {
    true
}
fn zero_dur() -> Dur {
    d(0)
}
fn default_ttl() -> Dur {
    d(86_400_000)
}
fn max_ttl() -> Dur {
    d(365 * 86_400_000)
}

/// `[[error_response]]`
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawErrorResponse {
    pub status: u16,
    pub file: PathBuf,
    pub response_status: Option<u16>,
    #[serde(default = "zero_dur")]
    pub min_ttl: Dur,
}

/// The whole file as written.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub admin: Option<RawAdmin>,
    pub cache: RawCache,
    pub origin: Vec<RawOrigin>,
    pub origin_group: Vec<RawGroup>,
    pub behavior: Vec<RawBehavior>,
    pub error_response: Vec<RawErrorResponse>,
    pub cluster: Option<RawCluster>,
}

/// The viewer-facing server settings, resolved.
#[derive(Debug, Clone)]
pub struct Server {
    pub listen: Vec<SocketAddr>,
    pub workers: usize,
    pub pin_workers: bool,
    pub io_driver: IoDriver,
    pub max_connections: usize,
    pub client_header_timeout: Duration,
    pub client_idle_timeout: Duration,
    pub max_request_head: usize,
    pub access_log: String,
    pub via: String,
    /// `[server.tls]`: HTTPS listeners, certificates loaded.
    pub tls: Option<ServerTls>,
}

/// `[server.tls]`, resolved: listen addresses and the viewer-side TLS config
/// (certificates read and checked against their keys at load).
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub listen: Vec<SocketAddr>,
    pub config: std::sync::Arc<rustls::ServerConfig>,
    /// Each certificate's names, in config order (the first is the default).
    pub names: Vec<Vec<String>>,
}

/// An origin, resolved.
#[derive(Debug, Clone)]
pub struct Origin {
    pub id: String,
    pub address: String,
    pub addrs: Vec<SocketAddr>,
    pub protocol: Protocol,
    /// `protocol = "https"`: the TLS config (roots, session cache) and the
    /// server name sent and verified.
    pub tls: Option<crate::tls::OriginTls>,
    /// The `host:port` text used as Host when `host_header` is set.
    pub host_header: Option<String>,
    pub connection_attempts: u32,
    pub connection_timeout: Duration,
    pub response_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub max_idle_connections: usize,
}

/// An origin group, resolved to origin indices.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub primary: usize,
    pub secondary: usize,
    pub failover_status: Vec<u16>,
    pub primary_fast_fail: bool,
    pub fast_fail_after: u32,
    pub fast_fail_probe_interval: Duration,
}

impl Group {
    pub fn fails_over_on(&self, status: u16) -> bool {
        self.failover_status.contains(&status)
    }
}

/// A custom error page, loaded.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub status: u16,
    pub file: PathBuf,
    pub body: bytes::Bytes,
    pub content_type: &'static str,
    pub response_status: u16,
    pub min_ttl: Duration,
}

/// Cache sizing.
#[derive(Debug, Clone, Copy)]
pub struct Cache {
    pub capacity: u64,
    pub max_object_size: u64,
}

/// The validated configuration the runtime runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: Server,
    pub admin: Option<SocketAddr>,
    pub cache: Cache,
    pub origins: Vec<Origin>,
    pub groups: Vec<Group>,
    pub behaviors: Vec<Behavior>,
    pub error_pages: Vec<ErrorPage>,
    /// The statuses of `error_pages`, for the attempt machine's plan.
    pub error_page_statuses: Vec<u16>,
    /// `[cluster]` (SPEC §8): the peers and the ring of their ids.
    pub cluster: Option<Cluster>,
}

impl Config {
    /// Reads and validates a config file (at most [`files::MAX_CONFIG_FILE`]).
    pub fn load(path: &Path) -> Result<Arc<Config>, Vec<ConfigError>> {
        let text = files::read_config_text(path).map_err(|message| {
            vec![ConfigError {
                key: "config".into(),
                line: None,
                message,
            }]
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_str(&text, &base).map(Arc::new)
    }

    /// Parses and validates config text; relative paths resolve against `base`.
    pub fn from_str(text: &str, base: &Path) -> Result<Config, Vec<ConfigError>> {
        let raw: RawConfig = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => return Err(vec![validate::toml_error(text, &e)]),
        };
        validate::validate(raw, text, base)
    }

    /// The peers of `[cluster]` (none without one).
    pub fn peers(&self) -> &[Peer] {
        self.cluster.as_ref().map_or(&[], |c| &c.peers)
    }

    /// The upstream ("hop") index of cluster peer `peer`: the origins come
    /// first, then the peers, so one index names either in the attempt
    /// machine, the connection pool and the metrics.
    pub fn peer_hop(&self, peer: usize) -> usize {
        self.origins.len().saturating_add(peer)
    }

    /// The peer hop `hop` names, if it names one (else it is an origin's).
    pub fn hop_peer(&self, hop: usize) -> Option<&Peer> {
        hop.checked_sub(self.origins.len()).and_then(|p| self.peers().get(p))
    }

    /// The id of hop `hop`: an origin's or a peer's ("" for none).
    pub fn hop_id(&self, hop: usize) -> &str {
        match self.origins.get(hop) {
            Some(o) => &o.id,
            None => self.hop_peer(hop).map_or("", |p| &p.id),
        }
    }

    /// The error page configured for a final status, if any.
    pub fn error_page(&self, status: u16) -> Option<&ErrorPage> {
        self.error_pages.iter().find(|p| p.status == status)
    }

    /// A human summary of the resolved configuration, for `ringfront check`.
    /// `cpus`: how many CPUs the process may run on (what `workers = 0` means).
    pub fn summary(&self, cpus: usize) -> String {
        use std::fmt::Write;
        let s = &self.server;
        let mut o = String::new();
        let listen: Vec<String> = s.listen.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(o, "server:");
        let _ = writeln!(o, "  listen = {}", listen.join(", "));
        let workers = if s.workers == 0 {
            format!("0 (one per allowed CPU: {})", cpus)
        } else {
            s.workers.to_string()
        };
        let _ = writeln!(
            o,
            "  workers = {workers}, pin_workers = {}, io_driver = {:?}",
            s.pin_workers, s.io_driver
        );
        let _ = writeln!(
            o,
            "  max_connections = {}, client_header_timeout = {}, client_idle_timeout = {}, max_request_head = {}",
            s.max_connections,
            Dur(s.client_header_timeout),
            Dur(s.client_idle_timeout),
            Size(s.max_request_head as u64)
        );
        let log = match s.access_log.as_str() {
            "" => "off",
            "-" => "stderr",
            p => p,
        };
        let _ = writeln!(o, "  access_log = {log}, via = {}", s.via);
        if let Some(t) = &s.tls {
            let listen: Vec<String> = t.listen.iter().map(|a| a.to_string()).collect();
            let names: Vec<String> = t.names.iter().map(|n| format!("[{}]", n.join(", "))).collect();
            let _ = writeln!(
                o,
                "  tls: listen = {}, certificates = {} (the first is the default)",
                listen.join(", "),
                names.join(" ")
            );
        }
        match self.admin {
            Some(a) => {
                let _ = writeln!(o, "admin: listen = {a}");
            }
            None => {
                let _ = writeln!(o, "admin: off");
            }
        }
        let _ = writeln!(
            o,
            "cache: capacity = {}, max_object_size = {}",
            Size(self.cache.capacity),
            Size(self.cache.max_object_size)
        );
        for org in &self.origins {
            let addrs: Vec<String> = org.addrs.iter().map(|a| a.to_string()).collect();
            let sni = org
                .tls
                .as_ref()
                .map_or(String::new(), |t| format!(" sni {:?}", t.name.to_str()));
            let _ = writeln!(
                o,
                "origin {:?}: {} ({}) {:?}{sni}, attempts = {} x {}, response_timeout = {}, keepalive = {}, max_idle = {}",
                org.id,
                org.address,
                addrs.join(", "),
                org.protocol,
                org.connection_attempts,
                Dur(org.connection_timeout),
                Dur(org.response_timeout),
                Dur(org.keepalive_timeout),
                org.max_idle_connections
            );
        }
        for g in &self.groups {
            let _ = writeln!(
                o,
                "origin_group {:?}: primary = {:?}, secondary = {:?}, failover_status = {:?}, primary_fast_fail = {}",
                g.id, self.origins[g.primary].id, self.origins[g.secondary].id, g.failover_status, g.primary_fast_fail
            );
        }
        for b in &self.behaviors {
            let target = match b.target {
                Target::Origin(i) => format!("origin {:?}", self.origins[i].id),
                Target::Group(i) => format!("origin_group {:?}", self.groups[i].id),
            };
            let _ = writeln!(
                o,
                "behavior {:?} -> {target}, methods = {}, cache = {}, ttl = {}/{}/{}",
                b.path,
                b.allowed_methods.join(","),
                b.cache,
                Dur(b.min_ttl),
                Dur(b.default_ttl),
                Dur(b.max_ttl)
            );
            if let Some(p) = policy::describe(b) {
                let _ = writeln!(o, "  {p}");
            }
        }
        for p in &self.error_pages {
            let _ = writeln!(
                o,
                "error_response {} -> {} from {} ({} bytes), min_ttl = {}",
                p.status,
                p.response_status,
                p.file.display(),
                p.body.len(),
                Dur(p.min_ttl)
            );
        }
        if let Some(c) = &self.cluster {
            o.push_str(&cluster::describe(c, &s.via));
        }
        o
    }

    /// Picks the first behavior whose pattern matches `path` (without query).
    pub fn behavior_for(&self, path: &[u8]) -> &Behavior {
        self.behaviors
            .iter()
            .find(|b| b.pattern.matches(path))
            .unwrap_or_else(|| &self.behaviors[self.behaviors.len() - 1])
    }
}
