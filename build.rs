//! Embeds every `connections/*.toml` into the binary as the built-in service catalog.

use std::fmt::Write as _;

fn main() {
    println!("cargo:rerun-if-changed=connections");
    // A build without its prebuilt services would ship a binary that knows none: fail instead.
    let dir = std::fs::read_dir("connections").unwrap_or_else(|e| {
        panic!("cannot read `connections/` (the prebuilt services embedded in the binary): {e}; build from the repository root")
    });
    let mut entries: Vec<_> =
        dir.map(|e| e.unwrap_or_else(|e| panic!("cannot list `connections/`: {e}")).path()).collect();
    entries.retain(|p| p.extension().is_some_and(|x| x == "toml"));
    entries.sort();
    assert!(!entries.is_empty(), "`connections/` holds no *.toml service: the binary would have no prebuilt services");
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
