//! The installed release as content: when the cache no longer holds the chunks of the
//! release a root runs (cleared, evicted, another user's cache), they are recovered from the
//! root itself before anything is fetched. The files of that version are laid out again as
//! the release had them (the host's config files replaced by the release's own `.shipped`
//! copies), archived canonically as a push would, and cut into chunks; each chunk the
//! release's manifest lists is kept in the cache. Chunks are content-addressed, so a chunk
//! kept is exactly the signed release's; one the root no longer reproduces (a file the host
//! or `release_handler` rewrote) is simply fetched.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use rel_format::Manifest;
use rel_format::chunk::{ChunkRef, ChunkedStream, Chunker, compress_chunk};

use crate::cache::PackCache;
use crate::fs::MemberLog;
use rel_format::archive::{CanonicalTar, MemberKind};

/// Keeps the order of a release's members as its stream had them, beside its manifest
/// (`ROOT/.rel/releases/<vsn>.members`, in the format of [`MemberLog`]): with it the root
/// gives back the very stream.
pub fn keep_members(root: &Path, vsn: &str, members: MemberLog) -> Result<()> {
    let dir = root.join(".rel/releases");
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    std::io::copy(&mut members.into_reader()?, &mut tmp)?;
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    tmp.persist(dir.join(format!("{vsn}.members"))).map_err(|e| e.error)?;
    Ok(())
}

fn kept_members(root: &Path, vsn: &str) -> Option<Vec<(String, MemberKind)>> {
    let text = std::fs::read_to_string(root.join(format!(".rel/releases/{vsn}.members"))).ok()?;
    text.lines().map(MemberLog::parse_line).collect()
}

/// Copies `from` into `to` (files and folders; links are not followed), the release's own
/// `<file>.shipped` standing in for `<file>`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let ty = e.file_type()?;
        if ty.is_dir() {
            copy_tree(&e.path(), &to.join(&name))?;
        } else if ty.is_file() {
            match name.strip_suffix(".shipped") {
                Some(original) => std::fs::copy(e.path(), to.join(original))?,
                None if from.join(format!("{name}.shipped")).exists() => continue,
                None => std::fs::copy(e.path(), to.join(&name))?,
            };
        }
    }
    Ok(())
}

/// [`recover_chunks`] for each of `versions` whose manifest `root` keeps; a failure is a
/// warning (the chunks are then fetched).
pub fn recover_installed(root: &Path, name: &str, versions: &[&rel_format::Version], cache_dir: &Path) {
    for v in versions {
        let Some(manifest) = super::kept_manifest(root, v.as_str()) else {
            continue;
        };
        match recover_chunks(root, name, &manifest, cache_dir) {
            Ok(0) => {}
            Ok(bytes) => tracing::info!(version = %v, bytes, "recovered chunks from the installed release"),
            Err(e) => crate::warn(&format!("cannot read {name} {v} back from `{}`: {e:#}", root.display())),
        }
    }
}

/// Puts in the cache at `cache_dir` every chunk of `manifest` (a release `root` has
/// installed) that the root still reproduces and the cache lacks. Returns the bytes kept.
pub fn recover_chunks(root: &Path, name: &str, manifest: &Manifest, cache_dir: &Path) -> Result<u64> {
    let cache = PackCache::open(cache_dir)?;
    let cached = cache.index();
    let wanted: HashSet<_> = manifest
        .tar
        .chunks
        .iter()
        .map(|c| c.digest)
        .filter(|d| !cached.contains_key(d))
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let vsn = manifest.version.as_str();
    let spec = super::release_spec(root, name, vsn)?;
    let tmp = tempfile::tempdir()?;
    let layout = tmp.path();
    copy_tree(
        &root.join(format!("releases/{vsn}")),
        &layout.join(format!("releases/{vsn}")),
    )?;
    for file in [format!("releases/{name}.rel"), "releases/start_erl.data".to_owned()] {
        if root.join(&file).is_file() {
            std::fs::copy(root.join(&file), layout.join(&file))?;
        }
    }
    for app in &spec.apps {
        let dir = format!("lib/{}-{}", app.name, app.version);
        if root.join(&dir).is_dir() {
            copy_tree(&root.join(&dir), &layout.join(&dir))?;
        }
    }
    let erts = format!("erts-{}", spec.erts);
    if std::fs::symlink_metadata(root.join(&erts)).is_ok_and(|m| m.is_dir()) {
        copy_tree(&root.join(&erts), &layout.join(&erts))?;
    }
    if root.join("bin").is_dir() {
        copy_tree(&root.join("bin"), &layout.join("bin"))?;
    }
    // The recovered chunks go to a pack of their own, named after what they recover.
    let seed = ChunkedStream {
        digest: rel_format::Digest::of(
            format!("recovered {} from {}", manifest.tar.digest.hex(), root.display()).as_bytes(),
        ),
        ..manifest.tar.clone()
    };
    let mut writer = cache.begin(&seed)?;
    let mut kept = 0u64;
    let sink = |chunk: &ChunkRef, data: &[u8]| -> std::io::Result<()> {
        if wanted.contains(&chunk.digest) {
            writer.add(chunk, &compress_chunk(data)?)?;
            kept += chunk.length;
        }
        Ok(())
    };
    let chunker = Chunker::new(sink);
    let chunker = match kept_members(root, vsn) {
        // The stream as it was: the same members, in the same order.
        Some(members) => {
            let mut tar = CanonicalTar::new(chunker, rel_format::archive::Limits::default());
            for (path, kind) in &members {
                match kind {
                    MemberKind::File { .. } => {
                        let Ok(f) = std::fs::File::open(layout.join(path)) else {
                            continue;
                        };
                        let size = f.metadata()?.len();
                        tar.append(path.as_bytes(), kind, size, &mut std::io::BufReader::new(f))?;
                    }
                    _ => tar.append(path.as_bytes(), kind, 0, &mut std::io::empty())?,
                }
            }
            tar.finish()?.0
        }
        // Not kept: the installed files in folder order, which is the stream's where the
        // release was pushed from a folder.
        None => {
            crate::fs::archive_folder(
                layout,
                chunker,
                rel_format::archive::Limits::default(),
                &Default::default(),
            )
            .context("cannot read the installed release back")?
            .0
        }
    };
    // The sink, which borrows the cache writer, ends with this statement.
    let _ = chunker
        .finish()
        .context("cannot cut the installed release into chunks")?;
    writer.commit()?;
    Ok(kept)
}
