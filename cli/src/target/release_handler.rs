//! `release_handler` on the node: a version unpacked, its config put in place, checked,
//! installed and made permanent — or removed again after a failure, so that a retry works.
//!
//! Before `install_release` reads `releases/<vsn>/sys.config`, rel writes there what the
//! node must run: the release's config with the host's on top, and for a mix release with
//! runtime configuration, that configuration evaluated on the node (its config providers,
//! `config/runtime.exs`), as a boot would; otherwise a hot upgrade would take the node back
//! to build-time values. After `make_permanent`, a start script that pins its version (relx)
//! is brought to the new one, so that a restart boots what `release_handler` says is
//! permanent.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rel_format::Version;
use rel_format::sysconfig::SysConfig;
use rel_format::term::Term;

use super::config::{Health, Restart};
use super::layout::{HostFiles, Layout};
use super::node::Node;

/// Interprets a `release_handler` reply.
pub fn expect_ok(reply: &Term, what: &str) -> Result<()> {
    let ok = match reply {
        Term::Atom(a) => a == "ok",
        Term::Tuple(t) => t.first().and_then(Term::as_atom) == Some("ok"),
        _ => false,
    };
    if ok { Ok(()) } else { bail!("{what} failed: {reply}") }
}

/// The relup's instructions from `from`, for a dry run.
pub fn relup_instructions(tarball: &Path, to: &str, from: &str) -> Result<Vec<String>> {
    // Gzipped as fetched, or a plain tar as built on this host.
    let mut archive = tar::Archive::new(rel_format::archive::decompress(std::fs::File::open(tarball)?)?);
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
                        .map(ToString::to_string)
                        .collect());
                }
            }
        }
    }
    bail!("the upgrade artifact has no relup entry from {from}")
}

/// One node and its root, moved between releases.
#[derive(Debug)]
pub struct Driver<'a> {
    pub node: &'a Node,
    pub layout: &'a Layout,
    pub host: &'a HostFiles,
    /// Checked after `install_release`, before `make_permanent`.
    pub health: Option<&'a Health>,
    /// How the node is restarted, when going back needs it.
    pub restart: Option<&'a Restart>,
    /// How long each phase took, in order: `unpack`, `config`, `check`, `install_release`,
    /// `health`, `make_permanent`.
    pub times: std::cell::RefCell<Vec<(&'static str, std::time::Duration)>>,
}

