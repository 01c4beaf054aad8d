//! Credentials go only to allowed hosts, only over HTTPS except to loopback, and never across a
//! redirect to another host; each refusal happens before anything is sent.

use crate::common::{Env, Server, service_toml};

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

/// The services `q` (query key), `b` (Basic) and the connections `cq`, `cb` on `server`; returns
/// the query key and the Basic password.
fn query_and_basic(env: &Env, server: &Server) -> (String, String) {
    let key = env.secret("qkey-crossport-19cd");
    let pw = env.secret("basicpw-crossport-27de");
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
    (key, pw)
}

#[test]
fn a_redirect_to_another_port_on_the_same_host_carries_no_credentials() {
    let (env, server, other) = (Env::new(), Server::start(), Server::start());
    let key = setup(&env, &server, "allowed_hosts = [\"127.0.0.1\"]\n");
    let (qkey, _) = query_and_basic(&env, &server);
    let target = format!("{}/landing", other.url());
    for conn in ["conn", "cq", "cb"] {
        server.clear();
        other.clear();
        assert_eq!(caught(&env, &format!("url: \"/redirect?to={target}\", connection: \"{conn}\"")), "sent", "{conn}");
        let first = server.requests();
        assert_eq!(first.len(), 1, "{conn}");
        assert!(
            first[0].all_text().contains(&key)
                || first[0].all_text().contains(&qkey)
                || first[0].header("authorization").is_some(),
            "{conn}: the first hop has the credentials"
        );
        let second = other.requests();
        assert_eq!(second.len(), 1, "{conn}");
        assert_eq!(second[0].path, "/landing");
        let text = second[0].all_text();
        assert!(!text.contains(&key) && !text.contains(&qkey), "{conn}: credential crossed ports: {text}");
        assert!(second[0].header("authorization").is_none(), "{conn}: {text}");
    }
}

#[test]
fn an_allowed_host_with_a_port_allows_only_that_port() {
    let (env, server, other) = (Env::new(), Server::start(), Server::start());
    let key = setup(&env, &server, &format!("allowed_hosts = [\"127.0.0.1:{}\"]\n", other.addr.port()));
    let got = caught(&env, &format!("url: \"{}/x\", connection: \"conn\"", server.url()));
    assert_eq!(
        got,
        format!(
            "host_refused|refusing to send the credentials of connection `conn` to `127.0.0.1:{}`: service `svc` allows only `127.0.0.1:{}`; call an allowed host or add this one to the service's `allowed_hosts`|conn",
            server.addr.port(),
            other.addr.port()
        )
    );
    assert!(server.requests().is_empty());
    assert_eq!(caught(&env, &format!("url: \"{}/y\", connection: \"conn\"", other.url())), "sent");
    assert_eq!(other.requests()[0].header("x-api-key"), Some(key.as_str()));
}

#[test]
fn an_allowed_host_without_a_port_allows_only_the_base_url_port() {
    let (env, server, other) = (Env::new(), Server::start(), Server::start());
    let key = setup(&env, &server, "allowed_hosts = [\"127.0.0.1\"]\n");
    let got = caught(&env, &format!("url: \"{}/x\", connection: \"conn\"", other.url()));
    assert!(
        got.starts_with(&format!(
            "host_refused|refusing to send the credentials of connection `conn` to `127.0.0.1:{}`:",
            other.addr.port()
        )),
        "{got}"
    );
    assert!(other.requests().is_empty());
    assert_eq!(caught(&env, &format!("url: \"{}/y\", connection: \"conn\"", server.url())), "sent");
    assert_eq!(server.requests()[0].header("x-api-key"), Some(key.as_str()));
}

