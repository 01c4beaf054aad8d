//! The Zoho CRM REST API emulator (`/crm/v7/...` and `/crm/v8/...`, which behave alike), as
//! `api-facts.md` §2 describes it: record insert, update, upsert, delete, get, list with discrete
//! paging up to 2,000 records and `page_token` past them, `If-Modified-Since`, search with
//! criteria, and counts, with Zoho's status codes and error bodies.
//!
//! Every request is authenticated by the sandbox's OAuth [`Provider`]: the token's organisation
//! selects the data (a token sees only its own organisation's records) and its scopes must cover
//! the module and operation (`ZohoCRM.modules.ALL`, `ZohoCRM.modules.leads.READ`, ...). The shared
//! [`Faults`] then add latency, 429s or 500s (`Internal Server Error`); a failure of the storage
//! itself is also a 500 `INTERNAL_ERROR`, whose message says that the sandbox's storage failed and
//! why.
//!
//! Records live in one SQLite table, `records(org, module, id, created, modified, data)`, `data`
//! being the record's JSON. Ids are 19-digit numeric strings that increase with creation: a
//! 7-digit prefix per organisation, then a 12-digit sequence. Date-times are written in the
//! organisation's UTC offset (`us`: `-07:00`, `in`: `+05:30`, others `+00:00`; see
//! [`CrmConfig::utc_offsets`]).

use std::cmp::Ordering;
use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use serde_json::{Map, Value, json};

use super::faults::{Fault, Faults};
use super::oauth_provider::Provider;
use super::storage::{StorageError, open_db, storage_failed};

/// The columns of the `records` table.
const RECORD_COLUMNS: [&str; 6] = ["org", "module", "id", "created", "modified", "data"];
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS records (
        org TEXT NOT NULL, module TEXT NOT NULL, id TEXT NOT NULL,
        created INTEGER NOT NULL, modified INTEGER NOT NULL, data TEXT NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS records_id ON records (org, module, id);
    CREATE INDEX IF NOT EXISTS records_modified ON records (org, module, modified);
    CREATE INDEX IF NOT EXISTS records_created ON records (org, module, created);
    CREATE INDEX IF NOT EXISTS records_email ON records (org, module, lower(json_extract(data, '$.Email')));";

/// The modules the emulator knows, by API name.
pub const MODULES: [&str; 15] = [
    "Leads",
    "Accounts",
    "Contacts",
    "Deals",
    "Campaigns",
    "Tasks",
    "Cases",
    "Calls",
    "Products",
    "Vendors",
    "Price_Books",
    "Quotes",
    "Sales_Orders",
    "Purchase_Orders",
    "Invoices",
];

/// Fields the server sets; values sent for them are ignored.
const READ_ONLY: [&str; 5] = ["id", "Created_Time", "Modified_Time", "Created_By", "Modified_By"];
/// The 12-digit sequence part of ids starts here (below it: the organisation's user ids).
const FIRST_SEQ: u64 = 1_000_000;
const ID_SPLIT: u64 = 1_000_000_000_000;
const JSON_CT: &str = "application/json;charset=UTF-8";

/// Limits and per-organisation settings.
#[derive(Clone, Debug)]
pub struct CrmConfig {
    /// Largest `per_page` (Zoho: 200); larger values are clamped.
    pub max_per_page: usize,
    /// Records per insert, update, upsert or delete call (Zoho: 100).
    pub max_records_per_call: usize,
    /// Field names in `fields` (Zoho: 50).
    pub max_fields: usize,
    /// Records reachable with `page`/`per_page` before `page_token` is needed (Zoho: 2,000).
    pub discrete_limit: usize,
    /// Conditions in a search `criteria` (Zoho: 10).
    pub max_criteria: usize,
    /// Life of a `page_token` (Zoho: 24 hours).
    pub page_token_ttl_secs: u64,
    /// UTC offsets of organisations' time zones in minutes; organisations not listed use UTC.
    pub utc_offsets: Vec<(String, i32)>,
}

impl Default for CrmConfig {
    fn default() -> CrmConfig {
        CrmConfig {
            max_per_page: 200,
            max_records_per_call: 100,
            max_fields: 50,
            discrete_limit: 2000,
            max_criteria: 10,
            page_token_ttl_secs: 24 * 3600,
            utc_offsets: vec![("us".into(), -7 * 60), ("in".into(), 5 * 60 + 30)],
        }
    }
}

/// The emulated CRM: its records and settings. Cloning shares them.
#[derive(Clone)]
pub struct Crm {
    inner: Arc<Inner>,
}

struct Inner {
    db: Mutex<Db>,
    cfg: CrmConfig,
}

struct Db {
    conn: Connection,
    /// The next id's sequence part.
    next_seq: u64,
}

impl Crm {
    /// Opens (creating it if needed) the record store at `path`, or an in-memory one for `None`,
    /// with the default [`CrmConfig`].
    pub fn open(path: Option<&Path>) -> Result<Crm, StorageError> {
        Crm::open_with(path, CrmConfig::default())
    }

    /// [`Crm::open`] with other limits or time zones.
    pub fn open_with(path: Option<&Path>, cfg: CrmConfig) -> Result<Crm, StorageError> {
        let conn = open_db(path, "Zoho CRM", &[("records", &RECORD_COLUMNS)], SCHEMA)?;
        let max: Option<i64> =
            conn.query_row("SELECT MAX(CAST(substr(id, 8) AS INTEGER)) FROM records", [], |r| r.get(0))?;
        let next_seq = max.map_or(FIRST_SEQ, |m| (m.max(0) as u64 + 1).max(FIRST_SEQ));
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Crm { inner: Arc::new(Inner { db: Mutex::new(Db { conn, next_seq }), cfg }) })
    }

    /// The settings.
    pub fn config(&self) -> &CrmConfig {
        &self.inner.cfg
    }

    /// Adds `leads` Leads, `contacts` Contacts and `deals` Deals to `org`: names, Zylker-like
    /// companies, e-mails unique in the organisation and module, `+1-555-...` phones, lead
    /// statuses and sources, the organisation's user as owner, creation and modification times
    /// spread over the past four weeks (all at least an hour old). The same organisation name
    /// gives the same data (only the times follow the clock).
    pub fn seed(&self, org: &str, leads: usize, contacts: usize, deals: usize) -> rusqlite::Result<()> {
        let ctx = self.org_ctx(org);
        let mut rng = Rng::new(fnv1a(org.as_bytes()));
        let now = now_ms();
        let mut db = self.db();
        let Db { conn, next_seq } = &mut *db;
        let tx = conn.transaction()?;
        for (module, n) in [("Leads", leads), ("Contacts", contacts), ("Deals", deals)] {
            if n == 0 {
                continue;
            }
            let mut emails = existing_emails(&tx, org, module)?;
            // Creation times, oldest first, so ids increase with them.
            let span: i64 = 28 * 24 * 3600 * 1000 - 3600 * 1000;
            let mut ages: Vec<i64> = (0..n).map(|_| rng.below(span as u64) as i64).collect();
            ages.sort_unstable_by(|a, b| b.cmp(a));
            for age in ages {
                let created = now - 3600 * 1000 - age;
                let room = (now - 3600 * 1000 - created).min(7 * 24 * 3600 * 1000);
                let modified = created + rng.below(room.max(0) as u64 + 1) as i64;
                let mut rec = match module {
                    "Leads" => seed_lead(&mut rng, &mut emails),
                    "Contacts" => seed_contact(&mut rng, &mut emails),
                    _ => seed_deal(&mut rng, now, ctx.offset_secs),
                };
                let id = ctx.new_id(next_seq);
                stamp_new(&mut rec, &ctx, &id, created, modified);
                insert_row(&tx, org, module, &id, created, modified, &rec)?;
            }
        }
        tx.commit()
    }

    /// The axum routes `/crm/v7/{*rest}` and `/crm/v8/{*rest}`, plus `/crm/{*rest}` so that any
    /// other `/crm/` path gets Zoho's `INVALID_URL_PATTERN`. Merge it with the provider's
    /// `oauth_router()` (and `control_router()`), not with `Provider::router()`: that one includes
    /// the placeholder `resource_router()` on the same two paths, and axum refuses (panics on) the
    /// overlap.
    pub fn router(&self, provider: Provider, faults: Faults) -> Router {
        Router::new()
            .route("/crm/v7/{*rest}", any(handle))
            .route("/crm/v8/{*rest}", any(handle))
            .route("/crm/{*rest}", any(handle))
            .with_state(Ctx { crm: self.clone(), provider, faults })
    }

    /// How many records `org` has in `module` (0 when the module is unknown).
    pub fn count(&self, org: &str, module: &str) -> usize {
        let Some(module) = canonical_module(module) else { return 0 };
        let db = self.db();
        count_rows(&db.conn, org, module).unwrap_or(0)
    }

    /// The record of `module` in `org` whose `Email` is `email` (case-insensitive).
    pub fn find_by_email(&self, org: &str, module: &str, email: &str) -> Option<Value> {
        let module = canonical_module(module)?;
        let db = self.db();
        let mut st = db
            .conn
            .prepare_cached(
                "SELECT data FROM records WHERE org = ?1 AND module = ?2 \
                 AND lower(json_extract(data, '$.Email')) = ?3 ORDER BY id LIMIT 1",
            )
            .ok()?;
        let data: Option<String> =
            st.query_row(params![org, module, email.to_ascii_lowercase()], |r| r.get(0)).optional().ok()?;
        serde_json::from_str(&data?).ok()
    }

    /// Sets `field` of a record as another client would, bumping `Modified_Time` (and
    /// `Modified_By`) to now. Does nothing when there is no such record.
    pub fn modify_for_test(&self, org: &str, module: &str, id: &str, field: &str, value: Value) {
        let Some(module) = canonical_module(module) else { return };
        let ctx = self.org_ctx(org);
        let db = self.db();
        let Ok(Some((_, modified, data))) = get_row(&db.conn, org, module, id) else { return };
        let Ok(mut rec) = serde_json::from_str::<Map<String, Value>>(&data) else { return };
        let now = now_ms().max(modified + 1);
        rec.insert(field.to_string(), value);
        rec.insert("Modified_Time".into(), format_time(now, ctx.offset_secs).into());
        rec.insert("Modified_By".into(), ctx.user.clone());
        // A failed write leaves the record as it was; this is a test helper with no one to tell.
        let _ = update_row(&db.conn, org, module, id, now, &rec);
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        self.inner.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn org_ctx(&self, org: &str) -> OrgCtx {
        OrgCtx::new(org, &self.inner.cfg)
    }
}

// ---------------------------------------------------------------------------------------------
// Organisations

/// Who and where an organisation is: its id prefix, time zone and (single) user.
struct OrgCtx {
    org: String,
    prefix: u64,
    offset_secs: i64,
    /// `{name, id, email}`.
    user: Value,
}

impl OrgCtx {
    fn new(org: &str, cfg: &CrmConfig) -> OrgCtx {
        let prefix = match org {
            "us" => 5_725_767,
            "in" => 4_150_868,
            _ => 1_000_000 + fnv1a(org.as_bytes()) % 9_000_000,
        };
        let offset_secs = cfg.utc_offsets.iter().find(|(o, _)| o == org).map_or(0, |(_, m)| i64::from(*m) * 60);
        let (name, email) = match org {
            "us" => ("Patricia Boyle".to_string(), "patricia.boyle@zylker.com".to_string()),
            "in" => ("Priya Raman".to_string(), "priya.raman@zylker.in".to_string()),
            _ => {
                let h = fnv1a(org.as_bytes()) as usize;
                let (first, last) = (FIRST_NAMES[h % FIRST_NAMES.len()], LAST_NAMES[(h / 7) % LAST_NAMES.len()]);
                let domain: String = org.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>();
                let domain = if domain.is_empty() { "org".to_string() } else { domain.to_ascii_lowercase() };
                (
                    format!("{first} {last}"),
                    format!("{}.{}@{domain}.example.com", first.to_ascii_lowercase(), last.to_ascii_lowercase()),
                )
            }
        };
        let user = json!({"name": name, "id": (prefix * ID_SPLIT + 411_001).to_string(), "email": email});
        OrgCtx { org: org.to_string(), prefix, offset_secs, user }
    }

    fn new_id(&self, seq: &mut u64) -> String {
        let id = self.prefix * ID_SPLIT + *seq % ID_SPLIT;
        *seq += 1;
        id.to_string()
    }

    fn user_id(&self) -> &str {
        self.user["id"].as_str().unwrap_or("")
    }
}

/// Sets the server-owned fields of a new record.
fn stamp_new(rec: &mut Map<String, Value>, ctx: &OrgCtx, id: &str, created: i64, modified: i64) {
    rec.insert("id".into(), id.into());
    rec.entry("Owner").or_insert_with(|| ctx.user.clone());
    rec.insert("Created_By".into(), ctx.user.clone());
    rec.insert("Modified_By".into(), ctx.user.clone());
    rec.insert("Created_Time".into(), format_time(created, ctx.offset_secs).into());
    rec.insert("Modified_Time".into(), format_time(modified, ctx.offset_secs).into());
}

// ---------------------------------------------------------------------------------------------
// Modules, scopes, fields

fn canonical_module(name: &str) -> Option<&'static str> {
    MODULES.iter().copied().find(|m| m.eq_ignore_ascii_case(name))
}

fn mandatory_fields(module: &str) -> &'static [&'static str] {
    match module {
        "Leads" | "Contacts" => &["Last_Name"],
        "Accounts" => &["Account_Name"],
        "Deals" => &["Deal_Name", "Stage"],
        "Products" => &["Product_Name"],
        "Vendors" => &["Vendor_Name"],
        "Purchase_Orders" => &["Subject", "Vendor_Name"],
        _ => &[],
    }
}

