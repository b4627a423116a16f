//! Release upgrade scripts (`relup`) from appups, without Erlang: a port of OTP's
//! `systools_relup:mk_relup/3,4` and `systools_rc:translate_scripts/4` (sasl 4.2, OTP 25).
//!
//! For each release upgraded from (and each downgraded to) the script is: `add_application`
//! for new applications, each changed application's appup clause for that version,
//! `remove_application` for dropped applications, `restart_new_emulator` when ERTS changes;
//! then the high-level instructions are expanded and translated to low-level ones:
//! `load_object_code` before `point_of_no_return`, and after it, per group of modules that
//! depend on each other, `suspend`, `load`/`remove` (reverse dependency order when
//! upgrading), `code_change`, `resume`. Differential tests compare the result with
//! `systools:make_relup` on the fixtures.
//!
//! One difference is deliberate: where several dependency orders are valid, OTP's order
//! follows the hash order of its `digraph` tables; rel follows the order of the instructions
//! in the appup. Both satisfy every dependency.

mod rc;

use crate::term::Term;
use rc::{Mode, translate_scripts};

/// An application of a release, as the relup needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelupApp {
    pub name: String,
    pub vsn: String,
    /// The `modules` of its `.app`.
    pub modules: Vec<String>,
    /// `permanent` unless the `.rel` says otherwise.
    pub start_type: String,
}

/// A release, as the relup needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelupRelease {
    pub name: String,
    pub vsn: String,
    pub erts: String,
    pub apps: Vec<RelupApp>,
}

/// Why no relup could be made (OTP's error terms, as sentences).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum RelupError {
    #[error("no appup entry in {app}.appup ({app} {to}) for upgrading from {app} {from}")]
    NoRelup { app: String, to: String, from: String },
    #[error("release {0} has no sasl application and cannot be upgraded")]
    MissingSasl(String),
    #[error("appup of {app}: {what}")]
    BadAppup { app: String, what: String },
    #[error("instruction `{0}` is not a valid appup instruction")]
    BadInstruction(String),
    #[error("instruction `{0}` may not come before point_of_no_return")]
    BadBeforePointOfNoReturn(String),
    #[error("more than one point_of_no_return")]
    TooManyPointOfNoReturn,
    #[error("module {0} has instructions in more than one place")]
    MuldefModule(String),
    #[error("an instruction depends on module {0}, which has no instruction")]
    UndefModule(String),
    #[error("module {0} is in no application of the release")]
    NoSuchModule(String),
    #[error("application {0} is not in the release")]
    NoSuchApplication(String),
    #[error("application {0} is removed but still in the new release")]
    RemovedApplicationPresent(String),
    #[error("conflicting versions of {lib}: {v1} and {v2}")]
    ConflictingVersions { lib: String, v1: String, v2: String },
}

pub(crate) fn atom(s: &str) -> Term {
    Term::atom(s)
}

pub(crate) fn tuple(items: Vec<Term>) -> Term {
    Term::Tuple(items)
}

pub(crate) fn atoms(list: &[String]) -> Term {
    Term::List(list.iter().map(|m| atom(m)).collect())
}

pub(crate) fn tag(t: &Term) -> Option<&str> {
    match t {
        Term::Tuple(items) => items.first().and_then(Term::as_atom),
        Term::Atom(a) => Some(a),
        _ => None,
    }
}

pub(crate) fn items(t: &Term) -> &[Term] {
    t.as_tuple().unwrap_or(&[])
}

/// Whether `text` is matched whole by the regular expression `pattern` (appup version keys
/// given as binaries).
fn full_match(pattern: &str, text: &str) -> bool {
    regex_lite::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(text))
}

/// `appup_search_for_version/2`: the instructions of the first clause whose version is
/// `base` exactly, or a binary regex matching all of it.
pub fn appup_search_for_version<'a>(base: &str, clauses: &'a [Term]) -> Option<&'a Term> {
    clauses.iter().find_map(|c| match c.as_tuple() {
        Some([v, instrs]) => {
            let hit = match v {
                Term::Binary(b) => std::str::from_utf8(b).is_ok_and(|p| full_match(p, base)),
                other => other.as_string().is_some_and(|s| s == base),
            };
            hit.then_some(instrs)
        }
        _ => None,
    })
}

