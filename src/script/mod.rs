//! Running a Rhai script: the engine, its limits, the run's outcome and exit codes.
//!
//! The engine is built from a raw engine plus the standard package (no module resolver: scripts
//! cannot import files), with `eval` disabled, strict variables, and limits on operations, call
//! depth, expression depth and string/array/map sizes. A wall-clock deadline (`--timeout`) is
//! checked in `on_progress`, and every HTTP call gets the smaller of its own timeout and the time
//! left, because `on_progress` does not tick during a native call; `sleep` sleeps at most until
//! the deadline for the same reason.
//!
//! Values made outside the script (responses, `parse_json`) are checked against the data limits
//! before the engine sees them: its own check raises an error no `try` can catch. Compiling and
//! evaluating run behind a panic boundary, because Rhai reaches `unreachable!` on some
//! assignments into constants; such a panic becomes a script error and prints nothing.
//!
//! `exit(n)` replaces Rhai's own `exit`, which would end the script with n as its result: it
//! records the stop in the run's state and unwinds with an error no `try` catches, like the
//! deadline. Rhai's "function not found" and "undefined variable" errors are rewritten in the
//! script's terms (`push(map, string, int)`; a variable used before `let` is not a syntax error).
//!
//! The script runs on the calling thread; `invoke_url` drives a current-thread tokio runtime with
//! `block_on` (no cross-thread wake-ups), sharing one [`Invoker`] and its HTTP clients.

pub mod builtins;
pub mod deluge;
pub mod deluge_encoding;
pub mod deluge_lib;
pub mod deluge_time;
pub mod error;
pub mod invoke;
pub mod pages;
pub mod state;
#[cfg(test)]
mod test_support;
pub mod zoho;
pub mod zoho_tasks;
pub mod zone;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::packages::Package;
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map, NativeCallContext, Position, Scope};

pub use self::error::ScriptError;
use crate::home::Home;
use crate::invoke::{Invoker, InvokerOptions};
use crate::{Error, Result};

/// Default whole-script wall clock.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);

/// The longest wall clock `--timeout` may set, and the longest `sleep`: one day, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// The largest script file linkrun runs (4 MiB).
pub const MAX_SCRIPT_SIZE: u64 = 4 * 1024 * 1024;

/// The most array items a script may hold in one value, nested arrays counted in.
pub const MAX_ARRAY_SIZE: usize = 1_000_000;

/// The most map entries a script may hold in one value, nested maps counted in.
pub const MAX_MAP_SIZE: usize = 1_000_000;

/// The most bytes of text a script may hold in one value (32 MiB).
pub const MAX_STRING_SIZE: usize = 32 * 1024 * 1024;

/// Where the script's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptSource {
    /// A script file.
    File(PathBuf),
    /// Standard input (`linkrun run -`), named `<stdin>` in messages.
    Stdin,
}

impl ScriptSource {
    /// The script's name in messages: the file name, or `<stdin>`.
    pub fn name(&self) -> String {
        match self {
            ScriptSource::File(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            ScriptSource::Stdin => STDIN_NAME.to_string(),
        }
    }
}

/// The name of a script read from standard input, in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// How to run a script.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The script: a file or standard input.
    pub script: ScriptSource,
    /// The `args` map: `--arg KEY=VALUE` pairs as strings and `--arg-json KEY=JSON` pairs as
    /// their JSON values, in that order (a later pair replaces an earlier one of the same key).
    pub args: Vec<(String, serde_json::Value)>,
    /// The `input` value (`--input FILE.json`); `None` makes `input` unit.
    pub input: Option<serde_json::Value>,
    /// `--state-key NAME`: the scope of `state_get` / `state_set` instead of the script's path
    /// (a script read from standard input has no other).
    pub state_key: Option<String>,
    /// Print the result as JSON; `print` goes to stderr.
    pub json: bool,
    /// Whole-script wall clock.
    pub timeout: Duration,
    /// Trace requests on stderr.
    pub verbose: bool,
    /// Skip tearing down the engine, runtime, clients and vault after the run: for a process that
    /// exits right after (the CLI), this saves closing work nobody waits for.
    pub exit_after: bool,
    /// Where the run's requests, `info` lines and result are kept for its record (none: not
    /// recorded).
    pub log: Option<crate::runs::RunLog>,
    /// The webhook request that started the run: the script sees it as `request` (and a Deluge
    /// function as its `crmAPIRequest` argument, as a Zoho function called as a REST API does).
    pub request: Option<serde_json::Value>,
    /// Unattended (serve): `info` and `print` go into the run record only, not to the terminal.
    pub quiet: bool,
    /// Requests through no connection may reach public addresses only (serve, against SSRF).
    pub public_only: bool,
    /// What a long-lived thread keeps between its runs (a serve worker); none: made for this
    /// run.
    pub reuse: Option<Rc<Reuse>>,
}

/// What a thread that runs one script after another (a serve worker) keeps between runs: its
/// async runtime, the HTTP clients (whose pools keep connections to the APIs open), the open
/// vault, the catalog (parsed again when a service file changes) and the engine. Each
/// connection's record and credentials are read afresh for every run, so a connection added,
/// changed or deleted meanwhile is seen at the next run. Only for runs with a log (serve's).
pub struct Reuse {
    runtime: Rc<tokio::runtime::Runtime>,
    clients: crate::http::Clients,
    handles: Rc<crate::invoke::HandleCache>,
    /// The engine with the whole vocabulary, built once for the org's zone: each run registers
    /// its own functions (`args`, `input`, `info`, `respond`, `invoke_url`, `state_*`, `sleep`,
    /// `exit`) over the previous run's, and the Zoho tasks reach the run through the slot, so
    /// none of one run's state reaches the next.
    engine: RefCell<Option<KeptEngine>>,
    /// Each script file as last read, translated and compiled: used again while the file's
    /// modification time and size stay the same (an edited script is read at its next run).
    scripts: RefCell<std::collections::HashMap<PathBuf, KeptScript>>,
    /// The org's zone, with the stamp of the `linkrun.toml` it was read from.
    zone: RefCell<Option<(Option<FileStamp>, zone::Zone)>>,
    /// How long `invoke_url` polls before sleeping on the network: none unless `LINKRUN_SPIN_US`
    /// says so, since a worker shares the cores with the other workers and the HTTP side, and
    /// polling only takes their time.
    spin: Duration,
}

