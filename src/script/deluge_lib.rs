//! Deluge's standard-library vocabulary for scripts: `Map()` and `List()` with their Deluge
//! methods (`put`, `get`, `containKey`, `add`, `sublist`...), the text functions (`subString`,
//! `toUpperCase`, `getPrefix`, `equalsIgnoreCase`, `toList`...), number helpers (`round(x, n)`,
//! `toDecimal`) and `ifnull`, `isNull`, `randomNumber`, `getUUID`.
//!
//! Indexes are 0-based and ranges end-exclusive, as in Deluge. Deluge's names are
//! case-insensitive; Rhai's are not, so the documented camelCase spellings are registered (plus
//! `substring`, `subList`, `leftpad` and `rightpad`, which Deluge users also write).
//!
//! Null rule: a reader called on null (unit) gives what Deluge gives for null: `size` and
//! `length` 0, `isEmpty` and `isNull` true, the other tests (`contains`, `containKey`,
//! `startsWith`, `isNumber`, `matches`...) false, `indexOf` -1, `toList`, `keys` and `values` an
//! empty list, `toString` / `toText` `""`, and every other function null. Writers (`put`, `add`)
//! on null stay errors, as in Deluge.
//!
//! Names Rhai already has keep Rhai's behaviour where it agrees with Deluge (`contains`, `keys`,
//! `values`, `clear`, `remove(list, index)`, `remove(map, key)`, `get(map, key)`); `trim`,
//! `remove(text, part)` and `sort` still change the value in place, as in Rhai, and also return
//! the result, as in Deluge; `get(list, i)` raises an error for an index out of range, as in
//! Deluge, where Rhai's gives unit.

use std::cmp::Ordering;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT, ImmutableString, Map};

