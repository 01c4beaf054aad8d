//! A certified third-party OAuth 2.0 / OpenID provider for tests: panva's `oidc-provider` (npm,
//! OpenID Certified) run by `tests/support/oidc/provider.mjs` on 127.0.0.1, plus a headless
//! "browser" that approves authorization requests.
//!
//! [`Oidc::start`] installs the pinned npm packages (`tests/support/oidc/package-lock.json`) once
//! per machine with `npm ci` into `<target dir>/test-deps/oidc-<hash>/`, then runs
//! `node provider.mjs CONFIG.json` (Node.js 20.19 or later). Set `LINKRUN_TEST_NODE` /
//! `LINKRUN_TEST_NPM` to use other `node` / `npm` binaries.
//!
//! The config (see the header of `provider.mjs`):
//!
//! ```json
//! {"clients": [{"client_id": "app", "client_secret": "s3cret",
//!               "redirect_uris": ["http://127.0.0.1:9/callback"],
//!               "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
//!               "token_endpoint_auth_method": "client_secret_post",
//!               "scope": "openid offline_access api:read api:write"}],
//!  "access_token_ttl": 3, "rotate_refresh_token": true}
//! ```
//!
//! Optional: `client_credentials_ttl` (default `access_token_ttl`), `refresh_token_ttl` (default
//! 86400), `scopes` (more accepted scope values), `strict_client_auth` (default true: a request
//! presenting client_secret_basic for a client registered with client_secret_post, or the reverse,
//! gets invalid_client; oidc-provider alone takes either). Clients take any other oidc-provider client
//! metadata too, e.g. `"application_type": "native"` so that a loopback redirect URI matches on any
//! port (RFC 8252 7.3), or `"token_endpoint_auth_method": "none"` for a public client.
//!
//! Endpoints (all under [`Oidc::url`]): `GET /auth` (authorize; PKCE S256 required), `POST /token`,
//! `POST /token/revocation` (RFC 7009), `POST /token/introspection` (RFC 7662),
//! `/.well-known/openid-configuration`, any method on `/api/*` (the protected resource), `GET
//! /_stats`, `POST /_stats/reset`.
//!
//! What oidc-provider 9.13.3 does here (checked by hand):
//! - `/auth` without `code_challenge` redirects with `error=invalid_request`; the redirect to the
//!   client carries `code`, `state` and `iss`.
//! - Every authorization_code grant of a client allowed `refresh_token` gets a refresh token, even
//!   for `scope=api:read`; `offline_access` is dropped from the granted scope unless
//!   `prompt=consent` was sent. An `openid` scope adds an `id_token`.
//! - A refresh rotates the refresh token (a new value each time). Presenting a rotated (used) one
//!   again answers `invalid_grant` and revokes the whole grant: the newest refresh token and every
//!   access token of the grant stop working (`refresh token not found`, `/api` 401).
//! - A reused authorization code answers `invalid_grant` and revokes the grant's tokens too.
//! - Revocation answers 200 with an empty body, also for an unknown token. Revoking a refresh token
//!   revokes the whole grant (its access tokens too); revoking an access token also revokes every
//!   token of its grant, the refresh tokens included (the grant record itself is kept).
//!   A client_credentials token revokes alone.
//! - client_credentials: known scopes the client may use are granted, unknown ones dropped without
//!   an error, no `scope` member when none is left; no refresh token.
//! - Errors: `{"error":"invalid_grant","error_description":"grant request is invalid"}` (400) for
//!   any bad code, verifier, redirect_uri or refresh token; `{"error":"invalid_client",
//!   "error_description":"client authentication failed"}` (401, plus `WWW-Authenticate: Basic
//!   realm="ISSUER", error="invalid_client", ...` when Basic was used). The reason is in
//!   `stats()["requests"][i]["error_detail"]` and [`Oidc::stderr`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{fnv1a, target_dir};

const SUPPORT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oidc");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oidc/provider.mjs");
const PACKAGE_JSON: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oidc/package.json"));
const PACKAGE_LOCK: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/oidc/package-lock.json"));
const STAMP: &str = ".linkrun-stamp";
/// The login the headless browser signs in with in [`Oidc::approve`]: the tokens' `sub`.
pub const DEFAULT_LOGIN: &str = "linkrun-test-user";

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers in order received.
    pub headers: Vec<(String, String)>,
    /// Body as text (chunked transfer decoded).
    pub body: String,
}

