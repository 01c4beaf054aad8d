//! Sync definitions: one TOML file each (the format is documented in `syncs/README.md`), found
//! installed in `$LINKRUN_HOME/syncs/` (`linkrun sync add`), in `./syncs/`, or built in (the
//! prebuilt ones, embedded from the repository's `syncs/`). `--set KEY=VALUE` changes a setting:
//! kept by `sync add`, for one run by `sync run`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::home::Home;
use crate::link_name::LinkName;

/// The prebuilt definitions, by name.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("servicenow_contacts", include_str!("../../syncs/servicenow_contacts.toml")),
    ("servicenow_vendors", include_str!("../../syncs/servicenow_vendors.toml")),
    ("servicenow_purchase_orders", include_str!("../../syncs/servicenow_purchase_orders.toml")),
    ("servicenow_products", include_str!("../../syncs/servicenow_products.toml")),
    ("servicenow_cases", include_str!("../../syncs/servicenow_cases.toml")),
    ("servicenow_accounts", include_str!("../../syncs/servicenow_accounts.toml")),
    ("zoho_org_leads", include_str!("../../syncs/zoho_org_leads.toml")),
];

/// The largest definition file read.
const MAX_FILE: u64 = 256 * 1024;

/// A bad definition or setting: the file (or flag) and what to change.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DefError(pub String);

/// One way or both ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SyncType {
    /// From one side to the other (`direction`).
    OneWay,
    /// Both directions, conflicts settled by `conflict`.
    BothWays,
}

/// What a record deleted on one side does to its pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display, strum::EnumString)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Deletes {
    /// Nothing (the pair stays linked).
    Ignore,
    /// The pair is deleted too.
    Propagate,
    /// The pair stays; the link is forgotten.
    Unlink,
}

/// The kind of API a side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum SideKind {
    /// A ServiceNow table (Table API).
    Servicenow,
    /// A Zoho CRM module (REST API v7).
    Crm,
}

/// One side of a sync, as written in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SideDef {
    /// `servicenow` or `crm`.
    pub kind: SideKind,
    /// The side's name in directions, conflict rules and the field map (default: the kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The connection's link name.
    pub connection: String,
    /// ServiceNow: the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// ServiceNow: an encoded query the records must match (`vendor=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// CRM: the module's API name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// A field of this side that records created here carry the source record's id in
    /// (ServiceNow's `correlation_id` on task tables): a create cut off by a crash before its
    /// link was kept is found by it on the next run, when the match key cannot find it (a key
    /// this side assigns, such as a case number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation: Option<String>,
}

impl SideDef {
    /// The side's name.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.kind.to_string())
    }

    /// The table or module.
    pub fn object(&self) -> &str {
        self.table.as_deref().or(self.module.as_deref()).unwrap_or_default()
    }
}

/// How a field's values are compared (and, for `phone`, matched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Case and surrounding spaces do not count (e-mail addresses, names used as keys).
    Lower,
    /// Only the digits count, with a leading `+` (`+1 (415) 555-0100` = `+14155550100`).
    Phone,
    /// Only the date counts (`2024-05-01`, `2024-05-01 10:00:00`, `2024-05-01T10:00:00+05:30`).
    Date,
    /// Only the number counts (`1299.00` = `1299`: ServiceNow sends decimals as text, CRM as
    /// JSON numbers); text that is not a number is compared as it is.
    Number,
}

/// One entry of the field map: the field's name on each side (keyed by side name), and how its
/// values travel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldDef {
    /// Side name → field name on that side.
    #[serde(flatten)]
    pub names: BTreeMap<String, toml::Value>,
}

