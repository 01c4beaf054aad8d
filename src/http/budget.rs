//! Rate budgets: how many requests of one connection may be in flight at once and how many may
//! start in a span of time, so a script (or every worker of a server) stays under the provider's
//! limits instead of finding them with 429s.
//!
//! - `[limits]` of a service (and a connection's own values over it, `linkrun connection limits`):
//!   `max_concurrency` (requests in flight), `requests_per_second`, and `window_requests` per
//!   `window_s` (a provider's hourly or daily quota). Every key is optional; none means no budget.
//! - A budget is per connection and shared by every thread of one process ([`Budgets`] is a
//!   handle to one registry, cloned into each run). Across processes there is no shared count:
//!   the provider's 429 answers and their waits (the retry policy) are the coordination.
//! - An attempt holds a slot while it is on the wire, not while it waits to be retried, so a
//!   request sleeping out a `Retry-After` never holds back the others.
//! - Rates are a sliding log of start times: at most `n` starts in any span of `window`. A start
//!   is reserved before waiting, so waiters are served in order and each knows its wait at
//!   once; a wait longer than the request may wait is not taken but refused with that wait
//!   (`rate_limited`, `retry_after`).
//!
//! Written here rather than taken from `governor`: its GCRA with a burst of `n` lets `2n` starts
//! through in some spans of `window` (a provider counting per window would answer 429), and it
//! does not reserve, so a request cannot learn its wait before it sleeps.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Most requests in flight a budget may allow.
pub const MAX_CONCURRENCY_LIMIT: u32 = 1_000;
/// Longest window, in seconds (a day).
pub const MAX_WINDOW_S: u64 = 86_400;

/// The `[limits]` table of a service, and a connection's own values: each key left out keeps
/// the value below it (the connection's over the service's; none: no limit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsDef {
    /// Requests of one connection in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
    /// Requests started per second (a fraction for slower rates: 0.5 is one every 2 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<f64>,
    /// Requests started in any span of `window_s` seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_requests: Option<u32>,
    /// The span of `window_requests`, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_s: Option<u64>,
}

impl LimitsDef {
    /// Checks the values; the error is the end of a sentence naming the fault and the fix.
    pub fn check(&self) -> Result<(), String> {
        if let Some(n) = self.max_concurrency.filter(|n| !(1..=MAX_CONCURRENCY_LIMIT).contains(n)) {
            return Err(format!("`max_concurrency` is {n}: give 1 to {MAX_CONCURRENCY_LIMIT}"));
        }
        if let Some(r) = self.requests_per_second.filter(|r| !(r.is_finite() && *r >= 0.001 && *r <= 100_000.0)) {
            return Err(format!("`requests_per_second` is {r}: give 0.001 to 100000"));
        }
        if let Some(n) = self.window_requests.filter(|n| *n == 0) {
            return Err(format!("`window_requests` is {n}: give at least 1"));
        }
        if let Some(s) = self.window_s.filter(|s| !(1..=MAX_WINDOW_S).contains(s)) {
            return Err(format!("`window_s` is {s}: give 1 to {MAX_WINDOW_S} seconds"));
        }
        match (self.window_requests, self.window_s) {
            (Some(_), None) => Err("`window_requests` needs `window_s`, the span it counts in seconds".into()),
            (None, Some(_)) => Err("`window_s` needs `window_requests`, how many requests the span allows".into()),
            _ => Ok(()),
        }
    }

    /// These values with the keys `over` sets replaced.
    pub fn with(&self, over: &LimitsDef) -> LimitsDef {
        let mut out = self.clone();
        if over.max_concurrency.is_some() {
            out.max_concurrency = over.max_concurrency;
        }
        if over.requests_per_second.is_some() {
            out.requests_per_second = over.requests_per_second;
        }
        if over.window_requests.is_some() || over.window_s.is_some() {
            out.window_requests = over.window_requests;
            out.window_s = over.window_s;
        }
        out
    }

    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.max_concurrency.is_some() || self.requests_per_second.is_some() || self.window_requests.is_some()
    }
}

/// A sliding log of start times: at most `n` starts in any span of `window`.
#[derive(Debug)]
struct Log {
    n: usize,
    window: Duration,
    /// The last `n` starts granted (some may lie in the future: reserved), oldest first.
    starts: VecDeque<Instant>,
}

impl Log {
    fn new(n: usize, window: Duration) -> Log {
        Log { n: n.max(1), window, starts: VecDeque::new() }
    }

