//! The sandbox's Zoho Accounts limits, as linkrun meets them: one token request for 50 processes
//! on one connection, the 11th refresh in 10 minutes answered "Access Denied" (a passing
//! throttle: the connection stays connected), the 16th live access token killing the oldest
//! (linkrun refreshes past it), the 21st refresh token deleting the oldest (its connection then
//! needs re-authorisation), and Org B's data center in the login redirect and the token answer.
//! No sleeps: the sandbox's controls expire tokens and move its clock.

use linkrun_sandbox::faults::{Knobs, ZohoAccountsKnobs};
use linkrun_sandbox::server::Options;
use serde_json::{Value, json};

use crate::common::sandbox::Fixture;

const LEADS: &str = r#"invoke_url(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Last_Name", per_page: 1 }, connection: "crm", detailed: true }).responseCode"#;

/// A script that calls the CRM through `crm` and returns `"ok"`, or the error's kind, connection
/// and message.
fn caught() -> String {
    format!("let v = (); try {{ {LEADS}; v = \"ok\"; }} catch (e) {{ v = [e.kind, e.connection, e.message]; }} v")
}

fn status(f: &Fixture) -> Value {
    let out = f.env.run(&["connection", "show", "crm", "--json"]);
    serde_json::from_str::<Value>(out.ok()).unwrap()["status"].clone()
}

/// The token endpoint's answer to a refresh with `refresh` for Org A's client.
fn refresh(f: &Fixture, refresh: &str) -> Value {
    let a = &f.sandbox.orgs[0];
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "refresh_token"),
            ("client_id", a.client_id.as_str()),
            ("client_secret", a.client_secret.as_str()),
            ("refresh_token", refresh),
        ])
        .finish();
    let (code, body) = f.http("POST", "/oauth/v2/token", &form);
    assert_eq!(code, 200, "{body}");
    body
}

#[test]
fn sandbox_limits_fifty_processes_at_once_through_one_connection_make_one_token_request() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    // linkrun's stored token is valid past its refresh margin, so no process asks for a token
    // before calling; the sandbox has expired it, so each call is refused once and the 50
    // processes then refresh through one single-flight lease.
    f.sandbox.provider.expire_access_tokens();
    let script = f.env.write("leads.rhai", LEADS);
    let outs = f.run_at_once(50, &["run", script.to_str().unwrap(), "--json"]);
    for out in &outs {
        assert_eq!(out.ok().trim(), "200", "{}", out.stderr);
    }
    let stats = f.sandbox.provider.stats();
    assert_eq!(stats.token_requests_by_grant.get("refresh_token"), Some(&1), "{stats:?}");
    assert_eq!(stats.refreshes_ok, 1, "{stats:?}");
    // Each process calls once, and once more if its call was refused with the expired token
    // (those that loaded the tokens after the refresh use the new one at once).
    let calls = f.sandbox.request_stats().by_path["/crm/v7/Leads"];
    assert!((1..=50).contains(&stats.resource_401), "{stats:?}");
    assert_eq!(calls, 50 + stats.resource_401, "{stats:?}");
}

#[test]
fn sandbox_limits_the_11th_refresh_in_10_minutes_is_a_throttle_linkrun_says_to_wait_for() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    for _ in 0..10 {
        f.sandbox.provider.expire_access_tokens();
        assert_eq!(f.json(&caught()), json!("ok"));
    }
    f.sandbox.provider.expire_access_tokens();
    let v = f.json(&caught());
    assert_eq!((&v[0], &v[1]), (&json!("connection"), &json!("crm")), "{v}");
    let message = v[2].as_str().unwrap();
    assert_eq!(
        message,
        "the provider throttled the token requests of connection `crm` (Access Denied: You have made too many requests continuously. Please try again after some time.): too many new tokens were asked for in a short time (Zoho allows 10 per refresh token in 10 minutes); the connection stays connected: wait a few minutes, then run it again"
    );
    let stats = f.sandbox.provider.stats();
    assert_eq!((stats.refreshes_ok, stats.refreshes_throttled), (10, 1), "{stats:?}");
    assert_eq!(status(&f), json!("connected"), "a throttle is not a dead grant");
    // Ten minutes later (the sandbox's clock moved) the same stored refresh token works again:
    // the throttle answer was not stored as tokens.
    f.sandbox.provider.advance_clock(600);
    assert_eq!(f.json(&caught()), json!("ok"));
    assert_eq!(f.sandbox.provider.stats().refreshes_ok, 11);
}

