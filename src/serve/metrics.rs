//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4): runs by trigger and
//! status, run durations (a histogram per trigger), the queue's depth, busy workers, webhook
//! refusals, requests by connection and status, and token refreshes.
//!
//! Written here rather than with a metrics crate: eight families, no registry, and the format's
//! whole grammar is `name{label="value"} number` with three escapes; a crate would add a global
//! registry and start-up cost to every `linkrun` process for that.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::IntoResponse;

use super::Shared;
use crate::runs::RunStatus;

/// Upper bounds of the duration buckets, in seconds.
const BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// The server's own counters.
#[derive(Default)]
pub struct Metrics {
    runs: Mutex<BTreeMap<(String, &'static str), u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    refusals: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    /// A run ended (`ms` is its duration).
    pub fn run(&self, trigger: &str, status: RunStatus, ms: i64) {
        let status: &'static str = status.into();
        *self.runs.lock().unwrap_or_else(|e| e.into_inner()).entry((trigger.to_string(), status)).or_default() += 1;
        if matches!(status, "duplicate" | "skipped") {
            return;
        }
        let secs = ms.max(0) as f64 / 1000.0;
        let mut d = self.durations.lock().unwrap_or_else(|e| e.into_inner());
        let h = d
            .entry(trigger.to_string())
            .or_insert_with(|| Histogram { counts: vec![0; BUCKETS.len()], ..Default::default() });
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    /// A webhook request was refused.
    pub fn refusal(&self, trigger: &str, reason: &str) {
        *self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((trigger.to_string(), reason.to_string()))
            .or_default() += 1;
    }
}

/// A label value, escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The exposition text.
pub(crate) fn render(shared: &Shared) -> String {
    let m = &shared.metrics;
    let mut out = String::new();
    family(&mut out, "linkrun_runs_total", "counter", "Runs ended, by trigger and status.");
    for ((t, s), n) in m.runs.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(out, "linkrun_runs_total{{trigger=\"{}\",status=\"{s}\"}} {n}", label(t));
    }
    family(&mut out, "linkrun_run_duration_seconds", "histogram", "How long runs took, by trigger.");
    for (t, h) in m.durations.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let t = label(t);
        for (b, c) in BUCKETS.iter().zip(&h.counts) {
            let _ = writeln!(out, "linkrun_run_duration_seconds_bucket{{trigger=\"{t}\",le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "linkrun_run_duration_seconds_bucket{{trigger=\"{t}\",le=\"+Inf\"}} {}", h.count);
        let _ = writeln!(out, "linkrun_run_duration_seconds_sum{{trigger=\"{t}\"}} {}", h.sum);
        let _ = writeln!(out, "linkrun_run_duration_seconds_count{{trigger=\"{t}\"}} {}", h.count);
    }
    family(&mut out, "linkrun_queue_depth", "gauge", "Runs waiting for a worker.");
    let _ = writeln!(out, "linkrun_queue_depth {}", shared.queue.depth());
    family(&mut out, "linkrun_workers", "gauge", "Worker threads.");
    let _ = writeln!(out, "linkrun_workers {}", shared.workers);
    family(&mut out, "linkrun_workers_busy", "gauge", "Workers running a script now.");
    let _ = writeln!(out, "linkrun_workers_busy {}", shared.workers_busy.load(Ordering::SeqCst));
    family(&mut out, "linkrun_webhook_refusals_total", "counter", "Webhook requests refused, by trigger and reason.");
    for ((t, r), n) in m.refusals.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = writeln!(out, "linkrun_webhook_refusals_total{{trigger=\"{}\",reason=\"{}\"}} {n}", label(t), label(r));
    }
    family(
        &mut out,
        "linkrun_requests_total",
        "counter",
        "Requests scripts sent, by connection (- for none) and final status.",
    );
    for ((c, s), n) in crate::telemetry::requests() {
        let _ = writeln!(out, "linkrun_requests_total{{connection=\"{}\",status=\"{}\"}} {n}", label(&c), label(&s));
    }
    family(&mut out, "linkrun_token_refreshes_total", "counter", "OAuth token refreshes, by connection.");
    for (c, n) in crate::telemetry::refreshes() {
        let _ = writeln!(out, "linkrun_token_refreshes_total{{connection=\"{}\"}} {n}", label(&c));
    }
    out
}

/// `GET /metrics`.
pub(crate) async fn handler(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], render(&shared))
}
