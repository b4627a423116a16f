//! `rel list`: the releases a registry holds (those the caller may see), each with its
//! latest version, its version count and where its channels point.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use futures::{StreamExt as _, TryStreamExt as _};
use rel_format::Version;
use serde::Serialize;

use crate::args::ListArgs;
use crate::settings::Settings;

/// Listings asked for at once.
const CONCURRENCY: usize = 8;

/// One release in `rel list --json`.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    /// The newest version that is not yanked; none when every version is.
    latest: Option<Version>,
    versions: usize,
    yanked: usize,
    /// Channel name → the version it points at.
    channels: BTreeMap<String, Version>,
}

pub async fn run(s: &Settings, args: &ListArgs) -> Result<()> {
    let client = s.client();
    let names = client.names().await?.releases;
    let listed: Vec<Listed> = futures::stream::iter(names)
        .map(|name| {
            let client = &client;
            async move {
                let list = client.versions(&name).await?;
                let mut channels = BTreeMap::new();
                for v in &list.versions {
                    for c in &v.channels {
                        channels.insert(c.clone(), v.version.clone());
                    }
                }
                Ok::<_, anyhow::Error>(Listed {
                    latest: list
                        .versions
                        .iter()
                        .rev()
                        .find(|v| !v.yanked)
                        .map(|v| v.version.clone()),
                    versions: list.versions.len(),
                    yanked: list.versions.iter().filter(|v| v.yanked).count(),
                    channels,
                    name,
                })
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    if args.json {
        crate::print_json(&serde_json::json!({ "releases": listed }));
        return Ok(());
    }
    if listed.is_empty() {
        if !s.quiet {
            crate::say("no releases stored yet (push one with `rel push`)");
        }
        return Ok(());
    }
    let width = listed.iter().map(|l| l.name.len()).max().unwrap_or(0).max(4);
    let mut out = String::new();
    for l in &listed {
        let latest = l.latest.as_ref().map_or("(all yanked)", Version::as_str);
        let mut counts = format!("{} version{}", l.versions, if l.versions == 1 { "" } else { "s" });
        if l.yanked > 0 {
            let _ = write!(counts, ", {} yanked", l.yanked);
        }
        let channels: Vec<String> = l.channels.iter().map(|(c, v)| format!("{c}={v}")).collect();
        let channels = if channels.is_empty() {
            String::new()
        } else {
            format!("  [{}]", channels.join(", "))
        };
        let _ = writeln!(out, "{:<width$}  {latest:<32} {counts}{channels}", l.name);
    }
    crate::print_raw(&out);
    Ok(())
}
