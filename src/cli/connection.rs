//! `linkrun connection create|list|show|authorize|test|revoke|delete|default`.

use std::collections::BTreeMap;
use std::io::Write as _;

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

mod checks;

use super::connection_error::ConnectionCmdError;
use crate::catalog::Catalog;
use crate::connection::{ConnectionRecord, Status, mask};
use crate::home::Home;
use crate::link_name::LinkName;
use crate::service::{AuthKind, Param, Service};
use crate::vault::Field;
use crate::vault::{TokenMeta, Vault};
use crate::{Error, Result};

/// Connection commands.
#[derive(Debug, Subcommand)]
pub enum ConnectionCmd {
    /// Create a connection: an instance of a service with its params, under a unique link name.
    Create {
        /// The link name scripts use (`connection: "LINK"`).
        link: String,
        /// The service's link name (see `linkrun service list`).
        #[arg(long)]
        service: String,
        /// Data center (for services with several).
        #[arg(long, conflicts_with = "instance")]
        dc: Option<String>,
        /// Instance name (for services addressed by instance, e.g. ServiceNow).
        #[arg(long)]
        instance: Option<String>,
        /// A scope to request (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// KEY=VALUE, or KEY alone to be asked for it without echo (repeatable).
        #[arg(long = "param", value_name = "KEY[=VALUE]")]
        params: Vec<String>,
        /// KEY=ENVVAR: take the value from an environment variable (repeatable).
        #[arg(long = "param-env", value_name = "KEY=ENVVAR")]
        param_env: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List connections.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a connection, secrets masked.
    Show {
        /// Link name.
        link: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Authorise a connection with its provider (OAuth 2.0 grants; OAuth 1.0a three-legged flow).
    Authorize {
        /// Link name.
        link: String,
        /// OAuth 2.0 grant: code (default), password or client_credentials.
        #[arg(long, value_parser = ["code", "password", "client_credentials"])]
        grant: Option<String>,
        /// OAuth 2.0: exchange a code obtained elsewhere (e.g. Zoho's self-client grant token).
        // Codes are random text and may start with `-`: it is a value, not a flag.
        #[arg(long, value_name = "CODE", allow_hyphen_values = true)]
        code: Option<String>,
        /// OAuth 2.0: the redirect URI (of a copied code, or to send instead of the listener's).
        #[arg(long, value_name = "URI")]
        redirect_uri: Option<String>,
        /// Do not open a browser. OAuth 1.0a: do not listen either; the provider shows a verifier
        /// (PIN) to type in, or to pass later with --verifier.
        #[arg(long)]
        no_browser: bool,
        /// OAuth 1.0a: finish a pending authorisation with the verifier (PIN) the provider showed.
        #[arg(long, value_name = "CODE", allow_hyphen_values = true)]
        verifier: Option<String>,
        /// Port of the loopback redirect listener on 127.0.0.1 (OAuth 2.0 default: the service's
        /// redirect_port, else 8765; OAuth 1.0a: any free port).
        #[arg(long)]
        port: Option<u16>,
        /// How long to wait for the redirect, in seconds (1 to 86400).
        #[arg(long, value_name = "SECS", default_value_t = 300)]
        timeout: u64,
        /// Print JSON: `{"authorization_url": URL}` on its own line first when the flow has one,
        /// then the connection's status, granted scopes and expiry.
        #[arg(long)]
        json: bool,
    },
    /// Make the service's verification request (its `[test]` entry) with the connection, then
    /// its permission checks (`[[checks]]`): one line each, `permitted`, `forbidden`, `hidden` or
    /// `failed`, with what to grant. Exit 4 when the request fails or a check does not pass.
    Test {
        /// Link name.
        link: String,
        /// Print JSON: the request made, the HTTP status, whether everything passed, and the
        /// `checks` (name, status, http_status, detail, fix) when the service declares some.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a connection's authorisation: forget its tokens and mark it `revoked`.
    Revoke {
        /// Link name.
        link: String,
        /// Print JSON: the status, and whether the provider was told.
        #[arg(long)]
        json: bool,
    },
    /// Show, set or clear the default connection of a service: the one `zoho.crm.*` (service
    /// `zoho_crm`) and `zoho.desk.*` (service `zoho_desk`) tasks use when a script names none.
    Default {
        /// The service's link name (see `linkrun service list`).
        service: String,
        /// The connection to make the default; omitted: show the default.
        link: Option<String>,
        /// Remove the default.
        #[arg(long, conflicts_with = "link")]
        clear: bool,
        /// Print JSON: `{"service": S, "default": LINK or null}`.
        #[arg(long)]
        json: bool,
    },
    /// Show, set or clear a connection's own rate budget: the `[limits]` of its service with
    /// these values over them (requests in flight, per second, per window).
    Limits {
        /// Link name.
        link: String,
        /// The values to set (none: show the limits).
        #[command(flatten)]
        args: super::connection_limits::LimitsArgs,
    },
    /// Delete a connection and its sealed values.
    Delete {
        /// Link name.
        link: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Do not revoke an OAuth 2.0 connection's tokens at the provider first (by default they
        /// are: Zoho keeps at most 20 refresh tokens per client, and forgotten live ones push the
        /// oldest out).
        #[arg(long)]
        keep_remote: bool,
    },
}

/// Runs a connection command.
pub fn run(home: &Home, cmd: ConnectionCmd) -> Result<()> {
    match cmd {
        ConnectionCmd::Create { link, service, dc, instance, scopes, params, param_env, json } => {
            create(home, CreateArgs { link, service, dc, instance, scopes, params, param_env, json })
        }
        ConnectionCmd::List { json } => list(home, json),
        ConnectionCmd::Show { link, json } => show(home, &check_link(&link)?, json),
        ConnectionCmd::Delete { link, yes, keep_remote } => delete(home, &check_link(&link)?, yes, keep_remote),
        ConnectionCmd::Limits { link, args } => super::connection_limits::run(home, &check_link(&link)?, args),
        ConnectionCmd::Default { service, link, clear, json } => default(home, &service, link.as_deref(), clear, json),
        ConnectionCmd::Authorize { link, grant, code, redirect_uri, no_browser, verifier, port, timeout, json } => {
            if !(1..=86_400).contains(&timeout) {
                return Err(ConnectionCmdError::TimeoutOutOfRange { timeout }.into());
            }
            let timeout = std::time::Duration::from_secs(timeout);
            let oauth1 = crate::auth::oauth1_flow::Options {
                no_browser,
                verifier,
                port: port.unwrap_or(0),
                timeout,
                interactive: super::interactive(),
                json,
            };
            let oauth2 =
                crate::auth::oauth2_flow::Options { grant, code, redirect_uri, port, no_browser, timeout, json };
            authorize(home, &check_link(&link)?, &oauth1, &oauth2, json)
        }
        ConnectionCmd::Revoke { link, json } => revoke(home, &check_link(&link)?, json),
        ConnectionCmd::Test { link, json } => test(home, &check_link(&link)?, json),
    }
}

struct CreateArgs {
    link: String,
    service: String,
    dc: Option<String>,
    instance: Option<String>,
    scopes: Vec<String>,
    params: Vec<String>,
    param_env: Vec<String>,
    json: bool,
}

/// The one place a link name given on the command line is checked: the commands below take a
/// [`LinkName`].
fn check_link(link: &str) -> Result<LinkName> {
    LinkName::parse(link).map_err(|rule| ConnectionCmdError::InvalidLinkName { link: link.to_string(), rule }.into())
}

fn unknown_connection(link: &str) -> Error {
    crate::connection::ConnectionError::Unknown { link: link.to_string() }.into()
}

fn create(home: &Home, a: CreateArgs) -> Result<()> {
    let link = check_link(&a.link)?;
    let catalog = Catalog::load(home)?;
    let service = catalog.get(&a.service)?;
    let dc = resolve_dc(service, a.dc.as_deref())?;
    let hostname = hostname_param(service, &a.params, &a.param_env)?;
    let instance = resolve_instance(service, a.instance.as_deref(), hostname.as_deref())?;
    let declared = service.params();
    let known = |key: &str| -> Result<&Param> {
        declared.iter().find(|p| p.key == key).ok_or_else(|| {
            let keys: Vec<_> = declared.iter().map(|p| format!("`{}`", p.key)).collect();
            Error::from(ConnectionCmdError::UnknownParam {
                service: service.link_name().to_string(),
                key: key.to_string(),
                known: if keys.is_empty() { "none".to_string() } else { keys.join(", ") },
            })
        })
    };
    // Gather values without prompting yet: flags first, then the environment.
    let mut values: BTreeMap<String, SecretString> = BTreeMap::new();
    let mut ask: Vec<&Param> = Vec::new();
    for raw in &a.params {
        match raw.split_once('=') {
            Some((k, v)) => {
                known(k)?;
                values.insert(k.to_string(), SecretString::from(v.to_string()));
            }
            None => ask.push(known(raw)?),
        }
    }
    for raw in &a.param_env {
        let (k, var) = raw
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| ConnectionCmdError::NotKeyEnvVar { raw: raw.clone() })?;
        known(k)?;
        let v = std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConnectionCmdError::EnvVarUnset { var: var.to_string(), key: k.to_string() })?;
        values.insert(k.to_string(), SecretString::from(v));
    }
    if hostname.is_some() {
        // The custom domain is the connection's instance, not a param sent anywhere.
        values.remove(HOSTNAME);
    }
    let missing: Vec<&Param> = declared
        .iter()
        .filter(|p| !p.optional && !values.contains_key(&p.key) && !ask.iter().any(|q| q.key == p.key))
        .collect();
    let interactive = super::interactive();
    if !interactive {
        if let Some(p) = ask.first() {
            return Err(ConnectionCmdError::NoTerminalForParam { key: p.key.clone() }.into());
        }
        if let Some(p) = missing.first() {
            return Err(ConnectionCmdError::MissingParam {
                key: p.key.clone(),
                label: p.label.clone(),
                service: service.link_name().to_string(),
            }
            .into());
        }
    }
    // Refuse a duplicate before asking anything.
    let mut vault = Vault::open(home)?;
    if vault.get(&link)?.is_some() {
        return Err(duplicate(&link));
    }
    for p in ask.into_iter().chain(missing) {
        let v = prompt(p)?;
        values.insert(p.key.clone(), v);
    }
    for p in &declared {
        if !p.optional && values.get(&p.key).is_none_or(|v| v.expose_secret().is_empty()) {
            return Err(ConnectionCmdError::EmptyParam { key: p.key.clone(), label: p.label.clone() }.into());
        }
    }
    let status = match service.auth() {
        AuthKind::Oauth1 if values.contains_key("token") && values.contains_key("token_secret") => Status::Connected,
        AuthKind::Oauth1 | AuthKind::Oauth2 => Status::NotAuthorized,
        AuthKind::None | AuthKind::ApiKey | AuthKind::Basic => Status::Connected,
    };
    let scopes = if a.scopes.is_empty() {
        service.def.oauth2.as_ref().map(|o| o.scopes.clone()).unwrap_or_default()
    } else {
        a.scopes
    };
    let rec = ConnectionRecord {
        link_name: link,
        service: service.link_name().clone(),
        data_center: dc,
        instance,
        scopes,
        status,
        created_at: 0,
        updated_at: 0,
    };
    let fields: Vec<(Field, SecretString)> = values.into_iter().map(|(k, v)| (Field::param(&k), v)).collect();
    if !vault.create(&rec, &fields)? {
        return Err(duplicate(&rec.link_name));
    }
    if a.json {
        return super::print_json(&json!({"link_name": rec.link_name, "service": rec.service, "status": rec.status}));
    }
    eprintln!("created connection `{}` (service `{}`, status {})", rec.link_name, rec.service, rec.status);
    if status == Status::NotAuthorized {
        eprintln!("next: run `linkrun connection authorize {}`", rec.link_name);
    }
    Ok(())
}

fn duplicate(link: &str) -> Error {
    ConnectionCmdError::Duplicate { link: link.to_string() }.into()
}

fn resolve_dc(service: &Service, dc: Option<&str>) -> Result<Option<String>> {
    let dcs = service.data_centers();
    let list = || dcs.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ");
    match dc {
        Some(d) if dcs.is_empty() => {
            Err(ConnectionCmdError::NoDataCenters { service: service.link_name().to_string(), dc: d.to_string() }
                .into())
        }
        Some(d) if !dcs.contains(&d) => Err(ConnectionCmdError::UnknownDataCenter {
            service: service.link_name().to_string(),
            dc: d.to_string(),
            known: list(),
        }
        .into()),
        Some(d) => Ok(Some(d.to_string())),
        None if dcs.is_empty() => Ok(None),
        None => match &service.def.default_data_center {
            Some(d) => Ok(Some(d.get_ref().clone())),
            None => {
                Err(ConnectionCmdError::NeedsDataCenter { service: service.link_name().to_string(), known: list() }
                    .into())
            }
        },
    }
}

/// The param that addresses a service by a full host name (a custom domain) instead of an instance.
const HOSTNAME: &str = "hostname";

/// The `hostname` param of a service addressed by instance that declares it, from `--param
/// hostname=H` or `--param-env hostname=VAR`: a DNS host name, lowercased, becoming the
/// connection's instance (base URL `https://H`, allowed host H only).
fn hostname_param(service: &Service, params: &[String], param_env: &[String]) -> Result<Option<String>> {
    if service.def.instance_url.is_none() || !service.def.params.iter().any(|p| p.key.get_ref() == HOSTNAME) {
        return Ok(None);
    }
    let mut found: Option<String> = None;
    for raw in params {
        match raw.split_once('=') {
            Some((HOSTNAME, v)) => found = Some(v.to_string()),
            None if raw == HOSTNAME => {
                return Err(ConnectionCmdError::HostnameNeedsValue.into());
            }
            _ => {}
        }
    }
    for raw in param_env {
        if let Some((HOSTNAME, var)) = raw.split_once('=') {
            let v = std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConnectionCmdError::EnvVarUnset { var: var.to_string(), key: HOSTNAME.to_string() })?;
            found = Some(v);
        }
    }
    let Some(h) = found else { return Ok(None) };
    let host = h.trim().trim_end_matches('.').to_ascii_lowercase();
    if !crate::service::is_dns_host_name(&host) {
        return Err(ConnectionCmdError::NotHostName { hostname: h }.into());
    }
    Ok(Some(host))
}

