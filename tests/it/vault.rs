//! The vault: key sources, a wrong or missing key, tampered and moved values, rekey (also when
//! interrupted), file modes; secrets never in clear in any file (checked by the harness on drop).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Env, Out, Server, service_toml};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// A `LINKRUN_MASTER_KEY` value: base64 of 32 bytes.
fn env_key(byte: u8) -> String {
    B64.encode([byte; 32])
}

/// Installs `svc`: basic auth against `base_url`, plus an optional secret header param `token`, so
/// a connection holds up to three sealed values.
fn install_service(env: &Env, base_url: &str) {
    env.add_service(
        "svc.toml",
        &service_toml(
            "svc",
            "basic",
            None,
            base_url,
            "[[params]]\nkey = \"X-Token\"\nsecret = true\noptional = true\nplacement = \"header\"\n",
        ),
    );
}

fn create(env: &Env, link: &str, password: &str) -> Out {
    env.run(&[
        "connection",
        "create",
        link,
        "--service",
        "svc",
        "--param",
        "username=admin",
        "--param",
        &format!("password={password}"),
    ])
}

fn create_with_token(env: &Env, link: &str, password: &str, token: &str) {
    env.run(&[
        "connection",
        "create",
        link,
        "--service",
        "svc",
        "--param",
        &format!("username=user_{link}"),
        "--param",
        &format!("password={password}"),
        "--param",
        &format!("X-Token={token}"),
    ])
    .ok();
}

fn vault_db(env: &Env) -> PathBuf {
    env.home_path().join("vault.db")
}

fn key_file(env: &Env) -> PathBuf {
    env.home_path().join("master.key")
}

