//! OAuth 2.0 against a certified provider (npm `oidc-provider`, `tests/support/oidc/`): code +
//! PKCE through the loopback listener driven headlessly, client credentials, refresh before
//! expiry, revocation, a reused (restored) refresh token, `invoke_all`, and the 8-process race on
//! rotating refresh tokens. Zoho's and ServiceNow's own answers (self-client `--code`, errors in
//! HTTP 200, `INVALID_TOKEN`, `expires_in` variants, `api_domain`, the password grant) against the
//! sandbox's OAuth emulator (`linkrun_sandbox::oauth_provider`).

use std::io::{BufRead, Read};

use crate::common::oidc::Oidc;
use crate::common::{Env, Out};
use linkrun_sandbox::oauth_provider::{ClientConfig, ExpiresStyle, Provider, ProviderConfig};
use serde_json::json;

const CLIENT: &str = "linkrun-test-client";
const SECRET: &str = "oidc-client-secret-9f8e7d6c5b4a";

/// The redirect URI of a code obtained elsewhere (`--redirect-uri`): nothing listens there, and
/// the provider accepts any loopback port for its native client (RFC 8252 §7.3).
const COPIED_REDIRECT: &str = "http://127.0.0.1:8765/callback";

/// The `redirect_uri` of an authorization URL linkrun printed: where its listener waits.
fn redirect_of(authorization_url: &str) -> String {
    let url = url::Url::parse(authorization_url.trim()).unwrap();
    url.query_pairs().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned()).unwrap()
}

/// A provider with one confidential client allowed code, refresh and client credentials. It is
/// a native application whose loopback redirect URI accepts any port (RFC 8252 §7.3), so
/// linkrun's listener binds a free port of its own (`redirect_port = 0`): no port is picked
/// ahead and raced for.
fn oidc(ttl: u64) -> Oidc {
    Oidc::start(&json!({
        "clients": [{
            "client_id": CLIENT, "client_secret": SECRET, "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "openid offline_access api:read api:write"
        }],
        "access_token_ttl": ttl,
        "rotate_refresh_token": true
    }))
}

fn oidc_service(env: &Env, op: &Oidc, margin: u64) {
    let base = op.url();
    env.add_service(
        "op.toml",
        &format!(
            "link_name = \"op\"\nname = \"Test OP\"\nauth = \"oauth2\"\nplacement = \"header\"\nbase_url = \"{base}\"\n\
             [oauth2]\nauthorize_url = \"{base}/auth\"\ntoken_url = \"{base}/token\"\nrevoke_url = \"{base}/token/revocation\"\n\
             scopes = [\"api:read\"]\ngrant_types = [\"authorization_code\", \"client_credentials\"]\n\
             refresh_margin = {margin}\nredirect_port = 0\n[test]\nurl = \"/api/me\"\n"
        ),
    );
    env.run(&[
        "connection",
        "create",
        "c",
        "--service",
        "op",
        "--param",
        &format!("client_id={CLIENT}"),
        "--param",
        &format!("client_secret={SECRET}"),
    ])
    .ok();
}

fn finish(mut child: std::process::Child, first_line: &str) -> Out {
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    Out { code, stdout: format!("{first_line}{stdout}"), stderr }
}

/// `connection authorize c` with the code grant, approved headlessly by the provider's own pages.
fn authorize_with_code(env: &Env, op: &Oidc) -> Out {
    let mut child = env.spawn(&["connection", "authorize", "c", "--no-browser", "--timeout", "30"]);
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with(&format!("{}/auth?", op.url())), "{url}");
    assert!(url.contains("code_challenge_method=S256") && url.contains("state="), "{url}");
    assert_eq!(op.approve_and_deliver(&url), 200, "the listener answered the browser");
    child.stdout = Some(reader.into_inner());
    finish(child, &line)
}

fn show(env: &Env) -> serde_json::Value {
    serde_json::from_str(env.run(&["connection", "show", "c", "--json"]).ok()).unwrap()
}

fn api_ok(env: &Env) -> Out {
    env.script("let r = invoke_url(#{ url: \"/api/me\", connection: \"c\" }); r.ok", &[])
}

