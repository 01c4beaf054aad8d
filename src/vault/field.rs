//! The name of a sealed value ([`Field`]): what the `sealed.field` column holds and what each
//! ciphertext's associated data binds, so a value copied onto another field does not open.
//!
//! Stored forms (stable: they are bound into every ciphertext): `param:KEY` for a param the user
//! supplied, `token:access_token` and `token:refresh_token` for OAuth 2.0 tokens,
//! `pending:oauth_token` and `pending:oauth_token_secret` for OAuth 1.0a temporary credentials
//! waiting for their verifier.

use std::fmt;

/// A sealed value's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// A param the user supplied (API key, password, client secret...).
    Param(String),
    /// The OAuth 2.0 access token.
    AccessToken,
    /// The OAuth 2.0 refresh token.
    RefreshToken,
    /// An OAuth 1.0a temporary token waiting for its verifier.
    PendingToken,
    /// The secret of [`Field::PendingToken`].
    PendingSecret,
    /// A stored name this build does not know: kept and shown, never dropped.
    Other(String),
}

impl Field {
    /// A param field.
    pub fn param(key: &str) -> Field {
        Field::Param(key.to_string())
    }

    /// The stored form.
    pub fn stored(&self) -> String {
        match self {
            Field::Param(k) => format!("param:{k}"),
            Field::AccessToken => "token:access_token".into(),
            Field::RefreshToken => "token:refresh_token".into(),
            Field::PendingToken => "pending:oauth_token".into(),
            Field::PendingSecret => "pending:oauth_token_secret".into(),
            Field::Other(s) => s.clone(),
        }
    }

    /// Reads a stored form.
    pub fn parse(stored: &str) -> Field {
        match stored {
            "token:access_token" => Field::AccessToken,
            "token:refresh_token" => Field::RefreshToken,
            "pending:oauth_token" => Field::PendingToken,
            "pending:oauth_token_secret" => Field::PendingSecret,
            s => match s.strip_prefix("param:") {
                Some(k) => Field::Param(k.to_string()),
                None => Field::Other(s.to_string()),
            },
        }
    }

    /// The param key, for a param field.
    pub fn param_key(&self) -> Option<&str> {
        match self {
            Field::Param(k) => Some(k),
            _ => None,
        }
    }
}

/// As users read it in messages: param `password`, token `access_token`.
impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stored = self.stored();
        match stored.split_once(':') {
            Some((kind, name)) => write!(f, "{kind} `{name}`"),
            None => write!(f, "`{stored}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_round_trip_and_read_as_people_say_them() {
        for f in [
            Field::param("client_secret"),
            Field::AccessToken,
            Field::RefreshToken,
            Field::PendingToken,
            Field::PendingSecret,
            Field::Other("legacy".into()),
        ] {
            assert_eq!(Field::parse(&f.stored()), f);
        }
        assert_eq!(Field::param("password").to_string(), "param `password`");
        assert_eq!(Field::AccessToken.to_string(), "token `access_token`");
        assert_eq!(Field::Other("x".into()).to_string(), "`x`");
    }
}
