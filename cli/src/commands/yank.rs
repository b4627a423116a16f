//! `rel yank`: hide a version, or one upgrade artifact, from resolution without deleting it.

use anyhow::Result;

use crate::args::YankArgs;
use crate::settings::Settings;

pub async fn run(s: &Settings, args: &YankArgs) -> Result<()> {
    let client = s.client();
    let version = &crate::shorthand::resolve(&client, &args.name, &args.version, s.quiet).await?;
    let from = &match &args.upgrade_from {
        Some(f) => Some(crate::shorthand::resolve(&client, &args.name, f, s.quiet).await?),
        None => None,
    };
    client
        .yank(&args.name, version, !args.undo, from.clone(), args.reason.clone())
        .await?;
    if args.json {
        crate::print_json(&serde_json::json!({
            "name": args.name,
            "version": version,
            "upgrade_from": from,
            "yanked": !args.undo,
            "reason": args.reason,
        }));
    } else if !s.quiet {
        let subject = match from {
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
