//! Upgrades synthesised on the host: only releases are stored (nothing built ahead), and a
//! node goes hot from whatever it runs to any stored version, the upgrade built on the host
//! from the two signed releases, byte for byte what `rel build-upgrade` builds.

use std::time::Duration;

use rel_testkit::fixtures::Fixture;
use rel_testkit::live::Tool;
use rel_testkit::load::Load;

use crate::live::{Check, install, oracles, world};
use crate::support::{Home, Registry};

fn rel(home: &Home, reg: &Registry, args: &[&str]) -> (bool, String, String) {
    let out = home.rel(Some(reg)).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_goes_hot_from_what_it_runs_to_any_stored_release_with_nothing_built_ahead() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let oracles = oracles(&home, &reg, &shop, Tool::Mix);
    let running = install(&home, &reg, &shop, Tool::Mix, &vs[0], "host");
    let root = running.root.to_str().unwrap().to_owned();

    let (ok, out, err) = rel(&home, &reg, &["path", "shop", "--from", &vs[0], "--to", &vs[2]]);
    assert!(ok, "{err}");
    assert!(
        out.contains("hot upgrade built on the host") && out.contains("synthesised"),
        "{out}"
    );

    let mut hits: u64 = running.get()["hits"].parse().unwrap();
    let steps = [
        ("up, skipping a version", "upgrade", &vs[2], &vs[0]),
        ("down, to a version never installed", "upgrade", &vs[1], &vs[2]),
        ("down again, from a release installed whole", "rollback", &vs[0], &vs[1]),
    ];
    for (what, command, to, other) in steps {
        let check = Check {
            fixture: &shop,
            oracles: &oracles,
            running: &running,
            pid: running.os_pid(),
        };
        let load = Load::start(running.http_port, 4);
        std::thread::sleep(Duration::from_millis(300));
        let (ok, _, err) = rel(&home, &reg, &[command, "shop", "--to", to, "--root", &root]);
        assert!(ok, "{what}: {err}");
        if what.starts_with("down") {
            assert!(err.contains("through a downgrade built here"), "{what}: {err}");
        }
        check.runs(to, other, hits, what).await;
        let stats = load.stop();
        assert_eq!(stats.failed, 0, "{what}: {:?}", stats.failures);
        hits = running.get()["hits"].parse().unwrap();
    }
}