/// A field, read out of a [`FieldDef`].
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name on side A and on side B.
    pub a: String,
    /// On side B.
    pub b: String,
    /// A match key: pairs records that exist on both sides before the first sync.
    pub key: bool,
    /// How values compare.
    pub normalize: Option<Normalize>,
    /// Written to the other side when the source is empty (a field the target requires).
    pub default: Option<String>,
    /// Values on side A → values on side B (picklists); the reverse is used for B to A.
    pub values: Vec<(String, String)>,
    /// Only in this direction (`"<from>_to_<to>"`); both when none.
    pub only: Option<(bool, bool)>,
    /// A reference (a ServiceNow reference's sys_id, a CRM lookup's id): the name of the sync
    /// whose links translate it into the other side's id (`servicenow_vendors` for a purchase
    /// order's vendor). Written to CRM as `{"id": ...}`.
    pub lookup: Option<String>,
    /// The source's display value is carried instead of its value: a ServiceNow reference's
    /// name (the record it points to), a choice's label, a CRM lookup's name; into a text field.
    /// A name cannot be turned back into a reference, so it travels one way (`only`).
    pub display: bool,
}

/// The file's shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    object: Option<String>,
    #[serde(rename = "type")]
    sync_type: SyncType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conflict: Option<String>,
    #[serde(default = "default_deletes")]
    deletes: Deletes,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page_size: Option<usize>,
    sides: Vec<SideDef>,
    fields: Vec<FieldDef>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    recent: BTreeMap<String, String>,
}

fn default_deletes() -> Deletes {
    Deletes::Ignore
}

/// Who wins a record changed on both sides since the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// Side A (true) or B (false) always wins.
    Wins(bool),
    /// The later change wins.
    Newest,
}

/// A definition, validated.
#[derive(Debug, Clone)]
pub struct SyncDef {
    /// Its name (the link-name rule).
    pub name: LinkName,
    /// The object's name in run stats (default: side A's table or module, lower case).
    pub object: String,
    /// One way or both.
    pub sync_type: SyncType,
    /// One way: from A to B (true) or B to A (false). Both ways: A to B runs first.
    pub a_to_b: bool,
    /// Conflicts (both ways).
    pub conflict: Conflict,
    /// Deletes.
    pub deletes: Deletes,
    /// Records per read of side A's and B's change feeds.
    pub page_size: usize,
    /// Side A and side B.
    pub a: SideDef,
    /// Side B.
    pub b: SideDef,
    /// The field map.
    pub fields: Vec<Field>,
    /// `[recent]`: the columns (label, side A's field) kept of the last records written from
    /// side A, for `sync status` and the console's dashboard (references by display value).
    pub recent: Vec<(String, String)>,
    /// Where it was read from (`built in` for the prebuilt ones).
    pub origin: String,
    file: File,
}

impl SyncDef {
    /// Parses a definition's text (`origin` names it in errors) and applies `sets`.
    pub fn parse(text: &str, origin: &str, sets: &[(String, String)]) -> Result<SyncDef, DefError> {
        let mut file: File =
            toml::from_str(text).map_err(|e| DefError(format!("{origin} is not a valid sync definition: {e}")))?;
        for (k, v) in sets {
            apply_set(&mut file, k, v).map_err(|m| DefError(format!("--set {k}={v}: {m}")))?;
        }
        Self::validate(file, origin)
    }

