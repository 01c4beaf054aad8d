//! Triggers: what starts a run unattended. One TOML file each (the format is documented in
//! `triggers/README.md`): a `name`, the `script` it runs, an optional `on_failure`, and either a
//! `[webhook]` or a `[schedule]` table. `linkrun trigger add` installs a file into
//! `$LINKRUN_HOME/triggers/` (the script's path made absolute, secrets read from the environment
//! and sealed in the vault); `linkrun serve` also loads `./triggers/*.toml`.
//!
//! This module is the model and its validation; the server that acts on triggers is
//! [`crate::serve`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::home::Home;
use crate::link_name::LinkName;

/// The largest trigger file read.
pub const MAX_TRIGGER_FILE_SIZE: u64 = 64 * 1024;

/// The name `linkrun run` records its runs under; no trigger may take it.
pub const CLI_TRIGGER: &str = "cli";

/// What a sync trigger's runs record as their script: `sync:NAME` (as `linkrun sync run` does).
/// A trigger's script path is absolute, so it never starts so.
pub const SYNC_PREFIX: &str = "sync:";

/// The sync a run's recorded script names (`sync:NAME`), if it is one.
pub fn sync_of(script: &Path) -> Option<&str> {
    script.to_str().and_then(|s| s.strip_prefix(SYNC_PREFIX))
}

/// The default cap on a webhook's request body.
pub const DEFAULT_MAX_BODY: u64 = 1024 * 1024;

/// The largest `max_body_kb` accepted (64 MiB).
const MAX_MAX_BODY_KB: u64 = 64 * 1024;

/// The default `dedupe_window`: providers retry deliveries for hours, Zoho and GitHub within a day.
pub const DEFAULT_DEDUPE_WINDOW_MS: i64 = 24 * 3_600_000;

/// The default `tolerance_s` of a signed timestamp.
pub const DEFAULT_TOLERANCE_S: i64 = 300;

/// A trigger, validated.
#[derive(Debug, Clone)]
pub struct Trigger {
    /// Its name (the link-name rule; `cli` is reserved); runs are recorded under it.
    pub name: LinkName,
    /// The script it runs (absolute).
    pub script: PathBuf,
    /// Fixed `args` the script gets on every run (text values), before the request's own.
    pub args: BTreeMap<String, String>,
    /// The whole-run wall-clock limit.
    pub timeout_s: f64,
    /// Who hears of a failed run.
    pub on_failure: Option<OnFailure>,
    /// Webhook or schedule.
    pub kind: Kind,
    /// The file it was read from.
    pub file: PathBuf,
    /// Installed into the home (`trigger add`), or read from `./triggers/`.
    pub origin: Origin,
}

/// Where a trigger file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum Origin {
    /// `$LINKRUN_HOME/triggers/` (`linkrun trigger add`).
    Installed,
    /// `./triggers/` of the folder serve started in.
    Local,
}

/// What `on_failure` names.
#[derive(Debug, Clone, PartialEq)]
pub enum OnFailure {
    /// A script run with the failed run's record as `input`.
    Script(PathBuf),
    /// A URL that gets the record as JSON in a POST.
    Url(url::Url),
}

/// The two kinds.
#[derive(Debug, Clone)]
pub enum Kind {
    /// `[webhook]`.
    Webhook(Webhook),
    /// `[schedule]`.
    Schedule(Schedule),
}

impl Kind {
    /// `webhook` or `schedule`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Webhook(_) => "webhook",
            Kind::Schedule(_) => "schedule",
        }
    }
}

/// A webhook's answer mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Mode {
    /// The script's result is the answer.
    Sync,
    /// 202 with the run id once the request is stored; the run follows.
    Async,
}

/// How a webhook's sender proves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AuthKind {
    /// A generated key in `X-Linkrun-Key` or `Authorization: Bearer` (or `?key=` when allowed).
    Key,
    /// HMAC-SHA256 of the body (optionally of `TIMESTAMP.BODY`).
    HmacSha256,
    /// HTTP Basic.
    Basic,
    /// Nobody (loopback only, and only when the file allows it).
    None,
}

