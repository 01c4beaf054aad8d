//! An in-memory Zoho Campaigns list subscribe (`POST /api/v1.1/json/listsubscribe`) as
//! `docs/api-facts.md` §4 describes it: a form-encoded request (parameters in the query string are
//! taken too), an answer in JSON, and errors that come back with **HTTP 200** and a code in the
//! body. Tokens come from the sandbox's Zoho Accounts ([`Provider`]); mailing lists belong to the
//! organisation of the token's client, so a list key of another organisation is invalid.
//!
//! Parameters: `listkey` (required), `contactinfo` (required; Zoho's own format
//! `{First Name:mac,Last Name:Last Name,Contact Email:jai@zoho.com}`, or a JSON object), `resfmt`
//! (the answer is JSON whatever it says), `source`, `topic_id`. Scope: `ZohoCampaigns.contact.`
//! `UPDATE`, `CREATE-UPDATE`, `WRITE` or `ALL`.
//!
//! Success (confirmed): `{"message":"A confirmation email is sent to the user. User needs to
//! confirm to successfully subscribe.","status":"success","code":"0","uri":"/api/json/listsubscribe","version":"1.1"}`.
//! Subscribing an address that is already on the list updates its fields; the list keeps one
//! member per address (compared without case).
//!
//! Errors, HTTP 200, checked in this order (the codes and their meanings are confirmed; the body
//! shape `{"status":"error","code":"…","message":"…","uri":"/api/json/listsubscribe","version":"1.1"}`
//! is our best guess, modelled on the success body):
//!
//! | code | when |
//! |------|------|
//! | `2501` | `listkey` missing, empty, or not a list of the token's organisation |
//! | `2001` | `contactinfo` missing or not parseable |
//! | `2004` | no `Contact Email`, or not a valid address |
//! | `2005` | a group (role) address: `info@`, `sales@`, `admin@`, … (see [`GROUP_LOCAL_PARTS`]) |
//!
//! Our guesses where `docs/api-facts.md` is silent, in the same body shape: no or a non-Zoho
//! `Authorization` header 401 code `1007`; an unknown, expired or revoked token 401 `1007`; a
//! token without the scope 401 `1008`; the rate-limit fault 429 `2101` ("Please retry after
//! sometime.", the code Campaigns documents for its per-API limits) with `Retry-After`; the
//! server-error fault 500 `500`; another method 405; any other path under `/api/v1.1/` 404.
//!
//! The lists and their members live in SQLite ([`Campaigns::open`]: a file, shared with the other
//! products' tables, or in memory), in the tables `campaigns_lists` and `campaigns_members`; they
//! are loaded when the file is opened and every change is written through.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use rusqlite::{Connection, params};
use serde_json::{Map, Value, json};

use super::faults::{Fault, Faults, with_status};
use super::oauth_provider::Provider;
use super::storage::{StorageError, open_db, storage_failed};
use super::zoho_desk::{now_time, valid_email};

/// The `uri` every list-subscribe answer carries (without the version, as Campaigns writes it).
const URI: &str = "/api/json/listsubscribe";
const VERSION: &str = "1.1";
const MSG_SUCCESS: &str = "A confirmation email is sent to the user. User needs to confirm to successfully subscribe.";

/// Local parts of role addresses refused with code `2005` (compared without case).
pub const GROUP_LOCAL_PARTS: &[&str] = &[
    "abuse",
    "admin",
    "administrator",
    "billing",
    "contact",
    "enquiries",
    "enquiry",
    "help",
    "hostmaster",
    "hr",
    "info",
    "inquiries",
    "jobs",
    "mail",
    "marketing",
    "no-reply",
    "noreply",
    "office",
    "postmaster",
    "sales",
    "support",
    "team",
    "webmaster",
];

/// The emulated Zoho Campaigns. Cloning it shares the same data.
#[derive(Clone)]
pub struct Campaigns {
    inner: Arc<Mutex<CampaignsState>>,
}

impl Default for Campaigns {
    fn default() -> Campaigns {
        Campaigns::new()
    }
}

struct CampaignsState {
    /// By `(organisation, listkey)`.
    lists: BTreeMap<(String, String), List>,
    /// Where every change is written through.
    conn: Connection,
}

