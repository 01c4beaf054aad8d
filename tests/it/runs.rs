//! Run records: `linkrun run` records each run (trigger `cli`) with its status, times, redacted
//! input, result, `info` lines and request trace; `runs list` filters them newest first and
//! `runs show` shows one; no secret reaches the records (the `Env` searches every home file).

use serde_json::Value;

use crate::common::{Env, Server, service_toml};

fn json(out: &crate::common::Out) -> Value {
    serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout))
}

fn runs(env: &Env, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["runs", "list", "--json"];
    args.extend_from_slice(extra);
    json(&env.run(&args)).as_array().unwrap().clone()
}

#[test]
fn runs_a_run_is_recorded_with_its_input_result_info_and_requests_and_no_secret() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("run-record-key-6a1f0e");
    let password = env.secret("given-password-0b7c");
    env.add_service(
        "svc.toml",
        &service_toml("svc", "api_key", Some("query"), &server.url(), "[[params]]\nkey = \"api_key\"\nsecret = true\n"),
    );
    env.run(&["connection", "create", "c", "--service", "svc", "--param", &format!("api_key={key}")]).ok();
    let script = env.write(
        "job.rhai",
        "info(\"copying\"); let r = invoke_url(#{ url: \"/echo\", parameters: #{ q: \"x\" }, connection: \"c\" }); \
         info(`got ${r.method}`); #{ done: true, from: args.from, run: run }",
    );
    let out = env.run(&[
        "run",
        script.to_str().unwrap(),
        "--json",
        "--arg",
        "from=crm_a",
        "--arg",
        &format!("password={password}"),
    ]);
    let result = json(&out);

    let list = runs(&env, &[]);
    assert_eq!(list.len(), 1, "{list:?}");
    let run = &list[0];
    assert_eq!((run["trigger"].as_str(), run["status"].as_str()), (Some("cli"), Some("ok")));
    assert_eq!(run["script"], std::fs::canonicalize(&script).unwrap().display().to_string());
    assert!(run["duration_ms"].as_i64().is_some_and(|d| d >= 0), "{run}");
    assert!(run["started_at"].as_str().unwrap().ends_with('Z'), "{run}");
    let id = run["id"].as_str().unwrap();
    assert_eq!(result, serde_json::json!({"done": true, "from": "crm_a", "run": {"id": id, "trigger": "cli"}}));

    let shown = json(&env.run(&["runs", "show", id, "--json"]));
    assert_eq!(shown["input"]["args"], serde_json::json!({"from": "crm_a", "password": "[redacted]"}));
    assert_eq!(shown["result"], result);
    assert_eq!(shown["info"], serde_json::json!(["copying", "got GET"]));
    let requests = shown["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{shown}");
    let q = &requests[0];
    assert_eq!((q["method"].as_str(), q["status"].as_u64(), q["attempts"].as_u64()), (Some("GET"), Some(200), Some(1)));
    let url = q["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/echo?", server.url())) && url.contains("q=x"), "{url}");
    assert!(!url.contains(&key), "the trace has the URL as the script asked for it, without the key: {url}");
    assert!(q["bytes"].as_u64().unwrap() > 0);
    let text = env.run(&["runs", "show", id]).ok().to_string();
    assert!(text.contains("status:   ok") && text.contains("info:     copying"), "{text}");
    // Env's drop searches every file of the home (runs.db and its WAL included) for the key and
    // the password.
}

#[test]
fn runs_record_how_each_run_ended_and_list_filters_them() {
    let env = Env::new();
    let ok = env.write("ok.rhai", "40 + 2");
    let bad = env.write("bad.rhai", "throw \"no such lead\"");
    let slow = env.write("slow.rhai", "loop { }");
    let quits = env.write("quits.rhai", "exit(7)");
    env.run(&["run", ok.to_str().unwrap()]).ok();
    env.run(&["run", bad.to_str().unwrap()]).fails(1);
    env.run(&["run", slow.to_str().unwrap(), "--timeout", "0.2"]).fails(1);
    assert_eq!(env.run(&["run", quits.to_str().unwrap()]).code, 7);

    let all = runs(&env, &[]);
    let states: Vec<&str> = all.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["failed", "timed_out", "failed", "ok"], "newest first: {all:?}");
    assert!(all[2]["error"].as_str().unwrap().contains("no such lead"), "{:?}", all[2]);
    assert_eq!(runs(&env, &["--status", "failed"]).len(), 2);
    assert_eq!(runs(&env, &["--trigger", "cli", "--limit", "1"])[0]["id"], all[0]["id"]);
    assert_eq!(runs(&env, &["--trigger", "nightly"]).len(), 0);
    assert_eq!(runs(&env, &["--since", "1h"]).len(), 4);
    assert_eq!(runs(&env, &["--since", "2999-01-01T00:00:00Z"]).len(), 0);
    let ids: std::collections::HashSet<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 4, "ids are unique");
}

