//! BEAM files: the IFF container and the chunks rel needs to diff two releases.
//!
//! A BEAM file is `FOR1 <size> BEAM` followed by chunks (`id`, big-endian size, data padded
//! to 4 bytes). rel reads atoms (`AtU8`/`Atom`), exports (`ExpT`), imports (`ImpT`),
//! attributes (`Attr`), compile info (`CInf`) and literals (`LitT`, zlib-compressed), and
//! computes the module's identity exactly as `beam_lib:md5/1` does: MD5 over the chunks
//! `Atom AtU8 Code StrT ImpT ExpT FunT LitT Meta` that are present, in that order, with the
//! `OldUniq` field of every `FunT` entry zeroed. Compile info, line tables and debug info do
//! not count, so rebuilding unchanged source gives the same md5.
//!
//! relx's prod mode strips beams with `beam_lib:strip_release/1`, which writes them
//! gzip-compressed; OTP loads them as they are, and so does this reader: the identity of a
//! compressed beam is that of the beam inside it.
//!
//! The code itself is decoded on demand ([`Beam::code`], in [`code`]'s format): only the
//! modules whose supervision rel analyses need it, so a snapshot of thousands of modules does
//! not pay for it.
//!
//! Files are untrusted: every error names the file and the chunk, and nothing panics.

pub mod code;
mod opcode;

use std::collections::BTreeSet;
use std::io::Read;

use md5::{Digest as _, Md5};

pub use code::{Code, CodeHeader, Function, Instruction, Lambda, Mfa, Operand};
pub use opcode::Opcode;

use crate::etf;
use crate::term::Term;

/// Chunks hashed by `beam_lib:md5/1`, in its order.
const MD5_CHUNKS: [&[u8; 4]; 9] = [
    b"Atom", b"AtU8", b"Code", b"StrT", b"ImpT", b"ExpT", b"FunT", b"LitT", b"Meta",
];
/// Largest decompressed literal table accepted.
const MAX_LITERALS: usize = 64 << 20;
/// Largest decompressed BEAM file accepted (the largest module of OTP 25 is about 2 MiB).
const MAX_BEAM: u64 = 64 << 20;

/// Why a BEAM file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("{file}: {}{what}", chunk.as_ref().map(|c| format!("chunk {c}: ")).unwrap_or_default())]
pub struct BeamError {
    pub file: String,
    pub chunk: Option<String>,
    pub what: String,
}

