//! The handlers of the record operations (insert, update, upsert, delete, get, list, search,
//! count) and the per-record checks they share.

use super::*;

impl Crm {
    pub(super) fn get_one(&self, org: &str, module: &str, id: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let data: Option<String> = {
            let db = self.db();
            let mut st =
                db.conn.prepare_cached("SELECT data FROM records WHERE org = ?1 AND module = ?2 AND id = ?3")?;
            st.query_row(params![org, module, id], |r| r.get(0)).optional()?
        };
        let Some(data) = data else {
            return Ok(error(StatusCode::BAD_REQUEST, "INVALID_DATA", "the id given seems to be invalid", json!({})));
        };
        if query.is_some() {
            let p = Params::parse(query);
            match parse_fields(&p, self.inner.cfg.max_fields) {
                Err(r) => return Ok(*r),
                Ok(Some(fields)) => {
                    let rec = project(&parse_record(&data), &fields);
                    return Ok(json_value(StatusCode::OK, &json!({ "data": [rec] })));
                }
                Ok(None) => {}
            }
        }
        Ok(json_text(StatusCode::OK, format!("{{\"data\":[{data}]}}")))
    }

    pub(super) fn list(
        &self,
        org: &str,
        module: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> rusqlite::Result<Response> {
        let cfg = &self.inner.cfg;
        let p = Params::parse(query);
        let (fields, page, per_page) = match list_params(&p, cfg.max_fields, cfg.max_per_page) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        let Some(mut sort) = SortBy::parse(p.get("sort_by").unwrap_or("id")) else { return Ok(bad_param("sort_by")) };
        let mut desc = match p.get("sort_order").unwrap_or("desc") {
            "desc" => true,
            "asc" => false,
            _ => return Ok(bad_param("sort_order")),
        };
        let since_ms = match time_header(headers, header::IF_MODIFIED_SINCE) {
            Ok(s) => s.map(|secs| (secs + 1) * 1000),
            Err(r) => return Ok(*r),
        };
        let now = now_ms();
        let bound = bound_to(module, &fields, per_page, since_ms);
        let token = match p.get("page_token") {
            None => None,
            Some(t) => match PageToken::decode(t) {
                None => return Ok(bad_param("page_token")),
                Some(tok) if now - tok.issued_ms > cfg.page_token_ttl_secs as i64 * 1000 => {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        "EXPIRED_VALUE",
                        "Page token expired",
                        json!({"param_name": "page_token"}),
                    ));
                }
                Some(tok)
                    if tok.bound != bound
                        || p.get("sort_by").is_some_and(|s| SortBy::parse(s) != Some(tok.sort))
                        || p.get("sort_order").is_some_and(|o| (o == "desc") != tok.desc) =>
                {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        "TOKEN_BOUND_DATA_MISMATCH",
                        "Page token is not bound to the given parameters",
                        json!({"param_name": "page_token"}),
                    ));
                }
                Some(tok) if tok.page.saturating_mul(per_page) > MAX_PAGED_RECORDS => {
                    return Ok(error(
                        StatusCode::BAD_REQUEST,
                        "PAGINATION_LIMIT_EXCEEDED",
                        "You can only get the first 100000 records",
                        json!({"limit": MAX_PAGED_RECORDS}),
                    ));
                }
                Some(tok) => Some(tok),
            },
        };
        if token.is_none() && page.saturating_mul(per_page) > cfg.discrete_limit {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "You can only get the first 2000 records without using page_token param",
                json!({"limit": cfg.discrete_limit}),
            ));
        }
        let ids: Option<Vec<&str>> =
            p.get("ids").map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect());
        if ids.as_ref().is_some_and(|ids| ids.len() > cfg.max_records_per_call) {
            return Ok(too_many_records(cfg.max_records_per_call));
        }
        let shown_page = token.as_ref().map_or(page, |t| t.page);
        let rows = {
            let db = self.db();
            if let Some(since) = since_ms {
                let mut st = db.conn.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM records WHERE org = ?1 AND module = ?2 AND modified >= ?3)",
                )?;
                let any: bool = st.query_row(params![org, module, since], |r| r.get(0))?;
                if !any {
                    return Ok(StatusCode::NOT_MODIFIED.into_response());
                }
            }
            if let Some(ids) = &ids {
                let mut rows: Vec<Row> = Vec::new();
                for id in ids {
                    let Some((c, m, d)) = get_row(&db.conn, org, module, id)? else { continue };
                    if since_ms.is_none_or(|s| m >= s) && !rows.iter().any(|r| r.0 == *id) {
                        rows.push((id.to_string(), c, m, d));
                    }
                }
                rows.sort_by(|a, b| {
                    let o = sort.key(a).cmp(&sort.key(b)).then_with(|| a.0.cmp(&b.0));
                    if desc { o.reverse() } else { o }
                });
                rows.into_iter().skip((page - 1) * per_page).take(per_page + 1).collect()
            } else if let Some(tok) = &token {
                sort = tok.sort;
                desc = tok.desc;
                let after = (tok.key, tok.id.clone());
                query_rows(&db.conn, org, module, sort, desc, since_ms, Some(&after), per_page + 1, 0)?
            } else {
                query_rows(&db.conn, org, module, sort, desc, since_ms, None, per_page + 1, (page - 1) * per_page)?
            }
        };
        let more = rows.len() > per_page;
        let rows = &rows[..rows.len().min(per_page)];
        let Some(last) = rows.last() else { return Ok(StatusCode::NO_CONTENT.into_response()) };
        let data: Vec<Value> = rows.iter().map(|r| project(&parse_record(&r.3), &fields)).collect();
        let (next, expiry) = if more && ids.is_none() {
            let tok = PageToken {
                sort,
                desc,
                key: sort.key(last),
                id: last.0.clone(),
                page: shown_page + 1,
                issued_ms: now,
                bound,
            };
            let expiry = format_time(now + cfg.page_token_ttl_secs as i64 * 1000, self.org_ctx(org).offset_secs);
            (Value::String(tok.encode()), Value::String(expiry))
        } else {
            (Value::Null, Value::Null)
        };
        let info = json!({
            "call": false,
            "per_page": per_page,
            "next_page_token": next,
            "count": data.len(),
            "sort_by": sort.name(),
            "page": shown_page,
            "page_token_expiry": expiry,
            "sort_order": if desc { "desc" } else { "asc" },
            "email": false,
            "more_records": more,
            "previous_page_token": Value::Null,
        });
        Ok(json_value(StatusCode::OK, &json!({ "data": data, "info": info })))
    }

    pub(super) fn search(&self, org: &str, module: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let cfg = &self.inner.cfg;
        let p = Params::parse(query);
        let filter = match Filter::from_params(&p, cfg.max_criteria) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(required_param("criteria")),
            Err(r) => return Ok(*r),
        };
        let fields = match parse_fields(&p, cfg.max_fields) {
            Ok(f) => f,
            Err(r) => return Ok(*r),
        };
        let (page, per_page) = match parse_paging(&p, cfg.max_per_page) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        if page.saturating_mul(per_page) > cfg.discrete_limit {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                "You can only get the first 2000 records without using page_token param",
                json!({"limit": cfg.discrete_limit}),
            ));
        }
        let offset = (page - 1) * per_page;
        let mut found: Vec<Map<String, Value>> = Vec::new();
        let mut seen = 0usize;
        self.scan(org, module, |rec| {
            if filter.matches(&rec) {
                seen += 1;
                if seen > offset {
                    found.push(rec);
                }
            }
            found.len() <= per_page
        })?;
        let more = found.len() > per_page;
        found.truncate(per_page);
        if found.is_empty() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let data: Vec<Value> = found
            .into_iter()
            .map(|r| match &fields {
                Some(f) => project(&r, f),
                None => Value::Object(r),
            })
            .collect();
        let info = json!({"per_page": per_page, "count": data.len(), "page": page, "more_records": more});
        Ok(json_value(StatusCode::OK, &json!({ "data": data, "info": info })))
    }

    pub(super) fn count_action(&self, org: &str, module: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let p = Params::parse(query);
        let n = match Filter::from_params(&p, self.inner.cfg.max_criteria) {
            Err(r) => return Ok(*r),
            Ok(None) => count_rows(&self.db().conn, org, module)?,
            Ok(Some(f)) => {
                let mut n = 0;
                self.scan(org, module, |rec| {
                    n += usize::from(f.matches(&rec));
                    true
                })?;
                n
            }
        };
        Ok(json_value(StatusCode::OK, &json!({ "count": n })))
    }

    /// Calls `f` on each record of the module, newest id first, while it returns true.
    pub(super) fn scan(
        &self,
        org: &str,
        module: &str,
        mut f: impl FnMut(Map<String, Value>) -> bool,
    ) -> rusqlite::Result<()> {
        let db = self.db();
        let mut st =
            db.conn.prepare_cached("SELECT data FROM records WHERE org = ?1 AND module = ?2 ORDER BY id DESC")?;
        let mut rows = st.query(params![org, module])?;
        while let Some(row) = rows.next()? {
            let data: String = row.get(0)?;
            if !f(parse_record(&data)) {
                break;
            }
        }
        Ok(())
    }

    pub(super) fn insert(&self, org: &str, module: &str, body: &[u8]) -> rusqlite::Result<Response> {
        let (items, _) = match data_items(body, self.inner.cfg.max_records_per_call) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        self.insert_items(org, module, &items)
    }

    pub(super) fn insert_items(&self, org: &str, module: &str, items: &[Value]) -> rusqlite::Result<Response> {
        let ctx = self.org_ctx(org);
        let now = now_ms();
        let mut db = self.db();
        let Db { conn, next_seq } = &mut *db;
        let tx = conn.transaction()?;
        let mut results = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            results.push(insert_item(&tx, &ctx, module, item, i, next_seq, now)?);
        }
        tx.commit()?;
        Ok(batch_response(results, StatusCode::CREATED))
    }

    pub(super) fn update(
        &self,
        org: &str,
        module: &str,
        path_id: Option<&str>,
        body: &[u8],
        headers: &HeaderMap,
    ) -> rusqlite::Result<Response> {
        let (mut items, _) = match data_items(body, self.inner.cfg.max_records_per_call) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        let unmodified_since = match time_header(headers, header::IF_UNMODIFIED_SINCE) {
            Ok(t) => t,
            Err(r) => return Ok(*r),
        };
        if path_id.is_some() {
            items.truncate(1);
        }
        let ctx = self.org_ctx(org);
        let now = now_ms();
        let mut db = self.db();
        let tx = db.conn.transaction()?;
        let mut results = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let id = match path_id {
                Some(id) => Some(id.to_string()),
                None => item.get("id").and_then(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }),
            };
            results.push(update_item(&tx, &ctx, module, id.as_deref(), item, i, now, unmodified_since)?);
        }
        tx.commit()?;
        Ok(batch_response(results, StatusCode::OK))
    }

    pub(super) fn upsert(
        &self,
        org: &str,
        module: &str,
        body: &[u8],
        headers: &HeaderMap,
    ) -> rusqlite::Result<Response> {
        let (items, top) = match data_items(body, self.inner.cfg.max_records_per_call) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        let dup_fields: Vec<String> = match top.get("duplicate_check_fields") {
            None | Some(Value::Null) => upsert_fields(module).iter().map(|s| s.to_string()).collect(),
            Some(Value::Array(a)) if a.iter().all(|f| f.as_str().is_some_and(valid_api_name)) => {
                a.iter().filter_map(|f| f.as_str().map(str::to_string)).collect()
            }
            Some(_) => {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_DATA",
                    "invalid data",
                    json!({"api_name": "duplicate_check_fields", "json_path": "$.duplicate_check_fields"}),
                ));
            }
        };
        let unmodified_since = match time_header(headers, header::IF_UNMODIFIED_SINCE) {
            Ok(t) => t,
            Err(r) => return Ok(*r),
        };
        let ctx = self.org_ctx(org);
        let now = now_ms();
        let mut db = self.db();
        let Db { conn, next_seq } = &mut *db;
        let tx = conn.transaction()?;
        let mut results = Vec::with_capacity(items.len());
        'items: for (i, item) in items.iter().enumerate() {
            if let Some(obj) = item.as_object() {
                for f in &dup_fields {
                    let Some(v) = obj.get(f).filter(|v| !is_empty_value(Some(v))) else { continue };
                    if let Some(id) = find_equal(&tx, org, module, f, v, None)? {
                        let mut r = update_item(&tx, &ctx, module, Some(&id), item, i, now, unmodified_since)?;
                        if r["status"] == "success" {
                            r["duplicate_field"] = f.clone().into();
                            r["action"] = "update".into();
                        }
                        results.push(r);
                        continue 'items;
                    }
                }
            }
            let mut r = insert_item(&tx, &ctx, module, item, i, next_seq, now)?;
            if r["status"] == "success" {
                r["duplicate_field"] = Value::Null;
                r["action"] = "insert".into();
            }
            results.push(r);
        }
        tx.commit()?;
        Ok(batch_response(results, StatusCode::OK))
    }

    pub(super) fn delete_many(&self, org: &str, module: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let p = Params::parse(query);
        let Some(raw) = p.get("ids") else { return Ok(required_param("ids")) };
        let ids: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if ids.is_empty() {
            return Ok(required_param("ids"));
        }
        if ids.len() > self.inner.cfg.max_records_per_call {
            return Ok(too_many_records(self.inner.cfg.max_records_per_call));
        }
        let items = self.delete_ids(org, module, &ids)?;
        Ok(batch_response(items, StatusCode::OK))
    }

    pub(super) fn delete_one(&self, org: &str, module: &str, id: &str) -> rusqlite::Result<Response> {
        let items = self.delete_ids(org, module, &[id])?;
        Ok(batch_response(items, StatusCode::OK))
    }

    pub(super) fn delete_ids(&self, org: &str, module: &str, ids: &[&str]) -> rusqlite::Result<Vec<Value>> {
        let mut db = self.db();
        let tx = db.conn.transaction()?;
        let mut items = Vec::with_capacity(ids.len());
        let ctx = self.org_ctx(org);
        let now = now_ms();
        for id in ids {
            let row = get_row(&tx, org, module, id)?;
            let n = tx
                .prepare_cached("DELETE FROM records WHERE org = ?1 AND module = ?2 AND id = ?3")?
                .execute(params![org, module, id])?;
            if let Some((_, _, data)) = row {
                record_deleted(&tx, &ctx, module, id, &parse_record(&data), now)?;
            }
            items.push(if n > 0 {
                json!({"code": "SUCCESS", "details": {"id": id}, "message": "record deleted", "status": "success"})
            } else {
                item_error("INVALID_DATA", "the id given seems to be invalid", json!({"id": id}))
            });
        }
        tx.commit()?;
        Ok(items)
    }
}

