//! A cluster topology in network namespaces (issue 15), made and removed by
//! the test that uses it.
//!
//! ```text
//!   client ──┐                  ┌── edge-a ┐
//!   origin ──┼── router (ECMP) ─┼── edge-b ├─ each holds the VIP on lo
//!   shield ──┘                  └── edge-c ┘
//! ```
//!
//! Every namespace is linked to the router by a veth pair (`eth0` inside,
//! `r-<role>` in the router) on a /24 of its own in 198.18.0.0/15 (RFC 2544,
//! the benchmarking range), the namespace `.2`, the router `.1`, and routes
//! by default through the router. The router reaches the anycast VIP by an
//! ECMP route over the three edges and hashes on ports
//! (`fib_multipath_hash_policy = 1`), so new connections from the client
//! spread over the edges as an L4 layer of anycast routes spreads them. The
//! origin namespace holds two addresses, one for a primary and one for a
//! secondary. Nothing is linked to the host's own namespace: no packet of a
//! test leaves the namespaces it made.
//!
//! Names carry a prefix unique to the process and the topology
//! (`rfnet<pid>x<n>-`), so tests and test binaries run in parallel; [`Drop`]
//! deletes the namespaces, on a panic too, and [`Topology::up`] first deletes
//! those of earlier runs whose process is gone (a run killed mid-test).
//!
//! It needs root and iproute2; where namespaces cannot be made,
//! [`Topology::up`] says why and a test skips with [`Topology::or_skip`].

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The anycast address the edges share.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 100, 1);

/// One namespace of the topology.
#[derive(Debug, Clone)]
pub struct Ns {
    /// The namespace's name (`ip netns exec NAME`, `/run/netns/NAME`).
    pub name: String,
    /// Its role: client, router, edge-a, edge-b, edge-c, origin, shield.
    pub role: &'static str,
    /// Its own address on its link (the router's side: `.1`).
    pub addr: Ipv4Addr,
}

