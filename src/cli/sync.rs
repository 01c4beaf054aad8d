//! `linkrun sync add|list|run|status|reset`: declared syncs (see [`crate::sync`] and
//! `syncs/README.md`). `add` installs a definition (a file, or a built-in one by name) into
//! `$LINKRUN_HOME/syncs/NAME.toml` with its `--set` settings applied; `run` is the extension's
//! "Sync Now".

use std::path::PathBuf;

use std::io::IsTerminal as _;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::home::Home;
use crate::sync::RunFlags;
use crate::sync::def::{self, SyncDef};
use crate::sync::links::SyncStore as _;
use crate::{Error, Result};

/// Sync commands.
#[derive(Debug, Subcommand)]
pub enum SyncCmd {
    /// Install a sync definition: a TOML file (see syncs/README.md), or the name of a built-in
    /// one (`servicenow_contacts`, `zoho_org_leads`), with settings changed by --set.
    Add {
        /// The definition file, or a built-in sync's name.
        file: String,
        /// Change a setting, kept in the installed copy: type, direction, conflict, deletes,
        /// target (the CRM module), SIDE=LINK (a side's connection), SIDE.table|query|module.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Replace an installed sync of the same name (its links and checkpoints are kept).
        #[arg(long)]
        replace: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the installed, local (./syncs/) and built-in syncs.
    List {
        /// Print JSON: an array.
        #[arg(long)]
        json: bool,
    },
    /// Sync now: read what changed on each side since the last run and write it to the other.
    Run {
        /// The sync's name.
        name: String,
        /// Change a setting for this run only (as for `add`).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Read everything, not only what changed since the last run (links still apply: nothing
        /// equal is written).
        #[arg(long)]
        full: bool,
        /// Count what would be written; write nothing, move no checkpoint.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON: `{"sync", "run_id", "objects": {OBJECT: {DIRECTION: COUNTS}}}`.
        #[arg(long)]
        json: bool,
    },
    /// The last runs of a sync with their counts per object and direction, and the records that
    /// failed.
    Status {
        /// The sync's name.
        name: String,
        /// How many runs.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget a sync's links, checkpoints and failures: the next run pairs records by match key
    /// again and reads everything.
    Reset {
        /// The sync's name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a sync command.
pub fn run(home: &Home, cmd: SyncCmd) -> Result<()> {
    match cmd {
        SyncCmd::Add { file, sets, replace, json } => add(home, &file, &parse_sets(&sets)?, replace, json),
        SyncCmd::List { json } => list(home, json),
        SyncCmd::Run { name, sets, full, dry_run, json } => {
            let def = def::find(home, &name, &parse_sets(&sets)?).map_err(|e| Error::Usage(e.to_string()))?;
            // A progress bar on a terminal (records read, per direction); nothing otherwise.
            let bar = (!json && std::io::stderr().is_terminal()).then(|| {
                let b = indicatif::ProgressBar::new_spinner();
                b.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                b
            });
            let progress = |dir: &str, c: &crate::sync::Counts| {
                if let Some(b) = &bar {
                    b.set_message(format!(
                        "{name}: {dir}: read {}, created {}, updated {}, failed {}",
                        c.read, c.created, c.updated, c.failed
                    ));
                }
            };
            let outcome =
                crate::sync::run(home, &def, crate::trigger::CLI_TRIGGER, RunFlags { full, dry_run }, &progress);
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            let report = outcome?;
            if json {
                super::print_json(&report.to_json())?;
            } else {
                let order: Vec<String> = def.directions().into_iter().map(|d| def.direction_name(d)).collect();
                print_counts(&report.objects, &order)?;
                for (d, id, m) in &report.failures {
                    eprintln!("failed ({d}) {id}: {m}");
                }
                eprintln!("run {}", report.run_id);
            }
            let failed = report.failures.len();
            if failed > 0 {
                return Err(Error::Other(format!(
                    "sync `{name}`: some records could not be written (they are retried on the next run): see `linkrun sync status {name}`"
                )));
            }
            Ok(())
        }
        SyncCmd::Status { name, limit, json } => status(home, &name, limit, json),
        SyncCmd::Reset { name, yes, json } => reset(home, &name, yes, json),
    }
}

fn parse_sets(sets: &[String]) -> Result<Vec<(String, String)>> {
    sets.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| Error::Usage(format!("`--set {s}`: write KEY=VALUE, e.g. --set conflict=crm_wins")))
        })
        .collect()
}

fn add(home: &Home, file: &str, sets: &[(String, String)], replace: bool, json: bool) -> Result<()> {
    let usage = |e: def::DefError| Error::Usage(e.to_string());
    let path = PathBuf::from(file);
    let def = if path.is_file() || file.ends_with(".toml") {
        SyncDef::parse(&def::read(&path).map_err(usage)?, file, sets).map_err(usage)?
    } else {
        match def::BUILT_IN.iter().find(|(n, _)| *n == file) {
            Some((n, text)) => SyncDef::parse(text, &format!("the built-in sync `{n}`"), sets).map_err(usage)?,
            None => {
                return Err(Error::Usage(format!(
                    "`{file}` is neither a sync definition file nor a built-in sync ({})",
                    def::BUILT_IN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    };
    let dir = def::installed_dir(home);
    crate::home::create_private_dir(&dir)?;
    let target = dir.join(format!("{}.toml", def.name));
    if target.exists() && !replace {
        return Err(Error::Usage(format!(
            "sync `{}` is installed already: pass --replace to replace it (its links and checkpoints are kept)",
            def.name
        )));
    }
    crate::files::write_atomic(&target, &def.to_toml())
        .map_err(|source| Error::Io { what: format!("cannot write `{}`", target.display()), source })?;
    if json {
        super::print_json(&json!({"name": def.name.as_str(), "file": target.display().to_string()}))?;
    } else {
        outln!("installed sync `{}` ({} <-> {})", def.name, side_text(&def.a), side_text(&def.b));
    }
    Ok(())
}

fn side_text(s: &def::SideDef) -> String {
    format!("{} {} via `{}`", s.name(), s.object(), s.connection)
}

fn list(home: &Home, json: bool) -> Result<()> {
    let all = def::list(home);
    if json {
        let v: Vec<Value> = all
            .iter()
            .map(|(name, origin, d)| match d {
                Ok(d) => json!({
                    "name": name, "origin": origin, "type": d.sync_type.to_string(),
                    "direction": (d.sync_type == def::SyncType::OneWay).then(|| d.direction_name(d.a_to_b)),
                    "sides": [d.a.name(), d.b.name()], "objects": [d.a.object(), d.b.object()],
                    "connections": [d.a.connection, d.b.connection],
                }),
                Err(e) => json!({"name": name, "origin": origin, "error": e.to_string()}),
            })
            .collect();
        return super::print_json(&Value::Array(v));
    }
    for (name, origin, d) in &all {
        match d {
            Ok(d) => {
                let how = match d.sync_type {
                    def::SyncType::OneWay => d.direction_name(d.a_to_b),
                    def::SyncType::BothWays => "both_ways".into(),
                };
                outln!("{name:<28} {origin:<9} {how:<28} {} <-> {}", side_text(&d.a), side_text(&d.b));
            }
            Err(e) => outln!("{name:<28} {origin:<9} (does not load: {e})"),
        }
    }
    Ok(())
}

fn counts_line(dir: &str, c: &Value) -> String {
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    let deleted = if n("deleted") > 0 { format!("  deleted {}", n("deleted")) } else { String::new() };
    format!(
        "{dir:<28} read {:>6}  created {:>6}  updated {:>6}  unchanged {:>6}  conflicts {:>4}  failed {:>4}  api calls {:>5}{deleted}",
        n("read"),
        n("created"),
        n("updated"),
        n("unchanged"),
        n("conflicts"),
        n("failed"),
        n("api_calls")
    )
}

/// The counts per object, the directions in the order they ran.
fn print_counts(objects: &Value, order: &[String]) -> Result<()> {
    for (object, dirs) in objects.as_object().into_iter().flatten() {
        outln!("{object}");
        for d in order {
            if let Some(c) = dirs.get(d) {
                outln!("  {}", counts_line(d, c));
            }
        }
    }
    Ok(())
}

fn status(home: &Home, name: &str, limit: usize, json: bool) -> Result<()> {
    let def = def::find(home, name, &[]).map_err(|e| Error::Usage(e.to_string()))?;
    crate::vault::Vault::open(home)?;
    let store = crate::store::SqliteSync::open(&home.vault_path())?;
    let runs = store.runs(name, limit.max(1))?;
    let mut failed = Vec::new();
    for key in ["a", "b"] {
        let side = if key == "a" { def.a.name() } else { def.b.name() };
        for (id, m) in store.failures(name, &def.links_key(), key)? {
            failed.push(json!({"side": side, "id": id, "message": m}));
        }
    }
    let links = store.link_count(name)?;
    if json {
        let v = json!({
            "sync": name,
            "links": links,
            "failed_records": failed,
            "runs": runs.iter().map(|r| json!({
                "run_id": r.run_id, "status": r.status,
                "started_at": crate::runs::rfc3339(r.started_ms),
                "ended_at": r.ended_ms.map(crate::runs::rfc3339),
                "objects": r.stats["objects"],
                "recent": r.stats.get("recent").cloned().unwrap_or(Value::Null),
            })).collect::<Vec<_>>(),
        });
        return super::print_json(&v);
    }
    outln!("sync `{name}`: {links} linked record pair(s), {} record(s) failing", failed.len());
    for r in &runs {
        outln!("{} {} {}", crate::runs::rfc3339(r.started_ms), r.run_id, r.status);
        for (object, dirs) in r.stats["objects"].as_object().into_iter().flatten() {
            for (d, c) in dirs.as_object().into_iter().flatten() {
                outln!("  {object}: {}", counts_line(d, c));
            }
        }
    }
    // The last records written from side A by the latest run that wrote any (`[recent]`).
    let recent =
        runs.iter().find_map(|r| r.stats["recent"][def.object.as_str()].as_array().filter(|a| !a.is_empty()).cloned());
    if let Some(rows) = recent {
        let labels: Vec<&str> = def.recent.iter().map(|(l, _)| l.as_str()).collect();
        outln!("last {} synced ({}):", def.object, labels.join(", "));
        for row in rows.iter().rev() {
            let cells: Vec<String> = labels
                .iter()
                .map(|l| match &row[*l] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect();
            outln!("  {} ({})", cells.join("  "), row["action"].as_str().unwrap_or(""));
        }
    }
    for f in &failed {
        outln!(
            "failing: {} {}: {}",
            f["side"].as_str().unwrap_or(""),
            f["id"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

fn reset(home: &Home, name: &str, yes: bool, json: bool) -> Result<()> {
    def::find(home, name, &[]).map_err(|e| Error::Usage(e.to_string()))?;
    if !yes
        && !super::confirm(
            &format!("forget every link and checkpoint of sync `{name}` (the next run pairs records by key again)?"),
            format!("resetting sync `{name}` needs confirmation: pass --yes (there is no terminal to ask on)"),
        )?
    {
        eprintln!("kept sync `{name}` as it was");
        return Ok(());
    }
    crate::vault::Vault::open(home)?;
    let n = crate::store::SqliteSync::open(&home.vault_path())?.reset(name)?;
    if json {
        super::print_json(&json!({"sync": name, "links_forgotten": n}))
    } else {
        outln!("sync `{name}`: forgot {n} link(s), its checkpoints and failures");
        Ok(())
    }
}
