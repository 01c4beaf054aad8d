//! The `invoke_url` binding: reads the script's request map, sends it through the run's
//! [`crate::invoke::Invoker`] on the current-thread runtime, and turns the response (or the
//! error) into Rhai values.

use std::rc::Rc;
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map, NativeCallContext, Position};

use super::{RunState, Stop, builtins};
use crate::invoke::{
    Attempts, DEFAULT_TIMEOUT, ErrorKind, Failure, InvokeError, Parameters, RequestRetry, Response, RetryDef,
    ScriptRequest,
};

/// The keys of an `invoke_url` map.
pub(crate) const KEYS: &[&str] = &[
    "url",
    "type",
    "parameters",
    "body",
    "headers",
    "content-type",
    "connection",
    "detailed",
    "response-format",
    "timeout",
    "retry",
];

/// How a response becomes a script value: `detailed` (the map of code, text and headers) and
/// `response-format` (`TEXT`: the body as text even when it is JSON; `JSON`, the default: a map
/// or list when the body is JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reply {
    /// `detailed: true`.
    pub detailed: bool,
    /// `response-format: TEXT`.
    pub text: bool,
}

/// Default concurrency of `invoke_all`.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// `invoke_all(requests, options)`: the requests concurrently on the shared client (at most
/// `concurrency` at once, and at most each connection's `max_concurrency` in flight), results in
/// order; a failed request leaves its error map in its slot.
fn invoke_all(state: &RunState, list: rhai::Array, opts: &Map, pos: Position) -> Result<Dynamic, Box<EvalAltResult>> {
    use futures_util::StreamExt;
    let concurrency = match opts.get("concurrency") {
        None => DEFAULT_CONCURRENCY,
        Some(c) => match c.as_int() {
            Ok(n) if (1..=256).contains(&n) => n as usize,
            _ => {
                return Err(throw(
                    &bad(format!("`concurrency` of invoke_all must be a number from 1 to 256, not {c}")),
                    pos,
                ));
            }
        },
    };
    let parsed: Vec<Result<(ScriptRequest, Reply), InvokeError>> = list
        .iter()
        .map(|d| match d.read_lock::<Map>() {
            Some(m) => read_request(&m),
            None => {
                Err(bad(format!("each request of invoke_all must be a map like invoke_url's, not {}", d.type_name())))
            }
        })
        .collect();
    let remaining = state.remaining();
    if remaining.is_zero() {
        return Err(state.halt(Stop::Deadline, pos));
    }
    let invoker = &state.invoker;
    // Unordered: a request sleeping out a retry wait keeps its own slot only, and the others
    // go on starting (an ordered buffer would hold finished answers behind it, and start no
    // new request, until it is done). Each result goes back to its request's place.
    let mut results: Vec<Option<Result<Response, Failure>>> = (0..parsed.len()).map(|_| None).collect();
    let done: Vec<(usize, Result<Response, Failure>)> = state.runtime.block_on(spin_then_wait(
        futures_util::stream::iter(parsed.iter().enumerate())
            .map(|(i, p)| async move {
                let r = match p {
                    Ok((req, _)) => {
                        invoker
                            .send_until(req, req.timeout.unwrap_or(DEFAULT_TIMEOUT).min(remaining), state.deadline)
                            .await
                    }
                    Err(e) => Err(Failure::Invoke(e.clone())),
                };
                (i, r)
            })
            .buffer_unordered(concurrency)
            .collect(),
        state.spin,
    ));
    for (i, r) in done {
        results[i] = Some(r);
    }
    let results = results.into_iter().map(|r| r.unwrap_or_else(|| Err(Failure::Invoke(bad("no answer".into())))));
    let mut out = rhai::Array::with_capacity(results.len());
    for (r, p) in results.zip(parsed.iter()) {
        let reply = p.as_ref().map(|(_, d)| *d).unwrap_or_default();
        let url = p.as_ref().map(|(req, _)| req.url.as_str()).unwrap_or_default();
        match r {
            Ok(resp) => match response_value(resp, reply, url) {
                Ok(v) => out.push(v),
                Err(e) => out.push(Dynamic::from_map(error_map(&e))),
            },
            Err(Failure::Fatal(e)) => return Err(state.halt(Stop::Fatal(e), pos)),
            Err(Failure::Invoke(e)) if e.kind == ErrorKind::Timeout && state.remaining().is_zero() => {
                return Err(state.halt(Stop::Deadline, pos));
            }
            Err(Failure::Invoke(e)) => out.push(Dynamic::from_map(error_map(&e))),
        }
    }
    let out = Dynamic::from_array(out);
    if let Err(what) = super::check_data_size(&out) {
        return Err(throw(
            &too_large(format!(
                "the responses of invoke_all have {what} together: send fewer requests per call, or ask for less in each"
            )),
            pos,
        ));
    }
    Ok(out)
}

