//! Fault knobs shared by every emulated product, and the per-product limit knobs: added latency,
//! a failure rate for 5xx answers (of a configurable status), a throttle rate for 429 answers, a
//! per-organisation rate limit, bursts (the next N API requests fail with one status and
//! `Retry-After`, so retry tests are deterministic), and the limits of Zoho Accounts (on by
//! default, as production enforces them), Zoho CRM and ServiceNow (off by default). Set at start
//! (`linkrun sandbox` flags, [`crate::server::Options`]) and changed at run time through
//! `GET`/`POST /_sandbox/knobs` (a `POST` replaces every knob; a field left out takes its
//! default); each product maps a fault to its own error shape.
//!
//! The knobs as JSON, with their defaults:
//!
//! ```json
//! {"latency_ms": 0, "failure_rate": 0.0, "rate_limit_per_minute": null,
//!  "failure_status": 500, "throttle_rate": 0.0, "throttle_retry_after": 1,
//!  "expire_tokens_every": null, "failure_after_write": false,
//!  "zoho_accounts": {"access_tokens_per_refresh_token_per_10_min": 10,
//!                    "live_access_tokens_per_refresh_token": 15,
//!                    "refresh_tokens_per_client_and_user": 20},
//!  "crm": {"concurrency_limit": null, "credits_per_day": null},
//!  "servicenow": {"rate_limit_per_hour": null},
//!  "burst": {"count": 3, "status": 429, "retry_after": 1, "retry_after_date": false, "path_prefix": "/crm/"}}
//! ```
//!
//! `GET` writes the first three always and the others only when they differ from their defaults
//! (so a fresh sandbox answers `{"latency_ms":0,"failure_rate":0.0,"rate_limit_per_minute":null}`).
//! (`burst` is absent when none is on; a limit of `null` is off.) `failure_rate` and
//! `throttle_rate` are deterministic: a rate of 1/n fails every n-th API request that reaches a
//! product, counted from when the knobs were set (each knob counts on its own), so a test of "5% 503s" is `failure_rate: 0.05,
//! failure_status: 503` and sees exactly the 20th, 40th, ... request fail. A changed knob set
//! starts new rate-limit windows ([`Faults::epoch`] tells the products' own limiters).
//! `expire_tokens_every: n` makes every n-th API request that carries an OAuth access token (Zoho
//! or ServiceNow, counted together) find every live access token of its provider expired, as if
//! their hour had run out mid-run: that request gets the provider's 401 and the client must
//! refresh (`null`: off). `failure_after_write: true` makes the `failure_rate` answers to writes
//! (any method but GET and HEAD) come after the write was done, as when a gateway gives up on a
//! slow backend that goes on to commit: a client that repeats a non-idempotent write then
//! duplicates it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The knobs (JSON as in the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, from = "KnobsWire", into = "KnobsWire")]
pub struct Knobs {
    /// Added to every API answer, in milliseconds.
    pub latency_ms: u64,
    /// Share of API requests answered with `failure_status` (0.0 to 1.0).
    pub failure_rate: f64,
    /// The status of `failure_rate`'s answers (default 500; e.g. 503).
    pub failure_status: u16,
    /// Share of API requests answered 429 in the product's own shape (0.0 to 1.0).
    pub throttle_rate: f64,
    /// `Retry-After` of `throttle_rate`'s answers, in seconds (default 1).
    pub throttle_retry_after: u64,
    /// Every n-th API request with an OAuth access token finds its provider's live access tokens
    /// expired (`None`: off).
    pub expire_tokens_every: Option<u64>,
    /// `failure_rate`'s answers to writes come after the write was done (default false).
    pub failure_after_write: bool,
    /// Requests per minute and organisation before 429 (`None`: no limit).
    pub rate_limit_per_minute: Option<u64>,
    /// Zoho Accounts' token limits (on by default).
    pub zoho_accounts: ZohoAccountsKnobs,
    /// Zoho CRM's limits (off by default).
    pub crm: CrmKnobs,
    /// ServiceNow's limits (off by default).
    pub servicenow: ServiceNowKnobs,
    /// The next API requests fail as this says (`None`: no burst); its `count` goes down with
    /// each failed request.
    pub burst: Option<Burst>,
    /// The burst's `path_prefix`: only requests whose path starts with it count and fail (none:
    /// every API request). In JSON it is the `path_prefix` of `burst`; in Rust it sits here so
    /// that [`Burst`] keeps its four fields.
    pub burst_path_prefix: Option<String>,
}

