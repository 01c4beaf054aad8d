//! `linkrun demo`, the main job, end to end: an in-process sandbox, real connections authorised
//! through the OAuth flow, both example scripts, and the sandbox's final state.
#![allow(clippy::unwrap_used)]

mod common;

use common::Env;

#[test]
fn the_demo_runs_both_use_cases_and_leaves_the_expected_state() {
    let env = Env::new();
    // The sandbox's clients are fixed (they are printed by `linkrun sandbox`); the demo itself
    // must not print them, and its vault must hold them sealed.
    env.secret("sandbox-secret-org-us-c0ffeec0ffeec0ffeec0ffee");
    env.secret("sandbox-secret-org-in-c0ffeec0ffeec0ffeec0ffee");
    let home = env.home_path().join("demo");
    let out = env.run(&["demo", "--json", "--home", home.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(v["ok"], true, "{v:#}");
    let sync = &v["scripts"][0];
    assert_eq!(sync["script"], "zoho_org_sync.rhai");
    let first = &sync["runs"][0];
    assert_eq!(first["read"], 300, "every seeded lead of Org A is read: {first}");
    assert_eq!(first["failed"], 0);
    assert_eq!(first["inserted"].as_u64().unwrap() + first["updated"].as_u64().unwrap(), 300);
    assert_eq!(sync["runs"][1]["read"], 0, "the second run copies nothing new");
    let visitor = &v["scripts"][1];
    let statuses = |run: &serde_json::Value| -> Vec<(String, String)> {
        run.as_array()
            .unwrap()
            .iter()
            .map(|s| (s["step"].as_str().unwrap().to_string(), s["status"].as_str().unwrap().to_string()))
            .collect()
    };
    let ok = |s: &str| s.to_string();
    assert_eq!(
        statuses(&visitor["runs"][0]),
        vec![
            (ok("lead"), ok("success")),
            (ok("contact"), ok("success")),
            (ok("deal"), ok("success")),
            (ok("ticket"), ok("success")),
            (ok("list member"), ok("success"))
        ]
    );
    let second = statuses(&visitor["runs"][1]);
    assert_eq!(second[4], (ok("list member"), ok("connection invalid")), "a revoked connection shows as such");
    assert!(second[..4].iter().all(|(_, s)| s == "success"), "{second:?}");
    let state = &v["sandbox_state"];
    assert_eq!(state["org_a_leads"], 302, "300 seeded + 2 visitors");
    assert_eq!(state["org_b_leads"], 120 + first["inserted"].as_u64().unwrap());
    assert_eq!(state["org_a_tickets"], 2);
    assert_eq!(state["org_a_list_members"], 1);
}

#[test]
fn the_demo_text_tells_each_step() {
    let env = Env::new();
    let out = env.run(&["demo"]);
    let text = out.ok();
    for line in [
        "1. create connections",
        "2. authorise them",
        "3. scripts/zoho_org_sync.rhai",
        "   second run: read 0, inserted 0, updated 0, failed 0",
        "4. scripts/visitor_to_crm.rhai",
        "list member: connection invalid",
        "5. sandbox now: Org A 302 leads",
    ] {
        assert!(text.contains(line), "`{line}` in:\n{text}");
    }
}
