//! `rel adopt`: a root another tool laid down (edeliver/Distillery, `mix release`, a relx
//! tarball, systools) taken over by rel. The installed release is matched by content to the
//! stored, signed release of its version: every file of its applications, boot scripts and
//! ERTS must be that release's byte for byte; its config files may differ, and where they do
//! they are the host's from then on. The root is then made what `release_handler` needs
//! (`RELEASES` with the release's libraries, which mix releases do not ship, and
//! `start_erl.data`), and rel manages it: `rel upgrade` works on it, hot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use rel_format::Version;
use rel_format::digest::Digest;
use serde::Serialize;

use crate::args::AdoptArgs;
use crate::fetch::{Fetcher, JOBS, Target, Verified};
use crate::settings::Settings;
use crate::target::layout::{HostFiles, Layout, Tool};
use crate::target::releases_file::ReleasesFile;
use crate::target::state::{Installed, State};
use crate::target::{Host, read_start_erl_data, release_spec, write_atomic};

/// Files of a release its host may have changed: configuration, and what the tools write
/// at run time.
fn host_owned(path: &str, vsn: &str) -> bool {
    let in_vsn = |f: &str| path == format!("releases/{vsn}/{f}");
    [
        "sys.config",
        "vm.args",
        "vm.args.src",
        "env.sh",
        "runtime.exs",
        "remote.vm.args",
    ]
    .iter()
    .any(|f| in_vsn(f))
        || path.starts_with("bin/")
        || matches!(
            path,
            "releases/COOKIE" | "releases/RELEASES" | "releases/start_erl.data"
        )
}

#[derive(Debug, Default, Serialize)]
struct Report {
    name: String,
    version: String,
    root: String,
    tool: Option<Tool>,
    signer: String,
    /// The installed files compared with the stored release.
    compared: usize,
    /// Config files the host had changed, kept as the host's.
    host_files: Vec<String>,
    /// What rel wrote for release_handler.
    wrote: Vec<String>,
    /// Whether the running node's release_handler was told the release's libraries.
    node_fixed: bool,
}

/// Compares the installed files with the stored release `tar`: every member must be there,
/// byte for byte, except host-owned ones; returns the host-owned ones that differ, with the
/// release's bytes, and how many files were compared.
fn compare(root: &Path, tar: &Path, vsn: &str) -> Result<(BTreeMap<String, Vec<u8>>, usize)> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar)?);
    let mut differing = BTreeMap::new();
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut stored = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut stored)?;
        let installed = std::fs::read(root.join(&path));
        compared += 1;
        let same = installed.as_ref().is_ok_and(|b| Digest::of(b) == Digest::of(&stored));
        match (same, host_owned(&path, vsn)) {
            (true, _) => {}
            (false, true) => {
                if installed.is_ok() {
                    differing.insert(path, stored);
                }
            }
            (false, false) => mismatches.push(match installed {
                Ok(_) => format!("{path} differs"),
                Err(_) => format!("{path} is missing"),
            }),
        }
    }
    if !mismatches.is_empty() {
        let shown: Vec<&str> = mismatches.iter().take(5).map(String::as_str).collect();
        bail!(
            "`{}` is not the stored release {vsn}: {}{} (of {compared} files). It runs another build: push it under its own version (rel push {} --release-version V) and adopt that",
            root.display(),
            shown.join(", "),
            if mismatches.len() > shown.len() {
                format!(" and {} more", mismatches.len() - shown.len())
            } else {
                String::new()
            },
            root.display()
        );
    }
    Ok((differing, compared))
}

