//! `linkrun serve`: the runtime that takes events and runs scripts unattended.
//!
//! One straight line per run (DESIGN's data flow): a trigger (a webhook request, a schedule's
//! mark, an event) → the run is recorded in the store with its whole input sealed, before
//! anything is answered → a job on the in-memory queue → one of a bounded pool of worker threads
//! (plain threads, one script at a time each, so a slow script never stalls the HTTP side) →
//! the run's record, its log line and its metrics → `on_failure` when it failed.
//!
//! The HTTP side is axum on a multi-thread tokio runtime; [`router`] is the one place routes are
//! added (the console comes next, beside the hooks). The queue is bounded: when it is full a
//! webhook gets 503 with `Retry-After`. What was accepted is in `runs.db` before the answer
//! goes out, so `kill -9` at any moment loses nothing: at the next start, runs left `queued`
//! run, and runs left `running` by a process that is gone are marked `interrupted`
//! ([`crate::runs::RunQueue::recover`]).

mod alerts;
mod metrics;
mod recorder;
mod schedule;
mod webhook;
mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::home::Home;
use crate::runs::{RunQueue, RunStatus};
use crate::store::{InputKey, SqliteRuns};
use crate::trigger::{AuthKind, Kind, Trigger};
use crate::{Error, Result};

pub use metrics::Metrics;

/// How `linkrun serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where it listens.
    pub bind: SocketAddr,
    /// Worker threads (scripts running at once).
    pub workers: usize,
    /// Runs waiting for a worker, at most; past it webhooks get 503.
    pub queue: usize,
    /// How long running scripts may go on after SIGINT/SIGTERM.
    pub grace: Duration,
    /// The URL senders reach serve at (behind a proxy), for the webhook URLs it prints.
    pub public_url: Option<String>,
    /// Log lines as JSON objects.
    pub json_logs: bool,
    /// The folder of local trigger files (`./triggers`), if any.
    pub local_triggers: Option<PathBuf>,
}

/// The default worker count: two per core.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

/// What a webhook's sender must present, opened from the vault at start.
pub(crate) struct HookSecrets {
    pub key: Option<SecretString>,
    pub hmac: Option<SecretString>,
    pub basic_password: Option<SecretString>,
}

/// Webhook path → its trigger and secrets.
pub(crate) type Hooks = HashMap<String, (Arc<Trigger>, HookSecrets)>;

/// The vault owner of a trigger's secrets.
pub fn secret_owner(trigger: &str) -> String {
    format!("trigger:{trigger}")
}

/// The sealed fields of a trigger.
pub mod fields {
    /// The generated key of key auth.
    pub const KEY: &str = "key";
    /// The HMAC shared secret.
    pub const HMAC: &str = "hmac_secret";
    /// The Basic password.
    pub const BASIC: &str = "basic_password";
}

/// A new webhook key: 32 random bytes, URL-safe base64, prefixed so it is recognisable in a
/// secret scanner (`lrk_...`).
pub fn new_key() -> Result<SecretString> {
    use base64::Engine as _;
    let bytes = crate::vault::crypto::random_bytes::<32>()?;
    Ok(SecretString::from(format!("lrk_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))))
}

/// What a run is given, kept sealed in `runs.db` so a queued run survives a restart and a
/// failed one can be replayed (`runs retry`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobInput {
    /// The `args` map.
    pub args: serde_json::Map<String, Value>,
    /// The `input` value.
    pub input: Value,
    /// The webhook request (`request` in the script).
    pub request: Option<Value>,
}

/// A run for a worker.
pub(crate) struct Job {
    pub id: String,
    /// The name the run is recorded under.
    pub name: String,
    pub script: PathBuf,
    pub timeout_s: f64,
    pub input: JobInput,
    /// The trigger (none for event handlers and `on_failure` scripts, which raise no alert).
    pub trigger: Option<Arc<Trigger>>,
    /// A sync webhook waiting for the answer.
    pub reply: Option<tokio::sync::oneshot::Sender<Reply>>,
}

/// What a webhook's request is told, once: by the run records' writer when its run is not going
/// to run (a duplicate, a store failure) or is queued (async mode), else by the worker once the
/// run's end has committed (sync mode).
pub(crate) enum Reply {
    /// A sync run ended (and its record is committed).
    Ran(Outcome),
    /// An async run is committed as `queued`.
    Queued(String),
    /// A repeated delivery: this run id was recorded as its duplicate.
    Duplicate { id: String, first: Box<crate::runs::Run> },
    /// The request could not be stored (the message is for the server's log).
    NotStored(String),
}

/// How a run ended, for a waiting webhook.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub id: String,
    pub status: RunStatus,
    pub result: Option<Value>,
    pub response: Option<Value>,
}

/// The bounded queue in front of the workers.
pub(crate) struct Queue {
    tx: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    depth: AtomicUsize,
    capacity: usize,
}

impl Queue {
    /// Takes a place, if one is free.
    pub fn reserve(&self) -> bool {
        self.depth.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| (d < self.capacity).then_some(d + 1)).is_ok()
    }

    /// Gives a reserved place back.
    pub fn release(&self) {
        self.depth.fetch_sub(1, Ordering::SeqCst);
    }

    /// Hands a job (whose place was reserved, or which was accepted before this start) over.
    pub fn push(&self, job: Job, reserved: bool) {
        if !reserved {
            self.depth.fetch_add(1, Ordering::SeqCst);
        }
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = tx.as_ref() {
            let _ = tx.send(job);
        }
    }

    /// Runs waiting for a worker.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }
}

