//! An in-memory Zoho Desk (`/api/v1/...`) as `docs/api-facts.md` §3 describes it: create, list and
//! read tickets, discover the organisation and its department, with Desk's own error bodies
//! `{"errorCode":"…","message":"…"}`. Tokens come from the sandbox's Zoho Accounts
//! ([`Provider`]); each token's client belongs to an organisation, and Desk data is kept apart
//! per organisation.
//!
//! Routes (every one but `/organizations` needs the `orgId` header, or an `orgId` query parameter):
//!
//! | route | scope (any of) | answer |
//! |-------|----------------|--------|
//! | `GET /api/v1/organizations` | any `Desk.*` | 200 `{"data":[{"id","companyName","portalName",…}]}` |
//! | `GET /api/v1/departments` | any `Desk.*` | 200 `{"data":[{"id","name","isDefault",…}]}` |
//! | `POST /api/v1/tickets` | `Desk.tickets.CREATE`, `.WRITE`, `.ALL` | 200 and the ticket |
//! | `GET /api/v1/tickets?from=&limit=&sortBy=` | `Desk.tickets.READ`, `.ALL` | 200 `{"data":[…]}`; 204 if empty |
//! | `GET /api/v1/tickets/{id}` | `Desk.tickets.READ`, `.ALL` | 200 and the ticket |
//! | `PATCH /api/v1/tickets/{id}` | `Desk.tickets.UPDATE`, `.WRITE`, `.ALL` | 200 and the updated ticket |
//! | `GET /api/v1/tickets/search?subject=&email=&ticketNumber=&status=&departmentId=&assigneeId=&contactId=&from=&limit=` | `Desk.search.READ`, `Desk.tickets.READ`, `.ALL` | 200 `{"data":[…],"count":N}`; 204 if none |
//! | `GET /api/v1/contacts/search?email=&phone=&firstName=&lastName=&fullName=&searchStr=&from=&limit=` | `Desk.search.READ`, `Desk.contacts.READ`, `.ALL` | 200 `{"data":[…],"count":N}`; 204 if none |
//! | `GET /api/v1/agents`, `GET /api/v1/agents/{id}` | any `Desk.*` | 200 `{"data":[{"id","name","emailId","status",…}]}` / the agent |
//!
//! `/organizations` lists only the token's organisation; `/departments` its one department. A
//! ticket's contact is `contactId` (then `contact` is ignored), else the organisation's contact
//! with the `contact.email` (compared without case), else a new contact from `contact` (a last
//! name or an email is required; with an email only, the part before `@` is the last name). The
//! ticket's `email` and `phone` default to the contact's.
//!
//! The checks run in this order: the token (401 `UNAUTHORIZED` with no `Zoho-oauthtoken`
//! header, 401 `INVALID_OAUTH` for an unknown, expired or revoked one, the bodies captured from
//! the real service), the fault knobs (429 `TOO_MANY_REQUESTS` with `Retry-After`, 500
//! `INTERNAL_SERVER_ERROR`), the scope (401 `SCOPE_MISMATCH`), the `orgId` (422
//! `UNPROCESSABLE_ENTITY` when it is missing or names no organisation, 401 `OAUTH_ORG_MISMATCH`
//! when it names another organisation than the token's), then the request itself (422
//! `{"errorCode":"INVALID_DATA","message":"The data is invalid due to validation restrictions",…}`
//! as captured, with an `errors` array of
//! `{"fieldName":"/json/pointer","errorType":"missing|invalid","errorMessage":…}`, every bad field
//! listed; `errorMessage` is `""` for a missing field and for an unknown department or agent;
//! nothing here can be a `duplicate`). Unknown paths under `/api/v1` answer 404 `URL_NOT_FOUND`, other methods
//! on known paths 405 `METHOD_NOT_ALLOWED`, without looking at the token.
//!
//! Where `docs/api-facts.md` is silent, these are our choices: the statuses of `SCOPE_MISMATCH` and
//! `OAUTH_ORG_MISMATCH` (401), every message but the three captured ones, the 429/500 bodies, a
//! ticket that does not exist in the caller's organisation (404 `URL_NOT_FOUND`) or an id that is
//! not a number (422, like a bad `orgId`), a body that is not a JSON object (422 without `errors`;
//! 415 `UNSUPPORTED_MEDIA_TYPE` when it was sent as a form), the default `channel` (`Web`), the
//! default page (`from=0`, `limit=10`, at most 100, ascending creation order) and the 204 for an
//! empty page (Desk documents 204 No Content). Unknown body fields and list filters are ignored;
//! `priority` and `channel` are taken as given; `departmentId` and `assigneeId` must name the
//! organisation's department and one of its agents (two per organisation, deterministic, see
//! `agents`), else 422 `INVALID_DATA` naming `/departmentId` or `/assigneeId` with an empty
//! `errorMessage`, as captured from the real service. An organisation the sandbox was not
//! told about gets an `orgId` and a department on its first authenticated request.
//!
//! The data lives in SQLite ([`Desk::open`]: a file, shared with the other products' tables, or
//! in memory), in the tables `desk_orgs`, `desk_contacts`, `desk_tickets` and `desk_counters`;
//! it is loaded when the file is opened and every change is written through.
//!
//! The emulator is split along its concerns:
//!
//! | module    | holds |
//! |-----------|-------|
//! | `errors`  | Desk's error bodies and field errors |
//! | `gate`    | the request gate: token, faults, scope, `orgId` |
//! | `routes`  | the handlers: organizations, departments, tickets (create, list, get) |
//! | `tickets` | ticket creation: field checks, contacts found or created, ticket numbers, times |