fn resolve_instance(service: &Service, instance: Option<&str>, hostname: Option<&str>) -> Result<Option<String>> {
    match (instance, hostname) {
        (Some(i), Some(h)) => {
            return Err(
                ConnectionCmdError::InstanceAndHostname { instance: i.to_string(), hostname: h.to_string() }.into()
            );
        }
        (None, Some(h)) => return Ok(Some(h.to_string())),
        _ => {}
    }
    match (instance, &service.def.instance_url) {
        (Some(i), Some(_)) => {
            if crate::service::is_instance_name(i) {
                Ok(Some(i.to_ascii_lowercase()))
            } else {
                let custom_domain = service.def.params.iter().any(|p| p.key.get_ref() == HOSTNAME);
                Err(ConnectionCmdError::InvalidInstance { instance: i.to_string(), custom_domain }.into())
            }
        }
        (Some(i), None) => {
            Err(ConnectionCmdError::NotByInstance { service: service.link_name().to_string(), instance: i.to_string() }
                .into())
        }
        (None, Some(t)) => {
            let named = service.named_instances();
            let mut also = String::new();
            if !named.is_empty() {
                also.push_str(&format!(
                    ", or one of {}",
                    named.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ));
            }
            if service.def.params.iter().any(|p| p.key.get_ref() == HOSTNAME) {
                also.push_str(", or --param hostname=HOST for a custom domain");
            }
            Err(ConnectionCmdError::NeedsInstance {
                service: service.link_name().to_string(),
                url: t.get_ref().to_string(),
                also,
            }
            .into())
        }
        (None, None) => Ok(None),
    }
}

