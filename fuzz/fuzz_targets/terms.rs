//! Erlang terms as text (`.rel`, `.app`, `sys.config`, `.appup`, rel's `.extra`): parsed or
//! refused; a parsed term printed by rel reads back as the same term.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rel_format::{appup, release::ReleaseSpec, sysconfig::SysConfig, term};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ReleaseSpec::parse("fuzz.rel", text);
    let _ = SysConfig::parse("sys.config", text);
    let _ = appup::Extra::parse("fuzz.extra", text);
    if let Ok(terms) = term::parse_terms("fuzz.config", text) {
        for t in terms {
            let printed = t.to_string();
            let back = term::parse_term("printed", &format!("{printed}."))
                .unwrap_or_else(|e| panic!("{printed:?} does not read back: {e}"));
            assert_eq!(back, t, "{printed}");
        }
    }
});
