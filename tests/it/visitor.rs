//! `scripts/visitor_to_crm.rhai` and its Deluge twin `scripts/visitor_to_crm.dg` against the
//! sandbox (issue 11, SalesIQ-style outcomes): each block (lead, contact, deal, ticket, list member)
//! reports `success`, `already exists`, `department invalid`, `assignee invalid`, `connection
//! invalid` or `failure`, and the ids in the result are the sandbox's records. Both versions get
//! the same arguments and must give the same outcomes (as must the `.dg`'s `linkrun port`, once).

use serde_json::Value;

use crate::common::sandbox::Fixture;

const RHAI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/visitor_to_crm.rhai");
const DG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/visitor_to_crm.dg");

/// A sandbox with `crm_a`, `desk_a` and `campaigns_a` connected to Org A.
fn fixture() -> Fixture {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    f.connect("desk_a", "zoho_desk");
    connect_with(&f, "campaigns_a", "zoho_campaigns", &["ZohoCampaigns.contact.UPDATE"]);
    f
}

/// Creates `link` of `service` for Org A and authorises it with exactly `scopes`.
fn connect_with(f: &Fixture, link: &str, service: &str, scopes: &[&str]) {
    let org = &f.sandbox.orgs[0];
    let (id, secret) = (format!("client_id={}", org.client_id), format!("client_secret={}", org.client_secret));
    let create = ["connection", "create", link, "--service", service, "--dc", "sandbox", "--param", &id];
    f.env.run(&[&create[..], &["--param", &secret]].concat()).ok();
    let code = f.sandbox.provider.mint_self_client_code(&org.client_id, scopes);
    f.env.run(&["connection", "authorize", link, "--code", &code]).ok();
}

/// Runs `script` for a visitor with `email`; `overrides` replace the default arguments (`name=value`).
fn visit(f: &Fixture, script: &str, email: &str, overrides: &[&str]) -> Value {
    let org = &f.sandbox.orgs[0];
    let mut args: Vec<String> = vec![
        "name=Ada Lovelace".into(),
        format!("email={email}"),
        "phone=+1 555 0100".into(),
        "company=Analytical Engines".into(),
        "message=Pricing for 20 seats?".into(),
        format!("orgId={}", org.desk_org_id),
        format!("department={}", org.desk_department_id),
        "assignee=".into(),
        format!("listkey={}", org.campaigns_listkey),
        "crm=crm_a".into(),
        "desk=desk_a".into(),
        "campaigns=campaigns_a".into(),
    ];
    for o in overrides {
        let key = o.split_once('=').map(|(k, _)| k).unwrap_or(o);
        args.retain(|a| !a.starts_with(&format!("{key}=")));
        args.push((*o).to_string());
    }
    let mut cmd = vec!["run", script];
    for a in &args {
        cmd.extend(["--arg", a.as_str()]);
    }
    cmd.push("--json");
    let out = f.env.run(&cmd);
    serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

/// `(block, outcome)` of each block, in order.
fn outcomes(v: &Value) -> Vec<(String, String)> {
    v["blocks"]
        .as_array()
        .unwrap_or_else(|| panic!("no blocks: {v}"))
        .iter()
        .map(|b| (b["block"].as_str().unwrap().to_string(), b["outcome"].as_str().unwrap().to_string()))
        .collect()
}

fn expect(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(b, o)| (b.to_string(), o.to_string())).collect()
}

fn reason<'a>(v: &'a Value, block: &str) -> &'a str {
    let b = v["blocks"].as_array().unwrap().iter().find(|b| b["block"] == block).unwrap();
    b["reason"].as_str().unwrap_or_else(|| panic!("no reason for {block}: {v}"))
}

