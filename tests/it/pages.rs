//! `invoke_pages` and `invoke_records` against the sandbox: each page is fetched when the loop
//! asks for it (a loop that breaks after page k made exactly k requests), 5,000 CRM records take
//! exactly 25 pages of 200, ServiceNow's `Link: rel="next"` is followed, the offset and cursor
//! styles work from a request's `pagination` map, `max_pages` / `max_records` stop early, and a
//! failing page raises the catchable error map with its page number. Requests are counted the
//! way a user counts them: the `--verbose` trace lines on stderr.

use serde_json::json;

use crate::common::{Env, Server};
use crate::zoho_tasks::Fixture;

/// The `--verbose` trace lines of GET requests whose URL contains `path`.
fn fetches(stderr: &str, path: &str) -> usize {
    stderr.lines().filter(|l| l.starts_with("linkrun: GET ") && l.contains(path)).count()
}

/// Runs `script` with `--json --verbose`: its result and the number of GETs of `path`.
fn run(env: &Env, script: &str, path: &str) -> (serde_json::Value, usize) {
    let out = env.script(script, &["--json", "--verbose"]);
    let v = serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout));
    (v, fetches(&out.stderr, path))
}

#[test]
fn pages_a_loop_that_breaks_after_page_k_made_exactly_k_fetches() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    for k in [1, 3] {
        let script = format!(
            r#"
            let seen = 0;
            let n = 0;
            for page in invoke_pages(#{{ url: "/crm/v7/Leads", parameters: #{{ fields: "Email", per_page: 50 }}, connection: "crm" }}) {{
                n += 1;
                seen += page.len();
                if n == {k} {{ break; }}
            }}
            [n, seen]"#
        );
        let (v, n) = run(&f.env, &script, "/crm/v7/Leads");
        assert_eq!((v, n), (json!([k, k * 50]), k as usize), "k = {k}");
    }
    // Nothing is sent until the loop asks for a page.
    let (v, n) = run(
        &f.env,
        r#"let p = invoke_pages(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email" }, connection: "crm" }); type_of(p)"#,
        "/crm/v7/Leads",
    );
    assert_eq!((v, n), (json!("pages"), 0));
}

#[test]
fn pages_5000_crm_records_take_exactly_25_fetches_of_200() {
    let f = Fixture::new();
    // 300 seeded leads + 4,700: more than the 2,000 that `page` alone reaches.
    f.sandbox.crm.seed("us", 4_700, 0, 0).unwrap();
    assert_eq!(f.sandbox.crm.count("us", "Leads"), 5_000);
    f.connect("crm", "zoho_crm");
    let (v, n) = run(
        &f.env,
        r#"
        let ids = #{};
        let pages = 0;
        for page in invoke_pages(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email,Last_Name" }, connection: "crm" }) {
            pages += 1;
            for lead in page { ids[lead.id] = true; }
        }
        [pages, ids.len()]"#,
        "/crm/v7/Leads",
    );
    assert_eq!((v, n), (json!([25, 5000]), 25));
    let (v, n) = run(
        &f.env,
        r#"let all = invoke_records(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email" }, connection: "crm", max_records: 5000 });
           all.len()"#,
        "/crm/v7/Leads",
    );
    assert_eq!((v, n), (json!(5000), 25));
}

#[test]
fn pages_detailed_pages_and_empty_listings() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    let (v, n) = run(
        &f.env,
        r#"
        let out = [];
        for p in invoke_pages(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email", per_page: 120 }, connection: "crm", detailed: true }) {
            out.push([p.page, p.responseCode, p.records.len(), p.responseText.info.more_records]);
        }
        out"#,
        "/crm/v7/Leads",
    );
    assert_eq!((v, n), (json!([[1, 200, 120, true], [2, 200, 120, true], [3, 200, 60, false]]), 3));
    // Page numbers (where an answer carries no token) go on from the `page` the script sent.
    let (v, n) = run(
        &f.env,
        r#"invoke_records(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email", per_page: 100, page: 2 }, connection: "crm",
                             pagination: #{ next_token: "info.none" } }).len()"#,
        "/crm/v7/Leads",
    );
    assert_eq!((v, n), (json!(200), 2));
    // A 204 (no records) and a 304 (nothing modified since) are empty listings.
    let (v, n) = run(
        &f.env,
        r#"[invoke_records(#{ url: "/crm/v7/Cases", parameters: #{ fields: "Subject" }, connection: "crm" }),
            invoke_records(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email" }, connection: "crm",
                              headers: #{ "If-Modified-Since": "2099-01-01T00:00:00+00:00" } })]"#,
        "/crm/v7/",
    );
    assert_eq!((v, n), (json!([[], []]), 2));
}