use super::builtins::{display, to_json};
use super::deluge_time::DelugeTime;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Registers the vocabulary on the engine (after Rhai's packages, so that the Deluge versions of
/// shared names win).
pub fn register(engine: &mut Engine) {
    register_map(engine);
    register_list(engine);
    register_text(engine);
    register_numbers(engine);
    register_values(engine);
    register_null_readers(engine);
}

fn register_map(engine: &mut Engine) {
    engine.register_fn("Map", Map::new);
    engine.register_fn("put", |m: &mut Map, key: Dynamic, value: Dynamic| {
        m.insert(key_text(&key).into(), value);
    });
    engine.register_fn("putAll", |m: &mut Map, other: Map| m.extend(other));
    engine.register_fn("getJSON", |m: &mut Map, key: ImmutableString| m.get(key.as_str()).cloned().unwrap_or_default());
    engine.register_fn("getJSON", |s: ImmutableString, key: ImmutableString| get_json(&s, &key));
    for name in ["containKey", "containsKey"] {
        engine.register_fn(name, |m: &mut Map, key: Dynamic| m.contains_key(key_text(&key).as_str()));
    }
    engine.register_fn("containValue", |m: &mut Map, v: Dynamic| m.values().any(|x| same(x, &v)));
    engine.register_fn("size", |m: &mut Map| m.len() as INT);
    engine.register_fn("toMap", |m: &mut Map| m.clone());
    engine.register_fn("toMap", |s: ImmutableString| to_map(&s));
}

fn register_list(engine: &mut Engine) {
    engine.register_fn("List", Array::new);
    engine.register_fn("add", |l: &mut Array, v: Dynamic| l.push(v));
    engine.register_fn("addAll", |l: &mut Array, other: Array| l.extend(other));
    engine.register_fn("get", |l: &mut Array, i: INT| list_get(l, i));
    engine.register_fn("indexOf", |l: &mut Array, v: Dynamic| index_of(l, &v));
    engine.register_fn("removeElement", |l: &mut Array, v: Dynamic| {
        if let Some(i) = l.iter().position(|x| same(x, &v)) {
            let _ = l.remove(i);
        }
    });
    engine.register_fn("size", |l: &mut Array| l.len() as INT);
    engine.register_fn("sort", |l: &mut Array| sort(l, true));
    engine.register_fn("sort", |l: &mut Array, ascending: bool| sort(l, ascending));
    engine.register_fn("distinct", |l: &mut Array| distinct(l));
    for name in ["sublist", "subList"] {
        engine.register_fn(name, |l: &mut Array, start: INT, end: INT| sublist(l, start, end));
        engine.register_fn(name, |l: &mut Array, start: INT| sublist(l, start, l.len() as INT));
    }
    engine.register_fn("toList", |l: &mut Array| l.clone());
    engine.register_fn("toList", |s: ImmutableString, sep: ImmutableString| to_list(&s, &sep));
    engine.register_fn("toList", |s: ImmutableString| to_list(&s, ","));
    engine.register_fn("toString", |l: &mut Array, sep: ImmutableString| super::builtins::join(l, &sep));
}

fn register_text(engine: &mut Engine) {
    engine.register_fn("length", |s: ImmutableString| s.chars().count() as INT);
    engine.register_fn("startsWith", |s: ImmutableString, p: ImmutableString| s.starts_with(p.as_str()));
    engine.register_fn("endsWith", |s: ImmutableString, p: ImmutableString| s.ends_with(p.as_str()));
    engine.register_fn("indexOf", |s: ImmutableString, p: ImmutableString| text_index_of(&s, &p));
    engine.register_fn("lastIndexOf", |s: ImmutableString, p: ImmutableString| text_last_index_of(&s, &p));
    for name in ["subString", "substring"] {
        engine.register_fn(name, |s: ImmutableString, start: INT, end: INT| sub_string(&s, start, end));
        engine.register_fn(name, |s: ImmutableString, start: INT| sub_string(&s, start, s.chars().count() as INT));
    }
    engine.register_fn("replaceAll", |s: ImmutableString, re: ImmutableString, with: ImmutableString| {
        replace(&s, &re, &with, true)
    });
    engine.register_fn("replaceFirst", |s: ImmutableString, re: ImmutableString, with: ImmutableString| {
        replace(&s, &re, &with, false)
    });
    // Rhai's `remove(text, part)` and `trim` change the text in place and give unit: these do
    // that too and give the new text, as Deluge's do.
    engine.register_fn("remove", |s: &mut ImmutableString, part: ImmutableString| -> ImmutableString {
        let t: ImmutableString = s.replace(part.as_str(), "").into();
        *s = t.clone();
        t
    });
    engine.register_fn("trim", |s: &mut ImmutableString| -> ImmutableString {
        let t: ImmutableString = s.trim().into();
        *s = t.clone();
        t
    });
    // Deluge's text is a value: the translator writes `x.trim()` and `x.remove(p)` on a variable
    // as these, which leave a text receiver as it was (a map or list still loses the key or
    // index, as in Deluge).
    engine.register_fn("deluge_trim", |v: Dynamic| -> Dynamic {
        match v.read_lock::<ImmutableString>() {
            Some(s) => Dynamic::from(s.trim().to_string()),
            None => v.clone(),
        }
    });
    engine.register_fn("deluge_remove", deluge_remove);
    engine.register_fn("equalsIgnoreCase", |s: ImmutableString, other: Dynamic| {
        other.read_lock::<ImmutableString>().is_some_and(|o| s.to_lowercase() == o.to_lowercase())
    });
    engine.register_fn("toUpperCase", |s: ImmutableString| s.to_uppercase());
    engine.register_fn("toLowerCase", |s: ImmutableString| s.to_lowercase());
    engine.register_fn("proper", |s: ImmutableString| proper(&s));
    engine.register_fn("getPrefix", |s: ImmutableString, sep: ImmutableString| -> Dynamic {
        s.split_once(sep.as_str()).map(|(a, _)| Dynamic::from(a.to_string())).unwrap_or_default()
    });
    engine.register_fn("getSuffix", |s: ImmutableString, sep: ImmutableString| -> Dynamic {
        s.split_once(sep.as_str()).map(|(_, b)| Dynamic::from(b.to_string())).unwrap_or_default()
    });
    for name in ["leftPad", "leftpad"] {
        engine.register_fn(name, |s: ImmutableString, n: INT| pad(&s, n, true));
    }
    for name in ["rightPad", "rightpad"] {
        engine.register_fn(name, |s: ImmutableString, n: INT| pad(&s, n, false));
    }
    engine.register_fn("matches", |s: ImmutableString, re: ImmutableString| -> Res<bool> {
        Ok(regex(&format!("^(?:{re})$"), "matches")?.is_match(&s))
    });
    engine.register_fn("getAlphaNumeric", |s: ImmutableString| {
        s.chars().filter(|c| c.is_alphanumeric()).collect::<String>()
    });
    engine.register_fn("isEmpty", |s: ImmutableString| s.is_empty());
    engine.register_fn("isEmpty", |l: &mut Array| l.is_empty());
    engine.register_fn("isEmpty", |m: &mut Map| m.is_empty());
}

fn register_numbers(engine: &mut Engine) {
    for name in ["toNumber", "toLong"] {
        engine
            .register_fn(name, |s: ImmutableString| s.trim().parse::<INT>().map(Dynamic::from_int).unwrap_or_default());
        engine.register_fn(name, |n: INT| n);
        engine.register_fn(name, |x: FLOAT| -> Dynamic {
            if x.is_finite() && x.abs() < 9.2e18 { Dynamic::from_int(x.trunc() as INT) } else { Dynamic::UNIT }
        });
    }
    engine
        .register_fn("toDecimal", |s: ImmutableString| parse_decimal(&s).map(Dynamic::from_float).unwrap_or_default());
    engine.register_fn("toDecimal", |n: INT| n as FLOAT);
    engine.register_fn("toDecimal", |x: FLOAT| x);
    engine.register_fn("isNumber", |s: ImmutableString| s.trim().parse::<INT>().is_ok());
    engine.register_fn("isNumber", |_: INT| true);
    engine.register_fn("isNumber", |_: FLOAT| true);
    engine.register_fn("isDecimal", |s: ImmutableString| parse_decimal(&s).is_some());
    engine.register_fn("isDecimal", |_: INT| true);
    engine.register_fn("isDecimal", |_: FLOAT| true);
    engine.register_fn("round", |x: FLOAT, digits: INT| round(x, digits));
    engine.register_fn("round", |n: INT, _digits: INT| n);
    engine.register_fn("round", |n: INT| n);
}

fn register_values(engine: &mut Engine) {
    for name in ["toString", "toText"] {
        engine.register_fn(name, |v: Dynamic| to_text(&v));
    }
    engine.register_fn("ifnull", |v: Dynamic, other: Dynamic| if v.is_unit() { other } else { v });
    engine.register_fn("isNull", |v: Dynamic| v.is_unit());
    engine.register_fn("randomNumber", random_number);
    engine.register_fn("getUUID", uuid_v4);
}

/// Null (unit) receivers: see the module doc for the rule.
fn register_null_readers(engine: &mut Engine) {
    for name in ["size", "length"] {
        engine.register_fn(name, |_: ()| 0 as INT);
    }
    engine.register_fn("isEmpty", |_: ()| true);
    for name in ["isNumber", "isDecimal"] {
        engine.register_fn(name, |_: ()| false);
    }
    for name in ["keys", "values", "toList"] {
        engine.register_fn(name, |_: ()| Array::new());
    }
    for name in ["toMap", "toUpperCase", "toLowerCase", "trim", "proper", "getAlphaNumeric", "toNumber", "toLong"] {
        engine.register_fn(name, |_: ()| ());
    }
    for name in ["toDecimal", "distinct", "abs", "round"] {
        engine.register_fn(name, |_: ()| ());
    }
    for name in [
        "contains",
        "containKey",
        "containsKey",
        "containValue",
        "startsWith",
        "endsWith",
        "matches",
        "equalsIgnoreCase",
    ] {
        engine.register_fn(name, |_: (), _: Dynamic| false);
    }
    engine.register_fn("indexOf", |_: (), _: Dynamic| -1 as INT);
    engine.register_fn("lastIndexOf", |_: (), _: Dynamic| -1 as INT);
    for name in ["get", "getJSON", "remove", "getPrefix", "getSuffix", "subString", "substring", "sublist"] {
        engine.register_fn(name, |_: (), _: Dynamic| ());
    }
    for name in ["leftPad", "leftpad", "rightPad", "rightpad", "toString", "round"] {
        engine.register_fn(name, |_: (), _: Dynamic| ());
    }
    for name in ["replaceAll", "replaceFirst", "subString", "substring", "sublist", "subList"] {
        engine.register_fn(name, |_: (), _: Dynamic, _: Dynamic| ());
    }
}

/// A map key as text: Deluge's keys are text, so `m.put(1, v)` is `m.put("1", v)`.
fn key_text(k: &Dynamic) -> String {
    display(k)
}

/// Parses JSON text into a script value within the data limits, or `None` for text that is not
/// JSON.
fn parse_json(s: &str) -> Option<Dynamic> {
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    let d = rhai::serde::to_dynamic(v).ok()?;
    super::check_data_size(&d).ok()?;
    Some(d)
}

/// `text.getJSON(key)`: the key's value in the JSON object the text holds; null when the text is
/// not a JSON object or has no such key.
pub fn get_json(s: &str, key: &str) -> Dynamic {
    parse_json(s).and_then(|d| d.try_cast::<Map>()).and_then(|m| m.get(key).cloned()).unwrap_or_default()
}

/// `text.toMap()`: the map a JSON object's text holds; other text is an error.
pub fn to_map(s: &str) -> Res<Map> {
    parse_json(s).and_then(|d| d.try_cast::<Map>()).ok_or_else(|| "toMap: the text is not a JSON object".into())
}

/// Whether two values are equal as Deluge compares them: numbers by value (`1 == 1.0`), text,
/// booleans and null as themselves, dates by instant (`'01-Jan-2024'` is
/// `'01-Jan-2024 00:00:00'`), lists and maps by their JSON.
pub fn same(a: &Dynamic, b: &Dynamic) -> bool {
    if let (Some(x), Some(y)) = (a.read_lock::<DelugeTime>(), b.read_lock::<DelugeTime>()) {
        return *x == *y;
    }
    if let (Ok(x), Ok(y)) = (a.as_int(), b.as_int()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.read_lock::<ImmutableString>(), b.read_lock::<ImmutableString>()) {
        return *x == *y;
    }
    if let (Ok(x), Ok(y)) = (a.as_bool(), b.as_bool()) {
        return x == y;
    }
    if a.is_unit() || b.is_unit() {
        return a.is_unit() && b.is_unit();
    }
    a.type_id() == b.type_id() && to_json(a) == to_json(b)
}

/// `x.remove(p)` as the translator writes it: text without every `p` (the receiver unchanged),
/// a map without key `p`, a list without the item at index `p`; the removed value (or the new
/// text) is the result, null for null.
pub fn deluge_remove(v: &mut Dynamic, p: Dynamic) -> Res<Dynamic> {
    if v.is_unit() {
        return Ok(Dynamic::UNIT);
    }
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return Ok(Dynamic::from(s.replace(key_text(&p).as_str(), "")));
    }
    if let Some(mut m) = v.write_lock::<Map>() {
        return Ok(m.remove(key_text(&p).as_str()).unwrap_or_default());
    }
    if let Some(mut l) = v.write_lock::<Array>() {
        let i = p.as_int().map_err(|t| {
            format!("remove: a list's item is removed by its index, not by {t}: use removeElement for a value")
        })?;
        return Ok(match usize::try_from(i) {
            Ok(i) if i < l.len() => l.remove(i),
            _ => Dynamic::UNIT,
        });
    }
    Err(format!("remove: {} has no remove: call it on text, a map or a list", v.type_name()).into())
}

