//! Packs and pack indexes: a pack read whole and a pack read as it arrives, cut anywhere,
//! agree; a read pack written again reads back the same.
#![no_main]

#[path = "../bodies.rs"]
mod bodies;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bodies::pack(data));
