//! `linkrun service list|show|add`.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use crate::auth::oauth2_flow::DEFAULT_REDIRECT_PORT;
use crate::catalog::Catalog;
use crate::home::{Home, create_private_dir};
use crate::service::{AuthKind, GrantType, HttpMethod, Origin, Param, Placement, ScopeDelimiter, Service};
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
    let params: Vec<_> = shown_params(s)
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
    let instances: serde_json::Map<String, serde_json::Value> = s
        .named_instances()
        .into_iter()
        .map(|k| {
            let e = s.endpoint(None, Some(k));
            (k.to_string(), json!({"base_url": e.base_url, "allowed_hosts": e.allowed_hosts}))
        })
        .collect();
    let single = s.endpoint(None, None);
    let setup = Setup::of(s);
    let (url, method) = example(s);
    let retry = retry_policy(s);
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
        "instances": instances,
        "custom_domain": custom_domain(s),
        "data_centers": dcs,
        "default_data_center": s.def.default_data_center.as_ref().map(|d| d.get_ref().clone()),
        "allowed_hosts": if s.def.data_centers.is_empty() && s.def.instance_url.is_none() { Some(single.allowed_hosts) } else { None },
        "params": params,
        "token_header": token_header(s),
        "setup": {
            "notes": setup.notes,
            "redirect_uri": setup.redirect_uri,
            "scopes": setup.scopes,
            "scope": setup.scope,
            "scope_delimiter": setup.delimiter,
            "grant_types": setup.grants,
            "create": setup.create,
            "authorize": setup.authorize.iter().map(|(c, _)| c).collect::<Vec<_>>(),
            "test": setup.test.as_ref().map(|(c, _)| c),
        },
        "example": {"url": url, "type": method},
        "snippet": snippet(s, "LINK"),
        "retry": {
            "statuses": retry.statuses, "methods": retry.methods, "max_attempts": retry.max_attempts,
            "base_ms": retry.base.as_millis() as u64, "cap_ms": retry.cap.as_millis() as u64,
            "max_wait_s": retry.max_wait.as_secs_f64(), "reset_headers": retry.reset_headers,
        },
        "limits": s.def.limits.as_ref().map(|l| l.get_ref()),
        "pagination": s.def.pagination.as_ref().map(|p| p.get_ref()),
        "checks": s.def.checks.iter().map(|c| c.name.get_ref()).collect::<Vec<_>>(),
    })
}

/// The retry policy of the service's requests: the defaults with its `[retry]` over them.
fn retry_policy(s: &Service) -> crate::http::retry::RetryPolicy {
    let p = crate::http::retry::RetryPolicy::default();
    match &s.def.retry {
        Some(r) => p.with(r.get_ref()),
        None => p,
    }
}

/// The lines of `service show` on how requests are sent: retries, the rate budget, paging and
/// the permission checks.
fn request_lines(s: &Service) -> Vec<String> {
    let mut out = Vec::new();
    let p = retry_policy(s);
    let statuses: Vec<String> = p.statuses.iter().map(u16::to_string).collect();
    let mut waits = vec!["Retry-After".to_string()];
    waits.extend(p.reset_headers.iter().cloned());
    waits.push(format!("backoff {} ms to {} ms", p.base.as_millis(), p.cap.as_millis()));
    out.push(format!(
        "retries:    {} for {} (a 429 for any method), at most {} attempts; waits: {}; none longer than {} s{}",
        statuses.join(", "),
        p.methods.join(", "),
        p.max_attempts,
        waits.join(", then "),
        p.max_wait.as_secs_f64(),
        if s.def.retry.is_none() { " (the defaults)" } else { "" }
    ));
    let limits = s.def.limits.as_ref().map(|l| l.get_ref().clone()).unwrap_or_default();
    let mut budget = Vec::new();
    if let Some(n) = limits.max_concurrency {
        budget.push(format!("{n} in flight"));
    }
    if let Some(r) = limits.requests_per_second {
        budget.push(format!("{r} a second"));
    }
    if let (Some(n), Some(w)) = (limits.window_requests, limits.window_s) {
        budget.push(format!("{n} per {w} s"));
    }
    out.push(format!(
        "rate budget: {} per connection (change one with `linkrun connection limits LINK`)",
        if budget.is_empty() { "none".to_string() } else { budget.join(", ") }
    ));
    if let Some(p) = &s.def.pagination {
        let p = p.get_ref();
        let style = p.style.map(|x| x.to_string()).unwrap_or_default();
        let records = p.records.as_deref().map(|r| format!(", records in `{r}`")).unwrap_or_default();
        let size = match (&p.page_size_param, p.page_size) {
            (Some(k), Some(n)) => format!(", {k}={n}"),
            _ => String::new(),
        };
        out.push(format!("paging:     {style}{records}{size} (invoke_pages, invoke_records)"));
    }
    if !s.def.checks.is_empty() {
        let names: Vec<&str> = s.def.checks.iter().map(|c| c.name.get_ref().as_str()).collect();
        out.push(format!("checks:     {} (`linkrun connection test LINK`)", names.join(", ")));
    }
    out
}

