//! Appups from two releases' snapshots ([`crate::snapshot`]): generated from their BEAM files,
//! or taken from the release or the user, with the user's additions (`.extra`).
//!
//! For every application present in both releases with a different vsn, each module is
//! classified by comparing what `beam_lib:md5/1` hashes (see [`crate::beam::Beam::identity`]) and reading
//! the **new** beam:
//!
//! | situation | up | down |
//! |---|---|---|
//! | only in the new release | `{add_module, M, Deps}` | drain, `{delete_module, M}` |
//! | only in the old release | drain, `{delete_module, M}` | `{add_module, M, []}` |
//! | same md5 | nothing | nothing |
//! | supervisor callback module (`supervisor`, `Elixir.Supervisor`, `supervisor_bridge`) | `{update, M, supervisor}`, with child instructions around it (see `supervisors.rs`) | the same, children the other way |
//! | exports `code_change/3,4` or `system_code_change/4`, or a gen_server / gen_statem / gen_event / gen_fsm behaviour (Erlang or Elixir) | `{update, M, {advanced, []}, Deps}` | the same (OTP runs `code_change({down, Vsn}, ...)`) |
//! | any other change | `{load_module, M, Deps}` | the same |
//!
//! `Deps` are the modules the new beam calls (its import table) that also have an
//! instruction in this appup, so `systools`/rel order them; on the way down only the changed
//! ones (a module that goes is not a dependency, see below).
//!
//! Both directions run in the same order: code first (added modules, then changed ones),
//! then processes (supervisors and their children: a child is stopped only once the code
//! that calls it is gone, started only once its code is there), then the deleted modules.
//! Each process step is generated with its own inverse, since undoing one needs the child as
//! the *old* code wrote it, and the down list undoes them in reverse order.
//!
//! Deleting a module is the one step a request in flight can trip on: a process that entered
//! the old code of a caller just before it was reloaded calls the deleted module when it
//! returns from, say, a suspended server, and gets `undef`. So when reloaded code calls a
//! module that goes, a drain precedes the deletions: `{apply, {erl_eval, exprs, ...}}` that
//! waits (at most [`DRAIN_MS`]) until no process runs the old code of those callers. It is
//! documented OTP (`erl_eval:exprs/2` on abstract format) and needs no module of rel's on the
//! node.

mod supervisors;

use std::borrow::Cow;
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
    let names =
        |ms: &mut dyn Iterator<Item = &ModuleSummary>| -> BTreeSet<String> { ms.map(|m| m.name.clone()).collect() };
    let changed_names = names(&mut changed.iter().map(|(_, m)| *m));
    let touched: BTreeSet<String> = changed_names
        .iter()
        .cloned()
        .chain(names(&mut added.iter().copied()))
        .collect();
    // On the way up a module is loaded after the changed or added modules it calls; on the way
    // down before the changed ones (OTP reverses the order), and never tied to a module that
    // goes: that removal must wait for the old code to drain (`drain`), not run inside a group
    // whose processes are suspended.
    let deps = |m: &ModuleSummary, among: &BTreeSet<String>| -> Term {
        Term::List(
            m.calls
                .iter()
                .filter(|c| among.contains(*c) && **c != m.name)
                .map(|c| atom(c))
                .collect(),
        )
    };
    let mut code = Vec::new();
    for (_, m) in changed.iter().filter(|(_, m)| !m.is_supervisor()) {
        let (up, down) = (deps(m, &touched), deps(m, &changed_names));
        let instruction = |deps: Term| {
            if m.is_process() {
                tuple(vec![
                    atom("update"),
                    atom(&m.name),
                    tuple(vec![atom("advanced"), extra.code_change_extra(&m.name, &o.vsn)]),
                    deps,
                ])
            } else {
                tuple(vec![atom("load_module"), atom(&m.name), deps])
            }
        };
        code.push(Step {
            up: vec![instruction(up)],
            down: vec![instruction(down)],
        });
    }
    let mut children = supervisors::Children::new(&n.name, old.index, new.index, extra);
    let mut processes = Vec::new();
    for (_, m) in changed.iter().filter(|(_, m)| m.is_supervisor()) {
        processes.extend(children.callback_module(&m.name));
    }
    for (_, m) in &changed {
        processes.extend(children.inline(&m.name));
    }
    let warnings = children.warnings;

    let mut up: Vec<Term> = added
        .iter()
        .map(|m| tuple(vec![atom("add_module"), atom(&m.name), deps(m, &touched)]))
        .collect();
    up.extend(code.iter().chain(&processes).flat_map(|s| s.up.iter().cloned()));
    up.extend(drain_before(&deleted, changed.iter().map(|(o, _)| *o)));
    up.extend(
        deleted
            .iter()
            .map(|m| tuple(vec![atom("delete_module"), atom(&m.name)])),
    );

    let mut down: Vec<Term> = deleted
        .iter()
        .map(|m| tuple(vec![atom("add_module"), atom(&m.name), Term::List(vec![])]))
        .collect();
    down.extend(code.iter().rev().flat_map(|s| s.down.iter().cloned()));
    down.extend(processes.iter().rev().flat_map(|s| s.down.iter().cloned()));
    down.extend(drain_before(&added, changed.iter().map(|(_, n)| *n)));
    down.extend(
        added
            .iter()
            .rev()
            .map(|m| tuple(vec![atom("delete_module"), atom(&m.name)])),
    );
    Clause { up, down, warnings }
}

