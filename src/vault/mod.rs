//! The vault: one SQLite file (`$LINKRUN_HOME/vault.db`, mode 0600, WAL) holding connections and
//! their params and tokens, every value sealed with AES-256-GCM ([`crypto`]).
//!
//! A key check stored in the vault tells a wrong key from a damaged vault: a wrong key is refused
//! before anything is written. `rekey` re-seals everything in one transaction; when the new key goes
//! to a key file, it is written beside the old one first (`master.key.new`) and renamed after the
//! commit; [`Vault::open`] adopts that file when the commit happened but the rename did not, so
//! at every point the vault opens with the old key or the new one. A new key file whose rekey never
//! committed is left alone (it may belong to a rekey running now) and the next rekey overwrites it.

pub mod crypto;
pub mod schema;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use crate::connection::{ConnectionRecord, Status};
use crate::home::Home;
use crypto::{KdfParams, KeySource, MasterKey};

const KEY_CHECK_PLAINTEXT: &[u8] = b"linkrun vault key check v1";

/// Errors of the vault. Most are exit 3 (the vault cannot be opened).
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key does not open this vault.
    #[error(
        "wrong master key: the vault `{path}` was sealed with another key than the one from {source_name}; use the key it was created with (nothing was changed)"
    )]
    WrongKey {
        /// Vault file.
        path: PathBuf,
        /// Where the key came from.
        source_name: String,
    },
    /// The key file is missing although the vault exists.
    #[error(
        "the vault `{vault}` exists but its key file `{key_file}` is missing: restore the key file, or set LINKRUN_MASTER_KEY or LINKRUN_PASSPHRASE to the key the vault was created with"
    )]
    MissingKeyFile {
        /// Vault file.
        vault: PathBuf,
        /// Expected key file.
        key_file: PathBuf,
    },
    /// The key text is not base64 of 32 bytes.
    #[error(
        "{what} is not a master key: it must be the base64 text of 32 random bytes (e.g. `head -c32 /dev/urandom | base64`)"
    )]
    BadKeyText {
        /// Which variable or file.
        what: String,
    },
    /// The key file cannot be read or written.
    #[error("cannot use the key file `{path}`: {detail}")]
    KeyFile {
        /// Key file.
        path: PathBuf,
        /// OS error.
        detail: String,
    },
    /// A sealed value does not open with the right key: tampered with or moved from another row.
    #[error(
        "the {} of connection `{link_name}` cannot be opened: it was altered or copied from another row; nothing was changed, so restore the vault from a backup or recreate the connection with `linkrun connection delete {link_name} --yes` and `linkrun connection create`",
        field_label(field)
    )]
    Unreadable {
        /// Connection.
        link_name: String,
        /// Field.
        field: String,
    },
    /// The vault was written by a newer linkrun.
    #[error("the vault has schema version {found} but this linkrun understands up to {supported}: upgrade linkrun")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Version this build knows.
        supported: i64,
    },
    /// The file is not a usable vault.
    #[error("the vault is damaged or unreadable ({detail}): restore it from a backup")]
    Damaged {
        /// What went wrong.
        detail: String,
    },
    /// A flag or input of a vault command is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
}

impl VaultError {
    /// Exit code: 2 for usage errors, else 3.
    pub fn exit_code(&self) -> i32 {
        match self {
            VaultError::Usage(_) => 2,
            _ => 3,
        }
    }
}

impl From<rusqlite::Error> for VaultError {
    fn from(e: rusqlite::Error) -> Self {
        VaultError::Damaged { detail: e.to_string() }
    }
}

/// The open vault.
pub struct Vault {
    db: Connection,
    key: MasterKey,
    vault_id: String,
    source: KeySource,
    path: PathBuf,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").field("path", &self.path).field("source", &self.source).finish_non_exhaustive()
    }
}

