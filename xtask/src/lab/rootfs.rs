//! The x86_64 dom0 disk: a debootstrap'd Debian with containerd, runc and
//! the Xen tools, packed as ext4 with `mkfs.ext4 -d` (no loop mounts, no
//! root tricks). dom0's init mounts it and the payload chroots into it.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use super::cache::{Cache, Key};
use super::progress::Step;
use super::Arch;
use crate::cmd;

const MIRROR: &str = "http://deb.debian.org/debian";
const SUITE: &str = "bookworm";
const INCLUDE: &[&str] = &["containerd", "runc", "xen-utils-4.17", "iproute2", "kmod"];

/// Candidate versions of the packages that matter, so a Debian update rebuilds the disk.
fn versions(arch: Arch) -> Result<String> {
    let mut cmd = Command::new("apt-cache");
    cmd.arg("policy").args(INCLUDE.iter().map(|p| format!("{p}:{}", arch.deb())));
    let text = cmd::stdout(&mut cmd)?;
    Ok(text.lines().filter(|l| l.trim_start().starts_with("Candidate:")).collect::<Vec<_>>().join(","))
}

/// Builds (or reuses) the ext4 image and returns its path.
pub fn build(cache: &Cache, arch: Arch) -> Result<PathBuf> {
    let mut key = Key::new("rootfs-v1");
    key.add(SUITE).add(INCLUDE.join(",")).add(versions(arch)?);
    let dir = cache.get_or_build(&format!("rootfs-{}", arch.name()), &key, |out| {
        let tree = out.join("tree");
        let step = Step::start(format!("debootstrap {SUITE} ({})", INCLUDE.join(", ")));
        cmd::output(
            Command::new("debootstrap")
                .args(["--variant=minbase", &format!("--arch={}", arch.deb())])
                .arg(format!("--include={}", INCLUDE.join(",")))
                .arg(SUITE)
                .arg(&tree)
                .arg(MIRROR),
        )?;
        step.done();
        // The payload's chroot reaches dom0's /host and cgroup mounts here.
        fs::create_dir_all(tree.join("host"))?;
        let used = cmd::stdout(Command::new("du").arg("-sb").arg(&tree))?;
        let used: u64 = used.split_whitespace().next().and_then(|n| n.parse().ok()).context("du printed no size")?;
        // Room for images and containers unpacked during the tests.
        let size = used + used / 2 + (256 << 20);
        let image = out.join("rootfs.ext4");
        fs::File::create(&image)?.set_len(size)?;
        cmd::output(Command::new("mkfs.ext4").args(["-q", "-F", "-L", "dom0-rootfs", "-d"]).arg(&tree).arg(&image))?;
        fs::remove_dir_all(&tree)?;
        Ok(())
    })?;
    Ok(dir.join("rootfs.ext4"))
}