#[test]
fn code_with_pkce_through_the_loopback_listener() {
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 300);
    assert_eq!(show(&env)["status"], "not_authorized");
    let out = authorize_with_code(&env, &op);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 1, "only the URL on stdout: {}", out.stdout);
    let v = show(&env);
    assert_eq!(v["status"], "connected");
    assert_eq!(v["token"]["granted_scopes"], json!(["api:read"]));
    assert!(v["token"]["expires_at"].as_str().is_some_and(|s| s.ends_with('Z')), "{v}");
    assert!(v.to_string().find("access_token").is_none(), "no token in show: {v}");
    assert_eq!(api_ok(&env).ok(), "true\n");
    let out = env.run(&["connection", "test", "c"]);
    out.ok();
    assert_eq!(out.stderr, "connection `c` works: GET /api/me answered HTTP 200\n");
    assert_eq!(op.stats()["token"]["authorization_code"]["ok"], 1);
}

#[test]
fn authorize_json_prints_the_url_line_then_the_connection_and_test_and_revoke_report_json() {
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 300);
    // Not approved in time: the URL line, then the error line.
    let out = env.run(&["connection", "authorize", "c", "--no-browser", "--timeout", "1", "--json"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    let message = out.stderr.lines().last().and_then(|l| l.strip_prefix("error: ")).unwrap();
    assert!(message.starts_with("no redirect from the provider within 1 s"), "{message}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert!(first["authorization_url"].as_str().is_some_and(|u| u.starts_with(&format!("{}/auth?", op.url()))));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(lines[1]).unwrap(),
        json!({"error": {"kind": "connection", "message": message, "exit_code": 4}})
    );

    let mut child = env.spawn(&["connection", "authorize", "c", "--no-browser", "--timeout", "30", "--json"]);
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let first: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(first.as_object().map(|o| o.len()), Some(1), "{first}");
    let url = first["authorization_url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/auth?", op.url())), "{url}");
    assert_eq!(op.approve_and_deliver(&url), 200);
    child.stdout = Some(reader.into_inner());
    let out = finish(child, "");
    let doc: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(doc["status"], "connected");
    assert_eq!(doc["granted_scopes"], json!(["api:read"]));
    assert_eq!(doc["scopes_source"], "granted");
    assert_eq!(doc["grant_type"], "authorization_code");
    assert!(doc["expires_at"].as_str().is_some_and(|s| s.ends_with('Z')), "{doc}");
    let text = env.run(&["connection", "show", "c"]);
    assert!(text.ok().contains("\n  granted scopes api:read\n"), "{}", text.stdout);
    assert_eq!(show(&env)["token"]["scopes_source"], "granted");

    let out = env.run(&["connection", "test", "c", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(out.ok()).unwrap(),
        json!({"link_name": "c", "service": "op", "request": {"method": "GET", "url": "/api/me"}, "status": 200, "ok": true})
    );
    let out = env.run(&["connection", "revoke", "c", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(out.ok()).unwrap(),
        json!({"link_name": "c", "status": "revoked", "revoked_at_provider": true})
    );
    assert_eq!(op.stats()["revocation"]["ok"], 1);
}

#[test]
fn a_wrong_state_or_an_error_redirect_is_exit_4() {
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 300);
    for (query, expected) in [
        (
            "code=x&state=forged",
            "the redirect carried a wrong `state`, so it may not answer linkrun's request: run `linkrun connection authorize c` again",
        ),
        (
            "code=x",
            "the redirect carried no `state`, so it cannot be matched to linkrun's request: run `linkrun connection authorize c` again",
        ),
        (
            "error=access_denied&error_description=user+said+no",
            "the provider did not authorise connection `c` (access_denied: user said no): run `linkrun connection authorize c` again and approve the request",
        ),
    ] {
        let mut child = env.spawn(&["connection", "authorize", "c", "--no-browser", "--timeout", "30"]);
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(crate::common::oidc::deliver(&format!("{}?{query}", redirect_of(&line))), 200);
        child.stdout = Some(reader.into_inner());
        let out = finish(child, &line);
        assert_eq!(out.code, 4, "{}", out.stderr);
        assert_eq!(out.stderr.lines().last().unwrap(), format!("error: {expected}"));
    }
    let out = env.run(&["connection", "authorize", "c", "--no-browser", "--timeout", "1"]);
    assert_eq!(out.code, 4);
    assert_eq!(
        out.stderr.lines().last().unwrap(),
        "error: no redirect from the provider within 1 s: run `linkrun connection authorize c` again and approve the request in the browser"
    );
}

