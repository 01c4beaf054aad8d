//! Storage back ends. [`SqliteRuns`] keeps the run records ([`crate::runs::RunStore`]) in
//! `runs.db` in linkrun's home: a SQLite file of its own beside the vault, so recording a run
//! needs no master key and its writes never queue behind the vault's; [`SpooledRuns`] is how a
//! short-lived process records its run without opening it (files imported by the next reader,
//! see its module). `runs.db` has its own migrations
//! (`src/store/migrations/runs_*.sql`, `PRAGMA user_version`). WAL mode and a busy timeout let
//! concurrent processes on one home write at once; every call is one short transaction. No
//! SQLite type leaves this module, so a PostgreSQL back end can implement the same trait.

mod lease;
mod sync;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::home::Home;
pub use lease::SpooledRuns;
pub use sync::SqliteSync;

use crate::runs::{
    Accept, Accepted, BatchOp, NewRun, RequestTrace, Run, RunEnd, RunFilter, RunQueue, RunStatus, RunStore, StoreError,
};

/// The runs migrations, in order.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/runs_0001.sql"),
    include_str!("migrations/runs_0002.sql"),
    include_str!("migrations/runs_0003.sql"),
];

/// How many rows one pruning transaction deletes, so writers wait at most that long.
const PRUNE_BATCH: u64 = 5_000;

/// The run records in `runs.db`.
pub struct SqliteRuns {
    db: Connection,
    path: PathBuf,
}

impl SqliteRuns {
    /// The file of a home's run records.
    pub fn path(home: &Home) -> PathBuf {
        home.root().join("runs.db")
    }

    /// Opens (creating on first use) the run records of `home`.
    pub fn open(home: &Home) -> Result<SqliteRuns, StoreError> {
        crate::home::create_private_dir_io(home.root()).map_err(|e| {
            StoreError(format!(
                "cannot create linkrun's home folder `{}` for the run records: {e}; check its permissions",
                home.root().display()
            ))
        })?;
        SqliteRuns::open_file(&SqliteRuns::path(home))
    }

