//! `linkrun port FILE.dg [-o FILE.rhai]`: writes the Rhai that `linkrun run FILE.dg` runs (one
//! translation, so the two cannot disagree), to standard output or a file.
//!
//! Hard-coded credentials (a `client_secret`, `refresh_token`, access token, API key or password
//! in a literal, as seed-style functions carry) are left out of the Rhai; `port` says where they
//! were and prints the `linkrun connection create` command that keeps them in the vault instead.
//! The message never repeats a secret; a `client_id`, which is not one, is shown.

use std::path::PathBuf;

use clap::Args;

use crate::script::ScriptError;
use crate::script::deluge::DelugeSource;
use crate::{Error, Result};

/// Arguments of `port`.
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The Deluge function (`.dg` or `.deluge`).
    pub file: PathBuf,
    /// Write the Rhai to this file (replaced whole) instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE.rhai")]
    pub output: Option<PathBuf>,
    /// Print `{"rhai", "output", "credentials", "commands"}` as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Translates the file and writes the Rhai.
pub fn run(a: PortArgs) -> Result<()> {
    let text = crate::files::read_text_capped(&a.file, crate::script::MAX_SCRIPT_SIZE).map_err(|e| match e {
        crate::files::ReadError::Io { path, reason } => ScriptError::Unreadable { path, reason },
        source => ScriptError::NotAScript { source },
    })?;
    let name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(out) = &a.output
        && same_file(out, &a.file)
    {
        return Err(Error::Usage(format!(
            "`-o {}` is the Deluge file itself: give the Rhai another name, e.g. -o {}",
            out.display(),
            a.file.with_extension("rhai").display()
        )));
    }
    let d = DelugeSource::translate(&name, &text)?;
    let t = &d.translation;
    let located: Vec<(String, usize, usize)> = t
        .credentials
        .iter()
        .map(|c| {
            let (line, col) = deluge::line_col(&text, c.span.start);
            (c.kind.clone(), line, col)
        })
        .collect();
    let commands = if located.is_empty() { Vec::new() } else { connection_commands(t) };
    if let Some(out) = &a.output {
        crate::files::write_atomic(out, &t.rhai)
            // Worded from the OS error alone: tempfile's message names its temporary file.
            .map_err(|e| {
                let reason = crate::files::io_reason(&e);
                Error::Io {
                    what: format!("cannot write `{}`", out.display()),
                    source: std::io::Error::new(
                        e.kind(),
                        format!("{reason}; check that its folder exists and is writable"),
                    ),
                }
            })?;
    }
    if a.json {
        let creds: Vec<serde_json::Value> = located
            .iter()
            .map(|(kind, line, col)| serde_json::json!({ "kind": kind, "line": line, "column": col }))
            .collect();
        let doc = serde_json::json!({
            "rhai": if a.output.is_some() { serde_json::Value::Null } else { t.rhai.clone().into() },
            "output": a.output.as_ref().map(|p| p.display().to_string()),
            "credentials": creds,
            "commands": commands,
        });
        return super::print_json(&doc);
    }
    if !located.is_empty() {
        let list: Vec<String> =
            located.iter().map(|(kind, line, col)| format!("{kind} at line {line}, column {col}")).collect();
        eprintln!(
            "port: left {} hard-coded credential{} of `{name}` out of the Rhai ({}); keep {} in a connection instead:",
            located.len(),
            if located.len() == 1 { "" } else { "s" },
            list.join(", "),
            if located.len() == 1 { "it" } else { "them" },
        );
        for c in &commands {
            eprintln!("  {c}");
        }
        eprintln!("and name that connection in the invokeurl (`connection: \"LINK\"`) instead of the token.");
    }
    match &a.output {
        Some(out) => eprintln!("port: wrote {} ({} lines of Rhai)", out.display(), t.rhai.lines().count()),
        None => outln!("{}", t.rhai.trim_end()),
    }
    Ok(())
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// The commands that hold the credentials in a connection: for Zoho hosts the `zoho_crm` (or
/// `zoho_desk`) service in the host's data center, else a placeholder service.
fn connection_commands(t: &deluge::Translation) -> Vec<String> {
    let zoho = t.hosts.iter().find(|h| h.contains("zoho"));
    let (service, dc) = match zoho {
        Some(h) => {
            let service = if h.starts_with("desk.") { "zoho_desk" } else { "zoho_crm" };
            (service.to_string(), Some(zoho_dc(h)))
        }
        None => ("SERVICE".to_string(), None),
    };
    let link = match &dc {
        Some(dc) => format!("{service}_{dc}"),
        None => "LINK".to_string(),
    };
    let mut create = format!("linkrun connection create {link} --service {service}");
    if let Some(dc) = &dc {
        create.push_str(&format!(" --dc {dc}"));
    }
    let kinds: Vec<&str> = t.credentials.iter().map(|c| c.kind.as_str()).collect();
    if dc.is_some() {
        match &t.client_id {
            Some(id) => create.push_str(&format!(" --param client_id={id}")),
            None => create.push_str(" --param client_id=CLIENT_ID"),
        }
        create.push_str(" --param client_secret   # asks for the secret, without echo");
        let mut out = vec![create];
        out.push(format!(
            "linkrun connection authorize {link} --code CODE   # a Self Client code; linkrun keeps and refreshes the tokens"
        ));
        return out;
    }
    for kind in kinds.iter().collect::<std::collections::BTreeSet<_>>() {
        create.push_str(&format!(" --param {kind}"));
    }
    create.push_str("   # asks for each value, without echo");
    vec![create]
}

/// The Zoho data center of a host by its domain (`accounts.zoho.eu` → `eu`).
fn zoho_dc(host: &str) -> String {
    let dcs = [
        (".com.au", "au"),
        (".com.cn", "cn"),
        (".eu", "eu"),
        (".in", "in"),
        (".jp", "jp"),
        (".ca", "ca"),
        (".sa", "sa"),
    ];
    dcs.iter().find(|(suffix, _)| host.ends_with(suffix)).map_or("us", |(_, dc)| dc).to_string()
}
