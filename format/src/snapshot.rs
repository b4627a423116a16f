//! The snapshot of a release that appups and relups are made from: its `.rel`, and per
//! application the `.app` module list, a summary of every BEAM file (identity, behaviours,
//! exports, calls, child specs) and any appup it ships. Built from a tar stream or, by the
//! CLI, from a folder read in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::archive::{ArchiveError, Limits, check_entry, decompress};
use crate::beam::{Beam, BeamError};
use crate::release::{ReleaseError, ReleaseSpec};
use crate::relup::{RelupApp, RelupRelease};
use crate::supervision::{Deferred, SupervisionIndex};
use crate::term::{Term, TermError, parse_term};

/// What the appup generator needs to know about a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleSummary {
    pub name: String,
    /// [`Beam::identity`]: equal exactly when the md5s (as `beam_lib:md5/1`) are.
    #[serde(with = "raw32")]
    pub identity: [u8; 32],
    pub behaviours: Vec<String>,
    /// Exports `code_change/3`, `code_change/4` or `system_code_change/4`.
    pub code_change: bool,
    /// Modules it calls.
    pub calls: BTreeSet<String>,
    /// What its code says about supervisors, child specs and names (read when asked).
    pub supervision: Deferred,
}

pub(crate) const SUPERVISORS: &[&str] = &["supervisor", "Elixir.Supervisor", "supervisor_bridge"];
pub(crate) const PROCESSES: &[&str] = &[
    "gen_server",
    "gen_statem",
    "gen_event",
    "gen_fsm",
    "Elixir.GenServer",
    "Elixir.GenStage",
    "Elixir.GenStateMachine",
    "Elixir.GenEvent",
];

impl ModuleSummary {
    pub fn of(beam: &Beam) -> Result<Self, BeamError> {
        let behaviours = beam.behaviours();
        Ok(ModuleSummary {
            name: beam.module().to_owned(),
            identity: beam.identity(),
            code_change: beam.exports("code_change", 3)
                || beam.exports("code_change", 4)
                || beam.exports("system_code_change", 4),
            calls: beam.called_modules(),
            supervision: Deferred::of(beam),
            behaviours,
        })
    }

    pub(crate) fn is_supervisor(&self) -> bool {
        self.behaviours.iter().any(|b| SUPERVISORS.contains(&b.as_str()))
    }

    pub(crate) fn is_process(&self) -> bool {
        self.code_change || self.behaviours.iter().any(|b| PROCESSES.contains(&b.as_str()))
    }
}

/// One application of a release.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AppSnapshot {
    pub name: String,
    pub vsn: String,
    /// The `modules` of its `.app`, in order.
    pub app_modules: Vec<String>,
    /// The beams in its `ebin/`, by module name.
    pub beams: BTreeMap<String, ModuleSummary>,
    /// `ebin/<app>.appup`, when the release ships one.
    #[serde(with = "crate::term::stored::option")]
    pub appup: Option<Term>,
    /// `priv/rel/<app>.extra`, additions to the generated appup the release ships (SPEC.md
    /// §8.2).
    pub extra: Option<crate::appup::Extra>,
}

/// A release: its `.rel` and its applications.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReleaseSnapshot {
    #[serde(with = "stored_spec")]
    pub spec: ReleaseSpec,
    pub apps: BTreeMap<String, AppSnapshot>,
    /// Elixir's consolidated protocols (`releases/<vsn>/consolidated/`), by module; empty for
    /// releases without them.
    pub consolidated: BTreeMap<String, ModuleSummary>,
}

/// Why a release could not be read for appup generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Beam(#[from] BeamError),
    #[error(transparent)]
    Term(#[from] TermError),
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Ingest(#[from] crate::archive::IngestError),
    #[error("`{0}` is not UTF-8")]
    NotUtf8(String),
    #[error(transparent)]
    Extra(#[from] crate::appup::ExtraError),
    #[error("`{path}`: {what}")]
    App { path: String, what: String },
    #[error("the stored snapshot of {tar}: {what}")]
    Stored { tar: crate::Digest, what: String },
}

/// Largest single file read while snapshotting a release (beams, boot files, configs).
pub const MAX_SMALL_FILE: u64 = 64 << 20;

/// Which files of a release a snapshot reads, by their path inside the release.
pub fn snapshot_wants(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["lib", _, "ebin", f] => f.ends_with(".beam") || f.ends_with(".app") || f.ends_with(".appup"),
        ["lib", _, "priv", "rel", f] => f.ends_with(".extra"),
        ["releases", f] | ["releases", _, f] => f.ends_with(".rel"),
        ["releases", _, "consolidated", f] => f.ends_with(".beam"),
        _ => false,
    }
}

/// Where a BEAM file of a release belongs, by its path: an application's `ebin` (the
/// `lib/` folder's name) or a version's consolidated protocols (the version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeamPlace {
    Lib(String),
    Consolidated(String),
}

