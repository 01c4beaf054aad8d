//! [`SyncStore`] in SQLite: the sync tables of the vault's database (`vault.db`, migration
//! `0007_sync.sql`, applied when the vault is opened), on a connection of their own. Nothing here
//! is secret: record ids, hashes, checkpoints, counts.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::runs::StoreError;
use crate::sync::links::{Commit, Link, SideKey, SyncRunRecord, SyncStore};

/// The sync tables of a vault database.
pub struct SqliteSync {
    db: Connection,
    path: PathBuf,
}

impl SqliteSync {
    /// Opens the sync tables of the vault at `path` (the vault must have been opened, and so
    /// migrated, by this build first).
    pub fn open(path: &Path) -> Result<SqliteSync, StoreError> {
        let fail = |e: rusqlite::Error| failed(path, &e);
        let db = Connection::open(path).map_err(fail)?;
        db.busy_timeout(std::time::Duration::from_secs(10)).map_err(fail)?;
        Ok(SqliteSync { db, path: path.to_path_buf() })
    }

    fn fail(&self, e: rusqlite::Error) -> StoreError {
        failed(&self.path, &e)
    }

    fn links_where(&self, column: &str, sync: &str, object: &str, ids: &[String]) -> Result<Vec<Link>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        let sql = format!("SELECT a_id, b_id, hash FROM sync_links WHERE sync = ?1 AND object = ?2 AND {column} = ?3");
        let mut st = self.db.prepare_cached(&sql).map_err(|e| self.fail(e))?;
        for id in ids {
            let l = st
                .query_row(params![sync, object, id], |r| {
                    Ok(Link { a_id: r.get(0)?, b_id: r.get(1)?, hash: r.get(2)? })
                })
                .optional()
                .map_err(|e| failed(&self.path, &e))?;
            out.extend(l);
        }
        Ok(out)
    }
}

fn failed(path: &Path, e: &rusqlite::Error) -> StoreError {
    StoreError(format!("cannot use the sync records in `{}`: {e}; check the file and its folder", path.display()))
}

impl SyncStore for SqliteSync {
    fn links_by_a(&self, sync: &str, object: &str, ids: &[String]) -> Result<Vec<Link>, StoreError> {
        self.links_where("a_id", sync, object, ids)
    }

    fn links_by_b(&self, sync: &str, object: &str, ids: &[String]) -> Result<Vec<Link>, StoreError> {
        self.links_where("b_id", sync, object, ids)
    }

    fn checkpoint(&self, sync: &str, object: &str, side: SideKey) -> Result<Option<String>, StoreError> {
        self.db
            .query_row(
                "SELECT value FROM sync_checkpoints WHERE sync = ?1 AND object = ?2 AND side = ?3",
                params![sync, object, side],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.fail(e))
    }

    fn failures(&self, sync: &str, object: &str, side: SideKey) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self
            .db
            .prepare_cached(
                "SELECT record_id, message FROM sync_failures WHERE sync = ?1 AND object = ?2 AND side = ?3 ORDER BY record_id",
            )
            .map_err(|e| self.fail(e))?;
        let rows =
            st.query_map(params![sync, object, side], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| self.fail(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.fail(e))
    }

    fn intents(&self, sync: &str, object: &str, side: SideKey) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .db
            .prepare_cached("SELECT record_id FROM sync_intents WHERE sync = ?1 AND object = ?2 AND side = ?3")
            .map_err(|e| self.fail(e))?;
        let rows = st.query_map(params![sync, object, side], |r| r.get(0)).map_err(|e| self.fail(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.fail(e))
    }