/// A reused engine: the zone it was built for and the slot its Zoho tasks read the run from.
struct KeptEngine {
    zone: zone::Zone,
    engine: Engine,
    slot: RunSlot,
}

/// A script as compiled for a run: valid while its file keeps `stamp` and the run's variables
/// are the same (`request`, `run` are there for some runs only).
struct KeptScript {
    stamp: FileStamp,
    deluge: Option<Rc<deluge::DelugeSource>>,
    source: Rc<str>,
    compiled: Option<(Vec<String>, Rc<rhai::AST>)>,
}

/// A file's modification time and size, to tell whether it changed since it was read.
type FileStamp = (std::time::SystemTime, u64);

/// `path`'s stamp; none when it cannot be read (or has no modification time).
fn file_stamp(path: &std::path::Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Where the engine's run functions find the run in progress (none between runs).
pub(crate) type RunSlot = Rc<RefCell<Option<Rc<RunState>>>>;

/// Empties the slot when the run ends, however it ends, so that the state (its invoker holds
/// the run's credentials) goes with the run.
struct SlotGuard(RunSlot);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.borrow_mut().take();
    }
}

impl std::fmt::Debug for Reuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reuse").finish_non_exhaustive()
    }
}

impl Reuse {
    /// A runtime and clients for this thread.
    pub fn new() -> Result<Reuse> {
        Ok(Reuse {
            runtime: Rc::new(crate::http::runtime()?),
            clients: crate::http::Clients::default(),
            handles: Rc::default(),
            engine: RefCell::new(None),
            scripts: RefCell::default(),
            zone: RefCell::new(None),
            spin: spin_window(Duration::ZERO),
        })
    }

    /// The org's zone, read again only when `linkrun.toml` changed.
    fn zone(&self, home: &Home) -> Result<zone::Zone> {
        let stamp = file_stamp(&crate::config::Config::path(home));
        if let Some((s, z)) = self.zone.borrow().as_ref()
            && *s == stamp
        {
            return Ok(*z);
        }
        let z = org_zone(home)?;
        *self.zone.borrow_mut() = Some((stamp, z));
        Ok(z)
    }
}

/// Scripts a worker keeps compiled at most (past it, the cache starts again).
const MAX_KEPT_SCRIPTS: usize = 256;

impl Reuse {
    /// The script at `path` (translated when it is Deluge), read again only when it changed.
    fn source(&self, path: &std::path::Path, name: &str) -> Result<(Option<Rc<deluge::DelugeSource>>, Rc<str>)> {
        let stamp = file_stamp(path);
        if let Some(k) = self.scripts.borrow().get(path)
            && Some(k.stamp) == stamp
        {
            return Ok((k.deluge.clone(), k.source.clone()));
        }
        let (deluge, source) = read_source(&ScriptSource::File(path.to_path_buf()), name)?;
        let mut scripts = self.scripts.borrow_mut();
        match stamp {
            Some(stamp) => {
                if scripts.len() >= MAX_KEPT_SCRIPTS {
                    scripts.clear();
                }
                let k = KeptScript { stamp, deluge: deluge.clone(), source: source.clone(), compiled: None };
                scripts.insert(path.to_path_buf(), k);
            }
            None => {
                scripts.remove(path);
            }
        }
        Ok((deluge, source))
    }

    /// The script at `path` as compiled for a scope of `names`, when it was.
    fn compiled(&self, path: &std::path::Path, names: &[String]) -> Option<Rc<rhai::AST>> {
        let scripts = self.scripts.borrow();
        let (n, ast) = scripts.get(path)?.compiled.as_ref()?;
        (n == names).then(|| ast.clone())
    }

    /// Keeps the compiled script read by the last [`Reuse::source`] of `path`.
    fn keep_compiled(&self, path: &std::path::Path, names: Vec<String>, ast: Rc<rhai::AST>) {
        if let Some(k) = self.scripts.borrow_mut().get_mut(path) {
            k.compiled = Some((names, ast));
        }
    }
}

/// Reads the script (a file or standard input) and translates it when it is Deluge.
fn read_source(script: &ScriptSource, name: &str) -> Result<(Option<Rc<deluge::DelugeSource>>, Rc<str>)> {
    let text = match script {
        ScriptSource::File(path) => crate::files::read_text_capped(path, MAX_SCRIPT_SIZE),
        ScriptSource::Stdin => crate::files::read_stdin_capped(STDIN_NAME, MAX_SCRIPT_SIZE),
    }
    .map_err(|e| match e {
        crate::files::ReadError::Io { path, reason } => ScriptError::Unreadable { path, reason },
        source => ScriptError::NotAScript { source },
    })?;
    let deluge_source = match script {
        ScriptSource::File(path) if deluge::is_deluge_path(path) => {
            Some(Rc::new(deluge::DelugeSource::translate(name, &text)?))
        }
        _ => None,
    };
    let source: Rc<str> = match &deluge_source {
        Some(d) => d.translation.rhai.as_str().into(),
        None => text.into(),
    };
    Ok((deluge_source, source))
}