/// Registers `invoke_url(map)` and `invoke_all(list[, options])`.
pub(crate) fn register(engine: &mut Engine, state: Rc<RunState>) {
    {
        let st = state.clone();
        engine.register_fn("invoke_all", move |ctx: NativeCallContext, list: rhai::Array| {
            invoke_all(&st, list, &Map::new(), ctx.call_position())
        });
        let st = state.clone();
        engine.register_fn("invoke_all", move |ctx: NativeCallContext, list: rhai::Array, opts: Map| {
            invoke_all(&st, list, &opts, ctx.call_position())
        });
    }
    engine.register_fn("invoke_url", move |ctx: NativeCallContext, m: Map| -> Result<Dynamic, Box<EvalAltResult>> {
        let pos = ctx.call_position();
        let (req, reply) = read_request(&m).map_err(|e| throw(&e, pos))?;
        let resp = send_one(&state, &req, pos)?;
        response_value(resp, reply, &req.url).map_err(|e| throw(&e, pos))
    });
}

/// Sends one script request as `invoke_url` does (the `zoho.*` tasks share it): within the
/// request's timeout and the time left, through the run's invoker (connection, auth layer, host
/// rules, traces). A catchable failure is thrown as the script's error map; a fatal one or the
/// deadline stops the script.
pub(crate) fn send_one(state: &RunState, req: &ScriptRequest, pos: Position) -> Result<Response, Box<EvalAltResult>> {
    let remaining = state.remaining();
    if remaining.is_zero() {
        return Err(state.halt(Stop::Deadline, pos));
    }
    let timeout = req.timeout.unwrap_or(DEFAULT_TIMEOUT).min(remaining);
    match state.runtime.block_on(spin_then_wait(state.invoker.send_until(req, timeout, state.deadline), state.spin)) {
        Ok(resp) => Ok(resp),
        Err(Failure::Fatal(e)) => Err(state.halt(Stop::Fatal(e), pos)),
        Err(Failure::Invoke(e)) if e.kind == ErrorKind::Timeout && state.remaining().is_zero() => {
            Err(state.halt(Stop::Deadline, pos))
        }
        Err(Failure::Invoke(e)) => Err(throw(&e, pos)),
    }
}

/// Polls a request without sleeping for up to `spin`, then waits for it as usual.
///
/// A loopback or LAN answer often arrives within a couple of hundred microseconds; catching it
/// while still running saves the sleep and the cross-CPU wake-up (tens of microseconds each on a
/// VM), which is most of the cost of short sequential calls. A slower answer costs at most `spin`
/// of CPU time. `LINKRUN_SPIN_US=0` turns it off (see [`super::RunState`]).
async fn spin_then_wait<F: std::future::Future>(fut: F, spin: std::time::Duration) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let started = std::time::Instant::now();
    loop {
        let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(v) = polled {
            return v;
        }
        if started.elapsed() >= spin {
            return fut.await;
        }
        // Lets the runtime poll the network without blocking, then polls again.
        tokio::task::yield_now().await;
    }
}

/// The catchable error value: `#{ kind, message, connection }`, with `attempts` when the
/// request was retried and `retry_after` (seconds) when a wait was too long to sleep.
pub fn error_map(e: &InvokeError) -> Map {
    let mut m = Map::new();
    m.insert("kind".into(), Dynamic::from(e.kind.as_str().to_string()));
    m.insert("message".into(), Dynamic::from(e.message.clone()));
    m.insert("connection".into(), e.connection.clone().map(Dynamic::from).unwrap_or(Dynamic::UNIT));
    add_attempts(&mut m, &e.attempts, "retry_after");
    m
}

