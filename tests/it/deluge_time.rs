//! Deluge dates run in the org's time zone: `[deluge] time_zone` of `linkrun.toml`, else the
//! machine's; a zone name the database lacks stops the run with exit 2.

use crate::common::Env;

/// The seconds `LINKRUN_TEST_CLOCK_OFFSET` adds to move linkrun's clock to
/// 2025-12-15T12:00:00Z (winter in New York, so no daylight saving time).
fn offset_to_december() -> String {
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    (1_765_800_000 - real).to_string()
}

fn with_zone(zone: &str) -> Env {
    let env = Env::new();
    std::fs::write(env.home_path().join("linkrun.toml"), format!("[deluge]\ntime_zone = \"{zone}\"\n")).expect("write");
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", &offset_to_december());
    env
}

const SCRIPT: &str = r#"[zoho.currenttime.toString("XXX"), today().toString("yyyy-MM-dd"), deluge_date("15-Dec-2025 09:00:00").toString("yyyy-MM-dd'T'HH:mm:ssXXX")]"#;

#[test]
fn the_configured_zone_gives_the_offset_crm_needs() {
    let out = with_zone("Asia/Kolkata").script(SCRIPT, &["--json"]);
    assert_eq!(out.ok().trim(), r#"["+05:30","2025-12-15","2025-12-15T09:00:00+05:30"]"#);
    let out = with_zone("America/New_York").script(SCRIPT, &["--json"]);
    assert_eq!(out.ok().trim(), r#"["-05:00","2025-12-15","2025-12-15T09:00:00-05:00"]"#);
}

#[test]
fn without_a_setting_the_machine_zone_from_tz_is_used() {
    let env = Env::new();
    env.set_env("TZ", "Asia/Tokyo");
    env.set_env("LINKRUN_TEST_CLOCK_OFFSET", &offset_to_december());
    let out = env.script(r#"zoho.currenttime.toString("XXX HH")"#, &[]);
    assert_eq!(out.ok().trim(), "+09:00 21");
}

#[test]
fn an_unknown_zone_is_a_usage_error_naming_the_file_and_the_value() {
    let env = with_zone("Mars/Olympus");
    let out = env.script("1", &[]);
    let path = env.home_path().join("linkrun.toml");
    assert_eq!(
        out.fails(2),
        format!(
            "`{}` is not valid: `[deluge] time_zone` is `Mars/Olympus`, which is not an IANA time zone name such as `Europe/Berlin` or `Asia/Kolkata`; fix the file (see the README's `linkrun.toml` section)",
            path.display()
        )
    );
}
