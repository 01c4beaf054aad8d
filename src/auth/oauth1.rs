//! OAuth 1.0a credentials: signs each outgoing request ([`super::rfc5849`]) and places the
//! protocol parameters where the service's `placement` says: the `Authorization` header, the
//! query string, or a form-encoded body (an error before sending when the request has another
//! kind of body or none that may carry one).
//!
//! Nonce and timestamp are random and current. Debug builds (the ones the test suite runs) honour
//! `LINKRUN_TEST_OAUTH1_NONCE` and `LINKRUN_TEST_OAUTH1_TIMESTAMP`, so signatures can be checked
//! against published vectors; release builds ignore them.

use rsa::RsaPrivateKey;
use secrecy::{ExposeSecret, SecretString};

use super::rfc5849::{self, Key, SignatureMethod};
use crate::http::{Body, InvokeError, Outgoing};
use crate::service::Placement;

/// The OAuth 1.0a credentials of a connection (or of a flow step, with a temporary token).
pub struct OAuth1 {
    /// `oauth_consumer_key`.
    pub consumer_key: SecretString,
    /// Consumer secret (HMAC and PLAINTEXT).
    pub consumer_secret: Option<SecretString>,
    /// RSA private key (RSA methods).
    pub private_key: Option<RsaPrivateKey>,
    /// `oauth_token`, when the connection holds one.
    pub token: Option<SecretString>,
    /// Token secret.
    pub token_secret: Option<SecretString>,
    /// Signature method.
    pub method: SignatureMethod,
    /// `realm` of the `Authorization` header.
    pub realm: Option<String>,
    /// Where the protocol parameters go.
    pub placement: Placement,
}

