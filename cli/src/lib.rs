//! The `rel` command's library: what the binary runs, usable in-process by tests.
//!
//! Output discipline: results go to stdout (`--json` on every reading command), progress
//! and messages to stderr; errors print as `error: ...`, then one `caused by: ...` line per
//! cause, then a `hint: ...` where one helps. Exit codes: 0 success, 1 failure, 2 usage.

#![forbid(unsafe_code)]

pub mod cache;
pub mod cli;
pub mod client;
pub mod commands;
pub mod env;
pub mod host;
pub mod local;
pub mod progress;
pub mod settings;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::client::ClientError;

/// Prints a line for people (stderr).
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints a warning (stderr).
pub fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {line}");
}

/// Prints requested output (stdout); a closed pipe is not an error.
pub fn print_raw(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) {
    print_raw(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).expect("outputs serialise")
    ));
}

/// A hint for errors where the next step is not obvious.
fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return match c {
                ClientError::Transport { url, .. } => Some(format!(
                    "is a registry running at {}? Start one with `rel serve`, or point REL_REGISTRY / --registry elsewhere",
                    url.split("/v1/").next().unwrap_or(url)
                )),
                ClientError::Api { status, .. } if *status == 401 => {
                    Some("pass a token with --token or REL_TOKEN".into())
                }
                ClientError::Api { status, .. } if *status == 409 => {
                    Some("versions are immutable: build and push a new version instead".into())
                }
                _ => None,
            };
        }
        if let Some(rel_format::SignatureError::Untrusted { .. }) = cause.downcast_ref::<rel_format::SignatureError>() {
            return Some("add the publisher's public key with --trusted-key NAME.pub (or REL_TRUSTED_KEYS)".into());
        }
        if let Some(rel_format::channel::ChannelError::Rollback { .. }) = cause.downcast_ref() {
            return Some("if you really mean to go back, pass --allow-downgrade".into());
        }
    }
    None
}

fn report(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {err}");
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {cause}");
    }
    if let Some(h) = hint(err) {
        let _ = writeln!(stderr, "hint: {h}");
    }
}

fn init_logging(verbose: u8, serving: bool) {
    let default = match (verbose, serving) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("REL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

/// Runs `rel` with these arguments (the first is the program name).
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_logging(cli.global.verbose, matches!(cli.command, Command::Serve(_)));
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(1)
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
        Command::Serve(a) => rt.block_on(serve::run(a)),
        Command::Keygen(a) => keygen::run(a, cli.global.quiet),
        Command::Push(a) => rt.block_on(push::run(&settings()?, a)),
        Command::Pull(a) => rt.block_on(pull::run(&settings()?, a)),
        Command::Versions(a) => rt.block_on(listing::versions(&settings()?, a)),
        Command::Show(a) => rt.block_on(listing::show(&settings()?, a)),
        Command::Path(a) => rt.block_on(listing::path(&settings()?, a)),
        Command::Promote(a) => rt.block_on(promote::run(&settings()?, a)),
        Command::Yank(a) => rt.block_on(promote::yank(&settings()?, a)),
        Command::Verify(a) => rt.block_on(verify::run(&settings()?, a)),
        Command::Version(a) => version::run(a),
        Command::Gc(a) => rt.block_on(gc::run(&settings()?, a)),
        Command::Appup(a) => rt.block_on(upgrade::appup(&settings()?, a)),
        Command::Install(a) => rt.block_on(host::install(&settings()?, a)),
        Command::Upgrade(a) => rt.block_on(host::upgrade(&settings()?, a)),
        Command::Rollback(a) => rt.block_on(host::rollback(&settings()?, a)),
        Command::BuildUpgrade(a) => rt.block_on(upgrade::build(&settings()?, a)),
        Command::Completions(a) => {
            let mut out = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "rel", &mut out);
            print_raw(&String::from_utf8_lossy(&out));
            Ok(())
        }
    }
}
