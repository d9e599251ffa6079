SUMMARY = "runx: an OCI runtime that runs each container as its own Xen guest"
DESCRIPTION = "A runc-compatible OCI runtime for containerd and CRI. Each container runs in a \
               small Xen guest started through the xl toolstack: a small Linux kernel, the \
               runx-init PID 1 and the container's root. Replaces meta-virtualization's RunX v1.0."
SECTION = "containers"

require runx-source.inc

# `IMAGE_INSTALL:append = " runx"` installs this recipe's package: see RPROVIDES below.
PROVIDES += "runx"

SRC_URI += "file://config.toml"

inherit cargo cargo-update-recipe-crates features_check

# Without Xen there is nothing to run guests on.
REQUIRED_DISTRO_FEATURES = "xen"

CARGO_SRC_DIR = "runx"

# Static and not position-independent, as the lab and the benchmarks run it (runx-static.inc).
require runx-static.inc

do_compile:append() {
    runx_check_static ${B}/target/${CARGO_TARGET_SUBDIR}/runx
}

do_install() {
    install -d ${D}${sbindir} ${D}${sysconfdir}/runx
    install -m 0755 ${B}/target/${CARGO_TARGET_SUBDIR}/runx ${D}${sbindir}/runx
    install -m 0644 ${WORKDIR}/config.toml ${D}${sysconfdir}/runx/config.toml
}

# The guest kernel and initramfs are the runtime's defaults (/usr/lib/runx/kernel and
# /usr/lib/runx/initramfs.cpio); xl starts the guests; mkfs.ext4 builds disk-mode roots, which
# xl hands to blkback through Xen's block hotplug script and a loop device (docs/runtime.md).
RDEPENDS:${PN} = "runx-guest-initramfs runx-guest-kernel xen-tools-xl"
# Disk roots: mke2fs, and Xen's block script with what it runs. Containers on the engine's
# network (docs/network.md): the CNI plugins (meta-virtualization's cni), and the kernel's
# netback, bridge, veth and the tc pieces runx's redirects use. runx speaks netlink itself: no
# iproute2 or tc binary, and no Xen network hotplug scripts (its vifs run /bin/true).
RRECOMMENDS:${PN} = "e2fsprogs-mke2fs xen-tools-scripts-block util-linux-losetup util-linux-flock \
                     cni kernel-module-xen-netback kernel-module-bridge kernel-module-veth \
                     kernel-module-sch-ingress kernel-module-cls-u32 kernel-module-act-mirred"
# meta-virtualization's own recipe named runx (RunX v1.0) needs the vmsep distro feature and is
# skipped otherwise; a distro that enables vmsep picks this one with
# PREFERRED_RPROVIDER_runx = "runx-oci" (docs/yocto.md).
RPROVIDES:${PN} = "runx"

CONFFILES:${PN} = "${sysconfdir}/runx/config.toml"
