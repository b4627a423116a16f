//! Over a real 127.0.0.1:0 listener: racing pushes on a local folder and on S3.

use crate::support::{artifact, key, noise};
use rel_format::Kind;
use rel_registry::{AppState, Limits, Options, Store, serve};

/// Serves `store` on a loopback port until the returned sender is dropped.
async fn start(store: Store) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // Sixteen pushes at once, all admitted: this is about the store's write-once, not the
    // registry's limit on expensive requests (tested in `hostile`).
    let limits = Limits {
        max_expensive: 16,
        ..Limits::default()
    };
    let state = AppState::new(
        store,
        Options {
            limits,
            ..Options::default()
        },
    );
    tokio::spawn(async move {
        serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (url, tx)
}

async fn race(store: Store) {
    let (url, _stop) = start(store).await;
    let client = reqwest::Client::new();
    // Sixteen different artifacts claiming the same name, version and kind.
    let artifacts: Vec<_> = (0..16)
        .map(|i| artifact("demo", "1.0.0", Kind::Release, &[], &noise(100 + i, 40_000), &key("ci")))
        .collect();
    for a in &artifacts {
        let r = client
            .post(format!("{url}/v1/packs"))
            .body(crate::support::pack_of(&a.chunks))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(artifacts.len()));
    let tasks: Vec<_> = artifacts
        .iter()
        .map(|a| {
            let (client, url, body, barrier) = (client.clone(), url.clone(), a.envelope.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                client
                    .put(format!("{url}/v1/manifests"))
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 15, "{statuses:?}");

    // The stored manifest is one of the pushed ones, whole and verifiable.
    let stored = client
        .get(format!("{url}/v1/releases/demo/versions/1.0.0/release"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        artifacts.iter().any(|a| a.envelope == stored.as_ref()),
        "the stored manifest is not any pushed one"
    );
    let trusted = rel_format::TrustedKeys::new([key("ci").public()]);
    let expected = rel_format::Expected {
        name: "demo".into(),
        version: "1.0.0".parse().unwrap(),
        kind: Kind::Release,
        from: None,
    };
    rel_format::signing::verify(&stored, &trusted, &expected).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_racing_pushes_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    race(Store::local(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_racing_pushes_s3() {
    let moto = rel_testkit::s3::Moto::start();
    race(crate::support::s3_store(&moto)).await;
}
