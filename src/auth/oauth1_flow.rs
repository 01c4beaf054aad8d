//! The OAuth 1.0a three-legged flow (RFC 5849 §2) behind `linkrun connection authorize`:
//!
//! 1. temporary credentials from `request_token_url`, with `oauth_callback` pointing at a one-shot
//!    listener on 127.0.0.1 (or `oob` with `--no-browser`); they are sealed in the vault as
//!    `pending:*` so that a later `--verifier` can finish the flow;
//! 2. the authorization URL, printed alone on its line on stdout (and opened in a browser when
//!    there is one);
//! 3. the `oauth_verifier` from the redirect, the terminal or `--verifier`, exchanged at
//!    `access_token_url` for the token and secret, which are sealed as the connection's `token`
//!    and `token_secret`; the status becomes `connected`.
//!
//! Provider refusals (`oauth_problem=...`) become one sentence naming the fix (exit 4).

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::callback::{Callback, open_browser};
use super::flow_error::FlowError;
use super::oauth1::OAuth1;
use crate::Result;
use crate::connection::{ConnectionRecord, Status};
use crate::http::Clients;
use crate::http::rules::is_loopback;
use crate::http::{NoCredentials, Outgoing, Response, SendOptions};
use crate::link_name::LinkName;
use crate::service::{Endpoint, Service};
use crate::vault::Field;
use crate::vault::Vault;

/// Options of `connection authorize` for an OAuth 1.0a connection.
#[derive(Debug, Clone)]
pub struct Options {
    /// Use `oob` and do not listen or open a browser.
    pub no_browser: bool,
    /// Finish a pending authorisation with this verifier.
    pub verifier: Option<String>,
    /// Port of the loopback listener (0: any).
    pub port: u16,
    /// How long to wait for the redirect.
    pub timeout: Duration,
    /// Whether a terminal is available to ask for the verifier.
    pub interactive: bool,
    /// `--json`: print the authorization URL as the line `{"authorization_url": URL}`.
    pub json: bool,
}

/// What the flow ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Token stored; the connection is `connected`.
    Connected,
    /// `--no-browser` without a terminal: the user must come back with `--verifier`.
    AwaitingVerifier,
}

/// One sentence per `oauth_problem` (the OAuth Problem Reporting extension's names).
pub fn problem_sentence(problem: &str, link: &str) -> String {
    let again = format!("run `linkrun connection authorize {link}` again");
    match problem {
        "signature_invalid" => format!(
            "the provider rejected the signature of connection `{link}` (oauth_problem=signature_invalid): check its consumer_secret or private_key and the service's signature_method"
        ),
        "consumer_key_unknown" | "consumer_key_rejected" | "consumer_key_refused" => format!(
            "the provider does not accept the consumer key of connection `{link}` (oauth_problem={problem}): check consumer_key with the provider's application settings"
        ),
        "token_rejected" | "token_expired" | "token_revoked" | "token_used" => {
            format!("the provider refused the token of connection `{link}` (oauth_problem={problem}): {again}")
        }
        "verifier_invalid" => format!("the verifier was wrong or has expired (oauth_problem=verifier_invalid): {again}"),
        "timestamp_refused" => format!(
            "the provider refused the request's timestamp (oauth_problem=timestamp_refused): check this machine's clock, then {again}"
        ),
        "nonce_used" => format!("the provider saw this request's nonce before (oauth_problem=nonce_used): {again}"),
        "permission_denied" | "user_refused" => {
            format!("authorisation of connection `{link}` was denied at the provider (oauth_problem={problem}): {again} and approve it")
        }
        "signature_method_rejected" => "the provider does not accept the service's signature_method (oauth_problem=signature_method_rejected): change `signature_method` in the service's `[oauth1]` table".to_string(),
        "parameter_absent" | "parameter_rejected" => format!(
            "the provider refused a parameter of the request (oauth_problem={problem}): check the service's `[oauth1]` URLs, then {again}"
        ),
        other => format!("the provider refused the request (oauth_problem={other}): {again}"),
    }
}