#[test]
fn client_credentials_are_renewed_by_running_the_grant_again() {
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 0);
    env.run(&["connection", "authorize", "c", "--grant", "client_credentials"]).ok();
    assert_eq!(show(&env)["token"]["grant_type"], "client_credentials");
    assert_eq!(api_ok(&env).ok(), "true\n");
    // linkrun's clock past the token's 60 s (the tests move time instead of waiting for it).
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", "61");
    assert_eq!(api_ok(&env).ok(), "true\n");
    let stats = op.stats();
    assert_eq!(stats["token"]["client_credentials"]["ok"], 2, "{stats}");
    assert_eq!(stats["api"]["unauthorized"], 0, "renewed before the request: {stats}");
}

#[test]
fn tokens_refresh_before_expiry_and_rotation_is_stored() {
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 3);
    assert_eq!(authorize_with_code(&env, &op).code, 0);
    assert_eq!(api_ok(&env).ok(), "true\n");
    // 60 s tokens with a 3 s margin: 58 s later (linkrun's clock moved, not waited for) the token
    // is refreshed before the request, and 58 s after that again, with the rotated refresh token.
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", "58");
    assert_eq!(api_ok(&env).ok(), "true\n");
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", "116");
    assert_eq!(api_ok(&env).ok(), "true\n", "the rotated refresh token was stored and works");
    let stats = op.stats();
    assert_eq!(stats["token"]["refresh_token"], json!({"ok": 2, "failed": 0}), "{stats}");
    assert_eq!(stats["api"]["unauthorized"], 0, "{stats}");
    assert!(show(&env)["token"]["last_refresh"].is_string());
}

#[test]
fn eight_processes_on_an_expired_token_refresh_once() {
    // 60 s tokens are refreshed in their last 30 s (half the lifetime): 31 s later (linkrun's
    // clock moved, not waited for) the first request refreshes, and the new token is fresh.
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 300);
    assert_eq!(authorize_with_code(&env, &op).code, 0);
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", "31");
    op.reset_stats();
    let script = env.write("race.rhai", "invoke_url(#{ url: \"/api/me\", connection: \"c\" }).ok");
    let children: Vec<_> = (0..8).map(|_| env.spawn(&["run", script.to_str().unwrap()])).collect();
    for child in children {
        let out = finish(child, "");
        assert_eq!(out.stdout, "true\n", "{}", out.stderr);
    }
    let stats = op.stats();
    assert_eq!(stats["token"]["refresh_token"], json!({"ok": 1, "failed": 0}), "{stats}");
    assert_eq!(stats["api"]["ok"], 8, "{stats}");
    assert_eq!(api_ok(&env).ok(), "true\n", "the connection still works after");
    assert_eq!(show(&env)["status"], "connected");
}

#[test]
fn invoke_all_runs_in_order_and_refreshes_once() {
    // 60 s tokens are refreshed in their last 30 s (half the lifetime): 31 s later (linkrun's
    // clock moved, not waited for) the first request refreshes, and the new token is fresh.
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 300);
    assert_eq!(authorize_with_code(&env, &op).code, 0);
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", "31");
    op.reset_stats();
    let out = env.script(
        "let reqs = []; for i in 0..40 { reqs.push(#{ url: \"/api/items?i=\" + i, connection: \"c\" }); } \
         reqs.push(#{ url: \"/api/x\", connection: \"nope\" }); reqs.push(\"not a map\"); \
         let rs = invoke_all(reqs, #{ concurrency: 8 }); \
         let order = true; for i in 0..40 { if rs[i].query != `i=${i}` { order = false; } } \
         [rs.len(), order, rs[40].kind, rs[40].connection, rs[41].kind]",
        &[],
    );
    assert_eq!(out.ok(), "[42,true,\"connection\",\"nope\",\"bad_request\"]\n");
    let stats = op.stats();
    assert_eq!(stats["token"]["refresh_token"], json!({"ok": 1, "failed": 0}), "{stats}");
    assert_eq!(stats["api"]["ok"], 40);
}

