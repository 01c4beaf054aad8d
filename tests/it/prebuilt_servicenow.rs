//! The prebuilt ServiceNow services embedded from `connections/` (`servicenow`, OAuth 2.0, and
//! `servicenow_basic`): addressed by `--instance NAME` (NAME.service-now.com), by
//! `--param hostname=HOST` (a custom domain) or by `--instance sandbox` (the local sandbox,
//! following `LINKRUN_SANDBOX_URL`), credentials going to that one host only; `service show` tells
//! how to set them up at ServiceNow; scripts reach the Table API with Basic and with a password-grant
//! token from the ServiceNow OAuth emulator.

use std::path::Path;

use crate::common::{Env, Server};
use linkrun::service::{AuthKind, ClientAuth, GrantType, Origin, RevokeStyle, ScopeDelimiter, Service};
use linkrun_sandbox::oauth_provider::{ClientConfig, Provider, ProviderConfig};
use serde_json::{Value, json};

const CLIENT_ID: &str = "sn-prebuilt-client";
const CLIENT_SECRET: &str = "sn-prebuilt-client-secret-4242";
const USER: &str = "integration.user";
const PASSWORD: &str = "sn-integration-password-777";

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn definition(name: &str) -> Service {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("connections").join(format!("{name}.toml"));
    Service::load(&path, Origin::BuiltIn).unwrap()
}

/// Creates an OAuth connection of `servicenow` with `extra` addressing it, and returns its JSON.
fn create(env: &Env, link: &str, extra: &[&str]) -> Value {
    let id = format!("client_id={CLIENT_ID}");
    let secret = format!("client_secret={CLIENT_SECRET}");
    let mut args = vec!["connection", "create", link, "--service", "servicenow", "--param", &id, "--param", &secret];
    args.extend_from_slice(extra);
    env.run(&args).ok();
    json(env.run(&["connection", "show", link, "--json"]).ok())
}

