//! State: authorization codes, grants, access and refresh tokens, and the grant logic (code,
//! refresh, client credentials, password) both flavours share, each answering in its own way.

use super::*;

/// A grant code waiting to be exchanged.
pub(super) struct Code {
    pub(super) client_id: String,
    /// The authorization request's `redirect_uri`; `None` for self-client codes.
    pub(super) redirect_uri: Option<String>,
    pub(super) scopes: Vec<String>,
    pub(super) user: Option<String>,
    /// Zoho `access_type=offline`: the exchange also yields a refresh token.
    pub(super) offline: bool,
    /// Zoho self-client code: no `redirect_uri` at the exchange.
    pub(super) self_client: bool,
    /// PKCE `(method, challenge)`.
    pub(super) challenge: Option<(String, String)>,
    pub(super) expires_ms: u64,
    pub(super) used: bool,
}

/// What a token stands for.
#[derive(Clone)]
pub(super) struct Grant {
    pub(super) client_id: String,
    pub(super) org: String,
    pub(super) scopes: Vec<String>,
    pub(super) user: Option<String>,
}

pub(super) struct Access {
    pub(super) grant: Grant,
    /// The refresh token it came with or from; revoking that one revokes this.
    pub(super) refresh: Option<String>,
    pub(super) expires_ms: u64,
    /// Issue order (0: loaded from the data file, older than any issued since).
    pub(super) seq: u64,
}

pub(super) struct Refresh {
    pub(super) grant: Grant,
    pub(super) expires_ms: Option<u64>,
    /// Issue order (0: loaded from the data file).
    pub(super) seq: u64,
}

/// A successful token request, before it is written in the flavor's format.
pub(super) struct Issued {
    pub(super) access_token: String,
    /// The refresh token to show in the response, if any.
    pub(super) refresh_token: Option<String>,
    pub(super) expires_in: u64,
    pub(super) scopes: Vec<String>,
    /// The client it was issued to (its data center names the `api_domain`).
    pub(super) client_id: String,
}

/// Why a token request failed (Zoho spells each one; ServiceNow answers them all alike), or why
/// it could not be served at all (`Storage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum TokenError {
    InvalidClient,
    InvalidClientSecret,
    InvalidCode,
    InvalidRedirectUri,
    InvalidCodeVerifier,
    InvalidRefreshToken,
    InvalidUser,
    MissingOrgInfo,
    UnsupportedGrantType,
    /// Zoho's throttle: too many access tokens for one refresh token in 10 minutes.
    Throttled,
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
    pub(super) fn zoho_code(&self) -> &'static str {
        match self {
            TokenError::InvalidClient => "invalid_client",
            TokenError::InvalidClientSecret => "invalid_client_secret",
            // Zoho answers a dead (unknown, revoked, superseded) refresh token like a dead code.
            TokenError::InvalidCode | TokenError::InvalidRefreshToken => "invalid_code",
            TokenError::InvalidRedirectUri => "invalid_redirect_uri",
            TokenError::InvalidCodeVerifier => "invalid_code_verifier",
            TokenError::MissingOrgInfo => "missing_org_info",
            TokenError::InvalidUser | TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::Throttled => "Access Denied",
            TokenError::Storage(_) => "server_error",
        }
    }

    /// Zoho's HTTP 200 error body.
    pub(super) fn zoho_body(&self) -> Value {
        match self {
            TokenError::Throttled => json!({
                "error_description": THROTTLE_DESCRIPTION, "error": self.zoho_code(), "status": "failure"
            }),
            other => json!({ "error": other.zoho_code() }),
        }
    }
}

/// ServiceNow hands back the same tokens for the same client, user and grant while the access
/// token lives: (client_id, user, grant key).
pub(super) type ReuseKey = (String, String, String);

