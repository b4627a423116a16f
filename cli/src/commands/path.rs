//! `rel path`: the cheapest upgrade path between two versions.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use rel_format::upgrade_path::Strategy;

use crate::args::PathArgs;
use crate::output::bytes;
use crate::settings::Settings;

pub async fn run(s: &Settings, args: &PathArgs) -> Result<()> {
    let client = s.client();
    let from = crate::shorthand::resolve(&client, &args.name, &args.from, s.quiet).await?;
    let to = crate::shorthand::resolve(&client, &args.name, &args.to, s.quiet).await?;
    let plan = client.path(&args.name, &from, &to).await.context("no upgrade path")?;
    if args.json {
        crate::print_json(&plan);
        return Ok(());
    }
    let mut out = String::new();
    let how = match plan.strategy {
        Strategy::AlreadyThere => "nothing to do",
        Strategy::HotUpgrade => "hot upgrade, no restart",
        Strategy::Synthesised => "hot upgrade built on the host from the two releases, no restart",
        Strategy::FullRelease => "full release, restarts the node",
    };
    let _ = writeln!(out, "{} {} -> {}: {how}", args.name, plan.from, plan.to);
    for (i, step) in plan.steps.iter().enumerate() {
        let from = step
            .from
            .as_ref()
            .map_or_else(|| "(install)".to_owned(), ToString::to_string);
        let _ = writeln!(
            out,
            "  {}. {:<11} {from} -> {}  {}",
            i + 1,
            step.kind.to_string(),
            step.to,
            bytes(step.bytes)
        );
    }
    let _ = writeln!(out, "  total {}: {}", bytes(plan.total_bytes), plan.reason);
    crate::print_raw(&out);
    Ok(())
}
