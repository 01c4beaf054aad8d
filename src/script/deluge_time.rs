//! Deluge's Date and Date-Time values for scripts: `now()`, `today()`, `zoho.currenttime`,
//! `zoho.currentdate`, text to date (`toDate`, `toDateTime`, `toTime`, and `deluge_date` for the
//! translator's `'01-Jan-2024'` literals), date arithmetic (`addDay`, `addMonth`,
//! `addBusinessDay`...), readers (`getMonth`, `getDayOfWeek`...), differences (`daysBetween`,
//! `monthsBetween`, `hoursBetween`) and `toString(pattern[, zone])` with Java `SimpleDateFormat`
//! patterns, which is what Deluge's `toString(format)` takes.
//!
//! One type, [`DelugeTime`] (named `date` in scripts), holds both: an instant in a time zone and
//! whether it has a time part. A Date shows as `01-Jan-2024`, a Date-Time as
//! `01-Jan-2024 10:30:00`, Deluge's default forms, wherever a value becomes text (`info`,
//! `toString()`, `+` with text, `to_json`). Comparisons (`==`, `<`...) compare instants.
//!
//! The time zone is the org's: `[deluge] time_zone` of `linkrun.toml` for `linkrun run`, else
//! the machine's ([`machine_zone`]: `TZ`, then the system's zone, then UTC). `now`, `today` and
//! text without an offset are in that zone; text with an offset (`2023-05-10T01:10:47-07:00`, what
//! Zoho CRM returns) is that instant, shown in the org's zone. `now` reads [`crate::clock`], so the
//! tests move it with `LINKRUN_TEST_CLOCK_OFFSET`.
//!
//! Text Deluge cannot read as a date is an error naming the text (Deluge raises a runtime error
//! for values outside the calendar, and a silent null would hide a wrong format); null stays null
//! under the null rule of [`super::deluge_lib`]: every function here gives null for a null
//! receiver. Text receivers work where Deluge's documentation says text may stand for a
//! date-time (`"15-Mar-2019".addDay(1)`).
//!
//! Month arithmetic clamps to the month's end as Java does (`31-Jan-2024` plus one month is
//! `29-Feb-2024`). Business days skip Saturday and Sunday unless a weekends list is given, and a
//! list of holidays may follow; a negative count gives the value unchanged, as documented.
//! `daysBetween` (and `days360`, documented to behave the same) counts calendar days, the time
//! of day ignored; `monthsBetween` counts 30-day months and `totalMonths` calendar months, as
//! Deluge documents. `getDayOfWeek` is 1 for Sunday to 7
//! for Saturday; `getWeekOfYear` counts weeks from Sunday with week 1 the week of 1 January
//! (Java's US calendar).
//!
//! The pattern converter is written here: no kept Rust crate reads Java `SimpleDateFormat`
//! patterns, and chrono's `strftime` letters differ in meaning (`%m` is the month, `m` in Java is
//! the minute), so a translation table would be as long as this reader and less exact. Letters:
//! `y M d H h k K m s S a E u D w Z X z` and `'quoted'` text (`''` is one quote); other letters
//! are an error naming the pattern. `z` gives the zone's abbreviation (`IST`, `EST`) whatever the
//! count.

use super::zone::Zone as Tz;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, ImmutableString};

use super::zoho::Zoho;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// A Deluge Date or Date-Time: an instant in the org's (or a given) time zone, and whether it
/// has a time part (a Date is midnight and shows without one). Values compare by instant, so
/// `'01-Jan-2024'` equals `'01-Jan-2024 00:00:00'`.
#[derive(Debug, Clone, Copy)]
pub struct DelugeTime {
    at: DateTime<Tz>,
    has_time: bool,
}

impl PartialEq for DelugeTime {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}

impl Eq for DelugeTime {}

impl PartialOrd for DelugeTime {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DelugeTime {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.at.cmp(&other.at)
    }
}

/// The type's name in scripts (`type_of`, error messages).
pub const TYPE_NAME: &str = "date";

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

impl DelugeTime {
    /// A Date-Time at an instant.
    pub fn date_time(at: DateTime<Tz>) -> DelugeTime {
        DelugeTime { at, has_time: true }
    }

    /// The Date (midnight, no time part) of a calendar day in a zone.
    pub fn date(day: NaiveDate, zone: Tz) -> DelugeTime {
        DelugeTime { at: localize(zone, day.and_time(NaiveTime::MIN)), has_time: false }
    }

    /// The instant.
    pub fn at(&self) -> DateTime<Tz> {
        self.at
    }

    /// Whether the value has a time part (a Date-Time rather than a Date).
    pub fn has_time(&self) -> bool {
        self.has_time
    }

    /// Deluge's default text: `01-Jan-2024` for a Date, `01-Jan-2024 10:30:00` for a Date-Time.
    pub fn to_text(&self) -> String {
        let fmt = if self.has_time { "%d-%b-%Y %H:%M:%S" } else { "%d-%b-%Y" };
        self.at.format(fmt).to_string()
    }

    fn local(&self) -> NaiveDateTime {
        self.at.naive_local()
    }

    /// The same kind of value at another wall-clock time of the same zone.
    fn with_local(&self, t: NaiveDateTime) -> DelugeTime {
        let at = localize(self.at.timezone(), t);
        DelugeTime { at, has_time: self.has_time }
    }

    fn add_days(&self, n: INT) -> Res<DelugeTime> {
        let t = self.local().checked_add_signed(Duration::try_days(n).ok_or_else(out_of_range)?);
        Ok(self.with_local(t.ok_or_else(out_of_range)?))
    }

    fn add_months(&self, n: INT) -> Res<DelugeTime> {
        let t = self.local();
        let day = add_months(t.date(), n)?;
        Ok(self.with_local(day.and_time(t.time())))
    }

    fn add_duration(&self, secs: INT) -> Res<DelugeTime> {
        let at = Duration::try_seconds(secs).and_then(|d| self.at.checked_add_signed(d)).ok_or_else(out_of_range)?;
        // Adding hours, minutes or seconds gives a Date-Time, even to a Date.
        Ok(DelugeTime { at, has_time: true })
    }

