//! `rel upgrade`: the running node taken to a version or a channel, live, step by step.

use std::path::Path;

use anyhow::{Context, Result};
use rel_format::upgrade_path::{StepKind, Strategy};
use rel_format::{Manifest, TrustedKeys, Version};
use serde::Serialize;

use crate::args::HostUpgradeArgs;
use crate::channels::{ChannelState, resolve};
use crate::fetch::{Fetcher, JOBS, Target, Verified};
use crate::output::bytes;
use crate::settings::Settings;
use crate::target::config::HotPolicy;
use crate::target::platform::{HostPlatform, check_native};
use crate::target::release_handler::relup_instructions;
use crate::target::state::Installed;
use crate::target::{Host, deploy, read_start_erl_data, release_spec};

#[derive(Debug, Serialize)]
struct StepReport {
    /// `upgrade` (a stored one, fetched) or `synthesised` (built here from the releases).
    kind: StepKind,
    from: String,
    to: String,
    bytes: u64,
    /// What obtaining the step took from the registry: compressed frames and deltas, the
    /// rest coming from the cache.
    fetched_bytes: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    instructions: Vec<String>,
    /// How long each phase took, in order (`fetch` or `synthesise`, then the node's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    phases: Vec<Phase>,
}

#[derive(Debug, Serialize)]
struct Phase {
    phase: &'static str,
    ms: f64,
}

impl Phase {
    fn of(phase: &'static str, d: std::time::Duration) -> Phase {
        Phase {
            phase,
            ms: (d.as_secs_f64() * 1e4).round() / 10.0,
        }
    }
}

#[derive(Debug, Serialize)]
struct UpgradeReport {
    name: String,
    from: String,
    to: String,
    /// The plan's strategy and why (absent when already there).
    #[serde(skip_serializing_if = "Option::is_none")]
    strategy: Option<Strategy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    steps: Vec<StepReport>,
    dry_run: bool,
}

/// A restart deploy of `target` (SPEC.md §9.5): staged beside the running release, switched
/// to, and the node restarted on it (or left to boot it at its next start).
#[allow(clippy::too_many_arguments)]
async fn restart_deploy(
    s: &Settings,
    args: &HostUpgradeArgs,
    host: &mut Host,
    fetcher: &Fetcher,
    trusted: &TrustedKeys,
    running: &Version,
    target: &Version,
    why: &str,
) -> Result<()> {
    if args.dry_run {
        let size = fetcher.release(trusted, &args.name, target).await?.manifest.tar.length;
        let plan = format!(
            "plan for {}: {running} -> {target} by a restart ({why}): fetch the release ({}), install it beside {running}, switch and restart the node\n",
            args.name,
            bytes(size)
        );
        crate::print_raw(&plan);
        return Ok(());
    }
    host.begin("deploy", Some(running.as_str()), target.as_str())?;
    let signer = deploy::stage(host, fetcher, trusted, target).await?;
    if let (Some(signer), Some(state)) = (signer, &mut host.state) {
        state.installed.insert(
            target.to_string(),
            Installed {
                by: "release".into(),
                signer,
                at: crate::now(),
            },
        );
    }
    let outcome = deploy::restart_to(host, running, target).await;
    match &outcome {
        Ok(deploy::Restarted::Running) => {
            host.record("deploy", Some(running.as_str()), target.as_str(), "permanent", why)?
        }
        Ok(deploy::Restarted::NextStart) => host.record(
            "deploy",
            Some(running.as_str()),
            target.as_str(),
            "permanent at the next start",
            why,
        )?,
        Err(e) => host.record(
            "deploy",
            Some(running.as_str()),
            target.as_str(),
            "failed",
            &format!("{e:#}"),
        )?,
    }
    let outcome = outcome?;
    if let Err(e) = host.pin_installed(&s.cache_dir) {
        crate::warn(&format!("cannot pin {} in the cache: {e:#}", args.name));
    }
    if !s.quiet {
        crate::say(&match outcome {
            deploy::Restarted::Running => format!("{} restarted on {target} ({why})", args.name),
            deploy::Restarted::NextStart => format!(
                "{} {target} is installed and permanent ({why}); the node boots it at its next start (configure [restart] in rel-host.toml for rel to restart it)",
                args.name
            ),
        });
    }
    Ok(())
}

