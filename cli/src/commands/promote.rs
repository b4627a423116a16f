//! `rel promote`: point a channel at a version with the next signed pointer.

use anyhow::Result;

use crate::args::PromoteArgs;
use crate::channels::{Promotion, promote};
use crate::settings::Settings;

pub async fn run(s: &Settings, args: &PromoteArgs) -> Result<()> {
    let key = s.secret_key(args.key.as_ref())?;
    let promotion = Promotion {
        name: &args.name,
        version: &args.version,
        channel: &args.channel,
        lifetime: args.expires_in,
    };
    let seq = promote(&s.client(), &key, promotion).await?;
    if !s.quiet {
        crate::say(&format!(
            "channel {} of {} now points at {} (sequence {seq}, valid {})",
            args.channel, args.name, args.version, args.expires_in
        ));
    }
    Ok(())
}
