//! `linkrun trigger add|list|show|delete|rotate`: the triggers `linkrun serve` runs (see
//! [`crate::trigger`] and `triggers/README.md`). Installed triggers live in
//! `$LINKRUN_HOME/triggers/NAME.toml`; their secrets (a webhook key, an HMAC secret, a Basic
//! password) are sealed in the vault and never printed again after `add` or `rotate` shows a
//! new key once.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Value, json};

use crate::home::Home;
use crate::serve::{fields, new_key, read_secret_env, secret_owner};
use crate::trigger::{self, AuthKind, Kind, Origin, Trigger};
use crate::vault::Vault;
use crate::{Error, Result};

/// Trigger commands.
#[derive(Debug, Subcommand)]
pub enum TriggerCmd {
    /// Install a trigger file (its script path made absolute; its secrets sealed). Key auth
    /// prints the new webhook key once.
    Add {
        /// The trigger file (TOML; see triggers/README.md).
        file: PathBuf,
        /// Replace an installed trigger of the same name (its key is kept).
        #[arg(long)]
        replace: bool,
        /// Print JSON: `{"name", "kind", "path", "key"}` (`key` only for key auth, only now).
        #[arg(long)]
        json: bool,
    },
    /// List the installed triggers and those of ./triggers/.
    List {
        /// Print JSON: an array of triggers.
        #[arg(long)]
        json: bool,
    },
    /// Show one trigger (its secrets masked).
    Show {
        /// The trigger's name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an installed trigger and its sealed secrets.
    Delete {
        /// The trigger's name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a new webhook key (key auth; printed once), or read an HMAC secret or Basic
    /// password again from its variable. A running serve uses it from its next start.
    Rotate {
        /// The trigger's name.
        name: String,
        /// Print JSON: `{"name", "key"}`.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a trigger command.
pub fn run(home: &Home, cmd: TriggerCmd) -> Result<()> {
    match cmd {
        TriggerCmd::Add { file, replace, json } => add(home, &file, replace, json),
        TriggerCmd::List { json } => list(home, json),
        TriggerCmd::Show { name, json } => show(home, &name, json),
        TriggerCmd::Delete { name, yes, json } => delete(home, &name, yes, json),
        TriggerCmd::Rotate { name, json } => rotate(home, &name, json),
    }
}

fn local_dir() -> Option<PathBuf> {
    std::env::current_dir().ok().map(|d| d.join("triggers"))
}

fn usage(e: trigger::TriggerError) -> Error {
    Error::Usage(e.to_string())
}

fn installed_file(home: &Home, name: &str) -> PathBuf {
    trigger::installed_dir(home).join(format!("{name}.toml"))
}

/// The installed trigger `name`, or a usage error saying what there is.
fn installed(home: &Home, name: &str) -> Result<Trigger> {
    let file = installed_file(home, name);
    if crate::link_name::LinkName::parse(name).is_err() || !file.is_file() {
        let local = local_dir().map(|d| d.join(format!("{name}.toml"))).filter(|f| f.is_file());
        return Err(Error::Usage(match local {
            Some(f) => {
                format!("trigger `{name}` is not installed; it is read from {} (edit or remove that file)", f.display())
            }
            None => format!("there is no trigger `{name}`: see `linkrun trigger list`"),
        }));
    }
    Trigger::load(&file, Origin::Installed).map_err(usage)
}

fn add(home: &Home, file: &Path, replace: bool, json: bool) -> Result<()> {
    let text = crate::files::read_text_capped(file, trigger::MAX_TRIGGER_FILE_SIZE)
        .map_err(|e| Error::Usage(format!("cannot read the trigger file: {e}; check the path")))?;
    let t = Trigger::parse(&text, file, Origin::Installed).map_err(usage)?;
    if let Some(sync) = t.sync() {
        crate::sync::def::find(home, sync, &[])
            .map_err(|e| Error::Usage(format!("{}: `sync = \"{sync}\"`: {e}", file.display())))?;
    } else if !t.script.is_file() {
        return Err(Error::Usage(format!(
            "{}: the script `{}` does not exist: fix `script` (a path relative to the trigger file)",
            file.display(),
            t.script.display()
        )));
    }
    if let Some(trigger::OnFailure::Script(p)) = &t.on_failure
        && !p.is_file()
    {
        return Err(Error::Usage(format!(
            "{}: the `on_failure` script `{}` does not exist: fix the path",
            file.display(),
            p.display()
        )));
    }
    let target = installed_file(home, &t.name);
    if target.is_file() && !replace {
        return Err(Error::Usage(format!(
            "trigger `{}` is already installed ({}): pass --replace to replace it",
            t.name,
            target.display()
        )));
    }
    let (others, _) = trigger::load_all(home, None).map_err(usage)?;
    let mut all: Vec<Trigger> = others.into_iter().filter(|o| o.name != t.name).collect();
    all.push(t.clone());
    trigger::check_paths(&all).map_err(usage)?;
    // Secrets first: an error here (a variable not set) installs nothing.
    let mut vault = Vault::open(home)?;
    let owner = secret_owner(&t.name);
    let mut shown_key: Option<SecretString> = None;
    let auth = t.webhook().map(|w| w.auth);
    let mut sealed: Vec<(&str, SecretString)> = Vec::new();
    if let Some(w) = t.webhook() {
        match w.auth {
            AuthKind::Key => {
                let keep = replace.then(|| vault.secret_get(&owner, fields::KEY)).transpose()?.flatten();
                if keep.is_none() {
                    let k = new_key()?;
                    shown_key = Some(k.clone());
                    sealed.push((fields::KEY, k));
                }
            }
            AuthKind::HmacSha256 => {
                let var = w.secret_env.clone().unwrap_or_default();
                sealed.push((
                    fields::HMAC,
                    read_secret_env(&var).map_err(|m| Error::Usage(format!("{}: {m}", file.display())))?,
                ));
            }
            AuthKind::Basic => {
                let var = w.basic.as_ref().map(|(_, p)| p.clone()).unwrap_or_default();
                sealed.push((
                    fields::BASIC,
                    read_secret_env(&var).map_err(|m| Error::Usage(format!("{}: {m}", file.display())))?,
                ));
            }
            AuthKind::None => {}
        }
    }
    // A replaced trigger keeps only the secrets its new auth uses.
    for f in [fields::KEY, fields::HMAC, fields::BASIC] {
        let used = match auth {
            Some(AuthKind::Key) => f == fields::KEY,
            Some(AuthKind::HmacSha256) => f == fields::HMAC,
            Some(AuthKind::Basic) => f == fields::BASIC,
            _ => false,
        };
        if !used {
            vault.secret_delete(&owner, f)?;
        }
    }
    for (f, v) in &sealed {
        vault.secret_set(&owner, f, v)?;
    }
    crate::home::create_private_dir(&trigger::installed_dir(home))?;
    crate::files::write_atomic(&target, &t.installed_text(&text)).map_err(|source| Error::Io {
        what: format!("cannot install the trigger into `{}`", target.display()),
        source,
    })?;
    let path = t.webhook().map(|w| w.path.clone());
    if json {
        let mut doc =
            json!({"name": t.name.as_str(), "kind": t.kind.name(), "path": path, "file": target.display().to_string()});
        if let Some(k) = &shown_key {
            doc["key"] = Value::String(k.expose_secret().to_string());
        }
        return super::print_json(&doc);
    }
    eprintln!("installed trigger `{}` ({}) into {}", t.name, t.kind.name(), target.display());
    if let Some(k) = &shown_key {
        eprintln!("its webhook key, shown only now (send it in the X-Linkrun-Key header):");
        outln!("{}", k.expose_secret());
    }
    Ok(())
}

fn describe(t: &Trigger) -> Value {
    let mut v = json!({
        "name": t.name.as_str(),
        "kind": t.kind.name(),
        "script": t.script.display().to_string(),
        "origin": t.origin.to_string(),
        "file": t.file.display().to_string(),
        "on_failure": match &t.on_failure {
            None => Value::Null,
            Some(trigger::OnFailure::Script(p)) => Value::String(p.display().to_string()),
            Some(trigger::OnFailure::Url(u)) => Value::String(crate::http::rules::redact_url(u, &[])),
        },
    });
    match &t.kind {
        Kind::Webhook(w) => {
            v["path"] = w.path.clone().into();
            v["mode"] = w.mode.to_string().into();
            v["auth"] = w.auth.to_string().into();
            v["methods"] = w.methods.clone().into();
            v["key_in_query"] = w.key_in_query.into();
            v["dedupe"] = w.dedupe.as_ref().map(|d| d.spelling()).into();
            v["max_body"] = w.max_body.into();
        }
        Kind::Schedule(s) => {
            v["schedule"] = s.describe().into();
            v["timezone"] = s.timezone.clone().into();
            v["overlap"] = s.overlap.to_string().into();
        }
    }
    v
}

fn list(home: &Home, json: bool) -> Result<()> {
    let (all, warnings) = trigger::load_all(home, local_dir().as_deref()).map_err(usage)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if json {
        return super::print_json(&Value::Array(all.iter().map(describe).collect()));
    }
    if all.is_empty() {
        eprintln!("no triggers: install one with `linkrun trigger add FILE.toml` (see triggers/README.md)");
        return Ok(());
    }
    for t in &all {
        let what = match &t.kind {
            Kind::Webhook(w) => format!("{} {} ({}, auth {})", w.methods.join("|"), w.path, w.mode, w.auth),
            Kind::Schedule(s) => s.describe(),
        };
        outln!("{:<24} {:<9} {:<48} {}", t.name, t.kind.name(), what, t.script.display());
    }
    Ok(())
}

fn show(home: &Home, name: &str, json: bool) -> Result<()> {
    let (all, _) = trigger::load_all(home, local_dir().as_deref()).map_err(usage)?;
    let t = all
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| Error::Usage(format!("there is no trigger `{name}`: see `linkrun trigger list`")))?;
    let mut v = describe(&t);
    if let Some(w) = t.webhook() {
        let field = match w.auth {
            AuthKind::Key => Some(fields::KEY),
            AuthKind::HmacSha256 => Some(fields::HMAC),
            AuthKind::Basic => Some(fields::BASIC),
            AuthKind::None => None,
        };
        if let Some(f) = field {
            let set = Vault::exists(home) && Vault::open(home)?.secret_get(&secret_owner(&t.name), f)?.is_some();
            v["secret"] =
                if set { "sealed (rotate with `linkrun trigger rotate`)".into() } else { "not set yet".into() };
        }
    }
    if json {
        return super::print_json(&v);
    }
    if let Some(m) = v.as_object() {
        for (k, val) in m {
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            };
            outln!("{k:<13} {text}");
        }
    }
    Ok(())
}

fn delete(home: &Home, name: &str, yes: bool, json: bool) -> Result<()> {
    let t = installed(home, name)?;
    if !yes
        && !super::confirm(
            &format!("delete trigger `{name}` and its sealed secrets?"),
            format!("deleting trigger `{name}` needs confirmation: pass --yes (there is no terminal to ask on)"),
        )?
    {
        eprintln!("kept trigger `{name}`");
        return Ok(());
    }
    if Vault::exists(home) {
        Vault::open(home)?.secrets_delete(&secret_owner(&t.name))?;
    }
    std::fs::remove_file(&t.file)
        .map_err(|source| Error::Io { what: format!("cannot delete `{}`", t.file.display()), source })?;
    if json {
        return super::print_json(&json!({"deleted": name}));
    }
    eprintln!("deleted trigger `{name}`; a running serve stops taking it at its next start");
    Ok(())
}

fn rotate(home: &Home, name: &str, json: bool) -> Result<()> {
    let t = installed(home, name)?;
    let Some(w) = t.webhook() else {
        return Err(Error::Usage(format!("trigger `{name}` is a schedule: it has no secret to rotate")));
    };
    let mut vault = Vault::open(home)?;
    let owner = secret_owner(&t.name);
    let key = match w.auth {
        AuthKind::Key => {
            let k = new_key()?;
            vault.secret_set(&owner, fields::KEY, &k)?;
            Some(k)
        }
        AuthKind::HmacSha256 => {
            let v = read_secret_env(w.secret_env.as_deref().unwrap_or_default()).map_err(Error::Usage)?;
            vault.secret_set(&owner, fields::HMAC, &v)?;
            None
        }
        AuthKind::Basic => {
            let var = w.basic.as_ref().map(|(_, p)| p.as_str()).unwrap_or_default();
            vault.secret_set(&owner, fields::BASIC, &read_secret_env(var).map_err(Error::Usage)?)?;
            None
        }
        AuthKind::None => {
            return Err(Error::Usage(format!("trigger `{name}` has `auth = \"none\"`: nothing to rotate")));
        }
    };
    if json {
        return super::print_json(&json!({"name": name, "key": key.as_ref().map(|k| k.expose_secret().to_string())}));
    }
    match key {
        Some(k) => {
            eprintln!("trigger `{name}`: its new webhook key, shown only now (restart serve to use it):");
            outln!("{}", k.expose_secret());
        }
        None => eprintln!("trigger `{name}`: the secret was read again and sealed (restart serve to use it)"),
    }
    Ok(())
}