/// The bytes of `vault.db` and of `vault.db-wal` (if any).
fn vault_bytes(env: &Env) -> (Vec<u8>, Option<Vec<u8>>) {
    let db = std::fs::read(vault_db(env)).expect("vault.db");
    let wal = std::fs::read(env.home_path().join("vault.db-wal")).ok();
    (db, wal)
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn wrong_key_message(env: &Env, source: &str) -> String {
    format!(
        "wrong master key: the vault `{}` was sealed with another key than the one from {source}; use the key it was created with (nothing was changed)",
        vault_db(env).display()
    )
}

fn unreadable_message(link: &str, field: &str) -> String {
    let (kind, name) = field.split_once(':').unwrap();
    format!(
        "the {kind} `{name}` of connection `{link}` cannot be opened: it was altered or copied from another row; nothing was changed, so restore the vault from a backup or recreate the connection with `linkrun connection delete {link} --yes` and `linkrun connection create`"
    )
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// The nonce and ciphertext of one sealed row.
fn sealed_row(env: &Env, link: &str, field: &str) -> (Vec<u8>, Vec<u8>) {
    let db = rusqlite::Connection::open(vault_db(env)).expect("open vault.db");
    db.query_row("SELECT nonce, ciphertext FROM sealed WHERE link_name = ?1 AND field = ?2", [link, field], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .expect("sealed row")
}

fn set_sealed_row(env: &Env, link: &str, field: &str, nonce: &[u8], ciphertext: &[u8]) {
    let db = rusqlite::Connection::open(vault_db(env)).expect("open vault.db");
    let n = db
        .execute(
            "UPDATE sealed SET nonce = ?3, ciphertext = ?4 WHERE link_name = ?1 AND field = ?2",
            rusqlite::params![link, field, nonce, ciphertext],
        )
        .expect("update sealed row");
    assert_eq!(n, 1, "one row updated");
}

/// Runs a script that sends one request per connection and returns the `Authorization` header
/// and `X-Token` header each request carried, in order.
fn sent_credentials(env: &Env, server: &Server, links: &[&str]) -> Vec<(String, String)> {
    server.clear();
    let calls: String =
        links.iter().map(|l| format!("invoke_url(#{{ url: \"/echo\", connection: \"{l}\" }});\n")).collect();
    env.script(&format!("{calls}\"done\""), &[]).ok();
    server
        .requests()
        .iter()
        .map(|r| {
            (
                r.header("authorization").unwrap_or_default().to_string(),
                r.header("x-token").unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", B64.encode(format!("{user}:{password}")))
}

#[test]
fn first_use_creates_a_private_home_key_file_and_vault() {
    let env = Env::new();
    let home = env.home_path().join("fresh");
    let h = home.to_str().expect("utf-8");
    let out = env.run(&["--home", h, "vault", "status"]);
    assert_eq!(
        out.ok(),
        format!(
            "vault:          {h}/vault.db\nkey source:     key file {h}/master.key\nschema version: 7\nconnections:    0\nsealed values:  0\n"
        )
    );
    assert_eq!(mode(&home), 0o700, "home folder");
    assert_eq!(mode(&home.join("master.key")), 0o600, "key file");
    assert_eq!(mode(&home.join("vault.db")), 0o600, "vault");
    let text = std::fs::read_to_string(home.join("master.key")).expect("key file");
    assert_eq!(B64.decode(text.trim()).expect("base64 key").len(), 32);
}

#[test]
fn the_key_file_is_kept_across_runs() {
    let env = Env::new();
    env.run(&["vault", "status"]).ok();
    let key = std::fs::read(key_file(&env)).expect("key file");
    env.run(&["vault", "status"]).ok();
    assert_eq!(std::fs::read(key_file(&env)).expect("key file"), key);
}

#[test]
fn status_counts_connections_and_sealed_values() {
    let env = Env::new();
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "one", &env.secret("first-pass-123456")).ok();
    create_with_token(&env, "two", &env.secret("second-pass-654321"), &env.secret("token-abcdef-987"));
    let h = env.home_path().display().to_string();
    assert_eq!(
        env.run(&["vault", "status"]).ok(),
        format!(
            "vault:          {h}/vault.db\nkey source:     key file {h}/master.key\nschema version: 7\nconnections:    2\n  connected     2\nsealed values:  5\n"
        )
    );
    let doc = json(env.run(&["vault", "status", "--json"]).ok());
    assert_eq!(
        doc,
        serde_json::json!({
            "path": format!("{h}/vault.db"),
            "key_source": format!("key file {h}/master.key"),
            "schema_version": 7,
            "connections": 2,
            "by_status": {"connected": 2},
            "sealed_values": 5,
        })
    );
}

#[test]
fn env_master_key_is_used_and_no_key_file_is_written() {
    let env = Env::new();
    env.set_env("LINKRUN_MASTER_KEY", &env.secret(&env_key(7)));
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "one", &env.secret("env-key-pass-0001")).ok();
    assert!(env.run(&["vault", "status"]).ok().contains("\nkey source:     LINKRUN_MASTER_KEY\n"));
    assert_eq!(json(env.run(&["vault", "status", "--json"]).ok())["key_source"], "LINKRUN_MASTER_KEY");
    assert!(!key_file(&env).exists(), "no key file with LINKRUN_MASTER_KEY");
    assert!(env.run(&["connection", "show", "one"]).ok().contains("password         ********01\n"));
}

#[test]
fn a_wrong_env_master_key_is_refused_and_nothing_changes() {
    let env = Env::new();
    env.set_env("LINKRUN_MASTER_KEY", &env.secret(&env_key(7)));
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "one", &env.secret("right-key-pass-42")).ok();
    let before = vault_bytes(&env);
    let wrong = [("LINKRUN_MASTER_KEY", env_key(8))];
    let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [
        &["connection", "show", "one"][..],
        &["connection", "list"],
        &["vault", "status"],
        &["connection", "create", "two", "--service", "svc", "--param", "username=u", "--param", "password=p"],
        &["connection", "delete", "one", "--yes"],
        &["vault", "rekey", "--new-key-file"],
    ] {
        let out = env.run_with(args, &wrong);
        assert_eq!(out.fails(3), wrong_key_message(&env, "LINKRUN_MASTER_KEY"), "{args:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(vault_bytes(&env), before, "the vault files are unchanged after {args:?}");
    }
    assert!(!key_file(&env).exists());
    assert!(!env.home_path().join("master.key.new").exists());
    assert!(env.run(&["connection", "show", "one"]).ok().contains("password         ********42\n"));
}

#[test]
fn passphrase_source_works_and_a_wrong_one_is_refused() {
    let env = Env::new();
    env.set_env("LINKRUN_PASSPHRASE", &env.secret("correct horse battery"));
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "one", &env.secret("phrase-pass-77")).ok();
    assert!(env.run(&["vault", "status"]).ok().contains("\nkey source:     LINKRUN_PASSPHRASE\n"));
    assert!(!key_file(&env).exists(), "no key file with LINKRUN_PASSPHRASE");
    let before = vault_bytes(&env);
    let out = env.run_with(&["connection", "show", "one"], &[("LINKRUN_PASSPHRASE", "correct horse battery!")]);
    assert_eq!(out.fails(3), wrong_key_message(&env, "LINKRUN_PASSPHRASE"));
    assert_eq!(vault_bytes(&env), before);
    assert!(env.run(&["connection", "show", "one"]).ok().contains("password         ********77\n"));
}

#[test]
fn the_env_master_key_wins_over_the_passphrase() {
    let env = Env::new();
    env.set_env("LINKRUN_MASTER_KEY", &env.secret(&env_key(1)));
    env.set_env("LINKRUN_PASSPHRASE", &env.secret("ignored passphrase"));
    assert!(env.run(&["vault", "status"]).ok().contains("\nkey source:     LINKRUN_MASTER_KEY\n"));
    env.unset_env("LINKRUN_MASTER_KEY");
    assert_eq!(env.run(&["vault", "status"]).fails(3), wrong_key_message(&env, "LINKRUN_PASSPHRASE"));
}

#[test]
fn a_malformed_env_master_key_is_a_clear_error() {
    let env = Env::new();
    env.run(&["vault", "status"]).ok();
    let before = vault_bytes(&env);
    let message = "LINKRUN_MASTER_KEY is not a master key: it must be the base64 text of 32 random bytes (e.g. `head -c32 /dev/urandom | base64`)";
    let short = B64.encode([3u8; 16]);
    for bad in ["not base64 at all!", short.as_str()] {
        let out = env.run_with(&["vault", "status"], &[("LINKRUN_MASTER_KEY", bad)]);
        assert_eq!(out.fails(3), message, "{bad}");
        assert_eq!(vault_bytes(&env), before);
    }
    // On a fresh home too: no vault is sealed with a half-read key.
    let fresh = Env::new();
    assert_eq!(fresh.run_with(&["vault", "status"], &[("LINKRUN_MASTER_KEY", "abc")]).fails(3), message);
}

#[test]
fn a_missing_key_file_for_an_existing_vault_names_the_key_file() {
    let env = Env::new();
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "one", &env.secret("missing-key-pass-1")).ok();
    std::fs::remove_file(key_file(&env)).expect("remove key file");
    let before = vault_bytes(&env);
    let message = format!(
        "the vault `{}` exists but its key file `{}` is missing: restore the key file, or set LINKRUN_MASTER_KEY or LINKRUN_PASSPHRASE to the key the vault was created with",
        vault_db(&env).display(),
        key_file(&env).display()
    );
    assert_eq!(env.run(&["connection", "show", "one"]).fails(3), message);
    assert_eq!(env.run(&["vault", "status"]).fails(3), message);
    assert!(!key_file(&env).exists(), "no new key file is made up for an existing vault");
    assert_eq!(vault_bytes(&env), before);
}

#[test]
fn a_vault_made_with_an_env_key_asks_for_it_and_makes_up_no_key_file() {
    let env = Env::new();
    install_service(&env, "http://127.0.0.1:9");
    let key = env.secret(&env_key(4));
    env.run_with(
        &["connection", "create", "one", "--service", "svc", "--param", "username=u", "--param", "password=p"],
        &[("LINKRUN_MASTER_KEY", &key)],
    )
    .ok();
    let before = vault_bytes(&env);
    let message = format!(
        "the vault `{}` exists but its key file `{}` is missing: restore the key file, or set LINKRUN_MASTER_KEY or LINKRUN_PASSPHRASE to the key the vault was created with",
        vault_db(&env).display(),
        key_file(&env).display()
    );
    assert_eq!(env.run(&["connection", "list"]).fails(3), message);
    assert!(!key_file(&env).exists());
    assert_eq!(vault_bytes(&env), before);
}

#[test]
fn a_damaged_vault_file_is_exit_3() {
    let env = Env::new();
    env.run(&["vault", "status"]).ok();
    std::fs::write(vault_db(&env), vec![0x5a; 8192]).expect("overwrite vault");
    let msg = env.run(&["connection", "list"]).fails(3);
    assert!(msg.starts_with("the vault is damaged or unreadable ("), "{msg}");
    assert!(msg.ends_with("): restore it from a backup"), "{msg}");
    assert_eq!(std::fs::read(vault_db(&env)).expect("vault"), vec![0x5a; 8192], "left as it was");
}

#[test]
fn a_vault_from_a_newer_linkrun_is_refused() {
    let env = Env::new();
    env.run(&["vault", "status"]).ok();
    rusqlite::Connection::open(vault_db(&env)).expect("open").pragma_update(None, "user_version", 8).expect("set");
    assert_eq!(
        env.run(&["vault", "status"]).fails(3),
        "the vault has schema version 8 but this linkrun understands up to 7: upgrade linkrun"
    );
}

#[test]
fn a_version_1_vault_is_migrated_and_keeps_its_connections() {
    let env = Env::new();
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "old", &env.secret("old-vault-pass-4242")).ok();
    let db = rusqlite::Connection::open(vault_db(&env)).expect("open");
    db.execute_batch("DROP TABLE script_state; DROP TABLE oauth_tokens; PRAGMA user_version = 1;").expect("downgrade");
    drop(db);
    let status = json(env.run(&["vault", "status", "--json"]).ok());
    assert_eq!(status["schema_version"], 7);
    assert_eq!(status["connections"], 1);
    let show = json(env.run(&["connection", "show", "old", "--json"]).ok());
    assert_eq!(show["status"], "connected");
}

#[test]
fn a_tampered_value_is_refused_naming_connection_and_field_and_is_not_overwritten() {
    let env = Env::new();
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "crm", &env.secret("tamper-pass-123456")).ok();
    let (nonce, mut ct) = sealed_row(&env, "crm", "param:password");
    ct[0] ^= 0x01;
    set_sealed_row(&env, "crm", "param:password", &nonce, &ct);

    let message = unreadable_message("crm", "param:password");
    let out = env.run(&["connection", "show", "crm"]);
    assert_eq!(out.fails(3), message);
    assert_eq!(out.stdout, "");
    let out = env.run(&["connection", "show", "crm", "--json"]);
    assert_eq!(out.fails(3), message);
    let line = serde_json::json!({"error": {"kind": "vault", "message": message, "exit_code": 3}});
    assert_eq!(json(&out.stdout), line, "a failed --json command prints one error line on stdout");
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert_eq!(env.script("invoke_url(#{ url: \"/x\", connection: \"crm\" }); \"sent\"", &[]).fails(3), message);
    // A script cannot catch it and carry on.
    let out = env.script(
        "let r = \"sent\"; try { invoke_url(#{ url: \"/x\", connection: \"crm\" }); } catch (e) { r = \"caught\"; } r",
        &[],
    );
    assert_eq!(out.fails(3), message);
    assert_eq!(out.stdout, "");
    assert_eq!(sealed_row(&env, "crm", "param:password"), (nonce, ct), "the tampered row is left as it was");
}

