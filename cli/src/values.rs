//! Values of arguments that are more than a string: how long something lasts, a registry's
//! address, a release name, a reference to a release on disk or in the registry.

use std::path::PathBuf;
use std::str::FromStr;

use rel_format::Version;

/// How long a signed pointer stays valid: `30d`, `12h`, `90m`, `2w`, `1d12h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub seconds: i64,
}

impl FromStr for Lifetime {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a duration like 90d, 12h, 2w or 1d12h");
        let span: jiff::Span = text.parse().map_err(|_| bad())?;
        let duration = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|_| bad())?;
        if duration.is_negative() || duration.is_zero() {
            return Err(format!("`{text}` must be a positive duration"));
        }
        Ok(Lifetime {
            seconds: duration.as_secs(),
        })
    }
}

/// A registry's base URL, checked: `http://` or `https://`, a host, no query.
pub fn parse_registry(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text)
        .map_err(|e| format!("`{text}` is not a registry URL like http://127.0.0.1:7878 ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("`{text}` is not an http:// or https:// URL of a registry"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}`: a registry URL has no query or fragment"));
    }
    Ok(url)
}

/// A release name, valid by SPEC.md §2.1.
pub fn parse_name(text: &str) -> Result<String, String> {
    if rel_format::release::is_valid_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a release name: a letter, then letters, digits, `_` or `.`"
        ))
    }
}

/// A channel name, valid by SPEC.md §6.2.
pub fn parse_channel(text: &str) -> Result<String, String> {
    if rel_format::channel::is_valid_channel(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is not a channel name: a letter, then letters, digits, `_`, `.` or `-`, at most 64"
        ))
    }
}

/// A file that exists, as an absolute path (it is recorded, and used from other folders).
pub fn existing_file(text: &str) -> Result<PathBuf, String> {
    let path = std::fs::canonicalize(text).map_err(|e| format!("`{text}`: {e}"))?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("`{text}` is not a file"))
    }
}

/// A folder that exists, as an absolute path.
pub fn existing_dir(text: &str) -> Result<PathBuf, String> {
    let path = std::fs::canonicalize(text).map_err(|e| format!("`{text}`: {e}"))?;
    if path.is_dir() {
        Ok(path)
    } else {
        Err(format!("`{text}` is not a folder"))
    }
}

/// A release named on the command line: a tarball or folder, `NAME@VERSION` in the
/// registry, or (where the release name is known from elsewhere) a version alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseRef {
    Path(PathBuf),
    Stored { name: Option<String>, version: Version },
}

impl FromStr for ReleaseRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let path = PathBuf::from(text);
        if path.exists() {
            return Ok(ReleaseRef::Path(path));
        }
        let (name, version) = match text.split_once('@') {
            Some((n, v)) => (Some(parse_name(n)?), v),
            None => (None, text),
        };
        let version = version.parse::<Version>().map_err(|e| {
            if text.contains('/') || text.ends_with(".gz") || text.ends_with(".tar") {
                format!("`{text}` does not exist")
            } else {
                format!("`{text}` is no file or folder, and {e}")
            }
        })?;
        Ok(ReleaseRef::Stored { name, version })
    }
}

impl<'de> serde::Deserialize<'de> for Lifetime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A wait on the host: `200ms`, `10s`, `2m`, `1m30s` (to the millisecond).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait(pub std::time::Duration);

impl Wait {
    pub const fn secs(s: u64) -> Wait {
        Wait(std::time::Duration::from_secs(s))
    }
}

impl FromStr for Wait {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a duration like 500ms, 10s, 2m or 1m30s");
        let span: jiff::Span = text.parse().map_err(|_| bad())?;
        let duration = span
            .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
            .map_err(|_| bad())?;
        if duration.is_negative() {
            return Err(format!("`{text}` is negative"));
        }
        Ok(Wait(std::time::Duration::try_from(duration).map_err(|_| bad())?))
    }
}

impl<'de> serde::Deserialize<'de> for Wait {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Lifetime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seconds {
            s if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            s if s % 3_600 == 0 => write!(f, "{}h", s / 3_600),
            s => write!(f, "{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!("30d".parse::<Lifetime>().unwrap().seconds, 30 * 86_400);
        assert_eq!("12h".parse::<Lifetime>().unwrap().seconds, 12 * 3_600);
        assert_eq!("1d12h".parse::<Lifetime>().unwrap().seconds, 36 * 3_600);
        assert_eq!("2w".parse::<Lifetime>().unwrap().seconds, 14 * 86_400);
        assert!("3weeks".parse::<Lifetime>().is_ok());
        assert!("3 fortnights".parse::<Lifetime>().is_err());
        assert!("0s".parse::<Lifetime>().is_err());
        assert_eq!("200ms".parse::<Wait>(), Ok(Wait(std::time::Duration::from_millis(200))));
        assert_eq!("1m30s".parse::<Wait>(), Ok(Wait::secs(90)));
        assert_eq!("0s".parse::<Wait>(), Ok(Wait::secs(0)));
        assert!("-1s".parse::<Wait>().is_err());
        assert!("soon".parse::<Wait>().unwrap_err().contains("`soon` is not a duration"));
    }

    #[test]
    fn registry_urls() {
        assert!(parse_registry("http://127.0.0.1:7878").is_ok());
        assert!(
            parse_registry("not a url")
                .unwrap_err()
                .contains("is not a registry URL")
        );
        assert!(parse_registry("ftp://x").is_err());
    }

    #[test]
    fn release_refs() {
        assert_eq!(
            "demo@1.0.0".parse::<ReleaseRef>().unwrap(),
            ReleaseRef::Stored {
                name: Some("demo".into()),
                version: "1.0.0".parse().unwrap()
            }
        );
        assert!(
            "no/such/file.tar.gz"
                .parse::<ReleaseRef>()
                .unwrap_err()
                .contains("does not exist")
        );
    }
}