/// Everything the HTTP side, the scheduler and the workers share.
pub(crate) struct Shared {
    pub home: Home,
    pub config: Config,
    pub store: Mutex<SqliteRuns>,
    /// The group-committing writer of accepted and ended runs.
    pub recorder: recorder::Recorder,
    pub key: InputKey,
    pub owner: String,
    pub triggers: HashMap<String, Arc<Trigger>>,
    pub hooks: Hooks,
    pub queue: Queue,
    pub metrics: Metrics,
    pub log: Logger,
    pub stopping: AtomicBool,
    /// Runs queued or running per trigger (schedules' overlap rule).
    pub live: Mutex<HashMap<String, usize>>,
    /// One lock per `overlap = "queue"` schedule: its runs go one after another.
    pub serial: HashMap<String, Arc<Mutex<()>>>,
    pub workers_busy: AtomicUsize,
    pub workers: usize,
}

impl Shared {
    /// The store, locked (a poisoned lock is still usable: every call is one transaction).
    pub fn store(&self) -> std::sync::MutexGuard<'_, SqliteRuns> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a run of `trigger` as going; [`Shared::gone`] ends it.
    pub fn going(&self, trigger: &str) {
        *self.live.lock().unwrap_or_else(|e| e.into_inner()).entry(trigger.to_string()).or_default() += 1;
    }

    /// A run of `trigger` ended.
    pub fn gone(&self, trigger: &str) {
        if let Some(n) = self.live.lock().unwrap_or_else(|e| e.into_inner()).get_mut(trigger) {
            *n = n.saturating_sub(1);
        }
    }

    /// Runs of `trigger` queued or running.
    pub fn live_runs(&self, trigger: &str) -> usize {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).get(trigger).copied().unwrap_or(0)
    }

    /// Seals a run's input for the store.
    pub fn seal(&self, id: &str, input: &JobInput) -> Result<Vec<u8>> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(input).unwrap_or_default());
        Ok(self.key.seal(id, &plain)?)
    }
}

/// One line per event on stderr: text for people, JSON objects with `--json-logs`.
pub(crate) struct Logger {
    json: bool,
}

impl Logger {
    /// A run ended.
    pub fn run(&self, trigger: &str, id: &str, status: RunStatus, ms: i64) {
        let now = crate::runs::rfc3339(crate::runs::now_ms());
        let line = if self.json {
            serde_json::json!({"ts": now, "event": "run", "trigger": trigger, "run_id": id, "status": status, "ms": ms})
                .to_string()
        } else {
            format!("{now} run {id} trigger={trigger} status={status} {ms} ms")
        };
        Self::write(line);
    }

    /// Anything else worth a line (start, refusals, alerts).
    pub fn note(&self, event: &str, message: &str) {
        let now = crate::runs::rfc3339(crate::runs::now_ms());
        let line = if self.json {
            serde_json::json!({"ts": now, "event": event, "message": message}).to_string()
        } else {
            format!("{now} {event}: {message}")
        };
        Self::write(line);
    }

