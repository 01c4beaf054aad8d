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
//! - Data-center-portable URLs: on a connection, an absolute URL on the API host of another data
//!   center of its service (another data center's `base_url` origin, e.g. `https://www.zohoapis.com`
//!   through a connection in `eu`) goes to the connection's own base URL, same path and query,
//!   before the host rules are checked; `--verbose` says so. `dc_portable_urls = false` in the
//!   service or in `linkrun.toml` refuses such URLs instead, naming the host and the data center.
//! - Redirects (at most 10) are followed hop by hop by the send path, and each hop decides on
//!   credentials; responses over the size cap are a `too_large` error ([`mod@crate::http::send`]).
//!
//! - Retries ([`crate::http::retry`] decides): a retried answer or failure is sent again after
//!   the wait it asks for, within the request's `retry` values over the service's `[retry]`;
//!   a wait longer than `max_wait_s` or the time left returns the answer at once with that wait.
//!   Each attempt gets the request's timeout (cut to the time left); `--verbose` traces each.
//!
//! The layers of a call, each below the other: this module (Deluge semantics, retries) → the auth layer
//! ([`crate::auth::live`]: credentials, refresh, one retry after 401) → the send path
//! ([`crate::http`]: host rules, timeout, size cap, redirects).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use strum::VariantNames as _;
use url::Url;

pub use crate::auth::live::{Failure, Live};
use crate::catalog::Catalog;
use crate::home::Home;
use crate::http::Clients;
pub use crate::http::budget::{Budget, Budgets, LimitsDef, Refusal};
pub use crate::http::retry::{Attempts, RetryDef, RetryPolicy};
use crate::http::rules::{dc_portable_target, has_http_scheme, has_userinfo, join_url, redact_url, strip_userinfo};
use crate::http::send::{self, NoCredentials, SendOptions, fmt_secs};
pub use crate::http::send::{DEFAULT_MAX_RESPONSE, DEFAULT_TIMEOUT, MAX_REDIRECTS};
pub use crate::http::{Body, ErrorKind, HttpMethod, InvokeError, Outgoing, Response};
use crate::link_name::LinkName;
use crate::vault::Vault;

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
    /// Link name (checked where the script's text is read).
    pub connection: Option<LinkName>,
    /// Per-request timeout.
    pub timeout: Option<Duration>,
    /// The request's `retry` key: `false`, or values over the service's `[retry]`.
    pub retry: Option<RequestRetry>,
}

/// A request's `retry` key.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestRetry {
    /// `retry: false`: one attempt.
    Off,
    /// `retry: #{ ... }` (or `true`): these values over the service's.
    Over(RetryDef),
}

/// Checks the `connection` a script names: a name that breaks the link-name rule is a catchable
/// `connection` error (no connection can have it), "invalid link name `X`: RULE".
pub fn connection_name(link: &str) -> Result<LinkName, InvokeError> {
    LinkName::parse(link).map_err(|rule| InvokeError::connection(format!("invalid link name `{link}`: {rule}"), link))
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
    let method: Method = method_name
        .parse::<HttpMethod>()
        .map_err(|_| {
            InvokeError::bad_request(
                format!("unknown request type `{method_name}`: use {}", or_list(HttpMethod::VARIANTS)),
                link,
            )
        })?
        .into();
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

/// "a, b or c".
fn or_list(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
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

/// What a thread that runs script after script (a serve worker) keeps between runs: the open
/// vault; the catalog of services, parsed again only when a file of the installed or local
/// services changes (the files are looked at, a directory listing and a `stat` each, at most
/// once per [`CATALOG_RECHECK`], so a service file edited while serve runs is used within that
/// time); and the connections its runs used (record, opened credentials, tokens,
/// rate budget), kept while the vault and the catalog stay as they were. A run checks that once,
/// at its first connection: any commit to the vault by another process or thread (a token
/// refreshed elsewhere, `connection authorize`, `delete`, `limits`) or by this thread (its own
/// refresh, a status turned `needs_reauth`), or a catalog parsed again, drops every kept
/// connection, so a run never acts on a connection older than the vault it starts with.
#[derive(Default)]
pub struct HandleCache {
    vault: RefCell<Option<Rc<RefCell<Vault>>>>,
    catalog: RefCell<Option<(CatalogStamp, Rc<Catalog>)>>,
    /// When the service files were last looked at.
    catalog_seen: std::cell::Cell<Option<std::time::Instant>>,
    /// Bumped each time the catalog is parsed again.
    catalog_generation: std::cell::Cell<u64>,
    kept: RefCell<KeptConnections>,
}

/// Connections kept between runs and what they were loaded under.
#[derive(Default)]
struct KeptConnections {
    /// (the vault's change stamp, the catalog's generation) when they were loaded.
    stamp: Option<((i64, u64), u64)>,
    live: HashMap<LinkName, Rc<Live>>,
    budgets: HashMap<LinkName, Option<Arc<Budget>>>,
}

impl fmt::Debug for HandleCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandleCache").finish_non_exhaustive()
    }
}

