//! IANA time zones for Deluge dates, as a chrono [`TimeZone`].
//!
//! The zone data is `jiff`'s bundled copy of the IANA database: a compressed byte blob read on
//! demand, where `chrono-tz` compiles the whole database into static tables that the loader had
//! to relocate (about 30,000 relocations) at every start of linkrun, half a millisecond of each
//! cold run. A [`Zone`] is a small copyable handle into a per-process list of the zones a run
//! has asked for (usually one), so `DateTime<Zone>` stays `Copy` like chrono's own.

use std::fmt;
use std::sync::{Mutex, OnceLock};

use chrono::{FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};

/// A time zone by IANA name (`Asia/Kolkata`), or UTC.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(u16);

/// The zones asked for so far; index 0 is UTC.
fn registry() -> &'static Mutex<Vec<(String, jiff::tz::TimeZone)>> {
    static ZONES: OnceLock<Mutex<Vec<(String, jiff::tz::TimeZone)>>> = OnceLock::new();
    ZONES.get_or_init(|| Mutex::new(vec![("UTC".to_string(), jiff::tz::TimeZone::UTC)]))
}

fn with_zone<T>(z: Zone, f: impl FnOnce(&str, &jiff::tz::TimeZone) -> T) -> T {
    let zones = registry().lock().unwrap_or_else(|p| p.into_inner());
    let (name, tz) = zones.get(z.0 as usize).unwrap_or(&zones[0]);
    f(name, tz)
}

impl Zone {
    /// UTC.
    pub const UTC: Zone = Zone(0);

    /// The zone with this IANA name; `None` for a name the database lacks.
    pub fn named(name: &str) -> Option<Zone> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        let mut zones = registry().lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = zones.iter().position(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Some(Zone(i as u16));
        }
        let tz = jiff::tz::TimeZone::get(name).ok()?;
        let id = u16::try_from(zones.len()).ok()?;
        let canonical = tz.iana_name().unwrap_or(name).to_string();
        zones.push((canonical, tz));
        Some(Zone(id))
    }

    /// The zone's IANA name.
    pub fn name(self) -> String {
        with_zone(self, |name, _| name.to_string())
    }

    /// The offset in force at `utc` (seconds since the epoch), with its abbreviation.
    fn at_utc(self, secs: i64) -> ZoneOffset {
        with_zone(self, |_, tz| {
            let ts = jiff::Timestamp::from_second(secs).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            let info = tz.to_offset_info(ts);
            ZoneOffset::new(self, info.offset().seconds(), info.abbreviation())
        })
    }
}

impl std::str::FromStr for Zone {
    type Err = String;

    fn from_str(name: &str) -> Result<Zone, String> {
        Zone::named(name).ok_or_else(|| format!("`{name}` is not an IANA time zone name"))
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An offset of a [`Zone`] at some instant, with the zone's abbreviation then (`IST`, `EST`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ZoneOffset {
    zone: Zone,
    seconds: i32,
    abbreviation: [u8; 8],
    len: u8,
}

impl ZoneOffset {
    fn new(zone: Zone, seconds: i32, abbreviation: &str) -> ZoneOffset {
        let mut buf = [0u8; 8];
        let bytes = abbreviation.as_bytes();
        let len = bytes.len().min(8);
        buf[..len].copy_from_slice(&bytes[..len]);
        ZoneOffset { zone, seconds, abbreviation: buf, len: len as u8 }
    }

    /// The zone's abbreviation at this offset (`IST`, or `+0530`-style text for zones that have
    /// no letters for it); `None` when the database has none.
    pub fn abbreviation(&self) -> Option<&str> {
        std::str::from_utf8(&self.abbreviation[..self.len as usize]).ok().filter(|a| !a.is_empty())
    }
}

impl fmt::Debug for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fix())
    }
}

impl fmt::Display for ZoneOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.fix())
    }
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        FixedOffset::east_opt(self.seconds).unwrap_or(FixedOffset::east_opt(0).expect("zero offset"))
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        offset.zone
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> LocalResult<ZoneOffset> {
        match local.and_hms_opt(0, 0, 0) {
            Some(t) => self.offset_from_local_datetime(&t),
            None => LocalResult::None,
        }
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> LocalResult<ZoneOffset> {
        use chrono::{Datelike, Timelike};
        let civil = jiff::civil::DateTime::new(
            local.year().clamp(-9999, 9999) as i16,
            local.month() as i8,
            local.day() as i8,
            local.hour() as i8,
            local.minute() as i8,
            local.second() as i8,
            0,
        );
        let Ok(civil) = civil else { return LocalResult::None };
        let ambiguous = with_zone(*self, |_, tz| tz.to_ambiguous_timestamp(civil).offset());
        let wall = local.and_utc().timestamp();
        let at = |offset: jiff::tz::Offset| self.at_utc(wall - i64::from(offset.seconds()));
        match ambiguous {
            jiff::tz::AmbiguousOffset::Unambiguous { offset } => LocalResult::Single(at(offset)),
            jiff::tz::AmbiguousOffset::Gap { .. } => LocalResult::None,
            jiff::tz::AmbiguousOffset::Fold { before, after } => LocalResult::Ambiguous(at(before), at(after)),
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        let secs = utc.and_hms_opt(0, 0, 0).map_or(0, |t| t.and_utc().timestamp());
        self.at_utc(secs)
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        self.at_utc(utc.and_utc().timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_abbreviations_and_the_gaps_of_daylight_saving() {
        let kolkata = Zone::named("Asia/Kolkata").unwrap();
        let t = kolkata.with_ymd_and_hms(2025, 12, 15, 10, 0, 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2025-12-15T10:00:00+05:30");
        assert_eq!(t.offset().abbreviation(), Some("IST"));
        let ny = Zone::named("america/new_york").unwrap();
        assert_eq!(ny.name(), "America/New_York");
        assert_eq!(ny.with_ymd_and_hms(2025, 7, 1, 12, 0, 0).unwrap().to_rfc3339(), "2025-07-01T12:00:00-04:00");
        // 02:30 on 9 March 2025 does not exist in New York; 01:30 on 2 November happens twice.
        assert!(matches!(ny.with_ymd_and_hms(2025, 3, 9, 2, 30, 0), LocalResult::None));
        assert!(matches!(ny.with_ymd_and_hms(2025, 11, 2, 1, 30, 0), LocalResult::Ambiguous(..)));
        assert!(Zone::named("Mars/Olympus").is_none());
        assert_eq!(Zone::UTC.name(), "UTC");
    }
}