/// A parsed BEAM file.
#[derive(Debug, Clone)]
pub struct Beam {
    file: String,
    bytes: Vec<u8>,
    /// (id, start, len) of each chunk's data.
    chunks: Vec<([u8; 4], usize, usize)>,
    pub atoms: Vec<String>,
    pub exports: Vec<(String, u32)>,
    pub imports: Vec<(String, String, u32)>,
    pub attributes: Option<Term>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

impl Beam {
    /// Parses `bytes`; `file` names it in errors.
    pub fn parse(file: &str, bytes: Vec<u8>) -> Result<Beam, BeamError> {
        let err = |chunk: Option<&[u8; 4]>, what: &str| BeamError {
            file: file.to_owned(),
            chunk: chunk.map(|c| String::from_utf8_lossy(c).into_owned()),
            what: what.to_owned(),
        };
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::with_capacity(bytes.len() * 2);
            flate2::read::GzDecoder::new(bytes.as_slice())
                .take(MAX_BEAM + 1)
                .read_to_end(&mut out)
                .map_err(|e| err(None, &format!("gzip-compressed, and it does not decompress: {e}")))?;
            if out.len() as u64 > MAX_BEAM {
                return Err(err(None, &format!("decompresses to more than {MAX_BEAM} bytes")));
            }
            out
        } else {
            bytes
        };
        if bytes.len() < 12 || &bytes[..4] != b"FOR1" || &bytes[8..12] != b"BEAM" {
            return Err(err(None, "not a BEAM file (no FOR1...BEAM header)"));
        }
        let declared = be32(&bytes, 4).unwrap_or(0) as usize;
        let end = (declared + 8).min(bytes.len());
        let mut chunks = Vec::new();
        let mut pos = 12;
        while pos + 8 <= end {
            let id: [u8; 4] = bytes[pos..pos + 4].try_into().expect("4 bytes");
            let len = be32(&bytes, pos + 4).unwrap_or(0) as usize;
            let start = pos + 8;
            if len > end - start {
                return Err(err(Some(&id), &format!("size {len} runs past the end of the file")));
            }
            chunks.push((id, start, len));
            pos = start + len.div_ceil(4) * 4;
        }
        let mut beam = Beam {
            file: file.to_owned(),
            bytes,
            chunks,
            atoms: vec![],
            exports: vec![],
            imports: vec![],
            attributes: None,
        };
        beam.atoms = beam.read_atoms()?;
        if beam.atoms.is_empty() {
            return Err(err(None, "no atom table (AtU8 or Atom chunk)"));
        }
        for required in [b"Code", b"ExpT", b"ImpT", b"StrT"] {
            if beam.chunk(required).is_none() {
                return Err(err(Some(required), "mandatory chunk missing"));
            }
        }
        let exports = beam.read_triples(b"ExpT")?;
        beam.exports = exports
            .into_iter()
            .map(|(f, a, _)| Ok((beam.atom(b"ExpT", f)?, a)))
            .collect::<Result<_, BeamError>>()?;
        let imports = beam.read_triples(b"ImpT")?;
        beam.imports = imports
            .into_iter()
            .map(|(m, f, a)| Ok((beam.atom(b"ImpT", m)?, beam.atom(b"ImpT", f)?, a)))
            .collect::<Result<_, BeamError>>()?;
        beam.attributes = beam.etf_chunk(b"Attr")?;
        Ok(beam)
    }

    fn error(&self, chunk: &[u8; 4], what: &str) -> BeamError {
        BeamError {
            file: self.file.clone(),
            chunk: Some(String::from_utf8_lossy(chunk).into_owned()),
            what: what.to_owned(),
        }
    }

    /// The compile info (`CInf`). Read on demand: nothing rel decides depends on it, so a
    /// damaged one does not make the module unreadable.
    pub fn compile_info(&self) -> Result<Option<Term>, BeamError> {
        self.etf_chunk(b"CInf")
    }

    /// A copy holding only the chunks `keep` of the file's bytes, with the tables read at
    /// parse time (atoms, exports, imports, attributes). What reads other chunks (the md5,
    /// [`Beam::compile_info`]) is meaningless on it: it exists to keep what a later reading
    /// needs without keeping the whole file.
    /// The BEAM file of this module's chunks (of those [`Beam::trimmed`] kept), which
    /// [`Beam::parse`] reads back as this module.
    pub(crate) fn to_file(&self) -> Vec<u8> {
        let mut out = b"FOR1\0\0\0\0BEAM".to_vec();
        for &(id, start, len) in &self.chunks {
            out.extend_from_slice(&id);
            out.extend_from_slice(&u32::try_from(len).expect("a chunk of a BEAM file").to_be_bytes());
            out.extend_from_slice(&self.bytes[start..start + len]);
            out.resize(out.len().next_multiple_of(4), 0);
        }
        let size = u32::try_from(out.len() - 8).expect("the size of a BEAM file");
        out[4..8].copy_from_slice(&size.to_be_bytes());
        out
    }

    pub(crate) fn trimmed(&self, keep: &[&[u8; 4]]) -> Beam {
        let mut bytes = Vec::new();
        let mut chunks = Vec::new();
        for &(id, start, len) in &self.chunks {
            if keep.contains(&&id) {
                chunks.push((id, bytes.len(), len));
                bytes.extend_from_slice(&self.bytes[start..start + len]);
            }
        }
        Beam {
            file: self.file.clone(),
            bytes,
            chunks,
            atoms: self.atoms.clone(),
            exports: self.exports.clone(),
            imports: self.imports.clone(),
            attributes: self.attributes.clone(),
        }
    }

