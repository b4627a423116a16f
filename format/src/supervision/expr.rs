//! Terms known in parts: what the evaluator computes, what summaries keep, and what the
//! resolver folds once another module's rule supplies the missing piece.

use std::fmt;
use std::sync::Arc;

use crate::term::Term;

/// A term known in parts.
///
/// Constructors fold: a tuple, list or map whose parts are all known is an [`Expr::Term`], so
/// "fully known" is exactly "is a `Term`". The symbolic forms ([`Expr::Arg`],
/// [`Expr::KeywordGet`], [`Expr::Element`]) only occur in a `child_spec/1` rule, where they
/// stand for the argument the rule will be applied to.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Fully known. (Shared: the evaluator copies registers at every fork, and literals can
    /// be whole children lists.)
    Term(Arc<Term>),
    /// A tuple with some unknown element.
    Tuple(Vec<Expr>),
    /// Cons cells: the elements, then the tail (`[]` for a proper list).
    List(Vec<Expr>, Box<Expr>),
    /// A map with some unknown key or value; pairs in insertion order.
    Map(Vec<(Expr, Expr)>),
    /// A fun the module's code made: its `FunT` index and the values it captured.
    Fun { lambda: u32, env: Vec<Expr> },
    /// The argument of the `child_spec/1` a rule describes.
    Arg,
    /// `Keyword.get(list, key, default)`; no default for `Keyword.fetch!/2`.
    KeywordGet {
        list: Box<Expr>,
        key: Term,
        default: Option<Box<Expr>>,
    },
    /// `elem(tuple, index)`, 0-based.
    Element { tuple: Box<Expr>, index: usize },
    /// `Supervisor.child_spec(child, overrides)` on a child whose spec comes from another
    /// module's `child_spec/1`: the resolver finishes it.
    ChildSpec { child: Box<Expr>, overrides: Box<Expr> },
    /// A value only known at run time, described in source terms (`Application.get_env(:shop,
    /// :port)`, `self()`, `<init/1's argument>`).
    Unknown(Arc<str>),
}

/// The end of a list seen through [`Expr::list_view`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tail {
    Nil,
    /// An improper tail or one that is not known.
    Other(Expr),
}

/// What a key lookup in a keyword list or map found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lookup {
    Found(Expr),
    Absent,
    /// Some key, or the rest of the list, is not known.
    Unknown,
}

impl Expr {
    /// A known term.
    pub fn term(t: Term) -> Expr {
        Expr::Term(Arc::new(t))
    }

    /// A value only known at run time, described.
    pub fn unknown(what: impl Into<Arc<str>>) -> Expr {
        Expr::Unknown(what.into())
    }

    /// `[]`.
    pub fn nil() -> Expr {
        Expr::term(Term::List(vec![]))
    }

    /// An atom.
    pub fn atom(name: &str) -> Expr {
        Expr::term(Term::atom(name))
    }

    /// The term, when fully known.
    pub fn as_term(&self) -> Option<&Term> {
        match self {
            Expr::Term(t) => Some(t),
            _ => None,
        }
    }

    /// The atom, when this is one.
    pub fn as_atom(&self) -> Option<&str> {
        self.as_term().and_then(Term::as_atom)
    }

    /// A tuple, folded to a term when every element is known.
    pub fn tuple(items: Vec<Expr>) -> Expr {
        if items.iter().all(|i| matches!(i, Expr::Term(_))) {
            Expr::term(Term::Tuple(items.into_iter().map(Expr::into_term).collect()))
        } else {
            Expr::Tuple(items)
        }
    }

    /// `[items | tail]`, flattened and folded.
    pub fn cons(mut items: Vec<Expr>, tail: Expr) -> Expr {
        let tail = match tail.list_view() {
            Some((more, tail)) => {
                items.extend(more);
                tail
            }
            None => Tail::Other(tail),
        };
        let known = items.iter().all(|i| matches!(i, Expr::Term(_)));
        match tail {
            Tail::Nil if known => Expr::term(Term::List(items.into_iter().map(Expr::into_term).collect())),
            Tail::Other(Expr::Term(t)) if known && !items.is_empty() => Expr::term(Term::ImproperList(
                items.into_iter().map(Expr::into_term).collect(),
                Box::new(Arc::unwrap_or_clone(t)),
            )),
            Tail::Nil => Expr::List(items, Box::new(Expr::nil())),
            Tail::Other(t) if items.is_empty() => t,
            Tail::Other(t) => Expr::List(items, Box::new(t)),
        }
    }