/// The ServiceNow OAuth emulator in-process with one client and one user, and its URL.
fn emulator() -> (Provider, String) {
    let mut cfg = ProviderConfig::servicenow("");
    cfg.clients = vec![ClientConfig::new(CLIENT_ID, CLIENT_SECRET, "acme")];
    cfg.users = vec![(USER.into(), PASSWORD.into())];
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

// ---------------------------------------------------------------- the catalog

#[test]
fn both_services_are_listed_as_built_in() {
    let env = Env::new();
    let doc = json(env.run(&["service", "list", "--json"]).ok());
    for (name, auth) in [("servicenow", "oauth2"), ("servicenow_basic", "basic")] {
        let s = doc.as_array().unwrap().iter().find(|s| s["link_name"] == name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(s["origin"], "built_in", "{s}");
        assert_eq!(s["auth"], auth, "{s}");
        assert_eq!(s["file"], format!("<built-in>/{name}.toml"));
    }
}

#[test]
fn the_oauth_service_speaks_servicenow_oauth() {
    let s = definition("servicenow");
    assert_eq!(s.auth(), AuthKind::Oauth2);
    assert_eq!(s.def.instance_url.as_ref().unwrap().get_ref(), "https://{instance}.service-now.com");
    let o = s.def.oauth2.as_ref().unwrap();
    assert_eq!(o.authorize_url.as_ref().unwrap().get_ref(), "{base_url}/oauth_auth.do");
    assert_eq!(o.token_url.get_ref(), "{base_url}/oauth_token.do");
    assert_eq!(o.revoke_url.as_ref().unwrap().get_ref(), "{base_url}/oauth_revoke_token.do");
    assert_eq!(o.revoke_style, Some(RevokeStyle::Query));
    assert_eq!(o.header_prefix.as_deref(), Some("Bearer"));
    assert_eq!(o.client_auth, Some(ClientAuth::Form));
    assert_eq!(o.scope_delimiter, Some(ScopeDelimiter::Space));
    assert_eq!(o.grant_types, [GrantType::Password, GrantType::AuthorizationCode, GrantType::ClientCredentials]);
    let b = definition("servicenow_basic");
    assert_eq!(b.auth(), AuthKind::Basic);
    assert_eq!(b.def.instance_url, s.def.instance_url);
    for s in [&s, &b] {
        assert_eq!(s.named_instances(), ["sandbox"]);
        assert_eq!(s.def.test.as_ref().unwrap().url, "/api/now/table/customer_contact?sysparm_limit=1");
        let hostname = s.params().into_iter().find(|p| p.key == "hostname").unwrap();
        assert!(hostname.optional);
        assert_eq!(hostname.label, "Full host name for a custom domain, e.g. servicenow.example.com");
    }
}

// ---------------------------------------------------------------- addressing

#[test]
fn an_instance_name_is_its_service_now_host_and_nothing_else() {
    let env = Env::new();
    env.secret(CLIENT_SECRET);
    let c = create(&env, "sn", &["--instance", "Dev12345"]);
    assert_eq!(c["instance"], "dev12345");
    assert_eq!(c["base_url"], "https://dev12345.service-now.com");
    assert_eq!(c["allowed_hosts"], json!(["dev12345.service-now.com"]));
    assert_eq!(c["status"], "not_authorized");
    let text = env.run(&["connection", "show", "sn"]).ok().to_string();
    assert!(text.contains("base URL:    https://dev12345.service-now.com\n"), "{text}");
    env.run(&[
        "connection",
        "create",
        "snb",
        "--service",
        "servicenow_basic",
        "--instance",
        "dev12345",
        "--param",
        "username=u",
        "--param",
        "password=p",
    ])
    .ok();
    let c = json(env.run(&["connection", "show", "snb", "--json"]).ok());
    assert_eq!(c["base_url"], "https://dev12345.service-now.com");
    assert_eq!(c["allowed_hosts"], json!(["dev12345.service-now.com"]));
    assert_eq!(c["status"], "connected");
}

#[test]
fn a_custom_domain_is_the_only_allowed_host() {
    let env = Env::new();
    env.secret(CLIENT_SECRET);
    let c = create(&env, "sn", &["--param", "hostname=SN.Example.com"]);
    assert_eq!(c["instance"], "sn.example.com");
    assert_eq!(c["base_url"], "https://sn.example.com");
    assert_eq!(c["allowed_hosts"], json!(["sn.example.com"]));
    assert!(c["params"].get("hostname").is_none(), "{c}");
    env.set_env("SN_HOST", "basic.example.org");
    env.run(&[
        "connection",
        "create",
        "snb",
        "--service",
        "servicenow_basic",
        "--param-env",
        "hostname=SN_HOST",
        "--param",
        "username=u",
        "--param",
        "password=p",
    ])
    .ok();
    let c = json(env.run(&["connection", "show", "snb", "--json"]).ok());
    assert_eq!(c["base_url"], "https://basic.example.org");
    assert_eq!(c["allowed_hosts"], json!(["basic.example.org"]));
    // A script cannot send the credentials to the instance domain or anywhere else.
    let out =
        env.script("invoke_url(#{ url: \"https://evil.service-now.com/api/now/table/x\", connection: \"snb\" })", &[]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("evil.service-now.com"), "{}", out.stderr);
}

#[test]
fn the_sandbox_instance_follows_linkrun_sandbox_url() {
    let env = Env::new();
    env.secret(CLIENT_SECRET);
    let c = create(&env, "sn", &["--instance", "sandbox"]);
    assert_eq!(c["instance"], "sandbox");
    assert_eq!(c["base_url"], "http://127.0.0.1:8780");
    assert_eq!(c["allowed_hosts"], json!(["127.0.0.1", "localhost"]));
    env.set_env("LINKRUN_SANDBOX_URL", "http://127.0.0.1:9999");
    let c = json(env.run(&["connection", "show", "sn", "--json"]).ok());
    assert_eq!(c["base_url"], "http://127.0.0.1:9999");
    let doc = json(env.run(&["service", "show", "servicenow", "--json"]).ok());
    assert_eq!(doc["instances"]["sandbox"]["base_url"], "http://127.0.0.1:9999");
    assert_eq!(doc["custom_domain"], true);
}

#[test]
fn bad_instance_names_and_host_names_are_refused() {
    let env = Env::new();
    env.secret(CLIENT_SECRET);
    let base = ["connection", "create", "sn", "--service", "servicenow", "--param", "client_id=x"];
    let secret = format!("client_secret={CLIENT_SECRET}");
    let run = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--param", &secret]);
        args.extend_from_slice(extra);
        env.run(&args).fails(2)
    };
    for bad in ["dev.evil.com", "dev/x", "-dev", "dev_1", ""] {
        let e = run(&[&format!("--instance={bad}")]);
        assert!(e.starts_with(&format!("instance name `{bad}` is not valid")), "{e}");
        assert!(e.contains("--param hostname=HOST"), "{e}");
    }
    for bad in
        ["https://sn.example.com", "sn.example.com:8443", "sn.example.com/x", "localhost", "*.example.com", "a..b"]
    {
        let e = run(&["--param", &format!("hostname={bad}")]);
        assert!(e.starts_with(&format!("`{bad}` is not a host name")), "{e}");
    }
    let e = run(&["--instance", "dev1", "--param", "hostname=sn.example.com"]);
    assert!(e.starts_with("give either --instance dev1 or --param hostname=sn.example.com, not both"), "{e}");
    let e = run(&[]);
    assert_eq!(
        e,
        "service `servicenow` needs an instance: pass --instance NAME (its URL is `https://{instance}.service-now.com`), or one of `sandbox`, or --param hostname=HOST for a custom domain"
    );
    assert!(env.run(&["connection", "list", "--json"]).ok().trim() == "[]");
}

// ---------------------------------------------------------------- service show

#[test]
fn service_show_tells_how_to_set_it_up_at_servicenow() {
    let env = Env::new();
    let text = env.run(&["service", "show", "servicenow"]).ok().to_string();
    for want in [
        "auth:       oauth2 (placement: header)\n",
        "token:      Authorization: Bearer TOKEN\n",
        "instance:   https://{instance}.service-now.com (--instance NAME)\n",
        "  sandbox  http://127.0.0.1:8780  hosts: 127.0.0.1, localhost  (--instance sandbox)\n",
        "custom domain: --param hostname=HOST",
        "System OAuth > Application Registry",
        "Create an OAuth API endpoint for external clients",
        "Redirect URL to the redirect URI below",
        "  redirect URI:  http://127.0.0.1:8765/callback\n",
        "customer_contact and sn_customerservice_case",
        "sn_customerservice_agent",
        "snc_platform_rest_api_access",
        "grant types:   password, authorization_code, client_credentials (default: password)\n",
        "linkrun connection create LINK --service servicenow --instance NAME --param client_id=... --param client_secret\n",
        "  linkrun connection test LINK  # GET /api/now/table/customer_contact?sysparm_limit=1\n",
        "snippet:\n  let response = invoke_url(#{\n      url: \"/api/now/table/customer_contact?sysparm_limit=10&sysparm_fields=first_name,last_name,email,phone\",\n      type: \"GET\",\n      connection: \"LINK\"\n  });\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let text = env.run(&["service", "show", "servicenow_basic"]).ok().to_string();
    for want in [
        "auth:       basic (placement: header)\n",
        "customer_contact and sn_customerservice_case",
        "Basic auth must be allowed for the REST API",
        "--service servicenow_basic --instance NAME --param username=... --param password\n",
        "url: \"/api/now/table/customer_contact?sysparm_limit=10&sysparm_fields=first_name,last_name,email,phone\"",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

// ---------------------------------------------------------------- against a sandbox

#[test]
fn basic_auth_reaches_the_table_api_of_the_sandbox_instance() {
    let server = Server::start();
    let env = Env::new();
    let password = env.secret("basic-sn-password-31337");
    env.set_env("LINKRUN_SANDBOX_URL", &server.url());
    env.run(&[
        "connection",
        "create",
        "snb",
        "--service",
        "servicenow_basic",
        "--instance",
        "sandbox",
        "--param",
        "username=admin",
        "--param",
        &format!("password={password}"),
    ])
    .ok();
    let out = env.script(
        "let r = invoke_url(#{ url: \"/api/now/table/customer_contact?sysparm_limit=1\", connection: \"snb\" });\nr.path",
        &[],
    );
    assert_eq!(out.ok().trim(), "/api/now/table/customer_contact");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/api/now/table/customer_contact");
    let expected = format!("Basic {}", base64_encode(&format!("admin:{password}")));
    assert_eq!(reqs[0].header("authorization"), Some(expected.as_str()));
    let out = env.run(&["connection", "test", "snb"]);
    out.ok();
    assert_eq!(
        out.stderr,
        "connection `snb` works: GET /api/now/table/customer_contact?sysparm_limit=1 answered HTTP 200\n"
    );
}

#[test]
fn the_password_grant_reaches_the_sandbox_servicenow_oauth() {
    let (p, url) = emulator();
    let env = Env::new();
    env.secret(CLIENT_SECRET);
    env.secret(PASSWORD);
    env.set_env("LINKRUN_SANDBOX_URL", &url);
    let c = create(
        &env,
        "sn",
        &["--instance", "sandbox", "--param", &format!("username={USER}"), "--param", &format!("password={PASSWORD}")],
    );
    assert_eq!(c["base_url"], url.as_str());
    assert_eq!(c["status"], "not_authorized");
    env.run(&["connection", "authorize", "sn"]).ok();
    let c = json(env.run(&["connection", "show", "sn", "--json"]).ok());
    assert_eq!(c["status"], "connected");
    assert_eq!(c["token"]["grant_type"], "password");
    assert_eq!(p.stats().token_requests_by_grant.get("password"), Some(&1));
    let out = env.script(
        "let r = invoke_url(#{ url: \"/api/now/table/customer_contact\", connection: \"sn\" });\n\
         #{ path: r.result[0].echo_path, method: r.result[0].echo_method }",
        &[],
    );
    assert_eq!(json(out.ok()), json!({"path": "/api/now/table/customer_contact", "method": "GET"}));
    assert_eq!(p.stats().resource_requests, 1);
    assert_eq!(p.stats().resource_401, 0);
    env.run(&["connection", "test", "sn"]).ok();
    env.run(&["connection", "revoke", "sn"]).ok();
    assert_eq!(p.stats().revocations, 1);
    assert_eq!(json(env.run(&["connection", "show", "sn", "--json"]).ok())["status"], "revoked");
    for t in p.issued_secrets() {
        env.secret(&t);
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
