//! SIGHUP reloads the config: a valid one applies to new requests without
//! dropping connections or the cache; an invalid one is logged and ignored.
mod common;
use common::*;

fn config(a: std::net::SocketAddr, b: std::net::SocketAddr, x_target: &str, extra_server: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
workers = 1
pin_workers = false
{extra_server}
[[origin]]
id = "a"
address = "{a}"
[[origin]]
id = "b"
address = "{b}"
[[behavior]]
path = "/x/*"
target = "{x_target}"
cache = false
[[behavior]]
path = "*"
target = "a"
"#
    )
}

#[test]
fn sighup_applies_a_new_config_to_new_requests_keeping_connections_and_the_cache() {
    let a = SampleOrigin::start("127.0.0.1:0", "a").unwrap();
    let b = SampleOrigin::start("127.0.0.1:0", "b").unwrap();
    let p = Proxy::start(&config(a.addr(), b.addr(), "a", ""));
    let mut c = p.client();
    assert_eq!(
        c.get("/cached?size=10&cc=max-age=600").header("x-cache"),
        Some("Miss from ringfront")
    );
    assert_eq!(
        c.get("/cached?size=10&cc=max-age=600").header("x-cache"),
        Some("Hit from ringfront")
    );
    assert_eq!(c.get("/x/1").header("x-origin"), Some("a"));
    // Parked connections come back on the new config too.
    let mut idle = p.client();
    assert_eq!(idle.get("/x/idle").header("x-origin"), Some("a"));

    std::fs::write(&p.config_path, config(a.addr(), b.addr(), "b", "")).unwrap();
    p.hup();
    // The same keep-alive connection moves to the new routes.
    eventually("the new route applies", || {
        c.get("/x/2").header("x-origin") == Some("b")
    });
    // The new config may reach the workers before the line is written.
    eventually("the reload is logged", || p.log_text().contains("reloaded"));
    // The cache survived the reload.
    assert_eq!(
        c.get("/cached?size=10&cc=max-age=600").header("x-cache"),
        Some("Hit from ringfront")
    );
    assert_eq!(idle.get("/x/3").header("x-origin"), Some("b"));
    assert_eq!(b.requests(), 2);
}

#[test]
fn an_invalid_config_on_sighup_is_logged_and_ignored() {
    let a = SampleOrigin::start("127.0.0.1:0", "a").unwrap();
    let b = SampleOrigin::start("127.0.0.1:0", "b").unwrap();
    let p = Proxy::start(&config(a.addr(), b.addr(), "a", ""));
    let mut c = p.client();
    assert_eq!(c.get("/x/1").header("x-origin"), Some("a"));
    std::fs::write(&p.config_path, config(a.addr(), b.addr(), "b", "bogus_key = 1")).unwrap();
    p.hup();
    eventually("the failed reload is logged", || p.log_text().contains("reload failed"));
    assert!(p.log_text().contains("server.bogus_key"), "{}", p.log_text());
    assert_eq!(c.get("/x/2").header("x-origin"), Some("a"));
    // A later valid file applies.
    std::fs::write(&p.config_path, config(a.addr(), b.addr(), "b", "")).unwrap();
    p.hup();
    eventually("the new route applies", || {
        c.get("/x/3").header("x-origin") == Some("b")
    });
}

#[test]
fn settings_that_need_a_restart_are_named_and_keep_their_values() {
    let a = SampleOrigin::start("127.0.0.1:0", "a").unwrap();
    let b = SampleOrigin::start("127.0.0.1:0", "b").unwrap();
    let p = Proxy::start(&config(a.addr(), b.addr(), "a", ""));
    let text = config(a.addr(), b.addr(), "b", "").replace("workers = 1", "workers = 2");
    std::fs::write(&p.config_path, text).unwrap();
    p.hup();
    eventually("the warning is logged", || {
        p.log_text().contains("server.workers changed")
    });
    let mut c = p.client();
    eventually("the rest applies", || c.get("/x/1").header("x-origin") == Some("b"));
    assert_eq!(p.log_text().matches("worker 1:").count(), 0, "a second worker started");
}

/// A reload that moves an origin to another address closes the connections
/// pooled to the old one (they are not kept for requests that will never
/// come), and new requests use the new address.
#[test]
fn a_reload_that_moves_an_origin_closes_its_old_pooled_connections() {
    let a = SampleOrigin::start("127.0.0.1:0", "a").unwrap();
    let b = SampleOrigin::start("127.0.0.1:0", "b").unwrap();
    let c2 = SampleOrigin::start("127.0.0.1:0", "c").unwrap();
    let p = Proxy::start(&config(a.addr(), b.addr(), "a", ""));
    let mut c = p.client();
    assert_eq!(c.get("/x/1").header("x-origin"), Some("a"));
    let before = p.fd_count(); // viewer + one pooled connection to a
    std::fs::write(&p.config_path, config(c2.addr(), b.addr(), "a", "")).unwrap();
    p.hup();
    eventually("origin a now lives at c's address", || {
        c.get("/x/2").header("x-origin") == Some("c")
    });
    // The connection pooled to the old address is gone; one to c replaced it.
    eventually("the old pooled connection is closed", || p.fd_count() == before);
}
