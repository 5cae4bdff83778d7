//! Custom error pages (`[[error_response]]`) with origin failover: the page
//! replaces the final status from either origin, or ringfront's own 502/504,
//! and is served from memory even when both origins are down.
mod common;
use common::*;

fn proxy(p: &SampleOrigin, s: &SampleOrigin) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("errors")).unwrap();
    std::fs::write(dir.path().join("errors/404.html"), "<h1>not here</h1>\n").unwrap();
    std::fs::write(dir.path().join("errors/502.html"), "<h1>we are down</h1>\n").unwrap();
    std::fs::write(dir.path().join("errors/503.json"), "{\"error\":\"busy\"}").unwrap();
    let pages = r#"
[[error_response]]
status = 404
file = "errors/404.html"

[[error_response]]
status = 502
file = "errors/502.html"
response_status = 503

[[error_response]]
status = 503
file = "errors/503.json"
"#;
    let cfg = config(
        &[("primary", p.addr()), ("secondary", s.addr())],
        "site",
        &format!("{GROUP}{pages}"),
    );
    Proxy::start_in(&cfg, dir)
}

#[test]
fn page_for_the_primarys_non_failover_status() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let px = proxy(&p, &s);
    let r = px.client().get("/missing?primary.status=404");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "<h1>not here</h1>\n");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("x-cache"), Some("Error from ringfront"));
    assert_eq!(s.requests(), 0, "404 is not a failover status");
}

#[test]
fn page_for_the_secondarys_status() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let px = proxy(&p, &s);
    let r = px.client().get("/busy?status=503");
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "{\"error\":\"busy\"}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!((p.requests(), s.requests()), (1, 1));
}

#[test]
fn page_for_502_when_both_origins_are_down_with_response_status() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let px = proxy(&p, &s);
    p.set_mode(Mode::Refuse);
    s.set_mode(Mode::Refuse);
    let mut c = px.client();
    for _ in 0..3 {
        let r = c.get("/down");
        assert_eq!(r.status, 503, "response_status maps 502 to 503");
        assert_eq!(r.text(), "<h1>we are down</h1>\n");
        assert!(r.header("proxy-status").unwrap().contains("connection_refused"));
    }
}

#[test]
fn check_fails_when_a_page_file_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let cfg = config(
        &[("o", "127.0.0.1:9".parse().unwrap())],
        "o",
        "\n[[error_response]]\nstatus = 500\nfile = \"nope.html\"\n",
    );
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringfront"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error_response[0].file"));
}

#[test]
fn error_pages_are_cached_for_their_min_ttl() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("404.html"), "<h1>gone</h1>\n").unwrap();
    let cfg = config(
        &[("o", o.addr())],
        "o",
        "\n[[error_response]]\nstatus = 404\nfile = \"404.html\"\nmin_ttl = \"30s\"\n",
    )
    .replace("cache = false\n", "cache = true\n");
    let p = Proxy::start_in(&cfg, dir);
    let mut c = p.client();
    let first = c.get("/missing?status=404");
    assert_eq!((first.status, first.text().as_str()), (404, "<h1>gone</h1>\n"));
    let second = c.get("/missing?status=404");
    assert_eq!(second.status, 404);
    assert_eq!(second.text(), "<h1>gone</h1>\n");
    assert_eq!(second.header("x-cache"), Some("Hit from ringfront"));
    assert_eq!(o.requests(), 1);
}