    fn business_days(&self, n: INT, forward: bool, weekends: &[Weekday], holidays: &[NaiveDate]) -> Res<DelugeTime> {
        if n <= 0 {
            return Ok(*self);
        }
        if weekends.len() >= 7 {
            return Err("addBusinessDay: every day of the week is a weekend: leave at least one business day".into());
        }
        let step = if forward { 1 } else { -1 };
        let t = self.local();
        let mut day = t.date();
        let mut left = n;
        while left > 0 {
            day = day.checked_add_signed(Duration::days(step)).ok_or_else(out_of_range)?;
            if !weekends.contains(&day.weekday()) && !holidays.contains(&day) {
                left -= 1;
            }
        }
        Ok(self.with_local(day.and_time(t.time())))
    }

    /// Milliseconds since 1970-01-01T00:00:00Z (`toLong`, `unixEpoch`).
    pub fn epoch_millis(&self) -> INT {
        self.at.timestamp_millis()
    }

    /// The value as text in a Java `SimpleDateFormat` pattern.
    pub fn format(&self, pattern: &str) -> Res<String> {
        format_java(&self.at, pattern)
    }
}

impl std::fmt::Display for DelugeTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

fn out_of_range() -> Box<EvalAltResult> {
    "the date is outside the years Deluge can hold".into()
}

/// A wall-clock time in a zone: the earlier one when the clocks go back, the time after the gap
/// when they go forward.
fn localize(zone: Tz, t: NaiveDateTime) -> DateTime<Tz> {
    if let Some(at) = zone.from_local_datetime(&t).earliest() {
        return at;
    }
    let later = t + Duration::hours(1);
    zone.from_local_datetime(&later).earliest().unwrap_or_else(|| zone.from_utc_datetime(&t))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).map_or(31, |d| d.day())
}

/// `day` plus `n` months, the day clamped to the month's end.
fn add_months(day: NaiveDate, n: INT) -> Res<NaiveDate> {
    let total = (day.year() as INT) * 12 + (day.month0() as INT) + n;
    let year = i32::try_from(total.div_euclid(12)).map_err(|_| out_of_range())?;
    let month = total.rem_euclid(12) as u32 + 1;
    let d = day.day().min(days_in_month(year, month));
    NaiveDate::from_ymd_opt(year, month, d).ok_or_else(out_of_range)
}

/// The machine's time zone: `TZ` (an IANA name, `:` prefix allowed), else the system's, else UTC.
pub fn machine_zone() -> Tz {
    let from_env = std::env::var("TZ").ok().and_then(|v| v.trim_start_matches(':').parse::<Tz>().ok());
    from_env.or_else(|| iana_time_zone::get_timezone().ok().and_then(|n| n.parse::<Tz>().ok())).unwrap_or(Tz::UTC)
}

/// Reads an IANA zone name (`Asia/Kolkata`); `None` for a name the time-zone database lacks.
pub fn parse_zone(name: &str) -> Option<Tz> {
    name.trim().parse::<Tz>().ok()
}

/// Now, as a Date-Time in `zone`, from linkrun's clock.
pub fn now(zone: Tz) -> DelugeTime {
    let at = Utc.timestamp_opt(crate::clock::unix_now(), 0).single().unwrap_or_default();
    DelugeTime::date_time(at.with_timezone(&zone))
}

/// Today, as a Date in `zone`.
pub fn today(zone: Tz) -> DelugeTime {
    let n = now(zone);
    DelugeTime::date(n.local().date(), zone)
}

// ---------------------------------------------------------------------------------------------
// Text to date

const FORMS: &str =
    "01-Jan-2024, 01-Jan-2024 10:30:00, 2024-01-31, 2024-01-31 10:30:00, 2024-01-31T10:30:00+05:30 or 01/31/2024";

/// Reads text in one of Deluge's default forms (`01-Jan-2024`, `01-Jan-2024 10:30:00`,
/// `2024-01-31`, `2024-01-31 10:30:00`, ISO 8601 with an offset, `01/31/2024`) as a value of
/// `zone`; `None` when it is in none of them. Text with an offset is that instant shown in `zone`.
pub fn parse_default(text: &str, zone: Tz) -> Option<DelugeTime> {
    let s = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(DelugeTime::date_time(t.with_timezone(&zone)));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%:z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(DelugeTime::date_time(t.with_timezone(&zone)));
        }
    }
    const TIMES: [&str; 7] = [
        "%d-%b-%Y %H:%M:%S",
        "%d-%b-%Y %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y %H:%M",
    ];
    for f in TIMES {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(DelugeTime::date_time(localize(zone, t)));
        }
    }
    for f in ["%d-%b-%Y", "%Y-%m-%d", "%m/%d/%Y", "%d-%B-%Y"] {
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Some(DelugeTime::date(d, zone));
        }
    }
    None
}

fn not_a_date(what: &str, text: &str) -> Box<EvalAltResult> {
    format!("{what}: `{text}` is not a date Deluge reads: write it as {FORMS}, or give the pattern it is in").into()
}

/// `deluge_date('01-Jan-2024')`: a Deluge date literal (what the translator makes of Deluge's
/// single-quoted dates); a bad literal is an error naming it.
pub fn deluge_date(text: &str, zone: Tz) -> Res<DelugeTime> {
    parse_default(text, zone).ok_or_else(|| {
        format!("'{text}' is not a Deluge date literal: write it as '01-Jan-2024' or '01-Jan-2024 10:30:00'").into()
    })
}

/// Text as a value, for the functions that take text for a date (`"01-Jan-2024".addDay(1)`).
fn text_date(what: &str, text: &str, zone: Tz) -> Res<DelugeTime> {
    parse_default(text, zone).ok_or_else(|| not_a_date(what, text))
}

/// `toDate(text[, pattern])` / `toDateTime(text[, pattern])`.
fn text_to(what: &str, text: &str, pattern: Option<&str>, zone: Tz, keep_time: bool) -> Res<DelugeTime> {
    let t = match pattern {
        Some(p) => parse_java(text, p, zone).map_err(|e| format!("{what}: {e}"))?,
        None => text_date(what, text, zone)?,
    };
    Ok(if keep_time { DelugeTime::date_time(t.at) } else { to_date(&t) })
}

