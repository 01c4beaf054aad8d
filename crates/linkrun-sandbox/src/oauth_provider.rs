//! An in-memory OAuth 2.0 provider that behaves like Zoho Accounts or like a ServiceNow instance,
//! as `api-facts.md` §1, §2.8 and §5.3 describe them, quirks included: Zoho answers token errors
//! with HTTP 200 and an `error` body, accepts its parameters in the query string or a form body and
//! gives a refresh token only for `access_type=offline`; ServiceNow takes form bodies only, answers
//! every token error with one 401 body, and hands back the same tokens while they are still valid.
//!
//! The OAuth tests run it today and `linkrun sandbox` will reuse it. Its fault knobs (expire every
//! access token, shorten their life, rotate refresh tokens, write `expires_in` another way, move
//! the clock) exist so that a client's refresh and re-authorisation paths can be driven on demand.
//!
//! Specs: authorization code grant RFC 6749 §4.1, client credentials §4.4, password §4.3, refresh
//! §6; PKCE RFC 7636 §4.6; revocation RFC 7009. Nothing here is secret. Tokens live in memory and
//! die with the process, unless the provider was opened on a data file ([`Provider::open`], as
//! `linkrun sandbox --data FILE` does): then the access and refresh tokens it issues, with what
//! they grant and when they expire, are written through to the file's `oauth_*` tables and
//! accepted again after a restart on it. A failure to write them answers the token request with
//! HTTP 500 `{"error":"server_error","error_description":"the sandbox's storage failed: …"}`.

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
}

impl ClientConfig {
    /// A client from its ID, secret and organisation.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>, org: impl Into<String>) -> ClientConfig {
        ClientConfig { client_id: client_id.into(), client_secret: client_secret.into(), org: org.into() }
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
    /// Zoho: the `api_domain` of token responses (omitted when `None`).
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

    /// The test controls: `GET /_sandbox/oauth/stats`, `POST /_sandbox/oauth/expire`,
    /// `POST /_sandbox/oauth/ttl?secs=N`, `POST /_sandbox/oauth/advance?secs=N`.
    pub fn control_router(&self) -> Router {
        Router::new()
            .route("/_sandbox/oauth/stats", get(control_stats))
            .route("/_sandbox/oauth/expire", post(control_expire))
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

// ---------------------------------------------------------------------------------------------
// State

/// A grant code waiting to be exchanged.
struct Code {
    client_id: String,
    /// The authorization request's `redirect_uri`; `None` for self-client codes.
    redirect_uri: Option<String>,
    scopes: Vec<String>,
    user: Option<String>,
    /// Zoho `access_type=offline`: the exchange also yields a refresh token.
    offline: bool,
    /// Zoho self-client code: no `redirect_uri` at the exchange.
    self_client: bool,
    /// PKCE `(method, challenge)`.
    challenge: Option<(String, String)>,
    expires_ms: u64,
    used: bool,
}

/// What a token stands for.
#[derive(Clone)]
struct Grant {
    client_id: String,
    org: String,
    scopes: Vec<String>,
    user: Option<String>,
}

struct Access {
    grant: Grant,
    /// The refresh token it came with or from; revoking that one revokes this.
    refresh: Option<String>,
    expires_ms: u64,
}

struct Refresh {
    grant: Grant,
    expires_ms: Option<u64>,
}

/// A successful token request, before it is written in the flavor's format.
struct Issued {
    access_token: String,
    /// The refresh token to show in the response, if any.
    refresh_token: Option<String>,
    expires_in: u64,
    scopes: Vec<String>,
}

/// Why a token request failed (Zoho spells each one; ServiceNow answers them all alike), or why
/// it could not be served at all (`Storage`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum TokenError {
    InvalidClient,
    InvalidClientSecret,
    InvalidCode,
    InvalidRedirectUri,
    InvalidCodeVerifier,
    InvalidRefreshToken,
    InvalidUser,
    MissingOrgInfo,
    UnsupportedGrantType,
    /// The data file refused to store a token: the storage failure's message.
    Storage(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Storage(msg) => f.write_str(msg),
            other => f.write_str(other.zoho_code()),
        }
    }
}

impl TokenError {
    /// Zoho's `error` value.
    fn zoho_code(&self) -> &'static str {
        match self {
            TokenError::InvalidClient => "invalid_client",
            TokenError::InvalidClientSecret => "invalid_client_secret",
            // Zoho answers a dead (unknown, revoked, superseded) refresh token like a dead code.
            TokenError::InvalidCode | TokenError::InvalidRefreshToken => "invalid_code",
            TokenError::InvalidRedirectUri => "invalid_redirect_uri",
            TokenError::InvalidCodeVerifier => "invalid_code_verifier",
            TokenError::MissingOrgInfo => "missing_org_info",
            TokenError::InvalidUser | TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::Storage(_) => "server_error",
        }
    }
}

/// ServiceNow hands back the same tokens for the same client, user and grant while the access
/// token lives: (client_id, user, grant key).
type ReuseKey = (String, String, String);

struct ProviderState {
    cfg: ProviderConfig,
    offset_ms: u64,
    codes: HashMap<String, Code>,
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    current: HashMap<ReuseKey, String>,
    stats: Stats,
    /// Where issued tokens are written through (`None`: memory only).
    store: Option<TokenStore>,
}

impl ProviderState {
    fn now_ms(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        wall.saturating_add(self.offset_ms)
    }

    fn is_zoho(&self) -> bool {
        self.cfg.flavor == Flavor::Zoho
    }

    fn new_token_string(&self) -> String {
        match self.cfg.flavor {
            Flavor::Zoho => format!("1000.{}.{}", hex(&random_bytes::<16>()), hex(&random_bytes::<16>())),
            Flavor::ServiceNow => URL_SAFE_NO_PAD.encode(random_bytes::<48>()),
        }
    }

    fn new_code_string(&self) -> String {
        match self.cfg.flavor {
            Flavor::Zoho => self.new_token_string(),
            Flavor::ServiceNow => URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
        }
    }

    fn token_info(&self, access_token: &str) -> Option<TokenInfo> {
        let now = self.now_ms();
        self.access.get(access_token).map(|a| TokenInfo {
            client_id: a.grant.client_id.clone(),
            org: a.grant.org.clone(),
            scopes: a.grant.scopes.clone(),
            user: a.grant.user.clone(),
            expired: now >= a.expires_ms,
        })
    }

