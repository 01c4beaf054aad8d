//! The command-line interface (the CLI contract of DESIGN.md), one file per command group.
//!
//! stdout carries results only; progress, traces and errors go to stderr. Errors print one line,
//! `error: ...`, and set the exit code of [`crate::Error::exit_code`]; when the command line has
//! `--json`, a failure also prints one line on stdout (see [`error_line`]):
//! `{"error":{"kind":K,"message":M,"exit_code":N}}`.

/// `println!` for results: a closed stdout (`linkrun ... | head`) ends the command quietly.
macro_rules! outln {
    ($($t:tt)*) => { $crate::cli::write_out(format_args!($($t)*))? };
}

pub mod connection;
pub mod connection_error;
pub mod connection_limits;
pub mod demo;
pub mod port;
pub mod run;
pub mod runs;
pub mod sandbox;
pub mod serve;
pub mod service;
pub mod state;
pub mod sync;
pub mod trigger;
pub mod vault;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::home::Home;
use crate::{Error, Result};

/// linkrun: connections to SaaS APIs in an encrypted local vault, and Rhai scripts that call them.
#[derive(Debug, Parser)]
#[command(name = "linkrun", version, about, max_term_width = 100)]
pub struct Cli {
    /// linkrun's folder (vault, key file, installed services); default $LINKRUN_HOME, else
    /// $XDG_DATA_HOME/linkrun, else ~/.local/share/linkrun.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Trace each HTTP request (method, URL with credentials redacted, status, time) on stderr.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List, show and add services.
    #[command(subcommand)]
    Service(service::ServiceCmd),
    /// Create, inspect and delete connections.
    #[command(subcommand)]
    Connection(connection::ConnectionCmd),
    /// Run a Rhai script or a Deluge function (`.dg`, `.deluge`).
    Run(run::RunArgs),
    /// Translate a Deluge function to Rhai (what `run FILE.dg` runs).
    Port(port::PortArgs),
    /// Inspect and rekey the vault.
    #[command(subcommand)]
    Vault(vault::VaultCmd),
    /// List and clear the values scripts keep with `state_set`.
    #[command(subcommand)]
    State(state::StateCmd),
    /// The record of every run: status, times, input, result, `info` lines, requests.
    #[command(subcommand)]
    Runs(runs::RunsCmd),
    /// Take webhooks and run schedules: the triggers' scripts run unattended, each run recorded.
    Serve(serve::ServeArgs),
    /// Add, list, show, delete and rotate the triggers serve runs (webhooks, schedules).
    #[command(subcommand)]
    Trigger(trigger::TriggerCmd),
    /// Declared syncs between ServiceNow and Zoho CRM (or two CRM orgs): add, list, run (Sync
    /// Now), status, reset.
    #[command(subcommand)]
    Sync(sync::SyncCmd),
    /// Serve local emulators of Zoho Accounts (OAuth), CRM, Desk, Campaigns and ServiceNow (OAuth
    /// and Table API) on 127.0.0.1.
    ///
    /// Two Zoho organisations, Org A ("us") and Org B ("in"), each with its own OAuth client, and
    /// one ServiceNow instance (OAuth 2.0 and Basic auth, Table API). The banner prints the base
    /// URL, the clients and the commands to connect; the prebuilt services' `sandbox` data center
    /// (Zoho) and `sandbox` instance (ServiceNow) point at $LINKRUN_SANDBOX_URL, default
    /// http://127.0.0.1:8780.
    Sandbox(sandbox::SandboxArgs),
    /// Run the example integrations against an in-process sandbox: no set-up, no internet.
    Demo(demo::DemoArgs),
    /// Print the completion script of a shell on stdout.
    ///
    /// bash: `linkrun completions bash > ~/.local/share/bash-completion/completions/linkrun`;
    /// zsh: write `_linkrun` into a folder of `$fpath`; fish:
    /// `linkrun completions fish > ~/.config/fish/completions/linkrun.fish`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Parses the command line, runs it, prints any error, and returns the exit code.
pub fn main() -> i32 {
    let json = json_requested(std::env::args_os().skip(1));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            if json && code != 0 {
                let rendered = e.render().to_string();
                let first = rendered.lines().next().unwrap_or_default();
                print_error_line(first.strip_prefix("error: ").unwrap_or(first), code);
            }
            return code;
        }
    };
    match dispatch(cli) {
        Ok(()) => 0,
        Err(Error::StdoutClosed) => 0,
        Err(Error::Exit(n)) => n,
        Err(e) => {
            eprintln!("error: {e}");
            let code = e.exit_code();
            if json && code != 0 {
                print_error_line(&e.to_string(), code);
            }
            code
        }
    }
}