/// A ready-to-paste `invoke_url` call for connection `link`, like the snippet on Zoho's connection
/// page, with the service's `[example]` request (else an empty URL to fill in).
pub fn snippet(s: &Service, link: &str) -> String {
    let (url, method) = example(s);
    format!(
        "let response = invoke_url(#{{\n    url: \"{}\",\n    type: \"{method}\",\n    connection: \"{link}\"\n}});",
        rhai_escape(&url)
    )
}

/// The `[example]` URL and method (default: an empty URL and GET).
fn example(s: &Service) -> (String, &'static str) {
    match &s.def.example {
        Some(e) => (e.url.clone(), e.method.unwrap_or(HttpMethod::Get).as_str()),
        None => (String::new(), HttpMethod::Get.as_str()),
    }
}

fn rhai_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The params `service show` lists: all of them, except the password grant's when the service
/// does not allow that grant.
fn shown_params(s: &Service) -> Vec<Param> {
    let no_password = s
        .def
        .oauth2
        .as_ref()
        .is_some_and(|o| !o.grant_types.is_empty() && !o.grant_types.contains(&GrantType::Password));
    s.params()
        .into_iter()
        .filter(|p| !(no_password && p.implied && (p.key == "username" || p.key == "password")))
        .collect()
}

/// Whether a service addressed by instance also takes a full host name (the `hostname` param).
fn custom_domain(s: &Service) -> bool {
    s.def.instance_url.is_some() && s.def.params.iter().any(|p| p.key.get_ref() == "hostname")
}

/// How the credentials appear on a request, for OAuth 2.0 (`Authorization: Bearer TOKEN`).
fn token_header(s: &Service) -> Option<String> {
    let o = s.def.oauth2.as_ref()?;
    Some(match s.placement() {
        Placement::Query => "?access_token=TOKEN".to_string(),
        _ => format!("Authorization: {} TOKEN", o.header_prefix.as_deref().unwrap_or("Bearer")),
    })
}

/// What a user needs to set the service up at the provider and connect it, from its definition.
struct Setup {
    /// The service's `setup_notes`.
    notes: Option<String>,
    /// The loopback redirect URI to register (OAuth 2.0 code grant).
    redirect_uri: Option<String>,
    /// Default scopes.
    scopes: Vec<String>,
    /// The default scopes joined with the service's delimiter.
    scope: Option<String>,
    /// `comma`, `space` or `plus` (OAuth 2.0).
    delimiter: Option<&'static str>,
    /// Allowed grants, the default first.
    grants: Vec<GrantType>,
    /// The `connection create` command with the params to supply.
    create: String,
    /// Whether `create` has a secret param given without a value (asked for without echo).
    asks_secret: bool,
    /// `connection authorize` commands, each with what it does.
    authorize: Vec<(String, String)>,
    /// The `connection test` command and its request.
    test: Option<(String, String)>,
}

