//! Search: the `criteria` expression parser (`((Field:op:value)and(...))`, escapes, limits) and
//! the `email`, `phone` and `word` filters, with their matching rules.

use super::*;

/// What a search (or a filtered count) selects.
pub(super) enum Filter {
    Criteria(Crit),
    Email(String),
    /// The phone's digits.
    Phone(String),
    /// Lower case.
    Word(String),
}

impl Filter {
    /// From `criteria`, else `email`, else `phone`, else `word`; `Ok(None)` when none is given.
    pub(super) fn from_params(p: &Params, max_criteria: usize) -> Result<Option<Filter>, Refused> {
        if let Some(c) = p.get("criteria") {
            let crit = parse_criteria(c).ok_or_else(|| Box::new(invalid_query()))?;
            if crit.conditions() > max_criteria {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "LIMIT_EXCEEDED",
                    "the number of criteria given exceeds the limit",
                    json!({"limit": max_criteria, "param_name": "criteria"}),
                )));
            }
            return Ok(Some(Filter::Criteria(crit)));
        }
        if let Some(e) = p.get("email") {
            return Ok(Some(Filter::Email(e.trim().to_lowercase())));
        }
        if let Some(ph) = p.get("phone") {
            let digits: String = ph.chars().filter(char::is_ascii_digit).collect();
            if digits.is_empty() {
                return Err(Box::new(bad_param("phone")));
            }
            return Ok(Some(Filter::Phone(digits)));
        }
        if let Some(w) = p.get("word") {
            return Ok(Some(Filter::Word(w.trim().to_lowercase())));
        }
        Ok(None)
    }

    pub(super) fn matches(&self, rec: &Map<String, Value>) -> bool {
        match self {
            Filter::Criteria(c) => c.matches(rec),
            Filter::Email(e) => ["Email", "Secondary_Email"]
                .iter()
                .any(|f| rec.get(*f).and_then(Value::as_str).is_some_and(|v| v.trim().to_lowercase() == *e)),
            Filter::Phone(digits) => {
                ["Phone", "Mobile", "Home_Phone", "Other_Phone", "Asst_Phone", "Fax"].iter().any(|f| {
                    let Some(v) = rec.get(*f).and_then(Value::as_str) else { return false };
                    let d: String = v.chars().filter(char::is_ascii_digit).collect();
                    !d.is_empty() && (d == *digits || (digits.len() >= 7 && d.ends_with(digits.as_str())))
                })
            }
            Filter::Word(w) => rec.iter().any(|(k, v)| {
                k != "id"
                    && match v {
                        Value::String(s) => s.to_lowercase().contains(w.as_str()),
                        Value::Object(o) => {
                            o.get("name").and_then(Value::as_str).is_some_and(|s| s.to_lowercase().contains(w.as_str()))
                        }
                        _ => false,
                    }
            }),
        }
    }
}

#[derive(Debug, PartialEq)]
pub(super) enum Crit {
    Cond(Cond),
    And(Vec<Crit>),
    Or(Vec<Crit>),
}

#[derive(Debug, PartialEq)]
pub(super) struct Cond {
    pub(super) field: String,
    pub(super) op: CritOp,
    pub(super) values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CritOp {
    Equals,
    NotEqual,
    StartsWith,
    In,
    GreaterEqual,
    GreaterThan,
    LessEqual,
    LessThan,
    Between,
}

impl Crit {
    pub(super) fn conditions(&self) -> usize {
        match self {
            Crit::Cond(_) => 1,
            Crit::And(v) | Crit::Or(v) => v.iter().map(Crit::conditions).sum(),
        }
    }