fn number(v: &Dynamic) -> Option<FLOAT> {
    v.as_int().map(|n| n as FLOAT).ok().or_else(|| v.as_float().ok())
}

/// `list.get(i)`: the item at 0-based index i; an index out of range is an error, as in Deluge.
pub fn list_get(l: &[Dynamic], i: INT) -> Res<Dynamic> {
    usize::try_from(i).ok().and_then(|i| l.get(i)).cloned().ok_or_else(|| {
        format!("get({i}): there is no item at index {i} in a list of {} items (indexes start at 0)", l.len()).into()
    })
}

/// `list.indexOf(v)`: the 0-based index of the first item equal to v, -1 when there is none.
pub fn index_of(l: &[Dynamic], v: &Dynamic) -> INT {
    l.iter().position(|x| same(x, v)).map_or(-1, |i| i as INT)
}

/// The order `sort` puts values in: null, booleans, numbers (by value), dates (by instant), text,
/// then others (by their JSON).
fn order(a: &Dynamic, b: &Dynamic) -> Ordering {
    fn rank(v: &Dynamic) -> u8 {
        if v.is_unit() {
            0
        } else if v.is_bool() {
            1
        } else if v.is_int() || v.is_float() {
            2
        } else if v.is::<DelugeTime>() {
            3
        } else if v.is_string() {
            4
        } else {
            5
        }
    }
    if let (Some(x), Some(y)) = (a.read_lock::<DelugeTime>(), b.read_lock::<DelugeTime>()) {
        return (*x).cmp(&*y);
    }
    match (rank(a), rank(b)) {
        (1, 1) => a.as_bool().unwrap_or(false).cmp(&b.as_bool().unwrap_or(false)),
        (2, 2) => match (a.as_int(), b.as_int()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => number(a).unwrap_or(0.0).total_cmp(&number(b).unwrap_or(0.0)),
        },
        (4, 4) => display(a).cmp(&display(b)),
        (5, 5) => to_json(a).cmp(&to_json(b)),
        (x, y) => x.cmp(&y),
    }
}

