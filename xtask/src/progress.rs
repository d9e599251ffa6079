//! Progress lines for long steps: what is happening and for how long.

use std::time::{Duration, Instant};

/// One named step; prints when it starts and how long it took.
pub struct Step {
    what: String,
    started: Instant,
}

impl Step {
    pub fn start(what: impl Into<String>) -> Self {
        let what = what.into();
        eprintln!("[xtask] {what} ...");
        Self { what, started: Instant::now() }
    }

    /// A line saying the step is still running.
    pub fn tick(&self) {
        eprintln!("[xtask] {}: {} s so far", self.what, self.started.elapsed().as_secs());
    }

    pub fn done(self) -> Duration {
        let took = self.started.elapsed();
        eprintln!("[xtask] {}: done in {:.1} s", self.what, took.as_secs_f64());
        took
    }
}

/// A step that was served from the cache.
pub fn cached(what: &str, path: &std::path::Path) {
    eprintln!("[xtask] {what}: cached ({})", path.display());
}
