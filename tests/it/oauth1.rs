//! OAuth 1.0a against a third-party server (oauthlib's endpoints, `tests/support/oauth1_server.py`):
//! every signature method × placement is accepted, with tricky parameters and secrets; the
//! three-legged flow end to end (loopback redirect, `oob` + `--verifier`); provider refusals;
//! revoke; no secret in any output.

use std::io::{Read, Write};

use crate::common::oauth1::{OAuth1Server, rsa_test_keypair};
use crate::common::{Env, Server};
use serde_json::json;

const CONSUMER_KEY: &str = "linkrun-consumer-key-0001";
const TOKEN: &str = "preloaded-access-token-42";
/// A second client whose secrets need no encoding. oauthlib unescapes `oauth_*` values taken from
/// the query or a form body once more after form-decoding them (`collect_parameters`), so a
/// PLAINTEXT signature, which is the encoded secrets themselves, only matches there when encoding
/// changes nothing; its own `Client` fails the same way. linkrun follows RFC 5849 (one form
/// encoding), so PLAINTEXT in the query or body is checked with these secrets, and with the
/// tricky ones in the header.
const PLAIN_KEY: &str = "linkrun-consumer-plain01";
const PLAIN_TOKEN: &str = "preloaded-plain-token-43";
const PLAIN_SECRET: &str = "plain-Secret_1.2~";
const METHODS: &[&str] = &["HMAC-SHA1", "HMAC-SHA256", "HMAC-SHA512", "RSA-SHA1", "RSA-SHA256", "PLAINTEXT"];

/// A consumer secret and token secret full of characters that must be encoded.
fn consumer_secret() -> String {
    "cs&=+~%20 é/ü?#:".to_string()
}
fn token_secret() -> String {
    "ts +&=~%!*'()[]; Ωmega".to_string()
}

fn server() -> OAuth1Server {
    let (_, public) = rsa_test_keypair();
    OAuth1Server::start(&json!({
        "clients": [
            {"key": CONSUMER_KEY, "secret": consumer_secret(), "rsa_public_key": public},
            {"key": PLAIN_KEY, "secret": PLAIN_SECRET, "rsa_public_key": null}
        ],
        "access_tokens": [
            {"client_key": CONSUMER_KEY, "token": TOKEN, "secret": token_secret()},
            {"client_key": PLAIN_KEY, "token": PLAIN_TOKEN, "secret": PLAIN_SECRET}
        ],
        "realms": ["photos"],
    }))
}

fn service(env: &Env, name: &str, base: &str, method: &str, placement: &str) {
    env.add_service(
        &format!("{name}.toml"),
        &format!(
            "link_name = \"{name}\"\nname = \"OAuth1 {name}\"\nauth = \"oauth1\"\nplacement = \"{placement}\"\nbase_url = \"{base}\"\n\
             [oauth1]\nrequest_token_url = \"{base}/request_token\"\nauthorize_url = \"{base}/authorize\"\n\
             access_token_url = \"{base}/access_token\"\nsignature_method = \"{method}\"\nrealm = \"photos\"\n"
        ),
    );
}

/// Creates a connection; with `token`, with the preloaded access token.
fn connect(env: &Env, link: &str, svc: &str, method: &str, token: bool) {
    let (private, _) = rsa_test_keypair();
    env.set_env("CS", &consumer_secret());
    env.set_env("TS", &token_secret());
    env.set_env("PK", &private);
    let mut args =
        vec!["connection", "create", link, "--service", svc, "--param", "consumer_key=linkrun-consumer-key-0001"];
    if method.starts_with("RSA") {
        args.extend(["--param-env", "private_key=PK"]);
    } else {
        args.extend(["--param-env", "consumer_secret=CS"]);
    }
    let token_arg = format!("token={TOKEN}");
    if token {
        args.extend(["--param", &token_arg, "--param-env", "token_secret=TS"]);
    }
    env.run(&args).ok();
}

fn register_secrets(env: &Env) {
    env.secret(&consumer_secret());
    env.secret(&token_secret());
    env.secret("MIIEv"); // the start of the PEM private key's body
}

/// A script asking `/resource` with repeated keys, spaces, `+`, `~`, `&`, `=`, `%`, non-ASCII
/// and reserved characters in the query (and the form body when it can have one).
fn tricky_request(link: &str, with_form: bool) -> String {
    let query = "r=1&r=2&sp=a%20b&plus=a%2Bb&raw+plus=x+y&tilde=%7E~&amp=%26&eq=%3D%3D&pct=%2525&uni=%C3%A9%E2%98%83&res=%21%2A%27%28%29%3B%3A%40%24%2C%2F%3F%23%5B%5D&empty=";
    if with_form {
        format!(
            "invoke_url(#{{ url: \"/resource/items?{query}\", type: \"POST\", parameters: #{{ \"f 1\": \"v+1 & ~\", \"ü\": \"%41=\", r: \"form\" }}, connection: \"{link}\" }})"
        )
    } else {
        format!("invoke_url(#{{ url: \"/resource/items?{query}\", connection: \"{link}\" }})")
    }
}

