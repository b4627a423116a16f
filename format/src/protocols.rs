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
//! in the relup itself (SPEC.md §8.3): on the way up, right after `point_of_no_return`, the
//! new implementations are loaded and the new release's folder replaces the old one on the
//! code path, every consolidated module that differs loaded from it, before any new code
//! runs; on the way down the same happens once the old code is back and drained, before the
//! deletions (see [`add_swaps`]). The instruction is an
//! `apply` of Elixir's `Code.eval_string/1`, because the folder's absolute path is only known
//! on the node (`code:root_dir()`), and a relup holds literal terms.

use std::collections::{BTreeMap, BTreeSet};

use crate::snapshot::{ModuleSummary, ReleaseSnapshot};
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

/// The module a `{load, {M, _, _}}` or `{remove, {M, _, _}}` instruction addresses, if `i` is one.
fn addressed<'t>(i: &'t Term, what: &str) -> Option<&'t str> {
    let [op, arg] = i.as_tuple()? else { return None };
    (op.as_atom()? == what).then_some(())?;
    arg.as_tuple()?.first()?.as_atom()
}

/// Every module of `release`'s applications, by name.
fn modules(release: &ReleaseSnapshot) -> BTreeMap<&str, &ModuleSummary> {
    release
        .apps
        .values()
        .flat_map(|a| a.beams.values())
        .map(|m| (m.name.as_str(), m))
        .collect()
}

/// One upgrade script with its swap: on the way up (`target` = the new release) the new
/// release's *added* protocol implementations are loaded first (nothing running calls a
/// module it has never seen), then the swap, then the rest, so new code never dispatches to
/// an implementation that is not there yet. On the way down the swap comes once the old
/// code is back: after a drain of the processes still in reloaded code that calls a swapped
/// protocol (they may hold a struct only the newer consolidation knows), and before the
/// deletions (an implementation that goes is not dispatched to any more).
fn with_swap(
    mut script: Vec<Term>,
    swap: Term,
    target: &ReleaseSnapshot,
    current: &ReleaseSnapshot,
    up: bool,
) -> Vec<Term> {
    let after_ponr = script
        .iter()
        .position(|i| i.as_atom() == Some("point_of_no_return"))
        .map_or(0, |p| p + 1);
    let (new, old) = (modules(target), modules(current));
    if up {
        let is_added_impl = |i: &Term| {
            addressed(i, "load").is_some_and(|m| {
                !old.contains_key(m)
                    && new
                        .get(m)
                        .is_some_and(|s| s.behaviours.iter().any(|b| target.consolidated.contains_key(b)))
            })
        };
        let impls: Vec<Term> = script[after_ponr..]
            .iter()
            .filter(|i| is_added_impl(i))
            .cloned()
            .collect();
        let mut rest = script.split_off(after_ponr);
        rest.retain(|i| !is_added_impl(i));
        script.extend(impls);
        script.push(swap);
        script.extend(rest);
        script
    } else {
        let protocols: BTreeSet<&str> = target
            .consolidated
            .keys()
            .chain(current.consolidated.keys())
            .map(String::as_str)
            .collect();
        let callers: Vec<String> = script[after_ponr..]
            .iter()
            .filter_map(|i| addressed(i, "load"))
            .filter(|m| {
                old.get(m)
                    .is_some_and(|s| s.calls.iter().any(|c| protocols.contains(c.as_str())))
            })
            .map(str::to_owned)
            .collect();
        let at = script[after_ponr..]
            .iter()
            .position(|i| addressed(i, "remove").is_some())
            .map_or(script.len(), |p| after_ponr + p);
        let insert: Vec<Term> = crate::appup::drain(callers).into_iter().chain([swap]).collect();
        script.splice(at..at, insert);
        script
    }
}

