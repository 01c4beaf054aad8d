//! Webhooks: find the trigger by path, check the method, the sender's proof and the body's
//! size, record the run (and its delivery id) before answering, then answer with the script's
//! result (sync mode) or 202 and the run id (async mode).
//!
//! Refusals are JSON `{"error": "..."}` with a 4xx status and run nothing: 401 for a missing or
//! wrong key, a key in the query string when the trigger does not allow it, a bad signature or a
//! stale timestamp; 405 for another method; 413 for a body over the cap.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};

use super::{HookSecrets, Job, JobInput, Reply, Shared};
use crate::runs::{Accepted, NewRun, RunQueue, RunStatus};
use crate::trigger::{AuthKind, Dedupe, Mode, Trigger, Webhook};

/// A refusal: the HTTP answer itself, made once per refused request (so not boxed).
type Refusal = Response;

/// The header that carries a webhook key.
pub const KEY_HEADER: &str = "x-linkrun-key";

/// Headers a script never sees (they carry the sender's proof or a session).
const HIDDEN_HEADERS: &[&str] = &["authorization", KEY_HEADER, "cookie", "proxy-authorization"];

/// A JSON error answer.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

fn refuse(shared: &Shared, t: &Trigger, status: StatusCode, reason: &str, message: &str) -> Response {
    shared.metrics.refusal(&t.name, reason);
    shared.log.note("refused", &format!("trigger `{}`: {message}", t.name));
    error(status, message)
}

/// Constant-time equality of two secrets (compared as SHA-256 digests, so lengths leak nothing).
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest as _;
    let (x, y) = (sha2::Sha256::digest(a), sha2::Sha256::digest(b));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// The `key` query parameter, if any.
fn query_key(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "key").map(|(_, v)| v.into_owned())
}

/// Checks the proof that needs no body: a key or Basic credentials. `Err` is the refusal.
#[allow(clippy::result_large_err)]
fn check_key_or_basic(
    shared: &Shared,
    t: &Trigger,
    w: &Webhook,
    s: &HookSecrets,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), Refusal> {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    match w.auth {
        AuthKind::Key => {
            let bearer = header_text("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
            let given = header_text(KEY_HEADER).or(bearer).map(str::to_string);
            let in_query = query_key(query);
            let given = match (given, in_query) {
                (Some(g), _) => g,
                (None, Some(q)) if w.key_in_query => q,
                (None, Some(_)) => {
                    return Err(refuse(
                        shared,
                        t,
                        StatusCode::UNAUTHORIZED,
                        "key_in_query",
                        "this webhook does not take its key in the query string (query strings end up in logs): send it in the X-Linkrun-Key header",
                    ));
                }
                (None, None) => {
                    return Err(refuse(
                        shared,
                        t,
                        StatusCode::UNAUTHORIZED,
                        "no_key",
                        "this webhook needs its key: send it in the X-Linkrun-Key header (or Authorization: Bearer KEY)",
                    ));
                }
            };
            let ok = !given.is_empty()
                && s.key.as_ref().is_some_and(|k| {
                    !k.expose_secret().is_empty() && same_secret(k.expose_secret().as_bytes(), given.as_bytes())
                });
            if !ok {
                return Err(refuse(
                    shared,
                    t,
                    StatusCode::UNAUTHORIZED,
                    "wrong_key",
                    "wrong webhook key: use the key `linkrun trigger add` printed, or make a new one with `linkrun trigger rotate`",
                ));
            }
        }
        AuthKind::Basic => {
            use base64::Engine as _;
            let decoded = header_text("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
                .and_then(|b| String::from_utf8(b).ok());
            let (user, password) = w.basic.as_ref().map(|(u, _)| u.as_str()).zip(s.basic_password.as_ref()).unzip();
            let ok = decoded.as_deref().and_then(|d| d.split_once(':')).is_some_and(|(u, p)| {
                let user_ok = same_secret(u.as_bytes(), user.unwrap_or_default().as_bytes());
                let pass_ok = password.is_some_and(|pw| same_secret(p.as_bytes(), pw.expose_secret().as_bytes()));
                user_ok & pass_ok
            });
            if !ok {
                let mut r = refuse(
                    shared,
                    t,
                    StatusCode::UNAUTHORIZED,
                    "wrong_basic",
                    "this webhook needs HTTP Basic credentials: the user name and password its trigger was added with",
                );
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"linkrun\""));
                return Err(r);
            }
        }
        AuthKind::HmacSha256 | AuthKind::None => {}
    }
    Ok(())
}

