//! `ringfront check`: valid configs print a summary; each kind of error is
//! reported on one line naming the key, with exit status 2.
mod common;
use common::*;

fn check(text: &str) -> (i32, String, String) {
    check_config(text, &[])
}

const GOOD: &str = r#"[server]
listen = "127.0.0.1:8080"

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
path = "*"
target = "site"
"#;

fn one_error(text: &str, key: &str) -> String {
    one_error_with(text, &[], key)
}

#[test]
fn good_config_prints_summary() {
    let (code, out, err) = check(GOOD);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("origin_group \"site\": primary = \"primary\", secondary = \"secondary\""),
        "{out}"
    );
    assert!(out.contains("attempts = 3 x 10s"), "{out}");
    assert!(out.contains("config ok"));
}

#[test]
fn unknown_key() {
    let line = one_error(
        &GOOD.replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:8080\"\nlisen = 1"),
        "server.lisen",
    );
    assert!(line.contains("line 3"), "{line}");
}

#[test]
fn duplicate_id() {
    let line = one_error(
        &GOOD
            .replace("id = \"site\"", "id = \"primary\"")
            .replace("target = \"site\"", "target = \"primary\""),
        "origin_group[0].id",
    );
    assert!(line.contains("duplicate"), "{line}");
    assert!(line.contains("line 13"), "{line}");
}

#[test]
fn missing_default_behavior() {
    let line = one_error(
        &GOOD.replace("path = \"*\"", "path = \"/static/*\""),
        "behavior[0].path",
    );
    assert!(line.contains("line 18"), "{line}");
}

#[test]
fn dangling_target() {
    let line = one_error(
        &GOOD.replace("target = \"site\"", "target = \"ghost\""),
        "behavior[0].target",
    );
    assert!(line.contains("ghost"));
}

#[test]
fn out_of_range_timeout() {
    let line = one_error(
        &GOOD.replace(
            "address = \"127.0.0.1:9002\"",
            "address = \"127.0.0.1:9002\"\nconnection_timeout = \"2m\"",
        ),
        "origin[1].connection_timeout",
    );
    assert!(line.contains("out of range"), "{line}");
    assert!(line.contains("line 11"), "{line}");
}

#[test]
fn every_error_listed() {
    let text = GOOD
        .replace(
            "address = \"127.0.0.1:9001\"",
            "address = \"127.0.0.1:9001\"\nconnection_attempts = 0",
        )
        .replace("target = \"site\"", "target = \"ghost\"");
    let (code, _, err) = check(&text);
    assert_eq!(code, 2);
    assert_eq!(err.lines().count(), 2, "{err}");
}

#[test]
fn allowed_methods_must_be_tokens() {
    let with = |m: &str| {
        GOOD.replace(
            "[[behavior]]\n",
            &format!("[[behavior]]\nallowed_methods = [\"GET\", \"HEAD\", {m}]\n"),
        )
    };
    assert_eq!(check(&with("\"M-SEARCH\"")).0, 0);
    let line = one_error(&with("\"GE T\""), "behavior[0].allowed_methods");
    assert!(line.contains("token"), "{line}");
    one_error(&with("\"\""), "behavior[0].allowed_methods");
}