#[test]
fn runs_commands_refuse_bad_values_naming_them() {
    let env = Env::new();
    assert_eq!(
        env.run(&["runs", "list", "--status", "done"]).fails(2),
        "`--status done` is not a run state: use one of queued, running, ok, failed, timed_out, interrupted, skipped, duplicate"
    );
    assert!(env.run(&["runs", "list", "--since", "yesterday"]).fails(2).contains("neither an RFC 3339 time"));
    assert!(env.run(&["runs", "list", "--limit", "0"]).fails(2).contains("`--limit 0` is out of range"));
    assert_eq!(
        env.run(&["runs", "show", "nope"]).fails(2),
        "there is no run `nope`: see the recorded runs with `linkrun runs list`"
    );
    assert_eq!(runs(&env, &[]), Vec::<Value>::new(), "nothing recorded is an empty list");
}

#[test]
fn runs_of_concurrent_processes_are_all_recorded() {
    let env = Env::new();
    let script = env.write("n.rhai", "args.n");
    let children: Vec<_> =
        (0..8).map(|i| env.spawn(&["run", script.to_str().unwrap(), "--arg", &format!("n={i}")])).collect();
    for c in children {
        assert!(c.wait_with_output().unwrap().status.success());
    }
    let all = runs(&env, &[]);
    assert_eq!(all.len(), 8);
    assert!(all.iter().all(|r| r["status"] == "ok"), "{all:?}");
}

#[test]
fn runs_prune_keeps_what_linkrun_toml_says() {
    let env = Env::new();
    let script = env.write("n.rhai", "1");
    for _ in 0..4 {
        env.run(&["run", script.to_str().unwrap()]).ok();
    }
    let before = runs(&env, &[]);
    std::fs::write(env.home_path().join("linkrun.toml"), "[runs]\nkeep = 2\n").unwrap();
    assert_eq!(json(&env.run(&["runs", "prune", "--json"])), serde_json::json!({"deleted": 2}));
    let after = runs(&env, &[]);
    assert_eq!(after, before[..2].to_vec(), "the newest two stay");
    std::fs::write(env.home_path().join("linkrun.toml"), "[runs]\nkeep_days = 2\n").unwrap();
    assert!(env.run(&["runs", "prune"]).fails(2).contains("keep_days"), "an unknown key is refused");
}

#[test]
fn runs_a_run_killed_with_sigkill_is_marked_interrupted_and_a_live_one_stays_running() {
    let env = Env::new();
    // Sleeps rather than spins: a run that never ends, without starving the tests beside it.
    let forever = env.write("forever.rhai", "loop { sleep(0.05); }");
    let running = |n: usize| {
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(20) {
            if runs(&env, &["--status", "running"]).len() == n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{n} run(s) never showed as running");
    };
    let mut killed = env.spawn(&["run", forever.to_str().unwrap()]);
    running(1);
    let mut live = env.spawn(&["run", forever.to_str().unwrap()]);
    running(2);
    killed.kill().unwrap(); // SIGKILL: nothing of linkrun runs after it
    killed.wait().unwrap();
    let all = runs(&env, &[]);
    let states: Vec<&str> = all.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(states, ["running", "interrupted"], "{all:?}");
    assert!(all[1]["error"].as_str().unwrap().contains("its process ended before the run did"), "{all:?}");
    assert!(all[1]["duration_ms"].as_i64().is_some(), "{all:?}");
    live.kill().unwrap();
    live.wait().unwrap();
    assert_eq!(runs(&env, &["--status", "interrupted"]).len(), 2);
    assert!(std::fs::read_dir(env.home_path().join("run-leases")).unwrap().next().is_none(), "no lease is left");
}
