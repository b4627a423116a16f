//! `release_handler` on the node: unpack, check, install and make permanent a release,
//! cleaning up after a failure so that a retry works.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rel_format::Version;
use rel_format::term::Term;

use super::erl_string;
use super::node::Node;

/// Interprets a `release_handler` reply.
pub fn expect_ok(reply: &Term, what: &str) -> Result<()> {
    let ok = match reply {
        Term::Atom(a) => a == "ok",
        Term::Tuple(t) => t.first().and_then(Term::as_atom) == Some("ok"),
        _ => false,
    };
    if ok { Ok(()) } else { bail!("{what} failed: {reply}") }
}

/// The relup's instructions from `from`, for a dry run.
pub fn relup_instructions(tarball: &Path, to: &str, from: &str) -> Result<String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(tarball)?));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy() == format!("releases/{to}/relup") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text)?;
            let relup = rel_format::term::parse_terms("relup", &text)?.remove(0);
            let ups = relup
                .as_tuple()
                .and_then(|t| t.get(1))
                .and_then(Term::as_list)
                .map(|l| l.into_owned())
                .unwrap_or_default();
            for u in ups {
                if let Some([v, _, instrs]) = u.as_tuple()
                    && v.as_string().as_deref() == Some(from)
                {
                    return Ok(instrs
                        .as_list()
                        .unwrap_or_default()
                        .iter()
                        .map(|i| format!("      {i}"))
                        .collect::<Vec<_>>()
                        .join("\n"));
                }
            }
        }
    }
    bail!("the upgrade artifact has no relup entry from {from}")
}

/// unpack → check_install → install → make_permanent, cleaning up what a failure leaves so
/// that a retry works.
pub fn apply_step(node: &Node<'_>, name: &str, from: &Version, to: &Version, tarball: &Path) -> Result<()> {
    let to_s = erl_string(to.as_str());
    let remove = || {
        let _ = node.eval(&format!("release_handler:remove_release({to_s})"));
    };
    let mut unpacked = node.eval(&format!("release_handler:unpack_release({})", erl_string(name)))?;
    if unpacked.to_string().contains("existing_release") {
        // A previous attempt left it unpacked (Distillery's and Jellyfish's trap): remove it
        // and unpack again.
        crate::warn(&format!(
            "{to} was left unpacked by an earlier attempt; removing it and retrying"
        ));
        remove();
        unpacked = node.eval(&format!("release_handler:unpack_release({})", erl_string(name)))?;
    }
    if let Err(e) = expect_ok(&unpacked, &format!("unpack_release of {to}")) {
        let _ = std::fs::remove_file(tarball);
        return Err(e.context(format!("the node stays on {from}")));
    }
    let checked = node.eval(&format!("release_handler:check_install_release({to_s})"))?;
    if let Err(e) = expect_ok(&checked, &format!("check_install_release of {to}")) {
        remove();
        return Err(e.context(format!(
            "the node stays on {from}; {to} was removed so that a retry works"
        )));
    }
    let installed = match node.eval(&format!(
        "release_handler:install_release({to_s}, [{{update_paths, true}}])"
    )) {
        Ok(t) => t,
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "install_release of {to} got no answer: after its point of no return a failing upgrade restarts the node on {from}"
            )));
        }
    };
    if let Err(e) = expect_ok(&installed, &format!("install_release of {to}")) {
        remove();
        return Err(e.context(format!(
            "the node stays on {from}; {to} was removed so that a retry works"
        )));
    }
    let permanent = node.eval(&format!("release_handler:make_permanent({to_s})"))?;
    expect_ok(&permanent, &format!("make_permanent of {to}"))
        .context(format!("the node runs {to}, but a restart would boot {from}"))
}
