//! The sandbox server: Zoho Accounts, CRM, Desk and Campaigns emulators and a ServiceNow instance
//! (its OAuth endpoints and Table API) behind one base URL on 127.0.0.1, with two Zoho
//! organisations ("us" and "in") told apart by the OAuth client they were authorised with, seed
//! data, fault and limit knobs settable at start and through `/_sandbox/knobs` (see
//! [`crate::faults`]), and request statistics at `/_sandbox/requests` (see
//! [`crate::request_stats`]).
//!
//! The controls, all on the same base URL:
//!
//! | control | does |
//! |---------|------|
//! | `GET`/`POST /_sandbox/knobs` | reads or replaces the knobs (JSON, [`Knobs`]) |
//! | `GET`/`DELETE /_sandbox/requests` | reads or starts again the API request counts ([`RequestSnapshot`]) |
//! | `GET /_sandbox/oauth/stats` | Zoho Accounts' counters (token requests by grant, refreshes, throttled refreshes, ...) |
//! | `POST /_sandbox/oauth/expire` | expires every live Zoho access token now, of every organisation (refresh tokens stay; the next call refreshes); answers `{"expired": N}` |
//! | `POST /_sandbox/events/crm` | a CRM workflow rule with a webhook action: `{"org", "module", "events": ["create","edit"], "url", "body": "form_data"|"json", "module_params", "custom_params", "headers"}` (see `events.rs`) |
//! | `POST /_sandbox/events/servicenow` | a ServiceNow outbound REST message on table changes: `{"table", "events": ["insert","update"], "url", "username", "password"}` |
//! | `POST /_sandbox/events/calls` | where call events go: `{"url", "headers"}` |
//! | `POST /_sandbox/calls` | a call `{"from", "to", "talk_s"}`: sends `ringing`, `answered`, `ended` and answers with what each got back |
//! | `GET /_sandbox/events` | the rules and the last 1,000 deliveries |
//! | `POST /_sandbox/oauth/revoke_all` | revokes every Zoho refresh token and its access tokens, as a user removing the app from "Connected Apps" does: the next refresh fails and the connection needs re-authorisation; answers `{"revoked": N}` |
//! | `POST /_sandbox/oauth/ttl?secs=N` | the life of Zoho access tokens issued from now on |
//! | `POST /_sandbox/oauth/advance?secs=N` | moves Zoho Accounts' clock forward (token expiry and the 10-minute refresh window) |
//! | `/_sandbox/servicenow/_sandbox/oauth/...` | the same four for the ServiceNow instance's OAuth |

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Json;
use axum::routing::get;

use super::faults::{Faults, Knobs};
use super::oauth_provider::{ClientConfig, Provider, ProviderConfig};
use super::request_stats::{RequestSnapshot, RequestStats};
use super::servicenow::ServiceNow;
use super::storage::{StorageError, storage_failed};
use super::zoho_campaigns::Campaigns;
use super::zoho_crm::Crm;
use super::zoho_desk::Desk;

/// The sandbox's default port (the `sandbox` data center of the prebuilt services points here
/// unless `LINKRUN_SANDBOX_URL` says otherwise).
pub const DEFAULT_SANDBOX_PORT: u16 = 8780;

/// One emulated organisation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Org {
    /// Internal name and data-center-like label: `us` (Org A) or `in` (Org B).
    pub name: String,
    /// Display name.
    pub label: String,
    /// Its OAuth client.
    pub client_id: String,
    /// The client's secret.
    pub client_secret: String,
    /// Zoho Desk organisation id (the `orgId` header).
    pub desk_org_id: String,
    /// Zoho Desk department for new tickets.
    pub desk_department_id: String,
    /// Zoho Campaigns list key.
    pub campaigns_listkey: String,
}

/// The sandbox's ServiceNow instance: its OAuth client and integration user.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnInstance {
    /// OAuth client ID (Application Registry entry).
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The integration user (password grant and Basic auth).
    pub username: String,
    /// Its password.
    pub password: String,
}

/// How to start the sandbox.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// SQLite file for the CRM, Desk, Campaigns and ServiceNow data and the tokens the OAuth
    /// emulators issued (`None`: in memory).
    pub data: Option<PathBuf>,
    /// Give Org A more than 2,000 leads (exercises `page_token` paging).
    pub large: bool,
    /// Access-token lifetime in seconds (default 3600).
    pub token_lifetime: Option<u64>,
    /// Fault knobs.
    pub knobs: Knobs,
}

