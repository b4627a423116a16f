//! Appups from two releases' snapshots ([`crate::snapshot`]): generated from their BEAM files,
//! or taken from the release or the user, with the user's additions (`.extra`).
//!
//! For every application present in both releases with a different vsn, each module is
//! classified by comparing what `beam_lib:md5/1` hashes (see [`crate::beam::Beam::identity`]) and reading
//! the **new** beam:
//!
//! | situation | up | down |
//! |---|---|---|
//! | only in the new release | `{add_module, M, Deps}` | `{delete_module, M}` |
//! | only in the old release | `{delete_module, M}` | `{add_module, M, []}` |
//! | same md5 | nothing | nothing |
//! | supervisor callback module (`supervisor`, `Elixir.Supervisor`, `supervisor_bridge`) | `{update, M, supervisor}`, with child instructions around it (see `supervisors.rs`) | the same, children the other way |
//! | exports `code_change/3,4` or `system_code_change/4`, or a gen_server / gen_statem / gen_event / gen_fsm behaviour (Erlang or Elixir) | `{update, M, {advanced, []}, Deps}` | the same (OTP runs `code_change({down, Vsn}, ...)`) |
//! | any other change | `{load_module, M, Deps}` | the same |
//!
//! `Deps` are the modules the new beam calls (its import table) that also have an
//! instruction in this appup, so `systools`/rel order them. Up instructions are: added
//! modules, changed modules, supervisors with their child instructions (callback modules,
//! then supervisors started inline by changed modules), deleted modules.
//!
//! Each step is generated with its own inverse, and the down list is the steps' inverses in
//! reverse order: a module added on the way up is deleted last on the way down, after the
//! child that runs it was stopped; a child removed on the way up is started again on the way
//! down after its module is back. (The down list cannot be computed from the up list alone:
//! restarting a child an inline supervisor lost needs the child as the *old* code wrote it.)

mod supervisors;

use std::collections::BTreeSet;

use crate::snapshot::{AppSnapshot, ModuleSummary, ReleaseSnapshot};
use crate::supervision::SupervisionIndex;
use crate::term::{Term, TermError, parse_terms};

fn atom(s: &str) -> Term {
    Term::atom(s)
}

fn tuple(items: Vec<Term>) -> Term {
    Term::Tuple(items)
}

/// One step of an upgrade: its instructions on the way up, and those that undo it on the way
/// down.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    up: Vec<Term>,
    down: Vec<Term>,
}

impl Step {
    /// A step that is its own inverse (`load_module`, `update`).
    fn both(instruction: Term) -> Step {
        Step {
            up: vec![instruction.clone()],
            down: vec![instruction],
        }
    }
}

/// One application's generated appup clause for one from-version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clause {
    pub up: Vec<Term>,
    pub down: Vec<Term>,
    pub warnings: Vec<String>,
}

/// One side of an upgrade: an application, and its release's supervision summaries (child
/// specs and supervisor names may come from other applications).
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    pub app: &'a AppSnapshot,
    pub index: &'a SupervisionIndex<'a>,
}

