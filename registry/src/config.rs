//! The registry's settings and the policy that goes with them, in one place: flags (and the
//! `REL_*` variables, which `rel serve` reads into the same fields) win over the TOML file,
//! which wins over the defaults below. Resolving them reads the file, the publisher keys and
//! the token file, refuses a non-loopback address without tokens, and opens the store only if
//! it passes the write-once self-test.
//!
//! ```toml
//! listen = "127.0.0.1:7878"
//! store = "s3://releases/prod"          # or file:///srv/rel (default: file://rel-data)
//! publisher_keys = ["/etc/rel/ci.pub"]
//! tokens = "/etc/rel/tokens.toml"
//! insecure = false                      # allow a non-loopback address without tokens
//! accept_unsafe_store = false           # start even if the store ignores conditional writes
//! catalog_ttl_ms = 2000
//! gc_grace_seconds = 86400
//!
//! [limits]                              # what one client may hold (SPEC.md §7.6)
//! header_timeout_ms = 10000             # a request head within this, also between requests
//! body_timeout_ms = 10000               # no body byte for this long: 408
//! body_min_bytes_per_second = 16384     # a body slower than this on average (after the above): 408
//! max_connections = 512                 # more are answered 503 and closed
//! max_expensive_requests = 8            # packs, manifests, batches, deltas, missing queries at once; 503 beyond
//!
//! [s3]                                  # overrides for the AWS_* environment
//! endpoint = "http://127.0.0.1:9000"
//! region = "us-east-1"
//! allow_http = true
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rel_format::{PublicKey, TrustedKeys};
use serde::Deserialize;

use crate::Options;
use crate::auth::{TokenFileError, Tokens};
use crate::store::Store;

/// Where a registry listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7878";
/// Where a registry keeps its data unless told otherwise.
pub const DEFAULT_STORE: &str = "file://rel-data";
/// How long a replica trusts its listing of a release's manifests.
pub const DEFAULT_CATALOG_TTL: Duration = Duration::from_secs(2);
/// How long a chunk stays marked before garbage collection may sweep it.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(24 * 3600);

/// What one client may hold of the registry: time, connections, memory (SPEC.md §7.6).
///
/// Bodies are read only after the caller is authorised from its headers, with their size
/// limit enforced as they arrive; at most `max_expensive` requests that read a large body or
/// build a large answer run at once, so the memory in bodies is at most
/// `max_expensive` × 32 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A connection must deliver a whole request head within this long of opening or of the
    /// end of its previous response (so this is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long is refused (408).
    pub body_timeout: Duration,
    /// After `body_timeout`, a body must have averaged at least this many bytes a second.
    pub body_min_rate: u64,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// Pack uploads, manifest uploads, chunk batches and missing queries served at once;
    /// one more is answered 503 with `Retry-After`.
    pub max_expensive: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_min_rate: 16 * 1024,
            max_connections: 512,
            max_expensive: 8,
        }
    }
}

/// The `[limits]` table; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub header_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub body_min_bytes_per_second: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_expensive_requests: Option<usize>,
}

impl LimitsConfig {
    fn resolve(&self) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let limits = Limits {
            header_timeout: self.header_timeout_ms.map_or(d.header_timeout, Duration::from_millis),
            body_timeout: self.body_timeout_ms.map_or(d.body_timeout, Duration::from_millis),
            body_min_rate: self.body_min_bytes_per_second.unwrap_or(d.body_min_rate),
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_expensive: self.max_expensive_requests.unwrap_or(d.max_expensive),
        };
        let zero = |what: &str| ConfigError::Limit(format!("`{what}` must be more than 0"));
        if limits.header_timeout.is_zero() {
            return Err(zero("header_timeout_ms"));
        }
        if limits.body_timeout.is_zero() {
            return Err(zero("body_timeout_ms"));
        }
        if limits.max_connections == 0 {
            return Err(zero("max_connections"));
        }
        if limits.max_expensive == 0 {
            return Err(zero("max_expensive_requests"));
        }
        Ok(limits)
    }
}

/// What `rel serve` was given on its command line or in `REL_*` variables.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    pub listen: Option<String>,
    pub store: Option<String>,
    pub config: Option<PathBuf>,
    pub publisher_keys: Vec<PathBuf>,
    pub tokens: Option<PathBuf>,
    pub insecure: bool,
    pub accept_unsafe_store: bool,
}

/// The TOML file; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: Option<String>,
    pub store: Option<String>,
    #[serde(default)]
    pub publisher_keys: Vec<PathBuf>,
    pub tokens: Option<PathBuf>,
    pub insecure: Option<bool>,
    pub accept_unsafe_store: Option<bool>,
    pub catalog_ttl_ms: Option<u64>,
    pub gc_grace_seconds: Option<u64>,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// S3 settings by `object_store`'s `AmazonS3ConfigKey` names (`endpoint`, `region`,
    /// `allow_http`, `access_key_id`, `secret_access_key`, ...).
    #[serde(default)]
    pub s3: BTreeMap<String, toml::Value>,
}

