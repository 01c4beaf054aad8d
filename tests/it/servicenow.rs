//! The ServiceNow use cases against the sandbox: every object into Zoho CRM, contacts into Leads,
//! incremental second runs, and the two conflict rules.

use crate::common::Env;
use linkrun_sandbox::server::{Options, Sandbox};

fn start() -> (Sandbox, Env) {
    let sandbox = Sandbox::new(&Options::default()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let sb = sandbox.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let (addr, handle) = sb.serve(0).await.unwrap();
            tx.send(addr).unwrap();
            let _ = handle.await;
        });
    });
    let addr = rx.recv().unwrap();
    let env = Env::new();
    env.set_env("LINKRUN_SANDBOX_URL", &format!("http://{addr}"));
    let org = &sandbox.orgs[0];
    env.secret(&org.client_secret);
    env.secret(&sandbox.sn.client_secret);
    env.secret(&sandbox.sn.password);
    env.run(&[
        "connection",
        "create",
        "crm_a",
        "--service",
        "zoho_crm",
        "--dc",
        "sandbox",
        "--param",
        &format!("client_id={}", org.client_id),
        "--param",
        &format!("client_secret={}", org.client_secret),
    ])
    .ok();
    let code = sandbox.provider.mint_self_client_code(&org.client_id, &["ZohoCRM.modules.ALL"]);
    env.run(&["connection", "authorize", "crm_a", "--code", &code]).ok();
    let sn = &sandbox.sn;
    env.run(&[
        "connection",
        "create",
        "sn",
        "--service",
        "servicenow",
        "--instance",
        "sandbox",
        "--param",
        &format!("client_id={}", sn.client_id),
        "--param",
        &format!("client_secret={}", sn.client_secret),
        "--param",
        &format!("username={}", sn.username),
        "--param",
        &format!("password={}", sn.password),
    ])
    .ok();
    env.run(&["connection", "authorize", "sn"]).ok();
    (sandbox, env)
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
    let (sandbox, env) = start();
    for (object, table, module) in [
        ("vendors", "core_company", "Vendors"),
        ("purchase_orders", "proc_po", "Purchase_Orders"),
        ("products", "cmdb_model", "Products"),
        ("cases", "sn_customerservice_case", "Cases"),
    ] {
        let first = sync(&env, &[&format!("object={object}")]);
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
        let second = sync(&env, &[&format!("object={object}")]);
        // Only records of the checkpoint's own second are read again, and nothing is written.
        assert!(second["sn_to_crm"]["read"].as_u64().unwrap() < read, "{object}: {second}");
        assert_eq!(
            (second["sn_to_crm"]["inserted"].as_u64(), second["sn_to_crm"]["updated"].as_u64()),
            (Some(0), Some(0)),
            "{object}: {second}"
        );
    }
    let leads_before = sandbox.crm.count("us", "Leads");
    let into_leads = sync(&env, &["object=contacts", "target=Leads"]);
    assert_eq!(
        sandbox.crm.count("us", "Leads"),
        leads_before + into_leads["sn_to_crm"]["inserted"].as_u64().unwrap() as usize
    );
    assert!(into_leads["sn_to_crm"]["inserted"].as_u64().unwrap() > 0);
}

#[test]
fn conflict_rules_decide_which_side_keeps_its_value() {
    let (sandbox, env) = start();
    sync(&env, &["object=contacts"]);
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
    let kept = sync(&env, &["object=contacts", "conflict=crm_wins"]);
    assert_eq!(kept["sn_to_crm"]["updated"], 0, "{kept}");
    assert_eq!(sandbox.crm.find_by_email("us", "Contacts", &email).unwrap()["Title"], "Title from CRM");
    // Move the ServiceNow side again and let it win this time.
    let patch2 = patch.replace("Title from ServiceNow", "Newer title from ServiceNow");
    env.script(&patch2, &[]).ok();
    let won = sync(&env, &["object=contacts", "conflict=servicenow_wins"]);
    assert_eq!(won["sn_to_crm"]["updated"], 1, "{won}");
    assert_eq!(sandbox.crm.find_by_email("us", "Contacts", &email).unwrap()["Title"], "Newer title from ServiceNow");
}
