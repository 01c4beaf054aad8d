//! Retries: a burst of 429s from the sandbox is absorbed (`Retry-After` as seconds and as an
//! HTTP date) and the script sees one 200 with the attempts counted; a POST is not retried on a
//! 503 unless the request or an `Idempotency-Key` says so; a wait longer than `max_wait_s` is not
//! slept; transport failures are retried and counted in the error map. Waits are at most 1 s
//! (`Retry-After: 1`) or a few milliseconds (`base_ms`/`cap_ms` of the request).

use std::time::{Duration, Instant};

use linkrun_sandbox::faults::{Burst, Knobs};

use crate::common::{Env, Server};
use crate::zoho_tasks::Fixture;

const LEADS: &str = r#"invoke_url(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Last_Name", per_page: 1 }, connection: "crm", detailed: true })"#;

fn burst(f: &Fixture, count: u64, status: u16, retry_after: u64, date: bool) {
    let b = Burst { count, status, retry_after: Some(retry_after), retry_after_date: date };
    f.sandbox.faults.set(Knobs { burst: Some(b), ..Default::default() });
}

fn json(out: &crate::common::Out) -> serde_json::Value {
    serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

#[test]
fn retry_a_burst_of_429s_with_retry_after_1_is_absorbed() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    burst(&f, 2, 429, 1, false);
    let out = f.env.script(
        &format!("let r = {LEADS}; #{{ code: r.responseCode, attempts: r.attempts }}"),
        &["--json", "--verbose"],
    );
    assert_eq!(json(&out), serde_json::json!({"code": 200, "attempts": 3}), "{}", out.stderr);
    assert!(out.stderr.contains("linkrun: attempt 2/4 after 1 s (Retry-After)"), "{}", out.stderr);
    assert!(out.stderr.contains("linkrun: attempt 3/4 after 1 s (Retry-After)"), "{}", out.stderr);
    assert_eq!(f.sandbox.faults.knobs().burst, None, "the burst is used up");
}

#[test]
fn retry_a_burst_with_retry_after_as_an_http_date_is_absorbed() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    burst(&f, 1, 429, 1, true);
    let out = f.env.script(
        &format!("let r = {LEADS}; [r.responseCode, r.attempts, r.responseText.data.len()]"),
        &["--json", "--verbose"],
    );
    assert_eq!(json(&out), serde_json::json!([200, 2, 1]), "{}", out.stderr);
    assert!(out.stderr.contains("(Retry-After)"), "{}", out.stderr);
}

#[test]
fn retry_a_wait_longer_than_max_wait_is_returned_at_once_with_the_wait() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    burst(&f, 1, 429, 30, false);
    let started = Instant::now();
    let script = LEADS.replace("detailed: true", "detailed: true, retry: #{ max_wait_s: 2 }");
    let out = f
        .env
        .script(&format!("let r = {script}; [r.responseCode, r.attempts, r.retryAfter]"), &["--json", "--verbose"]);
    assert_eq!(json(&out), serde_json::json!([429, 1, 30.0]));
    assert!(
        out.stderr.contains("linkrun: not retrying: the wait of 30 s (Retry-After) is longer than `max_wait_s` (2 s)"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(20), "the 30 s wait was not slept");
}

