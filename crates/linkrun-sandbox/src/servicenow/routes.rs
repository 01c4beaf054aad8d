//! Routes: the `/api/now/table` dispatch (authentication, faults, roles, row-level ACLs) and the
//! list, get, insert, update and delete handlers.

use super::*;

pub(super) async fn handle(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match ctx.sn.authenticate(&ctx.provider, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(rule) = ctx.sn.take_hourly(&caller.name, &ctx.faults) else {
        return table_api(ctx, caller, method, uri, headers, body).await;
    };
    if let Some(denied) = rule.denial() {
        return denied;
    }
    rule.stamp(table_api(ctx, caller, method, uri, headers, body).await)
}

/// A Table API request of an authenticated caller.
async fn table_api(ctx: Ctx, caller: Caller, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().strip_prefix("/api/now/").unwrap_or("");
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let (v1, rest) = match segs.as_slice() {
        ["v1", rest @ ..] => (true, rest),
        ["v2", rest @ ..] => (false, rest),
        rest => (false, rest),
    };
    let (table, id) = match rest {
        ["table", t] => (*t, None),
        ["table", t, id] => (*t, Some(*id)),
        _ => {
            return sn_error(StatusCode::BAD_REQUEST, "Requested URI does not represent any resource", Value::Null);
        }
    };
    let Some(def) = table_def(table) else {
        return sn_error(StatusCode::BAD_REQUEST, &format!("Invalid table {table}"), Value::Null);
    };
    let write = !matches!(method, Method::GET | Method::HEAD);
    if !caller.may(def.name, write) {
        return json_value(
            StatusCode::FORBIDDEN,
            &json!({"error": {"detail": "Failed API level ACL Validation", "message": "User Not Authorized"},
                    "status": "failure"}),
        );
    }
    // A failure the knobs put after the write is answered once the write is done.
    let late = match ctx.faults.before(&format!("servicenow:{}", caller.name)).await {
        Some(Fault::RateLimited { retry_after }) => return rate_limited(&ctx.faults, retry_after),
        Some(f @ Fault::ServerError { status }) if ctx.faults.after_write(f, write) => {
            Some(with_status(simulated_failure(), status))
        }
        Some(Fault::ServerError { status }) => return with_status(simulated_failure(), status),
        None => None,
    };
    if !ctx.sn.sees_rows(&caller, def.name) {
        match (&method, id) {
            (&Method::GET, None) if v1 => return not_found(),
            (&Method::GET, None) => return no_rows(&Params::parse(uri.query())),
            (_, Some(_)) => return not_found(),
            _ => {}
        }
    }
    let answer = {
        let base = ctx.sn.base_url(&headers);
        let p = Params::parse(uri.query());
        let conn = ctx.sn.db();
        let result = match (&method, id) {
            (&Method::GET, None) => list(&conn, def, &p, base, uri.path(), v1),
            (&Method::GET, Some(id)) => get_one(&conn, def, id, &p, base),
            (&Method::POST, None) => insert(&conn, def, &body, &caller, &p, base),
            (&Method::PUT | &Method::PATCH, Some(id)) => update(&conn, def, id, &body, &caller, &p, base),
            (&Method::DELETE, Some(id)) => delete(&conn, def, id, &caller),
            _ => Ok(sn_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not Supported",
                json!(format!("{method} method not supported for API")),
            )),
        };
        result.unwrap_or_else(|e| storage_error(&e))
    };
    if write {
        ctx.faults.write_done().await;
    }
    late.unwrap_or(answer)
}

/// The list of a table whose rows a row-level ACL hides from the caller.
fn no_rows(p: &Params) -> Response {
    let mut resp = json_value(StatusCode::OK, &json!({"result": []}));
    if !p.is_true("sysparm_no_count") {
        resp.headers_mut().insert("x-total-count", HeaderValue::from(0));
    }
    resp
}

pub(super) fn rate_limited(faults: &Faults, retry_after: u64) -> Response {
    let limit = faults.knobs().rate_limit_per_minute.unwrap_or(0);
    let mut r = sn_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Rate limit exceeded",
        json!(format!("Rate limit of {limit} requests per minute for Table API exceeded")),
    );
    let reset = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + retry_after;
    let h = r.headers_mut();
    h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    h.insert("x-ratelimit-limit", HeaderValue::from(limit));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    h.insert("x-ratelimit-rule", HeaderValue::from_static(RATE_LIMIT_RULE));
    r
}

