//! Release archives (tar, gzip, zstd): made canonical or refused with an error naming the
//! member; nothing is written anywhere but the sink.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rel_format::archive::{self, Limits, Selection};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_total_bytes: 1 << 22,
        max_entries: 10_000,
        max_path_len: 4096,
    };
    let _ = archive::canonicalize(data, std::io::sink(), limits, &Selection::default());
});