/// `[webhook]`.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// The full path, `/hooks/...`.
    pub path: String,
    /// Sync or async.
    pub mode: Mode,
    /// The authentication.
    pub auth: AuthKind,
    /// Key auth: also accept the key as the `key` query parameter.
    pub key_in_query: bool,
    /// The methods accepted (default POST).
    pub methods: Vec<String>,
    /// HMAC: the signature header, the timestamp header, the window.
    pub hmac: Option<HmacSpec>,
    /// HMAC: the variable the secret is read from at `trigger add`.
    pub secret_env: Option<String>,
    /// Basic: the user name, and the variable its password is read from.
    pub basic: Option<(String, String)>,
    /// Where a delivery's id is found.
    pub dedupe: Option<Dedupe>,
    /// How long a delivery id is remembered.
    pub dedupe_window_ms: i64,
    /// The body cap in bytes.
    pub max_body: u64,
}

/// The HMAC settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HmacSpec {
    /// The header holding the signature (lowercase hex, optionally `sha256=` first).
    pub header: String,
    /// The header holding the timestamp that is signed with the body (`TIMESTAMP.BODY`).
    pub timestamp_header: Option<String>,
    /// How far the timestamp may be from now.
    pub tolerance_s: i64,
}

/// Where a delivery id is read from.
#[derive(Debug, Clone, PartialEq)]
pub enum Dedupe {
    /// A request header (the provider's delivery id).
    Header(String),
    /// A path into the JSON body: `$.a.b` (keys, or indexes of arrays).
    Body(Vec<String>),
}

impl Dedupe {
    /// As written in the file.
    pub fn spelling(&self) -> String {
        match self {
            Dedupe::Header(h) => h.clone(),
            Dedupe::Body(p) => format!("body:$.{}", p.join(".")),
        }
    }
}

/// `[schedule]`.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// When it fires.
    pub when: When,
    /// The IANA zone a cron expression is read in.
    pub timezone: String,
    /// What a run still going does to the next one.
    pub overlap: Overlap,
}

/// A cron expression or a fixed period.
#[derive(Debug, Clone)]
pub enum When {
    /// 5 fields, or 6 with seconds first, as written.
    Cron(Box<croner::Cron>, String),
    /// Every so many milliseconds, as written.
    Every(i64, String),
}

/// `overlap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Overlap {
    /// A run still going makes the next one `skipped`.
    Skip,
    /// The next one waits for it.
    Queue,
}

impl Schedule {
    /// The first time it fires strictly after `after_ms` (ms since the epoch); none when it
    /// never does again.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.when {
            When::Every(period, _) => Some((after_ms.div_euclid(*period) + 1) * period),
            When::Cron(cron, _) => {
                let zone = jiff::tz::db().get(&self.timezone).ok()?;
                let at = jiff::Timestamp::from_millisecond(after_ms).ok()?.to_zoned(zone);
                let next = cron.find_next_occurrence(&at, false).ok()?;
                Some(next.timestamp().as_millisecond())
            }
        }
    }

    /// `cron "..." in ZONE` or `every 15m`, for listings.
    pub fn describe(&self) -> String {
        match &self.when {
            When::Cron(_, s) => format!("cron \"{s}\" ({})", self.timezone),
            When::Every(_, s) => format!("every {s}"),
        }
    }
}

// ----- the file format -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    name: String,
    script: Option<String>,
    sync: Option<String>,
    on_failure: Option<String>,
    #[serde(default)]
    args: BTreeMap<String, toml::Value>,
    timeout_s: Option<f64>,
    webhook: Option<RawWebhook>,
    schedule: Option<RawSchedule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    path: String,
    mode: Option<Mode>,
    auth: Option<AuthKind>,
    #[serde(default)]
    key_in_query: bool,
    #[serde(default)]
    allow_unauthenticated: bool,
    methods: Option<Vec<String>>,
    header: Option<String>,
    secret_env: Option<String>,
    timestamp_header: Option<String>,
    tolerance_s: Option<i64>,
    username: Option<String>,
    password_env: Option<String>,
    dedupe: Option<String>,
    dedupe_window: Option<String>,
    max_body_kb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: Option<String>,
    every: Option<String>,
    timezone: Option<String>,
    overlap: Option<Overlap>,
}

