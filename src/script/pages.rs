//! `invoke_pages` and `invoke_records`: a listing's pages as a lazy iterator, and all its records
//! as one list, paged the way the connection's service says (`[pagination]`, see
//! [`crate::http::pagination`]) or the request's `pagination` map says over it.
//!
//! - `invoke_pages(map)` takes `invoke_url`'s map plus `pagination`, `max_pages` and
//!   `max_records`, and returns a value to loop over: `for page in invoke_pages(#{ ... }) { }`.
//!   Nothing is sent until the loop asks for the first page, and each page is fetched when the
//!   loop asks for it, so a loop that breaks after page k made exactly k requests, and only one
//!   page is held at a time. Looping over the same value again starts from the first page.
//! - Each page is the list of its records; with `detailed: true` it is
//!   `#{ records, page, responseCode, responseHeader, responseText }`.
//! - The listing ends on the API's end signal, an empty page, a 204 or 304 answer, or at
//!   `max_pages` / `max_records` (the last page cut to `max_records`).
//! - Every page goes through [`super::invoke::send_one`], as `invoke_url` does: the connection's
//!   credentials, host rules, retries, the request's timeout cut to the time left, `--verbose`
//!   traces. A page that fails after its retries raises the catchable error map with `page` (its
//!   number, from 1); a status other than 2xx raises `kind: "http_status"` with `status` and
//!   `body`; an answer without its records list raises `kind: "bad_response"`.
//! - `invoke_records(map)` collects the records of every page into one list, at most
//!   `max_records` ([`DEFAULT_MAX_RECORDS`] when not given: reaching that while the API has more is
//!   a `too_large` error, so a default never cuts a listing silently).

use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map, NativeCallContext, Position};
use url::Url;

use super::invoke::{body_value, read_request, send_one, throw, too_large};
use super::{RunState, Stop, builtins};
use crate::catalog::Catalog;
use crate::home::Home;
use crate::http::pagination::{Answer, PaginationDef, Paging, Progress, Step};
use crate::http::rules::{has_http_scheme, join_url};
use crate::invoke::{Failure, InvokeError, Parameters, ScriptRequest};

/// The most records `invoke_records` collects when the request gives no `max_records`.
pub const DEFAULT_MAX_RECORDS: u64 = 50_000;

/// The largest `max_pages` and `max_records` (a script list holds at most 1,000,000 items).
pub const MAX_LIMIT: u64 = super::MAX_ARRAY_SIZE as u64;

/// The keys `invoke_pages` reads besides `invoke_url`'s.
const OWN_KEYS: &[&str] = &["pagination", "max_pages", "max_records"];

/// What the registered functions share: the run's state and the service catalog, loaded on
/// first need (only a listing on a connection needs it).
struct Ctx {
    state: Rc<RunState>,
    home: Home,
    catalog: RefCell<Option<Rc<Catalog>>>,
}

/// The value `invoke_pages` returns: a listing not yet fetched. Scripts loop over it.
#[derive(Clone)]
pub struct Pages(Rc<Listing>);

struct Listing {
    ctx: Rc<Ctx>,
    /// The first page's request, paging parameters included.
    first: ScriptRequest,
    detailed: bool,
    paging: Paging,
    /// The offset of the first page (`offset` style).
    first_offset: u64,
    max_pages: Option<u64>,
    max_records: Option<u64>,
    /// Where `invoke_pages` was called.
    pos: Position,
    /// The request's `url` as the script wrote it, in messages.
    shown: String,
}

impl IntoIterator for Pages {
    type Item = Result<Dynamic, Box<EvalAltResult>>;
    type IntoIter = PageIter;
    fn into_iter(self) -> PageIter {
        let progress = Progress { offset: self.0.first_offset, ..Progress::default() };
        PageIter {
            next: Some(self.0.first.clone()),
            listing: self.0,
            progress,
            records: 0,
            capped: false,
            pending: None,
        }
    }
}

