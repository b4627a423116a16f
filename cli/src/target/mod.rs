//! The host side: an OTP target system on disk and the running node it serves.
//!
//! A target root holds `lib/<app>-<vsn>/`, `releases/<vsn>/`, `releases/RELEASES`,
//! `releases/start_erl.data` and `erts-<vsn>/`, as `release_handler` expects them.
//! [`config`] is the host's own settings (`rel-host.toml`), [`layout`] what each release tool
//! lays down and how the host's config files are applied, [`state`] what rel recorded about
//! the root, [`node`] how rel reaches the node ([`dist`]: as a hidden distribution node),
//! [`release_handler`] the calls that move the node between releases, and [`deploy`] restart
//! deploys.

pub mod config;
pub mod content;
pub mod deploy;
pub mod dist;
pub mod layout;
pub mod node;
pub mod platform;
pub mod release_handler;
pub mod releases_file;
pub mod state;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use rel_format::release::ReleaseSpec;
use rel_format::term::{Term, parse_terms};

use self::config::HostConfig;
use self::layout::{HostFiles, Layout};
use self::node::{Node, NodeError};
use self::state::State;

/// A release root on this host and what rel needs to act on it.
#[derive(Debug)]
pub struct Host {
    pub layout: Layout,
    pub config: HostConfig,
    /// What rel recorded, when it manages the root.
    pub state: Option<State>,
}

impl Host {
    /// Opens the root of release `name`: its layout, its `rel-host.toml` (or `config_file`)
    /// and rel's state.
    pub fn open(root: &Path, name: &str, config_file: Option<&Path>) -> Result<Host> {
        if !root.join("releases").is_dir() {
            bail!(
                "`{}` is not a release root (no releases/ folder): install one with `rel install {name} --version V --root {}`",
                root.display(),
                root.display()
            );
        }
        let config = HostConfig::load(root, config_file)?;
        let state = State::load(root)?;
        if let Some(s) = &state
            && s.name != name
        {
            bail!("`{}` holds release {}, not {name}", root.display(), s.name);
        }
        Ok(Host {
            layout: Layout::detect(root, name),
            config,
            state,
        })
    }

    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// The host's own config files: `rel-host.toml`'s, else those `rel install` recorded.
    pub fn host_files(&self) -> HostFiles {
        let recorded = self.state.as_ref().map(|s| s.config.clone()).unwrap_or_default();
        self.config.host_files(&recorded)
    }

