//! The second half of relup generation, as OTP keeps it apart in `systools_rc`: high-level
//! appup instructions expanded to their full forms, checked, and translated to the low-level
//! instructions `release_handler` evaluates (`load_object_code` merged per library before
//! `point_of_no_return`; per group of interdependent modules `suspend`, `load`/`remove`,
//! `code_change`, `resume`).

use std::collections::{BTreeMap, HashMap};

use super::{RelupApp, RelupError, atom, atoms, items, tag, tuple};
use crate::term::Term;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Up,
    Dn,
}

/// `expand_script/1`: default arguments of the short instruction forms.
fn expand(script: Vec<Term>) -> Vec<Term> {
    let bp = || atom("brutal_purge");
    let nil = || Term::List(vec![]);
    let mut out = Vec::new();
    for i in script {
        let t = items(&i);
        let is_list = |x: &Term| matches!(x, Term::List(_) | Term::String(_));
        let is_change = |x: &Term| matches!(x, Term::Tuple(_)) || x.as_atom() == Some("soft");
        let expanded = match (tag(&i), t.len()) {
            (Some("load_module"), 2) => tuple(vec![atom("load_module"), t[1].clone(), bp(), bp(), nil()]),
            (Some("load_module"), 3) if is_list(&t[2]) => {
                tuple(vec![atom("load_module"), t[1].clone(), bp(), bp(), t[2].clone()])
            }
            (Some("update"), 2) => tuple(vec![atom("update"), t[1].clone(), atom("soft"), bp(), bp(), nil()]),
            (Some("update"), 3) if t[2].as_atom() == Some("supervisor") => tuple(vec![
                atom("update"),
                t[1].clone(),
                atom("static"),
                atom("default"),
                tuple(vec![atom("advanced"), nil()]),
                bp(),
                bp(),
                nil(),
            ]),
            (Some("update"), 3) if is_change(&t[2]) => {
                tuple(vec![atom("update"), t[1].clone(), t[2].clone(), bp(), bp(), nil()])
            }
            (Some("update"), 3) if is_list(&t[2]) => tuple(vec![
                atom("update"),
                t[1].clone(),
                atom("soft"),
                bp(),
                bp(),
                t[2].clone(),
            ]),
            (Some("update"), 4) if is_change(&t[2]) && is_list(&t[3]) => tuple(vec![
                atom("update"),
                t[1].clone(),
                t[2].clone(),
                bp(),
                bp(),
                t[3].clone(),
            ]),
            (Some("add_application"), 2) => tuple(vec![atom("add_application"), t[1].clone(), atom("permanent")]),
            _ => i.clone(),
        };
        out.push(expanded);
    }
    out
}

/// `split_script/1`.
fn split_script(script: Vec<Term>) -> Result<(Vec<Term>, Vec<Term>), RelupError> {
    let positions: Vec<usize> = script
        .iter()
        .enumerate()
        .filter(|(_, i)| i.as_atom() == Some("point_of_no_return"))
        .map(|(n, _)| n)
        .collect();
    let (before, after) = match positions.as_slice() {
        [] => (vec![], script),
        [p] => {
            let mut s = script;
            let after = s.split_off(*p + 1);
            s.pop();
            (s, after)
        }
        _ => return Err(RelupError::TooManyPointOfNoReturn),
    };
    for i in &before {
        if !matches!(tag(i), Some("load_object_code" | "apply")) {
            return Err(RelupError::BadBeforePointOfNoReturn(i.to_string()));
        }
    }
    let (found, rest): (Vec<Term>, Vec<Term>) = after.into_iter().partition(|i| tag(i) == Some("load_object_code"));
    Ok(([before, found].concat(), rest))
}

/// `normalize_instrs/1`.
fn normalize(script: Vec<Term>) -> Vec<Term> {
    script
        .into_iter()
        .map(|i| {
            let t = items(&i);
            match (tag(&i), t.len()) {
                (Some("update"), 6) => tuple(vec![
                    atom("update"),
                    t[1].clone(),
                    atom("dynamic"),
                    atom("default"),
                    t[2].clone(),
                    t[3].clone(),
                    t[4].clone(),
                    t[5].clone(),
                ]),
                (Some("update"), 7) => tuple(vec![
                    atom("update"),
                    t[1].clone(),
                    atom("dynamic"),
                    t[2].clone(),
                    t[3].clone(),
                    t[4].clone(),
                    t[5].clone(),
                    t[6].clone(),
                ]),
                (Some("add_module"), 2) => tuple(vec![atom("add_module"), t[1].clone(), Term::List(vec![])]),
                (Some("delete_module"), 2) => tuple(vec![atom("delete_module"), t[1].clone(), Term::List(vec![])]),
                _ => i,
            }
        })
        .collect()
}