#[test]
fn a_value_moved_onto_another_row_does_not_open() {
    let env = Env::new();
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "alpha", &env.secret("alpha-pass-111111")).ok();
    create(&env, "beta", &env.secret("beta-pass-2222222")).ok();
    let (nonce, ct) = sealed_row(&env, "alpha", "param:password");
    set_sealed_row(&env, "beta", "param:password", &nonce, &ct);
    assert_eq!(env.run(&["connection", "show", "beta"]).fails(3), unreadable_message("beta", "param:password"));
    assert_eq!(
        env.script("invoke_url(#{ url: \"/x\", connection: \"beta\" })", &[]).fails(3),
        unreadable_message("beta", "param:password")
    );
    assert!(env.run(&["connection", "show", "alpha"]).ok().contains("password         ********11\n"));
    // Also within one connection: the password moved onto the username row.
    let env2 = Env::new();
    install_service(&env2, "http://127.0.0.1:9");
    create(&env2, "gamma", &env2.secret("gamma-pass-333333")).ok();
    let (nonce, ct) = sealed_row(&env2, "gamma", "param:password");
    set_sealed_row(&env2, "gamma", "param:username", &nonce, &ct);
    assert_eq!(env2.run(&["connection", "show", "gamma"]).fails(3), unreadable_message("gamma", "param:username"));
}

