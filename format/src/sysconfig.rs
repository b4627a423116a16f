//! `sys.config` as a host and a release share it: the release ships its own, the host keeps
//! its own (secrets, ports, hostnames: never in the artifact), and the node must run the
//! host's values on top of the release's after every install, upgrade, rollback and restart.
//!
//! The rule (SPEC.md §9.1): per application, every key the host's file sets wins; every key
//! it lacks comes from the release being run, so a new release's new defaults arrive while
//! the host's settings stay. Applications only one side configures are kept. Entries that
//! name other config files (`"/etc/shop/extra.config"`) are kept from both, the release's
//! first, as OTP reads them in order. The release's leading comment lines are kept: mix's
//! start script reads `%% RUNTIME_CONFIG=true|false` from the first lines.

use crate::term::{Term, TermError, parse_terms};

/// Why a `sys.config` could not be merged.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum SysConfigError {
    #[error(transparent)]
    Term(#[from] TermError),
    #[error("{file}: a sys.config holds one list of `{{Application, [{{Key, Value}}]}}` and file names, found {found}")]
    Shape { file: String, found: String },
}

/// One `sys.config`: its entries, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SysConfig {
    /// Comment lines before the term, kept as they are (`%% coding: utf-8`, mix's
    /// `%% RUNTIME_CONFIG=...`).
    pub header: Vec<String>,
    pub entries: Vec<Entry>,
}

/// An entry of a `sys.config`.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// `{App, [{Key, Value}]}`.
    App { name: Term, env: Vec<(Term, Term)> },
    /// A file of further config, read where it stands.
    File(String),
}

impl SysConfig {
    /// Parses the text of a `sys.config`; `file` names it in errors. An empty file is an
    /// empty config.
    pub fn parse(file: &str, text: &str) -> Result<Self, SysConfigError> {
        let header = text
            .lines()
            .take_while(|l| l.trim_start().starts_with('%'))
            .map(str::to_owned)
            .collect();
        let shape = |found: String| SysConfigError::Shape {
            file: file.to_owned(),
            found,
        };
        let terms = parse_terms(file, text)?;
        let list = match terms.as_slice() {
            [] => {
                return Ok(SysConfig {
                    header,
                    entries: vec![],
                });
            }
            [one] => one.as_list().ok_or_else(|| shape(one.to_string()))?.into_owned(),
            more => return Err(shape(format!("{} terms", more.len()))),
        };
        let mut entries = Vec::with_capacity(list.len());
        for item in list {
            if let Some(path) = item.as_string() {
                entries.push(Entry::File(path));
                continue;
            }
            let Some([name, env]) = item.as_tuple() else {
                return Err(shape(item.to_string()));
            };
            let env = env.as_list().ok_or_else(|| shape(item.to_string()))?;
            let env = env
                .iter()
                .map(|kv| match kv.as_tuple() {
                    Some([k, v]) => Ok((k.clone(), v.clone())),
                    _ => Err(shape(kv.to_string())),
                })
                .collect::<Result<Vec<_>, _>>()?;
            entries.push(Entry::App {
                name: name.clone(),
                env,
            });
        }
        Ok(SysConfig { header, entries })
    }

    /// The release's config (`self`) with the host's on top, by the rule of this module.
    pub fn overlay(&self, host: &SysConfig) -> SysConfig {
        let mut entries: Vec<Entry> = Vec::new();
        for e in self.entries.iter().chain(&host.entries) {
            match e {
                Entry::File(path) => {
                    if !entries.iter().any(|x| matches!(x, Entry::File(p) if p == path)) {
                        entries.push(e.clone());
                    }
                }
                Entry::App { name, env } => {
                    let existing = entries.iter_mut().find_map(|x| match x {
                        Entry::App { name: n, env } if n.erl_eq(name) => Some(env),
                        _ => None,
                    });
                    match existing {
                        None => entries.push(e.clone()),
                        Some(have) => {
                            for (k, v) in env {
                                match have.iter_mut().find(|(hk, _)| hk.erl_eq(k)) {
                                    Some(slot) => slot.1 = v.clone(),
                                    None => have.push((k.clone(), v.clone())),
                                }
                            }
                        }
                    }
                }
            }
        }
        SysConfig {
            header: self.header.clone(),
            entries,
        }
    }

