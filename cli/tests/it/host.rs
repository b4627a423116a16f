//! Hosts: `rel install`, `rel upgrade` and `rel rollback` against a real registry and live
//! OTP nodes on 127.0.0.1.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{Home, Registry, tarball, versions};
use rel_testkit::otp::{Node, Target};

/// A registry with the three fixture releases and, unless told otherwise, the upgrades
/// v1 -> v2 and v2 -> v3 built by `rel build-upgrade` from the registry and pushed.
fn world(upgrades: bool) -> (Home, Registry) {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    for v in versions() {
        home.rel(Some(&reg))
            .arg("push")
            .arg(tarball(&v))
            .arg("--quiet")
            .assert()
            .success();
    }
    if upgrades {
        for pair in versions().windows(2) {
            push_upgrade(&home, &reg, &pair[0], &pair[1], &[]);
        }
    }
    (home, reg)
}

/// Builds the upgrade `from` → `to` with `rel build-upgrade` and pushes it.
fn push_upgrade(home: &Home, reg: &Registry, from: &str, to: &str, extra: &[&std::ffi::OsStr]) {
    home.rel(Some(reg))
        .args(["build-upgrade", "demo", "--from", from, "--to", to, "--push", "--quiet"])
        .args(extra)
        .assert()
        .success();
}