/// The system duplicate-check fields.
fn duplicate_fields(module: &str) -> &'static [&'static str] {
    match module {
        "Leads" | "Contacts" => &["Email"],
        _ => &[],
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Create,
    Update,
    Delete,
    /// Zoho's upsert accepts `ALL`, `WRITE` or `CREATE`.
    Upsert,
}

/// Whether one of `scopes` covers `op` on `module`: `ZohoCRM.modules.{ALL|READ|...}` or
/// `ZohoCRM.modules.{module}.{ALL|READ|CREATE|UPDATE|DELETE|WRITE}`, the module written in lower
/// case without underscores (`purchaseorders`; with them is accepted too), case-insensitively.
fn scope_allows(scopes: &[String], module: &str, op: Op) -> bool {
    let key: String = module.chars().filter(|c| *c != '_').collect();
    scopes.iter().any(|s| {
        let parts: Vec<&str> = s.trim().split('.').collect();
        if parts.len() < 3 || !parts[0].eq_ignore_ascii_case("ZohoCRM") || !parts[1].eq_ignore_ascii_case("modules") {
            return false;
        }
        let (target_ok, operation) = match parts.len() {
            3 => (true, parts[2]),
            4 => {
                let target: String = parts[2].chars().filter(|c| *c != '_').collect();
                (target.eq_ignore_ascii_case(&key), parts[3])
            }
            _ => return false,
        };
        target_ok && operation_covers(operation, op)
    })
}

fn operation_covers(operation: &str, op: Op) -> bool {
    match operation.to_ascii_uppercase().as_str() {
        "ALL" => true,
        "WRITE" => op != Op::Read,
        "READ" => op == Op::Read,
        "CREATE" => matches!(op, Op::Create | Op::Upsert),
        "UPDATE" => op == Op::Update,
        "DELETE" => op == Op::Delete,
        _ => false,
    }
}

fn valid_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic()) && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Fields that must be text when given (lookups such as `Vendor_Name` on purchase orders are not).
fn text_only(module: &str, field: &str) -> bool {
    matches!(
        field,
        "First_Name"
            | "Last_Name"
            | "Email"
            | "Secondary_Email"
            | "Phone"
            | "Mobile"
            | "Deal_Name"
            | "Subject"
            | "Product_Name"
            | "Title"
            | "Lead_Status"
            | "Lead_Source"
            | "Stage"
    ) || (field == "Company" && module == "Leads")
        || (field == "Account_Name" && module == "Accounts")
        || (field == "Vendor_Name" && module == "Vendors")
}

fn max_length(field: &str) -> usize {
    match field {
        "First_Name" | "Salutation" => 40,
        "Last_Name" | "Title" | "Designation" => 80,
        "Email" | "Secondary_Email" | "Website" => 100,
        "Phone" | "Mobile" | "Fax" | "Home_Phone" | "Other_Phone" => 30,
        "Deal_Name" | "Vendor_Name" => 120,
        "Company" | "Account_Name" | "Subject" | "Product_Name" => 200,
        _ => 32_000,
    }
}

fn numeric_field(field: &str) -> bool {
    matches!(
        field,
        "Amount"
            | "Probability"
            | "Annual_Revenue"
            | "No_of_Employees"
            | "Unit_Price"
            | "Qty_in_Stock"
            | "Expected_Revenue"
            | "Sub_Total"
            | "Grand_Total"
            | "Discount"
            | "Tax"
    )
}

fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

fn is_empty_value(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Storage

type Row = (String, i64, i64, String);

fn insert_row(
    conn: &Connection,
    org: &str,
    module: &str,
    id: &str,
    created: i64,
    modified: i64,
    rec: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let data = serde_json::to_string(rec).unwrap_or_else(|_| "{}".into());
    conn.prepare_cached(
        "INSERT INTO records (org, module, id, created, modified, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![org, module, id, created, modified, data])?;
    Ok(())
}

fn update_row(
    conn: &Connection,
    org: &str,
    module: &str,
    id: &str,
    modified: i64,
    rec: &Map<String, Value>,
) -> rusqlite::Result<()> {
    let data = serde_json::to_string(rec).unwrap_or_else(|_| "{}".into());
    conn.prepare_cached("UPDATE records SET modified = ?4, data = ?5 WHERE org = ?1 AND module = ?2 AND id = ?3")?
        .execute(params![org, module, id, modified, data])?;
    Ok(())
}

/// `(created, modified, data)` of a record.
fn get_row(conn: &Connection, org: &str, module: &str, id: &str) -> rusqlite::Result<Option<(i64, i64, String)>> {
    let mut st =
        conn.prepare_cached("SELECT created, modified, data FROM records WHERE org = ?1 AND module = ?2 AND id = ?3")?;
    let row = st.query_row(params![org, module, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
    Ok(row)
}

fn count_rows(conn: &Connection, org: &str, module: &str) -> rusqlite::Result<usize> {
    let mut st = conn.prepare_cached("SELECT COUNT(*) FROM records WHERE org = ?1 AND module = ?2")?;
    let n: i64 = st.query_row(params![org, module], |r| r.get(0))?;
    Ok(n.max(0) as usize)
}

fn existing_emails(conn: &Connection, org: &str, module: &str) -> rusqlite::Result<HashSet<String>> {
    let mut st = conn.prepare_cached(
        "SELECT lower(json_extract(data, '$.Email')) FROM records WHERE org = ?1 AND module = ?2 \
         AND json_extract(data, '$.Email') IS NOT NULL",
    )?;
    let rows = st.query_map(params![org, module], |r| r.get::<_, String>(0))?;
    rows.collect()
}

/// The first record (lowest id) of `module` whose `field` equals `value` (text case-insensitively),
/// other than `exclude`.
fn find_equal(
    conn: &Connection,
    org: &str,
    module: &str,
    field: &str,
    value: &Value,
    exclude: Option<&str>,
) -> rusqlite::Result<Option<String>> {
    use rusqlite::types::Value as Sql;
    let (expr, bound) = match value {
        Value::String(s) if field == "Email" => {
            ("lower(json_extract(data, '$.Email'))".to_string(), Sql::Text(s.trim().to_ascii_lowercase()))
        }
        Value::String(s) => {
            (format!("lower(json_extract(data, '$.\"{field}\"'))"), Sql::Text(s.trim().to_ascii_lowercase()))
        }
        Value::Number(n) => {
            let bound = match n.as_i64() {
                Some(i) => Sql::Integer(i),
                None => Sql::Real(n.as_f64().unwrap_or(0.0)),
            };
            (format!("json_extract(data, '$.\"{field}\"')"), bound)
        }
        Value::Bool(b) => (format!("json_extract(data, '$.\"{field}\"')"), Sql::Integer(i64::from(*b))),
        _ => return Ok(None),
    };
    if !valid_api_name(field) {
        return Ok(None);
    }
    let mut args = vec![Sql::Text(org.into()), Sql::Text(module.into()), bound];
    let mut sql = format!("SELECT id FROM records WHERE org = ?1 AND module = ?2 AND {expr} = ?3");
    if let Some(x) = exclude {
        sql.push_str(" AND id <> ?4");
        args.push(Sql::Text(x.into()));
    }
    sql.push_str(" ORDER BY id LIMIT 1");
    let mut st = conn.prepare_cached(&sql)?;
    let id = st.query_row(params_from_iter(args), |r| r.get(0)).optional()?;
    Ok(id)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortBy {
    Id,
    Created,
    Modified,
}

impl SortBy {
    fn parse(s: &str) -> Option<SortBy> {
        match s {
            "id" => Some(SortBy::Id),
            "Created_Time" => Some(SortBy::Created),
            "Modified_Time" => Some(SortBy::Modified),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::Created => "Created_Time",
            SortBy::Modified => "Modified_Time",
        }
    }

    fn column(self) -> &'static str {
        match self {
            SortBy::Id => "id",
            SortBy::Created => "created",
            SortBy::Modified => "modified",
        }
    }

    fn code(self) -> char {
        match self {
            SortBy::Id => 'i',
            SortBy::Created => 'c',
            SortBy::Modified => 'm',
        }
    }

    fn key(self, row: &Row) -> i64 {
        match self {
            SortBy::Id => 0,
            SortBy::Created => row.1,
            SortBy::Modified => row.2,
        }
    }
}

/// One page of a module's records: modified at or after `since_ms`, after the cursor
/// `(sort key, id)` or from `offset`, at most `limit`.
#[allow(clippy::too_many_arguments)]
fn query_rows(
    conn: &Connection,
    org: &str,
    module: &str,
    sort: SortBy,
    desc: bool,
    since_ms: Option<i64>,
    after: Option<&(i64, String)>,
    limit: usize,
    offset: usize,
) -> rusqlite::Result<Vec<Row>> {
    use rusqlite::types::Value as Sql;
    let mut sql = String::from("SELECT id, created, modified, data FROM records WHERE org = ?1 AND module = ?2");
    let mut args = vec![Sql::Text(org.into()), Sql::Text(module.into())];
    if let Some(s) = since_ms {
        args.push(Sql::Integer(s));
        sql.push_str(&format!(" AND modified >= ?{}", args.len()));
    }
    let cmp = if desc { "<" } else { ">" };
    if let Some((key, id)) = after {
        if sort == SortBy::Id {
            args.push(Sql::Text(id.clone()));
            sql.push_str(&format!(" AND id {cmp} ?{}", args.len()));
        } else {
            args.push(Sql::Integer(*key));
            args.push(Sql::Text(id.clone()));
            let (k, i, col) = (args.len() - 1, args.len(), sort.column());
            sql.push_str(&format!(" AND ({col} {cmp} ?{k} OR ({col} = ?{k} AND id {cmp} ?{i}))"));
        }
    }
    let dir = if desc { "DESC" } else { "ASC" };
    if sort == SortBy::Id {
        sql.push_str(&format!(" ORDER BY id {dir}"));
    } else {
        sql.push_str(&format!(" ORDER BY {} {dir}, id {dir}", sort.column()));
    }
    args.push(Sql::Integer(limit as i64));
    args.push(Sql::Integer(offset as i64));
    sql.push_str(&format!(" LIMIT ?{} OFFSET ?{}", args.len() - 1, args.len()));
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    rows.collect()
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

#[derive(Clone)]
struct Ctx {
    crm: Crm,
    provider: Provider,
    faults: Faults,
}

enum Route<'a> {
    List,
    Insert,
    UpdateMany,
    DeleteMany,
    Upsert,
    Search,
    Count,
    GetOne(&'a str),
    UpdateOne(&'a str),
    DeleteOne(&'a str),
}

impl Route<'_> {
    fn op(&self) -> Op {
        match self {
            Route::List | Route::Search | Route::Count | Route::GetOne(_) => Op::Read,
            Route::Insert => Op::Create,
            Route::UpdateMany | Route::UpdateOne(_) => Op::Update,
            Route::DeleteMany | Route::DeleteOne(_) => Op::Delete,
            Route::Upsert => Op::Upsert,
        }
    }
}

async fn handle(State(ctx): State<Ctx>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let token = match ctx.provider.authenticate(&headers) {
        Ok(t) => t,
        Err(refused) => return refused.into_response(),
    };
    let path = uri.path().strip_prefix("/crm/").unwrap_or("");
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if segs.len() < 2 || !matches!(segs[0], "v7" | "v8") {
        return invalid_url();
    }
    let Some(module) = canonical_module(segs[1]) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_MODULE",
            "the module name given seems to be invalid",
            json!({"resource_path_index": 0}),
        );
    };
    let (get, post, put, delete) =
        (method == Method::GET, method == Method::POST, method == Method::PUT, method == Method::DELETE);
    let route = match &segs[2..] {
        [] if get => Route::List,
        [] if post => Route::Insert,
        [] if put => Route::UpdateMany,
        [] if delete => Route::DeleteMany,
        ["upsert"] if post => Route::Upsert,
        ["search"] if get => Route::Search,
        ["actions", "count"] if get => Route::Count,
        [id] if get && !matches!(*id, "upsert" | "search" | "actions") => Route::GetOne(id),
        [id] if put && !matches!(*id, "upsert" | "search" | "actions") => Route::UpdateOne(id),
        [id] if delete && !matches!(*id, "upsert" | "search" | "actions") => Route::DeleteOne(id),
        ["actions"] => return invalid_url(),
        [] | [_] | ["actions", "count"] => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "INVALID_REQUEST_METHOD",
                "The http request method type is not a valid one",
                json!({}),
            );
        }
        _ => return invalid_url(),
    };
    if !scope_allows(&token.scopes, module, route.op()) {
        return error(StatusCode::UNAUTHORIZED, "OAUTH_SCOPE_MISMATCH", "Unauthorized", json!({}));
    }
    match ctx.faults.before(&token.org).await {
        Some(Fault::RateLimited { retry_after }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "Rate limit exceeded. Please retry after the specified time.",
                json!({"retry_after": retry_after}),
            );
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return r;
        }
        Some(Fault::ServerError) => return internal_error(),
        None => {}
    }
    let crm = &ctx.crm;
    let org = token.org.as_str();
    let query = uri.query();
    let result = match route {
        Route::GetOne(id) => crm.get_one(org, module, id, query),
        Route::List => crm.list(org, module, query, &headers),
        Route::Search => crm.search(org, module, query),
        Route::Count => crm.count_action(org, module, query),
        Route::Insert => crm.insert(org, module, &body),
        Route::UpdateMany => crm.update(org, module, None, &body, &headers),
        Route::UpdateOne(id) => crm.update(org, module, Some(id), &body, &headers),
        Route::Upsert => crm.upsert(org, module, &body, &headers),
        Route::DeleteMany => crm.delete_many(org, module, query),
        Route::DeleteOne(id) => crm.delete_one(org, module, id),
    };
    result.unwrap_or_else(|e| storage_error(&e))
}

fn json_text(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT));
    r
}

fn json_value(status: StatusCode, v: &Value) -> Response {
    json_text(status, v.to_string())
}

