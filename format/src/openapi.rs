//! OpenAPI schemas (utoipa) of what the API's bodies hold, for the registry's generated
//! document: the scalar types rel writes as strings, with the shape SPEC.md gives them. The
//! bodies derive theirs next to their definitions, when the `openapi` feature is on.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

fn string(description: &str, pattern: Option<&str>, example: &str) -> RefOr<Schema> {
    let mut b = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .examples([serde_json::Value::from(example)]);
    if let Some(p) = pattern {
        b = b.pattern(Some(p));
    }
    b.into()
}

impl utoipa::PartialSchema for crate::Version {
    fn schema() -> RefOr<Schema> {
        string(
            "A release version (SPEC.md §1): SemVer-like, with edeliver's AUTO_VERSION metadata after `+`",
            None,
            "0.2.0+20260110-130-c3d4e5f",
        )
    }
}
impl utoipa::ToSchema for crate::Version {}

impl utoipa::PartialSchema for crate::Digest {
    fn schema() -> RefOr<Schema> {
        string(
            "A SHA-256 digest",
            Some("^sha256:[0-9a-f]{64}$"),
            "sha256:6974ce4077bbb088c71d7d1a6d646710f35f714f03e96111d5b0f524770e9fbd",
        )
    }
}
impl utoipa::ToSchema for crate::Digest {}

impl utoipa::PartialSchema for crate::Timestamp {
    fn schema() -> RefOr<Schema> {
        string(
            "A UTC time to the second",
            Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"),
            "2026-11-28T16:38:54Z",
        )
    }
}
impl utoipa::ToSchema for crate::Timestamp {}
