//! Tests of the CRM emulator through HTTP, against a provider and the CRM on a free port.

use std::time::{Duration, Instant};

use super::*;
use crate::faults::Knobs;
use crate::oauth_provider::{ClientConfig, ProviderConfig, serve};

const ALL: &[&str] = &["ZohoCRM.modules.ALL"];

struct T {
    base: String,
    http: reqwest::Client,
    crm: Crm,
    provider: Provider,
    faults: Faults,
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

async fn start() -> T {
    let mut cfg = ProviderConfig::zoho("");
    cfg.clients = vec![ClientConfig::new("c_us", "s_us", "us"), ClientConfig::new("c_in", "s_in", "in")];
    let provider = Provider::new(cfg);
    let crm = Crm::open(None).unwrap();
    let faults = Faults::default();
    let router = provider.oauth_router().merge(crm.router(provider.clone(), faults.clone()));
    let (addr, _server) = serve(router).await.unwrap();
    T { base: format!("http://{addr}"), http: reqwest::Client::new(), crm, provider, faults }
}

fn q(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

impl T {
    /// An access token of `client` ("c_us" or "c_in") with `scopes`, through the token endpoint.
    async fn token(&self, client: &str, scopes: &[&str]) -> String {
        let code = self.provider.mint_self_client_code(client, scopes);
        let secret = if client == "c_us" { "s_us" } else { "s_in" };
        let url = format!(
            "{}/oauth/v2/token?{}",
            self.base,
            q(&[
                ("grant_type", "authorization_code"),
                ("client_id", client),
                ("client_secret", secret),
                ("code", &code)
            ])
        );
        let r = self.http.post(url).send().await.unwrap();
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("Zoho-oauthtoken {token}"));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb.header("content-type", "application/json").body(b.to_string());
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        Resp { status, headers, text, body }
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(reqwest::Method::GET, path, token, None, &[]).await
    }

    async fn post(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.call(reqwest::Method::POST, path, token, Some(body), &[]).await
    }

    async fn put(&self, path: &str, token: &str, body: &Value) -> Resp {
        self.call(reqwest::Method::PUT, path, token, Some(body), &[]).await
    }

    async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(reqwest::Method::DELETE, path, token, None, &[]).await
    }

    async fn search(&self, token: &str, pairs: &[(&str, &str)]) -> Resp {
        self.get(&format!("/crm/v7/Leads/search?{}", q(pairs)), token).await
    }
}

