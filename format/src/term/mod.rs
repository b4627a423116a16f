//! Erlang terms as they appear in text files: `.rel`, `.app`, `.appup`, `sys.config`, `relup`.
//!
//! [`parse_terms`] reads what `file:consult/1` reads: a sequence of terms, each ending in a
//! `.`, with `%` comments. Atoms (bare and quoted), strings (adjacent ones concatenated),
//! characters (`$a`), integers (with `Base#digits` and `_` separators), floats, binaries of
//! string and byte segments, tuples, lists (also improper) and maps. Errors name the file, the
//! line and column, what was expected and what was found.
//!
//! [`Term`]'s `Display` writes the term back in a form OTP reads: atoms are quoted when
//! needed, strings and binaries are escaped. A string and the list of its character codes are
//! the same Erlang term; [`Term::erl_eq`] compares by that rule.
//!
//! Pids, ports and references have no text form that `file:consult/1` reads: they only come
//! from the external term format ([`crate::etf`]), from a running node. They display as the
//! shell prints them, `<0.106.0>`, `#Port<0.5>`, `#Ref<0.3381159969.3905421314.76990>`, with
//! one difference: where the shell writes a number that indexes its own table of connected
//! nodes (0 for itself), rel writes the node's name, which means something outside that VM:
//! `<target@vm.106.0>`. Like [`Term::Opaque`], these forms are for people, not for reading back.

mod parse;

/// Terms stored (in a kept snapshot, SPEC.md §8.5) as their text, and read back with the
/// text parser and its bounds: whatever the stored bytes, reading them cannot nest deeper
/// than a term file can.
pub(crate) mod stored {
    use super::{Term, parse_term};
    use serde::{Deserialize, Deserializer, Serializer};

    const FILE: &str = "a term of a stored snapshot";

    pub(crate) fn serialize<S: Serializer>(term: &Term, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{term}."))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Term, D::Error> {
        let text = <&str>::deserialize(d)?;
        parse_term(FILE, text).map_err(serde::de::Error::custom)
    }

    /// An optional term.
    pub(crate) mod option {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(term: &Option<Term>, s: S) -> Result<S::Ok, S::Error> {
            match term {
                Some(t) => s.serialize_some(&format!("{t}.")),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Term>, D::Error> {
            Option::<&str>::deserialize(d)?
                .map(|text| parse_term(FILE, text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }

    /// A list of terms.
    pub(crate) mod list {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(terms: &[Term], s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(terms.iter().map(|t| format!("{t}.")))
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Term>, D::Error> {
            Vec::<&str>::deserialize(d)?
                .into_iter()
                .map(|text| parse_term(FILE, text).map_err(serde::de::Error::custom))
                .collect()
        }
    }
}

use std::fmt::{self, Write as _};

pub use parse::{TermError, parse_term, parse_terms};

/// An Erlang term.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Atom(String),
    Integer(i128),
    Float(f64),
    /// A `"..."` literal: in Erlang a list of character codes.
    String(String),
    Binary(Vec<u8>),
    List(Vec<Term>),
    /// `[H1, H2 | Tail]` where the tail is not a list.
    ImproperList(Vec<Term>, Box<Term>),
    Tuple(Vec<Term>),
    Map(Vec<(Term, Term)>),
    /// A process identifier, `<ID.SERIAL>` on `node`. `creation` tells incarnations of a
    /// node with the same name apart.
    Pid {
        node: String,
        id: u32,
        serial: u32,
        creation: u32,
    },
    /// A port identifier on `node`.
    Port {
        node: String,
        id: u64,
        creation: u32,
    },
    /// A reference made on `node`: up to five 32-bit words, least significant first (the
    /// order of the external format; the shell prints them the other way round).
    Reference {
        node: String,
        creation: u32,
        ids: Vec<u32>,
    },
    /// A value from the external term format with no model here (fun, bitstring, integer
    /// beyond 128 bits), described. Never produced by the text parser, and never encoded.
    Opaque(String),
}

impl Term {
    /// An atom.
    pub fn atom(s: &str) -> Term {
        Term::Atom(s.to_owned())
    }

    /// A string (Erlang list of characters).
    pub fn string(s: &str) -> Term {
        Term::String(s.to_owned())
    }

    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Term::Atom(a) => Some(a),
            _ => None,
        }
    }

    /// The text of a string literal or of a list of character codes.
    pub fn as_string(&self) -> Option<String> {
        match self {
            Term::String(s) => Some(s.clone()),
            Term::List(items) => items
                .iter()
                .map(|t| match t {
                    Term::Integer(i) => u32::try_from(*i).ok().and_then(char::from_u32),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }

    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The elements of a proper list; a string is the list of its characters.
    pub fn as_list(&self) -> Option<std::borrow::Cow<'_, [Term]>> {
        match self {
            Term::List(items) => Some(std::borrow::Cow::Borrowed(items)),
            Term::String(s) => Some(std::borrow::Cow::Owned(
                s.chars().map(|c| Term::Integer(i128::from(u32::from(c)))).collect(),
            )),
            _ => None,
        }
    }

    /// The same term with every non-empty proper list of printable character codes turned
    /// into a [`Term::String`], as the shell's `~tp` shows it: `"shop"` rather than
    /// `[115,104,111,112]`. The result is the same Erlang term ([`Term::erl_eq`]); terms
    /// decoded from the external format need this to read well, because there a string is
    /// only a list of integers.
    #[must_use]
    pub fn with_strings(self) -> Term {
        fn printable(t: &Term) -> Option<char> {
            let Term::Integer(i) = t else { return None };
            let c = u32::try_from(*i).ok().and_then(char::from_u32)?;
            (!c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{b}' | '\u{8}' | '\u{c}' | '\u{1b}')).then_some(c)
        }
        match self {
            Term::List(items) if !items.is_empty() => match items.iter().map(printable).collect::<Option<String>>() {
                Some(s) => Term::String(s),
                None => Term::List(items.into_iter().map(Term::with_strings).collect()),
            },
            Term::ImproperList(items, tail) => Term::ImproperList(
                items.into_iter().map(Term::with_strings).collect(),
                Box::new(tail.with_strings()),
            ),
            Term::Tuple(items) => Term::Tuple(items.into_iter().map(Term::with_strings).collect()),
            Term::Map(pairs) => Term::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.with_strings(), v.with_strings()))
                    .collect(),
            ),
            other => other,
        }
    }

    /// Equality as Erlang sees it: a string equals the list of its character codes.
    pub fn erl_eq(&self, other: &Term) -> bool {
        match (self, other) {
            (Term::String(_) | Term::List(_), Term::String(_) | Term::List(_)) => {
                let (a, b) = (self.as_list().unwrap_or_default(), other.as_list().unwrap_or_default());
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.erl_eq(y))
            }
            (Term::Tuple(a), Term::Tuple(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.erl_eq(y)),
            (Term::ImproperList(a, ta), Term::ImproperList(b, tb)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.erl_eq(y)) && ta.erl_eq(tb)
            }
            (Term::Map(a), Term::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k.erl_eq(k2) && v.erl_eq(v2)))
            }
            _ => self == other,
        }
    }
}