/// Checks an HMAC-SHA256 signature of the body (or of `TIMESTAMP.BODY`).
#[allow(clippy::result_large_err)]
fn check_hmac(
    shared: &Shared,
    t: &Trigger,
    w: &Webhook,
    s: &HookSecrets,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    use hmac::Mac as _;
    let (Some(spec), Some(secret)) = (&w.hmac, &s.hmac) else { return Ok(()) };
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let Some(sig) = header_text(&spec.header) else {
        let m = format!("this webhook needs an HMAC-SHA256 signature of the body in the `{}` header", spec.header);
        return Err(refuse(shared, t, StatusCode::UNAUTHORIZED, "no_signature", &m));
    };
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(m) => m,
        Err(_) => return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "the trigger's HMAC secret cannot be used")),
    };
    if let Some(th) = &spec.timestamp_header {
        let Some(ts) = header_text(th) else {
            let m = format!("this webhook needs the time of signing in the `{th}` header");
            return Err(refuse(shared, t, StatusCode::UNAUTHORIZED, "no_timestamp", &m));
        };
        let now = crate::clock::unix_now();
        // Seconds, or milliseconds when it is that large.
        let fresh = ts.parse::<i64>().ok().map(|v| if v > 100_000_000_000 { v / 1000 } else { v });
        if fresh.is_none_or(|v| (now - v).abs() > spec.tolerance_s) {
            let m = format!(
                "the signed timestamp in `{th}` is not within {} s of the server's clock: a stale or replayed delivery",
                spec.tolerance_s
            );
            return Err(refuse(shared, t, StatusCode::UNAUTHORIZED, "stale_timestamp", &m));
        }
        mac.update(ts.as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    let hex = sig.strip_prefix("sha256=").unwrap_or(sig);
    let given = (0..hex.len() / 2)
        .map(|i| hex.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect::<Option<Vec<u8>>>()
        .filter(|b| b.len() == 32 && hex.len() == 64);
    match given {
        Some(g) if mac.verify_slice(&g).is_ok() => Ok(()),
        _ => Err(refuse(
            shared,
            t,
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            &format!("the signature in `{}` does not match the body: check the shared secret", spec.header),
        )),
    }
}

/// The request as the script sees it: `#{ method, path, headers, params, body }` (lower-case
/// header names; the body parsed as JSON or a form when it is one, else text).
fn request_value(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    drop_key: bool,
) -> Value {
    let mut h = serde_json::Map::new();
    for (name, value) in headers {
        if HIDDEN_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match h.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&v);
            }
            _ => {
                h.insert(name.as_str().to_string(), Value::String(v));
            }
        }
    }
    let mut params = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if drop_key && k == "key" {
            continue;
        }
        params.insert(k.into_owned(), Value::String(v.into_owned()));
    }
    let ctype =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let text = String::from_utf8_lossy(body);
    let body = if body.is_empty() {
        Value::String(String::new())
    } else if ctype.starts_with("application/x-www-form-urlencoded") {
        Value::Object(
            url::form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect(),
        )
    } else {
        serde_json::from_slice::<Value>(body).unwrap_or_else(|_| Value::String(text.into_owned()))
    };
    json!({ "method": method.as_str(), "path": path, "headers": h, "params": params, "body": body })
}

/// The delivery id, if the trigger dedupes and the request has one.
fn delivery_id(d: &Dedupe, request: &Value) -> Option<String> {
    let v = match d {
        Dedupe::Header(h) => request["headers"].get(h.to_ascii_lowercase())?,
        Dedupe::Body(path) => {
            let mut at = &request["body"];
            for step in path {
                at = match at {
                    Value::Array(a) => a.get(step.parse::<usize>().ok()?)?,
                    other => other.get(step)?,
                };
            }
            at
        }
    };
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn with_run_id(mut r: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        r.headers_mut().insert("x-linkrun-run", v);
    }
    r
}

