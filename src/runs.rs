//! Run records: every run of a script is recorded — by hand with `linkrun run` (trigger `cli`),
//! and by the server's triggers once `linkrun serve` exists — with its status, times, input
//! (redacted), result, `info` lines and the trace of the requests it sent. The record is the audit
//! log of what linkrun sent where, so it holds no secret: inputs are redacted by key name, URLs as
//! in traces, and request bodies and headers are never kept.
//!
//! This module is the model and the [`RunStore`] trait; a back end implements the trait
//! ([`crate::store::SqliteRuns`] today; PostgreSQL for teams behind the same trait). No storage
//! type appears here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The states of a run. `queued`, `skipped` and `duplicate` come with serve's triggers.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantNames,
    strum::Display,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum RunStatus {
    /// Accepted, waiting for a worker.
    Queued,
    /// Started and not ended (a process killed meanwhile leaves it so until it is marked
    /// `interrupted`).
    Running,
    /// Ended with a result.
    Ok,
    /// Ended with an error.
    Failed,
    /// Stopped at its wall-clock limit.
    TimedOut,
    /// Its process ended before it did.
    Interrupted,
    /// Not run (a schedule whose previous run was still going).
    Skipped,
    /// Not run: a repeated delivery of an event already run.
    Duplicate,
}

impl RunStatus {
    /// Whether the run has ended.
    pub fn is_final(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// One request a run sent, as the trace keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestTrace {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The connection it went through (none: a plain request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// The URL with its secret query values redacted, as in `--verbose` traces.
    pub url: String,
    /// The final answer's status (none when no answer came).
    pub status: Option<u16>,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// From the first attempt to the end of the last one.
    pub duration_ms: u64,
    /// Bytes of the final answer's body.
    pub bytes: u64,
}

/// The most requests a run's trace keeps; later ones are counted, not kept.
pub const MAX_TRACED_REQUESTS: usize = 10_000;

/// Where a run's requests are traced as they end: shared by the threads and tasks of the run.
#[derive(Debug, Clone, Default)]
pub struct RequestLog(std::sync::Arc<std::sync::Mutex<(Vec<RequestTrace>, u64)>>);

impl RequestLog {
    /// Adds one request (past [`MAX_TRACED_REQUESTS`], only counts it).
    pub fn push(&self, t: RequestTrace) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if g.0.len() < MAX_TRACED_REQUESTS {
            g.0.push(t);
        } else {
            g.1 += 1;
        }
    }

    /// The requests kept, and how many more were sent.
    pub fn take(&self) -> (Vec<RequestTrace>, u64) {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The most `info` lines a record keeps, and the longest line kept (longer ones are cut).
pub const MAX_INFO_LINES: usize = 1_000;
const MAX_INFO_LINE: usize = 4_096;

/// What a running script leaves for its record: its requests, its `info` lines and its result.
#[derive(Debug, Clone, Default)]
pub struct RunLog {
    /// The run's id and trigger, which the script sees as `run.id` and `run.trigger` (an
    /// idempotency key that stays the same when the run is retried).
    pub id: String,
    /// `cli` or the trigger's name.
    pub trigger: String,
    /// The requests, as they end.
    pub requests: RequestLog,
    info: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    result: std::sync::Arc<std::sync::Mutex<Option<Value>>>,
    response: std::sync::Arc<std::sync::Mutex<Option<Value>>>,
}

impl RunLog {
    /// The log of run `id`, started by `trigger`.
    pub fn new(id: &str, trigger: &str) -> RunLog {
        RunLog { id: id.to_string(), trigger: trigger.to_string(), ..RunLog::default() }
    }

    /// Keeps an `info` line (past [`MAX_INFO_LINES`], drops it).
    pub fn info(&self, line: &str) {
        let mut g = self.info.lock().unwrap_or_else(|e| e.into_inner());
        if g.len() < MAX_INFO_LINES {
            let mut end = line.len().min(MAX_INFO_LINE);
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            g.push(line[..end].to_string());
        }
    }

    /// Keeps the script's result.
    pub fn set_result(&self, v: Value) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }

    /// Keeps the answer `respond(...)` asked for (`{status, headers, body}`).
    pub fn set_response(&self, v: Value) {
        *self.response.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
    }

    /// The answer `respond(...)` asked for, if it was called.
    pub fn take_response(&self) -> Option<Value> {
        self.response.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The `info` lines and the result kept so far.
    pub fn take(&self) -> (Vec<String>, Option<Value>) {
        let info = std::mem::take(&mut *self.info.lock().unwrap_or_else(|e| e.into_inner()));
        (info, self.result.lock().unwrap_or_else(|e| e.into_inner()).take())
    }
}

/// A run about to start.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// What started it: `cli`, or a trigger's name.
    pub trigger: String,
    /// The script (its absolute path, or `-` for standard input).
    pub script: String,
    /// What the script was given (`args`, `input`), already redacted ([`redact`]).
    pub input: Value,
    /// When it started, in milliseconds since the UNIX epoch.
    pub started_ms: i64,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// A final status.
    pub status: RunStatus,
    /// The script's result as JSON (none when it failed).
    pub result: Option<Value>,
    /// The error message, when it failed.
    pub error: Option<String>,
    /// The `info` lines, in order.
    pub info: Vec<String>,
    /// The requests it sent, in order.
    pub requests: Vec<RequestTrace>,
    /// When it ended, in milliseconds since the UNIX epoch.
    pub ended_ms: i64,
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Its id: time-ordered text, unique in the store.
    pub id: String,
    /// `cli` or a trigger's name.
    pub trigger: String,
    /// The script.
    pub script: String,
    /// Its state.
    pub status: RunStatus,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End, ms since the epoch (none until it ends).
    pub ended_ms: Option<i64>,
    /// The redacted input.
    pub input: Value,
    /// The result.
    pub result: Option<Value>,
    /// The error message.
    pub error: Option<String>,
    /// `info` lines.
    pub info: Vec<String>,
    /// The request trace.
    pub requests: Vec<RequestTrace>,
    /// The run this one retries (`runs retry`), or the first run of a delivery this one repeats
    /// (status `duplicate`).
    pub parent: Option<String>,
}

impl Run {
    /// How long it took (none until it ends).
    pub fn duration_ms(&self) -> Option<i64> {
        self.ended_ms.map(|e| (e - self.started_ms).max(0))
    }

