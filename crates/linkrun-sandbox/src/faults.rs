//! Fault knobs shared by every emulated product: added latency, a failure rate for 5xx answers,
//! a per-organisation rate limit, and bursts (the next N API requests fail with one status and
//! `Retry-After`, so retry tests are deterministic). Set at start (`linkrun sandbox` flags) and changed at run
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
    /// The next API requests fail as this says (`None`: no burst); its `count` goes down with
    /// each failed request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<Burst>,
}

/// A burst: the next `count` API requests (any product; not `/_sandbox/*` nor the OAuth
/// endpoints) are answered with `status` and, when set, `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Burst {
    /// Requests left to fail.
    pub count: u64,
    /// Their status (default 429).
    #[serde(default = "too_many_requests")]
    pub status: u16,
    /// `Retry-After` in seconds (none: no header).
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Send `Retry-After` as an HTTP date that many seconds ahead instead of a number.
    #[serde(default)]
    pub retry_after_date: bool,
}

fn too_many_requests() -> u16 {
    429
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

impl Faults {
    /// Takes one request of the burst, if one is on: its status and `Retry-After` value.
    pub fn take_burst(&self) -> Option<(u16, Option<String>)> {
        let mut k = self.knobs.lock().unwrap_or_else(|e| e.into_inner());
        let b = k.burst.as_mut()?;
        if b.count == 0 {
            k.burst = None;
            return None;
        }
        b.count -= 1;
        let retry_after = b.retry_after.map(|s| match b.retry_after_date {
            true => (chrono::Utc::now() + chrono::Duration::seconds(s as i64))
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
            false => s.to_string(),
        });
        let status = b.status;
        if b.count == 0 {
            k.burst = None;
        }
        Some((status, retry_after))
    }
}

/// Whether a path is an API request a burst applies to (not the sandbox's own admin and OAuth
/// endpoints, so connections can still be set up and refreshed).
pub fn burst_applies(path: &str) -> bool {
    !(path.starts_with("/_sandbox") || path.starts_with("/oauth") || path.contains("oauth_"))
}

/// Middleware answering the requests of a burst before any product sees them.
pub async fn burst_layer(
    axum::extract::State(faults): axum::extract::State<Faults>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if burst_applies(req.uri().path())
        && let Some((status, retry_after)) = faults.take_burst()
    {
        let code = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = serde_json::json!({
            "code": if status == 429 { "TOO_MANY_REQUESTS" } else { "SERVICE_UNAVAILABLE" },
            "message": format!("sandbox burst: answered {status}"),
            "status": "error",
        });
        let mut r = (code, axum::Json(body)).into_response();
        if let Some(v) = retry_after.and_then(|v| axum::http::HeaderValue::from_str(&v).ok()) {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        return r;
    }
    next.run(req).await
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

    #[test]
    fn a_burst_fails_the_next_n_requests_then_ends() {
        let burst = Burst { count: 2, status: 503, retry_after: Some(1), retry_after_date: false };
        let f = Faults::new(Knobs { burst: Some(burst), ..Default::default() });
        assert_eq!(f.take_burst(), Some((503, Some("1".into()))));
        assert_eq!(f.knobs().burst.map(|b| b.count), Some(1));
        assert_eq!(f.take_burst(), Some((503, Some("1".into()))));
        assert_eq!(f.take_burst(), None);
        assert_eq!(f.knobs().burst, None);
        let dated = Burst { count: 1, status: 429, retry_after: Some(1), retry_after_date: true };
        f.set(Knobs { burst: Some(dated), ..Default::default() });
        let (_, v) = f.take_burst().unwrap();
        assert!(v.unwrap().ends_with(" GMT"));
        assert!(!burst_applies("/_sandbox/knobs") && !burst_applies("/oauth/v2/token"));
        assert!(burst_applies("/crm/v7/Leads") && burst_applies("/api/now/table/incident"));
    }
}
