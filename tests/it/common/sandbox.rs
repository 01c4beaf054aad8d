//! [`Fixture`]: the sandbox emulators in the test process on a free loopback port, an [`Env`]
//! whose commands reach them (`LINKRUN_SANDBOX_URL`), and connections authorised the way a user
//! does it (self-client codes, the password grant). On drop, every code and token the sandbox
//! issued is registered as a secret, so the `Env` checks that none of them, nor the client
//! secrets and passwords, appears in any output or vault file.

use std::net::SocketAddr;

use linkrun_sandbox::server::{Options, Sandbox};
use serde_json::Value;

use super::Env;

/// Starts the sandbox with `opts` on a free loopback port, served by a thread of its own for the
/// rest of the test process.
pub fn serve(opts: &Options) -> (Sandbox, SocketAddr) {
    let sandbox = Sandbox::new(opts).expect("sandbox");
    let (tx, rx) = std::sync::mpsc::channel();
    let sb = sandbox.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(async move {
            let (addr, handle) = sb.serve(0).await.expect("serve");
            tx.send(addr).expect("send address");
            let _ = handle.await;
        });
    });
    let addr = rx.recv().expect("sandbox address");
    (sandbox, addr)
}

/// A running sandbox and a test environment pointed at it.
pub struct Fixture {
    /// The emulators, for reading and changing their state directly.
    pub sandbox: Sandbox,
    /// The test environment.
    pub env: Env,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for s in self.sandbox.provider.issued_secrets() {
            self.env.secret(&s);
        }
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    /// The default sandbox (Org A `us`, Org B `in`, the ServiceNow instance).
    pub fn new() -> Fixture {
        Fixture::with(&Options::default())
    }

    /// A sandbox with these options (e.g. `large: true`).
    pub fn with(opts: &Options) -> Fixture {
        let (sandbox, addr) = serve(opts);
        let env = Env::new();
        let base = format!("http://{addr}");
        env.set_env("LINKRUN_SANDBOX_URL", &base);
        for o in &sandbox.orgs {
            env.secret(&o.client_secret);
        }
        env.secret(&sandbox.sn.client_secret);
        env.secret(&sandbox.sn.password);
        Fixture { sandbox, env, base }
    }

    /// Creates and authorises connection `link` of `service` (`zoho_crm` or `zoho_desk`) in the
    /// sandbox data center, for Org A.
    pub fn connect(&self, link: &str, service: &str) {
        self.connect_org(link, service, 0);
    }

    /// [`Fixture::connect`] for organisation `org` (0 is Org A, `us`; 1 is Org B, `in`).
    pub fn connect_org(&self, link: &str, service: &str, org: usize) {
        let org = &self.sandbox.orgs[org];
        let mut args = vec![
            "connection".to_string(),
            "create".into(),
            link.into(),
            "--service".into(),
            service.into(),
            "--dc".into(),
            "sandbox".into(),
            "--param".into(),
            format!("client_id={}", org.client_id),
            "--param".into(),
            format!("client_secret={}", org.client_secret),
        ];
        let scopes: &[&str] = if service == "zoho_desk" {
            args.extend(["--param".into(), format!("orgId={}", org.desk_org_id)]);
            &["Desk.tickets.ALL", "Desk.basic.READ", "Desk.search.READ", "Desk.contacts.READ"]
        } else {
            &[
                "ZohoCRM.modules.ALL",
                "ZohoCRM.settings.READ",
                "ZohoCRM.coql.READ",
                "ZohoCRM.org.READ",
                "ZohoCRM.users.READ",
            ]
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.env.run(&args).ok();
        let code = self.sandbox.provider.mint_self_client_code(&org.client_id, scopes);
        self.env.run(&["connection", "authorize", link, "--code", &code]).ok();
    }

    /// Creates and authorises `link`, a `servicenow` connection to the sandbox instance (password
    /// grant).
    pub fn connect_servicenow(&self, link: &str) {
        let sn = &self.sandbox.sn;
        self.env
            .run(&[
                "connection",
                "create",
                link,
                "--service",
                "servicenow",
                "--instance",
                "sandbox",
                "--param",
                &format!("client_id={}", sn.client_id),
                "--param",
                &format!("client_secret={}", sn.client_secret),
                "--param",
                &format!("username={}", sn.username),
                "--param",
                &format!("password={}", sn.password),
            ])
            .ok();
        self.env.run(&["connection", "authorize", link]).ok();
    }

    /// Starts `linkrun ARGS` `n` times at once and waits for them all; their outputs are
    /// recorded like [`Env::run`]'s (so the secrets check covers them).
    pub fn run_at_once(&self, n: usize, args: &[&str]) -> Vec<super::Out> {
        let children: Vec<_> = (0..n).map(|_| self.env.spawn(args)).collect();
        children.into_iter().map(|c| self.env.record(args, c.wait_with_output().expect("wait for linkrun"))).collect()
    }

    /// `METHOD PATH` on the sandbox (HTTP/1.0, a form or empty body): the status and the body
    /// parsed as JSON (`Value::String` of the text when it is not JSON).
    pub fn http(&self, method: &str, path: &str, form: &str) -> (u16, Value) {
        use std::io::{Read, Write};
        let addr = self.base.trim_start_matches("http://");
        let mut s = std::net::TcpStream::connect(addr).expect("connect to the sandbox");
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        )
        .expect("send to the sandbox");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read the sandbox's answer");
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string())))
    }

    /// `METHOD PATH` on the sandbox with a JSON body: the status and the body parsed as JSON.
    pub fn http_json(&self, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let h = vec![("Content-Type".to_string(), "application/json".to_string())];
        let r = super::oidc::http(method, &format!("{}{path}", self.base), &h, body.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (r.status, serde_json::from_str(&r.body).unwrap_or(Value::String(r.body)))
    }

    /// Runs a Rhai script and parses its `--json` result.
    pub fn json(&self, script: &str) -> Value {
        let out = self.env.script(script, &["--json"]);
        serde_json::from_str(out.ok()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
    }
}
