//! The canonical tar writer and the ingest of release tarballs into it.

use std::collections::BTreeSet;
use std::io::{self, BufRead, BufReader, Read, Write};

use serde::Serialize;

use super::{ArchiveError, Limits, MemberKind, MemberSet, Selection, check_member_path, member_kind};
use crate::release::{ReleaseError, ReleaseSpec};

/// `.rel` files larger than this are not release files; they are not kept for parsing.
const MAX_REL_FILE: u64 = 1 << 20;
/// Most `.rel` candidates kept, and their bytes together.
const MAX_REL_FILES: usize = 1024;
const MAX_REL_BYTES: usize = 32 << 20;
/// Most distinct `lib/<dir>` and `erts-<vsn>` directories an archive may hold (a release has a
/// few dozen; a folder of several versions a few hundred).
const MAX_TOP_DIRS: usize = 4096;
/// Bytes of each file kept to recognise native code; an ELF interpreter path sits in the
/// first page.
const HEAD_LEN: usize = 4096;

/// Native code found in a release (ERTS binaries or NIFs): it ties the release to a platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NativeCode {
    pub os: String,
    pub arch: String,
    /// `gnu` or `musl` when an ELF interpreter names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libc: Option<String>,
    /// The first member that revealed it.
    pub example: String,
}

/// What the canonical writer saw while writing a release.
#[derive(Debug, Clone, Default)]
pub struct Ingested {
    /// Candidate `.rel` files: `releases/<name>.rel` and `releases/<dir>/<name>.rel`.
    pub rel_files: Vec<(String, Vec<u8>)>,
    /// `lib/<app>-<vsn>` directory names.
    pub lib_dirs: BTreeSet<String>,
    /// ERTS versions shipped (`erts-<vsn>/`).
    pub erts_dirs: BTreeSet<String>,
    pub native: Option<NativeCode>,
    pub entries: u64,
    pub content_bytes: u64,
}

impl Ingested {
    /// The release the archive holds, from its `.rel` file.
    ///
    /// `releases/<name>.rel` wins when there is exactly one; otherwise the one
    /// `releases/<vsn>/<name>.rel` whose directory is its version. With `want` (a version the
    /// caller asked for), that version's `.rel` is chosen among several.
    pub fn release(&self, want: Option<&str>) -> Result<ReleaseSpec, IngestError> {
        let mut top = Vec::new();
        let mut nested = Vec::new();
        for (path, bytes) in &self.rel_files {
            let text = std::str::from_utf8(bytes).map_err(|_| IngestError::NotUtf8(path.clone()))?;
            let spec = ReleaseSpec::parse(path, text)?;
            let parts: Vec<&str> = path.split('/').collect();
            match parts.as_slice() {
                ["releases", _] => top.push(spec),
                ["releases", dir, _] if *dir == spec.version.as_str() => nested.push(spec),
                _ => {}
            }
        }
        let pick = |list: Vec<ReleaseSpec>| -> Result<Option<ReleaseSpec>, IngestError> {
            let mut list: Vec<ReleaseSpec> = match want {
                Some(v) => list.into_iter().filter(|s| s.version.as_str() == v).collect(),
                None => list,
            };
            list.dedup_by(|a, b| a.name == b.name && a.version == b.version);
            match list.len() {
                0 => Ok(None),
                1 => Ok(list.pop()),
                _ => Err(IngestError::Ambiguous(
                    list.iter()
                        .map(|s| format!("{} {}", s.name, s.version))
                        .collect::<Vec<_>>()
                        .join(", "),
                )),
            }
        };
        if let Some(spec) = pick(top)? {
            return Ok(spec);
        }
        pick(nested)?.ok_or(IngestError::NoRelFile)
    }
}

/// Why a release input could not be turned into a canonical release.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error("no `releases/<name>.rel` or `releases/<vsn>/<name>.rel` in the archive; is it an OTP release?")]
    NoRelFile,
    #[error("the archive holds several releases ({0}); say which version to use")]
    Ambiguous(String),
    #[error("`{0}` is not UTF-8")]
    NotUtf8(String),
    #[error(transparent)]
    Release(#[from] ReleaseError),
}

/// Writes the canonical tar stream, applying the member rules and observing what it writes.
pub struct CanonicalTar<W: Write> {
    builder: tar::Builder<W>,
    members: MemberSet,
    limits: Limits,
    seen: Ingested,
}

