//! Release archives: one canonical tar form, built from any release input, and the rules
//! that make archive members safe to write.
//!
//! The canonical form is an **uncompressed** ustar stream (GNU long names past 255 bytes):
//! members keep the order of the input (a folder is walked in byte order of its paths), every
//! header is normalised (mtime 0, uid/gid 0, no owner names, mode `0755` for directories and
//! executables, `0644` for other files, `0777` for symlinks) and paths are relative and
//! clean. Compression happens per chunk later, so that two versions of a release share most
//! of their bytes (SPEC.md §3).
//!
//! Archives are hostile input. [`check_member_path`], [`check_symlink_target`] and
//! [`member_kind`] are the single set of rules used both when a release is ingested and when
//! an archive is extracted; each refusal has its own [`ArchiveError`] naming the member.

mod canonical;

pub use canonical::{
    CanonicalTar, CheckedMember, IngestError, Ingested, NativeCode, canonicalize, check_entry, decompress,
};

use std::collections::{HashMap, HashSet};

use crate::untrusted::Escaped;

/// Limits applied to every archive rel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Total bytes of member contents.
    pub max_total_bytes: u64,
    /// Number of members.
    pub max_entries: u64,
    /// Bytes of one member path.
    pub max_path_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_total_bytes: 16 << 30,
            max_entries: 1_000_000,
            max_path_len: 4096,
        }
    }
}

/// Which members of an input become the release. By default everything except what belongs
/// to the host: `releases/COOKIE`, mix's distribution secret, which a host supplies like any
/// other secret. A folder that holds several versions (as `_build/prod/rel/<name>` does) is
/// narrowed to one with [`Selection::only`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Keep `releases/COOKIE`: the cookie then travels with the release, to every host.
    pub include_secrets: bool,
    /// Keep one release of several: its `releases/<vsn>/`, its applications' `lib/` folders
    /// and its own `bin/<name>-<vsn>`, and nothing of the other versions.
    pub only: Option<OnlyRelease>,
}

/// The one release a [`Selection`] keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlyRelease {
    pub name: String,
    pub version: String,
    /// Its `lib/<app>-<vsn>` folders.
    pub lib_dirs: HashSet<String>,
    /// Versions of the same release whose `releases/<vsn>/` are dropped.
    pub others: HashSet<String>,
}

/// Members that hold host secrets.
pub const SECRETS: &[&str] = &["releases/COOKIE"];

impl Selection {
    /// Whether the member at `path` (checked and normalised) is part of the release.
    pub fn keeps(&self, path: &str) -> bool {
        if !self.include_secrets && SECRETS.contains(&path) {
            return false;
        }
        let Some(only) = &self.only else { return true };
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["lib", dir, ..] => only.lib_dirs.contains(*dir),
            ["releases", v, _, ..] | ["releases", v] if only.others.contains(*v) => false,
            ["releases", f] if f.ends_with(".rel") => *f == format!("{}.rel", only.name),
            ["bin", script] => match script.strip_prefix(&format!("{}-", only.name)) {
                Some(vsn) => vsn == only.version,
                None => true,
            },
            _ => true,
        }
    }
}