/// How long a kept catalog is used before its service files are looked at again.
pub const CATALOG_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// The service files a catalog was loaded from: (path, modified, length) of each, sorted.
type CatalogStamp = Vec<(std::path::PathBuf, Option<SystemTime>, u64)>;

fn catalog_stamp(home: &Home) -> CatalogStamp {
    let mut out = Vec::new();
    for dir in [home.services_dir(), std::path::PathBuf::from("connections")] {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "toml")
                && let Ok(m) = e.metadata()
            {
                out.push((p, m.modified().ok(), m.len()));
            }
        }
    }
    out.sort();
    out
}

/// Options of an invoker.
#[derive(Debug, Clone)]
pub struct InvokerOptions {
    /// Trace each request on stderr.
    pub verbose: bool,
    /// Response-size cap in bytes.
    pub max_response: usize,
    /// The rate budgets of the process, shared by every invoker it makes (a server's workers).
    pub budgets: Budgets,
    /// Where each request sent is traced for the run record (none: not traced).
    pub trace: Option<crate::runs::RequestLog>,
    /// Requests through no connection may reach public addresses only (serve's scripts, unless
    /// `[serve] allow_private_network`).
    pub public_only: bool,
    /// Handles kept between runs (none: opened for this invoker).
    pub cache: Option<Rc<HandleCache>>,
}

impl Default for InvokerOptions {
    fn default() -> Self {
        InvokerOptions {
            verbose: false,
            max_response: DEFAULT_MAX_RESPONSE,
            budgets: Budgets::default(),
            trace: None,
            public_only: false,
            cache: None,
        }
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
    live: RefCell<HashMap<LinkName, Rc<Live>>>,
    portable: RefCell<HashMap<LinkName, Rc<Portability>>>,
    /// `dc_portable_urls` of `linkrun.toml`, read on first need.
    config_portable: RefCell<Option<Option<bool>>>,
    /// The retry policy of each connection's service, resolved on first need.
    policies: RefCell<HashMap<LinkName, Rc<RetryPolicy>>>,
    /// The policy of requests without a connection.
    default_policy: Rc<RetryPolicy>,
    /// The rate budget of each connection (`None`: unlimited), resolved on first need.
    budgets: RefCell<HashMap<LinkName, Option<Arc<Budget>>>>,
    /// Whether this run has checked the kept connections of `opts.cache` against the vault.
    kept_checked: std::cell::Cell<bool>,
}

/// What data-center-portable URLs need to know about a connection: its data center, the base URLs
/// of its service's other data centers, and whether the service turned the rule off.
#[derive(Debug)]
struct Portability {
    data_center: Option<String>,
    other_bases: Vec<String>,
    service_setting: Option<bool>,
}

impl fmt::Debug for Invoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invoker").field("home", &self.home).field("clients", &self.clients).finish_non_exhaustive()
    }
}

impl Invoker {
    /// A new invoker for the given home.
    pub fn new(home: Home, opts: InvokerOptions) -> Invoker {
        Invoker::with_clients(home, opts, Clients::default())
    }

