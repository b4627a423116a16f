//! `rel completions`: shell completions.

use clap::CommandFactory;

use crate::args::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "rel", &mut out);
    crate::print_raw(&String::from_utf8_lossy(&out));
    Ok(())
}
