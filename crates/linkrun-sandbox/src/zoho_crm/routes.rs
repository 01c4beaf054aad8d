//! HTTP plumbing: the route dispatch under `/crm/v7` and `/crm/v8` (authentication, faults,
//! scopes), Zoho's response and error bodies, and the query parameters and request bodies.

use super::*;

#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) crm: Crm,
    pub(super) provider: Provider,
    pub(super) faults: Faults,
}

pub(super) enum Route<'a> {
    List,
    Insert,
    UpdateMany,
    DeleteMany,
    Upsert,
    Search,
    Count,
    GetOne(&'a str),
    UpdateOne(&'a str),
    DeleteOne(&'a str),
    Deleted,
    /// A related list: the parent's id and the list's module.
    Related(&'a str, &'static str),
    /// `POST /{module}/{id}/Notes`.
    AddNotes(&'a str),
}

impl Route<'_> {
    pub(super) fn op(&self) -> Op {
        match self {
            Route::List | Route::Search | Route::Count | Route::GetOne(_) | Route::Deleted | Route::Related(..) => {
                Op::Read
            }
            Route::Insert | Route::AddNotes(_) => Op::Create,
            Route::UpdateMany | Route::UpdateOne(_) => Op::Update,
            Route::DeleteMany | Route::DeleteOne(_) => Op::Delete,
            Route::Upsert => Op::Upsert,
        }
    }
}

pub(super) async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let token = match ctx.provider.authenticate(&headers) {
        Ok(t) => t,
        Err(refused) => return refused.into_response(),
    };
    let path = uri.path().strip_prefix("/crm/").unwrap_or("");
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    if segs.len() < 2 || !matches!(segs[0], "v7" | "v8") {
        return invalid_url();
    }
    if let Some(r) = org_route(&ctx, &token, &method, &segs[1..], uri.query(), &body).await {
        return r;
    }
    let Some(module) = canonical_module(segs[1]) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_MODULE",
            "the module name given seems to be invalid",
            json!({"resource_path_index": 0}),
        );
    };
    let (get, post, put, delete) =
        (method == Method::GET, method == Method::POST, method == Method::PUT, method == Method::DELETE);
    let route = match &segs[2..] {
        [] if get => Route::List,
        [] if post => Route::Insert,
        [] if put => Route::UpdateMany,
        [] if delete => Route::DeleteMany,
        ["upsert"] if post => Route::Upsert,
        ["search"] if get => Route::Search,
        ["actions", "count"] if get => Route::Count,
        ["deleted"] if get => Route::Deleted,
        [id, list] if post && list.eq_ignore_ascii_case("Notes") && module != "Notes" => Route::AddNotes(id),
        [id, list] if get && !matches!(*id, "actions" | "upsert" | "search" | "deleted") => {
            match related_module(module, list) {
                Some(child) => Route::Related(id, child),
                // An unknown related list is an unknown URL (UNCONFIRMED, `docs/api-facts.md` §2.4d).
                None => return invalid_url(),
            }
        }
        [id] if get && !matches!(*id, "upsert" | "search" | "actions" | "deleted") => Route::GetOne(id),
        [id] if put && !matches!(*id, "upsert" | "search" | "actions") => Route::UpdateOne(id),
        [id] if delete && !matches!(*id, "upsert" | "search" | "actions") => Route::DeleteOne(id),
        ["actions"] => return invalid_url(),
        [] | [_] | ["actions", "count"] => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "INVALID_REQUEST_METHOD",
                "The http request method type is not a valid one",
                json!({}),
            );
        }
        _ => return invalid_url(),
    };
    let also = match route {
        Route::Related(_, child) => scope_allows(&token.scopes, child, Op::Read),
        Route::AddNotes(_) => scope_allows(&token.scopes, "Notes", Op::Create),
        _ => true,
    };
    let own = match route {
        Route::AddNotes(_) => true,
        _ => scope_allows(&token.scopes, module, route.op()),
    };
    if !(own && also) {
        return error(StatusCode::UNAUTHORIZED, "OAUTH_SCOPE_MISMATCH", "Unauthorized", json!({}));
    }
    let _slot = match admit(&ctx, &token.org) {
        Ok(slot) => slot,
        Err(r) => return *r,
    };
    // A failure the knobs put after the write is answered once the write is done.
    let late = match fault_answer(&ctx, &token.org, method != Method::GET).await {
        Some((r, false)) => return r,
        Some((r, true)) => Some(r),
        None => None,
    };
    let crm = &ctx.crm;
    let org = token.org.as_str();
    let query = uri.query();
    let result = match route {
        Route::GetOne(id) => crm.get_one(org, module, id, query),
        Route::List => crm.list(org, module, query, &headers),
        Route::Search => crm.search(org, module, query),
        Route::Count => crm.count_action(org, module, query),
        Route::Insert => crm.insert(org, module, &body),
        Route::UpdateMany => crm.update(org, module, None, &body, &headers),
        Route::UpdateOne(id) => crm.update(org, module, Some(id), &body, &headers),
        Route::Upsert => crm.upsert(org, module, &body, &headers),
        Route::DeleteMany => crm.delete_many(org, module, query),
        Route::DeleteOne(id) => crm.delete_one(org, module, id),
        Route::Deleted => crm.deleted(org, module, query),
        Route::Related(id, child) => crm.related(org, module, id, child, query),
        Route::AddNotes(id) => crm.add_notes(org, module, id, &body),
    };
    let answer = result.unwrap_or_else(|e| storage_error(&e));
    if method != Method::GET {
        ctx.faults.write_done().await;
    }
    late.unwrap_or(answer)
}