    fn validate(file: File, origin: &str) -> Result<SyncDef, DefError> {
        let bad = |m: String| DefError(format!("{origin}: {m}"));
        let name = LinkName::parse(&file.name).map_err(|rule| bad(format!("`name = \"{}\"`: {rule}", file.name)))?;
        let [a, b] = <[SideDef; 2]>::try_from(file.sides.clone())
            .map_err(|s| bad(format!("a sync has exactly two `[[sides]]`, this one has {}", s.len())))?;
        let (an, bn) = (a.name(), b.name());
        if an == bn {
            return Err(bad(format!(
                "both sides are named `{an}`: give each a `name` (two CRM sides name themselves, e.g. `org_a` and `org_b`)"
            )));
        }
        for s in [&a, &b] {
            LinkName::parse(&s.connection)
                .map_err(|rule| bad(format!("side `{}`: `connection = \"{}\"`: {rule}", s.name(), s.connection)))?;
            if let Some(c) = &s.correlation
                && (c.is_empty() || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
            {
                return Err(bad(format!(
                    "side `{}`: `correlation = \"{c}\"` must name one of its fields (letters, digits, `_`), such as \"correlation_id\"",
                    s.name()
                )));
            }
            match s.kind {
                SideKind::Servicenow if s.table.as_deref().is_none_or(str::is_empty) => {
                    return Err(bad(format!("side `{}` is a ServiceNow side: give its `table`", s.name())));
                }
                SideKind::Crm if s.module.as_deref().is_none_or(str::is_empty) => {
                    return Err(bad(format!(
                        "side `{}` is a CRM side: give its `module` (e.g. \"Contacts\")",
                        s.name()
                    )));
                }
                _ => {}
            }
        }
        let pair = |text: &str, what: &str| -> Result<bool, DefError> {
            if text == format!("{an}_to_{bn}") {
                Ok(true)
            } else if text == format!("{bn}_to_{an}") {
                Ok(false)
            } else {
                Err(bad(format!("`{what} = \"{text}\"`: say `{an}_to_{bn}` or `{bn}_to_{an}`")))
            }
        };
        let a_to_b = match (&file.sync_type, &file.direction) {
            (SyncType::OneWay, None) => {
                return Err(bad(format!("a one-way sync needs `direction` (`{an}_to_{bn}` or `{bn}_to_{an}`)")));
            }
            (_, Some(d)) => pair(d, "direction")?,
            (SyncType::BothWays, None) => true,
        };
        let conflict = match file.conflict.as_deref() {
            None | Some("newest_wins") => Conflict::Newest,
            Some(c) if c == format!("{an}_wins") => Conflict::Wins(true),
            Some(c) if c == format!("{bn}_wins") => Conflict::Wins(false),
            Some(c) => {
                return Err(bad(format!("`conflict = \"{c}\"`: say `{an}_wins`, `{bn}_wins` or `newest_wins`")));
            }
        };
        let mut fields = Vec::new();
        for (i, f) in file.fields.iter().enumerate() {
            let f = field(f, &an, &bn).map_err(|m| bad(format!("`[[fields]]` number {}: {m}", i + 1)))?;
            if f.display && f.only.is_none() && file.sync_type == SyncType::BothWays {
                return Err(bad(format!(
                    "`[[fields]]` number {}: `display = true` carries a name, which cannot be turned back into a reference: add `only = \"{an}_to_{bn}\"` (or `{bn}_to_{an}`)",
                    i + 1
                )));
            }
            fields.push(f);
        }
        if fields.is_empty() {
            return Err(bad("the field map is empty: add `[[fields]]` entries".into()));
        }
        let page_size = file.page_size.unwrap_or(1000);
        if !(1..=10_000).contains(&page_size) {
            return Err(bad(format!("`page_size = {page_size}`: give 1 to 10000")));
        }
        let object = file.object.clone().unwrap_or_else(|| a.object().to_ascii_lowercase());
        for (label, field) in &file.recent {
            if field.trim().is_empty() {
                return Err(bad(format!("`[recent]` `{label}` names no field of side `{an}`")));
            }
        }
        let recent = file.recent.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        Ok(SyncDef {
            name,
            object,
            sync_type: file.sync_type,
            a_to_b,
            conflict,
            deletes: file.deletes,
            page_size,
            a,
            b,
            fields,
            recent,
            origin: origin.to_string(),
            file,
        })
    }

    /// What the sync's links, checkpoints and failures are kept under: the object and the two
    /// sides' tables or modules, so that pointing a side elsewhere (`--set target=Leads`) starts
    /// a pairing of its own instead of taking another module's ids for this one's.
    pub fn links_key(&self) -> String {
        format!("{}:{}>{}", self.object, self.a.object(), self.b.object())
    }

    /// The definition as TOML (what `sync add` installs, its settings applied).
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.file).unwrap_or_default()
    }

    /// `"<from>_to_<to>"` of A to B (true) or B to A.
    pub fn direction_name(&self, a_to_b: bool) -> String {
        let (a, b) = (self.a.name(), self.b.name());
        if a_to_b { format!("{a}_to_{b}") } else { format!("{b}_to_{a}") }
    }

    /// The directions a run goes, in order.
    pub fn directions(&self) -> Vec<bool> {
        match self.sync_type {
            SyncType::OneWay => vec![self.a_to_b],
            SyncType::BothWays => vec![self.a_to_b, !self.a_to_b],
        }
    }
}

