//! Elixir's consolidated protocols across a hot upgrade.
//!
//! `mix release` consolidates every protocol into `releases/<vsn>/consolidated/`, and the boot
//! script puts that folder first on the code path; the unconsolidated protocol modules stay
//! in the applications' `ebin`. `release_handler` only swaps application library paths, so
//! after a plain relup the node keeps the *old* consolidation on its path and in memory: a
//! struct whose implementation is new then raises `Protocol.UndefinedError`. Loading the
//! protocol module from `ebin` instead (as an appup `load_module` would) installs the
//! unconsolidated version, which is not what a boot runs.
//!
//! So rel leaves protocol modules out of the applications' appups and swaps consolidations
//! in the relup itself (SPEC.md §8.3): on the way up, right after `point_of_no_return` and
//! before any new code runs, the new release's folder replaces the old one on the code path
//! and every consolidated module that differs is loaded from it (a new struct's
//! implementation is only called by new code, loaded after); on the way down the same
//! happens at the end of the script, once the old code is back. The instruction is an
//! `apply` of Elixir's `Code.eval_string/1`, because the folder's absolute path is only known
//! on the node (`code:root_dir()`), and a relup holds literal terms.

use std::collections::BTreeSet;

use crate::snapshot::ReleaseSnapshot;
use crate::term::Term;

/// The modules consolidated in either release: they belong to the swap, not to appups.
pub fn consolidated_modules(to: &ReleaseSnapshot, froms: &[&ReleaseSnapshot]) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = to.consolidated.keys().cloned().collect();
    for f in froms {
        all.extend(f.consolidated.keys().cloned());
    }
    all
}

/// The instruction that makes `target`'s consolidated protocols the node's: its folder on the
/// code path instead of any other `consolidated` folder, its modules that differ from
/// `current`'s loaded, and those it lacks deleted. `None` when neither release consolidates.
pub fn swap(target: &ReleaseSnapshot, current: &ReleaseSnapshot) -> Option<Term> {
    if target.consolidated.is_empty() && current.consolidated.is_empty() {
        return None;
    }
    let load: Vec<&str> = target
        .consolidated
        .values()
        .filter(|m| {
            current
                .consolidated
                .get(&m.name)
                .is_none_or(|c| c.identity != m.identity)
        })
        .map(|m| m.name.as_str())
        .collect();
    let delete: Vec<&str> = current
        .consolidated
        .keys()
        .filter(|k| !target.consolidated.contains_key(*k))
        .map(String::as_str)
        .collect();
    let list = |mods: &[&str]| {
        mods.iter()
            .map(|m| format!(":\"{}\"", m.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let vsn = target.spec.version.as_str().replace('\\', "\\\\").replace('"', "\\\"");
    let code = format!(
        "dir = :filename.join([:code.root_dir(), ~c\"releases\", ~c\"{vsn}\", ~c\"consolidated\"]); \
         for p <- :code.get_path(), :filename.basename(p) == ~c\"consolidated\", do: :code.del_path(p); \
         true = :code.add_patha(dir); \
         for m <- [{}] do :code.purge(m); {{:module, ^m}} = :code.load_abs(:filename.join(dir, Atom.to_charlist(m))) end; \
         for m <- [{}] do :code.purge(m); :code.delete(m) end",
        list(&load),
        list(&delete)
    );
    Some(Term::Tuple(vec![
        Term::atom("apply"),
        Term::Tuple(vec![
            Term::atom("Elixir.Code"),
            Term::atom("eval_string"),
            Term::List(vec![Term::Binary(code.into_bytes())]),
        ]),
    ]))
}

/// Adds the swaps to a relup made by [`crate::relup::make_relup`] for `to` from `froms`: in
/// each upgrade script right after `point_of_no_return`, in each downgrade script at the end.
pub fn add_swaps(relup: Term, to: &ReleaseSnapshot, froms: &[&ReleaseSnapshot]) -> Term {
    let Term::Tuple(mut parts) = relup else {
        return relup;
    };
    if parts.len() != 3 {
        return Term::Tuple(parts);
    }
    let version_of = |entry: &Term| entry.as_tuple().and_then(|t| t.first()).and_then(Term::as_string);
    let edit = |list: &Term, up: bool| -> Term {
        let entries = list.as_list().unwrap_or_default();
        Term::List(
            entries
                .iter()
                .map(|entry| {
                    let from = froms
                        .iter()
                        .find(|f| version_of(entry).as_deref() == Some(f.spec.version.as_str()));
                    let (Some(from), Some([vsn, descr, Term::List(script)])) = (from, entry.as_tuple()) else {
                        return entry.clone();
                    };
                    let instr = if up { swap(to, from) } else { swap(from, to) };
                    let Some(instr) = instr else {
                        return entry.clone();
                    };
                    let mut script = script.clone();
                    if up {
                        let at = script
                            .iter()
                            .position(|i| i.as_atom() == Some("point_of_no_return"))
                            .map_or(0, |p| p + 1);
                        script.insert(at, instr);
                    } else {
                        script.push(instr);
                    }
                    Term::Tuple(vec![vsn.clone(), descr.clone(), Term::List(script)])
                })
                .collect(),
        )
    };
    parts[1] = edit(&parts[1], true);
    parts[2] = edit(&parts[2], false);
    Term::Tuple(parts)
}
