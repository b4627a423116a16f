//! Erlang's External Term Format: [`decode`] into [`Term`] and [`encode`] back.
//!
//! Two users need it. BEAM files keep attributes (`Attr`), compile info (`CInf`), literals
//! (`LitT`) and debug info (`Dbgi`) as `term_to_binary/1` output; and the distribution
//! protocol, through which rel talks to a running node, carries every message as external
//! terms. Both inputs are untrusted: every length is checked against what remains before
//! anything is allocated, and nesting is bounded.
//!
//! # What maps to what
//!
//! ```text
//! tag  name                    Term                   encoded when
//!  97  SMALL_INTEGER_EXT       Integer                0..=255
//!  98  INTEGER_EXT             Integer                i32 range
//! 110  SMALL_BIG_EXT           Integer (≤ 128 bits)   any other i128
//! 111  LARGE_BIG_EXT           Integer or Opaque      never (110 holds every i128)
//!  70  NEW_FLOAT_EXT           Float                  finite floats
//!  99  FLOAT_EXT (text, old)   Float                  never
//! 119  SMALL_ATOM_UTF8_EXT     Atom                   atoms of ≤ 255 bytes
//! 118  ATOM_UTF8_EXT           Atom                   longer atoms (≤ 255 characters)
//! 100  ATOM_EXT, 115 SMALL_ATOM_EXT (Latin-1)  Atom   never
//! 106  NIL_EXT                 List([])               empty lists and strings
//! 107  STRING_EXT              List of Integer        lists of 1..=65535 integers in 0..=255
//! 108  LIST_EXT                List / ImproperList    other lists
//! 104  SMALL_TUPLE_EXT         Tuple                  ≤ 255 elements
//! 105  LARGE_TUPLE_EXT         Tuple                  more
//! 116  MAP_EXT                 Map                    always
//! 109  BINARY_EXT              Binary                 always
//!  88  NEW_PID_EXT, 103 PID_EXT                Pid    88
//!  89  NEW_PORT_EXT, 102 PORT_EXT              Port   89 for ids below 2^28
//! 120  V4_PORT_EXT                             Port   larger ids
//!  90  NEWER_REFERENCE_EXT, 114 NEW_REFERENCE_EXT, 101 REFERENCE_EXT   Reference   90
//! 112  NEW_FUN_EXT, 113 EXPORT_EXT, 77 BIT_BINARY_EXT   Opaque   never
//! ```
//!
//! The encoder writes what OTP 25's `term_to_binary(T, [{minor_version, 2}])` writes, byte
//! for byte, except for the order of map keys (OTP orders them by its own term order or
//! hash; rel keeps the order it was given). A string is a list in Erlang, so a
//! [`Term::String`] and the list of its character codes encode alike, and decode as a list;
//! [`Term::with_strings`] turns printable lists back into strings for display.
//!
//! Some terms have no external form and [`encode`] refuses them with an [`EncodeError`]
//! naming the term: [`Term::Opaque`], floats that are not finite, atoms longer than 255
//! characters, references of more than five words, maps with a key twice (OTP's
//! `binary_to_term/1` refuses those, and a node receiving one drops the connection), and
//! nesting deeper than the decoder accepts.

use std::collections::HashSet;

use crate::term::Term;

/// Why bytes are not a valid external term.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("invalid external term at byte {at}: {what}")]
pub struct EtfError {
    pub at: usize,
    pub what: String,
}

/// Why a term has no external form.
#[derive(Debug, thiserror::Error, PartialEq, Clone)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("{0} has no external form here: it stands for a value rel decoded but does not model")]
    Opaque(String),
    #[error("the float {0} has no Erlang counterpart: Erlang floats are finite")]
    NonFiniteFloat(f64),
    #[error("the atom `{prefix}…` has {chars} characters; Erlang allows at most 255")]
    AtomTooLong { prefix: String, chars: usize },
    #[error("the reference {reference} has {words} words; the external format allows at most 5")]
    ReferenceTooLong { reference: String, words: usize },
    #[error("the map has the key {0} twice, which OTP refuses")]
    DuplicateKey(String),
    #[error("a {what} of {len} elements is longer than the external format allows (2^32 - 1)")]
    TooLong { what: &'static str, len: usize },
    #[error("the term nests deeper than {MAX_DEPTH} levels, which the decoder would refuse")]
    TooDeep,
}

