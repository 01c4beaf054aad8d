//! Credentials go only to allowed hosts, only over HTTPS except to loopback, and never across a
//! redirect to another host; each refusal happens before anything is sent.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Env, Server, service_toml};

fn setup(env: &Env, server: &Server, extra: &str) -> String {
    let key = env.secret("host-rule-key-5e3a9d");
    env.add_service(
        "svc.toml",
        &service_toml(
            "svc",
            "api_key",
            Some("header"),
            &server.url(),
            &format!("{extra}[[params]]\nkey = \"X-Api-Key\"\nsecret = true\n"),
        ),
    );
    env.run(&["connection", "create", "conn", "--service", "svc", "--param", &format!("X-Api-Key={key}")]).ok();
    key
}

fn caught(env: &Env, request: &str) -> String {
    env.script(&format!("let k = \"\"; try {{ invoke_url(#{{ {request} }}); k = \"sent\"; }} catch (e) {{ k = e.kind + \"|\" + e.message + \"|\" + e.connection; }} k"), &[])
        .ok()
        .trim()
        .to_string()
}

#[test]
fn a_host_outside_the_allow_list_is_refused_before_sending() {
    let (env, server) = (Env::new(), Server::start());
    setup(&env, &server, "allowed_hosts = [\"api.example.com\"]\n");
    let got = caught(&env, &format!("url: \"{}/echo\", connection: \"conn\"", server.url()));
    assert_eq!(
        got,
        "host_refused|refusing to send the credentials of connection `conn` to `127.0.0.1`: service `svc` allows only `api.example.com`; call an allowed host or add this one to the service's `allowed_hosts`|conn"
    );
    assert!(server.requests().is_empty());
}

#[test]
fn plain_http_to_a_non_loopback_host_is_refused_before_sending() {
    let (env, server) = (Env::new(), Server::start());
    setup(&env, &server, "allowed_hosts = [\"127.0.0.1\", \"plain.example.test\"]\n");
    let got = caught(&env, "url: \"http://plain.example.test/x\", connection: \"conn\"");
    assert_eq!(
        got,
        "host_refused|refusing to send the credentials of connection `conn` over plain HTTP to `plain.example.test`: use an https:// URL (plain HTTP is allowed only to 127.0.0.1, ::1 and localhost)|conn"
    );
}

#[test]
fn a_redirect_to_another_host_carries_no_credentials() {
    let (env, server) = (Env::new(), Server::start());
    let key = setup(&env, &server, "allowed_hosts = [\"127.0.0.1\", \"localhost\"]\n");
    let target = format!("{}/landing", server.url_localhost());
    let got = caught(&env, &format!("url: \"/redirect\", parameters: #{{ to: \"{target}\" }}, connection: \"conn\""));
    assert_eq!(got, "sent");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].header("x-api-key"), Some(key.as_str()));
    assert_eq!(reqs[1].path, "/landing");
    assert!(!reqs[1].all_text().contains(&key), "credential crossed hosts: {}", reqs[1].all_text());
}

#[test]
fn a_redirect_on_the_same_host_keeps_credentials() {
    let (env, server) = (Env::new(), Server::start());
    let key = setup(&env, &server, "");
    assert_eq!(caught(&env, "url: \"/redirect\", parameters: #{ to: \"/landing\" }, connection: \"conn\""), "sent");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].path, "/landing");
    assert_eq!(reqs[1].header("x-api-key"), Some(key.as_str()));
}

#[test]
fn query_and_basic_credentials_do_not_cross_hosts_either() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("qkey-crosshost-77aa");
    let pw = env.secret("basicpw-crosshost-88bb");
    env.add_service(
        "q.toml",
        &service_toml("q", "api_key", Some("query"), &server.url(), "[[params]]\nkey = \"api_key\"\nsecret = true\n"),
    );
    env.add_service("b.toml", &service_toml("b", "basic", None, &server.url(), ""));
    env.run(&["connection", "create", "cq", "--service", "q", "--param", &format!("api_key={key}")]).ok();
    env.run(&[
        "connection",
        "create",
        "cb",
        "--service",
        "b",
        "--param",
        "username=u",
        "--param",
        &format!("password={pw}"),
    ])
    .ok();
    let target = format!("{}/landing", server.url_localhost());
    for conn in ["cq", "cb"] {
        server.clear();
        assert_eq!(caught(&env, &format!("url: \"/redirect?to={target}\", connection: \"{conn}\"")), "sent");
        let reqs = server.requests();
        assert_eq!(reqs.len(), 2, "{conn}");
        assert!(
            reqs[0].all_text().contains(&key) || reqs[0].header("authorization").is_some(),
            "{conn}: first hop has it"
        );
        assert!(!reqs[1].all_text().contains(&key), "{conn}");
        assert!(reqs[1].header("authorization").is_none(), "{conn}");
    }
}

#[test]
fn see_other_turns_post_into_get_and_307_keeps_the_body() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    env.script(
        &format!(
            "invoke_url(#{{ url: \"{u}/redirect?status=303&to=/after\", type: \"POST\", parameters: #{{ a: 1 }} }}); ()"
        ),
        &[],
    )
    .ok();
    env.script(
        &format!(
            "invoke_url(#{{ url: \"{u}/redirect?status=307&to=/kept\", type: \"POST\", parameters: #{{ a: 1 }} }}); ()"
        ),
        &[],
    )
    .ok();
    let r = server.requests();
    assert_eq!((r[1].method.as_str(), r[1].path.as_str(), r[1].body.as_str()), ("GET", "/after", ""));
    assert_eq!((r[3].method.as_str(), r[3].path.as_str(), r[3].body.as_str()), ("POST", "/kept", "a=1"));
}

#[test]
fn a_script_authorization_header_is_dropped_on_a_cross_host_redirect() {
    let (env, server) = (Env::new(), Server::start());
    let target = format!("{}/landing", server.url_localhost());
    env.script(
        &format!(
            "invoke_url(#{{ url: \"{}/redirect?to={target}\", headers: #{{ Authorization: \"Bearer mine\" }} }}); ()",
            server.url()
        ),
        &[],
    )
    .ok();
    let r = server.requests();
    assert_eq!(r[0].header("authorization"), Some("Bearer mine"));
    assert!(r[1].header("authorization").is_none());
}
