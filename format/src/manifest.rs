//! Manifests: what an artifact is, bound to its exact bytes.
//!
//! A manifest names the artifact (kind, release name, exact version, and for an upgrade the
//! versions it upgrades from), the canonical tar stream (digest, length, chunk list), the
//! platform it needs and the applications it carries. Its canonical JSON form (keys sorted
//! at every level, no white space, UTF-8) is what gets signed; see [`crate::signing`] and
//! SPEC.md §5.
//!
//! Sizes are bounded before anything is trusted, so a hostile manifest cannot ask a client
//! to allocate or fetch without end.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::chunk::{CHUNKING, ChunkedStream, MAX_CHUNK};
use crate::release::is_valid_name;
use crate::timestamp::Timestamp;
use crate::version::Version;

/// The only schema this crate reads and writes.
pub const SCHEMA: &str = "rel.manifest/1";
/// Largest manifest document accepted, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 32 << 20;
/// Most chunks one artifact may have (64 GiB at the largest chunk size).
pub const MAX_CHUNKS: usize = 1 << 20;
/// Most applications one release may list.
pub const MAX_APPS: usize = 10_000;
/// Most versions one upgrade may start from.
pub const MAX_FROM: usize = 64;

/// What an artifact is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A full release, installable on its own.
    Release,
    /// The files that take a node from one of `from` to `version` by hot upgrade.
    Upgrade,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Release => "release",
            Kind::Upgrade => "upgrade",
        })
    }
}

impl std::str::FromStr for Kind {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "release" => Ok(Kind::Release),
            "upgrade" => Ok(Kind::Upgrade),
            other => Err(ManifestError::Invalid(format!(
                "kind `{other}` is not `release` or `upgrade`"
            ))),
        }
    }
}

/// The platform an artifact needs. (Fields in byte order of their names: see [`Manifest`].)
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Platform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The ERTS version of the release's `.rel`.
    pub erts: Version,
    /// Whether `erts-<vsn>/` ships inside the artifact.
    pub erts_included: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libc: Option<String>,
    /// Present when the artifact carries native code (ERTS or NIFs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
}

/// An application and its version.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRef {
    pub name: String,
    pub version: Version,
}

/// A manifest (SPEC.md §5).
///
/// Its fields, and those of every type inside it, are declared in byte order of their names,
/// so `serde_json`'s compact output is the canonical JSON ([`canonical_bytes`]): a manifest
/// is read and written without a `serde_json::Value` tree, which costs about 750 bytes a chunk.
/// Lists are bounded while they are read, before anything is kept of an oversized one.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(deserialize_with = "at_most::<_, _, MAX_APPS>")]
    pub apps: Vec<AppRef>,
    /// Who built it (tool and host), free text.
    pub builder: String,
    /// When it was made, `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: Timestamp,
    /// For an upgrade: the exact versions it upgrades from. Empty for a release.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "at_most::<_, _, MAX_FROM>"
    )]
    pub from: Vec<Version>,
    pub kind: Kind,
    pub name: String,
    pub platform: Platform,
    pub schema: String,
    pub tar: ChunkedStream,
    pub version: Version,
}

/// The canonical JSON of a document whose fields are declared in byte order of their names
/// (manifests, channel pointers, envelopes): `serde_json`'s compact output.
pub fn canonical_bytes<T: Serialize + ?Sized>(document: &T) -> Vec<u8> {
    serde_json::to_vec(document).expect("documents serialise")
}

/// Deserialises a list of at most `MAX` items, refusing a longer one as soon as its item
/// `MAX + 1` is met (nothing more of it is kept).
pub(crate) fn at_most<'de, D, T, const MAX: usize>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T, const MAX: usize>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>, const MAX: usize> serde::de::Visitor<'de> for Bounded<T, MAX> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {MAX} items")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
            while let Some(item) = seq.next_element()? {
                if out.len() == MAX {
                    return Err(serde::de::Error::custom(format!("a list of more than {MAX} items")));
                }
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(Bounded::<T, MAX>(std::marker::PhantomData))
}

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("the {what} is {size} bytes; at most {max} are allowed")]
    TooLarge {
        what: &'static str,
        size: usize,
        max: usize,
    },
    #[error("manifest is not valid JSON for schema {SCHEMA}")]
    Json(#[source] serde_json::Error),
    #[error("manifest is invalid: {0}")]
    Invalid(String),
}

