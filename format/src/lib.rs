//! The formats of rel, without I/O.
//!
//! This crate works on bytes and on `Read`/`Write`: no files, no network, no async. The
//! registry, the `rel` CLI and the host side all build on it, and SPEC.md is its normative
//! description.
//!
//! - [`version`]: exact version strings with a total, typed order (AUTO_VERSION aware).
//! - [`digest`]: `sha256:<hex>` content addresses.
//! - [`term`]: Erlang term files, read and written.
//! - [`release`]: a release's `.rel` and `lib/` directories.
//! - [`archive`]: the canonical tar form and the rules for hostile archives.
//! - [`chunk`]: content-defined chunks, reassembly and chunk compression.
//! - [`pack`]: many compressed chunks in one upload and one stored object.
//! - [`manifest`]: what an artifact is, in canonical JSON.
//! - [`signing`]: ed25519 keys, signatures and verification of the artifact asked for.

#![forbid(unsafe_code)]

pub mod api;
pub mod appup;
pub mod archive;
pub mod beam;
pub mod channel;
pub mod chunk;
pub mod digest;
pub mod etf;
pub mod manifest;
pub mod pack;
pub mod release;
pub mod relup;
pub mod signing;
pub mod term;
pub mod upgrade;
pub mod upgrade_path;
pub mod version;

pub use digest::{Digest, DigestError};
pub use manifest::{Kind, Manifest, ManifestError};
pub use signing::{Expected, PublicKey, SecretKey, SignatureError, SignedManifest, TrustedKeys};
pub use version::{Version, VersionError};
