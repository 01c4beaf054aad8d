//! Encoded queries: the `sysparm_query` parser (`field=value^ORfield2LIKEx^ORDERBYfield`, its
//! operators) and the matching of records against it.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Like,
    NotLike,
    StartsWith,
    EndsWith,
    Gt,
    Lt,
    Ge,
    Le,
    IsEmpty,
    IsNotEmpty,
    In,
    NotIn,
    Between,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Cond {
    pub(super) field: String,
    pub(super) op: Op,
    pub(super) value: String,
}

/// A parsed `sysparm_query`: `^NQ` groups (any may match), each an AND of OR-clauses, and the
/// `ORDERBY` keys (`true`: descending).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Query {
    pub(super) groups: Vec<Vec<Vec<Cond>>>,
    pub(super) order: Vec<(String, bool)>,
}

/// Operators, longest spellings first where one is a prefix of another. `ON` and the
/// `RELATIVE..` operators are read into `BETWEEN` and the ordered comparisons ([`parse_cond`]).
pub(super) const OPS: [(&str, Op); 15] = [
    ("ISNOTEMPTY", Op::IsNotEmpty),
    ("ISEMPTY", Op::IsEmpty),
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("<=", Op::Le),
    ("=", Op::Eq),
    (">", Op::Gt),
    ("<", Op::Lt),
    ("NOT LIKE", Op::NotLike),
    ("LIKE", Op::Like),
    ("STARTSWITH", Op::StartsWith),
    ("ENDSWITH", Op::EndsWith),
    ("NOT IN", Op::NotIn),
    ("IN", Op::In),
    ("BETWEEN", Op::Between),
];

/// Parses an encoded query; parts that are not understood or name no column of `def` are
/// dropped (ServiceNow's default for invalid queries).
pub(super) fn parse_query(s: &str, def: &TableDef) -> Query {
    let mut q = Query::default();
    // `^NQ` starts a new group: the term after the caret begins with `NQ`.
    let mut groups: Vec<Vec<String>> = vec![Vec::new()];
    for (i, term) in split_terms(s).into_iter().enumerate() {
        match term.strip_prefix("NQ") {
            Some(rest) if i > 0 => groups.push(vec![rest.to_string()]),
            _ => groups.last_mut().map(|g| g.push(term)).unwrap_or_default(),
        }
    }
    for group in groups {
        let mut clauses: Vec<Vec<Cond>> = Vec::new();
        for part in group.iter().map(String::as_str) {
            if part.is_empty() || part == "EQ" {
                continue;
            }
            if let Some(f) = part.strip_prefix("ORDERBYDESC") {
                if valid_field(def, f) {
                    q.order.push((f.to_string(), true));
                }
            } else if let Some(f) = part.strip_prefix("ORDERBY") {
                if valid_field(def, f) {
                    q.order.push((f.to_string(), false));
                }
            } else if let Some(rest) = part.strip_prefix("OR") {
                if let Some(c) = parse_cond(rest, def) {
                    match clauses.last_mut() {
                        Some(last) => last.push(c),
                        None => clauses.push(vec![c]),
                    }
                }
            } else if let Some(c) = parse_cond(part, def) {
                clauses.push(vec![c]);
            }
        }
        if !clauses.is_empty() || q.groups.is_empty() {
            q.groups.push(clauses);
        }
    }
    q
}

/// Splits an encoded query at its `^` separators; `^^` is a literal caret inside a value (what
/// linkrun's `sn_query_escape` writes; see docs/api-facts.md §5).
pub(super) fn split_terms(s: &str) -> Vec<String> {
    let mut terms = vec![String::new()];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let current = terms.len() - 1;
        if c != '^' {
            terms[current].push(c);
        } else if chars.peek() == Some(&'^') {
            chars.next();
            terms[current].push('^');
        } else {
            terms.push(String::new());
        }
    }
    terms
}

pub(super) fn parse_cond(s: &str, def: &TableDef) -> Option<Cond> {
    let end =
        s.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')).unwrap_or(s.len());
    let (field, rest) = s.split_at(end);
    if field.is_empty() || !valid_field(def, field) {
        return None;
    }
    if let Some(c) = relative_cond(field, rest) {
        return Some(c);
    }
    if let Some(v) = rest.strip_prefix("ON") {
        // `ONToday@javascript:gs.beginningOfToday()@javascript:gs.endOfToday()`: the label, then
        // the span's two ends.
        let mut parts = v.splitn(3, '@').skip(1);
        let (lo, hi) = (query_value(parts.next()?), query_value(parts.next()?));
        return Some(Cond { field: field.to_string(), op: Op::Between, value: format!("{lo}@{hi}") });
    }
    let (tok, op) = OPS.iter().find(|(tok, _)| rest.starts_with(tok))?;
    Some(Cond { field: field.to_string(), op: *op, value: query_value(&rest[tok.len()..]) })
}

