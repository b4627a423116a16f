//! The `rel` command's library: what the binary runs, usable in-process by tests.

pub mod local;