fn provider_error(resp: &Response, what: &'static str, link: &str) -> FlowError {
    let pairs: HashMap<String, String> = url::form_urlencoded::parse(&resp.body).into_owned().collect();
    match pairs.get("oauth_problem") {
        Some(p) => FlowError::Problem { link: link.to_string(), problem: p.clone() },
        None => FlowError::ProviderHttp { link: link.to_string(), what, status: resp.status },
    }
}

/// Fills `{accounts_url}`, `{base_url}`, `{instance}` and `${ENV}` in a service URL.
pub fn resolve_url(template: &str, endpoint: &Endpoint, rec: &ConnectionRecord) -> String {
    crate::service::substitute_env(template)
        .replace("{accounts_url}", endpoint.accounts_url.as_deref().unwrap_or_default())
        .replace("{base_url}", endpoint.base_url.as_deref().unwrap_or_default())
        .replace("{instance}", rec.instance.as_deref().unwrap_or_default())
}

fn flow_url(
    service: &Service,
    which: &'static str,
    template: Option<&str>,
    endpoint: &Endpoint,
    rec: &ConnectionRecord,
) -> Result<Url, FlowError> {
    let t = template.ok_or_else(|| FlowError::NoFlowUrl { service: service.link_name().to_string(), which })?;
    let raw = resolve_url(t, endpoint, rec);
    let url = Url::parse(&raw).map_err(|_| FlowError::FlowUrlNotUrl {
        service: service.link_name().to_string(),
        which,
        url: raw.clone(),
    })?;
    if url.scheme() != "https" && !is_loopback(url.host_str().unwrap_or_default()) {
        return Err(FlowError::FlowUrlNotHttps {
            link: rec.link_name.to_string(),
            host: url.host_str().unwrap_or_default().to_string(),
            which,
        });
    }
    Ok(url)
}

async fn signed_post(
    signer: &OAuth1,
    url: &Url,
    extra: &[(&str, &str)],
    link: &str,
    clients: &Clients,
) -> Result<Response, FlowError> {
    let mut out = Outgoing::new(reqwest::Method::POST, url.clone());
    signer.apply(&mut out, link, extra).map_err(|source| FlowError::Credentials { link: link.to_string(), source })?;
    let opts = SendOptions { link: Some(link), ..SendOptions::flow() };
    crate::http::send(clients, out, &opts, &NoCredentials)
        .await
        .map_err(|source| FlowError::Send { link: link.to_string(), source })
}

fn token_pair(resp: &Response, what: &'static str, link: &str) -> Result<(String, String), FlowError> {
    if !(200..300).contains(&resp.status) {
        return Err(provider_error(resp, what, link));
    }
    let pairs: HashMap<String, String> = url::form_urlencoded::parse(&resp.body).into_owned().collect();
    match (pairs.get("oauth_token"), pairs.get("oauth_token_secret")) {
        (Some(t), Some(s)) if !t.is_empty() => Ok((t.clone(), s.clone())),
        _ => Err(provider_error(resp, what, link)),
    }
}

