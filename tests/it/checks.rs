//! `linkrun connection test` reports the service's `[[checks]]`: what the connection may read,
//! what it is refused (with the role or scope to grant), what looks hidden by row-level ACLs, and
//! what could not be checked; exit 4 unless every check is permitted.

use linkrun_sandbox::faults::Knobs;
use serde_json::{Value, json};

use crate::common::sandbox::Fixture;

const ZOHO_MODULES: [&str; 8] =
    ["Leads", "Contacts", "Accounts", "Deals", "Vendors", "Products", "Purchase_Orders", "Cases"];
const SN_TABLES: [&str; 6] =
    ["customer_contact", "customer_account", "core_company", "cmdb_model", "sn_customerservice_case", "proc_po"];

fn json_doc(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A `zoho_crm` connection in the sandbox whose token has only `scopes`.
fn connect_crm_with(f: &Fixture, link: &str, scopes: &[&str]) {
    let org = &f.sandbox.orgs[0];
    let mut args = vec!["connection", "create", link, "--service", "zoho_crm", "--dc", "sandbox"];
    let (id, secret) = (format!("client_id={}", org.client_id), format!("client_secret={}", org.client_secret));
    args.extend(["--param", &id, "--param", &secret]);
    for s in scopes {
        args.extend(["--scope", s]);
    }
    f.env.run(&args).ok();
    let code = f.sandbox.provider.mint_self_client_code(&org.client_id, scopes);
    f.env.run(&["connection", "authorize", link, "--code", &code]).ok();
}

/// A `servicenow_basic` connection to the sandbox instance as `user`.
fn connect_sn_as(f: &Fixture, link: &str, user: &str, password: &str) {
    let (u, p) = (format!("username={user}"), format!("password={password}"));
    f.env
        .run(&[
            "connection",
            "create",
            link,
            "--service",
            "servicenow_basic",
            "--instance",
            "sandbox",
            "--param",
            &u,
            "--param",
            &p,
        ])
        .ok();
}

#[test]
fn a_full_scope_zoho_connection_is_permitted_every_module() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    let out = f.env.run(&["connection", "test", "crm"]);
    let expected: String = ZOHO_MODULES.iter().map(|m| format!("permitted  {m}\n")).collect();
    assert_eq!(out.ok(), expected);
    assert_eq!(out.stderr, "connection `crm` works: GET /crm/v7/Leads?fields=Last_Name&per_page=1 answered HTTP 200\n");
}

#[test]
fn a_module_outside_the_token_scopes_is_forbidden_with_the_scope_to_add() {
    let f = Fixture::new();
    let scopes = [
        "ZohoCRM.modules.leads.READ",
        "ZohoCRM.modules.contacts.READ",
        "ZohoCRM.modules.accounts.READ",
        "ZohoCRM.modules.deals.READ",
        "ZohoCRM.modules.vendors.READ",
        "ZohoCRM.modules.products.READ",
        "ZohoCRM.modules.cases.READ",
    ];
    connect_crm_with(&f, "crm", &scopes);
    let out = f.env.run(&["connection", "test", "crm"]);
    let message = out.fails(4);
    assert_eq!(
        message,
        "connection `crm` works, but 1 of its 8 checks did not pass (`Purchase_Orders` forbidden): grant what each `fix` above says (a `failed` check says what went wrong instead), then run `linkrun connection test crm` again"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", out.stdout);
    for (line, module) in lines.iter().zip(ZOHO_MODULES) {
        if module == "Purchase_Orders" {
            assert!(
                line.starts_with(
                    "forbidden  Purchase_Orders: HTTP 401 `OAUTH_SCOPE_MISMATCH`; fix: add the scope ZohoCRM.modules.purchaseorders.READ (or ZohoCRM.modules.ALL) and authorise again: `linkrun connection authorize crm --code CODE`"
                ),
                "{line}"
            );
        } else {
            assert_eq!(*line, format!("permitted  {module}"));
        }
    }
}

#[test]
fn a_servicenow_user_without_a_role_is_forbidden_and_rows_hidden_by_an_acl_look_hidden() {
    let f = Fixture::new();
    let password = f.env.secret("limited-user-password-4c1d");
    // Every table's role but proc_po's, and a row-level ACL on the cases that needs an agent role.
    let roles: Vec<String> = SN_TABLES.iter().filter(|t| **t != "proc_po").map(|t| format!("{t}_read")).collect();
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    f.sandbox.servicenow.add_user("limited.user", &password, &roles);
    f.sandbox.servicenow.hide_rows("sn_customerservice_case", "sn_customerservice_agent");
    connect_sn_as(&f, "sn", "limited.user", &password);

    let out = f.env.run(&["connection", "test", "sn"]);
    out.fails(4);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "permitted  customer_contact",
            "permitted  customer_account",
            "permitted  core_company",
            "permitted  cmdb_model",
            "hidden     sn_customerservice_case: HTTP 200 with no records where records should be visible: the table may be empty, or access rules hide its records from the connection's user; fix: give the connection's user a role that may read table sn_customerservice_case, e.g. sn_customerservice_agent (check the table's read ACLs: System Security > Access Control); in the sandbox, the role sn_customerservice_case_read",
            "forbidden  proc_po: HTTP 403 `User Not Authorized`; fix: give the connection's user a role that may read table proc_po (the table's read ACLs list them: System Security > Access Control); in the sandbox, the role proc_po_read",
        ]
    );

    // Granting the roles fixes both.
    let mut all = roles.clone();
    all.extend(["proc_po_read", "sn_customerservice_agent"]);
    f.sandbox.servicenow.add_user("limited.user", &password, &all);
    let out = f.env.run(&["connection", "test", "sn"]);
    let expected: String = SN_TABLES.iter().map(|t| format!("permitted  {t}\n")).collect();
    assert_eq!(out.ok(), expected);
}