/// How long a drain waits, at most, for processes to leave the old code that may call a
/// module about to be deleted. After it, OTP's `brutal_purge` applies as it always would.
pub const DRAIN_MS: u64 = 5_000;

/// What a drain runs, with `Modules` (the callers) and `Ms` ([`DRAIN_MS`]) bound: it
/// returns `ok` once no process runs the old code of any of `Modules`, or at the deadline.
pub const DRAIN_SOURCE: &str = "\
Old = [M || M <- Modules, erlang:check_old_code(M)],
Deadline = erlang:monotonic_time(millisecond) + Ms,
Busy = fun() -> [P || P <- erlang:processes(), M <- Old, erlang:check_process_code(P, M)] end,
Wait = fun W() ->
           case Busy() =:= [] orelse erlang:monotonic_time(millisecond) >= Deadline of
               true -> ok;
               false -> receive after 10 -> W() end
           end
       end,
Wait().
";

/// [`DRAIN_SOURCE`] in the abstract format `erl_eval:exprs/2` evaluates, as
/// `erl_parse:parse_exprs/1` gives it (a test checks this against OTP).
pub const DRAIN_EXPRS: &str = "[{match,1,{var,1,'Old'},{lc,1,{var,1,'M'},[{generate,1,{var,1,'M'},{var,1,'Modules'}},{call,1,{remote,1,{atom,1,erlang},{atom,1,check_old_code}},[{var,1,'M'}]}]}},{match,2,{var,2,'Deadline'},{op,2,'+',{call,2,{remote,2,{atom,2,erlang},{atom,2,monotonic_time}},[{atom,2,millisecond}]},{var,2,'Ms'}}},{match,3,{var,3,'Busy'},{'fun',3,{clauses,[{clause,3,[],[],[{lc,3,{var,3,'P'},[{generate,3,{var,3,'P'},{call,3,{remote,3,{atom,3,erlang},{atom,3,processes}},[]}},{generate,3,{var,3,'M'},{var,3,'Old'}},{call,3,{remote,3,{atom,3,erlang},{atom,3,check_process_code}},[{var,3,'P'},{var,3,'M'}]}]}]}]}}},{match,4,{var,4,'Wait'},{named_fun,4,'W',[{clause,4,[],[],[{'case',5,{op,5,'orelse',{op,5,'=:=',{call,5,{var,5,'Busy'},[]},{nil,5}},{op,5,'>=',{call,5,{remote,5,{atom,5,erlang},{atom,5,monotonic_time}},[{atom,5,millisecond}]},{var,5,'Deadline'}}},[{clause,6,[{atom,6,true}],[],[{atom,6,ok}]},{clause,7,[{atom,7,false}],[],[{'receive',7,[],{integer,7,10},[{call,7,{var,7,'W'},[]}]}]}]}]}]}},{call,10,{var,10,'Wait'},[]}]";

/// Before `gone` are deleted: wait until no process runs the old code of a reloaded module
/// that calls one of them. A request that entered the old code just before its module was
/// reloaded would otherwise call a module that is no longer there (`undef`). Empty when
/// nothing deleted is called from reloaded code.
fn drain_before<'a>(gone: &[&ModuleSummary], running: impl Iterator<Item = &'a ModuleSummary>) -> Option<Term> {
    drain(
        running
            .filter(|m| gone.iter().any(|g| m.calls.contains(&g.name)))
            .map(|m| m.name.clone())
            .collect(),
    )
}

