//! Writing heads: requests to origins, responses to viewers, and the
//! responses ringfront makes itself (errors, 403, 100 Continue).
//!
//! Heads are assembled into a reusable `Vec<u8>` per connection from the
//! spans of the parsed head: each kept header line is copied once and nothing
//! is formatted per header. What a proxy must change is changed here and only
//! here (SPEC §5): hop-by-hop headers and those named by Connection are
//! dropped (RFC 9110 §7.6.1), `Via` is appended (§7.6.3), `X-Forwarded-For`
//! gains the viewer's address, `Host` follows `host_header`, the
//! behavior's origin request policy chooses what of the viewer's request
//! the origin gets ([`Forwarding`]), and the behavior's header actions are
//! applied.

use super::edit::{CookieForward, HeaderActions};
use super::parse::{HeaderClass, RequestHead};
use super::response::ResponseHead;
use std::cell::RefCell;
use std::time::{Duration, SystemTime};

/// Per-attempt context for header action placeholders.
#[derive(Debug, Clone, Copy)]
pub struct AttemptCtx<'a> {
    pub attempt: u32,
    pub origin: &'a str,
    pub role: &'a str,
}

/// What to change when forwarding a request head.
pub struct RequestRewrite<'a> {
    /// Host to send instead of the viewer's (`host_header`).
    pub host_override: Option<&'a str>,
    /// Host when the viewer sent none (HTTP/1.0): the origin's address.
    pub host_fallback: &'a str,
    /// The viewer's address as text (formatted once per connection).
    pub client_ip: &'a [u8],
    /// `via` pseudonym.
    pub via: &'a str,
    pub actions: &'a HeaderActions,
    pub ctx: AttemptCtx<'a>,
    /// Extra header lines from code hooks, already `name: value\r\n` formed.
    pub extra: &'a [u8],
    /// How the forwarded body is framed (the viewer's framing lines are
    /// never copied: SPEC §3.1).
    pub framing: RequestFraming,
    /// The normalised Accept-Encoding to send instead of the viewer's, for
    /// a request whose key holds it (SPEC §4).
    pub accept_encoding: Option<&'a [u8]>,
    /// Leave out the viewer's conditional and Range headers (a revalidation
    /// sends the stored validators in `extra` instead).
    pub drop_conditionals: bool,
    /// What of the viewer's headers, cookies and query the origin gets.
    pub forwarding: Forwarding<'a>,
}

/// What of the viewer's request reaches the origin (SPEC §2, CloudFront's
/// origin request policy): the behavior's `forward_*`, and the names its
/// cache key holds, which are forwarded whatever `forward_*` says
/// ("whatever joins the key is also forwarded to the origin").
///
/// A listed `forward_headers` is the structural answer to unkeyed-header
/// cache poisoning: a viewer's `X-Forwarded-Host` or
/// `X-HTTP-Method-Override` cannot change what the origin answers for a
/// key unless the behavior names it. Under a list, the origin gets:
///
/// - the listed headers and the key's headers;
/// - Host (always: `host_header` or the viewer's), and what ringfront
///   writes itself: X-Forwarded-For (the viewer's earlier hops, then the
///   viewer, as CloudFront appends whatever the policy), Via, the body's
///   framing line, the normalised Accept-Encoding of a request with a cache
///   key (SPEC §4), the `origin_request` actions, the hooks' lines and a
///   revalidation's validators;
/// - the viewer's `Via` and `CDN-Loop` lines: they trace the request's path
///   through intermediaries, which each appends to (RFC 9110 §7.6.3, RFC
///   8586 §2); dropping them would hide a forwarding loop;
/// - for a request with a body, its Content-Type and Content-Encoding:
///   they describe the content ringfront forwards (RFC 9110 §8.3, §8.4),
///   which the origin cannot read without them, so an API behavior with
///   `forward_headers = []` still takes a POST.
///
/// Everything else is an ordinary header, forwarded only when listed. That
/// includes the viewer's conditionals (If-*) and Range: the origin then
/// answers in full, which is always a correct answer (a recipient may
/// ignore a condition or a range, RFC 9110 §13.2.1, §14.2), and a cache
/// that stores that full answer stores the right object. It includes
/// Authorization too, on every method: CloudFront refuses to list it in an
/// origin request policy (it must join the key) and keeps it on unsafe
/// methods; ringfront takes one rule, listed or not sent, since a response
/// to a request with Authorization is not stored unless the origin says
/// `public`, `s-maxage` or `must-revalidate` (SPEC §4, RFC 9111 §3.5).
#[derive(Debug, Clone, Copy)]
pub struct Forwarding<'a> {
    /// `forward_headers`: `None` = every end-to-end header; else these
    /// lowercase names, sorted.
    pub headers: Option<&'a [Box<[u8]>]>,
    /// The key's headers (`cache_key_headers`): lowercase, sorted.
    pub key_headers: &'a [Box<[u8]>],
    /// `forward_cookies`.
    pub cookies: &'a CookieForward,
    /// The key's cookies (`cache_key_cookies`): sorted.
    pub key_cookies: &'a [Box<[u8]>],
    /// What of the query string goes with the path.
    pub query: QueryForward<'a>,
}

