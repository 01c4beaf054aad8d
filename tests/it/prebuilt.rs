//! The prebuilt Zoho services embedded from `connections/` (`zoho`, `zoho_crm`, `zoho_desk`,
//! `zoho_campaigns`): their data centers match docs/api-facts.md §1, each has a `sandbox` data center
//! following `LINKRUN_SANDBOX_URL`, `service show` tells how to set them up at Zoho, and a script
//! runs unchanged against a stand-in sandbox (the Zoho Accounts emulator plus a Desk echo).

use std::path::Path;

use crate::common::Env;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use linkrun::service::{ClientAuth, GrantType, Origin, RevokeStyle, ScopeDelimiter, Service};
use linkrun_sandbox::oauth_provider::{ClientConfig, Provider, ProviderConfig};
use serde_json::{Value, json};

const SERVICES: [&str; 4] = ["zoho", "zoho_campaigns", "zoho_crm", "zoho_desk"];

/// (data center, accounts server, API domain, web-app domain): docs/api-facts.md §1.1.
const DCS: [(&str, &str, &str, &str); 9] = [
    ("us", "https://accounts.zoho.com", "zohoapis.com", "zoho.com"),
    ("eu", "https://accounts.zoho.eu", "zohoapis.eu", "zoho.eu"),
    ("in", "https://accounts.zoho.in", "zohoapis.in", "zoho.in"),
    ("au", "https://accounts.zoho.com.au", "zohoapis.com.au", "zoho.com.au"),
    ("jp", "https://accounts.zoho.jp", "zohoapis.jp", "zoho.jp"),
    ("ca", "https://accounts.zohocloud.ca", "zohoapis.ca", "zohocloud.ca"),
    ("cn", "https://accounts.zoho.com.cn", "zohoapis.com.cn", "zoho.com.cn"),
    ("sa", "https://accounts.zoho.sa", "zohoapis.sa", "zoho.sa"),
    ("uk", "https://accounts.zoho.uk", "zohoapis.uk", "zoho.uk"),
];

const CLIENT_ID: &str = "1000.PREBUILTCLIENT";
const CLIENT_SECRET: &str = "prebuilt-client-secret-4242";

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// The repository's definition of a prebuilt service, parsed with linkrun's own parser.
fn definition(name: &str) -> Service {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("connections").join(format!("{name}.toml"));
    Service::load(&path, Origin::BuiltIn).unwrap()
}

fn create(env: &Env, link: &str, service: &str, extra: &[&str]) -> Value {
    let id = format!("client_id={CLIENT_ID}");
    let secret = format!("client_secret={CLIENT_SECRET}");
    let mut args = vec!["connection", "create", link, "--service", service, "--param", &id, "--param", &secret];
    args.extend_from_slice(extra);
    env.run(&args).ok();
    json(env.run(&["connection", "show", link, "--json"]).ok())
}

// ---------------------------------------------------------------- the catalog

