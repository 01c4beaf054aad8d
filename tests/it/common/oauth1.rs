//! A third-party OAuth 1.0a (RFC 5849) server for tests: oauthlib's server endpoints behind the
//! in-memory validator of `tests/support/oauth1_server.py`, on 127.0.0.1.
//!
//! [`OAuth1Server::start`] installs the pinned Python packages ([`PINS`]) once per machine into
//! `<target dir>/test-deps/` (with `python3 -m pip install --target`), then runs the server with
//! `PYTHONPATH` pointing there. Set `LINKRUN_TEST_PYTHON` to use another interpreter than `python3`.
//!
//! The config (see the module docs of `oauth1_server.py`):
//!
//! ```json
//! {"clients": [{"key": "dpf43f3p2l4k3l03", "secret": "kd94hf93k423kf44", "rsa_public_key": null}],
//!  "access_tokens": [{"client_key": "dpf43f3p2l4k3l03", "token": "nnch734d00sl2jdk", "secret": "pfkkdhi9sl3r4s00"}],
//!  "realms": ["photos"]}
//! ```
//!
//! Endpoints: `POST /request_token`, `GET /authorize?oauth_token=T[&deny=1]`, `POST /access_token`,
//! any method on `/resource[/...]` (200 JSON describing the verified request), `GET /log`,
//! `DELETE /log`. Failures answer `oauth_problem=NAME` as a form body.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{fnv1a, target_dir};

/// The Python packages the server needs, pinned (oauthlib's RSA methods go through PyJWT, which
/// uses cryptography; cffi and pycparser are cryptography's own dependencies).
pub const PINS: &[&str] =
    &["oauthlib==3.2.2", "cryptography==46.0.3", "cffi==2.0.0", "pycparser==2.23", "PyJWT==2.10.1"];

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oauth1_server.py");
const STAMP: &str = ".linkrun-pins";

/// A fixed 2048-bit RSA test key pair: (private key as PKCS#8 PEM, public key as SPKI PEM).
pub fn rsa_test_keypair() -> (String, String) {
    (
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rsa_test_key.pem")).to_string(),
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/rsa_test_key.pub.pem")).to_string(),
    )
}

