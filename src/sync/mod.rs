//! Syncs: declared pairings of two objects (a ServiceNow table, a Zoho CRM module, or two CRM
//! orgs' modules) kept equal one way or both ways by one engine.
//!
//! - [`def`]: the definition files (`syncs/README.md`), `--set`, where they are found;
//! - [`links`]: what the engine remembers between runs, behind the [`links::SyncStore`] trait;
//! - [`sides`]: the two APIs a side can be;
//! - [`engine`]: the loop (see its module doc for how echoes, conflicts and crashes are handled).
//!
//! A sync run is recorded as a run (`linkrun runs`, trigger `cli` or the serve trigger's name)
//! and its counts per object and direction in the sync's own history (`sync status`).

pub mod def;
pub mod engine;
pub mod links;
pub mod sides;

use serde_json::{Value, json};

use crate::home::Home;
use crate::invoke::{Invoker, InvokerOptions};
use crate::runs::{NewRun, RunEnd, RunLog, RunStatus, RunStore as _};
use crate::{Error, Result};

pub use def::SyncDef;
pub use engine::{Counts, RunFlags};

/// What a run reports (`sync run --json`).
#[derive(Debug, Clone)]
pub struct Report {
    /// The sync.
    pub sync: String,
    /// The run id.
    pub run_id: String,
    /// `{OBJECT: {DIRECTION: COUNTS}}`.
    pub objects: Value,
    /// The first failures: (direction, record id, message).
    pub failures: engine::FailureList,
    /// Whether nothing was written (`--dry-run`).
    pub dry_run: bool,
}

impl Report {
    /// Records that failed, over every direction.
    pub fn failed(&self) -> u64 {
        self.objects
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(_, dirs)| dirs.as_object().into_iter().flatten())
            .map(|(_, c)| c["failed"].as_u64().unwrap_or(0))
            .sum()
    }

    /// The `sync run --json` document.
    pub fn to_json(&self) -> Value {
        let mut v = json!({"sync": self.sync, "run_id": self.run_id, "objects": self.objects});
        if !self.failures.is_empty() {
            v["failures"] =
                self.failures.iter().map(|(d, id, m)| json!({"direction": d, "id": id, "message": m})).collect();
        }
        if self.dry_run {
            v["dry_run"] = Value::Bool(true);
        }
        v
    }
}

/// Runs a sync once in this process (`linkrun sync run`): recorded as a run of `trigger` in
/// `runs.db` (with its request trace, script `sync:NAME`) and in the sync's history. `Err` when
/// the run could not start or stopped (its record says so too).
pub fn run(
    home: &Home,
    def: &SyncDef,
    trigger: &str,
    flags: RunFlags,
    progress: engine::Progress<'_>,
) -> Result<Report> {
    let runs = crate::store::SpooledRuns::new(home);
    let id = runs.begin(&NewRun {
        trigger: trigger.to_string(),
        script: format!("{}{}", crate::trigger::SYNC_PREFIX, def.name),
        input: json!({"sync": def.name.as_str(), "full": flags.full, "dry_run": flags.dry_run}),
        started_ms: crate::runs::now_ms(),
    })?;
    let log = RunLog::new(&id, trigger);
    let outcome = execute(home, def, &id, Some(log.requests.clone()), flags, progress);
    let (requests, _) = log.requests.take();
    let end = run_end(&outcome, requests);
    if let Err(e) = runs.end(&id, &end) {
        eprintln!("linkrun: the sync ran, but its run record stays `running`: {e}");
    }
    outcome
}

/// How a run that ran a sync ended, for its record: `ok`, or `failed` when a record failed or
/// the sync stopped; the result is `{"objects": ...}`.
pub fn run_end(outcome: &Result<Report>, requests: Vec<crate::runs::RequestTrace>) -> RunEnd {
    let (status, error, result) = match outcome {
        Ok(r) if r.failures.is_empty() => (RunStatus::Ok, None, Some(json!({"objects": r.objects}))),
        Ok(r) => (
            RunStatus::Failed,
            Some(format!(
                "{} record(s) could not be written; they are retried on the next run (see `linkrun sync status {}`)",
                r.failed(),
                r.sync
            )),
            Some(json!({"objects": r.objects})),
        ),
        Err(e) => (RunStatus::Failed, Some(e.to_string()), None),
    };
    RunEnd { status, result, error, info: Vec::new(), requests, ended_ms: crate::runs::now_ms() }
}

