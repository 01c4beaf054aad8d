//! The ServiceNow use cases against the sandbox: every object into Zoho CRM, contacts into Leads,
//! incremental second runs, and the two conflict rules.

use crate::common::Env;
use crate::common::sandbox::Fixture;

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

#[test]
fn every_object_reaches_crm_once() {
    let f = start();
    let (sandbox, env) = (&f.sandbox, &f.env);
    for (object, table, module) in [
        ("vendors", "core_company", "Vendors"),
        ("purchase_orders", "proc_po", "Purchase_Orders"),
        ("products", "cmdb_model", "Products"),
        ("cases", "sn_customerservice_case", "Cases"),
    ] {
        let first = sync(env, &[&format!("object={object}")]);
        let read = first["sn_to_crm"]["read"].as_u64().unwrap();
        assert!(read > 0, "{object}: {first}");
        assert_eq!(first["sn_to_crm"]["failed"], serde_json::json!([]), "{object}: {first}");
        let expected = if object == "vendors" {
            sandbox.servicenow.records(table).iter().filter(|r| r["vendor"] == "true").count()
        } else {
            sandbox.servicenow.count(table)
        };
        assert_eq!(read as usize, expected, "{object}");
        assert_eq!(
            sandbox.crm.count("us", module) as u64,
            first["sn_to_crm"]["inserted"].as_u64().unwrap(),
            "{object}"
        );
        let second = sync(env, &[&format!("object={object}")]);
        // Only records of the checkpoint's own second are read again, and nothing is written.
        assert!(second["sn_to_crm"]["read"].as_u64().unwrap() < read, "{object}: {second}");
        assert_eq!(
            (second["sn_to_crm"]["inserted"].as_u64(), second["sn_to_crm"]["updated"].as_u64()),
            (Some(0), Some(0)),
            "{object}: {second}"
        );
    }
    let leads_before = sandbox.crm.count("us", "Leads");
    let into_leads = sync(env, &["object=contacts", "target=Leads"]);
    assert_eq!(
        sandbox.crm.count("us", "Leads"),
        leads_before + into_leads["sn_to_crm"]["inserted"].as_u64().unwrap() as usize
    );
    assert!(into_leads["sn_to_crm"]["inserted"].as_u64().unwrap() > 0);
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