    /// A map, folded to a term when every key and value is known.
    pub fn map(pairs: Vec<(Expr, Expr)>) -> Expr {
        if pairs
            .iter()
            .all(|(k, v)| matches!((k, v), (Expr::Term(_), Expr::Term(_))))
        {
            Expr::term(Term::Map(
                pairs.into_iter().map(|(k, v)| (k.into_term(), v.into_term())).collect(),
            ))
        } else {
            Expr::Map(pairs)
        }
    }

    fn into_term(self) -> Term {
        match self {
            Expr::Term(t) => Arc::unwrap_or_clone(t),
            _ => unreachable!("only called on known parts"),
        }
    }

    /// Whether the value depends on the rule's argument.
    pub fn depends_on_arg(&self) -> bool {
        match self {
            Expr::Arg => true,
            Expr::Term(_) | Expr::Unknown(_) => false,
            Expr::Tuple(items) => items.iter().any(Expr::depends_on_arg),
            Expr::List(items, tail) => items.iter().any(Expr::depends_on_arg) || tail.depends_on_arg(),
            Expr::Map(pairs) => pairs.iter().any(|(k, v)| k.depends_on_arg() || v.depends_on_arg()),
            Expr::Fun { env, .. } => env.iter().any(Expr::depends_on_arg),
            Expr::KeywordGet { list, default, .. } => {
                list.depends_on_arg() || default.as_ref().is_some_and(|d| d.depends_on_arg())
            }
            Expr::Element { tuple, .. } => tuple.depends_on_arg(),
            Expr::ChildSpec { child, overrides } => child.depends_on_arg() || overrides.depends_on_arg(),
        }
    }

    /// The elements of a tuple.
    pub(crate) fn tuple_view(&self) -> Option<Vec<Expr>> {
        match self {
            Expr::Term(t) => match &**t {
                Term::Tuple(items) => Some(items.iter().cloned().map(Expr::term).collect()),
                _ => None,
            },
            Expr::Tuple(items) => Some(items.clone()),
            _ => None,
        }
    }

    /// The known elements of a list, and how it ends.
    pub(crate) fn list_view(&self) -> Option<(Vec<Expr>, Tail)> {
        match self {
            Expr::Term(t) => match &**t {
                Term::List(_) | Term::String(_) => Some((
                    t.as_list()
                        .unwrap_or_default()
                        .iter()
                        .cloned()
                        .map(Expr::term)
                        .collect(),
                    Tail::Nil,
                )),
                Term::ImproperList(items, tail) => Some((
                    items.iter().cloned().map(Expr::term).collect(),
                    Tail::Other(Expr::term((**tail).clone())),
                )),
                _ => None,
            },
            Expr::List(items, tail) => {
                let (more, tail) = match tail.list_view() {
                    Some(v) => v,
                    None => (vec![], Tail::Other((**tail).clone())),
                };
                Some((items.iter().cloned().chain(more).collect(), tail))
            }
            _ => None,
        }
    }

    /// The pairs of a map.
    pub(crate) fn map_view(&self) -> Option<Vec<(Expr, Expr)>> {
        match self {
            Expr::Term(t) => match &**t {
                Term::Map(pairs) => Some(
                    pairs
                        .iter()
                        .map(|(k, v)| (Expr::term(k.clone()), Expr::term(v.clone())))
                        .collect(),
                ),
                _ => None,
            },
            Expr::Map(pairs) => Some(pairs.clone()),
            _ => None,
        }
    }