impl BeamPlace {
    pub fn of(path: &str) -> Option<BeamPlace> {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["lib", dir, "ebin", f] if f.ends_with(".beam") => Some(BeamPlace::Lib((*dir).to_owned())),
            ["releases", vsn, "consolidated", f] if f.ends_with(".beam") => {
                Some(BeamPlace::Consolidated((*vsn).to_owned()))
            }
            _ => None,
        }
    }
}

/// Collects a release's files (in any order) into a [`ReleaseSnapshot`].
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    rel_files: Vec<(String, Vec<u8>)>,
    consolidated: Vec<(String, ModuleSummary)>,
    beams: Vec<(String, ModuleSummary)>,
    app_files: Vec<(String, Vec<u8>)>,
    appups: Vec<(String, Vec<u8>)>,
    extras: Vec<(String, String, Vec<u8>)>,
}

/// Modules already parsed, by the SHA-256 of their file. Releases of one name share most
/// modules byte for byte, so snapshots read with one of these parse each shared module once
/// (hashing a module costs a fraction of parsing it).
#[derive(Debug, Default)]
pub struct ParsedModules(std::collections::HashMap<crate::Digest, ModuleSummary>);

impl ParsedModules {
    /// The summary of the BEAM file `bytes` at `path`, parsed unless already known.
    pub fn summary(&mut self, path: &str, bytes: Vec<u8>) -> Result<ModuleSummary, SnapshotError> {
        Ok(self.summary_keyed(path, bytes)?.1)
    }

    /// [`ParsedModules::summary`], with the SHA-256 of the file.
    fn summary_keyed(&mut self, path: &str, bytes: Vec<u8>) -> Result<(crate::Digest, ModuleSummary), SnapshotError> {
        let key = crate::Digest::of(&bytes);
        if let Some(known) = self.0.get(&key) {
            return Ok((key, known.clone()));
        }
        let module = ModuleSummary::of(&Beam::parse(path, bytes)?)?;
        self.0.insert(key, module.clone());
        Ok((key, module))
    }

    /// Learns the modules of a snapshot read with its spans: those whose spans carry the
    /// file's digest, so that a release read next parses only the modules it does not share.
    pub fn learn(&mut self, snapshot: &ReleaseSnapshot, spans: &[MemberSpan]) {
        let dirs: std::collections::HashMap<String, &AppSnapshot> = snapshot
            .apps
            .values()
            .map(|a| (format!("{}-{}", a.name, a.vsn), a))
            .collect();
        for span in spans {
            let (Some(digest), Some(place)) = (span.digest, BeamPlace::of(&span.path)) else {
                continue;
            };
            let Some(name) = span.path.rsplit('/').next().and_then(|f| f.strip_suffix(".beam")) else {
                continue;
            };
            let module = match place {
                BeamPlace::Lib(dir) => dirs.get(&dir).and_then(|a| a.beams.get(name)),
                BeamPlace::Consolidated(vsn) if vsn == snapshot.spec.version.as_str() => {
                    snapshot.consolidated.get(name)
                }
                BeamPlace::Consolidated(_) => None,
            };
            if let Some(module) = module {
                self.0.entry(digest).or_insert_with(|| module.clone());
            }
        }
    }
}

impl SnapshotBuilder {
    /// Adds a file that [`snapshot_wants`]; others are ignored. Beams are parsed here.
    pub fn add(&mut self, path: &str, bytes: Vec<u8>) -> Result<(), SnapshotError> {
        self.add_sharing(path, bytes, None)
    }

