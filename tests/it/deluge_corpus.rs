//! The Deluge corpus (`tests/deluge/*.dg`, described by `tests/deluge/README.md`): every
//! function parses; `linkrun run FILE.dg` against a fresh sandbox gives the result, `info`
//! lines and sandbox state its sidecar `.json` names; its `linkrun port` runs against another
//! fresh sandbox to the same effect. Also Deluge's documented examples of built-ins, one short
//! snippet each, and bad Deluge reported at its `file:line:col` with the line quoted.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::common::Env;
use crate::common::sandbox::Fixture;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deluge")
}

/// The corpus files, sorted by name.
fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/deluge")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "dg"))
        .collect();
    files.sort();
    files
}

/// How a run went: the `--json` result, the standard error lines, and the exit code.
struct Outcome {
    result: Value,
    stderr: Vec<String>,
    code: i32,
}

/// A fresh sandbox prepared as `spec` says: connections, defaults, the `setup` records. Returns
/// the fixture and the placeholders (`${desk_org_id}`, `${as}` of each setup record...).
fn prepare(spec: &Value) -> (Fixture, Vec<(String, String)>) {
    let f = Fixture::new();
    f.env.set_env("TZ", "UTC");
    let org = &f.sandbox.orgs[0];
    let mut vars = vec![
        ("desk_org_id".to_string(), org.desk_org_id.clone()),
        ("desk_department_id".to_string(), org.desk_department_id.clone()),
    ];
    for (link, service) in spec["connections"].as_object().into_iter().flatten() {
        f.connect(link, service.as_str().expect("service name"));
    }
    for (service, link) in spec["defaults"].as_object().into_iter().flatten() {
        f.env.run(&["connection", "default", service, link.as_str().expect("link name")]).ok();
    }
    let link = spec["connections"].as_object().and_then(|c| c.keys().next().cloned()).unwrap_or_default();
    for record in spec["setup"].as_array().into_iter().flatten() {
        let module = record["module"].as_str().expect("setup module");
        let script = format!(
            "let r = zoho.crm.createRecord({}, toMap({}), {}); r.id",
            json!(module),
            json!(record["fields"].to_string()),
            json!(link)
        );
        let id = f.env.script(&script, &[]).ok().trim().to_string();
        assert_eq!(id.len(), 19, "setup record {record}: {id}");
        vars.push((record["as"].as_str().expect("setup `as`").to_string(), id));
    }
    (f, vars)
}

fn substitute(text: &str, vars: &[(String, String)]) -> String {
    vars.iter().fold(text.to_string(), |t, (k, v)| t.replace(&format!("${{{k}}}"), v))
}