/// A trigger file that cannot be used: the message names the file and what to change.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {message}")]
pub struct TriggerError {
    /// The file, as shown.
    pub file: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
}

impl Trigger {
    /// Reads and validates a trigger file; relative `script` and `on_failure` paths are taken
    /// from the file's folder.
    pub fn load(file: &Path, origin: Origin) -> Result<Trigger, TriggerError> {
        let shown = file.display().to_string();
        let text = crate::files::read_text_capped(file, MAX_TRIGGER_FILE_SIZE)
            .map_err(|e| TriggerError { file: shown.clone(), message: format!("{e}; check the path") })?;
        Trigger::parse(&text, file, origin)
    }

    /// Validates the text of a trigger file that lives at `file`.
    pub fn parse(text: &str, file: &Path, origin: Origin) -> Result<Trigger, TriggerError> {
        let shown = file.display().to_string();
        let fail = |message: String| TriggerError { file: shown.clone(), message };
        let raw: RawTrigger = toml::from_str(text).map_err(|e| {
            fail(format!("{}; fix the file (see triggers/README.md)", e.to_string().trim_end().replace('\n', " ")))
        })?;
        let name = LinkName::parse(&raw.name)
            .map_err(|rule| fail(format!("`name = \"{}\"` is not a valid trigger name: {rule}", raw.name)))?;
        if name == CLI_TRIGGER {
            return Err(fail("the name `cli` is reserved for runs started by `linkrun run`: choose another".into()));
        }
        let dir = std::path::absolute(file)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        let script = match (raw.script, raw.sync) {
            (Some(s), None) if !s.trim().is_empty() => dir.join(s),
            (None, Some(sync)) => {
                LinkName::parse(&sync).map_err(|rule| fail(format!("`sync = \"{sync}\"`: {rule}")))?;
                PathBuf::from(format!("{SYNC_PREFIX}{sync}"))
            }
            (Some(_), Some(_)) => return Err(fail("give `script` or `sync`, not both".into())),
            _ => return Err(fail("a trigger needs `script = \"path/to/script.rhai\"` (relative to this file)".into())),
        };
        let mut args = BTreeMap::new();
        for (k, v) in raw.args {
            let text = match v {
                toml::Value::String(s) => s,
                toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => v.to_string(),
                _ => return Err(fail(format!("`args.{k}` must be text, a number or a boolean"))),
            };
            args.insert(k, text);
        }
        let timeout_s = raw.timeout_s.unwrap_or(600.0);
        if !(timeout_s > 0.0 && timeout_s <= crate::script::MAX_TIMEOUT_SECS) {
            return Err(fail(format!("`timeout_s = {timeout_s}` is out of range: give more than 0 and at most 86400")));
        }
        let on_failure = match raw.on_failure {
            None => None,
            Some(s) if s.starts_with("http://") || s.starts_with("https://") => Some(OnFailure::Url(
                url::Url::parse(&s).map_err(|e| fail(format!("`on_failure = \"{s}\"` is not a valid URL: {e}")))?,
            )),
            Some(s) if s.trim().is_empty() => return Err(fail("`on_failure` is empty: give a script or a URL".into())),
            Some(s) => Some(OnFailure::Script(dir.join(s))),
        };
        let kind = match (raw.webhook, raw.schedule) {
            (Some(w), None) => Kind::Webhook(webhook(w, &fail)?),
            (None, Some(s)) => Kind::Schedule(schedule(s, &fail)?),
            (Some(_), Some(_)) => return Err(fail("a trigger is a `[webhook]` or a `[schedule]`, not both".into())),
            (None, None) => return Err(fail("a trigger needs a `[webhook]` or a `[schedule]` table".into())),
        };
        Ok(Trigger { name, script, args, timeout_s, on_failure, kind, file: file.to_path_buf(), origin })
    }

