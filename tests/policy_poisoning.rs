//! Cache poisoning through a disagreement between the cache key and what
//! the origin receives (SPEC §2 `cache_key_headers`, `cache_key_cookies`,
//! SPEC §4 Vary), over sockets. Each test sends an attacker's request
//! crafted so that ringfront keys it as one variant while the origin
//! answers it as another, then a victim's ordinary request of that
//! variant, which must get its own answer, not the attacker's.
//!
//! The origin here reads requests as a naive application does: the first
//! line of a header as sent, and cookies from the first Cookie line split
//! at `;`, `,` and whitespace (as Python's `SimpleCookie` finds them). It
//! echoes what it read in the body, and the raw `Origin` in
//! `Access-Control-Allow-Origin`.
mod common;
use common::scripted::{Reply, ScriptedOrigin};
use common::{config, Client, Proxy, Response};

const HIT: Option<&str> = Some("Hit from ringfront");

/// `/h/*` keys on X-Device, `/c/*` on the `lang` cookie (forwarding every
/// cookie, the default), `/o/*` on Origin; `/v/*` has no key policy, its
/// responses say `Vary: X-Device`.
const BEHAVIORS: &str = r#"
[[behavior]]
path = "/h/*"
target = "o"
cache = true
cache_key_headers = ["x-device"]

[[behavior]]
path = "/c/*"
target = "o"
cache = true
cache_key_cookies = ["lang"]

[[behavior]]
path = "/o/*"
target = "o"
cache = true
cache_key_headers = ["origin"]

[[behavior]]
path = "/v/*"
target = "o"
cache = true
"#;

/// The raw value of the first line of header `name` in `head`, trimmed of
/// whitespace; "-" when there is none.
fn first(head: &str, name: &str) -> String {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map_or("-".into(), |(_, v)| v.trim().to_string())
}

/// The `lang` cookie as a lenient application reads it: from the first
/// Cookie line, pairs split at `;`, `,` and whitespace.
fn lang(head: &str) -> String {
    let line = first(head, "cookie");
    line.split([';', ',', ' ', '\t'])
        .find_map(|p| p.strip_prefix("lang="))
        .unwrap_or("-")
        .to_string()
}

/// A naive application: fresh for an hour, its page naming the X-Device,
/// `lang` and Origin it read; `/v/*` pages vary on X-Device.
fn origin() -> ScriptedOrigin {
    ScriptedOrigin::start(|head| {
        let origin = first(head, "origin");
        let body = format!("device={} lang={} origin={origin}", first(head, "x-device"), lang(head));
        let vary = if head.starts_with("GET /v/") {
            "Vary: X-Device\r\n"
        } else {
            ""
        };
        let reply = format!(
            "HTTP/1.1 200 OK\r\nCache-Control: max-age=3600\r\n{vary}Access-Control-Allow-Origin: {origin}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Reply::now(reply.as_bytes())
    })
}

fn proxy(o: &ScriptedOrigin) -> Proxy {
    Proxy::start(&config(&[("o", o.addr)], "o", BEHAVIORS))
}

/// `GET path` with the header lines `lines` (each ending in CRLF).
fn get(c: &mut Client, path: &str, lines: &str) -> Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{lines}\r\n").as_bytes());
    c.read_response(false).expect("response")
}

/// The attacker's request to `path`, then the victim's: the victim's
/// answer, which must be the origin's answer to the victim.
fn attack_then_victim(path: &str, attacker: &str, victim: &str) -> Response {
    let o = origin();
    let p = proxy(&o);
    get(&mut p.client(), path, attacker);
    get(&mut p.client(), path, victim)
}

/// The cookie lines the origin got in its `n`th request.
fn cookie_lines(o: &ScriptedOrigin, n: usize) -> Vec<String> {
    let received = o.received();
    let head = String::from_utf8_lossy(&received[n]).into_owned();
    head.lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("cookie:"))
        .map(str::to_string)
        .collect()
}

/// RFC 9110 §7.6.1: a header the viewer names in Connection is hop-by-hop
/// and never reaches the origin, so the origin answers as if it were
/// absent; keyed as present, that answer would be served to every viewer
/// who does send it.
#[test]
fn a_key_header_named_by_connection_is_keyed_as_absent() {
    let o = origin();
    let p = proxy(&o);
    let attacker = get(
        &mut p.client(),
        "/h/conn",
        "X-Device: mobile\r\nConnection: X-Device\r\n",
    );
    assert_eq!(attacker.text(), "device=- lang=- origin=-");
    let victim = get(&mut p.client(), "/h/conn", "X-Device: mobile\r\n");
    assert_eq!(victim.text(), "device=mobile lang=- origin=-");
    // The attacker's answer is the one for viewers without the header.
    let r = get(&mut p.client(), "/h/conn", "");
    assert_eq!((r.header("x-cache"), r.text()), (HIT, attacker.text()));
}

