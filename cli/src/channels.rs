//! Channels on the client: signing the next pointer of a channel, and resolving one on a
//! host, refused when it rolls back, replays another pointer of the sequence already
//! accepted, or has expired (SPEC.md §6.2). What a host accepted is kept in its state
//! directory, keyed by the registry identity the pointer is signed for (not by the URL the
//! registry was reached by), the release and the channel.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rel_format::channel::{CHANNEL_SCHEMA, ChannelError, ChannelPointer, Freshness, Seen, SignedChannel};
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

/// Signs and stores the next pointer of `channel`; returns it.
pub async fn promote(client: &Client, key: &SecretKey, pointer: Promotion<'_>) -> Result<ChannelPointer> {
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
    let registry = client.registry().await?.id;
    let now = crate::now();
    let pointer = ChannelPointer {
        schema: CHANNEL_SCHEMA.into(),
        name: name.to_owned(),
        channel: channel.to_owned(),
        registry,
        version: version.clone(),
        sequence: current + 1,
        expires: now.plus_seconds(lifetime.seconds),
        created: now,
    };
    let env = SignedChannel::sign(pointer, key)?;
    client.put_channel(name, channel, env.to_bytes()).await?;
    Ok(env.signed)
}

/// The pointer this host last accepted, per registry identity, release and channel.
#[derive(Debug)]
pub struct ChannelState {
    path: PathBuf,
    seen: BTreeMap<String, Remembered>,
}

/// One entry of `channels.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Remembered {
    Pointer(Seen),
    /// Written by rel before registry identities, keyed by the registry's URL: a sequence
    /// only, still honoured as a floor for that URL.
    Sequence(u64),
}

/// A pointer a host accepted, to record once what it points at is installed.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The registry identity the pointer is signed for.
    pub registry: String,
    pub name: String,
    pub channel: String,
    pub seen: Seen,
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

    /// What this host accepted for `channel` of `name` on the registry of identity
    /// `registry`.
    pub fn get(&self, registry: &str, name: &str, channel: &str) -> Option<Seen> {
        match self.seen.get(&Self::key(registry, name, channel)) {
            Some(Remembered::Pointer(seen)) => Some(seen.clone()),
            _ => None,
        }
    }

    /// The sequence an older rel recorded for `url`, if any.
    pub fn legacy(&self, url: &str, name: &str, channel: &str) -> Option<u64> {
        match self.seen.get(&Self::key(url, name, channel)) {
            Some(Remembered::Sequence(seq)) => Some(*seq),
            _ => None,
        }
    }

    /// Records an accepted pointer (never going back to a lower sequence).
    pub fn record(&mut self, accepted: &Accepted) -> Result<()> {
        let key = Self::key(&accepted.registry, &accepted.name, &accepted.channel);
        let newer = match self.seen.get(&key) {
            Some(Remembered::Pointer(seen)) => accepted.seen.sequence > seen.sequence,
            _ => true,
        };
        if newer {
            self.seen.insert(key, Remembered::Pointer(accepted.seen.clone()));
        }
        let dir = self.path.parent().expect("state file has a directory");
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&serde_json::to_vec_pretty(&self.seen)?)?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Resolves a channel to a version, refusing rollbacks, replayed pointers of the sequence
/// already accepted, and expired pointers. The pointer is recorded by the caller
/// ([`ChannelState::record`]) once the version is installed.
pub async fn resolve(
    s: &Settings,
    client: &Client,
    trusted: &TrustedKeys,
    name: &str,
    channel: &str,
    allow_downgrade: bool,
) -> Result<(Version, Accepted)> {
    let bytes = client.channel(name, channel).await?;
    let (env, _) =
        SignedChannel::verify_signature(&bytes, trusted).context("the channel pointer is not trustworthy")?;
    let pointer = &env.signed;
    let state = ChannelState::load(&s.state_dir)?;
    let url = client.base().as_str();
    let seen = state.get(&pointer.registry, name, channel);
    let now = crate::now();
    let legacy_floor = state
        .legacy(url, name, channel)
        .filter(|floor| seen.is_none() && pointer.sequence < *floor)
        .map(|floor| ChannelError::Rollback {
            channel: format!("{name}/{channel}"),
            got: pointer.sequence,
            seen: floor,
        });
    let checked = match legacy_floor {
        Some(e) => Err(e),
        None => pointer.check_fresh(name, channel, &Freshness { seen, now }),
    };
    match checked {
        Ok(()) => {}
        Err(e @ (ChannelError::Rollback { .. } | ChannelError::SameSequence { .. } | ChannelError::Expired { .. }))
            if allow_downgrade =>
        {
            crate::warn(&format!("{e}; continuing because of --allow-downgrade"));
        }
        Err(e) => return Err(e.into()),
    }
    let accepted = Accepted {
        registry: pointer.registry.clone(),
        name: name.to_owned(),
        channel: channel.to_owned(),
        seen: pointer.seen(),
    };
    Ok((pointer.version.clone(), accepted))
}

/// A channel as listings show it: what it points at and until when hosts accept the pointer.
#[derive(Debug, serde::Serialize)]
pub struct ChannelInfo {
    pub channel: String,
    pub version: Version,
    pub sequence: u64,
    pub expires: rel_format::Timestamp,
    pub expired: bool,
}

impl ChannelInfo {
    /// `production until …`, or what to do about an expired pointer.
    pub fn describe(&self, name: &str) -> String {
        match self.expired {
            true => format!(
                "{} EXPIRED {}: rel promote {name} --channel {} --renew",
                self.channel, self.expires, self.channel
            ),
            false => format!("{} until {}", self.channel, self.expires),
        }
    }
}

/// The pointers of `channels` of `name` (each once), for listings: read, not verified (a
/// host verifies the pointer it follows).
pub async fn listed<'a>(
    client: &Client,
    name: &str,
    channels: impl Iterator<Item = &'a String>,
) -> Result<Vec<ChannelInfo>> {
    let now = crate::now();
    let mut out = Vec::new();
    for c in channels.collect::<std::collections::BTreeSet<_>>() {
        let bytes = client.channel(name, c).await?;
        let pointer = rel_format::channel::SignedChannel::parse_unverified(&bytes)?.signed;
        out.push(ChannelInfo {
            channel: c.clone(),
            version: pointer.version,
            sequence: pointer.sequence,
            expired: pointer.expires <= now,
            expires: pointer.expires,
        });
    }
    Ok(out)
}
