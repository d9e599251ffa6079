//! The runtime's end-to-end case: containerd 1.6 in the x86_64 dom0 runs containers through
//! `ctr run --runc-binary /usr/sbin/runx`, each in its own Xen guest on the runx kernel.

use std::fs;
use std::path::PathBuf;

use anyhow::Result;
use runx_tools::guest;

use super::cache::Cache;
use super::payload::{Case, Share};
use super::progress::Step;
use super::{guest_kernel, runx_guests, Arch};
use crate::cmd;

pub const CASE: Case =
    Case { name: "containerd-runx", script: include_str!("assets/cases/containerd-runx.sh"), timeout_secs: 900 };
/// Writes the runx-start, runx-vs-runc and runx-state measurements, and CPU lines.
pub const BENCH: Case = Case { name: "runtime", script: include_str!("assets/benches/runtime.sh"), timeout_secs: 1200 };

/// The runtime as the lab's dom0 runs it (x86_64, the host's glibc = the dom0 disk's).
fn build_runx() -> Result<PathBuf> {
    let step = Step::start("building runx (release)");
    cmd::output(cmd::cargo()?.args(["build", "--release", "--package", "runx"]))?;
    step.done();
    Ok(super::workspace_root()?.join("target/release/runx"))
}

/// Puts what the runtime's packages install into the share, under `runtime/`: the runx binary,
/// the guest kernel and the base initramfs with runx-init.
pub fn stage(cache: &Cache, share: &Share) -> Result<()> {
    let runx = build_runx()?;
    let runx_init = runx_guests::build_runx_init(Arch::X86_64)?;
    let kernel = guest_kernel::build(cache, Arch::X86_64)?;
    share.add_file("runtime/runx", &runx)?;
    share.add_file("runtime/kernel", &kernel)?;
    guest::write_base(&runx_init, None, 0, fs::File::create(share.dir.join("runtime/initramfs.cpio"))?)?;
    Ok(())
}
