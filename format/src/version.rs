//! Release and application versions: identity is the exact text, order is typed.
//!
//! OTP matches a relup against the running node by the *exact* version string, so a
//! [`Version`] keeps its text unchanged and two versions are equal only when their texts are.
//! Ordering, which OTP does not have, is what rel adds: it must put edeliver AUTO_VERSION
//! strings such as `0.0.1+20171116-381-eddcacc` in build order, where string order, the
//! `semver` crate and edeliver's own `sort` all get `381` vs `1000` wrong.
//!
//! A version is read as `RELEASE[-PRE][+BUILD]`:
//! - `RELEASE` is dot-separated numbers (`1.2.3`, `8.5.3`, `4.2`, `2.0.1.1`), compared as
//!   numbers of any size, a missing component counting as 0;
//! - `PRE` follows semver: dot-separated identifiers, numeric below alphanumeric, and a
//!   version with a pre-release sorts before the same release without one;
//! - `BUILD` is split at `-`, `.` and `+` into fields, each typed ([`BuildField`]): dates
//!   (`YYYYMMDD`), times (`HHMMSS`, right after a date) and commit counts compare as numbers,
//!   revisions and other text as text, a number before text. Fields compare in the order
//!   AUTO_VERSION wrote them, so the token order the team chose decides what matters most. A
//!   version without build metadata sorts before the same version with it.
//!
//! Text that does not fit this shape (`R16B03`, `master`) sorts before every shaped version,
//! in natural order (digit runs as numbers). Whatever is still tied is ordered by the raw
//! bytes of the text, so the order is total and agrees with equality. SPEC.md §1 is normative.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest accepted version text, in bytes.
pub const MAX_VERSION_LEN: usize = 200;

/// A release or application version: its exact text plus a parsed sort key. Cheap to
/// clone (shared), since plans and listings copy versions around a lot.
#[derive(Clone)]
pub struct Version(Arc<Inner>);

struct Inner {
    text: String,
    shape: Shape,
}

/// Why a string is not a valid [`Version`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionError {
    #[error("version is empty")]
    Empty,
    #[error("version `{text}` is {len} bytes long; at most {MAX_VERSION_LEN} are allowed")]
    TooLong { text: String, len: usize },
    #[error("version `{text}` contains {found:?} at byte {at}; allowed are letters, digits and `.+-_~`")]
    Character { text: String, found: char, at: usize },
    #[error("version `{0}` must start with a letter or a digit")]
    Start(String),
}

/// One field of build metadata, typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", content = "value", rename_all = "kebab-case")]
pub enum BuildField {
    /// `YYYYMMDD`, as AUTO_VERSION's `date` token writes it.
    Date(String),
    /// `HHMMSS` right after a date, as the `time` token writes it.
    Time(String),
    /// Any other run of digits: a commit count.
    Count(String),
    /// 7 to 40 hex digits with at least one letter: a git revision.
    Revision(String),
    /// Anything else: a branch, a mix env, a free label.
    Text(String),
}

#[derive(Debug, Clone)]
enum Shape {
    /// `RELEASE[-PRE][+BUILD]`.
    Shaped {
        release: Vec<String>,
        pre: Vec<String>,
        build: Option<Vec<BuildField>>,
    },
    /// Anything else; ordered naturally.
    Other,
}

impl Version {
    /// Parses and validates `text`; the text is kept exactly.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        validate(text)?;
        Ok(Self(Arc::new(Inner {
            text: text.to_owned(),
            shape: Shape::of(text),
        })))
    }

    /// The exact text, as OTP sees it.
    pub fn as_str(&self) -> &str {
        &self.0.text
    }

    /// The build metadata fields, if the version has the `RELEASE[-PRE]+BUILD` shape.
    pub fn build_fields(&self) -> Option<&[BuildField]> {
        match &self.0.shape {
            Shape::Shaped { build: Some(b), .. } => Some(b),
            _ => None,
        }
    }

    /// The first number of a `MAJOR[.MINOR...]` version (`2` in `2.0.1+20260105-1-abc1234`).
    pub fn major(&self) -> Option<u64> {
        match &self.0.shape {
            Shape::Shaped { release, .. } => release.first()?.parse().ok(),
            Shape::Other => None,
        }
    }

    /// True for a version with a semver pre-release part (`1.0.0-rc.1`).
    pub fn is_prerelease(&self) -> bool {
        matches!(&self.0.shape, Shape::Shaped { pre, .. } if !pre.is_empty())
    }
}

