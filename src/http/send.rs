//! The one send path: every outgoing request (script calls, token requests, revocations, the
//! OAuth 1.0a flow's calls) goes through [`send`], with the same timeout, size cap, redirect
//! policy and host rules. Redirects are followed here, hop by hop, so that the caller's
//! [`Credentials`] layer decides per hop what may be sent; a hop to another origin never carries
//! the script's `Authorization`, `Proxy-Authorization` or `Cookie` headers either.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;

use super::client::Clients;
use super::error::{ErrorKind, InvokeError};
use super::request::{ALWAYS_SENSITIVE, Body, Outgoing, Response};
use super::rules::{is_loopback, redact_url, same_origin, strip_userinfo};

/// Default per-request timeout: Deluge's 40 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(40);
/// Default response-size cap of script calls: 10 MiB.
pub const DEFAULT_MAX_RESPONSE: usize = 10 * 1024 * 1024;
/// Response-size cap of the short exchanges of authorisation flows (token, revoke): 1 MiB.
pub const FLOW_MAX_RESPONSE: usize = 1024 * 1024;
/// Most redirects followed.
pub const MAX_REDIRECTS: usize = 10;

/// How one request is sent.
#[derive(Debug, Clone)]
pub struct SendOptions<'a> {
    /// The whole exchange, redirects included, must end within this.
    pub timeout: Duration,
    /// Largest body read.
    pub max_response: usize,
    /// Redirects followed; with 0 a redirect is the answer.
    pub max_redirects: usize,
    /// The request itself carries secrets (a token request, a revocation): refused over plain
    /// HTTP to a host that is not loopback, before anything is sent.
    pub secret_bearing: bool,
    /// The connection, for error messages.
    pub link: Option<&'a str>,
    /// Query keys whose values are redacted in traces and messages.
    pub redact: &'a [String],
    /// Trace each hop on stderr (method, redacted URL, status, time).
    pub verbose: bool,
    /// Refuse private, link-local and loopback addresses on every hop (serve's scripts, for
    /// requests through no connection: SSRF); names are resolved by a resolver that drops such
    /// addresses, so a name that changes its answer between the check and the connect gains
    /// nothing.
    pub public_only: bool,
    /// Set when the status line of an answer came back, so that a caller's own timeout can tell
    /// a request that got no answer (retryable) from one cut off while its body was read.
    pub answered: Option<&'a AtomicBool>,
}

impl Default for SendOptions<'_> {
    fn default() -> Self {
        SendOptions {
            timeout: DEFAULT_TIMEOUT,
            max_response: DEFAULT_MAX_RESPONSE,
            max_redirects: MAX_REDIRECTS,
            secret_bearing: false,
            link: None,
            redact: &[],
            verbose: false,
            public_only: false,
            answered: None,
        }
    }
}

impl SendOptions<'_> {
    /// The options of an authorisation flow's exchange: no redirects (a token endpoint that
    /// redirects is refused by the caller, never followed with the client secret), 1 MiB.
    pub fn flow() -> SendOptions<'static> {
        SendOptions { max_response: FLOW_MAX_RESPONSE, max_redirects: 0, secret_bearing: true, ..Default::default() }
    }
}

/// The layer that puts a connection's credentials on each hop (the auth layer implements it).
pub trait Credentials {
    /// Sets the credentials on `wire`, a hop to `wire.url`: `first` is the request as made,
    /// `same_origin` whether this hop goes to the first one's origin. An implementation that
    /// must not send them on this hop leaves `wire` as it is.
    fn apply(&self, wire: &mut Outgoing, first: bool, same_origin: bool) -> Result<(), InvokeError>;
}

/// No credentials: the request goes as it is.
#[derive(Debug, Clone, Copy)]
pub struct NoCredentials;

impl Credentials for NoCredentials {
    fn apply(&self, _: &mut Outgoing, _: bool, _: bool) -> Result<(), InvokeError> {
        Ok(())
    }
}

/// Sends `first` and follows its redirects, within the options' timeout and size cap.
pub async fn send(
    clients: &Clients,
    first: Outgoing,
    opts: &SendOptions<'_>,
    credentials: &dyn Credentials,
) -> Result<Response, InvokeError> {
    if opts.secret_bearing && first.url.scheme() != "https" && !is_loopback(first.url.host_str().unwrap_or_default()) {
        return Err(InvokeError::new(
            ErrorKind::HostRefused,
            format!(
                "refusing to send secrets over plain HTTP to `{}`: use an https:// URL (plain HTTP is allowed only to 127.0.0.1, ::1 and localhost)",
                first.url.host_str().unwrap_or_default()
            ),
            opts.link,
        ));
    }
    let shown = redact_url(&first.url, opts.redact);
    let answered = AtomicBool::new(false);
    let flag = opts.answered.unwrap_or(&answered);
    match tokio::time::timeout(opts.timeout, follow(clients, first, opts, credentials, flag)).await {
        Ok(r) => r,
        Err(_) => Err(timed_out(&shown, opts.timeout, opts.link, !flag.load(Ordering::Relaxed))),
    }
}

