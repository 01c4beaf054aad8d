//! OAuth 2.0 token endpoint requests (RFC 6749 §4.1.3 code, §4.3 password, §4.4 client
//! credentials, §6 refresh), PKCE (RFC 7636) and the authorization URL (§4.1.1), through the
//! `oauth2` crate with the run's reqwest client, plus revocation (RFC 7009 and the query form
//! Zoho and ServiceNow use).
//!
//! Real providers bend RFC 6749, so answers are read as they are sent: the HTTP adapter turns an
//! error inside an HTTP 200 body (Zoho's `{"error":"invalid_code"}`) into an error response and
//! labels JSON as JSON; [`ProviderToken`] takes `expires_in` as a number or a string, Zoho's
//! legacy `expires_in_sec` (then `expires_in` is in milliseconds), no `expires_in` at all (an hour
//! is assumed and a 401 corrects it), no refresh token, and `api_domain`.
//!
//! Every token and revocation request is checked as it is sent: it must go over HTTPS, or plain
//! HTTP to loopback (a `plain_http` error otherwise, before anything is sent); the client's Basic
//! `Authorization` header is marked sensitive.

use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    ResourceOwnerPassword, ResourceOwnerUsername, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize};

use crate::http::send::{NoCredentials, SendOptions, send};
use crate::http::{Body, Clients, ErrorKind, Outgoing};
pub use crate::service::RevokeStyle;
use crate::service::{ClientAuth, ScopeDelimiter};

/// Lifetime assumed when a provider does not say (RFC 6749 leaves it to documentation).
pub const ASSUMED_LIFETIME: u64 = 3600;

/// The longest access-token lifetime believed (ten years, in seconds): a larger `expires_in`
/// (up to 2^64 - 1) would overflow the expiry time, which then looks past and forces a refresh
/// before every call.
pub const MAX_LIFETIME: u64 = 10 * 365 * 24 * 3600;

/// A token response as providers really send it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProviderToken {
    access_token: AccessToken,
    #[serde(default = "bearer", deserialize_with = "lenient_token_type")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in: Option<u64>,
    #[serde(default, deserialize_with = "number_or_string")]
    expires_in_sec: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(skip)]
    scopes: Option<Vec<Scope>>,
    /// Zoho: the API domain of the user's data center.
    #[serde(default)]
    pub api_domain: Option<String>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

fn lenient_token_type<'de, D: Deserializer<'de>>(d: D) -> Result<BasicTokenType, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_else(|| "bearer".into());
    Ok(if s.eq_ignore_ascii_case("bearer") { BasicTokenType::Bearer } else { BasicTokenType::Extension(s) })
}

fn number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

impl TokenResponse for ProviderToken {
    type TokenType = BasicTokenType;
    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.lifetime().map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

impl ProviderToken {
    /// The access token's lifetime in seconds, if the provider said, at most [`MAX_LIFETIME`].
    pub fn lifetime(&self) -> Option<u64> {
        self.expires_in_sec.or(self.expires_in).map(|s| s.min(MAX_LIFETIME))
    }

    /// Granted scopes, split on spaces or commas.
    pub fn granted_scopes(&self) -> Option<Vec<String>> {
        self.scope.as_ref().map(|s| s.split([' ', ',']).filter(|x| !x.is_empty()).map(str::to_string).collect())
    }

    /// The access token.
    pub fn access(&self) -> SecretString {
        SecretString::from(self.access_token.secret().clone())
    }

    /// The refresh token, when the answer has one.
    pub fn refresh(&self) -> Option<SecretString> {
        self.refresh_token.as_ref().map(|r| SecretString::from(r.secret().clone()))
    }
}

/// A refusal from the token endpoint (or a failure to reach it). Its own message is the bare
/// fact; [`GrantError::sentence`] words it for a connection, with the fix.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the token endpoint answered `{code}`{}",
    .description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
)]
pub struct GrantError {
    /// The provider's `error` code (`invalid_grant`, Zoho's `invalid_code`...), or `network`,
    /// `timeout`, `parse` when no answer could be read.
    pub code: String,
    /// `error_description`, if any (never a secret).
    pub description: Option<String>,
    /// HTTP status of the answer, if there was one.
    pub status: Option<u16>,
}

