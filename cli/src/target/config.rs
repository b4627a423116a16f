//! The host's config, `ROOT/rel-host.toml`: how rel reaches the running node, and the
//! hooks it runs around each upgrade step.
//!
//! ```toml
//! # Evaluates an Erlang expression on the running node; the last line of its output is the
//! # result printed as a term. {expr} is the expression; {expr_elixir} is Elixir code that
//! # evaluates it and prints the result (for `bin/<name> rpc` of mix releases).
//! eval = ["bin/shop", "rpc", "{expr_elixir}"]
//!
//! [hooks]
//! # Run before and after each upgrade step, with REL_NAME, REL_FROM, REL_TO, REL_ROOT,
//! # REL_STEP and REL_STEPS set. A failing pre hook stops before the step.
//! pre_step = [["logger", "upgrading"]]
//! post_step = [["bin/shop", "rpc", "Phoenix.Config.clear_cache(ShopWeb.Endpoint)"]]
//! ```

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The host's config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    #[serde(default)]
    pub eval: Vec<String>,
    #[serde(default)]
    pub hooks: Hooks,
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

    /// Runs the hooks of one phase; the first failure stops.
    pub fn run_hooks(&self, pre: bool, env: &[(&str, String)]) -> Result<()> {
        let hooks = if pre {
            &self.hooks.pre_step
        } else {
            &self.hooks.post_step
        };
        for hook in hooks {
            let (program, args) = hook.split_first().context("an empty hook command")?;
            let status = Command::new(program)
                .args(args)
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
