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

use std::path::PathBuf;

use std::sync::Arc;

use anyhow::Result;
use rel_format::{PublicKey, SecretKey, TrustedKeys};
use reqwest::Url;
use serde::Deserialize;

use crate::UsageError;
use crate::args::GlobalArgs;
use crate::client::Client;
use crate::keys::{SecretKeyFile, parse_trusted_key};
use crate::values::parse_registry;

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
    pub registry: Url,
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
            Ok(text) => toml::from_str(&text)
                .map_err(|e| UsageError::new(format!("invalid config file `{}`: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => ConfigFile::default(),
            Err(e) => return Err(UsageError::new(format!("cannot read config file `{}`: {e}", path.display())).into()),
        };
        let registry = match (&global.registry, &file.registry) {
            (Some(url), _) => url.clone(),
            (None, Some(text)) => {
                parse_registry(text).map_err(|e| UsageError::new(format!("`registry` in `{}`: {e}", path.display())))?
            }
            (None, None) => parse_registry(DEFAULT_REGISTRY).expect("the default is a URL"),
        };
        Ok(Settings {
            registry,
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

    /// A client of the registry.
    pub fn client(&self) -> Client {
        Client::new(&self.registry, self.token.clone())
    }

    /// The signing key: the flag (or `REL_KEY`), else the config file's. Missing or of the
    /// wrong kind, it is a usage error.
    pub fn secret_key(&self, flag: Option<&SecretKeyFile>) -> Result<Arc<SecretKey>> {
        if let Some(f) = flag {
            return Ok(f.key.clone());
        }
        let path = self.key.as_ref().ok_or_else(|| {
            UsageError::new("no signing key: pass --key FILE or set REL_KEY (make one with `rel keygen NAME`)")
        })?;
        Ok(SecretKeyFile::read(path).map_err(UsageError::new)?.key)
    }

    /// The trusted keys: the flags (or `REL_TRUSTED_KEYS`), else the config file's. None at
    /// all is a usage error: rel never installs what it cannot verify.
    pub fn trusted(&self, flags: &[PublicKey]) -> Result<TrustedKeys> {
        if !flags.is_empty() {
            return Ok(TrustedKeys::new(flags.iter().cloned()));
        }
        if self.trusted_keys.is_empty() {
            return Err(UsageError::new(
                "no trusted keys: pass --trusted-key FILE (the publisher's NAME.pub) or set REL_TRUSTED_KEYS; rel never installs what it cannot verify",
            )
            .into());
        }
        let keys = self
            .trusted_keys
            .iter()
            .map(|k| {
                parse_trusted_key(k).map_err(|e| UsageError::new(format!("`trusted_keys` in the config file: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TrustedKeys::new(keys))
    }
}
