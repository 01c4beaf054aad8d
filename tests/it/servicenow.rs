//! The ServiceNow use cases against the sandbox: every object into Zoho CRM through the built-in
//! syncs, contacts into Leads, incremental second runs; and the hand-written example script's two
//! conflict rules.

use crate::common::Env;
use crate::common::sandbox::Fixture;
use crate::sync::sync_run;

fn start() -> Fixture {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    f.connect_servicenow("sn");
    f
}

fn sync(env: &Env, args: &[&str]) -> serde_json::Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/servicenow_contacts_to_crm.rhai");
    let mut all = vec!["run", script.to_str().unwrap(), "--json"];
    for a in args {
        all.push("--arg");
        all.push(a);
    }
    serde_json::from_str(env.run(&all).ok()).unwrap()
}

/// Every object of the ServiceNow extension, through the built-in syncs in the order their
/// references need (a case names its contact and account, a purchase order its vendor): each
/// record reaches CRM once, and a second run reads only the checkpoint's own second and writes
/// nothing.
#[test]
fn every_object_reaches_crm_once() {
    let f = start();
    let sandbox = &f.sandbox;
    for (sync, object, table, module) in [
        ("servicenow_accounts", "accounts", "customer_account", "Accounts"),
        ("servicenow_vendors", "vendors", "core_company", "Vendors"),
        ("servicenow_purchase_orders", "purchase_orders", "proc_po", "Purchase_Orders"),
        ("servicenow_products", "products", "cmdb_model", "Products"),
        ("servicenow_contacts", "contacts", "customer_contact", "Contacts"),
        ("servicenow_cases", "cases", "sn_customerservice_case", "Cases"),
    ] {
        let crm_before = sandbox.crm.count("us", module);
        let expected = if object == "vendors" {
            sandbox.servicenow.records(table).iter().filter(|r| r["vendor"] == "true").count()
        } else {
            sandbox.servicenow.count(table)
        };
        let first = sync_run(&f, &[sync]);
        let c = &first["objects"][object]["servicenow_to_crm"];
        assert_eq!(c["failed"], 0, "{object}: {first}");
        assert_eq!(c["read"].as_u64().unwrap() as usize, expected, "{object}: {first}");
        assert_eq!(sandbox.crm.count("us", module), crm_before + c["created"].as_u64().unwrap() as usize, "{object}");
        assert_eq!(c["created"].as_u64().unwrap() as usize, expected, "{object}: {first}");
        let second = sync_run(&f, &[sync]);
        let c2 = &second["objects"][object]["servicenow_to_crm"];
        assert!(c2["read"].as_u64().unwrap() < c["read"].as_u64().unwrap(), "{object}: {second}");
        for (d, counts) in second["objects"][object].as_object().unwrap() {
            assert_eq!(
                (counts["created"].as_u64(), counts["updated"].as_u64()),
                (Some(0), Some(0)),
                "{object} {d}: {second}"
            );
        }
    }
    // The extension's "CRM tab": contacts into Leads instead.
    let leads_before = sandbox.crm.count("us", "Leads");
    let into_leads = sync_run(
        &f,
        &[
            "servicenow_contacts",
            "--set",
            "target=Leads",
            "--set",
            "type=one_way",
            "--set",
            "direction=servicenow_to_crm",
        ],
    );
    let created = into_leads["objects"]["contacts"]["servicenow_to_crm"]["created"].as_u64().unwrap() as usize;
    assert_eq!(created, sandbox.servicenow.count("customer_contact"), "{into_leads}");
    // Each contact is a lead now; one whose address a lead already had is that lead, updated
    // (CRM's upsert matches on Email), not a second one.
    let leads = sandbox.crm.records("us", "Leads");
    let lead_emails: std::collections::BTreeSet<String> =
        leads.iter().filter_map(|l| l["Email"].as_str()).map(str::to_lowercase).collect();
    for c in sandbox.servicenow.records("customer_contact") {
        let e = c["email"].as_str().unwrap_or_default().to_lowercase();
        assert!(e.is_empty() || lead_emails.contains(&e), "{e} is not a lead");
    }
    assert!(leads.len() > leads_before && leads.len() <= leads_before + created);
}

#[test]
fn conflict_rules_decide_which_side_keeps_its_value() {
    let f = start();
    let (sandbox, env) = (&f.sandbox, &f.env);
    sync(env, &["object=contacts"]);
    // The same contact gets a different title in each system.
    let contact = sandbox
        .servicenow
        .records("customer_contact")
        .into_iter()
        .find(|c| c["email"].as_str().is_some_and(|e| !e.is_empty()))
        .unwrap();
    let email = contact["email"].as_str().unwrap().to_string();
    let crm = sandbox.crm.find_by_email("us", "Contacts", &email).unwrap();
    sandbox.crm.modify_for_test("us", "Contacts", crm["id"].as_str().unwrap(), "Title", "Title from CRM".into());
    let sys_id = contact["sys_id"].as_str().unwrap();
    let patch = format!(
        "invoke_url(#{{ url: \"/api/now/table/customer_contact/{sys_id}\", type: \"PATCH\", body: #{{ title: \"Title from ServiceNow\" }}, connection: \"sn\" }}).result.title"
    );
    assert_eq!(env.script(&patch, &[]).ok(), "Title from ServiceNow\n");
    let kept = sync(env, &["object=contacts", "conflict=crm_wins"]);
    assert_eq!(kept["sn_to_crm"]["updated"], 0, "{kept}");
    assert_eq!(sandbox.crm.find_by_email("us", "Contacts", &email).unwrap()["Title"], "Title from CRM");
    // Move the ServiceNow side again and let it win this time.
    let patch2 = patch.replace("Title from ServiceNow", "Newer title from ServiceNow");
    env.script(&patch2, &[]).ok();
    let won = sync(env, &["object=contacts", "conflict=servicenow_wins"]);
    assert_eq!(won["sn_to_crm"]["updated"], 1, "{won}");
    assert_eq!(sandbox.crm.find_by_email("us", "Contacts", &email).unwrap()["Title"], "Newer title from ServiceNow");
}