/// Deeper nesting is refused, both ways: real literals, attributes and messages nest far
/// less, and recursion must stay within a thread stack of 2 MiB even in a debug build.
const MAX_DEPTH: usize = 128;

/// The version byte that starts every external term.
pub const VERSION: u8 = 131;

/// Decodes one term that starts with the version byte 131 and fills `bytes` exactly.
pub fn decode(bytes: &[u8]) -> Result<Term, EtfError> {
    let (t, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(EtfError {
            at: used,
            what: "trailing bytes after the term".into(),
        });
    }
    Ok(t)
}

/// Decodes the term (with its version byte) at the start of `bytes`, and says how many
/// bytes it took. A distribution message is two terms back to back.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Term, usize), EtfError> {
    decode_prefix_bounded(bytes, usize::MAX)
}

/// As [`decode_prefix`], refusing input that holds more than `max_terms` terms, every
/// element of every string, list, tuple and map counted. Each [`Term`] takes the same
/// memory however small its encoding (one byte for a character of a string), so this bounds
/// what a peer's message can cost to decode, where the length of the input alone does not.
pub fn decode_prefix_bounded(bytes: &[u8], max_terms: usize) -> Result<(Term, usize), EtfError> {
    let mut d = Decoder {
        b: bytes,
        pos: 0,
        budget: max_terms,
        max_terms,
    };
    match d.u8()? {
        VERSION => {}
        v => return Err(d.err(&format!("version byte {v}, expected {VERSION}"))),
    }
    let t = d.term(0)?;
    Ok((t, d.pos))
}

struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
    /// How many more terms may be made.
    budget: usize,
    max_terms: usize,
}

