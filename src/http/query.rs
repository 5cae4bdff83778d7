//! Query strings (RFC 3986 §3.4): the parameters a policy keeps, for the
//! cache key (`cache_query_string` as a list) and for what the origin is
//! sent (`forward_query_string = false`).
//!
//! A parameter is kept when the origin would read it as a listed name, not
//! only when it is spelled as one: an allow-list that compared names as
//! sent would key `?id=1&i%64=666` as `?id=1` while the origin, which
//! decodes the name, reads id 666 (a poisoned `?id=1`). So:
//!
//! - names are compared after decoding their percent-encodings (RFC 3986
//!   §2.1; `i%64` is `id`, §2.3, and `tags%5B%5D` is `tags[]`, which is
//!   what PHP, Rack, Python and Express read). Every valid `%XX` is
//!   decoded, not only those of unreserved characters: a decoded byte a
//!   listed name cannot hold (`&`, `=`, `;`, `#`, whitespace, controls:
//!   the config refuses them) never matches, so decoding more can only
//!   keep more. `+` is not read as a space: a listed name has none;
//! - a parameter holding `;` is also read as the `;`-separated pieces
//!   old Rack and Python (`parse_qs` before 3.9.2) split it into: it is
//!   kept, whole, when any piece's name is listed, under the first such;
//! - a kept parameter keeps its raw text, so `i%64=666` joins the key as
//!   sent and makes another key than `id=666` or `id=1`.
//!
//! Limitation: names are case-sensitive (as RFC 3986 and most frameworks
//! read them). ASP.NET reads query names case-insensitively, so to it
//! `ID=666` is `id`; in front of such an origin, use
//! `forward_query_string = false` (it then gets only the key's
//! parameters) or key on the whole query string.

use super::path::hex;
use std::cmp::Ordering;

/// How many kept parameters are put in name order on the stack; a query
/// keeping more (one too long to be looked up in the cache, see
/// `cache::key::MAX_KEYED_PIECES`) is ordered on the heap.
pub const KEPT_ON_STACK: usize = 256;

/// Appends the parameters of query `q` whose names (read as the module
/// says) are in `names` (sorted), in name order and, for one name, in the
/// order sent; the first preceded by `first` (`?`), the others by `&`.
/// One pass over `q` (a binary search of `names` per parameter), then a
/// sort of what is kept: no names × parameters work. Allocates nothing
/// beyond `out`'s growth while at most [`KEPT_ON_STACK`] are kept.
pub fn append_kept(out: &mut Vec<u8>, q: &[u8], names: &[Box<[u8]>], first: u8) {
    if names.is_empty() {
        return;
    }
    // (name index, start, end) of each kept parameter.
    let mut stack = [(0usize, 0usize, 0usize); KEPT_ON_STACK];
    let mut heap = Vec::new();
    let mut n = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'&', q).chain(std::iter::once(q.len())) {
        if let Some(i) = q.get(start..end).and_then(|p| listed_as(p, names)) {
            if let Some(slot) = stack.get_mut(n) {
                *slot = (i, start, end);
            } else {
                if heap.is_empty() {
                    heap.extend_from_slice(&stack);
                }
                heap.push((i, start, end));
            }
            n += 1;
        }
        start = end + 1;
    }
    let kept = if heap.is_empty() {
        &mut stack[..n]
    } else {
        &mut heap[..]
    };
    // By name, then by position: the order sent within a name.
    kept.sort_unstable();
    let mut sep = first;
    for &(_, start, end) in kept.iter() {
        out.push(sep);
        out.extend_from_slice(q.get(start..end).unwrap_or_default());
        sep = b'&';
    }
}

/// The index in `names` of the name `param` is kept under: its own name,
/// or, holding `;`, the first of its pieces' names that is listed.
fn listed_as(param: &[u8], names: &[Box<[u8]>]) -> Option<usize> {
    if memchr::memchr(b';', param).is_none() {
        return position(name_of(param), names);
    }
    param
        .split(|&b| b == b';')
        .find_map(|piece| position(name_of(piece), names))
}

/// Where `raw` (a name as sent) is in `names`, compared decoded.
fn position(raw: &[u8], names: &[Box<[u8]>]) -> Option<usize> {
    if memchr::memchr(b'%', raw).is_none() {
        return names.binary_search_by(|n| (**n).cmp(raw)).ok();
    }
    names.binary_search_by(|n| decoded_cmp(raw, n).reverse()).ok()
}