    /// The earliest start at or after `now` this log allows.
    fn next_start(&self, now: Instant) -> Instant {
        if self.starts.len() < self.n {
            return self.starts.back().map_or(now, |b| (*b).max(now));
        }
        let oldest = self.starts[self.starts.len() - self.n];
        (oldest + self.window).max(now).max(*self.starts.back().unwrap_or(&now))
    }

    fn take(&mut self, at: Instant) {
        self.starts.push_back(at);
        while self.starts.len() > self.n {
            self.starts.pop_front();
        }
    }
}

/// The budget of one connection.
#[derive(Debug)]
pub struct Budget {
    limits: LimitsDef,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    logs: Mutex<Vec<Log>>,
}

/// Why a request did not get its turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A rate would make it wait this long.
    Rate {
        /// The wait.
        wait: Duration,
        /// The limit that would make it wait, as the error names it.
        limit: String,
    },
    /// No slot came free in time.
    Busy {
        /// In-flight requests allowed.
        max: u32,
        /// How long it waited.
        waited: Duration,
    },
}

/// A request's turn: holds its slot until dropped.
#[derive(Debug)]
pub struct Turn {
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// How long the rates made it wait.
    pub waited: Duration,
}

impl Budget {
    /// The budget of these limits.
    pub fn new(limits: LimitsDef) -> Budget {
        let slots = limits.max_concurrency.map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize)));
        let mut logs = Vec::new();
        if let Some(r) = limits.requests_per_second {
            // A whole number per second is `r` starts in any second; a fraction is one start per
            // `1/r` seconds.
            if r >= 1.0 {
                logs.push(Log::new(r.floor() as usize, Duration::from_secs(1)));
            } else {
                logs.push(Log::new(1, Duration::from_secs_f64(1.0 / r)));
            }
        }
        if let (Some(n), Some(s)) = (limits.window_requests, limits.window_s) {
            logs.push(Log::new(n as usize, Duration::from_secs(s)));
        }
        Budget { limits, slots, logs: Mutex::new(logs) }
    }

    /// The limits this budget enforces.
    pub fn limits(&self) -> &LimitsDef {
        &self.limits
    }

    /// Waits for a turn: a start the rates allow (reserved at once, slept only when it is within
    /// `max_wait`), then a free slot within what is left of `max_wait`.
    pub async fn turn(&self, max_wait: Duration) -> Result<Turn, Refusal> {
        let started = Instant::now();
        let waited = self.reserve(started, max_wait)?;
        if !waited.is_zero() {
            tokio::time::sleep(waited).await;
        }
        let slot = match &self.slots {
            None => None,
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let left = max_wait.saturating_sub(started.elapsed());
                    match tokio::time::timeout(left, s.clone().acquire_owned()).await {
                        Ok(Ok(p)) => Some(p),
                        _ => {
                            return Err(Refusal::Busy {
                                max: self.limits.max_concurrency.unwrap_or(0),
                                waited: started.elapsed(),
                            });
                        }
                    }
                }
            },
        };
        Ok(Turn { _slot: slot, waited })
    }

    /// Reserves the earliest start every rate allows and returns the wait until it, or refuses
    /// (reserving nothing) when that wait is longer than `max_wait`.
    fn reserve(&self, now: Instant, max_wait: Duration) -> Result<Duration, Refusal> {
        let mut logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if logs.is_empty() {
            return Ok(Duration::ZERO);
        }
        let (at, which) = logs.iter().enumerate().map(|(i, l)| (l.next_start(now), i)).max().unwrap_or((now, 0));
        let wait = at.saturating_duration_since(now);
        if wait > max_wait {
            let limit = match (which, self.limits.requests_per_second) {
                (0, Some(r)) => format!("`requests_per_second = {r}`"),
                _ => format!(
                    "`window_requests = {}` in `window_s = {}`",
                    self.limits.window_requests.unwrap_or(0),
                    self.limits.window_s.unwrap_or(0)
                ),
            };
            return Err(Refusal::Rate { wait, limit });
        }
        for l in logs.iter_mut() {
            l.take(at);
        }
        Ok(wait)
    }
}

/// The budgets of one process, by connection; cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct Budgets {
    inner: Arc<Mutex<HashMap<String, Arc<Budget>>>>,
}

