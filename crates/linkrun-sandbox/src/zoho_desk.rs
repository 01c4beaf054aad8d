//! An in-memory Zoho Desk (`/api/v1/...`) as `api-facts.md` §3 describes it: create, list and
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
//! when it names another organisation than the token's), then the request itself (422 with an
//! `errors` array of `{"fieldName":"/json/pointer","errorType":"missing|invalid","errorMessage":…}`,
//! every bad field listed; `errorMessage` is `""` for a missing field; nothing here can be a
//! `duplicate`). Unknown paths under `/api/v1` answer 404 `URL_NOT_FOUND`, other methods
//! on known paths 405 `METHOD_NOT_ALLOWED`, without looking at the token.
//!
//! Where `api-facts.md` is silent, these are our choices: the statuses of `SCOPE_MISMATCH` and
//! `OAUTH_ORG_MISMATCH` (401), every message but the three captured ones, the 429/500 bodies, a
//! ticket that does not exist in the caller's organisation (404 `URL_NOT_FOUND`) or an id that is
//! not a number (422, like a bad `orgId`), a body that is not a JSON object (422 without `errors`;
//! 415 `UNSUPPORTED_MEDIA_TYPE` when it was sent as a form), the default `channel` (`Web`), the
//! default page (`from=0`, `limit=10`, at most 100, ascending creation order) and the 204 for an
//! empty page (Desk documents 204 No Content). Unknown body fields and list filters are ignored;
//! `priority`, `channel`, `assigneeId` are taken as given. An organisation the sandbox was not
//! told about gets an `orgId` and a department on its first authenticated request.
//!
//! The data lives in SQLite ([`Desk::open`]: a file, shared with the other products' tables, or
//! in memory), in the tables `desk_orgs`, `desk_contacts`, `desk_tickets` and `desk_counters`;
//! it is loaded when the file is opened and every change is written through.

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

use super::faults::{Fault, Faults};
use super::oauth_provider::Provider;
use super::storage::{StorageError, open_db, storage_failed};

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
const MSG_FIELDS: &str = "Some fields of the input are missing or invalid; see 'errors'.";
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
            .route("/api/v1/tickets/{id}", get(get_ticket).fallback(method_not_allowed))
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

// ---------------------------------------------------------------------------------------------
// Errors

/// A field that failed validation, named by a JSON Pointer into the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldError {
    pointer: String,
    kind: &'static str,
    message: String,
}

impl FieldError {
    fn missing(pointer: &str) -> FieldError {
        FieldError { pointer: pointer.to_string(), kind: "missing", message: String::new() }
    }

    fn invalid(pointer: &str, message: &str) -> FieldError {
        FieldError { pointer: pointer.to_string(), kind: "invalid", message: message.to_string() }
    }
}

fn desk_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "errorCode": code, "message": message }))).into_response()
}

/// 422 for a bad query or header parameter, in the captured `orgId` wording.
fn bad_param(name: &str) -> Response {
    desk_error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "UNPROCESSABLE_ENTITY",
        &format!("The value passed for the '{name}' parameter is invalid."),
    )
}

fn field_errors(errors: Vec<FieldError>) -> Response {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|e| json!({ "fieldName": e.pointer, "errorType": e.kind, "errorMessage": e.message }))
        .collect();
    let body = json!({ "errorCode": "UNPROCESSABLE_ENTITY", "message": MSG_FIELDS, "errors": errors });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after } => {
            let mut r = desk_error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", MSG_TOO_MANY);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        Fault::ServerError => desk_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", MSG_INTERNAL),
    }
}

async fn url_not_found() -> Response {
    desk_error(StatusCode::NOT_FOUND, "URL_NOT_FOUND", MSG_URL_NOT_FOUND)
}

async fn method_not_allowed() -> Response {
    desk_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", MSG_METHOD_NOT_ALLOWED)
}

// ---------------------------------------------------------------------------------------------
// Request gate: token, faults, scope, orgId

#[derive(Clone)]
struct Api {
    desk: Desk,
    provider: Provider,
    faults: Faults,
}

/// What a request needs before it is served.
enum Scope {
    /// Any `Desk.*` scope (organisation and department discovery).
    AnyDesk,
    /// One of these operations on `Desk.tickets` (`ALL` always does).
    Tickets(&'static [&'static str]),
}

impl Scope {
    fn allows(&self, granted: &[String]) -> bool {
        granted.iter().any(|s| {
            let s = s.to_ascii_lowercase();
            match self {
                Scope::AnyDesk => s.starts_with("desk."),
                Scope::Tickets(ops) => s
                    .strip_prefix("desk.tickets.")
                    .is_some_and(|op| op == "all" || ops.iter().any(|o| o.eq_ignore_ascii_case(op))),
            }
        })
    }
}

