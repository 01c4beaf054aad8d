//! The ServiceNow Table API emulator (`/api/now/table/...`, `/api/now/v1/table/...` and
//! `/api/now/v2/table/...`), as `api-facts.md` §5 describes it: list with encoded queries
//! (`sysparm_query`), field selection, display values, offset paging with `Link` and
//! `X-Total-Count` headers, get, insert, update and delete, with ServiceNow's error envelope
//! `{"error":{"message":…,"detail":…},"status":"failure"}` and status codes.
//!
//! Requests authenticate with `Authorization: Bearer <token>` (checked by the sandbox's
//! ServiceNow-flavoured OAuth [`Provider`]) or `Authorization: Basic` against the users given to
//! [`ServiceNow::add_user`]. Roles gate the tables (answer 403 otherwise):
//!
//! | role              | grants |
//! |-------------------|--------|
//! | `admin`           | every operation on every table |
//! | `<table>_read`    | `GET` on that table (e.g. `customer_contact_read`) |
//! | `<table>_write`   | `GET`, `POST`, `PUT`, `PATCH`, `DELETE` on that table |
//!
//! A Bearer token's user (password grant, or the user who approved an authorization code) is
//! looked up among the [`ServiceNow::add_user`] users by name: an unknown name has no roles.
//! Client-credentials tokens (no user) act as an `admin`.
//!
//! Records live in one SQLite table, `sn_records(tbl, sys_id, updated, data)`, `data` being the
//! record's JSON object with every value a string and references stored as plain sys_ids; they
//! are written as `{"link": …, "value": …}` on the way out. Record numbers (`CS0001001`,
//! `PO0001001`, ...) come from a `sn_sequences(prefix, next)` table. (The `sn_` prefix keeps them
//! apart from the CRM's `records` in a shared `--data` file; see [`super::storage`].)
//!
//! The fault knob's 500 says "The sandbox simulated a server failure"; a failure of the storage
//! itself is a 500 whose detail says that the sandbox's storage failed and why.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value, json};

use super::faults::{Fault, Faults};
use super::oauth_provider::Provider;
use super::storage::{StorageError, open_db, storage_failed};

const JSON_CT: &str = "application/json;charset=UTF-8";
/// `sysparm_limit` when absent.
const DEFAULT_LIMIT: usize = 10_000;
/// The `X-RateLimit-Rule` header of 429 answers (a rate-limit rule's sys_id on a real instance).
const RATE_LIMIT_RULE: &str = "7d2a3f1e1b0330106f4c0f5a2d4bcb61";
/// Columns every table has; the server sets them (a client may only choose `sys_id` on insert).
const SYS_COLUMNS: [&str; 7] = [
    "sys_id",
    "sys_created_on",
    "sys_created_by",
    "sys_updated_on",
    "sys_updated_by",
    "sys_mod_count",
    "sys_class_name",
];

/// The record store (see the module documentation).
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS sn_records (
        tbl TEXT NOT NULL, sys_id TEXT NOT NULL, updated INTEGER NOT NULL, data TEXT NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS sn_records_id ON sn_records (tbl, sys_id);
    CREATE TABLE IF NOT EXISTS sn_sequences (prefix TEXT PRIMARY KEY, next INTEGER NOT NULL);";

/// One emulated table.
struct TableDef {
    name: &'static str,
    /// Its columns besides the `sys_*` ones (custom `u_*` columns are accepted on any table).
    columns: &'static [&'static str],
    /// Reference columns and the tables they point at.
    refs: &'static [(&'static str, &'static str)],
    /// The column whose value is the record's display value.
    display: &'static str,
    /// The prefix of its `number` column, set by the server on insert.
    number: Option<&'static str>,
}

impl TableDef {
    fn has(&self, field: &str) -> bool {
        SYS_COLUMNS.contains(&field) || self.columns.contains(&field) || is_custom(field)
    }

    fn ref_table(&self, field: &str) -> Option<&'static str> {
        self.refs.iter().find(|(f, _)| *f == field).map(|(_, t)| *t)
    }
}

/// The tables the emulator knows.
const TABLES: [TableDef; 7] = [
    TableDef {
        name: "customer_contact",
        columns: &[
            "first_name",
            "last_name",
            "name",
            "email",
            "phone",
            "mobile_phone",
            "account",
            "company",
            "title",
            "user_name",
            "active",
            "city",
            "country",
        ],
        refs: &[("account", "customer_account"), ("company", "core_company")],
        display: "name",
        number: None,
    },
    TableDef {
        name: "customer_account",
        columns: &["name", "number", "phone", "primary_contact", "customer", "city", "country", "website", "notes"],
        refs: &[("primary_contact", "customer_contact")],
        display: "name",
        number: Some("ACC"),
    },
    TableDef {
        name: "core_company",
        columns: &["name", "vendor", "customer", "manufacturer", "phone", "city", "country", "website", "notes"],
        refs: &[],
        display: "name",
        number: None,
    },
    TableDef {
        name: "cmdb_model",
        columns: &["name", "display_name", "model_number", "manufacturer", "cost", "short_description", "status"],
        refs: &[("manufacturer", "core_company")],
        display: "display_name",
        number: None,
    },
    TableDef {
        name: "proc_po",
        columns: &[
            "number",
            "short_description",
            "description",
            "vendor",
            "status",
            "total_cost",
            "ordered",
            "expected_delivery",
            "requested_by",
        ],
        refs: &[("vendor", "core_company")],
        display: "number",
        number: Some("PO"),
    },
    TableDef {
        name: "proc_po_item",
        columns: &[
            "number",
            "purchase_order",
            "model",
            "short_description",
            "ordered_quantity",
            "cost",
            "total_cost",
            "status",
        ],
        refs: &[("purchase_order", "proc_po"), ("model", "cmdb_model")],
        display: "number",
        number: Some("POL"),
    },
    TableDef {
        name: "sn_customerservice_case",
        columns: &[
            "number",
            "short_description",
            "description",
            "contact",
            "account",
            "contact_type",
            "state",
            "priority",
            "product",
            "opened_at",
            "closed_at",
            "u_call_recording_url",
        ],
        refs: &[("contact", "customer_contact"), ("account", "customer_account"), ("product", "cmdb_model")],
        display: "number",
        number: Some("CS"),
    },
];

/// The names of the tables the emulator serves.
pub const TABLE_NAMES: [&str; 7] = [
    "customer_contact",
    "customer_account",
    "core_company",
    "cmdb_model",
    "proc_po",
    "proc_po_item",
    "sn_customerservice_case",
];

fn table_def(name: &str) -> Option<&'static TableDef> {
    TABLES.iter().find(|t| t.name == name)
}

/// A custom column name: `u_` then lower-case letters, digits and underscores.
fn is_custom(field: &str) -> bool {
    field
        .strip_prefix("u_")
        .is_some_and(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
}

/// Display labels of choice values.
fn choice_label(table: &str, field: &str, value: &str) -> Option<&'static str> {
    let label = match (table, field, value) {
        ("sn_customerservice_case", "state", "1") => "New",
        ("sn_customerservice_case", "state", "10") => "Open",
        ("sn_customerservice_case", "state", "18") => "Awaiting Info",
        ("sn_customerservice_case", "state", "6") => "Resolved",
        ("sn_customerservice_case", "state", "3") => "Closed",
        ("sn_customerservice_case", "priority", "1") => "1 - Critical",
        ("sn_customerservice_case", "priority", "2") => "2 - High",
        ("sn_customerservice_case", "priority", "3") => "3 - Moderate",
        ("sn_customerservice_case", "priority", "4") => "4 - Low",
        ("sn_customerservice_case", "contact_type", "chat") => "Chat",
        ("sn_customerservice_case", "contact_type", "email") => "Email",
        ("sn_customerservice_case", "contact_type", "phone") => "Phone",
        ("sn_customerservice_case", "contact_type", "social") => "Social",
        ("sn_customerservice_case", "contact_type", "web") => "Web",
        _ => return None,
    };
    Some(label)
}

/// A user for Basic authentication and role checks.
#[derive(Clone, Debug)]
struct User {
    name: String,
    password: String,
    roles: Vec<String>,
}

/// The emulated ServiceNow instance: its records, users and link base URL. Cloning shares them.
#[derive(Clone)]
pub struct ServiceNow {
    inner: Arc<Inner>,
}

struct Inner {
    db: Mutex<Connection>,
    users: Mutex<Vec<User>>,
    base_url: Mutex<String>,
}

impl ServiceNow {
    /// Opens (creating it if needed) the record store at `path`, or an in-memory one for `None`.
    pub fn open(path: Option<&Path>) -> Result<ServiceNow, StorageError> {
        let conn = open_db(
            path,
            "ServiceNow",
            &[("sn_records", &["tbl", "sys_id", "updated", "data"]), ("sn_sequences", &["prefix", "next"])],
            SCHEMA,
        )?;
        Ok(ServiceNow {
            inner: Arc::new(Inner {
                db: Mutex::new(conn),
                users: Mutex::new(Vec::new()),
                base_url: Mutex::new(String::new()),
            }),
        })
    }

