//! The Deluge corpus (`tests/deluge/*.dg`, described by `tests/deluge/README.md`): every
//! function parses; `linkrun run FILE.dg` against a fresh sandbox gives the result, `info`
//! lines and sandbox state its sidecar `.json` names; its `linkrun port` runs against another
//! fresh sandbox to the same effect. Also Deluge's documented examples of built-ins, one short
//! snippet each, and bad Deluge reported at its `file:line:col` with the line quoted.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

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
    let mut bad = Vec::new();
    let want_code = spec["exit"].as_i64().unwrap_or(0) as i32;
    if got.code != want_code {
        bad.push(format!("exit {} (want {want_code}): {}", got.code, got.stderr.join("\n")));
        return bad;
    }
    if let Some(want) = spec.get("result") {
        let want: Value = serde_json::from_str(&substitute(&want.to_string(), vars)).expect("result");
        if got.result != want {
            bad.push(format!("result {} (want {want})", got.result));
        }
    }
    if let Some(want) = spec["info"].as_array() {
        let want: Vec<String> = want.iter().map(|l| substitute(l.as_str().expect("info line"), vars)).collect();
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