/// The instruction that waits (at most [`DRAIN_MS`]) until no process runs the old code of
/// `callers`; `None` when there are none.
pub(crate) fn drain(callers: Vec<String>) -> Option<Term> {
    if callers.is_empty() {
        return None;
    }
    let callers = callers.iter().map(|c| atom(c)).collect();
    let exprs = parse_terms("drain", &format!("{DRAIN_EXPRS}."))
        .expect("the drain parses")
        .remove(0);
    let bindings = Term::List(vec![
        tuple(vec![atom("Modules"), Term::List(callers)]),
        tuple(vec![atom("Ms"), Term::Integer(DRAIN_MS.into())]),
    ]);
    Some(tuple(vec![
        atom("apply"),
        tuple(vec![atom("erl_eval"), atom("exprs"), Term::List(vec![exprs, bindings])]),
    ]))
}

/// User additions to the generated instructions of one application: the terms of an
/// `<app>.extra` file (SPEC.md §8.2), each `{up_before | up_after | down_before | down_after,
/// [Instruction]}` or `{code_change, [{Module, FromVsn | '_', Extra}]}`.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Extra {
    #[serde(with = "crate::term::stored::list")]
    pub up_before: Vec<Term>,
    #[serde(with = "crate::term::stored::list")]
    pub up_after: Vec<Term>,
    #[serde(with = "crate::term::stored::list")]
    pub down_before: Vec<Term>,
    #[serde(with = "crate::term::stored::list")]
    pub down_after: Vec<Term>,
    /// The `Extra` of `{update, M, {advanced, Extra}, _}` per module and from-version (`None`:
    /// any), both ways: what `code_change/3` is given, for instance which older shape a
    /// downgrade across skipped versions should produce.
    pub code_change: Vec<CodeChangeExtra>,
}

/// One `{Module, FromVsn | '_', Extra}` of an `.extra`'s `code_change` list.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CodeChangeExtra {
    pub module: String,
    pub from: Option<String>,
    #[serde(with = "crate::term::stored")]
    pub extra: Term,
}

/// Why an `.extra` file was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ExtraError {
    #[error(transparent)]
    Term(#[from] TermError),
    #[error(
        "{file}: expected {{up_before | up_after | down_before | down_after, [Instructions]}} or {{code_change, [{{Module, FromVsn, Extra}}]}}, found `{found}`"
    )]
    Shape { file: String, found: String },
    #[error("{file}: unknown key `{key}` (use up_before, up_after, down_before, down_after or code_change)")]
    UnknownKey { file: String, key: String },
    #[error("{file}: code_change wants {{Module, FromVsn, Extra}} with FromVsn a string or '_', found `{found}`")]
    CodeChange { file: String, found: String },
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
                "code_change" => {
                    for entry in list.iter() {
                        let bad = || ExtraError::CodeChange {
                            file: file.to_owned(),
                            found: entry.to_string(),
                        };
                        let Some([module, from, value]) = entry.as_tuple() else {
                            return Err(bad());
                        };
                        let module = module.as_atom().ok_or_else(bad)?.to_owned();
                        let from = match from.as_atom() {
                            Some("_") => None,
                            _ => Some(from.as_string().ok_or_else(bad)?),
                        };
                        extra.code_change.push(CodeChangeExtra {
                            module,
                            from,
                            extra: value.clone(),
                        });
                    }
                    continue;
                }
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

    /// The `code_change` Extra for `module` upgraded from application vsn `from`: the entry
    /// for that vsn, else the one for any (`'_'`), else `[]`.
    pub fn code_change_extra(&self, module: &str, from: &str) -> Term {
        let for_module = || self.code_change.iter().filter(|c| c.module == module);
        for_module()
            .find(|c| c.from.as_deref() == Some(from))
            .or_else(|| for_module().find(|c| c.from.is_none()))
            .map_or_else(|| Term::List(vec![]), |c| c.extra.clone())
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
    fn without<'a>(r: &'a ReleaseSnapshot, protocols: &BTreeSet<String>) -> Cow<'a, ReleaseSnapshot> {
        if protocols.is_empty() {
            return Cow::Borrowed(r);
        }
        let mut r = r.clone();
        for app in r.apps.values_mut() {
            app.beams.retain(|m, _| !protocols.contains(m));
        }
        Cow::Owned(r)
    }
    let to = without(to, &protocols);
    let to: &ReleaseSnapshot = &to;
    let froms: Vec<Cow<'_, ReleaseSnapshot>> = froms.iter().map(|f| without(f, &protocols)).collect();
    let froms: Vec<&ReleaseSnapshot> = froms.iter().map(|f| &**f).collect();
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
        // The user's `.extra` wins over the one the new release ships.
        let ex = extra(name).or_else(|| new.extra.clone()).unwrap_or_default();
        let mut ups = Vec::new();
        let mut downs = Vec::new();
        let mut ws = Vec::new();
        // (module, from, whether an update of it from there was generated)
        let mut applied: Vec<(String, Option<String>, bool)> = Vec::new();
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
            for c in &ex.code_change {
                if c.from.as_ref().is_none_or(|f| f == vsn) {
                    applied.push((c.module.clone(), c.from.clone(), is_updated(&up, &c.module)));
                }
            }
            let up = [ex.up_before.clone(), up, ex.up_after.clone()].concat();
            let down = [ex.down_before.clone(), down, ex.down_after.clone()].concat();
            ups.push(tuple(vec![Term::string(vsn), Term::List(up)]));
            downs.push(tuple(vec![Term::string(vsn), Term::List(down)]));
        }
        for c in &ex.code_change {
            let matches: Vec<&(String, Option<String>, bool)> = applied
                .iter()
                .filter(|(m, f, _)| *m == c.module && *f == c.from)
                .collect();
            if !matches.iter().any(|(_, _, updated)| *updated) {
                let from = c
                    .from
                    .as_deref()
                    .map_or_else(|| "any version".to_owned(), |f| format!("\"{f}\""));
                ws.push(format!(
                    "{name}.extra: the code_change Extra for {} from {from} is not used: no update of it from {from} was generated (only changed process modules are updated, from the versions upgraded from)",
                    Term::atom(&c.module),
                ));
            }
        }
        plans.push(plan(
            tuple(vec![Term::string(&new.vsn), Term::List(ups), Term::List(downs)]),
            AppupSource::Generated,
            ws,
        ));
    }
    (plans, warnings)
}