fn expected_query() -> serde_json::Value {
    json!([
        ["r", "1"],
        ["r", "2"],
        ["sp", "a b"],
        ["plus", "a+b"],
        ["raw plus", "x y"],
        ["tilde", "~~"],
        ["amp", "&"],
        ["eq", "=="],
        ["pct", "%25"],
        ["uni", "é☃"],
        ["res", "!*'();:@$,/?#[]"],
        ["empty", ""]
    ])
}

#[test]
fn every_signature_method_and_placement_is_accepted() {
    let server = server();
    let env = Env::new();
    register_secrets(&env);
    env.secret(PLAIN_SECRET);
    for (i, method) in METHODS.iter().enumerate() {
        for placement in ["header", "query", "form"] {
            let svc = format!("s{i}_{placement}");
            let link = format!("c{i}_{placement}");
            service(&env, &svc, &server.url(), method, placement);
            let plain = *method == "PLAINTEXT" && placement != "header";
            if plain {
                env.run(&[
                    "connection",
                    "create",
                    &link,
                    "--service",
                    &svc,
                    "--param",
                    &format!("consumer_key={PLAIN_KEY}"),
                    "--param",
                    &format!("consumer_secret={PLAIN_SECRET}"),
                    "--param",
                    &format!("token={PLAIN_TOKEN}"),
                    "--param",
                    &format!("token_secret={PLAIN_SECRET}"),
                ])
                .ok();
            } else {
                connect(&env, &link, &svc, method, true);
            }
            let form = placement == "form" || placement == "header";
            let out = env.script(&tricky_request(&link, form), &["--json"]);
            let v: serde_json::Value =
                serde_json::from_str(out.ok()).unwrap_or_else(|_| panic!("{method}/{placement}: {}", out.stdout));
            assert_eq!(v["ok"], true, "{method}/{placement}: {v}\n{}", server.stderr());
            assert_eq!(v["signature_method"], *method);
            assert_eq!(v["placement"], if placement == "form" { "body" } else { placement });
            assert_eq!(v["client_key"], if plain { PLAIN_KEY } else { CONSUMER_KEY });
            assert_eq!(v["token"], if plain { PLAIN_TOKEN } else { TOKEN });
            assert_eq!(v["query"], expected_query(), "{method}/{placement}");
            if form {
                let mut got: Vec<(String, String)> = serde_json::from_value(v["form"].clone()).unwrap();
                got.retain(|(k, _)| !k.starts_with("oauth_"));
                got.sort();
                assert_eq!(
                    got,
                    vec![("f 1".into(), "v+1 & ~".into()), ("r".into(), "form".into()), ("ü".into(), "%41=".into())],
                    "{method}/{placement}"
                );
            }
        }
    }
}

