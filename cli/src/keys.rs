//! Key files as arguments: a secret key (`NAME.key`) and trusted public keys (`NAME.pub` or
//! inline `name:base64`) are read and parsed while the command line is, so a missing file or
//! a key of the wrong kind is a usage error (exit 2) that names the file and says which kind
//! of key it is.

use std::path::{Path, PathBuf};

use rel_format::{PublicKey, SecretKey};

/// A secret key and the file it came from.
#[derive(Debug, Clone)]
pub struct SecretKeyFile {
    pub path: PathBuf,
    pub key: std::sync::Arc<SecretKey>,
}

impl SecretKeyFile {
    /// Reads and parses `NAME.key` (clap's value parser for `--key` and `REL_KEY`).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::read(Path::new(text))
    }

    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let key = text
            .trim()
            .parse::<SecretKey>()
            .map_err(|e| format!("`{}`: {e}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            key: std::sync::Arc::new(key),
        })
    }
}

/// A trusted public key: a `NAME.pub` file, or the key itself as `name:base64` (clap's value
/// parser for `--trusted-key` and `REL_TRUSTED_KEYS`).
pub fn parse_trusted_key(item: &str) -> Result<PublicKey, String> {
    let path = Path::new(item);
    if path.is_file() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{item}`: {e}"))?;
        return text.trim().parse().map_err(|e| format!("`{item}`: {e}"));
    }
    if !item.contains(':') || item.contains('/') {
        return Err(format!(
            "`{item}` is no file, nor a key written `name:base64`: pass the publisher's NAME.pub file"
        ));
    }
    item.parse().map_err(|e: rel_format::SignatureError| e.to_string())
}