#[test]
fn a_refused_refresh_marks_needs_reauth_and_keeps_the_connection() {
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 300);
    assert_eq!(authorize_with_code(&env, &op).code, 0);
    // A vault restored from a backup holds a refresh token the provider has since rotated away.
    let backup: Vec<(std::path::PathBuf, Vec<u8>)> = ["vault.db", "vault.db-wal"]
        .iter()
        .map(|f| env.home_path().join(f))
        .filter(|p| p.exists())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    // Half the 60 s lifetime later (linkrun's clock moved): refreshed, and the refresh token rotated.
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", "31");
    assert_eq!(api_ok(&env).ok(), "true\n");
    let _ = std::fs::remove_file(env.home_path().join("vault.db-wal"));
    let _ = std::fs::remove_file(env.home_path().join("vault.db-shm"));
    for (p, bytes) in backup {
        std::fs::write(p, bytes).unwrap();
    }
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", "62");
    let out = env.script(
        "let k = \"\"; try { invoke_url(#{ url: \"/api/me\", connection: \"c\" }); } catch (e) { k = e.kind + \"|\" + e.message; } k",
        &[],
    );
    assert_eq!(
        out.ok().trim(),
        "connection|connection `c` needs re-authorisation: the provider refused to refresh its token (invalid_grant); run `linkrun connection authorize c`"
    );
    let v = show(&env);
    assert_eq!(v["status"], "needs_reauth");
    assert_eq!(v["params"]["client_id"]["value"], CLIENT, "nothing else is lost");
    let out = api_ok(&env);
    assert_eq!(out.code, 4, "uncaught: exit 4");
    assert_eq!(authorize_with_code(&env, &op).code, 0);
    assert_eq!(api_ok(&env).ok(), "true\n");
}

#[test]
fn revoke_calls_the_provider_and_authorize_reconnects() {
    let op = oidc(60);
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 300);
    assert_eq!(authorize_with_code(&env, &op).code, 0);
    env.run(&["connection", "revoke", "c"]).ok();
    assert_eq!(op.stats()["revocation"]["ok"], 1);
    assert_eq!(show(&env)["status"], "revoked");
    assert!(show(&env).get("token").is_none());
    let out = api_ok(&env);
    assert_eq!(
        out.fails(4),
        "connection `c` was revoked: run `linkrun connection authorize c` to reconnect it (uncaught in `script.rhai` at line 1, column 9)"
    );
    assert_eq!(authorize_with_code(&env, &op).code, 0);
    assert_eq!(api_ok(&env).ok(), "true\n");
}

// ---- Zoho and ServiceNow answers, against the sandbox's OAuth emulator ----

/// Runs an emulator on 127.0.0.1 for the life of the test process.
fn emulator(cfg: ProviderConfig) -> (Provider, String) {
    let provider = Provider::new(cfg);
    let router = provider.router();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let (addr, handle) = linkrun_sandbox::oauth_provider::serve(router).await.unwrap();
            tx.send(addr).unwrap();
            let _ = handle.await;
        });
    });
    let addr = rx.recv().unwrap();
    (provider, format!("http://{addr}"))
}

fn zoho(style: ExpiresStyle) -> (Provider, String) {
    let mut cfg = ProviderConfig::zoho("");
    cfg.clients = vec![ClientConfig::new("1000.ZOHOCLIENT", "zoho-client-secret-31337", "org_us")];
    cfg.expires_style = style;
    cfg.api_domain = None;
    let (p, url) = emulator(cfg);
    let api = url.clone();
    p.update_config(|c| c.api_domain = Some(api));
    (p, url)
}

fn zoho_service(env: &Env, url: &str) {
    env.add_service(
        "zoho.toml",
        &format!(
            "link_name = \"zcrm\"\nname = \"Zoho CRM (test)\"\nauth = \"oauth2\"\ndefault_data_center = \"test\"\n\
             [data_centers.test]\nbase_url = \"http://localhost:1/crm/v7\"\naccounts_url = \"{url}\"\nallowed_hosts = [\"127.0.0.1\", \"localhost\"]\n\
             [oauth2]\nauthorize_url = \"{{accounts_url}}/oauth/v2/auth\"\ntoken_url = \"{{accounts_url}}/oauth/v2/token\"\n\
             revoke_url = \"{{accounts_url}}/oauth/v2/token/revoke\"\nrevoke_style = \"query\"\nscopes = [\"ZohoCRM.modules.ALL\", \"ZohoCRM.settings.READ\"]\n\
             scope_delimiter = \"comma\"\nheader_prefix = \"Zoho-oauthtoken\"\nauthorize_params = {{ access_type = \"offline\", prompt = \"consent\" }}\n\
             use_api_domain = true\n"
        ),
    );
    env.run(&[
        "connection",
        "create",
        "crm",
        "--service",
        "zcrm",
        "--param",
        "client_id=1000.ZOHOCLIENT",
        "--param",
        "client_secret=zoho-client-secret-31337",
    ])
    .ok();
}

