//! Versions and timestamps: a parsed one prints and parses back the same, and versions
//! compare as a total order (two versions from one input, cut at its first newline).
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::version(data));
