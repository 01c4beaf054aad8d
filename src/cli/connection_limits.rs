//! `linkrun connection limits LINK`: shows, sets or clears a connection's own rate budget, the
//! `[limits]` keys it sets over its service's (see [`crate::http::budget`]).

use serde_json::json;

use super::connection_error::ConnectionCmdError;
use crate::Result;
use crate::catalog::Catalog;
use crate::home::Home;
use crate::link_name::LinkName;
use crate::service::LimitsDef;
use crate::vault::Vault;

/// What to change; nothing given shows the limits.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitsArgs {
    /// Requests of the connection in flight at once.
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<u32>,
    /// Requests started per second (0.5: one every 2 s).
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub requests_per_second: Option<f64>,
    /// Requests started in any span of `--window-s` seconds (the provider's hourly or daily quota).
    #[arg(long, value_name = "N", requires = "window_s")]
    pub window_requests: Option<u32>,
    /// The span of `--window-requests`, in seconds.
    #[arg(long, value_name = "SECS", requires = "window_requests")]
    pub window_s: Option<u64>,
    /// Forget the connection's own values: its service's apply again.
    #[arg(long, conflicts_with_all = ["max_concurrency", "requests_per_second", "window_requests", "window_s"])]
    pub clear: bool,
    /// Print JSON: `{"connection", "service", "own", "limits"}` (`limits`: what applies).
    #[arg(long)]
    pub json: bool,
}

/// Runs `connection limits`.
pub fn run(home: &Home, link: &LinkName, a: LimitsArgs) -> Result<()> {
    let unknown = || -> crate::Error { crate::connection::ConnectionError::Unknown { link: link.to_string() }.into() };
    if !Vault::exists(home) {
        return Err(unknown());
    }
    let mut vault = Vault::open(home)?;
    let rec = vault.get(link)?.ok_or_else(unknown)?;
    let catalog = Catalog::load(home)?;
    let service = catalog
        .get(&rec.service)
        .ok()
        .and_then(|s| s.def.limits.as_ref().map(|l| l.get_ref().clone()))
        .unwrap_or_default();
    let stored = vault.connection_limits(link)?;
    let mut own: LimitsDef = stored.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default();
    let given = LimitsDef {
        max_concurrency: a.max_concurrency,
        requests_per_second: a.requests_per_second,
        window_requests: a.window_requests,
        window_s: a.window_s,
    };
    let changed = a.clear || given != LimitsDef::default();
    if a.clear {
        own = LimitsDef::default();
    } else if changed {
        given.check().map_err(|message| ConnectionCmdError::BadLimits { link: link.to_string(), message })?;
        own = own.with(&given);
    }
    if changed {
        let text = (own != LimitsDef::default()).then(|| json!(own).to_string());
        if !vault.set_connection_limits(link, text.as_deref())? {
            return Err(unknown());
        }
    }
    let applied = service.with(&own);
    if a.json {
        return super::print_json(&json!({
            "connection": link,
            "service": rec.service,
            "own": own,
            "limits": applied,
        }));
    }
    if changed {
        eprintln!("updated the limits of connection `{link}`");
    }
    let line = |key: &str, v: Option<String>, mine: bool| -> Result<()> {
        let v = v.unwrap_or_else(|| "none".into());
        let from = if mine { "connection" } else { "service" };
        outln!("{key:<20} {v:<10} ({from})");
        Ok(())
    };
    line("max_concurrency", applied.max_concurrency.map(|n| n.to_string()), own.max_concurrency.is_some())?;
    line("requests_per_second", applied.requests_per_second.map(|n| n.to_string()), own.requests_per_second.is_some())?;
    let window = applied.window_requests.zip(applied.window_s).map(|(n, s)| format!("{n} per {s} s"));
    line("window", window, own.window_requests.is_some())
}