/// The query string sent to the origin (`forward_query_string`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryForward<'a> {
    /// As the viewer sent it (after the path, normalised: SPEC §3.1).
    AsSent,
    /// None: the path alone.
    None,
    /// Only these parameters (sorted names), in name order: the query the
    /// cache key keeps ([`super::query::append_kept`]).
    Only(&'a [Box<[u8]>]),
}

impl Forwarding<'static> {
    /// Everything as sent: `forward_* = "all"`, nothing in the key.
    pub const ALL: Forwarding<'static> = Forwarding {
        headers: None,
        key_headers: &[],
        cookies: &CookieForward::All,
        key_cookies: &[],
        query: QueryForward::AsSent,
    };
}

impl Forwarding<'_> {
    /// True when the viewer's header `name` goes to the origin (one that is
    /// neither framing, hop-by-hop, Host, X-Forwarded-For nor Cookie, which
    /// are dealt with apart). `with_body`: the request forwards a body.
    fn header(&self, name: &[u8], with_body: bool) -> bool {
        let Some(list) = self.headers else {
            return true;
        };
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        listed(list, name)
            || listed(self.key_headers, name)
            || is(b"via")
            || is(b"cdn-loop")
            || (with_body && (is(b"content-type") || is(b"content-encoding")))
    }

    /// True when the Cookie lines go as sent: `forward_cookies = "all"`
    /// and no key cookies. Else [`Forwarding::cookie`] picks the cookies
    /// of one line of ringfront's own, read as the key reads them
    /// ([`super::cookie`]): a behavior keyed on cookies sends the origin
    /// exactly the cookies its key was made of (under "all", every valid
    /// pair in the order sent), not lines the origin might read otherwise
    /// (only the first, or split at spaces and commas).
    fn cookies_as_sent(&self) -> bool {
        matches!(self.cookies, CookieForward::All) && self.key_cookies.is_empty()
    }

    /// True when the cookie `name` goes to the origin (names are
    /// case-sensitive: RFC 6265 §5.4 compares them as sent).
    fn cookie(&self, name: &[u8]) -> bool {
        let key = self.key_cookies.binary_search_by(|n| (**n).cmp(name)).is_ok();
        match self.cookies {
            CookieForward::All => true,
            CookieForward::None => key,
            CookieForward::Only(list) => key || list.binary_search_by(|n| (**n).cmp(name)).is_ok(),
        }
    }
}

/// True when `name` (any case) is in `list` (lowercase, sorted).
fn listed(list: &[Box<[u8]>], name: &[u8]) -> bool {
    list.binary_search_by(|n| n.iter().copied().cmp(name.iter().map(u8::to_ascii_lowercase)))
        .is_ok()
}

/// The request headers a revalidation replaces.
fn is_conditional(name: &[u8]) -> bool {
    [
        &b"if-none-match"[..],
        b"if-modified-since",
        b"if-match",
        b"if-unmodified-since",
        b"if-range",
        b"range",
    ]
    .iter()
    .any(|c| name.eq_ignore_ascii_case(c))
}

/// The framing of a request body forwarded to an origin, written by
/// ringfront (one canonical Content-Length, or its own chunk framing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    None,
    Length(u64),
    Chunked,
}

impl RequestFraming {
    /// The framing that carries `h`'s body as it arrives: its length, or
    /// chunks framed again. (A decoded chunked body sent whole is `Length`.)
    pub fn of(h: &RequestHead) -> RequestFraming {
        use super::parse::BodyKind;
        match (h.body, h.content_length) {
            (BodyKind::Length(n), _) => RequestFraming::Length(n),
            (BodyKind::Chunked, _) => RequestFraming::Chunked,
            // `Content-Length: 0` is kept: some origins want it on a POST.
            (BodyKind::None, Some(n)) => RequestFraming::Length(n),
            (BodyKind::None, None) => RequestFraming::None,
        }
    }