impl<W: Write> CanonicalTar<W> {
    pub fn new(out: W, limits: Limits) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        Self {
            builder,
            members: MemberSet::default(),
            limits,
            seen: Ingested::default(),
        }
    }

    /// Appends one member. `raw_path` is checked and normalised here; for files, exactly
    /// `size` bytes are read from `data`.
    pub fn append(
        &mut self,
        raw_path: &[u8],
        kind: &MemberKind,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<(), ArchiveError> {
        let Some(path) = check_member_path(raw_path, &self.limits)? else {
            return Ok(());
        };
        let size = if matches!(kind, MemberKind::File { .. }) {
            size
        } else {
            0
        };
        self.members.admit(&path, kind, size, &self.limits)?;
        self.observe_path(&path, kind)?;

        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_size(0);
        let w = ArchiveError::Write;
        match kind {
            MemberKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                self.builder
                    .append_data(&mut header, format!("{path}/"), io::empty())
                    .map_err(w)?;
            }
            MemberKind::File { executable } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *executable { 0o755 } else { 0o644 });
                header.set_size(size);
                let keep_all = is_rel_candidate(&path) && size <= MAX_REL_FILE;
                let mut reader = Observing {
                    inner: data.take(size),
                    read: 0,
                    head: Vec::new(),
                    keep_all,
                };
                self.builder.append_data(&mut header, &path, &mut reader).map_err(|e| {
                    if e.kind() == io::ErrorKind::InvalidInput {
                        ArchiveError::Read(e)
                    } else {
                        ArchiveError::Write(e)
                    }
                })?;
                if reader.read != size {
                    return Err(ArchiveError::SizeMismatch {
                        path,
                        expected: size,
                        actual: reader.read,
                    });
                }
                if keep_all {
                    let kept: usize = self.seen.rel_files.iter().map(|(_, b)| b.len()).sum();
                    if self.seen.rel_files.len() >= MAX_REL_FILES || kept + reader.head.len() > MAX_REL_BYTES {
                        return Err(ArchiveError::TooMany {
                            what: "`.rel` files (or 32 MiB of them)",
                            max: MAX_REL_FILES,
                            path,
                        });
                    }
                    self.seen.rel_files.push((path.clone(), reader.head));
                } else if self.seen.native.as_ref().is_none_or(|n| n.libc.is_none()) {
                    // Prefer an executable that names its libc over a NIF that does not.
                    if let Some(found) = native_code(&path, &reader.head)
                        && (self.seen.native.is_none() || found.libc.is_some())
                    {
                        self.seen.native = Some(found);
                    }
                }
            }
            MemberKind::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                self.builder.append_link(&mut header, &path, target).map_err(w)?;
            }
            MemberKind::HardLink { target } => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                self.builder.append_link(&mut header, &path, target).map_err(w)?;
            }
        }
        Ok(())
    }

    fn observe_path(&mut self, path: &str, kind: &MemberKind) -> Result<(), ArchiveError> {
        let parts: Vec<&str> = path.splitn(3, '/').collect();
        let (set, name, what) = match parts.as_slice() {
            ["lib", dir, _] => (&mut self.seen.lib_dirs, *dir, "directories under `lib/`"),
            ["lib", dir] if *kind == MemberKind::Dir => (&mut self.seen.lib_dirs, *dir, "directories under `lib/`"),
            [top, ..] => match top.strip_prefix("erts-").filter(|v| !v.is_empty()) {
                Some(vsn) => (&mut self.seen.erts_dirs, vsn, "`erts-*` directories"),
                None => return Ok(()),
            },
            [] => return Ok(()),
        };
        if !set.contains(name) {
            if set.len() >= MAX_TOP_DIRS {
                return Err(ArchiveError::TooMany {
                    what,
                    max: MAX_TOP_DIRS,
                    path: path.to_owned(),
                });
            }
            set.insert(name.to_owned());
        }
        Ok(())
    }

    /// Ends the stream and returns the writer and what was seen.
    pub fn finish(mut self) -> Result<(W, Ingested), ArchiveError> {
        self.builder.finish().map_err(ArchiveError::Write)?;
        let out = self.builder.into_inner().map_err(ArchiveError::Write)?;
        self.seen.entries = self.members.entries();
        self.seen.content_bytes = self.members.bytes();
        Ok((out, self.seen))
    }
}

impl<W: Write> std::fmt::Debug for CanonicalTar<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanonicalTar")
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

fn is_rel_candidate(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), ["releases", f] | ["releases", _, f] if f.ends_with(".rel"))
}

/// A reader that counts, and keeps the head of the data (or all of it).
struct Observing<R> {
    inner: R,
    read: u64,
    head: Vec<u8>,
    keep_all: bool,
}

impl<R: Read> Read for Observing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let keep = if self.keep_all {
            n
        } else {
            n.min(HEAD_LEN.saturating_sub(self.head.len()))
        };
        self.head.extend_from_slice(&buf[..keep]);
        Ok(n)
    }
}

