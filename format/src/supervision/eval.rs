//! A bounded symbolic evaluator of one module's BEAM code.
//!
//! It runs a function on values known in parts ([`Expr`]): registers hold what the
//! instructions put there, calls to the module's own functions and funs are followed, a
//! short list of library functions is modelled ([`super::models`]), and every other call
//! gives an unknown value named after the call. A test it cannot decide forks the path; a
//! path ends at `return` or a tail call (a result) or at a raise (dropped). Each run is
//! bounded in paths, steps and call depth, so hostile or merely large code costs a bounded
//! amount of work and gives "unknown" where the bound cut it short. A function that calls
//! itself again on an unknown value is a loop over something only known at run time: its
//! result is unknown at once, rather than after forking on every turn until a bound stops it
//! (in a debug build, OTP's `httpc_profile_sup` and `httpd_sup` went from most of a second
//! each to under 4 ms).
//!
//! When the value a test looks at depends on the argument of the `child_spec/1` being
//! summarised, the fork records the test as a [`Guard`] on each side: the resolver later
//! replays the guards on the argument a supervisor actually passes and keeps the path that
//! runs (this is how `Task.Supervisor`'s `{:global, name}` / `{:via, _, name}` handling is
//! followed).
//!
//! Facts of the instruction set the evaluator relies on (OTP 24+ code): only x0 survives a
//! non-tail call; `trim N` renumbers y registers (old y(N) becomes y(0)); `put_list` takes the
//! head first; `call_ext_last`/`call_ext_only` and `call_last`/`call_only` return the callee's
//! result; a fun is called with its arguments in x0.. and its captured values after them;
//! `try`'s handler is the exception path, which is not followed.

use std::sync::Arc;

use super::expr::{Expr, Guard, Test};
use super::render::Syntax;
use super::{Name, Started};
use crate::beam::{Code, Instruction, Mfa, Opcode, Operand};
use crate::term::Term;

/// Paths one run of a function may take.
pub(crate) const MAX_PATHS: usize = 32;
/// Instructions the analysis of one module may execute, over all its paths and calls.
pub(crate) const MAX_STEPS: usize = 10_000;
/// Nested calls followed.
pub(crate) const MAX_DEPTH: usize = 12;
/// Registers (x and y) a path may use; the emulator allows 1024 x registers.
const MAX_REGISTERS: usize = 1024;
/// Terms one machine may build. Each construction can nest the previous one once, so this
/// bounds how deep built values get, and with it the recursion of cloning, comparing and
/// dropping them (which a loop of `put_tuple2 x0 [x0]` would otherwise take past any stack).
const MAX_CONSTRUCTIONS: usize = 500;

/// One way a function returns: the value, and the conditions on the rule argument under
/// which this path runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub(crate) value: Expr,
    pub(crate) guards: Vec<Guard>,
}

impl Outcome {
    pub(crate) fn of(value: Expr) -> Outcome {
        Outcome { value, guards: vec![] }
    }
}

/// A supervisor start the code makes (`Supervisor.start_link/2,3`, `supervisor:start_link/2,3`),
/// at one call site, on one path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordedStart {
    /// Index of the call instruction.
    pub(crate) at: usize,
    pub(crate) supervisor: Started,
    pub(crate) name: Name,
}

/// The state of one path. Registers are shared between the paths a fork makes, which copy
/// only the references.
#[derive(Debug, Clone)]
struct State {
    pc: usize,
    x: Vec<Arc<Expr>>,
    y: Vec<Arc<Expr>>,
    guards: Vec<Guard>,
}

/// What an instruction does to the path.
enum Flow {
    Next,
    Jump(u32),
    /// Continue on each branch: a label (or the next instruction) and the guard that holds there.
    Fork(Vec<(Option<u32>, Option<Guard>)>),
    /// A non-tail call's possible results: continue with each in x0.
    Results(Vec<Outcome>),
    /// The function returns these.
    Return(Vec<Outcome>),
    /// The path raises.
    Dead,
    /// The evaluator does not follow this instruction: the path's result is unknown.
    GiveUp(String),
}

/// The evaluator for one module.
#[derive(Debug)]
pub(crate) struct Machine<'c> {
    pub(crate) code: &'c Code,
    pub(crate) syntax: Syntax,
    /// What is left of the step budget; the next machine on the module gets the rest.
    pub(crate) steps_left: usize,
    /// Entry labels of the functions being run, innermost last.
    running: Vec<u32>,
    /// What is left of [`MAX_CONSTRUCTIONS`].
    constructions_left: usize,
    /// Supervisor starts met on the way.
    pub(crate) starts: Vec<RecordedStart>,
}

