//! `rel install`: a verified release laid out as an OTP target system, cold (the first
//! deploy of a host).

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::args::InstallArgs;
use crate::fetch::{Fetcher, JOBS, Target, Verified};
use crate::settings::Settings;
use crate::target::{release_spec, system_erts, write_atomic, write_releases_file};

#[derive(Debug, Serialize)]
struct Installed {
    name: String,
    version: String,
    erts: String,
    root: String,
    signer: String,
}

pub async fn run(s: &Settings, args: &InstallArgs) -> Result<()> {
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
    let fetcher = Fetcher::new(s, JOBS);
    let version = &args.version;
    let Verified { manifest, signer } = fetcher.release(&trusted, &args.name, version).await?;
    fetcher.write(&manifest, Target::Dir(root), "install").await?;

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
