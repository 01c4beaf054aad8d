//! The worker pool: plain threads, one script at a time each. A script's `invoke_url` blocks
//! only its own worker (each has its own current-thread runtime, as `linkrun run` does).

use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Job, JobInput, Outcome, Reply, Shared};
use crate::runs::{RunEnd, RunLog, RunQueue, RunStatus};
use crate::script::{self, RunOptions, ScriptSource};
use crate::{Error, Result};

thread_local! {
    /// Each worker's runtime and HTTP clients, kept from one run to the next.
    static REUSE: Option<std::rc::Rc<script::Reuse>> = script::Reuse::new().ok().map(std::rc::Rc::new);
}

/// Ended runs per worker whose record may still be waiting for its commit. Waiting for each
/// run's end to commit before the next starts held every worker idle for a commit per run (serve
/// ran at a third of the throughput it has with a few in flight; `benches/serve.sh`); a few is
/// as fast as unbounded and keeps what a crash can leave unrecorded small.
const ENDS_IN_FLIGHT: usize = 4;

/// The running pool.
pub(crate) struct Pool {
    threads: Vec<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
    /// Runs in progress: id → started (so a stop past the grace period knows what to mark).
    current: Arc<Mutex<Vec<String>>>,
}

impl Pool {
    /// Starts `n` workers on the queue's receiving end.
    pub fn start(shared: Arc<Shared>, rx: Receiver<Job>, n: usize) -> Result<Pool> {
        let rx = Arc::new(Mutex::new(rx));
        let current = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let (rx, shared, current) = (rx.clone(), shared.clone(), current.clone());
            let t = std::thread::Builder::new()
                .name(format!("linkrun-worker-{i}"))
                .spawn(move || {
                    // The commits of this worker's last runs' ends, oldest first: past
                    // `ENDS_IN_FLIGHT` the oldest is waited for before the next run starts, so a
                    // crash finds at most that many ended runs per worker not yet recorded as
                    // ended (they are marked interrupted, as a run cut off is).
                    let mut ends: std::collections::VecDeque<std::sync::mpsc::Receiver<()>> =
                        std::collections::VecDeque::with_capacity(ENDS_IN_FLIGHT);
                    loop {
                        let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                            Ok(j) => j,
                            Err(_) => return,
                        };
                        shared.queue.release();
                        if shared.stopping.load(Ordering::SeqCst) {
                            turn_away(&shared, job);
                            continue;
                        }
                        current.lock().unwrap_or_else(|e| e.into_inner()).push(job.id.clone());
                        let id = job.id.clone();
                        while ends.len() >= ENDS_IN_FLIGHT {
                            if let Some(end) = ends.pop_front() {
                                let _ = end.recv();
                            }
                        }
                        shared.workers_busy.fetch_add(1, Ordering::SeqCst);
                        ends.extend(run(&shared, job));
                        shared.workers_busy.fetch_sub(1, Ordering::SeqCst);
                        current.lock().unwrap_or_else(|e| e.into_inner()).retain(|x| *x != id);
                    }
                })
                .map_err(|source| Error::Io { what: "cannot start a worker thread".into(), source })?;
            threads.push(t);
        }
        Ok(Pool { threads, shared, current })
    }

    /// Closes the queue and waits up to `grace` for the running scripts; returns the runs still
    /// going then.
    pub fn stop(self, grace: Duration) -> Vec<String> {
        self.shared.queue.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let until = Instant::now() + grace;
        for t in self.threads {
            while !t.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A job taken off the queue after shutdown began: an async run stays `queued` for the next
/// start; a sync one (its sender gets 503 and retries) is marked interrupted.
fn turn_away(shared: &Shared, job: Job) {
    if let Some(reply) = job.reply {
        end(shared, &job.id, &job.name, RunStatus::Interrupted, None, Some("linkrun serve was stopping".into()), None);
        let _ = reply.send(Reply::Ran(Outcome {
            id: job.id,
            status: RunStatus::Interrupted,
            result: None,
            response: None,
        }));
    }
}

/// Records the end of a run that did not run its script.
fn end(
    shared: &Shared,
    id: &str,
    trigger: &str,
    status: RunStatus,
    result: Option<Value>,
    error: Option<String>,
    response: Option<&Value>,
) {
    let e = RunEnd { status, result, error, info: Vec::new(), requests: Vec::new(), ended_ms: crate::clock::now_ms() };
    if let Err(err) = shared.store().finish(id, &e, response) {
        shared.log.note(
            "store",
            &format!("run {id} of `{trigger}` ended {status} but its record could not be written: {err}"),
        );
    }
    shared.gone(trigger);
}

/// Runs one job: the script, its record, its answer, its metrics, its alert.
///
/// The worker does not wait for the run's end to commit, unless it failed (its alert reads the
/// record): the writer answers a sync webhook once it has, and the worker takes the next job.
/// Returns what tells when that commit is done.
fn run(shared: &Arc<Shared>, job: Job) -> Option<std::sync::mpsc::Receiver<()>> {
    // `overlap = "queue"`: this schedule's runs go one after another.
    let _serial = job
        .trigger
        .as_ref()
        .and_then(|t| shared.serial.get(t.name.as_str()))
        .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()));
    let started = crate::clock::now_ms();
    // A run is recorded `queued` when accepted (a sync webhook's `running` already); a worker
    // takes a queued one by marking it `running`, in one transaction, so no run is taken twice.
    if job.reply.is_none() && !matches!(shared.store().start(&job.id, &shared.owner, started), Ok(true)) {
        // Not `queued` any more (another server took it, or it was already recorded).
        shared.gone(&job.name);
        return None;
    }
    let (end, response) = execute(
        &shared.home,
        &job.id,
        &job.name,
        &job.script,
        job.timeout_s,
        job.input,
        true,
        !shared.config.serve.allow_private_network,
    );
    let (status, ended) = (end.status, end.ended_ms);
    let failed = status != RunStatus::Ok;
    let outcome = job.reply.map(|reply| {
        (reply, Outcome { id: job.id.clone(), status, result: end.result.clone(), response: response.clone() })
    });
    let (committed, wait) = std::sync::mpsc::channel();
    let done = {
        let shared = shared.clone();
        let id = job.id.clone();
        Box::new(move |r: std::result::Result<(), String>| {
            if let Err(e) = r {
                shared.log.note("store", &format!("run {id} ended {status} but its record could not be written: {e}"));
            }
            if let Some((reply, o)) = outcome {
                let _ = reply.send(Reply::Ran(o));
            }
            let _ = committed.send(());
        })
    };
    // Counted and logged before the answer goes out, so whoever got it finds the run in the
    // metrics and the log.
    shared.gone(&job.name);
    let ms = ended - started;
    shared.metrics.run(&job.name, status, ms);
    shared.log.run(&job.name, &job.id, status, ms);
    shared.recorder.finish(&job.id, end, response, done);
    if !failed {
        return Some(wait);
    }
    let _ = wait.recv();
    if let Some(t) = &job.trigger {
        super::alerts::run_failed(shared, t, &job.id);
    }
    // A refresh that failed in this run may have turned a connection `needs_reauth`.
    super::alerts::check_connections(shared);
    None
}