/// [`Knobs`] as JSON: the same fields, with the burst's `path_prefix` inside `burst`. The first
/// three knobs the sandbox had are always written; the others only when they are not at their
/// defaults (reading accepts them all).
#[derive(Serialize, Deserialize)]
#[serde(default)]
struct KnobsWire {
    latency_ms: u64,
    failure_rate: f64,
    rate_limit_per_minute: Option<u64>,
    #[serde(skip_serializing_if = "is_default_failure_status")]
    failure_status: u16,
    #[serde(skip_serializing_if = "is_zero")]
    throttle_rate: f64,
    #[serde(skip_serializing_if = "is_default_throttle_retry_after")]
    throttle_retry_after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expire_tokens_every: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    failure_after_write: bool,
    #[serde(skip_serializing_if = "is_default")]
    zoho_accounts: ZohoAccountsKnobs,
    #[serde(skip_serializing_if = "is_default")]
    crm: CrmKnobs,
    #[serde(skip_serializing_if = "is_default")]
    servicenow: ServiceNowKnobs,
    #[serde(skip_serializing_if = "Option::is_none")]
    burst: Option<BurstWire>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

fn is_default_failure_status(v: &u16) -> bool {
    *v == Knobs::default().failure_status
}

fn is_default_throttle_retry_after(v: &u64) -> bool {
    *v == Knobs::default().throttle_retry_after
}

impl Default for KnobsWire {
    fn default() -> KnobsWire {
        Knobs::default().into()
    }
}

/// A [`Burst`] with its `path_prefix`, as JSON.
#[derive(Serialize, Deserialize)]
struct BurstWire {
    #[serde(flatten)]
    burst: Burst,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path_prefix: Option<String>,
}

impl From<Knobs> for KnobsWire {
    fn from(k: Knobs) -> KnobsWire {
        KnobsWire {
            latency_ms: k.latency_ms,
            failure_rate: k.failure_rate,
            failure_status: k.failure_status,
            throttle_rate: k.throttle_rate,
            throttle_retry_after: k.throttle_retry_after,
            expire_tokens_every: k.expire_tokens_every,
            failure_after_write: k.failure_after_write,
            rate_limit_per_minute: k.rate_limit_per_minute,
            zoho_accounts: k.zoho_accounts,
            crm: k.crm,
            servicenow: k.servicenow,
            burst: k.burst.map(|burst| BurstWire { burst, path_prefix: k.burst_path_prefix }),
        }
    }
}

impl From<KnobsWire> for Knobs {
    fn from(w: KnobsWire) -> Knobs {
        let (burst, burst_path_prefix) = match w.burst {
            Some(b) => (Some(b.burst), b.path_prefix),
            None => (None, None),
        };
        Knobs {
            latency_ms: w.latency_ms,
            failure_rate: w.failure_rate,
            failure_status: w.failure_status,
            throttle_rate: w.throttle_rate,
            throttle_retry_after: w.throttle_retry_after,
            expire_tokens_every: w.expire_tokens_every,
            failure_after_write: w.failure_after_write,
            rate_limit_per_minute: w.rate_limit_per_minute,
            zoho_accounts: w.zoho_accounts,
            crm: w.crm,
            servicenow: w.servicenow,
            burst,
            burst_path_prefix,
        }
    }
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            latency_ms: 0,
            failure_rate: 0.0,
            failure_status: 500,
            throttle_rate: 0.0,
            throttle_retry_after: 1,
            expire_tokens_every: None,
            failure_after_write: false,
            rate_limit_per_minute: None,
            zoho_accounts: ZohoAccountsKnobs::default(),
            crm: CrmKnobs::default(),
            servicenow: ServiceNowKnobs::default(),
            burst: None,
            burst_path_prefix: None,
        }
    }
}

