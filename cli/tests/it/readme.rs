//! README's "Using it" is `scripts/using-it.sh` between its markers, word for word, and the
//! script runs end to end as a reader would run it: `rel` on PATH, a real registry, the
//! fixtures' mix releases, a live node upgraded and rolled back, a root adopted.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use rel_testkit::fixtures::Fixture;
use rel_testkit::free_port;

use crate::support::Home;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The part of the script README shows.
fn walk_through() -> String {
    let script = std::fs::read_to_string(repo().join("scripts/using-it.sh")).unwrap();
    let begin = "# --- README begins\n";
    let start = script.find(begin).expect("a begin marker") + begin.len();
    let end = script.find("# --- README ends").expect("an end marker");
    script[start..end].to_owned()
}

#[test]
fn the_readme_shows_the_script_word_for_word() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let shown = format!("## Using it\n\n```sh\n{}```\n", walk_through());
    assert!(
        readme.contains(&shown),
        "README's \"Using it\" is not scripts/using-it.sh between its markers; it should read:\n{shown}"
    );
}

#[test]
fn the_readme_walk_through_runs() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let home = Home::new();
    let dir = home.path("walk");
    let bin = home.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_rel"), bin.join("rel")).unwrap();
    // The app's git work tree, for `rel version`.
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    let sources = repo().join("fixtures/mix/shop/v1");
    for file in ["mix.exs", "VERSION"] {
        std::fs::copy(sources.join(file), app.join(file)).unwrap();
    }
    for git in [
        &["init", "-q"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=ci",
            "-c",
            "user.email=ci@example.com",
            "commit",
            "-qm",
            "v1",
        ],
    ] {
        assert!(
            Command::new("git")
                .args(git)
                .current_dir(&app)
                .status()
                .unwrap()
                .success()
        );
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let (epmd, listen) = (free_port().to_string(), format!("127.0.0.1:{}", free_port()));
    let env = [
        ("PATH", path.as_str()),
        ("HOME", dir.to_str().unwrap()),
        ("XDG_CONFIG_HOME", home.path("config").to_str().unwrap()),
        ("XDG_CACHE_HOME", home.path("cache").to_str().unwrap()),
        ("REL_STATE_DIR", home.path("state").to_str().unwrap()),
        ("NO_COLOR", "1"),
        ("LISTEN", &listen),
        ("BUILD", shop.tarball(&vs[0]).parent().unwrap().to_str().unwrap()),
        ("V1", &vs[0]),
        ("V2", &vs[1]),
        ("V3", &vs[2]),
        ("SHOP_PORT", &free_port().to_string()),
        ("ERL_EPMD_PORT", &epmd),
        ("ERL_EPMD_ADDRESS", "127.0.0.1"),
    ]
    .map(|(k, v)| (k, v.to_owned()));
    // Its output goes to a file, not a pipe: what it leaves running in the background must
    // not keep the test waiting for the end of a pipe.
    let log = home.path("walk.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut script = Command::new("bash")
        .arg(repo().join("scripts/using-it.sh"))
        .current_dir(&dir)
        .env_clear()
        .envs(env.clone())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let group = format!("-{}", script.id());
    let status = script.wait().unwrap();
    // What the script leaves running: the registry (in the script's process group), and the
    // node and epmd if it stopped half way.
    let _ = Command::new("kill").args(["-TERM", "--", &group]).output();
    let node = dir.join("opt/shop/bin/shop");
    if node.exists() {
        let _ = Command::new(&node).arg("stop").env_clear().envs(env.clone()).output();
    }
    // epmd refuses to go while a node it knows is still stopping.
    for _ in 0..100 {
        let killed = Command::new("epmd").arg("-kill").env("ERL_EPMD_PORT", &epmd).output();
        if killed.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Killed")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "the walk-through failed:\n{text}");
    let (v1, v2, v3) = (&vs[0], &vs[1], &vs[2]);
    for expected in [
        format!("shop {v1} (release) is not stored"),
        format!("pushed shop {v3} (release)"),
        format!("upgrade shop {v1} -> {v2}:"),
        format!("channel production of shop now points at {v2}"),
        format!("ok: release shop {v2} signed by ci-2026"),
        format!("installed shop {v1} (mix release"),
        format!("shop upgraded live from {v1} to {v2} in 1 step, no restart"),
        "built here from the two signed releases".to_owned(),
        "      point_of_no_return\n".to_owned(),
        format!("shop upgraded live from {v2} to {v3} in 1 step, no restart"),
        format!("running {v3}"),
        format!("shop rolled back from {v3} to {v2} (live, 1 step, no restart)"),
        format!("adopted shop {v1} (mix release, signed by ci-2026) in opt/legacy"),
    ] {
        assert!(
            text.contains(&expected),
            "the walk-through did not print {expected:?}:\n{text}"
        );
    }
}
