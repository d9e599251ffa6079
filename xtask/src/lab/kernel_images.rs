//! Containers that carry their own kernel (x86_64, case `kernel-containers`): the lab packs a
//! baremetal Xen PV kernel and a Linux kernel with its ramdisk into images with
//! `runx_tools::kernel_image`, exactly as `runx-tools image` does, and dom0 runs them through
//! containerd and runx, with an admin profile on the side.

use std::fs;
use std::path::Path;

use anyhow::Result;
use runx_image::cpio::{CpioWriter, Meta};
use runx_tools::kernel_image::KernelImage;
use runx_tools::oci_archive;

use super::cache::Cache;
use super::payload::{Case, Need, Share};
use super::{baremetal, guest_kernel};
use crate::arch::Arch;

pub const CASE: Case = Case::builtin("kernel-containers", include_str!("assets/cases/kernel-containers.sh"), 600)
    .needing(&[Need::Containerd, Need::Runtime, Need::KernelImages]);

/// The baremetal image's Cmd: its default command line, which it prints.
const BAREMETAL_CMDLINE: &[&str] = &["hello", "from", "the", "image's", "command", "line"];

/// The Linux image's /init: prints the `greeting` its command line sets (the kernel hands
/// `name=value` words it does not know to init as environment) and powers off; with `wait=1`
/// it waits for Xen's shutdown request, on which the kernel runs /sbin/poweroff.
const LINUX_INIT: &str = "#!/bin/sh
mount -t proc proc /proc
echo 0 > /proc/sys/kernel/printk
echo \"linux from the image: $greeting\"
[ -n \"$wait\" ] && while :; do sleep 1; done
poweroff -f
";
const LINUX_POWEROFF: &str = "#!/bin/sh\nexec /bin/poweroff -f\n";

fn write_image(share: &Share, name: &str, image: &KernelImage) -> Result<()> {
    let path = share.dir.join(format!("images/lab-{name}.tar"));
    fs::create_dir_all(path.parent().expect("under images/"))?;
    oci_archive::write(&image.build()?, fs::File::create(path)?)?;
    Ok(())
}

/// The Linux image's ramdisk: static busybox and the /init above.
fn linux_ramdisk(path: &Path, busybox: &Path) -> Result<()> {
    let mut cpio = CpioWriter::new(fs::File::create(path)?);
    let dir = Meta::root(0o755, 0);
    for folder in ["bin", "dev", "proc", "sbin"] {
        cpio.append_dir(folder, dir)?;
    }
    cpio.append_char_device("dev/console", Meta::root(0o600, 0), 5, 1)?;
    cpio.append_file("bin/busybox", dir, &fs::read(busybox)?)?;
    for applet in ["sh", "mount", "echo", "sleep", "poweroff"] {
        cpio.append_symlink(&format!("bin/{applet}"), Meta::root(0o777, 0), "busybox")?;
    }
    cpio.append_file("init", dir, LINUX_INIT.as_bytes())?;
    cpio.append_file("sbin/poweroff", dir, LINUX_POWEROFF.as_bytes())?;
    cpio.finish()?;
    Ok(())
}

/// Puts the two kernel images into the share, under `images/`.
pub fn stage(cache: &Cache, share: &Share, busybox: &Path) -> Result<()> {
    let work = cache.root().join("kernel-images");
    fs::create_dir_all(&work)?;
    let baremetal = KernelImage {
        reference: "docker.io/runx-lab/baremetal:latest".into(),
        architecture: "amd64".into(),
        kernel: baremetal::build(cache)?,
        ramdisk: None,
        rootfs: None,
        args: BAREMETAL_CMDLINE.iter().map(|w| (*w).to_owned()).collect(),
        labels: Default::default(),
    };
    write_image(share, "baremetal", &baremetal)?;
    fs::write(share.dir.join("images/lab-baremetal.cmdline"), BAREMETAL_CMDLINE.join(" "))?;

    let ramdisk = work.join("initrd.cpio");
    linux_ramdisk(&ramdisk, busybox)?;
    let linux = KernelImage {
        reference: "docker.io/runx-lab/linux-kernel:latest".into(),
        architecture: "amd64".into(),
        kernel: guest_kernel::build(cache, Arch::X86_64)?,
        ramdisk: Some(ramdisk),
        rootfs: None,
        args: ["console=hvc0", "quiet", "greeting=hello"].map(str::to_owned).to_vec(),
        labels: Default::default(),
    };
    write_image(share, "linux-kernel", &linux)
}
