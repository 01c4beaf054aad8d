//! ServiceNow's per-hour rate-limit rule (`servicenow.rate_limit_per_hour` in
//! [`crate::faults::Knobs`], off by default), as `docs/api-facts.md` §5.1 describes it: N Table
//! API requests per hour and user (the instance is one). While the rule is on, every Table API
//! answer to an authenticated caller carries
//!
//! - `X-RateLimit-Limit: N`,
//! - `X-RateLimit-Remaining`: requests left in this hour (this header is a guess: the facts name
//!   only the other three),
//! - `X-RateLimit-Reset`: when the hour ends, in UNIX seconds,
//! - `X-RateLimit-Rule`: the rule's sys_id;
//!
//! and the request past the N-th is answered **429** with `Retry-After` (seconds until the
//! reset) and `{"error":{"message":"Rate limit exceeded","detail":"Rate limit of N requests per hour for Table API exceeded"},"status":"failure"}`.
//! Denied requests count too. The hours are the clock's (a window ends at the top of the hour;
//! when a real instance resets is a guess); changing the knobs starts every window again. The
//! shared per-minute knob (`rate_limit_per_minute`) still applies on its own, with the same
//! headers on its 429.

use std::collections::HashMap;

use super::*;

/// Requests of each user in the current hour, by hour (its start in UNIX seconds).
#[derive(Default)]
pub(super) struct Hourly {
    windows: HashMap<String, (u64, u64)>,
    /// [`Faults::epoch`] when the windows were last started again.
    epoch: u64,
}

/// Where a request stands under the rule.
pub(super) struct RuleState {
    limit: u64,
    remaining: u64,
    reset: u64,
    denied: bool,
}

impl ServiceNow {
    /// Counts a request of `user` under the rule, if it is on.
    pub(super) fn take_hourly(&self, user: &str, faults: &Faults) -> Option<RuleState> {
        let limit = faults.knobs().servicenow.rate_limit_per_hour?;
        let now = unix_now();
        let hour = now - now % 3600;
        let mut h = self.inner.hourly.lock().unwrap_or_else(|e| e.into_inner());
        if h.epoch != faults.epoch() {
            h.epoch = faults.epoch();
            h.windows.clear();
        }
        let w = h.windows.entry(user.to_string()).or_insert((hour, 0));
        if w.0 != hour {
            *w = (hour, 0);
        }
        w.1 += 1;
        Some(RuleState { limit, remaining: limit.saturating_sub(w.1), reset: hour + 3600, denied: w.1 > limit })
    }
}

impl RuleState {
    /// The rule's answer when it denies the request.
    pub(super) fn denial(&self) -> Option<Response> {
        if !self.denied {
            return None;
        }
        let mut r = sn_error(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit exceeded",
            json!(format!("Rate limit of {} requests per hour for Table API exceeded", self.limit)),
        );
        let retry_after = self.reset.saturating_sub(unix_now()).max(1);
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        Some(self.stamp(r))
    }

    /// `r` with the rule's headers.
    pub(super) fn stamp(&self, mut r: Response) -> Response {
        let h = r.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(self.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(self.remaining));
        h.insert("x-ratelimit-reset", HeaderValue::from(self.reset));
        h.insert("x-ratelimit-rule", HeaderValue::from_static(RATE_LIMIT_RULE));
        r
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
