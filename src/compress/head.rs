//! The head of a compressed representation, pure: the head of the
//! response it was made from, with
//!
//! - `Vary` naming Accept-Encoding (RFC 9110 §12.5.5: the response now
//!   depends on it), one line: the origin's members, and `Accept-Encoding`
//!   unless it is there already (or `*` is);
//! - `Content-Encoding` (RFC 9110 §8.4) for a coded one;
//! - its own `Content-Length`, or none when the body is streamed;
//! - a weak `ETag` for a coded one: a strong validator must not be shared
//!   by two representations (RFC 9110 §8.8.1: it "changes ... whenever
//!   [the] selected representation data ... changes"), and the coded bytes
//!   differ from the identity ones (nginx's gzip weakens it too); a value
//!   that is no entity-tag is dropped;
//! - for a coded one, none of the origin's `Content-Encoding` lines (an
//!   `identity` or empty one would make the list `identity, gzip`, which
//!   clients refuse) nor digests of the identity bytes (`Content-MD5`,
//!   `Content-Digest`, `Repr-Digest`: RFC 9530, they would not match).
//!
//! The head is ringfront's own writing (one field per line, `name: value`,
//! CRLF-ended): a stored head ([`Object::head`](crate::cache::store::Object),
//! no final empty line) or a whole head to a viewer (with it).

use super::codec::Coding;
use crate::http::token::list_members;

