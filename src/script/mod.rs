//! Running a Rhai script: the engine, its limits, the run's outcome and exit codes.
//!
//! The engine is built from a raw engine plus the standard package (no module resolver: scripts
//! cannot import files), with `eval` disabled, strict variables, and limits on operations, call
//! depth, expression depth and string/array/map sizes. A wall-clock deadline (`--timeout`) is
//! checked in `on_progress`, and every HTTP call gets the smaller of its own timeout and the time
//! left, because `on_progress` does not tick during a native call.
//!
//! The script runs on the calling thread; `invoke_url` drives a current-thread tokio runtime with
//! `block_on` (no cross-thread wake-ups), sharing one [`Invoker`] and its HTTP clients.

pub mod builtins;
pub mod invoke;
pub mod state;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::packages::Package;
use rhai::{Dynamic, Engine, EvalAltResult, Map, Position, Scope};

use crate::home::Home;
use crate::invoke::{Invoker, InvokerOptions};
use crate::{Error, Result};

/// Default whole-script wall clock.
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);

/// How to run a script.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The script file.
    pub path: PathBuf,
    /// `--arg KEY=VALUE` pairs.
    pub args: Vec<(String, String)>,
    /// Print the result as JSON; `print` goes to stderr.
    pub json: bool,
    /// Whole-script wall clock.
    pub timeout: Duration,
    /// Trace requests on stderr.
    pub verbose: bool,
    /// Skip tearing down the engine, runtime, clients and vault after the run: for a process that
    /// exits right after (the CLI), this saves closing work nobody waits for.
    pub exit_after: bool,
}

/// Why a run stopped early in a way the script cannot catch.
#[derive(Debug)]
pub(crate) enum Stop {
    /// The wall clock ran out.
    Deadline,
    /// The vault or catalog could not be opened.
    Fatal(Error),
}

/// State shared by the script's native functions.
pub(crate) struct RunState {
    pub(crate) invoker: Invoker,
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) deadline: Instant,
    /// How long `invoke_url` polls a request before sleeping on the network.
    pub(crate) spin: Duration,
    pub(crate) stop: RefCell<Option<Stop>>,
    /// Whose `state_get` / `state_set` values these are.
    pub(crate) state_scope: state::StateScope,
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
fn spin_window() -> Duration {
    std::env::var("LINKRUN_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_micros)
        .unwrap_or(DEFAULT_SPIN)
}

/// Builds the sandboxed engine with the limits of the module doc.
pub fn engine() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(ScriptPackage::new().as_shared_module());
    engine
        .set_max_operations(1_000_000_000)
        .set_max_call_levels(64)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(32 * 1024 * 1024)
        .set_max_array_size(1_000_000)
        .set_max_map_size(1_000_000)
        .set_strict_variables(true)
        .disable_symbol("eval");
    builtins::register(&mut engine);
    engine
}

/// Runs a script; returns what goes on stdout (the result), or the error that ends the run.
pub fn run(home: &Home, opts: &RunOptions) -> Result<Option<String>> {
    let source = std::fs::read_to_string(&opts.path).map_err(|e| {
        Error::Usage(format!("cannot read the script `{}`: {}; check the path", opts.path.display(), io_reason(&e)))
    })?;
    let name = opts.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
    let state = Rc::new(RunState {
        invoker: Invoker::new(home.clone(), InvokerOptions { verbose: opts.verbose, ..Default::default() }),
        runtime,
        deadline: started + opts.timeout,
        spin: spin_window(),
        stop: RefCell::new(None),
        state_scope: state::StateScope::of(&opts.path),
    });

    let mut engine = engine();
    let mut args = Map::new();
    for (k, v) in &opts.args {
        args.insert(k.as_str().into(), Dynamic::from(v.clone()));
    }
    {
        let args = args.clone();
        engine.register_fn("args", move || args.clone());
    }
    let json = opts.json;
    engine.on_print(move |s| {
        if json {
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
    state::register(&mut engine, state.clone());

    let mut scope = Scope::new();
    scope.push_constant("args", args);
    let ast = engine.compile_with_scope(&scope, &source).map_err(|e| {
        Error::Script(format!(
            "script `{name}` has a syntax error at {}: {}; fix it and run again",
            pos_text(e.position()),
            e.err_type()
        ))
    })?;
    let result = engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast);
    let stop = state.stop.borrow_mut().take();
    if opts.exit_after {
        // The process ends right after: skip tearing down the engine and the runtime, but drop
        // every secret first so that each is zeroized (the vault's key, cached credentials).
        state.invoker.forget_secrets();
        std::mem::forget(engine);
        std::mem::forget(state);
    }
    match (result, stop) {
        (_, Some(Stop::Fatal(e))) => Err(e),
        (_, Some(Stop::Deadline)) => Err(Error::Script(format!(
            "script `{name}` ran longer than its time limit of {} s: raise it with --timeout SECS",
            opts.timeout.as_secs_f64()
        ))),
        (Ok(v), None) => Ok(render(&v, opts.json)),
        (Err(e), None) => Err(uncaught(&name, *e)),
    }
}

/// Turns the script's last value into stdout text: strings as they are, unit as nothing (null
/// with `--json`), everything else as JSON.
fn render(v: &Dynamic, json: bool) -> Option<String> {
    if v.is_unit() && !json {
        return None;
    }
    if !json {
        if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
            return Some(s.to_string());
        }
    }
    Some(builtins::to_json(v))
}

/// The error an uncaught exception or engine error ends the run with: exit 4 for a `connection`
/// error raised by `invoke_url`, exit 1 otherwise.
fn uncaught(name: &str, e: EvalAltResult) -> Error {
    // An error raised inside a script function arrives wrapped once per call level: report the
    // original (a `connection` error stays exit 4), at the place it was raised.
    let mut e = e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = e {
        e = *inner;
    }
    let at = pos_text(e.position());
    match e {
        EvalAltResult::ErrorRuntime(v, _) => {
            if let Some(m) = v.read_lock::<Map>() {
                let kind = m.get("kind").map(|k| k.to_string()).unwrap_or_default();
                let message = m.get("message").map(|k| k.to_string()).unwrap_or_else(|| builtins::to_json(&v));
                if kind == "connection" {
                    return Error::Connection(format!("{message} (uncaught in `{name}` at {at})"));
                }
                if !kind.is_empty() {
                    return Error::Script(format!(
                        "{message} (uncaught `{kind}` error in `{name}` at {at}; catch it with try/catch)"
                    ));
                }
            }
            Error::Script(format!("script `{name}` threw {} at {at}", builtins::display(&v)))
        }
        EvalAltResult::ErrorTooManyOperations(_) => Error::Script(format!(
            "script `{name}` ran more than the limit of 1,000,000,000 operations at {at}: look for an endless loop"
        )),
        other => Error::Script(format!("script `{name}` failed at {at}: {}", other.unwrap_inner())),
    }
}

fn pos_text(p: Position) -> String {
    match (p.line(), p.position()) {
        (Some(l), Some(c)) => format!("line {l}, column {c}"),
        (Some(l), None) => format!("line {l}"),
        _ => "the end of the script".to_string(),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Parses `KEY=VALUE` (used by `--arg`).
pub fn parse_pair(s: &str, flag: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Error::Usage(format!("`{s}` is not KEY=VALUE: write {flag} NAME=VALUE"))),
    }
}