    /// `Keyword.get/3`'s lookup: the first `{key, value}` element.
    pub(crate) fn keyword_lookup(&self, key: &Term) -> Lookup {
        let Some((items, tail)) = self.list_view() else {
            return Lookup::Unknown;
        };
        for item in items {
            match item.tuple_view().as_deref() {
                Some([k, v]) => match k.as_term() {
                    Some(k) if k.erl_eq(key) => return Lookup::Found(v.clone()),
                    Some(_) => {}
                    None => return Lookup::Unknown,
                },
                Some(_) => {}
                None if matches!(item, Expr::Term(_)) => {}
                None => return Lookup::Unknown,
            }
        }
        match tail {
            Tail::Nil => Lookup::Absent,
            Tail::Other(_) => Lookup::Unknown,
        }
    }

    /// `maps:get/2`'s lookup.
    pub(crate) fn map_lookup(&self, key: &Term) -> Lookup {
        let Some(pairs) = self.map_view() else {
            return Lookup::Unknown;
        };
        let mut unknown_key = false;
        for (k, v) in pairs.iter().rev() {
            match k.as_term() {
                Some(k) if k.erl_eq(key) => return Lookup::Found(v.clone()),
                Some(_) => {}
                None => unknown_key = true,
            }
        }
        if unknown_key { Lookup::Unknown } else { Lookup::Absent }
    }

    /// The map with `key` set to `value` (in the place of the key it replaces).
    pub(crate) fn map_put(&self, key: Expr, value: Expr) -> Option<Expr> {
        let mut pairs = self.map_view()?;
        let same = |k: &Expr| matches!((k.as_term(), key.as_term()), (Some(a), Some(b)) if a.erl_eq(b));
        match pairs.iter().position(|(k, _)| same(k)) {
            Some(i) => pairs[i].1 = value,
            None => pairs.push((key, value)),
        }
        Some(Expr::map(pairs))
    }

    /// `Keyword.get(self, key, default)`, folded when the list says enough.
    pub(crate) fn keyword_get(self, key: Term, default: Option<Expr>) -> Expr {
        match self.keyword_lookup(&key) {
            Lookup::Found(v) => v,
            Lookup::Absent => match default {
                Some(d) => d,
                None => Expr::unknown(format!("<no {} in the options>", key)),
            },
            Lookup::Unknown if self.depends_on_arg() => Expr::KeywordGet {
                list: Box::new(self),
                key,
                default: default.map(Box::new),
            },
            Lookup::Unknown => Expr::unknown(format!("<the {key} option>")),
        }
    }

    /// `elem(self, index)`, folded when the tuple is known.
    pub(crate) fn element(self, index: usize) -> Expr {
        match self.tuple_view() {
            Some(items) => items
                .get(index)
                .cloned()
                .unwrap_or_else(|| Expr::unknown("<a missing tuple element>")),
            None if self.depends_on_arg() => Expr::Element {
                tuple: Box::new(self),
                index,
            },
            None => Expr::unknown("<a tuple element>"),
        }
    }

    /// The value with the rule argument replaced by `arg`, folded.
    pub fn substitute(&self, arg: &Expr) -> Expr {
        match self {
            Expr::Arg => arg.clone(),
            Expr::Term(_) | Expr::Unknown(_) => self.clone(),
            Expr::Tuple(items) => Expr::tuple(items.iter().map(|i| i.substitute(arg)).collect()),
            Expr::List(items, tail) => {
                Expr::cons(items.iter().map(|i| i.substitute(arg)).collect(), tail.substitute(arg))
            }
            Expr::Map(pairs) => Expr::map(
                pairs
                    .iter()
                    .map(|(k, v)| (k.substitute(arg), v.substitute(arg)))
                    .collect(),
            ),
            Expr::Fun { lambda, env } => Expr::Fun {
                lambda: *lambda,
                env: env.iter().map(|e| e.substitute(arg)).collect(),
            },
            Expr::KeywordGet { list, key, default } => list
                .substitute(arg)
                .keyword_get(key.clone(), default.as_ref().map(|d| d.substitute(arg))),
            Expr::Element { tuple, index } => tuple.substitute(arg).element(*index),
            Expr::ChildSpec { child, overrides } => Expr::ChildSpec {
                child: Box::new(child.substitute(arg)),
                overrides: Box::new(overrides.substitute(arg)),
            },
        }
    }