    /// Expires every live access token; returns how many were live.
    fn expire_all(&mut self) -> Result<usize, TokenError> {
        let now = self.now_ms();
        self.stored(|s| s.expire_all(now))?;
        let mut n = 0;
        for a in self.access.values_mut() {
            if a.expires_ms > now {
                a.expires_ms = now;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Runs `write` on the store, if there is one.
    fn stored(&self, write: impl FnOnce(&TokenStore) -> rusqlite::Result<()>) -> Result<(), TokenError> {
        match &self.store {
            Some(s) => write(s).map_err(|e| TokenError::Storage(storage_failed(&e))),
            None => Ok(()),
        }
    }

    /// The client named by `client_id`, if `client_secret` is its secret.
    fn client(&self, p: &Params) -> Result<ClientConfig, TokenError> {
        let id = p.get("client_id").ok_or(TokenError::InvalidClient)?;
        let c = self.cfg.clients.iter().find(|c| c.client_id == id).ok_or(TokenError::InvalidClient)?;
        if p.get("client_secret") != Some(c.client_secret.as_str()) {
            return Err(TokenError::InvalidClientSecret);
        }
        Ok(c.clone())
    }

    /// One token-endpoint request, counted in the stats.
    fn token(&mut self, p: &Params) -> Result<Issued, TokenError> {
        let grant_type = p.get("grant_type").unwrap_or("(missing)").to_string();
        *self.stats.token_requests_by_grant.entry(grant_type.clone()).or_default() += 1;
        let result = match grant_type.as_str() {
            "authorization_code" => self.code_grant(p),
            "refresh_token" => self.refresh_grant(p),
            "client_credentials" => self.client_credentials_grant(p),
            "password" if !self.is_zoho() => self.password_grant(p),
            _ => Err(TokenError::UnsupportedGrantType),
        };
        if grant_type == "refresh_token" {
            match result {
                Ok(_) => self.stats.refreshes_ok += 1,
                Err(_) => self.stats.refresh_failures += 1,
            }
        }
        result
    }

    fn code_grant(&mut self, p: &Params) -> Result<Issued, TokenError> {
        let client = self.client(p)?;
        let now = self.now_ms();
        let code_str = p.get("code").ok_or(TokenError::InvalidCode)?;
        let code = self.codes.get(code_str).ok_or(TokenError::InvalidCode)?;
        if code.used || now >= code.expires_ms || code.client_id != client.client_id {
            return Err(TokenError::InvalidCode);
        }
        if !code.self_client && p.get("redirect_uri") != code.redirect_uri.as_deref() {
            return Err(TokenError::InvalidRedirectUri);
        }
        if let Some((method, challenge)) = &code.challenge {
            let verifier = p.get("code_verifier").ok_or(TokenError::InvalidCodeVerifier)?;
            if !pkce_matches(method, challenge, verifier) {
                return Err(TokenError::InvalidCodeVerifier);
            }
        }
        let grant = Grant {
            client_id: client.client_id,
            org: client.org,
            scopes: code.scopes.clone(),
            user: code.user.clone(),
        };
        let with_refresh = !self.is_zoho() || code.offline;
        if let Some(c) = self.codes.get_mut(code_str) {
            c.used = true;
        }
        let key = self.reuse_key(&grant, "authorization_code");
        if let Some(issued) = self.reuse(&key) {
            return Ok(issued);
        }
        let refresh = if with_refresh { Some(self.new_refresh(&grant)?) } else { None };
        self.new_access(grant, refresh.clone(), refresh, key)
    }

    fn refresh_grant(&mut self, p: &Params) -> Result<Issued, TokenError> {
        let client = self.client(p)?;
        let now = self.now_ms();
        let old = p.get("refresh_token").ok_or(TokenError::InvalidRefreshToken)?.to_string();
        let r = self.refresh.get(&old).ok_or(TokenError::InvalidRefreshToken)?;
        if r.grant.client_id != client.client_id || r.expires_ms.is_some_and(|e| now >= e) {
            return Err(TokenError::InvalidRefreshToken);
        }
        let grant = r.grant.clone();
        // ServiceNow: a refresh while the token it gave last still lives hands that token back.
        if let Some(issued) = self.reuse(&self.reuse_key(&grant, &format!("refresh_token:{old}"))) {
            return Ok(issued);
        }
        let (refresh, shown) = if self.cfg.rotate_refresh_token {
            let new = self.new_refresh(&grant)?;
            self.stored(|s| s.rotate(&old, &new))?;
            self.refresh.remove(&old);
            for a in self.access.values_mut() {
                if a.refresh.as_deref() == Some(old.as_str()) {
                    a.refresh = Some(new.clone());
                }
            }
            (new.clone(), Some(new))
        } else {
            // Zoho's refresh response has no refresh_token; ServiceNow's repeats it.
            (old.clone(), (!self.is_zoho()).then_some(old))
        };
        let key = self.reuse_key(&grant, &format!("refresh_token:{refresh}"));
        self.new_access(grant, Some(refresh), shown, key)
    }

    fn client_credentials_grant(&mut self, p: &Params) -> Result<Issued, TokenError> {
        let client = self.client(p)?;
        if self.is_zoho() && p.get("soid").is_none() {
            return Err(TokenError::MissingOrgInfo);
        }
        let grant =
            Grant { client_id: client.client_id, org: client.org, scopes: split_scopes(p.get("scope")), user: None };
        let key = self.reuse_key(&grant, "client_credentials");
        if let Some(issued) = self.reuse(&key) {
            return Ok(issued);
        }
        self.new_access(grant, None, None, key)
    }

    fn password_grant(&mut self, p: &Params) -> Result<Issued, TokenError> {
        let client = self.client(p)?;
        let (user, password) = (p.get("username"), p.get("password"));
        let known = self.cfg.users.iter().any(|(u, pw)| Some(u.as_str()) == user && Some(pw.as_str()) == password);
        let user = user.filter(|_| known).ok_or(TokenError::InvalidUser)?;
        let grant = Grant {
            client_id: client.client_id,
            org: client.org,
            scopes: split_scopes(p.get("scope")),
            user: Some(user.to_string()),
        };
        let key = self.reuse_key(&grant, "password");
        if let Some(issued) = self.reuse(&key) {
            return Ok(issued);
        }
        let refresh = self.new_refresh(&grant)?;
        self.new_access(grant, Some(refresh.clone()), Some(refresh), key)
    }

    /// ServiceNow only: the key under which a live token is handed back again.
    fn reuse_key(&self, grant: &Grant, grant_key: &str) -> Option<ReuseKey> {
        (!self.is_zoho())
            .then(|| (grant.client_id.clone(), grant.user.clone().unwrap_or_default(), grant_key.to_string()))
    }

    /// The live token stored under `key`, as a response repeating it and its refresh token.
    fn reuse(&self, key: &Option<ReuseKey>) -> Option<Issued> {
        let token = self.current.get(key.as_ref()?)?;
        let a = self.access.get(token)?;
        let now = self.now_ms();
        (now < a.expires_ms).then(|| Issued {
            access_token: token.clone(),
            refresh_token: a.refresh.clone(),
            expires_in: (a.expires_ms - now).div_ceil(1000),
            scopes: a.grant.scopes.clone(),
        })
    }

    fn new_refresh(&mut self, grant: &Grant) -> Result<String, TokenError> {
        let token = self.new_token_string();
        let expires_ms = (!self.is_zoho()).then(|| self.now_ms() + SERVICENOW_REFRESH_TTL_MS);
        let r = Refresh { grant: grant.clone(), expires_ms };
        self.stored(|s| s.put_refresh(&token, &r))?;
        self.refresh.insert(token.clone(), r);
        Ok(token)
    }

    fn new_access(
        &mut self,
        grant: Grant,
        refresh: Option<String>,
        shown_refresh: Option<String>,
        key: Option<ReuseKey>,
    ) -> Result<Issued, TokenError> {
        let token = self.new_token_string();
        let ttl = self.cfg.access_ttl_secs;
        let expires_ms = self.now_ms().saturating_add(ttl.saturating_mul(1000));
        let scopes = grant.scopes.clone();
        let a = Access { grant, refresh, expires_ms };
        self.stored(|s| {
            s.put_access(&token, &a)?;
            key.as_ref().map_or(Ok(()), |k| s.put_reuse(k, &token))
        })?;
        self.access.insert(token.clone(), a);
        if let Some(k) = key {
            self.current.insert(k, token.clone());
        }
        Ok(Issued { access_token: token, refresh_token: shown_refresh, expires_in: ttl, scopes })
    }

    /// Revokes a refresh token (with its access tokens) or an access token. With `client_id`, only
    /// a token of that client. Returns whether something was revoked.
    fn revoke(&mut self, token: &str, client_id: Option<&str>) -> Result<bool, TokenError> {
        let owned = |g: &Grant| client_id.is_none_or(|c| c == g.client_id);
        let revoked = if self.refresh.get(token).is_some_and(|r| owned(&r.grant)) {
            self.stored(|s| s.revoke(token))?;
            self.refresh.remove(token);
            self.access.retain(|_, a| a.refresh.as_deref() != Some(token));
            true
        } else if self.access.get(token).is_some_and(|a| owned(&a.grant)) {
            self.stored(|s| s.revoke(token))?;
            self.access.remove(token);
            true
        } else {
            false
        };
        if revoked {
            self.stats.revocations += 1;
        }
        Ok(revoked)
    }

    /// The success body in the flavor's format.
    fn token_body(&self, issued: Issued) -> Value {
        let mut m = Map::new();
        match self.cfg.flavor {
            Flavor::Zoho => {
                m.insert("access_token".into(), issued.access_token.into());
                if let Some(r) = issued.refresh_token {
                    m.insert("refresh_token".into(), r.into());
                }
                if let Some(d) = &self.cfg.api_domain {
                    m.insert("api_domain".into(), d.clone().into());
                }
                m.insert("token_type".into(), "Bearer".into());
                put_expires(&mut m, issued.expires_in, self.cfg.expires_style);
            }
            Flavor::ServiceNow => {
                let scope = if issued.scopes.is_empty() { "useraccount".to_string() } else { issued.scopes.join(" ") };
                m.insert("scope".into(), scope.into());
                m.insert("token_type".into(), "Bearer".into());
                put_expires(&mut m, issued.expires_in, self.cfg.expires_style);
                if let Some(r) = issued.refresh_token {
                    m.insert("refresh_token".into(), r.into());
                }
                m.insert("access_token".into(), issued.access_token.into());
            }
        }
        Value::Object(m)
    }
}

fn put_expires(m: &mut Map<String, Value>, secs: u64, style: ExpiresStyle) {
    match style {
        ExpiresStyle::Number => {
            m.insert("expires_in".into(), secs.into());
        }
        ExpiresStyle::String => {
            m.insert("expires_in".into(), secs.to_string().into());
        }
        ExpiresStyle::LegacySec => {
            m.insert("expires_in_sec".into(), secs.into());
            m.insert("expires_in".into(), secs.saturating_mul(1000).into());
        }
        ExpiresStyle::Missing => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The data file

/// The `oauth_*` tables; `provider` tells the providers sharing a file apart, `scopes` is a JSON
/// array, times are the provider's clock in Unix milliseconds.
const TOKEN_SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS oauth_refresh (
        provider TEXT NOT NULL, token TEXT NOT NULL, client_id TEXT NOT NULL, org TEXT NOT NULL,
        scopes TEXT NOT NULL, user_name TEXT, expires_ms INTEGER, PRIMARY KEY (provider, token));
    CREATE TABLE IF NOT EXISTS oauth_access (
        provider TEXT NOT NULL, token TEXT NOT NULL, client_id TEXT NOT NULL, org TEXT NOT NULL,
        scopes TEXT NOT NULL, user_name TEXT, refresh TEXT, expires_ms INTEGER NOT NULL,
        PRIMARY KEY (provider, token));
    CREATE TABLE IF NOT EXISTS oauth_reuse (
        provider TEXT NOT NULL, client_id TEXT NOT NULL, user_name TEXT NOT NULL, grant_key TEXT NOT NULL,
        token TEXT NOT NULL, PRIMARY KEY (provider, client_id, user_name, grant_key));";

/// The tables and the columns the store reads.
const TOKEN_TABLES: [(&str, &[&str]); 3] = [
    ("oauth_refresh", &["provider", "token", "client_id", "org", "scopes", "user_name", "expires_ms"]),
    ("oauth_access", &["provider", "token", "client_id", "org", "scopes", "user_name", "refresh", "expires_ms"]),
    ("oauth_reuse", &["provider", "client_id", "user_name", "grant_key", "token"]),
];

/// The tokens a provider starts with.
#[derive(Default)]
struct Tokens {
    access: HashMap<String, Access>,
    refresh: HashMap<String, Refresh>,
    current: HashMap<ReuseKey, String>,
}

/// A provider's rows in the data file, written through on every change.
struct TokenStore {
    conn: Connection,
    /// The `provider` column of its rows.
    name: String,
}

fn ms_to_sql(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn grant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Grant> {
    let scopes: String = r.get("scopes")?;
    Ok(Grant {
        client_id: r.get("client_id")?,
        org: r.get("org")?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        user: r.get("user_name")?,
    })
}

impl TokenStore {
    fn load(&self) -> rusqlite::Result<Tokens> {
        let mut t = Tokens::default();
        let name = self.name.as_str();
        let mut q = self.conn.prepare("SELECT * FROM oauth_refresh WHERE provider = ?1")?;
        let rows = q.query_map([name], |r| {
            let expires: Option<i64> = r.get("expires_ms")?;
            Ok((
                r.get::<_, String>("token")?,
                Refresh { grant: grant_from_row(r)?, expires_ms: expires.map(|e| e.max(0) as u64) },
            ))
        })?;
        for row in rows {
            let (token, refresh) = row?;
            t.refresh.insert(token, refresh);
        }
        let mut q = self.conn.prepare("SELECT * FROM oauth_access WHERE provider = ?1")?;
        let rows = q.query_map([name], |r| {
            let expires: i64 = r.get("expires_ms")?;
            let access =
                Access { grant: grant_from_row(r)?, refresh: r.get("refresh")?, expires_ms: expires.max(0) as u64 };
            Ok((r.get::<_, String>("token")?, access))
        })?;
        for row in rows {
            let (token, access) = row?;
            t.access.insert(token, access);
        }
        let mut q =
            self.conn.prepare("SELECT client_id, user_name, grant_key, token FROM oauth_reuse WHERE provider = ?1")?;
        let rows = q.query_map([name], |r| Ok(((r.get(0)?, r.get(1)?, r.get(2)?), r.get::<_, String>(3)?)))?;
        for row in rows {
            let (key, token) = row?;
            if t.access.contains_key(&token) {
                t.current.insert(key, token);
            }
        }
        Ok(t)
    }

    fn put_refresh(&self, token: &str, r: &Refresh) -> rusqlite::Result<()> {
        let g = &r.grant;
        self.conn.execute(
            "INSERT OR REPLACE INTO oauth_refresh (provider, token, client_id, org, scopes, user_name, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                self.name,
                token,
                g.client_id,
                g.org,
                Value::from(g.scopes.clone()).to_string(),
                g.user,
                r.expires_ms.map(ms_to_sql)
            ],
        )?;
        Ok(())
    }

    fn put_access(&self, token: &str, a: &Access) -> rusqlite::Result<()> {
        let g = &a.grant;
        self.conn.execute(
            "INSERT OR REPLACE INTO oauth_access
                 (provider, token, client_id, org, scopes, user_name, refresh, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                self.name,
                token,
                g.client_id,
                g.org,
                Value::from(g.scopes.clone()).to_string(),
                g.user,
                a.refresh,
                ms_to_sql(a.expires_ms)
            ],
        )?;
        Ok(())
    }

    fn put_reuse(&self, key: &ReuseKey, token: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO oauth_reuse (provider, client_id, user_name, grant_key, token)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![self.name, key.0, key.1, key.2, token],
        )?;
        Ok(())
    }

    /// Refresh token `old` gave way to `new` (stored already): its access tokens now belong to
    /// `new`.
    fn rotate(&self, old: &str, new: &str) -> rusqlite::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM oauth_refresh WHERE provider = ?1 AND token = ?2", params![self.name, old])?;
        tx.execute(
            "UPDATE oauth_access SET refresh = ?3 WHERE provider = ?1 AND refresh = ?2",
            params![self.name, old, new],
        )?;
        tx.commit()
    }

    /// Removes a refresh token with its access tokens, or an access token.
    fn revoke(&self, token: &str) -> rusqlite::Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM oauth_refresh WHERE provider = ?1 AND token = ?2", params![self.name, token])?;
        tx.execute(
            "DELETE FROM oauth_access WHERE provider = ?1 AND (token = ?2 OR refresh = ?2)",
            params![self.name, token],
        )?;
        tx.commit()
    }

    fn expire_all(&self, now: u64) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE oauth_access SET expires_ms = ?2 WHERE provider = ?1 AND expires_ms > ?2",
            params![self.name, ms_to_sql(now)],
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers: authorization

async fn authorize_get(AxState(p): AxState<Provider>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let params = Params::parse(q.as_deref().unwrap_or("").as_bytes());
    authorize(&p, &params, &headers, false)
}

async fn authorize_post(AxState(p): AxState<Provider>, headers: HeaderMap, body: Bytes) -> Response {
    let params = Params::parse(&body);
    authorize(&p, &params, &headers, true)
}

/// The authorization endpoint: a consent page, or with `approve=yes|no` the redirect back.
fn authorize(p: &Provider, params: &Params, headers: &HeaderMap, from_form: bool) -> Response {
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
            if flavor == Flavor::Zoho {
                pairs.push(("location", "us"));
                pairs.push(("accounts-server", base.as_str()));
            }
            redirect_with(redirect_uri, &pairs)
        }
        _ if from_form => error_page(flavor, "Invalid Request", "approve must be `yes` or `no`."),
        _ => consent_page(flavor, params),
    }
}

fn consent_page(flavor: Flavor, params: &Params) -> Response {
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

fn error_page(flavor: Flavor, title: &str, detail: &str) -> Response {
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
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    url.query_pairs_mut().extend_pairs(pairs);
    (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
}

// ---------------------------------------------------------------------------------------------
// Handlers: tokens and revocation

/// Zoho's token endpoint: parameters from the form body or the query string; errors are HTTP 200.
async fn zoho_token(AxState(p): AxState<Provider>, RawQuery(q): RawQuery, headers: HeaderMap, body: Bytes) -> Response {
    let params = zoho_params(q.as_deref(), &headers, &body);
    let mut st = p.lock();
    let body = match st.token(&params) {
        Ok(issued) => st.token_body(issued),
        Err(TokenError::Storage(msg)) => return storage_failure(&msg),
        Err(e) => json!({ "error": e.zoho_code() }),
    };
    Json(body).into_response()
}

/// ServiceNow's token endpoint: form body only; every error is one 401 body.
async fn servicenow_token(AxState(p): AxState<Provider>, headers: HeaderMap, body: Bytes) -> Response {
    let params = if is_form(&headers, false) { Params::parse(&body) } else { Params::default() };
    let mut st = p.lock();
    match st.token(&params) {
        Ok(issued) => Json(st.token_body(issued)).into_response(),
        Err(TokenError::Storage(msg)) => storage_failure(&msg),
        Err(_) => {
            (StatusCode::UNAUTHORIZED, Json(json!({"error_description": "access_denied", "error": "server_error"})))
                .into_response()
        }
    }
}

/// `POST /oauth/v2/token/revoke?token=T`.
async fn zoho_revoke(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = zoho_params(q.as_deref(), &headers, &body);
    match params.get("token").map_or(Ok(false), |t| p.lock().revoke(t, None)) {
        Ok(revoked) => zoho_revoke_answer(revoked),
        Err(e) => storage_failure(&e.to_string()),
    }
}

/// `POST /oauth/v2/revoke/token?token=T[&token_type=...]` with Basic client authentication.
async fn zoho_revoke_basic(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = zoho_params(q.as_deref(), &headers, &body);
    let mut st = p.lock();
    let client = basic_credentials(&headers)
        .filter(|(id, secret)| st.cfg.clients.iter().any(|c| &c.client_id == id && &c.client_secret == secret));
    let Some((client_id, _)) = client else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "status": "failure"})))
            .into_response();
    };
    match params.get("token").map_or(Ok(false), |t| st.revoke(t, Some(&client_id))) {
        Ok(revoked) => zoho_revoke_answer(revoked),
        Err(e) => storage_failure(&e.to_string()),
    }
}