/// Validates an insert or update item's fields: drops server-owned ones (and `$...` keys), checks
/// names, types, lengths, e-mail shape and the owner.
pub(super) fn clean_fields(
    ctx: &OrgCtx,
    module: &str,
    obj: &Map<String, Value>,
    i: usize,
) -> Result<Map<String, Value>, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        if READ_ONLY.contains(&k.as_str()) || k.starts_with('$') {
            continue;
        }
        if !valid_api_name(k) {
            return Err(item_error(
                "INVALID_DATA",
                "the field api name given seems to be invalid",
                json!({"api_name": k, "json_path": json_path(i, k)}),
            ));
        }
        let v = match (k.as_str(), v) {
            ("Owner", Value::Object(o)) => {
                let id = match o.get("id") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => String::new(),
                };
                match ctx.active_user(&id) {
                    Some(u) => u,
                    None => return Err(invalid_value(i, k, ("expected_data_type", "ownerlookup".into()))),
                }
            }
            ("Owner", _) => return Err(invalid_value(i, k, ("expected_data_type", "ownerlookup".into()))),
            (f, Value::String(s)) if numeric_field(f) => match s.trim().parse::<f64>() {
                Ok(n) if n.fract() == 0.0 && n.abs() < 1e15 => json!(n as i64),
                Ok(n) => json!(n),
                Err(_) => return Err(invalid_value(i, k, ("expected_data_type", "double".into()))),
            },
            (f, Value::Number(_) | Value::Null) if numeric_field(f) => v.clone(),
            (f, _) if numeric_field(f) => return Err(invalid_value(i, k, ("expected_data_type", "double".into()))),
            (f, Value::String(s)) if date_field(module, f) => {
                if s.is_empty() {
                    Value::Null
                } else if chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10 {
                    v.clone()
                } else {
                    return Err(invalid_value(i, k, ("expected_data_type", "date".into())));
                }
            }
            (f, Value::String(s)) if datetime_field(module, f) => {
                if s.is_empty() {
                    Value::Null
                } else if chrono::DateTime::parse_from_rfc3339(s).is_ok() {
                    v.clone()
                } else {
                    return Err(invalid_value(i, k, ("expected_data_type", "datetime".into())));
                }
            }
            (f, _) if (date_field(module, f) || datetime_field(module, f)) && !v.is_null() => {
                let ty = if date_field(module, f) { "date" } else { "datetime" };
                return Err(invalid_value(i, k, ("expected_data_type", ty.into())));
            }
            (f, Value::String(s)) if !s.is_empty() && picklist(module, f).is_some_and(|p| !p.contains(&s.as_str())) => {
                let supported = picklist(module, f).unwrap_or_default();
                return Err(item_error(
                    "INVALID_DATA",
                    "invalid data",
                    json!({
                        "expected_data_type": "picklist",
                        "api_name": k,
                        "json_path": json_path(i, k),
                        "supported_values": supported,
                    }),
                ));
            }
            (f, Value::String(s)) => {
                let max = max_length(f);
                if s.chars().count() > max {
                    return Err(invalid_value(i, k, ("maximum_length", max.into())));
                }
                if matches!(f, "Email" | "Secondary_Email") && !s.is_empty() && !looks_like_email(s) {
                    return Err(invalid_value(i, k, ("expected_data_type", "email".into())));
                }
                v.clone()
            }
            (_, Value::Null) => Value::Null,
            (f, _) if text_only(module, f) => return Err(invalid_value(i, k, ("expected_data_type", "text".into()))),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Ok(out)
}