    /// Writes a line in one `write` (standard error is unbuffered: `eprintln!` writes each
    /// formatted piece on its own), so lines of concurrent runs never interleave either.
    fn write(mut line: String) {
        use std::io::Write as _;
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// The routes: health, metrics, and every webhook under `/hooks/`.
pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    use axum::routing::{any, get};
    axum::Router::new()
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/metrics", get(metrics::handler))
        .route("/hooks/{*rest}", any(webhook::handler))
        .fallback(|| async {
            webhook::error(
                axum::http::StatusCode::NOT_FOUND,
                "nothing here: webhooks live under /hooks/ (see `linkrun trigger list`)",
            )
        })
        .with_state(shared)
}

/// Loads the triggers and their secrets: installed ones, then `./triggers/*.toml`. A local file
/// with key auth gets its key at first start, printed once on stderr; its HMAC secret or Basic
/// password is read from its variable then and sealed.
fn load_triggers(home: &Home, local: Option<&std::path::Path>, log: &Logger) -> Result<(Vec<Arc<Trigger>>, Hooks)> {
    let (all, warnings) = crate::trigger::load_all(home, local).map_err(|e| Error::Usage(e.to_string()))?;
    for w in warnings {
        log.note("warning", &w);
    }
    let mut vault = crate::vault::Vault::open(home)?;
    let mut hooks = HashMap::new();
    let mut triggers = Vec::new();
    for t in all {
        let t = Arc::new(t);
        if let Kind::Webhook(w) = &t.kind {
            let owner = secret_owner(&t.name);
            let mut secrets = HookSecrets { key: None, hmac: None, basic_password: None };
            match w.auth {
                AuthKind::Key => {
                    let mut made = None;
                    let key = vault.secret_get_or_set(&owner, fields::KEY, || {
                        let k = new_key().map_err(|_| crate::vault::VaultError::Io {
                            problem: "cannot make a webhook key".into(),
                            fix: "check the system's random source".into(),
                        })?;
                        made = Some(());
                        Ok(k)
                    })?;
                    if made.is_some() {
                        use secrecy::ExposeSecret as _;
                        // Shown once, as `trigger add` shows its key; sealed from now on.
                        eprintln!(
                            "trigger `{}` ({}): its webhook key, shown only now: {}",
                            t.name,
                            t.file.display(),
                            key.expose_secret()
                        );
                    }
                    secrets.key = Some(key);
                }
                AuthKind::HmacSha256 => {
                    secrets.hmac = Some(sealed_from_env(&mut vault, &t, fields::HMAC, w.secret_env.as_deref())?);
                }
                AuthKind::Basic => {
                    let var = w.basic.as_ref().map(|(_, p)| p.as_str());
                    secrets.basic_password = Some(sealed_from_env(&mut vault, &t, fields::BASIC, var)?);
                }
                AuthKind::None => {}
            }
            hooks.insert(w.path.clone(), (t.clone(), secrets));
        }
        triggers.push(t);
    }
    Ok((triggers, hooks))
}

/// A trigger's secret: sealed already, or read from its variable now and sealed.
fn sealed_from_env(
    vault: &mut crate::vault::Vault,
    t: &Trigger,
    field: &str,
    var: Option<&str>,
) -> Result<SecretString> {
    let owner = secret_owner(&t.name);
    if let Some(s) = vault.secret_get(&owner, field)? {
        return Ok(s);
    }
    let var = var.unwrap_or_default();
    let value =
        read_secret_env(var).map_err(|m| Error::Usage(format!("{}: trigger `{}`: {m}", t.file.display(), t.name)))?;
    vault.secret_set(&owner, field, &value)?;
    Ok(value)
}

/// The value of the variable a trigger file names for a secret.
pub fn read_secret_env(var: &str) -> std::result::Result<SecretString, String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
        _ => Err(format!(
            "the environment variable `{var}` is not set: set it to the shared secret (it is read once and sealed)"
        )),
    }
}