impl GrantError {
    /// Whether the grant itself is dead (the user must authorise again).
    pub fn is_dead_grant(&self) -> bool {
        matches!(self.code.as_str(), "invalid_grant" | "invalid_code" | "invalid_token" | "unauthorized_client")
            || (self.code == "server_error" && self.description.as_deref() == Some("access_denied"))
    }

    /// Whether the failure is the provider's or the network's passing trouble (a 5xx or 429
    /// answer, a timeout, no connection, Zoho's throttling), not a verdict on the grant: a
    /// refresh that fails this way leaves the connection connected.
    pub fn is_transient(&self) -> bool {
        matches!(self.code.as_str(), "network" | "timeout" | "temporarily_unavailable" | "access_denied")
            || self.is_throttled()
            || (self.code == "server_error" && self.description.as_deref() != Some("access_denied"))
    }

    /// Whether it is Zoho Accounts' throttle: an HTTP 200 answer with `"error":"Access Denied"`
    /// (too many token requests in a short time; Zoho allows 10 access tokens per refresh token
    /// in 10 minutes).
    pub fn is_throttled(&self) -> bool {
        self.code == "Access Denied"
    }

    /// The sentence for a transient failure of a token refresh.
    pub fn transient_sentence(&self, link: &str, service: &str) -> String {
        let what = match self.code.as_str() {
            "network" | "timeout" => format!(
                "the token endpoint of service `{service}` could not be reached ({})",
                self.description.as_deref().unwrap_or(self.code.as_str())
            ),
            "access_denied" => "the provider throttled the token request (access_denied)".to_string(),
            _ if self.is_throttled() => {
                return format!(
                    "the provider throttled the token requests of connection `{link}` ({}{}): too many new tokens were asked for in a short time (Zoho allows 10 per refresh token in 10 minutes); the connection stays connected: wait a few minutes, then run it again",
                    self.code,
                    self.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
                );
            }
            other => format!(
                "the provider failed to refresh the token ({other}{})",
                self.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ),
        };
        format!(
            "{what} while refreshing connection `{link}`: this is the provider's or the network's error, not a problem of the connection, which stays connected; run it again later"
        )
    }

    /// One sentence that says what to do; `command` is the command that mends it.
    pub fn sentence(&self, link: &str, service: &str, command: &str) -> String {
        let desc = self.description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        match self.code.as_str() {
            "invalid_code" => format!(
                "the grant code expired or was already used (Zoho codes live 2-3 minutes): generate a new one and run `linkrun connection authorize {link} --code ...`"
            ),
            "invalid_grant" => format!(
                "the provider refused the grant of connection `{link}` (invalid_grant{}): it expired, was revoked or was already used; run `{command}`",
                self.description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
            ),
            "invalid_client" | "invalid_client_secret" | "unauthorized_client" => format!(
                "the provider does not accept the client of connection `{link}` ({}{desc}): check its client_id and client_secret against the app registered with the provider, then run `{command}`",
                self.code
            ),
            "invalid_scope" => format!(
                "the provider refused the scopes of connection `{link}` (invalid_scope{desc}): check --scope or the service's scopes"
            ),
            "missing_org_info" => format!(
                "Zoho needs the organisation for a client-credentials token (missing_org_info): add the `soid` param to connection `{link}`"
            ),
            "server_error" if self.description.as_deref() == Some("access_denied") => format!(
                "{service} refused the credentials of connection `{link}` (access_denied): check the client and user credentials, then run `{command}`"
            ),
            "access_denied" | "Access Denied" => format!(
                "the provider denied the request for connection `{link}` (access_denied{desc}): too many token requests are throttled for a while; wait, then run `{command}`"
            ),
            "plain_http" => format!(
                "refusing to send the client secret and tokens of connection `{link}` over plain HTTP{}: make the `token_url` and `revoke_url` of service `{service}` (or the environment variables they use) https:// URLs (plain HTTP is allowed only to 127.0.0.1, ::1 and localhost), then run `{command}`",
                self.description.as_deref().unwrap_or_default()
            ),
            "network" | "timeout" | "parse" => format!(
                "the token endpoint of service `{service}` could not be used{desc}: check the service's `token_url` and the network, then run `{command}`"
            ),
            other => format!(
                "the provider refused the token request of connection `{link}` ({other}{desc}): run `{command}`"
            ),
        }
    }
}

