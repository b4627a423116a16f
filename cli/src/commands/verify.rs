//! `rel verify`: a signed manifest file, or a local release against the registry.

use anyhow::{Context, Result, bail};
use rel_format::manifest::Kind;
use rel_format::signing::{Expected, SignedManifest, verify};
use serde::Serialize;

use crate::args::VerifyArgs;
use crate::settings::Settings;

#[derive(Debug, Serialize)]
struct Verified {
    name: String,
    version: String,
    kind: Kind,
    signer: String,
    digest: String,
    matches_registry: Option<bool>,
}

pub async fn run(s: &Settings, args: &VerifyArgs) -> Result<()> {
    let trusted = s.trusted(&args.trust.trusted_keys)?;
    let head = std::fs::read(&args.file).ok().filter(|b| b.first() == Some(&b'{'));
    let (m, signer, matches_registry) = if let Some(bytes) = head {
        // `rel show --json --signed` wraps the envelope; verify that, as stored.
        let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) if v.get("schema_version").is_some() && v.get("signatures").is_none() => {
                match v.get("signed_manifest") {
                    Some(envelope) => serde_json::to_vec(envelope)?,
                    None => bail!(
                        "`{}` is `rel show --json` output without the signed manifest; write it with `rel show NAME VERSION --json --signed`",
                        args.file.display()
                    ),
                }
            }
            _ => bytes,
        };
        let (env, signer) = SignedManifest::verify_signature(&bytes, &trusted)
            .with_context(|| format!("`{}` does not verify", args.file.display()))?;
        (env.signed, signer, None)
    } else {
        // A release: canonicalise it and compare with what the registry signed.
        let path = args.file.clone();
        let selection = crate::upload::selection_for(&path, None, None, false)?;
        let (stream, seen) =
            tokio::task::spawn_blocking(move || crate::upload::ingest(&path, &selection, |_, _| Ok(()))).await??;
        let spec = seen.release(None)?;
        let bytes = s.client().release_manifest(&spec.name, &spec.version).await?;
        let expected = Expected {
            name: spec.name.clone(),
            version: spec.version.clone(),
            kind: Kind::Release,
            from: None,
        };
        let (m, signer) = verify(&bytes, &trusted, &expected)?;
        if m.tar.digest != stream.digest {
            bail!(
                "`{}` is {} `{}` but its contents differ from what the registry signed ({} here, {} signed)",
                args.file.display(),
                spec.name,
                spec.version,
                stream.digest,
                m.tar.digest
            );
        }
        (m, signer, Some(true))
    };
    let result = Verified {
        name: m.name,
        version: m.version.to_string(),
        kind: m.kind,
        signer,
        digest: m.tar.digest.to_string(),
        matches_registry,
    };
    if args.json {
        crate::print_json(&result);
    } else if !s.quiet {
        let registry = if result.matches_registry == Some(true) {
            ", identical to the registry's"
        } else {
            ""
        };
        crate::say(&format!(
            "ok: {} {} {} signed by {}{registry} ({})",
            result.kind, result.name, result.version, result.signer, result.digest
        ));
    }
    Ok(())
}
