//! The files users start from work: the example services install, and `scripts/hello.rhai` (the
//! main job until the sandbox exists) runs without network.

use crate::common::Env;

#[test]
fn example_services_install_and_show() {
    let env = Env::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("connections/examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "toml") {
            env.run(&["service", "add", p.to_str().unwrap()]).ok();
            names.push(p);
        }
    }
    assert!(names.len() >= 3);
    let list: serde_json::Value = serde_json::from_str(env.run(&["service", "list", "--json"]).ok()).unwrap();
    let linked: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["link_name"].as_str().unwrap()).collect();
    for name in ["acme_api", "echo_api", "my_servicenow"] {
        assert!(linked.contains(&name), "{name} in {linked:?}");
    }
}

#[test]
fn hello_script_runs_offline() {
    let env = Env::new();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/hello.rhai");
    let out = env.run(&["run", script.to_str().unwrap(), "--arg", "name=Ada"]);
    let v: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(v["greeting"], "Hello, Ada!");
    assert_eq!(v["invoke_url_outcome"], "bad_request");
    assert_eq!(v["lead"]["Email"], "ada@zylker.example");
    assert_eq!(out.stderr, "running hello.rhai for Ada\n");
}