fn error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    json_value(status, &json!({"code": code, "details": details, "message": message, "status": "error"}))
}

fn invalid_url() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "INVALID_URL_PATTERN",
        "Please check if the URL trying to access is a correct one",
        json!({}),
    )
}

/// The fault knob's simulated server failure.
fn internal_error() -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "Internal Server Error", json!({}))
}

/// A real failure of the sandbox's storage, said as such.
fn storage_error(e: &rusqlite::Error) -> Response {
    eprintln!("linkrun sandbox: Zoho CRM: {}", storage_failed(e));
    error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", &storage_failed(e), json!({}))
}

fn bad_param(param: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_DATA", "invalid data", json!({"param_name": param}))
}

fn required_param(param: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "REQUIRED_PARAM_MISSING", "required param is missing", json!({"param_name": param}))
}

fn too_many_records(limit: usize) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "LIMIT_EXCEEDED",
        &format!("Cannot process more than {limit} records at a time."),
        json!({"api_name": "data", "json_path": "$.data", "limit": limit}),
    )
}

fn invalid_query() -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_QUERY", "invalid query formed", json!({"reason": "invalid criteria"}))
}

/// An error answer from a parameter check (boxed: a `Response` is large).
type Refused = Box<Response>;

/// Decoded query parameters; empty values count as absent.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: Option<&str>) -> Params {
        Params(url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// `fields=a,b`: `Ok(None)` when absent, the error response when over the limit.
fn parse_fields(p: &Params, max: usize) -> Result<Option<Vec<String>>, Refused> {
    let Some(raw) = p.get("fields") else { return Ok(None) };
    let mut fields: Vec<String> = Vec::new();
    for f in raw.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if !fields.iter().any(|x| x == f) {
            fields.push(f.to_string());
        }
    }
    if fields.is_empty() {
        return Ok(None);
    }
    if fields.len() > max {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            "the number of fields given exceeds the limit",
            json!({"limit": max, "param_name": "fields"}),
        )));
    }
    Ok(Some(fields))
}

/// `(page, per_page)` with their defaults (1, the configured maximum).
fn parse_paging(p: &Params, max_per_page: usize) -> Result<(usize, usize), Refused> {
    let page = match p.get("page") {
        None => 1,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(Box::new(bad_param("page"))),
        },
    };
    let per_page = match p.get("per_page") {
        None => max_per_page,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(max_per_page),
            _ => return Err(Box::new(bad_param("per_page"))),
        },
    };
    Ok((page, per_page))
}

/// An ISO date-time header as Unix seconds; `Err` when present but unreadable.
fn time_header(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<i64>, Refused> {
    match headers.get(&name) {
        None => Ok(None),
        Some(v) => match v.to_str().ok().and_then(parse_time) {
            Some(t) => Ok(Some(t)),
            None => Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "invalid data",
                json!({"header_name": name.as_str()}),
            ))),
        },
    }
}

/// The record limited to `fields` (each present, `null` when the record has none) and `id`.
fn project(rec: &Map<String, Value>, fields: &[String]) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), rec.get("id").cloned().unwrap_or(Value::Null));
    for f in fields {
        out.insert(f.clone(), rec.get(f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

fn parse_record(data: &str) -> Map<String, Value> {
    serde_json::from_str(data).unwrap_or_default()
}

/// The `data` items of a write request and the whole body object, or the error response.
fn data_items(body: &[u8], max: usize) -> Result<(Vec<Value>, Map<String, Value>), Refused> {
    let Ok(Value::Object(mut top)) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "invalid data",
            json!({"expected_data_type": "jsonobject"}),
        )));
    };
    let items = match top.remove("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "MANDATORY_NOT_FOUND",
                "required field not found",
                json!({"api_name": "data", "json_path": "$.data"}),
            )));
        }
    };
    if items.len() > max {
        return Err(Box::new(too_many_records(max)));
    }
    Ok((items, top))
}

/// 201/200 when every item succeeded, 207 when some did, 412 when every failure is
/// `ALREADY_MODIFIED` and none succeeded, else 400.
fn batch_response(items: Vec<Value>, all_ok: StatusCode) -> Response {
    let ok = items.iter().filter(|i| i["status"] == "success").count();
    let status = if ok == items.len() {
        all_ok
    } else if ok > 0 {
        StatusCode::MULTI_STATUS
    } else if items.iter().all(|i| i["code"] == "ALREADY_MODIFIED") {
        StatusCode::PRECONDITION_FAILED
    } else {
        StatusCode::BAD_REQUEST
    };
    json_value(status, &json!({ "data": items }))
}

fn item_error(code: &str, message: &str, details: Value) -> Value {
    json!({"code": code, "details": details, "message": message, "status": "error"})
}

fn json_path(i: usize, field: &str) -> String {
    format!("$.data[{i}].{field}")
}

fn invalid_value(i: usize, field: &str, extra: (&str, Value)) -> Value {
    let mut d = json!({"api_name": field, "json_path": json_path(i, field)});
    d[extra.0] = extra.1;
    item_error("INVALID_DATA", "invalid data", d)
}

fn invalid_id_item(i: usize) -> Value {
    item_error(
        "INVALID_DATA",
        "the id given seems to be invalid",
        json!({"api_name": "id", "json_path": json_path(i, "id")}),
    )
}

fn short_user(v: Option<&Value>) -> Value {
    match v {
        Some(u) => {
            json!({"name": u.get("name").cloned().unwrap_or(Value::Null), "id": u.get("id").cloned().unwrap_or(Value::Null)})
        }
        None => Value::Null,
    }
}

fn success_item(rec: &Map<String, Value>, message: &str) -> Value {
    json!({
        "code": "SUCCESS",
        "details": {
            "Modified_Time": rec.get("Modified_Time").cloned().unwrap_or(Value::Null),
            "Modified_By": short_user(rec.get("Modified_By")),
            "Created_Time": rec.get("Created_Time").cloned().unwrap_or(Value::Null),
            "id": rec.get("id").cloned().unwrap_or(Value::Null),
            "Created_By": short_user(rec.get("Created_By")),
            "$approval_state": "approved",
        },
        "message": message,
        "status": "success",
    })
}

// ---------------------------------------------------------------------------------------------
// Handlers

impl Crm {
    fn get_one(&self, org: &str, module: &str, id: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let data: Option<String> = {
            let db = self.db();
            let mut st =
                db.conn.prepare_cached("SELECT data FROM records WHERE org = ?1 AND module = ?2 AND id = ?3")?;
            st.query_row(params![org, module, id], |r| r.get(0)).optional()?
        };
        let Some(data) = data else {
            return Ok(error(StatusCode::BAD_REQUEST, "INVALID_DATA", "the id given seems to be invalid", json!({})));
        };
        if query.is_some() {
            let p = Params::parse(query);
            match parse_fields(&p, self.inner.cfg.max_fields) {
                Err(r) => return Ok(*r),
                Ok(Some(fields)) => {
                    let rec = project(&parse_record(&data), &fields);
                    return Ok(json_value(StatusCode::OK, &json!({ "data": [rec] })));
                }
                Ok(None) => {}
            }
        }
        Ok(json_text(StatusCode::OK, format!("{{\"data\":[{data}]}}")))
    }

    fn list(&self, org: &str, module: &str, query: Option<&str>, headers: &HeaderMap) -> rusqlite::Result<Response> {
        let cfg = &self.inner.cfg;
        let p = Params::parse(query);
        let fields = match parse_fields(&p, cfg.max_fields) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(required_param("fields")),
            Err(r) => return Ok(*r),
        };
        let (page, per_page) = match parse_paging(&p, cfg.max_per_page) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        let Some(mut sort) = SortBy::parse(p.get("sort_by").unwrap_or("id")) else { return Ok(bad_param("sort_by")) };
        let mut desc = match p.get("sort_order").unwrap_or("desc") {
            "desc" => true,
            "asc" => false,
            _ => return Ok(bad_param("sort_order")),
        };
        let since_ms = match time_header(headers, header::IF_MODIFIED_SINCE) {
            Ok(s) => s.map(|secs| (secs + 1) * 1000),
            Err(r) => return Ok(*r),
        };
        let now = now_ms();
        let token = match p.get("page_token") {
            None => None,
            Some(t) => match PageToken::decode(t) {
                Some(tok) if now - tok.issued_ms <= cfg.page_token_ttl_secs as i64 * 1000 => Some(tok),
                _ => return Ok(bad_param("page_token")),
            },
        };
        if token.is_none() && page.saturating_mul(per_page) > cfg.discrete_limit {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "You can only get the first 2000 records without using page_token param",
                json!({"limit": cfg.discrete_limit}),
            ));
        }
        let ids: Option<Vec<&str>> =
            p.get("ids").map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect());
        if ids.as_ref().is_some_and(|ids| ids.len() > cfg.max_records_per_call) {
            return Ok(too_many_records(cfg.max_records_per_call));
        }
        let shown_page = token.as_ref().map_or(page, |t| t.page);
        let rows = {
            let db = self.db();
            if let Some(since) = since_ms {
                let mut st = db.conn.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM records WHERE org = ?1 AND module = ?2 AND modified >= ?3)",
                )?;
                let any: bool = st.query_row(params![org, module, since], |r| r.get(0))?;
                if !any {
                    return Ok(StatusCode::NOT_MODIFIED.into_response());
                }
            }
            if let Some(ids) = &ids {
                let mut rows: Vec<Row> = Vec::new();
                for id in ids {
                    let Some((c, m, d)) = get_row(&db.conn, org, module, id)? else { continue };
                    if since_ms.is_none_or(|s| m >= s) && !rows.iter().any(|r| r.0 == *id) {
                        rows.push((id.to_string(), c, m, d));
                    }
                }
                rows.sort_by(|a, b| {
                    let o = sort.key(a).cmp(&sort.key(b)).then_with(|| a.0.cmp(&b.0));
                    if desc { o.reverse() } else { o }
                });
                rows.into_iter().skip((page - 1) * per_page).take(per_page + 1).collect()
            } else if let Some(tok) = &token {
                sort = tok.sort;
                desc = tok.desc;
                let after = (tok.key, tok.id.clone());
                query_rows(&db.conn, org, module, sort, desc, since_ms, Some(&after), per_page + 1, 0)?
            } else {
                query_rows(&db.conn, org, module, sort, desc, since_ms, None, per_page + 1, (page - 1) * per_page)?
            }
        };
        let more = rows.len() > per_page;
        let rows = &rows[..rows.len().min(per_page)];
        let Some(last) = rows.last() else { return Ok(StatusCode::NO_CONTENT.into_response()) };
        let data: Vec<Value> = rows.iter().map(|r| project(&parse_record(&r.3), &fields)).collect();
        let (next, expiry) = if more && ids.is_none() {
            let tok =
                PageToken { sort, desc, key: sort.key(last), id: last.0.clone(), page: shown_page + 1, issued_ms: now };
            let expiry = format_time(now + cfg.page_token_ttl_secs as i64 * 1000, self.org_ctx(org).offset_secs);
            (Value::String(tok.encode()), Value::String(expiry))
        } else {
            (Value::Null, Value::Null)
        };
        let info = json!({
            "call": false,
            "per_page": per_page,
            "next_page_token": next,
            "count": data.len(),
            "sort_by": sort.name(),
            "page": shown_page,
            "page_token_expiry": expiry,
            "sort_order": if desc { "desc" } else { "asc" },
            "email": false,
            "more_records": more,
            "previous_page_token": Value::Null,
        });
        Ok(json_value(StatusCode::OK, &json!({ "data": data, "info": info })))
    }

    fn search(&self, org: &str, module: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let cfg = &self.inner.cfg;
        let p = Params::parse(query);
        let filter = match Filter::from_params(&p, cfg.max_criteria) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(required_param("criteria")),
            Err(r) => return Ok(*r),
        };
        let fields = match parse_fields(&p, cfg.max_fields) {
            Ok(f) => f,
            Err(r) => return Ok(*r),
        };
        let (page, per_page) = match parse_paging(&p, cfg.max_per_page) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        if page.saturating_mul(per_page) > cfg.discrete_limit {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "You can only get the first 2000 records without using page_token param",
                json!({"limit": cfg.discrete_limit}),
            ));
        }
        let offset = (page - 1) * per_page;
        let mut found: Vec<Map<String, Value>> = Vec::new();
        let mut seen = 0usize;
        self.scan(org, module, |rec| {
            if filter.matches(&rec) {
                seen += 1;
                if seen > offset {
                    found.push(rec);
                }
            }
            found.len() <= per_page
        })?;
        let more = found.len() > per_page;
        found.truncate(per_page);
        if found.is_empty() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let data: Vec<Value> = found
            .into_iter()
            .map(|r| match &fields {
                Some(f) => project(&r, f),
                None => Value::Object(r),
            })
            .collect();
        let info = json!({"per_page": per_page, "count": data.len(), "page": page, "more_records": more});
        Ok(json_value(StatusCode::OK, &json!({ "data": data, "info": info })))
    }

    fn count_action(&self, org: &str, module: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let p = Params::parse(query);
        let n = match Filter::from_params(&p, self.inner.cfg.max_criteria) {
            Err(r) => return Ok(*r),
            Ok(None) => count_rows(&self.db().conn, org, module)?,
            Ok(Some(f)) => {
                let mut n = 0;
                self.scan(org, module, |rec| {
                    n += usize::from(f.matches(&rec));
                    true
                })?;
                n
            }
        };
        Ok(json_value(StatusCode::OK, &json!({ "count": n })))
    }

    /// Calls `f` on each record of the module, newest id first, while it returns true.
    fn scan(&self, org: &str, module: &str, mut f: impl FnMut(Map<String, Value>) -> bool) -> rusqlite::Result<()> {
        let db = self.db();
        let mut st =
            db.conn.prepare_cached("SELECT data FROM records WHERE org = ?1 AND module = ?2 ORDER BY id DESC")?;
        let mut rows = st.query(params![org, module])?;
        while let Some(row) = rows.next()? {
            let data: String = row.get(0)?;
            if !f(parse_record(&data)) {
                break;
            }
        }
        Ok(())
    }

    fn insert(&self, org: &str, module: &str, body: &[u8]) -> rusqlite::Result<Response> {
        let (items, _) = match data_items(body, self.inner.cfg.max_records_per_call) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        let ctx = self.org_ctx(org);
        let now = now_ms();
        let mut db = self.db();
        let Db { conn, next_seq } = &mut *db;
        let tx = conn.transaction()?;
        let mut results = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            results.push(insert_item(&tx, &ctx, module, item, i, next_seq, now)?);
        }
        tx.commit()?;
        Ok(batch_response(results, StatusCode::CREATED))
    }

    fn update(
        &self,
        org: &str,
        module: &str,
        path_id: Option<&str>,
        body: &[u8],
        headers: &HeaderMap,
    ) -> rusqlite::Result<Response> {
        let (mut items, _) = match data_items(body, self.inner.cfg.max_records_per_call) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        let unmodified_since = match time_header(headers, header::IF_UNMODIFIED_SINCE) {
            Ok(t) => t,
            Err(r) => return Ok(*r),
        };
        if path_id.is_some() {
            items.truncate(1);
        }
        let ctx = self.org_ctx(org);
        let now = now_ms();
        let mut db = self.db();
        let tx = db.conn.transaction()?;
        let mut results = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let id = match path_id {
                Some(id) => Some(id.to_string()),
                None => item.get("id").and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }),
            };
            results.push(update_item(&tx, &ctx, module, id.as_deref(), item, i, now, unmodified_since)?);
        }
        tx.commit()?;
        Ok(batch_response(results, StatusCode::OK))
    }

    fn upsert(&self, org: &str, module: &str, body: &[u8], headers: &HeaderMap) -> rusqlite::Result<Response> {
        let (items, top) = match data_items(body, self.inner.cfg.max_records_per_call) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        let dup_fields: Vec<String> = match top.get("duplicate_check_fields") {
            None | Some(Value::Null) => duplicate_fields(module).iter().map(|s| s.to_string()).collect(),
            Some(Value::Array(a)) if a.iter().all(|f| f.as_str().is_some_and(valid_api_name)) => {
                a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect()
            }
            Some(_) => {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                    "invalid data",
                    json!({"api_name": "duplicate_check_fields", "json_path": "$.duplicate_check_fields"}),
                ));
            }
        };
        let unmodified_since = match time_header(headers, header::IF_UNMODIFIED_SINCE) {
            Ok(t) => t,
            Err(r) => return Ok(*r),
        };
        let ctx = self.org_ctx(org);
        let now = now_ms();
        let mut db = self.db();
        let Db { conn, next_seq } = &mut *db;
        let tx = conn.transaction()?;
        let mut results = Vec::with_capacity(items.len());
        'items: for (i, item) in items.iter().enumerate() {
            if let Some(obj) = item.as_object() {
                for f in &dup_fields {
                    let Some(v) = obj.get(f).filter(|v| !is_empty_value(Some(v))) else { continue };
                    if let Some(id) = find_equal(&tx, org, module, f, v, None)? {
                        let mut r = update_item(&tx, &ctx, module, Some(&id), item, i, now, unmodified_since)?;
                        if r["status"] == "success" {
                            r["duplicate_field"] = f.clone().into();
                            r["action"] = "update".into();
                        }
                        results.push(r);
                        continue 'items;
                    }
                }
            }
            let mut r = insert_item(&tx, &ctx, module, item, i, next_seq, now)?;
            if r["status"] == "success" {
                r["duplicate_field"] = Value::Null;
                r["action"] = "insert".into();
            }
            results.push(r);
        }
        tx.commit()?;
        Ok(batch_response(results, StatusCode::OK))
    }

    fn delete_many(&self, org: &str, module: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let p = Params::parse(query);
        let Some(raw) = p.get("ids") else { return Ok(required_param("ids")) };
        let ids: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if ids.is_empty() {
            return Ok(required_param("ids"));
        }
        if ids.len() > self.inner.cfg.max_records_per_call {
            return Ok(too_many_records(self.inner.cfg.max_records_per_call));
        }
        let items = self.delete_ids(org, module, &ids)?;
        Ok(batch_response(items, StatusCode::OK))
    }

    fn delete_one(&self, org: &str, module: &str, id: &str) -> rusqlite::Result<Response> {
        let items = self.delete_ids(org, module, &[id])?;
        Ok(batch_response(items, StatusCode::OK))
    }

    fn delete_ids(&self, org: &str, module: &str, ids: &[&str]) -> rusqlite::Result<Vec<Value>> {
        let mut db = self.db();
        let tx = db.conn.transaction()?;
        let mut items = Vec::with_capacity(ids.len());
        for id in ids {
            let n = tx
                .prepare_cached("DELETE FROM records WHERE org = ?1 AND module = ?2 AND id = ?3")?
                .execute(params![org, module, id])?;
            items.push(if n > 0 {
                json!({"code": "SUCCESS", "details": {"id": id}, "message": "record deleted", "status": "success"})
            } else {
                item_error("INVALID_DATA", "the id given seems to be invalid", json!({"id": id}))
            });
        }
        tx.commit()?;
        Ok(items)
    }
}

