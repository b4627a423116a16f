//! The registry's HTTP API v1 bodies (SPEC.md §7), shared by the server and the client.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::manifest::Kind;
use crate::version::Version;

/// Most digests one "which are missing?" request may ask about.
pub const MAX_MISSING_QUERY: usize = 100_000;

/// Most chunks one `POST /v1/chunks/batch` may ask for.
pub const MAX_BATCH: usize = 1024;

/// Every error: a stable machine code and a sentence for people.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    /// With `missing_chunks`: the chunks a manifest names that the store lacks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<Digest>,
}

/// `GET /v1/registry`: who this registry is. Channel pointers carry the `id`, and hosts key
/// what they remember of a channel by it (SPEC.md §6.2).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryInfo {
    /// 32 lowercase hex digits, random, made when the store was first served.
    pub id: String,
}

/// `POST /v1/chunks/missing` request and response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    pub digests: Vec<Digest>,
}

/// `POST /v1/chunks/delta` request: the `chunks` wanted, as one zstd frame whose prefix is the
/// `base` chunks, concatenated in order (SPEC.md §4.2).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaRequest {
    /// Chunks the caller holds, at most 1,024 and 4 MiB in all.
    pub base: Vec<Digest>,
    /// Chunks it wants, 1 to 1,024 and at most 4 MiB in all.
    pub chunks: Vec<Digest>,
}

/// `POST /v1/packs` response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackStored {
    /// The pack's name (`pack_id`), which keys it in the store.
    pub pack: Digest,
    /// How many distinct chunks it holds.
    pub chunks: u64,
}

/// `PUT /v1/manifests` response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub name: String,
    pub version: Version,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Version>,
    /// The store key of the manifest.
    pub key: String,
    /// The key that signed it, when the registry checks signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
}

/// `GET /v1/releases` response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseNames {
    pub releases: Vec<String>,
}

/// One stored artifact in a version listing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Version>,
    /// Bytes of the canonical tar.
    pub bytes: u64,
    pub chunks: u64,
    pub created: crate::Timestamp,
    /// The manifest's digest ([`crate::Manifest::digest`]): what `rel pull --digest` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// A yanked upgrade: listed, but never part of an upgrade path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub yanked: bool,
}

/// One version in `GET /v1/releases/{name}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: Version,
    pub artifacts: Vec<ArtifactInfo>,
    /// Channels currently pointing at this version.
    #[serde(default)]
    pub channels: Vec<String>,
    #[serde(default)]
    pub yanked: bool,
    /// Why it was yanked, as the admin said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yank_reason: Option<String>,
}

/// `GET /v1/releases/{name}` response: versions in rel's order, oldest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionList {
    pub name: String,
    pub versions: Vec<VersionInfo>,
}

/// `PUT /v1/releases/{name}/versions/{version}/yank` request: the version, or with
/// `upgrade_from` only the upgrade artifact to it from that version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Yank {
    pub yanked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_from: Option<Version>,
    /// Why, for people reading listings: at most [`MAX_YANK_REASON`] bytes of one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Longest reason a yank may give, in bytes.
pub const MAX_YANK_REASON: usize = 500;

impl Yank {
    /// Refuses a reason that is too long or not one line of printable text.
    pub fn check_reason(reason: &str) -> Result<(), String> {
        if reason.len() > MAX_YANK_REASON {
            return Err(format!(
                "a yank reason of {} bytes; at most {MAX_YANK_REASON}",
                reason.len()
            ));
        }
        if reason.trim().is_empty() || reason.chars().any(char::is_control) {
            return Err("a yank reason is one line of text, without control characters".into());
        }
        Ok(())
    }
}

/// `POST /v1/admin/gc` request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GcRequest {
    /// Only chunks older than this many seconds are deleted; defaults to the registry's grace.
    #[serde(default)]
    pub grace_seconds: Option<u64>,
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /v1/admin/gc` response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    pub manifests: u64,
    pub chunks_referenced: u64,
    pub chunks_seen: u64,
    pub chunks_deleted: u64,
    pub bytes_deleted: u64,
    /// Unreferenced chunks kept because they are younger than the grace period.
    pub chunks_in_grace: u64,
    /// Packs deleted whole: every chunk in them was collected, or they were never indexed.
    #[serde(default)]
    pub packs_deleted: u64,
    /// Packs written again without their collected chunks.
    #[serde(default)]
    pub packs_rewritten: u64,
    /// Leftovers of interrupted writes deleted (the store's staging files, start-up probes),
    /// and their bytes.
    #[serde(default)]
    pub debris_deleted: u64,
    #[serde(default)]
    pub debris_bytes: u64,
    pub dry_run: bool,
}
