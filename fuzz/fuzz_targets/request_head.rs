//! The viewer's request head and its framing, as the proxy reads them.
//!
//! Invariants beyond "no panic":
//! - a parsed head lies within the input, and its spans within the head;
//! - the head ringfront writes for the origin parses again, to the same
//!   method, target and body framing: the next hop can never frame the
//!   request differently (no smuggling through the rewrite);
//! - the body cursor conserves bytes: data ranges are in order, inside the
//!   input, and never more than the input after the head.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringfront::config::HeaderActions;
use ringfront::http::body::BodyCursor;
use ringfront::http::parse::{parse_request, BodyKind, RequestHead};
use ringfront::http::write::{write_request_head, AttemptCtx, RequestFraming, RequestRewrite};

fuzz_target!(|data: &[u8]| {
    let mut head = RequestHead::default();
    let n = match parse_request(data, 32 * 1024, &mut head) {
        Ok(Some(n)) => n,
        _ => return,
    };
    assert!(n <= data.len() && n == head.head_len);
    let method = head.method(data).to_vec();
    let path = head.path.of(data).to_vec();
    let body = head.body;

    // The rewritten head reads back the same.
    let actions = HeaderActions::default();
    let mut out = Vec::new();
    write_request_head(
        &mut out,
        data,
        &head,
        &RequestRewrite {
            host_override: None,
            host_fallback: "origin.test:80",
            client_ip: b"192.0.2.1",
            via: "ringfront",
            actions: &actions,
            ctx: AttemptCtx { attempt: 1, origin: "o", role: "single" },
            extra: b"",
            framing: RequestFraming::of(&head),
            accept_encoding: None,
            drop_conditionals: false,
        },
    );
    let mut again = RequestHead::default();
    match parse_request(&out, usize::MAX, &mut again) {
        Ok(Some(m)) => {
            assert_eq!(m, out.len(), "rewritten head has trailing bytes");
            assert_eq!(again.method(&out), &method[..]);
            // An origin-form target is forwarded as it is (absolute-form
            // becomes origin-form; an empty target becomes "/").
            assert!(again.path.of(&out) == &path[..] || !path.starts_with(b"/"));
            assert_eq!(again.body, body, "framing changed by the rewrite: {:?}", String::from_utf8_lossy(&out));
        }
        // The rewrite adds Via and X-Forwarded-For; near the header-count
        // limit of our own parser the copy can exceed it.
        Err(ringfront::http::parse::HeadError::TooLarge) => {}
        other => panic!("rewritten head does not parse ({other:?}): {:?}", String::from_utf8_lossy(&out)),
    }

    // Byte conservation in the body cursor.
    let mut cursor = match body {
        BodyKind::None => return,
        BodyKind::Length(l) => BodyCursor::length(l),
        BodyKind::Chunked => BodyCursor::chunked(),
    };
    let rest = &data[n..];
    let mut last_end = 0usize;
    let mut total = 0usize;
    if let Ok(used) = cursor.feed(rest, |r| {
        assert!(r.start >= last_end && r.end >= r.start && r.end <= rest.len());
        last_end = r.end;
        total += r.len();
    }) {
        assert!(used <= rest.len());
        assert!(last_end <= used);
    }
    assert!(total <= rest.len());
});
