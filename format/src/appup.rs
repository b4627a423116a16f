//! Appups from two releases' BEAM files, and the snapshot of a release they are made from.
//!
//! For every application present in both releases with a different vsn, each module is
//! classified by comparing what `beam_lib:md5/1` hashes (see [`Beam::identity`]) and reading
//! the **new** beam:
//!
//! | situation | up | down |
//! |---|---|---|
//! | only in the new release | `{add_module, M, Deps}` | `{delete_module, M}` |
//! | only in the old release | `{delete_module, M}` | `{add_module, M, Deps}` |
//! | same md5 | nothing | nothing |
//! | supervisor (`supervisor`, `Elixir.Supervisor`) | `{update, M, supervisor}`, then `restart_child` for children it gained; `terminate_child` + `delete_child` first for children it lost | the inverse, in reverse order |
//! | exports `code_change/3,4` or `system_code_change/4`, or a gen_server / gen_statem / gen_event / gen_fsm behaviour (Erlang or Elixir) | `{update, M, {advanced, []}, Deps}` | the same (OTP runs `code_change({down, Vsn}, ...)`) |
//! | any other change | `{load_module, M, Deps}` | the same |
//!
//! `Deps` are the modules the new beam calls (its import table) that also have an
//! instruction in this appup, so `systools`/rel order them. Up instructions are: added
//! modules, changed modules, supervisors with their child instructions, deleted modules;
//! the down list is the up list inverted and reversed. A supervisor is assumed to be
//! registered under its module name (`{local, ?MODULE}`), and its child ids are read from
//! its literals; where they cannot be found, a warning says so.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use crate::archive::{ArchiveError, Limits, check_entry, decompress};
use crate::beam::{Beam, BeamError};
use crate::release::{ReleaseError, ReleaseSpec};
use crate::relup::{RelupApp, RelupRelease};
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
    /// Child ids, for a supervisor whose specs are literals.
    pub child_ids: Option<Vec<Term>>,
}

const SUPERVISORS: &[&str] = &["supervisor", "Elixir.Supervisor", "supervisor_bridge"];
const PROCESSES: &[&str] = &[
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
        let is_sup = behaviours.iter().any(|b| SUPERVISORS.contains(&b.as_str()));
        Ok(ModuleSummary {
            name: beam.module().to_owned(),
            identity: beam.identity(),
            code_change: beam.exports("code_change", 3)
                || beam.exports("code_change", 4)
                || beam.exports("system_code_change", 4),
            calls: beam.called_modules(),
            child_ids: if is_sup { beam.literal_child_ids()? } else { None },
            behaviours,
        })
    }

    fn is_supervisor(&self) -> bool {
        self.behaviours.iter().any(|b| SUPERVISORS.contains(&b.as_str()))
    }

    fn is_process(&self) -> bool {
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
}

/// A release: its `.rel` and its applications.
#[derive(Debug, Clone)]
pub struct ReleaseSnapshot {
    pub spec: ReleaseSpec,
    pub apps: BTreeMap<String, AppSnapshot>,
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
        ["releases", f] | ["releases", _, f] => f.ends_with(".rel"),
        _ => false,
    }
}

/// Collects a release's files (in any order) into a [`ReleaseSnapshot`].
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    rel_files: Vec<(String, Vec<u8>)>,
    beams: Vec<(String, ModuleSummary)>,
    app_files: Vec<(String, Vec<u8>)>,
    appups: Vec<(String, Vec<u8>)>,
}

