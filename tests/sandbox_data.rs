//! `linkrun sandbox --data FILE` keeps the CRM, Desk and Campaigns data in one SQLite file: a
//! lead, a Desk ticket and a Campaigns subscription made over HTTP are all still there after the
//! process is killed and started again on the same file, and the seed data is not added twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, Read, Write};
use std::path::Path;

use common::Env;
use linkrun::sandbox::zoho_campaigns::Campaigns;
use linkrun::sandbox::zoho_desk::Desk;
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

/// A running `linkrun sandbox`.
struct Running {
    child: std::process::Child,
    port: u16,
    org: OrgA,
}

/// Dropping it kills the process (no clean shutdown) and waits for it.
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &Env, data: &Path) -> Running {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = env.spawn(&["sandbox", "--port", &port.to_string(), "--data", data.to_str().unwrap()]);
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
    Running { child, port, org }
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
