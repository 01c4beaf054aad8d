//! Deluge-like helpers for scripts: `info`, `parse_json`, `to_json`, and JSON conversion of
//! script values.

use rhai::{Dynamic, Engine, ImmutableString};

/// Registers the helpers.
pub fn register(engine: &mut Engine) {
    engine.register_fn("info", |v: Dynamic| eprintln!("{}", display(&v)));
    engine.register_fn("to_json", |v: Dynamic| to_json(&v));
    engine.register_fn("parse_json", |s: ImmutableString| -> Result<Dynamic, Box<rhai::EvalAltResult>> {
        let v: serde_json::Value =
            serde_json::from_str(&s).map_err(|e| format!("parse_json: the text is not JSON ({e})"))?;
        rhai::serde::to_dynamic(v)
    });
}

/// A value as `info` shows it: strings as they are, everything else as JSON.
pub fn display(v: &Dynamic) -> String {
    match v.read_lock::<ImmutableString>() {
        Some(s) => s.to_string(),
        None => to_json(v),
    }
}

/// A value as a `serde_json::Value` (unit becomes null).
pub fn to_json_value(v: &Dynamic) -> Result<serde_json::Value, String> {
    if v.is_unit() {
        return Ok(serde_json::Value::Null);
    }
    rhai::serde::from_dynamic::<serde_json::Value>(v).map_err(|e| e.to_string())
}

/// A value as JSON text; values JSON cannot hold (functions, ranges) as their Rhai text.
pub fn to_json(v: &Dynamic) -> String {
    match to_json_value(v) {
        Ok(j) => j.to_string(),
        Err(_) => serde_json::Value::String(v.to_string()).to_string(),
    }
}
