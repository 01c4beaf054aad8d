//! Retry policy: which answers and failures of a call are tried again, how long to wait before
//! the next attempt, and when to stop. The invoker ([`crate::invoke`]) runs the loop; this module
//! only decides, so the rules are testable without a server.
//!
//! - Retried answers: 429, 502, 503 and 504 by default (`statuses`); retried failures: connect
//!   errors and timeouts before any byte of the answer came back.
//! - Methods: a 429 (the server did not process the request) is retried for every method; other
//!   statuses and failures only for the methods in `methods` (default GET, HEAD, PUT, DELETE and
//!   OPTIONS), or for any method when the request carries an `Idempotency-Key` header.
//! - Waits: `Retry-After` (RFC 9110 §10.2.3: seconds or an HTTP date), else the first
//!   rate-limit reset header the service names (`reset_headers`: an epoch time in seconds or
//!   milliseconds, a number of seconds, or an HTTP date), else exponential backoff with full
//!   jitter: a random wait from 0 to `min(cap_ms, base_ms × 2^(n-1))` before attempt n+1.
//! - A wait longer than `max_wait_s` (or than the time the caller has left) is not slept: the
//!   answer or error is returned at once, carrying the wait it asked for.
//! - At most `max_attempts` attempts (default 4, the first included).

use std::time::{Duration, SystemTime};

use reqwest::Method;
use serde::{Deserialize, Serialize};

/// Statuses retried by default.
pub const DEFAULT_STATUSES: &[u16] = &[429, 502, 503, 504];
/// Methods retried by default on a status other than 429 or a transport failure.
pub const DEFAULT_METHODS: &[&str] = &["GET", "HEAD", "PUT", "DELETE", "OPTIONS"];
/// Attempts by default, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// Backoff base by default, in milliseconds.
pub const DEFAULT_BASE_MS: u64 = 500;
/// Backoff cap by default, in milliseconds.
pub const DEFAULT_CAP_MS: u64 = 8_000;
/// Longest wait slept by default, in seconds.
pub const DEFAULT_MAX_WAIT_S: f64 = 60.0;
/// Most attempts a service or request may ask for.
pub const MAX_ATTEMPTS_LIMIT: u32 = 10;
/// Methods `methods` may name.
pub const KNOWN_METHODS: &[&str] = &["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST", "PATCH"];

/// The `[retry]` table of a service, and the map of a request's `retry` key: each key left out
/// keeps the value below it (the service's, then the default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    /// Statuses that are retried (default 429, 502, 503, 504).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<u16>>,
    /// Methods retried on a status other than 429 and on transport failures (default GET, HEAD,
    /// PUT, DELETE, OPTIONS); add POST or PATCH for an API where they are idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Attempts, the first included (default 4; 1 turns retries off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Backoff base in milliseconds (default 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_ms: Option<u64>,
    /// Backoff cap in milliseconds (default 8000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_ms: Option<u64>,
    /// Longest wait slept, in seconds (default 60); a longer one returns the answer at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait_s: Option<f64>,
    /// Rate-limit reset headers read when there is no `Retry-After`, first found wins
    /// (default none). Service only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_headers: Option<Vec<String>>,
}

impl RetryDef {
    /// Checks the values; the error is the end of a sentence naming the fault and the fix.
    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = self.statuses.as_ref().and_then(|s| s.iter().find(|s| !(400..=599).contains(*s))) {
            return Err(format!("retry status `{s}` is not an error status: list statuses from 400 to 599"));
        }
        if let Some(m) = self
            .methods
            .as_ref()
            .and_then(|m| m.iter().find(|m| !KNOWN_METHODS.iter().any(|k| k.eq_ignore_ascii_case(m.as_str()))))
        {
            return Err(format!("unknown retry method `{m}`: use {}", KNOWN_METHODS.join(", ")));
        }
        if let Some(n) = self.max_attempts.filter(|n| !(1..=MAX_ATTEMPTS_LIMIT).contains(n)) {
            return Err(format!("`max_attempts` is {n}: give 1 (no retries) to {MAX_ATTEMPTS_LIMIT}"));
        }
        if let (Some(b), Some(c)) = (self.base_ms, self.cap_ms)
            && b > c
        {
            return Err(format!("`base_ms` ({b}) is larger than `cap_ms` ({c}): make the cap at least the base"));
        }
        if let Some(w) = self.max_wait_s.filter(|w| !(0.0..=86_400.0).contains(w)) {
            return Err(format!("`max_wait_s` is {w}: give 0 to 86400 seconds"));
        }
        Ok(())
    }
}

