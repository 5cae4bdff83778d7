//! A behavior's policies (SPEC §2), checked and resolved: the cache key
//! policy (`cache_query_string`, `cache_key_headers`, `cache_key_cookies`),
//! the origin request policy (`forward_headers`, `forward_cookies`,
//! `forward_query_string`) and the response headers policy
//! (`viewer_response`). Each error names its key; a wrong type says what
//! the key takes.

use super::validate::{is_token, Errors, Seg};
use super::{RawBehavior, RawHeaderActions};
use crate::cache::key::{KeyPolicy, QueryKey};
use crate::http::edit::{CookieForward, ForwardPolicy, ResponseEdits};

/// At most this many key headers, and as many key cookies (CloudFront's
/// limits): each is a name every lookup of the behavior's URLs reads, and
/// with the origin's own Vary names they stay within
/// [`crate::cache::vary::MAX_NAMES`].
pub const MAX_KEY_NAMES: usize = 6;
const _: () = assert!(2 * MAX_KEY_NAMES <= crate::cache::vary::MAX_NAMES);

/// At most this many names in a `cache_query_string` allow-list: every
/// parameter of a request is looked up among them
/// ([`crate::http::query::append_kept`]), on every hit.
pub const MAX_QUERY_NAMES: usize = 32;

/// Headers no policy may name: framing and hop-by-hop (RFC 9110 §7.6.1),
/// and Host, which is always in the key and always forwarded.
const FRAMING: [&str; 10] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "proxy-authorization",
];

/// The three policies of one behavior.
pub(super) struct Policies {
    pub cache_key: KeyPolicy,
    pub forward: ForwardPolicy,
    pub viewer_response: ResponseEdits,
}

/// Checks and resolves the policies of `behavior[i]`.
pub(super) fn resolve(e: &mut Errors, i: usize, b: &RawBehavior) -> Policies {
    let key = |k: &'static str| [Seg::K("behavior"), Seg::I(i), Seg::K(k)];
    let query = match &b.cache_query_string {
        None | Some(toml::Value::Boolean(true)) => QueryKey::All,
        Some(toml::Value::Boolean(false)) => QueryKey::None,
        Some(toml::Value::Array(a)) => QueryKey::only(query_names(e, &key("cache_query_string"), a)),
        Some(_) => {
            e.push(
                &key("cache_query_string"),
                "must be true, false or a list of parameter names",
            );
            QueryKey::All
        }
    };
    let headers = header_names(e, &key("cache_key_headers"), &b.cache_key_headers, "cache_key_cookies");
    let cookies = cookie_names(e, &key("cache_key_cookies"), &b.cache_key_cookies);
    for (k, n) in [
        ("cache_key_headers", headers.len()),
        ("cache_key_cookies", cookies.len()),
    ] {
        if n > MAX_KEY_NAMES {
            e.push(&key(k), format!("at most {MAX_KEY_NAMES} names (have {n})"));
        }
    }
    if headers.iter().any(|h| &h[..] == b"accept-encoding") {
        e.push(
            &key("cache_key_headers"),
            "accept-encoding is keyed already, normalised to br, gzip or identity (SPEC §4); use compress",
        );
    }
    unseen_key(
        e,
        &key("origin_request"),
        &b.origin_request,
        &headers,
        !cookies.is_empty(),
    );
    let forward = ForwardPolicy {
        headers: forward_headers(e, &key("forward_headers"), b.forward_headers.as_ref()),
        cookies: forward_cookies(e, &key("forward_cookies"), b.forward_cookies.as_ref()),
        query_string: b.forward_query_string,
    };
    // Within MAX_KEY_NAMES each (checked above), the key's names stay
    // within vary::MAX_NAMES; past them the config is refused anyway.
    let cache_key = KeyPolicy::new(query, headers, cookies).unwrap_or_default();
    Policies {
        cache_key,
        forward,
        viewer_response: viewer_response(e, &key("viewer_response"), &b.viewer_response),
    }
}

