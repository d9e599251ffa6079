use anyhow::Result;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

pub fn run(args: Args, global: &Global, pause: bool) -> Result<()> {
    global.cleanup_runtime()?.pause(&args.id, pause)?;
    Ok(())
}