#[test]
fn rekey_to_a_new_key_file_keeps_every_value() {
    let (env, server) = (Env::new(), Server::start());
    install_service(&env, &server.url());
    let pw = env.secret("rekey-pass-abcdef12");
    create(&env, "one", &pw).ok();
    let old_key = std::fs::read_to_string(key_file(&env)).expect("key file");
    let out = env.run(&["vault", "rekey", "--new-key-file"]);
    out.ok();
    assert_eq!(out.stderr, format!("rekeyed the vault: it now opens with key file {}\n", key_file(&env).display()));
    let new_key = std::fs::read_to_string(key_file(&env)).expect("key file");
    assert_ne!(new_key, old_key, "master.key changed");
    assert_eq!(B64.decode(new_key.trim()).expect("base64").len(), 32);
    assert_eq!(mode(&key_file(&env)), 0o600);
    assert!(!env.home_path().join("master.key.new").exists());
    assert!(env.run(&["connection", "show", "one"]).ok().contains("password         ********12\n"));
    assert_eq!(sent_credentials(&env, &server, &["one"]), vec![(basic("admin", &pw), String::new())]);
    // The old key no longer opens the vault.
    let out = env.run_with(&["vault", "status"], &[("LINKRUN_MASTER_KEY", old_key.trim())]);
    assert_eq!(out.fails(3), wrong_key_message(&env, "LINKRUN_MASTER_KEY"));
}

#[test]
fn rekey_from_an_env_master_key_to_a_key_file() {
    let env = Env::new();
    install_service(&env, "http://127.0.0.1:9");
    let key = env.secret(&env_key(9));
    env.set_env("LINKRUN_MASTER_KEY", &key);
    create(&env, "one", &env.secret("env-to-file-pass-9")).ok();
    let out = env.run(&["vault", "rekey", "--new-key-file"]);
    out.ok();
    assert!(out.stderr.contains("unset LINKRUN_MASTER_KEY, which holds the old key"), "{}", out.stderr);
    assert_eq!(env.run(&["vault", "status"]).fails(3), wrong_key_message(&env, "LINKRUN_MASTER_KEY"));
    env.unset_env("LINKRUN_MASTER_KEY");
    assert!(env.run(&["connection", "show", "one"]).ok().contains("password         ********-9\n"));
}

#[test]
fn rekey_to_a_passphrase() {
    let env = Env::new();
    install_service(&env, "http://127.0.0.1:9");
    create(&env, "one", &env.secret("to-phrase-pass-55")).ok();
    let new = env.secret("a new passphrase for the vault");
    let out = env.run_with(&["vault", "rekey", "--new-passphrase-env", "NEWPW"], &[("NEWPW", &new)]);
    out.ok();
    assert_eq!(
        out.stderr,
        "rekeyed the vault: it now opens with LINKRUN_PASSPHRASE\nset LINKRUN_PASSPHRASE to the new passphrase from now on\n"
    );
    let show = env.run_with(&["connection", "show", "one"], &[("LINKRUN_PASSPHRASE", &new)]);
    assert!(show.ok().contains("password         ********55\n"));
    let old = format!("key file {}", key_file(&env).display());
    assert_eq!(env.run(&["connection", "show", "one"]).fails(3), wrong_key_message(&env, &old));
}

#[test]
fn rekey_to_a_passphrase_needs_the_variable_set() {
    let env = Env::new();
    env.run(&["vault", "status"]).ok();
    assert_eq!(
        env.run(&["vault", "rekey", "--new-passphrase-env", "NEWPW"]).fails(2),
        "environment variable `NEWPW` is not set or empty: export the new passphrase in it and run again"
    );
    assert_eq!(env.run(&["vault", "rekey"]).code, 2, "a new key source is required");
}

/// Two connections with three sealed values each, so `rekey_mid_transaction` stops half-way.
fn two_connections(env: &Env, server: &Server) -> Vec<(String, String)> {
    install_service(env, &server.url());
    create_with_token(env, "one", &env.secret("crash-pass-one-111"), &env.secret("crash-token-one-111"));
    create_with_token(env, "two", &env.secret("crash-pass-two-222"), &env.secret("crash-token-two-222"));
    assert!(env.run(&["vault", "status"]).ok().contains("\nsealed values:  6\n"));
    vec![
        (basic("user_one", "crash-pass-one-111"), "crash-token-one-111".to_string()),
        (basic("user_two", "crash-pass-two-222"), "crash-token-two-222".to_string()),
    ]
}