/// Why a run stopped early in a way the script cannot catch.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The wall clock ran out.
    Deadline,
    /// The vault or catalog could not be opened, or the script asked for something no `try`
    /// should hide (a bad `exit` code, state without a scope).
    Fatal(Error),
    /// The script called `exit(n)` with an allowed code.
    Exit(i32),
}

/// State shared by the script's native functions.
pub(crate) struct RunState {
    pub(crate) invoker: Invoker,
    pub(crate) runtime: Rc<tokio::runtime::Runtime>,
    pub(crate) deadline: Instant,
    /// How long `invoke_url` polls a request before sleeping on the network.
    pub(crate) spin: Duration,
    pub(crate) stop: RefCell<Option<Stop>>,
    /// Whose `state_get` / `state_set` values these are.
    pub(crate) state_scope: state::StateScope,
    /// How positions read in messages.
    pub(crate) positions: Positions,
    /// What the Zoho tasks keep during the run.
    pub(crate) tasks: zoho_tasks::TaskState,
}

/// How positions read in messages: Rhai's own, or those of the Deluge file the script was
/// translated from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Positions(Option<Rc<deluge::DelugeSource>>);

impl Positions {
    /// `line 3, column 5`, in the terms of the file the user wrote.
    pub(crate) fn at(&self, p: Position) -> String {
        match &self.0 {
            Some(d) => d.at(p),
            None => pos_text(p),
        }
    }
}

impl RunState {
    /// Time left on the wall clock.
    pub(crate) fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Records an uncatchable stop and returns the error that unwinds the script.
    pub(crate) fn halt(&self, why: Stop, pos: Position) -> Box<EvalAltResult> {
        *self.stop.borrow_mut() = Some(why);
        Box::new(EvalAltResult::ErrorTerminated(Dynamic::UNIT, pos))
    }
}

rhai::def_package! {
    /// The script library: Rhai's standard package without bit fields and blobs, which
    /// integration scripts do not need and every run would pay to build.
    pub ScriptPackage(lib):
        rhai::packages::CorePackage,
        rhai::packages::LogicPackage,
        rhai::packages::BasicMathPackage,
        rhai::packages::BasicArrayPackage,
        rhai::packages::BasicMapPackage,
        rhai::packages::BasicTimePackage,
        rhai::packages::MoreStringPackage
    {
        let _ = lib;
    }
}

/// Default busy-poll window of a request (see `invoke::spin_then_wait`).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(200);

/// The busy-poll window: `LINKRUN_SPIN_US` (microseconds, 0 turns it off), else [`DEFAULT_SPIN`].
fn spin_window(default: Duration) -> Duration {
    std::env::var("LINKRUN_SPIN_US").ok().and_then(|v| v.parse().ok()).map(Duration::from_micros).unwrap_or(default)
}

/// Builds the sandboxed engine with the limits of the module doc, its Deluge dates in the
/// machine's time zone.
pub fn engine() -> Engine {
    engine_in(deluge_time::machine_zone())
}

/// Builds the sandboxed engine with its Deluge dates (`now`, `zoho.currenttime`, text without an
/// offset) in `zone`, the org's time zone.
pub fn engine_in(zone: zone::Zone) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(ScriptPackage::new().as_shared_module());
    engine
        .set_max_operations(1_000_000_000)
        .set_max_call_levels(64)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_ARRAY_SIZE)
        .set_max_map_size(MAX_MAP_SIZE)
        .set_strict_variables(true)
        .disable_symbol("eval");
    builtins::register(&mut engine);
    deluge_lib::register(&mut engine);
    zoho::register(&mut engine);
    deluge::register(&mut engine);
    deluge_time::register(&mut engine, zone);
    deluge_encoding::register(&mut engine);
    // Rhai's own `sleep` panics on a huge number and blocks past any deadline: replaced here by
    // one that checks its argument, and in `run` by one that also obeys the wall clock.
    register_sleep(&mut engine, None);
    engine
}

/// Registers `sleep(seconds)` (integer or float): 0 to [`MAX_TIMEOUT_SECS`] seconds, anything
/// else a script error; with a run's state it sleeps at most until the deadline, then stops the
/// script with the timeout error.
fn register_sleep(engine: &mut Engine, state: Option<Rc<RunState>>) {
    let st = state.clone();
    engine.register_fn("sleep", move |ctx: NativeCallContext, secs: rhai::INT| {
        sleep_for(st.as_deref(), secs as f64, &secs.to_string(), ctx.call_position())
    });
    let st = state;
    engine.register_fn("sleep", move |ctx: NativeCallContext, secs: rhai::FLOAT| {
        let shown = if secs.is_finite() && secs.abs() < 1e15 { secs.to_string() } else { format!("{secs:e}") };
        sleep_for(st.as_deref(), secs, &shown, ctx.call_position())
    });
}

fn sleep_for(state: Option<&RunState>, secs: f64, shown: &str, pos: Position) -> Result<(), Box<EvalAltResult>> {
    if !(0.0..=MAX_TIMEOUT_SECS).contains(&secs) {
        return Err(format!("`sleep({shown})` is out of range: pass sleep 0 to 86400 seconds").into());
    }
    let wanted = Duration::from_secs_f64(secs);
    let Some(state) = state else {
        std::thread::sleep(wanted);
        return Ok(());
    };
    let remaining = state.remaining();
    if wanted < remaining {
        std::thread::sleep(wanted);
        return Ok(());
    }
    std::thread::sleep(remaining);
    Err(state.halt(Stop::Deadline, pos))
}

