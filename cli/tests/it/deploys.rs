//! Restart deploys on a live mix release: what a hot upgrade cannot do (here an ERTS change)
//! is deployed beside the running version and the node restarted through the host's
//! command; rollback restarts back; a deploy killed between its switch and its restart is
//! undone by the next run.

use std::fs;
use std::path::Path;

use rel_testkit::fixtures::Fixture;
use rel_testkit::live::{Running, Tool};

use crate::live::{install, world};
use crate::support::{Home, Registry};

/// A version between v2 and v3 of shop: v2's applications on ERTS `13.1.5.1`, a copy of
/// the real one under another name (what an OTP patch release looks like on disk).
const OTHER_ERTS: (&str, &str) = ("0.1.1+20260107-1-e1e1e1e", "13.1.5.1");

/// Pushes v2 of shop as version `vsn` on ERTS `erts`; `boots: false` leaves its config
/// provider pointing at a folder that is not there, so it crashes at boot.
fn push_other_erts_release(home: &Home, reg: &Registry, shop: &Fixture, (vsn, erts): (&str, &str), boots: bool) {
    let v2 = &shop.versions()[1];
    let dir = home.path(&format!("build/{vsn}"));
    fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(shop.tarball(v2))
        .arg("-C")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let old_erts = "13.1.5";
    fs::rename(dir.join(format!("erts-{old_erts}")), dir.join(format!("erts-{erts}"))).unwrap();
    fs::rename(dir.join(format!("releases/{v2}")), dir.join(format!("releases/{vsn}"))).unwrap();
    let edit = |path: &Path, from: &str, to: &str| {
        let text = fs::read_to_string(path).unwrap();
        assert!(text.contains(from), "{}: no {from}", path.display());
        fs::write(path, text.replace(from, to)).unwrap();
    };
    let rel_file = dir.join(format!("releases/{vsn}/shop.rel"));
    edit(
        &rel_file,
        &format!("{{\"shop\",\"{v2}\"}}"),
        &format!("{{\"shop\",\"{vsn}\"}}"),
    );
    edit(
        &rel_file,
        &format!("{{erts,\"{old_erts}\"}}"),
        &format!("{{erts,\"{erts}\"}}"),
    );
    edit(
        &dir.join(format!("releases/{vsn}/elixir")),
        &format!("erts-{old_erts}"),
        &format!("erts-{erts}"),
    );
    // The config provider finds runtime.exs under its release's folder, a path sys.config
    // holds as a binary.
    let bytes = |s: &str| s.bytes().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
    if boots {
        edit(
            &dir.join(format!("releases/{vsn}/sys.config")),
            &bytes(&format!("/releases/{v2}/")),
            &bytes(&format!("/releases/{vsn}/")),
        );
    }
    fs::write(dir.join("releases/start_erl.data"), format!("{erts} {vsn}\n")).unwrap();
    home.rel(Some(reg))
        .arg("push")
        .arg(&dir)
        .arg("--quiet")
        .assert()
        .success();
}

fn start_erl_data(root: &Path) -> String {
    fs::read_to_string(root.join("releases/start_erl.data"))
        .unwrap()
        .trim()
        .to_owned()
}

fn rel(home: &Home, reg: &Registry, running: &Running, args: &[&str], fault: Option<&str>) -> std::process::Output {
    let mut cmd = home.rel(Some(reg));
    cmd.args(args).arg("--root").arg(&running.root);
    if let Some(point) = fault {
        cmd.env("REL_FAULT", point);
    }
    cmd.output().unwrap()
}

#[test]
fn an_erts_change_is_deployed_by_a_restart_and_rolled_back_by_one() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    push_other_erts_release(&home, &reg, &shop, OTHER_ERTS, true);
    let (vsn, erts) = OTHER_ERTS;
    let running = install(&home, &reg, &shop, Tool::Mix, &vs[0], "host");
    let pid = running.os_pid();

    let out = rel(&home, &reg, &running, &["upgrade", "shop", "--to", vsn], None);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("shop restarted on {vsn} (ERTS 13.1.5 -> {erts})")),
        "{said}"
    );
    assert_ne!(running.os_pid(), pid, "not restarted");
    let answer = running.get();
    assert_eq!(answer["code_vsn"], vs[1], "the node does not run v2's code");
    assert_eq!(answer["greeting"], "from-the-host", "the host's config is not in force");
    assert_eq!(start_erl_data(&running.root), format!("{erts} {vsn}"));
    // Installed beside: the old version and its ERTS are still there for a rollback.
    for kept in [
        "erts-13.1.5/bin".to_owned(),
        format!("erts-{erts}/bin"),
        format!("releases/{}/start.boot", vs[0]),
        format!("lib/shop-{}/ebin", vs[0]),
    ] {
        assert!(running.root.join(&kept).exists(), "{kept} is missing");
    }

    let pid = running.os_pid();
    let out = rel(&home, &reg, &running, &["rollback", "shop"], None);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("rolled back from {vsn} to {} (by a restart", vs[0])),
        "{said}"
    );
    assert_ne!(running.os_pid(), pid, "not restarted");
    assert_eq!(running.get()["code_vsn"], vs[0]);
    assert_eq!(start_erl_data(&running.root), format!("13.1.5 {}", vs[0]));
}