/// What `vault status` shows.
#[derive(Debug, serde::Serialize)]
pub struct VaultStatus {
    /// Vault file.
    pub path: String,
    /// Key source in effect.
    pub key_source: String,
    /// Schema version of the file.
    pub schema_version: i64,
    /// Connections in total.
    pub connections: i64,
    /// Connections per status.
    pub by_status: Vec<(String, i64)>,
    /// Sealed values.
    pub sealed_values: i64,
}

/// Metadata of a connection's OAuth tokens (the tokens are sealed fields).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenMeta {
    /// Bumped at every store.
    pub generation: i64,
    /// When the tokens were obtained (unix seconds).
    pub obtained_at: i64,
    /// When the access token expires (unix seconds), if known.
    pub expires_at: Option<i64>,
    /// Last successful refresh (unix seconds).
    pub last_refresh: Option<i64>,
    /// Scopes the provider granted.
    pub granted_scopes: Vec<String>,
    /// Zoho's `api_domain`, when the service uses it.
    pub api_domain: Option<String>,
    /// The grant that produced the tokens (`authorization_code`, `password`, `client_credentials`).
    pub grant_type: Option<String>,
}

/// The new key of `vault rekey`.
#[derive(Debug)]
pub enum NewKey {
    /// A new random key written to the key file.
    KeyFile,
    /// A passphrase (from an environment variable).
    Passphrase(SecretString),
}

/// A stored field name as users read it: `param:password` is "param `password`".
pub fn field_label(field: &str) -> String {
    match field.split_once(':') {
        Some((kind, name)) => format!("{kind} `{name}`"),
        None => format!("`{field}`"),
    }
}

fn aad(vault_id: &str, link_name: &str, field: &str) -> Vec<u8> {
    format!("linkrun/v1\u{0}{vault_id}\u{0}{link_name}\u{0}{field}").into_bytes()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn pending_key_file(key_file: &Path) -> PathBuf {
    key_file.with_extension("key.new")
}

/// Test-only fault injection (debug builds only): abort the process at a named point of `rekey`.
fn crash_point(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("LINKRUN_TEST_CRASH").is_ok_and(|v| v == name) {
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
}

fn create_private_file(path: &Path) -> Result<(), VaultError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(VaultError::Damaged { detail: format!("cannot create `{}`: {e}", path.display()) }),
    }
}

impl Vault {
    /// Whether the vault file exists (commands that only read can skip creating it).
    pub fn exists(home: &Home) -> bool {
        home.vault_path().is_file()
    }

