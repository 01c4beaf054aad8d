//! The service catalog: built-in services (embedded from `connections/`), the ones installed with
//! `service add` (`$LINKRUN_HOME/services/`), and `*.toml` in `./connections/` of the current folder.
//!
//! Two definitions with the same link name that differ are an error naming both files; identical
//! ones (the built-ins seen again from the repository root) count once. A folder must not silently
//! redefine where a service sends its credentials.

use std::path::{Path, PathBuf};

use crate::home::Home;
use crate::service::{Origin, Service, ServiceError};
use crate::{Error, Result};

/// A lookup in the catalog failed. Exit code 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// No service has this link name.
    #[error(
        "unknown service `{name}`: run `linkrun service list` to see the services, or add one with `linkrun service add FILE.toml`"
    )]
    UnknownService {
        /// The link name asked for.
        name: String,
    },
}

include!(concat!(env!("OUT_DIR"), "/builtin_services.rs"));

/// All services visible from here, sorted by link name.
#[derive(Debug, Default)]
pub struct Catalog {
    services: Vec<Service>,
}

impl Catalog {
    /// Loads built-in, installed and local services and checks them for conflicts.
    pub fn load(home: &Home) -> Result<Catalog> {
        let mut cat = Catalog::default();
        for (name, text) in BUILTIN_SERVICES {
            let file = format!("<built-in>/{name}");
            cat.add(Service::parse(text, &file, Origin::BuiltIn)?)?;
        }
        for path in toml_files(&home.services_dir())? {
            cat.add(Service::load(&path, Origin::Installed)?)?;
        }
        for path in toml_files(Path::new("connections"))? {
            cat.add(Service::load(&path, Origin::Local)?)?;
        }
        cat.services.sort_by(|a, b| a.link_name().cmp(b.link_name()));
        Ok(cat)
    }

    /// Adds one service, refusing a different definition under the same link name.
    pub fn add(&mut self, s: Service) -> Result<(), ServiceError> {
        if let Some(existing) = self.services.iter().find(|e| e.link_name() == s.link_name()) {
            if existing.def == s.def {
                return Ok(());
            }
            return Err(ServiceError {
                file: s.file.clone(),
                line: 1,
                message: format!(
                    "service `{}` is also defined, differently, in `{}`: rename one `link_name` or remove one file",
                    s.link_name(),
                    existing.file
                ),
            });
        }
        self.services.push(s);
        Ok(())
    }

    /// All services.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// The service with this link name.
    pub fn get(&self, name: &str) -> Result<&Service> {
        self.services
            .iter()
            .find(|s| s.link_name() == name)
            .ok_or_else(|| CatalogError::UnknownService { name: name.to_string() }.into())
    }

    /// Removes a service (used by `service add --replace` before re-adding it).
    pub fn remove(&mut self, name: &str) {
        self.services.retain(|s| s.link_name() != name);
    }
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(Error::Io { what: format!("cannot read the folder `{}`", dir.display()), source }),
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Not only regular files: a directory or FIFO named `*.toml` is refused by name when loaded.
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "link_name = \"echo\"\nname = \"Echo\"\nauth = \"none\"\nbase_url = \"http://127.0.0.1:1\"\n";

    #[test]
    fn identical_definitions_count_once_and_different_ones_conflict() {
        let mut c = Catalog::default();
        c.add(Service::parse(A, "a.toml", Origin::BuiltIn).unwrap()).unwrap();
        c.add(Service::parse(A, "b.toml", Origin::Local).unwrap()).unwrap();
        assert_eq!(c.services().len(), 1);
        let other = A.replace("127.0.0.1:1", "127.0.0.1:2");
        let e = c.add(Service::parse(&other, "c.toml", Origin::Local).unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:1: service `echo` is also defined, differently, in `a.toml`: rename one `link_name` or remove one file"
        );
    }

    #[test]
    fn builtins_parse() {
        for (name, text) in BUILTIN_SERVICES {
            Service::parse(text, name, Origin::BuiltIn).unwrap();
        }
    }
}