impl Budgets {
    /// The budget kept under `key` (a connection of a home), made from `limits` the first time;
    /// `None` when nothing is limited. A budget whose limits changed since is made anew.
    pub fn get(&self, key: &str, limits: &LimitsDef) -> Option<Arc<Budget>> {
        if !limits.is_limited() {
            return None;
        }
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = m.get(key).filter(|b| b.limits() == limits) {
            return Some(b.clone());
        }
        let b = Arc::new(Budget::new(limits.clone()));
        m.insert(key.to_string(), b.clone());
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(f: impl FnOnce(&mut LimitsDef)) -> LimitsDef {
        let mut l = LimitsDef::default();
        f(&mut l);
        l
    }

    #[test]
    fn a_window_allows_n_starts_in_any_span_then_reserves_in_order() {
        let b = Budget::new(limits(|l| {
            l.window_requests = Some(3);
            l.window_s = Some(10);
        }));
        let t0 = Instant::now();
        let long = Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.reserve(t0, long), Ok(Duration::ZERO));
        }
        // The 4th start waits for the 1st to leave the window; the 5th for the 2nd.
        assert_eq!(b.reserve(t0, long), Ok(Duration::from_secs(10)));
        assert_eq!(b.reserve(t0 + Duration::from_secs(1), long), Ok(Duration::from_secs(9)));
        // Never more than 3 in any 10 s: the 6th is at 10 s too, the 7th at 20 s.
        assert_eq!(b.reserve(t0, long), Ok(Duration::from_secs(10)));
        assert_eq!(b.reserve(t0, long), Ok(Duration::from_secs(20)));
    }

    #[test]
    fn a_wait_past_max_wait_is_refused_and_reserves_nothing() {
        let b = Budget::new(limits(|l| l.requests_per_second = Some(0.5)));
        let t0 = Instant::now();
        assert_eq!(b.reserve(t0, Duration::ZERO), Ok(Duration::ZERO));
        let r = b.reserve(t0, Duration::from_secs(1));
        assert_eq!(r, Err(Refusal::Rate { wait: Duration::from_secs(2), limit: "`requests_per_second = 0.5`".into() }));
        assert_eq!(b.reserve(t0, Duration::from_secs(2)), Ok(Duration::from_secs(2)), "the refusal took no start");
    }

    #[test]
    fn requests_per_second_allows_that_many_in_any_second() {
        let b = Budget::new(limits(|l| l.requests_per_second = Some(2.0)));
        let t0 = Instant::now();
        let long = Duration::from_secs(60);
        assert_eq!(b.reserve(t0, long), Ok(Duration::ZERO));
        assert_eq!(b.reserve(t0, long), Ok(Duration::ZERO));
        assert_eq!(b.reserve(t0, long), Ok(Duration::from_secs(1)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_turn_holds_a_slot_until_dropped_and_a_busy_budget_refuses_after_max_wait() {
        let b = Budget::new(limits(|l| l.max_concurrency = Some(1)));
        let first = b.turn(Duration::ZERO).await.expect("a free slot");
        let r = b.turn(Duration::ZERO).await;
        assert!(matches!(r, Err(Refusal::Busy { max: 1, .. })), "{r:?}");
        drop(first);
        assert!(b.turn(Duration::ZERO).await.is_ok());
    }

    #[test]
    fn limits_are_checked_naming_the_key_and_layered() {
        let bad = |f: fn(&mut LimitsDef)| limits(f).check().unwrap_err();
        assert_eq!(bad(|l| l.max_concurrency = Some(0)), "`max_concurrency` is 0: give 1 to 1000");
        assert_eq!(
            bad(|l| l.requests_per_second = Some(f64::NAN)),
            "`requests_per_second` is NaN: give 0.001 to 100000"
        );
        assert_eq!(
            bad(|l| l.window_requests = Some(5)),
            "`window_requests` needs `window_s`, the span it counts in seconds"
        );
        assert_eq!(bad(|l| l.window_s = Some(0)), "`window_s` is 0: give 1 to 86400 seconds");
        let service = limits(|l| {
            l.max_concurrency = Some(5);
            l.window_requests = Some(100);
            l.window_s = Some(3600);
        });
        let own = service.with(&limits(|l| l.max_concurrency = Some(20)));
        assert_eq!((own.max_concurrency, own.window_requests, own.window_s), (Some(20), Some(100), Some(3600)));
        assert!(!LimitsDef::default().is_limited());
        assert!(Budgets::default().get("h/c", &LimitsDef::default()).is_none());
    }
}
