//! The invoker: turns a script's request into HTTP calls with the connection's credentials
//! applied, following Deluge's `invokeurl` semantics.
//!
//! - `parameters` as a map is the query string for GET, DELETE and HEAD and a form body otherwise
//!   (a JSON body when `content-type` is JSON); as a string it is the raw body, typed by
//!   `content-type`, else `application/json` when it is a JSON object or array, else `text/plain`.
//! - `body` (map or array) is a JSON body; with `body`, map `parameters` go to the query string.
//! - Relative URLs are joined to the connection's base URL by concatenation.
//! - Credentials go only to the service's allowed hosts (and ports), only over HTTPS except to
//!   loopback, and never across a redirect to another origin (scheme, host and port). A refusal
//!   happens before anything is sent.
//! - A URL with a user name or password (`user:pass@`) is refused on a connection and stripped
//!   without one, so a request never carries two `Authorization` headers.
//! - Schemes are case-insensitive: `HTTP://host/` is absolute.
//! - Redirects (at most 10) are followed here, hop by hop, so each hop decides on credentials.
//! - Responses over the size cap are cut off with a `too_large` error.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::SecretString;
use url::Url;

use crate::auth::{Credentials, PlacedValue, api_key::ApiKey, basic::Basic, place_values};
use crate::catalog::Catalog;
use crate::connection::{Status, param_field};
use crate::home::Home;
use crate::http::Clients;
use crate::service::{AuthKind, Endpoint, host_matches, host_port_matches};
use crate::vault::Vault;

/// Default per-request timeout: Deluge's 40 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(40);
/// Default response-size cap: 10 MiB.
pub const DEFAULT_MAX_RESPONSE: usize = 10 * 1024 * 1024;
/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 10;

/// The kind of an invoke error, as scripts see it in `e.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// DNS, connect, reset, protocol errors.
    Network,
    /// The request took longer than its timeout.
    Timeout,
    /// The response exceeded the size cap.
    TooLarge,
    /// Unknown, unauthorised, revoked or needs-re-authorisation connection.
    Connection,
    /// Credentials would go to a host they must not go to.
    HostRefused,
    /// The request map is wrong.
    BadRequest,
}

impl ErrorKind {
    /// The name scripts see.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Connection => "connection",
            ErrorKind::HostRefused => "host_refused",
            ErrorKind::BadRequest => "bad_request",
        }
    }
}

/// An error raised by `invoke_url`; scripts catch it as `#{ kind, message, connection }`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct InvokeError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// One sentence naming the fault and the fix; never a secret.
    pub message: String,
    /// The link name involved, if any.
    pub connection: Option<String>,
}

impl InvokeError {
    fn new(kind: ErrorKind, message: String, connection: Option<&str>) -> InvokeError {
        InvokeError { kind, message, connection: connection.map(str::to_string) }
    }

    /// A `bad_request` error.
    pub fn bad_request(message: String, connection: Option<&str>) -> InvokeError {
        InvokeError::new(ErrorKind::BadRequest, message, connection)
    }

    /// A `connection` error.
    pub fn connection(message: String, link: &str) -> InvokeError {
        InvokeError::new(ErrorKind::Connection, message, Some(link))
    }
}

/// A request as the script describes it.
#[derive(Debug, Clone, Default)]
pub struct ScriptRequest {
    /// Absolute, or relative to the connection's base URL.
    pub url: String,
    /// HTTP method, upper case (default GET).
    pub method: Option<String>,
    /// `parameters`.
    pub parameters: Option<Parameters>,
    /// `body`: JSON value (map or array) or text.
    pub body: Option<Parameters>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// `content-type`.
    pub content_type: Option<String>,
    /// Link name.
    pub connection: Option<String>,
    /// Per-request timeout.
    pub timeout: Option<Duration>,
}

/// `parameters` or `body`: a key-value map (JSON values kept for JSON bodies), an array, or text.
#[derive(Debug, Clone)]
pub enum Parameters {
    /// A map.
    Map(serde_json::Map<String, serde_json::Value>),
    /// An array (JSON body only).
    List(Vec<serde_json::Value>),
    /// Text.
    Text(String),
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body.
    Empty,
    /// `application/x-www-form-urlencoded` pairs (encoded when sent, after credentials are added).
    Form(Vec<(String, String)>),
    /// Raw bytes with a content type.
    Raw {
        /// Bytes.
        bytes: Vec<u8>,
        /// `Content-Type`.
        content_type: String,
    },
}

/// A request ready to send (before credentials).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// Full URL.
    pub url: Url,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Names of the headers that carry credentials: sent marked sensitive (never indexed by
    /// HTTP/2 HPACK). `Authorization`, `Proxy-Authorization` and `Cookie` always are.
    pub sensitive: Vec<String>,
    /// Body.
    pub body: Body,
}

/// Headers whose values are always sent marked sensitive.
const ALWAYS_SENSITIVE: &[&str] = &["authorization", "proxy-authorization", "cookie"];