/// Runs `file` (a `.dg` or its `.rhai` port) with the sidecar's arguments.
fn run(f: &Fixture, file: &Path, spec: &Value, vars: &[(String, String)]) -> Outcome {
    let mut args: Vec<String> = vec!["run".into(), file.to_str().expect("utf-8 path").into(), "--json".into()];
    for (k, v) in spec["args"].as_object().into_iter().flatten() {
        match v {
            Value::String(s) => args.extend(["--arg".into(), format!("{k}={}", substitute(s, vars))]),
            other => args.extend(["--arg-json".into(), format!("{k}={other}")]),
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = f.env.run(&args);
    let result = serde_json::from_str(out.stdout.trim()).unwrap_or(Value::String(out.stdout.clone()));
    Outcome { result, stderr: out.stderr.lines().map(str::to_string).collect(), code: out.code }
}

/// What differs between `got` (and the sandbox of `f`) and the sidecar `spec`, one line each.
fn check(f: &Fixture, got: &Outcome, spec: &Value, vars: &[(String, String)]) -> Vec<String> {
    let spec: Value = serde_json::from_str(&substitute(&spec.to_string(), vars)).expect("sidecar");
    let mut bad = Vec::new();
    let want_code = spec["exit"].as_i64().unwrap_or(0) as i32;
    if got.code != want_code {
        bad.push(format!("exit {} (want {want_code}): {}", got.code, got.stderr.join("\n")));
        return bad;
    }
    if let Some(want) = spec.get("result")
        && got.result != *want
    {
        bad.push(format!("result {} (want {want})", got.result));
    }
    if let Some(want) = spec["info"].as_array() {
        let want: Vec<&str> = want.iter().map(|l| l.as_str().expect("info line")).collect();
        if got.stderr != want {
            bad.push(format!("info lines {:#?}\n(want {want:#?})", got.stderr));
        }
    }
    for s in spec["state"].as_array().into_iter().flatten() {
        let (org, module, email) =
            (s["org"].as_str().unwrap(), s["module"].as_str().unwrap(), s["email"].as_str().unwrap());
        match f.sandbox.crm.find_by_email(org, module, email) {
            None => bad.push(format!("no {module} record with e-mail {email} in org {org}")),
            Some(rec) => bad.extend(fields_differ(&rec, &s["fields"], &format!("{module} {email}"))),
        }
    }
    for t in spec["desk_tickets"].as_array().into_iter().flatten() {
        let subject = t["subject"].as_str().unwrap();
        let tickets = f.sandbox.desk.tickets(t["org"].as_str().unwrap());
        let found: Vec<&Value> = tickets.iter().filter(|x| x["subject"] == subject).collect();
        match found.as_slice() {
            [one] => bad.extend(fields_differ(one, &t["fields"], &format!("ticket {subject:?}"))),
            other => bad.push(format!("{} Desk tickets with subject {subject:?} (want 1)", other.len())),
        }
    }
    bad
}

fn fields_differ(record: &Value, fields: &Value, what: &str) -> Vec<String> {
    let empty = Map::new();
    fields
        .as_object()
        .unwrap_or(&empty)
        .iter()
        .filter(|(k, v)| record[k.as_str()] != **v)
        .map(|(k, v)| format!("{what}: `{k}` is {} (want {v})", record[k.as_str()]))
        .collect()
}

#[test]
fn deluge_corpus_runs_to_its_sidecar_and_its_port_does_the_same() {
    let files = corpus();
    assert!(files.len() >= 12, "the corpus has {} files", files.len());
    let mut failures = Vec::new();
    for dg in &files {
        let name = dg.file_name().unwrap().to_string_lossy().to_string();
        let spec: Value = serde_json::from_str(
            &std::fs::read_to_string(dg.with_extension("json")).unwrap_or_else(|e| panic!("{name}: sidecar: {e}")),
        )
        .unwrap_or_else(|e| panic!("{name}: sidecar: {e}"));
        let src = std::fs::read_to_string(dg).unwrap();
        if let Err(errors) = deluge::parse(&src) {
            let reports: Vec<String> = errors.iter().map(|e| deluge::report(&src, &name, e)).collect();
            failures.push(format!("{name}: does not parse: {}", reports.join("\n")));
            continue;
        }
        // The Deluge file itself.
        let (f, vars) = prepare(&spec);
        let got = run(&f, dg, &spec, &vars);
        failures.extend(check(&f, &got, &spec, &vars).into_iter().map(|b| format!("{name}: {b}")));
        // Its port, against a sandbox of its own.
        let rhai = f.env.work.path().join(dg.with_extension("rhai").file_name().unwrap());
        let ported = f.env.run(&["port", dg.to_str().unwrap(), "-o", rhai.to_str().unwrap()]);
        if ported.code != 0 {
            failures.push(format!("{name}: port failed: {}", ported.stderr));
            continue;
        }
        let text = std::fs::read_to_string(&rhai).unwrap();
        let (g, vars) = prepare(&spec);
        let rhai = g.env.write(rhai.file_name().unwrap().to_str().unwrap(), &text);
        let got = run(&g, &rhai, &spec, &vars);
        failures.extend(check(&g, &got, &spec, &vars).into_iter().map(|b| format!("{name} (port): {b}")));
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Deluge's built-ins against the examples of its documentation (and the rules it states:
/// 0-based `subString` and `get`, 1-based `getMonth`, Sunday as day 1, null in and out), each
/// one `info` line of one `.dg` run.
#[test]
fn deluge_builtins_give_the_documented_results() {
    let cases: &[(&str, &str)] = &[
        // text
        (r#""Lakshmi Narayan".subString(0, 7)"#, "Lakshmi"),
        (r#""Lakshmi Narayan".subString(8)"#, "Narayan"),
        (r#""Zoho Creator".length()"#, "12"),
        (r#""Zoho Creator".getPrefix("Creator")"#, "Zoho "),
        (r#""Zoho Creator".getSuffix("Zoho")"#, " Creator"),
        (r#""Zoho Creator".indexOf("o") + " " + "Zoho Creator".lastIndexOf("o")"#, "1 10"),
        (r#""Zoho".indexOf("x")"#, "-1"),
        (r#""abc".leftpad(5) + "|" + "abc".rightpad(5) + "|""#, "  abc|abc  |"),
        (r#""zoho creator".proper()"#, "Zoho Creator"),
        (r#""Creator,CRM,Projects".toList(",").size()"#, "3"),
        (r#""Creator,CRM".toList(",").get(1)"#, "CRM"),
        (r#""Hello World".replaceAll("o", "0")"#, "Hell0 W0rld"),
        (r#""Hello World".replaceFirst("o", "0")"#, "Hell0 World"),
        (r#""Hello World".remove("l")"#, "Heo Word"),
        (r#""Hello123World".getAlphaNumeric()"#, "Hello123World"),
        (r#""5".toNumber() + 5"#, "10"),
        (r#""12".toDecimal()"#, "12.0"),
        (r#""12.3".isNumber() + " " + "12".isNumber()"#, "false true"),
        (r#""zoho".matches("[a-z]+") + " " + "zoho1".matches("[a-z]+")"#, "true false"),
        // numbers
        ("3.14159.round(2)", "3.14"),
        ("round(123.456, 1)", "123.5"),
        ("round(2.5, 0)", "3.0"),
        ("(-5).abs()", "5"),
        ("10.toString() + 1", "101"),
        // lists and maps
        (r#"{"a", "b", "c"}.get(0)"#, "a"),
        (r#"{"a", "b", "c"}.indexOf("c")"#, "2"),
        (r#"{3, 1, 2}.sort()"#, "[1,2,3]"),
        (r#"{3, 1, 2}.sort(false)"#, "[3,2,1]"),
        (r#"{1, 2, 2, 3, 1}.distinct()"#, "[1,2,3]"),
        (r#"{"a", "b", "c", "d"}.sublist(1, 3)"#, "[\"b\",\"c\"]"),
        (r#"{"k": "v"}.get("missing")"#, "null"),
        (r#"{"k": "v"}.containKey("k") + " " + {"k": "v"}.containValue("v")"#, "true true"),
        (r#"{"a": {"b": 1}}.getJSON("a")"#, "{\"b\":1}"),
        (r#"{"a": 1}.toString()"#, "{\"a\":1}"),
        // null
        ("isNull(null) + \" \" + ifnull(null, \"x\")", "true x"),
        (r#"Map().get("x").isNull()"#, "true"),
        (r#"List().isEmpty() + " " + "".isEmpty()"#, "true true"),
        // dates
        ("'15-Mar-2019'.getMonth()", "3"),
        ("'15-Mar-2019'.getDay() + \" \" + '15-Mar-2019'.getYear()", "15 2019"),
        ("'01-Jan-2019'.getDayOfWeek()", "3"),
        ("'15-Mar-2019'.addDay(5)", "20-Mar-2019"),
        ("'15-Mar-2019 10:00:00'.subDay(15)", "28-Feb-2019 10:00:00"),
        ("'31-Jan-2019'.addMonth(1)", "28-Feb-2019"),
        ("'15-Mar-2019 10:00:00'.addHour(15)", "16-Mar-2019 01:00:00"),
        ("daysBetween('01-Jan-2019', '15-Jan-2019')", "14"),
        ("'10-Jan-2019 10:05:09'.toString(\"dd/MM/yyyy HH:mm:ss\")", "10/01/2019 10:05:09"),
        ("'08-Mar-2019'.addBusinessDay(1)", "11-Mar-2019"),
        ("\"15-Mar-2019\".toDate()", "15-Mar-2019"),
        // encoding
        ("zoho.encryption.urlEncode(\"a b\") + \" \" + encodeUrl(\"a b\")", "a%20b a+b"),
        ("zoho.encryption.base64Encode(\"Zoho\")", "Wm9obw=="),
    ];
    let env = Env::new();
    env.set_env("TZ", "UTC");
    let src: String = cases.iter().map(|(e, _)| format!("info {e};\n")).collect();
    let file = env.write("builtins.dg", &src);
    let out = env.run(&["run", file.to_str().unwrap()]);
    out.ok();
    let lines: Vec<&str> = out.stderr.lines().collect();
    let mut bad = Vec::new();
    for (i, (expr, want)) in cases.iter().enumerate() {
        let got = lines.get(i).copied().unwrap_or("<no line>");
        if got != *want {
            bad.push(format!("{expr}: {got:?} (want {want:?})"));
        }
    }
    assert!(bad.is_empty(), "{} built-ins differ:\n{}", bad.len(), bad.join("\n"));
}

/// Bad Deluge, written as in a real function, is refused at its `file:line:col` with the line
/// quoted and a caret, by both `run` and `port`, before anything runs.
#[test]
fn deluge_corpus_bad_functions_are_refused_at_their_line_and_column() {
    let env = Env::new();
    let header = "string standalone.f(String email)\n{\n";
    let cases = [
        (
            "unterminated.dg",
            format!("{header}\tlead = Map();\n\tlead.put(\"Email\", email);\n\tinfo \"created;\n\treturn email;\n}}\n"),
            "unterminated.dg:5:7: unterminated string",
            "5 | \tinfo \"created;",
        ),
        (
            "semicolon.dg",
            format!("{header}\tlead = Map()\n\tlead.put(\"Email\", email);\n\treturn email;\n}}\n"),
            "semicolon.dg:3:14: expected `;`",
            "3 | \tlead = Map()",
        ),
        (
            "undefined.dg",
            format!("{header}\tlead = Map();\n\tlead.put(\"Email\", emial);\n\treturn email;\n}}\n"),
            "undefined.dg:4:20: variable `emial` is not defined",
            "4 | \tlead.put(\"Email\", emial);",
        ),
        (
            "unknown_task.dg",
            format!("{header}\tr = zoho.crm.sendMail(\"Leads\", email);\n\treturn email;\n}}\n"),
            "unknown_task.dg:3:6: not supported: `zoho.crm.sendMail`",
            "3 | \tr = zoho.crm.sendMail",
        ),
        (
            "md5.dg",
            format!("{header}\treturn zoho.encryption.md5(email);\n}}\n"),
            "md5.dg:3:9: not supported: `zoho.encryption.md5`",
            "3 | \treturn zoho.encryption.md5(email);",
        ),
    ];
    for (file, text, head, quoted) in cases {
        let p = env.write(file, &text);
        for cmd in [&["run", p.to_str().unwrap(), "--arg", "email=a@b.example"][..], &["port", p.to_str().unwrap()]] {
            let err = env.run(cmd).fails(1);
            assert!(err.starts_with(head), "{file} ({}): {err}", cmd[0]);
            assert!(err.contains(quoted), "{file} ({}): {err}", cmd[0]);
            assert!(err.contains('^'), "{file} ({}): a caret under the column: {err}", cmd[0]);
        }
    }
}
