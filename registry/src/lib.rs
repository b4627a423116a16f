//! The rel registry: signed, content-addressed OTP release artifacts over `object_store`.
//!
//! It keeps no state of its own: chunk packs, manifests, channel pointers and yank markers all
//! live in the object store (a local folder by default, S3 in production), so several
//! replicas can serve one bucket. Each replica caches only what is immutable or what it can
//! re-list ([`catalog`]). The HTTP API is SPEC.md §7; `rel serve` runs it.

#![forbid(unsafe_code)]

pub mod auth;
pub mod catalog;
pub mod config;
pub mod error;
pub mod gc;
pub mod keys;
pub mod metrics;
pub mod packs;
mod routes;
mod server;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use rel_format::TrustedKeys;
use tokio::net::TcpListener;

pub use config::{Config, ConfigError, Limits};
pub use error::ApiError;
pub use store::{Store, StoreError};

/// Everything a handler needs; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub store: Store,
    pub catalog: catalog::Catalog,
    /// Which pack holds each chunk.
    pub packs: packs::Packs,
    pub tokens: auth::Tokens,
    /// Keys whose signatures the registry accepts on manifests and channel pointers. Empty:
    /// any well-formed signed document is accepted and trust is left to hosts.
    pub publishers: TrustedKeys,
    pub metrics: metrics::Metrics,
    /// Chunks are swept no sooner than this after garbage collection marked them.
    pub gc_grace: Duration,
    pub(crate) gc: gc::GcState,
    /// What one client may hold: timeouts, connections, requests at once.
    pub limits: Limits,
    /// Permits for expensive requests (SPEC.md §7.6).
    pub(crate) expensive: Arc<tokio::sync::Semaphore>,
    /// Deltas computed lately, by request (SPEC.md §4.2): a fleet upgrading from one version
    /// asks for the same ones, and each is computed once however many ask at once.
    pub(crate) deltas: quick_cache::sync::Cache<rel_format::Digest, bytes::Bytes, FrameWeight>,
    /// The registry's identity, read from (or first written to) the store.
    identity: tokio::sync::OnceCell<String>,
    /// The clock, replaceable in tests.
    pub now: fn() -> SystemTime,
}

/// Bytes of delta frames a replica keeps.
const DELTA_CACHE_BYTES: u64 = 64 << 20;

/// A kept delta weighs its frame and its key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameWeight;

impl quick_cache::Weighter<rel_format::Digest, bytes::Bytes> for FrameWeight {
    fn weight(&self, _: &rel_format::Digest, frame: &bytes::Bytes) -> u64 {
        frame.len() as u64 + 64
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// How a registry is set up, beyond its store.
#[derive(Debug)]
pub struct Options {
    pub tokens: auth::Tokens,
    pub publishers: TrustedKeys,
    pub catalog_ttl: Duration,
    pub gc_grace: Duration,
    pub limits: Limits,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tokens: auth::Tokens::open(),
            publishers: TrustedKeys::default(),
            catalog_ttl: config::DEFAULT_CATALOG_TTL,
            gc_grace: config::DEFAULT_GC_GRACE,
            limits: Limits::default(),
        }
    }
}

impl AppState {
    pub fn new(store: Store, options: Options) -> Self {
        AppState(Arc::new(Inner {
            catalog: catalog::Catalog::new(store.clone(), options.catalog_ttl),
            packs: packs::Packs::new(store.clone()),
            store,
            tokens: options.tokens,
            publishers: options.publishers,
            metrics: metrics::Metrics::default(),
            gc_grace: options.gc_grace,
            gc: gc::GcState::default(),
            expensive: Arc::new(tokio::sync::Semaphore::new(options.limits.max_expensive)),
            deltas: quick_cache::sync::Cache::with_weighter(4096, DELTA_CACHE_BYTES, FrameWeight),
            identity: tokio::sync::OnceCell::new(),
            limits: options.limits,
            now: SystemTime::now,
        }))
    }

    /// The registry's identity (SPEC.md §6.2): 32 hex digits stored at `registry.json`, made
    /// at random by the first replica to serve the store; every replica reads the same.
    pub async fn identity(&self) -> Result<String, StoreError> {
        self.identity
            .get_or_try_init(|| async {
                let key = object_store::path::Path::from(keys::IDENTITY);
                let read = |bytes: &[u8]| {
                    serde_json::from_slice::<rel_format::api::RegistryInfo>(bytes)
                        .ok()
                        .filter(|i| rel_format::channel::is_valid_registry_id(&i.id))
                        .map(|i| i.id)
                };
                match self.store.get(&key).await {
                    Ok(obj) => {
                        return read(&obj.bytes)
                            .ok_or_else(|| StoreError::Corrupt(format!("`{key}` is not {{\"id\": \"<32 hex>\"}}")));
                    }
                    Err(StoreError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
                let mut random = [0u8; 16];
                getrandom::getrandom(&mut random)
                    .map_err(|e| StoreError::Corrupt(format!("no randomness for an identity: {e}")))?;
                let info = rel_format::api::RegistryInfo {
                    id: hex::encode(random),
                };
                let bytes = bytes::Bytes::from(serde_json::to_vec(&info).expect("serialises"));
                match self.store.put_create(&key, bytes).await {
                    Ok(()) => Ok(info.id),
                    // Another replica made it first: theirs is the identity.
                    Err(StoreError::AlreadyExists(_)) => {
                        let obj = self.store.get(&key).await?;
                        read(&obj.bytes)
                            .ok_or_else(|| StoreError::Corrupt(format!("`{key}` is not {{\"id\": \"<32 hex>\"}}")))
                    }
                    Err(e) => Err(e),
                }
            })
            .await
            .cloned()
    }

    /// The current time, to the second.
    pub fn now_timestamp(&self) -> rel_format::Timestamp {
        let secs = (self.now)()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        rel_format::Timestamp::from_unix(secs as i64).expect("the clock is within 0000..9999")
    }
}

/// The registry's HTTP application.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then finishes in-flight
/// requests. Connections are held to `state.limits` (SPEC.md §7.6): a request head within the
/// header timeout (also between requests), bodies that keep coming, and at most
/// `max_connections` at once.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run(listener, state, shutdown).await
}
