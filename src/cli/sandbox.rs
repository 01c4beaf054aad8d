//! `linkrun sandbox`: the local emulators of Zoho Accounts (OAuth), CRM, Desk, Campaigns and
//! ServiceNow (OAuth and Table API) on 127.0.0.1 until interrupted.

use std::path::PathBuf;

use clap::Args;

use crate::{Error, Result};
use linkrun_sandbox::faults::Knobs;
use linkrun_sandbox::server::{DEFAULT_SANDBOX_PORT, Options, Sandbox};

/// Arguments of `sandbox` (the emulators of Zoho Accounts, CRM, Desk, Campaigns and ServiceNow).
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = DEFAULT_SANDBOX_PORT)]
    pub port: u16,
    /// Keep the CRM, Desk, Campaigns and ServiceNow data and the issued OAuth tokens in this
    /// SQLite file (default: in memory).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Seed Org A with more than 2,000 leads (exercises `page_token` paging).
    #[arg(long)]
    pub large: bool,
    /// Access-token lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub token_lifetime: u64,
    /// Latency added to every API answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of API requests answered with a 5xx (0 to 1).
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub failure_rate: f64,
    /// Requests per minute and organisation before 429.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u64>,
}

/// Runs the sandbox until the process is interrupted.
pub fn run(a: SandboxArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&a.failure_rate) {
        return Err(Error::Usage(format!("--failure-rate {} is not between 0 and 1", a.failure_rate)));
    }
    let opts = Options {
        data: a.data,
        large: a.large,
        token_lifetime: Some(a.token_lifetime),
        knobs: Knobs {
            latency_ms: a.latency_ms,
            failure_rate: a.failure_rate,
            rate_limit_per_minute: a.rate_limit,
            ..Default::default()
        },
    };
    let sandbox = Sandbox::new(&opts).map_err(Error::Other)?;
    let runtime = crate::http::server_runtime(2)?;
    runtime.block_on(async {
        let (addr, handle) = sandbox
            .serve(a.port)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on 127.0.0.1:{} ({e}): pass another --port", a.port)))?;
        use std::io::Write as _;
        // A closed stdout must not panic: the sandbox serves all the same.
        let _ = write!(std::io::stdout(), "{}", sandbox.banner(&format!("http://{addr}")));
        let _ = std::io::stdout().flush();
        let _ = handle.await;
        Ok(())
    })
}