/// Checks that a value made outside the script (a response, parsed JSON, a saved state) fits the
/// engine's data limits, which the engine would otherwise enforce with an error no `try` catches.
/// The sizes are counted as the engine counts them: array items, map entries and string bytes,
/// nested values included.
pub fn check_data_size(v: &Dynamic) -> Result<(), DataError> {
    let (arrays, maps, strings) = data_sizes(v);
    if arrays > MAX_ARRAY_SIZE {
        return Err(DataError::TooManyItems { n: arrays });
    }
    if maps > MAX_MAP_SIZE {
        return Err(DataError::TooManyEntries { n: maps });
    }
    if strings > MAX_STRING_SIZE {
        return Err(DataError::TooMuchText { n: strings });
    }
    Ok(())
}

/// Why a value made outside the script cannot become a script value; the text is a phrase that
/// callers put into their own sentence ("the response from `U` has {this}: ask for less").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// More array items than [`MAX_ARRAY_SIZE`].
    #[error("{n} array items, more than the {MAX_ARRAY_SIZE} a script value may hold")]
    TooManyItems {
        /// How many.
        n: usize,
    },
    /// More map entries than [`MAX_MAP_SIZE`].
    #[error("{n} map entries, more than the {MAX_MAP_SIZE} a script value may hold")]
    TooManyEntries {
        /// How many.
        n: usize,
    },
    /// More text than [`MAX_STRING_SIZE`].
    #[error("{n} bytes of text, more than the {MAX_STRING_SIZE} a script value may hold")]
    TooMuchText {
        /// How many bytes.
        n: usize,
    },
    /// A JSON value with no script equivalent.
    #[error("a value scripts cannot hold ({detail})")]
    NotScriptValue {
        /// The converter's reason.
        detail: String,
    },
}

fn data_sizes(v: &Dynamic) -> (usize, usize, usize) {
    let add = |t: &mut (usize, usize, usize), (a, m, s): (usize, usize, usize)| {
        t.0 = t.0.saturating_add(a);
        t.1 = t.1.saturating_add(m);
        t.2 = t.2.saturating_add(s);
    };
    let mut total = (0, 0, 0);
    if let Some(items) = v.read_lock::<rhai::Array>() {
        for item in items.iter() {
            total.0 += 1;
            add(&mut total, data_sizes(item));
        }
    } else if let Some(map) = v.read_lock::<Map>() {
        for item in map.values() {
            total.1 += 1;
            add(&mut total, data_sizes(item));
        }
    } else if let Some(text) = v.read_lock::<rhai::ImmutableString>() {
        total.2 = text.len();
    }
    total
}

thread_local! {
    /// Set while the engine runs on this thread: a panic inside it is caught and reported as a
    /// script error, so the panic hook stays quiet.
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (the engine), turning a panic inside it into `Err(the panic's message)` with nothing
/// printed: Rhai has internal errors (`unreachable!`) that some scripts reach.
fn engine_boundary<T>(f: impl FnOnce() -> T) -> std::result::Result<T, EnginePanic> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    let was = QUIET_PANICS.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(was));
    result.map_err(|payload| EnginePanic {
        message: {
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown internal error".to_string());
            // The message may carry a dump of the expression (a whole constant map): keep the head.
            let head: String = text.chars().take(200).collect();
            if head.len() < text.len() { format!("{head}...") } else { head }
        },
    })
}

/// A panic inside the engine, caught at its boundary: the panic's message (its head).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EnginePanic {
    /// What the panic said.
    pub message: String,
}

/// The script error for a panic caught at the engine boundary.
fn internal_error(name: &str, panic: &EnginePanic) -> ScriptError {
    let message = panic.message.as_str();
    let name = name.to_string();
    if message.contains("cannot assign to expression") {
        return ScriptError::AssignToConstant { name };
    }
    ScriptError::Internal { name, message: message.to_string() }
}