/// What deciding between a hot upgrade and a restart needs to know of the other release.
#[derive(Debug)]
pub struct ReleaseFacts {
    pub version: Version,
    pub erts: Version,
    pub apps: Vec<(String, Version)>,
}

impl From<&Manifest> for ReleaseFacts {
    fn from(m: &Manifest) -> Self {
        ReleaseFacts {
            version: m.version.clone(),
            erts: m.platform.erts.clone(),
            apps: m.apps.iter().map(|a| (a.name.clone(), a.version.clone())).collect(),
        }
    }
}

impl From<&rel_format::release::ReleaseSpec> for ReleaseFacts {
    fn from(s: &rel_format::release::ReleaseSpec) -> Self {
        ReleaseFacts {
            version: s.version.clone(),
            erts: s.erts.clone(),
            apps: s.apps.iter().map(|a| (a.name.clone(), a.version.clone())).collect(),
        }
    }
}

/// Why going live from `running` (installed in `root`) to `target`, either way, needs a
/// restart, if it does: what no hot upgrade does (ERTS, Elixir), what rel will not do live
/// unless asked (`hot`: native code, another major version). The chain of stored upgrades is
/// asked for after.
pub fn needs_restart(
    root: &Path,
    name: &str,
    running: &Version,
    target: &ReleaseFacts,
    hot: bool,
) -> Result<Option<String>> {
    let spec = release_spec(root, name, running.as_str())?;
    let to_erts = &target.erts;
    if spec.erts != *to_erts {
        return Ok(Some(format!("ERTS {} -> {to_erts}", spec.erts)));
    }
    let vsn_of = |app: &str| target.apps.iter().find(|(a, _)| a == app).map(|(_, v)| v.clone());
    if let Some(old) = spec.apps.iter().find(|a| a.name == "elixir")
        && let Some(new) = vsn_of("elixir").filter(|v| *v != old.version)
    {
        return Ok(Some(format!("Elixir {} -> {new}", old.version)));
    }
    if hot {
        return Ok(None);
    }
    for app in &spec.apps {
        if let Some(new) = vsn_of(&app.name).filter(|v| *v != app.version)
            && carries_native_code(&root.join(format!("lib/{}-{}/priv", app.name, app.version)))
        {
            return Ok(Some(format!(
                "{} {} -> {new} carries native code (NIFs load only at a start; --hot if its code handles it)",
                app.name, app.version
            )));
        }
    }
    if let (Some(a), Some(b)) = (running.major(), target.version.major())
        && b != a
    {
        return Ok(Some(format!(
            "another major version, {a} -> {b} (--hot to upgrade live anyway)"
        )));
    }
    Ok(None)
}

/// Whether a folder holds a shared library (a NIF or port driver), at any depth.
fn carries_native_code(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            carries_native_code(&path)
        } else {
            path.extension().is_some_and(|x| x == "so" || x == "dylib")
        }
    })
}

/// The upgrade of one step, written to `target` (where unpack_release looks): fetched, or
/// built here from the two releases. Returns who signed what it came from.
#[allow(clippy::too_many_arguments)]
async fn obtain_step(
    s: &Settings,
    fetcher: &Fetcher,
    trusted: &TrustedKeys,
    name: &str,
    kind: StepKind,
    from: &Version,
    to: &Version,
    target: &Path,
    keep_in: Option<&Path>,
) -> Result<String> {
    let keep = |manifest: &Manifest| keep_in.map_or(Ok(()), |root| Host::keep_manifest(root, manifest));
    if kind != StepKind::Synthesised {
        return obtain_stored(fetcher, trusted, name, from, to, target, keep_in).await;
    }
    let Verified { manifest, signer } = fetcher.release(trusted, name, to).await?;
    check_native(&manifest, &HostPlatform::detect())?;
    keep(&manifest)?;
    if let Some(root) = keep_in {
        crate::target::content::recover_installed(root, name, &[from], &s.cache_dir);
    }
    let built = crate::upgrades::synthesise(s, trusted, name, from, to).await?;
    let mut out = tempfile::NamedTempFile::new_in(target.parent().context("a tarball in a folder")?)?;
    std::io::copy(&mut std::fs::File::open(&built.tar)?, &mut out)?;
    out.persist(target).map_err(|e| e.error)?;
    Ok(signer)
}

