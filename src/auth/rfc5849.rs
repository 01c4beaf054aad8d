//! OAuth 1.0 signing, RFC 5849 §3.4 (with the SHA-2 and RSA-SHA256 variants providers added).
//!
//! Written here rather than taken from a crate: the crates on crates.io either cover only
//! HMAC-SHA1, RSA-SHA1 and PLAINTEXT or build the parameter list from a derived struct, while
//! linkrun signs arbitrary script requests (parameters in the query, the form body and the
//! header, repeated keys kept) with six methods. The primitives come from RustCrypto (`hmac`,
//! `sha1`, `sha2`, `rsa`).
//!
//! - §3.4.1.2 base string URI: scheme and host lower-case, default port dropped, query removed;
//! - §3.4.1.3 parameters: protocol parameters (without `oauth_signature` and `realm`), the query
//!   and a form-encoded body, each name and value encoded per §3.6, sorted by name then value,
//!   duplicates kept;
//! - §3.4.1.1 base string: `METHOD&encode(uri)&encode(normalised parameters)`;
//! - §3.4.2 HMAC keys `encode(consumer_secret)&encode(token_secret)`; §3.4.3 RSA PKCS#1 v1.5;
//!   §3.4.4 PLAINTEXT is the key itself;
//! - §3.5.1 the `Authorization: OAuth` header, values encoded and quoted.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use url::Url;

/// §3.6: everything but ALPHA, DIGIT, `-`, `.`, `_`, `~` is percent-encoded, upper-case hex.
const RFC5849_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes per RFC 5849 §3.6 (UTF-8 first).
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, RFC5849_ENCODE).to_string()
}

/// The signature methods, named as in `oauth_signature_method` (and a service's
/// `signature_method`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantNames,
    strum::Display,
)]
#[serde(try_from = "String", into = "&'static str")]
pub enum SignatureMethod {
    /// §3.4.2.
    #[strum(serialize = "HMAC-SHA1")]
    HmacSha1,
    /// HMAC with SHA-256.
    #[strum(serialize = "HMAC-SHA256")]
    HmacSha256,
    /// HMAC with SHA-512.
    #[strum(serialize = "HMAC-SHA512")]
    HmacSha512,
    /// §3.4.3.
    #[strum(serialize = "RSA-SHA1")]
    RsaSha1,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[strum(serialize = "RSA-SHA256")]
    RsaSha256,
    /// §3.4.4.
    #[strum(serialize = "PLAINTEXT")]
    Plaintext,
}

impl SignatureMethod {
    /// The name used in `oauth_signature_method`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the method signs with an RSA private key.
    pub fn is_rsa(self) -> bool {
        matches!(self, SignatureMethod::RsaSha1 | SignatureMethod::RsaSha256)
    }
}

/// §3.4.1.2: the base string URI.
pub fn base_string_uri(url: &Url) -> String {
    let scheme = url.scheme().to_ascii_lowercase();
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let port = match (url.port(), scheme.as_str()) {
        (Some(80), "http") | (Some(443), "https") | (None, _) => String::new(),
        (Some(p), _) => format!(":{p}"),
    };
    let path = if url.path().is_empty() { "/" } else { url.path() };
    format!("{scheme}://{host}{port}{path}")
}

/// §3.4.1.3.1: the query's name/value pairs, decoded as `application/x-www-form-urlencoded`.
pub fn query_params(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// §3.4.1.3.2: encode names and values, sort by name then value, join with `=` and `&`.
pub fn normalize_parameters(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "oauth_signature" && k != "realm")
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    encoded.sort();
    encoded.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// §3.4.1.1: the signature base string. `params` holds the protocol parameters, the query's
/// and a form body's, in any order.
pub fn signature_base_string(method: &str, url: &Url, params: &[(String, String)]) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(&base_string_uri(url)),
        encode(&normalize_parameters(params))
    )
}

