//! Prompts on a real terminal: a missing secret param is asked for without echo, `--param KEY`
//! asks too, and `delete` asks for confirmation. The terminal is a pty made by `script(1)`
//! (util-linux, present on every Debian system).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::Env;

/// Runs `linkrun ARGS` on a pty, typing `input` after a short pause; returns the transcript.
fn on_terminal(env: &Env, args: &str, input: &str) -> (i32, String) {
    let bin = assert_cmd::cargo::cargo_bin!("linkrun");
    let mut child = Command::new("script")
        .args(["-qec", &format!("{} {args}", bin.display()), "/dev/null"])
        .current_dir(env.work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LINKRUN_HOME", env.home_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) is needed for the terminal tests: install bsdutils");
    std::thread::sleep(std::time::Duration::from_millis(400));
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("type");
    let out = child.wait_with_output().expect("wait");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn setup(env: &Env) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("connections/examples/echo_api.toml");
    env.run(&["service", "add", dir.to_str().unwrap()]).ok();
}

#[test]
fn a_missing_secret_is_asked_for_without_echo() {
    let env = Env::new();
    setup(&env);
    let secret = env.secret("typed-at-the-prompt-4417");
    let (code, transcript) = on_terminal(&env, "connection create typed --service echo_api", &format!("{secret}\n"));
    assert_eq!(code, 0, "{transcript}");
    assert!(transcript.contains("API key (X-Api-Key): "), "{transcript}");
    assert!(!transcript.contains(&secret), "the secret was echoed: {transcript}");
    let shown = env.run(&["connection", "show", "typed", "--json"]);
    let v: serde_json::Value = serde_json::from_str(shown.ok()).unwrap();
    assert_eq!(v["params"]["X-Api-Key"]["value"], "********17");
}

#[test]
fn param_without_value_prompts_and_delete_asks_for_confirmation() {
    let env = Env::new();
    setup(&env);
    let secret = env.secret("flag-prompted-secret-99");
    let (code, transcript) =
        on_terminal(&env, "connection create asked --service echo_api --param X-Api-Key", &format!("{secret}\n"));
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains(&secret));
    let (code, transcript) = on_terminal(&env, "connection delete asked", "n\n");
    assert_eq!(code, 0, "{transcript}");
    assert!(transcript.contains("kept connection `asked`"), "{transcript}");
    env.run(&["connection", "show", "asked"]).ok();
    let (code, transcript) = on_terminal(&env, "connection delete asked", "y\n");
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(env.run(&["connection", "show", "asked"]).code, 4);
}
