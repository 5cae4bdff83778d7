//! The cookies of a request, pure: the one reading of a `Cookie` header
//! that both the cache key (a behavior's key cookies, SPEC §2
//! `cache_key_cookies`) and the origin request (`forward_cookies`, written
//! by [`super::write`]) use, so that the cookies a variant is keyed by are
//! the cookies its origin was sent.
//!
//! RFC 6265 §4.2.1: a user agent sends `cookie-string = cookie-pair *( ";"
//! SP cookie-pair )`, `cookie-pair = cookie-name "=" cookie-value`, in one
//! header line. Several lines (a proxy's split, or an HTTP/2 hop's
//! `cookie` fields, which RFC 9113 §8.2.3 joins with "; ") are read as one
//! list. Each pair is cut at its first `=` into a name and a value, each
//! trimmed of whitespace (the leniency of RFC 6265 §5.2 steps 4–5, which
//! servers apply); names compare byte for byte, as cookie names are
//! case-sensitive.
//!
//! A pair is read only when it is what §4.1.1 lets a server send: its name
//! a token and its value `*cookie-octet` or the same in DQUOTEs, where a
//! cookie-octet is visible US-ASCII other than DQUOTE, comma, semicolon
//! and backslash. Any other pair is dropped, from the key and from what
//! the origin is sent alike, because origins disagree about it: Python's
//! `SimpleCookie` reads `lang=fr` out of `session=1 lang=fr` and
//! `session=1, lang=fr` (space and comma as separators, RFC 2965's comma)
//! where RFC 6265 reads one cookie `session`; keyed one way and answered
//! the other, the answer for `lang=fr` would be stored for viewers without
//! it. A pair without `=` (RFC 6265bis §5.6 step 3: a value with an empty
//! name) names no cookie and is dropped too. The origin is sent the pairs
//! read, rebuilt as `name=value` ([`super::write`]), so no parser finds
//! another cookie in them.

use super::token::{is_token, trim_ows};

/// The cookie pairs of `lines` (every line of the request's Cookie header)
/// that may be read ([module doc](self)), in the order sent, as `(name,
/// value)`, each trimmed. Allocates nothing.
pub fn pairs<'a>(lines: impl Iterator<Item = &'a [u8]>) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    lines.flat_map(|line| line.split(|&b| b == b';')).filter_map(split_pair)
}

/// The values of cookie `name` in `lines`, in the order sent: a name sent
/// twice (two paths, RFC 6265 §5.4 step 2 lists the more specific first)
/// has both. Allocates nothing.
pub fn values<'a>(lines: impl Iterator<Item = &'a [u8]>, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    pairs(lines).filter_map(move |(n, v)| (n == name).then_some(v))
}

/// A pair's name and value, trimmed; `None` for one without `=`, or whose
/// name is not a token, or whose value is not cookie-octets.
fn split_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = memchr::memchr(b'=', pair)?;
    let (name, value) = (trim_ows(&pair[..eq]), trim_ows(&pair[eq + 1..]));
    (is_token(name) && is_value(value)).then_some((name, value))
}

/// `cookie-value = *cookie-octet / ( DQUOTE *cookie-octet DQUOTE )`
/// (RFC 6265 §4.1.1).
fn is_value(v: &[u8]) -> bool {
    let inner = match v {
        [b'"', inner @ .., b'"'] => inner,
        _ => v,
    };
    inner.iter().all(|&b| is_cookie_octet(b))
}

/// `cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`: no
/// whitespace, DQUOTE, comma, semicolon, backslash, control or non-ASCII.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(lines: &[&str], name: &str) -> Vec<String> {
        values(lines.iter().map(|l| l.as_bytes()), name.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    fn all(lines: &[&str]) -> Vec<String> {
        pairs(lines.iter().map(|l| l.as_bytes()))
            .map(|(n, v)| format!("{}={}", String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
            .collect()
    }

    #[test]
    fn a_cookie_is_found_wherever_it_is_in_the_list() {
        assert_eq!(of(&["session=a; theme=dark"], "session"), ["a"]);
        assert_eq!(of(&["theme=dark; session=a"], "session"), ["a"]);
        assert_eq!(of(&["theme=dark;session=a ;x=1"], "session"), ["a"]);
        assert_eq!(of(&["theme=dark", "session=a"], "session"), ["a"], "lines are one list");
        assert_eq!(of(&["theme=dark"], "session"), Vec::<String>::new());
        assert_eq!(of(&[], "session"), Vec::<String>::new());
    }

    #[test]
    fn names_match_whole_and_in_their_case() {
        assert_eq!(
            of(&["sessionid=x; xsession=y; Session=z"], "session"),
            Vec::<String>::new()
        );
        assert_eq!(of(&["Session=z"], "Session"), ["z"]);
    }

    #[test]
    fn values_are_trimmed_kept_in_order_and_may_be_empty_or_quoted() {
        assert_eq!(of(&["a = 1 ; a=2"], "a"), ["1", "2"]);
        assert_eq!(of(&["\ta=\t1\t"], "a"), ["1"]);
        assert_eq!(of(&["a="], "a"), [""]);
        assert_eq!(of(&["a=\"q\""], "a"), ["\"q\""]);
        assert_eq!(of(&["a=\"\""], "a"), ["\"\""]);
        assert_eq!(of(&["a=x=y"], "a"), ["x=y"], "cut at the first =");
        assert_eq!(
            of(&["a=!#$%&'()*+-./:<>?@[]^_`{|}~"], "a"),
            ["!#$%&'()*+-./:<>?@[]^_`{|}~"]
        );
    }

    #[test]
    fn pairs_without_a_name_match_nothing() {
        assert_eq!(of(&["a; =a; ;;"], "a"), Vec::<String>::new());
        assert_eq!(all(&["a; =a; ;;"]), Vec::<String>::new());
    }

    /// RFC 6265 §4.1.1: a value with a separator another parser splits at
    /// hides no cookie: the whole pair is dropped.
    #[test]
    fn a_value_that_is_not_cookie_octets_drops_its_pair() {
        assert_eq!(all(&["session=1 lang=fr"]), Vec::<String>::new());
        assert_eq!(all(&["session=1, lang=fr"]), Vec::<String>::new());
        assert_eq!(all(&["session=1,lang=fr"]), Vec::<String>::new());
        assert_eq!(of(&["session=1 lang=fr"], "lang"), Vec::<String>::new());
        for bad in [
            "a=\"q",
            "a=q\"",
            "a=\"",
            "a=\"x\"y\"",
            "a=x\\y",
            "a=x\ty",
            "a=\u{e9}",
            "a=x\x7fy",
        ] {
            assert_eq!(all(&[bad, "b=1"]), ["b=1"], "{bad:?}");
        }
    }

    #[test]
    fn a_name_that_is_not_a_token_drops_its_pair() {
        for bad in ["a b=1", "a,b=1", "\"a\"=1", "a@b=1", "a/b=1", "a\\b=1", "(a)=1"] {
            assert_eq!(all(&[bad, "b=1"]), ["b=1"], "{bad:?}");
        }
        assert_eq!(all(&["$Version=1; a.b-c_d!=2"]), ["$Version=1", "a.b-c_d!=2"]);
    }
}
