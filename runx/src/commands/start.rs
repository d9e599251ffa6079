use anyhow::Result;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    global.runtime()?.start(&args.id)?;
    Ok(())
}
