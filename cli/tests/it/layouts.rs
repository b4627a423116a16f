//! The build machine as mix and relx users have it: a `_build/prod/rel/<name>` folder that
//! keeps every version built there, `releases/COOKIE` (the distribution secret) in it, a
//! standard `mix.exs`, a work tree with uncommitted changes; and what `rel install` then says.

use std::fs;

use rel_testkit::fixtures::Fixture;

use crate::support::{Home, Registry};

/// What `mix release` leaves after building `versions` one after the other in one checkout.
fn build_folder(home: &Home, shop: &Fixture, versions: &[&String]) -> std::path::PathBuf {
    let folder = home.path("_build/prod/rel/shop");
    fs::create_dir_all(&folder).unwrap();
    for v in versions {
        let status = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(shop.tarball(v))
            .arg("-C")
            .arg(&folder)
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert!(
        folder.join("releases/COOKIE").exists(),
        "mix writes the cookie into the release"
    );
    folder
}

#[test]
fn push_takes_one_release_out_of_a_build_folder_and_leaves_the_cookie_unless_asked() {
    let shop = Fixture::shop();
    let vs = shop.versions();
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    let folder = build_folder(&home, &shop, &[&vs[0], &vs[1]]);

    // Two releases and no choice: refused before anything is uploaded, with the choices.
    let out = home.rel(Some(&reg)).arg("push").arg(&folder).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("holds 2 releases ({}, {})", vs[0], vs[1]))
            && err.contains("--release-version")
            && err.contains(&format!("the newest is {}", vs[1])),
        "{err}"
    );
    let listed = home.rel(Some(&reg)).args(["versions", "shop"]).output().unwrap();
    assert!(
        !listed.status.success(),
        "nothing was stored: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
    // A version the folder does not hold is named with what it holds.
    let out = home
        .rel(Some(&reg))
        .arg("push")
        .arg(&folder)
        .args(["--release-version", "9.9.9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("holds no release 9.9.9 (it holds: {}, {})", vs[0], vs[1]))
    );

    // The older one: only its own files, and no cookie.
    home.rel(Some(&reg))
        .arg("push")
        .arg(&folder)
        .args(["--release-version", &vs[0]])
        .assert()
        .success();
    let into = home.path("pulled-v1");
    home.rel(Some(&reg))
        .args(["pull", "shop", "--version", &vs[0], "--into"])
        .arg(&into)
        .assert()
        .success();
    assert!(into.join(format!("lib/shop-{}/ebin/shop.app", vs[0])).exists());
    assert!(into.join(format!("releases/{}/start.boot", vs[0])).exists());
    assert!(
        !into.join(format!("lib/shop-{}", vs[1])).exists(),
        "the other version's lib came along"
    );
    assert!(
        !into.join(format!("releases/{}", vs[1])).exists(),
        "the other version's releases/ came along"
    );
    assert!(!into.join("releases/COOKIE").exists(), "the cookie was published");

    // Deliberately with the cookie.
    home.rel(Some(&reg))
        .arg("push")
        .arg(&folder)
        .args(["--release-version", &vs[1], "--include-cookie"])
        .assert()
        .success();
    let into = home.path("pulled-v2");
    home.rel(Some(&reg))
        .args(["pull", "shop", "--version", &vs[1], "--into"])
        .arg(&into)
        .assert()
        .success();
    assert_eq!(
        fs::read(into.join("releases/COOKIE")).unwrap(),
        fs::read(folder.join("releases/COOKIE")).unwrap()
    );
}

#[test]
fn install_says_how_to_start_each_layout_and_gives_a_mix_release_the_hosts_cookie() {
    let home = Home::new();
    let reg = Registry::start(&home.path("store"), &[]);
    for (fixture, start) in [
        (Fixture::shop(), "bin/shop daemon"),
        (Fixture::ledger(), "bin/ledger daemon"),
    ] {
        let v = &fixture.versions()[0];
        let tarball = fixture.tarball(v);
        home.rel(Some(&reg)).arg("push").arg(&tarball).assert().success();
        let root = home.path(&format!("hosts/{}", fixture.name));
        let cookie = home.path("host-cookie");
        fs::write(&cookie, "hostcookie42\n").unwrap();
        let mut cmd = home.rel(Some(&reg));
        cmd.args(["install", fixture.name, "--version", v, "--root"]).arg(&root);
        if fixture.name == "shop" {
            cmd.arg("--cookie-file").arg(&cookie);
        }
        let out = cmd.output().unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(said.contains(start), "{}: {said}", fixture.name);
        assert!(!said.contains("start.boot"), "{}: {said}", fixture.name);
        if fixture.name == "shop" {
            assert_eq!(
                fs::read_to_string(root.join("releases/COOKIE")).unwrap().trim(),
                "hostcookie42"
            );
        }
    }
}

#[test]
fn version_reads_a_standard_mix_exs_and_marks_a_dirty_tree() {
    let home = Home::new();
    let dir = home.path("shop");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("mix.exs"),
        "defmodule Shop.MixProject do\n  use Mix.Project\n  @version \"1.4.2\"\n  def project do\n    [app: :shop, elixir: \"~> 1.14\", version: @version, deps: []]\n  end\nend\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "ci")
            .env("GIT_AUTHOR_EMAIL", "ci@example.com")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.com")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "mix.exs"]);
    git(&["commit", "-q", "-m", "v"]);
    let rev = git(&["rev-parse", "--short", "HEAD"]);
    let version = || {
        let out = home
            .rel(None)
            .args(["version", "--auto-version", "commit-count+revision", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (clean, warned) = version();
    assert_eq!(
        clean,
        format!("1.4.2+1-{rev}"),
        "the elixir requirement is not the version"
    );
    assert!(warned.is_empty(), "{warned}");
    // An untracked file changes nothing; an uncommitted change is no commit's version.
    fs::write(dir.join("notes.txt"), "scratch").unwrap();
    assert_eq!(version().0, clean);
    fs::write(
        dir.join("mix.exs"),
        fs::read_to_string(dir.join("mix.exs")).unwrap() + "# edited\n",
    )
    .unwrap();
    let (dirty, warned) = version();
    assert_eq!(dirty, format!("1.4.2+1-{rev}-dirty"));
    assert!(warned.contains("uncommitted changes"), "{warned}");
}
