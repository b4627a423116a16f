//! The registry's storage: write disciplines over `object_store`.
//!
//! The keys themselves are in [`crate::keys`].
//!
//! Content goes first and pointers last: a pack, then its index (which makes its chunks
//! visible), then the manifest (which the registry only
//! accepts when every chunk it names is stored), then channel pointers. Manifests are
//! created with `PutMode::Create`, so of two racing pushes of one artifact exactly one wins.
//! Channel pointers are swapped with `PutMode::Update` on stores that support it; a local
//! folder has no such primitive in `object_store`, so there the swap holds an exclusive
//! file lock across processes while it compares and writes.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use rel_format::Digest;

/// A store and what it can do.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    /// For a local folder: where the lock files for compare-and-swap live.
    local_root: Option<PathBuf>,
    /// Shown in logs and errors: `file:///srv/rel`, `s3://bucket/prefix`, `memory://`.
    pub url: String,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("`{0}` is already stored")]
    AlreadyExists(String),
    #[error("`{0}` changed since it was read")]
    Conflict(String),
    #[error("`{0}` is not stored")]
    NotFound(String),
    #[error("storage error on `{key}`")]
    Backend {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("`{key}` gave {actual} bytes where {expected} were asked for")]
    ShortRead { key: String, expected: u64, actual: u64 },
    #[error("the store holds something unreadable: {0}")]
    Corrupt(String),
    #[error("cannot lock `{path}` for compare-and-swap")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The version of an object, for compare-and-swap.
pub type ObjectVersion = UpdateVersion;

fn backend(key: &Path) -> impl FnOnce(object_store::Error) -> StoreError + '_ {
    move |source| match source {
        object_store::Error::NotFound { .. } => StoreError::NotFound(key.to_string()),
        object_store::Error::AlreadyExists { .. } => StoreError::AlreadyExists(key.to_string()),
        object_store::Error::Precondition { .. } => StoreError::Conflict(key.to_string()),
        source => StoreError::Backend {
            key: key.to_string(),
            source,
        },
    }
}

/// An object's bytes and version.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Bytes,
    pub version: ObjectVersion,
    pub last_modified: std::time::SystemTime,
}

/// A listed object.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: Path,
    pub size: u64,
    pub last_modified: std::time::SystemTime,
    pub e_tag: Option<String>,
}

impl Store {
    /// A store over any `ObjectStore` (InMemory, S3...).
    pub fn new(inner: Arc<dyn ObjectStore>, url: impl Into<String>) -> Self {
        Self {
            inner,
            local_root: None,
            url: url.into(),
        }
    }

