//! `linkrun run FILE.dg` and `linkrun port`: a Deluge function runs unchanged against the
//! sandbox, its Rhai port does the same, bad Deluge is refused at its line and column before any
//! request, and hard-coded credentials stay out of the port.

use crate::common::sandbox::Fixture;
use crate::common::{Env, Server};

const NEW_LEAD: &str = r#"// Creates a lead from a web form, the way a Zoho CRM custom function would.
string standalone.new_lead(String email, String lastName, Int score)
{
	lead = Map();
	lead.put("Last_Name", lastName.trim().proper());
	lead.put("Email", email.toLowerCase());
	lead.put("Company", "Zylker");
	lead.put("Description", "score " + (score * 2));
	records = List();
	records.add(lead);
	body = {"data": records, "trigger": {"workflow"}};
	resp = invokeurl
	[
		url: "/crm/v7/Leads"
		type: POST
		parameters: body.toString()
		content-type: "application/json"
		connection: "crm_a"
	];
	item = resp.get("data").get(0);
	if (item.get("code") == "SUCCESS")
	{
		return item.get("details").get("id");
	}
	return "failed: " + item.get("message");
}
"#;

#[test]
fn a_deluge_function_runs_against_the_sandbox_and_its_port_does_the_same() {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    let (sandbox, env) = (&f.sandbox, &f.env);
    let dg = env.write("new_lead.dg", NEW_LEAD);
    let dg = dg.to_str().unwrap();
    let out =
        env.run(&["run", dg, "--arg", "email=Ada@Zylker.Example", "--arg", "lastName=  lovelace ", "--arg", "score=7"]);
    let id = out.ok().trim().to_string();
    let lead = sandbox.crm.find_by_email("us", "Leads", "ada@zylker.example").expect("the lead was created");
    assert_eq!(lead["id"], id.as_str());
    assert_eq!(lead["Last_Name"], "Lovelace");
    assert_eq!(lead["Description"], "score 14");

    // The port is a Rhai script that does the same.
    let rhai = env.work.path().join("new_lead.rhai");
    let ported = env.run(&["port", dg, "-o", rhai.to_str().unwrap()]);
    ported.ok();
    assert!(ported.stderr.contains("wrote"), "{}", ported.stderr);
    let text = std::fs::read_to_string(&rhai).unwrap();
    assert!(text.contains("invoke_url(#{"), "{text}");
    let out = env.run(&[
        "run",
        rhai.to_str().unwrap(),
        "--arg",
        "email=grace@zylker.example",
        "--arg",
        "lastName=hopper",
        "--arg",
        "score=1",
    ]);
    let id = out.ok().trim().to_string();
    let lead = sandbox.crm.find_by_email("us", "Leads", "grace@zylker.example").expect("created by the port");
    assert_eq!((lead["id"].as_str(), lead["Last_Name"].as_str()), (Some(id.as_str()), Some("Hopper")));
    assert_eq!(lead["Description"], "score 2");
    // Standard output of `port` without -o is the same Rhai.
    assert_eq!(env.run(&["port", dg]).ok().trim_end(), text.trim_end());
}

#[test]
fn bad_deluge_is_refused_at_its_line_and_column_before_any_request() {
    let (env, server) = (Env::new(), Server::start());
    let first = format!("r = invokeurl [ url: \"{}/hit\" type: GET ];\n", server.url());
    let cases = [
        (
            "unterminated.dg",
            format!("{first}x = \"open;\ninfo x;\n"),
            "unterminated.dg:2:5: unterminated string",
            "2 | x = \"open;",
        ),
        ("semicolon.dg", format!("{first}x = 1\ny = 2;\n"), "semicolon.dg:2:6: expected `;`", "2 | x = 1"),
        (
            "undefined.dg",
            format!("void f(String a)\n{{\n{first}info a + missing;\n}}\n"),
            "undefined.dg:4:10: variable `missing` is not defined",
            "4 | info a + missing;",
        ),
        (
            "writer.dg",
            format!("{first}d = zoho.writer.mergeAndDownload(1, \"pdf\");\n"),
            "writer.dg:2:5: not supported: `zoho.writer.mergeAndDownload`",
            "2 | d = zoho.writer.mergeAndDownload",
        ),
        (
            "sendmail.dg",
            format!("{first}sendmail\n[\n  to: \"a@b.example\"\n  subject: \"hi\"\n  message: \"x\"\n]\n"),
            "sendmail.dg:2:1: not supported: `sendmail`",
            "2 | sendmail",
        ),
    ];
    for (file, text, head, quoted) in cases {
        let p = env.write(file, &text);
        let err = env.run(&["run", p.to_str().unwrap(), "--arg", "a=1"]).fails(1);
        assert!(err.starts_with(head), "{file}: {err}");
        assert!(err.contains(quoted), "{file}: {err}");
        assert!(err.contains('^'), "{file}: a caret under the column: {err}");
        // `port` refuses it the same way.
        let err = env.run(&["port", p.to_str().unwrap()]).fails(1);
        assert!(err.starts_with(head), "{file}: {err}");
    }
    assert!(server.requests().is_empty(), "nothing may be sent: {:?}", server.requests());
}

