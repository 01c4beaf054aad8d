//! `linkrun demo`: the main job in one command, with no set-up and no internet. It starts the
//! sandbox in-process on a free port, uses a throwaway home (or `--home`), creates the
//! connections, authorises them through the real OAuth flow against the sandbox (self-client
//! grant codes exchanged with `connection authorize --code`), runs the example scripts with the
//! real `linkrun` binary, and prints an account of each step (one JSON summary with `--json`).

use std::path::PathBuf;
use std::process::Command;

use clap::Args;
use serde_json::{Value, json};

use crate::{Error, Result};
use linkrun_sandbox::server::{Options, Sandbox};

const ORG_SYNC: &str = include_str!("../../scripts/zoho_org_sync.rhai");
const VISITOR: &str = include_str!("../../scripts/visitor_to_crm.rhai");
const VISITOR_DG: &str = include_str!("../../scripts/visitor_to_crm.dg");
const CALL_TO_CASE: &str = include_str!("../../scripts/call_to_case.rhai");
const LEAD_TO_ORG_B: &str = include_str!("../../scripts/lead_to_org_b.rhai");
const ALERT_LOG: &str = include_str!("../../scripts/alert_log.rhai");
const LEAD_TRIGGER: &str = include_str!("../../triggers/lead_to_org_b.toml");
const CALL_TRIGGER: &str = include_str!("../../triggers/call_events.toml");
const SYNC_TRIGGER: &str = include_str!("../../triggers/servicenow_sync.toml");

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's vault and scripts in this folder (default: a throwaway folder).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print one machine-readable summary instead of the account.
    #[arg(long)]
    pub json: bool,
}

struct Demo {
    exe: PathBuf,
    home: PathBuf,
    base: String,
    json: bool,
    steps: Vec<Value>,
    ok: bool,
}

impl Demo {
    fn say(&self, text: &str) {
        if !self.json {
            // A closed stdout (`linkrun demo | head`) must not panic: the demo goes on quietly.
            let _ = super::write_out(format_args!("{text}"));
        }
    }

    /// Runs `linkrun ARGS` against the demo home and sandbox.
    fn linkrun(&self, args: &[&str]) -> Result<(bool, String, String)> {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args).env("LINKRUN_HOME", &self.home).env("LINKRUN_SANDBOX_URL", &self.base);
        let out =
            cmd.output().map_err(|source| Error::Io { what: "cannot run linkrun for the demo".into(), source })?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    fn step(&mut self, name: &str, args: &[&str]) -> Result<Option<Value>> {
        let (ok, stdout, stderr) = self.linkrun(args)?;
        let value: Option<Value> = serde_json::from_str(stdout.trim()).ok();
        if !ok {
            self.ok = false;
        }
        self.steps.push(json!({
            "step": name,
            "ok": ok,
            "result": value.clone().unwrap_or(Value::Null),
            "error": if ok { Value::Null } else { Value::String(stderr.lines().last().unwrap_or_default().to_string()) },
        }));
        if !ok {
            self.say(&format!("  ! {name} failed: {}", stderr.trim()));
        }
        Ok(value)
    }

    fn script(&self, name: &str, text: &str) -> Result<String> {
        let dir = self.home.join("scripts");
        std::fs::create_dir_all(&dir)
            .map_err(|source| Error::Io { what: format!("cannot create the folder `{}`", dir.display()), source })?;
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|source| Error::Io { what: format!("cannot write the script `{}`", path.display()), source })?;
        Ok(path.display().to_string())
    }
}

