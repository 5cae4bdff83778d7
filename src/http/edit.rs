//! Header edits: the `origin_request` / `origin_response` actions of a
//! behavior (SPEC §2), its origin request policy (`forward_*`) and its
//! response headers policy (`viewer_response`), as data the head writers
//! apply (`http::write`); the response headers policy is applied here, in
//! place, over a head already written ([`apply`]).
//! Validated and built by `config`; kept here so that `http/` needs nothing
//! from the configuration layer.

/// One piece of a header action value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValuePart {
    Lit(String),
    Attempt,
    Origin,
    Role,
}

/// `origin_request` / `origin_response`, validated: lowercase names, values
/// split at their placeholders.
#[derive(Debug, Clone, Default)]
pub struct HeaderActions {
    pub set: Vec<(String, Vec<ValuePart>)>,
    pub remove: Vec<String>,
}

impl HeaderActions {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }

    /// True when the header named `name` (any case) is set or removed here.
    pub fn touches(&self, name: &[u8]) -> bool {
        self.set.iter().any(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            || self.remove.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Appends `value` with its placeholders filled in.
    pub fn render(parts: &[ValuePart], attempt: u32, origin: &str, role: &str, out: &mut Vec<u8>) {
        for p in parts {
            match p {
                ValuePart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                ValuePart::Attempt => out.extend_from_slice(itoa::Buffer::new().format(attempt).as_bytes()),
                ValuePart::Origin => out.extend_from_slice(origin.as_bytes()),
                ValuePart::Role => out.extend_from_slice(role.as_bytes()),
            }
        }
    }
}

/// `forward_cookies`: which of the viewer's cookies reach the origin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CookieForward {
    #[default]
    All,
    None,
    /// Only these cookie names (case-sensitive), sorted.
    Only(Vec<Box<[u8]>>),
}

/// A behavior's origin request policy (SPEC §2, CloudFront's origin
/// request policy): what of the viewer's request reaches the origin
/// besides what the cache key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardPolicy {
    /// `forward_headers`: `None` = every end-to-end header; else only these
    /// names (lowercased, sorted), plus Host, the key's headers and what
    /// ringfront adds. Cookie follows `cookies`, Accept-Encoding SPEC §4.
    pub headers: Option<Vec<Box<[u8]>>>,
    /// `forward_cookies`.
    pub cookies: CookieForward,
    /// `forward_query_string`: false = only the key's parameters.
    pub query_string: bool,
}

impl Default for ForwardPolicy {
    fn default() -> Self {
        ForwardPolicy {
            headers: None,
            cookies: CookieForward::All,
            query_string: true,
        }
    }
}

/// A behavior's response headers policy (`viewer_response`, SPEC §5): the
/// last edit of every response of the behavior (hits, misses, 304s,
/// errors), prebuilt so applying it allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseEdits {
    /// Lowercase names of the lines to drop: those removed and those set.
    pub drop: Vec<Box<[u8]>>,
    /// The set lines, `name: value\r\n` each, ready to append.
    pub lines: Box<[u8]>,
}

impl ResponseEdits {
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.lines.is_empty()
    }

    /// True when the field line `line` names a header to drop: the name
    /// before its colon, whole, in any case (field names are
    /// case-insensitive: RFC 9110 §5.1). `drop` is sorted and lowercase.
    fn drops(&self, line: &[u8]) -> bool {
        let Some(colon) = memchr::memchr(b':', line) else {
            return false;
        };
        let name = &line[..colon];
        self.drop
            .binary_search_by(|d| d.iter().copied().cmp(name.iter().map(u8::to_ascii_lowercase)))
            .is_ok()
    }
}

