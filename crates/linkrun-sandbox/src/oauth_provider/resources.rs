//! Handlers: the placeholder protected resources (for the OAuth tests) and the `/_sandbox`
//! controls (stats, expire, ttl, clock).

use super::*;

pub(super) async fn resource(AxState(p): AxState<Provider>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    match p.authenticate(&headers) {
        Ok(info) => placeholder_resource(p.flavor(), &info, &method, uri.path()),
        Err(refused) => refused.into_response(),
    }
}

/// What an authenticated resource request gets until the sandbox's API modules take over: an
/// echo of the method and path in the product's envelope. (The one place to swap.)
pub(super) fn placeholder_resource(flavor: Flavor, info: &TokenInfo, method: &Method, path: &str) -> Response {
    let body = match flavor {
        Flavor::Zoho => json!({
            "data": [{"id": "1", "echo_path": path, "echo_method": method.as_str()}],
            "info": {"org": info.org, "scopes": info.scopes},
        }),
        Flavor::ServiceNow => {
            let sys_id = hex(&Sha256::digest(path.as_bytes())[..16]);
            json!({"result": [{"sys_id": sys_id, "echo_path": path, "echo_method": method.as_str()}]})
        }
    };
    Json(body).into_response()
}

pub(super) async fn control_stats(AxState(p): AxState<Provider>) -> Json<Stats> {
    Json(p.stats())
}

pub(super) async fn control_expire(AxState(p): AxState<Provider>) -> Response {
    let expired = p.lock().expire_all();
    match expired {
        Ok(n) => Json(json!({ "expired": n })).into_response(),
        Err(e) => storage_failure(&e.to_string()),
    }
}

pub(super) async fn control_revoke_all(AxState(p): AxState<Provider>) -> Response {
    match p.lock().revoke_all() {
        Ok(n) => Json(json!({ "revoked": n })).into_response(),
        Err(e) => storage_failure(&e.to_string()),
    }
}

pub(super) async fn control_ttl(AxState(p): AxState<Provider>, RawQuery(q): RawQuery) -> Response {
    match secs_param(q.as_deref()) {
        Some(secs) => {
            p.set_access_ttl(secs);
            Json(json!({ "access_ttl_secs": secs })).into_response()
        }
        None => bad_secs(),
    }
}

pub(super) async fn control_advance(AxState(p): AxState<Provider>, RawQuery(q): RawQuery) -> Response {
    match secs_param(q.as_deref()) {
        Some(secs) => {
            p.advance_clock(secs);
            Json(json!({ "advanced_secs": secs })).into_response()
        }
        None => bad_secs(),
    }
}

pub(super) fn secs_param(q: Option<&str>) -> Option<u64> {
    Params::parse(q.unwrap_or("").as_bytes()).get("secs")?.parse().ok()
}

pub(super) fn bad_secs() -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": "pass ?secs=N with N a whole number of seconds"}))).into_response()
}