/// A stored upgrade step, fetched and verified, its native code checked against this host,
/// written to `target` (where unpack_release looks); and the manifest of the release it goes
/// to kept in `keep_in`, for the next upgrade built here (an upgrade may be stored without
/// its release). Returns its signer.
async fn obtain_stored(
    fetcher: &Fetcher,
    trusted: &TrustedKeys,
    name: &str,
    from: &Version,
    to: &Version,
    target: &Path,
    keep_in: Option<&Path>,
) -> Result<String> {
    let Verified { manifest, signer } = fetcher.upgrade(trusted, name, to, from).await?;
    check_native(&manifest, &HostPlatform::detect())?;
    fetcher.write(&manifest, Target::File(target), "fetch").await?;
    if let (Some(root), Ok(Verified { manifest, .. })) = (keep_in, fetcher.release(trusted, name, to).await) {
        Host::keep_manifest(root, &manifest)?;
    }
    Ok(signer)
}

/// The next stored step of a chain, fetched while the node installs the current one.
struct Prefetch {
    /// Its signer and the bytes it fetched.
    task: tokio::task::JoinHandle<Result<(String, u64)>>,
    /// Where it is written; moved to where unpack_release looks when its turn comes.
    file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Prefetch {
    /// Starts fetching `step` (from `from` unless it says) into a folder of its own in `root`'s
    /// `releases/`; nothing for a step built here, which reads the release being installed.
    fn start(
        fetcher: &Fetcher,
        trusted: &TrustedKeys,
        name: &str,
        root: &Path,
        from: &Version,
        step: &rel_format::upgrade_path::Step,
    ) -> Result<Option<Self>> {
        if step.kind == StepKind::Synthesised {
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix(&crate::fs::temp::prefix("prefetch"))
            .tempdir_in(root.join("releases"))?;
        let file = dir.path().join(format!("{name}.tar.gz"));
        let (fetcher, trusted, name, root, from, to, at) = (
            fetcher.clone(),
            trusted.clone(),
            name.to_owned(),
            root.to_owned(),
            step.from.clone().unwrap_or_else(|| from.clone()),
            step.to.clone(),
            file.clone(),
        );
        // Nothing else fetches while it runs: the node is installing the step before.
        let task = tokio::spawn(async move {
            let before = crate::fetch::fetched_so_far();
            let signer = obtain_stored(&fetcher, &trusted, &name, &from, &to, &at, Some(&root)).await?;
            Ok((signer, crate::fetch::fetched_so_far() - before))
        });
        Ok(Some(Self { task, file, _dir: dir }))
    }

    /// Waits for the step, and moves it to `tarball`; its signer and the bytes it fetched.
    async fn finish(mut self, tarball: &Path) -> Result<(String, u64)> {
        let done = (&mut self.task).await??;
        std::fs::rename(&self.file, tarball)?;
        Ok(done)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // A chain that stopped: the next step is not wanted.
        self.task.abort();
    }
}

pub async fn run(s: &Settings, args: &HostUpgradeArgs) -> Result<()> {
    let trusted = s.trusted(&args.trust.trusted_keys)?;
    let mut host = Host::open(&args.host.root, &args.name, args.host.host_config.as_deref())?;
    let root = host.root().to_owned();
    let fetcher = Fetcher::new(s, JOBS);
    let client = &fetcher.client;

    // The node and the registry are asked at once: reaching the node (recovering what an
    // interrupted run left, reading its version) does not wait for resolving the target and
    // fetching and verifying its manifest, nor the reverse.
    let node_side = async {
        // Where the node is: asked when it is up, else what a boot would start.
        let node = host.node().await;
        if let (Ok(node), false) = (&node, args.dry_run) {
            for line in host.recover(node).await? {
                crate::warn(&format!("recovered: {line}"));
            }
        }
        let running = match &node {
            Ok(node) => node.running_version().await?,
            // Not reached: only a restart deploy (asked for) or a plan goes on, from what boots.
            Err(e) if args.restart || args.dry_run => {
                crate::warn(&format!("{e}; going by releases/start_erl.data"));
                read_start_erl_data(&root)?.1
            }
            Err(e) => {
                return Err(anyhow::anyhow!("{e}")).context(
                    "a hot upgrade needs the running node; if it is not running, `rel upgrade --restart` installs the release for its next start",
                );
            }
        };
        let running: Version = running.parse()?;
        Ok::<_, anyhow::Error>((node.ok(), running))
    };
    let registry_side = async {
        let (target, channel_seq) = match (&args.to, &args.channel) {
            (Some(v), _) => (crate::shorthand::resolve(client, &args.name, v, s.quiet).await?, None),
            (_, Some(c)) => {
                let (v, seq) = resolve(s, client, &trusted, &args.name, c, args.allow_downgrade).await?;
                (v, Some(seq))
            }
            (None, None) => unreachable!("clap requires --to or --channel"),
        };
        // Needed unless the node already runs it or goes back to it: an error waits until then.
        let manifest = fetcher.release(&trusted, &args.name, &target).await;
        Ok::<_, anyhow::Error>((target, channel_seq, manifest))
    };
    // The first failure ends both: a node that is down is said at once, whatever the
    // registry takes to answer.
    let ((node, running), (target, channel_seq, manifest)) = tokio::try_join!(node_side, registry_side)?;
    if target == running {
        if args.json {
            // The same shape as any other upgrade's report: no steps.
            crate::print_json(&UpgradeReport {
                name: args.name.clone(),
                from: running.to_string(),
                to: target.to_string(),
                strategy: None,
                reason: None,
                steps: Vec::new(),
                dry_run: args.dry_run,
            });
        } else if !s.quiet {
            crate::say(&format!("{} already runs {target}", args.name));
        }
        return Ok(());
    }
    if target < running && args.dry_run {
        let installed: Vec<Version> = match &node {
            Some(n) => n.releases().await?,
            None => crate::target::releases_file::ReleasesFile::read(&root)?.releases(),
        }
        .into_iter()
        .filter_map(|(v, _)| v.parse().ok())
        .collect();
        let how = match super::rollback::downgrade_chain(&root, &running, &target, &installed) {
            Some(steps) => format!(
                "a rollback, live: {}",
                steps
                    .iter()
                    .map(|(f, t)| format!("{f} -> {t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => "a rollback by a restart (no installed relup has that downgrade)".to_owned(),
        };
        crate::print_raw(&format!("plan for {}: {running} -> {target}, {how}\n", args.name));
        return Ok(());
    }
    if target < running {
        // Going down is a rollback, to an installed release.
        let node = node
            .as_ref()
            .context("going back to an older release needs the running node")?;
        // Not installed any more: staged again first, then switched to by a restart.
        deploy::stage(&host, &fetcher, &trusted, &target).await?;
        let synthesis = super::rollback::Synthesis { s, trusted: &trusted };
        let steps = super::rollback::go_back(&mut host, node, &running, &target, Some(synthesis)).await?;
        if !s.quiet {
            crate::say(&format!(
                "{} went back from {running} to {target} ({}), as a rollback",
                args.name,
                steps.describe()
            ));
        }
        return Ok(());
    }
    let manifest = manifest?.manifest;
    let mut why = if args.restart {
        Some("asked for".to_owned())
    } else if node.is_none() && !args.dry_run {
        // A plan is made for the node as start_erl.data says it boots.
        Some("the node is not running".to_owned())
    } else {
        needs_restart(&root, &args.name, &running, &(&manifest).into(), args.hot)?
    };
    let plan = match why {
        Some(_) => None,
        None => {
            let plan = client
                .path(&args.name, &running, &target)
                .await
                .context("no upgrade path")?;
            match plan.strategy {
                Strategy::HotUpgrade => {}
                Strategy::Synthesised if host.config.hot == HotPolicy::Stored => {
                    why = Some(format!(
                        "no chain of stored upgrades leads from {running} to {target}, and rel-host.toml says hot = \"stored\""
                    ));
                }
                Strategy::Synthesised => {}
                _ => why = Some(format!("no chain of stored upgrades leads from {running} to {target}")),
            }
            Some(plan)
        }
    };
    let (Some(plan), None) = (plan, &why) else {
        let why = why.expect("a reason to restart");
        return restart_deploy(s, args, &mut host, &fetcher, &trusted, &running, &target, &why).await;
    };

    let mut report = UpgradeReport {
        name: args.name.clone(),
        from: running.to_string(),
        to: target.to_string(),
        strategy: Some(plan.strategy),
        reason: Some(plan.reason.clone()),
        steps: vec![],
        dry_run: args.dry_run,
    };
    let total = plan.steps.len();
    let tarball = root.join(format!("releases/{}.tar.gz", args.name));
    // The next stored step of a chain is fetched while the node installs this one, unless a
    // pre-step hook must run before it is fetched.
    let ahead = !args.dry_run && host.config.hooks.pre_step.is_empty();
    crate::fs::temp::sweep(&root.join("releases"), Some("prefetch"));
    let mut prefetched: Option<Prefetch> = None;
    let mut current = running.clone();
    for (i, step) in plan.steps.iter().enumerate() {
        let to = step.to.clone();
        let from = step.from.clone().unwrap_or_else(|| current.clone());
        if args.dry_run {
            let tmp = tempfile::tempdir()?;
            let file = tmp.path().join("step.tar.gz");
            let before = crate::fetch::fetched_so_far();
            obtain_step(s, &fetcher, &trusted, &args.name, step.kind, &from, &to, &file, None).await?;
            let instructions = relup_instructions(&file, to.as_str(), from.as_str())?;
            report.steps.push(StepReport {
                kind: step.kind,
                from: from.to_string(),
                to: to.to_string(),
                bytes: step.bytes,
                fetched_bytes: crate::fetch::fetched_so_far() - before,
                instructions,
                phases: vec![],
            });
            current = to;
            continue;
        }
        let env = [
            ("REL_NAME", args.name.clone()),
            ("REL_FROM", from.to_string()),
            ("REL_TO", to.to_string()),
            ("REL_ROOT", root.display().to_string()),
            ("REL_STEP", (i + 1).to_string()),
            ("REL_STEPS", total.to_string()),
        ];
        let node = node.as_ref().expect("a hot upgrade has a running node");
        host.begin("upgrade", Some(from.as_str()), to.as_str())?;
        let mut obtained = std::time::Duration::ZERO;
        let mut fetched_bytes = 0;
        let fetched_ahead = prefetched.is_some();
        let fetched = async {
            if let Some(ahead) = prefetched.take() {
                // What was left of it once the node had installed the previous step.
                let started = std::time::Instant::now();
                let (signer, bytes) = ahead
                    .finish(&tarball)
                    .await
                    .with_context(|| format!("the node stays on {from}"))?;
                obtained = started.elapsed();
                fetched_bytes = bytes;
                return Ok(signer);
            }
            host.config
                .run_hooks(&root, true, &env)
                .with_context(|| format!("pre-step hook before {from} -> {to}; the node stays on {from}"))?;
            let (started, before) = (std::time::Instant::now(), crate::fetch::fetched_so_far());
            let signer = obtain_step(
                s,
                &fetcher,
                &trusted,
                &args.name,
                step.kind,
                &from,
                &to,
                &tarball,
                Some(&root),
            )
            .await
            .with_context(|| format!("the node stays on {from}"))?;
            obtained = started.elapsed();
            fetched_bytes = crate::fetch::fetched_so_far() - before;
            Ok::<_, anyhow::Error>(signer)
        }
        .await;
        let signer = match fetched {
            Ok(signer) => signer,
            Err(e) => {
                host.record("upgrade", Some(from.as_str()), to.as_str(), "failed", &format!("{e:#}"))?;
                return Err(e);
            }
        };
        crate::fault::point("fetched");
        let host_files = host.host_files();
        let driver = host.driver(node, &host_files);
        let stepped = async {
            driver.unpack(&from, &to, &tarball).await?;
            if ahead && let Some(next) = plan.steps.get(i + 1) {
                // unpack_release is done with the tarball: the next step may be fetched. If it
                // cannot start, the step is fetched in its turn.
                match Prefetch::start(&fetcher, &trusted, &args.name, &root, &to, next) {
                    Ok(started) => prefetched = started,
                    Err(e) => crate::warn(&format!("cannot fetch the next step ahead: {e:#}")),
                }
            }
            driver.install(&from, &to, true).await
        }
        .await;
        let obtaining = match (step.kind, fetched_ahead) {
            (StepKind::Synthesised, _) => "synthesise",
            // The time the step waited for it.
            (_, true) => "fetch ahead",
            _ => "fetch",
        };
        let phases: Vec<Phase> = std::iter::once(Phase::of(obtaining, obtained))
            .chain(driver.times.take().into_iter().map(|(p, d)| Phase::of(p, d)))
            .collect();
        drop(driver);
        if let Err(e) = stepped {
            host.record("upgrade", Some(from.as_str()), to.as_str(), "failed", &format!("{e:#}"))?;
            return Err(e);
        }
        if let Some(state) = &mut host.state {
            state.installed.insert(
                to.to_string(),
                Installed {
                    by: match step.kind {
                        StepKind::Synthesised => "synthesised upgrade",
                        _ => "upgrade",
                    }
                    .into(),
                    signer,
                    at: crate::now(),
                },
            );
        }
        host.record("upgrade", Some(from.as_str()), to.as_str(), "permanent", "")?;
        post_step(&host, &env, &to, plan.steps.get(i + 1).map(|_| &target))?;
        if !s.quiet && !args.dry_run {
            let took: f64 = phases.iter().map(|p| p.ms).sum();
            let parts: Vec<String> = phases.iter().map(|p| format!("{} {:.0} ms", p.phase, p.ms)).collect();
            crate::say(&format!(
                "step {}/{total}: {} {from} -> {to} installed and permanent in {:.3} s ({}); {} fetched",
                i + 1,
                args.name,
                took / 1000.0,
                parts.join(", "),
                crate::output::bytes(fetched_bytes)
            ));
        }
        report.steps.push(StepReport {
            kind: step.kind,
            from: from.to_string(),
            to: to.to_string(),
            bytes: step.bytes,
            fetched_bytes,
            instructions: vec![],
            phases,
        });
        current = to;
    }
    if !args.dry_run
        && let Err(e) = host.pin_installed(&s.cache_dir)
    {
        crate::warn(&format!("cannot pin {} in the cache: {e:#}", args.name));
    }
    if let (Some(channel), Some(seq), false) = (&args.channel, channel_seq, args.dry_run) {
        let mut seen = ChannelState::load(&s.state_dir)?;
        seen.record(&seq)?;
        if let Some(state) = &mut host.state {
            state.channel = Some(channel.clone());
            state.save(&root)?;
        }
    }
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        if args.dry_run {
            let mut out = format!(
                "plan for {}: {} -> {}, {}, {}\n",
                args.name,
                report.from,
                report.to,
                crate::output::count(total, "step"),
                bytes(plan.total_bytes)
            );
            if let Some(reason) = &report.reason {
                out.push_str(&format!("  {reason}\n"));
            }
            for (i, st) in report.steps.iter().enumerate() {
                let how = match st.kind {
                    StepKind::Synthesised => "built here from the two signed releases",
                    _ => "a stored upgrade",
                };
                out.push_str(&format!(
                    "  {}. {} -> {}: {how}, {} to fetch; its instructions:\n",
                    i + 1,
                    st.from,
                    st.to,
                    bytes(st.bytes)
                ));
                for instruction in &st.instructions {
                    out.push_str(&format!("      {instruction}\n"));
                }
            }
            crate::print_raw(&out);
        } else {
            crate::say(&format!(
                "{} upgraded live from {} to {} in {}, no restart",
                args.name,
                report.from,
                report.to,
                crate::output::count(total, "step")
            ));
        }
    }
    Ok(())
}

/// Runs the post-step hooks of a step that reached `to` (permanent). A failure does not undo
/// the step: it is a warning when `to` was the last step, and stops before the next one
/// otherwise, saying where the node is.
pub fn post_step(host: &Host, env: &[(&str, String)], to: &Version, next_towards: Option<&Version>) -> Result<()> {
    let Err(e) = host.config.run_hooks(host.root(), false, env) else {
        return Ok(());
    };
    match next_towards {
        None => {
            crate::warn(&format!("{}'s post_step hook failed: {e:#} (the node runs {to}, permanent)", host.layout.name));
            Ok(())
        }
        Some(target) => Err(e.context(format!(
            "post_step hook after reaching {to}: the node runs {to}, permanent; the steps on to {target} were not taken (run rel upgrade again to go on)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rel_format::manifest::AppRef;

    /// A root running shop `1.2.0` on ERTS 13.1.5 with Elixir 1.14.0 and `nifs` 1.0.
    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let rel = dir.path().join("releases/1.2.0");
        std::fs::create_dir_all(&rel).unwrap();
        std::fs::write(
            rel.join("shop.rel"),
            "{release,{\"shop\",\"1.2.0\"},{erts,\"13.1.5\"},[{kernel,\"8.5.3\"},{elixir,\"1.14.0\"},{nifs,\"1.0\"},{shop,\"1.2.0\"}]}.",
        )
        .unwrap();
        let priv_dir = dir.path().join("lib/nifs-1.0/priv/native");
        std::fs::create_dir_all(&priv_dir).unwrap();
        std::fs::write(priv_dir.join("nifs.so"), b"\x7fELF").unwrap();
        dir
    }

    fn target(vsn: &str, erts: &str, apps: &[(&str, &str)]) -> Manifest {
        let (stream, _) = rel_format::chunk::Chunker::new(|_: &rel_format::chunk::ChunkRef, _: &[u8]| Ok(()))
            .finish()
            .unwrap();
        let mut m = rel_testkit::artifacts::manifest("shop", vsn, rel_format::Kind::Release, &[], stream);
        m.platform.erts = erts.parse().unwrap();
        m.apps = apps
            .iter()
            .map(|(n, v)| AppRef {
                name: (*n).into(),
                version: v.parse().unwrap(),
            })
            .collect();
        m
    }

    #[test]
    fn what_needs_a_restart_and_what_hot_overrides() {
        let dir = root();
        let running: Version = "1.2.0".parse().unwrap();
        let why = |m: &Manifest, hot: bool| needs_restart(dir.path(), "shop", &running, &m.into(), hot).unwrap();
        let same = [
            ("kernel", "8.5.3"),
            ("elixir", "1.14.0"),
            ("nifs", "1.0"),
            ("shop", "1.3.0"),
        ];
        assert_eq!(why(&target("1.3.0", "13.1.5", &same), false), None);
        assert_eq!(
            why(&target("1.3.0", "13.2", &same), true).as_deref(),
            Some("ERTS 13.1.5 -> 13.2")
        );
        let elixir = [
            ("kernel", "8.5.3"),
            ("elixir", "1.15.0"),
            ("nifs", "1.0"),
            ("shop", "1.3.0"),
        ];
        assert_eq!(
            why(&target("1.3.0", "13.1.5", &elixir), true).as_deref(),
            Some("Elixir 1.14.0 -> 1.15.0")
        );
        let nifs = [
            ("kernel", "8.5.3"),
            ("elixir", "1.14.0"),
            ("nifs", "1.1"),
            ("shop", "1.3.0"),
        ];
        let said = why(&target("1.3.0", "13.1.5", &nifs), false).unwrap();
        assert!(said.starts_with("nifs 1.0 -> 1.1 carries native code"), "{said}");
        assert_eq!(why(&target("1.3.0", "13.1.5", &nifs), true), None);
        let said = why(&target("2.0.0", "13.1.5", &same), false).unwrap();
        assert!(said.starts_with("another major version, 1 -> 2"), "{said}");
        assert_eq!(why(&target("2.0.0", "13.1.5", &same), true), None);
    }
}