impl Reply {
    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// A running oidc-provider; dropping it kills the process.
pub struct Oidc {
    /// The port on 127.0.0.1.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Oidc {
    /// Installs the npm packages if needed, writes `config` to a temporary file and starts the
    /// provider. Panics (naming the cause and the command to run by hand) if anything fails.
    pub fn start(config: &serde_json::Value) -> Oidc {
        let deps = ensure_deps();
        let dir = tempfile::tempdir().expect("temp dir for the OAuth 2.0 provider");
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(config).expect("config to JSON"))
            .expect("write OAuth 2.0 provider config");
        let stderr_path = dir.path().join("provider.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("create provider.stderr");
        let node = node();
        // stdin stays a pipe held by `child`: the provider exits when it closes, so it does not
        // outlive a test process that dies without running Drop.
        let mut child = Command::new(&node)
            .arg(SCRIPT)
            .arg(&config_path)
            .current_dir(dir.path())
            .env("LINKRUN_OIDC_NODE_MODULES", deps)
            .env("NODE_ENV", "test")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{node}` for the OAuth 2.0 test provider: {e}{}", NODE_HINT));
        let manual = format!("LINKRUN_OIDC_NODE_MODULES={} {node} {SCRIPT} {}", deps.display(), config_path.display());
        let port = super::wait_for_port(&mut child, &stderr_path, "OAuth 2.0 test provider", &manual);
        Oidc { port, child, dir }
    }

    /// `http://127.0.0.1:PORT`: the issuer.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The counters: `{"token": {GRANT_TYPE: {"ok": n, "failed": n}}, "token_errors": {ERROR: n},
    /// "revocation": {"ok": n, "failed": n}, "introspection": {"ok": n, "failed": n},
    /// "api": {"ok": n, "unauthorized": n}, "grants_revoked": n, "requests": [...]}`, where
    /// `requests` logs the last 200 token, revocation and introspection requests without secrets:
    /// `{"endpoint", "grant_type", "client_id", "client_auth", "scope", "token_type_hint",
    /// "status", "error", "error_detail"}` (`client_auth`: what the request presented,
    /// `client_secret_basic`, `client_secret_post`, `client_assertion` or `none`). `token` always has
    /// `authorization_code`, `refresh_token` and `client_credentials`; other grant types appear
    /// when used. RFC 7009 answers 200 even for an unknown token: `revocation.ok` counts requests,
    /// not revoked tokens.
    pub fn stats(&self) -> serde_json::Value {
        let r = self.request("GET", "/_stats", &[], "");
        assert_eq!(r.status, 200, "GET /_stats: {r:?}");
        r.json()
    }

    /// Makes every access token used at `/api/*` so far expired there (401 `invalid_token`), as
    /// the passing of its lifetime would: tests move time instead of sleeping.
    pub fn expire_tokens(&self) {
        let r = self.request("POST", "/_tokens/expire", &[], "");
        assert_eq!(r.status, 200, "POST /_tokens/expire: {r:?}");
    }

    /// Zeroes the counters (tokens and grants are kept).
    pub fn reset_stats(&self) {
        let r = self.request("POST", "/_stats/reset", &[], "");
        assert_eq!(r.status, 200, "POST /_stats/reset: {r:?}");
    }

    /// What the provider wrote on stderr: start-up warnings, one line per token, revocation,
    /// introspection or authorization error (with oidc-provider's detail), stack traces.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("provider.stderr")).unwrap_or_default()
    }

    /// Sends `METHOD PATH_AND_QUERY` (sent as written) to the provider, with extra headers and a
    /// body (a non-empty body is sent as `application/x-www-form-urlencoded` unless `headers` has
    /// a Content-Type).
    pub fn request(&self, method: &str, path_and_query: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let url = format!("{}{path_and_query}", self.url());
        let mut h: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if !body.is_empty() && !h.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            h.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
        }
        http(method, &url, &h, body.as_bytes())
            .unwrap_or_else(|e| panic!("{method} {url}: {e}\nprovider stderr:\n{}", self.stderr()))
    }