/// The modules an appup updates with `{advanced, _}` (a `code_change`) on the way up, from
/// any version.
pub fn updated_modules(appup: &Term) -> Vec<String> {
    let Some([_, ups, _]) = appup.as_tuple() else {
        return vec![];
    };
    let mut out: Vec<String> = ups
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|clause| clause.as_tuple().and_then(|c| c.get(1)).and_then(Term::as_list))
        .flat_map(|instrs| {
            instrs
                .iter()
                .filter_map(|i| {
                    let t = i.as_tuple()?;
                    let module = t.get(1)?.as_atom()?;
                    is_updated(std::slice::from_ref(i), module).then(|| module.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `instructions` update `module` with `{advanced, _}`.
fn is_updated(instructions: &[Term], module: &str) -> bool {
    instructions.iter().any(|i| {
        i.as_tuple().is_some_and(|t| {
            t.len() == 4
                && t[0].as_atom() == Some("update")
                && t[1].as_atom() == Some(module)
                && t[2]
                    .as_tuple()
                    .is_some_and(|a| a.first().and_then(Term::as_atom) == Some("advanced"))
        })
    })
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
            extra: None,
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
                "{update,srv,{advanced,[]},[lib]}",
                "{load_module,lib,[]}",
                "{apply,{supervisor,terminate_child,[sup,wrk]}}",
                "{apply,{supervisor,delete_child,[sup,wrk]}}",
                "{update,sup,supervisor}",
                "{apply,{supervisor,restart_child,[sup,gone]}}",
                "{delete_module,wrk}",
            ]
        );
    }

    /// The drain instruction's callers, or None.
    fn drained(instrs: &[Term]) -> Option<Vec<String>> {
        let i = instrs
            .iter()
            .position(|t| t.to_string().starts_with("{apply,{erl_eval,exprs,"))?;
        assert!(
            instrs[i + 1..]
                .iter()
                .all(|t| t.to_string().starts_with("{delete_module,")),
            "the drain comes right before the deletions: {instrs:?}"
        );
        let args = instrs[i].as_tuple().unwrap()[1].as_tuple().unwrap()[2]
            .as_list()
            .unwrap();
        assert_eq!(args[0], parse_terms("t", &format!("{DRAIN_EXPRS}.")).unwrap()[0]);
        let bindings = args[1].to_string();
        let rest = bindings.strip_prefix("[{'Modules',[").unwrap();
        let (mods, tail) = rest.split_once("]}").unwrap();
        assert_eq!(tail, format!(",{{'Ms',{DRAIN_MS}}}]"));
        Some(mods.split(',').map(str::to_owned).collect())
    }

    #[test]
    fn deletions_wait_for_the_old_callers_and_are_nobodys_dependency_on_the_way_down() {
        // v1: handler calls legacy and store. v2: handler calls pricing and store; legacy goes.
        let with_calls = |name: &str, v: u8, calls: &[&str]| {
            let mut x = m(name, v);
            x.calls = calls.iter().map(|c| (*c).to_owned()).collect();
            x
        };
        let old = app(
            "1",
            vec![
                with_calls("handler", 1, &["legacy", "store"]),
                m("store", 1),
                m("legacy", 1),
                m("quiet", 1),
            ],
        );
        let new = app(
            "2",
            vec![
                with_calls("handler", 2, &["pricing", "store"]),
                m("store", 2),
                m("pricing", 1),
                m("quiet", 2),
            ],
        );
        let Clause { up, down, .. } = generate(&old, &new);
        assert_eq!(up[0].to_string(), "{add_module,pricing,[]}");
        assert_eq!(up[1].to_string(), "{load_module,handler,[pricing,store]}");
        assert_eq!(drained(&up), Some(vec!["handler".to_owned()]), "{up:?}");
        assert_eq!(up.last().unwrap().to_string(), "{delete_module,legacy}");
        // Down, v2's handler still runs until it is reloaded, and it calls pricing.
        assert_eq!(down[0].to_string(), "{add_module,legacy,[]}");
        assert!(
            down.contains(&parse_terms("t", "{load_module,handler,[store]}.").unwrap()[0]),
            "{down:?}"
        );
        assert_eq!(drained(&down), Some(vec!["handler".to_owned()]), "{down:?}");
        assert_eq!(down.last().unwrap().to_string(), "{delete_module,pricing}");

        // Nothing reloaded calls what goes: no drain.
        let new = app(
            "2",
            vec![with_calls("handler", 2, &["store"]), m("store", 2), m("quiet", 1)],
        );
        let old = app(
            "1",
            vec![
                with_calls("handler", 1, &["store"]),
                m("store", 1),
                m("quiet", 1),
                m("legacy", 1),
            ],
        );
        let Clause { up, down, .. } = generate(&old, &new);
        assert_eq!(drained(&up), None, "{up:?}");
        assert_eq!(drained(&down), None, "{down:?}");
    }

    #[test]
    fn code_change_extras_go_to_the_updates_they_name_and_unused_ones_are_reported() {
        use crate::snapshot::test_support::{module, release};
        let extra = Extra::parse(
            "shop.extra",
            "{code_change, [{store, \"1\", {shape, 1}}, {store, '_', {shape, any}}, {lib, '_', x}, {store, \"9\", y}]}.",
        )
        .unwrap();
        let store = |v| module("store", v, &["gen_server"], &[]);
        let (v1, v2) = (
            release("shop", "1", vec![store(1), module("lib", 1, &[], &[])], vec![]),
            release("shop", "2", vec![store(2), module("lib", 1, &[], &[])], vec![]),
        );
        let v3 = release("shop", "3", vec![store(3), module("lib", 2, &[], &[])], vec![]);
        let (plans, _) = plan_appups(&[&v1, &v2], &v3, &|_| None, &|_| Some(extra.clone()));
        let appup = plans[0].appup.to_string();
        // From 1 the Extra for "1"; from 2 the one for any version; the same both ways.
        for want in [
            "{\"1\",[{load_module,lib,[]},{update,store,{advanced,{shape,1}},[]}]}",
            "{\"1\",[{update,store,{advanced,{shape,1}},[]},{load_module,lib,[]}]}",
            "{\"2\",[{load_module,lib,[]},{update,store,{advanced,{shape,any}},[]}]}",
            "{\"2\",[{update,store,{advanced,{shape,any}},[]},{load_module,lib,[]}]}",
        ] {
            assert!(appup.contains(want), "{want} in {appup}");
        }
        assert_eq!(
            plans[0].warnings,
            [
                "shop.extra: the code_change Extra for lib from any version is not used: no update of it from any version was generated (only changed process modules are updated, from the versions upgraded from)",
                "shop.extra: the code_change Extra for store from \"9\" is not used: no update of it from \"9\" was generated (only changed process modules are updated, from the versions upgraded from)",
            ]
        );
        for bad in [
            "{code_change, [{store, 1, x}]}.",
            "{code_change, [store]}.",
            "{code_change, [{\"store\", '_', x}]}.",
        ] {
            assert!(
                matches!(Extra::parse("shop.extra", bad), Err(ExtraError::CodeChange { .. })),
                "{bad}"
            );
        }
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