/// Everything needed to talk to one provider for one connection.
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorize_url: Option<String>,
    /// Token endpoint.
    pub token_url: String,
    /// Client ID.
    pub client_id: String,
    /// Client secret (confidential clients).
    pub client_secret: Option<SecretString>,
    /// Client authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// How scopes are joined.
    pub scope_delimiter: ScopeDelimiter,
}

fn join_scopes(scopes: &[String], d: ScopeDelimiter) -> String {
    scopes.join(match d {
        ScopeDelimiter::Comma => ",",
        ScopeDelimiter::Space => " ",
        ScopeDelimiter::Plus => "+",
    })
}

type OClient<HasAuth> = oauth2::Client<
    BasicErrorResponse,
    ProviderToken,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    HasAuth,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn grant_error(code: &str, description: Option<String>) -> GrantError {
    GrantError { code: code.to_string(), description, status: None }
}

impl Endpoints {
    fn client(&self) -> Result<OClient<EndpointNotSet>, GrantError> {
        let token =
            TokenUrl::new(self.token_url.clone()).map_err(|_| grant_error("parse", Some("bad token_url".into())))?;
        let mut c = oauth2::Client::new(ClientId::new(self.client_id.clone())).set_token_uri(token).set_auth_type(
            match self.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                // The adapter turns the form into JSON.
                ClientAuth::Form | ClientAuth::Json => AuthType::RequestBody,
            },
        );
        if let Some(s) = &self.client_secret {
            c = c.set_client_secret(ClientSecret::new(s.expose_secret().to_string()));
        }
        Ok(c)
    }

    /// The authorization URL with PKCE (when asked) and a random `state`; returns the URL, the
    /// state and the PKCE verifier.
    pub fn authorization_url(
        &self,
        redirect_uri: &str,
        scopes: &[String],
        extra: &[(String, String)],
        pkce: bool,
    ) -> Result<(String, String, Option<PkceCodeVerifier>), GrantError> {
        let auth = AuthUrl::new(self.authorize_url.clone().unwrap_or_default())
            .map_err(|_| grant_error("parse", Some("bad authorize_url".into())))?;
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|_| grant_error("parse", Some("bad redirect URI".into())))?;
        let client = self.client()?.set_auth_uri(auth).set_redirect_uri(redirect);
        let mut req = client.authorize_url(CsrfToken::new_random);
        if !scopes.is_empty() {
            req = req.add_extra_param("scope", join_scopes(scopes, self.scope_delimiter));
        }
        for (k, v) in extra {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        let verifier = if pkce {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            req = req.set_pkce_challenge(challenge);
            Some(verifier)
        } else {
            None
        };
        let (url, state) = req.url();
        Ok((url.to_string(), state.secret().clone(), verifier))
    }

    /// RFC 6749 §4.1.3 (with RFC 7636's verifier). `redirect_uri` is left out for Zoho's
    /// self-client codes, which have none.
    pub async fn exchange_code(
        &self,
        clients: &Clients,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<PkceCodeVerifier>,
    ) -> Result<ProviderToken, GrantError> {
        let mut client = self.client()?;
        if let Some(r) = redirect_uri {
            client = client.set_redirect_uri(
                RedirectUrl::new(r.to_string()).map_err(|_| grant_error("parse", Some("bad redirect URI".into())))?,
            );
        }
        let mut req = client.exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(v) = verifier {
            req = req.set_pkce_verifier(v);
        }
        finish(req.request_async(&self.adapter(clients)).await)
    }

    /// RFC 6749 §6.
    pub async fn refresh(&self, clients: &Clients, refresh: &SecretString) -> Result<ProviderToken, GrantError> {
        let client = self.client()?;
        let token = RefreshToken::new(refresh.expose_secret().to_string());
        finish(client.exchange_refresh_token(&token).request_async(&self.adapter(clients)).await)
    }

    /// RFC 6749 §4.3.
    pub async fn password(
        &self,
        clients: &Clients,
        username: &SecretString,
        password: &SecretString,
        scopes: &[String],
    ) -> Result<ProviderToken, GrantError> {
        let client = self.client()?;
        let user = ResourceOwnerUsername::new(username.expose_secret().to_string());
        let pass = ResourceOwnerPassword::new(password.expose_secret().to_string());
        let mut req = client.exchange_password(&user, &pass);
        if !scopes.is_empty() {
            req = req.add_extra_param("scope", join_scopes(scopes, self.scope_delimiter));
        }
        finish(req.request_async(&self.adapter(clients)).await)
    }

    /// RFC 6749 §4.4.
    pub async fn client_credentials(
        &self,
        clients: &Clients,
        scopes: &[String],
        extra: &[(String, String)],
    ) -> Result<ProviderToken, GrantError> {
        let client = self.client()?;
        let mut req = client.exchange_client_credentials();
        if !scopes.is_empty() {
            req = req.add_extra_param("scope", join_scopes(scopes, self.scope_delimiter));
        }
        for (k, v) in extra {
            req = req.add_extra_param(k.clone(), v.clone());
        }
        finish(req.request_async(&self.adapter(clients)).await)
    }

    /// The HTTP client of this provider's token requests: [`adapter`], sending JSON bodies for
    /// `client_auth = "json"`.
    fn adapter(&self, clients: &Clients) -> impl Fn(HttpRequest) -> AdapterFuture + use<> {
        adapter(clients, self.client_auth == ClientAuth::Json)
    }
}

