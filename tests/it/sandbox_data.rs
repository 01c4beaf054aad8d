//! `linkrun sandbox --data FILE` keeps the CRM, Desk, Campaigns and ServiceNow data and the issued
//! OAuth tokens in one SQLite file: a lead, a Desk ticket and a Campaigns subscription made over
//! HTTP, and a ServiceNow record and a lead made through linkrun connections, are all still there
//! after the process is killed and started again on the same file, the seed data is not added
//! twice, and the connections' tokens are still accepted. A storage failure is answered as one,
//! not as the fault knob's simulated failure, and a file of another shape is refused by name.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use crate::common::Env;
use linkrun_sandbox::servicenow::ServiceNow;
use linkrun_sandbox::zoho_campaigns::Campaigns;
use linkrun_sandbox::zoho_crm::Crm;
use linkrun_sandbox::zoho_desk::Desk;
use serde_json::{Value, json};

/// What the banner says about Org A.
#[derive(Clone)]
struct OrgA {
    client_id: String,
    client_secret: String,
    desk_org_id: String,
    department_id: String,
    listkey: String,
}

/// What the banner says about the ServiceNow instance.
#[derive(Clone)]
struct SnCreds {
    client_id: String,
    client_secret: String,
    username: String,
    password: String,
}

/// A running `linkrun sandbox`.
struct Running {
    child: std::process::Child,
    port: u16,
    org: OrgA,
    sn: SnCreds,
}

/// Dropping it kills the process (no clean shutdown) and waits for it.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the sandbox on a port it picks itself (`--port 0`; the banner says which).
fn start(env: &Env, data: &Path) -> Running {
    start_on(env, data, 0)
}

/// Starts the sandbox on `port` (the same port again after a restart, so that connections made
/// with `LINKRUN_SANDBOX_URL` keep their URLs), or on one it picks with 0.
fn start_on(env: &Env, data: &Path, port_asked: u16) -> Running {
    let mut child = env.spawn(&["sandbox", "--port", &port_asked.to_string(), "--data", data.to_str().unwrap()]);
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("Knobs:") {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the sandbox stopped before its banner:\n{banner}\n{err}");
        }
        banner.push_str(&line);
    }
    let word_after = |line: &str, key: &str| -> String {
        let rest = &line[line.find(key).unwrap_or_else(|| panic!("`{key}` in {line}")) + key.len()..];
        rest.split_whitespace().next().unwrap().to_string()
    };
    let lines: Vec<&str> = banner.lines().collect();
    let i = lines.iter().position(|l| l.starts_with("Org A (us):")).unwrap_or_else(|| panic!("{banner}"));
    let org = OrgA {
        client_id: word_after(lines[i], "client_id "),
        client_secret: word_after(lines[i], "client_secret "),
        desk_org_id: word_after(lines[i + 1], "Desk orgId "),
        department_id: word_after(lines[i + 1], "departmentId "),
        listkey: word_after(lines[i + 1], "Campaigns listkey "),
    };
    let l = lines.iter().find(|l| l.starts_with("ServiceNow instance:")).unwrap_or_else(|| panic!("{banner}"));
    let sn = SnCreds {
        client_id: word_after(l, "client_id "),
        client_secret: word_after(l, "client_secret "),
        username: word_after(l, "integration user "),
        password: word_after(l, " / "),
    };
    let port = banner_port(&banner);
    assert!(port == port_asked || port_asked == 0, "asked for {port_asked}, got {port}");
    Running { child, port, org, sn }
}

/// The port of the banner's first line (`... at http://127.0.0.1:PORT`).
pub fn banner_port(banner: &str) -> u16 {
    let first = banner.lines().next().unwrap_or_default();
    let url = first.rsplit(" at ").next().unwrap_or_default();
    url.rsplit(':').next().and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("no port in {first}"))
}

/// An HTTP/1.0 request; gives the status and the body (JSON, or a JSON string of the text).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string())))
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("Content-Type", "application/json");