    fn record_intents(&self, sync: &str, object: &str, side: SideKey, ids: &[String]) -> Result<(), StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.db, rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        let now = crate::clock::now_ms();
        for id in ids {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO sync_intents (sync, object, side, record_id, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![sync, object, side, id, now]))
            .map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    fn commit(&self, sync: &str, object: &str, c: &Commit) -> Result<(), StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.db, rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        let now = crate::clock::now_ms();
        let fail = |e| failed(&self.path, &e);
        for l in &c.links {
            // A record re-paired (its old pair deleted and a new one made) replaces the old link.
            tx.prepare_cached("DELETE FROM sync_links WHERE sync = ?1 AND object = ?2 AND b_id = ?3 AND a_id <> ?4")
                .and_then(|mut st| st.execute(params![sync, object, l.b_id, l.a_id]))
                .map_err(fail)?;
            tx.prepare_cached(
                "INSERT INTO sync_links (sync, object, a_id, b_id, hash, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (sync, object, a_id) DO UPDATE SET b_id = excluded.b_id, hash = excluded.hash, updated_at = excluded.updated_at",
            )
            .and_then(|mut st| st.execute(params![sync, object, l.a_id, l.b_id, l.hash, now]))
            .map_err(fail)?;
        }
        for a in &c.unlinked {
            tx.prepare_cached("DELETE FROM sync_links WHERE sync = ?1 AND object = ?2 AND a_id = ?3")
                .and_then(|mut st| st.execute(params![sync, object, a]))
                .map_err(fail)?;
        }
        for (side, id, message) in &c.failed {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sync_failures (sync, object, side, record_id, message, failed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| st.execute(params![sync, object, side, id, message, now]))
            .map_err(fail)?;
        }
        for (side, id) in &c.fixed {
            tx.prepare_cached(
                "DELETE FROM sync_failures WHERE sync = ?1 AND object = ?2 AND side = ?3 AND record_id = ?4",
            )
            .and_then(|mut st| st.execute(params![sync, object, side, id]))
            .map_err(fail)?;
        }
        for (side, id) in &c.intents_done {
            tx.prepare_cached(
                "DELETE FROM sync_intents WHERE sync = ?1 AND object = ?2 AND side = ?3 AND record_id = ?4",
            )
            .and_then(|mut st| st.execute(params![sync, object, side, id]))
            .map_err(fail)?;
        }
        if let Some((side, value)) = &c.checkpoint {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sync_checkpoints (sync, object, side, value) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![sync, object, side, value]))
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)
    }

    fn begin_run(&self, run_id: &str, sync: &str, started_ms: i64) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO sync_runs (run_id, sync, started_at, status) VALUES (?1, ?2, ?3, 'running')",
                params![run_id, sync, started_ms],
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    fn end_run(&self, run_id: &str, status: &str, stats: &serde_json::Value, ended_ms: i64) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE sync_runs SET status = ?2, stats = ?3, ended_at = ?4 WHERE run_id = ?1",
                params![run_id, status, stats.to_string(), ended_ms],
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    fn runs(&self, sync: &str, limit: usize) -> Result<Vec<SyncRunRecord>, StoreError> {
        let mut st = self
            .db
            .prepare_cached(
                "SELECT run_id, sync, started_at, ended_at, status, stats FROM sync_runs WHERE sync = ?1 \
                 ORDER BY started_at DESC, run_id DESC LIMIT ?2",
            )
            .map_err(|e| self.fail(e))?;
        let rows = st
            .query_map(params![sync, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                let stats: String = r.get(5)?;
                Ok(SyncRunRecord {
                    run_id: r.get(0)?,
                    sync: r.get(1)?,
                    started_ms: r.get(2)?,
                    ended_ms: r.get(3)?,
                    status: r.get(4)?,
                    stats: serde_json::from_str(&stats).unwrap_or_default(),
                })
            })
            .map_err(|e| self.fail(e))?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| self.fail(e))
    }

    fn reset(&self, sync: &str) -> Result<u64, StoreError> {
        let tx = rusqlite::Transaction::new_unchecked(&self.db, rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        let fail = |e| failed(&self.path, &e);
        let n = tx.execute("DELETE FROM sync_links WHERE sync = ?1", params![sync]).map_err(fail)?;
        for t in ["sync_checkpoints", "sync_failures", "sync_intents"] {
            tx.execute(&format!("DELETE FROM {t} WHERE sync = ?1"), params![sync]).map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(n as u64)
    }

    fn link_count(&self, sync: &str) -> Result<u64, StoreError> {
        self.db
            .query_row(
                "SELECT count(*) FROM sync_links WHERE sync = ?1 AND hash <> ?2",
                params![sync, crate::sync::links::UNLINKED],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.fail(e))
    }
}