/// Installs `vsn` cold with `rel install`, boots it, and writes the host config that lets rel
/// reach the node through the test agent.
fn install_and_boot(home: &Home, reg: &Registry, vsn: &str, hooks: &str) -> (PathBuf, Node) {
    let root = home.path("host/demo");
    fs::create_dir_all(home.path("host")).unwrap();
    fs::write(
        home.path("host/sys.config"),
        "[{demo, [{greeting, \"from the host\"}]}].\n",
    )
    .unwrap();
    let out = home
        .rel(Some(reg))
        .args(["install", "demo", "--version", vsn, "--root"])
        .arg(&root)
        .arg("--link-config")
        .arg(home.path("host/sys.config"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rel install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let node = Target::open(&root).start(vsn);
    let script = home.path("host/agent-eval.sh");
    fs::write(&script, "#!/usr/bin/env bash\nexec 3<>/dev/tcp/127.0.0.1/$1\nprintf '%s.\\n' \"$2\" >&3\nIFS= read -r line <&3\nprintf '%s\\n' \"$line\"\n").unwrap();
    fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::write(
        root.join("rel-host.toml"),
        format!(
            "[node]\neval = [\"{}\", \"{}\", \"{{expr}}\"]\n{hooks}",
            script.display(),
            node.port
        ),
    )
    .unwrap();
    (root, node)
}

fn running(node: &mut Node) -> String {
    node.term("begin L = release_handler:which_releases(), case [V || {_, V, _, current} <- L] of [C] -> C; [] -> hd([V || {_, V, _, permanent} <- L]) end end")
        .as_string()
        .unwrap()
}

/// The version `releases/start_erl.data` boots.
fn boots(root: &Path) -> String {
    let data = fs::read_to_string(root.join("releases/start_erl.data")).unwrap();
    data.split_whitespace().nth(1).unwrap().to_owned()
}

fn rel_rollback(home: &Home, reg: &Registry, root: &Path) -> std::process::Output {
    home.rel(Some(reg))
        .args(["rollback", "demo", "--root"])
        .arg(root)
        .output()
        .unwrap()
}

fn rel_upgrade(home: &Home, reg: &Registry, root: &Path, args: &[&str]) -> std::process::Output {
    home.rel(Some(reg))
        .args(["upgrade", "demo", "--root"])
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cold_install_then_a_two_step_live_upgrade_and_a_rollback() {
    let (home, reg) = world(true);
    let vs = versions();
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], "");
    // The host's configuration, not the artifact's, is in effect.
    assert_eq!(
        node.eval("application:get_env(demo, greeting)"),
        "{ok,\"from the host\"}"
    );
    // The release's own config is kept beside the merged one.
    let shipped = fs::read_to_string(root.join(format!("releases/{}/sys.config.shipped", vs[0]))).unwrap();
    assert!(!shipped.contains("from the host"), "{shipped}");
    for _ in 0..3 {
        node.eval("demo_server:bump()");
    }
    let pid = node.os_pid();

    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[2]]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("step 1/2") && stderr.contains("step 2/2"), "{stderr}");
    // With no pre-step hook, the second step was fetched while the node installed the first.
    let second = stderr.lines().find(|l| l.contains("step 2/2")).unwrap();
    assert!(second.contains("fetch ahead"), "{stderr}");
    assert!(
        !stderr
            .lines()
            .find(|l| l.contains("step 1/2"))
            .unwrap()
            .contains("ahead"),
        "{stderr}"
    );
    assert_eq!(node.os_pid(), pid, "the node was restarted");
    assert_eq!(running(&mut node), vs[2]);
    assert_eq!(
        node.eval("maps:get(count, sys:get_state(demo_server))"),
        "3",
        "state lost"
    );
    assert_eq!(
        node.eval("lists:keymember(demo_extra, 1, application:which_applications())"),
        "true"
    );
    // The host's value survived both steps, live; the new release's own keys arrived.
    assert_eq!(
        node.eval("application:get_env(demo, greeting)"),
        "{ok,\"from the host\"}",
        "the upgrade put the artifact's sys.config in force"
    );
    assert_eq!(
        fs::read_to_string(root.join("releases/start_erl.data"))
            .unwrap()
            .split_whitespace()
            .nth(1),
        Some(vs[2].as_str())
    );
    assert!(!root.join("releases/demo.tar.gz").exists());
    // What the host runs, as `rel status` tells it.
    let status = home.json(&reg, &["status", "demo", "--root", root.to_str().unwrap()]);
    assert_eq!(
        (status["node_up"].as_bool(), status["running"].as_str()),
        (Some(true), Some(vs[2].as_str()))
    );
    assert_eq!(status["boots"], vs[2].as_str());
    assert_eq!(status["last"]["op"], "upgrade");
    assert_eq!(
        (status["last"]["from"].as_str(), status["last"]["result"].as_str()),
        (Some(vs[1].as_str()), Some("permanent"))
    );
    let statuses: Vec<&str> = status["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "permanent").count(), 1, "{status}");
    // Asked for what it runs: nothing to do, said in the same shape as an upgrade.
    let same = home.json(
        &reg,
        &["upgrade", "demo", "--to", &vs[2], "--root", root.to_str().unwrap()],
    );
    assert_eq!(
        (
            same["from"].as_str(),
            same["to"].as_str(),
            same["steps"].as_array().map(Vec::len)
        ),
        (Some(vs[2].as_str()), Some(vs[2].as_str()), Some(0))
    );

    // Back to the previous permanent release, live.
    let out = rel_rollback(&home, &reg, &root);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(running(&mut node), vs[1]);
    assert_eq!(node.os_pid(), pid);
    assert_eq!(
        node.eval("lists:keymember(demo_extra, 1, application:which_applications())"),
        "false"
    );
    // And again: v1 is older but v2's relup (from the v1 -> v2 upgrade) has its downgrade.
    let out = rel_rollback(&home, &reg, &root);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(running(&mut node), vs[0]);
    assert_eq!(node.eval("sys:get_state(demo_server)"), "{state,3}");
    assert_eq!(
        node.eval("application:get_env(demo, greeting)"),
        "{ok,\"from the host\"}"
    );
}