impl Running {
    /// An access token of Org A's client for CRM leads, Desk tickets and Campaigns contacts.
    fn token(&self) -> String {
        let scope = "ZohoCRM.modules.ALL,Desk.tickets.ALL,ZohoCampaigns.contact.ALL";
        let q = form(&[("client_id", &self.org.client_id), ("scope", scope)]);
        let (status, v) = http(self.port, "POST", &format!("/oauth/v2/self-client/code?{q}"), &[], "");
        assert_eq!(status, 200, "{v}");
        let code = v["code"].as_str().unwrap().to_string();
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &self.org.client_id),
            ("client_secret", &self.org.client_secret),
            ("code", &code),
        ]);
        let (status, v) = http(self.port, "POST", "/oauth/v2/token", &[FORM], &body);
        assert_eq!(status, 200, "{v}");
        format!("Zoho-oauthtoken {}", v["access_token"].as_str().unwrap_or_else(|| panic!("{v}")))
    }

    fn leads_count(&self, auth: &str) -> u64 {
        let (status, v) = http(self.port, "GET", "/crm/v7/Leads/actions/count", &[("Authorization", auth)], "");
        assert_eq!(status, 200, "{v}");
        v["count"].as_u64().unwrap()
    }

    fn create_ticket(&self, auth: &str, subject: &str) -> Value {
        let body = json!({
            "subject": subject,
            "departmentId": self.org.department_id,
            "contact": { "lastName": "Lovelace", "email": "ada.desk@example.com" },
        });
        let headers = [("Authorization", auth), ("orgId", self.org.desk_org_id.as_str()), JSON];
        let (status, v) = http(self.port, "POST", "/api/v1/tickets", &headers, &body.to_string());
        assert_eq!(status, 200, "{v}");
        v
    }

    fn subscribe(&self, auth: &str, info: &str) {
        let body = form(&[("listkey", &self.org.listkey), ("resfmt", "JSON"), ("contactinfo", info)]);
        let (status, v) =
            http(self.port, "POST", "/api/v1.1/json/listsubscribe", &[("Authorization", auth), FORM], &body);
        assert_eq!((status, v["status"].as_str()), (200, Some("success")), "{v}");
    }
}

#[test]
fn crm_desk_and_campaigns_data_survive_a_restart_on_the_same_file() {
    let env = Env::new();
    let data = env.work.path().join("sandbox.db");

    // First run: a lead, a ticket and a subscription.
    let first = start(&env, &data);
    let auth = first.token();
    let seeded = first.leads_count(&auth);
    assert!(seeded > 0);
    let lead = json!({"data": [{"Last_Name": "Persist", "First_Name": "Ada", "Email": "ada.persist@example.com"}]});
    let (status, v) = http(first.port, "POST", "/crm/v7/Leads", &[("Authorization", &auth), JSON], &lead.to_string());
    assert_eq!(status, 201, "{v}");
    let lead_id = v["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let leads = first.leads_count(&auth);
    assert_eq!(leads, seeded + 1);
    let ticket = first.create_ticket(&auth, "Printer on fire");
    assert_eq!(ticket["ticketNumber"], "101");
    first.subscribe(&auth, "{First Name:Grace,Contact Email:grace@example.org}");
    let org = first.org.clone();
    drop(first); // kills the process

    // Second run on the same file: everything is still there, nothing was seeded again.
    let second = start(&env, &data);
    assert_eq!(second.org.desk_org_id, org.desk_org_id);
    let auth = second.token();
    assert_eq!(second.leads_count(&auth), leads, "the seed data was added again");
    let (status, v) =
        http(second.port, "GET", "/crm/v7/Leads/search?email=ada.persist@example.com", &[("Authorization", &auth)], "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["data"][0]["id"], lead_id.as_str());
    assert_eq!(v["data"][0]["Last_Name"], "Persist");

    let headers = [("Authorization", auth.as_str()), ("orgId", second.org.desk_org_id.as_str())];
    let (status, v) = http(second.port, "GET", "/api/v1/tickets", &headers, "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"], json!([ticket.clone()]));
    // Ticket numbers, record ids and contacts carry on where the first run stopped.
    let next = second.create_ticket(&auth, "Printer still on fire");
    assert_eq!(next["ticketNumber"], "102");
    assert_ne!(next["id"], ticket["id"]);
    assert_eq!(next["contactId"], ticket["contactId"]);

    // The same address again updates the one member.
    second.subscribe(&auth, "{Last Name:Hopper,Contact Email:GRACE@example.org}");
    drop(second);

    // The file itself, through the library.
    let campaigns = Campaigns::open(Some(&data)).unwrap();
    let members = campaigns.members("us", &org.listkey);
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0]["email"], "grace@example.org");
    assert_eq!(members[0]["fields"]["First Name"], "Grace");
    assert_eq!(members[0]["fields"]["Last Name"], "Hopper");
    assert_eq!(campaigns.list_name("us", &org.listkey).as_deref(), Some("Org A (us) newsletter"));
    let desk = Desk::open(Some(&data)).unwrap();
    assert_eq!(desk.tickets("us").len(), 2);
    assert_eq!(desk.contacts("us").len(), 1);
    assert_eq!(desk.department_id("us").as_deref(), Some(org.department_id.as_str()));
}