    /// [`SnapshotBuilder::add`], a BEAM file parsed only if `parsed` does not know it.
    pub fn add_sharing(
        &mut self,
        path: &str,
        bytes: Vec<u8>,
        parsed: Option<&mut ParsedModules>,
    ) -> Result<(), SnapshotError> {
        let parts: Vec<&str> = path.split('/').collect();
        if let Some(place) = BeamPlace::of(path) {
            let module = match parsed {
                Some(parsed) => parsed.summary(path, bytes)?,
                None => ModuleSummary::of(&Beam::parse(path, bytes)?)?,
            };
            self.add_beam(place, module);
            return Ok(());
        }
        match parts.as_slice() {
            ["lib", dir, "ebin", file] if file.ends_with(".app") => self.app_files.push(((*dir).to_owned(), bytes)),
            ["lib", dir, "ebin", file] if file.ends_with(".appup") => self.appups.push(((*dir).to_owned(), bytes)),
            ["lib", dir, "priv", "rel", file] if file.ends_with(".extra") => {
                self.extras.push(((*dir).to_owned(), (*file).to_owned(), bytes))
            }
            ["releases", f] | ["releases", _, f] if f.ends_with(".rel") => {
                self.rel_files.push((path.to_owned(), bytes))
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds a module parsed elsewhere (in parallel, say).
    pub fn add_beam(&mut self, place: BeamPlace, module: ModuleSummary) {
        match place {
            BeamPlace::Lib(dir) => self.beams.push((dir, module)),
            BeamPlace::Consolidated(vsn) => self.consolidated.push((vsn, module)),
        }
    }

    /// The snapshot of the release (`want` picks a version among several `.rel` files).
    pub fn finish(self, want: Option<&str>) -> Result<ReleaseSnapshot, SnapshotError> {
        let seen = crate::archive::Ingested {
            rel_files: self.rel_files,
            ..Default::default()
        };
        let spec = seen.release(want)?;
        let mut by_dir: std::collections::HashMap<String, Vec<ModuleSummary>> = Default::default();
        for (dir, m) in self.beams {
            by_dir.entry(dir).or_default().push(m);
        }
        let mut apps = BTreeMap::new();
        for app in &spec.apps {
            let dir = format!("{}-{}", app.name, app.version);
            let mut snap = AppSnapshot {
                name: app.name.clone(),
                vsn: app.version.to_string(),
                ..Default::default()
            };
            for m in by_dir.remove(&dir).unwrap_or_default() {
                snap.beams.insert(m.name.clone(), m);
            }
            if let Some((_, bytes)) = self.app_files.iter().find(|(d, _)| *d == dir) {
                let file = format!("lib/{dir}/ebin/{}.app", app.name);
                let text = std::str::from_utf8(bytes).map_err(|_| SnapshotError::NotUtf8(file.clone()))?;
                snap.app_modules = app_modules(&file, text)?;
            }
            if let Some((_, bytes)) = self.appups.iter().find(|(d, _)| *d == dir) {
                let file = format!("lib/{dir}/ebin/{}.appup", app.name);
                let text = std::str::from_utf8(bytes).map_err(|_| SnapshotError::NotUtf8(file.clone()))?;
                snap.appup = Some(parse_term(&file, text)?);
            }
            let extra_file = format!("{}.extra", app.name);
            if let Some((_, _, bytes)) = self.extras.iter().find(|(d, f, _)| *d == dir && *f == extra_file) {
                let file = format!("lib/{dir}/priv/rel/{extra_file}");
                let text = std::str::from_utf8(bytes).map_err(|_| SnapshotError::NotUtf8(file.clone()))?;
                snap.extra = Some(crate::appup::Extra::parse(&file, text)?);
            }
            apps.insert(app.name.clone(), snap);
        }
        let consolidated = self
            .consolidated
            .into_iter()
            .filter(|(vsn, _)| vsn == spec.version.as_str())
            .map(|(_, m)| (m.name.clone(), m))
            .collect();
        Ok(ReleaseSnapshot {
            spec,
            apps,
            consolidated,
        })
    }
}

impl ReleaseSnapshot {
    /// Reads a release tar (plain, gzip or zstd). `want` picks a version when the archive
    /// holds several.
    pub fn from_tar<R: Read>(input: R, want: Option<&str>) -> Result<Self, SnapshotError> {
        Self::from_tar_sharing(input, want, None)
    }

    /// [`ReleaseSnapshot::from_tar`], each module `parsed` knows taken from it, and each
    /// module parsed added to it.
    pub fn from_tar_sharing<R: Read>(
        input: R,
        want: Option<&str>,
        parsed: Option<&mut ParsedModules>,
    ) -> Result<Self, SnapshotError> {
        Self::read_tar(input, want, parsed, None)
    }

    /// [`ReleaseSnapshot::from_tar_sharing`], with where each member of the (uncompressed)
    /// tar lies in it.
    pub fn from_tar_indexed<R: Read>(
        input: R,
        want: Option<&str>,
        parsed: &mut ParsedModules,
    ) -> Result<(Self, Vec<MemberSpan>), SnapshotError> {
        let mut spans = Vec::new();
        let snapshot = Self::read_tar(input, want, Some(parsed), Some(&mut spans))?;
        Ok((snapshot, spans))
    }

    fn read_tar<R: Read>(
        input: R,
        want: Option<&str>,
        mut parsed: Option<&mut ParsedModules>,
        mut spans: Option<&mut Vec<MemberSpan>>,
    ) -> Result<Self, SnapshotError> {
        let limits = Limits::default();
        let mut archive = tar::Archive::new(decompress(input)?);
        let mut builder = SnapshotBuilder::default();
        let mut claimed: std::collections::HashMap<(String, String), usize> = Default::default();
        let mut end = 0;
        for entry in archive.entries().map_err(ArchiveError::Read)? {
            let mut entry = entry.map_err(ArchiveError::Read)?;
            let start = end;
            end = entry.raw_file_position() + entry.size().div_ceil(512) * 512;
            let Some(member) = check_entry(&entry, &limits)? else {
                continue;
            };
            let Some(path) = member.path else { continue };
            let mut digest = None;
            if matches!(member.kind, crate::archive::MemberKind::File { .. })
                && snapshot_wants(&path)
                && member.size <= MAX_SMALL_FILE
            {
                let mut bytes = Vec::with_capacity(member.size as usize);
                entry.read_to_end(&mut bytes).map_err(ArchiveError::Read)?;
                match (BeamPlace::of(&path), parsed.as_deref_mut()) {
                    (Some(place), Some(parsed)) => {
                        let (key, module) = parsed.summary_keyed(&path, bytes)?;
                        // Known again by its file only when the file is the one its module
                        // is kept from: named for it, and the only one in its folder.
                        if spans.is_some() {
                            let folder = path.rsplit_once('/').map_or("", |(f, _)| f).to_owned();
                            *claimed.entry((folder, module.name.clone())).or_insert(0) += 1;
                            if path.ends_with(&format!("/{}.beam", module.name)) {
                                digest = Some(key);
                            }
                        }
                        builder.add_beam(place, module);
                    }
                    _ => builder.add(&path, bytes)?,
                }
            }
            if let Some(spans) = spans.as_deref_mut() {
                spans.push(MemberSpan {
                    path,
                    start,
                    end,
                    digest,
                });
            }
        }
        if let Some(spans) = spans {
            for span in spans.iter_mut().filter(|s| s.digest.is_some()) {
                let (folder, file) = span.path.rsplit_once('/').unwrap_or(("", &span.path));
                let module = file.strip_suffix(".beam").unwrap_or(file);
                if claimed.get(&(folder.to_owned(), module.to_owned())) != Some(&1) {
                    span.digest = None;
                }
            }
        }
        builder.finish(want)
    }
}

impl ReleaseSnapshot {
    /// Every module's supervision summary, for resolving child ids and supervisor names
    /// across applications (a child's `child_spec/1` is often in another one, such as
    /// `Task.Supervisor` in `elixir`).
    pub fn supervision(&self) -> SupervisionIndex<'_> {
        SupervisionIndex::new(
            self.apps
                .values()
                .flat_map(|a| a.beams.values())
                .map(|m| (m.name.as_str(), &m.supervision)),
        )
    }

    /// The release as the relup generator sees it.
    pub fn relup_release(&self) -> RelupRelease {
        RelupRelease {
            name: self.spec.name.clone(),
            vsn: self.spec.version.to_string(),
            erts: self.spec.erts.to_string(),
            apps: self
                .spec
                .apps
                .iter()
                .map(|a| RelupApp {
                    name: a.name.clone(),
                    vsn: a.version.to_string(),
                    modules: self
                        .apps
                        .get(&a.name)
                        .map(|s| s.app_modules.clone())
                        .unwrap_or_default(),
                    start_type: a.start_type.clone().unwrap_or_else(|| "permanent".into()),
                })
                .collect(),
        }
    }
}

/// The `modules` list of an `.app` file.
pub fn app_modules(file: &str, text: &str) -> Result<Vec<String>, SnapshotError> {
    let bad = |what: &str| SnapshotError::App {
        path: file.to_owned(),
        what: what.to_owned(),
    };
    let term = parse_term(file, text)?;
    let parts = term
        .as_tuple()
        .filter(|t| t.len() == 3 && t[0].as_atom() == Some("application"))
        .ok_or_else(|| bad("not {application, Name, Props}"))?;
    let props = parts[2].as_list().ok_or_else(|| bad("properties are not a list"))?;
    for p in props.iter() {
        if let Some([k, v]) = p.as_tuple()
            && k.as_atom() == Some("modules")
        {
            return v
                .as_list()
                .ok_or_else(|| bad("modules is not a list"))?
                .iter()
                .map(|m| {
                    m.as_atom()
                        .map(str::to_owned)
                        .ok_or_else(|| bad(&format!("module `{m}` is not an atom")))
                })
                .collect();
        }
    }
    Ok(vec![])
}

/// A member of a release's tar and where its bytes lie in the stream: from the end of the
/// member before it (extension headers such as a long name's included) to the end of its
/// padded data. The members an upgrade keeps are cut from the stream by these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpan {
    pub path: String,
    pub start: u64,
    pub end: u64,
    /// The SHA-256 of a BEAM file the snapshot read, by which [`ParsedModules::learn`]
    /// knows it again.
    #[serde(with = "raw_digest")]
    pub digest: Option<crate::Digest>,
}

/// The first bytes of a stored snapshot; the digit is the layout's version.
pub const STORED_MAGIC: &[u8; 16] = b"rel snapshot 01\n";

/// A snapshot and its member spans as a host keeps them (SPEC.md §8.5): the magic, the
/// digest of the release tar they were read from, the two in postcard, and the SHA-256 of
/// all that.
pub fn encode_stored(
    tar: &crate::Digest,
    snapshot: &ReleaseSnapshot,
    spans: &[MemberSpan],
) -> Result<Vec<u8>, SnapshotError> {
    let mut out = STORED_MAGIC.to_vec();
    out.extend_from_slice(tar.as_bytes());
    let out = postcard::to_extend(&(snapshot, spans), out).map_err(|e| SnapshotError::Stored {
        tar: *tar,
        what: e.to_string(),
    })?;
    let mut out = out;
    let sum = crate::Digest::of(&out);
    out.extend_from_slice(sum.as_bytes());
    Ok(out)
}

/// Reads back what [`encode_stored`] wrote for the release tar `tar`; anything else (another
/// release's, another layout's, altered or cut short) is refused.
pub fn decode_stored(tar: &crate::Digest, bytes: &[u8]) -> Result<(ReleaseSnapshot, Vec<MemberSpan>), SnapshotError> {
    let bad = |what: &str| SnapshotError::Stored {
        tar: *tar,
        what: what.to_owned(),
    };
    let head = STORED_MAGIC.len() + 32;
    if bytes.len() < head + 32 {
        return Err(bad("cut short"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if !body.starts_with(STORED_MAGIC) {
        return Err(bad("not a snapshot of this layout"));
    }
    if crate::Digest::of(body).as_bytes() != sum {
        return Err(bad("its checksum does not match"));
    }
    if &body[STORED_MAGIC.len()..head] != tar.as_bytes() {
        return Err(bad("it is another release's"));
    }
    postcard::from_bytes(&body[head..]).map_err(|e| bad(&format!("its body does not read as one ({e})")))
}

/// 32 bytes stored as bytes: not a tuple of 32 numbers, nor a digest's text.
mod raw32 {
    use serde::de::{Error, Visitor};

    pub(super) fn serialize<S: serde::Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        struct Raw;
        impl Visitor<'_> for Raw {
            type Value = [u8; 32];
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("32 bytes")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<[u8; 32], E> {
                v.try_into().map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(Raw)
    }
}

/// An optional digest stored as its 32 bytes.
mod raw_digest {
    use super::Deserialize;
    use crate::Digest;

    #[derive(serde::Serialize, Deserialize)]
    struct Raw(#[serde(with = "super::raw32")] [u8; 32]);

    pub(super) fn serialize<S: serde::Serializer>(digest: &Option<Digest>, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&digest.map(|d| Raw(*d.as_bytes())), s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Digest>, D::Error> {
        Ok(Option::<Raw>::deserialize(d)?.map(|Raw(bytes)| Digest::from_bytes(bytes)))
    }
}

/// A `.rel` as a snapshot stores it: its fields in order (the JSON form leaves empty ones
/// out, which a format without field names cannot).
mod stored_spec {
    use super::*;
    use crate::Version;
    use crate::release::RelApp;

    type App = (String, Version, Option<String>, Vec<String>);

    pub(super) fn serialize<S: serde::Serializer>(spec: &ReleaseSpec, s: S) -> Result<S::Ok, S::Error> {
        let apps: Vec<_> = spec
            .apps
            .iter()
            .map(|a| (&a.name, &a.version, &a.start_type, &a.included))
            .collect();
        (&spec.name, &spec.version, &spec.erts, apps).serialize(s)
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ReleaseSpec, D::Error> {
        let (name, version, erts, apps): (String, Version, Version, Vec<App>) = Deserialize::deserialize(d)?;
        Ok(ReleaseSpec {
            name,
            version,
            erts,
            apps: apps
                .into_iter()
                .map(|(name, version, start_type, included)| RelApp {
                    name,
                    version,
                    start_type,
                    included,
                })
                .collect(),
        })
    }
}

/// Hand-made snapshots for unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::supervision::{Deferred, Supervision};

    /// A module whose identity is `version` repeated.
    pub(crate) fn module(name: &str, version: u8, behaviours: &[&str], calls: &[&str]) -> ModuleSummary {
        ModuleSummary {
            name: name.into(),
            identity: [version; 32],
            behaviours: behaviours.iter().map(|b| (*b).to_owned()).collect(),
            code_change: false,
            calls: calls.iter().map(|c| (*c).to_owned()).collect(),
            supervision: Deferred::known(Supervision::default()),
        }
    }

    /// Release `name` `vsn` with one application of the same name and vsn.
    pub(crate) fn release(
        name: &str,
        vsn: &str,
        beams: Vec<ModuleSummary>,
        consolidated: Vec<ModuleSummary>,
    ) -> ReleaseSnapshot {
        let app = AppSnapshot {
            name: name.into(),
            vsn: vsn.into(),
            app_modules: beams.iter().map(|m| m.name.clone()).collect(),
            beams: beams.into_iter().map(|m| (m.name.clone(), m)).collect(),
            appup: None,
            extra: None,
        };
        ReleaseSnapshot {
            spec: ReleaseSpec {
                name: name.into(),
                version: vsn.parse().expect("a test version"),
                erts: "13.1.5".parse().expect("a test version"),
                apps: vec![],
            },
            apps: [(name.to_owned(), app)].into(),
            consolidated: consolidated.into_iter().map(|m| (m.name.clone(), m)).collect(),
        }
    }
}

#[cfg(test)]
mod stored_tests {
    use super::*;
    use rel_testkit::fixtures::Fixture;

    /// Version `v` of a fixture as the plain tar its stream is.
    fn plain(fixture: &Fixture, v: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let file = std::fs::File::open(fixture.tarball(v)).unwrap();
        flate2::read::GzDecoder::new(file).read_to_end(&mut out).unwrap();
        out
    }

    fn read(tar: &[u8], parsed: &mut ParsedModules) -> (ReleaseSnapshot, Vec<MemberSpan>) {
        ReleaseSnapshot::from_tar_indexed(tar, None, parsed).unwrap()
    }

    /// Every module of both, equal (their supervision answers included, read on both sides).
    fn assert_same_modules(a: &ReleaseSnapshot, b: &ReleaseSnapshot) {
        assert_eq!(a.spec, b.spec);
        assert_eq!(a.consolidated, b.consolidated);
        assert_eq!(a.apps.keys().collect::<Vec<_>>(), b.apps.keys().collect::<Vec<_>>());
        for (app, x) in &a.apps {
            let y = &b.apps[app];
            assert_eq!(
                (&x.vsn, &x.app_modules, &x.appup),
                (&y.vsn, &y.app_modules, &y.appup),
                "{app}"
            );
            assert_eq!(format!("{:?}", x.extra), format!("{:?}", y.extra), "{app}");
            assert_eq!(x.beams, y.beams, "{app}");
        }
    }

    #[test]
    fn a_kept_snapshot_reads_back_as_it_was_made() {
        for fixture in [Fixture::shop(), Fixture::ledger(), Fixture::demo()] {
            for v in fixture.versions() {
                let tar = plain(&fixture, &v);
                let digest = crate::Digest::of(&tar);
                let (snapshot, spans) = read(&tar, &mut ParsedModules::default());
                let kept = encode_stored(&digest, &snapshot, &spans).unwrap();
                let (back, back_spans) = decode_stored(&digest, &kept).unwrap();
                assert_eq!(back_spans, spans, "{} {v}", fixture.name);
                assert_same_modules(&snapshot, &back);
                assert_eq!(encode_stored(&digest, &back, &back_spans).unwrap(), kept);
                // What supervision analysis reads went along: some supervisor's children
                // are known on both sides.
                let supervisors = back
                    .apps
                    .values()
                    .flat_map(|a| a.beams.values())
                    .filter(|m| m.is_supervisor() && m.supervision.get().init.is_some())
                    .count();
                assert!(supervisors > 0, "{} {v}: no supervisor read back", fixture.name);
            }
        }
    }

    #[test]
    fn spans_cut_each_member_out_of_the_tar() {
        let shop = Fixture::shop();
        let v = &shop.versions()[0];
        let tar = plain(&shop, v);
        let (snapshot, spans) = read(&tar, &mut ParsedModules::default());
        assert!(spans.len() > 100, "{} members", spans.len());
        let mut end = 0;
        for span in &spans {
            assert_eq!(span.start, end, "{} starts where the member before ends", span.path);
            end = span.end;
            let mut archive = tar::Archive::new(&tar[span.start as usize..span.end as usize]);
            let paths: Vec<String> = archive
                .entries()
                .unwrap()
                .map(|e| {
                    e.unwrap()
                        .path()
                        .unwrap()
                        .to_string_lossy()
                        .trim_end_matches('/')
                        .to_owned()
                })
                .collect();
            assert_eq!(paths.len(), 1, "{}: {paths:?}", span.path);
            assert!(
                paths[0].trim_start_matches("./") == span.path,
                "{paths:?} for {}",
                span.path
            );
        }
        // Nothing but the end-of-archive blocks follows the last member.
        assert!(tar[end as usize..].iter().all(|b| *b == 0));
        // Every module file is known by its digest, and by nothing else.
        let beams = spans.iter().filter(|s| BeamPlace::of(&s.path).is_some());
        assert!(
            beams
                .clone()
                .all(|s| s.digest == Some(crate::Digest::of(&member(&tar, s))))
        );
        assert!(spans.iter().filter(|s| s.digest.is_some()).count() == beams.count());
        // The members an upgrade keeps, cut out and put together, read as those members.
        let keep: Vec<&MemberSpan> = spans.iter().filter(|s| s.path.starts_with("lib/shop-")).collect();
        let cut: Vec<u8> = keep
            .iter()
            .flat_map(|s| tar[s.start as usize..s.end as usize].to_vec())
            .collect();
        let mut archive = tar::Archive::new(cut.as_slice());
        assert_eq!(archive.entries().unwrap().count(), keep.len());
        assert!(snapshot.apps.contains_key("shop"));
    }

    /// The data of the member a span holds.
    fn member(tar: &[u8], span: &MemberSpan) -> Vec<u8> {
        let mut archive = tar::Archive::new(&tar[span.start as usize..span.end as usize]);
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut out = Vec::new();
        entry.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_kept_snapshot_that_is_not_whole_is_refused() {
        let demo = Fixture::demo();
        let tar = plain(&demo, &demo.versions()[0]);
        let digest = crate::Digest::of(&tar);
        let (snapshot, spans) = read(&tar, &mut ParsedModules::default());
        let kept = encode_stored(&digest, &snapshot, &spans).unwrap();
        let refused = |bytes: &[u8], tar: &crate::Digest, what: &str| {
            let e = decode_stored(tar, bytes).unwrap_err().to_string();
            assert!(e.contains(&tar.to_string()) && e.contains(what), "{e}");
        };
        for cut in [0, 10, 47, 48 + 31, kept.len() / 2, kept.len() - 1] {
            refused(&kept[..cut], &digest, if cut < 80 { "cut short" } else { "checksum" });
        }
        for at in [0, 20, kept.len() / 3, kept.len() - 40, kept.len() - 1] {
            let mut altered = kept.clone();
            altered[at] ^= 0x20;
            refused(&altered, &digest, if at < 16 { "layout" } else { "checksum" });
        }
        refused(&kept, &crate::Digest::of(b"another release"), "another release's");
        // A whole file of the layout around what is not a snapshot.
        let mut forged = STORED_MAGIC.to_vec();
        forged.extend_from_slice(digest.as_bytes());
        forged.extend_from_slice(&[0xff; 64]);
        let sum = crate::Digest::of(&forged);
        forged.extend_from_slice(sum.as_bytes());
        let e = decode_stored(&digest, &forged).unwrap_err();
        assert!(matches!(e, SnapshotError::Stored { .. }), "{e}");
    }

    /// Terms are stored as text and read back by the term parser, so a stored term nested
    /// past its bounds is refused, not followed down the stack.
    #[test]
    fn a_kept_snapshot_nesting_past_the_bounds_is_refused() {
        let demo = Fixture::demo();
        let tar = plain(&demo, &demo.versions()[0]);
        let digest = crate::Digest::of(&tar);
        let (snapshot, spans) = read(&tar, &mut ParsedModules::default());
        // The stored text of an appup, replaced by lists nested `depth` deep.
        let nested = |depth: usize| {
            let mut snapshot = snapshot.clone();
            let placeholder = "a".repeat(2 * depth);
            snapshot.apps.values_mut().next().unwrap().appup = Some(Term::atom(&placeholder));
            let mut kept = encode_stored(&digest, &snapshot, &spans).unwrap();
            kept.truncate(kept.len() - 32);
            let at = kept
                .windows(placeholder.len())
                .position(|w| w == placeholder.as_bytes())
                .unwrap();
            let lists = "[".repeat(depth) + &"]".repeat(depth);
            kept[at..at + lists.len()].copy_from_slice(lists.as_bytes());
            let sum = crate::Digest::of(&kept);
            kept.extend_from_slice(sum.as_bytes());
            decode_stored(&digest, &kept)
        };
        let (back, _) = nested(3).unwrap();
        let appup = back.apps.values().next().unwrap().appup.clone();
        assert_eq!(appup.unwrap().to_string(), "[[[]]]");
        let e = nested(100_000).unwrap_err().to_string();
        assert!(e.contains("does not read as one"), "{e}");
    }

    #[test]
    fn modules_learnt_from_a_kept_snapshot_are_not_parsed_again() {
        let shop = Fixture::shop();
        let vs = shop.versions();
        let (first, second) = (plain(&shop, &vs[0]), plain(&shop, &vs[1]));
        let (snapshot, spans) = read(&first, &mut ParsedModules::default());
        let mut parsed = ParsedModules::default();
        parsed.learn(&snapshot, &spans);
        let learnt = spans.iter().filter(|s| s.digest.is_some()).count();
        assert_eq!(parsed.0.len(), learnt);
        // Each file is known as what reading it gives.
        for span in spans.iter().filter(|s| s.digest.is_some()) {
            let fresh = ModuleSummary::of(&Beam::parse(&span.path, member(&first, span)).unwrap()).unwrap();
            assert_eq!(parsed.0[&span.digest.unwrap()], fresh, "{}", span.path);
        }
        // The next version parses only what it does not share, and reads as it does alone.
        let (next, _) = read(&second, &mut parsed);
        let (alone, next_spans) = read(&second, &mut ParsedModules::default());
        assert_same_modules(&next, &alone);
        let shared = next_spans
            .iter()
            .filter(|s| s.digest.is_some_and(|d| spans.iter().any(|f| f.digest == Some(d))))
            .count();
        assert_eq!(
            parsed.0.len(),
            learnt + next_spans.iter().filter(|s| s.digest.is_some()).count() - shared
        );
        assert!(shared > 0 && shared < learnt);
    }

    #[test]
    fn a_module_file_not_named_for_its_module_is_not_learnt() {
        let demo = Fixture::demo();
        let v = &demo.versions()[0];
        let tar = plain(&demo, v);
        let (_, spans) = read(&tar, &mut ParsedModules::default());
        let (a, b) = {
            let mut beams = spans
                .iter()
                .filter(|s| s.path.ends_with(".beam") && s.path.contains("/ebin/"));
            (beams.next().unwrap().clone(), beams.next().unwrap().clone())
        };
        let (bytes_a, bytes_b) = (member(&tar, &a), member(&tar, &b));
        // A folder where the two files swapped names.
        let dir = a.path.rsplit_once('/').unwrap().0;
        let name = |s: &MemberSpan| s.path.rsplit_once('/').unwrap().1.to_owned();
        let spans_of = |files: &[(String, &Vec<u8>)]| {
            let mut builder = tar::Builder::new(Vec::new());
            for (file, bytes) in files {
                let mut header = tar::Header::new_gnu();
                header.set_size(bytes.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                builder
                    .append_data(&mut header, format!("{dir}/{file}"), bytes.as_slice())
                    .unwrap();
            }
            let tar = builder.into_inner().unwrap();
            let mut spans = Vec::new();
            // No `.rel`: the snapshot itself fails, once every member is spanned.
            ReleaseSnapshot::read_tar(
                tar.as_slice(),
                None,
                Some(&mut ParsedModules::default()),
                Some(&mut spans),
            )
            .unwrap_err();
            spans
        };
        let digests = |spans: Vec<MemberSpan>| spans.into_iter().map(|s| s.digest).collect::<Vec<_>>();
        // Alone and rightly named, a file is learnt.
        let right = spans_of(&[(name(&a), &bytes_a)]);
        assert_eq!(digests(right), [Some(crate::Digest::of(&bytes_a))]);
        // Two files that swapped names.
        let swapped = spans_of(&[(name(&b), &bytes_a), (name(&a), &bytes_b)]);
        assert_eq!(digests(swapped), [None, None]);
        // A rightly named file, and a copy of it under another name: the module is kept from
        // the copy, read last.
        let copied = spans_of(&[(name(&a), &bytes_a), ("zz_copy.beam".into(), &bytes_a)]);
        assert_eq!(digests(copied), [None, None]);
    }
}