#[test]
fn service_add_accepts_host_ports_and_refuses_a_bad_port() {
    let env = Env::new();
    for (i, hosts) in ["\"127.0.0.1:8080\"", "\"[::1]:8080\"", "\"::1\"", "\"*.example.com:8443\""].iter().enumerate() {
        let p = env.write(
            &format!("ok{i}.toml"),
            &service_toml(
                &format!("ok{i}"),
                "basic",
                None,
                "https://api.example.com",
                &format!("allowed_hosts = [{hosts}]\n"),
            ),
        );
        env.run(&["service", "add", p.to_str().unwrap()]).ok();
    }
    for (i, hosts) in ["\"127.0.0.1:0\"", "\"127.0.0.1:http\"", "\"[::1]:99999\"", "\"127.0.0.1:\""].iter().enumerate()
    {
        let p = env.write(
            &format!("bad{i}.toml"),
            &service_toml(
                &format!("bad{i}"),
                "basic",
                None,
                "https://api.example.com",
                &format!("allowed_hosts = [{hosts}]\n"),
            ),
        );
        let msg = env.run(&["service", "add", p.to_str().unwrap()]).fails(2);
        assert!(msg.contains("is not a host name"), "{hosts}: {msg}");
    }
}

#[test]
fn loopback_never_goes_through_a_proxy() {
    let (env, server, proxy) = (Env::new(), Server::start(), Server::start());
    let key = setup(&env, &server, "allowed_hosts = [\"127.0.0.1\", \"localhost\"]\n");
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        env.unset_env("HTTP_PROXY");
        env.unset_env("http_proxy");
        env.unset_env("ALL_PROXY");
        env.unset_env("all_proxy");
        env.set_env(var, &proxy.url());
        server.clear();
        assert_eq!(caught(&env, "url: \"/echo\", connection: \"conn\""), "sent", "{var}");
        let to_localhost = format!("url: \"{}/echo\", connection: \"conn\"", server.url_localhost());
        assert_eq!(caught(&env, &to_localhost), "sent", "{var}");
        let reqs = server.requests();
        assert_eq!(reqs.len(), 2, "{var}");
        assert!(reqs.iter().all(|r| r.header("x-api-key") == Some(key.as_str())), "{var}");
        assert!(proxy.requests().is_empty(), "{var}: the proxy saw {:?}", proxy.requests());
    }
}

#[test]
fn other_hosts_go_through_the_proxy_unless_no_proxy_lists_them() {
    let (env, proxy) = (Env::new(), Server::start());
    env.set_env("HTTP_PROXY", &proxy.url());
    assert_eq!(caught(&env, "url: \"http://dest.invalid/through\""), "sent");
    let reqs = proxy.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].path, "/through");
    proxy.clear();
    for no_proxy in ["dest.invalid", "example.org, .invalid", "*"] {
        env.set_env("NO_PROXY", no_proxy);
        let got = caught(&env, "url: \"http://dest.invalid/direct\"");
        assert!(got.starts_with("network|"), "{no_proxy}: {got}");
        assert!(proxy.requests().is_empty(), "{no_proxy}: {:?}", proxy.requests());
    }
}

#[test]
fn userinfo_is_refused_on_a_connection_and_stripped_without_one() {
    let (env, server) = (Env::new(), Server::start());
    setup(&env, &server, "");
    let pw = env.secret("userinfo-pw-6c1f");
    let with_userinfo = format!("http://someone:{pw}@{}/echo", server.addr);
    let got = caught(&env, &format!("url: \"{with_userinfo}\", connection: \"conn\""));
    assert_eq!(
        got,
        "bad_request|the `url` of a request on connection `conn` has a user name or password in it (`user:password@`), which would be sent beside the connection's credentials: remove it from the URL|conn"
    );
    assert!(!got.contains("someone"));
    assert!(server.requests().is_empty());
    assert_eq!(caught(&env, &format!("url: \"{with_userinfo}\"")), "sent");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].header("authorization").is_none(), "{}", reqs[0].all_text());
    assert!(!reqs[0].all_text().contains(&pw));
}