#[test]
fn retry_a_post_is_not_retried_on_a_503_unless_marked() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    let fast = "base_ms: 1, cap_ms: 5";
    let count = |script: String| {
        server.clear();
        let out = env.script(&script, &["--json"]);
        (json(&out), server.requests().len())
    };
    let (v, n) =
        count(format!("invoke_url(#{{ url: \"{u}/status/503\", type: \"POST\", detailed: true }}).responseCode"));
    assert_eq!((v, n), (serde_json::json!(503), 1), "a POST is not retried by default");
    let (v, n) = count(format!(
        "invoke_url(#{{ url: \"{u}/status/503\", type: \"POST\", detailed: true, retry: #{{ methods: [\"POST\"], {fast} }} }}).attempts"
    ));
    assert_eq!((v, n), (serde_json::json!(4), 4), "marked by the request");
    let (v, n) = count(format!(
        "invoke_url(#{{ url: \"{u}/status/503\", type: \"POST\", headers: #{{ \"Idempotency-Key\": \"k-1\" }}, detailed: true, retry: #{{ {fast} }} }}).attempts"
    ));
    assert_eq!((v, n), (serde_json::json!(4), 4), "marked by an Idempotency-Key");
    let (v, n) = count(format!("invoke_url(#{{ url: \"{u}/status/503\", retry: #{{ {fast} }} }}).code"));
    assert_eq!((v, n), (serde_json::json!(503), 4), "a GET is retried, and the script sees the last answer");
    let (_, n) = count(format!("invoke_url(#{{ url: \"{u}/status/503\", retry: false }}).code"));
    assert_eq!(n, 1, "retry: false");
    let (_, n) = count(format!("invoke_url(#{{ url: \"{u}/status/500\", retry: #{{ {fast} }} }}).code"));
    assert_eq!(n, 1, "500 is not in the default statuses");
    let (_, n) = count(format!(
        "invoke_url(#{{ url: \"{u}/status/500\", retry: #{{ statuses: [500], max_attempts: 2, {fast} }} }}).code"
    ));
    assert_eq!(n, 2, "a status list and max_attempts of the request");
}

#[test]
fn retry_backoff_stays_under_the_cap_and_max_wait() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    let started = Instant::now();
    let out = env.script(
        &format!(
            "invoke_url(#{{ url: \"{u}/status/502\", detailed: true, retry: #{{ base_ms: 10, cap_ms: 40, max_wait_s: 1 }} }}).attempts"
        ),
        &["--json", "--verbose"],
    );
    assert_eq!(json(&out), serde_json::json!(4));
    assert_eq!(server.requests().len(), 4);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(out.stderr.contains("linkrun: attempt 4/4 after "), "{}", out.stderr);
    assert!(out.stderr.contains(" s (backoff)"), "{}", out.stderr);
    // A backoff longer than `max_wait_s` is not slept.
    let out = env.script(
        &format!(
            "invoke_url(#{{ url: \"{u}/status/503\", detailed: true, retry: #{{ base_ms: 60000, cap_ms: 60000, max_wait_s: 0 }} }}).attempts"
        ),
        &["--json"],
    );
    let n = json(&out);
    assert!(n == serde_json::json!(1) || n == serde_json::json!(4), "{n}");
}

#[test]
fn retry_connect_errors_are_retried_and_counted_in_the_error_map() {
    let env = Env::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = env.script(
        &format!(
            "let v = (); try {{ invoke_url(#{{ url: \"http://{closed}/x\", retry: #{{ base_ms: 1, cap_ms: 2 }} }}) }} catch (e) {{ v = [e.kind, e.attempts] }} v"
        ),
        &["--json"],
    );
    assert_eq!(json(&out), serde_json::json!(["network", 4]));
    let out = env.script(
        &format!("let v = (); try {{ invoke_url(#{{ url: \"http://{closed}/x\", retry: false }}) }} catch (e) {{ v = e.keys() }} v"),
        &["--json"],
    );
    assert_eq!(json(&out), serde_json::json!(["connection", "kind", "message"]), "one attempt adds no keys");
}

#[test]
fn retry_a_bad_retry_value_is_refused_naming_the_key() {
    let env = Env::new();
    let out = env.script(
        "let v = (); try { invoke_url(#{ url: \"http://127.0.0.1:1/\", retry: #{ max_attempts: 99 } }) } catch (e) { v = e.message } v",
        &["--json"],
    );
    assert_eq!(json(&out), serde_json::json!("`retry` of invoke_url: `max_attempts` is 99: give 1 (no retries) to 10"));
    let out = env.script(
        "let v = (); try { invoke_url(#{ url: \"http://127.0.0.1:1/\", retry: 3 }) } catch (e) { v = e.message } v",
        &["--json"],
    );
    assert_eq!(
        json(&out),
        serde_json::json!(
            "`retry` of invoke_url is i64: give false, or a map of statuses, methods, max_attempts, base_ms, cap_ms, max_wait_s"
        )
    );
}

