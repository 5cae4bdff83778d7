//! `CDN-Cache-Control` (RFC 9213): the targeted cache-control field aimed at
//! CDN caches, which ringfront is.
//!
//! RFC 9213 §2.1: "Targeted fields are Dictionary Structured Fields (Section
//! 3.2 of [STRUCTURED-FIELDS])", and "using a Cache-Control parser rather than
//! a Structured Fields parser can introduce interoperability issues"; §2.2:
//! "If a targeted field in a given response is empty, or a parsing error is
//! encountered, that field MUST be ignored by the cache (i.e., it behaves as
//! if the field were not present, likely falling back to other cache-control
//! mechanisms present)". So the value is parsed as an RFC 8941 §4.2.2
//! Dictionary, strictly (lowercase keys, no space around `=`, no trailing
//! comma, Integers of at most 15 digits), and any error drops the whole
//! field. Its members then mean what they mean in Cache-Control, into the
//! same [`CacheControl`]:
//!
//! - `max-age`, `s-maxage`, `stale-while-revalidate`, `stale-if-error` must
//!   be non-negative Integers (§2.1: "the max-age directive ... has an
//!   integer value"); any other type (`max-age="60"`, `max-age=1.5`,
//!   `max-age=-1`) is a parsing error for the field as a whole. Values above
//!   2^31 count as 2^31, as in Cache-Control (RFC 9111 §1.2.2).
//! - `no-store`, `no-cache`, `private`, `public`: present means set, except
//!   an explicit Boolean false (`no-store=?0`). A `no-cache` or `private`
//!   String (the field-name list of RFC 9111 §5.2.2.4) counts as the whole
//!   directive, as in Cache-Control; for the directives that keep responses
//!   out of the cache, erring toward not storing.
//! - Unknown members (extension directives) are ignored (RFC 9111 §5.2.3).
//! - A key given twice: the last value counts (RFC 8941 §4.2.2 overwrites).
//!
//! Pure and allocation-free: a scan over the bytes.

use super::freshness::{CacheControl, MAX_DELTA_SECONDS};
use crate::http::token::is_tchar;

/// A parsed bare item, as much of it as the directives need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Integer(i64),
    Boolean(bool),
    String,
    /// A Decimal, Token, Byte Sequence or Inner List.
    Other,
}

/// The directives of a `CDN-Cache-Control` value (repeated lines joined
/// with commas first, RFC 8941 §4.2); `None` when it is empty or not a
/// valid Dictionary, or gives a delta-seconds directive a value that is not
/// a non-negative Integer: the field is then ignored as a whole.
pub fn parse(v: &[u8]) -> Option<CacheControl> {
    let mut cc = CacheControl::default();
    let mut p = Parser { s: v, i: 0 };
    p.skip_sp();
    if p.at_end() {
        return None; // empty: ignored (RFC 9213 §2.2)
    }
    loop {
        let key = p.key()?;
        let item = if p.eat(b'=') {
            p.member_value()?
        } else {
            Item::Boolean(true)
        };
        p.parameters()?;
        apply(&mut cc, key, item)?;
        p.skip_ows();
        if p.at_end() {
            return Some(cc);
        }
        if !p.eat(b',') {
            return None;
        }
        p.skip_ows();
        if p.at_end() {
            return None; // trailing comma
        }
    }
}

/// Sets the directive `key` from `item`; `None` for a value of the wrong type.
fn apply(cc: &mut CacheControl, key: &[u8], item: Item) -> Option<()> {
    let secs = || match item {
        Item::Integer(n) if n >= 0 => Some(n.unsigned_abs().min(MAX_DELTA_SECONDS)),
        _ => None,
    };
    let set = !matches!(item, Item::Boolean(false));
    match key {
        b"max-age" => cc.max_age = Some(secs()?),
        b"s-maxage" => cc.s_maxage = Some(secs()?),
        b"stale-while-revalidate" => cc.stale_while_revalidate = Some(secs()?),
        b"stale-if-error" => cc.stale_if_error = Some(secs()?),
        b"no-store" => cc.no_store = set,
        b"no-cache" => cc.no_cache = set,
        b"private" => cc.private = set,
        b"public" => cc.public = set,
        _ => {}
    }
    Some(())
}

