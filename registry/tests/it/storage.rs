//! One conformance suite for every backend: InMemory, a local folder and a real S3 server.

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use rel_registry::store::{Store, StoreError};

async fn conformance(store: Store) {
    let key = Path::from("manifests/demo/1.0.0/release.json");

    // Write-once.
    store.put_create(&key, Bytes::from_static(b"one")).await.unwrap();
    let err = store.put_create(&key, Bytes::from_static(b"two")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err:?}");
    let obj = store.get(&key).await.unwrap();
    assert_eq!(obj.bytes.as_ref(), b"one");
    assert!(store.exists(&key).await.unwrap());
    assert!(!store.exists(&Path::from("nope")).await.unwrap());
    assert!(matches!(
        store.get(&Path::from("nope")).await,
        Err(StoreError::NotFound(_))
    ));

    // Compare-and-swap: create when absent, replace only from the current version.
    let ch = Path::from("channels/demo/production.json");
    store
        .compare_and_swap(&ch, None, Bytes::from_static(b"seq1"))
        .await
        .unwrap();
    let err = store
        .compare_and_swap(&ch, None, Bytes::from_static(b"again"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let v1 = store.get(&ch).await.unwrap().version;
    store
        .compare_and_swap(&ch, Some(v1.clone()), Bytes::from_static(b"seq2"))
        .await
        .unwrap();
    let err = store
        .compare_and_swap(&ch, Some(v1), Bytes::from_static(b"stale"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get(&ch).await.unwrap().bytes.as_ref(), b"seq2");

    // Racing creators: exactly one wins.
    let race = Path::from("manifests/demo/2.0.0/release.json");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, race) = (store.clone(), race.clone());
            tokio::spawn(async move { store.put_create(&race, Bytes::from(format!("writer {i}"))).await })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => wins += 1,
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(wins, 1);

    // Listings.
    let listed = store.list("manifests/demo").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(store.list_dirs("manifests").await.unwrap(), vec!["demo".to_owned()]);

    // Delete is idempotent.
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert!(!store.exists(&key).await.unwrap());

    store.self_test().await.unwrap();
}

#[tokio::test]
async fn in_memory() {
    conformance(Store::new(Arc::new(object_store::memory::InMemory::new()), "memory://")).await;
}

#[tokio::test]
async fn local_folder() {
    let dir = tempfile::tempdir().unwrap();
    conformance(Store::local(&dir.path().join("rel-data")).unwrap()).await;
}

#[tokio::test]
async fn s3_moto() {
    let moto = rel_testkit::s3::Moto::start();
    conformance(crate::support::s3_store(&moto)).await;
}

/// A store that overwrites on create-only writes (as Garage does) fails the self-test.
#[tokio::test]
async fn self_test_catches_a_store_that_ignores_conditions() {
    #[derive(Debug)]
    struct Careless(object_store::memory::InMemory);
    impl std::fmt::Display for Careless {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("careless")
        }
    }
    #[async_trait::async_trait]
    impl object_store::ObjectStore for Careless {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            _opts: object_store::PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            // Ignores the mode, like an S3 server that drops If-None-Match.
            self.0
                .put_opts(location, payload, object_store::PutOptions::default())
                .await
        }
        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.0.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &Path,
            options: object_store::GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            self.0.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
            self.0.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
            self.0.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<object_store::ListResult> {
            self.0.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.0.copy_opts(from, to, options).await
        }
    }
    let store = Store::new(Arc::new(Careless(object_store::memory::InMemory::new())), "careless://");
    let err = store.self_test().await.unwrap_err();
    assert!(
        err.contains("a second create-only write (If-None-Match: *) succeeded"),
        "{err}"
    );
}
