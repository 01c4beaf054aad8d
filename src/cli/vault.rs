//! `linkrun vault status|rekey`.

use clap::Subcommand;
use secrecy::SecretString;
use serde_json::json;

use crate::Result;
use crate::home::Home;
use crate::vault::{NewKey, Vault, VaultError};

/// Vault commands.
#[derive(Debug, Subcommand)]
pub enum VaultCmd {
    /// Key source, schema version and counts.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-seal every value under a new key (crash-safe: the vault always opens with the old key or the new one).
    #[command(group(clap::ArgGroup::new("new").required(true).args(["new_key_file", "new_passphrase_env"])))]
    Rekey {
        /// Generate a new random key into $LINKRUN_HOME/master.key.
        #[arg(long)]
        new_key_file: bool,
        /// Use the passphrase in this environment variable (then set LINKRUN_PASSPHRASE to it).
        #[arg(long, value_name = "ENVVAR")]
        new_passphrase_env: Option<String>,
    },
}

/// Runs a vault command.
pub fn run(home: &Home, cmd: VaultCmd) -> Result<()> {
    match cmd {
        VaultCmd::Status { json } => {
            let v = Vault::open(home)?;
            let s = v.status()?;
            if json {
                return super::print_json(&json!({
                    "path": s.path, "key_source": s.key_source, "schema_version": s.schema_version,
                    "connections": s.connections, "sealed_values": s.sealed_values,
                    "by_status": s.by_status.iter().map(|(k, n)| (k.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
                }));
            }
            outln!("vault:          {}", s.path);
            outln!("key source:     {}", s.key_source);
            outln!("schema version: {}", s.schema_version);
            outln!("connections:    {}", s.connections);
            for (status, n) in &s.by_status {
                outln!("  {status:14}{n}");
            }
            outln!("sealed values:  {}", s.sealed_values);
            Ok(())
        }
        VaultCmd::Rekey { new_key_file, new_passphrase_env } => {
            let new = match (new_key_file, new_passphrase_env) {
                (true, _) => NewKey::KeyFile,
                (false, Some(var)) => {
                    let p = std::env::var(&var).ok().filter(|p| !p.is_empty()).ok_or_else(|| {
                        VaultError::Usage(format!("environment variable `{var}` is not set or empty: export the new passphrase in it and run again"))
                    })?;
                    NewKey::Passphrase(SecretString::from(p))
                }
                (false, None) => {
                    return Err(VaultError::Usage("pass --new-key-file or --new-passphrase-env ENVVAR".into()).into());
                }
            };
            let mut v = Vault::open(home)?;
            let old = v.key_source().clone();
            let source = v.rekey(home, new)?;
            eprintln!("rekeyed the vault: it now opens with {source}");
            match (&old, &source) {
                (crate::vault::crypto::KeySource::EnvKey, _) => {
                    eprintln!("unset LINKRUN_MASTER_KEY, which holds the old key")
                }
                (crate::vault::crypto::KeySource::Passphrase, crate::vault::crypto::KeySource::KeyFile(_)) => {
                    eprintln!("unset LINKRUN_PASSPHRASE, which holds the old passphrase")
                }
                (_, crate::vault::crypto::KeySource::Passphrase) => {
                    eprintln!("set LINKRUN_PASSPHRASE to the new passphrase from now on")
                }
                _ => {}
            }
            Ok(())
        }
    }
}
