//! `linkrun state list|clear`: the values scripts keep with `state_set`.

use clap::Subcommand;
use serde_json::json;

use crate::home::Home;
use crate::script::state::scope_key;
use crate::vault::Vault;
use crate::{Error, Result};

/// State commands.
#[derive(Debug, Subcommand)]
pub enum StateCmd {
    /// List every stored value: script (its canonical path), key, last write, value.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove the values of a script (all, or one key), e.g. to make a sync start over.
    Clear {
        /// The script, by its path (or as `state list` shows it, for a script moved or deleted).
        script: std::path::PathBuf,
        /// Only this key.
        key: Option<String>,
    },
}

/// Runs a state command.
pub fn run(home: &Home, cmd: StateCmd) -> Result<()> {
    match cmd {
        StateCmd::List { json } => {
            let entries = if Vault::exists(home) { Vault::open(home)?.state_list()? } else { Vec::new() };
            if json {
                let items: Vec<_> = entries
                    .iter()
                    .map(|e| {
                        let value: serde_json::Value = serde_json::from_str(&e.value).unwrap_or(serde_json::Value::Null);
                        json!({"script": e.script, "key": e.key, "value": value, "updated_at": super::connection::iso_time(e.updated_at)})
                    })
                    .collect();
                return super::print_json(&json!(items));
            }
            if entries.is_empty() {
                eprintln!("no script state stored: scripts store values with `state_set(key, value)`");
                return Ok(());
            }
            let sw = entries.iter().map(|e| e.script.chars().count()).max().unwrap_or(0).max(6);
            let kw = entries.iter().map(|e| e.key.chars().count()).max().unwrap_or(0).max(3);
            outln!("{:sw$}  {:kw$}  {:20}  VALUE", "SCRIPT", "KEY", "UPDATED");
            for e in &entries {
                outln!(
                    "{:sw$}  {:kw$}  {:20}  {}",
                    e.script,
                    e.key,
                    super::connection::iso_time(e.updated_at),
                    preview(&e.value)
                );
            }
            Ok(())
        }
        StateCmd::Clear { script, key } => {
            let scope = scope_key(&script);
            let removed = if Vault::exists(home) {
                let mut v = Vault::open(home)?;
                let mut n = v.state_clear(&scope, key.as_deref())?;
                if n == 0 {
                    // The name as given (a legacy file-stem scope, or a path shown by `state list`).
                    n = v.state_clear(&script.to_string_lossy(), key.as_deref())?;
                }
                n
            } else {
                0
            };
            if removed == 0 {
                let what = match &key {
                    Some(k) => format!("no key `{k}` stored for script `{scope}`"),
                    None => format!("no state stored for script `{scope}`"),
                };
                return Err(Error::Usage(format!("{what}: see what is stored with `linkrun state list`")));
            }
            eprintln!("removed {removed} value{} of `{scope}`", if removed == 1 { "" } else { "s" });
            Ok(())
        }
    }
}

/// A value cut to one short line.
fn preview(text: &str) -> String {
    const MAX: usize = 60;
    let one_line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if one_line.chars().count() <= MAX {
        one_line
    } else {
        format!("{}...", one_line.chars().take(MAX - 3).collect::<String>())
    }
}
