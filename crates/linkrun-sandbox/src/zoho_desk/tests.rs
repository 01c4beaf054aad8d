//! Tests of the Desk emulator through HTTP, against a provider and Desk on a free port.

use super::*;
use crate::faults::Knobs;
use crate::oauth_provider::{ClientConfig, ProviderConfig, serve};

const US_ORG_ID: &str = "700100200";
const US_DEPT: &str = "1892000000006001";
const IN_ORG_ID: &str = "700100300";
const IN_DEPT: &str = "1892000000007001";

struct T {
    provider: Provider,
    desk: Desk,
    base: String,
    http: reqwest::Client,
}

async fn start_with(faults: Faults) -> T {
    let mut cfg = ProviderConfig::zoho("");
    cfg.clients = vec![
        ClientConfig::new("1000.US", "us_secret", "us"),
        ClientConfig::new("1000.IN", "in_secret", "in"),
        ClientConfig::new("1000.EU", "eu_secret", "eu"),
    ];
    let provider = Provider::new(cfg);
    let desk = Desk::new();
    desk.add_org("us", US_ORG_ID, US_DEPT);
    desk.add_org("in", IN_ORG_ID, IN_DEPT);
    let router = provider.oauth_router().merge(desk.router(provider.clone(), faults));
    let (addr, _server) = serve(router).await.unwrap();
    T { provider, desk, base: format!("http://{addr}"), http: reqwest::Client::new() }
}

async fn start() -> T {
    start_with(Faults::default()).await
}

async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn err(code: &str, message: &str) -> Value {
    json!({ "errorCode": code, "message": message })
}

impl T {
    /// An access token of `client` (`1000.US`, `1000.IN`, `1000.EU`) with `scopes`, through a
    /// self-client code and the token endpoint (form body).
    async fn token(&self, client: &str, scopes: &[&str]) -> String {
        let code = self.provider.mint_self_client_code(client, scopes);
        let secret = match client {
            "1000.US" => "us_secret",
            "1000.IN" => "in_secret",
            _ => "eu_secret",
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("grant_type", "authorization_code"),
                ("client_id", client),
                ("client_secret", secret),
                ("code", code.as_str()),
            ])
            .finish();
        let r = self
            .http
            .post(format!("{}/oauth/v2/token", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, v) = answer(r).await;
        assert_eq!(status, 200, "{v}");
        v["access_token"].as_str().unwrap().to_string()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        org_id: Option<&str>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Zoho-oauthtoken {t}"));
        }
        if let Some(o) = org_id {
            rb = rb.header("orgId", o);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b);
        }
        answer(rb.send().await.unwrap()).await
    }

    async fn create(&self, token: &str, org_id: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, "/api/v1/tickets", Some(token), Some(org_id), Some(body.to_string())).await
    }

    async fn get(&self, path: &str, token: &str, org_id: Option<&str>) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(token), org_id, None).await
    }
}

