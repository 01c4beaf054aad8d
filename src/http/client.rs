//! The HTTP clients of one process, built lazily and shared by every request (keep-alive pool).
//!
//! Two clients, because building one that verifies TLS loads the system's root certificates
//! (about 5 ms), which a run that only calls plain-http loopback servers should not pay: the plain
//! client has an empty root store and only ever sees `http://` URLs; the TLS client is built on the
//! first `https://` request. Redirects are followed by [`super::send()`], not by reqwest, so that
//! credentials are applied per hop.
//!
//! Proxies come from the environment, as curl reads them: `HTTP_PROXY` for `http://` URLs,
//! `HTTPS_PROXY` for `https://` ones, `ALL_PROXY` for both when the other is unset (lower-case
//! names too), and `NO_PROXY` lists hosts, domains and networks that go direct. Loopback
//! (`localhost`, `127.0.0.0/8`, `::1`) never goes through a proxy: plain HTTP with credentials is
//! allowed there only because it never leaves the machine. Under CGI (`REQUEST_METHOD` set)
//! `HTTP_PROXY` may come from a request header, so no proxy is used.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::{Client, NoProxy, Proxy};
use url::Url;

/// Connect timeout (Deluge's invokeAPI uses 10 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lazily built clients for plain HTTP and for HTTPS; clones share them (one pool per process).
#[derive(Default, Clone)]
pub struct Clients {
    plain: Arc<OnceLock<Client>>,
    tls: Arc<OnceLock<Client>>,
    public: Arc<OnceLock<Client>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("plain", &self.plain.get().is_some())
            .field("tls", &self.tls.get().is_some())
            .field("public", &self.public.get().is_some())
            .finish()
    }
}

/// Hosts that never go through a proxy, whatever `NO_PROXY` says.
const NEVER_PROXIED: &str = "localhost,127.0.0.0/8,::1";

/// The first of `names` set to a non-empty value, with the name.
fn env_first(names: &[&'static str]) -> Option<(&'static str, String)> {
    names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()).map(|v| (*n, v)))
}

/// The proxies of the environment (see the module doc).
fn proxies() -> Result<Vec<Proxy>, ClientError> {
    if std::env::var_os("REQUEST_METHOD").is_some() {
        return Ok(Vec::new());
    }
    let no_proxy = match env_first(&["NO_PROXY", "no_proxy"]) {
        Some((_, list)) => format!("{list},{NEVER_PROXIED}"),
        None => NEVER_PROXIED.to_string(),
    };
    let all = env_first(&["ALL_PROXY", "all_proxy"]);
    let bad = |name: &'static str| ClientError::BadProxy { name };
    let mut out = Vec::new();
    if let Some((name, v)) = env_first(&["HTTP_PROXY", "http_proxy"]).or_else(|| all.clone()) {
        out.push(Proxy::http(v.as_str()).map_err(|_| bad(name))?.no_proxy(NoProxy::from_string(&no_proxy)));
    }
    if let Some((name, v)) = env_first(&["HTTPS_PROXY", "https_proxy"]).or(all) {
        out.push(Proxy::https(v.as_str()).map_err(|_| bad(name))?.no_proxy(NoProxy::from_string(&no_proxy)));
    }
    Ok(out)
}

/// Why no HTTP client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// A proxy variable holds something that is not a proxy URL.
    #[error("`{name}` is not a proxy URL: set it like `http://proxy.example:3128`, or unset it")]
    BadProxy {
        /// The environment variable.
        name: &'static str,
    },
    /// reqwest could not build the client (TLS set-up, system certificates).
    #[error("cannot set up the {what} client: {source}")]
    Build {
        /// `HTTP` or `HTTPS`.
        what: &'static str,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
}

fn builder() -> Result<reqwest::ClientBuilder, ClientError> {
    // `no_proxy` first: reqwest's own environment proxies would send loopback through them.
    let mut b = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("linkrun/", env!("CARGO_PKG_VERSION")));
    for p in proxies()? {
        b = b.proxy(p);
    }
    Ok(b)
}

/// A resolver that keeps only public addresses (see [`crate::http::rules::is_public`]).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<std::net::SocketAddr> = all.filter(|a| crate::http::rules::is_public(a.ip())).collect();
            if public.is_empty() {
                let e = std::io::Error::other(format!("`{host}` resolves only to private addresses"));
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Clients {
    /// The client of requests that may reach public addresses only (HTTP and HTTPS).
    pub fn for_url_public(&self, _url: &Url) -> Result<&Client, ClientError> {
        if let Some(c) = self.public.get() {
            return Ok(c);
        }
        let c = builder()?
            .dns_resolver(Arc::new(PublicOnly))
            .build()
            .map_err(|source| ClientError::Build { what: "HTTPS", source })?;
        Ok(self.public.get_or_init(|| c))
    }

    /// The client for this URL's scheme, built on first use.
    pub fn for_url(&self, url: &Url) -> Result<&Client, ClientError> {
        if url.scheme() == "https" {
            if let Some(c) = self.tls.get() {
                return Ok(c);
            }
            let c = builder()?.build().map_err(|source| ClientError::Build { what: "HTTPS", source })?;
            Ok(self.tls.get_or_init(|| c))
        } else {
            if let Some(c) = self.plain.get() {
                return Ok(c);
            }
            let c =
                builder()?.tls_certs_only([]).build().map_err(|source| ClientError::Build { what: "HTTP", source })?;
            Ok(self.plain.get_or_init(|| c))
        }
    }
}

/// The async runtime of a command: one current-thread runtime, driven from the command's own
/// thread (a script's `invoke_url` blocks on it). Servers (`sandbox`, `demo`) use
/// [`server_runtime`].
pub fn runtime() -> crate::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| crate::Error::Io { what: "cannot start the async runtime".to_string(), source })
}

/// A multi-thread runtime with `workers` threads, for the emulators and servers.
pub fn server_runtime(workers: usize) -> crate::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .map_err(|source| crate::Error::Io { what: "cannot start the async runtime".to_string(), source })
}
