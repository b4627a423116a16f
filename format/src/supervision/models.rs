//! Library functions the evaluator models instead of running (Elixir 1.14 and OTP 25
//! semantics).
//!
//! The release carries these modules' beams, but they are compiled by whichever OTP built
//! Elixir, and their code is generic (`Supervisor.child_spec/2` is an `Enum.reduce` over the
//! overrides with a closure, and raises through `IO.warn` and string building); modelling the
//! few that shape a child list is smaller, faster and independent of how they were compiled.
//! The supervisor starts are modelled to record them: which callback module or children list,
//! under which registered name.

use super::eval::{MAX_PATHS, Machine, Outcome, RecordedStart};
use super::expr::{Expr, Lookup, Tail};
use super::render::Syntax;
use super::{Declared, Name, Started};
use crate::beam::Mfa;
use crate::term::Term;

impl Machine<'_> {
    /// The results of `mfa(args)` when it is modelled; an empty list when it raises.
    pub(crate) fn model(&mut self, mfa: &Mfa, args: &[Expr], at: usize) -> Option<Vec<Outcome>> {
        let one = |e: Expr| Some(vec![Outcome::of(e)]);
        match (&*mfa.module, &*mfa.function, args) {
            ("Elixir.Supervisor", "init", [children, _opts]) => one(Expr::tuple(vec![
                Expr::atom("ok"),
                Expr::tuple(vec![Expr::unknown("<supervisor flags>"), children.clone()]),
            ])),
            ("Elixir.Supervisor", "child_spec", [child, overrides]) => one(child_spec(child, overrides)),
            ("Elixir.Supervisor", "start_link", [first, opts]) => {
                // One function, two meanings: a list of children (the supervisor's callback is
                // `Supervisor.Default`), or a callback module and its init argument.
                let supervisor = match first.as_atom() {
                    Some(module) => Started::Module(module.to_owned()),
                    None => Started::Inline(
                        children_of(first, self.syntax)
                            .into_iter()
                            .map(|child| Declared {
                                child,
                                conditional: false,
                            })
                            .collect(),
                    ),
                };
                let name = match supervisor {
                    Started::Module(_) => Name::Unnamed,
                    Started::Inline(_) => self.name_option(opts),
                };
                self.starts.push(RecordedStart { at, supervisor, name });
                one(self.unknown_call(mfa, args))
            }
            ("Elixir.Supervisor", "start_link", [module, _arg, opts]) => {
                if let Some(module) = module.as_atom() {
                    let name = self.name_option(opts);
                    self.starts.push(RecordedStart {
                        at,
                        supervisor: Started::Module(module.to_owned()),
                        name,
                    });
                }
                one(self.unknown_call(mfa, args))
            }
            ("supervisor", "start_link", [module, _args]) | ("supervisor", "start_link", [_, module, _args]) => {
                if let Some(module) = module.as_atom() {
                    let name = match args {
                        [sup_name, _, _] => self.erlang_name(sup_name),
                        _ => Name::Unnamed,
                    };
                    self.starts.push(RecordedStart {
                        at,
                        supervisor: Started::Module(module.to_owned()),
                        name,
                    });
                }
                one(self.unknown_call(mfa, args))
            }
            ("Elixir.Keyword", "get", [list, key, rest @ ..]) | ("Elixir.Access", "get", [list, key, rest @ ..])
                if rest.len() <= 1 =>
            {
                let default = rest.first().cloned().unwrap_or_else(|| Expr::atom("nil"));
                one(self.lookup(mfa, args, list, key, Some(default)))
            }
            ("Elixir.Keyword", "fetch!", [list, key]) => one(self.lookup(mfa, args, list, key, None)),
            ("Elixir.Enum", "map", [list, fun]) | ("lists", "map", [fun, list]) => {
                let Some(items) = enumerable(list) else {
                    return one(self.unknown_call(mfa, args));
                };
                Some(self.each(items, fun, |results| {
                    Expr::cons(results.into_iter().map(|(_, r)| r).collect(), Expr::nil())
                }))
            }
            ("Elixir.Enum", f @ ("filter" | "reject"), [list, fun]) | ("lists", f @ "filter", [fun, list]) => {
                let Some(items) = enumerable(list) else {
                    return one(self.unknown_call(mfa, args));
                };
                let keep_truthy = f == "filter";
                let unknown = self.unknown_call(mfa, args);
                Some(self.each(items, fun, |results| {
                    let mut kept = Vec::new();
                    for (item, r) in results {
                        match r.as_atom() {
                            Some("false" | "nil") if keep_truthy => {}
                            Some(_) if keep_truthy => kept.push(item),
                            Some("false" | "nil") => kept.push(item),
                            Some(_) => {}
                            None => return unknown.clone(),
                        }
                    }
                    Expr::cons(kept, Expr::nil())
                }))
            }
            ("Elixir.Enum", "reduce", [list, acc, fun]) => {
                let Some(items) = enumerable(list) else {
                    return one(self.unknown_call(mfa, args));
                };
                let mut accs = vec![Outcome::of(acc.clone())];
                for item in items {
                    let mut next = Vec::new();
                    for acc in accs {
                        for r in self.call_fun(fun, vec![item.clone(), acc.value.clone()]) {
                            let mut guards = acc.guards.clone();
                            guards.extend(r.guards);
                            next.push(Outcome { value: r.value, guards });
                        }
                    }
                    next.truncate(MAX_PATHS);
                    accs = next;
                }
                Some(accs)
            }
            ("lists", "reverse", [list]) => match list.list_view() {
                Some((mut items, Tail::Nil)) => {
                    items.reverse();
                    one(Expr::cons(items, Expr::nil()))
                }
                _ => one(self.unknown_call(mfa, args)),
            },
            ("erlang", "++", [left, right]) | ("lists", "append", [left, right]) => match left.list_view() {
                Some((items, Tail::Nil)) => one(Expr::cons(items, right.clone())),
                _ => one(self.unknown_call(mfa, args)),
            },
            ("erlang", "error" | "exit" | "throw" | "raise" | "nif_error", _) => Some(vec![]),
            _ => None,
        }
    }

    fn unknown_call(&self, mfa: &Mfa, args: &[Expr]) -> Expr {
        Expr::unknown(self.syntax.call(&mfa.module, &mfa.function, args))
    }

    /// `Keyword.get/3`, `Keyword.fetch!/2`, `Access.get/3` (on a keyword list or a map).
    fn lookup(&self, mfa: &Mfa, args: &[Expr], list: &Expr, key: &Expr, default: Option<Expr>) -> Expr {
        let Some(key) = key.as_term() else {
            return self.unknown_call(mfa, args);
        };
        if list.map_view().is_some() {
            return match (list.map_lookup(key), default) {
                (Lookup::Found(v), _) => v,
                (Lookup::Absent, Some(d)) => d,
                _ => self.unknown_call(mfa, args),
            };
        }
        match list.clone().keyword_get(key.clone(), default) {
            Expr::Unknown(_) => self.unknown_call(mfa, args),
            v => v,
        }
    }

    /// Calls `fun` on each item; `combine` makes the result of one combination of the
    /// calls' outcomes (they fork when a call has several).
    fn each(&mut self, items: Vec<Expr>, fun: &Expr, combine: impl Fn(Vec<(Expr, Expr)>) -> Expr) -> Vec<Outcome> {
        // Each combination: (item, result) so far, and the guards under which it runs.
        type Combination = (Vec<(Expr, Expr)>, Vec<super::expr::Guard>);
        let mut combos: Vec<Combination> = vec![(vec![], vec![])];
        for item in items {
            let results = self.call_fun(fun, vec![item.clone()]);
            let mut next = Vec::new();
            for (done, guards) in &combos {
                for r in &results {
                    let mut done = done.clone();
                    done.push((item.clone(), r.value.clone()));
                    let mut guards = guards.clone();
                    guards.extend(r.guards.iter().cloned());
                    next.push((done, guards));
                }
            }
            next.truncate(MAX_PATHS);
            combos = next;
        }
        combos
            .into_iter()
            .map(|(done, guards)| Outcome {
                value: combine(done),
                guards,
            })
            .collect()
    }

    /// The registered name in Elixir start options (`name: Shop.Supervisor`).
    fn name_option(&self, opts: &Expr) -> Name {
        match opts.keyword_lookup(&Term::atom("name")) {
            Lookup::Found(v) => self.name_value(&v),
            Lookup::Absent => Name::Unnamed,
            Lookup::Unknown => Name::Unknown(format!("its options {}", self.syntax.expr(opts))),
        }
    }

    /// A name as `GenServer` and `supervisor` accept it: an atom (local), `{global, Term}`
    /// or `{via, Module, Term}` (used as they are to address the supervisor).
    fn name_value(&self, v: &Expr) -> Name {
        match v.as_term() {
            Some(Term::Atom(a)) if a != "nil" => Name::Registered(Term::atom(a)),
            Some(t @ Term::Tuple(items))
                if matches!(
                    (items.len(), items.first().and_then(Term::as_atom)),
                    (2, Some("global")) | (3, Some("via"))
                ) =>
            {
                Name::Registered(t.clone())
            }
            _ => Name::Unknown(format!("the name {}", self.syntax.expr(v))),
        }
    }

    /// `supervisor:start_link/3`'s first argument: `{local, N}`, `{global, N}`, `{via, M, N}`.
    fn erlang_name(&self, v: &Expr) -> Name {
        match v.tuple_view().as_deref() {
            Some([tag, n]) if tag.as_atom() == Some("local") => match n.as_atom() {
                Some(a) => Name::Registered(Term::atom(a)),
                None => Name::Unknown(format!("the name {}", self.syntax.expr(v))),
            },
            _ => self.name_value(v),
        }
    }
}

