//! Instants as rel writes them in manifests, channel pointers and token files:
//! `YYYY-MM-DDTHH:MM:SSZ`, UTC, to the second.
//!
//! Exactly one text form is accepted, so a signed document parses and serialises back to the
//! same bytes; the date must also be real (`2026-02-30T00:00:00Z` and `…T24:00:00Z` are
//! refused). The calendar arithmetic is `jiff`'s. Reading the clock is the caller's business:
//! this crate does no I/O.

use std::fmt;
use std::str::FromStr;

/// A UTC instant to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(jiff::Timestamp);

/// Why a text is not a [`Timestamp`].
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("`{text}` is not a `YYYY-MM-DDTHH:MM:SSZ` time: {why}")]
pub struct TimestampError {
    pub text: String,
    pub why: String,
}

impl Timestamp {
    /// The instant `secs` seconds after the Unix epoch.
    pub fn from_unix(secs: i64) -> Result<Self, TimestampError> {
        jiff::Timestamp::from_second(secs)
            .map(Self)
            .map_err(|e| TimestampError {
                text: secs.to_string(),
                why: e.to_string(),
            })
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0.as_second()
    }

    /// This instant moved by `secs` seconds (saturating at the ends of the supported range).
    pub fn plus_seconds(self, secs: i64) -> Self {
        let limit = |t: jiff::Timestamp| t.as_second();
        let secs = self
            .unix()
            .saturating_add(secs)
            .clamp(limit(jiff::Timestamp::MIN), limit(jiff::Timestamp::MAX));
        Self::from_unix(secs).expect("clamped into range")
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| TimestampError {
            text: text.to_owned(),
            why: why.to_owned(),
        };
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let shaped = b.len() == 20
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && b[10] == b'T'
            && digits(11..13)
            && b[13] == b':'
            && digits(14..16)
            && b[16] == b':'
            && digits(17..19)
            && b[19] == b'Z';
        if !shaped {
            return Err(err("not of that shape"));
        }
        let at = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%SZ", text).map_err(|e| err(&e.to_string()))?;
        at.to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| Self(z.timestamp()))
            .map_err(|e| err(&e.to_string()))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%dT%H:%M:%SZ"))
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_form_round_trips() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T00:00:00Z",
            "2023-11-14T22:13:20Z",
            "9999-12-30T00:00:00Z",
        ] {
            let t: Timestamp = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(
            Timestamp::from_unix(1_700_000_000).unwrap().to_string(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            "2023-11-14T22:13:20Z"
                .parse::<Timestamp>()
                .unwrap()
                .plus_seconds(40)
                .to_string(),
            "2023-11-14T22:14:00Z"
        );
    }

    #[test]
    fn impossible_dates_and_other_forms_are_refused() {
        for text in [
            "2026-13-45T99:99:99Z",
            "2026-02-30T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00.5Z",
            "2026-01-01 00:00:00Z",
            "yesterday",
            "",
        ] {
            let e = text.parse::<Timestamp>().unwrap_err();
            assert!(e.to_string().contains(text), "{e}");
        }
    }
}