fn field(f: &FieldDef, an: &str, bn: &str) -> Result<Field, String> {
    let text = |k: &str| -> Result<Option<String>, String> {
        match f.names.get(k) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("`{k}` must be text, not `{other}`")),
        }
    };
    let (Some(a), Some(b)) = (text(an)?, text(bn)?) else {
        return Err(format!("name the field on both sides: `{an} = \"...\"` and `{bn} = \"...\"`"));
    };
    let key = match f.names.get("key") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => return Err(format!("`key` is true or false, not `{other}`")),
    };
    let display = match f.names.get("display") {
        None => false,
        Some(toml::Value::Boolean(b)) => *b,
        Some(other) => return Err(format!("`display` is true or false, not `{other}`")),
    };
    let normalize = match text("normalize")?.as_deref() {
        None => None,
        Some("lower") => Some(Normalize::Lower),
        Some("phone") => Some(Normalize::Phone),
        Some("date") => Some(Normalize::Date),
        Some("number") => Some(Normalize::Number),
        Some(o) => return Err(format!("`normalize = \"{o}\"`: say `lower`, `phone`, `date` or `number`")),
    };
    let values = match f.names.get("values") {
        None => Vec::new(),
        Some(toml::Value::Table(t)) => t
            .iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!("`values.{k}` must be text, not `{other}`")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => Err(format!("`values` is a table of `{an}` value = `{bn}` value, not `{other}`"))?,
    };
    let only = match text("only")? {
        None => None,
        Some(d) if d == format!("{an}_to_{bn}") => Some((true, false)),
        Some(d) if d == format!("{bn}_to_{an}") => Some((false, true)),
        Some(d) => return Err(format!("`only = \"{d}\"`: say `{an}_to_{bn}` or `{bn}_to_{an}`")),
    };
    for k in f.names.keys() {
        if ![an, bn, "key", "normalize", "default", "values", "only", "lookup", "display"].contains(&k.as_str()) {
            return Err(format!(
                "unknown key `{k}` (a field has `{an}`, `{bn}`, `key`, `normalize`, `default`, `values`, `only`, `lookup`, `display`)"
            ));
        }
    }
    let lookup = text("lookup")?;
    if let Some(l) = &lookup {
        LinkName::parse(l).map_err(|rule| format!("`lookup = \"{l}\"` names a sync: {rule}"))?;
        if key || normalize.is_some() || !values.is_empty() {
            return Err(format!(
                "`lookup = \"{l}\"` carries a record id: it cannot also be a `key` or have `normalize` or `values`"
            ));
        }
    }
    if display && (lookup.is_some() || key) {
        return Err("`display = true` carries a name: it cannot also be a `key` or a `lookup`".into());
    }
    Ok(Field { a, b, key, normalize, default: text("default")?, values, only, lookup, display })
}

/// `--set KEY=VALUE`: `type`, `direction`, `conflict`, `deletes`, `page_size`, `object`,
/// `SIDE=LINK` (the side's connection), `SIDE.connection|table|query|module|name`, and `target`
/// (the CRM side's module, as the extension's "CRM tab": `Leads` or `Contacts`).
fn apply_set(f: &mut File, key: &str, value: &str) -> Result<(), String> {
    let v = value.to_string();
    match key {
        "type" => f.sync_type = value.parse().map_err(|_| "say `one_way` or `both_ways`".to_string())?,
        "direction" => f.direction = Some(v),
        "conflict" => f.conflict = Some(v),
        "deletes" => f.deletes = value.parse().map_err(|_| "say `ignore`, `propagate` or `unlink`".to_string())?,
        "object" => f.object = Some(v),
        "page_size" => f.page_size = Some(value.parse().map_err(|_| "give a number of records".to_string())?),
        "target" => {
            let crm: Vec<&mut SideDef> = f.sides.iter_mut().filter(|s| s.kind == SideKind::Crm).collect();
            let [side] = <[&mut SideDef; 1]>::try_from(crm)
                .map_err(|_| "`target` sets the CRM side's module: this sync has no single CRM side".to_string())?;
            side.module = Some(v);
        }
        _ => {
            let (side, what) = key.split_once('.').unwrap_or((key, "connection"));
            let names: Vec<String> = f.sides.iter().map(SideDef::name).collect();
            let s = f.sides.iter_mut().find(|s| s.name() == side).ok_or_else(|| {
                format!(
                    "unknown setting `{key}`: give type, direction, conflict, deletes, page_size, object, target, or a side ({}) with .connection, .table, .query, .module",
                    names.join(", ")
                )
            })?;
            match what {
                "connection" => s.connection = v,
                "table" => s.table = Some(v),
                "query" => s.query = Some(v),
                "module" => s.module = Some(v),
                other => return Err(format!("a side has connection, table, query and module, not `{other}`")),
            }
        }
    }
    Ok(())
}