/// `attempts` (when more than one, or a wait was refused) and the refused wait in seconds.
fn add_attempts(m: &mut Map, a: &Attempts, retry_after: &str) {
    if a.made > 1 || a.retry_after.is_some() {
        m.insert("attempts".into(), Dynamic::from(a.made as i64));
    }
    if let Some(w) = a.retry_after {
        m.insert(retry_after.into(), Dynamic::from(w.as_secs_f64()));
    }
}

/// The script error for an invoke error: the catchable map of [`error_map`].
pub(crate) fn throw(e: &InvokeError, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(Dynamic::from_map(error_map(e)), pos))
}

fn bad(msg: String) -> InvokeError {
    InvokeError::bad_request(msg, None)
}

/// A `too_large` error: a value too big for the script's limits.
pub(crate) fn too_large(message: String) -> InvokeError {
    InvokeError::new(ErrorKind::TooLarge, message, None)
}

fn text_of(v: &Dynamic, key: &str) -> Result<String, InvokeError> {
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return Ok(s.to_string());
    }
    if v.is_int() || v.is_float() || v.is_bool() || v.is_char() {
        return Ok(v.to_string());
    }
    Err(bad(format!("`{key}` of invoke_url must be text, not {}", v.type_name())))
}

fn parameters_of(v: &Dynamic, key: &str) -> Result<Parameters, InvokeError> {
    if v.is_map() || v.is_array() {
        let json = builtins::to_json_value(v).map_err(|e| bad(format!("`{key}` of invoke_url cannot be sent: {e}")))?;
        return Ok(match json {
            serde_json::Value::Object(m) => Parameters::Map(m),
            serde_json::Value::Array(a) => Parameters::List(a),
            other => Parameters::Text(other.to_string()),
        });
    }
    text_of(v, key).map(Parameters::Text)
}

/// Reads the request map (unknown keys are refused, to catch typos).
pub fn read_request(m: &Map) -> Result<(ScriptRequest, Reply), InvokeError> {
    for k in m.keys() {
        if !KEYS.contains(&k.as_str()) {
            return Err(bad(format!("unknown key `{k}` in the invoke_url map: the keys are {}", KEYS.join(", "))));
        }
    }
    let url = match m.get("url") {
        Some(u) => text_of(u, "url")?,
        None => return Err(bad("invoke_url needs a `url`".into())),
    };
    let mut req = ScriptRequest { url, ..Default::default() };
    if let Some(t) = m.get("type") {
        req.method = Some(text_of(t, "type")?);
    }
    if let Some(p) = m.get("parameters").filter(|p| !p.is_unit()) {
        req.parameters = Some(parameters_of(p, "parameters")?);
    }
    if let Some(b) = m.get("body").filter(|p| !p.is_unit()) {
        req.body = Some(parameters_of(b, "body")?);
    }
    if let Some(h) = m.get("headers").filter(|p| !p.is_unit()) {
        let Some(hm) = h.read_lock::<Map>() else {
            return Err(bad(format!("`headers` of invoke_url must be a map, not {}", h.type_name())));
        };
        for (k, v) in hm.iter() {
            req.headers.push((k.to_string(), text_of(v, k)?));
        }
    }
    if let Some(c) = m.get("content-type").filter(|p| !p.is_unit()) {
        req.content_type = Some(text_of(c, "content-type")?);
    }
    if let Some(c) = m.get("connection").filter(|p| !p.is_unit()) {
        let link = text_of(c, "connection")?;
        if !link.is_empty() {
            req.connection = Some(crate::invoke::connection_name(&link)?);
        }
    }
    let detailed = match m.get("detailed") {
        Some(d) => d
            .as_bool()
            .map_err(|_| bad(format!("`detailed` of invoke_url must be true or false, not {}", d.type_name())))?,
        None => false,
    };
    let text = match m.get("response-format") {
        None => false,
        Some(f) => {
            let f = text_of(f, "response-format")?;
            match f.to_ascii_uppercase().as_str() {
                "TEXT" => true,
                "JSON" => false,
                _ => return Err(bad(format!("`response-format` of invoke_url is `{f}`: give TEXT or JSON"))),
            }
        }
    };
    let reply = Reply { detailed, text };
    if let Some(t) = m.get("timeout") {
        let secs = if let Ok(i) = t.as_int() {
            i as f64
        } else if let Ok(f) = t.as_float() {
            f
        } else {
            return Err(bad(format!("`timeout` of invoke_url must be a number of seconds, not {}", t.type_name())));
        };
        if !(secs > 0.0 && secs <= 86_400.0) {
            return Err(bad(format!("`timeout` of invoke_url must be between 0 and 86400 seconds, not {secs}")));
        }
        req.timeout = Some(Duration::from_secs_f64(secs));
    }
    if let Some(r) = m.get("retry").filter(|p| !p.is_unit()) {
        req.retry = Some(retry_of(r)?);
    }
    if let Some(ct) = req.content_type.clone() {
        req.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
        req.content_type = Some(ct);
    } else if let Some((_, v)) = req.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
        req.content_type = Some(v.clone());
    }
    Ok((req, reply))
}

