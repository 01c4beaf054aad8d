//! Parameters and rendering: the `sysparm_*` query parameters and how a record is rendered
//! (`sysparm_fields`, `sysparm_display_value`, `sysparm_exclude_reference_link`).

use super::*;

/// Decoded query parameters.
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub(super) fn parse(query: Option<&str>) -> Params {
        Params(url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub(super) fn is_true(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Display {
    False,
    True,
    All,
}

/// How to write records out.
pub(super) struct View {
    pub(super) fields: Option<Vec<String>>,
    pub(super) display: Display,
    pub(super) exclude_link: bool,
    pub(super) base: String,
}

impl View {
    pub(super) fn new(p: &Params, def: &TableDef, base: String) -> View {
        let fields = p.get("sysparm_fields").and_then(|f| {
            let v: Vec<String> =
                f.split(',').map(str::trim).filter(|f| valid_field(def, f)).map(str::to_string).collect();
            (!v.is_empty()).then_some(v)
        });
        let display = match p.get("sysparm_display_value").map(str::to_ascii_lowercase).as_deref() {
            Some("true") => Display::True,
            Some("all") => Display::All,
            _ => Display::False,
        };
        View { fields, display, exclude_link: p.is_true("sysparm_exclude_reference_link"), base }
    }

    pub(super) fn render(&self, rec: &Map<String, Value>, def: &TableDef, lk: &mut Lookup) -> Value {
        let names: Vec<String> = match &self.fields {
            Some(f) => f.clone(),
            None => {
                let mut n: Vec<String> = SYS_COLUMNS.iter().chain(def.columns).map(|s| s.to_string()).collect();
                let known: HashSet<String> = n.iter().cloned().collect();
                n.extend(rec.keys().filter(|k| !known.contains(*k)).cloned());
                n
            }
        };
        let mut out = Map::new();
        for name in names {
            let v = self.field(rec, def, &name, lk);
            out.insert(name, v);
        }
        Value::Object(out)
    }

    pub(super) fn field(&self, rec: &Map<String, Value>, def: &TableDef, name: &str, lk: &mut Lookup) -> Value {
        if name.contains('.') {
            let v = value_of(rec, def, name, lk).unwrap_or_default();
            return match self.display {
                Display::All => json!({"display_value": v, "value": v}),
                _ => Value::String(v),
            };
        }
        let value = str_of(rec, name);
        if let Some(table) = def.ref_table(name) {
            if value.is_empty() {
                return match self.display {
                    Display::All => json!({"display_value": "", "value": ""}),
                    _ => Value::String(String::new()),
                };
            }
            let link = format!("{}/api/now/table/{table}/{value}", self.base);
            return match (self.display, self.exclude_link) {
                (Display::False, true) => Value::String(value),
                (Display::False, false) => json!({"link": link, "value": value}),
                (Display::True, true) => Value::String(lk.display(table, &value)),
                (Display::True, false) => json!({"display_value": lk.display(table, &value), "link": link}),
                (Display::All, true) => json!({"display_value": lk.display(table, &value), "value": value}),
                (Display::All, false) => {
                    json!({"display_value": lk.display(table, &value), "link": link, "value": value})
                }
            };
        }
        let display = || choice_label(def.name, name, &value).map(str::to_string).unwrap_or_else(|| value.clone());
        match self.display {
            Display::False => Value::String(value.clone()),
            Display::True => Value::String(display()),
            Display::All => json!({"display_value": display(), "value": value}),
        }
    }
}