/// `origin_request` actions that set or remove a key header, or the
/// Cookie header when there are key cookies: the response would be keyed
/// on the viewer's value while the origin saw another or none (SPEC §2:
/// "Whatever joins the key is also forwarded to the origin").
fn unseen_key(e: &mut Errors, key: &[Seg], raw: &RawHeaderActions, headers: &[Box<[u8]>], key_cookies: bool) {
    let set = raw.set.keys().map(|n| ("set", n));
    for (sub, name) in set.chain(raw.remove.iter().map(|n| ("remove", n))) {
        let lower = name.to_ascii_lowercase();
        let why = if headers.iter().any(|h| &h[..] == lower.as_bytes()) {
            "it is in cache_key_headers"
        } else if lower == "cookie" && key_cookies {
            "it carries the cache_key_cookies"
        } else {
            continue;
        };
        let mut k = key.to_vec();
        k.push(Seg::K(sub));
        e.push(
            &k,
            format!("{lower}: {why}, so the cache would key on what the origin never sees"),
        );
    }
}

/// The strings of a TOML array, each a token; `what` names them in errors.
/// Sorted and deduplicated; lowercased when `fold`.
fn names(e: &mut Errors, key: &[Seg], list: &[toml::Value], what: &str, fold: bool) -> Vec<Box<[u8]>> {
    let mut out = Vec::new();
    for v in list {
        match v.as_str() {
            Some(s) if is_token(s) => {
                let s = if fold { s.to_ascii_lowercase() } else { s.to_string() };
                out.push(s.into_bytes().into_boxed_slice());
            }
            Some(s) => e.push(key, format!("{s:?} is not a valid {what} name")),
            None => e.push(key, format!("must be a list of {what} names (strings), found {v}")),
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `cache_query_string` as a list: at most [`MAX_QUERY_NAMES`] names,
/// each [`is_query_name`], sorted and deduplicated.
fn query_names(e: &mut Errors, key: &[Seg], list: &[toml::Value]) -> Vec<Box<[u8]>> {
    let mut out: Vec<Box<[u8]>> = Vec::new();
    for v in list {
        match v.as_str() {
            Some(s) if s.contains('%') => e.push(
                key,
                format!(
                    "{s:?}: names are compared percent-decoded, so write the name decoded ({:?})",
                    percent_decoded(s)
                ),
            ),
            Some(s) if is_query_name(s) => out.push(s.as_bytes().into()),
            Some(s) => e.push(
                key,
                format!("{s:?} is not a valid parameter name: non-empty, without &, =, #, ;, whitespace or controls"),
            ),
            None => e.push(key, format!("must be a list of parameter names (strings), found {v}")),
        }
    }
    out.sort_unstable();
    out.dedup();
    if out.len() > MAX_QUERY_NAMES {
        e.push(key, format!("at most {MAX_QUERY_NAMES} names (have {})", out.len()));
    }
    out
}

/// A query parameter name as an origin reads it, decoded
/// ([`crate::http::query`]): any non-empty text without the bytes that
/// separate parameters or their parts (`&`, `=`, `;`, `#`), whitespace or
/// controls, so `tags[]`, `a.b` and `filter[x]` are names. A `%` is
/// refused apart: a name is written decoded.
fn is_query_name(s: &str) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| matches!(c, '&' | '=' | ';' | '#') || c.is_whitespace() || c.is_control())
}

/// `s` with its `%XX` decoded (for an error's hint).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let pair = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match pair.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) if b[i] == b'%' => {
                out.push(byte);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn strings(list: &[String]) -> Vec<toml::Value> {
    list.iter().map(|s| toml::Value::String(s.clone())).collect()
}

/// Request header names for a key or forwarding list: tokens, lowercased,
/// neither framing nor Cookie (which has keys of its own: `cookie_key`).
fn header_names(e: &mut Errors, key: &[Seg], list: &[String], cookie_key: &str) -> Vec<Box<[u8]>> {
    let out = names(e, key, &strings(list), "header", true);
    checked_headers(e, key, out, cookie_key)
}

fn checked_headers(e: &mut Errors, key: &[Seg], list: Vec<Box<[u8]>>, cookie_key: &str) -> Vec<Box<[u8]>> {
    let mut out = Vec::with_capacity(list.len());
    for h in list {
        let name = String::from_utf8_lossy(&h).into_owned();
        if FRAMING.contains(&name.as_str()) {
            e.push(
                key,
                format!("{name} cannot be listed: it is framing, hop-by-hop or always sent"),
            );
        } else if name == "cookie" {
            e.push(
                key,
                format!("cookie cannot be listed: cookies are chosen by {cookie_key}"),
            );
        } else {
            out.push(h);
        }
    }
    out
}

fn cookie_names(e: &mut Errors, key: &[Seg], list: &[String]) -> Vec<Box<[u8]>> {
    names(e, key, &strings(list), "cookie", false)
}

fn forward_headers(e: &mut Errors, key: &[Seg], v: Option<&toml::Value>) -> Option<Vec<Box<[u8]>>> {
    match v {
        None => None,
        Some(toml::Value::String(s)) if s == "all" => None,
        Some(toml::Value::Array(a)) => {
            let a = without_keywords(e, key, a);
            let list = names(e, key, &a, "header", true);
            Some(checked_headers(e, key, list, "forward_cookies"))
        }
        Some(_) => {
            e.push(key, "must be \"all\" or a list of header names");
            None
        }
    }
}

/// `forward_headers` as a list, less the members `"all"` and `"none"`,
/// refused with a hint: they are the policy's words, not header names
/// (`["all"]` would forward no header called "all", not every header).
fn without_keywords(e: &mut Errors, key: &[Seg], list: &[toml::Value]) -> Vec<toml::Value> {
    let mut out = Vec::with_capacity(list.len());
    for v in list {
        match v.as_str() {
            Some(s) if s.eq_ignore_ascii_case("all") => e.push(
                key,
                "\"all\" is a string, not a list member: write forward_headers = \"all\" to forward every header",
            ),
            Some(s) if s.eq_ignore_ascii_case("none") => e.push(
                key,
                "\"none\" is not a list member: write forward_headers = [] to forward no viewer header",
            ),
            _ => out.push(v.clone()),
        }
    }
    out
}

fn forward_cookies(e: &mut Errors, key: &[Seg], v: Option<&toml::Value>) -> CookieForward {
    match v {
        None => CookieForward::All,
        Some(toml::Value::String(s)) if s == "all" => CookieForward::All,
        Some(toml::Value::String(s)) if s == "none" => CookieForward::None,
        Some(toml::Value::Array(a)) => {
            for v in a.iter().filter_map(toml::Value::as_str) {
                if v == "all" || v == "none" {
                    e.push(
                        key,
                        format!("\"{v}\" is a string, not a list member: write forward_cookies = \"{v}\""),
                    );
                }
            }
            CookieForward::Only(names(e, key, a, "cookie", false))
        }
        Some(_) => {
            e.push(key, "must be \"all\", \"none\" or a list of cookie names");
            CookieForward::All
        }
    }
}

/// `viewer_response`: literal values (a hit has no attempt to fill a
/// placeholder with), names that are neither framing nor hop-by-hop;
/// prebuilt into the lines every response of the behavior gets.
fn viewer_response(e: &mut Errors, key: &[Seg], raw: &RawHeaderActions) -> ResponseEdits {
    let mut drop: Vec<Box<[u8]>> = Vec::new();
    let mut lines = Vec::new();
    let mut named = |e: &mut Errors, sub: &'static str, name: &str| {
        let mut k = key.to_vec();
        k.push(Seg::K(sub));
        let lower = name.to_ascii_lowercase();
        if !is_token(name) {
            e.push(&k, format!("{name:?} is not a valid header name"));
        } else if FRAMING.contains(&lower.as_str()) {
            e.push(&k, format!("{lower} cannot be edited: it is framing or hop-by-hop"));
        } else {
            drop.push(lower.clone().into_bytes().into_boxed_slice());
            return Some(lower);
        }
        None
    };
    for (name, value) in &raw.set {
        // TOML keys are case-sensitive, header names are not (RFC 9110
        // §5.1): "X-A" and "x-a" would be two lines of one header.
        if raw
            .set
            .keys()
            .take_while(|k| *k != name)
            .any(|k| k.eq_ignore_ascii_case(name))
        {
            let mut k = key.to_vec();
            k.push(Seg::K("set"));
            e.push(
                &k,
                format!(
                    "{} is set twice (header names are case-insensitive)",
                    name.to_ascii_lowercase()
                ),
            );
            continue;
        }
        let Some(lower) = named(e, "set", name) else { continue };
        // RFC 9110 §5.5: field-value is visible characters, SP and HTAB.
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            let mut k = key.to_vec();
            k.push(Seg::K("set"));
            e.push(&k, format!("{name}: a value may not hold control characters"));
            continue;
        }
        lines.extend_from_slice(lower.as_bytes());
        lines.extend_from_slice(b": ");
        lines.extend_from_slice(value.trim().as_bytes());
        lines.extend_from_slice(b"\r\n");
    }
    for name in &raw.remove {
        named(e, "remove", name);
    }
    drop.sort_unstable();
    drop.dedup();
    ResponseEdits {
        drop,
        lines: lines.into_boxed_slice(),
    }
}