impl Decoder<'_> {
    fn err(&self, what: &str) -> EtfError {
        EtfError {
            at: self.pos,
            what: what.to_owned(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], EtfError> {
        if self.b.len() - self.pos < n {
            return Err(self.err(&format!("{n} bytes needed, {} left", self.b.len() - self.pos)));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], EtfError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, EtfError> {
        Ok(usize::from(u16::from_be_bytes(self.array()?)))
    }

    fn u32(&mut self) -> Result<u32, EtfError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn len32(&mut self) -> Result<usize, EtfError> {
        Ok(self.u32()? as usize)
    }

    /// A count of elements that each need at least one byte, checked against what is left.
    fn count(&mut self, n: usize) -> Result<usize, EtfError> {
        if n > self.b.len() - self.pos {
            return Err(self.err(&format!("count {n} exceeds the remaining bytes")));
        }
        Ok(n)
    }

    fn atom_text(&mut self, len: usize, latin1: bool) -> Result<String, EtfError> {
        let raw = self.take(len)?;
        if latin1 {
            Ok(raw.iter().map(|&b| char::from(b)).collect())
        } else {
            String::from_utf8(raw.to_vec()).map_err(|_| self.err("atom is not UTF-8"))
        }
    }

    fn atom(&mut self, tag: u8) -> Result<String, EtfError> {
        match tag {
            100 => {
                let n = self.u16()?;
                self.atom_text(n, true)
            }
            115 => {
                let n = usize::from(self.u8()?);
                self.atom_text(n, true)
            }
            118 => {
                let n = self.u16()?;
                self.atom_text(n, false)
            }
            119 => {
                let n = usize::from(self.u8()?);
                self.atom_text(n, false)
            }
            _ => Err(self.err(&format!("tag {tag} is not an atom"))),
        }
    }

    /// The node of a pid, port or reference: an atom, never anything else.
    fn node(&mut self) -> Result<String, EtfError> {
        let tag = self.u8()?;
        self.atom(tag)
    }

    /// A creation: one byte in the old forms, four in the new.
    fn creation(&mut self, wide: bool) -> Result<u32, EtfError> {
        if wide { self.u32() } else { Ok(u32::from(self.u8()?)) }
    }

    fn seq(&mut self, n: usize, depth: usize) -> Result<Vec<Term>, EtfError> {
        let n = self.count(n)?;
        (0..n).map(|_| self.term(depth + 1)).collect()
    }

    /// Takes `n` terms from the budget.
    fn spend(&mut self, n: usize) -> Result<(), EtfError> {
        self.budget = self
            .budget
            .checked_sub(n)
            .ok_or_else(|| self.err(&format!("more than {} terms", self.max_terms)))?;
        Ok(())
    }

    fn term(&mut self, depth: usize) -> Result<Term, EtfError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.spend(1)?;
        let tag = self.u8()?;
        Ok(match tag {
            97 => Term::Integer(i128::from(self.u8()?)),
            98 => Term::Integer(i128::from(i32::from_be_bytes(self.array()?))),
            70 => Term::Float(f64::from_be_bytes(self.array()?)),
            99 => {
                let s = self.take(31)?;
                let text: String = s.iter().take_while(|&&b| b != 0).map(|&b| char::from(b)).collect();
                Term::Float(text.trim().parse().map_err(|_| self.err("bad old-style float"))?)
            }
            100 | 115 | 118 | 119 => Term::Atom(self.atom(tag)?),
            104 => {
                let n = usize::from(self.u8()?);
                Term::Tuple(self.seq(n, depth)?)
            }
            105 => {
                let n = self.len32()?;
                Term::Tuple(self.seq(n, depth)?)
            }
            106 => Term::List(vec![]),
            107 => {
                let n = self.u16()?;
                self.spend(n)?;
                Term::List(self.take(n)?.iter().map(|&b| Term::Integer(i128::from(b))).collect())
            }
            108 => {
                let n = self.len32()?;
                let mut items = self.seq(n, depth)?;
                // `[a | [b]]` is the proper list `[a, b]`: OTP never writes a list as a tail,
                // but it reads one, so rel reads it the same way.
                match self.term(depth + 1)? {
                    Term::List(rest) => {
                        items.extend(rest);
                        Term::List(items)
                    }
                    Term::ImproperList(rest, tail) => {
                        items.extend(rest);
                        Term::ImproperList(items, tail)
                    }
                    tail if items.is_empty() => tail,
                    tail => Term::ImproperList(items, Box::new(tail)),
                }
            }
            109 => {
                let n = self.len32()?;
                Term::Binary(self.take(n)?.to_vec())
            }
            77 => {
                let n = self.len32()?;
                let bits = self.u8()?;
                let data = self.take(n)?;
                Term::Opaque(format!("<<{} bytes, {bits} bits in the last>>", data.len()))
            }
            110 | 111 => {
                let n = if tag == 110 {
                    usize::from(self.u8()?)
                } else {
                    self.len32()?
                };
                let negative = self.u8()? != 0;
                let digits = self.take(n)?;
                big_integer(digits, negative).unwrap_or_else(|| Term::Opaque(format!("<integer of {n} bytes>")))
            }
            116 => {
                let n = self.len32()?;
                let n = self.count(n)?;
                let mut pairs = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.term(depth + 1)?;
                    let v = self.term(depth + 1)?;
                    pairs.push((k, v));
                }
                Term::Map(pairs)
            }
            113 => {
                // `fun M:F/A`: two atoms and a small integer. Anything else is refused, not
                // shown: an export fun nested as the module of another would print its
                // escaped text into it, doubling the backslashes at each level.
                let m = self.term(depth + 1)?;
                let f = self.term(depth + 1)?;
                let a = self.term(depth + 1)?;
                match (&m, &f, &a) {
                    (Term::Atom(_), Term::Atom(_), Term::Integer(arity)) if (0..=255).contains(arity) => {
                        Term::Opaque(format!("fun {m}:{f}/{a}"))
                    }
                    _ => return Err(self.err("an export fun is not of an atom module, atom function and arity")),
                }
            }
            112 => {
                let size = self.len32()?;
                if size < 5 {
                    return Err(self.err("fun size too small"));
                }
                self.take(size - 5)?;
                Term::Opaque("<fun>".into())
            }
            88 | 103 => Term::Pid {
                node: self.node()?,
                id: self.u32()?,
                serial: self.u32()?,
                creation: self.creation(tag == 88)?,
            },
            89 | 102 => Term::Port {
                node: self.node()?,
                id: u64::from(self.u32()?),
                creation: self.creation(tag == 89)?,
            },
            120 => Term::Port {
                node: self.node()?,
                id: u64::from_be_bytes(self.array()?),
                creation: self.u32()?,
            },
            90 | 114 => {
                let n = self.u16()?;
                if n > 5 {
                    return Err(self.err(&format!("reference of {n} words; at most 5")));
                }
                let node = self.node()?;
                let creation = self.creation(tag == 90)?;
                let ids = (0..n).map(|_| self.u32()).collect::<Result<_, _>>()?;
                Term::Reference { node, creation, ids }
            }
            101 => {
                let node = self.node()?;
                let id = self.u32()?;
                let creation = self.creation(false)?;
                Term::Reference {
                    node,
                    creation,
                    ids: vec![id],
                }
            }
            80 => return Err(self.err("compressed terms are not expected here")),
            t => return Err(self.err(&format!("unknown tag {t}"))),
        })
    }
}

