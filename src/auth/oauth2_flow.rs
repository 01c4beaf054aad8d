//! `linkrun connection authorize` and `revoke` for OAuth 2.0 connections.
//!
//! - `code` (default): the authorization URL with PKCE S256 (unless the service turns it off) and
//!   a random `state` is printed alone on stdout (and opened in a browser when there is one); a
//!   one-shot listener on `http://127.0.0.1:PORT/callback` (the service's `redirect_port`, else
//!   [`DEFAULT_REDIRECT_PORT`]; `--port` overrides) receives the redirect; a wrong or missing
//!   `state`, an `error=` redirect or a timeout is exit 4; the code is exchanged.
//! - `--code CODE`: a code obtained elsewhere (Zoho's self-client grant token, without redirect
//!   URI; or a copied redirect's code with `--redirect-uri`).
//! - `password` and `client_credentials`: the grant runs at once.
//!
//! Tokens are sealed in the vault; the status becomes `connected`. `revoke` calls the revocation
//! endpoint (RFC 7009, or the query form of Zoho and ServiceNow), forgets the tokens and marks the
//! connection `revoked`.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::SecretString;

use super::callback::{Callback, open_browser};
use super::flow_error::FlowError;
use super::oauth2::{endpoints_for, meta_from};
use super::rfc6749::{GrantError, ProviderToken, RevokeStyle, revoke as revoke_token};
use crate::Result;
use crate::connection::{ConnectionRecord, Status};
use crate::http::Clients;
use crate::service::{GrantType, Service};
use crate::vault::Field;
use crate::vault::Vault;

/// Redirect port when the service names none: register `http://127.0.0.1:8765/callback`.
pub const DEFAULT_REDIRECT_PORT: u16 = 8765;

/// Options of `connection authorize` for an OAuth 2.0 connection.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `code`, `password` or `client_credentials` (default: the service's first grant type).
    pub grant: Option<String>,
    /// A code obtained elsewhere.
    pub code: Option<String>,
    /// The redirect URI the code was issued for.
    pub redirect_uri: Option<String>,
    /// Listener port.
    pub port: Option<u16>,
    /// Do not open a browser.
    pub no_browser: bool,
    /// How long to wait for the redirect.
    pub timeout: Duration,
    /// `--json`: print the authorization URL as the line `{"authorization_url": URL}`.
    pub json: bool,
}

/// The grant `--grant NAME` names (`code` is the authorization code grant).
fn grant_named(g: &str) -> Option<GrantType> {
    match g {
        "code" => Some(GrantType::AuthorizationCode),
        other => other.parse().ok(),
    }
}

/// Runs the grant and stores the tokens.
pub fn authorize(vault: &mut Vault, service: &Service, rec: &ConnectionRecord, opts: &Options) -> Result<()> {
    let link = &rec.link_name;
    let def = service
        .def
        .oauth2
        .as_ref()
        .ok_or_else(|| FlowError::NoTable { service: service.link_name().to_string(), table: "oauth2" })?;
    let endpoint = service.endpoint(rec.data_center.as_deref(), rec.instance.as_deref());
    let fields: HashMap<Field, SecretString> = vault.read_fields(link)?.into_iter().collect();
    let eps = endpoints_for(service, &endpoint, rec, &fields)?;
    let scopes = if rec.scopes.is_empty() { def.scopes.clone() } else { rec.scopes.clone() };
    let allowed = &def.grant_types;
    let grant = match (&opts.grant, &opts.code) {
        (Some(g), _) => grant_named(g).ok_or_else(|| FlowError::UnknownGrant { grant: g.clone() })?,
        (None, Some(_)) => GrantType::AuthorizationCode,
        (None, None) => allowed.first().copied().unwrap_or(GrantType::AuthorizationCode),
    };
    if !allowed.is_empty() && !allowed.contains(&grant) {
        return Err(FlowError::GrantNotAllowed {
            service: service.link_name().to_string(),
            grant: grant.as_ref().to_string(),
            allowed: allowed.iter().map(GrantType::as_ref).collect::<Vec<_>>().join(", "),
        }
        .into());
    }
    let refused =
        |source: GrantError| FlowError::Refused { link: link.to_string(), service: service.def.name.clone(), source };
    let runtime = crate::http::runtime()?;
    let clients = Clients::default();
    let token_url = url::Url::parse(&eps.token_url)
        .map_err(|_| FlowError::NotUrl { service: service.link_name().to_string(), which: "token_url" })?;
    if token_url.scheme() != "https" && !crate::http::rules::is_loopback(token_url.host_str().unwrap_or_default()) {
        return Err(FlowError::TokenUrlNotHttps {
            link: link.to_string(),
            host: token_url.host_str().unwrap_or_default().to_string(),
        }
        .into());
    }
    let token: ProviderToken = match grant {
        GrantType::AuthorizationCode => match &opts.code {
            Some(code) => runtime
                .block_on(eps.exchange_code(&clients, code, opts.redirect_uri.as_deref(), None))
                .map_err(refused)?,
            None => {
                if eps.authorize_url.is_none() {
                    return Err(FlowError::NoAuthorizeUrl { service: service.link_name().to_string() }.into());
                }
                let port = opts.port.or(def.redirect_port).unwrap_or(DEFAULT_REDIRECT_PORT);
                let listener = runtime.block_on(Callback::bind(port))?;
                let redirect = opts.redirect_uri.clone().unwrap_or_else(|| listener.redirect_uri());
                let extra: Vec<(String, String)> =
                    def.authorize_params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let (url, state, verifier) =
                    eps.authorization_url(&redirect, &scopes, &extra, def.pkce.unwrap_or(true)).map_err(refused)?;
                // A closed stdout must not panic.
                let line = super::callback::url_line(url.as_str(), opts.json);
                let _ = std::io::Write::write_fmt(&mut std::io::stdout(), format_args!("{line}\n"));
                eprintln!("waiting up to {} s for the provider to redirect to {redirect} ...", opts.timeout.as_secs());
                if !opts.no_browser {
                    open_browser(&url);
                }
                let link = link.to_string();
                let q = runtime
                    .block_on(listener.wait(opts.timeout))
                    .ok_or_else(|| FlowError::NoRedirect { link: link.clone(), secs: opts.timeout.as_secs() })?;
                if let Some(e) = q.get("error") {
                    let description = q.get("error_description").cloned();
                    return Err(FlowError::Denied { link, error: e.clone(), description }.into());
                }
                match q.get("state") {
                    Some(s) if *s == state => {}
                    Some(_) => return Err(FlowError::StateMismatch { link }.into()),
                    None => return Err(FlowError::NoState { link }.into()),
                }
                let code = q.get("code").ok_or(FlowError::NoCode { link })?;
                runtime.block_on(eps.exchange_code(&clients, code, Some(&redirect), verifier)).map_err(refused)?
            }
        },
        GrantType::Password => {
            let (Some(u), Some(p)) = (fields.get(&Field::param("username")), fields.get(&Field::param("password")))
            else {
                return Err(FlowError::NoPasswordParams { link: link.to_string() }.into());
            };
            runtime.block_on(eps.password(&clients, u, p, &scopes)).map_err(refused)?
        }
        GrantType::ClientCredentials => {
            let extra: Vec<(String, String)> = fields
                .get(&Field::param("soid"))
                .map(|s| vec![("soid".into(), secrecy::ExposeSecret::expose_secret(s).to_string())])
                .unwrap_or_default();
            runtime.block_on(eps.client_credentials(&clients, &scopes, &extra)).map_err(refused)?
        }
    };
    let meta = meta_from(&token, grant, None);
    vault.store_tokens(link, &token.access(), token.refresh().as_ref(), &meta, false, Status::Connected)?;
    Ok(())
}