/// Zoho Accounts' limits on tokens (`docs/api-facts.md` §1.5), each on by default; `None` turns
/// one off. See [`crate::oauth_provider`] for what each does when it bites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ZohoAccountsKnobs {
    /// Access tokens a refresh token may obtain in any 10 minutes (Zoho: 10); the next refresh
    /// is answered HTTP 200 `"error":"Access Denied"`.
    pub access_tokens_per_refresh_token_per_10_min: Option<u64>,
    /// Live access tokens per refresh token (Zoho CRM: 15); issuing one more kills the oldest.
    pub live_access_tokens_per_refresh_token: Option<u64>,
    /// Refresh tokens per client and user (Zoho: 20); issuing one more deletes the oldest with
    /// its access tokens.
    pub refresh_tokens_per_client_and_user: Option<u64>,
}

impl Default for ZohoAccountsKnobs {
    fn default() -> ZohoAccountsKnobs {
        ZohoAccountsKnobs {
            access_tokens_per_refresh_token_per_10_min: Some(10),
            live_access_tokens_per_refresh_token: Some(15),
            refresh_tokens_per_client_and_user: Some(20),
        }
    }
}

impl ZohoAccountsKnobs {
    /// Every limit off (tests that refresh in a loop).
    pub fn off() -> ZohoAccountsKnobs {
        ZohoAccountsKnobs {
            access_tokens_per_refresh_token_per_10_min: None,
            live_access_tokens_per_refresh_token: None,
            refresh_tokens_per_client_and_user: None,
        }
    }
}

/// Zoho CRM's limits (`docs/api-facts.md` §2.8), off by default. See [`crate::zoho_crm`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrmKnobs {
    /// Requests of one organisation in flight at once; one more is answered 429 (Zoho: 5 on
    /// the Free edition to 20 on Enterprise).
    pub concurrency_limit: Option<u64>,
    /// API credits per organisation in a rolling 24 hours, 1 per call; past them, 429 (Zoho:
    /// 5,000 on Free, 50,000 and more on paid editions).
    pub credits_per_day: Option<u64>,
}

/// ServiceNow's limits (`docs/api-facts.md` §5.1), off by default. See [`crate::servicenow`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceNowKnobs {
    /// Table API requests per hour and user (a rate-limit rule); past it, 429.
    pub rate_limit_per_hour: Option<u64>,
}

/// A burst: the next `count` API requests (any product; not `/_sandbox/*` nor the OAuth
/// endpoints; with [`Knobs::burst_path_prefix`], only those whose path starts with it) are
/// answered with `status` and, when set, `Retry-After`.
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
    /// A simulated server error with this status (`failure_status`, 500 by default).
    ServerError {
        /// The HTTP status to answer.
        status: u16,
    },
}

/// Shared fault state. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    gate: Arc<WriteGate>,
    knobs: Arc<Mutex<Knobs>>,
    windows: Arc<Mutex<HashMap<String, (Instant, u64)>>>,
    counter: Arc<Mutex<u64>>,
    throttle_counter: Arc<Mutex<u64>>,
    token_counter: Arc<Mutex<u64>>,
    epoch: Arc<AtomicU64>,
}

/// The write gate of the crash tests: the k-th write after [`Faults::hold_write`] is done, and
/// its answer held until [`Faults::release_writes`], so that a test can kill its client at that
/// exact point (the write landed, the client never heard).
#[derive(Default)]
struct WriteGate {
    /// Writes left before the held one (0: off).
    left: Mutex<u64>,
    held: std::sync::atomic::AtomicBool,
    release: tokio::sync::Notify,
}

