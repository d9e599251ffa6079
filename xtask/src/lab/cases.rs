//! The lab's test suites and the run that boots one architecture once and
//! runs every case of its suite in that boot.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use runx_tools::oci_archive::{self, Entry, Image};

use super::cache::Cache;
use super::payload::{Case, CaseResult, Share};
use super::qemu::{self, Boot};
use super::{dom0, guest, rootfs, uboot, Arch};

const XL_CREATE: Case =
    Case { name: "xl-create", script: include_str!("assets/cases/xl-create.sh"), timeout_secs: 180 };
const CONTAINERD_RUNC: Case =
    Case { name: "containerd-runc", script: include_str!("assets/cases/containerd-runc.sh"), timeout_secs: 300 };

/// The image the containerd case imports: busybox in one layer.
pub const LAB_IMAGE: &str = "docker.io/runx-lab/busybox:latest";

/// Every case the lab runs on `arch`, and whether it needs the x86_64 rootfs disk.
pub fn suite(arch: Arch) -> Vec<Case> {
    match arch {
        Arch::X86_64 => vec![XL_CREATE, CONTAINERD_RUNC],
        Arch::Arm64 => vec![XL_CREATE],
    }
}

/// What `cargo xtask demo` runs until the runtime can start a container.
pub fn demo() -> Vec<Case> {
    vec![XL_CREATE]
}

fn needs_rootfs(cases: &[Case]) -> bool {
    cases.iter().any(|c| c.name == CONTAINERD_RUNC.name)
}

/// The outcome of one boot.
pub struct Report {
    pub arch: Arch,
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
        for r in &self.results {
            let status = if r.passed { "ok" } else { "FAILED" };
            println!("lab {} {}: {status} ({} s in dom0)", self.arch.name(), r.name, r.seconds);
            if !r.passed {
                println!("--- {} log ---\n{}---", r.name, self.share.case_log(&r.name));
            }
        }
        println!(
            "lab {}: {} of {} passed, boot to power-off {:.1} s, serial log {}",
            self.arch.name(),
            self.results.iter().filter(|r| r.passed).count(),
            self.results.len(),
            self.boot.as_secs_f64(),
            self.serial_log.display()
        );
    }
}

fn busybox_image(cache: &Cache, arch: Arch, busybox: &std::path::Path) -> Result<PathBuf> {
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
        entries,
    };
    let path = cache.root().join(format!("lab-busybox-{}.tar", arch.name()));
    oci_archive::write(&image, fs::File::create(&path)?)?;
    Ok(path)
}

/// Builds what `cases` need, boots `arch` once, and collects the results.
pub fn run(cache: &Cache, arch: Arch, cases: &[Case]) -> Result<Report> {
    let dom0 = dom0::build(cache, arch)?;
    let guest = guest::build(cache, &dom0)?;
    let run_dir = cache.root().join("runs").join(arch.name());
    let share = Share::create(run_dir.join("share"), cases)?;
    share.add_file("guest/vmlinuz", &guest.kernel)?;
    share.add_file("guest/guest.cpio.gz", &guest.ramdisk)?;
    let disk = if needs_rootfs(cases) {
        let image = busybox_image(cache, arch, &dom0.packages.join("bin/busybox"))?;
        share.add_file("images/lab-busybox.tar", &image)?;
        Some(rootfs::build(cache, arch)?)
    } else {
        None
    };
    let tftp = run_dir.join("tftp");
    if arch == Arch::Arm64 {
        uboot::prepare_tftp(&tftp, &dom0)?;
    }
    let boot = Boot {
        dom0: &dom0,
        share: &share.dir,
        disk: disk.as_deref(),
        tftp: (arch == Arch::Arm64).then_some(tftp.as_path()),
        timeout: Duration::from_secs(120 + cases.iter().map(|c| u64::from(c.timeout_secs)).sum::<u64>()),
        log: run_dir.join("serial.log"),
    };
    let outcome = qemu::boot(
        &boot,
        &format!("booting Xen + dom0 ({}) and running {} case(s)", arch.name(), cases.len()),
        "@@lab: payload finished",
    )?;
    let serial_log = boot.log.clone();
    drop(boot);
    let results = share.results(cases)?;
    Ok(Report { arch, results, share, serial_log, boot: outcome.took })
}