/// The namespaces of one test, deleted on drop.
pub struct Topology {
    pub client: Ns,
    pub router: Ns,
    pub edges: [Ns; 3],
    /// `addr` is the primary's address; see [`Topology::origin_secondary`].
    pub origin: Ns,
    pub shield: Ns,
    /// The origin namespace's second address, for a secondary origin.
    pub origin_secondary: Ipv4Addr,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Prefix of every namespace this harness makes.
const TAG: &str = "rfnet";

/// Each role and the third octet of its /24 (198.18.N.0/24).
const ROLES: [(&str, u8); 7] = [
    ("router", 0),
    ("client", 1),
    ("origin", 2),
    ("shield", 3),
    ("edge-a", 11),
    ("edge-b", 12),
    ("edge-c", 13),
];

impl Topology {
    /// Makes the topology; `Err` says why namespaces are unavailable here
    /// (not root, no `ip`, no permission). A failure after the first
    /// namespace was made panics (and what was made is deleted).
    pub fn up() -> Result<Topology, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("network namespaces need root".into());
        }
        sweep_stale();
        let prefix = format!("{TAG}{}x{}-", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let ns = |role: &'static str| {
            let octet = ROLES.iter().find(|r| r.0 == role).map_or(0, |r| r.1);
            let last = if role == "router" { 1 } else { 2 };
            Ns {
                name: format!("{prefix}{role}"),
                role,
                addr: Ipv4Addr::new(198, 18, octet, last),
            }
        };
        let t = Topology {
            client: ns("client"),
            router: ns("router"),
            edges: [ns("edge-a"), ns("edge-b"), ns("edge-c")],
            origin: ns("origin"),
            shield: ns("shield"),
            origin_secondary: Ipv4Addr::new(198, 18, 2, 3),
        };
        // The first namespace tells whether namespaces can be made at all.
        ip(&["netns", "add", &t.router.name]).map_err(|e| format!("`ip netns add` failed: {e}"))?;
        // From here on `t` is dropped (and its namespaces deleted) on a panic.
        t.build();
        Ok(t)
    }

    /// [`Topology::up`], or `None` after printing why the test is skipped.
    pub fn or_skip(test: &str) -> Option<Topology> {
        match Topology::up() {
            Ok(t) => Some(t),
            Err(why) => {
                eprintln!(
                    "SKIPPED {test}: network namespaces unavailable ({why}); run the tests as root with iproute2"
                );
                None
            }
        }
    }

    fn build(&self) {
        let r = &self.router.name;
        must(&["-n", r, "link", "set", "lo", "up"]);
        for n in self.all().filter(|n| n.role != "router") {
            must(&["netns", "add", &n.name]);
            must(&["-n", &n.name, "link", "set", "lo", "up"]);
            let rif = format!("r-{}", n.role);
            must(&[
                "-n", r, "link", "add", &rif, "type", "veth", "peer", "name", "eth0", "netns", &n.name,
            ]);
            let [a, b, c, _] = n.addr.octets();
            let gw = Ipv4Addr::new(a, b, c, 1);
            must(&["-n", r, "addr", "add", &format!("{gw}/24"), "dev", &rif]);
            must(&["-n", r, "link", "set", &rif, "up"]);
            must(&["-n", &n.name, "addr", "add", &format!("{}/24", n.addr), "dev", "eth0"]);
            must(&["-n", &n.name, "link", "set", "eth0", "up"]);
            must(&["-n", &n.name, "route", "add", "default", "via", &gw.to_string()]);
        }
        let o = &self.origin.name;
        must(&[
            "-n",
            o,
            "addr",
            "add",
            &format!("{}/24", self.origin_secondary),
            "dev",
            "eth0",
        ]);
        for e in &self.edges {
            must(&["-n", &e.name, "addr", "add", &format!("{VIP}/32"), "dev", "lo"]);
        }
        let route = self.vip_route("add", &self.edges.iter().collect::<Vec<_>>());
        must(&route.iter().map(String::as_str).collect::<Vec<_>>());
        // Forward; hash on L4 ports so connections spread; replies from
        // the VIP come back over any edge's link, so no reverse-path filter.
        for (key, value) in [
            ("ipv4/ip_forward", "1"),
            ("ipv4/fib_multipath_hash_policy", "1"),
            ("ipv4/conf/all/rp_filter", "0"),
            ("ipv4/conf/default/rp_filter", "0"),
        ] {
            // /proc/sys/net is the opening thread's namespace's.
            let path = format!("/proc/sys/net/{key}");
            self.run_in(&self.router, || std::fs::write(&path, value))
                .unwrap_or_else(|e| panic!("{path} in the router: {e}"));
        }
    }

    /// `ip` arguments that set the router's ECMP route to the VIP over
    /// `edges` (`verb`: add, replace).
    fn vip_route(&self, verb: &str, edges: &[&Ns]) -> Vec<String> {
        let mut route: Vec<String> = ["-n", &self.router.name, "route", verb, &format!("{VIP}/32")]
            .map(String::from)
            .to_vec();
        for e in edges {
            route.extend(["nexthop".into(), "via".into(), e.addr.to_string()]);
            route.extend(["dev".into(), format!("r-{}", e.role)]);
        }
        route
    }

    /// Takes `edge` out of the VIP's ECMP route, as its BGP speaker would
    /// withdraw the route when the host goes down: new connections to the
    /// VIP reach the other edges only.
    pub fn withdraw(&self, edge: &Ns) {
        let rest: Vec<&Ns> = self.edges.iter().filter(|e| e.name != edge.name).collect();
        let args = self.vip_route("replace", &rest);
        must(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Makes `ns` a dead host: packets it would send to the other
    /// namespaces are dropped, so connects to it time out instead of being
    /// refused (a host gone, not a process).
    pub fn blackhole(&self, ns: &Ns) {
        must(&["-n", &ns.name, "route", "add", "blackhole", "198.18.0.0/15"]);
    }

    /// Every namespace, the router first.
    pub fn all(&self) -> impl Iterator<Item = &Ns> {
        [&self.router, &self.client, &self.origin, &self.shield]
            .into_iter()
            .chain(self.edges.iter())
    }

    /// The namespace of a role (`"edge-b"`).
    pub fn ns(&self, role: &str) -> Option<&Ns> {
        self.all().find(|n| n.role == role)
    }

    /// `program` to be run inside `ns` (`ip netns exec NAME program`); add
    /// arguments and spawn it as usual. The caller owns the child: kill it
    /// before the topology drops, or the namespace lives on until it exits.
    pub fn command(&self, ns: &Ns, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &ns.name, program]);
        c
    }

    /// Runs `f` on a thread that has entered `ns`: sockets it makes (a
    /// listener, a client connection) belong to that namespace for good,
    /// whichever thread uses them afterwards.
    pub fn run_in<T: Send>(&self, ns: &Ns, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                enter(&ns.name);
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for n in self.all() {
            let _ = ip(&["netns", "del", &n.name]);
        }
    }
}

/// Moves the calling thread into the named namespace.
fn enter(name: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{name}")).expect("open the namespace");
    // SAFETY: a valid descriptor of a network namespace; setns changes only
    // the calling thread's namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

/// Runs `ip ARGS`; `Err` with its stderr when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = ip(args) {
        panic!("building the namespace topology: {e}");
    }
}

/// Deletes namespaces of this harness left by processes that are gone.
fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(TAG)
            .and_then(|rest| rest.split('x').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", &name]);
        }
    }
}
