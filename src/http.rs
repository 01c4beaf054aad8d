//! The HTTP clients of one process, built lazily and shared by every request (keep-alive pool).
//!
//! Two clients, because building one that verifies TLS loads the system's root certificates
//! (about 5 ms), which a run that only calls plain-http loopback servers should not pay: the plain
//! client has an empty root store and only ever sees `http://` URLs; the TLS client is built on the
//! first `https://` request. Redirects are followed by [`crate::invoke`], not by reqwest, so that
//! credentials are applied per hop.

use std::cell::OnceCell;
use std::time::Duration;

use reqwest::Client;
use url::Url;

/// Connect timeout (Deluge's invokeAPI uses 10 s).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lazily built clients for plain HTTP and for HTTPS.
#[derive(Default)]
pub struct Clients {
    plain: OnceCell<Client>,
    tls: OnceCell<Client>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("plain", &self.plain.get().is_some())
            .field("tls", &self.tls.get().is_some())
            .finish()
    }
}

fn builder() -> reqwest::ClientBuilder {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("linkrun/", env!("CARGO_PKG_VERSION")))
}

impl Clients {
    /// The client for this URL's scheme, built on first use.
    pub fn for_url(&self, url: &Url) -> Result<&Client, String> {
        if url.scheme() == "https" {
            if let Some(c) = self.tls.get() {
                return Ok(c);
            }
            let c = builder().build().map_err(|e| format!("cannot set up TLS: {e}"))?;
            Ok(self.tls.get_or_init(|| c))
        } else {
            if let Some(c) = self.plain.get() {
                return Ok(c);
            }
            let c = builder().tls_certs_only([]).build().map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
            Ok(self.plain.get_or_init(|| c))
        }
    }
}
