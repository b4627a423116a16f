//! The filesystem side of archives: packing a release folder into the canonical tar,
//! extracting an archive without trusting it, and writing tarballs atomically.
//!
//! `rel-format` holds the rules (member paths, link targets, limits); this module applies
//! them to real directories.

mod extract;
mod output;
mod pack;
mod pipe;
mod snapshot;

pub use extract::{ExtractError, ExtractReport, extract, extract_confirmed};
pub use output::TarFile;
pub use pack::{PackError, pack_dir};
pub use pipe::pipe;
pub use snapshot::snapshot_dir;
