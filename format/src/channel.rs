//! Channel pointers: which version a channel (`staging`, `production`) points at.
//!
//! A pointer is signed by a publisher key like a manifest, and carries a sequence number
//! that only grows and an expiry. A host remembers the highest sequence it has accepted per
//! release and channel and refuses anything older (a replayed pointer rolling it back) or
//! expired (a registry frozen on an old pointer). This is the part of TUF's timestamp and
//! snapshot roles that rel needs (SPEC.md §6.2).

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

/// A channel pointer (SPEC.md §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelPointer {
    pub schema: String,
    pub name: String,
    pub channel: String,
    pub version: Version,
    /// Starts at 1 and grows by one with each promotion.
    pub sequence: u64,
    /// Hosts refuse the pointer from then on.
    pub expires: Timestamp,
    pub created: Timestamp,
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
    #[error("channel pointer {channel} expired at {expires} (now {now}): the registry may be serving a frozen view")]
    Expired {
        channel: String,
        expires: Timestamp,
        now: Timestamp,
    },
}

/// What a host knows when it checks a pointer.
#[derive(Debug, Clone, Copy)]
pub struct Freshness {
    /// The highest sequence this host accepted for the channel, if any.
    pub seen: Option<u64>,
    /// The current time.
    pub now: Timestamp,
}

impl ChannelPointer {
    /// Checks a verified pointer against what was asked and what the host has seen.
    /// A pointer with the same sequence as the one seen is accepted (a re-read).
    pub fn check_fresh(&self, name: &str, channel: &str, fresh: Freshness) -> Result<(), ChannelError> {
        let label = format!("{}/{}", self.name, self.channel);
        if self.name != name || self.channel != channel {
            return Err(ChannelError::Mismatch {
                expected: format!("{name}/{channel}"),
                actual: label,
            });
        }
        if let Some(seen) = fresh.seen
            && self.sequence < seen
        {
            return Err(ChannelError::Rollback {
                channel: label,
                got: self.sequence,
                seen,
            });
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
            version: "0.1.0+20240101-1000-49ab6e0".parse().unwrap(),
            sequence: seq,
            expires: "2030-01-01T00:00:00Z".parse().unwrap(),
            created: "2026-01-01T00:00:00Z".parse().unwrap(),
        }
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
        assert!(
            p.check_fresh("demo", "production", Freshness { seen: Some(5), now })
                .is_ok()
        );
        assert!(
            p.check_fresh("demo", "production", Freshness { seen: None, now })
                .is_ok()
        );
        assert_eq!(
            p.check_fresh("demo", "production", Freshness { seen: Some(6), now })
                .unwrap_err()
                .to_string(),
            "channel pointer demo/production has sequence 5, older than 6 already accepted: a rollback or a replayed pointer"
        );
        let late = Freshness {
            seen: None,
            now: "2030-01-01T00:00:00Z".parse().unwrap(),
        };
        assert!(matches!(
            p.check_fresh("demo", "production", late),
            Err(ChannelError::Expired { .. })
        ));
        assert!(matches!(
            p.check_fresh("demo", "staging", Freshness { seen: None, now }),
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
        p.expires = p.created;
        assert!(p.check().unwrap_err().to_string().contains("expires"));
    }
}