#[test]
fn behavior_policies_of_the_wrong_type_are_rejected_naming_the_key() {
    let with = |line: &str| GOOD.replace("[[behavior]]\n", &format!("[[behavior]]\n{line}\n"));
    for good in [
        "cache_query_string = [\"id\", \"page\"]",
        "cache_query_string = false",
        "cache_key_headers = [\"origin\"]",
        "cache_key_cookies = [\"lang\"]",
        "forward_headers = [\"authorization\"]",
        "forward_cookies = \"none\"",
        "forward_cookies = [\"session\"]",
        "forward_query_string = false",
        "compress = true",
        "viewer_response = { set = { \"x-frame-options\" = \"DENY\" }, remove = [\"server\"] }",
    ] {
        let (code, _, err) = check(&with(good));
        assert_eq!(code, 0, "{good}: {err}");
    }
    for (bad, key, says) in [
        (
            "cache_query_string = \"sometimes\"",
            "behavior[0].cache_query_string",
            "list of parameter names",
        ),
        (
            "forward_headers = \"some\"",
            "behavior[0].forward_headers",
            "\"all\" or a list",
        ),
        ("forward_cookies = 1", "behavior[0].forward_cookies", "\"none\""),
        (
            "cache_key_headers = [\"host\"]",
            "behavior[0].cache_key_headers",
            "host",
        ),
        (
            "viewer_response = { set = { \"content-length\" = \"0\" } }",
            "behavior[0].viewer_response.set",
            "framing",
        ),
        (
            "cache_key_headers = \"origin\"",
            "behavior.cache_key_headers",
            "sequence",
        ),
        ("compress = \"yes\"", "behavior.compress", "bool"),
    ] {
        let line = one_error(&with(bad), key);
        assert!(line.contains(says), "{bad}: {line}");
    }
}

/// Policies that contradict each other are refused, each on one line
/// naming the key: an origin_request action on what the key reads, a
/// viewer_response header set in two cases, the keyword "all" as a list
/// member, too many or malformed query names. Query names are any name
/// a query can spell (`tags[]`), as the origin decodes them.
#[test]
fn contradicting_policies_are_rejected_naming_the_key() {
    let with = |lines: &str| GOOD.replace("[[behavior]]\n", &format!("[[behavior]]\n{lines}\n"));
    let (code, _, err) = check(&with("cache_query_string = [\"tags[]\", \"a.b\", \"filter[x]\"]"));
    assert_eq!(code, 0, "{err}");
    let many: Vec<String> = (0..33).map(|i| format!("\"p{i}\"")).collect();
    for (bad, key, says) in [
        (
            "cache_key_headers = [\"x-device\"]\norigin_request = { remove = [\"X-Device\"] }".to_string(),
            "behavior[0].origin_request.remove",
            "would key on what the origin never sees",
        ),
        (
            "cache_key_cookies = [\"s\"]\norigin_request = { set = { \"cookie\" = \"\" } }".to_string(),
            "behavior[0].origin_request.set",
            "would key on what the origin never sees",
        ),
        (
            "viewer_response = { set = { \"X-A\" = \"1\", \"x-a\" = \"2\" } }".to_string(),
            "behavior[0].viewer_response.set",
            "twice",
        ),
        (
            "forward_headers = [\"all\"]".to_string(),
            "behavior[0].forward_headers",
            "is a string, not a list member",
        ),
        (
            format!("cache_query_string = [{}]", many.join(", ")),
            "behavior[0].cache_query_string",
            "at most 32",
        ),
        (
            "cache_query_string = [\"a=b\"]".to_string(),
            "behavior[0].cache_query_string",
            "not a valid parameter name",
        ),
    ] {
        let line = one_error(&with(&bad), key);
        assert!(line.contains(says), "{bad}: {line}");
    }
}

/// GOOD with a `[cluster]` of three peers, this host `edge-a`.
fn with_cluster(extra: &str) -> String {
    format!(
        "{GOOD}\n[cluster]\nid = \"site-edge\"\nself = \"edge-a\"\n{extra}peers = [\n  {{ id = \"edge-a\", address = \"127.0.0.1:8080\", admin = \"127.0.0.1:9901\" }},\n  {{ id = \"edge-b\", address = \"127.0.0.2:8080\", admin = \"127.0.0.2:9901\" }},\n  {{ id = \"edge-c\", address = \"127.0.0.3:8080\" }},\n]\n"
    )
}