/// A bignum's little-endian digits as an `i128`, if it fits.
fn big_integer(digits: &[u8], negative: bool) -> Option<Term> {
    let significant = digits.len() - digits.iter().rev().take_while(|&&d| d == 0).count();
    if significant > 16 {
        return None;
    }
    let mut magnitude: u128 = 0;
    for (i, &d) in digits[..significant].iter().enumerate() {
        magnitude |= u128::from(d) << (8 * i);
    }
    let value = if negative {
        0i128.checked_sub_unsigned(magnitude)?
    } else {
        i128::try_from(magnitude).ok()?
    };
    Some(Term::Integer(value))
}

/// Encodes `term` with the version byte, as `term_to_binary(T, [{minor_version, 2}])` does.
pub fn encode(term: &Term) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(term, &mut out)?;
    Ok(out)
}

/// Appends `term`, with its version byte, to `out`. On an error `out` may hold part of the
/// term.
pub fn encode_into(term: &Term, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(VERSION);
    enc(term, out, 0)
}

fn len32(what: &'static str, len: usize) -> Result<[u8; 4], EncodeError> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| EncodeError::TooLong { what, len })
}

fn enc_atom(a: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let chars = a.chars().count();
    if chars > 255 {
        return Err(EncodeError::AtomTooLong {
            prefix: a.chars().take(32).collect(),
            chars,
        });
    }
    // 255 characters of at most 4 bytes each fit in a u16.
    match u8::try_from(a.len()) {
        Ok(n) => out.extend_from_slice(&[119, n]),
        Err(_) => {
            out.push(118);
            out.extend_from_slice(&u16::try_from(a.len()).expect("≤ 1020 bytes").to_be_bytes());
        }
    }
    out.extend_from_slice(a.as_bytes());
    Ok(())
}

fn enc_integer(i: i128, out: &mut Vec<u8>) {
    if let Ok(small) = u8::try_from(i) {
        out.extend_from_slice(&[97, small]);
    } else if let Ok(int) = i32::try_from(i) {
        out.push(98);
        out.extend_from_slice(&int.to_be_bytes());
    } else {
        let digits = i.unsigned_abs().to_le_bytes();
        let n = digits.len() - digits.iter().rev().take_while(|&&d| d == 0).count();
        out.extend_from_slice(&[110, n as u8, u8::from(i < 0)]);
        out.extend_from_slice(&digits[..n]);
    }
}

