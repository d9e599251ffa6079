//! `cargo xtask ci`: everything CI checks, in order, failing fast.

use anyhow::Result;

use crate::cmd;
use crate::lab::progress::Step;

/// The crates that ship on the boards, cross-built for arm64.
const SHIPPED: &[&str] = &["runx", "runx-init", "runx-tools"];

fn cargo(args: &[&str]) -> Result<()> {
    let step = Step::start(format!("cargo {}", args.join(" ")));
    cmd::run(cmd::cargo()?.args(args))?;
    step.done();
    Ok(())
}

/// Formatting, lints, unit tests and the arm64 cross-build.
pub fn static_checks() -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    cargo(&["test", "--workspace"])?;
    cargo(&arm64_build())
}

/// `cargo build` arguments of the arm64 cross-build of SHIPPED. The arm64 lab takes its runx
/// from this very build: another package selection could unify dependency features differently
/// and rebuild runx (release, LTO: minutes) on every switch.
pub fn arm64_build() -> Vec<&'static str> {
    let mut build = vec!["build", "--release", "--target", "aarch64-unknown-linux-gnu"];
    for krate in SHIPPED {
        build.extend(["--package", krate]);
    }
    build
}