fn to_date(t: &DelugeTime) -> DelugeTime {
    DelugeTime::date(t.local().date(), t.at.timezone())
}

fn from_millis(ms: INT, zone: Tz) -> Res<DelugeTime> {
    let at = DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(out_of_range)?;
    Ok(DelugeTime::date_time(at.with_timezone(&zone)))
}

// ---------------------------------------------------------------------------------------------
// Java SimpleDateFormat patterns

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A pattern letter and how many times it is repeated.
    Field(char, usize),
    Text(String),
}

const LETTERS: &str = "yMdHhkKmsSaEuDwZXz";

fn tokens(pattern: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut text = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                text.push('\'');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            loop {
                match chars.get(j) {
                    None => {
                        return Err(format!("the pattern `{pattern}` has a quote that is not closed: close it with '"));
                    }
                    Some('\'') if chars.get(j + 1) == Some(&'\'') => {
                        text.push('\'');
                        j += 2;
                    }
                    Some('\'') => break,
                    Some(&q) => {
                        text.push(q);
                        j += 1;
                    }
                }
            }
            i = j + 1;
            continue;
        }
        if c.is_ascii_alphabetic() {
            if !LETTERS.contains(c) {
                return Err(format!(
                    "the pattern `{pattern}` has the letter `{c}`, which is not a date pattern letter: quote text in '...', or use y M d H h m s S a E Z X z D"
                ));
            }
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            if !text.is_empty() {
                out.push(Token::Text(std::mem::take(&mut text)));
            }
            out.push(Token::Field(c, n));
            i += n;
            continue;
        }
        text.push(c);
        i += 1;
    }
    if !text.is_empty() {
        out.push(Token::Text(text));
    }
    Ok(out)
}

fn pad(n: i64, width: usize) -> String {
    if n < 0 { format!("-{:0width$}", -n, width = width) } else { format!("{n:0width$}") }
}

fn offset_text(secs: i32, colon: bool, with_minutes: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let (h, m) = (secs.abs() / 3600, secs.abs() % 3600 / 60);
    match (with_minutes, colon) {
        (false, _) => format!("{sign}{h:02}"),
        (true, false) => format!("{sign}{h:02}{m:02}"),
        (true, true) => format!("{sign}{h:02}:{m:02}"),
    }
}

/// Java's `WEEK_OF_YEAR` for the US calendar: weeks start on Sunday and week 1 holds 1 January,
/// so the last days of December may be in week 1 of the next year.
fn week_of_year(d: NaiveDate) -> u32 {
    let next_jan1 = NaiveDate::from_ymd_opt(d.year() + 1, 1, 1);
    let saturday = d + Duration::days(6 - i64::from(d.weekday().num_days_from_sunday()));
    if next_jan1.is_some_and(|j| saturday >= j) {
        return 1;
    }
    let jan1 = NaiveDate::from_ymd_opt(d.year(), 1, 1).map_or(0, |j| j.weekday().num_days_from_sunday());
    (d.ordinal0() + jan1) / 7 + 1
}

fn format_java(at: &DateTime<Tz>, pattern: &str) -> Res<String> {
    let toks = tokens(pattern).map_err(|e| format!("toString: {e}"))?;
    let mut out = String::new();
    let offset = at.offset().fix().local_minus_utc();
    for t in toks {
        match t {
            Token::Text(s) => out.push_str(&s),
            Token::Field(c, n) => {
                let s = match c {
                    'y' if n == 2 => pad(i64::from(at.year()).rem_euclid(100), 2),
                    'y' => pad(i64::from(at.year()), n),
                    'M' if n >= 4 => MONTHS[at.month0() as usize].to_string(),
                    'M' if n == 3 => MONTHS[at.month0() as usize][..3].to_string(),
                    'M' => pad(i64::from(at.month()), n),
                    'd' => pad(i64::from(at.day()), n),
                    'H' => pad(i64::from(at.hour()), n),
                    'k' => pad(if at.hour() == 0 { 24 } else { i64::from(at.hour()) }, n),
                    'K' => pad(i64::from(at.hour() % 12), n),
                    'h' => pad(i64::from(at.hour12().1), n),
                    'm' => pad(i64::from(at.minute()), n),
                    's' => pad(i64::from(at.second()), n),
                    'S' => pad(i64::from(at.timestamp_subsec_millis()), n),
                    'a' => (if at.hour() < 12 { "AM" } else { "PM" }).to_string(),
                    'E' => {
                        let name = DAYS[at.weekday().num_days_from_sunday() as usize];
                        if n >= 4 { name.to_string() } else { name[..3].to_string() }
                    }
                    'u' => pad(i64::from(at.weekday().number_from_monday()), n),
                    'D' => pad(i64::from(at.ordinal()), n),
                    'w' => pad(i64::from(week_of_year(at.naive_local().date())), n),
                    'Z' => offset_text(offset, false, true),
                    'X' if offset == 0 => "Z".to_string(),
                    'X' => offset_text(offset, n >= 3, n >= 2),
                    'z' => match at.offset().abbreviation() {
                        Some(a) => a.to_string(),
                        None => format!("GMT{}", offset_text(offset, true, true)),
                    },
                    _ => String::new(),
                };
                out.push_str(&s);
            }
        }
    }
    Ok(out)
}

