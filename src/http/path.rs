//! Request path normalisation (RFC 3986 §6.2.2), done once on the request
//! target before anything uses it (SPEC §3.1), so that behaviors, the cache
//! key and the origin all see one spelling of a path:
//!
//! - percent-encoded unreserved characters are decoded (§6.2.2.2), the hex
//!   digits of the percent-encodings that remain are uppercased (§6.2.2.1),
//!   and a malformed percent-encoding (`%zz`, `%4`) is an error;
//! - `%2F` is reserved and stays encoded: `/a%2Fb` is one segment;
//! - repeated slashes are merged;
//! - `.` and `..` segments are removed (§6.2.2.3, §5.2.4), after decoding, so
//!   `%2e%2e` is `..`; a `..` that would climb above the root is an error.
//!
//! The query string is left exactly as sent. An already-normal target, the
//! common case, costs one scan and neither allocates nor copies.

use std::fmt;

/// Why a path cannot be normalised; both are answered with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    BadPercentEncoding,
    /// A `..` segment above the root.
    AboveRoot,
    /// A byte RFC 3986 does not allow in a request target (`\`, `"`, `<`,
    /// `>`, `{`, `}`, `|`, `^`, `` ` ``, `#`, controls): origins read these
    /// differently (a backslash as a slash on some), so they get 400, as
    /// RFC 9112 §3.2 lets a server answer an invalid request-target.
    InvalidChar,
}

impl PathError {
    pub fn reason(self) -> &'static str {
        match self {
            PathError::BadPercentEncoding => "malformed percent-encoding in path",
            PathError::AboveRoot => "path climbs above the root",
            PathError::InvalidChar => "invalid character in request target",
        }
    }
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Normalises a request target's path (origin-form `/a/b?q`, or the path of
/// an absolute-form target, which may be empty or start with `?`).
///
/// `Ok(false)`: `target` is already normal and `out` is left alone.
/// `Ok(true)`: `out` holds the normalised target (path, then the query as
/// sent); it is never longer than `target`. A path that does not start with
/// `/` (asterisk-form `*`, an empty path) is left alone.
pub fn normalize(target: &[u8], out: &mut Vec<u8>) -> Result<bool, PathError> {
    if target.iter().any(|&b| INVALID[b as usize]) {
        return Err(PathError::InvalidChar);
    }
    let q = memchr::memchr(b'?', target).unwrap_or(target.len());
    let (path, query) = target.split_at(q);
    let Some(rest) = path.strip_prefix(b"/") else {
        return Ok(false);
    };
    if is_normal(path) {
        return Ok(false);
    }
    let start = out.len();
    let result = rewrite(rest, out).map(|()| {
        out.extend_from_slice(query);
        out.get(start..) != Some(target)
    });
    if result != Ok(true) {
        out.truncate(start);
    }
    result
}

/// Bytes refused anywhere in a request target (see [`PathError::InvalidChar`]);
/// bytes of 0x80 and above (raw UTF-8, which browsers send) are let through.
const INVALID: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x21 {
        t[i] = true;
        i += 1;
    }
    t[0x7f] = true;
    let bad = b"\\\"<>{}|^`#";
    let mut j = 0;
    while j < bad.len() {
        t[bad[j] as usize] = true;
        j += 1;
    }
    t
};

/// One scan: true when no segment is empty, `.` or `..`, and every
/// percent-encoding is uppercase and of a byte that must stay encoded.
fn is_normal(path: &[u8]) -> bool {
    memchr::memchr2_iter(b'/', b'%', path).all(|i| match path.get(i..).unwrap_or_default() {
        [b'/', b'/', ..] => false,
        [b'/', b'.'] | [b'/', b'.', b'/', ..] => false,
        [b'/', b'.', b'.'] | [b'/', b'.', b'.', b'/', ..] => false,
        [b'/', ..] => true,
        [b'%', h, l, ..] => matches!(
            (upper_hex(*h), upper_hex(*l)),
            (Some(h), Some(l)) if !is_unreserved(h << 4 | l)
        ),
        _ => false,
    })
}

