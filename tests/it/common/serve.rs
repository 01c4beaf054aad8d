//! `linkrun serve` as a test starts it: on a free loopback port, its stderr (the log) collected
//! line by line, stopped by SIGTERM or killed with SIGKILL.

use std::io::BufRead as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Env;
use super::oidc::{Reply, http};

/// A running `linkrun serve`.
pub struct Serve {
    pub child: std::process::Child,
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Serve {
    /// `linkrun serve --bind 127.0.0.1:0 ARGS` in the env's working folder; returns once it listens.
    pub fn start(env: &Env, args: &[&str]) -> Serve {
        let mut all = vec!["serve", "--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = env.spawn(&all);
        let stderr = child.stderr.take().expect("serve stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in std::io::BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    // `TIME listening: URL ...`, or with --json-logs `{"event":"listening","message":"URL ..."}`.
                    let json = serde_json::from_str::<serde_json::Value>(&line).ok();
                    let rest = match &json {
                        Some(v) if v["event"] == "listening" => v["message"].as_str().map(str::to_string),
                        _ => line.split("listening: ").nth(1).map(str::to_string),
                    };
                    if let Some(rest) = rest
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => Serve { child, base, log },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!("linkrun serve did not start:\n{}", log.lock().unwrap());
            }
        }
    }

    /// What serve wrote on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has `text` (30 s at most).
    pub fn wait_log(&self, text: &str) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let l = self.log();
            if l.contains(text) {
                return l;
            }
            assert!(Instant::now() < until, "serve never logged `{text}`:\n{l}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `METHOD PATH` with headers and a body.
    pub fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let h: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        http(method, &format!("{}{path}", self.base), &h, body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// POST a JSON body with the webhook key.
    pub fn post(&self, path: &str, key: &str, body: &str) -> Reply {
        self.send("POST", path, &[("X-Linkrun-Key", key), ("Content-Type", "application/json")], body)
    }

    /// SIGTERM, then waits for the exit; returns the log.
    pub fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(50));
        self.log()
    }

    /// SIGKILL (`kill -9`), then waits.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The header value of `name` in a reply.
pub fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// `trigger add FILE --json` of a trigger written into the env's working folder; returns the key
/// (empty for auth other than key).
pub fn add_trigger(env: &Env, file: &str, toml: &str) -> String {
    let p = env.write(file, toml);
    let out = env.run(&["trigger", "add", p.to_str().unwrap(), "--json"]);
    let doc: serde_json::Value = serde_json::from_str(out.ok()).unwrap();
    doc["key"].as_str().unwrap_or_default().to_string()
}

/// `runs list --json` with extra filters.
pub fn runs(env: &Env, filters: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["runs", "list", "--json", "--limit", "100000"];
    args.extend_from_slice(filters);
    let out = env.run(&args);
    serde_json::from_str::<Vec<serde_json::Value>>(out.ok()).unwrap()
}

/// Every file of the home, concatenated (for secret searches).
pub fn home_bytes(env: &Env) -> Vec<u8> {
    fn walk(dir: &std::path::Path, out: &mut Vec<u8>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Ok(b) = std::fs::read(&p) {
                out.extend_from_slice(&b);
            }
        }
    }
    let mut out = Vec::new();
    walk(env.home_path(), &mut out);
    out
}

/// Whether `secret` appears in `bytes`.
pub fn contains(bytes: &[u8], secret: &str) -> bool {
    bytes.windows(secret.len()).any(|w| w == secret.as_bytes())
}