/// Resolves the lookup fields of an item (`Vendor_Name` of a purchase order, `Account_Name` of a
/// contact, ...): each must be `{"id": ...}` (or the id itself) of a record of the looked-up
/// module, and is stored as `{"name", "id"}` as CRM answers it; anything else is `INVALID_DATA`
/// with `expected_data_type` `lookup`, as the real API answers a name where an id belongs.
pub(super) fn resolve_lookups(
    conn: &Connection,
    ctx: &OrgCtx,
    module: &str,
    rec: &mut Map<String, Value>,
    i: usize,
) -> rusqlite::Result<Result<(), Value>> {
    let fields: Vec<(String, &'static str)> =
        rec.keys().filter_map(|k| lookup_module(module, k).map(|m| (k.clone(), m))).collect();
    for (k, target) in fields {
        let v = rec.get(&k).cloned().unwrap_or(Value::Null);
        if v.is_null() {
            continue;
        }
        let row = match related::lookup_id(&v) {
            Some(id) => get_row(conn, &ctx.org, target, &id)?.map(|(_, _, data)| (id, data)),
            None => None,
        };
        let Some((id, data)) = row else {
            return Ok(Err(invalid_value(i, &k, ("expected_data_type", "lookup".into()))));
        };
        rec.insert(k, json!({"name": display_name(&parse_record(&data)), "id": id}));
    }
    Ok(Ok(()))
}

pub(super) fn missing_mandatory(module: &str, rec: &Map<String, Value>, i: usize) -> Option<Value> {
    mandatory_fields(module).iter().find(|f| is_empty_value(rec.get(**f))).map(|f| {
        item_error(
            "MANDATORY_NOT_FOUND",
            "required field not found",
            json!({"api_name": f, "json_path": json_path(i, f)}),
        )
    })
}

/// A `DUPLICATE_DATA` item when one of the module's system duplicate fields in `fields` is taken.
pub(super) fn duplicate(
    conn: &Connection,
    ctx: &OrgCtx,
    module: &str,
    fields: &Map<String, Value>,
    exclude: Option<&str>,
    i: usize,
) -> rusqlite::Result<Option<Value>> {
    for f in duplicate_fields(module) {
        let Some(v) = fields.get(*f).filter(|v| !is_empty_value(Some(v))) else { continue };
        if let Some(id) = find_equal(conn, &ctx.org, module, f, v, exclude)? {
            return Ok(Some(item_error(
                "DUPLICATE_DATA",
                "duplicate data",
                json!({
                    "api_name": f,
                    "duplicate_record": {"id": id},
                    "json_path": json_path(i, f),
                    "id": id,
                    "more_records": false,
                }),
            )));
        }
    }
    Ok(None)
}

/// The most records a listing pages through with `page_token` (`PAGINATION_LIMIT_EXCEEDED`).
const MAX_PAGED_RECORDS: usize = 100_000;

pub(super) fn insert_item(
    conn: &Connection,
    ctx: &OrgCtx,
    module: &str,
    item: &Value,
    i: usize,
    seq: &mut u64,
    now: i64,
) -> rusqlite::Result<Value> {
    let Some(obj) = item.as_object() else {
        return Ok(item_error(
            "INVALID_DATA",
            "invalid data",
            json!({"expected_data_type": "jsonobject", "json_path": format!("$.data[{i}]")}),
        ));
    };
    if let Some(e) = missing_mandatory(module, obj, i) {
        return Ok(e);
    }
    let parent = if module == "Notes" {
        match note_parent(conn, ctx, obj, i)? {
            Ok(p) => Some(p),
            Err(e) => return Ok(e),
        }
    } else {
        None
    };
    let mut rec = match clean_fields(ctx, module, obj, i) {
        Ok(f) => f,
        Err(e) => return Ok(e),
    };
    if let Err(e) = resolve_lookups(conn, ctx, module, &mut rec, i)? {
        return Ok(e);
    }
    if let Some((parent_id, se_module)) = parent {
        rec.insert("Parent_Id".into(), parent_id);
        rec.insert("$se_module".into(), se_module.into());
    }
    if let Some(e) = duplicate(conn, ctx, module, &rec, None, i)? {
        return Ok(e);
    }
    let id = ctx.new_id(seq);
    stamp_new(&mut rec, ctx, &id, now, now);
    insert_row(conn, &ctx.org, module, &id, now, now, &rec)?;
    Ok(success_item(&rec, "record added"))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn update_item(
    conn: &Connection,
    ctx: &OrgCtx,
    module: &str,
    id: Option<&str>,
    item: &Value,
    i: usize,
    now: i64,
    unmodified_since: Option<i64>,
) -> rusqlite::Result<Value> {
    let Some(obj) = item.as_object() else {
        return Ok(item_error(
            "INVALID_DATA",
            "invalid data",
            json!({"expected_data_type": "jsonobject", "json_path": format!("$.data[{i}]")}),
        ));
    };
    let Some(id) = id.filter(|s| !s.is_empty()) else { return Ok(invalid_id_item(i)) };
    let Some((_, modified, data)) = get_row(conn, &ctx.org, module, id)? else { return Ok(invalid_id_item(i)) };
    if unmodified_since.is_some_and(|since| modified.div_euclid(1000) > since) {
        return Ok(item_error(
            "ALREADY_MODIFIED",
            "record updated time has already passed if-unmodified-since time",
            json!({"id": id}),
        ));
    }
    let mut fields = match clean_fields(ctx, module, obj, i) {
        Ok(f) => f,
        Err(e) => return Ok(e),
    };
    if let Err(e) = resolve_lookups(conn, ctx, module, &mut fields, i)? {
        return Ok(e);
    }
    if module == "Notes" {
        // A note stays on its parent (UNCONFIRMED whether Zoho refuses or ignores a new one).
        fields.remove("Parent_Id");
    }
    if let Some(e) = duplicate(conn, ctx, module, &fields, Some(id), i)? {
        return Ok(e);
    }
    let mut rec = parse_record(&data);
    rec.extend(fields);
    if let Some(e) = missing_mandatory(module, &rec, i) {
        return Ok(e);
    }
    let now = now.max(modified);
    rec.insert("Modified_Time".into(), format_time(now, ctx.offset_secs).into());
    rec.insert("Modified_By".into(), ctx.user.clone());
    update_row(conn, &ctx.org, module, id, now, &rec)?;
    Ok(success_item(&rec, "record updated"))
}
