//! The namespace topology of issue 15 (`tests/common/netns.rs`) does what
//! the cluster tests rely on: new connections to the anycast VIP spread
//! over the three edges, every host reaches every other by its own
//! address, commands run inside a namespace, and the namespaces are gone
//! when the test ends, on a panic too. Skipped where namespaces cannot be
//! made (not root).
mod common;
use common::netns::{Topology, VIP};
use common::WAIT;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;

/// Answers every connection with its name and closes it, until dropped.
struct NameServer {
    fd: i32,
    thread: Option<JoinHandle<()>>,
}

impl NameServer {
    fn start(listener: TcpListener, name: String) -> NameServer {
        let fd = listener.as_raw_fd();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(mut c) => {
                        let _ = c.write_all(name.as_bytes());
                    }
                    Err(_) => break,
                }
            }
        });
        NameServer {
            fd,
            thread: Some(thread),
        }
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        // SAFETY: the listener is open until its thread ends, which is after
        // this shutdown wakes its accept with an error.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects to `to` and reads the name the server there answers with.
fn name_at(to: SocketAddr) -> String {
    let mut s = TcpStream::connect_timeout(&to, WAIT).unwrap_or_else(|e| panic!("connect {to}: {e}"));
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut name = String::new();
    s.read_to_string(&mut name)
        .unwrap_or_else(|e| panic!("read from {to}: {e}"));
    name
}

#[test]
fn new_connections_to_the_vip_reach_all_three_edges() {
    let Some(t) = Topology::or_skip("new_connections_to_the_vip_reach_all_three_edges") else {
        return;
    };
    // The first edge picks a free port; the others hold the VIP on the same.
    let first = t.run_in(&t.edges[0], || TcpListener::bind((VIP, 0)).expect("bind the VIP"));
    let port = first.local_addr().unwrap().port();
    let mut servers = vec![NameServer::start(first, t.edges[0].role.to_string())];
    for e in &t.edges[1..] {
        let l = t.run_in(e, || TcpListener::bind((VIP, port)).expect("bind the VIP"));
        servers.push(NameServer::start(l, e.role.to_string()));
    }
    let vip = SocketAddr::new(IpAddr::V4(VIP), port);
    let answers: Vec<String> = t.run_in(&t.client, || (0..60).map(|_| name_at(vip)).collect());
    let count = |role: &str| answers.iter().filter(|a| *a == role).count();
    let counts: Vec<(&str, usize)> = t.edges.iter().map(|e| (e.role, count(e.role))).collect();
    eprintln!("60 connections to {vip}: {counts:?}");
    assert_eq!(counts.iter().map(|c| c.1).sum::<usize>(), 60, "{answers:?}");
    for (role, n) in &counts {
        assert!(*n > 0, "no connection reached {role}: {counts:?}");
    }
    drop(servers);
}

#[test]
fn every_host_reaches_every_other_by_its_own_address() {
    let Some(t) = Topology::or_skip("every_host_reaches_every_other_by_its_own_address") else {
        return;
    };
    let hosts: Vec<_> = t.all().filter(|n| n.role != "router").collect();
    let mut targets = Vec::new();
    let mut servers = Vec::new();
    for n in &hosts {
        let mut addrs = vec![(n.addr, n.role.to_string())];
        if n.role == "origin" {
            addrs.push((t.origin_secondary, "origin-secondary".to_string()));
        }
        for (addr, name) in addrs {
            let l = t.run_in(n, || TcpListener::bind((addr, 0)).expect("bind"));
            targets.push((l.local_addr().unwrap(), name.clone()));
            servers.push(NameServer::start(l, name));
        }
    }
    for from in &hosts {
        let got: Vec<String> = t.run_in(from, || targets.iter().map(|(a, _)| name_at(*a)).collect());
        let want: Vec<String> = targets.iter().map(|(_, n)| n.clone()).collect();
        assert_eq!(got, want, "from {}", from.role);
    }
}

#[test]
fn commands_run_inside_a_namespace() {
    let policy = "/proc/sys/net/ipv4/fib_multipath_hash_policy";
    let host_policy = std::fs::read_to_string(policy).ok();
    let Some(t) = Topology::or_skip("commands_run_inside_a_namespace") else {
        return;
    };
    // The router's settings are its own; the host's are untouched.
    let out = t.command(&t.router, "cat").arg(policy).output().expect("run cat");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert_eq!(std::fs::read_to_string(policy).ok(), host_policy);
    let addrs = |role: &str| {
        let ns = t.ns(role).expect("a role");
        let out = t
            .command(ns, "ip")
            .args(["-4", "-o", "addr", "show"])
            .output()
            .expect("run ip");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let edge = addrs("edge-b");
    assert!(edge.contains(&format!("{VIP}/32")), "{edge}");
    assert!(edge.contains("198.18.12.2/24"), "{edge}");
    assert!(edge.contains("127.0.0.1/8"), "loopback is up: {edge}");
    let origin = addrs("origin");
    assert!(
        origin.contains("198.18.2.2/24") && origin.contains("198.18.2.3/24"),
        "{origin}"
    );
    assert!(!addrs("client").contains(&VIP.to_string()));
}

#[test]
fn the_namespaces_are_deleted_when_the_test_ends_even_on_a_panic() {
    let Some(t) = Topology::or_skip("the_namespaces_are_deleted_when_the_test_ends_even_on_a_panic") else {
        return;
    };
    let names: Vec<String> = t.all().map(|n| n.name.clone()).collect();
    assert_eq!(names.len(), 7);
    let exists = |n: &String| std::path::Path::new(&format!("/run/netns/{n}")).exists();
    assert!(names.iter().all(exists));
    drop(t);
    assert!(!names.iter().any(exists), "left behind: {names:?}");

    let made = std::sync::Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(|| {
        let t = Topology::up().expect("namespaces");
        *made.lock().unwrap() = t.all().map(|n| n.name.clone()).collect::<Vec<_>>();
        panic!("a failing test");
    });
    assert!(r.is_err());
    let made = made.into_inner().unwrap();
    assert_eq!(made.len(), 7);
    assert!(!made.iter().any(exists), "left behind after a panic: {made:?}");
}

#[test]
fn namespaces_left_by_a_killed_run_are_swept() {
    // Only root can make namespaces; elsewhere or_skip says so.
    if Topology::or_skip("namespaces_left_by_a_killed_run_are_swept").is_none() {
        return;
    }
    // A process that has exited: its pid names a run that is gone.
    let mut gone = std::process::Command::new("true").spawn().expect("spawn true");
    let pid = gone.id();
    gone.wait().unwrap();
    let stale = format!("rfnet{pid}x0-router");
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .unwrap();
    assert!(ok.success());
    let t = Topology::up().expect("namespaces");
    let there = std::path::Path::new(&format!("/run/netns/{stale}")).exists();
    if there {
        // Never leave it behind, whatever the assertion says.
        let _ = std::process::Command::new("ip").args(["netns", "del", &stale]).status();
    }
    assert!(!there, "{stale} was not swept");
    drop(t);
}