/// A listing being walked: the request of the next page, if there is one.
pub struct PageIter {
    listing: Rc<Listing>,
    next: Option<ScriptRequest>,
    progress: Progress,
    /// Records delivered so far.
    records: u64,
    /// `max_records` ended the listing while the API had more.
    capped: bool,
    /// An error found after delivering a page, raised when the next one is asked for.
    pending: Option<Box<EvalAltResult>>,
}

impl Iterator for PageIter {
    type Item = Result<Dynamic, Box<EvalAltResult>>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            self.next = None;
            return Some(Err(e));
        }
        match self.fetch() {
            Ok(page) => page.map(Ok),
            Err(e) => {
                self.next = None;
                Some(Err(e))
            }
        }
    }
}

impl PageIter {
    /// Fetches the next page: `Ok(None)` when the listing is over.
    fn fetch(&mut self) -> Result<Option<Dynamic>, Box<EvalAltResult>> {
        let l = self.listing.clone();
        let Some(req) = self.next.take() else { return Ok(None) };
        if l.max_pages.is_some_and(|m| self.progress.pages >= m) {
            return Ok(None);
        }
        let page = self.progress.pages + 1;
        let resp = send_one(&l.ctx.state, &req, l.pos).map_err(|e| l.with_page(*e, page))?;
        if resp.status == 204 || resp.status == 304 {
            return Ok(None);
        }
        if !(200..300).contains(&resp.status) {
            return Err(l.status_error(page, &req, resp.status, &resp.body, resp.attempts.made));
        }
        let mut body = body_value(&resp.body);
        if let Err(what) = super::check_data_size(&body) {
            return Err(l.error(
                too_large(format!(
                    "page {page} of `{}` has {what}: ask for fewer records per page (`page_size`) or fewer fields",
                    l.shown
                )),
                page,
            ));
        }
        let count = match count_at(&body, &l.paging.records) {
            Ok(n) => n,
            Err(why) => return Err(l.bad_response(page, why)),
        };
        if count == 0 {
            // An empty page ends the listing and is not delivered.
            return Ok(None);
        }
        let step = l.paging.next(&mut self.progress, &View { body: &body, headers: &resp.headers }, count);
        let mut records = if l.detailed {
            at(&body, &l.paging.records).map(|d| d.into_array().unwrap_or_default()).unwrap_or_default()
        } else {
            take_at(&mut body, &l.paging.records).into_array().unwrap_or_default()
        };
        let more = !matches!(step, Step::End);
        if let Some(max) = l.max_records {
            let left = max.saturating_sub(self.records) as usize;
            if records.len() >= left {
                self.capped = more || records.len() > left;
                records.truncate(left);
                self.records += records.len() as u64;
                return Ok(Some(l.page_value(records, page, resp.status, resp.headers, body)));
            }
        }
        self.records += records.len() as u64;
        match step {
            Step::End => {}
            Step::Params { set, remove } => self.next = Some(with_params(req, &set, &remove)),
            Step::Url(target) => match l.follow(req, &target) {
                Ok(r) => self.next = Some(r),
                Err(e) => self.pending = Some(l.error(e, page + 1)),
            },
            Step::Repeated { what } => {
                self.pending = Some(l.error(
                    InvokeError::bad_request(
                        format!(
                            "page {page} of `{}` gave the same `{what}` as the page before it, so the next page would repeat it: check the `[pagination]` keys of the service or the request's `pagination`",
                            l.shown
                        ),
                        l.first.connection.as_deref(),
                    ),
                    page + 1,
                ))
            }
        }
        Ok(Some(l.page_value(records, page, resp.status, resp.headers, body)))
    }
}