    /// What moves `node` between releases in this root, with the host's config `files`.
    pub fn driver<'a>(&'a self, node: &'a Node, files: &'a HostFiles) -> release_handler::Driver<'a> {
        release_handler::Driver {
            node,
            layout: &self.layout,
            host: files,
            health: self.config.health.as_ref(),
            restart: self.config.restart.as_ref(),
            times: Default::default(),
        }
    }

    /// Reaches the running node.
    pub async fn node(&self) -> Result<Node, NodeError> {
        Node::connect(&self.layout, &self.config.node).await
    }

    /// Reaches the node, trying until `timeout`: after a restart it takes a while to answer.
    pub async fn node_within(&self, timeout: std::time::Duration) -> Result<Node> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.node().await {
                Ok(node) => return Ok(node),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(anyhow::Error::from(e)
                        .context(format!("the node did not answer within {} s", timeout.as_secs())));
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            }
        }
    }

    /// Completes or undoes what an interrupted run left (a `kill -9` at any point): the
    /// upgrade tarball and staging folders are removed, a release left unpacked is removed, a
    /// release installed but not made permanent is health-checked and made permanent (or the
    /// node goes back), and a start script that pins a version is brought to the permanent
    /// one. Returns what it did, for people.
    pub async fn recover(&mut self, node: &Node) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let root = self.root().to_owned();
        let tarball = root.join(format!("releases/{}.tar.gz", self.layout.name));
        if tarball.exists() {
            std::fs::remove_file(&tarball)?;
            done.push(format!("removed {} of an interrupted fetch", tarball.display()));
        }
        if root.join(".rel/staging").exists() {
            deploy::clean_staging(&root);
            done.push("removed the staging folder of an interrupted deploy".into());
        }
        let releases = node.releases().await?;
        let with = |status: &str| releases.iter().find(|(_, s)| s == status).map(|(v, _)| v.clone());
        let files = self.host_files();
        for (v, status) in &releases {
            if status == "unpacked" {
                self.driver(node, &files).remove(&v.parse()?).await;
                done.push(format!("removed {v}, left unpacked by an interrupted run"));
            }
        }
        let pending = self.state.as_ref().and_then(|s| s.pending.clone());
        if let (Some(current), Some(permanent)) = (with("current"), with("permanent")) {
            // Installed but not permanent: rel's own interrupted step (the state says which
            // operation), or, in a root rel does not manage, the same thing by assumption.
            // One an operator installed by hand in a root rel manages is theirs to finish.
            let op = match (&pending, &self.state) {
                (Some(p), _) if p.to == current => p.op.clone(),
                (None, None) => "upgrade".to_owned(),
                _ => bail!(
                    "the node runs {current}, installed but not permanent ({permanent} is), and not by a rel operation: make it permanent (release_handler:make_permanent/1) or go back to {permanent} first"
                ),
            };
            let (from, to): (rel_format::Version, rel_format::Version) = (permanent.parse()?, current.parse()?);
            let confirmed = self.driver(node, &files).confirm(&from, &to, op == "upgrade").await;
            let result = if confirmed.is_ok() { "permanent" } else { "failed" };
            self.record(
                &op,
                Some(from.as_str()),
                to.as_str(),
                result,
                "completed after an interruption",
            )?;
            confirmed?;
            done.push(format!(
                "completed the interrupted {op} from {from} to {to}: now permanent"
            ));
        } else if let Some(p) = pending {
            // A restart deploy interrupted between its switch and the restart: the root says
            // the new release boots, the node runs the old one. Undone: the root follows the
            // node again (the new release stays installed beside it).
            let running = node.running_version().await?;
            if p.op != "upgrade" && read_start_erl_data(&root)?.1 != running {
                deploy::switch(self, &running.parse()?)?;
                done.push(format!(
                    "the interrupted {} to {} had switched the root but not restarted the node: it boots {running} again",
                    p.op, p.to
                ));
            }
            // Interrupted before an install, or after its end: nothing half-done on the node.
            let result = if with("permanent").as_deref() == Some(p.to.as_str()) {
                "permanent"
            } else {
                "interrupted"
            };
            self.record(
                &p.op,
                p.from.as_deref(),
                &p.to,
                result,
                "interrupted; the node was left on one version",
            )?;
            done.push(format!(
                "the interrupted {} to {} left the node on one version ({result})",
                p.op, p.to
            ));
        }
        if let Some(permanent) = node
            .releases()
            .await?
            .into_iter()
            .find(|(_, s)| s == "permanent")
            .map(|(v, _)| v)
            && let Some(script) = self.layout.pinned_start_script(&permanent)
            && std::fs::read(&script).ok() != std::fs::read(root.join(format!("bin/{}", self.layout.name))).ok()
        {
            self.layout.pin_start_script(&permanent)?;
            done.push(format!("bin/{} starts {permanent} again", self.layout.name));
        }
        Ok(done)
    }

    /// Keeps the manifest of a release this root has, verified when it was fetched, in
    /// `ROOT/.rel/releases/<vsn>.json`: what the release is, and which cached chunks hold it.
    pub fn keep_manifest(root: &Path, manifest: &rel_format::Manifest) -> Result<()> {
        let dir = root.join(".rel/releases");
        std::fs::create_dir_all(&dir)?;
        write_atomic(
            &dir.join(format!("{}.json", manifest.version)),
            &serde_json::to_vec_pretty(manifest)?,
        )
    }

    /// The kept manifest of version `vsn`, if any.
    pub fn kept_manifest(&self, vsn: &str) -> Option<rel_format::Manifest> {
        kept_manifest(self.root(), vsn)
    }

    /// Pins in the cache at `cache_dir` the releases installed here whose manifests are
    /// kept, and only those: the next upgrade is built from them without fetching them again.
    pub fn pin_installed(&self, cache_dir: &Path) -> Result<()> {
        let installed = releases_file::ReleasesFile::read(self.root())?.releases();
        let streams: Vec<rel_format::Digest> = installed
            .iter()
            .filter_map(|(v, _)| self.kept_manifest(v))
            .map(|m| m.tar.digest)
            .collect();
        crate::cache::PackCache::open(cache_dir)?.pin(self.root(), &streams)?;
        Ok(())
    }

    /// Records that an operation begins, when rel manages the root.
    pub fn begin(&mut self, op: &str, from: Option<&str>, to: &str) -> Result<()> {
        if let Some(state) = &mut self.state {
            state.begin(op, from, to);
            state.save(&self.layout.root)?;
        }
        Ok(())
    }

    /// Records how an operation ended, when rel manages the root.
    pub fn record(&mut self, op: &str, from: Option<&str>, to: &str, result: &str, message: &str) -> Result<()> {
        if let Some(state) = &mut self.state {
            state.finish(op, from, to, result, message);
            state.save(&self.layout.root)?;
        }
        Ok(())
    }
}

