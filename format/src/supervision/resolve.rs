//! Child ids and supervisor names across the modules of a release.
//!
//! A child as written is finished here, with the other modules' summaries: `Mod` is
//! `Mod.child_spec([])`, `{Mod, arg}` is `Mod.child_spec(arg)` (the rule's guards are replayed
//! on `arg` to pick the path that runs), a map or an Erlang 6-tuple is its own spec, and
//! `Supervisor.child_spec(child, overrides)` is `child`'s spec with the overrides put in (an
//! `id:` override decides the id without looking further). A module-based supervisor's
//! registered name is the one the starts found anywhere in the release give it.

use std::collections::HashMap;
use std::sync::Arc;

use super::expr::{Expr, Guard, Lookup, Tail, Test};
use super::render::Syntax;
use super::{Declared, Deferred, Name, SpecCase, SpecRule, Started, Supervision};
use crate::term::Term;

/// Child specs that lead to child specs (a `child_spec/1` returning `{Other, arg}`) are
/// followed this deep.
const MAX_NESTING: usize = 8;

/// The supervision summaries of a release's modules, for resolving across them. Modules are
/// read when a question reaches them ([`Deferred`]).
#[derive(Debug, Default)]
pub struct SupervisionIndex<'a> {
    modules: HashMap<&'a str, &'a Deferred>,
}

/// Which kind of supervisor, and where its children are declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorKind {
    /// A callback module (`use Supervisor`, `-behaviour(supervisor)`): children from `init/1`.
    Module(String),
    /// `Supervisor.start_link(children, opts)` in `module`'s `function`: the callback module is
    /// `Supervisor.Default`, which keeps the children it was started with.
    Inline { module: String, function: String },
}

impl SupervisorKind {
    /// The module whose code declares the children.
    pub fn module(&self) -> &str {
        match self {
            SupervisorKind::Module(m) | SupervisorKind::Inline { module: m, .. } => m,
        }
    }
}

/// A supervisor with its children resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisorView {
    pub kind: SupervisorKind,
    pub name: Name,
    pub children: Vec<ResolvedChild>,
}

/// A child and its id, or why the id cannot be known.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedChild {
    pub child: Expr,
    pub conditional: bool,
    pub id: Result<Term, String>,
}

impl<'a> SupervisionIndex<'a> {
    /// The index of `modules` (name and summary).
    pub fn new(modules: impl IntoIterator<Item = (&'a str, &'a Deferred)>) -> Self {
        SupervisionIndex {
            modules: modules.into_iter().collect(),
        }
    }