/// Why an archive (or one of its members) was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("archive member `{}` has an absolute path", Escaped(.0))]
    AbsolutePath(String),
    #[error("archive member `{}` has a `..` component", Escaped(.0))]
    ParentDir(String),
    #[error("archive member `{}` has an invalid path (empty, NUL, backslash or not UTF-8)", Escaped(.0))]
    BadPath(String),
    #[error("archive member `{}` has a path of {len} bytes; at most {max} are allowed", Escaped(.path))]
    PathTooLong { path: String, len: usize, max: usize },
    #[error("archive member `{}` appears twice", Escaped(.0))]
    Duplicate(String),
    #[error("archive member `{}` is a symlink to `{}`, which leaves the archive's root", Escaped(.path), Escaped(.target))]
    SymlinkEscape { path: String, target: String },
    #[error(
        "archive member `{}` is a hard link to `{}`, which is not an earlier regular file of the archive",
        Escaped(.path),
        Escaped(.target)
    )]
    HardLinkTarget { path: String, target: String },
    #[error("archive member `{}` is a {kind}; only files, directories and links are allowed", Escaped(.path))]
    SpecialFile { path: String, kind: String },
    #[error("archive member `{}` has mode {mode:o} with the setuid or setgid bit", Escaped(.path))]
    SetId { path: String, mode: u32 },
    #[error("archive member `{}` goes through `{}`, which is not a directory", Escaped(.path), Escaped(.through))]
    ThroughNonDir { path: String, through: String },
    #[error("archive holds more than {max} bytes of contents (at member `{}`)", Escaped(.path))]
    TooLarge { path: String, max: u64 },
    #[error("archive holds more than {max} members (at member `{}`)", Escaped(.path))]
    TooManyEntries { path: String, max: u64 },
    #[error("archive member `{}` is {expected} bytes in its header but {actual} bytes were read", Escaped(.path))]
    SizeMismatch { path: String, expected: u64, actual: u64 },
    #[error("archive holds more than {max} {what} (at member `{}`)", Escaped(.path))]
    TooMany {
        what: &'static str,
        max: usize,
        path: String,
    },
    #[error("archive is {0}-compressed, and this build of rel cannot read that")]
    Unsupported(&'static str),
    #[error("cannot read the archive")]
    Read(#[source] std::io::Error),
    #[error("cannot write the archive")]
    Write(#[source] std::io::Error),
}

/// A member, as far as rel accepts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberKind {
    Dir,
    File {
        executable: bool,
    },
    Symlink {
        target: String,
    },
    /// Another member of the same archive; `target` is a checked member path.
    HardLink {
        target: String,
    },
}

/// Checks and normalises a member path: relative, UTF-8, no `..`, no NUL or backslash.
/// A leading `./` and `.` components are dropped, as is a trailing `/`. Returns `None` for
/// the archive root itself (`./`), which carries nothing.
pub fn check_member_path(raw: &[u8], limits: &Limits) -> Result<Option<String>, ArchiveError> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.len() > limits.max_path_len {
        return Err(ArchiveError::PathTooLong {
            path: shown(),
            len: raw.len(),
            max: limits.max_path_len,
        });
    }
    let text = std::str::from_utf8(raw).map_err(|_| ArchiveError::BadPath(shown()))?;
    if text.contains(['\0', '\\']) {
        return Err(ArchiveError::BadPath(shown()));
    }
    if text.starts_with('/') {
        return Err(ArchiveError::AbsolutePath(shown()));
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(ArchiveError::ParentDir(shown())),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return if text.is_empty() {
            Err(ArchiveError::BadPath(shown()))
        } else {
            Ok(None)
        };
    }
    Ok(Some(parts.join("/")))
}

/// Checks that a symlink at member path `path` pointing at `target` stays inside the root.
///
/// The target must be relative; `..` may appear only as leading components, and no more of
/// them than `path` has parent directories. With every member's parents being real
/// directories (checked at extraction), this makes the kernel's resolution agree with the
/// lexical one, even when the target passes through other symlinks.
pub fn check_symlink_target(path: &str, target: &[u8]) -> Result<String, ArchiveError> {
    let escape = || ArchiveError::SymlinkEscape {
        path: path.to_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
    };
    let text = std::str::from_utf8(target).map_err(|_| escape())?;
    if text.is_empty() || text.starts_with('/') || text.contains(['\0', '\\']) {
        return Err(escape());
    }
    let depth = path.split('/').count() - 1;
    let mut ups = 0;
    let mut descended = false;
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." if descended => return Err(escape()),
            ".." => ups += 1,
            _ => descended = true,
        }
    }
    if ups > depth {
        return Err(escape());
    }
    Ok(text.to_owned())
}

/// The kind of a tar member, refusing special files and setuid/setgid bits.
pub fn member_kind(
    path: &str,
    entry_type: tar::EntryType,
    mode: u32,
    link_name: Option<&[u8]>,
    limits: &Limits,
) -> Result<MemberKind, ArchiveError> {
    use tar::EntryType as T;
    if mode & 0o6000 != 0 {
        return Err(ArchiveError::SetId {
            path: path.to_owned(),
            mode,
        });
    }
    let special = |kind: &str| {
        Err(ArchiveError::SpecialFile {
            path: path.to_owned(),
            kind: kind.to_owned(),
        })
    };
    match entry_type {
        T::Regular | T::Continuous => Ok(MemberKind::File {
            executable: mode & 0o111 != 0,
        }),
        T::Directory => Ok(MemberKind::Dir),
        T::Symlink => {
            let target = check_symlink_target(path, link_name.unwrap_or_default())?;
            Ok(MemberKind::Symlink { target })
        }
        T::Link => {
            let bad = || ArchiveError::HardLinkTarget {
                path: path.to_owned(),
                target: String::from_utf8_lossy(link_name.unwrap_or_default()).into_owned(),
            };
            match check_member_path(link_name.unwrap_or_default(), limits) {
                Ok(Some(target)) => Ok(MemberKind::HardLink { target }),
                _ => Err(bad()),
            }
        }
        T::Char => special("character device"),
        T::Block => special("block device"),
        T::Fifo => special("fifo"),
        T::GNUSparse => special("sparse file"),
        other => special(&format!("tar entry of type {:?}", other.as_byte() as char)),
    }
}

/// The key a member path is remembered by: its SHA-256, so that what an archive costs to
/// check does not grow with the length of its paths (32 bytes a member, whatever the path).
pub fn path_key(path: &str) -> [u8; 32] {
    *crate::Digest::of(path.as_bytes()).as_bytes()
}

