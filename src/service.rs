//! The service TOML schema (`connections/README.md` documents it for users) and its validation.
//!
//! A service says how to talk to one API: where it lives (one base URL, one per data center, or an
//! instance template), which auth kind it uses and where that kind's parameters go, which hosts may
//! receive credentials, and which params a connection must supply. Parsing rejects unknown keys;
//! validation rejects what parses but cannot work, each error naming the file and line.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};
use strum::{AsRefStr, Display, EnumString, IntoStaticStr, VariantNames};
use toml::Spanned;
use url::Url;

pub use crate::auth::rfc5849::SignatureMethod;
pub use crate::http::HttpMethod;
pub use crate::http::budget::LimitsDef;
pub use crate::http::pagination::PaginationDef;
pub use crate::http::retry::RetryDef;
use crate::http::rules::split_host_entry;
pub use crate::http::rules::{host_matches, host_port_matches};
use crate::link_name::LinkName;

/// Implements `TryFrom<String>` (which serde reads the enum through) with strum's names, so a
/// value that is not one of them is refused naming the key and listing the names:
/// "unknown WHAT `VALUE`WHERE: use one of ...".
macro_rules! toml_names {
    ($ty:ty, $what:literal, $where:literal) => {
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                s.parse().map_err(|_| {
                    format!("unknown {} `{s}`{}: use {}", $what, $where, one_of(<$ty as strum::VariantNames>::VARIANTS))
                })
            }
        }
    };
}

/// An error in a service definition, located in its file.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ServiceError {
    /// The file the definition came from (`<built-in>/NAME.toml` for embedded ones).
    pub file: String,
    /// 1-based line of the fault (1 when unknown).
    pub line: usize,
    /// One sentence naming the fault and the fix.
    pub message: String,
}

/// The auth kinds. Each implies its own params (see [`implied_params`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, EnumString, IntoStaticStr, VariantNames, Display,
)]
#[serde(try_from = "String", into = "&'static str")]
#[strum(serialize_all = "snake_case")]
pub enum AuthKind {
    /// No credentials.
    None,
    /// One or more API-key params placed per `placement`.
    ApiKey,
    /// HTTP Basic: `username` and `password` in the `Authorization` header.
    Basic,
    /// OAuth 1.0a (RFC 5849).
    Oauth1,
    /// OAuth 2.0 (RFC 6749).
    Oauth2,
}

toml_names!(AuthKind, "auth", "");

/// Where parameters go on a request.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, EnumString, IntoStaticStr, VariantNames, Display,
)]
#[serde(try_from = "String", into = "&'static str")]
#[strum(serialize_all = "snake_case")]
pub enum Placement {
    /// An HTTP header.
    Header,
    /// The URL's query string.
    Query,
    /// The `application/x-www-form-urlencoded` body.
    Form,
    /// A top-level field of the JSON object body (API keys and non-auth params only).
    Json,
}

toml_names!(Placement, "placement", "");

/// One `[[params]]` entry: something the user supplies when creating a connection.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ParamDef {
    /// The name: for api_key the header / query / form field name.
    pub key: Spanned<String>,
    /// What the user is asked for.
    #[serde(default)]
    pub label: Option<String>,
    /// Masked in output; never shown in full.
    #[serde(default)]
    pub secret: bool,
    /// Params are required unless optional.
    #[serde(default)]
    pub optional: bool,
    /// A non-auth param sent on every request, or for api_key an override of the service placement.
    #[serde(default)]
    pub placement: Option<Placement>,
}

/// One data center: `[data_centers.NAME]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataCenterDef {
    /// Base URL of the API in this data center.
    pub base_url: Spanned<String>,
    /// Hosts allowed in this data center (default: the service's, else the base URL's host).
    #[serde(default)]
    pub allowed_hosts: Option<Spanned<Vec<String>>>,
    /// The OAuth accounts server in this data center (`{accounts_url}` in OAuth URLs).
    #[serde(default)]
    pub accounts_url: Option<Spanned<String>>,
}

/// One named instance: `[instances.NAME]`, which `--instance NAME` picks instead of filling the
/// `instance_url` template (e.g. `sandbox`, the local sandbox).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceDef {
    /// Base URL of this instance (may use `${ENV:-default}`).
    pub base_url: Spanned<String>,
    /// Hosts allowed for this instance (default: the base URL's host).
    #[serde(default)]
    pub allowed_hosts: Option<Spanned<Vec<String>>>,
}

/// The `[oauth2]` table (authorised in the OAuth 2.0 issue; parsed and validated now).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Def {
    /// Authorization endpoint (may use `{accounts_url}`, `{instance}`, `{base_url}`).
    #[serde(default)]
    pub authorize_url: Option<Spanned<String>>,
    /// Token endpoint.
    pub token_url: Spanned<String>,
    /// Revocation endpoint.
    #[serde(default)]
    pub revoke_url: Option<Spanned<String>>,
    /// `rfc7009` (default: form body `token`, client auth) or `query` (`?token=...`: Zoho,
    /// ServiceNow).
    #[serde(default)]
    pub revoke_style: Option<RevokeStyle>,
    /// Default scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `comma`, `space` or `plus`.
    #[serde(default)]
    pub scope_delimiter: Option<ScopeDelimiter>,
    /// Prefix of the `Authorization` header (`Bearer`, Zoho: `Zoho-oauthtoken`).
    #[serde(default)]
    pub header_prefix: Option<String>,
    /// How the client authenticates at the token endpoint: `form`, `basic` or `json`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Extra authorize parameters (Zoho: `access_type = "offline"`, `prompt = "consent"`).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// PKCE S256 on the code grant (default true).
    #[serde(default)]
    pub pkce: Option<bool>,
    /// Allowed grants: `authorization_code`, `password`, `client_credentials`.
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    /// Whether the token response's `api_domain` replaces the base URL host.
    #[serde(default)]
    pub use_api_domain: bool,
    /// Seconds before expiry at which a token is refreshed.
    #[serde(default)]
    pub refresh_margin: Option<u64>,
    /// Fixed port of the loopback redirect URI.
    #[serde(default)]
    pub redirect_port: Option<u16>,
}

/// How to revoke at a provider: RFC 7009 (form body `token` + `token_type_hint`, client auth) or
/// the query form of Zoho and ServiceNow (`?token=...`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, EnumString, IntoStaticStr, VariantNames, Display,
)]
#[serde(try_from = "String", into = "&'static str")]
#[strum(serialize_all = "snake_case")]
pub enum RevokeStyle {
    /// RFC 7009.
    Rfc7009,
    /// `POST {revoke_url}?token=...`.
    Query,
}

toml_names!(RevokeStyle, "revoke_style", " in `[oauth2]`");

/// The OAuth 2.0 grants a service may allow (RFC 6749 §4.1, §4.3, §4.4).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Deserialize,
    Serialize,
    EnumString,
    IntoStaticStr,
    AsRefStr,
    VariantNames,
    Display,
)]
#[serde(try_from = "String", into = "&'static str")]
#[strum(serialize_all = "snake_case")]
pub enum GrantType {
    /// The authorization code grant (`--grant code`).
    AuthorizationCode,
    /// The resource owner password credentials grant.
    Password,
    /// The client credentials grant.
    ClientCredentials,
}

toml_names!(GrantType, "grant type", " in `[oauth2]`");

/// OAuth 2.0 scope delimiters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, EnumString, IntoStaticStr, VariantNames, Display,
)]
#[serde(try_from = "String", into = "&'static str")]
#[strum(serialize_all = "snake_case")]
pub enum ScopeDelimiter {
    /// `,` (Zoho).
    Comma,
    /// ` ` (RFC 6749).
    Space,
    /// `+`.
    Plus,
}

