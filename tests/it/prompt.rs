//! Prompts on a real terminal: a missing secret param is asked for without echo, `--param KEY`
//! asks too, and `delete` asks for confirmation. The terminal is a pty driven by
//! `tests/support/pty_driver.py` (Python's `pty`), which types each answer once its prompt is
//! shown and, for a secret, once echo is off.

use std::process::{Command, Stdio};

use crate::common::Env;

/// Runs `linkrun ARGS` on a pty and answers its prompts in order (`secret:PROMPT` waits until
/// echo is off before typing): see `tests/support/pty_driver.py`, which waits on the terminal's
/// output and state, not on the clock. Returns the exit code and the transcript.
fn on_terminal(env: &Env, args: &str, answers: &[(&str, &str)]) -> (i32, String) {
    let bin = assert_cmd::cargo::cargo_bin!("linkrun");
    let driver = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/pty_driver.py");
    let mut cmd = Command::new("python3");
    cmd.arg(driver);
    for (prompt, answer) in answers {
        cmd.args([prompt, answer]);
    }
    cmd.arg("--").arg(bin).args(args.split_whitespace());
    let out = cmd
        .current_dir(env.work.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LINKRUN_HOME", env.home_path())
        .stdin(Stdio::null())
        .output()
        .expect("python3 is needed for the terminal tests");
    let transcript = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(out.status.code(), Some(125), "{transcript}\n{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), transcript)
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
    let (code, transcript) =
        on_terminal(&env, "connection create typed --service echo_api", &[("secret:API key (X-Api-Key): ", &secret)]);
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
    let (code, transcript) = on_terminal(
        &env,
        "connection create asked --service echo_api --param X-Api-Key",
        &[("secret:API key (X-Api-Key): ", &secret)],
    );
    assert_eq!(code, 0, "{transcript}");
    assert!(!transcript.contains(&secret));
    let (code, transcript) = on_terminal(&env, "connection delete asked", &[("[y/N] ", "n")]);
    assert_eq!(code, 0, "{transcript}");
    assert!(transcript.contains("kept connection `asked`"), "{transcript}");
    env.run(&["connection", "show", "asked"]).ok();
    let (code, transcript) = on_terminal(&env, "connection delete asked", &[("[y/N] ", "y")]);
    assert_eq!(code, 0, "{transcript}");
    assert_eq!(env.run(&["connection", "show", "asked"]).code, 4);
}