#[test]
fn pages_servicenow_follows_link_next_and_the_offset_style_stops_on_a_short_page() {
    let f = Fixture::new();
    f.connect_servicenow("sn");
    let count = f.sandbox.servicenow.count("customer_contact");
    assert_eq!(count, 300);
    let listing = |extra: &str| {
        format!(
            r#"let ids = #{{}}; let sizes = [];
               for page in invoke_pages(#{{ url: "/api/now/table/customer_contact", parameters: #{{ sysparm_fields: "sys_id,email" }}, connection: "sn"{extra} }}) {{
                   sizes.push(page.len());
                   for c in page {{ ids[c.sys_id] = true; }}
               }}
               [sizes, ids.len()]"#
        )
    };
    // The service's style: Link rel="next" with sysparm_limit; a request's page size over it.
    let (v, n) = run(&f.env, &listing(", pagination: #{ page_size: 70 }"), "/api/now/table/customer_contact");
    assert_eq!((v, n), (json!([[70, 70, 70, 70, 20], 300]), 5));
    let (v, n) = run(&f.env, &listing(""), "/api/now/table/customer_contact");
    assert_eq!((v, n), (json!([[300], 300]), 1));
    // The offset style from the request: a page shorter than the limit is the last.
    let offset = r#", pagination: #{ style: "offset", records: "result", offset_param: "sysparm_offset", limit_param: "sysparm_limit", page_size: 100 }"#;
    let (v, n) = run(&f.env, &listing(offset), "/api/now/table/customer_contact");
    assert_eq!((v, n), (json!([[100, 100, 100], 300]), 4), "the fourth page is empty");
    let (v, n) = run(&f.env, &listing(&offset.replace("100 }", "80 }")), "/api/now/table/customer_contact");
    assert_eq!((v, n), (json!([[80, 80, 80, 60], 300]), 4));
}

#[test]
fn pages_the_cursor_style_reads_its_cursor_from_a_json_path() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    let (v, n) = run(
        &f.env,
        r#"let sizes = [];
           for page in invoke_pages(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email" }, connection: "crm",
               pagination: #{ style: "cursor", records: "data", cursor_param: "page_token", next_cursor: "info.next_page_token",
                              page_size_param: "per_page", page_size: 110 } }) {
               sizes.push(page.len());
           }
           sizes"#,
        "/crm/v7/Leads",
    );
    assert_eq!((v, n), (json!([110, 110, 80]), 3));
}

#[test]
fn pages_max_pages_and_max_records_stop_early() {
    let f = Fixture::new();
    f.connect("crm", "zoho_crm");
    let leads = r#"url: "/crm/v7/Leads", parameters: #{ fields: "Email" }, connection: "crm""#;
    let (v, n) = run(
        &f.env,
        &format!("let n = 0; for p in invoke_pages(#{{ {leads}, max_pages: 2 }}) {{ n += p.len(); }} n")
            .replace("fields: \"Email\"", "fields: \"Email\", per_page: 100"),
        "/crm/v7/Leads",
    );
    assert_eq!((v, n), (json!(200), 2));
    let (v, n) = run(&f.env, &format!("invoke_records(#{{ {leads}, max_records: 250 }}).len()"), "/crm/v7/Leads");
    assert_eq!((v, n), (json!(250), 2));
    // Fewer records than a page: the page asks for only that many.
    let out = f.env.script(&format!("invoke_records(#{{ {leads}, max_records: 5 }}).len()"), &["--json", "--verbose"]);
    assert_eq!(out.ok().trim(), "5");
    assert_eq!(fetches(&out.stderr, "per_page=5"), 1, "{}", out.stderr);
    let (v, n) = run(&f.env, &format!("invoke_records(#{{ {leads}, max_pages: 1 }}).len()"), "/crm/v7/Leads");
    assert_eq!((v, n), (json!(200), 1));
}

