//! Routes: the handlers of organizations, departments and tickets (create, list, get, update).

use super::*;

pub(super) async fn organizations(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::AnyDesk, false).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let st = api.desk.lock();
    let Some(o) = st.orgs.get(&org) else { return url_not_found_now() };
    let data = json!([{
        "id": o.org_id,
        "companyName": org,
        "portalName": org,
        "portalURL": format!("https://desk.zoho.com/support/{org}"),
        "isDefault": true,
        "isAdminInOrg": true,
        "edition": "ENTERPRISE",
        "description": null,
    }]);
    Json(json!({ "data": data })).into_response()
}

pub(super) async fn departments(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::AnyDesk, true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let st = api.desk.lock();
    let Some(o) = st.orgs.get(&org) else { return url_not_found_now() };
    let data = json!([{
        "id": o.department_id,
        "name": org,
        "isDefault": true,
        "isEnabled": true,
        "isAssignToTeamEnabled": false,
        "description": null,
    }]);
    Json(json!({ "data": data })).into_response()
}

pub(super) async fn create_ticket(
    State(api): State<Api>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Tickets(&["CREATE", "WRITE"]), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let fields = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(m)) => m,
        _ => {
            let form = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.contains("form-urlencoded") || t.contains("multipart/"));
            return if form {
                desk_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", MSG_MEDIA_TYPE)
            } else {
                desk_error(StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY", MSG_NOT_JSON)
            };
        }
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let base = format!("http://{host}");
    let mut st = api.desk.lock();
    let contacts_before = st.orgs.get(&org).map_or(0, |o| o.contacts.len());
    match insert_ticket(&mut st, &org, &fields, &base) {
        Ok(ticket) => match st.save_new_ticket(&org, contacts_before) {
            Ok(()) => Json(ticket).into_response(),
            Err(e) => {
                eprintln!("linkrun sandbox: cannot store a Desk ticket: {e}");
                desk_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", &storage_failed(&e))
            }
        },
        Err(errors) => field_errors(errors),
    }
}

pub(super) async fn list_tickets(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Tickets(&["READ"]), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let q = q.as_deref();
    let from = match query_param(q, "from").map(|v| v.trim().parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return bad_param("from"),
    };
    let limit = match query_param(q, "limit").map(|v| v.trim().parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return bad_param("limit"),
    };
    let sort = query_param(q, "sortBy");
    let (key, descending) = match sort.as_deref().map(str::trim) {
        None | Some("") => ("createdTime", false),
        Some(s) => {
            let (desc, name) = match s.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, s),
            };
            match name {
                "createdTime" | "ticketNumber" | "modifiedTime" => (name, desc),
                _ => return bad_param("sortBy"),
            }
        }
    };
    let st = api.desk.lock();
    let mut all: Vec<&Map<String, Value>> = st.orgs.get(&org).map(|o| o.tickets.iter().collect()).unwrap_or_default();
    // Tickets are stored in creation order; ticket numbers and times grow with it (ties keep it).
    if key == "ticketNumber" {
        all.sort_by_key(|t| t.get("ticketNumber").and_then(Value::as_str).and_then(|n| n.parse::<u64>().ok()));
    } else {
        all.sort_by(|a, b| {
            let ka = a.get(key).and_then(Value::as_str).unwrap_or("");
            let kb = b.get(key).and_then(Value::as_str).unwrap_or("");
            ka.cmp(kb)
        });
    }
    if descending {
        all.reverse();
    }
    let page: Vec<Value> = all.into_iter().skip(from).take(limit).map(|t| Value::Object(t.clone())).collect();
    if page.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(json!({ "data": page })).into_response()
}

pub(super) async fn get_ticket(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Tickets(&["READ"]), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return bad_param("ticketId");
    }
    let st = api.desk.lock();
    let found = st
        .orgs
        .get(&org)
        .and_then(|o| o.tickets.iter().find(|t| t.get("id").and_then(Value::as_str) == Some(id.as_str())));
    match found {
        Some(t) => Json(Value::Object(t.clone())).into_response(),
        None => url_not_found_now(),
    }
}

pub(super) fn url_not_found_now() -> Response {
    desk_error(StatusCode::NOT_FOUND, "URL_NOT_FOUND", MSG_URL_NOT_FOUND)
}