/// The policy of one request: the defaults, then the service's `[retry]`, then the request's.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retried statuses.
    pub statuses: Vec<u16>,
    /// Methods retried on a status other than 429 and on transport failures (upper case).
    pub methods: Vec<String>,
    /// Attempts, the first included.
    pub max_attempts: u32,
    /// Backoff base.
    pub base: Duration,
    /// Backoff cap.
    pub cap: Duration,
    /// Longest wait slept.
    pub max_wait: Duration,
    /// Rate-limit reset headers (lower case).
    pub reset_headers: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            statuses: DEFAULT_STATUSES.to_vec(),
            methods: DEFAULT_METHODS.iter().map(|m| m.to_string()).collect(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base: Duration::from_millis(DEFAULT_BASE_MS),
            cap: Duration::from_millis(DEFAULT_CAP_MS),
            max_wait: Duration::from_secs_f64(DEFAULT_MAX_WAIT_S),
            reset_headers: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// This policy with the keys `def` sets replaced.
    pub fn with(mut self, def: &RetryDef) -> RetryPolicy {
        if let Some(s) = &def.statuses {
            self.statuses = s.clone();
        }
        if let Some(m) = &def.methods {
            self.methods = m.iter().map(|m| m.to_ascii_uppercase()).collect();
        }
        if let Some(n) = def.max_attempts {
            self.max_attempts = n.max(1);
        }
        if let Some(b) = def.base_ms {
            self.base = Duration::from_millis(b);
        }
        if let Some(c) = def.cap_ms {
            self.cap = Duration::from_millis(c);
        }
        if let Some(w) = def.max_wait_s {
            self.max_wait = Duration::from_secs_f64(w.clamp(0.0, 86_400.0));
        }
        if let Some(h) = &def.reset_headers {
            self.reset_headers = h.iter().map(|h| h.to_ascii_lowercase()).collect();
        }
        self
    }

    /// Whether a method may be retried on a status other than 429 or a transport failure: it is
    /// in `methods`, or the request set an `Idempotency-Key` header.
    pub fn method_retried(&self, method: &Method, headers: &[(String, String)]) -> bool {
        self.methods.iter().any(|m| m == method.as_str())
            || headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("idempotency-key"))
    }

    /// Whether an answer with `status` to a `method` request is retried (attempts aside).
    pub fn status_retried(&self, status: u16, method: &Method, headers: &[(String, String)]) -> bool {
        self.statuses.contains(&status) && (status == 429 || self.method_retried(method, headers))
    }

    /// The wait before attempt `next` (2 for the first retry) after an answer with `headers`
    /// (lower-case names), or after a failure (`headers` empty).
    pub fn wait(&self, next: u32, headers: &[(String, String)], now: SystemTime) -> Wait {
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim());
        if let Some(d) = header("retry-after").and_then(|v| retry_after(v, now)) {
            return Wait { delay: d, source: WaitSource::RetryAfter };
        }
        for name in &self.reset_headers {
            if let Some(d) = header(name).and_then(|v| reset_at(v, now)) {
                return Wait { delay: d, source: WaitSource::Reset(name.clone()) };
            }
        }
        Wait { delay: self.backoff(next, random_fraction()), source: WaitSource::Backoff }
    }

    /// Full-jitter backoff before attempt `next`: `fraction` (0 to 1) of
    /// `min(cap, base × 2^(next-2))`.
    pub fn backoff(&self, next: u32, fraction: f64) -> Duration {
        let exp = next.saturating_sub(2).min(30);
        let ceiling = self.base.saturating_mul(1u32 << exp).min(self.cap);
        ceiling.mul_f64(fraction.clamp(0.0, 1.0))
    }
}

/// A wait before the next attempt and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    /// How long.
    pub delay: Duration,
    /// Why.
    pub source: WaitSource,
}

/// Where a wait came from, as traces name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitSource {
    /// The `Retry-After` header.
    RetryAfter,
    /// A rate-limit reset header (its lower-case name).
    Reset(String),
    /// Exponential backoff with full jitter.
    Backoff,
}

impl std::fmt::Display for WaitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitSource::RetryAfter => f.write_str("Retry-After"),
            WaitSource::Reset(h) => f.write_str(h),
            WaitSource::Backoff => f.write_str("backoff"),
        }
    }
}

/// What the retry loop knows at the end of a call: how many attempts it made and the wait it
/// did not sleep (too long), if any.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Attempts {
    /// Attempts made, the first included (0: nothing was sent).
    pub made: u32,
    /// The wait the last answer or failure asked for, when it was too long to sleep.
    pub retry_after: Option<Duration>,
}

/// A `Retry-After` value: delay-seconds or an HTTP date (past dates are no wait).
pub fn retry_after(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    http_date(v, now)
}

/// A rate-limit reset value: an epoch time in milliseconds (13 digits or more) or seconds (10 or
/// more), a number of seconds, or an HTTP date.
pub fn reset_at(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(n) = v.parse::<f64>() {
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        let at = if n >= 1e12 {
            SystemTime::UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(n / 1000.0).ok()?)?
        } else if n >= 1e9 {
            SystemTime::UNIX_EPOCH.checked_add(Duration::try_from_secs_f64(n).ok()?)?
        } else {
            return Duration::try_from_secs_f64(n).ok();
        };
        return Some(at.duration_since(now).unwrap_or_default());
    }
    http_date(v, now)
}

