//! `state_get(key)` and `state_set(key, value)`: a small persistent key-value store for scripts'
//! checkpoints, scoped to the script's canonical path (so `a/sync.rhai` and `b/sync.rhai` keep
//! apart) and kept in the vault database (plain JSON, not sealed: nothing secret belongs there).
//! `state_set(key, ())` removes a key. `linkrun state list` and `linkrun state clear` manage it.
//! `--state-key NAME` scopes it to NAME instead; a script read from standard input has no path,
//! so its state calls are an error without one.
//!
//! Earlier builds keyed state by the file stem alone (`sync`); the first script of that stem
//! that runs adopts those values under its path (keys it already has are kept).

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, NativeCallContext};

use super::{RunState, Stop, builtins};
use crate::invoke::Failure;

fn vault_error(state: &RunState, f: Failure, ctx: &NativeCallContext) -> Box<EvalAltResult> {
    match f {
        Failure::Fatal(e) => state.halt(Stop::Fatal(e), ctx.call_position()),
        Failure::Invoke(e) => e.message.into(),
    }
}

/// The scope of one script's state: its canonical path (or `--state-key`), and the file stem
/// older versions used; or none, for a script from standard input without `--state-key`.
pub(crate) struct StateScope {
    /// `Err(script name)` when the script has no scope; the key is worked out (the path made
    /// canonical, a look at every folder on the way) at the first state call, not for every run.
    key: Result<std::cell::OnceCell<String>, String>,
    /// The script whose canonical path is the key, until it is worked out.
    path: Option<std::path::PathBuf>,
    legacy: String,
    adopted: Cell<bool>,
}

impl StateScope {
    /// The scope of the script at `path`.
    pub(crate) fn of(path: &Path) -> StateScope {
        StateScope {
            key: Ok(std::cell::OnceCell::new()),
            path: Some(path.to_path_buf()),
            legacy: path.file_stem().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            adopted: Cell::new(false),
        }
    }

    /// The scope `--state-key NAME` gives: NAME as it is.
    pub(crate) fn named(name: &str) -> StateScope {
        StateScope {
            key: Ok(std::cell::OnceCell::from(name.to_string())),
            path: None,
            legacy: String::new(),
            adopted: Cell::new(false),
        }
    }

    /// No scope: the state functions of the script `script` (its name in messages) fail.
    pub(crate) fn none(script: &str) -> StateScope {
        StateScope { key: Err(script.to_string()), path: None, legacy: String::new(), adopted: Cell::new(false) }
    }

    /// The stored scope name, after adopting values stored under the legacy name once per run.
    fn key(&self, vault: &mut crate::vault::Vault) -> Result<&str, crate::vault::VaultError> {
        let Ok(key) = &self.key else { return Ok("") };
        let key = key.get_or_init(|| self.path.as_deref().map(scope_key).unwrap_or_default());
        if !self.adopted.get() {
            vault.state_adopt(&self.legacy, key)?;
            self.adopted.set(true);
        }
        Ok(key)
    }

    /// The uncatchable error for `function` when the script has no scope.
    fn missing(&self, state: &RunState, function: &str, ctx: &NativeCallContext) -> Option<Box<EvalAltResult>> {
        let Err(script) = &self.key else { return None };
        let e = super::ScriptError::NoStateScope { name: script.clone(), function: function.to_string() };
        Some(state.halt(Stop::Fatal(e.into()), ctx.call_position()))
    }
}

/// The state scope of a script path: its canonical absolute path when it exists, else the path
/// as given (so `state clear` can name a script that was moved or deleted).
pub fn scope_key(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).to_string_lossy().into_owned()
}

/// Registers the two functions.
pub(crate) fn register(engine: &mut Engine, state: Rc<RunState>) {
    let st = state.clone();
    engine.register_fn(
        "state_get",
        move |ctx: NativeCallContext, key: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            if let Some(e) = st.state_scope.missing(&st, "state_get", &ctx) {
                return Err(e);
            }
            let vault = st.invoker.vault().map_err(|f| vault_error(&st, f, &ctx))?;
            let got = {
                let mut v = vault.borrow_mut();
                match st.state_scope.key(&mut v) {
                    Ok(scope) => v.state_get(scope, &key),
                    Err(e) => Err(e),
                }
            };
            match got {
                Ok(Some(text)) => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                    rhai::serde::to_dynamic(v)
                }
                Ok(None) => Ok(Dynamic::UNIT),
                Err(e) => Err(st.halt(Stop::Fatal(e.into()), ctx.call_position())),
            }
        },
    );
    let st = state;
    engine.register_fn(
        "state_set",
        move |ctx: NativeCallContext, key: ImmutableString, value: Dynamic| -> Result<(), Box<EvalAltResult>> {
            if let Some(e) = st.state_scope.missing(&st, "state_set", &ctx) {
                return Err(e);
            }
            let vault = st.invoker.vault().map_err(|f| vault_error(&st, f, &ctx))?;
            let text = if value.is_unit() { None } else { Some(builtins::to_json(&value)) };
            let result = {
                let mut v = vault.borrow_mut();
                match st.state_scope.key(&mut v) {
                    Ok(scope) => {
                        let scope = scope.to_string();
                        v.state_set(&scope, &key, text.as_deref())
                    }
                    Err(e) => Err(e),
                }
            };
            result.map_err(|e| st.halt(Stop::Fatal(e.into()), ctx.call_position()))
        },
    );
}