fn check_syntax(script: &[Term]) -> Result<(), RelupError> {
    const KNOWN: &[(&str, &[usize])] = &[
        ("update", &[6, 7, 8]),
        ("load_module", &[5]),
        ("add_module", &[2, 3]),
        ("delete_module", &[2, 3]),
        ("remove_application", &[2]),
        ("add_application", &[3]),
        ("restart_application", &[2]),
        ("load_object_code", &[2]),
        ("load", &[2]),
        ("remove", &[2]),
        ("purge", &[2]),
        ("suspend", &[2]),
        ("resume", &[2]),
        ("code_change", &[2, 3]),
        ("stop", &[2]),
        ("start", &[2]),
        ("sync_nodes", &[3]),
        ("apply", &[2]),
    ];
    for i in script {
        let ok = match i {
            Term::Atom(a) => matches!(
                a.as_str(),
                "restart" | "reboot" | "point_of_no_return" | "restart_new_emulator" | "restart_emulator"
            ),
            Term::Tuple(t) => {
                let name = tag(i).unwrap_or("");
                KNOWN.iter().any(|(n, sizes)| *n == name && sizes.contains(&t.len()))
                    && (name != "apply"
                        || t[1].as_tuple().is_some_and(|mfa| {
                            mfa.len() == 3 && mfa[0].as_atom().is_some() && mfa[1].as_atom().is_some()
                        }))
                    && (!matches!(name, "update" | "load_module" | "add_module" | "delete_module")
                        || t[1].as_atom().is_some())
            }
            _ => false,
        };
        if !ok {
            return Err(RelupError::BadInstruction(i.to_string()));
        }
    }
    Ok(())
}

fn app_modules<'a>(apps: &'a [RelupApp], name: &str) -> Option<&'a RelupApp> {
    apps.iter().find(|a| a.name == name)
}

/// `translate_application_instrs/3` and `translate_add_module_instrs/2`.
fn translate_independent(
    after: Vec<Term>,
    appls: &[RelupApp],
    pre_appls: &[RelupApp],
) -> Result<Vec<Term>, RelupError> {
    let bp = || atom("brutal_purge");
    let start = |app: &RelupApp| -> Vec<Term> {
        match app.start_type.as_str() {
            "none" => vec![],
            "load" => vec![apply("application", "load", vec![atom(&app.name)])],
            t => vec![apply("application", "start", vec![atom(&app.name), atom(t)])],
        }
    };
    let mut out = Vec::new();
    for i in after {
        let t = items(&i).to_vec();
        let name_of = |x: &Term| x.as_atom().unwrap_or_default().to_owned();
        match tag(&i) {
            Some("add_application") => {
                let name = name_of(&t[1]);
                let app = app_modules(appls, &name).ok_or_else(|| RelupError::NoSuchApplication(name.clone()))?;
                out.extend(
                    app.modules
                        .iter()
                        .map(|m| tuple(vec![atom("add_module"), atom(m), Term::List(vec![])])),
                );
                let with_type = RelupApp {
                    start_type: t[2].as_atom().unwrap_or("permanent").to_owned(),
                    ..app.clone()
                };
                out.extend(start(&with_type));
            }
            Some("remove_application") => {
                let name = name_of(&t[1]);
                if app_modules(appls, &name).is_some() {
                    return Err(RelupError::RemovedApplicationPresent(name));
                }
                let app = app_modules(pre_appls, &name).ok_or_else(|| RelupError::NoSuchApplication(name.clone()))?;
                out.push(apply("application", "stop", vec![atom(&name)]));
                out.extend(
                    app.modules
                        .iter()
                        .map(|m| tuple(vec![atom("remove"), tuple(vec![atom(m), bp(), bp()])])),
                );
                out.push(tuple(vec![atom("purge"), atoms(&app.modules)]));
                out.push(apply("application", "unload", vec![atom(&name)]));
            }
            Some("restart_application") => {
                let name = name_of(&t[1]);
                let pre = app_modules(pre_appls, &name).ok_or_else(|| RelupError::NoSuchApplication(name.clone()))?;
                let post = app_modules(appls, &name).ok_or_else(|| RelupError::NoSuchApplication(name.clone()))?;
                out.push(apply("application", "stop", vec![atom(&name)]));
                out.extend(
                    pre.modules
                        .iter()
                        .map(|m| tuple(vec![atom("remove"), tuple(vec![atom(m), bp(), bp()])])),
                );
                out.push(tuple(vec![atom("purge"), atoms(&pre.modules)]));
                out.extend(
                    post.modules
                        .iter()
                        .map(|m| tuple(vec![atom("add_module"), atom(m), Term::List(vec![])])),
                );
                out.extend(start(post));
            }
            _ => out.push(i),
        }
    }
    Ok(out
        .into_iter()
        .map(|i| {
            let t = items(&i);
            if tag(&i) == Some("add_module") && t.len() == 3 {
                tuple(vec![atom("load_module"), t[1].clone(), bp(), bp(), t[2].clone()])
            } else {
                i
            }
        })
        .collect())
}