/// `list.sort(ascending)`: sorts the list in place (numbers by value, text alphabetically) and
/// returns it, as Deluge does.
pub fn sort(l: &mut Array, ascending: bool) -> Array {
    l.sort_by(|a, b| if ascending { order(a, b) } else { order(b, a) });
    l.clone()
}

/// `list.distinct()`: a new list without repeated items, in the order they first appear.
pub fn distinct(l: &[Dynamic]) -> Array {
    let mut out: Array = Vec::new();
    for v in l {
        if !out.iter().any(|x| same(x, v)) {
            out.push(v.clone());
        }
    }
    out
}

/// Checks a 0-based, end-exclusive range against a length `n`.
fn range(what: &str, start: INT, end: INT, n: usize) -> Res<(usize, usize)> {
    match (usize::try_from(start), usize::try_from(end)) {
        (Ok(s), Ok(e)) if s <= e && e <= n => Ok((s, e)),
        _ => Err(format!(
            "{what}({start}, {end}): the range is outside 0 to {n} (indexes start at 0, the end is not included)"
        )
        .into()),
    }
}

/// `list.sublist(start, end)`: the items from index start up to, not including, end.
pub fn sublist(l: &[Dynamic], start: INT, end: INT) -> Res<Array> {
    let (s, e) = range("sublist", start, end, l.len())?;
    Ok(l[s..e].to_vec())
}

