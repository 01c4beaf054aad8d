//! The two APIs a sync side can be, behind [`Side`]: a ServiceNow table (Table API: changes by
//! `sys_updated_on>=` ordered by it, one record per write) and a Zoho CRM module (REST v7:
//! changes by `If-Modified-Since` sorted by `Modified_Time`, 100 records per write call with a
//! result per record). Every call goes through the connection (`Invoker`): credentials, refresh,
//! retries and the rate budget are the connection's, exactly as a script's.

use serde_json::{Map, Value, json};

use crate::invoke::{Invoker, Parameters, RequestRetry, ScriptRequest};
use crate::link_name::LinkName;

use super::def::{SideDef, SideKind};

/// A record as read: its id, its change stamp (the side's checkpoint text) and its fields.
#[derive(Debug, Clone)]
pub struct Rec {
    /// The record's id on its side.
    pub id: String,
    /// `sys_updated_on` or `Modified_Time`, as the API gives it.
    pub modified: String,
    /// The fields read (values as the API gives them; references as their value).
    pub fields: Map<String, Value>,
    /// Display values (a reference's name, a choice's label), when the side reads them.
    pub display: Map<String, Value>,
}

/// One page of a change feed.
#[derive(Debug, Default)]
pub struct Page {
    /// The records, oldest change first.
    pub records: Vec<Rec>,
    /// Whether more follow.
    pub more: bool,
    /// The server's clock when it answered (its `Date` header, seconds since the epoch).
    pub server_secs: Option<i64>,
}

/// A checkpoint whose second had ended on the server before the feed was read to its end
/// carries this suffix: the next run reads strictly after it instead of reading that second
/// again (no change can still get that stamp).
pub const SECOND_DONE: char = '>';

/// A checkpoint's stamp and whether its second is done (see [`SECOND_DONE`]).
pub fn checkpoint_parts(since: &str) -> (&str, bool) {
    match since.strip_suffix(SECOND_DONE) {
        Some(s) => (s, true),
        None => (since, false),
    }
}

/// A per-record write result: the record's id, or the API's message.
pub type WriteResult = Result<String, String>;

/// One side's API.
pub trait Side {
    /// The next page of records changed at or after `since` (`cursor`: the paging state, `None`
    /// at the start).
    fn changed(&mut self, since: Option<&str>, cursor: &mut Option<String>) -> Result<Page, String>;
    /// These records (at most [`Side::batch`] ids).
    fn get(&mut self, ids: &[String]) -> Result<Vec<Rec>, String>;
    /// The records whose `field` is one of `values` (the match key; at most [`Side::batch`]).
    fn find(&mut self, field: &str, values: &[String]) -> Result<Vec<Rec>, String>;
    /// Creates these records (at most [`Side::batch`]); `key` is the match key's field, which a
    /// CRM side upserts on, so that a create sent twice (a crash before its answer was kept)
    /// finds the first.
    fn create(&mut self, recs: &[Map<String, Value>], key: Option<&str>) -> Result<Vec<WriteResult>, String>;
    /// Updates these records.
    fn update(&mut self, recs: &[(String, Map<String, Value>)]) -> Result<Vec<WriteResult>, String>;
    /// The records deleted at or after `since` (all when none): (id, when), oldest first.
    fn deleted(&mut self, since: Option<&str>) -> Result<Vec<(String, String)>, String>;
    /// Deletes these records (at most [`Side::batch`]); one already gone counts as deleted.
    fn delete(&mut self, ids: &[String]) -> Result<Vec<WriteResult>, String>;
    /// Records per write call (and per read by ids).
    fn batch(&self) -> usize;
    /// API calls made so far (every attempt a retry made counts).
    fn calls(&self) -> u64;
    /// The failure that stopped the run, when it was the connection's or the vault's (it keeps
    /// its exit code).
    fn take_fatal(&mut self) -> Option<crate::Error>;
}

/// Sends requests through one connection, counting them.
struct Api<'a> {
    invoker: &'a Invoker,
    runtime: &'a tokio::runtime::Runtime,
    link: LinkName,
    calls: u64,
    /// POST is retried too (CRM: creates are upserts on the match key). A ServiceNow POST is
    /// retried only after a 429, which says it was not taken. Reads, updates and deletes set
    /// the same state however often they are sent, and are retried.
    retry_post: bool,
    fatal: Option<crate::Error>,
    /// The `Date` of the last answer, seconds since the epoch.
    last_date: Option<i64>,
}