impl Running {
    /// Creates and authorises `crm_a` (Org A's CRM) and `sn` (the ServiceNow instance, password
    /// grant) in `env`, pointed at this sandbox.
    fn connect(&self, env: &Env) {
        env.set_env("LINKRUN_SANDBOX_URL", &format!("http://127.0.0.1:{}", self.port));
        env.secret(&self.org.client_secret);
        env.secret(&self.sn.client_secret);
        env.secret(&self.sn.password);
        env.run(&[
            "connection",
            "create",
            "crm_a",
            "--service",
            "zoho_crm",
            "--dc",
            "sandbox",
            "--param",
            &format!("client_id={}", self.org.client_id),
            "--param",
            &format!("client_secret={}", self.org.client_secret),
        ])
        .ok();
        env.run(&[
            "connection",
            "create",
            "sn",
            "--service",
            "servicenow",
            "--instance",
            "sandbox",
            "--param",
            &format!("client_id={}", self.sn.client_id),
            "--param",
            &format!("client_secret={}", self.sn.client_secret),
            "--param",
            &format!("username={}", self.sn.username),
            "--param",
            &format!("password={}", self.sn.password),
        ])
        .ok();
        self.authorize(env);
    }

    /// (Re-)authorises both connections of [`Running::connect`].
    fn authorize(&self, env: &Env) {
        let q = form(&[("client_id", &self.org.client_id), ("scope", "ZohoCRM.modules.ALL")]);
        let (status, v) = http(self.port, "POST", &format!("/oauth/v2/self-client/code?{q}"), &[], "");
        assert_eq!(status, 200, "{v}");
        env.run(&["connection", "authorize", "crm_a", "--code", v["code"].as_str().unwrap()]).ok();
        env.run(&["connection", "authorize", "sn"]).ok();
    }

    /// A ServiceNow access token of the integration user, straight from the token endpoint.
    fn sn_token(&self) -> String {
        let body = form(&[
            ("grant_type", "password"),
            ("client_id", &self.sn.client_id),
            ("client_secret", &self.sn.client_secret),
            ("username", &self.sn.username),
            ("password", &self.sn.password),
        ]);
        let (status, v) = http(self.port, "POST", "/oauth_token.do", &[FORM], &body);
        assert_eq!(status, 200, "{v}");
        format!("Bearer {}", v["access_token"].as_str().unwrap_or_else(|| panic!("{v}")))
    }

    /// The token requests the sandbox's Zoho Accounts and ServiceNow OAuth endpoints got.
    fn token_requests(&self) -> (Value, Value) {
        let (_, zoho) = http(self.port, "GET", "/_sandbox/oauth/stats", &[], "");
        let (_, sn) = http(self.port, "GET", "/_sandbox/servicenow/_sandbox/oauth/stats", &[], "");
        (zoho["token_requests_by_grant"].clone(), sn["token_requests_by_grant"].clone())
    }
}

/// Runs a script in `env` and gives its printed value without the final newline.
fn script(env: &Env, text: &str) -> String {
    env.script(text, &[]).ok().trim_end().to_string()
}

const NEW_CONTACT: &str = r#"invoke_url(#{ url: "/api/now/table/customer_contact", type: "POST",
    body: #{ first_name: "Ada", last_name: "Restart", email: "ada.restart@example.com" }, connection: "sn" }).result.sys_id"#;
const NEW_LEAD: &str = r#"invoke_url(#{ url: "/crm/v7/Leads", type: "POST",
    body: #{ data: [#{ Last_Name: "Restart", First_Name: "Lead", Email: "lead.restart@example.com" }] },
    connection: "crm_a" }).data[0].details.id"#;

