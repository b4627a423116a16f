//! What a release says about itself: its `.rel` file and its `lib/<app>-<vsn>` directories.
//!
//! `systools:make_tar` stores the `.rel` twice, as `releases/<name>.rel` and
//! `releases/<vsn>/<name>.rel`; `mix release` only writes the second. Either gives the
//! release's name, its exact version, its ERTS version and its applications.
//!
//! Lib directory names are split at the **first** `-`: application names cannot contain one,
//! while AUTO_VERSION versions do (`shop-0.1.0+20240101-10-aaaaaaa`).

use serde::Serialize;

use crate::term::{Term, TermError, parse_term};
use crate::version::{Version, VersionError};

/// A release as its `.rel` file describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseSpec {
    pub name: String,
    pub version: Version,
    pub erts: Version,
    pub apps: Vec<RelApp>,
}

/// One application entry of a `.rel` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelApp {
    pub name: String,
    pub version: Version,
    /// `permanent`, `transient`, `temporary`, `load` or `none`; absent means `permanent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub included: Vec<String>,
}

/// Why a `.rel` file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    #[error("cannot parse `{file}`")]
    Syntax {
        file: String,
        #[source]
        source: TermError,
    },
    #[error("`{file}` is not a release file: {what}")]
    Shape { file: String, what: String },
    #[error("`{file}` has an invalid {field}")]
    Version {
        file: String,
        field: String,
        #[source]
        source: VersionError,
    },
    #[error("`{file}` has an invalid {what} name `{name}`")]
    Name {
        file: String,
        what: &'static str,
        name: String,
    },
}

const START_TYPES: &[&str] = &["permanent", "transient", "temporary", "load", "none"];

/// True for a name that is safe as an OTP release or application name and as a storage key
/// segment: starts with a letter, then letters, digits, `_` or `.`, at most 128 bytes.
///
/// `-` is refused on purpose: lib directories are split at their first `-`.
pub fn is_valid_name(name: &str) -> bool {
    name.len() <= 128
        && name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

impl ReleaseSpec {
    /// Parses the text of a `.rel` file; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, ReleaseError> {
        let shape = |what: &str| ReleaseError::Shape {
            file: file.to_owned(),
            what: what.to_owned(),
        };
        let parse_version = |field: String, t: &Term| -> Result<Version, ReleaseError> {
            let s = t
                .as_string()
                .ok_or_else(|| shape(&format!("the {field} is not a string")))?;
            Version::parse(&s).map_err(|source| ReleaseError::Version {
                file: file.to_owned(),
                field,
                source,
            })
        };
        let term = parse_term(file, text).map_err(|source| ReleaseError::Syntax {
            file: file.to_owned(),
            source,
        })?;
        let items = match term.as_tuple() {
            Some(items) if items.len() == 4 && items[0].as_atom() == Some("release") => items,
            _ => return Err(shape("expected {release, {Name, Vsn}, {erts, Vsn}, [Apps]}")),
        };
        let (name, vsn) = match items[1].as_tuple() {
            Some([n, v]) => (
                n.as_string().ok_or_else(|| shape("the release name is not a string"))?,
                v,
            ),
            _ => return Err(shape("expected {Name, Vsn} as the second element")),
        };
        if !is_valid_name(&name) {
            return Err(ReleaseError::Name {
                file: file.to_owned(),
                what: "release",
                name,
            });
        }
        let version = parse_version("release version".into(), vsn)?;
        let erts = match items[2].as_tuple() {
            Some([tag, v]) if tag.as_atom() == Some("erts") => parse_version("ERTS version".into(), v)?,
            _ => return Err(shape("expected {erts, Vsn} as the third element")),
        };
        let list = items[3]
            .as_list()
            .ok_or_else(|| shape("the application list is not a list"))?;
        let mut apps = Vec::with_capacity(list.len());
        for entry in list.iter() {
            let fields = entry.as_tuple().filter(|f| (2..=4).contains(&f.len()));
            let Some(fields) = fields else {
                return Err(shape(&format!(
                    "application entry `{entry}` is not {{App, Vsn[, Type][, Incl]}}"
                )));
            };
            let app = fields[0]
                .as_atom()
                .ok_or_else(|| shape(&format!("application name `{}` is not an atom", fields[0])))?;
            if !is_valid_name(app) {
                return Err(ReleaseError::Name {
                    file: file.to_owned(),
                    what: "application",
                    name: app.to_owned(),
                });
            }
            let version = parse_version(format!("version of `{app}`"), &fields[1])?;
            let mut start_type = None;
            let mut included = Vec::new();
            for extra in &fields[2..] {
                match extra {
                    Term::Atom(a) if START_TYPES.contains(&a.as_str()) && start_type.is_none() => {
                        start_type = Some(a.clone());
                    }
                    other => {
                        let list = other
                            .as_list()
                            .ok_or_else(|| shape(&format!("bad option `{other}` for `{app}`")))?;
                        for inc in list.iter() {
                            let inc = inc.as_atom().ok_or_else(|| {
                                shape(&format!("included application `{inc}` of `{app}` is not an atom"))
                            })?;
                            included.push(inc.to_owned());
                        }
                    }
                }
            }
            apps.push(RelApp {
                name: app.to_owned(),
                version,
                start_type,
                included,
            });
        }
        Ok(ReleaseSpec {
            name,
            version,
            erts,
            apps,
        })
    }

    /// The application entry named `app`.
    pub fn app(&self, app: &str) -> Option<&RelApp> {
        self.apps.iter().find(|a| a.name == app)
    }
}

