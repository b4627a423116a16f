//! `rel show`: one stored version summarised, verified when trusted keys are given.

use std::collections::HashSet;
use std::fmt::Write as _;

use anyhow::Result;
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
        crate::print_json(&shown);
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