impl Listing {
    /// A page as the script sees it.
    fn page_value(
        &self,
        records: Array,
        page: u64,
        status: u16,
        headers: Vec<(String, String)>,
        body: Dynamic,
    ) -> Dynamic {
        if !self.detailed {
            return Dynamic::from_array(records);
        }
        let mut h = Map::new();
        for (k, v) in headers {
            h.insert(k.into(), Dynamic::from(v));
        }
        let mut m = Map::new();
        m.insert("records".into(), Dynamic::from_array(records));
        m.insert("page".into(), Dynamic::from_int(page as i64));
        m.insert("responseCode".into(), Dynamic::from_int(status as i64));
        m.insert("responseHeader".into(), Dynamic::from_map(h));
        m.insert("responseText".into(), body);
        Dynamic::from_map(m)
    }

    /// The catchable error map of `e` for page `page`.
    fn error(&self, e: InvokeError, page: u64) -> Box<EvalAltResult> {
        self.with_page(*throw(&e, self.pos), page)
    }

    /// Adds `page` to a catchable error map, and says which page in its message; other errors
    /// (the deadline, a fatal stop) pass unchanged.
    fn with_page(&self, e: EvalAltResult, page: u64) -> Box<EvalAltResult> {
        match e {
            EvalAltResult::ErrorRuntime(v, pos) if v.is_map() => {
                let mut m = v.cast::<Map>();
                let message = m.get("message").map(|d| d.to_string()).unwrap_or_default();
                let prefix = format!("page {page} of `{}`", self.shown);
                if !message.starts_with(&prefix) {
                    m.insert("message".into(), Dynamic::from(format!("{prefix} failed: {message}")));
                }
                m.insert("page".into(), Dynamic::from_int(page as i64));
                Box::new(EvalAltResult::ErrorRuntime(Dynamic::from_map(m), pos))
            }
            other => Box::new(other),
        }
    }

    /// The error of a page answered with a status other than 2xx (after its retries).
    fn status_error(
        &self,
        page: u64,
        req: &ScriptRequest,
        status: u16,
        body: &[u8],
        attempts: u32,
    ) -> Box<EvalAltResult> {
        let value = body_value(body);
        let value = if super::check_data_size(&value).is_ok() { value } else { Dynamic::UNIT };
        let tries = if attempts > 1 { format!(" after {attempts} attempts") } else { String::new() };
        let on = req.connection.as_deref().map(|c| format!(" on connection `{c}`")).unwrap_or_default();
        let mut m = Map::new();
        m.insert("kind".into(), Dynamic::from("http_status"));
        m.insert(
            "message".into(),
            Dynamic::from(format!(
                "page {page} of `{}`{on} failed with HTTP {status}{tries}{}: the pages before it were delivered; fix the request or the paging keys, or catch the error (`e.page`, `e.status`, `e.body`) to handle it",
                self.shown,
                summary(&value)
            )),
        );
        m.insert(
            "connection".into(),
            req.connection.as_ref().map(|c| Dynamic::from(c.to_string())).unwrap_or(Dynamic::UNIT),
        );
        m.insert("status".into(), Dynamic::from_int(status as i64));
        m.insert("page".into(), Dynamic::from_int(page as i64));
        m.insert("body".into(), value);
        if attempts > 1 {
            m.insert("attempts".into(), Dynamic::from_int(attempts as i64));
        }
        Box::new(EvalAltResult::ErrorRuntime(Dynamic::from_map(m), self.pos))
    }

    /// The error of an answer without its records list.
    fn bad_response(&self, page: u64, why: String) -> Box<EvalAltResult> {
        let records = if self.paging.records.is_empty() {
            "the answer itself".to_string()
        } else {
            format!("`{}`", self.paging.records.join("."))
        };
        let message = format!(
            "page {page} of `{}` has no records list at {records} ({why}): set `records` in the service's `[pagination]` or the request's `pagination` to the path of the list, e.g. `data` or `result`",
            self.shown
        );
        let e = InvokeError::new(crate::http::ErrorKind::BadRequest, message, self.first.connection.as_deref());
        let mut m = super::invoke::error_map(&e);
        m.insert("kind".into(), Dynamic::from("bad_response"));
        m.insert("page".into(), Dynamic::from_int(page as i64));
        Box::new(EvalAltResult::ErrorRuntime(Dynamic::from_map(m), self.pos))
    }