impl<'c> Machine<'c> {
    /// A machine for `code` that may execute `steps` instructions.
    pub(crate) fn new(code: &'c Code, steps: usize) -> Self {
        Machine {
            code,
            syntax: Syntax::of_module(code.module()),
            steps_left: steps,
            running: Vec::new(),
            constructions_left: MAX_CONSTRUCTIONS,
            starts: Vec::new(),
        }
    }

    /// Every way the function whose entry label is `entry` returns when called with `args`.
    pub(crate) fn run(&mut self, entry: u32, args: Vec<Expr>) -> Vec<Outcome> {
        if self.running.len() > MAX_DEPTH {
            return vec![Outcome::of(Expr::unknown("<calls nested deeper than rel follows>"))];
        }
        // A recursive call on a value rel does not know is a loop over it: each turn would
        // fork again until a bound stops it, for an unknown result anyway. (Loops over known
        // lists, as Erlang compiles comprehensions, are followed.)
        if self.running.contains(&entry) && args.iter().any(|a| matches!(a, Expr::Unknown(_))) {
            return vec![Outcome::of(Expr::unknown(
                "<a loop over values known at run time only>",
            ))];
        }
        self.running.push(entry);
        let out = self.run_paths(entry, args);
        self.running.pop();
        out
    }

    fn run_paths(&mut self, entry: u32, args: Vec<Expr>) -> Vec<Outcome> {
        let code = self.code;
        let Some(start) = code.label(entry) else {
            return vec![Outcome::of(Expr::unknown(format!("<a call to missing label {entry}>")))];
        };
        let mut work = vec![State {
            pc: start + 1,
            x: args.into_iter().map(Arc::new).collect(),
            y: Vec::new(),
            guards: Vec::new(),
        }];
        let mut out = Vec::new();
        let mut paths = 0;
        while let Some(mut s) = work.pop() {
            paths += 1;
            if paths > MAX_PATHS {
                out.push(Outcome::of(Expr::unknown("<more paths than rel follows>")));
                break;
            }
            loop {
                if self.steps_left == 0 {
                    out.push(Outcome {
                        value: Expr::unknown("<more code than rel follows>"),
                        guards: s.guards,
                    });
                    break;
                }
                self.steps_left -= 1;
                let Some(ins) = code.instructions().get(s.pc) else {
                    break;
                };
                let at = s.pc;
                s.pc += 1;
                match self.step(ins, at, &mut s) {
                    Flow::Next => {}
                    Flow::Jump(label) => match code.label(label) {
                        Some(i) => s.pc = i + 1,
                        None => break,
                    },
                    Flow::Fork(branches) => {
                        let mut branches = branches.into_iter();
                        let Some(first) = branches.next() else { break };
                        for (label, guard) in branches {
                            let mut other = s.clone();
                            match label.map(|l| code.label(l)) {
                                Some(Some(i)) => other.pc = i + 1,
                                Some(None) => continue,
                                None => {}
                            }
                            other.guards.extend(guard);
                            work.push(other);
                        }
                        match first.0.map(|l| code.label(l)) {
                            Some(Some(i)) => s.pc = i + 1,
                            Some(None) => break,
                            None => {}
                        }
                        s.guards.extend(first.1);
                    }
                    Flow::Results(results) => {
                        let mut results = results.into_iter();
                        let Some(first) = results.next() else { break };
                        for r in results {
                            let mut other = s.clone();
                            other.x = vec![Arc::new(r.value)];
                            other.guards.extend(r.guards);
                            work.push(other);
                        }
                        s.x = vec![Arc::new(first.value)];
                        s.guards.extend(first.guards);
                    }
                    Flow::Return(results) => {
                        for r in results {
                            let mut guards = s.guards.clone();
                            guards.extend(r.guards);
                            out.push(Outcome { value: r.value, guards });
                        }
                        break;
                    }
                    Flow::Dead => break,
                    Flow::GiveUp(why) => {
                        out.push(Outcome {
                            value: Expr::unknown(why),
                            guards: s.guards,
                        });
                        break;
                    }
                }
            }
        }
        out
    }

    /// Calls the fun `fun` with `args`.
    pub(crate) fn call_fun(&mut self, fun: &Expr, args: Vec<Expr>) -> Vec<Outcome> {
        let Expr::Fun { lambda, env } = fun else {
            return vec![Outcome::of(Expr::unknown(format!(
                "<a call of {}>",
                self.syntax.expr(fun)
            )))];
        };
        let Some(lambda) = self.code.lambdas().get(*lambda as usize) else {
            return vec![Outcome::of(Expr::unknown("<a call of a missing fun>"))];
        };
        let mut all = args;
        all.extend(env.iter().cloned());
        self.run(lambda.label, all)
    }