    pub(super) fn matches(&self, rec: &Map<String, Value>) -> bool {
        match self {
            Crit::Cond(c) => c.matches(rec),
            Crit::And(v) => v.iter().all(|c| c.matches(rec)),
            Crit::Or(v) => v.iter().any(|c| c.matches(rec)),
        }
    }
}

/// Parses `((A:equals:x)and(B:in:y,z))`: conditions in parentheses joined by `and`/`or` (`and`
/// binds tighter), groups nested in parentheses; in values, `\(`, `\)`, `\,` and `\\` are literal.
/// A lone condition may omit its parentheses.
pub(super) fn parse_criteria(s: &str) -> Option<Crit> {
    let chars: Vec<char> = s.trim().chars().collect();
    if chars.first() != Some(&'(') {
        return parse_condition(&chars);
    }
    let mut pos = 0;
    let crit = parse_expr(&chars, &mut pos)?;
    skip_ws(&chars, &mut pos);
    (pos == chars.len()).then_some(crit)
}

pub(super) fn skip_ws(c: &[char], pos: &mut usize) {
    while *pos < c.len() && c[*pos].is_whitespace() {
        *pos += 1;
    }
}

pub(super) fn parse_expr(c: &[char], pos: &mut usize) -> Option<Crit> {
    // Or of Ands.
    let mut ors: Vec<Crit> = Vec::new();
    let mut ands: Vec<Crit> = vec![parse_term(c, pos)?];
    loop {
        skip_ws(c, pos);
        if *pos >= c.len() || c[*pos] == ')' {
            break;
        }
        let start = *pos;
        while *pos < c.len() && c[*pos].is_ascii_alphabetic() {
            *pos += 1;
        }
        let word: String = c[start..*pos].iter().collect::<String>().to_ascii_lowercase();
        let term = parse_term(c, pos)?;
        match word.as_str() {
            "and" => ands.push(term),
            "or" => {
                ors.push(collapse(std::mem::take(&mut ands), Crit::And));
                ands.push(term);
            }
            _ => return None,
        }
    }
    ors.push(collapse(ands, Crit::And));
    Some(collapse(ors, Crit::Or))
}

pub(super) fn collapse(mut v: Vec<Crit>, make: fn(Vec<Crit>) -> Crit) -> Crit {
    if v.len() == 1 { v.remove(0) } else { make(v) }
}

pub(super) fn parse_term(c: &[char], pos: &mut usize) -> Option<Crit> {
    skip_ws(c, pos);
    if c.get(*pos) != Some(&'(') {
        return None;
    }
    *pos += 1;
    skip_ws(c, pos);
    if c.get(*pos) == Some(&'(') {
        let inner = parse_expr(c, pos)?;
        skip_ws(c, pos);
        if c.get(*pos) != Some(&')') {
            return None;
        }
        *pos += 1;
        return Some(inner);
    }
    let start = *pos;
    while *pos < c.len() && c[*pos] != ')' {
        if c[*pos] == '\\' {
            *pos += 1;
        } else if c[*pos] == '(' {
            return None;
        }
        *pos += 1;
    }
    if *pos >= c.len() {
        return None;
    }
    let cond = parse_condition(&c[start..*pos])?;
    *pos += 1;
    Some(cond)
}

/// `Field:operator:value` (escapes still in the value).
pub(super) fn parse_condition(c: &[char]) -> Option<Crit> {
    let s: String = c.iter().collect();
    let mut parts = s.splitn(3, ':');
    let (field, op, value) = (parts.next()?.trim(), parts.next()?.trim(), parts.next()?);
    if !valid_api_name(field) {
        return None;
    }
    let op = match op.to_ascii_lowercase().as_str() {
        "equals" => CritOp::Equals,
        "not_equal" => CritOp::NotEqual,
        "starts_with" => CritOp::StartsWith,
        "in" => CritOp::In,
        "greater_equal" => CritOp::GreaterEqual,
        "greater_than" => CritOp::GreaterThan,
        "less_equal" => CritOp::LessEqual,
        "less_than" => CritOp::LessThan,
        "between" => CritOp::Between,
        _ => return None,
    };
    let values: Vec<String> = match op {
        CritOp::In | CritOp::Between => split_unescaped(value).iter().map(|v| unescape(v.trim())).collect(),
        _ => vec![unescape(value)],
    };
    let ok = match op {
        CritOp::Between => values.len() == 2 && values.iter().all(|v| !v.is_empty()),
        CritOp::In => values.iter().all(|v| !v.is_empty()),
        _ => !values[0].is_empty(),
    };
    ok.then(|| Crit::Cond(Cond { field: field.to_string(), op, values }))
}

/// Splits at commas that are not escaped, keeping the escapes.
pub(super) fn split_unescaped(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                let last = out.len() - 1;
                out[last].push('\\');
                if let Some(n) = chars.next() {
                    out[last].push(n);
                }
            }
            ',' => out.push(String::new()),
            _ => {
                let last = out.len() - 1;
                out[last].push(ch);
            }
        }
    }
    out
}

