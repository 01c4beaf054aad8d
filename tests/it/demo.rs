//! `linkrun demo`, the main job, end to end: an in-process sandbox, real connections authorised
//! through the OAuth flow, both example scripts, and the sandbox's final state.

use crate::common::Env;

#[test]
fn the_demo_runs_both_use_cases_and_leaves_the_expected_state() {
    let env = Env::new();
    // The sandbox's clients are fixed (they are printed by `linkrun sandbox`); the demo itself
    // must not print them, and its vault must hold them sealed.
    env.secret("sandbox-secret-org-us-c0ffeec0ffeec0ffeec0ffee");
    env.secret("sandbox-secret-org-in-c0ffeec0ffeec0ffeec0ffee");
    env.secret("sandbox-servicenow-secret-5eed5eed5eed5eed5eed5eed");
    env.secret("sandbox-integration-password-9a9a9a9a9a9a");
    let home = env.home_path().join("demo");
    let out = env.run(&["demo", "--json", "--home", home.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert!(!out.stderr.contains("temporary folder"), "a home of its own is kept: {}", out.stderr);
    assert_eq!(v["ok"], true, "{v:#}");
    let sync = &v["scripts"][0];
    assert_eq!(sync["script"], "zoho_org_sync.rhai");
    let first = &sync["runs"][0];
    assert_eq!(first["read"], 300, "every seeded lead of Org A is read: {first}");
    assert_eq!(first["failed"], 0);
    assert_eq!(first["inserted"].as_u64().unwrap() + first["updated"].as_u64().unwrap(), 300);
    assert_eq!(sync["runs"][1]["read"], 0, "the second run copies nothing new");
    let visitor = &v["scripts"][1];
    assert_eq!(visitor["script"], "visitor_to_crm.rhai");
    let outcomes = |run: &serde_json::Value| -> Vec<(String, String)> {
        run["blocks"]
            .as_array()
            .unwrap_or_else(|| panic!("{run}"))
            .iter()
            .map(|s| (s["block"].as_str().unwrap().to_string(), s["outcome"].as_str().unwrap().to_string()))
            .collect()
    };
    let ok = |s: &str| s.to_string();
    let first_visit = &visitor["runs"][0];
    assert_eq!(
        outcomes(first_visit),
        vec![
            (ok("lead"), ok("success")),
            (ok("contact"), ok("success")),
            (ok("deal"), ok("success")),
            (ok("ticket"), ok("success")),
            (ok("list member"), ok("success"))
        ]
    );
    for id in ["lead_id", "contact_id", "deal_id", "ticket_id", "ticket_number"] {
        assert!(first_visit[id].as_str().is_some_and(|s| !s.is_empty()), "{id}: {first_visit}");
    }
    let second = outcomes(&visitor["runs"][1]);
    assert_eq!(second[4], (ok("list member"), ok("connection invalid")), "a revoked connection shows as such");
    assert!(second[..4].iter().all(|(_, s)| s == "success"), "{second:?}");
    // The Deluge version, for the first visitor again: the CRM has the lead and contact.
    let dg = &v["scripts"][4];
    assert_eq!(dg["script"], "visitor_to_crm.dg");
    let returning = &dg["runs"][0];
    assert_eq!(
        outcomes(returning),
        vec![
            (ok("lead"), ok("already exists")),
            (ok("contact"), ok("already exists")),
            (ok("deal"), ok("success")),
            (ok("ticket"), ok("success")),
            (ok("list member"), ok("connection invalid"))
        ]
    );
    assert_eq!(
        (&returning["lead_id"], &returning["contact_id"]),
        (&first_visit["lead_id"], &first_visit["contact_id"])
    );
    let state = &v["sandbox_state"];
    assert_eq!(
        state["org_a_leads"], 303,
        "300 seeded + 2 visitors (the third visit is a returning one) + 1 for the events"
    );
    assert_eq!(
        state["org_b_leads"],
        120 + first["inserted"].as_u64().unwrap() + 1,
        "+1: the events' lead, copied by the webhook"
    );
    assert_eq!(state["org_a_tickets"], 3);
    assert_eq!(state["org_a_list_members"], 1);

    // ServiceNow: contacts both ways, then calls.
    let sn = &v["scripts"][2];
    assert_eq!(sn["sync"], "servicenow_contacts");
    let first = &sn["runs"][0]["objects"]["contacts"];
    assert_eq!(first["servicenow_to_crm"]["read"], 300, "{first}");
    assert_eq!(first["servicenow_to_crm"]["failed"], 0, "{first}");
    assert_eq!(first["crm_to_servicenow"]["failed"], 0, "{first}");
    let created_in_sn = first["crm_to_servicenow"]["created"].as_u64().unwrap();
    assert!(created_in_sn > 0, "CRM-only contacts reach ServiceNow: {first}");
    let second = &sn["runs"][1]["objects"]["contacts"];
    for d in ["servicenow_to_crm", "crm_to_servicenow"] {
        for k in ["created", "updated"] {
            assert_eq!(second[d][k], 0, "the second run changes nothing: {second}");
        }
    }
    assert_eq!(state["servicenow_contacts"], 300 + created_in_sn);
    let calls = &v["scripts"][3];
    assert_eq!(calls["script"], "call_to_case.rhai");
    let known = &calls["runs"][0];
    let unknown = &calls["runs"][1];
    assert!(known["contact"]["sys_id"].as_str().is_some_and(|s| s.len() == 32), "{known}");
    assert_eq!(unknown["contact"], serde_json::Value::Null);
    assert!(unknown["message"].as_str().unwrap().starts_with("no contact matches +44 20 7946 0000"));
    let cases = state["call_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for c in cases {
        assert_eq!(c["contact_type"], "phone");
        assert!(c["u_call_recording_url"].as_str().unwrap().starts_with("https://recordings.example.com/calls/"));
    }
    let with_contact: Vec<_> = cases.iter().filter(|c| c["contact"].as_str().is_some_and(|s| !s.is_empty())).collect();
    assert_eq!(with_contact.len(), 1, "{cases:?}");
    assert_eq!(with_contact[0]["contact"], known["contact"]["sys_id"]);
    // Serve: the lead reached Org B through the workflow webhook; the call popped the contact
    // and opened a case with the recording.
    let events = &v["events"];
    assert!(events["lead_ms"].as_u64().is_some_and(|ms| ms < 5_000), "{events}");
    assert!(events["screen_pop"]["contact"]["sys_id"].is_string(), "{events}");
    assert!(events["case"]["case"]["number"].as_str().is_some_and(|n| n.starts_with("CS")), "{events}");
    let triggers: Vec<&str> =
        events["runs"].as_array().unwrap().iter().map(|r| r["trigger"].as_str().unwrap()).collect();
    assert!(triggers.contains(&"lead_to_org_b") && triggers.contains(&"call_events"), "{triggers:?}");
    assert_eq!(events["scheduled"]["status"], "ok", "the schedule ran the ServiceNow sync: {events}");
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
        "scripts/visitor_to_crm.dg, the same integration in Deluge",
        "lead: already exists, contact: already exists, deal: success, ticket: success, list member: connection invalid",
        "5. ServiceNow (instance `sandbox`)",
        "sync servicenow_contacts (built in, syncs/servicenow_contacts.toml): contacts both ways",
        "no contact matches +44 20 7946 0000",
        "6. linkrun serve: the same integrations, started by events instead of by hand",
        "created in Org A reached Org B through the workflow webhook in",
        "answered opened case CS",
        "schedule servicenow_sync (every 2 s here, 15 min as shipped): run ",
        "7. sandbox now: Org A 303 leads",
        "(incremental: the second run asks Org A only for leads modified after the newest Modified_Time the first run copied",
        "(incremental: each side is read from its checkpoint;",
    ] {
        assert!(text.contains(line), "`{line}` in:\n{text}");
    }
    assert!(text.starts_with("linkrun demo: sandbox of Zoho and ServiceNow at http://127.0.0.1:"), "{text}");
    assert!(
        out.stderr.contains(
            "is a temporary folder, removed at the end; to keep the vault and scripts, run `linkrun demo --home DIR`"
        ),
        "{}",
        out.stderr
    );
}
