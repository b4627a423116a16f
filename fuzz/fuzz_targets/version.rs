//! Versions and timestamps: a parsed one prints and parses back the same, and versions
//! compare as a total order (two versions from one input, cut at its first newline).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rel_format::{Timestamp, Version};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = text.parse::<Timestamp>() {
        assert_eq!(t.to_string().parse::<Timestamp>().expect("printed timestamps parse"), t);
    }
    let (a, b) = text.split_once('\n').unwrap_or((text, ""));
    let parsed: Vec<Version> = [a, b].iter().filter_map(|s| Version::parse(s).ok()).collect();
    for v in &parsed {
        let back = Version::parse(&v.to_string()).expect("printed versions parse");
        assert_eq!(&back, v);
        assert_eq!(back.cmp(v), std::cmp::Ordering::Equal);
    }
    if let [x, y] = parsed.as_slice() {
        assert_eq!(x.cmp(y), y.cmp(x).reverse());
        assert_eq!(x == y, x.cmp(y) == std::cmp::Ordering::Equal);
    }
});