#[test]
fn sandbox_limits_a_16th_live_access_token_kills_the_oldest_and_linkrun_refreshes_past_it() {
    // The 10-in-10-minutes limit off, to reach 16 tokens at once.
    let knobs = Knobs {
        zoho_accounts: ZohoAccountsKnobs {
            access_tokens_per_refresh_token_per_10_min: None,
            ..ZohoAccountsKnobs::default()
        },
        ..Knobs::default()
    };
    let f = Fixture::with(&Options { knobs, ..Options::default() });
    f.connect("crm", "zoho_crm");
    assert_eq!(f.json(LEADS), json!(200));
    // Another holder of the same refresh token takes 15 more access tokens: with linkrun's, 16.
    let held = f.sandbox.provider.refresh_tokens(&f.sandbox.orgs[0].client_id);
    assert_eq!(held.len(), 1);
    for _ in 0..15 {
        assert!(refresh(&f, &held[0])["access_token"].is_string());
    }
    assert_eq!(f.sandbox.provider.stats().access_tokens_killed, 1);
    // linkrun's token (the oldest) is dead: the CRM answers INVALID_TOKEN, linkrun refreshes once
    // and calls again.
    assert_eq!(f.json(LEADS), json!(200));
    let stats = f.sandbox.provider.stats();
    assert_eq!((stats.resource_401, stats.refreshes_ok), (1, 16), "{stats:?}");
    assert_eq!(status(&f), json!("connected"));
}

#[test]
fn sandbox_limits_a_21st_refresh_token_deletes_the_oldest_and_its_connection_needs_reauthorisation() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    assert_eq!(f.json(LEADS), json!(200));
    let a = &f.sandbox.orgs[0];
    for _ in 0..20 {
        let code = f.sandbox.provider.mint_self_client_code(&a.client_id, &["ZohoCRM.modules.ALL"]);
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "authorization_code"),
                ("client_id", a.client_id.as_str()),
                ("client_secret", a.client_secret.as_str()),
                ("code", code.as_str()),
            ])
            .finish();
        let (status, body) = f.http("POST", "/oauth/v2/token", &form);
        assert!(status == 200 && body["refresh_token"].is_string(), "{body}");
    }
    assert_eq!(f.sandbox.provider.stats().refresh_tokens_deleted, 1);
    assert_eq!(f.sandbox.provider.refresh_tokens(&a.client_id).len(), 20);
    // linkrun's refresh token was the oldest: its access token went with it, and the refresh
    // is refused as a dead grant.
    let v = f.json(&caught());
    assert_eq!(
        v,
        json!([
            "connection",
            "crm",
            "connection `crm` needs re-authorisation: the provider refused to refresh its token (invalid_code); run `linkrun connection authorize crm`"
        ])
    );
    assert_eq!(status(&f), json!("needs_reauth"));
}

#[test]
fn sandbox_limits_org_b_logs_in_to_its_data_center_and_its_tokens_name_the_api_domain() {
    let f = Fixture::new();
    let b = &f.sandbox.orgs[1];
    assert_eq!(b.name, "in");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("client_id", b.client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("scope", "ZohoCRM.modules.ALL"),
            ("access_type", "offline"),
            ("approve", "yes"),
        ])
        .finish();
    // The redirect's query, read from the raw answer's Location header.
    let raw = {
        use std::io::{Read, Write};
        let addr = f.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET /oauth/v2/auth?{query} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    assert!(raw.starts_with("HTTP/1.0 302"), "{raw}");
    let location = raw.lines().find_map(|l| l.strip_prefix("location: ")).unwrap();
    let pairs: std::collections::HashMap<String, String> =
        url::Url::parse(location).unwrap().query_pairs().into_owned().collect();
    assert_eq!((pairs["location"].as_str(), pairs["accounts-server"].as_str()), ("in", f.base.as_str()));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("client_id", b.client_id.as_str()),
            ("client_secret", b.client_secret.as_str()),
            ("redirect_uri", "http://127.0.0.1:9/callback"),
            ("code", pairs["code"].as_str()),
        ])
        .finish();
    let (_, body) = f.http("POST", "/oauth/v2/token", &form);
    // One server stands for every data center's API domain: Org B's is the sandbox itself.
    assert_eq!(body["api_domain"], json!(f.base), "{body}");
    // The refresh answer carries it too, and linkrun's connection to Org B calls through it.
    let refreshed = {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "refresh_token"),
                ("client_id", b.client_id.as_str()),
                ("client_secret", b.client_secret.as_str()),
                ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ])
            .finish();
        f.http("POST", "/oauth/v2/token", &form).1
    };
    assert_eq!(refreshed["api_domain"], json!(f.base));
    f.connect_org("crm", "zoho_crm", 1);
    assert_eq!(f.json(LEADS), json!(200));
}