/// A CRM record read back through the API.
fn crm_record(f: &Fixture, module: &str, id: &str) -> Value {
    f.json(&format!(r#"zoho.crm.getRecordById("{module}", "{id}", "crm_a")"#))
}

#[test]
fn a_first_visit_succeeds_in_every_block_and_gives_the_sandboxs_ids() {
    let f = fixture();
    // `linkrun port` of the Deluge version is a third version that must agree.
    let port = f.env.work.path().join("visitor_port.rhai");
    f.env.run(&["port", DG, "-o", port.to_str().unwrap()]).ok();
    let port = port.to_str().unwrap();
    for (script, email) in [(RHAI, "ada.rhai@example.com"), (DG, "ada.dg@example.com"), (port, "ada.port@example.com")]
    {
        let v = visit(&f, script, email, &[]);
        assert_eq!(
            outcomes(&v),
            expect(&[
                ("lead", "success"),
                ("contact", "success"),
                ("deal", "success"),
                ("ticket", "success"),
                ("list member", "success"),
            ]),
            "{script}: {v:#}"
        );
        assert!(v["blocks"].as_array().unwrap().iter().all(|b| b["reason"].is_null()), "{v:#}");
        let lead = f.sandbox.crm.find_by_email("us", "Leads", email).expect("lead created");
        assert_eq!(v["lead_id"], lead["id"], "{script}");
        assert_eq!((lead["Last_Name"].as_str(), lead["Lead_Source"].as_str()), (Some("Lovelace"), Some("Chat")));
        let contact = f.sandbox.crm.find_by_email("us", "Contacts", email).expect("contact created");
        assert_eq!(v["contact_id"], contact["id"], "{script}");
        let deal = crm_record(&f, "Deals", v["deal_id"].as_str().expect("deal id"));
        assert_eq!(deal["id"], v["deal_id"]);
        assert_eq!(deal["Contact_Name"]["id"], v["contact_id"], "the deal is the contact's: {deal}");
        let tickets = f.sandbox.desk.tickets("us");
        let ticket = tickets.iter().find(|t| t["id"] == v["ticket_id"]).unwrap_or_else(|| panic!("{v:#}"));
        assert_eq!(ticket["ticketNumber"], v["ticket_number"], "{script}");
        assert_eq!(ticket["email"], email);
        assert_eq!(ticket["channel"], "Chat");
        assert!(ticket["assigneeId"].is_null(), "an empty assignee leaves it unassigned: {ticket}");
        let members = f.sandbox.campaigns.members("us", &f.sandbox.orgs[0].campaigns_listkey);
        assert!(members.iter().any(|m| m.to_string().contains(email)), "{members:?}");
    }
}

#[test]
fn a_second_visit_with_the_same_email_finds_the_lead_and_contact() {
    let f = fixture();
    let email = "grace.hopper@example.com";
    let first = visit(&f, RHAI, email, &[]);
    let leads = f.sandbox.crm.count("us", "Leads");
    let contacts = f.sandbox.crm.count("us", "Contacts");
    for script in [RHAI, DG] {
        let v = visit(&f, script, email, &[]);
        assert_eq!(
            outcomes(&v),
            expect(&[
                ("lead", "already exists"),
                ("contact", "already exists"),
                ("deal", "success"),
                ("ticket", "success"),
                ("list member", "success"),
            ]),
            "{script}: {v:#}"
        );
        assert_eq!((&v["lead_id"], &v["contact_id"]), (&first["lead_id"], &first["contact_id"]), "the existing ids");
        let lead_id = first["lead_id"].as_str().unwrap();
        assert_eq!(reason(&v, "lead"), format!("the Leads record {lead_id} has this Email"));
        let deal = crm_record(&f, "Deals", v["deal_id"].as_str().unwrap());
        assert_eq!(deal["Contact_Name"]["id"], first["contact_id"], "the new deal is the existing contact's");
        assert_ne!(v["ticket_id"], first["ticket_id"]);
    }
    assert_eq!(f.sandbox.crm.count("us", "Leads"), leads, "no second lead");
    assert_eq!(f.sandbox.crm.count("us", "Contacts"), contacts, "no second contact");
}

#[test]
fn an_insert_answered_with_duplicate_data_is_already_exists_too() {
    // A connection that may create records but not read them: the search by Email is refused
    // (OAUTH_SCOPE_MISMATCH), so only the insert's DUPLICATE_DATA tells that the record exists.
    let f = fixture();
    let modules = ["ZohoCRM.modules.leads.CREATE", "ZohoCRM.modules.contacts.CREATE", "ZohoCRM.modules.deals.CREATE"];
    connect_with(&f, "crm_create", "zoho_crm", &modules);
    for (script, tag) in [(RHAI, "rhai"), (DG, "dg")] {
        let email = format!("dup.{tag}@example.com");
        let first = visit(&f, script, &email, &[]);
        let v = visit(&f, script, &email, &["crm=crm_create"]);
        assert_eq!(
            outcomes(&v)[..3],
            expect(&[("lead", "already exists"), ("contact", "already exists"), ("deal", "success")]),
            "{script}: {v:#}"
        );
        assert_eq!((&v["lead_id"], &v["contact_id"]), (&first["lead_id"], &first["contact_id"]), "{script}");
        let contact_id = first["contact_id"].as_str().unwrap();
        assert_eq!(reason(&v, "contact"), format!("DUPLICATE_DATA: the Contacts record {contact_id} has this Email"));
    }
}

#[test]
fn desk_refusing_the_department_or_the_agent_is_reported_and_makes_no_ticket() {
    let f = fixture();
    let desk_org = f.sandbox.orgs[0].desk_org_id.clone();
    let agent = format!("assignee={desk_org}02");
    for (script, tag) in [(RHAI, "rhai"), (DG, "dg")] {
        let before = f.sandbox.desk.tickets("us").len();
        let v = visit(&f, script, &format!("dept.{tag}@example.com"), &["department=1234567890123"]);
        assert_eq!(outcomes(&v)[3], ("ticket".to_string(), "department invalid".to_string()), "{script}: {v:#}");
        assert_eq!(
            reason(&v, "ticket"),
            "INVALID_DATA: The data is invalid due to validation restrictions (/departmentId)"
        );
        assert!(v["ticket_id"].is_null() && v["ticket_number"].is_null(), "{v:#}");
        let v = visit(&f, script, &format!("agent.{tag}@example.com"), &["assignee=9999999999"]);
        assert_eq!(outcomes(&v)[3], ("ticket".to_string(), "assignee invalid".to_string()), "{script}: {v:#}");
        assert_eq!(
            reason(&v, "ticket"),
            "INVALID_DATA: The data is invalid due to validation restrictions (/assigneeId)"
        );
        assert_eq!(outcomes(&v)[0].1, "success", "the other blocks go on: {v:#}");
        assert_eq!(f.sandbox.desk.tickets("us").len(), before, "{script}: no ticket is made");
        // One of the organisation's agents is taken.
        let v = visit(&f, script, &format!("agent.{tag}@example.com"), &[agent.as_str()]);
        assert_eq!(outcomes(&v)[3].1, "success", "{v:#}");
        let tickets = f.sandbox.desk.tickets("us");
        let ticket = tickets.iter().find(|t| t["id"] == v["ticket_id"]).unwrap();
        assert_eq!(ticket["assigneeId"].as_str(), Some(format!("{desk_org}02").as_str()));
    }
}

#[test]
fn a_revoked_or_unknown_connection_is_connection_invalid_with_the_command_that_mends_it() {
    let f = fixture();
    f.env.run(&["connection", "revoke", "desk_a"]).ok();
    for (script, tag) in [(RHAI, "rhai"), (DG, "dg")] {
        let v = visit(&f, script, &format!("revoked.{tag}@example.com"), &[]);
        assert_eq!(
            outcomes(&v),
            expect(&[
                ("lead", "success"),
                ("contact", "success"),
                ("deal", "success"),
                ("ticket", "connection invalid"),
                ("list member", "success"),
            ]),
            "{script}: {v:#}"
        );
        assert_eq!(
            reason(&v, "ticket"),
            "connection `desk_a` was revoked: run `linkrun connection authorize desk_a` to reconnect it"
        );
        assert!(v["ticket_id"].is_null());
        let v = visit(&f, script, &format!("unknown.{tag}@example.com"), &["crm=crm_nowhere", "campaigns=nope"]);
        let got = outcomes(&v);
        for i in [0, 1, 2, 4] {
            assert_eq!(got[i].1, "connection invalid", "{script}: {v:#}");
        }
        assert_eq!(
            reason(&v, "lead"),
            "unknown connection `crm_nowhere`: create it with `linkrun connection create crm_nowhere --service NAME` (see `linkrun connection list`)"
        );
        assert!(reason(&v, "list member").contains("linkrun connection create nope"), "{v:#}");
        assert!(v["lead_id"].is_null() && v["contact_id"].is_null() && v["deal_id"].is_null(), "{v:#}");
    }
}