/// Writes to `out` the head `head` as the head of the representation in
/// `coding` (`None`: identity) whose body is `len` bytes (`None`: no
/// Content-Length, the body is streamed).
pub fn rewrite(head: &[u8], coding: Option<Coding>, len: Option<u64>, out: &mut Vec<u8>) {
    let vary = merged_vary(head);
    let (lines, ended) = match head.strip_suffix(b"\r\n\r\n") {
        Some(h) => (h, true),
        None => (head.strip_suffix(b"\r\n").unwrap_or(head), false),
    };
    let mut vary_written = false;
    for (i, line) in lines.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (name, value) = split(line);
        if i == 0 {
            out.extend_from_slice(line);
        } else if name.eq_ignore_ascii_case(b"vary") {
            if vary_written {
                continue;
            }
            vary_written = true;
            out.extend_from_slice(b"Vary: ");
            out.extend_from_slice(&vary);
        } else if name.eq_ignore_ascii_case(b"content-length") || (coding.is_some() && not_coded(name, value)) {
            continue;
        } else if coding.is_some() && name.eq_ignore_ascii_case(b"etag") {
            out.extend_from_slice(b"ETag: ");
            weak_etag(value, out);
        } else {
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b"\r\n");
    }
    if !vary_written {
        out.extend_from_slice(b"Vary: ");
        out.extend_from_slice(&vary);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(c) = coding {
        out.extend_from_slice(b"Content-Encoding: ");
        out.extend_from_slice(c.token());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = len {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if ended {
        out.extend_from_slice(b"\r\n");
    }
}

/// The lines of the identity head a coded head leaves out: the origin's
/// Content-Encoding, digests of the identity bytes, and an ETag that is no
/// entity-tag (RFC 9110 §8.8.3: `"opaque"`, optionally `W/` before it).
fn not_coded(name: &[u8], value: &[u8]) -> bool {
    const LEFT_OUT: [&[u8]; 4] = [b"content-encoding", b"content-md5", b"content-digest", b"repr-digest"];
    let tag = value.strip_prefix(b"W/").unwrap_or(value);
    let entity_tag = tag.len() >= 2 && tag.starts_with(b"\"") && tag.ends_with(b"\"");
    LEFT_OUT.iter().any(|n| name.eq_ignore_ascii_case(n)) || (name.eq_ignore_ascii_case(b"etag") && !entity_tag)
}

/// Appends the weak form of entity tag `tag` (RFC 9110 §8.8.3: `W/`
/// before the opaque tag); a weak one is kept as it is.
pub fn weak_etag(tag: &[u8], out: &mut Vec<u8>) {
    let tag = tag.trim_ascii();
    if !tag.starts_with(b"W/") {
        out.extend_from_slice(b"W/");
    }
    out.extend_from_slice(tag);
}

/// A line's field name and value, trimmed.
fn split(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&b| b == b':') {
        Some(i) => (line[..i].trim_ascii(), line[i + 1..].trim_ascii()),
        None => (line, b""),
    }
}

/// The Vary value of the coded head: every Vary line's members, then
/// `Accept-Encoding` unless one of them is that or `*`.
fn merged_vary(head: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let mut has = false;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let (name, value) = split(line.strip_suffix(b"\r").unwrap_or(line));
        if !name.eq_ignore_ascii_case(b"vary") {
            continue;
        }
        for m in list_members(value) {
            has |= m == b"*" || m.eq_ignore_ascii_case(b"accept-encoding");
            if !v.is_empty() {
                v.extend_from_slice(b", ");
            }
            v.extend_from_slice(m);
        }
    }
    if !has {
        if !v.is_empty() {
            v.extend_from_slice(b", ");
        }
        v.extend_from_slice(b"Accept-Encoding");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coded_head_drops_the_origins_coding_digests_and_a_broken_etag() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Encoding: identity\r\nContent-MD5: x\r\nContent-Digest: sha-256=:x:\r\nETag:\r\nContent-Length: 5000\r\n\r\n";
        let mut out = Vec::new();
        rewrite(head, Some(Coding::Gzip), Some(10), &mut out);
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "HTTP/1.1 200 OK\r\nVary: Accept-Encoding\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\n"
        );
        let mut out = Vec::new();
        rewrite(head, None, Some(5000), &mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("Content-Encoding: identity\r\n"),
            "identity keeps it"
        );
    }

    fn rw(head: &str, coding: Option<Coding>, len: Option<u64>) -> String {
        let mut out = Vec::new();
        rewrite(head.as_bytes(), coding, len, &mut out);
        String::from_utf8(out).unwrap()
    }

    const STORED: &str =
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: \"v1\"\r\nContent-Length: 5000\r\nVia: 1.1 rf\r\n";

    #[test]
    fn a_coded_head_says_its_coding_length_and_vary_and_weakens_the_etag() {
        assert_eq!(
            rw(STORED, Some(Coding::Br), Some(1234)),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: W/\"v1\"\r\nVia: 1.1 rf\r\n\
             Vary: Accept-Encoding\r\nContent-Encoding: br\r\nContent-Length: 1234\r\n"
        );
    }

    #[test]
    fn the_identity_head_keeps_its_etag_and_length_and_gains_vary() {
        assert_eq!(
            rw(STORED, None, Some(5000)),
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nETag: \"v1\"\r\nVia: 1.1 rf\r\n\
             Vary: Accept-Encoding\r\nContent-Length: 5000\r\n"
        );
    }

    #[test]
    fn the_origins_vary_lines_become_one_with_accept_encoding_once() {
        let head = "HTTP/1.1 200 OK\r\nVary: Origin\r\nX: y\r\nvary: accept-language\r\n";
        assert_eq!(
            rw(head, Some(Coding::Gzip), Some(9)),
            "HTTP/1.1 200 OK\r\nVary: Origin, accept-language, Accept-Encoding\r\nX: y\r\n\
             Content-Encoding: gzip\r\nContent-Length: 9\r\n"
        );
        let head = "HTTP/1.1 200 OK\r\nVary: accept-encoding, Origin\r\n";
        assert_eq!(
            rw(head, None, Some(9)),
            "HTTP/1.1 200 OK\r\nVary: accept-encoding, Origin\r\nContent-Length: 9\r\n"
        );
    }

    #[test]
    fn a_streamed_head_has_no_length_and_keeps_its_final_line() {
        let head = "HTTP/1.1 200 OK\r\nETag: W/\"w\"\r\nTransfer-Encoding: chunked\r\nX-Cache: Miss\r\n\r\n";
        assert_eq!(
            rw(head, Some(Coding::Br), None),
            "HTTP/1.1 200 OK\r\nETag: W/\"w\"\r\nTransfer-Encoding: chunked\r\nX-Cache: Miss\r\n\
             Vary: Accept-Encoding\r\nContent-Encoding: br\r\n\r\n"
        );
    }

    #[test]
    fn weak_tags() {
        let w = |t: &str| {
            let mut o = Vec::new();
            weak_etag(t.as_bytes(), &mut o);
            String::from_utf8(o).unwrap()
        };
        assert_eq!(w("\"a\""), "W/\"a\"");
        assert_eq!(w(" W/\"a\" "), "W/\"a\"");
    }
}
