//! `CDN-Loop` (RFC 8586): the CDNs a request has already passed through.
//!
//! ```text
//! CDN-Loop  = #cdn-info
//! cdn-info  = cdn-id *( OWS ";" OWS parameter )
//! cdn-id    = ( uri-host [ ":" port ] ) / pseudonym
//! ```
//!
//! A cluster of ringfront hosts marks the requests it sends to a peer with
//! its `[cluster] id` (SPEC §8), and a host never sends a request marked so
//! to another peer: that is what ends a loop when two hosts disagree on an
//! owner (a reload reaching one before the other). The field may come as
//! several lines and as a list on each (RFC 9110 §5.3); a parameter's
//! quoted string may hold commas, so members are split outside quotes.

use super::token::list_members;

/// True when one of `lines` (the request's `CDN-Loop` field values) names
/// `id` as a cdn-id (compared case-insensitively, as a host name is).
pub fn carries<'a>(lines: impl IntoIterator<Item = &'a [u8]>, id: &[u8]) -> bool {
    lines
        .into_iter()
        .flat_map(list_members)
        .any(|m| cdn_id(m).eq_ignore_ascii_case(id))
}

/// The cdn-id of one member: what precedes its parameters, trimmed.
fn cdn_id(member: &[u8]) -> &[u8] {
    let end = memchr::memchr(b';', member).unwrap_or(member.len());
    member[..end].trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(lines: &[&str], id: &str) -> bool {
        carries(lines.iter().map(|l| l.as_bytes()), id.as_bytes())
    }

    #[test]
    fn finds_the_id_among_members_and_lines() {
        assert!(has(&["site-edge"], "site-edge"));
        assert!(has(&["other, site-edge; v=1"], "site-edge"));
        assert!(has(&["foo.example.net:443", "  SITE-EDGE  "], "site-edge"));
        assert!(has(&["a; note=\"x, y\", site-edge"], "site-edge"));
    }

    #[test]
    fn another_cdn_or_a_parameter_is_not_the_id() {
        assert!(!has(&[], "site-edge"));
        assert!(!has(&["site-edge-2", "edge"], "site-edge"));
        assert!(!has(&["other; id=site-edge"], "site-edge"));
        assert!(!has(&["other; note=\"a, site-edge\""], "site-edge"));
        assert!(!has(&[""], "site-edge"));
    }
}