#[test]
fn zoho_self_client_code_api_domain_and_invalid_token_retry() {
    let (p, url) = zoho(ExpiresStyle::String);
    let env = Env::new();
    env.secret("zoho-client-secret-31337");
    zoho_service(&env, &url);
    let out = env.run(&["connection", "authorize", "crm", "--code", "1000.bogus.code"]);
    assert_eq!(
        out.fails(4),
        "the grant code expired or was already used (Zoho codes live 2-3 minutes): generate a new one and run `linkrun connection authorize crm --code ...`"
    );
    let code = p.mint_self_client_code("1000.ZOHOCLIENT", &["ZohoCRM.modules.ALL"]);
    env.run(&["connection", "authorize", "crm", "--code", &code]).ok();
    let v: serde_json::Value = serde_json::from_str(env.run(&["connection", "show", "crm", "--json"]).ok()).unwrap();
    assert_eq!(v["token"]["api_domain"], url.as_str());
    let out = env.script("invoke_url(#{ url: \"/Leads\", connection: \"crm\" }).data[0].echo_path", &[]);
    assert_eq!(out.ok(), "/crm/v7/Leads\n", "the relative URL went to the api_domain with the base path kept");
    // The provider kills the token early: INVALID_TOKEN, one refresh, one retry, success.
    p.expire_access_tokens();
    let out = env.script("invoke_url(#{ url: \"/Leads\", connection: \"crm\" }).data[0].id", &[]);
    assert_eq!(out.ok(), "1\n");
    let s = p.stats();
    assert_eq!((s.refreshes_ok, s.resource_401), (1, 1), "{s:?}");
    env.run(&["connection", "revoke", "crm"]).ok();
    assert_eq!(p.stats().revocations, 1);
    no_token_anywhere(&env, &p);
}

/// Registers every code and token the emulator issued: the harness then searches all outputs and
/// the vault files for them.
fn no_token_anywhere(env: &Env, p: &Provider) {
    let issued = p.issued_secrets();
    assert!(!issued.is_empty());
    for t in issued {
        env.secret(&t);
    }
    env.assert_no_secrets();
}

#[test]
fn zoho_expiry_answers_in_every_shape() {
    for (style, lifetime) in [
        (ExpiresStyle::Number, 3600),
        (ExpiresStyle::String, 3600),
        (ExpiresStyle::LegacySec, 3600),
        (ExpiresStyle::Missing, 3600),
    ] {
        let (p, url) = zoho(style);
        let env = Env::new();
        zoho_service(&env, &url);
        let code = p.mint_self_client_code("1000.ZOHOCLIENT", &["ZohoCRM.modules.ALL"]);
        env.run(&["connection", "authorize", "crm", "--code", &code]).ok();
        let v: serde_json::Value =
            serde_json::from_str(env.run(&["connection", "show", "crm", "--json"]).ok()).unwrap();
        let expires = v["token"]["expires_at"].as_str().unwrap().to_string();
        let obtained = v["token"]["obtained_at"].as_str().unwrap().to_string();
        let secs = |s: &str| -> i64 {
            let t: Vec<i64> = s[11..19].split(':').map(|x| x.parse().unwrap()).collect();
            t[0] * 3600 + t[1] * 60 + t[2]
        };
        let diff = (secs(&expires) - secs(&obtained)).rem_euclid(86_400);
        assert_eq!(diff, lifetime, "{style:?}: {expires} vs {obtained}");
    }
}

