use anyhow::Result;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    /// Also delete a running container: its domain is destroyed.
    #[arg(long, short)]
    force: bool,
    id: String,
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let runtime = global.cleanup_runtime()?;
    match runtime.delete(&args.id, args.force) {
        // runc: deleting a container that does not exist succeeds with --force.
        Err(runx::container::ContainerError::State(runx::state::StateError::NotFound(_))) if args.force => Ok(()),
        other => Ok(other?),
    }
}
