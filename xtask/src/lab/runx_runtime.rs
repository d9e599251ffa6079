//! The runtime's end-to-end cases: containerd 1.6 in dom0 runs containers through
//! `ctr run --runc-binary /usr/sbin/runx`, each in its own Xen guest on the runx kernel.
//! x86_64 runs the full case; arm64 runs a short one in the lab, and the demo.

use std::fs;

use anyhow::Result;
use runx_image::guest;

use super::cache::Cache;
use super::guest_kernel;
use super::payload::{Case, Need, Share};
use crate::arch::Arch;
use crate::shipped;

pub const CASE: Case = Case::builtin("containerd-runx", include_str!("assets/cases/containerd-runx.sh"), 900)
    .needing(Need::RUNX_CONTAINERS);
/// One bundle run by runc and by runx: the process's view of itself must be the same.
pub const RUNC_PARITY: Case =
    Case::builtin("runc-parity", include_str!("assets/cases/runc-parity.sh"), 300).needing(Need::RUNX_CONTAINERS);
/// `ctr run --cni`: the engine's network in the guest.
pub const NETWORK: Case =
    Case::builtin("network", include_str!("assets/cases/network.sh"), 600).needing(Need::RUNX_CONTAINERS);
/// `ctr task exec` into a running container, over runx-init's vchan sessions.
pub const EXEC: Case = Case::builtin("exec", include_str!("assets/cases/exec.sh"), 900).needing(Need::RUNX_CONTAINERS);
/// The network past the plain case: portmap, ten at once, DNS files, unusual and bad namespaces.
pub const NETWORK_EDGES: Case =
    Case::builtin("network-edges", include_str!("assets/cases/network-edges.sh"), 900).needing(Need::RUNX_CONTAINERS);
/// Writes the net-start, net-throughput and net-get10 measurements (runx against runc on one bridge).
pub const NETWORK_BENCH: Case =
    Case::builtin("network-bench", include_str!("assets/benches/network.sh"), 1200).needing(Need::RUNX_CONTAINERS);
/// Writes the runx-start, runx-vs-runc and runx-state measurements, and CPU lines.
pub const BENCH: Case =
    Case::builtin("runtime", include_str!("assets/benches/runtime.sh"), 1200).needing(Need::RUNX_CONTAINERS);

/// The arm64 case: `echo` reaches ctr's stdout, `exit 42` is ctr's exit code.
pub const ARM64_CASE: Case =
    Case::builtin("containerd-runx-arm64", include_str!("assets/cases/containerd-runx-arm64.sh"), 600)
        .needing(Need::RUNX_CONTAINERS);
/// The network, exec, events and update on arm64, in one container.
pub const ARM64_NETWORK_EXEC: Case =
    Case::builtin("network-exec-arm64", include_str!("assets/cases/network-exec-arm64.sh"), 900)
        .needing(Need::RUNX_CONTAINERS);
/// `cargo xtask demo`: one container, its command, output and exit status in `demo/`.
pub const DEMO: Case = Case::builtin("demo", include_str!("assets/cases/demo.sh"), 600).needing(Need::RUNX_CONTAINERS);

/// Puts what the runtime's packages install into the share, under `runtime/`: the runx binary,
/// the guest kernel and the base initramfs with runx-init, all for `arch`.
pub fn stage(cache: &Cache, share: &Share, arch: Arch) -> Result<()> {
    let shipped = shipped::build(arch)?;
    let kernel = guest_kernel::build(cache, arch)?;
    share.add_file("runtime/runx", &shipped.binary("runx"))?;
    share.add_file("runtime/kernel", &kernel)?;
    guest::write_base(shipped.init(), None, 0, fs::File::create(share.dir.join("runtime/initramfs.cpio"))?)?;
    Ok(())
}

/// What the demo's container ran, printed and exited with, as dom0 left it in the share.
pub struct DemoRun {
    pub command: String,
    pub output: String,
    pub status: String,
}

impl DemoRun {
    pub fn read(share: &Share) -> Self {
        let read = |name: &str| share.read(&format!("demo/{name}"));
        Self {
            command: read("command").trim().to_owned(),
            output: read("output"),
            status: read("status").trim().to_owned(),
        }
    }

    /// The demo passed when the container printed its line on `arch` and exited 0.
    pub fn check(&self, arch: Arch) -> std::result::Result<(), String> {
        let line = demo_line(arch);
        if self.command.is_empty() {
            return Err("dom0 never ran the container (see the case log)".to_owned());
        }
        if !self.output.lines().any(|l| l.trim_end() == line) {
            return Err(format!("the container did not print {line:?}"));
        }
        if self.status != "0" {
            return Err(format!("the container exited with status {:?}, not 0", self.status));
        }
        Ok(())
    }
}

/// The line the demo's container prints on `arch` (demo.sh names the arch as `uname -m` does,
/// aarch64 as arm64).
pub fn demo_line(arch: Arch) -> String {
    format!("hello from a runx container on {} Xen", arch.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_needs_the_containers_line_and_status_0() {
        let run = |output: &str, status: &str| DemoRun {
            command: "ctr run ...".into(),
            output: output.into(),
            status: status.into(),
        };
        assert_eq!(run("hello from a runx container on arm64 Xen\n", "0").check(Arch::Arm64), Ok(()));
        let err = run("ctr: failed to create shim task\n", "1").check(Arch::Arm64).unwrap_err();
        assert!(err.contains("did not print \"hello from a runx container on arm64 Xen\""), "{err}");
        let err = run("hello from a runx container on arm64 Xen\n", "255").check(Arch::Arm64).unwrap_err();
        assert!(err.contains("255"), "{err}");
        assert!(run("hello from a runx container on arm64 Xen", "0").check(Arch::X86_64).is_err());
        let never = DemoRun { command: String::new(), output: String::new(), status: String::new() };
        assert!(never.check(Arch::Arm64).unwrap_err().contains("never ran"));
    }
}
