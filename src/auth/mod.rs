//! Applying a connection's credentials to an outgoing request: one [`Credentials`] variant per
//! auth kind, each in its own file. The invoker calls [`Credentials::apply`] for every hop that may
//! carry credentials (same host, allowed, HTTPS or loopback) and never for the others.
//!
//! On a clash, credentials win: a script header, query, form or JSON body field with the same name
//! as one the credentials set is replaced.

pub mod api_key;
pub mod basic;
pub mod callback;
pub mod flow_error;
pub mod live;
pub mod oauth1;
pub mod oauth1_flow;
pub mod oauth2;
pub mod oauth2_flow;
pub mod rfc5849;
pub mod rfc6749;

use secrecy::SecretString;

use crate::http::{InvokeError, Outgoing};
use crate::service::Placement;

/// A value a connection sends on every request: an API key or a non-auth param such as Desk's
/// `orgId`.
#[derive(Debug)]
pub struct PlacedValue {
    /// Header, query, form or JSON field name.
    pub key: String,
    /// Where it goes.
    pub placement: Placement,
    /// The value (sealed at rest, zeroized on drop).
    pub value: SecretString,
}

/// A connection's credentials, by auth kind.
#[derive(Debug)]
pub enum Credentials {
    /// No credentials.
    None,
    /// API key(s): see [`api_key`].
    ApiKey(api_key::ApiKey),
    /// HTTP Basic: see [`basic`].
    Basic(basic::Basic),
    /// OAuth 1.0a: see [`oauth1`].
    OAuth1(Box<oauth1::OAuth1>),
    /// OAuth 2.0: see [`oauth2`].
    OAuth2(Box<oauth2::OAuth2>),
}

impl Credentials {
    /// Sets the credentials on `req`.
    pub fn apply(&self, req: &mut Outgoing, link_name: &str) -> Result<(), InvokeError> {
        match self {
            Credentials::None => Ok(()),
            Credentials::ApiKey(k) => k.apply(req, link_name),
            Credentials::Basic(b) => {
                b.apply(req);
                Ok(())
            }
            Credentials::OAuth1(o) => o.apply(req, link_name, &[]),
            Credentials::OAuth2(o) => {
                o.apply(req);
                Ok(())
            }
        }
    }

    /// Query-string keys these credentials use (redacted in traces).
    pub fn query_keys(&self) -> Vec<&str> {
        match self {
            Credentials::ApiKey(k) => {
                k.values.iter().filter(|v| v.placement == Placement::Query).map(|v| v.key.as_str()).collect()
            }
            Credentials::OAuth2(o) if o.placement == Placement::Query => vec!["access_token"],
            Credentials::OAuth1(o) if o.placement == Placement::Query => {
                vec!["oauth_consumer_key", "oauth_token", "oauth_signature", "oauth_nonce"]
            }
            _ => Vec::new(),
        }
    }

    /// Whether there is anything to protect.
    pub fn is_none(&self) -> bool {
        matches!(self, Credentials::None)
    }
}

/// Places values on a request, replacing same-named script values.
pub fn place_values(req: &mut Outgoing, values: &[PlacedValue], link_name: &str) -> Result<(), InvokeError> {
    use secrecy::ExposeSecret;
    for v in values {
        let value = v.value.expose_secret();
        match v.placement {
            Placement::Header => req.set_sensitive_header(&v.key, value),
            Placement::Query => req.set_query(&v.key, value),
            Placement::Form => req.set_form(&v.key, value).map_err(|detail| {
                InvokeError::bad_request(
                    format!(
                        "connection `{link_name}` sends `{}` as form data, which needs a form body: {detail}",
                        v.key
                    ),
                    Some(link_name),
                )
            })?,
            Placement::Json => req.set_json_field(&v.key, value).map_err(|detail| {
                InvokeError::bad_request(
                    format!(
                        "connection `{link_name}` sends `{}` in the JSON body, which needs a JSON object body: {detail}",
                        v.key
                    ),
                    Some(link_name),
                )
            })?,
        }
    }
    Ok(())
}
