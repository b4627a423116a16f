//! Usage mistakes exit 2 before any work: not one request reaches the registry.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{Home, tarball, versions};

/// A listener that counts the connections it is offered and answers none of them usefully.
fn counting_registry() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, count)
}

#[test]
fn usage_errors_exit_2_before_any_request() {
    let home = Home::new();
    let (url, requests) = counting_registry();
    let v = &versions()[0];
    let release = tarball(v);
    let release = release.to_str().unwrap();
    let public = home.path("keys/ci.pub");
    let public = public.to_str().unwrap();
    let pull = |extra: &[&'static str]| -> Vec<&str> {
        [&["pull", "demo", "--version", "1.0", "-o", "x.tar.gz"][..], extra].concat()
    };
    let cases: Vec<Vec<&str>> = vec![
        vec!["push", release, "--release-version", "1.0/x"],
        vec!["push", release, "--kind", "upgrade", "--from", "not a version"],
        vec!["push", release, "--key", public],
        vec!["push", release, "--key", "/nonexistent/ci.key"],
        vec!["push", release, "--channel", "-prod"],
        vec!["pull", "demo", "--version", "1.0/../x", "-o", "x.tar.gz"],
        pull(&["--trusted-key", "/nonexistent.pub"]),
        pull(&["--trusted-key", "no-colon-here"]),
        pull(&["--channel", "prod"]),
        vec!["pull", "-demo", "--version", "1.0", "-o", "x.tar.gz"],
        vec![
            "promote",
            "demo",
            v,
            "--channel",
            "production",
            "--expires-in",
            "3 fortnights",
        ],
        vec!["promote", "demo", "1..0", "--channel", "production"],
        vec!["show", "demo", "v 1"],
        vec!["path", "demo", "--from", "1.0", "--to", "2.0/x"],
        vec!["yank", "demo", v, "--upgrade-from", "a b"],
        vec!["upgrade", "demo", "--to", "1.0/x", "--root", "/tmp"],
        vec!["install", "demo", "--version", "1 0", "--root", "/tmp/x"],
        vec!["build-upgrade", "demo", "--from", v, "--to", v],
        vec!["build-upgrade", "demo", "--from", v, "--to", v, "-o", "x.tar"],
        vec![
            "build-upgrade",
            "demo",
            "--from",
            "no/such/file.tar.gz",
            "--to",
            v,
            "-o",
            "x.tar",
        ],
        vec!["appup", "no/such/release.tar.gz", release, "--out", "appups"],
        vec!["version", "--auto-version", "moon-phase", "--base", "1.0.0"],
        vec!["--registry", "not a url", "versions", "demo"],
    ];

    for args in &cases {
        let out = home
            .rel(None)
            .env("REL_REGISTRY", &url)
            .env_remove("REL_KEY")
            .current_dir(home.path(""))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "rel {args:?} should be a usage error: {stderr}"
        );
        assert!(stderr.starts_with("error: "), "rel {args:?}: {stderr}");
        assert_eq!(
            requests.load(Ordering::SeqCst),
            0,
            "rel {args:?} reached the registry: {stderr}"
        );
    }
    // The counter does count: a well-formed command reaches the registry.
    let out = home
        .rel(None)
        .env("REL_REGISTRY", &url)
        .args(["versions", "demo"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(requests.load(Ordering::SeqCst) > 0, "the counting registry saw nothing");
    // A key of the wrong kind says which kind it is.
    let out = home
        .rel(None)
        .env("REL_REGISTRY", &url)
        .args(["push", release, "--key", public])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is a public key (a NAME.pub file)"), "{stderr}");
}