    /// An invoker that sends through `clients` (shared pools, as a serve worker keeps them).
    pub fn with_clients(home: Home, opts: InvokerOptions, clients: Clients) -> Invoker {
        Invoker {
            home,
            opts,
            clients,
            vault: RefCell::new(None),
            catalog: RefCell::new(None),
            live: RefCell::new(HashMap::new()),
            portable: RefCell::new(HashMap::new()),
            config_portable: RefCell::new(None),
            policies: RefCell::new(HashMap::new()),
            default_policy: Rc::new(RetryPolicy::default()),
            budgets: RefCell::new(HashMap::new()),
            kept_checked: std::cell::Cell::new(false),
        }
    }

    /// The default connection of a service (`linkrun connection default SERVICE LINK`), if set.
    /// No vault yet means none (and creates none).
    pub fn default_connection(&self, service: &str) -> Result<Option<LinkName>, Failure> {
        if self.vault.borrow().is_none() && !Vault::exists(&self.home) {
            return Ok(None);
        }
        let vault = self.vault()?;
        let link = vault.borrow().default_connection(service).map_err(|e| Failure::Fatal(e.into()))?;
        Ok(link)
    }

    fn portability(&self, live: &Live) -> Result<Rc<Portability>, Failure> {
        if let Some(p) = self.portable.borrow().get(&live.link_name) {
            return Ok(p.clone());
        }
        let vault = self.vault()?;
        let rec = vault.borrow().get(&live.link_name).map_err(|e| Failure::Fatal(e.into()))?;
        let data_center = rec.and_then(|r| r.data_center);
        let catalog = self.catalog()?;
        let (other_bases, service_setting) = match catalog.get(&live.service) {
            Ok(service) => (
                service
                    .data_centers()
                    .into_iter()
                    .filter(|d| Some(*d) != data_center.as_deref())
                    .filter_map(|d| service.endpoint(Some(d), None).base_url)
                    // A loopback base (the sandbox) is a local server, not a data center's API
                    // host: a URL for it is never moved to a production data center.
                    .filter(|b| {
                        !Url::parse(b).is_ok_and(|u| crate::http::rules::is_loopback(u.host_str().unwrap_or_default()))
                    })
                    .collect(),
                service.def.dc_portable_urls,
            ),
            Err(_) => (Vec::new(), None),
        };
        let p = Rc::new(Portability { data_center, other_bases, service_setting });
        self.portable.borrow_mut().insert(live.link_name.clone(), p.clone());
        Ok(p)
    }

    fn config_portable(&self) -> Result<Option<bool>, Failure> {
        if let Some(v) = *self.config_portable.borrow() {
            return Ok(v);
        }
        let v = crate::config::Config::load(&self.home).map_err(|e| Failure::Fatal(e.into()))?.dc_portable_urls;
        *self.config_portable.borrow_mut() = Some(v);
        Ok(v)
    }

    /// Data-center-portable URLs (see the module doc): sends an absolute URL on another data
    /// center's API host of the connection's service to the connection's own base URL, or refuses
    /// it when the service or `linkrun.toml` turned that off. A URL the connection's own hosts
    /// allow, or any other host, is left to the host rules.
    fn follow_data_center(&self, live: &Live, url: &mut Url) -> Result<(), Failure> {
        let Some(own_base) = live.endpoint.base_url.as_deref() else { return Ok(()) };
        if live.check_url(url).is_ok() {
            return Ok(());
        }
        let p = self.portability(live)?;
        let Some((target, from)) = dc_portable_target(url, own_base, &p.other_bases) else { return Ok(()) };
        let off = match (p.service_setting, self.config_portable()?) {
            (Some(false), _) => Some(format!("service `{}` sets `dc_portable_urls = false`", live.service)),
            (_, Some(false)) => Some("`linkrun.toml` sets `dc_portable_urls = false`".to_string()),
            _ => None,
        };
        let host = url.host_str().unwrap_or_default().to_string();
        let dc = p.data_center.as_deref().unwrap_or("none");
        if let Some(why) = off {
            return Err(InvokeError::new(
                ErrorKind::HostRefused,
                format!(
                    "refusing `{host}` on connection `{}`: it is the API host of another data center of service `{}`, the connection is in data center `{dc}`, and {why}; use a relative URL (joined to `{own_base}`), or allow dc-portable URLs again",
                    live.link_name, live.service
                ),
                Some(&live.link_name),
            )
            .into());
        }
        if self.opts.verbose {
            eprintln!("dc-portable: {from} → {}", own_base.trim_end_matches('/'));
        }
        *url = target;
        Ok(())
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
        if let Some(v) = self.opts.cache.as_ref().and_then(|c| c.vault.borrow().clone()) {
            *self.vault.borrow_mut() = Some(v.clone());
            return Ok(v);
        }
        let v = Rc::new(RefCell::new(Vault::open(&self.home).map_err(|e| Failure::Fatal(e.into()))?));
        *self.vault.borrow_mut() = Some(v.clone());
        if let Some(c) = &self.opts.cache {
            *c.vault.borrow_mut() = Some(v.clone());
        }
        Ok(v)
    }

