//! `rel appup`: the appups for upgrading one release to another, written to a folder.

use std::path::PathBuf;

use anyhow::Result;
use rel_format::appup::{AppupSource, render};
use serde::Serialize;

use crate::args::AppupArgs;
use crate::fetch::{Fetcher, JOBS};
use crate::settings::Settings;
use crate::upgrades::{Overrides, any_stored, snapshots};

#[derive(Debug, Serialize)]
struct AppupReport {
    app: String,
    from: Vec<String>,
    to: String,
    source: &'static str,
    file: PathBuf,
}

pub(crate) fn source_name(s: AppupSource) -> &'static str {
    match s {
        AppupSource::Generated => "generated",
        AppupSource::Shipped => "shipped",
        AppupSource::User => "user",
    }
}

pub async fn run(s: &Settings, args: &AppupArgs) -> Result<()> {
    let overrides = Overrides::read(args.making.appup_dir.as_deref())?;
    let trusted = match any_stored([&args.from, &args.to]) {
        true => Some(s.trusted(&args.making.trust.trusted_keys)?),
        false => None,
    };
    let fetcher = Fetcher::new(s, JOBS);
    let parsed = &mut rel_format::snapshot::ParsedModules::default();
    let [from, to]: [_; 2] = snapshots(&fetcher, trusted.as_ref(), None, &[&args.from, &args.to], parsed)
        .await?
        .try_into()
        .expect("two snapshots");
    let (plans, warnings) = overrides.plan(&[&from], &to);
    std::fs::create_dir_all(&args.out)?;
    let mut report = Vec::new();
    for p in &plans {
        let file = args.out.join(format!("{}.appup", p.app));
        std::fs::write(&file, render(p))?;
        report.push(AppupReport {
            app: p.app.clone(),
            from: p.from_vsns.clone(),
            to: p.to_vsn.clone(),
            source: source_name(p.source),
            file,
        });
    }
    for w in &warnings {
        crate::warn(w);
    }
    if args.making.json {
        crate::print_json(&serde_json::json!({ "appups": report, "warnings": warnings }));
    } else if !s.quiet {
        if report.is_empty() {
            crate::say("no application changed its vsn: no appup needed");
        }
        for r in &report {
            crate::say(&format!(
                "{} {} -> {} ({}): {}",
                r.app,
                r.from.join(","),
                r.to,
                r.source,
                r.file.display()
            ));
        }
    }
    Ok(())
}
