//! A release folder read for appup generation: only `releases/` (with consolidated
//! protocols), `lib/*/ebin/` and `lib/*/priv/rel/` (shipped `.extra` files), with the BEAM
//! files parsed on every core.

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
        } else if ty.is_file() && snapshot_wants(&relative) && e.metadata()?.len() <= MAX_SMALL_FILE {
            out.push((relative, path));
        }
    }
    Ok(())
}

/// The snapshot of the release in folder `root`.
pub fn snapshot_dir(root: &Path, want: Option<&str>) -> Result<ReleaseSnapshot> {
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
    let (beams, others): (Vec<_>, Vec<_>) = found.into_iter().partition(|(rel, _)| rel.ends_with(".beam"));
    let threads = std::thread::available_parallelism().map_or(2, usize::from);
    let per = beams.len().div_ceil(threads).max(1);
    let parsed: Vec<Result<Vec<(BeamPlace, ModuleSummary)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = beams
            .chunks(per)
            .map(|part| {
                scope.spawn(move || -> Result<Vec<(BeamPlace, ModuleSummary)>> {
                    part.iter()
                        .map(|(rel, path)| {
                            let bytes =
                                std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
                            let beam = Beam::parse(rel, bytes)?;
                            let place = BeamPlace::of(rel).expect("only BEAM files of a lib or consolidated");
                            Ok((place, ModuleSummary::of(&beam)?))
                        })
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parsing threads do not panic"))
            .collect()
    });
    let mut builder = SnapshotBuilder::default();
    for part in parsed {
        for (place, module) in part? {
            builder.add_beam(place, module);
        }
    }
    for (rel, path) in others {
        builder.add(
            &rel,
            std::fs::read(&path).with_context(|| format!("cannot read `{}`", path.display()))?,
        )?;
    }
    Ok(builder.finish(want)?)
}
