//! Golden tests: each `tests/golden/<case>/input.dg` is parsed and its S-expression compared
//! with `expected.txt`. For inputs that fail, the expected text is the rendered report.
//! `UPDATE_GOLDEN=1 cargo test -p deluge` rewrites the expected files.

use std::fs;
use std::path::Path;

fn render(src: &str) -> String {
    match deluge::parse(src) {
        Ok(p) => p.to_sexpr(),
        Err(errs) => errs.iter().map(|e| deluge::report(src, "input.dg", e)).collect(),
    }
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut dirs: Vec<_> =
        fs::read_dir(&root).expect("golden dir").map(|e| e.expect("entry").path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no golden cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let src = fs::read_to_string(dir.join("input.dg")).expect("input.dg");
        let got = render(&src);
        let exp_path = dir.join("expected.txt");
        if update {
            fs::write(&exp_path, &got).expect("write expected");
            continue;
        }
        let expected = fs::read_to_string(&exp_path).unwrap_or_default();
        if got != expected {
            failures.push(format!("--- {} ---\nexpected:\n{expected}\ngot:\n{got}", dir.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
