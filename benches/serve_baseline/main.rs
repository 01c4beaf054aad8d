//! The baseline of `benches/serve.sh`: the smallest honest server doing a sync webhook's job —
//! axum on a multi-thread tokio runtime with as many threads as cores (as `linkrun serve`'s HTTP
//! side), a `POST /hooks/bench` that checks the `X-Linkrun-Key` header, reads the body, makes the
//! same GET to nginx with reqwest (keep-alive pool, the API key in a header) and answers with
//! nginx's JSON. No records, no queue, no script: what a hand-written service would do.
//!
//! `serve_baseline KEY UPSTREAM_URL API_KEY`: listens on 127.0.0.1:0 and prints `PORT n`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

struct App {
    key: String,
    upstream: String,
    api_key: String,
    client: reqwest::Client,
}

async fn hook(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    if headers.get("x-linkrun-key").and_then(|v| v.to_str().ok()) != Some(app.key.as_str()) {
        return (StatusCode::UNAUTHORIZED, "{\"error\":\"wrong key\"}").into_response();
    }
    let _ = body;
    match app.client.get(&app.upstream).header("X-Api-Key", &app.api_key).send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (code, [("content-type", "application/json")], text).into_response()
        }
        Err(_) => (StatusCode::BAD_GATEWAY, "{\"error\":\"upstream\"}").into_response(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [key, upstream, api_key] = args.as_slice() else {
        eprintln!("usage: serve_baseline KEY UPSTREAM_URL API_KEY");
        std::process::exit(2);
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().tcp_nodelay(true).build().expect("client");
        let app = Arc::new(App { key: key.clone(), upstream: upstream.clone(), api_key: api_key.clone(), client });
        let router = axum::Router::new().route("/hooks/bench", axum::routing::post(hook)).with_state(app);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("PORT {}", listener.local_addr().expect("addr").port());
        axum::serve(listener, router).await.expect("serve");
    });
}