    /// The webhook table, if it is one.
    pub fn webhook(&self) -> Option<&Webhook> {
        match &self.kind {
            Kind::Webhook(w) => Some(w),
            Kind::Schedule(_) => None,
        }
    }

    /// The sync a trigger runs instead of a script (`sync = "NAME"`).
    pub fn sync(&self) -> Option<&str> {
        sync_of(&self.script)
    }

    /// The file's text with `script` and a script `on_failure` made absolute, for installing.
    pub fn installed_text(&self, text: &str) -> String {
        let Ok(mut table) = text.parse::<toml::Table>() else { return text.to_string() };
        if self.sync().is_none() {
            table.insert("script".into(), toml::Value::String(self.script.display().to_string()));
        }
        if let Some(OnFailure::Script(p)) = &self.on_failure {
            table.insert("on_failure".into(), toml::Value::String(p.display().to_string()));
        }
        toml::to_string(&table).unwrap_or_else(|_| text.to_string())
    }
}

fn webhook(w: RawWebhook, fail: &dyn Fn(String) -> TriggerError) -> Result<Webhook, TriggerError> {
    if !w.path.starts_with("/hooks/") || w.path.len() <= "/hooks/".len() {
        return Err(fail(format!(
            "`path = \"{}\"` must be a full path under /hooks/, e.g. \"/hooks/new-lead\"",
            w.path
        )));
    }
    if !w.path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b)) || w.path.contains("//") {
        return Err(fail(format!(
            "`path = \"{}\"` may hold only letters, digits and - _ . ~ between single slashes",
            w.path
        )));
    }
    let auth = w.auth.unwrap_or(AuthKind::Key);
    if auth == AuthKind::None && !w.allow_unauthenticated {
        return Err(fail(
            "`auth = \"none\"` lets anyone who reaches the server run the script: add `allow_unauthenticated = true` to say so (serve then binds only to loopback)"
                .into(),
        ));
    }
    if w.key_in_query && auth != AuthKind::Key {
        return Err(fail("`key_in_query` applies to `auth = \"key\"` only".into()));
    }
    let hmac = match auth {
        AuthKind::HmacSha256 => {
            let header = w.header.clone().ok_or_else(|| {
                fail(
                    "`auth = \"hmac_sha256\"` needs `header`, the signature header (e.g. \"X-Hub-Signature-256\")"
                        .into(),
                )
            })?;
            if w.secret_env.is_none() {
                return Err(fail(
                    "`auth = \"hmac_sha256\"` needs `secret_env`, the environment variable holding the shared secret"
                        .into(),
                ));
            }
            let tolerance_s = w.tolerance_s.unwrap_or(DEFAULT_TOLERANCE_S);
            if !(1..=86_400).contains(&tolerance_s) {
                return Err(fail(format!("`tolerance_s = {tolerance_s}` is out of range: give 1 to 86400 seconds")));
            }
            for h in std::iter::once(&header).chain(w.timestamp_header.as_ref()) {
                if !is_header_name(h) {
                    return Err(fail(format!("`{h}` is not a header name")));
                }
            }
            Some(HmacSpec { header, timestamp_header: w.timestamp_header.clone(), tolerance_s })
        }
        _ => {
            if w.header.is_some() || w.secret_env.is_some() || w.timestamp_header.is_some() || w.tolerance_s.is_some() {
                return Err(fail(
                    "`header`, `secret_env`, `timestamp_header` and `tolerance_s` apply to `auth = \"hmac_sha256\"` only"
                        .into(),
                ));
            }
            None
        }
    };
    let basic = match (auth, w.username, w.password_env) {
        (AuthKind::Basic, Some(u), Some(p)) if !u.is_empty() && !u.contains(':') => Some((u, p)),
        (AuthKind::Basic, _, _) => {
            return Err(fail(
                "`auth = \"basic\"` needs `username` (without `:`) and `password_env`, the variable holding the password"
                    .into(),
            ));
        }
        (_, None, None) => None,
        _ => return Err(fail("`username` and `password_env` apply to `auth = \"basic\"` only".into())),
    };
    let methods = match w.methods {
        None => vec!["POST".to_string()],
        Some(m) if m.is_empty() => return Err(fail("`methods` is empty: give e.g. [\"POST\"]".into())),
        Some(m) => {
            let mut out = Vec::new();
            for x in m {
                let up = x.to_ascii_uppercase();
                if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&up.as_str()) {
                    return Err(fail(format!("`methods`: `{x}` is not one of GET, POST, PUT, PATCH, DELETE")));
                }
                out.push(up);
            }
            out
        }
    };
    let dedupe = match w.dedupe {
        None => None,
        Some(d) => Some(match d.strip_prefix("body:") {
            Some(path) => {
                let rest = path.strip_prefix("$.").ok_or_else(|| {
                    fail(format!("`dedupe = \"{d}\"`: a body path starts with `$.`, e.g. \"body:$.event.id\""))
                })?;
                let segs: Vec<String> = rest.split('.').map(str::to_string).collect();
                if segs.iter().any(String::is_empty) {
                    return Err(fail(format!("`dedupe = \"{d}\"` has an empty step")));
                }
                Dedupe::Body(segs)
            }
            None if is_header_name(&d) => Dedupe::Header(d),
            None => {
                return Err(fail(format!(
                    "`dedupe = \"{d}\"` is neither a header name (\"X-Delivery-Id\") nor a body path (\"body:$.id\")"
                )));
            }
        }),
    };
    let dedupe_window_ms = match &w.dedupe_window {
        None => DEFAULT_DEDUPE_WINDOW_MS,
        Some(s) => crate::runs::parse_span_ms(s).filter(|ms| *ms > 0).ok_or_else(|| {
            fail(format!("`dedupe_window = \"{s}\"` is not a span: give e.g. \"24h\", \"90m\", \"7d\""))
        })?,
    };
    if w.dedupe_window.is_some() && dedupe.is_none() {
        return Err(fail("`dedupe_window` needs `dedupe` (where the delivery id is)".into()));
    }
    let max_body = match w.max_body_kb {
        None => DEFAULT_MAX_BODY,
        Some(kb) if (1..=MAX_MAX_BODY_KB).contains(&kb) => kb * 1024,
        Some(kb) => return Err(fail(format!("`max_body_kb = {kb}` is out of range: give 1 to {MAX_MAX_BODY_KB}"))),
    };
    Ok(Webhook {
        path: w.path,
        mode: w.mode.unwrap_or(Mode::Sync),
        auth,
        key_in_query: w.key_in_query,
        methods,
        hmac,
        secret_env: w.secret_env,
        basic,
        dedupe,
        dedupe_window_ms,
        max_body,
    })
}

