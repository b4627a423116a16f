//! Values written the way the module's source would write them, for warnings: a child of an
//! Elixir supervisor reads `{Phoenix.PubSub, [name: Shop.PubSub]}`, one of an Erlang
//! supervisor `#{id => a, start => {m, start_link, []}}`.

use std::fmt::Write as _;

use super::expr::Expr;
use crate::term::Term;

/// Nesting written out; deeper parts show as `...`.
const MAX_NESTING: usize = 64;

/// The syntax to write values in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Elixir,
    Erlang,
}

impl Syntax {
    /// Elixir for modules whose name starts with `Elixir.`, Erlang for the others.
    pub fn of_module(module: &str) -> Syntax {
        if module.starts_with("Elixir.") {
            Syntax::Elixir
        } else {
            Syntax::Erlang
        }
    }

    /// A module name: `Shop.Store` or `:lists` in Elixir, `lists` in Erlang.
    pub fn module(self, module: &str) -> String {
        match self {
            Syntax::Elixir => elixir_atom(module, true),
            Syntax::Erlang => Term::atom(module).to_string(),
        }
    }

    /// A call, `Mod.fun(args)` or `mod:fun(Args)`.
    pub fn call(self, module: &str, function: &str, args: &[Expr]) -> String {
        let args: Vec<String> = args
            .iter()
            .map(|a| match a {
                // A nested description, or a whole literal children list, would make the text
                // hard to read (and cost more to write than the rest of the analysis).
                Expr::Unknown(_) => "_".to_owned(),
                a if weight(a, 12) > 12 => "...".to_owned(),
                a => self.expr(a),
            })
            .collect();
        match self {
            // Auto-imported in both languages.
            _ if module == "erlang" && matches!(function, "self" | "node" | "make_ref") => {
                format!("{function}({})", args.join(", "))
            }
            Syntax::Elixir if module.starts_with("Elixir.") => {
                format!("{}.{}({})", &module[7..], function, args.join(", "))
            }
            Syntax::Elixir => format!("{}.{}({})", elixir_atom(module, true), function, args.join(", ")),
            Syntax::Erlang => format!("{}:{}({})", Term::atom(module), Term::atom(function), args.join(", ")),
        }
    }

    /// A term.
    pub fn term(self, t: &Term) -> String {
        self.expr(&Expr::term(t.clone()))
    }

    /// A value known in parts; unknown parts show their description.
    pub fn expr(self, e: &Expr) -> String {
        let mut out = String::new();
        self.write(&mut out, e);
        out
    }

    fn write(self, out: &mut String, e: &Expr) {
        self.write_nested(out, e, 0);
    }

