//! The origin's response head.
//!
//! Invariants beyond "no panic": a parsed head lies within the input; the
//! head ringfront writes for the viewer parses again as a response with the
//! same status and exactly the framing ringfront chose (one framing line at
//! most, whatever the origin sent); a response to HEAD, a 204 and a 304 have
//! no body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringfront::config::HeaderActions;
use ringfront::http::response::{parse_response, RespBody, ResponseHead};
use ringfront::http::write::{write_response_head, AttemptCtx, ResponseRewrite, ViewerFraming};

fuzz_target!(|data: &[u8]| {
    let (head_request, data) = match data.split_first() {
        Some((b, rest)) => (b & 1 == 1, rest),
        None => return,
    };
    let mut head = ResponseHead::default();
    let n = match parse_response(data, head_request, &mut head) {
        Ok(Some(n)) => n,
        _ => return,
    };
    assert!(n <= data.len() && n == head.head_len);
    if head_request || head.status == 204 || head.status == 304 {
        assert!(
            matches!(head.body(), RespBody::None),
            "{:?} for status {}",
            head.body(),
            head.status
        );
    }
    if head.status < 200 {
        return; // 1xx are skipped by the driver, never forwarded as final
    }
    let actions = HeaderActions::default();
    let framing = ViewerFraming::of(&head, false);
    let mut out = Vec::new();
    write_response_head(
        &mut out,
        data,
        &head,
        &ResponseRewrite {
            via: "ringfront",
            x_cache: b"Miss from ringfront",
            cache_status: b"ringfront; fwd=miss",
            proxy_status: b"",
            actions: &actions,
            ctx: AttemptCtx {
                attempt: 1,
                origin: "o",
                role: "single",
            },
            framing,
            keep_alive: true,
            viewer_http10: false,
            extra: b"",
        },
    );
    let mut again = ResponseHead::default();
    match parse_response(&out, head_request, &mut again) {
        Ok(Some(m)) => {
            assert_eq!(m, out.len());
            assert_eq!(again.status, head.status);
            let framing_lines = again
                .headers
                .iter()
                .filter(|h| {
                    let n = h.name.of(&out);
                    n.eq_ignore_ascii_case(b"content-length") || n.eq_ignore_ascii_case(b"transfer-encoding")
                })
                .count();
            assert!(framing_lines <= 1, "{:?}", String::from_utf8_lossy(&out));
            let want = match framing {
                ViewerFraming::Length(n) => RespBody::Length(n),
                ViewerFraming::Chunked => RespBody::Chunked,
                ViewerFraming::Close => RespBody::Close,
                ViewerFraming::NoBody { .. } => RespBody::None,
            };
            if !(head_request || again.status == 204 || again.status == 304) {
                assert_eq!(again.body(), want, "{:?}", String::from_utf8_lossy(&out));
            }
        }
        // The rewrite adds lines; near our own parser's size or header-count
        // limit the copy can exceed them (a viewer's parser has its own).
        Err(ringfront::http::response::ResponseError::TooLarge) => {}
        other => panic!(
            "rewritten head does not parse ({other:?}): {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
});
