//! `rel reload-config`: the host's current config applied to the running node the way
//! `release_handler` applies a release's during an upgrade, without a new release and
//! without restarting any application (Distillery's `reload_config`, rel-style): each
//! application's environment becomes its `.app` defaults with the new config on top, and
//! the applications that have a `config_change/3` callback are told what changed, was added
//! and was removed. Changes that only a restart can apply are refused, with the reason.

use anyhow::{Context, Result, bail};
use rel_format::Version;
use rel_format::sysconfig::Entry;
use rel_format::term::Term;
use serde::Serialize;

use crate::args::ReloadConfigArgs;
use crate::settings::Settings;
use crate::target::Host;

/// Applications whose environment is read at boot only: a change needs a restart.
const BOOT_ONLY: &[&str] = &["kernel", "stdlib", "sasl", "compiler", "erts"];

#[derive(Debug, Default, Serialize)]
struct AppChange {
    app: String,
    changed: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
    /// Whether the application has a `config_change/3` callback to tell.
    notified: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    version: String,
    applied: bool,
    changes: Vec<AppChange>,
}

/// What changes in one application's environment.
struct Edit {
    app: Term,
    set: Vec<(Term, Term)>,
    unset: Vec<Term>,
}

fn keys(list: &[(Term, Term)]) -> Vec<String> {
    list.iter().map(|(k, _)| k.to_string()).collect()
}