/// Runs a sync, its requests traced into `trace`, its counts kept in the sync's history under
/// `run_id` (unless a dry run). A record that failed does not make this an `Err` (see
/// [`Report::failures`]); a sync that stopped does, with the connection's exit code when it was
/// the connection's fault.
pub fn execute(
    home: &Home,
    def: &SyncDef,
    run_id: &str,
    trace: Option<crate::runs::RequestLog>,
    flags: RunFlags,
    progress: engine::Progress<'_>,
) -> Result<Report> {
    use links::SyncStore as _;
    let _one_at_a_time = lock(home, def)?;
    let started = crate::runs::now_ms();
    let invoker = Invoker::new(home.clone(), InvokerOptions { trace, ..Default::default() });
    // The vault is opened (and migrated) before its sync tables are.
    invoker.vault().map_err(|f| match f {
        crate::auth::live::Failure::Fatal(e) => e,
        crate::auth::live::Failure::Invoke(e) => Error::SyncConnection(e.message),
    })?;
    let store = crate::store::SqliteSync::open(&home.vault_path())?;
    let rt = crate::http::runtime()?;
    let mut fields_a: Vec<String> = def.fields.iter().map(|f| f.a.clone()).collect();
    for (_, f) in &def.recent {
        fields_a.push(f.clone());
    }
    fields_a.extend(def.a.correlation.clone());
    unique(&mut fields_a);
    let mut fields_b: Vec<String> = def.fields.iter().map(|f| f.b.clone()).collect();
    fields_b.extend(def.b.correlation.clone());
    unique(&mut fields_b);
    // Display values are read where `[recent]` or a `display` field needs them.
    let shown = def.fields.iter().any(|f| f.display);
    let mut a = sides::open(&def.a, fields_a, shown || !def.recent.is_empty(), &invoker, &rt, def.page_size)
        .map_err(Error::Usage)?;
    let mut b = sides::open(&def.b, fields_b, shown, &invoker, &rt, def.page_size).map_err(Error::Usage)?;
    if !flags.dry_run {
        store.begin_run(run_id, def.name.as_str(), started)?;
    }
    let outcome = engine::run(def, &store, lookups(home, def)?, &mut a, &mut b, flags, progress);
    let fatal = a.take_fatal().or_else(|| b.take_fatal());
    let mut last = Vec::new();
    let (objects, failures, stopped) = match outcome {
        Ok(engine::Outcome { counts, failures, recent }) => {
            last = recent;
            let dirs: serde_json::Map<String, Value> =
                counts.iter().map(|(d, c)| (d.clone(), serde_json::to_value(c).unwrap_or_default())).collect();
            (json!({ def.object.as_str(): dirs }), failures, None)
        }
        Err(m) => (json!({}), Vec::new(), Some(m)),
    };
    if !flags.dry_run {
        let status = if stopped.is_some() || !failures.is_empty() { "failed" } else { "ok" };
        let listed: Vec<Value> =
            failures.iter().map(|(d, i, m)| json!({"direction": d, "id": i, "message": m})).collect();
        let mut stats = json!({"objects": objects, "failures": listed, "stopped": stopped});
        if !def.recent.is_empty() {
            stats["recent"] = json!({ def.object.as_str(): last });
        }
        if let Err(e) = store.end_run(run_id, status, &stats, crate::runs::now_ms()) {
            eprintln!("linkrun: the sync ran, but its history could not be written: {e}");
        }
    }
    match (stopped, fatal) {
        (Some(_), Some(fatal)) => Err(fatal),
        (Some(m), None) => Err(Error::Other(format!(
            "sync `{}` stopped: {m} (run {run_id}); nothing past the last committed page is lost: run it again",
            def.name
        ))),
        (None, _) => Ok(Report {
            sync: def.name.to_string(),
            run_id: run_id.to_string(),
            objects,
            failures,
            dry_run: flags.dry_run,
        }),
    }
}

/// Drops repeated names, keeping the first of each (a field may be mapped twice).
fn unique(names: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
}

/// The links each `lookup` field translates its ids through: those of the sync it names, which
/// must pair the same two sides (by side name, in either order).
fn lookups(home: &Home, def: &SyncDef) -> Result<Vec<Option<engine::LookupLinks>>> {
    let (an, bn) = (def.a.name(), def.b.name());
    def.fields
        .iter()
        .map(|f| {
            let Some(name) = &f.lookup else { return Ok(None) };
            let at = |m: String| Error::Usage(format!("{}: the field `{}`: {m}", def.origin, f.a));
            let other = def::find(home, name, &[]).map_err(|e| at(e.to_string()))?;
            let (oa, ob) = (other.a.name(), other.b.name());
            let same = oa == an && ob == bn;
            if !(same || oa == bn && ob == an) {
                return Err(at(format!(
                    "`lookup = \"{name}\"` names a sync between `{oa}` and `{ob}`; this one is between `{an}` and `{bn}`"
                )));
            }
            Ok(Some(engine::LookupLinks { sync: other.name.to_string(), object: other.links_key(), same }))
        })
        .collect()
}

/// Takes the sync's lock (a file lock, released by the OS when the process ends, `kill -9`
/// included): two runs of one sync at once would both see a record unlinked and create it twice.
fn lock(home: &Home, def: &SyncDef) -> Result<std::fs::File> {
    let dir = def::installed_dir(home).join(".running");
    crate::home::create_private_dir(&dir)?;
    let path = dir.join(format!("{}.lock", def.name));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| Error::Io { what: format!("cannot open `{}`", path.display()), source })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Other(format!(
            "sync `{}` is running in another process: wait for it to end (`linkrun runs list --status running`), then run it again",
            def.name
        ))),
        Err(std::fs::TryLockError::Error(source)) => {
            Err(Error::Io { what: format!("cannot lock `{}`", path.display()), source })
        }
    }
}