/// A character code that STRING_EXT can carry.
fn latin1(t: &Term) -> Option<u8> {
    match t {
        Term::Integer(i) => u8::try_from(*i).ok(),
        _ => None,
    }
}

/// The list `[items | tail]` (a proper list without a tail), as STRING_EXT when OTP would
/// write one: 1 to 65535 integers in 0..=255.
fn enc_list<'t, I>(items: I, tail: Option<&Term>, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError>
where
    I: ExactSizeIterator<Item = &'t Term> + Clone,
{
    let n = items.len();
    if n == 0 {
        return match tail {
            Some(t) => enc(t, out, depth),
            None => {
                out.push(106);
                Ok(())
            }
        };
    }
    if tail.is_none()
        && n <= usize::from(u16::MAX)
        && let Some(bytes) = items.clone().map(latin1).collect::<Option<Vec<u8>>>()
    {
        out.push(107);
        out.extend_from_slice(&(n as u16).to_be_bytes());
        out.extend_from_slice(&bytes);
        return Ok(());
    }
    out.push(108);
    out.extend_from_slice(&len32("list", n)?);
    for t in items {
        enc(t, out, depth + 1)?;
    }
    match tail {
        Some(t) => enc(t, out, depth + 1),
        None => {
            out.push(106);
            Ok(())
        }
    }
}

/// The character codes of a string, as terms.
fn codes(s: &str) -> Vec<Term> {
    s.chars().map(|c| Term::Integer(i128::from(u32::from(c)))).collect()
}

fn enc_node_term(node: &str, numbers: &[&[u8]], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    enc_atom(node, out)?;
    for n in numbers {
        out.extend_from_slice(n);
    }
    Ok(())
}