use std::collections::BTreeMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value, json};

use super::faults::{Fault, Faults, with_status};
use super::oauth_provider::Provider;
use super::storage::{StorageError, open_db, storage_failed};

mod agents;
mod errors;
mod gate;
mod routes;
mod search;
#[cfg(test)]
mod tests;
mod tickets;

use self::agents::*;
use self::errors::*;
use self::gate::*;
use self::routes::*;
use self::search::*;
use self::tickets::*;
pub(crate) use self::tickets::{now_time, valid_email};

/// The first ticket number of every organisation.
const FIRST_TICKET_NUMBER: u64 = 101;
/// Ticket and contact ids count up from here (Desk ids are long numeric strings).
const FIRST_RECORD_ID: u64 = 1_892_000_000_042_001;
/// `orgId`s given to organisations the sandbox was not told about.
const FIRST_AUTO_ORG_ID: u64 = 700_000_001;
/// Their department ids.
const FIRST_AUTO_DEPARTMENT_ID: u64 = 1_892_000_000_006_907;
/// `limit` when a list request gives none, and the most it may ask for.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 100;
/// The longest subject Desk takes.
const MAX_SUBJECT_CHARS: usize = 255;

const MSG_UNAUTHORIZED: &str = "You are not authenticated to perform this operation.";
const MSG_INVALID_OAUTH: &str = "The OAuth Token you provided is invalid.";
const MSG_SCOPE_MISMATCH: &str = "The OAuth Token does not have the scope required to perform this operation.";
const MSG_ORG_MISMATCH: &str = "The OAuth Token was not generated for the organization given in 'orgId'.";
const MSG_ORG_MISSING: &str = "The 'orgId' parameter is missing; send the organization's id in the 'orgId' header.";
const MSG_URL_NOT_FOUND: &str = "The URL you requested could not be found.";
const MSG_METHOD_NOT_ALLOWED: &str = "The HTTP method used is not supported for this URL.";
const MSG_TOO_MANY: &str = "You have made too many requests. Please try again after some time.";
const MSG_INTERNAL: &str = "An internal server error occurred while processing this request.";
/// The message of a field validation failure, captured from the real service (`docs/api-facts.md` §3).
const MSG_FIELDS: &str = "The data is invalid due to validation restrictions";
const MSG_NOT_JSON: &str = "The request body must be a JSON object.";
const MSG_MEDIA_TYPE: &str = "The media type of the request body is not supported; send JSON.";

