//! Making upgrades: appups and a relup computed from two (or more) releases, and the upgrade
//! artifact that carries them with only what changed (SPEC.md §8). The releases come from
//! tarballs, folders or the registry (verified); a user's appups and `.extra` additions are
//! read from a folder. A stored release's snapshot is kept in the cache beside its chunks
//! (SPEC.md §8.5): a host builds its next upgrade without reading either release again, and
//! cuts the members the upgrade carries out of the cached chunks.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rel_format::appup::{AppupPlan, Extra, plan_appups};
use rel_format::relup::{RelupError, make_relup};
use rel_format::snapshot::{MemberSpan, ParsedModules, ReleaseSnapshot};
use rel_format::term::{Term, parse_term};
use rel_format::{Manifest, TrustedKeys, Version};

use crate::UsageError;
use crate::fetch::{Fetcher, Target};
use crate::settings::Settings;
use crate::values::ReleaseRef;

/// What a release from the registry needs.
const NO_TRUSTED_KEYS: &str =
    "releases from the registry are verified: pass --trusted-key NAME.pub (or set REL_TRUSTED_KEYS)";

/// Whether any of `refs` names a release in the registry (which needs trusted keys).
pub fn any_stored<'a>(refs: impl IntoIterator<Item = &'a ReleaseRef>) -> bool {
    refs.into_iter().any(|r| matches!(r, ReleaseRef::Stored { .. }))
}

/// A release on disk as a tar file, wherever it came from.
#[derive(Debug)]
pub struct Materialised {
    pub path: PathBuf,
    /// What the user named it by, for messages: the file, the folder or `NAME@VERSION`.
    pub label: String,
    _tmp: Option<tempfile::TempDir>,
}

/// The release `reference` names, as a tar file: a tarball as it is, a folder archived, a
/// stored release fetched and verified. `name` is the release a bare version belongs to.
pub async fn materialise(
    fetcher: &Fetcher,
    trusted: Option<&TrustedKeys>,
    name: Option<&str>,
    reference: &ReleaseRef,
) -> Result<Materialised> {
    let tmp = tempfile::tempdir()?;
    let tar = tmp.path().join("release.tar");
    match reference {
        ReleaseRef::Path(path) if path.is_file() => Ok(Materialised {
            path: path.clone(),
            label: path.display().to_string(),
            _tmp: None,
        }),
        ReleaseRef::Path(dir) => {
            let file = std::io::BufWriter::new(std::fs::File::create(&tar)?);
            let (mut file, _) =
                crate::fs::archive_folder(dir, file, rel_format::archive::Limits::default(), &Default::default())?;
            std::io::Write::flush(&mut file)?;
            Ok(Materialised {
                path: tar,
                label: dir.display().to_string(),
                _tmp: Some(tmp),
            })
        }
        ReleaseRef::Stored { name: named, version } => {
            let (name, trusted) = stored_name(named.as_deref().or(name), version, trusted)?;
            let manifest = fetcher.release(trusted, name, version).await?.manifest;
            fetch_whole(fetcher, &manifest, stored_label(name, version)).await
        }
    }
}

/// The release name and trusted keys a stored release `version` is read with.
fn stored_name<'a>(
    name: Option<&'a str>,
    version: &Version,
    trusted: Option<&'a TrustedKeys>,
) -> Result<(&'a str, &'a TrustedKeys)> {
    let name = name.ok_or_else(|| UsageError::new(format!("say which release `{version}` is: NAME@{version}")))?;
    Ok((name, trusted.ok_or_else(|| UsageError::new(NO_TRUSTED_KEYS))?))
}

fn stored_label(name: &str, version: &Version) -> String {
    format!("{name}@{version} (from the registry)")
}

/// The verified artifact of `manifest` as a tar file in a temporary folder.
async fn fetch_whole(fetcher: &Fetcher, manifest: &Manifest, label: String) -> Result<Materialised> {
    let tmp = tempfile::tempdir()?;
    let tar = tmp.path().join("release.tar");
    fetcher.write(manifest, Target::File(&tar), "fetch").await?;
    Ok(Materialised {
        path: tar,
        label,
        _tmp: Some(tmp),
    })
}

/// A stored release as an upgrade is built from it: its verified manifest, and where each
/// member of its tar lies, to cut an upgrade's members out of the cached chunks.
#[derive(Debug)]
struct Stored {
    manifest: Manifest,
    spans: Vec<MemberSpan>,
    label: String,
}

