//! Registry settings: from flags, `REL_*` environment variables and a TOML file, in that
//! order of precedence (the CLI merges flags and environment; this module reads the file
//! and opens the store).
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
//! [s3]                                  # overrides for the AWS_* environment
//! endpoint = "http://127.0.0.1:9000"
//! region = "us-east-1"
//! allow_http = true
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::store::Store;

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
    /// S3 settings by `object_store`'s `AmazonS3ConfigKey` names (`endpoint`, `region`,
    /// `allow_http`, `access_key_id`, `secret_access_key`, ...).
    #[serde(default)]
    pub s3: BTreeMap<String, toml::Value>,
}

/// Why settings or the store could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
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
