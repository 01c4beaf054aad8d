//! A connection: an authorised instance of a service under a unique link name, with its data
//! center or instance, scopes, status, and (sealed in the vault) its params and tokens.

use std::fmt;

use serde::Serialize;

/// Connection status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created; an OAuth connection still needs `connection authorize`.
    NotAuthorized,
    /// Usable.
    Connected,
    /// A refresh failed: the user must authorise again.
    NeedsReauth,
    /// Revoked by the user.
    Revoked,
}

impl Status {
    /// The stored and displayed form.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotAuthorized => "not_authorized",
            Status::Connected => "connected",
            Status::NeedsReauth => "needs_reauth",
            Status::Revoked => "revoked",
        }
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Status> {
        [Status::NotAuthorized, Status::Connected, Status::NeedsReauth, Status::Revoked]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The non-secret part of a connection, as stored in the `connections` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionRecord {
    /// Unique link name.
    pub link_name: String,
    /// The service's link name.
    pub service: String,
    /// Chosen data center.
    pub data_center: Option<String>,
    /// Chosen instance.
    pub instance: Option<String>,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Status.
    pub status: Status,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Vault field name of a param.
pub fn param_field(key: &str) -> String {
    format!("param:{key}")
}

/// Masks a secret for display: nothing of a value shorter than 12 characters, at most its last 2
/// characters otherwise. The mask has a fixed length so it does not tell the value's length.
pub fn mask(value: &str) -> String {
    let n = value.chars().count();
    if n >= 12 {
        let tail: String = value.chars().skip(n - 2).collect();
        format!("********{tail}")
    } else {
        "********".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_short_secrets_entirely_and_long_ones_but_two() {
        assert_eq!(mask("short"), "********");
        assert_eq!(mask("elevenchars"), "********");
        assert_eq!(mask("twelve_chars"), "********rs");
        assert_eq!(mask(&"x".repeat(40)), "********xx");
    }
}