fn apply(m: &str, f: &str, args: Vec<Term>) -> Term {
    tuple(vec![atom("apply"), tuple(vec![atom(m), atom(f), Term::List(args)])])
}

const DEP_INSTRS: [&str; 4] = ["update", "load_module", "add_module", "delete_module"];

fn is_dep(i: &Term) -> bool {
    matches!(i, Term::Tuple(t) if t.len() > 1) && tag(i).is_some_and(|n| DEP_INSTRS.contains(&n))
}

fn dep_module(i: &Term) -> String {
    items(i)[1].as_atom().unwrap_or_default().to_owned()
}

fn dep_mods(i: &Term) -> Vec<String> {
    items(i)
        .last()
        .and_then(Term::as_list)
        .map(|l| l.iter().filter_map(|m| m.as_atom().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The dependency graph of the dependent instructions: module → (position, instruction,
/// modules it depends on).
struct Graph {
    nodes: BTreeMap<String, (usize, Term, Vec<String>)>,
    /// Each module's neighbours, dependencies and dependents alike.
    undirected: HashMap<String, Vec<String>>,
}

impl Graph {
    fn new(instrs: &[Term]) -> Result<Self, RelupError> {
        let mut nodes = BTreeMap::new();
        for (n, i) in instrs.iter().filter(|i| is_dep(i)).enumerate() {
            let m = dep_module(i);
            if nodes.insert(m.clone(), (n + 1, i.clone(), dep_mods(i))).is_some() {
                return Err(RelupError::MuldefModule(m));
            }
        }
        let mut undirected: HashMap<String, Vec<String>> = HashMap::new();
        for (v, (_, _, deps)) in &nodes {
            if let Some(d) = deps.iter().find(|d| !nodes.contains_key(*d)) {
                return Err(RelupError::UndefModule(d.clone()));
            }
            for d in deps {
                undirected.entry(v.clone()).or_default().push(d.clone());
                undirected.entry(d.clone()).or_default().push(v.clone());
            }
        }
        Ok(Graph { nodes, undirected })
    }

    /// The weakly connected component of `m`, in instruction order.
    fn component(&self, m: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::from([m]);
        let mut stack = vec![m];
        while let Some(v) = stack.pop() {
            for n in self.undirected.get(v).into_iter().flatten() {
                if seen.insert(n.as_str()) {
                    stack.push(n);
                }
            }
        }
        let mut comp: Vec<&str> = seen.into_iter().collect();
        comp.sort_by_key(|v| self.nodes[*v].0);
        comp.into_iter().map(str::to_owned).collect()
    }

    /// `get_dependent_instructions/3`: the component's instructions, dependents before
    /// their dependencies, each strongly connected group in instruction order.
    fn dependent_instructions(&self, m: &str) -> Vec<Term> {
        let comp = self.component(m);
        let members: std::collections::HashSet<&String> = comp.iter().collect();
        let sccs = tarjan(&comp, |v| {
            self.nodes[v]
                .2
                .iter()
                .filter(|d| members.contains(d))
                .cloned()
                .collect()
        });
        // Tarjan yields components dependencies-first; OTP's topsort puts dependents first.
        let mut out = Vec::new();
        for scc in sccs.into_iter().rev() {
            let mut group: Vec<&(usize, Term, Vec<String>)> = scc.iter().map(|v| &self.nodes[v]).collect();
            group.sort_by_key(|(n, _, _)| *n);
            out.extend(group.into_iter().map(|(_, i, _)| i.clone()));
        }
        out
    }
}

/// Strongly connected components (Tarjan), each after the components it depends on.
fn tarjan(vs: &[String], edges: impl Fn(&str) -> Vec<String>) -> Vec<Vec<String>> {
    struct State<'a, F> {
        edges: F,
        index: HashMap<String, usize>,
        low: HashMap<String, usize>,
        on: std::collections::HashSet<String>,
        stack: Vec<String>,
        next: usize,
        out: Vec<Vec<String>>,
        _p: std::marker::PhantomData<&'a ()>,
    }
    fn visit<F: Fn(&str) -> Vec<String>>(s: &mut State<'_, F>, v: &str) {
        s.index.insert(v.to_owned(), s.next);
        s.low.insert(v.to_owned(), s.next);
        s.next += 1;
        s.stack.push(v.to_owned());
        s.on.insert(v.to_owned());
        for w in (s.edges)(v) {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let lw = s.low[&w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on.contains(&w) {
                let iw = s.index[&w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(&w);
                let done = w == v;
                comp.push(w);
                if done {
                    break;
                }
            }
            s.out.push(comp);
        }
    }
    let mut s = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        on: Default::default(),
        stack: vec![],
        next: 0,
        out: vec![],
        _p: std::marker::PhantomData,
    };
    // Visiting in reverse instruction order leaves independent components, once the caller
    // reverses the list, in instruction order.
    for v in vs.iter().rev() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// `translate_dep_to_low/3`.
fn dep_to_low(mode: Mode, instrs: &[Term], appls: &[RelupApp]) -> Result<(Vec<Term>, Vec<Term>), RelupError> {
    let mut update_mods = Vec::new();
    for i in instrs.iter().filter(|i| tag(i) == Some("update")) {
        let t = items(i);
        update_mods.push(if t[3].as_atom() == Some("default") {
            t[1].clone()
        } else {
            tuple(vec![t[1].clone(), t[3].clone()])
        });
    }
    let suspend = if update_mods.is_empty() {
        vec![]
    } else {
        vec![tuple(vec![atom("suspend"), Term::List(update_mods.clone())])]
    };
    let resume = if update_mods.is_empty() {
        vec![]
    } else {
        let names = update_mods.iter().rev().map(|m| match m {
            Term::Tuple(t) => t[0].clone(),
            other => other.clone(),
        });
        vec![tuple(vec![atom("resume"), Term::List(names.collect())])]
    };
    let mut groups: Vec<Vec<Term>> = Vec::new();
    for i in instrs {
        let t = items(i);
        match tag(i) {
            Some("update") => groups.push(vec![tuple(vec![
                atom("load"),
                tuple(vec![t[1].clone(), t[5].clone(), t[6].clone()]),
            ])]),
            Some("load_module") => groups.push(vec![tuple(vec![
                atom("load"),
                tuple(vec![t[1].clone(), t[2].clone(), t[3].clone()]),
            ])]),
            Some("delete_module") => groups.push(vec![
                tuple(vec![
                    atom("remove"),
                    tuple(vec![t[1].clone(), atom("brutal_purge"), atom("brutal_purge")]),
                ]),
                tuple(vec![atom("purge"), Term::List(vec![t[1].clone()])]),
            ]),
            _ => {}
        }
    }
    let load_remove: Vec<Term> = groups.iter().flatten().cloned().collect();
    let rev_load_remove: Vec<Term> = groups.iter().rev().flatten().cloned().collect();
    let mut load_obj = Vec::new();
    for i in load_remove.iter().filter(|i| tag(i) == Some("load")) {
        let m = items(&items(i)[1])[0].as_atom().unwrap_or_default().to_owned();
        let app = appls
            .iter()
            .find(|a| a.modules.contains(&m))
            .ok_or_else(|| RelupError::NoSuchModule(m.clone()))?;
        load_obj.push(tuple(vec![
            atom("load_object_code"),
            tuple(vec![
                atom(&app.name),
                Term::string(&app.vsn),
                Term::List(vec![atom(&m)]),
            ]),
        ]));
    }
    let code_change = |dir: &str, pred: &dyn Fn(&[Term]) -> bool| -> Vec<Term> {
        let mods: Vec<Term> = instrs
            .iter()
            .filter(|i| tag(i) == Some("update"))
            .map(items)
            .filter(|t| pred(t) && tag(&t[4]) == Some("advanced") && items(&t[4]).len() == 2)
            .map(|t| tuple(vec![t[1].clone(), items(&t[4])[1].clone()]))
            .collect();
        if mods.is_empty() {
            vec![]
        } else {
            vec![tuple(vec![atom("code_change"), atom(dir), Term::List(mods)])]
        }
    };
    let after = match mode {
        Mode::Up => [suspend, rev_load_remove, code_change("up", &|_| true), resume].concat(),
        Mode::Dn => [
            suspend,
            code_change("down", &|t| t[2].as_atom() == Some("dynamic")),
            load_remove,
            code_change("down", &|t| t[2].as_atom() == Some("static")),
            resume,
        ]
        .concat(),
    };
    Ok((load_obj, after))
}

/// `merge_load_object_code/1`.
fn merge_load_object_code(before: Vec<Term>) -> Result<Vec<Term>, RelupError> {
    let (found, rest): (Vec<Term>, Vec<Term>) = before.into_iter().partition(|i| tag(i) == Some("load_object_code"));
    let key = |i: &Term| -> (String, String, Vec<Term>) {
        let t = items(&items(i)[1]).to_vec();
        (
            t[0].as_atom().unwrap_or_default().to_owned(),
            t[1].as_string().unwrap_or_default(),
            t[2].as_list().unwrap_or_default().into_owned(),
        )
    };
    let mut out = Vec::new();
    let mut remaining: Vec<Term> = found;
    while !remaining.is_empty() {
        let first = remaining.remove(0);
        let (lib, vsn, mods) = key(&first);
        let mut same = Vec::new();
        let mut other = Vec::new();
        for i in remaining {
            let (l2, v2, _) = key(&i);
            if l2 == lib && v2 == vsn {
                same.push(i);
            } else if l2 == lib {
                return Err(RelupError::ConflictingVersions { lib, v1: vsn, v2 });
            } else {
                other.push(i);
            }
        }
        // foldr(union) over Same, then union(Mods, that).
        let mut ocode0: Vec<Term> = Vec::new();
        for i in same.iter().rev() {
            ocode0 = union(&key(i).2, ocode0);
        }
        let ocode1 = union(&mods, ocode0);
        out.push(tuple(vec![
            atom("load_object_code"),
            tuple(vec![atom(&lib), Term::string(&vsn), Term::List(ocode1)]),
        ]));
        remaining = other;
    }
    out.extend(rest);
    Ok(out)
}

/// `union/2` of systools_rc: the elements of `a` not in `b`, then `b`.
fn union(a: &[Term], b: Vec<Term>) -> Vec<Term> {
    let mut out: Vec<Term> = a.iter().filter(|x| !b.contains(x)).cloned().collect();
    out.extend(b);
    out
}

/// `translate_scripts/4`.
pub(crate) fn translate_scripts(
    mode: Mode,
    scripts: Vec<Vec<Term>>,
    appls: &[RelupApp],
    pre_appls: &[RelupApp],
) -> Result<Vec<Term>, RelupError> {
    // merge_scripts
    let mut before = Vec::new();
    let mut after = Vec::new();
    for s in scripts {
        let (b, a) = split_script(expand(s))?;
        before.extend(b);
        after.extend(a);
    }
    let merged = [before, vec![atom("point_of_no_return")], after].concat();
    check_syntax(&merged)?;
    let (before, after) = split_script(normalize(merged))?;
    let after = translate_independent(after, appls, pre_appls)?;
    // translate_dependent_instrs
    let graph = Graph::new(&after)?;
    let mut nbefore = Vec::new();
    let mut nafter = Vec::new();
    // Each dependent instruction goes with the first of its component to come; the graph
    // holds one instruction per module, so a module done is its instruction done.
    let mut done = std::collections::HashSet::new();
    for i in after {
        if is_dep(&i) {
            let m = dep_module(&i);
            if done.contains(&m) {
                continue;
            }
            let dep_is = graph.dependent_instructions(&m);
            done.extend(dep_is.iter().map(dep_module));
            let (b, a) = dep_to_low(mode, &dep_is, appls)?;
            nbefore.extend(b);
            nafter.extend(a);
        } else {
            nafter.push(i);
        }
    }
    let before = merge_load_object_code([before, nbefore].concat())?;
    // sort_emulator_restart
    let restart_new = atom("restart_new_emulator");
    let restart = atom("restart_emulator");
    let (mut before, mut after) = (before, nafter);
    if after.contains(&restart_new) {
        after.retain(|x| x != &restart_new);
        match mode {
            Mode::Up => before.insert(0, restart_new),
            Mode::Dn => after.push(restart.clone()),
        }
    }
    if after.contains(&restart) {
        after.retain(|x| x != &restart);
        after.push(restart);
    }
    let script = [before, vec![atom("point_of_no_return")], after].concat();
    check_syntax(&script)?;
    Ok(script)
}