    /// An operand's value, shared when it is in a register.
    fn value(&self, s: &State, o: &Operand) -> Arc<Expr> {
        match o {
            Operand::X(n) => s.x.get(*n as usize).cloned().unwrap_or_else(|| Arc::new(unset())),
            Operand::Y(n) => s.y.get(*n as usize).cloned().unwrap_or_else(|| Arc::new(unset())),
            _ => Arc::new(self.get(s, o)),
        }
    }

    fn get(&self, s: &State, o: &Operand) -> Expr {
        match o {
            Operand::X(n) => s.x.get(*n as usize).map_or_else(unset, |v| Expr::clone(v)),
            Operand::Y(n) => s.y.get(*n as usize).map_or_else(unset, |v| Expr::clone(v)),
            Operand::Atom(a) => Expr::atom(a),
            Operand::Nil => Expr::nil(),
            Operand::Integer(i) => Expr::term(Term::Integer(*i)),
            Operand::Unsigned(n) => Expr::term(Term::Integer(i128::from(*n))),
            Operand::Char(c) => Expr::term(Term::Integer(i128::from(*c))),
            Operand::Float(f) => Expr::term(Term::Float(*f)),
            Operand::Literal(t) => Expr::term((**t).clone()),
            _ => Expr::unknown("<a value rel does not model>"),
        }
    }

    fn set(&self, s: &mut State, o: &Operand, v: Expr) -> Result<(), String> {
        self.set_shared(s, o, Arc::new(v))
    }

    fn set_shared(&self, s: &mut State, o: &Operand, v: Arc<Expr>) -> Result<(), String> {
        let (regs, n) = match o {
            Operand::X(n) => (&mut s.x, *n as usize),
            Operand::Y(n) => (&mut s.y, *n as usize),
            _ => return Err(format!("<a write to {o}>")),
        };
        if n >= MAX_REGISTERS {
            return Err(format!("<a write to register {o}>"));
        }
        if regs.len() <= n {
            regs.resize_with(n + 1, || Arc::new(unset()));
        }
        regs[n] = v;
        Ok(())
    }

    /// The x registers 0..n, a call's arguments.
    fn args(&self, s: &State, n: u64) -> Vec<Expr> {
        (0..n.min(MAX_REGISTERS as u64))
            .map(|i| s.x.get(i as usize).map_or_else(unset, |v| Expr::clone(v)))
            .collect()
    }

    /// The branches of a test on `value`: `outcome` when the known parts decide it, else
    /// both ways, with a guard when the value depends on the rule argument.
    fn branch(fail: u32, value: &Expr, test: Option<Test>, outcome: Option<bool>) -> Flow {
        match outcome {
            _ if fail == 0 => Flow::Next,
            Some(true) => Flow::Next,
            Some(false) => Flow::Jump(fail),
            None => {
                let guard = |holds| {
                    test.clone().filter(|_| value.depends_on_arg()).map(|test| Guard {
                        value: value.clone(),
                        test,
                        holds,
                    })
                };
                Flow::Fork(vec![(None, guard(true)), (Some(fail), guard(false))])
            }
        }
    }

