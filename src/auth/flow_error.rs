//! Why `linkrun connection authorize` (or `revoke`) failed for an OAuth 1.0a or OAuth 2.0
//! connection: one variant, and one message, per condition. A fault of the service file or the
//! command line is a usage error (exit 2); a refusal of the provider, a bad redirect or a network
//! failure is a connection error (exit 4).

use super::oauth1_flow::problem_sentence;
use super::rfc6749::GrantError;
use crate::http::InvokeError;

/// An authorisation flow failed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// The service has no `[oauth1]` or `[oauth2]` table.
    #[error("service `{service}` has no `[{table}]` table")]
    NoTable {
        /// The service's link name.
        service: String,
        /// `oauth1` or `oauth2`.
        table: &'static str,
    },
    /// The service's `[oauth1]` table lacks one of the flow's URLs.
    #[error(
        "service `{service}` has no `{which}` in its `[oauth1]` table, so it cannot be authorised here: add it, or create the connection with --param token=... --param token_secret=..."
    )]
    NoFlowUrl {
        /// The service's link name.
        service: String,
        /// `request_token_url`, `authorize_url` or `access_token_url`.
        which: &'static str,
    },
    /// A URL of the service's `[oauth1]` table, once filled in, is not a URL.
    #[error("`{which}` `{url}` of service `{service}` is not a URL")]
    FlowUrlNotUrl {
        /// The service's link name.
        service: String,
        /// The table key.
        which: &'static str,
        /// The URL as filled in.
        url: String,
    },
    /// A URL of the service's `[oauth2]` table (`token_url`, `revoke_url`), once filled in, is
    /// not a URL.
    #[error("the {which} of service `{service}` is not a URL")]
    NotUrl {
        /// The service's link name.
        service: String,
        /// `token_url` or `revoke_url`.
        which: &'static str,
    },
    /// An OAuth 1.0a flow URL is plain HTTP to a host that is not loopback.
    #[error(
        "refusing to send the credentials of connection `{link}` over plain HTTP to `{host}`: the service's `{which}` must be https:// (plain HTTP only to loopback)"
    )]
    FlowUrlNotHttps {
        /// The link name.
        link: String,
        /// The URL's host.
        host: String,
        /// The table key.
        which: &'static str,
    },
    /// The OAuth 2.0 `token_url` is plain HTTP to a host that is not loopback.
    #[error(
        "refusing to send the client secret of connection `{link}` over plain HTTP to `{host}`: the service's token_url must be https:// (plain HTTP only to loopback)"
    )]
    TokenUrlNotHttps {
        /// The link name.
        link: String,
        /// The URL's host.
        host: String,
    },
    /// The connection's credentials cannot sign or build a request.
    #[error("{source}")]
    Credentials {
        /// The link name.
        link: String,
        /// Why.
        #[source]
        source: InvokeError,
    },
    /// A request of the OAuth 1.0a flow could not be sent.
    #[error("{source}; then run `linkrun connection authorize {link}` again")]
    Send {
        /// The link name.
        link: String,
        /// Why.
        #[source]
        source: InvokeError,
    },
    /// The provider answered with an `oauth_problem`.
    #[error("{}", problem_sentence(.problem, .link))]
    Problem {
        /// The link name.
        link: String,
        /// The `oauth_problem` value.
        problem: String,
    },
    /// The provider answered a request of the OAuth 1.0a flow with a failure and no
    /// `oauth_problem`.
    #[error(
        "the {what} request of connection `{link}` failed with HTTP {status}: check the service's `[oauth1]` URLs and the consumer key and secret, then run `linkrun connection authorize {link}` again"
    )]
    ProviderHttp {
        /// The link name.
        link: String,
        /// `temporary-credential` or `token`.
        what: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// `--verifier` without a pending authorisation.
    #[error(
        "connection `{link}` has no authorisation waiting for a verifier: run `linkrun connection authorize {link} --no-browser` first"
    )]
    NoPendingVerifier {
        /// The link name.
        link: String,
    },
    /// The loopback listener for the redirect cannot be bound.
    #[error("cannot listen on 127.0.0.1:{port} for the redirect ({source}): pass another --port")]
    Listen {
        /// The port asked for.
        port: u16,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No redirect arrived in time.
    #[error(
        "no redirect from the provider within {secs} s: run `linkrun connection authorize {link}` again and approve the request in the browser"
    )]
    NoRedirect {
        /// The link name.
        link: String,
        /// How long linkrun waited.
        secs: u64,
    },
    /// The OAuth 1.0a redirect carried another `oauth_token`.
    #[error(
        "the redirect carried another oauth_token than the one linkrun asked for: run `linkrun connection authorize {link}` again"
    )]
    TokenMismatch {
        /// The link name.
        link: String,
    },
    /// The OAuth 1.0a redirect carried no `oauth_verifier`.
    #[error("the redirect carried no oauth_verifier: run `linkrun connection authorize {link}` again")]
    NoVerifier {
        /// The link name.
        link: String,
    },
    /// The verifier cannot be read from the terminal.
    #[error("cannot read the verifier from the terminal: {source}")]
    ReadVerifier {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The grant asked for is not one the service allows.
    #[error("service `{service}` does not allow the {grant} grant: use --grant with one of {allowed}")]
    GrantNotAllowed {
        /// The service's link name.
        service: String,
        /// The grant asked for.
        grant: String,
        /// The allowed grants, comma-separated.
        allowed: String,
    },
    /// An OAuth 2.0 connection marked connected holds no access token.
    #[error("connection `{link}` has no access token: run `linkrun connection authorize {link}`")]
    NoAccessToken {
        /// The link name.
        link: String,
    },
    /// The grant is none linkrun knows.
    #[error("unknown grant `{grant}`: use code, password or client_credentials")]
    UnknownGrant {
        /// The grant asked for.
        grant: String,
    },
    /// The code grant without a code needs the service's `authorize_url`.
    #[error(
        "service `{service}` has no `authorize_url`: pass --code CODE, or use --grant password or client_credentials"
    )]
    NoAuthorizeUrl {
        /// The service's link name.
        service: String,
    },
    /// The password grant needs the connection's `username` and `password` params.
    #[error(
        "the password grant needs the `username` and `password` params of connection `{link}`: recreate it with --param username=... --param password"
    )]
    NoPasswordParams {
        /// The link name.
        link: String,
    },
    /// The redirect carried `error=`.
    #[error(
        "the provider did not authorise connection `{link}` ({error}{}): run `linkrun connection authorize {link}` again and approve the request",
        .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    Denied {
        /// The link name.
        link: String,
        /// The redirect's `error`.
        error: String,
        /// The redirect's `error_description`, if any.
        description: Option<String>,
    },
    /// The redirect's `state` is not the one linkrun sent.
    #[error(
        "the redirect carried a wrong `state`, so it may not answer linkrun's request: run `linkrun connection authorize {link}` again"
    )]
    StateMismatch {
        /// The link name.
        link: String,
    },
    /// The redirect carried no `state`.
    #[error(
        "the redirect carried no `state`, so it cannot be matched to linkrun's request: run `linkrun connection authorize {link}` again"
    )]
    NoState {
        /// The link name.
        link: String,
    },
    /// The redirect carried no `code`.
    #[error("the redirect carried no `code`: run `linkrun connection authorize {link}` again")]
    NoCode {
        /// The link name.
        link: String,
    },
    /// The token endpoint refused the grant, or could not be used.
    #[error("{}", .source.sentence(.link, .service, &format!("linkrun connection authorize {}", .link)))]
    Refused {
        /// The link name.
        link: String,
        /// The service's display name.
        service: String,
        /// The provider's answer.
        #[source]
        source: GrantError,
    },
}