/// A cursor over a field value, after RFC 8941 §4.2.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.i += 1;
        }
        hit
    }
    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    /// Consumes bytes while `f` holds; returns them.
    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
        &self.s[start..self.i]
    }

    /// §4.2.3.3: `( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`.
    fn key(&mut self) -> Option<&'a [u8]> {
        if !matches!(self.peek(), Some(b'a'..=b'z' | b'*')) {
            return None;
        }
        Some(self.take_while(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' | b'*')))
    }

    /// §4.2.2: an Item or an Inner List (its parameters are read by the caller).
    fn member_value(&mut self) -> Option<Item> {
        if !self.eat(b'(') {
            return self.bare_item();
        }
        loop {
            self.skip_sp();
            if self.eat(b')') {
                return Some(Item::Other);
            }
            self.bare_item()?;
            self.parameters()?;
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }

    /// §4.2.3.2: `*( ";" *SP key [ "=" bare-item ] )`.
    fn parameters(&mut self) -> Option<()> {
        while self.eat(b';') {
            self.skip_sp();
            self.key()?;
            if self.eat(b'=') {
                self.bare_item()?;
            }
        }
        Some(())
    }

    /// §4.2.3.1.
    fn bare_item(&mut self) -> Option<Item> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string(),
            b'*' | b'a'..=b'z' | b'A'..=b'Z' => {
                self.i += 1;
                self.take_while(|b| is_tchar(b) || b == b':' || b == b'/');
                Some(Item::Other)
            }
            b':' => {
                self.i += 1;
                self.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='));
                self.eat(b':').then_some(Item::Other)
            }
            b'?' => {
                self.i += 1;
                let v = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.i += 1;
                Some(Item::Boolean(v))
            }
            _ => None,
        }
    }

    /// §4.2.4: an Integer (at most 15 digits) or a Decimal (at most 12
    /// integer digits, then 1 to 3 fraction digits).
    fn number(&mut self) -> Option<Item> {
        let negative = self.eat(b'-');
        let int = self.take_while(|b| b.is_ascii_digit());
        if int.is_empty() {
            return None;
        }
        if self.eat(b'.') {
            let frac = self.take_while(|b| b.is_ascii_digit());
            return (int.len() <= 12 && (1..=3).contains(&frac.len())).then_some(Item::Other);
        }
        if int.len() > 15 {
            return None;
        }
        // At most 15 digits: fits an i64 with room to spare.
        let n = int.iter().fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        Some(Item::Integer(if negative { -n } else { n }))
    }

    /// §4.2.5: printable ASCII between quotes; `\` escapes only `"` and `\`.
    fn string(&mut self) -> Option<Item> {
        self.i += 1; // the opening quote
        loop {
            match self.peek()? {
                b'\\' => {
                    self.i += 1;
                    if !matches!(self.peek()?, b'"' | b'\\') {
                        return None;
                    }
                }
                b'"' => {
                    self.i += 1;
                    return Some(Item::String);
                }
                0x20..=0x7e => {}
                _ => return None,
            }
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(v: &str) -> Option<CacheControl> {
        parse(v.as_bytes())
    }

    #[test]
    fn common_directives_mean_what_they_mean_in_cache_control() {
        let c = cc("max-age=60, s-maxage=120, stale-while-revalidate=30, stale-if-error=600, public").unwrap();
        assert_eq!(
            (c.max_age, c.s_maxage, c.stale_while_revalidate, c.stale_if_error),
            (Some(60), Some(120), Some(30), Some(600))
        );
        assert!(c.public && !c.no_store && !c.private && !c.no_cache);
        let c = cc("no-store, private, no-cache").unwrap();
        assert!(c.no_store && c.private && c.no_cache);
        // Qualified forms count as the whole directive; ?0 unsets.
        let c = cc("no-cache=\"set-cookie\", private=\"x\", no-store=?0").unwrap();
        assert!(c.no_cache && c.private && !c.no_store);
        // Extensions, parameters, inner lists, tokens, byte sequences.
        let c = cc("foobar, max-age=3600;p=1;q, x=?1, y=(a \"b\" 1;z=2), t=tok/en:1, b=:aGk=:, d=1.5").unwrap();
        assert_eq!(c.max_age, Some(3600));
        // The last of a repeated key counts.
        assert_eq!(cc("max-age=1, max-age=2").unwrap().max_age, Some(2));
        // Spaces and tabs around commas, spaces before the first member.
        assert_eq!(cc("  public ,\tmax-age=5").unwrap().max_age, Some(5));
    }

    #[test]
    fn large_integers_count_as_2_pow_31() {
        assert_eq!(cc("max-age=2147483648").unwrap().max_age, Some(1 << 31));
        assert_eq!(cc("max-age=999999999999999").unwrap().max_age, Some(1 << 31));
        assert_eq!(cc("max-age=99999999999").unwrap().max_age, Some(1 << 31));
        assert_eq!(cc("max-age=2147483647").unwrap().max_age, Some(2147483647));
    }

    #[test]
    fn an_invalid_value_is_ignored_as_a_whole() {
        for v in [
            "",
            "   ",
            "max-age=10000, &&&&&",
            "max-age=\"10000\"",
            "max-age =10000",
            "max-age= 10000",
            "MAX-AGE=10000",
            "Max-Age=10000",
            "max-age=10000,",
            "max-age=10000,  ",
            ",max-age=10000",
            "max-age=1.5",
            "max-age=-1",
            "max-age=tok",
            "max-age=?1",
            "max-age",
            "max-age=10000, no-store=\"unterminated",
            "max-age=1000000000000000", // 16 digits
            "d=1.2345",
            "d=1234567890123.5",
            "x=\"\\n\"",
            "x=?2",
            "x=(a",
            "x=(a)b",
            "x=:abc",
            "max-age=60 public",
            "max-age=60;",
            "max-age=60;P=1",
            "x=\"\u{e9}\"",
        ] {
            assert_eq!(cc(v), None, "{v:?}");
        }
    }
}
