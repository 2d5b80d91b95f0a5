//! Times as the database stores them (microseconds since the Unix epoch) and as people type them
//! (`24h`, `7d`, `1h30m`, or an RFC 3339 timestamp).

use super::error::{LedgerError, Result};
use jiff::{SignedDuration, Timestamp};

pub(crate) fn to_micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

pub(crate) fn from_micros(us: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(us).map_err(|e| LedgerError::invalid("stored timestamp", format!("{us}: {e}")))
}

/// A microseconds column of a row as a timestamp (for `FromRow` impls).
pub(crate) fn column(row: &sqlx::any::AnyRow, name: &str) -> sqlx::Result<Timestamp> {
    use sqlx::Row;
    from_micros(row.try_get(name)?).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// `30s`, `15m`, `24h`, `7d`, `2w`, or combinations such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<SignedDuration> {
    let bad = |reason: &str| {
        LedgerError::invalid("duration", format!("{text:?}: {reason} (use e.g. 30s, 15m, 24h, 7d, 2w or 1h30m)"))
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("empty"));
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad(&format!("unknown unit {c:?}"))),
        };
        let n: i64 = digits.parse().map_err(|_| bad("a number must come before each unit"))?;
        digits.clear();
        total = n.checked_mul(unit).and_then(|s| total.checked_add(s)).ok_or_else(|| bad("too large"))?;
    }
    if !digits.is_empty() {
        return Err(bad("the last number has no unit"));
    }
    Ok(SignedDuration::from_secs(total))
}

/// A query bound: a duration back from `now` (`24h`) or an absolute RFC 3339 timestamp.
pub fn parse_time_bound(text: &str, now: Timestamp) -> Result<Timestamp> {
    if let Ok(at) = text.trim().parse::<Timestamp>() {
        return Ok(at);
    }
    let ago = parse_duration(text).map_err(|_| {
        LedgerError::invalid(
            "time",
            format!("{text:?}: expected a duration back from now (24h, 7d) or an RFC 3339 time (2026-01-31T12:00:00Z)"),
        )
    })?;
    now.checked_sub(ago).map_err(|e| LedgerError::invalid("time", format!("{text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), SignedDuration::from_hours(24));
        assert_eq!(parse_duration("7d").unwrap(), SignedDuration::from_hours(168));
        assert_eq!(parse_duration("2w").unwrap(), SignedDuration::from_hours(336));
        assert_eq!(parse_duration("1h30m").unwrap(), SignedDuration::from_mins(90));
        assert_eq!(parse_duration("45s").unwrap(), SignedDuration::from_secs(45));
        assert_eq!(parse_duration(" 15m ").unwrap(), SignedDuration::from_mins(15));
        for bad in ["", "h", "24", "24x", "1.5h", "-1h", "99999999999999999999d"] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("invalid duration"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn time_bounds() {
        let now: Timestamp = "2026-03-10T12:00:00Z".parse().unwrap();
        assert_eq!(parse_time_bound("24h", now).unwrap().to_string(), "2026-03-09T12:00:00Z");
        assert_eq!(parse_time_bound("2026-01-31T08:00:00Z", now).unwrap().to_string(), "2026-01-31T08:00:00Z");
        let err = parse_time_bound("yesterday", now).unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
    }

    #[test]
    fn micros_roundtrip() {
        let at: Timestamp = "2026-03-10T12:00:00.123456Z".parse().unwrap();
        assert_eq!(from_micros(to_micros(at)).unwrap(), at);
    }
}
