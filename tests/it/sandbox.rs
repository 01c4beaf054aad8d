//! `linkrun sandbox` as a user runs it, and the org-sync use case against a large org (more than
//! 2,000 leads, so `page_token` paging is exercised) with an incremental second and third run.

use std::io::{BufRead, Read, Write};

use crate::common::Env;
use crate::common::sandbox::Fixture;
use linkrun_sandbox::server::Options;

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn the_sandbox_command_prints_where_it_is_and_how_to_connect() {
    let env = Env::new();
    let mut child = env.spawn(&["sandbox", "--port", "0", "--latency-ms", "5", "--rate-limit", "1000"]);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("Knobs:") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        banner.push_str(&line);
    }
    // `--port 0`: the sandbox picks a free port and says which (no free-port race).
    let port = crate::sandbox_data::banner_port(&banner);
    let base = format!("http://127.0.0.1:{port}");
    assert!(
        banner.starts_with(&format!(
            "linkrun sandbox: emulators of Zoho Accounts (OAuth), CRM, Desk and Campaigns, and ServiceNow (OAuth and Table API) at {base}"
        )),
        "{banner}"
    );
    for part in [
        "Org A (us): client_id 1000.SANDBOX1",
        "Org B (in): client_id 1000.SANDBOX2",
        "linkrun connection create crm_a --service zoho_crm --dc sandbox",
        "linkrun connection authorize crm_a --code",
    ] {
        assert!(banner.contains(part), "`{part}` in\n{banner}");
    }
    let knobs = http_get(port, "/_sandbox/knobs");
    assert!(knobs.ends_with("{\"latency_ms\":5,\"failure_rate\":0.0,\"rate_limit_per_minute\":1000}"), "{knobs}");
    let unauth = http_get(port, "/crm/v7/Leads?fields=Last_Name");
    assert!(unauth.starts_with("HTTP/1.0 401") || unauth.starts_with("HTTP/1.1 401"), "{unauth}");
    assert!(unauth.contains("AUTHENTICATION_FAILURE"));
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn org_sync_pages_past_2000_leads_and_is_incremental() {
    let f = Fixture::with(&Options { large: true, ..Default::default() });
    f.connect_org("crm_a", "zoho_crm", 0);
    f.connect_org("crm_b", "zoho_crm", 1);
    let (sandbox, env) = (&f.sandbox, &f.env);
    let a_leads = sandbox.crm.count("us", "Leads");
    assert!(a_leads > 2000, "{a_leads}");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/zoho_org_sync.rhai");
    let run = || -> serde_json::Value {
        serde_json::from_str(env.run(&["run", script.to_str().unwrap(), "--json"]).ok()).unwrap()
    };
    let first = run();
    assert_eq!(first["read"], a_leads);
    assert_eq!(first["failed"], 0, "{first}");
    assert_eq!(sandbox.crm.count("in", "Leads"), 120 + first["inserted"].as_u64().unwrap() as usize);
    assert_eq!(run()["read"], 0);
    // One lead changes in Org A: the next run copies exactly that one, as an update.
    let one: serde_json::Value = serde_json::from_str(
        env.script("invoke_url(#{ url: \"/crm/v7/Leads\", parameters: #{ fields: \"Email\", per_page: 1 }, connection: \"crm_a\" }).data[0]", &["--json"]).ok(),
    )
    .unwrap();
    let lead = sandbox.crm.find_by_email("us", "Leads", one["Email"].as_str().unwrap()).unwrap();
    sandbox.crm.modify_for_test("us", "Leads", lead["id"].as_str().unwrap(), "Lead_Status", "Contacted".into());
    let third = run();
    assert_eq!((third["read"].as_u64(), third["updated"].as_u64()), (Some(1), Some(1)), "{third}");
    let copied = sandbox.crm.find_by_email("in", "Leads", lead["Email"].as_str().unwrap()).unwrap();
    assert_eq!(copied["Lead_Status"], "Contacted");
}