/// Runs a script; returns what goes on stdout (the result), or the error that ends the run.
pub fn run(home: &Home, opts: &RunOptions) -> Result<Option<String>> {
    let name = opts.script.name();
    // A serve worker's runs (the only ones with both a log and a `Reuse`) keep their engine,
    // scripts and zone from one run to the next.
    let reused = opts.reuse.as_ref().filter(|_| opts.log.is_some());
    let kept_path = match (&opts.script, reused) {
        (ScriptSource::File(path), Some(_)) => Some(path),
        _ => None,
    };
    let (deluge_source, source) = match (kept_path, reused) {
        (Some(path), Some(r)) => r.source(path, &name)?,
        _ => read_source(&opts.script, &name)?,
    };
    let positions = Positions(deluge_source.clone());
    let mut args = Map::new();
    for (k, v) in &opts.args {
        let value =
            json_to_script(v).map_err(|what| ScriptError::ArgTooLarge { key: k.clone(), what: what.to_string() })?;
        args.insert(k.as_str().into(), value);
    }
    let input = match &opts.input {
        Some(v) => json_to_script(v).map_err(|what| ScriptError::InputTooLarge { what: what.to_string() })?,
        None => Dynamic::UNIT,
    };
    if let Some(d) = &deluge_source {
        d.inputs(&args, &input)?;
    }
    let state_scope = match (&opts.state_key, &opts.script) {
        (Some(key), _) => state::StateScope::named(key),
        (None, ScriptSource::File(path)) => state::StateScope::of(path),
        (None, ScriptSource::Stdin) => state::StateScope::none(&name),
    };
    let zone = match reused {
        Some(r) => r.zone(home)?,
        None => org_zone(home)?,
    };
    let started = Instant::now();
    let (runtime, clients) = match &opts.reuse {
        Some(r) => (r.runtime.clone(), r.clients.clone()),
        None => (Rc::new(crate::http::runtime()?), crate::http::Clients::default()),
    };
    let state = Rc::new(RunState {
        invoker: Invoker::with_clients(
            home.clone(),
            InvokerOptions {
                verbose: opts.verbose,
                trace: opts.log.as_ref().map(|l| l.requests.clone()),
                public_only: opts.public_only,
                cache: opts.reuse.as_ref().map(|r| r.handles.clone()),
                ..Default::default()
            },
            clients,
        ),
        runtime,
        deadline: started + opts.timeout,
        spin: reused.map_or_else(|| spin_window(DEFAULT_SPIN), |r| r.spin),
        tasks: zoho_tasks::TaskState::default(),
        stop: RefCell::new(None),
        state_scope,
        positions: positions.clone(),
    });

    let KeptEngine { zone, mut engine, slot } =
        match reused.and_then(|r| r.engine.borrow_mut().take()).filter(|k| k.zone == zone) {
            Some(k) => k,
            None => {
                let mut engine = engine_in(zone);
                let slot = RunSlot::default();
                zoho_tasks::register(&mut engine, &slot);
                KeptEngine { zone, engine, slot }
            }
        };
    *slot.borrow_mut() = Some(state.clone());
    let _slot = SlotGuard(slot.clone());
    {
        let all = args.clone();
        engine.register_fn("args", move || all.clone());
        let (all, given) = (args.clone(), input.clone());
        engine.register_fn("deluge_arg", move |key: ImmutableString, ty: ImmutableString| {
            deluge::input_value(&all, &given, &key, &ty)
        });
        let args = args.clone();
        engine.register_fn("arg", move |key: ImmutableString, default: Dynamic| match args.get(key.as_str()) {
            Some(v) if !v.is_unit() && v.read_lock::<ImmutableString>().is_none_or(|s| !s.is_empty()) => v.clone(),
            _ => default,
        });
        let input = input.clone();
        engine.register_fn("input", move || input.clone());
    }
    let quiet = opts.quiet;
    if let Some(log) = opts.log.clone() {
        register_respond(&mut engine, &log);
        // `info` (and Deluge's `info x;`) also goes into the run record.
        engine.register_fn("info", move |v: Dynamic| {
            let line = builtins::display(&v);
            if !quiet {
                eprintln!("{line}");
            }
            log.info(&line);
        });
    }
    let json = opts.json;
    let print_log = opts.log.clone().filter(|_| quiet);
    engine.on_print(move |s| {
        if let Some(log) = &print_log {
            log.info(s);
        } else if json {
            eprintln!("{s}");
        } else {
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "{s}");
        }
    });
    {
        let st = state.clone();
        engine.on_progress(move |ops| {
            if ops % 128 == 0 && Instant::now() >= st.deadline {
                *st.stop.borrow_mut() = Some(Stop::Deadline);
                return Some(Dynamic::UNIT);
            }
            None
        });
    }
    invoke::register(&mut engine, state.clone());
    pages::register(&mut engine, state.clone(), home.clone());
    state::register(&mut engine, state.clone());
    register_sleep(&mut engine, Some(state.clone()));
    register_exit(&mut engine, state.clone(), &name);
    register_sync(&mut engine, home, opts.log.as_ref().map(|l| l.requests.clone()));

    // Plain variables, not constants: the script may change them (`args.page = 2`), and Rhai
    // panics on some assignments into a constant.
    let mut scope = Scope::new();
    scope.push("args", args);
    scope.push("input", input);
    if let Some(request) = &opts.request {
        let value = json_to_script(request).map_err(|what| ScriptError::InputTooLarge { what: what.to_string() })?;
        scope.push("request", value);
    }
    if let Some(log) = &opts.log {
        let mut run = Map::new();
        run.insert("id".into(), log.id.clone().into());
        run.insert("trigger".into(), log.trigger.clone().into());
        scope.push("run", run);
    }
    zoho::push(&mut scope);
    let names: Vec<String> = scope.iter_raw().map(|(n, ..)| n.to_string()).collect();
    let kept_ast = match (kept_path, reused) {
        (Some(path), Some(r)) => r.compiled(path, &names),
        _ => None,
    };
    let ast = match kept_ast {
        Some(ast) => ast,
        None => {
            let ast = Rc::new(
                engine_boundary(|| engine.compile_with_scope(&scope, &source))
                    .map_err(|m| internal_error(&name, &m))?
                    .map_err(|e| match e.err_type() {
                        rhai::ParseErrorType::VariableUndefined(var) => {
                            undefined_variable(&name, var, &positions.at(e.position()))
                        }
                        other => ScriptError::Syntax {
                            name: name.clone(),
                            at: positions.at(e.position()),
                            message: other.to_string(),
                        },
                    })?,
            );
            if let (Some(path), Some(r)) = (kept_path, reused) {
                r.keep_compiled(path, names, ast.clone());
            }
            ast
        }
    };
    let result = engine_boundary(|| engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast));
    if let (Some(log), Ok(Ok(v))) = (&opts.log, &result) {
        log.set_result(serde_json::from_str(&builtins::to_json(v)).unwrap_or(serde_json::Value::Null));
    }
    let stop = state.stop.borrow_mut().take();
    let result = match result {
        Ok(r) => r,
        // A deadline or fatal stop recorded before the panic still decides the outcome.
        Err(m) if stop.is_none() => return Err(internal_error(&name, &m).into()),
        Err(_) => Ok(Dynamic::UNIT),
    };
    if opts.exit_after {
        // The process ends right after: skip tearing down the engine and the runtime, but drop
        // every secret first so that each is zeroized (the vault's key, cached credentials).
        state.invoker.forget_secrets();
        std::mem::forget(engine);
        std::mem::forget(state);
    } else if let Some(r) = reused {
        // The engine's run functions still hold this run's state until the next run replaces
        // them: the run's own handles go now (the worker's kept connections stay in `Reuse`,
        // checked against the vault by the next run: see `invoke::HandleCache`).
        state.invoker.forget_secrets();
        *r.engine.borrow_mut() = Some(KeptEngine { zone, engine, slot });
    }
    match (result, stop) {
        (_, Some(Stop::Fatal(e))) => Err(e),
        (_, Some(Stop::Exit(0))) => Ok(None),
        (_, Some(Stop::Exit(n))) => Err(Error::Exit(n)),
        (_, Some(Stop::Deadline)) => Err(ScriptError::TimeLimit { name, secs: opts.timeout.as_secs_f64() }.into()),
        (Ok(v), None) => Ok(render(&v, opts.json)),
        (Err(e), None) => Err(uncaught(&name, *e, &positions).into()),
    }
}