    /// Opens the vault, creating it (and the key file) on first use. A wrong key is refused
    /// before anything is written.
    pub fn open(home: &Home) -> Result<Vault, VaultError> {
        home.ensure().map_err(|e| VaultError::Damaged { detail: e.to_string() })?;
        let path = home.vault_path();
        let key_file = home.key_file();
        let source = KeySource::detect(&key_file);
        let existed = path.is_file();
        if !existed {
            create_private_file(&path)?;
        }
        let mut db = Connection::open(&path)?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.pragma_update(None, "foreign_keys", true)?;
        let version = schema::version(&db)?;
        let initialised = version > 0 && meta_get(&db, "key_check")?.is_some();
        if !initialised {
            db.pragma_update(None, "journal_mode", "WAL")?;
            schema::migrate(&mut db)?;
            return Vault::initialise(db, path, source, &key_file);
        }
        // One statement, so a rekey committing meanwhile cannot pair an old salt with a new check.
        let meta: std::collections::HashMap<String, String> = db
            .prepare("SELECT key, value FROM meta WHERE key IN ('vault_id', 'kdf', 'key_check')")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let vault_id =
            meta.get("vault_id").cloned().ok_or_else(|| VaultError::Damaged { detail: "no vault id".into() })?;
        let kdf: KdfParams = serde_json::from_str(meta.get("kdf").map(String::as_str).unwrap_or_default())
            .map_err(|_| VaultError::Damaged { detail: "bad passphrase parameters".into() })?;
        let check = meta.get("key_check").cloned().unwrap_or_default();
        let key = match &source {
            KeySource::KeyFile(kf) => {
                let pending = pending_key_file(kf);
                let current = if kf.is_file() { Some(crypto::read_key_file(kf)?) } else { None };
                match current.filter(|k| key_check_ok(k, &vault_id, &check)) {
                    // A leftover `master.key.new` may belong to a rekey running right now in
                    // another process: leave it (the next rekey overwrites it).
                    Some(k) => k,
                    None if pending.is_file() => {
                        // A rekey committed but was interrupted before renaming its key file.
                        let k = crypto::read_key_file(&pending)?;
                        if !key_check_ok(&k, &vault_id, &check) {
                            return Err(VaultError::WrongKey { path, source_name: source.to_string() });
                        }
                        // Another process may adopt it at the same moment.
                        if let Err(e) = std::fs::rename(&pending, kf) {
                            if !(e.kind() == std::io::ErrorKind::NotFound && kf.is_file()) {
                                return Err(VaultError::KeyFile { path: kf.clone(), detail: e.to_string() });
                            }
                        }
                        k
                    }
                    None if !kf.is_file() => {
                        return Err(VaultError::MissingKeyFile { vault: path, key_file: kf.clone() });
                    }
                    None => return Err(VaultError::WrongKey { path, source_name: source.to_string() }),
                }
            }
            _ => {
                let k = MasterKey::load(&source, &kdf)?;
                if !key_check_ok(&k, &vault_id, &check) {
                    return Err(VaultError::WrongKey { path, source_name: source.to_string() });
                }
                k
            }
        };
        if version != schema::SCHEMA_VERSION {
            schema::migrate(&mut db)?;
        }
        Ok(Vault { db, key, vault_id, source, path })
    }

    fn initialise(mut db: Connection, path: PathBuf, source: KeySource, key_file: &Path) -> Result<Vault, VaultError> {
        let kdf = KdfParams::generate()?;
        let key = match &source {
            KeySource::KeyFile(kf) if kf.is_file() => crypto::read_key_file(kf)?,
            KeySource::KeyFile(kf) => {
                let k = MasterKey::generate()?;
                crypto::write_key_file(kf, &k)?;
                k
            }
            other => MasterKey::load(other, &kdf)?,
        };
        let _ = key_file;
        let vault_id = hex(&crypto::random_bytes::<16>()?);
        let check = seal_key_check(&key, &vault_id)?;
        let tx = db.transaction()?;
        meta_set(&tx, "vault_id", &vault_id)?;
        meta_set(&tx, "kdf", &serde_json::to_string(&kdf).unwrap_or_default())?;
        meta_set(&tx, "key_check", &check)?;
        tx.commit()?;
        Ok(Vault { db, key, vault_id, source, path })
    }

    /// The key source in effect.
    pub fn key_source(&self) -> &KeySource {
        &self.source
    }

