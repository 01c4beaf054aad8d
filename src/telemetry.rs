//! Process-wide counters the server's `/metrics` reports: requests sent per connection and
//! status, and token refreshes per connection. The send path and the auth layer count here (a
//! lock and a map update per request, nothing more); `linkrun serve` reads them. Lower layers
//! know nothing of the server.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// (connection or `-`, status or `error`) → requests.
static REQUESTS: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());
/// connection → token refreshes that succeeded.
static REFRESHES: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Counts one logical request (its retries included) and its final status (`None`: no answer).
pub fn request(connection: Option<&str>, status: Option<u16>) {
    let key = (connection.unwrap_or("-").to_string(), status.map_or_else(|| "error".to_string(), |s| s.to_string()));
    *REQUESTS.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
}

/// Counts one token refresh of `connection`.
pub fn token_refresh(connection: &str) {
    *REFRESHES.lock().unwrap_or_else(|e| e.into_inner()).entry(connection.to_string()).or_default() += 1;
}

/// The request counts so far.
pub fn requests() -> Vec<((String, String), u64)> {
    REQUESTS.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
}

/// The refresh counts so far.
pub fn refreshes() -> Vec<(String, u64)> {
    REFRESHES.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect()
}