/// A parameter's name: what comes before its first `=`.
fn name_of(param: &[u8]) -> &[u8] {
    memchr::memchr(b'=', param).map_or(param, |i| &param[..i])
}

/// `raw` with its percent-encodings decoded, compared with `name`.
fn decoded_cmp(raw: &[u8], name: &[u8]) -> Ordering {
    Decoded(raw).cmp(name.iter().copied())
}

/// The bytes of a query name with every valid `%XX` decoded (a `%` not
/// followed by two hex digits stands for itself).
struct Decoded<'a>(&'a [u8]);

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (byte, rest) = match self.0 {
            [b'%', h, l, rest @ ..] => match (hex(*h), hex(*l)) {
                (Some(h), Some(l)) => (h << 4 | l, rest),
                _ => (b'%', &self.0[1..]),
            },
            [b, rest @ ..] => (*b, rest),
            [] => return None,
        };
        self.0 = rest;
        Some(byte)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(q: &str, names: &[&str]) -> String {
        let mut names: Vec<Box<[u8]>> = names.iter().map(|n| n.as_bytes().into()).collect();
        names.sort_unstable();
        let mut out = Vec::new();
        append_kept(&mut out, q.as_bytes(), &names, b'?');
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn kept_parameters_come_in_name_order_and_whole_names_only() {
        assert_eq!(kept("b=2&ab=9&a=1&a=0", &["a", "b"]), "?a=1&a=0&b=2");
        assert_eq!(kept("c=3", &["a", "b"]), "");
    }

    #[test]
    fn names_are_compared_percent_decoded_and_kept_as_sent_rfc3986_2_1() {
        assert_eq!(kept("id=1&i%64=666", &["id"]), "?id=1&i%64=666");
        assert_eq!(kept("%69%64=2", &["id"]), "?%69%64=2");
        assert_eq!(kept("I%44=2", &["id"]), "", "case kept");
        assert_eq!(kept("tags%5B%5D=1&tags[]=2", &["tags[]"]), "?tags%5B%5D=1&tags[]=2");
        assert_eq!(
            kept("a%2=1&a%zz=2&a%=3", &["a%2", "a%"]),
            "?a%=3&a%2=1",
            "malformed: as sent"
        );
        assert_eq!(kept("a%26b=1", &["a"]), "", "an encoded & is part of the name");
        assert_eq!(kept("i%64", &["id"]), "?i%64", "a name without a value");
    }

    #[test]
    fn legacy_semicolon_pieces_keep_the_whole_parameter_once() {
        assert_eq!(kept("x=1;id=666", &["id"]), "?x=1;id=666");
        assert_eq!(kept("x=1;i%64=666&y=2", &["id"]), "?x=1;i%64=666");
        // Under the first listed piece's name only.
        assert_eq!(kept("b=1;a=2&a=3", &["a", "b"]), "?a=3&b=1;a=2");
        assert_eq!(kept(";;;&id=1;", &["id"]), "?id=1;");
        assert_eq!(kept("x=1;y=2", &["id"]), "");
    }

    #[test]
    fn more_kept_parameters_than_the_stack_holds_keep_their_order() {
        let q: Vec<String> = (0..600).map(|i| format!("{}={i}", ["b", "a", "c"][i % 3])).collect();
        let want: Vec<String> = ["a", "b"]
            .iter()
            .flat_map(|n| q.iter().filter(move |p| p.starts_with(&format!("{n}="))).cloned())
            .collect();
        assert_eq!(kept(&q.join("&"), &["a", "b"]), format!("?{}", want.join("&")));
        assert_eq!(kept("a=1", &[]), "");
        assert_eq!(kept("", &["a"]), "");
    }

    #[test]
    fn decoding_is_bytewise_and_total() {
        let d = |s: &[u8]| Decoded(s).collect::<Vec<u8>>();
        assert_eq!(d(b"%41%7e%7E%00"), b"A~~\0");
        assert_eq!(d(b"%"), b"%");
        assert_eq!(d(b"%4"), b"%4");
        assert_eq!(d(b"%%41"), b"%A");
        assert_eq!(d(b"\xff%ff"), b"\xff\xff");
    }
}