/// The stored release `name` `version`: its manifest, verified, and the snapshot the cache
/// keeps beside its pack, if it does.
async fn open_stored(
    fetcher: &Fetcher,
    trusted: &TrustedKeys,
    name: &str,
    version: &Version,
) -> Result<(Stored, Option<ReleaseSnapshot>)> {
    let manifest = fetcher.release(trusted, name, version).await?.manifest;
    let (cache, tar) = (fetcher.cache()?, manifest.tar.digest);
    let kept = tokio::task::spawn_blocking(move || cache.snapshot(&tar)).await?;
    let (snapshot, spans) = kept.map_or((None, Vec::new()), |(s, spans)| (Some(s), spans));
    let label = stored_label(name, version);
    Ok((Stored { manifest, spans, label }, snapshot))
}

/// Reads the snapshot of a stored release the cache keeps none of, from the release
/// (fetched through the cache and verified), and keeps it there. The release is read as it
/// streams, on a core of its own; nothing of it is written but the cache's pack.
async fn read_stored(fetcher: &Fetcher, stored: &mut Stored, parsed: &mut ParsedModules) -> Result<ReleaseSnapshot> {
    let (mut reader, writer) = crate::fs::pipe();
    let mut known = std::mem::take(parsed);
    let reading = tokio::task::spawn_blocking(move || {
        let read = ReleaseSnapshot::from_tar_indexed(&mut reader, None, &mut known);
        // What follows the last member (the end-of-archive blocks) is read too, so that the
        // stream always ends.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
        (read, known)
    });
    let streamed = fetcher
        .stream(&stored.manifest, writer, "fetch")
        .await
        .and_then(|(mut w, _)| Ok(std::io::Write::flush(&mut w)?));
    let (read, known) = reading.await?;
    *parsed = known;
    // A stream that did not verify is the error, whatever the reading made of it.
    streamed?;
    let (snapshot, spans) = read.with_context(|| format!("cannot read the release `{}`", stored.label))?;
    let tar = stored.manifest.tar.digest;
    if let Err(e) = fetcher.cache()?.keep_snapshot(&tar, &snapshot, &spans) {
        tracing::warn!("cannot keep the snapshot of {} in the cache: {e}", stored.label);
    }
    stored.spans = spans;
    Ok(snapshot)
}

/// The snapshot of a release reference; a folder is read in place, on every core.
pub async fn snapshot(
    fetcher: &Fetcher,
    trusted: Option<&TrustedKeys>,
    name: Option<&str>,
    reference: &ReleaseRef,
) -> Result<ReleaseSnapshot> {
    Ok(
        snapshots(fetcher, trusted, name, &[reference], &mut ParsedModules::default())
            .await?
            .remove(0),
    )
}

/// The snapshots of `refs`, in order. Folders are read in place together, on every core,
/// each module they share byte for byte parsed once; a stored release's snapshot comes
/// from the cache when it keeps one; anything else is read from its tar, each module
/// `parsed` knows (from the other tars, and the kept snapshots) not parsed again.
pub async fn snapshots(
    fetcher: &Fetcher,
    trusted: Option<&TrustedKeys>,
    name: Option<&str>,
    refs: &[&ReleaseRef],
    parsed: &mut ParsedModules,
) -> Result<Vec<ReleaseSnapshot>> {
    let read = read_releases(fetcher, trusted, name, refs, parsed).await?;
    Ok(read.into_iter().map(|(snapshot, _)| snapshot).collect())
}

