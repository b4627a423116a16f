//! External term format: whatever decodes and has an external form (not every decoded term
//! does: `etf`'s module doc says which) encodes to bytes that decode to the same term.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rel_format::etf;

fuzz_target!(|data: &[u8]| {
    let _ = etf::decode_prefix_bounded(data, 10_000);
    if let Ok(term) = etf::decode(data) {
        if let Ok(bytes) = etf::encode(&term) {
            assert_eq!(etf::decode(&bytes).expect("an encoded term decodes"), term);
        }
    }
});
