//! Who holds a refresh lease, and whether that process still runs.
//!
//! A lease records its owner as `pid N start T`, T being the process's start time in clock
//! ticks since boot (`/proc/N/stat`, field 22), so a reused PID is not mistaken for the owner.
//! A lease whose owner is gone can be taken at once instead of waiting for it to expire. Where
//! `/proc` is not available, a lease ends only when it expires.

/// The owner text of this process.
pub fn this_process() -> String {
    let pid = std::process::id();
    match start_time(pid) {
        Some(t) => format!("pid {pid} start {t}"),
        None => format!("pid {pid}"),
    }
}

/// Whether the process that wrote `owner` still runs (`true` when that cannot be told).
pub fn owner_alive(owner: &str) -> bool {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    let mut words = owner.split_whitespace();
    let pid = match (words.next(), words.next().and_then(|p| p.parse::<u32>().ok())) {
        (Some("pid"), Some(pid)) => pid,
        _ => return true,
    };
    let recorded = match (words.next(), words.next()) {
        (Some("start"), Some(t)) => Some(t.to_string()),
        _ => None,
    };
    match (start_time(pid), recorded) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

/// Field 22 of `/proc/PID/stat` (after the command name, which may hold spaces and parentheses).
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_one_is_not() {
        let me = this_process();
        assert!(owner_alive(&me), "{me}");
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let owner = format!("pid {} start {}", child.id(), start_time(child.id()).unwrap_or_default());
        child.wait().expect("wait");
        assert!(!owner_alive(&owner), "{owner}");
        // The same PID with another start time is another process.
        let reused = format!("pid {} start 1", std::process::id());
        assert!(!owner_alive(&reused));
        assert!(owner_alive("someone else's lease format"), "unknown formats are left to expire");
    }
}