pub(super) fn list(
    conn: &Db,
    def: &TableDef,
    p: &Params,
    base: String,
    path: &str,
    v1: bool,
) -> rusqlite::Result<Response> {
    let offset = match p.get("sysparm_offset").and_then(|o| o.trim().parse::<i64>().ok()) {
        Some(o) if o < 0 => {
            return Ok(sn_error(
                StatusCode::BAD_REQUEST,
                &format!("offset is {o}"),
                json!("Negative offset is not supported"),
            ));
        }
        Some(o) => o as usize,
        None => 0,
    };
    let limit = p
        .get("sysparm_limit")
        .and_then(|l| l.trim().parse::<i64>().ok())
        .filter(|l| *l > 0)
        .map_or(DEFAULT_LIMIT, |l| l as usize);
    let query = p.get("sysparm_query").map(|q| parse_query(q, def)).unwrap_or_default();
    let plain: Vec<Cond> =
        p.0.iter()
            .filter(|(k, _)| !k.starts_with("sysparm_") && valid_field(def, k))
            .map(|(k, v)| Cond { field: k.clone(), op: Op::Eq, value: v.clone() })
            .collect();
    let mut lk = Lookup::new(conn);
    let table = conn.table(def.name)?;
    let mut matched: Vec<&Map<String, Value>> = table
        .rows
        .iter()
        .filter(|r| plain.iter().all(|c| c.matches(r, def, &mut lk)) && query.matches(r, def, &mut lk))
        .collect();
    if !query.order.is_empty() {
        let mut keyed: Vec<(Vec<String>, &Map<String, Value>)> = matched
            .into_iter()
            .map(|r| {
                let k = query.order.iter().map(|(f, _)| value_of(r, def, f, &mut lk).unwrap_or_default()).collect();
                (k, r)
            })
            .collect();
        keyed.sort_by(|(a, _), (b, _)| {
            query
                .order
                .iter()
                .zip(a.iter().zip(b))
                .map(|((_, desc), (x, y))| if *desc { compare(y, x) } else { compare(x, y) })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
        matched = keyed.into_iter().map(|(_, r)| r).collect();
    }
    let total = matched.len();
    if v1 && total == 0 {
        return Ok(not_found());
    }
    let view = View::new(p, def, base);
    let page: Vec<Value> = matched.iter().skip(offset).take(limit).map(|r| view.render(r, def, &mut lk)).collect();
    let mut resp = json_value(StatusCode::OK, &json!({"result": page}));
    let h = resp.headers_mut();
    if !p.is_true("sysparm_no_count") {
        h.insert("x-total-count", HeaderValue::from(total));
    }
    if !p.is_true("sysparm_suppress_pagination_header") {
        let kept: Vec<&(String, String)> =
            p.0.iter().filter(|(k, _)| k != "sysparm_offset" && k != "sysparm_limit").collect();
        let link = |o: usize| {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &kept {
                s.append_pair(k, v);
            }
            s.append_pair("sysparm_limit", &limit.to_string()).append_pair("sysparm_offset", &o.to_string());
            format!("<{}{path}?{}>", view.base, s.finish())
        };
        let mut rels = vec![format!("{};rel=\"first\"", link(0))];
        if offset > 0 {
            rels.push(format!("{};rel=\"prev\"", link(offset.saturating_sub(limit))));
        }
        if offset.saturating_add(limit) < total {
            rels.push(format!("{};rel=\"next\"", link(offset + limit)));
        }
        let last = if total == 0 { 0 } else { (total - 1) / limit * limit };
        rels.push(format!("{};rel=\"last\"", link(last)));
        if let Ok(v) = HeaderValue::from_str(&rels.join(",")) {
            h.insert(header::LINK, v);
        }
    }
    Ok(resp)
}

pub(super) fn get_one(conn: &Db, def: &TableDef, id: &str, p: &Params, base: String) -> rusqlite::Result<Response> {
    let Some(rec) = get_rec(conn, def.name, id)? else { return Ok(not_found()) };
    let mut lk = Lookup::new(conn);
    let v = View::new(p, def, base).render(&rec, def, &mut lk);
    Ok(json_value(StatusCode::OK, &json!({"result": v})))
}

/// The columns a client may write, as strings (`sys_*` columns and unknown names are dropped).
pub(super) fn writable(def: &TableDef, obj: &Map<String, Value>) -> Vec<(String, String)> {
    obj.iter()
        .filter(|(k, _)| !k.starts_with("sys_") && (def.columns.contains(&k.as_str()) || is_custom(k)))
        .map(|(k, v)| (k.clone(), sn_string(v)))
        .collect()
}

pub(super) fn is_sys_id(s: &str) -> bool {
    s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

pub(super) fn new_sys_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough for a sandbox when the OS has no random source.
        let n = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        b = n.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Fills the columns ServiceNow computes: a contact's `name`, a case's account from its contact.
pub(super) fn derive(def: &TableDef, rec: &mut Map<String, Value>, conn: &Connection) -> rusqlite::Result<()> {
    match def.name {
        "customer_contact" => {
            let name = format!("{} {}", str_of(rec, "first_name"), str_of(rec, "last_name")).trim().to_string();
            rec.insert("name".into(), Value::String(name));
        }
        "sn_customerservice_case" if str_of(rec, "account").is_empty() => {
            let contact = str_of(rec, "contact");
            if let Some(c) = get_rec(conn, "customer_contact", &contact)? {
                let account = str_of(&c, "account");
                if !account.is_empty() {
                    rec.insert("account".into(), Value::String(account));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn insert(
    conn: &Db,
    def: &TableDef,
    body: &[u8],
    caller: &Caller,
    p: &Params,
    base: String,
) -> rusqlite::Result<Response> {
    let obj = match body_object(body) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let now = now_ms();
    let mut rec = Map::new();
    for (k, v) in writable(def, &obj) {
        rec.insert(k, Value::String(v));
    }
    let wanted = obj.get("sys_id").map(sn_string).filter(|s| is_sys_id(s));
    let id = match wanted {
        Some(s) if get_rec(conn, def.name, &s)?.is_none() => s,
        _ => new_sys_id(),
    };
    if let Some(prefix) = def.number
        && str_of(&rec, "number").is_empty()
    {
        rec.insert("number".into(), Value::String(next_number(conn, prefix)?));
    }
    let defaults: &[(&str, &str)] = match def.name {
        "sn_customerservice_case" => &[("state", "1"), ("priority", "4")],
        "proc_po" => &[("status", "requested")],
        "customer_contact" => &[("active", "true")],
        _ => &[],
    };
    for (k, v) in defaults {
        if str_of(&rec, k).is_empty() {
            rec.insert(k.to_string(), Value::String(v.to_string()));
        }
    }
    if def.name == "sn_customerservice_case" && str_of(&rec, "opened_at").is_empty() {
        rec.insert("opened_at".into(), Value::String(format_time(now)));
    }
    if def.name != "customer_contact" || str_of(&rec, "name").is_empty() {
        derive(def, &mut rec, conn)?;
    }
    stamp(&mut rec, def.name, &id, now, now, &caller.name, 0);
    insert_row(conn, def.name, &id, now, &rec)?;
    let mut lk = Lookup::new(conn);
    let view = View::new(p, def, base);
    let location = format!("{}/api/now/table/{}/{id}", view.base, def.name);
    let mut resp = json_value(StatusCode::CREATED, &json!({"result": view.render(&rec, def, &mut lk)}));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

pub(super) fn stamp(
    rec: &mut Map<String, Value>,
    table: &str,
    id: &str,
    created: i64,
    updated: i64,
    user: &str,
    mods: u64,
) {
    let mut set = |k: &str, v: String| {
        rec.insert(k.to_string(), Value::String(v));
    };
    set("sys_id", id.to_string());
    set("sys_created_on", format_time(created));
    set("sys_created_by", user.to_string());
    set("sys_updated_on", format_time(updated));
    set("sys_updated_by", user.to_string());
    set("sys_mod_count", mods.to_string());
    set("sys_class_name", table.to_string());
}

pub(super) fn update(
    conn: &Db,
    def: &TableDef,
    id: &str,
    body: &[u8],
    caller: &Caller,
    p: &Params,
    base: String,
) -> rusqlite::Result<Response> {
    let Some(mut rec) = get_rec(conn, def.name, id)? else { return Ok(not_found()) };
    let obj = match body_object(body) {
        Ok(o) => o,
        Err(r) => return Ok(*r),
    };
    let mut changed = false;
    let mut name_given = false;
    for (k, v) in writable(def, &obj) {
        name_given |= k == "name";
        if str_of(&rec, &k) != v {
            rec.insert(k, Value::String(v));
            changed = true;
        }
    }
    if changed {
        if def.name == "customer_contact" && !name_given {
            derive(def, &mut rec, conn)?;
        }
        let now = now_ms();
        let mods = str_of(&rec, "sys_mod_count").parse::<u64>().unwrap_or(0) + 1;
        rec.insert("sys_updated_on".into(), Value::String(format_time(now)));
        rec.insert("sys_updated_by".into(), Value::String(caller.name.clone()));
        rec.insert("sys_mod_count".into(), Value::String(mods.to_string()));
        conn.execute(
            "UPDATE sn_records SET updated = ?1, data = ?2 WHERE tbl = ?3 AND sys_id = ?4",
            params![now, Value::Object(rec.clone()).to_string(), def.name, id],
        )?;
    }
    let mut lk = Lookup::new(conn);
    let v = View::new(p, def, base).render(&rec, def, &mut lk);
    Ok(json_value(StatusCode::OK, &json!({"result": v})))
}

/// `DELETE /table/{t}/{sys_id}`: the record goes, and a `sys_audit_delete` row says so (in the
/// same transaction), as an audited table's delete does.
pub(super) fn delete(conn: &Connection, def: &TableDef, id: &str, caller: &Caller) -> rusqlite::Result<Response> {
    let Some(old) = get_rec(conn, def.name, id)? else { return Ok(not_found()) };
    let tx = conn.unchecked_transaction()?;
    tx.execute("DELETE FROM sn_records WHERE tbl = ?1 AND sys_id = ?2", [def.name, id])?;
    if def.name != "sys_audit_delete" {
        let now = now_ms();
        let mut rec = Map::new();
        rec.insert("tablename".into(), Value::String(def.name.to_string()));
        rec.insert("documentkey".into(), Value::String(id.to_string()));
        rec.insert("display_value".into(), Value::String(str_of(&old, def.display)));
        let audit = new_sys_id();
        stamp(&mut rec, "sys_audit_delete", &audit, now, now, &caller.name, 0);
        insert_row(&tx, "sys_audit_delete", &audit, now, &rec)?;
    }
    tx.commit()?;
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}
