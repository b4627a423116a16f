//! `rel rollback`: back to the previous release, live, through the current relup's downgrade.

use anyhow::{Context, Result, bail};
use rel_format::Version;

use crate::args::RollbackArgs;
use crate::settings::Settings;
use crate::target::config::HostConfig;
use crate::target::node::Node;
use crate::target::release_handler::expect_ok;
use crate::target::{erl_string, relup_downgrades};

pub async fn run(s: &Settings, args: &RollbackArgs) -> Result<()> {
    let root = &args.host.root;
    let config = HostConfig::load(root, args.host.host_config.as_deref())?;
    let node = Node::new(&config, root);
    let current = node
        .running_version()
        .context("a live rollback needs the running node")?;
    let releases = node.eval("[{V, S} || {_, V, _, S} <- release_handler:which_releases()]")?;
    // Back means the newest installed release older than the current one, in rel's order
    // (a release left by an earlier rollback is newer, not previous).
    let current_v: Version = current.parse()?;
    let previous = releases
        .as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| match r.as_tuple() {
            Some([v, st]) if st.as_atom() == Some("old") => v.as_string().and_then(|v| v.parse::<Version>().ok()),
            _ => None,
        })
        .filter(|v| *v < current_v)
        .max()
        .map(|v| v.to_string())
        .with_context(|| {
            format!(
                "no release of {} older than {current} is installed on this node to go back to",
                args.name
            )
        })?;
    let downs = relup_downgrades(root, &current)?;
    if !downs.contains(&previous) {
        bail!("releases/{current}/relup has no downgrade to {previous}; going back needs a restart on {previous}");
    }
    let prev_s = erl_string(&previous);
    expect_ok(
        &node.eval(&format!("release_handler:install_release({prev_s})"))?,
        &format!("install_release of {previous}"),
    )?;
    expect_ok(
        &node.eval(&format!("release_handler:make_permanent({prev_s})"))?,
        &format!("make_permanent of {previous}"),
    )?;
    if !s.quiet {
        crate::say(&format!(
            "{} rolled back live from {current} to {previous}, no restart",
            args.name
        ));
    }
    Ok(())
}