    /// A module's summary.
    pub fn supervision(&self, module: &str) -> Option<&'a Supervision> {
        self.modules.get(module).map(|d| d.get())
    }

    /// The supervisors whose children `module` declares: itself when it is a callback module,
    /// and those it starts inline.
    pub fn supervisors(&self, module: &str) -> Vec<SupervisorView> {
        let Some(s) = self.supervision(module) else {
            return vec![];
        };
        let syntax = Syntax::of_module(module);
        let mut out = Vec::new();
        if let Some(children) = &s.init {
            out.push(SupervisorView {
                kind: SupervisorKind::Module(module.to_owned()),
                name: self.registered_name(module),
                children: self.resolve_all(children, syntax),
            });
        }
        for start in &s.starts {
            if let Started::Inline(children) = &start.supervisor {
                out.push(SupervisorView {
                    kind: SupervisorKind::Inline {
                        module: module.to_owned(),
                        function: start.function.clone(),
                    },
                    name: start.name.clone(),
                    children: self.resolve_all(children, syntax),
                });
            }
        }
        out
    }

    fn resolve_all(&self, children: &[Declared], syntax: Syntax) -> Vec<ResolvedChild> {
        children
            .iter()
            .map(|d| ResolvedChild {
                child: d.child.clone(),
                conditional: d.conditional,
                id: self.child_id(&d.child, syntax),
            })
            .collect()
    }

    /// The name a callback-module supervisor is registered under, from the starts of it the
    /// release's code makes: its own (`start_link` in the module, the usual place), else those
    /// of every module that starts supervisors.
    pub fn registered_name(&self, module: &str) -> Name {
        let syntax = Syntax::of_module(module);
        let of = |s: &'a Supervision| {
            s.starts
                .iter()
                .filter(move |start| matches!(&start.supervisor, Started::Module(m) if m == module))
                .map(|start| &start.name)
        };
        let mut found: Vec<&Name> = self.supervision(module).into_iter().flat_map(of).collect();
        if found.is_empty() {
            let mut others: Vec<(&&str, &&Deferred)> =
                self.modules.iter().filter(|(_, d)| d.may_start_supervisors()).collect();
            others.sort_by_key(|(name, _)| **name);
            found = others.into_iter().flat_map(|(_, d)| of(d.get())).collect();
        }
        let mut names: Vec<&Name> = Vec::new();
        for name in found {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        match names.as_slice() {
            [] => Name::Unknown(format!("no code in the release starts {}", syntax.module(module))),
            [one] => (*one).clone(),
            _ => Name::Unknown(format!("{} is started under different names", syntax.module(module))),
        }
    }

    /// The id of `child` (as a supervisor's code gives it), or why it cannot be known.
    /// `syntax` is the one explanations use.
    pub fn child_id(&self, child: &Expr, syntax: Syntax) -> Result<Term, String> {
        self.id(child, syntax, 0)
    }

    /// The complete spec of `child` (a map or an Erlang tuple), or why it cannot be known:
    /// what `Supervisor.start_child/2` needs when the child as written is a
    /// `Supervisor.child_spec/2` call.
    pub fn child_spec(&self, child: &Expr, syntax: Syntax) -> Result<Term, String> {
        match self.specs(child, syntax, 0)?.as_slice() {
            [Expr::Term(t)] => Ok(Term::clone(t)),
            [spec] => Err(format!("its spec {} is only known at run time", syntax.expr(spec))),
            _ => Err("its spec depends on a condition rel cannot decide".into()),
        }
    }

    fn id(&self, child: &Expr, syntax: Syntax, depth: usize) -> Result<Term, String> {
        if let Expr::ChildSpec { child, overrides } = child {
            return match overrides.keyword_lookup(&Term::atom("id")) {
                Lookup::Found(Expr::Term(id)) => Ok(Arc::unwrap_or_clone(id)),
                Lookup::Found(id) => Err(format!(
                    "the id given to Supervisor.child_spec/2, {}, is only known at run time",
                    syntax.expr(&id)
                )),
                Lookup::Absent => self.id(child, syntax, depth + 1),
                Lookup::Unknown => Err(format!(
                    "the overrides given to Supervisor.child_spec/2, {}, are only known at run time",
                    syntax.expr(overrides)
                )),
            };
        }
        let specs = self.specs(child, syntax, depth)?;
        let mut ids = specs.iter().map(|s| id_of_spec(s, syntax));
        let first = ids.next().unwrap_or_else(|| Err("it has no spec".into()))?;
        for other in ids {
            if other? != first {
                return Err(format!(
                    "its id depends on a condition rel cannot decide ({} or another)",
                    syntax.term(&first)
                ));
            }
        }
        Ok(first)
    }

    /// The specs `child` may have (several when a `child_spec/1`'s guards do not decide).
    fn specs(&self, child: &Expr, syntax: Syntax, depth: usize) -> Result<Vec<Expr>, String> {
        if depth > MAX_NESTING {
            return Err("its child_spec/1 calls nest deeper than rel follows".into());
        }
        match child {
            Expr::Unknown(what) => Err(format!("it is only known at run time ({what})")),
            Expr::ChildSpec { child, overrides } => {
                let Some((pairs, Tail::Nil)) = overrides.list_view() else {
                    return Err(format!(
                        "the overrides given to Supervisor.child_spec/2, {}, are only known at run time",
                        syntax.expr(overrides)
                    ));
                };
                let mut out = Vec::new();
                for mut spec in self.specs(child, syntax, depth + 1)? {
                    for pair in &pairs {
                        spec = match pair.tuple_view().as_deref() {
                            Some([k @ Expr::Term(_), v]) => spec.map_put(k.clone(), v.clone()),
                            _ => None,
                        }
                        .ok_or_else(|| {
                            format!("Supervisor.child_spec/2 cannot apply {} to it", syntax.expr(overrides))
                        })?;
                    }
                    out.push(spec);
                }
                Ok(out)
            }
            e if e.map_view().is_some() => Ok(vec![e.clone()]),
            e => match e.as_atom() {
                Some(module) => self.apply_rule(module, &Expr::nil(), syntax, depth),
                None => match e.tuple_view().as_deref() {
                    Some([m, arg]) if m.as_atom().is_some() => {
                        self.apply_rule(m.as_atom().unwrap_or_default(), arg, syntax, depth)
                    }
                    Some(items) if items.len() == 6 => Ok(vec![e.clone()]),
                    _ => Err(format!("{} is not a child spec", syntax.expr(e))),
                },
            },
        }
    }

    /// `module.child_spec(arg)`'s possible specs.
    fn apply_rule(&self, module: &str, arg: &Expr, syntax: Syntax, depth: usize) -> Result<Vec<Expr>, String> {
        let library;
        let rule = match (self.supervision(module), library_rule(module)) {
            (
                Some(Supervision {
                    child_spec: Some(rule), ..
                }),
                _,
            ) => rule,
            (_, Some(rule)) => {
                library = rule;
                &library
            }
            (Some(_), None) => return Err(format!("{} has no child_spec/1", syntax.module(module))),
            (None, None) => return Err(format!("{} is not in the release", syntax.module(module))),
        };
        let runs: Vec<&SpecCase> = rule
            .cases
            .iter()
            .filter(|case| case.guards.iter().all(|g| g.check(arg) != Some(false)))
            .collect();
        if runs.is_empty() {
            return Err(format!(
                "{}.child_spec/1 raises on {}",
                syntax.module(module),
                syntax.expr(arg)
            ));
        }
        let mut out = Vec::new();
        for case in runs {
            for spec in self.specs(&case.spec.substitute(arg), syntax, depth + 1)? {
                if !out.contains(&spec) {
                    out.push(spec);
                }
            }
        }
        Ok(out)
    }
}