#[test]
fn servicenow_password_grant_and_refusal() {
    let mut cfg = ProviderConfig::servicenow("");
    cfg.clients = vec![ClientConfig::new("sn-client", "sn-client-secret-777", "instance")];
    cfg.users = vec![("integration.user".into(), "sn-user-password-555".into())];
    let (p, url) = emulator(cfg);
    let env = Env::new();
    env.secret("sn-client-secret-777");
    env.secret("sn-user-password-555");
    env.add_service(
        "sn.toml",
        &format!(
            "link_name = \"sn\"\nname = \"ServiceNow (test)\"\nauth = \"oauth2\"\nbase_url = \"{url}/api/now\"\n\
             [oauth2]\ntoken_url = \"{url}/oauth_token.do\"\nrevoke_url = \"{url}/oauth_revoke_token.do\"\nrevoke_style = \"query\"\n\
             grant_types = [\"password\", \"authorization_code\", \"client_credentials\"]\n"
        ),
    );
    env.run(&[
        "connection",
        "create",
        "snc",
        "--service",
        "sn",
        "--param",
        "client_id=sn-client",
        "--param",
        "client_secret=sn-client-secret-777",
        "--param",
        "username=integration.user",
        "--param",
        "password=wrong-password-1",
    ])
    .ok();
    let out = env.run(&["connection", "authorize", "snc"]);
    assert_eq!(
        out.fails(4),
        "ServiceNow (test) refused the credentials of connection `snc` (access_denied): check the client and user credentials, then run `linkrun connection authorize snc`"
    );
    env.run(&["connection", "delete", "snc", "--yes"]).ok();
    env.run(&[
        "connection",
        "create",
        "snc",
        "--service",
        "sn",
        "--param",
        "client_id=sn-client",
        "--param",
        "client_secret=sn-client-secret-777",
        "--param",
        "username=integration.user",
        "--param",
        "password=sn-user-password-555",
    ])
    .ok();
    env.run(&["connection", "authorize", "snc"]).ok();
    let out =
        env.script("invoke_url(#{ url: \"/table/customer_contact\", connection: \"snc\" }).result[0].echo_path", &[]);
    assert_eq!(out.ok(), "/api/now/table/customer_contact\n");
    p.expire_access_tokens();
    let out =
        env.script("invoke_url(#{ url: \"/table/sn_customerservice_case\", connection: \"snc\" }).result.len()", &[]);
    assert_eq!(out.ok(), "1\n");
    assert_eq!(p.stats().refreshes_ok, 1);
    no_token_anywhere(&env, &p);
}

/// GET a URL with a bare HTTP/1.0 request; returns (status, Location header).
fn get(url: &str) -> (u16, Option<String>) {
    use std::io::Write;
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let location = text
        .lines()
        .find_map(|l| l.strip_prefix("location: ").or_else(|| l.strip_prefix("Location: ")))
        .map(str::to_string);
    (status, location)
}

#[test]
fn zoho_code_flow_with_pkce_state_and_offline_access() {
    let (p, url) = zoho(ExpiresStyle::Number);
    let env = Env::new();
    env.secret("zoho-client-secret-31337");
    zoho_service(&env, &url);
    let mut child = env.spawn(&["connection", "authorize", "crm", "--port", "0", "--no-browser", "--timeout", "30"]);
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let auth = line.trim();
    for part in [
        "scope=ZohoCRM.modules.ALL%2CZohoCRM.settings.READ",
        "access_type=offline",
        "prompt=consent",
        "code_challenge_method=S256",
        "state=",
    ] {
        assert!(auth.contains(part), "{part} in {auth}");
    }
    let (status, location) = get(&format!("{auth}&approve=yes"));
    assert_eq!(status, 302);
    let callback = location.unwrap();
    assert!(callback.starts_with(&format!("{}?code=", redirect_of(auth))), "{callback}");
    assert_eq!(get(&callback).0, 200);
    child.stdout = Some(reader.into_inner());
    let out = finish(child, &line);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Zoho does not send a new refresh token on refresh: the old one is kept and keeps working.
    for _ in 0..2 {
        p.expire_access_tokens();
        assert_eq!(env.script("invoke_url(#{ url: \"/Leads\", connection: \"crm\" }).data[0].id", &[]).ok(), "1\n");
    }
    assert_eq!(p.stats().refreshes_ok, 2);
    no_token_anywhere(&env, &p);
}

