//! rel's appups and relups against OTP's `systools:make_relup/4` on the fixture releases:
//! the same appups fed to both must give the same relup, as Erlang terms, up and down (for
//! shop, up to the order of loads where several dependency orders are valid).

use std::path::Path;
use std::process::Command;

use rel_format::appup::{AppupSource, plan_appups, render};
use rel_format::relup::make_relup;
use rel_format::snapshot::ReleaseSnapshot;
use rel_format::term::{Term, parse_terms};
use rel_testkit::fixtures::Fixture;

fn snapshot(fixture: &Fixture, v: &str) -> ReleaseSnapshot {
    ReleaseSnapshot::from_tar(std::fs::File::open(fixture.tarball(v)).unwrap(), None).unwrap()
}

/// Copies what `systools:make_relup/4` reads of a release: its `.rel` files, and the `.app`
/// and `.appup` files of its applications (not the beams, nor mix's ERTS).
fn copy_release_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_dir() {
            copy_release_files(&e.path(), &target);
        } else if name.ends_with(".rel") || name.ends_with(".app") || name.ends_with(".appup") {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The release file of version `v` in `dir`, without its `.rel` extension, as systools
/// names releases: `demo.rel` at the top (systools), `releases/<v>/<name>.rel` (mix, relx).
fn rel_name(dir: &Path, name: &str, v: &str) -> String {
    let top = dir.join(name);
    if top.with_extension("rel").exists() {
        return top.display().to_string();
    }
    dir.join("releases").join(v).join(name).display().to_string()
}

/// Builds the relup with systools, with rel's appups placed in the new release's ebin.
fn systools_relup(
    fixture: &Fixture,
    to_index: usize,
    from_indices: &[usize],
    appups: &[(String, String, String)],
) -> Term {
    let tmp = tempfile::tempdir().unwrap();
    let build = fixture.dir.join("build");
    let versions = fixture.versions();
    let mut paths = Vec::new();
    for i in 0..versions.len() {
        let dir = tmp.path().join(format!("v{}", i + 1));
        copy_release_files(&build.join(format!("v{}", i + 1)), &dir);
        paths.push(format!("\"{}/lib/*/ebin\"", dir.display()));
    }
    let top = tmp.path().join(format!("v{}", to_index + 1));
    for (app, vsn, text) in appups {
        std::fs::write(top.join(format!("lib/{app}-{vsn}/ebin/{app}.appup")), text).unwrap();
    }
    let rel = |i: usize| {
        let dir = tmp.path().join(format!("v{}", i + 1));
        format!("\"{}\"", rel_name(&dir, fixture.name, &versions[i]))
    };
    let froms: Vec<String> = from_indices.iter().map(|&i| rel(i)).collect();
    let script = format!(
        "R = systools:make_relup({}, [{}], [{}], [{{path, [{}]}}, {{outdir, \"{}\"}}, silent]), \
         case R of {{ok, _, _, _}} -> halt(0); E -> io:format(\"~p~n\", [E]), halt(1) end.",
        rel(to_index),
        froms.join(","),
        froms.join(","),
        paths.join(","),
        tmp.path().display()
    );
    let out = Command::new("erl")
        .args(["-noshell", "-noinput", "-eval", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systools failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(tmp.path().join("relup")).unwrap();
    parse_terms("relup", &text).unwrap().remove(0)
}

/// How closely rel's relup must match systools'.
#[derive(Clone, Copy, PartialEq)]
enum Match {
    /// The same term.
    Exact,
    /// The same instructions in the same order, except that loads and removals may be ordered
    /// differently between the same two other instructions: where several dependency orders
    /// are valid, systools follows its hash tables and rel the appup (`relup` module docs).
    UpToLoadOrder,
}

/// Whether two relups are the same up to the order of `load`/`remove`/`purge` runs (and of
/// the modules `load_object_code` lists, which follows the same order).
fn same_up_to_load_order(a: &Term, b: &Term) -> bool {
    fn runs(instructions: &[Term]) -> Vec<(Option<String>, Vec<String>)> {
        // Each other instruction, with the sorted loads and removals just before it.
        let mut out = Vec::new();
        let mut run = Vec::new();
        for i in instructions {
            let text = match i.as_tuple() {
                Some([tag, Term::Tuple(what)]) if tag.as_atom() == Some("load_object_code") && what.len() == 3 => {
                    let mut modules: Vec<String> = what[2].as_list().unwrap().iter().map(ToString::to_string).collect();
                    modules.sort();
                    format!("{{load_object_code,{},{},{modules:?}}}", what[0], what[1])
                }
                _ => i.to_string(),
            };
            if ["{load,", "{remove,", "{purge,"].iter().any(|p| text.starts_with(p)) {
                run.push(text);
            } else {
                run.sort();
                out.push((Some(text), std::mem::take(&mut run)));
            }
        }
        run.sort();
        out.push((None, run));
        out
    }
    let clauses = |t: &Term| -> Vec<Vec<Term>> {
        let t = t.as_tuple().unwrap();
        t[1..]
            .iter()
            .flat_map(|list| list.as_list().unwrap().into_owned())
            .map(|c| c.as_tuple().unwrap()[2].as_list().unwrap().into_owned())
            .collect()
    };
    let (x, y) = (clauses(a), clauses(b));
    x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| runs(p) == runs(q))
}

fn compare(fixture: &Fixture, to_index: usize, from_indices: &[usize]) -> Term {
    compare_as(fixture, to_index, from_indices, Match::Exact)
}

fn compare_as(fixture: &Fixture, to_index: usize, from_indices: &[usize], how: Match) -> Term {
    let vs = fixture.versions();
    let to = snapshot(fixture, &vs[to_index]);
    let froms: Vec<ReleaseSnapshot> = from_indices.iter().map(|&i| snapshot(fixture, &vs[i])).collect();
    let from_refs: Vec<&ReleaseSnapshot> = froms.iter().collect();
    let (plans, warnings) = plan_appups(&from_refs, &to, &|_| None, &|_| None);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(
        plans
            .iter()
            .all(|p| p.source == AppupSource::Generated && p.warnings.is_empty()),
        "{plans:?}"
    );
    let appups: Vec<(String, String, String)> = plans
        .iter()
        .map(|p| (p.app.clone(), p.to_vsn.clone(), render(p)))
        .collect();
    // What rel writes parses back to what it generated.
    for p in &plans {
        assert_eq!(parse_terms("appup", &render(p)).unwrap()[0], p.appup);
    }
    let base: Vec<_> = froms.iter().map(ReleaseSnapshot::relup_release).collect();
    let ours = make_relup(&to.relup_release(), &base, &base, &|app| {
        Ok(plans
            .iter()
            .find(|p| p.app == app.name)
            .expect("an appup for every changed app")
            .appup
            .clone())
    })
    .unwrap();
    let theirs = systools_relup(fixture, to_index, from_indices, &appups);
    assert!(
        ours.erl_eq(&theirs) || (how == Match::UpToLoadOrder && same_up_to_load_order(&ours, &theirs)),
        "relups differ for {} {from_indices:?} -> {to_index}\nrel:\n{ours}\nsystools:\n{theirs}",
        fixture.name
    );
    ours
}

#[test]
fn consecutive_upgrades_match_systools() {
    let relup = compare(&Fixture::demo(), 1, &[0]);
    let text = relup.to_string();
    // v1 -> v2: the gen_server's state changes shape, a module is added.
    assert!(text.contains("{code_change,up,[{demo_server,[]}]}"), "{text}");
    assert!(text.contains("{code_change,down,[{demo_server,[]}]}"), "{text}");
    let relup = compare(&Fixture::demo(), 2, &[1]);
    let text = relup.to_string();
    // v2 -> v3: a new application, a removed module, a supervisor gaining a child.
    assert!(
        text.contains("{apply,{application,start,[demo_extra,permanent]}}"),
        "{text}"
    );
    assert!(
        text.contains("{apply,{supervisor,restart_child,[demo_sup,demo_worker]}}"),
        "{text}"
    );
    assert!(text.contains("{remove,{demo_old,brutal_purge,brutal_purge}}"), "{text}");
}

#[test]
fn skip_version_and_multi_from_relups_match_systools() {
    compare(&Fixture::demo(), 2, &[0]);
    compare(&Fixture::demo(), 2, &[0, 1]);
}

/// The Elixir and rebar3 releases, whose appups start and stop supervisor children
/// (`'Elixir.Supervisor':start_child` for the inline top supervisor of shop).
#[test]
fn mix_and_rebar3_relups_match_systools() {
    let shop = Fixture::shop();
    for (to, from) in [(1, 0), (2, 1), (3, 2), (2, 0)] {
        let text = compare_as(&shop, to, &[from], Match::UpToLoadOrder).to_string();
        assert!(text.contains("{apply,{'Elixir.Supervisor',start_child,"), "{text}");
    }
    let ledger = Fixture::ledger();
    for (to, from) in [(1, 0), (2, 1)] {
        let text = compare(&ledger, to, &[from]).to_string();
        assert!(text.contains("restart_child,[ledger_sup,"), "{text}");
    }
}
