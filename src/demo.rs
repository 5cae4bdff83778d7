//! `ringfront demo`: the embedded default.
//!
//! Starts a primary and a secondary sample origin on free loopback ports, and
//! the proxy on 127.0.0.1:8080 in front of them through an origin group, then
//! prints curl commands that show a miss, a failover and how to make the
//! primary fail. The config is the embedded text below with the two origin
//! addresses filled in, so what the demo runs is an ordinary config.

use crate::config::Config;
use crate::sample_origin::SampleOrigin;
use std::path::Path;

/// The demo's configuration; `{PRIMARY}` and `{SECONDARY}` are replaced by
/// the sample origins' addresses.
pub const DEMO_CONFIG: &str = r#"
[server]
listen = "{LISTEN}"
workers = 0
access_log = "-"

[cache]
capacity = "64MiB"

[[origin]]
id = "primary"
address = "{PRIMARY}"
connection_attempts = 2
connection_timeout = "1s"
response_timeout = "5s"

[[origin]]
id = "secondary"
address = "{SECONDARY}"
connection_attempts = 2
connection_timeout = "1s"
response_timeout = "5s"

[[origin_group]]
id = "site"
primary = "primary"
secondary = "secondary"
failover_status = [500, 502, 503, 504]

[[behavior]]
path = "/api/*"
target = "primary"
allowed_methods = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
cache = false

[[behavior]]
path = "*"
target = "site"
origin_request = { set = { "x-edge-attempt" = "{attempt}/{role}" } }
"#;

/// Builds the demo config for the given addresses.
pub fn config(listen: &str, primary: &str, secondary: &str) -> Result<Config, String> {
    let text = DEMO_CONFIG
        .replace("{LISTEN}", listen)
        .replace("{PRIMARY}", primary)
        .replace("{SECONDARY}", secondary);
    Config::from_str(&text, Path::new(".")).map_err(|e| e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; "))
}

/// Runs the demo until SIGINT/SIGTERM. `listen` is normally 127.0.0.1:8080.
pub fn run(listen: &str) -> Result<(), String> {
    crate::signals::block_stop_signals();
    let p = SampleOrigin::start("127.0.0.1:0", "primary").map_err(|e| format!("primary origin: {e}"))?;
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").map_err(|e| format!("secondary origin: {e}"))?;
    let cfg = config(listen, &p.addr().to_string(), &s.addr().to_string())?;
    let running = crate::runtime::start(std::sync::Arc::new(cfg))?;
    let a = running.addrs[0];
    let pa = p.addr();
    println!(
        r#"
ringfront demo: proxy on http://{a}
  primary origin   http://{pa}
  secondary origin http://{sa}

A miss (forwarded to the primary and stored; X-Cache and Cache-Status tell):
  curl -si http://{a}/hello
The same URL again: a hit, answered from memory (see Age):
  curl -si http://{a}/hello
Failover on status: the primary answers 503, the secondary serves it:
  curl -si 'http://{a}/hello?primary.status=503'
Failover on a timeout: the primary stalls past response_timeout (5s):
  curl -si 'http://{a}/hello?primary.fail=stall'
Make the primary refuse connections for 30 seconds, then ask for a URL not cached yet:
  curl -s 'http://{pa}/__origin/mode?set=refuse&for=30000'
  curl -si http://{a}/during-outage
A single-origin behavior (no failover), POST allowed:
  curl -si -X POST --data hello 'http://{a}/api/echo?echo=1'

Ctrl-C stops the demo.
"#,
        sa = s.addr()
    );
    crate::signals::wait_signal();
    log::info!("stopping: draining requests in flight");
    running.stop();
    Ok(())
}