/// The generated instructions (and warnings) for one application from `old` to `new`.
/// `extra` is the user's `.extra` for it: a supervisor it addresses gets no warning.
pub fn clause(old: Side<'_>, new: Side<'_>, extra: &Extra) -> Clause {
    let (o, n) = (old.app, new.app);
    let added: Vec<&ModuleSummary> = n.beams.values().filter(|m| !o.beams.contains_key(&m.name)).collect();
    let deleted: Vec<&ModuleSummary> = o.beams.values().filter(|m| !n.beams.contains_key(&m.name)).collect();
    let changed: Vec<(&ModuleSummary, &ModuleSummary)> = n
        .beams
        .values()
        .filter_map(|m| {
            o.beams
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
    let mut steps = Vec::new();
    for m in &added {
        steps.push(Step {
            up: vec![tuple(vec![atom("add_module"), atom(&m.name), deps(m)])],
            down: vec![tuple(vec![atom("delete_module"), atom(&m.name)])],
        });
    }
    for (_, m) in &changed {
        if m.is_supervisor() {
            continue;
        } else if m.is_process() {
            steps.push(Step::both(tuple(vec![
                atom("update"),
                atom(&m.name),
                tuple(vec![atom("advanced"), Term::List(vec![])]),
                deps(m),
            ])));
        } else {
            steps.push(Step::both(tuple(vec![atom("load_module"), atom(&m.name), deps(m)])));
        }
    }
    let mut children = supervisors::Children::new(&n.name, old.index, new.index, extra);
    for (_, m) in changed.iter().filter(|(_, m)| m.is_supervisor()) {
        steps.extend(children.callback_module(&m.name));
    }
    for (_, m) in &changed {
        steps.extend(children.inline(&m.name));
    }
    let warnings = children.warnings;
    for m in &deleted {
        steps.push(Step {
            up: vec![tuple(vec![atom("delete_module"), atom(&m.name)])],
            down: vec![tuple(vec![atom("add_module"), atom(&m.name), Term::List(vec![])])],
        });
    }
    Clause {
        up: steps.iter().flat_map(|s| s.up.iter().cloned()).collect(),
        down: steps.iter().rev().flat_map(|s| s.down.iter().cloned()).collect(),
        warnings,
    }
}

/// User additions around the generated instructions of one application: the terms of an
/// `<app>.extra` file (SPEC.md §8.2), each `{up_before | up_after | down_before | down_after,
/// [Instruction]}`.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub up_before: Vec<Term>,
    pub up_after: Vec<Term>,
    pub down_before: Vec<Term>,
    pub down_after: Vec<Term>,
}

/// Why an `.extra` file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ExtraError {
    #[error(transparent)]
    Term(#[from] TermError),
    #[error("{file}: expected {{up_before | up_after | down_before | down_after, [Instructions]}}, found `{found}`")]
    Shape { file: String, found: String },
    #[error("{file}: unknown key `{key}` (use up_before, up_after, down_before or down_after)")]
    UnknownKey { file: String, key: String },
}

impl Extra {
    /// Parses the text of an `.extra` file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, ExtraError> {
        let mut extra = Extra::default();
        for t in parse_terms(file, text)? {
            let shape = || ExtraError::Shape {
                file: file.to_owned(),
                found: t.to_string(),
            };
            let Some([key, list]) = t.as_tuple() else {
                return Err(shape());
            };
            let (Some(key), Some(list)) = (key.as_atom(), list.as_list()) else {
                return Err(shape());
            };
            let slot = match key {
                "up_before" => &mut extra.up_before,
                "up_after" => &mut extra.up_after,
                "down_before" => &mut extra.down_before,
                "down_after" => &mut extra.down_after,
                other => {
                    return Err(ExtraError::UnknownKey {
                        file: file.to_owned(),
                        key: other.to_owned(),
                    });
                }
            };
            *slot = list.into_owned();
        }
        Ok(extra)
    }
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
    // Consolidated protocols are swapped in the relup, not loaded from `ebin`
    // (`crate::protocols`).
    let protocols = crate::protocols::consolidated_modules(to, froms);
    let without = |r: &ReleaseSnapshot| -> ReleaseSnapshot {
        let mut r = r.clone();
        for app in r.apps.values_mut() {
            app.beams.retain(|m, _| !protocols.contains(m));
        }
        r
    };
    let (to, froms): (&ReleaseSnapshot, Vec<ReleaseSnapshot>) =
        (&without(to), froms.iter().map(|f| without(f)).collect());
    let froms: Vec<&ReleaseSnapshot> = froms.iter().collect();
    let mut plans = Vec::new();
    let mut warnings = Vec::new();
    let to_index = to.supervision();
    let from_indexes: Vec<SupervisionIndex<'_>> = froms.iter().map(|f| f.supervision()).collect();
    // Code changed under an unchanged vsn: OTP will not upgrade it.
    for from in &froms {
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
        let olds: Vec<(&AppSnapshot, &SupervisionIndex<'_>)> = froms
            .iter()
            .zip(&from_indexes)
            .filter_map(|(f, index)| f.apps.get(name).map(|a| (a, index)))
            .filter(|(o, _)| o.vsn != new.vsn)
            .collect();
        if olds.is_empty() {
            continue;
        }
        let mut from_vsns: Vec<String> = olds.iter().map(|(o, _)| o.vsn.clone()).collect();
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
            let &(old, old_index) = olds.iter().find(|(o, _)| &o.vsn == vsn).expect("from a from-version");
            let Clause { up, down, warnings: w } = clause(
                Side {
                    app: old,
                    index: old_index,
                },
                Side {
                    app: new,
                    index: &to_index,
                },
                &ex,
            );
            for w in w {
                if !ws.contains(&w) {
                    ws.push(w);
                }
            }
            let up = [ex.up_before.clone(), up, ex.up_after.clone()].concat();
            let down = [ex.down_before.clone(), down, ex.down_after.clone()].concat();
            ups.push(tuple(vec![Term::string(vsn), Term::List(up)]));
            downs.push(tuple(vec![Term::string(vsn), Term::List(down)]));
        }
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
    use crate::supervision::{Declared, Deferred, Expr, Name, Start, Started, Supervision};

    fn m(name: &str, version: u8) -> ModuleSummary {
        ModuleSummary {
            name: name.into(),
            identity: [version; 32],
            behaviours: vec![],
            code_change: false,
            calls: BTreeSet::new(),
            supervision: Deferred::known(Supervision::default()),
        }
    }

    /// A supervisor module registered under its name, whose `init/1` gives these children.
    fn sup(version: u8, children: Vec<Expr>) -> ModuleSummary {
        let mut s = m("sup", version);
        s.behaviours = vec!["supervisor".into()];
        s.supervision = Deferred::known(Supervision {
            init: Some(
                children
                    .into_iter()
                    .map(|child| Declared {
                        child,
                        conditional: false,
                    })
                    .collect(),
            ),
            starts: vec![Start {
                function: "start_link/0".into(),
                supervisor: Started::Module("sup".into()),
                name: Name::Registered(Term::atom("sup")),
            }],
            child_spec: None,
        });
        s
    }

    fn spec(id: &str) -> Expr {
        Expr::term(
            crate::term::parse_term("t", &format!("#{{id => {id}, start => {{{id}, start_link, []}}}}.")).unwrap(),
        )
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

    fn index(app: &AppSnapshot) -> SupervisionIndex<'_> {
        SupervisionIndex::new(app.beams.values().map(|m| (m.name.as_str(), &m.supervision)))
    }

    fn generate(old: &AppSnapshot, new: &AppSnapshot) -> Clause {
        let (o, n) = (index(old), index(new));
        clause(
            Side { app: old, index: &o },
            Side { app: new, index: &n },
            &Extra::default(),
        )
    }

    #[test]
    fn classifies_modules() {
        let mut server = m("srv", 2);
        server.behaviours = vec!["Elixir.GenServer".into()];
        server.calls = ["lib".to_owned(), "gen_server".to_owned()].into();
        let sup_old = sup(1, vec![spec("srv"), spec("gone")]);
        let sup_new = sup(2, vec![spec("srv"), spec("wrk")]);
        let old = app("1", vec![m("srv", 1), m("lib", 1), m("same", 1), m("old", 1), sup_old]);
        let new = app("2", vec![server, m("lib", 2), m("same", 1), m("wrk", 1), sup_new]);
        let Clause { up, down, warnings } = generate(&old, &new);
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
        assert!(warnings.is_empty(), "{warnings:?}");
        let down: Vec<String> = down.iter().map(ToString::to_string).collect();
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
    fn warns_when_a_child_id_is_unknown_unless_the_extra_addresses_the_supervisor() {
        let runtime = Expr::unknown("<the argument of init/1>");
        let old = app("1", vec![sup(1, vec![spec("a")])]);
        let new = app("2", vec![sup(2, vec![spec("a"), runtime])]);
        let Clause { up, warnings, .. } = generate(&old, &new);
        assert_eq!(
            up,
            vec![Term::Tuple(vec![
                Term::atom("update"),
                Term::atom("sup"),
                Term::atom("supervisor")
            ])]
        );
        assert_eq!(
            warnings,
            vec![
                "x: supervisor sup: rel cannot know the id of child `<the argument of init/1>`: it is only known at \
                 run time (<the argument of init/1>). If that child is new, add to x.extra (Id being its id):\n    \
                 {up_after, [{apply,{supervisor,restart_child,[sup,Id]}}]}.\n    \
                 {down_before, [{apply,{supervisor,terminate_child,[sup,Id]}}, \
                 {apply,{supervisor,delete_child,[sup,Id]}}]}."
            ]
        );
        let extra = Extra::parse(
            "x.extra",
            "{up_after, [{apply, {supervisor, restart_child, [sup, b]}}]}.",
        )
        .unwrap();
        let (o, n) = (index(&old), index(&new));
        let covered = clause(Side { app: &old, index: &o }, Side { app: &new, index: &n }, &extra);
        assert!(covered.warnings.is_empty(), "{:?}", covered.warnings);
    }
}