    /// Acts as the user's browser on `authorize_url` (the full URL of this provider's `/auth`):
    /// follows the redirects keeping the provider's cookies, signs in as [`DEFAULT_LOGIN`] and
    /// consents to everything asked, until the provider redirects off its own origin, to the
    /// client's redirect URI. Returns that redirect URL without fetching it. It carries `code`,
    /// `state` and `iss` on success, or `error` (and `error_description`, `state`, `iss`) when the
    /// provider refuses the request after its redirect URI has been checked. Panics when the
    /// provider answers anything else (an error page: unknown client, unregistered redirect_uri).
    #[track_caller]
    pub fn approve(&self, authorize_url: &str) -> String {
        self.approve_as(authorize_url, DEFAULT_LOGIN)
    }

    /// [`Oidc::approve`] signing in as `login` (the tokens' `sub`; any password is accepted).
    #[track_caller]
    pub fn approve_as(&self, authorize_url: &str, login: &str) -> String {
        let origin = self.url();
        let fail =
            |what: String| -> ! { panic!("approve {authorize_url}: {what}\nprovider stderr:\n{}", self.stderr()) };
        let mut jar: Vec<Cookie> = Vec::new();
        let mut method = "GET".to_string();
        let mut url = authorize_url.to_string();
        let mut body = String::new();
        for _ in 0..20 {
            let parsed = url::Url::parse(&url).unwrap_or_else(|e| fail(format!("bad URL {url}: {e}")));
            if !same_origin(&parsed, &origin) {
                fail(format!("{url} is not on the provider ({origin})"));
            }
            let mut headers = Vec::new();
            let cookie = cookie_header(&jar, parsed.path());
            if !cookie.is_empty() {
                headers.push(("Cookie".to_string(), cookie));
            }
            if method == "POST" {
                headers.push(("Content-Type".to_string(), "application/x-www-form-urlencoded".to_string()));
            }
            let r =
                http(&method, &url, &headers, body.as_bytes()).unwrap_or_else(|e| fail(format!("{method} {url}: {e}")));
            for (name, value) in &r.headers {
                if name.eq_ignore_ascii_case("set-cookie") {
                    store_cookie(&mut jar, value);
                }
            }
            match r.status {
                301 | 302 | 303 | 307 | 308 => {
                    let loc = r.header("Location").unwrap_or_else(|| fail(format!("{} without Location", r.status)));
                    let next = parsed.join(loc).unwrap_or_else(|e| fail(format!("bad Location {loc}: {e}")));
                    if !same_origin(&next, &origin) {
                        return next.to_string();
                    }
                    url = next.to_string();
                    if r.status != 307 && r.status != 308 {
                        method = "GET".into();
                        body.clear();
                    }
                }
                200 => {
                    let form =
                        parse_form(&r.body).unwrap_or_else(|| fail(format!("a page without a form: {}", r.body)));
                    let action = parsed
                        .join(&form.action)
                        .unwrap_or_else(|e| fail(format!("bad form action {}: {e}", form.action)));
                    if !same_origin(&action, &origin) {
                        fail(format!(
                            "a form posting off the provider, to {action} (response_mode=form_post is not supported)"
                        ));
                    }
                    let mut enc = url::form_urlencoded::Serializer::new(String::new());
                    for input in &form.inputs {
                        let value = match (input.kind.as_str(), input.value.as_str()) {
                            ("text" | "email", "") => login,
                            ("password", "") => "any-password",
                            _ => input.value.as_str(),
                        };
                        enc.append_pair(&input.name, value);
                    }
                    body = enc.finish();
                    method = if form.method.eq_ignore_ascii_case("get") { "GET" } else { "POST" }.to_string();
                    url = action.to_string();
                    if method == "GET" {
                        let mut u = action.clone();
                        u.set_query(Some(&body));
                        url = u.to_string();
                        body.clear();
                    }
                }
                _ => fail(format!("{method} {url} answered {}: {}", r.status, r.body)),
            }
        }
        fail("more than 20 steps without reaching the client's redirect URI".into())
    }