/// Writes the normalised form of the path after its leading `/` into `out`.
fn rewrite(rest: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    let root = out.len();
    let mut segments = rest.split(|&b| b == b'/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        let mark = out.len();
        out.push(b'/');
        decode_into(seg, out)?;
        match out.get(mark + 1..).unwrap_or_default() {
            // "/a/" keeps its trailing slash; "/a//b" is "/a/b".
            [] if last => {}
            [] => out.truncate(mark),
            // "/a/." is "/a/" (RFC 3986 §5.2.4 B).
            [b'.'] => {
                out.truncate(mark);
                if last {
                    out.push(b'/');
                }
            }
            // "/a/b/.." is "/a/" (RFC 3986 §5.2.4 C); above the root is an error.
            [b'.', b'.'] => {
                out.truncate(mark);
                let parent = out.get(root..).and_then(|o| memchr::memrchr(b'/', o));
                let Some(parent) = parent else {
                    return Err(PathError::AboveRoot);
                };
                out.truncate(root + parent);
                if last {
                    out.push(b'/');
                }
            }
            _ => {}
        }
    }
    if out.len() == root {
        out.push(b'/');
    }
    Ok(())
}

/// Appends `seg` with unreserved characters decoded and the remaining
/// percent-encodings' hex digits uppercased.
fn decode_into(mut seg: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    while let Some(i) = memchr::memchr(b'%', seg) {
        let (plain, encoded) = seg.split_at(i);
        out.extend_from_slice(plain);
        let [_, h, l, tail @ ..] = encoded else {
            return Err(PathError::BadPercentEncoding);
        };
        let (Some(hv), Some(lv)) = (hex(*h), hex(*l)) else {
            return Err(PathError::BadPercentEncoding);
        };
        let byte = hv << 4 | lv;
        if is_unreserved(byte) {
            out.push(byte);
        } else {
            out.extend_from_slice(&[b'%', h.to_ascii_uppercase(), l.to_ascii_uppercase()]);
        }
        seg = tail;
    }
    out.extend_from_slice(seg);
    Ok(())
}

/// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

