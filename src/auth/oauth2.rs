//! OAuth 2.0 credentials of a connection: the access token on each request (header with the
//! service's prefix, or `access_token` in the query), and refreshing it safely.
//!
//! Refresh is single-flight per connection, in a process and across processes (DESIGN.md
//! "Threads and async"): an async mutex serialises the tasks of one run; then a short write
//! transaction claims a lease in the vault, the HTTP refresh runs with no transaction open, and a
//! second short transaction stores the new tokens and bumps a generation counter. Whoever finds a
//! newer generation (or a live lease) re-reads the tokens instead of refreshing, so rotating
//! refresh tokens survive any number of concurrent requests and `linkrun run` processes.
//!
//! A token is refreshed before it expires (within the service's `refresh_margin`, never more than
//! half its lifetime), and once after a 401 or a provider's own expired-token answer. A refresh
//! refused for good (`invalid_grant`) marks the connection `needs_reauth`; nothing else of it is
//! lost. Without a refresh token, a client-credentials or password connection runs its grant again.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};

use super::rfc6749::{ASSUMED_LIFETIME, Endpoints, GrantError, ProviderToken};
use crate::connection::Status;
use crate::http::{InvokeError, Outgoing};
use crate::link_name::LinkName;
use crate::service::{ClientAuth, GrantType, Placement, ScopeDelimiter, Service};
use crate::vault::Field;
use crate::vault::{TokenMeta, Vault};

/// Default `refresh_margin`: refresh this many seconds before expiry (capped at half the lifetime).
pub const DEFAULT_MARGIN: u64 = 300;
/// How long a refresh lease lasts; a crashed refresher blocks others at most this long.
pub const LEASE_SECS: i64 = 30;

/// The token state held in memory for a run.
#[derive(Debug)]
struct Tokens {
    access: SecretString,
    refresh: Option<SecretString>,
    meta: TokenMeta,
    dead: Option<String>,
}

/// An OAuth 2.0 connection in use.
pub struct OAuth2 {
    /// Link name.
    pub link: LinkName,
    /// Service link name (for messages).
    pub service: String,
    /// Token endpoint and client.
    pub endpoints: Endpoints,
    /// `Authorization` prefix.
    pub header_prefix: String,
    /// `header` or `query`.
    pub placement: Placement,
    /// Refresh margin in seconds.
    pub margin: u64,
    /// Requested scopes (for grants run again).
    pub scopes: Vec<String>,
    /// Password grant credentials, if any.
    pub user: Option<(SecretString, SecretString)>,
    /// Extra token-request params (Zoho's `soid`).
    pub token_params: Vec<(String, String)>,
    tokens: RefCell<Tokens>,
    lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2").field("link", &self.link).field("placement", &self.placement).finish_non_exhaustive()
    }
}

fn now() -> i64 {
    crate::clock::unix_now()
}

/// The endpoints and client of a connection, from its service, data center and params.
pub fn endpoints_for(
    service: &Service,
    endpoint: &crate::service::Endpoint,
    rec: &crate::connection::ConnectionRecord,
    fields: &HashMap<Field, SecretString>,
) -> Result<Endpoints, super::flow_error::FlowError> {
    let def = service.def.oauth2.as_ref().ok_or_else(|| super::flow_error::FlowError::NoTable {
        service: service.link_name().to_string(),
        table: "oauth2",
    })?;
    let resolve = |t: &str| super::oauth1_flow::resolve_url(t, endpoint, rec);
    Ok(Endpoints {
        authorize_url: def.authorize_url.as_ref().map(|u| resolve(u.get_ref())),
        token_url: resolve(def.token_url.get_ref()),
        client_id: fields.get(&Field::param("client_id")).map(|s| s.expose_secret().to_string()).unwrap_or_default(),
        client_secret: fields.get(&Field::param("client_secret")).cloned(),
        client_auth: def.client_auth.unwrap_or(ClientAuth::Form),
        scope_delimiter: def.scope_delimiter.unwrap_or(ScopeDelimiter::Space),
    })
}

