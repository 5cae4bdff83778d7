//! Whether a response may be compressed (SPEC §4 `compress = true`), pure.
//!
//! CloudFront's conditions, as its documentation lists them: the viewer
//! asked with GET; the status is 200, 403 or 404; the body is between
//! 1,000 and 10,000,000 bytes; the response has no Content-Encoding (an
//! `identity` one is none, RFC 9110 §8.4.1); its Content-Type is one of
//! the compressible types ([`compressible_type`]). Besides, RFC 9110 §7.7:
//! a proxy "MUST NOT transform the content" of a response whose
//! Cache-Control has `no-transform`.
//!
//! Whether the viewer accepts a coding is not asked here: a stored
//! response is compressed for every viewer at once (one entry per coding),
//! and the streaming path asks the viewer's normalised Accept-Encoding.

use crate::http::token::list_members;

/// The smallest body compressed: below it, the gain is lost to the coding's
/// own framing and the round trip it saves is none (CloudFront's bound).
pub const MIN_LEN: u64 = 1_000;

/// The largest body compressed (CloudFront's bound): a larger one costs a
/// pool worker seconds, for objects that are rarely text.
pub const MAX_LEN: u64 = 10_000_000;

/// What the rules read off a request and its response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The behavior's `compress`.
    pub enabled: bool,
    pub method: &'a [u8],
    pub status: u16,
    /// Every Content-Encoding line as one list.
    pub content_encoding: Option<&'a [u8]>,
    /// Every Cache-Control line as one list.
    pub cache_control: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    /// The body's length; `None` when the head does not say it (chunked,
    /// delimited by close), which is not compressed on the fly (CloudFront
    /// needs a Content-Length to tell the size too).
    pub len: Option<u64>,
}

/// Whether the response the facts describe is compressed.
pub fn eligible(f: &Facts<'_>) -> bool {
    f.enabled
        && f.method == b"GET"
        && matches!(f.status, 200 | 403 | 404)
        && f.len.is_some_and(|n| (MIN_LEN..=MAX_LEN).contains(&n))
        && f.content_encoding.is_none_or(identity_only)
        && !f.cache_control.is_some_and(no_transform)
        && f.content_type.is_some_and(compressible_type)
}

/// A Content-Encoding list that names no coding but `identity` (RFC 9110
/// §8.4.1: "identity" is reserved for "no encoding").
fn identity_only(list: &[u8]) -> bool {
    list_members(list).all(|m| m.eq_ignore_ascii_case(b"identity"))
}

/// Cache-Control has `no-transform` (RFC 9111 §5.2.2.6, RFC 9110 §7.7).
fn no_transform(list: &[u8]) -> bool {
    list_members(list).any(|m| {
        let name = m.split(|&b| b == b'=').next().unwrap_or(m);
        name.trim_ascii().eq_ignore_ascii_case(b"no-transform")
    })
}

/// Types that are compressed besides `text/*`, `*+json` and `*+xml`:
/// CloudFront's list (scripts, JSON, XML, fonts without compression of
/// their own, wasm, playlists), lowercased.
const TYPES: &[&[u8]] = &[
    b"application/javascript",
    b"application/x-javascript",
    b"application/ecmascript",
    b"application/json",
    b"application/xml",
    b"application/xhtml+xml",
    b"application/wasm",
    b"application/manifest+json",
    b"application/vnd.ms-fontobject",
    b"application/x-font-ttf",
    b"application/x-font-truetype",
    b"application/x-font-opentype",
    b"application/font-sfnt",
    b"application/vnd.apple.mpegurl",
    b"application/x-mpegurl",
    b"application/dash+xml",
    b"application/vnd.mapbox-vector-tile",
    b"application/x-protobuf",
    b"font/ttf",
    b"font/otf",
    b"font/opentype",
    b"font/eot",
    b"image/svg+xml",
    b"image/x-icon",
    b"image/vnd.microsoft.icon",
    b"image/bmp",
];

