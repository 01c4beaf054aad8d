//! Handlers: authorization. The consent page (`/oauth/v2/auth` for Zoho, `/oauth_auth.do` for
//! ServiceNow), its approval and the redirect back with a code or an error.

use super::*;

pub(super) async fn authorize_get(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = Params::parse(q.as_deref().unwrap_or("").as_bytes());
    authorize(&p, &params, &headers, false)
}

pub(super) async fn authorize_post(AxState(p): AxState<Provider>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    authorize(&p, &params, &headers, true)
}

/// The authorization endpoint: a consent page, or with `approve=yes|no` the redirect back.
pub(super) fn authorize(p: &Provider, params: &Params, headers: &HeaderMap, from_form: bool) -> Response {
    let base = p.base_url(headers);
    let mut st = p.lock();
    let flavor = st.cfg.flavor;
    let client_id = params.get("client_id").unwrap_or("");
    if !st.cfg.clients.iter().any(|c| c.client_id == client_id) {
        return error_page(
            flavor,
            "Invalid Client",
            &format!("invalid client: no client with the client_id `{client_id}` is registered."),
        );
    }
    if params.get("response_type") != Some("code") {
        return error_page(flavor, "Invalid Response Type", "response_type must be `code`.");
    }
    let Some(redirect_uri) = params.get("redirect_uri").filter(|r| url::Url::parse(r).is_ok()) else {
        return error_page(flavor, "Invalid Redirect Uri", "redirect_uri is missing or is not an absolute URL.");
    };
    let challenge = match (params.get("code_challenge"), params.get("code_challenge_method")) {
        (None, _) => None,
        (Some(c), None | Some("plain")) => Some(("plain".to_string(), c.to_string())),
        (Some(c), Some("S256")) => Some(("S256".to_string(), c.to_string())),
        (Some(_), Some(_)) => {
            return error_page(flavor, "Invalid Code Challenge Method", "code_challenge_method must be S256 or plain.");
        }
    };
    let state = params.get("state");
    match params.get("approve") {
        Some("no") => {
            let mut pairs = vec![("error", "access_denied")];
            pairs.extend(state.map(|s| ("state", s)));
            redirect_with(redirect_uri, &pairs)
        }
        Some("yes") => {
            let user = params.get("user").map(str::to_string).or_else(|| match flavor {
                Flavor::Zoho => None,
                Flavor::ServiceNow => Some(st.cfg.users.first().map_or("admin".to_string(), |(u, _)| u.clone())),
            });
            let code = st.new_code_string();
            let expires_ms = st.now_ms() + WEB_CODE_TTL_MS;
            st.codes.insert(
                code.clone(),
                Code {
                    client_id: client_id.to_string(),
                    redirect_uri: Some(redirect_uri.to_string()),
                    scopes: split_scopes(params.get("scope")),
                    user,
                    offline: params.get("access_type") == Some("offline"),
                    self_client: false,
                    challenge,
                    expires_ms,
                    used: false,
                },
            );
            let mut pairs = vec![("code", code.as_str())];
            pairs.extend(state.map(|s| ("state", s)));
            let dc = st.cfg.clients.iter().find(|c| c.client_id == client_id).and_then(|c| c.dc.clone());
            let dc = dc.unwrap_or_else(|| "us".to_string());
            if flavor == Flavor::Zoho {
                pairs.push(("location", dc.as_str()));
                pairs.push(("accounts-server", base.as_str()));
            }
            redirect_with(redirect_uri, &pairs)
        }
        _ if from_form => error_page(flavor, "Invalid Request", "approve must be `yes` or `no`."),
        _ => consent_page(flavor, params),
    }
}

pub(super) fn consent_page(flavor: Flavor, params: &Params) -> Response {
    let (product, action) = match flavor {
        Flavor::Zoho => ("Zoho Accounts", "/oauth/v2/auth/approve"),
        Flavor::ServiceNow => ("ServiceNow", "/oauth_auth.do"),
    };
    let client_id = escape_html(params.get("client_id").unwrap_or(""));
    let scopes: String =
        split_scopes(params.get("scope")).iter().map(|s| format!("<li>{}</li>", escape_html(s))).collect();
    let hidden: String = params
        .0
        .iter()
        .filter(|(k, _)| k != "approve")
        .map(|(k, v)| format!(r#"<input type="hidden" name="{}" value="{}">"#, escape_html(k), escape_html(v)))
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{product} (linkrun sandbox)</title></head><body>\
         <h1>{product} (linkrun sandbox)</h1><p>The application <code>{client_id}</code> asks for access to:</p>\
         <ul>{scopes}</ul><form method=\"post\" action=\"{action}\">{hidden}\
         <button type=\"submit\" name=\"approve\" value=\"yes\">Accept</button> \
         <button type=\"submit\" name=\"approve\" value=\"no\">Reject</button></form></body></html>"
    ))
    .into_response()
}

pub(super) fn error_page(flavor: Flavor, title: &str, detail: &str) -> Response {
    let product = match flavor {
        Flavor::Zoho => "Zoho Accounts",
        Flavor::ServiceNow => "ServiceNow",
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title} - {product} (linkrun sandbox)</title>\
         </head><body><h1>{title}</h1><p>{}</p></body></html>",
        escape_html(detail)
    );
    (StatusCode::BAD_REQUEST, Html(page)).into_response()
}

/// 302 to `redirect_uri` with `pairs` appended to its query.
pub(super) fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    url.query_pairs_mut().extend_pairs(pairs);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}
