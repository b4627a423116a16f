//! Proof on live nodes: rel's generated upgrades applied through `release_handler` on real
//! OTP 25, in embedded mode, for each consecutive fixture pair and one skip-version pair,
//! up and back down. And a deliberately wrong appup makes the same checks fail.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::{tarball, versions};
use rel_format::beam::Beam;
use rel_format::term::Term;
use rel_testkit::otp::{Node, Target};

/// md5 of every module of the release's own applications, as rel computes it.
fn md5s(v: &str) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(tarball(v)).unwrap()));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.starts_with("lib/demo") && path.ends_with(".beam") {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            let beam = Beam::parse(&path, bytes).unwrap();
            out.insert(beam.module().to_owned(), beam.md5().to_vec());
        }
    }
    assert!(
        out.len() >= 5,
        "every fixture version has at least five demo modules: {out:?}"
    );
    out
}

/// Builds the upgrade with the real `rel` binary and places it where unpack_release looks.
fn build_upgrade(root: &Path, from: &str, to: &str, appup_dir: Option<&Path>) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rel"));
    cmd.args(["build-upgrade", "demo", "--quiet", "--from"])
        .arg(tarball(from))
        .arg("--to")
        .arg(tarball(to));
    cmd.arg("-o").arg(root.join("releases/demo.tar.gz"));
    if let Some(d) = appup_dir {
        cmd.arg("--appup-dir").arg(d);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "rel build-upgrade: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check(ok: bool, what: impl Into<String>) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.into()) }
}

/// What a node looked like before the upgrade.
struct Before {
    os_pid: u32,
    server: String,
    count: i128,
}

fn observe(node: &mut Node) -> Before {
    for _ in 0..3 {
        node.eval("demo_server:bump()");
    }
    let count = match node.term("demo_server:count()") {
        Term::Integer(n) => n,
        other => panic!("count: {other}"),
    };
    Before {
        os_pid: node.os_pid(),
        server: node.eval("erlang:pid_to_list(whereis(demo_server))"),
        count,
    }
}

/// The checks that a node runs `vsn` after a live upgrade or downgrade from `before`.
fn runs(node: &mut Node, vsn: &str, before: &mut Before) -> Result<(), String> {
    check(
        node.os_pid() == before.os_pid,
        "the OS process changed: the node was restarted",
    )?;
    let server = node.eval("erlang:pid_to_list(whereis(demo_server))");
    check(
        server == before.server,
        format!("demo_server was restarted: {} became {server}", before.server),
    )?;
    // v1 keeps {state, Count}; v2 and v3 keep #{count := Count, history := [...]}.
    let state = node.term("sys:get_state(demo_server)");
    let v1_shape = vsn == versions()[0];
    let converted = match &state {
        Term::Tuple(t) if v1_shape => {
            t.len() == 2 && t[0] == Term::atom("state") && t[1] == Term::Integer(before.count)
        }
        Term::Map(pairs) if !v1_shape => {
            pairs
                .iter()
                .any(|(k, v)| *k == Term::atom("count") && *v == Term::Integer(before.count))
                && pairs
                    .iter()
                    .any(|(k, v)| *k == Term::atom("history") && matches!(v, Term::List(_)))
        }
        _ => false,
    };
    check(
        converted,
        format!("demo_server's state was not converted for {vsn}: {state}"),
    )?;
    let reply = node.eval("lists:flatten(demo_server:bump())");
    before.count += 1;
    let suffix = if v1_shape { "\"" } else { " (v2)\"" };
    check(
        reply == format!("\"count={}{suffix}", before.count),
        format!("demo_server does not answer with {vsn}'s code: {reply}"),
    )?;

    // Every module of the release is loaded with that release's md5.
    let expected = md5s(vsn);
    for (module, md5) in &expected {
        let loaded = node.term(&format!(
            "code:is_loaded({module}) =/= false andalso {module}:module_info(md5)"
        ));
        check(
            loaded == Term::Binary(md5.clone()),
            format!("{module} is not loaded with the md5 of {vsn}: {loaded}"),
        )?;
    }
    // Modules of other versions are gone.
    for module in md5s(&versions()[0]).keys().chain(md5s(&versions()[2]).keys()) {
        if !expected.contains_key(module) {
            let loaded = node.eval(&format!("code:is_loaded({module})"));
            check(
                loaded == "false",
                format!("{module} is still loaded on {vsn}: {loaded}"),
            )?;
        }
    }
    // Applications and supervisor children.
    let extra = node.eval("lists:keymember(demo_extra, 1, application:which_applications())");
    let has_extra = vsn == versions()[2];
    check(
        extra == has_extra.to_string(),
        format!("demo_extra running: {extra}, expected {has_extra} on {vsn}"),
    )?;
    let worker = node.eval("lists:keymember(demo_worker, 1, supervisor:which_children(demo_sup))");
    check(
        worker == has_extra.to_string(),
        format!("demo_worker child: {worker}, expected {has_extra} on {vsn}"),
    )?;
    if has_extra {
        check(node.eval("demo_worker:ping()") == "pong", "demo_worker does not answer")?;
    }
    // A release just installed is `current`; without one, the `permanent` release runs.
    let current = node.term(
        "begin L = release_handler:which_releases(), case [V || {_, V, _, current} <- L] of [C] -> C; [] -> hd([V || {_, V, _, permanent} <- L]) end end",
    );
    check(
        current.as_string().as_deref() == Some(vsn),
        format!("release_handler's current release is {current}, not {vsn}"),
    )?;
    Ok(())
}