fn read_contact(sys_id: &str) -> String {
    format!(r#"invoke_url(#{{ url: "/api/now/table/customer_contact/{sys_id}", connection: "sn" }}).result.name"#)
}

const CONTACTS_BY_EMAIL: &str = r#"invoke_url(#{ url: "/api/now/table/customer_contact",
    parameters: #{ sysparm_query: "email=ada.restart@example.com" }, connection: "sn" }).result.len()"#;
const LEAD_BY_EMAIL: &str = r#"let r = invoke_url(#{ url: "/crm/v7/Leads/search",
    parameters: #{ email: "lead.restart@example.com" }, connection: "crm_a" }); `${r.data.len()} ${r.data[0].id}`"#;

#[test]
fn servicenow_and_crm_data_made_through_connections_survive_a_restart() {
    let env = Env::new();
    let data = env.work.path().join("sandbox.db");
    let first = start(&env, &data);
    let port = first.port;
    first.connect(&env);

    // ServiceNow and CRM both work on the one file: a contact and a lead, read back.
    let sys_id = script(&env, NEW_CONTACT);
    assert_eq!(sys_id.len(), 32, "{sys_id}");
    assert_eq!(script(&env, &read_contact(&sys_id)), "Ada Restart");
    let lead_id = script(&env, NEW_LEAD);
    assert_eq!(script(&env, LEAD_BY_EMAIL), format!("1 {lead_id}"));
    drop(first);

    // Second run: new authorisations (so this is about the data alone), the same records.
    let second = start_on(&env, &data, port);
    second.authorize(&env);
    assert_eq!(script(&env, &read_contact(&sys_id)), "Ada Restart");
    assert_eq!(script(&env, CONTACTS_BY_EMAIL), "1");
    assert_eq!(script(&env, LEAD_BY_EMAIL), format!("1 {lead_id}"));
    drop(second);

    // Seeded once: the seed data plus the one record each.
    let sn = ServiceNow::open(Some(&data)).unwrap();
    assert_eq!(sn.count("customer_contact"), 301);
    assert_eq!(sn.count("core_company"), 45);
    let crm = Crm::open(Some(&data)).unwrap();
    assert_eq!(crm.count("us", "Leads"), 301);
    assert_eq!(crm.find_by_email("us", "Leads", "lead.restart@example.com").unwrap()["id"], lead_id.as_str());
}

#[test]
fn tokens_issued_before_a_restart_are_still_accepted_after_it() {
    let env = Env::new();
    let data = env.work.path().join("sandbox.db");
    let first = start(&env, &data);
    let port = first.port;
    first.connect(&env);
    env.run(&["connection", "test", "sn"]).ok();
    env.run(&["connection", "test", "crm_a"]).ok();
    let sys_id = script(&env, NEW_CONTACT);
    drop(first);

    // No re-authorisation: the connections' access tokens are accepted as they are.
    let second = start_on(&env, &data, port);
    env.run(&["connection", "test", "sn"]).ok();
    env.run(&["connection", "test", "crm_a"]).ok();
    assert_eq!(script(&env, &read_contact(&sys_id)), "Ada Restart");
    let lead_id = script(&env, NEW_LEAD);
    assert_eq!(second.token_requests(), (json!({}), json!({})), "the connections had to get new tokens");

    // Their refresh tokens were kept too: once the access tokens expire, linkrun refreshes.
    for path in ["/_sandbox/oauth/expire", "/_sandbox/servicenow/_sandbox/oauth/expire"] {
        let (status, v) = http(port, "POST", path, &[], "");
        assert_eq!((status, v["expired"].as_u64().is_some_and(|n| n >= 1)), (200, true), "{path}: {v}");
    }
    assert_eq!(script(&env, &read_contact(&sys_id)), "Ada Restart");
    assert_eq!(script(&env, LEAD_BY_EMAIL), format!("1 {lead_id}"));
    let (zoho, sn) = second.token_requests();
    assert_eq!((zoho, sn), (json!({"refresh_token": 1}), json!({"refresh_token": 1})));
    drop(second);

    // And the refreshed tokens after one more restart.
    let third = start_on(&env, &data, port);
    assert_eq!(script(&env, &read_contact(&sys_id)), "Ada Restart");
    assert_eq!(script(&env, LEAD_BY_EMAIL), format!("1 {lead_id}"));
    assert_eq!(third.token_requests(), (json!({}), json!({})));
}

#[test]
fn a_storage_failure_is_answered_as_one_not_as_a_simulated_failure() {
    let env = Env::new();
    let data = env.work.path().join("sandbox.db");
    let run = start(&env, &data);
    let zoho = run.token();
    let sn = run.sn_token();

    // Another program makes every table of the file read-only while the sandbox runs.
    let db = rusqlite::Connection::open(&data).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(tables.len() >= 8, "{tables:?}");
    for t in &tables {
        for op in ["INSERT", "UPDATE", "DELETE"] {
            db.execute_batch(&format!(
                "CREATE TRIGGER ro_{t}_{op} BEFORE {op} ON {t} BEGIN SELECT RAISE(ABORT, 'table {t} is read-only'); END;"
            ))
            .unwrap();
        }
    }
    drop(db);

    let says_storage = |what: &str, status: u16, text: &str| {
        assert_eq!(status, 500, "{what}: {text}");
        assert!(text.contains("the sandbox's storage failed") && text.contains("is read-only"), "{what}: {text}");
        assert!(!text.contains("simulated"), "{what}: {text}");
    };
    let body = json!({"first_name": "Read", "last_name": "Only"}).to_string();
    let (status, v) = http(run.port, "POST", "/api/now/table/customer_contact", &[("Authorization", &sn), JSON], &body);
    says_storage("ServiceNow insert", status, &v.to_string());
    assert_eq!(v["error"]["message"], "Sandbox storage error", "{v}");
    assert_eq!(v["status"], "failure");
    let lead = json!({"data": [{"Last_Name": "Only"}]}).to_string();
    let (status, v) = http(run.port, "POST", "/crm/v7/Leads", &[("Authorization", &zoho), JSON], &lead);
    says_storage("CRM insert", status, &v.to_string());
    let desk = json!({"subject": "Read-only", "departmentId": run.org.department_id, "contact": {"lastName": "Only"}});
    let headers = [("Authorization", zoho.as_str()), ("orgId", run.org.desk_org_id.as_str()), JSON];
    let (status, v) = http(run.port, "POST", "/api/v1/tickets", &headers, &desk.to_string());
    says_storage("Desk ticket", status, &v.to_string());
    let sub =
        form(&[("listkey", &run.org.listkey), ("resfmt", "JSON"), ("contactinfo", "{Contact Email:ro@example.org}")]);
    let (status, v) = http(run.port, "POST", "/api/v1.1/json/listsubscribe", &[("Authorization", &zoho), FORM], &sub);
    says_storage("Campaigns subscription", status, &v.to_string());
    let grant = form(&[
        ("grant_type", "client_credentials"),
        ("client_id", &run.sn.client_id),
        ("client_secret", &run.sn.client_secret),
    ]);
    let (status, v) = http(run.port, "POST", "/oauth_token.do", &[FORM], &grant);
    says_storage("ServiceNow token", status, &v.to_string());
    assert_eq!(v["error"], "server_error", "{v}");

    // Reads still work, and the fault knob's failure is still called simulated.
    let (status, v) =
        http(run.port, "GET", "/api/now/table/core_company?sysparm_limit=1", &[("Authorization", &sn)], "");
    assert_eq!((status, v["result"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    let (status, _) = http(run.port, "POST", "/_sandbox/knobs", &[JSON], &json!({"failure_rate": 1.0}).to_string());
    assert_eq!(status, 200);
    let (status, v) =
        http(run.port, "GET", "/api/now/table/core_company?sysparm_limit=1", &[("Authorization", &sn)], "");
    assert_eq!(status, 500, "{v}");
    assert!(v["error"]["detail"].as_str().unwrap().contains("simulated a server failure"), "{v}");
}

#[test]
fn a_data_file_of_another_shape_is_refused_by_table_name() {
    let env = Env::new();
    let data = env.work.path().join("other.db");
    let db = rusqlite::Connection::open(&data).unwrap();
    db.execute_batch("CREATE TABLE records (name TEXT, value TEXT); INSERT INTO records VALUES ('a', 'b');").unwrap();
    drop(db);
    let out = env.run(&["sandbox", "--port", "0", "--data", data.to_str().unwrap()]);
    let err = out.fails(1);
    assert!(err.contains(&format!("cannot open the sandbox data {}", data.display())), "{err}");
    assert!(err.contains("table `records` has the columns (name, value), not the Zoho CRM emulator's"), "{err}");
    assert!(err.contains("pass another --data file"), "{err}");
    // Nothing was changed in it.
    let db = rusqlite::Connection::open(&data).unwrap();
    let n: i64 = db.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 1);
}
