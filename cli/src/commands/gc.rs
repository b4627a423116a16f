//! `rel gc`.

use anyhow::Result;
use rel_format::api::GcRequest;

use crate::args::GcArgs;
use crate::output::bytes;
use crate::settings::Settings;

pub async fn run(s: &Settings, args: &GcArgs) -> Result<()> {
    let report = s
        .client()
        .gc(GcRequest {
            grace_seconds: args.grace_seconds,
            dry_run: args.dry_run,
        })
        .await?;
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        crate::say(&format!(
            "{} manifests reference {} chunks; {} chunks stored; deleted {} ({}; {} packs deleted, {} rewritten); {} waiting out the grace period; {} leftovers of interrupted writes deleted ({}){}",
            report.manifests,
            report.chunks_referenced,
            report.chunks_seen,
            report.chunks_deleted,
            bytes(report.bytes_deleted),
            report.packs_deleted,
            report.packs_rewritten,
            report.chunks_in_grace,
            report.debris_deleted,
            bytes(report.debris_bytes),
            if report.dry_run { " (dry run)" } else { "" }
        ));
    }
    Ok(())
}
