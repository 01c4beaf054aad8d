//! `invoke_url` follows Deluge's `invokeurl`: parameters per method, raw and JSON bodies,
//! detailed responses, non-2xx as values.

use crate::common::{Env, Server};

fn run_ok(env: &Env, script: &str) -> serde_json::Value {
    let out = env.script(script, &["--json"]);
    serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

#[test]
fn map_parameters_are_the_query_string_for_get_delete_head() {
    let (env, server) = (Env::new(), Server::start());
    for m in ["GET", "DELETE", "HEAD"] {
        server.clear();
        env.script(
            &format!(
                "invoke_url(#{{ url: \"{}/p\", type: \"{m}\", parameters: #{{ a: 1, b: \"x y&z\" }} }}); ()",
                server.url()
            ),
            &[],
        )
        .ok();
        let r = &server.requests()[0];
        assert_eq!(r.method, m);
        assert_eq!(r.query_pairs(), vec![("a".into(), "1".into()), ("b".into(), "x y&z".into())], "{m}");
        assert_eq!(r.body, "", "{m}");
    }
}

#[test]
fn map_parameters_are_a_form_body_for_post_put_patch() {
    let (env, server) = (Env::new(), Server::start());
    for m in ["POST", "PUT", "PATCH"] {
        server.clear();
        env.script(
            &format!(
                "invoke_url(#{{ url: \"{}/p\", type: \"{m}\", parameters: #{{ n: 2, ok: true, list: [1, 2] }} }}); ()",
                server.url()
            ),
            &[],
        )
        .ok();
        let r = &server.requests()[0];
        assert_eq!(r.method, m);
        assert_eq!(r.query, "");
        assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(
            r.form_pairs(),
            vec![("list".into(), "[1,2]".into()), ("n".into(), "2".into()), ("ok".into(), "true".into())],
            "{m}"
        );
    }
}

#[test]
fn text_parameters_are_the_raw_body_typed_by_content() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    env.script(&format!("invoke_url(#{{ url: \"{u}/a\", type: \"POST\", parameters: \"hello\" }}); ()"), &[]).ok();
    env.script(
        &format!("invoke_url(#{{ url: \"{u}/b\", type: \"POST\", parameters: to_json(#{{ k: [1] }}) }}); ()"),
        &[],
    )
    .ok();
    env.script(
        &format!(
            "invoke_url(#{{ url: \"{u}/c\", type: \"PUT\", parameters: \"<x/>\", \"content-type\": \"application/xml\" }}); ()"
        ),
        &[],
    )
    .ok();
    let r = server.requests();
    assert_eq!((r[0].body.as_str(), r[0].header("content-type")), ("hello", Some("text/plain")));
    assert_eq!((r[1].body.as_str(), r[1].header("content-type")), ("{\"k\":[1]}", Some("application/json")));
    assert_eq!((r[2].body.as_str(), r[2].header("content-type")), ("<x/>", Some("application/xml")));
}

#[test]
fn body_is_json_and_map_parameters_then_go_to_the_query() {
    let (env, server) = (Env::new(), Server::start());
    env.script(
        &format!(
            "invoke_url(#{{ url: \"{}/r\", type: \"POST\", parameters: #{{ trigger: \"none\" }}, body: #{{ data: [#{{ Last_Name: \"Doe\", n: 1.5 }}] }} }}); ()",
            server.url()
        ),
        &[],
    )
    .ok();
    let r = &server.requests()[0];
    assert_eq!(r.query, "trigger=none");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body, serde_json::json!({"data": [{"Last_Name": "Doe", "n": 1.5}]}));
}

#[test]
fn json_content_type_sends_map_parameters_as_json() {
    let (env, server) = (Env::new(), Server::start());
    env.script(
        &format!(
            "invoke_url(#{{ url: \"{}/j\", type: \"POST\", \"content-type\": \"application/json\", parameters: #{{ a: 1 }} }}); ()",
            server.url()
        ),
        &[],
    )
    .ok();
    let r = &server.requests()[0];
    assert_eq!(r.body, "{\"a\":1}");
    assert_eq!(r.header("content-type"), Some("application/json"));
}