impl Driver<'_> {
    /// Runs `phase`, noting how long it took.
    async fn timed<T>(&self, name: &'static str, phase: impl std::future::Future<Output = T>) -> T {
        let start = std::time::Instant::now();
        let out = phase.await;
        self.times.borrow_mut().push((name, start.elapsed()));
        out
    }

    fn vsn(v: &Version) -> Term {
        Term::string(v.as_str())
    }

    /// `releases/<vsn>/sys.config` as the node must run `vsn`: the release's config with the
    /// host's on top, and, where the release has config providers (a mix release's
    /// `runtime.exs`), their result evaluated on the node.
    pub async fn prepare_config(&self, vsn: &Version) -> Result<SysConfig> {
        self.layout.apply_host_config(vsn.as_str(), self.host)?;
        let config = self.config_for(vsn).await?;
        if config_providers(&config).is_some() {
            self.layout.write_sys_config(vsn.as_str(), &config)?;
        }
        Ok(config)
    }

    /// What [`Driver::prepare_config`] would write, without writing it.
    pub async fn config_for(&self, vsn: &Version) -> Result<SysConfig> {
        let mut config = self.layout.sys_config(vsn.as_str(), self.host)?;
        if let Some(providers) = config_providers(&config) {
            // The release keeps each provider's state as its `init/1` returned it at build
            // time; a boot passes it to `load/2` (`Config.Provider.boot/0`), and so does rel.
            let mut term = config.to_term();
            for (module, state) in providers {
                term = self
                    .node
                    .call(&module, "load", vec![term, state])
                    .await
                    .with_context(|| format!("the config provider {module} of {vsn} failed"))?;
            }
            let file = format!("releases/{vsn}/sys.config");
            config = SysConfig::from_term(&file, config.header.clone(), &term)?;
        }
        Ok(config)
    }

    /// Unpacks `to` from `releases/<name>.tar.gz`. A release the node already has (left by
    /// a rollback) is used as it is; one left *unpacked* by an attempt that failed is removed
    /// and unpacked again.
    pub async fn unpack(&self, from: &Version, to: &Version, tarball: &Path) -> Result<()> {
        let status = self
            .node
            .releases()
            .await?
            .into_iter()
            .find(|(v, _)| v == to.as_str())
            .map(|(_, s)| s);
        match status.as_deref() {
            Some("old" | "permanent" | "current") => {
                let _ = std::fs::remove_file(tarball);
                return Ok(());
            }
            Some("unpacked") => {
                crate::warn(&format!(
                    "{to} was left unpacked by an earlier attempt; removing it and unpacking again"
                ));
                self.remove(to).await;
            }
            _ => {}
        }
        let name = Term::string(&self.layout.name);
        let unpacked = self
            .timed(
                "unpack",
                self.node.call("release_handler", "unpack_release", vec![name]),
            )
            .await?;
        if let Err(e) = expect_ok(&unpacked, &format!("unpack_release of {to}")) {
            let _ = std::fs::remove_file(tarball);
            return Err(e.context(format!("the node stays on {from}")));
        }
        crate::fault::point("unpacked");
        Ok(())
    }

    /// Checks, installs and makes `to` permanent on a node running `from`, with `to`'s config
    /// prepared first. A failure before the point of no return removes `to` (when
    /// `remove_on_failure`), so that a retry works.
    pub async fn install(&self, from: &Version, to: &Version, remove_on_failure: bool) -> Result<()> {
        let stays = |e: anyhow::Error| {
            e.context(if remove_on_failure {
                format!("the node stays on {from}; {to} was removed so that a retry works")
            } else {
                format!("the node stays on {from}")
            })
        };
        if let Err(e) = self.timed("config", self.prepare_config(to)).await {
            if remove_on_failure {
                self.remove(to).await;
            }
            return Err(stays(e));
        }
        crate::fault::point("configured");
        let checked = self
            .timed(
                "check",
                self.node
                    .call("release_handler", "check_install_release", vec![Self::vsn(to)]),
            )
            .await?;
        if let Err(e) = expect_ok(&checked, &format!("check_install_release of {to}")) {
            if remove_on_failure {
                self.remove(to).await;
            }
            return Err(stays(e));
        }
        let options = Term::List(vec![Term::Tuple(vec![Term::atom("update_paths"), Term::atom("true")])]);
        let installed = self
            .timed(
                "install_release",
                self.node.call("release_handler", "install_release", vec![Self::vsn(to), options]),
            )
            .await
            .with_context(|| {
                format!(
                    "install_release of {to} got no answer: after its point of no return a failing upgrade restarts the node on {from}"
                )
            })?;
        if let Err(e) = expect_ok(&installed, &format!("install_release of {to}")) {
            if remove_on_failure {
                self.remove(to).await;
            }
            return Err(stays(e));
        }
        crate::fault::point("installed");
        self.confirm(from, to, remove_on_failure).await
    }

    /// For a node that runs `to` installed but not permanent: checks its health, then makes it
    /// permanent, or takes the node back to `from` (and removes `to` if `remove`).
    pub async fn confirm(&self, from: &Version, to: &Version, remove: bool) -> Result<()> {
        if let Some(health) = self.health
            && let Err(why) = self.timed("health", self.check_health(health)).await
        {
            let back = self.go_back(from, to, remove).await?;
            bail!("{to} failed its health check ({why}); {back}");
        }
        self.timed("make_permanent", self.make_permanent(from, to)).await
    }

    /// Checks health every `interval` for `window`; the first failure says why.
    pub async fn check_health(&self, health: &Health) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + health.window.0;
        loop {
            self.health_once(health).await?;
            if tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(health.interval.0).await;
        }
    }

    async fn health_once(&self, health: &Health) -> Result<(), String> {
        if let Some(url) = &health.http {
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .map_err(|e| e.to_string())?;
            let response = client.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
            return if response.status().is_success() {
                Ok(())
            } else {
                Err(format!("GET {url} answered {}", response.status()))
            };
        }
        if let Some(argv) = &health.command {
            let (program, args) = argv.split_first().ok_or("an empty health command")?;
            let status = tokio::process::Command::new(program)
                .args(args)
                .current_dir(&self.layout.root)
                .status()
                .await
                .map_err(|e| format!("cannot run `{}`: {e}", argv.join(" ")))?;
            return if status.success() {
                Ok(())
            } else {
                Err(format!("`{}` exited with {status}", argv.join(" ")))
            };
        }
        if let Some(expr) = &health.expr {
            let reply = self.node.eval(expr).await.map_err(|e| e.to_string())?;
            return match reply.as_atom() {
                Some("true" | "ok") => Ok(()),
                _ => Err(format!("`{expr}` returned {reply}")),
            };
        }
        Ok(())
    }

    /// Takes a node that runs `to` (installed, not permanent) back to `from`: live through
    /// the relup's downgrade when it has one, else by a restart, which boots the permanent
    /// release. Says where the node ended.
    async fn go_back(&self, from: &Version, to: &Version, remove: bool) -> Result<String> {
        // Live when a relup has the way: `to`'s downgrade to `from` (after an upgrade), or
        // `from`'s upgrade from `to` (after a rollback step).
        let root = &self.layout.root;
        let live = super::relup_entries(root, to.as_str())
            .is_ok_and(|(_, downs)| downs.iter().any(|d| d == from.as_str()))
            || super::relup_entries(root, from.as_str()).is_ok_and(|(ups, _)| ups.iter().any(|u| u == to.as_str()));
        if live {
            let back = self
                .node
                .call("release_handler", "install_release", vec![Self::vsn(from)])
                .await?;
            expect_ok(&back, &format!("the downgrade back to {from}"))?;
            if remove {
                self.remove(to).await;
            }
            return Ok(if remove {
                format!("the node went back to {from} live, and {to} was removed")
            } else {
                format!("the node went back to {from} live")
            });
        }
        let Some(restart) = self.restart else {
            bail!(
                "{to} has no downgrade to {from} and no [restart] command is configured: the node runs {to} (not permanent); a restart boots {from}"
            );
        };
        restart_node(&self.layout.root, restart).await?;
        let running = wait_for_version(self.node, from, restart.timeout.0).await?;
        Ok(format!("the node was restarted and runs {running}"))
    }

    /// Makes `to` permanent and brings a start script that pins a version to it.
    pub async fn make_permanent(&self, from: &Version, to: &Version) -> Result<()> {
        let permanent = self
            .node
            .call("release_handler", "make_permanent", vec![Self::vsn(to)])
            .await?;
        expect_ok(&permanent, &format!("make_permanent of {to}"))
            .context(format!("the node runs {to}, but a restart would boot {from}"))?;
        crate::fault::point("permanent");
        self.layout
            .pin_start_script(to.as_str())
            .with_context(|| format!("{to} is permanent, but bin/{} still starts {from}", self.layout.name))?;
        Ok(())
    }

    /// Removes `vsn` from the node (and its files no other release uses); best effort.
    pub async fn remove(&self, vsn: &Version) {
        let _ = self
            .node
            .call("release_handler", "remove_release", vec![Self::vsn(vsn)])
            .await;
    }
}

