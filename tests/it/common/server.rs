//! A recording HTTP server on 127.0.0.1 for tests: it answers by path and keeps every request.
//!
//! - `/redirect?to=URL[&status=302]` redirects;
//! - `/status/CODE` answers CODE with `{"code": CODE}`;
//! - `/text` answers `plain text`; `/empty` answers 204; `/big?bytes=N` answers N bytes;
//! - `/array?n=N` answers a JSON array of N zeros;
//! - `/slow?ms=N` waits N ms; `/multi` sends `Set-Cookie` twice;
//! - `/once429?id=ID` answers the first request of each ID with 429 and `Retry-After: 1`, and
//!   echoes the later ones;
//! - `/token` is an OAuth 2.0 token endpoint: `{"access_token": "at-N", ...}` for the N-th
//!   request, after the delay and with the status set by [`Server::set_token_answer`];
//! - anything else echoes the request as JSON: method, path, query, headers, body.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, Response, StatusCode};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The client's address (the same port means the same kept-alive connection).
    pub peer: SocketAddr,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Decoded query pairs.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes()).into_owned().collect()
    }

    /// Decoded form-body pairs.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }

    /// Everything received, as one text (for "appears nowhere else" checks).
    pub fn all_text(&self) -> String {
        let h: Vec<String> = self.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("{} {}?{}\n{}\n\n{}", self.method, self.path, self.query, h.join("\n"), self.body)
    }
}

/// A running server; it stops with the test process.
pub struct Server {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Recorded>>>,
    token: Arc<Mutex<TokenAnswer>>,
}

/// How `/token` answers.
#[derive(Debug, Clone)]
struct TokenAnswer {
    delay_ms: u64,
    status: u16,
    issued: u64,
}

impl Server {
    /// Starts a server on 127.0.0.1 on a free port.
    pub fn start() -> Server {
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let token = Arc::new(Mutex::new(TokenAnswer { delay_ms: 0, status: 200, issued: 0 }));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        let token2 = token.clone();
        std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                tx.send(listener.local_addr().expect("addr")).expect("send addr");
                let app = axum::Router::new().fallback(
                    move |ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request<Body>| {
                        let log = log2.clone();
                        let token = token2.clone();
                        async move { handle(peer, req, log, token).await }
                    },
                );
                axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.expect("serve");
            });
        });
        let addr = rx.recv().expect("server address");
        Server { addr, log, token }
    }

    /// Makes `/token` wait `delay_ms` before answering, with `status` (anything but 200 answers
    /// an HTML error page, as an overloaded provider does).
    pub fn set_token_answer(&self, delay_ms: u64, status: u16) {
        let mut t = self.token.lock().expect("token");
        t.delay_ms = delay_ms;
        t.status = status;
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://localhost:PORT` (the same server under another host name).
    pub fn url_localhost(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().expect("log").clone()
    }

    /// Forgets the requests received so far.
    pub fn clear(&self) {
        self.log.lock().expect("log").clear();
    }
}

async fn handle(
    peer: SocketAddr,
    req: Request<Body>,
    log: Arc<Mutex<Vec<Recorded>>>,
    token: Arc<Mutex<TokenAnswer>>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024).await.unwrap_or_default();
    let rec = Recorded {
        peer,
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers: headers_of(&parts.headers),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    let seen = {
        let mut log = log.lock().expect("log");
        log.push(rec.clone());
        log.iter().filter(|r| r.path == rec.path && r.query == rec.query).count()
    };
    let q: Vec<(String, String)> = rec.query_pairs();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let path = rec.path.as_str();
    let resp = Response::builder();
    if path == "/redirect" {
        let status = get("status").and_then(|s| s.parse().ok()).unwrap_or(302u16);
        return resp
            .status(status)
            .header("Location", get("to").unwrap_or_default())
            .body(Body::empty())
            .expect("resp");
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap_or(500);
        return resp
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("Content-Type", "application/json")
            .body(Body::from(format!("{{\"code\":{code}}}")))
            .expect("resp");
    }
    if path == "/once429" && seen == 1 {
        return resp
            .status(429)
            .header("Retry-After", "1")
            .header("Content-Type", "application/json")
            .body(Body::from("{\"code\":429}"))
            .expect("resp");
    }
    if path == "/token" {
        let answer = token.lock().expect("token").clone();
        tokio::time::sleep(Duration::from_millis(answer.delay_ms)).await;
        if answer.status != 200 {
            return resp
                .status(answer.status)
                .header("Content-Type", "text/html")
                .body(Body::from("<html><body>Service Unavailable</body></html>"))
                .expect("resp");
        }
        let n = {
            let mut t = token.lock().expect("token");
            t.issued += 1;
            t.issued
        };
        let doc = serde_json::json!({"access_token": format!("srv-access-token-{n}"), "token_type": "Bearer", "expires_in": 3600});
        return resp.header("Content-Type", "application/json").body(Body::from(doc.to_string())).expect("resp");
    }
    match path {
        "/text" => resp.header("Content-Type", "text/plain").body(Body::from("plain text")).expect("resp"),
        "/empty" => resp.status(204).body(Body::empty()).expect("resp"),
        "/big" => {
            let n: usize = get("bytes").and_then(|s| s.parse().ok()).unwrap_or(0);
            resp.header("Content-Type", "text/plain").body(Body::from(vec![b'x'; n])).expect("resp")
        }
        "/array" => {
            let n: usize = get("n").and_then(|s| s.parse().ok()).unwrap_or(0);
            let mut text = String::with_capacity(2 * n + 2);
            text.push('[');
            for i in 0..n {
                text.push_str(if i == 0 { "0" } else { ",0" });
            }
            text.push(']');
            resp.header("Content-Type", "application/json").body(Body::from(text)).expect("resp")
        }
        "/slow" => {
            let ms: u64 = get("ms").and_then(|s| s.parse().ok()).unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            resp.body(Body::from("late")).expect("resp")
        }
        "/multi" => resp
            .header("Set-Cookie", "a=1")
            .header("Set-Cookie", "b=2")
            .header("X-Custom", "yes")
            .body(Body::from("[1,2,3]"))
            .expect("resp"),
        _ => {
            let headers: serde_json::Map<String, serde_json::Value> =
                rec.headers.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
            let doc = serde_json::json!({
                "method": rec.method, "path": rec.path, "query": rec.query, "headers": headers, "body": rec.body,
            });
            resp.header("Content-Type", "application/json").body(Body::from(doc.to_string())).expect("resp")
        }
    }
}

fn headers_of(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}
