//! The Zoho CRM REST API emulator (`/crm/v7/...` and `/crm/v8/...`, which behave alike), as
//! `docs/api-facts.md` §2 describes it: record insert, update, upsert, delete, get, list with discrete
//! paging up to 2,000 records and `page_token` past them, `If-Modified-Since`, search with
//! criteria, counts, COQL queries, deleted records, related lists and notes, the organisation, its
//! users and org variables, with Zoho's status codes and error bodies.
//!
//! Every request is authenticated by the sandbox's OAuth [`Provider`]: the token's organisation
//! selects the data (a token sees only its own organisation's records) and its scopes must cover
//! the module and operation (`ZohoCRM.modules.ALL`, `ZohoCRM.modules.leads.READ`, ...). The CRM's
//! own limits then apply (per-organisation concurrency and 24-hour credits, knobs off by default;
//! see `limits`), and the shared [`Faults`] add latency, 429s or 500s (`Internal Server Error`,
//! or the `failure_status` asked for); every 429 is Zoho's OpenAPI sample body with
//! `Retry-After` (body and header UNCONFIRMED, see `limits`); a failure of the storage
//! itself is also a 500 `INTERNAL_ERROR`, whose message says that the sandbox's storage failed and
//! why.
//!
//! Records live in one SQLite table, `records(org, module, id, created, modified, data)`, `data`
//! being the record's JSON; what the delete endpoints removed is listed in
//! `deleted_records(org, module, id, deleted, data)` for `GET /{module}/deleted`. Ids are 19-digit numeric strings that increase with creation: a
//! 7-digit prefix per organisation, then a 12-digit sequence. Date-times are written in the
//! organisation's UTC offset (`us`: `-07:00`, `in`: `+05:30`, others `+00:00`; see
//! [`CrmConfig::utc_offsets`]).
//!
//! The emulator is split along its concerns:
//!
//! | module           | holds |
//! |------------------|-------|
//! | `model`          | organisations (id prefixes, time zones, users), modules, scopes and field rules |
//! | `storage`        | the `records` table: rows in and out, duplicate checks, sorted listing |
//! | `routes`         | HTTP plumbing: the `/crm/v7`, `/crm/v8` dispatch, Zoho's error bodies, parameters |
//! | `limits`         | the CRM's own limits (concurrency, 24-hour credits) and its 429 |
//! | `handlers`       | the operations: insert, update, upsert, delete, get, list, search, count |
//! | `page_token`     | `page_token` paging past the discrete limit |
//! | `criteria`       | search: the `criteria` parser and the `email`/`phone`/`word` filters |
//! | `coql`           | `POST /coql`: the COQL `SELECT` parser, its evaluation and the handler |
//! | `related`        | related lists (`/{module}/{id}/Notes`, `/Accounts/{id}/Contacts`, ...), notes' parents, deleted records |
//! | `org`            | the organisation (`/org`), its users (`/users`) and org variables (`/settings/variables`) |
//! | `time`           | date-times in the organisation's UTC offset |
//! | `seed`           | the deterministic seed data |

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

use super::faults::{Fault, Faults, with_status};
use super::oauth_provider::Provider;
use super::storage::{StorageError, open_db, storage_failed};

mod coql;
mod criteria;
mod handlers;
mod limits;
mod model;
mod org;
mod page_token;
mod related;
mod routes;
mod seed;
mod storage;
#[cfg(test)]
mod tests;
mod time;

use self::criteria::*;
use self::limits::*;
use self::model::*;
use self::page_token::*;
use self::related::*;
use self::routes::*;
use self::seed::*;
use self::storage::*;
use self::time::*;

/// The columns of the `records` table.
const RECORD_COLUMNS: [&str; 6] = ["org", "module", "id", "created", "modified", "data"];
/// The columns of the `deleted_records` table (what `GET /{module}/deleted` lists).
const DELETED_COLUMNS: [&str; 5] = ["org", "module", "id", "deleted", "data"];
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS records (
        org TEXT NOT NULL, module TEXT NOT NULL, id TEXT NOT NULL,
        created INTEGER NOT NULL, modified INTEGER NOT NULL, data TEXT NOT NULL);
    CREATE UNIQUE INDEX IF NOT EXISTS records_id ON records (org, module, id);
    CREATE INDEX IF NOT EXISTS records_modified ON records (org, module, modified);
    CREATE INDEX IF NOT EXISTS records_created ON records (org, module, created);
    CREATE INDEX IF NOT EXISTS records_email ON records (org, module, lower(json_extract(data, '$.Email')));
    CREATE TABLE IF NOT EXISTS deleted_records (
        org TEXT NOT NULL, module TEXT NOT NULL, id TEXT NOT NULL, deleted INTEGER NOT NULL, data TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS deleted_records_module ON deleted_records (org, module, deleted);";

/// The modules the emulator knows, by API name (`Notes` hangs off the others: `Parent_Id` and
/// `$se_module` name the record a note is on).
pub const MODULES: [&str; 16] = [
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
    "Notes",
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
    /// The concurrency and credit limiters' state.
    limits: Mutex<Limits>,
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
        let conn =
            open_db(path, "Zoho CRM", &[("records", &RECORD_COLUMNS), ("deleted_records", &DELETED_COLUMNS)], SCHEMA)?;
        let max: Option<i64> =
            conn.query_row("SELECT MAX(CAST(substr(id, 8) AS INTEGER)) FROM records", [], |r| r.get(0))?;
        let next_seq = max.map_or(FIRST_SEQ, |m| (m.max(0) as u64 + 1).max(FIRST_SEQ));
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Crm {
            inner: Arc::new(Inner {
                db: Mutex::new(Db { conn, next_seq }),
                cfg,
                limits: Mutex::new(Limits::default()),
            }),
        })
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

    /// Every record of `module` in `org`, oldest first (none when the module is unknown).
    pub fn records(&self, org: &str, module: &str) -> Vec<Value> {
        let Some(module) = canonical_module(module) else { return Vec::new() };
        let db = self.db();
        let Ok(mut st) =
            db.conn.prepare_cached("SELECT data FROM records WHERE org = ?1 AND module = ?2 ORDER BY created, id")
        else {
            return Vec::new();
        };
        let rows = st.query_map(params![org, module], |r| r.get::<_, String>(0));
        rows.map(|rows| rows.filter_map(|d| d.ok().and_then(|d| serde_json::from_str(&d).ok())).collect())
            .unwrap_or_default()
    }

    /// The record `id` of `module`, in whichever organisation holds it: (org, record).
    pub fn find_by_id(&self, module: &str, id: &str) -> Option<(String, Value)> {
        let module = canonical_module(module)?;
        let db = self.db();
        db.conn
            .query_row("SELECT org, data FROM records WHERE module = ?1 AND id = ?2", params![module, id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .ok()
            .and_then(|(org, d)| Some((org, serde_json::from_str(&d).ok()?)))
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
