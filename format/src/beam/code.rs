//! The `Code` chunk, decoded into instructions with resolved operands.
//!
//! rel reads code for one reason: to learn what a supervisor's `init/1`, an application's
//! `start/2` or a module's `child_spec/1` compute (see [`crate::supervision`]), which no other
//! chunk records. The literal table alone shows constants, not what the code builds from them:
//! `Supervisor.init([Shop.Store, {Shop.Worker, 1}], ...)` keeps the children list as a literal,
//! but their ids come from running `child_spec/1`, and a spec built around a runtime value is
//! assembled by instructions.
//!
//! # Format
//!
//! The chunk starts with a header of big-endian u32s, then the instructions:
//!
//! ```text
//! 0   sub-header size      16 (instructions start at 4 + this)
//! 4   instruction set      0
//! 8   highest opcode used  e.g. 178
//! 12  label count          highest label + 1
//! 16  function count       number of func_info instructions
//! 20  instructions         opcode byte, then exactly `arity` operands, until int_code_end
//! ```
//!
//! Operands use the compact term encoding of `beam_asm:encode/2`: the low 3 bits of the first
//! byte are a tag (`u` 0, `i` 1, `a` 2, `x` 3, `y` 4, `f` 5, `h` 6, `z` 7). The value sits in
//! the high nibble (0..15), in 11 bits over two bytes (16..2047), or in 2..8 following
//! big-endian two's complement bytes (`nnn11ttt`, nnn + 2 bytes), or in a longer run whose
//! length is itself a `u` term plus 9 (`11111ttt`). Only `i` values are signed. The extended
//! tag `z` introduces a float (0, pre-R16), a list of operands (1, `select_val`'s table and the
//! like, only as an instruction's last operand), a float register (2), an allocation list (3),
//! a literal (4, an index into `LitT`) or a typed register (5, an `x`/`y` operand and an index
//! into the `Type` chunk). `mix release` strips the `Type` chunk, so typed registers are read
//! as the plain register and their type index is dropped. Atom operands index `AtU8` from 1
//! (0 is `[]`); import and `FunT` indexes are plain `u` operands that only the opcode tells
//! apart, so the decoder resolves them by position (`call_ext`'s second operand, a BIF's
//! import, `make_fun3`'s first).
//!
//! Each function is `label L1, [line N,] func_info M F A, label L2, body...`: `L1` is where a
//! failed clause match jumps, `L2` the entry label that `ExpT` and `FunT` name. The body runs
//! to the next function's first label or to `int_code_end`.
//!
//! Every opcode of OTP 25 decodes, deprecated and compatibility ones included (the Elixir
//! standard library in a release may be compiled by an older OTP). Opcodes above 180 are
//! refused rather than guessed. The chunk is untrusted: every length and index is checked, and
//! the error says at which byte and in which instruction decoding stopped.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use super::opcode::Opcode;
use crate::term::Term;

/// The numbers at the start of the `Code` chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeHeader {
    /// Always 0 (`BEAM_FORMAT_NUMBER`).
    pub format: u32,
    /// The highest opcode the compiler used (informative: the compiler raises it on purpose
    /// to make older emulators refuse a file).
    pub max_opcode: u32,
    /// The highest label plus one.
    pub label_count: u32,
    /// The number of functions (`func_info` instructions).
    pub function_count: u32,
}

/// A function named by module, name and arity: an `ImpT` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mfa {
    pub module: Arc<str>,
    pub function: Arc<str>,
    pub arity: u32,
}

impl fmt::Display for Mfa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            Term::atom(&self.module),
            Term::atom(&self.function),
            self.arity
        )
    }
}

/// A `FunT` entry: the code of a fun (`fun ... end`, `&capture/1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lambda {
    /// The compiler's name for it, such as `-init/1-fun-0-`.
    pub function: Arc<str>,
    /// Arguments plus free variables.
    pub arity: u32,
    /// Its entry label.
    pub label: u32,
    /// How many of `arity` are free variables (they follow the arguments in x registers).
    pub free: u32,
}

