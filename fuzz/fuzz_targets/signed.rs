//! Signed manifests and channel pointers: read or refused within their bounds; a read
//! envelope written again is the same envelope, and a signature never verifies under a key
//! that did not make it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rel_format::channel::SignedChannel;
use rel_format::{SecretKey, SignedManifest, TrustedKeys};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = SignedManifest::parse_unverified(data) {
        let again = SignedManifest::parse_unverified(&m.to_bytes()).expect("written manifests read");
        assert_eq!(again, m);
    }
    if let Ok(p) = SignedChannel::parse_unverified(data) {
        let again = SignedChannel::parse_unverified(&p.to_bytes()).expect("written pointers read");
        assert_eq!(again, p);
    }
    let key = SecretKey::from_seed("ci", [7; 32]).expect("a seed makes a key");
    let trusted = TrustedKeys::new([key.public()]);
    assert!(SignedManifest::verify_signature(data, &trusted).is_err());
    assert!(SignedChannel::verify_signature(data, &trusted).is_err());
});
