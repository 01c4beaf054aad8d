//! The script runtime: results and output streams, args (`--arg`, `--arg-json`), `--input`, scripts
//! from stdin, `exit(n)`, helpers, errors in script terms and exit codes, limits, timeouts,
//! size cap, and the `--verbose` trace.

use crate::common::{Env, Server, service_toml};

#[test]
fn results_print_as_text_or_json_and_print_info_go_to_the_right_stream() {
    let env = Env::new();
    let out = env.script("print(\"p\"); info(#{ i: 1 }); \"plain result\"", &[]);
    assert_eq!(out.ok(), "p\nplain result\n");
    assert_eq!(out.stderr, "{\"i\":1}\n");
    let out = env.script("print(\"p\"); #{ a: [1, \"x\"] }", &[]);
    assert_eq!(out.ok(), "p\n{\"a\":[1,\"x\"]}\n");
    let out = env.script("print(\"p\"); \"s\"", &["--json"]);
    assert_eq!(out.ok(), "\"s\"\n");
    assert_eq!(out.stderr, "p\n");
    let out = env.script("let x = 1;", &[]);
    assert_eq!(out.ok(), "");
    let out = env.script("let x = 1;", &["--json"]);
    assert_eq!(out.ok(), "null\n");
}

#[test]
fn args_map_and_function() {
    let env = Env::new();
    let out = env.script(
        "fn who() { args().name } who() + \"/\" + args.n + \"/\" + type_of(args.n)",
        &["--arg", "name=ann", "--arg", "n=3"],
    );
    assert_eq!(out.ok(), "ann/3/string\n");
    let out = env.script("1", &["--arg", "novalue"]);
    assert_eq!(out.fails(2), "`novalue` is not KEY=VALUE: write --arg NAME=VALUE");
}

#[test]
fn uncaught_errors_exit_1_and_connection_errors_exit_4() {
    let env = Env::new();
    let out = env.script("throw \"boom\";", &[]);
    assert_eq!(out.fails(1), "script `script.rhai` threw boom at line 1, column 1");
    let out = env.script("let x = ;", &[]);
    assert!(out.fails(1).starts_with("script `script.rhai` has a syntax error at line 1"), "{}", out.stderr);
    let out = env.script("undefined_var + 1", &[]);
    assert!(out.fails(1).contains("undefined_var"), "{}", out.stderr);
    let out = env.script("invoke_url(#{ url: \"/x\", connection: \"nope\" })", &[]);
    assert_eq!(
        out.fails(4),
        "unknown connection `nope`: create it with `linkrun connection create nope --service NAME` (see `linkrun connection list`) (uncaught in `script.rhai` at line 1, column 1)"
    );
    let out = env.script("let k = \"\"; try { invoke_url(#{ url: \"/x\", connection: \"nope\" }); } catch (e) { k = e.kind + \"|\" + e.connection; } k", &[]);
    assert_eq!(out.ok(), "connection|nope\n");
    let out = env.run(&["run", "missing.rhai"]);
    assert_eq!(out.fails(2), "cannot read the script `missing.rhai`: no such file; check the path");
}

