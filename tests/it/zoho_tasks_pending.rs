//! Tests of the `zoho.*` tasks whose sandbox endpoints are being added in parallel: CRM related
//! lists (`/crm/v7/{module}/{id}/{related}`, Notes), org variables (`/crm/v7/settings/variables`),
//! Desk ticket updates (`PATCH /api/v1/tickets/{id}`) and Desk search (`/api/v1/tickets/search`).
//! Not wired yet: add `mod zoho_tasks_pending;` to `tests/it/main.rs` once the sandbox has them.
//! The expectations follow the real APIs' shapes (docs/api-facts.md §2.4a, §3); adjust the
//! sandbox state accessors used here to the ones the sandbox then offers.

use crate::zoho_tasks::Fixture;

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
