//! RFC 9111 §4.2.3 (Calculating Age) and §5.1 (Age), over sockets: the age
//! a response arrives with counts against its freshness, and every answer
//! from the cache carries exactly one Age, ours.
//!
//! Nothing here sleeps: an object is aged by the origin's `Age` or `Date`.
mod common;
use common::rfc::{date_ago, origin, origin_requests, proxy, ttl, twice, values};

/// §4.2: "response_is_fresh = (freshness_lifetime > current_age)", and
/// §4.2.3: "corrected_initial_age = max(apparent_age, corrected_age_value)"
/// where corrected_age_value starts from the Age received. A response whose
/// Age already exceeds its max-age is stale on arrival, so it is not
/// answered from the cache.
#[test]
fn an_age_beyond_max_age_is_never_a_hit() {
    let o = origin(&[("/old", "Cache-Control: max-age=3600\r\nAge: 7200\r\n".into())]);
    let p = proxy(&o);
    let (first, _, hit) = twice(&mut p.client(), &o, "/old");
    assert!(!hit, "a response 7200 s old was served as fresh for max-age=3600");
    assert_eq!(origin_requests(&o, "/old"), 2);
    assert!(
        !first.header("cache-status").unwrap_or("").contains("stored"),
        "stale on arrival, without a stale window: not stored ({:?})",
        first.header("cache-status")
    );
}

/// §4.2.3: "current_age = corrected_initial_age + resident_time": a hit on a
/// response that arrived 3000 s old says it is at least that old, and what
/// is left of its freshness is what Age has not used up.
#[test]
fn an_age_within_max_age_leaves_only_the_rest_fresh() {
    let o = origin(&[("/aged", "Cache-Control: max-age=3600\r\nAge: 3000\r\n".into())]);
    let p = proxy(&o);
    let (_, hit_response, hit) = twice(&mut p.client(), &o, "/aged");
    assert!(hit, "600 s of freshness were left");
    let ages = values(&hit_response, "age");
    assert_eq!(ages.len(), 1, "{:?}", hit_response.headers);
    let age: u64 = ages[0].parse().unwrap();
    assert!((3000..3600).contains(&age), "Age: {age}");
    let left = ttl(&hit_response).unwrap();
    assert!((1..=600).contains(&left), "ttl={left}");
}

/// §4: "When a stored response is used to satisfy a request without
/// validation, a cache MUST generate an Age header field (Section 5.1),
/// replacing any present in the response with a value equal to the stored
/// response's current_age". One line, ours, not the origin's and ours.
#[test]
fn a_hit_carries_exactly_one_age() {
    let o = origin(&[("/a", "Cache-Control: max-age=3600\r\nAge: 30\r\n".into())]);
    let p = proxy(&o);
    let mut c = p.client();
    let (_, second, hit) = twice(&mut c, &o, "/a");
    assert!(hit);
    let ages = values(&second, "age");
    assert_eq!(ages.len(), 1, "{:?}", second.headers);
    assert!(ages[0].parse::<u64>().unwrap() >= 30, "{ages:?}");
    // A HEAD, a conditional and a range answered from the object likewise.
    for extra in ["", "If-None-Match: *\r\n", "Range: bytes=0-0\r\n"] {
        let method = if extra.is_empty() { "HEAD" } else { "GET" };
        c.send(format!("{method} /a HTTP/1.1\r\nHost: test\r\n{extra}\r\n").as_bytes());
        let r = c.read_response(method == "HEAD").unwrap();
        assert_eq!(r.header("x-cache"), Some("Hit from ringfront"), "{extra:?}");
        assert_eq!(values(&r, "age").len(), 1, "{extra:?}: {:?}", r.headers);
    }
}

/// §4.2.3: "apparent_age = max(0, response_time - date_value)". A response
/// dated two hours ago, with max-age=3600 and no Age, is already stale.
#[test]
fn a_date_in_the_past_counts_as_age() {
    let lines = format!("Date: {}\r\nCache-Control: max-age=3600\r\n", date_ago(7200));
    let o = origin(&[("/dated", lines)]);
    let p = proxy(&o);
    let (_, _, hit) = twice(&mut p.client(), &o, "/dated");
    assert!(!hit, "a response dated 7200 s ago was fresh for max-age=3600");
}

/// §1.2.2: "If a cache receives a delta-seconds value greater than the
/// greatest integer it can represent, or if any of its subsequent
/// calculations overflows, the cache MUST consider the value to be
/// 2147483648 (2^31) or the greatest positive integer it can conveniently
/// represent." An Age of 2^31 or more is at least as old as any max-age:
/// stale, never wrapped round to young, and the proxy keeps serving.
#[test]
fn a_huge_age_makes_the_response_stale_and_never_wraps() {
    let ages = [
        "2147483647",
        "2147483648",
        "4294967296",
        "18446744073709551616",
        "99999999999999999999",
        "999999999999999999999999999999999999999999",
    ];
    let table: Vec<(String, String)> = ages
        .iter()
        .enumerate()
        .flat_map(|(i, a)| {
            [
                (format!("/h{i}"), format!("Cache-Control: max-age=3600\r\nAge: {a}\r\n")),
                (
                    format!("/m{i}"),
                    format!("Cache-Control: max-age=2147483648\r\nAge: {a}\r\n"),
                ),
            ]
        })
        .collect();
    let table: Vec<(&str, String)> = table.iter().map(|(p, l)| (p.as_str(), l.clone())).collect();
    let o = origin(&table);
    let p = proxy(&o);
    let mut c = p.client();
    for (path, lines) in &table {
        let (_, second, hit) = twice(&mut c, &o, path);
        assert_eq!(second.status, 200, "{path}");
        // (max-age=2147483648 is held to the default max_ttl, a year.)
        assert!(!hit, "{path} ({lines:?}) was served as fresh");
    }
}