/// The time until an HTTP date (RFC 9110 §5.6.7; IMF-fixdate is RFC 5322's form); a past date is
/// no wait.
fn http_date(v: &str, now: SystemTime) -> Option<Duration> {
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let at = SystemTime::from(at.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or_default())
}

/// A random number from 0 to 1 for the jitter (from the OS; 1 when it cannot be had, the
/// longest wait, which errs on the side of the server).
fn random_fraction() -> f64 {
    match getrandom::u64() {
        Ok(n) => (n >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
        let now = at(784_111_770);
        assert_eq!(retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at(784_111_800)), Some(Duration::ZERO));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }

    #[test]
    fn reset_headers_are_epoch_seconds_milliseconds_or_a_delay() {
        let now = at(1_700_000_000);
        assert_eq!(reset_at("1700000005", now), Some(Duration::from_secs(5)));
        assert_eq!(reset_at("1700000002500", now), Some(Duration::from_millis(2500)));
        assert_eq!(reset_at("30", now), Some(Duration::from_secs(30)));
        assert_eq!(reset_at("1699999999", now), Some(Duration::ZERO));
        assert_eq!(reset_at("1e300", now), None, "no overflow");
        assert_eq!(reset_at("soon", now), None);
    }

    #[test]
    fn waits_prefer_retry_after_then_the_reset_headers_then_backoff() {
        let p = RetryPolicy::default()
            .with(&RetryDef { reset_headers: Some(vec!["X-RateLimit-Reset".into()]), ..Default::default() });
        let now = at(1_700_000_000);
        let h = |v: &[(&str, &str)]| v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>();
        let both = h(&[("retry-after", "2"), ("x-ratelimit-reset", "1700000009")]);
        assert_eq!(p.wait(2, &both, now), Wait { delay: Duration::from_secs(2), source: WaitSource::RetryAfter });
        let reset = h(&[("x-ratelimit-reset", "1700000009")]);
        let w = p.wait(2, &reset, now);
        assert_eq!(w, Wait { delay: Duration::from_secs(9), source: WaitSource::Reset("x-ratelimit-reset".into()) });
        assert_eq!(w.source.to_string(), "x-ratelimit-reset");
        let w = p.wait(3, &[], now);
        assert_eq!(w.source, WaitSource::Backoff);
        assert!(w.delay <= Duration::from_millis(1000), "{w:?}");
    }

    #[test]
    fn backoff_is_full_jitter_from_the_base_to_the_cap() {
        let p = RetryPolicy::default().with(&RetryDef { base_ms: Some(100), cap_ms: Some(350), ..Default::default() });
        assert_eq!(p.backoff(2, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(3, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(4, 1.0), Duration::from_millis(350));
        assert_eq!(p.backoff(40, 1.0), Duration::from_millis(350));
        assert_eq!(p.backoff(4, 0.5), Duration::from_millis(175));
        assert_eq!(p.backoff(4, 0.0), Duration::ZERO);
    }

    #[test]
    fn a_429_retries_every_method_other_statuses_only_idempotent_ones() {
        let p = RetryPolicy::default();
        let none: &[(String, String)] = &[];
        assert!(p.status_retried(429, &Method::POST, none));
        assert!(p.status_retried(503, &Method::GET, none));
        assert!(p.status_retried(502, &Method::PUT, none));
        assert!(!p.status_retried(503, &Method::POST, none));
        assert!(!p.status_retried(504, &Method::PATCH, none));
        assert!(!p.status_retried(500, &Method::GET, none));
        let keyed = [("Idempotency-Key".to_string(), "k1".to_string())];
        assert!(p.status_retried(503, &Method::POST, &keyed));
        let marked = p.with(&RetryDef { methods: Some(vec!["post".into()]), ..Default::default() });
        assert!(marked.status_retried(503, &Method::POST, none));
        assert!(!marked.status_retried(503, &Method::GET, none), "the list replaces the default");
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let bad = |d: RetryDef| d.check().unwrap_err();
        assert_eq!(
            bad(RetryDef { statuses: Some(vec![200]), ..Default::default() }),
            "retry status `200` is not an error status: list statuses from 400 to 599"
        );
        assert_eq!(
            bad(RetryDef { methods: Some(vec!["FETCH".into()]), ..Default::default() }),
            "unknown retry method `FETCH`: use GET, HEAD, PUT, DELETE, OPTIONS, POST, PATCH"
        );
        assert_eq!(
            bad(RetryDef { max_attempts: Some(0), ..Default::default() }),
            "`max_attempts` is 0: give 1 (no retries) to 10"
        );
        assert!(bad(RetryDef { base_ms: Some(10), cap_ms: Some(5), ..Default::default() }).contains("`cap_ms`"));
        assert!(RetryDef::default().check().is_ok());
    }
}
