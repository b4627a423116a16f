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
    // What the host fetches is what v3 adds to v1, not the release.
    let (ok, out, err) = rel(
        &home,
        &reg,
        &["path", "shop", "--from", &vs[0], "--to", &vs[2], "--json"],
    );
    assert!(ok, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fetched = plan["total_bytes"].as_u64().unwrap();
    let release = std::fs::metadata(shop.tarball(&vs[2])).unwrap().len();
    assert!(
        fetched > 0 && fetched < release / 4,
        "{fetched} bytes for a {release}-byte gzip release"
    );

    // A dry run builds the upgrade here and shows its instructions (a plain tar, not the
    // gzip a fetched upgrade is), changing nothing.
    let (ok, out, err) = rel(
        &home,
        &reg,
        &[
            "upgrade",
            "shop",
            "--to",
            &vs[2],
            "--root",
            &root,
            "--dry-run",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let instructions = report["steps"][0]["instructions"].as_array().unwrap();
    assert!(
        instructions.iter().any(|i| i == "point_of_no_return")
            && instructions.iter().any(|i| i.as_str().unwrap().contains("Elixir.Shop")),
        "{report}"
    );
    assert_eq!(running.get()["code_vsn"], vs[0]);

    // The upgrade the host builds, stopped right after it is written, is what CI would build.
    let out = home
        .rel(Some(&reg))
        .env("REL_FAULT", "fetched")
        .args(["upgrade", "shop", "--to", &vs[2], "--root", &root])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, _, err) = rel(
        &home,
        &reg,
        &[
            "build-upgrade",
            "shop",
            "--from",
            &vs[0],
            "--to",
            &vs[2],
            "-o",
            home.path("ci.tar").to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        std::fs::read(running.root.join("releases/shop.tar.gz")).unwrap()
            == std::fs::read(home.path("ci.tar")).unwrap(),
        "the host built another upgrade than build-upgrade"
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

/// For every pair of versions of every fixture, the upgrade built from the registry's two
/// releases (what a host synthesises) is byte for byte the one CI builds from its tarballs.
/// And the one built from the two releases unpacked in folders (read together, each shared
/// module parsed once, only the upgrade's members archived) is the one built from tarballs
/// of those folders in their order (a tarball's members keep theirs).
#[test]
fn what_a_host_builds_is_byte_for_byte_what_ci_builds() {
    for fixture in [Fixture::shop(), Fixture::ledger(), Fixture::demo()] {
        let vs = fixture.versions();
        let home = Home::new();
        let reg = Registry::start(&home.path("store"), &[]);
        for v in &vs {
            home.rel(Some(&reg))
                .arg("push")
                .arg(fixture.tarball(v))
                .arg("--quiet")
                .assert()
                .success();
            let dir = home.path(&format!("unpacked/{v}"));
            std::fs::create_dir_all(&dir).unwrap();
            let tar = |args: &[&str]| {
                let status = std::process::Command::new("tar").args(args).status().unwrap();
                assert!(status.success(), "tar {args:?}");
            };
            tar(&["-xf", fixture.tarball(v).to_str().unwrap(), "-C", dir.to_str().unwrap()]);
            let sorted = home.path(&format!("unpacked/{v}.tar"));
            tar(&[
                "--sort=name",
                "-cf",
                sorted.to_str().unwrap(),
                "-C",
                dir.to_str().unwrap(),
                ".",
            ]);
        }
        for (i, from) in vs.iter().enumerate() {
            for to in &vs[i + 1..] {
                let build = |from: &str, to: &str, out: &str| {
                    let out = home.path(out);
                    let status = home
                        .rel(Some(&reg))
                        .args([
                            "build-upgrade",
                            fixture.name,
                            "--from",
                            from,
                            "--to",
                            to,
                            "--quiet",
                            "-o",
                        ])
                        .arg(&out)
                        .output()
                        .unwrap();
                    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
                    std::fs::read(out).unwrap()
                };
                let ci = build(
                    fixture.tarball(from).to_str().unwrap(),
                    fixture.tarball(to).to_str().unwrap(),
                    "ci.tar",
                );
                let stored_pair = [format!("{}@{from}", fixture.name), format!("{}@{to}", fixture.name)];
                let stored = build(&stored_pair[0], &stored_pair[1], "stored.tar");
                // Built again, from the snapshots the cache now keeps of both releases.
                let kept = build(&stored_pair[0], &stored_pair[1], "kept.tar");
                let unpacked = |v: &str| home.path(&format!("unpacked/{v}")).to_str().unwrap().to_owned();
                let folders = build(&unpacked(from), &unpacked(to), "folders.tar");
                let of_folders = build(
                    &unpacked(&format!("{from}.tar")),
                    &unpacked(&format!("{to}.tar")),
                    "of-folders.tar",
                );
                assert!(ci.len() > 10_000, "{} {from} -> {to}: {} bytes", fixture.name, ci.len());
                assert!(ci == stored, "{} {from} -> {to}: the upgrades differ", fixture.name);
                assert!(
                    ci == kept,
                    "{} {from} -> {to}: the upgrade built from kept snapshots differs",
                    fixture.name
                );
                assert!(
                    folders == of_folders,
                    "{} {from} -> {to}: the upgrade built from folders differs",
                    fixture.name
                );
            }
        }
        // One snapshot kept per stored release, beside its pack.
        let kept = std::fs::read_dir(home.path("cache"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "snapshot"))
            .count();
        assert_eq!(kept, vs.len(), "{}", fixture.name);
    }
}

/// Shop's versions, and a registry of a fresh home holding the first two.
fn shop_first_two_pushed() -> (Vec<String>, Home, Registry) {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    for v in &vs[..2] {
        home.rel(Some(&reg))
            .arg("push")
            .arg(shop.tarball(v))
            .arg("--quiet")
            .assert()
            .success();
    }
    (vs, home, reg)
}

/// The snapshots a host keeps are only a shortcut: one damaged, one of another release put
/// in its place, or one whose release's chunks left the cache, and the host builds the same
/// upgrade, reading again (and keeping again) what it must.
#[test]
fn a_kept_snapshot_that_cannot_be_used_costs_a_read_never_a_wrong_upgrade() {
    let (vs, home, reg) = shop_first_two_pushed();
    let (from, to) = (format!("shop@{}", vs[0]), format!("shop@{}", vs[1]));
    let build = |out: &str| {
        let out = home.path(out);
        let run = home
            .rel(Some(&reg))
            .args(["build-upgrade", "shop", "--from", &from, "--to", &to, "-o"])
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        assert!(run.status.success(), "{stderr}");
        (std::fs::read(out).unwrap(), stderr)
    };
    let (first, _) = build("first.tar");
    let cache = home.path("cache");
    let with_ext = |ext: &str| -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        found.sort();
        found
    };
    let snapshots = with_ext("snapshot");
    assert_eq!(snapshots.len(), 2);
    // The cache names a release's files for its tar's digest.
    let tar_digest = |v: &str| {
        let tar = home.path(&format!("{v}.tar"));
        home.rel(Some(&reg))
            .args(["pull", "shop", "--version", v, "--quiet", "-o"])
            .arg(&tar)
            .assert()
            .success();
        rel_format::Digest::of(&std::fs::read(tar).unwrap()).hex()
    };
    let (from_digest, to_digest) = (tar_digest(&vs[0]), tar_digest(&vs[1]));
    let to_snapshot = cache.join(format!("{to_digest}.snapshot"));
    let from_snapshot = cache.join(format!("{from_digest}.snapshot"));
    assert_eq!(snapshots, {
        let mut both = vec![to_snapshot.clone(), from_snapshot.clone()];
        both.sort();
        both
    });

    // Kept ones are used as they are: building again rewrites neither.
    let inode = |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let inodes = [inode(&from_snapshot), inode(&to_snapshot)];
    let (again, _) = build("again.tar");
    assert!(again == first, "the upgrade differs when built again");
    assert_eq!([inode(&from_snapshot), inode(&to_snapshot)], inodes);

    // A damaged one: refused, named, read again and kept again.
    let mut bytes = std::fs::read(&to_snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&to_snapshot, &bytes).unwrap();
    let (again, stderr) = build("damaged.tar");
    assert!(again == first, "the upgrade differs after a damaged snapshot");
    assert!(
        stderr.contains("checksum does not match") && stderr.contains(&to_digest),
        "{stderr}"
    );
    assert_ne!(
        std::fs::read(&to_snapshot).unwrap(),
        bytes,
        "the snapshot was not kept again"
    );

    // Another release's, put in its place.
    std::fs::copy(&from_snapshot, &to_snapshot).unwrap();
    let (again, stderr) = build("swapped.tar");
    assert!(again == first, "the upgrade differs after a swapped snapshot");
    assert!(stderr.contains("another release's"), "{stderr}");

    // The target's chunks are gone from the cache, its snapshot is not: the members the
    // upgrade carries are fetched again.
    for ext in ["pack", "idx", "order"] {
        std::fs::remove_file(cache.join(format!("{to_digest}.{ext}"))).unwrap();
    }
    let (again, stderr) = build("refetched.tar");
    assert!(
        again == first,
        "the upgrade differs once the chunks were gone: {stderr}"
    );
    assert!(
        cache.join(format!("{to_digest}.pack")).exists(),
        "the release was not fetched again"
    );
    assert_eq!(inode(&from_snapshot), inodes[0]);
}

/// A stored release whose stream does not verify is never read into a snapshot: building
/// an upgrade to it fails with the registry's fault named, and the cache keeps nothing of
/// it (the release it starts from, which verified, is kept).
#[test]
fn a_release_that_does_not_verify_leaves_no_snapshot() {
    let (vs, home, reg) = shop_first_two_pushed();
    // A byte flipped in a chunk only the second release has.
    let manifest = |v: &str| -> serde_json::Value {
        let path = home.path("store/manifests/shop").join(v).join("release.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let chunks = |v: &str| -> Vec<String> {
        manifest(v)["signed"]["tar"]["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["digest"].as_str().unwrap().to_owned())
            .collect()
    };
    let (first, second) = (chunks(&vs[0]), chunks(&vs[1]));
    let victim = second
        .iter()
        .find(|c| !first.contains(c))
        .expect("a chunk of its own")
        .clone();
    let (pack, entry) = crate::cli::pack_files(&home.path("store"))
        .into_iter()
        .find_map(|(pack, index)| {
            let entries = rel_format::pack::decode_index(&std::fs::read(index).unwrap()).unwrap();
            let entry = entries.into_iter().find(|e| e.digest.to_string() == victim)?;
            Some((pack, entry))
        })
        .expect("a pack holds the chunk");
    let mut bytes = std::fs::read(&pack).unwrap();
    bytes[(entry.offset + u64::from(entry.size) / 2) as usize] ^= 0x40;
    std::fs::write(&pack, bytes).unwrap();

    let out = home
        .rel(Some(&reg))
        .args(["build-upgrade", "shop", "--from", &format!("shop@{}", vs[0])])
        .args(["--to", &format!("shop@{}", vs[1]), "-o"])
        .arg(home.path("up.tar"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("the registry sent a bad chunk"),
        "{stderr}"
    );
    assert!(!home.path("up.tar").exists());
    let second_tar = manifest(&vs[1])["signed"]["tar"]["digest"].as_str().unwrap().to_owned();
    let second_tar = second_tar.trim_start_matches("sha256:");
    let kept: Vec<String> = std::fs::read_dir(home.path("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter()
            .all(|f| !f.starts_with(second_tar) || f.ends_with(".partial")),
        "{kept:?}"
    );
    assert_eq!(kept.iter().filter(|f| f.ends_with(".snapshot")).count(), 1, "{kept:?}");
}

/// The generator is not sure of shop v1 -> v4: the store's state changed shape in v2 and
/// again in v4, and v4's code_change/3 was written for v2's shape. The host refuses, and
/// says how to go on.
#[test]
fn a_synthesis_the_generator_cannot_be_sure_of_is_refused_with_the_way_forward() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let root = home.path("host");
    home.rel(Some(&reg))
        .args(["install", "shop", "--version", &vs[0], "--root"])
        .arg(&root)
        .assert()
        .success();
    let last = vs.last().unwrap();
    let out = home
        .rel(Some(&reg))
        .args(["upgrade", "shop", "--to", last, "--dry-run", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "rel cannot be sure of the upgrade of shop from {} to {last}",
            vs[0]
        )) && err.contains(&format!("Elixir.Shop.Store changed in {} and again in {last}", vs[1]))
            && err.contains(&format!(
                "rel build-upgrade shop --from {} --to {last} --appup-dir DIR --push",
                vs[0]
            )),
        "{err}"
    );
    // With a hand-written appup stored, the host takes it.
    let appups = home.path("appups");
    std::fs::create_dir_all(&appups).unwrap();
    let out = home
        .rel(Some(&reg))
        .args(["appup", &format!("shop@{}", vs[0]), &format!("shop@{last}"), "--out"])
        .arg(&appups)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = home
        .rel(Some(&reg))
        .args([
            "build-upgrade",
            "shop",
            "--from",
            &vs[0],
            "--to",
            last,
            "--push",
            "--quiet",
            "--appup-dir",
        ])
        .arg(&appups)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = home
        .rel(Some(&reg))
        .args(["upgrade", "shop", "--to", last, "--dry-run", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 step"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A host that takes only stored upgrades deploys v2 by a restart instead.
    std::fs::write(root.join("rel-host.toml"), "hot = \"stored\"\n").unwrap();
    let out = home
        .rel(Some(&reg))
        .args(["upgrade", "shop", "--to", &vs[1], "--dry-run", "--root"])
        .arg(&root)
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        plan.contains("by a restart") && plan.contains("hot = \"stored\""),
        "{plan}"
    );
}

/// `vsn`'s tarball extracted into a root the way a deploy script without rel lays it out.
fn deployed_by_hand(home: &Home, shop: &Fixture, vsn: &str) -> std::path::PathBuf {
    let root = home.path("deployed/shop");
    std::fs::create_dir_all(&root).unwrap();
    let untar = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(shop.tarball(vsn))
        .arg("-C")
        .arg(&root)
        .status()
        .unwrap();
    assert!(untar.success());
    root
}

/// A root deployed the way mix users deploy (the tarball extracted, no RELEASES), whose
/// sys.config was edited in place on the host, started by its own script: adopted, then
/// upgraded hot with nothing built ahead, the host's edit still in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_deployed_without_rel_is_adopted_then_upgraded_hot() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let root = deployed_by_hand(&home, &shop, &vs[0]);
    assert!(!root.join("releases/RELEASES").exists(), "mix ships no RELEASES");
    let sys_config = root.join(format!("releases/{}/sys.config", vs[0]));
    let bytes = |s: &str| s.bytes().map(|b| b.to_string()).collect::<Vec<_>>().join(",");
    let text = std::fs::read_to_string(&sys_config).unwrap();
    let edited = text.replace(&bytes("hello"), &bytes("edited-on-host"));
    assert_ne!(text, edited);
    std::fs::write(&sys_config, edited).unwrap();
    let running = rel_testkit::live::Running::new(&root, "shop", Tool::Mix);
    std::fs::write(root.join("rel-host.toml"), running.rel_host_toml("")).unwrap();
    running.start();
    assert_eq!(running.get()["greeting"], "edited-on-host");
    let pid = running.os_pid();
    let root_arg = root.to_str().unwrap();

    let (ok, _, err) = rel(&home, &reg, &["adopt", "shop", "--root", root_arg]);
    assert!(ok, "{err}");
    assert!(
        err.contains(&format!("adopted shop {} (mix release", vs[0]))
            && err.contains("sys.config (now the host's")
            && err.contains("wrote releases/RELEASES")
            && err.contains("told the running node's release_handler"),
        "{err}"
    );
    let (ok, _, err) = rel(&home, &reg, &["adopt", "shop", "--root", root_arg]);
    assert!(!ok && err.contains("already managed by rel"), "{err}");

    let (ok, _, err) = rel(&home, &reg, &["upgrade", "shop", "--to", &vs[1], "--root", root_arg]);
    assert!(ok, "{err}");
    let answer = running.get();
    assert_eq!((running.os_pid(), answer["code_vsn"].as_str()), (pid, vs[1].as_str()));
    assert_eq!(answer["greeting"], "edited-on-host", "the host's edit was lost");
    // Back, live: the libraries of v1 were never taken for unused.
    let (ok, _, err) = rel(&home, &reg, &["rollback", "shop", "--root", root_arg]);
    assert!(ok, "{err}");
    assert_eq!(
        (running.os_pid(), running.get()["code_vsn"].clone()),
        (pid, vs[0].clone())
    );
    assert!(root.join(format!("lib/shop-{}/ebin", vs[0])).is_dir());
}

#[test]
fn a_root_that_is_not_the_stored_release_is_not_adopted() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let root = deployed_by_hand(&home, &shop, &vs[0]);
    // Someone patched a module on this host.
    let beam = root.join(format!("lib/shop-{}/ebin/Elixir.Shop.Handler.beam", vs[0]));
    let mut b = std::fs::read(&beam).unwrap();
    let last = b.len() - 1;
    b[last] ^= 1;
    std::fs::write(&beam, b).unwrap();
    let (ok, _, err) = rel(&home, &reg, &["adopt", "shop", "--root", root.to_str().unwrap()]);
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("is not the stored release {}", vs[0]))
            && err.contains(&format!("lib/shop-{}/ebin/Elixir.Shop.Handler.beam differs", vs[0])),
        "{err}"
    );
    assert!(!root.join(".rel").exists(), "a refused adoption wrote state");
    assert!(!root.join("releases/RELEASES").exists());
}

/// Bytes of chunks the registry has sent so far.
async fn chunk_bytes_sent(reg: &Registry) -> u64 {
    let text = reqwest::get(format!("{}/metrics", reg.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with("rel_chunk_bytes_sent_total"))
        .and_then(|l| l.split_whitespace().last())
        .map_or(0, |n| n.parse().unwrap())
}

/// The cache that held the running release is gone: the host reads the release back from
/// the root and fetches only what the target adds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_cache_a_host_reads_the_running_release_back_from_the_root() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let (home, reg) = world(&shop, &[]);
    let running = install(&home, &reg, &shop, Tool::Mix, &vs[0], "host");
    std::fs::remove_dir_all(home.path("cache")).unwrap();
    let before = chunk_bytes_sent(&reg).await;
    let (ok, _, err) = rel(
        &home,
        &reg,
        &[
            "upgrade",
            "shop",
            "--to",
            &vs[1],
            "--root",
            running.root.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(running.get()["code_vsn"], vs[1]);
    let sent = chunk_bytes_sent(&reg).await - before;
    let release = std::fs::metadata(shop.tarball(&vs[0])).unwrap().len();
    assert!(
        sent > 0 && sent < release / 20,
        "{sent} bytes fetched; the release is {release}"
    );
}