/// An access token of Org A, straight from the token endpoint.
fn crm_token(f: &Fixture) -> String {
    let a = &f.sandbox.orgs[0];
    let code = f.sandbox.provider.mint_self_client_code(&a.client_id, &["ZohoCRM.modules.ALL"]);
    let form = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("client_id", a.client_id.as_str()),
            ("client_secret", a.client_secret.as_str()),
            ("code", code.as_str()),
        ])
        .finish();
    f.http("POST", "/oauth/v2/token", &form).1["access_token"].as_str().unwrap().to_string()
}

/// `GET path` with a Zoho token: the status and the `Retry-After` header.
fn get_with(f: &Fixture, path: &str, token: &str) -> (u16, Option<String>) {
    get_at(f.base.trim_start_matches("http://"), path, token)
}

/// [`get_with`] at `addr` (`127.0.0.1:PORT`), from any thread.
fn get_at(addr: &str, path: &str, token: &str) -> (u16, Option<String>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Zoho-oauthtoken {token}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.lines().find_map(|l| l.strip_prefix("retry-after: ")).map(str::to_string))
}

#[test]
fn sandbox_limits_requests_in_flight_are_counted_exactly_with_the_latency_and_the_crm_refuses_past_its_concurrency() {
    let f = Fixture::new();
    let token = crm_token(&f);
    let knobs = Knobs {
        latency_ms: 1000,
        crm: linkrun_sandbox::faults::CrmKnobs { concurrency_limit: Some(5), ..Default::default() },
        ..Knobs::default()
    };
    f.sandbox.faults.set(knobs);
    f.sandbox.reset_request_stats();
    let path = "/crm/v7/Leads/actions/count";
    let addr = f.base.trim_start_matches("http://");
    let answers: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let calls: Vec<_> = (0..6).map(|_| s.spawn(|| get_at(addr, path, &token))).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let refused: Vec<_> = answers.iter().filter(|(status, _)| *status == 429).collect();
    assert_eq!(refused, [&(429, Some("1".to_string()))], "{answers:?}");
    let stats = f.sandbox.request_stats();
    assert_eq!((stats.total, stats.in_flight, stats.max_in_flight), (6, 0, 6), "{stats:?}");
    assert_eq!(stats.by_path, [(path.to_string(), 6)].into_iter().collect());
    // The HTTP view, and a reset; the sandbox's own and the OAuth endpoints are not counted.
    let (code, v) = f.http("GET", "/_sandbox/requests", "");
    assert_eq!((code, v), (200, json!({"total": 6, "in_flight": 0, "max_in_flight": 6, "by_path": {path: 6}})));
    let (code, _) = f.http("DELETE", "/_sandbox/requests", "");
    assert_eq!(code, 200);
    assert_eq!(
        f.http("GET", "/_sandbox/requests", "").1,
        json!({"total": 0, "in_flight": 0, "max_in_flight": 0, "by_path": {}})
    );
}

#[test]
fn sandbox_limits_a_burst_with_a_path_prefix_fails_only_those_paths() {
    let f = Fixture::new();
    let token = crm_token(&f);
    let burst = json!({"burst": {"count": 1, "status": 503, "retry_after": 0, "path_prefix": "/crm/v7/Contacts"}});
    let (code, _) = {
        use std::io::{Read, Write};
        let addr = f.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let body = burst.to_string();
        write!(
            s,
            "POST /_sandbox/knobs HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        (text.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok()).unwrap_or(0), text)
    };
    assert_eq!(code, 200);
    assert_eq!(f.sandbox.faults.knobs().burst_path_prefix.as_deref(), Some("/crm/v7/Contacts"));
    assert_eq!(get_with(&f, "/crm/v7/Leads/actions/count", &token).0, 200, "another path");
    assert_eq!(get_with(&f, "/crm/v7/Contacts/actions/count", &token), (503, Some("0".to_string())));
    assert_eq!(get_with(&f, "/crm/v7/Contacts/actions/count", &token).0, 200, "the burst is used up");
    assert_eq!(f.http("GET", "/_sandbox/knobs", "").1["burst"], Value::Null);
}