fn prompt(p: &Param) -> Result<SecretString> {
    let label = format!("{} ({}): ", p.label, p.key);
    let value = if p.secret {
        rpassword::prompt_password(&label)
            .map_err(|source| ConnectionCmdError::ReadParam { key: p.key.clone(), source })?
    } else {
        eprint!("{label}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|source| ConnectionCmdError::ReadParam { key: p.key.clone(), source })?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    Ok(SecretString::from(value))
}

fn list(home: &Home, json: bool) -> Result<()> {
    let (recs, defaults) = if Vault::exists(home) {
        let vault = Vault::open(home)?;
        (vault.list()?, vault.default_connections()?)
    } else {
        (Vec::new(), Vec::new())
    };
    let is_default = |r: &ConnectionRecord| defaults.iter().any(|(s, l)| *l == r.link_name && r.service == s.as_str());
    if json {
        // `"default": true` only on a default, so the documents of other connections keep their shape.
        let items: Vec<_> = recs
            .iter()
            .map(|r| {
                let mut doc = record_json(r);
                if is_default(r) {
                    doc["default"] = json!(true);
                }
                doc
            })
            .collect();
        return super::print_json(&json!(items));
    }
    if recs.is_empty() {
        eprintln!("no connections yet: create one with `linkrun connection create LINK --service NAME`");
        return Ok(());
    }
    let w = recs.iter().map(|r| r.link_name.len()).max().unwrap_or(0).max(9);
    let sw = recs.iter().map(|r| r.service.len()).max().unwrap_or(0).max(7);
    outln!("{:w$}  {:sw$}  {:14}  WHERE", "LINK_NAME", "SERVICE", "STATUS");
    for r in &recs {
        let mark = if is_default(r) { "  (default)" } else { "" };
        outln!("{:w$}  {:sw$}  {:14}  {}{mark}", r.link_name, r.service, r.status.as_str(), where_of(r));
    }
    Ok(())
}

fn where_of(r: &ConnectionRecord) -> String {
    match (&r.data_center, &r.instance) {
        (Some(d), _) => format!("dc {d}"),
        (_, Some(i)) => format!("instance {i}"),
        _ => "-".to_string(),
    }
}

fn record_json(r: &ConnectionRecord) -> serde_json::Value {
    json!({"link_name": r.link_name, "service": r.service, "data_center": r.data_center, "instance": r.instance, "scopes": r.scopes, "status": r.status})
}

fn show(home: &Home, link: &LinkName, json: bool) -> Result<()> {
    if !Vault::exists(home) {
        return Err(unknown_connection(link));
    }
    let vault = Vault::open(home)?;
    let rec = vault.get(link)?.ok_or_else(|| unknown_connection(link))?;
    let fields = vault.read_fields(link)?;
    let tokens = vault.token_meta(link)?.filter(|m| m.generation > 0);
    let catalog = Catalog::load(home).ok();
    let service = catalog.as_ref().and_then(|c| c.get(&rec.service).ok());
    let defs = service.map(|s| s.params()).unwrap_or_default();
    let mut shown: Vec<(String, String, bool)> = Vec::new();
    for (field, value) in &fields {
        let Some(key) = field.param_key() else { continue };
        // Unknown keys (service changed since) are treated as secret.
        let secret = defs.iter().find(|p| p.key == key).is_none_or(|p| p.secret);
        let text = if secret { mask(value.expose_secret()) } else { value.expose_secret().to_string() };
        shown.push((key.to_string(), text, secret));
    }
    let endpoint = service.map(|s| s.endpoint(rec.data_center.as_deref(), rec.instance.as_deref()));
    let default_of: Vec<String> =
        vault.default_connections()?.into_iter().filter(|(_, l)| l == link).map(|(s, _)| s).collect();
    if json {
        let mut doc = record_json(&rec);
        if !default_of.is_empty() {
            doc["default_of"] = json!(default_of);
        }
        doc["base_url"] = json!(endpoint.as_ref().and_then(|e| e.base_url.clone()));
        doc["allowed_hosts"] = json!(endpoint.as_ref().map(|e| e.allowed_hosts.clone()));
        doc["params"] = shown
            .iter()
            .map(|(k, v, s)| (k.clone(), json!({"value": v, "secret": s})))
            .collect::<serde_json::Map<_, _>>()
            .into();
        if let Some(m) = &tokens {
            let (scopes, source) = token_scopes(m, &rec);
            doc["token"] = json!({
                "granted_scopes": scopes,
                "scopes_source": source,
                "expires_at": m.expires_at.map(iso_time),
                "obtained_at": iso_time(m.obtained_at),
                "last_refresh": m.last_refresh.map(iso_time),
                "api_domain": m.api_domain,
                "grant_type": m.grant_type,
            });
        }
        return super::print_json(&doc);
    }
    outln!("connection:  {}", rec.link_name);
    outln!(
        "service:     {}{}",
        rec.service,
        service.map(|s| format!(" ({})", s.def.name)).unwrap_or_else(|| " (not installed)".into())
    );
    outln!("status:      {}", rec.status);
    if !default_of.is_empty() {
        outln!("default of:  {}", default_of.join(", "));
    }
    if let Some(d) = &rec.data_center {
        outln!("data center: {d}");
    }
    if let Some(i) = &rec.instance {
        outln!("instance:    {i}");
    }
    if let Some(e) = &endpoint {
        if let Some(b) = &e.base_url {
            outln!("base URL:    {b}");
        }
        outln!("hosts:       {}", e.allowed_hosts.join(", "));
    }
    if !rec.scopes.is_empty() {
        outln!("scopes:      {}", rec.scopes.join(", "));
    }
    if !shown.is_empty() {
        outln!("params:");
        for (k, v, _) in &shown {
            outln!("  {k:16} {v}");
        }
    }
    if let Some(m) = &tokens {
        outln!("token:");
        let (scopes, source) = token_scopes(m, &rec);
        let list = if scopes.is_empty() { "-".to_string() } else { scopes.join(", ") };
        if source == "granted" {
            outln!("  granted scopes {list}");
        } else {
            outln!("  scopes         {list} (requested; the provider did not say which it granted)");
        }
        outln!("  expires        {}", m.expires_at.map(iso_time).unwrap_or_else(|| "unknown".into()));
        outln!("  last refresh   {}", m.last_refresh.map(iso_time).unwrap_or_else(|| "never".into()));
        if let Some(d) = &m.api_domain {
            outln!("  api domain     {d}");
        }
    }
    Ok(())
}

/// The scopes of a connection's token and where they come from: `granted` (the token answer's
/// `scope`), or `requested` (the answer had none, so the connection's requested scopes).
fn token_scopes<'a>(m: &'a TokenMeta, rec: &'a ConnectionRecord) -> (&'a [String], &'static str) {
    if m.granted_scopes.is_empty() { (&rec.scopes, "requested") } else { (&m.granted_scopes, "granted") }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn iso_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_default()
}

/// Opens the vault and finds a connection and its service, or the exit-4 error naming the link.
fn existing(home: &Home, link: &LinkName) -> Result<(Vault, ConnectionRecord, Catalog)> {
    if !Vault::exists(home) {
        return Err(unknown_connection(link));
    }
    let vault = Vault::open(home)?;
    let rec = vault.get(link)?.ok_or_else(|| unknown_connection(link))?;
    let catalog = Catalog::load(home)?;
    catalog.get(&rec.service).map_err(|_| crate::connection::ConnectionError::ServiceGone {
        link: link.to_string(),
        service: rec.service.to_string(),
    })?;
    Ok((vault, rec, catalog))
}

fn authorize(
    home: &Home,
    link: &LinkName,
    opts: &crate::auth::oauth1_flow::Options,
    opts2: &crate::auth::oauth2_flow::Options,
    json: bool,
) -> Result<()> {
    let (mut vault, rec, catalog) = existing(home, link)?;
    let service = catalog.get(&rec.service)?;
    let kind = service.auth();
    let mut next = None;
    match kind {
        AuthKind::Oauth1 => match crate::auth::oauth1_flow::authorize(&mut vault, service, &rec, opts)? {
            crate::auth::oauth1_flow::Outcome::Connected => {
                if !json {
                    eprintln!("connection `{link}` is authorised (status connected)");
                }
            }
            crate::auth::oauth1_flow::Outcome::AwaitingVerifier => {
                next = Some(format!("linkrun connection authorize {link} --verifier CODE"));
            }
        },
        AuthKind::Oauth2 => {
            crate::auth::oauth2_flow::authorize(&mut vault, service, &rec, opts2)?;
            if !json {
                eprintln!("connection `{link}` is authorised (status connected)");
            }
        }
        kind => {
            if !json {
                eprintln!("connection `{link}` uses {kind} auth, which needs no authorisation: it is ready to use");
            }
        }
    }
    if !json {
        return Ok(());
    }
    let now = vault.get(link)?.unwrap_or(rec);
    let tokens = vault.token_meta(link)?.filter(|m| m.generation > 0);
    let mut doc =
        json!({"link_name": now.link_name, "service": now.service, "auth": kind.to_string(), "status": now.status});
    if let Some(m) = &tokens {
        let (scopes, source) = token_scopes(m, &now);
        doc["granted_scopes"] = json!(scopes);
        doc["scopes_source"] = json!(source);
        doc["expires_at"] = json!(m.expires_at.map(iso_time));
        doc["grant_type"] = json!(m.grant_type);
    }
    if let Some(n) = next {
        doc["next"] = json!(n);
    }
    super::print_json(&doc)
}

/// `connection test LINK`: the service's `[test]` request, then its `[[checks]]` (see
/// [`checks`]) when the test worked. Exit 4 when the test fails or a check is not permitted.
fn test(home: &Home, link: &LinkName, json: bool) -> Result<()> {
    let (vault, rec, catalog) = existing(home, link)?;
    drop(vault);
    let service = catalog.get(&rec.service)?;
    let declared = &service.def.checks;
    if service.def.test.is_none() && declared.is_empty() {
        return Err(ConnectionCmdError::NoTestRequest { service: service.link_name().to_string() }.into());
    }
    let runtime = crate::http::runtime()?;
    let invoker = crate::invoke::Invoker::new(home.clone(), Default::default());
    let mut doc = json!({"link_name": link, "service": rec.service, "request": null, "status": null});
    let mut failure: Option<ConnectionCmdError> = None;
    let mut worked: Option<String> = None;
    if let Some(t) = &service.def.test {
        let req = crate::invoke::ScriptRequest {
            url: t.url.clone(),
            method: t.method.clone(),
            connection: Some(link.clone()),
            ..Default::default()
        };
        let method = t.method.clone().unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
        let status = match runtime.block_on(invoker.send(&req, crate::invoke::DEFAULT_TIMEOUT)) {
            Ok(r) => r.status,
            Err(crate::invoke::Failure::Fatal(e)) => return Err(e),
            Err(crate::invoke::Failure::Invoke(source)) => {
                return Err(ConnectionCmdError::TestNotSent { link: link.to_string(), source }.into());
            }
        };
        doc["request"] = json!({"method": method, "url": t.url});
        doc["status"] = json!(status);
        if (200..400).contains(&status) {
            worked = Some(format!("connection `{link}` works: {method} {} answered HTTP {status}", t.url));
        } else {
            failure =
                Some(ConnectionCmdError::TestFailed { link: link.to_string(), method, url: t.url.clone(), status });
        }
    }
    // The checks only mean something on a connection that works.
    let results = if failure.is_none() && !declared.is_empty() {
        runtime.block_on(checks::run(&invoker, link, declared))?
    } else {
        Vec::new()
    };
    let refused: Vec<&checks::CheckResult> =
        results.iter().filter(|r| r.status != checks::Outcome::Permitted).collect();
    if failure.is_none() && !refused.is_empty() {
        let names: Vec<String> = refused.iter().map(|r| format!("`{}` {}", r.name, r.status)).collect();
        failure = Some(ConnectionCmdError::ChecksRefused {
            link: link.to_string(),
            refused: refused.len(),
            total: results.len(),
            names: names.join(", "),
        });
    }
    if json {
        doc["ok"] = json!(failure.is_none());
        if !declared.is_empty() {
            doc["checks"] = serde_json::to_value(&results)
                .map_err(|e| Error::Io { what: "cannot write the result".into(), source: e.into() })?;
        }
        // A failed test prints its document too; the error line follows it.
        super::print_json(&doc)?;
    } else {
        for r in &results {
            outln!("{}", r.line());
        }
    }
    if let Some(f) = failure {
        return Err(f.into());
    }
    if !json {
        match worked {
            Some(w) => eprintln!("{w}"),
            None => eprintln!("connection `{link}` passed every check ({} permitted)", results.len()),
        }
    }
    Ok(())
}

fn revoke(home: &Home, link: &LinkName, json: bool) -> Result<()> {
    let (mut vault, rec, catalog) = existing(home, link)?;
    let service = catalog.get(&rec.service)?;
    let (what, warning, at_provider) = match service.auth() {
        AuthKind::Oauth1 => {
            crate::auth::oauth1_flow::revoke(&mut vault, link)?;
            ("token is", None, false)
        }
        AuthKind::Oauth2 => {
            let r = crate::auth::oauth2_flow::revoke(&mut vault, service, &rec)?;
            ("tokens are", r.warning, r.at_provider)
        }
        kind => {
            return Err(ConnectionCmdError::NothingToRevoke { link: link.to_string(), kind: kind.to_string() }.into());
        }
    };
    if json {
        let status = vault.get(link)?.map(|r| r.status).unwrap_or(Status::Revoked);
        let mut doc = json!({"link_name": link, "status": status, "revoked_at_provider": at_provider});
        if let Some(w) = &warning {
            doc["warning"] = json!(w);
        }
        return super::print_json(&doc);
    }
    if let Some(w) = &warning {
        eprintln!("{w}");
    }
    eprintln!("revoked connection `{link}`: its {what} forgotten; `linkrun connection authorize {link}` reconnects it");
    Ok(())
}

fn delete(home: &Home, link: &LinkName, yes: bool, keep_remote: bool) -> Result<()> {
    if !Vault::exists(home) {
        return Err(unknown_connection(link));
    }
    let mut vault = Vault::open(home)?;
    if vault.get(link)?.is_none() {
        return Err(unknown_connection(link));
    }
    if !yes {
        if !super::interactive() {
            return Err(ConnectionCmdError::NeedsConfirmation { link: link.to_string() }.into());
        }
        eprint!("delete connection `{link}` and its sealed secrets? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|source| ConnectionCmdError::ReadAnswer { source })?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            eprintln!("kept connection `{link}`");
            return Ok(());
        }
    }
    // Revoked at the provider first, so no live refresh token is left behind there.
    if !keep_remote
        && let Some(rec) = vault.get(link)?
        && vault.token_meta(link)?.is_some()
        && let Ok(catalog) = Catalog::load(home)
        && let Ok(service) = catalog.get(&rec.service)
        && service.auth() == AuthKind::Oauth2
    {
        let r = crate::auth::oauth2_flow::revoke(&mut vault, service, &rec)?;
        match (&r.warning, r.at_provider) {
            (Some(w), _) => eprintln!("{w}"),
            (None, true) => eprintln!("revoked the tokens of `{link}` at the provider"),
            (None, false) => {}
        }
    }
    let was_default: Vec<String> =
        vault.default_connections()?.into_iter().filter(|(_, l)| l == link).map(|(s, _)| s).collect();
    vault.delete(link)?;
    eprintln!("deleted connection `{link}`");
    for s in was_default {
        eprintln!("service `{s}` has no default connection now: set one with `linkrun connection default {s} LINK`");
    }
    Ok(())
}

/// `linkrun connection default SERVICE [LINK] [--clear]`: shows, sets or clears the default
/// connection of a service. A service not in the catalog, a link name that breaks the rule, an
/// unknown connection or one of another service is a usage error (exit 2).
fn default(home: &Home, service: &str, link: Option<&str>, clear: bool, json: bool) -> Result<()> {
    let catalog = Catalog::load(home)?;
    let service = catalog.get(service)?.link_name().clone();
    let show = |default: Option<&LinkName>| -> Result<()> {
        if json {
            return super::print_json(&json!({"service": service, "default": default}));
        }
        match default {
            Some(l) => outln!("{l}"),
            None => eprintln!(
                "service `{service}` has no default connection: set one with `linkrun connection default {service} LINK`"
            ),
        }
        Ok(())
    };
    if clear {
        let was = if Vault::exists(home) { Vault::open(home)?.clear_default_connection(&service)? } else { None };
        if !json {
            match &was {
                Some(l) => eprintln!("cleared the default connection of `{service}` (it was `{l}`)"),
                None => eprintln!("service `{service}` had no default connection"),
            }
        }
        return if json {
            super::print_json(&json!({"service": service, "default": null, "cleared": was}))
        } else {
            Ok(())
        };
    }
    let Some(link) = link else {
        let current = if Vault::exists(home) { Vault::open(home)?.default_connection(&service)? } else { None };
        return show(current.as_ref());
    };
    let link = check_link(link)?;
    let unknown = || {
        Error::Usage(format!(
            "unknown connection `{link}`: a default must be an existing connection of service `{service}`; see `linkrun connection list`, or create it with `linkrun connection create {link} --service {service}`"
        ))
    };
    if !Vault::exists(home) {
        return Err(unknown());
    }
    let mut vault = Vault::open(home)?;
    let rec = vault.get(&link)?.ok_or_else(unknown)?;
    if rec.service != service.as_str() {
        return Err(Error::Usage(format!(
            "connection `{link}` belongs to service `{}`, not `{service}`: choose a connection of `{service}` (see `linkrun connection list`)",
            rec.service
        )));
    }
    if vault.set_default_connection(&link)?.is_none() {
        return Err(unknown());
    }
    if json {
        return show(Some(&link));
    }
    eprintln!("`{link}` is now the default connection of `{service}`");
    Ok(())
}
