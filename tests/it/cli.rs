//! The CLI contract: `service`, `connection`, exit codes, stdout for results only.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{Env, service_toml};

const RULE: &str =
    "a link name starts with a lowercase letter and has at most 50 lowercase letters, digits and underscores";

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// A basic-auth service `svc` on a dead local port (nothing here sends requests).
fn basic_toml(base_url: &str) -> String {
    service_toml("svc", "basic", None, base_url, "")
}

fn install_basic(env: &Env) {
    env.add_service("svc.toml", &basic_toml("http://127.0.0.1:9/api"));
}

/// The line a failed `--json` command prints on stdout, keys in their documented order.
fn error_line(kind: &str, message: &str, code: i32) -> String {
    let m = serde_json::Value::String(message.to_string());
    format!("{{\"error\":{{\"kind\":\"{kind}\",\"message\":{m},\"exit_code\":{code}}}}}\n")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The services of `service list --json` other than the built-in ones, as (link_name, origin, file).
fn listed(env: &Env) -> Vec<(String, String, String)> {
    let doc = json(env.run(&["service", "list", "--json"]).ok());
    doc.as_array()
        .expect("array")
        .iter()
        .filter(|s| s["origin"] != "built_in")
        .map(|s| {
            (
                s["link_name"].as_str().unwrap_or_default().to_string(),
                s["origin"].as_str().unwrap_or_default().to_string(),
                s["file"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Asserts `message` is `FILE:LINE: ...` and returns the rest.
#[track_caller]
fn located<'a>(message: &'a str, file: &str) -> &'a str {
    let rest = message
        .strip_prefix(file)
        .and_then(|r| r.strip_prefix(':'))
        .unwrap_or_else(|| panic!("`{message}` does not start with `{file}:`"));
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    assert!(digits > 0, "`{message}` has no line number after the file");
    rest[digits..].strip_prefix(": ").unwrap_or_else(|| panic!("`{message}` is not FILE:LINE: message"))
}

// ---------------------------------------------------------------- service add / list / show

#[test]
fn service_add_refuses_an_unknown_key_with_file_and_line() {
    let env = Env::new();
    let p = env.write(
        "bad.toml",
        "link_name = \"svc\"\nname = \"S\"\nauth = \"basic\"\nbase_url = \"http://127.0.0.1:9\"\nbase_urll = \"x\"\n",
    );
    let out = env.run(&["service", "add", path_str(&p)]);
    assert_eq!(
        out.fails(2),
        format!(
            "{}:5: unknown key `base_urll`: remove it or check its spelling against connections/README.md",
            p.display()
        )
    );
    assert_eq!(out.stdout, "");
    assert!(!env.home_path().join("services/svc.toml").exists(), "nothing installed");
    assert_eq!(listed(&env), vec![]);
}

#[test]
fn service_add_refuses_a_missing_field() {
    let env = Env::new();
    let p = env.write("bad.toml", "link_name = \"svc\"\nauth = \"basic\"\nbase_url = \"http://127.0.0.1:9\"\n");
    assert_eq!(
        env.run(&["service", "add", path_str(&p)]).fails(2),
        format!(
            "{}:1: missing key `name`: every service needs `link_name`, `name` and `auth`; see connections/README.md",
            p.display()
        )
    );
}

#[test]
fn service_add_refuses_a_bad_link_name_on_its_line() {
    let env = Env::new();
    let p = env.write("bad.toml", "name = \"S\"\nlink_name = \"Bad-Name\"\nauth = \"none\"\n");
    assert_eq!(
        env.run(&["service", "add", path_str(&p)]).fails(2),
        format!("{}:2: invalid link_name `Bad-Name`: {RULE}", p.display())
    );
}

#[test]
fn service_add_refuses_oauth_urls_over_plain_http_to_a_remote_host() {
    let env = Env::new();
    let fix = "use an https:// URL (plain HTTP is allowed only to 127.0.0.1, ::1 and localhost)";
    let oauth2 =
        "link_name = \"svc\"\nname = \"S\"\nauth = \"oauth2\"\nbase_url = \"https://api.example.com\"\n[oauth2]\n";
    let oauth1 = "link_name = \"svc\"\nname = \"S\"\nauth = \"oauth1\"\nbase_url = \"https://api.example.com\"\n[oauth1]\nsignature_method = \"HMAC-SHA1\"\n";
    let cases = [
        (oauth2, "token_url", "oauth2", "", 6),
        (oauth2, "revoke_url", "oauth2", "token_url = \"https://auth.example.com/token\"\n", 7),
        (oauth2, "authorize_url", "oauth2", "token_url = \"https://auth.example.com/token\"\n", 7),
        (oauth1, "request_token_url", "oauth1", "", 7),
        (oauth1, "access_token_url", "oauth1", "", 7),
        (oauth1, "authorize_url", "oauth1", "", 7),
    ];
    for (head, key, table, before, line) in cases {
        let p = env.write("bad.toml", &format!("{head}{before}{key} = \"http://auth.example.com/x\"\n"));
        assert_eq!(
            env.run(&["service", "add", path_str(&p)]).fails(2),
            format!(
                "{}:{line}: `{key}` `http://auth.example.com/x` in `[{table}]` is plain HTTP to `auth.example.com`, which would send secrets in clear: {fix}",
                p.display()
            )
        );
    }
    // Through the data center's accounts server.
    let p = env.write(
        "dc.toml",
        "link_name = \"svc\"\nname = \"S\"\nauth = \"oauth2\"\n[data_centers.eu]\nbase_url = \"https://api.example.eu\"\n\
         accounts_url = \"${LINKRUN_TEST_UNSET_ACCOUNTS:-http://accounts.example.eu}\"\n[oauth2]\ntoken_url = \"{accounts_url}/token\"\n",
    );
    assert_eq!(
        env.run(&["service", "add", path_str(&p)]).fails(2),
        format!(
            "{}:6: `accounts_url` of data center `eu` `${{LINKRUN_TEST_UNSET_ACCOUNTS:-http://accounts.example.eu}}` is plain HTTP to `accounts.example.eu`, and `token_url` in `[oauth2]` uses it, which would send secrets in clear: {fix}",
            p.display()
        )
    );
    assert_eq!(listed(&env), vec![]);
    // Loopback may be plain HTTP.
    let p = env.write(
        "ok.toml",
        &format!("{oauth2}token_url = \"http://127.0.0.1:9/token\"\nrevoke_url = \"http://localhost:9/revoke\"\n"),
    );
    env.run(&["service", "add", path_str(&p)]).ok();
}

#[test]
fn service_add_of_a_missing_file_is_a_usage_error() {
    let env = Env::new();
    let msg = env.run(&["service", "add", "nope.toml"]).fails(2);
    assert!(msg.starts_with("cannot read the service file `nope.toml`: "), "{msg}");
    assert!(msg.ends_with("; check the path"), "{msg}");
}

#[test]
fn service_add_installs_and_stdout_stays_empty() {
    let env = Env::new();
    let p = env.write("svc.toml", &basic_toml("http://127.0.0.1:9/api"));
    let out = env.run(&["service", "add", path_str(&p)]);
    assert_eq!(out.ok(), "");
    let installed = env.home_path().join("services/svc.toml");
    assert_eq!(out.stderr, format!("installed service `svc` into {}\n", installed.display()));
    assert_eq!(std::fs::read_to_string(&installed).expect("installed"), basic_toml("http://127.0.0.1:9/api"));
    let doc = json(env.run(&["service", "add", path_str(&p), "--json"]).ok());
    assert_eq!(doc, serde_json::json!({"installed": "svc", "path": installed.display().to_string()}));
}

#[test]
fn installing_the_same_definition_twice_is_fine() {
    let env = Env::new();
    install_basic(&env);
    install_basic(&env);
    assert_eq!(listed(&env).len(), 1);
}

#[test]
fn installing_a_different_definition_needs_replace_and_names_both_files() {
    let env = Env::new();
    install_basic(&env);
    let other = env.write("other.toml", &basic_toml("http://127.0.0.1:8/v2"));
    let msg = env.run(&["service", "add", path_str(&other)]).fails(2);
    let installed = env.home_path().join("services/svc.toml");
    assert!(msg.contains(&installed.display().to_string()), "names the installed file: {msg}");
    assert!(msg.contains("--replace"), "says how to replace it: {msg}");
    let show = env.run(&["service", "show", "svc", "--json"]);
    assert_eq!(json(show.ok())["base_url"], "http://127.0.0.1:9/api", "unchanged");
    // The error format of every definition conflict: FILE:LINE: message, naming both files.
    located(&msg, &other.display().to_string());
}

#[test]
fn replace_installs_the_new_definition() {
    let env = Env::new();
    install_basic(&env);
    env.run(&["connection", "create", "one", "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    let other = env.write("other.toml", &basic_toml("http://127.0.0.1:8/v2"));
    env.run(&["service", "add", "--replace", path_str(&other)]).ok();
    assert_eq!(json(env.run(&["service", "show", "svc", "--json"]).ok())["base_url"], "http://127.0.0.1:8/v2");
    assert_eq!(listed(&env).len(), 1);
    let show = json(env.run(&["connection", "show", "one", "--json"]).ok());
    assert_eq!(show["base_url"], "http://127.0.0.1:8/v2", "existing connections follow the service");
}

#[test]
fn a_local_definition_that_differs_from_the_installed_one_is_an_error_naming_both_files() {
    let env = Env::new();
    install_basic(&env);
    env.write("connections/svc.toml", &basic_toml("http://127.0.0.1:8/evil"));
    let message = format!(
        "connections/svc.toml:1: service `svc` is also defined, differently, in `{}`: rename one `link_name` or remove one file",
        env.home_path().join("services/svc.toml").display()
    );
    assert_eq!(env.run(&["service", "list"]).fails(2), message);
    let out =
        env.run(&["connection", "create", "one", "--service", "svc", "--param", "username=u", "--param", "password=p"]);
    assert_eq!(out.fails(2), message);
    let out = env.run(&["service", "list", "--json"]);
    assert_eq!(out.fails(2), message);
    assert_eq!(out.stdout, error_line("usage", &message, 2), "a failed --json command prints one error line");
}

#[test]
fn service_add_of_a_definition_that_differs_from_a_local_one_names_both_files() {
    let env = Env::new();
    env.write("connections/svc.toml", &basic_toml("http://127.0.0.1:9/api"));
    let other = env.write("other.toml", &basic_toml("http://127.0.0.1:8/v2"));
    let msg = env.run(&["service", "add", path_str(&other)]).fails(2);
    assert!(msg.contains("connections/svc.toml"), "names the local file: {msg}");
    assert!(!env.home_path().join("services/svc.toml").exists(), "nothing installed");
    located(&msg, &other.display().to_string());
}

#[test]
fn identical_local_and_installed_definitions_count_once() {
    let env = Env::new();
    install_basic(&env);
    env.write("connections/svc.toml", &basic_toml("http://127.0.0.1:9/api"));
    let installed = env.home_path().join("services/svc.toml").display().to_string();
    assert_eq!(listed(&env), vec![("svc".to_string(), "installed".to_string(), installed)]);
    let text = env.run(&["service", "list"]).ok().to_string();
    assert_eq!(text.matches("\nsvc ").count(), 1, "{text}");
}

#[test]
fn service_list_shows_origin_auth_and_name() {
    let env = Env::new();
    install_basic(&env);
    env.write("connections/loc.toml", "link_name = \"loc\"\nname = \"Local one\"\nauth = \"none\"\n");
    let text = env.run(&["service", "list"]).ok().to_string();
    // The first column is as wide as the longest link name, a built-in one here (servicenow_basic).
    assert!(text.starts_with("LINK_NAME         AUTH      ORIGIN     NAME\n"), "{text}");
    assert!(text.contains("\nloc               none      local      Local one\n"), "{text}");
    assert!(text.contains("\nsvc               basic     installed  Test svc\n"), "{text}");
    assert_eq!(
        listed(&env),
        vec![
            ("loc".to_string(), "local".to_string(), "connections/loc.toml".to_string()),
            (
                "svc".to_string(),
                "installed".to_string(),
                env.home_path().join("services/svc.toml").display().to_string()
            ),
        ]
    );
}

#[test]
fn service_show_gives_origin_endpoint_and_params() {
    let env = Env::new();
    env.add_service(
        "svc.toml",
        &service_toml(
            "svc",
            "api_key",
            Some("query"),
            "http://127.0.0.1:9/api",
            "[[params]]\nkey = \"api_key\"\nlabel = \"API key\"\nsecret = true\n[[params]]\nkey = \"orgId\"\nlabel = \"Organisation\"\noptional = true\nplacement = \"header\"\n",
        ),
    );
    let installed = env.home_path().join("services/svc.toml").display().to_string();
    let text = env.run(&["service", "show", "svc"]).ok().to_string();
    for line in [
        "Test svc (svc)\n".to_string(),
        format!("origin:     installed ({installed})\n"),
        "auth:       api_key (placement: query)\n".into(),
        "base URL:   http://127.0.0.1:9/api\n".into(),
        "hosts:      127.0.0.1\n".into(),
        "params (--param KEY=VALUE):\n  api_key          API key (required, secret, sent in the query)\n  orgId            Organisation (optional, sent in the header)\n".into(),
        "  linkrun connection create LINK --service svc --param api_key\n".into(),
        "  (--param KEY without a value asks for it without echo)\n".into(),
        "      connection: \"LINK\"\n".into(),
    ] {
        assert!(text.contains(&line), "missing `{line}` in:\n{text}");
    }
    let doc = json(env.run(&["service", "show", "svc", "--json"]).ok());
    assert_eq!(doc["origin"], "installed");
    assert_eq!(doc["file"], installed.as_str());
    assert_eq!(doc["auth"], "api_key");
    assert_eq!(doc["placement"], "query");
    assert_eq!(doc["base_url"], "http://127.0.0.1:9/api");
    assert_eq!(doc["allowed_hosts"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(
        doc["params"],
        serde_json::json!([
            {"key": "api_key", "label": "API key", "secret": true, "required": true, "placement": "query"},
            {"key": "orgId", "label": "Organisation", "secret": false, "required": false, "placement": "header"},
        ])
    );
}

#[test]
fn service_show_of_a_local_service_and_of_data_centers() {
    let env = Env::new();
    env.write(
        "connections/dcsvc.toml",
        "link_name = \"dcsvc\"\nname = \"DC\"\nauth = \"basic\"\ndefault_data_center = \"us\"\n[data_centers.us]\nbase_url = \"https://www.example.com/v1\"\nallowed_hosts = [\"*.example.com\"]\n[data_centers.eu]\nbase_url = \"https://www.example.eu/v1\"\n",
    );
    let text = env.run(&["service", "show", "dcsvc"]).ok().to_string();
    assert!(text.contains("origin:     local (connections/dcsvc.toml)\n"), "{text}");
    assert!(text.contains("  eu       https://www.example.eu/v1  hosts: www.example.eu\n"), "{text}");
    assert!(text.contains("  us       https://www.example.com/v1  hosts: *.example.com  (default)\n"), "{text}");
    let doc = json(env.run(&["service", "show", "dcsvc", "--json"]).ok());
    assert_eq!(doc["origin"], "local");
    assert_eq!(doc["default_data_center"], "us");
    assert_eq!(doc["data_centers"]["eu"]["base_url"], "https://www.example.eu/v1");
    assert_eq!(doc["data_centers"]["us"]["allowed_hosts"], serde_json::json!(["*.example.com"]));
    assert_eq!(doc["params"][0]["key"], "username");
    assert_eq!(doc["params"][1]["key"], "password");
    assert_eq!(doc["params"][1]["secret"], true);
}

#[test]
fn service_show_of_an_unknown_service() {
    let env = Env::new();
    let message = "unknown service `nope`: run `linkrun service list` to see the services, or add one with `linkrun service add FILE.toml`";
    let out = env.run(&["service", "show", "nope", "--json"]);
    assert_eq!(out.fails(2), message);
    assert_eq!(out.stdout, error_line("usage", message, 2));
    let out = env.run(&["service", "show", "nope"]);
    assert_eq!(out.fails(2), message);
    assert_eq!(out.stdout, "", "without --json, nothing on stdout");
}

/// Built-in services (every `connections/*.toml` of the repository, embedded in the binary) show as
/// `built-in`, and the same file seen again in `./connections/` (running linkrun from the
/// repository root) counts once.
#[test]
fn built_in_services_show_their_origin_and_count_once() {
    let env = Env::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("connections");
    let mut files: Vec<String> = std::fs::read_dir(&repo)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    files.retain(|f| f.ends_with(".toml"));
    files.sort();
    let doc = json(env.run(&["service", "list", "--json"]).ok());
    let mut builtins: Vec<String> = doc
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["origin"] == "built_in")
        .map(|s| s["file"].as_str().expect("file").to_string())
        .collect();
    builtins.sort();
    assert_eq!(builtins, files.iter().map(|f| format!("<built-in>/{f}")).collect::<Vec<_>>());
    for file in &files {
        let text = std::fs::read_to_string(repo.join(file)).expect("built-in source");
        env.write(&format!("connections/{file}"), &text);
    }
    let again = json(env.run(&["service", "list", "--json"]).ok());
    let origins: Vec<&str> =
        again.as_array().expect("array").iter().map(|s| s["origin"].as_str().expect("origin")).collect();
    assert_eq!(origins, vec!["built_in"; files.len()], "the copies in ./connections/ count once: {again}");
    for s in again.as_array().expect("array") {
        let name = s["link_name"].as_str().expect("link_name");
        let show = env.run(&["service", "show", name]).ok().to_string();
        assert!(show.contains("\norigin:     built-in (<built-in>/"), "{show}");
    }
}

// ---------------------------------------------------------------- connection create

#[test]
fn connection_create_refuses_bad_link_names_with_the_rule() {
    let env = Env::new();
    install_basic(&env);
    let long = "a".repeat(51);
    for bad in ["Crm", "9a", "crm-us", long.as_str()] {
        let out = env.run(&[
            "connection",
            "create",
            bad,
            "--service",
            "svc",
            "--param",
            "username=u",
            "--param",
            "password=p",
        ]);
        assert_eq!(out.fails(2), format!("invalid link name `{bad}`: {RULE}"));
    }
    let fifty = "a".repeat(50);
    env.run(&["connection", "create", &fifty, "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    assert_eq!(json(env.run(&["connection", "list", "--json"]).ok()).as_array().expect("array").len(), 1);
}

#[test]
fn connection_create_refuses_a_duplicate_link_name() {
    let env = Env::new();
    install_basic(&env);
    let args = ["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=p"];
    let out = env.run(&args);
    assert_eq!(out.ok(), "", "results only on stdout");
    assert_eq!(out.stderr, "created connection `crm` (service `svc`, status connected)\n");
    assert_eq!(
        env.run(&args).fails(2),
        "connection `crm` already exists: link names are unique, so choose another or delete it first with `linkrun connection delete crm --yes`"
    );
}

#[test]
fn connection_create_json() {
    let env = Env::new();
    install_basic(&env);
    let out = env.run(&[
        "connection",
        "create",
        "crm",
        "--service",
        "svc",
        "--param",
        "username=u",
        "--param",
        "password=p",
        "--json",
    ]);
    assert_eq!(json(out.ok()), serde_json::json!({"link_name": "crm", "service": "svc", "status": "connected"}));
}

#[test]
fn connection_create_without_a_terminal_names_the_missing_param_and_the_flags() {
    let env = Env::new();
    install_basic(&env);
    assert_eq!(
        env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u"]).fails(2),
        "missing required param `password` (Password) for service `svc`: pass --param password=VALUE or --param-env password=ENVVAR"
    );
    assert_eq!(
        env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password"])
            .fails(2),
        "--param password asks for its value on a terminal, and there is none: pass --param password=VALUE or --param-env password=ENVVAR"
    );
    assert_eq!(
        env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password="])
            .fails(2),
        "param `password` (Password) cannot be empty: give it a value"
    );
    assert_eq!(env.run(&["connection", "list", "--json"]).ok().trim(), "[]", "nothing was created");
}

#[test]
fn connection_create_reads_a_param_from_an_environment_variable() {
    let env = Env::new();
    install_basic(&env);
    let pw = env.secret("from-the-env-12345678");
    let out = env.run_with(
        &["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param-env", "password=MY_PW"],
        &[("MY_PW", &pw)],
    );
    out.ok();
    let shown = env.run(&["connection", "show", "crm"]).ok().to_string();
    assert!(shown.contains("  password         ********78\n"), "{shown}");
    assert!(!shown.contains(&pw));
}

#[test]
fn connection_create_with_a_missing_or_malformed_param_env() {
    let env = Env::new();
    install_basic(&env);
    assert_eq!(
        env.run(&[
            "connection",
            "create",
            "crm",
            "--service",
            "svc",
            "--param",
            "username=u",
            "--param-env",
            "password=MY_PW"
        ])
        .fails(2),
        "environment variable `MY_PW` (for param `password`) is not set or empty: export it, or pass --param password=VALUE"
    );
    let out = env.run_with(
        &["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param-env", "password=MY_PW"],
        &[("MY_PW", "")],
    );
    assert_eq!(out.code, 2, "an empty variable counts as missing");
    assert_eq!(
        env.run(&[
            "connection",
            "create",
            "crm",
            "--service",
            "svc",
            "--param",
            "username=u",
            "--param-env",
            "password"
        ])
        .fails(2),
        "`password` is not KEY=ENVVAR: write --param-env api_key=MY_API_KEY"
    );
}

#[test]
fn connection_create_refuses_an_unknown_param_listing_the_params() {
    let env = Env::new();
    install_basic(&env);
    let out = env.run(&[
        "connection",
        "create",
        "crm",
        "--service",
        "svc",
        "--param",
        "username=u",
        "--param",
        "password=p",
        "--param",
        "pasword=p",
    ]);
    assert_eq!(out.fails(2), "service `svc` has no param `pasword`: its params are `username`, `password`");
}

#[test]
fn connection_create_refuses_an_unknown_service() {
    let env = Env::new();
    assert_eq!(
        env.run(&["connection", "create", "crm", "--service", "nope"]).fails(2),
        "unknown service `nope`: run `linkrun service list` to see the services, or add one with `linkrun service add FILE.toml`"
    );
}

fn install_dc_service(env: &Env, default: bool) {
    env.add_service(
        "dcsvc.toml",
        &format!(
            "link_name = \"dcsvc\"\nname = \"DC\"\nauth = \"basic\"\n{}[data_centers.us]\nbase_url = \"https://www.example.com/v1\"\nallowed_hosts = [\"*.example.com\"]\n[data_centers.eu]\nbase_url = \"https://www.example.eu/v1\"\n",
            if default { "default_data_center = \"us\"\n" } else { "" }
        ),
    );
}

#[test]
fn connection_create_data_centers() {
    let env = Env::new();
    install_basic(&env);
    install_dc_service(&env, false);
    let creds = ["--param", "username=u", "--param", "password=p"];
    let create = |link: &str, service: &str, extra: &[&str]| {
        let mut args = vec!["connection", "create", link, "--service", service];
        args.extend_from_slice(extra);
        args.extend_from_slice(&creds);
        env.run(&args)
    };
    assert_eq!(
        create("a", "svc", &["--dc", "us"]).fails(2),
        "service `svc` has no data centers, so --dc us does not apply: leave it out"
    );
    assert_eq!(
        create("a", "dcsvc", &["--dc", "ap"]).fails(2),
        "service `dcsvc` has no data center `ap`: use one of `eu`, `us`"
    );
    assert_eq!(
        create("a", "dcsvc", &[]).fails(2),
        "service `dcsvc` needs a data center: pass --dc with one of `eu`, `us`"
    );
    create("a", "dcsvc", &["--dc", "eu"]).ok();
    let doc = json(env.run(&["connection", "show", "a", "--json"]).ok());
    assert_eq!(doc["data_center"], "eu");
    assert_eq!(doc["base_url"], "https://www.example.eu/v1");
    assert_eq!(doc["allowed_hosts"], serde_json::json!(["www.example.eu"]));
    assert!(
        env.run(&["connection", "show", "a"])
            .ok()
            .contains("\ndata center: eu\nbase URL:    https://www.example.eu/v1\n")
    );
}

#[test]
fn connection_create_uses_the_default_data_center() {
    let env = Env::new();
    install_dc_service(&env, true);
    env.run(&["connection", "create", "a", "--service", "dcsvc", "--param", "username=u", "--param", "password=p"])
        .ok();
    let doc = json(env.run(&["connection", "show", "a", "--json"]).ok());
    assert_eq!(doc["data_center"], "us");
    assert_eq!(doc["base_url"], "https://www.example.com/v1");
    assert_eq!(doc["allowed_hosts"], serde_json::json!(["*.example.com"]));
}

#[test]
fn connection_create_with_an_instance() {
    let env = Env::new();
    install_basic(&env);
    env.add_service(
        "sn.toml",
        "link_name = \"sn\"\nname = \"SN\"\nauth = \"basic\"\ninstance_url = \"https://{instance}.service-now.com/api\"\n",
    );
    let creds = ["--param", "username=admin", "--param", "password=p"];
    let create = |link: &str, service: &str, extra: &[&str]| {
        let mut args = vec!["connection", "create", link, "--service", service];
        args.extend_from_slice(extra);
        args.extend_from_slice(&creds);
        env.run(&args)
    };
    assert_eq!(
        create("sn1", "sn", &[]).fails(2),
        "service `sn` needs an instance: pass --instance NAME (its URL is `https://{instance}.service-now.com/api`)"
    );
    assert_eq!(
        create("sn1", "svc", &["--instance", "dev1"]).fails(2),
        "service `svc` is not addressed by instance, so --instance dev1 does not apply: leave it out"
    );
    assert_eq!(
        create("sn1", "sn", &["--instance", "evil.com/x"]).fails(2),
        "instance name `evil.com/x` is not valid: use letters, digits and dashes only (the part before .service-now.com)"
    );
    assert_eq!(create("sn1", "sn", &["--instance", "dev1", "--dc", "us"]).code, 2, "--dc conflicts with --instance");
    create("sn1", "sn", &["--instance", "Dev12345"]).ok();
    let doc = json(env.run(&["connection", "show", "sn1", "--json"]).ok());
    assert_eq!(doc["instance"], "dev12345");
    assert_eq!(doc["base_url"], "https://dev12345.service-now.com/api");
    assert_eq!(doc["allowed_hosts"], serde_json::json!(["dev12345.service-now.com"]));
    let list = env.run(&["connection", "list"]).ok().to_string();
    assert!(list.contains("sn1        sn       connected       instance dev12345\n"), "{list}");
}

// ---------------------------------------------------------------- connection list / show / delete

#[test]
fn connection_list_text_and_json() {
    let env = Env::new();
    let out = env.run(&["connection", "list"]);
    assert_eq!(out.ok(), "");
    assert_eq!(out.stderr, "no connections yet: create one with `linkrun connection create LINK --service NAME`\n");
    assert_eq!(env.run(&["connection", "list", "--json"]).ok(), "[]\n");
    install_basic(&env);
    install_dc_service(&env, false);
    for (link, svc, dc) in [("zeta", "svc", None), ("alpha", "dcsvc", Some("us"))] {
        let mut args =
            vec!["connection", "create", link, "--service", svc, "--param", "username=u", "--param", "password=p"];
        if let Some(dc) = dc {
            args.extend(["--dc", dc]);
        }
        env.run(&args).ok();
    }
    assert_eq!(
        env.run(&["connection", "list"]).ok(),
        "LINK_NAME  SERVICE  STATUS          WHERE\nalpha      dcsvc    connected       dc us\nzeta       svc      connected       -\n"
    );
    assert_eq!(
        json(env.run(&["connection", "list", "--json"]).ok()),
        serde_json::json!([
            {"link_name": "alpha", "service": "dcsvc", "data_center": "us", "instance": null, "scopes": [], "status": "connected"},
            {"link_name": "zeta", "service": "svc", "data_center": null, "instance": null, "scopes": [], "status": "connected"},
        ])
    );
}

fn masking_env() -> (Env, String, String) {
    let env = Env::new();
    env.add_service(
        "svc.toml",
        &service_toml(
            "svc",
            "basic",
            None,
            "http://127.0.0.1:9/api",
            "[[params]]\nkey = \"pin\"\nlabel = \"PIN\"\nsecret = true\nplacement = \"header\"\n",
        ),
    );
    let long = env.secret("long-secret-value-xy");
    let short = env.secret("elevenchars");
    env.run(&[
        "connection",
        "create",
        "crm",
        "--service",
        "svc",
        "--param",
        "username=admin",
        "--param",
        &format!("password={long}"),
        "--param",
        &format!("pin={short}"),
    ])
    .ok();
    (env, long, short)
}

#[test]
fn connection_show_masks_secrets() {
    let (env, long, short) = masking_env();
    let out = env.run(&["connection", "show", "crm"]);
    assert_eq!(
        out.ok(),
        "connection:  crm\nservice:     svc (Test svc)\nstatus:      connected\nbase URL:    http://127.0.0.1:9/api\nhosts:       127.0.0.1\nparams:\n  password         ********xy\n  pin              ********\n  username         admin\n"
    );
    assert!(!out.stdout.contains(&long) && !out.stdout.contains(&short));
}

#[test]
fn connection_show_json_masks_secrets() {
    let (env, long, short) = masking_env();
    let out = env.run(&["connection", "show", "crm", "--json"]);
    assert_eq!(
        json(out.ok()),
        serde_json::json!({
            "link_name": "crm", "service": "svc", "data_center": null, "instance": null, "scopes": [],
            "status": "connected", "base_url": "http://127.0.0.1:9/api", "allowed_hosts": ["127.0.0.1"],
            "params": {
                "username": {"value": "admin", "secret": false},
                "password": {"value": "********xy", "secret": true},
                "pin": {"value": "********", "secret": true},
            },
        })
    );
    assert!(!out.stdout.contains(&long) && !out.stdout.contains(&short));
}

#[test]
fn connection_show_of_an_unknown_connection_is_exit_4() {
    let env = Env::new();
    let message = "unknown connection `nope`: create it with `linkrun connection create nope --service NAME` (see `linkrun connection list`)";
    assert_eq!(env.run(&["connection", "show", "nope"]).fails(4), message);
    install_basic(&env);
    env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    let out = env.run(&["connection", "show", "nope", "--json"]);
    assert_eq!(out.fails(4), message);
    assert_eq!(out.stdout, error_line("connection", message, 4));
}

#[test]
fn a_link_name_that_breaks_the_rule_is_refused_before_the_vault_is_opened() {
    let env = Env::new();
    for cmd in [
        vec!["connection", "show", "Crm"],
        vec!["connection", "test", "Crm"],
        vec!["connection", "authorize", "Crm"],
        vec!["connection", "revoke", "Crm"],
        vec!["connection", "delete", "Crm", "--yes"],
    ] {
        assert_eq!(env.run(&cmd).fails(2), format!("invalid link name `Crm`: {RULE}"), "{cmd:?}");
    }
    let out = env.script(
        "let k = \"\"; try { invoke_url(#{ url: \"/x\", connection: \"Crm\" }); } catch (e) { k = e.kind + \"|\" + e.connection + \"|\" + e.message; } k",
        &[],
    );
    assert_eq!(out.ok(), format!("connection|Crm|invalid link name `Crm`: {RULE}\n"));
}

#[test]
fn connection_delete_needs_yes_without_a_terminal() {
    let env = Env::new();
    install_basic(&env);
    env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    assert_eq!(
        env.run(&["connection", "delete", "crm"]).fails(2),
        "deleting connection `crm` needs confirmation and there is no terminal: pass --yes"
    );
    env.run(&["connection", "show", "crm"]).ok();
    let out = env.run(&["connection", "delete", "crm", "--yes"]);
    assert_eq!(out.ok(), "");
    assert_eq!(out.stderr, "deleted connection `crm`\n");
    assert_eq!(env.run(&["connection", "list", "--json"]).ok(), "[]\n");
    assert!(env.run(&["vault", "status"]).ok().contains("\nsealed values:  0\n"), "its sealed values are gone too");
    assert_eq!(
        env.run(&["connection", "delete", "crm", "--yes"]).fails(4),
        "unknown connection `crm`: create it with `linkrun connection create crm --service NAME` (see `linkrun connection list`)"
    );
    // The link name is free again.
    env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=q"])
        .ok();
}

// ---------------------------------------------------------------- exit codes

#[test]
fn a_bad_flag_is_exit_2() {
    let env = Env::new();
    let out = env.run(&["connection", "list", "--bogus"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: unexpected argument '--bogus' found"), "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert_eq!(env.run(&["frobnicate"]).code, 2);
    assert_eq!(
        env.run(&["run", "x.rhai", "--timeout", "0"]).fails(2),
        "`--timeout 0` is out of range: give more than 0 and at most 86400 seconds"
    );
}

#[test]
fn a_missing_script_is_exit_2() {
    let env = Env::new();
    assert_eq!(
        env.run(&["run", "missing.rhai"]).fails(2),
        "cannot read the script `missing.rhai`: no such file; check the path"
    );
}

#[test]
fn a_script_syntax_error_is_exit_1() {
    let env = Env::new();
    assert_eq!(
        env.script("let x = ;", &[]).fails(1),
        "script `script.rhai` has a syntax error at line 1, column 9: Unexpected ';'; fix it and run again"
    );
}

#[test]
fn a_script_throw_is_exit_1() {
    let env = Env::new();
    assert_eq!(env.script("throw \"x\"", &[]).fails(1), "script `script.rhai` threw x at line 1, column 1");
    let out = env.script("throw \"x\"", &["--json"]);
    assert_eq!(out.fails(1), "script `script.rhai` threw x at line 1, column 1");
    assert_eq!(
        out.stdout,
        error_line("script", "script `script.rhai` threw x at line 1, column 1", 1),
        "a failed --json command prints one error line on stdout"
    );
}

#[test]
fn an_uncaught_unknown_connection_is_exit_4() {
    let env = Env::new();
    let msg = env.script("invoke_url(#{ url: \"/x\", connection: \"nope\" })", &[]).fails(4);
    assert!(msg.contains("unknown connection `nope`"), "{msg}");
    assert_eq!(
        msg,
        "unknown connection `nope`: create it with `linkrun connection create nope --service NAME` (see `linkrun connection list`) (uncaught in `script.rhai` at line 1, column 1)"
    );
    // Caught, it is a value the script can branch on.
    let out = env.script(
        "let r = \"\"; try { invoke_url(#{ url: \"/x\", connection: \"nope\" }); } catch (e) { r = e.kind + \" \" + e.connection; } r",
        &[],
    );
    assert_eq!(out.ok(), "connection nope\n");
}

#[test]
fn a_wrong_key_is_exit_3() {
    let env = Env::new();
    env.run(&["vault", "status"]).ok();
    let key = base64_key();
    let msg = env.run_with(&["connection", "list"], &[("LINKRUN_MASTER_KEY", &key)]).fails(3);
    assert!(msg.starts_with("wrong master key: "), "{msg}");
    install_basic(&env);
    env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    let out = env.run_with(
        &["run", path_str(&env.write("s.rhai", "invoke_url(#{ url: \"/x\", connection: \"crm\" })"))],
        &[("LINKRUN_MASTER_KEY", &key)],
    );
    assert!(out.fails(3).starts_with("wrong master key: "));
}

fn base64_key() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode([5u8; 32])
}

/// `linkrun connection list --json | head -0`: a closed stdout ends the command quietly, without a
/// panic and its backtrace.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let env = Env::new();
    install_basic(&env);
    env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    let script = env.write("print.rhai", "print(\"a line\"); \"the result\"");
    for args in [
        &["connection", "list", "--json"][..],
        &["connection", "list"],
        &["service", "show", "svc"],
        &["vault", "status"],
        &["run", path_str(&script)],
    ] {
        let (reader, writer) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        drop(reader);
        let out = Command::new(assert_cmd::cargo::cargo_bin!("linkrun"))
            .args(args)
            .current_dir(env.work.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LINKRUN_HOME", env.home_path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::os::fd::OwnedFd::from(writer)))
            .stderr(Stdio::piped())
            .output()
            .expect("run linkrun");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------- --json documents and the error line

#[test]
fn a_failed_json_command_prints_one_error_line_of_its_kind() {
    let env = Env::new();
    install_basic(&env);
    // usage (2): a bad link name, and a bad flag next to --json.
    let out = env.run(&["connection", "create", "BAD", "--service", "svc", "--json"]);
    let message = format!("invalid link name `BAD`: {RULE}");
    assert_eq!(out.fails(2), message);
    assert_eq!(out.stdout, error_line("usage", &message, 2));
    let out = env.run(&["connection", "list", "--bogus", "--json"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.starts_with("error: unexpected argument '--bogus' found"), "{}", out.stderr);
    assert_eq!(out.stdout, error_line("usage", "unexpected argument '--bogus' found", 2));
    // connection (4): an unknown connection.
    let out = env.run(&["connection", "test", "nope", "--json"]);
    let message = "unknown connection `nope`: create it with `linkrun connection create nope --service NAME` (see `linkrun connection list`)";
    assert_eq!(out.fails(4), message);
    assert_eq!(out.stdout, error_line("connection", message, 4));
    // script (1): a failing `run --json`.
    let out = env.script("let x = 1; x.no_such_method()", &["--json"]);
    let message = out.fails(1);
    assert_eq!(out.stdout, error_line("script", &message, 1));
    // vault (3): a wrong key.
    env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    let out = env.run_with(&["connection", "list", "--json"], &[("LINKRUN_MASTER_KEY", &base64_key())]);
    let message = out.fails(3);
    assert!(message.starts_with("wrong master key: "), "{message}");
    assert_eq!(out.stdout, error_line("vault", &message, 3));
    // --help next to --json is no failure.
    assert_eq!(env.run(&["connection", "show", "--json", "--help"]).code, 0);
    assert!(!env.run(&["connection", "show", "--json", "--help"]).stdout.contains("\"error\""));
}

#[test]
fn completions_print_a_script_for_each_shell() {
    let env = Env::new();
    let bash = env.run(&["completions", "bash"]);
    let text = bash.ok();
    assert!(text.contains("_linkrun()") && text.contains("complete -F _linkrun"), "{text}");
    assert!(text.contains("connection") && text.contains("--json"), "subcommands and flags: {text}");
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let out = env.run(&["completions", shell]);
        assert!(out.ok().contains("linkrun"), "{shell}: {}", out.stdout);
    }
    let out = env.run(&["completions", "tcsh"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("invalid value 'tcsh'"), "{}", out.stderr);
}

#[test]
fn sandbox_help_names_everything_it_emulates() {
    let env = Env::new();
    let help = env.run(&["sandbox", "--help"]).ok().to_string();
    for part in ["Zoho Accounts (OAuth)", "CRM", "Desk", "Campaigns", "ServiceNow (OAuth and Table API)"] {
        assert!(help.contains(part), "`{part}` in:\n{help}");
    }
    let top = env.run(&["--help"]).ok().to_string();
    assert!(top.contains("ServiceNow (OAuth and Table API)"), "{top}");
}

#[test]
fn connection_test_json_reports_the_request_and_the_status() {
    let server = crate::common::Server::start();
    let env = Env::new();
    env.add_service("ok.toml", &service_toml("svc", "basic", None, &server.url(), "[test]\nurl = \"/me\"\n"));
    env.add_service("bad.toml", &service_toml("bad", "basic", None, &server.url(), "[test]\nurl = \"/status/404\"\n"));
    for (link, service) in [("good", "svc"), ("broken", "bad")] {
        env.run(&[
            "connection",
            "create",
            link,
            "--service",
            service,
            "--param",
            "username=u",
            "--param",
            "password=p",
        ])
        .ok();
    }
    let out = env.run(&["connection", "test", "good", "--json"]);
    assert_eq!(
        json(out.ok()),
        serde_json::json!({"link_name": "good", "service": "svc", "request": {"method": "GET", "url": "/me"}, "status": 200, "ok": true})
    );
    assert_eq!(out.stderr, "", "the human sentence is not printed under --json");
    let human = env.run(&["connection", "test", "good"]);
    assert_eq!(human.ok(), "");
    assert_eq!(human.stderr, "connection `good` works: GET /me answered HTTP 200\n");

    // A failed test: its document, then the error line, exit 4.
    let out = env.run(&["connection", "test", "broken", "--json"]);
    let message = out.fails(4);
    assert_eq!(
        message,
        "connection `broken` does not work: GET /status/404 answered HTTP 404; check its params, or run `linkrun connection authorize broken`"
    );
    let (doc, last) = out.stdout.trim_end().rsplit_once('\n').expect("two documents");
    assert_eq!(
        json(doc),
        serde_json::json!({"link_name": "broken", "service": "bad", "request": {"method": "GET", "url": "/status/404"}, "status": 404, "ok": false})
    );
    assert_eq!(format!("{last}\n"), error_line("connection", &message, 4));
}

/// An OAuth 2.0 service on the recording server, whose `/token` answers without `scope`.
fn oauth2_on(env: &Env, server: &crate::common::Server) {
    let base = server.url();
    env.add_service(
        "op.toml",
        &service_toml(
            "op",
            "oauth2",
            None,
            &base,
            &format!(
                "[oauth2]\ntoken_url = \"{base}/token\"\nrevoke_url = \"{base}/revoke\"\nscopes = [\"api.read\", \"api.write\"]\ngrant_types = [\"client_credentials\"]\n"
            ),
        ),
    );
    env.run(&[
        "connection",
        "create",
        "c",
        "--service",
        "op",
        "--param",
        "client_id=cid",
        "--param",
        &format!("client_secret={}", env.secret("cli-client-secret-4242")),
    ])
    .ok();
}

#[test]
fn authorize_and_revoke_json_and_show_says_when_it_knows_only_the_requested_scopes() {
    let server = crate::common::Server::start();
    let env = Env::new();
    env.secret("srv-access-token-1");
    oauth2_on(&env, &server);
    let out = env.run(&["connection", "authorize", "c", "--json"]);
    let doc = json(out.ok());
    assert_eq!(out.stdout.lines().filter(|l| l.contains("authorization_url")).count(), 0, "no URL in this grant");
    assert_eq!(doc["link_name"], "c");
    assert_eq!(doc["auth"], "oauth2");
    assert_eq!(doc["status"], "connected");
    assert_eq!(doc["granted_scopes"], serde_json::json!(["api.read", "api.write"]));
    assert_eq!(doc["scopes_source"], "requested");
    assert_eq!(doc["grant_type"], "client_credentials");
    assert!(doc["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{doc}");

    let show = env.run(&["connection", "show", "c"]);
    assert!(
        show.ok().contains(
            "\n  scopes         api.read, api.write (requested; the provider did not say which it granted)\n"
        ),
        "{}",
        show.stdout
    );
    assert!(!show.stdout.contains("granted scopes"), "{}", show.stdout);
    let v = json(env.run(&["connection", "show", "c", "--json"]).ok());
    assert_eq!(v["token"]["scopes_source"], "requested");
    assert_eq!(v["token"]["granted_scopes"], serde_json::json!(["api.read", "api.write"]));

    let out = env.run(&["connection", "revoke", "c", "--json"]);
    assert_eq!(json(out.ok()), serde_json::json!({"link_name": "c", "status": "revoked", "revoked_at_provider": true}));
    assert!(server.requests().iter().any(|r| r.path == "/revoke"), "the provider was told");
    // Nothing left to send: the provider is not told again.
    let out = env.run(&["connection", "revoke", "c", "--json"]);
    assert_eq!(json(out.ok())["revoked_at_provider"], false);
    let human = env.run(&["connection", "revoke", "c"]);
    assert_eq!(human.ok(), "");
    assert_eq!(
        human.stderr,
        "revoked connection `c`: its tokens are forgotten; `linkrun connection authorize c` reconnects it\n"
    );

    // A provider that answers the revocation with an error: the warning is in the document.
    env.run(&["connection", "authorize", "c"]).ok();
    env.add_service(
        "op.toml",
        &service_toml(
            "op2",
            "oauth2",
            None,
            &server.url(),
            &format!(
                "[oauth2]\ntoken_url = \"{}/token\"\nrevoke_url = \"{}/status/503\"\ngrant_types = [\"client_credentials\"]\n",
                server.url(),
                server.url()
            ),
        ),
    );
    env.run(&[
        "connection",
        "create",
        "d",
        "--service",
        "op2",
        "--param",
        "client_id=cid",
        "--param",
        "client_secret=s",
    ])
    .ok();
    env.run(&["connection", "authorize", "d"]).ok();
    let doc = json(env.run(&["connection", "revoke", "d", "--json"]).ok());
    assert_eq!(doc["status"], "revoked");
    assert_eq!(doc["revoked_at_provider"], false);
    assert_eq!(
        doc["warning"],
        "the provider answered HTTP 503 to the revocation; the tokens are forgotten here anyway"
    );
}

#[test]
fn authorize_json_of_a_connection_without_oauth() {
    let env = Env::new();
    install_basic(&env);
    env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    let out = env.run(&["connection", "authorize", "crm", "--json"]);
    assert_eq!(
        json(out.ok()),
        serde_json::json!({"link_name": "crm", "service": "svc", "auth": "basic", "status": "connected"})
    );
    assert_eq!(out.stderr, "");
    let out = env.run(&["connection", "revoke", "crm", "--json"]);
    let message = out.fails(2);
    assert_eq!(out.stdout, error_line("usage", &message, 2));
}

// ---------------------------------------------------------------- hostile input

#[test]
fn out_of_range_timeouts_are_exit_2_naming_the_range() {
    let env = Env::new();
    let script = env.write("t.rhai", "1");
    for bad in ["1e20", "1e308", "18446744073709551616", "1.8e19", "0", "-1", "-0", "NaN", "inf", "-inf", "86400.5"] {
        let flag = format!("--timeout={bad}");
        let out = env.run(&["run", path_str(&script), &flag]);
        let msg = out.fails(2);
        assert!(msg.ends_with("is out of range: give more than 0 and at most 86400 seconds"), "{bad}: {msg}");
    }
    assert_eq!(env.run(&["run", path_str(&script), "--timeout", "86400"]).ok(), "1\n");
    let out = env.run(&["run", path_str(&script), "--timeout", "1e-9"]);
    assert!(out.code == 0 || out.code == 1, "a deadline already past: {}", out.stderr);
    for bad in ["0", "86401", "18446744073709551615"] {
        let out = env.run(&["connection", "authorize", "x", "--timeout", bad]);
        assert_eq!(
            out.fails(2),
            format!("`--timeout {bad}` is out of range: give 1 to 86400 seconds to wait for the redirect")
        );
    }
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().expect("run mkfifo");
    assert!(st.success(), "mkfifo {}", path.display());
}

/// `[[params]]` entries `p0`.. as TOML.
fn params_toml(n: usize) -> String {
    (0..n).map(|i| format!("[[params]]\nkey = \"p{i}\"\n")).collect()
}

#[test]
fn oversized_and_non_regular_inputs_are_refused_by_name() {
    let env = Env::new();
    let dir = env.work.path().join("a_dir");
    std::fs::create_dir(&dir).unwrap();
    let fifo = env.work.path().join("a_fifo");
    mkfifo(&fifo);
    let started = std::time::Instant::now();
    for (path, what) in
        [(Path::new("/dev/zero"), "a device"), (dir.as_path(), "a directory"), (fifo.as_path(), "a FIFO")]
    {
        let p = path_str(path);
        assert_eq!(
            env.run(&["run", p]).fails(2),
            format!("cannot run the script: `{p}` is {what}, not a regular file: give the path of a regular file")
        );
        assert_eq!(
            env.run(&["service", "add", p]).fails(2),
            format!(
                "cannot read the service file: `{p}` is {what}, not a regular file: give the path of a regular file"
            )
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "nothing reads until memory runs out");

    // Scripts: 4 MiB at most.
    let big = env.write("big.rhai", &format!("let x = 1;{}", " ".repeat(4 * 1024 * 1024)));
    assert_eq!(
        env.run(&["run", path_str(&big)]).fails(2),
        format!("cannot run the script: `{}` is larger than 4 MiB: split it or make it smaller", path_str(&big))
    );
    let fits = env.write("fits.rhai", &format!("{}1", " ".repeat(4 * 1024 * 1024 - 1)));
    assert_eq!(env.run(&["run", path_str(&fits)]).ok(), "1\n");

    // Service files: 1 MiB and 256 params at most.
    let head = basic_toml("http://127.0.0.1:9/api");
    let big = env.write("big.toml", &format!("{head}{}", "#".repeat(1024 * 1024)));
    assert_eq!(
        env.run(&["service", "add", path_str(&big)]).fails(2),
        format!("cannot read the service file: `{}` is larger than 1 MiB: split it or make it smaller", path_str(&big))
    );
    let many = env.write("many.toml", &format!("{head}{}", params_toml(200_000)));
    let started = std::time::Instant::now();
    assert!(env.run(&["service", "add", path_str(&many)]).fails(2).contains("larger than 1 MiB"));
    let many = env.write("many.toml", &format!("{head}{}", params_toml(257)));
    let line = head.lines().count() + 2 * 256 + 2;
    assert_eq!(
        env.run(&["service", "add", path_str(&many)]).fails(2),
        format!(
            "{}:{line}: the service declares 257 `[[params]]` entries, more than the limit of 256: keep only the params a connection needs",
            path_str(&many)
        )
    );
    let ok = env.write("ok.toml", &format!("{head}{}", params_toml(256)));
    env.run(&["service", "add", path_str(&ok)]).ok();
    let shown = env.run(&["service", "show", "svc", "--json"]);
    assert_eq!(json(shown.ok())["params"].as_array().map(Vec::len), Some(258), "256 and the two of basic auth");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());

    // The catalog applies the same rules to installed services and to ./connections/*.toml.
    let installed = env.home_path().join("services").join("svc.toml");
    std::fs::write(&installed, format!("{head}{}", "#".repeat(1024 * 1024))).unwrap();
    let msg = env.run(&["service", "list"]).fails(2);
    assert!(
        msg.contains("svc.toml:1: cannot read the service file: `") && msg.contains("is larger than 1 MiB"),
        "{msg}"
    );
    std::fs::remove_file(&installed).unwrap();
    env.run(&["service", "list"]).ok();
    std::fs::create_dir(env.work.path().join("connections")).unwrap();
    mkfifo(&env.work.path().join("connections").join("local.toml"));
    assert_eq!(
        env.run(&["service", "list"]).fails(2),
        "connections/local.toml:1: cannot read the service file: `connections/local.toml` is a FIFO, not a regular file: give the path of a regular file"
    );
}

/// What a hostile command did: exit code (None when it had to be killed) and its output.
struct Hostile {
    code: Option<i32>,
    output: String,
}

/// Runs `linkrun ARGS` (any bytes) like [`Env::run`], killed after `limit`.
fn run_hostile(env: &Env, args: &[std::ffi::OsString], limit: std::time::Duration) -> Hostile {
    let out_path = env.work.path().join(".hostile.out");
    let err_path = env.work.path().join(".hostile.err");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("linkrun"))
        .args(args)
        .current_dir(env.work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LINKRUN_HOME", env.home_path())
        .env("LINKRUN_SET_EMPTY", "")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start linkrun");
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Hostile { code, output: format!("{}\n{}", read(&out_path), read(&err_path)) }
}

/// Every command and flag of the CLI with hostile values: huge, negative, NaN, empty, binary
/// bytes, and a device, a directory and a FIFO where a file is expected. None may panic (exit
/// 101, "panicked"), and none may hang.
#[test]
#[ignore = "heavy: over 1,000 runs; run with `cargo test -p linkrun -- --ignored`"]
fn no_command_or_flag_panics_on_hostile_values() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt as _;

    let env = Env::new();
    install_basic(&env);
    env.run(&["connection", "create", "crm", "--service", "svc", "--param", "username=u", "--param", "password=p"])
        .ok();
    let dir = env.work.path().join("a_dir");
    std::fs::create_dir(&dir).unwrap();
    let fifo = env.work.path().join("a_fifo");
    mkfifo(&fifo);
    let binary = env.work.path().join("binary.bin");
    std::fs::write(&binary, [0u8, 0xff, 0xfe, b'{', b'[', 0x80, b'\n', 0]).unwrap();
    let empty = env.write("empty.rhai", "");
    let script = env.write("ok.rhai", "sleep(0); args");
    env.run(&["run", path_str(&env.write("st.rhai", "state_set(\"k\", #{ a: 1.0/0.0 }); 1"))]).ok();
    let huge_params = env.write("params.toml", &format!("{}{}", basic_toml("http://127.0.0.1:9"), params_toml(300)));

    let os = |s: &str| OsString::from(s);
    let mut values: Vec<OsString> = [
        "",
        " ",
        "-1",
        "0",
        "1e308",
        "-1e308",
        "18446744073709551616",
        "99999999999999999999999999",
        "NaN",
        "inf",
        "-inf",
        "=",
        "a=b=c",
        "x=",
        "=x",
        "Ünïcödé\u{202e}",
        "../../../../etc/passwd",
        "/dev/zero",
    ]
    .into_iter()
    .map(os)
    .collect();
    values.push(OsString::from_vec(vec![0xff, 0xfe, b'x', 0x80]));
    values.push(os(&"x".repeat(10_000)));
    for p in [&dir, &fifo, &binary, &empty, &huge_params] {
        values.push(p.clone().into_os_string());
    }
    let script_path = path_str(&script).to_string();

    // `V` is replaced by each value in turn.
    let templates: Vec<Vec<&str>> = vec![
        vec!["V"],
        vec!["service", "V"],
        vec!["service", "list", "V"],
        vec!["service", "show", "V"],
        vec!["service", "show", "V", "--json"],
        vec!["service", "add", "V"],
        vec!["service", "add", "V", "--replace", "--json"],
        vec!["connection", "V"],
        vec!["connection", "create", "V", "--service", "svc"],
        vec!["connection", "create", "c2", "--service", "V"],
        vec!["connection", "create", "c2", "--service", "svc", "--dc", "V"],
        vec!["connection", "create", "c2", "--service", "svc", "--instance", "V"],
        vec!["connection", "create", "c2", "--service", "svc", "--scope", "V"],
        vec!["connection", "create", "c2", "--service", "svc", "--param", "V"],
        vec!["connection", "create", "c2", "--service", "svc", "--param", "username=u", "--param-env", "V"],
        vec!["connection", "list", "V"],
        vec!["connection", "show", "V"],
        vec!["connection", "show", "V", "--json"],
        vec!["connection", "authorize", "V"],
        vec!["connection", "authorize", "crm", "--grant", "V"],
        vec!["connection", "authorize", "crm", "--code", "V"],
        vec!["connection", "authorize", "crm", "--redirect-uri", "V", "--no-browser"],
        vec!["connection", "authorize", "crm", "--verifier", "V"],
        vec!["connection", "authorize", "crm", "--port", "V"],
        vec!["connection", "authorize", "crm", "--timeout", "V"],
        vec!["connection", "test", "V"],
        vec!["connection", "test", "V", "--json"],
        vec!["connection", "revoke", "V"],
        vec!["connection", "revoke", "V", "--json"],
        vec!["connection", "authorize", "V", "--json"],
        vec!["completions", "V"],
        vec!["connection", "delete", "V"],
        vec!["connection", "delete", "V", "--yes"],
        vec!["run", "V", "--timeout", "2"],
        vec!["run", &script_path, "--arg", "V", "--timeout", "2"],
        vec!["run", &script_path, "--timeout", "V"],
        vec!["run", &script_path, "--json", "--timeout", "V"],
        vec!["-v", "run", "V", "--timeout", "2"],
        vec!["vault", "V"],
        vec!["vault", "status", "V"],
        vec!["vault", "rekey", "--new-passphrase-env", "V"],
        vec!["state", "V"],
        vec!["state", "list", "V"],
        vec!["state", "list", "--json", "V"],
        vec!["state", "clear", "V"],
        vec!["state", "clear", &script_path, "V"],
        vec!["--home", "V", "state", "list"],
        vec!["--home", "V", "vault", "status"],
        vec!["--home", "V", "service", "list"],
        vec!["--home", "V", "connection", "list", "--json"],
        vec!["--home", "V", "run", &script_path, "--timeout", "2"],
        vec!["help", "V"],
        // Long-running modes only with values they refuse before serving.
        vec!["sandbox", "--port", "V", "--failure-rate", "NaN"],
        vec!["sandbox", "--failure-rate", "V", "--port", "65536"],
        vec!["sandbox", "--token-lifetime", "V", "--failure-rate", "2"],
        vec!["sandbox", "--latency-ms", "V", "--failure-rate", "-1"],
        vec!["sandbox", "--rate-limit", "V", "--failure-rate", "inf"],
        vec!["sandbox", "--data", "V", "--failure-rate", "1.5"],
        vec!["demo", "--home", "V", "--bogus"],
    ];
    let mut runs = 0;
    for t in &templates {
        for v in &values {
            let args: Vec<OsString> = t.iter().map(|a| if *a == "V" { v.clone() } else { os(a) }).collect();
            let got = run_hostile(&env, &args, std::time::Duration::from_secs(20));
            let shown = format!("linkrun {}", args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "));
            let shown: String = shown.chars().take(300).collect();
            assert!(got.code.is_some(), "{shown}: did not end within 20 s\n{}", got.output);
            assert_ne!(got.code, Some(101), "{shown}:\n{}", got.output);
            assert!(!got.output.contains("panicked"), "{shown}:\n{}", got.output);
            runs += 1;
        }
    }
    // Demo and the sandbox with a home or data file that cannot work end quickly too.
    for v in [&OsString::from("/dev/zero"), &fifo.clone().into_os_string(), &binary.clone().into_os_string()] {
        let got =
            run_hostile(&env, &[os("demo"), os("--json"), os("--home"), v.clone()], std::time::Duration::from_secs(60));
        assert!(
            got.code.is_some_and(|c| c != 101) && !got.output.contains("panicked"),
            "demo --home {v:?}:\n{}",
            got.output
        );
    }
    for v in [OsString::from("/dev/zero"), dir.clone().into_os_string()] {
        let got = run_hostile(
            &env,
            &[os("sandbox"), os("--port"), os("0"), os("--data"), v.clone()],
            std::time::Duration::from_secs(20),
        );
        assert!(
            got.code.is_some_and(|c| c != 101) && !got.output.contains("panicked"),
            "sandbox --data {v:?}:\n{}",
            got.output
        );
    }
    assert!(runs > 1000, "{runs}");
}

/// Grant codes and verifiers are random text: one that starts with `-` is a value, not a flag
/// (a flaky OAuth test found this: oidc-provider's codes sometimes start with `-`).
#[test]
fn a_grant_code_starting_with_a_dash_is_a_value() {
    let env = Env::new();
    let out = env.run(&["connection", "authorize", "nope", "--code", "-gQ3x"]);
    assert_eq!(
        out.fails(4),
        "unknown connection `nope`: create it with `linkrun connection create nope --service NAME` (see `linkrun connection list`)"
    );
    let out = env.run(&["connection", "authorize", "nope", "--verifier", "-123"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
}