impl Outgoing {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: Url) -> Outgoing {
        Outgoing { method, url, headers: Vec::new(), sensitive: Vec::new(), body: Body::Empty }
    }

    /// Sets a header, replacing any with the same name (case-insensitive).
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// Sets a header that carries a credential (see [`Outgoing::sensitive`]), replacing any with
    /// the same name.
    pub fn set_sensitive_header(&mut self, name: &str, value: &str) {
        self.set_header(name, value);
        if !self.is_sensitive(name) {
            self.sensitive.push(name.to_string());
        }
    }

    /// Whether the header `name` is sent marked sensitive.
    pub fn is_sensitive(&self, name: &str) -> bool {
        ALWAYS_SENSITIVE.iter().any(|s| s.eq_ignore_ascii_case(name))
            || self.sensitive.iter().any(|s| s.eq_ignore_ascii_case(name))
    }

    /// Sets a query parameter, replacing any with the same name.
    pub fn set_query(&mut self, name: &str, value: &str) {
        let kept: Vec<(String, String)> =
            self.url.query_pairs().filter(|(k, _)| k != name).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let mut q = self.url.query_pairs_mut();
        q.clear();
        q.extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        q.append_pair(name, value);
        drop(q);
    }

    /// Sets a form field, creating a form body on a method that may carry one; an error (the
    /// reason) when the request has a body of another type or a method without a body.
    pub fn set_form(&mut self, name: &str, value: &str) -> Result<(), String> {
        match &mut self.body {
            Body::Form(pairs) => {
                pairs.retain(|(k, _)| k != name);
                pairs.push((name.to_string(), value.to_string()));
                Ok(())
            }
            Body::Empty if !matches!(self.method, Method::GET | Method::HEAD | Method::DELETE) => {
                self.body = Body::Form(vec![(name.to_string(), value.to_string())]);
                Ok(())
            }
            Body::Empty => {
                Err(format!("a {} request has none; use type POST, PUT or PATCH with map parameters", self.method))
            }
            Body::Raw { content_type, .. } => {
                Err(format!("this request's body is `{content_type}`; send map parameters instead"))
            }
        }
    }
}

impl Outgoing {
    /// The reqwest request for this exact request (headers, body and its content type).
    pub fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let mut rb = client.request(self.method.clone(), self.url.clone());
        for (k, v) in &self.headers {
            rb = match reqwest::header::HeaderValue::from_str(v) {
                Ok(mut value) => {
                    value.set_sensitive(self.is_sensitive(k));
                    rb.header(k.as_str(), value)
                }
                // Not a valid header value: let reqwest report it when sending.
                Err(_) => rb.header(k.as_str(), v.as_str()),
            };
        }
        let has_type = self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        match &self.body {
            Body::Empty => {}
            Body::Form(pairs) => {
                let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
                if !has_type {
                    rb = rb.header("Content-Type", "application/x-www-form-urlencoded");
                }
                rb = rb.body(encoded);
            }
            Body::Raw { bytes, content_type } => {
                if !has_type {
                    rb = rb.header("Content-Type", content_type.as_str());
                }
                rb = rb.body(bytes.clone());
            }
        }
        rb
    }

    /// Sends this request once (no redirects) and reads a body of at most 1 MiB: for the short
    /// exchanges of an authorisation flow, whose URLs come from the service definition.
    pub async fn send_once(&self, clients: &Clients, timeout: Duration) -> Result<Response, InvokeError> {
        let shown = redact_url(&self.url, &[]);
        let client = clients.for_url(&self.url).map_err(|m| InvokeError::new(ErrorKind::Network, m, None))?;
        let fut = async {
            let resp = self.request(client).send().await.map_err(|e| network_error(&e, &shown, None))?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = resp.bytes().await.map_err(|e| network_error(&e, &shown, None))?;
            if body.len() > 1024 * 1024 {
                return Err(InvokeError::new(
                    ErrorKind::TooLarge,
                    format!("the answer of `{shown}` is larger than 1 MiB"),
                    None,
                ));
            }
            Ok(Response { status, headers, body: body.to_vec() })
        };
        tokio::time::timeout(timeout, fut).await.unwrap_or_else(|_| {
            Err(InvokeError::new(
                ErrorKind::Timeout,
                format!("`{shown}` did not answer within {} s", fmt_secs(timeout)),
                None,
            ))
        })
    }
}

/// The HTTP response as scripts see it.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers with lower-case names; repeated headers joined with ", ".
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for 204 and HEAD).
    pub body: Vec<u8>,
}

/// Converts a JSON value to the text Deluge would send for it in a query or form field.
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn is_json_type(ct: &str) -> bool {
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct == "application/json" || ct.ends_with("+json")
}