const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case", "catch", "cond", "div",
    "else", "end", "fun", "if", "let", "maybe", "not", "of", "or", "orelse", "receive", "rem", "try", "when", "xor",
];

fn atom_needs_quotes(a: &str) -> bool {
    let mut chars = a.chars();
    let Some(first) = chars.next() else { return true };
    !first.is_ascii_lowercase()
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '@')
        || RESERVED.contains(&a)
}

fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str, quote: char) -> fmt::Result {
    f.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if c == quote => write!(f, "\\{c}")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\x{{{:X}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char(quote)
}

fn write_seq(f: &mut fmt::Formatter<'_>, items: &[Term]) -> fmt::Result {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        write!(f, "{t}")?;
    }
    Ok(())
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Atom(a) if atom_needs_quotes(a) => write_escaped(f, a, '\''),
            Term::Atom(a) => f.write_str(a),
            Term::Integer(i) => write!(f, "{i}"),
            Term::Float(x) => {
                // Erlang wants a digit on both sides of the point: `1.0e-7`, not `1e-7`.
                let s = format!("{x:?}");
                match s.split_once('e') {
                    Some((m, e)) if !m.contains('.') => write!(f, "{m}.0e{e}"),
                    _ => f.write_str(&s),
                }
            }
            Term::String(s) => write_escaped(f, s, '"'),
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) if s.is_ascii() && s.chars().all(|c| !c.is_ascii_control() || c == '\n' || c == '\t') => {
                    f.write_str("<<")?;
                    write_escaped(f, s, '"')?;
                    f.write_str(">>")
                }
                Ok(s) if !s.chars().any(char::is_control) => {
                    f.write_str("<<")?;
                    write_escaped(f, s, '"')?;
                    f.write_str("/utf8>>")
                }
                _ => {
                    f.write_str("<<")?;
                    for (i, byte) in b.iter().enumerate() {
                        if i > 0 {
                            f.write_char(',')?;
                        }
                        write!(f, "{byte}")?;
                    }
                    f.write_str(">>")
                }
            },
            Term::List(items) => {
                f.write_char('[')?;
                write_seq(f, items)?;
                f.write_char(']')
            }
            Term::ImproperList(items, tail) => {
                f.write_char('[')?;
                write_seq(f, items)?;
                write!(f, "|{tail}]")
            }
            Term::Tuple(items) => {
                f.write_char('{')?;
                write_seq(f, items)?;
                f.write_char('}')
            }
            Term::Opaque(what) => write!(f, "'{}'", what.replace('\\', "\\\\").replace('\'', "\\'")),
            Term::Pid { node, id, serial, .. } => write!(f, "<{node}.{id}.{serial}>"),
            Term::Port { node, id, .. } => write!(f, "#Port<{node}.{id}>"),
            Term::Reference { node, ids, .. } => {
                write!(f, "#Ref<{node}")?;
                for id in ids.iter().rev() {
                    write!(f, ".{id}")?;
                }
                f.write_char('>')
            }
            Term::Map(pairs) => {
                f.write_str("#{")?;
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{k} => {v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

/// Writes terms as a term file: each term followed by `.` and a newline.
pub fn write_terms(terms: &[Term]) -> String {
    let mut out = String::new();
    for t in terms {
        let _ = writeln!(out, "{t}.");
    }
    out
}
