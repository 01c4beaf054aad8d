//! The events the sandbox sends, so event-driven integrations run offline:
//!
//! - **Zoho CRM workflow webhooks**: a rule per organisation, module and event (`create`,
//!   `edit`) POSTs the record's fields — all of them, or the module parameters the rule names
//!   (`param name → field API name`) — plus the rule's custom parameters, as a form (Zoho's
//!   "Form-Data") or as JSON ("Raw"), with the rule's headers, to its URL, right after the write
//!   through the API commits, as a workflow rule on create/edit with a webhook action does.
//! - **ServiceNow outbound REST messages**: a rule per table and event (`insert`, `update`) POSTs
//!   the record as JSON, with Basic auth when the rule has a user, as a business rule does.
//! - **Telephony**: `POST /_sandbox/calls` `{"from", "to", "talk_s"}` sends `ringing`, `answered`
//!   and `ended` events (with the caller's number and, from `answered` on, a recording URL) one
//!   after another to the configured URL and answers with what each got back and how long it
//!   took (the `ringing` answer is the screen pop).
//!
//! Control: `POST /_sandbox/events/crm`, `/_sandbox/events/servicenow` and
//! `/_sandbox/events/calls` add a rule (`DELETE` on the same path removes them all);
//! `GET /_sandbox/events` lists the rules and the last 1,000 deliveries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::zoho_crm::Crm;

/// Deliveries kept in the log.
const MAX_LOG: usize = 1_000;

/// A CRM workflow rule with a webhook action.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrmRule {
    /// The organisation (`us` is Org A, `in` Org B).
    #[serde(default = "default_org")]
    pub org: String,
    /// The module (`Leads`, `Contacts`, ...).
    pub module: String,
    /// `create`, `edit` (both by default).
    #[serde(default = "default_crm_events")]
    pub events: Vec<String>,
    /// Where the webhook goes.
    pub url: String,
    /// `form_data` (default) or `json`.
    #[serde(default = "default_body")]
    pub body: String,
    /// Module parameters: name → field API name (`id` is the record id); none: every field.
    #[serde(default)]
    pub module_params: BTreeMap<String, String>,
    /// Custom parameters, sent as they are.
    #[serde(default)]
    pub custom_params: BTreeMap<String, String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A ServiceNow outbound REST message on table changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnRule {
    /// The table.
    pub table: String,
    /// `insert`, `update` (both by default).
    #[serde(default = "default_sn_events")]
    pub events: Vec<String>,
    /// Where the message goes.
    pub url: String,
    /// Basic auth user (none: no auth).
    #[serde(default)]
    pub username: Option<String>,
    /// Basic auth password.
    #[serde(default)]
    pub password: Option<String>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// Where call events go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CallTarget {
    /// The webhook URL.
    pub url: String,
    /// Extra headers (a webhook key, say).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_org() -> String {
    "us".into()
}
fn default_crm_events() -> Vec<String> {
    vec!["create".into(), "edit".into()]
}
fn default_sn_events() -> Vec<String> {
    vec!["insert".into(), "update".into()]
}
fn default_body() -> String {
    "form_data".into()
}

/// One delivery, as the log keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// `crm`, `servicenow`, or the call event (`ringing`, ...).
    pub kind: String,
    /// Where it went.
    pub url: String,
    /// The status that came back (none: no answer).
    pub status: Option<u16>,
    /// How long the answer took.
    pub ms: f64,
    /// The answer's body (at most 4 KiB).
    pub answer: String,
}

#[derive(Default)]
struct State_ {
    crm: Vec<CrmRule>,
    servicenow: Vec<SnRule>,
    calls: Option<CallTarget>,
    log: Vec<Delivery>,
    next_call: u64,
}

/// The event senders.
#[derive(Clone)]
pub struct Events {
    state: Arc<Mutex<State_>>,
    crm: Crm,
    client: reqwest::Client,
}

