//! Request statistics: how many API requests the sandbox served, how many are in flight now and
//! at most, and how many went to each path, so that tests can check a client's concurrency
//! budget and its number of page fetches.
//!
//! `GET /_sandbox/requests` answers
//! `{"total": N, "in_flight": N, "max_in_flight": N, "by_path": {"/crm/v7/Leads": N, ...}}` and
//! `DELETE /_sandbox/requests` starts them again (the same body, read just before; `total` and
//! `by_path` go to zero, `max_in_flight` to the requests still in flight). In Rust:
//! [`crate::server::Sandbox::request_stats`] and [`crate::server::Sandbox::reset_request_stats`].
//!
//! Only API requests count (the paths [`crate::faults::burst_applies`] names): not `/_sandbox/*`
//! and not the OAuth endpoints. A request is in flight from the moment the outermost middleware
//! sees it, before any product (or a burst) answers it and before the `latency_ms` knob's wait,
//! until its response is produced (or the client went away); `by_path` keys are the request's
//! path without the query.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;

/// What `GET /_sandbox/requests` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RequestSnapshot {
    /// API requests received since the start or the last reset.
    pub total: u64,
    /// API requests received whose response is not produced yet.
    pub in_flight: u64,
    /// The most API requests in flight at once since the start or the last reset.
    pub max_in_flight: u64,
    /// Requests by path (no query string).
    pub by_path: BTreeMap<String, u64>,
}

/// The shared counters. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct RequestStats {
    inner: Arc<Mutex<RequestSnapshot>>,
}

impl RequestStats {
    /// The counters now.
    pub fn snapshot(&self) -> RequestSnapshot {
        self.lock().clone()
    }

    /// Starts the counters again; returns what they were. Requests in flight stay counted as in
    /// flight (and as the new `max_in_flight`).
    pub fn reset(&self) -> RequestSnapshot {
        let mut s = self.lock();
        let before = s.clone();
        *s = RequestSnapshot { in_flight: s.in_flight, max_in_flight: s.in_flight, ..Default::default() };
        before
    }

    /// Counts a request to `path` in; it is in flight until the returned guard is dropped.
    pub fn enter(&self, path: &str) -> InFlight {
        let mut s = self.lock();
        s.total += 1;
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        *s.by_path.entry(path.to_string()).or_default() += 1;
        InFlight { stats: self.clone() }
    }

    fn lock(&self) -> MutexGuard<'_, RequestSnapshot> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One request in flight; dropping it counts it out.
pub struct InFlight {
    stats: RequestStats,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = self.stats.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

/// The outermost middleware: counts every API request in for as long as it is served.
pub async fn count_layer(
    axum::extract::State(stats): axum::extract::State<RequestStats>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if !crate::faults::burst_applies(req.uri().path()) {
        return next.run(req).await;
    }
    let _in_flight = stats.enter(req.uri().path());
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_is_counted_until_the_guard_drops_and_reset_keeps_it() {
        let s = RequestStats::default();
        let a = s.enter("/crm/v7/Leads");
        let b = s.enter("/crm/v7/Leads");
        drop(a);
        let _c = s.enter("/api/now/table/incident");
        let snap = s.snapshot();
        assert_eq!((snap.total, snap.in_flight, snap.max_in_flight), (3, 2, 2));
        assert_eq!(snap.by_path["/crm/v7/Leads"], 2);
        let before = s.reset();
        assert_eq!(before, snap);
        assert_eq!(s.snapshot(), RequestSnapshot { in_flight: 2, max_in_flight: 2, ..Default::default() });
        drop(b);
        assert_eq!((s.snapshot().in_flight, s.snapshot().max_in_flight), (1, 2));
    }
}