#[test]
fn pages_a_failing_page_raises_the_error_map_with_its_page() {
    let f = Fixture::with(&linkrun_sandbox::server::Options { large: true, ..Default::default() });
    f.connect("crm", "zoho_crm");
    // Without the token (a request that points `next_token` nowhere), `page` reaches 2,000
    // records: page 11 of 200 is refused, after ten pages were delivered.
    let (v, n) = run(
        &f.env,
        r#"let got = 0;
           let r = "no error";
           try {
               for page in invoke_pages(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email" }, connection: "crm",
                                           pagination: #{ next_token: "info.none" } }) {
                   got += page.len();
               }
           } catch (e) {
               r = [got, e.kind, e.page, e.status, e.body.code, e.connection, e.message];
           }
           r"#,
        "/crm/v7/Leads",
    );
    assert_eq!(n, 11, "{v}");
    assert_eq!(
        v.as_array().unwrap()[..6],
        json!([2000, "http_status", 11, 400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "crm"]).as_array().unwrap()[..]
    );
    let msg = v[6].as_str().unwrap();
    assert!(
        msg.starts_with("page 11 of `/crm/v7/Leads` on connection `crm` failed with HTTP 400 (DISCRETE_PAGINATION_LIMIT_EXCEEDED: You can only get the first 2000 records without using page_token param): "),
        "{msg}"
    );
    // A page that keeps failing after its retries: the attempts are counted.
    let burst = linkrun_sandbox::faults::Burst { count: 2, status: 503, retry_after: None, retry_after_date: false };
    f.sandbox.faults.set(linkrun_sandbox::faults::Knobs { burst: Some(burst), ..Default::default() });
    let (v, n) = run(
        &f.env,
        r#"let r = ();
           try { invoke_records(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Email" }, connection: "crm",
                                 retry: #{ max_attempts: 2, base_ms: 1, cap_ms: 2 } }); }
           catch (e) { r = [e.kind, e.page, e.status, e.attempts]; }
           r"#,
        "/crm/v7/Leads",
    );
    assert_eq!((v, n), (json!(["http_status", 1, 503, 2]), 2));
    // Uncaught, it ends the run naming the page.
    let env = Env::new();
    let out = env.script(
        "invoke_records(#{ url: \"http://127.0.0.1:9/x\", pagination: #{ style: \"link_next\" }, retry: false })",
        &[],
    );
    let e = out.fails(1);
    assert!(e.contains("page 1 of `http://127.0.0.1:9/x` failed: "), "{e}");
}

#[test]
fn pages_need_a_style_and_refuse_bad_options() {
    let (env, server) = (Env::new(), Server::start());
    let u = server.url();
    let try_ = |map: &str| {
        let out = env.script(
            &format!(
                "let r = \"ok\"; try {{ invoke_records(#{{ {map} }}); }} catch (e) {{ r = [e.kind, e.message]; }} r"
            ),
            &["--json"],
        );
        serde_json::from_str::<serde_json::Value>(out.ok()).unwrap()
    };
    let v = try_(&format!("url: \"{u}/array?n=3\""));
    assert_eq!(v[0], "bad_request", "{v}");
    assert_eq!(
        v[1],
        format!(
            "invoke_records cannot page `{u}/array?n=3`: a request without a connection has no service to take a `[pagination]` table from, and it gives no `pagination` style; add `pagination: #{{ style: \"...\" }}` to the request (zoho_page_token, link_next, offset or cursor), or a `[pagination]` table to the service (connections/README.md, Pagination)"
        )
    );
    for (map, message) in [
        ("max_records: 0", "`max_records` of invoke_records must be a whole number from 1 to 1000000, not 0"),
        ("max_pages: 2000000", "`max_pages` of invoke_records must be a whole number from 1 to 1000000, not 2000000"),
        ("pagination: #{ style: \"pages\" }", "unknown pagination style `pages`"),
        ("pagination: #{ style: \"offset\", more: \"x\" }", "`more` is not a key of style `offset`"),
        ("pagination: #{ style: \"cursor\" }", "style `cursor` needs `next_cursor`"),
        ("pagination: #{ style: \"link_next\" }, pages: 3", "unknown key `pages` in the invoke_records map"),
        (
            "pagination: #{ style: \"link_next\" }, \"response-format\": \"TEXT\"",
            "invoke_records reads each page as JSON",
        ),
        ("pagination: #{ style: \"link_next\" }, parameters: \"a=1\"", "`parameters` of invoke_records must be a map"),
    ] {
        let v = try_(&format!("url: \"{u}/array?n=3\", {map}"));
        assert_eq!(v[0], "bad_request", "{map}: {v}");
        assert!(v[1].as_str().unwrap().contains(message), "{map}: {v}");
    }
    // The answer itself as the list; no Link header ends the listing after one page.
    server.clear();
    let v = try_(&format!("url: \"{u}/array?n=3\", pagination: #{{ style: \"link_next\" }}"));
    assert_eq!(v, "ok");
    assert_eq!(server.requests().len(), 1);
    // An answer without the records list is a `bad_response` error naming the path.
    let v = try_(&format!("url: \"{u}/echo\", pagination: #{{ style: \"offset\", records: \"items\" }}"));
    assert_eq!(v[0], "bad_response");
    assert_eq!(
        v[1],
        format!(
            "page 1 of `{u}/echo` has no records list at `items` (there is no key `items`): set `records` in the service's `[pagination]` or the request's `pagination` to the path of the list, e.g. `data` or `result`"
        )
    );
}

#[test]
fn pages_a_service_without_pagination_says_what_to_add() {
    let (env, server) = (Env::new(), Server::start());
    let toml = crate::common::service_toml("plain_api", "none", None, &server.url(), "");
    env.add_service("plain.toml", &toml);
    env.run(&["connection", "create", "plain", "--service", "plain_api"]).ok();
    let out = env.script("invoke_records(#{ url: \"/array?n=2\", connection: \"plain\" })", &[]);
    let e = out.fails(1);
    assert!(
        e.contains("invoke_records cannot page `/array?n=2`: service `plain_api` of connection `plain` has no `[pagination]` table and the request gives no `pagination` style; add `pagination: #{ style: \"...\" }`"),
        "{e}"
    );
    let out = env.script(
        "invoke_records(#{ url: \"/array?n=2\", connection: \"plain\", pagination: #{ style: \"link_next\" } })",
        &["--json"],
    );
    assert_eq!(out.ok().trim(), "[0,0]");
}

#[test]
fn pages_zoho_desk_pages_by_from_and_limit() {
    let f = Fixture::new();
    f.connect("desk", "zoho_desk");
    let dept = &f.sandbox.orgs[0].desk_department_id;
    let made = f.json(&format!(
        r#"let n = 0;
           for i in 0..7 {{
               let r = invoke_url(#{{ url: "/tickets", type: "POST", connection: "desk", detailed: true,
                   body: #{{ subject: `Ticket ${{i}}`, departmentId: "{dept}", contact: #{{ lastName: `Visitor ${{i}}` }} }} }});
               if r.responseCode == 200 {{ n += 1; }}
           }}
           n"#
    ));
    assert_eq!(made, json!(7));
    let listing = |over: &str| {
        format!(
            r#"let sizes = []; let ids = #{{}};
               for page in invoke_pages(#{{ url: "/tickets", connection: "desk"{over} }}) {{
                   sizes.push(page.len());
                   for t in page {{ ids[t.id] = true; }}
               }}
               [sizes, ids.len()]"#
        )
    };
    let (v, n) = run(&f.env, &listing(", pagination: #{ page_size: 3 }"), "/tickets");
    assert_eq!((v, n), (json!([[3, 3, 1], 7]), 3));
    let out = f.env.script(&listing(""), &["--json", "--verbose"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(out.ok()).unwrap(), json!([[7], 7]));
    assert_eq!(fetches(&out.stderr, "/tickets?from=0&limit=100"), 1, "{}", out.stderr);
}