/// HTTP 500 for a token or revocation request the data file refused to store.
fn storage_failure(msg: &str) -> Response {
    eprintln!("linkrun sandbox: OAuth: {msg}");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "server_error", "error_description": msg})))
        .into_response()
}

fn zoho_revoke_answer(revoked: bool) -> Response {
    if revoked {
        Json(json!({"status": "success"})).into_response()
    } else {
        (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_token", "status": "failure"}))).into_response()
    }
}

/// `GET|POST /oauth_revoke_token.do?token=T` (or `token` in a form body): always 200, empty body.
async fn servicenow_revoke(
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

/// `POST /oauth/v2/self-client/code` (`client_id`, `scope`): the sandbox's stand-in for the API
/// console's "Generate Code".
async fn self_client_code(
    AxState(p): AxState<Provider>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = zoho_params(q.as_deref(), &headers, &body);
    let client_id = params.get("client_id").unwrap_or("");
    if !p.lock().cfg.clients.iter().any(|c| c.client_id == client_id) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_client"}))).into_response();
    }
    let scopes = split_scopes(params.get("scope"));
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    Json(json!({ "code": p.mint_self_client_code(client_id, &scopes) })).into_response()
}

// ---------------------------------------------------------------------------------------------
// Handlers: protected resources and controls

async fn resource(AxState(p): AxState<Provider>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    match p.authenticate(&headers) {
        Ok(info) => placeholder_resource(p.flavor(), &info, &method, uri.path()),
        Err(refused) => refused.into_response(),
    }
}

/// What an authenticated resource request gets until the sandbox's API modules take over: an
/// echo of the method and path in the product's envelope. (The one place to swap.)
fn placeholder_resource(flavor: Flavor, info: &TokenInfo, method: &Method, path: &str) -> Response {
    let body = match flavor {
        Flavor::Zoho => json!({
            "data": [{"id": "1", "echo_path": path, "echo_method": method.as_str()}],
            "info": {"org": info.org, "scopes": info.scopes},
        }),
        Flavor::ServiceNow => {
            let sys_id = hex(&Sha256::digest(path.as_bytes())[..16]);
            json!({"result": [{"sys_id": sys_id, "echo_path": path, "echo_method": method.as_str()}]})
        }
    };
    Json(body).into_response()
}

async fn control_stats(AxState(p): AxState<Provider>) -> Json<Stats> {
    Json(p.stats())
}

async fn control_expire(AxState(p): AxState<Provider>) -> Response {
    let expired = p.lock().expire_all();
    match expired {
        Ok(n) => Json(json!({ "expired": n })).into_response(),
        Err(e) => storage_failure(&e.to_string()),
    }
}

async fn control_ttl(AxState(p): AxState<Provider>, RawQuery(q): RawQuery) -> Response {
    match secs_param(q.as_deref()) {
        Some(secs) => {
            p.set_access_ttl(secs);
            Json(json!({ "access_ttl_secs": secs })).into_response()
        }
        None => bad_secs(),
    }
}

async fn control_advance(AxState(p): AxState<Provider>, RawQuery(q): RawQuery) -> Response {
    match secs_param(q.as_deref()) {
        Some(secs) => {
            p.advance_clock(secs);
            Json(json!({ "advanced_secs": secs })).into_response()
        }
        None => bad_secs(),
    }
}

fn secs_param(q: Option<&str>) -> Option<u64> {
    Params::parse(q.unwrap_or("").as_bytes()).get("secs")?.parse().ok()
}

fn bad_secs() -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": "pass ?secs=N with N a whole number of seconds"}))).into_response()
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Decoded request parameters in arrival order; empty values count as absent.
#[derive(Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The first non-empty value of `key`.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// Zoho reads the form body (when it is one) and the query string; the body wins.
fn zoho_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
    let mut params = if is_form(headers, true) { Params::parse(body) } else { Params::default() };
    params.0.extend(Params::parse(query.unwrap_or("").as_bytes()).0);
    params
}