#[test]
fn channel_upgrades_refuse_a_replayed_pointer() {
    let (home, reg) = world(true);
    let vs = versions();
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], "");
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[0], "--channel", "production", "--quiet"])
        .assert()
        .success();
    let old_pointer = fs::read(reg.store.join("channels/demo/production.json")).unwrap();
    home.rel(Some(&reg))
        .args(["promote", "demo", &vs[1], "--channel", "production", "--quiet"])
        .assert()
        .success();
    let out = rel_upgrade(&home, &reg, &root, &["--channel", "production"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(running(&mut node), vs[1]);

    fs::write(reg.store.join("channels/demo/production.json"), old_pointer).unwrap();
    let out = rel_upgrade(&home, &reg, &root, &["--channel", "production"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("older than 2 already accepted"), "{stderr}");
    assert_eq!(running(&mut node), vs[1]);
}

#[test]
fn a_failed_upgrade_leaves_the_node_on_its_version_and_a_corrected_one_succeeds() {
    let (home, reg) = world(false);
    let vs = versions();
    // A wrong appup: a pre-flight call that fails before the point of no return.
    let appups = home.path("bad-appups");
    fs::create_dir_all(&appups).unwrap();
    fs::write(
        appups.join("demo.extra"),
        "{up_before, [{apply, {demo_lib, no_such_function, []}}, point_of_no_return]}.\n",
    )
    .unwrap();
    push_upgrade(
        &home,
        &reg,
        &vs[0],
        &vs[1],
        &["--appup-dir".as_ref(), appups.as_os_str()],
    );
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], "");
    node.eval("demo_server:bump()");
    let pid = node.os_pid();

    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[1]]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("the node stays on {}", vs[0])), "{stderr}");
    assert_eq!(node.os_pid(), pid);
    assert_eq!(running(&mut node), vs[0]);
    assert_eq!(
        node.eval("demo_server:count()"),
        "1",
        "the node does not answer as before"
    );
    // Nothing half-done is left: the retry can unpack again.
    assert!(
        !node.eval("release_handler:which_releases()").contains(&vs[1]),
        "{vs:?}"
    );

    // The bad upgrade is yanked and replaced by a corrected one; the retry works live.
    home.rel(Some(&reg))
        .args(["yank", "demo", &vs[1], "--upgrade-from", &vs[0], "--quiet"])
        .assert()
        .success();
    push_upgrade(&home, &reg, &vs[0], &vs[1], &[]);
    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[1]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(node.os_pid(), pid);
    assert_eq!(running(&mut node), vs[1]);
    assert_eq!(node.eval("maps:get(count, sys:get_state(demo_server))"), "1");
}

#[test]
fn dry_run_changes_nothing_and_hooks_run_around_each_step() {
    let (home, reg) = world(true);
    let vs = versions();
    let log = home.path("host/hooks.log");
    let hooks = format!(
        "[hooks]\npre_step = [[\"sh\", \"-c\", \"echo pre $REL_STEP/$REL_STEPS $REL_FROM $REL_TO >> {0}\"]]\npost_step = [[\"sh\", \"-c\", \"echo post $REL_STEP/$REL_STEPS $REL_TO >> {0}\"]]\n",
        log.display()
    );
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], &hooks);
    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[2], "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("2 steps")
            && stdout.contains("{code_change,up,[{demo_server,[]}]}")
            && stdout.contains("restart_child"),
        "{stdout}"
    );
    assert_eq!(running(&mut node), vs[0], "a dry run changed the node");
    assert!(!log.exists(), "hooks ran during a dry run");

    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[2]]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // A pre-step hook runs before its step is fetched: nothing is fetched ahead of it.
    assert!(stderr.contains("step 2/2") && !stderr.contains("ahead"), "{stderr}");
    let lines: Vec<String> = fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        vec![
            format!("pre 1/2 {} {}", vs[0], vs[1]),
            format!("post 1/2 {}", vs[1]),
            format!("pre 2/2 {} {}", vs[1], vs[2]),
            format!("post 2/2 {}", vs[2])
        ]
    );
}

