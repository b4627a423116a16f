//! `rel install`, `rel upgrade`, `rel rollback`: the last mile on a host.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rel_format::manifest::Kind;
use rel_format::signing::{Expected, verify};
use rel_format::term::Term;
use rel_format::upgrade_path::Strategy;
use rel_format::{TrustedKeys, Version};
use serde::Serialize;

use crate::cli::{HostUpgradeArgs, InstallArgs, RollbackArgs};
use crate::client::Client;
use crate::host::{
    HostConfig, Node, erl_string, read_start_erl_data, release_spec, relup_downgrades, system_erts, write_atomic,
    write_releases_file,
};
use crate::progress::human;
use crate::settings::Settings;

#[derive(Debug, Serialize)]
struct Installed {
    name: String,
    version: String,
    erts: String,
    root: String,
    signer: String,
}

pub async fn install(s: &Settings, args: &InstallArgs) -> Result<()> {
    let root = &args.root;
    if root.exists() {
        if std::fs::read_dir(root)?.next().is_some() {
            bail!(
                "`{}` is not empty: a cold install needs a new root (use `rel upgrade` on an installed one)",
                root.display()
            );
        }
        std::fs::remove_dir(root)?;
    }
    let trusted = s.trusted(&args.trust.trusted_keys)?;
    let client = Client::new(&s.registry, s.token.clone());
    let version: Version = args.version.parse()?;
    let super::pull::Verified { manifest, signer } =
        super::pull::verified_release(&client, &trusted, &args.name, &version).await?;
    super::pull::write_release(
        s,
        &client,
        &manifest,
        super::pull::Target::Dir(root),
        crate::cli::PULL_JOBS,
        "install",
    )
    .await?;

    // Make it a target system: the .rel where release_handler looks, RELEASES,
    // start_erl.data, ERTS, and the host's own configuration.
    let vsn = version.as_str();
    let spec = release_spec(root, &args.name, vsn)?;
    let nested = root.join(format!("releases/{vsn}/{}.rel", args.name));
    if !nested.exists() {
        std::fs::create_dir_all(nested.parent().expect("has a parent"))?;
        std::fs::copy(root.join(format!("releases/{}.rel", args.name)), &nested)?;
    }
    if !root.join(format!("releases/{vsn}/start.boot")).exists() {
        crate::warn(&format!(
            "releases/{vsn}/start.boot is missing: the release cannot boot or be upgraded to"
        ));
    }
    let erts_dir = root.join(format!("erts-{}", spec.erts));
    if !erts_dir.exists() {
        let source = match &args.erts {
            Some(d) => d.clone(),
            None => system_erts(spec.erts.as_str())?,
        };
        std::os::unix::fs::symlink(&source, &erts_dir)
            .with_context(|| format!("cannot link `{}`", erts_dir.display()))?;
    }
    if !root.join("releases/RELEASES").exists() {
        write_releases_file(root, &spec)?;
    }
    write_atomic(
        &root.join("releases/start_erl.data"),
        format!("{} {vsn}\n", spec.erts).as_bytes(),
    )?;
    for (flag, file) in [(&args.link_config, "sys.config"), (&args.link_vm_args, "vm.args")] {
        if let Some(host_file) = flag {
            let host_file =
                std::fs::canonicalize(host_file).with_context(|| format!("cannot find `{}`", host_file.display()))?;
            let link = root.join(format!("releases/{vsn}/{file}"));
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&host_file, &link)?;
        }
    }
    let out = Installed {
        name: args.name.clone(),
        version: vsn.to_owned(),
        erts: spec.erts.to_string(),
        root: root.display().to_string(),
        signer,
    };
    if args.json {
        crate::print_json(&out);
    } else if !s.quiet {
        crate::say(&format!(
            "installed {} {} (ERTS {}, signed by {}) in {}; boot it with releases/{vsn}/start.boot",
            out.name, out.version, out.erts, out.signer, out.root
        ));
    }
    Ok(())
}

/// Interprets a `release_handler` reply.
fn expect_ok(reply: &Term, what: &str) -> Result<()> {
    let ok = match reply {
        Term::Atom(a) => a == "ok",
        Term::Tuple(t) => t.first().and_then(Term::as_atom) == Some("ok"),
        _ => false,
    };
    if ok { Ok(()) } else { bail!("{what} failed: {reply}") }
}

#[derive(Debug, Serialize)]
struct StepReport {
    from: String,
    to: String,
    bytes: u64,
    instructions: Option<String>,
}

#[derive(Debug, Serialize)]
struct UpgradeReport {
    name: String,
    from: String,
    to: String,
    steps: Vec<StepReport>,
    dry_run: bool,
}