/// Makes the relup of `top` for upgrades from `up_from` and downgrades to `down_to`.
/// `appup(app)` returns the appup term of an application of `top`.
pub fn make_relup(
    top: &RelupRelease,
    up_from: &[RelupRelease],
    down_to: &[RelupRelease],
    appup: &dyn Fn(&RelupApp) -> Result<Term, RelupError>,
) -> Result<Term, RelupError> {
    check_sasl(top)?;
    let mut up = Vec::new();
    for base in up_from {
        check_sasl(base)?;
        let scripts = collect(Mode::Up, top, base, appup)?;
        let scripts = with_app_scripts(base, top, scripts, top, base);
        let instrs = translate_scripts(Mode::Up, scripts, &top.apps, &base.apps)?;
        up.push(tuple(vec![
            Term::string(&base.vsn),
            Term::List(vec![]),
            Term::List(instrs),
        ]));
    }
    let mut down = Vec::new();
    for base in down_to {
        check_sasl(base)?;
        let scripts = collect(Mode::Dn, top, base, appup)?;
        let scripts = with_app_scripts(top, base, scripts, top, base);
        let instrs = translate_scripts(Mode::Dn, scripts, &base.apps, &top.apps)?;
        down.push(tuple(vec![
            Term::string(&base.vsn),
            Term::List(vec![]),
            Term::List(instrs),
        ]));
    }
    // OTP accumulates with [VDR | Acc]: the last base comes first.
    up.reverse();
    down.reverse();
    Ok(tuple(vec![Term::string(&top.vsn), Term::List(up), Term::List(down)]))
}

fn check_sasl(r: &RelupRelease) -> Result<(), RelupError> {
    if r.apps.iter().any(|a| a.name == "sasl") {
        Ok(())
    } else {
        Err(RelupError::MissingSasl(format!("{} {}", r.name, r.vsn)))
    }
}

/// `collect_appup_scripts/5`: the appup clause of every application whose version changed.
fn collect(
    mode: Mode,
    top: &RelupRelease,
    base: &RelupRelease,
    appup: &dyn Fn(&RelupApp) -> Result<Term, RelupError>,
) -> Result<Vec<Vec<Term>>, RelupError> {
    let mut scripts = Vec::new();
    for app in &top.apps {
        let Some(base_app) = base.apps.iter().find(|a| a.name == app.name) else {
            continue;
        };
        if base_app.vsn == app.vsn {
            continue;
        }
        let term = appup(app)?;
        let bad = |what: &str| RelupError::BadAppup {
            app: app.name.clone(),
            what: what.to_owned(),
        };
        let parts = term
            .as_tuple()
            .filter(|p| p.len() == 3)
            .ok_or_else(|| bad("not {Vsn, UpClauses, DownClauses}"))?;
        let clauses = parts[if mode == Mode::Up { 1 } else { 2 }]
            .as_list()
            .ok_or_else(|| bad("clauses are not a list"))?;
        let instrs = appup_search_for_version(&base_app.vsn, &clauses).ok_or_else(|| RelupError::NoRelup {
            app: app.name.clone(),
            to: app.vsn.clone(),
            from: base_app.vsn.clone(),
        })?;
        let list = instrs.as_list().ok_or_else(|| bad("instructions are not a list"))?;
        scripts.push(list.into_owned());
    }
    Ok(scripts)
}

