//! Invalidation by unsafe methods (RFC 9111 §4.4), pure: which responses
//! invalidate, and which same-host URIs their Location and
//! Content-Location name. The proxy turns those into keys and removes
//! every stored response for each (`proxy::invalidate`).

/// §4.4: "A cache MUST invalidate the target URI ... when it receives a
/// non-error status code in response to an unsafe request method
/// (including methods whose safety is unknown)." Safe methods are GET,
/// HEAD, OPTIONS and TRACE (RFC 9110 §9.2.1); a non-error status is
/// 2xx or 3xx (1xx are interim).
pub fn invalidates(method: &[u8], status: u16) -> bool {
    let safe = matches!(method, b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE");
    !safe && (200..400).contains(&status)
}

/// The absolute path (and query) a Location or Content-Location value
/// names, when it is on `host` (§4.4: "a cache MUST NOT invalidate a URI
/// from a Location or Content-Location response header field if the host
/// part of that URI differs from the host part in the target URI"),
/// written to `out`. Accepted forms (RFC 3986 §4.1): an absolute URI
/// (`http` or `https`, host compared without regard to case), an
/// absolute path (`/a`), and a relative path (`a`, resolved against the
/// directory of `base`, the request's path, §5.2.3). A fragment is dropped.
/// Whatever else (a network-path reference, another scheme, another host,
/// bytes that are not a URI) names nothing.
pub fn same_host_target(value: &[u8], host: &[u8], base: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let value = value.trim_ascii();
    let value = match memchr::memchr(b'#', value) {
        Some(i) => &value[..i],
        None => value,
    };
    if value.is_empty() || value.iter().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return false;
    }
    if let Some(rest) = strip_scheme(value) {
        let end = rest.iter().position(|b| matches!(b, b'/' | b'?')).unwrap_or(rest.len());
        if !rest[..end].eq_ignore_ascii_case(host) {
            return false;
        }
        if !rest[end..].starts_with(b"/") {
            out.push(b'/');
        }
        out.extend_from_slice(&rest[end..]);
        return true;
    }
    if value.starts_with(b"//") {
        return false;
    }
    if !value.starts_with(b"/") {
        // A colon before any slash starts a scheme (RFC 3986 §4.2).
        let first_slash = value.iter().position(|&b| b == b'/').unwrap_or(value.len());
        if value[..first_slash].contains(&b':') {
            return false;
        }
        let path = match memchr::memchr(b'?', base) {
            Some(i) => &base[..i],
            None => base,
        };
        let dir = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        out.extend_from_slice(&path[..dir]);
        if out.is_empty() {
            out.push(b'/');
        }
    }
    out.extend_from_slice(value);
    true
}

/// The part after `http://` or `https://`, any case.
fn strip_scheme(v: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], b"https://"] {
        if v.len() >= scheme.len() && v[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Some(&v[scheme.len()..]);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(v: &str) -> Option<String> {
        let mut out = Vec::new();
        same_host_target(v.as_bytes(), b"example.com", b"/dir/page?q=1", &mut out)
            .then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn unsafe_methods_with_non_error_statuses() {
        for m in [&b"POST"[..], b"PUT", b"DELETE", b"PATCH", b"M-SEARCH", b"post"] {
            assert!(invalidates(m, 200));
            assert!(invalidates(m, 303));
            assert!(!invalidates(m, 404));
            assert!(!invalidates(m, 500));
            assert!(!invalidates(m, 103));
        }
        for m in [&b"GET"[..], b"HEAD", b"OPTIONS", b"TRACE"] {
            assert!(!invalidates(m, 200));
        }
    }

    #[test]
    fn same_host_references() {
        assert_eq!(target("/a?b=1").as_deref(), Some("/a?b=1"));
        assert_eq!(target(" /a#frag ").as_deref(), Some("/a"));
        assert_eq!(target("http://EXAMPLE.com/x").as_deref(), Some("/x"));
        assert_eq!(target("HTTPS://example.com").as_deref(), Some("/"));
        assert_eq!(target("http://example.com?q").as_deref(), Some("/?q"));
        assert_eq!(target("other").as_deref(), Some("/dir/other"));
        assert_eq!(target("../up").as_deref(), Some("/dir/../up"));
        assert_eq!(target("http://example.com.evil/x"), None);
        assert_eq!(target("http://other.example/x"), None);
        assert_eq!(target("//example.com/x"), None);
        assert_eq!(target("mailto:a@example.com"), None);
        assert_eq!(target("ftp://example.com/x"), None);
        assert_eq!(target("/a b"), None);
        assert_eq!(target(""), None);
        let mut out = Vec::new();
        assert!(same_host_target(b"x", b"h", b"top", &mut out));
        assert_eq!(out, b"/x");
    }
}
