//! When things fail, someone hears: a trigger's `on_failure` (a script run with the failed run's
//! record as `input`, or a URL POSTed the record as JSON, signed with the trigger's HMAC secret
//! when it has one), and the `connection_needs_reauth` event of `[events]` in `linkrun.toml`,
//! fired once per change of a connection to `needs_reauth` (the mark is kept in `runs.db`, so a
//! restart does not fire it again).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::{Job, JobInput, Shared};
use crate::connection::Status;
use crate::runs::{Accept, NewRun, RunQueue, RunStatus, RunStore};
use crate::trigger::{OnFailure, Trigger};

/// The header a signed alert carries: `sha256=` and the lowercase hex HMAC-SHA256 of the body.
pub const SIGNATURE_HEADER: &str = "X-Linkrun-Signature";

/// The name of the runs that `on_failure` scripts make.
pub fn on_failure_name(trigger: &str) -> String {
    format!("{trigger}:on_failure")
}

/// Run `id` of `t` failed: tell its `on_failure`.
pub(crate) fn run_failed(shared: &Arc<Shared>, t: &Arc<Trigger>, id: &str) {
    let Some(on) = &t.on_failure else { return };
    let record = match shared.store().get(id) {
        Ok(Some(r)) => r.to_json(true),
        _ => return,
    };
    let event = json!({ "event": "run_failed", "trigger": t.name.as_str(), "run": record });
    match on {
        OnFailure::Script(path) => queue_handler(shared, &on_failure_name(&t.name), path, event),
        OnFailure::Url(url) => {
            let secret = t
                .webhook()
                .and_then(|w| w.path.clone().into())
                .and_then(|p| shared.hooks.get(&p))
                .and_then(|(_, s)| s.hmac.as_ref().map(|h| h.expose_secret().to_string()));
            post(shared, url.clone(), event, secret, format!("on_failure of `{}`", t.name));
        }
    }
}

/// Queues a handler script with `event` as its input (it raises no alert of its own).
fn queue_handler(shared: &Arc<Shared>, name: &str, script: &std::path::Path, event: Value) {
    let now = crate::clock::now_ms();
    let id = crate::store::new_id(now);
    let input = JobInput { args: serde_json::Map::new(), input: event, request: None };
    let Ok(sealed) = shared.seal(&id, &input) else { return };
    let run = NewRun {
        trigger: name.to_string(),
        script: script.display().to_string(),
        input: crate::runs::redact(&input.input),
        started_ms: now,
    };
    let a = Accept {
        id: &id,
        run: &run,
        status: RunStatus::Queued,
        owner: &shared.owner,
        sealed_input: Some(&sealed),
        dedupe: None,
        retry_of: None,
        mark: None,
    };
    if let Err(e) = shared.store().accept(&a) {
        shared.log.note("alert", &format!("{name}: cannot record the handler's run: {e}"));
        return;
    }
    shared.going(name);
    shared.queue.push(
        Job {
            id,
            name: name.to_string(),
            script: script.to_path_buf(),
            timeout_s: 600.0,
            input,
            trigger: None,
            reply: None,
        },
        false,
    );
}

/// POSTs `event` as JSON to `url` on a thread of its own (three attempts, 1 s and 2 s apart).
fn post(shared: &Arc<Shared>, url: url::Url, event: Value, secret: Option<String>, what: String) {
    let shared = shared.clone();
    let _ = std::thread::Builder::new().name("linkrun-alert".into()).spawn(move || {
        let body = event.to_string();
        let signature = secret.map(|s| {
            use hmac::Mac as _;
            let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(s.as_bytes()).expect("HMAC takes any key");
            mac.update(body.as_bytes());
            let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
            format!("sha256={hex}")
        });
        let Ok(rt) = crate::http::runtime() else { return };
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build();
        let Ok(client) = client else { return };
        let shown = crate::http::rules::redact_url(&url, &[]);
        for attempt in 1..=3u32 {
            let mut req = client.post(url.clone()).header("content-type", "application/json").body(body.clone());
            if let Some(sig) = &signature {
                req = req.header(SIGNATURE_HEADER, sig);
            }
            match rt.block_on(async move { req.send().await }) {
                Ok(r) if r.status().is_success() => {
                    shared.log.note("alert", &format!("{what}: sent to {shown}"));
                    return;
                }
                Ok(r) => shared.log.note("alert", &format!("{what}: {shown} answered {}", r.status().as_u16())),
                Err(e) => shared.log.note("alert", &format!("{what}: cannot reach {shown}: {}", e.without_url())),
            }
            if attempt < 3 {
                std::thread::sleep(Duration::from_secs(u64::from(attempt)));
            }
        }
    });
}