impl Api<'_> {
    /// Sends a request; `Err` for a transport or connection failure. Updates (PUT, PATCH) set
    /// values and are retried; see `retry_post` for creates.
    fn send(
        &mut self,
        method: &str,
        url: &str,
        query: Vec<(&str, String)>,
        body: Option<Value>,
        headers: Vec<(String, String)>,
    ) -> Result<(u16, Value), String> {
        let mut params = Map::new();
        for (k, v) in query {
            params.insert(k.to_string(), Value::String(v));
        }
        let body = body.map(|b| match b {
            Value::Object(m) => Parameters::Map(m),
            other => Parameters::Text(other.to_string()),
        });
        let req = ScriptRequest {
            url: url.to_string(),
            method: Some(method.to_string()),
            parameters: (!params.is_empty()).then_some(Parameters::Map(params)),
            content_type: body.as_ref().map(|_| "application/json".to_string()),
            body,
            headers,
            connection: Some(self.link.clone()),
            timeout: None,
            retry: Some(RequestRetry::Over(crate::http::retry::RetryDef {
                methods: Some(
                    ["GET", "PUT", "PATCH", "DELETE"]
                        .into_iter()
                        .chain(self.retry_post.then_some("POST"))
                        .map(str::to_string)
                        .collect(),
                ),
                ..Default::default()
            })),
        };
        let timeout = std::time::Duration::from_secs(120);
        let r = self.runtime.block_on(self.invoker.send(&req, timeout));
        match r {
            Ok(resp) => {
                self.calls += u64::from(resp.attempts.made.max(1));
                self.last_date = resp
                    .headers
                    .iter()
                    .find(|(k, _)| k == "date")
                    .and_then(|(_, v)| chrono::DateTime::parse_from_rfc2822(v).ok())
                    .map(|t| t.timestamp());
                let v = if resp.body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&resp.body).unwrap_or(Value::Null)
                };
                Ok((resp.status, v))
            }
            Err(crate::auth::live::Failure::Fatal(e)) => {
                let m = e.to_string();
                self.fatal = Some(e);
                Err(m)
            }
            Err(crate::auth::live::Failure::Invoke(e)) => {
                self.calls += u64::from(e.attempts.made.max(1));
                if e.kind == crate::http::error::ErrorKind::Connection {
                    self.fatal = Some(crate::Error::SyncConnection(e.message.clone()));
                }
                Err(e.message)
            }
        }
    }
}

/// Opens a side.
pub fn open<'a>(
    def: &SideDef,
    fields: Vec<String>,
    display: bool,
    invoker: &'a Invoker,
    runtime: &'a tokio::runtime::Runtime,
    page_size: usize,
) -> Result<Box<dyn Side + 'a>, String> {
    let link = LinkName::parse(&def.connection).map_err(|rule| format!("connection `{}`: {rule}", def.connection))?;
    let api =
        Api { invoker, runtime, link, calls: 0, retry_post: def.kind == SideKind::Crm, fatal: None, last_date: None };
    Ok(match def.kind {
        SideKind::Servicenow => Box::new(ServiceNow {
            api,
            table: def.table.clone().unwrap_or_default(),
            query: def.query.clone().filter(|q| !q.trim().is_empty()),
            fields,
            page_size,
            display,
        }),
        SideKind::Crm => {
            Box::new(Crm { api, module: def.module.clone().unwrap_or_default(), fields, page_size: page_size.min(200) })
        }
    })
}

/// The API's message in an error answer.
fn message(status: u16, v: &Value) -> String {
    let m = v["error"]["message"].as_str().or(v["message"].as_str()).or(v["data"][0]["message"].as_str());
    match m {
        Some(m) => format!("HTTP {status}: {m}"),
        None => format!("HTTP {status}"),
    }
}

