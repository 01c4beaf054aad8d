//! An in-memory OAuth 2.0 provider that behaves like Zoho Accounts or like a ServiceNow instance,
//! as `docs/api-facts.md` §1, §2.8 and §5.3 describe them, quirks included: Zoho answers token errors
//! with HTTP 200 and an `error` body, accepts its parameters in the query string or a form body and
//! gives a refresh token only for `access_type=offline`; ServiceNow takes form bodies only, answers
//! every token error with one 401 body, and hands back the same tokens while they are still valid.
//!
//! The OAuth tests and `linkrun sandbox` run it. Its fault knobs (expire every access token,
//! shorten their life, rotate refresh tokens, write `expires_in` another way, move the clock)
//! exist so that a client's refresh and re-authorisation paths can be driven on demand. The Zoho
//! flavour also enforces Zoho Accounts' token limits (10 refreshes per refresh token in 10
//! minutes, then HTTP 200 `"error":"Access Denied"`; 15 live access tokens per refresh token; 20
//! refresh tokens per client and user), knobs on by default (see `limits`); its token answers
//! always carry `api_domain`, and its authorization redirect names the client's data center in
//! `location`.
//!
//! Specs: authorization code grant RFC 6749 §4.1, client credentials §4.4, password §4.3, refresh
//! §6; PKCE RFC 7636 §4.6; revocation RFC 7009. Nothing here is secret. Tokens live in memory and
//! die with the process, unless the provider was opened on a data file ([`Provider::open`], as
//! `linkrun sandbox --data FILE` does): then the access and refresh tokens it issues, with what
//! they grant and when they expire, are written through to the file's `oauth_*` tables and
//! accepted again after a restart on it. A failure to write them answers the token request with
//! HTTP 500 `{"error":"server_error","error_description":"the sandbox's storage failed: …"}`.
//!
//! The provider is split along its concerns:
//!
//! | module             | holds |
//! |--------------------|-------|
//! | `state`            | grants, codes and tokens, and the grant logic both flavours share |
//! | `token_store`      | the shared token store: the `oauth_*` tables of a `--data` file |
//! | `authorize`        | the consent page and the authorization endpoint (both flavours) |
//! | `zoho_accounts`    | the Zoho Accounts flavour: `/oauth/v2/token`, revocation, self-client codes |
//! | `limits`           | Zoho Accounts' token limits (10 refreshes in 10 minutes, 15 live access tokens, 20 refresh tokens), knobs on by default |
//! | `servicenow_oauth` | the ServiceNow flavour: `oauth_token.do`, `oauth_revoke_token.do` |
//! | `resources`        | the placeholder protected resources and the `/_sandbox` controls |
//! | `helpers`          | request parameters, Basic credentials, scopes, PKCE, randomness, escaping |

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::storage::{StorageError, open_db, storage_failed};

mod authorize;
mod helpers;
mod limits;
mod resources;
mod servicenow_oauth;
mod state;
#[cfg(test)]
mod tests;
mod token_store;
mod zoho_accounts;

use self::authorize::*;
use self::helpers::*;
use self::limits::*;
use self::resources::*;
use self::servicenow_oauth::*;
use self::state::*;
use self::token_store::*;
use self::zoho_accounts::*;

/// Life of a grant code from the consent page (Zoho: 2 minutes; ServiceNow: assumed the same).
const WEB_CODE_TTL_MS: u64 = 2 * 60 * 1000;
/// Life of a Zoho self-client grant code (the console's default, 3 minutes).
const SELF_CLIENT_CODE_TTL_MS: u64 = 3 * 60 * 1000;
/// Life of a ServiceNow refresh token (100 days by default); Zoho's never expire.
const SERVICENOW_REFRESH_TTL_MS: u64 = 100 * 24 * 3600 * 1000;

/// Which provider the emulator behaves like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Zoho Accounts (`/oauth/v2/...`), protecting `/crm/v7/*` and `/crm/v8/*`.
    Zoho,
    /// A ServiceNow instance (`/oauth_token.do`, `/oauth_auth.do`, ...), protecting `/api/now/*`.
    ServiceNow,
}

