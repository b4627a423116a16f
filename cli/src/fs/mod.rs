//! The filesystem side of archives: a release folder archived into the canonical tar,
//! an archive extracted without trusting it, tarballs written atomically, and a folder read
//! for appup generation.
//!
//! `rel-format` holds the rules (member paths, link targets, limits); this module applies
//! them to real directories.

mod extract;
mod folder;
mod pipe;
mod snapshot;
mod tarfile;
pub mod temp;

pub use extract::{ExtractError, ExtractReport, MemberLog, extract, extract_confirmed};
pub use folder::{FolderError, archive_folder, archive_folder_with};
pub use pipe::pipe;
pub use snapshot::snapshot_dirs;
pub use tarfile::TarFile;
