//! What became of a request: the typed result the access log writes and
//! `/metrics` counts (SPEC §6, §7), decided once per request.
//!
//! A request ends with a [`Detail`] (how it was answered) and the status it
//! was answered with; its [`Class`] follows from both. An answer from the
//! cache is a hit whatever its status (SPEC §5: `Error` is for a status of
//! 400 or above *not* served from cache); any other answer with a status of
//! 400 or above, or none at all (the viewer went away first), is an `Error`.

/// The access log's result column and `ringfront_requests_total`'s `result`
/// label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Hit,
    RefreshHit,
    Miss,
    Error,
}

impl Class {
    /// Every class, in the order of `ringfront_requests_total`'s series.
    pub const ALL: [Class; 4] = [Class::Hit, Class::RefreshHit, Class::Miss, Class::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Hit => "Hit",
            Class::RefreshHit => "RefreshHit",
            Class::Miss => "Miss",
            Class::Error => "Error",
        }
    }
}

/// The access log's detailed result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// Answered from a fresh stored object.
    Hit,
    /// A stale object answered because the origin group failed
    /// (stale-if-error).
    StaleHit,
    /// A stale object revalidated with the origin (304).
    RefreshHit,
    /// Answered with what an origin sent.
    #[default]
    Miss,
    /// No origin could be connected.
    OriginConnectError,
    /// The origin did not answer in time.
    OriginReadTimeout,
    /// The origin's answer was broken or cut short.
    OriginResponseError,
    /// The origin answered with an error status.
    OriginStatus,
    /// The viewer's request was refused, or the viewer went away.
    ClientError,
}

impl Detail {
    pub fn as_str(self) -> &'static str {
        match self {
            Detail::Hit => "Hit",
            Detail::StaleHit => "StaleHit",
            Detail::RefreshHit => "RefreshHit",
            Detail::Miss => "Miss",
            Detail::OriginConnectError => "OriginConnectError",
            Detail::OriginReadTimeout => "OriginReadTimeout",
            Detail::OriginResponseError => "OriginResponseError",
            Detail::OriginStatus => "OriginStatus",
            Detail::ClientError => "ClientError",
        }
    }
}

/// A request's outcome: its detail and the status sent (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Outcome {
    pub detail: Detail,
    pub status: u16,
}

impl Outcome {
    pub fn new(detail: Detail, status: u16) -> Outcome {
        Outcome { detail, status }
    }

    /// The result class (see the module doc).
    pub fn class(self) -> Class {
        match self.detail {
            Detail::Hit | Detail::StaleHit => Class::Hit,
            Detail::RefreshHit => Class::RefreshHit,
            _ if self.status >= 400 || self.status == 0 => Class::Error,
            _ => Class::Miss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_status_makes_a_forwarded_answer_an_error_but_not_a_hit() {
        assert_eq!(Outcome::new(Detail::Hit, 404).class(), Class::Hit);
        assert_eq!(Outcome::new(Detail::OriginStatus, 404).class(), Class::Error);
        assert_eq!(Outcome::new(Detail::Miss, 0).class(), Class::Error);
        assert_eq!(Outcome::new(Detail::StaleHit, 200).class(), Class::Hit);
        assert_eq!(Outcome::new(Detail::RefreshHit, 304).class(), Class::RefreshHit);
        assert_eq!(Outcome::new(Detail::OriginStatus, 302).class(), Class::Miss);
    }
}