    fn step(&mut self, ins: &Instruction, at: usize, s: &mut State) -> Flow {
        use Opcode as Op;
        let o = ins.operands.as_slice();
        macro_rules! set {
            ($dst:expr, $v:expr) => {
                if let Err(why) = self.set(s, $dst, $v) {
                    return Flow::GiveUp(why);
                }
            };
        }
        let builds = matches!(
            ins.opcode,
            Op::PutList | Op::PutTuple2 | Op::PutMapAssoc | Op::PutMapExact | Op::MakeFun3 | Op::MakeFun2
        ) || matches!(ins.opcode, Op::CallExt | Op::CallExtLast | Op::CallExtOnly);
        if builds {
            if self.constructions_left == 0 {
                return Flow::GiveUp("<more terms built than rel follows>".into());
            }
            self.constructions_left -= 1;
        }
        match (ins.opcode, o) {
            (
                Op::Label
                | Op::Line
                | Op::TestHeap
                | Op::TryEnd
                | Op::CatchEnd
                | Op::NifStart
                | Op::OnLoad
                | Op::RecvMarkerBind
                | Op::RecvMarkerClear
                | Op::RecvMarkerUse
                | Op::BsPutInteger
                | Op::BsPutBinary
                | Op::BsPutFloat
                | Op::BsPutString
                | Op::BsPutUtf8
                | Op::BsPutUtf16
                | Op::BsPutUtf32,
                _,
            ) => Flow::Next,
            (
                Op::FuncInfo
                | Op::IntCodeEnd
                | Op::Badmatch
                | Op::CaseEnd
                | Op::IfEnd
                | Op::TryCaseEnd
                | Op::TryCase
                | Op::Raise
                | Op::RawRaise
                | Op::Badrecord,
                _,
            ) => Flow::Dead,

            // The stack frame.
            (Op::Allocate | Op::AllocateZero | Op::AllocateHeap | Op::AllocateHeapZero, [Operand::Unsigned(n), ..]) => {
                if *n as usize > MAX_REGISTERS {
                    return Flow::GiveUp(format!("<a stack frame of {n} slots>"));
                }
                // One shared value for every slot: registers are replaced, never changed in place.
                let unset = Arc::new(Expr::unknown("<an unset stack slot>"));
                s.y = std::iter::repeat_n(unset, *n as usize).collect();
                Flow::Next
            }
            (Op::Deallocate, _) => {
                s.y.clear();
                Flow::Next
            }
            (Op::Trim, [Operand::Unsigned(n), _]) => {
                let n = (*n as usize).min(s.y.len());
                s.y.drain(..n);
                Flow::Next
            }
            (Op::InitYregs, [Operand::List(regs)]) => {
                for r in regs {
                    set!(r, unset());
                }
                Flow::Next
            }
            (Op::Init | Op::RecvMarkerReserve | Op::BuildStacktrace, _) => {
                let dst = o.first().cloned().unwrap_or(Operand::X(0));
                set!(&dst, Expr::unknown("<a value rel does not model>"));
                Flow::Next
            }
            (Op::Try | Op::Catch, [tag, _]) => {
                set!(tag, Expr::unknown("<a try tag>"));
                Flow::Next
            }

            // Moving and building.
            (Op::Move, [src, dst]) => {
                let v = self.value(s, src);
                if let Err(why) = self.set_shared(s, dst, v) {
                    return Flow::GiveUp(why);
                }
                Flow::Next
            }
            (Op::Swap, [a, b]) => {
                let (va, vb) = (self.value(s, a), self.value(s, b));
                if let Err(why) = self.set_shared(s, a, vb).and_then(|()| self.set_shared(s, b, va)) {
                    return Flow::GiveUp(why);
                }
                Flow::Next
            }
            (Op::PutList, [head, tail, dst]) => {
                let v = Expr::cons(vec![self.get(s, head)], self.get(s, tail));
                set!(dst, v);
                Flow::Next
            }
            (Op::PutTuple2, [dst, Operand::List(items)]) => {
                let v = Expr::tuple(items.iter().map(|i| self.get(s, i)).collect());
                set!(dst, v);
                Flow::Next
            }
            (Op::PutMapAssoc | Op::PutMapExact, [_, src, dst, _, Operand::List(pairs)]) => {
                let mut map = self.get(s, src);
                for kv in pairs.chunks(2) {
                    let [k, v] = kv else { break };
                    let (k, v) = (self.get(s, k), self.get(s, v));
                    map = match map.map_put(k, v) {
                        Some(m) => m,
                        None => Expr::unknown(format!("<a map built on {}>", self.syntax.expr(&map))),
                    };
                }
                set!(dst, map);
                Flow::Next
            }
            (Op::MakeFun3, [Operand::Lambda(lambda), dst, Operand::List(env)]) => {
                let env = env.iter().map(|e| self.get(s, e)).collect();
                set!(dst, Expr::Fun { lambda: *lambda, env });
                Flow::Next
            }
            (Op::MakeFun2, [Operand::Lambda(lambda)]) => {
                let free = self.code.lambdas().get(*lambda as usize).map_or(0, |l| l.free);
                let env = self.args(s, u64::from(free));
                s.x = vec![Arc::new(Expr::Fun { lambda: *lambda, env })];
                Flow::Next
            }

            // Taking apart.
            (Op::GetTupleElement, [src, Operand::Unsigned(i), dst]) => {
                let v = self.get(s, src).element(*i as usize);
                set!(dst, v);
                Flow::Next
            }
            (Op::GetList | Op::GetHd | Op::GetTl, _) => {
                let list = self.get(s, &o[0]);
                let (head, tail) = match list.list_view() {
                    Some((items, tail)) if !items.is_empty() => {
                        let tail = match tail {
                            super::expr::Tail::Nil => Expr::nil(),
                            super::expr::Tail::Other(t) => t,
                        };
                        (items[0].clone(), Expr::cons(items[1..].to_vec(), tail))
                    }
                    _ => (
                        Expr::unknown("<the head of a list>"),
                        Expr::unknown("<the tail of a list>"),
                    ),
                };
                match (ins.opcode, o) {
                    (Op::GetList, [_, h, t]) => {
                        set!(h, head);
                        set!(t, tail);
                    }
                    (Op::GetHd, [_, h]) => set!(h, head),
                    (Op::GetTl, [_, t]) => set!(t, tail),
                    _ => return Flow::GiveUp("<a malformed list instruction>".into()),
                }
                Flow::Next
            }
            (Op::GetMapElements, [Operand::Label(fail), src, Operand::List(pairs)]) => {
                let map = self.get(s, src);
                let mut undecided = false;
                for kd in pairs.chunks(2) {
                    let [k, dst] = kd else { break };
                    let key = self.get(s, k);
                    let found = match key.as_term() {
                        Some(key) => map.map_lookup(key),
                        None => super::expr::Lookup::Unknown,
                    };
                    match found {
                        super::expr::Lookup::Found(v) => set!(dst, v),
                        super::expr::Lookup::Absent => return Flow::Jump(*fail),
                        super::expr::Lookup::Unknown => {
                            undecided = true;
                            set!(dst, Expr::unknown("<a map value>"));
                        }
                    }
                }
                Self::branch(
                    *fail,
                    &map,
                    Some(Test::IsMap),
                    if undecided { None } else { Some(true) },
                )
            }
            (Op::HasMapFields, [Operand::Label(fail), src, Operand::List(keys)]) => {
                let map = self.get(s, src);
                let mut outcome = Some(true);
                for k in keys {
                    match self.get(s, k).as_term().map(|k| map.map_lookup(k)) {
                        Some(super::expr::Lookup::Found(_)) => {}
                        Some(super::expr::Lookup::Absent) => outcome = Some(false),
                        _ => outcome = outcome.and(None),
                    }
                }
                Self::branch(*fail, &map, None, outcome)
            }

            // Tests.
            (Op::IsEqExact | Op::IsEq | Op::IsNeExact | Op::IsNe, [Operand::Label(fail), a, b]) => {
                let (a, b) = (self.get(s, a), self.get(s, b));
                let equal = a.exactly_equals(&b);
                let wants_equal = matches!(ins.opcode, Op::IsEqExact | Op::IsEq);
                let (value, test) = match (&a, &b) {
                    (Expr::Term(t), v) | (v, Expr::Term(t)) => (v.clone(), Some(Test::OneOf(vec![Term::clone(t)]))),
                    _ => (a.clone(), None),
                };
                match Self::branch(*fail, &value, test, equal.map(|e| e == wants_equal)) {
                    // The guard records equality; flip it for the "not equal" tests.
                    Flow::Fork(mut branches) if !wants_equal => {
                        for (_, g) in &mut branches {
                            if let Some(g) = g {
                                g.holds = !g.holds;
                            }
                        }
                        Flow::Fork(branches)
                    }
                    flow => flow,
                }
            }
            (Op::TestArity, [Operand::Label(fail), src, Operand::Unsigned(n)]) => {
                let v = self.get(s, src);
                let test = Test::Arity(*n as usize);
                let outcome = test.check(&v);
                Self::branch(*fail, &v, Some(test), outcome)
            }
            (Op::IsTaggedTuple, [Operand::Label(fail), src, Operand::Unsigned(n), Operand::Atom(tag)]) => {
                let v = self.get(s, src);
                let arity = Test::Arity(*n as usize).check(&v);
                let outcome = match arity {
                    Some(false) => Some(false),
                    _ => match (v.clone().element(0).exactly_equals(&Expr::atom(tag)), arity) {
                        (Some(false), _) => Some(false),
                        (Some(true), Some(true)) => Some(true),
                        _ => None,
                    },
                };
                Self::branch(*fail, &v, None, outcome)
            }
            (op, [Operand::Label(fail), src]) if type_test(op).is_some() || is_other_type_test(op) => {
                let v = self.get(s, src);
                let test = type_test(op);
                let outcome = test.as_ref().and_then(|t| t.check(&v));
                Self::branch(*fail, &v, test, outcome)
            }
            (Op::IsLt | Op::IsGe | Op::IsFunction2, [Operand::Label(fail), ..]) => {
                let v = self.get(s, &o[1]);
                Self::branch(*fail, &v, None, None)
            }
            (Op::SelectVal, [src, Operand::Label(fail), Operand::List(table)]) => self.select_val(s, src, *fail, table),
            (Op::SelectTupleArity, [src, Operand::Label(fail), Operand::List(table)]) => {
                let v = self.get(s, src);
                let arms: Vec<(usize, u32)> = table
                    .chunks(2)
                    .filter_map(|arm| match arm {
                        [Operand::Unsigned(n), Operand::Label(l)] => Some((*n as usize, *l)),
                        _ => None,
                    })
                    .collect();
                if let Some(items) = v.tuple_view() {
                    return Flow::Jump(arms.iter().find(|(n, _)| *n == items.len()).map_or(*fail, |(_, l)| *l));
                }
                let guard = |n, holds| {
                    v.depends_on_arg().then(|| Guard {
                        value: v.clone(),
                        test: Test::Arity(n),
                        holds,
                    })
                };
                let mut branches: Vec<(Option<u32>, Option<Guard>)> =
                    arms.iter().map(|&(n, l)| (Some(l), guard(n, true))).collect();
                branches.push((Some(*fail), None));
                Flow::Fork(branches)
            }
            (Op::Jump, [Operand::Label(l)]) => Flow::Jump(*l),

            // BIFs.
            (Op::Bif0, [Operand::Import(mfa), dst]) => {
                let v = Expr::unknown(self.syntax.call(&mfa.module, &mfa.function, &[]));
                set!(dst, v);
                Flow::Next
            }
            (Op::Bif1 | Op::Bif2, [Operand::Label(fail), Operand::Import(mfa), rest @ ..])
            | (Op::GcBif1 | Op::GcBif2 | Op::GcBif3, [Operand::Label(fail), _, Operand::Import(mfa), rest @ ..]) => {
                let Some((dst, args)) = rest.split_last() else {
                    return Flow::GiveUp("<a malformed BIF call>".into());
                };
                let args: Vec<Expr> = args.iter().map(|a| self.get(s, a)).collect();
                match bif(mfa, &args) {
                    Some(v) => {
                        set!(dst, v);
                        Flow::Next
                    }
                    None => {
                        let v = Expr::unknown(self.syntax.call(&mfa.module, &mfa.function, &args));
                        set!(dst, v);
                        if *fail == 0 {
                            Flow::Next
                        } else {
                            Flow::Fork(vec![(None, None), (Some(*fail), None)])
                        }
                    }
                }
            }

            // Calls.
            (Op::Call | Op::CallLast | Op::CallOnly, [Operand::Unsigned(arity), Operand::Label(label), ..]) => {
                let args = self.args(s, *arity);
                let results = self.run(*label, args);
                if ins.opcode == Op::Call {
                    Flow::Results(results)
                } else {
                    Flow::Return(results)
                }
            }
            (Op::CallExt | Op::CallExtLast | Op::CallExtOnly, [Operand::Unsigned(arity), Operand::Import(mfa), ..]) => {
                let args = self.args(s, *arity);
                let results = self.call_ext(mfa, args, at);
                if ins.opcode == Op::CallExt {
                    Flow::Results(results)
                } else {
                    Flow::Return(results)
                }
            }
            (Op::Apply | Op::ApplyLast, [Operand::Unsigned(arity), ..]) => {
                let args = self.args(s, *arity);
                let m = self.get(s, &Operand::X(*arity as u32));
                let f = self.get(s, &Operand::X(*arity as u32 + 1));
                let results = match (m.as_atom(), f.as_atom()) {
                    (Some(m), Some(f)) => {
                        let mfa = Mfa {
                            module: m.into(),
                            function: f.into(),
                            arity: args.len() as u32,
                        };
                        self.call_ext(&mfa, args, at)
                    }
                    _ => vec![Outcome::of(Expr::unknown("<an apply of a computed function>"))],
                };
                if ins.opcode == Op::Apply {
                    Flow::Results(results)
                } else {
                    Flow::Return(results)
                }
            }
            (Op::CallFun, [Operand::Unsigned(arity)]) => {
                let fun = self.get(s, &Operand::X(*arity as u32));
                let args = self.args(s, *arity);
                Flow::Results(self.call_fun(&fun, args))
            }
            (Op::CallFun2, [_, Operand::Unsigned(arity), fun]) => {
                let fun = self.get(s, fun);
                let args = self.args(s, *arity);
                Flow::Results(self.call_fun(&fun, args))
            }
            (Op::Return, _) => Flow::Return(vec![Outcome::of(self.get(s, &Operand::X(0)))]),

            // Binaries are built (names such as `:"worker_#{id}"`) but never looked into.
            (Op::BsCreateBin, [.., dst, _])
            | (Op::BsInit2 | Op::BsInitBits | Op::BsPrivateAppend, [.., dst])
            | (Op::BsAppend, [.., dst])
            | (Op::BsAdd, [.., dst])
            | (Op::BsUtf8Size | Op::BsUtf16Size, [_, _, dst]) => {
                set!(dst, Expr::unknown("<a binary>"));
                Flow::Next
            }

            (op, _) => Flow::GiveUp(format!(
                "<code rel does not follow ({} in {})>",
                op.name(),
                self.code
                    .function_at(at)
                    .map_or_else(|| "?".to_owned(), |f| format!("{}/{}", f.name, f.arity))
            )),
        }
    }

