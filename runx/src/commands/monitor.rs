use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;

use anyhow::Result;
use runx::guest_kind::GuestKind;
use runx::monitor::{self, Guest};
use runx::xen::Xl;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    domid: u32,
    /// The descriptor `create` reads "ok" (or why not) from.
    #[arg(long)]
    ready_fd: i32,
    #[arg(long)]
    uuid: String,
    #[arg(long, value_enum)]
    guest: GuestKind,
    /// The domain's name.
    name: String,
}

pub fn run(args: Args) -> Result<ExitCode> {
    // SAFETY: `create` passed this descriptor to us open, and nothing else here uses it.
    let ready = unsafe { OwnedFd::from_raw_fd(args.ready_fd) };
    let guest = Guest { name: &args.name, domid: args.domid, uuid: &args.uuid, kind: args.guest };
    match monitor::run(&Xl::default(), &guest, ready) {
        Ok(status) => Ok(ExitCode::from(status.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!("runx: monitor of container {}: {e}", args.name);
            Ok(ExitCode::from(monitor::GUEST_FAILED as u8))
        }
    }
}