#[test]
fn eval_imports_and_files_are_not_available() {
    let env = Env::new();
    let out = env.script("eval(\"1 + 1\")", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("eval"), "{}", out.stderr);
    env.write("other.rhai", "fn f() { 1 }");
    let out = env.script("import \"other\" as o; o::f()", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let out = env.script("open_file(\"/etc/passwd\")", &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
}

#[test]
fn deep_recursion_and_huge_strings_hit_limits() {
    let env = Env::new();
    let out = env.script("fn f(n) { f(n + 1) } f(0)", &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("Stack overflow") || out.stderr.contains("call"), "{}", out.stderr);
    let out = env.script("let s = \"x\"; loop { s += s; }", &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.to_lowercase().contains("length") || out.stderr.contains("too large"), "{}", out.stderr);
}

#[test]
fn the_whole_script_wall_clock_stops_an_endless_loop() {
    let env = Env::new();
    let started = std::time::Instant::now();
    let out = env.script("loop { }", &["--timeout", "0.5"]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` ran longer than its time limit of 0.5 s: raise it with --timeout SECS"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn the_wall_clock_also_cuts_a_slow_request() {
    let (env, server) = (Env::new(), Server::start());
    let out = env.script(&format!("invoke_url(#{{ url: \"{}/slow?ms=5000\" }})", server.url()), &["--timeout", "0.5"]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` ran longer than its time limit of 0.5 s: raise it with --timeout SECS"
    );
}

#[test]
fn a_request_timeout_is_a_catchable_timeout_error() {
    let (env, server) = (Env::new(), Server::start());
    let out = env.script(
        &format!("let k = \"\"; try {{ invoke_url(#{{ url: \"{}/slow?ms=3000\", timeout: 0.3 }}); }} catch (e) {{ k = e.kind + \"|\" + e.message; }} k", server.url()),
        &[],
    );
    assert_eq!(
        out.ok().trim(),
        format!(
            "timeout|the request to `{}/slow?ms=3000` took longer than 0.3 s: raise `timeout` in the request, or check the server",
            server.url()
        )
    );
}

#[test]
fn an_oversize_response_is_a_too_large_error() {
    let (env, server) = (Env::new(), Server::start());
    let out = env.script(
        &format!("let k = \"\"; try {{ invoke_url(#{{ url: \"{}/big?bytes=11000000\" }}); }} catch (e) {{ k = e.kind + \"|\" + e.message; }} k", server.url()),
        &[],
    );
    assert_eq!(
        out.ok().trim(),
        format!(
            "too_large|the response from `{}/big?bytes=11000000` is larger than 10 MiB: ask for less (paging, fewer fields) or fetch it in parts",
            server.url()
        )
    );
    let out = env.script(&format!("invoke_url(#{{ url: \"{}/big?bytes=1000000\" }}).len()", server.url()), &[]);
    assert_eq!(out.ok(), "1000000\n");
}

#[test]
fn a_refused_connection_is_a_network_error() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = env.script(
        &format!("let k = \"\"; try {{ invoke_url(#{{ url: \"http://127.0.0.1:{port}/x\" }}); }} catch (e) {{ k = e.kind; }} k"),
        &[],
    );
    assert_eq!(out.ok(), "network\n");
    let out = env.script(&format!("invoke_url(#{{ url: \"http://127.0.0.1:{port}/x\" }})"), &[]);
    let msg = out.fails(1);
    assert!(msg.starts_with(&format!("the request to `http://127.0.0.1:{port}/x` failed: ")), "{msg}");
}

#[test]
fn verbose_traces_method_url_status_and_time_with_credentials_redacted() {
    let (env, server) = (Env::new(), Server::start());
    let key = env.secret("verbose-key-0c0c0c0c");
    env.add_service(
        "svc.toml",
        &service_toml("svc", "api_key", Some("query"), &server.url(), "[[params]]\nkey = \"myKey\"\nsecret = true\n"),
    );
    env.run(&["connection", "create", "conn", "--service", "svc", "--param", &format!("myKey={key}")]).ok();
    let p =
        env.write("v.rhai", "invoke_url(#{ url: \"/items\", parameters: #{ page: 2 }, connection: \"conn\" }); \"ok\"");
    let out = env.run(&["--verbose", "run", p.to_str().unwrap()]);
    out.ok();
    let line = out.stderr.lines().find(|l| l.starts_with("linkrun: GET")).expect("a trace line");
    let expected_prefix = format!("linkrun: GET {}/items?page=2&myKey=[redacted] -> 200 (", server.url());
    assert!(line.starts_with(&expected_prefix) && line.ends_with(" ms)"), "{line}");
    assert_eq!(server.requests()[0].query_pairs()[1], ("myKey".to_string(), key));
}

#[test]
fn one_client_is_reused_across_calls() {
    let (env, server) = (Env::new(), Server::start());
    let out = env.script(
        &format!("let n = 0; for i in 0..50 {{ invoke_url(#{{ url: \"{}/echo?i=\" + i }}); n += 1; }} n", server.url()),
        &[],
    );
    assert_eq!(out.ok(), "50\n");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 50);
    assert!(reqs.iter().all(|r| r.peer == reqs[0].peer), "all calls share one kept-alive connection");
}