#[test]
fn a_cluster_is_summarised_with_each_peer_and_its_share_of_the_keys() {
    let (code, out, err) = check(&with_cluster("store_peer_fetches = false\n"));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cluster \"site-edge\": self = \"edge-a\", 3 peers, connection_timeout = 1s, response_timeout = 10s, fast_fail_after = 1, fast_fail_probe_interval = 2s, store_peer_fetches = false"),
        "{out}"
    );
    assert!(
        out.contains(
            "peer \"edge-a\" (self): 127.0.0.1:8080 (127.0.0.1:8080), admin 127.0.0.1:9901 (127.0.0.1:9901), owns "
        ),
        "{out}"
    );
    assert!(
        out.contains("peer \"edge-c\": 127.0.0.3:8080 (127.0.0.3:8080), admin none, owns "),
        "{out}"
    );
    // server.via is still the default: the summary says what to set.
    assert!(out.contains("server.via = \"ringfront\""), "{out}");
}

#[test]
fn cluster_self_must_be_one_of_the_peers() {
    let line = one_error(
        &with_cluster("").replace("self = \"edge-a\"", "self = \"edge-z\""),
        "cluster.self",
    );
    assert!(line.contains("edge-z") && line.contains("names no peer"), "{line}");
    assert!(line.contains("line 23"), "{line}");
}

#[test]
fn cluster_peer_ids_must_be_unique() {
    let line = one_error(
        &with_cluster("").replace("id = \"edge-c\"", "id = \"edge-b\""),
        "cluster.peers[2].id",
    );
    assert!(line.contains("duplicate"), "{line}");
}

#[test]
fn cluster_peer_addresses_must_be_host_and_port() {
    for bad in ["127.0.0.3", "127.0.0.3:99999", ""] {
        let line = one_error(
            &with_cluster("").replace("\"127.0.0.3:8080\"", &format!("{bad:?}")),
            "cluster.peers[2].address",
        );
        assert!(line.contains("host:port"), "{line}");
    }
    one_error(
        &with_cluster("").replace("\"127.0.0.2:9901\"", "\"nine\""),
        "cluster.peers[1].admin",
    );
    let line = one_error(
        &with_cluster("").replace("\"127.0.0.3:8080\"", "\"127.0.0.2:8080\""),
        "cluster.peers[2].address",
    );
    assert!(line.contains("peers[1]"), "{line}");
}

#[test]
fn a_cluster_needs_peers() {
    let text = format!("{GOOD}\n[cluster]\nid = \"site-edge\"\nself = \"edge-a\"\npeers = []\n");
    let (code, _, err) = check(&text);
    assert_eq!(code, 2);
    assert!(
        err.lines()
            .any(|l| l.contains("cluster.peers:") && l.contains("at least one")),
        "{err}"
    );
}

#[test]
fn the_cluster_id_is_a_cdn_loop_token() {
    let line = one_error(
        &with_cluster("").replace("id = \"site-edge\"", "id = \"site edge\""),
        "cluster.id",
    );
    assert!(line.contains("token"), "{line}");
    one_error(&with_cluster("").replace("id = \"site-edge\"\n", ""), "cluster.id");
    one_error(
        &with_cluster("").replace("id = \"edge-c\"", "id = \"edge;c\""),
        "cluster.peers[2].id",
    );
}

#[test]
fn cluster_timeouts_and_counts_are_ranged() {
    for (extra, key) in [
        ("connection_timeout = \"61s\"\n", "cluster.connection_timeout"),
        ("connection_timeout = \"5ms\"\n", "cluster.connection_timeout"),
        ("response_timeout = \"301s\"\n", "cluster.response_timeout"),
        ("fast_fail_after = 0\n", "cluster.fast_fail_after"),
        (
            "fast_fail_probe_interval = \"2h\"\n",
            "cluster.fast_fail_probe_interval",
        ),
    ] {
        let line = one_error(&with_cluster(extra), key);
        assert!(line.contains("out of range"), "{line}");
    }
    one_error(&with_cluster("weight = 2\n"), "cluster.weight");
}