/// The manifest `root` keeps of version `vsn`, if any.
pub fn kept_manifest(root: &Path, vsn: &str) -> Option<rel_format::Manifest> {
    let bytes = std::fs::read(root.join(format!(".rel/releases/{vsn}.json"))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// An Erlang string literal.
pub fn erl_string(s: &str) -> String {
    Term::string(s).to_string()
}

/// `releases/start_erl.data`: the ERTS and release versions a restart boots.
pub fn read_start_erl_data(root: &Path) -> Result<(String, String)> {
    let path = root.join("releases/start_erl.data");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let mut parts = text.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(erts), Some(vsn)) => Ok((erts.to_owned(), vsn.to_owned())),
        _ => bail!("`{}` is not `<erts> <vsn>`", path.display()),
    }
}

/// The release spec of version `vsn` in a target root: `releases/<vsn>/<name>.rel`, else
/// `releases/<name>.rel`.
pub fn release_spec(root: &Path, name: &str, vsn: &str) -> Result<ReleaseSpec> {
    for path in [
        root.join(format!("releases/{vsn}/{name}.rel")),
        root.join(format!("releases/{name}.rel")),
    ] {
        if let Ok(text) = std::fs::read_to_string(&path) {
            let spec = ReleaseSpec::parse(&path.to_string_lossy(), &text)?;
            if spec.version.as_str() == vsn {
                return Ok(spec);
            }
        }
    }
    bail!("no {name}.rel for version {vsn} under `{}/releases`", root.display())
}

/// Writes a file by temporary file and rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a path with a parent")?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The host's ERTS of version `erts`, from the system `erl`.
pub fn system_erts_dir(erts: &str) -> Result<PathBuf> {
    let out = Command::new("erl")
        .args([
            "-noshell",
            "-noinput",
            "-eval",
            "io:format(\"~s\", [code:root_dir()]), halt().",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .context("there is no `erl` on this host")?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join(format!("erts-{erts}"));
    if !dir.join("bin").is_dir() {
        bail!("the host's OTP has no `{}`", dir.display());
    }
    Ok(dir)
}

/// The downgrade targets in `releases/<vsn>/relup`.
pub fn relup_downgrades(root: &Path, vsn: &str) -> Result<Vec<String>> {
    Ok(relup_entries(root, vsn)?.1)
}

/// The versions `releases/<vsn>/relup` upgrades from and downgrades to.
pub fn relup_entries(root: &Path, vsn: &str) -> Result<(Vec<String>, Vec<String>)> {
    let path = root.join(format!("releases/{vsn}/relup"));
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("release {vsn} was installed without a relup (`{}`)", path.display()))?;
    let terms = parse_terms(&path.to_string_lossy(), &text)?;
    let relup = terms
        .first()
        .and_then(Term::as_tuple)
        .filter(|t| t.len() == 3)
        .with_context(|| format!("`{}` is not a relup", path.display()))?;
    let firsts = |list: &Term| -> Vec<String> {
        list.as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(|d| d.as_tuple().and_then(|t| t.first()).and_then(Term::as_string))
            .collect()
    };
    Ok((firsts(&relup[1]), firsts(&relup[2])))
}
