use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;

use anyhow::Result;
use runx::monitor::{self, Guest};
use runx::toolstack::Xl;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    domid: u32,
    /// The descriptor `create` reads "ok" (or why not) from.
    #[arg(long)]
    ready_fd: i32,
    #[arg(long)]
    own_kernel: bool,
    name: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    // SAFETY: `create` passed this descriptor to us open, and nothing else here uses it.
    let ready = unsafe { OwnedFd::from_raw_fd(args.ready_fd) };
    let guest = Guest { name: &args.name, domid: args.domid, own_kernel: args.own_kernel };
    match monitor::run(&Xl, &guest, ready) {
        Ok(status) => Ok(ExitCode::from(status.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!("runx: monitor of container {}: {e}", args.name);
            Ok(ExitCode::from(monitor::GUEST_FAILED as u8))
        }
    }
}