    fn write_nested(self, out: &mut String, e: &Expr, depth: usize) {
        // Values built by code can nest deeper than anyone reads; stop before the stack does.
        if depth > MAX_NESTING {
            out.push_str("...");
            return;
        }
        let d = depth + 1;
        match e {
            Expr::Term(t) => self.write_term(out, t, d),
            Expr::Unknown(what) => out.push_str(what),
            Expr::Arg => out.push_str(if self == Syntax::Elixir { "arg" } else { "Arg" }),
            Expr::Tuple(items) => self.seq(out, "{", items, "}", d),
            Expr::List(..) => {
                let (items, tail) = e.list_view().expect("a list");
                if self == Syntax::Elixir && tail == super::expr::Tail::Nil && self.keywords(out, &items, d) {
                    return;
                }
                self.seq(out, "[", &items, "", d);
                if let super::expr::Tail::Other(t) = tail {
                    out.push_str(match (items.is_empty(), self) {
                        (true, _) => "",
                        (false, Syntax::Elixir) => " | ",
                        (false, Syntax::Erlang) => "|",
                    });
                    self.write_nested(out, &t, d);
                }
                out.push(']');
            }
            Expr::Map(pairs) => self.map(out, pairs, d),
            Expr::Fun { .. } => out.push_str(if self == Syntax::Elixir {
                "fn ... end"
            } else {
                "fun ... end"
            }),
            Expr::KeywordGet { list, key, default } => {
                out.push_str(match (self, default) {
                    (Syntax::Elixir, Some(_)) => "Keyword.get(",
                    (Syntax::Elixir, None) => "Keyword.fetch!(",
                    (Syntax::Erlang, _) => "proplists:get_value(",
                });
                let key = Expr::term(key.clone());
                let mut args = vec![&**list, &key];
                if self == Syntax::Erlang {
                    args.swap(0, 1);
                }
                if let Some(default) = default {
                    args.push(default);
                }
                for (i, a) in args.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.write_nested(out, a, d);
                }
                out.push(')');
            }
            Expr::Element { tuple, index } => {
                let _ = write!(out, "elem(");
                self.write_nested(out, tuple, d);
                let _ = write!(out, ", {index})");
            }
            Expr::ChildSpec { child, overrides } => {
                out.push_str("Supervisor.child_spec(");
                self.write_nested(out, child, d);
                out.push_str(", ");
                self.write_nested(out, overrides, d);
                out.push(')');
            }
        }
    }

    /// Between elements: Erlang is written as OTP prints terms, without spaces.
    fn comma(self) -> &'static str {
        match self {
            Syntax::Elixir => ", ",
            Syntax::Erlang => ",",
        }
    }

    fn seq(self, out: &mut String, open: &str, items: &[Expr], close: &str, d: usize) {
        out.push_str(open);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(self.comma());
            }
            self.write_nested(out, item, d);
        }
        out.push_str(close);
    }

    /// `[name: x, port: 1]` when every element is a pair with a plain atom key.
    fn keywords(self, out: &mut String, items: &[Expr], d: usize) -> bool {
        let pairs: Option<Vec<(String, Expr)>> = items
            .iter()
            .map(|i| match i.tuple_view().as_deref() {
                Some([k, v]) => k.as_atom().filter(|a| plain_key(a)).map(|a| (a.to_owned(), v.clone())),
                _ => None,
            })
            .collect();
        let Some(pairs) = pairs.filter(|p| !p.is_empty()) else {
            return false;
        };
        out.push('[');
        for (i, (k, v)) in pairs.iter().enumerate() {
            let _ = write!(out, "{}{k}: ", if i > 0 { ", " } else { "" });
            self.write_nested(out, v, d);
        }
        out.push(']');
        true
    }

    fn map(self, out: &mut String, pairs: &[(Expr, Expr)], d: usize) {
        out.push_str(if self == Syntax::Elixir { "%{" } else { "#{" });
        let short = self == Syntax::Elixir && pairs.iter().all(|(k, _)| k.as_atom().is_some_and(plain_key));
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push_str(self.comma());
            }
            if short {
                let _ = write!(out, "{}: ", k.as_atom().unwrap_or_default());
            } else {
                self.write_nested(out, k, d);
                out.push_str(" => ");
            }
            self.write_nested(out, v, d);
        }
        out.push('}');
    }

    fn write_term(self, out: &mut String, t: &Term, d: usize) {
        if self == Syntax::Erlang {
            let _ = write!(out, "{t}");
            return;
        }
        match t {
            Term::Atom(a) => out.push_str(&elixir_atom(a, false)),
            Term::String(s) => {
                let _ = write!(out, "~c{:?}", s);
            }
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) => {
                    let _ = write!(out, "{s:?}");
                }
                Err(_) => {
                    let bytes: Vec<String> = b.iter().map(u8::to_string).collect();
                    let _ = write!(out, "<<{}>>", bytes.join(", "));
                }
            },
            Term::Tuple(items) => self.seq(
                out,
                "{",
                &items.iter().cloned().map(Expr::term).collect::<Vec<_>>(),
                "}",
                d,
            ),
            Term::List(_) | Term::ImproperList(..) => {
                self.write_nested(out, &Expr::List(vec![], Box::new(Expr::term(t.clone()))), d)
            }
            Term::Map(pairs) => self.map(
                out,
                &pairs
                    .iter()
                    .map(|(k, v)| (Expr::term(k.clone()), Expr::term(v.clone())))
                    .collect::<Vec<_>>(),
                d,
            ),
            // Numbers, and values Elixir has no literal for, as the term writer writes them.
            _ => {
                let _ = write!(out, "{t}");
            }
        }
    }
}