/// How a token response states the access token's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiresStyle {
    /// `"expires_in": 3600`.
    Number,
    /// `"expires_in": "3600"` (a string, as some providers send).
    String,
    /// Zoho's legacy form: `"expires_in_sec": 3600` and `"expires_in": 3600000` (milliseconds).
    LegacySec,
    /// No lifetime in the response at all.
    Missing,
}

/// A registered OAuth client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client ID.
    pub client_id: String,
    /// The client secret (it must be sent in the request parameters; a Basic header is not read on
    /// the token endpoints).
    pub client_secret: String,
    /// Which organisation's data this client's tokens see (used by the sandbox's API modules).
    pub org: String,
    /// Zoho: the data center of the client's users, as the authorization redirect's `location`
    /// names it (`None`: `us`).
    pub dc: Option<String>,
    /// Zoho: the `api_domain` of this client's token answers (`None`: the provider's
    /// [`ProviderConfig::api_domain`], else this server's own base URL).
    pub api_domain: Option<String>,
}

impl ClientConfig {
    /// A client from its ID, secret and organisation (data center `us`, the provider's
    /// `api_domain`).
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>, org: impl Into<String>) -> ClientConfig {
        ClientConfig {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            org: org.into(),
            dc: None,
            api_domain: None,
        }
    }

    /// The client of a Zoho organisation in data center `dc` (`us`, `eu`, `in`, ...).
    pub fn in_dc(mut self, dc: impl Into<String>) -> ClientConfig {
        self.dc = Some(dc.into());
        self
    }

    /// The client's token answers name `api_domain`.
    pub fn with_api_domain(mut self, api_domain: impl Into<String>) -> ClientConfig {
        self.api_domain = Some(api_domain.into());
        self
    }
}

/// What the provider knows and how it behaves.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// Zoho Accounts or ServiceNow. Fixed once the routers are built.
    pub flavor: Flavor,
    /// The registered clients.
    pub clients: Vec<ClientConfig>,
    /// ServiceNow password grant: `(username, password)` pairs. The first user also approves
    /// authorization requests that name none.
    pub users: Vec<(String, String)>,
    /// Access-token life for tokens issued from now on (Zoho 3600, ServiceNow 1799).
    pub access_ttl_secs: u64,
    /// How token responses write the lifetime.
    pub expires_style: ExpiresStyle,
    /// Issue a new refresh token on every refresh; the old one then fails as a dead refresh token.
    pub rotate_refresh_token: bool,
    /// Zoho: the `api_domain` of token responses for clients that name none (`None`: this
    /// server's own base URL, `base_url` or `http://{Host}`: the sandbox is every data center's
    /// API domain). Zoho's answers always carry one.
    pub api_domain: Option<String>,
    /// This server's own base URL, e.g. `http://127.0.0.1:8123` (Zoho's `accounts-server`). Empty:
    /// taken from each request's `Host` header.
    pub base_url: String,
}

impl ProviderConfig {
    /// Zoho Accounts defaults: 1-hour tokens, numeric `expires_in`, no rotation, `api_domain` equal
    /// to `base_url` (none when `base_url` is empty), no clients yet.
    pub fn zoho(base_url: impl Into<String>) -> ProviderConfig {
        let base_url = base_url.into();
        ProviderConfig {
            flavor: Flavor::Zoho,
            clients: Vec::new(),
            users: Vec::new(),
            access_ttl_secs: 3600,
            expires_style: ExpiresStyle::Number,
            rotate_refresh_token: false,
            api_domain: (!base_url.is_empty()).then(|| base_url.clone()),
            base_url,
        }
    }

    /// ServiceNow defaults: 1799-second tokens, numeric `expires_in`, no rotation, no clients or
    /// users yet.
    pub fn servicenow(base_url: impl Into<String>) -> ProviderConfig {
        ProviderConfig {
            flavor: Flavor::ServiceNow,
            clients: Vec::new(),
            users: Vec::new(),
            access_ttl_secs: 1799,
            expires_style: ExpiresStyle::Number,
            rotate_refresh_token: false,
            api_domain: None,
            base_url: base_url.into(),
        }
    }
}