pub(super) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(ch);
        }
    }
    out
}

impl Cond {
    pub(super) fn matches(&self, rec: &Map<String, Value>) -> bool {
        let v = rec.get(&self.field).filter(|v| !v.is_null());
        let empty_wanted = self.values.first().is_some_and(|x| x == "${EMPTY}");
        match self.op {
            CritOp::Equals if empty_wanted => is_empty_value(v),
            CritOp::NotEqual if empty_wanted => !is_empty_value(v),
            CritOp::Equals => v.is_some_and(|v| equals(&self.field, v, &self.values[0])),
            CritOp::NotEqual => !v.is_some_and(|v| equals(&self.field, v, &self.values[0])),
            CritOp::In => v.is_some_and(|v| self.values.iter().any(|x| equals(&self.field, v, x))),
            CritOp::StartsWith => v.is_some_and(|v| {
                scalars(v).iter().any(|s| s.to_lowercase().starts_with(&self.values[0].to_lowercase()))
            }),
            CritOp::GreaterEqual => self.ordered(v, 0, |o| o != Ordering::Less),
            CritOp::GreaterThan => self.ordered(v, 0, |o| o == Ordering::Greater),
            CritOp::LessEqual => self.ordered(v, 0, |o| o != Ordering::Greater),
            CritOp::LessThan => self.ordered(v, 0, |o| o == Ordering::Less),
            CritOp::Between => {
                self.ordered(v, 0, |o| o != Ordering::Less) && self.ordered(v, 1, |o| o != Ordering::Greater)
            }
        }
    }

    pub(super) fn ordered(&self, v: Option<&Value>, i: usize, ok: impl Fn(Ordering) -> bool) -> bool {
        v.is_some_and(|v| scalars(v).iter().any(|s| compare(&self.field, s, &self.values[i]).is_some_and(&ok)))
    }
}

/// The comparable texts of a value: itself, or a lookup's `id` and `name`, or an array's elements.
pub(super) fn scalars(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Object(o) => ["id", "name"].iter().filter_map(|k| o.get(*k)).flat_map(scalars).collect(),
        Value::Array(a) => a.iter().flat_map(scalars).collect(),
        Value::Null => Vec::new(),
    }
}

pub(super) fn equals(field: &str, v: &Value, want: &str) -> bool {
    scalars(v).iter().any(|s| compare(field, s, want) == Some(Ordering::Equal))
}

/// Date-times as instants, integers and decimals as numbers, anything else as case-insensitive text.
pub(super) fn compare(field: &str, a: &str, b: &str) -> Option<Ordering> {
    if (field.ends_with("_Time") || (a.len() >= 19 && b.len() >= 19))
        && let (Some(x), Some(y)) = (parse_time(a), parse_time(b))
    {
        return Some(x.cmp(&y));
    }
    if let (Ok(x), Ok(y)) = (a.trim().parse::<i128>(), b.trim().parse::<i128>()) {
        return Some(x.cmp(&y));
    }
    if let (Ok(x), Ok(y)) = (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        return x.partial_cmp(&y);
    }
    Some(a.to_lowercase().cmp(&b.to_lowercase()))
}