    fn catalog(&self) -> Result<Rc<Catalog>, Failure> {
        if let Some(c) = self.catalog.borrow().as_ref() {
            return Ok(c.clone());
        }
        if let Some(cache) = &self.opts.cache
            && let Some((_, c)) = cache.catalog.borrow().as_ref()
            && cache.catalog_seen.get().is_some_and(|at| at.elapsed() < CATALOG_RECHECK)
        {
            *self.catalog.borrow_mut() = Some(c.clone());
            return Ok(c.clone());
        }
        let stamp = self.opts.cache.as_ref().map(|c| {
            c.catalog_seen.set(Some(std::time::Instant::now()));
            catalog_stamp(&self.home)
        });
        if let (Some(cache), Some(stamp)) = (&self.opts.cache, &stamp)
            && let Some((seen, c)) = cache.catalog.borrow().as_ref()
            && seen == stamp
        {
            *self.catalog.borrow_mut() = Some(c.clone());
            return Ok(c.clone());
        }
        let c = Rc::new(Catalog::load(&self.home).map_err(Failure::Fatal)?);
        *self.catalog.borrow_mut() = Some(c.clone());
        if let (Some(cache), Some(stamp)) = (&self.opts.cache, stamp) {
            *cache.catalog.borrow_mut() = Some((stamp, c.clone()));
            cache.catalog_generation.set(cache.catalog_generation.get() + 1);
        }
        Ok(c)
    }

    /// The connections kept from earlier runs, checked against the vault and the catalog once
    /// per run (see [`HandleCache`]); `None` without a cache.
    fn kept(&self) -> Result<Option<&HandleCache>, Failure> {
        let Some(cache) = self.opts.cache.as_deref() else { return Ok(None) };
        if !self.kept_checked.get() {
            let vault = self.vault()?;
            self.catalog()?;
            let stamp =
                (vault.borrow().change_stamp().map_err(|e| Failure::Fatal(e.into()))?, cache.catalog_generation.get());
            let mut kept = cache.kept.borrow_mut();
            if kept.stamp != Some(stamp) {
                *kept = KeptConnections { stamp: Some(stamp), ..Default::default() };
            }
            self.kept_checked.set(true);
        }
        Ok(Some(cache))
    }

    /// Resolves a link name to a usable connection (loaded once per run, then cached).
    pub fn live(&self, link: &LinkName) -> Result<Rc<Live>, Failure> {
        if let Some(l) = self.live.borrow().get(link) {
            return Ok(l.clone());
        }
        // No vault yet: no connection can exist, and a script must not create an empty vault.
        let open =
            self.vault.borrow().is_some() || self.opts.cache.as_ref().is_some_and(|c| c.vault.borrow().is_some());
        if !open && !Vault::exists(&self.home) {
            return Err(
                InvokeError::from(crate::connection::ConnectionError::Unknown { link: link.to_string() }).into()
            );
        }
        let kept = self.kept()?;
        if let Some(l) = kept.and_then(|c| c.kept.borrow().live.get(link).cloned()) {
            self.live.borrow_mut().insert(link.clone(), l.clone());
            return Ok(l);
        }
        let vault = self.vault()?;
        let catalog = self.catalog()?;
        let live = Rc::new(Live::load(&vault, &catalog, link)?);
        self.live.borrow_mut().insert(link.clone(), live.clone());
        if let Some(c) = kept {
            c.kept.borrow_mut().live.insert(link.clone(), live.clone());
        }
        Ok(live)
    }