/// [`snapshots`], with what was learnt of each stored release.
async fn read_releases(
    fetcher: &Fetcher,
    trusted: Option<&TrustedKeys>,
    name: Option<&str>,
    refs: &[&ReleaseRef],
    parsed: &mut ParsedModules,
) -> Result<Vec<(ReleaseSnapshot, Option<Stored>)>> {
    let folder = |r: &ReleaseRef| match r {
        ReleaseRef::Path(dir) if dir.is_dir() => Some(dir.clone()),
        _ => None,
    };
    let dirs: Vec<PathBuf> = refs.iter().filter_map(|r| folder(r)).collect();
    let mut read = match dirs.is_empty() {
        true => Vec::new(),
        false => {
            tokio::task::spawn_blocking(move || {
                crate::fs::snapshot_dirs(&dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>())
            })
            .await??
        }
    }
    .into_iter();
    // Stored releases are opened together: their manifests fetched and verified, the
    // snapshots the cache keeps of them read, each on a core of its own.
    let opened = futures::future::try_join_all(refs.iter().map(|r| async move {
        match r {
            ReleaseRef::Stored { name: named, version } => {
                let (name, trusted) = stored_name(named.as_deref().or(name), version, trusted)?;
                Ok::<_, anyhow::Error>(Some(open_stored(fetcher, trusted, name, version).await?))
            }
            ReleaseRef::Path(_) => Ok(None),
        }
    }))
    .await?;
    // A release read from its tar parses only the modules no kept snapshot has.
    let unread = refs.iter().zip(&opened).any(|(r, o)| match o {
        Some((_, kept)) => kept.is_none(),
        None => folder(r).is_none(),
    });
    if unread {
        for (stored, kept) in opened.iter().flatten() {
            if let Some(kept) = kept {
                parsed.learn(kept, &stored.spans);
            }
        }
    }
    let mut out = Vec::with_capacity(refs.len());
    for (r, o) in refs.iter().zip(opened) {
        out.push(match (folder(r), o) {
            (Some(_), _) => (read.next().expect("a snapshot per folder"), None),
            (None, Some((stored, Some(kept)))) => (kept, Some(stored)),
            (None, Some((mut stored, None))) => (read_stored(fetcher, &mut stored, parsed).await?, Some(stored)),
            (None, None) => (
                snapshot_of(&materialise(fetcher, trusted, name, r).await?, parsed)?,
                None,
            ),
        });
    }
    Ok(out)
}

/// The snapshot of a materialised release, each module `parsed` knows not parsed again.
fn snapshot_of(m: &Materialised, parsed: &mut ParsedModules) -> Result<ReleaseSnapshot> {
    let file = std::fs::File::open(&m.path)?;
    ReleaseSnapshot::from_tar_sharing(std::io::BufReader::new(file), None, Some(parsed))
        .with_context(|| format!("cannot read the release `{}`", m.label))
}

/// A user's appups (`<app>.appup`) and additions (`<app>.extra`), by application.
#[derive(Debug, Default)]
pub struct Overrides {
    full: Vec<(String, Term)>,
    extra: Vec<(String, Extra)>,
}

impl Overrides {
    /// Reads `dir`; nothing when there is no folder.
    pub fn read(dir: Option<&Path>) -> Result<Self> {
        let mut out = Overrides::default();
        let Some(dir) = dir else {
            return Ok(out);
        };
        for e in std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))? {
            let path = e?.path();
            let file = path.to_string_lossy().into_owned();
            let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                continue;
            };
            let text = || std::fs::read_to_string(&path).with_context(|| format!("cannot read `{file}`"));
            match path.extension().and_then(|x| x.to_str()) {
                Some("appup") => out.full.push((stem, parse_term(&file, &text()?)?)),
                Some("extra") => out.extra.push((stem, Extra::parse(&file, &text()?)?)),
                _ => {}
            }
        }
        Ok(out)
    }

    /// The appups for upgrading to `to` from each of `froms`, and every warning.
    pub fn plan(&self, froms: &[&ReleaseSnapshot], to: &ReleaseSnapshot) -> (Vec<AppupPlan>, Vec<String>) {
        let (plans, mut warnings) = plan_appups(
            froms,
            to,
            &|app| self.full.iter().find(|(a, _)| a == app).map(|(_, t)| t.clone()),
            &|app| self.extra.iter().find(|(a, _)| a == app).map(|(_, e)| e.clone()),
        );
        warnings.extend(plans.iter().flat_map(|p| p.warnings.iter().cloned()));
        (plans, warnings)
    }
}

/// An upgrade to build: to release `to` of `name`, from each release of `from`.
#[derive(Debug, Clone)]
pub struct UpgradeRequest {
    pub name: String,
    pub from: Vec<ReleaseRef>,
    pub to: ReleaseRef,
    pub appup_dir: Option<PathBuf>,
}

/// A built upgrade artifact: an uncompressed canonical tar in a temporary folder.
#[derive(Debug)]
pub struct BuiltUpgrade {
    pub tar: PathBuf,
    pub from: Vec<Version>,
    pub to: Version,
    pub plans: Vec<AppupPlan>,
    pub warnings: Vec<String>,
    pub bytes: u64,
    /// The releases it was built from, and the one it goes to.
    pub from_snapshots: Vec<ReleaseSnapshot>,
    pub to_snapshot: ReleaseSnapshot,
    _tmp: tempfile::TempDir,
}

/// Where the release an upgrade goes to is read from.
enum ToRelease {
    /// A tarball, as it is.
    Tar(Materialised),
    /// A release folder, read in place.
    Folder(PathBuf),
    /// A stored release, through the cache.
    Stored(Box<Stored>),
}