/// The key material of a signature.
pub enum Key<'a> {
    /// Shared secrets (HMAC and PLAINTEXT): client secret and token secret (empty when none).
    Secrets {
        /// Client (consumer) secret.
        consumer_secret: &'a str,
        /// Token secret.
        token_secret: &'a str,
    },
    /// An RSA private key (RSA methods).
    Rsa(&'a RsaPrivateKey),
}

/// Parses an RSA private key in PEM (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`).
pub fn parse_private_key(pem: &str) -> Option<RsaPrivateKey> {
    RsaPrivateKey::from_pkcs8_pem(pem.trim()).ok().or_else(|| RsaPrivateKey::from_pkcs1_pem(pem.trim()).ok())
}

/// HMAC of `data` under `key` with the digest `$d`, base64.
macro_rules! hmac_b64 {
    ($d:ty, $key:expr, $data:expr) => {{
        let key: String = $key;
        let mut mac = <Hmac<$d> as Mac>::new_from_slice(key.as_bytes()).map_err(|_| "HMAC key rejected")?;
        mac.update($data.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }};
}

/// Signs a base string; the result is the `oauth_signature` value before encoding.
pub fn sign(method: SignatureMethod, base: &str, key: &Key<'_>) -> Result<String, &'static str> {
    let secrets = |key: &Key<'_>| match key {
        Key::Secrets { consumer_secret, token_secret } => {
            Ok(format!("{}&{}", encode(consumer_secret), encode(token_secret)))
        }
        Key::Rsa(_) => Err("an HMAC or PLAINTEXT signature needs the consumer secret, not an RSA key"),
    };
    let rsa = |key: &Key<'_>| match key {
        Key::Rsa(k) => Ok((*k).clone()),
        Key::Secrets { .. } => Err("an RSA signature needs the `private_key` param (PEM)"),
    };
    Ok(match method {
        SignatureMethod::Plaintext => secrets(key)?,
        SignatureMethod::HmacSha1 => hmac_b64!(sha1::Sha1, secrets(key)?, base),
        SignatureMethod::HmacSha256 => hmac_b64!(sha2::Sha256, secrets(key)?, base),
        SignatureMethod::HmacSha512 => hmac_b64!(sha2::Sha512, secrets(key)?, base),
        SignatureMethod::RsaSha1 => {
            B64.encode(SigningKey::<sha1::Sha1>::new(rsa(key)?).sign(base.as_bytes()).to_bytes())
        }
        SignatureMethod::RsaSha256 => {
            B64.encode(SigningKey::<sha2::Sha256>::new(rsa(key)?).sign(base.as_bytes()).to_bytes())
        }
    })
}