/// A `linkrun serve` child of the demo, stopped when dropped.
struct ServeChild(std::process::Child);

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Demo {
    /// Step 6: triggers installed, `linkrun serve` started (the same binary, as a child, with
    /// the demo's home), the sandbox's CRM workflow webhook and phone events pointed at it; a
    /// lead created in Org A, then a call. Returns what happened, with the times.
    fn events(&mut self, sandbox: &Sandbox) -> Result<Value> {
        self.say("6. linkrun serve: the same integrations, started by events instead of by hand");
        self.script("lead_to_org_b.rhai", LEAD_TO_ORG_B)?;
        self.script("alert_log.rhai", ALERT_LOG)?;
        let dir = self.home.join("demo-triggers");
        std::fs::create_dir_all(&dir)
            .map_err(|source| Error::Io { what: format!("cannot create `{}`", dir.display()), source })?;
        let mut keys = Vec::new();
        // The shipped schedule runs every 15 minutes; the demo's copy every 2 seconds, to be seen.
        let sync_trigger = SYNC_TRIGGER.replace("every = \"15m\"", "every = \"2s\"");
        for (name, text) in
            [("lead_to_org_b", LEAD_TRIGGER), ("call_events", CALL_TRIGGER), ("servicenow_sync", sync_trigger.as_str())]
        {
            let file = dir.join(format!("{name}.toml"));
            std::fs::write(&file, text)
                .map_err(|source| Error::Io { what: format!("cannot write `{}`", file.display()), source })?;
            let added = self.step(
                &format!("trigger add {name}"),
                &["trigger", "add", &file.display().to_string(), "--json", "--replace"],
            )?;
            keys.push(added.and_then(|v| v["key"].as_str().map(str::to_string)).unwrap_or_default());
        }
        let mut cmd = Command::new(&self.exe);
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--no-local-triggers"])
            .env("LINKRUN_HOME", &self.home)
            .env("LINKRUN_SANDBOX_URL", &self.base)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child =
            ServeChild(cmd.spawn().map_err(|source| Error::Io { what: "cannot start linkrun serve".into(), source })?);
        let stderr = child.0.stderr.take();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let Some(err) = stderr else { return };
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(err).lines().map_while(std::result::Result::ok) {
                if let Some(addr) = line.split("listening: ").nth(1).and_then(|r| r.split_whitespace().next())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.to_string());
                }
            }
        });
        let serve = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .map_err(|_| Error::Other("linkrun serve did not start for the demo".into()))?;
        self.say(&format!(
            "   serve at {serve}: webhooks /hooks/zoho/lead (async, key in the URL) and /hooks/phone/events (sync), schedule servicenow_sync"
        ));
        let lead_key = keys.first().cloned().unwrap_or_default();
        let call_key = keys.get(1).cloned().unwrap_or_default();
        let rule = serde_json::from_value(json!({
            "org": "us", "module": "Leads", "url": format!("{serve}/hooks/zoho/lead?key={lead_key}"),
        }))
        .map_err(|e| Error::Other(e.to_string()))?;
        sandbox.events.add_crm(rule);
        let target = serde_json::from_value(json!({
            "url": format!("{serve}/hooks/phone/events"), "headers": {"X-Linkrun-Key": call_key},
        }))
        .map_err(|e| Error::Other(e.to_string()))?;
        sandbox.events.set_calls(target);

        // A lead created in Org A: the workflow webhook fires, serve upserts it into Org B.
        let email = "grace.events@example.com";
        let create = self.script(
            "create_lead.rhai",
            &format!(
                "invoke_url(#{{ url: \"/crm/v7/Leads\", type: \"POST\", connection: \"crm_a\", body: #{{ data: [#{{ Last_Name: \"Hopper\", First_Name: \"Grace\", Email: \"{email}\", Company: \"Navy\" }}] }} }})"
            ),
        )?;
        let started = std::time::Instant::now();
        self.step("create a lead in Org A", &["run", &create, "--json"])?;
        let mut reached = None;
        while started.elapsed() < std::time::Duration::from_secs(20) {
            if sandbox.crm.find_by_email("in", "Leads", email).is_some() {
                reached = Some(started.elapsed().as_millis() as u64);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        match reached {
            Some(ms) => self.say(&format!(
                "   lead {email} created in Org A reached Org B through the workflow webhook in {ms} ms"
            )),
            None => {
                self.ok = false;
                self.say(&format!("  ! lead {email} did not reach Org B"));
            }
        }
        // A call: ringing pops the contact, answering opens a case with the recording.
        let phone = sandbox
            .servicenow
            .records("customer_contact")
            .into_iter()
            .find_map(|c| {
                c["phone"].as_str().filter(|p| p.chars().filter(char::is_ascii_digit).count() >= 10).map(str::to_string)
            })
            .unwrap_or_default();
        let runtime = crate::http::runtime()?;
        let call = runtime
            .block_on(sandbox.events.call(&format!("+1 {phone}"), "+1 555 0100", 42, &self.base))
            .map_err(Error::Other)?;
        let pop: Value =
            call["events"][0]["answer"].as_str().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
        let case: Value =
            call["events"][1]["answer"].as_str().and_then(|a| serde_json::from_str(a).ok()).unwrap_or_default();
        let pop_ms = call["events"][0]["ms"].as_f64().unwrap_or_default();
        if pop["contact"]["sys_id"].is_string() && case["case"]["number"].is_string() {
            self.say(&format!(
                "   call from +1 {phone}: ringing popped {} in {pop_ms:.0} ms; answered opened case {} with the recording",
                pop["contact"]["name"].as_str().unwrap_or("?"),
                case["case"]["number"].as_str().unwrap_or("?")
            ));
        } else {
            self.ok = false;
            self.say(&format!("  ! the call was not handled: {call}"));
        }
        // The schedule: the ServiceNow sync runs by itself.
        let mut scheduled = None;
        let waited = std::time::Instant::now();
        while waited.elapsed() < std::time::Duration::from_secs(30) {
            let (_, out, _) = self.linkrun(&[
                "runs",
                "list",
                "--trigger",
                "servicenow_sync",
                "--status",
                "ok",
                "--json",
                "--limit",
                "1",
            ])?;
            if let Some(r) = serde_json::from_str::<Value>(&out).ok().and_then(|v| v.get(0).cloned()) {
                scheduled = Some(r);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        match &scheduled {
            Some(r) => self.say(&format!(
                "   schedule servicenow_sync (every 2 s here, 15 min as shipped): run {} ok in {} ms",
                r["id"].as_str().unwrap_or("?"),
                r["duration_ms"]
            )),
            None => {
                self.ok = false;
                self.say("  ! the scheduled ServiceNow sync did not run");
            }
        }
        drop(child);
        let runs = self.step("runs list", &["runs", "list", "--json", "--limit", "20"])?.unwrap_or_default();
        Ok(
            json!({"lead_ms": reached, "lead_email": email, "call": call, "screen_pop": pop, "case": case, "scheduled": scheduled, "runs": runs}),
        )
    }
}

/// `lead: success, contact: already exists, ...` from visitor_to_crm's `blocks`.
fn outcome_line(v: &Value) -> String {
    v["blocks"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| format!("{}: {}", i["block"].as_str().unwrap_or("?"), i["outcome"].as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

/// The ids visitor_to_crm gives, for the account.
fn ids_line(v: &Value) -> String {
    ["lead_id", "contact_id", "deal_id", "ticket_id", "ticket_number"]
        .iter()
        .filter_map(|k| v[*k].as_str().map(|id| format!("{k} {id}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn sync_line(v: &Value) -> String {
    format!("read {}, inserted {}, updated {}, failed {}", v["read"], v["inserted"], v["updated"], v["failed"])
}

fn sn_changes(v: &Value) -> u64 {
    let n = |x: &Value| x.as_u64().unwrap_or(0);
    ["servicenow_to_crm", "crm_to_servicenow"]
        .iter()
        .map(|d| n(&v["objects"]["contacts"][d]["created"]) + n(&v["objects"]["contacts"][d]["updated"]))
        .sum()
}

/// One line of a `sync run --json` answer's counts for contacts.
fn sn_line(v: &Value) -> String {
    let c = &v["objects"]["contacts"];
    let dir = |d: &str| {
        format!(
            "read {}, created {}, updated {}, conflicts {}, failed {}, {} API calls",
            c[d]["read"], c[d]["created"], c[d]["updated"], c[d]["conflicts"], c[d]["failed"], c[d]["api_calls"]
        )
    };
    format!("ServiceNow to CRM: {}; CRM to ServiceNow: {}", dir("servicenow_to_crm"), dir("crm_to_servicenow"))
}

/// Runs the demo.
pub fn run(a: DemoArgs) -> Result<()> {
    let exe = std::env::current_exe()
        .map_err(|source| Error::Io { what: "cannot find the linkrun binary".into(), source })?;
    let throwaway = match &a.home {
        Some(_) => None,
        None => Some(
            tempfile::tempdir()
                .map_err(|source| Error::Io { what: "cannot create a folder for the demo".into(), source })?,
        ),
    };
    let home: PathBuf =
        a.home.clone().unwrap_or_else(|| throwaway.as_ref().map(|t| t.path().to_path_buf()).unwrap_or_default());
    let sandbox = Sandbox::new(&Options::default()).map_err(Error::Other)?;
    let runtime = crate::http::server_runtime(2)?;
    let (addr, _server) = runtime
        .block_on(sandbox.serve(0))
        .map_err(|source| Error::Io { what: "cannot start the sandbox".into(), source })?;
    let base = format!("http://{addr}");
    let mut d = Demo { exe, home: home.clone(), base: base.clone(), json: a.json, steps: Vec::new(), ok: true };
    d.say(&format!("linkrun demo: sandbox of Zoho and ServiceNow at {base}, home {}", home.display()));
    if throwaway.is_some() {
        eprintln!(
            "linkrun demo: its home {} is a temporary folder, removed at the end; to keep the vault and scripts, run `linkrun demo --home DIR`",
            home.display()
        );
    }

    // 1. Connections: CRM in two orgs (two data centers), Desk and Campaigns in Org A.
    let org_a = sandbox.orgs[0].clone();
    let org_b = sandbox.orgs[1].clone();
    let id_a = format!("client_id={}", org_a.client_id);
    let secret_a = format!("client_secret={}", org_a.client_secret);
    let id_b = format!("client_id={}", org_b.client_id);
    let secret_b = format!("client_secret={}", org_b.client_secret);
    let org_id = format!("orgId={}", org_a.desk_org_id);
    let create: [(&str, &str, Vec<&str>); 4] = [
        ("crm_a", "zoho_crm", vec![&id_a, &secret_a]),
        ("crm_b", "zoho_crm", vec![&id_b, &secret_b]),
        ("desk_a", "zoho_desk", vec![&id_a, &secret_a, &org_id]),
        ("campaigns_a", "zoho_campaigns", vec![&id_a, &secret_a]),
    ];
    d.say("1. create connections (data center `sandbox`):");
    for (link, service, params) in &create {
        let mut args = vec!["connection", "create", link, "--service", service, "--dc", "sandbox", "--json"];
        for p in params {
            args.push("--param");
            args.push(p);
        }
        d.step(&format!("create {link}"), &args)?;
        d.say(&format!("   {link} ({service})"));
    }

    // 2. Authorise each through the OAuth flow: a self-client grant code, exchanged for tokens.
    d.say("2. authorise them (self-client grant codes exchanged at the sandbox's /oauth/v2/token):");
    let scopes: [(&str, &str, &[&str]); 4] = [
        ("crm_a", &org_a.client_id, &["ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"]),
        ("crm_b", &org_b.client_id, &["ZohoCRM.modules.ALL", "ZohoCRM.settings.READ"]),
        ("desk_a", &org_a.client_id, &["Desk.tickets.ALL", "Desk.contacts.CREATE", "Desk.basic.READ"]),
        ("campaigns_a", &org_a.client_id, &["ZohoCampaigns.contact.UPDATE"]),
    ];
    for (link, client, s) in scopes {
        let code = sandbox.provider.mint_self_client_code(client, s);
        d.step(&format!("authorize {link}"), &["connection", "authorize", link, "--code", &code])?;
        d.say(&format!("   {link}: connected"));
    }

    // 3. Org sync, twice: the second run copies nothing new; then one lead changes.
    let sync = d.script("zoho_org_sync.rhai", ORG_SYNC)?;
    let sync_args = ["run", sync.as_str(), "--arg", "from=crm_a", "--arg", "to=crm_b", "--json"];
    d.say(
        "3. scripts/zoho_org_sync.rhai: leads of Org A (us) into Org B (in), a page of 200 at a time (invoke_pages, the page_token paging of service zoho_crm), upsert on Email",
    );
    let first = d.step("zoho_org_sync (first run)", &sync_args)?.unwrap_or_default();
    d.say(&format!("   first run:  {}", sync_line(&first)));
    let second = d.step("zoho_org_sync (second run)", &sync_args)?.unwrap_or_default();
    d.say(&format!("   second run: {}", sync_line(&second)));
    d.say(
        "   (incremental: the second run asks Org A only for leads modified after the newest Modified_Time the first run copied, a checkpoint kept with state_set, so it reads nothing again)",
    );
    if second["read"] != 0 {
        d.ok = false;
    }

    // 4. A chat visitor into CRM, Desk and Campaigns; then again with Campaigns revoked; then the
    //    first visitor again through the Deluge version (the CRM has the lead and contact now).
    let visitor = d.script("visitor_to_crm.rhai", VISITOR)?;
    let visitor_dg = d.script("visitor_to_crm.dg", VISITOR_DG)?;
    let org_arg = format!("orgId={}", org_a.desk_org_id);
    let department = format!("department={}", org_a.desk_department_id);
    let listkey = format!("listkey={}", org_a.campaigns_listkey);
    let visitor_args = |script: &str, name: &str, email: &str| -> Vec<String> {
        let mut args = vec!["run".to_string(), script.to_string()];
        for a in [
            format!("name={name}"),
            format!("email={email}"),
            "phone=+1 555 0100".to_string(),
            "company=Analytical Engines Ltd".to_string(),
            "message=Could you send pricing for 20 seats?".to_string(),
            org_arg.clone(),
            department.clone(),
            "assignee=".to_string(),
            listkey.clone(),
            "crm=crm_a".to_string(),
            "desk=desk_a".to_string(),
            "campaigns=campaigns_a".to_string(),
        ] {
            args.push("--arg".to_string());
            args.push(a);
        }
        args.push("--json".to_string());
        args
    };
    let run_visitor = |d: &mut Demo, step: &str, args: Vec<String>| -> Result<Value> {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(d.step(step, &refs)?.unwrap_or_default())
    };
    d.say("4. scripts/visitor_to_crm.rhai: a chat visitor becomes a lead, contact, deal, ticket and list member");
    let v1 = run_visitor(&mut d, "visitor_to_crm", visitor_args(&visitor, "Ada Lovelace", "ada.lovelace@example.com"))?;
    d.say(&format!("   {}", outcome_line(&v1)));
    d.say(&format!("   ({})", ids_line(&v1)));
    d.step("revoke campaigns_a", &["connection", "revoke", "campaigns_a"])?;
    d.say("   connection campaigns_a revoked; a second visitor:");
    let v2 = run_visitor(
        &mut d,
        "visitor_to_crm (campaigns revoked)",
        visitor_args(&visitor, "Grace Hopper", "grace.hopper@example.com"),
    )?;
    d.say(&format!("   {}", outcome_line(&v2)));
    d.say("   scripts/visitor_to_crm.dg, the same integration in Deluge, for the first visitor again:");
    let v3 = run_visitor(
        &mut d,
        "visitor_to_crm.dg (returning visitor)",
        visitor_args(&visitor_dg, "Ada Lovelace", "ada.lovelace@example.com"),
    )?;
    d.say(&format!("   {}", outcome_line(&v3)));
    // The first visitor is new everywhere; the Deluge run finds the lead and contact it made.
    if !outcome_line(&v1).split(", ").all(|p| p.ends_with(": success"))
        || !outcome_line(&v3).starts_with("lead: already exists, contact: already exists")
    {
        d.ok = false;
    }

    // 5. ServiceNow: contacts both ways with Zoho CRM, then an incoming call becomes a case.
    d.say("5. ServiceNow (instance `sandbox`), authorised with the password grant:");
    let sn = sandbox.sn.clone();
    let sn_params = [
        format!("client_id={}", sn.client_id),
        format!("client_secret={}", sn.client_secret),
        format!("username={}", sn.username),
        format!("password={}", sn.password),
    ];
    let mut args = vec!["connection", "create", "sn", "--service", "servicenow", "--instance", "sandbox", "--json"];
    for p in &sn_params {
        args.push("--param");
        args.push(p);
    }
    d.step("create sn", &args)?;
    d.step("authorize sn", &["connection", "authorize", "sn"])?;
    d.say("   sn: connected");
    let sn_args = ["sync", "run", "servicenow_contacts", "--set", "conflict=crm_wins", "--json"];
    d.say(
        "   sync servicenow_contacts (built in, syncs/servicenow_contacts.toml): contacts both ways, paired by e-mail, CRM wins conflicts (--set conflict=crm_wins)",
    );
    let sn1 = d.step("sync run servicenow_contacts (first run)", &sn_args)?.unwrap_or_default();
    d.say(&format!("   first run:  {}", sn_line(&sn1)));
    let sn2 = d.step("sync run servicenow_contacts (second run)", &sn_args)?.unwrap_or_default();
    d.say(&format!("   second run: {}", sn_line(&sn2)));
    d.say(&format!(
        "   (incremental: each side is read from its checkpoint; the {} records the second run reads are the ones the first run wrote, plus those changed in that same second, and each is recognised by the hash kept in its link, so nothing is written back)",
        sn2["objects"]["contacts"]["servicenow_to_crm"]["read"].as_u64().unwrap_or(0)
            + sn2["objects"]["contacts"]["crm_to_servicenow"]["read"].as_u64().unwrap_or(0)
    ));
    if sn_changes(&sn2) != 0 {
        d.ok = false;
    }
    let call = d.script("call_to_case.rhai", CALL_TO_CASE)?;
    let known = sandbox
        .servicenow
        .records("customer_contact")
        .into_iter()
        .find_map(|c| {
            c["phone"].as_str().filter(|p| p.chars().filter(char::is_ascii_digit).count() >= 7).map(str::to_string)
        })
        .unwrap_or_default();
    let caller = format!("phone=+1 {known}");
    d.say("   scripts/call_to_case.rhai: an incoming call opens a case (screen pop on the caller's number)");
    let c1 = d
        .step(
            "call_to_case (known caller)",
            &[
                "run",
                call.as_str(),
                "--arg",
                &caller,
                "--arg",
                "recording=https://recordings.example.com/calls/1001.mp3",
                "--json",
            ],
        )?
        .unwrap_or_default();
    d.say(&format!("   {}", c1["message"].as_str().unwrap_or("?")));
    let c2 = d
        .step(
            "call_to_case (unknown caller)",
            &[
                "run",
                call.as_str(),
                "--arg",
                "phone=+44 20 7946 0000",
                "--arg",
                "recording=https://recordings.example.com/calls/1002.mp3",
                "--json",
            ],
        )?
        .unwrap_or_default();
    d.say(&format!("   {}", c2["message"].as_str().unwrap_or("?")));

    // 6. Event-driven: `linkrun serve` takes the sandbox's events.
    let events = d.events(&sandbox)?;

    // 7. What the sandbox holds now.
    let opened: Vec<String> =
        [&c1, &c2].iter().filter_map(|c| c["case"]["sys_id"].as_str().map(str::to_string)).collect();
    let call_cases: Vec<Value> = sandbox
        .servicenow
        .records("sn_customerservice_case")
        .into_iter()
        .filter(|c| c["sys_id"].as_str().is_some_and(|id| opened.iter().any(|o| o == id)))
        .map(|c| {
            json!({"number": c["number"], "contact": c["contact"], "contact_type": c["contact_type"],
                   "u_call_recording_url": c["u_call_recording_url"]})
        })
        .collect();
    let state = json!({
        "org_a_leads": sandbox.crm.count("us", "Leads"),
        "org_b_leads": sandbox.crm.count("in", "Leads"),
        "org_a_contacts": sandbox.crm.count("us", "Contacts"),
        "org_a_deals": sandbox.crm.count("us", "Deals"),
        "org_a_tickets": sandbox.desk.tickets("us").len(),
        "org_a_list_members": sandbox.campaigns.members("us", &org_a.campaigns_listkey).len(),
        "servicenow_contacts": sandbox.servicenow.count("customer_contact"),
        "call_cases": call_cases,
    });
    d.say(&format!(
        "7. sandbox now: Org A {} leads and {} contacts, Org B {} leads, {} ticket(s), {} list member(s); ServiceNow {} contacts, {} case(s) opened from calls",
        state["org_a_leads"],
        state["org_a_contacts"],
        state["org_b_leads"],
        state["org_a_tickets"],
        state["org_a_list_members"],
        state["servicenow_contacts"],
        state["call_cases"].as_array().map(|a| a.len()).unwrap_or(0)
    ));
    if a.json {
        let summary = json!({
            "ok": d.ok,
            "sandbox": base,
            "home": if throwaway.is_some() { Value::Null } else { Value::String(home.display().to_string()) },
            "scripts": [
                {"script": "zoho_org_sync.rhai", "runs": [first, second]},
                {"script": "visitor_to_crm.rhai", "runs": [v1, v2]},
                {"sync": "servicenow_contacts", "runs": [sn1, sn2]},
                {"script": "call_to_case.rhai", "runs": [c1, c2]},
                {"script": "visitor_to_crm.dg", "runs": [v3]},
            ],
            "events": events,
            "steps": d.steps,
            "sandbox_state": state,
        });
        super::print_json(&summary)?;
    }
    drop(runtime);
    if d.ok { Ok(()) } else { Err(Error::DemoFailed) }
}
