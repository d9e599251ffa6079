//! The lab's test suites: which boots each architecture gets, which cases
//! run in each, and the run that prepares, boots and collects results.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use runx_tools::oci_archive::{self, Entry, Image};

use super::cache::Cache;
use super::payload::{Case, CaseResult, Need, Share};
use super::qemu::{self, Boot};
use super::uboot::{self, Medium};
use super::{debian_image, dom0, guest, kernel_images, rootfs, runx_guests, runx_runtime};
use crate::arch::Arch;

pub const XL_CREATE: Case = Case::builtin("xl-create", include_str!("assets/cases/xl-create.sh"), 180);
const CONTAINERD_RUNC: Case =
    Case::builtin("containerd-runc", include_str!("assets/cases/containerd-runc.sh"), 300).needing(&[Need::Containerd]);

/// The image the containerd case imports: busybox in one layer.
pub const LAB_IMAGE: &str = "docker.io/runx-lab/busybox:latest";

/// How one boot is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// QEMU loads Xen and dom0 directly; dom0 gets the debootstrap disk.
    X86,
    /// u-boot fetches a generated boot.scr and the images over TFTP; dom0 gets its disk (the
    /// unpacked containerd) when a case needs containerd.
    Arm64Tftp,
    /// u-boot loads a generated boot.scr and the images from a virtio disk; the script also
    /// starts a dom0less guest that prints on Xen's console.
    Arm64DiskDom0less,
}

impl Plan {
    pub fn arch(self) -> Arch {
        match self {
            Plan::X86 => Arch::X86_64,
            Plan::Arm64Tftp | Plan::Arm64DiskDom0less => Arch::Arm64,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Plan::X86 => "x86_64",
            Plan::Arm64Tftp => "arm64 (boot.scr over TFTP)",
            Plan::Arm64DiskDom0less => "arm64 (boot.scr from a virtio disk, dom0less guest)",
        }
    }

    fn run_dir(self) -> &'static str {
        match self {
            Plan::X86 => "x86_64",
            Plan::Arm64Tftp => "arm64-tftp",
            Plan::Arm64DiskDom0less => "arm64-disk",
        }
    }

    /// The boot `cargo xtask demo` and `bench` use for `arch`.
    pub fn main(arch: Arch) -> Self {
        match arch {
            Arch::X86_64 => Plan::X86,
            Arch::Arm64 => Plan::Arm64Tftp,
        }
    }
}

/// Every boot the lab test makes on `arch`, with its cases.
pub fn suite(arch: Arch) -> Vec<(Plan, Vec<Case>)> {
    match arch {
        Arch::X86_64 => vec![(
            Plan::X86,
            vec![
                XL_CREATE,
                CONTAINERD_RUNC,
                runx_runtime::CASE,
                runx_runtime::RUNC_PARITY,
                runx_runtime::NETWORK,
                runx_runtime::NETWORK_EDGES,
                runx_runtime::EXEC,
                kernel_images::CASE,
                debian_image::CASE,
                runx_guests::CASE,
            ],
        )],
        Arch::Arm64 => vec![
            (Plan::Arm64Tftp, vec![XL_CREATE, runx_runtime::ARM64_CASE, runx_runtime::ARM64_NETWORK_EXEC]),
            (Plan::Arm64DiskDom0less, vec![XL_CREATE]),
        ],
    }
}

/// The boots `cargo xtask lab` makes on `arch`: the built-in suite (unless `builtin` is false)
/// with the user's cases added to the main boot, so that they cost no boot of their own.
pub fn suite_with(arch: Arch, user_cases: &[Case], builtin: bool) -> Vec<(Plan, Vec<Case>)> {
    let mut boots = if builtin { suite(arch) } else { vec![(Plan::main(arch), Vec::new())] };
    if let Some((_, cases)) = boots.iter_mut().find(|(plan, _)| *plan == Plan::main(arch)) {
        cases.extend(user_cases.iter().cloned());
    }
    boots.retain(|(_, cases)| !cases.is_empty());
    boots
}

/// The outcome of one boot.
pub struct Report {
    pub plan: Plan,
    pub results: Vec<CaseResult>,
    pub share: Share,
    pub serial_log: PathBuf,
    pub boot: Duration,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.results.iter().all(|r| r.passed)
    }

    /// Prints one line per case, and the log of each failed case.
    pub fn print(&self) {
        let label = self.plan.label();
        for r in &self.results {
            let status = if r.passed { "ok" } else { "FAILED" };
            println!("lab {label} {}: {status} ({} s)", r.name, r.seconds);
            if !r.passed {
                let why = r.detail.clone().unwrap_or_else(|| self.share.case_log(&r.name));
                println!("--- {} ---\n{why}\n---", r.name);
            }
        }
        println!(
            "lab {label}: {} of {} passed, boot to power-off {:.1} s, serial log {}",
            self.results.iter().filter(|r| r.passed).count(),
            self.results.len(),
            self.boot.as_secs_f64(),
            self.serial_log.display()
        );
    }
}