/// One decoded operand.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `u`: an arity, a count, a size or an index the opcode does not resolve.
    Unsigned(u64),
    /// `i`: an integer constant.
    Integer(i128),
    /// An `i` operand wider than 128 bits (OTP moves such integers to the literal table, so
    /// only hand-made files have them), by its width in bytes.
    WideInteger(usize),
    /// `a`: an atom.
    Atom(Arc<str>),
    /// `a 0`: the empty list.
    Nil,
    /// An x register (typed or not).
    X(u32),
    /// A y register (a stack slot; typed or not).
    Y(u32),
    /// `f`: a label; 0 means "no label" (an instruction that raises instead of jumping).
    Label(u32),
    /// `h`: a character (no compiler emits it).
    Char(u32),
    /// `z 0`: a float constant (before R16).
    Float(f64),
    /// `z 1`: a list of operands.
    List(Vec<Operand>),
    /// `z 2`: a float register.
    FloatRegister(u32),
    /// `z 3`: an allocation: heap words, floats and funs.
    Alloc { words: u64, floats: u64, funs: u64 },
    /// `z 4`: a literal from `LitT`.
    Literal(Arc<Term>),
    /// An `ImpT` entry: the function a `call_ext*`, `bif*` or `gc_bif*` names.
    Import(Arc<Mfa>),
    /// A `FunT` index (`make_fun2`, `make_fun3`, and `call_fun2` when the callee is known).
    Lambda(u32),
}

/// One instruction: an opcode and exactly its arity of operands.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub opcode: Opcode,
    pub operands: Vec<Operand>,
}

/// A function of the module: where its instructions are in [`Code::instructions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: Arc<str>,
    pub arity: u32,
    /// The entry label (the one after `func_info`, which `ExpT` and `FunT` name).
    pub entry: u32,
    /// Its instructions, from the label before `func_info` to the next function.
    pub range: Range<usize>,
}

/// A decoded `Code` chunk.
#[derive(Debug, Clone)]
pub struct Code {
    module: Arc<str>,
    header: CodeHeader,
    instructions: Vec<Instruction>,
    functions: Vec<Function>,
    /// Label number → index of its `label` instruction.
    labels: HashMap<u32, usize>,
    lambdas: Vec<Lambda>,
}

impl Code {
    /// The module this code belongs to.
    pub fn module(&self) -> &str {
        &self.module
    }

    /// The chunk's header.
    pub fn header(&self) -> CodeHeader {
        self.header
    }

    /// Every instruction, in file order, `int_code_end` last.
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }

    /// The functions, in file order.
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The function `name/arity`.
    pub fn function(&self, name: &str, arity: u32) -> Option<&Function> {
        self.functions.iter().find(|f| &*f.name == name && f.arity == arity)
    }

    /// The instructions of `function`.
    pub fn body(&self, function: &Function) -> &[Instruction] {
        &self.instructions[function.range.clone()]
    }

    /// The index of the `label` instruction of `label`.
    pub fn label(&self, label: u32) -> Option<usize> {
        self.labels.get(&label).copied()
    }

    /// The function whose instructions include the one at `index`.
    pub fn function_at(&self, index: usize) -> Option<&Function> {
        let i = self.functions.partition_point(|f| f.range.end <= index);
        self.functions.get(i).filter(|f| f.range.contains(&index))
    }

    /// The `FunT` entries, by index.
    pub fn lambdas(&self) -> &[Lambda] {
        &self.lambdas
    }
}

/// Why a `Code` chunk could not be decoded: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CodeError {
    pub(crate) at: usize,
    pub(crate) what: String,
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.at, self.what)
    }
}

/// The tables the operands refer to.
pub(crate) struct Tables<'a> {
    pub(crate) module: &'a str,
    pub(crate) atoms: &'a [String],
    pub(crate) imports: &'a [(String, String, u32)],
    pub(crate) literals: Vec<Term>,
    pub(crate) lambdas: Vec<Lambda>,
}

/// Operand positions that hold an `ImpT` index, by opcode.
fn import_operand(op: Opcode) -> Option<usize> {
    match op {
        Opcode::Bif0 => Some(0),
        Opcode::CallExt | Opcode::CallExtOnly | Opcode::CallExtLast | Opcode::Bif1 | Opcode::Bif2 => Some(1),
        Opcode::GcBif1 | Opcode::GcBif2 | Opcode::GcBif3 => Some(2),
        _ => None,
    }
}

