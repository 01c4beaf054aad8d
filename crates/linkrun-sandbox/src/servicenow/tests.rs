//! Tests of the ServiceNow emulator through HTTP, against a provider and the instance on a free
//! port.

use super::*;
use crate::faults::Knobs;
use crate::oauth_provider::{ClientConfig, ProviderConfig, serve};

struct T {
    base: String,
    http: reqwest::Client,
    sn: ServiceNow,
    faults: Faults,
    token: String,
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn start(seed: bool) -> T {
    let mut cfg = ProviderConfig::servicenow("");
    cfg.clients = vec![ClientConfig::new("sn_client", "sn_secret", "acme")];
    cfg.users = vec![
        ("admin".into(), "pw1".into()),
        ("reader".into(), "pw2".into()),
        ("nobody".into(), "pw3".into()),
        ("stranger".into(), "pw4".into()),
    ];
    let provider = Provider::new(cfg);
    let sn = ServiceNow::open(None).unwrap();
    sn.add_user("admin", "pw1", &["admin"]);
    sn.add_user("reader", "pw2", &["customer_contact_read", "customer_account_write"]);
    sn.add_user("nobody", "pw3", &[]);
    if seed {
        sn.seed().unwrap();
    }
    let faults = Faults::default();
    let router = provider.oauth_router().merge(sn.router(provider.clone(), faults.clone()));
    let (addr, _server) = serve(router).await.unwrap();
    let mut t = T { base: format!("http://{addr}"), http: reqwest::Client::new(), sn, faults, token: String::new() };
    t.token = t.password_token("admin", "pw1").await;
    t
}

fn q(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

impl T {
    async fn token_request(&self, pairs: &[(&str, &str)]) -> String {
        let r = self
            .http
            .post(format!("{}/oauth_token.do", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(q(pairs))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    async fn password_token(&self, user: &str, password: &str) -> String {
        self.token_request(&[
            ("grant_type", "password"),
            ("client_id", "sn_client"),
            ("client_secret", "sn_secret"),
            ("username", user),
            ("password", password),
        ])
        .await
    }

    async fn call(&self, method: reqwest::Method, path: &str, auth: Option<&str>, body: Option<&str>) -> Resp {
        let mut rb = self.http.request(method, format!("{}{path}", self.base)).header("accept", "application/json");
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b.to_string());
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        Resp { status, headers, body }
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    async fn get(&self, path: &str) -> Resp {
        self.call(reqwest::Method::GET, path, Some(&self.bearer()), None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.call(reqwest::Method::POST, path, Some(&self.bearer()), Some(&body.to_string())).await
    }

    /// The list of `table` filtered by `query`, as the records' `field` values.
    async fn query(&self, table: &str, query: &str, field: &str) -> Vec<String> {
        let r = self.get(&format!("/api/now/table/{table}?{}", q(&[("sysparm_query", query)]))).await;
        assert_eq!(r.status, 200, "{query}: {}", r.body);
        r.body["result"].as_array().unwrap().iter().map(|x| x[field].as_str().unwrap().to_string()).collect()
    }
}

fn header(r: &Resp, name: &str) -> String {
    r.headers.get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

fn is_time(s: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok()
}

#[test]
fn query_parsing() {
    let def = table_def("customer_contact").unwrap();
    let c = |f: &str, op: Op, v: &str| Cond { field: f.into(), op, value: v.into() };
    let got = parse_query("active=true^first_name=Abel^ORlast_name=Tuter^bogus=1^ORDERBYDESCname", def);
    assert_eq!(
        got,
        Query {
            groups: vec![vec![
                vec![c("active", Op::Eq, "true")],
                vec![c("first_name", Op::Eq, "Abel"), c("last_name", Op::Eq, "Tuter")],
            ]],
            order: vec![("name".into(), true)],
        }
    );
    let got = parse_query("sys_updated_on>javascript:gs.dateGenerate('2024-01-01','00:00:00')", def);
    assert_eq!(got.groups[0][0][0], c("sys_updated_on", Op::Gt, "2024-01-01 00:00:00"));
    let got = parse_query("emailISEMPTY^NQaccount.nameSTARTSWITHAc^emailNOT LIKEx^phoneIN1,2", def);
    assert_eq!(got.groups.len(), 2);
    assert_eq!(got.groups[0][0][0], c("email", Op::IsEmpty, ""));
    assert_eq!(got.groups[1][0][0], c("account.name", Op::StartsWith, "Ac"));
    assert_eq!(got.groups[1][1][0], c("email", Op::NotLike, "x"));
    assert_eq!(got.groups[1][2][0], c("phone", Op::In, "1,2"));
    assert!(parse_query("", def).groups.iter().all(|g| g.is_empty()));
    assert!(parse_query("account.nosuch=1^ORDERBYnosuch", def).order.is_empty());
}

#[test]
fn seed_is_deterministic_realistic_and_idempotent() {
    let a = ServiceNow::open(None).unwrap();
    let b = ServiceNow::open(None).unwrap();
    a.seed().unwrap();
    b.seed().unwrap();
    a.seed().unwrap();
    for t in TABLE_NAMES {
        assert!(a.count(t) > 0, "{t}");
        assert_eq!(a.count(t), b.count(t));
        let strip = |v: Vec<Value>| -> Vec<Value> {
            v.into_iter()
                .map(|mut r| {
                    let m = r.as_object_mut().unwrap();
                    m.remove("sys_created_on");
                    m.remove("sys_updated_on");
                    m.remove("opened_at");
                    m.remove("closed_at");
                    m.remove("ordered");
                    r
                })
                .collect()
        };
        assert_eq!(strip(a.records(t)), strip(b.records(t)), "{t}");
    }
    assert_eq!(a.count("customer_contact"), 300);
    let companies = a.records("core_company");
    assert_eq!(companies.iter().filter(|c| c["vendor"] == "true").count(), 30);
    assert_eq!(companies.iter().filter(|c| c["vendor"] == "false").count(), 15);
    let contacts = a.records("customer_contact");
    let accounts: HashSet<String> =
        a.records("customer_account").iter().map(|r| r["sys_id"].as_str().unwrap().to_string()).collect();
    let emails: HashSet<&str> = contacts.iter().map(|c| c["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), contacts.len());
    let formats: HashSet<String> = contacts
        .iter()
        .map(|c| c["phone"].as_str().unwrap().chars().map(|ch| if ch.is_ascii_digit() { '9' } else { ch }).collect())
        .collect();
    assert!(formats.len() >= 5, "{formats:?}");
    for c in &contacts {
        assert!(accounts.contains(c["account"].as_str().unwrap()));
        assert!(is_sys_id(c["sys_id"].as_str().unwrap()));
        assert!(is_time(c["sys_updated_on"].as_str().unwrap()));
        assert!(c.as_object().unwrap().values().all(Value::is_string));
    }
    let updated: HashSet<&str> = contacts.iter().map(|c| &c["sys_updated_on"].as_str().unwrap()[..10]).collect();
    assert!(updated.len() > 14, "spread over weeks");
    let cases = a.records("sn_customerservice_case");
    assert!(cases.iter().any(|c| c["u_call_recording_url"].as_str().unwrap().starts_with("https://")));
    assert!(cases.iter().all(|c| c["number"].as_str().unwrap().starts_with("CS")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insert_get_update_delete() {
    let t = start(false).await;
    let acc = t.post("/api/now/table/customer_account", &json!({"name": "Acme Corp", "phone": 5550100})).await;
    assert_eq!(acc.status, 201, "{}", acc.body);
    let acc_id = acc.body["result"]["sys_id"].as_str().unwrap().to_string();
    assert!(is_sys_id(&acc_id));
    assert_eq!(acc.body["result"]["phone"], "5550100", "numbers become strings");
    assert_eq!(acc.body["result"]["number"], "ACC0001001");
    let r = t
        .post(
            "/api/now/v2/table/customer_contact",
            &json!({"first_name": "Abel", "last_name": "Tuter", "email": "abel@acme.example.com",
                        "account": acc_id, "active": false, "bogus": "x", "sys_created_by": "me"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let rec = &r.body["result"];
    let id = rec["sys_id"].as_str().unwrap().to_string();
    assert!(is_sys_id(&id));
    assert_eq!(header(&r, "location"), format!("{}/api/now/table/customer_contact/{id}", t.base));
    assert_eq!(rec["active"], "false");
    assert_eq!(rec["name"], "Abel Tuter");
    assert_eq!(rec["sys_created_by"], "admin");
    assert_eq!(rec["sys_mod_count"], "0");
    assert!(rec.get("bogus").is_none());
    assert_eq!(rec["mobile_phone"], "");
    let now = chrono::Utc::now().naive_utc();
    let on =
        chrono::NaiveDateTime::parse_from_str(rec["sys_updated_on"].as_str().unwrap(), "%Y-%m-%d %H:%M:%S").unwrap();
    assert!((now - on).num_seconds().abs() < 5, "UTC time");
    assert_eq!(
        rec["account"],
        json!({"link": format!("{}/api/now/table/customer_account/{acc_id}", t.base), "value": acc_id})
    );
    assert!(rec.as_object().unwrap().iter().all(|(k, v)| k == "account" || k == "company" || v.is_string()));
    assert_eq!(rec["company"], "", "empty reference");

    let g = t.get(&format!("/api/now/table/customer_contact/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body["result"], *rec);

    // PUT and PATCH change only what they are given and answer every field.
    let put = t
        .call(
            reqwest::Method::PUT,
            &format!("/api/now/table/customer_contact/{id}"),
            Some(&t.bearer()),
            Some(r#"{"title": "CTO", "last_name": "Tutor"}"#),
        )
        .await;
    assert_eq!(put.status, 200);
    assert_eq!(put.body["result"]["title"], "CTO");
    assert_eq!(put.body["result"]["name"], "Abel Tutor");
    assert_eq!(put.body["result"]["email"], "abel@acme.example.com");
    assert_eq!(put.body["result"]["sys_mod_count"], "1");
    let patch = t
        .call(
            reqwest::Method::PATCH,
            &format!("/api/now/v1/table/customer_contact/{id}"),
            Some(&t.bearer()),
            Some(r#"{"phone": "(555) 010-0101", "account": {"value": ""}}"#),
        )
        .await;
    assert_eq!(patch.status, 200);
    assert_eq!(patch.body["result"]["phone"], "(555) 010-0101");
    assert_eq!(patch.body["result"]["account"], "");
    assert_eq!(patch.body["result"]["title"], "CTO");
    let same = t
        .call(
            reqwest::Method::PATCH,
            &format!("/api/now/table/customer_contact/{id}"),
            Some(&t.bearer()),
            Some(r#"{"title": "CTO"}"#),
        )
        .await;
    assert_eq!(same.body["result"]["sys_mod_count"], "2", "no change, no update");

    // A case gets a number, defaults and its contact's account.
    let c2 = t
        .post("/api/now/table/customer_contact", &json!({"first_name": "Beth", "last_name": "A", "account": acc_id}))
        .await;
    let c2_id = c2.body["result"]["sys_id"].as_str().unwrap().to_string();
    let case = t
        .post(
            "/api/now/table/sn_customerservice_case",
            &json!({"short_description": "Call", "contact": c2_id, "contact_type": "phone",
                        "u_call_recording_url": "https://rec.example.com/1.mp3"}),
        )
        .await;
    assert_eq!(case.status, 201);
    assert_eq!(case.body["result"]["number"], "CS0001001");
    assert_eq!(case.body["result"]["state"], "1");
    assert_eq!(case.body["result"]["account"]["value"], acc_id);
    assert_eq!(case.body["result"]["u_call_recording_url"], "https://rec.example.com/1.mp3");
    assert!(is_time(case.body["result"]["opened_at"].as_str().unwrap()));
    let po = t.post("/api/now/table/proc_po", &json!({"short_description": "x"})).await;
    assert_eq!(po.body["result"]["number"], "PO0001001");

    // Delete, then 404s.
    let d = t
        .call(reqwest::Method::DELETE, &format!("/api/now/table/customer_contact/{id}"), Some(&t.bearer()), None)
        .await;
    assert_eq!(d.status, 204);
    assert_eq!(d.body, Value::Null);
    let not_found = json!({"error": {"message": "No Record found",
            "detail": "Record doesn't exist or ACL restricts the record retrieval"}, "status": "failure"});
    for m in [reqwest::Method::GET, reqwest::Method::DELETE, reqwest::Method::PUT, reqwest::Method::PATCH] {
        let r = t.call(m, &format!("/api/now/table/customer_contact/{id}"), Some(&t.bearer()), Some("{}")).await;
        assert_eq!((r.status, &r.body), (404, &not_found));
    }
    assert_eq!(t.count("customer_contact"), 1);

    // Errors.
    let bad = t.get("/api/now/table/incidentz").await;
    assert_eq!(
        (bad.status, bad.body),
        (400, json!({"error": {"message": "Invalid table incidentz", "detail": null}, "status": "failure"}))
    );
    let bad = t.call(reqwest::Method::POST, "/api/now/table/customer_contact", Some(&t.bearer()), Some("{nope")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["status"], "failure");
    assert!(bad.body["error"]["message"].is_string());
}

impl T {
    fn count(&self, table: &str) -> usize {
        self.sn.count(table)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_queries() {
    let t = start(false).await;
    let acme = t.post("/api/now/table/customer_account", &json!({"name": "Acme"})).await.body["result"]["sys_id"]
        .as_str()
        .unwrap()
        .to_string();
    let globex = t.post("/api/now/table/customer_account", &json!({"name": "Globex"})).await.body["result"]["sys_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (first, last, email, title, account, n) in [
        ("Ann", "Lee", "ann@acme.com", "CEO", &acme, 3),
        ("Bob", "Lee", "bob@globex.com", "", &globex, 10),
        ("Cid", "Moss", "cid@acme.com", "CTO", &acme, 2),
        ("Dee", "Abe", "", "Dev", &globex, 25),
    ] {
        let r = t
            .post(
                "/api/now/table/customer_contact",
                &json!({"first_name": first, "last_name": last, "email": email, "title": title,
                            "account": account, "u_score": n}),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let names = |q: &'static str| {
        let t = &t;
        async move { t.query("customer_contact", q, "first_name").await }
    };
    assert_eq!(names("last_name=Lee").await, ["Ann", "Bob"]);
    assert_eq!(names("last_name=lee").await, ["Ann", "Bob"], "text comparisons ignore case");
    assert_eq!(names("last_name!=Lee").await, ["Cid", "Dee"]);
    assert_eq!(names("emailLIKEacme").await, ["Ann", "Cid"]);
    assert_eq!(names("emailNOT LIKEacme").await, ["Bob", "Dee"]);
    assert_eq!(names("first_nameSTARTSWITHC").await, ["Cid"]);
    assert_eq!(names("emailENDSWITHglobex.com").await, ["Bob"]);
    assert_eq!(names("u_score>3").await, ["Bob", "Dee"], "numbers compare as numbers");
    assert_eq!(names("u_score>=3").await, ["Ann", "Bob", "Dee"]);
    assert_eq!(names("u_score<10").await, ["Ann", "Cid"]);
    assert_eq!(names("u_score<=10").await, ["Ann", "Bob", "Cid"]);
    assert_eq!(names("u_scoreBETWEEN3@10").await, ["Ann", "Bob"]);
    assert_eq!(names("emailISEMPTY").await, ["Dee"]);
    assert_eq!(names("titleISNOTEMPTY").await, ["Ann", "Cid", "Dee"]);
    assert_eq!(names("first_nameINBob,Dee,Zed").await, ["Bob", "Dee"]);
    assert_eq!(names("first_nameNOT INBob,Dee").await, ["Ann", "Cid"]);
    // a^b^ORc is a AND (b OR c).
    assert_eq!(names("last_name=Lee^first_name=Cid^ORtitle=CEO").await, ["Ann"]);
    assert_eq!(names("first_name=Cid^ORtitle=CEO^last_name=Lee").await, ["Ann"]);
    assert_eq!(names("first_name=Ann^NQfirst_name=Dee").await, ["Ann", "Dee"]);
    assert_eq!(names("account.name=Globex").await, ["Bob", "Dee"]);
    assert_eq!(names(Box::leak(format!("account={acme}").into_boxed_str())).await, ["Ann", "Cid"]);
    assert_eq!(names("nosuchfield=1^last_name=Lee^garbage").await, ["Ann", "Bob"], "invalid parts ignored");
    assert_eq!(names("ORDERBYDESCfirst_name").await, ["Dee", "Cid", "Bob", "Ann"]);
    assert_eq!(names("ORDERBYlast_name^ORDERBYDESCfirst_name").await, ["Dee", "Bob", "Ann", "Cid"]);
    assert_eq!(names("ORDERBYDESCu_score").await, ["Dee", "Bob", "Ann", "Cid"]);
    assert_eq!(names("first_name=Nobody").await, Vec::<String>::new());

    // Plain field=value filters AND with sysparm_query.
    let r =
        t.get(&format!("/api/now/table/customer_contact?last_name=Lee&{}", q(&[("sysparm_query", "title=CEO")]))).await;
    assert_eq!(r.body["result"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["result"][0]["first_name"], "Ann");
    // v1 answers 404 when nothing matches, v2 and the unversioned path an empty list.
    assert_eq!(t.get("/api/now/v1/table/customer_contact?first_name=Zed").await.status, 404);
    let r = t.get("/api/now/v2/table/customer_contact?first_name=Zed").await;
    assert_eq!((r.status, r.body), (200, json!({"result": []})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_sync_query_on_seed_data() {
    let t = start(true).await;
    let all = t.sn.records("customer_contact");
    let mut times: Vec<String> = all.iter().map(|r| r["sys_updated_on"].as_str().unwrap().to_string()).collect();
    times.sort();
    let cut = times[times.len() / 2].clone();
    let want = times.iter().filter(|x| **x > cut).count();
    let (date, time) = cut.split_once(' ').unwrap();
    for q in [
        format!("sys_updated_on>{cut}^ORDERBYsys_updated_on"),
        format!("sys_updated_on>javascript:gs.dateGenerate('{date}','{time}')^ORDERBYsys_updated_on"),
    ] {
        let got = t.query("customer_contact", &q, "sys_updated_on").await;
        assert_eq!(got.len(), want, "{q}");
        assert!(got.iter().all(|x| *x > cut));
        assert!(got.windows(2).all(|w| w[0] <= w[1]), "ascending");
    }
    // The date helpers and the ON / RELATIVE operators filter as the instance does (UTC here):
    // a record touched now is updated today, within the last hour, not before yesterday.
    let touched =
        t.post("/api/now/table/customer_contact", &json!({"last_name": "Now", "email": "now@example.com"})).await;
    let now_id = touched.body["result"]["sys_id"].as_str().unwrap().to_string();
    let now_stamp = touched.body["result"]["sys_updated_on"].as_str().unwrap().to_string();
    for (q, has) in [
        ("sys_updated_on>=javascript:gs.beginningOfToday()", true),
        ("sys_updated_on<=javascript:gs.endOfToday()", true),
        ("sys_updated_on>=javascript:gs.daysAgoStart(1)", true),
        ("sys_updated_on<javascript:gs.beginningOfToday()", false),
        ("sys_updated_on<=javascript:gs.endOfYesterday()", false),
        ("sys_updated_on>=javascript:gs.minutesAgoStart(5)", true),
        ("sys_updated_on>=javascript:gs.beginningOfTomorrow()", false),
        ("sys_updated_onONToday@javascript:gs.beginningOfToday()@javascript:gs.endOfToday()", true),
        ("sys_updated_onONYesterday@javascript:gs.beginningOfYesterday()@javascript:gs.endOfYesterday()", false),
        ("sys_updated_onRELATIVEGT@hour@ago@1", true),
        ("sys_updated_onRELATIVELT@hour@ago@1", false),
        ("sys_updated_onRELATIVEGT@minute@ahead@5", false),
    ] {
        let ids = t.query("customer_contact", &format!("{q}^last_name=now"), "sys_id").await;
        assert_eq!(ids.contains(&now_id), has, "{q} (updated {now_stamp})");
    }
    // Text compares ignoring case.
    assert_eq!(
        t.query("customer_contact", "last_name=NOW^email=NOW@EXAMPLE.COM", "sys_id").await,
        vec![now_id.clone()]
    );
    // An incident table, numbered INC.
    let inc = t.post("/api/now/table/incident", &json!({"short_description": "Line down", "caller_id": now_id})).await;
    assert_eq!(inc.status, 201, "{}", inc.body);
    assert!(inc.body["result"]["number"].as_str().unwrap().starts_with("INC"), "{}", inc.body);
    let vendors = t.query("core_company", "vendor=true", "vendor").await;
    assert_eq!(vendors.len(), 30);
    let desc = t.query("sn_customerservice_case", "ORDERBYDESCsys_updated_on", "sys_updated_on").await;
    assert!(desc.windows(2).all(|w| w[0] >= w[1]), "descending");
    assert_eq!(desc.len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_fields_and_display_values() {
    let t = start(true).await;
    let r = t.get("/api/now/table/customer_contact?sysparm_limit=100&sysparm_offset=100").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["result"].as_array().unwrap().len(), 100);
    assert_eq!(header(&r, "x-total-count"), "300");
    let path = format!("{}/api/now/table/customer_contact", t.base);
    assert_eq!(
        header(&r, "link"),
        format!(
            "<{path}?sysparm_limit=100&sysparm_offset=0>;rel=\"first\",<{path}?sysparm_limit=100&sysparm_offset=0>;rel=\"prev\",\
                 <{path}?sysparm_limit=100&sysparm_offset=200>;rel=\"next\",<{path}?sysparm_limit=100&sysparm_offset=200>;rel=\"last\""
        )
    );
    let all = t.get("/api/now/table/customer_contact").await;
    let ids: Vec<&Value> = all.body["result"].as_array().unwrap().iter().map(|x| &x["sys_id"]).collect();
    assert_eq!(ids.len(), 300, "default limit covers all");
    let page: Vec<&Value> = r.body["result"].as_array().unwrap().iter().map(|x| &x["sys_id"]).collect();
    assert_eq!(page, ids[100..200]);
    let first = t.get("/api/now/table/customer_contact?sysparm_limit=120&sysparm_query=active%3Dtrue").await;
    let link = header(&first, "link");
    assert!(!link.contains("rel=\"prev\""), "{link}");
    assert!(link.contains("sysparm_query=active%3Dtrue&sysparm_limit=120&sysparm_offset=120>;rel=\"next\""), "{link}");
    let last = t.get("/api/now/table/customer_contact?sysparm_limit=120&sysparm_offset=240").await;
    assert_eq!(last.body["result"].as_array().unwrap().len(), 60);
    assert!(!header(&last, "link").contains("rel=\"next\""));
    let neg = t.get("/api/now/table/customer_contact?sysparm_offset=-1").await;
    assert_eq!(
        (neg.status, neg.body),
        (
            400,
            json!({"error": {"detail": "Negative offset is not supported", "message": "offset is -1"},
                       "status": "failure"})
        )
    );

    // Fields (invalid names ignored, dot-walking allowed).
    let r =
        t.get("/api/now/table/customer_contact?sysparm_limit=1&sysparm_fields=email,nope,account,account.name").await;
    let rec = r.body["result"][0].as_object().unwrap();
    let mut keys: Vec<&String> = rec.keys().collect();
    keys.sort();
    assert_eq!(keys, ["account", "account.name", "email"]);
    let acc_id = rec["account"]["value"].as_str().unwrap();
    assert!(rec["account"]["link"].as_str().unwrap().ends_with(&format!("/api/now/table/customer_account/{acc_id}")));
    let acc_name = rec["account.name"].as_str().unwrap().to_string();
    assert!(!acc_name.is_empty());

    let dv = |mode: &str, exclude: bool| {
        format!(
            "/api/now/table/customer_contact?sysparm_limit=1&sysparm_fields=account,email&sysparm_display_value={mode}{}",
            if exclude { "&sysparm_exclude_reference_link=true" } else { "" }
        )
    };
    let r = t.get(&dv("true", false)).await;
    let email = r.body["result"][0]["email"].clone();
    assert_eq!(r.body["result"][0]["account"]["display_value"], acc_name.as_str());
    assert!(r.body["result"][0]["account"]["link"].is_string());
    let r = t.get(&dv("true", true)).await;
    assert_eq!(r.body["result"][0]["account"], acc_name.as_str());
    let r = t.get(&dv("all", false)).await;
    assert_eq!(r.body["result"][0]["email"], json!({"display_value": email, "value": email}));
    assert_eq!(r.body["result"][0]["account"]["value"], acc_id);
    assert_eq!(r.body["result"][0]["account"]["display_value"], acc_name.as_str());
    let r = t.get(&dv("false", true)).await;
    assert_eq!(r.body["result"][0]["account"], acc_id);
    let r = t.get("/api/now/table/sn_customerservice_case?sysparm_limit=1&sysparm_display_value=true&sysparm_fields=state,priority").await;
    assert!(
        ["New", "Open", "Awaiting Info", "Resolved", "Closed"]
            .contains(&r.body["result"][0]["state"].as_str().unwrap())
    );
    assert!(r.body["result"][0]["priority"].as_str().unwrap().contains(" - "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_roles_and_faults() {
    let t = start(true).await;
    let unauth = json!({"error": {"message": "User Not Authenticated", "detail": "Required to provide Auth information"},
                            "status": "failure"});
    let path = "/api/now/table/customer_contact?sysparm_limit=1";
    for auth in [None, Some("Bearer nope"), Some("Basic YWRtaW46d3Jvbmc="), Some("Basic !!")] {
        let r = t.call(reqwest::Method::GET, path, auth, None).await;
        assert_eq!((r.status, &r.body), (401, &unauth), "{auth:?}");
    }
    let basic = format!("Basic {}", STANDARD.encode("admin:pw1"));
    let r = t.call(reqwest::Method::GET, path, Some(&basic), None).await;
    assert_eq!(r.status, 200);
    let created = t
        .call(reqwest::Method::POST, "/api/now/table/core_company", Some(&basic), Some(r#"{"name":"Basic Co"}"#))
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.body["result"]["sys_created_by"], "admin");

    let forbidden = json!({"error": {"detail": "Failed API level ACL Validation", "message": "User Not Authorized"}, "status": "failure"});
    let reader = format!("Bearer {}", t.password_token("reader", "pw2").await);
    assert_eq!(t.call(reqwest::Method::GET, path, Some(&reader), None).await.status, 200);
    let r = t.call(reqwest::Method::POST, "/api/now/table/customer_contact", Some(&reader), Some("{}")).await;
    assert_eq!((r.status, &r.body), (403, &forbidden));
    let r = t.call(reqwest::Method::GET, "/api/now/table/proc_po", Some(&reader), None).await;
    assert_eq!((r.status, &r.body), (403, &forbidden));
    let r = t.call(reqwest::Method::POST, "/api/now/table/customer_account", Some(&reader), Some("{}")).await;
    assert_eq!(r.status, 201, "write implies the right to write");
    for (user, pw) in [("nobody", "pw3"), ("stranger", "pw4")] {
        let tok = format!("Bearer {}", t.password_token(user, pw).await);
        assert_eq!(t.call(reqwest::Method::GET, path, Some(&tok), None).await.status, 403, "{user}");
    }
    let r = t.call(reqwest::Method::GET, path, Some(&format!("Basic {}", STANDARD.encode("nobody:pw3"))), None).await;
    assert_eq!(r.status, 403);
    let cc = t
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "sn_client"),
            ("client_secret", "sn_secret"),
        ])
        .await;
    let r = t
        .call(reqwest::Method::GET, "/api/now/table/proc_po?sysparm_limit=1", Some(&format!("Bearer {cc}")), None)
        .await;
    assert_eq!(r.status, 200, "client credentials act as admin");

    // Faults.
    t.faults.set(Knobs { rate_limit_per_minute: Some(2), ..Default::default() });
    assert_eq!(t.get(path).await.status, 200);
    assert_eq!(t.get(path).await.status, 200);
    let r = t.get(path).await;
    assert_eq!(r.status, 429);
    assert!(header(&r, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(header(&r, "x-ratelimit-limit"), "2");
    let reset: u64 = header(&r, "x-ratelimit-reset").parse().unwrap();
    assert!(reset > 1_700_000_000);
    assert!(!header(&r, "x-ratelimit-rule").is_empty());
    assert_eq!(r.body["error"]["message"], "Rate limit exceeded");
    assert_eq!(r.body["status"], "failure");
    t.faults.set(Knobs { failure_rate: 1.0, ..Default::default() });
    let r = t.get(path).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body["status"], "failure");
    assert!(r.body["error"]["message"].is_string() && r.body["error"]["detail"].is_string());
    t.faults.set(Knobs::default());
    let r = t.get("/api/now/stats/customer_contact").await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_acls_hide_rows_from_callers_without_their_role() {
    let t = start(true).await;
    t.sn.add_user("agent", "pw5", &["customer_contact_read", "customer_contact_agent"]);
    t.sn.hide_rows("customer_contact", "customer_contact_agent");
    let basic = |u: &str, pw: &str| format!("Basic {}", STANDARD.encode(format!("{u}:{pw}")));
    let path = "/api/now/table/customer_contact?sysparm_limit=1";
    // The table check passes, the rows are hidden: an empty list, not a 403.
    let r = t.call(reqwest::Method::GET, path, Some(&basic("reader", "pw2")), None).await;
    assert_eq!((r.status, &r.body), (200, &json!({"result": []})));
    assert_eq!(header(&r, "x-total-count"), "0");
    let r =
        t.call(reqwest::Method::GET, "/api/now/v1/table/customer_contact", Some(&basic("reader", "pw2")), None).await;
    assert_eq!(r.status, 404);
    let id = t.sn.records("customer_contact")[0]["sys_id"].as_str().unwrap().to_string();
    let one = format!("/api/now/table/customer_contact/{id}");
    let r = t.call(reqwest::Method::GET, &one, Some(&basic("reader", "pw2")), None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["detail"], "Record doesn't exist or ACL restricts the record retrieval");
    // The ACL's role, admin, and client credentials see them; no role at all is still a 403.
    for auth in [basic("agent", "pw5"), basic("admin", "pw1")] {
        let r = t.call(reqwest::Method::GET, path, Some(&auth), None).await;
        assert_eq!(r.body["result"].as_array().map(Vec::len), Some(1));
    }
    assert_eq!(t.call(reqwest::Method::GET, path, Some(&basic("nobody", "pw3")), None).await.status, 403);
    // Other tables are untouched.
    let r = t
        .call(
            reqwest::Method::GET,
            "/api/now/table/customer_account?sysparm_limit=1",
            Some(&basic("reader", "pw2")),
            None,
        )
        .await;
    assert_eq!(r.body["result"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_hourly_rate_limit_rule_stamps_every_answer_and_denies_past_it() {
    use crate::faults::ServiceNowKnobs;
    let t = start(true).await;
    let path = "/api/now/table/customer_contact?sysparm_limit=1";
    let r = t.get(path).await;
    assert!(r.headers.get("x-ratelimit-limit").is_none(), "off by default");
    t.faults.set(Knobs { servicenow: ServiceNowKnobs { rate_limit_per_hour: Some(2) }, ..Default::default() });
    let first = t.get(path).await;
    assert_eq!(
        (first.status, header(&first, "x-ratelimit-limit"), header(&first, "x-ratelimit-remaining")),
        (200, "2".into(), "1".into())
    );
    let reset: u64 = header(&first, "x-ratelimit-reset").parse().unwrap();
    assert_eq!(reset % 3600, 0, "the top of the next hour");
    assert_eq!(header(&first, "x-ratelimit-rule"), RATE_LIMIT_RULE);
    let missing = t.get("/api/now/table/customer_contact/0123456789abcdef0123456789abcdef").await;
    assert_eq!((missing.status, header(&missing, "x-ratelimit-remaining")), (404, "0".into()), "every answer");
    let denied = t.get(path).await;
    assert_eq!(denied.status, 429);
    assert_eq!(
        denied.body,
        json!({"error": {"message": "Rate limit exceeded", "detail": "Rate limit of 2 requests per hour for Table API exceeded"}, "status": "failure"})
    );
    let retry: u64 = header(&denied, "retry-after").parse().unwrap();
    assert!((1..=3600).contains(&retry));
    assert_eq!(
        (header(&denied, "x-ratelimit-remaining"), header(&denied, "x-ratelimit-reset")),
        ("0".into(), reset.to_string())
    );
    t.faults.set(Knobs { servicenow: ServiceNowKnobs { rate_limit_per_hour: Some(2) }, ..Default::default() });
    assert_eq!(t.get(path).await.status, 200, "new knobs start a new window");
}
