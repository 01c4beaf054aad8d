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
pub mod field;
pub mod lease;
pub mod schema;

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use secrecy::{ExposeSecret, SecretString};

use crate::connection::{ConnectionRecord, Status};
use crate::home::Home;
use crate::link_name::LinkName;
use crypto::{KdfParams, KeySource, MasterKey};
pub use field::Field;

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
        "the {field} of connection `{link_name}` cannot be opened: it was altered or copied from another row; nothing was changed, so restore the vault from a backup or recreate the connection with `linkrun connection delete {link_name} --yes` and `linkrun connection create`"
    )]
    Unreadable {
        /// Connection.
        link_name: String,
        /// Field.
        field: Field,
    },
    /// The vault was written by a newer linkrun.
    #[error("the vault has schema version {found} but this linkrun understands up to {supported}: upgrade linkrun")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Version this build knows.
        supported: i64,
    },
    /// The file at the vault's path is not a linkrun vault (empty, not a regular file, another
    /// program's database): refused, never adopted.
    #[error(
        "`{path}` is not a linkrun vault ({reason}): nothing was changed; move it away to start a new vault, or restore yours from a backup"
    )]
    NotAVault {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file is not a usable vault.
    #[error("the vault is damaged or unreadable ({detail}): restore it from a backup")]
    Damaged {
        /// What went wrong.
        detail: String,
    },
    /// The vault file or folder cannot be used for a reason that is not damage: permissions, a
    /// full disk, a lock held too long. Nothing was changed.
    #[error("{problem}; nothing was changed: {fix}")]
    Io {
        /// What stands in the way, naming the file.
        problem: String,
        /// What to do.
        fix: String,
    },
    /// `vault rekey` committed in another process while this one held the old key.
    #[error(
        "the vault `{path}` was rekeyed while this ran and the new key is not available to it: nothing was written; run it again (with the new key)"
    )]
    Rekeyed {
        /// Vault file.
        path: PathBuf,
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
        use rusqlite::ErrorCode as C;
        let fix = |f: &str| f.to_string();
        match e.sqlite_error_code() {
            Some(C::ReadOnly) => VaultError::Io {
                problem: "the vault cannot be written: the file or its folder is read-only".into(),
                fix: fix("make linkrun's home folder and `vault.db` writable by this user, or pass another --home"),
            },
            Some(C::DiskFull) => VaultError::Io {
                problem: "the vault cannot be written: the disk is full".into(),
                fix: fix("free some space and run the command again"),
            },
            Some(C::CannotOpen) | Some(C::PermissionDenied) => VaultError::Io {
                problem: "the vault cannot be opened: permission denied on `vault.db` or its folder".into(),
                fix: fix("check the permissions of linkrun's home folder and its files, or pass another --home"),
            },
            Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => VaultError::Io {
                problem: "the vault is locked by another linkrun process for too long".into(),
                fix: fix("wait for it to finish and run the command again"),
            },
            Some(C::SystemIoFailure) => VaultError::Io {
                problem: format!("the vault cannot be read or written ({e})"),
                fix: fix("check the disk and the permissions of linkrun's home folder, then run the command again"),
            },
            _ => VaultError::Damaged { detail: e.to_string() },
        }
    }
}

fn io_error(what: &str, path: &Path, e: &std::io::Error) -> VaultError {
    let (problem, fix) = match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => (
            format!("cannot {what} `{}`: permission denied", path.display()),
            "make linkrun's home folder writable by this user, or pass another --home",
        ),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            (format!("cannot {what} `{}`: the disk is full", path.display()), "free some space and run it again")
        }
        _ => (
            format!("cannot {what} `{}`: {e}", path.display()),
            "check the disk and the permissions of linkrun's home folder, then run it again",
        ),
    };
    VaultError::Io { problem, fix: fix.to_string() }
}

/// The open vault.
pub struct Vault {
    db: Connection,
    keys: RefCell<KeyState>,
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
    pub grant_type: Option<crate::service::GrantType>,
}

/// One stored script value (`linkrun state list`).
#[derive(Debug, Clone, PartialEq)]
pub struct StateEntry {
    /// The script's scope (its canonical path).
    pub script: String,
    /// The key.
    pub key: String,
    /// The value as JSON text.
    pub value: String,
    /// Last written (unix seconds).
    pub updated_at: i64,
}

