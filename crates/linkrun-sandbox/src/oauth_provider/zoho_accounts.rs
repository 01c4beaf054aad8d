//! The Zoho Accounts flavour: the token endpoint (parameters in the query string or a form body,
//! errors as HTTP 200, the throttle's `"error":"Access Denied"` included; answers carry the
//! `api_domain` of the client's data center), the two revocation endpoints and the self-client
//! code of the API console.

use super::*;

/// Zoho's token endpoint: parameters from the form body or the query string; errors are HTTP 200.
pub(super) async fn zoho_token(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = zoho_params(q.as_deref(), &headers, &body);
    let base = p.base_url(&headers);
    let mut st = p.lock();
    let body = match st.token(&params) {
        Ok(issued) => st.token_body(issued, &base),
        Err(TokenError::Storage(msg)) => return storage_failure(&msg),
        Err(e) => e.zoho_body(),
    };
    Json(body).into_response()
}

/// `POST /oauth/v2/token/revoke?token=T`.
pub(super) async fn zoho_revoke(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = zoho_params(q.as_deref(), &headers, &body);
    match params.get("token").map_or(Ok(false), |t| p.lock().revoke(t, None)) {
        Ok(revoked) => zoho_revoke_answer(revoked),
        Err(e) => storage_failure(&e.to_string()),
    }
}

/// `POST /oauth/v2/revoke/token?token=T[&token_type=...]` with Basic client authentication.
pub(super) async fn zoho_revoke_basic(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = zoho_params(q.as_deref(), &headers, &body);
    let mut st = p.lock();
    let client = basic_credentials(&headers)
        .filter(|(id, secret)| st.cfg.clients.iter().any(|c| &c.client_id == id && &c.client_secret == secret));
    let Some((client_id, _)) = client else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "status": "failure"})))
            .into_response();
    };
    match params.get("token").map_or(Ok(false), |t| st.revoke(t, Some(&client_id))) {
        Ok(revoked) => zoho_revoke_answer(revoked),
        Err(e) => storage_failure(&e.to_string()),
    }
}

pub(super) fn zoho_revoke_answer(revoked: bool) -> Response {
    if revoked {
        Json(json!({"status": "success"})).into_response()
    } else {
        (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_token", "status": "failure"}))).into_response()
    }
}

/// `POST /oauth/v2/self-client/code` (`client_id`, `scope`): the sandbox's stand-in for the API
/// console's "Generate Code".
pub(super) async fn self_client_code(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = zoho_params(q.as_deref(), &headers, &body);
    let client_id = params.get("client_id").unwrap_or("");
    if !p.lock().cfg.clients.iter().any(|c| c.client_id == client_id) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let scopes = split_scopes(params.get("scope"));
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    Json(json!({ "code": p.mint_self_client_code(client_id, &scopes) })).into_response()
}