impl Events {
    /// Senders for this CRM's records.
    pub fn new(crm: Crm) -> Events {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .no_proxy()
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Events { state: Arc::default(), crm, client }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a CRM workflow webhook rule.
    pub fn add_crm(&self, r: CrmRule) {
        self.lock().crm.push(r);
    }

    /// Adds a ServiceNow outbound message rule.
    pub fn add_servicenow(&self, r: SnRule) {
        self.lock().servicenow.push(r);
    }

    /// Sets where call events go.
    pub fn set_calls(&self, t: CallTarget) {
        self.lock().calls = Some(t);
    }

    /// The deliveries so far.
    pub fn log(&self) -> Vec<Delivery> {
        self.lock().log.clone()
    }

    async fn deliver(&self, kind: &str, req: reqwest::RequestBuilder, url: &str) -> Delivery {
        let started = Instant::now();
        let (status, answer) = match req.send().await {
            Ok(r) => {
                let s = r.status().as_u16();
                let mut text = r.text().await.unwrap_or_default();
                text.truncate(4096);
                (Some(s), text)
            }
            Err(e) => (None, e.without_url().to_string()),
        };
        let d = Delivery {
            kind: kind.to_string(),
            url: url.to_string(),
            status,
            ms: started.elapsed().as_secs_f64() * 1000.0,
            answer,
        };
        let mut st = self.lock();
        if st.log.len() >= MAX_LOG {
            st.log.remove(0);
        }
        st.log.push(d.clone());
        d
    }

    fn crm_written(&self, module: &str, event: &str, id: &str) {
        let rules: Vec<CrmRule> = self
            .lock()
            .crm
            .iter()
            .filter(|r| r.module.eq_ignore_ascii_case(module) && r.events.iter().any(|e| e == event))
            .cloned()
            .collect();
        if rules.is_empty() {
            return;
        }
        let Some((org, record)) = self.crm.find_by_id(module, id) else { return };
        for r in rules.into_iter().filter(|r| r.org == org) {
            let mut params: Vec<(String, String)> = Vec::new();
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Object(o) => o
                    .get("id")
                    .or_else(|| o.get("name"))
                    .map(|x| x.as_str().unwrap_or_default().to_string())
                    .unwrap_or_default(),
                other => other.to_string(),
            };
            if r.module_params.is_empty() {
                if let Some(o) = record.as_object() {
                    params.extend(o.iter().map(|(k, v)| (k.clone(), text(v))));
                }
            } else {
                params
                    .extend(r.module_params.iter().map(|(name, field)| (name.clone(), text(&record[field.as_str()]))));
            }
            params.extend(r.custom_params.iter().map(|(k, v)| (k.clone(), v.clone())));
            let mut req = self.client.post(&r.url);
            for (k, v) in &r.headers {
                req = req.header(k, v);
            }
            req = if r.body == "json" {
                let m: serde_json::Map<String, Value> =
                    params.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
                with_json(req, &Value::Object(m))
            } else {
                let form = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params.iter()).finish();
                req.header("content-type", "application/x-www-form-urlencoded").body(form)
            };
            let me = self.clone();
            let url = r.url.clone();
            tokio::spawn(async move {
                me.deliver("crm", req, &url).await;
            });
        }
    }

    fn sn_written(&self, table: &str, event: &str, record: &Value) {
        let rules: Vec<SnRule> = self
            .lock()
            .servicenow
            .iter()
            .filter(|r| r.table == table && r.events.iter().any(|e| e == event))
            .cloned()
            .collect();
        for r in rules {
            let mut req =
                with_json(self.client.post(&r.url), &json!({"table": table, "operation": event, "record": record}));
            if let Some(u) = &r.username {
                req = req.basic_auth(u, r.password.as_deref());
            }
            for (k, v) in &r.headers {
                req = req.header(k, v);
            }
            let me = self.clone();
            let url = r.url.clone();
            tokio::spawn(async move {
                me.deliver("servicenow", req, &url).await;
            });
        }
    }

    /// One call: `ringing`, `answered`, `ended`, each sent once the one before was answered.
    pub async fn call(&self, from: &str, to: &str, talk_s: u64, base: &str) -> Result<Value, String> {
        let (target, n) = {
            let mut st = self.lock();
            st.next_call += 1;
            (st.calls.clone(), st.next_call)
        };
        let target = target.ok_or("no call webhook is set: POST /_sandbox/events/calls {\"url\": ...} first")?;
        let call_id = format!("call-{n:06}");
        let recording = format!("{base}/_sandbox/recordings/{call_id}.mp3");
        let mut out = Vec::new();
        for event in ["ringing", "answered", "ended"] {
            let mut body = json!({"event": event, "call_id": call_id, "from": from, "to": to});
            if event != "ringing" {
                body["recording_url"] = recording.clone().into();
            }
            if event == "ended" {
                body["duration_s"] = talk_s.into();
            }
            let mut req = with_json(self.client.post(&target.url), &body);
            for (k, v) in &target.headers {
                req = req.header(k, v);
            }
            let d = self.deliver(event, req, &target.url).await;
            out.push(json!({"event": event, "status": d.status, "ms": d.ms, "answer": d.answer}));
        }
        Ok(json!({"call_id": call_id, "recording_url": recording, "events": out}))
    }

    /// Control routes.
    pub fn router(&self) -> axum::Router {
        use axum::routing::{get, post};
        let (e1, e2, e3, e4, e5) = (self.clone(), self.clone(), self.clone(), self.clone(), self.clone());
        axum::Router::new()
            .route(
                "/_sandbox/events",
                get(move || {
                    let st = e1.lock();
                    let v =
                        json!({"crm": st.crm, "servicenow": st.servicenow, "calls": st.calls, "deliveries": st.log});
                    async move { Json(v) }
                }),
            )
            .route(
                "/_sandbox/events/crm",
                post(move |Json(r): Json<CrmRule>| async move {
                    e2.add_crm(r);
                    Json(json!({"rules": e2.lock().crm.len()}))
                })
                .delete({
                    let e = self.clone();
                    move || async move {
                        e.lock().crm.clear();
                        Json(json!({"rules": 0}))
                    }
                }),
            )
            .route(
                "/_sandbox/events/servicenow",
                post(move |Json(r): Json<SnRule>| async move {
                    e3.add_servicenow(r);
                    Json(json!({"rules": e3.lock().servicenow.len()}))
                }),
            )
            .route(
                "/_sandbox/events/calls",
                post(move |Json(t): Json<CallTarget>| async move {
                    e4.set_calls(t);
                    Json(json!({"set": true}))
                }),
            )
            .route(
                "/_sandbox/calls",
                post(move |headers: axum::http::HeaderMap, Json(c): Json<Value>| async move {
                    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
                    let from = c["from"].as_str().unwrap_or_default().to_string();
                    if from.is_empty() {
                        return (StatusCode::BAD_REQUEST, Json(json!({"error": "give `from`, the caller's number"})))
                            .into_response();
                    }
                    let to = c["to"].as_str().unwrap_or("+10000000000").to_string();
                    match e5.call(&from, &to, c["talk_s"].as_u64().unwrap_or(30), &format!("http://{host}")).await {
                        Ok(v) => Json(v).into_response(),
                        Err(m) => (StatusCode::CONFLICT, Json(json!({"error": m}))).into_response(),
                    }
                }),
            )
            .route("/_sandbox/recordings/{file}", get(|| async { ([("content-type", "audio/mpeg")], vec![0u8; 16]) }))
    }
}