/// Reads text written in a Java pattern. Missing parts are Java's defaults (1970, January, the
/// 1st, midnight); an offset in the text (`Z`, `X`) makes it that instant.
fn parse_java(text: &str, pattern: &str, zone: Tz) -> Result<DelugeTime, String> {
    let toks = tokens(pattern)?;
    let bad = || format!("`{text}` is not in the pattern `{pattern}`");
    let s: Vec<char> = text.trim().chars().collect();
    let mut i = 0;
    let (mut year, mut month, mut day) = (1970i64, 1i64, 1i64);
    let (mut hour, mut minute, mut second, mut milli) = (0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut twelve = false;
    let mut offset: Option<i32> = None;
    let mut has_time = false;
    let mut named: Option<Tz> = None;
    for (k, t) in toks.iter().enumerate() {
        match t {
            Token::Text(lit) => {
                for c in lit.chars() {
                    if s.get(i) != Some(&c) {
                        return Err(bad());
                    }
                    i += 1;
                }
            }
            Token::Field(c, n) => {
                let adjacent = matches!(toks.get(k + 1), Some(Token::Field(_, _)));
                let number = |i: &mut usize| -> Result<i64, String> {
                    let max = if adjacent { *n } else { 10 };
                    let start = *i;
                    while *i < s.len() && *i - start < max && s[*i].is_ascii_digit() {
                        *i += 1;
                    }
                    s[start..*i].iter().collect::<String>().parse::<i64>().map_err(|_| bad())
                };
                let word = |i: &mut usize| -> String {
                    let start = *i;
                    while *i < s.len() && s[*i].is_alphabetic() {
                        *i += 1;
                    }
                    s[start..*i].iter().collect::<String>().to_lowercase()
                };
                match c {
                    'y' => {
                        let start = i;
                        let y = number(&mut i)?;
                        year = if *n <= 2 && i - start <= 2 { if y < 70 { 2000 + y } else { 1900 + y } } else { y };
                    }
                    'M' if *n >= 3 => {
                        let w = word(&mut i);
                        let m = MONTHS.iter().position(|m| {
                            let m = m.to_lowercase();
                            w == m || (w.len() == 3 && m.starts_with(&w))
                        });
                        month = m.ok_or_else(bad)? as i64 + 1;
                    }
                    'M' => month = number(&mut i)?,
                    'd' => day = number(&mut i)?,
                    'D' => {
                        let d = number(&mut i)?;
                        month = 1;
                        day = d;
                    }
                    'H' | 'k' => {
                        hour = number(&mut i)?;
                        if *c == 'k' && hour == 24 {
                            hour = 0;
                        }
                        has_time = true;
                    }
                    'h' | 'K' => {
                        hour = number(&mut i)?;
                        twelve = true;
                        has_time = true;
                    }
                    'm' => {
                        minute = number(&mut i)?;
                        has_time = true;
                    }
                    's' => {
                        second = number(&mut i)?;
                        has_time = true;
                    }
                    'S' => {
                        milli = number(&mut i)?;
                        has_time = true;
                    }
                    'a' => {
                        let w = word(&mut i);
                        pm = Some(match w.as_str() {
                            "am" => false,
                            "pm" => true,
                            _ => return Err(bad()),
                        });
                    }
                    'E' => {
                        let w = word(&mut i);
                        if !DAYS.iter().any(|d| {
                            let d = d.to_lowercase();
                            w == d || (w.len() == 3 && d.starts_with(&w))
                        }) {
                            return Err(bad());
                        }
                    }
                    'u' | 'w' => {
                        number(&mut i)?;
                    }
                    'Z' | 'X' => {
                        if s.get(i) == Some(&'Z') {
                            i += 1;
                            offset = Some(0);
                            continue;
                        }
                        let sign = match s.get(i) {
                            Some('+') => 1,
                            Some('-') => -1,
                            _ => return Err(bad()),
                        };
                        i += 1;
                        let digits = |i: &mut usize, k: usize| -> Result<i32, String> {
                            let t: String = s.get(*i..*i + k).ok_or_else(bad)?.iter().collect();
                            *i += k;
                            t.parse::<i32>().map_err(|_| bad())
                        };
                        let h = digits(&mut i, 2)?;
                        if s.get(i) == Some(&':') {
                            i += 1;
                        }
                        let m = if s.get(i).is_some_and(|c| c.is_ascii_digit()) { digits(&mut i, 2)? } else { 0 };
                        offset = Some(sign * (h * 3600 + m * 60));
                    }
                    'z' => {
                        let w: String = s[i..].iter().take_while(|c| !c.is_whitespace()).collect();
                        i += w.chars().count();
                        if let Some(z) = parse_zone(&w) {
                            named = Some(z);
                        } else if w.eq_ignore_ascii_case("utc") || w.eq_ignore_ascii_case("gmt") {
                            offset = Some(0);
                        } else {
                            return Err(bad());
                        }
                    }
                    _ => return Err(bad()),
                }
            }
        }
    }
    if i != s.len() {
        return Err(bad());
    }
    if twelve {
        if !(1..=12).contains(&hour) {
            return Err(bad());
        }
        hour %= 12;
    }
    if pm == Some(true) && hour < 12 {
        hour += 12;
    }
    let is_date_of_year = toks.iter().any(|t| matches!(t, Token::Field('D', _)));
    let date = if is_date_of_year {
        i32::try_from(year).ok().and_then(|y| NaiveDate::from_yo_opt(y, u32::try_from(day).ok()?))
    } else {
        i32::try_from(year)
            .ok()
            .and_then(|y| NaiveDate::from_ymd_opt(y, u32::try_from(month).ok()?, u32::try_from(day).ok()?))
    };
    let date = date.ok_or_else(|| format!("`{text}` is not a day of the calendar"))?;
    let time = NaiveTime::from_hms_milli_opt(hour as u32, minute as u32, second as u32, milli as u32)
        .filter(|_| {
            (0..24).contains(&hour)
                && (0..60).contains(&minute)
                && (0..60).contains(&second)
                && (0..1000).contains(&milli)
        })
        .ok_or_else(|| format!("`{text}` is not a time of the day"))?;
    let local = date.and_time(time);
    let at = match offset {
        Some(secs) => {
            let fixed = chrono::FixedOffset::east_opt(secs).ok_or_else(bad)?;
            fixed.from_local_datetime(&local).single().ok_or_else(bad)?.with_timezone(&zone)
        }
        None => localize(named.unwrap_or(zone), local).with_timezone(&zone),
    };
    Ok(DelugeTime { at, has_time: has_time || offset.is_some() || named.is_some() })
}

// ---------------------------------------------------------------------------------------------
// Registration

fn weekday_names(list: &Array) -> Res<Vec<Weekday>> {
    let mut out = Vec::new();
    for v in list {
        let name = super::builtins::display(v);
        let i = DAYS
            .iter()
            .position(|d| d.eq_ignore_ascii_case(name.trim()) || d[..3].eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| format!("addBusinessDay: `{name}` is not a day of the week: write Sunday, Monday..."))?;
        out.push(match i {
            0 => Weekday::Sun,
            1 => Weekday::Mon,
            2 => Weekday::Tue,
            3 => Weekday::Wed,
            4 => Weekday::Thu,
            5 => Weekday::Fri,
            _ => Weekday::Sat,
        });
    }
    Ok(out)
}

fn holiday_days(list: &Array, zone: Tz) -> Res<Vec<NaiveDate>> {
    list.iter()
        .map(|v| match v.read_lock::<DelugeTime>() {
            Some(d) => Ok(d.local().date()),
            None => Ok(text_date("addBusinessDay", &super::builtins::display(v), zone)?.local().date()),
        })
        .collect()
}

const WEEKEND: [Weekday; 2] = [Weekday::Sat, Weekday::Sun];

/// Registers a method on dates and on text standing for a date, with a null receiver giving null.
macro_rules! on_dates {
    ($engine:ident, $zone:ident, $name:expr, |$d:ident $(, $a:ident : $t:ty)*| $body:expr) => {{
        $engine.register_fn($name, move |$d: &mut DelugeTime $(, $a: $t)*| { let $d = *$d; $body });
        $engine.register_fn($name, move |s: ImmutableString $(, $a: $t)*| {
            let $d = text_date($name, &s, $zone)?;
            $body
        });
        $engine.register_fn($name, move |_: () $(, _: $t)*| -> Dynamic { Dynamic::UNIT });
    }};
}

/// Registers the date type, its functions and the `zoho.currenttime` / `zoho.currentdate`
/// getters, all in `zone` (the org's time zone).
pub fn register(engine: &mut Engine, zone: Tz) {
    engine.register_type_with_name::<DelugeTime>(TYPE_NAME);
    register_clock(engine, zone);
    register_conversions(engine, zone);
    register_arithmetic(engine, zone);
    register_readers(engine, zone);
    register_operators(engine);
}

fn register_clock(engine: &mut Engine, zone: Tz) {
    engine.register_fn("now", move || now(zone));
    engine.register_fn("today", move || today(zone));
    engine.register_get("currenttime", move |_: &mut Zoho| now(zone));
    engine.register_get("currentdate", move |_: &mut Zoho| today(zone));
}

fn register_conversions(engine: &mut Engine, zone: Tz) {
    engine.register_fn("deluge_date", move |s: ImmutableString| deluge_date(&s, zone));
    for (name, keep_time) in [("toDate", false), ("toDateTime", true), ("toTime", true)] {
        engine.register_fn(name, move |s: ImmutableString| text_to(name, &s, None, zone, keep_time));
        engine.register_fn(name, move |s: ImmutableString, p: ImmutableString| {
            text_to(name, &s, Some(&p), zone, keep_time)
        });
        engine.register_fn(
            name,
            move |d: &mut DelugeTime| if keep_time { DelugeTime::date_time(d.at) } else { to_date(d) },
        );
        engine.register_fn(
            name,
            move |d: &mut DelugeTime, _: ImmutableString| {
                if keep_time { DelugeTime::date_time(d.at) } else { to_date(d) }
            },
        );
        engine.register_fn(name, move |ms: INT| {
            let t = from_millis(ms, zone)?;
            Ok::<_, Box<EvalAltResult>>(if keep_time { t } else { to_date(&t) })
        });
        engine.register_fn(name, |_: ()| ());
        engine.register_fn(name, |_: (), _: Dynamic| ());
    }
    for name in ["toString", "toText"] {
        engine.register_fn(name, |d: &mut DelugeTime| d.to_text());
    }
    engine.register_fn("toString", |d: &mut DelugeTime, p: ImmutableString| d.format(&p));
    engine.register_fn("toString", |d: &mut DelugeTime, p: ImmutableString, tz: ImmutableString| -> Res<String> {
        let z = parse_zone(&tz).ok_or_else(|| {
            format!(
                "toString: `{tz}` is not a time zone: give an IANA name such as `Asia/Kolkata` or `America/New_York`"
            )
        })?;
        format_java(&d.at.with_timezone(&z), &p)
    });
    engine.register_fn("toString", |_: (), _: Dynamic, _: Dynamic| ());
    for name in ["toLong", "unixEpoch"] {
        engine.register_fn(name, |d: &mut DelugeTime| d.epoch_millis());
    }
    engine.register_fn("unixEpoch", move |s: ImmutableString| {
        Ok::<_, Box<EvalAltResult>>(text_date("unixEpoch", &s, zone)?.epoch_millis())
    });
    engine.register_fn("unixEpoch", |_: ()| ());
    engine.register_fn("to_string", |d: &mut DelugeTime| d.to_text());
    engine.register_fn("to_debug", |d: &mut DelugeTime| d.to_text());
}

fn register_arithmetic(engine: &mut Engine, zone: Tz) {
    for (name, sign) in [("addDay", 1), ("subDay", -1)] {
        on_dates!(engine, zone, name, |d, n: INT| d.add_days(sign * n));
    }
    for (name, sign) in [("addWeek", 7), ("subWeek", -7)] {
        on_dates!(engine, zone, name, |d, n: INT| d.add_days(sign * n));
    }
    for (name, sign) in [("addMonth", 1), ("subMonth", -1)] {
        on_dates!(engine, zone, name, |d, n: INT| d.add_months(sign * n));
    }
    for (name, sign) in [("addYear", 12), ("subYear", -12)] {
        on_dates!(engine, zone, name, |d, n: INT| d.add_months(sign * n));
    }
    for (name, secs) in [
        ("addHour", 3600),
        ("subHour", -3600),
        ("addMinutes", 60),
        ("subMinutes", -60),
        ("addSeconds", 1),
        ("subSeconds", -1),
    ] {
        on_dates!(engine, zone, name, |d, n: INT| d.add_duration(n.saturating_mul(secs)));
    }
    for (name, forward) in [("addBusinessDay", true), ("subBusinessDay", false)] {
        on_dates!(engine, zone, name, |d, n: INT| d.business_days(n, forward, &WEEKEND, &[]));
        on_dates!(engine, zone, name, |d, n: INT, w: Array| d.business_days(n, forward, &weekday_names(&w)?, &[]));
        on_dates!(engine, zone, name, |d, n: INT, w: Array, h: Array| {
            d.business_days(n, forward, &weekday_names(&w)?, &holiday_days(&h, zone)?)
        });
    }
    on_dates!(engine, zone, "workday", |d, n: INT| d.business_days(n, true, &WEEKEND, &[]).map(|t| to_date(&t)));
    on_dates!(engine, zone, "workday", |d, n: INT, w: Array| {
        d.business_days(n, true, &weekday_names(&w)?, &[]).map(|t| to_date(&t))
    });
    on_dates!(engine, zone, "workday", |d, n: INT, w: Array, h: Array| {
        d.business_days(n, true, &weekday_names(&w)?, &holiday_days(&h, zone)?).map(|t| to_date(&t))
    });
    on_dates!(engine, zone, "toStartOfMonth", |d| Ok::<_, Box<EvalAltResult>>(DelugeTime::date(
        d.local().date().with_day(1).unwrap_or(d.local().date()),
        d.at.timezone()
    )));
    on_dates!(engine, zone, "eomonth", |d, n: INT| {
        let day = add_months(d.local().date().with_day(1).unwrap_or(d.local().date()), n)?;
        let end = day.with_day(days_in_month(day.year(), day.month())).unwrap_or(day);
        Ok::<_, Box<EvalAltResult>>(DelugeTime::date(end, d.at.timezone()))
    });
}

fn between(name: &'static str, a: &DelugeTime, b: &DelugeTime) -> INT {
    let days = (b.local().date() - a.local().date()).num_days();
    match name {
        "daysBetween" | "days360" => days,
        "monthsBetween" => days / 30,
        "totalMonths" => {
            let (x, y) = (a.local().date(), b.local().date());
            let months =
                (INT::from(y.year()) * 12 + INT::from(y.month0())) - (INT::from(x.year()) * 12 + INT::from(x.month0()));
            if months > 0 && y.day() < x.day() {
                months - 1
            } else if months < 0 && y.day() > x.day() {
                months + 1
            } else {
                months
            }
        }
        "hoursBetween" => (b.at - a.at).num_hours(),
        _ => 0,
    }
}

/// A reader of a part of a wall-clock time (`getMonth`...).
type Reader = fn(&NaiveDateTime) -> INT;

fn register_readers(engine: &mut Engine, zone: Tz) {
    let readers: [(&str, Reader); 9] = [
        ("getYear", |t| INT::from(t.year())),
        ("getMonth", |t| INT::from(t.month())),
        ("getDay", |t| INT::from(t.day())),
        ("getHour", |t| INT::from(t.hour())),
        ("getMinutes", |t| INT::from(t.minute())),
        ("getSeconds", |t| INT::from(t.second())),
        ("getDayOfWeek", |t| INT::from(t.weekday().number_from_sunday())),
        ("getWeekOfYear", |t| INT::from(week_of_year(t.date()))),
        ("getDayOfYear", |t| INT::from(t.ordinal())),
    ];
    for (name, f) in readers {
        on_dates!(engine, zone, name, |d| Ok::<_, Box<EvalAltResult>>(f(&d.local())));
    }
    for name in ["daysBetween", "days360", "monthsBetween", "totalMonths", "hoursBetween"] {
        engine.register_fn(name, move |a: &mut DelugeTime, b: DelugeTime| between(name, a, &b));
        engine.register_fn(name, move |a: &mut DelugeTime, b: ImmutableString| -> Res<INT> {
            Ok(between(name, a, &text_date(name, &b, zone)?))
        });
        engine.register_fn(name, move |a: ImmutableString, b: Dynamic| -> Res<Dynamic> {
            let a = text_date(name, &a, zone)?;
            if b.is_unit() {
                return Ok(Dynamic::UNIT);
            }
            let b = match b.read_lock::<DelugeTime>() {
                Some(d) => *d,
                None => text_date(name, &super::builtins::display(&b), zone)?,
            };
            Ok(Dynamic::from_int(between(name, &a, &b)))
        });
        engine.register_fn(name, |_: &mut DelugeTime, _: ()| ());
        engine.register_fn(name, |_: (), _: Dynamic| ());
    }
}

fn register_operators(engine: &mut Engine) {
    engine.register_fn("==", |a: DelugeTime, b: DelugeTime| a == b);
    engine.register_fn("!=", |a: DelugeTime, b: DelugeTime| a != b);
    engine.register_fn("<", |a: DelugeTime, b: DelugeTime| a < b);
    engine.register_fn("<=", |a: DelugeTime, b: DelugeTime| a <= b);
    engine.register_fn(">", |a: DelugeTime, b: DelugeTime| a > b);
    engine.register_fn(">=", |a: DelugeTime, b: DelugeTime| a >= b);
    engine.register_fn("+", |s: ImmutableString, d: DelugeTime| format!("{s}{d}"));
    engine.register_fn("+", |d: DelugeTime, s: ImmutableString| format!("{d}{s}"));
}

/// A copy of `v` with every date in it (nested in lists and maps too) replaced by its default
/// text, for JSON; `None` when `v` holds no date.
pub fn dates_as_text(v: &Dynamic) -> Option<Dynamic> {
    if let Some(d) = v.read_lock::<DelugeTime>() {
        return Some(Dynamic::from(d.to_text()));
    }
    if let Some(items) = v.read_lock::<Array>() {
        let mut changed = false;
        let out: Array = items
            .iter()
            .map(|x| match dates_as_text(x) {
                Some(y) => {
                    changed = true;
                    y
                }
                None => x.clone(),
            })
            .collect();
        return changed.then(|| Dynamic::from_array(out));
    }
    if let Some(map) = v.read_lock::<rhai::Map>() {
        let mut changed = false;
        let out: rhai::Map = map
            .iter()
            .map(|(k, x)| match dates_as_text(x) {
                Some(y) => {
                    changed = true;
                    (k.clone(), y)
                }
                None => (k.clone(), x.clone()),
            })
            .collect();
        return changed.then(|| Dynamic::from_map(out));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::script::test_support::run_in;

    fn check(cases: &[(&str, &str)]) {
        for (src, want) in cases {
            assert_eq!(run_in(Tz::named("Asia/Kolkata").unwrap(), src), *want, "{src}");
        }
    }

    #[test]
    fn literals_and_default_text() {
        check(&[
            ("deluge_date(\"01-Jan-2024\")", "01-Jan-2024"),
            ("deluge_date(\"01-Jan-2024 10:30:00\")", "01-Jan-2024 10:30:00"),
            ("type_of(deluge_date(\"01-Jan-2024\"))", "date"),
            (
                "deluge_date(\"32-Jan-2024\")",
                "error: '32-Jan-2024' is not a Deluge date literal: write it as '01-Jan-2024' or '01-Jan-2024 10:30:00'",
            ),
            (r#""Due: " + deluge_date("05-Feb-2024") + "!""#, "Due: 05-Feb-2024!"),
            (r#"deluge_date("05-Feb-2024") + " x""#, "05-Feb-2024 x"),
            (r#"`${deluge_date("05-Feb-2024 07:08:09")}`"#, "05-Feb-2024 07:08:09"),
            (r#"[deluge_date("05-Feb-2024")]"#, r#"["05-Feb-2024"]"#),
            (r#"to_json(#{d: deluge_date("05-Feb-2024")})"#, r#"{"d":"05-Feb-2024"}"#),
            ("deluge_date(\"05-Feb-2024\").toString()", "05-Feb-2024"),
        ]);
    }

    #[test]
    fn text_to_dates() {
        check(&[
            (r#""2024-03-10".toDate()"#, "10-Mar-2024"),
            (r#""2024-03-10 14:05:00".toDate()"#, "10-Mar-2024"),
            (r#""2024-03-10 14:05:00".toDateTime()"#, "10-Mar-2024 14:05:00"),
            (r#"toDateTime("10-Mar-2024 14:05:00")"#, "10-Mar-2024 14:05:00"),
            (r#""03/10/2024".toDate()"#, "10-Mar-2024"),
            (r#""2023-05-10T01:10:47-07:00".toDateTime()"#, "10-May-2023 13:40:47"),
            (
                r#""2023-05-10T01:10:47-07:00".toDateTime().toString("yyyy-MM-dd'T'HH:mm:ssXXX", "America/Los_Angeles")"#,
                "2023-05-10T01:10:47-07:00",
            ),
            (r#""10/03/2024".toDate("dd/MM/yyyy")"#, "10-Mar-2024"),
            (r#""20240310".toDate("yyyyMMdd")"#, "10-Mar-2024"),
            (r#""Mar 5, 2024 3:04 PM".toDateTime("MMM d, yyyy h:mm a")"#, "05-Mar-2024 15:04:00"),
            (r#""March 2024".toDate("MMMM yyyy")"#, "01-Mar-2024"),
            (r#"toTime("2024-03-10 08:00:00")"#, "10-Mar-2024 08:00:00"),
            (r#"toDate(1704067200000)"#, "01-Jan-2024"),
            (r#"toDateTime(1704067200000)"#, "01-Jan-2024 05:30:00"),
            (
                r#""soon".toDate()"#,
                "error: toDate: `soon` is not a date Deluge reads: write it as 01-Jan-2024, 01-Jan-2024 10:30:00, 2024-01-31, 2024-01-31 10:30:00, 2024-01-31T10:30:00+05:30 or 01/31/2024, or give the pattern it is in",
            ),
            (r#""31/02/2024".toDate("dd/MM/yyyy")"#, "error: toDate: `31/02/2024` is not a day of the calendar"),
            (r#""2024-03-10".toDate("dd/MM/yyyy")"#, "error: toDate: `2024-03-10` is not in the pattern `dd/MM/yyyy`"),
        ]);
    }

    #[test]
    fn java_patterns() {
        let d = "deluge_date(\"05-Mar-2024 15:04:09\")";
        check(&[
            (&format!("{d}.toString(\"yyyy-MM-dd HH:mm:ss\")"), "2024-03-05 15:04:09"),
            (&format!("{d}.toString(\"yy M MMM MMMM d dd\")"), "24 3 Mar March 5 05"),
            (&format!("{d}.toString(\"h hh H a E EEE EEEE\")"), "3 03 15 PM Tue Tue Tuesday"),
            (&format!("{d}.toString(\"D u w SSS\")"), "65 2 10 000"),
            (&format!("{d}.toString(\"Z X XX XXX z\")"), "+0530 +05 +0530 +05:30 IST"),
            (&format!("{d}.toString(\"'Week' w, 'o''clock' ''\")"), "Week 10, o'clock '"),
            (&format!("{d}.toString(\"yyyy-MM-dd'T'HH:mm:ssXXX\")"), "2024-03-05T15:04:09+05:30"),
            (&format!("{d}.toString(\"XXX\", \"UTC\")"), "Z"),
            (&format!("{d}.toString(\"HH:mm z\", \"America/New_York\")"), "04:34 EST"),
            (
                &format!("{d}.toString(\"yyyy-qq\")"),
                "error: toString: the pattern `yyyy-qq` has the letter `q`, which is not a date pattern letter: quote text in '...', or use y M d H h m s S a E Z X z D",
            ),
            (
                &format!("{d}.toString(\"HH\", \"Mars/Base\")"),
                "error: toString: `Mars/Base` is not a time zone: give an IANA name such as `Asia/Kolkata` or `America/New_York`",
            ),
            ("deluge_date(\"01-Jan-2024 00:30:00\").toString(\"h a k K\")", "12 AM 24 0"),
        ]);
    }

    #[test]
    fn arithmetic_clamps_months_and_skips_weekends() {
        check(&[
            ("deluge_date(\"31-Jan-2024\").addMonth(1)", "29-Feb-2024"),
            ("deluge_date(\"31-Mar-2023\").subMonth(1)", "28-Feb-2023"),
            ("deluge_date(\"29-Feb-2024\").addYear(1)", "28-Feb-2025"),
            ("deluge_date(\"31-Dec-2024\").addDay(1)", "01-Jan-2025"),
            ("deluge_date(\"10-Jan-2024\").subDay(10)", "31-Dec-2023"),
            ("deluge_date(\"01-Jan-2024\").addWeek(2)", "15-Jan-2024"),
            ("deluge_date(\"01-Jan-2024 23:30:00\").addHour(1)", "02-Jan-2024 00:30:00"),
            ("deluge_date(\"01-Jan-2024 10:00:00\").subMinutes(90).addSeconds(5)", "01-Jan-2024 08:30:05"),
            ("deluge_date(\"01-Jan-2024\").addHour(2)", "01-Jan-2024 02:00:00"),
            // Friday plus one business day is Monday; documented examples follow.
            ("deluge_date(\"15-Mar-2019\").addBusinessDay(1)", "18-Mar-2019"),
            ("deluge_date(\"15-Mar-2019\").workday(1)", "18-Mar-2019"),
            (r#""21-Jul-2021".subBusinessDay(5)"#, "14-Jul-2021"),
            (r#""21-Jul-2021".subBusinessDay(5, ["Sunday"], ["20-Jul-2021", "19-Jul-2021"])"#, "13-Jul-2021"),
            ("deluge_date(\"16-Mar-2019\").addBusinessDay(1)", "18-Mar-2019"),
            ("deluge_date(\"15-Mar-2019\").addBusinessDay(-3)", "15-Mar-2019"),
            (r#""15-Mar-2019".addDay(1)"#, "16-Mar-2019"),
            ("deluge_date(\"17-Feb-2024 10:00:00\").toStartOfMonth()", "01-Feb-2024"),
            ("deluge_date(\"17-Jan-2024\").eomonth(1)", "29-Feb-2024"),
            ("deluge_date(\"17-Jan-2024\").eomonth(-1)", "31-Dec-2023"),
            ("eomonth(deluge_date(\"17-Jan-2024\"), 0)", "31-Jan-2024"),
        ]);
    }

    #[test]
    fn readers_and_differences() {
        let d = "deluge_date(\"03-Mar-2024 15:04:09\")";
        check(&[
            (
                &format!(
                    "let d = {d}; [d.getYear(), d.getMonth(), d.getDay(), d.getHour(), d.getMinutes(), d.getSeconds()]"
                ),
                "[2024,3,3,15,4,9]",
            ),
            // 3 March 2024 is a Sunday: 1, as in Deluge.
            (&format!("let d = {d}; [d.getDayOfWeek(), d.getDayOfYear(), d.getWeekOfYear()]"), "[1,63,10]"),
            ("deluge_date(\"09-Mar-2024\").getDayOfWeek()", "7"),
            ("[deluge_date(\"31-Dec-2024\").getWeekOfYear(), deluge_date(\"01-Jan-2022\").getWeekOfYear()]", "[1,1]"),
            ("deluge_date(\"01-Jan-2024\").daysBetween(deluge_date(\"01-Mar-2024\"))", "60"),
            // The documented examples of days360 (which "behaves as daysBetween") and totalMonths.
            (
                r#"[days360("31-Dec-1989", "01-Jan-1990"), daysBetween("31-Dec-1989 23:00:00", "01-Jan-1990 01:00:00")]"#,
                "[1,1]",
            ),
            (
                r#"["01-Feb-2019".totalMonths("01-Mar-2019"), totalMonths("31-Jan-2019", "28-Feb-2019"), totalMonths("15-Mar-2019", "14-Jan-2019")]"#,
                "[1,0,-2]",
            ),
            ("daysBetween(deluge_date(\"01-Mar-2024\"), deluge_date(\"01-Jan-2024\"))", "-60"),
            (r#"daysBetween("01-Jan-2024", "2024-01-31")"#, "30"),
            (
                "[monthsBetween(deluge_date(\"01-Feb-2019\"), deluge_date(\"01-Mar-2019\")), monthsBetween(deluge_date(\"01-Jan-2019\"), deluge_date(\"01-Mar-2019\"))]",
                "[0,1]",
            ),
            ("hoursBetween(deluge_date(\"01-Jan-2024 10:00:00\"), deluge_date(\"02-Jan-2024 09:30:00\"))", "23"),
            ("deluge_date(\"01-Jan-2024\").toLong()", "1704047400000"),
            ("deluge_date(\"01-Jan-2024 05:30:00\").unixEpoch()", "1704067200000"),
            (
                "let a = deluge_date(\"01-Jan-2024\"); let b = deluge_date(\"02-Jan-2024\"); [a < b, a <= b, a > b, a >= b, a == b, a != b, a == deluge_date(\"01-Jan-2024 00:00:00\")]",
                "[true,true,false,false,false,true,true]",
            ),
            ("deluge_date(\"01-Jan-2024 10:30:00\").toDate()", "01-Jan-2024"),
            ("deluge_date(\"01-Jan-2024\").toDateTime()", "01-Jan-2024 00:00:00"),
        ]);
    }

    #[test]
    fn nulls_stay_null() {
        check(&[
            (
                "let x = (); [x.addDay(1), x.getMonth(), x.toDate(), x.toDateTime(), x.daysBetween(now()), x.eomonth(1)]",
                "[null,null,null,null,null,null]",
            ),
            (
                "let x = (); [x.toString(), x.isNull(), x.addBusinessDay(2), x.toString(\"yyyy\", \"UTC\")]",
                r#"["",true,null,null]"#,
            ),
            ("deluge_date(\"01-Jan-2024\").daysBetween(())", "null"),
            ("deluge_date(\"01-Jan-2024\").isNull()", "false"),
        ]);
    }

    #[test]
    fn now_and_today_are_in_the_zone() {
        let a =
            run_in(Tz::named("Asia/Kolkata").unwrap(), "[now().toString(\"XXX\"), zoho.currenttime.toString(\"XXX\")]");
        assert_eq!(a, r#"["+05:30","+05:30"]"#);
        let b = run_in(Tz::UTC, "let t = today(); [t.getHour(), t == zoho.currentdate, zoho.currenttime >= t]");
        assert_eq!(b, "[0,true,true]");
        let c = run_in(Tz::UTC, "zoho.currenttime.toLong() / 1000");
        assert_eq!(c.parse::<i64>().unwrap() / 10, crate::clock::unix_now() / 10);
    }

    #[test]
    fn zone_names() {
        assert_eq!(parse_zone("Asia/Kolkata"), Some(Tz::named("Asia/Kolkata").unwrap()));
        assert_eq!(parse_zone("Mars/Base"), None);
        let _ = machine_zone();
    }
}