/// §5.1: "If the field value (after discarding additional members, as per
/// above) is invalid (e.g., it contains something other than a
/// non-negative integer), a cache SHOULD ignore the field." The response is
/// then as fresh as its max-age says, and the hit's one Age line is ours.
#[test]
fn an_invalid_age_is_ignored() {
    let bad = ["abc", "-7200", "7200.0", "+7200", "7200s", "0x7200", ""];
    let table: Vec<(String, String)> = bad
        .iter()
        .enumerate()
        .map(|(i, a)| {
            (
                format!("/bad{i}"),
                format!("Cache-Control: max-age=3600\r\nAge: {a}\r\n"),
            )
        })
        .collect();
    let table: Vec<(&str, String)> = table.iter().map(|(p, l)| (p.as_str(), l.clone())).collect();
    let o = origin(&table);
    let p = proxy(&o);
    let mut c = p.client();
    for (path, lines) in &table {
        let (_, second, hit) = twice(&mut c, &o, path);
        assert!(hit, "{path} ({lines:?}): an invalid Age made it stale");
        let ages = values(&second, "age");
        assert_eq!(ages.len(), 1, "{path}: {:?}", second.headers);
        assert!(ages[0].parse::<u64>().unwrap() < 60, "{path}: {ages:?}");
    }
}

/// §5.1: "Although it is defined as a singleton header field, a cache
/// encountering a message with a list-based Age field value SHOULD use the
/// first member of the field value, discarding subsequent ones." Two lines
/// are one list (RFC 9110 §5.3), so the first line's value counts.
#[test]
fn a_list_age_counts_its_first_member() {
    let o = origin(&[
        ("/old-first", "Cache-Control: max-age=3600\r\nAge: 7200, 0\r\n".into()),
        ("/young-first", "Cache-Control: max-age=3600\r\nAge: 0, 7200\r\n".into()),
        (
            "/old-line-first",
            "Cache-Control: max-age=3600\r\nAge: 7200\r\nAge: 0\r\n".into(),
        ),
        (
            "/young-line-first",
            "Cache-Control: max-age=3600\r\nAge: 0\r\nAge: 7200\r\n".into(),
        ),
    ]);
    let p = proxy(&o);
    let mut c = p.client();
    for (path, fresh) in [
        ("/old-first", false),
        ("/young-first", true),
        ("/old-line-first", false),
        ("/young-line-first", true),
    ] {
        let (_, second, hit) = twice(&mut c, &o, path);
        assert_eq!(hit, fresh, "{path}");
        if hit {
            assert_eq!(values(&second, "age").len(), 1, "{path}: {:?}", second.headers);
        }
    }
}

/// RFC 5861 §3 windows are measured on the same age (RFC 9111 §4.2.4: a
/// stale response is one whose age exceeds its lifetime). max-age=60 with
/// Age: 100 is 40 s into a one-hour stale-while-revalidate window: stored,
/// served stale, and refreshed in the background.
#[test]
fn stale_while_revalidate_counts_the_received_age() {
    let o = origin(&[(
        "/swr",
        "Cache-Control: max-age=60, stale-while-revalidate=3600\r\nAge: 100\r\n".into(),
    )]);
    let p = proxy(&o);
    let mut c = p.client();
    let first = c.get("/swr");
    assert_eq!(first.header("cache-status"), Some("ringfront; fwd=miss; stored"));
    let second = c.get("/swr");
    assert_eq!(second.header("x-cache"), Some("Hit from ringfront"));
    let left = ttl(&second).unwrap();
    assert!(left <= -40, "served stale, 40 s past its lifetime: ttl={left}");
    common::eventually("the stale hit was refreshed in the background", || {
        origin_requests(&o, "/swr") == 2
    });
}

/// A response that is not stored streams through as the origin sent it: a
/// proxy forwarding it has no age of its own to give, so the origin's Age
/// reaches the viewer unchanged (RFC 9110 §7.6: a proxy forwards end-to-end
/// fields it does not act on).
#[test]
fn a_streamed_miss_keeps_the_origin_age() {
    let o = origin(&[("/pass", "Cache-Control: no-store\r\nAge: 42\r\n".into())]);
    let p = proxy(&o);
    let r = p.client().get("/pass");
    assert_eq!(r.header("x-cache"), Some("Miss from ringfront"));
    assert_eq!(values(&r, "age"), ["42"]);
}

/// The miss that stored a response is answered from the stored object: its
/// one Age line is the object's current age (§4.2.3), which is the origin's
/// Age plus the moments it took to arrive.
#[test]
fn a_stored_miss_reports_the_age_it_arrived_with() {
    let o = origin(&[("/s", "Cache-Control: max-age=3600\r\nAge: 30\r\n".into())]);
    let p = proxy(&o);
    let r = p.client().get("/s");
    assert_eq!(r.header("cache-status"), Some("ringfront; fwd=miss; stored"));
    let ages = values(&r, "age");
    assert_eq!(ages.len(), 1, "{:?}", r.headers);
    let age: u64 = ages[0].parse().unwrap();
    assert!((30..60).contains(&age), "Age: {age}");
}