    /// The retry policy of a request: the defaults, the service's `[retry]`, the request's `retry`.
    fn policy(&self, live: Option<&Live>, over: Option<&RequestRetry>) -> Result<Rc<RetryPolicy>, Failure> {
        let base = match live {
            None => self.default_policy.clone(),
            Some(l) => {
                let cached = self.policies.borrow().get(&l.link_name).cloned();
                match cached {
                    Some(p) => p,
                    None => {
                        let catalog = self.catalog()?;
                        let def = catalog
                            .get(&l.service)
                            .ok()
                            .and_then(|s| s.def.retry.as_ref().map(|r| r.get_ref().clone()));
                        let p = match def {
                            Some(d) => Rc::new(RetryPolicy::default().with(&d)),
                            None => self.default_policy.clone(),
                        };
                        self.policies.borrow_mut().insert(l.link_name.clone(), p.clone());
                        p
                    }
                }
            }
        };
        Ok(match over {
            None => base,
            Some(RequestRetry::Off) => Rc::new(RetryPolicy { max_attempts: 1, ..(*base).clone() }),
            Some(RequestRetry::Over(d)) => Rc::new((*base).clone().with(d)),
        })
    }

    /// The limits of a connection: its service's `[limits]` with the connection's own values
    /// (`linkrun connection limits`) over them.
    pub fn limits(&self, live: &Live) -> Result<LimitsDef, Failure> {
        let catalog = self.catalog()?;
        let service = catalog.get(&live.service).ok().and_then(|s| s.def.limits.as_ref().map(|l| l.get_ref().clone()));
        let vault = self.vault()?;
        let own = vault.borrow().connection_limits(&live.link_name).map_err(|e| Failure::Fatal(e.into()))?;
        let own: LimitsDef = match own {
            None => LimitsDef::default(),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                InvokeError::connection(
                    format!(
                        "the limits stored for connection `{}` cannot be read ({e}): set them again with `linkrun connection limits {} --clear`",
                        live.link_name, live.link_name
                    ),
                    &live.link_name,
                )
            })?,
        };
        Ok(service.unwrap_or_default().with(&own))
    }

    /// The budget of a connection, shared by the process's invokers (`None`: unlimited).
    fn budget(&self, live: &Live) -> Result<Option<Arc<Budget>>, Failure> {
        if let Some(b) = self.budgets.borrow().get(&live.link_name) {
            return Ok(b.clone());
        }
        let kept = self.kept()?;
        if let Some(b) = kept.and_then(|c| c.kept.borrow().budgets.get(&live.link_name).cloned()) {
            self.budgets.borrow_mut().insert(live.link_name.clone(), b.clone());
            return Ok(b);
        }
        let limits = self.limits(live)?;
        let key = format!("{}\u{0}{}", self.home.root().display(), live.link_name);
        let b = self.opts.budgets.get(&key, &limits);
        self.budgets.borrow_mut().insert(live.link_name.clone(), b.clone());
        if let Some(c) = kept {
            c.kept.borrow_mut().budgets.insert(live.link_name.clone(), b.clone());
        }
        Ok(b)
    }

    /// Sends one script request, each attempt within `timeout` (a token refresh included) and
    /// all of them within `timeout` from now.
    pub async fn send(&self, req: &ScriptRequest, timeout: Duration) -> Result<Response, Failure> {
        self.send_until(req, timeout, Instant::now() + timeout).await
    }

    /// Sends one script request, retrying per its policy (see the module doc): each attempt
    /// within `timeout`, cut to what is left before `deadline`, and no wait slept past it.
    pub async fn send_until(
        &self,
        req: &ScriptRequest,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<Response, Failure> {
        let live = match &req.connection {
            Some(l) => Some(self.live(l)?),
            None => None,
        };
        let link = live.as_ref().map(|l| l.link_name.as_str());
        let mut out = build(req, live.as_ref().and_then(|l| l.endpoint.base_url.as_deref()), link)?;
        if let Some(l) = live.as_deref().filter(|_| has_http_scheme(&req.url)) {
            self.follow_data_center(l, &mut out.url)?;
        }
        let live_ref = live.as_deref().filter(|l| l.carries_credentials());
        if let Some(l) = live_ref {
            l.check_url(&out.url)?;
        }
        let policy = self.policy(live.as_deref(), req.retry.as_ref())?;
        let budget = match live.as_deref() {
            Some(l) => self.budget(l)?,
            None => None,
        };
        let redact = live_ref.map(|l| l.redact_keys.as_slice()).unwrap_or_default();
        // Whether a status other than 429 or a transport failure may be retried: decided once.
        let repeatable = policy.method_retried(&out.method, &out.headers);
        let traced = self.opts.trace.as_ref().map(|_| (out.method.to_string(), redact_url(&out.url, redact)));
        let started = Instant::now();
        let mut made = 0u32;
        let mut out = Some(out);
        let result = async {
            loop {
                made += 1;
                let this = match made < policy.max_attempts {
                    true => out.clone(),
                    false => out.take(),
                };
                let Some(this) = this else { unreachable!("the last attempt takes the request") };
                let left = deadline.saturating_duration_since(Instant::now());
                let each = if made == 1 { timeout } else { timeout.min(left) };
                let answered = AtomicBool::new(false);
                let opts = SendOptions {
                    timeout: each,
                    max_response: self.opts.max_response,
                    link,
                    redact,
                    verbose: self.opts.verbose,
                    answered: Some(&answered),
                    public_only: self.opts.public_only && live.is_none(),
                    ..SendOptions::default()
                };
                // The budget's turn is held while the attempt is on the wire, not while it waits
                // to be retried.
                let turn = match &budget {
                    None => None,
                    Some(b) => match b.turn(policy.max_wait.min(left)).await {
                        Ok(t) => Some(t),
                        Err(r) => {
                            let l = live.as_deref().map(|l| l.link_name.as_str()).unwrap_or_default();
                            let e = over_budget(&r, l, policy.max_wait, left);
                            return counted(Err(e.into()), Attempts { made: made - 1, retry_after: refusal_wait(&r) });
                        }
                    },
                };
                if self.opts.verbose
                    && let Some(t) = turn.as_ref().filter(|t| !t.waited.is_zero())
                {
                    eprintln!(
                        "linkrun: waited {} s for the rate budget of `{}`",
                        fmt_secs(t.waited),
                        link.unwrap_or_default()
                    );
                }
                let result = self.attempt(live_ref, this, &opts).await;
                drop(turn);
                let wait = match &result {
                    Ok(r) if policy.statuses.contains(&r.status) && (r.status == 429 || repeatable) => {
                        Some(policy.wait(made + 1, &r.headers, SystemTime::now()))
                    }
                    Err(Failure::Invoke(e)) if e.unanswered && repeatable => {
                        Some(policy.wait(made + 1, &[], SystemTime::now()))
                    }
                    _ => None,
                };
                let Some(wait) = wait.filter(|_| made < policy.max_attempts) else {
                    return counted(result, Attempts { made, retry_after: None });
                };
                let left = deadline.saturating_duration_since(Instant::now());
                if wait.delay > policy.max_wait || wait.delay >= left {
                    if self.opts.verbose {
                        let (limit, what) = if wait.delay > policy.max_wait {
                            (policy.max_wait, "`max_wait_s`")
                        } else {
                            (left, "the time left")
                        };
                        eprintln!(
                            "linkrun: not retrying: the wait of {} s ({}) is longer than {what} ({} s)",
                            fmt_secs(wait.delay),
                            wait.source,
                            fmt_secs(limit)
                        );
                    }
                    return counted(result, Attempts { made, retry_after: Some(wait.delay) });
                }
                if self.opts.verbose {
                    eprintln!(
                        "linkrun: attempt {}/{} after {} s ({})",
                        made + 1,
                        policy.max_attempts,
                        fmt_secs(wait.delay),
                        wait.source
                    );
                }
                tokio::time::sleep(wait.delay).await;
            }
        }
        .await;
        crate::telemetry::request(link, result.as_ref().ok().map(|r| r.status));
        if let (Some(log), Some((method, url))) = (&self.opts.trace, traced) {
            let (status, attempts, bytes) = match &result {
                Ok(r) => (Some(r.status), r.attempts.made, r.body.len() as u64),
                Err(Failure::Invoke(e)) => (None, e.attempts.made, 0),
                Err(Failure::Fatal(_)) => (None, made, 0),
            };
            log.push(crate::runs::RequestTrace {
                method,
                connection: link.map(str::to_string),
                url,
                status,
                attempts,
                duration_ms: started.elapsed().as_millis() as u64,
                bytes,
            });
        }
        result
    }

    /// One attempt: through the auth layer when the connection carries credentials, the whole
    /// of it (a token refresh included) within `opts.timeout`.
    async fn attempt(&self, live: Option<&Live>, out: Outgoing, opts: &SendOptions<'_>) -> Result<Response, Failure> {
        let Some(l) = live else {
            return Ok(send::send(&self.clients, out, opts, &NoCredentials).await?);
        };
        let vault = self.vault().map_err(|f| match f {
            Failure::Invoke(e) => e,
            Failure::Fatal(e) => InvokeError::connection(e.to_string(), &l.link_name),
        })?;
        let shown = redact_url(&out.url, opts.redact);
        match tokio::time::timeout(opts.timeout, l.send(&self.clients, &vault, out, opts)).await {
            Ok(r) => Ok(r?),
            Err(_) => {
                let unanswered = !opts.answered.is_some_and(|a| a.load(Ordering::Relaxed));
                Err(send::timed_out(&shown, opts.timeout, opts.link, unanswered).into())
            }
        }
    }
}