/// The `retry` key: `false` (one attempt), `true` (the service's values) or a map of
/// `[retry]` keys over the service's.
fn retry_of(v: &Dynamic) -> Result<RequestRetry, InvokeError> {
    const HINT: &str = "give false, or a map of statuses, methods, max_attempts, base_ms, cap_ms, max_wait_s";
    if let Ok(b) = v.as_bool() {
        return Ok(if b { RequestRetry::Over(RetryDef::default()) } else { RequestRetry::Off });
    }
    if !v.is_map() {
        return Err(bad(format!("`retry` of invoke_url is {}: {HINT}", v.type_name())));
    }
    let json =
        builtins::to_json_value(v).map_err(|e| bad(format!("`retry` of invoke_url cannot be read ({e}): {HINT}")))?;
    let def: RetryDef =
        serde_json::from_value(json).map_err(|e| bad(format!("`retry` of invoke_url is wrong ({e}): {HINT}")))?;
    def.check().map_err(|m| bad(format!("`retry` of invoke_url: {m}")))?;
    Ok(RequestRetry::Over(def))
}

/// The response as a script value: the body as a map or array when it is JSON (unless
/// `response-format` is TEXT), else a string ("" for 204 and HEAD); with `detailed`,
/// `#{ responseCode, responseText, responseHeader }`.
/// A body that makes more array items, map entries or text than a script value may hold is a
/// `too_large` error (the engine's own check could not be caught).
pub fn response_value(resp: Response, reply: Reply, url: &str) -> Result<Dynamic, InvokeError> {
    let body = if reply.text {
        Dynamic::from(String::from_utf8_lossy(&resp.body).into_owned())
    } else {
        body_value(&resp.body)
    };
    if let Err(what) = super::check_data_size(&body) {
        return Err(too_large(format!("the response from `{url}` has {what}: ask for less (paging, fewer fields)")));
    }
    if !reply.detailed {
        return Ok(body);
    }
    let mut headers = Map::new();
    let attempts = resp.attempts;
    for (k, v) in resp.headers {
        headers.insert(k.into(), Dynamic::from(v));
    }
    let mut m = Map::new();
    m.insert("responseCode".into(), Dynamic::from(resp.status as i64));
    m.insert("responseText".into(), body);
    m.insert("responseHeader".into(), Dynamic::from_map(headers));
    add_attempts(&mut m, &attempts, "retryAfter");
    Ok(Dynamic::from_map(m))
}

/// A response body as a script value: a map or array when it is JSON, else a string.
pub(crate) fn body_value(bytes: &[u8]) -> Dynamic {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{') | Some(b'[')) {
        // Straight into Rhai values, without an intermediate `serde_json::Value`.
        if let Ok(d) = serde_json::from_slice::<Dynamic>(bytes) {
            return d;
        }
    }
    Dynamic::from(String::from_utf8_lossy(bytes).into_owned())
}