/// Counters of what the provider was asked, for tests to assert on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Token-endpoint requests by their `grant_type` (`"(missing)"` when absent), failed ones
    /// included.
    pub token_requests_by_grant: BTreeMap<String, u64>,
    /// Refresh-token grants that issued (or, on ServiceNow, handed back) an access token.
    pub refreshes_ok: u64,
    /// Refresh-token grants that failed for any reason.
    pub refresh_failures: u64,
    /// Revocations that revoked something.
    pub revocations: u64,
    /// Of the failed refreshes, those refused by the 10-in-10-minutes limit (`Access Denied`).
    pub refreshes_throttled: u64,
    /// Live access tokens killed by the live-tokens-per-refresh-token limit.
    pub access_tokens_killed: u64,
    /// Refresh tokens deleted by the refresh-tokens-per-client-and-user limit.
    pub refresh_tokens_deleted: u64,
    /// Requests to the protected resources.
    pub resource_requests: u64,
    /// Of those, the ones answered 401.
    pub resource_401: u64,
}

/// Who an access token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The client it was issued to.
    pub client_id: String,
    /// That client's organisation.
    pub org: String,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// The user behind it: the password grant's user or the approving user (ServiceNow), the
    /// `user` given when approving (Zoho); `None` for client credentials.
    pub user: Option<String>,
    /// Whether it has expired.
    pub expired: bool,
}

/// Why a protected-resource request was refused; its response is the provider's exact 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthFailure {
    /// The provider whose 401 body to answer with.
    pub flavor: Flavor,
    /// No credentials of the expected kind were sent (Zoho: `AUTHENTICATION_FAILURE`), as opposed
    /// to an unknown, expired or revoked token (Zoho: `INVALID_TOKEN`).
    pub missing: bool,
}

impl IntoResponse for AuthFailure {
    fn into_response(self) -> Response {
        let body = match (self.flavor, self.missing) {
            (Flavor::Zoho, true) => json!({
                "code": "AUTHENTICATION_FAILURE", "details": {}, "message": "Authentication failed", "status": "error"
            }),
            (Flavor::Zoho, false) => json!({
                "code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"
            }),
            (Flavor::ServiceNow, _) => json!({
                "error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                "status": "failure"
            }),
        };
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}

/// The emulated provider. Cloning it shares the same state.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Mutex<ProviderState>>,
}

impl Provider {
    /// A provider with no tokens issued yet, keeping them in memory only.
    pub fn new(cfg: ProviderConfig) -> Provider {
        Provider::with_state(cfg, Tokens::default(), None)
    }

    /// A provider that keeps the tokens it issues in the SQLite file at `path` (the sandbox's
    /// `--data` file), in rows marked `name` (one name per provider sharing the file), and
    /// starts with the ones issued there before: access and refresh tokens with their grants
    /// (client, organisation, scopes, user) and expiry times, and which live token ServiceNow
    /// hands back again. Grant codes (minutes of life), the stats and the clock offset stay in
    /// memory; clients and users are the configuration's (the sandbox registers the same ones at
    /// every start). `None`: in memory, as [`Provider::new`].
    pub fn open(cfg: ProviderConfig, path: Option<&Path>, name: &str) -> Result<Provider, StorageError> {
        let Some(path) = path else { return Ok(Provider::new(cfg)) };
        let store = TokenStore { conn: open_db(Some(path), "OAuth", &TOKEN_TABLES, TOKEN_SCHEMA)?, name: name.into() };
        let tokens = store.load()?;
        Ok(Provider::with_state(cfg, tokens, Some(store)))
    }