/// The `rate_limited` error of a request the budget of connection `link` refused.
fn over_budget(r: &Refusal, link: &str, max_wait: Duration, left: Duration) -> InvokeError {
    let (limit, why) =
        if max_wait <= left { (max_wait, "`max_wait_s`") } else { (left, "the time the script has left") };
    let message = match r {
        Refusal::Rate { wait, limit: rule } => format!(
            "connection `{link}` is over its rate budget: {rule} makes the next request wait {} s, longer than {why} ({} s); wait and try again, or change the limits with `linkrun connection limits {link}`",
            fmt_secs(*wait),
            fmt_secs(limit)
        ),
        Refusal::Busy { max, waited } => format!(
            "connection `{link}` is over its rate budget: all {max} request slots (`max_concurrency = {max}`) stayed busy for {} s, {why} ({} s); send fewer requests at once, or change the limits with `linkrun connection limits {link}`",
            fmt_secs(*waited),
            fmt_secs(limit)
        ),
    };
    InvokeError::new(ErrorKind::RateLimited, message, Some(link))
}

/// The wait a refusal asks for, when it knows one.
fn refusal_wait(r: &Refusal) -> Option<Duration> {
    match r {
        Refusal::Rate { wait, .. } => Some(*wait),
        Refusal::Busy { .. } => None,
    }
}