/// Operand positions that hold a `FunT` index, by opcode.
fn lambda_operand(op: Opcode) -> Option<usize> {
    match op {
        Opcode::MakeFun2 | Opcode::MakeFun3 | Opcode::CallFun2 => Some(0),
        _ => None,
    }
}

/// A number as the compact encoding stores it.
enum Number<'a> {
    Small(u64),
    /// Big-endian two's complement bytes.
    Bytes(&'a [u8]),
}

struct Reader<'a, 't> {
    bytes: &'a [u8],
    pos: usize,
    tables: &'t Tables<'t>,
    atoms: Vec<Arc<str>>,
    imports: Vec<Arc<Mfa>>,
    literals: Vec<Arc<Term>>,
}

type Decoded<T> = Result<T, CodeError>;

impl<'a> Reader<'a, '_> {
    fn fail<T>(&self, what: impl Into<String>) -> Decoded<T> {
        Err(CodeError {
            at: self.pos,
            what: what.into(),
        })
    }

    fn byte(&mut self) -> Decoded<u8> {
        match self.bytes.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.fail("the chunk ends inside an instruction"),
        }
    }

    fn take(&mut self, n: usize) -> Decoded<&'a [u8]> {
        if self.bytes.len() - self.pos < n {
            return self.fail(format!("{n} bytes needed, {} left", self.bytes.len() - self.pos));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// The value of a compact term whose first byte is `first`. `nested` is set while reading
    /// the length of a long value, which cannot itself be long (OTP never writes that, and
    /// refusing it bounds the recursion).
    fn number(&mut self, first: u8, nested: bool) -> Decoded<Number<'a>> {
        if first & 0x08 == 0 {
            return Ok(Number::Small(u64::from(first >> 4)));
        }
        if first & 0x10 == 0 {
            let low = self.byte()?;
            return Ok(Number::Small((u64::from(first & 0xE0) << 3) | u64::from(low)));
        }
        let mut len = usize::from(first >> 5) + 2;
        if len == 9 {
            if nested {
                return self.fail("the length of a long value is itself long");
            }
            let b = self.byte()?;
            if b & 7 != 0 {
                return self.fail(format!("the length of a long value has tag {}, not u", b & 7));
            }
            let extra = match self.number(b, true)? {
                Number::Small(n) => n,
                Number::Bytes(bytes) => match unsigned(bytes) {
                    Some(n) => n,
                    None => return self.fail("the length of a long value is out of range"),
                },
            };
            len = usize::try_from(extra)
                .ok()
                .and_then(|e| e.checked_add(9))
                .filter(|&l| l <= self.bytes.len() - self.pos)
                .map_or_else(|| self.fail("a long value runs past the chunk"), Ok)?;
        }
        Ok(Number::Bytes(self.take(len)?))
    }

    /// An unsigned value (every tag but `i`).
    fn unsigned(&mut self, first: u8, what: &str) -> Decoded<u64> {
        match self.number(first, false)? {
            Number::Small(n) => Ok(n),
            Number::Bytes(bytes) => match unsigned(bytes) {
                Some(n) => Ok(n),
                None => self.fail(format!("{what} operand is negative or wider than 64 bits")),
            },
        }
    }

    fn u32_value(&mut self, first: u8, what: &str) -> Decoded<u32> {
        let n = self.unsigned(first, what)?;
        u32::try_from(n).map_or_else(|_| self.fail(format!("{what} {n} is out of range")), Ok)
    }

    /// A `u` operand inside an extended one (a count, an index).
    fn inner_unsigned(&mut self, what: &str) -> Decoded<u64> {
        let b = self.byte()?;
        if b & 7 != 0 {
            return self.fail(format!("{what} has tag {}, not u", b & 7));
        }
        self.unsigned(b, what)
    }

    fn operand(&mut self, in_list: bool) -> Decoded<Operand> {
        let b = self.byte()?;
        match b & 7 {
            0 => Ok(Operand::Unsigned(self.unsigned(b, "a u")?)),
            1 => match self.number(b, false)? {
                Number::Small(n) => Ok(Operand::Integer(i128::from(n))),
                Number::Bytes(bytes) => Ok(signed(bytes).map_or(Operand::WideInteger(bytes.len()), Operand::Integer)),
            },
            2 => {
                let index = self.unsigned(b, "an atom")?;
                if index == 0 {
                    return Ok(Operand::Nil);
                }
                match usize::try_from(index - 1).ok().and_then(|i| self.atoms.get(i)) {
                    Some(a) => Ok(Operand::Atom(a.clone())),
                    None => self.fail(format!("atom index {index} out of range ({} atoms)", self.atoms.len())),
                }
            }
            3 => Ok(Operand::X(self.u32_value(b, "x register")?)),
            4 => Ok(Operand::Y(self.u32_value(b, "y register")?)),
            5 => Ok(Operand::Label(self.u32_value(b, "label")?)),
            6 => Ok(Operand::Char(self.u32_value(b, "character")?)),
            _ => self.extended(b, in_list),
        }
    }

    fn extended(&mut self, b: u8, in_list: bool) -> Decoded<Operand> {
        if b & 0x08 != 0 {
            return self.fail(format!("extended tag byte {b:#04x} is not a small value"));
        }
        match b >> 4 {
            0 => {
                let raw = self.take(8)?;
                Ok(Operand::Float(f64::from_be_bytes(raw.try_into().expect("8 bytes"))))
            }
            1 => {
                if in_list {
                    return self.fail("a list operand inside a list");
                }
                let n = self.inner_unsigned("a list length")?;
                if n > (self.bytes.len() - self.pos) as u64 {
                    return self.fail(format!("a list of {n} operands runs past the chunk"));
                }
                (0..n)
                    .map(|_| self.operand(true))
                    .collect::<Decoded<_>>()
                    .map(Operand::List)
            }
            2 => {
                let n = self.inner_unsigned("a float register")?;
                u32::try_from(n).map_or_else(
                    |_| self.fail("float register out of range"),
                    |n| Ok(Operand::FloatRegister(n)),
                )
            }
            3 => {
                let n = self.inner_unsigned("an allocation list length")?;
                if n > 3 {
                    return self.fail(format!("an allocation list of {n} kinds (at most 3)"));
                }
                let (mut words, mut floats, mut funs) = (0, 0, 0);
                for _ in 0..n {
                    let kind = self.inner_unsigned("an allocation kind")?;
                    let amount = self.inner_unsigned("an allocation amount")?;
                    match kind {
                        0 => words = amount,
                        1 => floats = amount,
                        2 => funs = amount,
                        k => return self.fail(format!("allocation kind {k} (0, 1 or 2)")),
                    }
                }
                Ok(Operand::Alloc { words, floats, funs })
            }
            4 => {
                let index = self.inner_unsigned("a literal index")?;
                match usize::try_from(index).ok().and_then(|i| self.literals.get(i)) {
                    Some(t) => Ok(Operand::Literal(t.clone())),
                    None => self.fail(format!(
                        "literal index {index} out of range ({} literals)",
                        self.literals.len()
                    )),
                }
            }
            5 => {
                let reg = self.byte()?;
                let register = match reg & 7 {
                    3 => Operand::X(self.u32_value(reg, "x register")?),
                    4 => Operand::Y(self.u32_value(reg, "y register")?),
                    t => return self.fail(format!("a typed register of tag {t}, not x or y")),
                };
                // The index into the `Type` chunk, which releases strip: read and dropped.
                self.inner_unsigned("a type index")?;
                Ok(register)
            }
            n => self.fail(format!("unknown extended tag {n}")),
        }
    }

    fn instruction(&mut self) -> Decoded<Instruction> {
        let start = self.pos;
        let number = self.byte()?;
        let Some(opcode) = Opcode::from_number(number) else {
            self.pos = start;
            return self.fail(format!("opcode {number} is not in OTP 25's instruction set"));
        };
        let mut operands = Vec::with_capacity(opcode.arity());
        for i in 0..opcode.arity() {
            let operand = self.operand(false).map_err(|e| CodeError {
                at: e.at,
                what: format!("{} operand {}: {}", opcode.name(), i + 1, e.what),
            })?;
            operands.push(self.resolve(opcode, i, operand)?);
        }
        Ok(Instruction { opcode, operands })
    }

    /// Turns an import or `FunT` index into what it names.
    fn resolve(&self, opcode: Opcode, i: usize, operand: Operand) -> Decoded<Operand> {
        let Operand::Unsigned(index) = operand else {
            return Ok(operand);
        };
        if import_operand(opcode) == Some(i) {
            return match usize::try_from(index).ok().and_then(|i| self.imports.get(i)) {
                Some(mfa) => Ok(Operand::Import(mfa.clone())),
                None => self.fail(format!(
                    "{}: import index {index} out of range ({} imports)",
                    opcode.name(),
                    self.imports.len()
                )),
            };
        }
        if lambda_operand(opcode) == Some(i) {
            return match u32::try_from(index)
                .ok()
                .filter(|&i| (i as usize) < self.tables.lambdas.len())
            {
                Some(i) => Ok(Operand::Lambda(i)),
                None => self.fail(format!(
                    "{}: fun index {index} out of range ({} funs)",
                    opcode.name(),
                    self.tables.lambdas.len()
                )),
            };
        }
        Ok(operand)
    }
}

