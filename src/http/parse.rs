//! Request heads: parse with httparse, keep views, decide framing.
//!
//! A request head is parsed in place over the connection's read buffer. The
//! result, [`RequestHead`], holds only offsets into that buffer (no per-header
//! `String`), so forwarding the head copies each kept header line once, into
//! the outgoing buffer, and nothing else. The same `RequestHead` is reused for
//! every request on a connection, so steady state parsing allocates nothing.
//!
//! Framing follows RFC 9112 §6 strictly, because a proxy that reads a body's
//! length differently from its origin is the classic request smuggling hole:
//! Transfer-Encoding with Content-Length, differing or malformed
//! Content-Length, a Transfer-Encoding whose final coding is not chunked, and
//! Transfer-Encoding on HTTP/1.0 are all rejected (400, then close).

use std::ops::Range;

/// Most header lines a request head may have; more is 431.
pub const MAX_HEADERS: usize = 128;

/// A byte range into the connection buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// The span of `part`, a subslice of `base`.
    /// An empty slice that is not inside `base` (a parser returning a
    /// static `&[]`) maps to the empty span at 0 rather than out of bounds.
    pub(crate) fn within(base: &[u8], part: &[u8]) -> Span {
        let b = base.as_ptr() as usize;
        let p = part.as_ptr() as usize;
        if p < b || p + part.len() > b + base.len() {
            return Span::default();
        }
        let start = p - b;
        Span {
            start: start as u32,
            end: (start + part.len()) as u32,
        }
    }
    pub fn range(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyKind {
    #[default]
    None,
    Length(u64),
    Chunked,
}

/// Why a head was refused; maps to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// 400: not HTTP, or framing we must not guess about.
    Bad(&'static str),
    /// 431: head over `max_request_head` or over [`MAX_HEADERS`] lines.
    TooLarge,
    /// 505: an HTTP version we do not speak.
    Version,
}

impl HeadError {
    pub fn status(&self) -> u16 {
        match self {
            HeadError::Bad(_) => 400,
            HeadError::TooLarge => 431,
            HeadError::Version => 505,
        }
    }
}

/// Classification of a header by name, done once while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderClass {
    /// Forwarded as is.
    Plain,
    Host,
    ContentLength,
    TransferEncoding,
    /// Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-Connection,
    /// Proxy-Authorization: never forwarded (SPEC §5, RFC 9110 §7.6.1).
    HopByHop,
    Expect,
    XForwardedFor,
    Via,
}

/// Classifies a header name (case-insensitive).
pub fn classify(name: &[u8]) -> HeaderClass {
    // Dispatch on length first: nearly every header falls through after one compare.
    let eq = |s: &[u8]| name.eq_ignore_ascii_case(s);
    match name.len() {
        2 if eq(b"te") => HeaderClass::HopByHop,
        3 if eq(b"via") => HeaderClass::Via,
        4 if eq(b"host") => HeaderClass::Host,
        6 if eq(b"expect") => HeaderClass::Expect,
        7 if eq(b"trailer") => HeaderClass::HopByHop,
        7 if eq(b"upgrade") => HeaderClass::HopByHop,
        10 if eq(b"connection") => HeaderClass::HopByHop,
        10 if eq(b"keep-alive") => HeaderClass::HopByHop,
        14 if eq(b"content-length") => HeaderClass::ContentLength,
        15 if eq(b"x-forwarded-for") => HeaderClass::XForwardedFor,
        16 if eq(b"proxy-connection") => HeaderClass::HopByHop,
        17 if eq(b"transfer-encoding") => HeaderClass::TransferEncoding,
        19 if eq(b"proxy-authorization") => HeaderClass::HopByHop,
        _ => HeaderClass::Plain,
    }
}

/// One header line: name and value spans plus its class.
#[derive(Debug, Clone, Copy)]
pub struct HeaderRef {
    pub name: Span,
    pub value: Span,
    pub class: HeaderClass,
}

/// A parsed request head as spans into the connection buffer.
#[derive(Debug, Default)]
pub struct RequestHead {
    pub method: Span,
    /// The request target as sent (origin-form, or the path of absolute-form).
    pub path: Span,
    /// Host from the Host header, or from an absolute-form target.
    pub host: Option<Span>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub head_len: usize,
    pub headers: Vec<HeaderRef>,
    /// Tokens named by Connection, which are hop-by-hop for this message.
    pub connection_tokens: Vec<Span>,
    pub body: BodyKind,
    /// The Content-Length sent, if any (`Some(0)` with `BodyKind::None`).
    pub content_length: Option<u64>,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

impl RequestHead {
    pub fn method<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        self.method.of(buf)
    }