/// Builds the outgoing request from the script's map (Deluge semantics; see the module doc).
pub fn build(req: &ScriptRequest, base_url: Option<&str>, link: Option<&str>) -> Result<Outgoing, InvokeError> {
    let method_name = req.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    let method = match method_name.as_str() {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        "HEAD" => Method::HEAD,
        other => {
            return Err(InvokeError::bad_request(
                format!("unknown request type `{other}`: use GET, POST, PUT, PATCH, DELETE or HEAD"),
                link,
            ));
        }
    };
    let absolute = has_http_scheme(&req.url);
    let full = if absolute {
        req.url.clone()
    } else {
        match base_url {
            Some(base) => join_url(base, &req.url),
            None if link.is_some() => {
                return Err(InvokeError::bad_request(
                    format!(
                        "relative URL `{}` needs a base URL, but connection `{}` has none: use an absolute URL",
                        req.url,
                        link.unwrap_or_default()
                    ),
                    link,
                ));
            }
            None => {
                return Err(InvokeError::bad_request(
                    format!(
                        "relative URL `{}` needs a connection with a base URL: add `connection: \"LINK\"` or use an absolute URL",
                        req.url
                    ),
                    None,
                ));
            }
        }
    };
    let url = Url::parse(&full).map_err(|e| {
        InvokeError::bad_request(format!("`{full}` is not a valid URL ({e}): check the `url` of the request"), link)
    })?;
    let mut url = url;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvokeError::bad_request(
            format!("`{}` is not an http(s) URL: use http:// or https://", url.scheme()),
            link,
        ));
    }
    if has_userinfo(&url) {
        if let Some(l) = link {
            return Err(InvokeError::bad_request(
                format!(
                    "the `url` of a request on connection `{l}` has a user name or password in it (`user:password@`), which would be sent beside the connection's credentials: remove it from the URL"
                ),
                link,
            ));
        }
        strip_userinfo(&mut url);
    }
    let mut out = Outgoing { method, url, headers: req.headers.clone(), sensitive: Vec::new(), body: Body::Empty };
    let query_method = matches!(out.method, Method::GET | Method::DELETE | Method::HEAD);
    let ct = req.content_type.clone();
    let raw = |bytes: String, json_ok: bool| {
        let content_type = ct.clone().unwrap_or_else(|| {
            let t = bytes.trim_start();
            if json_ok
                && (t.starts_with('{') || t.starts_with('['))
                && serde_json::from_str::<serde_json::Value>(&bytes).is_ok()
            {
                "application/json".to_string()
            } else {
                "text/plain".to_string()
            }
        });
        Body::Raw { bytes: bytes.into_bytes(), content_type }
    };
    match (&req.body, &req.parameters) {
        (Some(_), Some(Parameters::Text(_))) => {
            return Err(InvokeError::bad_request(
                "a request cannot have both `body` and text `parameters`: put the text in `body`, or make `parameters` a map".into(),
                link,
            ));
        }
        (Some(body), params) => {
            if let Some(Parameters::Map(m)) = params {
                append_query(&mut out.url, m);
            }
            if let Some(Parameters::List(l)) = params {
                return Err(InvokeError::bad_request(
                    format!("`parameters` is a list of {} items: use a map, or send the list as `body`", l.len()),
                    link,
                ));
            }
            out.body = match body {
                Parameters::Map(m) => json_body(&serde_json::Value::Object(m.clone()), ct.clone()),
                Parameters::List(l) => json_body(&serde_json::Value::Array(l.clone()), ct.clone()),
                Parameters::Text(t) => raw(t.clone(), true),
            };
        }
        (None, Some(Parameters::Map(m))) if query_method => append_query(&mut out.url, m),
        (None, Some(Parameters::Map(m))) => {
            out.body = if ct.as_deref().is_some_and(is_json_type) {
                json_body(&serde_json::Value::Object(m.clone()), ct.clone())
            } else {
                Body::Form(m.iter().map(|(k, v)| (k.clone(), value_text(v))).collect())
            };
        }
        (None, Some(Parameters::List(l))) => out.body = json_body(&serde_json::Value::Array(l.clone()), ct.clone()),
        (None, Some(Parameters::Text(t))) => out.body = raw(t.clone(), true),
        (None, None) => {}
    }
    Ok(out)
}

fn json_body(v: &serde_json::Value, ct: Option<String>) -> Body {
    Body::Raw { bytes: v.to_string().into_bytes(), content_type: ct.unwrap_or_else(|| "application/json".into()) }
}

fn append_query(url: &mut Url, m: &serde_json::Map<String, serde_json::Value>) {
    if m.is_empty() {
        return;
    }
    let mut q = url.query_pairs_mut();
    for (k, v) in m {
        q.append_pair(k, &value_text(v));
    }
}

/// Whether `url` starts with `http://` or `https://`, in any case (schemes are case-insensitive).
fn has_http_scheme(url: &str) -> bool {
    let starts = |p: &str| url.get(..p.len()).is_some_and(|head| head.eq_ignore_ascii_case(p));
    starts("http://") || starts("https://")
}

/// Whether a URL carries a user name or password.
fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// Removes the user name and password of a URL (reqwest would turn them into an
/// `Authorization` header).
fn strip_userinfo(url: &mut Url) {
    let _ = url.set_password(None);
    let _ = url.set_username("");
}

/// Whether two URLs have the same origin: scheme, host and port (default ports included).
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().unwrap_or_default().eq_ignore_ascii_case(b.host_str().unwrap_or_default())
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Joins a relative URL to a base by concatenation, keeping the base path.
pub fn join_url(base: &str, rel: &str) -> String {
    if rel.is_empty() {
        return base.to_string();
    }
    if rel.starts_with('?') {
        return format!("{base}{rel}");
    }
    format!("{}/{}", base.trim_end_matches('/'), rel.trim_start_matches('/'))
}