/// Big-endian two's complement bytes as a non-negative u64.
fn unsigned(bytes: &[u8]) -> Option<u64> {
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let significant = &bytes[bytes.iter().take_while(|&&b| b == 0).count()..];
    (significant.len() <= 8).then(|| significant.iter().fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

/// Big-endian two's complement bytes as an i128, when they fit.
fn signed(bytes: &[u8]) -> Option<i128> {
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    // Drop redundant sign bytes.
    let mut s = bytes;
    while s.len() > 16 && s[0] == fill && (s[1] & 0x80 != 0) == negative {
        s = &s[1..];
    }
    if s.len() > 16 {
        return None;
    }
    let mut buf = [fill; 16];
    buf[16 - s.len()..].copy_from_slice(s);
    Some(i128::from_be_bytes(buf))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Decodes a `Code` chunk.
pub(crate) fn decode(data: &[u8], tables: &Tables<'_>) -> Result<Code, CodeError> {
    let err = |at: usize, what: String| CodeError { at, what };
    let field = |at| be32(data, at).ok_or_else(|| err(at, "the header is truncated".into()));
    let sub_header = field(0)? as usize;
    if sub_header < 16 {
        return Err(err(0, format!("sub-header of {sub_header} bytes (at least 16)")));
    }
    let header = CodeHeader {
        format: field(4)?,
        max_opcode: field(8)?,
        label_count: field(12)?,
        function_count: field(16)?,
    };
    if header.format != 0 {
        return Err(err(
            4,
            format!("instruction set format {} (only 0 exists)", header.format),
        ));
    }
    let start = sub_header
        .checked_add(4)
        .filter(|&s| s <= data.len())
        .ok_or_else(|| err(0, format!("sub-header of {sub_header} bytes runs past the chunk")))?;
    let mut r = Reader {
        bytes: data,
        pos: start,
        tables,
        atoms: tables.atoms.iter().map(|a| Arc::from(a.as_str())).collect(),
        imports: Vec::new(),
        literals: tables.literals.iter().cloned().map(Arc::new).collect(),
    };
    r.imports = tables
        .imports
        .iter()
        .map(|(m, f, a)| {
            Arc::new(Mfa {
                module: Arc::from(m.as_str()),
                function: Arc::from(f.as_str()),
                arity: *a,
            })
        })
        .collect();

    let mut instructions = Vec::new();
    let mut labels = HashMap::new();
    loop {
        let at = r.pos;
        if at == data.len() {
            return Err(err(at, "the code ends without int_code_end".into()));
        }
        let instruction = r.instruction().map_err(|e| CodeError {
            at: e.at,
            what: format!("instruction {}: {}", instructions.len(), e.what),
        })?;
        match (instruction.opcode, instruction.operands.as_slice()) {
            (Opcode::IntCodeEnd, _) => {
                instructions.push(instruction);
                break;
            }
            (Opcode::Label, [Operand::Unsigned(n)]) => {
                let n = u32::try_from(*n)
                    .ok()
                    .filter(|&n| n < header.label_count)
                    .ok_or_else(|| {
                        err(
                            at,
                            format!("label {n} is not below the label count {}", header.label_count),
                        )
                    })?;
                if labels.insert(n, instructions.len()).is_some() {
                    return Err(err(at, format!("label {n} is defined twice")));
                }
            }
            (Opcode::Label, _) => return Err(err(at, "a label whose operand is not a number".into())),
            _ => {}
        }
        instructions.push(instruction);
    }

    let mut functions: Vec<Function> = Vec::new();
    for (i, ins) in instructions.iter().enumerate() {
        if ins.opcode != Opcode::FuncInfo {
            continue;
        }
        let bad = |what: &str| err(0, format!("function at instruction {i}: {what}"));
        let (Some(Operand::Atom(name)), Some(Operand::Unsigned(arity))) = (ins.operands.get(1), ins.operands.get(2))
        else {
            return Err(bad("func_info's name or arity is malformed"));
        };
        let arity = u32::try_from(*arity).map_err(|_| bad("arity out of range"))?;
        let mut first = i;
        if first > 0 && instructions[first - 1].opcode == Opcode::Line {
            first -= 1;
        }
        if first == 0 || instructions[first - 1].opcode != Opcode::Label {
            return Err(bad("func_info is not preceded by a label"));
        }
        first -= 1;
        let entry = match instructions.get(i + 1) {
            Some(Instruction {
                opcode: Opcode::Label,
                operands,
            }) => match operands.as_slice() {
                [Operand::Unsigned(l)] => *l as u32,
                _ => return Err(bad("malformed entry label")),
            },
            _ => return Err(bad("func_info is not followed by the entry label")),
        };
        if let Some(previous) = functions.last_mut() {
            previous.range.end = first;
        }
        functions.push(Function {
            name: name.clone(),
            arity,
            entry,
            range: first..instructions.len() - 1,
        });
    }
    if functions.len() != header.function_count as usize {
        return Err(err(
            16,
            format!(
                "the header declares {} functions, the code has {}",
                header.function_count,
                functions.len()
            ),
        ));
    }
    Ok(Code {
        module: Arc::from(tables.module),
        header,
        instructions,
        functions,
        labels,
        lambdas: tables.lambdas.clone(),
    })
}

/// Instructions print in `beam_disasm`'s shape (`{call_ext,2,{extfunc,lists,reverse,1}}`),
/// which makes decoded code easy to compare with OTP's own tools.
impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operands.is_empty() {
            return f.write_str(self.opcode.name());
        }
        write!(f, "{{{}", self.opcode.name())?;
        for o in &self.operands {
            write!(f, ",{o}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Unsigned(n) => write!(f, "{n}"),
            Operand::Integer(n) => write!(f, "{{integer,{n}}}"),
            Operand::WideInteger(bytes) => write!(f, "{{integer,'<{bytes} bytes>'}}"),
            Operand::Atom(a) => write!(f, "{{atom,{}}}", Term::atom(a)),
            Operand::Nil => f.write_str("nil"),
            Operand::X(n) => write!(f, "{{x,{n}}}"),
            Operand::Y(n) => write!(f, "{{y,{n}}}"),
            Operand::Label(n) => write!(f, "{{f,{n}}}"),
            Operand::Char(c) => write!(f, "{{char,{c}}}"),
            Operand::Float(x) => write!(f, "{{float,{}}}", Term::Float(*x)),
            Operand::List(items) => {
                f.write_str("{list,[")?;
                for (i, o) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{o}")?;
                }
                f.write_str("]}")
            }
            Operand::FloatRegister(n) => write!(f, "{{fr,{n}}}"),
            Operand::Alloc { words, floats, funs } => {
                write!(f, "{{alloc,[{{words,{words}}},{{floats,{floats}}},{{funs,{funs}}}]}}")
            }
            Operand::Literal(t) => write!(f, "{{literal,{t}}}"),
            Operand::Import(mfa) => write!(
                f,
                "{{extfunc,{},{},{}}}",
                Term::atom(&mfa.module),
                Term::atom(&mfa.function),
                mfa.arity
            ),
            Operand::Lambda(i) => write!(f, "{{fun,{i}}}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Tables<'static> {
        static ATOMS: [String; 0] = [];
        Tables {
            module: "m",
            atoms: &ATOMS,
            imports: &[],
            literals: vec![],
            lambdas: vec![],
        }
    }

    fn operand(bytes: &[u8]) -> Decoded<Operand> {
        let t = tables();
        let mut r = Reader {
            bytes,
            pos: 0,
            tables: &t,
            atoms: vec![Arc::from("m"), Arc::from("start_link")],
            imports: vec![],
            literals: vec![Arc::new(Term::atom("lit"))],
        };
        let o = r.operand(false)?;
        assert_eq!(r.pos, bytes.len(), "all of {bytes:02x?} read");
        Ok(o)
    }

    /// The examples of `beam_asm:encode/2` output in the research notes.
    #[test]
    fn compact_terms_decode_as_beam_asm_encodes_them() {
        use Operand::*;
        let cases: &[(&[u8], Operand)] = &[
            (&[0x00], Unsigned(0)),
            (&[0xf0], Unsigned(15)),
            (&[0x08, 0x10], Unsigned(16)),
            (&[0xe8, 0xff], Unsigned(2047)),
            (&[0x18, 0x08, 0x00], Unsigned(2048)),
            (&[0x38, 0x00, 0xff, 0xff], Unsigned(65535)),
            (&[0x58, 0x00, 0x80, 0x00, 0x00], Unsigned(8_388_608)),
            (&[0x51], Integer(5)),
            (&[0x09, 0x10], Integer(16)),
            (&[0x69, 0xe8], Integer(1000)),
            (&[0x19, 0x08, 0x00], Integer(2048)),
            (&[0x19, 0xff, 0xff], Integer(-1)),
            (&[0x39, 0xff, 0x7f, 0xff], Integer(-32769)),
            (&[0x79, 0x00, 0xff, 0xff, 0xff, 0xff], Integer(4_294_967_295)),
            (&[0xf9, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], Integer(1 << 64)),
            (&[0x02], Nil),
            (&[0x12], Atom("m".into())),
            (&[0x03], X(0)),
            (&[0x33], X(3)),
            (&[0x24], Y(2)),
            (&[0xd5], Label(13)),
            (&[0x1d, 0x13, 0x88], Label(5000)),
            (&[0x47, 0x00], Literal(Arc::new(Term::atom("lit")))),
            (&[0x17, 0x10, 0x24], List(vec![Y(2)])),
            (&[0x57, 0x03, 0x10], X(0)),
            (
                &[0x37, 0x30, 0x00, 0x10, 0x10, 0x00, 0x20, 0x10],
                Alloc {
                    words: 1,
                    floats: 0,
                    funs: 1,
                },
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(&operand(bytes).unwrap(), want, "{bytes:02x?}");
        }
    }

    #[test]
    fn malformed_operands_are_errors_not_panics() {
        for (bytes, what) in [
            (&[0x32][..], "atom index 3 out of range (2 atoms)"),
            (&[0x47, 0x10], "literal index 1 out of range"),
            (&[0x17, 0xf0], "a list of 15 operands runs past the chunk"),
            (&[0x17, 0x10, 0x17, 0x00], "a list operand inside a list"),
            (&[0x57, 0x05, 0x00], "a typed register of tag 5"),
            (&[0xf8, 0xf8], "the length of a long value is itself long"),
            (&[0x18, 0xff, 0xff], "negative or wider than 64 bits"),
            (&[0x77], "unknown extended tag 7"),
            (&[0x38, 0x00], "3 bytes needed, 1 left"),
        ] {
            let e = operand(bytes).unwrap_err();
            assert!(e.what.contains(what), "{bytes:02x?}: {e}");
        }
    }

    #[test]
    fn integers_wider_than_128_bits_are_kept_apart() {
        let mut bytes = vec![0xf9, 0x80];
        bytes.extend([0x01; 17]);
        assert_eq!(operand(&bytes).unwrap(), Operand::WideInteger(17));
        // Redundant sign bytes do not make an integer wide.
        let mut bytes = vec![0xf9, 0x80];
        bytes.extend([0xff; 17]);
        assert_eq!(operand(&bytes).unwrap(), Operand::Integer(-1));
    }
}