const CAMPAIGNS_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS campaigns_lists (
        org TEXT NOT NULL, listkey TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (org, listkey));
    CREATE TABLE IF NOT EXISTS campaigns_members (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT NOT NULL, listkey TEXT NOT NULL,
        email_key TEXT NOT NULL, email TEXT NOT NULL, fields TEXT NOT NULL, source TEXT, topic_id TEXT,
        subscribed TEXT NOT NULL, updated TEXT NOT NULL, UNIQUE (org, listkey, email_key));";

/// The tables and the columns Campaigns reads.
const CAMPAIGNS_TABLES: [(&str, &[&str]); 2] = [
    ("campaigns_lists", &["org", "listkey", "name"]),
    (
        "campaigns_members",
        &["seq", "org", "listkey", "email_key", "email", "fields", "source", "topic_id", "subscribed", "updated"],
    ),
];

struct List {
    name: String,
    members: Vec<Member>,
}

struct Member {
    email: String,
    fields: Map<String, Value>,
    source: Option<String>,
    topic_id: Option<String>,
    subscribed: String,
    updated: String,
}

impl Campaigns {
    /// Campaigns with no mailing lists yet.
    pub fn new() -> Campaigns {
        Campaigns::open(None).expect("an in-memory SQLite database opens")
    }

    /// Opens (creating its tables if needed) the Campaigns data in the SQLite file at `path`,
    /// which may be shared with the other products, or in memory for `None`.
    pub fn open(path: Option<&Path>) -> Result<Campaigns, StorageError> {
        let conn = open_db(path, "Zoho Campaigns", &CAMPAIGNS_TABLES, CAMPAIGNS_SCHEMA)?;
        let mut lists = BTreeMap::new();
        {
            let mut q = conn.prepare("SELECT org, listkey, name FROM campaigns_lists")?;
            let rows = q.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))?;
            for row in rows {
                let (org, listkey, name) = row?;
                lists.insert((org, listkey), List { name, members: Vec::new() });
            }
            let mut q = conn.prepare(
                "SELECT org, listkey, email, fields, source, topic_id, subscribed, updated
                 FROM campaigns_members ORDER BY seq",
            )?;
            let rows = q.query_map([], |r| {
                let key: (String, String) = (r.get(0)?, r.get(1)?);
                let fields: String = r.get(3)?;
                let member = Member {
                    email: r.get(2)?,
                    fields: match serde_json::from_str::<Value>(&fields) {
                        Ok(Value::Object(m)) => m,
                        _ => Map::new(),
                    },
                    source: r.get(4)?,
                    topic_id: r.get(5)?,
                    subscribed: r.get(6)?,
                    updated: r.get(7)?,
                };
                Ok((key, member))
            })?;
            for row in rows {
                let (key, member) = row?;
                if let Some(list) = lists.get_mut(&key) {
                    list.members.push(member);
                }
            }
        }
        Ok(Campaigns { inner: Arc::new(Mutex::new(CampaignsState { lists, conn })) })
    }

    /// Adds mailing list `listkey` named `name` to organisation `org` (an OAuth client's `org`).
    /// Adding it again (also after a restart on the same data file) renames it and keeps its
    /// members.
    pub fn add_list(&self, org: &str, listkey: &str, name: &str) {
        let mut st = self.lock();
        let list = st
            .lists
            .entry((org.to_string(), listkey.to_string()))
            .or_insert_with(|| List { name: String::new(), members: Vec::new() });
        list.name = name.to_string();
        let stored = st.conn.execute(
            "INSERT INTO campaigns_lists (org, listkey, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (org, listkey) DO UPDATE SET name = excluded.name",
            params![org, listkey, name],
        );
        if let Err(e) = stored {
            eprintln!("linkrun sandbox: cannot store Campaigns list {listkey}: {e}");
        }
    }

    /// The name of list `listkey` of `org`, if it exists.
    pub fn list_name(&self, org: &str, listkey: &str) -> Option<String> {
        self.lock().lists.get(&(org.to_string(), listkey.to_string())).map(|l| l.name.clone())
    }

    /// The members of list `listkey` of `org`, in the order they first subscribed: `{"email",
    /// "fields" (the `contactinfo` pairs), "source", "topicId", "status": "pending" (waiting for
    /// the confirmation email), "subscribedTime", "modifiedTime"}`. Empty for an unknown list.
    pub fn members(&self, org: &str, listkey: &str) -> Vec<Value> {
        let st = self.lock();
        let Some(list) = st.lists.get(&(org.to_string(), listkey.to_string())) else { return Vec::new() };
        list.members
            .iter()
            .map(|m| {
                json!({
                    "email": m.email,
                    "fields": m.fields,
                    "source": m.source,
                    "topicId": m.topic_id,
                    "status": "pending",
                    "subscribedTime": m.subscribed,
                    "modifiedTime": m.updated,
                })
            })
            .collect()
    }

    /// `POST /api/v1.1/json/listsubscribe` (and the 404/405 answers around it; see the module
    /// documentation), checking tokens with `provider` and answering faults from `faults`.
    pub fn router(&self, provider: Provider, faults: Faults) -> Router {
        let api = Api { campaigns: self.clone(), provider, faults };
        Router::new()
            .route("/api/v1.1/json/listsubscribe", post(list_subscribe).fallback(method_not_allowed))
            .route("/api/v1.1/{*rest}", any(not_found))
            .with_state(api)
    }

    fn lock(&self) -> MutexGuard<'_, CampaignsState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Clone)]