/// Runs `vault rekey ARGS` set to abort at `point`.
fn crashing_rekey(env: &Env, args: &[&str], extra: &[(&str, &str)], point: &str) {
    let mut all = vec!["vault", "rekey"];
    all.extend_from_slice(args);
    let mut extra = extra.to_vec();
    extra.push(("LINKRUN_TEST_CRASH", point));
    let out = env.run_with(&all, &extra);
    assert_ne!(
        out.code, 0,
        "the rekey should have aborted at `{point}` (LINKRUN_TEST_CRASH works in debug builds only)\n{}",
        out.stderr
    );
    for name in ["vault.db", "vault.db-wal", "vault.db-shm", "master.key", "master.key.new"] {
        let p = env.home_path().join(name);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{name} after the crash");
        }
    }
}

fn check_data(env: &Env, server: &Server, expected: &[(String, String)]) {
    let one = env.run(&["connection", "show", "one"]);
    assert!(one.ok().contains("password         ********11\n"), "{}", one.stdout);
    assert!(one.stdout.contains("X-Token          ********11\n"), "{}", one.stdout);
    assert!(env.run(&["connection", "show", "two", "--json"]).ok().contains("\"********22\""));
    assert_eq!(sent_credentials(env, server, &["one", "two"]), expected);
}

fn key_file_rekey_interrupted_at(point: &str) -> (Env, String, String) {
    let (env, server) = (Env::new(), Server::start());
    let expected = two_connections(&env, &server);
    let old_key = std::fs::read_to_string(key_file(&env)).expect("key file");
    crashing_rekey(&env, &["--new-key-file"], &[], point);
    check_data(&env, &server, &expected);
    let key_now = std::fs::read_to_string(key_file(&env)).expect("key file");
    if point == "rekey_after_commit" {
        assert!(!env.home_path().join("master.key.new").exists(), "master.key.new was adopted by renaming it");
    }
    // The vault is healthy: it rekeys again and still holds the data.
    env.run(&["vault", "rekey", "--new-key-file"]).ok();
    check_data(&env, &server, &expected);
    (env, old_key, key_now)
}

#[test]
fn rekey_interrupted_after_writing_the_new_key_file_opens_with_the_old_key() {
    let (_env, old_key, key_now) = key_file_rekey_interrupted_at("rekey_after_new_key_file");
    assert_eq!(key_now, old_key);
}

#[test]
fn rekey_interrupted_mid_transaction_opens_with_the_old_key() {
    let (_env, old_key, key_now) = key_file_rekey_interrupted_at("rekey_mid_transaction");
    assert_eq!(key_now, old_key);
}

#[test]
fn rekey_interrupted_after_commit_adopts_the_new_key_file() {
    let (_env, old_key, key_now) = key_file_rekey_interrupted_at("rekey_after_commit");
    assert_ne!(key_now, old_key, "master.key.new was adopted");
}

#[test]
fn passphrase_rekey_interrupted_mid_transaction_opens_with_the_old_passphrase() {
    let (env, server) = (Env::new(), Server::start());
    env.set_env("LINKRUN_PASSPHRASE", &env.secret("the old passphrase"));
    let expected = two_connections(&env, &server);
    let new = env.secret("the new passphrase");
    crashing_rekey(&env, &["--new-passphrase-env", "NEWPW"], &[("NEWPW", &new)], "rekey_mid_transaction");
    check_data(&env, &server, &expected);
    let out = env.run_with(&["vault", "status"], &[("LINKRUN_PASSPHRASE", &new)]);
    assert_eq!(out.fails(3), wrong_key_message(&env, "LINKRUN_PASSPHRASE"));
}