    /// Opens (creating) the run records in `path`.
    pub fn open_file(path: &Path) -> Result<SqliteRuns, StoreError> {
        let fail = |e: rusqlite::Error| failed(path, &e);
        let db = Connection::open(path).map_err(fail)?;
        db.busy_timeout(std::time::Duration::from_secs(10)).map_err(fail)?;
        db.pragma_update(None, "journal_mode", "WAL").map_err(fail)?;
        db.pragma_update(None, "synchronous", "NORMAL").map_err(fail)?;
        let mut runs = SqliteRuns { db, path: path.to_path_buf() };
        runs.migrate()?;
        Ok(runs)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| failed(&path, &e);
        let version: i64 = self.db.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(fail)?;
        if version > MIGRATIONS.len() as i64 {
            return Err(StoreError(format!(
                "the run records `{}` were written by a newer linkrun (schema {version}; this one knows {}): upgrade linkrun",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(fail)?;
            // Another process may have migrated meanwhile.
            let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(fail)?;
            if now <= i as i64 {
                tx.execute_batch(sql).map_err(fail)?;
                tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(fail)?;
            }
            tx.commit().map_err(fail)?;
        }
        Ok(())
    }

    /// Writes `run` whole: with `replace`, over any row of its id; else only over a row still
    /// `running` (an import of the spool never undoes a final state).
    pub fn put(&self, run: &Run, replace: bool) -> Result<(), StoreError> {
        let sql = if replace {
            format!("INSERT OR REPLACE INTO runs ({WRITTEN}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
        } else {
            format!(
                "INSERT INTO runs ({WRITTEN}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, \
                 error = excluded.error WHERE runs.status = 'running'"
            )
        };
        let status: &'static str = run.status.into();
        self.db
            .execute(
                &sql,
                params![
                    run.id,
                    run.trigger,
                    run.script,
                    status,
                    run.started_ms,
                    run.ended_ms,
                    run.input.to_string(),
                    run.result.as_ref().map(|v| v.to_string()),
                    run.error,
                    serde_json::to_string(&run.info).unwrap_or_else(|_| "[]".into()),
                    serde_json::to_string(&run.requests).unwrap_or_else(|_| "[]".into()),
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    fn fail(&self, e: rusqlite::Error) -> StoreError {
        failed(&self.path, &e)
    }

    /// A write transaction taken at once (no upgrade from a read lock, which could deadlock).
    fn tx(&self) -> Result<rusqlite::Transaction<'_>, StoreError> {
        rusqlite::Transaction::new_unchecked(&self.db, rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))
    }
}

fn failed(path: &Path, e: &rusqlite::Error) -> StoreError {
    StoreError(format!(
        "cannot use the run records `{}`: {e}; check the file and its folder, or move it away to start a new one",
        path.display()
    ))
}

/// A new time-ordered run id: the start in milliseconds and 32 random bits, in hex.
pub fn new_id(started_ms: i64) -> String {
    let random = getrandom::u32().unwrap_or_else(|_| std::process::id());
    format!("{:012x}{random:08x}", started_ms.max(0))
}

/// The columns [`SqliteRuns::put`] writes.
const WRITTEN: &str = "id, trigger, script, status, started_at, ended_at, input, result, error, info, requests";

/// The columns a [`Run`] is read from.
const COLUMNS: &str = "id, trigger, script, status, started_at, ended_at, input, result, error, info, requests, coalesce(retry_of, duplicate_of)";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    let json = |i: usize| -> rusqlite::Result<Option<serde_json::Value>> {
        Ok(r.get::<_, Option<String>>(i)?.and_then(|t| serde_json::from_str(&t).ok()))
    };
    let status: String = r.get(3)?;
    Ok(Run {
        id: r.get(0)?,
        trigger: r.get(1)?,
        script: r.get(2)?,
        status: status.parse().unwrap_or(RunStatus::Interrupted),
        started_ms: r.get(4)?,
        ended_ms: r.get(5)?,
        input: json(6)?.unwrap_or_default(),
        result: json(7)?,
        error: r.get(8)?,
        info: json(9)?.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default(),
        requests: json(10)?.and_then(|v| serde_json::from_value::<Vec<RequestTrace>>(v).ok()).unwrap_or_default(),
        parent: r.get(11)?,
    })
}

impl RunStore for SqliteRuns {
    fn begin(&self, run: &NewRun) -> Result<String, StoreError> {
        let id = new_id(run.started_ms);
        self.db
            .execute(
                "INSERT INTO runs (id, trigger, script, status, started_at, input) VALUES (?1, ?2, ?3, 'running', ?4, ?5)",
                params![id, run.trigger, run.script, run.started_ms, run.input.to_string()],
            )
            .map_err(|e| self.fail(e))?;
        Ok(id)
    }

    fn end(&self, id: &str, end: &RunEnd) -> Result<(), StoreError> {
        RunQueue::finish(self, id, end, None)
    }

    fn list(&self, f: &RunFilter) -> Result<Vec<Run>, StoreError> {
        let status: Option<&'static str> = f.status.map(Into::into);
        let sql = format!(
            "SELECT {COLUMNS} FROM runs WHERE (?1 IS NULL OR trigger = ?1) AND (?2 IS NULL OR status = ?2) \
             AND (?3 IS NULL OR started_at >= ?3) ORDER BY started_at DESC, id DESC LIMIT ?4"
        );
        let mut st = self.db.prepare_cached(&sql).map_err(|e| self.fail(e))?;
        let limit = i64::try_from(f.limit).unwrap_or(i64::MAX);
        let rows = st.query_map(params![f.trigger, status, f.since_ms, limit], row).map_err(|e| self.fail(e))?;
        rows.collect::<rusqlite::Result<Vec<Run>>>().map_err(|e| self.fail(e))
    }

    fn get(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM runs WHERE id = ?1");
        self.db.query_row(&sql, params![id], row).optional().map_err(|e| self.fail(e))
    }

    fn prune(&self, keep: Option<u64>, before_ms: Option<i64>) -> Result<u64, StoreError> {
        // The start of the newest `keep`-th run: everything older goes.
        let cutoff_keep: Option<i64> = match keep {
            Some(k) => self
                .db
                .query_row(
                    "SELECT started_at FROM runs ORDER BY started_at DESC, id DESC LIMIT 1 OFFSET ?1",
                    params![i64::try_from(k).unwrap_or(i64::MAX)],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.fail(e))?,
            None => None,
        };
        let cutoff = match (cutoff_keep.map(|c| c + 1), before_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let Some(cutoff) = cutoff else { return Ok(0) };
        let mut total = 0;
        loop {
            let tx = self.tx()?;
            let batch = "SELECT rowid FROM runs WHERE started_at < ?1 AND status NOT IN ('queued', 'running') \
                         ORDER BY rowid LIMIT ?2";
            tx.execute(
                &format!("DELETE FROM run_inputs WHERE run_id IN (SELECT id FROM runs WHERE rowid IN ({batch}))"),
                params![cutoff, PRUNE_BATCH as i64],
            )
            .map_err(|e| self.fail(e))?;
            let n = tx
                .execute(&format!("DELETE FROM runs WHERE rowid IN ({batch})"), params![cutoff, PRUNE_BATCH as i64])
                .map_err(|e| self.fail(e))? as u64;
            tx.commit().map_err(|e| self.fail(e))?;
            total += n;
            if n < PRUNE_BATCH {
                return Ok(total);
            }
        }
    }
}

impl SqliteRuns {
    /// [`RunQueue::accept`] inside the caller's transaction.
    fn accept_in(&self, tx: &Connection, a: &Accept<'_>) -> Result<Accepted, StoreError> {
        let id = a.id.to_string();
        let status: &'static str = a.status.into();
        let fail = |e| failed(&self.path, &e);
        if let Some((key, since)) = a.dedupe {
            let seen: Option<String> = tx
                .query_row(
                    "SELECT run_id FROM deliveries WHERE trigger = ?1 AND key = ?2 AND seen_at >= ?3",
                    params![a.run.trigger, key, since],
                    |r| r.get(0),
                )
                .optional()
                .map_err(fail)?;
            let first = match seen {
                Some(first_id) => tx
                    .query_row(&format!("SELECT {COLUMNS} FROM runs WHERE id = ?1"), params![first_id], row)
                    .optional()
                    .map_err(fail)?,
                None => None,
            };
            if let Some(first) = first {
                tx.execute(
                    "INSERT INTO runs (id, trigger, script, status, started_at, ended_at, input, owner, duplicate_of) \
                     VALUES (?1, ?2, ?3, 'duplicate', ?4, ?4, ?5, ?6, ?7)",
                    params![
                        id,
                        a.run.trigger,
                        a.run.script,
                        a.run.started_ms,
                        a.run.input.to_string(),
                        a.owner,
                        first.id
                    ],
                )
                .map_err(fail)?;
                return Ok(Accepted::Duplicate { id, first: Box::new(first) });
            }
            tx.prepare_cached(
                "INSERT OR REPLACE INTO deliveries (trigger, key, run_id, seen_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(fail)?
            .execute(params![a.run.trigger, key, id, a.run.started_ms])
            .map_err(fail)?;
        }
        tx.prepare_cached(
            "INSERT INTO runs (id, trigger, script, status, started_at, input, owner, retry_of) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(fail)?
        .execute(params![
            id,
            a.run.trigger,
            a.run.script,
            status,
            a.run.started_ms,
            a.run.input.to_string(),
            a.owner,
            a.retry_of
        ])
        .map_err(fail)?;
        if let Some(mark) = a.mark {
            tx.execute(
                "INSERT INTO schedule_marks (trigger, fired_at) VALUES (?1, ?2) \
                 ON CONFLICT (trigger) DO UPDATE SET fired_at = max(fired_at, ?2)",
                params![a.run.trigger, mark],
            )
            .map_err(fail)?;
        }
        if let Some(sealed) = a.sealed_input {
            let (nonce, ct) = sealed.split_at(sealed.len().min(crate::vault::crypto::NONCE_LEN));
            tx.prepare_cached("INSERT INTO run_inputs (run_id, nonce, ciphertext) VALUES (?1, ?2, ?3)")
                .map_err(fail)?
                .execute(params![id, nonce, ct])
                .map_err(fail)?;
        }
        Ok(Accepted::New(id))
    }

    /// [`RunQueue::finish`] on `conn` (a transaction, or the connection itself).
    fn finish_in(
        &self,
        conn: &Connection,
        id: &str,
        end: &RunEnd,
        response: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let status: &'static str = end.status.into();
        let requests = serde_json::to_string(&end.requests).unwrap_or_else(|_| "[]".into());
        let info = serde_json::to_string(&end.info).unwrap_or_else(|_| "[]".into());
        conn.prepare_cached(
            "UPDATE runs SET status = ?2, ended_at = ?3, result = ?4, error = ?5, info = ?6, requests = ?7, \
             response = ?8 WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                id,
                status,
                end.ended_ms,
                end.result.as_ref().map(|v| v.to_string()),
                end.error,
                info,
                requests,
                response.map(|v| v.to_string()),
            ])
        })
        .map_err(|e| self.fail(e))?;
        Ok(())
    }
}

impl RunQueue for SqliteRuns {
    fn accept(&self, a: &Accept<'_>) -> Result<Accepted, StoreError> {
        let tx = self.tx()?;
        let r = self.accept_in(&tx, a)?;
        tx.commit().map_err(|e| self.fail(e))?;
        Ok(r)
    }

    fn batch(&self, ops: &mut [BatchOp<'_>]) -> Result<(), StoreError> {
        let tx = self.tx()?;
        for op in ops.iter_mut() {
            match op {
                BatchOp::Accept(a, out) => *out = Some(self.accept_in(&tx, a)),
                BatchOp::Finish { id, end, response, out } => *out = Some(self.finish_in(&tx, id, end, *response)),
            }
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    fn start(&self, id: &str, owner: &str, started_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .db
            .prepare_cached(
                "UPDATE runs SET status = 'running', owner = ?2, started_at = ?3 WHERE id = ?1 AND status = 'queued'",
            )
            .and_then(|mut st| st.execute(params![id, owner, started_ms]))
            .map_err(|e| self.fail(e))?;
        Ok(n == 1)
    }

    fn finish(&self, id: &str, end: &RunEnd, response: Option<&serde_json::Value>) -> Result<(), StoreError> {
        self.finish_in(&self.db, id, end, response)
    }

    fn queued(&self, limit: usize) -> Result<Vec<Run>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM runs WHERE status = 'queued' ORDER BY started_at, id LIMIT ?1");
        let mut st = self.db.prepare_cached(&sql).map_err(|e| self.fail(e))?;
        let rows = st.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], row).map_err(|e| self.fail(e))?;
        rows.collect::<rusqlite::Result<Vec<Run>>>().map_err(|e| self.fail(e))
    }

    fn recover(&self, alive: &dyn Fn(&str) -> bool, ended_ms: i64) -> Result<Vec<String>, StoreError> {
        let tx = self.tx()?;
        let fail = |e| failed(&self.path, &e);
        let running: Vec<(String, Option<String>)> = tx
            .prepare("SELECT id, owner FROM runs WHERE status = 'running'")
            .map_err(fail)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(fail)?
            .collect::<rusqlite::Result<_>>()
            .map_err(fail)?;
        let mut gone = Vec::new();
        for (id, owner) in running {
            // A run without an owner was begun by `linkrun run` through the spool's import: its
            // lease says whether it runs, not this table.
            let Some(owner) = owner else { continue };
            if !alive(&owner) {
                tx.prepare_cached(
                    "UPDATE runs SET status = 'interrupted', ended_at = ?2, error = ?3 WHERE id = ?1 AND status = 'running'",
                ).map_err(fail)?.execute(
                    params![id, ended_ms, INTERRUPTED],
                )
                .map_err(fail)?;
                gone.push(id);
            }
        }
        tx.commit().map_err(fail)?;
        Ok(gone)
    }

    fn sealed_input(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .query_row("SELECT nonce, ciphertext FROM run_inputs WHERE run_id = ?1", params![id], |r| {
                let mut n: Vec<u8> = r.get(0)?;
                let ct: Vec<u8> = r.get(1)?;
                n.extend_from_slice(&ct);
                Ok(n)
            })
            .optional()
            .map_err(|e| self.fail(e))
    }

    fn response(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<Option<String>> = self
            .db
            .query_row("SELECT response FROM runs WHERE id = ?1", params![id], |r| r.get(0))
            .optional()
            .map_err(|e| self.fail(e))?;
        Ok(text.flatten().and_then(|t| serde_json::from_str(&t).ok()))
    }

    fn fired_at(&self, trigger: &str) -> Result<Option<i64>, StoreError> {
        self.db
            .query_row("SELECT fired_at FROM schedule_marks WHERE trigger = ?1", params![trigger], |r| r.get(0))
            .optional()
            .map_err(|e| self.fail(e))
    }

    fn set_fired_at(&self, trigger: &str, at_ms: i64) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO schedule_marks (trigger, fired_at) VALUES (?1, ?2) \
                 ON CONFLICT (trigger) DO UPDATE SET fired_at = max(fired_at, ?2)",
                params![trigger, at_ms],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    fn clear_fired_at(&self, trigger: &str) -> Result<(), StoreError> {
        self.db.execute("DELETE FROM schedule_marks WHERE trigger = ?1", params![trigger]).map_err(|e| self.fail(e))?;
        Ok(())
    }

    fn forget_deliveries(&self, before_ms: i64) -> Result<u64, StoreError> {
        let n = self
            .db
            .execute("DELETE FROM deliveries WHERE seen_at < ?1", params![before_ms])
            .map_err(|e| self.fail(e))?;
        Ok(n as u64)
    }
}

/// The error of a run whose server ended before it did.
pub const INTERRUPTED: &str = "linkrun serve ended before the run did (killed, or stopped past its grace period); replay it with `linkrun runs retry ID`";

/// The key that seals the whole inputs of runs (webhook requests, args) in `runs.db`: 32 random
/// bytes made on first use and kept sealed in the vault (owner `runs`), so `vault rekey` covers
/// it and a copied `runs.db` alone reveals no input.
pub struct InputKey(crate::vault::crypto::MasterKey);

impl InputKey {
    /// The home's input key, made on first use.
    pub fn load(vault: &mut crate::vault::Vault) -> Result<InputKey, crate::vault::VaultError> {
        use secrecy::ExposeSecret as _;
        let text = vault.secret_get_or_set("runs", "input_key", || {
            let bytes = crate::vault::crypto::random_bytes::<32>()?;
            Ok(crate::vault::crypto::MasterKey::from_bytes(bytes).to_base64().to_string().into())
        })?;
        Ok(InputKey(crate::vault::crypto::MasterKey::from_base64(text.expose_secret(), "the runs input key")?))
    }

    fn aad(id: &str) -> Vec<u8> {
        format!("linkrun/run-input/v1\u{0}{id}").into_bytes()
    }

    /// `plain` sealed for run `id` ([`new_id`]): the nonce, then the ciphertext.
    pub fn seal(&self, id: &str, plain: &[u8]) -> Result<Vec<u8>, crate::vault::VaultError> {
        let (n, mut ct) = self.0.seal(plain, &InputKey::aad(id))?;
        let mut out = n.to_vec();
        out.append(&mut ct);
        Ok(out)
    }

    /// Opens what [`InputKey::seal`] made for run `id`.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        if sealed.len() < crate::vault::crypto::NONCE_LEN {
            return None;
        }
        let (n, ct) = sealed.split_at(crate::vault::crypto::NONCE_LEN);
        self.0.open(n, ct, &InputKey::aad(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(trigger: &str, ms: i64) -> NewRun {
        NewRun { trigger: trigger.into(), script: "/s.rhai".into(), input: serde_json::json!({}), started_ms: ms }
    }

    fn ended(status: RunStatus, ms: i64) -> RunEnd {
        RunEnd { status, result: Some(1.into()), error: None, info: vec!["hi".into()], requests: vec![], ended_ms: ms }
    }

    #[test]
    fn runs_are_listed_newest_first_filtered_and_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteRuns::open_file(&dir.path().join("runs.db")).unwrap();
        let a = s.begin(&new("cli", 1_000)).unwrap();
        let b = s.begin(&new("hook", 2_000)).unwrap();
        let c = s.begin(&new("cli", 3_000)).unwrap();
        s.end(&a, &ended(RunStatus::Ok, 1_500)).unwrap();
        s.end(&b, &ended(RunStatus::Failed, 2_100)).unwrap();
        let all = s.list(&RunFilter { limit: 10, ..Default::default() }).unwrap();
        assert_eq!(all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [&c, &b, &a]);
        assert_eq!(all[2].duration_ms(), Some(500));
        assert_eq!(all[0].status, RunStatus::Running);
        assert_eq!(all[0].duration_ms(), None);
        let cli = s.list(&RunFilter { trigger: Some("cli".into()), limit: 10, ..Default::default() }).unwrap();
        assert_eq!(cli.len(), 2);
        let failed = s.list(&RunFilter { status: Some(RunStatus::Failed), limit: 10, ..Default::default() }).unwrap();
        assert_eq!(failed[0].id, b);
        let recent = s.list(&RunFilter { since_ms: Some(2_000), limit: 1, ..Default::default() }).unwrap();
        assert_eq!(recent.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [&c]);
        assert_eq!(s.get(&a).unwrap().unwrap().info, ["hi"]);
        // Keep the newest 1: `a` and `b` go, the running `c` stays whatever the rule.
        assert_eq!(s.prune(Some(1), None).unwrap(), 2);
        assert_eq!(s.prune(None, Some(10_000)).unwrap(), 0, "a running run is never pruned");
        assert!(s.get(&a).unwrap().is_none());
        assert!(s.get(&c).unwrap().is_some());
    }

    #[test]
    fn a_file_from_a_newer_linkrun_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        drop(SqliteRuns::open_file(&path).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        let e = SqliteRuns::open_file(&path).err().unwrap();
        assert!(e.0.contains("written by a newer linkrun (schema 99"), "{e}");
    }
}
