//! `rel promote`: point a channel at a version with the next signed pointer, or renew the
//! pointer it has before it expires.

use anyhow::{Context, Result};
use rel_format::TrustedKeys;
use rel_format::channel::SignedChannel;

use crate::args::PromoteArgs;
use crate::channels::{Promotion, promote};
use crate::settings::Settings;

pub async fn run(s: &Settings, args: &PromoteArgs) -> Result<()> {
    let key = s.secret_key(args.key.as_ref())?;
    let client = s.client();
    let version = match &args.version {
        Some(v) => crate::shorthand::resolve(&client, &args.name, v, s.quiet).await?,
        None => {
            // Renewing signs what the registry says the channel holds: only a pointer this
            // key or a trusted one signed is taken as that, or a registry could choose it.
            let trusted =
                TrustedKeys::new(std::iter::once(key.public()).chain(args.trust.trusted_keys.iter().cloned()));
            let bytes = client.channel(&args.name, &args.channel).await.with_context(|| {
                format!(
                    "cannot renew channel {} of {}: it has no pointer to renew",
                    args.channel, args.name
                )
            })?;
            let (current, signer) = SignedChannel::verify_signature(&bytes, &trusted).with_context(|| {
                format!(
                    "the current pointer of channel {} of {} is not signed by your key or a --trusted-key; promote a version explicitly",
                    args.channel, args.name
                )
            })?;
            tracing::debug!("renewing a pointer signed by {signer}");
            current.signed.version
        }
    };
    let promotion = Promotion {
        name: &args.name,
        version: &version,
        channel: &args.channel,
        lifetime: args.expires_in,
    };
    let pointer = promote(&client, &key, promotion).await?;
    let seq = pointer.sequence;
    if args.json {
        crate::print_json(&pointer);
    } else if !s.quiet {
        let verb = if args.renew { "still points" } else { "now points" };
        crate::say(&format!(
            "channel {} of {} {verb} at {version} (sequence {seq}, valid {})",
            args.channel, args.name, args.expires_in
        ));
    }
    Ok(())
}