#[test]
fn passphrase_rekey_interrupted_after_commit_opens_with_the_new_passphrase() {
    let (env, server) = (Env::new(), Server::start());
    env.set_env("LINKRUN_PASSPHRASE", &env.secret("the old passphrase"));
    let expected = two_connections(&env, &server);
    let new = env.secret("the new passphrase");
    crashing_rekey(&env, &["--new-passphrase-env", "NEWPW"], &[("NEWPW", &new)], "rekey_after_commit");
    assert_eq!(env.run(&["vault", "status"]).fails(3), wrong_key_message(&env, "LINKRUN_PASSPHRASE"));
    env.set_env("LINKRUN_PASSPHRASE", &new);
    check_data(&env, &server, &expected);
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A process that opens the vault while a rekey is under way (e.g. a scheduled `linkrun run`)
/// must not destroy the rekey's new key file: the rekey would then commit values sealed with a
/// key that no file holds any more, and the vault would never open again.
#[test]
fn opening_the_vault_during_a_rekey_does_not_lose_the_new_key() {
    let (env, server) = (Env::new(), Server::start());
    let expected = two_connections(&env, &server);
    let pending = env.home_path().join("master.key.new");
    // Hold the vault's write lock so the rekey cannot commit yet (it waits for the lock).
    let lock = rusqlite::Connection::open(vault_db(&env)).expect("open vault.db");
    lock.execute_batch("BEGIN IMMEDIATE").expect("write lock");
    let rekey = env.spawn(&["vault", "rekey", "--new-key-file"]);
    wait_until(Duration::from_secs(2), || pending.exists());
    // Meanwhile another command opens the vault.
    let mut other = env.spawn(&["connection", "show", "one"]);
    wait_until(Duration::from_secs(1), || other.try_wait().is_ok_and(|s| s.is_some()));
    lock.execute_batch("ROLLBACK").expect("release the lock");
    drop(lock);
    let other = other.wait_with_output().expect("show ends");
    let rekey = rekey.wait_with_output().expect("rekey ends");
    let show = env.run(&["connection", "show", "one"]);
    assert_eq!(
        show.code,
        0,
        "after a rekey that ran beside another command the vault must still open\nrekey: {:?} {}\nother command: {:?} {}\nshow: {}",
        rekey.status,
        String::from_utf8_lossy(&rekey.stderr),
        other.status,
        String::from_utf8_lossy(&other.stderr),
        show.stderr
    );
    assert!(rekey.status.success(), "the rekey: {}", String::from_utf8_lossy(&rekey.stderr));
    assert!(other.status.success(), "the other command: {}", String::from_utf8_lossy(&other.stderr));
    check_data(&env, &server, &expected);
}

// ---- first use by several processes at once ----

/// 20 times: 8 `connection create` at once on a home that does not exist yet. Every process
/// succeeds, and afterwards every connection's credentials open and are the ones it was given (one
/// vault id, one key: a second key file or key check would leave some unreadable).
#[test]
#[ignore = "heavy: 160 processes; run with `cargo test -p linkrun -- --ignored`"]
fn eight_processes_creating_connections_on_a_fresh_home_lose_nothing() {
    let server = Server::start();
    for round in 0..20 {
        let env = Env::new();
        env.write("connections/svc.toml", &service_toml("svc", "basic", None, &server.url(), ""));
        std::fs::remove_dir(env.home_path()).expect("start without a home");
        let children: Vec<_> = (0..8)
            .map(|i| {
                env.spawn(&[
                    "connection",
                    "create",
                    &format!("c{i}"),
                    "--service",
                    "svc",
                    "--param",
                    &format!("username=u{i}"),
                    "--param",
                    &format!("password=pw-{round}-{i}"),
                ])
            })
            .collect();
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().expect("create ends");
            assert!(out.status.success(), "round {round}, process {i}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let links: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
        let links: Vec<&str> = links.iter().map(String::as_str).collect();
        let sent = sent_credentials(&env, &server, &links);
        let expected: Vec<(String, String)> =
            (0..8).map(|i| (basic(&format!("u{i}"), &format!("pw-{round}-{i}")), String::new())).collect();
        assert_eq!(sent, expected, "round {round}");
        let stray: Vec<_> = std::fs::read_dir(env.home_path())
            .expect("home")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(stray.is_empty(), "temporary files left behind: {stray:?}");
    }
}

/// 10 times: 8 scripts storing state at once on a fresh home; no key is lost.
#[test]
#[ignore = "heavy: 80 processes; run with `cargo test -p linkrun -- --ignored`"]
fn eight_scripts_storing_state_on_a_fresh_home_lose_no_key() {
    for round in 0..10 {
        let env = Env::new();
        let set = env.write("set.rhai", "state_set(args.k, args.k + \"!\"); \"ok\"");
        let set = set.to_str().expect("utf-8");
        let children: Vec<_> = (0..8).map(|i| env.spawn(&["run", set, "--arg", &format!("k=k{i}")])).collect();
        for (i, child) in children.into_iter().enumerate() {
            let out = child.wait_with_output().expect("run ends");
            assert!(out.status.success(), "round {round}, process {i}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let get = env.write(
            "set.rhai",
            "let found = []; for i in 0..8 { let k = \"k\" + i; if state_get(k) == k + \"!\" { found.push(k) } } found.len()",
        );
        assert_eq!(env.run(&["run", get.to_str().expect("utf-8")]).ok(), "8\n", "round {round}");
    }
}

// ---- files that are not (or no longer) a whole vault ----

/// Runs `connection list` (with `extra` env) and checks it fails with exit 3 leaving every file
/// of the home as it was.
#[track_caller]
fn refused_untouched(env: &Env, extra: &[(&str, &str)]) -> String {
    let before: Vec<(String, Vec<u8>)> = home_files(env);
    let msg = env.run_with(&["connection", "list"], extra).fails(3);
    assert_eq!(home_files(env), before, "nothing may be written");
    msg
}

fn home_files(env: &Env) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(env.home_path())
        .expect("home")
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).expect("read")))
        .collect();
    files.sort();
    files
}

#[test]
fn a_vault_without_its_key_check_is_damaged_not_made_anew() {
    for (delete, what) in [("key_check", "key check"), ("vault_id", "vault id"), ("kdf", "passphrase parameters")] {
        let (env, server) = (Env::new(), Server::start());
        let expected = two_connections(&env, &server);
        let db = rusqlite::Connection::open(vault_db(&env)).expect("open");
        let value: String =
            db.query_row("SELECT value FROM meta WHERE key = ?1", [delete], |r| r.get(0)).expect("meta row");
        db.execute("DELETE FROM meta WHERE key = ?1", [delete]).expect("delete");
        drop(db);
        let msg = refused_untouched(&env, &[]);
        assert_eq!(
            msg,
            format!("the vault is damaged or unreadable (its {what} is missing): restore it from a backup")
        );
        // Not even another key makes it adopt a new one.
        refused_untouched(&env, &[("LINKRUN_MASTER_KEY", &env_key(9))]);
        // Put back, it opens with its key and every value again: nothing was lost or replaced.
        let db = rusqlite::Connection::open(vault_db(&env)).expect("open");
        db.execute("INSERT INTO meta (key, value) VALUES (?1, ?2)", [delete, value.as_str()]).expect("restore");
        drop(db);
        check_data(&env, &server, &expected);
    }
}