    /// The vault file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All connections, by link name.
    pub fn list(&self) -> Result<Vec<ConnectionRecord>, VaultError> {
        let mut st = self.db.prepare(
            "SELECT link_name, service, data_center, instance, scopes, status, created_at, updated_at FROM connections ORDER BY link_name",
        )?;
        let rows = st.query_map([], row_to_record)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// One connection.
    pub fn get(&self, link_name: &str) -> Result<Option<ConnectionRecord>, VaultError> {
        Ok(self
            .db
            .query_row(
                "SELECT link_name, service, data_center, instance, scopes, status, created_at, updated_at FROM connections WHERE link_name = ?1",
                [link_name],
                row_to_record,
            )
            .optional()?)
    }

    /// Creates a connection with its sealed fields, all or nothing. `false` if the link name exists.
    pub fn create(&mut self, rec: &ConnectionRecord, fields: &[(String, SecretString)]) -> Result<bool, VaultError> {
        let sealed = self.seal_fields(&rec.link_name, fields)?;
        let tx = self.db.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO connections (link_name, service, data_center, instance, scopes, status, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![
                rec.link_name,
                rec.service,
                rec.data_center,
                rec.instance,
                serde_json::to_string(&rec.scopes).unwrap_or_else(|_| "[]".into()),
                rec.status.as_str(),
                now()
            ],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        for (field, nonce, ct) in &sealed {
            tx.execute(
                "INSERT INTO sealed (link_name, field, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)",
                params![rec.link_name, field, nonce.as_slice(), ct],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    /// Seals and stores (or replaces) fields of an existing connection, and optionally its status,
    /// in one transaction.
    pub fn write_fields(
        &mut self,
        link_name: &str,
        fields: &[(String, SecretString)],
        status: Option<Status>,
    ) -> Result<(), VaultError> {
        let sealed = self.seal_fields(link_name, fields)?;
        let tx = self.db.transaction()?;
        for (field, nonce, ct) in &sealed {
            tx.execute(
                "INSERT OR REPLACE INTO sealed (link_name, field, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)",
                params![link_name, field, nonce.as_slice(), ct],
            )?;
        }
        match status {
            Some(s) => tx.execute(
                "UPDATE connections SET status = ?2, updated_at = ?3 WHERE link_name = ?1",
                params![link_name, s.as_str(), now()],
            )?,
            None => {
                tx.execute("UPDATE connections SET updated_at = ?2 WHERE link_name = ?1", params![link_name, now()])?
            }
        };
        tx.commit()?;
        Ok(())
    }

    /// Removes sealed fields whose name starts with one of `prefixes` (exact names work too) and
    /// optionally sets the status, in one transaction.
    pub fn remove_fields(
        &mut self,
        link_name: &str,
        prefixes: &[&str],
        status: Option<Status>,
    ) -> Result<(), VaultError> {
        let tx = self.db.transaction()?;
        for p in prefixes {
            tx.execute(
                "DELETE FROM sealed WHERE link_name = ?1 AND substr(field, 1, length(?2)) = ?2",
                params![link_name, p],
            )?;
        }
        if let Some(s) = status {
            tx.execute(
                "UPDATE connections SET status = ?2, updated_at = ?3 WHERE link_name = ?1",
                params![link_name, s.as_str(), now()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The OAuth token metadata of a connection, if it has tokens.
    pub fn token_meta(&self, link_name: &str) -> Result<Option<TokenMeta>, VaultError> {
        Ok(self
            .db
            .prepare_cached(
                "SELECT generation, obtained_at, expires_at, last_refresh, granted_scopes, api_domain, grant_type FROM oauth_tokens WHERE link_name = ?1",
            )?
            .query_row([link_name], |r| {
                let scopes: String = r.get(4)?;
                Ok(TokenMeta {
                    generation: r.get(0)?,
                    obtained_at: r.get(1)?,
                    expires_at: r.get(2)?,
                    last_refresh: r.get(3)?,
                    granted_scopes: serde_json::from_str(&scopes).unwrap_or_default(),
                    api_domain: r.get(5)?,
                    grant_type: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// Stores new tokens and their metadata in one transaction: seals the access token (and the
    /// refresh token when given; a missing one keeps the old), bumps the generation, releases any
    /// refresh lease, and sets the status. Returns the new generation.
    pub fn store_tokens(
        &mut self,
        link_name: &str,
        access: &SecretString,
        refresh: Option<&SecretString>,
        meta: &TokenMeta,
        refreshed: bool,
        status: Status,
    ) -> Result<i64, VaultError> {
        let mut fields = vec![("token:access_token".to_string(), access.clone())];
        if let Some(r) = refresh {
            fields.push(("token:refresh_token".to_string(), r.clone()));
        }
        let sealed = self.seal_fields(link_name, &fields)?;
        let tx = self.db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (field, nonce, ct) in &sealed {
            tx.execute(
                "INSERT OR REPLACE INTO sealed (link_name, field, nonce, ciphertext) VALUES (?1, ?2, ?3, ?4)",
                params![link_name, field, nonce.as_slice(), ct],
            )?;
        }
        let t = now();
        tx.execute(
            "INSERT INTO oauth_tokens (link_name, generation, obtained_at, expires_at, last_refresh, granted_scopes, api_domain, grant_type, lease_until, lease_owner)
             VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, 0, NULL)
             ON CONFLICT(link_name) DO UPDATE SET generation = generation + 1, obtained_at = ?2, expires_at = ?3,
                 last_refresh = COALESCE(?4, last_refresh), granted_scopes = ?5, api_domain = COALESCE(?6, api_domain),
                 grant_type = COALESCE(?7, grant_type), lease_until = 0, lease_owner = NULL",
            params![
                link_name,
                t,
                meta.expires_at,
                if refreshed { Some(t) } else { None },
                serde_json::to_string(&meta.granted_scopes).unwrap_or_else(|_| "[]".into()),
                meta.api_domain,
                meta.grant_type
            ],
        )?;
        let generation: i64 =
            tx.query_row("SELECT generation FROM oauth_tokens WHERE link_name = ?1", [link_name], |r| r.get(0))?;
        tx.execute(
            "UPDATE connections SET status = ?2, updated_at = ?3 WHERE link_name = ?1",
            params![link_name, status.as_str(), t],
        )?;
        tx.commit()?;
        Ok(generation)
    }

    /// Claims the refresh lease of a connection for `secs` seconds, in a short write transaction.
    /// `false` when another process holds a live lease.
    /// The claim also fails when the tokens are no longer those of `generation`: someone refreshed
    /// since the caller last read them, so it must re-read, not refresh with a spent token.
    pub fn claim_refresh_lease(
        &mut self,
        link_name: &str,
        generation: i64,
        secs: i64,
        owner: &str,
    ) -> Result<bool, VaultError> {
        let tx = self.db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        tx.execute("INSERT OR IGNORE INTO oauth_tokens (link_name) VALUES (?1)", [link_name])?;
        let n = tx.execute(
            "UPDATE oauth_tokens SET lease_until = ?2, lease_owner = ?3 WHERE link_name = ?1 AND lease_until <= ?4 AND generation = ?5",
            params![link_name, t + secs, owner, t, generation],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Releases a refresh lease (after a failed refresh).
    pub fn release_refresh_lease(&mut self, link_name: &str) -> Result<(), VaultError> {
        self.db
            .execute("UPDATE oauth_tokens SET lease_until = 0, lease_owner = NULL WHERE link_name = ?1", [link_name])?;
        Ok(())
    }

    /// Forgets a connection's tokens and sets its status (revoke, or a refused refresh keeps them
    /// but marks `needs_reauth`: pass `forget = false`).
    pub fn end_tokens(&mut self, link_name: &str, forget: bool, status: Status) -> Result<(), VaultError> {
        let tx = self.db.transaction()?;
        if forget {
            tx.execute("DELETE FROM sealed WHERE link_name = ?1 AND substr(field, 1, 6) = 'token:'", [link_name])?;
            tx.execute("DELETE FROM oauth_tokens WHERE link_name = ?1", [link_name])?;
        } else {
            tx.execute(
                "UPDATE oauth_tokens SET lease_until = 0, lease_owner = NULL WHERE link_name = ?1",
                [link_name],
            )?;
        }
        tx.execute(
            "UPDATE connections SET status = ?2, updated_at = ?3 WHERE link_name = ?1",
            params![link_name, status.as_str(), now()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The status of one connection as stored now (another process may have changed it).
    pub fn status_of(&self, link_name: &str) -> Result<Option<Status>, VaultError> {
        Ok(self
            .db
            .query_row("SELECT status FROM connections WHERE link_name = ?1", [link_name], |r| r.get::<_, String>(0))
            .optional()?
            .and_then(|s| Status::parse(&s)))
    }

    /// A script's stored value (JSON text), if any.
    pub fn state_get(&self, script: &str, key: &str) -> Result<Option<String>, VaultError> {
        Ok(self
            .db
            .prepare_cached("SELECT value FROM script_state WHERE script = ?1 AND key = ?2")?
            .query_row(params![script, key], |r| r.get(0))
            .optional()?)
    }

    /// Stores a script's value (JSON text); `None` removes it.
    pub fn state_set(&mut self, script: &str, key: &str, value: Option<&str>) -> Result<(), VaultError> {
        match value {
            Some(v) => self.db.execute(
                "INSERT INTO script_state (script, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(script, key) DO UPDATE SET value = ?3, updated_at = ?4",
                params![script, key, v, now()],
            )?,
            None => self.db.execute("DELETE FROM script_state WHERE script = ?1 AND key = ?2", params![script, key])?,
        };
        Ok(())
    }

    /// Deletes a connection and its sealed fields. `false` if there was none.
    pub fn delete(&mut self, link_name: &str) -> Result<bool, VaultError> {
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM sealed WHERE link_name = ?1", [link_name])?;
        tx.execute("DELETE FROM oauth_tokens WHERE link_name = ?1", [link_name])?;
        let n = tx.execute("DELETE FROM connections WHERE link_name = ?1", [link_name])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Opens every sealed field of a connection, in field order. Any value that fails to open is an
    /// error naming the connection and the field.
    pub fn read_fields(&self, link_name: &str) -> Result<Vec<(String, SecretString)>, VaultError> {
        let mut st = self
            .db
            .prepare_cached("SELECT field, nonce, ciphertext FROM sealed WHERE link_name = ?1 ORDER BY field")?;
        let rows = st.query_map([link_name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, Vec<u8>>(2)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (field, nonce, ct) = row?;
            let plain = self
                .key
                .open(&nonce, &ct, &aad(&self.vault_id, link_name, &field))
                .ok_or_else(|| VaultError::Unreadable { link_name: link_name.to_string(), field: field.clone() })?;
            let text = String::from_utf8(plain.to_vec())
                .map_err(|_| VaultError::Unreadable { link_name: link_name.to_string(), field: field.clone() })?;
            out.push((field, SecretString::from(text)));
        }
        Ok(out)
    }

    /// `vault status`.
    pub fn status(&self) -> Result<VaultStatus, VaultError> {
        let connections: i64 = self.db.query_row("SELECT count(*) FROM connections", [], |r| r.get(0))?;
        let sealed_values: i64 = self.db.query_row("SELECT count(*) FROM sealed", [], |r| r.get(0))?;
        let mut st = self.db.prepare("SELECT status, count(*) FROM connections GROUP BY status ORDER BY status")?;
        let by_status = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(VaultStatus {
            path: self.path.display().to_string(),
            key_source: self.source.to_string(),
            schema_version: schema::version(&self.db)?,
            connections,
            by_status,
            sealed_values,
        })
    }

    /// Re-seals every value under a new key, crash-safely (see the module doc). Returns the new
    /// key source.
    pub fn rekey(&mut self, home: &Home, new: NewKey) -> Result<KeySource, VaultError> {
        let key_file = home.key_file();
        let (new_key, kdf, new_source) = match &new {
            NewKey::KeyFile => (MasterKey::generate()?, None, KeySource::KeyFile(key_file.clone())),
            NewKey::Passphrase(p) => {
                let kdf = KdfParams::generate()?;
                (MasterKey::from_passphrase(p.expose_secret().as_bytes(), &kdf)?, Some(kdf), KeySource::Passphrase)
            }
        };
        let pending = pending_key_file(&key_file);
        if matches!(new, NewKey::KeyFile) {
            crypto::write_key_file(&pending, &new_key)?;
            crash_point("rekey_after_new_key_file");
        }
        let mut rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = Vec::new();
        {
            let mut st = self.db.prepare("SELECT link_name, field, nonce, ciphertext FROM sealed")?;
            let it = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            for row in it {
                rows.push(row?);
            }
        }
        let tx = self.db.transaction()?;
        for (i, (link, field, nonce, ct)) in rows.iter().enumerate() {
            let ad = aad(&self.vault_id, link, field);
            let plain = self
                .key
                .open(nonce, ct, &ad)
                .ok_or_else(|| VaultError::Unreadable { link_name: link.clone(), field: field.clone() })?;
            let (n2, c2) = new_key.seal(&plain, &ad)?;
            tx.execute(
                "UPDATE sealed SET nonce = ?3, ciphertext = ?4 WHERE link_name = ?1 AND field = ?2",
                params![link, field, n2.as_slice(), c2],
            )?;
            if i == rows.len() / 2 {
                crash_point("rekey_mid_transaction");
            }
        }
        meta_set(&tx, "key_check", &seal_key_check(&new_key, &self.vault_id)?)?;
        if let Some(kdf) = &kdf {
            meta_set(&tx, "kdf", &serde_json::to_string(kdf).unwrap_or_default())?;
        }
        tx.commit()?;
        crash_point("rekey_after_commit");
        if matches!(new, NewKey::KeyFile) {
            // A concurrent `Vault::open` may have adopted the pending file already.
            if let Err(e) = std::fs::rename(&pending, &key_file) {
                let adopted = e.kind() == std::io::ErrorKind::NotFound
                    && crypto::read_key_file(&key_file).is_ok_and(|k| k.to_base64() == new_key.to_base64());
                if !adopted {
                    return Err(VaultError::KeyFile { path: key_file.clone(), detail: e.to_string() });
                }
            }
        }
        self.key = new_key;
        self.source = new_source.clone();
        Ok(new_source)
    }

    fn seal_fields(&self, link_name: &str, fields: &[(String, SecretString)]) -> Result<Vec<SealedField>, VaultError> {
        fields
            .iter()
            .map(|(f, v)| {
                let (n, ct) = self.key.seal(v.expose_secret().as_bytes(), &aad(&self.vault_id, link_name, f))?;
                Ok((f.clone(), n, ct))
            })
            .collect()
    }
}

/// A sealed field ready to store: (field, nonce, ciphertext).
type SealedField = (String, [u8; crypto::NONCE_LEN], Vec<u8>);

fn row_to_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConnectionRecord> {
    let scopes: String = r.get(4)?;
    let status: String = r.get(5)?;
    Ok(ConnectionRecord {
        link_name: r.get(0)?,
        service: r.get(1)?,
        data_center: r.get(2)?,
        instance: r.get(3)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        status: Status::parse(&status).unwrap_or(Status::NotAuthorized),
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

fn meta_get(db: &Connection, key: &str) -> Result<Option<String>, VaultError> {
    let has_meta: bool =
        db.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'", [], |r| {
            r.get::<_, i64>(0)
        })? > 0;
    if !has_meta {
        return Ok(None);
    }
    Ok(db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
}

fn meta_set(db: &Connection, key: &str, value: &str) -> Result<(), VaultError> {
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
    Ok(())
}

fn seal_key_check(key: &MasterKey, vault_id: &str) -> Result<String, VaultError> {
    let (n, ct) = key.seal(KEY_CHECK_PLAINTEXT, &aad(vault_id, "", "key_check"))?;
    Ok(format!("{}:{}", hex(&n), hex(&ct)))
}

fn key_check_ok(key: &MasterKey, vault_id: &str, check: &str) -> bool {
    let Some((n, ct)) = check.split_once(':') else { return false };
    match (unhex(n), unhex(ct)) {
        (Some(n), Some(ct)) => {
            key.open(&n, &ct, &aad(vault_id, "", "key_check")).is_some_and(|p| p.as_slice() == KEY_CHECK_PLAINTEXT)
        }
        _ => false,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}
