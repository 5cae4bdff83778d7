//! Per-attempt hooks: the config header actions with placeholders, and the
//! code hooks trait, each running once per attempt (twice on failover).
mod common;
use common::*;
use ringfront::config::Config;
use ringfront::proxy::hooks::{AttemptInfo, HeaderLines, OriginHooks};
use std::sync::{Arc, Mutex};

#[test]
fn header_actions_run_per_attempt_with_placeholders() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let cfg = config(&[("primary", p.addr()), ("secondary", s.addr())], "site", GROUP).replace(
        "allowed_methods",
        "origin_request = { set = { \"x-try\" = \"{attempt}/{role}/{origin}\" }, remove = [\"cookie\"] }\n\
         origin_response = { set = { \"x-served-by\" = \"{origin}\" }, remove = [\"server\"] }\nallowed_methods",
    );
    let px = Proxy::start(&cfg);
    let mut c = px.client();
    c.send(b"GET /h?primary.status=503 HTTP/1.1\r\nHost: t\r\nCookie: secret=1\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("x-origin"), Some("secondary"));
    assert_eq!(r.header("x-served-by"), Some("secondary"));
    assert!(!r.has_header("server"), "origin_response remove");
    let ph = p.control().heads();
    let sh = s.control().heads();
    assert_eq!((ph.len(), sh.len()), (1, 1));
    assert!(ph[0].contains("x-try: 1/primary/primary\r\n"), "{}", ph[0]);
    assert!(sh[0].contains("x-try: 2/secondary/secondary\r\n"), "{}", sh[0]);
    assert!(!ph[0].to_ascii_lowercase().contains("cookie"));
    assert!(!sh[0].to_ascii_lowercase().contains("cookie"));
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl OriginHooks for Recorder {
    fn origin_request(&self, a: &AttemptInfo<'_>, h: &mut HeaderLines<'_>) {
        self.calls.lock().unwrap().push(format!(
            "request {} {} {} {}",
            a.attempt,
            a.origin,
            a.role.as_str(),
            String::from_utf8_lossy(a.path)
        ));
        assert!(h.add("x-hook", &format!("{}", a.attempt)));
    }
    fn origin_response(&self, a: &AttemptInfo<'_>, status: u16, h: &mut HeaderLines<'_>) {
        self.calls
            .lock()
            .unwrap()
            .push(format!("response {} {} {}", a.attempt, a.origin, status));
        h.add("x-hook-status", &status.to_string());
    }
}

#[test]
fn code_hooks_fire_once_per_attempt_with_context() {
    let p = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let text = config(&[("primary", p.addr()), ("secondary", s.addr())], "site", GROUP);
    let cfg = Arc::new(Config::from_str(&text, std::path::Path::new(".")).unwrap());
    let rec = Arc::new(Recorder::default());
    let running = ringfront::runtime::start_with_hooks(cfg, Some(rec.clone())).unwrap();
    let mut c = Client::connect(running.addrs[0]);
    let r = c.get("/a?primary.status=502");
    assert_eq!(r.header("x-origin"), Some("secondary"));
    assert_eq!(r.header("x-hook-status"), Some("200"));
    let r = c.get("/b");
    assert_eq!(r.header("x-origin"), Some("primary"));
    running.stop();
    let calls = rec.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "request 1 primary primary /a?primary.status=502",
            "response 1 primary 502",
            "request 2 secondary secondary /a?primary.status=502",
            "response 2 secondary 200",
            "request 1 primary primary /b",
            "response 1 primary 200",
        ]
    );
    assert!(p.control().heads()[0].contains("x-hook: 1\r\n"));
    assert!(s.control().heads()[0].contains("x-hook: 2\r\n"));
}

#[test]
fn refused_connects_count_as_attempts_and_run_no_hooks() {
    let s = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let dead = refused_addr();
    let text = config(&[("primary", dead), ("secondary", s.addr())], "site", GROUP);
    let cfg = Arc::new(Config::from_str(&text, std::path::Path::new(".")).unwrap());
    let rec = Arc::new(Recorder::default());
    let running = ringfront::runtime::start_with_hooks(cfg, Some(rec.clone())).unwrap();
    let r = Client::connect(running.addrs[0]).get("/c");
    assert_eq!(r.header("x-origin"), Some("secondary"));
    running.stop();
    let calls = rec.calls.lock().unwrap().clone();
    // Two refused connects (attempts 1 and 2) never sent a request.
    assert_eq!(calls, ["request 3 secondary secondary /c", "response 3 secondary 200"]);
}
