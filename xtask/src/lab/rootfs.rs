//! dom0's disk: a Debian root with containerd, runc and the Xen tools, packed as ext4 with
//! `mkfs.ext4 -d` (no loop mounts, no root tricks). dom0's init mounts it (label
//! `dom0-rootfs`) at /rootfs and the payload chroots into it.
//!
//! x86_64: `debootstrap --variant=minbase`. arm64: debootstrap's second stage would have to run
//! arm64 programs on the host (qemu-user + binfmt), so the disk is the same Debian packages
//! unpacked with `dpkg-deb -x`, as dom0's initramfs is: dom0's userland plus containerd, runc
//! coreutils and the CNI plugins, with busybox as the shell.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::cache::{Cache, Key};
use super::{debs, dom0};
use crate::arch::Arch;
use crate::cmd;
use crate::progress::Step;

const MIRROR: &str = "http://deb.debian.org/debian";
pub const SUITE: &str = "bookworm";
const INCLUDE: &[&str] =
    &["containerd", "runc", "xen-utils-4.17", "iproute2", "kmod", "containernetworking-plugins", "iptables"];

/// Unpacked on top of dom0's userland for the arm64 disk: containerd (with ctr and the runc
/// shim), runc, coreutils (cases run `install` inside the chroot; Debian's busybox has none),
/// the CNI plugins `ctr run --cni` runs, and their libraries.
const CONTAINERD: &[&str] = &[
    "containerd",
    "runc",
    "libseccomp2",
    "coreutils",
    "libacl1",
    "libattr1",
    "libgmp10",
    "libselinux1",
    "libpcre2-8-0",
    "containernetworking-plugins",
];
/// What cases run inside the arm64 chroot: each must find its libraries on the disk.
const CHROOT_TOOLS: &[&str] = &[
    "usr/bin/containerd",
    "usr/bin/containerd-shim-runc-v2",
    "usr/bin/ctr",
    "usr/sbin/runc",
    "usr/bin/install",
    "usr/lib/xen-4.17/bin/xl",
    "usr/lib/cni/bridge",
    "usr/lib/cni/host-local",
    "usr/lib/cni/loopback",
];

/// Candidate versions of `packages`, so a Debian update rebuilds what they make.
pub fn versions(arch: Arch, packages: &[&str]) -> Result<String> {
    let mut cmd = Command::new("apt-cache");
    cmd.arg("policy").args(packages.iter().map(|p| format!("{p}:{}", arch.deb())));
    let text = cmd::stdout(&mut cmd)?;
    Ok(text.lines().filter(|l| l.trim_start().starts_with("Candidate:")).collect::<Vec<_>>().join(","))
}

/// Builds (or reuses) the ext4 image for `arch` and returns its path.
pub fn build(cache: &Cache, arch: Arch) -> Result<PathBuf> {
    let dir = match arch {
        Arch::X86_64 => debootstrap(cache, arch)?,
        Arch::Arm64 => unpacked(cache, arch)?,
    };
    Ok(dir.join("rootfs.ext4"))
}

fn debootstrap(cache: &Cache, arch: Arch) -> Result<PathBuf> {
    let mut key = Key::new("rootfs-v1");
    key.add(SUITE).add(INCLUDE.join(",")).add(versions(arch, INCLUDE)?);
    cache.get_or_build(&format!("rootfs-{}", arch.name()), &key, |out| {
        let tree = out.join("tree");
        minbase(arch, INCLUDE, &tree)?;
        pack(&tree, out)
    })
}

/// `debootstrap --variant=minbase` of bookworm for `arch` into `tree`, with `include`'s packages.
pub fn minbase(arch: Arch, include: &[&str], tree: &Path) -> Result<()> {
    let mut debootstrap = Command::new("debootstrap");
    debootstrap.args(["--variant=minbase", &format!("--arch={}", arch.deb())]);
    let mut what = format!("debootstrap {SUITE} minbase");
    if !include.is_empty() {
        debootstrap.arg(format!("--include={}", include.join(",")));
        what.push_str(&format!(" with {}", include.join(", ")));
    }
    let step = Step::start(what);
    cmd::output(debootstrap.arg(SUITE).arg(tree).arg(MIRROR))?;
    step.done();
    Ok(())
}

fn unpacked(cache: &Cache, arch: Arch) -> Result<PathBuf> {
    let packages: Vec<String> = dom0::PACKAGES.iter().chain(CONTAINERD).map(|p| p.to_string()).collect();
    let files = debs::fetch(cache, arch, &packages)?;
    let mut key = Key::new("rootfs-unpacked-v2");
    for file in &files {
        key.add(file.file_name().expect("deb paths name a file").as_encoded_bytes());
    }
    key.add(dom0::XL_CONF);
    cache.get_or_build(&format!("rootfs-{}", arch.name()), &key, |out| {
        let tree = out.join("tree");
        let step = Step::start("unpacking dom0's userland, containerd and coreutils for the disk");
        for file in &files {
            cmd::run(Command::new("dpkg-deb").arg("-x").arg(file).arg(&tree))?;
        }
        step.done();
        // busybox is the disk's shell (Debian's sh is dash, which nothing here needs).
        symlink("busybox", tree.join("bin/sh"))?;
        dom0::check_libraries(&tree, arch, CHROOT_TOOLS)?;
        // What xl and containerd write to; /run, /tmp and the rest are dom0's, bind-mounted.
        for dir in ["etc/xen", "var/lib/xen", "var/log/xen", "var/lib/containerd", "root"] {
            fs::create_dir_all(tree.join(dir))?;
        }
        // libxl keeps its locks under /var/run/xen: dom0's /run, as in any Debian.
        symlink("../run", tree.join("var/run"))?;
        fs::write(tree.join("etc/xen/xl.conf"), dom0::XL_CONF)?;
        fs::write(tree.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
        fs::write(tree.join("etc/group"), "root:x:0:\n")?;
        pack(&tree, out)
    })
}

/// Packs `tree` into `out/rootfs.ext4` with room to spare, and removes the tree.
fn pack(tree: &Path, out: &Path) -> Result<()> {
    // The payload's chroot reaches dom0's /host and cgroup mounts here.
    fs::create_dir_all(tree.join("host"))?;
    let used = cmd::stdout(Command::new("du").arg("-sb").arg(tree))?;
    let used: u64 = used.split_whitespace().next().and_then(|n| n.parse().ok()).context("du printed no size")?;
    // Room for images and containers unpacked during the tests.
    let size = used + used / 2 + (256 << 20);
    let image = out.join("rootfs.ext4");
    fs::File::create(&image)?.set_len(size)?;
    cmd::output(Command::new("mkfs.ext4").args(["-q", "-F", "-L", "dom0-rootfs", "-d"]).arg(tree).arg(&image))?;
    fs::remove_dir_all(tree)?;
    Ok(())
}