/// `[{K, V}]` of a term list.
fn pairs(term: &Term) -> Vec<(Term, Term)> {
    term.as_list()
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| match kv.as_tuple() {
            Some([k, v]) => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

/// The `-app key value` pairs of the node's command line for `app`, as
/// `application_controller` reads them (each a term).
async fn command_line_env(node: &crate::target::node::Node, app: &Term) -> Result<Vec<(Term, Term)>> {
    let args = node.call("init", "get_argument", vec![app.clone()]).await?;
    let Some([_, lists]) = args.as_tuple() else {
        return Ok(vec![]);
    };
    let mut out = Vec::new();
    for list in lists.as_list().unwrap_or_default().iter() {
        let words: Vec<String> = list
            .as_list()
            .unwrap_or_default()
            .iter()
            .filter_map(Term::as_string)
            .collect();
        for pair in words.chunks_exact(2) {
            let term = |text: &str| {
                rel_format::term::parse_term("the node's command line", &format!("{text}."))
                    .with_context(|| format!("`-{app} {} {}` on the node's command line", pair[0], pair[1]))
            };
            out.push((term(&pair[0])?, term(&pair[1])?));
        }
    }
    Ok(out)
}

pub async fn run(s: &Settings, args: &ReloadConfigArgs) -> Result<()> {
    let host = Host::open(&args.host.root, &args.name, args.host.host_config.as_deref())?;
    let node = host.node().await.context("reloading config needs the running node")?;
    let vsn: Version = node.running_version().await?.parse()?;
    let files = host.host_files();
    let driver = host.driver(&node, &files);
    let config = driver.config_for(&vsn).await?;

    let mut changes = Vec::new();
    let mut edits: Vec<Edit> = Vec::new();
    for entry in &config.entries {
        let Entry::App { name, env } = entry else { continue };
        let Some(app) = name.as_atom() else { continue };
        let loaded = node
            .call("application", "get_key", vec![name.clone(), Term::atom("env")])
            .await?;
        let defaults = match loaded.as_tuple() {
            Some([ok, env]) if ok.as_atom() == Some("ok") => pairs(env),
            // Not loaded on the node: nothing runs with this config.
            _ => continue,
        };
        let current = pairs(&node.call("application", "get_all_env", vec![name.clone()]).await?);
        // As install_release: the .app's defaults, the config on top, the node's command line
        // (`-app key value`) on top of that.
        let mut target = defaults;
        let command_line = command_line_env(&node, name).await?;
        for (k, v) in env.iter().cloned().chain(command_line) {
            match target.iter_mut().find(|(tk, _)| tk.erl_eq(&k)) {
                Some(slot) => slot.1 = v,
                None => target.push((k, v)),
            }
        }
        // `included_applications` is the controller's own, not configuration.
        let own = |k: &Term| k.as_atom() != Some("included_applications");
        let changed: Vec<(Term, Term)> = target
            .iter()
            .filter(|(k, v)| own(k) && current.iter().any(|(ck, cv)| ck.erl_eq(k) && !cv.erl_eq(v)))
            .cloned()
            .collect();
        let added: Vec<(Term, Term)> = target
            .iter()
            .filter(|(k, _)| own(k) && !current.iter().any(|(ck, _)| ck.erl_eq(k)))
            .cloned()
            .collect();
        let removed: Vec<(Term, Term)> = current
            .iter()
            .filter(|(k, _)| own(k) && !target.iter().any(|(tk, _)| tk.erl_eq(k)))
            .cloned()
            .collect();
        if changed.is_empty() && added.is_empty() && removed.is_empty() {
            continue;
        }
        let module = node
            .call("application", "get_key", vec![name.clone(), Term::atom("mod")])
            .await?;
        let notified = match module.as_tuple() {
            Some([_, mfa]) => match mfa.as_tuple() {
                Some([m, _]) => {
                    node.call(
                        "erlang",
                        "function_exported",
                        vec![m.clone(), Term::atom("config_change"), Term::Integer(3)],
                    )
                    .await?
                    .as_atom()
                        == Some("true")
                }
                _ => false,
            },
            _ => false,
        };
        changes.push(AppChange {
            app: app.to_owned(),
            changed: keys(&changed),
            added: keys(&added),
            removed: keys(&removed),
            notified,
        });
        edits.push(Edit {
            app: name.clone(),
            set: [changed, added].concat(),
            unset: removed.into_iter().map(|(k, _)| k).collect(),
        });
    }
    let boot_only: Vec<String> = changes
        .iter()
        .filter(|c| BOOT_ONLY.contains(&c.app.as_str()))
        .map(|c| {
            format!(
                "{} ({})",
                c.app,
                [&c.changed[..], &c.added, &c.removed].concat().join(", ")
            )
        })
        .collect();
    if !boot_only.is_empty() {
        bail!(
            "these settings are read when the node boots, so only a restart applies them: {}; nothing was changed",
            boot_only.join("; ")
        );
    }
    let applied = !changes.is_empty() && !args.dry_run;
    if applied {
        // As release_handler does it: note the environment, change it, tell the applications.
        let before = node
            .call("application_controller", "prep_config_change", vec![])
            .await?;
        for Edit { app, set, unset } in &edits {
            for (k, v) in set {
                node.call("application", "set_env", vec![app.clone(), k.clone(), v.clone()])
                    .await?;
            }
            for k in unset {
                node.call("application", "unset_env", vec![app.clone(), k.clone()])
                    .await?;
            }
        }
        // A restart runs the config the node now has, whatever the applications say.
        driver.layout.write_sys_config(vsn.as_str(), &config)?;
        let told = node
            .call("application_controller", "config_change", vec![before])
            .await?;
        if told.as_atom() != Some("ok") {
            bail!(
                "the node runs the new config (and releases/{vsn}/sys.config has it), but an application's config_change/3 failed: {told}"
            );
        }
    }
    let report = Report {
        name: args.name.clone(),
        version: vsn.to_string(),
        applied,
        changes,
    };
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        if report.changes.is_empty() {
            crate::say(&format!(
                "{} {}: the node already runs this config",
                report.name, report.version
            ));
        }
        for c in &report.changes {
            let mut parts = Vec::new();
            for (what, list) in [("changed", &c.changed), ("added", &c.added), ("removed", &c.removed)] {
                if !list.is_empty() {
                    parts.push(format!("{what} {}", list.join(", ")));
                }
            }
            let told = if c.notified {
                "its config_change/3 was told"
            } else {
                "it has no config_change/3 and sees the values where it reads them"
            };
            let verb = if report.applied { "" } else { " (dry run)" };
            crate::say(&format!("{}{verb}: {}; {told}", c.app, parts.join("; ")));
        }
    }
    Ok(())
}