pub(super) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A hex digit in its normal (uppercase) spelling.
fn upper_hex(b: u8) -> Option<u8> {
    if b.is_ascii_lowercase() {
        None
    } else {
        hex(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_rfc3986_forbids_in_a_target_are_refused() {
        let mut out = Vec::new();
        for t in [
            &b"/a\\b"[..],
            b"/a\"b",
            b"/<x>",
            b"/{x}",
            b"/a|b",
            b"/a^b",
            b"/a`b",
            b"/a#f",
            b"/a?q=|",
            b"/a\x7f",
        ] {
            assert_eq!(
                normalize(t, &mut out),
                Err(PathError::InvalidChar),
                "{}",
                String::from_utf8_lossy(t)
            );
        }
        assert_eq!(
            normalize("/caf\u{e9}".as_bytes(), &mut out),
            Ok(false),
            "raw UTF-8 passes"
        );
    }

    /// The normalised target, or `None` when it was already normal.
    fn norm(t: &str) -> Result<Option<String>, PathError> {
        let mut out = Vec::new();
        let changed = normalize(t.as_bytes(), &mut out)?;
        if !changed {
            assert!(out.is_empty(), "{t}: out written for a normal path");
            return Ok(None);
        }
        assert!(out.len() <= t.len(), "{t}: grew");
        // Normalising is idempotent.
        let mut again = Vec::new();
        assert_eq!(normalize(&out, &mut again), Ok(false), "{t}");
        Ok(Some(String::from_utf8(out).unwrap()))
    }

    fn changed(t: &str, want: &str) {
        assert_eq!(norm(t), Ok(Some(want.to_string())), "{t}");
    }

    fn normal(t: &str) {
        assert_eq!(norm(t), Ok(None), "{t}");
    }

    #[test]
    fn already_normal_targets_are_left_alone() {
        for t in [
            "/",
            "/a",
            "/a/",
            "/a/b?q=1",
            "/a.b/..c/c..",
            "/.well-known/x",
            "/a/...",
            "/..a",
            "/a%2Fb",
            "/%20",
            "/%C3%A9",
            "",
            "?q=/../x",
            "*",
            "/a?x=/../y&%7e",
            "/a?",
            "/a?//",
        ] {
            normal(t);
        }
    }

    #[test]
    fn unreserved_characters_are_decoded_rfc3986_6_2_2_2() {
        changed("/%61dmin/x", "/admin/x");
        changed("/p/%7Euser", "/p/~user");
        changed("/p/%7euser", "/p/~user");
        changed("/%41%5a%30%39%2D%2E%5F%7E", "/AZ09-._~");
    }

    #[test]
    fn remaining_encodings_are_uppercased_rfc3986_6_2_2_1() {
        changed("/a%2fb", "/a%2Fb");
        changed("/%c3%a9", "/%C3%A9");
        changed("/%3a%7e", "/%3A~");
    }

    #[test]
    fn encoded_slash_stays_encoded_and_is_not_a_segment_rfc3986_2_2() {
        normal("/a%2F..%2Fb");
        normal("/a%2F../b");
        changed("/a/%2F/..", "/a/");
    }

    #[test]
    fn malformed_percent_encodings_are_errors_rfc3986_2_1() {
        for t in ["/%zz", "/%4", "/%", "/a%g0/b", "/a/%4?x", "/%%41"] {
            assert_eq!(norm(t), Err(PathError::BadPercentEncoding), "{t}");
        }
        // The query is not the path's business.
        normal("/a?%zz");
    }

    #[test]
    fn dot_segments_are_removed_rfc3986_5_2_4() {
        changed("/a/./b/../c", "/a/c");
        changed("/a/..", "/");
        changed("/a/../", "/");
        changed("/a/.", "/a/");
        changed("/a/b/..", "/a/");
        changed("/.", "/");
        changed("/./", "/");
        changed("/./admin/x", "/admin/x");
        changed("/pub/../admin/x", "/admin/x");
        changed("/a/b/../../c", "/c");
        changed("/a/./b/../c?x=/../y", "/a/c?x=/../y");
        changed("/a.b/./..c/c..", "/a.b/..c/c..");
    }

    #[test]
    fn encoded_dots_are_dot_segments_rfc3986_6_2_2_3() {
        changed("/a/%2e%2e/b", "/b");
        changed("/a/.%2E/b", "/b");
        changed("/a/%2e/b", "/a/b");
        assert_eq!(norm("/%2e%2e/admin/x"), Err(PathError::AboveRoot));
    }

    #[test]
    fn climbing_above_the_root_is_an_error() {
        for t in [
            "/..",
            "/../",
            "/../x",
            "/a/../..",
            "/a/../../b",
            "//..",
            "/./..",
            "/..?q",
        ] {
            assert_eq!(norm(t), Err(PathError::AboveRoot), "{t}");
        }
    }

    #[test]
    fn repeated_slashes_are_merged() {
        changed("//admin/x", "/admin/x");
        changed("/admin//x", "/admin/x");
        changed("/a///", "/a/");
        changed("//", "/");
        changed("///a//b//?q=//", "/a/b/?q=//");
        changed("/a//..", "/");
    }

    #[test]
    fn the_query_is_kept_as_sent() {
        changed("/a/../b?x=%7e&y=/./z", "/b?x=%7e&y=/./z");
        changed("//?", "/?");
    }

    #[test]
    fn out_is_appended_to_and_left_alone_on_error() {
        let mut out = b"keep".to_vec();
        assert_eq!(normalize(b"/../x", &mut out), Err(PathError::AboveRoot));
        assert_eq!(normalize(b"/a/./b", &mut out), Ok(true));
        assert_eq!(out, b"keep/a/b");
    }

    #[test]
    fn hostile_bytes_do_not_panic() {
        let alphabet = [b'/', b'.', b'%', b'2', b'e', b'E', b'f', b'a', b'?', b'z', 0xff];
        let mut out = Vec::new();
        // Every target of up to five bytes over the alphabet.
        let mut targets: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..5 {
            let next: Vec<Vec<u8>> = targets
                .iter()
                .flat_map(|t| alphabet.iter().map(move |&b| [t.as_slice(), &[b]].concat()))
                .collect();
            for t in &next {
                out.clear();
                if let Ok(true) = normalize(t, &mut out) {
                    assert!(out.len() <= t.len());
                    let mut again = Vec::new();
                    assert_eq!(normalize(&out, &mut again), Ok(false), "{t:?} -> {out:?}");
                }
            }
            targets = next;
        }
    }
}
