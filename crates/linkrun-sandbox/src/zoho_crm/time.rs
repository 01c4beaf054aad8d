//! Time: the clock, and Zoho's ISO 8601 date-times with the organisation's UTC offset.

use super::*;

pub(super) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `2023-05-10T01:10:47-07:00`: the instant `ms` at the UTC offset `offset_secs`.
pub(super) fn format_time(ms: i64, offset_secs: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_secs as i32)
        .unwrap_or(chrono::FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DD`, at the UTC offset.
pub(super) fn format_date(ms: i64, offset_secs: i64) -> String {
    format_time(ms, offset_secs)[..10].to_string()
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM|±HHMM)`; no offset means UTC, and a space
/// where the `+` was (a `+` decoded from a query string) is read as `+`.
pub(super) fn parse_time(s: &str) -> Option<i64> {
    let mut t = s.trim().to_string();
    if t.len() > 19 && t.as_bytes()[10] == b' ' {
        t.replace_range(10..11, "T");
    }
    if let Some(pos) = t.get(19..).and_then(|rest| rest.find(' ')).map(|p| p + 19) {
        t.replace_range(pos..pos + 1, "+");
    }
    chrono::DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%:z")
        .or_else(|_| chrono::DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(&t))
        .map(|d| d.timestamp())
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc().timestamp())
        })
}