fn schedule(s: RawSchedule, fail: &dyn Fn(String) -> TriggerError) -> Result<Schedule, TriggerError> {
    let timezone = s.timezone.unwrap_or_else(|| "UTC".to_string());
    if jiff::tz::db().get(&timezone).is_err() {
        return Err(fail(format!(
            "`timezone = \"{timezone}\"` is not an IANA time zone: give e.g. \"Europe/Berlin\" or \"UTC\""
        )));
    }
    let when = match (s.cron, s.every) {
        (Some(c), None) => {
            let fields = c.split_whitespace().count();
            if fields != 5 && fields != 6 {
                return Err(fail(format!(
                    "`cron = \"{c}\"` has {fields} fields: give 5 (minute hour day month weekday) or 6 (seconds first)"
                )));
            }
            let parser = croner::parser::CronParser::builder()
                .seconds(croner::parser::Seconds::Optional)
                .year(croner::parser::Year::Disallowed)
                .build();
            let cron = parser.parse(&c).map_err(|e| fail(format!("`cron = \"{c}\"` is not a cron expression: {e}")))?;
            When::Cron(Box::new(cron), c)
        }
        (None, Some(e)) => {
            let ms = crate::runs::parse_span_ms(&e).filter(|ms| *ms >= 1_000).ok_or_else(|| {
                fail(format!(
                    "`every = \"{e}\"` is not a span of 1s or more: give e.g. \"30s\", \"15m\", \"2h\", \"1d\""
                ))
            })?;
            When::Every(ms, e)
        }
        (Some(_), Some(_)) => return Err(fail("give `cron` or `every`, not both".into())),
        (None, None) => return Err(fail("a `[schedule]` needs `cron = \"*/5 * * * *\"` or `every = \"15m\"`".into())),
    };
    Ok(Schedule { when, timezone, overlap: s.overlap.unwrap_or(Overlap::Skip) })
}

