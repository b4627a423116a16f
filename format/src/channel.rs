//! Channel pointers: which version a channel (`staging`, `production`) points at.
//!
//! A pointer is signed by a publisher key like a manifest, and carries the identity of the
//! registry it was promoted on, a sequence number that only grows and an expiry. A host
//! remembers, per registry identity, release and channel, the pointer it last accepted, and
//! refuses an older sequence (a replayed pointer rolling it back), the same sequence naming
//! anything else (a losing promotion of a race, replayed), and an expired pointer (a registry
//! frozen on an old pointer). This is the part of TUF's timestamp and snapshot roles that rel
//! needs (SPEC.md §6.2).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::manifest::ManifestError;
use crate::release::is_valid_name;
use crate::signing::{Envelope, Signable};
use crate::timestamp::Timestamp;
use crate::version::Version;

/// The only schema of channel pointers.
pub const CHANNEL_SCHEMA: &str = "rel.channel/1";
/// Domain separation for channel pointer signatures.
pub const CHANNEL_CONTEXT: &[u8] = b"rel-channel-v1\n";
/// Largest signed channel pointer accepted, in bytes (one is a few hundred).
pub const MAX_POINTER_BYTES: usize = 64 * 1024;

/// A channel pointer (SPEC.md §6.2). Fields in byte order of their names, so that
/// `serde_json`'s compact output is its canonical JSON.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelPointer {
    pub channel: String,
    pub created: Timestamp,
    /// Hosts refuse the pointer from then on.
    pub expires: Timestamp,
    pub name: String,
    /// The identity of the registry it was promoted on (`GET /v1/registry`): what a host
    /// keys its memory of the channel by, whatever URL it reached the registry by.
    pub registry: String,
    pub schema: String,
    /// Starts at 1 and grows by one with each promotion.
    pub sequence: u64,
    pub version: Version,
}

/// A signed channel pointer.
pub type SignedChannel = Envelope<ChannelPointer>;

/// True for a valid channel name: a letter, then letters, digits, `_`, `.` or `-`, at most 64.
pub fn is_valid_channel(name: &str) -> bool {
    name.len() <= 64
        && name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// True for a registry identity: 32 lowercase hex digits (128 random bits).
pub fn is_valid_registry_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Signable for ChannelPointer {
    const CONTEXT: &'static [u8] = CHANNEL_CONTEXT;
    const WHAT: &'static str = "channel pointer";
    const MAX_BYTES: usize = MAX_POINTER_BYTES;

    fn check(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError::Invalid(m));
        if self.schema != CHANNEL_SCHEMA {
            return bad(format!("schema `{}` is not `{CHANNEL_SCHEMA}`", self.schema));
        }
        if !is_valid_name(&self.name) {
            return bad(format!("release name `{}` is not a valid name", self.name));
        }
        if !is_valid_channel(&self.channel) {
            return bad(format!("channel `{}` is not a valid channel name", self.channel));
        }
        if !is_valid_registry_id(&self.registry) {
            return bad(format!(
                "registry identity `{}` is not 32 lowercase hex digits",
                crate::untrusted::Escaped(&self.registry)
            ));
        }
        if self.sequence == 0 {
            return bad("channel sequence numbers start at 1".into());
        }
        if self.expires <= self.created {
            return bad(format!(
                "pointer expires ({}) before it was created ({})",
                self.expires, self.created
            ));
        }
        Ok(())
    }
}

/// Why a host refused a channel pointer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelError {
    #[error("the registry sent the pointer of `{actual}`, but `{expected}` was asked for")]
    Mismatch { expected: String, actual: String },
    #[error(
        "channel pointer {channel} has sequence {got}, older than {seen} already accepted: a rollback or a replayed pointer"
    )]
    Rollback { channel: String, got: u64, seen: u64 },
    #[error(
        "channel pointer {channel} has sequence {seq}, already accepted for `{seen_version}`, but names `{got_version}`: another pointer of the same sequence (a promotion that lost a race), replayed"
    )]
    SameSequence {
        channel: String,
        seq: u64,
        seen_version: String,
        got_version: String,
    },
    #[error("channel pointer {channel} expired at {expires} (now {now}): the registry may be serving a frozen view")]
    Expired {
        channel: String,
        expires: Timestamp,
        now: Timestamp,
    },
}

/// The pointer a host last accepted for a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub sequence: u64,
    pub version: Version,
    /// The digest of the pointer's canonical JSON ([`ChannelPointer::digest`]).
    pub digest: crate::Digest,
}

/// What a host knows when it checks a pointer.
#[derive(Debug, Clone)]
pub struct Freshness {
    /// The pointer this host last accepted for the channel on this registry, if any.
    pub seen: Option<Seen>,
    /// The current time.
    pub now: Timestamp,
}

impl ChannelPointer {
    /// The digest of the pointer's canonical JSON: two pointers are the same pointer only if
    /// it is equal.
    pub fn digest(&self) -> crate::Digest {
        crate::Digest::of(&crate::manifest::canonical_bytes(self))
    }

    /// What a host records once it accepted this pointer.
    pub fn seen(&self) -> Seen {
        Seen {
            sequence: self.sequence,
            version: self.version.clone(),
            digest: self.digest(),
        }
    }

