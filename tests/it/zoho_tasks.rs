//! The `zoho.crm.*` and `zoho.desk.*` integration tasks against the sandbox: each writes or reads
//! what a user would then find in the sandbox's state; errors come back as Deluge's error maps;
//! without a connection argument the service's default connection is used, and without one the
//! run ends with exit 4 naming `linkrun connection default`. Also `linkrun connection default`.

pub use crate::common::sandbox::Fixture;
use serde_json::Value;

#[test]
fn zoho_tasks_crm_create_read_update_upsert_and_search_a_lead() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    let r = f.json(
        r#"
        let made = zoho.crm.createRecord("Leads", #{ Last_Name: "Doe", First_Name: "Jo", Email: "jo.doe@tasks.example", Company: "Zylker" }, "crm_a");
        let id = made.id;
        let read = zoho.crm.getRecordById("Leads", id, "crm_a");
        let updated = zoho.crm.updateRecord("Leads", id, #{ Lead_Status: "Contacted" }, #{ trigger: ["workflow"] }, "crm_a");
        let found = zoho.crm.searchRecords("Leads", "(Email:equals:jo.doe@tasks.example)", "crm_a");
        let upserted = zoho.crm.upsert("Leads", #{ Last_Name: "Doe", Email: "jo.doe@tasks.example", Phone: "+1 555 0100" }, #{ duplicate_check_fields: ["Email"] }, "crm_a");
        let page = zoho.crm.getRecords("Leads", 1, 5, #{ fields: "Last_Name,Email" }, "crm_a");
        #{ made: made, read: read, updated: updated, found: found, upserted: upserted, page: page }
        "#,
    );
    let made = &r["made"];
    let id = made["id"].as_str().unwrap();
    assert_eq!(id.len(), 19, "{made}");
    for k in ["Created_Time", "Modified_Time", "Created_By", "Modified_By"] {
        assert!(!made[k].is_null(), "{k} in {made}");
    }
    assert_eq!(r["read"]["Email"], "jo.doe@tasks.example");
    assert_eq!(r["updated"]["id"], id);
    assert_eq!(r["found"].as_array().unwrap().len(), 1, "{}", r["found"]);
    assert_eq!(r["found"][0]["id"], id);
    assert_eq!((r["upserted"]["id"].as_str(), r["upserted"]["action"].as_str()), (Some(id), Some("update")));
    assert_eq!(r["page"].as_array().unwrap().len(), 5);
    // What a user would see in the sandbox.
    let lead = f.sandbox.crm.find_by_email("us", "Leads", "jo.doe@tasks.example").unwrap();
    assert_eq!((lead["Lead_Status"].as_str(), lead["Phone"].as_str()), (Some("Contacted"), Some("+1 555 0100")));
    assert_eq!(lead["id"], id);
}

#[test]
fn zoho_tasks_return_the_error_map_of_a_bad_record_and_an_empty_list_for_no_match() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    let before = f.sandbox.crm.count("us", "Leads");
    let r = f.json(
        r#"
        let bad = zoho.crm.createRecord("Leads", #{ Company: "No Name Inc" }, "crm_a");
        let none = zoho.crm.searchRecords("Leads", "(Email:equals:nobody@nowhere.example)", 1, 10, "crm_a");
        let all = zoho.crm.getRecords("Leads", "crm_a");
        let by_email = zoho.crm.searchRecords("Leads", "email:nobody@nowhere.example", "crm_a");
        let bad_name = ""; try { zoho.crm.getRecordById("../Leads", 1, "crm_a"); } catch (e) { bad_name = e.kind + "|" + e.message; }
        let bad_link = ""; try { zoho.crm.getRecordById("Leads", 1, 7); } catch (e) { bad_link = e.kind + "|" + e.message; }
        #{ bad: bad, none: none, count: all.len(), first: all[0], by_email: by_email, bad_name: bad_name, bad_link: bad_link }
        "#,
    );
    assert_eq!(
        r["bad_name"],
        "bad_request|`module` of zoho.crm.getRecordById must be an API name (letters, digits and _), not `../Leads`"
    );
    assert_eq!(
        r["bad_link"],
        "bad_request|`zoho.crm.getRecordById(module, id[, connection])` got too many arguments: its last argument, the connection, must be text, not int"
    );
    assert_eq!(r["bad"]["code"], "MANDATORY_NOT_FOUND", "{}", r["bad"]);
    assert_eq!(r["bad"]["status"], "error");
    assert_eq!(r["bad"]["details"]["api_name"], "Last_Name");
    assert!(r["bad"]["message"].is_string());
    assert_eq!(r["none"], serde_json::json!([]));
    assert_eq!(r["by_email"], serde_json::json!([]));
    // Without `fields`, the list asks for the common fields (the sandbox has no /settings/fields).
    assert_eq!(r["count"], 200);
    assert!(r["first"]["Last_Name"].is_string(), "{}", r["first"]);
    assert_eq!(f.sandbox.crm.count("us", "Leads"), before, "nothing was created");
}

#[test]
fn zoho_tasks_without_a_connection_use_the_default_and_exit_4_without_one() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    let script = r#"zoho.crm.createRecord("Leads", #{ Last_Name: "Default", Email: "default@tasks.example" }).id"#;
    // Only one zoho_crm connection exists, and still it is not guessed.
    let msg = f.env.script(script, &[]).fails(4);
    assert!(
        msg.starts_with("`zoho.crm.createRecord` has no connection: service `zoho_crm` has no default connection; run `linkrun connection default zoho_crm LINK`, or pass the link name as the last argument (uncaught in `script.rhai` at line 1"),
        "{msg}"
    );
    let caught = f.json(
        r#"let r = "no error"; try { zoho.crm.getRecords("Leads"); } catch (e) { r = #{ kind: e.kind, connection: e.connection }; } r"#,
    );
    assert_eq!(caught, serde_json::json!({"kind": "connection", "connection": null}));
    f.env.run(&["connection", "default", "zoho_crm", "crm_a"]).ok();
    let id = f.env.script(script, &[]).ok().trim().to_string();
    let lead = f.sandbox.crm.find_by_email("us", "Leads", "default@tasks.example").unwrap();
    assert_eq!(lead["id"], id.as_str());
    // The tasks' requests are traced like invoke_url's.
    let traced = f.env.script(r#"zoho.crm.getRecordById("Leads", "1", "crm_a")"#, &["--verbose"]);
    traced.ok();
    assert!(traced.stderr.contains(&format!("linkrun: GET {}/crm/v7/Leads/1 -> ", f.base)), "{}", traced.stderr);
    // A revoked connection is the same exit-4 connection error as for invoke_url.
    f.env.run(&["connection", "revoke", "crm_a"]).ok();
    let msg = f.env.script(script, &[]).fails(4);
    assert!(msg.starts_with("connection `crm_a` was revoked: run `linkrun connection authorize crm_a`"), "{msg}");
    // An unknown connection named explicitly is the same catchable error invoke_url raises.
    let e = f.json(r#"let r = (); try { zoho.crm.getRecordById("Leads", 1, "nope"); } catch (e) { r = e; } r"#);
    assert_eq!((e["kind"].as_str(), e["connection"].as_str()), (Some("connection"), Some("nope")));
    assert!(e["message"].as_str().unwrap().starts_with("unknown connection `nope`"), "{e}");
}

#[test]
fn zoho_tasks_desk_create_and_read_tickets() {
    let f = Fixture::new();
    f.connect("desk_a", "zoho_desk");
    f.env.run(&["connection", "default", "zoho_desk", "desk_a"]).ok();
    let org = f.sandbox.orgs[0].clone();
    let script = format!(
        r#"
        let t = zoho.desk.create({org_id}, "tickets", #{{ subject: "Printer on fire", departmentId: "{dept}", contact: #{{ lastName: "Doe", email: "doe@desk.example" }} }});
        let read = zoho.desk.getRecordById("{org_id}", "tickets", t.id);
        let list = zoho.desk.getRecords({org_id}, "tickets", 0, 50, "desk_a");
        let bad = zoho.desk.create({org_id}, "tickets", #{{ subject: "No department" }});
        let other = ""; try {{ zoho.desk.getRecords(999, "tickets"); }} catch (e) {{ other = e.kind + "|" + e.message; }}
        #{{ t: t, read: read, count: list.len(), bad: bad, other: other }}
        "#,
        org_id = org.desk_org_id,
        dept = org.desk_department_id
    );
    let r = f.json(&script);
    assert_eq!(r["t"]["subject"], "Printer on fire", "{}", r["t"]);
    assert_eq!(r["read"]["id"], r["t"]["id"]);
    let tickets = f.sandbox.desk.tickets("us");
    assert!(tickets.iter().any(|t| t["subject"] == "Printer on fire" && t["id"] == r["t"]["id"]), "{tickets:?}");
    assert_eq!(r["count"], tickets.len());
    // The Desk error map comes back as a value, as the API words it.
    assert_eq!(r["bad"]["errorCode"], "INVALID_DATA", "{}", r["bad"]);
    assert_eq!(r["bad"]["errors"][0]["fieldName"], "/departmentId", "{}", r["bad"]);
    assert_eq!(
        r["other"],
        "bad_request|orgId `999` of zoho.desk.getRecords is not the Desk organisation of connection `desk_a` (its `orgId` param): use a connection of that organisation"
    );
}

#[test]
fn connection_default_sets_shows_clears_and_checks_its_arguments() {
    let f = Fixture::new();
    let env = &f.env;
    let none = env.run(&["connection", "default", "zoho_crm"]);
    assert_eq!(none.ok(), "");
    assert_eq!(
        none.stderr,
        "service `zoho_crm` has no default connection: set one with `linkrun connection default zoho_crm LINK`\n"
    );
    f.connect("crm_a", "zoho_crm");
    f.connect("desk_a", "zoho_desk");
    let set = env.run(&["connection", "default", "zoho_crm", "crm_a"]);
    assert_eq!((set.ok(), set.stderr.as_str()), ("", "`crm_a` is now the default connection of `zoho_crm`\n"));
    assert_eq!(env.run(&["connection", "default", "zoho_crm"]).ok(), "crm_a\n");
    let doc: Value = serde_json::from_str(env.run(&["connection", "default", "zoho_crm", "--json"]).ok()).unwrap();
    assert_eq!(doc, serde_json::json!({"service": "zoho_crm", "default": "crm_a"}));
    let list = env.run(&["connection", "list"]).ok().to_string();
    assert!(list.contains("crm_a ") && list.contains("dc sandbox  (default)\n"), "{list}");
    let docs: Value = serde_json::from_str(env.run(&["connection", "list", "--json"]).ok()).unwrap();
    assert_eq!(docs[0]["default"], true);
    assert!(docs[1].get("default").is_none(), "{docs}");
    let show: Value = serde_json::from_str(env.run(&["connection", "show", "crm_a", "--json"]).ok()).unwrap();
    assert_eq!(show["default_of"], serde_json::json!(["zoho_crm"]));
    assert!(env.run(&["connection", "show", "crm_a"]).ok().contains("\ndefault of:  zoho_crm\n"));
    // Bad input: exit 2, with a clear message.
    let e = env.run(&["connection", "default", "zoho_crm", "desk_a"]).fails(2);
    assert_eq!(
        e,
        "connection `desk_a` belongs to service `zoho_desk`, not `zoho_crm`: choose a connection of `zoho_crm` (see `linkrun connection list`)"
    );
    let e = env.run(&["connection", "default", "zoho_crm", "nope"]).fails(2);
    assert!(
        e.starts_with("unknown connection `nope`: a default must be an existing connection of service `zoho_crm`"),
        "{e}"
    );
    let e = env.run(&["connection", "default", "no_such_service", "crm_a"]).fails(2);
    assert!(e.contains("no_such_service"), "{e}");
    assert_eq!(env.run(&["connection", "default", "zoho_crm", "Bad-Name"]).code, 2);
    assert_eq!(env.run(&["connection", "default", "zoho_crm", "crm_a", "--clear"]).code, 2);
    let json_err = env.run(&["connection", "default", "zoho_crm", "nope", "--json"]);
    assert_eq!(json_err.code, 2);
    assert!(json_err.stdout.starts_with("{\"error\":{\"kind\":\"usage\""), "{}", json_err.stdout);
    // Clearing, and deleting the default, clear it.
    let cleared = env.run(&["connection", "default", "zoho_crm", "--clear", "--json"]);
    let doc: Value = serde_json::from_str(cleared.ok()).unwrap();
    assert_eq!(doc, serde_json::json!({"service": "zoho_crm", "default": null, "cleared": "crm_a"}));
    env.run(&["connection", "default", "zoho_desk", "desk_a"]).ok();
    let deleted = env.run(&["connection", "delete", "desk_a", "--yes"]);
    deleted.ok();
    assert!(deleted.stderr.contains("service `zoho_desk` has no default connection now"), "{}", deleted.stderr);
    let doc: Value = serde_json::from_str(env.run(&["connection", "default", "zoho_desk", "--json"]).ok()).unwrap();
    assert_eq!(doc["default"], Value::Null);
}

#[test]
fn zoho_tasks_crm_bulk_update_changes_every_record_given() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    f.env.run(&["connection", "default", "zoho_crm", "crm_a"]).ok();
    let r = f.json(
        r#"
        let a = zoho.crm.createRecord("Leads", #{ Last_Name: "Bulk", Email: "bulk.a@tasks.example" });
        let b = zoho.crm.createRecord("Leads", #{ Last_Name: "Bulk", Email: "bulk.b@tasks.example" });
        zoho.crm.bulkUpdate("Leads", [#{ id: a.id, Lead_Status: "Junk Lead" }, #{ id: b.id, Lead_Status: "Junk Lead" }])
        "#,
    );
    let items = r["data"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["status"] == "success"), "{r}");
    for email in ["bulk.a@tasks.example", "bulk.b@tasks.example"] {
        assert_eq!(f.sandbox.crm.find_by_email("us", "Leads", email).unwrap()["Lead_Status"], "Junk Lead");
    }
}

// Related lists, Notes, org variables, Desk updates and search.

#[test]
fn zoho_tasks_crm_related_records_list_the_notes_of_a_lead() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    f.env.run(&["connection", "default", "zoho_crm", "crm_a"]).ok();
    let r = f.json(
        r#"
        let lead = zoho.crm.createRecord("Leads", #{ Last_Name: "Noted", Email: "noted@tasks.example" });
        let note = zoho.crm.createRecord("Notes", #{ Note_Title: "Call", Note_Content: "Called back", Parent_Id: lead.id, "$se_module": "Leads" });
        let notes = zoho.crm.getRelatedRecords("Notes", "Leads", lead.id);
        let quiet = zoho.crm.createRecord("Leads", #{ Last_Name: "Quiet", Email: "quiet@tasks.example" });
        let none = zoho.crm.getRelatedRecords("Notes", "Leads", quiet.id, 1, 10);
        #{ note: note, notes: notes, none: none }
        "#,
    );
    let notes = r["notes"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(notes.len(), 1, "{r}");
    assert_eq!(notes[0]["id"], r["note"]["id"]);
    assert_eq!(notes[0]["Note_Title"], "Call");
    assert_eq!(r["none"], serde_json::json!([]));
}

#[test]
fn zoho_tasks_crm_get_org_variable_gives_its_value() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    // The sandbox's seeded variables are not known yet: any value is text or a number, and an
    // unknown name gives the error map.
    let r = f.json(r#"#{ bad: zoho.crm.getOrgVariable("no_such_variable_x", "crm_a") }"#);
    assert_eq!(r["bad"]["status"], "error", "{r}");
}

#[test]
fn zoho_tasks_desk_update_and_search_tickets() {
    let f = Fixture::new();
    f.connect("desk_a", "zoho_desk");
    let org = f.sandbox.orgs[0].clone();
    let r = f.json(&format!(
        r#"
        let t = zoho.desk.create({org_id}, "tickets", #{{ subject: "Update me", departmentId: "{dept}", contact: #{{ lastName: "Doe" }} }}, "desk_a");
        let u = zoho.desk.update({org_id}, "tickets", t.id, #{{ status: "Closed" }}, "desk_a");
        let found = zoho.desk.searchRecords({org_id}, "tickets", #{{ subject: "Update me" }}, 0, 10, "desk_a");
        let none = zoho.desk.searchRecords({org_id}, "tickets", #{{ subject: "No such ticket anywhere" }}, "desk_a");
        #{{ t: t, u: u, found: found, none: none }}
        "#,
        org_id = org.desk_org_id,
        dept = org.desk_department_id
    ));
    assert_eq!(r["u"]["status"], "Closed", "{r}");
    assert_eq!(r["found"][0]["id"], r["t"]["id"]);
    assert_eq!(r["none"], serde_json::json!([]));
    let tickets = f.sandbox.desk.tickets("us");
    assert!(tickets.iter().any(|t| t["id"] == r["t"]["id"] && t["status"] == "Closed"), "{tickets:?}");
}