/// A form body as a JSON object of strings (`client_auth = "json"`).
fn form_as_json(form: &[u8]) -> Vec<u8> {
    let map: serde_json::Map<String, serde_json::Value> =
        url::form_urlencoded::parse(form).map(|(k, v)| (k.into_owned(), v.into_owned().into())).collect();
    serde_json::Value::Object(map).to_string().into_bytes()
}

fn finish(
    r: Result<ProviderToken, RequestTokenError<AdapterError, BasicErrorResponse>>,
) -> Result<ProviderToken, GrantError> {
    r.map_err(|e| match e {
        RequestTokenError::ServerResponse(er) => GrantError {
            code: er.error().as_ref().to_string(),
            description: er.error_description().cloned(),
            status: None,
        },
        RequestTokenError::Request(AdapterError(m, code)) => grant_error(code, Some(m)),
        RequestTokenError::Parse(_, _) => grant_error("parse", Some("the answer is not a token response".into())),
        RequestTokenError::Other(m) => grant_error("parse", Some(m)),
    })
}

/// An HTTP failure inside the adapter: message (without URL), and its [`GrantError`] code
/// (`network`, `timeout` or `plain_http`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(String, &'static str);

/// The `oauth2` crate's async HTTP client on the one send path ([`crate::http::send`]: host
/// rules, timeout, size cap; no redirects followed with a client secret), reading answers the
/// way providers send them (see the module doc).
type AdapterFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, AdapterError>>>>;

/// Sends a request of a flow (token, revocation) and maps a failure to an [`AdapterError`].
async fn send_flow(clients: &Clients, out: Outgoing) -> Result<crate::http::Response, AdapterError> {
    let host = out.url.host_str().unwrap_or_default().to_string();
    send(clients, out, &SendOptions::flow(), &NoCredentials).await.map_err(|e| match e.kind {
        ErrorKind::HostRefused => AdapterError(format!(" to `{host}`"), "plain_http"),
        ErrorKind::Timeout => AdapterError(e.message, "timeout"),
        _ => AdapterError(e.message, "network"),
    })
}