fn ticket(subject: &str, email: &str) -> Value {
    json!({
        "subject": subject,
        "departmentId": US_DEPT,
        "contact": { "lastName": "Lovelace", "firstName": "Ada", "email": email },
        "description": "It does not work",
        "priority": "High",
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn create_read_and_list_tickets_with_contact_reuse() {
    let t = start().await;
    let tok = t.token("1000.US", &["Desk.tickets.ALL"]).await;

    let (status, a) = t.create(&tok, US_ORG_ID, ticket("Printer on fire", "ada@example.com")).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["ticketNumber"], "101");
    assert_eq!(a["subject"], "Printer on fire");
    assert_eq!(a["status"], "Open");
    assert_eq!(a["statusType"], "Open");
    assert_eq!(a["departmentId"], US_DEPT);
    assert_eq!(a["channel"], "Web");
    assert_eq!(a["priority"], "High");
    assert_eq!(a["email"], "ada@example.com", "taken from the contact");
    assert_eq!(a["description"], "It does not work");
    assert_eq!(a["customFields"], json!({}));
    assert_eq!(a["isDeleted"], false);
    assert_eq!(a["assigneeId"], Value::Null);
    assert_eq!(a["phone"], Value::Null);
    let id = a["id"].as_str().unwrap();
    assert!(id.len() >= 16 && id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    assert!(a["webUrl"].as_str().unwrap().ends_with(&format!("/support/us/ShowHomePage.do#Cases/dv/{id}")));
    let created = a["createdTime"].as_str().unwrap();
    assert!(valid_time(created) && created.len() == 24 && created.ends_with('Z'), "{created}");
    assert_eq!(a["modifiedTime"], a["createdTime"]);

    // The same email (other case) reuses the contact; the number goes up.
    let mut second = ticket("Second", "ADA@example.com");
    second["channel"] = json!("Phone");
    second["status"] = json!("On Hold");
    second["cf"] = json!({ "cf_order": "42" });
    let (status, b) = t.create(&tok, US_ORG_ID, second).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["ticketNumber"], "102");
    assert_eq!(b["contactId"], a["contactId"]);
    assert_eq!(b["channel"], "Phone");
    assert_eq!((b["status"].as_str(), b["statusType"].as_str()), (Some("On Hold"), Some("On Hold")));
    assert_eq!(b["cf"], json!({ "cf_order": "42" }));
    assert_eq!(t.desk.contacts("us").len(), 1);

    // By contactId, and a contact with an email only.
    let by_id = json!({ "subject": "Third", "departmentId": US_DEPT, "contactId": a["contactId"] });
    let (status, c) = t.create(&tok, US_ORG_ID, by_id).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["contactId"], a["contactId"]);
    let email_only = json!({ "subject": "Fourth", "departmentId": US_DEPT, "contact": { "email": "bob@example.org" } });
    let (status, d) = t.create(&tok, US_ORG_ID, email_only).await;
    assert_eq!(status, 200, "{d}");
    assert_ne!(d["contactId"], a["contactId"]);
    let contacts = t.desk.contacts("us");
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[1]["lastName"], "bob");

    let (status, got) = t.get(&format!("/api/v1/tickets/{id}"), &tok, Some(US_ORG_ID)).await;
    assert_eq!(status, 200);
    assert_eq!(got, a);

    let (status, list) = t.get("/api/v1/tickets", &tok, Some(US_ORG_ID)).await;
    assert_eq!(status, 200);
    let numbers: Vec<&str> =
        list["data"].as_array().unwrap().iter().map(|t| t["ticketNumber"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["101", "102", "103", "104"]);
    let (_, page) = t.get("/api/v1/tickets?from=1&limit=2", &tok, Some(US_ORG_ID)).await;
    let numbers: Vec<&str> =
        page["data"].as_array().unwrap().iter().map(|t| t["ticketNumber"].as_str().unwrap()).collect();
    assert_eq!(numbers, ["102", "103"]);
    let (_, page) = t.get("/api/v1/tickets?sortBy=-ticketNumber&limit=1", &tok, Some(US_ORG_ID)).await;
    assert_eq!(page["data"][0]["ticketNumber"], "104");
    let (status, body) = t.get("/api/v1/tickets?from=10", &tok, Some(US_ORG_ID)).await;
    assert_eq!((status, body), (204, json!("")));
    for (q, name) in [("limit=0", "limit"), ("limit=101", "limit"), ("from=-1", "from"), ("sortBy=subject", "sortBy")] {
        let (status, body) = t.get(&format!("/api/v1/tickets?{q}"), &tok, Some(US_ORG_ID)).await;
        assert_eq!(status, 422, "{q}");
        assert_eq!(
            body,
            err("UNPROCESSABLE_ENTITY", &format!("The value passed for the '{name}' parameter is invalid."))
        );
    }

    // orgId as a query parameter works too.
    let (status, _) = t.get(&format!("/api/v1/tickets?orgId={US_ORG_ID}"), &tok, None).await;
    assert_eq!(status, 200);

    assert_eq!(t.desk.tickets("us").len(), 4);
    assert_eq!(t.desk.tickets("us")[0], a);
    assert!(t.desk.tickets("in").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_scope_and_org_errors() {
    let t = start().await;
    let tok = t.token("1000.US", &["Desk.tickets.CREATE"]).await;
    let body = ticket("Hello", "ada@example.com");

    // No token, another scheme, a fake token, an expired one.
    let (status, v) = t.call(reqwest::Method::GET, "/api/v1/tickets", None, Some(US_ORG_ID), None).await;
    assert_eq!((status, v), (401, err("UNAUTHORIZED", "You are not authenticated to perform this operation.")));
    let r = t.http.get(format!("{}/api/v1/tickets", t.base)).header("authorization", format!("Bearer {tok}")).send();
    let (status, v) = answer(r.await.unwrap()).await;
    assert_eq!((status, v), (401, err("UNAUTHORIZED", "You are not authenticated to perform this operation.")));
    let (status, v) = t.get("/api/v1/organizations", "1000.fake.token", None).await;
    assert_eq!((status, v), (401, err("INVALID_OAUTH", "The OAuth Token you provided is invalid.")));

    // The scope: CREATE cannot read.
    let (status, v) = t.get("/api/v1/tickets", &tok, Some(US_ORG_ID)).await;
    assert_eq!((status, v["errorCode"].as_str()), (401, Some("SCOPE_MISMATCH")));
    let other = t.token("1000.US", &["ZohoCRM.modules.ALL"]).await;
    let (status, v) = t.create(&other, US_ORG_ID, body.clone()).await;
    assert_eq!((status, v["errorCode"].as_str()), (401, Some("SCOPE_MISMATCH")));
    assert_eq!(v, err("SCOPE_MISMATCH", MSG_SCOPE_MISMATCH));

    // orgId: missing, not a number, unknown, another organisation's.
    let (status, v) = t.call(reqwest::Method::POST, "/api/v1/tickets", Some(&tok), None, Some(body.to_string())).await;
    assert_eq!((status, v), (422, err("UNPROCESSABLE_ENTITY", MSG_ORG_MISSING)));
    for bad in ["abc", "123"] {
        let (status, v) = t.create(&tok, bad, body.clone()).await;
        assert_eq!(
            (status, v),
            (422, err("UNPROCESSABLE_ENTITY", "The value passed for the 'orgId' parameter is invalid.")),
            "{bad}"
        );
    }
    let (status, v) = t.create(&tok, IN_ORG_ID, body.clone()).await;
    assert_eq!((status, v), (401, err("OAUTH_ORG_MISMATCH", MSG_ORG_MISMATCH)));
    assert!(t.desk.tickets("us").is_empty() && t.desk.tickets("in").is_empty());

    // The right orgId; then the token expires.
    let (status, _) = t.create(&tok, US_ORG_ID, body.clone()).await;
    assert_eq!(status, 200);
    t.provider.expire_access_tokens();
    let (status, v) = t.create(&tok, US_ORG_ID, body).await;
    assert_eq!((status, v), (401, err("INVALID_OAUTH", "The OAuth Token you provided is invalid.")));
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_errors_name_fields_by_json_pointer() {
    let t = start().await;
    let tok = t.token("1000.US", &["Desk.tickets.ALL"]).await;
    let fields = |v: &Value| -> Vec<(String, String)> {
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["fieldName"].as_str().unwrap().to_string(), e["errorType"].as_str().unwrap().to_string()))
            .collect()
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    };

    let (status, v) = t.create(&tok, US_ORG_ID, json!({})).await;
    assert_eq!(status, 422);
    assert_eq!(v["errorCode"], "INVALID_DATA");
    assert_eq!(v["message"], "The data is invalid due to validation restrictions");
    assert_eq!(v["errors"][0], json!({ "fieldName": "/subject", "errorType": "missing", "errorMessage": "" }));
    assert_eq!(fields(&v), pairs(&[("/subject", "missing"), ("/departmentId", "missing"), ("/contactId", "missing")]));

    let long = "x".repeat(256);
    let body = json!({ "subject": long, "departmentId": "999", "contactId": "1" });
    let (status, v) = t.create(&tok, US_ORG_ID, body).await;
    assert_eq!(status, 422);
    assert_eq!(fields(&v), pairs(&[("/subject", "invalid"), ("/departmentId", "invalid"), ("/contactId", "invalid")]));

    let just_right =
        json!({ "subject": "x".repeat(255), "departmentId": US_DEPT, "contact": { "lastName": "Hopper" } });
    let (status, v) = t.create(&tok, US_ORG_ID, just_right).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["email"], Value::Null);

    let body = json!({
        "subject": 5,
        "departmentId": US_DEPT,
        "contact": { "firstName": "Grace" },
        "email": "not an email",
        "status": "Pending",
        "dueDate": "tomorrow",
        "cf": [],
    });
    let (status, v) = t.create(&tok, US_ORG_ID, body).await;
    assert_eq!(status, 422);
    assert_eq!(
        fields(&v),
        pairs(&[
            ("/subject", "invalid"),
            ("/contact/lastName", "missing"),
            ("/email", "invalid"),
            ("/status", "invalid"),
            ("/dueDate", "invalid"),
            ("/cf", "invalid"),
        ])
    );
    let body = json!({ "subject": "s", "departmentId": US_DEPT, "contact": { "email": "a@b" } });
    let (_, v) = t.create(&tok, US_ORG_ID, body).await;
    assert_eq!(fields(&v), pairs(&[("/contact/email", "invalid")]));
    let body = json!({ "subject": "s", "departmentId": US_DEPT, "contact": "Ada" });
    let (_, v) = t.create(&tok, US_ORG_ID, body).await;
    assert_eq!(fields(&v), pairs(&[("/contact", "invalid")]));
    let ok = json!({
        "subject": "s",
        "departmentId": US_DEPT.parse::<u64>().unwrap(),
        "contact": { "lastName": "L" },
        "status": "closed",
        "dueDate": "2030-01-02T03:04:05.000Z",
    });
    let (status, v) = t.create(&tok, US_ORG_ID, ok).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["status"].as_str(), v["statusType"].as_str()), (Some("Closed"), Some("Closed")));
    assert_eq!(v["dueDate"], "2030-01-02T03:04:05.000Z");

    // Not JSON; a form.
    let (status, v) =
        t.call(reqwest::Method::POST, "/api/v1/tickets", Some(&tok), Some(US_ORG_ID), Some("subject=x".into())).await;
    assert_eq!((status, v), (422, err("UNPROCESSABLE_ENTITY", MSG_NOT_JSON)));
    let r = t
        .http
        .post(format!("{}/api/v1/tickets", t.base))
        .header("authorization", format!("Zoho-oauthtoken {tok}"))
        .header("orgId", US_ORG_ID)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("subject=x")
        .send();
    let (status, v) = answer(r.await.unwrap()).await;
    assert_eq!((status, v), (415, err("UNSUPPORTED_MEDIA_TYPE", MSG_MEDIA_TYPE)));
    assert_eq!(t.desk.tickets("us").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn organisations_are_isolated() {
    let t = start().await;
    let us = t.token("1000.US", &["Desk.tickets.ALL", "Desk.basic.READ"]).await;
    let inn = t.token("1000.IN", &["Desk.tickets.ALL"]).await;

    let (status, v) = t.get("/api/v1/organizations", &us, None).await;
    assert_eq!(status, 200);
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["id"], US_ORG_ID);
    let (_, v) = t.get("/api/v1/organizations", &inn, None).await;
    assert_eq!(v["data"][0]["id"], IN_ORG_ID);
    let (status, v) = t.get("/api/v1/departments", &inn, Some(IN_ORG_ID)).await;
    assert_eq!(status, 200);
    assert_eq!(v["data"][0]["id"], IN_DEPT);

    let (status, a) = t.create(&us, US_ORG_ID, ticket("US only", "ada@example.com")).await;
    assert_eq!(status, 200);
    let id = a["id"].as_str().unwrap().to_string();

    // India sees nothing of it, and its own department is needed there.
    let (status, _) = t.get("/api/v1/tickets", &inn, Some(IN_ORG_ID)).await;
    assert_eq!(status, 204);
    let (status, v) = t.get(&format!("/api/v1/tickets/{id}"), &inn, Some(IN_ORG_ID)).await;
    assert_eq!((status, v), (404, err("URL_NOT_FOUND", MSG_URL_NOT_FOUND)));
    let (status, v) = t.create(&inn, IN_ORG_ID, ticket("In", "ada@example.com")).await;
    assert_eq!(status, 422);
    assert_eq!(v["errors"][0]["fieldName"], "/departmentId");
    let mut body = ticket("In", "ada@example.com");
    body["departmentId"] = json!(IN_DEPT);
    let (status, b) = t.create(&inn, IN_ORG_ID, body).await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["ticketNumber"], "101", "numbers count per organisation");
    assert_ne!(b["contactId"], a["contactId"], "contacts are per organisation");
    let contact_of_us = json!({ "subject": "s", "departmentId": IN_DEPT, "contactId": a["contactId"] });
    let (status, v) = t.create(&inn, IN_ORG_ID, contact_of_us).await;
    assert_eq!((status, v["errors"][0]["fieldName"].as_str()), (422, Some("/contactId")));
    assert_eq!(t.desk.tickets("us").len(), 1);
    assert_eq!(t.desk.tickets("in").len(), 1);

    // An organisation nobody added gets ids on first use.
    assert_eq!(t.desk.org_id("eu"), None);
    let eu = t.token("1000.EU", &["Desk.tickets.ALL"]).await;
    let (status, v) = t.get("/api/v1/organizations", &eu, None).await;
    assert_eq!(status, 200);
    let eu_id = t.desk.org_id("eu").unwrap();
    assert_eq!(v["data"][0]["id"], eu_id.as_str());
    let eu_dept = t.desk.department_id("eu").unwrap();
    assert!(eu_id.bytes().all(|b| b.is_ascii_digit()) && eu_dept.bytes().all(|b| b.is_ascii_digit()));
    let (status, v) = t.get(&format!("/api/v1/tickets/{id}"), &eu, Some(US_ORG_ID)).await;
    assert_eq!((status, v["errorCode"].as_str()), (401, Some("OAUTH_ORG_MISMATCH")));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_methods_and_ids() {
    let t = start().await;
    let tok = t.token("1000.US", &["Desk.tickets.ALL"]).await;
    for path in ["/api/v1/nothing", "/api/v1", "/api/v1/tickets/1/threads/x"] {
        let (status, v) = t.get(path, &tok, Some(US_ORG_ID)).await;
        assert_eq!((status, v), (404, err("URL_NOT_FOUND", MSG_URL_NOT_FOUND)), "{path}");
    }
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/tickets"),
        (reqwest::Method::PUT, "/api/v1/tickets/1"),
        (reqwest::Method::POST, "/api/v1/organizations"),
    ] {
        let (status, v) = t.call(method, path, Some(&tok), Some(US_ORG_ID), None).await;
        assert_eq!((status, v), (405, err("METHOD_NOT_ALLOWED", MSG_METHOD_NOT_ALLOWED)), "{path}");
    }
    let (status, v) = t.get("/api/v1/tickets/abc", &tok, Some(US_ORG_ID)).await;
    assert_eq!(
        (status, v),
        (422, err("UNPROCESSABLE_ENTITY", "The value passed for the 'ticketId' parameter is invalid."))
    );
    let (status, v) = t.get("/api/v1/tickets/1892000000042001", &tok, Some(US_ORG_ID)).await;
    assert_eq!((status, v), (404, err("URL_NOT_FOUND", MSG_URL_NOT_FOUND)));
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_answer_429_and_500() {
    let faults = Faults::new(Knobs { rate_limit_per_minute: Some(1), ..Default::default() });
    let t = start_with(faults.clone()).await;
    let tok = t.token("1000.US", &["Desk.tickets.ALL"]).await;
    let (status, _) = t.get("/api/v1/organizations", &tok, None).await;
    assert_eq!(status, 200);
    let r = t
        .http
        .get(format!("{}/api/v1/organizations", t.base))
        .header("authorization", format!("Zoho-oauthtoken {tok}"))
        .send()
        .await
        .unwrap();
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let (status, v) = answer(r).await;
    assert_eq!((status, v), (429, err("TOO_MANY_REQUESTS", MSG_TOO_MANY)));
    // Another organisation has its own window.
    let inn = t.token("1000.IN", &["Desk.tickets.ALL"]).await;
    let (status, _) = t.get("/api/v1/organizations", &inn, None).await;
    assert_eq!(status, 200);

    faults.set(Knobs { failure_rate: 1.0, ..Default::default() });
    let (status, v) = t.create(&tok, US_ORG_ID, ticket("s", "ada@example.com")).await;
    assert_eq!((status, v), (500, err("INTERNAL_SERVER_ERROR", MSG_INTERNAL)));
    assert!(t.desk.tickets("us").is_empty());
}

#[test]
fn times_and_emails() {
    assert_eq!(format_time(1_539_930_883_000), "2018-10-19T06:34:43.000Z");
    assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(format_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert!(valid_time("2018-10-19T06:34:43.000Z") && valid_time("2018-10-19T06:34:43Z"));
    assert!(
        !valid_time("2018-10-19") && !valid_time("2018-10-19T06:34:43.0Z") && !valid_time("2018-10-19T06:34:43+00:00")
    );
    for good in ["jai@zoho.com", "a.b+c@mail.example.co.uk", " ada@example.com "] {
        assert!(valid_email(good), "{good}");
    }
    for bad in ["", "a", "a@b", "a@@b.com", "@b.com", "a b@c.com", "a@b..com", "a@-b.com", "a@b.c0m", "a@b.c"] {
        assert!(!valid_email(bad), "{bad}");
    }
}
