//! Header edits: the `origin_request` / `origin_response` actions of a
//! behavior (SPEC §2), its origin request policy (`forward_*`) and its
//! response headers policy (`viewer_response`), as data the head writers
//! apply (`http::write`).
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
}