/// `prepend_add_app_scripts`, `append_remove_app_scripts`, `check_for_emulator_restart`.
fn with_app_scripts(
    from: &RelupRelease,
    to: &RelupRelease,
    scripts: Vec<Vec<Term>>,
    top: &RelupRelease,
    base: &RelupRelease,
) -> Vec<Vec<Term>> {
    let mut out: Vec<Vec<Term>> = to
        .apps
        .iter()
        .filter(|a| !from.apps.iter().any(|f| f.name == a.name))
        .map(|a| vec![tuple(vec![atom("add_application"), atom(&a.name), atom(&a.start_type)])])
        .collect();
    out.extend(scripts);
    out.extend(
        from.apps
            .iter()
            .filter(|a| !to.apps.iter().any(|t| t.name == a.name))
            .map(|a| vec![tuple(vec![atom("remove_application"), atom(&a.name)])]),
    );
    if top.erts != base.erts {
        out.insert(0, vec![atom("restart_new_emulator")]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::parse_term;

    fn app(name: &str, vsn: &str, mods: &[&str]) -> RelupApp {
        RelupApp {
            name: name.into(),
            vsn: vsn.into(),
            modules: mods.iter().map(|m| (*m).to_owned()).collect(),
            start_type: "permanent".into(),
        }
    }

    fn rel(vsn: &str, erts: &str, apps: Vec<RelupApp>) -> RelupRelease {
        let mut all = vec![
            app("kernel", "8.5.3", &[]),
            app("stdlib", "4.2", &[]),
            app("sasl", "4.2", &[]),
        ];
        all.extend(apps);
        RelupRelease {
            name: "r".into(),
            vsn: vsn.into(),
            erts: erts.into(),
            apps: all,
        }
    }

    #[test]
    fn dependent_group_order_matches_systools() {
        // a depends on b, b on c; c is new.
        let appup = parse_term(
            "a.appup",
            r#"{"2",[{"1",[{add_module,c},{update,a,{advanced,[]},[b]},{load_module,b,[c]}]}],
                    [{"1",[{delete_module,c},{update,a,{advanced,[]},[b]},{load_module,b,[c]}]}]}."#,
        )
        .unwrap();
        let top = rel("2", "13", vec![app("x", "2", &["a", "b", "c"])]);
        let base = rel("1", "13", vec![app("x", "1", &["a", "b"])]);
        let bases = [base];
        let relup = make_relup(&top, &bases, &bases, &|_| Ok(appup.clone())).unwrap();
        let expected = parse_term(
            "expected",
            r#"{"2",
               [{"1",[],
                 [{load_object_code,{x,"2",[a,b,c]}},
                  point_of_no_return,
                  {suspend,[a]},
                  {load,{c,brutal_purge,brutal_purge}},
                  {load,{b,brutal_purge,brutal_purge}},
                  {load,{a,brutal_purge,brutal_purge}},
                  {code_change,up,[{a,[]}]},
                  {resume,[a]}]}],
               [{"1",[],
                 [{load_object_code,{x,"1",[a,b]}},
                  point_of_no_return,
                  {suspend,[a]},
                  {code_change,down,[{a,[]}]},
                  {load,{a,brutal_purge,brutal_purge}},
                  {load,{b,brutal_purge,brutal_purge}},
                  {remove,{c,brutal_purge,brutal_purge}},
                  {purge,[c]},
                  {resume,[a]}]}]}."#,
        )
        .unwrap();
        assert!(relup.erl_eq(&expected), "got\n{relup}\nexpected\n{expected}");
    }

    #[test]
    fn errors_are_otp_errors() {
        let appup = parse_term("a.appup", r#"{"2",[{"0",[]}],[{"0",[]}]}."#).unwrap();
        let top = rel("2", "13", vec![app("x", "2", &["a"])]);
        let base = rel("1", "13", vec![app("x", "1", &["a"])]);
        let err = make_relup(&top, &[base], &[], &|_| Ok(appup.clone())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no appup entry in x.appup (x 2) for upgrading from x 1"
        );
        let appup = parse_term("a.appup", r#"{"2",[{"1",[{load_module,a,[zz]}]}],[]}."#).unwrap();
        let base = rel("1", "13", vec![app("x", "1", &["a"])]);
        assert_eq!(
            make_relup(&top, &[base], &[], &|_| Ok(appup.clone())).unwrap_err(),
            RelupError::UndefModule("zz".into())
        );
        let no_sasl = RelupRelease {
            apps: vec![],
            ..top.clone()
        };
        assert!(matches!(
            make_relup(&no_sasl, &[], &[], &|_| Ok(appup.clone())),
            Err(RelupError::MissingSasl(_))
        ));
    }

    #[test]
    fn a_new_erts_restarts_the_emulator_as_systools_does() {
        let appup = parse_term(
            "a.appup",
            r#"{"2",[{"1",[{load_module,a}]}],[{"1",[{load_module,a}]}]}."#,
        )
        .unwrap();
        let top = rel("2", "14.0", vec![app("x", "2", &["a"])]);
        let base = rel("1", "13.1.5", vec![app("x", "1", &["a"])]);
        let bases = [base];
        let relup = make_relup(&top, &bases, &bases, &|_| Ok(appup.clone())).unwrap();
        let expected = parse_term(
            "expected",
            r#"{"2",
               [{"1",[],[restart_new_emulator,{load_object_code,{x,"2",[a]}},point_of_no_return,{load,{a,brutal_purge,brutal_purge}}]}],
               [{"1",[],[{load_object_code,{x,"1",[a]}},point_of_no_return,{load,{a,brutal_purge,brutal_purge}},restart_emulator]}]}."#,
        )
        .unwrap();
        assert!(relup.erl_eq(&expected), "got\n{relup}\nexpected\n{expected}");
    }

    #[test]
    fn regex_version_keys() {
        let clauses = vec![parse_term("k", r#"{<<"0\\.1\\..*">>, [x]}."#).unwrap()];
        assert!(appup_search_for_version("0.1.5", &clauses).is_some());
        assert!(appup_search_for_version("10.1.5", &clauses).is_none());
    }
}