/// Fetches and verifies one upgrade step; writes it where unpack_release looks.
async fn fetch_step(
    s: &Settings,
    client: &Client,
    trusted: &TrustedKeys,
    name: &str,
    from: &Version,
    to: &Version,
    target: &Path,
) -> Result<rel_format::Manifest> {
    let bytes = client.upgrade_manifest(name, to, from).await?;
    let expected = Expected {
        name: name.to_owned(),
        version: to.clone(),
        kind: Kind::Upgrade,
        from: Some(from.clone()),
    };
    let (manifest, _) =
        verify(&bytes, trusted, &expected).with_context(|| format!("refusing the upgrade {from} -> {to}"))?;
    super::pull::write_release(
        s,
        client,
        &manifest,
        super::pull::Target::File(target),
        crate::cli::PULL_JOBS,
        "fetch",
    )
    .await?;
    Ok(manifest)
}

/// The relup's instructions from `from`, for a dry run.
fn relup_instructions(tarball: &Path, to: &str, from: &str) -> Result<String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(tarball)?));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy() == format!("releases/{to}/relup") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text)?;
            let relup = rel_format::term::parse_terms("relup", &text)?.remove(0);
            let ups = relup
                .as_tuple()
                .and_then(|t| t.get(1))
                .and_then(Term::as_list)
                .map(|l| l.into_owned())
                .unwrap_or_default();
            for u in ups {
                if let Some([v, _, instrs]) = u.as_tuple()
                    && v.as_string().as_deref() == Some(from)
                {
                    return Ok(instrs
                        .as_list()
                        .unwrap_or_default()
                        .iter()
                        .map(|i| format!("      {i}"))
                        .collect::<Vec<_>>()
                        .join("\n"));
                }
            }
        }
    }
    bail!("the upgrade artifact has no relup entry from {from}")
}

pub async fn upgrade(s: &Settings, args: &HostUpgradeArgs) -> Result<()> {
    let root = &args.host.root;
    let config = HostConfig::load(root, args.host.host_config.as_deref())?;
    let node = Node::new(&config, root);
    let trusted = s.trusted(&args.trust.trusted_keys)?;
    let client = Client::new(&s.registry, s.token.clone());

    // Where the node is: asked when it is up, else what a boot would start.
    let running = match node.running_version() {
        Ok(v) => v,
        Err(e) if args.dry_run => {
            crate::warn(&format!("{e}; planning from releases/start_erl.data"));
            read_start_erl_data(root)?.1
        }
        Err(e) => return Err(e).context("a hot upgrade needs the running node"),
    };
    let running: Version = running.parse()?;
    let (target, channel_seq) = match (&args.to, &args.channel) {
        (Some(v), _) => (v.parse::<Version>()?, None),
        (None, Some(c)) => {
            let (v, seq) =
                super::pull::resolve_channel(s, &client, &trusted, &args.name, c, args.allow_downgrade).await?;
            (v, Some(seq))
        }
        (None, None) => bail!("say where to go: --to VERSION or --channel CHANNEL"),
    };
    let plan = client
        .path(&args.name, &running, &target)
        .await
        .context("no upgrade path")?;
    match plan.strategy {
        Strategy::AlreadyThere => {
            if !s.quiet {
                crate::say(&format!("{} already runs {target}", args.name));
            }
            return Ok(());
        }
        Strategy::FullRelease => bail!(
            "no chain of stored upgrades leads from {running} to {target}: a hot upgrade is impossible. Build one with `rel build-upgrade {} --from {running} --to {target} --push`, or install the release and restart",
            args.name
        ),
        Strategy::HotUpgrade => {}
    }

    let mut report = UpgradeReport {
        name: args.name.clone(),
        from: running.to_string(),
        to: target.to_string(),
        steps: vec![],
        dry_run: args.dry_run,
    };
    let total = plan.steps.len();
    let tarball = root.join(format!("releases/{}.tar.gz", args.name));
    let mut current = running.clone();
    for (i, step) in plan.steps.iter().enumerate() {
        let to = step.to.clone();
        let from = step.from.clone().unwrap_or_else(|| current.clone());
        if args.dry_run {
            let tmp = tempfile::tempdir()?;
            let file = tmp.path().join("step.tar.gz");
            fetch_step(s, &client, &trusted, &args.name, &from, &to, &file).await?;
            let instructions = relup_instructions(&file, to.as_str(), from.as_str())?;
            report.steps.push(StepReport {
                from: from.to_string(),
                to: to.to_string(),
                bytes: step.bytes,
                instructions: Some(instructions),
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
        config
            .run_hooks(true, &env)
            .with_context(|| format!("pre-step hook before {from} -> {to}; the node stays on {from}"))?;
        fetch_step(s, &client, &trusted, &args.name, &from, &to, &tarball).await?;
        apply_step(&node, &args.name, &from, &to, &tarball)?;
        config
            .run_hooks(false, &env)
            .with_context(|| format!("post-step hook after {from} -> {to} (the node runs {to})"))?;
        report.steps.push(StepReport {
            from: from.to_string(),
            to: to.to_string(),
            bytes: step.bytes,
            instructions: None,
        });
        if !s.quiet && !args.dry_run {
            crate::say(&format!(
                "step {}/{total}: {} {from} -> {to} installed and permanent",
                i + 1,
                args.name
            ));
        }
        current = to;
    }
    if let (Some(channel), Some(seq), false) = (&args.channel, channel_seq, args.dry_run) {
        let mut state = super::pull::ChannelState::load(&s.state_dir)?;
        state.record(client.base(), &args.name, channel, seq)?;
    }
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        if args.dry_run {
            let mut out = format!(
                "plan for {}: {} -> {}, {} step(s), {}\n",
                args.name,
                report.from,
                report.to,
                total,
                human(plan.total_bytes)
            );
            for (i, st) in report.steps.iter().enumerate() {
                out.push_str(&format!(
                    "  {}. {} -> {} ({})\n{}\n",
                    i + 1,
                    st.from,
                    st.to,
                    human(st.bytes),
                    st.instructions.as_deref().unwrap_or("")
                ));
            }
            crate::print_raw(&out);
        } else {
            crate::say(&format!(
                "{} upgraded live from {} to {} in {} step(s), no restart",
                args.name, report.from, report.to, total
            ));
        }
    }
    Ok(())
}

/// unpack → check_install → install → make_permanent, cleaning up what a failure leaves so
/// that a retry works.
fn apply_step(node: &Node<'_>, name: &str, from: &Version, to: &Version, tarball: &Path) -> Result<()> {
    let to_s = erl_string(to.as_str());
    let remove = || {
        let _ = node.eval(&format!("release_handler:remove_release({to_s})"));
    };
    let mut unpacked = node.eval(&format!("release_handler:unpack_release({})", erl_string(name)))?;
    if unpacked.to_string().contains("existing_release") {
        // A previous attempt left it unpacked (Distillery's and Jellyfish's trap): remove it
        // and unpack again.
        crate::warn(&format!(
            "{to} was left unpacked by an earlier attempt; removing it and retrying"
        ));
        remove();
        unpacked = node.eval(&format!("release_handler:unpack_release({})", erl_string(name)))?;
    }
    if let Err(e) = expect_ok(&unpacked, &format!("unpack_release of {to}")) {
        let _ = std::fs::remove_file(tarball);
        return Err(e.context(format!("the node stays on {from}")));
    }
    let checked = node.eval(&format!("release_handler:check_install_release({to_s})"))?;
    if let Err(e) = expect_ok(&checked, &format!("check_install_release of {to}")) {
        remove();
        return Err(e.context(format!(
            "the node stays on {from}; {to} was removed so that a retry works"
        )));
    }
    let installed = match node.eval(&format!(
        "release_handler:install_release({to_s}, [{{update_paths, true}}])"
    )) {
        Ok(t) => t,
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "install_release of {to} got no answer: after its point of no return a failing upgrade restarts the node on {from}"
            )));
        }
    };
    if let Err(e) = expect_ok(&installed, &format!("install_release of {to}")) {
        remove();
        return Err(e.context(format!(
            "the node stays on {from}; {to} was removed so that a retry works"
        )));
    }
    let permanent = node.eval(&format!("release_handler:make_permanent({to_s})"))?;
    expect_ok(&permanent, &format!("make_permanent of {to}"))
        .context(format!("the node runs {to}, but a restart would boot {from}"))
}