toml_names!(ScopeDelimiter, "scope_delimiter", " in `[oauth2]`");

/// OAuth 2.0 client authentication at the token endpoint.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, EnumString, IntoStaticStr, VariantNames, Display,
)]
#[serde(try_from = "String", into = "&'static str")]
#[strum(serialize_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    Form,
    /// HTTP Basic.
    Basic,
    /// Every token-request parameter, `client_id` and `client_secret` with them, as a JSON
    /// object body (`application/json`), for token endpoints that want it (Salesforce Marketing
    /// Cloud's `v2/token`, for one); answers are read as usual.
    Json,
}

toml_names!(ClientAuth, "client_auth", " in `[oauth2]`");

/// The `[oauth1]` table (signed in the OAuth 1.0a issue; parsed and validated now).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth1Def {
    /// Temporary-credential endpoint.
    #[serde(default)]
    pub request_token_url: Option<Spanned<String>>,
    /// Resource-owner authorization endpoint.
    #[serde(default)]
    pub authorize_url: Option<Spanned<String>>,
    /// Token endpoint.
    #[serde(default)]
    pub access_token_url: Option<Spanned<String>>,
    /// How requests are signed.
    pub signature_method: SignatureMethod,
    /// Optional `realm` of the `Authorization` header.
    #[serde(default)]
    pub realm: Option<String>,
}

toml_names!(SignatureMethod, "signature_method", " in `[oauth1]`");

/// The `[test]` table: the request `connection test` makes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TestDef {
    /// URL, absolute or relative to the base URL.
    pub url: String,
    /// HTTP method (default GET).
    #[serde(default, rename = "type")]
    pub method: Option<String>,
}

/// The `[example]` table: the request of the ready-to-paste snippet in `service show`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExampleDef {
    /// URL, absolute or relative to the base URL (e.g. `/crm/v7/Leads?fields=Last_Name,Email`).
    pub url: String,
    /// HTTP method (default GET).
    #[serde(default, rename = "type")]
    pub method: Option<HttpMethod>,
}

/// One `[[checks]]` entry: a read that `connection test` makes to learn whether the connection
/// may see one table or module, and how its answer is judged (see `connections/README.md`,
/// "Checks"). A check is always a GET: it never changes data.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckDef {
    /// What is checked, as the report names it (`Leads`, `customer_contact`).
    pub name: Spanned<String>,
    /// The URL, relative to the connection's base URL.
    pub url: Spanned<String>,
    /// Dotted JSON path of the list of records in a permitted answer (`data`, `result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// Whether records should be visible: an empty list (or an empty answer) then looks hidden.
    #[serde(default)]
    pub expect_records: bool,
    /// Dotted JSON path of the error code in an answer (default `code`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_path: Option<String>,
    /// Error codes at `code_path` that mean forbidden whatever the status (401 and 403 always do).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden_codes: Vec<String>,
    /// What to grant when the check is forbidden or looks hidden; `{link}` is the link name.
    pub fix: Spanned<String>,
}

/// The most `[[checks]]` entries a service may declare.
pub const MAX_CHECKS: usize = 64;

/// Refuses checks that cannot work: too many, a name used twice or empty, an absolute or empty
/// URL, `expect_records` without `records`, an empty path or fix. Gives the span and the message.
fn check_checks(checks: &[CheckDef]) -> Result<(), (Range<usize>, String)> {
    if let Some(c) = checks.get(MAX_CHECKS) {
        return Err((
            c.name.span(),
            format!(
                "the service declares {} `[[checks]]` entries, more than the limit of {MAX_CHECKS}: keep one per table or module",
                checks.len()
            ),
        ));
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(checks.len());
    for c in checks {
        let name = c.name.get_ref();
        if name.trim().is_empty() || name.chars().any(char::is_control) {
            return Err((
                c.name.span(),
                "a `[[checks]]` entry has an empty `name`: name the table or module it checks, like `name = \"Leads\"`"
                    .to_string(),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err((
                c.name.span(),
                format!("check `{name}` is declared twice: keep one `[[checks]]` entry per name"),
            ));
        }
        let url = c.url.get_ref();
        if url.trim().is_empty() || crate::http::rules::has_http_scheme(url) || url.starts_with("//") {
            return Err((
                c.url.span(),
                format!(
                    "the `url` `{url}` of check `{name}` is not a relative URL: write the path after the connection's base URL, like `/crm/v7/Leads?fields=id&per_page=1`"
                ),
            ));
        }
        if c.expect_records && c.records.is_none() {
            return Err((
                c.name.span(),
                format!(
                    "check `{name}` has `expect_records = true` but no `records`: give the JSON path of the list of records, like `records = \"result\"`"
                ),
            ));
        }
        for (key, path) in [("records", &c.records), ("code_path", &c.code_path)] {
            if path.as_deref().is_some_and(|p| p.split('.').any(str::is_empty)) {
                return Err((
                    c.name.span(),
                    format!(
                        "the `{key}` of check `{name}` is not a JSON path: write keys joined with dots, like `data` or `error.message`"
                    ),
                ));
            }
        }
        if c.fix.get_ref().trim().is_empty() {
            return Err((
                c.fix.span(),
                format!("check `{name}` has an empty `fix`: say what to grant, like the role or the scope and how"),
            ));
        }
    }
    Ok(())
}

/// The largest service file linkrun reads (1 MiB): a real definition is a few KiB.
pub const MAX_SERVICE_FILE_SIZE: u64 = 1024 * 1024;

/// The most `[[params]]` entries a service may declare.
pub const MAX_PARAMS: usize = 256;

toml_names!(HttpMethod, "`[example]` type", "");

/// A service definition as written in TOML.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// Unique name used by `--service` (checked against the link-name rule as it is read).
    pub link_name: Spanned<LinkName>,
    /// Display name.
    pub name: String,
    /// One line on what it is.
    #[serde(default)]
    pub description: Option<String>,
    /// The auth kind.
    pub auth: Spanned<AuthKind>,
    /// Where the auth kind's parameters go (default header).
    #[serde(default)]
    pub placement: Option<Spanned<Placement>>,
    /// A single base URL.
    #[serde(default)]
    pub base_url: Option<Spanned<String>>,
    /// Per-instance base URL, e.g. `https://{instance}.service-now.com`.
    #[serde(default)]
    pub instance_url: Option<Spanned<String>>,
    /// Named instances that `--instance NAME` picks before the `instance_url` template.
    #[serde(default)]
    pub instances: BTreeMap<String, InstanceDef>,
    /// Per-data-center base URLs.
    #[serde(default)]
    pub data_centers: BTreeMap<String, DataCenterDef>,
    /// The data center used when `--dc` is not given.
    #[serde(default)]
    pub default_data_center: Option<Spanned<String>>,
    /// Whether an absolute URL on another data center's API host (its `base_url` host) is sent
    /// to the connection's own data center (default true); `false` refuses such URLs.
    #[serde(default)]
    pub dc_portable_urls: Option<bool>,
    /// Hosts credentials may be sent to (`*.example.com` matches subdomains only).
    #[serde(default)]
    pub allowed_hosts: Option<Spanned<Vec<String>>>,
    /// Params a connection supplies.
    #[serde(default)]
    pub params: Vec<ParamDef>,
    /// OAuth 2.0 settings.
    #[serde(default)]
    pub oauth2: Option<OAuth2Def>,
    /// OAuth 1.0a settings.
    #[serde(default)]
    pub oauth1: Option<OAuth1Def>,
    /// The verification request of `connection test`.
    #[serde(default)]
    pub test: Option<TestDef>,
    /// The request of the snippet `service show` prints (default: an empty URL, like Zoho's).
    #[serde(default)]
    pub example: Option<ExampleDef>,
    /// Free text shown under "set up at the provider" in `service show`: where to register the
    /// client, where to find a param's value, provider-specific steps.
    #[serde(default)]
    pub setup_notes: Option<String>,
    /// How failed answers are retried (`[retry]`; absent: the defaults of [`crate::http::retry`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Spanned<RetryDef>>,
    /// The rate budget of each connection (`[limits]`; absent: none). A connection's own values
    /// (`linkrun connection limits`) go over these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Spanned<LimitsDef>>,
    /// The permission checks of `connection test` (`[[checks]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckDef>,
    /// How a listing's pages follow each other (`[pagination]`; absent: `invoke_pages` needs the
    /// request's `pagination` key). See [`crate::http::pagination`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Spanned<PaginationDef>>,
}

/// A validated service with the file it came from.
#[derive(Debug, Clone)]
pub struct Service {
    /// The definition.
    pub def: ServiceDef,
    /// Where it came from.
    pub origin: Origin,
    /// The file name shown in errors.
    pub file: String,
}

/// Where a service definition came from: serialised snake case, displayed kebab case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "kebab-case")]
pub enum Origin {
    /// Embedded in the binary from `connections/`.
    BuiltIn,
    /// Installed by `service add` into `$LINKRUN_HOME/services/`.
    Installed,
    /// `./connections/*.toml` of the current folder.
    Local,
}

/// A param as a connection sees it: declared or implied by the auth kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Name.
    pub key: String,
    /// What the user is asked for.
    pub label: String,
    /// Masked in output.
    pub secret: bool,
    /// Not required at create time.
    pub optional: bool,
    /// Where it is sent on each request, if anywhere.
    pub placement: Option<Placement>,
    /// Implied by the auth kind (consumed by the auth layer, not sent as a plain param).
    pub implied: bool,
}

/// Where a connection's requests go, resolved from the data center or instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Base URL for relative script URLs.
    pub base_url: Option<String>,
    /// Host patterns that may receive credentials.
    pub allowed_hosts: Vec<String>,
    /// The data center's accounts server, if any.
    pub accounts_url: Option<String>,
}