#[test]
fn a_redirect_to_a_url_with_userinfo_sends_no_authorization() {
    let (env, server) = (Env::new(), Server::start());
    let target = format!("http://someone:pw@{}/landing", server.addr);
    assert_eq!(caught(&env, &format!("url: \"{}/redirect?to={target}\"", server.url())), "sent");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs[1].header("authorization").is_none(), "{}", reqs[1].all_text());
}

#[test]
fn upper_case_schemes_are_absolute() {
    let (env, server) = (Env::new(), Server::start());
    let key = setup(&env, &server, "");
    let upper = server.url().replacen("http", "HTTP", 1);
    assert_eq!(caught(&env, &format!("url: \"{upper}/echo\", connection: \"conn\"")), "sent");
    assert_eq!(caught(&env, &format!("url: \"{}/plain\"", server.url().replacen("http", "HtTp", 1))), "sent");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].path, "/echo");
    assert_eq!(reqs[0].header("x-api-key"), Some(key.as_str()));
    assert_eq!(reqs[1].path, "/plain");
}

/// The sandbox's OAuth emulator (ServiceNow flavour) on 127.0.0.1 for the life of the test process.
fn emulator(client_secret: &str) -> String {
    use linkrun_sandbox::oauth_provider::{ClientConfig, Provider, ProviderConfig};
    let mut cfg = ProviderConfig::servicenow("");
    cfg.clients = vec![ClientConfig::new("sn-client", client_secret, "instance")];
    let provider = Provider::new(cfg);
    let router = provider.router();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _keep = provider;
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let (addr, handle) = linkrun_sandbox::oauth_provider::serve(router).await.unwrap();
            tx.send(addr).unwrap();
            let _ = handle.await;
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

#[test]
fn token_and_revoke_requests_over_plain_http_to_a_remote_host_are_refused_when_sent() {
    let (env, api, proxy) = (Env::new(), Server::start(), Server::start());
    let secret = env.secret("cc-client-secret-4411aa");
    let emu = emulator(&secret);
    let token_base = format!("${{LINKRUN_TEST_TOKEN_URL:-{emu}}}");
    env.add_service(
        "op.toml",
        &service_toml(
            "op",
            "oauth2",
            None,
            &api.url(),
            &format!(
                "[oauth2]\ntoken_url = \"{token_base}/oauth_token.do\"\nrevoke_url = \"{token_base}/oauth_revoke_token.do\"\n\
                 revoke_style = \"query\"\ngrant_types = [\"client_credentials\"]\n"
            ),
        ),
    );
    let create = ["connection", "create", "c", "--service", "op", "--param", "client_id=sn-client"];
    env.run(&[&create[..], &["--param", &format!("client_secret={secret}")]].concat()).ok();
    env.run(&["connection", "authorize", "c", "--grant", "client_credentials"]).ok();
    // The token endpoint now points (through the environment) at a remote host over plain HTTP,
    // and a proxy would see everything sent there.
    env.set_env("LINKRUN_TEST_TOKEN_URL", "http://token.example.test");
    env.set_env("HTTP_PROXY", &proxy.url());
    let got = caught(&env, "url: \"/status/401\", connection: \"c\"");
    assert_eq!(
        got,
        "connection|refusing to send the client secret and tokens of connection `c` over plain HTTP to `token.example.test`: make the `token_url` and `revoke_url` of service `op` (or the environment variables they use) https:// URLs (plain HTTP is allowed only to 127.0.0.1, ::1 and localhost), then run `linkrun connection authorize c`|c"
    );
    assert_eq!(api.requests().len(), 1, "only the first try reached the API");
    let out = env.run(&["connection", "revoke", "c"]);
    out.ok();
    assert!(out.stderr.contains("the revocation was not sent"), "{}", out.stderr);
    let out = env.run(&["connection", "authorize", "c", "--grant", "client_credentials"]);
    assert!(out.fails(4).starts_with("refusing to send the client secret of connection `c` over plain HTTP"));
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());
}
