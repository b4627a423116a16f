//! The snapshot of a release that appups and relups are made from: its `.rel`, and per
//! application the `.app` module list, a summary of every BEAM file (identity, behaviours,
//! exports, calls, child specs) and any appup it ships. Built from a tar stream or, by the
//! CLI, from a folder read in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::archive::{ArchiveError, Limits, check_entry, decompress};
use crate::beam::{Beam, BeamError};
use crate::release::{ReleaseError, ReleaseSpec};
use crate::relup::{RelupApp, RelupRelease};
use crate::supervision::{Deferred, SupervisionIndex};
use crate::term::{Term, TermError, parse_term};

/// What the appup generator needs to know about a module.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleSummary {
    pub name: String,
    /// [`Beam::identity`]: equal exactly when the md5s (as `beam_lib:md5/1`) are.
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
#[derive(Debug, Clone, Default)]
pub struct AppSnapshot {
    pub name: String,
    pub vsn: String,
    /// The `modules` of its `.app`, in order.
    pub app_modules: Vec<String>,
    /// The beams in its `ebin/`, by module name.
    pub beams: BTreeMap<String, ModuleSummary>,
    /// `ebin/<app>.appup`, when the release ships one.
    pub appup: Option<Term>,
    /// `priv/rel/<app>.extra`, additions to the generated appup the release ships (SPEC.md
    /// §8.2).
    pub extra: Option<crate::appup::Extra>,
}

/// A release: its `.rel` and its applications.
#[derive(Debug, Clone)]
pub struct ReleaseSnapshot {
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
        let key = crate::Digest::of(&bytes);
        if let Some(known) = self.0.get(&key) {
            return Ok(known.clone());
        }
        let module = ModuleSummary::of(&Beam::parse(path, bytes)?)?;
        self.0.insert(key, module.clone());
        Ok(module)
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
        mut parsed: Option<&mut ParsedModules>,
    ) -> Result<Self, SnapshotError> {
        let limits = Limits::default();
        let mut archive = tar::Archive::new(decompress(input)?);
        let mut builder = SnapshotBuilder::default();
        for entry in archive.entries().map_err(ArchiveError::Read)? {
            let mut entry = entry.map_err(ArchiveError::Read)?;
            let Some(member) = check_entry(&entry, &limits)? else {
                continue;
            };
            let Some(path) = member.path else { continue };
            if !matches!(member.kind, crate::archive::MemberKind::File { .. })
                || !snapshot_wants(&path)
                || member.size > MAX_SMALL_FILE
            {
                continue;
            }
            let mut bytes = Vec::with_capacity(member.size as usize);
            entry.read_to_end(&mut bytes).map_err(ArchiveError::Read)?;
            builder.add_sharing(&path, bytes, parsed.as_deref_mut())?;
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