#[test]
fn a_foreign_sqlite_file_or_an_empty_file_is_refused_not_adopted() {
    let env = Env::new();
    let db = rusqlite::Connection::open(vault_db(&env)).expect("create");
    db.execute_batch(
        "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);",
    )
    .expect("foreign schema");
    drop(db);
    assert_eq!(
        refused_untouched(&env, &[]),
        format!(
            "`{}` is not a linkrun vault (it holds tables linkrun does not make: `invoices`): nothing was changed; move it away to start a new vault, or restore yours from a backup",
            vault_db(&env).display()
        )
    );
    assert!(!key_file(&env).exists(), "no key file made up for it");

    let env = Env::new();
    std::fs::write(vault_db(&env), b"").expect("empty file");
    let msg = refused_untouched(&env, &[]);
    assert!(msg.contains("is not a linkrun vault (it is empty"), "{msg}");

    let env = Env::new();
    std::fs::create_dir(vault_db(&env)).expect("a folder in its place");
    let msg = env.run(&["connection", "list"]).fails(3);
    assert!(msg.contains("is not a linkrun vault (it is not a regular file)"), "{msg}");
}

// ---- OAuth 2.0 refresh beside rekey, killed refreshers, provider failures ----

/// An OAuth 2.0 service (client credentials) whose token endpoint is the server's `/token`, and
/// a connection `c` authorised with it (token 1).
fn oauth_connection(env: &Env, server: &Server) {
    let url = server.url();
    env.add_service(
        "op.toml",
        &service_toml(
            "op",
            "oauth2",
            Some("header"),
            &url,
            &format!("[oauth2]\ntoken_url = \"{url}/token\"\ngrant_types = [\"client_credentials\"]\n"),
        ),
    );
    let secret = env.secret("oauth-client-secret-5e5e");
    env.run(&[
        "connection",
        "create",
        "c",
        "--service",
        "op",
        "--param",
        "client_id=cid",
        "--param",
        &format!("client_secret={secret}"),
    ])
    .ok();
    env.run(&["connection", "authorize", "c", "--grant", "client_credentials"]).ok();
    for n in 1..6 {
        env.secret(&format!("srv-access-token-{n}"));
    }
}

/// A script whose request is refused with 401: linkrun refreshes the token once and retries.
fn refreshing_script(env: &Env) -> String {
    env.write("refresh.rhai", "invoke_url(#{ url: \"/status/401\", connection: \"c\" }).code")
        .to_str()
        .expect("utf-8")
        .to_string()
}

fn token_requests(server: &Server) -> usize {
    server.requests().iter().filter(|r| r.path == "/token").count()
}

fn lease_until(env: &Env) -> i64 {
    let db = rusqlite::Connection::open(vault_db(env)).expect("open");
    db.query_row("SELECT lease_until FROM oauth_tokens WHERE link_name = 'c'", [], |r| r.get(0)).expect("lease")
}

#[test]
fn a_token_refreshed_while_the_vault_is_rekeyed_is_sealed_under_the_new_key() {
    let (env, server) = (Env::new(), Server::start());
    oauth_connection(&env, &server);
    server.set_token_answer(1500, 200);
    let script = refreshing_script(&env);
    let run = env.spawn(&["run", &script]);
    wait_until(Duration::from_secs(10), || token_requests(&server) == 2);
    assert_eq!(token_requests(&server), 2, "the refresh is under way");
    env.run(&["vault", "rekey", "--new-key-file"]).ok();
    let out = run.wait_with_output().expect("run ends");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.set_token_answer(0, 200);
    env.run(&["connection", "show", "c"]).ok();
    let sent = env.script(
        "invoke_url(#{ url: \"/echo\", connection: \"c\" }).headers.authorization == \"Bearer srv-access-token-2\"",
        &[],
    );
    assert_eq!(sent.ok(), "true\n", "the refreshed token opens with the new key and is the one sent");
}

#[test]
fn a_refresh_lease_of_a_killed_process_is_taken_at_once() {
    let (env, server) = (Env::new(), Server::start());
    oauth_connection(&env, &server);
    server.set_token_answer(60_000, 200);
    let script = refreshing_script(&env);
    let mut run = env.spawn(&["run", &script]);
    wait_until(Duration::from_secs(10), || token_requests(&server) == 2);
    assert!(lease_until(&env) > 0, "the lease is held during the refresh");
    run.kill().expect("kill -9");
    run.wait().expect("reaped");
    server.set_token_answer(0, 200);
    let started = Instant::now();
    assert_eq!(env.run(&["run", &script]).ok(), "401\n");
    assert!(started.elapsed() < Duration::from_secs(15), "waited {:?} for a dead process's lease", started.elapsed());
    assert_eq!(lease_until(&env), 0);
}

