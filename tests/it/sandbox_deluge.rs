//! The sandbox endpoints Deluge functions lean on (issue 11, "Deluge functions run unchanged"),
//! checked over HTTP as a script would see them: COQL, deleted records, notes and related lists,
//! the organisation, users and org variables, upsert, bulk update, get and search in the CRM, and
//! ticket and contact search, agents, ticket updates and Desk's refusal of unknown departments and
//! agents.

use std::io::{Read, Write};
use std::net::SocketAddr;

use linkrun_sandbox::server::{Options, Sandbox};
use serde_json::{Value, json};

/// A sandbox served in-process on a free port.
struct Running {
    sandbox: Sandbox,
    addr: SocketAddr,
}

fn start() -> Running {
    let (sandbox, addr) = crate::common::sandbox::serve(&Options::default());
    Running { sandbox, addr }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Running {
    /// An HTTP/1.0 request; the status and the body (JSON, or `Null` when empty).
    fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
        let mut s = std::net::TcpStream::connect(self.addr).unwrap();
        let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n", self.addr, body.len());
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
        let v = if body.is_empty() { Value::Null } else { serde_json::from_str(body).unwrap() };
        (status, v)
    }

    /// An access token of Org A (`us`) with `scopes`, through the token endpoint.
    fn token(&self, scopes: &[&str]) -> String {
        let org = &self.sandbox.orgs[0];
        let code = self.sandbox.provider.mint_self_client_code(&org.client_id, scopes);
        let path = format!(
            "/oauth/v2/token?grant_type=authorization_code&client_id={}&client_secret={}&code={}",
            enc(&org.client_id),
            enc(&org.client_secret),
            enc(&code)
        );
        let (_, v) = self.http("POST", &path, &[], "");
        v["access_token"].as_str().unwrap_or_else(|| panic!("{v}")).to_string()
    }

    fn crm(&self, tok: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Zoho-oauthtoken {tok}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.http(method, path, &[("Authorization", &auth), ("Content-Type", "application/json")], &body)
    }

    fn coql(&self, tok: &str, query: &str) -> (u16, Value) {
        self.crm(tok, "POST", "/crm/v7/coql", Some(json!({ "select_query": query })))
    }

    fn desk(&self, tok: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let auth = format!("Zoho-oauthtoken {tok}");
        let org_id = self.sandbox.orgs[0].desk_org_id.clone();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.http(
            method,
            path,
            &[("Authorization", &auth), ("orgId", &org_id), ("Content-Type", "application/json")],
            &body,
        )
    }

    /// Every lead of Org A with `fields`, through the list endpoint.
    fn all_leads(&self, tok: &str, fields: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for page in 1.. {
            let (status, v) = self.crm(tok, "GET", &format!("/crm/v7/Leads?fields={fields}&page={page}"), None);
            if status == 204 {
                break;
            }
            out.extend(v["data"].as_array().unwrap().iter().cloned());
            if v["info"]["more_records"] != true {
                break;
            }
        }
        out
    }
}

const CRM: &[&str] = &["ZohoCRM.modules.ALL", "ZohoCRM.coql.READ"];

