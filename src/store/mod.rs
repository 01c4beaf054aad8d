//! Storage back ends. [`SqliteRuns`] keeps the run records ([`crate::runs::RunStore`]) in
//! `runs.db` in linkrun's home: a SQLite file of its own beside the vault, so recording a run
//! needs no master key and its writes never queue behind the vault's; [`SpooledRuns`] is how a
//! short-lived process records its run without opening it (files imported by the next reader,
//! see its module). `runs.db` has its own migrations
//! (`src/store/migrations/runs_*.sql`, `PRAGMA user_version`). WAL mode and a busy timeout let
//! concurrent processes on one home write at once; every call is one short transaction. No
//! SQLite type leaves this module, so a PostgreSQL back end can implement the same trait.

mod lease;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::home::Home;
pub use lease::SpooledRuns;

use crate::runs::{NewRun, RequestTrace, Run, RunEnd, RunFilter, RunStatus, RunStore, StoreError};

/// The runs migrations, in order.
const MIGRATIONS: &[&str] = &[include_str!("migrations/runs_0001.sql")];

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
            format!("INSERT OR REPLACE INTO runs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
        } else {
            format!(
                "INSERT INTO runs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
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
}

fn failed(path: &Path, e: &rusqlite::Error) -> StoreError {
    StoreError(format!(
        "cannot use the run records `{}`: {e}; check the file and its folder, or move it away to start a new one",
        path.display()
    ))
}

/// A new time-ordered id: the start in milliseconds and 32 random bits, in hex.
fn new_id(started_ms: i64) -> String {
    let random = getrandom::u32().unwrap_or_else(|_| std::process::id());
    format!("{:012x}{random:08x}", started_ms.max(0))
}

const COLUMNS: &str = "id, trigger, script, status, started_at, ended_at, input, result, error, info, requests";

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
        let status: &'static str = end.status.into();
        let requests = serde_json::to_string(&end.requests).unwrap_or_else(|_| "[]".into());
        let info = serde_json::to_string(&end.info).unwrap_or_else(|_| "[]".into());
        self.db
            .execute(
                "UPDATE runs SET status = ?2, ended_at = ?3, result = ?4, error = ?5, info = ?6, requests = ?7 WHERE id = ?1",
                params![
                    id,
                    status,
                    end.ended_ms,
                    end.result.as_ref().map(|v| v.to_string()),
                    end.error,
                    info,
                    requests
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
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
            let n = self
                .db
                .execute(
                    "DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE started_at < ?1 \
                     AND status NOT IN ('queued', 'running') LIMIT ?2)",
                    params![cutoff, PRUNE_BATCH as i64],
                )
                .map_err(|e| self.fail(e))? as u64;
            total += n;
            if n < PRUNE_BATCH {
                return Ok(total);
            }
        }
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
