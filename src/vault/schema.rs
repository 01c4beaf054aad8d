//! Schema migrations: append-only numbered SQL files, applied in order inside one transaction each;
//! `PRAGMA user_version` records the version. Never edit a migration that has shipped: add one.

use rusqlite::Connection;

use super::VaultError;

/// The migrations, in order; the schema version is the number applied.
pub const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_oauth_tokens.sql"),
    include_str!("migrations/0003_script_state.sql"),
    include_str!("migrations/0004_default_connections.sql"),
    include_str!("migrations/0005_connection_limits.sql"),
    include_str!("migrations/0006_sealed_secrets.sql"),
    include_str!("migrations/0007_sync.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The version recorded in the file.
pub fn version(db: &Connection) -> Result<i64, VaultError> {
    Ok(db.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Writes the whole schema into an empty database, in the caller's transaction.
pub fn create(tx: &Connection) -> Result<(), VaultError> {
    for sql in MIGRATIONS {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// Applies the migrations the file lacks. Refuses a file from a newer linkrun.
pub fn migrate(db: &mut Connection) -> Result<(), VaultError> {
    let current = version(db)?;
    if current > SCHEMA_VERSION {
        return Err(VaultError::TooNew { found: current, supported: SCHEMA_VERSION });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = db.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