    /// Path without the query string.
    pub fn path_only<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let p = self.path.of(buf);
        match memchr::memchr(b'?', p) {
            Some(i) => &p[..i],
            None => p,
        }
    }

    pub fn is_head(&self, buf: &[u8]) -> bool {
        self.method(buf) == b"HEAD"
    }

    /// True when `name` (a header name span) is listed in Connection.
    pub fn named_by_connection(&self, buf: &[u8], name: Span) -> bool {
        token_listed(buf, &self.connection_tokens, name)
    }

    /// Value of the first header with this name (any case).
    pub fn header<'a>(&self, buf: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        find_header(buf, &self.headers, name)
    }
}

/// True when the header name at `name` is one of `tokens` (any case).
pub(crate) fn token_listed(buf: &[u8], tokens: &[Span], name: Span) -> bool {
    let n = name.of(buf);
    tokens.iter().any(|t| t.of(buf).eq_ignore_ascii_case(n))
}

/// Value of the first of `headers` named `name` (any case).
pub(crate) fn find_header<'a>(buf: &'a [u8], headers: &[HeaderRef], name: &[u8]) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.of(buf).eq_ignore_ascii_case(name))
        .map(|h| h.value.of(buf))
}

/// Folds one Content-Length field value into `cl`: a list ("5, 5") or
/// repeated fields are allowed only when all values are equal (RFC 9110 §8.6).
/// `Err` for a malformed or differing value.
pub(crate) fn merge_content_length(buf: &[u8], value: Span, cl: &mut Option<u64>) -> Result<(), ()> {
    let mut bad = false;
    for_each_token(buf, value, |t| match parse_content_length(t.of(buf)) {
        Some(v) if cl.is_none() || *cl == Some(v) => *cl = Some(v),
        _ => bad = true,
    });
    if bad || cl.is_none() {
        Err(())
    } else {
        Ok(())
    }
}

/// Splits a comma-separated header value into trimmed, non-empty spans.
pub(crate) fn for_each_token(base: &[u8], value: Span, mut f: impl FnMut(Span)) {
    let v = value.of(base);
    let mut start = 0;
    for i in 0..=v.len() {
        if i == v.len() || v[i] == b',' {
            let mut s = start;
            let mut e = i;
            while s < e && (v[s] == b' ' || v[s] == b'\t') {
                s += 1;
            }
            while e > s && (v[e - 1] == b' ' || v[e - 1] == b'\t') {
                e -= 1;
            }
            if e > s {
                f(Span {
                    start: value.start + s as u32,
                    end: value.start + e as u32,
                });
            }
            start = i + 1;
        }
    }
}