/// The org's time zone: `[deluge] time_zone` of `linkrun.toml`, else the machine's; a name the
/// time-zone database lacks is an error naming the file, the key and the value (exit 2).
fn org_zone(home: &Home) -> Result<zone::Zone> {
    let config = crate::config::Config::load(home)?;
    let Some(name) = config.deluge.time_zone else {
        return Ok(deluge_time::machine_zone());
    };
    deluge_time::parse_zone(&name).ok_or_else(|| {
        crate::config::ConfigError::Invalid {
            path: crate::config::Config::path(home),
            message: format!(
                "`[deluge] time_zone` is `{name}`, which is not an IANA time zone name such as `Europe/Berlin` or `Asia/Kolkata`"
            ),
        }
        .into()
    })
}

/// Turns the script's last value into stdout text: strings as they are, unit as nothing (null
/// with `--json`), everything else as JSON.
fn render(v: &Dynamic, json: bool) -> Option<String> {
    if v.is_unit() && !json {
        return None;
    }
    if !json && let Some(s) = v.read_lock::<rhai::ImmutableString>() {
        return Some(s.to_string());
    }
    Some(builtins::to_json(v))
}

/// The error an uncaught exception or engine error ends the run with: exit 4 for a `connection`
/// error raised by `invoke_url`, exit 1 otherwise.
fn uncaught(name: &str, e: EvalAltResult, positions: &Positions) -> ScriptError {
    // An error raised inside a script function arrives wrapped once per call level: report the
    // original (a `connection` error stays exit 4), at the place it was raised.
    let mut e = e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = e {
        e = *inner;
    }
    let at = positions.at(e.position());
    let name = name.to_string();
    match e {
        EvalAltResult::ErrorRuntime(v, _) => {
            if let Some(m) = v.read_lock::<Map>() {
                let kind = m.get("kind").map(|k| k.to_string()).unwrap_or_default();
                let message = m.get("message").map(|k| k.to_string()).unwrap_or_else(|| builtins::to_json(&v));
                if kind == "connection" {
                    return ScriptError::UncaughtConnection { name, at, message };
                }
                if !kind.is_empty() {
                    return ScriptError::Uncaught { name, at, kind, message };
                }
            }
            ScriptError::Threw { name, at, value: builtins::display(&v) }
        }
        EvalAltResult::ErrorFunctionNotFound(signature, _) => {
            let (function, types) = script_signature(&signature);
            ScriptError::NoSuchFunction { name, function, types, at }
        }
        EvalAltResult::ErrorVariableNotFound(var, pos) => undefined_variable(&name, &var, &positions.at(pos)),
        EvalAltResult::ErrorTooManyOperations(_) => ScriptError::TooManyOperations { name, at },
        other => ScriptError::Failed { name, at, message: other.unwrap_inner().to_string() },
    }
}

/// The error for a variable used before it is defined (at compile time with strict variables,
/// or at run time): not a syntax error. `args` and `input` inside a function get their own fix,
/// since functions do not see the script's variables.
fn undefined_variable(name: &str, var: &str, at: &str) -> ScriptError {
    let (name, var, at) = (name.to_string(), var.to_string(), at.to_string());
    if var == "args" || var == "input" {
        return ScriptError::ScriptVariableInFunction { name, var, at };
    }
    ScriptError::UndefinedVariable { name, var, at }
}

/// A Rhai "function not found" signature (`put (map, &str | ImmutableString | String, i64)`) as
/// the function's name and its argument types as scripts call them (`put`, `map, string, int`).
fn script_signature(signature: &str) -> (String, String) {
    let Some((function, rest)) = signature.split_once(" (") else {
        return (signature.to_string(), String::new());
    };
    let list = rest.strip_suffix(')').unwrap_or(rest);
    let types: Vec<&str> =
        if list.trim().is_empty() { Vec::new() } else { list.split(", ").map(script_type).collect() };
    (function.to_string(), types.join(", "))
}

/// A Rust type name from a Rhai signature as the type a script writes.
fn script_type(rust: &str) -> &str {
    match rust.trim() {
        "&str | ImmutableString | String" | "&str" | "String" | "ImmutableString" | "string" => "string",
        "i64" | "i32" | "INT" | "int" => "int",
        "f64" | "f32" | "FLOAT" | "float" => "float",
        "bool" => "bool",
        "char" => "char",
        "map" | "Map" | "rhai::Map" => "map",
        "array" | "Array" | "rhai::Array" => "array",
        "()" => "()",
        "Fn" | "FnPtr" => "Fn",
        "timestamp" | "Instant" => "timestamp",
        "range" | "Range<i64>" => "range",
        "range=" | "RangeInclusive<i64>" => "inclusive range",
        other => other,
    }
}

/// A JSON value (`--arg-json`, `--input`) as a script value, within the data limits.
fn json_to_script(v: &serde_json::Value) -> std::result::Result<Dynamic, DataError> {
    let d = rhai::serde::to_dynamic(v).map_err(|e| DataError::NotScriptValue { detail: e.to_string() })?;
    check_data_size(&d)?;
    Ok(d)
}