/// The answer of a sync run: what `respond(...)` asked for, else 200 and the result as JSON.
fn answer(id: &str, status: RunStatus, result: Option<Value>, response: Option<Value>) -> Response {
    let r = match (status, response) {
        (RunStatus::Ok | RunStatus::Failed, Some(resp)) => {
            let code = resp["status"].as_u64().and_then(|c| u16::try_from(c).ok()).unwrap_or(200);
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            let mut out = match &resp["body"] {
                Value::String(s) => (code, s.clone()).into_response(),
                Value::Null => code.into_response(),
                other => (code, axum::Json(other.clone())).into_response(),
            };
            if let Some(h) = resp["headers"].as_object() {
                for (k, v) in h {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if let (Ok(name), Ok(value)) =
                        (header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&text))
                    {
                        out.headers_mut().insert(name, value);
                    }
                }
            }
            out
        }
        (RunStatus::Ok, None) => axum::Json(result.unwrap_or(Value::Null)).into_response(),
        (RunStatus::TimedOut, _) => {
            error(StatusCode::GATEWAY_TIMEOUT, &format!("the run hit its time limit: see `linkrun runs show {id}`"))
        }
        (RunStatus::Interrupted, _) => {
            let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "linkrun serve is stopping: send it again shortly");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
        _ => error(StatusCode::INTERNAL_SERVER_ERROR, &format!("the run failed: see `linkrun runs show {id}`")),
    };
    with_run_id(r, id)
}