#[test]
fn state_persists_per_script_and_time_and_escaping_helpers() {
    let env = Env::new();
    let a = env.write("sync.rhai", "let n = state_get(\"runs\"); let n = if n == () { 0 } else { n }; state_set(\"runs\", n + 1); state_set(\"at\", #{ t: \"x\" }); n + 1");
    let b = env.write("other.rhai", "state_get(\"runs\")");
    assert_eq!(env.run(&["run", a.to_str().unwrap()]).ok(), "1\n");
    assert_eq!(env.run(&["run", a.to_str().unwrap()]).ok(), "2\n");
    assert_eq!(env.run(&["run", b.to_str().unwrap()]).ok(), "", "scoped to the script's name");
    let out = env.script(
        "let z = zoho_now(); let u = utc_now(); [z.len(), z.sub_string(10, 1), z.sub_string(19, 1) == \"+\" || z.sub_string(19, 1) == \"-\", u.len(), url_encode(\"a b/é\"), form_encode(\"a b\"), criteria_escape(\"A (B), C\")]",
        &[],
    );
    assert_eq!(out.ok(), "[25,\"T\",true,19,\"a%20b%2F%C3%A9\",\"a+b\",\"A \\\\(B\\\\)\\\\, C\"]\n");
}

#[test]
fn errors_raised_inside_functions_keep_their_kind_and_exit_code() {
    let env = Env::new();
    let out = env.script(
        "fn reach() { invoke_url(#{ url: \"/x\", connection: \"nope\" }) } fn outer() { reach() } outer()",
        &[],
    );
    assert_eq!(
        out.fails(4),
        "unknown connection `nope`: create it with `linkrun connection create nope --service NAME` (see `linkrun connection list`) (uncaught in `script.rhai` at line 1, column 14)"
    );
    let out = env.script("fn f() { throw \"bad input\"; } f()", &[]);
    assert_eq!(out.fails(1), "script `script.rhai` threw bad input at line 1, column 10");
}

#[test]
fn args_is_a_variable_the_script_may_change() {
    let env = Env::new();
    let out = env.script("args.x = 5; args.x", &["--arg", "x=1"]);
    assert_eq!(out.ok(), "5\n");
    let out = env.script("args[\"x\"] = 5; args.y = \"new\"; args", &["--arg", "x=1"]);
    assert_eq!(out.ok(), "{\"x\":5,\"y\":\"new\"}\n");
    // `args()` in a function still gives the values from the command line.
    let out = env.script("fn f() { args().x } args.x = 9; f()", &["--arg", "x=1"]);
    assert_eq!(out.ok(), "1\n");
}