fn ids(v: &Value) -> Vec<String> {
    v["data"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn coql_returns_exactly_the_matching_seeded_records_with_only_the_selected_fields() {
    let s = start();
    let tok = s.token(CRM);
    let leads = s.all_leads(&tok, "Last_Name,Email,Company,Lead_Status");
    assert_eq!(leads.len(), 300);

    // One lead by its e-mail: only the selected fields and `id`.
    let one = &leads[17];
    let email = one["Email"].as_str().unwrap();
    let (status, v) = s.coql(
        &tok,
        &format!("select Last_Name, Email from Leads where Email = '{email}' order by Created_Time desc limit 0, 200"),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"], json!([{ "Last_Name": one["Last_Name"], "Email": email, "id": one["id"] }]));
    assert_eq!(v["info"], json!({ "count": 1, "more_records": false }));

    // `like`, `in`, `and`/`or` with parentheses: the same records as filtering the list ourselves.
    let (status, v) = s.coql(
        &tok,
        "select Company, Lead_Status from Leads where (Company like 'Zylker%' or Company like '%Printing%') \
         and Lead_Status not in ('Junk Lead', 'Lost Lead') limit 2000",
    );
    assert_eq!(status, 200, "{v}");
    let want: Vec<String> = leads
        .iter()
        .filter(|l| {
            let c = l["Company"].as_str().unwrap();
            let st = l["Lead_Status"].as_str().unwrap();
            (c.starts_with("Zylker") || c.contains("Printing")) && st != "Junk Lead" && st != "Lost Lead"
        })
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(sorted(ids(&v)), sorted(want.clone()));
    // Without `order by`, ascending ids.
    assert_eq!(ids(&v), sorted(ids(&v)));

    // `order by` and `limit OFFSET, N` page through the same matches.
    let q = |limit: &str| {
        format!(
            "select Last_Name from Leads where (Company like 'Zylker%' or Company like '%Printing%') \
             and Lead_Status not in ('Junk Lead', 'Lost Lead') order by Last_Name desc, id asc limit {limit}"
        )
    };
    let (_, first) = s.coql(&tok, &q("0, 5"));
    let (_, next) = s.coql(&tok, &q("5 offset 5"));
    assert_eq!(first["info"]["more_records"], true);
    let names: Vec<&str> = first["data"].as_array().unwrap().iter().map(|r| r["Last_Name"].as_str().unwrap()).collect();
    let mut desc = names.clone();
    desc.sort_by_key(|n| std::cmp::Reverse(n.to_lowercase()));
    assert_eq!(names, desc);
    let mut both = ids(&first);
    both.extend(ids(&next));
    let (_, ten) = s.coql(&tok, &q("10"));
    assert_eq!(both, ids(&ten));

    // Lookup dot fields read the owner.
    let (_, v) = s.coql(&tok, &format!("select Owner.name, Owner from Leads where Email = '{email}'"));
    assert_eq!(v["data"][0]["Owner.name"], "Patricia Boyle");
    assert_eq!(
        v["data"][0]["Owner"],
        json!({ "id": s.sandbox.crm.find_by_email("us", "Leads", email).unwrap()["Owner"]["id"] })
    );

    // No match: 204 without a body.
    assert_eq!(s.coql(&tok, "select id from Leads where Email = 'nobody@nowhere.example'"), (204, Value::Null));
}

#[test]
fn coql_errors_name_the_problem() {
    let s = start();
    let tok = s.token(CRM);
    let (status, v) = s.coql(&tok, "select Last_Name Leads where Email = 'x'");
    assert_eq!(status, 400);
    assert_eq!(v["code"], "SYNTAX_ERROR");
    assert_eq!(v["details"], json!({ "line": 1, "column": 18, "near": "Leads", "expected": "`from`" }));
    assert_eq!(v["message"], "error occurred near `Leads` at column 18: expected `from`");

    let (status, v) = s.coql(&tok, "select Nope_Field from Leads where Email = 'x'");
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"code": "INVALID_QUERY", "details": {"column_name": "Nope_Field", "clause": "select", "reason": "column given seems to be invalid"}, "message": "invalid query formed", "status": "error"})
    );
    let (_, v) = s.coql(&tok, "select Email from Leads where Bogus = 'x'");
    assert_eq!((v["code"].as_str(), v["details"]["column_name"].as_str()), (Some("INVALID_QUERY"), Some("Bogus")));
    let (_, v) = s.coql(&tok, "select Email from Widgets where Email = 'x'");
    assert_eq!(
        (v["code"].as_str(), v["details"]["reason"].as_str()),
        (Some("INVALID_QUERY"), Some("invalid module given"))
    );
    let (status, v) = s.coql(&tok, "select Email from Leads limit 2001");
    assert_eq!((status, v["code"].as_str()), (400, Some("LIMIT_EXCEEDED")));
    let (status, v) = s.crm(&tok, "POST", "/crm/v7/coql", Some(json!({})));
    assert_eq!(
        (status, v["code"].as_str(), v["details"]["api_name"].as_str()),
        (400, Some("MANDATORY_NOT_FOUND"), Some("select_query"))
    );

    // COQL needs its own scope besides the module's.
    let modules_only = s.token(&["ZohoCRM.modules.ALL"]);
    let (status, v) = s.coql(&modules_only, "select Email from Leads");
    assert_eq!((status, v["code"].as_str()), (401, Some("OAUTH_SCOPE_MISMATCH")));
    let coql_only = s.token(&["ZohoCRM.coql.READ", "ZohoCRM.modules.contacts.READ"]);
    let (status, _) = s.coql(&coql_only, "select Email from Leads");
    assert_eq!(status, 401);
    let (status, _) = s.coql(&coql_only, "select Email from Contacts limit 1");
    assert_eq!(status, 200);
}