    fn select_val(&self, s: &State, src: &Operand, fail: u32, table: &[Operand]) -> Flow {
        let v = self.get(s, src);
        let arms: Vec<(Expr, u32)> = table
            .chunks(2)
            .filter_map(|arm| match arm {
                [value, Operand::Label(l)] => Some((self.get(s, value), *l)),
                _ => None,
            })
            .collect();
        let mut undecided = false;
        for (value, label) in &arms {
            match v.exactly_equals(value) {
                Some(true) => return Flow::Jump(*label),
                Some(false) => {}
                None => undecided = true,
            }
        }
        if !undecided {
            return Flow::Jump(fail);
        }
        // One branch per target label, guarded by the values that lead there.
        let mut targets: Vec<(u32, Vec<Term>)> = Vec::new();
        for (value, label) in &arms {
            let Some(t) = value.as_term() else { continue };
            match targets.iter_mut().find(|(l, _)| l == label) {
                Some((_, values)) => values.push(t.clone()),
                None => targets.push((*label, vec![t.clone()])),
            }
        }
        let all: Vec<Term> = targets.iter().flat_map(|(_, v)| v.iter().cloned()).collect();
        let guard = |values: Vec<Term>, holds| {
            v.depends_on_arg().then(|| Guard {
                value: v.clone(),
                test: Test::OneOf(values),
                holds,
            })
        };
        let mut branches: Vec<(Option<u32>, Option<Guard>)> = targets
            .into_iter()
            .map(|(label, values)| (Some(label), guard(values, true)))
            .collect();
        branches.push((Some(fail), guard(all, false)));
        Flow::Fork(branches)
    }