#[test]
fn install_completes_a_mix_style_layout() {
    // mix release writes releases/<vsn>/<name>.rel but no releases/<name>.rel nor RELEASES.
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let v = &versions()[0];
    let folder = home.path("mixlike");
    rel::fs::extract(fs::File::open(tarball(v)).unwrap(), &folder, Default::default()).unwrap();
    fs::remove_file(folder.join("releases/demo.rel")).unwrap();
    home.rel(Some(&reg))
        .arg("push")
        .arg(&folder)
        .arg("--quiet")
        .assert()
        .success();
    let root = home.path("host/demo");
    home.rel(Some(&reg))
        .args(["install", "demo", "--version", v, "--root"])
        .arg(&root)
        .arg("--quiet")
        .assert()
        .success();
    let releases = fs::read_to_string(root.join("releases/RELEASES")).unwrap();
    assert!(
        releases.contains(&format!("{{release,\"demo\",\"{v}\",\"13.1.5\"")) && releases.contains("permanent"),
        "{releases}"
    );
    // It boots, and release_handler knows it as permanent.
    let mut node = Target::open(&root).start(v);
    assert_eq!(running(&mut node), *v);
    assert_eq!(node.eval("demo_server:count()"), "0");
}

#[test]
fn a_failing_health_check_takes_the_node_back_and_a_passing_one_makes_it_permanent() {
    let (home, reg) = world(true);
    let vs = versions();
    let healthy = home.path("host/healthy");
    let health = format!(
        "[health]\ncommand = [\"test\", \"-e\", \"{}\"]\nwindow = \"1s\"\ninterval = \"200ms\"\n",
        healthy.display()
    );
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], &health);
    node.eval("demo_server:bump()");
    let pid = node.os_pid();

    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[1]]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{} failed its health check", vs[1]))
            && stderr.contains(&format!("the node went back to {} live", vs[0])),
        "{stderr}"
    );
    assert_eq!(node.os_pid(), pid);
    assert_eq!(running(&mut node), vs[0]);
    assert_eq!(
        node.eval("demo_server:count()"),
        "1",
        "the node does not serve as before"
    );
    assert!(!node.eval("release_handler:which_releases()").contains(&vs[1]));
    assert_eq!(boots(&root), vs[0], "start_erl.data changed");
    let status = home.json(&reg, &["status", "demo", "--root", root.to_str().unwrap()]);
    assert_eq!(status["last"]["result"], "failed");
    assert!(
        status["last"]["message"].as_str().unwrap().contains("health check"),
        "{status}"
    );

    // Healthy now: the same upgrade goes through and is made permanent.
    fs::write(&healthy, "").unwrap();
    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[1]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(running(&mut node), vs[1]);
    assert_eq!(node.os_pid(), pid);
    assert_eq!(boots(&root), vs[1]);
}