/// Runs serve until `stop` resolves or SIGINT/SIGTERM arrives.
pub fn serve(
    home: &Home,
    opts: &ServeOptions,
    listening: Option<std::sync::mpsc::Sender<SocketAddr>>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let log = Logger { json: opts.json_logs };
    let config = Config::load(home)?;
    let (triggers, hooks) = load_triggers(home, opts.local_triggers.as_deref(), &log)?;
    let open_hooks: Vec<String> = hooks
        .values()
        .filter(|(t, _)| t.webhook().is_some_and(|w| w.auth == AuthKind::None))
        .map(|(t, _)| t.name.to_string())
        .collect();
    if !open_hooks.is_empty() && !opts.bind.ip().is_loopback() {
        return Err(Error::Usage(format!(
            "trigger(s) {} take webhooks without authentication, so serve binds only to loopback: use --bind 127.0.0.1:PORT, or give them `auth = \"key\"`",
            open_hooks.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        )));
    }
    let mut vault = crate::vault::Vault::open(home)?;
    let key = InputKey::load(&mut vault)?;
    drop(vault);
    let store = SqliteRuns::open(home)?;
    let owner = crate::vault::lease::this_process();
    let now = crate::clock::now_ms();
    let interrupted = store.recover(&crate::vault::lease::owner_alive, now)?;
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    let mut serial = HashMap::new();
    for t in &triggers {
        if let Kind::Schedule(s) = &t.kind
            && s.overlap == crate::trigger::Overlap::Queue
        {
            serial.insert(t.name.to_string(), Arc::new(Mutex::new(())));
        }
    }
    let shared = Arc::new(Shared {
        home: home.clone(),
        config,
        store: Mutex::new(store),
        recorder: recorder::Recorder::start(SqliteRuns::open(home)?)
            .map_err(|source| Error::Io { what: "cannot start the run records' writer".into(), source })?,
        key,
        owner,
        triggers: triggers.iter().map(|t| (t.name.to_string(), t.clone())).collect(),
        hooks,
        queue: Queue { tx: Mutex::new(Some(tx)), depth: AtomicUsize::new(0), capacity: opts.queue },
        metrics: Metrics::default(),
        log,
        stopping: AtomicBool::new(false),
        live: Mutex::new(HashMap::new()),
        serial,
        workers_busy: AtomicUsize::new(0),
        workers: opts.workers,
    });
    for id in &interrupted {
        shared.log.note("interrupted", &format!("run {id} was running when the last server ended"));
    }
    let pool = worker::Pool::start(shared.clone(), rx, opts.workers)?;
    worker::requeue(&shared)?;
    // A run the last server left running failed: its trigger's `on_failure` hears of it.
    for id in &interrupted {
        let run = crate::runs::RunStore::get(&*shared.store(), id).ok().flatten();
        if let Some(t) = run.and_then(|r| shared.triggers.get(&r.trigger).cloned()) {
            alerts::run_failed(&shared, &t, id);
        }
    }

    let runtime = crate::http::server_runtime(std::thread::available_parallelism().map_or(2, |n| n.get()))?;
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.bind).await.map_err(|source| Error::Io {
            what: format!("cannot listen on {}: is another server there? choose another with --bind", opts.bind),
            source,
        })?;
        let addr =
            listener.local_addr().map_err(|source| Error::Io { what: "cannot read the address".into(), source })?;
        announce(&shared, addr, opts, &open_hooks);
        if let Some(l) = listening {
            let _ = l.send(addr);
        }
        let (quit_tx, quit_rx) = tokio::sync::watch::channel(false);
        let schedules = schedule::start(shared.clone(), quit_rx.clone());
        let events = alerts::watch_connections(shared.clone(), quit_rx.clone());
        let shutdown = {
            let shared = shared.clone();
            async move {
                tokio::select! {
                    _ = stop => {}
                    _ = signal() => {}
                }
                shared.log.note("stopping", "no new requests; running scripts may finish");
                shared.stopping.store(true, Ordering::SeqCst);
                let _ = quit_tx.send(true);
            }
        };
        let app = router(shared.clone());
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
        // Graceful shutdown waits for open requests, a sync webhook's among them: past the grace
        // period (and a second for the answers in flight) they are dropped, so that a script that
        // never ends cannot hold serve up.
        let mut stopping = quit_rx.clone();
        let grace = opts.grace + Duration::from_secs(1);
        let served = tokio::select! {
            r = std::future::IntoFuture::into_future(server) => r,
            _ = async move {
                let _ = stopping.wait_for(|v| *v).await;
                tokio::time::sleep(grace).await;
            } => Ok(()),
        };
        for h in schedules {
            h.abort();
        }
        events.abort();
        served.map_err(|source| Error::Io { what: "the server failed".into(), source })
    });
    let unfinished = pool.stop(opts.grace);
    // The ends of the runs that finished are committed before anything is marked or the
    // process exits.
    shared.recorder.flush();
    if !unfinished.is_empty() {
        let ended = crate::clock::now_ms();
        let store = shared.store();
        for id in &unfinished {
            let _ = store.finish(
                id,
                &crate::runs::RunEnd {
                    status: RunStatus::Interrupted,
                    result: None,
                    error: Some(format!(
                        "linkrun serve stopped and the run did not end within the {} s grace period; replay it with `linkrun runs retry {id}`",
                        opts.grace.as_secs()
                    )),
                    info: Vec::new(),
                    requests: Vec::new(),
                    ended_ms: ended,
                },
                None,
            );
        }
        shared.log.note("stopped", &format!("{} run(s) recorded as interrupted", unfinished.len()));
    }
    // Scripts still running past the grace period are abandoned with the process.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