/// Validates an insert or update item's fields: drops server-owned ones (and `$...` keys), checks
/// names, types, lengths, e-mail shape and the owner.
fn clean_fields(ctx: &OrgCtx, module: &str, obj: &Map<String, Value>, i: usize) -> Result<Map<String, Value>, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        if READ_ONLY.contains(&k.as_str()) || k.starts_with('$') {
            continue;
        }
        if !valid_api_name(k) {
            return Err(item_error(
                "INVALID_DATA",
                "the field api name given seems to be invalid",
                json!({"api_name": k, "json_path": json_path(i, k)}),
            ));
        }
        let v = match (k.as_str(), v) {
            ("Owner", Value::Object(o)) => {
                let id = match o.get("id") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                if id != ctx.user_id() {
                    return Err(invalid_value(i, k, ("expected_data_type", "ownerlookup".into())));
                }
                ctx.user.clone()
            }
            ("Owner", _) => return Err(invalid_value(i, k, ("expected_data_type", "ownerlookup".into()))),
            (f, Value::String(s)) if numeric_field(f) => match s.trim().parse::<f64>() {
                Ok(n) if n.fract() == 0.0 && n.abs() < 1e15 => json!(n as i64),
                Ok(n) => json!(n),
                Err(_) => return Err(invalid_value(i, k, ("expected_data_type", "double".into()))),
            },
            (f, Value::Number(_) | Value::Null) if numeric_field(f) => v.clone(),
            (f, _) if numeric_field(f) => return Err(invalid_value(i, k, ("expected_data_type", "double".into()))),
            (f, Value::String(s)) => {
                let max = max_length(f);
                if s.chars().count() > max {
                    return Err(invalid_value(i, k, ("maximum_length", max.into())));
                }
                if matches!(f, "Email" | "Secondary_Email") && !s.is_empty() && !looks_like_email(s) {
                    return Err(invalid_value(i, k, ("expected_data_type", "email".into())));
                }
                v.clone()
            }
            (_, Value::Null) => Value::Null,
            (f, _) if text_only(module, f) => return Err(invalid_value(i, k, ("expected_data_type", "text".into()))),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}

fn missing_mandatory(module: &str, rec: &Map<String, Value>, i: usize) -> Option<Value> {
    mandatory_fields(module).iter().find(|f| is_empty_value(rec.get(**f))).map(|f| {
        item_error(
            "MANDATORY_NOT_FOUND",
            "required field not found",
            json!({"api_name": f, "json_path": json_path(i, f)}),
        )
    })
}

/// A `DUPLICATE_DATA` item when one of the module's system duplicate fields in `fields` is taken.
fn duplicate(
    conn: &Connection,
    ctx: &OrgCtx,
    module: &str,
    fields: &Map<String, Value>,
    exclude: Option<&str>,
    i: usize,
) -> rusqlite::Result<Option<Value>> {
    for f in duplicate_fields(module) {
        let Some(v) = fields.get(*f).filter(|v| !is_empty_value(Some(v))) else { continue };
        if let Some(id) = find_equal(conn, &ctx.org, module, f, v, exclude)? {
            return Ok(Some(item_error(
                "DUPLICATE_DATA",
                "duplicate data",
                json!({
                    "api_name": f,
                    "duplicate_record": {"id": id},
                    "json_path": json_path(i, f),
                    "id": id,
                    "more_records": false,
                }),
            )));
        }
    }
    Ok(None)
}

fn insert_item(
    conn: &Connection,
    ctx: &OrgCtx,
    module: &str,
    item: &Value,
    i: usize,
    seq: &mut u64,
    now: i64,
) -> rusqlite::Result<Value> {
    let Some(obj) = item.as_object() else {
        return Ok(item_error(
            "INVALID_DATA",
            "invalid data",
            json!({"expected_data_type": "jsonobject", "json_path": format!("$.data[{i}]")}),
        ));
    };
    if let Some(e) = missing_mandatory(module, obj, i) {
        return Ok(e);
    }
    let mut rec = match clean_fields(ctx, module, obj, i) {
        Ok(f) => f,
        Err(e) => return Ok(e),
    };
    if let Some(e) = duplicate(conn, ctx, module, &rec, None, i)? {
        return Ok(e);
    }
    let id = ctx.new_id(seq);
    stamp_new(&mut rec, ctx, &id, now, now);
    insert_row(conn, &ctx.org, module, &id, now, now, &rec)?;
    Ok(success_item(&rec, "record added"))
}

#[allow(clippy::too_many_arguments)]
fn update_item(
    conn: &Connection,
    ctx: &OrgCtx,
    module: &str,
    id: Option<&str>,
    item: &Value,
    i: usize,
    now: i64,
    unmodified_since: Option<i64>,
) -> rusqlite::Result<Value> {
    let Some(obj) = item.as_object() else {
        return Ok(item_error(
            "INVALID_DATA",
            "invalid data",
            json!({"expected_data_type": "jsonobject", "json_path": format!("$.data[{i}]")}),
        ));
    };
    let Some(id) = id.filter(|s| !s.is_empty()) else { return Ok(invalid_id_item(i)) };
    let Some((_, modified, data)) = get_row(conn, &ctx.org, module, id)? else { return Ok(invalid_id_item(i)) };
    if unmodified_since.is_some_and(|since| modified.div_euclid(1000) > since) {
        return Ok(item_error(
            "ALREADY_MODIFIED",
            "record updated time has already passed if-unmodified-since time",
            json!({"id": id}),
        ));
    }
    let fields = match clean_fields(ctx, module, obj, i) {
        Ok(f) => f,
        Err(e) => return Ok(e),
    };
    if let Some(e) = duplicate(conn, ctx, module, &fields, Some(id), i)? {
        return Ok(e);
    }
    let mut rec = parse_record(&data);
    rec.extend(fields);
    if let Some(e) = missing_mandatory(module, &rec, i) {
        return Ok(e);
    }
    let now = now.max(modified);
    rec.insert("Modified_Time".into(), format_time(now, ctx.offset_secs).into());
    rec.insert("Modified_By".into(), ctx.user.clone());
    update_row(conn, &ctx.org, module, id, now, &rec)?;
    Ok(success_item(&rec, "record updated"))
}

// ---------------------------------------------------------------------------------------------
// Paging tokens

/// Where the next page starts: after `(key, id)` in the `sort` order.
struct PageToken {
    sort: SortBy,
    desc: bool,
    key: i64,
    id: String,
    page: usize,
    issued_ms: i64,
}