/// Runs the host's restart command in `root`.
pub async fn restart_node(root: &Path, restart: &Restart) -> Result<()> {
    let (program, args) = restart.command.split_first().context("an empty restart command")?;
    let status = tokio::process::Command::new(program)
        .args(args)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .status()
        .await
        .with_context(|| format!("cannot run the restart command `{}`", restart.command.join(" ")))?;
    if !status.success() {
        bail!("the restart command `{}` failed ({status})", restart.command.join(" "));
    }
    Ok(())
}

/// Waits until the node answers and runs `vsn`; returns what it runs.
pub async fn wait_for_version(node: &Node, vsn: &Version, timeout: std::time::Duration) -> Result<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match node.running_version().await {
            Ok(v) if v == vsn.as_str() => return Ok(v),
            Ok(v) => format!("it runs {v}"),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "the node did not come back on {vsn} within {} s ({last})",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The config providers a mix release's `sys.config` declares (`{elixir,
/// [{config_provider_init, #{providers => [{Module, Init}]}}]}`), as Elixir's
/// `Config.Provider.boot/0` runs them.
fn config_providers(config: &SysConfig) -> Option<Vec<(String, Term)>> {
    let init = config.get("elixir", "config_provider_init")?;
    let Term::Map(pairs) = init else { return None };
    let providers = pairs
        .iter()
        .find(|(k, _)| k.as_atom() == Some("providers"))
        .map(|(_, v)| v)?;
    let list: Vec<(String, Term)> = providers
        .as_list()?
        .iter()
        .filter_map(|p| match p.as_tuple() {
            Some([m, init]) => Some((m.as_atom()?.to_owned(), init.clone())),
            _ => None,
        })
        .collect();
    (!list.is_empty()).then_some(list)
}
