//! Query strings (RFC 3986 §3.4): the parameters a policy keeps, for the
//! cache key (`cache_query_string` as a list) and for what the origin is
//! sent (`forward_query_string = false`).

/// Appends the parameters of query `q` whose names are in `names`
/// (sorted), in name order and, for one name, in the order sent; the first
/// preceded by `first` (`?`), the others by `&`. Names are compared as
/// sent (percent-encoding is not decoded: `a%62` is not `ab`).
pub fn append_kept(out: &mut Vec<u8>, q: &[u8], names: &[Box<[u8]>], first: u8) {
    let mut sep = first;
    for name in names {
        for param in q.split(|&b| b == b'&') {
            let n = memchr::memchr(b'=', param).map_or(param, |i| &param[..i]);
            if n == &name[..] {
                out.push(sep);
                out.extend_from_slice(param);
                sep = b'&';
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_parameters_come_in_name_order_and_whole_names_only() {
        let names: Vec<Box<[u8]>> = vec![b"a"[..].into(), b"b"[..].into()];
        let mut out = Vec::new();
        append_kept(&mut out, b"b=2&ab=9&a=1&a=0", &names, b'?');
        assert_eq!(out, b"?a=1&a=0&b=2");
        out.clear();
        append_kept(&mut out, b"c=3", &names, b'?');
        assert!(out.is_empty());
    }
}