/// The id in a spec: a map's `id`, an Erlang tuple's first element.
fn id_of_spec(spec: &Expr, syntax: Syntax) -> Result<Term, String> {
    let id = match spec.map_view() {
        Some(_) => match spec.map_lookup(&Term::atom("id")) {
            Lookup::Found(id) => id,
            Lookup::Absent => return Err(format!("its spec {} has no id", syntax.expr(spec))),
            Lookup::Unknown => return Err(format!("its spec {} is only known at run time", syntax.expr(spec))),
        },
        None => match spec.tuple_view() {
            Some(items) if items.len() == 6 => items[0].clone(),
            _ => return Err(format!("{} is not a child spec", syntax.expr(spec))),
        },
    };
    match id {
        Expr::Term(t) => Ok(Arc::unwrap_or_clone(t)),
        other => Err(format!("its id is only known at run time: {}", syntax.expr(&other))),
    }
}

/// The `child_spec/1` of library modules whose ids their documentation fixes, for when the
/// module is not among the release's beams: `Agent` and `Task` (`{Agent, fun}`), and the
/// `name:` option for `Registry`, `Task.Supervisor` and `DynamicSupervisor` (the last two
/// unwrap `{:global, name}` and `{:via, module, name}`). Elixir 1.14's own beams give the
/// same rules (a test checks it), and they win when they are in the release.
pub fn library_rule(module: &str) -> Option<SpecRule> {
    let start = || {
        Expr::tuple(vec![
            Expr::atom(module),
            Expr::atom("start_link"),
            Expr::cons(vec![Expr::Arg], Expr::nil()),
        ])
    };
    let spec = |pairs: Vec<(&str, Expr)>| {
        Expr::map(
            pairs
                .into_iter()
                .map(|(k, v)| (Expr::atom(k), v))
                .chain([(Expr::atom("start"), start())])
                .collect(),
        )
    };
    let fixed = |spec| SpecRule {
        cases: vec![SpecCase { guards: vec![], spec }],
    };
    let name = || Expr::Arg.keyword_get(Term::atom("name"), Some(Expr::atom(module)));
    let guard = |value: Expr, test, holds| Guard { value, test, holds };
    match module {
        "Elixir.Agent" => Some(fixed(spec(vec![("id", Expr::atom(module))]))),
        "Elixir.Task" => Some(fixed(spec(vec![
            ("id", Expr::atom(module)),
            ("restart", Expr::atom("temporary")),
        ]))),
        "Elixir.Registry" => Some(fixed(spec(vec![("id", name()), ("type", Expr::atom("supervisor"))]))),
        "Elixir.Task.Supervisor" | "Elixir.DynamicSupervisor" => {
            let is_list = guard(Expr::Arg, Test::IsList, true);
            let case = |guards: Vec<Guard>, id| SpecCase {
                guards,
                spec: spec(vec![("id", id), ("type", Expr::atom("supervisor"))]),
            };
            let tagged = |arity, tag: &str, index| {
                case(
                    vec![
                        is_list.clone(),
                        guard(name(), Test::IsAtom, false),
                        guard(name(), Test::Arity(arity), true),
                        guard(name().element(0), Test::OneOf(vec![Term::atom(tag)]), true),
                    ],
                    name().element(index),
                )
            };
            Some(SpecRule {
                cases: vec![
                    case(vec![is_list.clone(), guard(name(), Test::IsAtom, true)], name()),
                    tagged(2, "global", 1),
                    tagged(3, "via", 2),
                ],
            })
        }
        _ => None,
    }
}