/// `text.toList(sep)`: the parts of the text between the separators (`"a,b".toList(",")` is
/// `["a", "b"]`); empty text is an empty list, and an empty separator splits into characters.
pub fn to_list(s: &str, sep: &str) -> Array {
    if s.is_empty() {
        return Array::new();
    }
    if sep.is_empty() {
        return s.chars().map(|c| Dynamic::from(c.to_string())).collect();
    }
    s.split(sep).map(|p| Dynamic::from(p.to_string())).collect()
}

/// `text.indexOf(part)`: the 0-based character index of part's first occurrence, -1 if none.
pub fn text_index_of(s: &str, part: &str) -> INT {
    s.find(part).map_or(-1, |b| s[..b].chars().count() as INT)
}

/// `text.lastIndexOf(part)`: the 0-based character index of part's last occurrence, -1 if none.
pub fn text_last_index_of(s: &str, part: &str) -> INT {
    s.rfind(part).map_or(-1, |b| s[..b].chars().count() as INT)
}

/// `text.subString(start, end)`: the characters from start up to, not including, end
/// (`"Zoho".subString(1, 3)` is `"oh"`); a range outside the text is an error.
pub fn sub_string(s: &str, start: INT, end: INT) -> Res<String> {
    let (a, b) = range("subString", start, end, s.chars().count())?;
    Ok(s.chars().skip(a).take(b - a).collect())
}

/// A compiled regular expression; the last few are kept per thread, because scripts call
/// `replaceAll` and `matches` in loops with the same pattern.
fn regex(re: &str, what: &str) -> Res<regex::Regex> {
    thread_local! {
        static CACHE: std::cell::RefCell<Vec<(String, regex::Regex)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    if let Some(r) = CACHE.with(|c| c.borrow().iter().find(|(p, _)| p == re).map(|(_, r)| r.clone())) {
        return Ok(r);
    }
    let r = regex::Regex::new(re)
        .map_err(|e| -> Box<EvalAltResult> { format!("{what}: `{re}` is not a regular expression ({e})").into() })?;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= 32 {
            c.remove(0);
        }
        c.push((re.to_string(), r.clone()));
    });
    Ok(r)
}

/// True when `re` matches only itself (no regular-expression syntax), so a plain text search
/// does the same work.
fn is_literal(re: &str) -> bool {
    !re.is_empty() && !re.contains(['\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$'])
}

/// `replaceAll(regex, with)` / `replaceFirst(regex, with)`: the text with every (or the first)
/// match of a regular expression replaced; `$1` in `with` is the first group.
pub fn replace(s: &str, re: &str, with: &str, all: bool) -> Res<String> {
    let what = if all { "replaceAll" } else { "replaceFirst" };
    let out = if is_literal(re) && !with.contains('$') {
        if all { s.replace(re, with) } else { s.replacen(re, with, 1) }
    } else {
        let r = regex(re, what)?;
        let out = if all { r.replace_all(s, with) } else { r.replace(s, with) };
        out.into_owned()
    };
    if out.len() > super::MAX_STRING_SIZE {
        return Err(format!("{what}: the result is longer than a script value may be").into());
    }
    Ok(out)
}

/// `text.proper()`: each word's first letter upper-case, the rest lower-case.
pub fn proper(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}

/// `leftpad(n)` / `rightpad(n)`: the text with spaces before (or after) it up to n characters;
/// text already that long is unchanged.
pub fn pad(s: &str, n: INT, left: bool) -> Res<String> {
    let len = s.chars().count();
    let n = usize::try_from(n).unwrap_or(0);
    if n > super::MAX_STRING_SIZE {
        return Err(format!("pad: {n} characters is longer than a script value may be").into());
    }
    let fill = " ".repeat(n.saturating_sub(len));
    Ok(if left { fill + s } else { s.to_string() + fill.as_str() })
}