#[test]
fn json_bodies_are_not_signed_and_still_accepted() {
    let server = server();
    let env = Env::new();
    register_secrets(&env);
    service(&env, "svc", &server.url(), "HMAC-SHA256", "header");
    connect(&env, "c", "svc", "HMAC-SHA256", true);
    let out = env.script(
        "invoke_url(#{ url: \"/resource\", type: \"PUT\", body: #{ a: [1, 2] }, connection: \"c\" })",
        &["--json"],
    );
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn form_placement_needs_a_form_body() {
    let server = server();
    let env = Env::new();
    register_secrets(&env);
    service(&env, "svc", &server.url(), "HMAC-SHA1", "form");
    connect(&env, "c", "svc", "HMAC-SHA1", true);
    let out = env.script("let k = \"\"; try { invoke_url(#{ url: \"/resource\", connection: \"c\" }); } catch (e) { k = e.kind + \"|\" + e.message; } k", &[]);
    assert_eq!(
        out.ok().trim(),
        "bad_request|connection `c` sends its OAuth 1.0a parameters in a form body, but a GET request has no body: use type POST, PUT or PATCH with map parameters"
    );
    let out = env.script("let k = \"\"; try { invoke_url(#{ url: \"/resource\", type: \"POST\", body: #{ a: 1 }, connection: \"c\" }); } catch (e) { k = e.message; } k", &[]);
    assert_eq!(
        out.ok().trim(),
        "connection `c` sends its OAuth 1.0a parameters in a form body, but this request's body is `application/json`: use type POST, PUT or PATCH with map parameters"
    );
    assert!(server.log().as_array().unwrap().is_empty(), "nothing was sent");
}

#[test]
fn a_wrong_secret_gets_the_providers_answer_as_a_value() {
    let server = server();
    let env = Env::new();
    env.secret("not-the-secret-1234");
    service(&env, "svc", &server.url(), "HMAC-SHA1", "header");
    env.run(&[
        "connection",
        "create",
        "c",
        "--service",
        "svc",
        "--param",
        "consumer_key=linkrun-consumer-key-0001",
        "--param",
        "consumer_secret=not-the-secret-1234",
        "--param",
        &format!("token={TOKEN}"),
        "--param",
        "token_secret=nope-nope-nope",
    ])
    .ok();
    let out = env.script("let r = invoke_url(#{ url: \"/resource\", connection: \"c\", detailed: true }); [r.responseCode, r.responseText]", &[]);
    assert_eq!(out.ok().trim(), "[401,\"oauth_problem=signature_invalid\"]");
}

#[test]
fn fixed_nonce_and_timestamp_make_the_header_deterministic_in_test_builds() {
    let server = Server::start();
    let env = Env::new();
    env.secret("kd94hf93k423kf44");
    env.secret("pfkkdhi9sl3r4s00");
    service(&env, "svc", &server.url(), "HMAC-SHA1", "header");
    env.run(&[
        "connection",
        "create",
        "c",
        "--service",
        "svc",
        "--param",
        "consumer_key=dpf43f3p2l4k3l03",
        "--param",
        "consumer_secret=kd94hf93k423kf44",
        "--param",
        "token=nnch734d00sl2jdk",
        "--param",
        "token_secret=pfkkdhi9sl3r4s00",
    ])
    .ok();
    env.set_env("LINKRUN_TEST_OAUTH1_NONCE", "kllo9940pd9333jh");
    env.set_env("LINKRUN_TEST_OAUTH1_TIMESTAMP", "1191242096");
    for _ in 0..2 {
        env.script("invoke_url(#{ url: \"/photos?file=vacation.jpg&size=original\", connection: \"c\" }); ()", &[])
            .ok();
    }
    let reqs = server.requests();
    let h0 = reqs[0].header("authorization").unwrap().to_string();
    assert_eq!(Some(h0.as_str()), reqs[1].header("authorization"));
    assert!(h0.starts_with("OAuth realm=\"photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", oauth_signature_method=\"HMAC-SHA1\", oauth_timestamp=\"1191242096\", oauth_nonce=\"kllo9940pd9333jh\", oauth_version=\"1.0\", oauth_token=\"nnch734d00sl2jdk\", oauth_signature=\""), "{h0}");
}

/// GET `url` (http://127.0.0.1:PORT/...) with a bare HTTP/1.0 request; returns the status line.
fn http_get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines().next().unwrap_or_default().to_string()
}

/// Follows the provider's approval: GET the authorize URL, then its redirect (the callback).
fn approve_in_browser(server: &OAuth1Server, authorize_url: &str) {
    let path = authorize_url.strip_prefix(&server.url()).unwrap();
    let r = server.get(path);
    assert_eq!(r.status, 302, "{r:?}");
    let callback = r.header("Location").unwrap().to_string();
    assert!(callback.starts_with("http://127.0.0.1:"), "{callback}");
    assert!(http_get(&callback).contains("200"), "the listener answered the browser");
}

#[test]
fn three_legged_flow_through_the_loopback_listener() {
    let server = server();
    let env = Env::new();
    register_secrets(&env);
    service(&env, "svc", &server.url(), "HMAC-SHA1", "header");
    connect(&env, "oa", "svc", "HMAC-SHA1", false);
    let show: serde_json::Value = serde_json::from_str(env.run(&["connection", "show", "oa", "--json"]).ok()).unwrap();
    assert_eq!(show["status"], "not_authorized");
    let out = env.script("invoke_url(#{ url: \"/resource\", connection: \"oa\" })", &[]);
    assert_eq!(
        out.fails(4),
        "connection `oa` is not authorised yet: run `linkrun connection authorize oa` (uncaught in `script.rhai` at line 1, column 1)"
    );

    let mut child = env.spawn(&["connection", "authorize", "oa", "--timeout", "30"]);
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let authorize_url = line.trim().to_string();
    assert!(authorize_url.starts_with(&format!("{}/authorize?oauth_token=", server.url())), "{authorize_url}");
    approve_in_browser(&server, &authorize_url);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    for s in [consumer_secret(), token_secret()] {
        assert!(!err.contains(&s) && !rest.contains(&s) && !line.contains(&s));
    }
    assert!(status.success(), "authorize failed: {err}");
    assert_eq!(rest, "", "only the URL on stdout");
    assert!(err.contains("connection `oa` is authorised (status connected)"), "{err}");

    let show: serde_json::Value = serde_json::from_str(env.run(&["connection", "show", "oa", "--json"]).ok()).unwrap();
    assert_eq!(show["status"], "connected");
    let out = env.script("invoke_url(#{ url: \"/resource\", connection: \"oa\" }).ok", &[]);
    assert_eq!(out.ok(), "true\n");

    // Revoke forgets the token; an uncaught call then ends with exit 4; authorize reconnects.
    env.run(&["connection", "revoke", "oa"]).ok();
    let out = env.script("invoke_url(#{ url: \"/resource\", connection: \"oa\" })", &[]);
    assert_eq!(
        out.fails(4),
        "connection `oa` was revoked: run `linkrun connection authorize oa` to reconnect it (uncaught in `script.rhai` at line 1, column 1)"
    );
    let show: serde_json::Value = serde_json::from_str(env.run(&["connection", "show", "oa", "--json"]).ok()).unwrap();
    assert!(show["params"].get("token").is_none(), "{show}");
    let mut child = env.spawn(&["connection", "authorize", "oa", "--timeout", "30"]);
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    approve_in_browser(&server, line.trim());
    assert!(child.wait().unwrap().success());
    assert_eq!(env.script("invoke_url(#{ url: \"/resource\", connection: \"oa\" }).ok", &[]).ok(), "true\n");
}

