//! The registry library served in-process and the `rel` library as its client, together.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

fn fixtures() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/out");
    assert!(dir.join("VERSIONS").exists(), "run fixtures/build.sh first");
    dir
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

fn rel(args: &[&str]) -> ExitCode {
    rel::run(std::iter::once("rel").chain(args.iter().copied()))
}

#[test]
fn push_then_pull_through_the_libraries() {
    let (url, _stop) = registry();
    let dir = tempfile::tempdir().unwrap();
    let d = |p: &str| dir.path().join(p).to_str().unwrap().to_owned();
    let versions: Vec<String> = std::fs::read_to_string(fixtures().join("VERSIONS"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        rel(&["keygen", "e2e", "--out-dir", &d("keys"), "--quiet"]),
        ExitCode::SUCCESS
    );
    for v in &versions {
        let tarball = fixtures().join(format!("demo-{v}.tar.gz"));
        let code = rel(&[
            "push",
            tarball.to_str().unwrap(),
            "--registry",
            &url,
            "--key",
            &d("keys/e2e.key"),
            "--cache-dir",
            &d("push-cache"),
            "--quiet",
        ]);
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
    assert_eq!(rel(&args), ExitCode::SUCCESS);
    let rel_file = std::fs::read_to_string(dir.path().join(format!("release/releases/{last}/demo.rel"))).unwrap();
    let spec = rel_format::release::ReleaseSpec::parse("demo.rel", &rel_file).unwrap();
    assert_eq!(spec.version.as_str(), last);
    // A second pull into the same place is refused, and leaves the first intact.
    assert_eq!(rel(&args), ExitCode::from(1));
    assert!(dir.path().join("release/lib").is_dir());
}