impl Setup {
    fn of(s: &Service) -> Setup {
        let mut create = format!("linkrun connection create LINK --service {}", s.link_name());
        if !s.def.data_centers.is_empty() {
            create.push_str(" --dc DC");
        } else if s.def.instance_url.is_some() {
            create.push_str(" --instance NAME");
        }
        let required: Vec<Param> = shown_params(s).into_iter().filter(|p| !p.optional).collect();
        for p in &required {
            if p.secret {
                create.push_str(&format!(" --param {}", p.key));
            } else {
                create.push_str(&format!(" --param {}=...", p.key));
            }
        }
        let mut setup = Setup {
            notes: s.def.setup_notes.as_ref().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
            redirect_uri: None,
            scopes: Vec::new(),
            scope: None,
            delimiter: None,
            grants: Vec::new(),
            asks_secret: required.iter().any(|p| p.secret),
            create,
            authorize: Vec::new(),
            test: s.def.test.as_ref().map(|t| {
                (
                    "linkrun connection test LINK".to_string(),
                    format!("{} {}", t.method.as_deref().unwrap_or("GET"), t.url),
                )
            }),
        };
        let auth = |rest: &str| format!("linkrun connection authorize LINK{rest}");
        match (s.auth(), &s.def.oauth2) {
            (AuthKind::Oauth2, Some(o)) => {
                let grants: Vec<GrantType> =
                    if o.grant_types.is_empty() { vec![GrantType::AuthorizationCode] } else { o.grant_types.clone() };
                let delimiter = o.scope_delimiter.unwrap_or(ScopeDelimiter::Space);
                let (name, sep) = match delimiter {
                    ScopeDelimiter::Comma => ("comma", ","),
                    ScopeDelimiter::Space => ("space", " "),
                    ScopeDelimiter::Plus => ("plus", "+"),
                };
                setup.scopes = o.scopes.clone();
                setup.scope = (!o.scopes.is_empty()).then(|| o.scopes.join(sep));
                setup.delimiter = Some(name);
                let soid = s.def.params.iter().any(|p| p.key.get_ref() == "soid");
                for (i, g) in grants.iter().enumerate() {
                    let flag = match (i, g) {
                        (0, _) => String::new(),
                        (_, GrantType::AuthorizationCode) => " --grant code".to_string(),
                        (_, other) => format!(" --grant {other}"),
                    };
                    match g {
                        GrantType::AuthorizationCode => {
                            if o.authorize_url.is_some() {
                                let port = o.redirect_port.unwrap_or(DEFAULT_REDIRECT_PORT);
                                setup.redirect_uri = Some(format!("http://127.0.0.1:{port}/callback"));
                                setup
                                    .authorize
                                    .push((auth(&flag), "sign in in a browser, redirected to the URI above".into()));
                            }
                            setup.authorize.push((
                                auth(" --code CODE"),
                                "a code obtained elsewhere, e.g. from a self client".into(),
                            ));
                        }
                        GrantType::Password => setup.authorize.push((
                            auth(&flag),
                            "the password grant, with the connection's username and password".into(),
                        )),
                        GrantType::ClientCredentials => setup.authorize.push((
                            auth(&flag),
                            format!("no user sign-in{}", if soid { "; sends the soid param" } else { "" }),
                        )),
                    }
                }
                setup.grants = grants;
            }
            (AuthKind::Oauth1, _) => {
                setup
                    .authorize
                    .push((auth(""), "sign in in a browser; the callback is a one-shot listener on 127.0.0.1".into()));
                setup.authorize.push((
                    auth(" --no-browser"),
                    "out of band: prints the URL, then asks for the verifier (PIN)".into(),
                ));
                setup.authorize.push((auth(" --verifier CODE"), "finish with the verifier the provider showed".into()));
            }
            _ => {}
        }
        setup
    }
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
    if let Some(h) = token_header(s) {
        outln!("token:      {h}");
    }
    if !s.def.data_centers.is_empty() {
        outln!("data centers (--dc):");
        for dc in s.data_centers() {
            let e = s.endpoint(Some(dc), None);
            let default = s.def.default_data_center.as_ref().is_some_and(|d| d.get_ref() == dc);
            outln!(
                "  {dc:8} {}  hosts: {}{}{}",
                e.base_url.unwrap_or_default(),
                e.allowed_hosts.join(", "),
                e.accounts_url.map(|a| format!("  accounts: {a}")).unwrap_or_default(),
                if default { "  (default)" } else { "" }
            );
        }
    } else if let Some(t) = &s.def.instance_url {
        outln!("instance:   {} (--instance NAME)", t.get_ref());
        for name in s.named_instances() {
            let e = s.endpoint(None, Some(name));
            outln!(
                "  {name:8} {}  hosts: {}  (--instance {name})",
                e.base_url.unwrap_or_default(),
                e.allowed_hosts.join(", ")
            );
        }
        if custom_domain(s) {
            outln!("  custom domain: --param hostname=HOST (base URL https://HOST, credentials to HOST only)");
        }
    } else {
        let e = s.endpoint(None, None);
        outln!("base URL:   {}", e.base_url.unwrap_or_else(|| "(none: scripts use absolute URLs)".into()));
        outln!("hosts:      {}", e.allowed_hosts.join(", "));
    }
    let params = shown_params(s);
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
    for line in request_lines(s) {
        outln!("{line}");
    }
    let setup = Setup::of(s);
    if setup.notes.is_some() || setup.redirect_uri.is_some() || setup.delimiter.is_some() {
        outln!("set up at the provider:");
        for line in setup.notes.iter().flat_map(|n| n.lines()) {
            outln!("  {line}");
        }
        if let Some(r) = &setup.redirect_uri {
            outln!("  redirect URI:  {r}");
        }
        if setup.delimiter.is_some() {
            match &setup.scope {
                Some(scope) => outln!("  scopes:        {scope}"),
                None => outln!("  scopes:        none by default: pass --scope SCOPE to `linkrun connection create`"),
            }
        }
        if !setup.grants.is_empty() {
            outln!(
                "  grant types:   {} (default: {})",
                setup.grants.iter().map(GrantType::as_ref).collect::<Vec<_>>().join(", "),
                setup.grants[0]
            );
        }
    }
    outln!("create a connection:");
    outln!("  {}", setup.create);
    if setup.asks_secret {
        outln!("  (--param KEY without a value asks for it without echo)");
    }
    print_commands("authorize it:", &setup.authorize)?;
    print_commands("test it:", &setup.test.into_iter().collect::<Vec<_>>())?;
    outln!("snippet:");
    for line in snippet(s, "LINK").lines() {
        outln!("  {line}");
    }
    Ok(())
}