#[test]
fn reload_config_applies_the_hosts_config_live_and_refuses_what_needs_a_restart() {
    let (home, reg) = world(false);
    let vs = versions();
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], "");
    let pid = node.os_pid();
    fs::write(
        home.path("host/sys.config"),
        "[{demo, [{greeting, \"reloaded\"}, {feature, on}]}].\n",
    )
    .unwrap();
    let reload = |extra: &[&str]| {
        home.rel(Some(&reg))
            .args(["reload-config", "demo", "--root"])
            .arg(&root)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = reload(&["--dry-run"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        node.eval("application:get_env(demo, greeting)"),
        "{ok,\"from the host\"}"
    );
    let out = reload(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("demo: changed greeting; added feature; its config_change/3 was told"),
        "{stderr}"
    );
    assert_eq!(node.eval("application:get_env(demo, greeting)"), "{ok,\"reloaded\"}");
    assert_eq!(
        node.eval("persistent_term:get(demo_config_change)"),
        "{[{greeting,\"reloaded\"}],[{feature,on}],[]}"
    );
    assert_eq!(node.os_pid(), pid);
    // A restart would run the same config.
    let written = fs::read_to_string(root.join(format!("releases/{}/sys.config", vs[0]))).unwrap();
    assert!(written.contains("reloaded") && written.contains("feature"), "{written}");

    // The kernel reads its settings at boot: refused, nothing changed.
    fs::write(
        home.path("host/sys.config"),
        "[{demo, [{greeting, \"again\"}]}, {kernel, [{logger_level, debug}]}].\n",
    )
    .unwrap();
    let out = reload(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("only a restart applies them: kernel (logger_level)"),
        "{stderr}"
    );
    assert_eq!(node.eval("application:get_env(demo, greeting)"), "{ok,\"reloaded\"}");
}

/// The releases `releases/RELEASES` lists, with their status.
fn releases_file(root: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(root.join("releases/RELEASES")).unwrap();
    let terms = rel_format::term::parse_terms("RELEASES", &text).unwrap();
    terms[0]
        .as_list()
        .unwrap()
        .iter()
        .map(|r| {
            let t = r.as_tuple().unwrap();
            (t[2].as_string().unwrap(), t[5].as_atom().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn an_upgrade_killed_at_any_point_is_completed_by_the_next_run() {
    let (home, reg) = world(true);
    let vs = versions();
    for phase in ["fetched", "unpacked", "configured", "installed", "permanent"] {
        let (root, mut node) = install_and_boot(&home, &reg, &vs[0], "");
        let pid = node.os_pid();
        let out = home
            .rel(Some(&reg))
            .env("REL_FAULT", phase)
            .args(["upgrade", "demo", "--root"])
            .arg(&root)
            .args(["--to", &vs[1]])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            None,
            "{phase}: rel was not stopped dead: {:?}",
            out.status
        );
        // The next run recognises what was left, and gets the node to exactly one version.
        let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[1]]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{phase}: {stderr}");
        assert_eq!(running(&mut node), vs[1], "{phase}");
        assert_eq!(node.os_pid(), pid, "{phase}: the node was restarted");
        let listed = node.term("[{V, S} || {_, V, _, S} <- release_handler:which_releases()]");
        let statuses: Vec<String> = listed.as_list().unwrap().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            statuses,
            vec![format!("{{\"{}\",permanent}}", vs[1]), format!("{{\"{}\",old}}", vs[0])],
            "{phase}: {stderr}"
        );
        assert_eq!(
            releases_file(&root),
            vec![
                (vs[1].clone(), "permanent".to_owned()),
                (vs[0].clone(), "old".to_owned())
            ],
            "{phase}: RELEASES disagrees"
        );
        assert_eq!(boots(&root), vs[1], "{phase}");
        assert!(!root.join("releases/demo.tar.gz").exists(), "{phase}");
        drop(node);
        fs::remove_dir_all(&root).unwrap();
    }
}

#[test]
fn hooks_run_in_root_from_any_directory_around_rollbacks_too_and_a_failing_post_hook_is_a_warning() {
    let (home, reg) = world(true);
    let vs = versions();
    // Relative commands, as documented (`bin/...`): they only work when run in ROOT.
    let hooks = "[hooks]\npre_step = [[\"sh\", \"-c\", \"echo pre $REL_FROM $REL_TO $PWD >> hooks.log\"]]\npost_step = [[\"sh\", \"-c\", \"echo post $REL_TO >> hooks.log; test ! -e fail-post\"]]\n";
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], hooks);
    let elsewhere = home.path("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let rel_in = |args: &[&str]| {
        home.rel(Some(&reg))
            .current_dir(&elsewhere)
            .args(args)
            .arg("--root")
            .arg(&root)
            .output()
            .unwrap()
    };
    let out = rel_in(&["upgrade", "demo", "--to", &vs[2]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !elsewhere.join("hooks.log").exists(),
        "hooks ran in the caller's directory"
    );

    // Planned first: going down is a rollback.
    let out = rel_in(&["upgrade", "demo", "--to", &vs[0], "--dry-run"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "plan for demo: {} -> {}, a rollback, live: {} -> {}, {} -> {}",
            vs[2], vs[0], vs[2], vs[1], vs[1], vs[0]
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two versions down in one call, through both downgrades, with the hooks around each.
    let out = rel_in(&["rollback", "demo", "--to", &vs[0]]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "rolled back from {} to {} (live, 2 steps, no restart)",
            vs[2], vs[0]
        )),
        "{said}"
    );
    assert_eq!(running(&mut node), vs[0]);
    assert_eq!(boots(&root), vs[0]);
    let root_pwd = fs::canonicalize(&root).unwrap();
    let lines: Vec<String> = fs::read_to_string(root.join("hooks.log"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let pre = |f: &str, t: &str| format!("pre {f} {t} {}", root_pwd.display());
    assert_eq!(
        lines,
        [
            pre(&vs[0], &vs[1]),
            format!("post {}", vs[1]),
            pre(&vs[1], &vs[2]),
            format!("post {}", vs[2]),
            pre(&vs[2], &vs[1]),
            format!("post {}", vs[1]),
            pre(&vs[1], &vs[0]),
            format!("post {}", vs[0]),
        ]
    );
    // The next upgrade has nothing to clean up after those rollbacks.
    fs::write(root.join("fail-post"), "").unwrap();
    let out = rel_in(&["upgrade", "demo", "--to", &vs[1]]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("left unpacked"), "{said}");
    // A post hook failing after the last step: the upgrade happened, and says so.
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("post_step hook failed") && said.contains(&format!("the node runs {}, permanent", vs[1])),
        "{said}"
    );
    assert_eq!(running(&mut node), vs[1]);
    // Before a next step, it stops there, saying where the node is.
    let out = rel_in(&["upgrade", "demo", "--to", &vs[2]]);
    assert!(
        out.status.success(),
        "one step left, so the failure is after the last: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = rel_in(&["rollback", "demo", "--to", &vs[0]]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "the node runs {}, permanent; the steps on to {} were not taken",
            vs[1], vs[0]
        )),
        "{said}"
    );
    assert_eq!(running(&mut node), vs[1]);
    assert_eq!(boots(&root), vs[1]);
}

