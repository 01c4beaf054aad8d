//! Every auth kind × placement lands exactly where it should and nowhere else.

use crate::common::{Env, Recorded, Server, service_toml};
use base64::Engine as _;

/// Creates service + connection, runs one request, returns what the server got.
fn one_request(env: &Env, server: &Server, toml: &str, create: &[&str], request: &str) -> Recorded {
    env.add_service("svc.toml", toml);
    let mut args = vec!["connection", "create", "conn", "--service", "svc"];
    args.extend_from_slice(create);
    env.run(&args).ok();
    server.clear();
    env.script(&format!("invoke_url(#{{ {request}, connection: \"conn\" }}); \"done\""), &[]).ok();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "exactly one request: {reqs:?}");
    reqs.into_iter().next().expect("one request")
}

fn occurrences(r: &Recorded, secret: &str) -> usize {
    r.all_text().matches(secret).count()
}

#[test]
fn api_key_in_header() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("hdr-key-8d0f2c1b9a77");
    let toml = service_toml(
        "svc",
        "api_key",
        Some("header"),
        &server.url(),
        "[[params]]\nkey = \"X-Api-Key\"\nsecret = true\n",
    );
    let r = one_request(&env, &server, &toml, &["--param", &format!("X-Api-Key={key}")], "url: \"/echo\"");
    assert_eq!(r.header("x-api-key"), Some(key.as_str()));
    assert_eq!(occurrences(&r, &key), 1, "only in the header: {}", r.all_text());
    assert_eq!(r.query, "");
}

#[test]
fn api_key_in_query() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("qry-key-51c9e0aa3f");
    let toml =
        service_toml("svc", "api_key", Some("query"), &server.url(), "[[params]]\nkey = \"api_key\"\nsecret = true\n");
    let r = one_request(
        &env,
        &server,
        &toml,
        &["--param", &format!("api_key={key}")],
        "url: \"/echo\", parameters: #{ q: \"x\" }",
    );
    assert_eq!(r.query_pairs(), vec![("q".to_string(), "x".to_string()), ("api_key".to_string(), key.clone())]);
    assert_eq!(occurrences(&r, &key), 1, "only in the query: {}", r.all_text());
}

#[test]
fn api_key_in_form_body() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("frm-key-77b1d2e3c4");
    let toml =
        service_toml("svc", "api_key", Some("form"), &server.url(), "[[params]]\nkey = \"token\"\nsecret = true\n");
    let r = one_request(
        &env,
        &server,
        &toml,
        &["--param", &format!("token={key}")],
        "url: \"/echo\", type: \"POST\", parameters: #{ name: \"Ann\" }",
    );
    assert_eq!(r.form_pairs(), vec![("name".to_string(), "Ann".to_string()), ("token".to_string(), key.clone())]);
    assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(occurrences(&r, &key), 1, "only in the body: {}", r.all_text());
}