    /// The record as `runs list --json` prints it; with `full`, as `runs show --json` does.
    pub fn to_json(&self, full: bool) -> Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "trigger": self.trigger,
            "script": self.script,
            "status": self.status,
            "started_at": rfc3339(self.started_ms),
            "ended_at": self.ended_ms.map(rfc3339),
            "duration_ms": self.duration_ms(),
            "error": self.error,
        });
        if let Some(p) = &self.parent {
            let key = if self.status == RunStatus::Duplicate { "duplicate_of" } else { "retry_of" };
            v[key] = Value::String(p.clone());
        }
        if full {
            v["input"] = self.input.clone();
            v["result"] = self.result.clone().unwrap_or(Value::Null);
            v["info"] = self.info.clone().into();
            v["requests"] = serde_json::to_value(&self.requests).unwrap_or_default();
        }
        v
    }
}

/// Which runs `runs list` shows.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this trigger's.
    pub trigger: Option<String>,
    /// Only runs in this state.
    pub status: Option<RunStatus>,
    /// Only runs started at or after this (ms since the epoch).
    pub since_ms: Option<i64>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// A failure of the run store, in one sentence naming the store and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Where runs are kept. Every method is one short transaction, so concurrent processes on one
/// home never block one another for long.
pub trait RunStore {
    /// Records a run as `running` and returns its id.
    fn begin(&self, run: &NewRun) -> Result<String, StoreError>;
    /// Records how a run ended.
    fn end(&self, id: &str, end: &RunEnd) -> Result<(), StoreError>;
    /// The runs the filter selects, newest first.
    fn list(&self, filter: &RunFilter) -> Result<Vec<Run>, StoreError>;
    /// One run by id.
    fn get(&self, id: &str) -> Result<Option<Run>, StoreError>;
    /// Deletes the ended runs beyond the newest `keep` and those that started before
    /// `before_ms`, in batches; returns how many went.
    fn prune(&self, keep: Option<u64>, before_ms: Option<i64>) -> Result<u64, StoreError>;
}

/// A run a server accepts: recorded, with its whole input sealed, before it is answered.
#[derive(Debug, Clone)]
pub struct Accept<'a> {
    /// Its id, made by the caller ([`crate::store::new_id`]) so the sealed input can be bound
    /// to it.
    pub id: &'a str,
    /// The run.
    pub run: &'a NewRun,
    /// `queued` (async webhooks, schedules waiting for a worker) or `running` (started now).
    pub status: RunStatus,
    /// The process that runs it ([`crate::vault::lease::this_process`]).
    pub owner: &'a str,
    /// Its whole input, sealed (see [`crate::store::InputKey`]); none when nothing is kept.
    pub sealed_input: Option<&'a [u8]>,
    /// A delivery id and the earliest time a first delivery still counts (ms): a repeat
    /// within it is recorded as `duplicate` of the first run and not run.
    pub dedupe: Option<(&'a str, i64)>,
    /// The run it retries (`runs retry`).
    pub retry_of: Option<&'a str>,
    /// A schedule's mark this run is for: recorded as the schedule's last firing in the same
    /// transaction, so a crash never fires one mark twice.
    pub mark: Option<i64>,
}

/// What [`RunQueue::accept`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Recorded under this id: run it.
    New(String),
    /// A repeated delivery, recorded under the first id as `duplicate`: the first run is given.
    Duplicate {
        /// The duplicate's own record.
        id: String,
        /// The first run of that delivery.
        first: Box<Run>,
    },
}

