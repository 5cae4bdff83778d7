//! HTTP-date (RFC 9110 §5.6.7), read as a recipient must: "Recipients of a
//! timestamp value in rfc850-date format, which uses a two-digit year, MUST
//! interpret a timestamp that appears to be more than 50 years in the
//! future as representing the most recent year in the past that had the
//! same last two digits", and "A recipient that parses a timestamp value in
//! an HTTP header field MUST accept all three HTTP-date formats".
//!
//! Lenient where caches in practice are (names in any case, a weekday that
//! does not match the date), strict about the shape: one space where the
//! grammar has one, two-digit day, hour, minute and second, `GMT` only.
//! Anything else is not a date (an invalid Expires then means "already
//! expired", RFC 9111 §5.3).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];
const DAYS: [&[u8]; 7] = [b"mon", b"tue", b"wed", b"thu", b"fri", b"sat", b"sun"];
const LONG_DAYS: [&[u8]; 7] = [
    b"monday",
    b"tuesday",
    b"wednesday",
    b"thursday",
    b"friday",
    b"saturday",
    b"sunday",
];

/// Parses an HTTP-date in any of its three formats; `now` resolves the
/// two-digit years of rfc850-date.
pub fn parse(v: &[u8], now: SystemTime) -> Option<SystemTime> {
    let v = v.trim_ascii();
    let comma = memchr::memchr(b',', v);
    let fields = match comma {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        Some(3) if one_of(&v[..3], &DAYS) => imf_fixdate(&v[4..])?,
        // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
        Some(i) if one_of(&v[..i], &LONG_DAYS) => rfc850(&v[i + 1..], now)?,
        Some(_) => return None,
        // asctime-date: "Sun Nov  6 08:49:37 1994"
        None if v.len() > 4 && one_of(&v[..3], &DAYS) && v[3] == b' ' => asctime(&v[4..])?,
        None => return None,
    };
    fields.to_time()
}

fn one_of(name: &[u8], names: &[&[u8]]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// The parts of a date, before they are checked and converted.
struct Fields {
    year: u64,
    month: u64,
    day: u64,
    time: (u64, u64, u64),
}

impl Fields {
    fn to_time(&self) -> Option<SystemTime> {
        let (h, m, s) = self.time;
        // 60: a leap second, which RFC 5322 allows.
        if !(1..=days_in_month(self.year, self.month)).contains(&self.day)
            || h > 23
            || m > 59
            || s > 60
            || !(1970..=9999).contains(&self.year)
        {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        let secs = days.checked_mul(86_400)?.checked_add(h * 3600 + m * 60 + s)?;
        UNIX_EPOCH.checked_add(Duration::from_secs(secs))
    }
}

/// `" 06 Nov 1994 08:49:37 GMT"` after the comma.
fn imf_fixdate(v: &[u8]) -> Option<Fields> {
    // " DD Mon YYYY HH:MM:SS GMT"
    if v.len() != 25 || v[0] != b' ' || v[3] != b' ' || v[7] != b' ' || v[12] != b' ' || v[21] != b' ' {
        return None;
    }
    gmt(&v[22..])?;
    Some(Fields {
        day: digits(&v[1..3])?,
        month: month(&v[4..7])?,
        year: digits(&v[8..12])?,
        time: clock(&v[13..21])?,
    })
}

/// `" 06-Nov-94 08:49:37 GMT"` after the comma.
fn rfc850(v: &[u8], now: SystemTime) -> Option<Fields> {
    if v.len() != 23 || v[0] != b' ' || v[3] != b'-' || v[7] != b'-' || v[10] != b' ' || v[19] != b' ' {
        return None;
    }
    gmt(&v[20..])?;
    let yy = digits(&v[8..10])?;
    let this_year = 1970 + now.duration_since(UNIX_EPOCH).ok()?.as_secs() / 31_556_952;
    let mut year = this_year - this_year % 100 + yy;
    if year > this_year + 50 {
        year -= 100;
    }
    Some(Fields {
        day: digits(&v[1..3])?,
        month: month(&v[4..7])?,
        year,
        time: clock(&v[11..19])?,
    })
}

/// `"Nov  6 08:49:37 1994"` after the weekday.
fn asctime(v: &[u8]) -> Option<Fields> {
    if v.len() != 20 || v[3] != b' ' || v[6] != b' ' || v[15] != b' ' {
        return None;
    }
    let day = match (v[4], v[5]) {
        (b' ', d) => digits(&[d])?,
        _ => digits(&v[4..6])?,
    };
    Some(Fields {
        month: month(&v[..3])?,
        day,
        time: clock(&v[7..15])?,
        year: digits(&v[16..20])?,
    })
}

fn gmt(v: &[u8]) -> Option<()> {
    v.eq_ignore_ascii_case(b"GMT").then_some(())
}

fn month(v: &[u8]) -> Option<u64> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(v))
        .map(|i| i as u64 + 1)
}

fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// `HH:MM:SS`.
fn clock(v: &[u8]) -> Option<(u64, u64, u64)> {
    if v.len() != 8 || v[2] != b':' || v[5] != b':' {
        return None;
    }
    Some((digits(&v[..2])?, digits(&v[3..5])?, digits(&v[6..8])?))
}

/// The days of `month` (1–12) in `year` (Gregorian leap years).
fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (year ≥ 1970), after Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe) - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Option<u64> {
        let now = UNIX_EPOCH + Duration::from_secs(1_796_000_000); // 2026
        parse(s.as_bytes(), now).map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    #[test]
    fn the_three_formats() {
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(at("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(at("Sun Nov  6 08:49:37 1994"), Some(784_111_777));
        assert_eq!(at(" Thu, 01 Jan 1970 00:00:00 GMT "), Some(0));
        assert!(at("Tue, 29 Feb 2000 00:00:00 GMT").is_some(), "2000 is a leap year");
        // 2^31 s is 03:14:08 that day.
        assert_eq!(at("Tue, 19 Jan 2038 14:14:08 GMT"), Some((1 << 31) + 11 * 3600));
        assert_eq!(at("Sun, 21 Nov 2286 04:46:39 GMT"), Some(9_999_999_999 + 11 * 3600));
    }

    #[test]
    fn lenient_about_case_and_weekday() {
        let want = at("Thu, 18 Aug 2050 02:01:18 GMT");
        assert!(want.is_some());
        assert_eq!(at("THU, 18 Aug 2050 02:01:18 GMT"), want);
        assert_eq!(at("Thu, 18 AUG 2050 02:01:18 GMT"), want);
        assert_eq!(at("Thu, 18 Aug 2050 02:01:18 gMT"), want);
        assert_eq!(at("Mon, 18 Aug 2050 02:01:18 GMT"), want, "a wrong weekday");
        assert!(at("Thu Aug  8 02:01:18 2050").is_some());
        // rfc850 two-digit years: within 50 years ahead, else the last century.
        assert_eq!(at("Thursday, 18-Aug-50 02:01:18 GMT"), want);
        assert!(at("Friday, 18-Aug-99 02:01:18 GMT").unwrap() < 1_000_000_000);
    }

    #[test]
    fn strict_about_shape() {
        for bad in [
            "Thu, 18 Aug 2050 02:01:18 UTC",
            "Thu, 18 Aug 2050 02:01:18 AEST",
            "Thu, 18 Aug 50 02:01:18 GMT",
            "Thu 18 Aug 2050 02:01:18 GMT",
            "Thu, 18  Aug  2050 02:01:18 GMT",
            "Thu, 18-Aug-2050 02:01:18 GMT",
            "Thu, 18 Aug 2050 02.01.18 GMT",
            "Thu, 18 Aug 2050 2:01:18 GMT",
            "Thu, 32 Aug 2050 02:01:18 GMT",
            "Sat, 30 Feb 9999 23:59:59 GMT",
            "Sat, 29 Feb 2100 00:00:00 GMT",
            "Sat, 31 Apr 2050 00:00:00 GMT",
            "Thu, 18 Aug 2050 24:01:18 GMT",
            "Thu, 18 Aug 1969 02:01:18 GMT",
            "0",
            "",
            "Thu, 18 Aug 2050 02:01:18 GMT, Fri",
            "Thü, 18 Aug 2050 02:01:18 GMT",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }
}