fn enc(term: &Term, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    match term {
        Term::Atom(a) => enc_atom(a, out)?,
        Term::Integer(i) => enc_integer(*i, out),
        Term::Float(x) => {
            if !x.is_finite() {
                return Err(EncodeError::NonFiniteFloat(*x));
            }
            out.push(70);
            out.extend_from_slice(&x.to_be_bytes());
        }
        Term::String(s) => enc_list(codes(s).iter(), None, out, depth)?,
        Term::Binary(b) => {
            out.push(109);
            out.extend_from_slice(&len32("binary", b.len())?);
            out.extend_from_slice(b);
        }
        Term::List(items) => enc_list(items.iter(), None, out, depth)?,
        Term::ImproperList(items, tail) => {
            // `[a | [b | c]]` is `[a, b | c]` and `[a | "bc"]` is `"abc"`: flatten first, so
            // that equal terms encode alike.
            let mut all: Vec<&Term> = items.iter().collect();
            let mut tail: &Term = tail;
            let rest;
            loop {
                match tail {
                    Term::ImproperList(more, t) => {
                        all.extend(more);
                        tail = t;
                    }
                    Term::List(more) => {
                        all.extend(more);
                        break enc_list(all.iter().copied(), None, out, depth)?;
                    }
                    Term::String(s) => {
                        rest = codes(s);
                        all.extend(&rest);
                        break enc_list(all.iter().copied(), None, out, depth)?;
                    }
                    t => break enc_list(all.iter().copied(), Some(t), out, depth)?,
                }
            }
        }
        Term::Tuple(items) => {
            match u8::try_from(items.len()) {
                Ok(n) => out.extend_from_slice(&[104, n]),
                Err(_) => {
                    out.push(105);
                    out.extend_from_slice(&len32("tuple", items.len())?);
                }
            }
            for t in items {
                enc(t, out, depth + 1)?;
            }
        }
        Term::Map(pairs) => {
            out.push(116);
            out.extend_from_slice(&len32("map", pairs.len())?);
            let mut keys = Vec::with_capacity(pairs.len());
            for (k, v) in pairs {
                let start = out.len();
                enc(k, out, depth + 1)?;
                keys.push(start..out.len());
                enc(v, out, depth + 1)?;
            }
            let mut seen = HashSet::with_capacity(keys.len());
            for (range, (k, _)) in keys.into_iter().zip(pairs) {
                if !seen.insert(&out[range]) {
                    return Err(EncodeError::DuplicateKey(k.to_string()));
                }
            }
        }
        Term::Pid {
            node,
            id,
            serial,
            creation,
        } => {
            out.push(88);
            enc_node_term(
                node,
                &[&id.to_be_bytes(), &serial.to_be_bytes(), &creation.to_be_bytes()],
                out,
            )?;
        }
        Term::Port { node, id, creation } => match u32::try_from(*id) {
            Ok(small) if small < 1 << 28 => {
                out.push(89);
                enc_node_term(node, &[&small.to_be_bytes(), &creation.to_be_bytes()], out)?;
            }
            _ => {
                out.push(120);
                enc_node_term(node, &[&id.to_be_bytes(), &creation.to_be_bytes()], out)?;
            }
        },
        Term::Reference { node, creation, ids } => {
            if ids.len() > 5 {
                return Err(EncodeError::ReferenceTooLong {
                    reference: term.to_string(),
                    words: ids.len(),
                });
            }
            out.push(90);
            out.extend_from_slice(&(ids.len() as u16).to_be_bytes());
            enc_atom(node, out)?;
            out.extend_from_slice(&creation.to_be_bytes());
            for id in ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        Term::Opaque(what) => return Err(EncodeError::Opaque(what.clone())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `etf` fuzz target: export funs nested as each other's module printed
    /// their escaped text into one another, doubling its backslashes at each level (an input
    /// of 300 bytes took minutes). Only `fun Atom:Atom/Arity` is an export fun.
    #[test]
    fn export_funs_are_of_atoms_and_an_arity() {
        let export = |m: &[u8], f: &[u8], a: &[u8]| [&[113u8][..], m, f, a].concat();
        let map = export(
            &[119, 5, b'l', b'i', b's', b't', b's'],
            &[119, 3, b'm', b'a', b'p'],
            &[97, 2],
        );
        assert_eq!(
            decode(&[&[131u8][..], &map].concat()).unwrap(),
            Term::Opaque("fun lists:map/2".into())
        );
        let mut nested = map;
        for _ in 0..40 {
            nested = export(&nested, &[119, 1, b'f'], &[97, 0]);
        }
        let e = decode(&[&[131u8][..], &nested].concat()).unwrap_err();
        assert!(e.to_string().contains("an export fun is not of an atom module"), "{e}");
    }

    #[test]
    fn decodes_common_terms() {
        // term_to_binary([{vsn,[1]},{behaviour,[gen_server]},#{a=><<"b">>},-5,300,"hi",1.5])
        let bytes: Vec<u8> = vec![
            131, 108, 0, 0, 0, 7, 104, 2, 119, 3, b'v', b's', b'n', 107, 0, 1, 1, 104, 2, 119, 9, b'b', b'e', b'h',
            b'a', b'v', b'i', b'o', b'u', b'r', 108, 0, 0, 0, 1, 119, 10, b'g', b'e', b'n', b'_', b's', b'e', b'r',
            b'v', b'e', b'r', 106, 116, 0, 0, 0, 1, 119, 1, b'a', 109, 0, 0, 0, 1, b'b', 98, 255, 255, 255, 251, 98, 0,
            0, 1, 44, 107, 0, 2, b'h', b'i', 70, 63, 248, 0, 0, 0, 0, 0, 0, 106,
        ];
        let t = decode(&bytes).unwrap();
        let items = t.as_list().unwrap().into_owned();
        assert_eq!(
            items[1],
            Term::Tuple(vec![
                Term::atom("behaviour"),
                Term::List(vec![Term::atom("gen_server")])
            ])
        );
        assert_eq!(
            items[2],
            Term::Map(vec![(Term::atom("a"), Term::Binary(b"b".to_vec()))])
        );
        assert_eq!(
            &items[3..],
            &[
                Term::Integer(-5),
                Term::Integer(300),
                Term::List(vec![Term::Integer(104), Term::Integer(105)]),
                Term::Float(1.5)
            ]
        );
        // The same bytes come back, apart from the atoms OTP 25's default writes as Latin-1.
        assert_eq!(encode(&t).unwrap(), bytes);
    }

    /// The reply to a call, as the note on the distribution protocol records it from a
    /// real node: `{#Ref<...>, target@vm}`, and the pid of the call.
    #[test]
    fn decodes_pids_references_and_ports_as_a_node_sends_them() {
        let mut reply = vec![131, 104, 2, 90, 0, 3, 119, 8];
        reply.extend_from_slice(b"rel_1@vm");
        reply.extend_from_slice(&[
            0x11, 0x22, 0x33, 0x44, 0, 0, 0, 1, 0xc5, 0x79, 0x07, 0x94, 0x98, 0x45, 0xa7, 0x09,
        ]);
        reply.extend_from_slice(&[119, 9]);
        reply.extend_from_slice(b"target@vm");
        let t = decode(&reply).unwrap();
        let reference = Term::Reference {
            node: "rel_1@vm".into(),
            creation: 0x1122_3344,
            ids: vec![1, 0xc579_0794, 0x9845_a709],
        };
        assert_eq!(t, Term::Tuple(vec![reference.clone(), Term::atom("target@vm")]));
        assert_eq!(encode(&t).unwrap(), reply);
        assert_eq!(reference.to_string(), "#Ref<rel_1@vm.2554701577.3313043348.1>");

        let mut pid = vec![131, 88, 119, 8];
        pid.extend_from_slice(b"rel_1@vm");
        pid.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44]);
        let t = decode(&pid).unwrap();
        assert_eq!(t.to_string(), "<rel_1@vm.2.0>");
        assert_eq!(encode(&t).unwrap(), pid);

        // The old forms, with one-byte creations, still decode.
        let old_pid = [131, 103, 100, 0, 1, b'a', 0, 0, 0, 7, 0, 0, 0, 1, 3];
        let t = decode(&old_pid).unwrap();
        assert_eq!(
            t,
            Term::Pid {
                node: "a".into(),
                id: 7,
                serial: 1,
                creation: 3
            }
        );
        let v4_port = [131, 120, 119, 1, b'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        let t = decode(&v4_port).unwrap();
        assert_eq!(t.to_string(), "#Port<a.4294967296>");
        assert_eq!(encode(&t).unwrap(), v4_port);
        let old_ref = [131, 101, 115, 1, b'a', 0, 0, 0, 42, 2];
        assert_eq!(
            decode(&old_ref).unwrap(),
            Term::Reference {
                node: "a".into(),
                creation: 2,
                ids: vec![42]
            }
        );
    }

    #[test]
    fn integers_take_the_smallest_form() {
        for (i, bytes) in [
            (0, vec![131, 97, 0]),
            (255, vec![131, 97, 255]),
            (256, vec![131, 98, 0, 0, 1, 0]),
            (-1, vec![131, 98, 255, 255, 255, 255]),
            (i128::from(i32::MAX) + 1, vec![131, 110, 4, 0, 0, 0, 0, 128]),
            (-(1 << 40), vec![131, 110, 6, 1, 0, 0, 0, 0, 0, 1]),
        ] {
            assert_eq!(encode(&Term::Integer(i)).unwrap(), bytes, "{i}");
            assert_eq!(decode(&bytes).unwrap(), Term::Integer(i));
        }
        for extreme in [i128::MIN, i128::MAX] {
            let bytes = encode(&Term::Integer(extreme)).unwrap();
            assert_eq!(decode(&bytes).unwrap(), Term::Integer(extreme));
        }
        // 2^128 has no Term::Integer: it stays readable, as an opaque value.
        let mut big = vec![131, 110, 17, 0];
        big.extend_from_slice(&[0; 16]);
        big.push(1);
        assert_eq!(decode(&big).unwrap(), Term::Opaque("<integer of 17 bytes>".into()));
    }

    #[test]
    fn strings_and_their_lists_encode_alike() {
        let s = encode(&Term::string("hi")).unwrap();
        assert_eq!(s, [131, 107, 0, 2, b'h', b'i']);
        assert_eq!(
            encode(&Term::List(vec![Term::Integer(104), Term::Integer(105)])).unwrap(),
            s
        );
        assert_eq!(encode(&Term::string("")).unwrap(), [131, 106]);
        // Beyond Latin-1, a list of integers.
        assert_eq!(
            encode(&Term::string("€")).unwrap(),
            [131, 108, 0, 0, 0, 1, 98, 0, 0, 0x20, 0xac, 106]
        );
        let improper = Term::ImproperList(vec![Term::atom("a")], Box::new(Term::string("b")));
        assert_eq!(
            encode(&improper).unwrap(),
            encode(&Term::List(vec![Term::atom("a"), Term::Integer(98)])).unwrap()
        );
        let readable = decode(&encode(&Term::Tuple(vec![Term::string("shop"), Term::List(vec![])])).unwrap())
            .unwrap()
            .with_strings();
        assert_eq!(readable.to_string(), r#"{"shop",[]}"#);
    }

    #[test]
    fn unencodable_terms_are_errors_that_name_them() {
        let cases = [
            (Term::Opaque("fun m:f/1".into()), "fun m:f/1 has no external form here"),
            (Term::Float(f64::NAN), "the float NaN has no Erlang counterpart"),
            (
                Term::Atom("é".repeat(256)),
                "has 256 characters; Erlang allows at most 255",
            ),
            (
                Term::Map(vec![
                    (Term::string("k"), Term::Integer(1)),
                    (Term::List(vec![Term::Integer(107)]), Term::Integer(2)),
                ]),
                "the map has the key [107] twice",
            ),
            (
                Term::Reference {
                    node: "a@b".into(),
                    creation: 1,
                    ids: vec![0; 6],
                },
                "has 6 words",
            ),
        ];
        for (term, message) in cases {
            let e = encode(&term).unwrap_err().to_string();
            assert!(e.contains(message), "{e}");
        }
        let mut deep = Term::List(vec![]);
        for _ in 0..200 {
            deep = Term::Tuple(vec![deep]);
        }
        assert_eq!(encode(&deep).unwrap_err(), EncodeError::TooDeep);
        assert!(encode(&Term::Atom("é".repeat(255))).is_ok());
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[130, 106][..],
            &[131, 108, 255, 255, 255, 255][..],
            &[131, 109, 0, 0, 0, 9, 1][..],
            &[131, 104, 3, 97][..],
            &[131, 116, 0, 16, 0, 0][..],
            &[131, 106, 106][..],
            &[131, 112, 0, 0, 0, 1][..],
            &[131, 88, 97, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &[131, 90, 0, 6, 119, 1, b'a'][..],
            &[131, 90, 255, 255, 119, 1, b'a', 0, 0, 0, 0][..],
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        // A string of 3 characters and the list around it are 4 terms.
        let string = [131, 107, 0, 3, b'a', b'b', b'c'];
        assert!(decode_prefix_bounded(&string, 4).is_ok());
        assert_eq!(
            decode_prefix_bounded(&string, 3).unwrap_err().to_string(),
            "invalid external term at byte 4: more than 3 terms"
        );
        let mut deep = vec![131];
        deep.extend(std::iter::repeat_n([104, 1], 10_000).flatten());
        deep.push(106);
        assert!(decode(&deep).unwrap_err().what.contains("too deep"));
    }
}
