//! Request re-framing: whatever a viewer sends, what ringfront forwards
//! parses as exactly one request with the same body under a strict parser,
//! or the viewer gets 400 (SPEC §3.1).
//!
//! The request goes through the same steps as `proxy::forward`: the head is
//! parsed strictly; a Content-Length body is sent under one canonical
//! Content-Length; a chunked body that is complete in the buffer (and
//! small) is decoded and sent whole (`frame::decode_buffered`), otherwise
//! it is streamed through `frame::reframe` in pieces (split where the input
//! says). The forwarded bytes must parse back (parse_request, then the body
//! by the framing it announces) to exactly one request whose body is the
//! viewer's body data, with nothing left over.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringfront::config::HeaderActions;
use ringfront::http::body::BodyCursor;
use ringfront::http::chunked::ChunkedDecoder;
use ringfront::http::frame::{self, Buffered};
use ringfront::http::parse::{parse_request, BodyKind, RequestHead};
use ringfront::http::write::{write_request_head, AttemptCtx, RequestFraming, RequestRewrite};

const REPLAY_MAX: usize = 64 * 1024;

/// The body data a strict reader finds at the start of `b`, and the bytes
/// it took; None when it is malformed or incomplete.
fn body_data(kind: BodyKind, b: &[u8]) -> Option<(Vec<u8>, usize)> {
    match kind {
        BodyKind::None => Some((Vec::new(), 0)),
        BodyKind::Length(n) => {
            let n = usize::try_from(n).ok()?;
            b.get(..n).map(|d| (d.to_vec(), n))
        }
        BodyKind::Chunked => {
            let mut d = ChunkedDecoder::new();
            let mut data = Vec::new();
            let used = d.feed(b, |r| data.extend_from_slice(&b[r])).ok()?;
            d.is_done().then_some((data, used))
        }
    }
}

/// What ringfront sends for the body after the head; None: 400 (or the
/// body is incomplete, which a real viewer would finish or time out on).
fn forwarded_body(head: &RequestHead, body: &[u8], split: usize) -> Option<(RequestFraming, Vec<u8>)> {
    match head.body {
        BodyKind::Chunked => match frame::decode_buffered(body, REPLAY_MAX).ok()? {
            Buffered::Whole { data, .. } => Some((RequestFraming::Length(data.len() as u64), data)),
            Buffered::Partial => {
                let mut c = BodyCursor::chunked();
                let mut out = Vec::new();
                let split = split.min(body.len());
                let (a, b) = body.split_at(split);
                let mut piece = Vec::new();
                frame::reframe(&mut c, a, &mut piece).ok()?;
                out.extend_from_slice(&piece);
                if !c.is_done() {
                    piece.clear();
                    frame::reframe(&mut c, b, &mut piece).ok()?;
                    out.extend_from_slice(&piece);
                }
                c.is_done().then_some((RequestFraming::Chunked, out))
            }
        },
        kind => body_data(kind, body).map(|(d, _)| (RequestFraming::of(head), d)),
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&split, data)) = input.split_first() else {
        return;
    };
    let mut head = RequestHead::default();
    let Ok(Some(n)) = parse_request(data, 32 * 1024, &mut head) else {
        return;
    };
    let Some((framing, body_out)) = forwarded_body(&head, &data[n..], split as usize * 7) else {
        return;
    };
    let (expected, _) = body_data(head.body, &data[n..]).expect("a body ringfront forwards is well formed");
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
            ctx: AttemptCtx {
                attempt: 1,
                origin: "o",
                role: "single",
            },
            extra: b"",
            framing,
            accept_encoding: None,
            drop_conditionals: false,
        },
    );
    out.extend_from_slice(&body_out);
    // The next hop, strictly.
    let mut again = RequestHead::default();
    let m = match parse_request(&out, usize::MAX, &mut again) {
        Ok(Some(m)) => m,
        // The rewrite adds a few lines; near the header-count limit of our
        // own parser the copy can exceed it (an origin's limit is larger).
        Err(ringfront::http::parse::HeadError::TooLarge) => return,
        other => panic!(
            "forwarded head does not parse: {other:?}\n{}",
            String::from_utf8_lossy(&out)
        ),
    };
    let (got, used) = body_data(again.body, &out[m..]).expect("forwarded body well formed");
    assert_eq!(got, expected, "forwarded body differs");
    assert_eq!(m + used, out.len(), "bytes after the forwarded request");
});