/// `Supervisor.child_spec(child, overrides)`: the overrides applied to a map as Elixir does
/// it (`Map.put` per key), or, when the spec comes from another module's `child_spec/1`, the
/// call itself for the resolver to finish.
fn child_spec(child: &Expr, overrides: &Expr) -> Expr {
    if child.map_view().is_some()
        && let Some((pairs, Tail::Nil)) = overrides.list_view()
    {
        let mut spec = child.clone();
        for pair in pairs {
            match pair.tuple_view().as_deref() {
                Some([k @ Expr::Term(_), v]) => match spec.map_put(k.clone(), v.clone()) {
                    Some(s) => spec = s,
                    None => break,
                },
                _ => {
                    return Expr::ChildSpec {
                        child: Box::new(child.clone()),
                        overrides: Box::new(overrides.clone()),
                    };
                }
            }
        }
        return spec;
    }
    Expr::ChildSpec {
        child: Box::new(child.clone()),
        overrides: Box::new(overrides.clone()),
    }
}

/// The elements of a known list, or of a literal `first..last//step` range.
fn enumerable(e: &Expr) -> Option<Vec<Expr>> {
    if let Some((items, Tail::Nil)) = e.list_view() {
        return Some(items);
    }
    let int = |key: &str| match e.map_lookup(&Term::atom(key)) {
        Lookup::Found(Expr::Term(t)) => match *t {
            Term::Integer(i) => Some(i),
            _ => None,
        },
        _ => None,
    };
    if e.map_lookup(&Term::atom("__struct__")) != Lookup::Found(Expr::atom("Elixir.Range")) {
        return None;
    }
    let (first, last, step) = (int("first")?, int("last")?, int("step").unwrap_or(1));
    // Only short ranges (each element may fork the paths), and no overflow on hostile ones.
    let count = last.checked_sub(first)?.checked_div(step)?;
    if !(0..MAX_PATHS as i128).contains(&count) {
        return None;
    }
    Some(
        (0..=count)
            .map(|k| Expr::term(Term::Integer(first + k * step)))
            .collect(),
    )
}

/// The children in a list the code gives a supervisor; what is not known stays as one
/// unknown element.
pub(crate) fn children_of(list: &Expr, syntax: Syntax) -> Vec<Expr> {
    let describe = |e: &Expr| match e {
        Expr::Unknown(what) => what.trim_start_matches('<').trim_end_matches('>').to_owned(),
        other => syntax.expr(other),
    };
    match list.list_view() {
        Some((mut items, tail)) => {
            if let Tail::Other(rest) = tail {
                items.push(Expr::unknown(format!("<children from {}>", describe(&rest))));
            }
            items
        }
        None => vec![Expr::unknown(format!("<children from {}>", describe(list)))],
    }
}
