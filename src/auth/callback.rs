//! The one-shot loopback listener of authorisation flows: it listens on 127.0.0.1, takes the
//! first request to `/callback`, answers the browser with a short page, and hands the query
//! parameters to the flow. Other paths get 404 and are ignored (browsers ask for favicons).

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::Query;
use axum::response::Html;
use tokio::sync::mpsc;

/// A bound listener waiting for one redirect.
pub struct Callback {
    listener: Option<tokio::net::TcpListener>,
    /// The port it listens on.
    pub port: u16,
}

impl Callback {
    /// Binds 127.0.0.1:`port` (0: any free port). Must run inside a tokio runtime.
    pub async fn bind(port: u16) -> Result<Callback, super::flow_error::FlowError> {
        let listen = |source| super::flow_error::FlowError::Listen { port, source };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(listen)?;
        let port = listener.local_addr().map_err(listen)?.port();
        Ok(Callback { listener: Some(listener), port })
    }

    /// `http://127.0.0.1:PORT/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// Waits for the first `/callback` request; `None` on timeout.
    pub async fn wait(mut self, timeout: Duration) -> Option<HashMap<String, String>> {
        let listener = self.listener.take()?;
        let (tx, mut rx) = mpsc::channel::<HashMap<String, String>>(1);
        let app = axum::Router::new().route(
            "/callback",
            axum::routing::get(move |Query(q): Query<HashMap<String, String>>| {
                let tx = tx.clone();
                async move {
                    let failed = q.contains_key("error") || q.contains_key("oauth_problem") || q.contains_key("denied");
                    let _ = tx.try_send(q);
                    Html(if failed {
                        "<!doctype html><title>linkrun</title><p>The provider did not authorise linkrun. You can close this tab; the terminal says what to do next.</p>"
                    } else {
                        "<!doctype html><title>linkrun</title><p>linkrun is authorised. You can close this tab.</p>"
                    })
                }
            }),
        );
        let server = axum::serve(listener, app);
        tokio::select! {
            _ = server => None,
            got = tokio::time::timeout(timeout, rx.recv()) => {
                // Give the response a moment to reach the browser before the server stops.
                tokio::task::yield_now().await;
                got.ok().flatten()
            }
        }
    }
}

/// The stdout line that shows the authorization URL: the URL alone, or with `--json` the document
/// `{"authorization_url": URL}`.
pub fn url_line(url: &str, json: bool) -> String {
    if json { serde_json::json!({ "authorization_url": url }).to_string() } else { url.to_string() }
}

/// Opens `url` in a browser when there is one: `$BROWSER`, else `xdg-open` under a graphical
/// session (`DISPLAY` or `WAYLAND_DISPLAY`), else `open` on macOS. Headless machines get nothing
/// but the URL printed on stdout. (A few lines rather than a crate: the rule "only when there is a
/// display" is the part that matters, and crates open a browser unconditionally.)
pub fn open_browser(url: &str) {
    use std::process::{Command, Stdio};
    let cmd = if let Some(b) = std::env::var_os("BROWSER").filter(|b| !b.is_empty()) {
        Some(b)
    } else if cfg!(target_os = "macos") {
        Some("open".into())
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        Some("xdg-open".into())
    } else {
        None
    };
    if let Some(c) = cmd {
        let _ = Command::new(c).arg(url).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    }
}