struct Api {
    campaigns: Campaigns,
    provider: Provider,
    faults: Faults,
}

fn answer(status: StatusCode, code: &str, message: &str, uri: &str) -> Response {
    let body = json!({ "status": "error", "code": code, "message": message, "uri": uri, "version": VERSION });
    (status, Json(body)).into_response()
}

/// An error the API reports with HTTP 200.
fn soft_error(code: &str, message: &str) -> Response {
    answer(StatusCode::OK, code, message, URI)
}

async fn not_found(uri: Uri) -> Response {
    answer(StatusCode::NOT_FOUND, "404", "The requested URL was not found.", uri.path())
}

async fn method_not_allowed() -> Response {
    answer(StatusCode::METHOD_NOT_ALLOWED, "405", "This API accepts only POST requests.", URI)
}

fn allows(granted: &[String]) -> bool {
    granted.iter().any(|s| {
        s.to_ascii_lowercase()
            .strip_prefix("zohocampaigns.contact.")
            .is_some_and(|op| matches!(op, "update" | "create-update" | "write" | "all"))
    })
}

async fn list_subscribe(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let info = match api.provider.authenticate(&headers) {
        Ok(info) => info,
        Err(f) if f.missing => {
            return answer(
                StatusCode::UNAUTHORIZED,
                "1007",
                "Unauthorized: send an `Authorization: Zoho-oauthtoken` header.",
                URI,
            );
        }
        Err(_) => return answer(StatusCode::UNAUTHORIZED, "1007", "Invalid OAuth token.", URI),
    };
    match api.faults.before(&info.org).await {
        Some(Fault::RateLimited { retry_after }) => {
            let mut r = answer(StatusCode::TOO_MANY_REQUESTS, "2101", "Please retry after sometime.", URI);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return r;
        }
        Some(Fault::ServerError { status }) => {
            let r =
                answer(StatusCode::INTERNAL_SERVER_ERROR, "500", "Internal server error. Please try again later.", URI);
            return with_status(r, status);
        }
        None => {}
    }
    if !allows(&info.scopes) {
        return answer(
            StatusCode::UNAUTHORIZED,
            "1008",
            "The OAuth token does not have the scope ZohoCampaigns.contact.UPDATE required by this API.",
            URI,
        );
    }

    let params = request_params(q.as_deref(), &headers, &body);
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string());
    let listkey = get("listkey").unwrap_or_default();
    let key = (info.org.clone(), listkey.clone());
    if listkey.is_empty() || !api.campaigns.lock().lists.contains_key(&key) {
        return soft_error("2501", "Listkey is empty or invalid.");
    }
    let Some(fields) = get("contactinfo").as_deref().and_then(parse_contact_info) else {
        return soft_error("2001", "Please enter correct XML(or)JSON format.");
    };
    let email = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Contact Email"))
        .and_then(|(_, v)| v.as_str())
        .map(|e| e.trim().to_string())
        .unwrap_or_default();
    if !valid_email(&email) {
        return soft_error("2004", "Invalid contact email address.");
    }
    if is_group_address(&email) {
        return soft_error("2005", "Group email address added.");
    }

    let now = now_time();
    let source = get("source").filter(|s| !s.is_empty());
    let topic_id = get("topic_id").filter(|s| !s.is_empty());
    let mut guard = api.campaigns.lock();
    let st = &mut *guard;
    let Some(list) = st.lists.get_mut(&key) else { return soft_error("2501", "Listkey is empty or invalid.") };
    let i = match list.members.iter().position(|m| m.email.eq_ignore_ascii_case(&email)) {
        Some(i) => {
            let m = &mut list.members[i];
            m.fields.extend(fields);
            m.source = source.or(m.source.take());
            m.topic_id = topic_id.or(m.topic_id.take());
            m.updated = now;
            i
        }
        None => {
            list.members.push(Member { email, fields, source, topic_id, subscribed: now.clone(), updated: now });
            list.members.len() - 1
        }
    };
    if let Err(e) = save_member(&st.conn, &key, &list.members[i]) {
        eprintln!("linkrun sandbox: cannot store a Campaigns subscription: {e}");
        return answer(StatusCode::INTERNAL_SERVER_ERROR, "500", &storage_failed(&e), URI);
    }
    Json(json!({ "message": MSG_SUCCESS, "status": "success", "code": "0", "uri": URI, "version": VERSION }))
        .into_response()
}

