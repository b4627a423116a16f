//! Restart deploys: for what a hot upgrade cannot do (an ERTS or NIF change, a major version,
//! no stored or synthesisable upgrade chain, or going back where no downgrade exists).
//!
//! The release is fetched and verified, checked against the platform, and laid beside the
//! installed ones as `release_handler:unpack_release/1` would lay it (`lib/<app>-<vsn>/`,
//! `releases/<vsn>/`), so the previous version stays installed and rollback works the same
//! way. The switch writes what a boot reads (`RELEASES`, `start_erl.data`, a start script
//! that pins a version, the host's config), then the host's restart command runs and rel
//! waits for the node to answer on the new version and pass its health check; otherwise it
//! switches back and restarts again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rel_format::{TrustedKeys, Version};

use super::platform::{HostPlatform, check};
use super::release_handler::{restart_node, wait_for_version};
use super::releases_file::ReleasesFile;
use super::{Host, release_spec, write_atomic};
use crate::fetch::{Fetcher, Target, Verified};

/// Puts release `version` beside the installed ones, unless it is there already. Returns
/// its signer (`None` when it was there).
pub async fn stage(host: &Host, fetcher: &Fetcher, trusted: &TrustedKeys, version: &Version) -> Result<Option<String>> {
    let root = host.root();
    let name = &host.layout.name;
    if root.join(format!("releases/{version}/start.boot")).exists() {
        return Ok(None);
    }
    let Verified { manifest, signer } = fetcher.release(trusted, name, version).await?;
    let link_erts = check(&manifest, &HostPlatform::detect(), None)?;
    Host::keep_manifest(root, &manifest)?;
    let staging = root.join(".rel/staging");
    std::fs::create_dir_all(&staging)?;
    let unpacked = staging.join(version.as_str());
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked)?;
    }
    let transfer = fetcher.write(&manifest, Target::Dir(&unpacked), "fetch").await?;
    super::content::keep_members(
        root,
        version.as_str(),
        transfer.members.context("an extraction lists its members")?,
    )?;
    // Into place: what the root lacks. Libraries are immutable per version, so one that is
    // already there is the same.
    let mut moves: Vec<(PathBuf, PathBuf)> = Vec::new();
    for top in ["lib", "bin"] {
        let Ok(entries) = std::fs::read_dir(unpacked.join(top)) else {
            continue;
        };
        for e in entries {
            let e = e?;
            let target = root.join(top).join(e.file_name());
            let pinned = top == "bin" && e.file_name().to_string_lossy() == format!("{name}-{version}");
            if top == "lib" && !target.exists() || pinned {
                moves.push((e.path(), target));
            }
        }
    }
    for e in std::fs::read_dir(&unpacked)? {
        let e = e?;
        let file = e.file_name().to_string_lossy().into_owned();
        if file.starts_with("erts-") && !root.join(&file).exists() {
            moves.push((e.path(), root.join(&file)));
        }
    }
    for (from, to) in moves {
        std::fs::create_dir_all(to.parent().expect("a parent"))?;
        if to.exists() {
            std::fs::remove_file(&to)?;
        }
        std::fs::rename(&from, &to).with_context(|| format!("cannot move `{}` into place", to.display()))?;
    }
    let spec = release_spec(&unpacked, name, version.as_str())?;
    let erts = root.join(format!("erts-{}", spec.erts));
    if let Some(source) = link_erts.filter(|_| !erts.exists()) {
        std::os::unix::fs::symlink(&source, &erts).with_context(|| format!("cannot link `{}`", erts.display()))?;
    }
    // The release's folder last: its start.boot is what says it is staged.
    let releases_dir = root.join(format!("releases/{version}"));
    if releases_dir.exists() {
        std::fs::remove_dir_all(&releases_dir)?;
    }
    let nested = unpacked.join(format!("releases/{version}/{name}.rel"));
    if !nested.exists() {
        std::fs::copy(unpacked.join(format!("releases/{name}.rel")), &nested)?;
    }
    std::fs::rename(unpacked.join(format!("releases/{version}")), &releases_dir)?;
    std::fs::remove_dir_all(&unpacked)?;
    let _ = std::fs::remove_dir(&staging);
    crate::fault::point("staged");
    Ok(Some(signer))
}

/// Makes `to` what the node boots: `RELEASES` (permanent), `start_erl.data`, a pinned start
/// script, the host's config.
pub fn switch(host: &Host, to: &Version) -> Result<()> {
    let root = host.root();
    let spec = release_spec(root, &host.layout.name, to.as_str())?;
    host.layout.apply_host_config(to.as_str(), &host.host_files())?;
    host.layout.pin_start_script(to.as_str())?;
    let mut releases = ReleasesFile::read(root)?;
    releases.set_permanent(&spec, &std::path::absolute(root)?);
    releases.write(root)?;
    write_atomic(
        &root.join("releases/start_erl.data"),
        format!("{} {to}\n", spec.erts).as_bytes(),
    )
}

/// Where a restart deploy ended.
#[derive(Debug)]
pub enum Restarted {
    /// The node answered on the new version, healthy.
    Running,
    /// No restart command is configured: the next start boots it.
    NextStart,
}

/// Switches to `to` and restarts the node on it through the host's restart command (which
/// starts it if it was not running), then checks its health; if it does not come back
/// healthy, switches back to `from` and restarts again. Without a restart command the next
/// start boots `to`.
pub async fn restart_to(host: &Host, from: &Version, to: &Version) -> Result<Restarted> {
    switch(host, to)?;
    crate::fault::point("switched");
    let Some(restart) = host.config.restart.as_ref() else {
        return Ok(Restarted::NextStart);
    };
    restart_node(host.root(), restart).await?;
    let healthy = async {
        let node = host
            .node_within(restart.timeout.0)
            .await
            .map_err(|e| format!("{e:#}"))?;
        wait_for_version(&node, to, restart.timeout.0)
            .await
            .map_err(|e| format!("{e:#}"))?;
        match &host.config.health {
            Some(health) => {
                let files = host.host_files();
                host.driver(&node, &files).check_health(health).await
            }
            None => Ok(()),
        }
    }
    .await;
    if let Err(why) = healthy {
        switch(host, from)?;
        restart_node(host.root(), restart).await?;
        let back = async {
            let node = host.node_within(restart.timeout.0).await?;
            wait_for_version(&node, from, restart.timeout.0).await
        }
        .await
        .with_context(|| format!("{to} did not come up healthy ({why}), and going back to {from} failed too"))?;
        bail!("{to} did not come up healthy ({why}); the node was restarted on {back} again");
    }
    Ok(Restarted::Running)
}

/// Removes what an interrupted restart deploy left in `root/.rel/staging`.
pub fn clean_staging(root: &Path) {
    let _ = std::fs::remove_dir_all(root.join(".rel/staging"));
}
