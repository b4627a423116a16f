//! Appup instructions for the children supervisors gain and lose.
//!
//! Two kinds of supervisor need different instructions, because of what OTP does on
//! `{update, Sup, supervisor}` (`supervisor:code_change/3` calls the callback's `init/1` again
//! with the argument the supervisor was started with):
//!
//! - A **callback module** (`use Supervisor`, `-behaviour(supervisor)`) gets its new children
//!   from its new `init/1`: a child it gained is then known but not running, and
//!   `supervisor:restart_child/2` starts it; a child it lost keeps running until
//!   `terminate_child/2` + `delete_child/2` (before the update). The `update` addresses the
//!   module; the child instructions address the supervisor's registered name.
//! - A supervisor started **inline** (`Supervisor.start_link(children, name: N)` in
//!   `Application.start/2`) has `Supervisor.Default` as its callback module, which returns the
//!   children it was started with: an update changes nothing. A gained child is started with
//!   `'Elixir.Supervisor':start_child(N, Child)`, the child as the code writes it (Elixir
//!   resolves `Mod`, `{Mod, arg}` and maps on the node, with the new code loaded); a lost one is
//!   stopped with `terminate_child` + `delete_child` by id. It only runs when the module that
//!   declares the children changed.
//!
//! On the way down each step is undone: a gained child is stopped and deleted before its
//! module goes, a lost one is started again (restarted, or started as the old code wrote it)
//! after its module is back.
//!
//! What cannot be known statically becomes a warning naming the supervisor, the child, why,
//! and the `.extra` lines (SPEC.md §8.2) that do it by hand. A supervisor the `.extra` already
//! addresses (an `apply` of `supervisor:*` or `'Elixir.Supervisor':*` whose first argument is
//! its name) gets no warning: the user has taken over.

use super::{Extra, Step, atom, tuple};
use crate::supervision::{Name, ResolvedChild, SupervisionIndex, SupervisorKind, SupervisorView, Syntax};
use crate::term::Term;

fn apply(module: &str, function: &str, args: Vec<Term>) -> Term {
    tuple(vec![
        atom("apply"),
        tuple(vec![atom(module), atom(function), Term::List(args)]),
    ])
}

fn sup_call(function: &str, name: &Term, id: &Term) -> Term {
    apply("supervisor", function, vec![name.clone(), id.clone()])
}

fn stop(name: &Term, id: &Term) -> Vec<Term> {
    vec![
        sup_call("terminate_child", name, id),
        sup_call("delete_child", name, id),
    ]
}

fn start_child(name: &Term, child: &Term) -> Term {
    apply("Elixir.Supervisor", "start_child", vec![name.clone(), child.clone()])
}

/// The `.extra` text of an instruction whose last argument may be a placeholder.
fn text(module: &str, function: &str, name: &Term, last: &str) -> String {
    format!("{{apply,{{{},{function},[{name},{last}]}}}}", Term::atom(module))
}

/// What changed between two versions of one supervisor's children.
struct Diff<'v> {
    gained: Vec<&'v ResolvedChild>,
    lost: Vec<&'v ResolvedChild>,
    /// Children of the new version whose id is unknown and that the old version did not have
    /// as written.
    unknown_new: Vec<&'v ResolvedChild>,
    unknown_old: Vec<&'v ResolvedChild>,
}

impl<'v> Diff<'v> {
    fn of(old: &'v SupervisorView, new: &'v SupervisorView) -> Self {
        let ids =
            |v: &'v SupervisorView| -> Vec<&'v Term> { v.children.iter().filter_map(|c| c.id.as_ref().ok()).collect() };
        let (old_ids, new_ids) = (ids(old), ids(new));
        let only = |from: &'v SupervisorView, other: &[&Term]| -> Vec<&'v ResolvedChild> {
            let mut out: Vec<&ResolvedChild> = Vec::new();
            for c in &from.children {
                if let Ok(id) = &c.id
                    && !other.iter().any(|o| o.erl_eq(id))
                    && !out.iter().any(|d| d.id.as_ref().is_ok_and(|d| d.erl_eq(id)))
                {
                    out.push(c);
                }
            }
            out
        };
        let unknown = |from: &'v SupervisorView, other: &SupervisorView| -> Vec<&'v ResolvedChild> {
            from.children
                .iter()
                .filter(|c| c.id.is_err() && !other.children.iter().any(|o| o.child == c.child))
                .collect()
        };
        Diff {
            gained: only(new, &old_ids),
            lost: only(old, &new_ids),
            unknown_new: unknown(new, old),
            unknown_old: unknown(old, new),
        }
    }