#[test]
fn json_lists_each_check_with_its_status_http_status_and_fix() {
    let f = Fixture::new();
    let password = f.env.secret("json-user-password-77e2");
    f.sandbox.servicenow.add_user("json.user", &password, &["customer_contact_read", "core_company_read"]);
    connect_sn_as(&f, "sn", "json.user", &password);
    let out = f.env.run(&["connection", "test", "sn", "--json"]);
    let message = out.fails(4);
    assert!(message.starts_with("connection `sn` works, but 4 of its 6 checks did not pass (`customer_account` forbidden, `cmdb_model` forbidden, `sn_customerservice_case` forbidden, `proc_po` forbidden)"), "{message}");
    let (doc, _error_line) = out.stdout.trim_end().rsplit_once('\n').expect("the document, then the error line");
    let doc = json_doc(doc);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["status"], 200);
    assert_eq!(doc["request"], json!({"method": "GET", "url": "/api/now/table/customer_contact?sysparm_limit=1"}));
    let checks = doc["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 6);
    assert_eq!(
        checks[0],
        json!({"name": "customer_contact", "status": "permitted", "http_status": 200, "detail": null, "fix": null})
    );
    assert_eq!(
        checks[1],
        json!({
            "name": "customer_account",
            "status": "forbidden",
            "http_status": 403,
            "detail": "HTTP 403 `User Not Authorized`",
            "fix": "give the connection's user a role that may read table customer_account, e.g. sn_customerservice_agent (check the table's read ACLs: System Security > Access Control); in the sandbox, the role customer_account_read",
        })
    );
    assert_eq!(checks[2]["status"], "permitted", "core_company");
}

#[test]
fn a_check_answered_with_a_server_error_is_failed_not_permitted() {
    let f = Fixture::new();
    // A service with checks and no `[test]`: only the checks run.
    f.env.add_service(
        "sn_checks.toml",
        &format!(
            "link_name = \"sn_checks\"\nname = \"SN checks\"\nauth = \"basic\"\nbase_url = \"{}\"\n\
             [[checks]]\nname = \"contacts\"\nurl = \"/api/now/table/customer_contact?sysparm_limit=1\"\n\
             records = \"result\"\nexpect_records = true\nfix = \"grant customer_contact_read\"\n",
            f.base
        ),
    );
    let (u, p) = (format!("username={}", f.sandbox.sn.username), format!("password={}", f.sandbox.sn.password));
    f.env.run(&["connection", "create", "snc", "--service", "sn_checks", "--param", &u, "--param", &p]).ok();
    let out = f.env.run(&["connection", "test", "snc"]);
    assert_eq!(out.ok(), "permitted  contacts\n");
    assert_eq!(out.stderr, "connection `snc` passed every check (1 permitted)\n");

    f.sandbox.faults.set(Knobs { failure_rate: 1.0, ..Default::default() });
    let out = f.env.run(&["connection", "test", "snc", "--json"]);
    out.fails(4);
    let (doc, _) = out.stdout.trim_end().rsplit_once('\n').expect("the document, then the error line");
    let doc = json_doc(doc);
    assert_eq!(
        doc["checks"],
        json!([{"name": "contacts", "status": "failed", "http_status": 500, "detail": "HTTP 500", "fix": null}])
    );
    assert_eq!((doc["ok"].clone(), doc["request"].clone()), (json!(false), Value::Null));
    let out = f.env.run(&["connection", "test", "snc"]);
    out.fails(4);
    assert_eq!(out.stdout, "failed     contacts: HTTP 500\n");
}
