//! Records hanging off other records: notes (`Parent_Id` and `$se_module` name the parent), the
//! related lists `GET /{module}/{id}/{related_list}`, and the deleted records
//! `GET /{module}/deleted` that the delete endpoints leave behind (`docs/api-facts.md` §2.4d).

use super::*;

/// The related lists the emulator serves: `(parent module, list name, child module, the child's
/// field that points at the parent)`. `Notes` (any parent) is handled apart.
const RELATED: [(&str, &str, &str, &str); 3] = [
    ("Accounts", "Contacts", "Contacts", "Account_Name"),
    ("Accounts", "Deals", "Deals", "Account_Name"),
    ("Contacts", "Deals", "Deals", "Contact_Name"),
];

/// The child module of a related list of `module`, if there is such a list.
pub(super) fn related_module(module: &str, list: &str) -> Option<&'static str> {
    if list.eq_ignore_ascii_case("Notes") && module != "Notes" {
        return Some("Notes");
    }
    RELATED.iter().find(|(p, l, _, _)| *p == module && l.eq_ignore_ascii_case(list)).map(|(_, _, c, _)| *c)
}

/// Checks a new note's parent: `$se_module` names a module, `Parent_Id` (an id, or `{"id": …}`)
/// a record of it. Gives the `Parent_Id` to store (`{"name", "id"}`) and the module, or the item
/// error.
pub(super) fn note_parent(
    conn: &Connection,
    ctx: &OrgCtx,
    obj: &Map<String, Value>,
    i: usize,
) -> rusqlite::Result<Result<(Value, &'static str), Value>> {
    let mandatory = |f: &str| {
        item_error(
            "MANDATORY_NOT_FOUND",
            "required field not found",
            json!({"api_name": f, "json_path": json_path(i, f)}),
        )
    };
    let se_module = match obj.get("$se_module") {
        None | Some(Value::Null) => return Ok(Err(mandatory("$se_module"))),
        Some(Value::String(s)) => match canonical_module(s.trim()).filter(|m| *m != "Notes") {
            Some(m) => m,
            None => return Ok(Err(invalid_value(i, "$se_module", ("expected_data_type", "module".into())))),
        },
        Some(_) => return Ok(Err(invalid_value(i, "$se_module", ("expected_data_type", "module".into())))),
    };
    let id = match obj.get("Parent_Id") {
        None | Some(Value::Null) => return Ok(Err(mandatory("Parent_Id"))),
        Some(v) => lookup_id(v),
    };
    let Some(id) = id else { return Ok(Err(invalid_value(i, "Parent_Id", ("expected_data_type", "lookup".into())))) };
    let Some((_, _, data)) = get_row(conn, &ctx.org, se_module, &id)? else {
        return Ok(Err(invalid_value(i, "Parent_Id", ("expected_data_type", "lookup".into()))));
    };
    let parent = parse_record(&data);
    Ok(Ok((json!({"name": display_name(&parent), "id": id}), se_module)))
}

/// The id of a lookup value: `"123"`, `123` or `{"id": "123"}`.
pub(super) fn lookup_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o.get("id").and_then(lookup_id),
        _ => None,
    }
}