/// The folder `trigger add` installs into.
pub fn installed_dir(home: &Home) -> PathBuf {
    home.root().join("triggers")
}

/// The triggers serve runs: installed ones, then `local` (`./triggers/`) ones whose names are
/// not installed. Returns the triggers and the warnings to show (a local file shadowed by an
/// installed trigger of the same name). Any invalid file, or two triggers on one webhook path,
/// is an error.
pub fn load_all(home: &Home, local: Option<&Path>) -> Result<(Vec<Trigger>, Vec<String>), TriggerError> {
    let mut out: Vec<Trigger> = Vec::new();
    let mut warnings = Vec::new();
    for (dir, origin) in [(Some(installed_dir(home)), Origin::Installed), (local.map(Path::to_path_buf), Origin::Local)]
    {
        let Some(dir) = dir else { continue };
        for file in toml_files(&dir)? {
            let t = Trigger::load(&file, origin)?;
            if let Some(other) = out.iter().find(|o| o.name == t.name) {
                if origin == Origin::Local && other.origin == Origin::Installed {
                    warnings.push(format!(
                        "{} is not loaded: trigger `{}` is installed (`linkrun trigger show {}`)",
                        file.display(),
                        t.name,
                        t.name
                    ));
                    continue;
                }
                return Err(TriggerError {
                    file: file.display().to_string(),
                    message: format!("trigger `{}` is also defined in {}: rename one", t.name, other.file.display()),
                });
            }
            out.push(t);
        }
    }
    check_paths(&out)?;
    Ok((out, warnings))
}

/// Two webhooks on one path are an error naming both files.
pub fn check_paths(all: &[Trigger]) -> Result<(), TriggerError> {
    for (i, a) in all.iter().enumerate() {
        let Some(wa) = a.webhook() else { continue };
        if let Some(b) = all[..i].iter().find(|b| b.webhook().is_some_and(|wb| wb.path == wa.path)) {
            return Err(TriggerError {
                file: a.file.display().to_string(),
                message: format!(
                    "webhook path `{}` is already taken by trigger `{}` ({}): give each trigger its own path",
                    wa.path,
                    b.name,
                    b.file.display()
                ),
            });
        }
    }
    Ok(())
}

