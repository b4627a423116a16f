//! ed25519 keys, signatures and the signed manifest envelope.
//!
//! Keys and signatures are text of the form `name:base64` (as Nix writes them), so that a
//! verifier can hold several trusted keys and keys can rotate: a secret key is
//! `name:base64(32-byte seed)`, a public key `name:base64(32 bytes)`, a signature
//! `name:base64(64 bytes)`.
//!
//! A signature covers `rel-manifest-v1\n` followed by the manifest's canonical JSON; the
//! prefix keeps a manifest signature from being valid for anything else rel signs. The
//! envelope is `{"signed": <manifest>, "signatures": ["name:base64", ...]}`.
//!
//! [`verify`] accepts a manifest only if a trusted key signed it **and** it is the artifact
//! that was asked for: a valid signature on another release, version, kind or from-version
//! is refused (SPEC.md §6).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::manifest::{Kind, MAX_MANIFEST_BYTES, Manifest, ManifestError, canonical_bytes};
use crate::version::Version;

/// Domain separation for manifest signatures.
pub const MANIFEST_CONTEXT: &[u8] = b"rel-manifest-v1\n";

/// Why a key, a signature or a signed manifest was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("{what} `{text}` is not of the form `name:base64`")]
    Form { what: &'static str, text: String },
    #[error("{what} `{name}` has an invalid name: use letters, digits and `._-`, at most 128")]
    Name { what: &'static str, name: String },
    #[error("{what} `{name}` has {actual} bytes after base64 decoding; {expected} are expected")]
    Length {
        what: &'static str,
        name: String,
        expected: usize,
        actual: usize,
    },
    #[error("`{name}:…` is {found}, where a {expected} is needed")]
    WrongKind {
        name: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("secret key `{0}` is damaged: its public half does not match its seed")]
    Damaged(String),
    #[error("public key `{0}` is not a valid ed25519 point")]
    BadPoint(String),
    #[error("{what} is not signed by any trusted key (signed by: {signers}; trusted: {trusted})")]
    Untrusted {
        what: &'static str,
        signers: String,
        trusted: String,
    },
    #[error("the signature of `{key}` on the {what} does not verify: the {what} or the signature was altered")]
    Invalid { what: &'static str, key: String },
    #[error("the registry sent {actual}, but {expected} was asked for")]
    Mismatch { expected: String, actual: String },
    #[error(
        "the {what} is not JSON of the form {{\"signatures\": [...], \"signed\": {{...}}}} with the fields of its schema: {detail}"
    )]
    Envelope { what: &'static str, detail: String },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Lengths of the two key texts' payloads: a secret key carries its seed and its public half
/// (as Nix's secret keys do), a public key only the public half, so neither can be taken for
/// the other.
const SECRET_LEN: usize = 64;
const PUBLIC_LEN: usize = 32;

/// Splits and decodes `name:base64` into a name and its payload.
fn decode(what: &'static str, text: &str) -> Result<(String, Vec<u8>), SignatureError> {
    let text = text.trim();
    let (name, payload) = text.split_once(':').ok_or_else(|| SignatureError::Form {
        what,
        text: text.chars().take(64).collect(),
    })?;
    if !valid_key_name(name) {
        return Err(SignatureError::Name {
            what,
            name: name.chars().take(128).collect(),
        });
    }
    let bytes = B64.decode(payload).map_err(|_| SignatureError::Form {
        what,
        text: format!("{name}:…"),
    })?;
    Ok((name.to_owned(), bytes))
}

/// Decodes a signature, `name:base64` of 64 bytes.
fn decode_signature(text: &str) -> Result<(String, [u8; 64]), SignatureError> {
    let (name, bytes) = decode("signature", text)?;
    let actual = bytes.len();
    let sig = bytes.try_into().map_err(|_| SignatureError::Length {
        what: "signature",
        name: name.clone(),
        expected: 64,
        actual,
    })?;
    Ok((name, sig))
}

/// Refuses a payload of the other kind of key by name, any other length as such.
fn expect_len(what: &'static str, name: &str, bytes: &[u8], expected: usize) -> Result<(), SignatureError> {
    match bytes.len() {
        n if n == expected => Ok(()),
        SECRET_LEN => Err(SignatureError::WrongKind {
            name: name.to_owned(),
            expected: what,
            found: "a secret key (a NAME.key file): never hand it to a host; give the NAME.pub file instead",
        }),
        PUBLIC_LEN => Err(SignatureError::WrongKind {
            name: name.to_owned(),
            expected: what,
            found: "a public key (a NAME.pub file); signing needs the NAME.key file `rel keygen` wrote beside it",
        }),
        actual => Err(SignatureError::Length {
            what,
            name: name.to_owned(),
            expected,
            actual,
        }),
    }
}

/// A named ed25519 signing key.
pub struct SecretKey {
    name: String,
    key: SigningKey,
}

impl SecretKey {
    /// A key from 32 random bytes the caller supplies (this crate does no I/O, randomness
    /// included).
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, SignatureError> {
        if !valid_key_name(name) {
            return Err(SignatureError::Name {
                what: "secret key",
                name: name.to_owned(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs a manifest and wraps it in an envelope.
    pub fn sign(&self, manifest: &Manifest) -> Result<SignedManifest, SignatureError> {
        manifest.validate()?;
        let mut env = SignedManifest {
            signed: manifest.clone(),
            signatures: Vec::new(),
        };
        env.add_signature(self);
        Ok(env)
    }

    /// The secret key text, `name:base64(seed ‖ public key)`. Keep it secret.
    pub fn to_secret_string(&self) -> String {
        let mut payload = self.key.to_bytes().to_vec();
        payload.extend_from_slice(self.key.verifying_key().as_bytes());
        format!("{}:{}", self.name, B64.encode(payload))
    }
}

impl FromStr for SecretKey {
    type Err = SignatureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, bytes) = decode("secret key", s)?;
        expect_len("secret key", &name, &bytes, SECRET_LEN)?;
        let seed: [u8; 32] = bytes[..32].try_into().expect("64 bytes");
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().as_bytes() != &bytes[32..] {
            return Err(SignatureError::Damaged(name));
        }
        Ok(Self { name, key })
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}:<redacted>)", self.name)
    }
}

/// A named ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    name: String,
    key: VerifyingKey,
}

impl PublicKey {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for PublicKey {
    type Err = SignatureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, bytes) = decode("public key", s)?;
        expect_len("public key", &name, &bytes, PUBLIC_LEN)?;
        let bytes: [u8; 32] = bytes.as_slice().try_into().expect("32 bytes");
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| SignatureError::BadPoint(name.clone()))?;
        Ok(Self { name, key })
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, B64.encode(self.key.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// The keys a verifier trusts, by name.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, PublicKey>,
}

impl TrustedKeys {
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.name.clone(), k)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// A document rel signs: a manifest, a channel pointer.
pub trait Signable: Serialize + serde::de::DeserializeOwned + Clone {
    /// Prefixed to the canonical JSON before signing, so a signature over one kind of
    /// document is never valid for another.
    const CONTEXT: &'static [u8];
    /// What the document is, for error messages.
    const WHAT: &'static str;
    /// Largest signed document accepted, in bytes.
    const MAX_BYTES: usize;
    /// Checks bounds and cross-field rules after parsing.
    fn check(&self) -> Result<(), ManifestError>;
}

impl Signable for Manifest {
    const CONTEXT: &'static [u8] = MANIFEST_CONTEXT;
    const WHAT: &'static str = "manifest";
    const MAX_BYTES: usize = MAX_MANIFEST_BYTES;
    fn check(&self) -> Result<(), ManifestError> {
        self.validate()
    }
}

/// Most signatures one envelope may carry (a few keys during a rotation).
pub const MAX_SIGNATURES: usize = 16;

/// A signed document and its signatures, as stored and served:
/// `{"signatures": ["name:base64", ...], "signed": <document>}` (fields in byte order of their
/// names, so `serde_json`'s compact output is canonical).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "T: serde::de::DeserializeOwned"))]
pub struct Envelope<T> {
    #[serde(deserialize_with = "crate::manifest::at_most::<_, _, MAX_SIGNATURES>")]
    pub signatures: Vec<String>,
    pub signed: T,
}

/// A signed manifest.
pub type SignedManifest = Envelope<Manifest>;

fn message<T: Signable>(canonical: &[u8]) -> Vec<u8> {
    [T::CONTEXT, canonical].concat()
}

impl<T: Signable> Envelope<T> {
    /// Checks `document` and signs it.
    pub fn sign(document: T, key: &SecretKey) -> Result<Self, SignatureError> {
        document.check()?;
        let mut env = Envelope {
            signed: document,
            signatures: Vec::new(),
        };
        env.add_signature(key);
        Ok(env)
    }

    /// Adds one more signature (a second key during a rotation, say).
    pub fn add_signature(&mut self, key: &SecretKey) {
        let canonical = canonical_bytes(&self.signed);
        let sig = key.key.sign(&message::<T>(&canonical));
        self.signatures
            .push(format!("{}:{}", key.name, B64.encode(sig.to_bytes())));
    }

    /// The envelope's bytes: canonical JSON, so the same document stores the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical_bytes(self)
    }

    /// Reads an envelope of a bounded size into its typed form: no tree of JSON values is
    /// built, unknown fields and overlong lists are refused as they are met, so reading a
    /// hostile document costs about what a valid one of its size would.
    fn read(bytes: &[u8]) -> Result<Self, SignatureError> {
        if bytes.len() > T::MAX_BYTES {
            return Err(ManifestError::TooLarge {
                what: T::WHAT,
                size: bytes.len(),
                max: T::MAX_BYTES,
            }
            .into());
        }
        serde_json::from_slice(bytes).map_err(|e| SignatureError::Envelope {
            what: T::WHAT,
            detail: e.to_string(),
        })
    }

    /// Reads an envelope and checks its signatures against `trusted`. Returns the envelope
    /// and the name of the trusted key that signed it.
    ///
    /// The signature is checked over the canonical JSON of the document as read (its fields in
    /// their canonical order): a document is accepted only if what rel understood of it is
    /// what was signed.
    pub fn verify_signature(bytes: &[u8], trusted: &TrustedKeys) -> Result<(Self, String), SignatureError> {
        let env = Self::read(bytes)?;
        let msg = message::<T>(&canonical_bytes(&env.signed));
        let mut signers = Vec::new();
        for sig in &env.signatures {
            let (name, sig_bytes) = decode_signature(sig)?;
            if let Some(key) = trusted.keys.get(&name) {
                let sig = ed25519_dalek::Signature::from_bytes(&sig_bytes);
                key.key.verify_strict(&msg, &sig).map_err(|_| SignatureError::Invalid {
                    what: T::WHAT,
                    key: name.clone(),
                })?;
                env.signed.check()?;
                return Ok((env, name));
            }
            signers.push(name);
        }
        Err(SignatureError::Untrusted {
            what: T::WHAT,
            signers: if signers.is_empty() {
                "nobody".into()
            } else {
                signers.join(", ")
            },
            trusted: if trusted.is_empty() {
                "none".into()
            } else {
                trusted.names().collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// Reads an envelope without checking any signature; for a registry that was told to
    /// trust no particular key. Signatures must still be well-formed.
    pub fn parse_unverified(bytes: &[u8]) -> Result<Self, SignatureError> {
        let env = Self::read(bytes)?;
        if env.signatures.is_empty() {
            return Err(SignatureError::Untrusted {
                what: T::WHAT,
                signers: "nobody".into(),
                trusted: "any".into(),
            });
        }
        for sig in &env.signatures {
            decode_signature(sig)?;
        }
        env.signed.check()?;
        Ok(env)
    }
}

/// The artifact a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub name: String,
    pub version: Version,
    pub kind: Kind,
    /// For an upgrade: the version the node runs, which the upgrade must start from.
    pub from: Option<Version>,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}` `{}`", self.kind, self.name, self.version)?;
        if let Some(from) = &self.from {
            write!(f, " from `{from}`")?;
        }
        Ok(())
    }
}

/// Verifies a stored envelope: a trusted key signed it and it is exactly `expected`.
pub fn verify(bytes: &[u8], trusted: &TrustedKeys, expected: &Expected) -> Result<(Manifest, String), SignatureError> {
    let (env, signer) = SignedManifest::verify_signature(bytes, trusted)?;
    let m = env.signed;
    let from_ok = match &expected.from {
        None => expected.kind == Kind::Release || !m.from.is_empty(),
        Some(from) => m.from.contains(from),
    };
    if m.name != expected.name || m.version != expected.version || m.kind != expected.kind || !from_ok {
        let mut actual = format!("{} `{}` `{}`", m.kind, m.name, m.version);
        if !m.from.is_empty() {
            let list: Vec<String> = m.from.iter().map(|v| format!("`{v}`")).collect();
            actual.push_str(&format!(" from {}", list.join(", ")));
        }
        return Err(SignatureError::Mismatch {
            expected: expected.to_string(),
            actual,
        });
    }
    Ok((m, signer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::tests::sample;

    fn key(name: &str, seed: u8) -> SecretKey {
        SecretKey::from_seed(name, [seed; 32]).unwrap()
    }

    fn expected_for(m: &Manifest) -> Expected {
        Expected {
            name: m.name.clone(),
            version: m.version.clone(),
            kind: m.kind,
            from: m.from.first().cloned(),
        }
    }

    #[test]
    fn secret_and_public_keys_cannot_be_taken_for_each_other() {
        let k = key("ci", 7);
        let secret = k.to_secret_string();
        let public = k.public().to_string();
        let err = public.parse::<SecretKey>().unwrap_err();
        assert!(
            matches!(
                err,
                SignatureError::WrongKind {
                    expected: "secret key",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("is a public key (a NAME.pub file)"), "{err}");
        let err = secret.parse::<PublicKey>().unwrap_err();
        assert!(
            err.to_string()
                .contains("is a secret key (a NAME.key file): never hand it to a host"),
            "{err}"
        );
        // A secret whose halves disagree is damaged, not silently another key.
        let (name, payload) = secret.split_once(':').unwrap();
        let mut bytes = B64.decode(payload).unwrap();
        bytes[40] ^= 1;
        let err = format!("{name}:{}", B64.encode(bytes))
            .parse::<SecretKey>()
            .unwrap_err();
        assert!(matches!(err, SignatureError::Damaged(ref n) if n == "ci"), "{err}");
    }

    #[test]
    fn keys_round_trip_through_text() {
        let k = key("ci-2024", 7);
        let back: SecretKey = k.to_secret_string().parse().unwrap();
        assert_eq!(back.public(), k.public());
        let p: PublicKey = k.public().to_string().parse().unwrap();
        assert_eq!(p, k.public());
        assert!(k.public().to_string().starts_with("ci-2024:"));
        assert_eq!(format!("{k:?}"), "SecretKey(ci-2024:<redacted>)");
    }

    #[test]
    fn malformed_keys_are_refused_by_name() {
        assert_eq!(
            "nocolon".parse::<PublicKey>().unwrap_err().to_string(),
            "public key `nocolon` is not of the form `name:base64`"
        );
        assert!(matches!(
            "a b:AAAA".parse::<PublicKey>(),
            Err(SignatureError::Name { .. })
        ));
        assert_eq!(
            "k:AAAA".parse::<PublicKey>().unwrap_err().to_string(),
            "public key `k` has 3 bytes after base64 decoding; 32 are expected"
        );
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let k = key("ci", 1);
        let m = sample(Kind::Upgrade);
        let bytes = k.sign(&m).unwrap().to_bytes();
        let (got, signer) = verify(&bytes, &TrustedKeys::new([k.public()]), &expected_for(&m)).unwrap();
        assert_eq!((got, signer.as_str()), (m, "ci"));
    }

    #[test]
    fn any_changed_byte_fails_verification() {
        let k = key("ci", 1);
        let m = sample(Kind::Release);
        let bytes = k.sign(&m).unwrap().to_bytes();
        let trusted = TrustedKeys::new([k.public()]);
        let exp = expected_for(&m);
        // A flip inside a string value still parses to a well-formed manifest: only the
        // signature can catch it. Those positions must fail as `Invalid`, not by accident.
        let text = std::str::from_utf8(&bytes).unwrap();
        let value = text.find("\"builder\":\"rel 0.1.0\"").unwrap() + "\"builder\":\"".len();
        let only_the_signature_can_tell = value..value + "rel 0.1.0".len();
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x20] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                match verify(&b, &trusted, &exp) {
                    Ok(_) => panic!(
                        "flipping bit {bit:#x} of byte {i} ({:?}) still verified",
                        bytes[i] as char
                    ),
                    Err(e) if only_the_signature_can_tell.contains(&i) && b[i].is_ascii_graphic() => assert!(
                        matches!(e, SignatureError::Invalid { .. }),
                        "byte {i} of the builder changed: {e}"
                    ),
                    Err(_) => {}
                }
            }
        }
    }

    #[test]
    fn untrusted_and_rotated_keys() {
        let old = key("ci-2023", 1);
        let new = key("ci-2024", 2);
        let m = sample(Kind::Release);
        let exp = expected_for(&m);
        let mut env = old.sign(&m).unwrap();
        let err = verify(&env.to_bytes(), &TrustedKeys::new([new.public()]), &exp).unwrap_err();
        assert_eq!(
            err.to_string(),
            "manifest is not signed by any trusted key (signed by: ci-2023; trusted: ci-2024)"
        );
        env.add_signature(&new);
        let (_, signer) = verify(&env.to_bytes(), &TrustedKeys::new([new.public()]), &exp).unwrap();
        assert_eq!(signer, "ci-2024");
        // A key with a trusted name but other bytes is not the trusted key.
        let impostor = key("ci-2024", 3);
        let bytes = impostor.sign(&m).unwrap().to_bytes();
        let err = verify(&bytes, &TrustedKeys::new([new.public()]), &exp).unwrap_err();
        assert!(
            matches!(err, SignatureError::Invalid { ref key, .. } if key == "ci-2024"),
            "{err}"
        );
    }

    #[test]
    fn a_valid_signature_on_another_artifact_is_refused() {
        let k = key("ci", 1);
        let trusted = TrustedKeys::new([k.public()]);
        let m = sample(Kind::Upgrade);
        let bytes = k.sign(&m).unwrap().to_bytes();
        let base = expected_for(&m);
        let other_version = Expected {
            version: "0.1.0+20240103-12-ccccccc".parse().unwrap(),
            ..base.clone()
        };
        let err = verify(&bytes, &trusted, &other_version).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the registry sent upgrade `shop` `0.1.0+20240102-11-bbbbbbb` from `0.1.0+20240101-10-aaaaaaa`, but upgrade `shop` `0.1.0+20240103-12-ccccccc` from `0.1.0+20240101-10-aaaaaaa` was asked for"
        );
        for wrong in [
            Expected {
                name: "other".into(),
                ..base.clone()
            },
            Expected {
                kind: Kind::Release,
                from: None,
                ..base.clone()
            },
            Expected {
                from: Some("0.0.9".parse().unwrap()),
                ..base.clone()
            },
        ] {
            assert!(
                matches!(verify(&bytes, &trusted, &wrong), Err(SignatureError::Mismatch { .. })),
                "{wrong}"
            );
        }
    }

    #[test]
    fn envelope_bytes_are_canonical_and_bounded() {
        let k = key("ci", 1);
        let env = k.sign(&sample(Kind::Release)).unwrap();
        let bytes = env.to_bytes();
        let reparsed: SignedManifest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(reparsed.to_bytes(), bytes);
        let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
        let err = SignedManifest::verify_signature(&huge, &TrustedKeys::new([k.public()])).unwrap_err();
        assert!(matches!(err, SignatureError::Manifest(ManifestError::TooLarge { .. })));
    }
}