    /// The config a term stands for (what a config provider returns), with `header`.
    pub fn from_term(file: &str, header: Vec<String>, term: &Term) -> Result<Self, SysConfigError> {
        let mut config = Self::parse(file, &format!("{term}."))?;
        config.header = header;
        Ok(config)
    }

    /// The value `key` of application `app`, if set.
    pub fn get(&self, app: &str, key: &str) -> Option<&Term> {
        self.entries.iter().rev().find_map(|e| match e {
            Entry::App { name, env } if name.as_atom() == Some(app) => {
                env.iter().find(|(k, _)| k.as_atom() == Some(key)).map(|(_, v)| v)
            }
            _ => None,
        })
    }

    /// The config as one term, the list OTP reads.
    pub fn to_term(&self) -> Term {
        Term::List(
            self.entries
                .iter()
                .map(|e| match e {
                    Entry::File(path) => Term::string(path),
                    Entry::App { name, env } => Term::Tuple(vec![
                        name.clone(),
                        Term::List(
                            env.iter()
                                .map(|(k, v)| Term::Tuple(vec![k.clone(), v.clone()]))
                                .collect(),
                        ),
                    ]),
                })
                .collect(),
        )
    }

    /// The text of the file: the header, then the term, as `file:consult/1` reads it back.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str(&self.to_term().to_string());
        out.push_str(".\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SysConfig {
        SysConfig::parse("sys.config", text).unwrap()
    }

    #[test]
    fn host_keys_win_and_release_keys_fill_in() {
        let release = parse(
            "%% coding: utf-8\n%% RUNTIME_CONFIG=false\n[{shop,[{greeting,<<\"welcome\">>},{port,4000},{new_key,1}]},{logger,[{level,info}]},\"/etc/extra.config\"].\n",
        );
        let host = parse("[{shop, [{port, 4810}, {region, \"eu\"}]}, {kernel, [{logger_level, notice}]}].\n");
        let merged = release.overlay(&host);
        assert_eq!(merged.header, vec!["%% coding: utf-8", "%% RUNTIME_CONFIG=false"]);
        assert_eq!(merged.get("shop", "port"), Some(&Term::Integer(4810)));
        assert_eq!(merged.get("shop", "greeting"), Some(&Term::Binary(b"welcome".to_vec())));
        assert_eq!(merged.get("shop", "new_key"), Some(&Term::Integer(1)));
        assert_eq!(merged.get("shop", "region"), Some(&Term::string("eu")));
        assert_eq!(merged.get("kernel", "logger_level"), Some(&Term::atom("notice")));
        assert!(merged.entries.contains(&Entry::File("/etc/extra.config".into())));
        // What it writes reads back as the same config.
        let text = merged.render();
        assert!(
            text.starts_with("%% coding: utf-8\n%% RUNTIME_CONFIG=false\n[{shop,"),
            "{text}"
        );
        assert_eq!(parse(&text).entries, merged.entries);
    }

    #[test]
    fn malformed_configs_name_the_file() {
        let e = SysConfig::parse("/etc/shop/sys.config", "[{shop, notalist}].").unwrap_err();
        assert!(
            e.to_string().starts_with("/etc/shop/sys.config: a sys.config holds"),
            "{e}"
        );
        let e = SysConfig::parse("/etc/shop/sys.config", "[{shop, [}].").unwrap_err();
        assert!(e.to_string().starts_with("/etc/shop/sys.config:1:"), "{e}");
        assert_eq!(parse("").entries, vec![]);
    }
}