#[test]
fn every_prebuilt_service_is_listed_as_built_in() {
    let env = Env::new();
    let doc = json(env.run(&["service", "list", "--json"]).ok());
    for name in SERVICES {
        let s = doc.as_array().unwrap().iter().find(|s| s["link_name"] == name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(s["origin"], "built_in", "{s}");
        assert_eq!(s["auth"], "oauth2", "{s}");
        assert_eq!(s["file"], format!("<built-in>/{name}.toml"));
    }
    let text = env.run(&["service", "list"]).ok().to_string();
    assert!(text.contains("zoho_crm          oauth2    built-in   Zoho CRM\n"), "{text}");
    assert!(text.contains("zoho_desk         oauth2    built-in   Zoho Desk\n"), "{text}");
}

#[test]
fn every_prebuilt_service_speaks_zoho_oauth() {
    for name in SERVICES {
        let s = definition(name);
        let o = s.def.oauth2.as_ref().unwrap();
        assert_eq!(o.authorize_url.as_ref().unwrap().get_ref(), "{accounts_url}/oauth/v2/auth", "{name}");
        assert_eq!(o.token_url.get_ref(), "{accounts_url}/oauth/v2/token", "{name}");
        assert_eq!(o.revoke_url.as_ref().unwrap().get_ref(), "{accounts_url}/oauth/v2/token/revoke", "{name}");
        assert_eq!(o.revoke_style, Some(RevokeStyle::Query), "{name}");
        assert_eq!(o.scope_delimiter, Some(ScopeDelimiter::Comma), "{name}");
        assert_eq!(o.header_prefix.as_deref(), Some("Zoho-oauthtoken"), "{name}");
        assert_eq!(o.client_auth, Some(ClientAuth::Form), "{name}");
        assert_eq!(o.authorize_params.get("access_type").map(String::as_str), Some("offline"), "{name}");
        assert_eq!(o.authorize_params.get("prompt").map(String::as_str), Some("consent"), "{name}");
        assert_eq!(o.grant_types, [GrantType::AuthorizationCode, GrantType::ClientCredentials], "{name}");
        assert_eq!(s.def.default_data_center.as_ref().unwrap().get_ref(), "us", "{name}");
        assert!(s.params().iter().any(|p| p.key == "soid" && p.optional), "{name}: an optional soid param");
    }
    let scopes = |name: &str| definition(name).def.oauth2.unwrap().scopes;
    assert_eq!(
        scopes("zoho_crm"),
        ["ZohoCRM.modules.ALL", "ZohoCRM.settings.READ", "ZohoCRM.users.READ", "ZohoCRM.org.READ", "ZohoCRM.coql.READ"]
    );
    assert_eq!(
        scopes("zoho_desk"),
        ["Desk.tickets.ALL", "Desk.contacts.CREATE", "Desk.basic.READ", "Desk.settings.READ"]
    );
    assert_eq!(scopes("zoho_campaigns"), ["ZohoCampaigns.contact.UPDATE"]);
    assert!(scopes("zoho").is_empty(), "the generic service takes --scope");
    // The api_domain of the token answer is the CRM's (and the generic service's) host; Desk and
    // Campaigns live on their own hosts.
    let api_domain = |name: &str| definition(name).def.oauth2.unwrap().use_api_domain;
    assert!(api_domain("zoho_crm") && api_domain("zoho"));
    assert!(!api_domain("zoho_desk") && !api_domain("zoho_campaigns"));
}

#[test]
fn every_prebuilt_service_has_every_zoho_data_center_and_the_sandbox() {
    let env = Env::new();
    for name in SERVICES {
        let doc = json(env.run(&["service", "show", name, "--json"]).ok());
        let dcs = doc["data_centers"].as_object().unwrap();
        let mut names: Vec<&str> = dcs.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["au", "ca", "cn", "eu", "in", "jp", "sa", "sandbox", "uk", "us"], "{name}");
        assert_eq!(doc["default_data_center"], "us");
        for (dc, accounts, api, web) in DCS {
            let d = &dcs[dc];
            assert_eq!(d["accounts_url"], accounts, "{name} {dc}");
            let base = d["base_url"].as_str().unwrap();
            let base_host = url::Url::parse(base).unwrap().host_str().unwrap().to_string();
            assert!(base.starts_with("https://"), "{name} {dc}: {base}");
            let hosts: Vec<&str> = d["allowed_hosts"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
            assert!(!hosts.is_empty(), "{name} {dc}");
            for h in &hosts {
                let bare = h.strip_prefix("*.").unwrap_or(h);
                let zoho = [api, web].iter().any(|d| bare == *d || bare.ends_with(&format!(".{d}")));
                assert!(zoho, "{name} {dc}: allowed host `{h}` is not a {dc} Zoho domain");
                assert!(!bare.starts_with("accounts."), "{name} {dc}: the accounts server only gets token requests");
            }
            assert!(
                hosts.iter().any(|h| linkrun::service::host_matches(h, &base_host)),
                "{name} {dc}: the base URL's host {base_host} is allowed"
            );
        }
        let sandbox = &dcs["sandbox"];
        assert_eq!(sandbox["accounts_url"], "http://127.0.0.1:8780", "{name}");
        assert_eq!(sandbox["allowed_hosts"], json!(["127.0.0.1", "localhost"]), "{name}");
        let expected_base = match name {
            "zoho_desk" => "http://127.0.0.1:8780/api/v1",
            "zoho_campaigns" => "http://127.0.0.1:8780/api/v1.1",
            _ => "http://127.0.0.1:8780",
        };
        assert_eq!(sandbox["base_url"], expected_base, "{name}");
    }
    let crm = json(env.run(&["service", "show", "zoho_crm", "--json"]).ok());
    assert_eq!(crm["data_centers"]["ca"]["base_url"], "https://www.zohoapis.ca", "not zohocloud");
    assert_eq!(crm["data_centers"]["ca"]["allowed_hosts"], json!(["*.zohoapis.ca"]));
    assert_eq!(crm["data_centers"]["ca"]["accounts_url"], "https://accounts.zohocloud.ca");
    assert_eq!(crm["data_centers"]["au"]["accounts_url"], "https://accounts.zoho.com.au");
    assert_eq!(crm["data_centers"]["au"]["base_url"], "https://www.zohoapis.com.au");
    assert_eq!(crm["data_centers"]["cn"]["allowed_hosts"], json!(["*.zohoapis.com.cn"]));
    let desk = json(env.run(&["service", "show", "zoho_desk", "--json"]).ok());
    assert_eq!(desk["data_centers"]["us"]["base_url"], "https://desk.zoho.com/api/v1");
    assert_eq!(desk["data_centers"]["us"]["allowed_hosts"], json!(["desk.zoho.com"]));
    assert_eq!(desk["data_centers"]["eu"]["base_url"], "https://desk.zoho.eu/api/v1");
    let campaigns = json(env.run(&["service", "show", "zoho_campaigns", "--json"]).ok());
    assert_eq!(campaigns["data_centers"]["us"]["base_url"], "https://campaigns.zoho.com/api/v1.1");
    assert_eq!(campaigns["data_centers"]["jp"]["allowed_hosts"], json!(["campaigns.zoho.jp"]));
    let generic = json(env.run(&["service", "show", "zoho", "--json"]).ok());
    assert_eq!(generic["data_centers"]["eu"]["allowed_hosts"], json!(["*.zohoapis.eu", "*.zoho.eu"]));
}

// ---------------------------------------------------------------- service show

#[test]
fn service_show_zoho_crm_tells_how_to_set_it_up_at_zoho() {
    let env = Env::new();
    let text = env.run(&["service", "show", "zoho_crm"]).ok().to_string();
    for line in [
        "Zoho CRM (zoho_crm)\n",
        "token:      Authorization: Zoho-oauthtoken TOKEN\n",
        "  ca       https://www.zohoapis.ca  hosts: *.zohoapis.ca  accounts: https://accounts.zohocloud.ca\n",
        "  sandbox  http://127.0.0.1:8780  hosts: 127.0.0.1, localhost  accounts: http://127.0.0.1:8780\n",
        "  us       https://www.zohoapis.com  hosts: *.zohoapis.com  accounts: https://accounts.zoho.com  (default)\n",
        "set up at the provider:\n",
        "https://api-console.zoho.com",
        "\"Server-based Applications\"",
        "\"Self Client\"",
        "  redirect URI:  http://127.0.0.1:8765/callback\n",
        "  scopes:        ZohoCRM.modules.ALL,ZohoCRM.settings.READ,ZohoCRM.users.READ,ZohoCRM.org.READ,ZohoCRM.coql.READ\n",
        "  linkrun connection create LINK --service zoho_crm --dc DC --param client_id=... --param client_secret\n",
        "  linkrun connection authorize LINK  ",
        "  linkrun connection authorize LINK --code CODE  ",
        "  linkrun connection authorize LINK --grant client_credentials  ",
        "  linkrun connection test LINK  # GET /crm/v7/Leads?fields=Last_Name&per_page=1\n",
        "snippet:\n  let response = invoke_url(#{\n      url: \"/crm/v7/Leads?fields=Last_Name,Email\",\n      type: \"GET\",\n      connection: \"LINK\"\n  });\n",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    assert!(!text.contains("password grant"), "the password grant's params are not offered:\n{text}");
    let doc = json(env.run(&["service", "show", "zoho_crm", "--json"]).ok());
    assert_eq!(doc["setup"]["redirect_uri"], "http://127.0.0.1:8765/callback");
    assert_eq!(
        doc["setup"]["scope"],
        "ZohoCRM.modules.ALL,ZohoCRM.settings.READ,ZohoCRM.users.READ,ZohoCRM.org.READ,ZohoCRM.coql.READ"
    );
    assert_eq!(doc["setup"]["scope_delimiter"], "comma");
    assert_eq!(doc["setup"]["grant_types"], json!(["authorization_code", "client_credentials"]));
    assert_eq!(
        doc["setup"]["authorize"],
        json!([
            "linkrun connection authorize LINK",
            "linkrun connection authorize LINK --code CODE",
            "linkrun connection authorize LINK --grant client_credentials"
        ])
    );
    assert!(doc["setup"]["notes"].as_str().unwrap().contains("https://api-console.zoho.com"));
    assert_eq!(doc["example"], json!({"url": "/crm/v7/Leads?fields=Last_Name,Email", "type": "GET"}));
    assert_eq!(doc["token_header"], "Authorization: Zoho-oauthtoken TOKEN");
}

#[test]
fn service_show_of_the_other_prebuilt_services() {
    let env = Env::new();
    let desk = env.run(&["service", "show", "zoho_desk"]).ok().to_string();
    for line in [
        "  orgId            Desk organisation id (required, sent in the header)\n",
        "  scopes:        Desk.tickets.ALL,Desk.contacts.CREATE,Desk.basic.READ,Desk.settings.READ\n",
        "--service zoho_desk --dc DC --param client_id=... --param client_secret --param orgId=...\n",
        "      url: \"/tickets?limit=10\",\n",
    ] {
        assert!(desk.contains(line), "missing `{line}` in:\n{desk}");
    }
    let campaigns = env.run(&["service", "show", "zoho_campaigns"]).ok().to_string();
    assert!(campaigns.contains("      url: \"/json/listsubscribe\",\n      type: \"POST\",\n"), "{campaigns}");
    assert!(!campaigns.contains("test it:"), "Campaigns has no test request:\n{campaigns}");
    let generic = env.run(&["service", "show", "zoho"]).ok().to_string();
    assert!(
        generic.contains("  scopes:        none by default: pass --scope SCOPE to `linkrun connection create`\n"),
        "{generic}"
    );
    assert!(generic.contains("      url: \"\",\n"), "{generic}");
}

// ---------------------------------------------------------------- connections and data centers

#[test]
fn the_sandbox_data_center_follows_linkrun_sandbox_url() {
    let env = Env::new();
    env.secret(CLIENT_SECRET);
    let c = create(&env, "crm_sb", "zoho_crm", &["--dc", "sandbox"]);
    assert_eq!(c["data_center"], "sandbox");
    assert_eq!(c["base_url"], "http://127.0.0.1:8780");
    assert_eq!(c["allowed_hosts"], json!(["127.0.0.1", "localhost"]));
    assert_eq!(c["status"], "not_authorized");
    assert_eq!(
        c["scopes"],
        json!([
            "ZohoCRM.modules.ALL",
            "ZohoCRM.settings.READ",
            "ZohoCRM.users.READ",
            "ZohoCRM.org.READ",
            "ZohoCRM.coql.READ"
        ])
    );
    env.set_env("LINKRUN_SANDBOX_URL", "http://127.0.0.1:9999");
    let c = json(env.run(&["connection", "show", "crm_sb", "--json"]).ok());
    assert_eq!(c["base_url"], "http://127.0.0.1:9999", "the URL is resolved when used, not stored");
    let d = create(&env, "desk_sb", "zoho_desk", &["--dc", "sandbox", "--param", "orgId=123"]);
    assert_eq!(d["base_url"], "http://127.0.0.1:9999/api/v1");
    let s = json(env.run(&["service", "show", "zoho_crm", "--json"]).ok());
    assert_eq!(s["data_centers"]["sandbox"]["accounts_url"], "http://127.0.0.1:9999");
    // Without --dc: the default data center, production US.
    let us = create(&env, "crm_us", "zoho_crm", &[]);
    assert_eq!(us["data_center"], "us");
    assert_eq!(us["base_url"], "https://www.zohoapis.com");
    assert_eq!(us["allowed_hosts"], json!(["*.zohoapis.com"]));
}

#[test]
fn an_unknown_data_center_is_refused_with_the_list() {
    let env = Env::new();
    let out = env.run(&[
        "connection",
        "create",
        "crm",
        "--service",
        "zoho_crm",
        "--dc",
        "xx",
        "--param",
        "client_id=a",
        "--param",
        "client_secret=b",
    ]);
    assert_eq!(
        out.fails(2),
        "service `zoho_crm` has no data center `xx`: use one of `au`, `ca`, `cn`, `eu`, `in`, `jp`, `sa`, `sandbox`, `uk`, `us`"
    );
    assert_eq!(env.run(&["connection", "list", "--json"]).ok().trim(), "[]");
}

#[test]
fn desk_org_id_is_a_required_header_param() {
    let env = Env::new();
    env.secret(CLIENT_SECRET);
    let doc = json(env.run(&["service", "show", "zoho_desk", "--json"]).ok());
    let org = doc["params"].as_array().unwrap().iter().find(|p| p["key"] == "orgId").unwrap().clone();
    assert_eq!(
        org,
        json!({"key": "orgId", "label": "Desk organisation id", "secret": false, "required": true, "placement": "header"})
    );
    let out = env.run(&[
        "connection",
        "create",
        "desk",
        "--service",
        "zoho_desk",
        "--param",
        "client_id=a",
        "--param",
        &format!("client_secret={CLIENT_SECRET}"),
    ]);
    assert_eq!(
        out.fails(2),
        "missing required param `orgId` (Desk organisation id) for service `zoho_desk`: pass --param orgId=VALUE or --param-env orgId=ENVVAR"
    );
    let c = create(&env, "desk", "zoho_desk", &["--dc", "eu", "--param", "orgId=20071234"]);
    assert_eq!(c["params"]["orgId"], json!({"value": "20071234", "secret": false}));
    assert_eq!(c["base_url"], "https://desk.zoho.eu/api/v1");
}

// ---------------------------------------------------------------- against a stand-in sandbox

/// The Desk part of the stand-in sandbox: authenticates like Zoho and echoes the `orgId` header.
async fn desk_echo(State(p): State<Provider>, uri: Uri, headers: HeaderMap) -> Response {
    match p.authenticate(&headers) {
        Ok(info) => {
            let org = headers.get("orgId").and_then(|v| v.to_str().ok()).map(str::to_string);
            Json(json!({"path": uri.path(), "orgId": org, "org": info.org})).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

/// One server, like the sandbox: Zoho Accounts at `/oauth/v2/...`, CRM at `/crm/v7/...` (the
/// emulator's resource stubs) and a Desk echo at `/api/v1/...`.
fn stand_in_sandbox() -> (Provider, String) {
    let mut cfg = ProviderConfig::zoho("");
    cfg.clients = vec![ClientConfig::new(CLIENT_ID, CLIENT_SECRET, "org_sandbox")];
    let provider = Provider::new(cfg);
    let desk = axum::Router::new().route("/api/v1/{*rest}", axum::routing::any(desk_echo)).with_state(provider.clone());
    let router = provider.router().merge(desk).fallback(|| async { StatusCode::NOT_FOUND });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async move {
            let (addr, handle) = linkrun_sandbox::oauth_provider::serve(router).await.unwrap();
            tx.send(addr).unwrap();
            let _ = handle.await;
        });
    });
    let url = format!("http://{}", rx.recv().unwrap());
    let api = url.clone();
    provider.update_config(|c| {
        c.base_url = api.clone();
        c.api_domain = Some(api);
    });
    (provider, url)
}

#[test]
fn a_script_runs_against_the_sandbox_data_center_with_self_client_codes() {
    let (p, url) = stand_in_sandbox();
    let env = Env::new();
    env.secret(CLIENT_SECRET);
    env.set_env("LINKRUN_SANDBOX_URL", &url);
    create(&env, "crm", "zoho_crm", &["--dc", "sandbox"]);
    create(&env, "desk", "zoho_desk", &["--dc", "sandbox", "--param", "orgId=777"]);
    let code = p.mint_self_client_code(CLIENT_ID, &["ZohoCRM.modules.ALL"]);
    env.run(&["connection", "authorize", "crm", "--code", &code]).ok();
    let code = p.mint_self_client_code(CLIENT_ID, &["Desk.tickets.ALL"]);
    env.run(&["connection", "authorize", "desk", "--code", &code]).ok();
    let crm = json(env.run(&["connection", "show", "crm", "--json"]).ok());
    assert_eq!(crm["status"], "connected");
    assert_eq!(crm["token"]["api_domain"], url.as_str());
    // The script names link names only: pointing them at production changes nothing in it.
    let out = env.script(
        "let lead = invoke_url(#{ url: \"/crm/v7/Leads?fields=Last_Name,Email\", connection: \"crm\" });\n\
         let tickets = invoke_url(#{ url: \"/tickets\", connection: \"desk\" });\n\
         #{ crm: lead.data[0].echo_path, desk: tickets.path, org_id: tickets.orgId, org: tickets.org }",
        &[],
    );
    assert_eq!(
        json(out.ok()),
        json!({"crm": "/crm/v7/Leads", "desk": "/api/v1/tickets", "org_id": "777", "org": "org_sandbox"})
    );
    let out = env.run(&["connection", "test", "crm"]);
    out.ok();
    assert_eq!(out.stderr, "connection `crm` works: GET /crm/v7/Leads?fields=Last_Name&per_page=1 answered HTTP 200\n");
    let out = env.run(&["connection", "test", "desk"]);
    out.ok();
    assert_eq!(out.stderr, "connection `desk` works: GET /organizations answered HTTP 200\n");
    env.run(&["connection", "revoke", "crm"]).ok();
    assert_eq!(json(env.run(&["connection", "show", "crm", "--json"]).ok())["status"], "revoked");
    for t in p.issued_secrets() {
        env.secret(&t);
    }
}