#[test]
fn a_rollback_step_that_fails_its_health_check_goes_back_up_live() {
    let (home, reg) = world(true);
    let vs = versions();
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], "");
    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[2]]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pid = node.os_pid();
    // Healthy only while demo_extra (which v3 adds) runs.
    let config = fs::read_to_string(root.join("rel-host.toml")).unwrap();
    fs::write(
        root.join("rel-host.toml"),
        format!("{config}\n[health]\nexpr = \"lists:keymember(demo_extra, 1, application:which_applications())\"\nwindow = \"300ms\"\ninterval = \"100ms\"\n"),
    )
    .unwrap();
    let out = rel_rollback(&home, &reg, &root);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("{} failed its health check", vs[1]))
            && said.contains(&format!("went back to {} live", vs[2])),
        "{said}"
    );
    assert_eq!(running(&mut node), vs[2]);
    assert_eq!(node.os_pid(), pid, "the node was restarted");
    assert_eq!(boots(&root), vs[2]);
    assert_eq!(
        releases_file(&root),
        vec![
            (vs[2].clone(), "permanent".to_owned()),
            (vs[1].clone(), "old".to_owned()),
            (vs[0].clone(), "old".to_owned())
        ]
    );
    let status = home
        .rel(Some(&reg))
        .args(["status", "demo", "--json", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["last"]["op"], "rollback", "{status}");
    assert_eq!(status["last"]["result"], "failed", "{status}");
}

#[test]
fn a_step_built_here_fetches_what_the_host_lacks_as_deltas_and_says_so() {
    let (home, reg) = world(false);
    let vs = versions();
    let (root, mut node) = install_and_boot(&home, &reg, &vs[0], "");
    let out = rel_upgrade(&home, &reg, &root, &["--to", &vs[1], "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = &report["steps"][0];
    assert_eq!(step["kind"], "synthesised", "{report}");
    // The plan counts the chunks the host lacks, whole; it fetched them as deltas against
    // the release it runs, and says what that cost.
    let (fetched, lacking) = (step["fetched_bytes"].as_u64().unwrap(), step["bytes"].as_u64().unwrap());
    assert!(
        fetched > 0 && fetched * 4 < lacking,
        "fetched {fetched} of {lacking}: {report}"
    );
    assert_eq!(running(&mut node), vs[1]);
}
