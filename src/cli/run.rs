//! `linkrun run SCRIPT.rhai`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::home::Home;
use crate::script::{self, RunOptions};
use crate::{Error, Result};

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The Rhai script.
    pub script: PathBuf,
    /// A value for the script's `args` map (repeatable).
    #[arg(long = "arg", value_name = "KEY=VALUE")]
    pub args: Vec<String>,
    /// Print the result as JSON (and `print` output on stderr).
    #[arg(long)]
    pub json: bool,
    /// Wall-clock limit for the whole script, in seconds (more than 0, at most 86400).
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub timeout: f64,
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
    let args = a.args.iter().map(|s| script::parse_pair(s, "--arg")).collect::<Result<Vec<_>>>()?;
    let opts = RunOptions {
        path: a.script,
        args,
        json: a.json,
        timeout: Duration::from_secs_f64(a.timeout),
        verbose,
        exit_after: true,
    };
    if let Some(out) = script::run(home, &opts)? {
        outln!("{out}");
    }
    Ok(())
}
