//! Deluge-like helpers for scripts: `info`, `parse_json`, `to_json`, `join`, the time formats Zoho
//! and ServiceNow use, URL, Zoho-criteria and ServiceNow-query escaping, and JSON conversion of
//! script values.
//! (`state_get` / `state_set` need the vault and live in [`super::state`].)

use rhai::{Dynamic, Engine, ImmutableString};

/// Registers the helpers.
pub fn register(engine: &mut Engine) {
    engine.register_fn("info", |v: Dynamic| eprintln!("{}", display(&v)));
    engine.register_fn("to_json", |v: Dynamic| to_json(&v));
    // Rhai's own `to_json` for maps writes infinity as `inf`, which is not JSON: this one wins.
    engine.register_fn("to_json", |m: &mut rhai::Map| to_json(&Dynamic::from_map(m.clone())));
    engine.register_fn("to_json", |a: &mut rhai::Array| to_json(&Dynamic::from_array(a.clone())));
    engine.register_fn("zoho_now", || zoho_time(chrono::Local::now().fixed_offset()));
    engine.register_fn("utc_now", || chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string());
    engine.register_fn("url_encode", |s: ImmutableString| url_encode(&s));
    engine.register_fn("form_encode", |s: ImmutableString| {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
    });
    engine.register_fn("url_decode", |s: ImmutableString| {
        percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
    });
    engine.register_fn("criteria_escape", |s: ImmutableString| criteria_escape(&s));
    engine.register_fn("sn_query_escape", |s: ImmutableString| sn_query_escape(&s));
    engine.register_fn("join", |list: &mut rhai::Array, sep: ImmutableString| join(list, &sep));
    engine.register_fn(
        "parse_json",
        |ctx: rhai::NativeCallContext, s: ImmutableString| -> Result<Dynamic, Box<rhai::EvalAltResult>> {
            let v: serde_json::Value =
                serde_json::from_str(&s).map_err(|e| format!("parse_json: the text is not JSON ({e})"))?;
            let d = rhai::serde::to_dynamic(v)?;
            if let Err(what) = super::check_data_size(&d) {
                let e = super::invoke::too_large(format!(
                    "the JSON given to parse_json has {what}: parse a smaller part of it"
                ));
                return Err(Box::new(rhai::EvalAltResult::ErrorRuntime(
                    Dynamic::from_map(super::invoke::error_map(&e)),
                    ctx.call_position(),
                )));
            }
            Ok(d)
        },
    );
}

/// A value as `info` shows it: strings as they are, Deluge dates in Deluge's default form
/// (`01-Jan-2024`), everything else as JSON.
pub fn display(v: &Dynamic) -> String {
    if let Some(d) = v.read_lock::<super::deluge_time::DelugeTime>() {
        return d.to_text();
    }
    match v.read_lock::<ImmutableString>() {
        Some(s) => s.to_string(),
        None => to_json(v),
    }
}

/// A value as a `serde_json::Value` (unit becomes null; so do infinite and NaN numbers, which
/// JSON cannot write; Deluge dates become their default text).
pub fn to_json_value(v: &Dynamic) -> Result<serde_json::Value, Box<rhai::EvalAltResult>> {
    if v.is_unit() {
        return Ok(serde_json::Value::Null);
    }
    rhai::serde::from_dynamic::<serde_json::Value>(v).or_else(|e| match super::deluge_time::dates_as_text(v) {
        Some(t) => rhai::serde::from_dynamic::<serde_json::Value>(&t),
        None => Err(e),
    })
}

/// A value as JSON text; values JSON cannot hold (functions, ranges) as their Rhai text.
pub fn to_json(v: &Dynamic) -> String {
    match to_json_value(v) {
        Ok(j) => j.to_string(),
        Err(_) => serde_json::Value::String(v.to_string()).to_string(),
    }
}

/// A time as Zoho CRM writes it: `2023-05-10T01:10:47-07:00`.
pub fn zoho_time(t: chrono::DateTime<chrono::FixedOffset>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// RFC 3986 percent-encoding (space as `%20`), like Deluge's `zoho.encryption.urlEncode`.
pub fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Escapes a value for a Zoho CRM search `criteria`: `(`, `)` and `,` get a backslash (the
/// request's parameters are URL-encoded when sent).
pub fn criteria_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '(' | ')' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes a value for a ServiceNow encoded query (`sysparm_query`): `^` separates terms (`^OR`,
/// `^NQ`), so a literal one is doubled (`^^`); line breaks, which end a query, become spaces.
pub fn sn_query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '^' => out.push_str("^^"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push(' ');
            }
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The items of a list as text, `sep` between them: strings as they are, other values as
/// `info` shows them (JSON).
pub fn join(list: &[Dynamic], sep: &str) -> String {
    let mut out = String::new();
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&display(item));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_escapes() {
        let t = chrono::DateTime::parse_from_rfc3339("2023-05-10T01:10:47-07:00").unwrap();
        assert_eq!(zoho_time(t), "2023-05-10T01:10:47-07:00");
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(criteria_escape("Smith (Jr), Inc"), "Smith \\(Jr\\)\\, Inc");
        assert_eq!(sn_query_escape("a^ORb=c\r\nd\ne"), "a^^ORb=c d e");
        let list = [Dynamic::from("a"), Dynamic::from_int(1), Dynamic::UNIT];
        assert_eq!(join(&list, ", "), "a, 1, null");
    }
}