#[test]
fn runtime_errors_point_at_the_deluge_line_and_try_catch_has_message_and_line_no() {
    let env = Env::new();
    let p = env.write(
        "f.dg",
        "l = List();\nl.add(1);\ntry\n{\n\tx = l.get(5);\n}\ncatch (e)\n{\n\tinfo \"line \" + e.lineNo + \": \" + e.message;\n}\ny = l.get(9);\n",
    );
    let out = env.run(&["run", p.to_str().unwrap()]);
    let err = out.fails(1);
    assert!(out.stderr.contains("line 5: get(5): there is no item at index 5"), "{}", out.stderr);
    assert!(err.contains("line 11, column 1 (`y = l.get(9);`)"), "{err}");
}

#[test]
fn inputs_come_from_arg_and_input_and_are_checked_before_anything_runs() {
    let (env, server) = (Env::new(), Server::start());
    let p = env.write(
        "f.dg",
        &format!(
            "string standalone.f(Int n, String who)\n{{\nr = invokeurl [ url: \"{}/hit\" type: GET ];\nreturn who + \" \" + (n + 1);\n}}\n",
            server.url()
        ),
    );
    let f = p.to_str().unwrap();
    let err = env.run(&["run", f, "--arg", "who=Ann"]).fails(2);
    assert!(err.contains("reads `n` at line 1, column 21"), "{err}");
    assert!(err.contains("--arg n=VALUE"), "{err}");
    let err = env.run(&["run", f, "--arg", "who=Ann", "--arg", "n=four"]).fails(2);
    assert!(err.contains("not a valid Int"), "{err}");
    assert!(server.requests().is_empty());
    let input = env.write("in.json", r#"{"n": 41, "who": "Bo"}"#);
    assert_eq!(env.run(&["run", f, "--input", input.to_str().unwrap()]).ok().trim(), "Bo 42");
    assert_eq!(server.requests().len(), 1);
    // A bare body's free variables are inputs too.
    let p = env.write("body.dg", "info \"hello \" + name;\nreturn name.length();\n");
    let out = env.run(&["run", p.to_str().unwrap(), "--arg", "name=Ada"]);
    assert_eq!(out.ok().trim(), "3");
    assert_eq!(out.stderr, "hello Ada\n");
}

#[test]
fn port_leaves_hard_coded_credentials_out_and_prints_the_connection_that_holds_them() {
    let env = Env::new();
    let secret = env.secret("c1a2b3c4d5e6f7hardcodedsecret");
    let refresh = env.secret("1000.9f8e7d6c5b4a.hardcodedrefresh");
    let p = env.write(
        "seed.dg",
        &format!(
            "tokenResp = invokeurl\n[\n\turl: \"https://accounts.zoho.eu/oauth/v2/token?refresh_token={refresh}&client_id=1000.PUBLICID&client_secret={secret}&grant_type=refresh_token\"\n\ttype: POST\n];\nconf = {{\"client_secret\": \"{secret}\"}};\nh = Map();\nh.put(\"Authorization\", \"Zoho-oauthtoken \" + tokenResp.get(\"access_token\"));\nresp = invokeurl [ url: \"https://www.zohoapis.eu/crm/v7/Leads\" type: GET headers: h ];\n"
        ),
    );
    let out = env.run(&["port", p.to_str().unwrap()]);
    let rhai = out.ok();
    assert!(
        rhai.contains("https://accounts.zoho.eu/oauth/v2/token?refresh_token=&client_id=1000.PUBLICID&client_secret=&"),
        "{rhai}"
    );
    assert!(out.stderr.contains("left 3 hard-coded credentials"), "{}", out.stderr);
    assert!(out.stderr.contains("refresh_token at line 3, column 7"), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "linkrun connection create zoho_crm_eu --service zoho_crm --dc eu --param client_id=1000.PUBLICID --param client_secret"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("linkrun connection authorize zoho_crm_eu --code"), "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(env.run(&["port", p.to_str().unwrap(), "--json"]).ok()).unwrap();
    assert_eq!(doc["credentials"].as_array().unwrap().len(), 3, "{doc}");
    assert_eq!(doc["credentials"][2]["kind"], "client_secret");
    // The secrets appear in no output (checked again by Env on drop).
    env.assert_no_secrets();
}

/// The ```deluge blocks of README.md, dedented, in order.
fn readme_deluge_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for line in readme.lines() {
        let trimmed = line.trim_start();
        match &mut current {
            None if trimmed == "```deluge" => current = Some((line.len() - trimmed.len(), String::new())),
            Some(_) if trimmed == "```" => blocks.push(current.take().unwrap().1),
            Some((indent, text)) => {
                text.push_str(line.get(*indent..).unwrap_or(""));
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn the_readme_deluge_examples_run_as_the_readme_says() {
    let blocks = readme_deluge_blocks();
    assert_eq!(blocks.len(), 2, "the quick start's leads.dg and the reference's new_lead.dg");
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    let quick = f.env.write("leads.dg", &blocks[0]);
    for _ in 0..2 {
        // A second run finds the lead the first one created.
        let out = f.env.run(&["run", quick.to_str().unwrap()]);
        assert_eq!(out.ok(), "grace@example.com\n");
        assert!(out.stderr.starts_with("lead 5725767000001"), "{}", out.stderr);
    }
    let traced = f.env.run(&["--verbose", "run", quick.to_str().unwrap()]);
    assert!(
        traced.stderr.contains(&format!("dc-portable: https://www.zohoapis.com → {}", f.base)),
        "{}",
        traced.stderr
    );
    let reference = f.env.write("new_lead.dg", &blocks[1]);
    let out = f.env.run(&[
        "run",
        reference.to_str().unwrap(),
        "--arg",
        "email=Ada@Zylker.Example",
        "--arg",
        "lastName=lovelace",
    ]);
    let id = out.ok().trim().to_string();
    assert_eq!(out.stderr, format!("created {id}\n"));
    let lead = f.sandbox.crm.find_by_email("us", "Leads", "ada@zylker.example").unwrap();
    assert_eq!((lead["id"].as_str(), lead["Last_Name"].as_str()), (Some(id.as_str()), Some("Lovelace")));
}

#[test]
fn response_format_text_keeps_a_json_body_as_text() {
    let (env, server) = (Env::new(), Server::start());
    let p = env.write(
        "f.dg",
        &format!(
            "a = invokeurl [ url: \"{u}/echo\" type: GET ];\nb = invokeurl [ url: \"{u}/echo\" type: GET response-format: TEXT ];\nreturn {{\"parsed\": a.get(\"method\"), \"text\": b.startsWith(\"{{\"), \"json\": b.toMap().get(\"method\")}};\n",
            u = server.url()
        ),
    );
    let v: serde_json::Value = serde_json::from_str(env.run(&["run", p.to_str().unwrap(), "--json"]).ok()).unwrap();
    assert_eq!(v, serde_json::json!({"parsed": "GET", "text": true, "json": "GET"}));
    let bad = env.write("bad.dg", &format!("b = invokeurl [ url: \"{}/echo\" response-format: XML ];\n", server.url()));
    let err = env.run(&["run", bad.to_str().unwrap()]).fails(1);
    assert!(err.contains("`response-format` of invoke_url is `XML`: give TEXT or JSON"), "{err}");
}

#[test]
fn port_to_a_missing_folder_names_the_output_not_a_temporary_file() {
    let env = Env::new();
    let dg = env.write("f.dg", "info 1;\n");
    let out = env.work.path().join("missing/f.rhai");
    let err = env.run(&["port", dg.to_str().unwrap(), "-o", out.to_str().unwrap()]).fails(1);
    assert!(err.ends_with("f.rhai`: no such file; check that its folder exists and is writable"), "{err}");
    assert!(!err.contains("missing/.tmp"), "{err}");
}