fn busybox_image(cache: &Cache, arch: Arch, busybox: &Path) -> Result<PathBuf> {
    let data = fs::read(busybox).with_context(|| format!("cannot read {}", busybox.display()))?;
    let mut entries = vec![Entry::Dir { path: "bin".into(), mode: 0o755 }];
    entries.push(Entry::File { path: "bin/busybox".into(), mode: 0o755, data });
    for applet in ["sh", "echo", "cat", "ls", "sleep", "hostname", "id"] {
        entries.push(Entry::Symlink { path: format!("bin/{applet}"), target: "busybox".into() });
    }
    let image = Image {
        reference: LAB_IMAGE.into(),
        architecture: arch.deb().into(),
        cmd: vec!["/bin/sh".into()],
        env: vec!["PATH=/bin".into()],
        labels: Default::default(),
        entries,
    };
    let path = cache.root().join(format!("lab-busybox-{}.tar", arch.name()));
    oci_archive::write(&image, fs::File::create(&path)?)?;
    Ok(path)
}

/// The dom0less guest's line on Xen's serial console, e.g. `(XEN) DOM1: @@guest: hello ...`.
fn dom0less_result(serial: &str) -> CaseResult {
    let passed = serial.lines().any(|l| l.contains("DOM1") && l.contains(guest::HELLO));
    let detail = (!passed).then(|| "no `DOM1: @@guest: hello` line on Xen's serial console".to_owned());
    CaseResult { name: "dom0less-guest-on-xen-console".into(), passed, seconds: 0, detail }
}

/// Builds what `cases` need, boots once as `plan` says, and collects the results.
pub fn run(cache: &Cache, plan: Plan, cases: &[Case]) -> Result<Report> {
    let arch = plan.arch();
    let dom0 = dom0::build(cache, arch)?;
    let guest = guest::build(cache, &dom0)?;
    let run_dir = cache.root().join("runs").join(plan.run_dir());
    let share = Share::create(run_dir.join("share"), cases)?;
    share.add_file("guest/vmlinuz", &guest.kernel)?;
    share.add_file("guest/guest.cpio.gz", &guest.ramdisk)?;
    fs::write(share.dir.join("guest/lab-guest.cfg"), &guest.xl_config)?;
    for (file, text) in &guest.devmem_configs {
        fs::write(share.dir.join("guest").join(file), text)?;
    }
    let needed = |need| cases.iter().any(|case| case.needs.contains(&need));
    let busybox = dom0.packages.join("bin/busybox");
    if needed(Need::RunxGuests) {
        runx_guests::stage(cache, &share, &busybox)?;
    }
    if needed(Need::Runtime) {
        runx_runtime::stage(cache, &share, arch)?;
    }
    if needed(Need::KernelImages) {
        kernel_images::stage(cache, &share, &busybox)?;
    }
    if needed(Need::DebianImage) {
        debian_image::stage(cache, &share)?;
    }
    // containerd lives on dom0's disk, mounted at /rootfs.
    let rootfs = if needed(Need::Containerd) {
        share.add_file("images/lab-busybox.tar", &busybox_image(cache, arch, &busybox)?)?;
        Some(rootfs::build(cache, arch)?)
    } else {
        None
    };
    let (disk, tftp) = match plan {
        Plan::X86 => (rootfs, None),
        // u-boot's distro boot finds no boot script on dom0's disk and goes on to DHCP and TFTP.
        Plan::Arm64Tftp => (rootfs, Some(uboot::prepare(&run_dir.join("boot"), &dom0, &guest, Medium::Tftp, false)?)),
        Plan::Arm64DiskDom0less => {
            anyhow::ensure!(rootfs.is_none(), "the arm64 disk boot has no second disk for dom0's rootfs");
            (Some(uboot::prepare(&run_dir.join("boot"), &dom0, &guest, Medium::VirtioDisk, true)?), None)
        }
    };
    let boot = Boot {
        dom0: &dom0,
        share: &share.dir,
        disk: disk.as_deref(),
        tftp: tftp.as_deref(),
        timeout: Duration::from_secs(120 + cases.iter().map(|c| u64::from(c.timeout_secs)).sum::<u64>()),
        log: run_dir.join("serial.log"),
    };
    let what = format!("booting Xen + dom0, {}, running {} case(s)", plan.label(), cases.len());
    let outcome = qemu::boot(&boot, &what, "@@lab: payload finished")?;
    let mut results = share.results(cases)?;
    if plan == Plan::Arm64DiskDom0less {
        results.push(dom0less_result(&outcome.serial));
    }
    for check in cases.iter().filter_map(|case| case.host_checks) {
        results.extend(check(&share));
    }
    Ok(Report { plan, results, share, serial_log: run_dir.join("serial.log"), boot: outcome.took })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_cases_ride_on_the_main_boot() {
        let mine = Case::builtin("mine", "true", 5);
        let boots = suite_with(Arch::Arm64, std::slice::from_ref(&mine), true);
        assert_eq!(boots.len(), suite(Arch::Arm64).len(), "no boot of their own");
        let main = boots.iter().find(|(plan, _)| *plan == Plan::Arm64Tftp).unwrap();
        assert_eq!(main.1.last().unwrap().name, "mine");
        let only = suite_with(Arch::X86_64, std::slice::from_ref(&mine), false);
        assert_eq!(only.len(), 1);
        assert_eq!((only[0].0, only[0].1.len()), (Plan::X86, 1));
        assert!(suite_with(Arch::X86_64, &[], false).is_empty());
    }

    #[test]
    fn finds_the_dom0less_guest_only_on_its_own_console() {
        let line = format!("(XEN) DOM1: {} on aarch64", guest::HELLO);
        assert!(dom0less_result(&format!("boot\n{line}\n")).passed);
        // The same words from dom0's xl-create case do not count.
        assert!(!dom0less_result(&format!("  xl-create | {}\n", guest::HELLO)).passed);
    }
}
