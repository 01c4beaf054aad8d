//! Fault knobs shared by every emulated product: added latency, a failure rate for 5xx answers,
//! and a per-organisation rate limit. Set at start (`linkrun sandbox` flags) and changed at run
//! time through the admin endpoint; each product maps a fault to its own error shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The knobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// Added to every API answer, in milliseconds.
    pub latency_ms: u64,
    /// Share of API requests answered with a 5xx (0.0 to 1.0).
    pub failure_rate: f64,
    /// Requests per minute and organisation before 429 (`None`: no limit).
    pub rate_limit_per_minute: Option<u64>,
}

/// What a product must answer instead of serving the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Over the rate limit; retry after this many seconds.
    RateLimited {
        /// Seconds until the window resets.
        retry_after: u64,
    },
    /// A simulated server error.
    ServerError,
}

/// Shared fault state. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    knobs: Arc<Mutex<Knobs>>,
    windows: Arc<Mutex<HashMap<String, (Instant, u64)>>>,
    counter: Arc<Mutex<u64>>,
}

impl Faults {
    /// Faults with these knobs.
    pub fn new(knobs: Knobs) -> Faults {
        Faults { knobs: Arc::new(Mutex::new(knobs)), ..Default::default() }
    }

    /// The current knobs.
    pub fn knobs(&self) -> Knobs {
        self.knobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the knobs (and starts new rate-limit windows).
    pub fn set(&self, knobs: Knobs) {
        *self.knobs.lock().unwrap_or_else(|e| e.into_inner()) = knobs;
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Called by a product before serving a request of `org`: waits the latency, then says
    /// whether to answer with a fault. Failures are spread deterministically (every n-th request
    /// for a rate of 1/n), so tests can count on them.
    pub async fn before(&self, org: &str) -> Option<Fault> {
        let k = self.knobs();
        if k.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(k.latency_ms)).await;
        }
        if let Some(limit) = k.rate_limit_per_minute {
            let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let entry = w.entry(org.to_string()).or_insert((now, 0));
            if now.duration_since(entry.0) >= Duration::from_secs(60) {
                *entry = (now, 0);
            }
            entry.1 += 1;
            if entry.1 > limit {
                let retry_after = 60u64.saturating_sub(now.duration_since(entry.0).as_secs()).max(1);
                return Some(Fault::RateLimited { retry_after });
            }
        }
        if k.failure_rate > 0.0 {
            let mut c = self.counter.lock().unwrap_or_else(|e| e.into_inner());
            *c += 1;
            let every = (1.0 / k.failure_rate.clamp(0.0001, 1.0)).round().max(1.0) as u64;
            if *c % every == 0 {
                return Some(Fault::ServerError);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn rate_limit_and_failures_are_deterministic() {
        let f = Faults::new(Knobs { rate_limit_per_minute: Some(2), ..Default::default() });
        assert_eq!(f.before("a").await, None);
        assert_eq!(f.before("a").await, None);
        assert!(matches!(f.before("a").await, Some(Fault::RateLimited { .. })));
        assert_eq!(f.before("b").await, None, "per organisation");
        f.set(Knobs { failure_rate: 0.5, ..Default::default() });
        let got: Vec<_> = [f.before("a").await, f.before("a").await].into_iter().collect();
        assert_eq!(got.iter().filter(|x| x.is_some()).count(), 1);
    }
}