/// Applies `edits` to the response head in `out[head_start..]` (status
/// line, field lines, final CRLF), in place: every field line whose name
/// (any case) is in `edits.drop` is removed, and `edits.lines` go in before
/// the final CRLF. The one place the response headers policy is applied
/// (SPEC §5: "apply last, to every response"); nothing is allocated beyond
/// the growth of `out` itself, a buffer the caller reuses.
///
/// Bytes after the head stay after it. A head without its final CRLF
/// (never written by ringfront) is left as it is.
pub fn apply(out: &mut Vec<u8>, head_start: usize, edits: &ResponseEdits) {
    if edits.is_empty() {
        return;
    }
    let Some(head) = out.get(head_start..) else { return };
    // RFC 9112 §2.1: start-line, field lines each ending in CRLF, CRLF.
    let (Some(nl), Some(blank)) = (memchr::memchr(b'\n', head), memchr::memmem::find(head, b"\r\n\r\n")) else {
        return;
    };
    let fields = head_start + nl + 1;
    // Where the final CRLF starts.
    let end = head_start + blank + 2;
    if end < fields {
        return;
    }
    let mut read = fields;
    let mut write = fields;
    while read < end {
        let line_end = memchr::memchr(b'\n', &out[read..end]).map_or(end, |i| read + i + 1);
        if !edits.drops(&out[read..line_end]) {
            if write != read {
                out.copy_within(read..line_end, write);
            }
            write += line_end - read;
        }
        read = line_end;
    }
    out.drain(write..end);
    out.extend_from_slice(&edits.lines);
    out[write..].rotate_right(edits.lines.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits(drop: &[&str], lines: &str) -> ResponseEdits {
        let mut drop: Vec<Box<[u8]>> = drop.iter().map(|d| d.as_bytes().into()).collect();
        drop.sort_unstable();
        ResponseEdits {
            drop,
            lines: lines.as_bytes().into(),
        }
    }

    fn applied(head: &str, e: &ResponseEdits) -> String {
        let mut out = b"BEFORE".to_vec();
        out.extend_from_slice(head.as_bytes());
        apply(&mut out, 6, e);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("BEFORE"), "bytes before the head untouched: {s}");
        s[6..].to_string()
    }

    const HEAD: &str = "HTTP/1.1 200 OK\r\nServer: o\r\nX-Powered-By: php\r\nContent-Length: 2\r\nx-powered-by: again\r\nX-Cache: Hit from r\r\n\r\n";

    #[test]
    fn removes_every_line_of_a_name_in_any_case() {
        let e = edits(&["x-powered-by"], "");
        assert_eq!(
            applied(HEAD, &e),
            "HTTP/1.1 200 OK\r\nServer: o\r\nContent-Length: 2\r\nX-Cache: Hit from r\r\n\r\n"
        );
    }

    #[test]
    fn set_lines_replace_and_go_before_the_final_crlf() {
        let e = edits(&["server", "x-cache"], "server: edge\r\nx-cache: mine\r\n");
        assert_eq!(
            applied(HEAD, &e),
            "HTTP/1.1 200 OK\r\nX-Powered-By: php\r\nContent-Length: 2\r\nx-powered-by: again\r\nserver: edge\r\nx-cache: mine\r\n\r\n"
        );
    }

    #[test]
    fn a_name_matches_whole_never_a_prefix_or_suffix() {
        let head = "HTTP/1.1 200 OK\r\nX-Powered: a\r\nX-Powered-By-Me: b\r\nPowered-By: c\r\nX-Powered-By: d\r\n\r\n";
        let e = edits(&["x-powered-by"], "");
        assert_eq!(
            applied(head, &e),
            "HTTP/1.1 200 OK\r\nX-Powered: a\r\nX-Powered-By-Me: b\r\nPowered-By: c\r\n\r\n"
        );
    }

    #[test]
    fn a_head_without_fields_gets_the_set_lines() {
        let e = edits(&["x-a"], "x-a: 1\r\n");
        assert_eq!(
            applied("HTTP/1.1 304 Not Modified\r\n\r\n", &e),
            "HTTP/1.1 304 Not Modified\r\nx-a: 1\r\n\r\n"
        );
    }

    #[test]
    fn a_value_naming_a_dropped_header_is_kept() {
        let head = "HTTP/1.1 200 OK\r\nVary: server\r\nX-Note: server: x\r\n\r\n";
        let e = edits(&["server"], "");
        assert_eq!(applied(head, &e), head);
    }

    #[test]
    fn the_first_and_last_lines_can_go() {
        let head = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nA: 3\r\n\r\n";
        assert_eq!(applied(head, &edits(&["a"], "")), "HTTP/1.1 200 OK\r\nB: 2\r\n\r\n");
        assert_eq!(applied(head, &edits(&["a", "b"], "")), "HTTP/1.1 200 OK\r\n\r\n");
    }

    #[test]
    fn empty_edits_leave_the_head_untouched() {
        assert_eq!(applied(HEAD, &ResponseEdits::default()), HEAD);
    }

    #[test]
    fn within_capacity_nothing_is_reallocated() {
        let e = edits(&["server"], "strict-transport-security: max-age=1\r\n");
        let mut out = Vec::with_capacity(HEAD.len() + e.lines.len());
        out.extend_from_slice(HEAD.as_bytes());
        let at = out.as_ptr();
        apply(&mut out, 0, &e);
        assert_eq!(out.as_ptr(), at);
        assert!(out
            .ends_with(b"x-powered-by: again\r\nX-Cache: Hit from r\r\nstrict-transport-security: max-age=1\r\n\r\n"));
    }

    #[test]
    fn bytes_after_the_head_stay_after_it() {
        let e = edits(&["a"], "x: 1\r\n");
        let mut out = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\nbody\r\n\r\n".to_vec();
        apply(&mut out, 0, &e);
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nB: 2\r\nx: 1\r\n\r\nbody\r\n\r\n");
    }

    #[test]
    fn a_head_cut_short_is_left_as_it_is() {
        let e = edits(&["a"], "x: 1\r\n");
        for head in ["HTTP/1.1 200 OK\r\nA: 1\r\n", "HTTP/1.1 200 OK", ""] {
            assert_eq!(applied(head, &e), head);
        }
    }
}