#[test]
fn api_key_in_form_on_a_get_is_a_clear_error_and_nothing_is_sent() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("frm-key-0000aaaa1111");
    env.add_service(
        "svc.toml",
        &service_toml("svc", "api_key", Some("form"), &server.url(), "[[params]]\nkey = \"token\"\nsecret = true\n"),
    );
    env.run(&["connection", "create", "conn", "--service", "svc", "--param", &format!("token={key}")]).ok();
    let out = env.script(
        "let r = \"sent\"; try { invoke_url(#{ url: \"/echo\", connection: \"conn\" }); } catch (e) { r = e.kind + \": \" + e.message; } r",
        &[],
    );
    assert_eq!(
        out.ok().trim(),
        "bad_request: connection `conn` sends `token` as form data, which needs a form body: a GET request has none; use type POST, PUT or PATCH with map parameters"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn param_placement_overrides_service_placement() {
    let (env, server) = (Env::new(), Server::start());
    let a = env.secret("first-key-aaaa1111");
    let b = env.secret("second-key-bbbb2222");
    let toml = service_toml(
        "svc",
        "api_key",
        Some("header"),
        &server.url(),
        "[[params]]\nkey = \"X-Key\"\nsecret = true\n[[params]]\nkey = \"sig\"\nsecret = true\nplacement = \"query\"\n",
    );
    let r = one_request(
        &env,
        &server,
        &toml,
        &["--param", &format!("X-Key={a}"), "--param", &format!("sig={b}")],
        "url: \"/echo\"",
    );
    assert_eq!(r.header("x-key"), Some(a.as_str()));
    assert_eq!(r.query_pairs(), vec![("sig".to_string(), b.clone())]);
    assert_eq!(occurrences(&r, &a), 1);
    assert_eq!(occurrences(&r, &b), 1);
}

#[test]
fn basic_in_authorization_header_only() {
    let (env, server) = (Env::new(), Server::start());
    let pw = env.secret("pa55-w0rd-basic-9981");
    let toml = service_toml("svc", "basic", None, &format!("{}/api", server.url()), "");
    let r = one_request(
        &env,
        &server,
        &toml,
        &["--param", "username=admin", "--param", &format!("password={pw}")],
        "url: \"/echo\"",
    );
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{pw}")));
    assert_eq!(r.header("authorization"), Some(expected.as_str()));
    assert_eq!(r.path, "/api/echo", "relative URL keeps the base path");
    assert!(!r.all_text().contains(&pw));
    assert_eq!(r.query, "");
    assert_eq!(r.body, "");
}

#[test]
fn non_auth_param_goes_where_its_placement_says() {
    let (env, server) = (Env::new(), Server::start());
    let pw = env.secret("desk-pass-1234567890");
    let toml = service_toml(
        "svc",
        "basic",
        None,
        &server.url(),
        "[[params]]\nkey = \"orgId\"\nlabel = \"Organisation\"\nplacement = \"header\"\n",
    );
    let r = one_request(
        &env,
        &server,
        &toml,
        &["--param", "username=u", "--param", &format!("password={pw}"), "--param", "orgId=60001"],
        "url: \"/echo\"",
    );
    assert_eq!(r.header("orgid"), Some("60001"));
    assert!(r.header("authorization").is_some_and(|v| v.starts_with("Basic ")));
}

#[test]
fn none_sends_no_credentials() {
    let (env, server) = (Env::new(), Server::start());
    let toml = service_toml("svc", "none", None, &server.url(), "");
    let r = one_request(&env, &server, &toml, &[], "url: \"/echo\"");
    assert!(r.header("authorization").is_none());
    assert_eq!(r.query, "");
}

#[test]
fn credentials_win_over_a_clashing_script_header_and_query() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("real-key-c1a5h0000");
    let toml = service_toml(
        "svc",
        "api_key",
        Some("header"),
        &server.url(),
        "[[params]]\nkey = \"X-Api-Key\"\nsecret = true\n",
    );
    let r = one_request(
        &env,
        &server,
        &toml,
        &["--param", &format!("X-Api-Key={key}")],
        "url: \"/echo\", headers: #{ \"x-api-key\": \"fake\", \"X-Trace\": \"1\" }",
    );
    let values: Vec<_> = r.headers.iter().filter(|(n, _)| n == "x-api-key").map(|(_, v)| v.clone()).collect();
    assert_eq!(values, vec![key.clone()]);
    assert_eq!(r.header("x-trace"), Some("1"));
}

/// A service whose API key `api_key` goes in the JSON body, and a connection `conn` with `key`.
fn json_key_setup(env: &Env, server: &Server, key: &str, extra: &str) {
    let toml = service_toml(
        "svc",
        "api_key",
        Some("json"),
        &server.url(),
        &format!("{extra}[[params]]\nkey = \"api_key\"\nsecret = true\n"),
    );
    env.add_service("svc.toml", &toml);
    env.run(&["connection", "create", "conn", "--service", "svc", "--param", &format!("api_key={key}")]).ok();
}

fn body_json(r: &Recorded) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body))
}

#[test]
fn api_key_in_the_json_body_joins_the_script_body_or_makes_one() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("json-key-3b7e19d0c2");
    json_key_setup(&env, &server, &key, "");
    // A script's fake `api_key` loses to the connection's, like a clashing header.
    env.script(
        "invoke_url(#{ url: \"/echo\", type: \"POST\", body: #{ name: \"Ann\", api_key: \"fake\" }, connection: \"conn\" }); ()",
        &[],
    )
    .ok();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(body_json(&reqs[0]), serde_json::json!({"name": "Ann", "api_key": key}));
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!(occurrences(&reqs[0], &key), 1, "only in the body: {}", reqs[0].all_text());
    assert_eq!(reqs[0].query, "");
    // A POST without a body gets `{"api_key": KEY}`.
    server.clear();
    env.script("invoke_url(#{ url: \"/echo\", type: \"PUT\", connection: \"conn\" }); ()", &[]).ok();
    let reqs = server.requests();
    assert_eq!(body_json(&reqs[0]), serde_json::json!({"api_key": key}));
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
}