/// Adds the swaps to a relup made by [`crate::relup::make_relup`] for `to` from `froms`
/// (`with_swap`, below, says where they go).
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
                    let (target, current) = if up { (to, *from) } else { (*from, to) };
                    let Some(instr) = swap(target, current) else {
                        return entry.clone();
                    };
                    let script = with_swap(script.clone(), instr, target, current, up);
                    Term::Tuple(vec![vsn.clone(), descr.clone(), Term::List(script)])
                })
                .collect(),
        )
    };
    parts[1] = edit(&parts[1], true);
    parts[2] = edit(&parts[2], false);
    Term::Tuple(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::test_support::{module, release as snapshot};
    use crate::term::parse_terms;

    fn release(vsn: &str, beams: Vec<ModuleSummary>, protocol: u8) -> ReleaseSnapshot {
        snapshot("shop", vsn, beams, vec![module("Elixir.Chars", protocol, &[], &[])])
    }

    fn script(text: &str) -> Vec<Term> {
        parse_terms("t", &format!("{text}."))
            .unwrap()
            .remove(0)
            .as_list()
            .unwrap()
            .into_owned()
    }

    fn names(script: &[Term]) -> Vec<String> {
        script
            .iter()
            .map(|i| match (addressed(i, "load"), addressed(i, "remove")) {
                (Some(m), _) => format!("load {m}"),
                (_, Some(m)) => format!("remove {m}"),
                _ if i.to_string().contains("eval_string") => "swap".to_owned(),
                _ if i.to_string().contains("erl_eval") => format!(
                    "drain {}",
                    i.to_string()
                        .split("'Modules',")
                        .nth(1)
                        .unwrap()
                        .split(']')
                        .next()
                        .unwrap()
                ),
                _ => i.to_string(),
            })
            .collect()
    }

    #[test]
    fn new_implementations_load_before_the_swap_and_the_swap_back_waits_for_old_callers() {
        // v2 adds Coupon with its Chars implementation; the handler (changed) uses the protocol.
        let v1 = release("1", vec![module("Elixir.Handler", 1, &[], &["Elixir.Chars"])], 1);
        let v2 = release(
            "2",
            vec![
                module("Elixir.Handler", 2, &[], &["Elixir.Chars", "Elixir.Coupon"]),
                module("Elixir.Coupon", 1, &[], &[]),
                module("Elixir.Chars.Elixir.Coupon", 1, &["Elixir.Chars"], &[]),
            ],
            2,
        );
        let up = script(
            "[{load_object_code,{shop,\"2\",['Elixir.Handler']}},point_of_no_return,\
             {load,{'Elixir.Coupon',brutal_purge,brutal_purge}},\
             {load,{'Elixir.Handler',brutal_purge,brutal_purge}},\
             {load,{'Elixir.Chars.Elixir.Coupon',brutal_purge,brutal_purge}}]",
        );
        let up = with_swap(up, swap(&v2, &v1).unwrap(), &v2, &v1, true);
        assert_eq!(
            names(&up)[1..],
            [
                "point_of_no_return",
                "load Elixir.Chars.Elixir.Coupon",
                "swap",
                "load Elixir.Coupon",
                "load Elixir.Handler"
            ]
        );
        let down = script(
            "[{load_object_code,{shop,\"1\",['Elixir.Handler']}},point_of_no_return,\
             {load,{'Elixir.Handler',brutal_purge,brutal_purge}},\
             {remove,{'Elixir.Chars.Elixir.Coupon',brutal_purge,brutal_purge}},{purge,['Elixir.Chars.Elixir.Coupon']},\
             {remove,{'Elixir.Coupon',brutal_purge,brutal_purge}},{purge,['Elixir.Coupon']}]",
        );
        let down = with_swap(down, swap(&v1, &v2).unwrap(), &v1, &v2, false);
        assert_eq!(
            names(&down)[1..5],
            [
                "point_of_no_return",
                "load Elixir.Handler",
                "drain ['Elixir.Handler'",
                "swap"
            ]
        );
        assert_eq!(names(&down)[5], "remove Elixir.Chars.Elixir.Coupon");
        // Without deletions the swap back ends the script.
        let down = script("[point_of_no_return,{load,{'Elixir.Other',brutal_purge,brutal_purge}}]");
        let down = with_swap(down, swap(&v1, &v2).unwrap(), &v1, &v2, false);
        assert_eq!(names(&down), ["point_of_no_return", "load Elixir.Other", "swap"]);
    }
}
