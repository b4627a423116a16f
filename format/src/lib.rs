//! The formats of rel, without I/O.
//!
//! This crate works on bytes and on `Read`/`Write`: no files, no network, no async. The
//! registry, the `rel` CLI and the host side all build on it, and SPEC.md is its normative
//! description.
//!
//! Values and their text forms:
//! - [`version`]: exact version strings with a total, typed order (AUTO_VERSION aware).
//! - [`timestamp`]: instants as rel writes them, `YYYY-MM-DDTHH:MM:SSZ`, real dates only.
//! - [`untrusted`]: untrusted text (member names, registry messages) made safe for a terminal.
//! - [`digest`]: `sha256:<hex>` content addresses.
//! - [`term`]: Erlang term files (`file:consult/1` syntax), read and written.
//! - [`etf`]: the external term format, decoded and encoded: BEAM chunks, distribution messages.
//!
//! Releases and what is inside them:
//! - [`release`]: a release's `.rel` and its `lib/` directory names.
//! - [`beam`]: BEAM files, module identity as `beam_lib:md5/1`, behaviours, literals, code.
//! - [`archive`]: the canonical tar form and the rules for hostile archives.
//! - [`snapshot`]: what appups and relups are computed from: a release's `.rel`, `.app`s and
//!   BEAM summaries.
//! - [`supervision`]: supervisors' children, child ids and registered names, read from BEAM
//!   code by a bounded symbolic evaluator and resolved across a release's modules.
//!
//! Artifacts, storage and trust:
//! - [`chunk`]: content-defined chunks, reassembly and chunk compression.
//! - [`delta`]: the chunks a host lacks, compressed against chunks it holds.
//! - [`pack`]: many compressed chunks in one upload and one stored object, and its index.
//! - [`manifest`]: what an artifact is, in canonical JSON.
//! - [`signing`]: ed25519 keys, signature envelopes, verification of the artifact asked for.
//! - [`channel`]: signed channel pointers, checked against rollback and freeze.
//! - [`api`]: the bodies of the registry's HTTP API, shared by the registry and its client.
//! - [`upgrade_path`]: the graph of stored upgrades and the cheapest plan through it.
//!
//! Hot upgrades:
//! - [`appup`]: appups generated from two snapshots, or given, with `.extra` additions.
//! - [`relup`]: relups, as `systools_relup` and `systools_rc` make them.
//! - [`protocols`]: Elixir's consolidated protocols swapped inside the relup.
//! - [`upgrade`]: the upgrade artifact: what a node on one release needs to reach another.
//! - [`sysconfig`]: a release's `sys.config` with the host's on top.

#![forbid(unsafe_code)]

pub mod api;
pub mod appup;
pub mod archive;
pub mod beam;
pub mod channel;
pub mod chunk;
pub mod delta;
pub mod digest;
pub mod etf;
pub mod manifest;
#[cfg(feature = "openapi")]
mod openapi;
pub mod pack;
pub mod protocols;
pub mod release;
pub mod relup;
pub mod signing;
pub mod snapshot;
pub mod supervision;
pub mod sysconfig;
pub mod term;
pub mod timestamp;
pub mod untrusted;
pub mod upgrade;
pub mod upgrade_path;
pub mod version;

pub use digest::{Digest, DigestError};
pub use manifest::{Kind, Manifest, ManifestError};
pub use signing::{Expected, PublicKey, SecretKey, SignatureError, SignedManifest, TrustedKeys};
pub use timestamp::{Timestamp, TimestampError};
pub use version::{Version, VersionError};