#[test]
fn api_key_in_the_json_body_is_not_sent_again_across_a_redirect_to_another_origin() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("json-key-redirect-a9f4e1");
    json_key_setup(&env, &server, &key, "allowed_hosts = [\"127.0.0.1\", \"localhost\"]\n");
    let target = format!("{}/landing", server.url_localhost());
    env.script(
        &format!(
            "invoke_url(#{{ url: \"/redirect?status=307&to={target}\", type: \"POST\", body: #{{ name: \"Ann\" }}, connection: \"conn\" }}); ()"
        ),
        &[],
    )
    .ok();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(body_json(&reqs[0]), serde_json::json!({"name": "Ann", "api_key": key}));
    assert_eq!((reqs[1].method.as_str(), reqs[1].path.as_str()), ("POST", "/landing"));
    assert_eq!(body_json(&reqs[1]), serde_json::json!({"name": "Ann"}), "the 307 re-sends the script's body only");
    assert!(!reqs[1].all_text().contains(&key), "the key crossed origins: {}", reqs[1].all_text());
    // On the same origin the key goes again.
    server.clear();
    env.script(
        "invoke_url(#{ url: \"/redirect?status=307&to=/again\", type: \"POST\", body: #{ n: 1 }, connection: \"conn\" }); ()",
        &[],
    )
    .ok();
    let reqs = server.requests();
    assert_eq!(body_json(&reqs[1]), serde_json::json!({"n": 1, "api_key": key}));
}

#[test]
fn verbose_traces_a_json_key_request_without_the_key() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("json-key-verbose-70c3aa");
    json_key_setup(&env, &server, &key, "");
    let out = env.script(
        "invoke_url(#{ url: \"/echo?q=1\", type: \"POST\", body: #{ a: 1 }, connection: \"conn\" }); \"done\"",
        &["--verbose"],
    );
    assert_eq!(out.ok().trim(), "done");
    let trace: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("linkrun: POST ")).collect();
    assert_eq!(trace.len(), 1, "{}", out.stderr);
    assert!(trace[0].starts_with(&format!("linkrun: POST {}/echo?q=1 -> 200 (", server.url())), "{}", trace[0]);
    assert!(!out.stderr.contains(&key));
    assert_eq!(body_json(&server.requests()[0])["api_key"], key.as_str(), "the key was sent");
}

#[test]
fn api_key_in_the_json_body_needs_a_json_object_body_and_nothing_is_sent_otherwise() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("json-key-refused-12ab34");
    json_key_setup(&env, &server, &key, "");
    let head = "connection `conn` sends `api_key` in the JSON body, which needs a JSON object body:";
    for (request, why) in [
        ("type: \"POST\", body: [1, 2]", "this request's JSON body is an array, not an object; send `body` as a map"),
        (
            "type: \"POST\", parameters: #{ a: 1 }",
            "this request's body is a form (map `parameters`); send the map as `body` instead",
        ),
        (
            "type: \"POST\", body: \"hello\"",
            "this request's body is `text/plain`, not a JSON object; send `body` as a map",
        ),
        ("type: \"GET\"", "a GET request has none; use type POST, PUT or PATCH with `body` a map"),
    ] {
        let out = env.script(
            &format!(
                "let r = \"sent\"; try {{ invoke_url(#{{ url: \"/echo\", {request}, connection: \"conn\" }}); }} catch (e) {{ r = e.kind + \": \" + e.message; }} r"
            ),
            &[],
        );
        assert_eq!(out.ok().trim(), format!("bad_request: {head} {why}"), "{request}");
    }
    assert!(server.requests().is_empty());
}

#[test]
fn client_credentials_go_in_a_json_body_with_client_auth_json() {
    let (env, server) = (Env::new(), Server::start());
    let url = server.url();
    let secret = env.secret("json-client-secret-77ab");
    env.add_service(
        "op.toml",
        &service_toml(
            "op",
            "oauth2",
            Some("header"),
            &url,
            &format!(
                "[oauth2]\ntoken_url = \"{url}/token\"\nclient_auth = \"json\"\nscopes = [\"api.read\"]\ngrant_types = [\"client_credentials\"]\n"
            ),
        ),
    );
    let client_secret = format!("client_secret={secret}");
    env.run(&["connection", "create", "c", "--service", "op", "--param", "client_id=cid", "--param", &client_secret])
        .ok();
    env.run(&["connection", "authorize", "c", "--grant", "client_credentials"]).ok();
    let token = server.requests().into_iter().find(|r| r.path == "/token").expect("a token request");
    assert_eq!(token.header("content-type"), Some("application/json"), "{token:?}");
    let body: serde_json::Value = serde_json::from_str(&token.body).expect("a JSON body");
    assert_eq!(
        body,
        serde_json::json!({"grant_type": "client_credentials", "client_id": "cid", "client_secret": secret,
                           "scope": "api.read"})
    );
    assert_eq!(token.header("authorization"), None, "the credentials are in the body only");
    let sent = env.script("invoke_url(#{ url: \"/echo\", connection: \"c\" }).headers.authorization", &[]);
    assert_eq!(sent.ok(), "Bearer srv-access-token-1\n");
}
