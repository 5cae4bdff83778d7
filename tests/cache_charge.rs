//! What a stored object is charged is what it costs (issue 12). In a file
//! of its own: it measures this process's RSS, which another test running
//! beside it in the same process would disturb.

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A flood of tiny objects: each is charged what it really costs, so the
/// store's memory stays within capacity + 10% + 8 MiB whatever the object
/// sizes (issue 12). Objects are built as the proxy builds them when it
/// records a response (`Object::recorded`).
#[test]
fn a_flood_of_tiny_objects_stays_within_capacity() {
    use ringfront::cache::store::{Object, Store};
    const CAP: u64 = 32 << 20;
    let before = rss_kib();
    let store = Store::new(CAP, 1 << 20);
    let now = std::time::Instant::now();
    for i in 0..400_000u32 {
        let key = format!("example.com\0/tiny/object/{i}?v=1\0identity");
        let mut head = Vec::with_capacity(256);
        head.extend_from_slice(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=600\r\nETag: \"abc\"\r\nContent-Length: 10\r\nVia: 1.1 ringfront\r\n",
        );
        let mut body = bytes::BytesMut::with_capacity(10);
        body.extend_from_slice(b"0123456789");
        let obj = Object::recorded(head, body, 200, now, std::time::Duration::from_secs(600));
        store.insert(key.as_bytes(), std::sync::Arc::new(obj));
    }
    let grown = rss_kib().saturating_sub(before);
    let st = store.stats();
    eprintln!(
        "{} objects, {} MiB charged, RSS grew {} MiB ({} bytes per object)",
        st.objects,
        st.bytes >> 20,
        grown >> 10,
        grown * 1024 / st.objects.max(1)
    );
    assert!(st.bytes <= CAP);
    assert!(
        grown * 1024 <= CAP + CAP / 10 + (8 << 20),
        "RSS grew {} MiB for a {} MiB cache",
        grown >> 10,
        CAP >> 20
    );
}
