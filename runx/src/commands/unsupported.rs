//! Verbs runc has that a runx guest cannot do: a clear error instead of a surprise.

use anyhow::{bail, Result};

/// Whatever runc would accept; none of it is used.
#[derive(clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

pub fn run(verb: &str, why: &str) -> Result<()> {
    bail!("{verb} is not supported by runx: {why}")
}
