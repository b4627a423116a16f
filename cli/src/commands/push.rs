//! `rel push`: canonicalise and chunk a release, sign its manifest, upload what is missing.

use anyhow::Result;
use rel_format::manifest::Kind;
use rel_format::{Digest, Version};
use serde::Serialize;

use crate::args::{KindArg, PushArgs};
use crate::channels::{Promotion, promote};
use crate::output::bytes;
use crate::settings::Settings;
use crate::upload::{PushRequest, push};

#[derive(Debug, Serialize)]
struct Report {
    name: String,
    version: Version,
    kind: Kind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    from: Vec<Version>,
    digest: Digest,
    bytes: u64,
    chunks: usize,
    uploaded_chunks: usize,
    uploaded_bytes: u64,
    already_stored: bool,
    channel: Option<String>,
    /// Nothing was uploaded: `uploaded_*` say what would be (bytes uncompressed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dry_run: bool,
}

pub async fn run(s: &Settings, args: &PushArgs) -> Result<()> {
    // A dry run signs nothing, unless it is asked to check a channel's promotion too.
    let key = if args.dry_run && args.key.is_none() {
        None
    } else {
        Some(s.secret_key(args.key.as_ref())?)
    };
    let kind = match args.kind {
        KindArg::Release => Kind::Release,
        KindArg::Upgrade => Kind::Upgrade,
    };
    let req = PushRequest {
        path: args.artifact.clone(),
        kind,
        from: args.from.clone(),
        name: args.name.clone(),
        version: args.version.clone(),
        jobs: args.jobs,
        include_secrets: args.include_cookie,
        dry_run: args.dry_run,
    };
    let outcome = push(s, key.as_deref(), &req).await?;
    let manifest = &outcome.manifest;
    if let (Some(channel), false) = (&args.channel, args.dry_run) {
        let promotion = Promotion {
            name: &manifest.name,
            version: &manifest.version,
            channel,
            lifetime: crate::channels::DEFAULT_LIFETIME,
        };
        let key = key.as_deref().expect("a push that is not a dry run has its key");
        promote(&s.client(), key, promotion).await?;
    }
    let report = Report {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        kind: manifest.kind,
        from: manifest.from.clone(),
        digest: manifest.tar.digest,
        bytes: manifest.tar.length,
        chunks: manifest.tar.chunks.len(),
        uploaded_chunks: outcome.uploaded_chunks,
        uploaded_bytes: outcome.uploaded_bytes,
        already_stored: outcome.already_stored,
        channel: args.channel.clone(),
        dry_run: args.dry_run,
    };
    if args.json {
        crate::print_json(&report);
    } else if args.dry_run {
        let what = if report.already_stored {
            "is already stored with the same contents: a push would upload nothing"
        } else {
            "is not stored"
        };
        crate::say(&format!(
            "{} {} ({}) {what}; {} in {} chunks, of which the registry lacks {} ({} before compression); nothing was uploaded",
            report.name,
            report.version,
            report.kind,
            bytes(report.bytes),
            report.chunks,
            report.uploaded_chunks,
            bytes(report.uploaded_bytes),
        ));
        if let Some(c) = &report.channel {
            crate::say(&format!("channel {c} would point at {}", report.version));
        }
    } else if !s.quiet {
        let what = if report.already_stored {
            "already stored"
        } else {
            "pushed"
        };
        crate::say(&format!(
            "{what} {} {} ({}): {} in {} chunks; {} new chunks uploaded ({} compressed), {} already in the registry",
            report.name,
            report.version,
            report.kind,
            bytes(report.bytes),
            report.chunks,
            report.uploaded_chunks,
            bytes(report.uploaded_bytes),
            outcome.unique_chunks.saturating_sub(report.uploaded_chunks),
        ));
        if let Some(c) = &report.channel {
            crate::say(&format!("channel {c} now points at {}", report.version));
        }
    }
    Ok(())
}
