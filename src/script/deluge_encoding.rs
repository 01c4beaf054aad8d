//! Deluge's encoding functions for scripts: `zoho.encryption.urlEncode`, `urlDecode`,
//! `base64Encode`, `base64Decode`, `hmacsha256`, `hmacsha1`, `sha256` and `sha1` (methods of the `zoho.encryption`
//! namespace, see [`super::zoho`]), and the free functions `encodeUrl`, `urlEncode`, `urlDecode`,
//! `base64Encode` and `base64Decode` (also callable as text methods, `s.base64Encode()`).
//!
//! `zoho.encryption.urlEncode` and `urlEncode` encode a space as `%20` (RFC 3986, the
//! [`super::builtins::url_encode`] helper); `encodeUrl` encodes it as `+`, as HTML forms (and
//! Java's `URLEncoder`) do. `urlDecode` reads both. Text is UTF-8 throughout. The HMACs give
//! base64 by default, or hex for `"hex"`, as documented; `"binary"` (raw bytes) has no text form
//! in a script and is an error, as is text that is not base64 for `base64Decode`. `sha256` and
//! `sha1` give hex, as documented (`sha256`'s `"binary"` output type is an error for the same
//! reason). Deluge documents no `md5` task, so there is none. Null in gives
//! null out (the null rule of [`super::deluge_lib`]).

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString};

use super::zoho::ZohoEncryption;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// `urlDecode`: `%XX` escapes and `+` as a space; bytes that are not UTF-8 become U+FFFD.
pub fn url_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned()
}