/// One write of a group committed together ([`RunQueue::batch`]): its result is set in it.
#[derive(Debug)]
pub enum BatchOp<'a> {
    /// [`RunQueue::accept`].
    Accept(Accept<'a>, Option<Result<Accepted, StoreError>>),
    /// [`RunQueue::finish`].
    Finish {
        /// The run.
        id: &'a str,
        /// How it ended.
        end: &'a RunEnd,
        /// A sync webhook's answer.
        response: Option<&'a Value>,
        /// The result.
        out: Option<Result<(), StoreError>>,
    },
}

/// The server's side of the store: accepted runs, their sealed inputs, delivery ids and schedule
/// marks. Every method is one short transaction.
pub trait RunQueue: RunStore {
    /// Records an accepted run (and its delivery id) in one transaction.
    fn accept(&self, a: &Accept<'_>) -> Result<Accepted, StoreError>;
    /// Applies accepts and ends together, in one transaction (the server's group commit of
    /// concurrent runs): each op's own result is set in it; `Err` when the whole could not be
    /// committed (then no op took effect).
    fn batch(&self, ops: &mut [BatchOp<'_>]) -> Result<(), StoreError>;
    /// Marks a queued run `running` (started now, by `owner`); `false` when it was not queued.
    fn start(&self, id: &str, owner: &str, started_ms: i64) -> Result<bool, StoreError>;
    /// Records how a run ended and, for a sync webhook, the answer it gave.
    fn finish(&self, id: &str, end: &RunEnd, response: Option<&Value>) -> Result<(), StoreError>;
    /// The runs still `queued`, oldest first (at most `limit`).
    fn queued(&self, limit: usize) -> Result<Vec<Run>, StoreError>;
    /// Marks `interrupted` every `running` run whose owner `alive` says is gone; returns them.
    fn recover(&self, alive: &dyn Fn(&str) -> bool, ended_ms: i64) -> Result<Vec<String>, StoreError>;
    /// A run's sealed input, if kept.
    fn sealed_input(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The answer a sync webhook's run gave, if kept.
    fn response(&self, id: &str) -> Result<Option<Value>, StoreError>;
    /// When a schedule last fired (ms), if ever.
    fn fired_at(&self, trigger: &str) -> Result<Option<i64>, StoreError>;
    /// Records that a schedule fired at `at_ms`.
    fn set_fired_at(&self, trigger: &str, at_ms: i64) -> Result<(), StoreError>;
    /// Forgets a schedule's (or an event's) mark.
    fn clear_fired_at(&self, trigger: &str) -> Result<(), StoreError>;
    /// Forgets delivery ids seen before `before_ms`; returns how many.
    fn forget_deliveries(&self, before_ms: i64) -> Result<u64, StoreError>;
}

/// RFC 3339 UTC with milliseconds (`2026-12-02T10:15:30.123Z`).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reads `--since`: an RFC 3339 time, or a span back from `now_ms` (`90s`, `15m`, `2h`, `7d`).
pub fn parse_since(text: &str, now_ms: i64) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(at.timestamp_millis());
    }
    let wrong =
        || format!("`--since {text}` is neither an RFC 3339 time (2026-12-01T09:00:00Z) nor a span (90s, 15m, 2h, 7d)");
    parse_span_ms(t).map(|back| now_ms - back).ok_or_else(wrong)
}

/// A span of time written as a whole number and a unit: `90s`, `15m`, `2h`, `7d`, in
/// milliseconds (none for anything else, zero included only as `0s`, `0m`, ...).
pub fn parse_span_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let (n, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}

/// Key names whose values a run record never keeps: any key containing one of these (case
/// ignored) is written `[redacted]`.
const SECRET_KEY_PARTS: &[&str] =
    &["password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "signature", "credential"];

/// `v` with the values of secret-looking keys, at any depth, replaced by `"[redacted]"`.
pub fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let hidden = SECRET_KEY_PARTS.iter().any(|p| lower.contains(p));
                    (k.clone(), if hidden { Value::String("[redacted]".into()) } else { redact(v) })
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_time_or_a_span() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_since("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_since("90s", now), Ok(now - 90_000));
        assert_eq!(parse_since("2001-09-09T01:46:40Z", now), Ok(1_000_000_000_000));
        for bad in ["", "2", "h", "2w", "-2h", "99999999999999999999d"] {
            assert!(parse_since(bad, now).unwrap_err().contains("neither an RFC 3339 time"), "{bad}");
        }
    }

    #[test]
    fn secret_looking_keys_are_redacted_at_any_depth() {
        let v = serde_json::json!({"args": {"from": "crm_a", "Password": "p", "x": [{"access_token": "t"}]}});
        assert_eq!(
            redact(&v),
            serde_json::json!({"args": {"from": "crm_a", "Password": "[redacted]", "x": [{"access_token": "[redacted]"}]}})
        );
    }

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(1_000_000_000_123), "2001-09-09T01:46:40.123Z");
        assert!(RunStatus::Ok.is_final() && !RunStatus::Running.is_final());
        assert_eq!(RunStatus::TimedOut.to_string(), "timed_out");
    }
}
