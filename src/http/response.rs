//! Origin response heads: parse with httparse, decide the body's framing.
//!
//! Like request heads, a [`ResponseHead`] is spans into the origin connection's
//! read buffer and is reused across responses. Origin responses are untrusted
//! input (SPEC §3.5), so framing follows RFC 9112 §6.3 strictly, as nginx does:
//! - no body for HEAD, 1xx, 204 and 304;
//! - `Transfer-Encoding` must be exactly `chunked` (one coding, one line);
//!   anything else (`xchunked`, `gzip`, `chunked, chunked`) is malformed;
//! - with both Transfer-Encoding and Content-Length the body is read as
//!   chunked and the connection is not reused (§6.3 item 3);
//! - a malformed or conflicting Content-Length is malformed (equal values
//!   repeated are one value);
//! - otherwise the body runs to connection close;
//! - a status outside 100..=599 is malformed.
//!
//! Malformed means a failed response: 502, or failover. None of the origin's
//! framing headers reach the viewer: `http::write` writes its own.

use super::parse::{
    classify, find_header, for_each_token, merge_content_length, token_listed, HeaderClass, HeaderRef, Span,
    MAX_HEADERS,
};

/// Largest response head accepted from an origin.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RespBody {
    None,
    Length(u64),
    Chunked,
    /// Read until the origin closes; the connection cannot be reused.
    Close,
}

/// A parsed origin response head as spans into the origin read buffer.
#[derive(Debug, Default)]
pub struct ResponseHead {
    pub status: u16,
    pub reason: Span,
    pub minor: u8,
    pub head_len: usize,
    pub headers: Vec<HeaderRef>,
    pub connection_tokens: Vec<Span>,
    pub body: Option<RespBody>,
    /// The origin allows reusing the connection after this response.
    pub keep_alive: bool,
    /// The Content-Length the origin sent (validated), also where the body
    /// has no length of its own (HEAD, 304): metadata then, not framing.
    pub content_length: Option<u64>,
}

impl ResponseHead {
    pub fn body(&self) -> RespBody {
        self.body.unwrap_or(RespBody::Close)
    }

    pub fn named_by_connection(&self, buf: &[u8], name: Span) -> bool {
        token_listed(buf, &self.connection_tokens, name)
    }

    pub fn header<'a>(&self, buf: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
        find_header(buf, &self.headers, name)
    }

    /// Every line of a list-valued field as one value (RFC 9110 §5.3:
    /// repeated lines are one comma-separated list): borrowed when there is
    /// one line, joined with ", " when there are more.
    pub fn header_list<'a>(&self, buf: &'a [u8], name: &[u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
        let mut lines = self
            .headers
            .iter()
            .filter(|h| h.name.of(buf).eq_ignore_ascii_case(name))
            .map(|h| h.value.of(buf));
        let first = lines.next()?;
        let Some(second) = lines.next() else {
            return Some(std::borrow::Cow::Borrowed(first));
        };
        let mut joined = first.to_vec();
        for v in std::iter::once(second).chain(lines) {
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(v);
        }
        Some(std::borrow::Cow::Owned(joined))
    }
}

/// Why an origin response head is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    Malformed,
    TooLarge,
    BadLength,
    /// A Transfer-Encoding other than exactly `chunked`.
    BadTransferEncoding,
    /// A status code outside 100..=599.
    BadStatus,
}

