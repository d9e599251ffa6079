use anyhow::Result;
use runx::state::{ContainerState, Status};
use serde_json::json;

use super::Global;

#[derive(clap::Args)]
pub struct Args {
    id: String,
}

/// The runtime-spec state document, as runc prints it.
pub fn document(state: &ContainerState, status: Status) -> serde_json::Value {
    json!({
        "ociVersion": "1.0.2",
        "id": state.id,
        "pid": state.reported_pid(status),
        "status": status.as_str(),
        "bundle": state.bundle,
        "rootfs": state.rootfs,
        "created": state.created,
        "owner": state.owner,
        "annotations": state.annotations,
    })
}

pub fn run(args: Args, global: &Global) -> Result<()> {
    let runtime = global.cleanup_runtime()?;
    let (_, state) = runtime.load(&args.id)?;
    let status = runtime.status(&state);
    println!("{}", serde_json::to_string_pretty(&document(&state, status))?);
    Ok(())
}