/// `base` with its scheme and host (and port) replaced by those of `origin` (Zoho's `api_domain`).
pub fn with_origin(base: &str, origin: &str) -> String {
    match (Url::parse(base), Url::parse(origin)) {
        (Ok(b), Ok(o)) => {
            let path = b.path().trim_end_matches('/');
            format!("{}{}", o.as_str().trim_end_matches('/'), path)
        }
        _ => base.to_string(),
    }
}

/// Whether a host is loopback (plain HTTP is allowed there).
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_matches(['[', ']']);
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Query keys always redacted in traces, whatever the service.
const SENSITIVE_QUERY_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "api_key",
    "apikey",
    "key",
    "token",
    "password",
    "client_secret",
    "secret",
    "signature",
    "sig",
    "code",
    "oauth_token",
    "oauth_signature",
    "authtoken",
];

/// A URL for traces and messages: values of credential-bearing query keys and any userinfo
/// password replaced by `[redacted]`.
pub fn redact_url(url: &Url, extra_keys: &[String]) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("redacted"));
    }
    let Some(query) = u.query().map(str::to_string) else { return u.to_string() };
    u.set_query(None);
    let parts: Vec<String> = query
        .split('&')
        .map(|seg| {
            let raw_key = seg.split('=').next().unwrap_or_default();
            let key: String =
                url::form_urlencoded::parse(raw_key.as_bytes()).map(|(k, _)| k.into_owned()).next().unwrap_or_default();
            let secret = extra_keys.iter().any(|x| x.eq_ignore_ascii_case(&key))
                || SENSITIVE_QUERY_KEYS.iter().any(|x| x.eq_ignore_ascii_case(&key));
            if secret { format!("{raw_key}=[redacted]") } else { seg.to_string() }
        })
        .collect();
    format!("{u}?{}", parts.join("&"))
}

/// A connection ready to use: its endpoint and opened credentials.
#[derive(Debug)]
pub struct Live {
    /// Link name.
    pub link_name: String,
    /// Service link name.
    pub service: String,
    /// Base URL and allowed hosts.
    pub endpoint: Endpoint,
    /// Auth credentials.
    pub credentials: Credentials,
    /// Non-auth params sent on every request.
    pub placed: Vec<PlacedValue>,
    /// Query keys to redact in traces.
    pub redact_keys: Vec<String>,
    /// Ports an `allowed_hosts` entry without a port allows besides the scheme's default: those
    /// of the connection's base URL (as configured, and after an OAuth `api_domain`).
    pub base_ports: Vec<u16>,
}

impl Live {
    /// Whether requests on this connection carry anything to protect.
    pub fn carries_credentials(&self) -> bool {
        !self.credentials.is_none() || !self.placed.is_empty()
    }

    fn apply(&self, req: &mut Outgoing) -> Result<(), InvokeError> {
        // Plain params first: an OAuth 1.0a signature must cover everything the request carries.
        place_values(req, &self.placed, &self.link_name)?;
        self.credentials.apply(req, &self.link_name)
    }

    /// Refuses a URL the credentials must not go to: a host and port outside the allow-list, or
    /// plain HTTP to a host that is not loopback.
    pub fn check_url(&self, url: &Url) -> Result<(), InvokeError> {
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or_default();
        let mut implicit = self.base_ports.clone();
        implicit.extend(default_port(url.scheme()));
        if !self.endpoint.allowed_hosts.iter().any(|p| host_port_matches(p, &host, port, &implicit)) {
            // The host is allowed but not on this port: name the port, so the fix is clear.
            let host =
                match url.port() {
                    Some(p) if self.endpoint.allowed_hosts.iter().any(|h| host_matches(h, &host)) => {
                        if host.contains(':') { format!("[{host}]:{p}") } else { format!("{host}:{p}") }
                    }
                    _ => host,
                };
            let allowed = if self.endpoint.allowed_hosts.is_empty() {
                "none".to_string()
            } else {
                self.endpoint.allowed_hosts.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
            };
            return Err(InvokeError::new(
                ErrorKind::HostRefused,
                format!(
                    "refusing to send the credentials of connection `{}` to `{host}`: service `{}` allows only {allowed}; call an allowed host or add this one to the service's `allowed_hosts`",
                    self.link_name, self.service
                ),
                Some(&self.link_name),
            ));
        }
        if url.scheme() != "https" && !is_loopback(&host) {
            return Err(InvokeError::new(
                ErrorKind::HostRefused,
                format!(
                    "refusing to send the credentials of connection `{}` over plain HTTP to `{host}`: use an https:// URL (plain HTTP is allowed only to 127.0.0.1, ::1 and localhost)",
                    self.link_name
                ),
                Some(&self.link_name),
            ));
        }
        Ok(())
    }
}

/// The default port of `http` and `https`.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The port of a base URL, if it is a URL.
fn port_of(base: Option<&str>) -> Option<u16> {
    base.and_then(|b| Url::parse(b).ok()).and_then(|u| u.port_or_known_default())
}

/// Options of an invoker.
#[derive(Debug, Clone)]
pub struct InvokerOptions {
    /// Trace each request on stderr.
    pub verbose: bool,
    /// Response-size cap in bytes.
    pub max_response: usize,
}

impl Default for InvokerOptions {
    fn default() -> Self {
        InvokerOptions { verbose: false, max_response: DEFAULT_MAX_RESPONSE }
    }
}

