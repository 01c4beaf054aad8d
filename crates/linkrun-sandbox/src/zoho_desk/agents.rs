//! Agents: two per organisation, derived from its `orgId` so that they are the same on every start
//! (`GET /api/v1/agents`, `GET /api/v1/agents/{id}`); a ticket's `assigneeId` must name one.

use super::*;

/// One agent.
pub(super) struct Agent {
    pub(super) id: String,
    pub(super) first: &'static str,
    pub(super) last: &'static str,
    pub(super) email: String,
}

impl Agent {
    fn to_json(&self, department_id: &str) -> Value {
        json!({
            "id": self.id,
            "firstName": self.first,
            "lastName": self.last,
            "name": format!("{} {}", self.first, self.last),
            "emailId": self.email,
            "status": "ACTIVE",
            "isConfirmed": true,
            "roleId": null,
            "profileId": null,
            "associatedDepartmentIds": [department_id],
        })
    }
}

impl OrgData {
    /// The organisation's agents: ids `{orgId}01` and `{orgId}02`.
    pub(super) fn agents(&self) -> Vec<Agent> {
        let domain: String = self.org_id.chars().rev().take(4).collect::<String>();
        [("Helen", "Cho"), ("Marco", "Diaz")]
            .iter()
            .enumerate()
            .map(|(k, (first, last))| Agent {
                id: format!("{}{:02}", self.org_id, k + 1),
                first,
                last,
                email: format!("{}.{}@desk{domain}.example.com", first.to_ascii_lowercase(), last.to_ascii_lowercase()),
            })
            .collect()
    }
}

pub(super) async fn list_agents(State(api): State<Api>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::AnyDesk, true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let st = api.desk.lock();
    let Some(o) = st.orgs.get(&org) else { return url_not_found_now() };
    let data: Vec<Value> = o.agents().iter().map(|a| a.to_json(&o.department_id)).collect();
    Json(json!({ "data": data })).into_response()
}

pub(super) async fn get_agent(
    State(api): State<Api>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let org = match gate(&api, &headers, q.as_deref(), Scope::AnyDesk, true).await {
        Ok(org) => org,
        Err(r) => return r,
    };
    let st = api.desk.lock();
    let Some(o) = st.orgs.get(&org) else { return url_not_found_now() };
    match o.agents().iter().find(|a| a.id == id) {
        Some(a) => Json(a.to_json(&o.department_id)).into_response(),
        None => url_not_found_now(),
    }
}
