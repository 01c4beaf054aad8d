//! Data-center-portable URLs: a script written for `https://www.zohoapis.com` runs unchanged
//! through a connection in another data center (here the sandbox), `--verbose` says where the
//! request went, any other host keeps the allow-list rule, and `dc_portable_urls = false` (in
//! `linkrun.toml` or in the service) refuses such URLs naming the host and the data center.

use crate::zoho_tasks::Fixture;

const US_LEADS: &str = r#"invoke_url(#{ url: "https://www.zohoapis.com/crm/v7/Leads", parameters: #{ fields: "Last_Name", per_page: 2 }, connection: "crm_a" })"#;

#[test]
fn dc_portable_a_us_url_reaches_the_sandbox_connection_and_verbose_says_so() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    let out = f.env.script(&format!("{US_LEADS}.data.len()"), &["--verbose"]);
    assert_eq!(out.ok().trim(), "2");
    assert!(out.stderr.contains(&format!("dc-portable: https://www.zohoapis.com → {}\n", f.base)), "{}", out.stderr);
    assert!(out.stderr.contains(&format!("{}/crm/v7/Leads?fields=Last_Name&per_page=2", f.base)), "{}", out.stderr);
    // Without --verbose nothing is said; a Deluge-style absolute URL of the default data center
    // through the tasks' default connection works the same.
    let quiet = f.env.script(&format!("{US_LEADS}.data.len()"), &[]);
    assert_eq!((quiet.ok().trim(), quiet.stderr.as_str()), ("2", ""));
}

#[test]
fn dc_portable_leaves_other_hosts_to_the_allow_list() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    for url in ["https://evil.example/crm/v7/Leads", "https://sandbox.zohoapis.com/crm/v7/Leads"] {
        let e = f.json(&format!(
            r#"let r = (); try {{ invoke_url(#{{ url: "{url}", connection: "crm_a" }}); }} catch (e) {{ r = e; }} r"#
        ));
        assert_eq!(e["kind"], "host_refused", "{url}: {e}");
        assert!(
            e["message"].as_str().unwrap().starts_with("refusing to send the credentials of connection `crm_a`"),
            "{e}"
        );
    }
}

#[test]
fn dc_portable_urls_false_refuses_them_naming_the_host_and_the_data_center() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    std::fs::write(f.env.home_path().join("linkrun.toml"), "dc_portable_urls = false\n").unwrap();
    let e = f.json(&format!("let r = (); try {{ {US_LEADS}; }} catch (e) {{ r = e; }} r"));
    assert_eq!(e["kind"], "host_refused");
    assert_eq!(
        e["message"],
        format!(
            "refusing `www.zohoapis.com` on connection `crm_a`: it is the API host of another data center of service `zoho_crm`, the connection is in data center `sandbox`, and `linkrun.toml` sets `dc_portable_urls = false`; use a relative URL (joined to `{}`), or allow dc-portable URLs again",
            f.base
        )
    );
    // Relative URLs are unaffected.
    let n = f.env.script(
        r#"invoke_url(#{ url: "/crm/v7/Leads", parameters: #{ fields: "Last_Name", per_page: 1 }, connection: "crm_a" }).data.len()"#,
        &[],
    );
    assert_eq!(n.ok().trim(), "1");
}

#[test]
fn dc_portable_urls_false_in_a_service_refuses_them_before_anything_is_sent() {
    let f = Fixture::new();
    let toml = format!(
        "link_name = \"regional\"\nname = \"Regional API\"\nauth = \"api_key\"\ndc_portable_urls = false\n\
         [data_centers.us]\nbase_url = \"https://api.regional.example\"\n\
         [data_centers.local]\nbase_url = \"{}/api\"\n\
         [[params]]\nkey = \"X-Api-Key\"\nsecret = true\n",
        f.base
    );
    f.env.add_service("regional.toml", &toml);
    let key = f.env.secret("regional-key-5f0e1d2c3b4a");
    f.env
        .run(&[
            "connection",
            "create",
            "reg",
            "--service",
            "regional",
            "--dc",
            "local",
            "--param",
            &format!("X-Api-Key={key}"),
        ])
        .ok();
    let e = f.json(
        r#"let r = (); try { invoke_url(#{ url: "https://api.regional.example/api/items", connection: "reg" }); } catch (e) { r = e; } r"#,
    );
    assert_eq!(e["kind"], "host_refused");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.starts_with("refusing `api.regional.example` on connection `reg`"), "{msg}");
    assert!(
        msg.contains("in data center `local`") && msg.contains("service `regional` sets `dc_portable_urls = false`"),
        "{msg}"
    );
}

#[test]
fn dc_portable_a_desk_url_keeps_its_path_under_the_own_base_path() {
    let f = Fixture::new();
    f.connect("desk_a", "zoho_desk");
    let out = f.env.script(
        r#"invoke_url(#{ url: "https://desk.zoho.com/api/v1/departments", connection: "desk_a", detailed: true }).responseCode"#,
        &["--verbose"],
    );
    assert_eq!(out.ok().trim(), "200");
    assert!(
        out.stderr.contains(&format!("dc-portable: https://desk.zoho.com → {}/api/v1\n", f.base)),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!("linkrun: GET {}/api/v1/departments -> 200", f.base)), "{}", out.stderr);
}

#[test]
fn dc_portable_never_moves_a_url_for_a_local_server_to_a_production_data_center() {
    let f = Fixture::new();
    let toml = format!(
        "link_name = \"regional\"\nname = \"Regional API\"\nauth = \"api_key\"\n\
         [data_centers.us]\nbase_url = \"https://api.regional.example\"\n\
         [data_centers.local]\nbase_url = \"{}/api\"\n\
         [[params]]\nkey = \"X-Api-Key\"\nsecret = true\n",
        f.base
    );
    f.env.add_service("regional.toml", &toml);
    let key = f.env.secret("regional-key-0a1b2c3d4e5f");
    f.env
        .run(&[
            "connection",
            "create",
            "prod",
            "--service",
            "regional",
            "--dc",
            "us",
            "--param",
            &format!("X-Api-Key={key}"),
        ])
        .ok();
    let e = f.json(&format!(
        r#"let r = (); try {{ invoke_url(#{{ url: "{}/api/items", connection: "prod" }}); }} catch (e) {{ r = e; }} r"#,
        f.base
    ));
    assert_eq!(e["kind"], "host_refused", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("refusing to send the credentials of connection `prod` to `127.0.0.1"),
        "{e}"
    );
}
