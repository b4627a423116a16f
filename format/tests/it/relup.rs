//! rel's appups and relups against OTP's `systools:make_relup/4` on the fixture releases:
//! the same appups fed to both must give the same relup, as Erlang terms, up and down.

use std::path::Path;
use std::process::Command;

use rel_format::appup::{AppupSource, plan_appups, render};
use rel_format::relup::make_relup;
use rel_format::snapshot::ReleaseSnapshot;
use rel_format::term::{Term, parse_terms};
use rel_testkit::fixtures::Fixture;

fn versions() -> Vec<String> {
    Fixture::demo().versions()
}

fn snapshot(v: &str) -> ReleaseSnapshot {
    ReleaseSnapshot::from_tar(std::fs::File::open(Fixture::demo().tarball(v)).unwrap(), None).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Builds the relup with systools, with rel's appups placed in the new release's ebin.
fn systools_relup(to_index: usize, from_indices: &[usize], appups: &[(String, String, String)]) -> Term {
    let tmp = tempfile::tempdir().unwrap();
    let build = Fixture::demo().dir.join("build");
    let mut paths = Vec::new();
    for i in 0..versions().len() {
        let dir = tmp.path().join(format!("v{}", i + 1));
        copy_dir(&build.join(format!("v{}", i + 1)), &dir);
        paths.push(format!("\"{}/lib/*/ebin\"", dir.display()));
    }
    let top = tmp.path().join(format!("v{}", to_index + 1));
    for (app, vsn, text) in appups {
        std::fs::write(top.join(format!("lib/{app}-{vsn}/ebin/{app}.appup")), text).unwrap();
    }
    let rel = |i: usize| format!("\"{}/demo\"", tmp.path().join(format!("v{}", i + 1)).display());
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

fn compare(to_index: usize, from_indices: &[usize]) -> Term {
    let vs = versions();
    let to = snapshot(&vs[to_index]);
    let froms: Vec<ReleaseSnapshot> = from_indices.iter().map(|&i| snapshot(&vs[i])).collect();
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
    let theirs = systools_relup(to_index, from_indices, &appups);
    assert!(
        ours.erl_eq(&theirs),
        "relups differ for {from_indices:?} -> {to_index}\nrel:\n{ours}\nsystools:\n{theirs}"
    );
    ours
}

#[test]
fn consecutive_upgrades_match_systools() {
    let relup = compare(1, &[0]);
    let text = relup.to_string();
    // v1 -> v2: the gen_server's state changes shape, a module is added.
    assert!(text.contains("{code_change,up,[{demo_server,[]}]}"), "{text}");
    assert!(text.contains("{code_change,down,[{demo_server,[]}]}"), "{text}");
    let relup = compare(2, &[1]);
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
    compare(2, &[0]);
    compare(2, &[0, 1]);
}
