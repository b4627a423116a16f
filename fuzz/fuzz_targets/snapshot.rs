//! Kept snapshots: a stored body reads back or errs, never panics nor overflows the stack, and
//! one that reads back is stored again as the same bytes.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::snapshot(data));
