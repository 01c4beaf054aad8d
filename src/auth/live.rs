//! A connection in use ([`Live`]): loaded from the vault with its credentials opened, put on
//! each hop of a request that may carry them, and, for OAuth 2.0, kept fresh: refreshed before
//! expiry, and once after an answer that says the token is dead, then the request is sent again
//! (the middleware shape of xh's digest auth). This is the auth layer around the one send path
//! ([`crate::http::send()`]); the invoker above it only builds requests and maps answers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use secrecy::SecretString;
use url::Url;

use super::{Credentials, PlacedValue, api_key::ApiKey, basic::Basic, place_values};
use crate::catalog::Catalog;
use crate::connection::ConnectionError;
use crate::http::rules::{default_port, host_matches, host_port_matches, is_loopback, port_of, with_origin};
use crate::http::send::{self, SendOptions};
use crate::http::{Clients, ErrorKind, InvokeError, Outgoing, Response};
use crate::link_name::LinkName;
use crate::service::{AuthKind, Endpoint};
use crate::vault::Field;
use crate::vault::Vault;

/// A failure to open the vault or the catalog while resolving a connection; ends the run with
/// that error's exit code rather than becoming a catchable script error.
#[derive(Debug)]
pub enum Failure {
    /// Catchable by the script.
    Invoke(InvokeError),
    /// Fatal (vault cannot be opened, bad service file).
    Fatal(crate::Error),
}

impl From<ConnectionError> for InvokeError {
    fn from(e: ConnectionError) -> Self {
        InvokeError::connection(e.to_string(), e.link())
    }
}

impl From<InvokeError> for Failure {
    fn from(e: InvokeError) -> Self {
        Failure::Invoke(e)
    }
}

/// A connection ready to use: its endpoint and opened credentials.
#[derive(Debug)]
pub struct Live {
    /// Link name.
    pub link_name: LinkName,
    /// Service link name.
    pub service: LinkName,
    /// Base URL and allowed hosts.
    pub endpoint: Endpoint,
    /// Auth credentials.
    pub credentials: Credentials,
    /// Non-auth params sent on every request.
    pub placed: Vec<PlacedValue>,
    /// Query keys to redact in traces.
    pub redact_keys: Vec<String>,
    /// Ports an `allowed_hosts` entry without a port allows besides the scheme's default: those
    /// of the connection's base URL (as configured, and after an OAuth `api_domain`).
    pub base_ports: Vec<u16>,
}

impl Live {
    /// Whether requests on this connection carry anything to protect.
    pub fn carries_credentials(&self) -> bool {
        !self.credentials.is_none() || !self.placed.is_empty()
    }

    fn apply_credentials(&self, req: &mut Outgoing) -> Result<(), InvokeError> {
        // Plain params first: an OAuth 1.0a signature must cover everything the request carries.
        place_values(req, &self.placed, &self.link_name)?;
        self.credentials.apply(req, &self.link_name)
    }

    /// Refuses a URL the credentials must not go to: a host and port outside the allow-list, or
    /// plain HTTP to a host that is not loopback.
    pub fn check_url(&self, url: &Url) -> Result<(), InvokeError> {
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']).to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or_default();
        let mut implicit = self.base_ports.clone();
        implicit.extend(default_port(url.scheme()));
        if !self.endpoint.allowed_hosts.iter().any(|p| host_port_matches(p, &host, port, &implicit)) {
            // The host is allowed but not on this port: name the port, so the fix is clear.
            let host =
                match url.port() {
                    Some(p) if self.endpoint.allowed_hosts.iter().any(|h| host_matches(h, &host)) => {
                        if host.contains(':') { format!("[{host}]:{p}") } else { format!("{host}:{p}") }
                    }
                    _ => host,
                };
            let allowed = if self.endpoint.allowed_hosts.is_empty() {
                "none".to_string()
            } else {
                self.endpoint.allowed_hosts.iter().map(|h| format!("`{h}`")).collect::<Vec<_>>().join(", ")
            };
            return Err(InvokeError::new(
                ErrorKind::HostRefused,
                format!(
                    "refusing to send the credentials of connection `{}` to `{host}`: service `{}` allows only {allowed}; call an allowed host or add this one to the service's `allowed_hosts`",
                    self.link_name, self.service
                ),
                Some(&self.link_name),
            ));
        }
        if url.scheme() != "https" && !is_loopback(&host) {
            return Err(InvokeError::new(
                ErrorKind::HostRefused,
                format!(
                    "refusing to send the credentials of connection `{}` over plain HTTP to `{host}`: use an https:// URL (plain HTTP is allowed only to 127.0.0.1, ::1 and localhost)",
                    self.link_name
                ),
                Some(&self.link_name),
            ));
        }
        Ok(())
    }

