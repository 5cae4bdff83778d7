//! RFC 9110 §5.6.2 tokens: `token = 1*tchar`, the grammar of methods
//! (§9.1), field names, directives and chunk extension names; and the
//! comma-separated lists of them (§5.6.1).

/// `tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA`.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One or more tchars.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// `s` without leading and trailing whitespace, SP and HTAB (RFC 9110
/// §5.6.3 OWS): what §5.5 says is no part of a field value.
pub fn trim_ows(s: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().position(|b| !ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

/// The members of a list field value (RFC 9110 §5.6.1), each trimmed of
/// whitespace, empty ones skipped ("a recipient MUST parse and ignore a
/// reasonable number of empty list elements"); commas inside a quoted
/// string (§5.6.4, backslash escapes included) do not split. Allocates
/// nothing.
pub fn list_members(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(v);
    std::iter::from_fn(move || loop {
        let v = rest?;
        let (mut quoted, mut escaped) = (false, false);
        let end = v.iter().position(|&b| {
            if escaped {
                escaped = false;
                return false;
            }
            match b {
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b',' if !quoted => return true,
                _ => {}
            }
            false
        });
        let member = match end {
            Some(i) => {
                rest = Some(&v[i + 1..]);
                &v[..i]
            }
            None => {
                rest = None;
                v
            }
        };
        let member = member.trim_ascii();
        if !member.is_empty() {
            return Some(member);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ows_is_trimmed_from_both_ends_only() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b"ab"), b"ab");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b""), b"");
    }

    #[test]
    fn tokens() {
        assert!(is_token(b"GET"));
        assert!(is_token(b"M-SEARCH"));
        assert!(is_token(b"x.y~z!"));
        assert!(!is_token(b""));
        assert!(!is_token(b"GE T"));
        assert!(!is_token(b"a:b"));
        assert!(!is_token(b"\"q\""));
    }

    #[test]
    fn list_members_split_outside_quoted_strings() {
        let m = |v: &str| {
            list_members(v.as_bytes())
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(m(" a , b,,c ,"), ["a", "b", "c"]);
        assert_eq!(m(r#"no-cache="a, b", max-age=1"#), [r#"no-cache="a, b""#, "max-age=1"]);
        assert_eq!(m(r#"x="a\", b", y"#), [r#"x="a\", b""#, "y"]);
        assert!(m("").is_empty());
        assert!(m(" , ,").is_empty());
    }
}