/// How many parts `e` has, counting no further than `limit`.
fn weight(e: &Expr, limit: usize) -> usize {
    fn term(t: &Term, limit: usize) -> usize {
        let mut n = 1;
        let mut add = |t: &Term| {
            if n <= limit {
                n += term(t, limit - n.min(limit));
            }
        };
        match t {
            Term::Tuple(items) | Term::List(items) => items.iter().for_each(&mut add),
            Term::ImproperList(items, tail) => {
                items.iter().for_each(&mut add);
                add(tail);
            }
            Term::Map(pairs) => pairs.iter().for_each(|(k, v)| {
                add(k);
                add(v);
            }),
            _ => {}
        }
        n
    }
    let parts: Vec<&Expr> = match e {
        Expr::Term(t) => return term(t, limit),
        Expr::Tuple(items) => items.iter().collect(),
        Expr::List(items, tail) => items.iter().chain([&**tail]).collect(),
        Expr::Map(pairs) => pairs.iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => vec![],
    };
    let mut n = 1;
    for p in parts {
        if n > limit {
            break;
        }
        n += weight(p, limit - n.min(limit));
    }
    n
}

/// An atom key that Elixir writes as `key:`.
fn plain_key(a: &str) -> bool {
    let mut chars = a.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
}

/// An atom as Elixir writes it: `Shop.Store` for `'Elixir.Shop.Store'`, `nil`, `:ok`,
/// `:"with space"`. `module` writes other atoms the way a module name is written (`:lists`).
fn elixir_atom(a: &str, module: bool) -> String {
    if let Some(alias) = a.strip_prefix("Elixir.")
        && !alias.is_empty()
        && alias.split('.').all(|part| {
            let mut c = part.chars();
            c.next().is_some_and(|c| c.is_ascii_uppercase()) && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    {
        return alias.to_owned();
    }
    if !module && matches!(a, "nil" | "true" | "false") {
        return a.to_owned();
    }
    let simple = {
        let mut c = a.chars();
        c.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && c.clone().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
    };
    if simple { format!(":{a}") } else { format!(":{a:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Expr {
        Expr::term(crate::term::parse_term("t", text).unwrap())
    }

    #[test]
    fn children_read_like_their_source() {
        let e = Syntax::Elixir;
        assert_eq!(e.expr(&parse("'Elixir.Shop.Store'.")), "Shop.Store");
        assert_eq!(
            e.expr(&parse("{'Elixir.Task.Supervisor', [{name, 'Elixir.Shop.TaskSup'}]}.")),
            "{Task.Supervisor, [name: Shop.TaskSup]}"
        );
        assert_eq!(
            e.expr(&parse(
                "#{id => beta, start => {'Elixir.Shop.Worker', start_link, [beta]}}."
            )),
            "%{id: :beta, start: {Shop.Worker, :start_link, [:beta]}}"
        );
        let runtime = Expr::tuple(vec![
            Expr::atom("Elixir.SomeDep"),
            Expr::cons(
                vec![Expr::tuple(vec![
                    Expr::atom("name"),
                    Expr::unknown(e.call(
                        "Elixir.Application",
                        "get_env",
                        &[Expr::atom("shop"), Expr::atom("dep")],
                    )),
                ])],
                Expr::nil(),
            ),
        ]);
        assert_eq!(e.expr(&runtime), "{SomeDep, [name: Application.get_env(:shop, :dep)]}");
        assert_eq!(Syntax::Erlang.expr(&parse("#{id => a}.")), "#{id => a}");
        assert_eq!(
            e.expr(&parse("[1, nil, 'a b', <<\"x\">>].")),
            "[1, nil, :\"a b\", \"x\"]"
        );
        assert_eq!(e.call("lists", "reverse", &[Expr::unknown("x")]), ":lists.reverse(_)");
    }
}
