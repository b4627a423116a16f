//! Text from untrusted sources (archive member names, tar header bytes, a registry's error
//! messages) made safe to show on a terminal: control characters and the bidirectional
//! overrides that reorder what a reader sees are written as Rust escapes (`\u{1b}`, `\n`),
//! everything else as it is. An error message that names such a text escapes it, so a member
//! named `lib/\e]0;PWNED\a` cannot retitle or clear the terminal that shows the error.

use std::borrow::Cow;
use std::fmt;

fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with its control characters escaped.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Shows a text with its control characters escaped (`format!("{}", Escaped(name))`).
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("lib/demo-1.0/ebin/é.beam"), "lib/demo-1.0/ebin/é.beam");
        assert_eq!(
            escape_controls("lib/\u{1b}]0;PWNED\u{7}\u{1b}[2J"),
            "lib/\\u{1b}]0;PWNED\\u{7}\\u{1b}[2J"
        );
        assert_eq!(escape_controls("a\nb\u{9b}c\u{202e}d"), "a\\nb\\u{9b}c\\u{202e}d");
        assert_eq!(Escaped("x\ty").to_string(), "x\\ty");
    }
}
