//! The example syncs against a hostile sandbox: 20% of API requests answered 429 (`Retry-After:
//! 0`), 5% answered 503, and the access tokens expire a few times a run. Each
//! sync is run again until a run reports no failure (as a schedule would); the two systems must
//! then hold every record once: nothing lost, nothing duplicated, and the same state an
//! undisturbed run reaches.

use std::collections::BTreeMap;

use linkrun_sandbox::faults::Knobs;
use linkrun_sandbox::server::Options;
use serde_json::Value;

use crate::common::Env;
use crate::common::sandbox::Fixture;

/// 20% 429s, 5% 503s (a write's after it was done, so a repeated create would duplicate), and the access tokens expire every `expiry` requests with a token (a
/// few times a run, and fewer than Zoho's 10 refreshes in 10 minutes).
fn hostile(expiry: u64) -> Knobs {
    Knobs {
        throttle_rate: 0.2,
        throttle_retry_after: 0,
        failure_rate: 0.05,
        failure_status: 503,
        expire_tokens_every: Some(expiry),
        failure_after_write: true,
        ..Default::default()
    }
}

fn script(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name).to_str().unwrap().to_string()
}

/// Runs `scripts/NAME` with `--verbose` until a run's result has no failure (at most 5 runs);
/// the results and everything the runs wrote on stderr.
fn run_until_clean(env: &Env, name: &str, args: &[&str], failures: impl Fn(&Value) -> usize) -> (Vec<Value>, String) {
    let path = script(name);
    let mut all = vec!["run", path.as_str(), "--json", "--verbose"];
    for a in args {
        all.extend(["--arg", a]);
    }
    let (mut results, mut stderr) = (Vec::new(), String::new());
    for _ in 0..5 {
        let out = env.run(&all);
        let result: Value = serde_json::from_str(out.ok()).unwrap();
        stderr.push_str(&out.stderr);
        let failed = failures(&result);
        results.push(result);
        if failed == 0 {
            return (results, stderr);
        }
    }
    panic!("still failing after 5 runs: {results:?}");
}

/// A field's value as text ("" for none), as the scripts compare them.
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("display_value").or(o.get("name")).map(text).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// The records by lower-case `key`, each with the `fields` as text (those without a key are not
/// synced, and left out); panics on a duplicate key.
fn by_key(records: &[Value], key: &str, fields: &[&str], what: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for r in records {
        let k = text(&r[key]).to_lowercase();
        if k.is_empty() {
            continue;
        }
        let values = fields.iter().map(|f| text(&r[*f])).collect();
        assert!(out.insert(k.clone(), values).is_none(), "{what}: {key} {k} is there twice");
    }
    out
}

fn faults_were_met(stderr: &str, f: &Fixture, refreshes_before: u64) {
    assert!(stderr.contains("(Retry-After)"), "no 429 was retried:\n{stderr}");
    assert!(stderr.contains(" -> 503 ("), "no 503 was met:\n{stderr}");
    let refreshed = f.sandbox.provider.stats().refreshes_ok + f.sandbox.sn_provider.stats().refreshes_ok;
    assert!(refreshed > refreshes_before, "no token expired mid-run");
}

#[test]
fn hostile_org_sync_copies_every_lead_once() {
    let f = Fixture::with(&Options { large: true, ..Default::default() });
    f.connect_org("crm_a", "zoho_crm", 0);
    f.connect_org("crm_b", "zoho_crm", 1);
    const FIELDS: [&str; 8] =
        ["First_Name", "Last_Name", "Email", "Phone", "Mobile", "Company", "Lead_Status", "Lead_Source"];
    let b_before = by_key(&f.sandbox.crm.records("in", "Leads"), "Email", &FIELDS, "Org B before");
    let refreshes = f.sandbox.provider.stats().refreshes_ok;
    f.sandbox.faults.set(hostile(20));
    let (runs, stderr) = run_until_clean(&f.env, "zoho_org_sync.rhai", &[], |r| r["failed"].as_u64().unwrap() as usize);
    faults_were_met(&stderr, &f, refreshes);
    f.sandbox.faults.set(Knobs::default());

    let a = by_key(&f.sandbox.crm.records("us", "Leads"), "Email", &FIELDS, "Org A");
    let b = by_key(&f.sandbox.crm.records("in", "Leads"), "Email", &FIELDS, "Org B");
    assert!(a.len() > 2000, "{}", a.len());
    for (email, values) in &a {
        assert_eq!(b.get(email), Some(values), "lead {email} of Org A in Org B");
    }
    let untouched = b_before.keys().filter(|k| !a.contains_key(*k)).count();
    assert_eq!(b.len(), a.len() + untouched, "Org B has Org A's leads and its own, nothing more");
    let read: u64 = runs.iter().map(|r| r["read"].as_u64().unwrap()).sum();
    assert!(read >= a.len() as u64, "{runs:?}");
}

/// Contacts of both systems after the ServiceNow sync (both ways, CRM wins) against a sandbox
/// with `knobs`: ServiceNow's by email, CRM's by Email, each with the mapped fields.
fn servicenow_sync(knobs: Knobs) -> (BTreeMap<String, Vec<String>>, BTreeMap<String, Vec<String>>) {
    let f = Fixture::new();
    f.connect("crm_a", "zoho_crm");
    f.connect_servicenow("sn");
    let refreshes = f.sandbox.provider.stats().refreshes_ok + f.sandbox.sn_provider.stats().refreshes_ok;
    let hostile = knobs != Knobs::default();
    f.sandbox.faults.set(knobs);
    let failures = |r: &Value| {
        r["sn_to_crm"]["failed"].as_array().unwrap().len() + r["crm_to_sn"]["failed"].as_array().unwrap().len()
    };
    let (runs, stderr) =
        run_until_clean(&f.env, "servicenow_contacts_to_crm.rhai", &["direction=both", "conflict=crm_wins"], failures);
    if hostile {
        faults_were_met(&stderr, &f, refreshes);
        assert!(runs.len() > 1, "a 503 on a ServiceNow create is not retried, so a second run finishes: {runs:?}");
    }
    f.sandbox.faults.set(Knobs::default());
    let sn = f.sandbox.servicenow.records("customer_contact");
    let sn =
        by_key(&sn, "email", &["first_name", "last_name", "email", "phone", "mobile_phone", "title"], "ServiceNow");
    let crm = f.sandbox.crm.records("us", "Contacts");
    let crm = by_key(&crm, "Email", &["First_Name", "Last_Name", "Email", "Phone", "Mobile", "Title"], "CRM");
    (sn, crm)
}

#[test]
fn hostile_servicenow_sync_ends_as_an_undisturbed_one() {
    // The undisturbed sync runs beside the hostile one, on a sandbox of its own.
    let calm = std::thread::spawn(|| servicenow_sync(Knobs::default()));
    let (sn, crm) = servicenow_sync(hostile(250));
    let (calm_sn, calm_crm) = calm.join().expect("the undisturbed sync");
    assert_eq!(sn.keys().collect::<Vec<_>>(), crm.keys().collect::<Vec<_>>(), "every contact on both sides");
    assert!(sn.len() > 400, "{}", sn.len());
    assert_eq!(sn, calm_sn, "ServiceNow ends as after an undisturbed sync");
    assert_eq!(crm, calm_crm, "CRM ends as after an undisturbed sync");
}
