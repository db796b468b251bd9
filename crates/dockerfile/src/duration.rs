//! Go's `time.ParseDuration`, for `HEALTHCHECK` intervals (`1m30s`, `500ms`).

/// A duration Go's `time.ParseDuration` (or BuildKit's interval check)
/// refuses, in their words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration, or out of range.
    #[error("time: invalid duration {0:?}")]
    Invalid(String),
    /// A number without a unit.
    #[error("time: missing unit in duration {0:?}")]
    MissingUnit(String),
    /// A unit Go does not know.
    #[error("time: unknown unit {unit:?} in duration {duration:?}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration.
        duration: String,
    },
    /// A `HEALTHCHECK` interval under a millisecond.
    #[error("Interval {0:?} cannot be less than 1ms")]
    TooShort(String),
}

/// Parse a Go duration into nanoseconds (negative values allowed).
pub fn parse_go_duration(s: &str) -> Result<i128, DurationError> {
    let bad = || DurationError::Invalid(s.to_owned());
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(DurationError::MissingUnit(s.to_owned())),
            _ => {
                return Err(DurationError::UnknownUnit {
                    unit: unit.to_owned(),
                    duration: s.to_owned(),
                });
            }
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        let int: i128 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad())?
        };
        let mut value = int.checked_mul(scale).ok_or_else(bad)?;
        let mut div = 1i128;
        for d in frac.chars().take(18) {
            div *= 10;
            value += i128::from(d.to_digit(10).unwrap_or(0)) * scale / div;
        }
        total = total.checked_add(value).ok_or_else(bad)?;
        if total > i128::from(i64::MAX) {
            return Err(bad());
        }
    }
    Ok(if neg { -total } else { total })
}

/// A `HEALTHCHECK` interval flag: empty or zero is 0 (inherit); anything
/// else must be at least 1ms.
pub fn parse_interval(flag: &str, value: &str) -> Result<u64, DurationError> {
    if value.is_empty() {
        return Ok(0);
    }
    let ns = parse_go_duration(value)?;
    if ns == 0 {
        return Ok(0);
    }
    if ns < 1_000_000 {
        return Err(DurationError::TooShort(flag.to_owned()));
    }
    u64::try_from(ns).map_err(|_| DurationError::Invalid(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("5s"), Ok(5_000_000_000));
        assert_eq!(parse_go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_go_duration("300ms"), Ok(300_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-2us"), Ok(-2_000));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("1..5s").is_err());
    }

    #[test]
    fn intervals_have_a_minimum() {
        assert_eq!(parse_interval("interval", "0s"), Ok(0));
        assert_eq!(parse_interval("interval", ""), Ok(0));
        assert!(parse_interval("interval", "10us").is_err());
        assert!(parse_interval("interval", "-1s").is_err());
        assert_eq!(parse_interval("interval", "1ms"), Ok(1_000_000));
    }
}
