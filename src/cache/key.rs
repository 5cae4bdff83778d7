//! Cache keys: `host NUL path[?query]`, plus `NUL encoding` for responses
//! that vary on Accept-Encoding.
//!
//! The host is lowercased (host names are case-insensitive) and a default
//! port is kept as sent; the path is taken byte for byte (paths are
//! case-sensitive). Accept-Encoding is normalised as CloudFront does, to
//! the one coding the cache would store a variant for: `br` if accepted,
//! else `gzip`, else `identity`, so `gzip, deflate, br` and `br;q=1, gzip`
//! share a key.

/// Appends the base key for a request to `out`.
pub fn build(out: &mut Vec<u8>, host: &[u8], target: &[u8], include_query: bool) {
    out.extend(host.iter().map(u8::to_ascii_lowercase));
    out.push(0);
    let target = if include_query {
        target
    } else {
        match memchr::memchr(b'?', target) {
            Some(i) => &target[..i],
            None => target,
        }
    };
    out.extend_from_slice(target);
}

/// Appends the encoding part for a response that varies on Accept-Encoding.
pub fn add_encoding(out: &mut Vec<u8>, accept_encoding: Option<&[u8]>) {
    out.push(0);
    out.extend_from_slice(normalize_accept_encoding(accept_encoding));
}

/// The normalised encoding a key ends in (what [`add_encoding`] appended).
pub fn encoding(key: &[u8]) -> Option<&'static [u8]> {
    let last = key.rsplit(|&b| b == 0).next()?;
    [&b"br"[..], b"gzip", b"identity"].into_iter().find(|e| *e == last)
}

/// `br`, `gzip` or `identity`: the best coding the viewer accepts.
pub fn normalize_accept_encoding(v: Option<&[u8]>) -> &'static [u8] {
    let Some(v) = v else { return b"identity" };
    let mut br = false;
    let mut gzip = false;
    for part in v.split(|&b| b == b',') {
        let mut it = part.split(|&b| b == b';');
        let coding = it.next().unwrap_or(&[]).trim_ascii();
        // "q=0" means not acceptable.
        let refused = it.any(|p| {
            let p = p.trim_ascii();
            p.len() >= 3 && p[..2].eq_ignore_ascii_case(b"q=") && p[2..].iter().all(|&c| c == b'0' || c == b'.')
        });
        if refused {
            continue;
        }
        if coding.eq_ignore_ascii_case(b"br") {
            br = true;
        } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            gzip = true;
        }
    }
    if br {
        b"br"
    } else if gzip {
        b"gzip"
    } else {
        b"identity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str, target: &str, q: bool) -> Vec<u8> {
        let mut k = Vec::new();
        build(&mut k, host.as_bytes(), target.as_bytes(), q);
        k
    }

    #[test]
    fn host_case_folded_path_not() {
        assert_eq!(key("Example.COM", "/A?b=1", true), key("example.com", "/A?b=1", true));
        assert_ne!(key("example.com", "/A", true), key("example.com", "/a", true));
        assert_ne!(key("a.example", "/x", true), key("b.example", "/x", true));
    }

    #[test]
    fn query_included_or_not() {
        assert_ne!(key("h", "/p?a=1", true), key("h", "/p?a=2", true));
        assert_eq!(key("h", "/p?a=1", false), key("h", "/p?a=2", false));
        assert_eq!(key("h", "/p?a=1", false), key("h", "/p", false));
    }

    #[test]
    fn no_ambiguity_between_host_and_path() {
        assert_ne!(key("ab", "/c", true), key("a", "b/c", true));
    }

    #[test]
    fn accept_encoding_normalised() {
        let n = |v: &str| normalize_accept_encoding(Some(v.as_bytes()));
        assert_eq!(n("gzip, deflate, br"), b"br");
        assert_eq!(n("br;q=1.0, gzip;q=0.8"), b"br");
        assert_eq!(n("gzip"), b"gzip");
        assert_eq!(n("GZIP, br;q=0"), b"gzip");
        assert_eq!(n("deflate"), b"identity");
        assert_eq!(n(""), b"identity");
        assert_eq!(normalize_accept_encoding(None), b"identity");
        let mut k = key("h", "/p", true);
        add_encoding(&mut k, Some(b"gzip, br"));
        assert_eq!(encoding(&k), Some(&b"br"[..]));
        assert_eq!(encoding(&key("h", "/p", true)), None);
    }
}