fn validate(text: &str) -> Result<(), VersionError> {
    if text.is_empty() {
        return Err(VersionError::Empty);
    }
    if text.len() > MAX_VERSION_LEN {
        return Err(VersionError::TooLong {
            text: text.to_owned(),
            len: text.len(),
        });
    }
    if let Some((at, found)) = text
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_' | '~')))
    {
        return Err(VersionError::Character {
            text: text.to_owned(),
            found,
            at,
        });
    }
    if !text.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(VersionError::Start(text.to_owned()));
    }
    Ok(())
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl Shape {
    fn of(text: &str) -> Shape {
        let (head, build) = match text.split_once('+') {
            Some((h, b)) => (h, Some(b)),
            None => (text, None),
        };
        let (release, pre) = match head.split_once('-') {
            Some((r, p)) => (r, Some(p)),
            None => (head, None),
        };
        let release: Vec<&str> = release.split('.').collect();
        if !release.iter().all(|c| is_digits(c)) {
            return Shape::Other;
        }
        let pre: Vec<&str> = match pre {
            Some(p) => p.split('.').collect(),
            None => Vec::new(),
        };
        if pre.iter().any(|i| i.is_empty()) {
            return Shape::Other;
        }
        let build = match build {
            Some(b) => {
                let raw: Vec<&str> = b.split(['-', '.', '+']).collect();
                if raw.iter().any(|f| f.is_empty()) {
                    return Shape::Other;
                }
                Some(classify_build(&raw))
            }
            None => None,
        };
        Shape::Shaped {
            release: release.into_iter().map(str::to_owned).collect(),
            pre: pre.into_iter().map(str::to_owned).collect(),
            build,
        }
    }
}

fn is_date(s: &str) -> bool {
    if s.len() != 8 || !is_digits(s) {
        return false;
    }
    let (y, m, d) = (&s[..4], &s[4..6], &s[6..]);
    let (y, m, d): (u32, u32, u32) = (y.parse().unwrap_or(0), m.parse().unwrap_or(0), d.parse().unwrap_or(0));
    (1970..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d)
}

fn is_time(s: &str) -> bool {
    if s.len() != 6 || !is_digits(s) {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    num(0..2) < 24 && num(2..4) < 60 && num(4..6) < 60
}

fn classify_build(raw: &[&str]) -> Vec<BuildField> {
    let mut out: Vec<BuildField> = Vec::with_capacity(raw.len());
    for &f in raw {
        let after_date = matches!(out.last(), Some(BuildField::Date(_)));
        let field = if is_date(f) {
            BuildField::Date(f.to_owned())
        } else if after_date && is_time(f) {
            BuildField::Time(f.to_owned())
        } else if is_digits(f) {
            BuildField::Count(f.to_owned())
        } else if (7..=40).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            BuildField::Revision(f.to_owned())
        } else {
            BuildField::Text(f.to_owned())
        };
        out.push(field);
    }
    out
}