/// The new key of `vault rekey`.
#[derive(Debug)]
pub enum NewKey {
    /// A new random key written to the key file.
    KeyFile,
    /// A passphrase (from an environment variable).
    Passphrase(SecretString),
}

fn aad(vault_id: &str, link_name: &str, field: &str) -> Vec<u8> {
    // `field` is the stored form ([`Field::stored`]): changing it would orphan every ciphertext.
    format!("linkrun/v1\u{0}{vault_id}\u{0}{link_name}\u{0}{field}").into_bytes()
}

fn now() -> i64 {
    crate::clock::unix_now()
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

/// The tables a linkrun vault may hold (every migration's); any other table means the file is
/// not a vault and is refused rather than adopted.
const VAULT_TABLES: &[&str] = &[
    "meta",
    "connections",
    "sealed",
    "oauth_tokens",
    "script_state",
    "default_connections",
    "connection_limits",
    "sealed_secrets",
    "sync_links",
    "sync_checkpoints",
    "sync_failures",
    "sync_intents",
    "sync_runs",
];

/// The key in use and the key check it matched, so that a rekey committed by another process is
/// noticed before anything is sealed with a key the vault no longer has.
struct KeyState {
    key: MasterKey,
    check: String,
}

fn table_names(db: &Connection) -> Result<Vec<String>, VaultError> {
    let mut st = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")?;
    let names = st.query_map([], |r| r.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(names)
}

/// Writes the whole schema and the vault's metadata (id, passphrase parameters, key check) in
/// the caller's transaction.
fn build(tx: &Connection, key: &MasterKey, kdf: &KdfParams) -> Result<(), VaultError> {
    schema::create(tx)?;
    let vault_id = hex(&crypto::random_bytes::<16>()?);
    meta_set(tx, "vault_id", &vault_id)?;
    meta_set(tx, "kdf", &serde_json::to_string(kdf).unwrap_or_default())?;
    meta_set(tx, "key_check", &seal_key_check(key, &vault_id)?)?;
    Ok(())
}

/// The key of a vault about to be made, for the key-file source: an existing key file is adopted
/// (a vault is being made for a key that is already there); otherwise a new key is written to a
/// temporary file and linked into place without replacing anything, so that of several
/// processes starting at once exactly one key wins and the others read it.
fn key_for_new_vault(home: &Home, key_file: &Path) -> Result<MasterKey, VaultError> {
    if key_file.exists() {
        return crypto::read_key_file(key_file);
    }
    let kf_err = |e: std::io::Error| VaultError::KeyFile { path: key_file.to_path_buf(), detail: e.to_string() };
    let key = MasterKey::generate()?;
    let mut tmp =
        tempfile::Builder::new().prefix(".master.key.").suffix(".tmp").tempfile_in(home.root()).map_err(kf_err)?;
    {
        use std::io::Write as _;
        let f = tmp.as_file_mut();
        f.write_all(key.to_base64().as_bytes()).map_err(kf_err)?;
        f.write_all(b"\n").map_err(kf_err)?;
        f.sync_all().map_err(kf_err)?;
    }
    match tmp.persist_noclobber(key_file) {
        Ok(_) => {
            sync_dir(home.root());
            Ok(key)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => crypto::read_key_file(key_file),
        Err(e) => Err(kf_err(e.error)),
    }
}

/// Makes a new vault: built completely (schema, metadata, key check) under a temporary name in
/// the home folder, then linked into place without replacing anything. A crash leaves no
/// half-made vault; of several processes creating one at once, one wins and the others open it.
fn create_vault(home: &Home, path: &Path, source: &KeySource) -> Result<(), VaultError> {
    let kdf = KdfParams::generate()?;
    let key = match source {
        KeySource::KeyFile(kf) => key_for_new_vault(home, kf)?,
        other => MasterKey::load(other, &kdf)?,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".vault.db.")
        .suffix(".tmp")
        .tempfile_in(home.root())
        .map_err(|e| io_error("create a file in", home.root(), &e))?;
    {
        let mut db = Connection::open(tmp.path())?;
        // WAL is recorded in the file, so the vault opens in WAL mode from its first use.
        db.pragma_update(None, "journal_mode", "WAL")?;
        let tx = db.transaction()?;
        build(&tx, &key, &kdf)?;
        tx.commit()?;
        // Closing checkpoints the WAL into the file and removes it: the file is complete.
        db.close().map_err(|(_, e)| e)?;
    }
    tmp.as_file().sync_all().map_err(|e| io_error("write", tmp.path(), &e))?;
    crash_point("create_before_link");
    match tmp.persist_noclobber(path) {
        Ok(_) => {
            sync_dir(home.root());
            Ok(())
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error("create", path, &e.error)),
    }
}

/// Makes a rename or link durable (best effort: not every file system can sync a folder).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Vault {
    /// Whether the vault file exists (commands that only read can skip creating it). Anything
    /// at its path counts: [`Vault::open`] refuses what is not a vault.
    pub fn exists(home: &Home) -> bool {
        std::fs::symlink_metadata(home.vault_path()).is_ok()
    }

    /// Opens the vault, creating it (and the key file) on first use. A wrong key, a damaged file
    /// or a file that is not a linkrun vault is refused before anything is written.
    pub fn open(home: &Home) -> Result<Vault, VaultError> {
        crate::home::create_private_dir_io(home.root())
            .map_err(|e| io_error("create linkrun's home folder", home.root(), &e))?;
        let path = home.vault_path();
        let source = KeySource::detect(&home.key_file());
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(VaultError::NotAVault { path, reason: "it is not a regular file".into() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_vault(home, &path, &source)?,
            Err(e) => return Err(io_error("read", &path, &e)),
        }
        Vault::open_existing(home, path, source)
    }

    fn open_existing(home: &Home, path: PathBuf, source: KeySource) -> Result<Vault, VaultError> {
        let len = std::fs::metadata(&path).map_err(|e| io_error("read", &path, &e))?.len();
        if len == 0 {
            return Err(VaultError::NotAVault {
                path,
                reason: "it is empty, and linkrun never leaves an empty vault, so it came from elsewhere".into(),
            });
        }
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut db = Connection::open_with_flags(&path, flags)?;
        db.busy_timeout(std::time::Duration::from_secs(10))?;
        db.pragma_update(None, "foreign_keys", true)?;
        let mut tables = table_names(&db)?;
        if tables.is_empty() {
            // A SQLite file with no tables at all (made by hand, e.g. with `sqlite3`): nothing can
            // be lost by making it a vault, in one transaction that first checks again.
            let kdf = KdfParams::generate()?;
            let key = match &source {
                KeySource::KeyFile(kf) => key_for_new_vault(home, kf)?,
                other => MasterKey::load(other, &kdf)?,
            };
            db.pragma_update(None, "journal_mode", "WAL")?;
            let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if table_names(&tx)?.is_empty() {
                build(&tx, &key, &kdf)?;
            }
            tx.commit()?;
            tables = table_names(&db)?;
        }
        let foreign: Vec<&str> = tables.iter().map(String::as_str).filter(|t| !VAULT_TABLES.contains(t)).collect();
        if !foreign.is_empty() {
            return Err(VaultError::NotAVault {
                path,
                reason: format!("it holds tables linkrun does not make: `{}`", foreign.join("`, `")),
            });
        }
        let version = schema::version(&db)?;
        if version > schema::SCHEMA_VERSION {
            return Err(VaultError::TooNew { found: version, supported: schema::SCHEMA_VERSION });
        }
        if !tables.iter().any(|t| t == "meta") {
            return Err(VaultError::Damaged { detail: "its `meta` table is missing".into() });
        }
        // One statement, so a rekey committing meanwhile cannot pair an old salt with a new check.
        let meta: std::collections::HashMap<String, String> = db
            .prepare("SELECT key, value FROM meta WHERE key IN ('vault_id', 'kdf', 'key_check')")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let missing = |what: &str| VaultError::Damaged { detail: format!("its {what} is missing") };
        let vault_id = meta.get("vault_id").cloned().ok_or_else(|| missing("vault id"))?;
        let check = meta.get("key_check").cloned().ok_or_else(|| missing("key check"))?;
        let kdf: KdfParams = serde_json::from_str(meta.get("kdf").ok_or_else(|| missing("passphrase parameters"))?)
            .map_err(|_| VaultError::Damaged { detail: "its passphrase parameters are not readable".into() })?;
        if !check_well_formed(&check) {
            return Err(VaultError::Damaged { detail: "its key check is not readable".into() });
        }
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
                        if let Err(e) = std::fs::rename(&pending, kf)
                            && !(e.kind() == std::io::ErrorKind::NotFound && kf.is_file())
                        {
                            return Err(VaultError::KeyFile { path: kf.clone(), detail: e.to_string() });
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
        Ok(Vault { db, keys: RefCell::new(KeyState { key, check }), vault_id, source, path })
    }

    /// Makes sure the key in use is the one the vault has now: `vault rekey` may have committed in
    /// another process since this one opened the vault. Called inside every write transaction
    /// that stores sealed values (and when a value fails to open), so nothing is ever sealed
    /// under a key the vault no longer has. The new key is taken from the same source when it
    /// has it (the key file, or the pending one of an unfinished rename); otherwise the write is
    /// refused with [`VaultError::Rekeyed`].
    fn current_key(&self, db: &Connection) -> Result<(), VaultError> {
        let check: String = db
            .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| r.get(0))
            .optional()?
            .ok_or_else(|| VaultError::Damaged { detail: "its key check is missing".into() })?;
        if check == self.keys.borrow().check {
            return Ok(());
        }
        let candidates: Vec<MasterKey> = match &self.source {
            KeySource::KeyFile(kf) => {
                [kf.clone(), pending_key_file(kf)].iter().filter_map(|p| crypto::read_key_file(p).ok()).collect()
            }
            other => {
                let kdf: Option<KdfParams> = db
                    .query_row("SELECT value FROM meta WHERE key = 'kdf'", [], |r| r.get::<_, String>(0))
                    .optional()?
                    .and_then(|t| serde_json::from_str(&t).ok());
                kdf.and_then(|kdf| MasterKey::load(other, &kdf).ok()).into_iter().collect()
            }
        };
        match candidates.into_iter().find(|k| key_check_ok(k, &self.vault_id, &check)) {
            Some(key) => {
                *self.keys.borrow_mut() = KeyState { key, check };
                Ok(())
            }
            None => Err(VaultError::Rekeyed { path: self.path.clone() }),
        }
    }

    /// Begins a write transaction that takes the write lock at once and checks the key.
    fn write_tx(&self) -> Result<rusqlite::Transaction<'_>, VaultError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.db, rusqlite::TransactionBehavior::Immediate)?;
        self.current_key(&tx)?;
        Ok(tx)
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
    pub fn get(&self, link_name: &LinkName) -> Result<Option<ConnectionRecord>, VaultError> {
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
    pub fn create(&mut self, rec: &ConnectionRecord, fields: &[(Field, SecretString)]) -> Result<bool, VaultError> {
        let tx = self.write_tx()?;
        let sealed = self.seal_fields(&rec.link_name, fields)?;
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
        link_name: &LinkName,
        fields: &[(Field, SecretString)],
        status: Option<Status>,
    ) -> Result<(), VaultError> {
        let tx = self.write_tx()?;
        let sealed = self.seal_fields(link_name, fields)?;
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

    /// Removes sealed fields and optionally sets the status, in one transaction.
    pub fn remove_fields(
        &mut self,
        link_name: &LinkName,
        fields: &[Field],
        status: Option<Status>,
    ) -> Result<(), VaultError> {
        let tx = self.db.transaction()?;
        for f in fields {
            tx.execute("DELETE FROM sealed WHERE link_name = ?1 AND field = ?2", params![link_name, f.stored()])?;
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
    pub fn token_meta(&self, link_name: &LinkName) -> Result<Option<TokenMeta>, VaultError> {
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
                    grant_type: r.get::<_, Option<String>>(6)?.and_then(|g| g.parse().ok()),
                })
            })
            .optional()?)
    }

    /// Stores new tokens and their metadata in one transaction: seals the access token (and the
    /// refresh token when given; a missing one keeps the old), bumps the generation, releases any
    /// refresh lease, and sets the status. Returns the new generation.
    pub fn store_tokens(
        &mut self,
        link_name: &LinkName,
        access: &SecretString,
        refresh: Option<&SecretString>,
        meta: &TokenMeta,
        refreshed: bool,
        status: Status,
    ) -> Result<i64, VaultError> {
        let mut fields = vec![(Field::AccessToken, access.clone())];
        if let Some(r) = refresh {
            fields.push((Field::RefreshToken, r.clone()));
        }
        let tx = self.write_tx()?;
        let sealed = self.seal_fields(link_name, &fields)?;
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
                meta.grant_type.map(|g| -> &'static str { g.into() })
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
        link_name: &LinkName,
        generation: i64,
        secs: i64,
        owner: &str,
    ) -> Result<bool, VaultError> {
        let tx = self.db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let t = now();
        tx.execute("INSERT OR IGNORE INTO oauth_tokens (link_name) VALUES (?1)", [link_name])?;
        let (until, holder): (i64, Option<String>) =
            tx.query_row("SELECT lease_until, lease_owner FROM oauth_tokens WHERE link_name = ?1", [link_name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        // A live lease of a process that has exited (killed mid-refresh) is taken at once.
        let held = until > t && holder.as_deref().is_none_or(lease::owner_alive);
        if held {
            return Ok(false);
        }
        let n = tx.execute(
            "UPDATE oauth_tokens SET lease_until = ?2, lease_owner = ?3 WHERE link_name = ?1 AND generation = ?4",
            params![link_name, t + secs, owner, generation],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// Releases a refresh lease (after a failed refresh).
    pub fn release_refresh_lease(&mut self, link_name: &LinkName) -> Result<(), VaultError> {
        self.db
            .execute("UPDATE oauth_tokens SET lease_until = 0, lease_owner = NULL WHERE link_name = ?1", [link_name])?;
        Ok(())
    }

    /// Forgets a connection's tokens and sets its status (revoke, or a refused refresh keeps them
    /// but marks `needs_reauth`: pass `forget = false`).
    pub fn end_tokens(&mut self, link_name: &LinkName, forget: bool, status: Status) -> Result<(), VaultError> {
        let tx = self.db.transaction()?;
        if forget {
            tx.execute(
                "DELETE FROM sealed WHERE link_name = ?1 AND field IN (?2, ?3)",
                params![link_name, Field::AccessToken.stored(), Field::RefreshToken.stored()],
            )?;
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
    pub fn status_of(&self, link_name: &LinkName) -> Result<Option<Status>, VaultError> {
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

    /// Moves the values stored under `legacy` (a script's file stem, as earlier builds keyed
    /// them) to `scope`, keeping the values `scope` already has. Returns how many moved.
    pub fn state_adopt(&mut self, legacy: &str, scope: &str) -> Result<usize, VaultError> {
        if legacy.is_empty() || legacy.contains('/') || legacy == scope {
            return Ok(0);
        }
        Ok(self
            .db
            .execute("UPDATE OR IGNORE script_state SET script = ?2 WHERE script = ?1", params![legacy, scope])?)
    }

    /// Every stored script value: (script, key, JSON text, updated at), by script and key.
    pub fn state_list(&self) -> Result<Vec<StateEntry>, VaultError> {
        let mut st = self.db.prepare("SELECT script, key, value, updated_at FROM script_state ORDER BY script, key")?;
        let rows = st.query_map([], |r| {
            Ok(StateEntry { script: r.get(0)?, key: r.get(1)?, value: r.get(2)?, updated_at: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Removes one key of a script, or all of them; returns how many were removed.
    pub fn state_clear(&mut self, script: &str, key: Option<&str>) -> Result<usize, VaultError> {
        Ok(match key {
            Some(k) => {
                self.db.execute("DELETE FROM script_state WHERE script = ?1 AND key = ?2", params![script, k])?
            }
            None => self.db.execute("DELETE FROM script_state WHERE script = ?1", [script])?,
        })
    }

    /// Deletes a connection and its sealed fields. `false` if there was none.
    pub fn delete(&mut self, link_name: &LinkName) -> Result<bool, VaultError> {
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM sealed WHERE link_name = ?1", [link_name])?;
        tx.execute("DELETE FROM oauth_tokens WHERE link_name = ?1", [link_name])?;
        tx.execute("DELETE FROM default_connections WHERE link_name = ?1", [link_name])?;
        tx.execute("DELETE FROM connection_limits WHERE link_name = ?1", [link_name])?;
        let n = tx.execute("DELETE FROM connections WHERE link_name = ?1", [link_name])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// The default connection of a service (`linkrun connection default SERVICE LINK`), if set.
    pub fn default_connection(&self, service: &str) -> Result<Option<LinkName>, VaultError> {
        Ok(self
            .db
            .prepare_cached("SELECT link_name FROM default_connections WHERE service = ?1")?
            .query_row([service], |r| r.get(0))
            .optional()?)
    }

    /// Every default connection: (service, link name), by service.
    pub fn default_connections(&self) -> Result<Vec<(String, LinkName)>, VaultError> {
        let mut st = self.db.prepare("SELECT service, link_name FROM default_connections ORDER BY service")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Makes `link` the default connection of its service, in one short write transaction that
    /// reads the connection's service first (so a connection deleted meanwhile is not made a
    /// default). Returns the service, or `None` when there is no such connection.
    pub fn set_default_connection(&mut self, link: &LinkName) -> Result<Option<LinkName>, VaultError> {
        let tx = self.db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let service: Option<LinkName> =
            tx.query_row("SELECT service FROM connections WHERE link_name = ?1", [link], |r| r.get(0)).optional()?;
        let Some(service) = service else { return Ok(None) };
        tx.execute(
            "INSERT INTO default_connections (service, link_name, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(service) DO UPDATE SET link_name = ?2, updated_at = ?3",
            params![service, link, now()],
        )?;
        tx.commit()?;
        Ok(Some(service))
    }

    /// Clears the default connection of a service; returns the link name it had, if any.
    pub fn clear_default_connection(&mut self, service: &str) -> Result<Option<LinkName>, VaultError> {
        let tx = self.db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let was: Option<LinkName> = tx
            .query_row("SELECT link_name FROM default_connections WHERE service = ?1", [service], |r| r.get(0))
            .optional()?;
        tx.execute("DELETE FROM default_connections WHERE service = ?1", [service])?;
        tx.commit()?;
        Ok(was)
    }

    /// Changes whenever the vault has changed: (SQLite's `data_version`, which moves when
    /// another connection commits, and the changes made through this one). Caches of what the
    /// vault holds compare it to know they are still true.
    pub fn change_stamp(&self) -> Result<(i64, u64), VaultError> {
        let version: i64 = self.db.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        Ok((version, self.db.total_changes()))
    }

    /// A connection's own rate budget (`linkrun connection limits`): the `[limits]` keys it sets,
    /// as JSON text; `None` when it sets none.
    pub fn connection_limits(&self, link: &LinkName) -> Result<Option<String>, VaultError> {
        Ok(self
            .db
            .prepare_cached("SELECT limits FROM connection_limits WHERE link_name = ?1")?
            .query_row([link], |r| r.get(0))
            .optional()?)
    }

    /// Sets (`Some`) or clears (`None`) a connection's own rate budget. `false` when there is no
    /// such connection.
    pub fn set_connection_limits(&mut self, link: &LinkName, limits: Option<&str>) -> Result<bool, VaultError> {
        let tx = self.db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let exists: Option<i64> =
            tx.query_row("SELECT 1 FROM connections WHERE link_name = ?1", [link], |r| r.get(0)).optional()?;
        if exists.is_none() {
            return Ok(false);
        }
        match limits {
            Some(l) => tx.execute(
                "INSERT INTO connection_limits (link_name, limits, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(link_name) DO UPDATE SET limits = ?2, updated_at = ?3",
                params![link, l, now()],
            )?,
            None => tx.execute("DELETE FROM connection_limits WHERE link_name = ?1", [link])?,
        };
        tx.commit()?;
        Ok(true)
    }

    /// Opens every sealed field of a connection, in field order. Any value that fails to open is an
    /// error naming the connection and the field.
    pub fn read_fields(&self, link_name: &LinkName) -> Result<Vec<(Field, SecretString)>, VaultError> {
        let rows: Vec<(String, Vec<u8>, Vec<u8>)> = self
            .db
            .prepare_cached("SELECT field, nonce, ciphertext FROM sealed WHERE link_name = ?1 ORDER BY field")?
            .query_map([link_name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::new();
        for (field, nonce, ct) in rows {
            let ad = aad(&self.vault_id, link_name, &field);
            let mut plain = self.keys.borrow().key.open(&nonce, &ct, &ad);
            if plain.is_none() {
                // A rekey may have committed in another process since the vault was opened.
                let before = self.keys.borrow().check.clone();
                self.current_key(&self.db)?;
                if self.keys.borrow().check != before {
                    plain = self.keys.borrow().key.open(&nonce, &ct, &ad);
                }
            }
            let field = Field::parse(&field);
            let unreadable = || VaultError::Unreadable { link_name: link_name.to_string(), field: field.clone() };
            let plain = plain.ok_or_else(unreadable)?;
            let text = String::from_utf8(plain.to_vec()).map_err(|_| unreadable())?;
            out.push((field, SecretString::from(text)));
        }
        Ok(out)
    }

    /// A sealed secret of `owner` (`trigger:NAME`, `runs`), if stored.
    pub fn secret_get(&self, owner: &str, field: &str) -> Result<Option<SecretString>, VaultError> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .db
            .prepare_cached("SELECT nonce, ciphertext FROM sealed_secrets WHERE owner = ?1 AND field = ?2")?
            .query_row(params![owner, field], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((nonce, ct)) = row else { return Ok(None) };
        let ad = aad(&self.vault_id, owner, field);
        let mut plain = self.keys.borrow().key.open(&nonce, &ct, &ad);
        if plain.is_none() {
            let before = self.keys.borrow().check.clone();
            self.current_key(&self.db)?;
            if self.keys.borrow().check != before {
                plain = self.keys.borrow().key.open(&nonce, &ct, &ad);
            }
        }
        let unreadable = || VaultError::Unreadable { link_name: owner.to_string(), field: Field::parse(field) };
        let plain = plain.ok_or_else(unreadable)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| unreadable())?;
        Ok(Some(SecretString::from(text)))
    }

    /// Seals and stores a secret of `owner`, replacing the one it had.
    pub fn secret_set(&mut self, owner: &str, field: &str, value: &SecretString) -> Result<(), VaultError> {
        let tx = self.write_tx()?;
        self.store_secret(&tx, owner, field, value)?;
        tx.commit()?;
        Ok(())
    }

    /// Seals `value` and writes it (over any value the field had) in the caller's transaction.
    fn store_secret(&self, tx: &Connection, owner: &str, field: &str, value: &SecretString) -> Result<(), VaultError> {
        let (n, ct) =
            self.keys.borrow().key.seal(value.expose_secret().as_bytes(), &aad(&self.vault_id, owner, field))?;
        tx.execute(
            "INSERT OR REPLACE INTO sealed_secrets (owner, field, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![owner, field, n.as_slice(), ct, now()],
        )?;
        Ok(())
    }

    /// Stores `value` unless `owner` has the field already; returns the one stored (the first
    /// writer's, when two processes race).
    pub fn secret_get_or_set(
        &mut self,
        owner: &str,
        field: &str,
        value: impl FnOnce() -> Result<SecretString, VaultError>,
    ) -> Result<SecretString, VaultError> {
        if let Some(v) = self.secret_get(owner, field)? {
            return Ok(v);
        }
        let tx = self.write_tx()?;
        let exists: bool = tx
            .prepare_cached("SELECT 1 FROM sealed_secrets WHERE owner = ?1 AND field = ?2")?
            .exists(params![owner, field])?;
        if !exists {
            self.store_secret(&tx, owner, field, &value()?)?;
        }
        tx.commit()?;
        self.secret_get(owner, field)?
            .ok_or_else(|| VaultError::Unreadable { link_name: owner.to_string(), field: Field::parse(field) })
    }

    /// Deletes one secret of `owner`; `false` if there was none.
    pub fn secret_delete(&mut self, owner: &str, field: &str) -> Result<bool, VaultError> {
        Ok(self.db.execute("DELETE FROM sealed_secrets WHERE owner = ?1 AND field = ?2", params![owner, field])? > 0)
    }

    /// Deletes every secret of `owner`; returns how many there were.
    pub fn secrets_delete(&mut self, owner: &str) -> Result<usize, VaultError> {
        Ok(self.db.execute("DELETE FROM sealed_secrets WHERE owner = ?1", [owner])?)
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
        let new_check = seal_key_check(&new_key, &self.vault_id)?;
        // One write transaction from the first read to the commit: a writer in another process
        // (a token refresh) waits for it, then notices the new key check and seals under the new key.
        let tx = self.write_tx()?;
        // Connection fields, then the secrets of no connection (triggers, the runs key): the
        // owner column is `link_name` in one table, `owner` in the other.
        for (table, owner_col) in [("sealed", "link_name"), ("sealed_secrets", "owner")] {
            let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = tx
                .prepare(&format!("SELECT {owner_col}, field, nonce, ciphertext FROM {table}"))?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            for (i, (owner, field, nonce, ct)) in rows.iter().enumerate() {
                let ad = aad(&self.vault_id, owner, field);
                let plain =
                    self.keys.borrow().key.open(nonce, ct, &ad).ok_or_else(|| VaultError::Unreadable {
                        link_name: owner.clone(),
                        field: Field::parse(field),
                    })?;
                let (n2, c2) = new_key.seal(&plain, &ad)?;
                tx.execute(
                    &format!("UPDATE {table} SET nonce = ?3, ciphertext = ?4 WHERE {owner_col} = ?1 AND field = ?2"),
                    params![owner, field, n2.as_slice(), c2],
                )?;
                if table == "sealed" && i == rows.len() / 2 {
                    crash_point("rekey_mid_transaction");
                }
            }
        }
        meta_set(&tx, "key_check", &new_check)?;
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
        *self.keys.borrow_mut() = KeyState { key: new_key, check: new_check };
        self.source = new_source.clone();
        Ok(new_source)
    }

    fn seal_fields(&self, link_name: &str, fields: &[(Field, SecretString)]) -> Result<Vec<SealedField>, VaultError> {
        fields
            .iter()
            .map(|(f, v)| {
                let stored = f.stored();
                let (n, ct) = self
                    .keys
                    .borrow()
                    .key
                    .seal(v.expose_secret().as_bytes(), &aad(&self.vault_id, link_name, &stored))?;
                Ok((stored, n, ct))
            })
            .collect()
    }
}

/// A sealed field ready to store: (stored field name, nonce, ciphertext).
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

fn meta_set(db: &Connection, key: &str, value: &str) -> Result<(), VaultError> {
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])?;
    Ok(())
}

fn seal_key_check(key: &MasterKey, vault_id: &str) -> Result<String, VaultError> {
    let (n, ct) = key.seal(KEY_CHECK_PLAINTEXT, &aad(vault_id, "", "key_check"))?;
    Ok(format!("{}:{}", hex(&n), hex(&ct)))
}

fn check_well_formed(check: &str) -> bool {
    check
        .split_once(':')
        .is_some_and(|(n, ct)| unhex(n).is_some_and(|n| n.len() == crypto::NONCE_LEN) && unhex(ct).is_some())
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
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> VaultError {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None).into()
    }

    #[test]
    fn storage_trouble_is_named_and_is_not_called_damage() {
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_READONLY).to_string(),
            "the vault cannot be written: the file or its folder is read-only; nothing was changed: make linkrun's home folder and `vault.db` writable by this user, or pass another --home"
        );
        assert_eq!(
            sqlite(rusqlite::ffi::SQLITE_FULL).to_string(),
            "the vault cannot be written: the disk is full; nothing was changed: free some space and run the command again"
        );
        assert!(sqlite(rusqlite::ffi::SQLITE_CANTOPEN).to_string().contains("permission denied"));
        assert!(sqlite(rusqlite::ffi::SQLITE_BUSY).to_string().contains("locked by another linkrun process"));
        let damaged = sqlite(rusqlite::ffi::SQLITE_CORRUPT).to_string();
        assert!(damaged.starts_with("the vault is damaged or unreadable"), "{damaged}");
        for e in [
            sqlite(rusqlite::ffi::SQLITE_READONLY),
            sqlite(rusqlite::ffi::SQLITE_FULL),
            sqlite(rusqlite::ffi::SQLITE_CORRUPT),
        ] {
            assert_eq!(e.exit_code(), 3);
        }
        let denied = io_error("create", Path::new("/h/vault.db"), &std::io::ErrorKind::PermissionDenied.into());
        assert_eq!(
            denied.to_string(),
            "cannot create `/h/vault.db`: permission denied; nothing was changed: make linkrun's home folder writable by this user, or pass another --home"
        );
        let full = io_error("write", Path::new("/h/x"), &std::io::ErrorKind::StorageFull.into());
        assert!(full.to_string().contains("the disk is full"), "{full}");
    }
}
