//! The chunked decoder, fed in pieces.
//!
//! Invariants beyond "no panic": however the input is split, the decoder
//! yields the same data bytes and the same verdict as when fed at once; data
//! ranges are in order and inside what was fed; it never yields more bytes
//! than it was given.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ringfront::http::chunked::ChunkedDecoder;

/// Feeds `input` in pieces of the given sizes (the last piece takes the
/// rest); returns the data bytes, whether it finished, and whether it erred.
fn run(input: &[u8], sizes: &[u8]) -> (Vec<u8>, bool, bool) {
    let mut d = ChunkedDecoder::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut data = Vec::new();
    let mut fed = 0usize;
    let mut i = 0usize;
    loop {
        let step = sizes.get(i).map_or(input.len() - fed, |&s| (s as usize).max(1)).min(input.len() - fed);
        i += 1;
        buf.extend_from_slice(&input[fed..fed + step]);
        fed += step;
        let mut last_end = 0usize;
        let res = d.feed(&buf, |r| {
            assert!(r.start >= last_end && r.start <= r.end && r.end <= buf.len());
            last_end = r.end;
            data.extend_from_slice(&buf[r.clone()]);
        });
        match res {
            Ok(used) => {
                assert!(used <= buf.len() && last_end <= used);
                buf.drain(..used);
            }
            Err(_) => return (data, false, true),
        }
        if d.is_done() {
            return (data, true, false);
        }
        if fed == input.len() {
            return (data, false, false);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| (b as usize) % 16).min(data.len().saturating_sub(1));
    let (sizes, input) = data.get(1..).unwrap_or_default().split_at(split);
    let whole = run(input, &[]);
    let pieces = run(input, sizes);
    assert!(whole.0.len() <= input.len());
    assert_eq!(whole.2, pieces.2, "error verdict differs by split");
    if !whole.2 {
        assert_eq!(whole.1, pieces.1, "done verdict differs by split");
        assert_eq!(whole.0, pieces.0, "data differs by split");
    } else {
        // An error may come earlier or later, but the data before it agrees.
        let n = whole.0.len().min(pieces.0.len());
        assert_eq!(whole.0[..n], pieces.0[..n]);
    }
});