impl Manifest {
    /// Checks every bound and cross-field rule.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let bad = |m: String| Err(ManifestError::Invalid(m));
        if self.schema != SCHEMA {
            return bad(format!("schema `{}` is not `{SCHEMA}`", self.schema));
        }
        if !is_valid_name(&self.name) {
            return bad(format!("release name `{}` is not a valid name", self.name));
        }
        match (self.kind, self.from.len()) {
            (Kind::Release, 0) => {}
            (Kind::Release, _) => return bad("a release has no `from` versions".into()),
            (Kind::Upgrade, 0) => return bad("an upgrade needs at least one `from` version".into()),
            (Kind::Upgrade, n) if n > MAX_FROM => return bad(format!("{n} `from` versions; at most {MAX_FROM}")),
            (Kind::Upgrade, _) => {}
        }
        if self.from.contains(&self.version) {
            return bad(format!("upgrade from `{}` to itself", self.version));
        }
        if self.tar.chunking != CHUNKING {
            return bad(format!("chunking `{}` is not `{CHUNKING}`", self.tar.chunking));
        }
        if self.tar.chunks.len() > MAX_CHUNKS {
            return bad(format!("{} chunks; at most {MAX_CHUNKS}", self.tar.chunks.len()));
        }
        let mut sum: u64 = 0;
        for c in &self.tar.chunks {
            if c.length == 0 || c.length > MAX_CHUNK as u64 {
                return bad(format!(
                    "chunk {} has length {}; chunks are 1 to {MAX_CHUNK} bytes",
                    c.digest, c.length
                ));
            }
            sum += c.length;
        }
        if sum != self.tar.length {
            return bad(format!(
                "chunks add up to {sum} bytes but the tar is {} bytes",
                self.tar.length
            ));
        }
        if self.apps.len() > MAX_APPS {
            return bad(format!("{} applications; at most {MAX_APPS}", self.apps.len()));
        }
        if let Some(app) = self.apps.iter().find(|a| !is_valid_name(&a.name)) {
            return bad(format!("application name `{}` is not a valid name", app.name));
        }
        if self.builder.len() > 256 || self.builder.chars().any(char::is_control) {
            return bad("builder is longer than 256 bytes or has control characters".into());
        }
        for text in [&self.platform.os, &self.platform.arch, &self.platform.libc]
            .into_iter()
            .flatten()
        {
            if text.is_empty()
                || text.len() > 32
                || !text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return bad(format!("platform field `{text}` is not a short identifier"));
            }
        }
        Ok(())
    }

    /// The canonical JSON bytes (sorted keys, no white space).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical_bytes(self)
    }

    /// The manifest's digest: the SHA-256 of its canonical JSON, the document its signatures
    /// sign (SPEC.md §5). It names one artifact exactly, whoever signed it.
    pub fn digest(&self) -> crate::Digest {
        crate::Digest::of(&self.canonical_bytes())
    }

    /// Reads a manifest from a JSON value, checking bounds.
    pub fn from_value(value: Value) -> Result<Self, ManifestError> {
        let m: Manifest = serde_json::from_value(value).map_err(ManifestError::Json)?;
        m.validate()?;
        Ok(m)
    }
}

