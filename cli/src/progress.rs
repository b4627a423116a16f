//! Progress bars on a terminal, nothing otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A byte counter shown as a bar when stderr is a terminal and output is not quiet.
#[derive(Debug, Clone)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// Whether a bar would be shown: what is only worth working out for one.
    pub fn shown(quiet: bool) -> bool {
        !quiet && std::io::stderr().is_terminal()
    }

    /// A bar towards `total` bytes; with `total` 0 (not known in advance), a counter.
    pub fn bytes(total: u64, message: &str, quiet: bool) -> Self {
        if !Self::shown(quiet) {
            return Self(None);
        }
        let (bar, template) = if total == 0 {
            (ProgressBar::no_length(), "{msg:>10} {bytes} {bytes_per_sec}")
        } else {
            (
                ProgressBar::new(total),
                "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(message.to_owned());
        Self(Some(bar))
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