/// The mark of a connection's `needs_reauth` event.
fn mark_key(link: &str) -> String {
    format!("event:connection_needs_reauth:{link}")
}

/// Fires `connection_needs_reauth` for each connection that turned so since the last look.
pub(crate) fn check_connections(shared: &Arc<Shared>) {
    let handlers = &shared.config.events.connection_needs_reauth;
    if handlers.is_empty() {
        return;
    }
    let Ok(vault) = crate::vault::Vault::open(&shared.home) else { return };
    let Ok(list) = vault.list() else { return };
    drop(vault);
    for c in list {
        let key = mark_key(&c.link_name);
        let marked = shared.store().fired_at(&key).ok().flatten().is_some_and(|m| m > 0);
        match (c.status == Status::NeedsReauth, marked) {
            (true, false) => {
                if shared.store().set_fired_at(&key, crate::clock::now_ms()).is_err() {
                    continue;
                }
                let event = json!({
                    "event": "connection_needs_reauth",
                    "connection": c.link_name.as_str(),
                    "service": c.service,
                    "status": c.status.as_str(),
                    "at": crate::runs::rfc3339(crate::clock::now_ms()),
                    "fix": format!("linkrun connection authorize {}", c.link_name),
                });
                shared.log.note("event", &format!("connection `{}` needs re-authorisation", c.link_name));
                for h in handlers {
                    if h.starts_with("http://") || h.starts_with("https://") {
                        match url::Url::parse(h) {
                            Ok(u) => post(shared, u, event.clone(), None, "connection_needs_reauth".into()),
                            Err(e) => shared.log.note("event", &format!("`{h}` in [events] is not a URL: {e}")),
                        }
                    } else {
                        let path = shared.home.root().join(PathBuf::from(h));
                        queue_handler(shared, "connection_needs_reauth", &path, event.clone());
                    }
                }
            }
            // Back to another state: a later change fires again.
            (false, true) => {
                let _ = shared.store().clear_fired_at(&key);
            }
            _ => {}
        }
    }
}

/// Retention, on a connection of its own (its batches never hold the server's): the runs
/// `[runs]` no longer keeps, and delivery ids older than the longest `dedupe_window`.
fn housekeeping(shared: &Shared) {
    use crate::config::RunsConfig;
    let Ok(store) = crate::store::SqliteRuns::open(&shared.home) else { return };
    let keep = shared.config.runs.keep.unwrap_or(RunsConfig::DEFAULT_KEEP);
    let days = shared.config.runs.max_age_days.unwrap_or(RunsConfig::DEFAULT_MAX_AGE_DAYS);
    let now = crate::clock::now_ms();
    let age_ms = i64::try_from(days).unwrap_or(i64::MAX).saturating_mul(86_400_000);
    match store.prune(Some(keep), Some(now.saturating_sub(age_ms))) {
        Ok(0) => {}
        Ok(n) => shared.log.note("retention", &format!("deleted {n} old run record(s)")),
        Err(e) => shared.log.note("retention", &e.to_string()),
    }
    let window = shared
        .triggers
        .values()
        .filter_map(|t| t.webhook().map(|w| w.dedupe_window_ms))
        .max()
        .unwrap_or(crate::trigger::DEFAULT_DEDUPE_WINDOW_MS);
    let _ = store.forget_deliveries(now.saturating_sub(window));
}

/// Looks at the connections every few seconds, and keeps the store's retention every 5 minutes.
pub(crate) fn watch_connections(
    shared: Arc<Shared>,
    mut quit: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick: u64 = 0;
        loop {
            let s = shared.clone();
            let keep = tick.is_multiple_of(60);
            tick += 1;
            let _ = tokio::task::spawn_blocking(move || {
                check_connections(&s);
                if keep {
                    housekeeping(&s);
                }
            })
            .await;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = quit.changed() => return,
            }
        }
    })
}
