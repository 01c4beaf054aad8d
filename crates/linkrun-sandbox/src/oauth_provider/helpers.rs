//! Helpers: request parameters, Basic client credentials, scopes, PKCE, random bytes and HTML
//! escaping, and the answer to a storage failure.

use super::*;

/// HTTP 500 for a token or revocation request the data file refused to store.
pub(super) fn storage_failure(msg: &str) -> Response {
    eprintln!("linkrun sandbox: OAuth: {msg}");
    (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "server_error", "error_description": msg})))
        .into_response()
}

/// Decoded request parameters in arrival order; empty values count as absent.
#[derive(Default)]
pub(super) struct Params(pub(super) Vec<(String, String)>);

impl Params {
    pub(super) fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    /// The first non-empty value of `key`.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// Zoho reads the form body (when it is one) and the query string; the body wins.
pub(super) fn zoho_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
    let mut params = if is_form(headers, true) { Params::parse(body) } else { Params::default() };
    params.0.extend(Params::parse(query.unwrap_or("").as_bytes()).0);
    params
}

/// Whether the body is `application/x-www-form-urlencoded` (or, with `missing_ok`, has no type).
pub(super) fn is_form(headers: &HeaderMap, missing_ok: bool) -> bool {
    match headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) => ct.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"),
        None => missing_ok,
    }
}

/// `Authorization: Basic base64(id:secret)`.
pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = strip_prefix_ignore_case(value.trim(), "basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

pub(super) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Scopes as Zoho (commas) or ServiceNow (spaces) write them.
pub(super) fn split_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// RFC 7636 §4.6.
pub(super) fn pkce_matches(method: &str, challenge: &str, verifier: &str) -> bool {
    match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
        _ => verifier == challenge,
    }
}

pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
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

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn escape_html(s: &str) -> String {
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