    /// What kind of term this is, as far as known.
    pub(crate) fn kind(&self) -> Option<Kind> {
        Some(match self {
            Expr::Term(t) => Kind::of(t),
            Expr::Tuple(items) => Kind::Tuple(items.len()),
            Expr::List(items, _) if !items.is_empty() => Kind::NonEmptyList,
            Expr::Map(_) | Expr::ChildSpec { .. } => Kind::Map,
            Expr::Fun { .. } => Kind::Fun,
            _ => return None,
        })
    }

    /// `=:=`, when the known parts decide it.
    pub(crate) fn exactly_equals(&self, other: &Expr) -> Option<bool> {
        if let (Expr::Term(a), Expr::Term(b)) = (self, other) {
            return Some(a.erl_eq(b));
        }
        let (a, b) = (self.kind()?, other.kind()?);
        match (a, b) {
            (Kind::Tuple(x), Kind::Tuple(y)) if x == y => {
                let (p, q) = (self.tuple_view()?, other.tuple_view()?);
                let mut all = Some(true);
                for (x, y) in p.iter().zip(&q) {
                    match x.exactly_equals(y) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => all = None,
                    }
                }
                all
            }
            (a, b) if !a.compatible(b) => Some(false),
            _ => None,
        }
    }
}

/// The type of a term, as type tests see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Atom,
    Integer,
    Float,
    Nil,
    NonEmptyList,
    Tuple(usize),
    Map,
    Binary,
    Fun,
    Other,
}

impl Kind {
    fn of(t: &Term) -> Kind {
        match t {
            Term::Atom(_) => Kind::Atom,
            Term::Integer(_) => Kind::Integer,
            Term::Float(_) => Kind::Float,
            Term::String(s) if s.is_empty() => Kind::Nil,
            Term::List(items) if items.is_empty() => Kind::Nil,
            Term::String(_) | Term::List(_) | Term::ImproperList(..) => Kind::NonEmptyList,
            Term::Tuple(items) => Kind::Tuple(items.len()),
            Term::Map(_) => Kind::Map,
            Term::Binary(_) => Kind::Binary,
            // Opaque values, and any kind of term a type test here does not ask about.
            _ => Kind::Other,
        }
    }

    /// Whether two values of these kinds could be equal.
    fn compatible(self, other: Kind) -> bool {
        self == other || self == Kind::Other || other == Kind::Other
    }
}

/// A condition on the argument under which a `child_spec/1` path runs: the test the code
/// made, and its outcome on that path.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    pub value: Expr,
    pub test: Test,
    pub holds: bool,
}

/// A test a guard makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    IsAtom,
    IsInteger,
    IsList,
    IsNil,
    IsNonEmptyList,
    IsTuple,
    IsMap,
    IsBinary,
    IsFunction,
    /// The tuple has this many elements.
    Arity(usize),
    /// Equal (`=:=`) to one of these.
    OneOf(Vec<Term>),
}

impl Test {
    /// The outcome on `value`, when its known parts decide it.
    pub(crate) fn check(&self, value: &Expr) -> Option<bool> {
        if let Test::OneOf(terms) = self {
            let mut undecided = false;
            for t in terms {
                match value.exactly_equals(&Expr::term(t.clone())) {
                    Some(true) => return Some(true),
                    Some(false) => {}
                    None => undecided = true,
                }
            }
            return if undecided { None } else { Some(false) };
        }
        // A list whose first cells are known is a non-empty list, whatever its tail.
        let kind = value.kind()?;
        Some(match self {
            Test::IsAtom => kind == Kind::Atom,
            Test::IsInteger => kind == Kind::Integer,
            Test::IsList => matches!(kind, Kind::Nil | Kind::NonEmptyList),
            Test::IsNil => kind == Kind::Nil,
            Test::IsNonEmptyList => kind == Kind::NonEmptyList,
            Test::IsTuple => matches!(kind, Kind::Tuple(_)),
            Test::IsMap => kind == Kind::Map,
            Test::IsBinary => kind == Kind::Binary,
            Test::IsFunction => kind == Kind::Fun,
            Test::Arity(n) => kind == Kind::Tuple(*n),
            Test::OneOf(_) => unreachable!("handled above"),
        })
    }
}

