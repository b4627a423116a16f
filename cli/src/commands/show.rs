//! `rel show`: one stored version summarised, verified when trusted keys are given.

use std::collections::HashSet;
use std::fmt::Write as _;

use anyhow::{Context, Result};
use rel_format::manifest::{Kind, Manifest};
use rel_format::signing::SignedManifest;
use rel_format::{Expected, Version};
use serde::Serialize;

use crate::args::ShowArgs;
use crate::output;
use crate::settings::Settings;

#[derive(Debug, Serialize)]
struct Shown {
    manifest: Manifest,
    signer: Option<String>,
    shared_with_previous: Option<(Version, usize)>,
}

/// `show --json`: the manifest with its chunks counted rather than listed (a release has
/// thousands), and with `--signed` the stored envelope itself, which `rel verify` reads.
#[derive(Debug, Serialize)]
struct ShownJson<'a> {
    name: &'a str,
    version: &'a Version,
    kind: Kind,
    created: rel_format::Timestamp,
    builder: &'a str,
    /// The manifest's digest: `rel pull NAME@<digest>` pulls exactly this artifact.
    digest: rel_format::Digest,
    signer: Option<&'a str>,
    platform: &'a rel_format::manifest::Platform,
    apps: &'a [rel_format::manifest::AppRef],
    tar: TarSummary<'a>,
    /// The previous stored release and how many of this one's chunks it holds.
    shared_with_previous: Option<SharedWith<'a>>,
    /// The channels pointing at this version, with their pointers' expiry.
    channels: &'a [crate::channels::ChannelInfo],
    #[serde(skip_serializing_if = "Option::is_none")]
    signed_manifest: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
struct TarSummary<'a> {
    digest: &'a rel_format::Digest,
    length: u64,
    chunking: &'a str,
    chunks: usize,
}

#[derive(Debug, Serialize)]
struct SharedWith<'a> {
    version: &'a Version,
    chunks: usize,
}

pub async fn run(s: &Settings, args: &ShowArgs) -> Result<()> {
    let client = s.client();
    let version = crate::shorthand::resolve(&client, &args.name, &args.version, s.quiet).await?;
    let bytes = client.release_manifest(&args.name, &version).await?;
    let (manifest, signer) = if args.trust.trusted_keys.is_empty() && s.trusted_keys.is_empty() {
        (SignedManifest::parse_unverified(&bytes)?.signed, None)
    } else {
        let trusted = s.trusted(&args.trust.trusted_keys)?;
        let expected = Expected {
            name: args.name.clone(),
            version: version.clone(),
            kind: Kind::Release,
            from: None,
        };
        let (m, signer) = rel_format::signing::verify(&bytes, &trusted, &expected)?;
        (m, Some(signer))
    };
    // Dedup against the previous stored release.
    let list = client.versions(&args.name).await?;
    let previous = list
        .versions
        .iter()
        .filter(|v| v.version < version && v.artifacts.iter().any(|a| a.kind == Kind::Release))
        .map(|v| v.version.clone())
        .next_back();
    let here = list.versions.iter().find(|v| v.version == version);
    let channels = crate::channels::listed(&client, &args.name, here.into_iter().flat_map(|v| &v.channels)).await?;
    let mut shared = None;
    if let Some(prev) = previous {
        let prev_bytes = client.release_manifest(&args.name, &prev).await?;
        let prev_m = SignedManifest::parse_unverified(&prev_bytes)?.signed;
        let have: HashSet<_> = prev_m.tar.chunks.iter().map(|c| c.digest).collect();
        shared = Some((
            prev,
            manifest.tar.chunks.iter().filter(|c| have.contains(&c.digest)).count(),
        ));
    }
    let shown = Shown {
        manifest,
        signer,
        shared_with_previous: shared,
    };
    if args.json {
        let m = &shown.manifest;
        let signed_manifest = if args.signed {
            Some(serde_json::from_slice(&bytes).context("the stored manifest is not JSON")?)
        } else {
            None
        };
        crate::print_json(&ShownJson {
            name: &m.name,
            version: &m.version,
            kind: m.kind,
            created: m.created,
            builder: &m.builder,
            digest: m.digest(),
            signer: shown.signer.as_deref(),
            platform: &m.platform,
            apps: &m.apps,
            tar: TarSummary {
                digest: &m.tar.digest,
                length: m.tar.length,
                chunking: &m.tar.chunking,
                chunks: m.tar.chunks.len(),
            },
            shared_with_previous: shown.shared_with_previous.as_ref().map(|(version, chunks)| SharedWith {
                version,
                chunks: *chunks,
            }),
            channels: &channels,
            signed_manifest,
        });
        return Ok(());
    }
    let m = &shown.manifest;
    let mut out = String::new();
    let _ = writeln!(out, "{} {} ({})", m.name, m.version, m.kind);
    let _ = writeln!(out, "  created   {} by {}", m.created, m.builder);
    let _ = writeln!(
        out,
        "  signer    {}",
        shown.signer.as_deref().unwrap_or("(not verified: pass --trusted-key)")
    );
    let p = &m.platform;
    let native = match (&p.os, &p.arch) {
        (Some(os), Some(arch)) => format!(
            ", native code for {os}/{arch}{}",
            p.libc.as_ref().map(|l| format!("-{l}")).unwrap_or_default()
        ),
        _ => ", no native code".into(),
    };
    let _ = writeln!(
        out,
        "  erts      {}{}{native}",
        p.erts,
        if p.erts_included {
            " (included)"
        } else {
            " (not included)"
        }
    );
    let _ = writeln!(out, "  manifest  {}", m.digest());
    for c in &channels {
        let _ = writeln!(out, "  channel   {}", c.describe(&m.name));
    }
    let _ = writeln!(
        out,
        "  tar       {} {} in {} chunks",
        m.tar.digest,
        output::bytes(m.tar.length),
        m.tar.chunks.len()
    );
    if let Some((prev, n)) = &shown.shared_with_previous {
        let _ = writeln!(
            out,
            "  dedup     {n} of {} chunks shared with {prev}",
            m.tar.chunks.len()
        );
    }
    let _ = writeln!(out, "  apps");
    for a in &m.apps {
        let _ = writeln!(out, "    {:<24} {}", a.name, a.version);
    }
    crate::print_raw(&out);
    Ok(())
}
