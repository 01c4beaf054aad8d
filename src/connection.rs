//! A connection: an authorised instance of a service under a unique link name, with its data
//! center or instance, scopes, status, and (sealed in the vault) its params and tokens.

use serde::Serialize;

use crate::link_name::LinkName;

/// Why a connection cannot be used: one variant, and one message, per condition (the CLI, the
/// invoker and the auth layer all raise these). Exit code 4.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionError {
    /// No connection has this link name.
    #[error(
        "unknown connection `{link}`: create it with `linkrun connection create {link} --service NAME` (see `linkrun connection list`)"
    )]
    Unknown {
        /// The link name.
        link: String,
    },
    /// Created but never authorised.
    #[error("connection `{link}` is not authorised yet: run `linkrun connection authorize {link}`")]
    NotAuthorized {
        /// The link name.
        link: String,
    },
    /// A refresh was refused: the user must authorise again.
    #[error("connection `{link}` needs re-authorisation: run `linkrun connection authorize {link}`")]
    NeedsReauth {
        /// The link name.
        link: String,
    },
    /// Revoked by the user.
    #[error("connection `{link}` was revoked: run `linkrun connection authorize {link}` to reconnect it")]
    Revoked {
        /// The link name.
        link: String,
    },
    /// Its service is no longer in the catalog.
    #[error(
        "connection `{link}` uses service `{service}`, which is no longer installed: add it again with `linkrun service add FILE.toml`"
    )]
    ServiceGone {
        /// The link name.
        link: String,
        /// The service's link name.
        service: String,
    },
}

impl ConnectionError {
    /// The error for a connection that is in `status` and so cannot be used; `None` when it is
    /// connected.
    pub fn for_status(link: &str, status: Status) -> Option<ConnectionError> {
        let link = link.to_string();
        match status {
            Status::Connected => None,
            Status::NotAuthorized => Some(ConnectionError::NotAuthorized { link }),
            Status::NeedsReauth => Some(ConnectionError::NeedsReauth { link }),
            Status::Revoked => Some(ConnectionError::Revoked { link }),
        }
    }

    /// The link name at fault.
    pub fn link(&self) -> &str {
        match self {
            ConnectionError::Unknown { link }
            | ConnectionError::NotAuthorized { link }
            | ConnectionError::NeedsReauth { link }
            | ConnectionError::Revoked { link }
            | ConnectionError::ServiceGone { link, .. } => link,
        }
    }
}

/// Connection status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::EnumString, strum::IntoStaticStr, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
        self.into()
    }

    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Status> {
        s.parse().ok()
    }
}

/// The non-secret part of a connection, as stored in the `connections` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionRecord {
    /// Unique link name.
    pub link_name: LinkName,
    /// The service's link name.
    pub service: LinkName,
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

    #[test]
    fn statuses_are_stored_and_shown_snake_case() {
        for (s, name) in [
            (Status::NotAuthorized, "not_authorized"),
            (Status::Connected, "connected"),
            (Status::NeedsReauth, "needs_reauth"),
            (Status::Revoked, "revoked"),
        ] {
            assert_eq!((s.as_str(), s.to_string(), Status::parse(name)), (name, name.to_string(), Some(s)));
            assert_eq!(serde_json::to_value(s).unwrap(), name);
        }
        assert_eq!(Status::parse("Connected"), None);
    }
}