    fn with_state(cfg: ProviderConfig, tokens: Tokens, store: Option<TokenStore>) -> Provider {
        Provider {
            inner: Arc::new(Mutex::new(ProviderState {
                cfg,
                offset_ms: 0,
                codes: HashMap::new(),
                access: tokens.access,
                refresh: tokens.refresh,
                current: tokens.current,
                stats: Stats::default(),
                store,
                knobs: super::faults::Faults::default(),
                refresh_times: HashMap::new(),
                seq: 0,
            })),
        }
    }

    /// Every route: [`Provider::oauth_router`], [`Provider::resource_router`] and
    /// [`Provider::control_router`] merged. (Two providers on one server: merge their
    /// `oauth_router`s and `resource_router`s, and nest their control routers apart, since both
    /// use `/_sandbox/oauth/...`.)
    pub fn router(&self) -> Router {
        self.oauth_router().merge(self.resource_router()).merge(self.control_router())
    }

    /// The provider's own OAuth endpoints for its flavor.
    pub fn oauth_router(&self) -> Router {
        let r = match self.flavor() {
            Flavor::Zoho => Router::new()
                .route("/oauth/v2/auth", get(authorize_get))
                .route("/oauth/v2/auth/approve", post(authorize_post))
                .route("/oauth/v2/token", post(zoho_token))
                .route("/oauth/v2/token/revoke", post(zoho_revoke))
                .route("/oauth/v2/revoke/token", post(zoho_revoke_basic))
                .route("/oauth/v2/self-client/code", post(self_client_code)),
            Flavor::ServiceNow => Router::new()
                .route("/oauth_auth.do", get(authorize_get).post(authorize_post))
                .route("/oauth_token.do", post(servicenow_token))
                .route("/oauth_revoke_token.do", get(servicenow_revoke).post(servicenow_revoke)),
        };
        r.with_state(self.clone())
    }

    /// The placeholder protected resources: any method on `/crm/v7/*` and `/crm/v8/*` (Zoho) or
    /// `/api/now/*` (ServiceNow). The sandbox's API modules replace them.
    pub fn resource_router(&self) -> Router {
        let r = match self.flavor() {
            Flavor::Zoho => {
                Router::new().route("/crm/v7/{*rest}", any(resource)).route("/crm/v8/{*rest}", any(resource))
            }
            Flavor::ServiceNow => Router::new().route("/api/now/{*rest}", any(resource)),
        };
        r.with_state(self.clone())
    }

    /// The test controls: `GET /_sandbox/oauth/stats`, `POST /_sandbox/oauth/expire` (every
    /// live access token of every client, so of every organisation, expires now; refresh tokens
    /// stay, so a client's next call refreshes; answers `{"expired": N}`), `POST
    /// /_sandbox/oauth/ttl?secs=N`, `POST /_sandbox/oauth/advance?secs=N` (the clock: token
    /// expiry and the 10-minute refresh limit).
    pub fn control_router(&self) -> Router {
        Router::new()
            .route("/_sandbox/oauth/stats", get(control_stats))
            .route("/_sandbox/oauth/expire", post(control_expire))
            .route("/_sandbox/oauth/revoke_all", post(control_revoke_all))
            .route("/_sandbox/oauth/ttl", post(control_ttl))
            .route("/_sandbox/oauth/advance", post(control_advance))
            .with_state(self.clone())
    }