    /// Adds seed data when the store holds no record at all (so a restart on the same file does
    /// not seed again): 45 `core_company` (30 vendors with `vendor` `"true"`, some of them
    /// manufacturers, and 15 non-vendor customers), 40 `cmdb_model`, 80 `customer_account`, 300
    /// `customer_contact` (references to an account and often a company; phones in varied
    /// formats), 200 `sn_customerservice_case` (references to a contact, its account and a model;
    /// `u_call_recording_url` on phone cases), 120 `proc_po` with 1 to 3 `proc_po_item` lines each.
    /// The data is always the same (a fixed-seed generator); only the `sys_created_on` and
    /// `sys_updated_on` times follow the clock, spread over the past six weeks.
    pub fn seed(&self) -> rusqlite::Result<()> {
        let mut conn = self.db();
        let n: i64 = conn.query_row("SELECT COUNT(*) FROM sn_records", [], |r| r.get(0))?;
        if n > 0 {
            return Ok(());
        }
        let tx = conn.transaction()?;
        for (table, rec, updated) in seed_records(now_ms()) {
            let id = str_of(&rec, "sys_id");
            insert_row(&tx, table, &id, updated, &rec)?;
        }
        for (prefix, next) in [("CS", 1201), ("PO", 1121), ("POL", 1401), ("ACC", 1081)] {
            tx.execute(
                "INSERT INTO sn_sequences (prefix, next) VALUES (?1, ?2)
                 ON CONFLICT(prefix) DO UPDATE SET next = MAX(next, excluded.next)",
                params![prefix, next],
            )?;
        }
        tx.commit()
    }

    /// Adds (or replaces) a user: `password` is for Basic authentication, `roles` gate the tables
    /// (see the module documentation). A Bearer token whose user has this name gets these roles.
    pub fn add_user(&self, username: &str, password: &str, roles: &[&str]) {
        let mut users = self.inner.users.lock().unwrap_or_else(|e| e.into_inner());
        users.retain(|u| u.name != username);
        users.push(User {
            name: username.to_string(),
            password: password.to_string(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        });
    }

    /// Sets the base URL of reference `link`s, `Location` and `Link` headers (e.g.
    /// `http://127.0.0.1:8780`). Empty (the default): `http://{Host}` of each request.
    pub fn set_base_url(&self, url: &str) {
        *self.inner.base_url.lock().unwrap_or_else(|e| e.into_inner()) = url.trim_end_matches('/').to_string();
    }

    /// The axum routes `/api/now/{*rest}`: the Table API under `/api/now/table/`,
    /// `/api/now/v1/table/` and `/api/now/v2/table/`; any other path answers 400. Merge it with the
    /// provider's `oauth_router()`, not with `Provider::router()`, whose placeholder
    /// `resource_router()` uses the same path.
    pub fn router(&self, provider: Provider, faults: Faults) -> Router {
        Router::new().route("/api/now/{*rest}", any(handle)).with_state(Ctx { sn: self.clone(), provider, faults })
    }

    /// Every record of `table` as stored, oldest first: all values strings, references as plain
    /// sys_ids. Empty for an unknown table.
    pub fn records(&self, table: &str) -> Vec<Value> {
        let conn = self.db();
        load(&conn, table).unwrap_or_default().into_iter().map(Value::Object).collect()
    }

    /// The number of records in `table`.
    pub fn count(&self, table: &str) -> usize {
        let conn = self.db();
        conn.query_row("SELECT COUNT(*) FROM sn_records WHERE tbl = ?1", [table], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as usize)
            .unwrap_or(0)
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        self.inner.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn base_url(&self, headers: &HeaderMap) -> String {
        let configured = self.inner.base_url.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !configured.is_empty() {
            return configured;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
        format!("http://{host}")
    }

    /// Who is calling, or the 401 answer.
    fn authenticate(&self, provider: &Provider, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
        let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
        let users = || self.inner.users.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if auth.len() >= 6 && auth[..6].eq_ignore_ascii_case("basic ") {
            let decoded = STANDARD.decode(auth[6..].trim()).ok().and_then(|b| String::from_utf8(b).ok());
            let (name, password) =
                decoded.as_deref().and_then(|s| s.split_once(':')).ok_or_else(|| Box::new(unauthenticated()))?;
            return users()
                .into_iter()
                .find(|u| u.name == name && u.password == password)
                .map(|u| Caller { name: u.name, roles: u.roles, all: false })
                .ok_or_else(|| Box::new(unauthenticated()));
        }
        let info = provider.authenticate(headers).map_err(|f| Box::new(f.into_response()))?;
        Ok(match info.user {
            None => Caller { name: info.client_id, roles: Vec::new(), all: true },
            Some(user) => {
                let roles = users().into_iter().find(|u| u.name == user).map(|u| u.roles).unwrap_or_default();
                Caller { name: user, roles, all: false }
            }
        })
    }
}

/// The authenticated caller.
struct Caller {
    name: String,
    roles: Vec<String>,
    /// Client credentials: every role.
    all: bool,
}

impl Caller {
    fn may(&self, table: &str, write: bool) -> bool {
        self.all
            || self
                .roles
                .iter()
                .any(|r| r == "admin" || *r == format!("{table}_write") || (!write && *r == format!("{table}_read")))
    }
}

#[derive(Clone)]
struct Ctx {
    sn: ServiceNow,
    provider: Provider,
    faults: Faults,
}

// ---------------------------------------------------------------------------------------------
// Storage

fn insert_row(
    conn: &Connection,
    table: &str,
    id: &str,
    updated: i64,
    rec: &Map<String, Value>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO sn_records (tbl, sys_id, updated, data) VALUES (?1, ?2, ?3, ?4)",
        params![table, id, updated, Value::Object(rec.clone()).to_string()],
    )?;
    Ok(())
}

fn parse_record(data: &str) -> Map<String, Value> {
    match serde_json::from_str(data) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn load(conn: &Connection, table: &str) -> rusqlite::Result<Vec<Map<String, Value>>> {
    let mut st = conn.prepare_cached("SELECT data FROM sn_records WHERE tbl = ?1 ORDER BY rowid")?;
    let rows = st.query_map([table], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.map(|d| parse_record(&d))).collect()
}

fn get_rec(conn: &Connection, table: &str, id: &str) -> rusqlite::Result<Option<Map<String, Value>>> {
    conn.query_row("SELECT data FROM sn_records WHERE tbl = ?1 AND sys_id = ?2", [table, id], |r| r.get::<_, String>(0))
        .optional()
        .map(|d| d.map(|d| parse_record(&d)))
}

fn next_number(conn: &Connection, prefix: &str) -> rusqlite::Result<String> {
    let n: i64 = conn.query_row(
        "INSERT INTO sn_sequences (prefix, next) VALUES (?1, 1002) ON CONFLICT(prefix) DO UPDATE SET next = next + 1
         RETURNING next - 1",
        [prefix],
        |r| r.get(0),
    )?;
    Ok(format!("{prefix}{n:07}"))
}

fn str_of(rec: &Map<String, Value>, field: &str) -> String {
    match rec.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => sn_string(v),
        None => String::new(),
    }
}

/// A client's value as ServiceNow stores it: a string (numbers and booleans written out, `null`
/// empty, a `{"value": …}` object its value, an array its items joined with commas).
fn sn_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => a.iter().map(sn_string).collect::<Vec<_>>().join(","),
        Value::Object(o) => o.get("value").or_else(|| o.get("sys_id")).map(sn_string).unwrap_or_default(),
    }
}

/// Referenced records, loaded a table at a time when first needed.
struct Lookup<'a> {
    conn: &'a Connection,
    cache: HashMap<&'static str, HashMap<String, Map<String, Value>>>,
}

impl<'a> Lookup<'a> {
    fn new(conn: &'a Connection) -> Lookup<'a> {
        Lookup { conn, cache: HashMap::new() }
    }

    fn record(&mut self, table: &'static str, id: &str) -> Option<Map<String, Value>> {
        let conn = self.conn;
        let t = self.cache.entry(table).or_insert_with(|| {
            load(conn, table).unwrap_or_default().into_iter().map(|r| (str_of(&r, "sys_id"), r)).collect()
        });
        t.get(id).cloned()
    }

    fn display(&mut self, table: &'static str, id: &str) -> String {
        let Some(def) = table_def(table) else { return String::new() };
        self.record(table, id).map(|r| str_of(&r, def.display)).unwrap_or_default()
    }
}

/// Whether `field` names a column of `def`, dot-walking through references (`account.name`).
fn valid_field(def: &TableDef, field: &str) -> bool {
    match field.split_once('.') {
        Some((head, tail)) => def.ref_table(head).and_then(table_def).is_some_and(|d| valid_field(d, tail)),
        None => def.has(field),
    }
}

/// The value of `field` (dot-walks included) in `rec`; `None` for an invalid field.
fn value_of(rec: &Map<String, Value>, def: &TableDef, field: &str, lk: &mut Lookup) -> Option<String> {
    match field.split_once('.') {
        Some((head, tail)) => {
            let table = def.ref_table(head)?;
            let rdef = table_def(table)?;
            if !valid_field(rdef, tail) {
                return None;
            }
            let id = str_of(rec, head);
            match lk.record(table, &id) {
                Some(r) => value_of(&r, rdef, tail, lk),
                None => Some(String::new()),
            }
        }
        None => (def.has(field) || rec.contains_key(field)).then(|| str_of(rec, field)),
    }
}

// ---------------------------------------------------------------------------------------------
// Encoded queries

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
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
struct Cond {
    field: String,
    op: Op,
    value: String,
}

/// A parsed `sysparm_query`: `^NQ` groups (any may match), each an AND of OR-clauses, and the
/// `ORDERBY` keys (`true`: descending).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Query {
    groups: Vec<Vec<Vec<Cond>>>,
    order: Vec<(String, bool)>,
}