impl Service {
    /// Parses and validates a definition. `file` is only used in messages.
    pub fn parse(text: &str, file: &str, origin: Origin) -> Result<Service, ServiceError> {
        if text.len() as u64 > MAX_SERVICE_FILE_SIZE {
            return Err(ServiceError {
                file: file.to_string(),
                line: 1,
                message: format!(
                    "the service file is larger than {}: a service definition is a few KiB; remove what it does not need",
                    crate::files::size_text(MAX_SERVICE_FILE_SIZE)
                ),
            });
        }
        let def: ServiceDef = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            ServiceError { file: file.to_string(), line, message: toml_message(&e) }
        })?;
        let service = Service { def, origin, file: file.to_string() };
        service.validate(text)?;
        Ok(service)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path, origin: Origin) -> Result<Service, ServiceError> {
        let file = path.display().to_string();
        let text = crate::files::read_text_capped(path, MAX_SERVICE_FILE_SIZE).map_err(|e| ServiceError {
            file: file.clone(),
            line: 1,
            message: match e {
                crate::files::ReadError::Io { reason, .. } => {
                    format!("cannot read the service file: {reason}; check its permissions or remove it")
                }
                other => format!("cannot read the service file: {other}"),
            },
        })?;
        Service::parse(&text, &file, origin)
    }

    /// The link name.
    pub fn link_name(&self) -> &LinkName {
        self.def.link_name.get_ref()
    }

    /// The auth kind.
    pub fn auth(&self) -> AuthKind {
        *self.def.auth.get_ref()
    }

    /// The placement of the auth kind's parameters (default header).
    pub fn placement(&self) -> Placement {
        self.def.placement.as_ref().map(|p| *p.get_ref()).unwrap_or(Placement::Header)
    }

    /// Declared params plus the ones the auth kind implies, implied first.
    pub fn params(&self) -> Vec<Param> {
        let mut out: Vec<Param> = implied_params(self.auth())
            .iter()
            .map(|&(key, label, secret, optional)| {
                let declared = self.def.params.iter().find(|p| p.key.get_ref() == key);
                Param {
                    key: key.to_string(),
                    label: declared.and_then(|d| d.label.clone()).unwrap_or_else(|| label.to_string()),
                    secret,
                    optional,
                    placement: None,
                    implied: true,
                }
            })
            .collect();
        let auth = self.auth();
        let mut seen: HashSet<String> = out.iter().map(|o| o.key.clone()).collect();
        for p in &self.def.params {
            if !seen.insert(p.key.get_ref().clone()) {
                continue;
            }
            let placement = match (p.placement, auth) {
                (Some(pl), _) => Some(pl),
                (None, AuthKind::ApiKey) => Some(self.placement()),
                (None, _) => None,
            };
            out.push(Param {
                key: p.key.get_ref().clone(),
                label: p.label.clone().unwrap_or_else(|| p.key.get_ref().clone()),
                secret: p.secret,
                optional: p.optional,
                placement,
                implied: false,
            });
        }
        out
    }

    /// The data centers, in name order.
    pub fn data_centers(&self) -> Vec<&str> {
        self.def.data_centers.keys().map(String::as_str).collect()
    }

    /// The named instances (`[instances.*]`), in name order.
    pub fn named_instances(&self) -> Vec<&str> {
        self.def.instances.keys().map(String::as_str).collect()
    }

    /// Resolves base URL and allowed hosts for a connection's data center or instance.
    ///
    /// An instance is, in this order: a named `[instances.NAME]` entry; a full host name (it has a
    /// dot: a custom domain) giving `https://HOST` with only that host allowed; else a name filling
    /// the `instance_url` template. `dc` must be one of the service's data centers (checked at connection create).
    pub fn endpoint(&self, dc: Option<&str>, instance: Option<&str>) -> Endpoint {
        let service_hosts = self.def.allowed_hosts.as_ref().map(|h| h.get_ref().clone());
        let (base, hosts, accounts) = match dc.and_then(|d| self.def.data_centers.get(d)) {
            Some(d) => (
                Some(d.base_url.get_ref().clone()),
                d.allowed_hosts.as_ref().map(|h| h.get_ref().clone()).or(service_hosts),
                d.accounts_url.as_ref().map(|a| substitute_env(a.get_ref())),
            ),
            None => match (instance, &self.def.instance_url) {
                (Some(i), Some(_)) if self.def.instances.contains_key(i) => {
                    let named = &self.def.instances[i];
                    (
                        Some(named.base_url.get_ref().clone()),
                        named.allowed_hosts.as_ref().map(|h| h.get_ref().clone()),
                        None,
                    )
                }
                // A full host name (a custom domain, given as the `hostname` param): only that host.
                (Some(i), Some(_)) if i.contains('.') => {
                    (Some(format!("https://{i}")), Some(vec![i.to_string()]), None)
                }
                (Some(i), Some(t)) => (Some(t.get_ref().replace("{instance}", i)), service_hosts, None),
                _ => (self.def.base_url.as_ref().map(|b| b.get_ref().clone()), service_hosts, None),
            },
        };
        let base = base.map(|b| substitute_env(&b));
        let allowed_hosts = match hosts {
            Some(h) => {
                h.iter().map(|p| p.replace("{instance}", instance.unwrap_or_default()).to_ascii_lowercase()).collect()
            }
            None => base
                .as_deref()
                .and_then(|b| Url::parse(b).ok())
                .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase()))
                .into_iter()
                .collect(),
        };
        Endpoint { base_url: base, allowed_hosts, accounts_url: accounts }
    }

    fn err(&self, text: &str, span: Option<Range<usize>>, message: String) -> ServiceError {
        ServiceError { file: self.file.clone(), line: span.map(|s| line_of(text, s.start)).unwrap_or(1), message }
    }

    /// Refuses OAuth URLs (and the `accounts_url` or base URLs they use) that would carry client
    /// secrets, tokens or signed requests over plain HTTP to a host that is not loopback.
    fn check_secret_urls(&self, text: &str) -> Result<(), ServiceError> {
        let d = &self.def;
        let mut keys: Vec<(&str, &Spanned<String>)> = Vec::new();
        if let Some(o) = &d.oauth2 {
            keys.push(("token_url", &o.token_url));
            keys.extend(o.authorize_url.iter().map(|u| ("authorize_url", u)));
            keys.extend(o.revoke_url.iter().map(|u| ("revoke_url", u)));
        }
        if let Some(o) = &d.oauth1 {
            keys.extend(o.request_token_url.iter().map(|u| ("request_token_url", u)));
            keys.extend(o.authorize_url.iter().map(|u| ("authorize_url", u)));
            keys.extend(o.access_token_url.iter().map(|u| ("access_token_url", u)));
        }
        let table = if d.oauth2.is_some() { "oauth2" } else { "oauth1" };
        let fix = "use an https:// URL (plain HTTP is allowed only to 127.0.0.1, ::1 and localhost)";
        for (key, u) in keys {
            let raw = u.get_ref();
            if let Some(host) = plain_http_host(raw) {
                return Err(self.err(
                    text,
                    Some(u.span()),
                    format!("`{key}` `{raw}` in `[{table}]` is plain HTTP to `{host}`, which would send secrets in clear: {fix}"),
                ));
            }
            let mut used: Vec<(String, &Spanned<String>)> = Vec::new();
            if raw.contains("{accounts_url}") {
                for (name, dc) in &d.data_centers {
                    used.extend(dc.accounts_url.iter().map(|a| (format!("`accounts_url` of data center `{name}`"), a)));
                }
            }
            if raw.contains("{base_url}") {
                used.extend(d.base_url.iter().map(|b| ("`base_url`".to_string(), b)));
                used.extend(d.instance_url.iter().map(|b| ("`instance_url`".to_string(), b)));
                for (name, dc) in &d.data_centers {
                    used.push((format!("`base_url` of data center `{name}`"), &dc.base_url));
                }
                for (name, inst) in &d.instances {
                    used.push((format!("`base_url` of instance `{name}`"), &inst.base_url));
                }
            }
            for (what, v) in used {
                if let Some(host) = plain_http_host(v.get_ref()) {
                    return Err(self.err(
                        text,
                        Some(v.span()),
                        format!(
                            "{what} `{}` is plain HTTP to `{host}`, and `{key}` in `[{table}]` uses it, which would send secrets in clear: {fix}",
                            v.get_ref()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate(&self, text: &str) -> Result<(), ServiceError> {
        let d = &self.def;
        if let Some(p) = d.params.get(MAX_PARAMS) {
            return Err(self.err(
                text,
                Some(p.key.span()),
                format!(
                    "the service declares {} `[[params]]` entries, more than the limit of {MAX_PARAMS}: keep only the params a connection needs",
                    d.params.len()
                ),
            ));
        }
        if let Some(r) = &d.retry {
            r.get_ref().check().map_err(|m| self.err(text, Some(r.span()), format!("in `[retry]`: {m}")))?;
        }
        if let Some(l) = &d.limits {
            l.get_ref().check().map_err(|m| self.err(text, Some(l.span()), format!("in `[limits]`: {m}")))?;
        }
        check_checks(&d.checks).map_err(|(span, m)| self.err(text, Some(span), m))?;
        if let Some(p) = &d.pagination {
            p.get_ref().check().map_err(|m| self.err(text, Some(p.span()), format!("in `[pagination]`: {m}")))?;
            crate::http::pagination::Paging::resolve(Some(p.get_ref()), None)
                .map_err(|m| self.err(text, Some(p.span()), format!("in `[pagination]`: {m}")))?;
        }
        let auth = self.auth();
        if let Some(p) = &d.placement {
            let ok = match auth {
                AuthKind::None | AuthKind::ApiKey => true,
                AuthKind::Oauth1 => *p.get_ref() != Placement::Json,
                AuthKind::Oauth2 => !matches!(p.get_ref(), Placement::Form | Placement::Json),
                AuthKind::Basic => *p.get_ref() == Placement::Header,
            };
            if !ok {
                return Err(self.err(
                    text,
                    Some(p.span()),
                    format!(
                        "placement `{}` does not work with auth `{auth}`: {}",
                        p.get_ref(),
                        match auth {
                            AuthKind::Basic =>
                                "basic credentials always go in the Authorization header; remove `placement`",
                            AuthKind::Oauth1 =>
                                "an OAuth 1.0a signature covers the query and form parameters only; use `header`, `query` or `form`",
                            _ => "an OAuth 2.0 token goes in the header or the query; use `header` or `query`",
                        }
                    ),
                ));
            }
        }
        let sources = [d.base_url.is_some(), d.instance_url.is_some(), !d.data_centers.is_empty()];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(self.err(
                text,
                Some(d.link_name.span()),
                "give only one of `base_url`, `instance_url` and `[data_centers.*]`".to_string(),
            ));
        }
        let mut urls: Vec<&Spanned<String>> = Vec::new();
        urls.extend(d.base_url.iter());
        for dc in d.data_centers.values() {
            urls.push(&dc.base_url);
            urls.extend(dc.accounts_url.iter());
        }
        if let Some(o) = &d.oauth2 {
            urls.push(&o.token_url);
            urls.extend(o.authorize_url.iter());
            urls.extend(o.revoke_url.iter());
        }
        if let Some(o) = &d.oauth1 {
            urls.extend(o.request_token_url.iter());
            urls.extend(o.authorize_url.iter());
            urls.extend(o.access_token_url.iter());
        }
        for u in urls {
            check_url(u.get_ref(), false).map_err(|m| self.err(text, Some(u.span()), m.to_string()))?;
        }
        if let Some(t) = &d.instance_url {
            if !t.get_ref().contains("{instance}") {
                return Err(self.err(
                    text,
                    Some(t.span()),
                    format!("`instance_url` `{}` has no `{{instance}}` placeholder: write it like `https://{{instance}}.service-now.com`", t.get_ref()),
                ));
            }
            check_url(t.get_ref(), true).map_err(|m| self.err(text, Some(t.span()), m.to_string()))?;
        }
        if let Some(dc) = &d.default_data_center
            && !d.data_centers.contains_key(dc.get_ref())
        {
            return Err(self.err(
                text,
                Some(dc.span()),
                format!(
                    "`default_data_center` `{}` is not one of `[data_centers.*]`: add it or pick one of {}",
                    dc.get_ref(),
                    list(d.data_centers.keys())
                ),
            ));
        }
        if !d.instances.is_empty() && d.instance_url.is_none() {
            return Err(self.err(
                text,
                Some(d.link_name.span()),
                "`[instances.*]` needs `instance_url`: named instances only add to an instance template".to_string(),
            ));
        }
        for (name, inst) in &d.instances {
            if !is_instance_name(name) || name.chars().any(|c| c.is_ascii_uppercase()) {
                return Err(self.err(
                    text,
                    Some(inst.base_url.span()),
                    format!(
                        "instance name `{name}` is not valid: use lowercase letters, digits and dashes, like `sandbox`"
                    ),
                ));
            }
            check_url(inst.base_url.get_ref(), false)
                .map_err(|m| self.err(text, Some(inst.base_url.span()), m.to_string()))?;
        }
        for dc in d.data_centers.keys() {
            if LinkName::parse(dc).is_err() {
                return Err(self.err(
                    text,
                    None,
                    format!("data center name `{dc}` is not valid: use lowercase letters, digits and underscores, like `us` or `eu`"),
                ));
            }
        }
        let host_lists = d
            .allowed_hosts
            .iter()
            .chain(d.data_centers.values().filter_map(|dc| dc.allowed_hosts.as_ref()))
            .chain(d.instances.values().filter_map(|i| i.allowed_hosts.as_ref()));
        for hosts in host_lists {
            for h in hosts.get_ref() {
                check_host_pattern(h).map_err(|m| self.err(text, Some(hosts.span()), m.to_string()))?;
            }
        }
        let mut seen: HashSet<&str> = HashSet::with_capacity(d.params.len());
        for p in &d.params {
            let key = p.key.get_ref();
            if key.is_empty() || key.chars().any(|c| c.is_control() || c == ' ') {
                return Err(self.err(
                    text,
                    Some(p.key.span()),
                    format!(
                        "param key `{key}` is empty or has spaces: give the exact header, query or form field name"
                    ),
                ));
            }
            if !seen.insert(key.as_str()) {
                return Err(self.err(
                    text,
                    Some(p.key.span()),
                    format!("param `{key}` is declared twice: keep one `[[params]]` entry per key"),
                ));
            }
            if p.placement == Some(Placement::Form) && auth != AuthKind::ApiKey {
                // Form params only make sense when the request has a form body; allowed, checked per request.
            }
        }
        if auth == AuthKind::ApiKey && d.params.is_empty() {
            return Err(self.err(
                text,
                Some(d.auth.span()),
                "auth `api_key` needs at least one `[[params]]` entry naming the key, e.g. key = \"X-Api-Key\""
                    .to_string(),
            ));
        }
        let (needs, table) = match auth {
            AuthKind::Oauth2 => (d.oauth2.is_none(), "oauth2"),
            AuthKind::Oauth1 => (d.oauth1.is_none(), "oauth1"),
            _ => (false, ""),
        };
        if needs {
            return Err(self.err(
                text,
                Some(d.auth.span()),
                format!("auth `{auth}` needs an `[{table}]` table: see connections/README.md"),
            ));
        }
        if auth != AuthKind::Oauth2 && d.oauth2.is_some() {
            return Err(self.err(
                text,
                Some(d.auth.span()),
                format!(
                    "an `[oauth2]` table is only read with auth = \"oauth2\", not `{auth}`: remove it or change `auth`"
                ),
            ));
        }
        if auth != AuthKind::Oauth1 && d.oauth1.is_some() {
            return Err(self.err(
                text,
                Some(d.auth.span()),
                format!(
                    "an `[oauth1]` table is only read with auth = \"oauth1\", not `{auth}`: remove it or change `auth`"
                ),
            ));
        }
        self.check_secret_urls(text)?;
        if auth != AuthKind::None
            && d.allowed_hosts.is_none()
            && d.base_url.is_none()
            && d.instance_url.is_none()
            && d.data_centers.is_empty()
        {
            return Err(self.err(
                text,
                Some(d.auth.span()),
                "a service with credentials needs `allowed_hosts` or a base URL, so linkrun knows which hosts may receive them".to_string(),
            ));
        }
        Ok(())
    }
}

/// The params each auth kind implies: (key, label, secret, optional).
pub fn implied_params(auth: AuthKind) -> &'static [(&'static str, &'static str, bool, bool)] {
    match auth {
        AuthKind::None | AuthKind::ApiKey => &[],
        AuthKind::Basic => &[("username", "Username", false, false), ("password", "Password", true, false)],
        AuthKind::Oauth2 => &[
            ("client_id", "Client ID", false, false),
            ("client_secret", "Client secret", true, false),
            ("username", "Username (password grant)", false, true),
            ("password", "Password (password grant)", true, true),
        ],
        AuthKind::Oauth1 => &[
            ("consumer_key", "Consumer key", false, false),
            ("consumer_secret", "Consumer secret", true, true),
            ("private_key", "Private key (PEM, RSA methods)", true, true),
            ("token", "Access token", true, true),
            ("token_secret", "Access token secret", true, true),
        ],
    }
}

/// Whether `name` is an instance name: 1 to 63 letters, digits and dashes, not starting with a dash
/// (the part before `.service-now.com`).
pub fn is_instance_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
}

/// Whether `host` is a full DNS host name usable as a custom-domain instance: at least two labels of
/// letters, digits and dashes (1 to 63 each, not starting or ending with a dash), 253 characters at
/// most; no scheme, port, path or wildcard.
pub fn is_dns_host_name(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    host.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && labels.last().is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()) || labels.len() == 4)
}

/// Replaces `${NAME:-default}` and `${NAME}` with environment values (used for the sandbox URL).
pub fn substitute_env(s: &str) -> String {
    substitute(s, |name| std::env::var(name).ok())
}

/// [`substitute_env`] without the environment: every `${NAME:-default}` becomes its default.
fn substitute_defaults(s: &str) -> String {
    substitute(s, |_| None)
}

/// Replaces `${NAME:-default}` and `${NAME}` with `lookup(NAME)` when that is a non-empty value,
/// else with the default (or nothing).
fn substitute(s: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = &after[..end];
        let (name, default) = expr.split_once(":-").unwrap_or((expr, ""));
        match lookup(name) {
            Some(v) if !v.is_empty() => out.push_str(&v),
            _ => out.push_str(default),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// A value of a service file that is not what its key needs: the message of a
/// [`ServiceError`] at that value's line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ValueProblem {
    /// Not an http(s) URL (or URL template).
    #[error("`{raw}` is not an http(s) URL{}: write it like `https://api.example.com/v1`", if *template { " template" } else { "" })]
    NotUrl { raw: String, template: bool },
    /// Not a host name (with an optional port).
    #[error(
        "allowed host `{host}` is not a host name: write `api.example.com`, `*.example.com`, `127.0.0.1` or `127.0.0.1:8080` (no scheme or path)"
    )]
    NotHost { host: String },
}