/// Parses a Content-Length value strictly: 1 to 19 ASCII digits.
pub fn parse_content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// 505 only for a well-formed request line naming another version
/// (`HTTP/2.0`); anything else httparse calls a version error is malformed.
fn version_error(buf: &[u8]) -> HeadError {
    let line_end = memchr::memchr(b'\n', buf).unwrap_or(buf.len());
    let line = buf[..line_end].strip_suffix(b"\r").unwrap_or(&buf[..line_end]);
    let mut parts = line.split(|&b| b == b' ');
    let (_, _, v, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    match v {
        Some([b'H', b'T', b'T', b'P', b'/', d1, b'.', d2])
            if rest.is_none() && d1.is_ascii_digit() && d2.is_ascii_digit() =>
        {
            HeadError::Version
        }
        _ => HeadError::Bad("malformed request line"),
    }
}

/// Parses a request head at the start of `buf` into `head`.
///
/// `Ok(None)`: incomplete (read more, unless `buf` is already `max_head`
/// long, which the caller turns into 431). `Ok(Some(n))`: the head is the
/// first `n` bytes.
pub fn parse_request(buf: &[u8], max_head: usize, head: &mut RequestHead) -> Result<Option<usize>, HeadError> {
    // Uninitialised header slots: no 4 KiB memset per parse.
    let mut hdrs = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let n = match req.parse_with_uninit_headers(buf, &mut hdrs) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= max_head {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(HeadError::Bad("malformed request head")),
    };
    if n > max_head {
        return Err(HeadError::TooLarge);
    }
    // Lines end in CRLF only. RFC 9112 §2.2 lets a recipient accept a bare
    // LF, but a proxy must not: the next hop may read the head differently
    // (one header or two), which is how requests get smuggled.
    if memchr::memchr_iter(b'\n', &buf[..n]).any(|i| i == 0 || buf[i - 1] != b'\r') {
        return Err(HeadError::Bad("bare LF in request head"));
    }
    head.headers.clear();
    head.connection_tokens.clear();
    head.head_len = n;
    head.minor = req.version.unwrap_or(1);
    let method = req.method.unwrap_or("");
    head.method = Span::within(buf, method.as_bytes());
    let target = req.path.unwrap_or("").as_bytes();
    head.host = None;
    head.expect_continue = false;

    // Request target forms (RFC 9112 §3.2).
    if target.first() == Some(&b'/') {
        head.path = Span::within(buf, target);
    } else if target == b"*" {
        if method != "OPTIONS" {
            return Err(HeadError::Bad("asterisk-form is only for OPTIONS"));
        }
        head.path = Span::within(buf, target);
    } else {
        // absolute-form: scheme://authority[path]
        let rest = if target.len() > 7 && target[..7].eq_ignore_ascii_case(b"http://") {
            &target[7..]
        } else if target.len() > 8 && target[..8].eq_ignore_ascii_case(b"https://") {
            &target[8..]
        } else {
            return Err(HeadError::Bad("unsupported request target form"));
        };
        let cut = rest.iter().position(|&b| b == b'/' || b == b'?').unwrap_or(rest.len());
        let authority = &rest[..cut];
        if authority.is_empty() || authority.contains(&b'@') {
            return Err(HeadError::Bad("bad authority in request target"));
        }
        head.host = Some(Span::within(buf, authority));
        // May be empty or start with '?' ("http://h?q"); the writer then
        // puts the "/" in front (RFC 9112 §3.2.2).
        head.path = Span::within(buf, &rest[cut..]);
    }

    let mut host_hdr: Option<Span> = None;
    let mut host_count = 0;
    let mut cl: Option<u64> = None;
    let mut te_seen = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    for h in req.headers.iter() {
        let name = Span::within(buf, h.name.as_bytes());
        let value = Span::within(buf, h.value);
        let class = classify(h.name.as_bytes());
        match class {
            HeaderClass::Host => {
                host_count += 1;
                host_hdr = Some(value);
            }
            // One Content-Length, one value (SPEC §3.1): a list or a second
            // line is refused even when the values agree, as nginx does.
            HeaderClass::ContentLength => {
                if cl.is_some() {
                    return Err(HeadError::Bad("Content-Length given twice"));
                }
                cl = Some(parse_content_length(h.value).ok_or(HeadError::Bad("malformed Content-Length"))?);
            }
            // Exactly one Transfer-Encoding line saying exactly `chunked`:
            // the only coding a proxy must understand (RFC 9112 §6.1), and no
            // list for two parsers to read differently.
            HeaderClass::TransferEncoding => {
                if te_seen {
                    return Err(HeadError::Bad("Transfer-Encoding given twice"));
                }
                te_seen = true;
                if !h.value.eq_ignore_ascii_case(b"chunked") {
                    return Err(HeadError::Bad("Transfer-Encoding other than chunked"));
                }
            }
            HeaderClass::HopByHop if h.name.eq_ignore_ascii_case("connection") => {
                for_each_token(buf, value, |t| {
                    let tok = t.of(buf);
                    if tok.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if tok.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep_alive = true;
                    }
                    head.connection_tokens.push(t);
                });
            }
            HeaderClass::Expect => {
                if h.value.eq_ignore_ascii_case(b"100-continue") {
                    head.expect_continue = true;
                } else {
                    return Err(HeadError::Bad("unsupported Expect"));
                }
            }
            _ => {}
        }
        head.headers.push(HeaderRef { name, value, class });
    }

    // Host (RFC 9112 §3.2): HTTP/1.1 needs exactly one.
    if host_count > 1 {
        return Err(HeadError::Bad("more than one Host header"));
    }
    if head.minor == 1 && host_count == 0 {
        return Err(HeadError::Bad("missing Host header"));
    }
    if let Some(hv) = host_hdr {
        let v = hv.of(buf);
        if v.is_empty() {
            return Err(HeadError::Bad("empty Host header"));
        }
        if v.iter().any(|&b| b == b' ' || b == b'\t' || b == b'/' || b == b'@') {
            return Err(HeadError::Bad("malformed Host header"));
        }
        if head.host.is_none() {
            head.host = (!hv.is_empty()).then_some(hv);
        }
    }

    head.body = if te_seen {
        if cl.is_some() {
            return Err(HeadError::Bad("Transfer-Encoding with Content-Length"));
        }
        if head.minor == 0 {
            return Err(HeadError::Bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        BodyKind::Chunked
    } else {
        match cl {
            Some(0) | None => BodyKind::None,
            Some(n) => BodyKind::Length(n),
        }
    };
    head.content_length = cl;
    head.keep_alive = if head.minor == 1 {
        !conn_close
    } else {
        conn_keep_alive && !conn_close
    };
    if head.body == BodyKind::None {
        head.expect_continue = false;
    }
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Result<Option<(usize, RequestHead)>, HeadError> {
        let mut h = RequestHead::default();
        parse_request(s, 32 * 1024, &mut h).map(|o| o.map(|n| (n, h)))
    }

    fn bad(s: &[u8]) -> HeadError {
        match parse(s) {
            Err(e) => e,
            Ok(x) => panic!("accepted {:?}: {:?}", String::from_utf8_lossy(s), x.map(|x| x.1)),
        }
    }

    #[test]
    fn simple_get() {
        let b = b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\nNEXT";
        let (n, h) = parse(b).unwrap().unwrap();
        assert_eq!(n, b.len() - 4);
        assert_eq!(h.method(b), b"GET");
        assert_eq!(h.path.of(b), b"/a/b?c=d");
        assert_eq!(h.path_only(b), b"/a/b");
        assert_eq!(h.host.unwrap().of(b), b"example.com");
        assert_eq!(h.body, BodyKind::None);
        assert!(h.keep_alive);
        assert_eq!(h.headers.len(), 2);
    }

    #[test]
    fn bare_lf_line_ends_are_refused() {
        for b in [
            &b"GET / HTTP/1.1\nHost: x\n\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
        ] {
            assert_eq!(
                bad(b),
                HeadError::Bad("bare LF in request head"),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        // A bare LF after the head (in the body or the next request) is not the head's business.
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\n").unwrap().is_some());
    }

    #[test]
    fn partial_then_too_large() {
        assert!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        let mut h = RequestHead::default();
        let big = b"GET / HTTP/1.1\r\nHost: x\r\nX: 0123456789\r\n";
        assert_eq!(parse_request(big, 20, &mut h), Err(HeadError::TooLarge));
        let full = b"GET / HTTP/1.1\r\nHost: x\r\nX: 0123456789\r\n\r\n";
        assert_eq!(parse_request(full, 30, &mut h), Err(HeadError::TooLarge));
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut s = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..200 {
            s.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        s.extend_from_slice(b"\r\n");
        assert_eq!(bad(&s), HeadError::TooLarge);
    }

    #[test]
    fn http10_keep_alive_rules() {
        let (_, h) = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        assert!(h.host.is_none());
        let (_, h) = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let (_, h) = parse(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn bodies() {
        let (_, h) = parse(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, BodyKind::Length(10));
        let (_, h) = parse(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, BodyKind::Chunked);
        let (_, h) = parse(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.expect_continue);
    }

    #[test]
    fn smuggling_shapes_rejected() {
        let cases: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET example.com HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b"G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n",
            // SPEC §3.1: a length or coding given twice or as a list.
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost:\r\n\r\n",
        ];
        for c in cases {
            let e = bad(c);
            assert!(
                matches!(e, HeadError::Bad(_)),
                "{:?} -> {e:?}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn version_errors() {
        assert_eq!(bad(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n").status(), 505);
        assert!(matches!(bad(b"GET / HTTP/1.1x\r\n\r\n"), HeadError::Bad(_)));
        assert!(matches!(
            bad(b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n"),
            HeadError::Bad(_)
        ));
    }

    #[test]
    fn absolute_form() {
        let b = b"GET http://example.com:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n";
        let (_, h) = parse(b).unwrap().unwrap();
        assert_eq!(h.host.unwrap().of(b), b"example.com:8080");
        assert_eq!(h.path.of(b), b"/p?q");
    }

    #[test]
    fn connection_tokens_collected() {
        let b = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\r\n";
        let (_, h) = parse(b).unwrap().unwrap();
        let secret = h.headers.iter().find(|x| x.name.of(b) == b"X-Secret").unwrap();
        assert!(h.named_by_connection(b, secret.name));
        assert_eq!(h.headers.iter().filter(|x| x.class == HeaderClass::HopByHop).count(), 1);
    }

    #[test]
    fn empty_values_and_odd_spacing_stay_in_bounds() {
        let b = b"GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\nX-Sp:   \r\nContent-Length: 0\r\n\r\n";
        let (_, h) = parse(b).unwrap().unwrap();
        for hd in &h.headers {
            assert!(hd.value.end as usize <= b.len() && hd.value.start <= hd.value.end);
            let _ = hd.value.of(b);
        }
        assert_eq!(h.header(b, b"x-empty"), Some(&b""[..]));
    }

    #[test]
    fn classify_names() {
        assert_eq!(classify(b"TE"), HeaderClass::HopByHop);
        assert_eq!(classify(b"Proxy-Authorization"), HeaderClass::HopByHop);
        assert_eq!(classify(b"Keep-Alive"), HeaderClass::HopByHop);
        assert_eq!(classify(b"transfer-encoding"), HeaderClass::TransferEncoding);
        assert_eq!(classify(b"Accept"), HeaderClass::Plain);
        assert_eq!(classify(b"Authorization"), HeaderClass::Plain);
    }
}