impl Guard {
    /// The outcome with the rule argument replaced by `arg`: `Some(true)` when the path's
    /// condition holds, `Some(false)` when it cannot, `None` when the known parts do not say.
    pub fn check(&self, arg: &Expr) -> Option<bool> {
        self.test
            .check(&self.value.substitute(arg))
            .map(|outcome| outcome == self.holds)
    }
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Test::IsAtom => f.write_str("is_atom"),
            Test::IsInteger => f.write_str("is_integer"),
            Test::IsList => f.write_str("is_list"),
            Test::IsNil => f.write_str("is []"),
            Test::IsNonEmptyList => f.write_str("is a non-empty list"),
            Test::IsTuple => f.write_str("is_tuple"),
            Test::IsMap => f.write_str("is_map"),
            Test::IsBinary => f.write_str("is_binary"),
            Test::IsFunction => f.write_str("is_function"),
            Test::Arity(n) => write!(f, "is a tuple of {n}"),
            Test::OneOf(terms) => {
                f.write_str("is one of ")?;
                for (i, t) in terms.iter().enumerate() {
                    write!(f, "{}{t}", if i > 0 { ", " } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(pairs: &[(&str, Expr)]) -> Expr {
        Expr::cons(
            pairs
                .iter()
                .map(|(k, v)| Expr::tuple(vec![Expr::atom(k), v.clone()]))
                .collect(),
            Expr::nil(),
        )
    }

    #[test]
    fn constructors_fold_known_parts() {
        assert_eq!(
            Expr::tuple(vec![Expr::atom("a"), Expr::nil()]),
            Expr::term(Term::Tuple(vec![Term::atom("a"), Term::List(vec![])]))
        );
        let tail = Expr::cons(vec![Expr::atom("b")], Expr::nil());
        assert_eq!(
            Expr::cons(vec![Expr::atom("a")], tail),
            Expr::term(Term::List(vec![Term::atom("a"), Term::atom("b")]))
        );
        let open = Expr::cons(vec![Expr::atom("a")], Expr::unknown("rest"));
        assert_eq!(
            open.list_view(),
            Some((vec![Expr::atom("a")], Tail::Other(Expr::unknown("rest"))))
        );
    }

    #[test]
    fn keyword_lookups_fold_through_the_argument() {
        let get = Expr::Arg.keyword_get(Term::atom("name"), Some(Expr::atom("Elixir.Registry")));
        assert!(matches!(get, Expr::KeywordGet { .. }));
        let arg = kw(&[
            ("keys", Expr::atom("unique")),
            ("name", Expr::atom("Elixir.Shop.Registry")),
        ]);
        assert_eq!(get.substitute(&arg), Expr::atom("Elixir.Shop.Registry"));
        assert_eq!(get.substitute(&Expr::nil()), Expr::atom("Elixir.Registry"));
        // A runtime value under another key does not hide the one looked for...
        let arg = kw(&[("port", Expr::unknown("port")), ("name", Expr::atom("n"))]);
        assert_eq!(get.substitute(&arg), Expr::atom("n"));
        // ...but an unknown rest of the list does.
        let arg = Expr::cons(vec![], Expr::unknown("opts"));
        assert!(matches!(get.substitute(&arg), Expr::Unknown(_)));
    }

    #[test]
    fn guards_decide_on_known_parts() {
        let name = Expr::Arg.keyword_get(Term::atom("name"), None);
        let is_atom = Guard {
            value: name.clone(),
            test: Test::IsAtom,
            holds: true,
        };
        assert_eq!(is_atom.check(&kw(&[("name", Expr::atom("x"))])), Some(true));
        let global = Expr::tuple(vec![Expr::atom("global"), Expr::unknown("n")]);
        assert_eq!(is_atom.check(&kw(&[("name", global.clone())])), Some(false));
        let via = Guard {
            value: name.element(0),
            test: Test::OneOf(vec![Term::atom("via")]),
            holds: true,
        };
        assert_eq!(via.check(&kw(&[("name", global)])), Some(false));
        assert_eq!(via.check(&Expr::unknown("opts")), None);
    }
}