/// A value as text (references `{value}` / `{display_value}` as their value).
fn plain(v: &Value) -> Value {
    match v {
        Value::Object(m) => m.get("value").or(m.get("id")).cloned().unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// A record out of an API's JSON: its id and change stamp fields, and the mapped fields.
fn record(r: &Value, id: &str, modified: &str, fields: &[String]) -> Rec {
    let id = plain(&r[id]);
    Rec {
        id: id.as_str().map(str::to_string).unwrap_or_else(|| id.to_string()),
        modified: plain(&r[modified]).as_str().unwrap_or_default().to_string(),
        fields: fields.iter().map(|f| (f.clone(), plain(&r[f]))).collect(),
        display: fields
            .iter()
            .filter_map(|f| r[f].get("display_value").or(r[f].get("name")).map(|d| (f.clone(), d.clone())))
            .collect(),
    }
}

// ---- ServiceNow ---------------------------------------------------------------------------

struct ServiceNow<'a> {
    api: Api<'a>,
    table: String,
    query: Option<String>,
    fields: Vec<String>,
    page_size: usize,
    /// Read display values too (`sysparm_display_value=all`).
    display: bool,
}

impl ServiceNow<'_> {
    fn path(&self) -> String {
        format!("/api/now/table/{}", self.table)
    }

    fn field_list(&self) -> String {
        let mut f = vec!["sys_id".to_string(), "sys_updated_on".to_string()];
        f.extend(self.fields.iter().cloned());
        f.join(",")
    }

    /// Records matching `query` (ANDed with the side's own query), at most `limit`.
    fn list(&mut self, query: String, limit: usize) -> Result<(Vec<Rec>, bool), String> {
        let q = match &self.query {
            Some(base) => format!("{base}^{query}"),
            None => query,
        };
        self.list_raw(q, limit)
    }

    /// Records matching `q` as given, at most `limit`.
    fn list_raw(&mut self, q: String, limit: usize) -> Result<(Vec<Rec>, bool), String> {
        let params = vec![
            ("sysparm_query", q),
            ("sysparm_fields", self.field_list()),
            ("sysparm_limit", limit.to_string()),
            ("sysparm_exclude_reference_link", "true".into()),
            ("sysparm_no_count", "true".into()),
        ]
        .into_iter()
        .chain(self.display.then(|| ("sysparm_display_value", "all".to_string())))
        .collect();
        let (status, v) = self.api.send("GET", &self.path(), params, None, Vec::new())?;
        if status != 200 {
            return Err(message(status, &v));
        }
        let rows = v["result"].as_array().cloned().unwrap_or_default();
        let more = rows.len() == limit;
        Ok((rows.iter().map(|r| self.rec(r)).collect(), more))
    }

    fn rec(&self, r: &Value) -> Rec {
        record(r, "sys_id", "sys_updated_on", &self.fields)
    }

    fn answer(status: u16, v: &Value) -> WriteResult {
        if (200..300).contains(&status) {
            v["result"]["sys_id"].as_str().map(str::to_string).ok_or_else(|| format!("HTTP {status} without a sys_id"))
        } else {
            Err(message(status, v))
        }
    }
}

/// Escapes a value for an encoded query (`^` doubled).
fn sn_value(v: &str) -> String {
    v.replace('^', "^^")
}