#[test]
fn body_with_text_parameters_is_a_bad_request() {
    let env = Env::new();
    let out = env.script(
        "invoke_url(#{ url: \"http://127.0.0.1:9/x\", type: \"POST\", parameters: \"t\", body: #{ a: 1 } })",
        &[],
    );
    assert_eq!(
        out.fails(1),
        "a request cannot have both `body` and text `parameters`: put the text in `body`, or make `parameters` a map (uncaught `bad_request` error in `script.rhai` at line 1, column 1; catch it with try/catch)"
    );
}

#[test]
fn responses_become_maps_lists_or_text() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    let v = run_ok(
        &env,
        &format!(
            "let a = invoke_url(#{{ url: \"{u}/echo?x=1\" }}); let b = invoke_url(#{{ url: \"{u}/multi\" }}); \
             let c = invoke_url(#{{ url: \"{u}/text\" }}); let d = invoke_url(#{{ url: \"{u}/empty\" }}); \
             let e = invoke_url(#{{ url: \"{u}/echo\", type: \"HEAD\" }}); \
             #{{ a: a.query, b: b, b_len: b.len(), c: c, d: d, e: e }}"
        ),
    );
    assert_eq!(v, serde_json::json!({"a": "x=1", "b": [1, 2, 3], "b_len": 3, "c": "plain text", "d": "", "e": ""}));
}

#[test]
fn detailed_gives_code_text_and_lower_case_headers() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    let v = run_ok(
        &env,
        &format!(
            "let r = invoke_url(#{{ url: \"{u}/multi\", detailed: true }}); \
             let s = invoke_url(#{{ url: \"{u}/status/404\", detailed: true }}); \
             #{{ code: r.responseCode, text: r.responseText, cookie: r.responseHeader[\"set-cookie\"], custom: r.responseHeader[\"x-custom\"], \
                 nf: s.responseCode, nf_text: s.responseText }}"
        ),
    );
    assert_eq!(
        v,
        serde_json::json!({"code": 200, "text": [1, 2, 3], "cookie": "a=1, b=2", "custom": "yes", "nf": 404, "nf_text": {"code": 404}})
    );
}

#[test]
fn error_statuses_are_values_not_exceptions() {
    let (env, server) = (Env::new(), Server::start());
    let v = run_ok(&env, &format!("invoke_url(#{{ url: \"{}/status/500\" }})", server.url()));
    assert_eq!(v, serde_json::json!({"code": 500}));
}

#[test]
fn headers_and_type_are_sent_as_given() {
    let (env, server) = (Env::new(), Server::start());
    env.script(
        &format!("invoke_url(#{{ url: \"{}/h\", type: \"patch\", headers: #{{ \"X-Trace\": 7 }} }}); ()", server.url()),
        &[],
    )
    .ok();
    let r = &server.requests()[0];
    assert_eq!(r.method, "PATCH");
    assert_eq!(r.header("x-trace"), Some("7"));
}

#[test]
fn request_map_mistakes_are_bad_requests() {
    let env = Env::new();
    let out = env.script(
        "let k = \"\"; try { invoke_url(#{ url: \"http://127.0.0.1:9/\", methd: \"GET\" }); } catch (e) { k = e.kind + \"|\" + e.message; } k",
        &[],
    );
    assert_eq!(
        out.ok().trim(),
        "bad_request|unknown key `methd` in the invoke_url map: the keys are url, type, parameters, body, headers, content-type, connection, detailed, response-format, timeout, retry"
    );
    let out = env.script(
        "let k = \"\"; try { invoke_url(#{ url: \"http://127.0.0.1:9/\", type: \"FETCH\" }); } catch (e) { k = e.message; } k",
        &[],
    );
    assert_eq!(out.ok().trim(), "unknown request type `FETCH`: use GET, POST, PUT, PATCH, DELETE or HEAD");
    let out =
        env.script("let k = \"\"; try { invoke_url(#{ url: \"/relative\" }); } catch (e) { k = e.message; } k", &[]);
    assert_eq!(
        out.ok().trim(),
        "relative URL `/relative` needs a connection with a base URL: add `connection: \"LINK\"` or use an absolute URL"
    );
}