impl SnapshotBuilder {
    /// Adds a file that [`snapshot_wants`]; others are ignored. Beams are parsed here.
    pub fn add(&mut self, path: &str, bytes: Vec<u8>) -> Result<(), SnapshotError> {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            ["lib", dir, "ebin", file] if file.ends_with(".beam") => {
                let beam = Beam::parse(path, bytes)?;
                self.add_module((*dir).to_owned(), ModuleSummary::of(&beam)?);
            }
            ["lib", dir, "ebin", file] if file.ends_with(".app") => self.app_files.push(((*dir).to_owned(), bytes)),
            ["lib", dir, "ebin", file] if file.ends_with(".appup") => self.appups.push(((*dir).to_owned(), bytes)),
            ["releases", f] | ["releases", _, f] if f.ends_with(".rel") => {
                self.rel_files.push((path.to_owned(), bytes))
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds a module parsed elsewhere (in parallel, say) from `lib/<dir>/ebin/`.
    pub fn add_module(&mut self, dir: String, module: ModuleSummary) {
        self.beams.push((dir, module));
    }

    /// The snapshot of the release (`want` picks a version among several `.rel` files).
    pub fn finish(self, want: Option<&str>) -> Result<ReleaseSnapshot, SnapshotError> {
        let seen = crate::archive::Ingested {
            rel_files: self.rel_files,
            ..Default::default()
        };
        let spec = seen.release(want)?;
        let mut apps = BTreeMap::new();
        for app in &spec.apps {
            let dir = format!("{}-{}", app.name, app.version);
            let mut snap = AppSnapshot {
                name: app.name.clone(),
                vsn: app.version.to_string(),
                ..Default::default()
            };
            for (_, m) in self.beams.iter().filter(|(d, _)| *d == dir) {
                snap.beams.insert(m.name.clone(), m.clone());
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
            apps.insert(app.name.clone(), snap);
        }
        Ok(ReleaseSnapshot { spec, apps })
    }
}

impl ReleaseSnapshot {
    /// Reads a release tar (plain, gzip or zstd). `want` picks a version when the archive
    /// holds several.
    pub fn from_tar<R: Read>(input: R, want: Option<&str>) -> Result<Self, SnapshotError> {
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
            builder.add(&path, bytes)?;
        }
        builder.finish(want)
    }
}

impl ReleaseSnapshot {
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

fn atom(s: &str) -> Term {
    Term::atom(s)
}

fn tuple(items: Vec<Term>) -> Term {
    Term::Tuple(items)
}

fn apply(f: &str, sup: &str, id: &Term) -> Term {
    tuple(vec![
        atom("apply"),
        tuple(vec![
            atom("supervisor"),
            atom(f),
            Term::List(vec![atom(sup), id.clone()]),
        ]),
    ])
}

/// The up instructions (and warnings) for one application from `old` to `new`.
pub fn up_instructions(old: &AppSnapshot, new: &AppSnapshot) -> (Vec<Term>, Vec<String>) {
    let mut warnings = Vec::new();
    let added: Vec<&ModuleSummary> = new
        .beams
        .values()
        .filter(|m| !old.beams.contains_key(&m.name))
        .collect();
    let deleted: Vec<&ModuleSummary> = old
        .beams
        .values()
        .filter(|m| !new.beams.contains_key(&m.name))
        .collect();
    let changed: Vec<(&ModuleSummary, &ModuleSummary)> = new
        .beams
        .values()
        .filter_map(|m| {
            old.beams
                .get(&m.name)
                .filter(|o| o.identity != m.identity)
                .map(|o| (o, m))
        })
        .collect();
    let touched: BTreeSet<&str> = added
        .iter()
        .map(|m| m.name.as_str())
        .chain(changed.iter().map(|(_, m)| m.name.as_str()))
        .collect();
    let deps = |m: &ModuleSummary| -> Term {
        Term::List(
            m.calls
                .iter()
                .filter(|c| touched.contains(c.as_str()) && **c != m.name)
                .map(|c| atom(c))
                .collect(),
        )
    };
    let mut up = Vec::new();
    for m in &added {
        up.push(tuple(vec![atom("add_module"), atom(&m.name), deps(m)]));
    }
    let mut sups = Vec::new();
    for (o, m) in &changed {
        if m.is_supervisor() {
            sups.push((*o, *m));
        } else if m.is_process() {
            up.push(tuple(vec![
                atom("update"),
                atom(&m.name),
                tuple(vec![atom("advanced"), Term::List(vec![])]),
                deps(m),
            ]));
        } else {
            up.push(tuple(vec![atom("load_module"), atom(&m.name), deps(m)]));
        }
    }
    for (o, m) in sups {
        let (gained, lost) = match (&o.child_ids, &m.child_ids) {
            (Some(old_ids), Some(new_ids)) => (
                new_ids
                    .iter()
                    .filter(|i| !old_ids.contains(i))
                    .cloned()
                    .collect::<Vec<_>>(),
                old_ids
                    .iter()
                    .filter(|i| !new_ids.contains(i))
                    .cloned()
                    .collect::<Vec<_>>(),
            ),
            _ => {
                warnings.push(format!(
                    "{}: cannot find the child specs of supervisor {} among its literals; if its children changed, add restart_child/terminate_child instructions yourself",
                    new.name, m.name
                ));
                (vec![], vec![])
            }
        };
        for id in &lost {
            up.push(apply("terminate_child", &m.name, id));
            up.push(apply("delete_child", &m.name, id));
        }
        up.push(tuple(vec![atom("update"), atom(&m.name), atom("supervisor")]));
        for id in &gained {
            up.push(apply("restart_child", &m.name, id));
        }
    }
    for m in &deleted {
        up.push(tuple(vec![atom("delete_module"), atom(&m.name)]));
    }
    (up, warnings)
}

/// The down instructions: the up list inverted and reversed.
pub fn invert(up: &[Term]) -> Vec<Term> {
    let mut down = Vec::new();
    let mut i = 0;
    while i < up.len() {
        let instr = &up[i];
        let t = instr.as_tuple().unwrap_or(&[]);
        let name = t.first().and_then(Term::as_atom);
        let apply_of = |x: &Term| -> Option<(String, String, Term)> {
            let mfa = x.as_tuple()?.get(1)?.as_tuple()?;
            let args = mfa.get(2)?.as_list()?;
            Some((
                mfa.get(1)?.as_atom()?.to_owned(),
                args.first()?.as_atom()?.to_owned(),
                args.get(1)?.clone(),
            ))
        };
        match name {
            Some("add_module") => down.push(vec![tuple(vec![atom("delete_module"), t[1].clone()])]),
            Some("delete_module") => down.push(vec![tuple(vec![atom("add_module"), t[1].clone(), Term::List(vec![])])]),
            Some("apply") => match apply_of(instr) {
                Some((f, sup, id)) if f == "restart_child" => {
                    down.push(vec![
                        apply("terminate_child", &sup, &id),
                        apply("delete_child", &sup, &id),
                    ]);
                }
                Some((f, sup, id))
                    if f == "terminate_child"
                        && up
                            .get(i + 1)
                            .and_then(apply_of)
                            .is_some_and(|(g, _, _)| g == "delete_child") =>
                {
                    down.push(vec![apply("restart_child", &sup, &id)]);
                    i += 1;
                }
                _ => down.push(vec![instr.clone()]),
            },
            _ => down.push(vec![instr.clone()]),
        }
        i += 1;
    }
    down.into_iter().rev().flatten().collect()
}

/// User additions around the generated instructions of one application.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub up_before: Vec<Term>,
    pub up_after: Vec<Term>,
    pub down_before: Vec<Term>,
    pub down_after: Vec<Term>,
}

/// Where an appup came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppupSource {
    Generated,
    /// Shipped in the new release's `ebin/`.
    Shipped,
    /// Given by the user.
    User,
}

/// The appup of one application for an upgrade to `new` from each of `olds`.
#[derive(Debug, Clone)]
pub struct AppupPlan {
    pub app: String,
    pub to_vsn: String,
    pub from_vsns: Vec<String>,
    pub appup: Term,
    pub source: AppupSource,
    pub warnings: Vec<String>,
}

/// Generates (or takes, when shipped or given) the appups for upgrading to `to` from every
/// release of `froms`. `user(app)` returns a user-supplied appup, which wins; an appup shipped
/// in `to` wins over generation when it has clauses for every from-version.
pub fn plan_appups(
    froms: &[&ReleaseSnapshot],
    to: &ReleaseSnapshot,
    user: &dyn Fn(&str) -> Option<Term>,
    extra: &dyn Fn(&str) -> Option<Extra>,
) -> (Vec<AppupPlan>, Vec<String>) {
    let mut plans = Vec::new();
    let mut warnings = Vec::new();
    // Code changed under an unchanged vsn: OTP will not upgrade it.
    for from in froms {
        for (name, new) in &to.apps {
            if let Some(old) = from.apps.get(name).filter(|o| o.vsn == new.vsn) {
                let differs: Vec<&str> = new
                    .beams
                    .values()
                    .filter(|m| old.beams.get(&m.name).is_none_or(|o| o.identity != m.identity))
                    .map(|m| m.name.as_str())
                    .chain(
                        old.beams
                            .keys()
                            .filter(|k| !new.beams.contains_key(*k))
                            .map(String::as_str),
                    )
                    .collect();
                if !differs.is_empty() {
                    warnings.push(format!(
                        "{name} {}: code changed ({}) but the vsn did not; OTP will not upgrade it: bump its vsn",
                        new.vsn,
                        differs.join(", ")
                    ));
                }
            }
        }
    }
    for (name, new) in &to.apps {
        let olds: Vec<&AppSnapshot> = froms
            .iter()
            .filter_map(|f| f.apps.get(name))
            .filter(|o| o.vsn != new.vsn)
            .collect();
        if olds.is_empty() {
            continue;
        }
        let mut from_vsns: Vec<String> = olds.iter().map(|o| o.vsn.clone()).collect();
        from_vsns.dedup();
        let covers = |appup: &Term| -> bool {
            appup.as_tuple().filter(|t| t.len() == 3).is_some_and(|t| {
                let (up, down) = (t[1].as_list().unwrap_or_default(), t[2].as_list().unwrap_or_default());
                from_vsns.iter().all(|v| {
                    crate::relup::appup_search_for_version(v, &up).is_some()
                        && crate::relup::appup_search_for_version(v, &down).is_some()
                })
            })
        };
        let plan = |appup, source, warnings| AppupPlan {
            app: name.clone(),
            to_vsn: new.vsn.clone(),
            from_vsns: from_vsns.clone(),
            appup,
            source,
            warnings,
        };
        if let Some(appup) = user(name) {
            plans.push(plan(appup, AppupSource::User, vec![]));
            continue;
        }
        if let Some(appup) = new.appup.as_ref().filter(|a| covers(a)) {
            plans.push(plan(appup.clone(), AppupSource::Shipped, vec![]));
            continue;
        }
        let ex = extra(name).unwrap_or_default();
        let mut ups = Vec::new();
        let mut downs = Vec::new();
        let mut ws = Vec::new();
        for vsn in &from_vsns {
            let old = olds.iter().find(|o| &o.vsn == vsn).expect("from a from-version");
            let (up, w) = up_instructions(old, new);
            ws.extend(w);
            let down = invert(&up);
            let up = [ex.up_before.clone(), up, ex.up_after.clone()].concat();
            let down = [ex.down_before.clone(), down, ex.down_after.clone()].concat();
            ups.push(tuple(vec![Term::string(vsn), Term::List(up)]));
            downs.push(tuple(vec![Term::string(vsn), Term::List(down)]));
        }
        ws.dedup();
        plans.push(plan(
            tuple(vec![Term::string(&new.vsn), Term::List(ups), Term::List(downs)]),
            AppupSource::Generated,
            ws,
        ));
    }
    (plans, warnings)
}

/// An appup as a file OTP reads: a header comment and the term.
pub fn render(plan: &AppupPlan) -> String {
    let source = match plan.source {
        AppupSource::Generated => "generated by rel",
        AppupSource::Shipped => "shipped with the release",
        AppupSource::User => "given by the user",
    };
    let mut out = format!("%% {} {}: {source}.\n", plan.app, plan.to_vsn);
    let t = plan.appup.as_tuple().expect("appups are tuples");
    out.push_str(&format!("{{{},\n [", t[0]));
    for (i, c) in t[1].as_list().unwrap_or_default().iter().enumerate() {
        out.push_str(&format!("{}{}", if i > 0 { ",\n  " } else { "" }, c));
    }
    out.push_str("],\n [");
    for (i, c) in t[2].as_list().unwrap_or_default().iter().enumerate() {
        out.push_str(&format!("{}{}", if i > 0 { ",\n  " } else { "" }, c));
    }
    out.push_str("]}.\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, version: u8) -> ModuleSummary {
        ModuleSummary {
            name: name.into(),
            identity: [version; 32],
            behaviours: vec![],
            code_change: false,
            calls: BTreeSet::new(),
            child_ids: None,
        }
    }

    fn app(vsn: &str, mods: Vec<ModuleSummary>) -> AppSnapshot {
        AppSnapshot {
            name: "x".into(),
            vsn: vsn.into(),
            app_modules: mods.iter().map(|m| m.name.clone()).collect(),
            beams: mods.into_iter().map(|m| (m.name.clone(), m)).collect(),
            appup: None,
        }
    }

    #[test]
    fn classifies_modules() {
        let mut server = m("srv", 2);
        server.behaviours = vec!["Elixir.GenServer".into()];
        server.calls = ["lib".to_owned(), "gen_server".to_owned()].into();
        let mut sup_old = m("sup", 1);
        sup_old.behaviours = vec!["supervisor".into()];
        sup_old.child_ids = Some(vec![Term::atom("srv"), Term::atom("gone")]);
        let mut sup_new = m("sup", 2);
        sup_new.behaviours = vec!["supervisor".into()];
        sup_new.child_ids = Some(vec![Term::atom("srv"), Term::atom("wrk")]);
        let old = app("1", vec![m("srv", 1), m("lib", 1), m("same", 1), m("old", 1), sup_old]);
        let new = app("2", vec![server, m("lib", 2), m("same", 1), m("wrk", 1), sup_new]);
        let (up, warnings) = up_instructions(&old, &new);
        let text: Vec<String> = up.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "{add_module,wrk,[]}",
                "{load_module,lib,[]}",
                "{update,srv,{advanced,[]},[lib]}",
                "{apply,{supervisor,terminate_child,[sup,gone]}}",
                "{apply,{supervisor,delete_child,[sup,gone]}}",
                "{update,sup,supervisor}",
                "{apply,{supervisor,restart_child,[sup,wrk]}}",
                "{delete_module,old}",
            ]
        );
        assert!(warnings.is_empty());
        let down: Vec<String> = invert(&up).iter().map(ToString::to_string).collect();
        assert_eq!(
            down,
            vec![
                "{add_module,old,[]}",
                "{apply,{supervisor,terminate_child,[sup,wrk]}}",
                "{apply,{supervisor,delete_child,[sup,wrk]}}",
                "{update,sup,supervisor}",
                "{apply,{supervisor,restart_child,[sup,gone]}}",
                "{update,srv,{advanced,[]},[lib]}",
                "{load_module,lib,[]}",
                "{delete_module,wrk}",
            ]
        );
    }

    #[test]
    fn warns_when_child_specs_are_unknown() {
        let mut s1 = m("sup", 1);
        s1.behaviours = vec!["supervisor".into()];
        let mut s2 = m("sup", 2);
        s2.behaviours = vec!["supervisor".into()];
        let (up, warnings) = up_instructions(&app("1", vec![s1]), &app("2", vec![s2]));
        assert_eq!(
            up,
            vec![Term::Tuple(vec![
                Term::atom("update"),
                Term::atom("sup"),
                Term::atom("supervisor")
            ])]
        );
        assert!(
            warnings[0].contains("cannot find the child specs of supervisor sup"),
            "{warnings:?}"
        );
    }
}
