//! HTTP Basic auth (RFC 7617): `Authorization: Basic base64(username:password)`, always a header.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::http::Outgoing;

/// Username and password of a connection.
#[derive(Debug)]
pub struct Basic {
    /// Username.
    pub username: SecretString,
    /// Password.
    pub password: SecretString,
}

impl Basic {
    /// Sets the `Authorization` header.
    pub fn apply(&self, req: &mut Outgoing) {
        let pair = Zeroizing::new(format!("{}:{}", self.username.expose_secret(), self.password.expose_secret()));
        let value =
            Zeroizing::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())));
        req.set_sensitive_header("Authorization", &value);
    }
}
