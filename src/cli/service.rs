//! `linkrun service list|show|add`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::catalog::Catalog;
use crate::home::{Home, create_private_dir};
use crate::service::{Origin, Service};
use crate::{Error, Result};

/// Service commands.
#[derive(Debug, Subcommand)]
pub enum ServiceCmd {
    /// List built-in, installed and ./connections/ services.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one service: auth, where requests go, the params a connection needs, a snippet.
    Show {
        /// The service's link name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate a service TOML file and install it into $LINKRUN_HOME/services/.
    Add {
        /// The TOML file.
        file: PathBuf,
        /// Replace an installed service with the same link name.
        #[arg(long)]
        replace: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a service command.
pub fn run(home: &Home, cmd: ServiceCmd) -> Result<()> {
    match cmd {
        ServiceCmd::List { json } => list(home, json),
        ServiceCmd::Show { name, json } => show(home, &name, json),
        ServiceCmd::Add { file, replace, json } => add(home, &file, replace, json),
    }
}

fn list(home: &Home, json: bool) -> Result<()> {
    let cat = Catalog::load(home)?;
    if json {
        let items: Vec<_> = cat
            .services()
            .iter()
            .map(|s| json!({"link_name": s.link_name(), "name": s.def.name, "auth": s.auth().to_string(), "origin": s.origin, "file": s.file}))
            .collect();
        return super::print_json(&json!(items));
    }
    if cat.services().is_empty() {
        eprintln!("no services yet: add one with `linkrun service add FILE.toml` (see connections/README.md)");
        return Ok(());
    }
    let w = cat.services().iter().map(|s| s.link_name().len()).max().unwrap_or(0).max(9);
    outln!("{:w$}  {:8}  {:9}  NAME", "LINK_NAME", "AUTH", "ORIGIN");
    for s in cat.services() {
        outln!("{:w$}  {:8}  {:9}  {}", s.link_name(), s.auth().to_string(), s.origin.to_string(), s.def.name);
    }
    Ok(())
}

/// The JSON description of a service (also used by `service show --json`).
pub fn describe(s: &Service) -> serde_json::Value {
    let params: Vec<_> = s
        .params()
        .iter()
        .map(|p| json!({"key": p.key, "label": p.label, "secret": p.secret, "required": !p.optional, "placement": p.placement.map(|x| x.to_string())}))
        .collect();
    let dcs: serde_json::Map<String, serde_json::Value> = s
        .def
        .data_centers
        .keys()
        .map(|k| {
            let e = s.endpoint(Some(k), None);
            (
                k.clone(),
                json!({"base_url": e.base_url, "allowed_hosts": e.allowed_hosts, "accounts_url": e.accounts_url}),
            )
        })
        .collect();
    let single = s.endpoint(None, None);
    json!({
        "link_name": s.link_name(),
        "name": s.def.name,
        "description": s.def.description,
        "auth": s.auth().to_string(),
        "placement": s.placement().to_string(),
        "origin": s.origin,
        "file": s.file,
        "base_url": if s.def.data_centers.is_empty() { single.base_url.clone() } else { None },
        "instance_url": s.def.instance_url.as_ref().map(|i| i.get_ref().clone()),
        "data_centers": dcs,
        "default_data_center": s.def.default_data_center.as_ref().map(|d| d.get_ref().clone()),
        "allowed_hosts": if s.def.data_centers.is_empty() && s.def.instance_url.is_none() { Some(single.allowed_hosts) } else { None },
        "params": params,
        "snippet": snippet(s.link_name()),
    })
}

/// A ready-to-paste `invoke_url` call, like the snippet on Zoho's connection page.
pub fn snippet(link: &str) -> String {
    format!("let response = invoke_url(#{{\n    url: \"\",\n    type: \"GET\",\n    connection: \"{link}\"\n}});")
}

fn show(home: &Home, name: &str, json: bool) -> Result<()> {
    let cat = Catalog::load(home)?;
    let s = cat.get(name)?;
    if json {
        return super::print_json(&describe(s));
    }
    outln!("{} ({})", s.def.name, s.link_name());
    if let Some(d) = &s.def.description {
        outln!("  {d}");
    }
    outln!("origin:     {} ({})", s.origin, s.file);
    outln!("auth:       {} (placement: {})", s.auth(), s.placement());
    if !s.def.data_centers.is_empty() {
        outln!("data centers (--dc):");
        for dc in s.data_centers() {
            let e = s.endpoint(Some(dc), None);
            let default = s.def.default_data_center.as_ref().is_some_and(|d| d.get_ref() == dc);
            outln!(
                "  {dc:8} {}  hosts: {}{}",
                e.base_url.unwrap_or_default(),
                e.allowed_hosts.join(", "),
                if default { "  (default)" } else { "" }
            );
        }
    } else if let Some(t) = &s.def.instance_url {
        outln!("instance:   {} (--instance NAME)", t.get_ref());
    } else {
        let e = s.endpoint(None, None);
        outln!("base URL:   {}", e.base_url.unwrap_or_else(|| "(none: scripts use absolute URLs)".into()));
        outln!("hosts:      {}", e.allowed_hosts.join(", "));
    }
    let params = s.params();
    if !params.is_empty() {
        outln!("params (--param KEY=VALUE):");
        for p in params {
            let mut notes = vec![if p.optional { "optional" } else { "required" }];
            if p.secret {
                notes.push("secret");
            }
            let placed = p.placement.map(|pl| format!(", sent in the {pl}")).unwrap_or_default();
            outln!("  {:16} {} ({}{placed})", p.key, p.label, notes.join(", "));
        }
    }
    outln!("create a connection:");
    outln!(
        "  linkrun connection create LINK --service {}{}",
        s.link_name(),
        if s.def.data_centers.is_empty() { "" } else { " --dc DC" }
    );
    outln!("snippet:");
    for line in snippet("LINK").lines() {
        outln!("  {line}");
    }
    Ok(())
}

fn add(home: &Home, file: &std::path::Path, replace: bool, json: bool) -> Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::Usage(format!("cannot read the service file `{}`: {e}; check the path", file.display())))?;
    let service = Service::parse(&text, &file.display().to_string(), Origin::Installed)?;
    let name = service.link_name().to_string();
    let mut cat = Catalog::load(home)?;
    let target = home.services_dir().join(format!("{name}.toml"));
    let at = format!("{}:{}", file.display(), crate::service::line_of(&text, service.def.link_name.span().start));
    if let Ok(existing) = cat.get(&name) {
        let same = existing.def == service.def;
        match existing.origin {
            Origin::Installed if replace || same => cat.remove(&name),
            Origin::Installed => {
                return Err(Error::Usage(format!(
                    "{at}: service `{name}` is already installed, with a different definition, from `{}`: pass --replace to replace it",
                    existing.file
                )));
            }
            _ if same => {}
            _ => {
                return Err(Error::Usage(format!(
                    "{at}: service `{name}` is already defined, differently, in `{}` ({}): choose another `link_name`",
                    existing.file, existing.origin
                )));
            }
        }
    }
    cat.add(service).map_err(Error::from)?;
    create_private_dir(&home.services_dir())?;
    let tmp = target.with_extension("toml.tmp");
    std::fs::write(&tmp, &text)
        .and_then(|_| std::fs::rename(&tmp, &target))
        .map_err(|e| Error::Other(format!("cannot install the service into `{}`: {e}", target.display())))?;
    if json {
        return super::print_json(&json!({"installed": name, "path": target.display().to_string()}));
    }
    eprintln!("installed service `{name}` into {}", target.display());
    Ok(())
}
