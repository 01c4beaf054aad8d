//! Search: `GET /api/v1/tickets/search` and `GET /api/v1/contacts/search`, answering
//! `{"data":[…],"count":N}` (the count of all matches, not just the page) or 204 when nothing
//! matches. Text parameters match without case; a `*` at either end of `subject` or a name makes it
//! a prefix, suffix or contains match, as Desk's search does.

use super::*;

/// `from` (default 0) and `limit` (default 10, at most 100) of a search.
fn page_params(q: Option<&str>) -> Result<(usize, usize), Box<Response>> {
    let from = match query_param(q, "from").map(|v| v.trim().parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Err(Box::new(bad_param("from"))),
    };
    let limit = match query_param(q, "limit").map(|v| v.trim().parse::<usize>()) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return Err(Box::new(bad_param("limit"))),
    };
    Ok((from, limit))
}

/// Whether `value` matches the search term `want`: equal without case, or with a leading or
/// trailing `*`, ending with, starting with or containing it.
pub(super) fn term_matches(value: Option<&str>, want: &str) -> bool {
    let Some(v) = value else { return false };
    let (v, w) = (v.trim().to_lowercase(), want.trim().to_lowercase());
    match (w.strip_prefix('*'), w.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') => v.contains(rest.trim_end_matches('*')),
        (Some(rest), _) => v.ends_with(rest),
        (None, Some(rest)) => v.starts_with(rest),
        (None, None) => v == w,
    }
}

fn answer(all: Vec<Value>, from: usize, limit: usize) -> Response {
    let count = all.len();
    let page: Vec<Value> = all.into_iter().skip(from).take(limit).collect();
    if page.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    Json(json!({ "data": page, "count": count })).into_response()
}

pub(super) async fn search_tickets(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Search("tickets"), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let q = q.as_deref();
    let (from, limit) = match page_params(q) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let filters: Vec<(&str, String)> = [
        "subject",
        "email",
        "phone",
        "ticketNumber",
        "status",
        "departmentId",
        "assigneeId",
        "contactId",
        "channel",
        "priority",
        "id",
    ]
    .iter()
    .filter_map(|k| query_param(q, k).filter(|v| !v.trim().is_empty()).map(|v| (*k, v)))
    .collect();
    let st = api.desk.lock();
    let tickets = st.orgs.get(&org).map(|o| o.tickets.as_slice()).unwrap_or_default();
    let all: Vec<Value> = tickets
        .iter()
        .rev() // newest first
        .filter(|t| filters.iter().all(|(k, want)| term_matches(t.get(*k).and_then(Value::as_str), want)))
        .map(|t| Value::Object(t.clone()))
        .collect();
    answer(all, from, limit)
}

pub(super) async fn search_contacts(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::Search("contacts"), true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let q = q.as_deref();
    let (from, limit) = match page_params(q) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let get = |k: &str| query_param(q, k).filter(|v| !v.trim().is_empty());
    let (email, phone, first, last, full, any) =
        (get("email"), get("phone"), get("firstName"), get("lastName"), get("fullName"), get("searchStr"));
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let st = api.desk.lock();
    let contacts = st.orgs.get(&org).map(|o| o.contacts.as_slice()).unwrap_or_default();
    let all: Vec<Value> = contacts
        .iter()
        .rev()
        .filter(|c| {
            let full_name = match &c.first_name {
                Some(f) => format!("{f} {}", c.last_name),
                None => c.last_name.clone(),
            };
            let phone_ok = |want: &str| {
                let w = digits(want);
                !w.is_empty()
                    && [&c.phone, &c.mobile].iter().any(|p| p.as_deref().is_some_and(|p| digits(p).ends_with(&w)))
            };
            email.as_deref().is_none_or(|e| term_matches(c.email.as_deref(), e))
                && phone.as_deref().is_none_or(phone_ok)
                && first.as_deref().is_none_or(|f| term_matches(c.first_name.as_deref(), f))
                && last.as_deref().is_none_or(|l| term_matches(Some(&c.last_name), l))
                && full.as_deref().is_none_or(|f| term_matches(Some(&full_name), f))
                && any.as_deref().is_none_or(|s| {
                    let s = s.trim().trim_matches('*').to_lowercase();
                    [Some(full_name.as_str()), c.email.as_deref(), c.phone.as_deref(), c.mobile.as_deref()]
                        .iter()
                        .any(|v| v.is_some_and(|v| v.to_lowercase().contains(&s)))
                })
        })
        .map(Contact::to_json)
        .collect();
    answer(all, from, limit)
}
