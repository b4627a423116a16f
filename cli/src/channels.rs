//! Channels on the client: signing the next pointer of a channel, and resolving one on a
//! host, refused when it rolls back or has expired (SPEC.md §6.2). The highest sequence a
//! host accepted is kept in its state directory.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rel_format::channel::{CHANNEL_SCHEMA, ChannelError, ChannelPointer, Freshness, SignedChannel};
use rel_format::{SecretKey, TrustedKeys, Version};

use crate::client::Client;
use crate::settings::Settings;
use crate::values::Lifetime;

/// How long a pointer stays valid unless the promotion says otherwise: long enough for teams
/// that release a few times a year, short enough that a registry frozen on an old pointer is
/// noticed within the season. `rel promote --renew` re-signs the same version.
pub const DEFAULT_LIFETIME: Lifetime = Lifetime { seconds: 180 * 86_400 };

/// The pointer to sign: `channel` of `name` at `version`, valid for `lifetime`.
#[derive(Debug, Clone, Copy)]
pub struct Promotion<'a> {
    pub name: &'a str,
    pub version: &'a Version,
    pub channel: &'a str,
    pub lifetime: Lifetime,
}

/// Signs and stores the next pointer of `channel`.
pub async fn promote(client: &Client, key: &SecretKey, pointer: Promotion<'_>) -> Result<u64> {
    let Promotion {
        name,
        version,
        channel,
        lifetime,
    } = pointer;
    let current = match client.channel(name, channel).await {
        Ok(bytes) => SignedChannel::parse_unverified(&bytes)?.signed.sequence,
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => 0,
        Err(e) => return Err(e.into()),
    };
    let now = crate::now();
    let pointer = ChannelPointer {
        schema: CHANNEL_SCHEMA.into(),
        name: name.to_owned(),
        channel: channel.to_owned(),
        version: version.clone(),
        sequence: current + 1,
        expires: now.plus_seconds(lifetime.seconds),
        created: now,
    };
    let env = SignedChannel::sign(pointer, key)?;
    client.put_channel(name, channel, env.to_bytes()).await?;
    Ok(current + 1)
}

/// The highest channel sequence this host has accepted, per registry, release and channel.
#[derive(Debug)]
pub struct ChannelState {
    path: PathBuf,
    seen: BTreeMap<String, u64>,
}

impl ChannelState {
    pub fn load(state_dir: &Path) -> Result<Self> {
        let path = state_dir.join("channels.json");
        let seen = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).with_context(|| format!("corrupt channel state `{}`", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        };
        Ok(Self { path, seen })
    }

    fn key(registry: &str, name: &str, channel: &str) -> String {
        format!("{registry} {name} {channel}")
    }

    pub fn get(&self, registry: &str, name: &str, channel: &str) -> Option<u64> {
        self.seen.get(&Self::key(registry, name, channel)).copied()
    }

    pub fn record(&mut self, registry: &str, name: &str, channel: &str, seq: u64) -> Result<()> {
        let entry = self.seen.entry(Self::key(registry, name, channel)).or_default();
        *entry = (*entry).max(seq);
        let dir = self.path.parent().expect("state file has a directory");
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(&self.seen)?)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Resolves a channel to a version, refusing rollbacks and expired pointers.
pub async fn resolve(
    s: &Settings,
    client: &Client,
    trusted: &TrustedKeys,
    name: &str,
    channel: &str,
    allow_downgrade: bool,
) -> Result<(Version, u64)> {
    let bytes = client.channel(name, channel).await?;
    let (env, _) =
        SignedChannel::verify_signature(&bytes, trusted).context("the channel pointer is not trustworthy")?;
    let state = ChannelState::load(&s.state_dir)?;
    let seen = state.get(client.base().as_str(), name, channel);
    let now = crate::now();
    match env.signed.check_fresh(name, channel, Freshness { seen, now }) {
        Ok(()) => {}
        Err(e @ (ChannelError::Rollback { .. } | ChannelError::Expired { .. })) if allow_downgrade => {
            crate::warn(&format!("{e}; continuing because of --allow-downgrade"));
        }
        Err(e) => return Err(e.into()),
    }
    Ok((env.signed.version.clone(), env.signed.sequence))
}