fn make_permanent(node: &mut Node, root: &Path, erts: &str, vsn: &str) -> Result<(), String> {
    let r = node.eval(&format!("release_handler:make_permanent(\"{vsn}\")"));
    check(r == "ok", format!("make_permanent: {r}"))?;
    let data = std::fs::read_to_string(root.join("releases/start_erl.data")).unwrap();
    check(
        data.trim() == format!("{erts} {vsn}"),
        format!("start_erl.data says {data:?}"),
    )
}

/// Upgrades a live node from `from` to `to` with rel's artifact, then downgrades it back.
fn upgrade_and_back(from: &str, to: &str, appup_dir: Option<&Path>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("target");
    let target = Target::install(&root, &tarball(from), "demo", from);
    let mut node = target.start(from);
    let mut before = observe(&mut node);
    runs(&mut node, from, &mut before)?;

    build_upgrade(&root, from, to, appup_dir);
    let unpacked = node.eval("release_handler:unpack_release(\"demo\")");
    check(
        unpacked == format!("{{ok,\"{to}\"}}"),
        format!("unpack_release: {unpacked}"),
    )?;
    let checked = node.eval(&format!("release_handler:check_install_release(\"{to}\")"));
    check(
        checked.starts_with(&format!("{{ok,\"{from}\"")),
        format!("check_install_release: {checked}"),
    )?;
    let installed = node.eval(&format!("release_handler:install_release(\"{to}\")"));
    check(
        installed.starts_with(&format!("{{ok,\"{from}\"")),
        format!("install_release: {installed}"),
    )?;
    runs(&mut node, to, &mut before)?;
    make_permanent(&mut node, &root, &target.erts, to)?;

    // And back down, through the same relup's downgrade instructions.
    let down = node.eval(&format!("release_handler:install_release(\"{from}\")"));
    check(
        down.starts_with(&format!("{{ok,\"{from}\"")),
        format!("downgrade install_release: {down}"),
    )?;
    runs(&mut node, from, &mut before)?;
    make_permanent(&mut node, &root, &target.erts, from)?;
    Ok(())
}

#[test]
fn v1_to_v2_and_back() {
    let vs = versions();
    upgrade_and_back(&vs[0], &vs[1], None).unwrap();
}

#[test]
fn v2_to_v3_and_back() {
    let vs = versions();
    upgrade_and_back(&vs[1], &vs[2], None).unwrap();
}

#[test]
fn v1_to_v3_skipping_v2_and_back() {
    let vs = versions();
    upgrade_and_back(&vs[0], &vs[2], None).unwrap();
}

#[test]
fn a_wrong_appup_fails_the_checks() {
    // load_module where the gen_server needs code_change: the state keeps its old shape.
    let vs = versions();
    let dir = tempfile::tempdir().unwrap();
    let appup = format!(
        "{{\"{to}\", [{{\"{from}\", [{{add_module, demo_new}}, {{load_module, demo_lib}}, {{load_module, demo_server}}]}}], [{{\"{from}\", [{{load_module, demo_server}}, {{load_module, demo_lib}}, {{delete_module, demo_new}}]}}]}}.\n",
        to = vs[1],
        from = vs[0]
    );
    std::fs::write(dir.path().join("demo.appup"), appup).unwrap();
    let err = upgrade_and_back(&vs[0], &vs[1], Some(dir.path())).unwrap_err();
    assert!(err.contains("demo_server's state was not converted"), "{err}");
}

/// The drain generated appups run before deleting modules (`rel_format::appup::DRAIN_*`): its
/// abstract format is what OTP parses its source to, and on a real node it waits for a
/// process in old code to finish, and gives up at its deadline on one that does not.
#[test]
fn the_drain_is_what_its_source_says_and_waits_for_old_code() {
    use rel_format::appup::{DRAIN_EXPRS, DRAIN_SOURCE};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("source"), DRAIN_SOURCE).unwrap();
    std::fs::write(dir.path().join("exprs"), format!("{DRAIN_EXPRS}.\n")).unwrap();
    std::fs::write(
        dir.path().join("drainee.erl"),
        "-module(drainee).\n-export([pause/1]).\npause(Ms) -> receive after Ms -> done end.\n",
    )
    .unwrap();
    let script = r#"
        {ok, Src} = file:read_file("source"),
        {ok, Toks, _} = erl_scan:string(binary_to_list(Src)),
        {ok, Parsed} = erl_parse:parse_exprs(Toks),
        {ok, [Exprs]} = file:consult("exprs"),
        Same = Parsed =:= Exprs,
        {ok, drainee, Bin} = compile:file("drainee", [binary]),
        {module, drainee} = code:load_binary(drainee, "drainee.beam", Bin),
        Short = spawn(drainee, pause, [300]),
        Stuck = spawn(drainee, pause, [60000]),
        timer:sleep(50),
        {module, drainee} = code:load_binary(drainee, "drainee.beam", Bin),
        Drain = fun(Ms) -> {value, V, _} = erl_eval:exprs(Exprs, [{'Modules', [drainee]}, {'Ms', Ms}]), V end,
        %% Waits past the short pause (300 ms), gives up on the stuck one after 1 s.
        Result = Drain(1000),
        io:format("~p ~p ~p ~p~n", [Same, Result, is_process_alive(Short), is_process_alive(Stuck)]),
        halt().
    "#;
    let out = std::process::Command::new("erl")
        .args(["-noshell", "-eval", script])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "true ok false true",
        "parsed as DRAIN_EXPRS, drained, short gone, stuck outlived the deadline: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