/// The error of a request that took longer than `timeout`; `unanswered` when no status line had
/// come back.
pub fn timed_out(shown: &str, timeout: Duration, link: Option<&str>, unanswered: bool) -> InvokeError {
    InvokeError {
        unanswered,
        ..InvokeError::new(
            ErrorKind::Timeout,
            format!(
                "the request to `{shown}` took longer than {} s: raise `timeout` in the request, or check the server",
                fmt_secs(timeout)
            ),
            link,
        )
    }
}

async fn follow(
    clients: &Clients,
    first: Outgoing,
    opts: &SendOptions<'_>,
    credentials: &dyn Credentials,
    answered: &AtomicBool,
) -> Result<Response, InvokeError> {
    let origin = first.url.clone();
    let origin_host = origin.host_str().unwrap_or_default().to_ascii_lowercase();
    let link = opts.link;
    let mut req = first;
    for hop in 0..=opts.max_redirects {
        let mut wire = req.clone();
        // Same origin means scheme, host and port: another port on the same host is another
        // server, and an https-to-http hop would send everything in clear.
        let same = same_origin(&wire.url, &origin);
        if !same {
            wire.headers.retain(|(n, _)| !ALWAYS_SENSITIVE.contains(&n.to_ascii_lowercase().as_str()));
        }
        credentials.apply(&mut wire, hop == 0, same)?;
        let started = Instant::now();
        // Redacting is only needed for a trace or an error message: do it lazily.
        let shown = || redact_url(&wire.url, opts.redact);
        let client = if opts.public_only {
            crate::http::rules::check_public(&wire.url, link).await?;
            clients.for_url_public(&wire.url)
        } else {
            clients.for_url(&wire.url)
        }
        .map_err(|e| InvokeError::new(ErrorKind::Network, e.to_string(), link))?;
        let mut resp = wire.request(client).send().await.map_err(|e| InvokeError {
            // Nothing of an answer came back: a connect error or a timeout is retryable.
            unanswered: e.is_connect() || e.is_timeout(),
            ..network_error(&e, &shown(), link)
        })?;
        answered.store(true, Ordering::Relaxed);
        let status = resp.status().as_u16();
        if opts.verbose {
            eprintln!(
                "linkrun: {} {} -> {} ({:.1} ms)",
                wire.method,
                shown(),
                status,
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        let location = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_string);
        if let (true, Some(loc), true) =
            (matches!(status, 301 | 302 | 303 | 307 | 308), location, opts.max_redirects > 0)
        {
            let mut next = req.url.join(&loc).map_err(|_| {
                InvokeError::new(ErrorKind::Network, format!("`{}` redirected to an invalid location", shown()), link)
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(InvokeError::new(
                    ErrorKind::Network,
                    format!("`{}` redirected to a non-http URL", shown()),
                    link,
                ));
            }
            strip_userinfo(&mut next);
            req.url = next;
            if status == 303 || (matches!(status, 301 | 302) && req.method == Method::POST) {
                req.method = Method::GET;
                req.body = Body::Empty;
                req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
            }
            continue;
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for (name, value) in resp.headers() {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.iter_mut().find(|(n, _)| n == name.as_str()) {
                Some((_, existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&v);
                }
                None => headers.push((name.as_str().to_string(), v)),
            }
        }
        let cap = opts.max_response;
        let too_large = || {
            InvokeError::new(
                ErrorKind::TooLarge,
                format!(
                    "the response from `{}` is larger than {}: ask for less (paging, fewer fields) or fetch it in parts",
                    shown(),
                    fmt_bytes(cap)
                ),
                link,
            )
        };
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        if wire.method != Method::HEAD {
            while let Some(chunk) = resp.chunk().await.map_err(|e| network_error(&e, &shown(), link))? {
                if body.len() + chunk.len() > cap {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
        }
        return Ok(Response { status, headers, body, attempts: Default::default() });
    }
    Err(InvokeError::new(
        ErrorKind::Network,
        format!("too many redirects (more than {}) starting from `{origin_host}`: check the URL", opts.max_redirects),
        link,
    ))
}

fn network_error(e: &reqwest::Error, shown: &str, link: Option<&str>) -> InvokeError {
    let kind = if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Network };
    // reqwest's own message embeds the full URL (query string included): describe the cause
    // from the source chain instead, and show the redacted URL.
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        cause = if e.is_connect() { "cannot connect".into() } else { "the connection failed".into() };
    }
    InvokeError::new(
        kind,
        format!("the request to `{shown}` failed: {cause}; check that the server is up and the URL is right"),
        link,
    )
}

/// Seconds as people write them: `40`, `1.5`.
pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 { format!("{}", s as u64) } else { format!("{s:.1}") }
}

/// A size as people write it: `10 MiB`, `500 bytes`.
pub fn fmt_bytes(n: usize) -> String {
    if n.is_multiple_of(1024 * 1024) { format!("{} MiB", n / (1024 * 1024)) } else { format!("{n} bytes") }
}