    /// Loads connection `link` from the vault: its record, service and opened credentials. Only
    /// a `connected` connection loads; any other status, an unknown link name or a service that
    /// is gone is a catchable `connection` error; a vault that cannot be read is fatal.
    pub fn load(vault: &Rc<RefCell<Vault>>, catalog: &Catalog, link: &LinkName) -> Result<Live, Failure> {
        let refuse = |e: ConnectionError| Failure::Invoke(e.into());
        let rec = vault
            .borrow()
            .get(link)
            .map_err(|e| Failure::Fatal(e.into()))?
            .ok_or_else(|| refuse(ConnectionError::Unknown { link: link.to_string() }))?;
        if let Some(e) = ConnectionError::for_status(link, rec.status) {
            return Err(refuse(e));
        }
        let service = catalog.get(&rec.service).map_err(|_| {
            refuse(ConnectionError::ServiceGone { link: link.to_string(), service: rec.service.to_string() })
        })?;
        // Token metadata before the tokens: if a refresh elsewhere lands in between, the tokens are
        // newer than their label, never older, so a refresh lease claimed with this generation
        // fails and the tokens are re-read instead of refreshing with a spent refresh token.
        let oauth_meta = if service.auth() == AuthKind::Oauth2 {
            Some(vault.borrow().token_meta(link).map_err(|e| Failure::Fatal(e.into()))?.unwrap_or_default())
        } else {
            None
        };
        let mut fields: HashMap<Field, SecretString> =
            vault.borrow().read_fields(link).map_err(|e| Failure::Fatal(e.into()))?.into_iter().collect();
        let mut endpoint = service.endpoint(rec.data_center.as_deref(), rec.instance.as_deref());
        let mut base_ports: Vec<u16> = port_of(endpoint.base_url.as_deref()).into_iter().collect();
        let oauth2 = if let Some(meta) = oauth_meta {
            let eps = super::oauth2::endpoints_for(service, &endpoint, &rec, &fields)
                .map_err(|e| Failure::Invoke(InvokeError::connection(e.to_string(), link)))?;
            let o = super::oauth2::OAuth2::new(link, service, eps, rec.scopes.clone(), &mut fields, meta)
                .map_err(|e| Failure::Invoke(InvokeError::connection(e.to_string(), link)))?;
            if service.def.oauth2.as_ref().is_some_and(|d| d.use_api_domain)
                && let (Some(domain), Some(base)) = (o.api_domain(), endpoint.base_url.as_deref())
            {
                endpoint.base_url = Some(with_origin(base, &domain));
                base_ports.extend(port_of(endpoint.base_url.as_deref()));
            }
            Some(o)
        } else {
            None
        };
        let mut take = |key: &str| fields.remove(&Field::param(key));
        let credentials = match service.auth() {
            AuthKind::None => Credentials::None,
            AuthKind::ApiKey => Credentials::ApiKey(ApiKey { values: Vec::new() }),
            AuthKind::Basic => Credentials::Basic(Basic {
                username: take("username").unwrap_or_else(|| SecretString::from("")),
                password: take("password").unwrap_or_else(|| SecretString::from("")),
            }),
            AuthKind::Oauth1 => Credentials::OAuth1(Box::new(
                super::oauth1::OAuth1::from_fields(service, &mut take, link).map_err(Failure::Invoke)?,
            )),
            AuthKind::Oauth2 => match oauth2 {
                Some(o) => Credentials::OAuth2(Box::new(o)),
                None => return Err(refuse(ConnectionError::NotAuthorized { link: link.to_string() })),
            },
        };
        let mut credentials = credentials;
        let mut placed = Vec::new();
        for p in service.params() {
            let (Some(placement), false) = (p.placement, p.implied) else { continue };
            let Some(value) = take(&p.key) else { continue };
            let v = PlacedValue { key: p.key.clone(), placement, value };
            match &mut credentials {
                Credentials::ApiKey(k) => k.values.push(v),
                _ => placed.push(v),
            }
        }
        let mut redact_keys: Vec<String> = credentials.query_keys().into_iter().map(str::to_string).collect();
        redact_keys
            .extend(placed.iter().filter(|v| v.placement == crate::service::Placement::Query).map(|v| v.key.clone()));
        Ok(Live {
            link_name: link.clone(),
            service: rec.service.clone(),
            endpoint,
            credentials,
            placed,
            redact_keys,
            base_ports,
        })
    }

    /// Sends `out` on this connection: the one send path with the credentials applied per hop,
    /// and for OAuth 2.0 the token refreshed before expiry and once more after an answer that says
    /// it is dead (then the request is sent again, once).
    pub async fn send(
        &self,
        clients: &Clients,
        vault: &RefCell<Vault>,
        out: Outgoing,
        opts: &SendOptions<'_>,
    ) -> Result<Response, InvokeError> {
        let Credentials::OAuth2(o) = &self.credentials else {
            return send::send(clients, out, opts, self).await;
        };
        o.ensure_fresh(vault, clients, None).await?;
        let generation = o.generation();
        let resp = send::send(clients, out.clone(), opts, self).await?;
        if !super::oauth2::is_expired_answer(resp.status, &resp.body) {
            return Ok(resp);
        }
        o.ensure_fresh(vault, clients, Some(generation)).await?;
        send::send(clients, out, opts, self).await
    }
}

impl send::Credentials for Live {
    /// Credentials go on the first hop (already checked by [`Live::check_url`]) and on a redirect
    /// to the same origin that the host rules allow; never anywhere else.
    fn apply(&self, wire: &mut Outgoing, first: bool, same_origin: bool) -> Result<(), InvokeError> {
        if !self.carries_credentials() {
            return Ok(());
        }
        if first || (same_origin && self.check_url(&wire.url).is_ok()) {
            self.apply_credentials(wire)?;
        }
        Ok(())
    }
}