/// Checks the token, the fault knobs, the scope and (with `need_org`) the `orgId`; gives the
/// caller's organisation name or the answer to send instead.
async fn gate(
    api: &Api,
    headers: &HeaderMap,
    query: Option<&str>,
    scope: Scope,
    need_org: bool,
) -> Result<String, Response> {
    let info = api.provider.authenticate(headers).map_err(|f| {
        if f.missing {
            desk_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", MSG_UNAUTHORIZED)
        } else {
            desk_error(StatusCode::UNAUTHORIZED, "INVALID_OAUTH", MSG_INVALID_OAUTH)
        }
    })?;
    api.desk.ensure_org(&info.org);
    if let Some(fault) = api.faults.before(&info.org).await {
        return Err(fault_response(fault));
    }
    if !scope.allows(&info.scopes) {
        return Err(desk_error(StatusCode::UNAUTHORIZED, "SCOPE_MISMATCH", MSG_SCOPE_MISMATCH));
    }
    if need_org {
        let given = headers
            .get("orgid")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
            .or_else(|| query_param(query, "orgId").map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty());
        let Some(given) = given else {
            return Err(desk_error(StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY", MSG_ORG_MISSING));
        };
        let st = api.desk.lock();
        let own = st.orgs.get(&info.org).is_some_and(|o| o.org_id == given);
        if !own {
            if given.bytes().all(|b| b.is_ascii_digit()) && st.orgs.values().any(|o| o.org_id == given) {
                return Err(desk_error(StatusCode::UNAUTHORIZED, "OAUTH_ORG_MISMATCH", MSG_ORG_MISMATCH));
            }
            return Err(bad_param("orgId"));
        }
    }
    Ok(info.org)
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

// ---------------------------------------------------------------------------------------------
// Handlers

async fn organizations(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::AnyDesk, false).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let st = api.desk.lock();
    let Some(o) = st.orgs.get(&org) else { return url_not_found_now() };
    let data = json!([{
        "id": o.org_id,
        "companyName": org,
        "portalName": org,
        "portalURL": format!("https://desk.zoho.com/support/{org}"),
        "isDefault": true,
        "isAdminInOrg": true,
        "edition": "ENTERPRISE",
        "description": null,
    }]);
    Json(json!({ "data": data })).into_response()
}

async fn departments(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::AnyDesk, true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let st = api.desk.lock();
    let Some(o) = st.orgs.get(&org) else { return url_not_found_now() };
    let data = json!([{
        "id": o.department_id,
        "name": org,
        "isDefault": true,
        "isEnabled": true,
        "isAssignToTeamEnabled": false,
        "description": null,
    }]);
    Json(json!({ "data": data })).into_response()
}

async fn create_ticket(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Tickets(&["CREATE", "WRITE"]), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let fields = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            let form = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.contains("form-urlencoded") || t.contains("multipart/"));
            return if form {
                desk_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", MSG_MEDIA_TYPE)
            } else {
                desk_error(StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY", MSG_NOT_JSON)
            };
        }
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let base = format!("http://{host}");
    let mut st = api.desk.lock();
    let contacts_before = st.orgs.get(&org).map_or(0, |o| o.contacts.len());
    match insert_ticket(&mut st, &org, &fields, &base) {
        Ok(ticket) => match st.save_new_ticket(&org, contacts_before) {
            Ok(()) => Json(ticket).into_response(),
            Err(e) => {
                eprintln!("linkrun sandbox: cannot store a Desk ticket: {e}");
                desk_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", &storage_failed(&e))
            }
        },
        Err(errors) => field_errors(errors),
    }
}

async fn list_tickets(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Tickets(&["READ"]), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let q = q.as_deref();
    let from = match query_param(q, "from").map(|v| v.trim().parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_param("from"),
    };
    let limit = match query_param(q, "limit").map(|v| v.trim().parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return bad_param("limit"),
    };
    let sort = query_param(q, "sortBy");
    let (key, descending) = match sort.as_deref().map(str::trim) {
        None | Some("") => ("createdTime", false),
        Some(s) => {
            let (desc, name) = match s.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, s),
            };
            match name {
                "createdTime" | "ticketNumber" | "modifiedTime" => (name, desc),
                _ => return bad_param("sortBy"),
            }
        }
    };
    let st = api.desk.lock();
    let mut all: Vec<&Map<String, Value>> = st.orgs.get(&org).map(|o| o.tickets.iter().collect()).unwrap_or_default();
    // Tickets are stored in creation order; ticket numbers and times grow with it (ties keep it).
    if key == "ticketNumber" {
        all.sort_by_key(|t| t.get("ticketNumber").and_then(Value::as_str).and_then(|n| n.parse::<u64>().ok()));
    } else {
        all.sort_by(|a, b| {
            let ka = a.get(key).and_then(Value::as_str).unwrap_or("");
            let kb = b.get(key).and_then(Value::as_str).unwrap_or("");
            ka.cmp(kb)
        });
    }
    if descending {
        all.reverse();
    }
    let page: Vec<Value> = all.into_iter().skip(from).take(limit).map(|t| Value::Object(t.clone())).collect();
    if page.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(json!({ "data": page })).into_response()
}

async fn get_ticket(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Tickets(&["READ"]), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return bad_param("ticketId");
    }
    let st = api.desk.lock();
    let found = st
        .orgs
        .get(&org)
        .and_then(|o| o.tickets.iter().find(|t| t.get("id").and_then(Value::as_str) == Some(id.as_str())));
    match found {
        Some(t) => Json(Value::Object(t.clone())).into_response(),
        None => url_not_found_now(),
    }
}

fn url_not_found_now() -> Response {
    desk_error(StatusCode::NOT_FOUND, "URL_NOT_FOUND", MSG_URL_NOT_FOUND)
}

// ---------------------------------------------------------------------------------------------
// Ticket creation

/// A string field: absent, `null` and blank are `None`; anything but a string is an error.
fn opt_str(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(()),
    }
}