impl std::fmt::Debug for OAuth1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth1")
            .field("method", &self.method)
            .field("placement", &self.placement)
            .field("has_token", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// A fresh nonce: 32 random hex characters (or the test override).
fn nonce() -> String {
    #[cfg(debug_assertions)]
    if let Ok(n) = std::env::var("LINKRUN_TEST_OAUTH1_NONCE") {
        return n;
    }
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // The OS random source failing is exceptional; fall back to the clock so that a nonce is
        // still unique per request.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        b = t.as_nanos().to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The current time in seconds (or the test override).
fn timestamp() -> String {
    #[cfg(debug_assertions)]
    if let Ok(t) = std::env::var("LINKRUN_TEST_OAUTH1_TIMESTAMP") {
        return t;
    }
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).to_string()
}

/// The form pairs that take part in the signature: a form body, or a raw body typed
/// `application/x-www-form-urlencoded` (RFC 5849 §3.4.1.3.1). Other bodies are not signed.
fn signed_body_params(body: &Body) -> Vec<(String, String)> {
    match body {
        Body::Form(pairs) => pairs.clone(),
        Body::Raw { bytes, content_type }
            if content_type
                .split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")) =>
        {
            url::form_urlencoded::parse(bytes).into_owned().collect()
        }
        _ => Vec::new(),
    }
}

impl OAuth1 {
    /// Signs `req` and places the protocol parameters. `extra` adds flow parameters
    /// (`oauth_callback`, `oauth_verifier`).
    pub fn apply(&self, req: &mut Outgoing, link_name: &str, extra: &[(&str, &str)]) -> Result<(), InvokeError> {
        if self.placement == Placement::Form && !matches!(req.body, Body::Form(_)) {
            let can_create = matches!(req.body, Body::Empty)
                && !matches!(req.method, reqwest::Method::GET | reqwest::Method::HEAD | reqwest::Method::DELETE);
            if !can_create {
                let why = match &req.body {
                    Body::Raw { content_type, .. } => format!("this request's body is `{content_type}`"),
                    _ => format!("a {} request has no body", req.method),
                };
                return Err(InvokeError::bad_request(
                    format!(
                        "connection `{link_name}` sends its OAuth 1.0a parameters in a form body, but {why}: use type POST, PUT or PATCH with map parameters"
                    ),
                    Some(link_name),
                ));
            }
            req.body = Body::Form(Vec::new());
        }
        let mut protocol: Vec<(String, String)> = vec![
            ("oauth_consumer_key".into(), self.consumer_key.expose_secret().to_string()),
            ("oauth_signature_method".into(), self.method.as_str().into()),
            ("oauth_timestamp".into(), timestamp()),
            ("oauth_nonce".into(), nonce()),
            ("oauth_version".into(), "1.0".into()),
        ];
        if let Some(t) = &self.token {
            protocol.push(("oauth_token".into(), t.expose_secret().to_string()));
        }
        for (k, v) in extra {
            protocol.push((k.to_string(), v.to_string()));
        }
        let mut params = rfc5849::query_params(&req.url);
        params.extend(signed_body_params(&req.body));
        params.extend(protocol.iter().cloned());
        let base = rfc5849::signature_base_string(req.method.as_str(), &req.url, &params);
        let key = match (&self.private_key, self.method.is_rsa()) {
            (Some(k), true) => Key::Rsa(k),
            _ => Key::Secrets {
                consumer_secret: self.consumer_secret.as_ref().map(|s| s.expose_secret()).unwrap_or_default(),
                token_secret: self.token_secret.as_ref().map(|s| s.expose_secret()).unwrap_or_default(),
            },
        };
        let signature = rfc5849::sign(self.method, &base, &key).map_err(|m| {
            InvokeError::connection(format!("connection `{link_name}` cannot sign its request: {m}"), link_name)
        })?;
        protocol.push(("oauth_signature".into(), signature));
        match self.placement {
            // `json` is refused for OAuth 1.0a when the service is read: a signature covers no JSON.
            Placement::Header | Placement::Json => req.set_sensitive_header(
                "Authorization",
                &rfc5849::authorization_header(self.realm.as_deref(), &protocol),
            ),
            Placement::Query => {
                let mut q = req.url.query_pairs_mut();
                for (k, v) in &protocol {
                    q.append_pair(k, v);
                }
            }
            Placement::Form => {
                if let Body::Form(pairs) = &mut req.body {
                    pairs.extend(protocol);
                }
            }
        }
        Ok(())
    }
}

impl OAuth1 {
    /// Builds the credentials of a connection from its opened params (`take` hands each one
    /// over). The token is optional: the temporary-credential request is made without one.
    pub fn from_fields(
        service: &crate::service::Service,
        take: &mut dyn FnMut(&str) -> Option<SecretString>,
        link_name: &str,
    ) -> Result<OAuth1, InvokeError> {
        let def = service.def.oauth1.as_ref().ok_or_else(|| {
            InvokeError::connection(format!("service `{}` has no `[oauth1]` table", service.link_name()), link_name)
        })?;
        let method = def.signature_method;
        let consumer_key = take("consumer_key").ok_or_else(|| {
            InvokeError::connection(
                format!("connection `{link_name}` has no `consumer_key`: recreate it with --param consumer_key=..."),
                link_name,
            )
        })?;
        let consumer_secret = take("consumer_secret");
        let private_key = match take("private_key") {
            Some(pem) => Some(rfc5849::parse_private_key(pem.expose_secret()).ok_or_else(|| {
                InvokeError::connection(
                    format!("the `private_key` of connection `{link_name}` is not an RSA private key in PEM (PKCS#8 or PKCS#1): recreate the connection with the right key"),
                    link_name,
                )
            })?),
            None => None,
        };
        if method.is_rsa() && private_key.is_none() {
            return Err(InvokeError::connection(
                format!(
                    "connection `{link_name}` signs with {} and needs a `private_key` (PEM): recreate it with --param-env private_key=ENVVAR",
                    method.as_str()
                ),
                link_name,
            ));
        }
        if !method.is_rsa() && consumer_secret.is_none() {
            return Err(InvokeError::connection(
                format!(
                    "connection `{link_name}` signs with {} and needs a `consumer_secret`: recreate it with --param consumer_secret",
                    method.as_str()
                ),
                link_name,
            ));
        }
        Ok(OAuth1 {
            consumer_key,
            consumer_secret,
            private_key,
            token: take("token"),
            token_secret: take("token_secret"),
            method,
            realm: def.realm.clone(),
            placement: service.placement(),
        })
    }
}
