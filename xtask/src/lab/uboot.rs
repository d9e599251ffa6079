//! The arm64 boot path: u-boot sources a boot.scr that `runx_tools::boot`
//! generates from a boot config for the `qemu-arm64` board, fetched either
//! over QEMU's built-in TFTP server or from the first partition of a virtio
//! disk (u-boot's distro boot looks for /boot.scr.uimg and /boot.scr).

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result};
use runx_tools::boot;
use runx_tools::uimage::ScriptImage;

use super::dom0::Dom0;
use super::guest::Guest;
use super::link_or_copy;
use crate::cmd;

/// How u-boot gets the images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Tftp,
    VirtioDisk,
}

/// The boot config the lab hands to the generator; image paths are relative to the staging folder.
fn boot_config(medium: Medium, dom0less: bool) -> String {
    let method = match medium {
        Medium::Tftp => "tftp",
        Medium::VirtioDisk => "virtio",
    };
    let mut text = format!(
        "# Written by cargo xtask lab: the arm64 lab's boot, generated like any board's.\n\
         board = \"qemu-arm64\"\n\n[load]\nmethod = \"{method}\"\n\n\
         [xen]\nimage = \"xen\"\nbootargs = \"loglvl=all guest_loglvl=all\"\n\n\
         [dom0]\nkernel = \"vmlinuz\"\nramdisk = \"dom0.cpio.gz\"\nbootargs = \"quiet\"\n"
    );
    if dom0less {
        // Debian's kernel unpacks to ~58 MiB; the guest prints on Xen's console through a virtual PL011.
        text.push_str(
            "\n[[domu]]\nname = \"hello\"\nkernel = \"vmlinuz\"\nramdisk = \"guest.cpio.gz\"\n\
             memory_mib = 256\nvcpus = 1\nvpl011 = true\nbootargs = \"console=ttyAMA0 quiet\"\n",
        );
    }
    text
}

/// Stages the images and the generated boot.scr in `dir`; returns what QEMU should be given:
/// the TFTP folder, or a partitioned disk image.
pub fn prepare(dir: &Path, dom0: &Dom0, guest: &Guest, medium: Medium, dom0less: bool) -> Result<PathBuf> {
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    let stage = dir.join("files");
    fs::create_dir_all(&stage)?;
    for (name, src) in [("xen", &dom0.xen), ("vmlinuz", &dom0.kernel), ("dom0.cpio.gz", &dom0.initramfs)] {
        link_or_copy(src, &stage.join(name))?;
    }
    if dom0less {
        link_or_copy(&guest.ramdisk, &stage.join("guest.cpio.gz"))?;
    }
    let config_path = dir.join("boot.toml");
    fs::write(&config_path, boot_config(medium, dom0less))?;
    let config = boot::read_config(&config_path)?;
    let generated = boot::generate(&config, &stage)?;
    fs::write(dir.join("boot.cmd"), &generated.commands)?;
    let image =
        ScriptImage { name: "runx lab: qemu-arm64".into(), timestamp: 0, text: generated.commands.into_bytes() };
    let script = image.to_bytes()?;
    match medium {
        Medium::Tftp => {
            fs::write(stage.join("boot.scr.uimg"), script)?;
            Ok(stage)
        }
        Medium::VirtioDisk => {
            fs::write(stage.join("boot.scr"), script)?;
            let disk = dir.join("boot-disk.img");
            partitioned_disk(&stage, &disk)?;
            fs::remove_dir_all(&stage)?;
            Ok(disk)
        }
    }
}

/// An MBR disk whose one bootable partition (from 1 MiB) is an ext4 file system holding `tree`.
fn partitioned_disk(tree: &Path, disk: &Path) -> Result<()> {
    const MIB: u64 = 1 << 20;
    let used: u64 = fs::read_dir(tree)?.map(|e| Ok(e?.metadata()?.len())).sum::<Result<u64>>()?;
    let fs_size = (used + used / 5 + 16 * MIB).div_ceil(MIB) * MIB;
    let fs_image = disk.with_extension("ext4");
    fs::File::create(&fs_image)?.set_len(fs_size)?;
    cmd::output(Command::new("mkfs.ext4").args(["-q", "-F", "-L", "boot", "-d"]).arg(tree).arg(&fs_image))?;

    fs::File::create(disk)?.set_len(MIB + fs_size)?;
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet", "--no-reread"])
        .arg(disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run sfdisk: install fdisk (scripts/prepare-host does)")?;
    sfdisk.stdin.take().expect("piped").write_all(b"label: dos\nstart=2048, type=83, bootable\n")?;
    anyhow::ensure!(sfdisk.wait()?.success(), "sfdisk could not partition {}", disk.display());

    let mut out = fs::OpenOptions::new().write(true).open(disk)?;
    out.seek(SeekFrom::Start(MIB))?;
    std::io::copy(&mut fs::File::open(&fs_image)?, &mut out)?;
    fs::remove_file(&fs_image)?;
    Ok(())
}
