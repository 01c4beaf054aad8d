//! linkrun's integration tests: one binary (one link), one module per area. Each test runs the
//! real `linkrun` binary with a temporary home and a wiped environment through
//! [`common::Env`], against servers the test starts on 127.0.0.1 ([`common::Server`], the
//! sandbox emulators, a real OAuth 2.0 provider from npm, an OAuth 1.0a server from PyPI).
//!
//! Tests marked `#[ignore = "heavy ..."]` loop over many processes or requests; `cargo test`
//! leaves them out and `.ci/run` runs them apart with `cargo test -p linkrun -- --ignored`.
#![allow(clippy::unwrap_used)]

mod common;

mod auth_placement;
mod checks;
mod cli;
mod dc_portable;
mod deluge;
mod deluge_corpus;
mod deluge_run;
mod deluge_time;
mod demo;
mod examples;
mod host_rules;
mod hostile;
mod limits;
mod oauth1;
mod oauth2;
mod pages;
mod prebuilt;
mod prebuilt_servicenow;
mod prompt;
mod retry;
mod runs;
mod sandbox;
mod sandbox_data;
mod sandbox_deluge;
mod sandbox_limits;
mod script;
mod serve;
mod servicenow;
mod sync;
mod vault;
mod visitor;
mod zoho_tasks;
