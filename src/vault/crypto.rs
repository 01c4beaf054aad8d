//! Key sources and sealing: AES-256-GCM with a fresh random 96-bit nonce per value and associated
//! data that binds each ciphertext to its row (vault id, link name, field).
//!
//! Key sources, first match wins: `LINKRUN_MASTER_KEY` (base64 of 32 bytes), `LINKRUN_PASSPHRASE`
//! (Argon2id with the salt and parameters stored in the vault), the key file
//! `$LINKRUN_HOME/master.key` (created 0600 on first use).

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use super::VaultError;

/// Length of the nonce stored beside each ciphertext.
pub const NONCE_LEN: usize = 12;

/// The 32-byte master key. Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Argon2id parameters stored in the vault for the passphrase key source.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Random salt, base64.
    pub salt: String,
    /// Memory cost in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Parallelism.
    pub p_cost: u32,
}

impl KdfParams {
    /// Fresh parameters with a new random salt (OWASP's Argon2id minimum: 19 MiB, 2 passes).
    pub fn generate() -> Result<KdfParams, VaultError> {
        Ok(KdfParams { salt: B64.encode(random_bytes::<16>()?), m_cost: 19 * 1024, t_cost: 2, p_cost: 1 })
    }
}

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `LINKRUN_MASTER_KEY`.
    EnvKey,
    /// `LINKRUN_MASTER_KEY_FILE`: a key file outside the home (a mounted secret, systemd's
    /// credentials folder), read only, never created or rewritten.
    ExternalFile(PathBuf),
    /// `LINKRUN_PASSPHRASE`.
    Passphrase,
    /// The key file.
    KeyFile(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::EnvKey => f.write_str("LINKRUN_MASTER_KEY"),
            KeySource::ExternalFile(p) => write!(f, "LINKRUN_MASTER_KEY_FILE {}", p.display()),
            KeySource::Passphrase => f.write_str("LINKRUN_PASSPHRASE"),
            KeySource::KeyFile(p) => write!(f, "key file {}", p.display()),
        }
    }
}

impl KeySource {
    /// The source in effect: first match of the environment, else the key file.
    pub fn detect(key_file: &Path) -> KeySource {
        if std::env::var_os("LINKRUN_MASTER_KEY").is_some_and(|v| !v.is_empty()) {
            KeySource::EnvKey
        } else if let Some(p) = std::env::var_os("LINKRUN_MASTER_KEY_FILE").filter(|v| !v.is_empty()) {
            KeySource::ExternalFile(PathBuf::from(p))
        } else if std::env::var_os("LINKRUN_PASSPHRASE").is_some_and(|v| !v.is_empty()) {
            KeySource::Passphrase
        } else {
            KeySource::KeyFile(key_file.to_path_buf())
        }
    }
}