pub(super) struct ProviderState {
    pub(super) cfg: ProviderConfig,
    pub(super) offset_ms: u64,
    pub(super) codes: HashMap<String, Code>,
    pub(super) access: HashMap<String, Access>,
    pub(super) refresh: HashMap<String, Refresh>,
    pub(super) current: HashMap<ReuseKey, String>,
    pub(super) stats: Stats,
    /// Where issued tokens are written through (`None`: memory only).
    pub(super) store: Option<TokenStore>,
    /// The knobs (Zoho Accounts' limits are read from them).
    pub(super) knobs: crate::faults::Faults,
    /// When each refresh token obtained access tokens, in the last 10 minutes (provider clock).
    pub(super) refresh_times: HashMap<String, std::collections::VecDeque<u64>>,
    /// The last issue number given to a token.
    pub(super) seq: u64,
}

impl ProviderState {
    pub(super) fn now_ms(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        wall.saturating_add(self.offset_ms)
    }

    pub(super) fn is_zoho(&self) -> bool {
        self.cfg.flavor == Flavor::Zoho
    }

    pub(super) fn new_token_string(&self) -> String {
        match self.cfg.flavor {
            Flavor::Zoho => format!("1000.{}.{}", hex(&random_bytes::<16>()), hex(&random_bytes::<16>())),
            Flavor::ServiceNow => URL_SAFE_NO_PAD.encode(random_bytes::<48>()),
        }
    }

    pub(super) fn new_code_string(&self) -> String {
        match self.cfg.flavor {
            Flavor::Zoho => self.new_token_string(),
            Flavor::ServiceNow => URL_SAFE_NO_PAD.encode(random_bytes::<32>()),
        }
    }