impl std::fmt::Debug for WriteGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteGate").finish_non_exhaustive()
    }
}

impl Faults {
    /// Holds the answer to the `k`-th write (a CRM or ServiceNow request other than GET) from now
    /// on, once that write is done, until [`Faults::release_writes`].
    pub fn hold_write(&self, k: u64) {
        *self.gate.left.lock().unwrap_or_else(|e| e.into_inner()) = k;
        self.gate.held.store(false, Ordering::SeqCst);
    }

    /// Whether a write's answer is being held.
    pub fn write_held(&self) -> bool {
        self.gate.held.load(Ordering::SeqCst)
    }

    /// Lets held answers go and disarms the gate.
    pub fn release_writes(&self) {
        *self.gate.left.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        self.gate.held.store(false, Ordering::SeqCst);
        self.gate.release.notify_waiters();
    }

    /// Called by the products once a write is done: waits here when it is the held one.
    pub async fn write_done(&self) {
        let hold = {
            let mut left = self.gate.left.lock().unwrap_or_else(|e| e.into_inner());
            match *left {
                0 => false,
                1 => {
                    *left = 0;
                    true
                }
                _ => {
                    *left -= 1;
                    false
                }
            }
        };
        if hold {
            let released = self.gate.release.notified();
            self.gate.held.store(true, Ordering::SeqCst);
            released.await;
        }
    }

    /// Faults with these knobs.
    pub fn new(knobs: Knobs) -> Faults {
        Faults { knobs: Arc::new(Mutex::new(knobs)), ..Default::default() }
    }