#[test]
fn a_restart_deploy_killed_after_staging_or_switching_is_recognised_and_redone() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let running = install(&home, &reg, &shop, Tool::Mix, &vs[0], "host");
    for point in ["staged", "switched"] {
        let pid = running.os_pid();
        let out = rel(
            &home,
            &reg,
            &running,
            &["upgrade", "shop", "--to", &vs[1], "--restart"],
            Some(point),
        );
        assert_eq!(
            out.status.code(),
            None,
            "{point}: rel was not stopped: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(running.os_pid(), pid, "{point}: the node was restarted");
        assert_eq!(running.get()["code_vsn"], vs[0], "{point}");
        // What was left is visible.
        let status = rel(&home, &reg, &running, &["status", "shop", "--json"], None);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["pending"]["op"], "deploy", "{point}: {status}");
        assert_eq!(status["pending"]["to"], vs[1].as_str(), "{point}: {status}");
        // The next run puts the root in line with the node, then deploys.
        let out = rel(
            &home,
            &reg,
            &running,
            &["upgrade", "shop", "--to", &vs[1], "--restart"],
            None,
        );
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{point}: {said}");
        if point == "switched" {
            assert!(
                said.contains(&format!(
                    "recovered: the interrupted deploy to {} had switched the root",
                    vs[1]
                )),
                "{point}: {said}"
            );
        }
        assert_eq!(running.get()["code_vsn"], vs[1], "{point}");
        assert_eq!(start_erl_data(&running.root), format!("13.1.5 {}", vs[1]), "{point}");
        let status = rel(&home, &reg, &running, &["status", "shop", "--json"], None);
        let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
        assert!(status["pending"].is_null(), "{point}: {status}");
        assert_eq!(status["last"]["op"], "deploy", "{point}: {status}");
        assert_eq!(status["last"]["result"], "permanent", "{point}: {status}");
        // Back, for the next point.
        let out = rel(&home, &reg, &running, &["rollback", "shop"], None);
        assert!(
            out.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(running.get()["code_vsn"], vs[0], "{point}");
    }
}

#[test]
fn a_release_that_does_not_come_up_after_a_restart_deploy_is_switched_back() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let broken = ("0.1.2+20260108-1-bad0bad", "13.1.5.2");
    push_other_erts_release(&home, &reg, &shop, broken, false);
    let running = install(&home, &reg, &shop, Tool::Mix, &vs[0], "host");
    let config = fs::read_to_string(running.root.join("rel-host.toml")).unwrap();
    fs::write(
        running.root.join("rel-host.toml"),
        config.replace("timeout = \"60s\"", "timeout = \"6s\""),
    )
    .unwrap();

    let out = rel(&home, &reg, &running, &["upgrade", "shop", "--to", broken.0], None);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("{} did not come up healthy", broken.0))
            && said.contains(&format!("the node was restarted on {} again", vs[0])),
        "{said}"
    );
    assert_eq!(running.get()["code_vsn"], vs[0]);
    assert_eq!(start_erl_data(&running.root), format!("13.1.5 {}", vs[0]));
    let status = rel(&home, &reg, &running, &["status", "shop", "--json"], None);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["last"]["result"], "failed", "{status}");
    assert!(status["pending"].is_null(), "{status}");
}

#[test]
fn install_into_an_installed_root_lays_the_version_beside_for_a_later_switch() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let running = install(&home, &reg, &shop, Tool::Mix, &vs[0], "host");
    let pid = running.os_pid();
    let install_v2 = || {
        home.rel(Some(&reg))
            .args(["install", "shop", "--version", &vs[1], "--root"])
            .arg(&running.root)
            .output()
            .unwrap()
    };
    let out = install_v2();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("beside {}, which the node still boots", vs[0])),
        "{said}"
    );
    assert!(running.root.join(format!("releases/{}/start.boot", vs[1])).exists());
    assert!(running.root.join(format!("lib/shop-{}/ebin", vs[1])).exists());
    assert_eq!(start_erl_data(&running.root), format!("13.1.5 {}", vs[0]));
    assert_eq!(
        (running.os_pid(), running.get()["code_vsn"].clone()),
        (pid, vs[0].clone())
    );
    let out = install_v2();
    assert!(String::from_utf8_lossy(&out.stderr).contains("is already installed"));

    // The switch takes what is there.
    let out = rel(
        &home,
        &reg,
        &running,
        &["upgrade", "shop", "--to", &vs[1], "--restart"],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(running.get()["code_vsn"], vs[1]);
}

/// The node and the registry are asked at once, and the first failure ends both: with the
/// node stopped, a hot upgrade says so without waiting for a registry that never answers.
#[test]
fn a_stopped_node_is_said_at_once_whatever_the_registry_does() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let running = install(&home, &reg, &shop, Tool::Mix, &vs[0], "host");
    running.stop();
    // Takes connections and never answers them.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let started = std::time::Instant::now();
    let out = home
        .rel(None)
        .args(["upgrade", "shop", "--to", &vs[1], "--registry"])
        .arg(format!("http://{}", silent.local_addr().unwrap()))
        .arg("--root")
        .arg(&running.root)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("a hot upgrade needs the running node"), "{said}");
    // The registry's request would wait for its timeout (300 s); the answer did not.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}: {said}",
        started.elapsed()
    );
}