/// Sends script requests. One per run; it owns the shared HTTP clients and opens the vault and
/// the catalog only when a request names a connection.
pub struct Invoker {
    home: Home,
    opts: InvokerOptions,
    clients: Clients,
    vault: RefCell<Option<Rc<RefCell<Vault>>>>,
    catalog: RefCell<Option<Rc<Catalog>>>,
    live: RefCell<HashMap<String, Rc<Live>>>,
}

impl fmt::Debug for Invoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invoker").field("home", &self.home).field("clients", &self.clients).finish_non_exhaustive()
    }
}

/// A failure to open the vault or the catalog while resolving a connection; ends the run with
/// that error's exit code rather than becoming a catchable script error.
#[derive(Debug)]
pub enum Failure {
    /// Catchable by the script.
    Invoke(InvokeError),
    /// Fatal (vault cannot be opened, bad service file).
    Fatal(crate::Error),
}

impl From<InvokeError> for Failure {
    fn from(e: InvokeError) -> Self {
        Failure::Invoke(e)
    }
}

impl Invoker {
    /// A new invoker for the given home.
    pub fn new(home: Home, opts: InvokerOptions) -> Invoker {
        Invoker {
            home,
            opts,
            clients: Clients::default(),
            vault: RefCell::new(None),
            catalog: RefCell::new(None),
            live: RefCell::new(HashMap::new()),
        }
    }

    /// Drops the cached connections and the open vault, zeroizing the secrets they hold (for a
    /// process that then exits without tearing down the rest).
    pub fn forget_secrets(&self) {
        self.live.borrow_mut().clear();
        self.vault.borrow_mut().take();
    }

    /// The vault, opened (or created) on first use.
    pub fn vault(&self) -> Result<Rc<RefCell<Vault>>, Failure> {
        if let Some(v) = self.vault.borrow().as_ref() {
            return Ok(v.clone());
        }
        let v = Rc::new(RefCell::new(Vault::open(&self.home).map_err(|e| Failure::Fatal(e.into()))?));
        *self.vault.borrow_mut() = Some(v.clone());
        Ok(v)
    }