#[test]
fn retry_in_invoke_all_each_request_waits_for_itself() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    let out = env.script(
        &format!(
            "invoke_all([#{{ url: \"{u}/status/503\", detailed: true, retry: #{{ base_ms: 1, cap_ms: 5 }} }}, #{{ url: \"{u}/text\" }}]).map(|r| if type_of(r) == \"map\" {{ r.attempts }} else {{ r }})"
        ),
        &["--json"],
    );
    assert_eq!(json(&out), serde_json::json!([4, "plain text"]));
    assert_eq!(server.requests().len(), 5);
}

#[test]
fn retry_the_service_retry_table_applies_to_its_connections() {
    let (env, server) = (Env::new(), Server::start());
    let extra = "[retry]\nmethods = [\"GET\", \"POST\"]\nmax_attempts = 2\nbase_ms = 1\ncap_ms = 2\n";
    env.add_service("svc.toml", &crate::common::service_toml("svc", "none", None, &server.url(), extra));
    env.run(&["connection", "create", "c", "--service", "svc"]).ok();
    let out = env.script(
        "invoke_url(#{ url: \"/status/503\", type: \"POST\", connection: \"c\", detailed: true }).attempts",
        &["--json"],
    );
    assert_eq!(json(&out), serde_json::json!(2), "the service marks POST and sets two attempts");
    assert_eq!(server.requests().len(), 2);
    server.clear();
    let out = env.script(
        "invoke_url(#{ url: \"/status/503\", type: \"POST\", connection: \"c\", retry: #{ methods: [\"GET\"] } }).code",
        &["--json"],
    );
    assert_eq!(json(&out), serde_json::json!(503));
    assert_eq!(server.requests().len(), 1, "the request's methods replace the service's");
}

#[test]
fn retry_a_timeout_before_any_answer_is_retried() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    let out = env.script(
        &format!(
            "let v = (); try {{ invoke_url(#{{ url: \"{u}/slow?ms=3000\", timeout: 0.2, retry: #{{ max_attempts: 3, base_ms: 1, cap_ms: 2 }} }}) }} catch (e) {{ v = [e.kind, e.attempts] }} v"
        ),
        &["--json"],
    );
    assert_eq!(json(&out), serde_json::json!(["timeout", 3]));
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn retry_in_invoke_all_a_request_waiting_to_be_retried_does_not_hold_up_the_others() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    // Two at a time; the first waits 1 s (Retry-After) before its second attempt. The other six
    // go on starting meanwhile, so all of them reach the server before that retry.
    let out = env.script(
        &format!(
            r#"let reqs = [#{{ url: "{u}/once429?id=slow", detailed: true }}];
            for i in 0..6 {{ reqs.push(#{{ url: "{u}/echo?i=" + i, detailed: true }}); }}
            invoke_all(reqs, #{{ concurrency: 2 }}).map(|r| [r.responseCode, r.attempts])"#
        ),
        &["--json"],
    );
    let v = json(&out);
    assert_eq!(v[0], serde_json::json!([200, 2]), "{v}");
    for i in 1..7 {
        assert_eq!(v[i][0], 200, "{v}");
    }
    let order: Vec<String> = server.requests().iter().map(|r| format!("{}?{}", r.path, r.query)).collect();
    assert_eq!(order.len(), 8, "{order:?}");
    assert_eq!(order.last().map(String::as_str), Some("/once429?id=slow"), "the retry came last: {order:?}");
    assert_eq!(order.iter().filter(|p| p.starts_with("/echo")).count(), 6);
}
