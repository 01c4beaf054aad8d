//! `state_get(key)` and `state_set(key, value)`: a small persistent key-value store for scripts'
//! checkpoints, scoped to the script's name (its file stem) and kept in the vault database
//! (plain JSON, not sealed: nothing secret belongs there). `state_set(key, ())` removes a key.

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

/// Registers the two functions.
pub(crate) fn register(engine: &mut Engine, state: Rc<RunState>) {
    let st = state.clone();
    engine.register_fn(
        "state_get",
        move |ctx: NativeCallContext, key: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
            let vault = st.invoker.vault().map_err(|f| vault_error(&st, f, &ctx))?;
            let got = vault.borrow().state_get(&st.script_name, &key);
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
            let vault = st.invoker.vault().map_err(|f| vault_error(&st, f, &ctx))?;
            let text = if value.is_unit() { None } else { Some(builtins::to_json(&value)) };
            let result = vault.borrow_mut().state_set(&st.script_name, &key, text.as_deref());
            result.map_err(|e| st.halt(Stop::Fatal(e.into()), ctx.call_position()))
        },
    );
}