fn adapter(clients: &Clients, json_body: bool) -> impl Fn(HttpRequest) -> AdapterFuture + use<> {
    let clients = clients.clone();
    move |req: HttpRequest| {
        let clients = clients.clone();
        Box::pin(async move {
            let url = url::Url::parse(&req.uri().to_string())
                .map_err(|_| AdapterError("the token endpoint is not a URL".into(), "network"))?;
            let mut out = Outgoing::new(req.method().clone(), url);
            for (name, value) in req.headers() {
                out.set_header(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
            }
            let content_type = out
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| "application/x-www-form-urlencoded".into());
            if !req.body().is_empty() {
                out.body = match json_body && content_type.starts_with("application/x-www-form-urlencoded") {
                    true => {
                        out.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
                        Body::Raw { bytes: form_as_json(req.body()), content_type: "application/json".into() }
                    }
                    false => Body::Raw { bytes: req.into_body(), content_type },
                };
            }
            let resp = send_flow(&clients, out).await?;
            let mut status = reqwest::StatusCode::from_u16(resp.status).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
            let body = resp.body;
            let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            if let Some(obj) = json.as_ref().and_then(|j| j.as_object()) {
                // Zoho answers errors with HTTP 200: make them error responses.
                if status.is_success() && obj.contains_key("error") && !obj.contains_key("access_token") {
                    status = reqwest::StatusCode::BAD_REQUEST;
                }
            }
            let overloaded = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
            let (body, is_json) = if overloaded && json.as_ref().and_then(|j| j.get("error")).is_none() {
                // A 5xx or 429 without an OAuth error document (an HTML error page, an empty
                // body): RFC 6749 has no code for it at the token endpoint; use §4.1.2.1's.
                let doc = serde_json::json!({
                    "error": "temporarily_unavailable",
                    "error_description": format!("HTTP {}", status.as_u16()),
                });
                (doc.to_string().into_bytes(), true)
            } else {
                (body, json.is_some())
            };
            let mut builder = http_response_builder(status.as_u16());
            if is_json {
                builder = builder.header("content-type", "application/json");
            }
            builder.body(body).map_err(|e| AdapterError(e.to_string(), "network"))
        })
    }
}

fn http_response_builder(status: u16) -> oauth2::http::response::Builder {
    oauth2::http::Response::builder().status(status)
}