/// The `*.toml` files of `dir`, sorted; a missing folder has none.
fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, TriggerError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(TriggerError {
                file: dir.display().to_string(),
                message: format!("cannot list the folder: {}", crate::files::io_reason(&e)),
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<Trigger, TriggerError> {
        Trigger::parse(text, Path::new("/t/x.toml"), Origin::Installed)
    }

    #[test]
    fn a_webhook_gets_its_defaults_and_an_absolute_script() {
        let t = parse("name = \"lead\"\nscript = \"../s/a.rhai\"\n[webhook]\npath = \"/hooks/lead\"\n").unwrap();
        assert_eq!(t.script, PathBuf::from("/t/../s/a.rhai"));
        let w = t.webhook().unwrap();
        assert_eq!(
            (w.mode, w.auth, w.methods.clone(), w.max_body),
            (Mode::Sync, AuthKind::Key, vec!["POST".into()], DEFAULT_MAX_BODY)
        );
        let installed =
            t.installed_text("name = \"lead\"\nscript = \"../s/a.rhai\"\n[webhook]\npath = \"/hooks/lead\"\n");
        assert!(installed.contains("script = \"/t/../s/a.rhai\""), "{installed}");
    }

    #[test]
    fn bad_files_say_what_to_change() {
        for (text, says) in [
            ("name = \"cli\"\nscript = \"a\"\n[webhook]\npath = \"/hooks/a\"\n", "reserved"),
            ("name = \"Bad\"\nscript = \"a\"\n[webhook]\npath = \"/hooks/a\"\n", "not a valid trigger name"),
            ("name = \"a\"\nscript = \"a\"\n[webhook]\npath = \"/other\"\n", "under /hooks/"),
            (
                "name = \"a\"\nscript = \"a\"\n[webhook]\npath = \"/hooks/a\"\nauth = \"none\"\n",
                "allow_unauthenticated",
            ),
            (
                "name = \"a\"\nscript = \"a\"\n[webhook]\npath = \"/hooks/a\"\nauth = \"hmac_sha256\"\n",
                "needs `header`",
            ),
            (
                "name = \"a\"\nscript = \"a\"\n[webhook]\npath = \"/hooks/a\"\nkey_in_query = true\nauth = \"basic\"\n",
                "key_in_query",
            ),
            (
                "name = \"a\"\nscript = \"a\"\n[webhook]\npath = \"/hooks/a\"\ndedupe = \"body:id\"\n",
                "starts with `$.`",
            ),
            ("name = \"a\"\nscript = \"a\"\n[schedule]\ncron = \"* * *\"\n", "has 3 fields"),
            ("name = \"a\"\nscript = \"a\"\n[schedule]\ncron = \"99 * * * *\"\n", "not a cron expression"),
            ("name = \"a\"\nscript = \"a\"\n[schedule]\nevery = \"10\"\n", "not a span"),
            ("name = \"a\"\nscript = \"a\"\n[schedule]\nevery = \"1m\"\ntimezone = \"Mars/Base\"\n", "IANA"),
            ("name = \"a\"\nscript = \"a\"\n", "needs a `[webhook]` or a `[schedule]`"),
            ("name = \"a\"\nsync = \"Contacts\"\n[schedule]\nevery = \"1m\"\n", "`sync = \"Contacts\"`"),
            ("name = \"a\"\nscript = \"a\"\nbogus = 1\n[schedule]\nevery = \"1m\"\n", "unknown field"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.starts_with("/t/x.toml: ") && e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn schedules_fire_on_their_marks_in_their_zone() {
        let every = parse("name = \"a\"\nscript = \"a\"\n[schedule]\nevery = \"15m\"\n").unwrap();
        let Kind::Schedule(s) = &every.kind else { panic!() };
        assert_eq!(s.next_after(0), Some(900_000));
        assert_eq!(s.next_after(900_000), Some(1_800_000));
        // 09:00 in Berlin on 2026-12-02 (UTC+1) is 08:00 UTC.
        let cron =
            parse("name = \"a\"\nscript = \"a\"\n[schedule]\ncron = \"0 9 * * *\"\ntimezone = \"Europe/Berlin\"\n")
                .unwrap();
        let Kind::Schedule(s) = &cron.kind else { panic!() };
        let midnight_utc = chrono::DateTime::parse_from_rfc3339("2026-12-02T00:00:00Z").unwrap().timestamp_millis();
        let next = s.next_after(midnight_utc).unwrap();
        assert_eq!(crate::runs::rfc3339(next), "2026-12-02T08:00:00.000Z");
        let secs = parse("name = \"a\"\nscript = \"a\"\n[schedule]\ncron = \"*/10 * * * * *\"\n").unwrap();
        let Kind::Schedule(s) = &secs.kind else { panic!() };
        assert_eq!(s.next_after(midnight_utc), Some(midnight_utc + 10_000));
    }
}
