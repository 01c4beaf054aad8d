//! Running Deluge files (`linkrun run FILE.dg`, also `.deluge`): the file is parsed and
//! translated to Rhai by the `deluge` crate (the same translation `linkrun port` writes), then
//! runs on the same engine as any script, with the same limits, host rules and secrets handling.
//!
//! Before anything runs:
//! - a syntax error, an unsupported task (`zoho.writer.*`, `sendmail`) or an undefined variable in
//!   a function is reported like the parser reports it (`file:line:col`, the line quoted), exit 1;
//! - every input (a header parameter, a free variable of a bare body) must be given by
//!   `--arg NAME=VALUE`, `--arg-json` or a key of the `--input` map, converted to the parameter's
//!   type (`Int`, `Long`, `Decimal`, `Bool`, `Map`, `List`, text otherwise); a missing or
//!   unconvertible one is exit 2 naming it and its line.
//!
//! While it runs, a Rhai position is reported as the Deluge statement it came from, with the
//! Deluge line quoted. In `catch (e)`, `e` is a map with Deluge's `message` and `lineNo`.
//! `+` between text and a map or a list writes the collection as JSON, as Deluge does.

use std::path::Path;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FLOAT, INT, ImmutableString, Map, Position};

use super::ScriptError;
use super::builtins::{display, to_json};

/// File extensions run as Deluge.
pub const EXTENSIONS: &[&str] = &["dg", "deluge"];

