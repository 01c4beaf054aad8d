//! Schedules: each `[schedule]` trigger fires on its marks (`cron` in its zone, or `every`).
//!
//! The last mark fired is kept in `runs.db`, written in the same transaction as the run it
//! queued, so a crash never fires one mark twice. After downtime, the marks missed make one
//! catch-up run at most (recorded for the latest missed mark). A schedule seen for the first
//! time starts from now: it does not fire for marks before it existed. With `overlap = "skip"`
//! (the default) a mark that finds the previous run still queued or running is recorded as
//! `skipped`; with `"queue"` one run may wait for it (a second waiting one is skipped).

use std::sync::Arc;

use serde_json::json;

use super::{Job, JobInput, Shared};
use crate::runs::{Accept, NewRun, RunEnd, RunQueue, RunStatus};
use crate::trigger::{Kind, Overlap, Schedule, Trigger};

/// Starts one task per schedule.
pub(crate) fn start(shared: Arc<Shared>, quit: tokio::sync::watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let mut out = Vec::new();
    for t in shared.triggers.values() {
        if let Kind::Schedule(s) = &t.kind {
            let (shared, t, s, mut quit) = (shared.clone(), t.clone(), s.clone(), quit.clone());
            out.push(tokio::spawn(async move {
                loop {
                    let wait = tokio::task::block_in_place(|| tick(&shared, &t, &s));
                    let Some(wait) = wait else { return };
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = quit.changed() => return,
                    }
                }
            }));
        }
    }
    out
}

/// The latest mark at or before `now` after `last` (none when none is due).
pub(crate) fn latest_due(s: &Schedule, last: i64, now: i64) -> Option<i64> {
    let mut mark = s.next_after(last).filter(|m| *m <= now)?;
    if let crate::trigger::When::Every(period, _) = &s.when {
        return Some(now.div_euclid(*period) * period);
    }
    // Cron: walk forward (bounded: a catch-up after years of downtime still ends quickly by
    // jumping to a day before now).
    for _ in 0..10_000 {
        match s.next_after(mark) {
            Some(n) if n <= now => mark = n,
            _ => return Some(mark),
        }
    }
    let near = now - 86_400_000;
    Some(s.next_after(near.max(mark)).filter(|m| *m <= now).map_or(mark, |m| latest_due(s, m, now).unwrap_or(m)))
}

/// Fires what is due and returns how long to sleep (none: never again).
fn tick(shared: &Arc<Shared>, t: &Arc<Trigger>, s: &Schedule) -> Option<std::time::Duration> {
    if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    let now = crate::clock::now_ms();
    // Bound first: a guard in the `match` would live through its arms.
    let fired = shared.store().fired_at(&t.name);
    let last = match fired {
        Ok(Some(l)) => l,
        Ok(None) => {
            let _ = shared.store().set_fired_at(&t.name, now);
            now
        }
        Err(e) => {
            shared.log.note("store", &format!("schedule `{}`: {e}", t.name));
            return Some(std::time::Duration::from_secs(5));
        }
    };
    if let Some(mark) = latest_due(s, last, now) {
        fire(shared, t, s, mark);
    }
    let next = s.next_after(now.max(last))?;
    Some(std::time::Duration::from_millis(u64::try_from(next - crate::clock::now_ms()).unwrap_or(0).max(1)))
}

/// One mark: a queued run, or a `skipped` one.
fn fire(shared: &Arc<Shared>, t: &Arc<Trigger>, s: &Schedule, mark: i64) {
    let now = crate::clock::now_ms();
    let limit = match s.overlap {
        Overlap::Skip => 1,
        Overlap::Queue => 2,
    };
    let skip = if shared.live_runs(&t.name) >= limit {
        Some("the previous run was still going (overlap = \"skip\")".to_string())
    } else if !shared.queue.reserve() {
        Some("serve's queue was full".to_string())
    } else {
        None
    };
    let input = JobInput {
        args: t.args.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
        input: json!({ "scheduled_at": crate::runs::rfc3339(mark) }),
        request: None,
    };
    let id = crate::store::new_id(now);
    let run = NewRun {
        trigger: t.name.to_string(),
        script: t.script.display().to_string(),
        input: crate::runs::redact(&json!({"args": input.args, "input": input.input})),
        started_ms: now,
    };
    let sealed = match shared.seal(&id, &input) {
        Ok(s) => s,
        Err(e) => {
            shared.log.note("schedule", &format!("`{}`: {e}", t.name));
            if skip.is_none() {
                shared.queue.release();
            }
            return;
        }
    };
    let status = if skip.is_some() { RunStatus::Skipped } else { RunStatus::Queued };
    let a = Accept {
        id: &id,
        run: &run,
        status,
        owner: &shared.owner,
        sealed_input: skip.is_none().then_some(sealed.as_slice()),
        dedupe: None,
        retry_of: None,
        mark: Some(mark),
    };
    if let Err(e) = shared.store().accept(&a) {
        shared.log.note("store", &format!("schedule `{}`: {e}", t.name));
        if skip.is_none() {
            shared.queue.release();
        }
        return;
    }
    if let Some(why) = skip {
        let end =
            RunEnd { status, result: None, error: Some(why), info: Vec::new(), requests: Vec::new(), ended_ms: now };
        let _ = shared.store().finish(&id, &end, None);
        shared.metrics.run(&t.name, status, 0);
        shared.log.run(&t.name, &id, status, 0);
        return;
    }
    shared.going(&t.name);
    shared.queue.push(
        Job {
            id,
            name: t.name.to_string(),
            script: t.script.clone(),
            timeout_s: t.timeout_s,
            input,
            trigger: Some(t.clone()),
            reply: None,
        },
        true,
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn schedule(text: &str) -> Schedule {
        let t = Trigger::parse(text, std::path::Path::new("/t/s.toml"), crate::trigger::Origin::Installed).unwrap();
        match t.kind {
            Kind::Schedule(s) => s,
            Kind::Webhook(_) => panic!("not a schedule"),
        }
    }

    #[test]
    fn downtime_makes_one_catch_up_at_the_latest_missed_mark() {
        let s = schedule("name = \"a\"\nscript = \"a\"\n[schedule]\nevery = \"1h\"\n");
        let h = 3_600_000;
        // Last fired at 10:00, now 15:30: 11:00 to 15:00 were missed; one run, for 15:00.
        assert_eq!(latest_due(&s, 10 * h, 15 * h + h / 2), Some(15 * h));
        // Nothing missed.
        assert_eq!(latest_due(&s, 10 * h, 10 * h + h / 2), None);
        let c = schedule("name = \"a\"\nscript = \"a\"\n[schedule]\ncron = \"0 * * * *\"\n");
        assert_eq!(latest_due(&c, 10 * h, 15 * h + h / 2), Some(15 * h));
        assert_eq!(latest_due(&c, 10 * h, 10 * h + 1), None);
        // Years of downtime end quickly and still pick the latest mark.
        let now = 1_800_000_000_000;
        let m = latest_due(&c, 0, now).unwrap();
        assert!(m <= now && now - m < h, "{m}");
    }
}