#[test]
fn oob_flow_with_a_verifier_given_later() {
    let server = server();
    let env = Env::new();
    register_secrets(&env);
    service(&env, "svc", &server.url(), "RSA-SHA256", "query");
    connect(&env, "oa", "svc", "RSA-SHA256", false);
    let out = env.run(&["connection", "authorize", "oa", "--no-browser"]);
    let url = out.ok().trim().to_string();
    assert!(out.stderr.contains("then run `linkrun connection authorize oa --verifier CODE`"), "{}", out.stderr);
    let token = url.split("oauth_token=").nth(1).unwrap();
    let verifier = server.authorize(token);
    let out = env.run(&["connection", "authorize", "oa", "--verifier", "wrong-verifier-000"]);
    assert_eq!(
        out.fails(4),
        "the verifier was wrong or has expired (oauth_problem=verifier_invalid): run `linkrun connection authorize oa` again"
    );
    // With --json: the URL as `{"authorization_url": URL}` alone on the first line, then the
    // connection, waiting for its verifier.
    let out = env.run(&["connection", "authorize", "oa", "--no-browser", "--json"]);
    let (first, rest) = out.ok().split_once('\n').unwrap();
    let first: serde_json::Value = serde_json::from_str(first).unwrap();
    let url = first["authorization_url"].as_str().unwrap().to_string();
    let doc: serde_json::Value = serde_json::from_str(rest).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"link_name": "oa", "service": "svc", "auth": "oauth1", "status": "not_authorized",
                           "next": "linkrun connection authorize oa --verifier CODE"})
    );
    let verifier2 = server.authorize(url.split("oauth_token=").nth(1).unwrap());
    assert_ne!(verifier, verifier2);
    let out = env.run(&["connection", "authorize", "oa", "--verifier", &verifier2, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(doc, serde_json::json!({"link_name": "oa", "service": "svc", "auth": "oauth1", "status": "connected"}));
    assert_eq!(env.script("invoke_url(#{ url: \"/resource\", connection: \"oa\" }).placement", &[]).ok(), "query\n");
}

#[test]
fn provider_refusals_are_one_sentence_and_exit_4() {
    let server = server();
    let env = Env::new();
    env.secret("bad-consumer-secret-77");
    service(&env, "svc", &server.url(), "HMAC-SHA1", "header");
    env.run(&[
        "connection",
        "create",
        "oa",
        "--service",
        "svc",
        "--param",
        "consumer_key=linkrun-consumer-key-0001",
        "--param",
        "consumer_secret=bad-consumer-secret-77",
    ])
    .ok();
    let out = env.run(&["connection", "authorize", "oa", "--no-browser"]);
    assert_eq!(
        out.fails(4),
        "the provider rejected the signature of connection `oa` (oauth_problem=signature_invalid): check its consumer_secret or private_key and the service's signature_method"
    );
    assert_eq!(out.stdout, "");
    let out = env.run(&["connection", "authorize", "oa", "--no-browser", "--json"]);
    let message = out.fails(4);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!({"error": {"kind": "connection", "message": message, "exit_code": 4}})
    );
    let out = env.run(&["connection", "authorize", "oa", "--verifier", "x"]);
    assert_eq!(
        out.fails(2),
        "connection `oa` has no authorisation waiting for a verifier: run `linkrun connection authorize oa --no-browser` first"
    );
}
