//! `linkrun runs list|show|prune`: the record of every run (see [`crate::runs`]). Every read
//! goes through [`SpooledRuns`], which first imports what `linkrun run` processes spooled and
//! marks the runs of processes that are gone `interrupted`.

use clap::Subcommand;

use crate::home::Home;
use crate::runs::{Run, RunFilter, RunStatus, RunStore, now_ms, parse_since};
use crate::store::SpooledRuns;
use crate::{Error, Result};

/// The most runs `runs list --limit` shows.
const MAX_LIMIT: usize = 100_000;

/// Runs commands.
#[derive(Debug, Subcommand)]
pub enum RunsCmd {
    /// List runs, newest first: id, trigger, status, start, duration, script.
    List {
        /// Only the runs of this trigger (`cli` for `linkrun run`).
        #[arg(long)]
        trigger: Option<String>,
        /// Only runs in this state: queued, running, ok, failed, timed_out, interrupted,
        /// skipped, duplicate.
        #[arg(long)]
        status: Option<String>,
        /// Only runs started since: an RFC 3339 time or a span back from now (90s, 15m, 2h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print JSON: an array of runs.
        #[arg(long)]
        json: bool,
    },
    /// Delete now the ended runs `[runs]` of linkrun.toml no longer keeps (`keep`, default
    /// 100,000; `max_age_days`, default 90); `linkrun run` does it now and then by itself.
    Prune {
        /// Print JSON: `{"deleted": N}`.
        #[arg(long)]
        json: bool,
    },
    /// Run a failed, timed-out or interrupted run again with the input it was given, as a new
    /// run of the same trigger linked to the first (`retry_of`).
    Retry {
        /// The run's id.
        id: String,
        /// Print JSON: `{"run_id", "retry_of", "status", "result", "error"}`.
        #[arg(long)]
        json: bool,
    },
    /// Show one run: its record, input (redacted), result, `info` lines and requests.
    Show {
        /// The run's id (as `runs list` shows it).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a runs command.
pub fn run(home: &Home, cmd: RunsCmd) -> Result<()> {
    match cmd {
        RunsCmd::Retry { id, json } => retry(home, &id, json),
        RunsCmd::List { trigger, status, since, limit, json } => {
            let status = status
                .map(|s| {
                    s.parse::<RunStatus>().map_err(|_| {
                        Error::Usage(format!(
                            "`--status {s}` is not a run state: use one of {}",
                            <RunStatus as strum::VariantNames>::VARIANTS.join(", ")
                        ))
                    })
                })
                .transpose()?;
            let since_ms = since.map(|s| parse_since(&s, now_ms())).transpose().map_err(Error::Usage)?;
            if limit == 0 || limit > MAX_LIMIT {
                return Err(Error::Usage(format!("`--limit {limit}` is out of range: give 1 to {MAX_LIMIT}")));
            }
            let runs = SpooledRuns::new(home).list(&RunFilter { trigger, status, since_ms, limit })?;
            if json {
                return super::print_json(&serde_json::Value::Array(runs.iter().map(|r| r.to_json(false)).collect()));
            }
            if runs.is_empty() {
                eprintln!("no runs recorded yet: `linkrun run SCRIPT` records one");
                return Ok(());
            }
            let tw = runs.iter().map(|r| r.trigger.chars().count()).max().unwrap_or(0).max(7);
            outln!("{:20}  {:tw$}  {:11}  {:24}  {:>9}  SCRIPT", "ID", "TRIGGER", "STATUS", "STARTED", "MS");
            for r in &runs {
                let ms = r.duration_ms().map(|d| d.to_string()).unwrap_or_else(|| "-".into());
                outln!(
                    "{:20}  {:tw$}  {:11}  {:24}  {ms:>9}  {}",
                    r.id,
                    r.trigger,
                    r.status.to_string(),
                    crate::runs::rfc3339(r.started_ms),
                    r.script
                );
            }
            Ok(())
        }
        RunsCmd::Prune { json } => {
            let deleted = prune(home, &SpooledRuns::new(home))?;
            if json {
                return super::print_json(&serde_json::json!({ "deleted": deleted }));
            }
            outln!("deleted {deleted} run record(s)");
            Ok(())
        }
        RunsCmd::Show { id, json } => {
            let run = SpooledRuns::new(home).get(&id)?.ok_or_else(|| {
                Error::Usage(format!("there is no run `{id}`: see the recorded runs with `linkrun runs list`"))
            })?;
            if json {
                return super::print_json(&run.to_json(true));
            }
            show(&run)
        }
    }
}

/// Deletes the ended runs beyond `[runs] keep` or older than `max_age_days`; how many went.
pub fn prune(home: &Home, store: &SpooledRuns) -> Result<u64> {
    use crate::config::{Config, RunsConfig};
    let config = Config::load(home)?;
    let keep = config.runs.keep.unwrap_or(RunsConfig::DEFAULT_KEEP);
    let days = config.runs.max_age_days.unwrap_or(RunsConfig::DEFAULT_MAX_AGE_DAYS);
    let age_ms = i64::try_from(days).unwrap_or(i64::MAX).saturating_mul(86_400_000);
    Ok(store.prune(Some(keep), Some(now_ms().saturating_sub(age_ms)))?)
}

fn show(r: &Run) -> Result<()> {
    outln!("run:      {}", r.id);
    outln!("trigger:  {}", r.trigger);
    outln!("script:   {}", r.script);
    outln!("status:   {}", r.status);
    outln!("started:  {}", crate::runs::rfc3339(r.started_ms));
    if let Some(d) = r.duration_ms() {
        outln!("duration: {d} ms");
    }
    if let Some(e) = &r.error {
        outln!("error:    {e}");
    }
    outln!("input:    {}", r.input);
    if let Some(v) = &r.result {
        outln!("result:   {v}");
    }
    for line in &r.info {
        outln!("info:     {line}");
    }
    if !r.requests.is_empty() {
        outln!("requests:");
        for q in &r.requests {
            let status = q.status.map(|s| s.to_string()).unwrap_or_else(|| "no answer".into());
            let tries = if q.attempts > 1 { format!(", {} attempts", q.attempts) } else { String::new() };
            outln!("  {} {} -> {status} ({} ms, {} bytes{tries})", q.method, q.url, q.duration_ms, q.bytes);
        }
    }
    Ok(())
}

/// `runs retry ID`.
fn retry(home: &Home, id: &str, json: bool) -> Result<()> {
    let (new, end) = crate::serve::replay(home, id)?;
    if json {
        super::print_json(&serde_json::json!({
            "run_id": new, "retry_of": id, "status": end.status, "result": end.result, "error": end.error,
        }))?;
    } else {
        eprintln!("run {new} (retry of {id}): {}", end.status);
        if let Some(e) = &end.error {
            eprintln!("error: {e}");
        }
        if let Some(r) = &end.result {
            match r {
                serde_json::Value::String(s) => outln!("{s}"),
                serde_json::Value::Null => {}
                other => outln!("{other}"),
            }
        }
    }
    match end.status {
        RunStatus::Ok => Ok(()),
        _ => Err(Error::Exit(1)),
    }
}