/// An id field: a string of digits or a non-negative integer.
fn opt_id(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, ()> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.trim().bytes().all(|b| b.is_ascii_digit()) => Ok(Some(s.trim().to_string())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(()),
    }
}

/// Reads an optional string field, noting an error under `/key` when it is not a string.
fn take_str(
    fields: &Map<String, Value>,
    key: &str,
    pointer_prefix: &str,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    opt_str(fields, key).unwrap_or_else(|()| {
        errors.push(FieldError::invalid(&format!("{pointer_prefix}/{key}"), "The value must be a string."));
        None
    })
}

/// Validates `fields` against organisation `org` and stores the ticket (and a new contact if
/// needed); gives the ticket as the API shows it, or every field error found.
fn insert_ticket(
    st: &mut DeskState,
    org: &str,
    fields: &Map<String, Value>,
    base_url: &str,
) -> Result<Value, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(o) = st.orgs.get(org) else { return Err(vec![FieldError::missing("/departmentId")]) };

    let subject = match opt_str(fields, "subject") {
        Ok(None) => {
            errors.push(FieldError::missing("/subject"));
            None
        }
        Ok(Some(s)) if s.chars().count() > MAX_SUBJECT_CHARS => {
            errors.push(FieldError::invalid("/subject", "The subject can be at most 255 characters long."));
            None
        }
        Ok(Some(s)) => Some(s),
        Err(()) => {
            errors.push(FieldError::invalid("/subject", "The value must be a string."));
            None
        }
    };

    match opt_id(fields, "departmentId") {
        Ok(None) => errors.push(FieldError::missing("/departmentId")),
        Ok(Some(d)) if d == o.department_id => {}
        _ => errors.push(FieldError::invalid("/departmentId", "No department has this id.")),
    }

    // The contact: an existing one by id, else one found by email or created from `contact`.
    enum Who {
        Existing(usize),
        New {
            first: Option<String>,
            last: String,
            email: Option<String>,
            phone: Option<String>,
            mobile: Option<String>,
        },
        Unknown,
    }
    let who = match opt_id(fields, "contactId") {
        Ok(Some(id)) => match o.contacts.iter().position(|c| c.id == id) {
            Some(i) => Who::Existing(i),
            None => {
                errors.push(FieldError::invalid("/contactId", "No contact has this id."));
                Who::Unknown
            }
        },
        Err(()) => {
            errors.push(FieldError::invalid("/contactId", "No contact has this id."));
            Who::Unknown
        }
        Ok(None) => match fields.get("contact") {
            None | Some(Value::Null) => {
                errors.push(FieldError::missing("/contactId"));
                Who::Unknown
            }
            Some(Value::Object(c)) => {
                let first = take_str(c, "firstName", "/contact", &mut errors);
                let last = take_str(c, "lastName", "/contact", &mut errors);
                let phone = take_str(c, "phone", "/contact", &mut errors);
                let mobile = take_str(c, "mobile", "/contact", &mut errors);
                let email = take_str(c, "email", "/contact", &mut errors);
                let email_ok = email.as_deref().is_none_or(valid_email);
                if !email_ok {
                    errors.push(FieldError::invalid("/contact/email", "The email address is not valid."));
                }
                let existing =
                    email.as_deref().and_then(|e| o.contacts.iter().position(|x| same_email(x.email.as_deref(), e)));
                if email.is_none() && last.is_none() {
                    // A last name that was not a string is already reported as invalid.
                    if opt_str(c, "lastName").is_ok() {
                        errors.push(FieldError::missing("/contact/lastName"));
                    }
                    Who::Unknown
                } else if !email_ok {
                    Who::Unknown
                } else if let Some(i) = existing {
                    Who::Existing(i)
                } else {
                    // Desk requires a last name; with only an email, the part before `@` stands in.
                    let last = last.unwrap_or_else(|| {
                        email.as_deref().and_then(|e| e.split('@').next()).unwrap_or("").to_string()
                    });
                    Who::New { first, last, email, phone, mobile }
                }
            }
            Some(_) => {
                errors.push(FieldError::invalid("/contact", "The contact must be an object."));
                Who::Unknown
            }
        },
    };

    let email = take_str(fields, "email", "", &mut errors);
    if email.as_deref().is_some_and(|e| !valid_email(e)) {
        errors.push(FieldError::invalid("/email", "The email address is not valid."));
    }
    let phone = take_str(fields, "phone", "", &mut errors);
    let description = take_str(fields, "description", "", &mut errors);
    let category = take_str(fields, "category", "", &mut errors);
    let sub_category = take_str(fields, "subCategory", "", &mut errors);
    let language = take_str(fields, "language", "", &mut errors);
    let classification = take_str(fields, "classification", "", &mut errors);
    let priority = take_str(fields, "priority", "", &mut errors);
    let channel = take_str(fields, "channel", "", &mut errors).unwrap_or_else(|| "Web".to_string());
    let product_id = opt_id(fields, "productId").unwrap_or_else(|()| {
        errors.push(FieldError::invalid("/productId", "The value must be an id."));
        None
    });
    let assignee_id = opt_id(fields, "assigneeId").unwrap_or_else(|()| {
        errors.push(FieldError::invalid("/assigneeId", "The value must be an id."));
        None
    });
    let (status, status_type) = match take_str(fields, "status", "", &mut errors) {
        None => ("Open", "Open"),
        Some(s) => match s.trim().to_ascii_lowercase().as_str() {
            "open" => ("Open", "Open"),
            "on hold" => ("On Hold", "On Hold"),
            "escalated" => ("Escalated", "Open"),
            "closed" => ("Closed", "Closed"),
            _ => {
                errors.push(FieldError::invalid("/status", "The status must be Open, On Hold, Escalated or Closed."));
                ("Open", "Open")
            }
        },
    };
    let due_date = take_str(fields, "dueDate", "", &mut errors);
    if due_date.as_deref().is_some_and(|d| !valid_time(d)) {
        errors.push(FieldError::invalid("/dueDate", "The date must look like 2018-10-19T06:34:43.000Z."));
    }
    let cf = match fields.get("cf") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            errors.push(FieldError::invalid("/cf", "The custom fields must be an object."));
            Map::new()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    let now = now_time();
    let contact_idx = match who {
        Who::Existing(i) => i,
        Who::New { first, last, email, phone, mobile } => {
            let id = st.new_record_id();
            let Some(o) = st.orgs.get_mut(org) else { return Err(vec![FieldError::missing("/departmentId")]) };
            o.contacts.push(Contact {
                id,
                first_name: first,
                last_name: last,
                email,
                phone,
                mobile,
                created: now.clone(),
            });
            o.contacts.len() - 1
        }
        Who::Unknown => return Err(vec![FieldError::missing("/contactId")]),
    };
    let id = st.new_record_id();
    let Some(o) = st.orgs.get_mut(org) else { return Err(vec![FieldError::missing("/departmentId")]) };
    let contact = &o.contacts[contact_idx];
    let number = o.next_ticket_number;
    o.next_ticket_number += 1;
    let ticket = json!({
        "id": id,
        "ticketNumber": number.to_string(),
        "subject": subject,
        "description": description,
        "status": status,
        "statusType": status_type,
        "priority": priority,
        "channel": channel,
        "email": email.or_else(|| contact.email.clone()),
        "phone": phone.or_else(|| contact.phone.clone()),
        "contactId": contact.id,
        "departmentId": o.department_id,
        "assigneeId": assignee_id,
        "accountId": null,
        "teamId": null,
        "productId": product_id,
        "category": category,
        "subCategory": sub_category,
        "classification": classification,
        "language": language,
        "dueDate": due_date,
        "closedTime": (status_type == "Closed").then(|| now.clone()),
        "cf": cf.clone(),
        "customFields": cf,
        "isDeleted": false,
        "isSpam": false,
        "createdTime": now,
        "modifiedTime": now,
        "webUrl": format!("{base_url}/support/{org}/ShowHomePage.do#Cases/dv/{id}"),
    });
    if let Value::Object(m) = &ticket {
        o.tickets.push(m.clone());
    }
    Ok(ticket)
}

