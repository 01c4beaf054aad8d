//! The error type every command returns, and the exit codes of the CLI contract.
//!
//! Exit codes: 0 success; 1 the script failed; 2 usage error (bad flag, bad TOML, bad link name);
//! 3 the vault cannot be opened; 4 a connection problem; 5 to 125 a script's own `exit(n)`. Each
//! module has its own error enum (the flows' [`FlowError`], the scripts' [`ScriptError`], the
//! connections' [`ConnectionError`], the services' [`ServiceError`], the vault's [`VaultError`],
//! ...); they all convert into [`Error`], which knows its exit code and keeps the enum, so the
//! `#[source]` chain survives. Messages are one sentence that names the thing at fault and says
//! how to fix it, and never contain a secret.

use crate::auth::flow_error::FlowError;
use crate::catalog::CatalogError;
use crate::cli::connection_error::ConnectionCmdError;
use crate::connection::ConnectionError;
use crate::script::ScriptError;
use crate::service::ServiceError;
use crate::vault::VaultError;

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad flag or flag combination of a command in `src/cli/` that has no better home: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The vault cannot be opened or a sealed value cannot be read: exit 3.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Unknown, unauthorised, revoked connection, or its service is gone: exit 4.
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    /// A `linkrun connection ...` command line is wrong (exit 2) or its test failed (exit 4).
    #[error(transparent)]
    ConnectionCmd(#[from] ConnectionCmdError),
    /// An OAuth authorisation or revocation flow failed: exit 2 or 4 (see
    /// [`FlowError::exit_code`]).
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// Neither `--home`, `LINKRUN_HOME`, `XDG_DATA_HOME` nor `HOME` names a home folder: exit 2.
    #[error("cannot find a home folder for linkrun: pass --home DIR or set LINKRUN_HOME")]
    NoHome,
    /// linkrun's home folder (or one inside it) cannot be created: exit 1.
    #[error("cannot create the folder `{}`: {source}; check its permissions or pass another --home", .dir.display())]
    CreateDir {
        /// The folder.
        dir: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// I/O on linkrun's own files, folders, terminal or runtime failed: exit 1.
    #[error("{what}: {source}")]
    Io {
        /// What linkrun was doing, e.g. "cannot read the folder `x`".
        what: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `linkrun run` failed: exit 1, 2 or 4 (see [`ScriptError::exit_code`]).
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The demo did not go as expected: exit 1.
    #[error("the demo did not go as expected: see the steps above")]
    DemoFailed,
    /// A service definition is wrong (bad TOML, a bad field, a conflict between two files): exit 2.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A service is not in the catalog: exit 2.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// `linkrun.toml` cannot be read or is not valid: exit 2.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The script called `exit(n)` (n is 1 or 5 to 125): exit with n, printing nothing.
    #[error("the script exited with {0}")]
    Exit(i32),
    /// The run records cannot be read or written: exit 3, like the vault.
    #[error(transparent)]
    Store(#[from] crate::runs::StoreError),
    /// stdout was closed by the reader (`| head`): exit quietly.
    #[error("stdout is closed")]
    StdoutClosed,
    /// The emulators of `linkrun sandbox` and `linkrun demo` cannot be set up, or a sync run
    /// stopped (an API failure it cannot go past): exit 1.
    #[error("{0}")]
    Other(String),
    /// A sync's connection cannot be used (unknown, not authorised, needs re-authorisation): exit 4.
    #[error("{0}")]
    SyncConnection(String),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::NoHome | Error::Service(_) | Error::Catalog(_) | Error::Config(_) => 2,
            Error::Vault(e) => e.exit_code(),
            Error::Connection(_) | Error::SyncConnection(_) => 4,
            Error::ConnectionCmd(e) => e.exit_code(),
            Error::Flow(e) => e.exit_code(),
            Error::Io { .. } | Error::CreateDir { .. } => 1,
            Error::Script(e) => e.exit_code(),
            Error::DemoFailed | Error::Other(_) => 1,
            Error::StdoutClosed => 0,
            Error::Exit(n) => *n,
            Error::Store(_) => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::auth::rfc6749::GrantError;

    #[test]
    fn a_flow_refusal_keeps_the_grant_error_as_its_source_and_exits_4() {
        let grant = GrantError { code: "invalid_grant".into(), description: None, status: Some(400) };
        let e = Error::from(FlowError::Refused { link: "crm".into(), service: "Zoho CRM".into(), source: grant });
        assert_eq!(e.exit_code(), 4);
        assert_eq!(
            e.to_string(),
            "the provider refused the grant of connection `crm` (invalid_grant): it expired, was revoked or was already used; run `linkrun connection authorize crm`"
        );
        // `Error::Flow` is transparent: its source is the flow error's source.
        let source = e.source().map(|s| s.to_string());
        assert_eq!(source.as_deref(), Some("the token endpoint answered `invalid_grant`"));
    }

    #[test]
    fn inner_enums_decide_the_exit_code() {
        let usage = FlowError::UnknownGrant { grant: "implicit".into() };
        assert_eq!(Error::from(usage).exit_code(), 2);
        let uncaught = ScriptError::UncaughtConnection { name: "s".into(), at: "line 1".into(), message: "m".into() };
        assert_eq!(Error::from(uncaught).exit_code(), 4);
        let unreadable = ScriptError::Unreadable { path: "x.rhai".into(), reason: "no such file".into() };
        assert_eq!(Error::from(unreadable).exit_code(), 2);
        assert_eq!(Error::from(ScriptError::TimeLimit { name: "s".into(), secs: 1.5 }).exit_code(), 1);
        let gone = ConnectionError::Unknown { link: "c".into() };
        assert_eq!(Error::from(gone).exit_code(), 4);
        assert_eq!(Error::NoHome.exit_code(), 2);
    }

    #[test]
    fn io_errors_name_what_failed_and_keep_the_os_error() {
        let e = Error::Io { what: "cannot read the folder `x`".into(), source: std::io::ErrorKind::NotFound.into() };
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().starts_with("cannot read the folder `x`: "), "{e}");
        assert!(e.source().is_some());
    }
}
