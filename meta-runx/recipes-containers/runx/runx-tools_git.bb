SUMMARY = "runx-tools: u-boot boot scripts, xl configs and guest images for Xen boards"
DESCRIPTION = "Generates boot.scr for Xen, dom0 and dom0less guests from a short board \
               description, xl.cfg files, and the initramfs images runx guests boot with."
SECTION = "devel"

require runx-source.inc

inherit cargo

CARGO_SRC_DIR = "tools"

do_install() {
    install -d ${D}${bindir}
    install -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/runx-tools ${D}${bindir}/runx-tools
}

BBCLASSEXTEND = "native nativesdk"