/// Writes `member` of list `key` (`(organisation, listkey)`), one row per address.
fn save_member(conn: &Connection, key: &(String, String), m: &Member) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO campaigns_members (org, listkey, email_key, email, fields, source, topic_id, subscribed, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (org, listkey, email_key) DO UPDATE SET email = excluded.email, fields = excluded.fields,
             source = excluded.source, topic_id = excluded.topic_id, updated = excluded.updated",
        params![
            key.0,
            key.1,
            m.email.to_ascii_lowercase(),
            m.email,
            Value::Object(m.fields.clone()).to_string(),
            m.source,
            m.topic_id,
            m.subscribed,
            m.updated
        ],
    )?;
    Ok(())
}

/// The request's parameters: the body's (a form, or leniently a JSON object of strings) first,
/// then the query string's.
fn request_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut params: Vec<(String, String)> = Vec::new();
    if content_type.contains("json") {
        if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) {
            for (k, v) in m {
                match v {
                    Value::String(s) => params.push((k, s)),
                    Value::Object(_) => params.push((k, v.to_string())),
                    Value::Number(n) => params.push((k, n.to_string())),
                    _ => {}
                }
            }
        }
    } else if content_type.is_empty() || content_type.contains("x-www-form-urlencoded") {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    params.extend(url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned());
    params
}

/// Parses `contactinfo`: a JSON object (strings, numbers and booleans as text), else Zoho's
/// `{Field Name:value,Other Field:value}` (no quoting; keys and values may be wrapped in double
/// quotes, which are dropped). `None` when it is neither.
pub(crate) fn parse_contact_info(s: &str) -> Option<Map<String, Value>> {
    let s = s.trim();
    if let Ok(v) = serde_json::from_str::<Value>(s) {
        let Value::Object(m) = v else { return None };
        let mut out = Map::new();
        for (k, v) in m {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                Value::Array(_) | Value::Object(_) => return None,
            };
            out.insert(k.trim().to_string(), Value::String(text));
        }
        return Some(out);
    }
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    let mut out = Map::new();
    if inner.trim().is_empty() {
        return Some(out);
    }
    for part in inner.split(',') {
        let (k, v) = part.split_once(':')?;
        let k = unquote(k.trim());
        if k.is_empty() {
            return None;
        }
        out.insert(k.to_string(), Value::String(unquote(v.trim()).to_string()));
    }
    Some(out)
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s).trim()
}

