//! The registry library served in-process and the `rel` library as its client, together.

use std::process::ExitCode;
use std::sync::Arc;

use rel_testkit::fixtures::Fixture;

/// Removes what a developer's shell could hand `rel`: `REL_*` settings, `AUTO_VERSION`,
/// `BRANCH` and the XDG folders where its config and state live.
fn clean_environment() {
    let inherited: Vec<_> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| {
            let k = k.to_string_lossy();
            k.starts_with("REL_") || k.starts_with("XDG_") || k == "AUTO_VERSION" || k == "BRANCH"
        })
        .collect();
    for k in inherited {
        // SAFETY: this binary's only test calls it first, before it starts any thread, and
        // nothing else in the process reads the environment meanwhile.
        #[allow(unsafe_code)]
        unsafe {
            std::env::remove_var(k);
        }
    }
}

/// Serves an in-memory registry on a loopback port from its own thread.
fn registry() -> (String, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let store = rel_registry::Store::new(Arc::new(object_store::memory::InMemory::new()), "memory://");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let state = rel_registry::AppState::new(store, rel_registry::Options::default());
            rel_registry::serve(listener, state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
    });
    (format!("http://{}", addr_rx.recv().unwrap()), tx)
}

/// `rel` in-process, with an explicit (empty) client config so that none is read from HOME.
fn rel(config: &str, args: &[&str]) -> ExitCode {
    rel::run(
        ["rel", "--client-config", config]
            .into_iter()
            .chain(args.iter().copied()),
    )
}

#[test]
fn push_then_pull_through_the_libraries() {
    clean_environment();
    let (url, _stop) = registry();
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    // The client config and state live in the test's folder too.
    let config = d("config.toml");
    std::fs::write(&config, "").unwrap();
    let fixture = Fixture::demo();
    let versions = fixture.versions();
    assert_eq!(
        rel(&config, &["keygen", "e2e", "--out-dir", &d("keys"), "--quiet"]),
        ExitCode::SUCCESS
    );
    for v in &versions {
        let tarball = fixture.tarball(v);
        let code = rel(
            &config,
            &[
                "push",
                tarball.to_str().unwrap(),
                "--registry",
                &url,
                "--key",
                &d("keys/e2e.key"),
                "--cache-dir",
                &d("push-cache"),
                "--quiet",
            ],
        );
        assert_eq!(code, ExitCode::SUCCESS);
    }
    let last = versions.last().unwrap();
    let args = [
        "pull",
        "demo",
        "--version",
        last,
        "--into",
        &d("release"),
        "--registry",
        &url,
        "--trusted-key",
        &d("keys/e2e.pub"),
        "--cache-dir",
        &d("pull-cache"),
        "--quiet",
    ];
    assert_eq!(rel(&config, &args), ExitCode::SUCCESS);
    let rel_file = std::fs::read_to_string(dir.path().join(format!("release/releases/{last}/demo.rel"))).unwrap();
    let spec = rel_format::release::ReleaseSpec::parse("demo.rel", &rel_file).unwrap();
    assert_eq!(spec.version.as_str(), last);
    // A second pull into the same place is refused, and leaves the first intact.
    assert_eq!(rel(&config, &args), ExitCode::from(1));
    assert!(dir.path().join("release/lib").is_dir());
}