/// Where `sync add` installs definitions.
pub fn installed_dir(home: &Home) -> PathBuf {
    home.root().join("syncs")
}

/// Reads a definition file (size-capped).
pub fn read(path: &Path) -> Result<String, DefError> {
    let meta = std::fs::metadata(path).map_err(|e| DefError(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Err(DefError(format!(
            "{} is not a sync definition file (a TOML file of at most 256 KiB)",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(|e| DefError(format!("cannot read {}: {e}", path.display())))
}

/// Finds the sync `name`: installed, then `./syncs/NAME.toml`, then built in.
pub fn find(home: &Home, name: &str, sets: &[(String, String)]) -> Result<SyncDef, DefError> {
    LinkName::parse(name).map_err(|rule| DefError(format!("invalid sync name `{name}`: {rule}")))?;
    for dir in [installed_dir(home), PathBuf::from("syncs")] {
        let p = dir.join(format!("{name}.toml"));
        if p.is_file() {
            return SyncDef::parse(&read(&p)?, &p.display().to_string(), sets);
        }
    }
    match BUILT_IN.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => SyncDef::parse(text, &format!("the built-in sync `{name}`"), sets),
        None => Err(DefError(format!(
            "there is no sync `{name}`: see `linkrun sync list`, or install one with `linkrun sync add FILE.toml`"
        ))),
    }
}

/// Every sync: (name, where from, the definition or why it does not load), installed first.
pub fn list(home: &Home) -> Vec<(String, String, Result<SyncDef, DefError>)> {
    let mut out: Vec<(String, String, Result<SyncDef, DefError>)> = Vec::new();
    for (dir, origin) in [(installed_dir(home), "installed"), (PathBuf::from("syncs"), "local")] {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut paths: Vec<PathBuf> =
            rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
        paths.sort();
        for p in paths {
            let name = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if out.iter().any(|(n, ..)| *n == name) {
                continue;
            }
            let def = read(&p).and_then(|t| SyncDef::parse(&t, &p.display().to_string(), &[]));
            out.push((name, origin.to_string(), def));
        }
    }
    for (name, text) in BUILT_IN {
        if !out.iter().any(|(n, ..)| n == name) {
            out.push((name.to_string(), "built in".into(), SyncDef::parse(text, name, &[])));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_definitions_parse() {
        for (name, text) in BUILT_IN {
            let d = SyncDef::parse(text, name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(d.name.as_str(), *name);
            assert!(d.fields.iter().any(|f| f.key), "{name} has no match key");
        }
    }

    #[test]
    fn settings_change_a_definition_and_bad_ones_say_what_to_give() {
        let text = BUILT_IN[0].1;
        let sets = [
            ("type".to_string(), "one_way".to_string()),
            ("direction".into(), "crm_to_servicenow".into()),
            ("target".into(), "Leads".into()),
            ("crm".into(), "crm_b".into()),
        ];
        let d = SyncDef::parse(text, "x", &sets).unwrap();
        assert_eq!((d.sync_type, d.a_to_b, d.b.module.as_deref()), (SyncType::OneWay, false, Some("Leads")));
        assert_eq!(d.b.connection, "crm_b");
        let e = SyncDef::parse(text, "x", &[("conflict".into(), "me_wins".into())]).unwrap_err().to_string();
        assert!(e.contains("servicenow_wins") && e.contains("newest_wins"), "{e}");
        let e = SyncDef::parse(text, "x", &[("colour".into(), "red".into())]).unwrap_err().to_string();
        assert!(e.contains("unknown setting `colour`"), "{e}");
    }
}