/// `PATCH /api/v1/tickets/{id}`: changes the fields given (the same checks as on creation for
/// `subject`, `status`, `email`, `dueDate`, `departmentId` and `assigneeId`) and bumps
/// `modifiedTime`.
pub(super) async fn update_ticket(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Tickets(&["UPDATE", "WRITE"]), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return bad_param("ticketId");
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return desk_error(StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY", MSG_NOT_JSON);
    };
    let mut st = api.desk.lock();
    let Some(o) = st.orgs.get(&org) else { return url_not_found_now() };
    let Some(idx) = o.tickets.iter().position(|t| t["id"] == id.as_str()) else { return url_not_found_now() };
    let mut errors = Vec::new();
    let mut changes = Map::new();
    for key in [
        "subject",
        "description",
        "priority",
        "channel",
        "email",
        "phone",
        "category",
        "subCategory",
        "language",
        "classification",
        "dueDate",
    ] {
        if !fields.contains_key(key) {
            continue;
        }
        let v = take_str(&fields, key, "", &mut errors);
        let bad = match key {
            "subject" => match &v {
                None => Some(FieldError::missing("/subject")),
                Some(s) if s.chars().count() > MAX_SUBJECT_CHARS => {
                    Some(FieldError::invalid("/subject", "The subject can be at most 255 characters long."))
                }
                _ => None,
            },
            "email" => v
                .as_deref()
                .filter(|e| !valid_email(e))
                .map(|_| FieldError::invalid("/email", "The email address is not valid.")),
            "dueDate" => v
                .as_deref()
                .filter(|d| !valid_time(d))
                .map(|_| FieldError::invalid("/dueDate", "The date must look like 2018-10-19T06:34:43.000Z.")),
            _ => None,
        };
        errors.extend(bad);
        changes.insert(key.to_string(), v.map_or(Value::Null, Value::String));
    }
    if fields.contains_key("departmentId") {
        match opt_id(&fields, "departmentId") {
            Ok(Some(d)) if d == o.department_id => {}
            _ => errors.push(FieldError::invalid("/departmentId", "")),
        }
    }
    if fields.contains_key("assigneeId") {
        let a = if fields["assigneeId"].is_null() { None } else { check_assignee(o, &fields, &mut errors) };
        changes.insert("assigneeId".into(), a.map_or(Value::Null, Value::String));
    }
    if fields.contains_key("status") {
        match take_str(&fields, "status", "", &mut errors).map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            Some("open") => changes.extend([("status".into(), json!("Open")), ("statusType".into(), json!("Open"))]),
            Some("on hold") => {
                changes.extend([("status".into(), json!("On Hold")), ("statusType".into(), json!("On Hold"))])
            }
            Some("escalated") => {
                changes.extend([("status".into(), json!("Escalated")), ("statusType".into(), json!("Open"))])
            }
            Some("closed") => {
                changes.extend([("status".into(), json!("Closed")), ("statusType".into(), json!("Closed"))])
            }
            _ => errors.push(FieldError::invalid("/status", "The status must be Open, On Hold, Escalated or Closed.")),
        }
    }
    if let Some(cf) = fields.get("cf") {
        match cf {
            Value::Object(m) => {
                let mut merged = o.tickets[idx].get("cf").and_then(Value::as_object).cloned().unwrap_or_default();
                merged.extend(m.clone());
                changes.insert("cf".into(), Value::Object(merged.clone()));
                changes.insert("customFields".into(), Value::Object(merged));
            }
            _ => errors.push(FieldError::invalid("/cf", "The custom fields must be an object.")),
        }
    }
    if !errors.is_empty() {
        return field_errors(errors);
    }
    let now = now_time();
    let Some(o) = st.orgs.get_mut(&org) else { return url_not_found_now() };
    let t = &mut o.tickets[idx];
    let closing =
        changes.get("statusType").is_some_and(|s| s == "Closed") && t.get("statusType").is_some_and(|s| s != "Closed");
    t.extend(changes);
    if closing {
        t.insert("closedTime".into(), now.clone().into());
    }
    t.insert("modifiedTime".into(), now.into());
    let ticket = Value::Object(t.clone());
    match st.save_ticket(&org, &id) {
        Ok(()) => Json(ticket).into_response(),
        Err(e) => {
            eprintln!("linkrun sandbox: cannot store a Desk ticket: {e}");
            desk_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", &storage_failed(&e))
        }
    }
}
