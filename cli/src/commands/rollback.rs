//! `rel rollback`: back to an installed older release, live, through the relups' downgrades
//! (one release at a time), with the host's config and hooks as an upgrade has them.

use std::collections::{BTreeMap, VecDeque};

use anyhow::{Context, Result, bail};
use rel_format::Version;
use serde::Serialize;

use crate::args::RollbackArgs;
use crate::settings::Settings;
use crate::target::node::Node;
use crate::target::{Host, deploy, relup_downgrades};

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    from: String,
    to: String,
    /// The live downgrades taken, in order; empty when the node was restarted instead.
    steps: Vec<(String, String)>,
    restarted: bool,
}

/// How a node went back.
#[derive(Debug)]
pub struct Back {
    pub steps: Vec<(Version, Version)>,
    pub restarted: bool,
}

impl Back {
    pub fn describe(&self) -> String {
        if self.restarted {
            "by a restart: no installed relup has that downgrade".into()
        } else {
            format!("live, {}, no restart", crate::output::count(self.steps.len(), "step"))
        }
    }
}

/// Takes the node from `current` back to the installed `target`: live through the relups'
/// downgrades, one release at a time, with the host's config, health check and hooks; or,
/// where no chain of downgrades exists, by a restart onto it.
pub async fn go_back(host: &mut Host, node: &Node, current: &Version, target: &Version) -> Result<Back> {
    let root = host.root().to_owned();
    let installed: Vec<Version> = node
        .releases()
        .await?
        .into_iter()
        .filter_map(|(v, _)| v.parse().ok())
        .collect();
    let Some(steps) = downgrade_chain(&root, current, target, &installed) else {
        host.begin("rollback", Some(current.as_str()), target.as_str())?;
        let outcome = deploy::restart_to(host, current, target).await;
        let (result, message) = match &outcome {
            Ok(deploy::Restarted::Running) => ("permanent", String::new()),
            Ok(deploy::Restarted::NextStart) => ("permanent at the next start", String::new()),
            Err(e) => ("failed", format!("{e:#}")),
        };
        host.record("rollback", Some(current.as_str()), target.as_str(), result, &message)?;
        if let Ok(deploy::Restarted::NextStart) = outcome {
            bail!(
                "no installed relup goes back from {current} to {target}, and no [restart] command is configured: {target} is now what the node boots; restart it"
            );
        }
        outcome?;
        return Ok(Back {
            steps: vec![],
            restarted: true,
        });
    };
    let host_files = host.host_files();
    let total = steps.len();
    for (i, (from, to)) in steps.iter().enumerate() {
        let env = [
            ("REL_NAME", host.layout.name.clone()),
            ("REL_FROM", from.to_string()),
            ("REL_TO", to.to_string()),
            ("REL_ROOT", root.display().to_string()),
            ("REL_STEP", (i + 1).to_string()),
            ("REL_STEPS", total.to_string()),
        ];
        host.begin("rollback", Some(from.as_str()), to.as_str())?;
        if let Err(e) = host.config.run_hooks(&root, true, &env) {
            let e = e.context(format!("pre-step hook before {from} -> {to}; the node stays on {from}"));
            host.record(
                "rollback",
                Some(from.as_str()),
                to.as_str(),
                "failed",
                &format!("{e:#}"),
            )?;
            return Err(e);
        }
        let driver = host.driver(node, &host_files);
        if let Err(e) = driver.install(from, to, false).await {
            host.record(
                "rollback",
                Some(from.as_str()),
                to.as_str(),
                "failed",
                &format!("{e:#}"),
            )?;
            return Err(e);
        }
        host.record("rollback", Some(from.as_str()), to.as_str(), "permanent", "")?;
        super::upgrade::post_step(host, &env, to, (i + 1 < total).then_some(target))?;
    }
    Ok(Back {
        steps,
        restarted: false,
    })
}

pub async fn run(s: &Settings, args: &RollbackArgs) -> Result<()> {
    let mut host = Host::open(&args.host.root, &args.name, args.host.host_config.as_deref())?;
    let node = host.node().await.context("a live rollback needs the running node")?;
    for line in host.recover(&node).await? {
        crate::warn(&format!("recovered: {line}"));
    }
    let current: Version = node.running_version().await?.parse()?;
    let installed: Vec<Version> = node
        .releases()
        .await?
        .into_iter()
        .filter_map(|(v, _)| v.parse().ok())
        .filter(|v| *v != current)
        .collect();
    // Back means an installed release older than the current one, in rel's order (a release
    // left by an earlier rollback is newer, not previous).
    let target = match &args.to {
        Some(v) if !installed.contains(v) => bail!(
            "{} {v} is not installed on this node (installed: {}); going there needs `rel upgrade --to {v}`",
            args.name,
            installed.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
        ),
        Some(v) if *v >= current => bail!("{v} is not older than {current}: use `rel upgrade --to {v}`"),
        Some(v) => v.clone(),
        None => installed
            .iter()
            .filter(|v| **v < current)
            .max()
            .cloned()
            .with_context(|| {
                format!(
                    "no release of {} older than {current} is installed on this node to go back to",
                    args.name
                )
            })?,
    };
    let back = go_back(&mut host, &node, &current, &target).await?;
    let report = Report {
        name: args.name.clone(),
        from: current.to_string(),
        to: target.to_string(),
        steps: back.steps.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect(),
        restarted: back.restarted,
    };
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        crate::say(&format!(
            "{} rolled back from {current} to {target} ({})",
            args.name,
            back.describe()
        ));
    }
    Ok(())
}

/// The shortest chain of downgrades from `current` to `target` through installed releases:
/// a release's relup (`releases/<vsn>/relup`) says which releases it can go back to.
pub(crate) fn downgrade_chain(
    root: &std::path::Path,
    current: &Version,
    target: &Version,
    installed: &[Version],
) -> Option<Vec<(Version, Version)>> {
    let mut came_from: BTreeMap<Version, Version> = BTreeMap::new();
    let mut queue = VecDeque::from([current.clone()]);
    while let Some(at) = queue.pop_front() {
        if at == *target {
            let mut chain = Vec::new();
            let mut step = at;
            while let Some(prev) = came_from.get(&step) {
                chain.push((prev.clone(), step.clone()));
                step = prev.clone();
            }
            chain.reverse();
            return Some(chain);
        }
        let downs = relup_downgrades(root, at.as_str()).unwrap_or_default();
        for d in downs.iter().filter_map(|d| d.parse::<Version>().ok()) {
            if installed.contains(&d) && d != *current && !came_from.contains_key(&d) {
                came_from.insert(d.clone(), at.clone());
                queue.push_back(d);
            }
        }
    }
    None
}