    /// A call to another module (or to this one by name).
    fn call_ext(&mut self, mfa: &Mfa, args: Vec<Expr>, at: usize) -> Vec<Outcome> {
        if *mfa.module == *self.code.module()
            && let Some(f) = self.code.function(&mfa.function, mfa.arity)
        {
            let entry = f.entry;
            return self.run(entry, args);
        }
        if let Some(results) = self.model(mfa, &args, at) {
            return results;
        }
        vec![Outcome::of(Expr::unknown(self.syntax.call(
            &mfa.module,
            &mfa.function,
            &args,
        )))]
    }
}

fn unset() -> Expr {
    Expr::unknown("<an unset register>")
}

/// The guard a type test makes, for the tests a guard can replay.
fn type_test(op: Opcode) -> Option<Test> {
    Some(match op {
        Opcode::IsAtom => Test::IsAtom,
        Opcode::IsInteger => Test::IsInteger,
        Opcode::IsList => Test::IsList,
        Opcode::IsNil => Test::IsNil,
        Opcode::IsNonemptyList => Test::IsNonEmptyList,
        Opcode::IsTuple => Test::IsTuple,
        Opcode::IsMap => Test::IsMap,
        Opcode::IsBinary => Test::IsBinary,
        Opcode::IsFunction => Test::IsFunction,
        _ => return None,
    })
}