/// An HTTP answer read by [`OAuth1Server::get`].
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers in order received.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Reply {
    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A running oauthlib server; dropping it kills the process.
pub struct OAuth1Server {
    /// The port on 127.0.0.1.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl OAuth1Server {
    /// Installs the Python packages if needed, writes `config` to a temporary file and starts the
    /// server. Panics (naming the cause and the command to run by hand) if anything fails.
    pub fn start(config: &serde_json::Value) -> OAuth1Server {
        let deps = ensure_deps();
        let dir = tempfile::tempdir().expect("temp dir for the OAuth 1.0a server");
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(config).expect("config to JSON"))
            .expect("write OAuth 1.0a server config");
        let stderr_path = dir.path().join("server.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("create server.stderr");
        let python = python();
        let mut child = Command::new(&python)
            .args(["-s", "-B", SCRIPT])
            .arg(&config_path)
            .env("PYTHONPATH", deps)
            .env("PYTHONNOUSERSITE", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{python}` for the OAuth 1.0a test server: {e}"));
        let manual = format!("PYTHONPATH={} {python} {SCRIPT} {}", deps.display(), config_path.display());
        let port = super::wait_for_port(&mut child, &stderr_path, "OAuth 1.0a test server", &manual);
        OAuth1Server { port, child, dir }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request received so far except those to `/log`: a JSON list of
    /// `{"method", "path", "query", "headers": [[name, value], ...], "body", "response": {"status", "headers", "body"}}`
    /// (`path` and `query` raw, as sent).
    pub fn log(&self) -> serde_json::Value {
        let r = self.request("GET", "/log");
        assert_eq!(r.status, 200, "GET /log: {}", r.body);
        serde_json::from_str(&r.body).expect("GET /log is JSON")
    }

    /// `GET PATH_AND_QUERY` (sent as written: encode it yourself), e.g. `/authorize?oauth_token=T`.
    pub fn get(&self, path_and_query: &str) -> Reply {
        self.request("GET", path_and_query)
    }

    /// Approves request token `token` as the user would (`GET /authorize`) and returns the
    /// verifier, from the callback redirect or, for an `oob` callback, from the page.
    #[track_caller]
    pub fn authorize(&self, token: &str) -> String {
        let r = self.get(&format!("/authorize?oauth_token={token}"));
        let found = match r.status {
            302 => {
                let loc = r.header("Location").unwrap_or_default();
                let query = loc.split_once('?').map(|(_, q)| q).unwrap_or_default();
                url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "oauth_verifier")
                    .map(|(_, v)| v.into())
            }
            200 => r.body.strip_prefix("oauth_verifier=").map(str::to_string),
            _ => None,
        };
        found.unwrap_or_else(|| panic!("authorize {token}: no verifier in {r:?}"))
    }

    /// What the server wrote on stderr (tracebacks of 500 answers).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.stderr")).unwrap_or_default()
    }

    fn request(&self, method: &str, path: &str) -> Reply {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the OAuth 1.0a test server");
        s.set_read_timeout(Some(Duration::from_secs(30))).expect("read timeout");
        write!(s, "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\r\n", self.port)
            .expect("send request");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read answer");
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").expect("HTTP answer");
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).expect("status");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Reply { status, headers, body: body.to_string() }
    }
}

impl Drop for OAuth1Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("LINKRUN_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Installs [`PINS`] once per machine (per interpreter and pin set) and returns the folder to put
/// on `PYTHONPATH`. Parallel callers do not race: each installs into a folder of its own and
/// renames it into place; the first rename wins.
pub fn ensure_deps() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(install_deps)
}

fn install_deps() -> PathBuf {
    let python = python();
    let pins = PINS.join(" ");
    let manual = |dir: &Path| {
        format!(
            "{python} -m pip install --only-binary=:all: --target {d} {pins} && printf '%s' '{pins}' > {d}/{STAMP}",
            d = dir.display()
        )
    };
    let tag = Command::new(&python)
        .args(["-c", "import sys, platform; print(sys.implementation.cache_tag + '-' + platform.machine())"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the OAuth 1.0a tests need Python 3 (`{python}`: {e}); install it (apt-get install python3 \
                 python3-pip) or set LINKRUN_TEST_PYTHON to an interpreter"
            )
        });
    assert!(tag.status.success(), "`{python}` failed: {}", String::from_utf8_lossy(&tag.stderr));
    let tag = String::from_utf8_lossy(&tag.stdout).trim().to_string();
    let root = target_dir().join("test-deps");
    let dir = root.join(format!("oauth1-{tag}-{:016x}", fnv1a(&pins)));
    let stamp_ok = |d: &Path| std::fs::read_to_string(d.join(STAMP)).is_ok_and(|s| s == pins);
    if stamp_ok(&dir) {
        return dir;
    }
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let tmp = root.join(format!(".tmp-oauth1-{}-{nanos}", std::process::id()));
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--no-warn-script-location"])
        .args(["--only-binary=:all:", "--target"])
        .arg(&tmp)
        .args(PINS)
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .env_remove("PIP_REQUIRE_VIRTUALENV")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{python} -m pip`: {e}\nrun by hand: {}", manual(&dir)));
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        let err = String::from_utf8_lossy(&out.stderr);
        let hint = if err.contains("No module named pip") {
            "pip is missing: apt-get install python3-pip (or python3 -m ensurepip), then "
        } else {
            ""
        };
        panic!(
            "installing the OAuth 1.0a test server's Python packages failed ({})\nstdout:\n{}\nstderr:\n{err}\n\
             {hint}run by hand: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            manual(&dir)
        );
    }
    std::fs::write(tmp.join(STAMP), &pins).expect("write pin stamp");
    if std::fs::rename(&tmp, &dir).is_err() {
        if stamp_ok(&dir) {
            // Another process installed the same pins first.
            let _ = std::fs::remove_dir_all(&tmp);
        } else {
            // A leftover without a stamp (an install stopped half-way): replace it.
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&tmp, &dir)
                .unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), dir.display()));
        }
    }
    dir
}