    pub(super) fn token_info(&self, access_token: &str) -> Option<TokenInfo> {
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
    pub(super) fn expire_all(&mut self) -> Result<usize, TokenError> {
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
    pub(super) fn stored(&self, write: impl FnOnce(&TokenStore) -> rusqlite::Result<()>) -> Result<(), TokenError> {
        match &self.store {
            Some(s) => write(s).map_err(|e| TokenError::Storage(storage_failed(&e))),
            None => Ok(()),
        }
    }

    /// The client named by `client_id`, if `client_secret` is its secret.
    pub(super) fn client(&self, p: &Params) -> Result<ClientConfig, TokenError> {
        let id = p.get("client_id").ok_or(TokenError::InvalidClient)?;
        let c = self.cfg.clients.iter().find(|c| c.client_id == id).ok_or(TokenError::InvalidClient)?;
        if p.get("client_secret") != Some(c.client_secret.as_str()) {
            return Err(TokenError::InvalidClientSecret);
        }
        Ok(c.clone())
    }

    /// One token-endpoint request, counted in the stats.
    pub(super) fn token(&mut self, p: &Params) -> Result<Issued, TokenError> {
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

    pub(super) fn code_grant(&mut self, p: &Params) -> Result<Issued, TokenError> {
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
        let refresh = if with_refresh { Some(self.new_refresh(&grant, None)?) } else { None };
        self.new_access(grant, refresh.clone(), refresh, key)
    }

    pub(super) fn refresh_grant(&mut self, p: &Params) -> Result<Issued, TokenError> {
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
        self.count_refresh(&old)?;
        let (refresh, shown) = if self.cfg.rotate_refresh_token {
            let new = self.new_refresh(&grant, Some(&old))?;
            self.stored(|s| s.rotate(&old, &new))?;
            self.refresh.remove(&old);
            if let Some(times) = self.refresh_times.remove(&old) {
                self.refresh_times.insert(new.clone(), times);
            }
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

    pub(super) fn client_credentials_grant(&mut self, p: &Params) -> Result<Issued, TokenError> {
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

    pub(super) fn password_grant(&mut self, p: &Params) -> Result<Issued, TokenError> {
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
        let refresh = self.new_refresh(&grant, None)?;
        self.new_access(grant, Some(refresh.clone()), Some(refresh), key)
    }

    /// ServiceNow only: the key under which a live token is handed back again.
    pub(super) fn reuse_key(&self, grant: &Grant, grant_key: &str) -> Option<ReuseKey> {
        (!self.is_zoho())
            .then(|| (grant.client_id.clone(), grant.user.clone().unwrap_or_default(), grant_key.to_string()))
    }

    /// The live token stored under `key`, as a response repeating it and its refresh token.
    pub(super) fn reuse(&self, key: &Option<ReuseKey>) -> Option<Issued> {
        let token = self.current.get(key.as_ref()?)?;
        let a = self.access.get(token)?;
        let now = self.now_ms();
        (now < a.expires_ms).then(|| Issued {
            access_token: token.clone(),
            refresh_token: a.refresh.clone(),
            expires_in: (a.expires_ms - now).div_ceil(1000),
            scopes: a.grant.scopes.clone(),
            client_id: a.grant.client_id.clone(),
        })
    }

    /// A new refresh token for `grant` (in place of `replacing` when it rotates), within the
    /// refresh-token limit.
    pub(super) fn new_refresh(&mut self, grant: &Grant, replacing: Option<&str>) -> Result<String, TokenError> {
        self.make_room_for_refresh(grant, replacing)?;
        let token = self.new_token_string();
        let expires_ms = (!self.is_zoho()).then(|| self.now_ms() + SERVICENOW_REFRESH_TTL_MS);
        let r = Refresh { grant: grant.clone(), expires_ms, seq: self.next_seq() };
        self.stored(|s| s.put_refresh(&token, &r))?;
        self.refresh.insert(token.clone(), r);
        Ok(token)
    }

    pub(super) fn new_access(
        &mut self,
        grant: Grant,
        refresh: Option<String>,
        shown_refresh: Option<String>,
        key: Option<ReuseKey>,
    ) -> Result<Issued, TokenError> {
        if let Some(r) = &refresh {
            self.make_room_for_access(r)?;
        }
        let token = self.new_token_string();
        let ttl = self.cfg.access_ttl_secs;
        let expires_ms = self.now_ms().saturating_add(ttl.saturating_mul(1000));
        let scopes = grant.scopes.clone();
        let client_id = grant.client_id.clone();
        let a = Access { grant, refresh, expires_ms, seq: self.next_seq() };
        self.stored(|s| {
            s.put_access(&token, &a)?;
            key.as_ref().map_or(Ok(()), |k| s.put_reuse(k, &token))
        })?;
        self.access.insert(token.clone(), a);
        if let Some(k) = key {
            self.current.insert(k, token.clone());
        }
        Ok(Issued { access_token: token, refresh_token: shown_refresh, expires_in: ttl, scopes, client_id })
    }

    /// Revokes every refresh token with its access tokens, as a user who removes the app from
    /// "Connected Apps" does: the next refresh is `invalid_code`. Returns how many there were.
    pub(super) fn revoke_all(&mut self) -> Result<usize, TokenError> {
        let all: Vec<String> = self.refresh.keys().cloned().collect();
        for t in &all {
            self.revoke(t, None)?;
        }
        for a in self.access.values_mut() {
            a.expires_ms = 0;
        }
        Ok(all.len())
    }

    /// Revokes a refresh token (with its access tokens) or an access token. With `client_id`, only
    /// a token of that client. Returns whether something was revoked.
    pub(super) fn revoke(&mut self, token: &str, client_id: Option<&str>) -> Result<bool, TokenError> {
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

    /// The success body in the flavor's format; `base` is this server's base URL (Zoho's
    /// `api_domain` when neither the client nor the configuration names one).
    pub(super) fn token_body(&self, issued: Issued, base: &str) -> Value {
        let mut m = Map::new();
        match self.cfg.flavor {
            Flavor::Zoho => {
                m.insert("access_token".into(), issued.access_token.into());
                if let Some(r) = issued.refresh_token {
                    m.insert("refresh_token".into(), r.into());
                }
                let client = self.cfg.clients.iter().find(|c| c.client_id == issued.client_id);
                let domain = client.and_then(|c| c.api_domain.clone()).or_else(|| self.cfg.api_domain.clone());
                m.insert("api_domain".into(), domain.unwrap_or_else(|| base.to_string()).into());
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

pub(super) fn put_expires(m: &mut Map<String, Value>, secs: u64, style: ExpiresStyle) {
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