/// The emulated Zoho Desk. Cloning it shares the same data.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<Mutex<DeskState>>,
}

impl Default for Desk {
    fn default() -> Desk {
        Desk::new()
    }
}

struct DeskState {
    /// By organisation name (the OAuth client's `org`).
    orgs: BTreeMap<String, OrgData>,
    next_record_id: u64,
    next_auto_org: u64,
    /// Where every change is written through.
    conn: Connection,
}

const DESK_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS desk_orgs (
        org TEXT PRIMARY KEY, org_id TEXT NOT NULL, department_id TEXT NOT NULL,
        next_ticket_number INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS desk_contacts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, data TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS desk_tickets (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS desk_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

/// The tables and the columns the Desk reads.
const DESK_TABLES: [(&str, &[&str]); 4] = [
    ("desk_orgs", &["org", "org_id", "department_id", "next_ticket_number"]),
    ("desk_contacts", &["seq", "org", "data"]),
    ("desk_tickets", &["seq", "org", "id", "data"]),
    ("desk_counters", &["name", "value"]),
];

struct OrgData {
    org_id: String,
    department_id: String,
    tickets: Vec<Map<String, Value>>,
    contacts: Vec<Contact>,
    next_ticket_number: u64,
}

struct Contact {
    id: String,
    first_name: Option<String>,
    last_name: String,
    email: Option<String>,
    phone: Option<String>,
    mobile: Option<String>,
    created: String,
}

impl Contact {
    fn from_json(v: &Value) -> Option<Contact> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        Some(Contact {
            id: s("id")?,
            first_name: s("firstName"),
            last_name: s("lastName").unwrap_or_default(),
            email: s("email"),
            phone: s("phone"),
            mobile: s("mobile"),
            created: s("createdTime").unwrap_or_default(),
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            "phone": self.phone,
            "mobile": self.mobile,
            "createdTime": self.created,
            "modifiedTime": self.created,
        })
    }
}

impl Desk {
    /// A Desk with no organisations yet (see [`Desk::add_org`]; unknown organisations are added
    /// on their first authenticated request).
    pub fn new() -> Desk {
        Desk::open(None).expect("an in-memory SQLite database opens")
    }

    /// Opens (creating its tables if needed) the Desk data in the SQLite file at `path`, which
    /// may be shared with the other products, or in memory for `None`.
    pub fn open(path: Option<&FsPath>) -> Result<Desk, StorageError> {
        let conn = open_db(path, "Zoho Desk", &DESK_TABLES, DESK_SCHEMA)?;
        let mut orgs = BTreeMap::new();
        {
            let mut q = conn.prepare("SELECT org, org_id, department_id, next_ticket_number FROM desk_orgs")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, i64>(3)?)))?;
            for row in rows {
                let (org, org_id, department_id, next) = row?;
                let mut o = OrgData::new(org_id, department_id);
                o.next_ticket_number = next.max(0) as u64;
                orgs.insert(org, o);
            }
            let mut q = conn.prepare("SELECT org, data FROM desk_contacts ORDER BY seq")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (org, data) = row?;
                let contact = serde_json::from_str::<Value>(&data).ok().and_then(|v| Contact::from_json(&v));
                if let (Some(o), Some(c)) = (orgs.get_mut(&org), contact) {
                    o.contacts.push(c);
                }
            }
            let mut q = conn.prepare("SELECT org, data FROM desk_tickets ORDER BY seq")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (org, data) = row?;
                if let (Some(o), Ok(Value::Object(t))) = (orgs.get_mut(&org), serde_json::from_str::<Value>(&data)) {
                    o.tickets.push(t);
                }
            }
        }
        let counter = |name: &str| -> rusqlite::Result<u64> {
            let v: Option<i64> =
                conn.query_row("SELECT value FROM desk_counters WHERE name = ?1", [name], |r| r.get(0)).optional()?;
            Ok(v.unwrap_or(0).max(0) as u64)
        };
        let next_record_id = counter("next_record_id")?;
        let next_auto_org = counter("next_auto_org")?;
        let st = DeskState { orgs, next_record_id, next_auto_org, conn };
        Ok(Desk { inner: Arc::new(Mutex::new(st)) })
    }

    /// Adds organisation `org` (an OAuth client's `org`) with its numeric `orgId` and the id of
    /// its one department. Adding an organisation again (also after a restart on the same data
    /// file) replaces its ids and keeps its data.
    pub fn add_org(&self, org: &str, org_id: &str, department_id: &str) {
        let mut st = self.lock();
        match st.orgs.get_mut(org) {
            Some(o) => {
                o.org_id = org_id.to_string();
                o.department_id = department_id.to_string();
            }
            None => {
                st.orgs.insert(org.to_string(), OrgData::new(org_id.to_string(), department_id.to_string()));
            }
        }
        if let Err(e) = st.save_org(org) {
            eprintln!("linkrun sandbox: cannot store Desk organisation {org}: {e}");
        }
    }

    /// The `orgId` of `org`, if it is known.
    pub fn org_id(&self, org: &str) -> Option<String> {
        self.lock().orgs.get(org).map(|o| o.org_id.clone())
    }

    /// The id of the department of `org`, if it is known.
    pub fn department_id(&self, org: &str) -> Option<String> {
        self.lock().orgs.get(org).map(|o| o.department_id.clone())
    }

    /// Every ticket of `org`, oldest first, as the API shows them.
    pub fn tickets(&self, org: &str) -> Vec<Value> {
        self.lock()
            .orgs
            .get(org)
            .map(|o| o.tickets.iter().map(|t| Value::Object(t.clone())).collect())
            .unwrap_or_default()
    }

    /// Every contact of `org`, oldest first (`id`, `firstName`, `lastName`, `email`, `phone`,
    /// `mobile`, `createdTime`, `modifiedTime`).
    pub fn contacts(&self, org: &str) -> Vec<Value> {
        self.lock().orgs.get(org).map(|o| o.contacts.iter().map(Contact::to_json).collect()).unwrap_or_default()
    }

    /// The API routes under `/api/v1/` (see the module documentation), checking tokens with
    /// `provider` and answering faults from `faults`.
    pub fn router(&self, provider: Provider, faults: Faults) -> Router {
        let api = Api { desk: self.clone(), provider, faults };
        Router::new()
            .route("/api/v1/organizations", get(organizations).fallback(method_not_allowed))
            .route("/api/v1/departments", get(departments).fallback(method_not_allowed))
            .route("/api/v1/tickets", get(list_tickets).post(create_ticket).fallback(method_not_allowed))
            .route("/api/v1/agents", get(list_agents).fallback(method_not_allowed))
            .route("/api/v1/agents/{id}", get(get_agent).fallback(method_not_allowed))
            .route("/api/v1/tickets/search", get(search_tickets).fallback(method_not_allowed))
            .route("/api/v1/contacts/search", get(search_contacts).fallback(method_not_allowed))
            .route("/api/v1/tickets/{id}", get(get_ticket).patch(update_ticket).fallback(method_not_allowed))
            .route("/api/v1", any(url_not_found))
            .route("/api/v1/{*rest}", any(url_not_found))
            .with_state(api)
    }

    fn lock(&self) -> MutexGuard<'_, DeskState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes sure `org` exists, giving it fresh ids if needed.
    fn ensure_org(&self, org: &str) {
        let mut st = self.lock();
        if st.orgs.contains_key(org) {
            return;
        }
        let (org_id, department_id) = loop {
            let n = st.next_auto_org;
            st.next_auto_org += 1;
            let org_id = (FIRST_AUTO_ORG_ID + n).to_string();
            let department_id = (FIRST_AUTO_DEPARTMENT_ID + n).to_string();
            if !st.orgs.values().any(|o| o.org_id == org_id || o.department_id == department_id) {
                break (org_id, department_id);
            }
        };
        st.orgs.insert(org.to_string(), OrgData::new(org_id, department_id));
        if let Err(e) = st.save_org(org).and_then(|()| st.save_counters()) {
            eprintln!("linkrun sandbox: cannot store Desk organisation {org}: {e}");
        }
    }
}

