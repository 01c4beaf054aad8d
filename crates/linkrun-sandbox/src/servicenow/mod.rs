//! The ServiceNow Table API emulator (`/api/now/table/...`, `/api/now/v1/table/...` and
//! `/api/now/v2/table/...`), as `docs/api-facts.md` §5 describes it: list with encoded queries
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
//! Those are table-level ACLs ("Failed API level ACL Validation"). [`ServiceNow::hide_rows`] adds
//! a row-level read ACL on a table, as a real instance has them: a caller who passes the table
//! check but has neither the ACL's role nor `admin` sees none of its rows. A list then answers
//! 200 `{"result": []}` (`X-Total-Count: 0`; a `/v1/` list 404, as for no match), and a get,
//! update or delete of one record 404 "No Record found" ("... or ACL restricts the record
//! retrieval"). Inserting is not a read and is not affected.
//!
//! Records live in one SQLite table, `sn_records(tbl, sys_id, updated, data)`, `data` being the
//! record's JSON object with every value a string and references stored as plain sys_ids; they
//! are written as `{"link": …, "value": …}` on the way out. Record numbers (`CS0001001`,
//! `PO0001001`, ...) come from a `sn_sequences(prefix, next)` table. (The `sn_` prefix keeps them
//! apart from the CRM's `records` in a shared `--data` file; see [`super::storage`].)
//!
//! Rate limits: the per-hour rule of the `servicenow.rate_limit_per_hour` knob (see `rate_limit`:
//! `X-RateLimit-*` headers on every answer while it is on, 429 with `Retry-After` past it), and
//! the shared `rate_limit_per_minute` knob, kept for compatibility (same 429 body and headers).
//!
//! The fault knob's 500 says "The sandbox simulated a server failure"; a failure of the storage
//! itself is a 500 whose detail says that the sandbox's storage failed and why.
//!
//! The emulator is split along its concerns:
//!
//! | module       | holds |
//! |--------------|-------|
//! | `tables`     | the emulated tables: fields, references, choices, number prefixes |
//! | `storage`    | the `sn_records` and `sn_sequences` tables: rows in and out, reference lookups |
//! | `query`      | encoded queries (`sysparm_query`): parsing and matching |
//! | `view`       | the `sysparm_*` parameters and the rendering of records (display values, fields) |
//! | `responses`  | ServiceNow's error envelope and status codes |
//! | `routes`     | the route dispatch and the list, get, insert, update and delete handlers |
//! | `rate_limit` | the per-hour rate-limit rule (`servicenow.rate_limit_per_hour`) and its headers |
//! | `time`       | the clock and ServiceNow's `YYYY-MM-DD HH:MM:SS` date-times |
//! | `seed`       | the deterministic seed records |

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

use super::faults::{Fault, Faults, with_status};
use super::oauth_provider::Provider;
use super::storage::{StorageError, open_db, storage_failed};

mod query;
mod rate_limit;
mod responses;
mod routes;
mod seed;
mod storage;
mod tables;
#[cfg(test)]
mod tests;
mod time;
mod view;

use self::query::*;
use self::rate_limit::*;
use self::responses::*;
use self::routes::*;
use self::seed::*;
use self::storage::*;
pub use self::tables::TABLE_NAMES;
use self::tables::*;
use self::time::*;
use self::view::*;

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
    db: Mutex<Db>,
    users: Mutex<Vec<User>>,
    /// Row-level read ACLs: (table, the role that sees its rows).
    row_acls: Mutex<Vec<(String, String)>>,
    base_url: Mutex<String>,
    /// The per-hour rate-limit rule's windows.
    hourly: Mutex<Hourly>,
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
                db: Mutex::new(Db::new(conn)),
                users: Mutex::new(Vec::new()),
                row_acls: Mutex::new(Vec::new()),
                base_url: Mutex::new(String::new()),
                hourly: Mutex::new(Hourly::default()),
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

    /// Adds `n` more contacts for volume tests (see `seed::bulk_contacts`), numbered from
    /// `from` (so two calls with different `from` add different contacts), in one transaction.
    pub fn seed_contacts(&self, from: usize, n: usize) -> rusqlite::Result<()> {
        let mut conn = self.db();
        let tx = conn.transaction()?;
        for (rec, updated) in bulk_contacts(now_ms(), from, n) {
            let id = str_of(&rec, "sys_id");
            insert_row(&tx, "customer_contact", &id, updated, &rec)?;
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

    /// Adds a row-level read ACL on `table`: only callers with `role` (or `admin`, or a
    /// client-credentials token) see its rows; others read it as empty (see the module
    /// documentation). Several ACLs on one table each let their role through.
    pub fn hide_rows(&self, table: &str, role: &str) {
        let mut acls = self.inner.row_acls.lock().unwrap_or_else(|e| e.into_inner());
        acls.push((table.to_string(), role.to_string()));
    }

    /// Whether `caller` sees the rows of `table` (no row-level ACL on it, or one lets it through).
    fn sees_rows(&self, caller: &Caller, table: &str) -> bool {
        let acls = self.inner.row_acls.lock().unwrap_or_else(|e| e.into_inner());
        let mut on_table = acls.iter().filter(|(t, _)| t == table).peekable();
        on_table.peek().is_none()
            || caller.all
            || caller.roles.iter().any(|r| r == "admin")
            || on_table.any(|(_, role)| caller.roles.contains(role))
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
        conn.table(table).map(|t| t.rows.iter().cloned().map(Value::Object).collect()).unwrap_or_default()
    }

    /// The number of records in `table`.
    pub fn count(&self, table: &str) -> usize {
        let conn = self.db();
        conn.query_row("SELECT COUNT(*) FROM sn_records WHERE tbl = ?1", [table], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as usize)
            .unwrap_or(0)
    }

    fn db(&self) -> MutexGuard<'_, Db> {
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