/// The CRM's own limits (concurrency, credits): the slot to hold while the request is served,
/// or the 429.
fn admit(ctx: &Ctx, org: &str) -> Result<Slot, Refused> {
    ctx.crm.admit(org, &ctx.faults.knobs().crm, ctx.faults.epoch())
}

/// The fault knobs' answer, if they fire for this request, and whether it comes only after the
/// write the request asks for (`write`: it is not a GET) was done.
async fn fault_answer(ctx: &Ctx, org: &str, write: bool) -> Option<(Response, bool)> {
    let fault = ctx.faults.before(org).await?;
    let late = ctx.faults.after_write(fault, write);
    let r = match fault {
        Fault::RateLimited { retry_after } => too_many_requests(retry_after),
        Fault::ServerError { status } => with_status(internal_error(), status),
    };
    Some((r, late))
}

/// The paths that are not a module's: `coql`, `org`, `users[/{id}]`, `settings/variables[/{key}]`.
/// `None` when `segs` (after the version) is none of them.
async fn org_route(
    ctx: &Ctx,
    token: &crate::oauth_provider::TokenInfo,
    method: &Method,
    segs: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> Option<Response> {
    let get = *method == Method::GET;
    // (scope path, the call) for each known path and method.
    let (scope, op): (&[&str], Op) = match segs {
        ["coql"] if *method == Method::POST => (&["coql"], Op::Read),
        ["org"] if get => (&["org"], Op::Read),
        ["users"] | ["users", _] if get => (&["users"], Op::Read),
        ["settings", "variables"] | ["settings", "variables", _] if get => (&["settings", "variables"], Op::Read),
        ["coql"] | ["org"] | ["users"] | ["users", _] | ["settings", "variables"] | ["settings", "variables", _] => {
            return Some(error(
                StatusCode::METHOD_NOT_ALLOWED,
                "INVALID_REQUEST_METHOD",
                "The http request method type is not a valid one",
                json!({}),
            ));
        }
        _ => return None,
    };
    if !scope_covers(&token.scopes, scope, op) {
        return Some(error(StatusCode::UNAUTHORIZED, "OAUTH_SCOPE_MISMATCH", "Unauthorized", json!({})));
    }
    let _slot = match admit(ctx, &token.org) {
        Ok(slot) => slot,
        Err(r) => return Some(*r),
    };
    // These are reads (COQL's POST included).
    if let Some((r, _)) = fault_answer(ctx, &token.org, false).await {
        return Some(r);
    }
    let (crm, org) = (&ctx.crm, token.org.as_str());
    Some(match segs {
        ["coql"] => crm.coql(org, body, &token.scopes).unwrap_or_else(|e| storage_error(&e)),
        ["org"] => crm.org_info(org),
        ["users"] => crm.users(org, None, query),
        ["users", id] => crm.users(org, Some(id), query),
        ["settings", "variables"] => crm.variables(org, None),
        ["settings", "variables", key] => crm.variables(org, Some(key)),
        _ => invalid_url(),
    })
}

pub(super) fn json_text(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT));
    r
}

