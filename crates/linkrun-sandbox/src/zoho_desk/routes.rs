//! Routes: the handlers of organizations, departments and tickets (create, list, get).

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
