//! A few counters in Prometheus' text format; enough to alert on and small enough to read.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl Metrics {
    /// Adds `n` to counter `name` with one label set (`key="value",...`, may be empty).
    pub fn add(&self, name: &'static str, labels: String, n: u64) {
        *self
            .counters
            .lock()
            .expect("not poisoned")
            .entry((name, labels))
            .or_default() += n;
    }

    pub fn render(&self) -> String {
        let counters = self.counters.lock().expect("not poisoned");
        let mut out = String::new();
        let mut last = "";
        for ((name, labels), value) in counters.iter() {
            if *name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {value}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
        out
    }
}