/// True when `path` names a Deluge file by its extension.
pub fn is_deluge_path(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// A Deluge file translated to Rhai, with what maps the Rhai back to it.
#[derive(Debug, Clone)]
pub struct DelugeSource {
    /// The file's name in messages.
    pub name: String,
    /// The Deluge text.
    pub src: String,
    /// The Rhai translation.
    pub translation: deluge::Translation,
}

impl DelugeSource {
    /// Parses and translates `src`; a syntax error or a refusal is a [`ScriptError::Deluge`]
    /// holding the report.
    pub fn translate(name: &str, src: &str) -> Result<DelugeSource, ScriptError> {
        let refused = |errors: Vec<deluge::ParseError>| {
            // The CLI puts its own `error: ` before the message.
            let report = errors.first().map(|e| deluge::report(src, name, e)).unwrap_or_default();
            let report = report.replacen(": error: ", ": ", 1);
            ScriptError::Deluge { report: report.trim_end().to_string() }
        };
        let program = deluge::parse(src).map_err(refused)?;
        let translation = deluge::translate(&program, src, name).map_err(refused)?;
        Ok(DelugeSource { name: name.to_string(), src: src.to_string(), translation })
    }

    /// A Rhai position in the Deluge file's terms: `line 3, column 5 (`the line`)`.
    pub fn at(&self, pos: Position) -> String {
        match pos.line().and_then(|l| self.translation.origin(l)) {
            Some((line, col)) => self.quote(line, col),
            None => "the end of the function".to_string(),
        }
    }

    fn quote(&self, line: usize, col: usize) -> String {
        let text = self.src.lines().nth(line.saturating_sub(1)).unwrap_or("").trim();
        let text: String = text.chars().take(120).collect();
        format!("line {line}, column {col} (`{text}`)")
    }

    /// Checks that every input is given (by `args`, then the `input` map) and fits its type,
    /// before anything runs; returns the converted values.
    pub fn inputs(&self, args: &Map, input: &Dynamic) -> Result<Map, ScriptError> {
        let mut values = Map::new();
        for i in &self.translation.inputs {
            let (line, col) = deluge::line_col(&self.src, i.span.start);
            let at = self.quote(line, col);
            let Some(given) = given(args, input, &i.name) else {
                return Err(ScriptError::DelugeInputMissing { name: self.name.clone(), var: i.name.clone(), at });
            };
            let ty = i.ty.clone().unwrap_or_default();
            let value = convert(&given, &ty).ok_or_else(|| ScriptError::DelugeInputType {
                name: self.name.clone(),
                var: i.name.clone(),
                ty: ty.clone(),
                at,
            })?;
            values.insert(i.name.as_str().into(), value);
        }
        Ok(values)
    }
}

/// An input's value: `args[name]`, else `input[name]` when the input is a map.
fn given(args: &Map, input: &Dynamic, name: &str) -> Option<Dynamic> {
    args.get(name).cloned().or_else(|| input.read_lock::<Map>().and_then(|m| m.get(name).cloned()))
}

/// `deluge_arg(name, type)` of translated Deluge: the input converted to its type, or an error
/// naming the flag to pass.
pub fn input_value(args: &Map, input: &Dynamic, name: &str, ty: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    let Some(v) = given(args, input, name) else {
        return Err(
            format!("no value for `{name}`: pass it with --arg {name}=VALUE (or a `{name}` key in --input)").into()
        );
    };
    convert(&v, ty).ok_or_else(|| format!("the value of `{name}` is not a valid {ty}: pass a {ty}").into())
}

/// Converts an input to a header type; `None` when it does not fit.
fn convert(v: &Dynamic, ty: &str) -> Option<Dynamic> {
    let text = v.read_lock::<ImmutableString>().map(|s| s.trim().to_string());
    let lower = ty.to_ascii_lowercase();
    match lower.as_str() {
        "int" | "long" | "bigint" | "number" => match &text {
            Some(t) => t.parse::<INT>().ok().map(Dynamic::from_int),
            None => v.as_int().ok().map(Dynamic::from_int),
        },
        "decimal" | "float" | "double" => match &text {
            Some(t) => t.parse::<FLOAT>().ok().map(Dynamic::from_float),
            None => v.as_float().ok().or_else(|| v.as_int().ok().map(|i| i as FLOAT)).map(Dynamic::from_float),
        },
        "bool" | "boolean" => match text.as_deref() {
            Some(t) if t.eq_ignore_ascii_case("true") => Some(Dynamic::TRUE),
            Some(t) if t.eq_ignore_ascii_case("false") => Some(Dynamic::FALSE),
            Some(_) => None,
            None => v.as_bool().ok().map(Dynamic::from_bool),
        },
        "map" | "keyvalue" => match &text {
            Some(t) => super::deluge_lib::to_map(t).ok().map(Dynamic::from_map),
            None => v.is_map().then(|| v.clone()),
        },
        "list" | "collection" => match &text {
            Some(t) => serde_json::from_str::<serde_json::Value>(t)
                .ok()
                .filter(|j| j.is_array())
                .and_then(|j| rhai::serde::to_dynamic(j).ok()),
            None => v.is_array().then(|| v.clone()),
        },
        // Text, dates (converted by the Rhai that reads them) and untyped free variables.
        _ => Some(if lower == "string" || lower == "text" { Dynamic::from(display(v)) } else { v.clone() }),
    }
}

/// Registers what translated Deluge needs on every engine (`linkrun port`'s output runs as a
/// plain Rhai script): `deluge_error`, `deluge_key` (a map key as text, as `put` makes it), and
/// `+` between text and collections. `deluge_arg` needs
/// the run's `--arg` / `--input` and is registered by `script::run` ([`input_value`]).
pub fn register(engine: &mut Engine) {
    engine.register_fn("deluge_error", deluge_error);
    engine.register_fn("deluge_key", |k: Dynamic| -> ImmutableString {
        match k.read_lock::<ImmutableString>() {
            Some(s) => s.clone(),
            None => display(&k).into(),
        }
    });
    engine.register_fn("+", |s: ImmutableString, m: Map| format!("{s}{}", to_json(&Dynamic::from_map(m))));
    engine.register_fn("+", |m: Map, s: ImmutableString| format!("{}{s}", to_json(&Dynamic::from_map(m))));
    engine.register_fn("+", |s: ImmutableString, a: Array| format!("{s}{}", to_json(&Dynamic::from_array(a))));
    engine.register_fn("+", |a: Array, s: ImmutableString| format!("{}{s}", to_json(&Dynamic::from_array(a))));
}

/// The `e` of a Deluge `catch (e)`: `#{ message, lineNo }` from what Rhai caught and the Deluge
/// line the translation recorded.
pub fn deluge_error(caught: Dynamic, line: INT) -> Map {
    let message = match caught.read_lock::<Map>() {
        Some(m) => m.get("message").map(display).unwrap_or_else(|| to_json(&caught)),
        None => display(&caught),
    };
    let mut e = Map::new();
    e.insert("message".into(), Dynamic::from(message));
    e.insert("lineNo".into(), Dynamic::from_int(line));
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_converted_to_their_header_types() {
        let d = DelugeSource::translate("f.dg", "void f(Int n, String s, Bool b) { info n + 1; }").unwrap();
        let mut args = Map::new();
        args.insert("n".into(), Dynamic::from("41"));
        args.insert("s".into(), Dynamic::from_int(7));
        args.insert("b".into(), Dynamic::from("TRUE"));
        let v = d.inputs(&args, &Dynamic::UNIT).unwrap();
        assert_eq!(v["n"].as_int().unwrap(), 41);
        assert_eq!(v["s"].clone().into_string().unwrap(), "7");
        assert!(v["b"].as_bool().unwrap());
        args.insert("n".into(), Dynamic::from("forty"));
        let e = d.inputs(&args, &Dynamic::UNIT).unwrap_err().to_string();
        assert!(e.contains("`n`") && e.contains("Int") && e.contains("line 1"), "{e}");
        let e = d.inputs(&Map::new(), &Dynamic::UNIT).unwrap_err().to_string();
        assert!(e.contains("--arg n="), "{e}");
    }

    #[test]
    fn a_syntax_error_is_reported_at_its_deluge_line_and_column() {
        let e = DelugeSource::translate("f.dg", "x = 1;\ny = \"open;\n").unwrap_err().to_string();
        assert!(e.starts_with("f.dg:2:5: unterminated string"), "{e}");
        assert!(e.contains("2 | y = \"open;"), "{e}");
    }
}