/// Tracks the members already seen in one archive: duplicates, hard link targets, totals.
/// Paths are kept as [`path_key`]s: a million members cost about 70 MiB, whatever their
/// paths' lengths.
#[derive(Debug, Default)]
pub struct MemberSet {
    /// Every member, and whether it is a regular file.
    all: HashMap<[u8; 32], bool>,
    entries: u64,
    bytes: u64,
}

impl MemberSet {
    /// Records a member, enforcing `limits` and the hard link rule.
    pub fn admit(&mut self, path: &str, kind: &MemberKind, size: u64, limits: &Limits) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                path: path.to_owned(),
                max: limits.max_entries,
            });
        }
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > limits.max_total_bytes {
            return Err(ArchiveError::TooLarge {
                path: path.to_owned(),
                max: limits.max_total_bytes,
            });
        }
        if let MemberKind::HardLink { target } = kind
            && self.all.get(&path_key(target)) != Some(&true)
        {
            return Err(ArchiveError::HardLinkTarget {
                path: path.to_owned(),
                target: target.clone(),
            });
        }
        let is_file = matches!(kind, MemberKind::File { .. });
        if self.all.insert(path_key(path), is_file).is_some() {
            return Err(ArchiveError::Duplicate(path.to_owned()));
        }
        Ok(())
    }

    /// Members admitted so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Content bytes admitted so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Result<Option<String>, ArchiveError> {
        check_member_path(p.as_bytes(), &Limits::default())
    }

    #[test]
    fn member_paths_are_normalised_or_refused() {
        assert_eq!(path("./lib/a-1/ebin/").unwrap().as_deref(), Some("lib/a-1/ebin"));
        assert_eq!(path("./").unwrap(), None);
        assert_eq!(
            path("/etc/passwd").unwrap_err().to_string(),
            "archive member `/etc/passwd` has an absolute path"
        );
        assert_eq!(
            path("lib/../../x").unwrap_err().to_string(),
            "archive member `lib/../../x` has a `..` component"
        );
        assert!(matches!(path("a\\b"), Err(ArchiveError::BadPath(_))));
        assert!(matches!(path(""), Err(ArchiveError::BadPath(_))));
        assert!(matches!(
            check_member_path(b"\xff", &Limits::default()),
            Err(ArchiveError::BadPath(_))
        ));
        let long = "a/".repeat(3000);
        assert!(matches!(path(&long), Err(ArchiveError::PathTooLong { .. })));
    }

    #[test]
    fn symlink_targets_must_stay_inside() {
        assert_eq!(
            check_symlink_target("releases/1/sys.config", b"../../etc/sys.config").unwrap(),
            "../../etc/sys.config"
        );
        assert!(check_symlink_target("a/b", b"c/d").is_ok());
        assert!(check_symlink_target("a/b", b"../x").is_ok());
        for bad in ["/etc/passwd", "../../x", "c/../../x", "c/../d", ""] {
            let err = check_symlink_target("a/b", bad.as_bytes()).unwrap_err();
            assert!(matches!(err, ArchiveError::SymlinkEscape { .. }), "{bad}: {err}");
        }
        assert_eq!(
            check_symlink_target("x", b"/etc").unwrap_err().to_string(),
            "archive member `x` is a symlink to `/etc`, which leaves the archive's root"
        );
    }

    #[test]
    fn special_files_and_setid_are_refused() {
        let l = Limits::default();
        let err = member_kind("dev/null", tar::EntryType::Char, 0o644, None, &l).unwrap_err();
        assert_eq!(
            err.to_string(),
            "archive member `dev/null` is a character device; only files, directories and links are allowed"
        );
        let err = member_kind("bin/x", tar::EntryType::Regular, 0o4755, None, &l).unwrap_err();
        assert_eq!(
            err.to_string(),
            "archive member `bin/x` has mode 4755 with the setuid or setgid bit"
        );
        assert!(matches!(
            member_kind("f", tar::EntryType::Fifo, 0o644, None, &l),
            Err(ArchiveError::SpecialFile { .. })
        ));
        assert_eq!(
            member_kind("bin/x", tar::EntryType::Regular, 0o750, None, &l).unwrap(),
            MemberKind::File { executable: true }
        );
    }

    #[test]
    fn member_set_enforces_duplicates_links_and_limits() {
        let limits = Limits {
            max_total_bytes: 10,
            max_entries: 3,
            max_path_len: 100,
        };
        let mut set = MemberSet::default();
        let file = MemberKind::File { executable: false };
        set.admit("a", &file, 4, &limits).unwrap();
        assert!(matches!(
            set.admit("a", &file, 0, &limits),
            Err(ArchiveError::Duplicate(_))
        ));
        let link = MemberKind::HardLink {
            target: "missing".into(),
        };
        assert!(matches!(
            set.admit("l", &link, 0, &limits),
            Err(ArchiveError::HardLinkTarget { .. })
        ));
        let mut set = MemberSet::default();
        set.admit("a", &file, 6, &limits).unwrap();
        assert!(matches!(
            set.admit("b", &file, 6, &limits),
            Err(ArchiveError::TooLarge { .. })
        ));
    }
}