fn parse_decimal(s: &str) -> Option<FLOAT> {
    let t = s.trim();
    let ok = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    t.parse::<FLOAT>().ok().filter(|x| ok && x.is_finite())
}

/// `round(x, digits)`: x rounded to `digits` decimal places, half away from zero on the decimal
/// digits as written (`round(2.345, 2)` is 2.35, `round(2.5, 0)` is 3.0), as Deluge does.
pub fn round(x: FLOAT, digits: INT) -> Res<FLOAT> {
    if digits < 0 {
        return Err(format!("round: {digits} decimal places: give 0 or more").into());
    }
    if !x.is_finite() {
        return Ok(x);
    }
    let text = x.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let keep = usize::try_from(digits).unwrap_or(usize::MAX);
    if frac.len() <= keep {
        return Ok(x);
    }
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes().take(keep)).map(|b| b - b'0').collect();
    if frac.as_bytes()[keep] >= b'5' {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - keep;
    let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    let rounded: FLOAT = format!("{}.{}", &text[..split], &text[split..])
        .parse()
        .map_err(|_| Box::<EvalAltResult>::from("round: the number cannot be rounded"))?;
    Ok(if x < 0.0 { -rounded } else { rounded })
}

/// `toString` / `toText`: text as it is, null as `""`, a list as its items joined by commas, a
/// map as JSON, anything else as Rhai writes it.
pub fn to_text(v: &Dynamic) -> String {
    if v.is_unit() {
        return String::new();
    }
    if let Some(l) = v.read_lock::<Array>() {
        return super::builtins::join(&l, ",");
    }
    if v.is_map() {
        return to_json(v);
    }
    display(v)
}

fn random_u64() -> Res<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| format!("no random numbers: {e}"))?;
    Ok(u64::from_le_bytes(b))
}

/// `randomNumber(a, b)`: a random whole number from a to b, both included.
pub fn random_number(a: INT, b: INT) -> Res<INT> {
    if a > b {
        return Err(format!("randomNumber({a}, {b}): the first number must not be more than the second").into());
    }
    let span = (b as i128 - a as i128 + 1) as u128;
    let r = (u128::from(random_u64()?) * span) >> 64;
    Ok((a as i128 + r as i128) as INT)
}