impl Side for ServiceNow<'_> {
    fn changed(&mut self, since: Option<&str>, cursor: &mut Option<String>) -> Result<Page, String> {
        // Oldest change first, ties by sys_id; each page starts after the last record of the one
        // before (keyset, not offsets: a record changed meanwhile moves to the end of the feed
        // and shifts nothing). The checkpoint's own second is read again (`>=`): both APIs stamp
        // changes to the second.
        let order = "ORDERBYsys_updated_on^ORDERBYsys_id";
        let base = self.query.clone().map(|q| format!("{q}^")).unwrap_or_default();
        let q = match (cursor.as_deref().and_then(|c| c.split_once('|')), since) {
            (Some((stamp, id)), _) => {
                let (stamp, id) = (sn_value(stamp), sn_value(id));
                format!("{base}sys_updated_on={stamp}^sys_id>{id}^NQ{base}sys_updated_on>{stamp}^{order}")
            }
            (None, Some(s)) => {
                let (stamp, done) = checkpoint_parts(s);
                let op = if done { ">" } else { ">=" };
                format!("{base}sys_updated_on{op}{}^{order}", sn_value(stamp))
            }
            (None, None) => format!("{base}{order}"),
        };
        let (records, more) = self.list_raw(q, self.page_size)?;
        if let Some(last) = records.last() {
            *cursor = Some(format!("{}|{}", last.modified, last.id));
        }
        Ok(Page { records, more, server_secs: self.api.last_date })
    }

    fn get(&mut self, ids: &[String]) -> Result<Vec<Rec>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.list(format!("sys_idIN{}", ids.join(",")), ids.len())?.0)
    }

    fn find(&mut self, field: &str, values: &[String]) -> Result<Vec<Rec>, String> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = values.iter().map(|v| sn_value(&v.replace(',', " "))).collect();
        Ok(self.list(format!("{field}IN{}", list.join(",")), values.len() * 2)?.0)
    }

    fn create(&mut self, recs: &[Map<String, Value>], _key: Option<&str>) -> Result<Vec<WriteResult>, String> {
        let mut out = Vec::new();
        for r in recs {
            let (status, v) =
                self.api.send("POST", &self.path(), Vec::new(), Some(Value::Object(r.clone())), Vec::new())?;
            out.push(Self::answer(status, &v));
        }
        Ok(out)
    }

    fn update(&mut self, recs: &[(String, Map<String, Value>)]) -> Result<Vec<WriteResult>, String> {
        let mut out = Vec::new();
        for (id, r) in recs {
            let path = format!("{}/{id}", self.path());
            let (status, v) = self.api.send("PATCH", &path, Vec::new(), Some(Value::Object(r.clone())), Vec::new())?;
            out.push(match status {
                404 => Err(gone(id)),
                _ => Self::answer(status, &v),
            });
        }
        Ok(out)
    }

    fn deleted(&mut self, since: Option<&str>) -> Result<Vec<(String, String)>, String> {
        // The delete audit, oldest first, in keyset pages (after the last row's stamp and sys_id,
        // as the change feed: a row added meanwhile shifts nothing).
        let table = format!("tablename={}", sn_value(&self.table));
        let order = "ORDERBYsys_created_on^ORDERBYsys_id";
        let mut out = Vec::new();
        let mut after: Option<(String, String)> = None;
        loop {
            let q = match (&after, since) {
                (Some((stamp, id)), _) => {
                    let (stamp, id) = (sn_value(stamp), sn_value(id));
                    format!("{table}^sys_created_on={stamp}^sys_id>{id}^NQ{table}^sys_created_on>{stamp}^{order}")
                }
                (None, Some(s)) => format!("{table}^sys_created_on>={}^{order}", sn_value(s)),
                (None, None) => format!("{table}^{order}"),
            };
            let params = vec![
                ("sysparm_query", q),
                ("sysparm_fields", "sys_id,documentkey,sys_created_on".to_string()),
                ("sysparm_limit", self.page_size.to_string()),
                ("sysparm_no_count", "true".into()),
            ];
            let (status, v) = self.api.send("GET", "/api/now/table/sys_audit_delete", params, None, Vec::new())?;
            if status != 200 {
                return Err(message(status, &v));
            }
            let rows = v["result"].as_array().cloned().unwrap_or_default();
            let n = rows.len();
            for r in &rows {
                out.push((text_of(&r["documentkey"]), text_of(&r["sys_created_on"])));
            }
            match rows.last() {
                Some(last) if n == self.page_size => {
                    after = Some((text_of(&last["sys_created_on"]), text_of(&last["sys_id"])));
                }
                _ => return Ok(out),
            }
        }
    }

    fn delete(&mut self, ids: &[String]) -> Result<Vec<WriteResult>, String> {
        let mut out = Vec::new();
        for id in ids {
            let path = format!("{}/{id}", self.path());
            let (status, v) = self.api.send("DELETE", &path, Vec::new(), None, Vec::new())?;
            out.push(match status {
                200..=299 | 404 => Ok(id.clone()),
                _ => Err(message(status, &v)),
            });
        }
        Ok(out)
    }

    fn batch(&self) -> usize {
        100
    }

    fn calls(&self) -> u64 {
        self.api.calls
    }

    fn take_fatal(&mut self) -> Option<crate::Error> {
        self.api.fatal.take()
    }
}

