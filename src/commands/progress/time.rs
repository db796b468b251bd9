//! Timestamps as Go's `time.Time` marshals them (RFC 3339 with
//! nanoseconds, trailing zeros dropped), for rawjson.

use std::time::{SystemTime, UNIX_EPOCH};

/// `t` in UTC, as `2024-05-01T10:00:00.123456789Z`.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = hoist_engine::executor::time::rfc3339(since.as_secs() as i64);
    let nanos = since.subsec_nanos();
    if nanos == 0 {
        return seconds;
    }
    let fraction = format!("{nanos:09}");
    let fraction = fraction.trim_end_matches('0');
    format!("{}.{fraction}Z", seconds.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::rfc3339_nano;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn as_go_marshals_time() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_400_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.1234Z");
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 0);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20Z");
    }
}
