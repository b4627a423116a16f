//! `rel rollback`: back to an installed older release, live, through the relups' downgrades
//! (one release at a time), with the host's config and hooks as an upgrade has them.

use std::collections::{BTreeMap, VecDeque};

use anyhow::{Context, Result, bail};
use rel_format::Version;
use serde::Serialize;

use rel_format::TrustedKeys;
use rel_format::term::Term;

use crate::args::RollbackArgs;
use crate::fetch::Fetcher;
use crate::settings::Settings;
use crate::target::config::HotPolicy;
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
    /// The downgrade was built on this host from the two releases.
    pub synthesised: bool,
}

impl Back {
    pub fn describe(&self) -> String {
        if self.restarted {
            "by a restart: no installed relup has that downgrade".into()
        } else if self.synthesised {
            "live, through a downgrade built here from the two releases, no restart".into()
        } else {
            format!("live, {}, no restart", crate::output::count(self.steps.len(), "step"))
        }
    }
}

/// What going back needs to build a downgrade here when no installed relup has one: the
/// registry (in `s`) and the keys its releases are signed with.
#[derive(Debug, Clone, Copy)]
pub struct Synthesis<'a> {
    pub s: &'a Settings,
    pub trusted: &'a TrustedKeys,
}

/// Prepares a live downgrade from `current` to `target` that no installed relup has: the
/// upgrade from `target` to `current` is built from the two stored releases (refused unless
/// the generator is sure, as for an upgrade), `target` is laid beside and registered with
/// `release_handler` (`set_unpacked/2`), and the downgrade to it is added to
/// `releases/<current>/relup`, where `install_release` looks for one.
async fn prepare_synthesised_downgrade(
    host: &Host,
    node: &Node,
    syn: Synthesis<'_>,
    current: &Version,
    target: &Version,
) -> Result<()> {
    let name = host.layout.name.clone();
    let fetcher = Fetcher::new(syn.s, crate::fetch::JOBS);
    deploy::stage(host, &fetcher, syn.trusted, target).await?;
    let facts = (&crate::target::release_spec(host.root(), &name, target.as_str())?).into();
    if let Some(why) = super::upgrade::needs_restart(host.root(), &name, current, &facts, false)? {
        bail!("{why}");
    }
    crate::target::content::recover_installed(host.root(), &name, &[current, target], &syn.s.cache_dir);
    let built = crate::upgrades::synthesise(syn.s, syn.trusted, &name, target, current).await?;
    let known = node.releases().await?.iter().any(|(v, _)| v == target.as_str());
    if !known {
        let rel_file = host.root().join(format!("releases/{target}/{name}.rel"));
        let done = node
            .call(
                "release_handler",
                "set_unpacked",
                vec![Term::string(&rel_file.to_string_lossy()), Term::List(vec![])],
            )
            .await?;
        if !matches!(done.as_tuple(), Some([ok, _]) if ok.as_atom() == Some("ok")) {
            bail!("release_handler did not take {target} as unpacked: {done}");
        }
    }
    // The built relup's downgrade to `target`, into the installed relup of `current`.
    let built_relup = read_member(&built.tar, &format!("releases/{current}/relup"))?;
    let down = relup_entries_of(&built_relup, 2)?
        .into_iter()
        .find(|e| entry_version(e).as_deref() == Some(target.as_str()))
        .with_context(|| format!("the built relup has no downgrade to {target}"))?;
    let path = host.root().join(format!("releases/{current}/relup"));
    // A release installed whole (a restart deploy, a cold install) has none yet.
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("{{{},[],[]}}.", Term::string(current.as_str())),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    };
    let mut installed = rel_format::term::parse_terms(&path.to_string_lossy(), &text)?
        .into_iter()
        .next()
        .with_context(|| format!("`{}` is empty", path.display()))?;
    let Term::Tuple(parts) = &mut installed else {
        bail!("`{}` is not a relup", path.display());
    };
    let Some(Term::List(downs)) = parts.get_mut(2) else {
        bail!("`{}` is not a relup", path.display());
    };
    downs.retain(|e| entry_version(e).as_deref() != Some(target.as_str()));
    downs.push(down);
    crate::target::write_atomic(&path, format!("{installed}.\n").as_bytes())
}

fn entry_version(entry: &Term) -> Option<String> {
    entry.as_tuple().and_then(|t| t.first()).and_then(Term::as_string)
}

/// The entries of a relup's up (`which` 1) or down (2) list.
fn relup_entries_of(text: &str, which: usize) -> Result<Vec<Term>> {
    let relup = rel_format::term::parse_terms("relup", text)?
        .into_iter()
        .next()
        .context("an empty relup")?;
    Ok(relup
        .as_tuple()
        .and_then(|t| t.get(which))
        .and_then(Term::as_list)
        .map(|l| l.into_owned())
        .unwrap_or_default())
}

/// The text of member `path` of the tar at `tar`.
fn read_member(tar: &std::path::Path, path: &str) -> Result<String> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy() == path {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text)?;
            return Ok(text);
        }
    }
    bail!("the built upgrade has no {path}")
}

/// Takes the node from `current` back to the installed `target`: live through the relups'
/// downgrades, one release at a time, with the host's config, health check and hooks; or,
/// where no chain of downgrades exists, by a restart onto it.
pub async fn go_back(
    host: &mut Host,
    node: &Node,
    current: &Version,
    target: &Version,
    synthesis: Option<Synthesis<'_>>,
) -> Result<Back> {
    let root = host.root().to_owned();
    let installed: Vec<Version> = node
        .releases()
        .await?
        .into_iter()
        .filter_map(|(v, _)| v.parse().ok())
        .collect();
    let mut synthesised = false;
    let mut chain = downgrade_chain(&root, current, target, &installed);
    if let (None, Some(syn)) = (&chain, synthesis.filter(|_| host.config.hot == HotPolicy::Synthesised)) {
        match prepare_synthesised_downgrade(host, node, syn, current, target).await {
            Ok(()) => {
                chain = Some(vec![(current.clone(), target.clone())]);
                synthesised = true;
            }
            Err(e) if e.downcast_ref::<crate::upgrades::NotSure>().is_some() => return Err(e),
            Err(e) => crate::warn(&format!(
                "cannot build the downgrade here ({e:#}); going back by a restart"
            )),
        }
    }
    let Some(steps) = chain else {
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
            synthesised: false,
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
        synthesised,
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
    // A downgrade no installed relup has can be built here when trusted keys are configured.
    let trusted = s.trusted(&args.trust.trusted_keys).ok();
    let synthesis = trusted.as_ref().map(|trusted| Synthesis { s, trusted });
    let back = go_back(&mut host, &node, &current, &target, synthesis).await?;
    if let Err(e) = host.pin_installed(&s.cache_dir) {
        crate::warn(&format!("cannot pin {} in the cache: {e:#}", args.name));
    }
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
