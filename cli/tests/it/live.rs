//! Releases as `mix release` and `rebar3 as prod tar` build them, hot-upgraded end to end on
//! live nodes started by their own start scripts, while requests keep coming: for every
//! consecutive pair of fixture versions and one that skips a version, an upgrade, a
//! rollback, the upgrade again and a restart. After each step the node is compared with a
//! node booted fresh on the same version (what its supervisors run, what its protocols
//! answer, what config it sees), every module of the application is checked at the
//! release's md5 on the node, removed modules are gone, the OS process is the same one, the
//! state was converted, the host's config and the runtime configuration are what the node
//! runs, and no request failed.

use std::collections::BTreeMap;
use std::fs;
use std::time::Duration;

use rel::target::dist::{Connection, Cookie, NodeName, Options, Route, connect};
use rel_format::beam::Beam;
use rel_format::term::Term;
use rel_testkit::fixtures::{Fixture, out_dir};
use rel_testkit::live::{Running, Tool};
use rel_testkit::load::Load;

use crate::support::{Home, Registry};

fn fixture(name: &'static str) -> Fixture {
    Fixture {
        name,
        dir: out_dir().join(name),
    }
}

/// A registry with every release of the fixture and the upgrades of `pairs`, built by
/// `rel build-upgrade` from the registry.
pub(crate) fn world(fixture: &Fixture, pairs: &[(usize, usize)]) -> (Home, Registry) {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let vs = fixture.versions();
    for v in &vs {
        home.rel(Some(&reg))
            .arg("push")
            .arg(fixture.tarball(v))
            .arg("--quiet")
            .assert()
            .success();
    }
    for (from, to) in pairs {
        let out = home
            .rel(Some(&reg))
            .args([
                "build-upgrade",
                fixture.name,
                "--from",
                &vs[*from],
                "--to",
                &vs[*to],
                "--push",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "build-upgrade {from} -> {to}: {stderr}");
        assert!(
            !stderr.contains("warning"),
            "build-upgrade {from} -> {to} warned: {stderr}"
        );
    }
    (home, reg)
}

/// `rel install`s `vsn` in a new root with the host's config, writes `rel-host.toml`, starts
/// the node with its tool's start script.
pub(crate) fn install(home: &Home, reg: &Registry, fixture: &Fixture, tool: Tool, vsn: &str, dir: &str) -> Running {
    let root = home.path(dir);
    let running = Running::new(&root, fixture.name, tool);
    let host_config = home.path(&format!("{dir}.sys.config"));
    fs::write(&host_config, running.host_config()).unwrap();
    let out = home
        .rel(Some(reg))
        .args(["install", fixture.name, "--version", vsn, "--root"])
        .arg(&root)
        .arg("--sys-config")
        .arg(&host_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rel install: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(root.join("rel-host.toml"), running.rel_host_toml("")).unwrap();
    running.start();
    running
}

/// What a node answers that depends only on its version and configuration: not counters,
/// pids or ports. The processes a version adds report `absent` until they run, then what
/// they counted: only whether they run counts here.
fn structural(answer: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    const VARYING: &[&str] = &["hits", "paths", "conversions", "node", "store_pid", "port"];
    const RUNNING: &[&str] = &["audit", "rate", "tasksup"];
    answer
        .iter()
        .filter(|(k, _)| !VARYING.contains(&k.as_str()))
        .map(|(k, v)| match RUNNING.contains(&k.as_str()) && v != "absent" {
            true => (k.clone(), "running".to_owned()),
            false => (k.clone(), v.clone()),
        })
        .collect()
}

async fn dist(running: &Running) -> Connection {
    let name: NodeName = running.node.parse().unwrap();
    let route = Route::Epmd {
        host: "127.0.0.1".into(),
        port: running.epmd_port,
    };
    connect(
        &name,
        &Cookie::new(&running.cookie).unwrap(),
        &route,
        &Options::default(),
    )
    .await
    .unwrap()
}

/// The md5 of every module the release's application holds, a protocol's being that of its
/// consolidated version (what a boot loads).
fn md5s(fixture: &Fixture, vsn: &str) -> BTreeMap<String, Vec<u8>> {
    let app = format!("lib/{}-{vsn}/ebin/", fixture.name);
    let consolidated = format!("releases/{vsn}/consolidated/");
    let mut out = BTreeMap::new();
    for prefix in [&app, &consolidated] {
        for (path, bytes) in fixture.members(vsn, |p| p.starts_with(prefix.as_str()) && p.ends_with(".beam")) {
            let beam = Beam::parse(&path, bytes).unwrap();
            out.insert(beam.module().to_owned(), beam.md5().to_vec());
        }
    }
    out
}

/// Every module of `vsn` is loaded at its md5; those only `gone_from` had are not loaded.
async fn modules_are(running: &Running, fixture: &Fixture, vsn: &str, gone_from: &str) -> Result<(), String> {
    let conn = dist(running).await;
    let want = md5s(fixture, vsn);
    for (module, md5) in &want {
        let got = conn
            .call(module, "module_info", vec![Term::atom("md5")], Duration::from_secs(10))
            .await
            .map_err(|e| format!("{module}: {e}"))?;
        if got != Term::Binary(md5.clone()) {
            return Err(format!(
                "{module} is not at its md5 of {vsn} ({}), but at {got}",
                hex::encode(md5)
            ));
        }
    }
    for module in md5s(fixture, gone_from).keys().filter(|m| !want.contains_key(*m)) {
        let loaded = conn
            .call("code", "is_loaded", vec![Term::atom(module)], Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        if loaded.as_atom() != Some("false") {
            return Err(format!(
                "{module}, which {vsn} does not have, is still loaded: {loaded}"
            ));
        }
    }
    Ok(())
}

pub(crate) struct Check<'a> {
    pub(crate) fixture: &'a Fixture,
    pub(crate) oracles: &'a BTreeMap<String, BTreeMap<String, String>>,
    pub(crate) running: &'a Running,
    pub(crate) pid: u32,
}

impl Check<'_> {
    /// The node runs `vsn` as a node booted on it does, in the same OS process, with the
    /// host's config and its runtime configuration, and its state carried over.
    pub(crate) async fn runs(&self, vsn: &str, other: &str, hits_before: u64, step: &str) {
        let answer = self.running.get();
        assert_eq!(
            structural(&answer),
            self.oracles[vsn],
            "{step}: the node does not answer as one booted on {vsn}"
        );
        assert_eq!(self.running.os_pid(), self.pid, "{step}: the node was restarted");
        let hits: u64 = answer["hits"].parse().unwrap();
        assert!(
            hits > hits_before,
            "{step}: the state was lost ({hits} hits after {hits_before})"
        );
        modules_are(self.running, self.fixture, vsn, other)
            .await
            .unwrap_or_else(|e| panic!("{step}: {e}"));
    }
}

fn rel(home: &Home, reg: &Registry, root: &std::path::Path, args: &[&str]) {
    let out = home.rel(Some(reg)).args(args).arg("--root").arg(root).output().unwrap();
    assert!(
        out.status.success(),
        "rel {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a node booted on each version answers (structurally), checking that the host's
/// config and runtime configuration are in force.
pub(crate) fn oracles(
    home: &Home,
    reg: &Registry,
    fixture: &Fixture,
    tool: Tool,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let vs = fixture.versions();
    let mut oracles = BTreeMap::new();
    for (i, v) in vs.iter().enumerate() {
        let fresh = install(home, reg, fixture, tool, v, &format!("oracle{i}"));
        let answer = fresh.get();
        match tool {
            Tool::Mix => {
                assert_eq!(
                    answer["greeting"], "from-the-host",
                    "{v}: the host's config is not in force"
                );
                assert_eq!(answer["region"], "eu-test", "{v}: runtime.exs is not in force");
            }
            Tool::Relx => assert_eq!(answer["currency"], "HOST", "{v}: the host's config is not in force"),
        }
        oracles.insert(v.clone(), structural(&answer));
    }
    oracles
}

async fn live(name: &'static str, tool: Tool, pairs: &[(usize, usize)]) {
    live_fixture(fixture(name), tool, pairs).await;
}

async fn live_fixture(fixture: Fixture, tool: Tool, pairs: &[(usize, usize)]) {
    let name = fixture.name;
    let vs = fixture.versions();
    let (home, reg) = world(&fixture, pairs);
    let oracles = oracles(&home, &reg, &fixture, tool);
    for (from, to) in pairs {
        let (from, to) = (&vs[*from], &vs[*to]);
        let step = |what: &str| format!("{name} {from} -> {to}: {what}");
        let running = install(&home, &reg, &fixture, tool, from, &format!("host-{from}-{to}"));
        let root = running.root.clone();
        let mut hits = running.get()["hits"].parse().unwrap();
        // Each hot step under continuous requests, checked, then a restart: the node boots
        // what release_handler made permanent, with the same config.
        let steps = [
            ("upgrade", "upgrade", to, from),
            ("rollback", "rollback", from, to),
            ("upgrade again", "upgrade", to, from),
        ];
        for (what, command, now, other) in steps {
            let check = Check {
                fixture: &fixture,
                oracles: &oracles,
                running: &running,
                pid: running.os_pid(),
            };
            let load = Load::start(running.http_port, 4);
            std::thread::sleep(Duration::from_millis(300));
            rel(&home, &reg, &root, &[command, name, "--to", now]);
            check.runs(now, other, hits, &step(what)).await;
            std::thread::sleep(Duration::from_millis(300));
            let stats = load.stop();
            assert_eq!(
                stats.failed,
                0,
                "{}: {} of {} requests failed: {:?}",
                step(what),
                stats.failed,
                stats.ok + stats.failed,
                stats.failures
            );
            assert!(stats.ok > 20, "{}: only {} requests", step(what), stats.ok);

            running.restart();
            let answer = running.get();
            assert_eq!(
                structural(&answer),
                oracles[now],
                "{}",
                step(&format!(
                    "after the {what}, the restarted node does not run {now} as one booted on it"
                ))
            );
            hits = answer["hits"].parse().unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mix_releases_upgrade_hot_and_keep_the_hosts_config() {
    live("shop", Tool::Mix, &[(0, 1), (1, 2), (2, 3), (0, 2)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebar3_releases_upgrade_hot_and_restart_on_the_permanent_version() {
    live("ledger", Tool::Relx, &[(0, 1), (1, 2), (0, 2)]).await;
}

/// relx without ERTS (`{include_erts, false}`): the host's ERTS is linked in at install, and
/// the release upgrades hot, rolls back and restarts like the one that ships ERTS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebar3_releases_without_erts_upgrade_hot_on_the_hosts_erts() {
    let fixture = Fixture {
        name: "ledger",
        dir: out_dir().join("ledger/noerts"),
    };
    let first = fixture.dir.join("build/v1");
    assert!(first.join("releases").is_dir(), "{} is built", first.display());
    assert!(
        !fs::read_dir(&first)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("erts-")),
        "the variant ships no ERTS"
    );
    live_fixture(fixture, Tool::Relx, &[(0, 1)]).await;
}