fn same_email(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.trim().eq_ignore_ascii_case(b.trim()))
}

/// A plain address check: one `@`, a local part without spaces, and a dotted domain whose labels
/// are letters, digits and inner hyphens, ending in a top-level domain of two letters or more.
pub(crate) fn valid_email(s: &str) -> bool {
    let s = s.trim();
    let Some((local, domain)) = s.split_once('@') else { return false };
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local.chars().any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c))
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|t| t.len() >= 2 && t.chars().all(|c| c.is_ascii_alphabetic()))
}

/// `YYYY-MM-DDTHH:MM:SSZ` or with milliseconds, `.sssZ`.
fn valid_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    shape && (&s[19..] == "Z" || (s.len() == 24 && b[19] == b'.' && digits(20..23) && b[23] == b'Z'))
}

/// Now in Desk's time format, `2018-10-19T06:34:43.000Z` (UTC).
pub(crate) fn now_time() -> String {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    format_time(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`, by the civil-from-days algorithm.
pub(crate) fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Knobs;
    use crate::oauth_provider::{ClientConfig, ProviderConfig, serve};

    const US_ORG_ID: &str = "700100200";
    const US_DEPT: &str = "1892000000006001";
    const IN_ORG_ID: &str = "700100300";
    const IN_DEPT: &str = "1892000000007001";

    struct T {
        provider: Provider,
        desk: Desk,
        base: String,
        http: reqwest::Client,
    }

    async fn start_with(faults: Faults) -> T {
        let mut cfg = ProviderConfig::zoho("");
        cfg.clients = vec![
            ClientConfig::new("1000.US", "us_secret", "us"),
            ClientConfig::new("1000.IN", "in_secret", "in"),
            ClientConfig::new("1000.EU", "eu_secret", "eu"),
        ];
        let provider = Provider::new(cfg);
        let desk = Desk::new();
        desk.add_org("us", US_ORG_ID, US_DEPT);
        desk.add_org("in", IN_ORG_ID, IN_DEPT);
        let router = provider.oauth_router().merge(desk.router(provider.clone(), faults));
        let (addr, _server) = serve(router).await.unwrap();
        T { provider, desk, base: format!("http://{addr}"), http: reqwest::Client::new() }
    }

    async fn start() -> T {
        start_with(Faults::default()).await
    }

    async fn answer(r: reqwest::Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn err(code: &str, message: &str) -> Value {
        json!({ "errorCode": code, "message": message })
    }

    impl T {
        /// An access token of `client` (`1000.US`, `1000.IN`, `1000.EU`) with `scopes`, through a
        /// self-client code and the token endpoint (form body).
        async fn token(&self, client: &str, scopes: &[&str]) -> String {
            let code = self.provider.mint_self_client_code(client, scopes);
            let secret = match client {
                "1000.US" => "us_secret",
                "1000.IN" => "in_secret",
                _ => "eu_secret",
            };
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("grant_type", "authorization_code"),
                    ("client_id", client),
                    ("client_secret", secret),
                    ("code", code.as_str()),
                ])
                .finish();
            let r = self
                .http
                .post(format!("{}/oauth/v2/token", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, v) = answer(r).await;
            assert_eq!(status, 200, "{v}");
            v["access_token"].as_str().unwrap().to_string()
        }

        async fn call(
            &self,
            method: reqwest::Method,
            path: &str,
            token: Option<&str>,
            org_id: Option<&str>,
            body: Option<String>,
        ) -> (u16, Value) {
            let mut rb = self.http.request(method, format!("{}{path}", self.base));
            if let Some(t) = token {
                rb = rb.header("authorization", format!("Zoho-oauthtoken {t}"));
            }
            if let Some(o) = org_id {
                rb = rb.header("orgId", o);
            }
            if let Some(b) = body {
                rb = rb.header("content-type", "application/json").body(b);
            }
            answer(rb.send().await.unwrap()).await
        }

        async fn create(&self, token: &str, org_id: &str, body: Value) -> (u16, Value) {
            self.call(reqwest::Method::POST, "/api/v1/tickets", Some(token), Some(org_id), Some(body.to_string())).await
        }

        async fn get(&self, path: &str, token: &str, org_id: Option<&str>) -> (u16, Value) {
            self.call(reqwest::Method::GET, path, Some(token), org_id, None).await
        }
    }

    fn ticket(subject: &str, email: &str) -> Value {
        json!({
            "subject": subject,
            "departmentId": US_DEPT,
            "contact": { "lastName": "Lovelace", "firstName": "Ada", "email": email },
            "description": "It does not work",
            "priority": "High",
        })
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn create_read_and_list_tickets_with_contact_reuse() {
        let t = start().await;
        let tok = t.token("1000.US", &["Desk.tickets.ALL"]).await;

        let (status, a) = t.create(&tok, US_ORG_ID, ticket("Printer on fire", "ada@example.com")).await;
        assert_eq!(status, 200, "{a}");
        assert_eq!(a["ticketNumber"], "101");
        assert_eq!(a["subject"], "Printer on fire");
        assert_eq!(a["status"], "Open");
        assert_eq!(a["statusType"], "Open");
        assert_eq!(a["departmentId"], US_DEPT);
        assert_eq!(a["channel"], "Web");
        assert_eq!(a["priority"], "High");
        assert_eq!(a["email"], "ada@example.com", "taken from the contact");
        assert_eq!(a["description"], "It does not work");
        assert_eq!(a["customFields"], json!({}));
        assert_eq!(a["isDeleted"], false);
        assert_eq!(a["assigneeId"], Value::Null);
        assert_eq!(a["phone"], Value::Null);
        let id = a["id"].as_str().unwrap();
        assert!(id.len() >= 16 && id.bytes().all(|b| b.is_ascii_digit()), "{id}");
        assert!(a["webUrl"].as_str().unwrap().ends_with(&format!("/support/us/ShowHomePage.do#Cases/dv/{id}")));
        let created = a["createdTime"].as_str().unwrap();
        assert!(valid_time(created) && created.len() == 24 && created.ends_with('Z'), "{created}");
        assert_eq!(a["modifiedTime"], a["createdTime"]);

        // The same email (other case) reuses the contact; the number goes up.
        let mut second = ticket("Second", "ADA@example.com");
        second["channel"] = json!("Phone");
        second["status"] = json!("On Hold");
        second["cf"] = json!({ "cf_order": "42" });
        let (status, b) = t.create(&tok, US_ORG_ID, second).await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["ticketNumber"], "102");
        assert_eq!(b["contactId"], a["contactId"]);
        assert_eq!(b["channel"], "Phone");
        assert_eq!((b["status"].as_str(), b["statusType"].as_str()), (Some("On Hold"), Some("On Hold")));
        assert_eq!(b["cf"], json!({ "cf_order": "42" }));
        assert_eq!(t.desk.contacts("us").len(), 1);

        // By contactId, and a contact with an email only.
        let by_id = json!({ "subject": "Third", "departmentId": US_DEPT, "contactId": a["contactId"] });
        let (status, c) = t.create(&tok, US_ORG_ID, by_id).await;
        assert_eq!(status, 200, "{c}");
        assert_eq!(c["contactId"], a["contactId"]);
        let email_only =
            json!({ "subject": "Fourth", "departmentId": US_DEPT, "contact": { "email": "bob@example.org" } });
        let (status, d) = t.create(&tok, US_ORG_ID, email_only).await;
        assert_eq!(status, 200, "{d}");
        assert_ne!(d["contactId"], a["contactId"]);
        let contacts = t.desk.contacts("us");
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[1]["lastName"], "bob");

        let (status, got) = t.get(&format!("/api/v1/tickets/{id}"), &tok, Some(US_ORG_ID)).await;
        assert_eq!(status, 200);
        assert_eq!(got, a);

        let (status, list) = t.get("/api/v1/tickets", &tok, Some(US_ORG_ID)).await;
        assert_eq!(status, 200);
        let numbers: Vec<&str> =
            list["data"].as_array().unwrap().iter().map(|t| t["ticketNumber"].as_str().unwrap()).collect();
        assert_eq!(numbers, ["101", "102", "103", "104"]);
        let (_, page) = t.get("/api/v1/tickets?from=1&limit=2", &tok, Some(US_ORG_ID)).await;
        let numbers: Vec<&str> =
            page["data"].as_array().unwrap().iter().map(|t| t["ticketNumber"].as_str().unwrap()).collect();
        assert_eq!(numbers, ["102", "103"]);
        let (_, page) = t.get("/api/v1/tickets?sortBy=-ticketNumber&limit=1", &tok, Some(US_ORG_ID)).await;
        assert_eq!(page["data"][0]["ticketNumber"], "104");
        let (status, body) = t.get("/api/v1/tickets?from=10", &tok, Some(US_ORG_ID)).await;
        assert_eq!((status, body), (204, json!("")));
        for (q, name) in
            [("limit=0", "limit"), ("limit=101", "limit"), ("from=-1", "from"), ("sortBy=subject", "sortBy")]
        {
            let (status, body) = t.get(&format!("/api/v1/tickets?{q}"), &tok, Some(US_ORG_ID)).await;
            assert_eq!(status, 422, "{q}");
            assert_eq!(
                body,
                err("UNPROCESSABLE_ENTITY", &format!("The value passed for the '{name}' parameter is invalid."))
            );
        }

        // orgId as a query parameter works too.
        let (status, _) = t.get(&format!("/api/v1/tickets?orgId={US_ORG_ID}"), &tok, None).await;
        assert_eq!(status, 200);

        assert_eq!(t.desk.tickets("us").len(), 4);
        assert_eq!(t.desk.tickets("us")[0], a);
        assert!(t.desk.tickets("in").is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn auth_scope_and_org_errors() {
        let t = start().await;
        let tok = t.token("1000.US", &["Desk.tickets.CREATE"]).await;
        let body = ticket("Hello", "ada@example.com");

        // No token, another scheme, a fake token, an expired one.
        let (status, v) = t.call(reqwest::Method::GET, "/api/v1/tickets", None, Some(US_ORG_ID), None).await;
        assert_eq!((status, v), (401, err("UNAUTHORIZED", "You are not authenticated to perform this operation.")));
        let r =
            t.http.get(format!("{}/api/v1/tickets", t.base)).header("authorization", format!("Bearer {tok}")).send();
        let (status, v) = answer(r.await.unwrap()).await;
        assert_eq!((status, v), (401, err("UNAUTHORIZED", "You are not authenticated to perform this operation.")));
        let (status, v) = t.get("/api/v1/organizations", "1000.fake.token", None).await;
        assert_eq!((status, v), (401, err("INVALID_OAUTH", "The OAuth Token you provided is invalid.")));

        // The scope: CREATE cannot read.
        let (status, v) = t.get("/api/v1/tickets", &tok, Some(US_ORG_ID)).await;
        assert_eq!((status, v["errorCode"].as_str()), (401, Some("SCOPE_MISMATCH")));
        let other = t.token("1000.US", &["ZohoCRM.modules.ALL"]).await;
        let (status, v) = t.create(&other, US_ORG_ID, body.clone()).await;
        assert_eq!((status, v["errorCode"].as_str()), (401, Some("SCOPE_MISMATCH")));
        assert_eq!(v, err("SCOPE_MISMATCH", MSG_SCOPE_MISMATCH));

        // orgId: missing, not a number, unknown, another organisation's.
        let (status, v) =
            t.call(reqwest::Method::POST, "/api/v1/tickets", Some(&tok), None, Some(body.to_string())).await;
        assert_eq!((status, v), (422, err("UNPROCESSABLE_ENTITY", MSG_ORG_MISSING)));
        for bad in ["abc", "123"] {
            let (status, v) = t.create(&tok, bad, body.clone()).await;
            assert_eq!(
                (status, v),
                (422, err("UNPROCESSABLE_ENTITY", "The value passed for the 'orgId' parameter is invalid.")),
                "{bad}"
            );
        }
        let (status, v) = t.create(&tok, IN_ORG_ID, body.clone()).await;
        assert_eq!((status, v), (401, err("OAUTH_ORG_MISMATCH", MSG_ORG_MISMATCH)));
        assert!(t.desk.tickets("us").is_empty() && t.desk.tickets("in").is_empty());

        // The right orgId; then the token expires.
        let (status, _) = t.create(&tok, US_ORG_ID, body.clone()).await;
        assert_eq!(status, 200);
        t.provider.expire_access_tokens();
        let (status, v) = t.create(&tok, US_ORG_ID, body).await;
        assert_eq!((status, v), (401, err("INVALID_OAUTH", "The OAuth Token you provided is invalid.")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn validation_errors_name_fields_by_json_pointer() {
        let t = start().await;
        let tok = t.token("1000.US", &["Desk.tickets.ALL"]).await;
        let fields = |v: &Value| -> Vec<(String, String)> {
            v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["fieldName"].as_str().unwrap().to_string(), e["errorType"].as_str().unwrap().to_string()))
                .collect()
        };
        let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
            p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
        };

        let (status, v) = t.create(&tok, US_ORG_ID, json!({})).await;
        assert_eq!(status, 422);
        assert_eq!(v["errorCode"], "UNPROCESSABLE_ENTITY");
        assert_eq!(v["message"], MSG_FIELDS);
        assert_eq!(v["errors"][0], json!({ "fieldName": "/subject", "errorType": "missing", "errorMessage": "" }));
        assert_eq!(
            fields(&v),
            pairs(&[("/subject", "missing"), ("/departmentId", "missing"), ("/contactId", "missing")])
        );

        let long = "x".repeat(256);
        let body = json!({ "subject": long, "departmentId": "999", "contactId": "1" });
        let (status, v) = t.create(&tok, US_ORG_ID, body).await;
        assert_eq!(status, 422);
        assert_eq!(
            fields(&v),
            pairs(&[("/subject", "invalid"), ("/departmentId", "invalid"), ("/contactId", "invalid")])
        );

        let just_right =
            json!({ "subject": "x".repeat(255), "departmentId": US_DEPT, "contact": { "lastName": "Hopper" } });
        let (status, v) = t.create(&tok, US_ORG_ID, just_right).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["email"], Value::Null);

        let body = json!({
            "subject": 5,
            "departmentId": US_DEPT,
            "contact": { "firstName": "Grace" },
            "email": "not an email",
            "status": "Pending",
            "dueDate": "tomorrow",
            "cf": [],
        });
        let (status, v) = t.create(&tok, US_ORG_ID, body).await;
        assert_eq!(status, 422);
        assert_eq!(
            fields(&v),
            pairs(&[
                ("/subject", "invalid"),
                ("/contact/lastName", "missing"),
                ("/email", "invalid"),
                ("/status", "invalid"),
                ("/dueDate", "invalid"),
                ("/cf", "invalid"),
            ])
        );
        let body = json!({ "subject": "s", "departmentId": US_DEPT, "contact": { "email": "a@b" } });
        let (_, v) = t.create(&tok, US_ORG_ID, body).await;
        assert_eq!(fields(&v), pairs(&[("/contact/email", "invalid")]));
        let body = json!({ "subject": "s", "departmentId": US_DEPT, "contact": "Ada" });
        let (_, v) = t.create(&tok, US_ORG_ID, body).await;
        assert_eq!(fields(&v), pairs(&[("/contact", "invalid")]));
        let ok = json!({
            "subject": "s",
            "departmentId": US_DEPT.parse::<u64>().unwrap(),
            "contact": { "lastName": "L" },
            "status": "closed",
            "dueDate": "2030-01-02T03:04:05.000Z",
        });
        let (status, v) = t.create(&tok, US_ORG_ID, ok).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!((v["status"].as_str(), v["statusType"].as_str()), (Some("Closed"), Some("Closed")));
        assert_eq!(v["dueDate"], "2030-01-02T03:04:05.000Z");

        // Not JSON; a form.
        let (status, v) = t
            .call(reqwest::Method::POST, "/api/v1/tickets", Some(&tok), Some(US_ORG_ID), Some("subject=x".into()))
            .await;
        assert_eq!((status, v), (422, err("UNPROCESSABLE_ENTITY", MSG_NOT_JSON)));
        let r = t
            .http
            .post(format!("{}/api/v1/tickets", t.base))
            .header("authorization", format!("Zoho-oauthtoken {tok}"))
            .header("orgId", US_ORG_ID)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("subject=x")
            .send();
        let (status, v) = answer(r.await.unwrap()).await;
        assert_eq!((status, v), (415, err("UNSUPPORTED_MEDIA_TYPE", MSG_MEDIA_TYPE)));
        assert_eq!(t.desk.tickets("us").len(), 2);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn organisations_are_isolated() {
        let t = start().await;
        let us = t.token("1000.US", &["Desk.tickets.ALL", "Desk.basic.READ"]).await;
        let inn = t.token("1000.IN", &["Desk.tickets.ALL"]).await;

        let (status, v) = t.get("/api/v1/organizations", &us, None).await;
        assert_eq!(status, 200);
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        assert_eq!(v["data"][0]["id"], US_ORG_ID);
        let (_, v) = t.get("/api/v1/organizations", &inn, None).await;
        assert_eq!(v["data"][0]["id"], IN_ORG_ID);
        let (status, v) = t.get("/api/v1/departments", &inn, Some(IN_ORG_ID)).await;
        assert_eq!(status, 200);
        assert_eq!(v["data"][0]["id"], IN_DEPT);

        let (status, a) = t.create(&us, US_ORG_ID, ticket("US only", "ada@example.com")).await;
        assert_eq!(status, 200);
        let id = a["id"].as_str().unwrap().to_string();

        // India sees nothing of it, and its own department is needed there.
        let (status, _) = t.get("/api/v1/tickets", &inn, Some(IN_ORG_ID)).await;
        assert_eq!(status, 204);
        let (status, v) = t.get(&format!("/api/v1/tickets/{id}"), &inn, Some(IN_ORG_ID)).await;
        assert_eq!((status, v), (404, err("URL_NOT_FOUND", MSG_URL_NOT_FOUND)));
        let (status, v) = t.create(&inn, IN_ORG_ID, ticket("In", "ada@example.com")).await;
        assert_eq!(status, 422);
        assert_eq!(v["errors"][0]["fieldName"], "/departmentId");
        let mut body = ticket("In", "ada@example.com");
        body["departmentId"] = json!(IN_DEPT);
        let (status, b) = t.create(&inn, IN_ORG_ID, body).await;
        assert_eq!(status, 200, "{b}");
        assert_eq!(b["ticketNumber"], "101", "numbers count per organisation");
        assert_ne!(b["contactId"], a["contactId"], "contacts are per organisation");
        let contact_of_us = json!({ "subject": "s", "departmentId": IN_DEPT, "contactId": a["contactId"] });
        let (status, v) = t.create(&inn, IN_ORG_ID, contact_of_us).await;
        assert_eq!((status, v["errors"][0]["fieldName"].as_str()), (422, Some("/contactId")));
        assert_eq!(t.desk.tickets("us").len(), 1);
        assert_eq!(t.desk.tickets("in").len(), 1);

        // An organisation nobody added gets ids on first use.
        assert_eq!(t.desk.org_id("eu"), None);
        let eu = t.token("1000.EU", &["Desk.tickets.ALL"]).await;
        let (status, v) = t.get("/api/v1/organizations", &eu, None).await;
        assert_eq!(status, 200);
        let eu_id = t.desk.org_id("eu").unwrap();
        assert_eq!(v["data"][0]["id"], eu_id.as_str());
        let eu_dept = t.desk.department_id("eu").unwrap();
        assert!(eu_id.bytes().all(|b| b.is_ascii_digit()) && eu_dept.bytes().all(|b| b.is_ascii_digit()));
        let (status, v) = t.get(&format!("/api/v1/tickets/{id}"), &eu, Some(US_ORG_ID)).await;
        assert_eq!((status, v["errorCode"].as_str()), (401, Some("OAUTH_ORG_MISMATCH")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unknown_paths_methods_and_ids() {
        let t = start().await;
        let tok = t.token("1000.US", &["Desk.tickets.ALL"]).await;
        for path in ["/api/v1/nothing", "/api/v1", "/api/v1/tickets/1/threads/x"] {
            let (status, v) = t.get(path, &tok, Some(US_ORG_ID)).await;
            assert_eq!((status, v), (404, err("URL_NOT_FOUND", MSG_URL_NOT_FOUND)), "{path}");
        }
        for (method, path) in [
            (reqwest::Method::DELETE, "/api/v1/tickets"),
            (reqwest::Method::PUT, "/api/v1/tickets/1"),
            (reqwest::Method::POST, "/api/v1/organizations"),
        ] {
            let (status, v) = t.call(method, path, Some(&tok), Some(US_ORG_ID), None).await;
            assert_eq!((status, v), (405, err("METHOD_NOT_ALLOWED", MSG_METHOD_NOT_ALLOWED)), "{path}");
        }
        let (status, v) = t.get("/api/v1/tickets/abc", &tok, Some(US_ORG_ID)).await;
        assert_eq!(
            (status, v),
            (422, err("UNPROCESSABLE_ENTITY", "The value passed for the 'ticketId' parameter is invalid."))
        );
        let (status, v) = t.get("/api/v1/tickets/1892000000042001", &tok, Some(US_ORG_ID)).await;
        assert_eq!((status, v), (404, err("URL_NOT_FOUND", MSG_URL_NOT_FOUND)));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn faults_answer_429_and_500() {
        let faults = Faults::new(Knobs { rate_limit_per_minute: Some(1), ..Default::default() });
        let t = start_with(faults.clone()).await;
        let tok = t.token("1000.US", &["Desk.tickets.ALL"]).await;
        let (status, _) = t.get("/api/v1/organizations", &tok, None).await;
        assert_eq!(status, 200);
        let r = t
            .http
            .get(format!("{}/api/v1/organizations", t.base))
            .header("authorization", format!("Zoho-oauthtoken {tok}"))
            .send()
            .await
            .unwrap();
        let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry));
        let (status, v) = answer(r).await;
        assert_eq!((status, v), (429, err("TOO_MANY_REQUESTS", MSG_TOO_MANY)));
        // Another organisation has its own window.
        let inn = t.token("1000.IN", &["Desk.tickets.ALL"]).await;
        let (status, _) = t.get("/api/v1/organizations", &inn, None).await;
        assert_eq!(status, 200);

        faults.set(Knobs { failure_rate: 1.0, ..Default::default() });
        let (status, v) = t.create(&tok, US_ORG_ID, ticket("s", "ada@example.com")).await;
        assert_eq!((status, v), (500, err("INTERNAL_SERVER_ERROR", MSG_INTERNAL)));
        assert!(t.desk.tickets("us").is_empty());
    }

    #[test]
    fn times_and_emails() {
        assert_eq!(format_time(1_539_930_883_000), "2018-10-19T06:34:43.000Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert!(valid_time("2018-10-19T06:34:43.000Z") && valid_time("2018-10-19T06:34:43Z"));
        assert!(
            !valid_time("2018-10-19")
                && !valid_time("2018-10-19T06:34:43.0Z")
                && !valid_time("2018-10-19T06:34:43+00:00")
        );
        for good in ["jai@zoho.com", "a.b+c@mail.example.co.uk", " ada@example.com "] {
            assert!(valid_email(good), "{good}");
        }
        for bad in ["", "a", "a@b", "a@@b.com", "@b.com", "a b@c.com", "a@b..com", "a@-b.com", "a@b.c0m", "a@b.c"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }
}