impl OrgData {
    fn new(org_id: String, department_id: String) -> OrgData {
        OrgData {
            org_id,
            department_id,
            tickets: Vec::new(),
            contacts: Vec::new(),
            next_ticket_number: FIRST_TICKET_NUMBER,
        }
    }
}

impl DeskState {
    /// Writes ticket `id` of `org` as it is now.
    fn save_ticket(&self, org: &str, id: &str) -> rusqlite::Result<()> {
        let Some(t) = self.orgs.get(org).and_then(|o| o.tickets.iter().find(|t| t["id"] == id)) else { return Ok(()) };
        self.conn.execute(
            "UPDATE desk_tickets SET data = ?3 WHERE org = ?1 AND id = ?2",
            params![org, id, Value::Object(t.clone()).to_string()],
        )?;
        Ok(())
    }

    /// Writes organisation `org`'s ids and ticket counter.
    fn save_org(&self, org: &str) -> rusqlite::Result<()> {
        save_org(&self.conn, org, self.orgs.get(org))
    }

    fn save_counters(&self) -> rusqlite::Result<()> {
        save_counters(&self.conn, self.next_record_id, self.next_auto_org)
    }

    /// Writes what [`insert_ticket`] added to `org`: the contacts after the first
    /// `contacts_before`, the newest ticket, the organisation's ticket counter and the id counter.
    fn save_new_ticket(&mut self, org: &str, contacts_before: usize) -> rusqlite::Result<()> {
        let Some(o) = self.orgs.get(org) else { return Ok(()) };
        let tx = self.conn.transaction()?;
        for c in o.contacts.iter().skip(contacts_before) {
            tx.execute("INSERT INTO desk_contacts (org, data) VALUES (?1, ?2)", params![org, c.to_json().to_string()])?;
        }
        if let Some(t) = o.tickets.last() {
            let id = t.get("id").and_then(Value::as_str).unwrap_or("");
            tx.execute(
                "INSERT INTO desk_tickets (org, id, data) VALUES (?1, ?2, ?3)",
                params![org, id, Value::Object(t.clone()).to_string()],
            )?;
        }
        save_org(&tx, org, Some(o))?;
        save_counters(&tx, self.next_record_id, self.next_auto_org)?;
        tx.commit()
    }

    fn new_record_id(&mut self) -> String {
        let id = FIRST_RECORD_ID + self.next_record_id;
        self.next_record_id += 1;
        id.to_string()
    }
}

/// Writes organisation `org`'s ids and ticket counter.
fn save_org(conn: &Connection, org: &str, o: Option<&OrgData>) -> rusqlite::Result<()> {
    let Some(o) = o else { return Ok(()) };
    conn.execute(
        "INSERT INTO desk_orgs (org, org_id, department_id, next_ticket_number) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (org) DO UPDATE SET org_id = excluded.org_id, department_id = excluded.department_id,
                 next_ticket_number = excluded.next_ticket_number",
        params![org, o.org_id, o.department_id, o.next_ticket_number as i64],
    )?;
    Ok(())
}

fn save_counters(conn: &Connection, next_record_id: u64, next_auto_org: u64) -> rusqlite::Result<()> {
    for (name, value) in [("next_record_id", next_record_id), ("next_auto_org", next_auto_org)] {
        conn.execute(
            "INSERT INTO desk_counters (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            params![name, value as i64],
        )?;
    }
    Ok(())
}