/// Canonical JSON: object keys sorted bytewise at every level, no insignificant white space,
/// strings escaped as `serde_json` does (only `"`, `\` and control characters).
pub fn canonical_json(value: &Value) -> Vec<u8> {
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push(b'{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend(serde_json::to_vec(k).expect("strings serialise"));
                    out.push(b':');
                    write(&map[k], out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            scalar => out.extend(serde_json::to_vec(scalar).expect("scalars serialise")),
        }
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chunk::ChunkRef;
    use crate::digest::Digest;

    pub(crate) fn sample(kind: Kind) -> Manifest {
        let chunks = vec![
            ChunkRef {
                digest: Digest::of(b"one"),
                length: 10_240,
            },
            ChunkRef {
                digest: Digest::of(b"two"),
                length: 512,
            },
        ];
        Manifest {
            schema: SCHEMA.into(),
            kind,
            name: "shop".into(),
            version: "0.1.0+20240102-11-bbbbbbb".parse().unwrap(),
            from: if kind == Kind::Upgrade {
                vec!["0.1.0+20240101-10-aaaaaaa".parse().unwrap()]
            } else {
                vec![]
            },
            tar: ChunkedStream {
                digest: Digest::of(b"tar"),
                length: 10_752,
                chunking: CHUNKING.into(),
                chunks,
            },
            platform: Platform {
                erts: "13.1.5".parse().unwrap(),
                erts_included: false,
                os: None,
                arch: None,
                libc: None,
            },
            apps: vec![AppRef {
                name: "shop".into(),
                version: "0.1.0+20240102-11-bbbbbbb".parse().unwrap(),
            }],
            created: "2024-01-02T03:04:05Z".parse().unwrap(),
            builder: "rel 0.1.0".into(),
        }
    }

    #[test]
    fn canonical_form_sorts_keys_and_round_trips() {
        let m = sample(Kind::Upgrade);
        let bytes = m.canonical_bytes();
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(r#"{"apps":[{"name":"shop","version":"0.1.0+20240102-11-bbbbbbb"}],"builder":"#),
            "{text}"
        );
        let back = Manifest::from_value(serde_json::from_slice(&bytes).unwrap()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.canonical_bytes(), bytes);
    }

    /// Fields are declared in canonical order, so the compact output is the canonical JSON,
    /// every optional field set or not.
    #[test]
    fn compact_output_is_canonical() {
        let mut m = sample(Kind::Upgrade);
        assert_eq!(canonical_bytes(&m), canonical_json(&serde_json::to_value(&m).unwrap()));
        m.platform.os = Some("linux".into());
        m.platform.arch = Some("x86_64".into());
        m.platform.libc = Some("gnu".into());
        m.from = vec!["0.9.0".parse().unwrap(), "0.9.1".parse().unwrap()];
        assert_eq!(canonical_bytes(&m), canonical_json(&serde_json::to_value(&m).unwrap()));
        let env = crate::signing::SignedManifest {
            signatures: vec!["a:b".into()],
            signed: m,
        };
        assert_eq!(
            canonical_bytes(&env),
            canonical_json(&serde_json::to_value(&env).unwrap())
        );
    }

    /// Lists are refused past their bound as they are read.
    #[test]
    fn overlong_lists_are_refused_while_read() {
        let mut v = serde_json::to_value(sample(Kind::Upgrade)).unwrap();
        v["from"] = serde_json::json!(vec!["1.0.0"; MAX_FROM + 1]);
        let e = serde_json::from_value::<Manifest>(v).unwrap_err().to_string();
        assert!(e.contains("a list of more than 64 items"), "{e}");
        let env = serde_json::json!({"signatures": vec!["k:x"; 17], "signed": sample(Kind::Release)});
        let e = crate::signing::SignedManifest::parse_unverified(env.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("a list of more than 16 items"), "{e}");
    }

    #[test]
    fn canonical_json_is_independent_of_input_key_order() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"d":[1,{"z":0,"y":"é"}],"c":null}}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":null,"d":[1,{"y":"é","z":0}]},"b":1}"#.as_bytes()
        );
    }

    #[test]
    fn invalid_manifests_are_refused_with_a_reason() {
        type Mutation = Box<dyn Fn(&mut Manifest)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|m| m.from.clear()),
                "an upgrade needs at least one `from` version",
            ),
            (
                Box::new(|m| m.name = "../etc".into()),
                "release name `../etc` is not a valid name",
            ),
            (
                Box::new(|m| m.tar.length += 1),
                "chunks add up to 10752 bytes but the tar is 10753 bytes",
            ),
            (Box::new(|m| m.tar.chunks[0].length = 1 << 20), "chunk sha256:"),
            (
                Box::new(|m| m.from = vec![m.version.clone()]),
                "upgrade from `0.1.0+20240102-11-bbbbbbb` to itself",
            ),
            (Box::new(|m| m.tar.chunking = "fixed".into()), "chunking `fixed`"),
            (
                Box::new(|m| m.platform.os = Some("linux/../x".into())),
                "platform field",
            ),
        ];
        for (mutate, expected) in cases {
            let mut m = sample(Kind::Upgrade);
            mutate(&mut m);
            let err = m.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} should contain {expected:?}");
        }
        let mut r = sample(Kind::Release);
        r.from = vec!["1".parse().unwrap()];
        assert!(
            r.validate()
                .unwrap_err()
                .to_string()
                .contains("a release has no `from` versions")
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = serde_json::to_value(sample(Kind::Release)).unwrap();
        v["extra"] = Value::Bool(true);
        assert!(matches!(Manifest::from_value(v), Err(ManifestError::Json(_))));
    }
}