/// The result of the last attempt with the count of attempts on it.
fn counted(result: Result<Response, Failure>, attempts: Attempts) -> Result<Response, Failure> {
    match result {
        Ok(mut r) => {
            r.attempts = attempts;
            Ok(r)
        }
        Err(Failure::Invoke(mut e)) => {
            e.attempts = attempts;
            Err(Failure::Invoke(e))
        }
        Err(f) => Err(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{PlacedValue, basic::Basic, place_values};
    use crate::http::rules::same_origin;
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
    fn a_script_connection_is_checked_against_the_link_name_rule() {
        assert_eq!(connection_name("crm").unwrap().as_str(), "crm");
        let e = connection_name("Crm").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Connection);
        assert_eq!(e.connection.as_deref(), Some("Crm"));
        assert_eq!(e.message, format!("invalid link name `Crm`: {}", crate::link_name::LINK_NAME_RULE));
    }

    #[test]
    fn an_unknown_request_type_lists_the_methods() {
        let e = build(&req("FETCH", None), Some("http://h"), None).unwrap_err();
        assert_eq!(e.message, "unknown request type `FETCH`: use GET, POST, PUT, PATCH, DELETE or HEAD");
        assert_eq!(build(&req("patch", None), Some("http://h"), None).unwrap().method, Method::PATCH);
    }

    #[test]
    fn body_with_text_parameters_is_refused() {
        let mut r = req("POST", Some(Parameters::Text("x".into())));
        r.body = Some(map(json!({"a": 1})));
        let e = build(&r, Some("http://h"), None).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
    }
}
