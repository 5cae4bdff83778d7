//! RFC 9110 §5.6.2 tokens: `token = 1*tchar`, the grammar of methods
//! (§9.1), field names, directives and chunk extension names.

/// `tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA`.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One or more tchars.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