/// Recognises ELF and Mach-O binaries by their headers.
fn native_code(path: &str, head: &[u8]) -> Option<NativeCode> {
    let arch_of = |machine: u32, elf: bool| -> String {
        let name = match (elf, machine) {
            (true, 0x3E) | (false, 0x0100_0007) => "x86_64",
            (true, 0xB7) | (false, 0x0100_000C) => "aarch64",
            (true, 0x28) => "arm",
            (true, 0x03) => "x86",
            (true, 0xF3) => "riscv",
            (true, 0x15) => "powerpc64",
            (true, 0x16) => "s390x",
            _ => return format!("machine-{machine:#x}"),
        };
        name.to_owned()
    };
    if head.len() >= 20 && head.starts_with(b"\x7fELF") {
        let machine = if head[5] == 2 {
            u16::from_be_bytes([head[18], head[19]])
        } else {
            u16::from_le_bytes([head[18], head[19]])
        };
        let libc = libc_of(head).map(str::to_owned);
        return Some(NativeCode {
            os: "linux".into(),
            arch: arch_of(u32::from(machine), true),
            libc,
            example: path.to_owned(),
        });
    }
    if head.len() >= 8 && head[..4] == [0xcf, 0xfa, 0xed, 0xfe] {
        let cpu = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        return Some(NativeCode {
            os: "macos".into(),
            arch: arch_of(cpu, false),
            libc: None,
            example: path.to_owned(),
        });
    }
    None
}

/// The libc an ELF executable was linked against, from its interpreter path.
fn libc_of(elf_prefix: &[u8]) -> Option<&'static str> {
    let find = |needle: &[u8]| elf_prefix.windows(needle.len()).any(|w| w == needle);
    if find(b"ld-musl") {
        Some("musl")
    } else if find(b"ld-linux") {
        Some("gnu")
    } else {
        None
    }
}

/// Opens a tar stream that may be gzip- or zstd-compressed, recognised by content (not by
/// file name).
pub fn decompress<'a, R: Read + 'a>(input: R) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    let mut input = BufReader::with_capacity(1 << 16, input);
    let magic = input.fill_buf().map_err(ArchiveError::Read)?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd_reader(input)?
    } else if magic.starts_with(b"BZh") {
        return Err(ArchiveError::Unsupported("bzip2"));
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        return Err(ArchiveError::Unsupported("xz"));
    } else {
        Box::new(input)
    })
}

/// One member of an input tar, checked by the shared rules.
#[derive(Debug)]
pub struct CheckedMember {
    /// The normalised path; `None` for the archive root (`./`).
    pub path: Option<String>,
    pub raw_path: Vec<u8>,
    pub kind: MemberKind,
    pub size: u64,
}

/// Checks a tar entry's path, type, mode and link target. `None` for entries that carry no
/// member (pax global headers).
pub fn check_entry<R: Read>(entry: &tar::Entry<'_, R>, limits: &Limits) -> Result<Option<CheckedMember>, ArchiveError> {
    let raw_path = entry.path_bytes().into_owned();
    let header = entry.header();
    let entry_type = header.entry_type();
    if matches!(entry_type, tar::EntryType::XGlobalHeader) {
        return Ok(None);
    }
    let path = check_member_path(&raw_path, limits)?;
    let shown = path
        .clone()
        .unwrap_or_else(|| String::from_utf8_lossy(&raw_path).into_owned());
    let mode = header.mode().map_err(ArchiveError::Read)?;
    let link = entry.link_name_bytes();
    let kind = member_kind(&shown, entry_type, mode, link.as_deref(), limits)?;
    Ok(Some(CheckedMember {
        path,
        raw_path,
        kind,
        size: entry.size(),
    }))
}

/// Reads a release tarball (`.tar`, `.tar.gz`, `.tar.zst`) and writes its canonical form to
/// `out`.
pub fn canonicalize<R: Read, W: Write>(
    input: R,
    out: W,
    limits: Limits,
    selection: &Selection,
) -> Result<(W, Ingested), ArchiveError> {
    let mut archive = tar::Archive::new(decompress(input)?);
    let mut writer = CanonicalTar::new(out, limits);
    for entry in archive.entries().map_err(ArchiveError::Read)? {
        let mut entry = entry.map_err(ArchiveError::Read)?;
        if let Some(member) = check_entry(&entry, &limits)?
            && member.path.as_deref().is_none_or(|p| selection.keeps(p))
        {
            writer.append(&member.raw_path, &member.kind, member.size, &mut entry)?;
        }
    }
    writer.finish()
}

#[cfg(feature = "zstd")]
fn zstd_reader<'a, R: BufRead + 'a>(input: R) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    Ok(Box::new(
        zstd::stream::read::Decoder::with_buffer(input).map_err(ArchiveError::Read)?,
    ))
}

#[cfg(not(feature = "zstd"))]
fn zstd_reader<'a, R: BufRead + 'a>(_input: R) -> Result<Box<dyn Read + 'a>, ArchiveError> {
    Err(ArchiveError::Unsupported("zstd"))
}
