//! Environment variables rel reads, one place.

/// Registry URL.
pub const REL_REGISTRY: &str = "REL_REGISTRY";
/// Bearer token.
pub const REL_TOKEN: &str = "REL_TOKEN";
/// Secret key file for signing.
pub const REL_KEY: &str = "REL_KEY";
/// Trusted public keys (files or `name:base64`, comma-separated).
pub const REL_TRUSTED_KEYS: &str = "REL_TRUSTED_KEYS";
/// Client config file.
pub const REL_CONFIG: &str = "REL_CONFIG";
/// Chunk cache directory.
pub const REL_CACHE_DIR: &str = "REL_CACHE_DIR";
/// Where `pull --channel` remembers the highest sequence seen per channel.
pub const REL_STATE_DIR: &str = "REL_STATE_DIR";
/// `rel serve` settings.
pub const REL_LISTEN: &str = "REL_LISTEN";
pub const REL_STORE: &str = "REL_STORE";
pub const REL_SERVER_CONFIG: &str = "REL_SERVER_CONFIG";
pub const REL_PUBLISHER_KEYS: &str = "REL_PUBLISHER_KEYS";
pub const REL_TOKENS: &str = "REL_TOKENS";
