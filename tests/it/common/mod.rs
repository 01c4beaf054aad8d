//! Shared test support: [`Env`] runs the real `linkrun` binary with a temporary home, a wiped
//! environment and a working folder of its own, records every output, and on drop searches all of
//! it (and the vault files) for the secrets the test registered. [`Server`] is a recording HTTP
//! server on 127.0.0.1.

pub mod oauth1;
pub mod oidc;
pub mod sandbox;
pub mod serve;
pub mod server;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use server::{Recorded, Server};

/// The output of one command.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        &self.stdout
    }

    /// Asserts the exit code and returns the stderr error line without `error: `.
    #[track_caller]
    pub fn fails(&self, code: i32) -> String {
        assert_eq!(self.code, code, "expected exit {code}\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stderr.trim_end().strip_prefix("error: ").unwrap_or(self.stderr.trim_end()).to_string()
    }
}

/// A test environment.
pub struct Env {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
    envs: RefCell<Vec<(String, String)>>,
    secrets: RefCell<Vec<String>>,
    outputs: RefCell<Vec<String>>,
}

impl Default for Env {
    fn default() -> Self {
        Env::new()
    }
}

impl Env {
    pub fn new() -> Env {
        Env {
            home: tempfile::tempdir().expect("temp home"),
            work: tempfile::tempdir().expect("temp work dir"),
            envs: RefCell::new(Vec::new()),
            secrets: RefCell::new(Vec::new()),
            outputs: RefCell::new(Vec::new()),
        }
    }

    /// Sets an environment variable for every later command.
    pub fn set_env(&self, k: &str, v: &str) {
        self.envs.borrow_mut().retain(|(n, _)| n != k);
        self.envs.borrow_mut().push((k.into(), v.into()));
    }

    /// Removes an environment variable set with `set_env`.
    pub fn unset_env(&self, k: &str) {
        self.envs.borrow_mut().retain(|(n, _)| n != k);
    }

    /// Registers a secret: it must appear in no output and in no vault file.
    pub fn secret(&self, s: &str) -> String {
        self.secrets.borrow_mut().push(s.to_string());
        s.to_string()
    }

    /// Writes a file in the working folder and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.work.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }

    pub fn home_path(&self) -> &Path {
        self.home.path()
    }

    /// Runs `linkrun ARGS`.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with(args, &[])
    }

    /// `linkrun ARGS` in the working folder, with a wiped environment but `PATH`, this home and
    /// the variables of [`Env::set_env`]; stdin empty, stdout and stderr piped.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("linkrun"));
        cmd.args(args)
            .current_dir(self.work.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LINKRUN_HOME", self.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in self.envs.borrow().iter() {
            cmd.env(k, v);
        }
        cmd
    }

    /// Keeps a finished command's outputs for [`Env::assert_no_secrets`]. The command line itself
    /// may hold a secret (`--param key=VALUE`): only its first word is recorded.
    fn record(&self, args: &[&str], o: std::process::Output) -> Out {
        let out = Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        };
        self.outputs.borrow_mut().push(format!(
            "$ linkrun {}\n{}\n{}",
            args.first().copied().unwrap_or_default(),
            out.stdout,
            out.stderr
        ));
        out
    }

    /// Runs `linkrun ARGS` with extra environment variables.
    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Out {
        let mut cmd = self.command(args);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let o = cmd.output().expect("run linkrun");
        self.record(args, o)
    }

    /// Runs `linkrun ARGS` with `stdin` as its standard input.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Out {
        use std::io::Write as _;
        let mut child = self.command(args).stdin(Stdio::piped()).spawn().expect("start linkrun");
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let text = stdin.to_string();
        // Written from another thread, so a child that stops reading cannot block the test.
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        });
        let o = child.wait_with_output().expect("run linkrun");
        let _ = writer.join();
        self.record(args, o)
    }

    /// Starts `linkrun ARGS` in the background (same environment as [`Env::run`]), stdout and
    /// stderr piped: for commands a test must answer while they run (`connection authorize`).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args).spawn().expect("start linkrun")
    }

    /// Installs a service from TOML text.
    pub fn add_service(&self, file: &str, toml: &str) {
        let p = self.write(file, toml);
        self.run(&["service", "add", p.to_str().expect("utf-8 path")]).ok();
    }

    /// Writes a script and runs it.
    pub fn script(&self, text: &str, extra_args: &[&str]) -> Out {
        let p = self.write("script.rhai", text);
        let mut args = vec!["run", p.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra_args);
        self.run(&args)
    }

    /// Searches every recorded output and every vault file for every registered secret.
    #[track_caller]
    pub fn assert_no_secrets(&self) {
        let outputs = self.outputs.borrow();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for entry in walk(self.home.path()) {
            if let Ok(bytes) = std::fs::read(&entry) {
                files.push((entry.display().to_string(), bytes));
            }
        }
        for s in self.secrets.borrow().iter() {
            for o in outputs.iter() {
                assert!(!o.contains(s.as_str()), "secret `{s}` appears in output:\n{o}");
            }
            for (name, bytes) in &files {
                assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "secret `{s}` appears in clear in {name}");
            }
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.assert_no_secrets();
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Waits for a test server child to print `PORT <n>` on stdout (60 s at most) and returns n; on
/// failure kills it and panics with its stderr and the command to run by hand.
pub fn wait_for_port(child: &mut std::process::Child, stderr_path: &Path, what: &str, manual: &str) -> u16 {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("server stdout");
    let (tx, rx) = std::sync::mpsc::channel::<u16>();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok())
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(port);
            }
        }
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(port) => port,
        Err(e) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            let err = std::fs::read_to_string(stderr_path).unwrap_or_default();
            panic!("the {what} did not start ({e}; exit: {status})\nstderr:\n{err}\nrun it by hand: {manual}");
        }
    }
}

/// A service TOML for tests.
pub fn service_toml(link: &str, auth: &str, placement: Option<&str>, base_url: &str, extra: &str) -> String {
    let placement = placement.map(|p| format!("placement = \"{p}\"\n")).unwrap_or_default();
    format!(
        "link_name = \"{link}\"\nname = \"Test {link}\"\nauth = \"{auth}\"\n{placement}base_url = \"{base_url}\"\n{extra}"
    )
}

/// The cargo target folder (where the third-party test servers' packages are cached).
pub fn target_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => manifest.join(d),
        _ => manifest.join("target"),
    }
}

/// 64-bit FNV-1a: a name for a pinned package set that is stable across Rust versions.
pub fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}
