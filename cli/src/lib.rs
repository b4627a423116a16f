//! The `rel` command's library: what the binary runs, usable in-process by tests.
//!
//! Layout: [`args`] is the command line; [`commands`] has one thin module per command, each
//! parsing its arguments, calling an engine and rendering the result. The engines:
//! [`upload`] (push), [`fetch`] (pull, verified), [`channels`] (signed pointers, rollback
//! protection), [`upgrades`] (appups, relups, upgrade artifacts) and [`target`] (an OTP
//! target system on a host and its running node). Below them: [`client`] (the registry API),
//! [`cache`] (chunks kept between pulls), [`fs`] (archiving folders, safe extraction,
//! atomic tarballs) and [`settings`] (flags, environment, config file).
//!
//! Output discipline: results go to stdout (`--json` on every reading command), progress
//! and messages to stderr; errors print as `error: ...`, then one `caused by: ...` line per
//! cause, then a `hint: ...` where one helps. Exit codes: 0 success, 1 failure, 2 usage.

#![forbid(unsafe_code)]

pub mod args;
pub mod cache;
pub mod channels;
pub mod client;
pub mod commands;
pub mod env;
pub mod fault;
pub mod fetch;
pub mod fs;
pub mod keys;
pub mod name_at;
pub mod output;
pub mod progress;
pub mod settings;
pub mod shorthand;
pub mod target;
pub mod upgrades;
pub mod upload;
pub mod values;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

pub use output::{print_json, print_raw, say, warn};

use crate::args::{Cli, Command};

/// A mistake in how rel was called: reported like any error, but the exit code is 2, and it
/// is raised before any work is done.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

impl UsageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The current time, to the second.
pub fn now() -> rel_format::Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rel_format::Timestamp::from_unix(secs as i64).expect("the clock is within 0000..9999")
}

fn init_logging(verbose: u8, serving: bool, json: bool) {
    // -v: what rel does (each request with its status and time, what a transfer took from
    // the cache); -vv: rel's own detail; -vvv: everything, the HTTP stack's connections too.
    let default = match (verbose, serving) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        (2, _) => "info,rel=debug,rel_format=debug,rel_registry=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder.with_ansi(ansi).try_init()
    };
}

/// Runs `rel` with these arguments (the first is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = name_at::expand(args.into_iter().map(Into::into).collect());
    // With --json, errors are JSON too (on stderr), usage errors included.
    let json = args.iter().any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if json && e.use_stderr() => {
            output::report_json(&e.kind().to_string(), &e.render().to_string(), &[], None, None, 2);
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.global.verbose, cli.command.is_serve(), cli.command.logs_json());
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.chain().any(|c| c.is::<UsageError>()) { 2 } else { 1 };
            if json {
                let causes: Vec<String> = e.chain().skip(1).map(ToString::to_string).collect();
                let kind = if code == 2 { "usage" } else { "failure" };
                let id = output::request_id(&e);
                output::report_json(
                    kind,
                    &e.to_string(),
                    &causes,
                    output::hint(&e).as_deref(),
                    id.as_deref(),
                    code,
                );
            } else {
                output::report(&e);
            }
            ExitCode::from(code)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    use commands::*;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    let settings = || settings::Settings::resolve(&cli.global);
    match &cli.command {
        #[cfg(feature = "serve")]
        Command::Serve(a) => rt.block_on(serve::run(a)),
        Command::Keygen(a) => keygen::run(a, cli.global.quiet),
        #[cfg(feature = "serve")]
        Command::Token(a) => token::run(a, cli.global.quiet),
        Command::Push(a) => rt.block_on(push::run(&settings()?, a)),
        Command::Pull(a) => rt.block_on(pull::run(&settings()?, a)),
        Command::List(a) => rt.block_on(list::run(&settings()?, a)),
        Command::Versions(a) => rt.block_on(versions::run(&settings()?, a)),
        Command::Show(a) => rt.block_on(show::run(&settings()?, a)),
        Command::Path(a) => rt.block_on(path::run(&settings()?, a)),
        Command::Promote(a) => rt.block_on(promote::run(&settings()?, a)),
        Command::Yank(a) => rt.block_on(yank::run(&settings()?, a)),
        Command::Verify(a) => rt.block_on(verify::run(&settings()?, a)),
        Command::Version(a) => version::run(a),
        Command::Gc(a) => rt.block_on(gc::run(&settings()?, a)),
        Command::Appup(a) => rt.block_on(appup::run(&settings()?, a)),
        Command::BuildUpgrade(a) => rt.block_on(build_upgrade::run(&settings()?, a)),
        Command::Install(a) => rt.block_on(install::run(&settings()?, a)),
        Command::Adopt(a) => rt.block_on(adopt::run(&settings()?, a)),
        Command::Upgrade(a) => rt.block_on(upgrade::run(&settings()?, a)),
        Command::Rollback(a) => rt.block_on(rollback::run(&settings()?, a)),
        Command::Status(a) => rt.block_on(status::run(&settings()?, a)),
        Command::ReloadConfig(a) => rt.block_on(reload_config::run(&settings()?, a)),
        Command::Completions(a) => completions::run(a),
    }
}
