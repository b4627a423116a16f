//! One module per command; `lib.rs` dispatches.

pub mod gc;
pub mod host;
pub mod keygen;
pub mod listing;
pub mod promote;
pub mod pull;
pub mod push;
pub mod serve;
pub mod upgrade;
pub mod verify;
pub mod version;