/// The message of an update whose target record no longer exists.
fn gone(id: &str) -> String {
    format!(
        "its pair {id} no longer exists (deleted there): with `deletes = \"ignore\"` it is not carried over; set `deletes` to `propagate` or `unlink`"
    )
}

/// A JSON value as plain text (a reference as its value).
fn text_of(v: &Value) -> String {
    match plain(v) {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---- Zoho CRM -----------------------------------------------------------------------------

struct Crm<'a> {
    api: Api<'a>,
    module: String,
    fields: Vec<String>,
    page_size: usize,
}

impl Crm<'_> {
    fn path(&self) -> String {
        format!("/crm/v7/{}", self.module)
    }

    fn field_list(&self) -> String {
        let mut f = self.fields.clone();
        f.push("Modified_Time".into());
        f.join(",")
    }

    fn rec(&self, r: &Value) -> Rec {
        record(r, "id", "Modified_Time", &self.fields)
    }

    fn rows(&self, status: u16, v: &Value) -> Result<Vec<Rec>, String> {
        match status {
            200 => Ok(v["data"].as_array().map(|a| a.iter().map(|r| self.rec(r)).collect()).unwrap_or_default()),
            204 | 304 => Ok(Vec::new()),
            _ => Err(message(status, v)),
        }
    }

    fn write(
        &mut self,
        method: &str,
        path: String,
        data: Vec<Value>,
        extra: Map<String, Value>,
    ) -> Result<Vec<WriteResult>, String> {
        let n = data.len();
        let mut body = extra;
        body.insert("data".into(), Value::Array(data));
        // Workflow rules are not fired by the sync's own writes (no echo through a webhook).
        body.insert("trigger".into(), json!([]));
        let (status, v) = self.api.send(method, &path, Vec::new(), Some(Value::Object(body)), Vec::new())?;
        let Some(items) = v["data"].as_array().filter(|a| a.len() == n) else {
            return Err(message(status, &v));
        };
        Ok(items
            .iter()
            .map(|it| {
                if it["status"] == "success" {
                    it["details"]["id"]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| "an answer without an id".to_string())
                } else {
                    let detail = if it["details"].as_object().is_some_and(|d| !d.is_empty()) {
                        format!(" {}", it["details"])
                    } else {
                        String::new()
                    };
                    Err(format!(
                        "{}: {}{detail}",
                        it["code"].as_str().unwrap_or("ERROR"),
                        it["message"].as_str().unwrap_or("")
                    ))
                }
            })
            .collect())
    }
}