    /// The current knobs.
    pub fn knobs(&self) -> Knobs {
        self.knobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the knobs (and starts new rate-limit windows, the products' own included, and
    /// the counts of `failure_rate` and `throttle_rate` again).
    pub fn set(&self, knobs: Knobs) {
        *self.knobs.lock().unwrap_or_else(|e| e.into_inner()) = knobs;
        self.windows.lock().unwrap_or_else(|e| e.into_inner()).clear();
        *self.counter.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        *self.throttle_counter.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        *self.token_counter.lock().unwrap_or_else(|e| e.into_inner()) = 0;
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// How many times the knobs were replaced: a product's own limiter (CRM credits, ServiceNow
    /// hourly windows) starts its windows again when this changes.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
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
        if every_nth(&self.throttle_counter, k.throttle_rate) {
            return Some(Fault::RateLimited { retry_after: k.throttle_retry_after });
        }
        if every_nth(&self.counter, k.failure_rate) {
            return Some(Fault::ServerError { status: k.failure_status });
        }
        None
    }
}

impl Faults {
    /// Whether `fault`, met by a request that writes when `write`, is to be answered only after
    /// the write was done (`failure_after_write`).
    pub fn after_write(&self, fault: Fault, write: bool) -> bool {
        write && matches!(fault, Fault::ServerError { .. }) && self.knobs().failure_after_write
    }

    /// Counts one API request carrying an access token: true when `expire_tokens_every` says
    /// its provider's live access tokens expire now.
    pub fn take_token_expiry(&self) -> bool {
        let Some(n) = self.knobs().expire_tokens_every.filter(|n| *n > 0) else { return false };
        let mut c = self.token_counter.lock().unwrap_or_else(|e| e.into_inner());
        *c += 1;
        (*c).is_multiple_of(n)
    }
}

/// Counts one request on `counter` for a rate of 1/n; true on every n-th (never for rate 0).
fn every_nth(counter: &Mutex<u64>, rate: f64) -> bool {
    if rate.is_nan() || rate <= 0.0 {
        return false;
    }
    let mut c = counter.lock().unwrap_or_else(|e| e.into_inner());
    *c += 1;
    let every = (1.0 / rate.clamp(0.0001, 1.0)).round().max(1.0) as u64;
    (*c).is_multiple_of(every)
}

impl Faults {
    /// Takes one request of the burst, if one is on: its status and `Retry-After` value.
    /// `path` is the request's; a burst with a `path_prefix` it does not start with leaves it be.
    pub fn take_burst(&self, path: &str) -> Option<(u16, Option<String>)> {
        let mut k = self.knobs.lock().unwrap_or_else(|e| e.into_inner());
        if k.burst.as_ref()?.count == 0 {
            k.burst = None;
            k.burst_path_prefix = None;
            return None;
        }
        if k.burst_path_prefix.as_deref().is_some_and(|p| !path.starts_with(p)) {
            return None;
        }
        let b = k.burst.as_mut()?;
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
            k.burst_path_prefix = None;
        }
        Some((status, retry_after))
    }
}

/// A product's simulated-failure answer `r` with the status `failure_status` asked for (kept as
/// it is when that is not an HTTP status).
pub fn with_status(mut r: axum::response::Response, status: u16) -> axum::response::Response {
    if let Ok(s) = axum::http::StatusCode::from_u16(status) {
        *r.status_mut() = s;
    }
    r
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
    let path = req.uri().path();
    if burst_applies(path)
        && let Some((status, retry_after)) = faults.take_burst(path)
    {
        let code = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let body = match (status, path.starts_with("/crm/")) {
            // Zoho CRM's 429 (its OpenAPI sample), as the CRM's own limits answer it.
            (429, true) => serde_json::json!({
                "code": "TOO_MANY_REQUESTS",
                "details": {"retry_after": retry_after.as_deref().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)},
                "message": "Rate limit exceeded. Please retry after the specified time.",
                "status": "error",
            }),
            _ => serde_json::json!({
                "code": if status == 429 { "TOO_MANY_REQUESTS" } else { "SERVICE_UNAVAILABLE" },
                "message": format!("sandbox burst: answered {status}"),
                "status": "error",
            }),
        };
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
    fn token_expiry_fires_on_every_nth_request_with_a_token() {
        let f = Faults::default();
        assert!(!(0..10).any(|_| f.take_token_expiry()), "off by default");
        f.set(Knobs { expire_tokens_every: Some(3), ..Default::default() });
        let fired: Vec<bool> = (0..6).map(|_| f.take_token_expiry()).collect();
        assert_eq!(fired, [false, false, true, false, false, true]);
        let wire = serde_json::to_value(f.knobs()).unwrap();
        assert_eq!(wire["expire_tokens_every"], 3);
        assert_eq!(serde_json::to_value(Knobs::default()).unwrap().get("expire_tokens_every"), None);
    }

    #[test]
    fn a_burst_fails_the_next_n_requests_then_ends() {
        let burst = Burst { count: 2, status: 503, retry_after: Some(1), retry_after_date: false };
        let f = Faults::new(Knobs { burst: Some(burst), ..Default::default() });
        assert_eq!(f.take_burst("/crm/v7/Leads"), Some((503, Some("1".into()))));
        assert_eq!(f.knobs().burst.map(|b| b.count), Some(1));
        assert_eq!(f.take_burst("/crm/v7/Leads"), Some((503, Some("1".into()))));
        assert_eq!(f.take_burst("/crm/v7/Leads"), None);
        assert_eq!(f.knobs().burst, None);
        let dated = Burst { count: 1, status: 429, retry_after: Some(1), retry_after_date: true };
        f.set(Knobs { burst: Some(dated), ..Default::default() });
        let (_, v) = f.take_burst("/api/now/table/incident").unwrap();
        assert!(v.unwrap().ends_with(" GMT"));
        assert!(!burst_applies("/_sandbox/knobs") && !burst_applies("/oauth/v2/token"));
        assert!(burst_applies("/crm/v7/Leads") && burst_applies("/api/now/table/incident"));
    }
}