    /// [`Oidc::approve`], then fetches the redirect URL as the browser would (a GET, e.g. to
    /// linkrun's loopback listener) and returns the status it answered.
    #[track_caller]
    pub fn approve_and_deliver(&self, authorize_url: &str) -> u16 {
        let target = self.approve(authorize_url);
        deliver(&target)
    }
}

impl Drop for Oidc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs `url` (an `http://` URL, e.g. the redirect [`Oidc::approve`] returned) and returns the
/// status. Panics if the server cannot be reached.
#[track_caller]
pub fn deliver(url: &str) -> u16 {
    match http("GET", url, &[], b"") {
        Ok(r) => r.status,
        Err(e) => panic!("GET {url}: {e}"),
    }
}

const NODE_HINT: &str = "\nthe OAuth 2.0 tests need Node.js 20.19 or later and npm: apt-get install nodejs npm, \
                         or set LINKRUN_TEST_NODE and LINKRUN_TEST_NPM";

fn node() -> String {
    std::env::var("LINKRUN_TEST_NODE").unwrap_or_else(|_| "node".to_string())
}

fn npm() -> String {
    std::env::var("LINKRUN_TEST_NPM").unwrap_or_else(|_| "npm".to_string())
}

fn same_origin(u: &url::Url, origin: &str) -> bool {
    u.origin().ascii_serialization() == origin
}

// ---- the npm install ----

/// Installs the locked npm packages once per machine (per lock file) and returns their
/// `node_modules` folder. Parallel callers do not race: each installs into a folder of its own and
/// renames it into place; the first rename wins.
pub fn ensure_deps() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(install_deps)
}