fn announce(shared: &Shared, addr: SocketAddr, opts: &ServeOptions, open: &[String]) {
    let base = opts.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let base = base.trim_end_matches('/');
    shared.log.note(
        "listening",
        &format!("{base} ({} worker(s), queue {}, {} trigger(s))", opts.workers, opts.queue, shared.triggers.len()),
    );
    let mut names: Vec<&Arc<Trigger>> = shared.triggers.values().collect();
    names.sort_by(|a, b| a.name.cmp(&b.name));
    for t in names {
        let what = match &t.kind {
            Kind::Webhook(w) => format!("{} {base}{} ({} mode, auth {})", w.methods.join("|"), w.path, w.mode, w.auth),
            Kind::Schedule(s) => s.describe(),
        };
        shared.log.note("trigger", &format!("{} {what}", t.name));
    }
    for n in open {
        shared.log.note(
            "warning",
            &format!("trigger `{n}` takes webhooks without authentication (allow_unauthenticated): anyone who reaches {addr} can run it"),
        );
    }
}

/// SIGINT or SIGTERM.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(mut i), Ok(mut t)) => {
                tokio::select! {
                    _ = i.recv() => {}
                    _ = t.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `linkrun runs retry ID`: runs a failed, timed-out or interrupted run again, in this process,
/// with the input it was given (opened from its sealed copy; a `linkrun run` without one replays
/// its recorded input when nothing in it was redacted), as a new run of the same trigger linked
/// to the first (`retry_of`). Returns the new run's id and how it ended.
pub fn replay(home: &Home, id: &str) -> Result<(String, crate::runs::RunEnd)> {
    use crate::runs::{Accept, NewRun, RunStore as _};
    let run = crate::store::SpooledRuns::new(home)
        .get(id)?
        .ok_or_else(|| Error::Usage(format!("there is no run `{id}`: see `linkrun runs list`")))?;
    if !matches!(run.status, RunStatus::Failed | RunStatus::TimedOut | RunStatus::Interrupted) {
        return Err(Error::Usage(format!(
            "run `{id}` is {}: only failed, timed_out and interrupted runs are retried",
            run.status
        )));
    }
    let store = SqliteRuns::open(home)?;
    let mut key = None;
    let input = match store.sealed_input(id)? {
        Some(sealed) => {
            let mut vault = crate::vault::Vault::open(home)?;
            let k = InputKey::load(&mut vault)?;
            let plain = k.open(id, &sealed).ok_or_else(|| {
                Error::Usage(format!("the stored input of run `{id}` cannot be opened (sealed under another key?)"))
            })?;
            key = Some(k);
            serde_json::from_slice::<JobInput>(&plain)
                .map_err(|e| Error::Usage(format!("the stored input of run `{id}` is damaged: {e}")))?
        }
        None => {
            if run.input.to_string().contains("\"[redacted]\"") {
                return Err(Error::Usage(format!(
                    "run `{id}` had secret-looking values in its input, which its record does not keep: run it again by hand"
                )));
            }
            JobInput {
                args: run.input["args"].as_object().cloned().unwrap_or_default(),
                input: run.input.get("input").cloned().unwrap_or(Value::Null),
                request: None,
            }
        }
    };
    let script = PathBuf::from(&run.script);
    if run.script == "-" {
        return Err(Error::Usage(format!("run `{id}` read its script from standard input: run it again by hand")));
    }
    let local = std::env::current_dir().ok().map(|d| d.join("triggers"));
    let timeout_s = crate::trigger::load_all(home, local.as_deref())
        .ok()
        .and_then(|(all, _)| all.into_iter().find(|t| t.name == run.trigger.as_str()).map(|t| t.timeout_s))
        .unwrap_or(600.0);
    let now = crate::clock::now_ms();
    let new = crate::store::new_id(now);
    let sealed = key.as_ref().map(|k| {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(&input).unwrap_or_default());
        k.seal(&new, &plain)
    });
    let sealed = sealed.transpose()?;
    let owner = crate::vault::lease::this_process();
    let record =
        NewRun { trigger: run.trigger.clone(), script: run.script.clone(), input: run.input.clone(), started_ms: now };
    store.accept(&Accept {
        id: &new,
        run: &record,
        status: RunStatus::Queued,
        owner: &owner,
        sealed_input: sealed.as_deref(),
        dedupe: None,
        retry_of: Some(id),
        mark: None,
    })?;
    store.start(&new, &owner, now)?;
    let public_only = run.trigger != crate::trigger::CLI_TRIGGER && !Config::load(home)?.serve.allow_private_network;
    let (end, response) = worker::execute(home, &new, &run.trigger, &script, timeout_s, input, false, public_only);
    store.finish(&new, &end, response.as_ref())?;
    Ok((new, end))
}