impl MasterKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey(Zeroizing::new(bytes))
    }

    /// A new random key.
    pub fn generate() -> Result<MasterKey, VaultError> {
        Ok(MasterKey::from_bytes(random_bytes::<32>()?))
    }

    /// Decodes base64 text of 32 bytes (the env variable and the key file hold this form).
    pub fn from_base64(text: &str, what: &str) -> Result<MasterKey, VaultError> {
        let raw = Zeroizing::new(
            B64.decode(text.trim().as_bytes()).map_err(|_| VaultError::BadKeyText { what: what.to_string() })?,
        );
        let bytes: [u8; 32] =
            raw.as_slice().try_into().map_err(|_| VaultError::BadKeyText { what: what.to_string() })?;
        Ok(MasterKey::from_bytes(bytes))
    }

    /// The key as base64 text (written to key files).
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(B64.encode(self.0.as_slice()))
    }

    /// Derives a key from a passphrase with Argon2id.
    pub fn from_passphrase(passphrase: &[u8], kdf: &KdfParams) -> Result<MasterKey, VaultError> {
        let salt = B64
            .decode(&kdf.salt)
            .map_err(|_| VaultError::Damaged { detail: "the passphrase salt is not base64".into() })?;
        let params = argon2::Params::new(kdf.m_cost, kdf.t_cost, kdf.p_cost, Some(32))
            .map_err(|e| VaultError::Damaged { detail: format!("bad Argon2 parameters: {e}") })?;
        let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; 32]);
        argon
            .hash_password_into(passphrase, &salt, out.as_mut_slice())
            .map_err(|e| VaultError::Damaged { detail: format!("Argon2 failed: {e}") })?;
        Ok(MasterKey(out))
    }

    /// Reads the key from the environment or the key file, per `source`.
    pub fn load(source: &KeySource, kdf: &KdfParams) -> Result<MasterKey, VaultError> {
        match source {
            KeySource::EnvKey => {
                let v = Zeroizing::new(std::env::var("LINKRUN_MASTER_KEY").unwrap_or_default());
                MasterKey::from_base64(&v, "LINKRUN_MASTER_KEY")
            }
            KeySource::Passphrase => {
                let v = Zeroizing::new(std::env::var("LINKRUN_PASSPHRASE").unwrap_or_default());
                MasterKey::from_passphrase(v.as_bytes(), kdf)
            }
            KeySource::KeyFile(path) => read_key_file(path),
            KeySource::ExternalFile(path) => read_key_file(path),
        }
    }

    /// Seals `plaintext` bound to `aad`; returns (nonce, ciphertext).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>), VaultError> {
        let nonce_bytes = random_bytes::<NONCE_LEN>()?;
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.0));
        let ct = cipher
            .encrypt(&Nonce::from(nonce_bytes), Payload { msg: plaintext, aad })
            .map_err(|_| VaultError::Damaged { detail: "encryption failed".into() })?;
        Ok((nonce_bytes, ct))
    }

    /// Opens a sealed value; `None` when the key, the row binding or the bytes are wrong.
    pub fn open(&self, nonce: &[u8], ciphertext: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*self.0));
        cipher.decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad }).ok().map(Zeroizing::new)
    }
}

/// Cryptographically random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| VaultError::Damaged { detail: format!("the OS random source failed: {e}") })?;
    Ok(b)
}

/// Reads a key file.
pub fn read_key_file(path: &Path) -> Result<MasterKey, VaultError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| VaultError::KeyFile { path: path.to_path_buf(), detail: e.to_string() })?,
    );
    MasterKey::from_base64(&text, &format!("the key file {}", path.display()))
}

/// Writes a key file with mode 0600 (never readable by others, not even briefly) and syncs it.
pub fn write_key_file(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let io = |e: std::io::Error| VaultError::KeyFile { path: path.to_path_buf(), detail: e.to_string() };
    let mut f = opts.open(path).map_err(io)?;
    let text = key.to_base64();
    f.write_all(text.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_only_with_same_key_and_binding() {
        let k = MasterKey::generate().unwrap();
        let (n, ct) = k.seal(b"s3cret", b"row-a").unwrap();
        assert_eq!(k.open(&n, &ct, b"row-a").unwrap().as_slice(), b"s3cret");
        assert!(k.open(&n, &ct, b"row-b").is_none());
        assert!(MasterKey::generate().unwrap().open(&n, &ct, b"row-a").is_none());
        let (n2, _) = k.seal(b"s3cret", b"row-a").unwrap();
        assert_ne!(n, n2, "nonces are fresh");
    }

    #[test]
    fn passphrase_derivation_is_stable_per_salt() {
        let p = KdfParams { salt: B64.encode([7u8; 16]), m_cost: 64, t_cost: 1, p_cost: 1 };
        let a = MasterKey::from_passphrase(b"pw", &p).unwrap();
        let b = MasterKey::from_passphrase(b"pw", &p).unwrap();
        assert_eq!(a.to_base64(), b.to_base64());
        let c = MasterKey::from_passphrase(b"pw2", &p).unwrap();
        assert_ne!(a.to_base64(), c.to_base64());
    }
}
