//! linkrun: connections to SaaS APIs kept in an encrypted local vault, and Rhai scripts that call
//! those APIs through `invoke_url` with the connection's credentials applied.
//!
//! Module map (where each concern lives):
//!
//! | module            | concern |
//! |-------------------|---------|
//! | [`error`]         | the one error type the binary maps to exit codes |
//! | [`home`]          | where linkrun keeps its files (`--home`, `LINKRUN_HOME`, XDG) |
//! | [`config`]        | `linkrun.toml`: settings of the whole installation |
//! | [`files`]         | reading scripts and service files: regular files only, size caps |
//! | [`link_name`]     | the link-name rule shared by services and connections |
//! | [`service`]       | the service TOML schema and its validation |
//! | [`catalog`]       | built-in, installed and `./connections/` services, conflicts between them |
//! | [`connection`]    | a connection record, its status, masking of secrets for display |
//! | [`vault`]         | the SQLite + AES-256-GCM vault: key sources, sealing, migrations, rekey |
//! | [`clock`]         | the wall clock of token expiry and leases (tests move it forward) |
//! | [`http`]          | the lowest layer of a call: request/response types, host rules, the one send path, clients |
//! | [`auth`]          | credentials per auth kind, OAuth flows, and the auth layer (`auth::live`): a connection loaded from the vault, refreshed, retried once after 401 |
//! | [`invoke`]        | Deluge `invokeurl` semantics on top: a script's request map to a request, the answer back |
//! | [`script`]        | the Rhai engine, its limits, the script API, the Deluge vocabulary and tasks (`script::deluge*`, `script::zoho_tasks`), and running Deluge files (`script::deluge`) |
//! | [`runs`]          | run records: status, times, redacted input, result, `info` lines, request trace; the [`runs::RunStore`] trait |
//! | [`store`]         | storage back ends behind the traits: run records, the serve queue, delivery ids, schedule marks in SQLite (`runs.db`); the sync tables of the vault's database |
//! | [`telemetry`]     | process-wide request and token-refresh counters that serve's `/metrics` reports |
//! | [`trigger`]       | trigger files (webhook, schedule): the model and its validation |
//! | [`sync`]          | declared syncs: definitions, the link table and checkpoints, the ServiceNow and CRM sides, the engine |
//! | [`serve`]         | `linkrun serve`: the HTTP side, webhook auth, the worker pool, schedules, alerts, metrics |
//! | [`cli`]           | the command-line interface, one file per command group |
//!
//! Outside this crate, in the same workspace:
//!
//! | where                    | concern |
//! |--------------------------|---------|
//! | `crates/linkrun-sandbox` | the `linkrun_sandbox` library: the Zoho and ServiceNow emulators behind `linkrun sandbox`, `linkrun demo` and the tests (it does not depend on this crate) |
//! | `crates/deluge`          | the Deluge front end: lexer, parser, spanned AST, error reports, and the translation to Rhai that `run FILE.dg` runs and `port` writes (no dependency on this crate) |
//! | `connections/`           | the prebuilt services, embedded by `build.rs` as the built-in catalog |
//! | `scripts/`               | the example Rhai scripts `linkrun demo` runs |
//! | `tests/`, `benches/`     | integration tests (with their third-party servers in `tests/support/`) and benchmarks |
//! | `docs/api-facts.md`      | what the real Zoho and ServiceNow APIs do, cited by § from the code, services and tests |

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connection;
pub mod error;
pub mod files;
pub mod home;
pub mod http;
pub mod invoke;
pub mod link_name;
pub mod runs;
pub mod script;
pub mod serve;
pub mod service;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod trigger;
pub mod vault;

pub use error::{Error, Result};
