//! `rel appup` and `rel build-upgrade`: appups, relups and upgrade artifacts from two releases.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rel_format::Version;
use rel_format::appup::{AppupPlan, AppupSource, Extra, ReleaseSnapshot, plan_appups, render};
use rel_format::manifest::Kind;
use rel_format::relup::make_relup;
use rel_format::term::{Term, parse_term, parse_terms};
use serde::Serialize;

use crate::cli::{AppupArgs, BuildUpgradeArgs};
use crate::client::Client;
use crate::settings::Settings;

/// A release on disk as a tar file, wherever it came from.
pub(crate) struct Materialised {
    pub path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Turns `NAME@VERSION`, a version of `name` in the registry, a tarball or a folder into a
/// tar file. Registry releases are verified against the trusted keys.
pub(crate) async fn materialise(
    s: &Settings,
    name: Option<&str>,
    reference: &str,
    trusted_flags: &[String],
) -> Result<Materialised> {
    let path = Path::new(reference);
    if path.is_file() {
        return Ok(Materialised {
            path: path.to_owned(),
            _tmp: None,
        });
    }
    let tmp = tempfile::tempdir()?;
    if path.is_dir() {
        let tar = tmp.path().join("release.tar");
        let file = std::io::BufWriter::new(std::fs::File::create(&tar)?);
        let (mut file, _) = crate::local::pack_dir(path, file, rel_format::archive::Limits::default())?;
        std::io::Write::flush(&mut file)?;
        return Ok(Materialised {
            path: tar,
            _tmp: Some(tmp),
        });
    }
    let (name, version) = match (reference.split_once('@'), name) {
        (Some((n, v)), _) => (n.to_owned(), v.to_owned()),
        (None, Some(n)) => (n.to_owned(), reference.to_owned()),
        (None, None) => bail!("`{reference}` is neither a file, a folder nor NAME@VERSION"),
    };
    let version: Version = version.parse()?;
    let trusted = s.trusted(trusted_flags)?;
    let client = Client::new(&s.registry, s.token.clone());
    let manifest = super::pull::verified_release(&client, &trusted, &name, &version)
        .await?
        .manifest;
    let tar = tmp.path().join("release.tar");
    super::pull::write_release(
        s,
        &client,
        &manifest,
        super::pull::Target::File(&tar),
        crate::cli::PULL_JOBS,
        "fetch",
    )
    .await?;
    Ok(Materialised {
        path: tar,
        _tmp: Some(tmp),
    })
}

fn snapshot(m: &Materialised, want: Option<&str>) -> Result<ReleaseSnapshot> {
    let file = std::fs::File::open(&m.path)?;
    ReleaseSnapshot::from_tar(std::io::BufReader::new(file), want)
        .with_context(|| format!("cannot read the release in `{}`", m.path.display()))
}

/// User appups (`<app>.appup`) and additions (`<app>.extra`), by application.
#[derive(Debug, Default)]
struct Overrides {
    full: Vec<(String, Term)>,
    extra: Vec<(String, Extra)>,
}

fn overrides(dir: Option<&Path>) -> Result<Overrides> {
    let mut full = Vec::new();
    let mut extra = Vec::new();
    let Some(dir) = dir else {
        return Ok(Overrides::default());
    };
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))? {
        let path = e?.path();
        let file = path.to_string_lossy().into_owned();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match path.extension().and_then(|x| x.to_str()) {
            Some("appup") => full.push((stem, parse_term(&file, &std::fs::read_to_string(&path)?)?)),
            Some("extra") => {
                let mut ex = Extra::default();
                for t in parse_terms(&file, &std::fs::read_to_string(&path)?)? {
                    let (key, list) = match t.as_tuple() {
                        Some([k, v]) => (
                            k.as_atom().unwrap_or_default().to_owned(),
                            v.as_list().map(|l| l.into_owned()),
                        ),
                        _ => bail!(
                            "{file}: expected {{up_before | up_after | down_before | down_after, [Instructions]}}"
                        ),
                    };
                    let list = list.with_context(|| format!("{file}: `{key}` needs a list of instructions"))?;
                    match key.as_str() {
                        "up_before" => ex.up_before = list,
                        "up_after" => ex.up_after = list,
                        "down_before" => ex.down_before = list,
                        "down_after" => ex.down_after = list,
                        other => bail!("{file}: unknown key `{other}`"),
                    }
                }
                extra.push((stem, ex));
            }
            _ => {}
        }
    }
    Ok(Overrides { full, extra })
}

fn plans(
    froms: &[&ReleaseSnapshot],
    to: &ReleaseSnapshot,
    dir: Option<&Path>,
) -> Result<(Vec<AppupPlan>, Vec<String>)> {
    let Overrides { full, extra } = overrides(dir)?;
    let (plans, mut warnings) = plan_appups(
        froms,
        to,
        &|app| full.iter().find(|(a, _)| a == app).map(|(_, t)| t.clone()),
        &|app| extra.iter().find(|(a, _)| a == app).map(|(_, e)| e.clone()),
    );
    warnings.extend(plans.iter().flat_map(|p| p.warnings.iter().cloned()));
    Ok((plans, warnings))
}

#[derive(Debug, Serialize)]
struct AppupReport {
    app: String,
    from: Vec<String>,
    to: String,
    source: &'static str,
    file: PathBuf,
}

fn source_name(s: AppupSource) -> &'static str {
    match s {
        AppupSource::Generated => "generated",
        AppupSource::Shipped => "shipped",
        AppupSource::User => "user",
    }
}