    /// The raw data of a chunk.
    pub fn chunk(&self, id: &[u8; 4]) -> Option<&[u8]> {
        self.chunks
            .iter()
            .find(|(c, _, _)| c == id)
            .map(|&(_, s, l)| &self.bytes[s..s + l])
    }

    /// The module name (the first atom).
    pub fn module(&self) -> &str {
        &self.atoms[0]
    }

    fn atom(&self, chunk: &[u8; 4], index: u32) -> Result<String, BeamError> {
        (index as usize)
            .checked_sub(1)
            .and_then(|i| self.atoms.get(i))
            .cloned()
            .ok_or_else(|| self.error(chunk, &format!("atom index {index} out of range")))
    }

    fn read_atoms(&self) -> Result<Vec<String>, BeamError> {
        let (id, data, utf8) = match (self.chunk(b"AtU8"), self.chunk(b"Atom")) {
            (Some(d), _) => (b"AtU8", d, true),
            (None, Some(d)) => (b"Atom", d, false),
            (None, None) => return Ok(vec![]),
        };
        let bad = |what: &str| self.error(id, what);
        let raw = be32(data, 0).ok_or_else(|| bad("truncated count"))? as i32;
        // OTP 28 writes a negative count and compact-encoded lengths.
        let (count, compact) = if raw < 0 {
            ((-i64::from(raw)) as usize, true)
        } else {
            (raw as usize, false)
        };
        if count > data.len() {
            return Err(bad(&format!("count {count} exceeds the chunk")));
        }
        let mut pos = 4;
        let mut atoms = Vec::with_capacity(count);
        for _ in 0..count {
            let len = if compact {
                let b = *data.get(pos).ok_or_else(|| bad("truncated"))?;
                pos += 1;
                if b & 0x08 == 0 {
                    usize::from(b >> 4)
                } else if b & 0x10 == 0 {
                    let lo = *data.get(pos).ok_or_else(|| bad("truncated"))?;
                    pos += 1;
                    (usize::from(b >> 5) << 8) | usize::from(lo)
                } else {
                    return Err(bad("atom length encoding too large"));
                }
            } else {
                let b = *data.get(pos).ok_or_else(|| bad("truncated"))?;
                pos += 1;
                usize::from(b)
            };
            let text = data
                .get(pos..pos + len)
                .ok_or_else(|| bad("atom runs past the chunk"))?;
            pos += len;
            atoms.push(if utf8 {
                String::from_utf8(text.to_vec()).map_err(|_| bad("atom is not UTF-8"))?
            } else {
                text.iter().map(|&b| char::from(b)).collect()
            });
        }
        Ok(atoms)
    }

    fn read_triples(&self, id: &[u8; 4]) -> Result<Vec<(u32, u32, u32)>, BeamError> {
        let data = self.chunk(id).unwrap_or_default();
        let count = be32(data, 0).ok_or_else(|| self.error(id, "truncated count"))? as usize;
        if count > (data.len().saturating_sub(4)) / 12 {
            return Err(self.error(id, &format!("count {count} exceeds the chunk")));
        }
        Ok((0..count)
            .map(|i| {
                let at = 4 + 12 * i;
                (
                    be32(data, at).unwrap_or(0),
                    be32(data, at + 4).unwrap_or(0),
                    be32(data, at + 8).unwrap_or(0),
                )
            })
            .collect())
    }

    fn etf_chunk(&self, id: &[u8; 4]) -> Result<Option<Term>, BeamError> {
        match self.chunk(id) {
            None => Ok(None),
            Some(data) => etf::decode(data).map(Some).map_err(|e| self.error(id, &e.to_string())),
        }
    }

