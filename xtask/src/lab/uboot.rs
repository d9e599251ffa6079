//! The arm64 boot path: QEMU's built-in TFTP server hands u-boot a
//! `boot.scr.uimg` that loads Xen, dom0's kernel and initramfs and starts Xen
//! with the modules described in /chosen.

use std::fs;
use std::path::Path;

use anyhow::{ensure, Result};
use runx_tools::uimage::ScriptImage;

use super::dom0::Dom0;
use super::qemu;

/// Where Debian's qemu_arm64 u-boot expects kernels (`kernel_addr_r`); RAM ends at 3 GiB with -m 2048.
const FIRST_LOAD: u64 = 0x4040_0000;
const RAM_END: u64 = 0xc000_0000;
const ALIGN: u64 = 2 << 20;

fn align_up(addr: u64) -> u64 {
    addr.div_ceil(ALIGN) * ALIGN
}

/// The u-boot commands that boot `dom0` from TFTP; images laid out 2 MiB-aligned from `FIRST_LOAD`.
pub fn boot_commands(xen_size: u64, kernel_size: u64, initramfs_size: u64) -> Result<String> {
    let xen = FIRST_LOAD;
    let kernel = align_up(xen + xen_size);
    let initramfs = align_up(kernel + kernel_size);
    ensure!(initramfs + initramfs_size <= RAM_END, "the dom0 images do not fit in the QEMU machine's RAM");
    Ok(format!(
        "tftpb {xen:#x} xen\n\
         tftpb {kernel:#x} vmlinuz\n\
         tftpb {initramfs:#x} dom0.cpio.gz\n\
         fdt addr ${{fdt_addr}}\n\
         fdt resize 1024\n\
         fdt set /chosen \\#address-cells <0x2>\n\
         fdt set /chosen \\#size-cells <0x2>\n\
         fdt set /chosen xen,xen-bootargs \"{xen_args}\"\n\
         fdt set /chosen xen,dom0-bootargs \"{dom0_args}\"\n\
         fdt mknod /chosen dom0\n\
         fdt set /chosen/dom0 compatible \"xen,linux-zimage\" \"xen,multiboot-module\" \"multiboot,module\"\n\
         fdt set /chosen/dom0 reg <0x0 {kernel:#x} 0x0 {kernel_size:#x}>\n\
         fdt mknod /chosen dom0-ramdisk\n\
         fdt set /chosen/dom0-ramdisk compatible \"xen,linux-initrd\" \"xen,multiboot-module\" \"multiboot,module\"\n\
         fdt set /chosen/dom0-ramdisk reg <0x0 {initramfs:#x} 0x0 {initramfs_size:#x}>\n\
         booti {xen:#x} - ${{fdt_addr}}\n",
        xen_args = qemu::xen_cmdline(super::Arch::Arm64),
        dom0_args = qemu::dom0_cmdline(super::Arch::Arm64),
    ))
}

/// Fills `dir` with the images and the script image u-boot fetches over TFTP.
pub fn prepare_tftp(dir: &Path, dom0: &Dom0) -> Result<()> {
    fs::create_dir_all(dir)?;
    for (name, src) in [("xen", &dom0.xen), ("vmlinuz", &dom0.kernel), ("dom0.cpio.gz", &dom0.initramfs)] {
        let dest = dir.join(name);
        let _ = fs::remove_file(&dest);
        if fs::hard_link(src, &dest).is_err() {
            fs::copy(src, &dest)?;
        }
    }
    let size = |p: &Path| fs::metadata(p).map(|m| m.len());
    let text = boot_commands(size(&dom0.xen)?, size(&dom0.kernel)?, size(&dom0.initramfs)?)?;
    fs::write(dir.join("boot.cmd"), &text)?;
    let image = ScriptImage { name: "runx lab: Xen + dom0".into(), timestamp: 0, text: text.into_bytes() };
    fs::write(dir.join("boot.scr.uimg"), image.to_bytes()?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_laid_out_2mib_aligned_without_overlap() {
        let text = boot_commands(0xf0008, 0x1f6e0c0, 0x100_0001).unwrap();
        assert!(
            text.starts_with("tftpb 0x40400000 xen\ntftpb 0x40600000 vmlinuz\ntftpb 0x42600000 dom0.cpio.gz\n"),
            "{text}"
        );
        assert!(text.contains("reg <0x0 0x42600000 0x0 0x1000001>"), "{text}");
        assert!(text.ends_with("booti 0x40400000 - ${fdt_addr}\n"), "{text}");
        assert!(boot_commands(1, 1, 0x9000_0000).is_err());
    }
}
