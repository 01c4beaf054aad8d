//! The wall clock for token expiry and refresh leases, in unix seconds: the one place linkrun
//! reads it for them.
//!
//! Debug builds (what the test suite runs) add `LINKRUN_TEST_CLOCK_OFFSET` seconds, so tests move
//! linkrun's time forward ("the token is now near expiry") instead of sleeping; release builds
//! ignore the variable.

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    let real =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    real.saturating_add(test_offset())
}

#[cfg(debug_assertions)]
fn test_offset() -> i64 {
    std::env::var("LINKRUN_TEST_CLOCK_OFFSET").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[cfg(not(debug_assertions))]
fn test_offset() -> i64 {
    0
}

/// Now, in milliseconds since the epoch, moved like [`unix_now`] (schedules, run times of serve).
pub fn now_ms() -> i64 {
    let real =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    real.saturating_add(test_offset().saturating_mul(1_000))
}
