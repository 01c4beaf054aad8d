//! `linkrun serve`: webhooks (sync, async, auth, dedupe, caps), schedules, alerts, replay,
//! crash recovery, the queue's bound, metrics and logs, and the secrets kept out of all of it.

use serde_json::{Value, json};

use crate::common::Env;
use crate::common::serve::{Serve, add_trigger, contains, header, home_bytes, runs};
use crate::common::server::Server;

const ECHO: &str = r#"
info("hook " + request.method + " " + request.path);
#{ body: request.body, params: request.params, who: args.who, run: run.id, trigger: run.trigger }
"#;

fn webhook(name: &str, path: &str, extra: &str) -> String {
    format!("name = \"{name}\"\nscript = \"echo.rhai\"\n[args]\nwho = \"fixed\"\n[webhook]\npath = \"{path}\"\n{extra}")
}

fn body(r: &crate::common::oidc::Reply) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {} {}", r.status, r.body))
}

#[test]
fn a_sync_webhook_answers_with_the_result_and_records_the_run_without_its_key() {
    let env = Env::new();
    env.write("echo.rhai", ECHO);
    let key = add_trigger(&env, "echo.toml", &webhook("echo", "/hooks/echo", ""));
    assert!(key.starts_with("lrk_") && key.len() > 40, "{key}");
    let serve = Serve::start(&env, &[]);
    let r = serve.send(
        "POST",
        "/hooks/echo?page=2",
        &[("Authorization", &format!("Bearer {key}")), ("Content-Type", "application/json")],
        r#"{"lead": {"Last_Name": "Ng"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let got = body(&r);
    let id = header(&r, "x-linkrun-run").unwrap().to_string();
    assert_eq!(got["body"], json!({"lead": {"Last_Name": "Ng"}}));
    assert_eq!((got["params"]["page"].as_str(), got["who"].as_str()), (Some("2"), Some("fixed")));
    assert_eq!((got["run"].as_str(), got["trigger"].as_str()), (Some(id.as_str()), Some("echo")));
    // A form body is a map; the key may also come in X-Linkrun-Key.
    let r = serve.send(
        "POST",
        "/hooks/echo",
        &[("X-Linkrun-Key", &key), ("Content-Type", "application/x-www-form-urlencoded")],
        "a=1&b=two",
    );
    assert_eq!(body(&r)["body"], json!({"a": "1", "b": "two"}));
    serve.wait_log(&format!("run {id} trigger=echo status=ok"));
    let metrics = serve.send("GET", "/metrics", &[], "").body;
    assert!(metrics.contains("linkrun_runs_total{trigger=\"echo\",status=\"ok\"} 2"), "{metrics}");
    assert_eq!(body(&serve.send("GET", "/healthz", &[], "")), json!({"status": "ok"}));
    let log = serve.stop();
    let shown: Value = serde_json::from_str(env.run(&["runs", "show", &id, "--json"]).ok()).unwrap();
    assert_eq!((shown["trigger"].as_str(), shown["status"].as_str()), (Some("echo"), Some("ok")));
    assert_eq!(shown["info"], json!(["hook POST /hooks/echo"]));
    assert_eq!(shown["input"]["request"]["body"], json!({"lead": {"Last_Name": "Ng"}}));
    // The key is in no record, log, metric or file of the home (the vault keeps it sealed).
    for text in [&log, &metrics, &shown.to_string(), &env.run(&["trigger", "show", "echo", "--json"]).ok().to_string()]
    {
        assert!(!text.contains(&key), "the key leaked:\n{text}");
    }
    assert!(!contains(&home_bytes(&env), &key), "the key is in clear in the home");
}

#[test]
fn refused_webhooks_say_why_and_run_nothing() {
    let env = Env::new();
    env.write("echo.rhai", ECHO);
    let key = add_trigger(&env, "k.toml", &webhook("keyed", "/hooks/keyed", "max_body_kb = 1\n"));
    let qkey = add_trigger(&env, "q.toml", &webhook("query", "/hooks/query", "key_in_query = true\n"));
    env.set_env("HOOK_SECRET", "s3cret-for-hmac");
    add_trigger(
        &env,
        "h.toml",
        &webhook(
            "signed",
            "/hooks/signed",
            "auth = \"hmac_sha256\"\nheader = \"X-Signature\"\nsecret_env = \"HOOK_SECRET\"\ntimestamp_header = \"X-Timestamp\"\n",
        ),
    );
    env.set_env("HOOK_PASSWORD", "pa55-basic");
    add_trigger(
        &env,
        "b.toml",
        &webhook("basic", "/hooks/basic", "auth = \"basic\"\nusername = \"zoho\"\npassword_env = \"HOOK_PASSWORD\"\n"),
    );
    env.unset_env("HOOK_SECRET");
    env.unset_env("HOOK_PASSWORD");
    let serve = Serve::start(&env, &[]);
    let refused = |r: crate::common::oidc::Reply, status: u16, says: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        let m = body(&r)["error"].as_str().unwrap().to_string();
        assert!(m.contains(says), "{m}");
    };
    refused(serve.send("POST", "/hooks/keyed", &[], "{}"), 401, "needs its key");
    refused(serve.post("/hooks/keyed", "lrk_wrong", "{}"), 401, "wrong webhook key");
    refused(serve.send("POST", &format!("/hooks/keyed?key={key}"), &[], "{}"), 401, "not take its key in the query");
    refused(serve.send("GET", "/hooks/keyed", &[("X-Linkrun-Key", &key)], ""), 405, "send POST");
    refused(serve.post("/hooks/keyed", &key, &"x".repeat(2000)), 413, "larger than");
    refused(serve.send("POST", "/hooks/nothing", &[], "{}"), 404, "no trigger");
    // The query key, where the trigger allows it (Zoho workflow webhooks cannot set headers);
    // the script never sees it among the params.
    let r = serve.send("POST", &format!("/hooks/query?key={qkey}&id=7"), &[], "");
    assert_eq!(body(&r)["params"], json!({"id": "7"}));
    // HMAC: over `TIMESTAMP.BODY`, hex, `sha256=` optional; a stale timestamp is refused.
    let sign = |ts: &str, b: &str| {
        use hmac::Mac as _;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret-for-hmac").unwrap();
        m.update(format!("{ts}.{b}").as_bytes());
        m.finalize().into_bytes().iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let stale = (now.parse::<u64>().unwrap() - 3600).to_string();
    let b = r#"{"event":"x"}"#;
    refused(serve.send("POST", "/hooks/signed", &[("X-Timestamp", &now)], b), 401, "needs an HMAC-SHA256 signature");
    refused(
        serve.send("POST", "/hooks/signed", &[("X-Timestamp", &now), ("X-Signature", &sign(&now, "other"))], b),
        401,
        "does not match",
    );
    refused(
        serve.send("POST", "/hooks/signed", &[("X-Timestamp", &stale), ("X-Signature", &sign(&stale, b))], b),
        401,
        "not within 300 s",
    );
    let ok = serve.send(
        "POST",
        "/hooks/signed",
        &[("X-Timestamp", &now), ("X-Signature", &format!("sha256={}", sign(&now, b)))],
        b,
    );
    assert_eq!((ok.status, body(&ok)["body"]["event"].as_str()), (200, Some("x")), "{}", ok.body);
    // Basic.
    use base64::Engine as _;
    let basic =
        |u: &str, p: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
    refused(serve.send("POST", "/hooks/basic", &[("Authorization", &basic("zoho", "nope"))], "{}"), 401, "Basic");
    assert_eq!(
        serve.send("POST", "/hooks/basic", &[("Authorization", &basic("zoho", "pa55-basic"))], "{}").status,
        200
    );
    let metrics = serve.send("GET", "/metrics", &[], "").body;
    assert!(metrics.contains("linkrun_webhook_refusals_total{trigger=\"keyed\",reason=\"wrong_key\"} 1"), "{metrics}");
    let log = serve.stop();
    // Only the three accepted requests ran.
    let all = runs(&env, &[]);
    let mut triggers: Vec<&str> = all.iter().map(|r| r["trigger"].as_str().unwrap()).collect();
    triggers.sort();
    assert_eq!(triggers, ["basic", "query", "signed"]);
    for s in [key.as_str(), qkey.as_str(), "s3cret-for-hmac", "pa55-basic"] {
        assert!(!log.contains(s) && !contains(&home_bytes(&env), s), "`{s}` leaked");
    }
}

#[test]
fn a_repeated_delivery_runs_once_and_gets_the_first_answer() {
    let env = Env::new();
    env.write("echo.rhai", ECHO);
    let key = add_trigger(&env, "d.toml", &webhook("dedup", "/hooks/d", "dedupe = \"X-Delivery-Id\"\n"));
    let akey =
        add_trigger(&env, "a.toml", &webhook("adedup", "/hooks/a", "mode = \"async\"\ndedupe = \"body:$.event.id\"\n"));
    let serve = Serve::start(&env, &[]);
    let send = |id: &str, b: &str| serve.send("POST", "/hooks/d", &[("X-Linkrun-Key", &key), ("X-Delivery-Id", id)], b);
    let first = send("del-1", r#"{"n": 1}"#);
    let again = send("del-1", r#"{"n": 2}"#);
    assert_eq!((first.status, again.status), (200, 200));
    assert_eq!(body(&again), body(&first), "the repeat gets the first run's answer");
    assert_eq!(body(&send("del-2", r#"{"n": 3}"#))["body"]["n"], 3);
    let a1 = serve.post("/hooks/a", &akey, r#"{"event": {"id": 42}}"#);
    let a2 = serve.post("/hooks/a", &akey, r#"{"event": {"id": 42}}"#);
    assert_eq!((a1.status, a2.status), (202, 202));
    assert_eq!(body(&a2)["run_id"], body(&a1)["run_id"]);
    assert_eq!(body(&a2)["duplicate"], true);
    serve.wait_log("trigger=adedup status=ok");
    serve.stop();
    let ok: Vec<Value> = runs(&env, &["--status", "ok"]);
    assert_eq!(ok.len(), 3, "{ok:?}");
    let dups = runs(&env, &["--status", "duplicate"]);
    assert_eq!(dups.len(), 2);
    assert!(dups.iter().all(|d| d["duplicate_of"].is_string()), "{dups:?}");
}

#[test]
fn async_runs_survive_kill_9_every_accepted_one_runs_once_or_is_interrupted() {
    let env = Env::new();
    // Each run reports itself to a recording server, so a run done twice would show.
    let seen = Server::start();
    std::fs::write(env.home_path().join("linkrun.toml"), "[serve]\nallow_private_network = true\n").unwrap();
    env.write(
        "slow.rhai",
        &format!("sleep(0.02); invoke_url(#{{ url: \"{}/ran?i=\" + input.i, type: \"POST\" }}); input.i", seen.url()),
    );
    let key = add_trigger(
        &env,
        "s.toml",
        "name = \"slow\"\nscript = \"slow.rhai\"\n[webhook]\npath = \"/hooks/slow\"\nmode = \"async\"\n",
    );
    let serve = Serve::start(&env, &["--workers", "2"]);
    let mut accepted = Vec::new();
    for i in 0..200 {
        let r = serve.post("/hooks/slow", &key, &format!("{{\"i\": {i}}}"));
        assert_eq!(r.status, 202, "{}", r.body);
        accepted.push(body(&r)["run_id"].as_str().unwrap().to_string());
        if i == 120 {
            // Mid-stream: some runs ended, some are running, most wait.
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    serve.kill();
    let before = runs(&env, &[]);
    assert!(before.iter().any(|r| r["status"] == "queued"), "the kill left nothing queued: the test shows nothing");
    // The restart runs what was queued; what was running when killed is interrupted.
    let serve = Serve::start(&env, &["--workers", "2"]);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let all = runs(&env, &[]);
        if all.iter().all(|r| r["status"] != "queued" && r["status"] != "running") {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "runs still open: {:?}",
            all.iter().filter(|r| r["status"] == "queued").count()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    serve.stop();
    let all = runs(&env, &[]);
    assert_eq!(all.len(), 200, "one record per accepted request");
    let mut ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    accepted.sort();
    assert_eq!(ids, accepted.iter().map(String::as_str).collect::<Vec<_>>());
    let ok = all.iter().filter(|r| r["status"] == "ok").count();
    let interrupted = all.iter().filter(|r| r["status"] == "interrupted").count();
    assert_eq!(ok + interrupted, 200, "{all:?}");
    // Per worker: the run it was running, and the one before whose end was still being committed
    // (a worker takes its next job while the writer commits the last one's end).
    assert!(interrupted <= 4, "at most two per worker were open: {interrupted}");
    // Each run reported once at most; each ok run exactly once.
    let mut reported: Vec<String> = seen.requests().iter().map(|r| r.query.clone()).collect();
    let n = reported.len();
    reported.sort();
    reported.dedup();
    assert_eq!(reported.len(), n, "a run ran twice");
    assert!(n >= ok && n <= ok + interrupted, "reported {n}, ok {ok}, interrupted {interrupted}");
}

#[test]
fn eight_clients_posting_a_thousand_webhooks_lose_no_run() {
    let env = Env::new();
    env.write("n.rhai", "input.n");
    let key = add_trigger(&env, "n.toml", "name = \"many\"\nscript = \"n.rhai\"\n[webhook]\npath = \"/hooks/many\"\n");
    let serve = Serve::start(&env, &[]);
    let base = serve.base.clone();
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (base, key) = (base.clone(), key.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for i in 0..125 {
                    let n = c * 1000 + i;
                    let h = vec![("X-Linkrun-Key".to_string(), key.clone())];
                    let r = crate::common::oidc::http(
                        "POST",
                        &format!("{base}/hooks/many"),
                        &h,
                        format!("{{\"n\": {n}}}").as_bytes(),
                    )
                    .unwrap();
                    assert_eq!(r.status, 200, "{}", r.body);
                    got.push((n, r.body.trim().parse::<i64>().unwrap()));
                }
                got
            })
        })
        .collect();
    let mut answered = 0;
    for c in clients {
        for (sent, back) in c.join().unwrap() {
            assert_eq!(sent as i64, back);
            answered += 1;
        }
    }
    serve.stop();
    assert_eq!(answered, 1000);
    let ok = runs(&env, &["--trigger", "many", "--status", "ok"]);
    assert_eq!(ok.len(), 1000);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let env = Env::new();
    env.write("wait.rhai", "sleep(1.0); 1");
    let key = add_trigger(
        &env,
        "w.toml",
        "name = \"wait\"\nscript = \"wait.rhai\"\n[webhook]\npath = \"/hooks/wait\"\nmode = \"async\"\n",
    );
    let serve = Serve::start(&env, &["--workers", "1", "--queue", "2"]);
    let codes: Vec<u16> = (0..6).map(|_| serve.post("/hooks/wait", &key, "{}").status).collect();
    assert!(codes.contains(&503), "{codes:?}");
    let r = serve.post("/hooks/wait", &key, "{}");
    if r.status == 503 {
        assert_eq!(header(&r, "retry-after"), Some("1"));
        assert!(body(&r)["error"].as_str().unwrap().contains("queue is full"));
    }
    serve.stop();
    // Nothing refused was recorded; everything accepted ran.
    let accepted = codes.iter().filter(|c| **c == 202).count() + usize::from(r.status == 202);
    assert_eq!(runs(&env, &[]).len(), accepted);
}

#[test]
fn respond_sets_the_answer_and_failures_tell_on_failure_once() {
    let env = Env::new();
    let alerts = Server::start();
    env.write("pop.rhai", r#"respond(201, #{ found: request.body.phone }, #{ "X-Pop": "yes" })"#);
    env.write("boom.rhai", r#"throw "no contact for " + request.body.phone"#);
    env.write("tell.rhai", "info(\"failed: \" + input.run.id); input.trigger");
    let key =
        add_trigger(&env, "pop.toml", "name = \"pop\"\nscript = \"pop.rhai\"\n[webhook]\npath = \"/hooks/pop\"\n");
    let bkey = add_trigger(
        &env,
        "boom.toml",
        "name = \"boom\"\nscript = \"boom.rhai\"\non_failure = \"tell.rhai\"\n[webhook]\npath = \"/hooks/boom\"\n",
    );
    env.set_env("ALERT_SECRET", "alert-signing-secret");
    let ukey_toml = format!(
        "name = \"urlalert\"\nscript = \"boom.rhai\"\non_failure = \"{}/alerts\"\n[webhook]\npath = \"/hooks/u\"\nauth = \"hmac_sha256\"\nheader = \"X-Sig\"\nsecret_env = \"ALERT_SECRET\"\n",
        alerts.url()
    );
    add_trigger(&env, "u.toml", &ukey_toml);
    let serve = Serve::start(&env, &[]);
    let r = serve.post("/hooks/pop", &key, r#"{"phone": "+4930123"}"#);
    assert_eq!((r.status, header(&r, "x-pop")), (201, Some("yes")));
    assert_eq!(body(&r), json!({"found": "+4930123"}));
    let r = serve.post("/hooks/boom", &bkey, r#"{"phone": "+1555"}"#);
    assert_eq!(r.status, 500);
    let failed = header(&r, "x-linkrun-run").unwrap().to_string();
    assert!(body(&r)["error"].as_str().unwrap().contains(&format!("linkrun runs show {failed}")));
    serve.wait_log("trigger=boom:on_failure status=ok");
    // The URL alert: the failed run's record as JSON, signed with the trigger's secret.
    let b = r#"{"phone": "+1"}"#;
    let sig = {
        use hmac::Mac as _;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"alert-signing-secret").unwrap();
        m.update(b.as_bytes());
        m.finalize().into_bytes().iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    assert_eq!(serve.send("POST", "/hooks/u", &[("X-Sig", &sig)], b).status, 500);
    serve.wait_log("on_failure of `urlalert`: sent to");
    serve.stop();
    let handler = runs(&env, &["--trigger", "boom:on_failure"]);
    assert_eq!(handler.len(), 1, "on_failure ran once");
    let shown: Value =
        serde_json::from_str(env.run(&["runs", "show", handler[0]["id"].as_str().unwrap(), "--json"]).ok()).unwrap();
    assert_eq!(shown["info"], json!([format!("failed: {failed}")]));
    let posted = alerts.requests();
    let alert = posted.iter().find(|p| p.path == "/alerts").expect("the alert was posted");
    let doc: Value = serde_json::from_str(&alert.body).unwrap();
    assert_eq!((doc["event"].as_str(), doc["run"]["status"].as_str()), (Some("run_failed"), Some("failed")));
    let expected = {
        use hmac::Mac as _;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"alert-signing-secret").unwrap();
        m.update(alert.body.as_bytes());
        format!("sha256={}", m.finalize().into_bytes().iter().map(|x| format!("{x:02x}")).collect::<String>())
    };
    assert_eq!(alert.header("x-linkrun-signature"), Some(expected.as_str()));
}

#[test]
fn runs_retry_replays_a_failed_run_with_its_input_linked_to_the_first() {
    let env = Env::new();
    // Fails until the script is fixed.
    env.write("flaky.rhai", "throw \"not yet\"");
    let key = add_trigger(
        &env,
        "f.toml",
        "name = \"flaky\"\nscript = \"flaky.rhai\"\n[webhook]\npath = \"/hooks/flaky\"\nmode = \"async\"\n",
    );
    let serve = Serve::start(&env, &[]);
    let r = serve.post("/hooks/flaky", &key, r#"{"id": "L-7"}"#);
    let first = body(&r)["run_id"].as_str().unwrap().to_string();
    serve.wait_log(&format!("run {first} trigger=flaky status=failed"));
    serve.stop();
    // A retry of a failed run that still fails is a new failed run.
    let again = env.run(&["runs", "retry", &first, "--json"]);
    assert_eq!(again.code, 1);
    // The cause is fixed (here: the script), and the replay succeeds with the stored input.
    let flaky = env.work.path().join("flaky.rhai");
    std::fs::write(&flaky, "\"done \" + request.body.id").unwrap();
    let out = env.run(&["runs", "retry", &first, "--json"]);
    let doc: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!((doc["status"].as_str(), doc["result"].as_str()), (Some("ok"), Some("done L-7")));
    assert_eq!(doc["retry_of"].as_str(), Some(first.as_str()));
    let listed = runs(&env, &["--trigger", "flaky"]);
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0]["retry_of"].as_str(), Some(first.as_str()));
    let e = env.run(&["runs", "retry", listed[0]["id"].as_str().unwrap()]).fails(2);
    assert!(e.contains("only failed, timed_out and interrupted runs are retried"), "{e}");
}

#[test]
fn schedules_skip_overlaps_and_catch_up_once_after_downtime() {
    let env = Env::new();
    env.write("tick.rhai", "sleep(1.6); input.scheduled_at");
    env.write("hourly.rhai", "input.scheduled_at");
    add_trigger(&env, "t.toml", "name = \"tick\"\nscript = \"tick.rhai\"\n[schedule]\nevery = \"1s\"\n");
    add_trigger(&env, "h.toml", "name = \"hourly\"\nscript = \"hourly.rhai\"\n[schedule]\nevery = \"1h\"\n");
    // Five hours ago (the clock moved back): the hourly schedule is seen first then.
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", "-18000");
    let serve = Serve::start(&env, &[]);
    serve.wait_log("trigger=tick status=skipped");
    serve.wait_log("trigger=tick status=ok");
    serve.stop();
    let hourly = runs(&env, &["--trigger", "hourly"]);
    assert!(hourly.is_empty(), "a new schedule does not fire for marks before it existed: {hourly:?}");
    // Back to now: five hourly marks were missed; one catch-up run is made, for the latest.
    env.unset_env("LINKRUN_TEST_CLOCK_OFFSET");
    let serve = Serve::start(&env, &[]);
    serve.wait_log("trigger=hourly status=ok");
    serve.stop();
    let hourly = runs(&env, &["--trigger", "hourly"]);
    assert_eq!(hourly.len(), 1, "{hourly:?}");
    let shown: Value =
        serde_json::from_str(env.run(&["runs", "show", hourly[0]["id"].as_str().unwrap(), "--json"]).ok()).unwrap();
    let mark = chrono::DateTime::parse_from_rfc3339(shown["result"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(mark);
    assert!(age.num_seconds() >= 0 && age.num_seconds() < 3600, "the catch-up is for the latest mark: {mark}");
    let skipped = runs(&env, &["--trigger", "tick", "--status", "skipped"]);
    assert!(!skipped.is_empty());
}

#[test]
fn a_connection_that_needs_reauth_fires_the_event_once() {
    let f = crate::common::sandbox::Fixture::new();
    let env = &f.env;
    f.connect("crm", "zoho_crm");
    std::fs::write(env.home_path().join("reauth.rhai"), "info(input.connection + \" \" + input.fix); input.event")
        .unwrap();
    std::fs::write(env.home_path().join("linkrun.toml"), "[events]\nconnection_needs_reauth = [\"reauth.rhai\"]\n")
        .unwrap();
    env.write("use.rhai", r#"invoke_url(#{ url: "/crm/v7/Leads", connection: "crm" })"#);
    let key = add_trigger(env, "use.toml", "name = \"use\"\nscript = \"use.rhai\"\n[webhook]\npath = \"/hooks/use\"\n");
    let serve = Serve::start(env, &[]);
    // The provider forgets the refresh token: the next refresh fails and the connection turns
    // `needs_reauth`.
    assert_eq!(f.http("POST", "/_sandbox/oauth/revoke_all", "").0, 200);
    for _ in 0..3 {
        serve.post("/hooks/use", &key, "{}");
    }
    serve.wait_log("trigger=connection_needs_reauth status=ok");
    serve.stop();
    let serve = Serve::start(env, &[]);
    serve.post("/hooks/use", &key, "{}");
    serve.stop();
    let fired = runs(env, &["--trigger", "connection_needs_reauth"]);
    assert_eq!(fired.len(), 1, "{fired:?}");
    let shown: Value =
        serde_json::from_str(env.run(&["runs", "show", fired[0]["id"].as_str().unwrap(), "--json"]).ok()).unwrap();
    assert_eq!(shown["info"], json!(["crm linkrun connection authorize crm"]));
}

#[test]
fn an_unauthenticated_webhook_needs_loopback_and_says_so() {
    let env = Env::new();
    env.write("echo.rhai", ECHO);
    add_trigger(&env, "o.toml", &webhook("open", "/hooks/open", "auth = \"none\"\nallow_unauthenticated = true\n"));
    let e = env.run(&["serve", "--bind", "0.0.0.0:0"]).fails(2);
    assert!(e.contains("binds only to loopback"), "{e}");
    let serve = Serve::start(&env, &[]);
    assert_eq!(serve.send("POST", "/hooks/open", &[], "{}").status, 200);
    let log = serve.stop();
    assert!(log.contains("trigger `open` takes webhooks without authentication"), "{log}");
}

#[test]
fn trigger_files_are_checked_listed_shown_and_deleted() {
    let env = Env::new();
    env.write("echo.rhai", ECHO);
    let p = env.write("bad.toml", "name = \"bad\"\nscript = \"missing.rhai\"\n[webhook]\npath = \"/hooks/bad\"\n");
    let e = env.run(&["trigger", "add", p.to_str().unwrap()]).fails(2);
    assert!(e.contains("missing.rhai` does not exist"), "{e}");
    let p = env.write(
        "h.toml",
        &webhook("h", "/hooks/h", "auth = \"hmac_sha256\"\nheader = \"X-S\"\nsecret_env = \"NOT_SET_ANYWHERE\"\n"),
    );
    let e = env.run(&["trigger", "add", p.to_str().unwrap()]).fails(2);
    assert!(e.contains("`NOT_SET_ANYWHERE` is not set"), "{e}");
    add_trigger(&env, "a.toml", &webhook("a", "/hooks/a", ""));
    let p = env.write("a2.toml", &webhook("a", "/hooks/a2", ""));
    assert!(env.run(&["trigger", "add", p.to_str().unwrap()]).fails(2).contains("--replace"));
    let p = env.write("c.toml", &webhook("c", "/hooks/a", ""));
    assert!(env.run(&["trigger", "add", p.to_str().unwrap()]).fails(2).contains("already taken by trigger `a`"));
    // A local ./triggers/ file is listed too, with its origin.
    env.write("triggers/local.toml", "name = \"nightly\"\nscript = \"../echo.rhai\"\n[schedule]\ncron = \"0 2 * * *\"\ntimezone = \"Europe/Berlin\"\n");
    let list: Value = serde_json::from_str(env.run(&["trigger", "list", "--json"]).ok()).unwrap();
    let names: Vec<(&str, &str)> =
        list.as_array().unwrap().iter().map(|t| (t["name"].as_str().unwrap(), t["origin"].as_str().unwrap())).collect();
    assert_eq!(names, [("a", "installed"), ("nightly", "local")]);
    assert_eq!(list[1]["schedule"], "cron \"0 2 * * *\" (Europe/Berlin)");
    let shown: Value = serde_json::from_str(env.run(&["trigger", "show", "a", "--json"]).ok()).unwrap();
    assert!(shown["secret"].as_str().unwrap().starts_with("sealed"), "{shown}");
    let rotated: Value = serde_json::from_str(env.run(&["trigger", "rotate", "a", "--json"]).ok()).unwrap();
    assert!(rotated["key"].as_str().unwrap().starts_with("lrk_"));
    assert!(env.run(&["trigger", "delete", "a"]).fails(2).contains("--yes"));
    env.run(&["trigger", "delete", "a", "--yes"]).ok();
    assert!(env.run(&["trigger", "show", "a"]).fails(2).contains("no trigger `a`"));
}

#[test]
fn scripts_run_by_serve_reach_private_addresses_only_through_a_connection() {
    let env = Env::new();
    let server = Server::start();
    env.add_service(
        "local.toml",
        &crate::common::service_toml(
            "local_api",
            "api_key",
            Some("header"),
            &server.url(),
            "[[params]]\nkey = \"X-Api-Key\"\nlabel = \"key\"\nsecret = true\n",
        ),
    );
    let secret = env.secret("local-api-key-7788");
    env.run(&["connection", "create", "local", "--service", "local_api", "--param", &format!("X-Api-Key={secret}")])
        .ok();
    env.write(
        "probe.rhai",
        &format!(
            r#"
let out = [];
for u in ["http://169.254.169.254/latest/meta-data/", "{0}/plain", "http://10.1.2.3/", "http://localhost:9/"] {{
    try {{ invoke_url(#{{ url: u, timeout: 2 }}); out.push("sent " + u); }} catch (e) {{ out.push(e.kind); }}
}}
let r = invoke_url(#{{ url: "/through", connection: "local" }});
out.push(type_of(r));
out
"#,
            server.url()
        ),
    );
    let key =
        add_trigger(&env, "p.toml", "name = \"probe\"\nscript = \"probe.rhai\"\n[webhook]\npath = \"/hooks/probe\"\n");
    let serve = Serve::start(&env, &[]);
    let r = serve.post("/hooks/probe", &key, "{}");
    let got = body(&r);
    assert_eq!(got, json!(["host_refused", "host_refused", "host_refused", "host_refused", "map"]), "{}", r.body);
    serve.stop();
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/through"], "only the request through the connection was sent");
    let id = header(&r, "x-linkrun-run").unwrap().to_string();
    let shown = env.run(&["runs", "show", &id, "--json"]).ok().to_string();
    assert!(!shown.contains(&secret));
    // `[serve] allow_private_network = true` lifts it; `linkrun run` by hand never had it.
    std::fs::write(env.home_path().join("linkrun.toml"), "[serve]\nallow_private_network = true\n").unwrap();
    let serve = Serve::start(&env, &[]);
    let got = body(&serve.post("/hooks/probe", &key, "{}"));
    assert_eq!(got[1], json!(format!("sent {}/plain", server.url())));
    serve.stop();
}

#[test]
fn deleting_an_oauth_connection_revokes_its_tokens_at_the_provider_first() {
    let f = crate::common::sandbox::Fixture::new();
    f.connect("crm", "zoho_crm");
    f.connect("kept", "zoho_crm");
    let revocations = || f.http("GET", "/_sandbox/oauth/stats", "").1["revocations"].as_u64().unwrap();
    let before = revocations();
    let out = f.env.run(&["connection", "delete", "crm", "--yes"]);
    assert!(out.stderr.contains("revoked the tokens of `crm` at the provider"), "{}", out.stderr);
    assert_eq!(revocations(), before + 1);
    f.env.run(&["connection", "delete", "kept", "--yes", "--keep-remote"]).ok();
    assert_eq!(revocations(), before + 1, "--keep-remote tells the provider nothing");
}

/// A shipped trigger file of the repository.
fn shipped(name: &str) -> String {
    format!("{}/triggers/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < until, "{what} never happened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_lead_created_in_org_a_reaches_org_b_through_the_workflow_webhook() {
    let f = crate::common::sandbox::Fixture::new();
    f.connect_org("crm_a", "zoho_crm", 0);
    f.connect_org("crm_b", "zoho_crm", 1);
    let out = f.env.run(&["trigger", "add", &shipped("lead_to_org_b.toml"), "--json"]);
    let key = serde_json::from_str::<Value>(out.ok()).unwrap()["key"].as_str().unwrap().to_string();
    let serve = Serve::start(&f.env, &["--no-local-triggers"]);
    // The workflow rule: Leads, on create and edit, webhook with the key in the URL (Zoho's
    // webhooks carry it as a URL parameter).
    let rule: linkrun_sandbox::events::CrmRule = serde_json::from_value(json!({
        "org": "us", "module": "Leads", "url": format!("{}/hooks/zoho/lead?key={key}", serve.base),
        "custom_params": {"source_org": "us"},
    }))
    .unwrap();
    f.sandbox.events.add_crm(rule);
    let email = "ada.webhook@example.com";
    f.env
        .script(
            &format!(
                r#"invoke_url(#{{ url: "/crm/v7/Leads", type: "POST", connection: "crm_a",
                    body: #{{ data: [#{{ Last_Name: "Lovelace", First_Name: "Ada", Email: "{email}", Company: "Engines" }}] }} }})"#
            ),
            &[],
        )
        .ok();
    let copy = wait_until("the lead in Org B", || f.sandbox.crm.find_by_email("in", "Leads", email));
    assert_eq!((copy["Last_Name"].as_str(), copy["Company"].as_str()), (Some("Lovelace"), Some("Engines")));
    // An edit in Org A updates the copy, never a second lead.
    f.env
        .script(
            &format!(
                r#"let id = invoke_url(#{{ url: "/crm/v7/Leads/search", parameters: #{{ email: "{email}" }}, connection: "crm_a" }}).data[0].id;
                   invoke_url(#{{ url: "/crm/v7/Leads/" + id, type: "PUT", connection: "crm_a", body: #{{ data: [#{{ Company: "Analytical Engines" }}] }} }})"#
            ),
            &[],
        )
        .ok();
    wait_until("the edit in Org B", || {
        f.sandbox.crm.find_by_email("in", "Leads", email).filter(|c| c["Company"] == "Analytical Engines")
    });
    let log = serve.stop();
    let copies = f.sandbox.crm.records("in", "Leads").into_iter().filter(|l| l["Email"] == email).count();
    assert_eq!(copies, 1);
    assert!(!log.contains(&key), "the key (sent in the query) is not logged");
    let ok = runs(&f.env, &["--trigger", "lead_to_org_b", "--status", "ok"]);
    assert_eq!(ok.len(), 2, "{ok:?}");
}

#[test]
fn a_ringing_call_pops_the_servicenow_contact_and_answering_opens_a_case_with_the_recording() {
    let f = crate::common::sandbox::Fixture::new();
    f.connect_servicenow("sn");
    let out = f.env.run(&["trigger", "add", &shipped("call_events.toml"), "--json"]);
    let key = serde_json::from_str::<Value>(out.ok()).unwrap()["key"].as_str().unwrap().to_string();
    let serve = Serve::start(&f.env, &["--no-local-triggers"]);
    let target: linkrun_sandbox::events::CallTarget = serde_json::from_value(json!({
        "url": format!("{}/hooks/phone/events", serve.base), "headers": {"X-Linkrun-Key": key},
    }))
    .unwrap();
    f.sandbox.events.set_calls(target);
    let contact = f
        .sandbox
        .servicenow
        .records("customer_contact")
        .into_iter()
        .find(|c| c["phone"].as_str().is_some_and(|p| p.chars().filter(char::is_ascii_digit).count() >= 10))
        .unwrap();
    let (status, call) =
        f.http_json("POST", "/_sandbox/calls", &json!({"from": format!("+1 {}", contact["phone"].as_str().unwrap())}));
    assert_eq!(status, 200, "{call}");
    let events = call["events"].as_array().unwrap();
    let ringing: Value = serde_json::from_str(events[0]["answer"].as_str().unwrap()).unwrap();
    assert_eq!(ringing["contact"]["sys_id"], contact["sys_id"], "the screen pop names the caller");
    assert_eq!(events[1]["status"], 200);
    let answered: Value = serde_json::from_str(events[1]["answer"].as_str().unwrap()).unwrap();
    let case_id = answered["case"]["sys_id"].as_str().unwrap().to_string();
    let case = f
        .sandbox
        .servicenow
        .records("sn_customerservice_case")
        .into_iter()
        .find(|c| c["sys_id"] == case_id.as_str())
        .unwrap();
    assert_eq!(case["u_call_recording_url"], call["recording_url"]);
    assert_eq!(case["contact_type"], "phone");
    serve.stop();
}

#[test]
fn sigterm_lets_running_scripts_finish_within_the_grace_period_and_records_the_rest() {
    let env = Env::new();
    env.write("short.rhai", "sleep(0.5); \"done\"");
    env.write("long.rhai", "sleep(20.0); \"never\"");
    let skey = add_trigger(
        &env,
        "s.toml",
        "name = \"short\"\nscript = \"short.rhai\"\n[webhook]\npath = \"/hooks/short\"\nmode = \"async\"\n",
    );
    let lkey = add_trigger(
        &env,
        "l.toml",
        "name = \"long\"\nscript = \"long.rhai\"\n[webhook]\npath = \"/hooks/long\"\nmode = \"async\"\n",
    );
    let ykey =
        add_trigger(&env, "y.toml", "name = \"waits\"\nscript = \"long.rhai\"\n[webhook]\npath = \"/hooks/waits\"\n");
    let serve = Serve::start(&env, &["--grace", "2", "--json-logs"]);
    let short = body(&serve.post("/hooks/short", &skey, "{}"))["run_id"].as_str().unwrap().to_string();
    let long = body(&serve.post("/hooks/long", &lkey, "{}"))["run_id"].as_str().unwrap().to_string();
    // A sync request whose script outlives the grace period does not hold serve up.
    let waiting = {
        let (base, k) = (serve.base.clone(), ykey.clone());
        std::thread::spawn(move || {
            let h = vec![("X-Linkrun-Key".to_string(), k)];
            crate::common::oidc::http("POST", &format!("{base}/hooks/waits"), &h, b"{}").map(|r| r.status)
        })
    };
    serve.wait_log("\"event\":\"listening\"");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let started = std::time::Instant::now();
    let log = serve.stop();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "stopped within the grace period");
    assert!(!matches!(waiting.join().unwrap(), Ok(200)), "the waiting request got no answer of the script");
    let waits = runs(&env, &["--trigger", "waits"]);
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0]["status"], "interrupted", "{waits:?}");
    let status = |id: &str| -> String {
        serde_json::from_str::<Value>(env.run(&["runs", "show", id, "--json"]).ok()).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status(&short), "ok", "a script that ends within the grace period finishes");
    assert_eq!(status(&long), "interrupted", "one still going is recorded as interrupted:\n{log}");
    // JSON log lines: one object per line.
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["ts"].is_string() && v["event"].is_string(), "{line}");
    }
    assert!(log.contains(&format!("\"run_id\":\"{short}\"")), "{log}");
}

#[test]
fn one_worker_running_run_after_run_keeps_nothing_of_one_run_in_the_next() {
    let env = Env::new();
    env.write("a.rhai", r#"let seen = state_get("seen"); state_set("seen", arg("who", "none")); #{ who: arg("who", "none"), seen: seen, run: run.id, body: input }"#);
    env.write("b.rhai", r#"#{ seen: state_get("seen"), who: arg("who", "none") }"#);
    let ka = add_trigger(&env, "a.toml", "name = \"a\"\nscript = \"a.rhai\"\n[webhook]\npath = \"/hooks/a\"\n");
    let kb = add_trigger(&env, "b.toml", "name = \"b\"\nscript = \"b.rhai\"\n[webhook]\npath = \"/hooks/b\"\n");
    let serve = Serve::start(&env, &["--workers", "1"]);
    let first = body(&serve.post("/hooks/a?who=alice", &ka, r#"{"n": 1}"#));
    let second = body(&serve.post("/hooks/a", &ka, ""));
    let other = body(&serve.post("/hooks/b", &kb, "{}"));
    serve.stop();
    assert_eq!((first["who"].as_str(), first["seen"].is_null()), (Some("alice"), true), "{first}");
    assert_eq!(second["who"], "none", "the first run's args are gone: {second}");
    assert_eq!(second["seen"], "alice", "state is the script's own, kept on purpose");
    assert_eq!(second["body"], "", "the first run's input is gone");
    assert_ne!(second["run"], first["run"]);
    assert_eq!(other, json!({"seen": null, "who": "none"}), "another script has its own state");
}

#[test]
fn a_rekey_reseals_trigger_secrets_and_the_runs_key() {
    let env = Env::new();
    env.write("echo.rhai", ECHO);
    let key = add_trigger(&env, "e.toml", &webhook("echo", "/hooks/echo", "mode = \"async\"\n"));
    let serve = Serve::start(&env, &[]);
    let r = body(&serve.post("/hooks/echo", &key, r#"{"n": 1}"#));
    serve.wait_log("trigger=echo status=ok");
    serve.stop();
    env.run(&["vault", "rekey", "--new-key-file"]).ok();
    // After the rekey the webhook key still opens, and so does the runs key that seals the
    // second run's input.
    let serve = Serve::start(&env, &[]);
    let again = serve.post("/hooks/echo", &key, r#"{"n": 2}"#);
    assert_eq!(again.status, 202, "{}", again.body);
    serve.wait_log("trigger=echo status=ok");
    serve.stop();
    assert_eq!(runs(&env, &["--trigger", "echo", "--status", "ok"]).len(), 2);
    assert!(r["run_id"].is_string());
}

#[test]
fn a_worker_sees_a_connection_changed_or_deleted_between_its_runs() {
    // Workers keep the connections their runs used; a change to the vault by another process
    // must reach the very next run.
    let env = Env::new();
    let server = Server::start();
    env.add_service(
        "local.toml",
        &crate::common::service_toml(
            "local_api",
            "api_key",
            Some("header"),
            &server.url(),
            "[[params]]\nkey = \"X-Api-Key\"\nlabel = \"key\"\nsecret = true\n",
        ),
    );
    let create = |secret: &str| {
        env.run(&[
            "connection",
            "create",
            "local",
            "--service",
            "local_api",
            "--param",
            &format!("X-Api-Key={secret}"),
        ])
        .ok();
    };
    let first = env.secret("first-key-5151");
    create(&first);
    env.write(
        "call.rhai",
        r#"let r = "sent"; try { invoke_url(#{ url: "/x", connection: "local" }); } catch (e) { r = e.kind; } r"#,
    );
    let key =
        add_trigger(&env, "c.toml", "name = \"call\"\nscript = \"call.rhai\"\n[webhook]\npath = \"/hooks/call\"\n");
    let serve = Serve::start(&env, &["--workers", "1"]);
    assert_eq!(body(&serve.post("/hooks/call", &key, "")), json!("sent"));
    assert_eq!(body(&serve.post("/hooks/call", &key, "")), json!("sent"));
    env.run(&["connection", "delete", "local", "--yes"]).ok();
    assert_eq!(body(&serve.post("/hooks/call", &key, "")), json!("connection"), "a deleted connection is gone at once");
    let second = env.secret("second-key-6262");
    create(&second);
    assert_eq!(body(&serve.post("/hooks/call", &key, "")), json!("sent"));
    serve.stop();
    let keys: Vec<String> =
        server.requests().iter().map(|r| r.header("x-api-key").unwrap_or_default().to_string()).collect();
    assert_eq!(keys, [first.clone(), first, second], "the run after the change sent the new key");
}

#[test]
fn a_worker_runs_a_script_edited_between_its_runs_as_edited() {
    // Workers keep each script compiled while its file is unchanged: an edit, even one that
    // keeps the size, must reach the very next run, and so must an edit that breaks it.
    let env = Env::new();
    env.write("s.rhai", r#""one""#);
    env.write("d.dg", "return \"alpha\";");
    let ks = add_trigger(&env, "s.toml", "name = \"s\"\nscript = \"s.rhai\"\n[webhook]\npath = \"/hooks/s\"\n");
    let kd = add_trigger(&env, "d.toml", "name = \"d\"\nscript = \"d.dg\"\n[webhook]\npath = \"/hooks/d\"\n");
    let serve = Serve::start(&env, &["--workers", "1"]);
    let first = body(&serve.post("/hooks/s", &ks, ""));
    let deluge_first = body(&serve.post("/hooks/d", &kd, ""));
    env.write("s.rhai", r#""two""#);
    let same_size = body(&serve.post("/hooks/s", &ks, ""));
    env.write("s.rhai", r#""three, longer""#);
    let longer = body(&serve.post("/hooks/s", &ks, ""));
    env.write("d.dg", "return \"omega\";");
    let deluge_edited = body(&serve.post("/hooks/d", &kd, ""));
    env.write("s.rhai", r#"let x = ;"#);
    let broken = serve.post("/hooks/s", &ks, "");
    serve.stop();
    assert_eq!((first, same_size, longer), (json!("one"), json!("two"), json!("three, longer")));
    assert_eq!((deluge_first, deluge_edited), (json!("alpha"), json!("omega")));
    assert_eq!(broken.status, 500, "{}", broken.body);
    let failed = runs(&env, &["--trigger", "s", "--status", "failed"]);
    assert_eq!(failed.len(), 1, "{failed:?}");
    let shown = env.run(&["runs", "show", failed[0]["id"].as_str().unwrap_or_default(), "--json"]);
    let shown = shown.ok();
    assert!(shown.contains("line 1"), "the syntax error is reported with its place: {shown}");
}
