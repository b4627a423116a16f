//! The host's config, `ROOT/rel-host.toml` (all of it optional): how rel reaches the running
//! node, the host's own config files, and the hooks it runs around each upgrade step.
//!
//! ```toml
//! hot = "synthesised"                   # with no stored chain of upgrades, build the upgrade
//!                                       # here from the two releases; "stored": restart instead
//!
//! [node]
//! # By default rel talks to the node as a hidden Erlang node, with the name and cookie the
//! # release uses (mix: RELEASE_NODE or `<name>`, releases/COOKIE; relx: -name/-sname and
//! # -setcookie in releases/<vsn>/vm.args). Set them when the release's are not the node's:
//! name = "shop@127.0.0.1"
//! cookie_file = "/etc/shop/cookie"      # relative paths are relative to ROOT
//! epmd_port = 4369                      # default: ERL_EPMD_PORT, else 4369
//! # Or a command per call (slower: most tools start a VM for each). {expr} is an Erlang
//! # expression; {expr_elixir} Elixir code that evaluates it and prints the result.
//! # eval = ["bin/shop", "rpc", "{expr_elixir}"]
//!
//! [config]                              # the host's files, applied to every version
//! sys_config = "/etc/shop/sys.config"   # (`rel install --sys-config` records them too);
//!                                       # relative paths here are relative to ROOT
//! vm_args = "/etc/shop/vm.args"
//!
//! [health]                            # checked after install_release, before make_permanent
//! http = "http://127.0.0.1:4000/health" # 2xx is healthy; or
//! # command = ["bin/check"]             # exit 0 is healthy (run in ROOT); or
//! # expr = "shop_health:ok()"           # evaluated on the node: true or ok is healthy
//! window = "10s"                        # every check in the window must pass
//! interval = "1s"
//!
//! [restart]                             # how to restart the node (restart deploys, and
//! command = ["systemctl", "restart", "shop"]   # going back when no downgrade exists)
//! timeout = "60s"                       # how long the node may take to answer again
//!
//! [hooks]
//! # Run in ROOT before and after each upgrade step, with REL_NAME, REL_FROM, REL_TO,
//! # REL_ROOT, REL_STEP and REL_STEPS set. A failing pre hook stops before the step; a
//! # failing post hook is a warning after the last step, and stops before the next one.
//! pre_step = [["logger", "upgrading"]]
//! post_step = [["bin/shop", "rpc", "Phoenix.Config.clear_cache(ShopWeb.Endpoint)"]]
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::layout::HostFiles;
use crate::values::Wait;

/// The host's config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Which hot upgrades rel takes.
    #[serde(default)]
    pub hot: HotPolicy,
    #[serde(default)]
    pub node: NodeSettings,
    #[serde(default)]
    pub config: HostFiles,
    #[serde(default)]
    pub hooks: Hooks,
    pub health: Option<Health>,
    pub restart: Option<Restart>,
}

/// Which hot upgrades the host takes when no stored chain reaches the target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HotPolicy {
    /// Stored chains, else an upgrade built here from the two releases (SPEC.md §9.3).
    #[default]
    Synthesised,
    /// Stored chains only; else a restart deploy.
    Stored,
}

/// A health check and how long it must pass.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub http: Option<String>,
    pub command: Option<Vec<String>>,
    pub expr: Option<String>,
    #[serde(default = "Health::default_window")]
    pub window: Wait,
    #[serde(default = "Health::default_interval")]
    pub interval: Wait,
}

impl Health {
    fn default_window() -> Wait {
        Wait::secs(10)
    }

    fn default_interval() -> Wait {
        Wait::secs(1)
    }
}

/// How the host restarts the node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restart {
    pub command: Vec<String>,
    #[serde(default = "Restart::default_timeout")]
    pub timeout: Wait,
}

impl Restart {
    fn default_timeout() -> Wait {
        Wait::secs(60)
    }
}

/// How to reach the node.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    pub name: Option<String>,
    pub cookie_file: Option<PathBuf>,
    pub epmd_port: Option<u16>,
    #[serde(default)]
    pub eval: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    #[serde(default)]
    pub pre_step: Vec<Vec<String>>,
    #[serde(default)]
    pub post_step: Vec<Vec<String>>,
}

impl HostConfig {
    /// Reads `path`, or `root/rel-host.toml` if present.
    pub fn load(root: &Path, path: Option<&Path>) -> Result<Self> {
        let (path, explicit) = match path {
            Some(p) => (p.to_owned(), true),
            None => (root.join("rel-host.toml"), false),
        };
        let config: HostConfig = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("invalid host config `{}`", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => HostConfig::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read host config `{}`", path.display())),
        };
        // Relative paths in it are relative to ROOT, like every command it names.
        let mut config = config;
        for file in [&mut config.config.sys_config, &mut config.config.vm_args] {
            if let Some(f) = file.as_mut().filter(|f| f.is_relative()) {
                *f = root.join(&*f);
            }
        }
        if let Some(h) = &config.health {
            let kinds = [h.http.is_some(), h.command.is_some(), h.expr.is_some()];
            if kinds.iter().filter(|k| **k).count() != 1 {
                bail!(
                    "invalid host config `{}`: [health] needs exactly one of http, command or expr",
                    path.display()
                );
            }
        }
        Ok(config)
    }

    /// The host's config files: this file's, else what `rel install` recorded.
    pub fn host_files(&self, recorded: &HostFiles) -> HostFiles {
        HostFiles {
            sys_config: self.config.sys_config.clone().or_else(|| recorded.sys_config.clone()),
            vm_args: self.config.vm_args.clone().or_else(|| recorded.vm_args.clone()),
        }
    }

    /// Runs the hooks of one phase in `root`; the first failure stops.
    pub fn run_hooks(&self, root: &Path, pre: bool, env: &[(&str, String)]) -> Result<()> {
        let hooks = if pre {
            &self.hooks.pre_step
        } else {
            &self.hooks.post_step
        };
        for hook in hooks {
            let (program, args) = hook.split_first().context("an empty hook command")?;
            let status = Command::new(program)
                .args(args)
                .current_dir(root)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .status()
                .with_context(|| format!("cannot run hook `{}`", hook.join(" ")))?;
            if !status.success() {
                bail!("hook `{}` failed ({status})", hook.join(" "));
            }
        }
        Ok(())
    }
}
