//! The `rel` binary's integration tests, one binary: hostile archives, the real binary
//! against a real registry on 127.0.0.1, hosts and live OTP nodes, the distribution client
//! against real nodes, help and error output.

mod archives;
mod cli;
mod deploys;
mod dist;
mod host;
mod hostile;
mod hot_upgrade;
mod install;
mod layouts;
mod live;
mod readme;
mod snapshots;
mod support;
mod synthesis;
mod usage;
mod web;
