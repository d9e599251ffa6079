use anyhow::Result;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    global.cleanup_runtime()?.start(&args.id)?;
    Ok(())
}