fn ids_of(v: &Value) -> Vec<String> {
    v["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn time_formatting_and_parsing() {
    // 2023-05-10T08:10:47Z
    let ms = 1_683_706_247_000;
    assert_eq!(format_time(ms, -7 * 3600), "2023-05-10T01:10:47-07:00");
    assert_eq!(format_time(ms, 5 * 3600 + 1800), "2023-05-10T13:40:47+05:30");
    assert_eq!(format_time(ms, 0), "2023-05-10T08:10:47+00:00");
    assert_eq!(format_time(0, 0), "1970-01-01T00:00:00+00:00");
    assert_eq!(format_time(951_782_400_000, 0), "2000-02-29T00:00:00+00:00");
    for s in [
        "2023-05-10T01:10:47-07:00",
        "2023-05-10T13:40:47+05:30",
        "2023-05-10T08:10:47Z",
        "2023-05-10T08:10:47.999+0000",
        "2023-05-10T13:40:47 05:30",
    ] {
        assert_eq!(parse_time(s), Some(ms / 1000), "{s}");
    }
    for bad in
        ["2023-05-10", "2023-13-10T00:00:00Z", "2023-05-10T01:10:47+7", "yesterday", "2023-05-10T01:10:47-07:00x"]
    {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}

#[test]
fn criteria_parsing() {
    let c = parse_criteria("((Last_Name:equals:Doe)and(Company:starts_with:Zyl))").unwrap();
    assert_eq!(c.conditions(), 2);
    assert!(matches!(c, Crit::And(ref v) if v.len() == 2));
    // and binds tighter than or; spaces and case are tolerated.
    let c = parse_criteria("(A:equals:1) OR (B:equals:2) and (C:equals:3)").unwrap();
    assert!(matches!(c, Crit::Or(ref v) if v.len() == 2 && matches!(v[1], Crit::And(_))));
    let Crit::Cond(c) = parse_criteria(r"(Company:in:A\,B,C \(x\))").unwrap() else { panic!() };
    assert_eq!(c.values, ["A,B", "C (x)"]);
    let Crit::Cond(c) = parse_criteria("(Modified_Time:greater_than:2023-05-10T01:10:47-07:00)").unwrap() else {
        panic!()
    };
    assert_eq!(c.values, ["2023-05-10T01:10:47-07:00"]);
    assert!(parse_criteria("Last_Name:equals:Doe").is_some());
    for bad in [
        "(Last_Name:equals:Doe",
        "(Last_Name:like:Doe)",
        "(Last_Name:equals:)",
        "((A:equals:1)xor(B:equals:2))",
        "(A:between:1)",
        "(A:equals:x(y))",
        "(Bad Name:equals:1)",
        "(A:equals:1))",
        "",
    ] {
        assert_eq!(parse_criteria(bad), None, "{bad}");
    }
}

#[test]
fn scopes() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(scope_allows(&s(&["ZohoCRM.modules.ALL"]), "Leads", Op::Delete));
    assert!(scope_allows(&s(&["zohocrm.modules.leads.read"]), "Leads", Op::Read));
    assert!(!scope_allows(&s(&["ZohoCRM.modules.leads.READ"]), "Leads", Op::Create));
    assert!(!scope_allows(&s(&["ZohoCRM.modules.leads.READ"]), "Contacts", Op::Read));
    assert!(scope_allows(&s(&["ZohoCRM.modules.purchaseorders.WRITE"]), "Purchase_Orders", Op::Update));
    assert!(!scope_allows(&s(&["ZohoCRM.modules.purchaseorders.WRITE"]), "Purchase_Orders", Op::Read));
    assert!(scope_allows(&s(&["ZohoCRM.modules.READ"]), "Deals", Op::Read));
    assert!(scope_allows(&s(&["ZohoCRM.modules.deals.CREATE"]), "Deals", Op::Upsert));
    assert!(!scope_allows(&s(&["ZohoCRM.modules.deals.UPDATE"]), "Deals", Op::Upsert));
    assert!(!scope_allows(&s(&["ZohoCRM.settings.ALL", "ZohoCRM.users.ALL"]), "Leads", Op::Read));
    assert!(!scope_allows(&[], "Leads", Op::Read));
}

#[test]
fn page_tokens_round_trip() {
    let t = PageToken {
        sort: SortBy::Modified,
        desc: false,
        key: -5,
        id: "4150868000001000001".into(),
        page: 11,
        issued_ms: 7,
        bound: u64::MAX,
    };
    let back = PageToken::decode(&t.encode()).unwrap();
    assert_eq!(
        (back.sort, back.desc, back.key, back.id.as_str(), back.page, back.issued_ms, back.bound),
        (SortBy::Modified, false, -5, "4150868000001000001", 11, 7, u64::MAX)
    );
    assert!(PageToken::decode("zz").is_none());
    assert!(PageToken::decode("abc").is_none());
    assert!(PageToken::decode("").is_none());
}

#[test]
fn seed_is_deterministic_and_realistic() {
    let a = Crm::open(None).unwrap();
    let b = Crm::open(None).unwrap();
    a.seed("us", 50, 20, 10).unwrap();
    b.seed("us", 50, 20, 10).unwrap();
    assert_eq!((a.count("us", "Leads"), a.count("us", "contacts"), a.count("us", "Deals")), (50, 20, 10));
    assert_eq!(a.count("in", "Leads"), 0);
    assert_eq!(a.count("us", "Nope"), 0);
    let strip = |c: &Crm| {
        let db = c.db();
        let mut st = db.conn.prepare("SELECT id, data FROM records ORDER BY id").unwrap();
        let rows: Vec<(String, String)> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect();
        rows.into_iter()
            .map(|(id, d)| {
                let mut m = parse_record(&d);
                m.remove("Created_Time");
                m.remove("Modified_Time");
                m.remove("Closing_Date");
                (id, m)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a), strip(&b));
    // Seeding again keeps e-mails unique.
    a.seed("us", 50, 0, 0).unwrap();
    let db = a.db();
    let n: i64 = db
        .conn
        .query_row(
            "SELECT COUNT(DISTINCT lower(json_extract(data, '$.Email'))) FROM records WHERE module = 'Leads'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 100);
    let (id, data): (String, String) = db
        .conn
        .query_row("SELECT id, data FROM records WHERE module = 'Leads' ORDER BY id LIMIT 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    drop(db);
    assert_eq!(id.len(), 19);
    assert!(id.starts_with("5725767"));
    let rec = parse_record(&data);
    assert_eq!(
        rec["Owner"],
        json!({"name": "Patricia Boyle", "id": "5725767000000411001", "email": "patricia.boyle@zylker.com"})
    );
    assert!(rec["Phone"].as_str().unwrap().starts_with("+1-555-"));
    assert!(rec["Created_Time"].as_str().unwrap().ends_with("-07:00"));
    assert!(LEAD_STATUSES.contains(&rec["Lead_Status"].as_str().unwrap()));
    let created = parse_time(rec["Created_Time"].as_str().unwrap()).unwrap();
    let modified = parse_time(rec["Modified_Time"].as_str().unwrap()).unwrap();
    let now = now_ms() / 1000;
    assert!(created <= modified && modified <= now - 3600 && created >= now - 28 * 86_400, "{rec:?}");
    let email = rec["Email"].as_str().unwrap().to_uppercase();
    assert_eq!(a.find_by_email("us", "Leads", &email).unwrap()["id"], id.as_str());
    assert!(a.find_by_email("in", "Leads", &email).is_none());
}

#[tokio::test]
async fn insert_get_update_delete() {
    let t = start().await;
    let tok = t.token("c_us", ALL).await;
    let body = json!({"data": [
        {"Last_Name": "Doe", "First_Name": "John", "Company": "Zylker", "Email": "j.doe@zylker.com"},
        {"First_Name": "NoLast"},
        {"Last_Name": "Dup", "Email": "J.DOE@zylker.com"},
        {"Last_Name": 5},
        {"Last_Name": "Bad mail", "Email": "not-an-email"},
        {"Last_Name": "x".repeat(81)},
        {"Last_Name": "Weird", "Bad Field": 1},
    ]});
    let r = t.post("/crm/v7/Leads", &tok, &body).await;
    assert_eq!(r.status, 207, "{}", r.text);
    let items = r.body["data"].as_array().unwrap();
    let ok = &items[0];
    assert_eq!(
        (&ok["code"], &ok["message"], &ok["status"]),
        (&json!("SUCCESS"), &json!("record added"), &json!("success"))
    );
    let d = &ok["details"];
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["$approval_state", "Created_By", "Created_Time", "Modified_By", "Modified_Time", "id"]);
    assert_eq!(d["Created_By"], json!({"name": "Patricia Boyle", "id": "5725767000000411001"}));
    assert_eq!(d["$approval_state"], "approved");
    assert!(d["Created_Time"].as_str().unwrap().ends_with("-07:00"));
    let id = d["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 19);
    assert_eq!(
        items[1],
        json!({"code": "MANDATORY_NOT_FOUND", "details": {"api_name": "Last_Name", "json_path": "$.data[1].Last_Name"}, "message": "required field not found", "status": "error"})
    );
    assert_eq!(
        items[2],
        json!({"code": "DUPLICATE_DATA", "details": {"api_name": "Email", "duplicate_record": {"id": id}, "json_path": "$.data[2].Email", "id": id, "more_records": false}, "message": "duplicate data", "status": "error"})
    );
    assert_eq!(items[3]["code"], "INVALID_DATA");
    assert_eq!(items[3]["details"]["json_path"], "$.data[3].Last_Name");
    assert_eq!(items[4]["details"]["api_name"], "Email");
    assert_eq!(items[5]["details"]["maximum_length"], 80);
    assert_eq!(
        items[6],
        json!({"code": "INVALID_DATA", "details": {"api_name": "Bad Field", "json_path": "$.data[6].Bad Field"}, "message": "the field api name given seems to be invalid", "status": "error"})
    );
    assert_eq!(t.crm.count("us", "Leads"), 1);

    // All ok: 201; all failed: 400.
    let r = t.post("/crm/v8/Leads", &tok, &json!({"data": [{"Last_Name": "Roe", "Email": "roe@zylker.com"}]})).await;
    assert_eq!(r.status, 201);
    let id2 = r.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    assert!(id2 > id, "ids increase");
    let r = t.post("/crm/v7/Leads", &tok, &json!({"data": [{"First_Name": "x"}]})).await;
    assert_eq!(r.status, 400);
    // Mandatory fields of other modules.
    let r = t
        .post(
            "/crm/v7/Deals",
            &tok,
            &json!({"data": [{"Deal_Name": "D"}, {"Deal_Name": "D", "Stage": "Qualification", "Amount": "1500"}]}),
        )
        .await;
    assert_eq!(r.status, 207);
    assert_eq!(r.body["data"][0]["details"]["api_name"], "Stage");
    // A lookup takes the id of a record of its module, not a name or an unknown id, and reads
    // back as `{name, id}`.
    let v = t.post("/crm/v7/Vendors", &tok, &json!({"data": [{"Vendor_Name": "Acme Supply"}]})).await;
    let vendor = v.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    for bad in [json!("Acme Supply"), json!({"id": "1"}), json!({"name": "Acme Supply"})] {
        let r =
            t.post("/crm/v7/Purchase_Orders", &tok, &json!({"data": [{"Subject": "PO", "Vendor_Name": bad}]})).await;
        assert_eq!(
            (&r.body["data"][0]["code"], &r.body["data"][0]["details"]["expected_data_type"]),
            (&json!("INVALID_DATA"), &json!("lookup")),
            "{bad}: {}",
            r.text
        );
    }
    let r = t
        .post("/crm/v7/Purchase_Orders", &tok, &json!({"data": [{"Subject": "PO", "Vendor_Name": {"id": vendor}}]}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let po = r.body["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let r = t.get(&format!("/crm/v7/Purchase_Orders/{po}?fields=Vendor_Name"), &tok).await;
    assert_eq!(r.body["data"][0]["Vendor_Name"], json!({"name": "Acme Supply", "id": vendor}), "{}", r.text);
    // Picklists take their values only (the error lists them); dates are YYYY-MM-DD.
    let r = t.post("/crm/v7/Deals", &tok, &json!({"data": [{"Deal_Name": "D", "Stage": "Almost there"}]})).await;
    let d = &r.body["data"][0]["details"];
    assert_eq!((&d["expected_data_type"], &d["api_name"]), (&json!("picklist"), &json!("Stage")), "{}", r.text);
    assert!(d["supported_values"].as_array().unwrap().contains(&json!("Closed Won")), "{}", r.text);
    for bad in ["31/12/2026", "2026-13-01", "2026-12-01T10:00:00+00:00"] {
        let r = t
            .post(
                "/crm/v7/Deals",
                &tok,
                &json!({"data": [{"Deal_Name": "D", "Stage": "Qualification", "Closing_Date": bad}]}),
            )
            .await;
        assert_eq!(r.body["data"][0]["details"]["expected_data_type"], "date", "{bad}: {}", r.text);
    }
    for (value, ok) in [("2026-12-01 10:00:00", false), ("2026-12-01", false), ("2026-12-01T10:00:00+05:30", true)] {
        let r = t.post("/crm/v7/Calls", &tok, &json!({"data": [{"Subject": "Call", "Call_Start_Time": value}]})).await;
        let got = if ok { json!(null) } else { json!("datetime") };
        assert_eq!(r.body["data"][0]["details"]["expected_data_type"], got, "{value}: {}", r.text);
    }
    let r = t
        .post(
            "/crm/v7/Deals",
            &tok,
            &json!({"data": [{"Deal_Name": "D", "Stage": "Closed Won", "Closing_Date": "2026-12-31"}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = t.post("/crm/v7/Tasks", &tok, &json!({"data": [{}]})).await;
    assert_eq!(r.status, 201);

    // Over 100, bad bodies.
    let many: Vec<Value> = (0..101).map(|i| json!({"Last_Name": format!("L{i}")})).collect();
    let r = t.post("/crm/v7/Leads", &tok, &json!({ "data": many })).await;
    assert_eq!(
        (r.status, &r.body["data"][0]["code"], &r.body["data"][0]["details"]),
        (400, &json!("LIMIT_EXCEEDED"), &json!({"maximum_length": 100, "api_name": "data"}))
    );
    assert_eq!(t.post("/crm/v7/Leads", &tok, &json!({"rows": []})).await.body["code"], "MANDATORY_NOT_FOUND");
    let r = t.call(reqwest::Method::POST, "/crm/v7/Leads", &tok, None, &[]).await;
    assert_eq!((r.status, &r.body["code"]), (400, &json!("INVALID_DATA")));

    // Get one.
    let r = t.get(&format!("/crm/v7/Leads/{id}"), &tok).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-type"], JSON_CT);
    let rec = &r.body["data"][0];
    assert_eq!((&rec["id"], &rec["Last_Name"], &rec["Email"]), (&json!(id), &json!("Doe"), &json!("j.doe@zylker.com")));
    assert_eq!(rec["Owner"]["email"], "patricia.boyle@zylker.com");
    let r = t.get(&format!("/crm/v7/Leads/{id}?fields=Email,Nope"), &tok).await;
    assert_eq!(r.body, json!({"data": [{"id": id, "Email": "j.doe@zylker.com", "Nope": null}]}));
    let r = t.get("/crm/v7/Leads/1234567890123456789", &tok).await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"code": "INVALID_DATA", "details": {}, "message": "the id given seems to be invalid", "status": "error"})
        )
    );

    // Update one, bulk, If-Unmodified-Since.
    let r = t.put(&format!("/crm/v7/Leads/{id}"), &tok, &json!({"data": [{"Lead_Status": "Contacted"}]})).await;
    assert_eq!((r.status, &r.body["data"][0]["message"]), (200, &json!("record updated")));
    assert_eq!(r.body["data"][0]["details"]["id"], id.as_str());
    assert_eq!(t.get(&format!("/crm/v7/Leads/{id}"), &tok).await.body["data"][0]["Lead_Status"], "Contacted");
    let r = t
            .put("/crm/v7/Leads", &tok, &json!({"data": [{"id": id2, "Phone": "+1-555-000-0000"}, {"id": "999"}, {"Phone": "1"}, {"id": id2, "Email": "J.Doe@zylker.com"}, {"id": id2, "Last_Name": ""}]}))
            .await;
    assert_eq!(r.status, 207);
    let items = r.body["data"].as_array().unwrap();
    assert_eq!(items[0]["status"], "success");
    let invalid_id = |i: usize| json!({"code": "INVALID_DATA", "details": {"api_name": "id", "json_path": format!("$.data[{i}].id")}, "message": "the id given seems to be invalid", "status": "error"});
    assert_eq!((&items[1], &items[2]), (&invalid_id(1), &invalid_id(2)));
    assert_eq!(items[3]["code"], "DUPLICATE_DATA");
    assert_eq!(items[4]["code"], "MANDATORY_NOT_FOUND");
    let past = format_time(now_ms() - 3_600_000, -7 * 3600);
    let r = t
        .call(
            reqwest::Method::PUT,
            &format!("/crm/v7/Leads/{id}"),
            &tok,
            Some(&json!({"data": [{"Lead_Status": "Junk Lead"}]})),
            &[("If-Unmodified-Since", &past)],
        )
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(r.body["data"][0]["code"], "ALREADY_MODIFIED");
    assert_eq!(r.body["data"][0]["message"], "record updated time has already passed if-unmodified-since time");
    let future = format_time(now_ms() + 3_600_000, 0);
    let r = t
        .call(
            reqwest::Method::PUT,
            &format!("/crm/v7/Leads/{id}"),
            &tok,
            Some(&json!({"data": [{"Lead_Status": "Junk Lead"}]})),
            &[("If-Unmodified-Since", &future)],
        )
        .await;
    assert_eq!(r.status, 200);

    // Delete.
    let r = t.delete(&format!("/crm/v7/Leads?ids={id},999"), &tok).await;
    assert_eq!(r.status, 207);
    assert_eq!(
        r.body["data"][0],
        json!({"code": "SUCCESS", "details": {"id": id}, "message": "record deleted", "status": "success"})
    );
    assert_eq!(r.body["data"][1]["code"], "INVALID_DATA");
    let r = t.delete(&format!("/crm/v7/Leads/{id2}"), &tok).await;
    assert_eq!((r.status, &r.body["data"][0]["message"]), (200, &json!("record deleted")));
    assert_eq!(t.delete(&format!("/crm/v7/Leads/{id2}"), &tok).await.status, 400);
    let r = t.delete("/crm/v7/Leads", &tok).await;
    assert_eq!(
        r.body,
        json!({"code": "REQUIRED_PARAM_MISSING", "details": {"param_name": "ids"}, "message": "required param is missing", "status": "error"})
    );
    assert_eq!(t.crm.count("us", "Leads"), 0);
}

#[tokio::test]
async fn upsert_inserts_then_updates() {
    let t = start().await;
    let tok = t.token("c_in", &["ZohoCRM.modules.leads.CREATE"]).await;
    let r = t
        .post(
            "/crm/v7/Leads/upsert",
            &tok,
            &json!({"data": [{"Last_Name": "Rao", "Email": "rao@zylker.in", "Phone": "+91 98450 12345"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let item = &r.body["data"][0];
    assert_eq!(
        (&item["action"], &item["duplicate_field"], &item["message"]),
        (&json!("insert"), &Value::Null, &json!("record added"))
    );
    let id = item["details"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("4150868"));
    assert!(item["details"]["Created_Time"].as_str().unwrap().ends_with("+05:30"));
    // Email (the system duplicate field) matches, whatever its case.
    let r = t.post("/crm/v7/Leads/upsert", &tok, &json!({"data": [{"Last_Name": "Rao K", "Email": "RAO@zylker.in"}, {"Last_Name": "New", "Email": "new@zylker.in"}]})).await;
    assert_eq!(r.status, 200);
    let items = r.body["data"].as_array().unwrap();
    assert_eq!(
        items[0],
        json!({"code": "SUCCESS", "duplicate_field": "Email", "action": "update", "details": items[0]["details"], "message": "record updated", "status": "success"})
    );
    assert_eq!(items[0]["details"]["id"], id.as_str());
    assert_eq!(items[1]["action"], "insert");
    assert_eq!(t.crm.find_by_email("in", "Leads", "rao@zylker.in").unwrap()["Last_Name"], "Rao K");
    // duplicate_check_fields.
    let r = t.post("/crm/v7/Leads/upsert", &tok, &json!({"data": [{"Last_Name": "By phone", "Phone": "+91 98450 12345"}], "duplicate_check_fields": ["Phone"]})).await;
    assert_eq!(
        (&r.body["data"][0]["action"], &r.body["data"][0]["duplicate_field"]),
        (&json!("update"), &json!("Phone"))
    );
    assert_eq!(t.crm.count("in", "Leads"), 2);
    let r = t
        .post("/crm/v7/Leads/upsert", &tok, &json!({"data": [{"Last_Name": "x"}], "duplicate_check_fields": "Phone"}))
        .await;
    assert_eq!(r.status, 400);
    // Every module has its system duplicate fields: Accounts match on Account_Name, Purchase
    // orders on Subject; Tasks have none and always insert.
    let tok_all = t.token("c_in", ALL).await;
    for action in ["insert", "update"] {
        let r = t.post("/crm/v7/Accounts/upsert", &tok_all, &json!({"data": [{"Account_Name": "Zylker"}]})).await;
        assert_eq!(
            (&r.body["data"][0]["action"], &r.body["data"][0]["duplicate_field"]),
            (&json!(action), &if action == "insert" { Value::Null } else { json!("Account_Name") }),
            "{}",
            r.text
        );
    }
    for _ in 0..2 {
        let r = t.post("/crm/v7/Tasks/upsert", &tok_all, &json!({"data": [{"Subject": "Call back"}]})).await;
        assert_eq!(r.body["data"][0]["action"], "insert");
    }
    let r = t
        .post(
            "/crm/v7/Accounts/upsert",
            &tok_all,
            &json!({"data": [{"Account_Name": "zylker", "Phone": "1"}], "duplicate_check_fields": ["Account_Name"]}),
        )
        .await;
    assert_eq!(r.body["data"][0]["action"], "update");
    assert_eq!(t.crm.count("in", "Accounts"), 1);
    // CREATE does not allow a plain update.
    assert_eq!(t.put(&format!("/crm/v7/Leads/{id}"), &tok, &json!({"data": [{"Last_Name": "y"}]})).await.status, 401);
}

#[tokio::test]
async fn errors_auth_scopes_and_isolation() {
    let t = start().await;
    t.crm.seed("us", 30, 5, 5).unwrap();
    t.crm.seed("in", 3, 0, 0).unwrap();
    let us = t.token("c_us", ALL).await;
    let india = t.token("c_in", ALL).await;
    let r = t.http.get(format!("{}/crm/v7/Leads?fields=Email", t.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap()["code"], "AUTHENTICATION_FAILURE");
    let r = t.get("/crm/v7/Leads?fields=Email", "1000.dead.beef").await;
    assert_eq!((r.status, &r.body["code"]), (401, &json!("INVALID_TOKEN")));

    let r = t.get("/crm/v7/Widgets?fields=Email", &us).await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"code": "INVALID_MODULE", "details": {"resource_path_index": 0}, "message": "the module name given seems to be invalid", "status": "error"})
        )
    );
    let not_found = json!({"code": "INVALID_URL_PATTERN", "message": "Please check if the URL trying to access is a correct one", "status": "error", "details": {}});
    for path in ["/crm/v9/Leads", "/crm/v7", "/crm/v7/Leads/1/2", "/crm/v7/Leads/actions/nope"] {
        let r = t.get(path, &us).await;
        assert_eq!((r.status, &r.body), (404, &not_found), "{path}");
    }
    let r = t.call(reqwest::Method::PATCH, "/crm/v7/Leads", &us, None, &[]).await;
    assert_eq!((r.status, &r.body["code"]), (405, &json!("INVALID_REQUEST_METHOD")));
    assert_eq!(
        t.get("/crm/v7/Leads", &us).await.body,
        json!({"code": "REQUIRED_PARAM_MISSING", "status": "error", "details": {"param_name": "fields"}, "message": "required param is missing"})
    );
    let many: Vec<String> = (0..51).map(|i| format!("F{i}")).collect();
    let r = t.get(&format!("/crm/v7/Leads?fields={}", many.join(",")), &us).await;
    assert_eq!((r.status, &r.body["code"]), (400, &json!("LIMIT_EXCEEDED")));
    assert_eq!(t.get("/crm/v7/Leads?fields=Email&sort_by=Email", &us).await.status, 400);
    assert_eq!(t.get("/crm/v7/Leads?fields=Email&page=0", &us).await.status, 400);
    assert_eq!(t.get("/crm/v7/Leads?fields=Email&page_token=nonsense", &us).await.status, 400);

    // Scopes.
    let mismatch = json!({"code": "OAUTH_SCOPE_MISMATCH", "message": "Unauthorized", "status": "error", "details": {}});
    let read_leads = t.token("c_us", &["ZohoCRM.modules.leads.READ"]).await;
    assert_eq!(t.get("/crm/v7/Leads/actions/count", &read_leads).await.body, json!({"count": 30}));
    let r = t.get("/crm/v7/Contacts/actions/count", &read_leads).await;
    assert_eq!((r.status, &r.body), (401, &mismatch));
    let r = t.post("/crm/v7/Leads", &read_leads, &json!({"data": [{"Last_Name": "x"}]})).await;
    assert_eq!((r.status, &r.body), (401, &mismatch));
    let settings = t.token("c_us", &["ZohoCRM.settings.ALL"]).await;
    assert_eq!(t.get("/crm/v7/Leads/actions/count", &settings).await.status, 401);
    let write = t.token("c_us", &["ZohoCRM.modules.contacts.WRITE", "ZohoCRM.modules.READ"]).await;
    assert_eq!(t.post("/crm/v7/Contacts", &write, &json!({"data": [{"Last_Name": "x"}]})).await.status, 201);
    assert_eq!(t.post("/crm/v7/Leads", &write, &json!({"data": [{"Last_Name": "x"}]})).await.status, 401);
    assert_eq!(t.get("/crm/v7/Deals/actions/count", &write).await.body, json!({"count": 5}));

    // Each token sees its own organisation.
    assert_eq!(t.get("/crm/v7/Leads/actions/count", &india).await.body, json!({"count": 3}));
    let us_id = ids_of(&t.get("/crm/v7/Leads?fields=Email&per_page=1", &us).await.body)[0].clone();
    assert_eq!(t.get(&format!("/crm/v7/Leads/{us_id}"), &india).await.status, 400);
    assert_eq!(
        t.put(&format!("/crm/v7/Leads/{us_id}"), &india, &json!({"data": [{"Last_Name": "x"}]})).await.status,
        400
    );
    assert_eq!(t.delete(&format!("/crm/v7/Leads/{us_id}"), &india).await.status, 400);
    let r = t.get("/crm/v7/Leads?fields=Email", &india).await;
    assert_eq!(r.body["info"]["count"], 3);
    assert!(ids_of(&r.body).iter().all(|id| id.starts_with("4150868")));
    // The same e-mail can exist in two organisations.
    let email =
        t.get(&format!("/crm/v7/Leads/{us_id}"), &us).await.body["data"][0]["Email"].as_str().unwrap().to_string();
    assert_eq!(
        t.post("/crm/v7/Leads", &india, &json!({"data": [{"Last_Name": "x", "Email": email}]})).await.status,
        201
    );
    assert_eq!(t.post("/crm/v7/Leads", &us, &json!({"data": [{"Last_Name": "x", "Email": email}]})).await.status, 400);
    let r = t.search(&india, &[("email", &email)]).await;
    assert_eq!(r.body["info"]["count"], 1);
}

#[tokio::test]
async fn list_paging_past_2000_with_page_token() {
    let t = start().await;
    t.crm.seed("in", 2100, 0, 0).unwrap();
    let tok = t.token("c_in", &["ZohoCRM.modules.leads.READ"]).await;
    let r = t.get("/crm/v7/Leads?fields=Last_Name,Email", &tok).await;
    assert_eq!(r.status, 200);
    let info = &r.body["info"];
    assert_eq!(
        (&info["per_page"], &info["count"], &info["page"], &info["more_records"]),
        (&json!(200), &json!(200), &json!(1), &json!(true))
    );
    assert_eq!(
        (&info["sort_by"], &info["sort_order"], &info["call"], &info["email"]),
        (&json!("id"), &json!("desc"), &json!(false), &json!(false))
    );
    assert_eq!(info["previous_page_token"], Value::Null);
    assert!(info["page_token_expiry"].as_str().unwrap().ends_with("+05:30"));
    let rec = r.body["data"][0].as_object().unwrap();
    let keys: Vec<&String> = rec.keys().collect();
    assert_eq!(keys, ["Email", "Last_Name", "id"]);

    let mut seen: Vec<String> = Vec::new();
    for page in 1..=10 {
        let r = t.get(&format!("/crm/v7/Leads?fields=Email&page={page}"), &tok).await;
        assert_eq!(r.body["info"]["page"], page);
        seen.extend(ids_of(&r.body));
    }
    let r = t.get("/crm/v7/Leads?fields=Email&page=11", &tok).await;
    assert_eq!(
        (r.status, r.body),
        (
            400,
            json!({"code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "message": "You can only get the first 2000 records without using page_token param", "status": "error", "details": {"limit": 2000}})
        )
    );
    assert_eq!(t.get("/crm/v7/Leads?fields=Email&page=21&per_page=100", &tok).await.status, 400);
    let r = t.get("/crm/v7/Leads?fields=Email&page=10", &tok).await;
    let token = r.body["info"]["next_page_token"].as_str().unwrap().to_string();
    let r = t.get(&format!("/crm/v7/Leads?fields=Email&page_token={token}"), &tok).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (&r.body["info"]["count"], &r.body["info"]["more_records"], &r.body["info"]["page"]),
        (&json!(100), &json!(false), &json!(11))
    );
    assert_eq!(r.body["info"]["next_page_token"], Value::Null);
    seen.extend(ids_of(&r.body));
    // A token is bound to what its listing asked for, expires, and pages 100,000 records at most.
    for other in ["fields=Email,Phone", "fields=Email&per_page=100", "fields=Email&sort_order=asc"] {
        let r = t.get(&format!("/crm/v7/Leads?{other}&page_token={token}"), &tok).await;
        assert_eq!((r.status, &r.body["code"]), (400, &json!("TOKEN_BOUND_DATA_MISMATCH")), "{other}: {}", r.text);
    }
    let forged = |page: usize, issued_ms: i64| {
        let bound = page_token::bound_to("Leads", &["Email".to_string()], 200, None);
        PageToken { sort: SortBy::Id, desc: true, key: 1, id: "1".into(), page, issued_ms, bound }.encode()
    };
    let r = t.get(&format!("/crm/v7/Leads?fields=Email&page_token={}", forged(11, 0)), &tok).await;
    assert_eq!(
        (r.status, &r.body["code"], &r.body["message"]),
        (400, &json!("EXPIRED_VALUE"), &json!("Page token expired"))
    );
    let r = t.get(&format!("/crm/v7/Leads?fields=Email&page_token={}", forged(501, now_ms())), &tok).await;
    assert_eq!((r.status, &r.body["code"]), (400, &json!("PAGINATION_LIMIT_EXCEEDED")), "{}", r.text);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!((seen.len(), sorted), (2100, seen.clone()));

    // Walking by tokens alone, oldest modification first.
    let mut walked = 0;
    let mut last_modified = i64::MIN;
    let mut url = "/crm/v8/Leads?fields=Modified_Time&sort_by=Modified_Time&sort_order=asc&per_page=150".to_string();
    loop {
        let r = t.get(&url, &tok).await;
        for rec in r.body["data"].as_array().unwrap() {
            let m = parse_time(rec["Modified_Time"].as_str().unwrap()).unwrap();
            assert!(m >= last_modified);
            last_modified = m;
        }
        walked += r.body["info"]["count"].as_u64().unwrap();
        match r.body["info"]["next_page_token"].as_str() {
            Some(next) => url = format!("/crm/v8/Leads?fields=Modified_Time&per_page=150&page_token={next}"),
            None => break,
        }
    }
    assert_eq!(walked, 2100);

    // ids=, sort asc, page past the end.
    let some = format!("{},{},{}", seen[5], seen[0], "1");
    let r = t.get(&format!("/crm/v7/Leads?fields=Email&ids={some}&sort_order=asc"), &tok).await;
    assert_eq!(ids_of(&r.body), [seen[5].clone(), seen[0].clone()]);
    let r = t.get("/crm/v7/Leads?fields=Email&ids=1,2", &tok).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    let r = t.get("/crm/v7/Contacts?fields=Email", &t.token("c_in", ALL).await).await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    assert_eq!(t.get("/crm/v7/Leads?fields=Email&per_page=5000", &tok).await.body["info"]["per_page"], 200);
}

#[tokio::test]
async fn if_modified_since() {
    let t = start().await;
    t.crm.seed("us", 40, 0, 0).unwrap();
    let tok = t.token("c_us", ALL).await;
    // Seeded records are at least an hour old.
    let since = format_time(now_ms() - 1_800_000, 5 * 3600 + 1800);
    let ims = |tok: String, since: String| {
        let t = &t;
        async move {
            t.call(
                reqwest::Method::GET,
                "/crm/v7/Leads?fields=Last_Name,Modified_Time",
                &tok,
                None,
                &[("If-Modified-Since", &since)],
            )
            .await
        }
    };
    let r = ims(tok.clone(), since.clone()).await;
    assert_eq!((r.status, r.text.as_str()), (304, ""));
    let id = ids_of(&t.get("/crm/v7/Leads?fields=Email&per_page=3&sort_order=asc", &tok).await.body)[2].clone();
    t.crm.modify_for_test("us", "Leads", &id, "Last_Name", json!("Changed"));
    let r = ims(tok.clone(), since.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(ids_of(&r.body), std::slice::from_ref(&id));
    assert_eq!(r.body["data"][0]["Last_Name"], "Changed");
    let modified = r.body["data"][0]["Modified_Time"].as_str().unwrap().to_string();
    // Same second as the change: not modified after it.
    assert_eq!(ims(tok.clone(), modified).await.status, 304);
    let all = ims(tok.clone(), format_time(now_ms() - 40 * 86_400_000, 0)).await;
    assert_eq!(all.body["info"]["count"], 40);
    let r = ims(tok.clone(), "last tuesday".into()).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn search_operators_and_escaping() {
    let t = start().await;
    let tok = t.token("c_us", ALL).await;
    let rows = json!({"data": [
        {"Last_Name": "Doe", "First_Name": "John", "Company": "Zylker (East), Inc", "Email": "john@zylker.com", "Phone": "+1-555-123-4567", "No_of_Employees": 50},
        {"Last_Name": "Roe", "First_Name": "Jane", "Company": "Zylker West", "Email": "jane@zylker.com", "Phone": "(555) 987 6543", "No_of_Employees": 500},
        {"Last_Name": "Poe", "First_Name": "Edgar", "Company": "Ravens", "Email": "edgar@ravens.org", "No_of_Employees": 9},
    ]});
    let r = t.post("/crm/v7/Leads", &tok, &rows).await;
    assert_eq!(r.status, 201);
    let ids: Vec<String> =
        r.body["data"].as_array().unwrap().iter().map(|i| i["details"]["id"].as_str().unwrap().to_string()).collect();
    let names = |r: &Resp| -> Vec<String> {
        let mut v: Vec<String> = r.body["data"]
            .as_array()
            .map_or(Vec::new(), |a| a.iter().map(|x| x["Last_Name"].as_str().unwrap().to_string()).collect());
        v.sort();
        v
    };
    let crit = |c: &str| {
        let t = &t;
        let tok = tok.clone();
        let c = c.to_string();
        async move { t.search(&tok, &[("criteria", &c)]).await }
    };
    assert_eq!(names(&crit("(Last_Name:equals:doe)").await), ["Doe"]);
    assert_eq!(names(&crit("(Last_Name:not_equal:Doe)").await), ["Poe", "Roe"]);
    assert_eq!(names(&crit("(Company:starts_with:zylker)").await), ["Doe", "Roe"]);
    assert_eq!(names(&crit("((Company:starts_with:Zylker)and(First_Name:equals:Jane))").await), ["Roe"]);
    assert_eq!(
        names(&crit("((Last_Name:equals:Poe)or((Company:starts_with:Zylker)and(First_Name:equals:John)))").await),
        ["Doe", "Poe"]
    );
    assert_eq!(names(&crit("(Last_Name:in:Doe,Poe,Nobody)").await), ["Doe", "Poe"]);
    assert_eq!(names(&crit("(No_of_Employees:greater_than:50)").await), ["Roe"]);
    assert_eq!(names(&crit("(No_of_Employees:greater_equal:50)").await), ["Doe", "Roe"]);
    assert_eq!(names(&crit("(No_of_Employees:less_than:50)").await), ["Poe"]);
    assert_eq!(names(&crit("(No_of_Employees:less_equal:9)").await), ["Poe"]);
    assert_eq!(names(&crit("(No_of_Employees:between:9,50)").await), ["Doe", "Poe"]);
    // Escaped parentheses and commas in values.
    assert_eq!(names(&crit(r"(Company:equals:Zylker \(East\)\, Inc)").await), ["Doe"]);
    assert_eq!(names(&crit(r"(Company:in:Ravens,Zylker \(East\)\, Inc)").await), ["Doe", "Poe"]);
    assert_eq!(names(&crit(r"(Company:starts_with:Zylker \()").await), ["Doe"]);
    // Ids and times.
    assert_eq!(names(&crit(&format!("(id:equals:{})", ids[1])).await), ["Roe"]);
    assert_eq!(names(&crit(&format!("(id:greater_than:{})", ids[1])).await), ["Poe"]);
    let hour_ago = format_time(now_ms() - 3_600_000, 5 * 3600 + 1800);
    assert_eq!(names(&crit(&format!("(Created_Time:greater_than:{hour_ago})")).await).len(), 3);
    assert_eq!(t.search(&tok, &[("criteria", &format!("(Modified_Time:less_than:{hour_ago})"))]).await.status, 204);
    assert_eq!(names(&crit("(Phone:equals:${EMPTY})").await), ["Poe"]);
    // email, phone (digits only), word.
    assert_eq!(names(&t.search(&tok, &[("email", "JANE@zylker.com")]).await), ["Roe"]);
    assert_eq!(names(&t.search(&tok, &[("phone", "5559876543")]).await), ["Roe"]);
    assert_eq!(names(&t.search(&tok, &[("phone", "555 123 4567")]).await), ["Doe"]);
    assert_eq!(names(&t.search(&tok, &[("word", "ravens")]).await), ["Poe"]);
    assert_eq!(names(&t.search(&tok, &[("word", "ZYLKER")]).await), ["Doe", "Roe"]);
    // fields, paging, counts.
    let r = t.search(&tok, &[("word", "zylker"), ("fields", "Email"), ("per_page", "1"), ("page", "2")]).await;
    assert_eq!(r.body["data"], json!([{"id": ids[0], "Email": "john@zylker.com"}]));
    assert_eq!(r.body["info"], json!({"per_page": 1, "count": 1, "page": 2, "more_records": false}));
    let r = t.search(&tok, &[("word", "zylker"), ("per_page", "1")]).await;
    assert_eq!((&r.body["info"]["more_records"], &r.body["data"][0]["Last_Name"]), (&json!(true), &json!("Roe")));
    let r = t
        .get(&format!("/crm/v7/Leads/actions/count?{}", q(&[("criteria", "(Company:starts_with:Zylker)")])), &tok)
        .await;
    assert_eq!(r.body, json!({"count": 2}));
    // No match, errors.
    let r = crit("(Last_Name:equals:Nobody)").await;
    assert_eq!((r.status, r.text.as_str()), (204, ""));
    let invalid = json!({"code": "INVALID_QUERY", "details": {"reason": "invalid criteria"}, "message": "invalid query formed", "status": "error"});
    for bad in ["(Last_Name:like:x)", "(Last_Name:equals:x", "(Company:equals:Zylker (East))"] {
        let r = crit(bad).await;
        assert_eq!((r.status, &r.body), (400, &invalid), "{bad}");
    }
    let eleven: Vec<String> = (0..11).map(|i| format!("(Last_Name:equals:x{i})")).collect();
    let r = crit(&format!("({})", eleven.join("or"))).await;
    assert_eq!((r.status, &r.body["code"]), (400, &json!("LIMIT_EXCEEDED")));
    let ten = &eleven[..10].join("or");
    assert_eq!(crit(&format!("({ten})")).await.status, 204);
    let r = t.get("/crm/v7/Leads/search", &tok).await;
    assert_eq!((r.status, &r.body["code"]), (400, &json!("REQUIRED_PARAM_MISSING")));
}

#[tokio::test]
async fn faults_rate_limit_errors_and_latency() {
    let t = start().await;
    let us = t.token("c_us", ALL).await;
    let india = t.token("c_in", ALL).await;
    t.faults.set(Knobs { rate_limit_per_minute: Some(2), ..Default::default() });
    for _ in 0..2 {
        assert_eq!(t.get("/crm/v7/Leads/actions/count", &us).await.status, 200);
    }
    let r = t.get("/crm/v7/Leads/actions/count", &us).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(
        r.body,
        json!({"code": "TOO_MANY_REQUESTS", "message": "Rate limit exceeded. Please retry after the specified time.", "status": "error", "details": {"retry_after": retry}})
    );
    assert_eq!(t.get("/crm/v7/Leads/actions/count", &india).await.status, 200, "limits are per organisation");

    t.faults.set(Knobs { failure_rate: 1.0, ..Default::default() });
    let r = t.get("/crm/v7/Leads/actions/count", &us).await;
    assert_eq!(
        (r.status, r.body),
        (500, json!({"code": "INTERNAL_ERROR", "message": "Internal Server Error", "status": "error", "details": {}}))
    );

    t.faults.set(Knobs { latency_ms: 150, ..Default::default() });
    let started = Instant::now();
    assert_eq!(t.get("/crm/v7/Leads/actions/count", &us).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    t.faults.set(Knobs::default());
    let started = Instant::now();
    assert_eq!(t.get("/crm/v7/Leads/actions/count", &us).await.status, 200);
    assert!(started.elapsed() < Duration::from_millis(150));
}

#[test]
fn router_replaces_the_placeholder_resources() {
    let provider = Provider::new(ProviderConfig::zoho(""));
    let crm = Crm::open(None).unwrap();
    let _ =
        provider.oauth_router().merge(provider.control_router()).merge(crm.router(provider.clone(), Faults::default()));
    let clash = std::panic::catch_unwind(|| provider.router().merge(crm.router(provider.clone(), Faults::default())));
    assert!(clash.is_err(), "merging with the placeholder /crm routes must fail loudly, not shadow them");
}

#[tokio::test]
async fn persists_to_a_file_and_keeps_ids_increasing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let last = {
        let crm = Crm::open(Some(&path)).unwrap();
        crm.seed("us", 5, 0, 0).unwrap();
        let db = crm.db();
        db.conn.query_row("SELECT MAX(id) FROM records", [], |r| r.get::<_, String>(0)).unwrap()
    };
    let crm = Crm::open(Some(&path)).unwrap();
    assert_eq!(crm.count("us", "Leads"), 5);
    crm.seed("us", 1, 0, 0).unwrap();
    let db = crm.db();
    let max: String = db.conn.query_row("SELECT MAX(id) FROM records", [], |r| r.get(0)).unwrap();
    assert!(max > last);
}

/// Throughput of `GET /crm/v7/Leads/{id}`; run with
/// `cargo test --release --lib zoho_crm::tests::get_by_id_throughput -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn get_by_id_throughput() {
    let t = start().await;
    t.crm.seed("us", 2000, 0, 0).unwrap();
    let tok = t.token("c_us", ALL).await;
    let mut ids: Vec<String> = Vec::new();
    for page in 1..=10 {
        ids.extend(ids_of(&t.get(&format!("/crm/v7/Leads?fields=Email&page={page}"), &tok).await.body));
    }
    let ids = Arc::new(ids);
    let total = 20_000;
    let workers = 32;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, base, tok, ids) = (t.http.clone(), t.base.clone(), tok.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..total / workers {
                let id = &ids[(w * 997 + i * 31) % ids.len()];
                let r = http
                    .get(format!("{base}/crm/v7/Leads/{id}"))
                    .header("authorization", format!("Zoho-oauthtoken {tok}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                r.bytes().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!("GET /crm/v7/Leads/{{id}}: {rate:.0} requests/s (client and server on the same 2 worker threads)");
    if !cfg!(debug_assertions) {
        assert!(rate >= 5000.0, "{rate:.0} requests/s");
    }
}

#[tokio::test]
async fn limits_concurrency_and_credits_answer_zohos_429() {
    use crate::faults::CrmKnobs;
    let t = start().await;
    let us = t.token("c_us", ALL).await;
    let india = t.token("c_in", ALL).await;
    let path = "/crm/v7/Leads/actions/count";
    let too_many = |n: u64| json!({"code": "TOO_MANY_REQUESTS", "details": {"retry_after": n}, "message": "Rate limit exceeded. Please retry after the specified time.", "status": "error"});
    // Two in flight at once (each held by the latency): the third and fourth are refused.
    t.faults.set(Knobs {
        latency_ms: 300,
        crm: CrmKnobs { concurrency_limit: Some(2), ..Default::default() },
        ..Default::default()
    });
    let (a, b, c, d) = tokio::join!(t.get(path, &us), t.get(path, &us), t.get(path, &us), t.get(path, &us));
    let mut statuses = vec![a.status, b.status, c.status, d.status];
    statuses.sort();
    assert_eq!(statuses, [200, 200, 429, 429]);
    let refused = [a, b, c, d].into_iter().find(|r| r.status == 429).unwrap();
    assert_eq!((refused.body, refused.headers["retry-after"].to_str().unwrap()), (too_many(1), "1"));
    assert_eq!(t.get(path, &us).await.status, 200, "the slots are free again");
    // Three credits a day: the fourth call is refused until the first frees up, a day later.
    t.faults.set(Knobs { crm: CrmKnobs { credits_per_day: Some(3), ..Default::default() }, ..Default::default() });
    for _ in 0..3 {
        assert_eq!(t.get(path, &us).await.status, 200);
    }
    let r = t.get(path, &us).await;
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((86_390..=86_400).contains(&wait), "{wait}");
    assert_eq!((r.status, r.body), (429, too_many(wait)));
    assert_eq!(t.get(path, &india).await.status, 200, "credits are per organisation");
    t.faults.set(Knobs::default());
    assert_eq!(t.get(path, &us).await.status, 200, "off by default");
}

#[tokio::test]
async fn limits_throttle_rate_and_failure_status_are_every_nth_request() {
    let t = start().await;
    let us = t.token("c_us", ALL).await;
    let path = "/crm/v7/Leads/actions/count";
    t.faults.set(Knobs { throttle_rate: 0.25, throttle_retry_after: 0, ..Default::default() });
    let mut got = Vec::new();
    for _ in 0..8 {
        got.push(t.get(path, &us).await);
    }
    assert_eq!(got.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 200, 429, 200, 200, 200, 429]);
    assert_eq!(got[3].headers["retry-after"], "0");
    assert_eq!(got[3].body["code"], "TOO_MANY_REQUESTS");
    // 5% 503s: exactly the 20th of 20.
    t.faults.set(Knobs { failure_rate: 0.05, failure_status: 503, ..Default::default() });
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(t.get(path, &us).await.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 503).count(), 1);
    assert_eq!(statuses[19], 503);
}
