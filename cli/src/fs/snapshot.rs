//! Release folders read for appup generation: only `releases/` (with consolidated
//! protocols), `lib/*/ebin/` and `lib/*/priv/rel/` (shipped `.extra` files), with the BEAM
//! files parsed on every core. Releases of one name share most of their modules byte for
//! byte, so folders read together parse each shared module once: an upgrade's two releases
//! cost little more than one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rel_format::beam::Beam;
use rel_format::snapshot::{
    BeamPlace, MAX_SMALL_FILE, ModuleSummary, ReleaseSnapshot, SnapshotBuilder, snapshot_wants,
};

fn files(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let relative = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let ty = e.file_type()?;
        if ty.is_dir() {
            files(&path, &relative, out)?;
        } else if ty.is_file() && snapshot_wants(&relative) {
            out.push((relative, path));
        }
    }
    Ok(())
}

/// The files of the release in `root` a snapshot reads: (path in the release, path on disk).
fn listing(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    files(&root.join("releases"), "releases", &mut found)?;
    for lib in std::fs::read_dir(root.join("lib")).with_context(|| format!("`{}` has no lib/", root.display()))? {
        let lib = lib?;
        for sub in ["ebin", "priv/rel"] {
            let dir = lib.path().join(sub);
            if dir.is_dir() {
                files(
                    &dir,
                    &format!("lib/{}/{sub}", lib.file_name().to_string_lossy()),
                    &mut found,
                )?;
            }
        }
    }
    Ok(found)
}

/// The bytes of a file a snapshot reads; `None` for one over [`MAX_SMALL_FILE`], which a
/// snapshot leaves out (as it does reading a tar). Its size is read from the open file, not
/// by a `stat` of every path while listing.
fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let read = || -> std::io::Result<Option<Vec<u8>>> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len > MAX_SMALL_FILE {
            return Ok(None);
        }
        // Exactly its length: read_to_end would spend a second read on finding the end.
        let mut bytes = vec![0; len as usize];
        file.read_exact(&mut bytes)?;
        Ok(Some(bytes))
    };
    read().with_context(|| format!("cannot read `{}`", path.display()))
}

/// Where a module's file sits in any release of its name: its application (without the
/// version) and file name, or its consolidated protocol's file name.
fn beam_key(rel: &str) -> String {
    match rel.split('/').collect::<Vec<_>>().as_slice() {
        ["lib", dir, "ebin", file] => format!("{}/{file}", dir.split_once('-').map_or(*dir, |(app, _)| app)),
        ["releases", _, "consolidated", file] => format!("consolidated/{file}"),
        _ => rel.to_owned(),
    }
}

/// One BEAM file of one of the releases.
struct BeamFile {
    release: usize,
    rel: String,
    path: PathBuf,
}

/// Reads and parses one group of copies of a module (one per release that has it): copies
/// with the same bytes are parsed once.
fn parse_group(group: &[BeamFile]) -> Result<Vec<(usize, BeamPlace, ModuleSummary)>> {
    let mut parsed: Vec<(Vec<u8>, ModuleSummary)> = Vec::new();
    let mut out = Vec::with_capacity(group.len());
    for f in group {
        let Some(bytes) = read_small(&f.path)? else { continue };
        let module = match parsed.iter().find(|(b, _)| *b == bytes) {
            Some((_, module)) => module.clone(),
            None if group.len() == 1 => ModuleSummary::of(&Beam::parse(&f.rel, bytes)?)?,
            None => {
                let module = ModuleSummary::of(&Beam::parse(&f.rel, bytes.clone())?)?;
                parsed.push((bytes, module.clone()));
                module
            }
        };
        let place = BeamPlace::of(&f.rel).expect("only BEAM files of a lib or consolidated");
        out.push((f.release, place, module));
    }
    Ok(out)
}

/// The snapshots of the releases in folders `roots`, in order.
pub fn snapshot_dirs(roots: &[&Path]) -> Result<Vec<ReleaseSnapshot>> {
    let mut builders: Vec<SnapshotBuilder> = roots.iter().map(|_| SnapshotBuilder::default()).collect();
    let mut others = Vec::new();
    let mut groups: BTreeMap<String, Vec<BeamFile>> = BTreeMap::new();
    let listed: Vec<Result<Vec<(String, PathBuf)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = roots.iter().map(|root| scope.spawn(move || listing(root))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("listing threads do not panic"))
            .collect()
    });
    for (release, found) in listed.into_iter().enumerate() {
        for (rel, path) in found? {
            if rel.ends_with(".beam") {
                groups
                    .entry(beam_key(&rel))
                    .or_default()
                    .push(BeamFile { release, rel, path });
            } else {
                others.push((release, rel, path));
            }
        }
    }
    let groups: Vec<Vec<BeamFile>> = groups.into_values().collect();
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let per = groups.len().div_ceil(threads).max(1);
    let parsed: Vec<Result<Vec<_>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .chunks(per)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<_>> {
                    let mut out = Vec::new();
                    for group in part {
                        out.extend(parse_group(group)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parsing threads do not panic"))
            .collect()
    });
    for part in parsed {
        for (release, place, module) in part? {
            builders[release].add_beam(place, module);
        }
    }
    for (release, rel, path) in others {
        if let Some(bytes) = read_small(&path)? {
            builders[release].add(&rel, bytes)?;
        }
    }
    builders
        .into_iter()
        .zip(roots)
        .map(|(b, root)| {
            b.finish(None)
                .with_context(|| format!("cannot read the release in `{}`", root.display()))
        })
        .collect()
}