/// The status a run's record gets from how the script ended, and the error message: `exit(0)`
/// is `ok`, the wall-clock limit `timed_out`, any other error `failed`.
pub fn outcome_status(outcome: &Result<Option<String>>) -> (crate::runs::RunStatus, Option<String>) {
    use crate::runs::RunStatus;
    match outcome {
        Ok(_) | Err(Error::Exit(0)) => (RunStatus::Ok, None),
        Err(e @ Error::Script(ScriptError::TimeLimit { .. })) => (RunStatus::TimedOut, Some(e.to_string())),
        Err(e) => (RunStatus::Failed, Some(e.to_string())),
    }
}

/// The exit codes a script may give `exit`: 0, 1, and 5 to 125 (2 to 4 are linkrun's own usage,
/// vault and connection errors; shells give codes past 125 their own meanings).
pub fn allowed_exit_code(n: rhai::INT) -> bool {
    n == 0 || n == 1 || (5..=125).contains(&n)
}

/// Registers `exit(n)` (and `exit()`, `exit(0)`), replacing Rhai's own, which ends the script
/// with a result: it stops the script from any depth, no `try` catches it, nothing is printed,
/// and linkrun exits with n. A code a script may not use stops the script with an error.
/// `respond(status)`, `respond(status, body)`, `respond(status, body, headers)` and
/// `respond(#{ status, headers, body })`: the answer a sync webhook gives (the last call wins).
/// The value is also the call's result, so `respond(...)` can end a script.
fn register_respond(engine: &mut Engine, log: &crate::runs::RunLog) {
    fn keep(
        log: &crate::runs::RunLog,
        status: rhai::INT,
        body: Dynamic,
        headers: Map,
    ) -> Result<Map, Box<EvalAltResult>> {
        if !(100..=599).contains(&status) {
            return Err(format!("respond: status {status} is not an HTTP status (100 to 599)").into());
        }
        let mut m = Map::new();
        m.insert("status".into(), Dynamic::from_int(status));
        m.insert("headers".into(), headers.into());
        m.insert("body".into(), body);
        let json =
            serde_json::from_str(&builtins::to_json(&Dynamic::from_map(m.clone()))).unwrap_or(serde_json::Value::Null);
        log.set_response(json);
        Ok(m)
    }
    let l = log.clone();
    engine.register_fn("respond", move |status: rhai::INT| keep(&l, status, Dynamic::from(""), Map::new()));
    let l = log.clone();
    engine.register_fn("respond", move |status: rhai::INT, body: Dynamic| keep(&l, status, body, Map::new()));
    let l = log.clone();
    engine
        .register_fn("respond", move |status: rhai::INT, body: Dynamic, headers: Map| keep(&l, status, body, headers));
    let l = log.clone();
    engine.register_fn("respond", move |m: Map| -> Result<Map, Box<EvalAltResult>> {
        let status = match m.get("status") {
            None => 200,
            Some(s) => s.as_int().map_err(|_| "respond: `status` must be a number such as 200")?,
        };
        let headers = match m.get("headers") {
            None => Map::new(),
            Some(h) => h.clone().try_cast::<Map>().ok_or("respond: `headers` must be a map of names to values")?,
        };
        keep(&l, status, m.get("body").cloned().unwrap_or_else(|| Dynamic::from("")), headers)
    });
}

/// `sync_run(name)` and `sync_run(name, #{ full, dry_run, set: #{ KEY: VALUE } })`: runs a
/// declared sync (see `syncs/README.md`) and returns `#{ sync, run_id, objects, failures }`;
/// its requests go into this run's trace. A sync that cannot run or stops throws.
fn register_sync(engine: &mut Engine, home: &Home, trace: Option<crate::runs::RequestLog>) {
    fn call(
        home: &Home,
        name: &str,
        options: &Map,
        trace: Option<crate::runs::RequestLog>,
    ) -> std::result::Result<Dynamic, Box<EvalAltResult>> {
        let flag = |k: &str| options.get(k).and_then(|v| v.as_bool().ok()).unwrap_or(false);
        let sets: Vec<(String, String)> = options
            .get("set")
            .and_then(|v| {
                v.read_lock::<Map>().map(|m| m.iter().map(|(k, v)| (k.to_string(), builtins::display(v))).collect())
            })
            .unwrap_or_default();
        let def = crate::sync::def::find(home, name, &sets).map_err(|e| e.to_string())?;
        let id = crate::store::new_id(crate::runs::now_ms());
        let flags = crate::sync::RunFlags { full: flag("full"), dry_run: flag("dry_run") };
        let report = crate::sync::execute(home, &def, &id, trace, flags, &|_, _| {}).map_err(|e| e.to_string())?;
        json_to_script(&report.to_json()).map_err(|e| e.to_string().into())
    }
    let (h, t) = (home.clone(), trace.clone());
    engine.register_fn("sync_run", move |name: ImmutableString| call(&h, &name, &Map::new(), t.clone()));
    let h = home.clone();
    engine.register_fn("sync_run", move |name: ImmutableString, options: Map| call(&h, &name, &options, trace.clone()));
}

fn register_exit(engine: &mut Engine, state: Rc<RunState>, name: &str) {
    let (st, shown) = (state.clone(), name.to_string());
    engine.register_fn("exit", move |ctx: NativeCallContext| -> Result<(), Box<EvalAltResult>> {
        Err(exit_stop(&st, &shown, &Dynamic::from_int(0), ctx.call_position()))
    });
    let (st, shown) = (state, name.to_string());
    engine.register_fn("exit", move |ctx: NativeCallContext, code: Dynamic| -> Result<(), Box<EvalAltResult>> {
        Err(exit_stop(&st, &shown, &code, ctx.call_position()))
    });
}

