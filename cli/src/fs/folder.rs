//! A release folder → the canonical tar stream.
//!
//! The walk is depth-first, each directory's entries in byte order of their names, a
//! directory before its contents; that order and the canonical headers make the stream a
//! function of the folder's paths, contents, executable bits and link targets only.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rel_format::archive::{ArchiveError, CanonicalTar, Ingested, Limits, MemberKind, Selection, check_symlink_target};

/// Why a folder could not be archived.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    #[error("cannot read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` cannot be archived")]
    Archive {
        path: PathBuf,
        #[source]
        source: ArchiveError,
    },
}

/// Archives `dir` (a release root: `lib/`, `releases/`, maybe `erts-*/`, `bin/`) into `out`,
/// with the members `selection` keeps.
pub fn archive_folder<W: Write>(
    dir: &Path,
    out: W,
    limits: Limits,
    selection: &Selection,
) -> Result<(W, Ingested), FolderError> {
    archive_folder_with(dir, out, limits, &|path| selection.keeps(path))
}

/// Archives the members of `dir` that `keep` keeps (given their path in the release; a
/// directory it does not keep is not walked).
pub fn archive_folder_with<W: Write>(
    dir: &Path,
    out: W,
    limits: Limits,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(W, Ingested), FolderError> {
    let mut tar = CanonicalTar::new(out, limits);
    walk(dir, dir, &mut tar, &mut Vec::new(), keep)?;
    tar.finish().map_err(|source| FolderError::Archive {
        path: dir.to_owned(),
        source,
    })
}

/// Files up to this size are read whole into `buf` (one or two reads, where the tar writer's
/// own copy would make one read per 8 KiB); larger ones through a 1 MiB buffer.
const WHOLE: u64 = 1 << 20;

fn walk<W: Write>(
    root: &Path,
    dir: &Path,
    tar: &mut CanonicalTar<W>,
    buf: &mut Vec<u8>,
    keep: &dyn Fn(&str) -> bool,
) -> Result<(), FolderError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| FolderError::Io { path, source }
    };
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(root).expect("walk stays under its root");
        let rel_bytes = rel.as_os_str().as_bytes();
        if !keep(&rel.to_string_lossy()) {
            continue;
        }
        let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
        let ty = meta.file_type();
        let archive = |source| FolderError::Archive {
            path: path.clone(),
            source,
        };
        let shown = || rel.to_string_lossy().into_owned();
        if meta.permissions().mode() & 0o6000 != 0 && !ty.is_symlink() {
            return Err(archive(ArchiveError::SetId {
                path: shown(),
                mode: meta.permissions().mode() & 0o7777,
            }));
        }
        if ty.is_dir() {
            tar.append(rel_bytes, &MemberKind::Dir, 0, &mut std::io::empty())
                .map_err(archive)?;
            walk(root, &path, tar, buf, keep)?;
        } else if ty.is_file() {
            let executable = meta.permissions().mode() & 0o111 != 0;
            let file = fs::File::open(&path).map_err(io(&path))?;
            let kind = MemberKind::File { executable };
            if meta.len() <= WHOLE {
                buf.clear();
                buf.reserve(meta.len() as usize);
                // No more than its stated size, so the end is known without another read;
                // a file that shrank since is refused by `append`.
                file.take(meta.len()).read_to_end(buf).map_err(io(&path))?;
                tar.append(rel_bytes, &kind, meta.len(), &mut buf.as_slice())
            } else {
                let mut reader = std::io::BufReader::with_capacity(WHOLE as usize, file);
                tar.append(rel_bytes, &kind, meta.len(), &mut reader)
            }
            .map_err(archive)?;
        } else if ty.is_symlink() {
            let target = fs::read_link(&path).map_err(io(&path))?;
            let target = check_symlink_target(&shown(), target.as_os_str().as_bytes()).map_err(archive)?;
            tar.append(rel_bytes, &MemberKind::Symlink { target }, 0, &mut std::io::empty())
                .map_err(archive)?;
        } else {
            let kind = if ty.is_fifo() {
                "fifo"
            } else if ty.is_socket() {
                "socket"
            } else if ty.is_char_device() {
                "character device"
            } else {
                "block device"
            };
            return Err(archive(ArchiveError::SpecialFile {
                path: shown(),
                kind: kind.into(),
            }));
        }
    }
    Ok(())
}