    fn is_empty(&self) -> bool {
        self.gained.is_empty() && self.lost.is_empty() && self.unknown_new.is_empty() && self.unknown_old.is_empty()
    }
}

/// Generates the child steps of one application, collecting warnings.
pub(super) struct Children<'a> {
    app: &'a str,
    old: &'a SupervisionIndex<'a>,
    new: &'a SupervisionIndex<'a>,
    extra: &'a Extra,
    pub(super) warnings: Vec<String>,
}

impl<'a> Children<'a> {
    pub(super) fn new(
        app: &'a str,
        old: &'a SupervisionIndex<'a>,
        new: &'a SupervisionIndex<'a>,
        extra: &'a Extra,
    ) -> Self {
        Children {
            app,
            old,
            new,
            extra,
            warnings: Vec::new(),
        }
    }

    /// The steps for a changed callback module: children lost, `{update, M, supervisor}`,
    /// children gained.
    pub(super) fn callback_module(&mut self, module: &str) -> Vec<Step> {
        let update = Step::both(tuple(vec![atom("update"), atom(module), atom("supervisor")]));
        let view = |index: &SupervisionIndex<'_>| {
            index
                .supervisors(module)
                .into_iter()
                .find(|v| matches!(v.kind, SupervisorKind::Module(_)))
        };
        // A supervisor_bridge, or a module that was not a supervisor before: nothing to diff.
        let (Some(old), Some(new)) = (view(self.old), view(self.new)) else {
            return vec![update];
        };
        let diff = Diff::of(&old, &new);
        if diff.is_empty() {
            return vec![update];
        }
        let Some(name) = self.address(&old, &new, &diff) else {
            return vec![update];
        };
        let mut steps = Vec::new();
        for c in &diff.lost {
            let id = c.id.as_ref().expect("lost children have ids");
            steps.push(Step {
                up: stop(&name, id),
                down: vec![sup_call("restart_child", &name, id)],
            });
        }
        steps.push(update);
        for c in &diff.gained {
            let id = c.id.as_ref().expect("gained children have ids");
            steps.push(Step {
                up: vec![sup_call("restart_child", &name, id)],
                down: stop(&name, id),
            });
        }
        if !self.covered(&name) {
            for c in &diff.unknown_new {
                let w = self.unknown_id(&new, &name, c, true, false);
                self.warn(w);
            }
            for c in &diff.unknown_old {
                let w = self.unknown_id(&old, &name, c, false, false);
                self.warn(w);
            }
        }
        steps
    }

    /// The steps for the supervisors `module` (a changed module) starts inline.
    pub(super) fn inline(&mut self, module: &str) -> Vec<Step> {
        let inline = |index: &SupervisionIndex<'_>| -> Vec<SupervisorView> {
            index
                .supervisors(module)
                .into_iter()
                .filter(|v| matches!(v.kind, SupervisorKind::Inline { .. }))
                .collect()
        };
        let (olds, news) = (inline(self.old), inline(self.new));
        let mut steps = Vec::new();
        for new in &news {
            // The same supervisor: the same registered name, or (unnamed) the same call site.
            let Some(old) = olds.iter().find(|o| match (&o.name, &new.name) {
                (Name::Registered(a), Name::Registered(b)) => a == b,
                (Name::Registered(_), _) | (_, Name::Registered(_)) => false,
                _ => o.kind == new.kind,
            }) else {
                continue;
            };
            let diff = Diff::of(old, new);
            if diff.is_empty() {
                continue;
            }
            let Some(name) = self.address(old, new, &diff) else {
                continue;
            };
            let quiet = self.covered(&name);
            let syntax = Syntax::of_module(module);
            for c in &diff.lost {
                let id = c.id.as_ref().expect("lost children have ids");
                let down = match written(self.old, c, syntax) {
                    Ok(child) if !c.conditional => vec![start_child(&name, &child)],
                    result => {
                        if !quiet {
                            let why = result.err().unwrap_or_else(|| {
                                "the old code only has it on some of its paths (a condition rel cannot decide)".into()
                            });
                            let w = format!(
                                "{}: {}: child `{}` (id {}) is gone, and the downgrade cannot start it again: {why}. \
                                 To start it on the way down, add to {}.extra (ChildSpec being the child as \
                                 Supervisor.start_child/2 takes it):\n    {{down_after, [{}]}}.",
                                self.app,
                                label(old, Some(&name)),
                                syntax.expr(&c.child),
                                Term::clone(id),
                                self.app,
                                text("Elixir.Supervisor", "start_child", &name, "ChildSpec"),
                            );
                            self.warn(w);
                        }
                        vec![]
                    }
                };
                steps.push(Step {
                    up: stop(&name, id),
                    down,
                });
            }
            for c in &diff.gained {
                let id = c.id.as_ref().expect("gained children have ids");
                if c.conditional {
                    if !quiet {
                        let w = format!(
                            "{}: {}: new child `{}` is there on some of the code's paths only (a condition rel \
                             cannot decide), so the appup does not start it. If it should run, add to {}.extra:\n    \
                             {{up_after, [{}]}}.\n    {{down_before, [{}, {}]}}.",
                            self.app,
                            label(new, Some(&name)),
                            syntax.expr(&c.child),
                            self.app,
                            text(
                                "Elixir.Supervisor",
                                "start_child",
                                &name,
                                &written(self.new, c, syntax).map_or_else(|_| "ChildSpec".into(), |t| t.to_string())
                            ),
                            text("supervisor", "terminate_child", &name, &id.to_string()),
                            text("supervisor", "delete_child", &name, &id.to_string()),
                        );
                        self.warn(w);
                    }
                    continue;
                }
                match written(self.new, c, syntax) {
                    Ok(child) => steps.push(Step {
                        up: vec![start_child(&name, &child)],
                        down: stop(&name, id),
                    }),
                    Err(why) => {
                        if !quiet {
                            let w = format!(
                                "{}: {}: new child `{}` (id {id}) cannot be written into the appup: {why}. To start \
                                 it, add to {}.extra (ChildSpec being the child as Supervisor.start_child/2 takes \
                                 it):\n    {{up_after, [{}]}}.",
                                self.app,
                                label(new, Some(&name)),
                                syntax.expr(&c.child),
                                self.app,
                                text("Elixir.Supervisor", "start_child", &name, "ChildSpec"),
                            );
                            self.warn(w);
                        }
                        steps.push(Step {
                            up: vec![],
                            down: stop(&name, id),
                        });
                    }
                }
            }
            if !quiet {
                for c in &diff.unknown_new {
                    let w = self.unknown_id(new, &name, c, true, true);
                    self.warn(w);
                }
                for c in &diff.unknown_old {
                    let w = self.unknown_id(old, &name, c, false, true);
                    self.warn(w);
                }
            }
        }
        steps
    }

    fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// Whether the user's `.extra` addresses the supervisor registered as `name`.
    fn covered(&self, name: &Term) -> bool {
        let e = self.extra;
        e.up_before
            .iter()
            .chain(&e.up_after)
            .chain(&e.down_before)
            .chain(&e.down_after)
            .any(|i| {
                let Some([tag, mfa]) = i.as_tuple() else { return false };
                let Some([m, _, args]) = mfa.as_tuple() else {
                    return false;
                };
                tag.as_atom() == Some("apply")
                    && matches!(m.as_atom(), Some("supervisor" | "Elixir.Supervisor"))
                    && args
                        .as_list()
                        .and_then(|a| a.first().map(|first| first.erl_eq(name)))
                        .unwrap_or(false)
            })
    }

    /// The name the instructions address: the one the running process was registered under
    /// (the old version's). `None`, with a warning, when there is none to use.
    fn address(&mut self, old: &SupervisorView, new: &SupervisorView, diff: &Diff<'_>) -> Option<Term> {
        match (&old.name, &new.name) {
            (Name::Registered(a), Name::Registered(b)) if a.erl_eq(b) => Some(a.clone()),
            (Name::Registered(a), Name::Registered(b)) => {
                if !self.covered(a) {
                    let syntax = Syntax::of_module(old.kind.module());
                    let w = format!(
                        "{}: {}: the new version registers it as {} instead; the child instructions address \
                         {}, the name of the running process",
                        self.app,
                        label(old, Some(a)),
                        syntax.term(b),
                        syntax.term(a)
                    );
                    self.warn(w);
                }
                Some(a.clone())
            }
            (Name::Registered(a), _) => Some(a.clone()),
            (why, _) => {
                let why = match why {
                    Name::Unnamed => "it has no registered name".to_owned(),
                    Name::Unknown(what) => format!("its registered name is not known ({what})"),
                    Name::Registered(_) => unreachable!("matched above"),
                };
                let syntax = Syntax::of_module(old.kind.module());
                let ids = |list: &[&ResolvedChild]| -> String {
                    list.iter()
                        .map(|c| match &c.id {
                            Ok(id) => syntax.term(id),
                            Err(_) => format!("`{}`", syntax.expr(&c.child)),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut changes = Vec::new();
                let gained: Vec<&ResolvedChild> = diff.gained.iter().chain(&diff.unknown_new).copied().collect();
                let lost: Vec<&ResolvedChild> = diff.lost.iter().chain(&diff.unknown_old).copied().collect();
                if !gained.is_empty() {
                    changes.push(format!("new: {}", ids(&gained)));
                }
                if !lost.is_empty() {
                    changes.push(format!("gone: {}", ids(&lost)));
                }
                let w = format!(
                    "{}: {}: {why}, so no appup instruction can address it, and its children changed ({}). \
                     Register it under a name (then rel generates the instructions), or restart it",
                    self.app,
                    label(new, None),
                    changes.join("; ")
                );
                self.warn(w);
                None
            }
        }
    }

    /// The warning for a child whose id is unknown: `is_new` for one of the new version
    /// (maybe added), else of the old (maybe removed).
    fn unknown_id(&self, view: &SupervisorView, name: &Term, c: &ResolvedChild, is_new: bool, inline: bool) -> String {
        let syntax = Syntax::of_module(view.kind.module());
        let why = c.id.as_ref().err().map_or("", String::as_str);
        let (which, when) = if is_new {
            ("", "If that child is new")
        } else {
            (" of the old version", "If that child is gone")
        };
        let stop = format!(
            "{}, {}",
            text("supervisor", "terminate_child", name, "Id"),
            text("supervisor", "delete_child", name, "Id")
        );
        let (start, spec_note) = if inline {
            let child = c.child.as_term().map(Term::to_string);
            let note = if child.is_some() {
                ""
            } else {
                ", ChildSpec the child as Supervisor.start_child/2 takes it"
            };
            (
                text(
                    "Elixir.Supervisor",
                    "start_child",
                    name,
                    child.as_deref().unwrap_or("ChildSpec"),
                ),
                note,
            )
        } else {
            (text("supervisor", "restart_child", name, "Id"), "")
        };
        let lines = if is_new {
            format!("    {{up_after, [{start}]}}.\n    {{down_before, [{stop}]}}.")
        } else {
            format!("    {{up_before, [{stop}]}}.\n    {{down_after, [{start}]}}.")
        };
        format!(
            "{}: {}: rel cannot know the id of child `{}`{which}: {why}. {when}, add to {}.extra (Id being its \
             id{spec_note}):\n{lines}",
            self.app,
            label(view, Some(name)),
            syntax.expr(&c.child),
            self.app,
        )
    }
}

/// The child as `Supervisor.start_child/2` takes it: the term the code writes, or the whole
/// spec of a `Supervisor.child_spec/2` call.
fn written(index: &SupervisionIndex<'_>, c: &ResolvedChild, syntax: Syntax) -> Result<Term, String> {
    match &c.child {
        crate::supervision::Expr::Term(t) => Ok(Term::clone(t)),
        child @ crate::supervision::Expr::ChildSpec { .. } => index.child_spec(child, syntax),
        child => Err(format!("it is only partly known: {}", syntax.expr(child))),
    }
}

/// How warnings name a supervisor.
fn label(view: &SupervisorView, name: Option<&Term>) -> String {
    let syntax = Syntax::of_module(view.kind.module());
    match (&view.kind, name) {
        (SupervisorKind::Module(m), Some(n)) if n.as_atom() == Some(m.as_str()) => {
            format!("supervisor {}", syntax.module(m))
        }
        (SupervisorKind::Module(m), Some(n)) => {
            format!("supervisor {} (registered as {})", syntax.module(m), syntax.term(n))
        }
        (SupervisorKind::Module(m), None) => format!("supervisor {}", syntax.module(m)),
        (SupervisorKind::Inline { module, function }, name) => {
            let site = match syntax {
                Syntax::Elixir => format!("Supervisor.start_link/2 in {}.{function}", syntax.module(module)),
                Syntax::Erlang => format!(
                    "'Elixir.Supervisor':start_link/2 in {}:{function}",
                    syntax.module(module)
                ),
            };
            match name {
                Some(n) => format!("supervisor {} ({site})", syntax.term(n)),
                None => format!("the supervisor {site} starts"),
            }
        }
    }
}