/// `getUUID()`: a random (version 4) UUID, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
pub fn uuid_v4() -> Res<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| format!("no random numbers: {e}"))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::script::test_support::check;

    #[test]
    fn maps() {
        check(&[
            (r#"let m = Map(); m.put("k", 1); m.put(2, "x"); m"#, r#"{"2":"x","k":1}"#),
            (r#"let m = Map(); m.put("k", 1); m.get("k")"#, "1"),
            (r#"Map().get("x")"#, "null"),
            (r#"let m = Map(); m.putAll(#{a: 1, b: 2}); [m.size(), m.isEmpty(), Map().isEmpty()]"#, "[2,false,true]"),
            (
                r#"let m = #{a: 1}; [m.containKey("a"), m.containsKey("b"), m.containValue(1), m.containValue(1.0), m.containValue("1")]"#,
                "[true,false,true,true,false]",
            ),
            (r#"let m = #{a: 1, b: 2}; [m.keys(), m.values()]"#, r#"[["a","b"],[1,2]]"#),
            (r#"let m = #{a: 1, b: 2}; m.remove("a"); m.toString()"#, r#"{"b":2}"#),
            (r#"let m = #{a: 1}; m.clear(); m.size()"#, "0"),
            (r#"let m = "{\"a\": {\"b\": [1, 2]}}".toMap(); m.a.b"#, "[1,2]"),
            (
                r#"[#{a: #{b: 1}}.getJSON("a"), "{\"a\":2}".getJSON("a"), "nope".getJSON("a"), #{}.getJSON("x")]"#,
                r#"[{"b":1},2,null,null]"#,
            ),
            (r#""[1]".toMap()"#, "error: toMap: the text is not a JSON object"),
        ]);
    }

    #[test]
    fn lists() {
        check(&[
            (r#"let l = List(); l.add("a"); l.addAll(["b", "c"]); [l.get(0), l.get(2), l.size()]"#, r#"["a","c",3]"#),
            ("List().get(3)", "error: get(3): there is no item at index 3 in a list of 0 items (indexes start at 0)"),
            (
                "[1, 2].get(-1)",
                "error: get(-1): there is no item at index -1 in a list of 2 items (indexes start at 0)",
            ),
            (
                r#"let l = ["a", "b"]; [l.contains("b"), l.contains("z"), l.indexOf("b"), l.indexOf("z")]"#,
                "[true,false,1,-1]",
            ),
            (r#"let l = ["a", "b", "a"]; l.remove(0); l"#, r#"["b","a"]"#),
            (r#"let l = ["a", "b", "a"]; l.removeElement("a"); l"#, r#"["b","a"]"#),
            ("[3, 1, 2.5].sort(true)", "[1,2.5,3]"),
            ("[3, 1, 2].sort(false)", "[3,2,1]"),
            (r#"let l = ["b", "a"]; l.sort(); l"#, r#"["a","b"]"#),
            // Dates by instant, not by their text.
            (
                r#"let l = [deluge_date("01-Mar-2024"), deluge_date("15-Jan-2024 09:00:00"), deluge_date("01-Feb-2024")]; l.sort()"#,
                r#"["15-Jan-2024 09:00:00","01-Feb-2024","01-Mar-2024"]"#,
            ),
            (
                r#"let l = [deluge_date("01-Jan-2024"), deluge_date("02-Jan-2024"), deluge_date("01-Jan-2024 00:00:00")]; [l.distinct().len(), l.indexOf(deluge_date("02-Jan-2024 00:00:00"))]"#,
                "[2,1]",
            ),
            // The translator's text-as-a-value forms.
            (r#"let s = " a "; let t = deluge_trim(s); [s, t, deluge_trim(())]"#, r#"[" a ","a",null]"#),
            (r#"let s = "a-b-c"; let t = s.deluge_remove("-"); [s, t]"#, r#"["a-b-c","abc"]"#),
            (r#"let m = #{a: 1, b: 2}; let v = m.deluge_remove("a"); [v, m]"#, r#"[1,{"b":2}]"#),
            (r#"let l = [1, 2, 3]; let v = l.deluge_remove(0); [v, l, l.deluge_remove(9)]"#, "[1,[2,3],null]"),
            (r#"[1, "1", 1, 2, "1"].distinct()"#, r#"[1,"1",2]"#),
            ("[0, 1, 2, 3].sublist(1, 3)", "[1,2]"),
            (
                "[0, 1].sublist(1, 3)",
                "error: sublist(1, 3): the range is outside 0 to 2 (indexes start at 0, the end is not included)",
            ),
            (r#""a,b,c".toList(",")"#, r#"["a","b","c"]"#),
            (r#"["a;b".toList(";"), "x".toList(), "".toList(",")]"#, r#"[["a","b"],["x"],[]]"#),
            (r#"[["a", 1].toString("|"), ["a", 1].toString(), List().isEmpty()]"#, r#"["a|1","a,1",true]"#),
        ]);
    }

    #[test]
    fn texts() {
        check(&[
            (
                r#"let s = "Zoho Creator"; [s.length(), s.contains("Cre"), s.startsWith("Zo"), s.endsWith("tor")]"#,
                "[12,true,true,true]",
            ),
            (
                r#"let s = "Zoho Creator"; [s.indexOf("o"), s.lastIndexOf("o"), s.indexOf("x"), "éab".indexOf("b")]"#,
                "[1,10,-1,2]",
            ),
            (
                r#"let s = "Zoho Creator"; [s.subString(0, 4), s.substring(5), s.subString(2, 2)]"#,
                r#"["Zoho","Creator",""]"#,
            ),
            (
                r#""Zoho".subString(2, 9)"#,
                "error: subString(2, 9): the range is outside 0 to 4 (indexes start at 0, the end is not included)",
            ),
            (
                r##"["a1b22c".replaceAll("[0-9]+", "#"), "a1b22c".replaceFirst("[0-9]+", "#"), "ab".replaceAll("(a)(b)", "$2$1")]"##,
                r##"["a#b#c","a#b22c","ba"]"##,
            ),
            (
                r#""a".replaceAll("(", "")"#,
                "error: replaceAll: `(` is not a regular expression (regex parse error:\n    (\n    ^\nerror: unclosed group)",
            ),
            (r#"let s = "a-b-c"; let t = s.remove("-"); [s, t]"#, r#"["abc","abc"]"#),
            (r#"let s = "  x  "; let t = s.trim(); [s, t]"#, r#"["x","x"]"#),
            (
                r#"["aBc".toUpperCase(), "aBc".toLowerCase(), "hello wORLD o'neil".proper()]"#,
                r#"["ABC","abc","Hello World O'Neil"]"#,
            ),
            (
                r##"let s = "Zoho Creator, apps"; [s.getPrefix(","), s.getSuffix("Creator"), s.getPrefix("#"), s.getSuffix("#")]"##,
                r##"["Zoho Creator",", apps",null,null]"##,
            ),
            (r#"["ab".leftpad(4), "ab".rightPad(4), "abc".leftPad(2)]"#, r#"["  ab","ab  ","abc"]"#),
            (
                r#"[" 42 ".toNumber(), "42".toLong(), "4x".toNumber(), "1.5".toNumber(), 7.9.toLong()]"#,
                "[42,42,null,null,7]",
            ),
            (r#"["1.5".toDecimal(), "x".toDecimal(), 2.toDecimal(), "inf".toDecimal()]"#, "[1.5,null,2.0,null]"),
            (
                r#"["12".isNumber(), "1.2".isNumber(), "x".isNumber(), "1.2".isDecimal(), 3.isNumber()]"#,
                "[true,false,false,true,true]",
            ),
            (
                r#"["".isEmpty(), " ".isEmpty(), "abc123".matches("[a-z]+[0-9]+"), "abc123x".matches("[a-z]+[0-9]+")]"#,
                "[true,false,true,false]",
            ),
            (
                r#"["a-b_c 1!".getAlphaNumeric(), 5.toText(), "x".toText(), 2.5.toString()]"#,
                r#"["abc1","5","x","2.5"]"#,
            ),
        ]);
    }

    #[test]
    fn numbers_and_values() {
        check(&[
            (
                "[round(2.5), round(-2.5), 2.5.round(0), round(2.345, 2), round(1.005, 2), round(-1.5, 0), round(9.99, 1)]",
                "[3.0,-3.0,3.0,2.35,1.01,-2.0,10.0]",
            ),
            ("[round(7), round(7, 2), round(1.25, 5), (-3).abs(), 2.5.abs()]", "[7,7,1.25,3,2.5]"),
            ("round(1.5, -1)", "error: round: -1 decimal places: give 0 or more"),
            (r#"[ifnull((), "d"), ifnull(0, "d"), isNull(()), isNull(""), 5.toString()]"#, r#"["d",0,true,false,"5"]"#),
            ("let r = randomNumber(3, 5); r >= 3 && r <= 5", "true"),
            ("randomNumber(1, 1)", "1"),
            ("randomNumber(5, 1)", "error: randomNumber(5, 1): the first number must not be more than the second"),
            ("let u = getUUID(); [u.len(), u.subString(14, 15), u == getUUID()]", r#"[36,"4",false]"#),
        ]);
        let wide = random_number(INT::MIN, INT::MAX);
        assert!(wide.is_ok());
    }

    #[test]
    fn null_receivers_give_deluge_nulls_not_errors() {
        check(&[
            ("let x = (); [x.size(), x.length(), x.isEmpty(), x.isNull(), x.isNumber()]", "[0,0,true,true,false]"),
            (
                r#"let x = (); [x.contains("a"), x.containKey("a"), x.startsWith("a"), x.indexOf("a"), x.matches(".")]"#,
                "[false,false,false,-1,false]",
            ),
            (
                r#"let x = (); [x.get("a"), x.get(0), x.getJSON("a"), x.subString(0, 1), x.toUpperCase(), x.trim(), x.toNumber(), x.getPrefix(",")]"#,
                "[null,null,null,null,null,null,null,null]",
            ),
            (
                r#"let x = (); [x.toList(), x.keys(), x.toString(), x.toText(), x.replaceAll("a", "b"), x.round(2)]"#,
                r#"[[],[],"","",null,null]"#,
            ),
        ]);
    }

    #[test]
    fn rhai_names_keep_working() {
        check(&[
            (r#"let m = #{a: 1, b: 2}; let v = m.remove("a"); remove(m, "b"); [v, m.len(), m.keys()]"#, "[1,0,[]]"),
            (
                "let a = [1, 2]; a.push(3); [a.len(), a.contains(2), a.index_of(3), a.remove(0), a]",
                "[3,true,2,1,[2,3]]",
            ),
            (
                r#"let s = "abc"; [s.len(), s.contains("b"), s.sub_string(1, 1), s.to_upper(), s.index_of("c")]"#,
                r#"[3,true,"b","ABC",2]"#,
            ),
            (r#"let m = #{}; m.set("a", 1); [m.get("a"), m.get("zz"), [1, 2].get(1), 2.5.round()]"#, "[1,null,2,3.0]"),
            ("let a = [3, 1]; a.sort(|x, y| y - x); a", "[3,1]"),
        ]);
    }
}