/// Runs the flow for an OAuth 1.0a connection. Prints the authorization URL on stdout.
pub fn authorize(vault: &mut Vault, service: &Service, rec: &ConnectionRecord, opts: &Options) -> Result<Outcome> {
    let link = &rec.link_name;
    let def = service
        .def
        .oauth1
        .as_ref()
        .ok_or_else(|| FlowError::NoTable { service: service.link_name().to_string(), table: "oauth1" })?;
    let endpoint = service.endpoint(rec.data_center.as_deref(), rec.instance.as_deref());
    let mut fields: HashMap<Field, SecretString> = vault.read_fields(link)?.into_iter().collect();
    let pending = (fields.remove(&Field::PendingToken), fields.remove(&Field::PendingSecret));
    let mut take = |k: &str| if k == "token" || k == "token_secret" { None } else { fields.remove(&Field::param(k)) };
    let mut signer = OAuth1::from_fields(service, &mut take, link)
        .map_err(|source| FlowError::Credentials { link: link.to_string(), source })?;
    let access_url = flow_url(
        service,
        "access_token_url",
        def.access_token_url.as_ref().map(|u| u.get_ref().as_str()),
        &endpoint,
        rec,
    )?;
    let runtime = crate::http::runtime()?;
    let clients = Clients::default();

    let (temp_token, temp_secret, verifier) = if let Some(v) = &opts.verifier {
        let (Some(t), Some(s)) = pending else {
            return Err(FlowError::NoPendingVerifier { link: link.to_string() }.into());
        };
        (t.expose_secret().to_string(), s, v.clone())
    } else {
        let request_url = flow_url(
            service,
            "request_token_url",
            def.request_token_url.as_ref().map(|u| u.get_ref().as_str()),
            &endpoint,
            rec,
        )?;
        let authorize_url = flow_url(
            service,
            "authorize_url",
            def.authorize_url.as_ref().map(|u| u.get_ref().as_str()),
            &endpoint,
            rec,
        )?;
        let listener = if opts.no_browser { None } else { Some(runtime.block_on(Callback::bind(opts.port))?) };
        let callback = listener.as_ref().map(|l| l.redirect_uri()).unwrap_or_else(|| "oob".to_string());
        let resp =
            runtime.block_on(signed_post(&signer, &request_url, &[("oauth_callback", &callback)], link, &clients))?;
        let (t, s) = token_pair(&resp, "temporary-credential", link)?;
        vault.write_fields(
            link,
            &[
                (Field::PendingToken, SecretString::from(t.clone())),
                (Field::PendingSecret, SecretString::from(s.clone())),
            ],
            None,
        )?;
        let mut auth = authorize_url.clone();
        auth.query_pairs_mut().append_pair("oauth_token", &t);
        // A closed stdout must not panic: the URL is also what the verifier prompt refers to.
        let line = super::callback::url_line(auth.as_str(), opts.json);
        let _ = std::io::Write::write_fmt(&mut std::io::stdout(), format_args!("{line}\n"));
        let verifier = match listener {
            Some(l) => {
                eprintln!(
                    "waiting up to {} s for the provider to redirect to {} ...",
                    opts.timeout.as_secs(),
                    l.redirect_uri()
                );
                open_browser(auth.as_str());
                let q = runtime
                    .block_on(l.wait(opts.timeout))
                    .ok_or_else(|| FlowError::NoRedirect { link: link.to_string(), secs: opts.timeout.as_secs() })?;
                if let Some(p) = q.get("oauth_problem") {
                    return Err(FlowError::Problem { link: link.to_string(), problem: p.clone() }.into());
                }
                if q.get("oauth_token").is_some_and(|got| *got != t) {
                    return Err(FlowError::TokenMismatch { link: link.to_string() }.into());
                }
                q.get("oauth_verifier").cloned().ok_or_else(|| FlowError::NoVerifier { link: link.to_string() })?
            }
            None if opts.interactive => {
                let v = rpassword::prompt_password("verifier (PIN) shown by the provider: ")
                    .map_err(|source| FlowError::ReadVerifier { source })?;
                v.trim().to_string()
            }
            None => {
                eprintln!(
                    "open the URL above, approve, then run `linkrun connection authorize {link} --verifier CODE`"
                );
                return Ok(Outcome::AwaitingVerifier);
            }
        };
        (t, SecretString::from(s), verifier)
    };

    signer.token = Some(SecretString::from(temp_token));
    signer.token_secret = Some(temp_secret);
    let resp = runtime.block_on(signed_post(&signer, &access_url, &[("oauth_verifier", &verifier)], link, &clients))?;
    let (token, secret) = token_pair(&resp, "token", link)?;
    vault.write_fields(
        link,
        &[
            (Field::param("token"), SecretString::from(token)),
            (Field::param("token_secret"), SecretString::from(secret)),
        ],
        Some(Status::Connected),
    )?;
    vault.remove_fields(link, &[Field::PendingToken, Field::PendingSecret], None)?;
    Ok(Outcome::Connected)
}

/// Forgets the token of an OAuth 1.0a connection (RFC 5849 has no revocation endpoint) and marks
/// it `revoked`; `authorize` reconnects it.
pub fn revoke(vault: &mut Vault, link: &LinkName) -> Result<()> {
    vault.remove_fields(
        link,
        &[Field::param("token"), Field::param("token_secret"), Field::PendingToken, Field::PendingSecret],
        Some(Status::Revoked),
    )?;
    Ok(())
}
