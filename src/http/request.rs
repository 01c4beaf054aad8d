//! A request ready to send ([`Outgoing`]: method, URL, headers, [`Body`]) and the [`Response`]
//! read back. Credential headers are marked sensitive so HTTP/2 never indexes them (HPACK).

use reqwest::Method;
use url::Url;

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body.
    Empty,
    /// `application/x-www-form-urlencoded` pairs (encoded when sent, after credentials are added).
    Form(Vec<(String, String)>),
    /// Raw bytes with a content type.
    Raw {
        /// Bytes.
        bytes: Vec<u8>,
        /// `Content-Type`.
        content_type: String,
    },
}

/// A request ready to send (before credentials).
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// Full URL.
    pub url: Url,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Names of the headers that carry credentials: sent marked sensitive (never indexed by
    /// HTTP/2 HPACK). `Authorization`, `Proxy-Authorization` and `Cookie` always are.
    pub sensitive: Vec<String>,
    /// Body.
    pub body: Body,
}

/// Why a form field cannot be added to a request (the phrase ends a sentence of the caller's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// The method carries no body.
    #[error("a {method} request has none; use type POST, PUT or PATCH with map parameters")]
    NoBody {
        /// The method.
        method: String,
    },
    /// The body is not a form.
    #[error("this request's body is `{content_type}`; send map parameters instead")]
    OtherBody {
        /// Its content type.
        content_type: String,
    },
}

/// Why a field cannot be added to a request's JSON body (the phrase ends a sentence of the
/// caller's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonFieldError {
    /// The method carries no body.
    #[error("a {method} request has none; use type POST, PUT or PATCH with `body` a map")]
    NoBody {
        /// The method.
        method: String,
    },
    /// The body is a form.
    #[error("this request's body is a form (map `parameters`); send the map as `body` instead")]
    FormBody,
    /// The body is JSON but not an object.
    #[error("this request's JSON body is {what}, not an object; send `body` as a map")]
    NotObject {
        /// What it is: `an array`, `a string`, ...
        what: &'static str,
    },
    /// The body is not JSON.
    #[error("this request's body is `{content_type}`, not a JSON object; send `body` as a map")]
    OtherBody {
        /// Its content type.
        content_type: String,
    },
}

/// Headers whose values are always sent marked sensitive (and dropped on a hop to another origin).
pub const ALWAYS_SENSITIVE: &[&str] = &["authorization", "proxy-authorization", "cookie"];

