//! Where linkrun keeps its files: `--home DIR`, else `LINKRUN_HOME`, else
//! `$XDG_DATA_HOME/linkrun`, else `~/.local/share/linkrun`.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The linkrun home folder and the paths inside it.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Resolves the home folder from the flag, then the environment.
    pub fn resolve(flag: Option<PathBuf>) -> Result<Home> {
        let root = match flag {
            Some(p) => p,
            None => match std::env::var_os("LINKRUN_HOME").filter(|v| !v.is_empty()) {
                Some(p) => PathBuf::from(p),
                None => match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
                    Some(p) => PathBuf::from(p).join("linkrun"),
                    None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                        Some(h) => PathBuf::from(h).join(".local/share/linkrun"),
                        None => {
                            return Err(Error::NoHome);
                        }
                    },
                },
            },
        };
        Ok(Home { root })
    }

    /// A home at an explicit path (tests, `demo --home`).
    pub fn at(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// The home folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `vault.db`.
    pub fn vault_path(&self) -> PathBuf {
        self.root.join("vault.db")
    }

    /// `master.key`.
    pub fn key_file(&self) -> PathBuf {
        self.root.join("master.key")
    }

    /// `services/`, where `service add` installs definitions.
    pub fn services_dir(&self) -> PathBuf {
        self.root.join("services")
    }

    /// Creates the home folder (mode 0700 on Unix) if it is missing.
    pub fn ensure(&self) -> Result<()> {
        create_private_dir(&self.root)
    }
}

/// Creates a folder and its parents; the last one gets mode 0700 on Unix.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    create_private_dir_io(dir).map_err(|source| Error::CreateDir { dir: dir.to_path_buf(), source })
}

/// [`create_private_dir`] with the OS error as it is, for callers that word it themselves.
pub fn create_private_dir_io(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