pub async fn rollback(s: &Settings, args: &RollbackArgs) -> Result<()> {
    let root = &args.host.root;
    let config = HostConfig::load(root, args.host.host_config.as_deref())?;
    let node = Node::new(&config, root);
    let current = node
        .running_version()
        .context("a live rollback needs the running node")?;
    let releases = node.eval("[{V, S} || {_, V, _, S} <- release_handler:which_releases()]")?;
    // Back means the newest installed release older than the current one, in rel's order
    // (a release left by an earlier rollback is newer, not previous).
    let current_v: Version = current.parse()?;
    let previous = releases
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| match r.as_tuple() {
            Some([v, st]) if st.as_atom() == Some("old") => v.as_string().and_then(|v| v.parse::<Version>().ok()),
            _ => None,
        })
        .filter(|v| *v < current_v)
        .max()
        .map(|v| v.to_string())
        .with_context(|| {
            format!(
                "no release of {} older than {current} is installed on this node to go back to",
                args.name
            )
        })?;
    let downs = relup_downgrades(root, &current)?;
    if !downs.contains(&previous) {
        bail!("releases/{current}/relup has no downgrade to {previous}; going back needs a restart on {previous}");
    }
    let prev_s = erl_string(&previous);
    expect_ok(
        &node.eval(&format!("release_handler:install_release({prev_s})"))?,
        &format!("install_release of {previous}"),
    )?;
    expect_ok(
        &node.eval(&format!("release_handler:make_permanent({prev_s})"))?,
        &format!("make_permanent of {previous}"),
    )?;
    if !s.quiet {
        crate::say(&format!(
            "{} rolled back live from {current} to {previous}, no restart",
            args.name
        ));
    }
    Ok(())
}
