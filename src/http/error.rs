//! The error of a call: what scripts catch as `#{ kind, message, connection }`, and what every
//! layer of the send path (host rules, credentials, refresh, the sender) returns.

use super::retry::Attempts;

/// The kind of an invoke error, as scripts see it in `e.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum ErrorKind {
    /// DNS, connect, reset, protocol errors.
    Network,
    /// The request took longer than its timeout.
    Timeout,
    /// The response exceeded the size cap.
    TooLarge,
    /// Unknown, unauthorised, revoked or needs-re-authorisation connection.
    Connection,
    /// Credentials would go to a host they must not go to.
    HostRefused,
    /// The request map is wrong.
    BadRequest,
    /// The connection's rate budget (`[limits]`) would make the request wait longer than it may.
    RateLimited,
}

impl ErrorKind {
    /// The name scripts see.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An error raised by `invoke_url`; scripts catch it as `#{ kind, message, connection }`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct InvokeError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// One sentence naming the fault and the fix; never a secret.
    pub message: String,
    /// The link name involved, if any.
    pub connection: Option<String>,
    /// No byte of the answer came back (a connect error, or a timeout before the status line):
    /// the failure may be retried.
    pub unanswered: bool,
    /// Attempts made and the wait not slept, set by the retry loop.
    pub attempts: Attempts,
}

impl InvokeError {
    /// An error of any kind.
    pub fn new(kind: ErrorKind, message: String, connection: Option<&str>) -> InvokeError {
        InvokeError {
            kind,
            message,
            connection: connection.map(str::to_string),
            unanswered: false,
            attempts: Attempts::default(),
        }
    }

    /// A `bad_request` error.
    pub fn bad_request(message: String, connection: Option<&str>) -> InvokeError {
        InvokeError::new(ErrorKind::BadRequest, message, connection)
    }

    /// A `connection` error.
    pub fn connection(message: String, link: &str) -> InvokeError {
        InvokeError::new(ErrorKind::Connection, message, Some(link))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_named_snake_case() {
        let names: Vec<&str> = [
            ErrorKind::Network,
            ErrorKind::Timeout,
            ErrorKind::TooLarge,
            ErrorKind::Connection,
            ErrorKind::HostRefused,
            ErrorKind::BadRequest,
            ErrorKind::RateLimited,
        ]
        .into_iter()
        .map(ErrorKind::as_str)
        .collect();
        assert_eq!(
            names,
            ["network", "timeout", "too_large", "connection", "host_refused", "bad_request", "rate_limited"]
        );
    }
}
