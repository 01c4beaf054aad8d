//! `linkrun run SCRIPT.rhai` (or `-` for standard input), and `linkrun run FUNCTION.dg`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::home::Home;
use crate::runs::{NewRun, RunEnd, RunLog, RunStore, now_ms};
use crate::script::{self, RunOptions, ScriptSource};
use crate::store::SpooledRuns;
use crate::{Error, Result};

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The Rhai script, a Deluge function (`.dg`, `.deluge`), or `-` to read a Rhai script from
    /// standard input.
    pub script: PathBuf,
    /// A text value for the script's `args` map (repeatable).
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
    /// A JSON value (number, bool, list, map, quoted text) for the script's `args` map
    /// (repeatable).
    #[arg(long = "arg-json", value_name = "KEY=JSON")]
    pub args_json: Vec<String>,
    /// A JSON file (or `-` for standard input) whose value the script sees as `input`.
    #[arg(long, value_name = "FILE.json")]
    pub input: Option<PathBuf>,
    /// The name `state_get` / `state_set` keep values under, instead of the script's path
    /// (needed for a script read from standard input).
    #[arg(long, value_name = "NAME")]
    pub state_key: Option<String>,
    /// Print the result as JSON (and `print` output on stderr).
    #[arg(long)]
    pub json: bool,
    /// Wall-clock limit for the whole script, in seconds (more than 0, at most 86400).
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub timeout: f64,
}

/// One run in this many looks at the spool afterwards.
const PRUNE_EVERY: u32 = 32;

/// Spooled records past which that run imports them into runs.db and prunes it: a spool nobody
/// reads (runs started by cron, say) stays small, and the import's cost falls on few runs.
const SPOOL_LIMIT: usize = 256;

/// Deletes the run records `[runs]` of `linkrun.toml` no longer keeps (a failure is only told).
fn prune(home: &Home, store: &SpooledRuns) {
    if let Err(e) = super::runs::prune(home, store) {
        eprintln!("linkrun: cannot delete old run records: {e}");
    }
}

/// Runs the script and prints its result.
pub fn run(home: &Home, a: RunArgs, verbose: bool) -> Result<()> {
    // NaN fails both comparisons; past a day, `Duration` and `Instant` arithmetic would overflow
    // for the largest values.
    if !(a.timeout > 0.0 && a.timeout <= script::MAX_TIMEOUT_SECS) {
        return Err(Error::Usage(format!(
            "`--timeout {}` is out of range: give more than 0 and at most 86400 seconds",
            a.timeout
        )));
    }
    let source = if a.script.as_os_str() == "-" { ScriptSource::Stdin } else { ScriptSource::File(a.script.clone()) };
    if source == ScriptSource::Stdin && a.input.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        return Err(Error::Usage(
            "`linkrun run - --input -` reads both the script and its input from standard input: give --input a file"
                .to_string(),
        ));
    }
    if a.state_key.as_ref().is_some_and(|k| k.trim().is_empty()) {
        return Err(Error::Usage("`--state-key` is empty: give it a name, e.g. --state-key nightly-sync".to_string()));
    }
    let mut args = Vec::new();
    for s in &a.args {
        let (k, v) = script::parse_pair(s, "--arg")?;
        args.push((k, serde_json::Value::String(v)));
    }
    for s in &a.args_json {
        args.push(script::parse_json_pair(s)?);
    }
    let input = a.input.as_deref().map(script::read_input).transpose()?;
    // The run is recorded as `running` before it starts (trigger `cli`), and how it ended after.
    let store = SpooledRuns::new(home);
    let given = serde_json::json!({
        "args": args.iter().cloned().collect::<serde_json::Map<String, serde_json::Value>>(),
        "input": input.clone().unwrap_or_default(),
    });
    let script_name = match &source {
        ScriptSource::Stdin => "-".to_string(),
        ScriptSource::File(p) => std::path::absolute(p).unwrap_or_else(|_| p.clone()).display().to_string(),
    };
    let id = store.begin(&NewRun {
        trigger: "cli".into(),
        script: script_name,
        input: crate::runs::redact(&given),
        started_ms: now_ms(),
    })?;
    let log = RunLog::new(&id, "cli");
    let opts = RunOptions {
        script: source,
        args,
        input,
        state_key: a.state_key,
        json: a.json,
        timeout: Duration::from_secs_f64(a.timeout),
        verbose,
        exit_after: true,
        log: Some(log.clone()),
        request: None,
        quiet: false,
        public_only: false,
        reuse: None,
    };
    let outcome = script::run(home, &opts);
    let (info, result) = log.take();
    let (requests, _more) = log.requests.take();
    let (status, error) = script::outcome_status(&outcome);
    let end = RunEnd { status, result, error, info, requests, ended_ms: now_ms() };
    if let Err(e) = store.end(&id, &end) {
        eprintln!("linkrun: the run ran, but its record stays `running`: {e}");
    }
    // Retention, now and then: `[runs] keep` and `max_age_days`.
    if getrandom::u32().is_ok_and(|r| r % PRUNE_EVERY == 0) && store.spooled() >= SPOOL_LIMIT {
        prune(home, &store);
    }
    if let Some(out) = outcome? {
        outln!("{out}");
    }
    Ok(())
}