/// Whether the command line asks for JSON: a `--json` argument before any `--`.
pub fn json_requested<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> bool {
    args.into_iter().take_while(|a| a != "--").any(|a| a == "--json")
}

/// The `kind` of the `--json` error line for an exit code: `script` (1, and any other code a
/// script chose), `usage` (2), `vault` (3), `connection` (4).
pub fn error_kind(exit_code: i32) -> &'static str {
    match exit_code {
        2 => "usage",
        3 => "vault",
        4 => "connection",
        _ => "script",
    }
}

/// The `--json` error line, compact and with its keys in this order:
/// `{"error":{"kind":K,"message":M,"exit_code":N}}`.
pub fn error_line(message: &str, exit_code: i32) -> String {
    let text = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        "{{\"error\":{{\"kind\":{},\"message\":{},\"exit_code\":{exit_code}}}}}",
        text(error_kind(exit_code)),
        text(message)
    )
}

/// Prints the `--json` error line on stdout; a closed stdout is ignored (the exit code tells).
fn print_error_line(message: &str, exit_code: i32) {
    let _ = write_out(format_args!("{}", error_line(message, exit_code)));
}

fn dispatch(cli: Cli) -> Result<()> {
    if let Command::Completions { shell } = cli.command {
        return completions(shell);
    }
    let home = Home::resolve(cli.home)?;
    match cli.command {
        Command::Service(c) => service::run(&home, c),
        Command::Connection(c) => connection::run(&home, c),
        Command::Run(a) => run::run(&home, a, cli.verbose),
        Command::Port(a) => port::run(a),
        Command::Vault(c) => vault::run(&home, c),
        Command::State(c) => state::run(&home, c),
        Command::Runs(c) => runs::run(&home, c),
        Command::Serve(a) => serve::run(&home, a),
        Command::Trigger(c) => trigger::run(&home, c),
        Command::Sync(c) => sync::run(&home, c),
        Command::Sandbox(a) => sandbox::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Completions { shell } => completions(shell),
    }
}

/// `linkrun completions SHELL`: the script, written at once (a closed stdout ends it quietly).
fn completions(shell: clap_complete::Shell) -> Result<()> {
    use clap::CommandFactory as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "linkrun", &mut script);
    let text = String::from_utf8(script).map_err(|e| Error::Io {
        what: "the completion script is not UTF-8".into(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    write_out(format_args!("{}", text.trim_end()))
}

/// Asks `question` on the terminal (`[y/N]`); without one, fails with `refusal` (which names
/// the flag to pass). `Ok(false)` when the answer is not yes.
pub fn confirm(question: &str, refusal: String) -> Result<bool> {
    use std::io::Write as _;
    if !interactive() {
        return Err(Error::Usage(refusal));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|source| Error::Io { what: "cannot read the answer".into(), source })?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Whether stdin is a terminal we may prompt on.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Prints a JSON document on stdout.
pub fn print_json(v: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Error::Io { what: "cannot write the result".into(), source: e.into() })?;
    outln!("{text}");
    Ok(())
}

/// Writes one line of results on stdout; a closed stdout becomes [`Error::StdoutClosed`].
pub fn write_out(args: std::fmt::Arguments<'_>) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).and_then(|_| out.write_all(b"\n")).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Error::StdoutClosed
        } else {
            Error::Io { what: "cannot write the result".into(), source: e }
        }
    })
}