/// The assembled emulators.
#[derive(Clone)]
pub struct Sandbox {
    /// Zoho Accounts.
    pub provider: Provider,
    /// Zoho CRM.
    pub crm: Crm,
    /// Zoho Desk.
    pub desk: Desk,
    /// Zoho Campaigns.
    pub campaigns: Campaigns,
    /// Fault knobs.
    pub faults: Faults,
    /// The organisations.
    pub orgs: Vec<Org>,
    /// The ServiceNow instance's OAuth endpoints.
    pub sn_provider: Provider,
    /// The ServiceNow Table API.
    pub servicenow: ServiceNow,
    /// The ServiceNow client and integration user.
    pub sn: SnInstance,
    /// The API request counts (`/_sandbox/requests`).
    pub requests: RequestStats,
    /// The events sent: CRM workflow webhooks, ServiceNow outbound messages, calls.
    pub events: crate::events::Events,
}

fn org(name: &str, label: &str, n: u32) -> Org {
    Org {
        name: name.into(),
        label: label.into(),
        client_id: format!("1000.SANDBOX{n}{}", "0".repeat(20)),
        client_secret: format!("sandbox-secret-org-{}-{}", name, "c0ffee".repeat(4)),
        desk_org_id: format!("6{n}0000000{n}"),
        desk_department_id: format!("1{n}000000000000{n}"),
        campaigns_listkey: format!("3z{n}a1b2c3d4e5f6{n}"),
    }
}

impl Sandbox {
    /// Builds the emulators and seeds them.
    pub fn new(opts: &Options) -> Result<Sandbox, String> {
        let orgs = vec![org("us", "Org A (us)", 1), org("in", "Org B (in)", 2)];
        let mut cfg = ProviderConfig::zoho("");
        // An organisation's name is its data center (`location` of the authorization redirect); its
        // `api_domain` is this server, which stands for every data center's API domain.
        cfg.clients =
            orgs.iter().map(|o| ClientConfig::new(&o.client_id, &o.client_secret, &o.name).in_dc(&o.name)).collect();
        if let Some(t) = opts.token_lifetime {
            cfg.access_ttl_secs = t;
        }
        let data = opts.data.as_deref();
        let cannot_open = |e: StorageError| match data {
            Some(p) => format!("cannot open the sandbox data {}: {e}", p.display()),
            None => format!("cannot open the sandbox data: {e}"),
        };
        let cannot_seed = |e: &rusqlite::Error| format!("cannot seed the sandbox data: {}", storage_failed(e));
        let crm = Crm::open(data).map_err(cannot_open)?;
        if crm.count("us", "Leads") == 0 && crm.count("in", "Leads") == 0 {
            crm.seed("us", if opts.large { 2_150 } else { 300 }, 150, 80).map_err(|e| cannot_seed(&e))?;
            crm.seed("in", 120, 60, 30).map_err(|e| cannot_seed(&e))?;
        }
        let desk = Desk::open(data).map_err(cannot_open)?;
        let campaigns = Campaigns::open(data).map_err(cannot_open)?;
        let provider = Provider::open(cfg, data, "zoho").map_err(cannot_open)?;
        for o in &orgs {
            desk.add_org(&o.name, &o.desk_org_id, &o.desk_department_id);
            campaigns.add_list(&o.name, &o.campaigns_listkey, &format!("{} newsletter", o.label));
        }
        let sn = SnInstance {
            client_id: "sandbox-servicenow-client".into(),
            client_secret: format!("sandbox-servicenow-secret-{}", "5eed".repeat(6)),
            username: "integration.user".into(),
            password: format!("sandbox-integration-password-{}", "9a9a".repeat(3)),
        };
        let mut sncfg = ProviderConfig::servicenow("");
        sncfg.clients = vec![ClientConfig::new(&sn.client_id, &sn.client_secret, "instance")];
        sncfg.users = vec![(sn.username.clone(), sn.password.clone())];
        if let Some(t) = opts.token_lifetime {
            sncfg.access_ttl_secs = t.min(1799);
        }
        let sn_provider = Provider::open(sncfg, data, "servicenow").map_err(cannot_open)?;
        let servicenow = ServiceNow::open(data).map_err(cannot_open)?;
        servicenow.seed().map_err(|e| cannot_seed(&e))?;
        servicenow.add_user(&sn.username, &sn.password, &["admin"]);
        let faults = Faults::new(opts.knobs.clone());
        provider.use_knobs(faults.clone());
        sn_provider.use_knobs(faults.clone());
        let events = crate::events::Events::new(crm.clone());
        Ok(Sandbox {
            events,
            provider,
            crm,
            desk,
            campaigns,
            faults,
            orgs,
            sn_provider,
            servicenow,
            sn,
            requests: RequestStats::default(),
        })
    }

    /// The API request counts now (what `GET /_sandbox/requests` answers).
    pub fn request_stats(&self) -> RequestSnapshot {
        self.requests.snapshot()
    }

    /// Starts the API request counts again (`DELETE /_sandbox/requests`); returns what they were.
    pub fn reset_request_stats(&self) -> RequestSnapshot {
        self.requests.reset()
    }