fn check_url(raw: &str, template: bool) -> Result<(), ValueProblem> {
    let probe = substitute_env(raw)
        .replace("{instance}", "instance")
        .replace("{accounts_url}", "https://accounts.example")
        .replace("{base_url}", "https://base.example");
    match Url::parse(&probe) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host_str().is_some() => Ok(()),
        _ => Err(ValueProblem::NotUrl { raw: raw.to_string(), template }),
    }
}

fn check_host_pattern(h: &str) -> Result<(), ValueProblem> {
    let ok = split_host_entry(h).is_some_and(|(host, _)| {
        let body = host.strip_prefix("*.").unwrap_or(host).replace("{instance}", "instance");
        !body.is_empty()
            && !body.contains('*')
            && body.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
    });
    if ok { Ok(()) } else { Err(ValueProblem::NotHost { host: h.to_string() }) }
}

/// The host of a service URL that would go over plain HTTP to a host that is not loopback, if
/// it does. `${ENV:-default}` takes the default here (the environment is checked when sending).
fn plain_http_host(raw: &str) -> Option<String> {
    let probe = substitute_defaults(raw)
        .replace("{instance}", "instance")
        .replace("{accounts_url}", "https://accounts.example")
        .replace("{base_url}", "https://base.example");
    let url = Url::parse(&probe).ok()?;
    let host = url.host_str()?.to_string();
    (url.scheme() == "http" && !crate::http::rules::is_loopback(&host)).then_some(host)
}