    /// A store over a local folder, created if needed.
    pub fn local(root: &std::path::Path) -> Result<Self, StoreError> {
        let io = |source| StoreError::Lock {
            path: root.to_owned(),
            source,
        };
        std::fs::create_dir_all(root.join(".locks")).map_err(io)?;
        let root = root.canonicalize().map_err(io)?;
        let fs =
            object_store::local::LocalFileSystem::new_with_prefix(&root).map_err(|source| StoreError::Backend {
                key: root.display().to_string(),
                source,
            })?;
        Ok(Self {
            inner: Arc::new(fs),
            url: format!("file://{}", root.display()),
            local_root: Some(root),
        })
    }

    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    pub async fn get(&self, key: &Path) -> Result<Object, StoreError> {
        let result = self.inner.get(key).await.map_err(backend(key))?;
        let meta = result.meta.clone();
        let bytes = result.bytes().await.map_err(backend(key))?;
        Ok(Object {
            bytes,
            version: UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            },
            last_modified: meta.last_modified.into(),
        })
    }

    /// The bytes of `key` in `range`; a store that returns fewer is reported as a short read.
    pub async fn get_range(&self, key: &Path, range: std::ops::Range<u64>) -> Result<Bytes, StoreError> {
        let want = range.end - range.start;
        let bytes = self.inner.get_range(key, range).await.map_err(backend(key))?;
        if bytes.len() as u64 != want {
            return Err(StoreError::ShortRead {
                key: key.to_string(),
                expected: want,
                actual: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    pub async fn exists(&self, key: &Path) -> Result<bool, StoreError> {
        match self.inner.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(backend(key)(e)),
        }
    }

    /// Writes `bytes` (one buffer, or several in order) only if `key` does not exist yet.
    pub async fn put_create(&self, key: &Path, bytes: impl Into<PutPayload>) -> Result<(), StoreError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        self.inner
            .put_opts(key, bytes.into(), opts)
            .await
            .map_err(backend(key))?;
        Ok(())
    }

    /// Writes `bytes` unconditionally (markers that may be set again).
    pub async fn put_overwrite(&self, key: &Path, bytes: impl Into<PutPayload>) -> Result<(), StoreError> {
        self.inner.put(key, bytes.into()).await.map_err(backend(key))?;
        Ok(())
    }

    pub async fn delete(&self, key: &Path) -> Result<(), StoreError> {
        match self.inner.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(key)(e)),
        }
    }

    /// Replaces `key` only if it is still at `expected` (or, with `None`, does not exist).
    pub async fn compare_and_swap(
        &self,
        key: &Path,
        expected: Option<ObjectVersion>,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        let Some(root) = &self.local_root else {
            let mode = match expected {
                None => PutMode::Create,
                Some(v) => PutMode::Update(v),
            };
            let opts = PutOptions {
                mode,
                ..Default::default()
            };
            return match self.inner.put_opts(key, PutPayload::from_bytes(bytes), opts).await {
                Ok(_) => Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) => Err(StoreError::Conflict(key.to_string())),
                Err(e) => Err(backend(key)(e)),
            };
        };
        // Local folder: an exclusive lock per key, held across processes while comparing.
        let lock_path = root.join(".locks").join(Digest::of(key.as_ref().as_bytes()).hex());
        let (key, root_lock) = (key.clone(), lock_path.clone());
        let store = self.clone();
        let lock = tokio::task::spawn_blocking(move || -> Result<std::fs::File, std::io::Error> {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&root_lock)?;
            f.lock()?;
            Ok(f)
        })
        .await
        .expect("lock task does not panic")
        .map_err(|source| StoreError::Lock {
            path: lock_path,
            source,
        })?;
        let current = match store.inner.head(&key).await {
            Ok(meta) => Some(UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            }),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(backend(&key)(e)),
        };
        let result = if current.as_ref().map(|c| &c.e_tag) == expected.as_ref().map(|e| &e.e_tag) {
            store.put_overwrite(&key, bytes).await
        } else {
            Err(StoreError::Conflict(key.to_string()))
        };
        drop(lock);
        result
    }

    /// Lists every object under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>, StoreError> {
        let prefix = Path::from(prefix);
        self.inner
            .list(Some(&prefix))
            .map_ok(|m| Listed {
                key: m.location,
                size: m.size,
                last_modified: m.last_modified.into(),
                e_tag: m.e_tag,
            })
            .try_collect()
            .await
            .map_err(backend(&prefix))
    }

    /// Leftovers of interrupted writes on a local folder, last written before `before`:
    /// `object_store` writes `KEY#N` and renames it to `KEY`, and a process killed in
    /// between leaves the `#N` file, which listings do not show. Returns each with its size.
    /// Other stores have none (a PUT is whole or absent).
    pub async fn staging_debris(&self, before: std::time::SystemTime) -> Result<Vec<(PathBuf, u64)>, StoreError> {
        let Some(root) = self.local_root.clone() else {
            return Ok(Vec::new());
        };
        let walk = move || {
            let mut found = Vec::new();
            let mut dirs = vec![root.clone()];
            while let Some(dir) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else { continue };
                for entry in entries.flatten() {
                    let path = entry.path();
                    let Ok(meta) = entry.metadata() else { continue };
                    if meta.is_dir() {
                        if path != root.join(".locks") {
                            dirs.push(path);
                        }
                        continue;
                    }
                    let name = entry.file_name();
                    let staged = name
                        .to_str()
                        .and_then(|n| n.rsplit_once('#'))
                        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                    if staged && meta.modified().is_ok_and(|m| m < before) {
                        found.push((path, meta.len()));
                    }
                }
            }
            found
        };
        tokio::task::spawn_blocking(walk)
            .await
            .map_err(|e| StoreError::Corrupt(format!("walking the store stopped: {e}")))
    }

    /// Deletes a staging leftover found by [`staging_debris`](Self::staging_debris).
    pub async fn delete_debris(&self, path: PathBuf) -> Result<(), StoreError> {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Lock { path, source }),
        }
    }

    /// The child "directories" of `prefix` (release names under `manifests/`).
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = Path::from(prefix);
        let listing = self
            .inner
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(backend(&prefix))?;
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect())
    }

    /// Checks that the store really refuses a second create-only write and a stale
    /// compare-and-swap. Some S3 servers ignore the conditional headers and silently
    /// overwrite; a registry on such a store would lose write-once and rollback protection.
    pub async fn self_test(&self) -> Result<(), String> {
        let nonce = Digest::of(format!("{:?}{}", std::time::SystemTime::now(), std::process::id()).as_bytes()).hex();
        let key = crate::keys::selftest(&nonce[..24]);
        let result = self.self_test_on(&key).await;
        let _ = self.delete(&key).await;
        result
    }

    async fn self_test_on(&self, key: &Path) -> Result<(), String> {
        let err = |e: StoreError| {
            format!(
                "{e}: {}",
                std::error::Error::source(&e)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            )
        };
        self.put_create(key, Bytes::from_static(b"first")).await.map_err(err)?;
        match self.put_create(key, Bytes::from_static(b"second")).await {
            Err(StoreError::AlreadyExists(_)) => {}
            Ok(()) => {
                return Err("a second create-only write (If-None-Match: *) succeeded and overwrote the object".into());
            }
            Err(e) => return Err(format!("a second create-only write failed oddly: {}", err(e))),
        }
        let stored = self.get(key).await.map_err(err)?;
        if stored.bytes.as_ref() != b"first" {
            return Err("a refused create-only write still changed the object".into());
        }
        let stale = UpdateVersion {
            e_tag: Some("\"rel-selftest-stale\"".into()),
            version: None,
        };
        match self
            .compare_and_swap(key, Some(stale), Bytes::from_static(b"third"))
            .await
        {
            Err(StoreError::Conflict(_)) => {}
            Ok(()) => return Err("a compare-and-swap with a stale version (If-Match) succeeded".into()),
            Err(e) => return Err(format!("a stale compare-and-swap failed oddly: {}", err(e))),
        }
        self.compare_and_swap(key, Some(stored.version), Bytes::from_static(b"fourth"))
            .await
            .map_err(err)?;
        Ok(())
    }
}