/// Builds the upgrade artifact of `req`.
pub async fn build(s: &Settings, trusted: Option<&TrustedKeys>, req: &UpgradeRequest) -> Result<BuiltUpgrade> {
    let fetcher = Fetcher::new(s, crate::fetch::JOBS);
    let name = Some(req.name.as_str());
    // Every release is read at once: folders in place, together; stored ones from the
    // snapshots the cache keeps. The upgrade's members are then taken from TO's folder, its
    // cached chunks or its tar, once the appups say what they are.
    let mut parsed = ParsedModules::default();
    let mut refs: Vec<&ReleaseRef> = req.from.iter().collect();
    refs.push(&req.to);
    let mut read = read_releases(&fetcher, trusted, name, &refs, &mut parsed).await?;
    let (to, stored) = read.pop().expect("the snapshot of --to");
    let froms: Vec<ReleaseSnapshot> = read.into_iter().map(|(snapshot, _)| snapshot).collect();
    let source = match (&req.to, stored) {
        (_, Some(stored)) => ToRelease::Stored(Box::new(stored)),
        (ReleaseRef::Path(dir), None) if dir.is_dir() => ToRelease::Folder(dir.clone()),
        // A tarball is read where it is, not copied.
        (other, None) => ToRelease::Tar(materialise(&fetcher, trusted, name, other).await?),
    };
    let to_label = match &source {
        ToRelease::Tar(m) => m.label.clone(),
        ToRelease::Folder(dir) => dir.display().to_string(),
        ToRelease::Stored(s) => s.label.clone(),
    };
    if to.spec.name != req.name {
        bail!("`{to_label}` is release {}, not {}", to.spec.name, req.name);
    }
    for f in &froms {
        if f.spec.name != req.name {
            bail!("a --from release is {}, not {}", f.spec.name, req.name);
        }
        if f.spec.version == to.spec.version {
            return Err(UsageError::new(format!("--from and --to are the same version {}", to.spec.version)).into());
        }
    }
    let from_refs: Vec<&ReleaseSnapshot> = froms.iter().collect();
    let (plans, warnings) = Overrides::read(req.appup_dir.as_deref())?.plan(&from_refs, &to);
    let bases: Vec<_> = froms.iter().map(ReleaseSnapshot::relup_release).collect();
    let relup = make_relup(&to.relup_release(), &bases, &bases, &|app| {
        plans
            .iter()
            .find(|p| p.app == app.name)
            .map(|p| p.appup.clone())
            .ok_or_else(|| RelupError::BadAppup {
                app: app.name.clone(),
                what: "no appup".into(),
            })
    })
    .context("cannot make the relup")?;
    let relup = rel_format::protocols::add_swaps(relup, &to, &from_refs);

    let tmp = tempfile::tempdir()?;
    let tar = tmp.path().join(format!("{}-{}.upgrade.tar", req.name, to.spec.version));
    {
        let file = std::io::BufWriter::new(std::fs::File::create(&tar)?);
        let specs: Vec<_> = froms.iter().map(|f| &f.spec).collect();
        let to_tar: Box<dyn std::io::Read> = match &source {
            ToRelease::Tar(m) => Box::new(std::io::BufReader::new(std::fs::File::open(&m.path)?)),
            ToRelease::Stored(s) => {
                // The members the upgrade keeps, cut from the cached chunks; the whole
                // release fetched again if the cache no longer has them.
                let keeps = rel_format::upgrade::upgrade_keeps(&to.spec, &specs);
                let mut ranges: Vec<(u64, u64)> = Vec::new();
                for m in s.spans.iter().filter(|m| keeps(&m.path)) {
                    match ranges.last_mut() {
                        Some(last) if last.1 == m.start => last.1 = m.end,
                        _ => ranges.push((m.start, m.end)),
                    }
                }
                match fetcher.cache()?.read_ranges(&s.manifest.tar, &ranges) {
                    Some(members) => Box::new(std::io::Cursor::new(members)),
                    None => {
                        // Open before the temporary folder goes: the open file stays readable.
                        let m = fetch_whole(&fetcher, &s.manifest, s.label.clone()).await?;
                        Box::new(std::io::BufReader::new(std::fs::File::open(&m.path)?))
                    }
                }
            }
            ToRelease::Folder(dir) => {
                let keeps = rel_format::upgrade::upgrade_keeps(&to.spec, &specs);
                let selection = rel_format::archive::Selection::default();
                // TO's releases/<vsn>/ is walked for its files; write_upgrade leaves out the
                // directory member itself, as it does from a whole release's tar.
                let vsn_dir = format!("releases/{}", to.spec.version);
                let (members, _) =
                    crate::fs::archive_folder_with(dir, Vec::new(), rel_format::archive::Limits::default(), &|path| {
                        selection.keeps(path) && (keeps(path) || path == vsn_dir)
                    })?;
                Box::new(std::io::Cursor::new(members))
            }
        };
        let (mut file, _) = rel_format::upgrade::write_upgrade(to_tar, &to, &from_refs, &relup, &plans, file)?;
        std::io::Write::flush(&mut file)?;
    }
    // Refuse, before anyone signs it, an artifact release_handler would not accept.
    let from_specs: Vec<_> = froms.iter().map(|f| &f.spec).collect();
    rel_format::upgrade::check_upgrade(std::fs::File::open(&tar)?, &to.spec, &from_specs)?;
    let bytes = std::fs::metadata(&tar)?.len();
    Ok(BuiltUpgrade {
        tar,
        from: froms.iter().map(|f| f.spec.version.clone()).collect(),
        to: to.spec.version.clone(),
        plans,
        warnings,
        bytes,
        to_snapshot: to,
        from_snapshots: froms,
        _tmp: tmp,
    })
}