#[test]
fn a_deleted_lead_appears_in_deleted() {
    let s = start();
    let tok = s.token(CRM);
    assert_eq!(s.crm(&tok, "GET", "/crm/v7/Leads/deleted", None), (204, Value::Null));
    let leads = s.all_leads(&tok, "Last_Name");
    let (a, b) = (leads[0]["id"].as_str().unwrap(), leads[1]["id"].as_str().unwrap());
    let (status, _) = s.crm(&tok, "DELETE", &format!("/crm/v7/Leads/{a}"), None);
    assert_eq!(status, 200);
    let (status, _) = s.crm(&tok, "DELETE", &format!("/crm/v7/Leads?ids={b}"), None);
    assert_eq!(status, 200);

    let (status, v) = s.crm(&tok, "GET", "/crm/v7/Leads/deleted?type=all", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), [b, a], "newest first");
    let item = &v["data"][1];
    let full = leads[0].clone();
    assert_eq!(item["type"], "recycle");
    assert_eq!(item["deleted_by"], json!({ "name": "Patricia Boyle", "id": item["Created_By"]["id"] }));
    assert!(item["display_name"].as_str().unwrap().ends_with(full["Last_Name"].as_str().unwrap()));
    assert!(item["deleted_time"].as_str().unwrap().ends_with("-07:00"));
    assert_eq!(v["info"], json!({ "per_page": 200, "count": 2, "page": 1, "more_records": false }));
    let (_, v) = s.crm(&tok, "GET", "/crm/v7/Leads/deleted?type=recycle&per_page=1", None);
    assert_eq!((ids(&v), v["info"]["more_records"].clone()), (vec![b.to_string()], json!(true)));
    assert_eq!(s.crm(&tok, "GET", "/crm/v7/Leads/deleted?type=permanent", None), (204, Value::Null));
    assert_eq!(s.crm(&tok, "GET", "/crm/v7/Contacts/deleted", None), (204, Value::Null));
    let (status, v) = s.crm(&tok, "GET", "/crm/v7/Leads/deleted?type=bin", None);
    assert_eq!((status, v["details"]["param_name"].as_str()), (400, Some("type")));
    // The record itself is gone.
    let (status, v) = s.crm(&tok, "GET", &format!("/crm/v7/Leads/{a}"), None);
    assert_eq!((status, v["code"].as_str()), (400, Some("INVALID_DATA")));
}

