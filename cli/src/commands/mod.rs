//! One module per command, named as the user types it. Each parses what the engines need
//! from its arguments, calls them, and renders the result (text, or JSON with `--json`).

pub mod adopt;
pub mod appup;
pub mod build_upgrade;
pub mod completions;
pub mod gc;
pub mod install;
pub mod keygen;
pub mod list;
pub mod path;
pub mod promote;
pub mod pull;
pub mod push;
pub mod reload_config;
pub mod rollback;
#[cfg(feature = "serve")]
pub mod serve;
pub mod show;
pub mod status;
#[cfg(feature = "serve")]
pub mod token;
pub mod upgrade;
pub mod verify;
pub mod version;
pub mod versions;
pub mod yank;