/// `RELATIVEGT@hour@ago@3` (newer than three hours ago), `RELATIVELT@dayofweek@ahead@2`, ...:
/// an ordered comparison with the moment the unit, direction and count give (UTC, the sandbox
/// instance's time zone).
fn relative_cond(field: &str, rest: &str) -> Option<Cond> {
    let rest = rest.strip_prefix("RELATIVE")?;
    let mut parts = rest.split('@');
    let op = match parts.next()? {
        "GT" => Op::Gt,
        "LT" => Op::Lt,
        "GE" | "GTEQ" => Op::Ge,
        "LE" | "LTEQ" => Op::Le,
        _ => return None,
    };
    let unit = parts.next()?;
    let sign = match parts.next()? {
        "ago" => -1,
        "ahead" => 1,
        _ => return None,
    };
    let n: i64 = parts.next()?.trim().parse().ok()?;
    let secs = match unit {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "dayofweek" | "day" => 86_400,
        "week" => 7 * 86_400,
        "month" => 30 * 86_400,
        "quarter" => 91 * 86_400,
        "year" => 365 * 86_400,
        _ => return None,
    };
    let at = now_ms() + sign * n * secs * 1000;
    Some(Cond { field: field.to_string(), op, value: format_time(at) })
}

/// The value of a `javascript:gs.*` date helper a query may give (UTC): `dateGenerate`,
/// `beginningOf|endOf` `Today|Yesterday|Tomorrow|ThisWeek|LastWeek|ThisMonth|LastMonth`,
/// `daysAgo|daysAgoStart|daysAgoEnd`, `hoursAgo|hoursAgoStart|hoursAgoEnd`,
/// `minutesAgo|minutesAgoStart|minutesAgoEnd`, `monthsAgo|monthsAgoStart`, `now|nowDateTime`.
fn gs_helper(call: &str) -> Option<String> {
    use chrono::{Datelike as _, Duration, NaiveTime, Timelike as _};
    let (name, args) = call.split_once('(')?;
    let args = args.strip_suffix(')')?;
    let arg = |i: usize| -> Option<String> {
        args.split(',').nth(i).map(|a| a.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
    };
    let n = || arg(0).and_then(|a| a.parse::<i64>().ok()).unwrap_or(0);
    let now = chrono::DateTime::from_timestamp_millis(now_ms())?.naive_utc();
    let day = |d: chrono::NaiveDate, end: bool| {
        d.and_time(if end { NaiveTime::from_hms_opt(23, 59, 59)? } else { NaiveTime::MIN }).into()
    };
    let today = now.date();
    let week_start = today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
    let month_start = today.with_day(1)?;
    let prev_month_end = month_start - Duration::days(1);
    let hour = |t: chrono::NaiveDateTime, end: bool| {
        let base = t.with_minute(0)?.with_second(0)?;
        Some(if end { base + Duration::seconds(3599) } else { base })
    };
    let minute = |t: chrono::NaiveDateTime, end: bool| {
        let base = t.with_second(0)?;
        Some(if end { base + Duration::seconds(59) } else { base })
    };
    let t: Option<chrono::NaiveDateTime> = match name {
        "dateGenerate" => return Some(format!("{} {}", arg(0)?, arg(1).unwrap_or_else(|| "00:00:00".into()))),
        "now" | "nowDateTime" | "nowNoTZ" => Some(now),
        "beginningOfToday" => day(today, false),
        "endOfToday" => day(today, true),
        "beginningOfYesterday" => day(today - Duration::days(1), false),
        "endOfYesterday" => day(today - Duration::days(1), true),
        "beginningOfTomorrow" => day(today + Duration::days(1), false),
        "endOfTomorrow" => day(today + Duration::days(1), true),
        "beginningOfThisWeek" => day(week_start, false),
        "endOfThisWeek" => day(week_start + Duration::days(6), true),
        "beginningOfLastWeek" => day(week_start - Duration::days(7), false),
        "endOfLastWeek" => day(week_start - Duration::days(1), true),
        "beginningOfThisMonth" => day(month_start, false),
        "endOfThisMonth" => day((month_start + Duration::days(32)).with_day(1)? - Duration::days(1), true),
        "beginningOfLastMonth" => day(prev_month_end.with_day(1)?, false),
        "endOfLastMonth" => day(prev_month_end, true),
        "daysAgo" => Some(now - Duration::days(n())),
        "daysAgoStart" => day(today - Duration::days(n()), false),
        "daysAgoEnd" => day(today - Duration::days(n()), true),
        "hoursAgo" => Some(now - Duration::hours(n())),
        "hoursAgoStart" => hour(now - Duration::hours(n()), false),
        "hoursAgoEnd" => hour(now - Duration::hours(n()), true),
        "minutesAgo" => Some(now - Duration::minutes(n())),
        "minutesAgoStart" => minute(now - Duration::minutes(n()), false),
        "minutesAgoEnd" => minute(now - Duration::minutes(n()), true),
        "monthsAgo" => now.checked_sub_months(chrono::Months::new(n().max(0) as u32)),
        "monthsAgoStart" => day(today.checked_sub_months(chrono::Months::new(n().max(0) as u32))?.with_day(1)?, false),
        _ => None,
    };
    t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// A condition's value, with a `javascript:gs.*` date helper turned into its moment
/// (`javascript:gs.dateGenerate('2024-01-01','00:00:00')` is `2024-01-01 00:00:00`).
pub(super) fn query_value(v: &str) -> String {
    if let Some(call) = v.strip_prefix("javascript:gs.")
        && let Some(t) = gs_helper(call.trim())
    {
        return t;
    }
    v.to_string()
}

/// Compares two values: numerically when both are numbers, else as strings ignoring case, as
/// the instance compares text (dates written `YYYY-MM-DD HH:MM:SS` compare correctly so).
pub(super) fn compare(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.to_lowercase().cmp(&b.to_lowercase()),
    }
}

impl Cond {
    pub(super) fn matches(&self, rec: &Map<String, Value>, def: &TableDef, lk: &mut Lookup) -> bool {
        let Some(v) = value_of(rec, def, &self.field, lk) else { return true };
        // Text comparisons ignore case, as on a real instance (`last_name=lee` finds `Lee`).
        let (v, want) = (v.to_lowercase(), self.value.to_lowercase());
        let want = want.as_str();
        let ordered = |ok: fn(Ordering) -> bool| !v.is_empty() && ok(compare(&v, want));
        match self.op {
            Op::Eq => v == want,
            Op::Ne => v != want,
            Op::Like => v.contains(want),
            Op::NotLike => !v.contains(want),
            Op::StartsWith => v.starts_with(want),
            Op::EndsWith => v.ends_with(want),
            Op::Gt => ordered(|o| o == Ordering::Greater),
            Op::Lt => ordered(|o| o == Ordering::Less),
            Op::Ge => ordered(|o| o != Ordering::Less),
            Op::Le => ordered(|o| o != Ordering::Greater),
            Op::IsEmpty => v.is_empty(),
            Op::IsNotEmpty => !v.is_empty(),
            Op::In => want.split(',').any(|x| x == v),
            Op::NotIn => !want.split(',').any(|x| x == v),
            Op::Between => match want.split_once('@') {
                Some((lo, hi)) => {
                    let lo = query_value(lo);
                    let hi = query_value(hi);
                    !v.is_empty() && compare(&v, &lo) != Ordering::Less && compare(&v, &hi) != Ordering::Greater
                }
                None => true,
            },
        }
    }
}

impl Query {
    pub(super) fn matches(&self, rec: &Map<String, Value>, def: &TableDef, lk: &mut Lookup) -> bool {
        self.groups.is_empty()
            || self.groups.iter().any(|g| g.iter().all(|clause| clause.iter().any(|c| c.matches(rec, def, lk))))
    }
}

#[cfg(test)]
mod split_tests {
    use super::split_terms;

    #[test]
    fn a_doubled_caret_is_a_literal_one() {
        assert_eq!(split_terms("a=1^b=2"), vec!["a=1", "b=2"]);
        assert_eq!(split_terms("last_name=O^^Brien^active=true"), vec!["last_name=O^Brien", "active=true"]);
        assert_eq!(split_terms("a=1^NQb=2"), vec!["a=1", "NQb=2"]);
    }
}