/// Type tests whose outcome the evaluator never decides.
fn is_other_type_test(op: Opcode) -> bool {
    matches!(
        op,
        Opcode::IsFloat
            | Opcode::IsNumber
            | Opcode::IsPid
            | Opcode::IsPort
            | Opcode::IsReference
            | Opcode::IsBoolean
            | Opcode::IsBitstr
    )
}

/// The BIFs whose result on known arguments matters for child specs.
fn bif(mfa: &Mfa, args: &[Expr]) -> Option<Expr> {
    if &*mfa.module != "erlang" {
        return None;
    }
    let boolean = |b: bool| Expr::atom(if b { "true" } else { "false" });
    let int = |e: &Expr| match e.as_term() {
        Some(Term::Integer(i)) => Some(*i),
        _ => None,
    };
    match (&*mfa.function, args) {
        ("=:=" | "==", [a, b]) => a.exactly_equals(b).map(boolean),
        ("=/=" | "/=", [a, b]) => a.exactly_equals(b).map(|e| boolean(!e)),
        ("not", [a]) => match a.as_atom()? {
            "true" => Some(boolean(false)),
            "false" => Some(boolean(true)),
            _ => None,
        },
        ("hd", [l]) => l.list_view().and_then(|(items, _)| items.first().cloned()),
        ("element", [n, t]) => {
            let n = usize::try_from(int(n)?).ok()?.checked_sub(1)?;
            t.tuple_view()?.get(n).cloned()
        }
        ("tuple_size", [t]) => Some(Expr::term(Term::Integer(t.tuple_view()?.len() as i128))),
        ("length", [l]) => match l.list_view()? {
            (items, super::expr::Tail::Nil) => Some(Expr::term(Term::Integer(items.len() as i128))),
            _ => None,
        },
        ("map_get", [k, m]) => match m.map_lookup(k.as_term()?) {
            super::expr::Lookup::Found(v) => Some(v),
            _ => None,
        },
        ("is_map_key", [k, m]) => match m.map_lookup(k.as_term()?) {
            super::expr::Lookup::Found(_) => Some(boolean(true)),
            super::expr::Lookup::Absent => Some(boolean(false)),
            super::expr::Lookup::Unknown => None,
        },
        ("+", [a, b]) => int(a)?.checked_add(int(b)?).map(|i| Expr::term(Term::Integer(i))),
        ("-", [a, b]) => int(a)?.checked_sub(int(b)?).map(|i| Expr::term(Term::Integer(i))),
        (f, [a]) => {
            let test = match f {
                "is_atom" => Test::IsAtom,
                "is_integer" => Test::IsInteger,
                "is_list" => Test::IsList,
                "is_tuple" => Test::IsTuple,
                "is_map" => Test::IsMap,
                "is_binary" => Test::IsBinary,
                "is_function" => Test::IsFunction,
                _ => return None,
            };
            test.check(a).map(boolean)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::Beam;

    /// A module `m` whose one function `f/0` (entry label 2) is `body`.
    fn module_with(body: &[u8]) -> Beam {
        fn chunk(out: &mut Vec<u8>, id: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(id);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(4) * 4, 0);
        }
        let be = |n: u32| n.to_be_bytes();
        let mut code = [be(16), be(0), be(u32::from(Opcode::MAX)), be(16), be(1)].concat();
        // label 1, func_info m f 0, label 2, then the body.
        code.extend_from_slice(&[1, 0x10, 2, 0x12, 0x22, 0x00, 1, 0x20]);
        code.extend_from_slice(body);
        code.push(Opcode::IntCodeEnd as u8);
        let mut chunks = Vec::new();
        chunk(&mut chunks, b"AtU8", &[&be(2)[..], &[1, b'm', 1, b'f']].concat());
        chunk(&mut chunks, b"Code", &code);
        chunk(&mut chunks, b"StrT", &[]);
        chunk(&mut chunks, b"ImpT", &be(0));
        chunk(&mut chunks, b"ExpT", &[be(1), be(2), be(0), be(2)].concat());
        let mut file = b"FOR1".to_vec();
        file.extend_from_slice(&be(chunks.len() as u32 + 4));
        file.extend_from_slice(b"BEAM");
        file.extend_from_slice(&chunks);
        Beam::parse("m.beam", file).unwrap()
    }

    #[test]
    fn a_loop_nesting_a_term_forever_stops_with_an_unknown_value() {
        // label 3: put_tuple2 x0 {list,[x0]}; jump 3 -- a tuple nested once more every turn.
        let beam = module_with(&[
            1,
            0x30,
            Opcode::PutTuple2 as u8,
            0x03,
            0x17,
            0x10,
            0x03,
            Opcode::Jump as u8,
            0x35,
        ]);
        let code = beam.code().unwrap();
        let mut machine = Machine::new(&code, MAX_STEPS);
        let out = machine.run(2, vec![]);
        assert_eq!(
            out,
            vec![Outcome::of(Expr::unknown("<more terms built than rel follows>"))]
        );
        assert!(machine.steps_left > 0, "the construction bound stopped it first");
    }

    #[test]
    fn a_loop_without_end_stops_at_the_step_budget() {
        // label 3: jump 3.
        let beam = module_with(&[1, 0x30, Opcode::Jump as u8, 0x35]);
        let code = beam.code().unwrap();
        let mut machine = Machine::new(&code, 500);
        let out = machine.run(2, vec![]);
        assert_eq!(out, vec![Outcome::of(Expr::unknown("<more code than rel follows>"))]);
        assert_eq!(machine.steps_left, 0);
    }
}