    /// All routes on one router.
    pub fn router(&self) -> axum::Router {
        let faults = self.faults.clone();
        let f2 = self.faults.clone();
        let (r1, r2) = (self.requests.clone(), self.requests.clone());
        // The provider's own `/crm/*` placeholder resources are replaced by the CRM emulator.
        self.provider
            .oauth_router()
            .merge(self.provider.control_router())
            .merge(self.crm.router(self.provider.clone(), self.faults.clone()))
            .merge(self.desk.router(self.provider.clone(), self.faults.clone()))
            .merge(self.campaigns.router(self.provider.clone(), self.faults.clone()))
            .merge(self.sn_provider.oauth_router())
            .merge(self.servicenow.router(self.sn_provider.clone(), self.faults.clone()))
            .nest("/_sandbox/servicenow", self.sn_provider.control_router())
            .merge(self.events.router())
            .route(
                "/_sandbox/knobs",
                get(move || {
                    let k = faults.knobs();
                    async move { Json(k) }
                })
                .post(move |Json(k): Json<Knobs>| {
                    f2.set(k.clone());
                    async move { Json(k) }
                }),
            )
            .route(
                "/_sandbox/requests",
                get(move || {
                    let s = r1.snapshot();
                    async move { Json(s) }
                })
                .delete(move || {
                    let s = r2.reset();
                    async move { Json(s) }
                }),
            )
            // Inside the burst layer: a write the burst refused sends no event.
            .layer(axum::middleware::from_fn_with_state(self.events.clone(), crate::events::layer))
            .layer(axum::middleware::from_fn_with_state(self.faults.clone(), super::faults::burst_layer))
            // Outermost, so that a burst's answers are counted too.
            .layer(axum::middleware::from_fn_with_state(self.requests.clone(), super::request_stats::count_layer))
    }

    /// Serves on 127.0.0.1:`port` (0: any free port) inside the current tokio runtime.
    pub async fn serve(&self, port: u16) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = self.router();
        let handle = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((addr, handle))
    }

    /// What `linkrun sandbox` prints: base URL, the organisations' clients, and the commands to
    /// create connections to it.
    pub fn banner(&self, base: &str) -> String {
        let mut s = format!(
            "linkrun sandbox: emulators of Zoho Accounts (OAuth), CRM, Desk and Campaigns, and ServiceNow (OAuth and Table API) at {base}\n\n"
        );
        for o in &self.orgs {
            s.push_str(&format!(
                "{}: client_id {}  client_secret {}\n    Desk orgId {}  departmentId {}  Campaigns listkey {}\n",
                o.label, o.client_id, o.client_secret, o.desk_org_id, o.desk_department_id, o.campaigns_listkey
            ));
        }
        s.push_str(&format!(
            "ServiceNow instance: client_id {}  client_secret {}  integration user {} / {}\n",
            self.sn.client_id, self.sn.client_secret, self.sn.username, self.sn.password
        ));
        let a = &self.orgs[0];
        s.push_str(&format!(
            "\nConnect to it (the prebuilt services' `sandbox` data center; set LINKRUN_SANDBOX_URL={base} if the port is not {DEFAULT_SANDBOX_PORT}):\n\
             \x20 linkrun connection create crm_a --service zoho_crm --dc sandbox --param client_id={} --param client_secret={}\n\
             \x20 code=$(curl -s -X POST '{base}/oauth/v2/self-client/code?client_id={}&scope=ZohoCRM.modules.ALL' | sed 's/.*\"code\":\"\\([^\"]*\\)\".*/\\1/')\n\
             \x20 linkrun connection authorize crm_a --code \"$code\"\n\
             \x20 linkrun connection create sn --service servicenow --instance sandbox --param client_id={} --param client_secret={} --param username={} --param password={}\n\
             \x20 linkrun connection authorize sn\n\
             Knobs: GET/POST {base}/_sandbox/knobs  {}\n\
             \x20 and, left out of GET while at their defaults: failure_status 500, throttle_rate 0.0, throttle_retry_after 1, expire_tokens_every null, failure_after_write false,\n\
             \x20 zoho_accounts {{access_tokens_per_refresh_token_per_10_min 10, live_access_tokens_per_refresh_token 15, refresh_tokens_per_client_and_user 20}} (Zoho's limits; null turns one off),\n\
             \x20 crm {{concurrency_limit null, credits_per_day null}}, servicenow {{rate_limit_per_hour null}},\n\
             \x20 burst {{count, status, retry_after, retry_after_date, path_prefix}}; a POST replaces them all\n\
             Requests served: GET/DELETE {base}/_sandbox/requests; tokens: POST {base}/_sandbox/oauth/expire (every live access token), POST {base}/_sandbox/oauth/ttl?secs=N\n",
            a.client_id, a.client_secret, a.client_id, self.sn.client_id, self.sn.client_secret, self.sn.username, self.sn.password,
            serde_json::to_string(&self.faults.knobs()).unwrap_or_default()
        ));
        s
    }
}
