//! Extraction of untrusted archives.
//!
//! Every member passes the rules of `rel_format::archive` (no absolute paths, no `..`, links
//! that stay inside, no devices, no setuid/setgid, size and count limits). On top of that,
//! no member may be written *through* a symlink or a file: each parent must be a real
//! directory. Everything is written into a fresh temporary directory beside the target and
//! renamed into place at the end, so a refused archive leaves nothing behind and the target
//! appears whole or not at all.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rel_format::archive::{ArchiveError, Limits, MemberKind, MemberSet, check_entry, decompress, path_key};

/// Files up to this size are read whole, then written in one call.
const SMALL: u64 = 1 << 20;

/// What an extraction wrote.
#[derive(Debug)]
pub struct ExtractReport {
    pub entries: u64,
    pub bytes: u64,
    /// Every member, in the order of the stream.
    pub members: MemberLog,
}

/// The members of a stream in its order, spooled to an unnamed temporary file as they are
/// met, one line each (`kind<TAB>path[<TAB>link target]`, kind `d`, `f`, `x` for an
/// executable, `l` or `h`): what it costs in memory does not grow with the member count or
/// the path lengths. It is the format of a root's `.rel/releases/<vsn>.members`.
#[derive(Debug)]
pub struct MemberLog {
    file: io::BufWriter<fs::File>,
}

impl MemberLog {
    /// A new, empty log in a temporary file of `dir`'s file system, gone when dropped.
    pub fn new_in(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            file: io::BufWriter::new(tempfile::tempfile_in(dir)?),
        })
    }

    pub fn push(&mut self, path: &str, kind: &MemberKind) -> io::Result<()> {
        match kind {
            MemberKind::Dir => writeln!(self.file, "d\t{path}"),
            MemberKind::File { executable: false } => writeln!(self.file, "f\t{path}"),
            MemberKind::File { executable: true } => writeln!(self.file, "x\t{path}"),
            MemberKind::Symlink { target } => writeln!(self.file, "l\t{path}\t{target}"),
            MemberKind::HardLink { target } => writeln!(self.file, "h\t{path}\t{target}"),
        }
    }

    /// Reads one line of a log back.
    pub fn parse_line(line: &str) -> Option<(String, MemberKind)> {
        let mut parts = line.splitn(3, '\t');
        let (kind, path, target) = (parts.next()?, parts.next()?, parts.next());
        let kind = match (kind, target) {
            ("d", _) => MemberKind::Dir,
            ("f", _) => MemberKind::File { executable: false },
            ("x", _) => MemberKind::File { executable: true },
            ("l", Some(t)) => MemberKind::Symlink { target: t.to_owned() },
            ("h", Some(t)) => MemberKind::HardLink { target: t.to_owned() },
            _ => return None,
        };
        Some((path.to_owned(), kind))
    }

    /// The log's lines, from the start.
    pub fn into_reader(self) -> io::Result<fs::File> {
        use std::io::Seek as _;
        let mut file = self.file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.rewind()?;
        Ok(file)
    }
}

/// Why an archive was not extracted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    #[error("`{0}` already exists; extraction only creates a new directory")]
    TargetExists(PathBuf),
    #[error("refused to extract into `{target}`")]
    Refused {
        target: PathBuf,
        #[source]
        source: ArchiveError,
    },
    #[error("the archive for `{0}` did not verify; nothing was written")]
    Unverified(PathBuf),
    #[error("cannot write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Extracts a tar stream (plain, gzip or zstd) into the new directory `target`.
pub fn extract<R: Read>(input: R, target: &Path, limits: Limits) -> Result<ExtractReport, ExtractError> {
    extract_confirmed(input, target, limits, || true)
}

