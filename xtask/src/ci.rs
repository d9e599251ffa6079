//! `cargo xtask ci`: everything CI checks, in order, failing fast.

use anyhow::Result;

use crate::arch::Arch;
use crate::cmd;
use crate::progress::Step;

/// The example of a user's lab case (docs/lab.md), which CI runs through `--case-file`.
pub const EXAMPLE_CASE: &str = "docs/examples/lab-case-env.sh";

fn cargo(args: &[&str]) -> Result<()> {
    let step = Step::start(format!("cargo {}", args.join(" ")));
    cmd::run(cmd::cargo()?.args(args))?;
    step.done();
    Ok(())
}

/// Formatting, lints, unit tests and the arm64 cross-build of what ships.
pub fn static_checks() -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    cargo(&["test", "--workspace"])?;
    crate::shipped::build(Arch::Arm64).map(drop)
}