/// Token metadata for a fresh token answer.
pub fn meta_from(tok: &ProviderToken, grant: GrantType, previous: Option<&TokenMeta>) -> TokenMeta {
    let lifetime = tok.lifetime().unwrap_or(ASSUMED_LIFETIME) as i64;
    TokenMeta {
        generation: 0,
        obtained_at: now(),
        expires_at: Some(now() + lifetime),
        last_refresh: None,
        // Empty when no answer said: `connection show` then gives the requested scopes as such.
        granted_scopes: tok
            .granted_scopes()
            .filter(|s| !s.is_empty())
            .or_else(|| previous.map(|p| p.granted_scopes.clone()))
            .unwrap_or_default(),
        api_domain: tok.api_domain.clone().or_else(|| previous.and_then(|p| p.api_domain.clone())),
        grant_type: Some(grant),
    }
}

impl OAuth2 {
    /// Builds the credentials from the opened fields and token metadata of a connection.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        link: &LinkName,
        service: &Service,
        endpoints: Endpoints,
        scopes: Vec<String>,
        fields: &mut HashMap<Field, SecretString>,
        meta: TokenMeta,
    ) -> Result<OAuth2, super::flow_error::FlowError> {
        let def = service.def.oauth2.as_ref().ok_or_else(|| super::flow_error::FlowError::NoTable {
            service: service.link_name().to_string(),
            table: "oauth2",
        })?;
        let access = fields
            .remove(&Field::AccessToken)
            .ok_or_else(|| super::flow_error::FlowError::NoAccessToken { link: link.to_string() })?;
        let user = match (fields.remove(&Field::param("username")), fields.remove(&Field::param("password"))) {
            (Some(u), Some(p)) => Some((u, p)),
            _ => None,
        };
        let token_params = fields
            .get(&Field::param("soid"))
            .map(|s| vec![("soid".to_string(), s.expose_secret().to_string())])
            .unwrap_or_default();
        Ok(OAuth2 {
            link: link.clone(),
            service: service.link_name().to_string(),
            endpoints,
            header_prefix: def.header_prefix.clone().unwrap_or_else(|| "Bearer".to_string()),
            placement: service.placement(),
            margin: def.refresh_margin.unwrap_or(DEFAULT_MARGIN),
            scopes,
            user,
            token_params,
            tokens: RefCell::new(Tokens { access, refresh: fields.remove(&Field::RefreshToken), meta, dead: None }),
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Sets the access token on the request.
    pub fn apply(&self, req: &mut Outgoing) {
        let t = self.tokens.borrow();
        match self.placement {
            Placement::Query => req.set_query("access_token", t.access.expose_secret()),
            _ => req
                .set_sensitive_header("Authorization", &format!("{} {}", self.header_prefix, t.access.expose_secret())),
        }
    }

    /// The generation of the tokens in use (to tell whether someone refreshed meanwhile).
    pub fn generation(&self) -> i64 {
        self.tokens.borrow().meta.generation
    }

    /// The API domain from the last token answer, if any.
    pub fn api_domain(&self) -> Option<String> {
        self.tokens.borrow().meta.api_domain.clone()
    }

    /// Whether the token is within the refresh margin of its expiry.
    pub fn needs_refresh(&self) -> bool {
        let t = self.tokens.borrow();
        let Some(expires) = t.meta.expires_at else { return false };
        let lifetime = (expires - t.meta.obtained_at).max(0) as u64;
        let margin = self.margin.min(lifetime / 2) as i64;
        now() + margin >= expires
    }

    fn reload(&self, vault: &RefCell<Vault>) -> Result<(), InvokeError> {
        let v = vault.borrow();
        let meta = v.token_meta(&self.link).map_err(|e| self.err(e.to_string()))?.unwrap_or_default();
        let mut fields: HashMap<Field, SecretString> =
            v.read_fields(&self.link).map_err(|e| self.err(e.to_string()))?.into_iter().collect();
        let mut t = self.tokens.borrow_mut();
        if let Some(a) = fields.remove(&Field::AccessToken) {
            t.access = a;
        }
        if let Some(r) = fields.remove(&Field::RefreshToken) {
            t.refresh = Some(r);
        }
        t.meta = meta;
        Ok(())
    }

    fn err(&self, message: String) -> InvokeError {
        InvokeError::connection(message, &self.link)
    }

    fn status_error(&self, s: Status) -> InvokeError {
        match crate::connection::ConnectionError::for_status(&self.link, s) {
            Some(e) => e.into(),
            None => self.err(format!("connection `{}` is connected", self.link)),
        }
    }

    /// Makes sure the access token is usable: refreshes it when it is near expiry, or, with
    /// `after` (the generation a request was sent with), when that request was refused as
    /// expired and nobody has refreshed since.
    pub async fn ensure_fresh(
        &self,
        vault: &RefCell<Vault>,
        http: &crate::http::Clients,
        after: Option<i64>,
    ) -> Result<(), InvokeError> {
        if after.is_none() && !self.needs_refresh() {
            return Ok(());
        }
        let _single_flight = self.lock.lock().await;
        if let Some(m) = &self.tokens.borrow().dead {
            return Err(self.err(m.clone()));
        }
        let done = |s: &Self| match after {
            Some(g) => s.generation() != g,
            None => !s.needs_refresh(),
        };
        if done(self) {
            return Ok(());
        }
        let owner = crate::vault::lease::this_process();
        let started = Instant::now();
        loop {
            let (meta, status) = {
                let v = vault.borrow();
                (
                    v.token_meta(&self.link).map_err(|e| self.err(e.to_string()))?,
                    v.status_of(&self.link).map_err(|e| self.err(e.to_string()))?,
                )
            };
            match status {
                Some(Status::Connected) => {}
                Some(s) => return Err(self.status_error(s)),
                None => return Err(self.err(format!("connection `{}` was deleted", self.link))),
            }
            if meta.as_ref().is_some_and(|m| m.generation > self.generation()) {
                self.reload(vault)?;
                if done(self) {
                    return Ok(());
                }
            }
            if vault
                .borrow_mut()
                .claim_refresh_lease(&self.link, self.generation(), LEASE_SECS, &owner)
                .map_err(|e| self.err(e.to_string()))?
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(LEASE_SECS as u64 + 15) {
                return Err(self.err(format!(
                    "another process has been refreshing the token of connection `{}` for too long: try again",
                    self.link
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The lease is ours: refresh with no transaction open. Whatever ends this refresh early
        // (an error, the future dropped by a timeout) releases the lease, so nobody waits for it.
        let mut lease = LeaseGuard { vault, link: &self.link, held: true };
        let (refresh, grant, previous) = {
            let t = self.tokens.borrow();
            (t.refresh.clone(), t.meta.grant_type, t.meta.clone())
        };
        let result = match (&refresh, grant) {
            (Some(r), _) => self.endpoints.refresh(http, r).await,
            (None, Some(GrantType::ClientCredentials)) => {
                self.endpoints.client_credentials(http, &self.scopes, &self.token_params).await
            }
            (None, Some(GrantType::Password)) => match &self.user {
                Some((u, p)) => self.endpoints.password(http, u, p, &self.scopes).await,
                None => Err(GrantError { code: "invalid_grant".into(), description: None, status: None }),
            },
            (None, _) => Err(GrantError {
                code: "invalid_grant".into(),
                description: Some("the provider gave no refresh token".into()),
                status: None,
            }),
        };
        match result {
            Ok(tok) => {
                crate::telemetry::token_refresh(&self.link);
                let meta = meta_from(&tok, grant.unwrap_or(GrantType::AuthorizationCode), Some(&previous));
                let access = tok.access();
                let new_refresh = tok.refresh();
                let generation = vault
                    .borrow_mut()
                    .store_tokens(&self.link, &access, new_refresh.as_ref(), &meta, true, Status::Connected)
                    .map_err(|e| self.err(e.to_string()))?;
                lease.held = false;
                let mut t = self.tokens.borrow_mut();
                t.access = access;
                if new_refresh.is_some() {
                    t.refresh = new_refresh;
                }
                t.meta = TokenMeta { generation, last_refresh: Some(now()), ..meta };
                Ok(())
            }
            Err(e) if e.is_dead_grant() => {
                let _ = vault.borrow_mut().end_tokens(&self.link, false, Status::NeedsReauth);
                lease.held = false;
                let link = &self.link;
                let message = format!(
                    "connection `{link}` needs re-authorisation: the provider refused to refresh its token ({}); run `linkrun connection authorize {link}`",
                    e.code
                );
                self.tokens.borrow_mut().dead = Some(message.clone());
                Err(self.err(message))
            }
            Err(e) if e.is_transient() => Err(self.err(e.transient_sentence(&self.link, &self.service))),
            Err(e) => Err(self.err(e.sentence(
                &self.link,
                &self.service,
                &format!("linkrun connection authorize {}", self.link),
            ))),
        }
    }
}

/// Releases a claimed refresh lease when dropped, unless the tokens were stored (which releases it
/// in the same transaction).
struct LeaseGuard<'a> {
    vault: &'a RefCell<Vault>,
    link: &'a LinkName,
    held: bool,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if self.held
            && let Ok(mut v) = self.vault.try_borrow_mut()
        {
            let _ = v.release_refresh_lease(self.link);
        }
    }
}

/// Whether an answer says the access token is dead: a 401, or a provider's own code for it in
/// the body (Zoho CRM's `INVALID_TOKEN`).
///
/// A 401 whose code says the token lacks a scope or a permission (Zoho's
/// `OAUTH_SCOPE_MISMATCH`, `NO_PERMISSION`) is not: a new token has the same scopes, and each
/// needless refresh spends one of the 10 tokens Zoho Accounts grants a refresh token in 10
/// minutes.
pub fn is_expired_answer(status: u16, body: &[u8]) -> bool {
    let code = || {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_string))
    };
    if status == 401 {
        let small = body.len() <= 4096;
        let scoped = small
            && (body.windows(20).any(|w| w == b"OAUTH_SCOPE_MISMATCH")
                || body.windows(13).any(|w| w == b"NO_PERMISSION"));
        return !(scoped && code().is_some_and(|c| c == "OAUTH_SCOPE_MISMATCH" || c == "NO_PERMISSION"));
    }
    if body.len() > 4096 || !body.windows(13).any(|w| w == b"INVALID_TOKEN") {
        return false;
    }
    code().is_some_and(|c| c == "INVALID_TOKEN")
}

#[cfg(test)]
mod tests {
    use super::is_expired_answer;

    #[test]
    fn a_scope_refusal_is_not_an_expired_token() {
        assert!(is_expired_answer(401, b""));
        assert!(is_expired_answer(401, br#"{"code":"INVALID_TOKEN","status":"error"}"#));
        assert!(is_expired_answer(200, br#"{"code":"INVALID_TOKEN"}"#));
        let scope = br#"{"code":"OAUTH_SCOPE_MISMATCH","details":{},"message":"invalid oauth scope to access this URL","status":"error"}"#;
        assert!(!is_expired_answer(401, scope));
        assert!(!is_expired_answer(401, br#"{"code":"NO_PERMISSION","status":"error"}"#));
        assert!(is_expired_answer(401, br#"{"message":"OAUTH_SCOPE_MISMATCH in text only"}"#));
    }
}