#[test]
fn assigning_into_a_constant_is_a_script_error_not_a_panic() {
    let env = Env::new();
    for text in ["const C = #{a:1}; C.a = 2; C", "const C = #{a:1}; C[\"a\"] = 2;", "const A = [1, 2]; A[0] = 5;"] {
        let out = env.script(text, &[]);
        assert_eq!(out.code, 1, "{text}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{text}: {}", out.stderr);
        assert!(out.stderr.starts_with("error: script `script.rhai` "), "{text}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{text}: {}", out.stderr);
    }
    let out = env.script("const C = #{a:1}; C.a = 2; C", &[]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` assigns into a value it cannot change (a constant, or a value that is not a variable): copy it into a variable with `let` and change that"
    );
}

#[test]
fn sleep_obeys_the_wall_clock_and_checks_its_argument() {
    let env = Env::new();
    let started = std::time::Instant::now();
    let out = env.script("sleep(30); \"woke\"", &["--timeout", "1"]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` ran longer than its time limit of 1 s: raise it with --timeout SECS"
    );
    let out = env.script("try { sleep(30.0); } catch (e) { \"caught\" }", &["--timeout", "1"]);
    assert_eq!(out.code, 1, "the timeout cannot be caught: {}", out.stdout);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    for bad in ["1e300", "-1", "-0.5", "0.0/0.0", "1.0/0.0", "9223372036854775807", "86401"] {
        let out = env.script(&format!("sleep({bad})"), &["--timeout", "5"]);
        let msg = out.fails(1);
        assert!(msg.contains("is out of range: pass sleep 0 to 86400 seconds"), "{bad}: {msg}");
        assert!(!out.stderr.contains("panicked"), "{bad}: {}", out.stderr);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    assert_eq!(env.script("sleep(0); sleep(0.01); \"ok\"", &[]).ok(), "ok\n");
}

#[test]
fn a_response_too_big_for_script_values_is_a_catchable_too_large_error() {
    let (env, server) = (Env::new(), Server::start());
    // One item more than the engine's array limit (1,000,000, src/script/mod.rs), about 2 MB.
    let url = format!("{}/array?n=1000001", server.url());
    let out = env.script(
        &format!("let k = \"\"; try {{ invoke_url(#{{ url: \"{url}\" }}); }} catch (e) {{ k = e.kind + \"|\" + e.message; }} k"),
        &[],
    );
    assert_eq!(
        out.ok().trim(),
        format!(
            "too_large|the response from `{url}` has 1000001 array items, more than the 1000000 a script value may hold: ask for less (paging, fewer fields)"
        )
    );
    let out = env.script(
        &format!(
            "let k = \"\"; try {{ invoke_url(#{{ url: \"{url}\", detailed: true }}); }} catch (e) {{ k = e.kind; }} k"
        ),
        &[],
    );
    assert_eq!(out.ok(), "too_large\n");
    // In invoke_all the failed request's slot holds the error map.
    let out = env.script(&format!("invoke_all([#{{ url: \"{url}\" }}])[0].kind"), &[]);
    assert_eq!(out.ok(), "too_large\n");
    // Uncaught, it ends the script with exit 1 and its message.
    let out = env.script(&format!("invoke_url(#{{ url: \"{url}\" }})"), &[]);
    assert!(out.fails(1).contains("uncaught `too_large` error"), "{}", out.stderr);
    let out = env.script(&format!("invoke_url(#{{ url: \"{}/array?n=1000\" }}).len()", server.url()), &[]);
    assert_eq!(out.ok(), "1000\n");
}

#[test]
fn infinite_and_nan_numbers_become_null_in_json() {
    let (env, server) = (Env::new(), Server::start());
    let out = env.script("to_json(#{ a: 1.0/0.0, b: [0.0/0.0, -1.0/0.0], c: 1.5 })", &[]);
    assert_eq!(out.ok(), "{\"a\":null,\"b\":[null,null],\"c\":1.5}\n");
    assert_eq!(env.script("to_json([1.0/0.0])", &[]).ok(), "[null]\n");
    assert_eq!(env.script("to_json(1.0/0.0)", &[]).ok(), "null\n");
    assert_eq!(env.script("#{ a: 1.0/0.0 }", &[]).ok(), "{\"a\":null}\n");
    assert_eq!(env.script("1.0/0.0", &["--json"]).ok(), "null\n");
    let out = env.script("info(#{ a: 0.0/0.0 })", &[]);
    assert_eq!(out.stderr, "{\"a\":null}\n");
    let out = env.script(
        &format!("invoke_url(#{{ url: \"{}/echo\", type: \"POST\", body: #{{ a: 1.0/0.0 }} }}).body", server.url()),
        &[],
    );
    assert_eq!(out.ok(), "{\"a\":null}\n");
}

#[test]
fn arg_json_values_keep_their_json_types_and_bad_json_is_a_usage_error() {
    let env = Env::new();
    let out = env.script(
        "[type_of(args.n), args.n + 1, args.on, args.tags.len(), args.who.name, args.text, args.s]",
        &[
            "--arg-json",
            "n=41",
            "--arg-json",
            "on=true",
            "--arg-json",
            "tags=[\"a\",\"b\"]",
            "--arg-json",
            "who={\"name\":\"Ada\"}",
            "--arg-json",
            "text=\"quoted\"",
            "--arg",
            "s=7",
        ],
    );
    assert_eq!(out.ok(), "[\"i64\",42,true,2,\"Ada\",\"quoted\",\"7\"]\n");
    let out = env.script("args.n", &["--arg-json", "n=not json"]);
    assert_eq!(
        out.fails(2),
        "the value of `--arg-json n` is not JSON (expected ident at line 1 column 2): write it as JSON, e.g. --arg-json n=42 or --arg-json n='\"text\"'"
    );
    let out = env.script("1", &["--arg-json", "novalue"]);
    assert_eq!(out.fails(2), "`novalue` is not KEY=VALUE: write --arg-json NAME=VALUE");
}

#[test]
fn input_gives_the_script_a_json_value() {
    let env = Env::new();
    let file = env
        .write("in.json", "{\"leads\": [{\"Email\": \"a@x.example\"}, {\"Email\": \"b@x.example\"}], \"dry\": true}");
    let out = env.script(
        "fn f() { input().dry } [input.leads.len(), input.leads[1].Email, f()]",
        &["--input", file.to_str().unwrap()],
    );
    assert_eq!(out.ok(), "[2,\"b@x.example\",true]\n");
    assert_eq!(env.script("input == ()", &[]).ok(), "true\n", "no --input: unit");
    let out = env.script("input", &["--input", "missing.json"]);
    assert_eq!(out.fails(2), "cannot read the input `missing.json`: no such file; check the path");
    let bad = env.write("bad.json", "{\"a\": ");
    let out = env.script("input", &["--input", bad.to_str().unwrap()]);
    assert_eq!(
        out.fails(2),
        format!(
            "the input `{}` is not JSON (EOF while parsing a value at line 1 column 6): fix it, or give --input a JSON file",
            bad.display()
        )
    );
    let p = env.write("s.rhai", "input.n * 2");
    let out = env.run_stdin(&["run", p.to_str().unwrap(), "--input", "-"], "{\"n\": 21}");
    assert_eq!(out.ok(), "42\n");
}

#[test]
fn a_script_from_stdin_runs_and_needs_a_state_key_for_state() {
    let env = Env::new();
    let out = env.run_stdin(&["run", "-", "--arg", "who=Ada"], "print(\"hi\"); \"hello \" + args.who");
    assert_eq!(out.ok(), "hi\nhello Ada\n");
    let out = env.run_stdin(&["run", "-"], "throw \"boom\";");
    assert_eq!(out.fails(1), "script `<stdin>` threw boom at line 1, column 1");
    let out = env.run_stdin(&["run", "-"], "let n = 1;\nstate_get(\"runs\")");
    assert_eq!(
        out.fails(1),
        "script `<stdin>` calls `state_get`, but a script read from standard input keeps no state of its own: pass --state-key NAME to name its state"
    );
    let text = "let n = state_get(\"runs\"); let n = if n == () { 1 } else { n + 1 }; state_set(\"runs\", n); n";
    assert_eq!(env.run_stdin(&["run", "-", "--state-key", "nightly"], text).ok(), "1\n");
    assert_eq!(env.run_stdin(&["run", "-", "--state-key", "nightly"], text).ok(), "2\n");
    let out = env.run_stdin(&["run", "-", "--input", "-"], "input");
    assert_eq!(
        out.fails(2),
        "`linkrun run - --input -` reads both the script and its input from standard input: give --input a file"
    );
}

#[test]
fn exit_stops_the_script_from_any_depth_and_no_try_catches_it() {
    let env = Env::new();
    let out = env.script(
        "fn inner() { try { exit(7); } catch (e) { print(\"caught\"); } print(\"after\"); } fn outer() { inner() } print(\"before\"); outer(); \"result\"",
        &[],
    );
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("before\n", ""));
    let out = env.script("[1, 2].map(|v| if v == 2 { exit(125) } else { v })", &[]);
    assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (125, "", ""));
    for flags in [&[][..], &["--json"][..]] {
        let out = env.script("exit(0); \"not printed\"", flags);
        assert_eq!((out.code, out.stdout.as_str(), out.stderr.as_str()), (0, "", ""), "{flags:?}");
    }
    let out = env.script("exit(1)", &[]);
    assert_eq!((out.code, out.stderr.as_str()), (1, ""));
    let out = env.script("try { exit(3); } catch { \"caught\" }", &[]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` calls `exit(3)` at line 1, column 7, a code a script may not give (2 to 4 mean usage, vault and connection errors): call exit with 0, 1 or 5 to 125"
    );
    assert!(env.script("exit(126)", &[]).fails(1).contains("`exit(126)`"));
}

#[test]
fn arg_join_and_sn_query_escape_helpers() {
    let env = Env::new();
    let out = env.script(
        "fn f() { arg(\"n\", 0) } [arg(\"who\", \"world\"), arg(\"empty\", \"dflt\"), arg(\"missing\", 5), f()]",
        &["--arg", "who=Ada", "--arg", "empty=", "--arg-json", "n=3"],
    );
    assert_eq!(out.ok(), "[\"Ada\",\"dflt\",5,3]\n");
    let out =
        env.script("[join([\"a\", \"b\", 3, true, ()], \",\"), [\"x\", \"y\"].join(\" / \"), join([], \",\")]", &[]);
    assert_eq!(out.ok(), "[\"a,b,3,true,null\",\"x / y\",\"\"]\n");
    let out = env.script("`email=${sn_query_escape(\"a^ORemail=b\\r\\nc\")}`", &[]);
    assert_eq!(out.ok(), "email=a^^ORemail=b c\n");
}

#[test]
fn engine_errors_read_in_script_terms() {
    let env = Env::new();
    let out = env.script("let m = #{};\nm.push(\"a\", 1)", &[]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` calls `push(map, string, int)` at line 2, column 3, but there is no function `push` for these arguments: check the function's name and the number and types of its arguments"
    );
    let out = env.script("fn f(a) { a }\nf(1.5, [1])", &[]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` calls `f(float, array)` at line 2, column 1, but there is no function `f` for these arguments: check the function's name and the number and types of its arguments"
    );
    let out = env.script("let total = 1;\ntotl + 1", &[]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` uses the variable `totl` before defining it at line 2, column 1: define it with `let totl = ...` first"
    );
    let out = env.script("fn page() { args.page }\npage()", &[]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` uses the variable `args` inside a function at line 1, column 13, which sees only its own variables: call `args()` there instead"
    );
}

#[test]
fn deluge_maps_lists_and_text_functions_run_end_to_end() {
    let env = Env::new();
    let script = r#"
        let contacts = input.contacts;
        let seen = List();
        let byEmail = Map();
        for c in contacts {
            let email = ifnull(c.email, "").trim().toLowerCase();
            if email.isEmpty() || seen.contains(email) { continue; }
            seen.add(email);
            let rec = Map();
            rec.put("Last_Name", c.name.getSuffix(" ").proper());
            rec.put("First_Name", c.name.getPrefix(" ").proper());
            rec.put("Domain", email.subString(email.indexOf("@") + 1, email.length()));
            rec.put("Phone", c.phone.replaceAll("[^0-9]", ""));
            rec.put("Score", round(c.score.toDecimal(), 1));
            byEmail.put(email, rec);
        }
        let tags = "b,a,c,a".toList(",").distinct().sort(true);
        #{
            count: byEmail.size(),
            keys: byEmail.keys(),
            first: byEmail.get(seen.get(0)),
            missing: byEmail.get("nobody@x.com"),
            has: [byEmail.containKey("ada@ex.com"), byEmail.containsKey("x")],
            tags: tags.toString("|"),
            nullsafe: [input.nothing.size(), input.nothing.isEmpty(), input.nothing.getJSON("a")],
            json: byEmail.getJSON("ada@ex.com").toString().toMap().Domain,
        }
    "#;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    std::fs::write(
        &input,
        r#"{"contacts": [
            {"name": "ada LOVELACE", "email": " Ada@Ex.com ", "phone": "+1 (555) 010-2", "score": "4.25"},
            {"name": "Ada Dup", "email": "ada@ex.com", "phone": "", "score": "1"},
            {"name": "no mail", "email": null, "phone": "", "score": "0"},
            {"name": "Alan turing", "email": "alan@bletchley.uk", "phone": "44 1908", "score": "2.35"}
        ]}"#,
    )
    .unwrap();
    let out = env.script(script, &["--input", input.to_str().unwrap()]);
    let got: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "count": 2,
            "keys": ["ada@ex.com", "alan@bletchley.uk"],
            "first": {"Last_Name": "Lovelace", "First_Name": "Ada", "Domain": "ex.com", "Phone": "15550102", "Score": 4.3},
            "missing": null,
            "has": [true, false],
            "tags": "a|b|c",
            "nullsafe": [0, true, null],
            "json": "ex.com",
        })
    );
}

#[test]
fn deluge_index_errors_are_catchable_script_errors() {
    let env = Env::new();
    let out = env.script(
        "let l = List(); l.add(1);\nlet r = \"\"; try { l.get(3); } catch (e) { r = e; }\n[r, \"Zoho\".subString(1, 3), l.get(0)]",
        &[],
    );
    assert_eq!(
        out.ok(),
        "[\"get(3): there is no item at index 3 in a list of 1 items (indexes start at 0)\",\"oh\",1]\n"
    );
    let out = env.script("let l = List();\nl.get(3)", &[]);
    assert_eq!(
        out.fails(1),
        "script `script.rhai` threw get(3): there is no item at index 3 in a list of 0 items (indexes start at 0) at line 2, column 3"
    );
}