/// "a or b", or "one of a, b, c".
pub fn one_of(names: &[&str]) -> String {
    match names {
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", names.join(", ")),
    }
}

fn list<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items.map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len())).map(|t| t.matches('\n').count() + 1).unwrap_or(1)
}

fn toml_message(e: &toml::de::Error) -> String {
    let m = e.message().trim().trim_end_matches('.');
    if let Some(rest) = m.strip_prefix("unknown field ") {
        let field = rest.split(',').next().unwrap_or(rest).trim_matches('`');
        return format!("unknown key `{field}`: remove it or check its spelling against connections/README.md");
    }
    // The refusals of the enums above and of `link_name` say the key and the fix themselves.
    if (m.starts_with("unknown ") && !m.starts_with("unknown variant ")) || m.starts_with("invalid link_name ") {
        return m.to_string();
    }
    if let Some(rest) = m.strip_prefix("missing field ") {
        return format!(
            "missing key {rest}: every service needs `link_name`, `name` and `auth`; see connections/README.md"
        );
    }
    format!("{m}: see connections/README.md for the format")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Service, ServiceError> {
        Service::parse(text, "svc.toml", Origin::Local)
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = parse("link_name = \"a\"\nname = \"A\"\nauth = \"none\"\nbase_urll = \"http://x\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "svc.toml:4: unknown key `base_urll`: remove it or check its spelling against connections/README.md"
        );
    }

    #[test]
    fn missing_and_bad_link_name() {
        let e = parse("name = \"A\"\nauth = \"none\"\n").unwrap_err();
        assert!(e.to_string().contains("missing key `link_name`"), "{e}");
        let e = parse("link_name = \"Bad-Name\"\nname = \"A\"\nauth = \"none\"\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.starts_with("invalid link_name `Bad-Name`: a link name starts"), "{e}");
    }

    #[test]
    fn a_retry_table_is_read_and_checked() {
        let head = "link_name = \"a\"\nname = \"A\"\nauth = \"none\"\n";
        let s =
            parse(&format!("{head}[retry]\nstatuses = [429, 503]\nmethods = [\"GET\", \"POST\"]\nmax_wait_s = 5\n"))
                .unwrap();
        let r = s.def.retry.as_ref().unwrap().get_ref();
        assert_eq!(r.statuses.as_deref(), Some(&[429, 503][..]));
        assert_eq!(r.max_wait_s, Some(5.0));
        let e = parse(&format!("{head}[retry]\nmax_attempts = 0\n")).unwrap_err();
        assert_eq!(e.to_string(), "svc.toml:4: in `[retry]`: `max_attempts` is 0: give 1 (no retries) to 10");
        let e = parse(&format!("{head}[retry]\nattempts = 3\n")).unwrap_err();
        assert!(e.to_string().contains("attempts"), "{e}");
    }

    #[test]
    fn a_limits_table_is_read_and_checked() {
        let head = "link_name = \"a\"\nname = \"A\"\nauth = \"none\"\n";
        let s =
            parse(&format!("{head}[limits]\nmax_concurrency = 5\nwindow_requests = 100\nwindow_s = 3600\n")).unwrap();
        let l = s.def.limits.as_ref().unwrap().get_ref();
        assert_eq!((l.max_concurrency, l.window_requests, l.window_s), (Some(5), Some(100), Some(3600)));
        let e = parse(&format!("{head}[limits]\nwindow_requests = 100\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "svc.toml:4: in `[limits]`: `window_requests` needs `window_s`, the span it counts in seconds"
        );
        let e = parse(&format!("{head}[limits]\nconcurrency = 3\n")).unwrap_err();
        assert!(e.to_string().contains("concurrency"), "{e}");
    }

    #[test]
    fn a_pagination_table_is_read_and_checked() {
        let head = "link_name = \"a\"\nname = \"A\"\nauth = \"none\"\n";
        let s = parse(&format!(
            "{head}[pagination]\nstyle = \"link_next\"\nrecords = \"result\"\npage_size_param = \"sysparm_limit\"\npage_size = 1000\n"
        ))
        .unwrap();
        let p = s.def.pagination.as_ref().unwrap().get_ref();
        assert_eq!(p.records.as_deref(), Some("result"));
        assert_eq!(p.page_size, Some(1000));
        let e = parse(&format!("{head}[pagination]\nrecords = \"data\"\n")).unwrap_err();
        assert!(e.to_string().starts_with("svc.toml:4: in `[pagination]`: `style` is missing: give style = "), "{e}");
        let e = parse(&format!("{head}[pagination]\nstyle = \"pages\"\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "svc.toml:5: unknown pagination style `pages`: use one of zoho_page_token, link_next, offset, cursor"
        );
        let e = parse(&format!("{head}[pagination]\nstyle = \"cursor\"\n")).unwrap_err();
        assert!(e.to_string().contains("style `cursor` needs `next_cursor`"), "{e}");
        let e = parse(&format!("{head}[pagination]\nstyle = \"offset\"\nnext_token = \"x\"\n")).unwrap_err();
        assert!(e.to_string().contains("`next_token` is not a key of style `offset`"), "{e}");
        let e = parse(&format!("{head}[pagination]\nstyle = \"offset\"\npagesize = 3\n")).unwrap_err();
        assert!(e.to_string().contains("unknown key `pagesize`"), "{e}");
    }

    #[test]
    fn hosts_match_subdomains_not_bare_domain() {
        assert!(host_matches("*.zohoapis.com", "www.zohoapis.com"));
        assert!(!host_matches("*.zohoapis.com", "zohoapis.com"));
        assert!(!host_matches("*.zohoapis.com", "evilzohoapis.com"));
        assert!(host_matches("127.0.0.1", "127.0.0.1"));
        assert!(host_matches("api.example.com", "API.example.com"));
    }

    #[test]
    fn host_entries_with_ports() {
        assert_eq!(split_host_entry("127.0.0.1:8080"), Some(("127.0.0.1", Some(8080))));
        assert_eq!(split_host_entry("api.example.com"), Some(("api.example.com", None)));
        assert_eq!(split_host_entry("::1"), Some(("::1", None)));
        assert_eq!(split_host_entry("[::1]"), Some(("::1", None)));
        assert_eq!(split_host_entry("[::1]:8443"), Some(("::1", Some(8443))));
        for bad in ["h:0", "h:x", "h:", "[::1]:", "[::1]x", "[::1"] {
            assert_eq!(split_host_entry(bad), None, "{bad}");
        }
        assert!(host_port_matches("127.0.0.1:8080", "127.0.0.1", 8080, &[]));
        assert!(!host_port_matches("127.0.0.1:8080", "127.0.0.1", 8081, &[8081]));
        assert!(host_port_matches("127.0.0.1", "127.0.0.1", 8780, &[8780, 80]));
        assert!(!host_port_matches("127.0.0.1", "127.0.0.1", 8781, &[8780, 80]));
        assert!(host_port_matches("*.zohoapis.com", "www.zohoapis.com", 443, &[443]));
        assert!(host_port_matches("::1", "[::1]", 80, &[80]));
        assert!(host_matches("127.0.0.1:8080", "127.0.0.1"));
    }

    #[test]
    fn oauth_urls_over_plain_http_to_a_remote_host_are_refused() {
        let head = "link_name = \"a\"\nname = \"A\"\nauth = \"oauth2\"\nbase_url = \"https://x.example\"\n[oauth2]\n";
        let e = parse(&format!("{head}token_url = \"http://auth.example/token\"\n")).unwrap_err();
        assert_eq!(e.line, 6);
        assert!(e.message.starts_with("`token_url` `http://auth.example/token` in `[oauth2]` is plain HTTP"), "{e}");
        // The default of an environment variable is checked, whatever the environment says.
        let e = parse(&format!("{head}token_url = \"${{LINKRUN_TEST_UNSET_TOKEN:-http://auth.example}}/token\"\n"));
        assert!(e.is_err());
        parse(&format!("{head}token_url = \"${{LINKRUN_TEST_UNSET_TOKEN:-http://127.0.0.1:9}}/token\"\n")).unwrap();
        let e = parse(
            &format!("{head}token_url = \"{{base_url}}/token\"\n").replace("https://x.example", "http://x.example"),
        );
        assert!(
            e.unwrap_err()
                .message
                .starts_with("`base_url` `http://x.example` is plain HTTP to `x.example`, and `token_url`")
        );
    }

    #[test]
    fn endpoint_from_data_center_and_instance() {
        let s = parse(
            "link_name = \"a\"\nname = \"A\"\nauth = \"basic\"\n[data_centers.us]\nbase_url = \"https://www.zohoapis.com\"\nallowed_hosts = [\"*.zohoapis.com\"]\n",
        )
        .unwrap();
        let e = s.endpoint(Some("us"), None);
        assert_eq!(e.base_url.as_deref(), Some("https://www.zohoapis.com"));
        assert_eq!(e.allowed_hosts, vec!["*.zohoapis.com"]);
        let s = parse("link_name = \"sn\"\nname = \"SN\"\nauth = \"basic\"\ninstance_url = \"https://{instance}.service-now.com\"\n").unwrap();
        let e = s.endpoint(None, Some("dev123"));
        assert_eq!(e.base_url.as_deref(), Some("https://dev123.service-now.com"));
        assert_eq!(e.allowed_hosts, vec!["dev123.service-now.com"]);
    }

    #[test]
    fn accounts_url_takes_the_environment_like_base_url() {
        let s = parse(
            "link_name = \"a\"\nname = \"A\"\nauth = \"basic\"\n[data_centers.sandbox]\nbase_url = \"${LINKRUN_TEST_UNSET_SANDBOX_URL:-http://127.0.0.1:8780}/api/v1\"\naccounts_url = \"${LINKRUN_TEST_UNSET_SANDBOX_URL:-http://127.0.0.1:8780}\"\n",
        )
        .unwrap();
        let e = s.endpoint(Some("sandbox"), None);
        assert_eq!(e.base_url.as_deref(), Some("http://127.0.0.1:8780/api/v1"));
        assert_eq!(e.accounts_url.as_deref(), Some("http://127.0.0.1:8780"));
    }

    #[test]
    fn example_and_setup_notes_parse_and_a_bad_example_type_is_refused() {
        let base = "link_name = \"a\"\nname = \"A\"\nauth = \"basic\"\nbase_url = \"https://x.example\"\nsetup_notes = \"Register at https://x.example/apps\"\n";
        let s = parse(&format!("{base}[example]\nurl = \"/v1/items\"\ntype = \"POST\"\n")).unwrap();
        assert_eq!(s.def.example.as_ref().map(|e| e.url.as_str()), Some("/v1/items"));
        assert_eq!(s.def.setup_notes.as_deref(), Some("Register at https://x.example/apps"));
        let e = parse(&format!("{base}[example]\nurl = \"/v1/items\"\ntype = \"FETCH\"\n")).unwrap_err();
        assert_eq!(e.line, 8);
        assert_eq!(e.message, "unknown `[example]` type `FETCH`: use one of GET, POST, PUT, PATCH, DELETE, HEAD");
    }

    #[test]
    fn a_bad_enum_value_names_its_key_line_and_the_allowed_names() {
        let head = "link_name = \"a\"\nname = \"A\"\nbase_url = \"https://x.example\"\n";
        let o2 = format!("{head}auth = \"oauth2\"\n[oauth2]\ntoken_url = \"https://x.example/t\"\n");
        let cases = [
            (
                format!("{o2}revoke_style = \"form\"\n"),
                7,
                "unknown revoke_style `form` in `[oauth2]`: use rfc7009 or query",
            ),
            (
                // An array's line is the key's.
                format!("{o2}grant_types = [\"password\",\n  \"implicit\"]\n"),
                7,
                "unknown grant type `implicit` in `[oauth2]`: use one of authorization_code, password, client_credentials",
            ),
            (
                format!("{o2}client_auth = \"jwt\"\n"),
                7,
                "unknown client_auth `jwt` in `[oauth2]`: use one of form, basic, json",
            ),
            (
                format!("{o2}scope_delimiter = \";\"\n"),
                7,
                "unknown scope_delimiter `;` in `[oauth2]`: use one of comma, space, plus",
            ),
            (
                format!("{head}auth = \"oauth1\"\n[oauth1]\nsignature_method = \"hmac-sha1\"\n"),
                6,
                "unknown signature_method `hmac-sha1` in `[oauth1]`: use one of HMAC-SHA1, HMAC-SHA256, HMAC-SHA512, RSA-SHA1, RSA-SHA256, PLAINTEXT",
            ),
            (
                format!("{head}auth = \"digest\"\n"),
                4,
                "unknown auth `digest`: use one of none, api_key, basic, oauth1, oauth2",
            ),
            (
                format!("{head}auth = \"api_key\"\nplacement = \"cookie\"\n"),
                5,
                "unknown placement `cookie`: use one of header, query, form, json",
            ),
        ];
        for (text, line, message) in cases {
            let e = parse(&text).unwrap_err();
            assert_eq!((e.line, e.message.as_str()), (line, message), "{text}");
        }
        let s = parse(&format!(
            "{o2}revoke_style = \"query\"\ngrant_types = [\"client_credentials\", \"authorization_code\"]\nclient_auth = \"basic\"\n"
        ))
        .unwrap();
        let o = s.def.oauth2.as_ref().unwrap();
        assert_eq!(o.revoke_style, Some(RevokeStyle::Query));
        assert_eq!(o.grant_types, [GrantType::ClientCredentials, GrantType::AuthorizationCode]);
        assert_eq!(AuthKind::ApiKey.to_string(), "api_key");
        assert_eq!(AuthKind::Oauth2.to_string(), "oauth2");
        assert_eq!(Origin::BuiltIn.to_string(), "built-in");
        assert_eq!(serde_json::to_value(Origin::BuiltIn).unwrap(), "built_in");
        // Serialised under the names they are read by.
        let json = serde_json::to_value(o).unwrap();
        assert_eq!(json["revoke_style"], "query");
        assert_eq!(json["grant_types"], serde_json::json!(["client_credentials", "authorization_code"]));
        assert_eq!(json["client_auth"], "basic");
    }

    #[test]
    fn named_instances_and_full_host_names() {
        let s = parse(
            "link_name = \"sn\"\nname = \"SN\"\nauth = \"basic\"\ninstance_url = \"https://{instance}.service-now.com\"\n\
             [instances.sandbox]\nbase_url = \"${LINKRUN_TEST_UNSET_SN_URL:-http://127.0.0.1:8780}\"\nallowed_hosts = [\"127.0.0.1\", \"localhost\"]\n\
             [instances.staging]\nbase_url = \"https://staging.example.com/sn\"\n",
        )
        .unwrap();
        assert_eq!(s.named_instances(), vec!["sandbox", "staging"]);
        let e = s.endpoint(None, Some("sandbox"));
        assert_eq!(e.base_url.as_deref(), Some("http://127.0.0.1:8780"));
        assert_eq!(e.allowed_hosts, vec!["127.0.0.1", "localhost"]);
        let e = s.endpoint(None, Some("staging"));
        assert_eq!(e.base_url.as_deref(), Some("https://staging.example.com/sn"));
        assert_eq!(e.allowed_hosts, vec!["staging.example.com"]);
        let e = s.endpoint(None, Some("sn.example.com"));
        assert_eq!(e.base_url.as_deref(), Some("https://sn.example.com"));
        assert_eq!(e.allowed_hosts, vec!["sn.example.com"]);
        let e = s.endpoint(None, Some("dev1"));
        assert_eq!(e.base_url.as_deref(), Some("https://dev1.service-now.com"));
        assert_eq!(e.allowed_hosts, vec!["dev1.service-now.com"]);
    }

    #[test]
    fn instances_need_an_instance_url_and_valid_names() {
        let e = parse("link_name = \"a\"\nname = \"A\"\nauth = \"basic\"\nbase_url = \"https://x.example\"\n[instances.sandbox]\nbase_url = \"http://127.0.0.1:1\"\n").unwrap_err();
        assert!(e.message.starts_with("`[instances.*]` needs `instance_url`"), "{e}");
        let e = parse("link_name = \"a\"\nname = \"A\"\nauth = \"basic\"\ninstance_url = \"https://{instance}.x.example\"\n[instances.\"a.b\"]\nbase_url = \"http://127.0.0.1:1\"\n").unwrap_err();
        assert_eq!(e.line, 6, "{e}");
        assert!(e.message.starts_with("instance name `a.b` is not valid"), "{e}");
        let e = parse("link_name = \"a\"\nname = \"A\"\nauth = \"basic\"\ninstance_url = \"https://{instance}.x.example\"\n[instances.sb]\nbase_url = \"nope\"\n").unwrap_err();
        assert_eq!(e.line, 6, "{e}");
    }

    #[test]
    fn dns_host_names() {
        for ok in ["sn.example.com", "a-b.example.co.uk", "x1.io", "10.0.0.5"] {
            assert!(is_dns_host_name(ok), "{ok}");
        }
        for bad in [
            "",
            "example",
            "-a.example.com",
            "a-.example.com",
            "a..b",
            "a.b.com:443",
            "*.b.com",
            "a/b.com",
            "1.2.3",
            "sn.example.com.",
        ] {
            assert!(!is_dns_host_name(bad), "{bad}");
        }
    }

    #[test]
    fn checks_are_read_and_refused_when_they_cannot_work() {
        let head = "link_name = \"a\"\nname = \"A\"\nauth = \"basic\"\nbase_url = \"https://x.example\"\n";
        let check = |extra: &str| {
            format!("{head}[[checks]]\nname = \"Leads\"\nurl = \"/v1/leads\"\nfix = \"grant it\"\n{extra}")
        };
        let s = parse(&check("records = \"data\"\nexpect_records = true\nforbidden_codes = [\"NO_PERMISSION\"]\n"))
            .unwrap();
        let c = &s.def.checks[0];
        assert_eq!((c.name.get_ref().as_str(), c.records.as_deref(), c.expect_records), ("Leads", Some("data"), true));
        assert_eq!(c.forbidden_codes, ["NO_PERMISSION"]);
        let cases = [
            (check("expect_records = true\n"), 6, "check `Leads` has `expect_records = true` but no `records`"),
            (check("records = \"a..b\"\n"), 6, "the `records` of check `Leads` is not a JSON path"),
            (
                check("").replace("/v1/leads", "https://evil.example/x"),
                7,
                "the `url` `https://evil.example/x` of check `Leads` is not a relative URL",
            ),
            (check("").replace("grant it", " "), 8, "check `Leads` has an empty `fix`"),
            (
                format!("{}[[checks]]\nname = \"Leads\"\nurl = \"/x\"\nfix = \"f\"\n", check("")),
                10,
                "check `Leads` is declared twice",
            ),
            (check("method = \"POST\"\n"), 9, "unknown key `method`"),
        ];
        for (text, line, start) in cases {
            let e = parse(&text).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.starts_with(start), "{e}");
        }
    }

    #[test]
    fn json_placement_is_for_api_keys_and_params_only() {
        let head = "link_name = \"a\"\nname = \"A\"\nbase_url = \"https://x.example\"\n";
        let s = parse(&format!(
            "{head}auth = \"api_key\"\nplacement = \"json\"\n[[params]]\nkey = \"api_key\"\nsecret = true\n"
        ))
        .unwrap();
        assert_eq!(s.placement(), Placement::Json);
        assert_eq!(s.params()[0].placement, Some(Placement::Json));
        let e = parse(&format!(
            "{head}auth = \"oauth2\"\nplacement = \"json\"\n[oauth2]\ntoken_url = \"https://x.example/t\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            e.message,
            "placement `json` does not work with auth `oauth2`: an OAuth 2.0 token goes in the header or the query; use `header` or `query`"
        );
        let e = parse(&format!(
            "{head}auth = \"oauth1\"\nplacement = \"json\"\n[oauth1]\nsignature_method = \"HMAC-SHA1\"\n"
        ))
        .unwrap_err();
        assert!(e.message.contains("an OAuth 1.0a signature covers the query and form parameters only"), "{e}");
        // A non-auth param may go in the JSON body under any auth.
        parse(&format!("{head}auth = \"basic\"\n[[params]]\nkey = \"orgId\"\nplacement = \"json\"\n")).unwrap();
    }

    #[test]
    fn the_built_in_services_declare_their_checks() {
        for (file, names) in [
            (
                "zoho_crm",
                &["Leads", "Contacts", "Accounts", "Deals", "Vendors", "Products", "Purchase_Orders", "Cases"][..],
            ),
            (
                "servicenow",
                &[
                    "customer_contact",
                    "customer_account",
                    "core_company",
                    "cmdb_model",
                    "sn_customerservice_case",
                    "proc_po",
                ],
            ),
            (
                "servicenow_basic",
                &[
                    "customer_contact",
                    "customer_account",
                    "core_company",
                    "cmdb_model",
                    "sn_customerservice_case",
                    "proc_po",
                ],
            ),
        ] {
            let path = format!("{}/connections/{file}.toml", env!("CARGO_MANIFEST_DIR"));
            let s = Service::load(Path::new(&path), Origin::BuiltIn).unwrap();
            let got: Vec<&str> = s.def.checks.iter().map(|c| c.name.get_ref().as_str()).collect();
            assert_eq!(got, names, "{file}");
        }
    }

    #[test]
    fn basic_with_query_placement_is_refused() {
        let e = parse("link_name = \"a\"\nname = \"A\"\nauth = \"basic\"\nplacement = \"query\"\nbase_url = \"https://x.example\"\n").unwrap_err();
        assert_eq!(e.line, 4);
    }
}
