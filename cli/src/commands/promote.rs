//! `rel promote` and `rel yank`.

use anyhow::{Context, Result, bail};
use rel_format::channel::{CHANNEL_SCHEMA, ChannelPointer, SignedChannel};
use rel_format::{SecretKey, Version};

use crate::cli::{PromoteArgs, YankArgs};
use crate::client::Client;
use crate::settings::Settings;

/// `30d`, `12h`, `90m`, `3600s` → seconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64> {
    let (num, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = num
        .parse()
        .with_context(|| format!("`{text}` is not a duration like 30d, 12h, 90m or 3600s"))?;
    let mult = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => bail!("`{text}` is not a duration like 30d, 12h, 90m or 3600s"),
    };
    Ok(n * mult)
}

/// Signs and stores the next pointer of `channel`.
pub(crate) async fn promote(
    _s: &Settings,
    client: &Client,
    key: &SecretKey,
    name: &str,
    version: &Version,
    channel: &str,
    expires_in: &str,
) -> Result<u64> {
    let current = match client.channel(name, channel).await {
        Ok(bytes) => SignedChannel::parse_unverified(&bytes)?.signed.sequence,
        Err(e) if e.status() == Some(reqwest::StatusCode::NOT_FOUND) => 0,
        Err(e) => return Err(e.into()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let pointer = ChannelPointer {
        schema: CHANNEL_SCHEMA.into(),
        name: name.to_owned(),
        channel: channel.to_owned(),
        version: version.clone(),
        sequence: current + 1,
        expires: rel_format::manifest::rfc3339_utc(now + parse_duration(expires_in)?),
        created: rel_format::manifest::rfc3339_utc(now),
    };
    let env = SignedChannel::sign(pointer, key)?;
    client.put_channel(name, channel, env.to_bytes()).await?;
    Ok(current + 1)
}

pub async fn run(s: &Settings, args: &PromoteArgs) -> Result<()> {
    let key = s.secret_key(args.key.as_deref())?;
    let client = Client::new(&s.registry, s.token.clone());
    let version: Version = args.version.parse()?;
    let seq = promote(s, &client, &key, &args.name, &version, &args.channel, &args.expires_in).await?;
    if !s.quiet {
        crate::say(&format!(
            "channel {} of {} now points at {version} (sequence {seq})",
            args.channel, args.name
        ));
    }
    Ok(())
}

pub async fn yank(s: &Settings, args: &YankArgs) -> Result<()> {
    let client = Client::new(&s.registry, s.token.clone());
    let version: Version = args.version.parse()?;
    let from = args.upgrade_from.as_deref().map(str::parse::<Version>).transpose()?;
    client.yank(&args.name, &version, !args.undo, from.clone()).await?;
    if !s.quiet {
        let subject = match &from {
            Some(f) => format!("the upgrade of {} to {version} from {f}", args.name),
            None => format!("{} {version}", args.name),
        };
        let what = match (args.undo, from.is_some()) {
            (true, _) => "is no longer yanked",
            (false, false) => "is yanked: hidden from upgrade paths and promotions",
            (false, true) => "is yanked: no longer part of upgrade paths, and a corrected upgrade may replace it",
        };
        crate::say(&format!("{subject} {what}"));
    }
    Ok(())
}