/// Revokes `token` (a refresh token, else an access token). Returns the HTTP status.
pub async fn revoke(
    clients: &Clients,
    ep: &Endpoints,
    revoke_url: &str,
    style: RevokeStyle,
    token: &SecretString,
    hint: &str,
) -> Result<u16, GrantError> {
    let mut url = url::Url::parse(revoke_url).map_err(|_| grant_error("parse", Some("bad revoke_url".into())))?;
    let mut form: Vec<(String, String)> = Vec::new();
    match style {
        RevokeStyle::Query => {
            url.query_pairs_mut().append_pair("token", token.expose_secret());
        }
        RevokeStyle::Rfc7009 => {
            form.push(("token".into(), token.expose_secret().to_string()));
            form.push(("token_type_hint".into(), hint.into()));
        }
    }
    let mut out = Outgoing::new(reqwest::Method::POST, url);
    match (ep.client_auth, &ep.client_secret) {
        (ClientAuth::Basic, Some(s)) => {
            // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
            use base64::Engine as _;
            let enc = |t: &str| url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
            let pair = zeroize::Zeroizing::new(format!("{}:{}", enc(&ep.client_id), enc(s.expose_secret())));
            let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
            out.set_sensitive_header("Authorization", &value);
        }
        (_, secret) if style == RevokeStyle::Rfc7009 => {
            form.push(("client_id".into(), ep.client_id.clone()));
            if let Some(s) = secret {
                form.push(("client_secret".into(), s.expose_secret().to_string()));
            }
        }
        _ => {}
    }
    if !form.is_empty() {
        out.body = match ep.client_auth {
            ClientAuth::Json => {
                let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
                Body::Raw { bytes: form_as_json(body.as_bytes()), content_type: "application/json".into() }
            }
            _ => Body::Form(form),
        };
    }
    let resp = send_flow(clients, out).await.map_err(|AdapterError(m, code)| grant_error(code, Some(m)))?;
    Ok(resp.status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoho_access_denied_is_a_passing_throttle_not_a_dead_grant() {
        let e = GrantError {
            code: "Access Denied".into(),
            description: Some("You have made too many requests continuously. Please try again after some time.".into()),
            status: None,
        };
        assert!(e.is_throttled() && e.is_transient() && !e.is_dead_grant());
        let m = e.transient_sentence("crm", "zoho_crm");
        assert!(m.contains("connection `crm`") && m.contains("stays connected") && m.contains("wait"), "{m}");
    }

    #[test]
    fn token_and_revoke_requests_over_plain_http_to_a_remote_host_are_refused_before_sending() {
        let ep = Endpoints {
            authorize_url: None,
            token_url: "http://token.example.invalid/token".into(),
            client_id: "id".into(),
            client_secret: Some("client-secret".to_string().into()),
            client_auth: ClientAuth::Basic,
            scope_delimiter: ScopeDelimiter::Space,
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let http = Clients::default();
        let e = rt.block_on(ep.client_credentials(&http, &[], &[])).unwrap_err();
        assert_eq!(e.code, "plain_http");
        let e = rt.block_on(ep.refresh(&http, &"r".to_string().into())).unwrap_err();
        assert_eq!(e.code, "plain_http");
        let token: SecretString = "t".to_string().into();
        let revoke_url = "http://revoke.example.invalid/revoke";
        let e = rt.block_on(revoke(&http, &ep, revoke_url, RevokeStyle::Rfc7009, &token, "refresh_token")).unwrap_err();
        assert_eq!(e.code, "plain_http");
        assert!(e.sentence("c", "svc", "linkrun connection authorize c").contains("`revoke.example.invalid`"));
    }

    #[test]
    fn token_answers_are_read_as_providers_send_them() {
        let t: ProviderToken = serde_json::from_str(
            r#"{"access_token":"a","token_type":"Bearer","expires_in":"3600","api_domain":"https://www.zohoapis.com"}"#,
        )
        .unwrap();
        assert_eq!(t.lifetime(), Some(3600));
        assert_eq!(t.api_domain.as_deref(), Some("https://www.zohoapis.com"));
        assert!(t.refresh().is_none());
        let t: ProviderToken =
            serde_json::from_str(r#"{"access_token":"a","expires_in":3600000,"expires_in_sec":3600}"#).unwrap();
        assert_eq!(t.lifetime(), Some(3600));
        let t: ProviderToken = serde_json::from_str(r#"{"access_token":"a","token_type":"bearer"}"#).unwrap();
        assert_eq!(t.lifetime(), None);
        let t: ProviderToken =
            serde_json::from_str(r#"{"access_token":"a","scope":"useraccount","expires_in":1799,"refresh_token":"r"}"#)
                .unwrap();
        assert_eq!(t.granted_scopes(), Some(vec!["useraccount".to_string()]));
        assert_eq!(t.refresh().map(|r| r.expose_secret().to_string()), Some("r".into()));
    }

    #[test]
    fn a_huge_lifetime_is_clamped_to_ten_years() {
        for answer in [
            r#"{"access_token":"a","expires_in":9223372036854775807}"#,
            r#"{"access_token":"a","expires_in":18446744073709551615}"#,
            r#"{"access_token":"a","expires_in":"9223372036854775807"}"#,
            r#"{"access_token":"a","expires_in":1e300}"#,
            r#"{"access_token":"a","expires_in":1,"expires_in_sec":9223372036854775807}"#,
        ] {
            let t: ProviderToken = serde_json::from_str(answer).unwrap();
            assert_eq!(t.lifetime(), Some(MAX_LIFETIME), "{answer}");
            assert_eq!(t.expires_in(), Some(Duration::from_secs(MAX_LIFETIME)), "{answer}");
            // The expiry the vault keeps (`now + lifetime`, in i64 seconds) stays in the future.
            let now = 1_800_000_000i64;
            assert!(now + t.lifetime().unwrap() as i64 > now, "{answer}");
        }
        let t: ProviderToken = serde_json::from_str(r#"{"access_token":"a","expires_in":3600}"#).unwrap();
        assert_eq!(t.lifetime(), Some(3600));
    }
}
