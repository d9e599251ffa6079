//! Running host programs with errors that say what failed and how to fix it.

use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

fn spawn_error(cmd: &Command) -> String {
    let program = cmd.get_program().to_string_lossy();
    format!("cannot run `{program}`: is it installed? (`scripts/prepare-host` installs the lab's prerequisites)")
}

/// The cargo that runs xtask, started in the workspace root.
pub fn cargo() -> Result<Command> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(crate::workspace::root()?);
    Ok(cmd)
}

/// Runs `cmd` with inherited stdio and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| spawn_error(cmd))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd`, captures its output, and fails (showing stderr) unless it exits 0.
pub fn output(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| spawn_error(cmd))?;
    if !out.status.success() {
        bail!("`{}` failed ({}): {}", describe(cmd), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out)
}

/// Runs `cmd` and returns its stdout as text.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let out = output(cmd)?;
    String::from_utf8(out.stdout).with_context(|| format!("`{}` printed non-UTF-8 output", describe(cmd)))
}
