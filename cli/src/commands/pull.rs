//! `rel pull`: resolve, verify, fetch only what the cache lacks, verify again, write atomically.

use std::path::PathBuf;

use anyhow::{Result, bail};
use rel_format::Version;
use serde::Serialize;

use crate::args::PullArgs;
use crate::channels::{ChannelState, resolve};
use crate::fetch::{Fetcher, Target, Verified};
use crate::output::bytes;
use crate::settings::Settings;

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    version: Version,
    signer: String,
    bytes: u64,
    chunks: usize,
    fetched_chunks: usize,
    fetched_bytes: u64,
    /// Of the fetched chunks, those that came as deltas against cached ones.
    delta_chunks: usize,
    written: PathBuf,
}

pub async fn run(s: &Settings, args: &PullArgs) -> Result<()> {
    let (target, written) = match (&args.output, &args.into) {
        (Some(o), _) => (Target::File(o), o.clone()),
        (None, Some(d)) => (Target::Dir(d), d.clone()),
        (None, None) => unreachable!("clap requires -o or --into"),
    };
    if let Target::Dir(into) = target {
        // Fail before fetching anything.
        if std::fs::symlink_metadata(into).is_ok() {
            return Err(crate::fs::ExtractError::TargetExists(into.to_owned()).into());
        }
    }
    let trusted = s.trusted(&args.trust.trusted_keys)?;
    let mut fetcher = Fetcher::new(s, args.jobs);
    if args.no_deltas {
        fetcher = fetcher.without_deltas();
    }
    let (version, channel_seq) = match (&args.version, &args.channel) {
        _ if args.digest.is_some() => (
            by_digest(&fetcher, &args.name, args.digest.as_ref().unwrap()).await?,
            None,
        ),
        (Some(v), _) => (
            crate::shorthand::resolve(&fetcher.client, &args.name, v, s.quiet).await?,
            None,
        ),
        (_, Some(c)) => {
            let (v, seq) = resolve(s, &fetcher.client, &trusted, &args.name, c, args.allow_downgrade).await?;
            (v, Some(seq))
        }
        (None, None) => unreachable!("clap requires --version or --channel"),
    };
    let Verified { manifest, signer } = fetcher.release(&trusted, &args.name, &version).await?;
    if let Some(wanted) = &args.digest
        && manifest.digest() != *wanted
    {
        // The listing said this version; what it serves is another manifest.
        bail!(
            "the registry lists {} {version} with manifest digest {wanted}, but serves a manifest of digest {}; nothing was pulled",
            args.name,
            manifest.digest()
        );
    }
    let transfer = fetcher.write(&manifest, target, "pull").await?;
    if let Some(seq) = channel_seq {
        let mut state = ChannelState::load(&s.state_dir)?;
        state.record(&seq)?;
    }
    let report = Report {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        signer,
        bytes: manifest.tar.length,
        chunks: manifest.tar.chunks.len(),
        fetched_chunks: transfer.fetched_chunks,
        fetched_bytes: transfer.fetched_bytes,
        delta_chunks: transfer.delta_chunks,
        written,
    };
    if args.json {
        crate::print_json(&report);
    } else if !s.quiet {
        crate::say(&format!(
            "pulled {} {} (signed by {}): {} verified; fetched {} chunks ({}{}), {} from the cache; wrote {}",
            report.name,
            report.version,
            report.signer,
            bytes(report.bytes),
            report.fetched_chunks,
            bytes(report.fetched_bytes),
            match report.delta_chunks {
                0 => String::new(),
                n => format!(", {n} as deltas against cached chunks"),
            },
            report.chunks - report.fetched_chunks.min(report.chunks),
            report.written.display()
        ));
    }
    Ok(())
}

/// The version of `name` whose release manifest has digest `digest`, as the registry lists it
/// (checked against the manifest itself once fetched).
async fn by_digest(fetcher: &Fetcher, name: &str, digest: &rel_format::Digest) -> Result<Version> {
    let listed = fetcher.client.versions(name).await?;
    listed
        .versions
        .into_iter()
        .find(|v| {
            v.artifacts
                .iter()
                .any(|a| a.kind == rel_format::Kind::Release && a.digest.as_ref() == Some(digest))
        })
        .map(|v| v.version)
        .ok_or_else(|| {
            crate::UsageError::new(format!(
                "no release of {name} has manifest digest {digest} (`rel show {name}@VERSION` prints a release's)"
            ))
            .into()
        })
}
