//! RFC 9110 §15.2 (Informational 1xx), over sockets: a proxy forwards the
//! origin's interim responses to the viewer, never to an HTTP/1.0 viewer,
//! and never lets them stand for the final response.
mod common;
use common::*;
use std::io::Write;

const HINTS: &[u8] =
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\nok";

/// Sends `request` to a proxy in front of an origin that answers `HINTS`,
/// and returns all the proxy wrote until it closed.
fn exchange(request: &[u8]) -> String {
    let o = one_shot_origin(HINTS);
    let p = Proxy::start(&config(&[("o", o)], "o", ""));
    let mut s = std::net::TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    String::from_utf8_lossy(&read_until_close(&mut s)).into_owned()
}

/// §15.2: "A proxy MUST forward 1xx responses unless the proxy itself
/// requested the generation of the 1xx response." The 103 arrives before
/// the final 200, with its end-to-end fields (Link) and without the
/// hop-by-hop ones its Connection names (RFC 9110 §7.6.1).
#[test]
fn early_hints_are_forwarded_before_the_final_response() {
    let out = exchange(b"GET /page HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let hints = out
        .find("HTTP/1.1 103 ")
        .unwrap_or_else(|| panic!("no 103 forwarded: {out}"));
    let fin = out.find("HTTP/1.1 200 ").expect("final response");
    assert!(hints < fin, "{out}");
    let interim = &out[hints..fin];
    assert!(
        interim.contains("Link: </style.css>; rel=preload; as=style\r\n"),
        "{interim}"
    );
    assert!(
        !interim.to_ascii_lowercase().contains("x-hop"),
        "hop-by-hop forwarded: {interim}"
    );
    assert!(interim.ends_with("\r\n\r\n"), "{interim}");
    assert!(out.ends_with("ok"), "{out}");
}

/// §15.2: "A server MUST NOT send a 1xx response to an HTTP/1.0 client."
#[test]
fn an_http10_viewer_gets_no_interim_response() {
    let out = exchange(b"GET /page HTTP/1.0\r\nHost: t\r\n\r\n");
    assert!(!out.contains(" 103 "), "{out}");
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
}

/// An origin that sends interim responses without end never answers: after
/// 32 of them the response is a bad head (502), not a wait without bound.
#[test]
fn endless_interim_responses_are_a_bad_response() {
    let mut r = "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n".repeat(40);
    r.push_str("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let o = one_shot_origin(Box::leak(r.into_bytes().into_boxed_slice()));
    let p = Proxy::start(&config(&[("o", o)], "o", ""));
    let mut s = std::net::TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = String::from_utf8_lossy(&read_until_close(&mut s)).into_owned();
    assert_eq!(out.matches(" 103 ").count(), 32, "{out}");
    assert!(out.contains("HTTP/1.1 502 "), "{out}");
}

/// §15.2: a 1xx is not the response; what follows it is stored as usual,
/// and a hit carries no interim response.
#[test]
fn the_final_response_after_hints_is_stored_without_them() {
    let o = one_shot_origin(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: max-age=60\r\n\r\nok",
    );
    let p = Proxy::start(&config(&[("o", o)], "o", "").replace("cache = false", "cache = true"));
    let mut c = p.client();
    assert_eq!(c.get("/x").body, b"ok");
    let mut s = std::net::TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = String::from_utf8_lossy(&read_until_close(&mut s)).into_owned();
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(out.contains("X-Cache: Hit"), "{out}");
}