/// Why settings or the store could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("`{0}` is not an address like 127.0.0.1:7878")]
    Listen(String),
    #[error("cannot read publisher key `{path}`: {message}")]
    PublisherKey { path: PathBuf, message: String },
    #[error(transparent)]
    Tokens(#[from] TokenFileError),
    #[error(
        "refusing to serve {0} without tokens: anyone could push; pass --tokens FILE, or --insecure to accept that"
    )]
    OpenOnNetwork(SocketAddr),
    #[error(
        "the store `{url}` failed the write-once self-test: {problem}. Versions could be overwritten and channels rolled back. Use a store that honours If-None-Match/If-Match, or pass --accept-unsafe-store"
    )]
    UnsafeStore { url: String, problem: String },
    #[error("[limits]: {0}")]
    Limit(String),
    #[error("cannot read config file `{path}`: {message}")]
    File { path: PathBuf, message: String },
    #[error("store URL `{url}`: {message}")]
    StoreUrl { url: String, message: String },
    #[error("cannot open the store `{url}`")]
    Open {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The settings, resolved.
#[derive(Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub store: String,
    pub s3: BTreeMap<String, toml::Value>,
    pub publishers: TrustedKeys,
    pub tokens: Tokens,
    pub accept_unsafe_store: bool,
    pub catalog_ttl: Duration,
    pub gc_grace: Duration,
    pub limits: Limits,
}

impl Settings {
    /// Flags over the file over the defaults; reads keys and tokens and applies the loopback
    /// guard.
    pub fn resolve(flags: &Flags) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(path) => Config::read(path)?,
            None => Config::default(),
        };
        let listen = flags
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen.parse().map_err(|_| ConfigError::Listen(listen.clone()))?;
        let key_paths = if flags.publisher_keys.is_empty() {
            file.publisher_keys
        } else {
            flags.publisher_keys.clone()
        };
        let mut keys = Vec::new();
        for path in key_paths {
            let bad = |message: String| ConfigError::PublisherKey {
                path: path.clone(),
                message,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
            keys.push(text.trim().parse::<PublicKey>().map_err(|e| bad(e.to_string()))?);
        }
        let tokens = match flags.tokens.clone().or(file.tokens) {
            Some(path) => Tokens::from_file(&path)?,
            None => Tokens::open(),
        };
        let limits = file.limits.resolve()?;
        let insecure = flags.insecure || file.insecure.unwrap_or(false);
        if tokens.is_open() && !listen.ip().is_loopback() && !insecure {
            return Err(ConfigError::OpenOnNetwork(listen));
        }
        Ok(Settings {
            listen,
            store: flags
                .store
                .clone()
                .or(file.store)
                .unwrap_or_else(|| DEFAULT_STORE.to_owned()),
            s3: file.s3,
            publishers: TrustedKeys::new(keys),
            tokens,
            accept_unsafe_store: flags.accept_unsafe_store || file.accept_unsafe_store.unwrap_or(false),
            catalog_ttl: file.catalog_ttl_ms.map_or(DEFAULT_CATALOG_TTL, Duration::from_millis),
            gc_grace: file.gc_grace_seconds.map_or(DEFAULT_GC_GRACE, Duration::from_secs),
            limits,
        })
    }

    /// Opens the store, refusing one that fails the write-once self-test unless
    /// `accept_unsafe_store`; returns it with the registry's options.
    pub async fn open(self) -> Result<(Store, Options), ConfigError> {
        let store = open_store(&self.store, &self.s3)?;
        if self.tokens.is_open() {
            tracing::warn!(addr = %self.listen, "no token file: development mode, every request is allowed");
        }
        if self.publishers.is_empty() {
            tracing::warn!(
                "no --publisher-key: any well-formed signed manifest is accepted; hosts enforce trust at pull time"
            );
        }
        if let Err(problem) = store.self_test().await {
            if !self.accept_unsafe_store {
                return Err(ConfigError::UnsafeStore {
                    url: store.url.clone(),
                    problem,
                });
            }
            tracing::error!(store = %store.url, %problem, "the store failed the write-once self-test; continuing because --accept-unsafe-store");
        }
        let options = Options {
            tokens: self.tokens,
            publishers: self.publishers,
            catalog_ttl: self.catalog_ttl,
            gc_grace: self.gc_grace,
            limits: self.limits,
        };
        Ok((store, options))
    }
}

impl Config {
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let err = |message: String| ConfigError::File {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        toml::from_str(&text).map_err(|e| err(e.to_string()))
    }
}

/// Opens a store by URL: `file://PATH` (relative paths allowed), `s3://BUCKET[/PREFIX]`, or
/// `memory://` (for tests and demos; nothing survives a restart).
pub fn open_store(url: &str, s3: &BTreeMap<String, toml::Value>) -> Result<Store, ConfigError> {
    let bad = |message: &str| ConfigError::StoreUrl {
        url: url.to_owned(),
        message: message.to_owned(),
    };
    let open = |source: Box<dyn std::error::Error + Send + Sync>| ConfigError::Open {
        url: url.to_owned(),
        source,
    };
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(bad("a file store needs a path: file:///srv/rel or file://rel-data"));
        }
        return Store::local(Path::new(path)).map_err(|e| open(Box::new(e)));
    }
    if url == "memory://" {
        return Ok(Store::new(Arc::new(object_store::memory::InMemory::new()), url));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("an S3 store needs a bucket: s3://BUCKET[/PREFIX]"));
        }
        let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in s3 {
            let value = match value {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let key: object_store::aws::AmazonS3ConfigKey =
                key.parse().map_err(|_| bad(&format!("unknown [s3] setting `{key}`")))?;
            builder = builder.with_config(key, value);
        }
        let s3 = builder.build().map_err(|e| open(Box::new(e)))?;
        let store: Arc<dyn object_store::ObjectStore> = if prefix.trim_matches('/').is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix.trim_matches('/')))
        };
        return Ok(Store::new(store, url));
    }
    Err(bad("use file://PATH, s3://BUCKET[/PREFIX] or memory://"))
}