impl FlowError {
    /// The process exit code: 2 for a fault of the service or the command line, 4 for the
    /// provider's refusal, a bad redirect or a network failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            FlowError::NoTable { .. }
            | FlowError::NoFlowUrl { .. }
            | FlowError::FlowUrlNotUrl { .. }
            | FlowError::NotUrl { .. }
            | FlowError::NoPendingVerifier { .. }
            | FlowError::Listen { .. }
            | FlowError::ReadVerifier { .. }
            | FlowError::GrantNotAllowed { .. }
            | FlowError::UnknownGrant { .. }
            | FlowError::NoAuthorizeUrl { .. }
            | FlowError::NoPasswordParams { .. } => 2,
            FlowError::FlowUrlNotHttps { .. }
            | FlowError::TokenUrlNotHttps { .. }
            | FlowError::Credentials { .. }
            | FlowError::Send { .. }
            | FlowError::Problem { .. }
            | FlowError::ProviderHttp { .. }
            | FlowError::NoRedirect { .. }
            | FlowError::TokenMismatch { .. }
            | FlowError::NoVerifier { .. }
            | FlowError::Denied { .. }
            | FlowError::StateMismatch { .. }
            | FlowError::NoState { .. }
            | FlowError::NoCode { .. }
            | FlowError::NoAccessToken { .. }
            | FlowError::Refused { .. } => 4,
        }
    }
}
