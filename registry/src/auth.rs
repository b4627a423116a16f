//! Bearer tokens with scopes per release-name glob.
//!
//! Tokens are kept hashed (sha256) in a TOML file, each with a name, scopes, release-name
//! globs and an expiry; there are no eternal tokens. The file is re-read when its contents
//! change, so revoking a token is deleting its entry; a file that is deleted or broken makes
//! no token valid (it fails closed). With no token file the registry is in
//! development mode: everything is allowed, which `serve` only permits on a loopback
//! address unless told `--insecure`.
//!
//! ```toml
//! anonymous_pull = false
//!
//! [[tokens]]
//! name = "ci"
//! sha256 = "<hex of sha256 of the token>"
//! scopes = ["push"]
//! releases = ["demo", "shop_*"]
//! expires = "2027-01-01T00:00:00Z"
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use rel_format::Timestamp;
use serde::Deserialize;

use crate::error::ApiError;

/// What a token may do. `admin` implies `push`, and `push` implies `pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Pull,
    Push,
    Admin,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Pull => "pull",
            Scope::Push => "push",
            Scope::Admin => "admin",
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub sha256: String,
    pub scopes: Vec<Scope>,
    #[serde(default = "all_releases")]
    pub releases: Vec<String>,
    pub expires: Timestamp,
}

fn all_releases() -> Vec<String> {
    vec!["*".into()]
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    #[serde(default)]
    pub anonymous_pull: bool,
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
}

/// Why a token file was refused.
#[derive(Debug, thiserror::Error)]
#[error("token file `{path}`: {message}")]
pub struct TokenFileError {
    pub path: PathBuf,
    pub message: String,
}

impl TokenFile {
    pub fn parse(path: &Path, text: &str) -> Result<Self, TokenFileError> {
        let err = |message: String| TokenFileError {
            path: path.to_owned(),
            message,
        };
        let file: TokenFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        for t in &file.tokens {
            if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(err(format!(
                    "token `{}`: sha256 must be 64 lowercase hex digits",
                    t.name
                )));
            }
            if t.scopes.is_empty() {
                return Err(err(format!("token `{}` has no scopes", t.name)));
            }
        }
        Ok(file)
    }
}

/// Who is asking.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Development mode: no token file, everything allowed.
    Open,
    Anonymous {
        pull_allowed: bool,
    },
    Token(TokenEntry),
}

/// `*` matches any run of characters, `?` one character; everything else itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

impl Principal {
    /// Allows the request, or says why not. `name` is the release concerned, if any.
    pub fn require(&self, scope: Scope, name: Option<&str>) -> Result<(), ApiError> {
        match self {
            Principal::Open => Ok(()),
            Principal::Anonymous { pull_allowed: true } if scope == Scope::Pull => Ok(()),
            Principal::Anonymous { .. } => Err(ApiError::Unauthorized(format!(
                "this needs a token with `{scope}` scope (Authorization: Bearer ...)"
            ))),
            Principal::Token(t) => {
                if !t.scopes.iter().any(|s| *s >= scope) {
                    return Err(ApiError::Forbidden(format!(
                        "token `{}` lacks the `{scope}` scope",
                        t.name
                    )));
                }
                if let Some(name) = name
                    && !t.releases.iter().any(|g| glob_match(g, name))
                {
                    return Err(ApiError::Forbidden(format!(
                        "token `{}` may not access release `{name}`",
                        t.name
                    )));
                }
                Ok(())
            }
        }
    }

    /// Allows a registry-wide operation (garbage collection): a token needs `scope` over
    /// every release name (a `*` glob), not just some.
    pub fn require_global(&self, scope: Scope) -> Result<(), ApiError> {
        self.require(scope, None)?;
        match self {
            Principal::Token(t) if !t.releases.iter().any(|g| g == "*") => Err(ApiError::Forbidden(format!(
                "token `{}` is limited to some releases; this operation concerns all of them",
                t.name
            ))),
            _ => Ok(()),
        }
    }

    /// Whether a listing may show release `name`.
    pub fn may_see(&self, name: &str) -> bool {
        self.require(Scope::Pull, Some(name)).is_ok()
    }
}

/// The token file, re-read when its contents change; failing closed.
///
/// Each request looks at the file's metadata (size, times, inode: one `stat`) and re-reads it
/// when that changed, and at least once a second in any case; the contents decide, so a
/// replacement with the same mtime is seen too. A file that is missing, unreadable or does
/// not parse makes **no token valid** (and anonymous pulls are refused) until it is fixed:
/// a broken edit must not keep a revoked token alive. Each change of state is logged, a
/// broken file as an error.
#[derive(Debug)]
pub struct Tokens {
    path: Option<PathBuf>,
    state: Mutex<TokenState>,
}

/// How often the file's contents are read even when its metadata did not change.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug)]
struct TokenState {
    stamp: Option<FileStamp>,
    read_at: Instant,
    contents: Option<rel_format::Digest>,
    /// The tokens, or why none is valid.
    file: Result<Arc<TokenFile>, String>,
}

