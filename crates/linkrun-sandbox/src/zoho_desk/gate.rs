//! The request gate every API call passes: the OAuth token, the fault knobs, the scope for the
//! operation and the `orgId` header.

use super::*;

#[derive(Clone)]
pub(super) struct Api {
    pub(super) desk: Desk,
    pub(super) provider: Provider,
    pub(super) faults: Faults,
}

/// What a request needs before it is served.
pub(super) enum Scope {
    /// Any `Desk.*` scope (organisation and department discovery).
    AnyDesk,
    /// One of these operations on `Desk.tickets` (`ALL` always does).
    Tickets(&'static [&'static str]),
    /// Searching a module: `Desk.search.READ`, or reading the module (`Desk.{module}.READ`, `.ALL`).
    Search(&'static str),
}

impl Scope {
    pub(super) fn allows(&self, granted: &[String]) -> bool {
        granted.iter().any(|s| {
            let s = s.to_ascii_lowercase();
            match self {
                Scope::AnyDesk => s.starts_with("desk."),
                Scope::Tickets(ops) => s
                    .strip_prefix("desk.tickets.")
                    .is_some_and(|op| op == "all" || ops.iter().any(|o| o.eq_ignore_ascii_case(op))),
                Scope::Search(module) => {
                    matches!(s.as_str(), "desk.search.read" | "desk.search.all")
                        || s.strip_prefix("desk.")
                            .and_then(|r| r.strip_prefix(*module))
                            .is_some_and(|op| op == ".read" || op == ".all")
                }
            }
        })
    }
}

/// Checks the token, the fault knobs, the scope and (with `need_org`) the `orgId`; gives the
/// caller's organisation name or the answer to send instead.
pub(super) async fn gate(
    api: &Api,
    headers: &HeaderMap,
    query: Option<&str>,
    scope: Scope,
    need_org: bool,
) -> Result<String, Response> {
    let info = api.provider.authenticate(headers).map_err(|f| {
        if f.missing {
            desk_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", MSG_UNAUTHORIZED)
        } else {
            desk_error(StatusCode::UNAUTHORIZED, "INVALID_OAUTH", MSG_INVALID_OAUTH)
        }
    })?;
    api.desk.ensure_org(&info.org);
    if let Some(fault) = api.faults.before(&info.org).await {
        return Err(fault_response(fault));
    }
    if !scope.allows(&info.scopes) {
        return Err(desk_error(StatusCode::UNAUTHORIZED, "SCOPE_MISMATCH", MSG_SCOPE_MISMATCH));
    }
    if need_org {
        let given = headers
            .get("orgid")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim().to_string())
            .or_else(|| query_param(query, "orgId").map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty());
        let Some(given) = given else {
            return Err(desk_error(StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_ENTITY", MSG_ORG_MISSING));
        };
        let st = api.desk.lock();
        let own = st.orgs.get(&info.org).is_some_and(|o| o.org_id == given);
        if !own {
            if given.bytes().all(|b| b.is_ascii_digit()) && st.orgs.values().any(|o| o.org_id == given) {
                return Err(desk_error(StatusCode::UNAUTHORIZED, "OAUTH_ORG_MISMATCH", MSG_ORG_MISMATCH));
            }
            return Err(bad_param("orgId"));
        }
    }
    Ok(info.org)
}

pub(super) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}
