//! The run spool: how a short-lived process (`linkrun run`) records its run without opening the
//! database. At the start it writes the run into `run-leases/ID` in the home and holds an
//! exclusive lock on that file while the script runs; the OS drops the lock when the process
//! ends, however it ends (`kill -9` included). At the end it writes the whole record into
//! `run-leases/ID.done` (a temporary file renamed into place, so it is whole or absent), then
//! removes the lease. Whoever reads the runs ([`SpooledRuns::list`], [`SpooledRuns::get`],
//! [`SpooledRuns::prune`]) first imports the spool into `runs.db`: each `.done` record as it is,
//! each lease nobody holds (its process is gone) as `interrupted`, each held one as `running`.
//! Recording a run thus costs two small file writes and no fsync; importing is idempotent, so
//! readers racing each other write the same rows.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SqliteRuns;
use crate::home::Home;
use crate::runs::{NewRun, RequestTrace, Run, RunEnd, RunFilter, RunStatus, RunStore, StoreError};

/// A run as the spool writes it.
#[derive(Serialize, Deserialize)]
struct Spooled {
    id: String,
    trigger: String,
    script: String,
    status: RunStatus,
    started_ms: i64,
    ended_ms: Option<i64>,
    input: Value,
    result: Option<Value>,
    error: Option<String>,
    info: Vec<String>,
    requests: Vec<RequestTrace>,
}

impl Spooled {
    fn into_run(self) -> Run {
        Run {
            id: self.id,
            trigger: self.trigger,
            script: self.script,
            status: self.status,
            started_ms: self.started_ms,
            ended_ms: self.ended_ms,
            input: self.input,
            result: self.result,
            error: self.error,
            info: self.info,
            requests: self.requests,
            parent: None,
        }
    }
}

/// The run records of a home through the spool: writes go to files, reads import them into
/// `runs.db` first (see the module doc).
pub struct SpooledRuns {
    home: Home,
    /// The leases this process holds, by run id, with what their file says.
    held: Mutex<HashMap<String, (File, Spooled)>>,
}

fn dir(home: &Home) -> PathBuf {
    home.root().join("run-leases")
}

fn io_fail(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    StoreError(format!("cannot {what} `{}`: {e}; check the folder and its permissions", path.display()))
}

/// Writes `bytes` to `path` whole: a temporary file renamed into place.
fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Whether some process holds the lock on `path` (false when there is no such file).
fn is_held(path: &Path) -> bool {
    let Ok(file) = File::open(path) else { return false };
    match file.try_lock_shared() {
        Ok(()) => false,
        Err(TryLockError::WouldBlock) => true,
        // Cannot tell: count it as held, so a live run is never called interrupted.
        Err(TryLockError::Error(_)) => true,
    }
}

impl SpooledRuns {
    /// The spooled run records of `home` (nothing is opened yet).
    pub fn new(home: &Home) -> SpooledRuns {
        SpooledRuns { home: home.clone(), held: Mutex::new(HashMap::new()) }
    }

    /// How many files the spool holds (0 when it cannot be read).
    pub fn spooled(&self) -> usize {
        std::fs::read_dir(dir(&self.home)).map(|rd| rd.count()).unwrap_or(0)
    }

