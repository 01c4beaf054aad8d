//! `linkrun sandbox`: the local emulators of Zoho Accounts (OAuth), CRM, Desk, Campaigns and
//! ServiceNow (OAuth and Table API) on 127.0.0.1 until interrupted.

use std::path::PathBuf;

use clap::Args;

use crate::{Error, Result};
use linkrun_sandbox::faults::{CrmKnobs, Knobs, ServiceNowKnobs, ZohoAccountsKnobs};
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
    /// Status of the --failure-rate answers (e.g. 503).
    #[arg(long, value_name = "STATUS", default_value_t = 500)]
    pub failure_status: u16,
    /// Share of API requests answered 429 in the product's own shape (0 to 1), every n-th.
    #[arg(long, value_name = "RATE", default_value_t = 0.0)]
    pub throttle_rate: f64,
    /// `Retry-After` of the --throttle-rate answers, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    pub throttle_retry_after: u64,
    /// Every N-th API request with an OAuth access token finds its provider's tokens expired
    /// (a token expiry mid-run; the client must refresh).
    #[arg(long, value_name = "N")]
    pub expire_tokens_every: Option<u64>,
    /// The --failure-rate answers to writes come after the write was done (a gateway giving up
    /// on a backend that goes on to commit).
    #[arg(long)]
    pub failure_after_write: bool,
    /// Requests per minute and organisation before 429.
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u64>,
    /// Zoho Accounts: access tokens per refresh token in 10 minutes, then "Access Denied" (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub zoho_tokens_per_10_min: u64,
    /// Zoho Accounts: live access tokens per refresh token; one more kills the oldest (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 15)]
    pub zoho_live_tokens: u64,
    /// Zoho Accounts: refresh tokens per client and user; one more deletes the oldest (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub zoho_refresh_tokens: u64,
    /// Zoho CRM: requests of one organisation in flight at once before 429.
    #[arg(long, value_name = "N")]
    pub crm_concurrency: Option<u64>,
    /// Zoho CRM: API credits per organisation in a rolling 24 hours (1 per call) before 429.
    #[arg(long, value_name = "N")]
    pub crm_credits: Option<u64>,
    /// ServiceNow: Table API requests per hour and user before 429 (with X-RateLimit-* headers).
    #[arg(long, value_name = "N")]
    pub servicenow_rate_limit_per_hour: Option<u64>,
}

/// Runs the sandbox until the process is interrupted.
pub fn run(a: SandboxArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&a.failure_rate) {
        return Err(Error::Usage(format!("--failure-rate {} is not between 0 and 1", a.failure_rate)));
    }
    if !(0.0..=1.0).contains(&a.throttle_rate) {
        return Err(Error::Usage(format!("--throttle-rate {} is not between 0 and 1", a.throttle_rate)));
    }
    if !(100..=599).contains(&a.failure_status) {
        return Err(Error::Usage(format!("--failure-status {} is not an HTTP status (100 to 599)", a.failure_status)));
    }
    let limit = |n: u64| (n > 0).then_some(n);
    let opts = Options {
        data: a.data,
        large: a.large,
        token_lifetime: Some(a.token_lifetime),
        knobs: Knobs {
            latency_ms: a.latency_ms,
            failure_rate: a.failure_rate,
            failure_status: a.failure_status,
            throttle_rate: a.throttle_rate,
            throttle_retry_after: a.throttle_retry_after,
            expire_tokens_every: a.expire_tokens_every.filter(|n| *n > 0),
            failure_after_write: a.failure_after_write,
            rate_limit_per_minute: a.rate_limit,
            zoho_accounts: ZohoAccountsKnobs {
                access_tokens_per_refresh_token_per_10_min: limit(a.zoho_tokens_per_10_min),
                live_access_tokens_per_refresh_token: limit(a.zoho_live_tokens),
                refresh_tokens_per_client_and_user: limit(a.zoho_refresh_tokens),
            },
            crm: CrmKnobs { concurrency_limit: a.crm_concurrency, credits_per_day: a.crm_credits },
            servicenow: ServiceNowKnobs { rate_limit_per_hour: a.servicenow_rate_limit_per_hour },
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