impl Outgoing {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: Url) -> Outgoing {
        Outgoing { method, url, headers: Vec::new(), sensitive: Vec::new(), body: Body::Empty }
    }

    /// Sets a header, replacing any with the same name (case-insensitive).
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// Sets a header that carries a credential (see [`Outgoing::sensitive`]), replacing any with
    /// the same name.
    pub fn set_sensitive_header(&mut self, name: &str, value: &str) {
        self.set_header(name, value);
        if !self.is_sensitive(name) {
            self.sensitive.push(name.to_string());
        }
    }

    /// Whether the header `name` is sent marked sensitive.
    pub fn is_sensitive(&self, name: &str) -> bool {
        ALWAYS_SENSITIVE.iter().any(|s| s.eq_ignore_ascii_case(name))
            || self.sensitive.iter().any(|s| s.eq_ignore_ascii_case(name))
    }

    /// Sets a query parameter, replacing any with the same name.
    pub fn set_query(&mut self, name: &str, value: &str) {
        let kept: Vec<(String, String)> =
            self.url.query_pairs().filter(|(k, _)| k != name).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        let mut q = self.url.query_pairs_mut();
        q.clear();
        q.extend_pairs(kept.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        q.append_pair(name, value);
        drop(q);
    }

    /// Sets a form field, creating a form body on a method that may carry one; an error when the
    /// request has a body of another type or a method without a body.
    pub fn set_form(&mut self, name: &str, value: &str) -> Result<(), FormError> {
        match &mut self.body {
            Body::Form(pairs) => {
                pairs.retain(|(k, _)| k != name);
                pairs.push((name.to_string(), value.to_string()));
                Ok(())
            }
            Body::Empty if !matches!(self.method, Method::GET | Method::HEAD | Method::DELETE) => {
                self.body = Body::Form(vec![(name.to_string(), value.to_string())]);
                Ok(())
            }
            Body::Empty => Err(FormError::NoBody { method: self.method.to_string() }),
            Body::Raw { content_type, .. } => Err(FormError::OtherBody { content_type: content_type.clone() }),
        }
    }

    /// Sets a top-level field of the JSON object body, replacing one with the same name; creates
    /// the body `{name: value}` (`application/json`) on a method that may carry one; an error for
    /// a method without a body, a form, a body that is not JSON or JSON that is not an object.
    pub fn set_json_field(&mut self, name: &str, value: &str) -> Result<(), JsonFieldError> {
        match &mut self.body {
            Body::Empty if !matches!(self.method, Method::GET | Method::HEAD | Method::DELETE) => {
                let mut m = serde_json::Map::new();
                m.insert(name.to_string(), serde_json::Value::String(value.to_string()));
                self.body = Body::Raw {
                    bytes: serde_json::Value::Object(m).to_string().into_bytes(),
                    content_type: "application/json".to_string(),
                };
                Ok(())
            }
            Body::Empty => Err(JsonFieldError::NoBody { method: self.method.to_string() }),
            Body::Form(_) => Err(JsonFieldError::FormBody),
            Body::Raw { bytes, content_type } => {
                if !is_json_type(content_type) {
                    return Err(JsonFieldError::OtherBody { content_type: content_type.clone() });
                }
                let mut m = match serde_json::from_slice::<serde_json::Value>(bytes) {
                    Ok(serde_json::Value::Object(m)) => m,
                    Ok(other) => return Err(JsonFieldError::NotObject { what: json_kind(&other) }),
                    Err(_) => return Err(JsonFieldError::NotObject { what: "not valid JSON" }),
                };
                m.insert(name.to_string(), serde_json::Value::String(value.to_string()));
                *bytes = serde_json::Value::Object(m).to_string().into_bytes();
                Ok(())
            }
        }
    }
}

/// Whether a content type is JSON (`application/json`, `application/*+json`, parameters aside).
pub fn is_json_type(ct: &str) -> bool {
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ct == "application/json" || ct.ends_with("+json")
}

/// What a JSON value is, for messages.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Null => "null",
        serde_json::Value::Object(_) => "an object",
    }
}

impl Outgoing {
    /// The reqwest request for this exact request (headers, body and its content type).
    pub fn request(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        let mut rb = client.request(self.method.clone(), self.url.clone());
        for (k, v) in &self.headers {
            rb = match reqwest::header::HeaderValue::from_str(v) {
                Ok(mut value) => {
                    value.set_sensitive(self.is_sensitive(k));
                    rb.header(k.as_str(), value)
                }
                // Not a valid header value: let reqwest report it when sending.
                Err(_) => rb.header(k.as_str(), v.as_str()),
            };
        }
        let has_type = self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        match &self.body {
            Body::Empty => {}
            Body::Form(pairs) => {
                let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
                if !has_type {
                    rb = rb.header("Content-Type", "application/x-www-form-urlencoded");
                }
                rb = rb.body(encoded);
            }
            Body::Raw { bytes, content_type } => {
                if !has_type {
                    rb = rb.header("Content-Type", content_type.as_str());
                }
                rb = rb.body(bytes.clone());
            }
        }
        rb
    }
}

/// The HTTP response as scripts see it.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers with lower-case names; repeated headers joined with ", ".
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for 204 and HEAD).
    pub body: Vec<u8>,
    /// Attempts made and the wait not slept, set by the retry loop.
    pub attempts: super::retry::Attempts,
}