/// `encodeUrl`: form encoding, a space as `+` (letters, digits and `-._*` stay as they are).
pub fn encode_url(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `base64Encode`: the UTF-8 bytes of the text in standard base64 with padding.
pub fn base64_encode(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// `base64Decode`: the text that standard base64 (padding optional) holds; bytes that are not
/// UTF-8 become U+FFFD.
pub fn base64_decode(s: &str) -> Res<String> {
    let cleaned: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(cleaned.as_bytes()).map_err(|e| {
        Box::<EvalAltResult>::from(format!(
            "base64Decode: the text is not base64 ({e}): pass text made by base64Encode"
        ))
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The digest of an HMAC in the output type Deluge names: `base64` (the default) or `hex`.
fn output(what: &str, digest: &[u8], kind: &str) -> Res<String> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "" | "base64" => Ok(base64::engine::general_purpose::STANDARD.encode(digest)),
        "hex" => Ok(digest.iter().map(|b| format!("{b:02x}")).collect()),
        other => Err(format!(
            "zoho.encryption.{what}: the output type `{other}` is not one scripts can use: pass \"base64\" or \"hex\""
        )
        .into()),
    }
}

/// `zoho.encryption.hmacsha256(key, data[, kind])`.
pub fn hmac_sha256(key: &str, data: &str, kind: &str) -> Res<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(data.as_bytes());
    output("hmacsha256", &mac.finalize().into_bytes(), kind)
}

/// `zoho.encryption.hmacsha1(key, data[, kind])`.
pub fn hmac_sha1(key: &str, data: &str, kind: &str) -> Res<String> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(data.as_bytes());
    output("hmacsha1", &mac.finalize().into_bytes(), kind)
}

/// `zoho.encryption.sha256(data[, kind])`: the hex digest (`kind` may be `"hex"`).
pub fn sha256(data: &str, kind: &str) -> Res<String> {
    use sha2::Digest as _;
    hex_digest("sha256", &sha2::Sha256::digest(data.as_bytes()), kind)
}

/// `zoho.encryption.sha1(data)`: the hex digest.
pub fn sha1(data: &str) -> String {
    use sha1::Digest as _;
    sha1::Sha1::digest(data.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A plain hash in the output type Deluge names for it: `hex`, its only text form.
fn hex_digest(what: &str, digest: &[u8], kind: &str) -> Res<String> {
    match kind.trim().to_ascii_lowercase().as_str() {
        "" | "hex" => Ok(digest.iter().map(|b| format!("{b:02x}")).collect()),
        other => {
            Err(format!("zoho.encryption.{what}: the output type `{other}` is not one scripts can use: pass \"hex\"")
                .into())
        }
    }
}

/// Registers the `zoho.encryption` methods and the free functions.
pub fn register(engine: &mut Engine) {
    engine.register_fn("urlEncode", |_: &mut ZohoEncryption, s: ImmutableString| super::builtins::url_encode(&s));
    engine.register_fn("urlDecode", |_: &mut ZohoEncryption, s: ImmutableString| url_decode(&s));
    engine.register_fn("base64Encode", |_: &mut ZohoEncryption, s: ImmutableString| base64_encode(&s));
    engine.register_fn("base64Decode", |_: &mut ZohoEncryption, s: ImmutableString| base64_decode(&s));
    engine.register_fn("hmacsha256", |_: &mut ZohoEncryption, k: ImmutableString, d: ImmutableString| {
        hmac_sha256(&k, &d, "")
    });
    engine.register_fn(
        "hmacsha256",
        |_: &mut ZohoEncryption, k: ImmutableString, d: ImmutableString, kind: ImmutableString| {
            hmac_sha256(&k, &d, &kind)
        },
    );
    engine.register_fn("hmacsha1", |_: &mut ZohoEncryption, k: ImmutableString, d: ImmutableString| {
        hmac_sha1(&k, &d, "")
    });
    engine.register_fn(
        "hmacsha1",
        |_: &mut ZohoEncryption, k: ImmutableString, d: ImmutableString, kind: ImmutableString| {
            hmac_sha1(&k, &d, &kind)
        },
    );
    engine.register_fn("sha256", |_: &mut ZohoEncryption, d: ImmutableString| sha256(&d, ""));
    engine.register_fn("sha256", |_: &mut ZohoEncryption, d: ImmutableString, kind: ImmutableString| sha256(&d, &kind));
    engine.register_fn("sha1", |_: &mut ZohoEncryption, d: ImmutableString| sha1(&d));
    engine.register_fn("sha256", |_: &mut ZohoEncryption, _: (), _: Dynamic| ());
    for name in ["urlEncode", "urlDecode", "base64Encode", "base64Decode", "sha256", "sha1"] {
        engine.register_fn(name, |_: &mut ZohoEncryption, _: ()| ());
    }
    for name in ["hmacsha256", "hmacsha1"] {
        engine.register_fn(name, |_: &mut ZohoEncryption, _: Dynamic, _: ()| ());
        engine.register_fn(name, |_: &mut ZohoEncryption, _: (), _: Dynamic| ());
    }

    engine.register_fn("encodeUrl", |s: ImmutableString| encode_url(&s));
    engine.register_fn("urlEncode", |s: ImmutableString| super::builtins::url_encode(&s));
    engine.register_fn("urlDecode", |s: ImmutableString| url_decode(&s));
    engine.register_fn("base64Encode", |s: ImmutableString| base64_encode(&s));
    engine.register_fn("base64Decode", |s: ImmutableString| base64_decode(&s));
    for name in ["encodeUrl", "urlEncode", "urlDecode", "base64Encode", "base64Decode"] {
        engine.register_fn(name, |_: ()| ());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use crate::script::test_support::check;

    #[test]
    fn hmacs_match_the_documented_examples() {
        check(&[
            (
                r#"zoho.encryption.hmacsha256("sk_5Ow7B_4eC39H", "{Order ID: 0932, Currency: USD, Amount: 2500}")"#,
                "E3IZY+esQ59aLmPCYYVjk2R/P1G0k77r9ZGa9Lw94Zw=",
            ),
            (
                r#"zoho.encryption.hmacsha256("sk_5Ow7B_4eC39H", "{Order ID: 0932, Currency: USD, Amount: 2500}", "hex")"#,
                "13721963e7ac439f5a2e63c261856393647f3f51b493beebf5919af4bc3de19c",
            ),
            (
                r#"zoho.encryption.hmacsha256("Use me to generate hash", "My#New#Password", "base64")"#,
                "edYCyxkU4jL2dEjEDO8aUy8WZrpKRvQquNpgKUqe5vA=",
            ),
            (
                r#"zoho.encryption.hmacsha1("Use me to generate hash", "My#New#Password")"#,
                "VK9VMxdsbxZBLHKgSEZYMEUlURs=",
            ),
            (
                r#"zoho.encryption.hmacsha256("k", "d", "binary")"#,
                r#"error: zoho.encryption.hmacsha256: the output type `binary` is not one scripts can use: pass "base64" or "hex""#,
            ),
            (r#"zoho.encryption.hmacsha256("k", ())"#, "null"),
            // Deluge's examples for sha256 and sha1.
            (r#"zoho.encryption.sha256("hello")"#, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            (r#"zoho.encryption.sha1("hello")"#, "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
            (
                r#"zoho.encryption.sha256("hello", "binary")"#,
                r#"error: zoho.encryption.sha256: the output type `binary` is not one scripts can use: pass "hex""#,
            ),
            (r#"zoho.encryption.sha1(())"#, "null"),
        ]);
    }

    #[test]
    fn url_and_base64() {
        check(&[
            (r#"zoho.encryption.urlEncode("a b&c=d/é")"#, "a%20b%26c%3Dd%2F%C3%A9"),
            (r#"[encodeUrl("a b&c"), urlEncode("a b"), "a b".encodeUrl()]"#, r#"["a+b%26c","a%20b","a+b"]"#),
            (r#"[zoho.encryption.urlDecode("a%20b+c%C3%A9"), urlDecode("x%2Fy")]"#, r#"["a b cé","x/y"]"#),
            (r#"zoho.encryption.base64Encode("Zoho Creator é")"#, "Wm9obyBDcmVhdG9yIMOp"),
            (
                r#"[zoho.encryption.base64Decode("Wm9obyBDcmVhdG9yIMOp"), "eA".base64Decode()]"#,
                r#"["Zoho Creator é","x"]"#,
            ),
            (
                r#"base64Decode("*")"#,
                "error: base64Decode: the text is not base64 (Invalid symbol 42, offset 0.): pass text made by base64Encode",
            ),
            (r#"let x = (); [x.urlEncode(), zoho.encryption.base64Encode(x), encodeUrl(x)]"#, "[null,null,null]"),
        ]);
    }
}