#[test]
fn a_copied_code_is_exchanged_with_its_redirect_uri() {
    let (_p, url) = zoho(ExpiresStyle::Number);
    let env = Env::new();
    env.secret("zoho-client-secret-31337");
    zoho_service(&env, &url);
    let redirect = "https://app.example.com/oauth/callback";
    let (status, location) = get(&format!(
        "{url}/oauth/v2/auth?client_id=1000.ZOHOCLIENT&response_type=code&redirect_uri={}&scope=ZohoCRM.modules.ALL&access_type=offline&approve=yes",
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    ));
    assert_eq!(status, 302);
    let location = location.unwrap();
    let code = url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    env.secret(&code);
    let out = env.run(&["connection", "authorize", "crm", "--code", &code]);
    assert_eq!(out.code, 4, "without its redirect URI the code is refused");
    env.run(&["connection", "authorize", "crm", "--code", &code, "--redirect-uri", redirect]).ok();
    assert_eq!(env.script("invoke_url(#{ url: \"/Leads\", connection: \"crm\" }).data[0].id", &[]).ok(), "1\n");
}

#[test]
fn query_placement_and_basic_client_auth() {
    let op = Oidc::start(&json!({
        "clients": [{
            "client_id": CLIENT, "client_secret": SECRET, "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "api:read"
        }],
        "access_token_ttl": 60
    }));
    let env = Env::new();
    env.secret(SECRET);
    let base = op.url();
    env.add_service(
        "q.toml",
        &format!(
            "link_name = \"op\"\nname = \"Query OP\"\nauth = \"oauth2\"\nplacement = \"query\"\nbase_url = \"{base}\"\n\
             [oauth2]\ntoken_url = \"{base}/token\"\nclient_auth = \"basic\"\nscopes = [\"api:read\"]\ngrant_types = [\"client_credentials\"]\n"
        ),
    );
    env.run(&[
        "connection",
        "create",
        "c",
        "--service",
        "op",
        "--param",
        &format!("client_id={CLIENT}"),
        "--param",
        &format!("client_secret={SECRET}"),
    ])
    .ok();
    let out = env.run(&["connection", "authorize", "c", "--grant", "password"]);
    assert_eq!(
        out.fails(2),
        "service `op` does not allow the password grant: use --grant with one of client_credentials"
    );
    env.run(&["connection", "authorize", "c"]).ok();
    let p = env.write(
        "q.rhai",
        "let r = invoke_url(#{ url: \"/api/x\", parameters: #{ a: 1 }, connection: \"c\" }); [r.token_in, r.query]",
    );
    let out = env.run(&["--verbose", "run", p.to_str().unwrap()]);
    assert_eq!(out.ok(), "[\"query\",\"a=1\"]\n");
    assert!(out.stderr.contains("access_token=[redacted]"), "{}", out.stderr);
}

#[test]
fn a_code_obtained_elsewhere_and_a_401_from_the_provider() {
    let op = Oidc::start(&json!({
        "clients": [{
            "client_id": CLIENT, "client_secret": SECRET, "application_type": "native",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_post",
            "scope": "api:read"
        }],
        "access_token_ttl": 3600,
        "pkce_optional_clients": [CLIENT]
    }));
    let env = Env::new();
    env.secret(SECRET);
    oidc_service(&env, &op, 300);
    // A code the user got by approving in a browser elsewhere and copying the redirect.
    let redirect = COPIED_REDIRECT;
    let auth = format!(
        "{}/auth?response_type=code&client_id={CLIENT}&scope=api%3Aread&state=copied&redirect_uri={}",
        op.url(),
        url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect::<String>()
    );
    let landed = op.approve(&auth);
    let code = url::Url::parse(&landed).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    env.secret(&code);
    env.run(&["connection", "authorize", "c", "--code", &code, "--redirect-uri", redirect]).ok();
    assert_eq!(api_ok(&env).ok(), "true\n");
    // The provider ends the token while linkrun's clock still trusts it: the request gets a 401,
    // linkrun refreshes once and retries.
    op.expire_tokens();
    op.reset_stats();
    assert_eq!(api_ok(&env).ok(), "true\n");
    let stats = op.stats();
    assert_eq!(stats["api"], json!({"ok": 1, "unauthorized": 1}), "{stats}");
    assert_eq!(stats["token"]["refresh_token"], json!({"ok": 1, "failed": 0}), "{stats}");
}
