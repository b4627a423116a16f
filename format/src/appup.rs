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

use std::collections::BTreeSet;

use crate::snapshot::{AppSnapshot, ModuleSummary, ReleaseSnapshot};
use crate::term::{Term, TermError, parse_terms};

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