/// One line naming a behavior's policies that differ from the defaults
/// (for `ringfront check`); `None` when none do.
pub(super) fn describe(b: &super::Behavior) -> Option<String> {
    let list = |v: &[Box<[u8]>]| {
        let names: Vec<String> = v.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
        format!("[{}]", names.join(","))
    };
    let mut parts = Vec::new();
    match &b.cache_key.query {
        QueryKey::All => {}
        QueryKey::None => parts.push("cache_query_string = false".to_string()),
        QueryKey::Only(v) => parts.push(format!("cache_query_string = {}", list(v))),
    }
    if !b.cache_key.headers.is_empty() {
        parts.push(format!("cache_key_headers = {}", list(&b.cache_key.headers)));
    }
    if !b.cache_key.cookies.is_empty() {
        parts.push(format!("cache_key_cookies = {}", list(&b.cache_key.cookies)));
    }
    if let Some(h) = &b.forward.headers {
        parts.push(format!("forward_headers = {}", list(h)));
    }
    match &b.forward.cookies {
        CookieForward::All => {}
        CookieForward::None => parts.push("forward_cookies = none".to_string()),
        CookieForward::Only(v) => parts.push(format!("forward_cookies = {}", list(v))),
    }
    if !b.forward.query_string {
        parts.push("forward_query_string = false".to_string());
    }
    if b.compress {
        parts.push("compress = true".to_string());
    }
    if !b.viewer_response.is_empty() {
        parts.push(format!("viewer_response edits {}", list(&b.viewer_response.drop)));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError, CookieForward, QueryKey};
    use std::path::Path;

    fn with(lines: &str) -> Result<Config, Vec<ConfigError>> {
        let text = format!(
            "[[origin]]\nid = \"o\"\naddress = \"127.0.0.1:9001\"\n\n[[behavior]]\npath = \"*\"\ntarget = \"o\"\n{lines}\n"
        );
        Config::from_str(&text, Path::new("."))
    }

    fn error_key(lines: &str) -> (String, String) {
        let e = with(lines).expect_err("accepted");
        (e[0].key.clone(), e[0].message.clone())
    }

    #[test]
    fn defaults_are_cloudfront_legacy_all() {
        let c = with("").unwrap();
        let b = &c.behaviors[0];
        assert_eq!(b.cache_key.query, QueryKey::All);
        assert!(b.cache_key.headers.is_empty() && b.cache_key.cookies.is_empty());
        assert_eq!(b.forward.headers, None);
        assert_eq!(b.forward.cookies, CookieForward::All);
        assert!(b.forward.query_string && !b.compress && b.viewer_response.is_empty());
    }

    #[test]
    fn policies_resolve_sorted_and_folded() {
        let c = with(concat!(
            "cache_query_string = [\"page\", \"id\"]\n",
            "cache_key_headers = [\"X-Device\", \"Origin\"]\n",
            "cache_key_cookies = [\"session\"]\n",
            "forward_headers = [\"Authorization\"]\n",
            "forward_cookies = \"none\"\n",
            "forward_query_string = false\n",
            "compress = true\n",
            "viewer_response = { set = { \"Strict-Transport-Security\" = \"max-age=63072000\" }, remove = [\"X-Powered-By\"] }\n",
        ))
        .unwrap();
        let b = &c.behaviors[0];
        assert_eq!(
            b.cache_key.query,
            QueryKey::Only(vec![b"id"[..].into(), b"page"[..].into()])
        );
        assert_eq!(b.cache_key.headers, vec![b"origin"[..].into(), b"x-device"[..].into()]);
        assert_eq!(b.cache_key.cookies, vec![b"session"[..].into()]);
        assert_eq!(b.cache_key.names.as_bytes(), b"cookie;session,origin,x-device");
        assert_eq!(b.forward.headers, Some(vec![b"authorization"[..].into()]));
        assert_eq!(b.forward.cookies, CookieForward::None);
        assert!(!b.forward.query_string && b.compress);
        assert_eq!(
            &b.viewer_response.lines[..],
            b"strict-transport-security: max-age=63072000\r\n"
        );
        assert_eq!(
            b.viewer_response.drop,
            vec![b"strict-transport-security"[..].into(), b"x-powered-by"[..].into()]
        );
    }

    #[test]
    fn wrong_types_are_rejected_naming_the_key() {
        for (line, key) in [
            ("cache_query_string = \"yes\"", "behavior[0].cache_query_string"),
            ("cache_query_string = [1]", "behavior[0].cache_query_string"),
            ("forward_headers = \"some\"", "behavior[0].forward_headers"),
            ("forward_headers = true", "behavior[0].forward_headers"),
            ("forward_cookies = 3", "behavior[0].forward_cookies"),
            ("forward_cookies = \"most\"", "behavior[0].forward_cookies"),
        ] {
            assert_eq!(error_key(line).0, key, "{line}");
        }
        for (line, key) in [
            ("cache_key_headers = \"origin\"", "behavior.cache_key_headers"),
            ("cache_key_cookies = [1]", "behavior.cache_key_cookies"),
            ("forward_query_string = \"no\"", "behavior.forward_query_string"),
            ("compress = \"yes\"", "behavior.compress"),
            ("viewer_response = [\"x\"]", "behavior.viewer_response"),
        ] {
            let (k, m) = error_key(line);
            assert_eq!(k, key, "{line}: {m}");
        }
    }

    #[test]
    fn names_that_would_break_framing_or_bypass_a_policy_are_rejected() {
        for (line, key) in [
            ("cache_key_headers = [\"host\"]", "behavior[0].cache_key_headers"),
            ("cache_key_headers = [\"cookie\"]", "behavior[0].cache_key_headers"),
            (
                "cache_key_headers = [\"accept-encoding\"]",
                "behavior[0].cache_key_headers",
            ),
            ("cache_key_headers = [\"a b\"]", "behavior[0].cache_key_headers"),
            (
                "forward_headers = [\"transfer-encoding\"]",
                "behavior[0].forward_headers",
            ),
            ("cache_key_cookies = [\"a;b\"]", "behavior[0].cache_key_cookies"),
            (
                "viewer_response = { set = { \"content-length\" = \"1\" } }",
                "behavior[0].viewer_response.set",
            ),
            (
                "viewer_response = { set = { \"x\" = \"a\\nb\" } }",
                "behavior[0].viewer_response.set",
            ),
            (
                "viewer_response = { remove = [\"connection\"] }",
                "behavior[0].viewer_response.remove",
            ),
            (
                "cache_key_headers = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\", \"g\"]",
                "behavior[0].cache_key_headers",
            ),
        ] {
            assert_eq!(error_key(line).0, key, "{line}");
        }
    }

    /// Every hit on an allow-list reads each parameter once per name: at
    /// most 32 names.
    #[test]
    fn an_allow_list_names_at_most_32_parameters() {
        let list = |n: usize| {
            let names: Vec<String> = (0..n).map(|i| format!("\"p{i}\"")).collect();
            format!("cache_query_string = [{}]", names.join(", "))
        };
        assert!(with(&list(32)).is_ok());
        let (key, message) = error_key(&list(33));
        assert_eq!(key, "behavior[0].cache_query_string");
        assert!(message.contains("at most 32"), "{message}");
    }

    /// Header actions that contradict the key: the origin would never see
    /// what the response is keyed on.
    #[test]
    fn origin_request_edits_of_what_the_key_reads_are_rejected() {
        for (lines, key) in [
            (
                "cache_key_headers = [\"x-device\"]\norigin_request = { remove = [\"X-Device\"] }",
                "behavior[0].origin_request.remove",
            ),
            (
                "cache_key_headers = [\"X-Device\"]\norigin_request = { set = { \"x-device\" = \"tv\" } }",
                "behavior[0].origin_request.set",
            ),
            (
                "cache_key_cookies = [\"s\"]\norigin_request = { remove = [\"Cookie\"] }",
                "behavior[0].origin_request.remove",
            ),
            (
                "cache_key_cookies = [\"s\"]\norigin_request = { set = { \"cookie\" = \"s=1\" } }",
                "behavior[0].origin_request.set",
            ),
        ] {
            let (k, m) = error_key(lines);
            assert_eq!(k, key, "{lines}");
            assert!(m.contains("would key on what the origin never sees"), "{m}");
        }
        assert!(with("origin_request = { remove = [\"cookie\", \"x-device\"] }").is_ok());
        assert!(with("cache_key_headers = [\"origin\"]\norigin_request = { remove = [\"cookie\"] }").is_ok());
    }

    #[test]
    fn a_viewer_response_header_set_twice_in_two_cases_is_rejected() {
        let (k, m) = error_key("viewer_response = { set = { \"X-A\" = \"1\", \"x-a\" = \"2\" } }");
        assert_eq!(k, "behavior[0].viewer_response.set");
        assert!(m.contains("x-a"), "{m}");
        assert!(with("viewer_response = { set = { \"X-A\" = \"1\" }, remove = [\"x-a\"] }").is_ok());
    }

    #[test]
    fn forward_cookies_all_or_none_as_a_list_member_is_rejected_with_a_hint() {
        for line in [
            "forward_cookies = [\"none\"]",
            "forward_cookies = [\"session\", \"all\"]",
        ] {
            let (key, message) = error_key(line);
            assert_eq!(key, "behavior[0].forward_cookies", "{line}");
            assert!(message.contains("not a list member"), "{message}");
        }
    }

    #[test]
    fn forward_headers_all_or_none_as_a_list_member_is_rejected_with_a_hint() {
        for word in ["all", "none", "ALL"] {
            let (k, m) = error_key(&format!("forward_headers = [\"{word}\"]"));
            assert_eq!(k, "behavior[0].forward_headers", "{word}");
            assert!(
                m.contains("not a list member") && m.contains("write forward_headers = "),
                "{m}"
            );
        }
    }

    /// Query names are compared percent-decoded (`http::query`): any
    /// name a query can spell, decoded, that holds no separator.
    #[test]
    fn query_names_are_any_decoded_name_without_separators() {
        let c = with("cache_query_string = [\"tags[]\", \"a.b\", \"filter[x]\", \"q+\", \"caf\u{e9}\"]").unwrap();
        let QueryKey::Only(names) = &c.behaviors[0].cache_key.query else {
            panic!("not a list")
        };
        assert_eq!(names.len(), 5);
        for bad in [
            "",
            "a&b",
            "a=b",
            "a#b",
            "a;b",
            "a b",
            "a\\tb",
            "a\\u0001",
            "a\\u007f",
            "tags%5B%5D",
        ] {
            let (k, m) = error_key(&format!("cache_query_string = [\"{bad}\"]"));
            assert_eq!(k, "behavior[0].cache_query_string", "{bad:?}: {m}");
        }
        assert!(error_key("cache_query_string = [\"tags%5B%5D\"]").1.contains("tags[]"));
    }
}