/// Compares two digit strings as numbers of any size.
fn cmp_numeric(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// semver §11 for one pre-release identifier.
fn cmp_pre_ident(a: &str, b: &str) -> Ordering {
    match (is_digits(a), is_digits(b)) {
        (true, true) => cmp_numeric(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

impl BuildField {
    /// The field's text.
    pub fn as_str(&self) -> &str {
        match self {
            BuildField::Date(s)
            | BuildField::Time(s)
            | BuildField::Count(s)
            | BuildField::Revision(s)
            | BuildField::Text(s) => s,
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, BuildField::Date(_) | BuildField::Time(_) | BuildField::Count(_))
    }

    fn cmp_field(&self, other: &Self) -> Ordering {
        match (self.is_numeric(), other.is_numeric()) {
            (true, true) => cmp_numeric(self.as_str(), other.as_str()),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => self.as_str().cmp(other.as_str()),
        }
    }
}

/// Natural order: runs of digits compare as numbers, everything else bytewise.
fn cmp_natural(a: &str, b: &str) -> Ordering {
    fn runs(s: &str) -> impl Iterator<Item = &str> {
        let bytes = s.as_bytes();
        let mut start = 0;
        std::iter::from_fn(move || {
            if start >= bytes.len() {
                return None;
            }
            let digit = bytes[start].is_ascii_digit();
            let len = bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit() == digit)
                .count();
            let run = &s[start..start + len];
            start += len;
            Some(run)
        })
    }
    let mut ra = runs(a);
    let mut rb = runs(b);
    loop {
        match (ra.next(), rb.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = if is_digits(x) && is_digits(y) {
                    cmp_numeric(x, y)
                } else {
                    x.cmp(y)
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn cmp_release(a: &[String], b: &[String]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let x = a.get(i).map_or("0", String::as_str);
            let y = b.get(i).map_or("0", String::as_str);
            cmp_numeric(x, y)
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn cmp_pre(a: &[String], b: &[String]) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a
            .iter()
            .zip(b)
            .map(|(x, y)| cmp_pre_ident(x, y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.len().cmp(&b.len())),
    }
}

fn cmp_build(a: Option<&[BuildField]>, b: Option<&[BuildField]>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => a
            .iter()
            .zip(b)
            .map(|(x, y)| x.cmp_field(y))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| a.len().cmp(&b.len())),
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let typed = match (&self.0.shape, &other.0.shape) {
            (Shape::Other, Shape::Other) => cmp_natural(&self.0.text, &other.0.text),
            (Shape::Other, Shape::Shaped { .. }) => Ordering::Less,
            (Shape::Shaped { .. }, Shape::Other) => Ordering::Greater,
            (
                Shape::Shaped {
                    release: ra,
                    pre: pa,
                    build: ba,
                },
                Shape::Shaped {
                    release: rb,
                    pre: pb,
                    build: bb,
                },
            ) => cmp_release(ra, rb)
                .then_with(|| cmp_pre(pa, pb))
                .then_with(|| cmp_build(ba.as_deref(), bb.as_deref())),
        };
        typed.then_with(|| self.0.text.cmp(&other.0.text))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.0.text == other.0.text
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.text.hash(state);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.text)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({:?})", self.0.text)
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.text)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn assert_sorted(list: &[&str]) {
        for pair in list.windows(2) {
            assert!(v(pair[0]) < v(pair[1]), "{} < {} should hold", pair[0], pair[1]);
            assert!(v(pair[1]) > v(pair[0]), "{} > {} should hold", pair[1], pair[0]);
        }
    }

    #[test]
    fn auto_version_orders_by_build_fields_not_by_string() {
        // Same-day builds: string order puts "1000" before "381", and so does semver, which
        // compares build metadata as strings.
        assert!("0.0.1+20171116-1000-49ab6e0" < "0.0.1+20171116-381-eddcacc");
        assert!(v("0.0.1+20171116-1000-49ab6e0") > v("0.0.1+20171116-381-eddcacc"));
        assert_sorted(&[
            "0.0.1",
            "0.0.1+20171116-381-eddcacc",
            "0.0.1+20171204-1000-49ab6e0",
            "0.0.1+20171204-1001-0aa0bb1",
            "0.0.2+20171101-5-aaaaaaa",
        ]);
        // commit-count first crosses digit boundaries correctly.
        assert_sorted(&["0.1.0+99-eddcacc", "0.1.0+100-49ab6e0", "0.1.0+1000-49ab6e0"]);
        // date+time: time breaks ties between same-day builds.
        assert_sorted(&["1.0.0+20240101-093000-7-abcdef0", "1.0.0+20240101-101500-7-abcdef0"]);
    }

    #[test]
    fn build_fields_are_typed() {
        let fields = v("0.0.1+20171116-103000-381-eddcacc-feature-x")
            .build_fields()
            .unwrap()
            .to_vec();
        assert_eq!(
            fields,
            vec![
                BuildField::Date("20171116".into()),
                BuildField::Time("103000".into()),
                BuildField::Count("381".into()),
                BuildField::Revision("eddcacc".into()),
                BuildField::Text("feature".into()),
                BuildField::Text("x".into()),
            ]
        );
        // A six-digit count that is not after a date stays a count.
        assert_eq!(
            v("1.0.0+123456").build_fields().unwrap()[0],
            BuildField::Count("123456".into())
        );
    }

    #[test]
    fn semver_precedence() {
        assert_sorted(&[
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
            "2.0.0",
        ]);
    }

    #[test]
    fn otp_app_versions() {
        assert_sorted(&["2.0.1", "2.0.1.1", "2.0.2", "4.2", "4.2.1", "8.5.3", "13.1.5", "13.2"]);
        // Equal numerically, still distinct and totally ordered by text.
        assert_ne!(v("1.0"), v("1.0.0"));
        assert_eq!(v("1.0").cmp(&v("1.0.0")), Ordering::Less);
    }

    #[test]
    fn unshaped_versions_sort_first_and_naturally() {
        assert_sorted(&["R9B", "R16B02", "R16B03", "master", "0.1"]);
    }

    #[test]
    fn text_is_kept_exactly() {
        for s in ["0.0.1+20171116-381-eddcacc", "01.002", "1.0.0-rc.1+build.5", "R16B03-1"] {
            assert_eq!(v(s).to_string(), s);
            assert_eq!(
                serde_json::from_str::<Version>(&serde_json::to_string(&v(s)).unwrap())
                    .unwrap()
                    .as_str(),
                s
            );
        }
    }

    #[test]
    fn rejects_bad_versions_with_the_input_named() {
        assert_eq!(Version::parse("").unwrap_err(), VersionError::Empty);
        assert_eq!(
            Version::parse("1.0/../../etc").unwrap_err().to_string(),
            "version `1.0/../../etc` contains '/' at byte 3; allowed are letters, digits and `.+-_~`"
        );
        assert_eq!(
            Version::parse("..").unwrap_err().to_string(),
            "version `..` must start with a letter or a digit"
        );
        assert!(matches!(
            Version::parse(&"1".repeat(201)),
            Err(VersionError::TooLong { len: 201, .. })
        ));
        assert!(matches!(
            Version::parse("1.0 "),
            Err(VersionError::Character { found: ' ', .. })
        ));
    }

    fn version_strategy() -> impl Strategy<Value = String> {
        let num = prop_oneof![
            Just("0".to_owned()),
            Just("00".to_owned()),
            "[0-9]{1,3}",
            "[0-9]{18,22}"
        ];
        let release = prop::collection::vec(num.clone(), 1..4).prop_map(|v| v.join("."));
        let ident = prop_oneof![num.clone(), "[a-z]{1,3}", "[a-z0-9]{1,4}"];
        let pre = prop::option::of(prop::collection::vec(ident.clone(), 1..3).prop_map(|v| v.join(".")));
        let field = prop_oneof![
            Just("20171116".to_owned()),
            Just("20171204".to_owned()),
            Just("103000".to_owned()),
            num,
            "[0-9a-f]{7}",
            "[a-z]{1,5}",
        ];
        let build = prop::option::of(prop::collection::vec(field, 1..4).prop_map(|v| v.join("-")));
        let shaped = (release, pre, build).prop_map(|(r, p, b)| {
            let mut s = r;
            if let Some(p) = p {
                s = format!("{s}-{p}");
            }
            if let Some(b) = b {
                s = format!("{s}+{b}");
            }
            s
        });
        prop_oneof![shaped, "[A-Za-z0-9][A-Za-z0-9._+~-]{0,12}"]
    }

    proptest! {
        #[test]
        fn round_trips(s in version_strategy()) {
            let ver = Version::parse(&s).unwrap();
            prop_assert_eq!(ver.to_string(), s.clone());
            prop_assert_eq!(Version::parse(ver.as_str()).unwrap(), ver);
        }

        #[test]
        fn order_is_total_and_antisymmetric(a in version_strategy(), b in version_strategy()) {
            let (x, y) = (v(&a), v(&b));
            prop_assert_eq!(x.cmp(&y), y.cmp(&x).reverse());
            prop_assert_eq!(x.cmp(&y) == Ordering::Equal, a == b);
        }

        #[test]
        fn order_is_transitive(a in version_strategy(), b in version_strategy(), c in version_strategy()) {
            let vs = [v(&a), v(&b), v(&c)];
            for x in &vs {
                for y in &vs {
                    for z in &vs {
                        if x <= y && y <= z {
                            prop_assert!(x <= z, "{x} <= {y} <= {z} but not {x} <= {z}");
                        }
                    }
                }
            }
        }
    }
}