fn with_json(req: reqwest::RequestBuilder, v: &Value) -> reqwest::RequestBuilder {
    req.header("content-type", "application/json").body(v.to_string())
}

/// What a request writes, if it is a write events may follow.
enum Write {
    Crm { module: String, event: &'static str },
    Servicenow { table: String, event: &'static str },
}

fn classify(method: &Method, path: &str) -> Option<Write> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["crm", "v7" | "v8", module] if *method == Method::POST => {
            Some(Write::Crm { module: module.to_string(), event: "create" })
        }
        ["crm", "v7" | "v8", module] | ["crm", "v7" | "v8", module, _] if *method == Method::PUT => {
            Some(Write::Crm { module: module.to_string(), event: "edit" })
        }
        ["crm", "v7" | "v8", module, "upsert"] if *method == Method::POST => {
            Some(Write::Crm { module: module.to_string(), event: "upsert" })
        }
        ["api", "now", "table", table] if *method == Method::POST => {
            Some(Write::Servicenow { table: table.to_string(), event: "insert" })
        }
        ["api", "now", "table", table, _] if *method == Method::PUT || *method == Method::PATCH => {
            Some(Write::Servicenow { table: table.to_string(), event: "update" })
        }
        _ => None,
    }
}

/// Watches the API's writes and sends the events their rules ask for.
pub async fn layer(State(ev): State<Events>, req: Request, next: Next) -> Response {
    let write = classify(req.method(), req.uri().path());
    let watched = match &write {
        Some(Write::Crm { .. }) => !ev.lock().crm.is_empty(),
        Some(Write::Servicenow { .. }) => !ev.lock().servicenow.is_empty(),
        None => false,
    };
    let resp = next.run(req).await;
    let Some(write) = write.filter(|_| watched && resp.status().is_success()) else { return resp };
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
        match write {
            Write::Crm { module, event } => {
                for item in v["data"].as_array().into_iter().flatten().filter(|i| i["status"] == "success") {
                    let Some(id) = item["details"]["id"].as_str() else { continue };
                    let event = match (event, item["action"].as_str()) {
                        ("upsert", Some("insert")) => "create",
                        ("upsert", _) => "edit",
                        (e, _) => e,
                    };
                    ev.crm_written(&module, event, id);
                }
            }
            Write::Servicenow { table, event } => ev.sn_written(&table, event, &v["result"]),
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}
