//! Fault injection for durability tests: `REL_FAULT=<point>` makes rel stop dead at that
//! point, as `kill -9` would (no destructor, no flush, no cleanup), so that tests can prove
//! the next run completes or undoes what was interrupted. Unset, it costs one environment
//! lookup per point.

/// Stops the process here if `REL_FAULT` names `point`.
pub fn point(point: &str) {
    if std::env::var_os("REL_FAULT").is_some_and(|p| p == point) {
        std::process::abort();
    }
}
