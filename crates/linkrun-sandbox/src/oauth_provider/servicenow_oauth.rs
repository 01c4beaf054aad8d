//! The ServiceNow OAuth flavour: `oauth_token.do` (form bodies only, every error one 401 body)
//! and `oauth_revoke_token.do` (always 200).

use super::*;

/// ServiceNow's token endpoint: form body only; every error is one 401 body.
pub(super) async fn servicenow_token(AxState(p): AxState<Provider>, headers: HeaderMap, body: Bytes) -> Response {
    let params = if is_form(&headers, false) { Params::parse(&body) } else { Params::default() };
    let base = p.base_url(&headers);
    let mut st = p.lock();
    match st.token(&params) {
        Ok(issued) => Json(st.token_body(issued, &base)).into_response(),
        Err(TokenError::Storage(msg)) => storage_failure(&msg),
        Err(_) => {
            (StatusCode::UNAUTHORIZED, Json(json!({"error_description": "access_denied", "error": "server_error"})))
                .into_response()
        }
    }
}

/// `GET|POST /oauth_revoke_token.do?token=T` (or `token` in a form body): always 200, empty body.
pub(super) async fn servicenow_revoke(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = Params::parse(q.as_deref().unwrap_or("").as_bytes());
    if is_form(&headers, false) {
        params.0.extend(Params::parse(&body).0);
    }
    match params.get("token").map_or(Ok(false), |t| p.lock().revoke(t, None)) {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => storage_failure(&e.to_string()),
    }
}
