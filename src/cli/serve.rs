//! `linkrun serve`: webhooks, schedules and alerts (see [`crate::serve`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::home::Home;
use crate::serve::{ServeOptions, default_workers};
use crate::{Error, Result};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub bind: SocketAddr,
    /// Scripts that may run at once (worker threads); default two per core.
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Runs that may wait for a worker; past it webhooks get 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub queue: usize,
    /// Seconds running scripts may go on after SIGINT/SIGTERM before they are recorded as
    /// interrupted.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub grace: u64,
    /// The URL senders reach this server at (behind a TLS reverse proxy), for the webhook URLs
    /// it prints.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Log lines as JSON objects.
    #[arg(long)]
    pub json_logs: bool,
    /// A folder of trigger files to load besides the installed ones (default ./triggers).
    #[arg(long, value_name = "DIR")]
    pub triggers: Option<PathBuf>,
    /// Load only installed triggers, not ./triggers/.
    #[arg(long, conflicts_with = "triggers")]
    pub no_local_triggers: bool,
}

/// Runs the server until SIGINT or SIGTERM.
pub fn run(home: &Home, a: ServeArgs) -> Result<()> {
    let workers = a.workers.unwrap_or_else(default_workers);
    if !(1..=256).contains(&workers) {
        return Err(Error::Usage(format!("`--workers {workers}` is out of range: give 1 to 256")));
    }
    if !(1..=1_000_000).contains(&a.queue) {
        return Err(Error::Usage(format!("`--queue {}` is out of range: give 1 to 1000000", a.queue)));
    }
    if a.grace > 3600 {
        return Err(Error::Usage(format!("`--grace {}` is out of range: give 0 to 3600 seconds", a.grace)));
    }
    if let Some(u) = &a.public_url
        && url::Url::parse(u).map(|u| !matches!(u.scheme(), "http" | "https")).unwrap_or(true)
    {
        return Err(Error::Usage(format!("`--public-url {u}` is not an http(s) URL")));
    }
    let local = if a.no_local_triggers {
        None
    } else {
        a.triggers.clone().or_else(|| std::env::current_dir().ok().map(|d| d.join("triggers")))
    };
    if let Some(dir) = &a.triggers
        && !dir.is_dir()
    {
        return Err(Error::Usage(format!("`--triggers {}` is not a folder", dir.display())));
    }
    let opts = ServeOptions {
        bind: a.bind,
        workers,
        queue: a.queue,
        grace: Duration::from_secs(a.grace),
        public_url: a.public_url,
        json_logs: a.json_logs,
        local_triggers: local,
    };
    crate::serve::serve(home, &opts, None, std::future::pending())
}