    fn catalog(&self) -> Result<Rc<Catalog>, Failure> {
        if let Some(c) = self.catalog.borrow().as_ref() {
            return Ok(c.clone());
        }
        let c = Rc::new(Catalog::load(&self.home).map_err(Failure::Fatal)?);
        *self.catalog.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    /// Resolves a link name to a usable connection (cached for the run).
    pub fn live(&self, link: &str) -> Result<Rc<Live>, Failure> {
        if let Some(l) = self.live.borrow().get(link) {
            return Ok(l.clone());
        }
        let unknown = || {
            InvokeError::connection(
                format!(
                    "unknown connection `{link}`: create it with `linkrun connection create {link} --service NAME` (see `linkrun connection list`)"
                ),
                link,
            )
        };
        // No vault yet: no connection can exist, and a script must not create an empty vault.
        if self.vault.borrow().is_none() && !Vault::exists(&self.home) {
            return Err(unknown().into());
        }
        let vault = self.vault()?;
        let rec = vault.borrow().get(link).map_err(|e| Failure::Fatal(e.into()))?.ok_or_else(unknown)?;
        match rec.status {
            Status::Connected => {}
            Status::NotAuthorized => {
                return Err(InvokeError::connection(
                    format!("connection `{link}` is not authorised yet: run `linkrun connection authorize {link}`"),
                    link,
                )
                .into());
            }
            Status::NeedsReauth => {
                return Err(InvokeError::connection(
                    format!("connection `{link}` needs re-authorisation: run `linkrun connection authorize {link}`"),
                    link,
                )
                .into());
            }
            Status::Revoked => {
                return Err(InvokeError::connection(
                    format!(
                        "connection `{link}` was revoked: run `linkrun connection authorize {link}` to reconnect it"
                    ),
                    link,
                )
                .into());
            }
        }
        let catalog = self.catalog()?;
        let service = catalog.get(&rec.service).map_err(|_| {
            InvokeError::connection(
                format!("connection `{link}` uses service `{}`, which is no longer installed: add it again with `linkrun service add FILE.toml`", rec.service),
                link,
            )
        })?;
        // Token metadata before the tokens: if a refresh elsewhere lands in between, the tokens are
        // newer than their label, never older, so a refresh lease claimed with this generation
        // fails and the tokens are re-read instead of refreshing with a spent refresh token.
        let oauth_meta = if service.auth() == AuthKind::Oauth2 {
            Some(vault.borrow().token_meta(link).map_err(|e| Failure::Fatal(e.into()))?.unwrap_or_default())
        } else {
            None
        };
        let mut fields: HashMap<String, SecretString> =
            vault.borrow().read_fields(link).map_err(|e| Failure::Fatal(e.into()))?.into_iter().collect();
        let mut endpoint = service.endpoint(rec.data_center.as_deref(), rec.instance.as_deref());
        let mut base_ports: Vec<u16> = port_of(endpoint.base_url.as_deref()).into_iter().collect();
        let oauth2 = if let Some(meta) = oauth_meta {
            let eps = crate::auth::oauth2::endpoints_for(service, &endpoint, &rec, &fields)
                .map_err(|m| Failure::Invoke(InvokeError::connection(m, link)))?;
            let o = crate::auth::oauth2::OAuth2::new(link, service, eps, rec.scopes.clone(), &mut fields, meta)
                .map_err(|m| Failure::Invoke(InvokeError::connection(m, link)))?;
            if service.def.oauth2.as_ref().is_some_and(|d| d.use_api_domain) {
                if let (Some(domain), Some(base)) = (o.api_domain(), endpoint.base_url.as_deref()) {
                    endpoint.base_url = Some(with_origin(base, &domain));
                    base_ports.extend(port_of(endpoint.base_url.as_deref()));
                }
            }
            Some(o)
        } else {
            None
        };
        let mut take = |key: &str| fields.remove(&param_field(key));
        let credentials = match service.auth() {
            AuthKind::None => Credentials::None,
            AuthKind::ApiKey => Credentials::ApiKey(ApiKey { values: Vec::new() }),
            AuthKind::Basic => Credentials::Basic(Basic {
                username: take("username").unwrap_or_else(|| SecretString::from("")),
                password: take("password").unwrap_or_else(|| SecretString::from("")),
            }),
            AuthKind::Oauth1 => Credentials::OAuth1(Box::new(
                crate::auth::oauth1::OAuth1::from_fields(service, &mut take, link).map_err(Failure::Invoke)?,
            )),
            AuthKind::Oauth2 => match oauth2 {
                Some(o) => Credentials::OAuth2(Box::new(o)),
                None => {
                    return Err(InvokeError::connection(
                        format!("connection `{link}` is not authorised yet: run `linkrun connection authorize {link}`"),
                        link,
                    )
                    .into());
                }
            },
        };
        let mut credentials = credentials;
        let mut placed = Vec::new();
        for p in service.params() {
            let (Some(placement), false) = (p.placement, p.implied) else { continue };
            let Some(value) = take(&p.key) else { continue };
            let v = PlacedValue { key: p.key.clone(), placement, value };
            match &mut credentials {
                Credentials::ApiKey(k) => k.values.push(v),
                _ => placed.push(v),
            }
        }
        let mut redact_keys: Vec<String> = credentials.query_keys().into_iter().map(str::to_string).collect();
        redact_keys
            .extend(placed.iter().filter(|v| v.placement == crate::service::Placement::Query).map(|v| v.key.clone()));
        let live = Rc::new(Live {
            link_name: link.to_string(),
            service: rec.service.clone(),
            endpoint,
            credentials,
            placed,
            redact_keys,
            base_ports,
        });
        self.live.borrow_mut().insert(link.to_string(), live.clone());
        Ok(live)
    }

    /// Sends one script request within `timeout`.
    pub async fn send(&self, req: &ScriptRequest, timeout: Duration) -> Result<Response, Failure> {
        let live = match &req.connection {
            Some(l) => Some(self.live(l)?),
            None => None,
        };
        let link = live.as_ref().map(|l| l.link_name.as_str());
        let out = build(req, live.as_ref().and_then(|l| l.endpoint.base_url.as_deref()), link)?;
        let live_ref = live.as_deref().filter(|l| l.carries_credentials());
        if let Some(l) = live_ref {
            l.check_url(&out.url)?;
        }
        let url_for_messages = out.url.clone();
        match tokio::time::timeout(timeout, self.exchange_fresh(out, live_ref)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(InvokeError::new(
                ErrorKind::Timeout,
                format!(
                    "the request to `{}` took longer than {} s: raise `timeout` in the request, or check the server",
                    redact_url(&url_for_messages, live_ref.map(|l| l.redact_keys.as_slice()).unwrap_or_default()),
                    fmt_secs(timeout)
                ),
                link,
            )
            .into()),
        }
    }

    /// The HTTP client that talks to an OAuth 2.0 connection's token endpoint.
    fn token_client(&self, o: &crate::auth::oauth2::OAuth2) -> Result<reqwest::Client, InvokeError> {
        let url = Url::parse(&o.endpoints.token_url).map_err(|_| {
            InvokeError::connection(format!("the token_url of service `{}` is not a URL", o.service), &o.link)
        })?;
        self.clients.for_url(&url).cloned().map_err(|m| InvokeError::new(ErrorKind::Network, m, Some(&o.link)))
    }

    /// [`Invoker::exchange`], with OAuth 2.0 tokens refreshed before expiry and, once, after an
    /// answer that says the token is dead.
    async fn exchange_fresh(&self, out: Outgoing, live: Option<&Live>) -> Result<Response, InvokeError> {
        let Some((l, o)) = live.and_then(|l| match &l.credentials {
            Credentials::OAuth2(o) => Some((l, o)),
            _ => None,
        }) else {
            return self.exchange(out, live).await;
        };
        let vault = self.vault().map_err(|f| match f {
            Failure::Invoke(e) => e,
            Failure::Fatal(e) => InvokeError::connection(e.to_string(), &l.link_name),
        })?;
        let http = self.token_client(o)?;
        o.ensure_fresh(&vault, &http, None).await?;
        let generation = o.generation();
        let resp = self.exchange(out.clone(), live).await?;
        if !crate::auth::oauth2::is_expired_answer(resp.status, &resp.body) {
            return Ok(resp);
        }
        o.ensure_fresh(&vault, &http, Some(generation)).await?;
        self.exchange(out, live).await
    }

    async fn exchange(&self, first: Outgoing, live: Option<&Live>) -> Result<Response, InvokeError> {
        let origin = first.url.clone();
        let origin_host = origin.host_str().unwrap_or_default().to_ascii_lowercase();
        let link = live.map(|l| l.link_name.as_str());
        let redact: &[String] = live.map(|l| l.redact_keys.as_slice()).unwrap_or_default();
        let mut req = first;
        for hop in 0..=MAX_REDIRECTS {
            let mut wire = req.clone();
            // Same origin means scheme, host and port: another port on the same host is another
            // server, and an https-to-http hop would send everything in clear.
            let same = same_origin(&wire.url, &origin);
            match live {
                Some(l) if hop == 0 || (same && l.check_url(&wire.url).is_ok()) => l.apply(&mut wire)?,
                _ if !same => {
                    wire.headers.retain(|(n, _)| !ALWAYS_SENSITIVE.contains(&n.to_ascii_lowercase().as_str()))
                }
                _ => {}
            }
            let started = Instant::now();
            // Redacting is only needed for a trace or an error message: do it lazily.
            let shown = || redact_url(&wire.url, redact);
            let client = self.clients.for_url(&wire.url).map_err(|m| InvokeError::new(ErrorKind::Network, m, link))?;
            let rb = wire.request(client);
            let mut resp = rb.send().await.map_err(|e| network_error(&e, &shown(), link))?;
            let status = resp.status().as_u16();
            if self.opts.verbose {
                eprintln!(
                    "linkrun: {} {} -> {} ({:.1} ms)",
                    wire.method,
                    shown(),
                    status,
                    started.elapsed().as_secs_f64() * 1000.0
                );
            }
            let location =
                resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
            if let (true, Some(loc)) = (matches!(status, 301 | 302 | 303 | 307 | 308), location) {
                let mut next = req.url.join(&loc).map_err(|_| {
                    InvokeError::new(
                        ErrorKind::Network,
                        format!("`{}` redirected to an invalid location", shown()),
                        link,
                    )
                })?;
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(InvokeError::new(
                        ErrorKind::Network,
                        format!("`{}` redirected to a non-http URL", shown()),
                        link,
                    ));
                }
                strip_userinfo(&mut next);
                req.url = next;
                if status == 303 || (matches!(status, 301 | 302) && req.method == Method::POST) {
                    req.method = Method::GET;
                    req.body = Body::Empty;
                    req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
                }
                continue;
            }
            let mut headers: Vec<(String, String)> = Vec::new();
            for (name, value) in resp.headers() {
                let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
                match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
                    Some((_, existing)) => {
                        existing.push_str(", ");
                        existing.push_str(&v);
                    }
                    None => headers.push((name.as_str().to_string(), v)),
                }
            }
            let cap = self.opts.max_response;
            let too_large = || {
                InvokeError::new(
                    ErrorKind::TooLarge,
                    format!(
                        "the response from `{}` is larger than {}: ask for less (paging, fewer fields) or fetch it in parts",
                        shown(),
                        fmt_bytes(cap)
                    ),
                    link,
                )
            };
            if resp.content_length().is_some_and(|n| n as usize > cap) {
                return Err(too_large());
            }
            let mut body = Vec::new();
            if wire.method != Method::HEAD {
                while let Some(chunk) = resp.chunk().await.map_err(|e| network_error(&e, &shown(), link))? {
                    if body.len() + chunk.len() > cap {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
            }
            return Ok(Response { status, headers, body });
        }
        Err(InvokeError::new(
            ErrorKind::Network,
            format!("too many redirects (more than {MAX_REDIRECTS}) starting from `{origin_host}`: check the URL"),
            link,
        ))
    }
}

fn network_error(e: &reqwest::Error, shown: &str, link: Option<&str>) -> InvokeError {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Network };
    // reqwest's own message embeds the full URL (query string included): describe the cause
    // from the source chain instead, and show the redacted URL.
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        cause = if e.is_connect() { "cannot connect".into() } else { "the connection failed".into() };
    }
    InvokeError::new(
        kind,
        format!("the request to `{shown}` failed: {cause}; check that the server is up and the URL is right"),
        link,
    )
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{}", s as u64) } else { format!("{s:.1}") }
}

