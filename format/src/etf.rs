//! Erlang's External Term Format, decoded into [`Term`].
//!
//! BEAM files keep attributes (`Attr`), compile info (`CInf`), literals (`LitT`) and debug
//! info (`Dbgi`) as `term_to_binary/1` output. This decoder covers what those hold; values
//! with no [`Term`] counterpart (pids, ports, references, funs, integers beyond 128 bits)
//! decode to [`Term::Opaque`] with a description, so a module that has them still reads.
//! Input is untrusted: every length is checked against what remains and nesting is bounded.

use crate::term::Term;

/// Why bytes are not a valid external term.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("invalid external term at byte {at}: {what}")]
pub struct EtfError {
    pub at: usize,
    pub what: String,
}

/// Deeper nesting is refused: real literals and attributes nest far less, and recursion must
/// stay within a thread stack of 2 MiB even in a debug build.
const MAX_DEPTH: usize = 128;

/// Decodes one term that starts with the version byte 131.
pub fn decode(bytes: &[u8]) -> Result<Term, EtfError> {
    let mut d = Decoder { b: bytes, pos: 0 };
    match d.u8()? {
        131 => {}
        v => return Err(d.err(&format!("version byte {v}, expected 131"))),
    }
    let t = d.term(0)?;
    if d.pos != bytes.len() {
        return Err(d.err("trailing bytes after the term"));
    }
    Ok(t)
}

struct Decoder<'a> {
    b: &'a [u8],
    pos: usize,
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

    fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, EtfError> {
        let s = self.take(2)?;
        Ok(usize::from(u16::from_be_bytes([s[0], s[1]])))
    }

    fn u32(&mut self) -> Result<usize, EtfError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
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

    fn seq(&mut self, n: usize, depth: usize) -> Result<Vec<Term>, EtfError> {
        let n = self.count(n)?;
        (0..n).map(|_| self.term(depth + 1)).collect()
    }

    fn term(&mut self, depth: usize) -> Result<Term, EtfError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let tag = self.u8()?;
        Ok(match tag {
            97 => Term::Integer(i128::from(self.u8()?)),
            98 => {
                let s = self.take(4)?;
                Term::Integer(i128::from(i32::from_be_bytes([s[0], s[1], s[2], s[3]])))
            }
            70 => {
                let s = self.take(8)?;
                Term::Float(f64::from_be_bytes(s.try_into().expect("8 bytes")))
            }
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
                let n = self.u32()?;
                Term::Tuple(self.seq(n, depth)?)
            }
            106 => Term::List(vec![]),
            107 => {
                let n = self.u16()?;
                Term::List(self.take(n)?.iter().map(|&b| Term::Integer(i128::from(b))).collect())
            }
            108 => {
                let n = self.u32()?;
                let items = self.seq(n, depth)?;
                match self.term(depth + 1)? {
                    Term::List(rest) if rest.is_empty() => Term::List(items),
                    tail => Term::ImproperList(items, Box::new(tail)),
                }
            }
            109 => {
                let n = self.u32()?;
                Term::Binary(self.take(n)?.to_vec())
            }
            77 => {
                let n = self.u32()?;
                let bits = self.u8()?;
                let data = self.take(n)?;
                Term::Opaque(format!("<<{} bytes, {bits} bits in the last>>", data.len()))
            }
            110 | 111 => {
                let n = if tag == 110 {
                    usize::from(self.u8()?)
                } else {
                    self.u32()?
                };
                let sign = self.u8()?;
                let digits = self.take(n)?;
                if n > 16 {
                    Term::Opaque(format!("<integer of {n} bytes>"))
                } else {
                    let mut v: u128 = 0;
                    for (i, &d) in digits.iter().enumerate() {
                        v |= u128::from(d) << (8 * i);
                    }
                    match i128::try_from(v) {
                        Ok(v) => Term::Integer(if sign == 0 { v } else { -v }),
                        Err(_) => Term::Opaque(format!("<integer of {n} bytes>")),
                    }
                }
            }
            116 => {
                let n = self.u32()?;
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
                let m = self.term(depth + 1)?;
                let f = self.term(depth + 1)?;
                let a = self.term(depth + 1)?;
                Term::Opaque(format!("fun {m}:{f}/{a}"))
            }
            112 => {
                let size = self.u32()?;
                if size < 5 {
                    return Err(self.err("fun size too small"));
                }
                self.take(size - 5)?;
                Term::Opaque("<fun>".into())
            }
            88 | 103 => {
                self.node_and_rest(tag, depth)?;
                Term::Opaque("<pid>".into())
            }
            89 | 102 => {
                self.node_and_rest(tag, depth)?;
                Term::Opaque("<port>".into())
            }
            90 | 114 => {
                let n = self.u16()?;
                self.term(depth + 1)?;
                let creation = if tag == 90 { 4 } else { 1 };
                self.take(creation + 4 * n)?;
                Term::Opaque("<reference>".into())
            }
            120 => {
                self.term(depth + 1)?;
                self.take(8)?;
                Term::Opaque("<port>".into())
            }
            80 => return Err(self.err("compressed terms are not expected here")),
            t => return Err(self.err(&format!("unknown tag {t}"))),
        })
    }

    fn node_and_rest(&mut self, tag: u8, depth: usize) -> Result<(), EtfError> {
        self.term(depth + 1)?;
        let rest = match tag {
            88 => 12,
            103 => 9,
            89 => 8,
            102 => 5,
            _ => 0,
        };
        self.take(rest)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let mut deep = vec![131];
        deep.extend(std::iter::repeat_n([104, 1], 10_000).flatten());
        deep.push(106);
        assert!(decode(&deep).unwrap_err().what.contains("too deep"));
    }
}