pub(super) fn json_value(status: StatusCode, v: &Value) -> Response {
    json_text(status, v.to_string())
}

pub(super) fn error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    json_value(status, &json!({"code": code, "details": details, "message": message, "status": "error"}))
}

pub(super) fn invalid_url() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "INVALID_URL_PATTERN",
        "Please check if the URL trying to access is a correct one",
        json!({}),
    )
}

/// The fault knob's simulated server failure.
pub(super) fn internal_error() -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "Internal Server Error", json!({}))
}

/// A real failure of the sandbox's storage, said as such.
pub(super) fn storage_error(e: &rusqlite::Error) -> Response {
    eprintln!("linkrun sandbox: Zoho CRM: {}", storage_failed(e));
    error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", &storage_failed(e), json!({}))
}

pub(super) fn bad_param(param: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_DATA", "invalid data", json!({"param_name": param}))
}

pub(super) fn required_param(param: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "REQUIRED_PARAM_MISSING", "required param is missing", json!({"param_name": param}))
}

pub(super) fn too_many_records(limit: usize) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "LIMIT_EXCEEDED",
        &format!("Cannot process more than {limit} records at a time."),
        json!({"api_name": "data", "json_path": "$.data", "limit": limit}),
    )
}

/// More records in one insert, update or upsert than the API takes: the error sits inside
/// `data[]`, as Zoho answers it.
pub(super) fn too_many_items(limit: usize) -> Response {
    json_value(
        StatusCode::BAD_REQUEST,
        &json!({"data": [{
            "code": "LIMIT_EXCEEDED",
            "details": {"maximum_length": limit, "api_name": "data"},
            "message": "count of records in your request exceeds the limit",
            "status": "error",
        }]}),
    )
}

pub(super) fn invalid_query() -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_QUERY", "invalid query formed", json!({"reason": "invalid criteria"}))
}

/// An error answer from a parameter check (boxed: a `Response` is large).
pub(super) type Refused = Box<Response>;

/// Decoded query parameters; empty values count as absent.
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub(super) fn parse(query: Option<&str>) -> Params {
        Params(url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect())
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// `fields=a,b`: `Ok(None)` when absent, the error response when over the limit.
pub(super) fn parse_fields(p: &Params, max: usize) -> Result<Option<Vec<String>>, Refused> {
    let Some(raw) = p.get("fields") else { return Ok(None) };
    let mut fields: Vec<String> = Vec::new();
    for f in raw.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if !fields.iter().any(|x| x == f) {
            fields.push(f.to_string());
        }
    }
    if fields.is_empty() {
        return Ok(None);
    }
    if fields.len() > max {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "LIMIT_EXCEEDED",
            "the number of fields given exceeds the limit",
            json!({"limit": max, "param_name": "fields"}),
        )));
    }
    Ok(Some(fields))
}

/// The `fields` a list endpoint requires (missing: `REQUIRED_PARAM_MISSING`) and its paging.
pub(super) fn list_params(
    p: &Params,
    max_fields: usize,
    max_per_page: usize,
) -> Result<(Vec<String>, usize, usize), Refused> {
    let fields = parse_fields(p, max_fields)?.ok_or_else(|| Box::new(required_param("fields")))?;
    let (page, per_page) = parse_paging(p, max_per_page)?;
    Ok((fields, page, per_page))
}

/// `(page, per_page)` with their defaults (1, the configured maximum).
pub(super) fn parse_paging(p: &Params, max_per_page: usize) -> Result<(usize, usize), Refused> {
    let page = match p.get("page") {
        None => 1,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(Box::new(bad_param("page"))),
        },
    };
    let per_page = match p.get("per_page") {
        None => max_per_page,
        Some(s) => match s.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n.min(max_per_page),
            _ => return Err(Box::new(bad_param("per_page"))),
        },
    };
    Ok((page, per_page))
}