/// Splits a `lib/` directory name into application name and version, at the first `-`.
///
/// ```
/// # use rel_format::release::split_lib_dir;
/// assert_eq!(split_lib_dir("shop-0.1.0+20240101-10-aaaaaaa"), Some(("shop", "0.1.0+20240101-10-aaaaaaa")));
/// assert_eq!(split_lib_dir("noversion"), None);
/// ```
pub fn split_lib_dir(dir: &str) -> Option<(&str, &str)> {
    dir.split_once('-')
        .filter(|(app, vsn)| !app.is_empty() && !vsn.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REL: &str = r#"{release,{"shop","0.1.0+20240101-10-aaaaaaa"},{erts,"13.1.5"},
        [{kernel,"8.5.3"},{stdlib,"4.2"},{sasl,"4.2"},{shop,"0.1.0+20240101-10-aaaaaaa",transient},
         {shop_extra,"1.0",load,[inc]}]}."#;

    #[test]
    fn reads_a_rel_file() {
        let rel = ReleaseSpec::parse("releases/shop.rel", REL).unwrap();
        assert_eq!(rel.name, "shop");
        assert_eq!(rel.version.as_str(), "0.1.0+20240101-10-aaaaaaa");
        assert_eq!(rel.erts.as_str(), "13.1.5");
        assert_eq!(rel.apps.len(), 5);
        let shop = rel.app("shop").unwrap();
        assert_eq!(shop.start_type.as_deref(), Some("transient"));
        let extra = rel.app("shop_extra").unwrap();
        assert_eq!(
            (extra.start_type.as_deref(), extra.included.as_slice()),
            (Some("load"), &["inc".to_owned()][..])
        );
    }

    #[test]
    fn refuses_bad_release_files_with_the_file_named() {
        let err = ReleaseSpec::parse("r.rel", "{application, x, []}.").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`r.rel` is not a release file: expected {release, {Name, Vsn}, {erts, Vsn}, [Apps]}"
        );
        let err = ReleaseSpec::parse("r.rel", r#"{release,{"../x","1"},{erts,"13"},[]}."#).unwrap_err();
        assert_eq!(err.to_string(), "`r.rel` has an invalid release name `../x`");
        let err = ReleaseSpec::parse("r.rel", r#"{release,{"x","1 0"},{erts,"13"},[]}."#).unwrap_err();
        assert_eq!(err.to_string(), "`r.rel` has an invalid release version");
        let err = ReleaseSpec::parse("r.rel", r#"{release,{"x","1"},{erts,"13"},[{a}]}."#).unwrap_err();
        assert!(err.to_string().contains("application entry `{a}`"), "{err}");
        assert!(matches!(
            ReleaseSpec::parse("r.rel", "{release,"),
            Err(ReleaseError::Syntax { .. })
        ));
    }

    #[test]
    fn lib_dirs_split_at_first_dash() {
        assert_eq!(split_lib_dir("kernel-8.5.3"), Some(("kernel", "8.5.3")));
        assert_eq!(split_lib_dir("-1"), None);
        assert_eq!(split_lib_dir("x-"), None);
    }
}
