//! Help and error output, snapshotted with temp paths, ports and OS error numbers filtered.

use crate::support::Home;

fn run(home: &Home, args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = home.rel(None);
    cmd.env_remove("REL_TRUSTED_KEYS").env_remove("REL_KEY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

macro_rules! snap {
    ($name:expr, $home:expr, $code:expr, $text:expr) => {{
        let home_path = $home.dir.path().display().to_string();
        insta::with_settings!({filters => vec![
            (home_path.as_str(), "[HOME]"),
            (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
            (r"rel \d+\.\d+\.\d+", "rel [VERSION]"),
            // The operating system's and the HTTP stack's own wording is not rel's to pin.
            (r"\(os error \d+\)", "(os error [N])"),
        ]}, {
            insta::assert_snapshot!($name, format!("exit: {}\n{}", $code, $text));
        });
    }};
}

#[test]
fn help_texts() {
    let home = Home::new();
    for (name, args) in [
        ("help", vec!["--help"]),
        ("push_help", vec!["push", "--help"]),
        ("pull_help", vec!["pull", "--help"]),
    ] {
        let (code, text) = run(&home, &args, &[]);
        snap!(name, home, code, text);
    }
}

#[test]
fn error_texts() {
    let home = Home::new();
    let (code, text) = run(&home, &["pull", "demo", "--version", "1.0.0", "-o", "x.tar.gz"], &[]);
    snap!("error_no_trusted_keys", home, code, text);
    let (code, text) = run(&home, &["versions", "demo"], &[("REL_REGISTRY", "http://127.0.0.1:1")]);
    snap!("error_registry_down", home, code, text);
    let (code, text) = run(
        &home,
        &[
            "pull",
            "demo",
            "--version",
            "1.0/../x",
            "-o",
            "x.tar.gz",
            "--trusted-key",
            "ci:GX9rI+FshTLGq8g4+s1ep4m+DHaykgM0A5v6iz02jWE=",
        ],
        &[],
    );
    snap!("error_bad_version", home, code, text);
    let (code, text) = run(&home, &["pull", "demo", "-o", "x.tar.gz"], &[]);
    snap!("error_usage", home, code, text);
    let (code, text) = run(
        &home,
        &[
            "push",
            "/nonexistent/release.tar.gz",
            "--key",
            home.path("keys/ci.key").to_str().unwrap(),
        ],
        &[],
    );
    snap!("error_missing_artifact", home, code, text);
}

#[test]
fn auto_version_in_a_git_work_tree() {
    let home = Home::new();
    let repo = home.path("app");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(
        repo.join("src/shop.app.src"),
        "{application, shop, [{vsn, \"0.3.1\"}, {modules, []}]}.\n",
    )
    .unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
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
    for i in 0..3 {
        std::fs::write(repo.join("f"), i.to_string()).unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", &format!("c{i}")]);
    }
    git(&["checkout", "-q", "-b", "feature_x"]);
    std::fs::write(repo.join("f"), "feature").unwrap();
    git(&["commit", "-q", "-am", "feature"]);
    git(&["checkout", "-q", "main"]);
    let sha = git(&["rev-parse", "--short", "HEAD"]);
    let dir = repo.to_str().unwrap();
    let version = |tokens: &[&str], envs: &[(&str, &str)]| {
        let mut args = vec!["version", "--dir", dir, "--auto-version"];
        args.extend_from_slice(tokens);
        run(&home, &args, envs)
    };
    let (code, text) = version(&["commit-count+git-revision+branch-unless-master"], &[]);
    // HEAD is on main and feature_x: like edeliver, the first branch listed wins, stripped of `_`.
    assert_eq!(
        (code, text.trim()),
        (0, format!("0.3.1+4-{sha}-featurex").as_str()),
        "all-branch count is 4, HEAD's is 3"
    );
    let (_, text) = version(
        &["commit-count+git-revision+branch-unless-master"],
        &[("BRANCH", "master")],
    );
    assert_eq!(
        text.trim(),
        format!("0.3.1+4-{sha}"),
        "branch-unless-master drops master"
    );
    let (_, text) = version(&["append-git-branch"], &[("BRANCH", "release/2.x")]);
    assert_eq!(text.trim(), "0.3.1+release2x");
    let (_, text) = version(&["commit-count-branch", "--base", "1.0.0-rc.1"], &[]);
    assert_eq!(text.trim(), "1.0.0-rc.1+3");
    let today = String::from_utf8(
        std::process::Command::new("date")
            .arg("+%Y%m%d")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let (_, text) = version(&["build-date+commit-count"], &[]);
    assert_eq!(text.trim(), format!("0.3.1+{}-4", today.trim()));
    // A work tree with uncommitted changes is no commit's: its version says so.
    std::fs::write(repo.join("f"), "uncommitted").unwrap();
    let (code, text) = version(&["git-revision"], &[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("uncommitted changes"), "{text}");
    assert_eq!(
        text.lines().next().unwrap(),
        format!("0.3.1+{sha}-dirty"),
        "stdout first"
    );
    let (code, text) = version(&["moon-phase"], &[]);
    assert_eq!(code, 2, "a usage error");
    assert!(text.contains("unknown AUTO_VERSION token `moon-phase`"), "{text}");
}