#[test]
fn a_refresh_cut_off_by_the_time_limit_releases_its_lease() {
    let (env, server) = (Env::new(), Server::start());
    oauth_connection(&env, &server);
    server.set_token_answer(60_000, 200);
    let script = refreshing_script(&env);
    let msg = env.run(&["run", &script, "--timeout", "1"]).fails(1);
    assert!(msg.contains("time limit"), "{msg}");
    assert_eq!(lease_until(&env), 0, "released when the refresh was dropped");
}

#[test]
fn a_provider_failure_on_refresh_is_its_error_and_the_connection_stays_connected() {
    let (env, server) = (Env::new(), Server::start());
    oauth_connection(&env, &server);
    let script = refreshing_script(&env);
    for status in [500, 503, 429] {
        server.set_token_answer(0, status);
        let msg = env.run(&["run", &script]).fails(4);
        assert_eq!(
            msg,
            format!(
                "the provider failed to refresh the token (temporarily_unavailable: HTTP {status}) while refreshing connection `c`: this is the provider's or the network's error, not a problem of the connection, which stays connected; run it again later (uncaught in `refresh.rhai` at line 1, column 1)"
            )
        );
        assert_eq!(json(env.run(&["connection", "show", "c", "--json"]).ok())["status"], "connected");
        assert_eq!(lease_until(&env), 0);
    }
    server.set_token_answer(0, 200);
    assert_eq!(env.run(&["run", &script]).ok(), "401\n", "works again once the provider does");
}

// ---- script state per script path ----

#[test]
fn scripts_of_the_same_name_in_two_folders_keep_their_own_state() {
    let env = Env::new();
    let a = env.write("a/sync.rhai", "let n = state_get(\"n\") ?? 0; state_set(\"n\", n + 1); n + 1");
    let b = env.write("b/sync.rhai", "let n = state_get(\"n\") ?? 0; state_set(\"n\", n + 10); n + 10");
    let (a, b) = (a.to_str().expect("utf-8"), b.to_str().expect("utf-8"));
    assert_eq!(env.run(&["run", a]).ok(), "1\n");
    assert_eq!(env.run(&["run", b]).ok(), "10\n");
    assert_eq!(env.run(&["run", a]).ok(), "2\n");
    let list = json(env.run(&["state", "list", "--json"]).ok());
    let canon_a = std::fs::canonicalize(a).expect("canonical").display().to_string();
    let canon_b = std::fs::canonicalize(b).expect("canonical").display().to_string();
    assert_eq!(list[0]["script"], canon_a.as_str());
    assert_eq!(list[0]["key"], "n");
    assert_eq!(list[0]["value"], 2);
    assert_eq!(list[1]["script"], canon_b.as_str());
    assert_eq!(list[1]["value"], 10);
    let table = env.run(&["state", "list"]);
    assert!(table.ok().starts_with("SCRIPT"), "{}", table.stdout);
    assert!(table.stdout.contains(&canon_a), "{}", table.stdout);

    env.run(&["state", "clear", a, "n"]).ok();
    assert_eq!(env.run(&["run", a]).ok(), "1\n", "cleared");
    assert_eq!(env.run(&["run", b]).ok(), "20\n", "the other script's state is kept");
    env.run(&["state", "clear", b]).ok();
    assert_eq!(
        env.run(&["state", "clear", b]).fails(2),
        format!("no state stored for script `{canon_b}`: see what is stored with `linkrun state list`")
    );
}

#[test]
fn state_kept_by_file_name_before_is_adopted_by_the_script() {
    let env = Env::new();
    let a = env.write("a/sync.rhai", "state_get(\"checkpoint\")");
    let a = a.to_str().expect("utf-8");
    env.run(&["vault", "status"]).ok();
    let db = rusqlite::Connection::open(vault_db(&env)).expect("open");
    db.execute(
        "INSERT INTO script_state (script, key, value, updated_at) VALUES ('sync', 'checkpoint', '\"2026-01-01\"', 1)",
        [],
    )
    .expect("legacy row");
    drop(db);
    assert_eq!(env.run(&["run", a]).ok(), "2026-01-01\n");
    let list = json(env.run(&["state", "list", "--json"]).ok());
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["script"], std::fs::canonicalize(a).expect("canonical").display().to_string().as_str());
}

#[test]
fn a_key_file_outside_the_home_is_used_and_never_written() {
    let env = Env::new();
    let outside = env.work.path().join("secrets/master.key");
    std::fs::create_dir_all(outside.parent().unwrap()).unwrap();
    use base64::Engine as _;
    std::fs::write(&outside, base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap();
    env.set_env("LINKRUN_MASTER_KEY_FILE", outside.to_str().unwrap());
    let status: serde_json::Value = serde_json::from_str(env.run(&["vault", "status", "--json"]).ok()).unwrap();
    assert_eq!(status["key_source"], format!("LINKRUN_MASTER_KEY_FILE {}", outside.display()));
    assert!(!env.home_path().join("master.key").exists(), "no key file is made in the home");
    // The same vault opens with the same key given another way, and not with another.
    env.unset_env("LINKRUN_MASTER_KEY_FILE");
    env.set_env("LINKRUN_MASTER_KEY", &base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    env.run(&["vault", "status"]).ok();
    env.unset_env("LINKRUN_MASTER_KEY");
    env.set_env("LINKRUN_MASTER_KEY_FILE", "/nonexistent/key");
    let e = env.run(&["vault", "status"]).fails(3);
    assert!(e.contains("/nonexistent/key"), "{e}");
}