/// Runs a script for run `id` (recorded as `name`) and returns how it ended and the answer it
/// asked for with `respond(...)`. `quiet`: `info` and `print` go only into the record.
#[allow(clippy::too_many_arguments)]
pub(crate) fn execute(
    home: &crate::home::Home,
    id: &str,
    name: &str,
    script: &std::path::Path,
    timeout_s: f64,
    input: JobInput,
    quiet: bool,
    public_only: bool,
) -> (RunEnd, Option<Value>) {
    let log = RunLog::new(id, name);
    if let Some(sync) = crate::trigger::sync_of(script) {
        // A sync trigger: the sync runs (its settings as installed), its counts the result.
        let outcome =
            crate::sync::def::find(home, sync, &[]).map_err(|e| Error::Usage(e.to_string())).and_then(|def| {
                crate::sync::execute(home, &def, id, Some(log.requests.clone()), Default::default(), &|_, _| {})
            });
        let (requests, _) = log.requests.take();
        return (crate::sync::run_end(&outcome, requests), None);
    }
    let JobInput { args, input, request } = input;
    let mut args: Vec<(String, Value)> = args.into_iter().collect();
    if let Some(r) = &request
        && crate::script::deluge::is_deluge_path(script)
    {
        args.push(("crmAPIRequest".into(), r.clone()));
    }
    let opts = RunOptions {
        script: ScriptSource::File(script.to_path_buf()),
        args,
        input: Some(input),
        state_key: None,
        json: true,
        timeout: Duration::from_secs_f64(timeout_s),
        verbose: false,
        exit_after: false,
        log: Some(log.clone()),
        request,
        quiet,
        public_only,
        reuse: REUSE.with(|r| r.clone()),
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| script::run(home, &opts)))
        .unwrap_or_else(|_| Err(Error::Usage("the script's run ended in an internal error".into())));
    let (info, result) = log.take();
    let (requests, _more) = log.requests.take();
    let response = log.take_response();
    let (status, error) = script::outcome_status(&outcome);
    (RunEnd { status, result, error, info, requests, ended_ms: crate::clock::now_ms() }, response)
}

/// At start: the runs a previous server accepted and never started go on the queue again (their
/// sealed input opened), oldest first. A run whose trigger is gone, or whose input cannot be
/// opened, is marked interrupted with the reason.
pub(crate) fn requeue(shared: &Arc<Shared>) -> Result<()> {
    let queued = shared.store().queued(1_000_000)?;
    for run in queued {
        let input = shared
            .store()
            .sealed_input(&run.id)?
            .and_then(|s| shared.key.open(&run.id, &s))
            .and_then(|p| serde_json::from_slice::<JobInput>(&p).ok());
        let job = match (shared.triggers.get(&run.trigger), input) {
            (Some(t), Some(input)) => Job {
                id: run.id.clone(),
                name: run.trigger.clone(),
                script: t.script.clone(),
                timeout_s: t.timeout_s,
                input,
                trigger: Some(t.clone()),
                reply: None,
            },
            (None, _) => {
                let why = format!("its trigger `{}` is no longer loaded by this server", run.trigger);
                end(shared, &run.id, &run.trigger, RunStatus::Interrupted, None, Some(why), None);
                continue;
            }
            (Some(_), None) => {
                let why = "its stored input cannot be opened (another vault key?)".to_string();
                end(shared, &run.id, &run.trigger, RunStatus::Interrupted, None, Some(why), None);
                continue;
            }
        };
        shared.going(&run.trigger);
        shared.queue.push(job, false);
    }
    Ok(())
}
