//! The sandbox emulators in the test process, and connections to them authorised the way a user
//! does it (self-client codes), their secrets registered with the [`Env`].

use linkrun_sandbox::server::{Options, Sandbox};

use super::Env;

/// Starts the sandbox on a free loopback port (a thread of its own) and returns it with an
/// [`Env`] whose commands reach it (`LINKRUN_SANDBOX_URL`).
pub fn start(opts: &Options) -> (Sandbox, Env) {
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
    let env = Env::new();
    env.set_env("LINKRUN_SANDBOX_URL", &format!("http://{addr}"));
    (sandbox, env)
}

/// Creates and authorises `link`, a `zoho_crm` connection in the sandbox data center to the CRM
/// of organisation `org` (0 is Org A, `us`; 1 is Org B, `in`).
pub fn connect_crm(sandbox: &Sandbox, env: &Env, link: &str, org: usize) {
    let org = &sandbox.orgs[org];
    env.secret(&org.client_secret);
    env.run(&[
        "connection",
        "create",
        link,
        "--service",
        "zoho_crm",
        "--dc",
        "sandbox",
        "--param",
        &format!("client_id={}", org.client_id),
        "--param",
        &format!("client_secret={}", org.client_secret),
    ])
    .ok();
    let code = sandbox.provider.mint_self_client_code(&org.client_id, &["ZohoCRM.modules.ALL"]);
    env.run(&["connection", "authorize", link, "--code", &code]).ok();
}