    /// Imports the spool into `runs.db` and returns the database, or `None` when nothing was
    /// ever recorded.
    fn import(&self) -> Result<Option<SqliteRuns>, StoreError> {
        let d = dir(&self.home);
        let entries: Vec<PathBuf> = match std::fs::read_dir(&d) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_fail("read the run spool", &d, &e)),
        };
        if entries.is_empty() && !SqliteRuns::path(&self.home).exists() {
            return Ok(None);
        }
        let db = SqliteRuns::open(&self.home)?;
        let read = |p: &Path| -> Option<Spooled> { serde_json::from_slice(&std::fs::read(p).ok()?).ok() };
        // Finished runs first: a lease whose `.done` exists is over, whatever its lock says.
        for p in entries.iter().filter(|p| p.extension().is_some_and(|x| x == "done")) {
            if let Some(s) = read(p) {
                db.put(&s.into_run(), true)?;
            }
            let _ = std::fs::remove_file(p);
        }
        // A half-written record of a process that is gone (killed between writing and renaming).
        for p in entries.iter().filter(|p| p.extension().is_some_and(|x| x == "tmp")) {
            if !is_held(&p.with_extension("")) {
                let _ = std::fs::remove_file(p);
            }
        }
        for p in entries.iter().filter(|p| p.extension().is_none()) {
            if p.with_extension("done").exists() {
                continue;
            }
            let held = is_held(p);
            let Some(mut s) = read(p) else {
                // A lease with nothing readable in it: its process died while writing it.
                if !held {
                    let _ = std::fs::remove_file(p);
                }
                continue;
            };
            if held {
                db.put(&s.into_run(), false)?;
                continue;
            }
            if p.with_extension("done").exists() {
                // It finished between the two checks: the next import takes the record.
                continue;
            }
            s.status = RunStatus::Interrupted;
            s.ended_ms = std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| (d.as_millis() as i64).max(s.started_ms))
                .or(Some(s.started_ms));
            s.error = Some("its process ended before the run did (killed, or the machine stopped)".into());
            db.put(&s.into_run(), false)?;
            let _ = std::fs::remove_file(p);
        }
        // Runs of a `linkrun serve` that was killed: interrupted (its next start does the same).
        crate::runs::RunQueue::recover(&db, &crate::vault::lease::owner_alive, crate::runs::now_ms())?;
        Ok(Some(db))
    }
}

impl RunStore for SpooledRuns {
    fn begin(&self, run: &NewRun) -> Result<String, StoreError> {
        let id = super::new_id(run.started_ms);
        let d = dir(&self.home);
        crate::home::create_private_dir_io(&d).map_err(|e| io_fail("create the run spool", &d, &e))?;
        let path = d.join(&id);
        let fail = |e: std::io::Error| io_fail("write the run lease", &path, &e);
        let mut file = OpenOptions::new().create_new(true).write(true).open(&path).map_err(fail)?;
        // Locked before anything is in it: a reader finding it unlocked knows its writer is gone.
        file.lock().map_err(fail)?;
        let s = Spooled {
            id: id.clone(),
            trigger: run.trigger.clone(),
            script: run.script.clone(),
            status: RunStatus::Running,
            started_ms: run.started_ms,
            ended_ms: None,
            input: run.input.clone(),
            result: None,
            error: None,
            info: Vec::new(),
            requests: Vec::new(),
        };
        file.write_all(&serde_json::to_vec(&s).unwrap_or_default()).map_err(fail)?;
        self.held.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), (file, s));
        Ok(id)
    }

    fn end(&self, id: &str, end: &RunEnd) -> Result<(), StoreError> {
        let path = dir(&self.home).join(id);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let Some((file, begun)) = held.remove(id) else {
            return Err(StoreError(format!("run `{id}` was not begun by this process, so it cannot end here")));
        };
        let s = Spooled {
            status: end.status,
            ended_ms: Some(end.ended_ms),
            result: end.result.clone(),
            error: end.error.clone(),
            info: end.info.clone(),
            requests: end.requests.clone(),
            ..begun
        };
        let done = path.with_extension("done");
        write_whole(&done, &serde_json::to_vec(&s).unwrap_or_default())
            .map_err(|e| io_fail("write the run record", &done, &e))?;
        // Remove the lease, then let its lock go.
        let _ = std::fs::remove_file(&path);
        drop(file);
        Ok(())
    }

    fn list(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
        match self.import()? {
            Some(db) => db.list(filter),
            None => Ok(Vec::new()),
        }
    }

    fn get(&self, id: &str) -> Result<Option<Run>, StoreError> {
        match self.import()? {
            Some(db) => db.get(id),
            None => Ok(None),
        }
    }

    fn prune(&self, keep: Option<u64>, before_ms: Option<i64>) -> Result<u64, StoreError> {
        match self.import()? {
            Some(db) => db.prune(keep, before_ms),
            None => Ok(0),
        }
    }
}
