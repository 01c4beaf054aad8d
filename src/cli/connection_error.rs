//! Why a `linkrun connection ...` command refused its command line or failed its test: one
//! variant, and one message, per condition. Usage problems are exit 2; a failed
//! `connection test` (its request, or a check that is not permitted) is exit 4.

use crate::http::InvokeError;

/// A `linkrun connection ...` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionCmdError {
    /// `--timeout` of `connection authorize` is out of range.
    #[error("`--timeout {timeout}` is out of range: give 1 to 86400 seconds to wait for the redirect")]
    TimeoutOutOfRange {
        /// The value given.
        timeout: u64,
    },
    /// The link name breaks the link-name rule.
    #[error("invalid link name `{link}`: {rule}")]
    InvalidLinkName {
        /// The link name given.
        link: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// `connection limits` was given values a rate budget cannot have.
    #[error("the limits given for connection `{link}` are wrong: {message}")]
    BadLimits {
        /// The link name.
        link: String,
        /// The end of a sentence naming the key and the fix.
        message: String,
    },
    /// A connection with this link name exists already.
    #[error(
        "connection `{link}` already exists: link names are unique, so choose another or delete it first with `linkrun connection delete {link} --yes`"
    )]
    Duplicate {
        /// The link name.
        link: String,
    },
    /// `--param` names a param the service does not declare.
    #[error("service `{service}` has no param `{key}`: its params are {known}")]
    UnknownParam {
        /// The service's link name.
        service: String,
        /// The param given.
        key: String,
        /// The declared params, in backticks and comma-separated (`none` when there are none).
        known: String,
    },
    /// A `--param-env` is not `KEY=ENVVAR`.
    #[error("`{raw}` is not KEY=ENVVAR: write --param-env api_key=MY_API_KEY")]
    NotKeyEnvVar {
        /// The argument as given.
        raw: String,
    },
    /// The environment variable of a `--param-env` is unset or empty.
    #[error(
        "environment variable `{var}` (for param `{key}`) is not set or empty: export it, or pass --param {key}=VALUE"
    )]
    EnvVarUnset {
        /// The variable.
        var: String,
        /// The param it is for.
        key: String,
    },
    /// `--param KEY` without a value and no terminal to ask on.
    #[error(
        "--param {key} asks for its value on a terminal, and there is none: pass --param {key}=VALUE or --param-env {key}=ENVVAR"
    )]
    NoTerminalForParam {
        /// The param.
        key: String,
    },
    /// A required param is missing and there is no terminal to ask on.
    #[error(
        "missing required param `{key}` ({label}) for service `{service}`: pass --param {key}=VALUE or --param-env {key}=ENVVAR"
    )]
    MissingParam {
        /// The param.
        key: String,
        /// Its label.
        label: String,
        /// The service's link name.
        service: String,
    },
    /// A required param was given empty.
    #[error("param `{key}` ({label}) cannot be empty: give it a value")]
    EmptyParam {
        /// The param.
        key: String,
        /// Its label.
        label: String,
    },
    /// A param's value cannot be read from the terminal.
    #[error("cannot read `{key}` from the terminal: {source}")]
    ReadParam {
        /// The param.
        key: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `--dc` for a service without data centers.
    #[error("service `{service}` has no data centers, so --dc {dc} does not apply: leave it out")]
    NoDataCenters {
        /// The service's link name.
        service: String,
        /// The data center given.
        dc: String,
    },
    /// `--dc` names a data center the service does not have.
    #[error("service `{service}` has no data center `{dc}`: use one of {known}")]
    UnknownDataCenter {
        /// The service's link name.
        service: String,
        /// The data center given.
        dc: String,
        /// The service's data centers, in backticks and comma-separated.
        known: String,
    },
    /// The service needs `--dc` and has no default.
    #[error("service `{service}` needs a data center: pass --dc with one of {known}")]
    NeedsDataCenter {
        /// The service's link name.
        service: String,
        /// The service's data centers, in backticks and comma-separated.
        known: String,
    },
    /// `--param hostname` without a value.
    #[error(
        "--param hostname needs its value: pass --param hostname=HOST, e.g. --param hostname=servicenow.example.com"
    )]
    HostnameNeedsValue,
    /// The `hostname` param is not a DNS host name.
    #[error(
        "`{hostname}` is not a host name: give the custom domain alone, like --param hostname=servicenow.example.com (no scheme, port or path)"
    )]
    NotHostName {
        /// The value given.
        hostname: String,
    },
    /// Both `--instance` and `--param hostname`.
    #[error(
        "give either --instance {instance} or --param hostname={hostname}, not both: the host name replaces the instance"
    )]
    InstanceAndHostname {
        /// The instance given.
        instance: String,
        /// The host name given.
        hostname: String,
    },
    /// The instance name is not valid.
    #[error(
        "instance name `{instance}` is not valid: use letters, digits and dashes only (the part before .service-now.com){}",
        if *.custom_domain { "; for a custom domain pass --param hostname=HOST instead" } else { "" }
    )]
    InvalidInstance {
        /// The instance given.
        instance: String,
        /// Whether the service takes a custom domain (`hostname`) instead.
        custom_domain: bool,
    },
    /// `--instance` for a service not addressed by instance.
    #[error("service `{service}` is not addressed by instance, so --instance {instance} does not apply: leave it out")]
    NotByInstance {
        /// The service's link name.
        service: String,
        /// The instance given.
        instance: String,
    },
    /// The service needs `--instance`.
    #[error("service `{service}` needs an instance: pass --instance NAME (its URL is `{url}`){also}")]
    NeedsInstance {
        /// The service's link name.
        service: String,
        /// Its instance URL template.
        url: String,
        /// The other ways, starting with `, or ` (empty when there are none).
        also: String,
    },
    /// `connection test` for a service without a `[test]` request.
    #[error(
        "service `{service}` has no `[test]` request: add one (url and type) to its TOML, or try the connection from a script"
    )]
    NoTestRequest {
        /// The service's link name.
        service: String,
    },
    /// The test request could not be sent, or its answer read (exit 4).
    #[error("{source}")]
    TestNotSent {
        /// The link name.
        link: String,
        /// Why.
        #[source]
        source: InvokeError,
    },
    /// The test request was answered with a failure status (exit 4).
    #[error(
        "connection `{link}` does not work: {method} {url} answered HTTP {status}; check its params, or run `linkrun connection authorize {link}`"
    )]
    TestFailed {
        /// The link name.
        link: String,
        /// The request's method.
        method: String,
        /// The request's URL as the service writes it.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The test worked but some `[[checks]]` were not permitted (exit 4); the lines (or the
    /// `checks` of `--json`) above say which and what to grant.
    #[error(
        "connection `{link}` works, but {refused} of its {total} checks did not pass ({names}): grant what each `fix` above says (a `failed` check says what went wrong instead), then run `linkrun connection test {link}` again"
    )]
    ChecksRefused {
        /// The link name.
        link: String,
        /// How many checks were not permitted.
        refused: usize,
        /// How many checks were made.
        total: usize,
        /// Each one as `` `NAME` STATUS ``, comma-separated.
        names: String,
    },
    /// `connection revoke` of a connection whose auth has no tokens.
    #[error(
        "connection `{link}` uses {kind} auth, which has nothing to revoke: delete it with `linkrun connection delete {link} --yes`"
    )]
    NothingToRevoke {
        /// The link name.
        link: String,
        /// The auth kind.
        kind: String,
    },
    /// `connection delete` without `--yes` and no terminal.
    #[error("deleting connection `{link}` needs confirmation and there is no terminal: pass --yes")]
    NeedsConfirmation {
        /// The link name.
        link: String,
    },
    /// The confirmation cannot be read from the terminal.
    #[error("cannot read the answer: {source}")]
    ReadAnswer {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl ConnectionCmdError {
    /// The process exit code: 4 for a failed `connection test` or check, 2 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConnectionCmdError::TestNotSent { .. }
            | ConnectionCmdError::TestFailed { .. }
            | ConnectionCmdError::ChecksRefused { .. } => 4,
            _ => 2,
        }
    }
}
