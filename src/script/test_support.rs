//! Test helpers shared by the vocabulary modules' unit tests: a Rhai snippet run on the real
//! engine (with the `zoho` constant in scope), its result as `info` shows it, or `error: ...`.

use rhai::{Dynamic, EvalAltResult};

use super::builtins::display;

/// Runs `src` on an engine whose org time zone is `zone`.
pub fn run_in(zone: super::zone::Zone, src: &str) -> String {
    shown(super::engine_in(zone), src)
}

/// Runs `src` on [`super::engine`] (the machine's time zone).
pub fn run(src: &str) -> String {
    shown(super::engine(), src)
}

fn shown(engine: rhai::Engine, src: &str) -> String {
    let mut scope = rhai::Scope::new();
    super::zoho::push(&mut scope);
    match engine.eval_with_scope::<Dynamic>(&mut scope, src) {
        Ok(v) => display(&v),
        Err(e) => match e.unwrap_inner() {
            EvalAltResult::ErrorRuntime(v, _) => format!("error: {}", display(v)),
            other => format!("error: {other}"),
        },
    }
}

/// Asserts each snippet's result with [`run`].
#[track_caller]
pub fn check(cases: &[(&str, &str)]) {
    for (src, want) in cases {
        assert_eq!(run(src), *want, "{src}");
    }
}
