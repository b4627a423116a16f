//! `rel build-upgrade`: an upgrade artifact (relup and changed libs only), written out and/or
//! signed and pushed.

use std::path::PathBuf;

use anyhow::Result;
use rel_format::manifest::Kind;
use serde::Serialize;

use super::appup::source_name;
use crate::UsageError;
use crate::args::BuildUpgradeArgs;
use crate::output::bytes;
use crate::settings::Settings;
use crate::upgrades::{UpgradeRequest, any_stored, build};
use crate::upload::{PushRequest, push};
use crate::values::ReleaseRef;

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    from: Vec<String>,
    to: String,
    appups: Vec<String>,
    bytes: u64,
    output: Option<PathBuf>,
    pushed: bool,
}

pub async fn run(s: &Settings, args: &BuildUpgradeArgs) -> Result<()> {
    if args.output.is_none() && !args.push {
        return Err(UsageError::new("say where the upgrade goes: -o FILE, --push, or both").into());
    }
    if let ReleaseRef::Stored { version: to, .. } = &args.to
        && args
            .from
            .iter()
            .any(|f| matches!(f, ReleaseRef::Stored { version, .. } if version == to))
    {
        return Err(UsageError::new(format!("--from and --to are the same version {to}")).into());
    }
    let key = if args.push {
        Some(s.secret_key(args.key.as_ref())?)
    } else {
        None
    };
    let trusted = match any_stored(args.from.iter().chain([&args.to])) {
        true => Some(s.trusted(&args.making.trust.trusted_keys)?),
        false => None,
    };
    let req = UpgradeRequest {
        name: args.name.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        appup_dir: args.making.appup_dir.clone(),
    };
    let built = build(s, trusted.as_ref(), &req).await?;
    for w in &built.warnings {
        crate::warn(w);
    }
    if let Some(out) = &args.output {
        let mut file = crate::fs::TarFile::create(out)?;
        std::io::copy(&mut std::fs::File::open(&built.tar)?, &mut file)?;
        file.commit()?;
    }
    if let Some(key) = &key {
        let req = PushRequest {
            path: built.tar.clone(),
            kind: Kind::Upgrade,
            from: built.from.clone(),
            name: None,
            version: None,
            jobs: 8,
            include_secrets: false,
            dry_run: false,
        };
        push(s, Some(key), &req).await?;
    }
    let report = Report {
        name: args.name.clone(),
        from: built.from.iter().map(ToString::to_string).collect(),
        to: built.to.to_string(),
        appups: built
            .plans
            .iter()
            .map(|p| format!("{} ({})", p.app, source_name(p.source)))
            .collect(),
        bytes: built.bytes,
        output: args.output.clone(),
        pushed: args.push,
    };
    if args.making.json {
        crate::print_json(&report);
    } else if !s.quiet {
        crate::say(&format!(
            "upgrade {} {} -> {}: {} (appups: {}){}{}",
            report.name,
            report.from.join(","),
            report.to,
            bytes(report.bytes),
            if report.appups.is_empty() {
                "none".to_owned()
            } else {
                report.appups.join(", ")
            },
            report
                .output
                .as_ref()
                .map(|o| format!("; wrote {}", o.display()))
                .unwrap_or_default(),
            if report.pushed { "; pushed" } else { "" }
        ));
    }
    Ok(())
}
