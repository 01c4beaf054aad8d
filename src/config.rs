//! `linkrun.toml` in the home folder: settings of the whole installation (as opposed to a
//! service's or a connection's). A missing file means every default; an unknown key or a bad value
//! is an error naming the file and the key, exit 2, so a typo never silently changes nothing.
//!
//! ```toml
//! # ~/.local/share/linkrun/linkrun.toml
//! dc_portable_urls = true        # absolute URLs for another Zoho data center follow the connection
//!
//! [deluge]
//! time_zone = "Asia/Kolkata"     # the org's time zone of zoho.currenttime, now, today (IANA name)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::home::Home;

/// The largest `linkrun.toml` read (1 MiB, like a service file).
pub const MAX_CONFIG_SIZE: u64 = 1024 * 1024;

/// The settings of `linkrun.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Whether an absolute URL on another data center's API host of a connection's service is sent
    /// to the connection's own data center (default true); a service may say the same for itself.
    pub dc_portable_urls: Option<bool>,
    /// `[deluge]`: how Deluge functions (and the Deluge vocabulary of Rhai scripts) behave.
    #[serde(default)]
    pub deluge: DelugeConfig,
    /// `[runs]`: how long run records are kept.
    #[serde(default)]
    pub runs: RunsConfig,
    /// `[serve]`: the server's security posture.
    #[serde(default)]
    pub serve: ServeConfig,
    /// `[events]`: who hears of events that concern the whole installation.
    #[serde(default)]
    pub events: EventsConfig,
}

/// The `[serve]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Let scripts run by serve reach private, link-local and loopback addresses with requests
    /// that go through no connection (default false: refused, against SSRF).
    #[serde(default)]
    pub allow_private_network: bool,
}

/// The `[events]` table: for each event, handlers — a URL (POSTed the event as JSON) or a
/// script path (relative to the home; run with the event as `input`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// A connection turned `needs_reauth` (once per change).
    #[serde(default)]
    pub connection_needs_reauth: Vec<String>,
}

/// The `[runs]` table: retention of the run records. Ended runs beyond the newest `keep` or
/// older than `max_age_days` are deleted, in batches, now and then after a run.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsConfig {
    /// How many runs to keep (default [`RunsConfig::DEFAULT_KEEP`]).
    pub keep: Option<u64>,
    /// How many days to keep a run (default [`RunsConfig::DEFAULT_MAX_AGE_DAYS`]).
    pub max_age_days: Option<u64>,
}

impl RunsConfig {
    /// Runs kept when `keep` is not set.
    pub const DEFAULT_KEEP: u64 = 100_000;
    /// Days a run is kept when `max_age_days` is not set.
    pub const DEFAULT_MAX_AGE_DAYS: u64 = 90;
}

/// The `[deluge]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelugeConfig {
    /// The org's time zone, an IANA name such as `Europe/Berlin`; default the machine's.
    pub time_zone: Option<String>,
}

/// Why `linkrun.toml` cannot be used: exit 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read `{}`: {reason}; fix its permissions or remove it", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The OS error or the size problem, worded.
        reason: String,
    },
    /// The file is not valid TOML for these settings.
    #[error("`{}` is not valid: {message}; fix the file (see the README's `linkrun.toml` section)", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// TOML's own message, naming the line and the key.
        message: String,
    },
}

impl Config {
    /// The file's path in `home`.
    pub fn path(home: &Home) -> PathBuf {
        home.root().join("linkrun.toml")
    }

    /// Reads `linkrun.toml` of `home`; a missing file is every default.
    pub fn load(home: &Home) -> Result<Config, ConfigError> {
        Config::load_file(&Config::path(home))
    }

    /// Reads a settings file; a missing file is every default.
    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        if !path.exists() {
            return Ok(Config::default());
        }
        let text = crate::files::read_text_capped(path, MAX_CONFIG_SIZE)
            .map_err(|e| ConfigError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid { path: path.to_path_buf(), message })
    }

    /// Parses the text of a settings file (the message is TOML's, with line and key).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', " "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_are_defaults_and_unknown_keys_are_named() {
        let c = Config::parse("").unwrap();
        assert!(c.dc_portable_urls.is_none() && c.deluge.time_zone.is_none());
        let c = Config::parse("dc_portable_urls = false\n[deluge]\ntime_zone = \"Asia/Kolkata\"\n").unwrap();
        assert_eq!(c.dc_portable_urls, Some(false));
        assert_eq!(c.deluge.time_zone.as_deref(), Some("Asia/Kolkata"));
        let e = Config::parse("[deluge]\ntimezone = \"UTC\"\n").unwrap_err();
        assert!(e.contains("timezone"), "{e}");
    }
}