/// Like [`extract`], for a stream verified while it is read: once the archive is read,
/// `confirm()` says whether the stream verified, and only then is the result renamed into
/// place.
pub fn extract_confirmed<R: Read>(
    input: R,
    target: &Path,
    limits: Limits,
    confirm: impl FnOnce() -> bool,
) -> Result<ExtractReport, ExtractError> {
    if fs::symlink_metadata(target).is_ok() {
        return Err(ExtractError::TargetExists(target.to_owned()));
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ExtractError::Io { path, source }
    };
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    // What an interrupted extraction to the same target left.
    super::temp::sweep(parent, Some(&name));
    let tmp = tempfile::Builder::new()
        .prefix(&super::temp::prefix(&name))
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    let refused = |source| ExtractError::Refused {
        target: target.to_owned(),
        source,
    };

    let mut archive = tar::Archive::new(decompress(input).map_err(refused)?);
    let mut members = MemberSet::default();
    // Directories made or checked so far: only this extraction writes in its fresh temporary
    // directory, so they stay directories. Kept by path key: 32 bytes each, whatever the path.
    let mut dirs = HashSet::new();
    let mut buf = Vec::new();
    let mut order = MemberLog::new_in(parent).map_err(io_err(parent))?;
    for entry in archive.entries().map_err(|e| refused(ArchiveError::Read(e)))? {
        let mut entry = entry.map_err(|e| refused(ArchiveError::Read(e)))?;
        let Some(member) = check_entry(&entry, &limits).map_err(refused)? else {
            continue;
        };
        let Some(path) = member.path else { continue };
        members
            .admit(&path, &member.kind, member.size, &limits)
            .map_err(refused)?;
        order.push(&path, &member.kind).map_err(io_err(parent))?;
        let dest = tmp.path().join(&path);
        ensure_parents(tmp.path(), &path, &mut dirs).map_err(|e| match e {
            Parent::Through(through) => refused(ArchiveError::ThroughNonDir {
                path: path.clone(),
                through,
            }),
            Parent::Io(p, source) => ExtractError::Io { path: p, source },
        })?;
        match &member.kind {
            MemberKind::Dir => {
                if !dirs.contains(&path_key(&path)) {
                    match fs::symlink_metadata(&dest) {
                        Ok(m) if m.is_dir() => {}
                        Ok(_) => return Err(refused(ArchiveError::Duplicate(path))),
                        Err(_) => fs::create_dir(&dest).map_err(io_err(&dest))?,
                    }
                    dirs.insert(path_key(&path));
                }
            }
            MemberKind::File { executable } => {
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&dest)
                    .map_err(io_err(&dest))?;
                // Small files (most of a release) in one read and one write.
                let written = if member.size <= SMALL {
                    buf.clear();
                    (&mut entry)
                        .take(member.size)
                        .read_to_end(&mut buf)
                        .map_err(io_err(&dest))?;
                    file.write_all(&buf).map_err(io_err(&dest))?;
                    buf.len() as u64
                } else {
                    io::copy(&mut (&mut entry).take(member.size), &mut file).map_err(io_err(&dest))?
                };
                if written != member.size {
                    return Err(refused(ArchiveError::SizeMismatch {
                        path,
                        expected: member.size,
                        actual: written,
                    }));
                }
                let mode = if *executable { 0o755 } else { 0o644 };
                fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).map_err(io_err(&dest))?;
            }
            MemberKind::Symlink { target: link } => {
                std::os::unix::fs::symlink(link, &dest).map_err(io_err(&dest))?;
            }
            MemberKind::HardLink { target: original } => {
                fs::hard_link(tmp.path().join(original), &dest).map_err(io_err(&dest))?;
            }
        }
    }
    let report = ExtractReport {
        entries: members.entries(),
        bytes: members.bytes(),
        members: order,
    };
    // Close the input before waiting: a writer still sending gets an error, not a hang.
    drop(archive);
    if !confirm() {
        return Err(ExtractError::Unverified(target.to_owned()));
    }
    let kept = tmp.keep();
    fs::rename(&kept, target).map_err(|source| {
        let _ = fs::remove_dir_all(&kept);
        ExtractError::Io {
            path: target.to_owned(),
            source,
        }
    })?;
    Ok(report)
}

enum Parent {
    Through(String),
    Io(PathBuf, io::Error),
}

/// Creates the parents of `path` under `root`, refusing to pass through anything that is not
/// a real directory (a symlink made by an earlier member, or a file). `dirs` holds the
/// directories already made or checked, which need no second look.
fn ensure_parents(root: &Path, path: &str, dirs: &mut HashSet<[u8; 32]>) -> Result<(), Parent> {
    let Some((parent, _)) = path.rsplit_once('/') else {
        return Ok(());
    };
    if dirs.contains(&path_key(parent)) {
        return Ok(());
    }
    let mut current = root.to_path_buf();
    let mut shown = String::new();
    for part in parent.split('/') {
        current.push(part);
        if !shown.is_empty() {
            shown.push('/');
        }
        shown.push_str(part);
        let key = path_key(&shown);
        if dirs.contains(&key) {
            continue;
        }
        match fs::symlink_metadata(&current) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(Parent::Through(shown)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&current).map_err(|e| Parent::Io(current.clone(), e))?;
            }
            Err(e) => return Err(Parent::Io(current.clone(), e)),
        }
        dirs.insert(key);
    }
    Ok(())
}
