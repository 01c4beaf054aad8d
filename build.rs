//! Embeds every `connections/*.toml` into the binary as the built-in service catalog.

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=connections");
    let mut entries: Vec<_> = std::fs::read_dir("connections")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.retain(|p| p.extension().is_some_and(|x| x == "toml"));
    entries.sort();
    let mut out = String::from(
        "/// Built-in services: (file name, TOML text).\npub const BUILTIN_SERVICES: &[(&str, &str)] = &[\n",
    );
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        let abs = std::fs::canonicalize(&p).expect("canonical path of a connections/ file");
        writeln!(out, "    ({name:?}, include_str!({:?})),", abs.display().to_string()).expect("write");
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("builtin_services.rs");
    std::fs::write(dest, out).expect("write builtin_services.rs");
}
