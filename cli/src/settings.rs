//! Client settings: flags and environment (through clap) over the config file over defaults.
//!
//! ```toml
//! # $XDG_CONFIG_HOME/rel/config.toml
//! registry = "https://rel.example.com"
//! token = "..."
//! key = "/home/ci/keys/ci.key"
//! trusted_keys = ["/etc/rel/ci.pub", "ci-2027:BASE64..."]
//! cache_dir = "/var/cache/rel"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rel_format::{PublicKey, SecretKey, TrustedKeys};
use serde::Deserialize;

use crate::cli::GlobalArgs;

pub const DEFAULT_REGISTRY: &str = "http://127.0.0.1:7878";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    registry: Option<String>,
    token: Option<String>,
    key: Option<PathBuf>,
    #[serde(default)]
    trusted_keys: Vec<String>,
    cache_dir: Option<PathBuf>,
}

/// Resolved settings.
#[derive(Debug)]
pub struct Settings {
    pub registry: String,
    pub token: Option<String>,
    pub key: Option<PathBuf>,
    pub trusted_keys: Vec<String>,
    pub cache_dir: PathBuf,
    pub state_dir: PathBuf,
    pub quiet: bool,
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into())).join(fallback))
}

impl Settings {
    pub fn resolve(global: &GlobalArgs) -> Result<Self> {
        let (path, explicit) = match &global.client_config {
            Some(p) => (p.clone(), true),
            None => (xdg("XDG_CONFIG_HOME", ".config").join("rel/config.toml"), false),
        };
        let file: ConfigFile = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("invalid config file `{}`", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => ConfigFile::default(),
            Err(e) => return Err(e).with_context(|| format!("cannot read config file `{}`", path.display())),
        };
        Ok(Settings {
            registry: global
                .registry
                .clone()
                .or(file.registry)
                .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned()),
            token: global.token.clone().or(file.token),
            key: file.key,
            trusted_keys: file.trusted_keys,
            cache_dir: global
                .cache_dir
                .clone()
                .or(file.cache_dir)
                .unwrap_or_else(|| xdg("XDG_CACHE_HOME", ".cache").join("rel/chunks")),
            state_dir: std::env::var_os(crate::env::REL_STATE_DIR)
                .map(PathBuf::from)
                .unwrap_or_else(|| xdg("XDG_STATE_HOME", ".local/state").join("rel")),
            quiet: global.quiet,
        })
    }

    /// The signing key: the flag (or `REL_KEY`), else the config file's.
    pub fn secret_key(&self, flag: Option<&Path>) -> Result<SecretKey> {
        let path = flag
            .map(Path::to_owned)
            .or_else(|| self.key.clone())
            .context("no signing key: pass --key FILE or set REL_KEY (make one with `rel keygen NAME`)")?;
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read secret key `{}`", path.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("`{}` is not a rel secret key", path.display()))
    }

    /// The trusted keys: the flags (or `REL_TRUSTED_KEYS`), else the config file's. Each is
    /// a `.pub` file or an inline `name:base64`.
    pub fn trusted(&self, flags: &[String]) -> Result<TrustedKeys> {
        let items = if flags.is_empty() { &self.trusted_keys } else { flags };
        if items.is_empty() {
            anyhow::bail!(
                "no trusted keys: pass --trusted-key FILE (the publisher's NAME.pub) or set REL_TRUSTED_KEYS; rel never installs what it cannot verify"
            );
        }
        let mut keys = Vec::new();
        for item in items {
            let text = if Path::new(item).exists() {
                std::fs::read_to_string(item).with_context(|| format!("cannot read public key `{item}`"))?
            } else {
                item.clone()
            };
            let key: PublicKey = text
                .trim()
                .parse()
                .with_context(|| format!("`{item}` is neither a public key file nor a `name:base64` key"))?;
            keys.push(key);
        }
        Ok(TrustedKeys::new(keys))
    }
}
