//! The access log (SPEC §7): one tab-separated line per request with the
//! right result and detailed result.
mod common;
use common::*;

#[test]
fn lines_carry_result_types() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let cfg = config(&[("primary", p.addr()), ("secondary", s.addr())], "site", GROUP)
        .replace(
            "pin_workers = false\n",
            "pin_workers = false\naccess_log = \"access.log\"\n",
        )
        .replace("response_timeout = \"20s\"", "response_timeout = \"300ms\"")
        .replace(
            "[[behavior]]\npath = \"*\"",
            "[[behavior]]\npath = \"/ro/*\"\ntarget = \"site\"\n\n[[behavior]]\npath = \"*\"",
        );
    let mut px = Proxy::start_in(&cfg, dir);
    let mut c = px.client();
    c.get("/ok?size=10");
    c.get("/fo?primary.status=503");
    c.get("/nf?primary.status=404");
    c.get("/slow?fail=stall");
    c.send(b"POST /ro/x HTTP/1.1\r\nHost: t\r\n\r\n");
    c.read_response(false).unwrap();
    let mut bad = px.client();
    bad.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    bad.read_response(false).unwrap();
    p.set_mode(Mode::Refuse);
    s.set_mode(Mode::Refuse);
    px.client().get("/down");
    // Stopping flushes the log.
    assert!(px.terminate().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert!(lines.iter().all(|f| f.len() == 13), "{text}");
    let find = |path: &str| {
        lines
            .iter()
            .find(|f| f[4].starts_with(path))
            .unwrap_or_else(|| panic!("no line for {path}: {text}"))
            .clone()
    };
    let ok = find("/ok");
    assert_eq!(&ok[2..4], ["GET", "test"]);
    assert_eq!(&ok[5..11], ["200", ok[6], "Miss", "Miss", "primary", "1"]);
    assert!(ok[6].parse::<u64>().unwrap() > 10);
    assert!(ok[0].ends_with('Z') && ok[1].starts_with("127.0.0.1:"));
    let fo = find("/fo");
    assert_eq!(&fo[5..11], ["200", fo[6], "Miss", "Miss", "secondary", "2"]);
    let nf = find("/nf");
    assert_eq!(&nf[5..11], ["404", nf[6], "Error", "OriginStatus", "primary", "1"]);
    let slow = find("/slow");
    assert_eq!(
        &slow[5..11],
        ["504", slow[6], "Error", "OriginReadTimeout", "secondary", "2"]
    );
    let ro = find("/ro/x");
    assert_eq!(&ro[5..10], ["403", ro[6], "Error", "ClientError", "-"]);
    let down = find("/down");
    assert_eq!(
        &down[5..11],
        ["502", down[6], "Error", "OriginConnectError", "secondary", "4"]
    );
    let client_err = lines.iter().find(|f| f[5] == "400").expect("400 line");
    assert_eq!(&client_err[7..9], ["Error", "ClientError"]);
}

/// Cache results in the log: a miss, a hit, and a revalidated stale object
/// (RefreshHit, SPEC §7).
#[test]
fn cache_results_are_logged_as_miss_hit_and_refresh_hit() {
    let o = SampleOrigin::start("127.0.0.1:0", "o").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let cfg = config(&[("o", o.addr())], "o", "")
        .replace(
            "pin_workers = false\n",
            "pin_workers = false\naccess_log = \"access.log\"\n",
        )
        .replace("cache = false\n", "cache = true\n");
    let mut px = Proxy::start_in(&cfg, dir);
    let mut c = px.client();
    let url = "/rv?size=100&etag=v1&cc=max-age=1";
    assert_eq!(c.get(url).header("x-cache"), Some("Miss from ringfront"));
    assert_eq!(c.get(url).header("x-cache"), Some("Hit from ringfront"));
    let t0 = std::time::Instant::now();
    eventually("the object goes stale", || {
        t0.elapsed() > std::time::Duration::from_millis(1100)
    });
    assert_eq!(c.get(url).header("x-cache"), Some("RefreshHit from ringfront"));
    assert!(px.terminate().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    let results: Vec<(&str, &str)> = text
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .map(|f| (f[7], f[8]))
        .collect();
    assert_eq!(
        results,
        [("Miss", "Miss"), ("Hit", "Hit"), ("RefreshHit", "RefreshHit")],
        "{text}"
    );
}