/// Keeps what `GET /{module}/deleted` shows of a record deleted now.
pub(super) fn record_deleted(
    conn: &Connection,
    ctx: &OrgCtx,
    module: &str,
    id: &str,
    rec: &Map<String, Value>,
    now: i64,
) -> rusqlite::Result<()> {
    let item = json!({
        "deleted_by": short_user(Some(&ctx.user)),
        "id": id,
        "display_name": display_name(rec),
        "type": "recycle",
        // The documented sample (v2) spells it so; later versions' spelling is UNCONFIRMED.
        "Created_By": short_user(rec.get("Created_By")),
        "deleted_time": format_time(now, ctx.offset_secs),
    });
    conn.prepare_cached("INSERT INTO deleted_records (org, module, id, deleted, data) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![ctx.org, module, id, now, item.to_string()])?;
    Ok(())
}

impl Crm {
    /// `GET /{module}/deleted?type=all|recycle|permanent&page=&per_page=`: newest first; the
    /// emulator's deletes all go to the recycle bin, so `permanent` is always empty (204).
    pub(super) fn deleted(&self, org: &str, module: &str, query: Option<&str>) -> rusqlite::Result<Response> {
        let p = Params::parse(query);
        let permanent = match p.get("type").unwrap_or("all") {
            "all" | "recycle" => false,
            "permanent" => true,
            _ => return Ok(bad_param("type")),
        };
        let (page, per_page) = match parse_paging(&p, self.inner.cfg.max_per_page) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        if permanent {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        let rows: Vec<String> = {
            let db = self.db();
            let mut st = db.conn.prepare_cached(
                "SELECT data FROM deleted_records WHERE org = ?1 AND module = ?2 \
                 ORDER BY deleted DESC, rowid DESC LIMIT ?3 OFFSET ?4",
            )?;
            let rows = st
                .query_map(params![org, module, (per_page + 1) as i64, ((page - 1) * per_page) as i64], |r| {
                    r.get::<_, String>(0)
                })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        page_answer(rows.iter().map(|d| serde_json::from_str(d).unwrap_or(Value::Null)).collect(), page, per_page)
    }

    /// `GET /{module}/{id}/{related_list}?fields=…`: the records of the list's module that point at
    /// the parent, newest first.
    pub(super) fn related(
        &self,
        org: &str,
        module: &str,
        id: &str,
        child: &str,
        query: Option<&str>,
    ) -> rusqlite::Result<Response> {
        let cfg = &self.inner.cfg;
        let p = Params::parse(query);
        let (fields, page, per_page) = match list_params(&p, cfg.max_fields, cfg.max_per_page) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        if get_row(&self.db().conn, org, module, id)?.is_none() {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "the id given seems to be invalid",
                json!({"resource_path_index": 1}),
            ));
        }
        let link = RELATED.iter().find(|(pm, _, c, _)| *pm == module && *c == child).map(|(_, _, _, f)| *f);
        let points_here = |rec: &Map<String, Value>| match link {
            Some(field) => rec.get(field).and_then(lookup_id).as_deref() == Some(id),
            None => {
                rec.get("Parent_Id").and_then(lookup_id).as_deref() == Some(id)
                    && rec.get("$se_module").and_then(Value::as_str) == Some(module)
            }
        };
        let offset = (page - 1) * per_page;
        let mut found = Vec::new();
        let mut seen = 0usize;
        self.scan(org, child, |rec| {
            if points_here(&rec) {
                seen += 1;
                if seen > offset {
                    found.push(project(&rec, &fields));
                }
            }
            found.len() <= per_page
        })?;
        page_answer(found, page, per_page)
    }

    /// `POST /{module}/{id}/Notes`: notes on that record (`Parent_Id` and `$se_module` come from
    /// the path).
    pub(super) fn add_notes(&self, org: &str, module: &str, id: &str, body: &[u8]) -> rusqlite::Result<Response> {
        let (mut items, _) = match data_items(body, self.inner.cfg.max_records_per_call) {
            Ok(x) => x,
            Err(r) => return Ok(*r),
        };
        for item in &mut items {
            if let Value::Object(o) = item {
                o.insert("Parent_Id".into(), id.into());
                o.insert("$se_module".into(), module.into());
            }
        }
        self.insert_items(org, "Notes", &items)
    }
}

/// `{"data": […], "info": {per_page, count, page, more_records}}` from up to `per_page + 1`
/// items; 204 when there are none.
pub(super) fn page_answer(mut items: Vec<Value>, page: usize, per_page: usize) -> rusqlite::Result<Response> {
    let more = items.len() > per_page;
    items.truncate(per_page);
    if items.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let info = json!({"per_page": per_page, "count": items.len(), "page": page, "more_records": more});
    Ok(json_value(StatusCode::OK, &json!({ "data": items, "info": info })))
}
