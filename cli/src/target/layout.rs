//! What each release tool lays down, and what the host must do about it.
//!
//! | | mix release | relx (`rebar3 tar`) | systools |
//! |---|---|---|---|
//! | version booted | `releases/start_erl.data` | `REL_VSN` fixed in `bin/<name>`; relx ships `bin/<name>-<vsn>` to copy over it once `<vsn>` is permanent | `start_erl.data` (`start_erl`, heart) |
//! | `releases/<name>.rel`, `RELEASES` | neither | both | `.rel` only |
//! | node access | distribution; `RELEASE_NODE` (default `<name>`, short names), cookie `releases/COOKIE` | distribution; `-name`/`-sname` and `-setcookie` in `releases/<vsn>/vm.args(.src)` | whatever the host set up |
//! | vm.args | `releases/<vsn>/vm.args` | `releases/<vsn>/vm.args.src`, rendered into `vm.args` by every run of `bin/<name>` | `releases/<vsn>/vm.args` if any |
//!
//! The host's own `sys.config` and `vm.args` are applied to every version rel puts on the
//! host ([`Layout::apply_host_config`]): the release's file is kept beside it as `<file>.shipped` and
//! the host's settings go on top (SPEC.md §9.1).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rel_format::sysconfig::SysConfig;

use super::write_atomic;

/// The tool that built the release in a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tool {
    Mix,
    Relx,
    Systools,
}

impl std::fmt::Display for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tool::Mix => "mix release",
            Tool::Relx => "relx",
            Tool::Systools => "systools",
        })
    }
}

/// A release root on this host.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub name: String,
    pub tool: Tool,
}

impl Layout {
    /// Recognises the tool by what only it writes: mix's `releases/<vsn>/env.sh` and
    /// `releases/COOKIE`, relx's `bin/nodetool` and `releases/<vsn>/vm.args.src`.
    pub fn detect(root: &Path, name: &str) -> Layout {
        let releases = root.join("releases");
        let versions: Vec<PathBuf> = std::fs::read_dir(&releases)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        let any = |file: &str| versions.iter().any(|v| v.join(file).exists());
        let tool = if any("env.sh") || releases.join("COOKIE").exists() {
            Tool::Mix
        } else if root.join("bin/nodetool").exists() || any("vm.args.src") {
            Tool::Relx
        } else {
            Tool::Systools
        };
        Layout {
            root: root.to_owned(),
            name: name.to_owned(),
            tool,
        }
    }

    /// How to start the release in this root, for people.
    pub fn start_hint(&self, vsn: &str) -> String {
        let (root, name) = (self.root.display(), &self.name);
        match self.tool {
            Tool::Mix => format!("start it with `{root}/bin/{name} daemon` (or `start` in the foreground)"),
            Tool::Relx => format!("start it with `{root}/bin/{name} daemon` (or `foreground`)"),
            Tool::Systools => format!(
                "boot it with `{root}/erts-*/bin/erlexec -boot {root}/releases/{vsn}/start -config {root}/releases/{vsn}/sys -mode embedded` (ROOTDIR={root}), or through your own start script"
            ),
        }
    }

    /// A start script that pins `vsn` and must replace `bin/<name>` once `vsn` is permanent
    /// (relx's `bin/<name>-<vsn>`).
    pub fn pinned_start_script(&self, vsn: &str) -> Option<PathBuf> {
        let script = self.root.join(format!("bin/{}-{vsn}", self.name));
        script.is_file().then_some(script)
    }

    /// Makes `bin/<name>` start `vsn`, as relx's own upgrade does after `make_permanent`.
    /// Nothing to do for layouts whose start script reads `start_erl.data`.
    pub fn pin_start_script(&self, vsn: &str) -> Result<bool> {
        let Some(script) = self.pinned_start_script(vsn) else {
            return Ok(false);
        };
        let bytes = std::fs::read(&script).with_context(|| format!("cannot read `{}`", script.display()))?;
        let target = self.root.join(format!("bin/{}", self.name));
        write_atomic(&target, &bytes)?;
        std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        Ok(true)
    }

    /// Where the shipped copy of a version's config file is kept once the host's is applied.
    fn shipped(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".shipped");
        path.with_file_name(name)
    }

    /// The config version `vsn` runs with: the release's own (`sys.config.shipped` once rel
    /// has written `sys.config`), with the host's on top when the host has one.
    pub fn sys_config(&self, vsn: &str, host: &HostFiles) -> Result<SysConfig> {
        let target = self.root.join(format!("releases/{vsn}/sys.config"));
        let shipped = Self::shipped(&target);
        let read = |p: &Path| -> Result<SysConfig> {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read `{}`", p.display()))?;
            Ok(SysConfig::parse(&p.display().to_string(), &text)?)
        };
        let release = if shipped.exists() {
            read(&shipped)?
        } else if target.exists() {
            read(&target)?
        } else {
            SysConfig::default()
        };
        Ok(match &host.sys_config {
            Some(host_file) => release.overlay(&read(host_file)?),
            None => release,
        })
    }

    /// Writes `releases/<vsn>/sys.config`, keeping the release's own as `sys.config.shipped`
    /// the first time.
    pub fn write_sys_config(&self, vsn: &str, config: &SysConfig) -> Result<()> {
        let target = self.root.join(format!("releases/{vsn}/sys.config"));
        keep_shipped(&target)?;
        write_atomic(&target, config.render().as_bytes())
    }

    /// Applies the host's `sys.config` and `vm.args` to version `vsn` (SPEC.md §9.1): the
    /// release's files are kept as `*.shipped`, `releases/<vsn>/sys.config` becomes the
    /// release's with the host's on top, and the host's `vm.args` replaces the release's
    /// (relx's `vm.args.src`, which its start script renders, when the release has one).
    /// Returns the config the version now has.
    pub fn apply_host_config(&self, vsn: &str, host: &HostFiles) -> Result<SysConfig> {
        let config = self.sys_config(vsn, host)?;
        if host.sys_config.is_some() {
            self.write_sys_config(vsn, &config)?;
        }
        if let Some(host_file) = &host.vm_args {
            let dir = self.root.join(format!("releases/{vsn}"));
            let src = dir.join("vm.args.src");
            let target = if src.exists() || Self::shipped(&src).exists() {
                src
            } else {
                dir.join("vm.args")
            };
            keep_shipped(&target)?;
            let bytes = std::fs::read(host_file).with_context(|| format!("cannot read `{}`", host_file.display()))?;
            write_atomic(&target, &bytes)?;
        }
        Ok(config)
    }
}

/// Moves a version's own file aside as `<file>.shipped`, unless that was done before.
fn keep_shipped(target: &Path) -> Result<()> {
    let shipped = Layout::shipped(target);
    if !shipped.exists() && target.exists() {
        std::fs::rename(target, &shipped).with_context(|| format!("cannot keep `{}` aside", target.display()))?;
    }
    Ok(())
}

/// The host's own configuration files, applied to every version.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HostFiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sys_config: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_args: Option<PathBuf>,
}