    /// Feeds `hash` the bytes `beam_lib:md5/1` hashes: the md5 chunks in their order, with
    /// the `OldUniq` field of every `FunT` entry (bytes 20..24 of each 24-byte entry) zeroed.
    fn feed_md5_chunks(&self, hash: &mut impl FnMut(&[u8])) {
        for id in MD5_CHUNKS {
            let Some(data) = self.chunk(id) else { continue };
            if id == b"FunT" && data.len() >= 4 {
                hash(&data[..4]);
                let mut rest = &data[4..];
                while rest.len() >= 24 {
                    hash(&rest[..20]);
                    hash(&[0u8; 4]);
                    rest = &rest[24..];
                }
                hash(rest);
            } else {
                hash(data);
            }
        }
    }

    /// The module's md5, as `beam_lib:md5/1` and `Mod:module_info(md5)` give it.
    pub fn md5(&self) -> [u8; 16] {
        let mut h = Md5::new();
        self.feed_md5_chunks(&mut |b| h.update(b));
        h.finalize().into()
    }

    /// A sha256 over the same bytes as [`Beam::md5`]: two modules have the same identity
    /// exactly when those bytes are the same. Three times cheaper than the md5 on CPUs with
    /// SHA instructions, so appup generation compares modules by it.
    pub fn identity(&self) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        self.feed_md5_chunks(&mut |b| sha2::Digest::update(&mut h, b));
        sha2::Digest::finalize(h).into()
    }

    /// The md5 as 32 lowercase hex digits.
    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5())
    }

    /// Whether `name/arity` is exported.
    pub fn exports(&self, name: &str, arity: u32) -> bool {
        self.exports.iter().any(|(f, a)| f == name && *a == arity)
    }

    /// The behaviours the module declares (`-behaviour` and `-behavior`).
    pub fn behaviours(&self) -> Vec<String> {
        let mut out = Vec::new();
        for attr in self
            .attributes
            .as_ref()
            .and_then(Term::as_list)
            .unwrap_or_default()
            .iter()
        {
            if let Some([k, v]) = attr.as_tuple()
                && matches!(k.as_atom(), Some("behaviour" | "behavior"))
            {
                out.extend(
                    v.as_list()
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|b| b.as_atom().map(str::to_owned)),
                );
            }
        }
        out
    }

    /// Modules this one calls (from its import table), without itself and `erlang`.
    pub fn called_modules(&self) -> BTreeSet<String> {
        self.imports
            .iter()
            .map(|(m, _, _)| m.clone())
            .filter(|m| m != self.module() && m != "erlang")
            .collect()
    }

    /// The literal table.
    pub fn literals(&self) -> Result<Vec<Term>, BeamError> {
        let Some(data) = self.chunk(b"LitT") else {
            return Ok(vec![]);
        };
        let bad = |what: &str| self.error(b"LitT", what);
        let size = be32(data, 0).ok_or_else(|| bad("truncated"))? as usize;
        let raw = if size == 0 {
            data[4..].to_vec()
        } else {
            if size > MAX_LITERALS {
                return Err(bad(&format!("{size} bytes of literals is more than allowed")));
            }
            let mut out = Vec::with_capacity(size);
            flate2::read::ZlibDecoder::new(&data[4..])
                .take(size as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(&format!("zlib: {e}")))?;
            if out.len() != size {
                return Err(bad(&format!(
                    "{} bytes after decompression, {size} declared",
                    out.len()
                )));
            }
            out
        };
        let count = be32(&raw, 0).ok_or_else(|| bad("truncated count"))? as usize;
        if count > raw.len() {
            return Err(bad(&format!("count {count} exceeds the table")));
        }
        let mut pos = 4;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let len = be32(&raw, pos).ok_or_else(|| bad("truncated literal"))? as usize;
            let term = raw
                .get(pos + 4..pos + 4 + len)
                .ok_or_else(|| bad("literal runs past the table"))?;
            out.push(etf::decode(term).map_err(|e| bad(&e.to_string()))?);
            pos += 4 + len;
        }
        Ok(out)
    }

    /// The `FunT` table: the funs the module's code makes.
    pub fn lambdas(&self) -> Result<Vec<Lambda>, BeamError> {
        let Some(data) = self.chunk(b"FunT") else {
            return Ok(vec![]);
        };
        let bad = |what: &str| self.error(b"FunT", what);
        let count = be32(data, 0).ok_or_else(|| bad("truncated count"))? as usize;
        if count > (data.len() - 4) / 24 {
            return Err(bad(&format!("count {count} exceeds the chunk")));
        }
        (0..count)
            .map(|i| {
                let field = |k: usize| be32(data, 4 + 24 * i + 4 * k).unwrap_or(0);
                Ok(Lambda {
                    function: self.atom(b"FunT", field(0))?.into(),
                    arity: field(1),
                    label: field(2),
                    free: field(4),
                })
            })
            .collect()
    }

    /// The decoded `Code` chunk (see [`Code`]): every function's instructions, with atoms,
    /// literals, imports and funs resolved.
    pub fn code(&self) -> Result<Code, BeamError> {
        let data = self
            .chunk(b"Code")
            .ok_or_else(|| self.error(b"Code", "mandatory chunk missing"))?;
        let tables = code::Tables {
            module: self.module(),
            atoms: &self.atoms,
            imports: &self.imports,
            literals: self.literals()?,
            lambdas: self.lambdas()?,
        };
        code::decode(data, &tables).map_err(|e| self.error(b"Code", &e.to_string()))
    }

    /// Child ids of the supervisor specs found among the literals: maps with `id` and
    /// `start` keys, and `{Id, {M,F,A}, Restart, Shutdown, Type, Modules}` tuples. `None`
    /// when there is none (specs built at run time).
    pub fn literal_child_ids(&self) -> Result<Option<Vec<Term>>, BeamError> {
        fn walk(t: &Term, out: &mut Vec<Term>) {
            match t {
                Term::Map(pairs) => {
                    let get = |k: &str| pairs.iter().find(|(key, _)| key.as_atom() == Some(k)).map(|(_, v)| v);
                    if let (Some(id), Some(_)) = (get("id"), get("start"))
                        && !out.contains(id)
                    {
                        out.push(id.clone());
                    }
                    for (k, v) in pairs {
                        walk(k, out);
                        walk(v, out);
                    }
                }
                Term::Tuple(items) => {
                    let restart = items.get(2).and_then(Term::as_atom);
                    let kind = items.get(4).and_then(Term::as_atom);
                    if items.len() == 6
                        && items[1].as_tuple().is_some_and(|mfa| mfa.len() == 3)
                        && matches!(restart, Some("permanent" | "transient" | "temporary"))
                        && matches!(kind, Some("worker" | "supervisor"))
                        && !out.contains(&items[0])
                    {
                        out.push(items[0].clone());
                    }
                    items.iter().for_each(|i| walk(i, out));
                }
                Term::List(items) => items.iter().for_each(|i| walk(i, out)),
                Term::ImproperList(items, tail) => {
                    items.iter().for_each(|i| walk(i, out));
                    walk(tail, out);
                }
                _ => {}
            }
        }
        let mut ids = Vec::new();
        for lit in self.literals()? {
            walk(&lit, &mut ids);
        }
        Ok(if ids.is_empty() { None } else { Some(ids) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_files_are_errors_that_name_file_and_chunk() {
        let e = Beam::parse("x.beam", b"not a beam".to_vec()).unwrap_err();
        assert_eq!(e.to_string(), "x.beam: not a BEAM file (no FOR1...BEAM header)");
        let mut b = b"FOR1\0\0\0\x14BEAMAtU8\0\0\xff\xff".to_vec();
        b.extend_from_slice(&[0; 4]);
        let e = Beam::parse("y.beam", b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "y.beam: chunk AtU8: size 65535 runs past the end of the file"
        );
        assert!(
            Beam::parse("z.beam", vec![0x1f, 0x8b, 0, 0])
                .unwrap_err()
                .what
                .contains("gzip-compressed, and it does not decompress")
        );
    }
}
