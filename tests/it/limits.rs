//! Rate budgets: `[limits]` of a service and a connection's own values (`connection limits`):
//! a window quota refuses a request that would wait past `max_wait_s` with a catchable
//! `rate_limited` error carrying the wait, without sending it; the command shows, sets, layers
//! and clears the values and refuses wrong ones naming the key.

use serde_json::json;

use crate::common::Env;
use crate::common::sandbox::Fixture;

fn json(out: &crate::common::Out) -> serde_json::Value {
    serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

#[test]
fn limits_a_window_quota_refuses_a_request_past_max_wait_with_rate_limited() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    f.env.run(&["connection", "limits", "crm", "--window-requests", "2", "--window-s", "3600"]).ok();
    let script = r#"
        let out = [];
        for i in 0..3 {
            try {
                let r = invoke_url(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Last_Name", per_page: 1 }, connection: "crm", detailed: true });
                out.push(r.responseCode);
            } catch (e) {
                out.push(#{ kind: e.kind, connection: e.connection, later: e.retry_after > 3500.0, message: e.message });
            }
        }
        out
    "#;
    let started = std::time::Instant::now();
    let out = f.env.script(script, &["--json"]);
    let v = json(&out);
    assert_eq!(v[0], 200);
    assert_eq!(v[1], 200);
    assert_eq!(v[2]["kind"], "rate_limited", "{v}");
    assert_eq!(v[2]["connection"], "crm");
    assert_eq!(v[2]["later"], true, "the wait of the window is given: {v}");
    let msg = v[2]["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("connection `crm` is over its rate budget: `window_requests = 2` in `window_s = 3600` makes the next request wait "),
        "{msg}"
    );
    assert!(msg.ends_with("change the limits with `linkrun connection limits crm`"), "{msg}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the hour was not slept");
}

#[test]
fn limits_connection_limits_shows_layers_and_clears_the_values() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    let show = |extra: &[&str]| {
        let mut args = vec!["connection", "limits", "crm", "--json"];
        args.extend_from_slice(extra);
        json(&f.env.run(&args))
    };
    // The prebuilt service's budget: the Free edition's 5 concurrent calls.
    assert_eq!(
        show(&[]),
        json!({"connection": "crm", "service": "zoho_crm", "own": {}, "limits": {"max_concurrency": 5}})
    );
    let v = show(&["--max-concurrency", "20", "--window-requests", "5000", "--window-s", "86400"]);
    assert_eq!(v["own"], json!({"max_concurrency": 20, "window_requests": 5000, "window_s": 86400}));
    assert_eq!(v["limits"], v["own"]);
    // Values layer: a new one keeps the others.
    let v = show(&["--requests-per-second", "2.5"]);
    assert_eq!(
        v["limits"],
        json!({"max_concurrency": 20, "requests_per_second": 2.5, "window_requests": 5000, "window_s": 86400})
    );
    let text = f.env.run(&["connection", "limits", "crm"]);
    assert!(text.ok().contains("max_concurrency      20         (connection)"), "{}", text.stdout);
    assert!(text.stdout.contains("window               5000 per 86400 s (connection)"), "{}", text.stdout);
    let v = show(&["--clear"]);
    assert_eq!(v["own"], json!({}));
    assert_eq!(v["limits"], json!({"max_concurrency": 5}));
    assert_eq!(
        f.env.run(&["connection", "limits", "crm", "--max-concurrency", "0"]).fails(2),
        "the limits given for connection `crm` are wrong: `max_concurrency` is 0: give 1 to 1000"
    );
    assert_eq!(
        f.env.run(&["connection", "limits", "crm", "--requests-per-second", "-1"]).fails(2),
        "the limits given for connection `crm` are wrong: `requests_per_second` is -1: give 0.001 to 100000"
    );
    let e = f.env.run(&["connection", "limits", "crm", "--window-requests", "5"]).fails(2);
    assert!(e.contains("--window-s"), "{e}");
    let e = f.env.run(&["connection", "limits", "nope"]).fails(4);
    assert!(e.contains("`nope`"), "{e}");
    assert_eq!(show(&[])["limits"], json!({"max_concurrency": 5}), "a refused change changed nothing");
}

#[test]
fn limits_invoke_all_of_200_requests_through_a_5_concurrency_budget_never_has_more_than_5_in_flight() {
    use linkrun_sandbox::faults::Knobs;
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    // Each answer takes 5 ms, so requests that may overlap do.
    f.sandbox.faults.set(Knobs { latency_ms: 5, ..Default::default() });
    let script = r#"
        let reqs = [];
        for i in 0..200 {
            reqs.push(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Last_Name", per_page: 1 }, connection: "crm", detailed: true });
        }
        invoke_all(reqs, #{ concurrency: 50 }).filter(|r| r.responseCode == 200).len()
    "#;
    f.sandbox.reset_request_stats();
    assert_eq!(json(&f.env.script(script, &["--json"])), json!(200));
    let stats = f.sandbox.request_stats();
    assert_eq!(stats.total, 200);
    assert_eq!(stats.max_in_flight, 5, "the prebuilt zoho_crm budget: 5 at once");
    // Raised for the connection, the same batch overlaps more: the budget is what held it.
    f.env.run(&["connection", "limits", "crm", "--max-concurrency", "50"]).ok();
    f.sandbox.reset_request_stats();
    assert_eq!(json(&f.env.script(script, &["--json"])), json!(200));
    let stats = f.sandbox.request_stats();
    assert!(stats.max_in_flight > 5, "{stats:?}");
    assert!(stats.max_in_flight <= 50, "{stats:?}");
}

#[test]
fn service_show_tells_how_requests_are_sent_retried_budgeted_paged_and_checked() {
    let env = Env::new();
    let text = env.run(&["service", "show", "zoho_crm"]).ok().to_string();
    for line in [
        "retries:    429, 502, 503, 504 for GET, HEAD, PUT, DELETE, OPTIONS (a 429 for any method), at most 4 attempts",
        "rate budget: 5 in flight per connection",
        "paging:     zoho_page_token, records in `data`, per_page=200",
        "checks:     Leads, Contacts, Accounts, Deals, Vendors, Products, Purchase_Orders, Cases",
    ] {
        assert!(text.contains(line), "`{line}` in\n{text}");
    }
    let doc: serde_json::Value =
        serde_json::from_str(env.run(&["service", "show", "servicenow", "--json"]).ok()).unwrap();
    assert_eq!(doc["retry"]["reset_headers"], serde_json::json!(["x-ratelimit-reset"]));
    assert_eq!(doc["limits"], serde_json::Value::Null);
    assert_eq!(doc["pagination"]["style"], "link_next");
    assert_eq!(doc["checks"][0], "customer_contact");
}
