//! Zoho CRM's own limits, as knobs (`crm` in [`crate::faults::Knobs`], both off by default):
//!
//! - `concurrency_limit: N`: at most N requests of one organisation in flight at once (from the
//!   moment the request is authenticated, the `latency_ms` wait included, until its answer is
//!   built); one more is answered 429 at once. Zoho's figures (`docs/api-facts.md` §2.8, a
//!   secondary source): 5 on the Free edition up to 20 on Enterprise. The `retry_after` of 1 s is
//!   a guess.
//! - `credits_per_day: N`: N API credits per organisation in a rolling 24 hours, 1 credit per
//!   call (Zoho counts most calls as 1 credit; the heavier ones are not told apart here); past
//!   them, 429 with `retry_after` the seconds until the oldest credit of the window frees up.
//!   Credits are counted from the moment the knob is on; changing the knobs starts again.
//!
//! Every CRM 429 (these two, and the shared `rate_limit_per_minute` and `throttle_rate` knobs as
//! the CRM maps them) is Zoho's OpenAPI sample,
//! `{"code":"TOO_MANY_REQUESTS","details":{"retry_after":N},"message":"Rate limit exceeded. Please retry after the specified time.","status":"error"}`,
//! with a `Retry-After: N` header. Both the body and the header are guesses: `docs/api-facts.md`
//! marks the real 429's body and headers UNCONFIRMED.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::*;
use crate::faults::CrmKnobs;

/// Length of the credit window.
const CREDIT_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// `retry_after` of a request over the concurrency limit (a guess).
const CONCURRENCY_RETRY_AFTER: u64 = 1;

/// The limiters' state, per organisation.
#[derive(Default)]
pub(super) struct Limits {
    in_flight: HashMap<String, u64>,
    credits: HashMap<String, VecDeque<Instant>>,
    /// [`Faults::epoch`] when the credits were last started again.
    epoch: u64,
}

/// A request admitted under the concurrency limit; dropping it counts it out.
pub(super) struct Slot {
    crm: Option<(Crm, String)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((crm, org)) = self.crm.take() {
            let mut l = crm.limits();
            if let Some(n) = l.in_flight.get_mut(&org) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

impl Crm {
    fn limits(&self) -> MutexGuard<'_, Limits> {
        self.inner.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits one request of `org` under the `crm` knobs: the slot to hold while it is served,
    /// or the 429 answer.
    pub(super) fn admit(&self, org: &str, knobs: &CrmKnobs, epoch: u64) -> Result<Slot, Refused> {
        let mut l = self.limits();
        if l.epoch != epoch {
            l.epoch = epoch;
            l.credits.clear();
        }
        if let Some(limit) = knobs.concurrency_limit
            && l.in_flight.get(org).copied().unwrap_or(0) >= limit
        {
            return Err(Box::new(too_many_requests(CONCURRENCY_RETRY_AFTER)));
        }
        if let Some(limit) = knobs.credits_per_day {
            let now = Instant::now();
            let used = l.credits.entry(org.to_string()).or_default();
            while used.front().is_some_and(|t| now.duration_since(*t) >= CREDIT_WINDOW) {
                used.pop_front();
            }
            if used.len() as u64 >= limit {
                let frees =
                    used.front().map_or(Duration::ZERO, |t| CREDIT_WINDOW.saturating_sub(now.duration_since(*t)));
                return Err(Box::new(too_many_requests(frees.as_secs().max(1))));
            }
            used.push_back(now);
        }
        if knobs.concurrency_limit.is_none() {
            return Ok(Slot { crm: None });
        }
        *l.in_flight.entry(org.to_string()).or_default() += 1;
        Ok(Slot { crm: Some((self.clone(), org.to_string())) })
    }
}

/// Zoho CRM's 429 (its OpenAPI sample) with `Retry-After`.
pub(super) fn too_many_requests(retry_after: u64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "TOO_MANY_REQUESTS",
        "Rate limit exceeded. Please retry after the specified time.",
        json!({"retry_after": retry_after}),
    );
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}