/// The same for a key cookie: `Connection: Cookie` drops every Cookie line.
#[test]
fn a_key_cookie_named_by_connection_is_keyed_as_absent() {
    let victim = attack_then_victim(
        "/c/conn",
        "Cookie: lang=fr\r\nConnection: Cookie\r\n",
        "Cookie: lang=fr\r\n",
    );
    assert_eq!(victim.text(), "device=- lang=fr origin=-");
}

/// And for an origin's own `Vary`, without a key policy (RFC 9111 §4.1
/// keys on what the request that was forwarded held).
#[test]
fn a_vary_header_named_by_connection_is_keyed_as_absent() {
    let victim = attack_then_victim(
        "/v/conn",
        "X-Device: mobile\r\nConnection: x-device\r\n",
        "X-Device: mobile\r\n",
    );
    assert_eq!(victim.text(), "device=mobile lang=- origin=-");
}

/// Many applications read the first Cookie line only: a key cookie on a
/// second line must reach the origin where it is read, so the origin gets
/// one line of every cookie, in the order sent.
#[test]
fn cookies_on_several_lines_reach_the_origin_as_one_line() {
    let o = origin();
    let p = proxy(&o);
    let attacker = get(&mut p.client(), "/c/lines", "Cookie: a=1\r\nCookie: lang=fr; b=2\r\n");
    assert_eq!(attacker.text(), "device=- lang=fr origin=-");
    assert_eq!(cookie_lines(&o, 0), ["Cookie: a=1; lang=fr; b=2"]);
    let victim = get(&mut p.client(), "/c/lines", "Cookie: lang=fr\r\n");
    assert_eq!(victim.text(), "device=- lang=fr origin=-");
}

/// RFC 6265 §4.1.1: a cookie value holds no space, comma, DQUOTE,
/// backslash or control. A lenient origin reads `lang=fr` out of
/// `session=1 lang=fr` or `session=1, lang=fr`, which ringfront cannot
/// key on as that origin reads it: such a pair is neither keyed nor
/// forwarded, and the viewers without the cookie keep their answer.
#[test]
fn a_cookie_hidden_in_another_cookies_value_reaches_neither_key_nor_origin() {
    for (path, attacker) in [
        ("/c/space", "Cookie: session=1 lang=fr\r\n"),
        ("/c/comma", "Cookie: session=1, lang=fr\r\n"),
    ] {
        let o = origin();
        let p = proxy(&o);
        let r = get(&mut p.client(), path, attacker);
        assert_eq!(r.text(), "device=- lang=- origin=-", "{attacker:?}");
        assert_eq!(cookie_lines(&o, 0), Vec::<String>::new(), "{attacker:?}");
        let victim = get(&mut p.client(), path, "");
        assert_eq!(victim.text(), "device=- lang=- origin=-", "{attacker:?}");
    }
    // A valid pair beside invalid ones goes on, alone.
    let o = origin();
    let p = proxy(&o);
    let r = get(
        &mut p.client(),
        "/c/mixed",
        "Cookie: x=\"a b\"; lang=fr; y=\\; z=\"1\r\n",
    );
    assert_eq!(r.text(), "device=- lang=fr origin=-");
    assert_eq!(cookie_lines(&o, 0), ["Cookie: lang=fr"]);
}

/// A header's value is keyed as sent (each line trimmed of whitespace
/// only, RFC 9110 §5.5): an origin echoing `Origin` echoes the value with
/// its comma, which must not be served to the viewer of the real site.
#[test]
fn an_origin_with_a_trailing_comma_is_another_variant() {
    let victim = attack_then_victim(
        "/o/comma",
        "Origin: https://a.example,\r\n",
        "Origin: https://a.example\r\n",
    );
    assert_eq!(victim.header("access-control-allow-origin"), Some("https://a.example"));
}

/// An empty member, or an empty first line, is what an origin reading the
/// first line sees: neither is the value `mobile`.
#[test]
fn a_key_header_with_empty_members_or_lines_is_another_variant() {
    for (path, attacker) in [
        ("/h/member", "X-Device: , mobile\r\n"),
        ("/h/lines", "X-Device:\r\nX-Device: mobile\r\n"),
        ("/h/lines2", "X-Device: mobile,\r\n"),
    ] {
        let victim = attack_then_victim(path, attacker, "X-Device: mobile\r\n");
        assert_eq!(victim.text(), "device=mobile lang=- origin=-", "{attacker:?}");
    }
    // Surrounding whitespace is no part of a value (RFC 9110 §5.5).
    let o = origin();
    let p = proxy(&o);
    get(&mut p.client(), "/h/ows", "X-Device: mobile\r\n");
    let r = get(&mut p.client(), "/h/ows", "X-Device: \t mobile \t\r\n");
    assert_eq!(
        (r.header("x-cache"), r.text()),
        (HIT, "device=mobile lang=- origin=-".into())
    );
}