/// Operators, longest spellings first where one is a prefix of another.
const OPS: [(&str, Op); 15] = [
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
fn parse_query(s: &str, def: &TableDef) -> Query {
    let mut q = Query::default();
    for group in s.split("^NQ") {
        let mut clauses: Vec<Vec<Cond>> = Vec::new();
        for part in group.split('^') {
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

fn parse_cond(s: &str, def: &TableDef) -> Option<Cond> {
    let end =
        s.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')).unwrap_or(s.len());
    let (field, rest) = s.split_at(end);
    if field.is_empty() || !valid_field(def, field) {
        return None;
    }
    let (tok, op) = OPS.iter().find(|(tok, _)| rest.starts_with(tok))?;
    Some(Cond { field: field.to_string(), op: *op, value: query_value(&rest[tok.len()..]) })
}

/// A condition's value, with `javascript:gs.dateGenerate('2024-01-01','00:00:00')` turned into
/// `2024-01-01 00:00:00`.
fn query_value(v: &str) -> String {
    if let Some(args) = v.strip_prefix("javascript:gs.dateGenerate(") {
        let parts: Vec<&str> = args.split('\'').collect();
        if let (Some(date), Some(time)) = (parts.get(1), parts.get(3)) {
            return format!("{date} {time}");
        }
    }
    v.to_string()
}

/// Compares two values: numerically when both are numbers, else as strings (dates written
/// `YYYY-MM-DD HH:MM:SS` compare correctly so).
fn compare(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

impl Cond {
    fn matches(&self, rec: &Map<String, Value>, def: &TableDef, lk: &mut Lookup) -> bool {
        let Some(v) = value_of(rec, def, &self.field, lk) else { return true };
        let want = self.value.as_str();
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
    fn matches(&self, rec: &Map<String, Value>, def: &TableDef, lk: &mut Lookup) -> bool {
        self.groups.is_empty()
            || self.groups.iter().any(|g| g.iter().all(|clause| clause.iter().any(|c| c.matches(rec, def, lk))))
    }
}

// ---------------------------------------------------------------------------------------------
// Parameters and rendering

/// Decoded query parameters.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Params {
        Params(url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn is_true(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Display {
    False,
    True,
    All,
}

/// How to write records out.
struct View {
    fields: Option<Vec<String>>,
    display: Display,
    exclude_link: bool,
    base: String,
}

impl View {
    fn new(p: &Params, def: &TableDef, base: String) -> View {
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

    fn render(&self, rec: &Map<String, Value>, def: &TableDef, lk: &mut Lookup) -> Value {
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

    fn field(&self, rec: &Map<String, Value>, def: &TableDef, name: &str, lk: &mut Lookup) -> Value {
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

// ---------------------------------------------------------------------------------------------
// Responses

fn json_value(status: StatusCode, v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT));
    r
}

fn sn_error(status: StatusCode, message: &str, detail: Value) -> Response {
    json_value(status, &json!({"error": {"message": message, "detail": detail}, "status": "failure"}))
}

fn unauthenticated() -> Response {
    sn_error(StatusCode::UNAUTHORIZED, "User Not Authenticated", json!("Required to provide Auth information"))
}

fn not_found() -> Response {
    sn_error(
        StatusCode::NOT_FOUND,
        "No Record found",
        json!("Record doesn't exist or ACL restricts the record retrieval"),
    )
}

/// The fault knob's 500.
fn simulated_failure() -> Response {
    sn_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal server error",
        json!("The sandbox simulated a server failure; retry the request"),
    )
}

/// A real failure of the sandbox's storage, said as such.
fn storage_error(e: &rusqlite::Error) -> Response {
    let detail = storage_failed(e);
    eprintln!("linkrun sandbox: ServiceNow: {detail}");
    sn_error(StatusCode::INTERNAL_SERVER_ERROR, "Sandbox storage error", json!(detail))
}

fn bad_body() -> Response {
    sn_error(StatusCode::BAD_REQUEST, "Exception while reading request", json!("The payload is not valid JSON."))
}

/// The request body as a JSON object.
fn body_object(body: &[u8]) -> Result<Map<String, Value>, Box<Response>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Box::new(bad_body())),
    }
}

// ---------------------------------------------------------------------------------------------
// Handler

async fn handle(State(ctx): State<Ctx>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match ctx.sn.authenticate(&ctx.provider, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let path = uri.path().strip_prefix("/api/now/").unwrap_or("");
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let (v1, rest) = match segs.as_slice() {
        ["v1", rest @ ..] => (true, rest),
        ["v2", rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    let (table, id) = match rest {
        ["table", t] => (*t, None),
        ["table", t, id] => (*t, Some(*id)),
        _ => {
            return sn_error(StatusCode::BAD_REQUEST, "Requested URI does not represent any resource", Value::Null);
        }
    };
    let Some(def) = table_def(table) else {
        return sn_error(StatusCode::BAD_REQUEST, &format!("Invalid table {table}"), Value::Null);
    };
    let write = !matches!(method, Method::GET | Method::HEAD);
    if !caller.may(def.name, write) {
        return json_value(
            StatusCode::FORBIDDEN,
            &json!({"error": {"detail": "Failed API level ACL Validation", "message": "User Not Authorized"},
                    "status": "failure"}),
        );
    }
    match ctx.faults.before(&format!("servicenow:{}", caller.name)).await {
        Some(Fault::RateLimited { retry_after }) => return rate_limited(&ctx.faults, retry_after),
        Some(Fault::ServerError) => return simulated_failure(),
        None => {}
    }
    let base = ctx.sn.base_url(&headers);
    let p = Params::parse(uri.query());
    let conn = ctx.sn.db();
    let result = match (&method, id) {
        (&Method::GET, None) => list(&conn, def, &p, base, uri.path(), v1),
        (&Method::GET, Some(id)) => get_one(&conn, def, id, &p, base),
        (&Method::POST, None) => insert(&conn, def, &body, &caller, &p, base),
        (&Method::PUT | &Method::PATCH, Some(id)) => update(&conn, def, id, &body, &caller, &p, base),
        (&Method::DELETE, Some(id)) => delete(&conn, def, id),
        _ => Ok(sn_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not Supported",
            json!(format!("{method} method not supported for API")),
        )),
    };
    result.unwrap_or_else(|e| storage_error(&e))
}

fn rate_limited(faults: &Faults, retry_after: u64) -> Response {
    let limit = faults.knobs().rate_limit_per_minute.unwrap_or(0);
    let mut r = sn_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
        json!(format!("Rate limit of {limit} requests per minute for Table API exceeded")),
    );
    let reset = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + retry_after;
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    h.insert("x-ratelimit-rule", HeaderValue::from_static(RATE_LIMIT_RULE));
    r
}

fn list(
    conn: &Connection,
    def: &TableDef,
    p: &Params,
    base: String,
    path: &str,
    v1: bool,
) -> rusqlite::Result<Response> {
    let offset = match p.get("sysparm_offset").and_then(|o| o.trim().parse::<i64>().ok()) {
        Some(o) if o < 0 => {
            return Ok(sn_error(
                StatusCode::BAD_REQUEST,
                &format!("offset is {o}"),
                json!("Negative offset is not supported"),
            ));
        }
        Some(o) => o as usize,
        None => 0,
    };
    let limit = p
        .get("sysparm_limit")
        .and_then(|l| l.trim().parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map_or(DEFAULT_LIMIT, |l| l as usize);
    let query = p.get("sysparm_query").map(|q| parse_query(q, def)).unwrap_or_default();
    let plain: Vec<Cond> =
        p.0.iter()
            .filter(|(k, _)| !k.starts_with("sysparm_") && valid_field(def, k))
            .map(|(k, v)| Cond { field: k.clone(), op: Op::Eq, value: v.clone() })
            .collect();
    let mut lk = Lookup::new(conn);
    let mut matched: Vec<Map<String, Value>> = load(conn, def.name)?
        .into_iter()
        .filter(|r| plain.iter().all(|c| c.matches(r, def, &mut lk)) && query.matches(r, def, &mut lk))
        .collect();
    if !query.order.is_empty() {
        let mut keyed: Vec<(Vec<String>, Map<String, Value>)> = matched
            .into_iter()
            .map(|r| {
                let k = query.order.iter().map(|(f, _)| value_of(&r, def, f, &mut lk).unwrap_or_default()).collect();
                (k, r)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            query
                .order
                .iter()
                .zip(a.iter().zip(b))
                .map(|((_, desc), (x, y))| if *desc { compare(y, x) } else { compare(x, y) })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
        matched = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let total = matched.len();
    if v1 && total == 0 {
        return Ok(not_found());
    }
    let view = View::new(p, def, base);
    let page: Vec<Value> = matched.iter().skip(offset).take(limit).map(|r| view.render(r, def, &mut lk)).collect();
    let mut resp = json_value(StatusCode::OK, &json!({"result": page}));
    let h = resp.headers_mut();
    if !p.is_true("sysparm_no_count") {
        h.insert("x-total-count", HeaderValue::from(total));
    }
    if !p.is_true("sysparm_suppress_pagination_header") {
        let kept: Vec<&(String, String)> =
            p.0.iter().filter(|(k, _)| k != "sysparm_offset" && k != "sysparm_limit").collect();
        let link = |o: usize| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &kept {
                s.append_pair(k, v);
            }
            s.append_pair("sysparm_limit", &limit.to_string()).append_pair("sysparm_offset", &o.to_string());
            format!("<{}{path}?{}>", view.base, s.finish())
        };
        let mut rels = vec![format!("{};rel=\"first\"", link(0))];
        if offset > 0 {
            rels.push(format!("{};rel=\"prev\"", link(offset.saturating_sub(limit))));
        }
        if offset.saturating_add(limit) < total {
            rels.push(format!("{};rel=\"next\"", link(offset + limit)));
        }
        let last = if total == 0 { 0 } else { (total - 1) / limit * limit };
        rels.push(format!("{};rel=\"last\"", link(last)));
        if let Ok(v) = HeaderValue::from_str(&rels.join(",")) {
            h.insert(header::LINK, v);
        }
    }
    Ok(resp)
}

fn get_one(conn: &Connection, def: &TableDef, id: &str, p: &Params, base: String) -> rusqlite::Result<Response> {
    let Some(rec) = get_rec(conn, def.name, id)? else { return Ok(not_found()) };
    let mut lk = Lookup::new(conn);
    let v = View::new(p, def, base).render(&rec, def, &mut lk);
    Ok(json_value(StatusCode::OK, &json!({"result": v})))
}

/// The columns a client may write, as strings (`sys_*` columns and unknown names are dropped).
fn writable(def: &TableDef, obj: &Map<String, Value>) -> Vec<(String, String)> {
    obj.iter()
        .filter(|(k, _)| !k.starts_with("sys_") && (def.columns.contains(&k.as_str()) || is_custom(k)))
        .map(|(k, v)| (k.clone(), sn_string(v)))
        .collect()
}

fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

fn new_sys_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough for a sandbox when the OS has no random source.
        let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = n.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Fills the columns ServiceNow computes: a contact's `name`, a case's account from its contact.
fn derive(def: &TableDef, rec: &mut Map<String, Value>, conn: &Connection) -> rusqlite::Result<()> {
    match def.name {
        "customer_contact" => {
            let name = format!("{} {}", str_of(rec, "first_name"), str_of(rec, "last_name")).trim().to_string();
            rec.insert("name".into(), Value::String(name));
        }
        "sn_customerservice_case" if str_of(rec, "account").is_empty() => {
            let contact = str_of(rec, "contact");
            if let Some(c) = get_rec(conn, "customer_contact", &contact)? {
                let account = str_of(&c, "account");
                if !account.is_empty() {
                    rec.insert("account".into(), Value::String(account));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn insert(
    conn: &Connection,
    def: &TableDef,
    body: &[u8],
    caller: &Caller,
    p: &Params,
    base: String,
) -> rusqlite::Result<Response> {
    let obj = match body_object(body) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let now = now_ms();
    let mut rec = Map::new();
    for (k, v) in writable(def, &obj) {
        rec.insert(k, Value::String(v));
    }
    let wanted = obj.get("sys_id").map(sn_string).filter(|s| is_sys_id(s));
    let id = match wanted {
        Some(s) if get_rec(conn, def.name, &s)?.is_none() => s,
        _ => new_sys_id(),
    };
    if let Some(prefix) = def.number {
        if str_of(&rec, "number").is_empty() {
            rec.insert("number".into(), Value::String(next_number(conn, prefix)?));
        }
    }
    let defaults: &[(&str, &str)] = match def.name {
        "sn_customerservice_case" => &[("state", "1"), ("priority", "4")],
        "proc_po" => &[("status", "requested")],
        "customer_contact" => &[("active", "true")],
        _ => &[],
    };
    for (k, v) in defaults {
        if str_of(&rec, k).is_empty() {
            rec.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    if def.name == "sn_customerservice_case" && str_of(&rec, "opened_at").is_empty() {
        rec.insert("opened_at".into(), Value::String(format_time(now)));
    }
    if def.name != "customer_contact" || str_of(&rec, "name").is_empty() {
        derive(def, &mut rec, conn)?;
    }
    stamp(&mut rec, def.name, &id, now, now, &caller.name, 0);
    insert_row(conn, def.name, &id, now, &rec)?;
    let mut lk = Lookup::new(conn);
    let view = View::new(p, def, base);
    let location = format!("{}/api/now/table/{}/{id}", view.base, def.name);
    let mut resp = json_value(StatusCode::CREATED, &json!({"result": view.render(&rec, def, &mut lk)}));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn stamp(rec: &mut Map<String, Value>, table: &str, id: &str, created: i64, updated: i64, user: &str, mods: u64) {
    let mut set = |k: &str, v: String| {
        rec.insert(k.to_string(), Value::String(v));
    };
    set("sys_id", id.to_string());
    set("sys_created_on", format_time(created));
    set("sys_created_by", user.to_string());
    set("sys_updated_on", format_time(updated));
    set("sys_updated_by", user.to_string());
    set("sys_mod_count", mods.to_string());
    set("sys_class_name", table.to_string());
}

fn update(
    conn: &Connection,
    def: &TableDef,
    id: &str,
    body: &[u8],
    caller: &Caller,
    p: &Params,
    base: String,
) -> rusqlite::Result<Response> {
    let Some(mut rec) = get_rec(conn, def.name, id)? else { return Ok(not_found()) };
    let obj = match body_object(body) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let mut changed = false;
    let mut name_given = false;
    for (k, v) in writable(def, &obj) {
        name_given |= k == "name";
        if str_of(&rec, &k) != v {
            rec.insert(k, Value::String(v));
            changed = true;
        }
    }
    if changed {
        if def.name == "customer_contact" && !name_given {
            derive(def, &mut rec, conn)?;
        }
        let now = now_ms();
        let mods = str_of(&rec, "sys_mod_count").parse::<u64>().unwrap_or(0) + 1;
        rec.insert("sys_updated_on".into(), Value::String(format_time(now)));
        rec.insert("sys_updated_by".into(), Value::String(caller.name.clone()));
        rec.insert("sys_mod_count".into(), Value::String(mods.to_string()));
        conn.execute(
            "UPDATE sn_records SET updated = ?1, data = ?2 WHERE tbl = ?3 AND sys_id = ?4",
            params![now, Value::Object(rec.clone()).to_string(), def.name, id],
        )?;
    }
    let mut lk = Lookup::new(conn);
    let v = View::new(p, def, base).render(&rec, def, &mut lk);
    Ok(json_value(StatusCode::OK, &json!({"result": v})))
}

fn delete(conn: &Connection, def: &TableDef, id: &str) -> rusqlite::Result<Response> {
    let n = conn.execute("DELETE FROM sn_records WHERE tbl = ?1 AND sys_id = ?2", [def.name, id])?;
    if n == 0 {
        return Ok(not_found());
    }
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Time

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Seed data

/// SplitMix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len() as u64) as usize]
    }

    fn sys_id(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

const FIRST_NAMES: [&str; 32] = [
    "Abel", "Beth", "Carlos", "Dana", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kara", "Liam", "Maya",
    "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe", "Amit",
    "Bianca", "Chen", "Diego", "Emma", "Fatima",
];

const LAST_NAMES: [&str; 32] = [
    "Tuter",
    "Anderson",
    "Garcia",
    "Nakamura",
    "Okafor",
    "Schmidt",
    "Rossi",
    "Kowalski",
    "Haddad",
    "Johansson",
    "Patel",
    "Nguyen",
    "Müller",
    "O'Brien",
    "Silva",
    "Dubois",
    "Kim",
    "Novak",
    "Fischer",
    "Moreau",
    "Lopez",
    "Ivanova",
    "Baker",
    "Chandra",
    "Hughes",
    "Lindqvist",
    "Mendes",
    "Tanaka",
    "Walsh",
    "Yilmaz",
    "Zhang",
    "Brooks",
];

const NAME_PARTS: [&str; 20] = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Pied Piper",
    "Massive Dynamic",
    "Aperture",
    "Oscorp",
    "Gringotts",
    "Monarch",
    "Nakatomi",
    "Zorg",
];

const NAME_SUFFIXES: [&str; 6] = ["Corp", "Inc.", "Ltd", "Group", "Holdings", "Industries"];

const CITIES: [(&str, &str); 10] = [
    ("San Diego", "USA"),
    ("Chicago", "USA"),
    ("New York", "USA"),
    ("Austin", "USA"),
    ("London", "UK"),
    ("Berlin", "Germany"),
    ("Toronto", "Canada"),
    ("Chennai", "India"),
    ("Sydney", "Australia"),
    ("Paris", "France"),
];

const TITLES: [&str; 8] = [
    "CEO",
    "CTO",
    "IT Manager",
    "Procurement Lead",
    "Office Manager",
    "Sales Director",
    "Support Engineer",
    "Operations Analyst",
];

const PRODUCT_KINDS: [&str; 10] =
    ["Laptop", "Desktop", "Monitor", "Router", "Switch", "Printer", "Docking Station", "Headset", "Tablet", "Server"];

const CASE_SUBJECTS: [&str; 10] = [
    "Cannot log in to the portal",
    "Device does not power on",
    "Invoice shows the wrong amount",
    "Request for a replacement unit",
    "Slow network after the update",
    "Printer jams on every job",
    "Warranty question",
    "Shipment arrived damaged",
    "License key not accepted",
    "Screen flickers intermittently",
];

/// A fictional phone number (555-01xx) in one of several formats.
fn phone(rng: &mut Rng) -> String {
    let area = rng.pick(&["555", "212", "415", "312", "646", "617", "206"]);
    let line = format!("01{:02}", rng.below(100));
    match rng.below(8) {
        0 => format!("+1 {area}-555-{line}"),
        1 => format!("({area}) 555-{line}"),
        2 => format!("{area}555{line}"),
        3 => format!("{area}-555-{line}"),
        4 => format!("+1{area}555{line}"),
        5 => format!("{area}.555.{line}"),
        6 => format!("+1 555-{line}"),
        _ => format!("+1 ({area}) 555 {line}"),
    }
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .filter_map(
            |c| if c.is_ascii_alphanumeric() { Some(c.to_ascii_lowercase()) } else { (c == ' ').then_some('-') },
        )
        .collect();
    s.trim_matches('-').to_string()
}

fn ascii_lower(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'ü' => Some('u'),
            c if c.is_ascii_alphanumeric() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn obj(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect()
}

/// Every seed record: `(table, record, updated ms)`, referenced records before their referrers.
fn seed_records(now: i64) -> Vec<(&'static str, Map<String, Value>, i64)> {
    let mut rng = Rng(0x5e41_ce00_0000_0001);
    let mut out: Vec<(&'static str, Map<String, Value>, i64)> = Vec::new();
    let push = |out: &mut Vec<(&'static str, Map<String, Value>, i64)>,
                rng: &mut Rng,
                table: &'static str,
                mut rec: Map<String, Value>|
     -> String {
        let hour = 3600 * 1000;
        let created = now - hour - rng.below(42 * 24 * hour as u64) as i64;
        let room = (now - hour - created).min(7 * 24 * hour);
        let updated = created + rng.below(room.max(0) as u64 + 1) as i64;
        let id = rng.sys_id();
        let user = rng.pick(&["admin", "abel.tuter", "beth.anglin", "system"]);
        stamp(&mut rec, table, &id, created, updated, user, rng.below(5));
        out.push((table, rec, updated));
        id
    };
    let mut names = HashSet::new();
    // Names from a part and a suffix (a place added once the plain ones run short).
    let mut company_name = |rng: &mut Rng| {
        for attempt in 0.. {
            let mut n = format!("{} {}", rng.pick(&NAME_PARTS), rng.pick(&NAME_SUFFIXES));
            if attempt > 20 {
                n = format!("{} {n}", CITIES[rng.below(CITIES.len() as u64) as usize].0);
            }
            if names.insert(n.clone()) {
                return n;
            }
        }
        String::new()
    };
    // Companies: 30 vendors (every third a manufacturer), 15 customers.
    let mut vendors = Vec::new();
    let mut manufacturers = Vec::new();
    let mut customers = Vec::new();
    for i in 0..45 {
        let name = company_name(&mut rng);
        let (city, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
        let vendor = i < 30;
        let manufacturer = vendor && i % 3 == 0;
        let rec = obj(&[
            ("name", name.clone()),
            ("vendor", vendor.to_string()),
            ("customer", (!vendor).to_string()),
            ("manufacturer", manufacturer.to_string()),
            ("phone", phone(&mut rng)),
            ("city", city.into()),
            ("country", country.into()),
            ("website", format!("https://www.{}.example.com", slug(&name))),
            ("notes", String::new()),
        ]);
        let id = push(&mut out, &mut rng, "core_company", rec);
        if manufacturer {
            manufacturers.push((id.clone(), name.clone()));
        }
        if vendor { vendors.push(id) } else { customers.push(id) }
    }
    // Models.
    let mut models = Vec::new();
    for i in 0..40 {
        let (maker, maker_name) = manufacturers[rng.below(manufacturers.len() as u64) as usize].clone();
        let kind = rng.pick(&PRODUCT_KINDS);
        let name = format!("{kind} {}{}", rng.pick(&["X", "Pro ", "S", "Z", "Elite "]), 100 + i * 7);
        let cost = 49 + rng.below(2950);
        let rec = obj(&[
            ("name", name.clone()),
            ("display_name", format!("{maker_name} {name}")),
            ("model_number", format!("MN-{:04}", 1000 + i * 13)),
            ("manufacturer", maker),
            ("cost", format!("{cost}.00")),
            ("short_description", format!("{kind} from {maker_name}")),
            ("status", if i % 10 == 9 { "Retired".into() } else { "In Production".into() }),
        ]);
        models.push((push(&mut out, &mut rng, "cmdb_model", rec), cost));
    }
    // Accounts (primary contacts are set once the contacts exist).
    let mut accounts = Vec::new();
    for i in 0..80 {
        let name = company_name(&mut rng);
        let (city, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
        let rec = obj(&[
            ("name", name.clone()),
            ("number", format!("ACC{:07}", 1001 + i)),
            ("phone", phone(&mut rng)),
            ("primary_contact", String::new()),
            ("customer", "true".into()),
            ("city", city.into()),
            ("country", country.into()),
            ("website", format!("https://www.{}.example.com", slug(&name))),
            ("notes", String::new()),
        ]);
        let idx = out.len();
        let id = push(&mut out, &mut rng, "customer_account", rec);
        accounts.push((id, slug(&name), idx));
    }
    // Contacts.
    let mut emails = HashSet::new();
    let mut contacts = Vec::new();
    for i in 0..300 {
        let first = rng.pick(&FIRST_NAMES);
        let last = rng.pick(&LAST_NAMES);
        let (account, domain, acc_idx) = accounts[rng.below(accounts.len() as u64) as usize].clone();
        let base = format!("{}.{}", ascii_lower(first), ascii_lower(last));
        let mut email = format!("{base}@{domain}.example.com");
        let mut n = 2;
        while !emails.insert(email.clone()) {
            email = format!("{base}{n}@{domain}.example.com");
            n += 1;
        }
        let company = if rng.below(2) == 0 {
            customers[rng.below(customers.len() as u64) as usize].clone()
        } else {
            String::new()
        };
        let (city, country) = CITIES[rng.below(CITIES.len() as u64) as usize];
        let rec = obj(&[
            ("first_name", first.into()),
            ("last_name", last.into()),
            ("name", format!("{first} {last}")),
            ("email", email.clone()),
            ("phone", phone(&mut rng)),
            ("mobile_phone", if rng.below(3) == 0 { String::new() } else { phone(&mut rng) }),
            ("account", account.clone()),
            ("company", company),
            ("title", rng.pick(&TITLES).into()),
            ("user_name", email.split('@').next().unwrap_or_default().to_string()),
            ("active", (i % 10 != 7).to_string()),
            ("city", city.into()),
            ("country", country.into()),
        ]);
        let id = push(&mut out, &mut rng, "customer_contact", rec);
        if let Some((_, acc, _)) = out.get_mut(acc_idx) {
            if str_of(acc, "primary_contact").is_empty() {
                acc.insert("primary_contact".into(), Value::String(id.clone()));
            }
        }
        contacts.push((id, account));
    }
    // Cases.
    for i in 0..200 {
        let (contact, account) = contacts[rng.below(contacts.len() as u64) as usize].clone();
        let channel = rng.pick(&["chat", "email", "phone", "phone", "social", "web"]);
        let subject = rng.pick(&CASE_SUBJECTS);
        let recording = if channel == "phone" {
            format!("https://recordings.example.com/calls/{:012x}.mp3", rng.next() >> 16)
        } else {
            String::new()
        };
        let state = rng.pick(&["1", "10", "18", "6", "3"]);
        let rec = obj(&[
            ("number", format!("CS{:07}", 1001 + i)),
            ("short_description", subject.into()),
            ("description", format!("{subject}. Reported by the customer via {channel}.")),
            ("contact", contact),
            ("account", account),
            ("contact_type", channel.into()),
            ("state", state.into()),
            ("priority", rng.pick(&["1", "2", "3", "3", "4", "4"]).into()),
            ("product", models[rng.below(models.len() as u64) as usize].0.clone()),
            ("opened_at", String::new()),
            ("closed_at", String::new()),
            ("u_call_recording_url", recording),
        ]);
        push(&mut out, &mut rng, "sn_customerservice_case", rec);
        if let Some((_, r, _)) = out.last_mut() {
            let opened = str_of(r, "sys_created_on");
            r.insert("opened_at".into(), Value::String(opened.clone()));
            if state == "3" {
                r.insert("closed_at".into(), Value::String(str_of(r, "sys_updated_on")));
            }
        }
    }
    // Purchase orders and their lines.
    let mut line_no = 1001;
    for i in 0..120 {
        let vendor = vendors[rng.below(vendors.len() as u64) as usize].clone();
        let lines: Vec<(String, u64, u64)> = (0..1 + rng.below(3))
            .map(|_| {
                let (m, cost) = models[rng.below(models.len() as u64) as usize].clone();
                (m, 1 + rng.below(20), cost)
            })
            .collect();
        let total: u64 = lines.iter().map(|(_, q, c)| q * c).sum();
        let status = rng.pick(&["requested", "approved", "ordered", "received", "canceled"]);
        let rec = obj(&[
            ("number", format!("PO{:07}", 1001 + i)),
            ("short_description", format!("Purchase of {} item lines", lines.len())),
            ("description", String::new()),
            ("vendor", vendor),
            ("status", status.into()),
            ("total_cost", format!("{total}.00")),
            ("ordered", String::new()),
            ("expected_delivery", String::new()),
            ("requested_by", rng.pick(&["abel.tuter", "beth.anglin", "admin"]).into()),
        ]);
        let po = push(&mut out, &mut rng, "proc_po", rec);
        if let Some((_, r, _)) = out.last_mut() {
            let created = str_of(r, "sys_created_on");
            r.insert("ordered".into(), Value::String(created.get(..10).unwrap_or_default().to_string()));
        }
        for (model, qty, cost) in lines {
            let rec = obj(&[
                ("number", format!("POL{line_no:07}")),
                ("purchase_order", po.clone()),
                ("model", model),
                ("short_description", String::new()),
                ("ordered_quantity", qty.to_string()),
                ("cost", format!("{cost}.00")),
                ("total_cost", format!("{}.00", qty * cost)),
                ("status", status.into()),
            ]);
            line_no += 1;
            push(&mut out, &mut rng, "proc_po_item", rec);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Knobs;
    use crate::oauth_provider::{ClientConfig, ProviderConfig, serve};

    struct T {
        base: String,
        http: reqwest::Client,
        sn: ServiceNow,
        faults: Faults,
        token: String,
    }

    struct Resp {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: Value,
    }

    async fn start(seed: bool) -> T {
        let mut cfg = ProviderConfig::servicenow("");
        cfg.clients = vec![ClientConfig::new("sn_client", "sn_secret", "acme")];
        cfg.users = vec![
            ("admin".into(), "pw1".into()),
            ("reader".into(), "pw2".into()),
            ("nobody".into(), "pw3".into()),
            ("stranger".into(), "pw4".into()),
        ];
        let provider = Provider::new(cfg);
        let sn = ServiceNow::open(None).unwrap();
        sn.add_user("admin", "pw1", &["admin"]);
        sn.add_user("reader", "pw2", &["customer_contact_read", "customer_account_write"]);
        sn.add_user("nobody", "pw3", &[]);
        if seed {
            sn.seed().unwrap();
        }
        let faults = Faults::default();
        let router = provider.oauth_router().merge(sn.router(provider.clone(), faults.clone()));
        let (addr, _server) = serve(router).await.unwrap();
        let mut t =
            T { base: format!("http://{addr}"), http: reqwest::Client::new(), sn, faults, token: String::new() };
        t.token = t.password_token("admin", "pw1").await;
        t
    }

    fn q(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
    }

    impl T {
        async fn token_request(&self, pairs: &[(&str, &str)]) -> String {
            let r = self
                .http
                .post(format!("{}/oauth_token.do", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(q(pairs))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            v["access_token"].as_str().unwrap().to_string()
        }

        async fn password_token(&self, user: &str, password: &str) -> String {
            self.token_request(&[
                ("grant_type", "password"),
                ("client_id", "sn_client"),
                ("client_secret", "sn_secret"),
                ("username", user),
                ("password", password),
            ])
            .await
        }

        async fn call(&self, method: reqwest::Method, path: &str, auth: Option<&str>, body: Option<&str>) -> Resp {
            let mut rb = self.http.request(method, format!("{}{path}", self.base)).header("accept", "application/json");
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            if let Some(b) = body {
                rb = rb.header("content-type", "application/json").body(b.to_string());
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let text = r.text().await.unwrap();
            let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
            Resp { status, headers, body }
        }

        fn bearer(&self) -> String {
            format!("Bearer {}", self.token)
        }

        async fn get(&self, path: &str) -> Resp {
            self.call(reqwest::Method::GET, path, Some(&self.bearer()), None).await
        }

        async fn post(&self, path: &str, body: &Value) -> Resp {
            self.call(reqwest::Method::POST, path, Some(&self.bearer()), Some(&body.to_string())).await
        }

        /// The list of `table` filtered by `query`, as the records' `field` values.
        async fn query(&self, table: &str, query: &str, field: &str) -> Vec<String> {
            let r = self.get(&format!("/api/now/table/{table}?{}", q(&[("sysparm_query", query)]))).await;
            assert_eq!(r.status, 200, "{query}: {}", r.body);
            r.body["result"].as_array().unwrap().iter().map(|x| x[field].as_str().unwrap().to_string()).collect()
        }
    }

    fn header(r: &Resp, name: &str) -> String {
        r.headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    fn is_time(s: &str) -> bool {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok()
    }

    #[test]
    fn query_parsing() {
        let def = table_def("customer_contact").unwrap();
        let c = |f: &str, op: Op, v: &str| Cond { field: f.into(), op, value: v.into() };
        let got = parse_query("active=true^first_name=Abel^ORlast_name=Tuter^bogus=1^ORDERBYDESCname", def);
        assert_eq!(
            got,
            Query {
                groups: vec![vec![
                    vec![c("active", Op::Eq, "true")],
                    vec![c("first_name", Op::Eq, "Abel"), c("last_name", Op::Eq, "Tuter")],
                ]],
                order: vec![("name".into(), true)],
            }
        );
        let got = parse_query("sys_updated_on>javascript:gs.dateGenerate('2024-01-01','00:00:00')", def);
        assert_eq!(got.groups[0][0][0], c("sys_updated_on", Op::Gt, "2024-01-01 00:00:00"));
        let got = parse_query("emailISEMPTY^NQaccount.nameSTARTSWITHAc^emailNOT LIKEx^phoneIN1,2", def);
        assert_eq!(got.groups.len(), 2);
        assert_eq!(got.groups[0][0][0], c("email", Op::IsEmpty, ""));
        assert_eq!(got.groups[1][0][0], c("account.name", Op::StartsWith, "Ac"));
        assert_eq!(got.groups[1][1][0], c("email", Op::NotLike, "x"));
        assert_eq!(got.groups[1][2][0], c("phone", Op::In, "1,2"));
        assert!(parse_query("", def).groups.iter().all(|g| g.is_empty()));
        assert!(parse_query("account.nosuch=1^ORDERBYnosuch", def).order.is_empty());
    }

    #[test]
    fn seed_is_deterministic_realistic_and_idempotent() {
        let a = ServiceNow::open(None).unwrap();
        let b = ServiceNow::open(None).unwrap();
        a.seed().unwrap();
        b.seed().unwrap();
        a.seed().unwrap();
        for t in TABLE_NAMES {
            assert!(a.count(t) > 0, "{t}");
            assert_eq!(a.count(t), b.count(t));
            let strip = |v: Vec<Value>| -> Vec<Value> {
                v.into_iter()
                    .map(|mut r| {
                        let m = r.as_object_mut().unwrap();
                        m.remove("sys_created_on");
                        m.remove("sys_updated_on");
                        m.remove("opened_at");
                        m.remove("closed_at");
                        m.remove("ordered");
                        r
                    })
                    .collect()
            };
            assert_eq!(strip(a.records(t)), strip(b.records(t)), "{t}");
        }
        assert_eq!(a.count("customer_contact"), 300);
        let companies = a.records("core_company");
        assert_eq!(companies.iter().filter(|c| c["vendor"] == "true").count(), 30);
        assert_eq!(companies.iter().filter(|c| c["vendor"] == "false").count(), 15);
        let contacts = a.records("customer_contact");
        let accounts: HashSet<String> =
            a.records("customer_account").iter().map(|r| r["sys_id"].as_str().unwrap().to_string()).collect();
        let emails: HashSet<&str> = contacts.iter().map(|c| c["email"].as_str().unwrap()).collect();
        assert_eq!(emails.len(), contacts.len());
        let formats: HashSet<String> = contacts
            .iter()
            .map(|c| {
                c["phone"].as_str().unwrap().chars().map(|ch| if ch.is_ascii_digit() { '9' } else { ch }).collect()
            })
            .collect();
        assert!(formats.len() >= 5, "{formats:?}");
        for c in &contacts {
            assert!(accounts.contains(c["account"].as_str().unwrap()));
            assert!(is_sys_id(c["sys_id"].as_str().unwrap()));
            assert!(is_time(c["sys_updated_on"].as_str().unwrap()));
            assert!(c.as_object().unwrap().values().all(Value::is_string));
        }
        let updated: HashSet<&str> = contacts.iter().map(|c| &c["sys_updated_on"].as_str().unwrap()[..10]).collect();
        assert!(updated.len() > 14, "spread over weeks");
        let cases = a.records("sn_customerservice_case");
        assert!(cases.iter().any(|c| c["u_call_recording_url"].as_str().unwrap().starts_with("https://")));
        assert!(cases.iter().all(|c| c["number"].as_str().unwrap().starts_with("CS")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn insert_get_update_delete() {
        let t = start(false).await;
        let acc = t.post("/api/now/table/customer_account", &json!({"name": "Acme Corp", "phone": 5550100})).await;
        assert_eq!(acc.status, 201, "{}", acc.body);
        let acc_id = acc.body["result"]["sys_id"].as_str().unwrap().to_string();
        assert!(is_sys_id(&acc_id));
        assert_eq!(acc.body["result"]["phone"], "5550100", "numbers become strings");
        assert_eq!(acc.body["result"]["number"], "ACC0001001");
        let r = t
            .post(
                "/api/now/v2/table/customer_contact",
                &json!({"first_name": "Abel", "last_name": "Tuter", "email": "abel@acme.example.com",
                        "account": acc_id, "active": false, "bogus": "x", "sys_created_by": "me"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let rec = &r.body["result"];
        let id = rec["sys_id"].as_str().unwrap().to_string();
        assert!(is_sys_id(&id));
        assert_eq!(header(&r, "location"), format!("{}/api/now/table/customer_contact/{id}", t.base));
        assert_eq!(rec["active"], "false");
        assert_eq!(rec["name"], "Abel Tuter");
        assert_eq!(rec["sys_created_by"], "admin");
        assert_eq!(rec["sys_mod_count"], "0");
        assert!(rec.get("bogus").is_none());
        assert_eq!(rec["mobile_phone"], "");
        let now = chrono::Utc::now().naive_utc();
        let on = chrono::NaiveDateTime::parse_from_str(rec["sys_updated_on"].as_str().unwrap(), "%Y-%m-%d %H:%M:%S")
            .unwrap();
        assert!((now - on).num_seconds().abs() < 5, "UTC time");
        assert_eq!(
            rec["account"],
            json!({"link": format!("{}/api/now/table/customer_account/{acc_id}", t.base), "value": acc_id})
        );
        assert!(rec.as_object().unwrap().iter().all(|(k, v)| k == "account" || k == "company" || v.is_string()));
        assert_eq!(rec["company"], "", "empty reference");

        let g = t.get(&format!("/api/now/table/customer_contact/{id}")).await;
        assert_eq!(g.status, 200);
        assert_eq!(g.body["result"], *rec);

        // PUT and PATCH change only what they are given and answer every field.
        let put = t
            .call(
                reqwest::Method::PUT,
                &format!("/api/now/table/customer_contact/{id}"),
                Some(&t.bearer()),
                Some(r#"{"title": "CTO", "last_name": "Tutor"}"#),
            )
            .await;
        assert_eq!(put.status, 200);
        assert_eq!(put.body["result"]["title"], "CTO");
        assert_eq!(put.body["result"]["name"], "Abel Tutor");
        assert_eq!(put.body["result"]["email"], "abel@acme.example.com");
        assert_eq!(put.body["result"]["sys_mod_count"], "1");
        let patch = t
            .call(
                reqwest::Method::PATCH,
                &format!("/api/now/v1/table/customer_contact/{id}"),
                Some(&t.bearer()),
                Some(r#"{"phone": "(555) 010-0101", "account": {"value": ""}}"#),
            )
            .await;
        assert_eq!(patch.status, 200);
        assert_eq!(patch.body["result"]["phone"], "(555) 010-0101");
        assert_eq!(patch.body["result"]["account"], "");
        assert_eq!(patch.body["result"]["title"], "CTO");
        let same = t
            .call(
                reqwest::Method::PATCH,
                &format!("/api/now/table/customer_contact/{id}"),
                Some(&t.bearer()),
                Some(r#"{"title": "CTO"}"#),
            )
            .await;
        assert_eq!(same.body["result"]["sys_mod_count"], "2", "no change, no update");

        // A case gets a number, defaults and its contact's account.
        let c2 = t
            .post(
                "/api/now/table/customer_contact",
                &json!({"first_name": "Beth", "last_name": "A", "account": acc_id}),
            )
            .await;
        let c2_id = c2.body["result"]["sys_id"].as_str().unwrap().to_string();
        let case = t
            .post(
                "/api/now/table/sn_customerservice_case",
                &json!({"short_description": "Call", "contact": c2_id, "contact_type": "phone",
                        "u_call_recording_url": "https://rec.example.com/1.mp3"}),
            )
            .await;
        assert_eq!(case.status, 201);
        assert_eq!(case.body["result"]["number"], "CS0001001");
        assert_eq!(case.body["result"]["state"], "1");
        assert_eq!(case.body["result"]["account"]["value"], acc_id);
        assert_eq!(case.body["result"]["u_call_recording_url"], "https://rec.example.com/1.mp3");
        assert!(is_time(case.body["result"]["opened_at"].as_str().unwrap()));
        let po = t.post("/api/now/table/proc_po", &json!({"short_description": "x"})).await;
        assert_eq!(po.body["result"]["number"], "PO0001001");

        // Delete, then 404s.
        let d = t
            .call(reqwest::Method::DELETE, &format!("/api/now/table/customer_contact/{id}"), Some(&t.bearer()), None)
            .await;
        assert_eq!(d.status, 204);
        assert_eq!(d.body, Value::Null);
        let not_found = json!({"error": {"message": "No Record found",
            "detail": "Record doesn't exist or ACL restricts the record retrieval"}, "status": "failure"});
        for m in [reqwest::Method::GET, reqwest::Method::DELETE, reqwest::Method::PUT, reqwest::Method::PATCH] {
            let r = t.call(m, &format!("/api/now/table/customer_contact/{id}"), Some(&t.bearer()), Some("{}")).await;
            assert_eq!((r.status, &r.body), (404, &not_found));
        }
        assert_eq!(t.count("customer_contact"), 1);

        // Errors.
        let bad = t.get("/api/now/table/incidentz").await;
        assert_eq!(
            (bad.status, bad.body),
            (400, json!({"error": {"message": "Invalid table incidentz", "detail": null}, "status": "failure"}))
        );
        let bad =
            t.call(reqwest::Method::POST, "/api/now/table/customer_contact", Some(&t.bearer()), Some("{nope")).await;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.body["status"], "failure");
        assert!(bad.body["error"]["message"].is_string());
    }

    impl T {
        fn count(&self, table: &str) -> usize {
            self.sn.count(table)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn encoded_queries() {
        let t = start(false).await;
        let acme = t.post("/api/now/table/customer_account", &json!({"name": "Acme"})).await.body["result"]["sys_id"]
            .as_str()
            .unwrap()
            .to_string();
        let globex =
            t.post("/api/now/table/customer_account", &json!({"name": "Globex"})).await.body["result"]["sys_id"]
                .as_str()
                .unwrap()
                .to_string();
        for (first, last, email, title, account, n) in [
            ("Ann", "Lee", "ann@acme.com", "CEO", &acme, 3),
            ("Bob", "Lee", "bob@globex.com", "", &globex, 10),
            ("Cid", "Moss", "cid@acme.com", "CTO", &acme, 2),
            ("Dee", "Abe", "", "Dev", &globex, 25),
        ] {
            let r = t
                .post(
                    "/api/now/table/customer_contact",
                    &json!({"first_name": first, "last_name": last, "email": email, "title": title,
                            "account": account, "u_score": n}),
                )
                .await;
            assert_eq!(r.status, 201);
        }
        let names = |q: &'static str| {
            let t = &t;
            async move { t.query("customer_contact", q, "first_name").await }
        };
        assert_eq!(names("last_name=Lee").await, ["Ann", "Bob"]);
        assert_eq!(names("last_name=lee").await, Vec::<String>::new(), "case-sensitive");
        assert_eq!(names("last_name!=Lee").await, ["Cid", "Dee"]);
        assert_eq!(names("emailLIKEacme").await, ["Ann", "Cid"]);
        assert_eq!(names("emailNOT LIKEacme").await, ["Bob", "Dee"]);
        assert_eq!(names("first_nameSTARTSWITHC").await, ["Cid"]);
        assert_eq!(names("emailENDSWITHglobex.com").await, ["Bob"]);
        assert_eq!(names("u_score>3").await, ["Bob", "Dee"], "numbers compare as numbers");
        assert_eq!(names("u_score>=3").await, ["Ann", "Bob", "Dee"]);
        assert_eq!(names("u_score<10").await, ["Ann", "Cid"]);
        assert_eq!(names("u_score<=10").await, ["Ann", "Bob", "Cid"]);
        assert_eq!(names("u_scoreBETWEEN3@10").await, ["Ann", "Bob"]);
        assert_eq!(names("emailISEMPTY").await, ["Dee"]);
        assert_eq!(names("titleISNOTEMPTY").await, ["Ann", "Cid", "Dee"]);
        assert_eq!(names("first_nameINBob,Dee,Zed").await, ["Bob", "Dee"]);
        assert_eq!(names("first_nameNOT INBob,Dee").await, ["Ann", "Cid"]);
        // a^b^ORc is a AND (b OR c).
        assert_eq!(names("last_name=Lee^first_name=Cid^ORtitle=CEO").await, ["Ann"]);
        assert_eq!(names("first_name=Cid^ORtitle=CEO^last_name=Lee").await, ["Ann"]);
        assert_eq!(names("first_name=Ann^NQfirst_name=Dee").await, ["Ann", "Dee"]);
        assert_eq!(names("account.name=Globex").await, ["Bob", "Dee"]);
        assert_eq!(names(Box::leak(format!("account={acme}").into_boxed_str())).await, ["Ann", "Cid"]);
        assert_eq!(names("nosuchfield=1^last_name=Lee^garbage").await, ["Ann", "Bob"], "invalid parts ignored");
        assert_eq!(names("ORDERBYDESCfirst_name").await, ["Dee", "Cid", "Bob", "Ann"]);
        assert_eq!(names("ORDERBYlast_name^ORDERBYDESCfirst_name").await, ["Dee", "Bob", "Ann", "Cid"]);
        assert_eq!(names("ORDERBYDESCu_score").await, ["Dee", "Bob", "Ann", "Cid"]);
        assert_eq!(names("first_name=Nobody").await, Vec::<String>::new());

        // Plain field=value filters AND with sysparm_query.
        let r = t
            .get(&format!("/api/now/table/customer_contact?last_name=Lee&{}", q(&[("sysparm_query", "title=CEO")])))
            .await;
        assert_eq!(r.body["result"].as_array().unwrap().len(), 1);
        assert_eq!(r.body["result"][0]["first_name"], "Ann");
        // v1 answers 404 when nothing matches, v2 and the unversioned path an empty list.
        assert_eq!(t.get("/api/now/v1/table/customer_contact?first_name=Zed").await.status, 404);
        let r = t.get("/api/now/v2/table/customer_contact?first_name=Zed").await;
        assert_eq!((r.status, r.body), (200, json!({"result": []})));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn incremental_sync_query_on_seed_data() {
        let t = start(true).await;
        let all = t.sn.records("customer_contact");
        let mut times: Vec<String> = all.iter().map(|r| r["sys_updated_on"].as_str().unwrap().to_string()).collect();
        times.sort();
        let cut = times[times.len() / 2].clone();
        let want = times.iter().filter(|x| **x > cut).count();
        let (date, time) = cut.split_once(' ').unwrap();
        for q in [
            format!("sys_updated_on>{cut}^ORDERBYsys_updated_on"),
            format!("sys_updated_on>javascript:gs.dateGenerate('{date}','{time}')^ORDERBYsys_updated_on"),
        ] {
            let got = t.query("customer_contact", &q, "sys_updated_on").await;
            assert_eq!(got.len(), want, "{q}");
            assert!(got.iter().all(|x| *x > cut));
            assert!(got.windows(2).all(|w| w[0] <= w[1]), "ascending");
        }
        let vendors = t.query("core_company", "vendor=true", "vendor").await;
        assert_eq!(vendors.len(), 30);
        let desc = t.query("sn_customerservice_case", "ORDERBYDESCsys_updated_on", "sys_updated_on").await;
        assert!(desc.windows(2).all(|w| w[0] >= w[1]), "descending");
        assert_eq!(desc.len(), 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paging_fields_and_display_values() {
        let t = start(true).await;
        let r = t.get("/api/now/table/customer_contact?sysparm_limit=100&sysparm_offset=100").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["result"].as_array().unwrap().len(), 100);
        assert_eq!(header(&r, "x-total-count"), "300");
        let path = format!("{}/api/now/table/customer_contact", t.base);
        assert_eq!(
            header(&r, "link"),
            format!(
                "<{path}?sysparm_limit=100&sysparm_offset=0>;rel=\"first\",<{path}?sysparm_limit=100&sysparm_offset=0>;rel=\"prev\",\
                 <{path}?sysparm_limit=100&sysparm_offset=200>;rel=\"next\",<{path}?sysparm_limit=100&sysparm_offset=200>;rel=\"last\""
            )
        );
        let all = t.get("/api/now/table/customer_contact").await;
        let ids: Vec<&Value> = all.body["result"].as_array().unwrap().iter().map(|x| &x["sys_id"]).collect();
        assert_eq!(ids.len(), 300, "default limit covers all");
        let page: Vec<&Value> = r.body["result"].as_array().unwrap().iter().map(|x| &x["sys_id"]).collect();
        assert_eq!(page, ids[100..200]);
        let first = t.get("/api/now/table/customer_contact?sysparm_limit=120&sysparm_query=active%3Dtrue").await;
        let link = header(&first, "link");
        assert!(!link.contains("rel=\"prev\""), "{link}");
        assert!(
            link.contains("sysparm_query=active%3Dtrue&sysparm_limit=120&sysparm_offset=120>;rel=\"next\""),
            "{link}"
        );
        let last = t.get("/api/now/table/customer_contact?sysparm_limit=120&sysparm_offset=240").await;
        assert_eq!(last.body["result"].as_array().unwrap().len(), 60);
        assert!(!header(&last, "link").contains("rel=\"next\""));
        let neg = t.get("/api/now/table/customer_contact?sysparm_offset=-1").await;
        assert_eq!(
            (neg.status, neg.body),
            (
                400,
                json!({"error": {"detail": "Negative offset is not supported", "message": "offset is -1"},
                       "status": "failure"})
            )
        );

        // Fields (invalid names ignored, dot-walking allowed).
        let r = t
            .get("/api/now/table/customer_contact?sysparm_limit=1&sysparm_fields=email,nope,account,account.name")
            .await;
        let rec = r.body["result"][0].as_object().unwrap();
        let mut keys: Vec<&String> = rec.keys().collect();
        keys.sort();
        assert_eq!(keys, ["account", "account.name", "email"]);
        let acc_id = rec["account"]["value"].as_str().unwrap();
        assert!(
            rec["account"]["link"].as_str().unwrap().ends_with(&format!("/api/now/table/customer_account/{acc_id}"))
        );
        let acc_name = rec["account.name"].as_str().unwrap().to_string();
        assert!(!acc_name.is_empty());

        let dv = |mode: &str, exclude: bool| {
            format!(
                "/api/now/table/customer_contact?sysparm_limit=1&sysparm_fields=account,email&sysparm_display_value={mode}{}",
                if exclude { "&sysparm_exclude_reference_link=true" } else { "" }
            )
        };
        let r = t.get(&dv("true", false)).await;
        let email = r.body["result"][0]["email"].clone();
        assert_eq!(r.body["result"][0]["account"]["display_value"], acc_name.as_str());
        assert!(r.body["result"][0]["account"]["link"].is_string());
        let r = t.get(&dv("true", true)).await;
        assert_eq!(r.body["result"][0]["account"], acc_name.as_str());
        let r = t.get(&dv("all", false)).await;
        assert_eq!(r.body["result"][0]["email"], json!({"display_value": email, "value": email}));
        assert_eq!(r.body["result"][0]["account"]["value"], acc_id);
        assert_eq!(r.body["result"][0]["account"]["display_value"], acc_name.as_str());
        let r = t.get(&dv("false", true)).await;
        assert_eq!(r.body["result"][0]["account"], acc_id);
        let r = t.get("/api/now/table/sn_customerservice_case?sysparm_limit=1&sysparm_display_value=true&sysparm_fields=state,priority").await;
        assert!(
            ["New", "Open", "Awaiting Info", "Resolved", "Closed"]
                .contains(&r.body["result"][0]["state"].as_str().unwrap())
        );
        assert!(r.body["result"][0]["priority"].as_str().unwrap().contains(" - "));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn auth_roles_and_faults() {
        let t = start(true).await;
        let unauth = json!({"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                            "status": "failure"});
        let path = "/api/now/table/customer_contact?sysparm_limit=1";
        for auth in [None, Some("Bearer nope"), Some("Basic YWRtaW46d3Jvbmc="), Some("Basic !!")] {
            let r = t.call(reqwest::Method::GET, path, auth, None).await;
            assert_eq!((r.status, &r.body), (401, &unauth), "{auth:?}");
        }
        let basic = format!("Basic {}", STANDARD.encode("admin:pw1"));
        let r = t.call(reqwest::Method::GET, path, Some(&basic), None).await;
        assert_eq!(r.status, 200);
        let created = t
            .call(reqwest::Method::POST, "/api/now/table/core_company", Some(&basic), Some(r#"{"name":"Basic Co"}"#))
            .await;
        assert_eq!(created.status, 201);
        assert_eq!(created.body["result"]["sys_created_by"], "admin");

        let forbidden = json!({"error": {"detail": "Failed API level ACL Validation", "message": "User Not Authorized"}, "status": "failure"});
        let reader = format!("Bearer {}", t.password_token("reader", "pw2").await);
        assert_eq!(t.call(reqwest::Method::GET, path, Some(&reader), None).await.status, 200);
        let r = t.call(reqwest::Method::POST, "/api/now/table/customer_contact", Some(&reader), Some("{}")).await;
        assert_eq!((r.status, &r.body), (403, &forbidden));
        let r = t.call(reqwest::Method::GET, "/api/now/table/proc_po", Some(&reader), None).await;
        assert_eq!((r.status, &r.body), (403, &forbidden));
        let r = t.call(reqwest::Method::POST, "/api/now/table/customer_account", Some(&reader), Some("{}")).await;
        assert_eq!(r.status, 201, "write implies the right to write");
        for (user, pw) in [("nobody", "pw3"), ("stranger", "pw4")] {
            let tok = format!("Bearer {}", t.password_token(user, pw).await);
            assert_eq!(t.call(reqwest::Method::GET, path, Some(&tok), None).await.status, 403, "{user}");
        }
        let r =
            t.call(reqwest::Method::GET, path, Some(&format!("Basic {}", STANDARD.encode("nobody:pw3"))), None).await;
        assert_eq!(r.status, 403);
        let cc = t
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", "sn_client"),
                ("client_secret", "sn_secret"),
            ])
            .await;
        let r = t
            .call(reqwest::Method::GET, "/api/now/table/proc_po?sysparm_limit=1", Some(&format!("Bearer {cc}")), None)
            .await;
        assert_eq!(r.status, 200, "client credentials act as admin");

        // Faults.
        t.faults.set(Knobs { rate_limit_per_minute: Some(2), ..Default::default() });
        assert_eq!(t.get(path).await.status, 200);
        assert_eq!(t.get(path).await.status, 200);
        let r = t.get(path).await;
        assert_eq!(r.status, 429);
        assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
        assert_eq!(header(&r, "x-ratelimit-limit"), "2");
        let reset: u64 = header(&r, "x-ratelimit-reset").parse().unwrap();
        assert!(reset > 1_700_000_000);
        assert!(!header(&r, "x-ratelimit-rule").is_empty());
        assert_eq!(r.body["error"]["message"], "Rate limit exceeded");
        assert_eq!(r.body["status"], "failure");
        t.faults.set(Knobs { failure_rate: 1.0, ..Default::default() });
        let r = t.get(path).await;
        assert_eq!(r.status, 500);
        assert_eq!(r.body["status"], "failure");
        assert!(r.body["error"]["message"].is_string() && r.body["error"]["detail"].is_string());
        t.faults.set(Knobs::default());
        let r = t.get("/api/now/stats/customer_contact").await;
        assert_eq!(r.status, 400);
    }
}
