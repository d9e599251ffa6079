SUMMARY = "Linux kernel for runx guests"
DESCRIPTION = "linux-yocto 6.6 configured from allnoconfig plus the runx guest fragments: Xen PV \
               front-ends and console, initramfs, the file systems and system calls runx-init \
               uses. Built beside dom0's kernel and installed as /usr/lib/runx/kernel, where runx \
               looks for it."
HOMEPAGE = "https://github.com/runx-project/runx"
BUGTRACKER = "https://github.com/runx-project/runx/issues"
SECTION = "kernel"

# oe-core's tiny linux-yocto: its source, SRCREVs, LICENSE and allnoconfig mode. The recipe's
# name does not start with linux- on purpose: meta-virtualization's linux-%.bbappend adds dom0
# and container-host features (docker, lxc, vswitch, ...) to every such kernel.
require recipes-kernel/linux/linux-yocto-tiny_6.6.bb

LICENSE = "GPL-2.0-only"

# Not dom0's kernel: leave virtual/kernel to the machine's kernel.
PROVIDES:remove = "virtual/kernel"

# The same fragments `cargo xtask guest-kernel` builds the lab's guest kernel with, in the
# folder the lab reads them from.
# nooelint: oelint.vars.fileextrapaths,oelint.vars.outofcontext
FILESEXTRAPATHS:prepend := "${THISDIR}/linux-runx-guest:"
SRC_URI += "file://defconfig file://runx-guest.cfg"
SRC_URI:append:x86-64 = " file://runx-guest-x86.cfg"

inherit features_check

REQUIRED_DISTRO_FEATURES = "xen"

# A second kernel: its own packages, staging and deploy folder (deploy/images/MACHINE/runx-guest-kernel/).
KERNEL_PACKAGE_NAME = "runx-guest-kernel"

# A Xen guest, whatever the board: no BSP description of the machine, only the defconfig and
# fragments above; no device trees, no bundled initramfs, no modules.
KMACHINE = "runx-guest"
COMPATIBLE_MACHINE = "^.*$"
COMPATIBLE_HOST = "(aarch64|x86_64).*-linux"
KERNEL_DEVICETREE = ""
# What linux-yocto.inc adds for QEMU machines and some MACHINE/DISTRO_FEATURES (test modules,
# taskstats, vfat, EFI, NUMA, KVM): a guest needs none of it.
KERNEL_FEATURES:remove = "features/debug/printk.scc features/taskstats/taskstats.scc \
                          features/kernel-sample/kernel-sample.scc cfg/fs/vfat.scc cfg/efi.scc \
                          features/numa/numa.scc features/kvm/qemu-kvm-enable.scc \
                          features/aufs/aufs-enable.scc"
INITRAMFS_IMAGE = ""
INITRAMFS_IMAGE_BUNDLE = ""

# xl boots an arm64 Image on Arm and a bzImage as an x86-64 PV guest.
KERNEL_IMAGETYPE = "Image"
KERNEL_IMAGETYPE:x86-64 = "bzImage"
KERNEL_IMAGETYPES = ""
KERNEL_ALT_IMAGETYPE = ""

do_install:append() {
    install -d ${D}${nonarch_libdir}/runx
    install -m 0644 ${B}/${KERNEL_OUTPUT_DIR}/${KERNEL_IMAGETYPE} ${D}${nonarch_libdir}/runx/kernel
}

# The runx-guest-kernel package (from KERNEL_PACKAGE_NAME, which oelint cannot see) holds only
# /usr/lib/runx/kernel; the /boot copies stay in runx-guest-kernel-image-*, which nothing installs.
# nooelint: oelint.vars.pkgspecific.FILES
FILES:${KERNEL_PACKAGE_NAME} += "${nonarch_libdir}/runx/kernel"
# nooelint: oelint.vars.pkgspecific.RDEPENDS
RDEPENDS:${KERNEL_PACKAGE_NAME} = ""