/// Whether a Content-Type names a compressible media type (its
/// parameters and case aside, RFC 9110 §8.3.1). Images, audio, video and
/// archives are compressed already (`image/png`, `font/woff2`,
/// `application/zip`) and are not. `text/event-stream` is not either: a
/// coder holds data back until it has enough, and an event stream's
/// viewer waits for each event as it comes.
pub fn compressible_type(ct: &[u8]) -> bool {
    let media = ct.split(|&b| b == b';').next().unwrap_or(ct).trim_ascii();
    let mut lower = [0u8; 64];
    let Some(m) = lower.get_mut(..media.len()) else {
        return false;
    };
    for (d, s) in m.iter_mut().zip(media) {
        *d = s.to_ascii_lowercase();
    }
    let m = &*m;
    let Some(slash) = m.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (kind, sub) = (&m[..slash], &m[slash + 1..]);
    if sub.is_empty() {
        return false;
    }
    (kind == b"text" && sub != b"event-stream")
        || (kind == b"application" && (sub.ends_with(b"+json") || sub.ends_with(b"+xml")))
        || TYPES.contains(&m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html() -> Facts<'static> {
        Facts {
            enabled: true,
            method: b"GET",
            status: 200,
            content_encoding: None,
            cache_control: Some(b"max-age=60"),
            content_type: Some(b"text/html; charset=utf-8"),
            len: Some(5_000),
        }
    }

    #[test]
    fn a_text_response_of_a_few_kilobytes_is_compressed() {
        assert!(eligible(&html()));
        assert!(
            !eligible(&Facts {
                enabled: false,
                ..html()
            }),
            "compress = false"
        );
        assert!(!eligible(&Facts {
            method: b"HEAD",
            ..html()
        }));
        assert!(!eligible(&Facts {
            method: b"POST",
            ..html()
        }));
    }

    #[test]
    fn only_200_403_and_404_are_compressed() {
        for (status, yes) in [
            (200, true),
            (403, true),
            (404, true),
            (206, false),
            (301, false),
            (500, false),
        ] {
            assert_eq!(eligible(&Facts { status, ..html() }), yes, "{status}");
        }
    }

    #[test]
    fn the_body_is_between_1000_and_10_000_000_bytes_and_its_length_known() {
        for (len, yes) in [
            (Some(999), false),
            (Some(1_000), true),
            (Some(10_000_000), true),
            (Some(10_000_001), false),
            (Some(u64::MAX), false),
            (None, false),
        ] {
            assert_eq!(eligible(&Facts { len, ..html() }), yes, "{len:?}");
        }
    }

    #[test]
    fn an_encoded_response_is_not_compressed_again_unless_identity() {
        let ce = |v: &'static [u8]| Facts {
            content_encoding: Some(v),
            ..html()
        };
        assert!(!eligible(&ce(b"gzip")));
        assert!(!eligible(&ce(b"br")));
        assert!(!eligible(&ce(b"identity, gzip")));
        assert!(eligible(&ce(b"identity")));
        assert!(eligible(&ce(b"Identity ,")));
        assert!(eligible(&ce(b"")));
    }

    #[test]
    fn no_transform_forbids_it() {
        let cc = |v: &'static [u8]| Facts {
            cache_control: Some(v),
            ..html()
        };
        assert!(!eligible(&cc(b"max-age=60, no-transform")));
        assert!(!eligible(&cc(b"No-Transform")));
        assert!(eligible(&cc(b"max-age=60, x=\"no-transform\"")), "inside a value");
        assert!(eligible(&cc(b"no-transformation")));
    }

    #[test]
    fn compressible_types() {
        for t in [
            "text/html",
            "TEXT/CSS; charset=utf-8",
            "text/plain",
            "text/csv",
            "application/json",
            "application/ld+json",
            "application/problem+json",
            "application/javascript",
            "application/x-javascript",
            "application/xml",
            "application/rss+xml",
            "image/svg+xml",
            "application/wasm",
            "application/manifest+json",
            "font/ttf",
            "font/otf",
            "application/vnd.ms-fontobject",
        ] {
            assert!(compressible_type(t.as_bytes()), "{t}");
        }
        for t in [
            "image/png",
            "image/jpeg",
            "image/webp",
            "video/mp4",
            "font/woff2",
            "application/zip",
            "application/gzip",
            "application/octet-stream",
            "text/event-stream",
            "text/",
            "text",
            "",
            "application/jsonx",
        ] {
            assert!(!compressible_type(t.as_bytes()), "{t}");
        }
        assert!(!compressible_type(&[b'a'; 200]), "longer than any type");
        assert!(!eligible(&Facts {
            content_type: None,
            ..html()
        }));
    }
}
