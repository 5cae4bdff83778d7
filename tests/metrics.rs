//! GET /metrics: Prometheus text that a Prometheus parser reads, with the
//! counts summed over the workers.
mod common;
use common::*;
use std::sync::Arc;

fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = s
        .samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)));
    match found.map(|x| &x.value) {
        Some(prometheus_parse::Value::Counter(v))
        | Some(prometheus_parse::Value::Gauge(v))
        | Some(prometheus_parse::Value::Untyped(v)) => *v,
        Some(prometheus_parse::Value::Histogram(h)) => h.last().map_or(0.0, |b| b.count),
        other => panic!("{name} {labels:?}: {other:?}"),
    }
}

#[test]
fn metrics_count_requests_attempts_and_failovers_and_parse_as_prometheus_text() {
    let primary = SampleOrigin::start("127.0.0.1:0", "primary").unwrap();
    let secondary = SampleOrigin::start("127.0.0.1:0", "secondary").unwrap();
    let dead = refused_addr();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
workers = 2
pin_workers = false
[admin]
listen = "127.0.0.1:0"
[[origin]]
id = "primary"
address = "{}"
[[origin]]
id = "secondary"
address = "{}"
[[origin]]
id = "dead"
address = "{dead}"
connection_attempts = 1
[[origin_group]]
id = "site"
primary = "primary"
secondary = "secondary"
failover_status = [503]
[[origin_group]]
id = "down"
primary = "dead"
secondary = "secondary"
[[behavior]]
path = "/site/*"
target = "site"
cache = false
[[behavior]]
path = "/down/*"
target = "down"
cache = false
[[behavior]]
path = "*"
target = "secondary"
"#,
        primary.addr(),
        secondary.addr()
    );
    let cfg = Arc::new(ringfront::config::Config::from_str(&text, std::path::Path::new(".")).unwrap());
    let running = ringfront::runtime::start(cfg).unwrap();
    let admin = running.admin_addr.unwrap();
    // Several connections, so both workers are likely to take some.
    for path in ["/obj?size=10&cc=max-age=60", "/obj?size=10&cc=max-age=60"] {
        assert_eq!(Client::connect(running.addrs[0]).get(path).status, 200);
    }
    let mut c = Client::connect(running.addrs[0]);
    assert_eq!(c.get("/site/a?primary.status=503").status, 200);
    assert_eq!(c.get("/down/b").status, 200);
    assert_eq!(c.get("/site/c").status, 200);
    // Both origins answer 503: two failed attempts, no "response", an Error.
    assert_eq!(c.get("/site/d?status=503").status, 503);
    let mut bad = Client::connect(running.addrs[0]);
    bad.send(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(bad.read_response(false).unwrap().status, 400);

    // A request is counted as it ends, which may be just after its response
    // reached the client: scrape until all seven are in.
    let mut body = String::new();
    eventually("all seven requests counted", || {
        body = scrape(admin);
        body.lines()
            .any(|l| l == "ringfront_requests_total{result=\"Error\"} 2")
            && body.lines().any(|l| l == "ringfront_request_duration_seconds_count 6")
    });
    let parsed = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap();
    let v = |name: &str, labels: &[(&str, &str)]| value(&parsed, name, labels);
    assert_eq!(v("ringfront_requests_total", &[("result", "Hit")]), 1.0, "{body}");
    assert_eq!(v("ringfront_requests_total", &[("result", "Miss")]), 4.0, "{body}");
    assert_eq!(v("ringfront_requests_total", &[("result", "Error")]), 2.0, "{body}");
    // The 400 had no complete head: counted, but not in the latency histogram.
    assert_eq!(v("ringfront_request_duration_seconds", &[]), 6.0, "{body}");
    assert_eq!(v("ringfront_origin_duration_seconds", &[]), 5.0, "{body}");
    let attempts = |o: &str, outcome: &str| {
        v(
            "ringfront_origin_attempts_total",
            &[("origin", o), ("outcome", outcome)],
        )
    };
    assert_eq!(attempts("primary", "http_response_status"), 2.0, "{body}");
    assert_eq!(attempts("secondary", "http_response_status"), 1.0, "{body}");
    assert_eq!(attempts("primary", "response"), 1.0, "{body}");
    assert_eq!(attempts("dead", "connection_refused"), 1.0, "{body}");
    assert_eq!(attempts("secondary", "response"), 3.0, "{body}");
    let failovers = |g: &str, reason: &str| v("ringfront_failovers_total", &[("group", g), ("reason", reason)]);
    assert_eq!(failovers("site", "status"), 2.0, "{body}");
    assert_eq!(failovers("site", "connect"), 0.0, "{body}");
    assert_eq!(failovers("down", "connect"), 1.0, "{body}");
    assert_eq!(v("ringfront_cache_objects", &[]), 1.0, "{body}");
    assert!(v("ringfront_cache_bytes", &[]) > 10.0, "{body}");
    assert_eq!(v("ringfront_cache_evictions_total", &[]), 0.0, "{body}");
    // The keep-alive client `c` is still open.
    assert!(v("ringfront_connections_open", &[]) >= 1.0, "{body}");
    // Every family has HELP and TYPE.
    for family in [
        "ringfront_requests_total",
        "ringfront_origin_attempts_total",
        "ringfront_failovers_total",
        "ringfront_connections_parked",
        "ringfront_pool_idle_connections",
    ] {
        assert!(body.contains(&format!("# HELP {family} ")), "{family}");
        assert!(body.contains(&format!("# TYPE {family} ")), "{family}");
    }
    drop(c);
}