/// §3.5.1: the `Authorization` header value for protocol parameters (signature included).
pub fn authorization_header(realm: Option<&str>, protocol: &[(String, String)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(r) = realm {
        parts.push(format!("realm=\"{}\"", encode(r)));
    }
    parts.extend(protocol.iter().map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v))));
    format!("OAuth {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn hmac_sha1(base: &str, cs: &str, ts: &str) -> String {
        sign(SignatureMethod::HmacSha1, base, &Key::Secrets { consumer_secret: cs, token_secret: ts }).unwrap()
    }

    /// RFC 5849 §3.4.1.1: the example base string, parameters from header, query and body.
    #[test]
    fn rfc5849_3_4_1_1_base_string() {
        let url = Url::parse("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b").unwrap();
        let mut params = query_params(&url);
        params.extend(p(&[("c2", ""), ("a3", "2 q")])); // body `c2&a3=2+q`
        params.extend(p(&[
            ("realm", "Example"),
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
            ("oauth_signature", "djosJKDKJSD8743243%2Fjdk33klY%3D"),
        ]));
        assert_eq!(
            signature_base_string("POST", &url, &params),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    /// RFC 5849 §1.2: the three requests of the walkthrough.
    #[test]
    fn rfc5849_1_2_walkthrough() {
        let initiate = Url::parse("https://photos.example.net/initiate").unwrap();
        let params = p(&[
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131200"),
            ("oauth_nonce", "wIjqoS"),
            ("oauth_callback", "http://printer.example.com/ready"),
        ]);
        let base = signature_base_string("POST", &initiate, &params);
        assert_eq!(hmac_sha1(&base, "kd94hf93k423kf44", ""), "74KNZJeDHnMBp0EMJ9ZHt/XKycU=");

        let token = Url::parse("https://photos.example.net/token").unwrap();
        let params = p(&[
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "hh5s93j4hdidpola"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "walatlh"),
            ("oauth_verifier", "hfdp7dh39dks9884"),
        ]);
        let base = signature_base_string("POST", &token, &params);
        assert_eq!(hmac_sha1(&base, "kd94hf93k423kf44", "hdhd0244k9j7ao03"), "gKgrFCywp7rO0OXSjdot/IHF7IU=");

        let photos = Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
        let mut params = query_params(&photos);
        params.extend(p(&[
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131202"),
            ("oauth_nonce", "chapoH"),
        ]));
        let base = signature_base_string("GET", &photos, &params);
        assert_eq!(hmac_sha1(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"), "MdpQcU8iPSUjWoN/UDMsK2sui9I=");
        let header = authorization_header(
            Some("Photos"),
            &p(&[("oauth_consumer_key", "dpf43f3p2l4k3l03"), ("oauth_signature", "MdpQcU8iPSUjWoN/UDMsK2sui9I=")]),
        );
        assert_eq!(
            header,
            "OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", oauth_signature=\"MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D\""
        );
    }

    /// OAuth Core 1.0, appendix A.5: the protected-resource request.
    #[test]
    fn oauth_core_1_0_appendix_a_5() {
        let url = Url::parse("http://photos.example.net/photos?file=vacation.jpg&size=original").unwrap();
        let mut params = query_params(&url);
        params.extend(p(&[
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_token", "nnch734d00sl2jdk"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1191242096"),
            ("oauth_nonce", "kllo9940pd9333jh"),
            ("oauth_version", "1.0"),
        ]));
        let base = signature_base_string("GET", &url, &params);
        assert_eq!(
            base,
            "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacation.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3Dkllo9940pd9333jh%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1191242096%26oauth_token%3Dnnch734d00sl2jdk%26oauth_version%3D1.0%26size%3Doriginal"
        );
        assert_eq!(hmac_sha1(&base, "kd94hf93k423kf44", "pfkkdhi9sl3r4s00"), "tR3+Ty81lMeYAr/Fid0kMTYa/WM=");
    }

    #[test]
    fn base_uri_normalises_scheme_host_and_default_ports() {
        let u = |s: &str| base_string_uri(&Url::parse(s).unwrap());
        assert_eq!(u("HTTP://EXAMPLE.COM:80/r%20v/X?id=123"), "http://example.com/r%20v/X");
        assert_eq!(u("https://www.example.net:8080/?q=1"), "https://www.example.net:8080/");
        assert_eq!(u("https://a.example:443/p"), "https://a.example/p");
    }

    #[test]
    fn encoding_follows_3_6() {
        assert_eq!(encode("Ladies + Gentlemen"), "Ladies%20%2B%20Gentlemen");
        assert_eq!(encode("An encoded string!"), "An%20encoded%20string%21");
        assert_eq!(encode("Dogs, Cats & Mice"), "Dogs%2C%20Cats%20%26%20Mice");
        assert_eq!(encode("☃"), "%E2%98%83");
        assert_eq!(encode("-._~"), "-._~");
    }

    #[test]
    fn plaintext_is_the_encoded_key() {
        let s =
            sign(SignatureMethod::Plaintext, "ignored", &Key::Secrets { consumer_secret: "a&b", token_secret: "c d" });
        assert_eq!(s.unwrap(), "a%26b&c%20d");
    }
}
