//! Run leases: while a process runs a run, it holds an exclusive lock on a file named after the
//! run in `run-leases/` of the home. The OS drops the lock when the process ends, however it
//! ends (`kill -9` included), so a `running` record whose lease nobody holds belongs to a process
//! that is gone: [`crate::store::SqliteRuns::settle_interrupted`] marks it `interrupted`.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;

use crate::home::Home;
use crate::runs::StoreError;

/// The lease of a run this process is running; dropping it (or the process ending) frees it.
pub struct RunLease {
    file: Option<File>,
    path: PathBuf,
}

fn dir(home: &Home) -> PathBuf {
    home.root().join("run-leases")
}

fn path(home: &Home, id: &str) -> PathBuf {
    dir(home).join(id)
}

impl RunLease {
    /// Takes the lease of run `id`.
    pub fn take(home: &Home, id: &str) -> Result<RunLease, StoreError> {
        let d = dir(home);
        let fail = |e: std::io::Error| {
            StoreError(format!("cannot take the lease of run `{id}` in `{}`: {e}; check the folder", d.display()))
        };
        crate::home::create_private_dir_io(&d).map_err(fail)?;
        let path = path(home, id);
        let file = OpenOptions::new().create(true).write(true).truncate(false).open(&path).map_err(fail)?;
        file.lock().map_err(fail)?;
        Ok(RunLease { file: Some(file), path })
    }

    /// Whether some process holds the lease of run `id` (false when there is no such lease).
    pub fn is_held(home: &Home, id: &str) -> bool {
        let Ok(file) = File::open(path(home, id)) else { return false };
        match file.try_lock_shared() {
            Ok(()) => false,
            Err(TryLockError::WouldBlock) => true,
            // Cannot tell: count it as held, so a live run is never called interrupted.
            Err(TryLockError::Error(_)) => true,
        }
    }

    /// Forgets the lease file of a run that is over (its holder is gone).
    pub fn remove(home: &Home, id: &str) {
        let _ = std::fs::remove_file(path(home, id));
    }
}

impl Drop for RunLease {
    fn drop(&mut self) {
        // Remove the file first, then let the lock go with the handle.
        let _ = std::fs::remove_file(&self.path);
        drop(self.file.take());
    }
}
