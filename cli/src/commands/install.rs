//! `rel install`: a verified release laid out as an OTP target system, cold (the first
//! deploy of a host), ready to start the way its tool starts it; or, into a root that has
//! one, laid beside it for a later switch.

use std::io::Write;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::args::InstallArgs;
use crate::fetch::{Fetcher, JOBS, Target, Verified};
use crate::settings::Settings;
use crate::target::layout::{HostFiles, Layout, Tool};
use crate::target::platform::{HostPlatform, check};
use crate::target::releases_file::ReleasesFile;
use crate::target::state::{Installed, State};
use crate::target::{Host, deploy, read_start_erl_data, release_spec, write_atomic};

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    version: String,
    erts: String,
    root: String,
    signer: String,
    tool: Tool,
    start: String,
}

/// Into a root that holds a release already: the version is laid beside the installed ones
/// (as a restart deploy stages it), and the node is left as it is.
async fn beside(
    s: &Settings,
    args: &InstallArgs,
    version: &rel_format::Version,
    fetcher: &Fetcher,
    trusted: &rel_format::TrustedKeys,
) -> Result<()> {
    let mut host = Host::open(&args.root, &args.name, None)?;
    let (_, boots) = read_start_erl_data(host.root())?;
    let signer = deploy::stage(&host, fetcher, trusted, version).await?;
    let Some(signer) = signer else {
        if !s.quiet {
            crate::say(&format!(
                "{} {version} is already installed in {}",
                args.name,
                args.root.display()
            ));
        }
        return Ok(());
    };
    if let Some(state) = &mut host.state {
        state.installed.insert(
            version.to_string(),
            Installed {
                by: "release".into(),
                signer: signer.clone(),
                at: crate::now(),
            },
        );
        state.finish("install", None, version.as_str(), "installed beside", "");
        state.save(&args.root)?;
    }
    if !s.quiet {
        crate::say(&format!(
            "installed {} {version} (signed by {signer}) in {} beside {boots}, which the node still boots; `rel upgrade {} --to {version} --root {}` switches to it",
            args.name,
            args.root.display(),
            args.name,
            args.root.display()
        ));
    }
    Ok(())
}

pub async fn run(s: &Settings, args: &InstallArgs) -> Result<()> {
    let final_root = &args.root;
    let trusted = s.trusted(&args.trust.trusted_keys)?;
    let fetcher = Fetcher::new(s, JOBS);
    let version = &crate::shorthand::resolve(&fetcher.client, &args.name, &args.version, s.quiet).await?;
    if final_root.join("releases/start_erl.data").exists() {
        return beside(s, args, version, &fetcher, &trusted).await;
    }
    if final_root.exists() && std::fs::read_dir(final_root)?.next().is_some() {
        bail!(
            "`{}` is not empty and holds no installed release: a cold install needs a new root",
            final_root.display()
        );
    }
    let Verified { manifest, signer } = fetcher.release(&trusted, &args.name, version).await?;
    // Whether it can run here, before a byte is written.
    let link_erts = check(&manifest, &HostPlatform::detect(), args.erts.as_deref())?;

    // Everything happens in a folder beside the root, renamed into place at the end: an
    // install that stops half-way leaves no half-filled root behind.
    let parent = match final_root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("cannot create `{}`", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".rel-install-")
        .tempdir_in(&parent)
        .with_context(|| format!("cannot write in `{}`", parent.display()))?;
    let root = &staging.path().join("root");
    let transfer = fetcher.write(&manifest, Target::Dir(root), "install").await?;
    Host::keep_manifest(root, &manifest)?;
    crate::target::content::keep_members(
        root,
        version.as_str(),
        transfer.members.context("an extraction lists its members")?,
    )?;

    // Make it a target system: the .rel where release_handler looks, RELEASES,
    // start_erl.data, ERTS, and the host's own configuration and cookie.
    let vsn = version.as_str();
    let spec = release_spec(root, &args.name, vsn)?;
    let layout = Layout::detect(root, &args.name);
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
    if let Some(source) = link_erts.filter(|_| !erts_dir.exists()) {
        std::os::unix::fs::symlink(&source, &erts_dir)
            .with_context(|| format!("cannot link `{}`", erts_dir.display()))?;
    }
    // A RELEASES the release ships (relx) is kept; without one (mix), release_handler would
    // invent an entry with no libraries, and a later removal would delete the running ones.
    if !root.join("releases/RELEASES").exists() {
        ReleasesFile::one(&spec, &std::path::absolute(final_root)?).write(root)?;
    }
    write_atomic(
        &root.join("releases/start_erl.data"),
        format!("{} {vsn}\n", spec.erts).as_bytes(),
    )?;
    let host = HostFiles {
        sys_config: args.sys_config.clone(),
        vm_args: args.vm_args.clone(),
    };
    layout.apply_host_config(vsn, &host)?;
    match (layout.tool, &args.cookie_file) {
        (Tool::Mix, Some(file)) => write_cookie(root, Some(file))?,
        // One pushed deliberately (`rel push --include-cookie`) is kept.
        (Tool::Mix, None) if !root.join("releases/COOKIE").exists() => write_cookie(root, None)?,
        (Tool::Mix, None) => {}
        (tool, Some(_)) => {
            return Err(crate::UsageError::new(format!(
                "--cookie-file is for mix releases; this is a {tool} release, whose cookie is `-setcookie` in vm.args: give the host's with --vm-args"
            ))
            .into());
        }
        (_, None) => {}
    }
    let mut state = State {
        name: args.name.clone(),
        tool: layout.tool,
        config: host,
        installed: Default::default(),
        last: None,
        pending: None,
        channel: None,
    };
    state.installed.insert(
        vsn.to_owned(),
        Installed {
            by: "release".into(),
            signer: signer.clone(),
            at: crate::now(),
        },
    );
    state.finish("install", None, vsn, "installed", "");
    state.save(root)?;
    if final_root.exists() {
        std::fs::remove_dir(final_root)?;
    }
    std::fs::rename(root, final_root)
        .with_context(|| format!("cannot move the release to `{}`", final_root.display()))?;
    // Its chunks stay in the cache: the next upgrade is built from them.
    if let Err(e) = Host::open(final_root, &args.name, None).and_then(|h| h.pin_installed(&s.cache_dir)) {
        crate::warn(&format!("cannot pin {} in the cache: {e:#}", args.name));
    }
    let layout = Layout::detect(final_root, &args.name);

    let out = Report {
        name: args.name.clone(),
        version: vsn.to_owned(),
        erts: spec.erts.to_string(),
        root: final_root.display().to_string(),
        signer,
        tool: layout.tool,
        start: layout.start_hint(vsn),
    };
    if args.json {
        crate::print_json(&out);
    } else if !s.quiet {
        crate::say(&format!(
            "installed {} {} ({}, ERTS {}, signed by {}) in {}; {}",
            out.name, out.version, out.tool, out.erts, out.signer, out.root, out.start
        ));
    }
    Ok(())
}

/// Puts the host's cookie in `releases/COOKIE` (mode 0400), or a new random one.
fn write_cookie(root: &std::path::Path, from: Option<&std::path::Path>) -> Result<()> {
    let cookie = match from {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read `{}`", file.display()))?
            .trim()
            .to_owned(),
        None => {
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes).context("no randomness from the operating system")?;
            // Letters and digits only: a cookie is an atom, passed on command lines.
            hex::encode_upper(bytes)
        }
    };
    let path = root.join("releases/COOKIE");
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    file.write_all(cookie.as_bytes())?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o400))?;
    Ok(())
}