fn fmt_bytes(n: usize) -> String {
    if n % (1024 * 1024) == 0 { format!("{} MiB", n / (1024 * 1024)) } else { format!("{n} bytes") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: serde_json::Value) -> Parameters {
        match v {
            serde_json::Value::Object(m) => Parameters::Map(m),
            _ => unreachable!(),
        }
    }

    fn req(method: &str, params: Option<Parameters>) -> ScriptRequest {
        ScriptRequest { url: "/x".into(), method: Some(method.into()), parameters: params, ..Default::default() }
    }

    #[test]
    fn map_parameters_are_query_for_get_delete_head_and_form_otherwise() {
        for m in ["GET", "DELETE", "HEAD"] {
            let o = build(&req(m, Some(map(json!({"a": 1, "b": "x y"})))), Some("http://h/api"), None).unwrap();
            assert_eq!(o.url.as_str(), "http://h/api/x?a=1&b=x+y", "{m}");
            assert_eq!(o.body, Body::Empty);
        }
        for m in ["POST", "PUT", "PATCH"] {
            let o = build(&req(m, Some(map(json!({"a": 1, "b": true})))), Some("http://h"), None).unwrap();
            assert_eq!(o.body, Body::Form(vec![("a".into(), "1".into()), ("b".into(), "true".into())]), "{m}");
        }
    }

    #[test]
    fn text_parameters_are_a_raw_body_typed_by_content() {
        let o = build(&req("POST", Some(Parameters::Text("{\"a\":1}".into()))), Some("http://h"), None).unwrap();
        assert_eq!(o.body, Body::Raw { bytes: b"{\"a\":1}".to_vec(), content_type: "application/json".into() });
        let o = build(&req("POST", Some(Parameters::Text("hello".into()))), Some("http://h"), None).unwrap();
        assert_eq!(o.body, Body::Raw { bytes: b"hello".to_vec(), content_type: "text/plain".into() });
        let mut r = req("POST", Some(Parameters::Text("a=b".into())));
        r.content_type = Some("application/x-www-form-urlencoded".into());
        let o = build(&r, Some("http://h"), None).unwrap();
        assert_eq!(
            o.body,
            Body::Raw { bytes: b"a=b".to_vec(), content_type: "application/x-www-form-urlencoded".into() }
        );
    }

    #[test]
    fn join_keeps_base_path() {
        assert_eq!(join_url("https://desk.zoho.com/api/v1", "/tickets"), "https://desk.zoho.com/api/v1/tickets");
        assert_eq!(join_url("https://desk.zoho.com/api/v1/", "tickets"), "https://desk.zoho.com/api/v1/tickets");
    }

    #[test]
    fn redaction_hides_credential_query_values() {
        let u = Url::parse("http://h/x?api_key=abc&q=1&MyKey=zzz").unwrap();
        assert_eq!(redact_url(&u, &["MyKey".to_string()]), "http://h/x?api_key=[redacted]&q=1&MyKey=[redacted]");
    }

    #[test]
    fn credential_headers_are_sent_marked_sensitive() {
        use crate::auth::oauth1::OAuth1;
        use crate::auth::rfc5849::SignatureMethod;
        use crate::service::Placement;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = Url::parse("https://api.example.com/x").unwrap();
        let mut o = Outgoing::new(Method::GET, url.clone());
        o.set_header("X-Plain", "visible");
        o.set_header("cookie", "c=1");
        Basic { username: "u".to_string().into(), password: "p".to_string().into() }.apply(&mut o);
        let key = PlacedValue { key: "X-Api-Key".into(), placement: Placement::Header, value: "k".to_string().into() };
        place_values(&mut o, &[key], "l").unwrap();
        let r = o.request(&client).build().unwrap();
        for name in ["authorization", "x-api-key", "cookie"] {
            assert!(r.headers()[name].is_sensitive(), "{name}");
        }
        assert!(!r.headers()["x-plain"].is_sensitive());
        let signer = OAuth1 {
            consumer_key: "ck".to_string().into(),
            consumer_secret: Some("cs".to_string().into()),
            private_key: None,
            token: Some("t".to_string().into()),
            token_secret: Some("ts".to_string().into()),
            method: SignatureMethod::HmacSha1,
            realm: None,
            placement: Placement::Header,
        };
        let mut o = Outgoing::new(Method::GET, url);
        signer.apply(&mut o, "l", &[]).unwrap();
        let r = o.request(&client).build().unwrap();
        assert!(r.headers()["authorization"].is_sensitive());
    }

    #[test]
    fn schemes_are_case_insensitive_and_userinfo_is_refused_on_a_connection() {
        let r = |url: &str| ScriptRequest { url: url.into(), ..Default::default() };
        let o = build(&r("HTTPS://API.example.com/v1"), Some("https://base.example/api"), None).unwrap();
        assert_eq!(o.url.as_str(), "https://api.example.com/v1");
        let o = build(&r("Http://h/x"), None, None).unwrap();
        assert_eq!(o.url.as_str(), "http://h/x");
        let o = build(&r("http://u:secret-pw@h/x"), None, None).unwrap();
        assert_eq!(o.url.as_str(), "http://h/x");
        let e = build(&r("http://u:secret-pw@h/x"), None, Some("conn")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(!e.message.contains("secret-pw") && !e.message.contains("u:"), "{}", e.message);
        let e = build(&r("https://only-user@h/x"), None, Some("conn")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
    }

    #[test]
    fn same_origin_is_scheme_host_and_port() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(&u("http://127.0.0.1/a"), &u("http://127.0.0.1:80/b")));
        assert!(same_origin(&u("https://API.example.com/a"), &u("https://api.example.com:443/b")));
        assert!(!same_origin(&u("http://127.0.0.1:8080/"), &u("http://127.0.0.1:8081/")));
        assert!(!same_origin(&u("https://h/"), &u("http://h/")));
        assert!(!same_origin(&u("https://h/"), &u("https://h2/")));
    }

    #[test]
    fn body_with_text_parameters_is_refused() {
        let mut r = req("POST", Some(Parameters::Text("x".into())));
        r.body = Some(map(json!({"a": 1})));
        let e = build(&r, Some("http://h"), None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
    }
}
