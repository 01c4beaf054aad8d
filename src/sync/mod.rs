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

/// Runs a sync once in this process: recorded as a run of `trigger` in `runs.db` (with its
/// request trace) and in the sync's history. `Err` only when the run could not start (bad
/// connection, unreadable store); a failure during the run ends it `failed`, its counts kept.
pub fn run(home: &Home, def: &SyncDef, trigger: &str, flags: RunFlags) -> Result<Report> {
    let runs = crate::store::SpooledRuns::new(home);
    let started = crate::runs::now_ms();
    let id = runs.begin(&NewRun {
        trigger: trigger.to_string(),
        script: format!("sync:{}", def.name),
        input: json!({"sync": def.name.as_str(), "full": flags.full, "dry_run": flags.dry_run}),
        started_ms: started,
    })?;
    let log = RunLog::new(&id, trigger);
    let invoker =
        Invoker::new(home.clone(), InvokerOptions { trace: Some(log.requests.clone()), ..Default::default() });
    // The vault is opened (and migrated) before its sync tables are.
    let outcome = invoker
        .vault()
        .map_err(|f| match f {
            crate::auth::live::Failure::Fatal(e) => e,
            crate::auth::live::Failure::Invoke(e) => Error::SyncConnection(e.message),
        })
        .and_then(|_| crate::store::SqliteSync::open(&home.vault_path()).map_err(Error::from))
        .and_then(|store| {
            let rt = crate::http::runtime()?;
            let fields_a: Vec<String> = def.fields.iter().map(|f| f.a.clone()).collect();
            let fields_b: Vec<String> = def.fields.iter().map(|f| f.b.clone()).collect();
            let mut a = sides::open(&def.a, fields_a, &invoker, &rt, def.page_size).map_err(Error::Usage)?;
            let mut b = sides::open(&def.b, fields_b, &invoker, &rt, def.page_size).map_err(Error::Usage)?;
            if !flags.dry_run {
                crate::sync::links::SyncStore::begin_run(&store, &id, def.name.as_str(), started)?;
            }
            let r = engine::run(def, &store, &mut a, &mut b, flags);
            let fatal = a.take_fatal().or_else(|| b.take_fatal());
            Ok((store, r, fatal))
        });
    let (status, error, objects, failures) = match &outcome {
        Ok((_, Ok((counts, failures)), _)) => {
            let dirs: serde_json::Map<String, Value> =
                counts.iter().map(|(d, c)| (d.clone(), serde_json::to_value(c).unwrap_or_default())).collect();
            let failed = counts.iter().any(|(_, c)| c.failed > 0);
            let status = if failed { RunStatus::Failed } else { RunStatus::Ok };
            let error = failed.then(|| {
                let n: u64 = counts.iter().map(|(_, c)| c.failed).sum();
                format!("{n} record(s) could not be written; they are retried on the next run (see `linkrun sync status {}`)", def.name)
            });
            (status, error, json!({ def.object.as_str(): dirs }), failures.clone())
        }
        Ok((_, Err(m), _)) => (RunStatus::Failed, Some(m.clone()), json!({}), Vec::new()),
        Err(e) => (RunStatus::Failed, Some(e.to_string()), json!({}), Vec::new()),
    };
    let (requests, _) = log.requests.take();
    let result = json!({"objects": objects});
    let end = RunEnd {
        status,
        result: Some(result),
        error: error.clone(),
        info: Vec::new(),
        requests,
        ended_ms: crate::runs::now_ms(),
    };
    if let Err(e) = runs.end(&id, &end) {
        eprintln!("linkrun: the sync ran, but its run record stays `running`: {e}");
    }
    if let Ok((store, ..)) = &outcome
        && !flags.dry_run
    {
        let stats = json!({"objects": objects, "failures": failures.iter().map(|(d, i, m)| json!({"direction": d, "id": i, "message": m})).collect::<Vec<_>>()});
        let s: &'static str = status.into();
        if let Err(e) = crate::sync::links::SyncStore::end_run(store, &id, s, &stats, end.ended_ms) {
            eprintln!("linkrun: the sync ran, but its history could not be written: {e}");
        }
    }
    match outcome {
        Err(e) => Err(e),
        Ok((_, Err(_), Some(fatal))) => Err(fatal),
        Ok((_, Err(m), None)) => Err(Error::Other(format!(
            "sync `{}` stopped: {m} (run {id}); nothing past the last committed page is lost: run it again",
            def.name
        ))),
        Ok(_) => Ok(Report { sync: def.name.to_string(), run_id: id, objects, failures, dry_run: flags.dry_run }),
    }
}