    /// The request of a `Link` target: absolute, or resolved against the URL just requested.
    fn follow(&self, mut req: ScriptRequest, target: &str) -> Result<ScriptRequest, InvokeError> {
        let url = if has_http_scheme(target) {
            target.to_string()
        } else {
            let previous = if has_http_scheme(&req.url) {
                req.url.clone()
            } else {
                let base = match &req.connection {
                    Some(link) => match self.ctx.state.invoker.live(link) {
                        Ok(live) => live.endpoint.base_url.clone(),
                        Err(Failure::Invoke(e)) => return Err(e),
                        Err(Failure::Fatal(e)) => {
                            return Err(InvokeError::connection(e.to_string(), link.as_str()));
                        }
                    },
                    None => None,
                };
                join_url(base.as_deref().unwrap_or_default(), &req.url)
            };
            Url::parse(&previous).and_then(|u| u.join(target)).map(|u| u.to_string()).map_err(|e| {
                InvokeError::bad_request(
                    format!(
                        "the `Link` header of `{}` names `{target}` as the next page, which is not a URL ({e}): page this API with another `style`",
                        self.shown
                    ),
                    req.connection.as_deref(),
                )
            })?
        };
        req.url = url;
        if matches!(req.parameters, Some(Parameters::Map(_))) {
            req.parameters = None;
        }
        Ok(req)
    }
}

/// `" (CODE: message)"` from an API's error body (Zoho CRM `code`/`message`, Desk
/// `errorCode`/`message`, ServiceNow `error.message`/`error.detail`), else the head of the text.
fn summary(body: &Dynamic) -> String {
    let text = |d: Option<Dynamic>| d.filter(|v| v.is_string()).map(|v| v.to_string());
    let path = |p: &[&str]| at(body, &p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    let pairs = [
        (path(&["code"]), path(&["message"])),
        (path(&["errorCode"]), path(&["message"])),
        (path(&["error", "message"]), path(&["error", "detail"])),
    ];
    for (a, b) in pairs {
        if let Some(a) = text(a) {
            return match text(b) {
                Some(b) => format!(" ({a}: {b})"),
                None => format!(" ({a})"),
            };
        }
    }
    let shown = if body.is_string() { body.to_string() } else { builtins::to_json(body) };
    let head: String = shown.chars().take(200).collect();
    if head.is_empty() { String::new() } else { format!(" ({head})") }
}

/// What [`Paging::next`] reads: the parsed body and the headers.
struct View<'a> {
    body: &'a Dynamic,
    headers: &'a [(String, String)],
}

impl Answer for View<'_> {
    fn text(&self, path: &[String]) -> Option<String> {
        let v = at(self.body, path)?;
        if let Some(s) = v.read_lock::<ImmutableString>() {
            return Some(s.to_string());
        }
        (v.is_int() || v.is_float() || v.is_bool()).then(|| v.to_string())
    }
    fn flag(&self, path: &[String]) -> Option<bool> {
        at(self.body, path)?.as_bool().ok()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The value at a dotted path (a clone), `None` when a key is missing or a step is not a map.
fn at(d: &Dynamic, path: &[String]) -> Option<Dynamic> {
    match path.split_first() {
        None => Some(d.clone()),
        Some((k, rest)) => {
            let m = d.read_lock::<Map>()?;
            at(m.get(k.as_str())?, rest)
        }
    }
}

/// Moves the value at a dotted path out (unit left behind; unit when absent).
fn take_at(d: &mut Dynamic, path: &[String]) -> Dynamic {
    match path.split_first() {
        None => std::mem::take(d),
        Some((k, rest)) => {
            let Some(mut m) = d.write_lock::<Map>() else { return Dynamic::UNIT };
            match m.get_mut(k.as_str()) {
                Some(v) => take_at(v, rest),
                None => Dynamic::UNIT,
            }
        }
    }
}

/// How many records the list at `path` holds; the error says what is there instead.
fn count_at(d: &Dynamic, path: &[String]) -> Result<usize, String> {
    match path.split_first() {
        None => match d.read_lock::<Array>() {
            Some(a) => Ok(a.len()),
            None if d.is_string() => Err("the answer is not JSON".into()),
            None => Err(format!("a {} is there", type_name(d))),
        },
        Some((k, rest)) => {
            let Some(m) = d.read_lock::<Map>() else {
                return Err(if d.is_string() {
                    "the answer is not JSON".into()
                } else {
                    format!("a {} is where a map with `{k}` should be", type_name(d))
                });
            };
            match m.get(k.as_str()) {
                Some(v) => count_at(v, rest),
                None => Err(format!("there is no key `{k}`")),
            }
        }
    }
}

fn type_name(d: &Dynamic) -> &'static str {
    if d.is_map() {
        "map"
    } else if d.is_unit() {
        "null"
    } else if d.is_string() {
        "string"
    } else {
        "value that is not a list"
    }
}

