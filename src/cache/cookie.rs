//! The cookies of a request, pure: the values a `Cookie` header gives a
//! cookie name, for a behavior's key cookies (SPEC §2 `cache_key_cookies`).
//!
//! RFC 6265 §5.4: a user agent sends `cookie-string = cookie-pair *( ";"
//! SP cookie-pair )`, `cookie-pair = cookie-name "=" cookie-value`, in one
//! header line. Several lines (a proxy's split, or an HTTP/2 hop's
//! `cookie` fields, which RFC 9113 §8.2.3 joins with "; ") are read as one
//! list. Each pair is trimmed of whitespace, then cut at its first `=`
//! into a name and a value, each trimmed (the leniency of RFC 6265 §5.2
//! steps 4–5, which servers apply); names compare byte for byte, as
//! cookie names are case-sensitive. A pair without `=` is a value with an
//! empty name (RFC 6265bis §5.6 step 3), which no configured name (a
//! token) matches. Commas do not separate cookies (RFC 6265 §4.2.1 drops
//! RFC 2965's comma), so `a=1,b=2` is one cookie `a` of value `1,b=2`.

/// The values of cookie `name` in `lines` (every line of the request's
/// Cookie header), in the order sent: a name sent twice (two paths, RFC
/// 6265 §5.4 step 2 lists the more specific first) has both. Allocates
/// nothing.
pub fn values<'a>(lines: impl Iterator<Item = &'a [u8]>, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    lines
        .flat_map(|line| line.split(|&b| b == b';'))
        .filter_map(move |pair| {
            let (n, v) = split_pair(pair.trim_ascii())?;
            (n == name).then_some(v)
        })
}

/// A pair's name and value, trimmed; `None` for an empty pair or one
/// without `=` (an empty name).
fn split_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let eq = memchr::memchr(b'=', pair)?;
    Some((pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(lines: &[&str], name: &str) -> Vec<String> {
        values(lines.iter().map(|l| l.as_bytes()), name.as_bytes())
            .map(|v| String::from_utf8_lossy(v).into_owned())
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
        assert_eq!(of(&["a="], "a"), [""]);
        assert_eq!(of(&["a=\"q\""], "a"), ["\"q\""]);
        assert_eq!(of(&["a=x=y"], "a"), ["x=y"], "cut at the first =");
        assert_eq!(of(&["a=1,b=2"], "a"), ["1,b=2"], "commas do not separate");
    }

    #[test]
    fn pairs_without_a_name_match_nothing() {
        assert_eq!(of(&["a; =a; ;;"], "a"), Vec::<String>::new());
    }
}