    fn write_line(self, out: &mut Vec<u8>) {
        match self {
            RequestFraming::None => {}
            RequestFraming::Length(n) => line(out, b"Content-Length", itoa::Buffer::new().format(n).as_bytes()),
            RequestFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
    }
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn apply_sets(out: &mut Vec<u8>, actions: &HeaderActions, ctx: AttemptCtx) {
    for (name, parts) in &actions.set {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        HeaderActions::render(parts, ctx.attempt, ctx.origin, ctx.role, out);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends the request head to send to an origin.
pub fn write_request_head(out: &mut Vec<u8>, buf: &[u8], h: &RequestHead, rw: &RequestRewrite) {
    out.extend_from_slice(h.method.of(buf));
    out.push(b' ');
    write_target(out, h.path.of(buf), rw.forwarding.query);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    match (rw.host_override, h.host) {
        (Some(o), _) => out.extend_from_slice(o.as_bytes()),
        (None, Some(hs)) => out.extend_from_slice(hs.of(buf)),
        (None, None) => out.extend_from_slice(rw.host_fallback.as_bytes()),
    }
    out.extend_from_slice(b"\r\n");
    let seen = copy_request_fields(out, buf, h, rw);
    if seen.cookie {
        let lines = h
            .headers
            .iter()
            .filter(|hd| hd.name.of(buf).eq_ignore_ascii_case(b"cookie"))
            .map(|hd| hd.value.of(buf));
        cookie_line(out, lines, |name| rw.forwarding.cookie(name));
    }
    rw.framing.write_line(out);
    if let Some(ae) = rw.accept_encoding {
        line(out, b"Accept-Encoding", ae);
    }
    // X-Forwarded-For: earlier hops, then this viewer.
    out.extend_from_slice(b"X-Forwarded-For: ");
    if seen.xff {
        for hd in h.headers.iter().filter(|x| x.class == HeaderClass::XForwardedFor) {
            out.extend_from_slice(hd.value.of(buf));
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(rw.client_ip);
    out.extend_from_slice(b"\r\nVia: 1.");
    out.push(b'0' + h.minor);
    out.push(b' ');
    out.extend_from_slice(rw.via.as_bytes());
    out.extend_from_slice(b"\r\n");
    apply_sets(out, rw.actions, rw.ctx);
    out.extend_from_slice(rw.extra);
    out.extend_from_slice(b"\r\n");
}

/// The request target: the (normalised) path, and the query
/// [`QueryForward`] keeps.
fn write_target(out: &mut Vec<u8>, target: &[u8], query: QueryForward) {
    if target.first() != Some(&b'/') && target != b"*" {
        out.push(b'/');
    }
    let (path, q) = match memchr::memchr(b'?', target) {
        Some(i) => (&target[..i], Some(&target[i + 1..])),
        None => (target, None),
    };
    match (query, q) {
        (QueryForward::AsSent, _) => out.extend_from_slice(target),
        (QueryForward::None, _) | (QueryForward::Only(_), None) => out.extend_from_slice(path),
        (QueryForward::Only(names), Some(q)) => {
            out.extend_from_slice(path);
            super::query::append_kept(out, q, names, b'?');
        }
    }
}

/// What [`copy_request_fields`] left for lines of ringfront's own.
struct Seen {
    /// X-Forwarded-For lines, joined into one with the viewer appended.
    xff: bool,
    /// Cookie lines to filter into one ([`Forwarding::cookies_as_sent`]
    /// false).
    cookie: bool,
}

/// Copies the viewer's header lines the origin gets: not hop-by-hop ones,
/// those Connection names (RFC 9110 §7.6.1), its framing (SPEC §3.1),
/// those the actions set or remove, nor what the policy leaves out.
fn copy_request_fields(out: &mut Vec<u8>, buf: &[u8], h: &RequestHead, rw: &RequestRewrite) -> Seen {
    let mut seen = Seen {
        xff: false,
        cookie: false,
    };
    // Content-Type/-Encoding describe a body (RFC 9110 §8.3, §8.4): none
    // for `Content-Length: 0`.
    let with_body = matches!(rw.framing, RequestFraming::Length(1..) | RequestFraming::Chunked);
    for hd in &h.headers {
        match hd.class {
            HeaderClass::Host
            | HeaderClass::HopByHop
            | HeaderClass::Expect
            | HeaderClass::ContentLength
            | HeaderClass::TransferEncoding => continue,
            HeaderClass::XForwardedFor => {
                seen.xff = true;
                continue;
            }
            _ => {}
        }
        let name = hd.name.of(buf);
        if !h.connection_tokens.is_empty() && h.named_by_connection(buf, hd.name) {
            continue;
        }
        if !rw.actions.is_empty() && rw.actions.touches(name) {
            continue;
        }
        let cookie = name.eq_ignore_ascii_case(b"cookie");
        if cookie && !rw.forwarding.cookies_as_sent() {
            // Filtered into one line of ringfront's own after the copy.
            seen.cookie = true;
            continue;
        }
        if !cookie && !forwards(rw, name, with_body) {
            continue;
        }
        out.extend_from_slice(&buf[hd.name.start as usize..hd.value.end as usize]);
        out.extend_from_slice(b"\r\n");
    }
    seen
}

/// True when the viewer's end-to-end header `name` (not Cookie, which
/// follows `forward_cookies` whatever `forward_headers` lists) goes to the
/// origin as sent: not an Accept-Encoding replaced by its normalised value
/// (SPEC §4), not a condition a revalidation replaces, and one the policy
/// forwards.
fn forwards(rw: &RequestRewrite, name: &[u8], with_body: bool) -> bool {
    if rw.accept_encoding.is_some() && name.eq_ignore_ascii_case(b"accept-encoding") {
        return false;
    }
    !(rw.drop_conditionals && is_conditional(name)) && rw.forwarding.header(name, with_body)
}

/// Appends one `Cookie` line with the cookies of `lines` (the viewer's
/// Cookie values) that `keep` accepts ([`append_cookies`]); none when no
/// cookie is left.
fn cookie_line<'a>(out: &mut Vec<u8>, lines: impl IntoIterator<Item = &'a [u8]>, keep: impl Fn(&[u8]) -> bool) {
    let mark = out.len();
    out.extend_from_slice(b"Cookie: ");
    if append_cookies(out, lines, keep) {
        out.extend_from_slice(b"\r\n");
    } else {
        out.truncate(mark);
    }
}

/// Appends the cookie pairs of `lines` whose names `keep` accepts, in the
/// order sent, each rebuilt as `name=value`, joined by `"; "` (RFC 6265
/// §4.2.1); true when it appended any. The pairs are those
/// [`super::cookie::pairs`] reads, the key cookies' reading: several lines
/// are one list (RFC 6265 §5.4 has a user agent send one line; split ones
/// are joined with `"; "`, as RFC 9113 §8.2.3 joins HTTP/2 cookie
/// crumbs), and a pair without `=`, or whose name is not a token or whose
/// value is not cookie-octets, is dropped.
fn append_cookies<'a>(
    out: &mut Vec<u8>,
    lines: impl IntoIterator<Item = &'a [u8]>,
    keep: impl Fn(&[u8]) -> bool,
) -> bool {
    let mut any = false;
    for (name, value) in super::cookie::pairs(lines.into_iter()) {
        if !keep(name) {
            continue;
        }
        if any {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
        any = true;
    }
    any
}

/// How the body of a forwarded response reaches the viewer. The origin's
/// Content-Length and Transfer-Encoding lines are never copied (SPEC §3.5):
/// the one framing line the viewer gets is written from this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewerFraming {
    /// `Content-Length: n`, then exactly n bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`, with chunk framing of ringfront's own
    /// (the origin's chunk extensions and trailers are not passed on).
    Chunked,
    /// No framing line: the body ends when the connection closes (an
    /// origin body delimited by close, or chunked to an HTTP/1.0 viewer).
    Close,
    /// No body (HEAD, 1xx, 204, 304). A HEAD or 304 may still say the
    /// representation's length (RFC 9110 §8.6), which is metadata then.
    NoBody { length: Option<u64> },
}

impl ViewerFraming {
    /// The framing for `r`'s body to a viewer of this HTTP version.
    pub fn of(r: &ResponseHead, viewer_http10: bool) -> ViewerFraming {
        use super::response::RespBody;
        match r.body() {
            RespBody::Length(n) => ViewerFraming::Length(n),
            RespBody::Chunked if viewer_http10 => ViewerFraming::Close,
            RespBody::Chunked => ViewerFraming::Chunked,
            RespBody::Close => ViewerFraming::Close,
            // 1xx and 204 have no content at all (RFC 9110 §8.6).
            RespBody::None if r.status < 200 || r.status == 204 => ViewerFraming::NoBody { length: None },
            RespBody::None => ViewerFraming::NoBody {
                length: r.content_length,
            },
        }
    }

    /// Appends the framing line (none for `Close` and an unknown length).
    pub fn write_line(self, out: &mut Vec<u8>) {
        let n = match self {
            ViewerFraming::Length(n) | ViewerFraming::NoBody { length: Some(n) } => n,
            ViewerFraming::Chunked => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
                return;
            }
            ViewerFraming::Close | ViewerFraming::NoBody { length: None } => return,
        };
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// What to change when forwarding a response head.
pub struct ResponseRewrite<'a> {
    pub via: &'a str,
    /// Value of X-Cache (e.g. "Miss from ringfront").
    pub x_cache: &'a [u8],
    /// Value of Cache-Status.
    pub cache_status: &'a [u8],
    /// Value of Proxy-Status, empty when no attempt failed.
    pub proxy_status: &'a [u8],
    pub actions: &'a HeaderActions,
    pub ctx: AttemptCtx<'a>,
    pub framing: ViewerFraming,
    /// The viewer connection stays open after this response.
    pub keep_alive: bool,
    /// The viewer spoke HTTP/1.0.
    pub viewer_http10: bool,
    /// Extra header lines from code hooks.
    pub extra: &'a [u8],
}

/// Appends the response head to send to the viewer.
pub fn write_response_head(out: &mut Vec<u8>, buf: &[u8], r: &ResponseHead, rw: &ResponseRewrite) {
    write_response_core(out, buf, r, rw);
    line(out, b"X-Cache", rw.x_cache);
    line(out, b"Cache-Status", rw.cache_status);
    if !rw.proxy_status.is_empty() {
        line(out, b"Proxy-Status", rw.proxy_status);
    }
    connection_line(out, rw.keep_alive, rw.viewer_http10);
    out.extend_from_slice(b"\r\n");
}

/// The part of a forwarded response head that does not depend on this
/// particular response's delivery: status line, the origin's end-to-end
/// headers, the framing line of ringfront's own, Via, header actions and
/// hook lines. A response streamed through keeps the origin's `Age`: a
/// proxy that does not store it has no age of its own to give.
pub fn write_response_core(out: &mut Vec<u8>, buf: &[u8], r: &ResponseHead, rw: &ResponseRewrite) {
    write_core(out, buf, r, rw, false);
}

/// The head the cache stores (with [`ViewerFraming::Length`]): as
/// [`write_response_core`], without the origin's `Age`, which an answer
/// from the cache replaces with its own (RFC 9111 §4: "a cache MUST
/// generate an Age header field (Section 5.1), replacing any present in
/// the response with a value equal to the stored response's
/// current_age"). A hit adds Age, X-Cache, Cache-Status and Connection
/// ([`write_hit_lines`]).
pub fn write_stored_head(out: &mut Vec<u8>, buf: &[u8], r: &ResponseHead, rw: &ResponseRewrite) {
    write_core(out, buf, r, rw, true);
}

fn write_core(out: &mut Vec<u8>, buf: &[u8], r: &ResponseHead, rw: &ResponseRewrite, stored: bool) {
    status_line(out, buf, r);
    copy_fields(out, buf, r, |name| {
        (!rw.actions.is_empty() && rw.actions.touches(name)) || (stored && name.eq_ignore_ascii_case(b"age"))
    });
    rw.framing.write_line(out);
    via_line(out, r, rw.via);
    apply_sets(out, rw.actions, rw.ctx);
    out.extend_from_slice(rw.extra);
}

fn status_line(out: &mut Vec<u8>, buf: &[u8], r: &ResponseHead) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(r.status).as_bytes());
    out.push(b' ');
    if r.reason.is_empty() {
        out.extend_from_slice(reason(r.status).as_bytes());
    } else {
        out.extend_from_slice(r.reason.of(buf));
    }
    out.extend_from_slice(b"\r\n");
}

/// Copies the origin's end-to-end field lines: not hop-by-hop ones, not
/// those its Connection names (RFC 9110 §7.6.1), not its framing (ringfront
/// writes its own), and not those `skip` names.
fn copy_fields(out: &mut Vec<u8>, buf: &[u8], r: &ResponseHead, skip: impl Fn(&[u8]) -> bool) {
    for hd in &r.headers {
        match hd.class {
            HeaderClass::HopByHop | HeaderClass::ContentLength | HeaderClass::TransferEncoding => continue,
            _ => {}
        }
        if !r.connection_tokens.is_empty() && r.named_by_connection(buf, hd.name) {
            continue;
        }
        if skip(hd.name.of(buf)) {
            continue;
        }
        out.extend_from_slice(&buf[hd.name.start as usize..hd.value.end as usize]);
        out.extend_from_slice(b"\r\n");
    }
}

/// `Via: 1.x <pseudonym>` (RFC 9110 §7.6.3), with the version the origin
/// spoke.
fn via_line(out: &mut Vec<u8>, r: &ResponseHead, via: &str) {
    out.extend_from_slice(b"Via: 1.");
    out.push(b'0' + r.minor.min(1));
    out.push(b' ');
    out.extend_from_slice(via.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends an interim (1xx) response head to forward to the viewer
/// (RFC 9110 §15.2): the status line, the origin's end-to-end fields (a
/// 1xx has no content, so no framing fields) and Via (§7.6.3).
pub fn write_interim_head(out: &mut Vec<u8>, buf: &[u8], r: &ResponseHead, via: &str) {
    status_line(out, buf, r);
    copy_fields(out, buf, r, |_| false);
    via_line(out, r, via);
    out.extend_from_slice(b"\r\n");
}

/// How an answer from the cache came about, for X-Cache and Cache-Status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HitLabel {
    /// Fresh in the cache.
    Hit,
    /// Stale, revalidated with the origin, which answered this status (a
    /// 304, or a HEAD's 200) and updated it.
    RefreshHit(u16),
    /// Stale, served because the origin group failed with this status.
    StaleOnError(u16),
    /// Fetched just now, stored, and answered from the store (a miss). Its
    /// Age is the one it arrived with, if any (RFC 9111 §4.2.3): the stored
    /// head no longer has the origin's.
    Stored,
    /// Fetched just now and answered from the recording, which the store
    /// refused: a plain miss (no `stored` in Cache-Status).
    Unstored,
}

/// Appends the lines an answer from the cache adds to a stored head, and the
/// final CRLF: Age (`age` seconds; for [`HitLabel::Stored`] only when not
/// 0), X-Cache, Cache-Status (RFC 9211), Connection.
pub fn write_hit_lines(
    out: &mut Vec<u8>,
    via: &str,
    age: u64,
    ttl_left: i64,
    label: HitLabel,
    keep_alive: bool,
    http10: bool,
) {
    let mut n = itoa::Buffer::new();
    let fetched = matches!(label, HitLabel::Stored | HitLabel::Unstored);
    if !fetched || age > 0 {
        out.extend_from_slice(b"Age: ");
        out.extend_from_slice(n.format(age).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(match label {
        HitLabel::Hit | HitLabel::StaleOnError(_) => &b"X-Cache: Hit from "[..],
        HitLabel::RefreshHit(_) => b"X-Cache: RefreshHit from ",
        HitLabel::Stored | HitLabel::Unstored => b"X-Cache: Miss from ",
    });
    out.extend_from_slice(via.as_bytes());
    out.extend_from_slice(b"\r\nCache-Status: ");
    out.extend_from_slice(via.as_bytes());
    match label {
        HitLabel::Hit => {
            out.extend_from_slice(b"; hit; ttl=");
            out.extend_from_slice(n.format(ttl_left).as_bytes());
        }
        HitLabel::RefreshHit(st) => {
            out.extend_from_slice(b"; fwd=stale; fwd-status=");
            out.extend_from_slice(n.format(st).as_bytes());
            out.extend_from_slice(b"; ttl=");
            out.extend_from_slice(n.format(ttl_left).as_bytes());
        }
        HitLabel::Stored => out.extend_from_slice(b"; fwd=miss; stored"),
        HitLabel::Unstored => out.extend_from_slice(b"; fwd=miss"),
        HitLabel::StaleOnError(st) => {
            out.extend_from_slice(b"; hit; fwd=stale; fwd-status=");
            out.extend_from_slice(n.format(st).as_bytes());
            out.extend_from_slice(b"; ttl=");
            out.extend_from_slice(n.format(ttl_left).as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
    connection_line(out, keep_alive, http10);
    out.extend_from_slice(b"\r\n");
}

fn connection_line(out: &mut Vec<u8>, keep_alive: bool, http10: bool) {
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
}

/// A response ringfront makes itself.
pub struct Generated<'a> {
    pub status: u16,
    pub content_type: &'a str,
    pub body_len: usize,
    pub keep_alive: bool,
    pub viewer_http10: bool,
    pub via: &'a str,
    /// Additional lines, each `name: value\r\n`.
    pub extra: &'a [u8],
}

/// Appends a generated response head (the body follows separately).
pub fn write_generated_head(out: &mut Vec<u8>, g: &Generated) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(g.status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(g.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(g.via.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
    with_http_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(g.content_type.as_bytes());
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(g.body_len).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(g.extra);
    connection_line(out, g.keep_alive, g.viewer_http10);
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Calls `f` with the current IMF-fixdate, formatted at most once a second per thread.
pub fn with_http_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    DATE.with(|c| {
        let mut c = c.borrow_mut();
        let now = SystemTime::now();
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        if c.0 != secs {
            let s = httpdate::fmt_http_date(now);
            let n = s.len().min(29);
            c.1[..n].copy_from_slice(&s.as_bytes()[..n]);
            c.0 = secs;
        }
        f(&c.1)
    })
}

/// Standard reason phrases (RFC 9110 §15).
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::parse_request;
    use crate::http::response::parse_response;

    fn actions() -> HeaderActions {
        HeaderActions::default()
    }

    #[test]
    fn request_rewrite_drops_hop_by_hop_and_appends() {
        let buf = b"POST /x?y HTTP/1.1\r\nHost: site\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: x\r\nUpgrade: h2c\r\nProxy-Connection: k\r\nProxy-Authorization: secret\r\nExpect: 100-continue\r\nX-Forwarded-For: 10.0.0.1\r\nX-Keep: yes\r\nContent-Length: 3\r\n\r\n";
        let s = rewritten(buf, Forwarding::ALL);
        assert!(s.starts_with("POST /x?y HTTP/1.1\r\nHost: site\r\n"), "{s}");
        for gone in [
            "Connection",
            "X-Drop",
            "Keep-Alive",
            "TE:",
            "Trailer",
            "Upgrade",
            "Proxy-",
            "Expect",
        ] {
            assert!(!s.contains(gone), "{gone} forwarded: {s}");
        }
        assert!(s.contains("X-Keep: yes\r\n"));
        assert!(s.contains("Content-Length: 3\r\n"));
        assert!(s.contains("X-Forwarded-For: 10.0.0.1, 127.0.0.9\r\n"));
        assert!(s.contains("Via: 1.1 ringfront\r\n"));
        assert!(s.ends_with("\r\n\r\n"));
    }

    /// `write_request_head` of `req` under `f`, as text.
    fn rewritten(req: &[u8], f: Forwarding) -> String {
        let mut h = RequestHead::default();
        parse_request(req, 32768, &mut h).unwrap().unwrap();
        let a = actions();
        let rw = RequestRewrite {
            host_override: None,
            host_fallback: "o",
            client_ip: b"127.0.0.9",
            via: "ringfront",
            actions: &a,
            ctx: AttemptCtx {
                attempt: 1,
                origin: "o",
                role: "single",
            },
            extra: b"If-None-Match: \"v\"\r\n",
            framing: RequestFraming::of(&h),
            accept_encoding: None,
            drop_conditionals: false,
            forwarding: f,
        };
        let mut out = Vec::new();
        write_request_head(&mut out, req, &h, &rw);
        String::from_utf8(out).unwrap()
    }

    fn names(list: &[&str]) -> Vec<Box<[u8]>> {
        list.iter().map(|n| n.as_bytes().into()).collect()
    }

    #[test]
    fn a_listed_policy_keeps_the_listed_and_key_headers_and_the_trace() {
        let req = b"POST /p HTTP/1.1\r\nHost: h\r\nX-Listed: 1\r\nX-KEY: k\r\nX-Forwarded-Host: evil\r\nIf-None-Match: \"w\"\r\nVia: 1.1 up\r\nCDN-Loop: other\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nAccept-Encoding: br\r\nContent-Length: 1\r\n\r\n";
        let (listed, key) = (names(&["x-listed"]), names(&["x-key"]));
        let f = Forwarding {
            headers: Some(&listed),
            key_headers: &key,
            ..Forwarding::ALL
        };
        assert_eq!(
            rewritten(req, f),
            "POST /p HTTP/1.1\r\nHost: h\r\nX-Listed: 1\r\nX-KEY: k\r\nVia: 1.1 up\r\nCDN-Loop: other\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\nX-Forwarded-For: 127.0.0.9\r\nVia: 1.1 ringfront\r\nIf-None-Match: \"v\"\r\n\r\n"
        );
        // Without a body, Content-Type describes nothing and is not sent.
        let get = b"GET /p HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n\r\n";
        assert!(!rewritten(get, f).contains("Content-Type"));
        // "all": every end-to-end header.
        assert!(rewritten(req, Forwarding::ALL).contains("\r\nX-Forwarded-Host: evil\r\nIf-None-Match: \"w\"\r\n"));
    }

    #[test]
    fn the_target_keeps_the_query_the_policy_says() {
        let req = b"GET /p?b=2&utm=x&a=1 HTTP/1.1\r\nHost: h\r\n\r\n";
        let kept = names(&["a", "b"]);
        for (query, want) in [
            (QueryForward::AsSent, "GET /p?b=2&utm=x&a=1 "),
            (QueryForward::None, "GET /p "),
            (QueryForward::Only(&kept), "GET /p?a=1&b=2 "),
            (QueryForward::Only(&[]), "GET /p "),
        ] {
            let f = Forwarding {
                query,
                ..Forwarding::ALL
            };
            assert!(rewritten(req, f).starts_with(want), "{query:?}");
        }
        let bare = b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n";
        let f = Forwarding {
            query: QueryForward::Only(&kept),
            ..Forwarding::ALL
        };
        assert!(rewritten(bare, f).starts_with("GET /p HTTP/1.1\r\n"));
    }

    /// The cookie pairs `append_cookies` keeps of `lines` for `keep`.
    fn cookies(lines: &[&str], keep: &[&str]) -> Option<String> {
        let mut out = Vec::new();
        let any = append_cookies(&mut out, lines.iter().map(|l| l.as_bytes()), |n| {
            keep.iter().any(|k| k.as_bytes() == n)
        });
        assert_eq!(any, !out.is_empty());
        any.then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_cookie_filter_keeps_named_cookies_in_the_order_sent() {
        assert_eq!(cookies(&["b=2; x=9; a=1"], &["a", "b"]).as_deref(), Some("b=2; a=1"));
        // Several lines are one list.
        assert_eq!(
            cookies(&["b=2; x=9", "y=8;a=1"], &["a", "b"]).as_deref(),
            Some("b=2; a=1")
        );
        // A value may hold '=' and is kept as sent; whitespace around a
        // pair, its name and its value is not.
        assert_eq!(
            cookies(&["  t=a=b==  ;\tu = \"q\" "], &["t", "u"]).as_deref(),
            Some("t=a=b==; u=\"q\"")
        );
        // Empty values are cookies too.
        assert_eq!(cookies(&["e="], &["e"]).as_deref(), Some("e="));
    }

    #[test]
    fn the_cookie_filter_drops_malformed_pairs_and_other_names() {
        // No '=', an empty name, empty members: no cookie named.
        assert_eq!(cookies(&["a; =1; ;; b=2"], &["a", "b", ""]).as_deref(), Some("b=2"));
        // Names are case-sensitive (RFC 6265 §5.4 compares them as sent).
        assert_eq!(cookies(&["A=1"], &["a"]), None);
        assert_eq!(cookies(&["x=1", "y=2"], &["a"]), None);
        assert_eq!(cookies(&[], &["a"]), None);
        assert_eq!(cookies(&[""], &["a"]), None);
        // RFC 6265 §4.1.1: a name that is no token, a value that is not
        // cookie-octets (another parser would split it): the pair goes.
        let lines = ["a=1 b=2; b=3, c=4; c=\"5; d d=6; d=7"];
        assert_eq!(cookies(&lines, &["a", "b", "c", "d"]).as_deref(), Some("d=7"));
    }

    #[test]
    fn a_filtered_cookie_line_is_one_line_or_none() {
        let req = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: keep=1; drop=2\r\nX-A: a\r\nCookie: k2=3\r\n\r\n";
        let (only, key) = (CookieForward::Only(names(&["keep"])), names(&["k2"]));
        let f = |cookies, key_cookies| Forwarding {
            cookies,
            key_cookies,
            ..Forwarding::ALL
        };
        let s = rewritten(req, f(&only, &key));
        assert!(s.contains("\r\nX-A: a\r\nCookie: keep=1; k2=3\r\n"), "{s}");
        assert_eq!(s.matches("Cookie").count(), 1, "{s}");
        let s = rewritten(req, f(&CookieForward::None, &key));
        assert!(
            s.contains("\r\nCookie: k2=3\r\n") && s.matches("Cookie").count() == 1,
            "{s}"
        );
        let s = rewritten(req, f(&CookieForward::None, &[]));
        assert!(!s.contains("Cookie"), "{s}");
        let s = rewritten(req, f(&CookieForward::All, &[]));
        assert!(
            s.contains("\r\nCookie: keep=1; drop=2\r\nX-A: a\r\nCookie: k2=3\r\n"),
            "{s}"
        );
        // Key cookies: "all" is every valid pair, on one line of ours.
        let s = rewritten(req, f(&CookieForward::All, &key));
        assert!(s.contains("\r\nX-A: a\r\nCookie: keep=1; drop=2; k2=3\r\n"), "{s}");
        assert_eq!(s.matches("Cookie").count(), 1, "{s}");
        let bad = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: s=1 k2=2\r\n\r\n";
        assert!(!rewritten(bad, f(&CookieForward::All, &key)).contains("Cookie"));
        // Named by Connection: no line at all (RFC 9110 §7.6.1).
        let hop = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: cookie\r\nCookie: k2=3\r\n\r\n";
        assert!(!rewritten(hop, f(&CookieForward::All, &key)).contains("Cookie"));
        assert!(!rewritten(hop, f(&CookieForward::All, &[])).contains("Cookie"));
    }

    #[test]
    fn response_rewrite() {
        let buf = b"HTTP/1.1 200 OK\r\nServer: origin\r\nConnection: X-Hop\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n";
        let mut r = ResponseHead::default();
        parse_response(buf, false, &mut r).unwrap().unwrap();
        let mut a = actions();
        a.remove.push("server".into());
        let rw = ResponseRewrite {
            via: "edge",
            x_cache: b"Miss from edge",
            cache_status: b"edge; fwd=miss",
            proxy_status: b"",
            actions: &a,
            ctx: AttemptCtx {
                attempt: 1,
                origin: "o",
                role: "single",
            },
            framing: ViewerFraming::Close,
            keep_alive: false,
            viewer_http10: true,
            extra: b"",
        };
        let mut out = Vec::new();
        write_response_head(&mut out, buf, &r, &rw);
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        for gone in ["Server", "X-Hop", "Transfer-Encoding", "Keep-Alive", "Content-Length"] {
            assert!(!s.contains(gone), "{gone} forwarded: {s}");
        }
        assert!(
            s.contains("Via: 1.1 edge\r\nX-Cache: Miss from edge\r\nCache-Status: edge; fwd=miss\r\n"),
            "{s}"
        );
        assert!(s.ends_with("Connection: close\r\n\r\n"));
    }

    /// RFC 9111 §4: an answer from the cache replaces any Age the response
    /// had, so the stored head has none; a response streamed through keeps
    /// the origin's.
    #[test]
    fn the_stored_head_leaves_out_the_origin_age() {
        let buf = b"HTTP/1.1 200 OK\r\nAge: 30\r\nX-Page: age: 1\r\nage: 7\r\nAgeing: no\r\nContent-Length: 0\r\n\r\n";
        let mut r = ResponseHead::default();
        parse_response(buf, false, &mut r).unwrap().unwrap();
        let a = actions();
        let rw = ResponseRewrite {
            via: "edge",
            x_cache: b"",
            cache_status: b"",
            proxy_status: b"",
            actions: &a,
            ctx: AttemptCtx {
                attempt: 1,
                origin: "o",
                role: "single",
            },
            framing: ViewerFraming::of(&r, false),
            keep_alive: true,
            viewer_http10: false,
            extra: b"",
        };
        let (mut stored, mut forwarded) = (Vec::new(), Vec::new());
        write_stored_head(&mut stored, buf, &r, &rw);
        write_response_core(&mut forwarded, buf, &r, &rw);
        assert_eq!(
            String::from_utf8(stored).unwrap(),
            "HTTP/1.1 200 OK\r\nX-Page: age: 1\r\nAgeing: no\r\nContent-Length: 0\r\nVia: 1.1 edge\r\n"
        );
        let forwarded = String::from_utf8(forwarded).unwrap();
        assert!(
            forwarded.contains("\r\nAge: 30\r\n") && forwarded.contains("\r\nage: 7\r\n"),
            "{forwarded}"
        );
        // A stored miss's answer says the age it arrived with, if any.
        let lines = |age, label| {
            let mut out = Vec::new();
            write_hit_lines(&mut out, "edge", age, 5, label, true, false);
            String::from_utf8(out).unwrap()
        };
        assert!(!lines(0, HitLabel::Stored).contains("Age"));
        assert!(!lines(0, HitLabel::Unstored).contains("Age"));
        assert!(lines(0, HitLabel::Unstored).contains("Cache-Status: edge; fwd=miss\r\n"));
        assert!(lines(30, HitLabel::Stored).starts_with("Age: 30\r\nX-Cache: Miss from edge\r\n"));
        assert!(lines(0, HitLabel::Hit).starts_with("Age: 0\r\nX-Cache: Hit from edge\r\n"));
    }

    #[test]
    fn an_interim_head_keeps_end_to_end_fields_only() {
        let buf = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nConnection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nContent-Length: 4\r\n\r\n";
        let mut r = ResponseHead::default();
        parse_response(buf, false, &mut r).unwrap().unwrap();
        let mut out = Vec::new();
        write_interim_head(&mut out, buf, &r, "ringfront");
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nVia: 1.1 ringfront\r\n\r\n"
        );
    }

    #[test]
    fn date_is_imf_fixdate() {
        with_http_date(|d| {
            assert_eq!(d.len(), 29);
            assert!(d.ends_with(b" GMT"));
        });
    }
}
