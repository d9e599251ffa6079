SUMMARY = "The base initramfs of runx guests: runx-init as /init"
DESCRIPTION = "runx-init, the PID 1 of every runx guest, linked statically and packed by \
               runx-tools as an uncompressed cpio archive at /usr/lib/runx/initramfs.cpio. runx \
               appends each container's archive to it when it starts the guest."
SECTION = "containers"

require runx-source.inc

DEPENDS += "runx-tools-native"

inherit cargo features_check

REQUIRED_DISTRO_FEATURES = "xen"

CARGO_SRC_DIR = "runx/init"

# runx-init runs alone in the guest: it must be static (runx-static.inc). It builds with the
# workspace's `guest` profile (optimized for size, panic = "abort", stripped by cargo: the binary
# is only packed into the cpio archive, never installed as a file).
require runx-static.inc
BUILD_MODE = "--profile guest"
BUILD_DIR = "guest"

do_compile:append() {
    init=${B}/target/${CARGO_TARGET_SUBDIR}/runx-init
    runx_check_static $init
    # Uncompressed on purpose: Xen's PV domain builder keeps only the first gzip member of a
    # ramdisk, which would drop the container archive runx appends (docs/guest.md).
    runx-tools guest-base --runx-init $init --output ${B}/initramfs.cpio
}

do_install() {
    install -d ${D}${nonarch_libdir}/runx
    install -m 0644 ${B}/initramfs.cpio ${D}${nonarch_libdir}/runx/initramfs.cpio
}

FILES:${PN} += "${nonarch_libdir}/runx/initramfs.cpio"
