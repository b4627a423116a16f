//! The examples in SPEC.md are real: they verify with this crate.

use rel_format::{Expected, Kind, PublicKey, TrustedKeys, signing::verify};

fn spec() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../SPEC.md")).unwrap()
}

/// The fenced block that follows `<!-- spec-example: NAME -->`.
fn example(name: &str) -> String {
    let text = spec();
    let marker = format!("<!-- spec-example: {name} -->");
    let after = &text[text.find(&marker).unwrap_or_else(|| panic!("no {marker} in SPEC.md")) + marker.len()..];
    let start = after.find("```").unwrap();
    let body = &after[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

#[test]
fn spec_envelope_example_verifies() {
    let key: PublicKey = example("public-key").trim().parse().unwrap();
    let envelope = example("envelope");
    let expected = Expected {
        name: "demo".into(),
        version: "0.1.0+20240101-1000-49ab6e0".parse().unwrap(),
        kind: Kind::Upgrade,
        from: Some("0.1.0+20240101-381-eddcacc".parse().unwrap()),
    };
    let (manifest, signer) = verify(envelope.as_bytes(), &TrustedKeys::new([key.clone()]), &expected).unwrap();
    assert_eq!(signer, "ci-2026");
    assert_eq!(manifest.tar.chunks.len(), 2);

    // The same example with one character of the manifest changed does not verify.
    let tampered = envelope
        .replace("\"length\": 3584", "\"length\": 3585")
        .replace("\"length\": 13824", "\"length\": 13825");
    assert_ne!(tampered, envelope);
    assert!(verify(tampered.as_bytes(), &TrustedKeys::new([key]), &expected).is_err());
}

#[test]
fn spec_version_examples_are_in_order() {
    let order = [
        "R16B03",
        "0.0.1",
        "0.0.1+20171116-381-eddcacc",
        "0.0.1+20171116-1000-49ab6e0",
        "0.0.1+20171204-5-aaaaaaa",
        "1.0.0-rc.1",
        "1.0",
        "1.0.0",
    ];
    let text = spec();
    for v in order {
        assert!(text.contains(v), "SPEC.md no longer mentions {v}");
    }
    let parsed: Vec<rel_format::Version> = order.iter().map(|v| v.parse().unwrap()).collect();
    for pair in parsed.windows(2) {
        assert!(pair[0] < pair[1], "{} < {}", pair[0], pair[1]);
    }
}