fn is_group_address(email: &str) -> bool {
    let local = email.split('@').next().unwrap_or("").to_ascii_lowercase();
    GROUP_LOCAL_PARTS.contains(&local.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Knobs;
    use crate::oauth_provider::{ClientConfig, ProviderConfig, serve};

    const PATH: &str = "/api/v1.1/json/listsubscribe";
    const US_LIST: &str = "3zc686ab4cf3324883efe67c4baae87744fd4e7b6d52992ebb11110537a4dfdbf0";
    const IN_LIST: &str = "3z11aa22bb";

    struct T {
        provider: Provider,
        campaigns: Campaigns,
        base: String,
        http: reqwest::Client,
    }

    async fn start_with(faults: Faults) -> T {
        let mut cfg = ProviderConfig::zoho("");
        cfg.clients =
            vec![ClientConfig::new("1000.US", "us_secret", "us"), ClientConfig::new("1000.IN", "in_secret", "in")];
        let provider = Provider::new(cfg);
        let campaigns = Campaigns::new();
        campaigns.add_list("us", US_LIST, "Newsletter");
        campaigns.add_list("in", IN_LIST, "Beta users");
        let router = provider.oauth_router().merge(campaigns.router(provider.clone(), faults));
        let (addr, _server) = serve(router).await.unwrap();
        T { provider, campaigns, base: format!("http://{addr}"), http: reqwest::Client::new() }
    }

    async fn start() -> T {
        start_with(Faults::default()).await
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
    }

    async fn answer(r: reqwest::Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn success() -> Value {
        json!({
            "message": "A confirmation email is sent to the user. User needs to confirm to successfully subscribe.",
            "status": "success",
            "code": "0",
            "uri": "/api/json/listsubscribe",
            "version": "1.1",
        })
    }

    fn error(code: &str, message: &str) -> Value {
        json!({
            "status": "error",
            "code": code,
            "message": message,
            "uri": "/api/json/listsubscribe",
            "version": "1.1",
        })
    }

    impl T {
        async fn token(&self, client: &str, scopes: &[&str]) -> String {
            let code = self.provider.mint_self_client_code(client, scopes);
            let secret = if client == "1000.US" { "us_secret" } else { "in_secret" };
            let body = form(&[
                ("grant_type", "authorization_code"),
                ("client_id", client),
                ("client_secret", secret),
                ("code", &code),
            ]);
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

        /// A form-encoded POST.
        async fn subscribe(&self, token: Option<&str>, pairs: &[(&str, &str)]) -> (u16, Value) {
            let mut rb = self
                .http
                .post(format!("{}{PATH}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(pairs));
            if let Some(t) = token {
                rb = rb.header("authorization", format!("Zoho-oauthtoken {t}"));
            }
            answer(rb.send().await.unwrap()).await
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn subscribe_in_zoho_format_and_json_and_update() {
        let t = start().await;
        let tok = t.token("1000.US", &["ZohoCampaigns.contact.UPDATE"]).await;
        let info = "{First Name:mac,Last Name:Last Name,Contact Email:jai@zoho.com}";
        let (status, v) = t
            .subscribe(
                Some(&tok),
                &[("listkey", US_LIST), ("resfmt", "JSON"), ("contactinfo", info), ("source", "web")],
            )
            .await;
        assert_eq!((status, v), (200, success()));
        let members = t.campaigns.members("us", US_LIST);
        assert_eq!(members.len(), 1);
        assert_eq!(members[0]["email"], "jai@zoho.com");
        assert_eq!(
            members[0]["fields"],
            json!({ "First Name": "mac", "Last Name": "Last Name", "Contact Email": "jai@zoho.com" })
        );
        assert_eq!(members[0]["source"], "web");
        assert_eq!(members[0]["status"], "pending");

        // Real JSON, the same address in another case: one member, fields updated.
        let info = r#"{"First Name":"Mac","Contact Email":"JAI@zoho.com","Phone":5550100}"#;
        let (status, v) = t.subscribe(Some(&tok), &[("listkey", US_LIST), ("contactinfo", info)]).await;
        assert_eq!((status, v), (200, success()));
        let members = t.campaigns.members("us", US_LIST);
        assert_eq!(members.len(), 1);
        assert_eq!(members[0]["fields"]["First Name"], "Mac");
        assert_eq!(members[0]["fields"]["Phone"], "5550100");
        assert_eq!(members[0]["fields"]["Last Name"], "Last Name");
        assert_eq!(members[0]["source"], "web");

        // Parameters in the query string (as many clients send them), with an empty body.
        let q = form(&[("listkey", US_LIST), ("resfmt", "JSON"), ("contactinfo", "{Contact Email:bob@example.org}")]);
        let r = t
            .http
            .post(format!("{}{PATH}?{q}", t.base))
            .header("authorization", format!("Zoho-oauthtoken {tok}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer(r).await, (200, success()));
        assert_eq!(t.campaigns.members("us", US_LIST).len(), 2);
        assert_eq!(t.campaigns.list_name("us", US_LIST).as_deref(), Some("Newsletter"));

        // ALL works too.
        let all = t.token("1000.US", &["ZohoCampaigns.contact.ALL"]).await;
        let (status, v) = t
            .subscribe(Some(&all), &[("listkey", US_LIST), ("contactinfo", "{Contact Email:carol@example.net}")])
            .await;
        assert_eq!((status, v), (200, success()));
        assert_eq!(t.campaigns.members("us", US_LIST).len(), 3);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn errors_come_with_http_200_and_a_code() {
        let t = start().await;
        let tok = t.token("1000.US", &["ZohoCampaigns.contact.UPDATE"]).await;
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[("contactinfo", "{Contact Email:a@example.com}")], "2501", "Listkey is empty or invalid."),
            (
                &[("listkey", ""), ("contactinfo", "{Contact Email:a@example.com}")],
                "2501",
                "Listkey is empty or invalid.",
            ),
            (
                &[("listkey", "nope"), ("contactinfo", "{Contact Email:a@example.com}")],
                "2501",
                "Listkey is empty or invalid.",
            ),
            (
                &[("listkey", IN_LIST), ("contactinfo", "{Contact Email:a@example.com}")],
                "2501",
                "Listkey is empty or invalid.",
            ),
            (&[("listkey", US_LIST)], "2001", "Please enter correct XML(or)JSON format."),
            (
                &[("listkey", US_LIST), ("contactinfo", "Contact Email:a@example.com")],
                "2001",
                "Please enter correct XML(or)JSON format.",
            ),
            (
                &[("listkey", US_LIST), ("contactinfo", "{Contact Email}")],
                "2001",
                "Please enter correct XML(or)JSON format.",
            ),
            (&[("listkey", US_LIST), ("contactinfo", "[1,2]")], "2001", "Please enter correct XML(or)JSON format."),
            (&[("listkey", US_LIST), ("contactinfo", "{First Name:mac}")], "2004", "Invalid contact email address."),
            (
                &[("listkey", US_LIST), ("contactinfo", "{Contact Email:not-an-email}")],
                "2004",
                "Invalid contact email address.",
            ),
            (&[("listkey", US_LIST), ("contactinfo", "{Contact Email:a@b}")], "2004", "Invalid contact email address."),
            (
                &[("listkey", US_LIST), ("contactinfo", "{Contact Email:info@example.com}")],
                "2005",
                "Group email address added.",
            ),
            (
                &[("listkey", US_LIST), ("contactinfo", "{Contact Email:Sales@example.com}")],
                "2005",
                "Group email address added.",
            ),
            (
                &[("listkey", US_LIST), ("contactinfo", r#"{"Contact Email":"admin@example.com"}"#)],
                "2005",
                "Group email address added.",
            ),
        ];
        for (pairs, code, message) in cases {
            let (status, v) = t.subscribe(Some(&tok), pairs).await;
            assert_eq!((status, v), (200, error(code, message)), "{pairs:?}");
        }
        assert!(t.campaigns.members("us", US_LIST).is_empty());
        assert!(t.campaigns.members("in", IN_LIST).is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn auth_scope_and_org_isolation() {
        let t = start().await;
        let ok = [("listkey", US_LIST), ("contactinfo", "{Contact Email:ada@example.com}")];
        let (status, v) = t.subscribe(None, &ok).await;
        assert_eq!((status, v["status"].as_str(), v["code"].as_str()), (401, Some("error"), Some("1007")));
        let (status, v) = t.subscribe(Some("1000.fake.token"), &ok).await;
        assert_eq!((status, v), (401, error("1007", "Invalid OAuth token.")));
        let read = t.token("1000.US", &["ZohoCampaigns.contact.READ", "Desk.tickets.ALL"]).await;
        let (status, v) = t.subscribe(Some(&read), &ok).await;
        assert_eq!((status, v["code"].as_str()), (401, Some("1008")));

        // India's token cannot use the US list, and its own list is separate.
        let inn = t.token("1000.IN", &["ZohoCampaigns.contact.CREATE-UPDATE"]).await;
        let (status, v) = t.subscribe(Some(&inn), &ok).await;
        assert_eq!((status, v), (200, error("2501", "Listkey is empty or invalid.")));
        let (status, v) =
            t.subscribe(Some(&inn), &[("listkey", IN_LIST), ("contactinfo", "{Contact Email:ada@example.com}")]).await;
        assert_eq!((status, v), (200, success()));
        assert!(t.campaigns.members("us", US_LIST).is_empty());
        assert_eq!(t.campaigns.members("in", IN_LIST).len(), 1);
        assert!(t.campaigns.members("us", IN_LIST).is_empty());

        let us = t.token("1000.US", &["ZohoCampaigns.contact.UPDATE"]).await;
        t.provider.expire_access_tokens();
        let (status, v) = t.subscribe(Some(&us), &ok).await;
        assert_eq!((status, v), (401, error("1007", "Invalid OAuth token.")));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn methods_paths_and_faults() {
        let faults = Faults::new(Knobs { rate_limit_per_minute: Some(1), ..Default::default() });
        let t = start_with(faults.clone()).await;
        let tok = t.token("1000.US", &["ZohoCampaigns.contact.UPDATE"]).await;
        let r = t.http.get(format!("{}{PATH}", t.base)).send().await.unwrap();
        let (status, v) = answer(r).await;
        assert_eq!((status, v["code"].as_str()), (405, Some("405")));
        let r = t.http.post(format!("{}/api/v1.1/json/nothing", t.base)).send().await.unwrap();
        let (status, v) = answer(r).await;
        assert_eq!((status, v["uri"].as_str()), (404, Some("/api/v1.1/json/nothing")));

        let ok = [("listkey", US_LIST), ("contactinfo", "{Contact Email:ada@example.com}")];
        assert_eq!(t.subscribe(Some(&tok), &ok).await, (200, success()));
        let r = t
            .http
            .post(format!("{}{PATH}", t.base))
            .header("authorization", format!("Zoho-oauthtoken {tok}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&ok))
            .send()
            .await
            .unwrap();
        assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
        assert_eq!(answer(r).await, (429, error("2101", "Please retry after sometime.")));

        faults.set(Knobs { failure_rate: 1.0, ..Default::default() });
        let (status, v) = t.subscribe(Some(&tok), &ok).await;
        assert_eq!((status, v), (500, error("500", "Internal server error. Please try again later.")));
        assert_eq!(t.campaigns.members("us", US_LIST).len(), 1);
    }

    #[test]
    fn contact_info_formats() {
        let m = parse_contact_info("{First Name:mac,Last Name:Last Name,Contact Email:jai@zoho.com}").unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"First Name":"mac","Last Name":"Last Name","Contact Email":"jai@zoho.com"})
        );
        let m = parse_contact_info(r#" { "Contact Email" : "a@b.co" , First Name:"Ada" } "#).unwrap();
        assert_eq!(Value::Object(m), json!({"Contact Email":"a@b.co","First Name":"Ada"}));
        assert_eq!(parse_contact_info("{}"), Some(Map::new()));
        assert_eq!(parse_contact_info(r#"{"a":{"b":1}}"#), None);
        assert_eq!(parse_contact_info("{:x}"), None);
        assert_eq!(parse_contact_info("nope"), None);
        assert!(is_group_address("INFO@example.com") && !is_group_address("information@example.com"));
    }
}