/// Prints commands under a heading, their comments aligned as shell comments.
fn print_commands(heading: &str, commands: &[(String, String)]) -> Result<()> {
    if commands.is_empty() {
        return Ok(());
    }
    outln!("{heading}");
    let w = commands.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    for (c, note) in commands {
        outln!("  {c:w$}  # {note}");
    }
    Ok(())
}

fn add(home: &Home, file: &std::path::Path, replace: bool, json: bool) -> Result<()> {
    let text = crate::files::read_text_capped(file, crate::service::MAX_SERVICE_FILE_SIZE).map_err(|e| match e {
        crate::files::ReadError::Io { reason, .. } => {
            Error::Usage(format!("cannot read the service file `{}`: {reason}; check the path", file.display()))
        }
        other => Error::Usage(format!("cannot read the service file: {other}")),
    })?;
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
    cat.add(service)?;
    create_private_dir(&home.services_dir())?;
    let tmp = target.with_extension("toml.tmp");
    std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, &target)).map_err(|source| Error::Io {
        what: format!("cannot install the service into `{}`", target.display()),
        source,
    })?;
    if json {
        return super::print_json(&json!({"installed": name, "path": target.display().to_string()}));
    }
    eprintln!("installed service `{name}` into {}", target.display());
    Ok(())
}