/// Why rel will not build an upgrade on a host by itself.
#[derive(Debug, thiserror::Error)]
#[error(
    "rel cannot be sure of the upgrade of {name} from {from} to {to} it would build: {}. Build one with hand-written appups (DIR/<app>.appup, or additions in DIR/<app>.extra) and store it; the host then takes it: rel build-upgrade {name} --from {from} --to {to} --appup-dir DIR --push",
    reasons.join("; ")
)]
pub struct NotSure {
    pub name: String,
    pub from: Version,
    pub to: Version,
    pub reasons: Vec<String>,
}

/// The upgrade of `name` from `from` to `to`, built on this host from the two stored
/// releases exactly as `rel build-upgrade --from NAME@FROM --to NAME@TO` builds it (same
/// bytes), and refused ([`NotSure`]) unless the generator is sure of it: no warning that
/// needs a human, and no process module whose state changed shape more than once across
/// the stored releases between the two (its `code_change/3` in `to` was written for the
/// shape before it, which need not be `from`'s).
pub async fn synthesise(
    s: &Settings,
    trusted: &TrustedKeys,
    name: &str,
    from: &Version,
    to: &Version,
) -> Result<BuiltUpgrade> {
    let stored = |version: &Version| ReleaseRef::Stored {
        name: Some(name.to_owned()),
        version: version.clone(),
    };
    let req = UpgradeRequest {
        name: name.to_owned(),
        from: vec![stored(from)],
        to: stored(to),
        appup_dir: None,
    };
    let built = build(s, Some(trusted), &req).await?;
    let mut reasons = built.warnings.clone();
    let updated: Vec<(String, String)> = built
        .plans
        .iter()
        .flat_map(|p| {
            rel_format::appup::updated_modules(&p.appup)
                .into_iter()
                .map(|m| (p.app.clone(), m))
        })
        .collect();
    if !updated.is_empty() {
        let fetcher = Fetcher::new(s, crate::fetch::JOBS);
        let listed = fetcher.client.versions(name).await?;
        let between: Vec<Version> = listed
            .versions
            .into_iter()
            .filter(|v| v.version > *from && v.version < *to)
            .filter(|v| v.artifacts.iter().any(|a| a.kind == rel_format::Kind::Release))
            .map(|v| v.version)
            .collect();
        let (first, last) = (&built.from_snapshots[0], &built.to_snapshot);
        let identity =
            |r: &ReleaseSnapshot, app: &str, m: &str| r.apps.get(app).and_then(|a| a.beams.get(m)).map(|b| b.identity);
        for v in between {
            let middle = snapshot(&fetcher, Some(trusted), Some(name), &stored(&v)).await?;
            for (app, m) in &updated {
                let here = identity(&middle, app, m);
                if here != identity(first, app, m) && here != identity(last, app, m) {
                    reasons.push(format!(
                        "{m} changed in {v} and again in {to}: its code_change/3 in {to} was written for {v}'s state, not necessarily {from}'s"
                    ));
                }
            }
        }
    }
    if reasons.is_empty() {
        Ok(built)
    } else {
        Err(NotSure {
            name: name.to_owned(),
            from: from.clone(),
            to: to.clone(),
            reasons,
        }
        .into())
    }
}