/// Records the stop `exit(code)` asks for and returns the uncatchable error that unwinds the
/// script.
fn exit_stop(state: &RunState, name: &str, code: &Dynamic, pos: Position) -> Box<EvalAltResult> {
    match code.as_int() {
        Ok(n) if allowed_exit_code(n) => state.halt(Stop::Exit(n as i32), pos),
        _ => {
            let shown = if code.is_string() { format!("{code:?}") } else { code.to_string() };
            let e = ScriptError::BadExitCode { name: name.to_string(), code: shown, at: state.positions.at(pos) };
            state.halt(Stop::Fatal(e.into()), pos)
        }
    }
}

fn pos_text(p: Position) -> String {
    match (p.line(), p.position()) {
        (Some(l), Some(c)) => format!("line {l}, column {c}"),
        (Some(l), None) => format!("line {l}"),
        _ => "the end of the script".to_string(),
    }
}

/// Parses `KEY=JSON` (used by `--arg-json`): a value that is not JSON is a usage error naming
/// the key and the JSON error.
pub fn parse_json_pair(s: &str) -> Result<(String, serde_json::Value)> {
    let (k, v) = parse_pair(s, "--arg-json")?;
    let value = serde_json::from_str(&v).map_err(|source| ScriptError::ArgNotJson { key: k.clone(), source })?;
    Ok((k, value))
}

/// Reads the `--input` JSON: a regular file of at most [`MAX_SCRIPT_SIZE`], or standard input
/// for `-`; unreadable or not JSON is a usage error.
pub fn read_input(path: &std::path::Path) -> Result<serde_json::Value> {
    let text = if path.as_os_str() == "-" {
        crate::files::read_stdin_capped(STDIN_NAME, MAX_SCRIPT_SIZE)
    } else {
        crate::files::read_text_capped(path, MAX_SCRIPT_SIZE)
    }
    .map_err(|e| match e {
        crate::files::ReadError::Io { path, reason } => ScriptError::InputUnreadable { path, reason },
        source => ScriptError::InputNotText { source },
    })?;
    serde_json::from_str(&text).map_err(|source| {
        let path = if path.as_os_str() == "-" { STDIN_NAME.into() } else { path.display().to_string() };
        ScriptError::InputNotJson { path, source }.into()
    })
}

/// Parses `KEY=VALUE` (used by `--arg`).
pub fn parse_pair(s: &str, flag: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(ScriptError::NotKeyValue { text: s.to_string(), flag: flag.to_string() }.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_json_of_more_items_than_a_value_may_hold_is_a_catchable_too_large_error() {
        let engine = engine();
        let mut scope = Scope::new();
        scope.push("text", format!("[{}0]", "0,".repeat(MAX_ARRAY_SIZE)));
        let got = engine
            .eval_with_scope::<String>(
                &mut scope,
                "let k = \"parsed\"; try { parse_json(text); } catch (e) { k = e.kind + \"|\" + e.message; } k",
            )
            .unwrap();
        assert_eq!(
            got,
            "too_large|the JSON given to parse_json has 1000001 array items, more than the 1000000 a script value may hold: parse a smaller part of it"
        );
        assert_eq!(engine.eval::<rhai::INT>("parse_json(\"[1, [2, 3], {\\\"a\\\": 4}]\").len()").unwrap(), 3);
    }

    #[test]
    fn data_sizes_count_nested_values_like_the_engine() {
        let v: Dynamic = serde_json::from_str(r#"{"a": [1, [2, 3]], "b": {"c": "xyz"}, "d": "ab"}"#).unwrap();
        assert_eq!(data_sizes(&v), (4, 4, 5));
        assert!(check_data_size(&v).is_ok());
        let wide = Dynamic::from_array(vec![Dynamic::from_array(vec![Dynamic::UNIT; MAX_ARRAY_SIZE / 2]); 2]);
        assert_eq!(
            check_data_size(&wide).unwrap_err().to_string(),
            "1000002 array items, more than the 1000000 a script value may hold"
        );
    }

    #[test]
    fn function_signatures_read_as_script_types_and_exit_codes_are_checked() {
        let sig = script_signature("put (map, &str | ImmutableString | String, i64)");
        assert_eq!(sig, ("put".to_string(), "map, string, int".to_string()));
        let sig = script_signature("f (f64, array, (), bool, char, Fn, timestamp, RangeInclusive<i64>)");
        assert_eq!(sig.1, "float, array, (), bool, char, Fn, timestamp, inclusive range");
        assert_eq!(script_signature("g ()"), ("g".to_string(), String::new()));
        let allowed: Vec<rhai::INT> = (-1..=130).filter(|n| allowed_exit_code(*n)).collect();
        assert_eq!(allowed, [0, 1].into_iter().chain(5..=125).collect::<Vec<_>>());
    }

    #[test]
    fn a_panic_inside_the_engine_boundary_is_an_error() {
        assert_eq!(engine_boundary(|| 7).unwrap(), 7);
        let e = engine_boundary(|| -> () { panic!("deliberate: {}", "x".repeat(500)) }).unwrap_err().message;
        assert!(e.starts_with("deliberate: xxx") && e.ends_with("...") && e.len() < 210, "{e}");
        // Rhai 1.27 reaches `unreachable!` assigning into a constant it has folded into the code.
        let engine = engine();
        match engine_boundary(|| engine.eval::<Dynamic>("const C = #{a: 1}; C.a = 2; C")) {
            Err(m) => assert!(m.message.contains("cannot assign to expression"), "{m}"),
            Ok(r) => assert!(r.is_err(), "a constant must not change"),
        }
    }
}