impl PageToken {
    fn encode(&self) -> String {
        let raw = format!(
            "{}.{}.{}.{}.{}.{}",
            self.sort.code(),
            if self.desc { 'd' } else { 'a' },
            self.key,
            self.id,
            self.page,
            self.issued_ms
        );
        raw.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn decode(token: &str) -> Option<PageToken> {
        if token.len() % 2 != 0 || !token.is_ascii() {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..token.len()).step_by(2).map(|i| u8::from_str_radix(&token[i..i + 2], 16).ok()).collect();
        let raw = String::from_utf8(bytes?).ok()?;
        let parts: Vec<&str> = raw.split('.').collect();
        let &[sort, dir, key, id, page, issued] = parts.as_slice() else { return None };
        let sort = match sort {
            "i" => SortBy::Id,
            "c" => SortBy::Created,
            "m" => SortBy::Modified,
            _ => return None,
        };
        let desc = match dir {
            "d" => true,
            "a" => false,
            _ => return None,
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(PageToken {
            sort,
            desc,
            key: key.parse().ok()?,
            id: id.to_string(),
            page: page.parse().ok()?,
            issued_ms: issued.parse().ok()?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Search

/// What a search (or a filtered count) selects.
enum Filter {
    Criteria(Crit),
    Email(String),
    /// The phone's digits.
    Phone(String),
    /// Lower case.
    Word(String),
}

impl Filter {
    /// From `criteria`, else `email`, else `phone`, else `word`; `Ok(None)` when none is given.
    fn from_params(p: &Params, max_criteria: usize) -> Result<Option<Filter>, Refused> {
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

    fn matches(&self, rec: &Map<String, Value>) -> bool {
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
enum Crit {
    Cond(Cond),
    And(Vec<Crit>),
    Or(Vec<Crit>),
}

#[derive(Debug, PartialEq)]
struct Cond {
    field: String,
    op: CritOp,
    values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CritOp {
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
    fn conditions(&self) -> usize {
        match self {
            Crit::Cond(_) => 1,
            Crit::And(v) | Crit::Or(v) => v.iter().map(Crit::conditions).sum(),
        }
    }

    fn matches(&self, rec: &Map<String, Value>) -> bool {
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
fn parse_criteria(s: &str) -> Option<Crit> {
    let chars: Vec<char> = s.trim().chars().collect();
    if chars.first() != Some(&'(') {
        return parse_condition(&chars);
    }
    let mut pos = 0;
    let crit = parse_expr(&chars, &mut pos)?;
    skip_ws(&chars, &mut pos);
    (pos == chars.len()).then_some(crit)
}

fn skip_ws(c: &[char], pos: &mut usize) {
    while *pos < c.len() && c[*pos].is_whitespace() {
        *pos += 1;
    }
}

fn parse_expr(c: &[char], pos: &mut usize) -> Option<Crit> {
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

fn collapse(mut v: Vec<Crit>, make: fn(Vec<Crit>) -> Crit) -> Crit {
    if v.len() == 1 { v.remove(0) } else { make(v) }
}

fn parse_term(c: &[char], pos: &mut usize) -> Option<Crit> {
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
fn parse_condition(c: &[char]) -> Option<Crit> {
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
fn split_unescaped(s: &str) -> Vec<String> {
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

fn unescape(s: &str) -> String {
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
    fn matches(&self, rec: &Map<String, Value>) -> bool {
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

    fn ordered(&self, v: Option<&Value>, i: usize, ok: impl Fn(Ordering) -> bool) -> bool {
        v.is_some_and(|v| scalars(v).iter().any(|s| compare(&self.field, s, &self.values[i]).is_some_and(&ok)))
    }
}

/// The comparable texts of a value: itself, or a lookup's `id` and `name`, or an array's elements.
fn scalars(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Object(o) => ["id", "name"].iter().filter_map(|k| o.get(*k)).flat_map(scalars).collect(),
        Value::Array(a) => a.iter().flat_map(scalars).collect(),
        Value::Null => Vec::new(),
    }
}

fn equals(field: &str, v: &Value, want: &str) -> bool {
    scalars(v).iter().any(|s| compare(field, s, want) == Some(Ordering::Equal))
}

/// Date-times as instants, integers and decimals as numbers, anything else as case-insensitive text.
fn compare(field: &str, a: &str, b: &str) -> Option<Ordering> {
    if field.ends_with("_Time") || (a.len() >= 19 && b.len() >= 19) {
        if let (Some(x), Some(y)) = (parse_time(a), parse_time(b)) {
            return Some(x.cmp(&y));
        }
    }
    if let (Ok(x), Ok(y)) = (a.trim().parse::<i128>(), b.trim().parse::<i128>()) {
        return Some(x.cmp(&y));
    }
    if let (Ok(x), Ok(y)) = (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        return x.partial_cmp(&y);
    }
    Some(a.to_lowercase().cmp(&b.to_lowercase()))
}

// ---------------------------------------------------------------------------------------------
// Time

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `2023-05-10T01:10:47-07:00`: the instant `ms` at the UTC offset `offset_secs`.
fn format_time(ms: i64, offset_secs: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_secs as i32)
        .unwrap_or(chrono::FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!()));
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&offset).format("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DD`, at the UTC offset.
fn format_date(ms: i64, offset_secs: i64) -> String {
    format_time(ms, offset_secs)[..10].to_string()
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM|±HHMM)`; no offset means UTC, and a space
/// where the `+` was (a `+` decoded from a query string) is read as `+`.
fn parse_time(s: &str) -> Option<i64> {
    let mut t = s.trim().to_string();
    if t.len() > 19 && t.as_bytes()[10] == b' ' {
        t.replace_range(10..11, "T");
    }
    if let Some(pos) = t.get(19..).and_then(|rest| rest.find(' ')).map(|p| p + 19) {
        t.replace_range(pos..pos + 1, "+");
    }
    chrono::DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%:z")
        .or_else(|_| chrono::DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(&t))
        .map(|d| d.timestamp())
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc().timestamp())
        })
}

// ---------------------------------------------------------------------------------------------
// Seed data

/// SplitMix64: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

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
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

const FIRST_NAMES: [&str; 40] = [
    "John",
    "Patricia",
    "Michael",
    "Linda",
    "James",
    "Barbara",
    "Robert",
    "Elizabeth",
    "David",
    "Jennifer",
    "William",
    "Maria",
    "Richard",
    "Susan",
    "Joseph",
    "Margaret",
    "Thomas",
    "Dorothy",
    "Charles",
    "Lisa",
    "Priya",
    "Arjun",
    "Ananya",
    "Rahul",
    "Kavya",
    "Vikram",
    "Meera",
    "Sanjay",
    "Aiko",
    "Kenji",
    "Sofia",
    "Lucas",
    "Chloe",
    "Mateo",
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Ava",
    "Ethan",
];

const LAST_NAMES: [&str; 40] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Boyle",
    "Wilson",
    "Anderson",
    "Taylor",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Young",
    "King",
    "Wright",
    "Scott",
    "Sharma",
    "Iyer",
    "Reddy",
    "Nair",
    "Patel",
    "Gupta",
    "Tanaka",
    "Sato",
    "Rossi",
    "Müller",
];

const COMPANIES: [&str; 24] = [
    "Zylker Corp",
    "Zylker Inc",
    "Zylker Systems",
    "Zylker Technologies",
    "Zylker Foods",
    "Zylker Logistics",
    "Zillum",
    "Zillum Labs",
    "Zoomcorp",
    "Zenith Traders",
    "Chemel",
    "Benton",
    "Chanay",
    "Feltz Printing Service",
    "Printing Dimensions",
    "Commercial Press",
    "Morlong Associates",
    "Chapman",
    "Grayson",
    "Dal Tile",
    "Truhlar And Truhlar Attys",
    "Rangoni Of Florence",
    "Kwik Kopy Printing",
    "Oh My Goodknits Inc",
];

const LEAD_STATUSES: [&str; 8] = [
    "Not Contacted",
    "Attempted to Contact",
    "Contact in Future",
    "Contacted",
    "Junk Lead",
    "Lost Lead",
    "Pre-Qualified",
    "Not Qualified",
];

const LEAD_SOURCES: [&str; 12] = [
    "Advertisement",
    "Cold Call",
    "Employee Referral",
    "External Referral",
    "Online Store",
    "Partner",
    "Public Relations",
    "Seminar Partner",
    "Trade Show",
    "Web Download",
    "Web Research",
    "Chat",
];

const INDUSTRIES: [&str; 8] = [
    "Technology",
    "Manufacturing",
    "Retail",
    "Healthcare",
    "Financial Services",
    "Education",
    "Government/Military",
    "Real Estate",
];

const TITLES: [&str; 8] = [
    "CEO",
    "CTO",
    "VP Sales",
    "Sales Manager",
    "Marketing Manager",
    "Purchasing Manager",
    "Operations Director",
    "IT Administrator",
];

const STAGES: [(&str, i64); 8] = [
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 40),
    ("Identify Decision Makers", 60),
    ("Proposal/Price Quote", 75),
    ("Negotiation/Review", 90),
    ("Closed Won", 100),
    ("Closed Lost", 0),
];

fn domain_of(company: &str) -> String {
    let d: String = company.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
    format!("{d}.com")
}

fn ascii_name(s: &str) -> String {
    s.chars()
        .map(|c| if c == 'ü' { 'u' } else { c })
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

fn phone(rng: &mut Rng) -> String {
    format!("+1-555-{:03}-{:04}", 100 + rng.below(900), rng.below(10_000))
}

/// `first.last@domain`, with a number added until it is not in `taken` (which it joins).
fn unique_email(first: &str, last: &str, domain: &str, taken: &mut HashSet<String>) -> String {
    let base = format!("{}.{}", ascii_name(first), ascii_name(last));
    let mut email = format!("{base}@{domain}");
    let mut n = 2;
    while taken.contains(&email) {
        email = format!("{base}{n}@{domain}");
        n += 1;
    }
    taken.insert(email.clone());
    email
}

fn seed_lead(rng: &mut Rng, emails: &mut HashSet<String>) -> Map<String, Value> {
    let (first, last, company) = (rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES), rng.pick(&COMPANIES));
    let email = unique_email(first, last, &domain_of(company), emails);
    let mut m = Map::new();
    m.insert("First_Name".into(), first.into());
    m.insert("Last_Name".into(), last.into());
    m.insert("Full_Name".into(), format!("{first} {last}").into());
    m.insert("Company".into(), company.into());
    m.insert("Email".into(), email.into());
    m.insert("Phone".into(), phone(rng).into());
    m.insert("Mobile".into(), phone(rng).into());
    m.insert("Lead_Status".into(), rng.pick(&LEAD_STATUSES).into());
    m.insert("Lead_Source".into(), rng.pick(&LEAD_SOURCES).into());
    m.insert("Industry".into(), rng.pick(&INDUSTRIES).into());
    m.insert("Designation".into(), rng.pick(&TITLES).into());
    m.insert("No_of_Employees".into(), json!(10 * (1 + rng.below(500))));
    m
}

fn seed_contact(rng: &mut Rng, emails: &mut HashSet<String>) -> Map<String, Value> {
    let (first, last, company) = (rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES), rng.pick(&COMPANIES));
    let email = unique_email(first, last, &domain_of(company), emails);
    let mut m = Map::new();
    m.insert("First_Name".into(), first.into());
    m.insert("Last_Name".into(), last.into());
    m.insert("Full_Name".into(), format!("{first} {last}").into());
    m.insert("Email".into(), email.into());
    m.insert("Phone".into(), phone(rng).into());
    m.insert("Mobile".into(), phone(rng).into());
    m.insert("Title".into(), rng.pick(&TITLES).into());
    m.insert(
        "Department".into(),
        rng.pick(&["Sales", "Marketing", "Finance", "Operations", "IT", "Purchasing"]).into(),
    );
    m.insert("Lead_Source".into(), rng.pick(&LEAD_SOURCES).into());
    m.insert(
        "Mailing_City".into(),
        rng.pick(&["Austin", "Pleasanton", "Chennai", "New York", "Seattle", "Denver"]).into(),
    );
    m
}

fn seed_deal(rng: &mut Rng, now: i64, offset_secs: i64) -> Map<String, Value> {
    let company = rng.pick(&COMPANIES);
    let what = rng.pick(&["Renewal", "Expansion", "Pilot", "Enterprise License", "Services", "Upgrade"]);
    let (stage, probability) = STAGES[rng.below(STAGES.len() as u64) as usize];
    let closing = now + (rng.below(120) as i64 - 60) * 86_400_000;
    let mut m = Map::new();
    m.insert("Deal_Name".into(), format!("{company} - {what}").into());
    m.insert("Stage".into(), stage.into());
    m.insert("Probability".into(), probability.into());
    m.insert("Amount".into(), json!(500 * (2 + rng.below(199))));
    m.insert("Closing_Date".into(), format_date(closing, offset_secs).into());
    m.insert("Type".into(), rng.pick(&["New Business", "Existing Business"]).into());
    m.insert("Lead_Source".into(), rng.pick(&LEAD_SOURCES).into());
    m
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::faults::Knobs;
    use crate::oauth_provider::{ClientConfig, ProviderConfig, serve};

    const ALL: &[&str] = &["ZohoCRM.modules.ALL"];

    struct T {
        base: String,
        http: reqwest::Client,
        crm: Crm,
        provider: Provider,
        faults: Faults,
    }

    struct Resp {
        status: u16,
        headers: reqwest::header::HeaderMap,
        text: String,
        body: Value,
    }

    async fn start() -> T {
        let mut cfg = ProviderConfig::zoho("");
        cfg.clients = vec![ClientConfig::new("c_us", "s_us", "us"), ClientConfig::new("c_in", "s_in", "in")];
        let provider = Provider::new(cfg);
        let crm = Crm::open(None).unwrap();
        let faults = Faults::default();
        let router = provider.oauth_router().merge(crm.router(provider.clone(), faults.clone()));
        let (addr, _server) = serve(router).await.unwrap();
        T { base: format!("http://{addr}"), http: reqwest::Client::new(), crm, provider, faults }
    }

    fn q(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
    }

    impl T {
        /// An access token of `client` ("c_us" or "c_in") with `scopes`, through the token endpoint.
        async fn token(&self, client: &str, scopes: &[&str]) -> String {
            let code = self.provider.mint_self_client_code(client, scopes);
            let secret = if client == "c_us" { "s_us" } else { "s_in" };
            let url = format!(
                "{}/oauth/v2/token?{}",
                self.base,
                q(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", client),
                    ("client_secret", secret),
                    ("code", &code)
                ])
            );
            let r = self.http.post(url).send().await.unwrap();
            let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            v["access_token"].as_str().unwrap().to_string()
        }

        async fn call(
            &self,
            method: reqwest::Method,
            path: &str,
            token: &str,
            body: Option<&Value>,
            headers: &[(&str, &str)],
        ) -> Resp {
            let mut rb = self
                .http
                .request(method, format!("{}{path}", self.base))
                .header("authorization", format!("Zoho-oauthtoken {token}"));
            for (k, v) in headers {
                rb = rb.header(*k, *v);
            }
            if let Some(b) = body {
                rb = rb.header("content-type", "application/json").body(b.to_string());
            }
            let r = rb.send().await.unwrap();
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let text = r.text().await.unwrap();
            let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
            Resp { status, headers, text, body }
        }

        async fn get(&self, path: &str, token: &str) -> Resp {
            self.call(reqwest::Method::GET, path, token, None, &[]).await
        }

        async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
            self.call(reqwest::Method::POST, path, token, Some(body), &[]).await
        }

        async fn put(&self, path: &str, token: &str, body: &Value) -> Resp {
            self.call(reqwest::Method::PUT, path, token, Some(body), &[]).await
        }

        async fn delete(&self, path: &str, token: &str) -> Resp {
            self.call(reqwest::Method::DELETE, path, token, None, &[]).await
        }

        async fn search(&self, token: &str, pairs: &[(&str, &str)]) -> Resp {
            self.get(&format!("/crm/v7/Leads/search?{}", q(pairs)), token).await
        }
    }

    fn ids_of(v: &Value) -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn time_formatting_and_parsing() {
        // 2023-05-10T08:10:47Z
        let ms = 1_683_706_247_000;
        assert_eq!(format_time(ms, -7 * 3600), "2023-05-10T01:10:47-07:00");
        assert_eq!(format_time(ms, 5 * 3600 + 1800), "2023-05-10T13:40:47+05:30");
        assert_eq!(format_time(ms, 0), "2023-05-10T08:10:47+00:00");
        assert_eq!(format_time(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(format_time(951_782_400_000, 0), "2000-02-29T00:00:00+00:00");
        for s in [
            "2023-05-10T01:10:47-07:00",
            "2023-05-10T13:40:47+05:30",
            "2023-05-10T08:10:47Z",
            "2023-05-10T08:10:47.999+0000",
            "2023-05-10T13:40:47 05:30",
        ] {
            assert_eq!(parse_time(s), Some(ms / 1000), "{s}");
        }
        for bad in
            ["2023-05-10", "2023-13-10T00:00:00Z", "2023-05-10T01:10:47+7", "yesterday", "2023-05-10T01:10:47-07:00x"]
        {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn criteria_parsing() {
        let c = parse_criteria("((Last_Name:equals:Doe)and(Company:starts_with:Zyl))").unwrap();
        assert_eq!(c.conditions(), 2);
        assert!(matches!(c, Crit::And(ref v) if v.len() == 2));
        // and binds tighter than or; spaces and case are tolerated.
        let c = parse_criteria("(A:equals:1) OR (B:equals:2) and (C:equals:3)").unwrap();
        assert!(matches!(c, Crit::Or(ref v) if v.len() == 2 && matches!(v[1], Crit::And(_))));
        let Crit::Cond(c) = parse_criteria(r"(Company:in:A\,B,C \(x\))").unwrap() else { panic!() };
        assert_eq!(c.values, ["A,B", "C (x)"]);
        let Crit::Cond(c) = parse_criteria("(Modified_Time:greater_than:2023-05-10T01:10:47-07:00)").unwrap() else {
            panic!()
        };
        assert_eq!(c.values, ["2023-05-10T01:10:47-07:00"]);
        assert!(parse_criteria("Last_Name:equals:Doe").is_some());
        for bad in [
            "(Last_Name:equals:Doe",
            "(Last_Name:like:Doe)",
            "(Last_Name:equals:)",
            "((A:equals:1)xor(B:equals:2))",
            "(A:between:1)",
            "(A:equals:x(y))",
            "(Bad Name:equals:1)",
            "(A:equals:1))",
            "",
        ] {
            assert_eq!(parse_criteria(bad), None, "{bad}");
        }
    }

    #[test]
    fn scopes() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(scope_allows(&s(&["ZohoCRM.modules.ALL"]), "Leads", Op::Delete));
        assert!(scope_allows(&s(&["zohocrm.modules.leads.read"]), "Leads", Op::Read));
        assert!(!scope_allows(&s(&["ZohoCRM.modules.leads.READ"]), "Leads", Op::Create));
        assert!(!scope_allows(&s(&["ZohoCRM.modules.leads.READ"]), "Contacts", Op::Read));
        assert!(scope_allows(&s(&["ZohoCRM.modules.purchaseorders.WRITE"]), "Purchase_Orders", Op::Update));
        assert!(!scope_allows(&s(&["ZohoCRM.modules.purchaseorders.WRITE"]), "Purchase_Orders", Op::Read));
        assert!(scope_allows(&s(&["ZohoCRM.modules.READ"]), "Deals", Op::Read));
        assert!(scope_allows(&s(&["ZohoCRM.modules.deals.CREATE"]), "Deals", Op::Upsert));
        assert!(!scope_allows(&s(&["ZohoCRM.modules.deals.UPDATE"]), "Deals", Op::Upsert));
        assert!(!scope_allows(&s(&["ZohoCRM.settings.ALL", "ZohoCRM.users.ALL"]), "Leads", Op::Read));
        assert!(!scope_allows(&[], "Leads", Op::Read));
    }

    #[test]
    fn page_tokens_round_trip() {
        let t = PageToken {
            sort: SortBy::Modified,
            desc: false,
            key: -5,
            id: "4150868000001000001".into(),
            page: 11,
            issued_ms: 7,
        };
        let back = PageToken::decode(&t.encode()).unwrap();
        assert_eq!(
            (back.sort, back.desc, back.key, back.id.as_str(), back.page, back.issued_ms),
            (SortBy::Modified, false, -5, "4150868000001000001", 11, 7)
        );
        assert!(PageToken::decode("zz").is_none());
        assert!(PageToken::decode("abc").is_none());
        assert!(PageToken::decode("").is_none());
    }

    #[test]
    fn seed_is_deterministic_and_realistic() {
        let a = Crm::open(None).unwrap();
        let b = Crm::open(None).unwrap();
        a.seed("us", 50, 20, 10).unwrap();
        b.seed("us", 50, 20, 10).unwrap();
        assert_eq!((a.count("us", "Leads"), a.count("us", "contacts"), a.count("us", "Deals")), (50, 20, 10));
        assert_eq!(a.count("in", "Leads"), 0);
        assert_eq!(a.count("us", "Nope"), 0);
        let strip = |c: &Crm| {
            let db = c.db();
            let mut st = db.conn.prepare("SELECT id, data FROM records ORDER BY id").unwrap();
            let rows: Vec<(String, String)> =
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
            rows.into_iter()
                .map(|(id, d)| {
                    let mut m = parse_record(&d);
                    m.remove("Created_Time");
                    m.remove("Modified_Time");
                    m.remove("Closing_Date");
                    (id, m)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&a), strip(&b));
        // Seeding again keeps e-mails unique.
        a.seed("us", 50, 0, 0).unwrap();
        let db = a.db();
        let n: i64 = db
            .conn
            .query_row(
                "SELECT COUNT(DISTINCT lower(json_extract(data, '$.Email'))) FROM records WHERE module = 'Leads'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 100);
        let (id, data): (String, String) = db
            .conn
            .query_row("SELECT id, data FROM records WHERE module = 'Leads' ORDER BY id LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        drop(db);
        assert_eq!(id.len(), 19);
        assert!(id.starts_with("5725767"));
        let rec = parse_record(&data);
        assert_eq!(
            rec["Owner"],
            json!({"name": "Patricia Boyle", "id": "5725767000000411001", "email": "patricia.boyle@zylker.com"})
        );
        assert!(rec["Phone"].as_str().unwrap().starts_with("+1-555-"));
        assert!(rec["Created_Time"].as_str().unwrap().ends_with("-07:00"));
        assert!(LEAD_STATUSES.contains(&rec["Lead_Status"].as_str().unwrap()));
        let created = parse_time(rec["Created_Time"].as_str().unwrap()).unwrap();
        let modified = parse_time(rec["Modified_Time"].as_str().unwrap()).unwrap();
        let now = now_ms() / 1000;
        assert!(created <= modified && modified <= now - 3600 && created >= now - 28 * 86_400, "{rec:?}");
        let email = rec["Email"].as_str().unwrap().to_uppercase();
        assert_eq!(a.find_by_email("us", "Leads", &email).unwrap()["id"], id.as_str());
        assert!(a.find_by_email("in", "Leads", &email).is_none());
    }

    #[tokio::test]
    async fn insert_get_update_delete() {
        let t = start().await;
        let tok = t.token("c_us", ALL).await;
        let body = json!({"data": [
            {"Last_Name": "Doe", "First_Name": "John", "Company": "Zylker", "Email": "j.doe@zylker.com"},
            {"First_Name": "NoLast"},
            {"Last_Name": "Dup", "Email": "J.DOE@zylker.com"},
            {"Last_Name": 5},
            {"Last_Name": "Bad mail", "Email": "not-an-email"},
            {"Last_Name": "x".repeat(81)},
            {"Last_Name": "Weird", "Bad Field": 1},
        ]});
        let r = t.post("/crm/v7/Leads", &tok, &body).await;
        assert_eq!(r.status, 207, "{}", r.text);
        let items = r.body["data"].as_array().unwrap();
        let ok = &items[0];
        assert_eq!(
            (&ok["code"], &ok["message"], &ok["status"]),
            (&json!("SUCCESS"), &json!("record added"), &json!("success"))
        );
        let d = &ok["details"];
        let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["$approval_state", "Created_By", "Created_Time", "Modified_By", "Modified_Time", "id"]);
        assert_eq!(d["Created_By"], json!({"name": "Patricia Boyle", "id": "5725767000000411001"}));
        assert_eq!(d["$approval_state"], "approved");
        assert!(d["Created_Time"].as_str().unwrap().ends_with("-07:00"));
        let id = d["id"].as_str().unwrap().to_string();
        assert_eq!(id.len(), 19);
        assert_eq!(
            items[1],
            json!({"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Last_Name", "json_path": "$.data[1].Last_Name"}, "message": "required field not found", "status": "error"})
        );
        assert_eq!(
            items[2],
            json!({"code": "DUPLICATE_DATA", "details": {"api_name": "Email", "duplicate_record": {"id": id}, "json_path": "$.data[2].Email", "id": id, "more_records": false}, "message": "duplicate data", "status": "error"})
        );
        assert_eq!(items[3]["code"], "INVALID_DATA");
        assert_eq!(items[3]["details"]["json_path"], "$.data[3].Last_Name");
        assert_eq!(items[4]["details"]["api_name"], "Email");
        assert_eq!(items[5]["details"]["maximum_length"], 80);
        assert_eq!(
            items[6],
            json!({"code": "INVALID_DATA", "details": {"api_name": "Bad Field", "json_path": "$.data[6].Bad Field"}, "message": "the field api name given seems to be invalid", "status": "error"})
        );
        assert_eq!(t.crm.count("us", "Leads"), 1);

        // All ok: 201; all failed: 400.
        let r =
            t.post("/crm/v8/Leads", &tok, &json!({"data": [{"Last_Name": "Roe", "Email": "roe@zylker.com"}]})).await;
        assert_eq!(r.status, 201);
        let id2 = r.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
        assert!(id2 > id, "ids increase");
        let r = t.post("/crm/v7/Leads", &tok, &json!({"data": [{"First_Name": "x"}]})).await;
        assert_eq!(r.status, 400);
        // Mandatory fields of other modules.
        let r = t
            .post(
                "/crm/v7/Deals",
                &tok,
                &json!({"data": [{"Deal_Name": "D"}, {"Deal_Name": "D", "Stage": "Qualification", "Amount": "1500"}]}),
            )
            .await;
        assert_eq!(r.status, 207);
        assert_eq!(r.body["data"][0]["details"]["api_name"], "Stage");
        let r = t
            .post("/crm/v7/Purchase_Orders", &tok, &json!({"data": [{"Subject": "PO", "Vendor_Name": {"id": "1"}}]}))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = t.post("/crm/v7/Tasks", &tok, &json!({"data": [{}]})).await;
        assert_eq!(r.status, 201);

        // Over 100, bad bodies.
        let many: Vec<Value> = (0..101).map(|i| json!({"Last_Name": format!("L{i}")})).collect();
        let r = t.post("/crm/v7/Leads", &tok, &json!({ "data": many })).await;
        assert_eq!(
            (r.status, &r.body["code"], &r.body["message"]),
            (400, &json!("LIMIT_EXCEEDED"), &json!("Cannot process more than 100 records at a time."))
        );
        assert_eq!(t.post("/crm/v7/Leads", &tok, &json!({"rows": []})).await.body["code"], "MANDATORY_NOT_FOUND");
        let r = t.call(reqwest::Method::POST, "/crm/v7/Leads", &tok, None, &[]).await;
        assert_eq!((r.status, &r.body["code"]), (400, &json!("INVALID_DATA")));

        // Get one.
        let r = t.get(&format!("/crm/v7/Leads/{id}"), &tok).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], JSON_CT);
        let rec = &r.body["data"][0];
        assert_eq!(
            (&rec["id"], &rec["Last_Name"], &rec["Email"]),
            (&json!(id), &json!("Doe"), &json!("j.doe@zylker.com"))
        );
        assert_eq!(rec["Owner"]["email"], "patricia.boyle@zylker.com");
        let r = t.get(&format!("/crm/v7/Leads/{id}?fields=Email,Nope"), &tok).await;
        assert_eq!(r.body, json!({"data": [{"id": id, "Email": "j.doe@zylker.com", "Nope": null}]}));
        let r = t.get("/crm/v7/Leads/1234567890123456789", &tok).await;
        assert_eq!(
            (r.status, r.body),
            (
                400,
                json!({"code": "INVALID_DATA", "details": {}, "message": "the id given seems to be invalid", "status": "error"})
            )
        );

        // Update one, bulk, If-Unmodified-Since.
        let r = t.put(&format!("/crm/v7/Leads/{id}"), &tok, &json!({"data": [{"Lead_Status": "Contacted"}]})).await;
        assert_eq!((r.status, &r.body["data"][0]["message"]), (200, &json!("record updated")));
        assert_eq!(r.body["data"][0]["details"]["id"], id.as_str());
        assert_eq!(t.get(&format!("/crm/v7/Leads/{id}"), &tok).await.body["data"][0]["Lead_Status"], "Contacted");
        let r = t
            .put("/crm/v7/Leads", &tok, &json!({"data": [{"id": id2, "Phone": "+1-555-000-0000"}, {"id": "999"}, {"Phone": "1"}, {"id": id2, "Email": "J.Doe@zylker.com"}, {"id": id2, "Last_Name": ""}]}))
            .await;
        assert_eq!(r.status, 207);
        let items = r.body["data"].as_array().unwrap();
        assert_eq!(items[0]["status"], "success");
        let invalid_id = |i: usize| json!({"code": "INVALID_DATA", "details": {"api_name": "id", "json_path": format!("$.data[{i}].id")}, "message": "the id given seems to be invalid", "status": "error"});
        assert_eq!((&items[1], &items[2]), (&invalid_id(1), &invalid_id(2)));
        assert_eq!(items[3]["code"], "DUPLICATE_DATA");
        assert_eq!(items[4]["code"], "MANDATORY_NOT_FOUND");
        let past = format_time(now_ms() - 3_600_000, -7 * 3600);
        let r = t
            .call(
                reqwest::Method::PUT,
                &format!("/crm/v7/Leads/{id}"),
                &tok,
                Some(&json!({"data": [{"Lead_Status": "Junk Lead"}]})),
                &[("If-Unmodified-Since", &past)],
            )
            .await;
        assert_eq!(r.status, 412);
        assert_eq!(r.body["data"][0]["code"], "ALREADY_MODIFIED");
        assert_eq!(r.body["data"][0]["message"], "record updated time has already passed if-unmodified-since time");
        let future = format_time(now_ms() + 3_600_000, 0);
        let r = t
            .call(
                reqwest::Method::PUT,
                &format!("/crm/v7/Leads/{id}"),
                &tok,
                Some(&json!({"data": [{"Lead_Status": "Junk Lead"}]})),
                &[("If-Unmodified-Since", &future)],
            )
            .await;
        assert_eq!(r.status, 200);

        // Delete.
        let r = t.delete(&format!("/crm/v7/Leads?ids={id},999"), &tok).await;
        assert_eq!(r.status, 207);
        assert_eq!(
            r.body["data"][0],
            json!({"code": "SUCCESS", "details": {"id": id}, "message": "record deleted", "status": "success"})
        );
        assert_eq!(r.body["data"][1]["code"], "INVALID_DATA");
        let r = t.delete(&format!("/crm/v7/Leads/{id2}"), &tok).await;
        assert_eq!((r.status, &r.body["data"][0]["message"]), (200, &json!("record deleted")));
        assert_eq!(t.delete(&format!("/crm/v7/Leads/{id2}"), &tok).await.status, 400);
        let r = t.delete("/crm/v7/Leads", &tok).await;
        assert_eq!(
            r.body,
            json!({"code": "REQUIRED_PARAM_MISSING", "details": {"param_name": "ids"}, "message": "required param is missing", "status": "error"})
        );
        assert_eq!(t.crm.count("us", "Leads"), 0);
    }

    #[tokio::test]
    async fn upsert_inserts_then_updates() {
        let t = start().await;
        let tok = t.token("c_in", &["ZohoCRM.modules.leads.CREATE"]).await;
        let r = t
            .post(
                "/crm/v7/Leads/upsert",
                &tok,
                &json!({"data": [{"Last_Name": "Rao", "Email": "rao@zylker.in", "Phone": "+91 98450 12345"}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let item = &r.body["data"][0];
        assert_eq!(
            (&item["action"], &item["duplicate_field"], &item["message"]),
            (&json!("insert"), &Value::Null, &json!("record added"))
        );
        let id = item["details"]["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("4150868"));
        assert!(item["details"]["Created_Time"].as_str().unwrap().ends_with("+05:30"));
        // Email (the system duplicate field) matches, whatever its case.
        let r = t.post("/crm/v7/Leads/upsert", &tok, &json!({"data": [{"Last_Name": "Rao K", "Email": "RAO@zylker.in"}, {"Last_Name": "New", "Email": "new@zylker.in"}]})).await;
        assert_eq!(r.status, 200);
        let items = r.body["data"].as_array().unwrap();
        assert_eq!(
            items[0],
            json!({"code": "SUCCESS", "duplicate_field": "Email", "action": "update", "details": items[0]["details"], "message": "record updated", "status": "success"})
        );
        assert_eq!(items[0]["details"]["id"], id.as_str());
        assert_eq!(items[1]["action"], "insert");
        assert_eq!(t.crm.find_by_email("in", "Leads", "rao@zylker.in").unwrap()["Last_Name"], "Rao K");
        // duplicate_check_fields.
        let r = t.post("/crm/v7/Leads/upsert", &tok, &json!({"data": [{"Last_Name": "By phone", "Phone": "+91 98450 12345"}], "duplicate_check_fields": ["Phone"]})).await;
        assert_eq!(
            (&r.body["data"][0]["action"], &r.body["data"][0]["duplicate_field"]),
            (&json!("update"), &json!("Phone"))
        );
        assert_eq!(t.crm.count("in", "Leads"), 2);
        let r = t
            .post(
                "/crm/v7/Leads/upsert",
                &tok,
                &json!({"data": [{"Last_Name": "x"}], "duplicate_check_fields": "Phone"}),
            )
            .await;
        assert_eq!(r.status, 400);
        // Modules without system duplicate fields always insert.
        let tok_all = t.token("c_in", ALL).await;
        for _ in 0..2 {
            let r = t.post("/crm/v7/Accounts/upsert", &tok_all, &json!({"data": [{"Account_Name": "Zylker"}]})).await;
            assert_eq!(r.body["data"][0]["action"], "insert");
        }
        let r = t.post("/crm/v7/Accounts/upsert", &tok_all, &json!({"data": [{"Account_Name": "zylker", "Phone": "1"}], "duplicate_check_fields": ["Account_Name"]})).await;
        assert_eq!(r.body["data"][0]["action"], "update");
        assert_eq!(t.crm.count("in", "Accounts"), 2);
        // CREATE does not allow a plain update.
        assert_eq!(
            t.put(&format!("/crm/v7/Leads/{id}"), &tok, &json!({"data": [{"Last_Name": "y"}]})).await.status,
            401
        );
    }

    #[tokio::test]
    async fn errors_auth_scopes_and_isolation() {
        let t = start().await;
        t.crm.seed("us", 30, 5, 5).unwrap();
        t.crm.seed("in", 3, 0, 0).unwrap();
        let us = t.token("c_us", ALL).await;
        let india = t.token("c_in", ALL).await;
        let r = t.http.get(format!("{}/crm/v7/Leads?fields=Email", t.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap()["code"], "AUTHENTICATION_FAILURE");
        let r = t.get("/crm/v7/Leads?fields=Email", "1000.dead.beef").await;
        assert_eq!((r.status, &r.body["code"]), (401, &json!("INVALID_TOKEN")));

        let r = t.get("/crm/v7/Widgets?fields=Email", &us).await;
        assert_eq!(
            (r.status, r.body),
            (
                400,
                json!({"code": "INVALID_MODULE", "details": {"resource_path_index": 0}, "message": "the module name given seems to be invalid", "status": "error"})
            )
        );
        let not_found = json!({"code": "INVALID_URL_PATTERN", "message": "Please check if the URL trying to access is a correct one", "status": "error", "details": {}});
        for path in ["/crm/v9/Leads", "/crm/v7", "/crm/v7/Leads/1/2", "/crm/v7/Leads/actions/nope"] {
            let r = t.get(path, &us).await;
            assert_eq!((r.status, &r.body), (404, &not_found), "{path}");
        }
        let r = t.call(reqwest::Method::PATCH, "/crm/v7/Leads", &us, None, &[]).await;
        assert_eq!((r.status, &r.body["code"]), (405, &json!("INVALID_REQUEST_METHOD")));
        assert_eq!(
            t.get("/crm/v7/Leads", &us).await.body,
            json!({"code": "REQUIRED_PARAM_MISSING", "status": "error", "details": {"param_name": "fields"}, "message": "required param is missing"})
        );
        let many: Vec<String> = (0..51).map(|i| format!("F{i}")).collect();
        let r = t.get(&format!("/crm/v7/Leads?fields={}", many.join(",")), &us).await;
        assert_eq!((r.status, &r.body["code"]), (400, &json!("LIMIT_EXCEEDED")));
        assert_eq!(t.get("/crm/v7/Leads?fields=Email&sort_by=Email", &us).await.status, 400);
        assert_eq!(t.get("/crm/v7/Leads?fields=Email&page=0", &us).await.status, 400);
        assert_eq!(t.get("/crm/v7/Leads?fields=Email&page_token=nonsense", &us).await.status, 400);

        // Scopes.
        let mismatch =
            json!({"code": "OAUTH_SCOPE_MISMATCH", "message": "Unauthorized", "status": "error", "details": {}});
        let read_leads = t.token("c_us", &["ZohoCRM.modules.leads.READ"]).await;
        assert_eq!(t.get("/crm/v7/Leads/actions/count", &read_leads).await.body, json!({"count": 30}));
        let r = t.get("/crm/v7/Contacts/actions/count", &read_leads).await;
        assert_eq!((r.status, &r.body), (401, &mismatch));
        let r = t.post("/crm/v7/Leads", &read_leads, &json!({"data": [{"Last_Name": "x"}]})).await;
        assert_eq!((r.status, &r.body), (401, &mismatch));
        let settings = t.token("c_us", &["ZohoCRM.settings.ALL"]).await;
        assert_eq!(t.get("/crm/v7/Leads/actions/count", &settings).await.status, 401);
        let write = t.token("c_us", &["ZohoCRM.modules.contacts.WRITE", "ZohoCRM.modules.READ"]).await;
        assert_eq!(t.post("/crm/v7/Contacts", &write, &json!({"data": [{"Last_Name": "x"}]})).await.status, 201);
        assert_eq!(t.post("/crm/v7/Leads", &write, &json!({"data": [{"Last_Name": "x"}]})).await.status, 401);
        assert_eq!(t.get("/crm/v7/Deals/actions/count", &write).await.body, json!({"count": 5}));

        // Each token sees its own organisation.
        assert_eq!(t.get("/crm/v7/Leads/actions/count", &india).await.body, json!({"count": 3}));
        let us_id = ids_of(&t.get("/crm/v7/Leads?fields=Email&per_page=1", &us).await.body)[0].clone();
        assert_eq!(t.get(&format!("/crm/v7/Leads/{us_id}"), &india).await.status, 400);
        assert_eq!(
            t.put(&format!("/crm/v7/Leads/{us_id}"), &india, &json!({"data": [{"Last_Name": "x"}]})).await.status,
            400
        );
        assert_eq!(t.delete(&format!("/crm/v7/Leads/{us_id}"), &india).await.status, 400);
        let r = t.get("/crm/v7/Leads?fields=Email", &india).await;
        assert_eq!(r.body["info"]["count"], 3);
        assert!(ids_of(&r.body).iter().all(|id| id.starts_with("4150868")));
        // The same e-mail can exist in two organisations.
        let email =
            t.get(&format!("/crm/v7/Leads/{us_id}"), &us).await.body["data"][0]["Email"].as_str().unwrap().to_string();
        assert_eq!(
            t.post("/crm/v7/Leads", &india, &json!({"data": [{"Last_Name": "x", "Email": email}]})).await.status,
            201
        );
        assert_eq!(
            t.post("/crm/v7/Leads", &us, &json!({"data": [{"Last_Name": "x", "Email": email}]})).await.status,
            400
        );
        let r = t.search(&india, &[("email", &email)]).await;
        assert_eq!(r.body["info"]["count"], 1);
    }

    #[tokio::test]
    async fn list_paging_past_2000_with_page_token() {
        let t = start().await;
        t.crm.seed("in", 2100, 0, 0).unwrap();
        let tok = t.token("c_in", &["ZohoCRM.modules.leads.READ"]).await;
        let r = t.get("/crm/v7/Leads?fields=Last_Name,Email", &tok).await;
        assert_eq!(r.status, 200);
        let info = &r.body["info"];
        assert_eq!(
            (&info["per_page"], &info["count"], &info["page"], &info["more_records"]),
            (&json!(200), &json!(200), &json!(1), &json!(true))
        );
        assert_eq!(
            (&info["sort_by"], &info["sort_order"], &info["call"], &info["email"]),
            (&json!("id"), &json!("desc"), &json!(false), &json!(false))
        );
        assert_eq!(info["previous_page_token"], Value::Null);
        assert!(info["page_token_expiry"].as_str().unwrap().ends_with("+05:30"));
        let rec = r.body["data"][0].as_object().unwrap();
        let keys: Vec<&String> = rec.keys().collect();
        assert_eq!(keys, ["Email", "Last_Name", "id"]);

        let mut seen: Vec<String> = Vec::new();
        for page in 1..=10 {
            let r = t.get(&format!("/crm/v7/Leads?fields=Email&page={page}"), &tok).await;
            assert_eq!(r.body["info"]["page"], page);
            seen.extend(ids_of(&r.body));
        }
        let r = t.get("/crm/v7/Leads?fields=Email&page=11", &tok).await;
        assert_eq!(
            (r.status, r.body),
            (
                400,
                json!({"code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "message": "You can only get the first 2000 records without using page_token param", "status": "error", "details": {"limit": 2000}})
            )
        );
        assert_eq!(t.get("/crm/v7/Leads?fields=Email&page=21&per_page=100", &tok).await.status, 400);
        let r = t.get("/crm/v7/Leads?fields=Email&page=10", &tok).await;
        let token = r.body["info"]["next_page_token"].as_str().unwrap().to_string();
        let r = t.get(&format!("/crm/v7/Leads?fields=Email&page_token={token}"), &tok).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            (&r.body["info"]["count"], &r.body["info"]["more_records"], &r.body["info"]["page"]),
            (&json!(100), &json!(false), &json!(11))
        );
        assert_eq!(r.body["info"]["next_page_token"], Value::Null);
        seen.extend(ids_of(&r.body));
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!((seen.len(), sorted), (2100, seen.clone()));

        // Walking by tokens alone, oldest modification first.
        let mut walked = 0;
        let mut last_modified = i64::MIN;
        let mut url =
            "/crm/v8/Leads?fields=Modified_Time&sort_by=Modified_Time&sort_order=asc&per_page=150".to_string();
        loop {
            let r = t.get(&url, &tok).await;
            for rec in r.body["data"].as_array().unwrap() {
                let m = parse_time(rec["Modified_Time"].as_str().unwrap()).unwrap();
                assert!(m >= last_modified);
                last_modified = m;
            }
            walked += r.body["info"]["count"].as_u64().unwrap();
            match r.body["info"]["next_page_token"].as_str() {
                Some(next) => url = format!("/crm/v8/Leads?fields=Modified_Time&per_page=150&page_token={next}"),
                None => break,
            }
        }
        assert_eq!(walked, 2100);

        // ids=, sort asc, page past the end.
        let some = format!("{},{},{}", seen[5], seen[0], "1");
        let r = t.get(&format!("/crm/v7/Leads?fields=Email&ids={some}&sort_order=asc"), &tok).await;
        assert_eq!(ids_of(&r.body), [seen[5].clone(), seen[0].clone()]);
        let r = t.get("/crm/v7/Leads?fields=Email&ids=1,2", &tok).await;
        assert_eq!((r.status, r.text.as_str()), (204, ""));
        let r = t.get("/crm/v7/Contacts?fields=Email", &t.token("c_in", ALL).await).await;
        assert_eq!((r.status, r.text.as_str()), (204, ""));
        assert_eq!(t.get("/crm/v7/Leads?fields=Email&per_page=5000", &tok).await.body["info"]["per_page"], 200);
    }

    #[tokio::test]
    async fn if_modified_since() {
        let t = start().await;
        t.crm.seed("us", 40, 0, 0).unwrap();
        let tok = t.token("c_us", ALL).await;
        // Seeded records are at least an hour old.
        let since = format_time(now_ms() - 1_800_000, 5 * 3600 + 1800);
        let ims = |tok: String, since: String| {
            let t = &t;
            async move {
                t.call(
                    reqwest::Method::GET,
                    "/crm/v7/Leads?fields=Last_Name,Modified_Time",
                    &tok,
                    None,
                    &[("If-Modified-Since", &since)],
                )
                .await
            }
        };
        let r = ims(tok.clone(), since.clone()).await;
        assert_eq!((r.status, r.text.as_str()), (304, ""));
        let id = ids_of(&t.get("/crm/v7/Leads?fields=Email&per_page=3&sort_order=asc", &tok).await.body)[2].clone();
        t.crm.modify_for_test("us", "Leads", &id, "Last_Name", json!("Changed"));
        let r = ims(tok.clone(), since.clone()).await;
        assert_eq!(r.status, 200);
        assert_eq!(ids_of(&r.body), std::slice::from_ref(&id));
        assert_eq!(r.body["data"][0]["Last_Name"], "Changed");
        let modified = r.body["data"][0]["Modified_Time"].as_str().unwrap().to_string();
        // Same second as the change: not modified after it.
        assert_eq!(ims(tok.clone(), modified).await.status, 304);
        let all = ims(tok.clone(), format_time(now_ms() - 40 * 86_400_000, 0)).await;
        assert_eq!(all.body["info"]["count"], 40);
        let r = ims(tok.clone(), "last tuesday".into()).await;
        assert_eq!(r.status, 400);
    }

    #[tokio::test]
    async fn search_operators_and_escaping() {
        let t = start().await;
        let tok = t.token("c_us", ALL).await;
        let rows = json!({"data": [
            {"Last_Name": "Doe", "First_Name": "John", "Company": "Zylker (East), Inc", "Email": "john@zylker.com", "Phone": "+1-555-123-4567", "No_of_Employees": 50},
            {"Last_Name": "Roe", "First_Name": "Jane", "Company": "Zylker West", "Email": "jane@zylker.com", "Phone": "(555) 987 6543", "No_of_Employees": 500},
            {"Last_Name": "Poe", "First_Name": "Edgar", "Company": "Ravens", "Email": "edgar@ravens.org", "No_of_Employees": 9},
        ]});
        let r = t.post("/crm/v7/Leads", &tok, &rows).await;
        assert_eq!(r.status, 201);
        let ids: Vec<String> = r.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["details"]["id"].as_str().unwrap().to_string())
            .collect();
        let names = |r: &Resp| -> Vec<String> {
            let mut v: Vec<String> = r.body["data"]
                .as_array()
                .map_or(Vec::new(), |a| a.iter().map(|x| x["Last_Name"].as_str().unwrap().to_string()).collect());
            v.sort();
            v
        };
        let crit = |c: &str| {
            let t = &t;
            let tok = tok.clone();
            let c = c.to_string();
            async move { t.search(&tok, &[("criteria", &c)]).await }
        };
        assert_eq!(names(&crit("(Last_Name:equals:doe)").await), ["Doe"]);
        assert_eq!(names(&crit("(Last_Name:not_equal:Doe)").await), ["Poe", "Roe"]);
        assert_eq!(names(&crit("(Company:starts_with:zylker)").await), ["Doe", "Roe"]);
        assert_eq!(names(&crit("((Company:starts_with:Zylker)and(First_Name:equals:Jane))").await), ["Roe"]);
        assert_eq!(
            names(&crit("((Last_Name:equals:Poe)or((Company:starts_with:Zylker)and(First_Name:equals:John)))").await),
            ["Doe", "Poe"]
        );
        assert_eq!(names(&crit("(Last_Name:in:Doe,Poe,Nobody)").await), ["Doe", "Poe"]);
        assert_eq!(names(&crit("(No_of_Employees:greater_than:50)").await), ["Roe"]);
        assert_eq!(names(&crit("(No_of_Employees:greater_equal:50)").await), ["Doe", "Roe"]);
        assert_eq!(names(&crit("(No_of_Employees:less_than:50)").await), ["Poe"]);
        assert_eq!(names(&crit("(No_of_Employees:less_equal:9)").await), ["Poe"]);
        assert_eq!(names(&crit("(No_of_Employees:between:9,50)").await), ["Doe", "Poe"]);
        // Escaped parentheses and commas in values.
        assert_eq!(names(&crit(r"(Company:equals:Zylker \(East\)\, Inc)").await), ["Doe"]);
        assert_eq!(names(&crit(r"(Company:in:Ravens,Zylker \(East\)\, Inc)").await), ["Doe", "Poe"]);
        assert_eq!(names(&crit(r"(Company:starts_with:Zylker \()").await), ["Doe"]);
        // Ids and times.
        assert_eq!(names(&crit(&format!("(id:equals:{})", ids[1])).await), ["Roe"]);
        assert_eq!(names(&crit(&format!("(id:greater_than:{})", ids[1])).await), ["Poe"]);
        let hour_ago = format_time(now_ms() - 3_600_000, 5 * 3600 + 1800);
        assert_eq!(names(&crit(&format!("(Created_Time:greater_than:{hour_ago})")).await).len(), 3);
        assert_eq!(t.search(&tok, &[("criteria", &format!("(Modified_Time:less_than:{hour_ago})"))]).await.status, 204);
        assert_eq!(names(&crit("(Phone:equals:${EMPTY})").await), ["Poe"]);
        // email, phone (digits only), word.
        assert_eq!(names(&t.search(&tok, &[("email", "JANE@zylker.com")]).await), ["Roe"]);
        assert_eq!(names(&t.search(&tok, &[("phone", "5559876543")]).await), ["Roe"]);
        assert_eq!(names(&t.search(&tok, &[("phone", "555 123 4567")]).await), ["Doe"]);
        assert_eq!(names(&t.search(&tok, &[("word", "ravens")]).await), ["Poe"]);
        assert_eq!(names(&t.search(&tok, &[("word", "ZYLKER")]).await), ["Doe", "Roe"]);
        // fields, paging, counts.
        let r = t.search(&tok, &[("word", "zylker"), ("fields", "Email"), ("per_page", "1"), ("page", "2")]).await;
        assert_eq!(r.body["data"], json!([{"id": ids[0], "Email": "john@zylker.com"}]));
        assert_eq!(r.body["info"], json!({"per_page": 1, "count": 1, "page": 2, "more_records": false}));
        let r = t.search(&tok, &[("word", "zylker"), ("per_page", "1")]).await;
        assert_eq!((&r.body["info"]["more_records"], &r.body["data"][0]["Last_Name"]), (&json!(true), &json!("Roe")));
        let r = t
            .get(&format!("/crm/v7/Leads/actions/count?{}", q(&[("criteria", "(Company:starts_with:Zylker)")])), &tok)
            .await;
        assert_eq!(r.body, json!({"count": 2}));
        // No match, errors.
        let r = crit("(Last_Name:equals:Nobody)").await;
        assert_eq!((r.status, r.text.as_str()), (204, ""));
        let invalid = json!({"code": "INVALID_QUERY", "details": {"reason": "invalid criteria"}, "message": "invalid query formed", "status": "error"});
        for bad in ["(Last_Name:like:x)", "(Last_Name:equals:x", "(Company:equals:Zylker (East))"] {
            let r = crit(bad).await;
            assert_eq!((r.status, &r.body), (400, &invalid), "{bad}");
        }
        let eleven: Vec<String> = (0..11).map(|i| format!("(Last_Name:equals:x{i})")).collect();
        let r = crit(&format!("({})", eleven.join("or"))).await;
        assert_eq!((r.status, &r.body["code"]), (400, &json!("LIMIT_EXCEEDED")));
        let ten = &eleven[..10].join("or");
        assert_eq!(crit(&format!("({ten})")).await.status, 204);
        let r = t.get("/crm/v7/Leads/search", &tok).await;
        assert_eq!((r.status, &r.body["code"]), (400, &json!("REQUIRED_PARAM_MISSING")));
    }

    #[tokio::test]
    async fn faults_rate_limit_errors_and_latency() {
        let t = start().await;
        let us = t.token("c_us", ALL).await;
        let india = t.token("c_in", ALL).await;
        t.faults.set(Knobs { rate_limit_per_minute: Some(2), ..Default::default() });
        for _ in 0..2 {
            assert_eq!(t.get("/crm/v7/Leads/actions/count", &us).await.status, 200);
        }
        let r = t.get("/crm/v7/Leads/actions/count", &us).await;
        assert_eq!(r.status, 429);
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        assert_eq!(
            r.body,
            json!({"code": "TOO_MANY_REQUESTS", "message": "Rate limit exceeded. Please retry after the specified time.", "status": "error", "details": {"retry_after": retry}})
        );
        assert_eq!(t.get("/crm/v7/Leads/actions/count", &india).await.status, 200, "limits are per organisation");

        t.faults.set(Knobs { failure_rate: 1.0, ..Default::default() });
        let r = t.get("/crm/v7/Leads/actions/count", &us).await;
        assert_eq!(
            (r.status, r.body),
            (
                500,
                json!({"code": "INTERNAL_ERROR", "message": "Internal Server Error", "status": "error", "details": {}})
            )
        );

        t.faults.set(Knobs { latency_ms: 150, ..Default::default() });
        let started = Instant::now();
        assert_eq!(t.get("/crm/v7/Leads/actions/count", &us).await.status, 200);
        assert!(started.elapsed() >= Duration::from_millis(150));
        t.faults.set(Knobs::default());
        let started = Instant::now();
        assert_eq!(t.get("/crm/v7/Leads/actions/count", &us).await.status, 200);
        assert!(started.elapsed() < Duration::from_millis(150));
    }

    #[test]
    fn router_replaces_the_placeholder_resources() {
        let provider = Provider::new(ProviderConfig::zoho(""));
        let crm = Crm::open(None).unwrap();
        let _ = provider
            .oauth_router()
            .merge(provider.control_router())
            .merge(crm.router(provider.clone(), Faults::default()));
        let clash =
            std::panic::catch_unwind(|| provider.router().merge(crm.router(provider.clone(), Faults::default())));
        assert!(clash.is_err(), "merging with the placeholder /crm routes must fail loudly, not shadow them");
    }

    #[tokio::test]
    async fn persists_to_a_file_and_keeps_ids_increasing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crm.db");
        let last = {
            let crm = Crm::open(Some(&path)).unwrap();
            crm.seed("us", 5, 0, 0).unwrap();
            let db = crm.db();
            db.conn.query_row("SELECT MAX(id) FROM records", [], |r| r.get::<_, String>(0)).unwrap()
        };
        let crm = Crm::open(Some(&path)).unwrap();
        assert_eq!(crm.count("us", "Leads"), 5);
        crm.seed("us", 1, 0, 0).unwrap();
        let db = crm.db();
        let max: String = db.conn.query_row("SELECT MAX(id) FROM records", [], |r| r.get(0)).unwrap();
        assert!(max > last);
    }

    /// Throughput of `GET /crm/v7/Leads/{id}`; run with
    /// `cargo test --release --lib zoho_crm::tests::get_by_id_throughput -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore]
    async fn get_by_id_throughput() {
        let t = start().await;
        t.crm.seed("us", 2000, 0, 0).unwrap();
        let tok = t.token("c_us", ALL).await;
        let mut ids: Vec<String> = Vec::new();
        for page in 1..=10 {
            ids.extend(ids_of(&t.get(&format!("/crm/v7/Leads?fields=Email&page={page}"), &tok).await.body));
        }
        let ids = Arc::new(ids);
        let total = 20_000;
        let workers = 32;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (http, base, tok, ids) = (t.http.clone(), t.base.clone(), tok.clone(), ids.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..total / workers {
                    let id = &ids[(w * 997 + i * 31) % ids.len()];
                    let r = http
                        .get(format!("{base}/crm/v7/Leads/{id}"))
                        .header("authorization", format!("Zoho-oauthtoken {tok}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 200);
                    r.bytes().await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let rate = total as f64 / started.elapsed().as_secs_f64();
        println!("GET /crm/v7/Leads/{{id}}: {rate:.0} requests/s (client and server on the same 2 worker threads)");
        if !cfg!(debug_assertions) {
            assert!(rate >= 5000.0, "{rate:.0} requests/s");
        }
    }
}