/// Parses a response head at the start of `buf`. `head_request`: the request
/// was HEAD, so the response has no body whatever its headers say.
pub fn parse_response(buf: &[u8], head_request: bool, head: &mut ResponseHead) -> Result<Option<usize>, ResponseError> {
    let mut hdrs = [const { std::mem::MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let n = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut hdrs) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_RESPONSE_HEAD {
                Err(ResponseError::TooLarge)
            } else {
                Ok(None)
            }
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooLarge),
        Err(_) => return Err(ResponseError::Malformed),
    };
    if n > MAX_RESPONSE_HEAD {
        return Err(ResponseError::TooLarge);
    }
    head.headers.clear();
    head.connection_tokens.clear();
    head.head_len = n;
    head.status = resp.code.unwrap_or(0);
    if !(100..=599).contains(&head.status) {
        return Err(ResponseError::BadStatus);
    }
    head.minor = resp.version.unwrap_or(1);
    let reason = resp.reason.unwrap_or("").as_bytes();
    head.reason = if reason.is_empty() {
        Span::default()
    } else {
        Span::within(buf, reason)
    };
    let mut cl: Option<u64> = None;
    let mut te_codings = 0u32; // codings named by all Transfer-Encoding lines
    let mut te_chunked = false;
    let mut close = false;
    let mut keep = false;
    for h in resp.headers.iter() {
        let name = Span::within(buf, h.name.as_bytes());
        let value = Span::within(buf, h.value);
        let class = classify(h.name.as_bytes());
        match class {
            HeaderClass::ContentLength if merge_content_length(buf, value, &mut cl).is_err() => {
                return Err(ResponseError::BadLength);
            }
            HeaderClass::TransferEncoding => {
                // An empty list element counts too: ",chunked" is malformed.
                te_codings += 1 + value.of(buf).iter().filter(|&&b| b == b',').count() as u32;
                for_each_token(buf, value, |t| te_chunked = t.of(buf).eq_ignore_ascii_case(b"chunked"));
            }
            HeaderClass::HopByHop if h.name.eq_ignore_ascii_case("connection") => {
                for_each_token(buf, value, |t| {
                    let tok = t.of(buf);
                    close |= tok.eq_ignore_ascii_case(b"close");
                    keep |= tok.eq_ignore_ascii_case(b"keep-alive");
                    head.connection_tokens.push(t);
                });
            }
            _ => {}
        }
        head.headers.push(HeaderRef { name, value, class });
    }
    let te = te_codings > 0;
    if te && !(te_codings == 1 && te_chunked) {
        return Err(ResponseError::BadTransferEncoding);
    }
    let s = head.status;
    head.content_length = cl;
    head.body = Some(if head_request || (100..200).contains(&s) || s == 204 || s == 304 {
        RespBody::None
    } else if te {
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3 item 3).
        RespBody::Chunked
    } else if let Some(n) = cl {
        RespBody::Length(n)
    } else {
        RespBody::Close
    });
    let framed = head.body() != RespBody::Close;
    // Both lengths: read by TE, but the connection is not trusted again.
    head.keep_alive = framed && !close && (head.minor == 1 || keep) && !(te && cl.is_some());
    Ok(Some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8], head_req: bool) -> Result<Option<ResponseHead>, ResponseError> {
        let mut h = ResponseHead::default();
        parse_response(s, head_req, &mut h).map(|o| o.map(|_| h))
    }

    #[test]
    fn framing() {
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.body(), h.keep_alive), (200, RespBody::Length(5), true));
        let h = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(h.body(), RespBody::Chunked);
        let h = parse(b"HTTP/1.1 200 OK\r\n\r\n", false).unwrap().unwrap();
        assert_eq!((h.body(), h.keep_alive), (RespBody::Close, false));
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true)
            .unwrap()
            .unwrap();
        assert_eq!(h.body(), RespBody::None);
        let h = parse(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(h.body(), RespBody::None);
        let h = parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap().unwrap();
        assert_eq!((h.body(), h.keep_alive), (RespBody::None, true));
        let h = parse(b"HTTP/1.1 100 Continue\r\n\r\n", false).unwrap().unwrap();
        assert_eq!(h.body(), RespBody::None);
        let h = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        let h = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert!(!h.keep_alive);
        let h = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.body(), h.keep_alive),
            (RespBody::Chunked, false),
            "TE with CL: read by TE, not reused"
        );
        let h = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", false)
            .unwrap()
            .unwrap();
        assert_eq!(h.body(), RespBody::Length(5));
    }

    #[test]
    fn transfer_encoding_must_be_exactly_chunked() {
        for te in [
            &b"gzip"[..],
            b"xchunked",
            b"chunked, chunked",
            b"gzip, chunked",
            b",chunked",
            b"chunked,",
            b"identity",
        ] {
            let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: ".to_vec();
            r.extend_from_slice(te);
            r.extend_from_slice(b"\r\n\r\n");
            assert_eq!(
                parse(&r, false).unwrap_err(),
                ResponseError::BadTransferEncoding,
                "{}",
                String::from_utf8_lossy(te)
            );
        }
        let two = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse(two, false).unwrap_err(), ResponseError::BadTransferEncoding);
    }

    #[test]
    fn statuses_outside_100_to_599_are_malformed() {
        for st in ["000", "099", "600", "999"] {
            let r = format!("HTTP/1.1 {st} X\r\nContent-Length: 0\r\n\r\n");
            assert_eq!(
                parse(r.as_bytes(), false).unwrap_err(),
                ResponseError::BadStatus,
                "{st}"
            );
        }
        assert!(parse(b"HTTP/1.1 599 X\r\n\r\n", false).unwrap().is_some());
        assert!(parse(b"HTTP/1.1 100 Continue\r\n\r\n", false).unwrap().is_some());
    }

    #[test]
    fn repeated_lines_are_one_list() {
        let b = b"HTTP/1.1 200 OK\r\nCache-Control: public, max-age=100\r\nX: y\r\ncache-control: private\r\n\r\n";
        let h = parse(b, false).unwrap().unwrap();
        assert_eq!(
            h.header_list(b, b"cache-control").as_deref(),
            Some(&b"public, max-age=100, private"[..])
        );
        assert_eq!(h.header_list(b, b"x").as_deref(), Some(&b"y"[..]));
        assert!(h.header_list(b, b"vary").is_none());
    }

    #[test]
    fn empty_values_stay_in_bounds() {
        let b = b"HTTP/1.1 200 \r\nX-Empty:\r\nContent-Length: 0\r\n\r\n";
        let h = parse(b, false).unwrap().unwrap();
        for hd in &h.headers {
            assert!(hd.value.end as usize <= b.len() && hd.value.start <= hd.value.end);
        }
        assert_eq!(h.header(b, b"x-empty"), Some(&b""[..]));
    }

    #[test]
    fn invalid() {
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                false
            )
            .unwrap_err(),
            ResponseError::BadLength
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false).unwrap_err(),
            ResponseError::BadLength
        );
        assert_eq!(
            parse(b"HTTX/1.1 200 OK\r\n\r\n", false).unwrap_err(),
            ResponseError::Malformed
        );
        assert!(parse(b"HTTP/1.1 200 OK\r\nX: y", false).unwrap().is_none());
    }
}
