//! Hot-path pieces without I/O: request head parse, head rewrite, response
//! head parse, chunked decoding and the attempt machine.
//!
//! `cargo bench --bench http`; each benchmark reports a throughput (elements
//! or bytes per second) as well as the time per iteration.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringfront::config::HeaderActions;
use ringfront::http::chunked::ChunkedDecoder;
use ringfront::http::parse::{parse_request, RequestHead};
use ringfront::http::response::{parse_response, ResponseHead};
use ringfront::http::write::{write_request_head, AttemptCtx, Forwarding, RequestFraming, RequestRewrite};
use ringfront::origin::attempt::{AttemptMachine, Event, Plan, Role, Step};
use std::time::{Duration, Instant};

const REQ: &[u8] = b"GET /static/app/main.3f9a2c.js?v=12 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n\
Accept: */*\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Referer: https://www.example.com/\r\n\
Cookie: session=abcdef0123456789; theme=dark\r\n\
Connection: keep-alive\r\n\r\n";

const RESP: &[u8] = b"HTTP/1.1 200 OK\r\n\
Date: Mon, 23 Nov 2026 10:00:00 GMT\r\n\
Server: nginx\r\n\
Content-Type: application/javascript\r\n\
Content-Length: 1024\r\n\
Cache-Control: public, max-age=3600\r\n\
ETag: \"5f3a-1024\"\r\n\
Connection: keep-alive\r\n\r\n";

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Elements(1));
    let mut head = RequestHead::default();
    g.bench_function("parse_request", |b| {
        b.iter(|| parse_request(black_box(REQ), 32 * 1024, &mut head).unwrap())
    });
    parse_request(REQ, 32 * 1024, &mut head).unwrap();
    let actions = HeaderActions::default();
    let mut out = Vec::with_capacity(2048);
    g.bench_function("rewrite_request_head", |b| {
        b.iter(|| {
            out.clear();
            write_request_head(
                &mut out,
                black_box(REQ),
                &head,
                &RequestRewrite {
                    host_override: None,
                    host_fallback: "127.0.0.1:9001",
                    client_ip: b"192.0.2.1",
                    via: "ringfront",
                    actions: &actions,
                    ctx: AttemptCtx {
                        attempt: 1,
                        origin: "primary",
                        role: "primary",
                    },
                    extra: b"",
                    framing: RequestFraming::of(&head),
                    accept_encoding: None,
                    drop_conditionals: false,
                    forwarding: Forwarding::ALL,
                },
            );
            out.len()
        })
    });
    let mut rh = ResponseHead::default();
    g.bench_function("parse_response", |b| {
        b.iter(|| parse_response(black_box(RESP), false, &mut rh).unwrap())
    });
    let step = |origin, role| Step {
        origin,
        role,
        connection_attempts: 3,
        connection_timeout: Duration::from_secs(10),
        response_timeout: Duration::from_secs(30),
    };
    let plan = Plan {
        peer: None,
        steps: [Some(step(0, Role::Primary)), Some(step(1, Role::Secondary))],
        failover_status: &[500, 502, 503, 504],
        method_fails_over: true,
        replayable: true,
        skip_primary: false,
        error_pages: &[],
    };
    let now = Instant::now();
    g.bench_function("attempt_machine_hit_path", |b| {
        b.iter(|| {
            let mut m = AttemptMachine::new(plan.clone());
            m.start(now);
            m.on(Event::Connected { reused: true }, now);
            m.on(Event::Head { status: 200 }, now);
            black_box(m.on(Event::BodyDone, now))
        })
    });
    g.bench_function("attempt_machine_failover", |b| {
        b.iter(|| {
            let mut m = AttemptMachine::new(plan.clone());
            m.start(now);
            m.on(Event::Connected { reused: true }, now);
            m.on(Event::Head { status: 503 }, now);
            m.on(Event::Connected { reused: true }, now);
            m.on(Event::Head { status: 200 }, now);
            black_box(m.on(Event::BodyDone, now))
        })
    });
    g.finish();

    let mut body = Vec::new();
    for _ in 0..64 {
        body.extend_from_slice(b"4000\r\n");
        body.extend(std::iter::repeat_n(b'x', 0x4000));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut g = c.benchmark_group("chunked");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("decode_1MiB_16KiB_chunks", |b| {
        b.iter(|| {
            let mut d = ChunkedDecoder::new();
            let mut n = 0;
            d.feed(black_box(&body), |r| n += r.len()).unwrap();
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
