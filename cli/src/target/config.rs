//! The host's config, `ROOT/rel-host.toml` (all of it optional): how rel reaches the running
//! node, the host's own config files, and the hooks it runs around each upgrade step.
//!
//! ```toml
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
//! sys_config = "/etc/shop/sys.config"   # (`rel install --sys-config` records them too)
//! vm_args = "/etc/shop/vm.args"
//!
//! [hooks]
//! # Run in ROOT before and after each upgrade step, with REL_NAME, REL_FROM, REL_TO,
//! # REL_ROOT, REL_STEP and REL_STEPS set. A failing pre hook stops before the step.
//! pre_step = [["logger", "upgrading"]]
//! post_step = [["bin/shop", "rpc", "Phoenix.Config.clear_cache(ShopWeb.Endpoint)"]]
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::layout::HostFiles;

/// The host's config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub node: NodeSettings,
    #[serde(default)]
    pub config: HostFiles,
    #[serde(default)]
    pub hooks: Hooks,
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
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("invalid host config `{}`", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(HostConfig::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read host config `{}`", path.display())),
        }
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