/// An ISO date-time header as Unix seconds; `Err` when present but unreadable.
pub(super) fn time_header(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<i64>, Refused> {
    match headers.get(&name) {
        None => Ok(None),
        Some(v) => match v.to_str().ok().and_then(parse_time) {
            Some(t) => Ok(Some(t)),
            None => Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "invalid data",
                json!({"header_name": name.as_str()}),
            ))),
        },
    }
}

/// The record limited to `fields` (each present, `null` when the record has none) and `id`.
pub(super) fn project(rec: &Map<String, Value>, fields: &[String]) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), rec.get("id").cloned().unwrap_or(Value::Null));
    for f in fields {
        out.insert(f.clone(), rec.get(f).cloned().unwrap_or(Value::Null));
    }
    Value::Object(out)
}

pub(super) fn parse_record(data: &str) -> Map<String, Value> {
    serde_json::from_str(data).unwrap_or_default()
}

/// The `data` items of a write request and the whole body object, or the error response.
pub(super) fn data_items(body: &[u8], max: usize) -> Result<(Vec<Value>, Map<String, Value>), Refused> {
    let Ok(Value::Object(mut top)) = serde_json::from_slice::<Value>(body) else {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            "invalid data",
            json!({"expected_data_type": "jsonobject"}),
        )));
    };
    let items = match top.remove("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        _ => {
            return Err(Box::new(error(
                StatusCode::BAD_REQUEST,
                "MANDATORY_NOT_FOUND",
                "required field not found",
                json!({"api_name": "data", "json_path": "$.data"}),
            )));
        }
    };
    if items.len() > max {
        return Err(Box::new(too_many_items(max)));
    }
    Ok((items, top))
}

/// 201/200 when every item succeeded, 207 when some did, 412 when every failure is
/// `ALREADY_MODIFIED` and none succeeded, else 400.
pub(super) fn batch_response(items: Vec<Value>, all_ok: StatusCode) -> Response {
    let ok = items.iter().filter(|i| i["status"] == "success").count();
    let status = if ok == items.len() {
        all_ok
    } else if ok > 0 {
        StatusCode::MULTI_STATUS
    } else if items.iter().all(|i| i["code"] == "ALREADY_MODIFIED") {
        StatusCode::PRECONDITION_FAILED
    } else {
        StatusCode::BAD_REQUEST
    };
    json_value(status, &json!({ "data": items }))
}

pub(super) fn item_error(code: &str, message: &str, details: Value) -> Value {
    json!({"code": code, "details": details, "message": message, "status": "error"})
}

pub(super) fn json_path(i: usize, field: &str) -> String {
    format!("$.data[{i}].{field}")
}

pub(super) fn invalid_value(i: usize, field: &str, extra: (&str, Value)) -> Value {
    let mut d = json!({"api_name": field, "json_path": json_path(i, field)});
    d[extra.0] = extra.1;
    item_error("INVALID_DATA", "invalid data", d)
}

pub(super) fn invalid_id_item(i: usize) -> Value {
    item_error(
        "INVALID_DATA",
        "the id given seems to be invalid",
        json!({"api_name": "id", "json_path": json_path(i, "id")}),
    )
}

pub(super) fn short_user(v: Option<&Value>) -> Value {
    match v {
        Some(u) => {
            json!({"name": u.get("name").cloned().unwrap_or(Value::Null), "id": u.get("id").cloned().unwrap_or(Value::Null)})
        }
        None => Value::Null,
    }
}

pub(super) fn success_item(rec: &Map<String, Value>, message: &str) -> Value {
    json!({
        "code": "SUCCESS",
        "details": {
            "Modified_Time": rec.get("Modified_Time").cloned().unwrap_or(Value::Null),
            "Modified_By": short_user(rec.get("Modified_By")),
            "Created_Time": rec.get("Created_Time").cloned().unwrap_or(Value::Null),
            "id": rec.get("id").cloned().unwrap_or(Value::Null),
            "Created_By": short_user(rec.get("Created_By")),
            "$approval_state": "approved",
        },
        "message": message,
        "status": "success",
    })
}