#[test]
fn a_created_note_appears_in_the_parents_notes_and_related_lists_follow_lookups() {
    let s = start();
    let tok = s.token(CRM);
    let leads = s.all_leads(&tok, "Last_Name");
    let (lead, other) = (leads[3]["id"].as_str().unwrap(), leads[4]["id"].as_str().unwrap());
    let body = json!({"data": [
        {"Note_Title": "Call", "Note_Content": "Called, no answer", "Parent_Id": lead, "$se_module": "Leads"},
        {"Note_Title": "Mail", "Note_Content": "Sent the brochure", "Parent_Id": {"id": lead}, "$se_module": "Leads"},
    ]});
    let (status, v) = s.crm(&tok, "POST", "/crm/v7/Notes", Some(body));
    assert_eq!(status, 201, "{v}");
    let (status, v) =
        s.crm(&tok, "POST", &format!("/crm/v7/Leads/{lead}/Notes"), Some(json!({"data": [{"Note_Content": "Third"}]})));
    assert_eq!(status, 201, "{v}");

    let (status, v) =
        s.crm(&tok, "GET", &format!("/crm/v7/Leads/{lead}/Notes?fields=Note_Title,Note_Content,Parent_Id"), None);
    assert_eq!(status, 200, "{v}");
    let contents: Vec<&str> =
        v["data"].as_array().unwrap().iter().map(|n| n["Note_Content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["Third", "Sent the brochure", "Called, no answer"]);
    assert_eq!(v["data"][0]["Parent_Id"]["id"], lead);
    assert_eq!(v["info"]["count"], 3);
    let (status, v) = s.crm(&tok, "GET", "/crm/v7/Notes?fields=Note_Title,$se_module", None);
    assert_eq!((status, v["data"].as_array().unwrap().len()), (200, 3));
    assert_eq!(v["data"][0]["$se_module"], "Leads");
    assert_eq!(s.crm(&tok, "GET", &format!("/crm/v7/Leads/{other}/Notes?fields=Note_Title"), None), (204, Value::Null));

    // The parent must exist in `$se_module`; both are required.
    let bad = json!({"data": [
        {"Note_Content": "x", "Parent_Id": lead, "$se_module": "Contacts"},
        {"Note_Content": "x", "Parent_Id": lead},
        {"Note_Content": "x", "$se_module": "Leads"},
        {"Note_Content": "x", "Parent_Id": lead, "$se_module": "Widgets"},
    ]});
    let (status, v) = s.crm(&tok, "POST", "/crm/v7/Notes", Some(bad));
    assert_eq!(status, 400);
    let got: Vec<(&str, &str)> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["code"].as_str().unwrap(), i["details"]["api_name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("INVALID_DATA", "Parent_Id"),
            ("MANDATORY_NOT_FOUND", "$se_module"),
            ("MANDATORY_NOT_FOUND", "Parent_Id"),
            ("INVALID_DATA", "$se_module")
        ]
    );

    // Accounts' Contacts and Deals, Contacts' Deals, by their lookup fields.
    let (_, v) = s.crm(&tok, "POST", "/crm/v7/Accounts", Some(json!({"data": [{"Account_Name": "Zylker Corp"}]})));
    let account = v["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let contact = json!({"data": [{"Last_Name": "Hopper", "Email": "grace.hopper@zylker.example", "Account_Name": {"id": account}}]});
    let (_, v) = s.crm(&tok, "POST", "/crm/v7/Contacts", Some(contact));
    let contact = v["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let deal = json!({"data": [{"Deal_Name": "Zylker - Pilot", "Stage": "Qualification", "Account_Name": {"id": account}, "Contact_Name": {"id": contact}}]});
    let (status, v) = s.crm(&tok, "POST", "/crm/v7/Deals", Some(deal));
    assert_eq!(status, 201, "{v}");
    let deal = v["data"][0]["details"]["id"].as_str().unwrap().to_string();
    let (_, v) = s.crm(&tok, "GET", &format!("/crm/v7/Accounts/{account}/Contacts?fields=Last_Name"), None);
    assert_eq!(v["data"], json!([{"id": contact, "Last_Name": "Hopper"}]));
    let (_, v) = s.crm(&tok, "GET", &format!("/crm/v7/Accounts/{account}/Deals?fields=Deal_Name"), None);
    assert_eq!(ids(&v), std::slice::from_ref(&deal));
    let (_, v) = s.crm(&tok, "GET", &format!("/crm/v7/Contacts/{contact}/Deals?fields=Deal_Name"), None);
    assert_eq!(ids(&v), [deal]);
    // COQL joins through the lookup.
    let (_, v) = s.coql(
        &tok,
        &format!("select Deal_Name, Account_Name.Account_Name from Deals where Account_Name = '{account}'"),
    );
    assert_eq!(v["data"][0]["Account_Name.Account_Name"], "Zylker Corp");

    let (status, v) = s.crm(&tok, "GET", &format!("/crm/v7/Accounts/{account}/Contacts"), None);
    assert_eq!(
        (status, v["code"].as_str(), v["details"]["param_name"].as_str()),
        (400, Some("REQUIRED_PARAM_MISSING"), Some("fields"))
    );
    let (status, v) = s.crm(&tok, "GET", &format!("/crm/v7/Leads/{lead}/Widgets?fields=id"), None);
    assert_eq!((status, v["code"].as_str()), (404, Some("INVALID_URL_PATTERN")));
    let (status, v) = s.crm(&tok, "GET", "/crm/v7/Leads/1/Notes?fields=id", None);
    assert_eq!((status, v["code"].as_str()), (400, Some("INVALID_DATA")));
}

#[test]
fn org_users_and_org_variables_are_deterministic() {
    let s = start();
    let tok = s.token(&["ZohoCRM.modules.ALL", "ZohoCRM.settings.READ", "ZohoCRM.users.READ", "ZohoCRM.org.READ"]);
    let (status, v) = s.crm(&tok, "GET", "/crm/v7/org", None);
    assert_eq!(status, 200, "{v}");
    let org = &v["org"][0];
    for (k, want) in [
        ("company_name", "Zylker Corp"),
        ("primary_email", "patricia.boyle@zylker.com"),
        ("time_zone", "America/Los_Angeles"),
        ("currency_symbol", "$"),
        ("iso_code", "USD"),
        ("country_code", "US"),
    ] {
        assert_eq!(org[k], want, "{k}");
    }
    for k in ["id", "zgid", "domain_name"] {
        assert!(org[k].as_str().is_some_and(|s| !s.is_empty()), "{k}");
    }
    assert_eq!(s.crm(&tok, "GET", "/crm/v7/org", None).1, v, "the same on every call");

    let (_, all) = s.crm(&tok, "GET", "/crm/v7/users?type=AllUsers", None);
    let names = |v: &Value| -> Vec<String> {
        v["users"].as_array().unwrap().iter().map(|u| u["full_name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(all["users"].as_array().unwrap().len(), 3);
    assert_eq!(all["info"]["count"], 3);
    let (_, active) = s.crm(&tok, "GET", "/crm/v7/users?type=ActiveUsers", None);
    assert_eq!(names(&active).len(), 2);
    let (_, admins) = s.crm(&tok, "GET", "/crm/v7/users?type=AdminUsers", None);
    assert_eq!(names(&admins), ["Patricia Boyle"]);
    let (_, me) = s.crm(&tok, "GET", "/crm/v7/users?type=CurrentUser", None);
    let me = &me["users"][0];
    assert_eq!(
        (me["role"]["name"].as_str(), me["profile"]["name"].as_str(), me["status"].as_str()),
        (Some("CEO"), Some("Administrator"), Some("active"))
    );
    // Seeded owners are users; a user is found by id.
    let lead = &s.all_leads(&tok, "Owner")[0];
    let owner = lead["Owner"]["id"].as_str().unwrap();
    assert!(all["users"].as_array().unwrap().iter().any(|u| u["id"] == owner));
    let (status, one) = s.crm(&tok, "GET", &format!("/crm/v7/users/{owner}"), None);
    assert_eq!((status, one["users"][0]["email"].as_str()), (200, Some("patricia.boyle@zylker.com")));
    let (status, v) = s.crm(&tok, "GET", "/crm/v7/users?type=Everyone", None);
    assert_eq!((status, v["code"].as_str()), (400, Some("INVALID_DATA")));
    // The other active user may own a record; the disabled one may not.
    let users = all["users"].as_array().unwrap();
    let (standard, disabled) = (&users[1], &users[2]);
    assert_eq!(disabled["status"], "disabled");
    let lead_id = lead["id"].as_str().unwrap();
    let (status, _) = s.crm(
        &tok,
        "PUT",
        &format!("/crm/v7/Leads/{lead_id}"),
        Some(json!({"data": [{"Owner": {"id": standard["id"]}}]})),
    );
    assert_eq!(status, 200);
    let (status, v) = s.crm(
        &tok,
        "PUT",
        &format!("/crm/v7/Leads/{lead_id}"),
        Some(json!({"data": [{"Owner": {"id": disabled["id"]}}]})),
    );
    assert_eq!((status, v["data"][0]["details"]["expected_data_type"].as_str()), (400, Some("ownerlookup")));

    let (status, v) = s.crm(&tok, "GET", "/crm/v7/settings/variables", None);
    assert_eq!(status, 200, "{v}");
    let vars = v["variables"].as_array().unwrap();
    let api_names: Vec<&str> = vars.iter().map(|x| x["api_name"].as_str().unwrap()).collect();
    assert_eq!(api_names, ["Support_Email", "Discount_Rate", "Region_Code"]);
    assert_eq!((vars[1]["type"].as_str(), &vars[1]["value"]), (Some("integer"), &json!(10)));
    let (_, by_name) = s.crm(&tok, "GET", "/crm/v7/settings/variables/Support_Email", None);
    assert_eq!(by_name["variables"][0]["value"], "support@zylker.com");
    let id = vars[2]["id"].as_str().unwrap();
    let (_, by_id) = s.crm(&tok, "GET", &format!("/crm/v7/settings/variables/{id}"), None);
    assert_eq!(by_id["variables"][0]["api_name"], "Region_Code");
    let (status, _) = s.crm(&tok, "GET", "/crm/v7/settings/variables/Nope", None);
    assert_eq!(status, 400);

    // Each needs its scope.
    let records_only = s.token(&["ZohoCRM.modules.ALL"]);
    for path in ["/crm/v7/org", "/crm/v7/users", "/crm/v7/settings/variables"] {
        let (status, v) = s.crm(&records_only, "GET", path, None);
        assert_eq!((status, v["code"].as_str()), (401, Some("OAUTH_SCOPE_MISMATCH")), "{path}");
    }
}

#[test]
fn upsert_bulk_update_get_and_search_work_as_deluge_uses_them() {
    let s = start();
    let tok = s.token(CRM);
    let leads = s.all_leads(&tok, "Email,Phone,Last_Name");
    let (a, b) = (&leads[5], &leads[6]);
    let body = json!({"data": [
        {"Email": a["Email"], "Last_Name": "Upserted"},
        {"Email": "new.person@zylker.example", "Last_Name": "Newcomer"},
    ], "duplicate_check_fields": ["Email"]});
    let (status, v) = s.crm(&tok, "POST", "/crm/v7/Leads/upsert", Some(body));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["data"][0]["action"].as_str(), v["data"][0]["details"]["id"].as_str()),
        (Some("update"), a["id"].as_str())
    );
    assert_eq!(v["data"][1]["action"], "insert");

    let body =
        json!({"data": [{"id": a["id"], "Lead_Status": "Contacted"}, {"id": b["id"], "Lead_Status": "Contacted"}]});
    let (status, v) = s.crm(&tok, "PUT", "/crm/v7/Leads", Some(body));
    assert_eq!(status, 200, "{v}");
    let (_, one) = s.crm(&tok, "GET", &format!("/crm/v7/Leads/{}", a["id"].as_str().unwrap()), None);
    assert_eq!(
        (one["data"][0]["Last_Name"].as_str(), one["data"][0]["Lead_Status"].as_str()),
        (Some("Upserted"), Some("Contacted"))
    );

    let email = enc(b["Email"].as_str().unwrap());
    let (_, v) = s.crm(&tok, "GET", &format!("/crm/v7/Leads/search?email={email}"), None);
    assert_eq!(ids(&v), [b["id"].as_str().unwrap()]);
    let (_, v) = s.crm(
        &tok,
        "GET",
        &format!("/crm/v7/Leads/search?criteria={}", enc(&format!("(Email:equals:{})", b["Email"].as_str().unwrap()))),
        None,
    );
    assert_eq!(ids(&v), [b["id"].as_str().unwrap()]);
    let (_, v) = s.crm(&tok, "GET", &format!("/crm/v7/Leads/search?phone={}", enc(b["Phone"].as_str().unwrap())), None);
    assert!(ids(&v).contains(&b["id"].as_str().unwrap().to_string()));
    let (_, v) = s.crm(&tok, "GET", "/crm/v7/Leads/search?word=Newcomer", None);
    assert_eq!(v["data"][0]["Last_Name"], "Newcomer");
}

#[test]
fn desk_refuses_unknown_departments_and_agents_and_searches_tickets_and_contacts() {
    let s = start();
    let tok = s.token(&["Desk.tickets.ALL", "Desk.contacts.READ", "Desk.search.READ", "Desk.basic.READ"]);
    let dept = s.sandbox.orgs[0].desk_department_id.clone();
    let refused = |field: &str| {
        json!({"errorCode": "INVALID_DATA", "message": "The data is invalid due to validation restrictions",
               "errors": [{"fieldName": field, "errorType": "invalid", "errorMessage": ""}]})
    };
    let ticket = |d: &str, extra: Value| {
        let mut t = json!({"subject": "Printer on fire", "departmentId": d, "contact": {"lastName": "Hopper", "email": "grace@navy.example"}});
        t.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        t
    };
    assert_eq!(
        s.desk(&tok, "POST", "/api/v1/tickets", Some(ticket("1999999999", json!({})))),
        (422, refused("/departmentId"))
    );
    assert_eq!(
        s.desk(&tok, "POST", "/api/v1/tickets", Some(ticket(&dept, json!({"assigneeId": "42"})))),
        (422, refused("/assigneeId"))
    );

    let (status, agents) = s.desk(&tok, "GET", "/api/v1/agents", None);
    assert_eq!(status, 200, "{agents}");
    let agent = agents["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(agents["data"].as_array().unwrap().len(), 2);
    assert_eq!(agents["data"][0]["associatedDepartmentIds"], json!([dept]));
    let (_, depts) = s.desk(&tok, "GET", "/api/v1/departments", None);
    assert_eq!(depts["data"][0]["id"], dept.as_str());

    let (status, first) = s.desk(&tok, "POST", "/api/v1/tickets", Some(ticket(&dept, json!({"assigneeId": agent}))));
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["assigneeId"], agent.as_str());
    let (_, second) = s.desk(
        &tok,
        "POST",
        "/api/v1/tickets",
        Some(ticket(&dept, json!({"subject": "Toner low", "email": "ops@navy.example"}))),
    );

    let (status, v) = s.desk(&tok, "GET", "/api/v1/tickets/search?subject=printer*", None);
    assert_eq!(status, 200, "{v}");
    assert_eq!((v["count"].clone(), v["data"][0]["id"].clone()), (json!(1), first["id"].clone()));
    let (_, v) = s.desk(
        &tok,
        "GET",
        &format!("/api/v1/tickets/search?ticketNumber={}", second["ticketNumber"].as_str().unwrap()),
        None,
    );
    assert_eq!(v["data"][0]["subject"], "Toner low");
    let (_, v) = s.desk(&tok, "GET", &format!("/api/v1/tickets/search?departmentId={dept}&status=Open&limit=1"), None);
    assert_eq!((v["count"].clone(), v["data"].as_array().unwrap().len()), (json!(2), 1));
    assert_eq!(s.desk(&tok, "GET", "/api/v1/tickets/search?email=nobody@example.com", None), (204, Value::Null));
    let (_, v) = s.desk(&tok, "GET", "/api/v1/contacts/search?email=GRACE@navy.example", None);
    assert_eq!((v["count"].clone(), v["data"][0]["lastName"].clone()), (json!(1), json!("Hopper")));
    assert_eq!(s.desk(&tok, "GET", "/api/v1/contacts/search?email=ada@example.com", None), (204, Value::Null));

    // Updates: the same checks, then the changed ticket, also in reads and lists.
    let id = first["id"].as_str().unwrap();
    let path = format!("/api/v1/tickets/{id}");
    assert_eq!(s.desk(&tok, "PATCH", &path, Some(json!({"departmentId": "5"}))), (422, refused("/departmentId")));
    assert_eq!(s.desk(&tok, "PATCH", &path, Some(json!({"assigneeId": "5"}))), (422, refused("/assigneeId")));
    let (status, v) = s.desk(&tok, "PATCH", &path, Some(json!({"status": "Closed", "priority": "High"})));
    assert_eq!(
        (status, v["status"].as_str(), v["statusType"].as_str(), v["priority"].as_str()),
        (200, Some("Closed"), Some("Closed"), Some("High"))
    );
    assert!(v["closedTime"].is_string());
    let (_, got) = s.desk(&tok, "GET", &path, None);
    assert_eq!(got, v);
    let (_, list) = s.desk(&tok, "GET", "/api/v1/tickets?from=0&limit=10", None);
    assert_eq!(list["data"][0]["status"], "Closed");
    assert_eq!(s.desk(&tok, "PATCH", "/api/v1/tickets/1", Some(json!({"status": "Open"}))).0, 404);

    // Search needs a search or read scope.
    let create_only = s.token(&["Desk.tickets.CREATE"]);
    let (status, v) = s.desk(&create_only, "GET", "/api/v1/tickets/search?subject=x", None);
    assert_eq!((status, v["errorCode"].as_str()), (401, Some("SCOPE_MISMATCH")));
}
