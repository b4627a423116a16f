//! What rel prints: results on stdout, messages and errors on stderr, sizes in one unit
//! convention (binary, as the progress bars show them).

use std::io::Write;

use crate::client::ClientError;

/// Prints a line for people (stderr).
pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Prints a warning (stderr).
pub fn warn(line: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {}", terminal_safe(line));
}

/// Prints requested output (stdout); a closed pipe is not an error.
pub fn print_raw(text: &str) {
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// The version of the shape of `--json` results; it grows when a field changes meaning or
/// goes away (new fields do not change it).
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// Prints a result as pretty JSON on stdout: an object, with `schema_version` added.
pub fn print_json<T: serde::Serialize>(value: &T) {
    let mut value = serde_json::to_value(value).expect("outputs serialise");
    if let Some(object) = value.as_object_mut() {
        object
            .entry("schema_version")
            .or_insert(serde_json::Value::from(JSON_SCHEMA_VERSION));
    }
    print_raw(&format!(
        "{}\n",
        serde_json::to_string_pretty(&value).expect("values serialise")
    ));
}

/// Bytes for people: `7.91 MiB`, `512 B`.
/// `1 step`, `2 steps`.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

/// A hint for errors where the next step is not obvious.
pub fn hint(err: &anyhow::Error) -> Option<String> {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<ClientError>() {
            return match c {
                ClientError::Transport { url, .. } => Some(format!(
                    "is a registry running at {}? Start one with `rel serve`, or point REL_REGISTRY / --registry elsewhere",
                    url.split("/v1/").next().unwrap_or(url)
                )),
                ClientError::Api { status, .. } if *status == 401 => {
                    Some("pass a token with --token or REL_TOKEN".into())
                }
                _ => None,
            };
        }
        if let Some(rel_format::SignatureError::Untrusted { .. }) = cause.downcast_ref::<rel_format::SignatureError>() {
            return Some("add the publisher's public key with --trusted-key NAME.pub (or REL_TRUSTED_KEYS)".into());
        }
        if let Some(rel_format::channel::ChannelError::Rollback { .. }) = cause.downcast_ref() {
            return Some("if you really mean to go back, pass --allow-downgrade".into());
        }
    }
    None
}

/// `text` with control characters escaped (line breaks kept): an error may quote what a
/// registry, an archive or a tar header said.
fn terminal_safe(text: &str) -> String {
    text.split('\n')
        .map(rel_format::untrusted::escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prints an error as one JSON object on stderr, for `--json` callers:
/// `{"error": {"kind", "message", "causes", "hint", "request_id", "exit_code"}}` (README,
/// "Using it").
pub fn report_json(
    kind: &str,
    message: &str,
    causes: &[String],
    hint: Option<&str>,
    request_id: Option<&str>,
    exit_code: u8,
) {
    let value = serde_json::json!({
        "error": {
            "kind": kind,
            "message": message.trim_end(),
            "causes": causes,
            "hint": hint,
            "request_id": request_id,
            "exit_code": exit_code,
        }
    });
    let _ = writeln!(std::io::stderr(), "{value}");
}

/// Prints an error, its causes and a hint (stderr), control characters escaped.
pub fn report(err: &anyhow::Error) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", terminal_safe(&err.to_string()));
    for cause in err.chain().skip(1) {
        let _ = writeln!(stderr, "  caused by: {}", terminal_safe(&cause.to_string()));
    }
    if let Some(id) = request_id(err) {
        let _ = writeln!(stderr, "  request id: {id} (the registry's log names it)");
    }
    if let Some(h) = hint(err) {
        let _ = writeln!(stderr, "hint: {}", terminal_safe(&h));
    }
}

/// The id of the registry request an error comes from, if it does.
pub fn request_id(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|c| match c.downcast_ref::<ClientError>() {
        Some(ClientError::Api { request_id, .. }) => Some(request_id.clone()),
        _ => None,
    })
}