/// The snapshot of a release reference; a folder is read in place.
async fn snapshot_of(s: &Settings, name: Option<&str>, reference: &str, trusted: &[String]) -> Result<ReleaseSnapshot> {
    if Path::new(reference).is_dir() {
        let dir = PathBuf::from(reference);
        return tokio::task::spawn_blocking(move || crate::local::snapshot_dir(&dir, None)).await?;
    }
    snapshot(&materialise(s, name, reference, trusted).await?, None)
}

pub async fn appup(s: &Settings, args: &AppupArgs) -> Result<()> {
    let from = snapshot_of(s, None, &args.from, &args.trust.trusted_keys).await?;
    let to = snapshot_of(s, None, &args.to, &args.trust.trusted_keys).await?;
    let (plans, warnings) = plans(&[&from], &to, args.appup_dir.as_deref())?;
    std::fs::create_dir_all(&args.out)?;
    let mut report = Vec::new();
    for p in &plans {
        let file = args.out.join(format!("{}.appup", p.app));
        std::fs::write(&file, render(p))?;
        report.push(AppupReport {
            app: p.app.clone(),
            from: p.from_vsns.clone(),
            to: p.to_vsn.clone(),
            source: source_name(p.source),
            file,
        });
    }
    for w in &warnings {
        crate::warn(w);
    }
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        if report.is_empty() {
            crate::say("no application changed its vsn: no appup needed");
        }
        for r in &report {
            crate::say(&format!(
                "{} {} -> {} ({}): {}",
                r.app,
                r.from.join(","),
                r.to,
                r.source,
                r.file.display()
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct UpgradeReport {
    name: String,
    from: Vec<String>,
    to: String,
    appups: Vec<String>,
    bytes: u64,
    output: Option<PathBuf>,
    pushed: bool,
}

pub async fn build(s: &Settings, args: &BuildUpgradeArgs) -> Result<()> {
    if args.output.is_none() && !args.push {
        bail!("say where the upgrade goes: -o FILE, --push, or both");
    }
    let to_m = materialise(s, Some(&args.name), &args.to, &args.trust.trusted_keys).await?;
    let mut froms = Vec::new();
    for f in &args.from {
        froms.push(snapshot_of(s, Some(&args.name), f, &args.trust.trusted_keys).await?);
    }
    let to = snapshot(&to_m, None)?;
    if to.spec.name != args.name {
        bail!("`{}` is release {}, not {}", args.to, to.spec.name, args.name);
    }
    for f in &froms {
        if f.spec.name != args.name {
            bail!("a --from release is {}, not {}", f.spec.name, args.name);
        }
        if f.spec.version == to.spec.version {
            bail!("--from and --to are the same version {}", to.spec.version);
        }
    }
    let from_refs: Vec<&ReleaseSnapshot> = froms.iter().collect();
    let (plans, warnings) = plans(&from_refs, &to, args.appup_dir.as_deref())?;
    for w in &warnings {
        crate::warn(w);
    }
    let bases: Vec<_> = froms.iter().map(ReleaseSnapshot::relup_release).collect();
    let relup = make_relup(&to.relup_release(), &bases, &bases, &|app| {
        plans
            .iter()
            .find(|p| p.app == app.name)
            .map(|p| p.appup.clone())
            .ok_or_else(|| rel_format::relup::RelupError::BadAppup {
                app: app.name.clone(),
                what: "no appup".into(),
            })
    })
    .context("cannot make the relup")?;

    let tmp = tempfile::tempdir()?;
    let tar_path = tmp
        .path()
        .join(format!("{}-{}.upgrade.tar", args.name, to.spec.version));
    {
        let file = std::io::BufWriter::new(std::fs::File::create(&tar_path)?);
        let to_file = std::io::BufReader::new(std::fs::File::open(&to_m.path)?);
        let (mut file, _) = rel_format::upgrade::write_upgrade(to_file, &to, &from_refs, &relup, &plans, file)?;
        std::io::Write::flush(&mut file)?;
    }
    let bytes = std::fs::metadata(&tar_path)?.len();
    if let Some(out) = &args.output {
        let mut file = crate::local::TarFile::create(out)?;
        std::io::copy(&mut std::fs::File::open(&tar_path)?, &mut file)?;
        file.commit()?;
    }
    if args.push {
        let key = s.secret_key(args.key.as_deref())?;
        let from: Vec<String> = froms.iter().map(|f| f.spec.version.to_string()).collect();
        super::push::push_file(s, &key, &tar_path, Kind::Upgrade, &from, 8).await?;
    }
    let report = UpgradeReport {
        name: args.name.clone(),
        from: froms.iter().map(|f| f.spec.version.to_string()).collect(),
        to: to.spec.version.to_string(),
        appups: plans
            .iter()
            .map(|p| format!("{} ({})", p.app, source_name(p.source)))
            .collect(),
        bytes,
        output: args.output.clone(),
        pushed: args.push,
    };
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        crate::say(&format!(
            "upgrade {} {} -> {}: {} (appups: {}){}{}",
            report.name,
            report.from.join(","),
            report.to,
            crate::progress::human(report.bytes),
            if report.appups.is_empty() {
                "none".to_owned()
            } else {
                report.appups.join(", ")
            },
            report
                .output
                .as_ref()
                .map(|o| format!("; wrote {}", o.display()))
                .unwrap_or_default(),
            if report.pushed { "; pushed" } else { "" }
        ));
    }
    Ok(())
}