/// What changes when a file is written or replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    changed: (i64, i64),
    #[cfg(unix)]
    inode: (u64, u64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Some(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        })
    }
}

impl Tokens {
    /// Development mode: no tokens.
    pub fn open() -> Self {
        Self {
            path: None,
            state: Mutex::new(TokenState {
                stamp: None,
                read_at: Instant::now(),
                contents: None,
                file: Ok(Arc::default()),
            }),
        }
    }

    /// Reads the token file; at start-up a missing or broken one is an error.
    pub fn from_file(path: &Path) -> Result<Self, TokenFileError> {
        let stamp = FileStamp::of(path);
        let text = std::fs::read(path).map_err(|e| TokenFileError {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let file = TokenFile::parse(path, &String::from_utf8_lossy(&text))?;
        Ok(Self {
            path: Some(path.to_owned()),
            state: Mutex::new(TokenState {
                stamp,
                read_at: Instant::now(),
                contents: Some(rel_format::Digest::of(&text)),
                file: Ok(Arc::new(file)),
            }),
        })
    }

    pub fn is_open(&self) -> bool {
        self.path.is_none()
    }

    /// The tokens now, or why none is valid.
    fn current(&self) -> Result<Arc<TokenFile>, String> {
        let mut state = self.state.lock().expect("not poisoned");
        let Some(path) = &self.path else {
            return state.file.clone();
        };
        let stamp = FileStamp::of(path);
        if stamp == state.stamp && state.read_at.elapsed() < RECHECK {
            return state.file.clone();
        }
        state.stamp = stamp;
        state.read_at = Instant::now();
        let (contents, file) = match std::fs::read(path) {
            Ok(text) => {
                let digest = rel_format::Digest::of(&text);
                if state.contents == Some(digest) {
                    return state.file.clone();
                }
                let parsed = std::str::from_utf8(&text)
                    .map_err(|e| format!("token file `{}`: not UTF-8: {e}", path.display()))
                    .and_then(|t| TokenFile::parse(path, t).map_err(|e| e.to_string()));
                (Some(digest), parsed.map(Arc::new))
            }
            Err(e) => (None, Err(format!("cannot read token file `{}`: {e}", path.display()))),
        };
        if state.contents == contents && state.file.as_ref().err() == file.as_ref().err() {
            return state.file.clone();
        }
        match &file {
            Ok(f) => tracing::info!(path = %path.display(), tokens = f.tokens.len(), "token file reloaded"),
            Err(e) => tracing::error!(
                path = %path.display(),
                error = %e,
                "TOKEN FILE UNUSABLE: no token is accepted and anonymous pulls are refused until it is fixed"
            ),
        }
        state.contents = contents;
        state.file = file;
        state.file.clone()
    }

    /// The principal for an `Authorization` header value, at time `now`.
    pub fn principal(&self, authorization: Option<&str>, now: Timestamp) -> Result<Principal, ApiError> {
        if self.is_open() {
            return Ok(Principal::Open);
        }
        let file = self.current();
        let Some(header) = authorization else {
            return Ok(Principal::Anonymous {
                pull_allowed: file.is_ok_and(|f| f.anonymous_pull),
            });
        };
        let file = file.map_err(|_| {
            ApiError::Unauthorized("the registry's token file is unusable, so no token is accepted; see its log".into())
        })?;
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into()))?;
        let hash = rel_format::Digest::of(token.as_bytes()).hex();
        let entry = file
            .tokens
            .iter()
            .find(|t| t.sha256 == hash)
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked token".into()))?;
        if now >= entry.expires {
            return Err(ApiError::Unauthorized(format!(
                "token `{}` expired at {}",
                entry.name, entry.expires
            )));
        }
        Ok(Principal::Token(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "demo"));
        assert!(glob_match("shop_*", "shop_eu"));
        assert!(!glob_match("shop_*", "shopx"));
        assert!(glob_match("d?mo", "demo"));
        assert!(glob_match("*o*", "demo"));
        assert!(!glob_match("demo", "demo2"));
    }

    #[test]
    fn scopes_nest_and_globs_restrict() {
        let t = |scopes: Vec<Scope>| {
            Principal::Token(TokenEntry {
                name: "t".into(),
                sha256: String::new(),
                scopes,
                releases: vec!["demo*".into()],
                expires: Timestamp::from_unix(0).expect("the epoch"),
            })
        };
        assert!(t(vec![Scope::Admin]).require(Scope::Pull, Some("demo")).is_ok());
        assert!(t(vec![Scope::Push]).require(Scope::Pull, Some("demo2")).is_ok());
        assert!(matches!(
            t(vec![Scope::Pull]).require(Scope::Push, Some("demo")),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            t(vec![Scope::Admin]).require(Scope::Pull, Some("other")),
            Err(ApiError::Forbidden(_))
        ));
        assert!(matches!(
            Principal::Anonymous { pull_allowed: false }.require(Scope::Pull, None),
            Err(ApiError::Unauthorized(_))
        ));
        assert!(
            Principal::Anonymous { pull_allowed: true }
                .require(Scope::Pull, Some("x"))
                .is_ok()
        );
    }
}
