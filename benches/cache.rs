//! Cache store benches: key building + hashing, a hit lookup, an insert that
//! evicts; and a hit-ratio simulation on a Zipf(0.9) trace with a one-time
//! scan mixed in, printing S3-FIFO's hit ratio against plain LRU at the same
//! capacity.
//!
//! `cargo bench --bench cache`

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringfront::cache::key;
use ringfront::cache::store::{Object, Store, OVERHEAD};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn obj(n: usize) -> Arc<Object> {
    Arc::new(Object::simple(
        Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain"),
        Bytes::from(vec![b'x'; n]),
        200,
        Instant::now(),
        Duration::from_secs(3600),
    ))
}

/// xorshift64*: a small deterministic generator for the trace.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf(s) over `n` items by inverse CDF.
struct Zipf {
    cdf: Vec<f64>,
}
impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for i in 1..=n {
            sum += 1.0 / (i as f64).powf(s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Zipf { cdf }
    }
    fn sample(&self, r: &mut Rng) -> usize {
        let u = r.unit();
        self.cdf.partition_point(|&c| c < u)
    }
}

/// Plain LRU by entry count (lazy queue of last-use ticks).
struct Lru {
    cap: usize,
    last: HashMap<u64, u64>,
    queue: VecDeque<(u64, u64)>,
    tick: u64,
}
impl Lru {
    fn access(&mut self, k: u64) -> bool {
        self.tick += 1;
        let hit = self.last.insert(k, self.tick).is_some();
        self.queue.push_back((k, self.tick));
        while self.last.len() > self.cap {
            if let Some((old, t)) = self.queue.pop_front() {
                if self.last.get(&old) == Some(&t) {
                    self.last.remove(&old);
                }
            }
        }
        hit
    }
}

fn simulate() {
    const KEYS: usize = 100_000;
    const REQUESTS: usize = 1_000_000;
    const CACHED: usize = 5_000; // 5% of the key space
    const SIZE: usize = 512;
    let zipf = Zipf::new(KEYS, 0.9);
    // As Object::charge: the key twice and the head, rounded to 16 bytes.
    let r16 = |n: usize| n.div_ceil(16) * 16;
    let charge = (r16(SIZE) + 2 * r16(42) + r16(12) + OVERHEAD as usize) as u64;
    let store = Store::new(CACHED as u64 * charge, 4096);
    let mut lru = Lru {
        cap: CACHED,
        last: HashMap::new(),
        queue: VecDeque::new(),
        tick: 0,
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut s3_hits, mut lru_hits, mut total) = (0u64, 0u64, 0u64);
    let mut scan = 0u64;
    for i in 0..REQUESTS {
        // From the middle on, every other request is part of a one-time scan.
        let k = if i >= REQUESTS / 2 && i % 2 == 0 {
            scan += 1;
            (KEYS as u64) + scan
        } else {
            zipf.sample(&mut rng) as u64
        };
        let name = format!("/k/{k:08}");
        total += 1;
        if store.get(name.as_bytes()).is_some() {
            s3_hits += 1;
        } else {
            store.insert(name.as_bytes(), obj(SIZE));
        }
        if lru.access(k) {
            lru_hits += 1;
        }
    }
    let s3 = s3_hits as f64 / total as f64;
    let l = lru_hits as f64 / total as f64;
    println!(
        "hit ratio, Zipf(0.9) over {KEYS} keys + one-time scan, cache = {CACHED} objects: \
         S3-FIFO {s3:.4}, LRU {l:.4} (ratio {:.3})",
        s3 / l
    );
}

fn bench(c: &mut Criterion) {
    simulate();
    let store = Store::new(64 << 20, 1 << 20);
    for i in 0..10_000 {
        store.insert(format!("example.com\0/static/{i}.js").as_bytes(), obj(1024));
    }
    let mut g = c.benchmark_group("cache");
    g.throughput(Throughput::Elements(1));
    let mut k = Vec::with_capacity(128);
    g.bench_function("key_build", |b| {
        b.iter(|| {
            k.clear();
            key::build(
                &mut k,
                black_box(b"Example.com"),
                black_box(b"/static/app.js?v=3"),
                &key::QueryKey::All,
            );
            k.len()
        })
    });
    g.bench_function("lookup_hit", |b| {
        b.iter(|| store.get(black_box(b"example.com\0/static/4242.js")).is_some())
    });
    let mut i = 0u64;
    let small = Store::new(4 << 20, 1 << 20);
    g.bench_function("insert_with_eviction", |b| {
        b.iter(|| {
            i += 1;
            small.insert(format!("h\0/{i}").as_bytes(), obj(1024))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