/// The version the root boots: `start_erl.data`, else its only `releases/<vsn>/<name>.rel`.
fn booted_version(root: &Path, name: &str) -> Result<Version> {
    if let Ok((_, vsn)) = read_start_erl_data(root) {
        return Ok(vsn.parse()?);
    }
    let found: Vec<String> = std::fs::read_dir(root.join("releases"))?
        .flatten()
        .filter(|e| e.path().join(format!("{name}.rel")).exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    match found.as_slice() {
        [one] => Ok(one.parse()?),
        _ => Err(crate::UsageError::new(format!(
            "`{}` has no releases/start_erl.data and {} releases: say which runs with --version",
            root.display(),
            found.len()
        ))
        .into()),
    }
}

pub async fn run(s: &Settings, args: &AdoptArgs) -> Result<()> {
    let root = &args.host.root;
    let name = &args.name;
    if !root.join("releases").is_dir() {
        bail!("`{}` is not a release root (no releases/ folder)", root.display());
    }
    if State::load(root)?.is_some() {
        bail!(
            "`{}` is already managed by rel (it has .rel/state.json)",
            root.display()
        );
    }
    let vsn = match &args.version {
        Some(v) => v.clone(),
        None => booted_version(root, name)?,
    };
    let trusted = s.trusted(&args.trust.trusted_keys)?;
    let fetcher = Fetcher::new(s, JOBS);
    let Verified { manifest, signer } = fetcher.release(&trusted, name, &vsn).await?;
    let tmp = tempfile::tempdir()?;
    let tar = tmp.path().join("release.tar");
    fetcher.write(&manifest, Target::File(&tar), "fetch").await?;
    let (differing, compared) = compare(root, &tar, vsn.as_str())?;

    let mut report = Report {
        name: name.clone(),
        version: vsn.to_string(),
        root: root.display().to_string(),
        signer: signer.clone(),
        compared,
        ..Default::default()
    };
    // Config the host changed is the host's from now on; the release's is kept beside it.
    let mut host = HostFiles::default();
    let keep = root.join(".rel/host");
    for (path, stored) in &differing {
        let file = Path::new(path)
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let slot = match file.as_str() {
            "sys.config" => &mut host.sys_config,
            "vm.args" | "vm.args.src" => &mut host.vm_args,
            _ => {
                report.host_files.push(format!("{path} (left as it is)"));
                continue;
            }
        };
        std::fs::create_dir_all(&keep)?;
        let kept: PathBuf = keep.join(&file);
        std::fs::copy(root.join(path), &kept)?;
        write_atomic(&root.join(format!("{path}.shipped")), stored)?;
        *slot = Some(std::path::absolute(&kept)?);
        report
            .host_files
            .push(format!("{path} (now the host's, {})", kept.display()));
    }

    // What release_handler needs.
    let spec = release_spec(root, name, vsn.as_str())?;
    let nested = root.join(format!("releases/{vsn}/{name}.rel"));
    if !nested.exists() {
        std::fs::copy(root.join(format!("releases/{name}.rel")), &nested)?;
        report.wrote.push(format!("releases/{vsn}/{name}.rel"));
    }
    let had_releases = root.join("releases/RELEASES").exists();
    let mut releases = ReleasesFile::read(root)?;
    if !releases
        .releases()
        .iter()
        .any(|(v, s)| v == vsn.as_str() && s == "permanent")
    {
        releases.set_permanent(&spec, &std::path::absolute(root)?);
        releases.write(root)?;
        report.wrote.push("releases/RELEASES".into());
    }
    let start_erl = format!("{} {vsn}", spec.erts);
    if read_start_erl_data(root).ok().map(|(e, v)| format!("{e} {v}")) != Some(start_erl.clone()) {
        write_atomic(
            &root.join("releases/start_erl.data"),
            format!("{start_erl}\n").as_bytes(),
        )?;
        report.wrote.push("releases/start_erl.data".into());
    }
    let layout = Layout::detect(root, name);
    report.tool = Some(layout.tool);
    let mut state = State {
        name: name.clone(),
        tool: layout.tool,
        config: host,
        installed: Default::default(),
        last: None,
        pending: None,
        channel: None,
    };
    state.installed.insert(
        vsn.to_string(),
        Installed {
            by: "adopted".into(),
            signer,
            at: crate::now(),
        },
    );
    state.finish("adopt", None, vsn.as_str(), "adopted", "");
    state.save(root)?;
    Host::keep_manifest(root, &manifest)?;

    // A node booted without RELEASES (mix) holds a release with no libraries in its
    // release_handler: removing a release would then delete libraries it runs. It is told
    // the ones RELEASES now lists.
    let host = Host::open(root, name, args.host.host_config.as_deref())?;
    if let Ok(node) = host.node().await
        && !had_releases
    {
        let file = root.join("releases/RELEASES");
        let file = std::path::absolute(&file)?;
        let expr = format!(
            "begin sys:replace_state(release_handler, fun(S) -> case element(5, S) of L when is_list(L) -> {{ok, [Rs]}} = file:consult({}), setelement(5, S, Rs); _ -> S end end), ok end",
            crate::target::erl_string(&file.to_string_lossy())
        );
        let reply = node.eval(&expr).await?;
        if reply.as_atom() != Some("ok") {
            bail!("the running node's release_handler was not told the release's libraries: {reply}");
        }
        report.node_fixed = true;
    }
    if let Err(e) = host.pin_installed(&s.cache_dir) {
        crate::warn(&format!("cannot pin {name} in the cache: {e:#}"));
    }
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        let mut lines = vec![format!(
            "adopted {name} {vsn} ({}, signed by {}) in {}: {compared} files are the stored release's",
            layout.tool,
            report.signer,
            root.display()
        )];
        for f in &report.host_files {
            lines.push(format!("  host's config: {f}"));
        }
        if !report.wrote.is_empty() {
            lines.push(format!("  wrote {}", report.wrote.join(", ")));
        }
        if report.node_fixed {
            lines.push("  told the running node's release_handler the release's libraries".into());
        }
        crate::say(&lines.join("\n"));
    }
    Ok(())
}