/// What `revoke` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The provider's revocation endpoint accepted the token (HTTP 2xx).
    pub at_provider: bool,
    /// Why the provider was not told, or refused, when it was asked.
    pub warning: Option<String>,
}

/// Revokes at the provider (when the service has a `revoke_url`), then forgets the tokens and
/// marks the connection `revoked`. A provider that cannot be reached is reported after the tokens
/// are forgotten locally.
pub fn revoke(vault: &mut Vault, service: &Service, rec: &ConnectionRecord) -> Result<Revoked> {
    let link = &rec.link_name;
    let def = service
        .def
        .oauth2
        .as_ref()
        .ok_or_else(|| FlowError::NoTable { service: service.link_name().to_string(), table: "oauth2" })?;
    let endpoint = service.endpoint(rec.data_center.as_deref(), rec.instance.as_deref());
    let fields: HashMap<Field, SecretString> = vault.read_fields(link)?.into_iter().collect();
    let mut warning = None;
    let mut at_provider = false;
    if let Some(url) = &def.revoke_url {
        let eps = endpoints_for(service, &endpoint, rec, &fields)?;
        let url = super::oauth1_flow::resolve_url(url.get_ref(), &endpoint, rec);
        let style = def.revoke_style.unwrap_or(RevokeStyle::Rfc7009);
        let token = fields
            .get(&Field::RefreshToken)
            .map(|t| (t, "refresh_token"))
            .or_else(|| fields.get(&Field::AccessToken).map(|t| (t, "access_token")));
        if let Some((token, hint)) = token {
            let runtime = crate::http::runtime()?;
            let clients = Clients::default();
            url::Url::parse(&url)
                .map_err(|_| FlowError::NotUrl { service: service.link_name().to_string(), which: "revoke_url" })?;
            match runtime.block_on(revoke_token(&clients, &eps, &url, style, token, hint)) {
                Ok(s) if (200..300).contains(&s) => at_provider = true,
                Ok(s) => {
                    warning = Some(format!(
                        "the provider answered HTTP {s} to the revocation; the tokens are forgotten here anyway"
                    ))
                }
                Err(e) if e.code == "plain_http" => {
                    warning = Some(format!(
                        "the revocation was not sent, because the `revoke_url` of service `{}` is plain HTTP{}; the tokens are forgotten here anyway, and the `revoke_url` should be made https://",
                        service.link_name(),
                        e.description.as_deref().unwrap_or_default()
                    ))
                }
                Err(e) => {
                    warning = Some(format!(
                        "the revocation endpoint could not be reached ({}); the tokens are forgotten here anyway",
                        e.code
                    ))
                }
            }
        }
    }
    vault.end_tokens(link, true, Status::Revoked)?;
    Ok(Revoked { at_provider, warning })
}