    /// The flavor it emulates.
    pub fn flavor(&self) -> Flavor {
        self.lock().cfg.flavor
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// Makes every access token issued so far expired now (new ones get the normal life). A
    /// failure to store that is written to stderr (the tokens are expired in memory all the same).
    pub fn expire_access_tokens(&self) {
        if let Err(e) = self.lock().expire_all() {
            eprintln!("linkrun sandbox: cannot expire the stored access tokens: {e}");
        }
    }

    /// Reads the Zoho Accounts limits from these knobs from now on (the sandbox shares its own;
    /// a provider starts with knobs of its own at their defaults, every limit on).
    pub fn use_knobs(&self, faults: super::faults::Faults) {
        self.lock().knobs = faults;
    }

    /// Sets the life of access tokens issued from now on.
    pub fn set_access_ttl(&self, secs: u64) {
        self.lock().cfg.access_ttl_secs = secs;
    }

    /// Moves the provider's clock forward (grant codes, access and refresh tokens age with it).
    pub fn advance_clock(&self, secs: u64) {
        let mut st = self.lock();
        st.offset_ms = st.offset_ms.saturating_add(secs.saturating_mul(1000));
    }

    /// Changes the configuration in place, e.g. to turn rotation on mid-test or to set `base_url`
    /// once the port is known. Changing `flavor` after building the routers is not supported.
    pub fn update_config(&self, f: impl FnOnce(&mut ProviderConfig)) {
        f(&mut self.lock().cfg);
    }

    /// A Zoho self-client grant code for `client_id` (as the API console makes them): 3-minute life,
    /// one use, exchanged without `redirect_uri`, and it yields a refresh token.
    pub fn mint_self_client_code(&self, client_id: &str, scopes: &[&str]) -> String {
        let mut st = self.lock();
        let now = st.now_ms();
        let code = st.new_code_string();
        st.codes.insert(
            code.clone(),
            Code {
                client_id: client_id.to_string(),
                redirect_uri: None,
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                user: None,
                offline: true,
                self_client: true,
                challenge: None,
                expires_ms: now + SELF_CLIENT_CODE_TTL_MS,
                used: false,
            },
        );
        code
    }

    /// Every grant code, access token and refresh token issued so far (live or not): tests search
    /// a client's output and files for them.
    pub fn issued_secrets(&self) -> Vec<String> {
        let st = self.lock();
        st.codes.keys().chain(st.access.keys()).chain(st.refresh.keys()).cloned().collect()
    }

    /// The live refresh tokens of `client_id`, oldest first: tests drive the token limits with
    /// the one a client holds.
    pub fn refresh_tokens(&self, client_id: &str) -> Vec<String> {
        let st = self.lock();
        let mut r: Vec<(u64, &String)> =
            st.refresh.iter().filter(|(_, r)| r.grant.client_id == client_id).map(|(t, r)| (r.seq, t)).collect();
        r.sort();
        r.into_iter().map(|(_, t)| t.clone()).collect()
    }

    /// Who `access_token` belongs to; `None` if it was never issued or has been revoked.
    pub fn token_owner(&self, access_token: &str) -> Option<TokenInfo> {
        self.lock().token_info(access_token)
    }

    /// Checks a protected-resource request's `Authorization` header (`Zoho-oauthtoken <token>` or
    /// `Bearer <token>` by flavor; the scheme is case-insensitive) and counts it in the stats. The
    /// error is the provider's exact 401 response.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<TokenInfo, AuthFailure> {
        let mut st = self.lock();
        st.stats.resource_requests += 1;
        if st.knobs.take_token_expiry()
            && let Err(e) = st.expire_all()
        {
            eprintln!("linkrun sandbox: cannot expire the stored access tokens: {e}");
        }
        let flavor = st.cfg.flavor;
        let scheme = match flavor {
            Flavor::Zoho => "zoho-oauthtoken ",
            Flavor::ServiceNow => "bearer ",
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .and_then(|v| strip_prefix_ignore_case(v, scheme))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        match token.and_then(|t| st.token_info(t)).filter(|i| !i.expired) {
            Some(info) => Ok(info),
            None => {
                st.stats.resource_401 += 1;
                Err(AuthFailure { flavor, missing: token.is_none() })
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, ProviderState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `base_url` from the configuration, else `http://{Host}`.
    fn base_url(&self, headers: &HeaderMap) -> String {
        let configured = self.lock().cfg.base_url.trim_end_matches('/').to_string();
        if !configured.is_empty() {
            return configured;
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
        format!("http://{host}")
    }
}

/// Serves `router` on 127.0.0.1 on a free port; returns the address and the server task.
pub async fn serve(router: Router) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        // The server only stops with an I/O error on the listener; there is no one to tell.
        let _ = axum::serve(listener, router).await;
    });
    Ok((addr, handle))
}