fn install_deps() -> PathBuf {
    let tag = format!("{:016x}", fnv1a(&format!("{PACKAGE_JSON}\0{PACKAGE_LOCK}")));
    let root = target_dir().join("test-deps");
    let dir = root.join(format!("oidc-{tag}"));
    let stamp_ok = |d: &Path| std::fs::read_to_string(d.join(STAMP)).is_ok_and(|s| s == tag);
    if stamp_ok(&dir) {
        return dir.join("node_modules");
    }
    let (node, npm) = (node(), npm());
    let manual = format!(
        "mkdir -p {d} && cp {SUPPORT}/package.json {SUPPORT}/package-lock.json {d}/ && cd {d} && \
         {npm} ci --omit=dev --no-audit --no-fund --ignore-scripts && printf '%s' {tag} > {STAMP}",
        d = dir.display()
    );
    let version = Command::new(&node)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{node} --version`: {e}{NODE_HINT}"));
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let parts: Vec<u32> = version.trim_start_matches('v').split('.').filter_map(|p| p.parse().ok()).collect();
    if parts.len() < 2 || (parts[0], parts[1]) < (20, 19) {
        panic!("`{node}` is {version:?}: oidc-provider needs Node.js 20.19 or later{NODE_HINT}");
    }
    std::fs::create_dir_all(&root).unwrap_or_else(|e| panic!("create {}: {e}", root.display()));
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let tmp = root.join(format!(".tmp-oidc-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
    std::fs::write(tmp.join("package.json"), PACKAGE_JSON).expect("write package.json");
    std::fs::write(tmp.join("package-lock.json"), PACKAGE_LOCK).expect("write package-lock.json");
    let out = Command::new(&npm)
        .args(["ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"])
        .current_dir(&tmp)
        .env("npm_config_update_notifier", "false")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            let _ = std::fs::remove_dir_all(&tmp);
            panic!("cannot run `{npm}`: {e}{NODE_HINT}\nrun by hand: {manual}")
        });
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&tmp);
        panic!(
            "installing the OAuth 2.0 test provider's npm packages failed ({})\nstdout:\n{}\nstderr:\n{}\n\
             run by hand: {manual}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(tmp.join(STAMP), &tag).expect("write stamp");
    if std::fs::rename(&tmp, &dir).is_err() {
        if stamp_ok(&dir) {
            // Another process installed the same packages first.
            let _ = std::fs::remove_dir_all(&tmp);
        } else {
            // A leftover without a stamp (an install stopped half-way): replace it.
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::rename(&tmp, &dir)
                .unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), dir.display()));
        }
    }
    dir.join("node_modules")
}

// ---- a minimal HTTP/1.1 client (one request per connection) ----

/// One HTTP/1.1 request (one connection), the answer read whole.
pub fn http(method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Result<Reply, String> {
    let u = url::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!("only http:// URLs are supported, not {url}"));
    }
    let host = u.host_str().ok_or("URL without a host")?;
    let port = u.port_or_known_default().unwrap_or(80);
    let mut target = u.path().to_string();
    if let Some(q) = u.query() {
        target.push('?');
        target.push_str(q);
    }
    let mut s = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nAccept: */*\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP header in the answer")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        rest = dechunk(&rest)?;
    }
    Ok(Reply { status, headers, body: String::from_utf8_lossy(&rest).into_owned() })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|e| format!("bad chunk size {size_text:?}: {e}"))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

// ---- cookies (the provider's only) ----

struct Cookie {
    name: String,
    value: String,
    path: String,
}

fn store_cookie(jar: &mut Vec<Cookie>, header: &str) {
    let mut parts = header.split(';');
    let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else { return };
    let (name, value) = (name.trim().to_string(), value.trim().to_string());
    let mut path = "/".to_string();
    let mut expired = value.is_empty();
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "path" => path = v.trim().to_string(),
            "max-age" => expired |= v.trim().parse::<i64>().is_ok_and(|n| n <= 0),
            "expires" => expired |= v.contains("1970"),
            _ => {}
        }
    }
    jar.retain(|c| !(c.name == name && c.path == path));
    if !expired {
        jar.push(Cookie { name, value, path });
    }
}

fn cookie_header(jar: &[Cookie], path: &str) -> String {
    let matches = |p: &str| path == p || p == "/" || path.starts_with(&format!("{}/", p.trim_end_matches('/')));
    // Longer paths first, as browsers send them.
    let mut found: Vec<&Cookie> = jar.iter().filter(|c| matches(&c.path)).collect();
    found.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
    found.iter().map(|c| format!("{}={}", c.name, c.value)).collect::<Vec<_>>().join("; ")
}

// ---- HTML forms (oidc-provider's login and consent pages) ----

struct Form {
    action: String,
    method: String,
    inputs: Vec<Input>,
}

struct Input {
    name: String,
    kind: String,
    value: String,
}

/// The first `<form>` of `html`: its action, method and named `<input>`s.
fn parse_form(html: &str) -> Option<Form> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<form")?;
    let end = lower[start..].find("</form>").map(|e| start + e).unwrap_or(html.len());
    let tag_end = lower[start..].find('>').map(|e| start + e)?;
    let attrs = attributes(&html[start + 5..tag_end]);
    let get = |attrs: &[(String, String)], k: &str| {
        attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let mut form = Form { action: get(&attrs, "action"), method: get(&attrs, "method"), inputs: Vec::new() };
    let mut at = tag_end;
    while let Some(i) = lower[at..end].find("<input") {
        let s = at + i;
        let e = lower[s..end].find('>').map(|e| s + e).unwrap_or(end);
        let a = attributes(&html[s + 6..e]);
        let name = get(&a, "name");
        if !name.is_empty() {
            let kind = get(&a, "type");
            let kind = if kind.is_empty() { "text".to_string() } else { kind.to_ascii_lowercase() };
            if kind != "submit" && kind != "button" {
                form.inputs.push(Input { name, kind, value: get(&a, "value") });
            }
        }
        at = e;
    }
    Some(form)
}

/// `name="value"`, `name='value'`, `name=value` and bare `name` attributes, entity-decoded.
fn attributes(text: &str) -> Vec<(String, String)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        let ns = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'/' {
            i += 1;
        }
        if ns == i {
            i += 1;
            continue;
        }
        let name = text[ns..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vs = i + 1;
                i = vs;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = text[vs..i.min(b.len())].to_string();
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                value = text[vs..i].to_string();
            }
        }
        out.push((name, decode_entities(&value)));
    }
    out
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest.find(';').filter(|&n| n <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