/// Whether the body is `application/x-www-form-urlencoded` (or, with `missing_ok`, has no type).
fn is_form(headers: &HeaderMap, missing_ok: bool) -> bool {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => ct.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"),
        None => missing_ok,
    }
}

/// `Authorization: Basic base64(id:secret)`.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = strip_prefix_ignore_case(value.trim(), "basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Scopes as Zoho (commas) or ServiceNow (spaces) write them.
fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// RFC 7636 §4.6.
fn pkce_matches(method: &str, challenge: &str, verifier: &str) -> bool {
    match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
        _ => verifier == challenge,
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        // The OS random source failing is exceptional; these are test tokens, so the clock and a
        // counter through SHA-256 keep them unique.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let mut seed = Sha256::new();
        seed.update(nanos.to_le_bytes());
        seed.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let mut block = seed.finalize();
        for chunk in b.chunks_mut(32) {
            chunk.copy_from_slice(&block[..chunk.len()]);
            block = Sha256::digest(block);
        }
    }
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "1000.CLIENTID";
    const SECRET: &str = "s3cret";
    const REDIRECT: &str = "http://127.0.0.1:9/callback";

    fn zoho_cfg() -> ProviderConfig {
        let mut c = ProviderConfig::zoho("");
        c.clients = vec![ClientConfig::new(CLIENT, SECRET, "org_us"), ClientConfig::new("other", "other_s", "org_b")];
        c.api_domain = Some("https://www.zohoapis.com".into());
        c
    }

    fn sn_cfg() -> ProviderConfig {
        let mut c = ProviderConfig::servicenow("");
        c.clients = vec![ClientConfig::new("sn_client", "sn_secret", "acme")];
        c.users = vec![("admin".into(), "pw1".into()), ("abel.tuter".into(), "pw2".into())];
        c
    }

    struct T {
        p: Provider,
        base: String,
        http: reqwest::Client,
    }

    async fn start(cfg: ProviderConfig) -> T {
        let p = Provider::new(cfg);
        let (addr, _server) = serve(p.router()).await.unwrap();
        let base = format!("http://{addr}");
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        T { p, base, http }
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
    }

    async fn answer(r: reqwest::Response) -> (u16, Value) {
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    impl T {
        async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
            let r = self
                .http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(pairs))
                .send()
                .await
                .unwrap();
            answer(r).await
        }

        async fn post_query(&self, path: &str, pairs: &[(&str, &str)]) -> (u16, Value) {
            let r = self.http.post(format!("{}{path}?{}", self.base, form(pairs))).send().await.unwrap();
            answer(r).await
        }

        async fn get(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
            self.http.get(format!("{}{path}?{}", self.base, form(pairs))).send().await.unwrap()
        }

        async fn call(&self, method: reqwest::Method, path: &str, auth: Option<&str>) -> (u16, Value) {
            let mut rb = self.http.request(method, format!("{}{path}", self.base));
            if let Some(a) = auth {
                rb = rb.header("authorization", a);
            }
            answer(rb.send().await.unwrap()).await
        }

        /// Headless approval; returns the redirect's query pairs.
        async fn approve(&self, path: &str, pairs: &[(&str, &str)]) -> HashMap<String, String> {
            let r = self.get(path, pairs).await;
            assert_eq!(r.status().as_u16(), 302, "{:?}", r.text().await);
            let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
            assert_eq!(
                format!("{}://{}{}", loc.scheme(), loc.host_str().unwrap(), loc.path()),
                "http://127.0.0.1/callback"
            );
            loc.query_pairs().into_owned().collect()
        }

        /// A Zoho grant code via headless approval with `extra` parameters.
        async fn zoho_code(&self, extra: &[(&str, &str)]) -> String {
            let mut pairs = vec![
                ("client_id", CLIENT),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "ZohoCRM.modules.ALL,ZohoCRM.settings.READ"),
                ("approve", "yes"),
            ];
            pairs.extend_from_slice(extra);
            self.approve("/oauth/v2/auth", &pairs).await["code"].clone()
        }

        /// Exchanges a Zoho code (query-string parameters, as Zoho's docs show).
        async fn zoho_exchange(&self, code: &str) -> Value {
            let (status, v) = self
                .post_query(
                    "/oauth/v2/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", CLIENT),
                        ("client_secret", SECRET),
                        ("redirect_uri", REDIRECT),
                        ("code", code),
                    ],
                )
                .await;
            assert_eq!(status, 200);
            v
        }

        async fn zoho_refresh(&self, refresh: &str) -> Value {
            let (status, v) = self
                .post_form(
                    "/oauth/v2/token",
                    &[
                        ("grant_type", "refresh_token"),
                        ("client_id", CLIENT),
                        ("client_secret", SECRET),
                        ("refresh_token", refresh),
                    ],
                )
                .await;
            assert_eq!(status, 200);
            v
        }

        async fn crm(&self, token: &str) -> (u16, Value) {
            self.call(reqwest::Method::GET, "/crm/v7/Leads", Some(&format!("Zoho-oauthtoken {token}"))).await
        }

        async fn sn_token(&self, pairs: &[(&str, &str)]) -> (u16, Value) {
            self.post_form("/oauth_token.do", pairs).await
        }

        async fn sn_password(&self, user: &str, password: &str) -> (u16, Value) {
            self.sn_token(&[
                ("grant_type", "password"),
                ("client_id", "sn_client"),
                ("client_secret", "sn_secret"),
                ("username", user),
                ("password", password),
            ])
            .await
        }

        async fn now(&self, token: &str) -> (u16, Value) {
            self.call(reqwest::Method::GET, "/api/now/table/incident", Some(&format!("Bearer {token}"))).await
        }
    }

    fn s(v: &Value, k: &str) -> String {
        v[k].as_str().unwrap_or_else(|| panic!("no string `{k}` in {v}")).to_string()
    }

    fn is_zoho_token(t: &str) -> bool {
        let parts: Vec<&str> = t.split('.').collect();
        parts.len() == 3
            && parts[0] == "1000"
            && parts[1..].iter().all(|p| p.len() == 32 && p.chars().all(|c| c.is_ascii_hexdigit()))
    }

    fn err(e: &str) -> Value {
        json!({ "error": e })
    }

    fn sn_token_error() -> Value {
        json!({"error_description": "access_denied", "error": "server_error"})
    }

    fn sn_unauthorized() -> Value {
        json!({"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"}, "status": "failure"})
    }

    #[tokio::test]
    async fn zoho_code_grant_offline_end_to_end() {
        let t = start(zoho_cfg()).await;
        t.p.update_config(|c| c.base_url = t.base.clone());
        let q = t
            .approve(
                "/oauth/v2/auth",
                &[
                    ("client_id", CLIENT),
                    ("response_type", "code"),
                    ("redirect_uri", REDIRECT),
                    ("scope", "ZohoCRM.modules.ALL,ZohoCRM.settings.READ"),
                    ("access_type", "offline"),
                    ("prompt", "consent"),
                    ("state", "st&1 2"),
                    ("approve", "yes"),
                ],
            )
            .await;
        assert_eq!(q["state"], "st&1 2");
        assert_eq!(q["location"], "us");
        assert_eq!(q["accounts-server"], t.base);
        assert!(is_zoho_token(&q["code"]), "{}", q["code"]);

        let v = t.zoho_exchange(&q["code"]).await;
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["access_token", "api_domain", "expires_in", "refresh_token", "token_type"]);
        assert!(is_zoho_token(&s(&v, "access_token")) && is_zoho_token(&s(&v, "refresh_token")));
        assert_eq!(v["api_domain"], "https://www.zohoapis.com");
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["expires_in"], 3600);

        // One use only.
        assert_eq!(t.zoho_exchange(&q["code"]).await, err("invalid_code"));

        let access = s(&v, "access_token");
        let (status, body) = t.crm(&access).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"data": [{"id": "1", "echo_path": "/crm/v7/Leads", "echo_method": "GET"}],
                   "info": {"org": "org_us", "scopes": ["ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"]}})
        );
        let (status, body) =
            t.call(reqwest::Method::POST, "/crm/v8/Deals/upsert", Some(&format!("zoho-oauthtoken {access}"))).await;
        assert_eq!((status, &body["data"][0]["echo_method"]), (200, &json!("POST")));

        let info = t.p.token_owner(&access).unwrap();
        assert_eq!(
            info,
            TokenInfo {
                client_id: CLIENT.into(),
                org: "org_us".into(),
                scopes: vec!["ZohoCRM.modules.ALL".into(), "ZohoCRM.settings.READ".into()],
                user: None,
                expired: false
            }
        );
        let stats = t.p.stats();
        assert_eq!(stats.token_requests_by_grant, BTreeMap::from([("authorization_code".to_string(), 2)]));
        assert_eq!((stats.resource_requests, stats.resource_401), (2, 0));
    }

    #[tokio::test]
    async fn zoho_online_access_type_gets_no_refresh_token_and_base_url_defaults_to_host() {
        let t = start(zoho_cfg()).await;
        let r = t
            .get(
                "/oauth/v2/auth",
                &[("client_id", CLIENT), ("response_type", "code"), ("redirect_uri", REDIRECT), ("approve", "yes")],
            )
            .await;
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let q: HashMap<String, String> = url::Url::parse(&loc).unwrap().query_pairs().into_owned().collect();
        assert!(!q.contains_key("state"));
        assert_eq!(q["accounts-server"], t.base);
        let v = t.zoho_exchange(&q["code"]).await;
        assert!(v.get("refresh_token").is_none(), "{v}");
        assert!(v.get("access_token").is_some());
    }

    #[tokio::test]
    async fn zoho_consent_page_form_and_denial() {
        let t = start(zoho_cfg()).await;
        let params = [
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "ZohoCRM.modules.ALL"),
            ("access_type", "offline"),
            ("state", "<x>"),
        ];
        let r = t.get("/oauth/v2/auth", &params).await;
        assert_eq!(r.status().as_u16(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let page = r.text().await.unwrap();
        assert!(page.contains(r#"<form method="post" action="/oauth/v2/auth/approve">"#), "{page}");
        assert!(page.contains(r#"<input type="hidden" name="state" value="&lt;x&gt;">"#), "{page}");
        assert!(page.contains(r#"name="approve" value="yes""#) && page.contains("<li>ZohoCRM.modules.ALL</li>"));

        // What the form posts.
        let mut posted = params.to_vec();
        posted.push(("approve", "yes"));
        let r = t
            .http
            .post(format!("{}/oauth/v2/auth/approve", t.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&posted))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 302);
        let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
        let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "<x>");
        assert!(t.zoho_exchange(&q["code"]).await.get("refresh_token").is_some());

        let mut denied = params.to_vec();
        denied.push(("approve", "no"));
        let q = t.approve("/oauth/v2/auth", &denied).await;
        assert_eq!(q, HashMap::from([("error".into(), "access_denied".into()), ("state".into(), "<x>".into())]));
    }

    #[tokio::test]
    async fn zoho_authorize_refusals_are_html_400() {
        let t = start(zoho_cfg()).await;
        let r = t
            .get("/oauth/v2/auth", &[("client_id", "nobody"), ("response_type", "code"), ("redirect_uri", REDIRECT)])
            .await;
        assert_eq!(r.status().as_u16(), 400);
        let page = r.text().await.unwrap();
        assert!(page.contains("Invalid Client") && page.contains("invalid client"), "{page}");
        for bad in [
            vec![("client_id", CLIENT), ("response_type", "token"), ("redirect_uri", REDIRECT)],
            vec![("client_id", CLIENT), ("response_type", "code")],
            vec![("client_id", CLIENT), ("response_type", "code"), ("redirect_uri", "/relative")],
            vec![
                ("client_id", CLIENT),
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("code_challenge", "x"),
                ("code_challenge_method", "S512"),
            ],
        ] {
            let mut bad = bad;
            bad.push(("approve", "yes"));
            assert_eq!(t.get("/oauth/v2/auth", &bad).await.status().as_u16(), 400, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn zoho_token_errors_are_http_200_bodies() {
        let t = start(zoho_cfg()).await;
        let code = t.zoho_code(&[]).await;
        let base = [("grant_type", "authorization_code"), ("redirect_uri", REDIRECT), ("code", code.as_str())];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v: Vec<(&str, &str)> = base.to_vec();
            v.extend_from_slice(extra);
            v
        };
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (with(&[("client_id", "nobody"), ("client_secret", SECRET)]), "invalid_client"),
            (with(&[("client_secret", SECRET)]), "invalid_client"),
            (with(&[("client_id", CLIENT), ("client_secret", "wrong")]), "invalid_client_secret"),
            (with(&[("client_id", CLIENT)]), "invalid_client_secret"),
            // A code issued to another client.
            (with(&[("client_id", "other"), ("client_secret", "other_s")]), "invalid_code"),
        ];
        for (pairs, want) in cases {
            assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err(want)), "{pairs:?}");
        }
        let client = [("client_id", CLIENT), ("client_secret", SECRET)];
        let mut pairs = client.to_vec();
        pairs.extend([("grant_type", "authorization_code"), ("code", code.as_str())]);
        assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("invalid_redirect_uri")));
        pairs.push(("redirect_uri", "http://127.0.0.1:9/other"));
        assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("invalid_redirect_uri")));
        let mut pairs = client.to_vec();
        pairs.extend([("grant_type", "authorization_code"), ("code", "1000.nope.nope"), ("redirect_uri", REDIRECT)]);
        assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("invalid_code")));
        let mut pairs = client.to_vec();
        pairs.push(("grant_type", "implicit"));
        assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("unsupported_grant_type")));
        assert_eq!(t.post_form("/oauth/v2/token", &client).await, (200, err("unsupported_grant_type")));
        // ServiceNow's password grant is not Zoho's.
        let mut pairs = client.to_vec();
        pairs.extend([("grant_type", "password"), ("username", "a"), ("password", "b")]);
        assert_eq!(t.post_form("/oauth/v2/token", &pairs).await, (200, err("unsupported_grant_type")));

        // The failed attempts did not use the code up; it still works once.
        assert!(t.zoho_exchange(&code).await.get("access_token").is_some());
        let stats = t.p.stats();
        assert_eq!(stats.token_requests_by_grant["authorization_code"], 9);
        assert_eq!(stats.token_requests_by_grant["(missing)"], 1);
        assert_eq!(stats.token_requests_by_grant["implicit"], 1);
    }

    #[tokio::test]
    async fn zoho_grant_code_expires_after_two_minutes() {
        let t = start(zoho_cfg()).await;
        let fresh = t.zoho_code(&[]).await;
        let stale = t.zoho_code(&[]).await;
        t.p.advance_clock(119);
        assert!(t.zoho_exchange(&fresh).await.get("access_token").is_some());
        t.p.advance_clock(1);
        assert_eq!(t.zoho_exchange(&stale).await, err("invalid_code"));
    }

    #[tokio::test]
    async fn zoho_pkce_s256_and_plain() {
        let t = start(zoho_cfg()).await;
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        // RFC 7636 appendix B.
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let exchange = |code: String, verifier: Option<&'static str>| {
            let t = &t;
            async move {
                let mut pairs = vec![
                    ("grant_type", "authorization_code"),
                    ("client_id", CLIENT),
                    ("client_secret", SECRET),
                    ("redirect_uri", REDIRECT),
                    ("code", code.as_str()),
                ];
                pairs.extend(verifier.map(|v| ("code_verifier", v)));
                t.post_form("/oauth/v2/token", &pairs).await.1
            }
        };
        let code = t.zoho_code(&[("code_challenge", challenge), ("code_challenge_method", "S256")]).await;
        assert_eq!(exchange(code.clone(), None).await, err("invalid_code_verifier"));
        assert_eq!(
            exchange(code.clone(), Some("wrong-verifier-wrong-verifier-wrong-verifier")).await,
            err("invalid_code_verifier")
        );
        assert_eq!(exchange(code.clone(), Some(challenge)).await, err("invalid_code_verifier"));
        assert!(exchange(code, Some(verifier)).await.get("access_token").is_some());

        let code = t.zoho_code(&[("code_challenge", "plain-value")]).await;
        assert_eq!(exchange(code.clone(), Some(verifier)).await, err("invalid_code_verifier"));
        assert!(exchange(code, Some("plain-value")).await.get("access_token").is_some());

        // No challenge: a verifier is ignored.
        let code = t.zoho_code(&[]).await;
        assert!(exchange(code, Some(verifier)).await.get("access_token").is_some());
    }

    #[tokio::test]
    async fn zoho_refresh_and_dead_refresh_tokens() {
        let t = start(zoho_cfg()).await;
        let v = t.zoho_exchange(&t.zoho_code(&[("access_type", "offline")]).await).await;
        let (first, refresh) = (s(&v, "access_token"), s(&v, "refresh_token"));

        let r = t.zoho_refresh(&refresh).await;
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["access_token", "api_domain", "expires_in", "token_type"]);
        let second = s(&r, "access_token");
        assert_ne!(first, second);
        // Both stay valid (no limit on active tokens is emulated).
        assert_eq!(t.crm(&first).await.0, 200);
        assert_eq!(t.crm(&second).await.0, 200);

        assert_eq!(t.zoho_refresh("1000.dead.dead").await, err("invalid_code"));
        let (_, other) = t
            .post_form(
                "/oauth/v2/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", "other"),
                    ("client_secret", "other_s"),
                    ("refresh_token", &refresh),
                ],
            )
            .await;
        assert_eq!(other, err("invalid_code"));
        let (_, bad_secret) = t
            .post_form(
                "/oauth/v2/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", CLIENT),
                    ("client_secret", "x"),
                    ("refresh_token", &refresh),
                ],
            )
            .await;
        assert_eq!(bad_secret, err("invalid_client_secret"));

        // Revoked: refresh fails, its access tokens die.
        assert_eq!(
            t.post_query("/oauth/v2/token/revoke", &[("token", &refresh)]).await,
            (200, json!({"status": "success"}))
        );
        assert_eq!(t.zoho_refresh(&refresh).await, err("invalid_code"));
        assert_eq!(t.crm(&first).await.1["code"], "INVALID_TOKEN");
        assert_eq!(t.crm(&second).await.1["code"], "INVALID_TOKEN");
        let stats = t.p.stats();
        assert_eq!((stats.refreshes_ok, stats.refresh_failures, stats.revocations), (1, 4, 1));
        assert_eq!(stats.token_requests_by_grant["refresh_token"], 5);
    }

    #[tokio::test]
    async fn zoho_rotation_invalidates_the_old_refresh_token() {
        let mut cfg = zoho_cfg();
        cfg.rotate_refresh_token = true;
        let t = start(cfg).await;
        let v = t.zoho_exchange(&t.zoho_code(&[("access_type", "offline")]).await).await;
        let (first_access, r1) = (s(&v, "access_token"), s(&v, "refresh_token"));
        let v2 = t.zoho_refresh(&r1).await;
        let r2 = s(&v2, "refresh_token");
        assert!(is_zoho_token(&r2) && r2 != r1);
        assert_eq!(t.zoho_refresh(&r1).await, err("invalid_code"));
        let v3 = t.zoho_refresh(&r2).await;
        let r3 = s(&v3, "refresh_token");
        // Access tokens follow their refresh token's line: revoking the newest revokes them all.
        assert_eq!(t.post_query("/oauth/v2/token/revoke", &[("token", &r3)]).await.0, 200);
        for a in [first_access, s(&v2, "access_token"), s(&v3, "access_token")] {
            assert_eq!(t.crm(&a).await.0, 401);
        }
    }

    #[tokio::test]
    async fn zoho_revocation_endpoints() {
        let t = start(zoho_cfg()).await;
        let v = t.zoho_exchange(&t.zoho_code(&[("access_type", "offline")]).await).await;
        let (access, refresh) = (s(&v, "access_token"), s(&v, "refresh_token"));

        // An access token alone; the refresh token lives on. Form body accepted too.
        assert_eq!(
            t.post_form("/oauth/v2/token/revoke", &[("token", &access)]).await,
            (200, json!({"status": "success"}))
        );
        assert_eq!(t.crm(&access).await.0, 401);
        assert!(t.zoho_refresh(&refresh).await.get("access_token").is_some());
        // Unknown or already revoked.
        let failure = (400, json!({"error": "invalid_token", "status": "failure"}));
        assert_eq!(t.post_query("/oauth/v2/token/revoke", &[("token", &access)]).await, failure);
        assert_eq!(t.post_query("/oauth/v2/token/revoke", &[]).await, failure);

        // The newer endpoint wants Basic client authentication and the client's own token.
        let url = format!(
            "{}/oauth/v2/revoke/token?{}",
            t.base,
            form(&[("token", &refresh), ("token_type", "refresh_token")])
        );
        let r = answer(t.http.post(&url).send().await.unwrap()).await;
        assert_eq!(r, (401, json!({"error": "invalid_client", "status": "failure"})));
        let r = answer(t.http.post(&url).basic_auth(CLIENT, Some("wrong")).send().await.unwrap()).await;
        assert_eq!(r.0, 401);
        let r = answer(t.http.post(&url).basic_auth("other", Some("other_s")).send().await.unwrap()).await;
        assert_eq!(r, failure);
        let r = answer(t.http.post(&url).basic_auth(CLIENT, Some(SECRET)).send().await.unwrap()).await;
        assert_eq!(r, (200, json!({"status": "success"})));
        assert_eq!(t.zoho_refresh(&refresh).await, err("invalid_code"));
        assert_eq!(t.p.stats().revocations, 2);
    }

    #[tokio::test]
    async fn zoho_self_client_code_one_use_three_minutes() {
        let t = start(zoho_cfg()).await;
        let exchange = |code: String| {
            let t = &t;
            async move {
                t.post_form(
                    "/oauth/v2/token",
                    &[
                        ("grant_type", "authorization_code"),
                        ("client_id", CLIENT),
                        ("client_secret", SECRET),
                        ("code", &code),
                    ],
                )
                .await
                .1
            }
        };
        let code = t.p.mint_self_client_code(CLIENT, &["ZohoCRM.modules.ALL"]);
        assert!(is_zoho_token(&code));
        let v = exchange(code.clone()).await;
        assert!(v.get("refresh_token").is_some(), "{v}");
        assert_eq!(t.p.token_owner(&s(&v, "access_token")).unwrap().scopes, ["ZohoCRM.modules.ALL"]);
        assert_eq!(exchange(code).await, err("invalid_code"));

        // The HTTP helper, with query or form parameters.
        let (status, v) = t
            .post_form(
                "/oauth/v2/self-client/code",
                &[("client_id", CLIENT), ("scope", "ZohoCRM.users.ALL,ZohoCRM.org.ALL")],
            )
            .await;
        assert_eq!(status, 200);
        let via_http = s(&v, "code");
        assert_eq!(v.as_object().unwrap().len(), 1);
        let (_, v) = t.post_query("/oauth/v2/self-client/code", &[("client_id", CLIENT)]).await;
        let late = s(&v, "code");
        assert_eq!(
            t.post_query("/oauth/v2/self-client/code", &[("client_id", "nobody")]).await,
            (400, err("invalid_client"))
        );

        t.p.advance_clock(179);
        let v = exchange(via_http).await;
        assert_eq!(t.p.token_owner(&s(&v, "access_token")).unwrap().scopes, ["ZohoCRM.users.ALL", "ZohoCRM.org.ALL"]);
        t.p.advance_clock(1);
        assert_eq!(exchange(late).await, err("invalid_code"));
    }

    #[tokio::test]
    async fn zoho_client_credentials_needs_soid_and_gives_no_refresh_token() {
        let t = start(zoho_cfg()).await;
        let mut pairs = vec![
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", "ZohoCRM.modules.ALL"),
        ];
        assert_eq!(t.post_query("/oauth/v2/token", &pairs).await, (200, err("missing_org_info")));
        pairs.push(("soid", "ZohoCRM.6000000012345"));
        let (status, v) = t.post_query("/oauth/v2/token", &pairs).await;
        assert_eq!(status, 200);
        assert!(v.get("refresh_token").is_none() && v.get("access_token").is_some(), "{v}");
        let info = t.p.token_owner(&s(&v, "access_token")).unwrap();
        assert_eq!((info.org.as_str(), info.user), ("org_us", None));
        assert_eq!(t.crm(&s(&v, "access_token")).await.0, 200);
    }

    #[tokio::test]
    async fn expires_styles() {
        let cases = [
            (ExpiresStyle::Number, json!(3600), None),
            (ExpiresStyle::String, json!("3600"), None),
            (ExpiresStyle::LegacySec, json!(3600000), Some(json!(3600))),
            (ExpiresStyle::Missing, Value::Null, None),
        ];
        for (style, expires_in, expires_in_sec) in cases {
            let mut cfg = zoho_cfg();
            cfg.expires_style = style;
            let t = start(cfg).await;
            let v = t.zoho_exchange(&t.zoho_code(&[]).await).await;
            assert_eq!(v.get("expires_in").cloned().unwrap_or(Value::Null), expires_in, "{style:?}");
            assert_eq!(v.get("expires_in_sec").cloned(), expires_in_sec, "{style:?}");
        }
        let mut cfg = sn_cfg();
        cfg.expires_style = ExpiresStyle::String;
        let t = start(cfg).await;
        assert_eq!(t.sn_password("admin", "pw1").await.1["expires_in"], "1799");
    }

    #[tokio::test]
    async fn zoho_resource_401_shapes_expiry_and_controls() {
        let t = start(zoho_cfg()).await;
        let access = s(&t.zoho_exchange(&t.zoho_code(&[]).await).await, "access_token");
        let auth_failure = json!({"code": "AUTHENTICATION_FAILURE", "details": {}, "message": "Authentication failed", "status": "error"});
        let invalid =
            json!({"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"});
        assert_eq!(t.call(reqwest::Method::GET, "/crm/v7/Leads", None).await, (401, auth_failure.clone()));
        // Another scheme counts as no credentials.
        assert_eq!(
            t.call(reqwest::Method::GET, "/crm/v7/Leads", Some(&format!("Bearer {access}"))).await,
            (401, auth_failure)
        );
        assert_eq!(t.crm("1000.abc.def").await, (401, invalid.clone()));
        assert_eq!(t.crm(&access).await.0, 200);

        t.p.expire_access_tokens();
        assert_eq!(t.crm(&access).await, (401, invalid.clone()));
        assert!(t.p.token_owner(&access).unwrap().expired);
        assert_eq!(t.p.token_owner("1000.abc.def"), None);

        // Natural expiry with a short life set over HTTP.
        assert_eq!(t.post_query("/_sandbox/oauth/ttl", &[("secs", "5")]).await, (200, json!({"access_ttl_secs": 5})));
        assert_eq!(t.post_query("/_sandbox/oauth/ttl", &[("secs", "-1")]).await.0, 400);
        let v = t.zoho_exchange(&t.zoho_code(&[]).await).await;
        assert_eq!(v["expires_in"], 5);
        let short = s(&v, "access_token");
        assert_eq!(t.crm(&short).await.0, 200);
        assert_eq!(t.post_query("/_sandbox/oauth/advance", &[("secs", "5")]).await, (200, json!({"advanced_secs": 5})));
        assert_eq!(t.crm(&short).await, (401, invalid));

        t.p.set_access_ttl(3600);
        let fresh = s(&t.zoho_exchange(&t.zoho_code(&[]).await).await, "access_token");
        assert_eq!(t.post_query("/_sandbox/oauth/expire", &[]).await, (200, json!({"expired": 1})));
        assert_eq!(t.crm(&fresh).await.0, 401);

        let r = t.http.get(format!("{}/_sandbox/oauth/stats", t.base)).send().await.unwrap();
        let (status, stats) = answer(r).await;
        assert_eq!(status, 200);
        assert_eq!(
            stats,
            json!({
                "token_requests_by_grant": {"authorization_code": 3},
                "refreshes_ok": 0, "refresh_failures": 0, "revocations": 0,
                "resource_requests": 8, "resource_401": 6
            })
        );
        // Only the emulated product's paths are protected resources.
        assert_eq!(t.call(reqwest::Method::GET, "/api/now/table/x", None).await.0, 404);
    }

    #[tokio::test]
    async fn servicenow_password_grant_same_tokens_while_valid() {
        let t = start(sn_cfg()).await;
        let (status, v) = t.sn_password("admin", "pw1").await;
        assert_eq!(status, 200);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["access_token", "expires_in", "refresh_token", "scope", "token_type"]);
        assert_eq!(
            (&v["scope"], &v["token_type"], &v["expires_in"]),
            (&json!("useraccount"), &json!("Bearer"), &json!(1799))
        );
        let access = s(&v, "access_token");
        assert_eq!(access.len(), 64);

        t.p.advance_clock(10);
        let (_, again) = t.sn_password("admin", "pw1").await;
        assert_eq!((s(&again, "access_token"), s(&again, "refresh_token")), (access.clone(), s(&v, "refresh_token")));
        assert_eq!(again["expires_in"], 1789);
        // Another user gets other tokens.
        let (_, abel) = t.sn_password("abel.tuter", "pw2").await;
        assert_ne!(s(&abel, "access_token"), access);
        assert_eq!(t.p.token_owner(&s(&abel, "access_token")).unwrap().user.as_deref(), Some("abel.tuter"));

        let (status, body) = t.now(&access).await;
        assert_eq!(status, 200);
        assert_eq!(body["result"][0]["echo_path"], "/api/now/table/incident");
        assert_eq!(body["result"][0]["sys_id"].as_str().unwrap().len(), 32);

        // Once expired, a new token.
        t.p.expire_access_tokens();
        assert_eq!(t.now(&access).await, (401, sn_unauthorized()));
        let (_, renewed) = t.sn_password("admin", "pw1").await;
        assert_ne!(s(&renewed, "access_token"), access);
        assert_eq!(renewed["expires_in"], 1799);
        assert_eq!(t.p.stats().token_requests_by_grant["password"], 4);
    }

    #[tokio::test]
    async fn servicenow_token_errors_are_one_401_body() {
        let t = start(sn_cfg()).await;
        assert_eq!(t.sn_password("admin", "wrong").await, (401, sn_token_error()));
        assert_eq!(t.sn_password("nobody", "pw1").await, (401, sn_token_error()));
        let bad_client = [
            ("grant_type", "password"),
            ("client_id", "sn_client"),
            ("client_secret", "nope"),
            ("username", "admin"),
            ("password", "pw1"),
        ];
        assert_eq!(t.sn_token(&bad_client).await, (401, sn_token_error()));
        // Query parameters are not read.
        let ok = [
            ("grant_type", "password"),
            ("client_id", "sn_client"),
            ("client_secret", "sn_secret"),
            ("username", "admin"),
            ("password", "pw1"),
        ];
        assert_eq!(t.post_query("/oauth_token.do", &ok).await, (401, sn_token_error()));
        // Nor a form body without its content type.
        let r = t.http.post(format!("{}/oauth_token.do", t.base)).body(form(&ok)).send().await.unwrap();
        assert_eq!(answer(r).await, (401, sn_token_error()));
        let refresh = [
            ("grant_type", "refresh_token"),
            ("client_id", "sn_client"),
            ("client_secret", "sn_secret"),
            ("refresh_token", "x"),
        ];
        assert_eq!(t.sn_token(&refresh).await, (401, sn_token_error()));
        let stats = t.p.stats();
        assert_eq!((stats.refreshes_ok, stats.refresh_failures), (0, 1));
        assert_eq!(stats.token_requests_by_grant["(missing)"], 2);
    }

    #[tokio::test]
    async fn servicenow_refresh_rotation_and_expiry() {
        let mut cfg = sn_cfg();
        cfg.rotate_refresh_token = true;
        let t = start(cfg).await;
        let (_, v) = t.sn_password("admin", "pw1").await;
        let (a1, r1) = (s(&v, "access_token"), s(&v, "refresh_token"));
        let refresh = |rt: String| {
            let t = &t;
            async move {
                t.sn_token(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", "sn_client"),
                    ("client_secret", "sn_secret"),
                    ("refresh_token", &rt),
                ])
                .await
            }
        };
        let (status, v2) = refresh(r1.clone()).await;
        assert_eq!(status, 200);
        let (a2, r2) = (s(&v2, "access_token"), s(&v2, "refresh_token"));
        assert!(a2 != a1 && r2 != r1);
        assert_eq!(refresh(r1).await, (401, sn_token_error()));
        // Refreshing again while a2 lives hands back a2.
        let (_, again) = refresh(r2.clone()).await;
        assert_eq!(s(&again, "access_token"), a2);
        // ServiceNow refresh tokens live 100 days.
        t.p.advance_clock(100 * 24 * 3600);
        assert_eq!(refresh(r2).await, (401, sn_token_error()));
        assert_eq!(t.now(&a2).await.0, 401);
    }

    #[tokio::test]
    async fn servicenow_refresh_without_rotation_repeats_the_refresh_token() {
        let t = start(sn_cfg()).await;
        let (_, v) = t.sn_password("admin", "pw1").await;
        let r1 = s(&v, "refresh_token");
        let (_, v2) = t
            .sn_token(&[
                ("grant_type", "refresh_token"),
                ("client_id", "sn_client"),
                ("client_secret", "sn_secret"),
                ("refresh_token", &r1),
            ])
            .await;
        assert_eq!(s(&v2, "refresh_token"), r1);
        assert_ne!(s(&v2, "access_token"), s(&v, "access_token"));
        assert_eq!(t.p.stats().refreshes_ok, 1);
    }

    #[tokio::test]
    async fn servicenow_code_and_client_credentials_grants_and_revoke() {
        let t = start(sn_cfg()).await;
        let r = t
            .get("/oauth_auth.do", &[("response_type", "code"), ("client_id", "sn_client"), ("redirect_uri", REDIRECT)])
            .await;
        let page = r.text().await.unwrap();
        assert!(page.contains(r#"action="/oauth_auth.do""#), "{page}");
        let q = t
            .approve(
                "/oauth_auth.do",
                &[
                    ("response_type", "code"),
                    ("client_id", "sn_client"),
                    ("redirect_uri", REDIRECT),
                    ("state", "xyz"),
                    ("approve", "yes"),
                ],
            )
            .await;
        assert_eq!(q.keys().count(), 2, "{q:?}");
        assert_eq!(q["state"], "xyz");
        let exchange = |code: String, redirect: &'static str| {
            let t = &t;
            async move {
                t.sn_token(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", "sn_client"),
                    ("client_secret", "sn_secret"),
                    ("code", &code),
                    ("redirect_uri", redirect),
                ])
                .await
            }
        };
        assert_eq!(exchange(q["code"].clone(), "http://127.0.0.1:9/x").await, (401, sn_token_error()));
        let (status, v) = exchange(q["code"].clone(), REDIRECT).await;
        assert_eq!(status, 200);
        assert!(v.get("refresh_token").is_some());
        assert_eq!(exchange(q["code"].clone(), REDIRECT).await, (401, sn_token_error()));
        let access = s(&v, "access_token");
        assert_eq!(t.p.token_owner(&access).unwrap().user.as_deref(), Some("admin"));

        let denied = t
            .approve(
                "/oauth_auth.do",
                &[("response_type", "code"), ("client_id", "sn_client"), ("redirect_uri", REDIRECT), ("approve", "no")],
            )
            .await;
        assert_eq!(denied, HashMap::from([("error".into(), "access_denied".into())]));

        let cc = [("grant_type", "client_credentials"), ("client_id", "sn_client"), ("client_secret", "sn_secret")];
        let (status, c1) = t.sn_token(&cc).await;
        assert_eq!(status, 200);
        assert!(c1.get("refresh_token").is_none());
        assert_eq!(s(&t.sn_token(&cc).await.1, "access_token"), s(&c1, "access_token"));

        // Revocation: always 200, empty body; by query (GET or POST) or form body.
        let r = t.http.get(format!("{}/oauth_revoke_token.do?token={}", t.base, access)).send().await.unwrap();
        assert_eq!(answer(r).await, (200, json!("")));
        assert_eq!(t.now(&access).await, (401, sn_unauthorized()));
        assert_eq!(t.post_form("/oauth_revoke_token.do", &[("token", &s(&c1, "access_token"))]).await.0, 200);
        assert_eq!(t.now(&s(&c1, "access_token")).await.0, 401);
        assert_eq!(t.post_query("/oauth_revoke_token.do", &[("token", "unknown")]).await.0, 200);
        assert_eq!(t.p.stats().revocations, 2);
        // Missing or non-Bearer credentials: the same 401.
        assert_eq!(t.call(reqwest::Method::DELETE, "/api/now/table/incident/1", None).await, (401, sn_unauthorized()));
        assert_eq!(
            t.call(reqwest::Method::GET, "/api/now/table/incident", Some(&format!("Zoho-oauthtoken {access}"))).await,
            (401, sn_unauthorized())
        );
    }

    /// A token request straight to the state.
    fn grant(p: &Provider, pairs: &[(&str, &str)]) -> Result<Value, TokenError> {
        let params = Params(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        let mut st = p.lock();
        st.token(&params).map(|issued| st.token_body(issued))
    }

    #[test]
    fn tokens_issued_on_a_data_file_are_accepted_after_reopening_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sandbox.db");
        let mut rotating = zoho_cfg();
        rotating.rotate_refresh_token = true;
        let zoho = Provider::open(rotating, Some(&path), "zoho").unwrap();
        let sn = Provider::open(sn_cfg(), Some(&path), "servicenow").unwrap();
        let code = zoho.mint_self_client_code(CLIENT, &["ZohoCRM.modules.ALL"]);
        let first = grant(
            &zoho,
            &[("grant_type", "authorization_code"), ("client_id", CLIENT), ("client_secret", SECRET), ("code", &code)],
        )
        .unwrap();
        let refresh_pairs = |r: &str| -> Vec<(String, String)> {
            [("grant_type", "refresh_token"), ("client_id", CLIENT), ("client_secret", SECRET), ("refresh_token", r)]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let pairs = refresh_pairs(&s(&first, "refresh_token"));
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // Rotation: the second refresh token replaces the first one, for both access tokens.
        let second = grant(&zoho, &pairs).unwrap();
        let kept = grant(
            &zoho,
            &[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("code", &zoho.mint_self_client_code(CLIENT, &["x"])),
            ],
        )
        .unwrap();
        assert!(zoho.lock().revoke(&s(&kept, "access_token"), None).unwrap());
        let password = [
            ("grant_type", "password"),
            ("client_id", "sn_client"),
            ("client_secret", "sn_secret"),
            ("username", "admin"),
            ("password", "pw1"),
        ];
        let sn_first = grant(&sn, &password).unwrap();
        drop((zoho, sn));

        let zoho = Provider::open(zoho_cfg(), Some(&path), "zoho").unwrap();
        let sn = Provider::open(sn_cfg(), Some(&path), "servicenow").unwrap();
        let owner = zoho.token_owner(&s(&first, "access_token")).unwrap();
        assert_eq!(
            (owner.client_id.as_str(), owner.org.as_str(), owner.scopes.as_slice(), owner.expired),
            (CLIENT, "org_us", &["ZohoCRM.modules.ALL".to_string()][..], false)
        );
        assert!(zoho.token_owner(&s(&second, "access_token")).is_some());
        assert_eq!(zoho.token_owner(&s(&kept, "access_token")), None, "revoked before the restart");
        assert_eq!(
            grant(&zoho, &pairs).unwrap_err(),
            TokenError::InvalidRefreshToken,
            "rotated away before the restart"
        );
        let pairs = refresh_pairs(&s(&second, "refresh_token"));
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(grant(&zoho, &pairs).unwrap()["access_token"].is_string());
        // The two providers' rows stay apart; ServiceNow hands the same live token back.
        assert_eq!(sn.token_owner(&s(&first, "access_token")), None);
        assert_eq!(s(&grant(&sn, &password).unwrap(), "access_token"), s(&sn_first, "access_token"));
        // Expiring is stored too.
        sn.expire_access_tokens();
        drop(sn);
        let sn = Provider::open(sn_cfg(), Some(&path), "servicenow").unwrap();
        assert!(sn.token_owner(&s(&sn_first, "access_token")).unwrap().expired);
        // In memory: nothing is kept.
        let mem = Provider::open(zoho_cfg(), None, "zoho").unwrap();
        assert_eq!(mem.token_owner(&s(&first, "access_token")), None);
    }

    #[test]
    fn pkce_and_helpers() {
        assert!(pkce_matches(
            "S256",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert_eq!(split_scopes(Some("a.b,c.d e.f, ,")), ["a.b", "c.d", "e.f"]);
        assert_eq!(strip_prefix_ignore_case("BEARER x", "bearer "), Some("x"));
        assert_eq!(strip_prefix_ignore_case("é", "bearer "), None);
        assert_eq!(escape_html(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, format!("Basic {}", STANDARD.encode("id:se:cret")).parse().unwrap());
        assert_eq!(basic_credentials(&h), Some(("id".into(), "se:cret".into())));
    }
}