    /// Checks a verified pointer against what was asked and what the host has seen: a higher
    /// sequence is accepted; the same sequence only if it is the very pointer seen (a
    /// re-read); a lower one never.
    pub fn check_fresh(&self, name: &str, channel: &str, fresh: &Freshness) -> Result<(), ChannelError> {
        let label = format!("{}/{}", self.name, self.channel);
        if self.name != name || self.channel != channel {
            return Err(ChannelError::Mismatch {
                expected: format!("{name}/{channel}"),
                actual: label,
            });
        }
        if let Some(seen) = &fresh.seen {
            if self.sequence < seen.sequence {
                return Err(ChannelError::Rollback {
                    channel: label,
                    got: self.sequence,
                    seen: seen.sequence,
                });
            }
            if self.sequence == seen.sequence && (self.version != seen.version || self.digest() != seen.digest) {
                return Err(ChannelError::SameSequence {
                    channel: label,
                    seq: self.sequence,
                    seen_version: seen.version.to_string(),
                    got_version: self.version.to_string(),
                });
            }
        }
        if fresh.now >= self.expires {
            return Err(ChannelError::Expired {
                channel: label,
                expires: self.expires,
                now: fresh.now,
            });
        }
        Ok(())
    }
}

impl fmt::Display for ChannelPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} -> {} (#{})",
            self.name, self.channel, self.version, self.sequence
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{SecretKey, TrustedKeys};

    fn pointer(seq: u64) -> ChannelPointer {
        ChannelPointer {
            schema: CHANNEL_SCHEMA.into(),
            name: "demo".into(),
            channel: "production".into(),
            registry: "0123456789abcdef0123456789abcdef".into(),
            version: "0.1.0+20240101-1000-49ab6e0".parse().unwrap(),
            sequence: seq,
            expires: "2030-01-01T00:00:00Z".parse().unwrap(),
            created: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
    }

    /// Fields are declared in canonical order: the compact output is the canonical JSON.
    #[test]
    fn compact_output_is_canonical() {
        let p = pointer(7);
        let tree = crate::manifest::canonical_json(&serde_json::to_value(&p).unwrap());
        assert_eq!(crate::manifest::canonical_bytes(&p), tree);
    }

    #[test]
    fn signed_pointers_verify_and_are_not_manifests() {
        let key = SecretKey::from_seed("ci", [5; 32]).unwrap();
        let env = SignedChannel::sign(pointer(3), &key).unwrap();
        let bytes = env.to_bytes();
        let trusted = TrustedKeys::new([key.public()]);
        let (back, signer) = SignedChannel::verify_signature(&bytes, &trusted).unwrap();
        assert_eq!((back.signed, signer.as_str()), (pointer(3), "ci"));
        // The same signature is not valid as a manifest signature (domain separation).
        assert!(crate::signing::SignedManifest::verify_signature(&bytes, &trusted).is_err());
    }

    #[test]
    fn freshness_refuses_rollbacks_and_expired_pointers() {
        let p = pointer(5);
        let now: crate::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        let seen = |p: &ChannelPointer| Freshness {
            seen: Some(p.seen()),
            now,
        };
        assert!(p.check_fresh("demo", "production", &seen(&p)).is_ok(), "a re-read");
        assert!(p.check_fresh("demo", "production", &seen(&pointer(4))).is_ok());
        assert!(
            p.check_fresh("demo", "production", &Freshness { seen: None, now })
                .is_ok()
        );
        assert_eq!(
            p.check_fresh("demo", "production", &seen(&pointer(6)))
                .unwrap_err()
                .to_string(),
            "channel pointer demo/production has sequence 5, older than 6 already accepted: a rollback or a replayed pointer"
        );
        // The same sequence naming another version: the loser of a promotion race, replayed.
        let mut loser = pointer(5);
        loser.version = "0.0.9".parse().unwrap();
        assert_eq!(
            loser
                .check_fresh("demo", "production", &seen(&p))
                .unwrap_err()
                .to_string(),
            "channel pointer demo/production has sequence 5, already accepted for `0.1.0+20240101-1000-49ab6e0`, but names `0.0.9`: another pointer of the same sequence (a promotion that lost a race), replayed"
        );
        // The same sequence and version, but another pointer (another expiry).
        let mut twin = pointer(5);
        twin.expires = "2031-01-01T00:00:00Z".parse().unwrap();
        assert!(matches!(
            twin.check_fresh("demo", "production", &seen(&p)),
            Err(ChannelError::SameSequence { .. })
        ));
        let late = Freshness {
            seen: None,
            now: "2030-01-01T00:00:00Z".parse().unwrap(),
        };
        assert!(matches!(
            p.check_fresh("demo", "production", &late),
            Err(ChannelError::Expired { .. })
        ));
        assert!(matches!(
            p.check_fresh("demo", "staging", &Freshness { seen: None, now }),
            Err(ChannelError::Mismatch { .. })
        ));
    }

    #[test]
    fn invalid_pointers_are_refused() {
        let mut p = pointer(0);
        assert!(p.check().unwrap_err().to_string().contains("start at 1"));
        p = pointer(1);
        p.channel = "../x".into();
        assert!(p.check().unwrap_err().to_string().contains("not a valid channel name"));
        p = pointer(1);
        p.registry = "https://registry.example".into();
        assert!(p.check().unwrap_err().to_string().contains("registry identity"));
        p = pointer(1);
        p.expires = p.created;
        assert!(p.check().unwrap_err().to_string().contains("expires"));
    }
}