/// `Modified_Time` one second earlier (CRM's `If-Modified-Since` is strictly after a whole
/// second, so the checkpoint's own second is read again).
fn second_before(stamp: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(stamp) {
        Ok(t) => (t - chrono::Duration::seconds(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
        Err(_) => stamp.to_string(),
    }
}

impl Side for Crm<'_> {
    fn changed(&mut self, since: Option<&str>, cursor: &mut Option<String>) -> Result<Page, String> {
        let mut params = vec![
            ("fields", self.field_list()),
            ("sort_by", "Modified_Time".to_string()),
            ("sort_order", "asc".to_string()),
            ("per_page", self.page_size.to_string()),
        ];
        if let Some(token) = cursor.as_deref() {
            params.push(("page_token", token.to_string()));
        }
        let headers = since
            .map(|s| {
                let (stamp, done) = checkpoint_parts(s);
                let from = if done { stamp.to_string() } else { second_before(stamp) };
                vec![("If-Modified-Since".to_string(), from)]
            })
            .unwrap_or_default();
        let (status, v) = self.api.send("GET", &self.path(), params, None, headers)?;
        let records = self.rows(status, &v)?;
        let more = v["info"]["more_records"].as_bool().unwrap_or(false);
        *cursor = v["info"]["next_page_token"].as_str().map(str::to_string);
        Ok(Page { records, more: more && cursor.is_some(), server_secs: self.api.last_date })
    }

    fn get(&mut self, ids: &[String]) -> Result<Vec<Rec>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let params = vec![("ids", ids.join(",")), ("fields", self.field_list())];
        let (status, v) = self.api.send("GET", &self.path(), params, None, Vec::new())?;
        self.rows(status, &v)
    }

    fn find(&mut self, field: &str, values: &[String]) -> Result<Vec<Rec>, String> {
        let mut out = Vec::new();
        // Search takes at most 10 criteria per call.
        for chunk in values.chunks(10) {
            let criteria: Vec<String> = chunk
                .iter()
                .map(|v| {
                    format!(
                        "({field}:equals:{})",
                        v.replace('\\', "\\\\").replace('(', "\\(").replace(')', "\\)").replace(',', "\\,")
                    )
                })
                .collect();
            let params = vec![("criteria", format!("({})", criteria.join("or"))), ("fields", self.field_list())];
            let path = format!("{}/search", self.path());
            let (status, v) = self.api.send("GET", &path, params, None, Vec::new())?;
            out.extend(self.rows(status, &v)?);
        }
        Ok(out)
    }

    fn create(&mut self, recs: &[Map<String, Value>], key: Option<&str>) -> Result<Vec<WriteResult>, String> {
        let data = recs.iter().cloned().map(Value::Object).collect();
        let mut extra = Map::new();
        if let Some(k) = key {
            extra.insert("duplicate_check_fields".into(), json!([k]));
        }
        let path = format!("{}/upsert", self.path());
        self.write("POST", path, data, extra)
    }

    fn update(&mut self, recs: &[(String, Map<String, Value>)]) -> Result<Vec<WriteResult>, String> {
        let data = recs
            .iter()
            .map(|(id, r)| {
                let mut m = r.clone();
                m.insert("id".into(), Value::String(id.clone()));
                Value::Object(m)
            })
            .collect();
        let ids: Vec<&String> = recs.iter().map(|(id, _)| id).collect();
        let results = self.write("PUT", self.path(), data, Map::new())?;
        // An id CRM no longer knows (deleted there) is `INVALID_DATA` for the item.
        Ok(results
            .into_iter()
            .zip(ids)
            .map(|(r, id)| match r {
                Err(m) if m.starts_with("INVALID_DATA") && m.contains("\"id\"") => Err(gone(id)),
                other => other,
            })
            .collect())
    }

    fn deleted(&mut self, since: Option<&str>) -> Result<Vec<(String, String)>, String> {
        // Newest first: pages until one older than `since`.
        let since_secs = since.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).map(|t| t.timestamp());
        let mut out = Vec::new();
        for page in 1.. {
            let params = vec![("type", "all".to_string()), ("page", page.to_string()), ("per_page", "200".to_string())];
            let path = format!("{}/deleted", self.path());
            let (status, v) = self.api.send("GET", &path, params, None, Vec::new())?;
            if status == 204 {
                break;
            }
            if status != 200 {
                return Err(message(status, &v));
            }
            let mut older = false;
            for r in v["data"].as_array().into_iter().flatten() {
                let when = text_of(&r["deleted_time"]);
                let secs = chrono::DateTime::parse_from_rfc3339(&when).ok().map(|t| t.timestamp());
                if let (Some(s), Some(w)) = (since_secs, secs)
                    && w < s
                {
                    older = true;
                    break;
                }
                out.push((text_of(&r["id"]), when));
            }
            if older || !v["info"]["more_records"].as_bool().unwrap_or(false) {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }

    fn delete(&mut self, ids: &[String]) -> Result<Vec<WriteResult>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let params = vec![("ids", ids.join(","))];
        let (status, v) = self.api.send("DELETE", &self.path(), params, None, Vec::new())?;
        let Some(items) = v["data"].as_array().filter(|a| a.len() == ids.len()) else {
            return Err(message(status, &v));
        };
        Ok(ids
            .iter()
            .zip(items)
            .map(|(id, it)| {
                if it["status"] == "success" {
                    Ok(id.clone())
                } else {
                    Err(format!("{}: {}", it["code"].as_str().unwrap_or("ERROR"), it["message"].as_str().unwrap_or("")))
                }
            })
            .collect())
    }

    fn batch(&self) -> usize {
        100
    }

    fn calls(&self) -> u64 {
        self.api.calls
    }

    fn take_fatal(&mut self) -> Option<crate::Error> {
        self.api.fatal.take()
    }
}