/// `/hooks/...`.
pub(crate) async fn handler(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let Some((t, secrets)) = shared.hooks.get(&path) else {
        return error(
            StatusCode::NOT_FOUND,
            &format!("no trigger takes webhooks at {path}: see `linkrun trigger list`"),
        );
    };
    let Some(w) = t.webhook() else { return error(StatusCode::NOT_FOUND, "not a webhook") };
    if !w.methods.iter().any(|m| m == parts.method.as_str()) {
        let mut r = refuse(
            &shared,
            t,
            StatusCode::METHOD_NOT_ALLOWED,
            "method",
            &format!("{} is not accepted here: send {}", parts.method, w.methods.join(" or ")),
        );
        if let Ok(v) = HeaderValue::from_str(&w.methods.join(", ")) {
            r.headers_mut().insert(header::ALLOW, v);
        }
        return r;
    }
    let query = parts.uri.query();
    if let Err(r) = check_key_or_basic(&shared, t, w, secrets, &parts.headers, query) {
        return r;
    }
    let too_large = || format!("the body is larger than this webhook's cap of {}", crate::files::size_text(w.max_body));
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > w.max_body) {
        return refuse(&shared, t, StatusCode::PAYLOAD_TOO_LARGE, "too_large", &too_large());
    }
    let body = match axum::body::to_bytes(Body::new(body), usize::try_from(w.max_body).unwrap_or(usize::MAX)).await {
        Ok(b) => b,
        Err(_) => return refuse(&shared, t, StatusCode::PAYLOAD_TOO_LARGE, "too_large", &too_large()),
    };
    if let Err(r) = check_hmac(&shared, t, w, secrets, &parts.headers, &body) {
        return r;
    }
    let request = request_value(&parts.method, &path, &parts.headers, query, &body, w.key_in_query);
    let dedupe = w.dedupe.as_ref().and_then(|d| delivery_id(d, &request));
    if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        return busy("linkrun serve is stopping: send it again shortly");
    }
    if !shared.queue.reserve() {
        shared.metrics.refusal(&t.name, "queue_full");
        return busy("linkrun serve's queue is full: send it again shortly");
    }
    let mut args: serde_json::Map<String, Value> =
        t.args.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    if let Some(p) = request["params"].as_object() {
        args.extend(p.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let input = JobInput { args, input: request["body"].clone(), request: Some(request) };
    let (reply, answer_rx) = tokio::sync::oneshot::channel();
    if let Err(m) = accept(&shared, t, input, dedupe.as_deref(), w.dedupe_window_ms, w.mode == Mode::Sync, reply) {
        shared.queue.release();
        shared.log.note("store", &m);
        return error(StatusCode::INTERNAL_SERVER_ERROR, "the request could not be stored: see the server's log");
    }
    match answer_rx.await {
        Ok(Reply::Ran(o)) => answer(&o.id, o.status, o.result, o.response),
        Ok(Reply::Queued(id)) => with_run_id(
            (StatusCode::ACCEPTED, axum::Json(json!({"run_id": id, "status": "queued"}))).into_response(),
            &id,
        ),
        Ok(Reply::Duplicate { id, first }) => {
            shared.metrics.run(&t.name, RunStatus::Duplicate, 0);
            shared.log.run(&t.name, &id, RunStatus::Duplicate, 0);
            let response = if w.mode == Mode::Sync && first.status.is_final() {
                match tokio::task::block_in_place(|| shared.store().response(&first.id)) {
                    Ok(r) => r,
                    Err(e) => {
                        shared.log.note("store", &e.to_string());
                        return error(StatusCode::INTERNAL_SERVER_ERROR, "the first run's answer could not be read");
                    }
                }
            } else {
                None
            };
            match (w.mode, first.status.is_final()) {
                (Mode::Sync, true) => with_run_id(answer(&first.id, first.status, first.result, response), &first.id),
                _ => with_run_id(
                    (
                        StatusCode::ACCEPTED,
                        axum::Json(json!({"run_id": first.id, "status": first.status, "duplicate": true})),
                    )
                        .into_response(),
                    &first.id,
                ),
            }
        }
        Ok(Reply::NotStored(m)) => {
            shared.log.note("store", &m);
            error(StatusCode::INTERNAL_SERVER_ERROR, "the request could not be stored: see the server's log")
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "the run ended without an answer"),
    }
}

fn busy(message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Records the run with its input sealed and its delivery id, in one transaction (shared with
/// the other runs being recorded at that moment: see `recorder`): `queued` for async mode (a
/// restart runs it), `running` for sync mode (its sender waits on this connection: a restart
/// marks it interrupted, and the sender, having had no answer, sends it again). Once committed,
/// the writer puts the job on the workers' queue itself and tells `reply` what became of it
/// (a sync run's answer comes from its worker). `Err`: the input could not be sealed, nothing
/// was recorded.
fn accept(
    shared: &Arc<Shared>,
    t: &Arc<Trigger>,
    input: JobInput,
    dedupe: Option<&str>,
    window: i64,
    sync: bool,
    reply: tokio::sync::oneshot::Sender<Reply>,
) -> Result<(), String> {
    let now = crate::clock::now_ms();
    let id = crate::store::new_id(now);
    let sealed = shared.seal(&id, &input).map_err(|e| e.to_string())?;
    let redacted = crate::runs::redact(&json!({
        "args": input.args,
        "request": input.request.as_ref().map(|r| json!({"method": r["method"], "path": r["path"], "params": r["params"], "body": r["body"]})),
    }));
    let run = NewRun {
        trigger: t.name.to_string(),
        script: t.script.display().to_string(),
        input: redacted,
        started_ms: now,
    };
    let a = super::recorder::OwnedAccept {
        id,
        run,
        status: if sync { RunStatus::Running } else { RunStatus::Queued },
        owner: shared.owner.clone(),
        sealed: Some(sealed),
        dedupe: dedupe.map(|k| (k.to_string(), now - window)),
    };
    let (s, t) = (shared.clone(), t.clone());
    shared.recorder.accept(
        a,
        Box::new(move |r| {
            let told = match r {
                Ok(Accepted::New(id)) => {
                    s.going(&t.name);
                    let job = |reply| Job {
                        id: id.clone(),
                        name: t.name.to_string(),
                        script: t.script.clone(),
                        timeout_s: t.timeout_s,
                        input,
                        trigger: Some(t.clone()),
                        reply,
                    };
                    if sync {
                        s.queue.push(job(Some(reply)), true);
                        return;
                    }
                    s.queue.push(job(None), true);
                    Reply::Queued(id)
                }
                Ok(Accepted::Duplicate { id, first }) => {
                    s.queue.release();
                    Reply::Duplicate { id, first }
                }
                Err(m) => {
                    s.queue.release();
                    Reply::NotStored(m)
                }
            };
            let _ = reply.send(told);
        }),
    );
    Ok(())
}