/// The request with these query parameters set and those removed.
fn with_params(mut req: ScriptRequest, set: &[(String, String)], remove: &[String]) -> ScriptRequest {
    if !matches!(req.parameters, Some(Parameters::Map(_))) {
        req.parameters = Some(Parameters::Map(serde_json::Map::new()));
    }
    if let Some(Parameters::Map(m)) = &mut req.parameters {
        for k in remove {
            m.remove(k);
        }
        for (k, v) in set {
            m.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
    }
    req
}

/// Whether the URL's own query string sets `name`.
fn url_sets(url: &str, name: &str) -> bool {
    url.split_once('?').is_some_and(|(_, q)| q.split('&').any(|pair| pair.split('=').next().is_some_and(|k| k == name)))
}

fn bad(message: String) -> InvokeError {
    InvokeError::bad_request(message, None)
}

/// A whole number from 1 to [`MAX_LIMIT`] under `key`, if given.
fn limit_of(m: &Map, key: &str, fname: &str) -> Result<Option<u64>, InvokeError> {
    match m.get(key).filter(|v| !v.is_unit()) {
        None => Ok(None),
        Some(v) => match v.as_int() {
            Ok(n) if n >= 1 && n as u64 <= MAX_LIMIT => Ok(Some(n as u64)),
            _ => Err(bad(format!("`{key}` of {fname} must be a whole number from 1 to {MAX_LIMIT}, not {v}"))),
        },
    }
}

/// The request's `pagination` map.
fn pagination_of(v: &Dynamic, fname: &str) -> Result<PaginationDef, InvokeError> {
    const HINT: &str = "give a map of `[pagination]` keys such as #{ style: \"offset\", records: \"data\" } (connections/README.md, Pagination)";
    if !v.is_map() {
        return Err(bad(format!("`pagination` of {fname} is {}: {HINT}", v.type_name())));
    }
    let json =
        builtins::to_json_value(v).map_err(|e| bad(format!("`pagination` of {fname} cannot be read ({e}): {HINT}")))?;
    let def: PaginationDef =
        serde_json::from_value(json).map_err(|e| bad(format!("`pagination` of {fname} is wrong ({e}): {HINT}")))?;
    def.check_keys().map_err(|m| bad(format!("`pagination` of {fname}: {m}")))?;
    Ok(def)
}

impl Ctx {
    fn catalog(&self) -> Result<Rc<Catalog>, crate::Error> {
        if let Some(c) = self.catalog.borrow().as_ref() {
            return Ok(c.clone());
        }
        let c = Rc::new(Catalog::load(&self.home)?);
        *self.catalog.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    /// Reads the map and resolves the paging of its listing, sending nothing.
    fn listing(
        self: &Rc<Self>,
        m: &Map,
        fname: &str,
        pos: Position,
        records_cap: bool,
    ) -> Result<Pages, Box<EvalAltResult>> {
        let fail = |e: InvokeError| throw(&e, pos);
        for k in m.keys() {
            if !super::invoke::KEYS.contains(&k.as_str()) && !OWN_KEYS.contains(&k.as_str()) {
                return Err(fail(bad(format!(
                    "unknown key `{k}` in the {fname} map: the keys are {}, {}",
                    super::invoke::KEYS.join(", "),
                    OWN_KEYS.join(", ")
                ))));
            }
        }
        let over = match m.get("pagination").filter(|v| !v.is_unit()) {
            Some(v) => Some(pagination_of(v, fname).map_err(fail)?),
            None => None,
        };
        let max_pages = limit_of(m, "max_pages", fname).map_err(fail)?;
        let mut max_records = limit_of(m, "max_records", fname).map_err(fail)?;
        let default_cap = records_cap && max_records.is_none();
        if default_cap {
            max_records = Some(DEFAULT_MAX_RECORDS);
        }
        let mut plain = m.clone();
        for k in OWN_KEYS {
            plain.remove(*k);
        }
        let (mut req, reply) = read_request(&plain).map_err(fail)?;
        if reply.text {
            return Err(fail(bad(format!(
                "{fname} reads each page as JSON: remove `response-format`, or page with invoke_url"
            ))));
        }
        let service = match &req.connection {
            None => None,
            Some(link) => {
                let live = match self.state.invoker.live(link) {
                    Ok(l) => l,
                    Err(Failure::Invoke(e)) => return Err(fail(e)),
                    Err(Failure::Fatal(e)) => return Err(self.state.halt(Stop::Fatal(e), pos)),
                };
                let catalog = match self.catalog() {
                    Ok(c) => c,
                    Err(e) => return Err(self.state.halt(Stop::Fatal(e), pos)),
                };
                let def = catalog
                    .get(&live.service)
                    .ok()
                    .and_then(|s| s.def.pagination.as_ref().map(|p| p.get_ref().clone()));
                Some((live.service.to_string(), def))
            }
        };
        let link = req.connection.as_ref().map(|l| l.to_string());
        let mut paging = match Paging::resolve(service.as_ref().and_then(|(_, d)| d.as_ref()), over.as_ref()) {
            Ok(Some(p)) => p,
            Ok(None) => {
                let why = match (&service, &link) {
                    (Some((name, _)), Some(l)) => format!(
                        "service `{name}` of connection `{l}` has no `[pagination]` table and the request gives no `pagination` style"
                    ),
                    _ => "a request without a connection has no service to take a `[pagination]` table from, and it gives no `pagination` style".to_string(),
                };
                return Err(fail(InvokeError::bad_request(
                    format!(
                        "{fname} cannot page `{}`: {why}; add `pagination: #{{ style: \"...\" }}` to the request (zoho_page_token, link_next, offset or cursor), or a `[pagination]` table to the service (connections/README.md, Pagination)",
                        req.url
                    ),
                    link.as_deref(),
                )));
            }
            Err(m) => {
                let whose = match &service {
                    Some((name, Some(_))) => {
                        format!("the `[pagination]` of service `{name}` with the request's `pagination`")
                    }
                    _ => "the request's `pagination`".to_string(),
                };
                return Err(fail(InvokeError::bad_request(format!("{fname}: in {whose}: {m}"), link.as_deref())));
            }
        };
        let mut first_offset = paging.first_offset;
        match &req.parameters {
            None | Some(Parameters::Map(_)) => {}
            Some(_) => {
                return Err(fail(InvokeError::bad_request(
                    format!(
                        "`parameters` of {fname} must be a map (the paging parameters join it), not text or a list"
                    ),
                    link.as_deref(),
                )));
            }
        }
        // A page size the script asks for itself wins; a smaller `max_records` asks for less.
        let size_param = paging.page_size_param.clone();
        let given = |name: &str| match &req.parameters {
            Some(Parameters::Map(p)) => p.get(name).map(crate::invoke::value_text),
            _ => None,
        };
        if paging.style == crate::http::pagination::PageStyle::ZohoPageToken
            && let Some(n) = given(&paging.page_param).and_then(|p| p.trim().parse::<u64>().ok())
        {
            paging.first_page = n.max(1);
        }
        let mut set: Vec<(String, String)> = Vec::new();
        for (k, v) in paging.first() {
            if url_sets(&req.url, &k) {
                continue;
            }
            if let Some(own) = given(&k) {
                if Some(&k) == size_param.as_ref() {
                    paging.page_size = own.trim().parse().ok().or(paging.page_size);
                } else if k == paging.offset_param {
                    first_offset = own.trim().parse().unwrap_or(first_offset);
                }
                continue;
            }
            let v = match (Some(&k) == size_param.as_ref(), max_records, paging.page_size) {
                (true, Some(max), Some(size)) if max < size && !default_cap => {
                    paging.page_size = Some(max);
                    max.to_string()
                }
                _ => v,
            };
            set.push((k, v));
        }
        if !set.is_empty() {
            req = with_params(req, &set, &[]);
        }
        Ok(Pages(Rc::new(Listing {
            ctx: self.clone(),
            shown: req.url.clone(),
            first: req,
            detailed: reply.detailed,
            paging,
            first_offset,
            max_pages,
            max_records,
            pos,
        })))
    }
}

/// `invoke_records(map)`: every page's records in one list.
fn invoke_records(ctx: &Rc<Ctx>, m: &Map, pos: Position) -> Result<Dynamic, Box<EvalAltResult>> {
    const NAME: &str = "invoke_records";
    if m.get("detailed").is_some_and(|d| d.as_bool().unwrap_or(false)) {
        return Err(throw(
            &bad(format!(
                "{NAME} returns the records only: remove `detailed`, or use invoke_pages with `detailed: true`"
            )),
            pos,
        ));
    }
    let default_cap = m.get("max_records").is_none_or(|v| v.is_unit());
    let pages = ctx.listing(m, NAME, pos, true)?;
    let shown = pages.0.shown.clone();
    let mut iter = pages.into_iter();
    let mut all = Array::new();
    for page in iter.by_ref() {
        let page = page?;
        all.extend(page.into_array().unwrap_or_default());
        if all.len() > super::MAX_ARRAY_SIZE {
            break;
        }
    }
    if default_cap && iter.capped {
        return Err(throw(
            &too_large(format!(
                "{NAME} stopped at {DEFAULT_MAX_RECORDS} records, its default cap, and `{shown}` has more: give `max_records` (up to {MAX_LIMIT}), or go page by page with invoke_pages"
            )),
            pos,
        ));
    }
    let all = Dynamic::from_array(all);
    if let Err(what) = super::check_data_size(&all) {
        return Err(throw(
            &too_large(format!(
                "the records of `{shown}` have {what} together: give a smaller `max_records`, or go page by page with invoke_pages"
            )),
            pos,
        ));
    }
    Ok(all)
}

/// Registers `invoke_pages(map)`, `invoke_records(map)` and the `pages` type they loop over.
pub(crate) fn register(engine: &mut Engine, state: Rc<RunState>, home: Home) {
    let ctx = Rc::new(Ctx { state, home, catalog: RefCell::new(None) });
    engine.register_type_with_name::<Pages>("pages");
    engine.register_iterator_result::<Pages, Dynamic>();
    let c = ctx.clone();
    engine.register_fn("invoke_pages", move |nc: NativeCallContext, m: Map| {
        c.listing(&m, "invoke_pages", nc.call_position(), false)
    });
    engine.register_fn("invoke_records", move |nc: NativeCallContext, m: Map| {
        invoke_records(&ctx, &m, nc.call_position())
    });
}
