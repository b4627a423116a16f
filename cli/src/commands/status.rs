//! `rel status`: what a host runs, from rel's state in ROOT, OTP's own `RELEASES` and
//! `start_erl.data`, and the node when it answers.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::args::StatusArgs;
use crate::settings::Settings;
use crate::target::layout::Tool;
use crate::target::releases_file::ReleasesFile;
use crate::target::state::Operation;
use crate::target::{Host, read_start_erl_data};

#[derive(Debug, Serialize)]
struct Status {
    schema_version: u32,
    name: String,
    root: String,
    /// `mix`, `relx` or `systools`.
    tool: Tool,
    /// Whether the node answered.
    node_up: bool,
    /// What it runs (`current`, else `permanent`), when it answered.
    running: Option<String>,
    /// What a restart boots (`start_erl.data`).
    boots: Option<String>,
    releases: Vec<Release>,
    last: Option<Operation>,
    /// An operation begun and not finished (rel was stopped): the next `rel upgrade` or
    /// `rel rollback` completes or undoes it.
    pending: Option<Operation>,
    channel: Option<String>,
}

#[derive(Debug, Serialize)]
struct Release {
    version: String,
    /// As `release_handler` knows it: permanent, current, old or unpacked.
    status: String,
    signer: Option<String>,
}

pub async fn run(s: &Settings, args: &StatusArgs) -> Result<()> {
    let host = Host::open(&args.host.root, &args.name, args.host.host_config.as_deref())?;
    let root = host.root().to_owned();
    // The node's own view, if it answers soon; else what is on disk.
    let asked = tokio::time::timeout(Duration::from_secs(10), async {
        let node = host.node().await.ok()?;
        node.releases().await.ok()
    })
    .await
    .ok()
    .flatten();
    let node_up = asked.is_some();
    let listed = match asked {
        Some(l) => l,
        None => ReleasesFile::read(&root)?.releases(),
    };
    let running = node_up
        .then(|| {
            let with = |st: &str| listed.iter().find(|(_, s)| s == st).map(|(v, _)| v.clone());
            with("current").or_else(|| with("permanent"))
        })
        .flatten();
    let state = host.state.as_ref();
    let status = Status {
        schema_version: 1,
        name: args.name.clone(),
        root: root.display().to_string(),
        tool: host.layout.tool,
        node_up,
        running,
        boots: read_start_erl_data(&root).ok().map(|(_, v)| v),
        releases: listed
            .iter()
            .map(|(v, st)| Release {
                version: v.clone(),
                status: st.clone(),
                signer: state.and_then(|s| s.installed.get(v)).map(|i| i.signer.clone()),
            })
            .collect(),
        last: state.and_then(|s| s.last.clone()),
        pending: state.and_then(|s| s.pending.clone()),
        channel: state.and_then(|s| s.channel.clone()),
    };
    if args.json {
        crate::print_json(&status);
        return Ok(());
    }
    if s.quiet {
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(out, "{} in {} ({})", status.name, status.root, status.tool);
    let _ = match (&status.running, status.node_up) {
        (Some(v), _) => writeln!(out, "  node      up, running {v}"),
        (None, true) => writeln!(out, "  node      up"),
        (None, false) => writeln!(out, "  node      not answering"),
    };
    if let Some(b) = &status.boots {
        let _ = writeln!(out, "  restart   boots {b}");
    }
    let _ = writeln!(out, "  releases");
    for r in &status.releases {
        let signer = r
            .signer
            .as_deref()
            .map(|s| format!(", signed by {s}"))
            .unwrap_or_default();
        let _ = writeln!(out, "    {:<32} {}{signer}", r.version, r.status);
    }
    if let Some(op) = &status.last {
        let from = op.from.as_deref().map(|f| format!("{f} -> ")).unwrap_or_default();
        let _ = writeln!(out, "  last      {} {from}{}: {} at {}", op.op, op.to, op.result, op.at);
        if !op.message.is_empty() {
            let _ = writeln!(out, "            {}", op.message);
        }
    }
    if let Some(op) = &status.pending {
        let from = op.from.as_deref().map(|f| format!("{f} -> ")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  pending   {} {from}{}, begun at {} and not finished: the next rel upgrade or rollback completes or undoes it",
            op.op, op.to, op.at
        );
    }
    if let Some(c) = &status.channel {
        let _ = writeln!(out, "  follows   channel {c}");
    }
    crate::print_raw(&out);
    Ok(())
}
