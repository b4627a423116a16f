//! `rel versions`: a release's versions in rel's order, with their artifacts and channels.

use std::fmt::Write as _;

use anyhow::Result;
use rel_format::Version;
use rel_format::manifest::Kind;

use crate::args::NameArgs;
use crate::channels::listed;
use crate::output::bytes;
use crate::settings::Settings;

pub async fn run(s: &Settings, args: &NameArgs) -> Result<()> {
    let client = s.client();
    let list = client.versions(&args.name).await?;
    let channels = listed(&client, &args.name, list.versions.iter().flat_map(|v| &v.channels)).await?;
    if args.json {
        let mut out = serde_json::to_value(&list)?;
        out["channels"] = serde_json::to_value(&channels)?;
        crate::print_json(&out);
        return Ok(());
    }
    let mut out = String::new();
    for v in &list.versions {
        let mut parts = Vec::new();
        for a in &v.artifacts {
            match a.kind {
                Kind::Release => parts.push(format!("release {}", bytes(a.bytes))),
                Kind::Upgrade => {
                    let from: Vec<&str> = a.from.iter().map(Version::as_str).collect();
                    parts.push(format!("upgrade from {} {}", from.join(","), bytes(a.bytes)));
                }
            }
        }
        let created = v
            .artifacts
            .iter()
            .map(|a| a.created)
            .min()
            .map(|c| c.to_string())
            .unwrap_or_default();
        let mut flags = String::new();
        if !v.channels.is_empty() {
            let said: Vec<String> = channels
                .iter()
                .filter(|c| v.channels.contains(&c.channel))
                .map(|c| c.describe(&args.name))
                .collect();
            let _ = write!(flags, "  [{}]", said.join(", "));
        }
        match (v.yanked, &v.yank_reason) {
            (true, Some(reason)) => {
                let _ = write!(flags, "  (yanked: {})", rel_format::untrusted::escape_controls(reason));
            }
            (true, None) => flags.push_str("  (yanked)"),
            _ => {}
        }
        let _ = writeln!(out, "{:<32} {created}  {}{flags}", v.version.as_str(), parts.join("; "));
    }
    crate::print_raw(&out);
    Ok(())
}
