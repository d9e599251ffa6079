SUMMARY = "The base initramfs of runx guests: runx-init as /init"
DESCRIPTION = "runx-init, the PID 1 of every runx guest, linked statically and packed by \
               runx-tools as an uncompressed cpio archive at /usr/lib/runx/initramfs.cpio. runx \
               appends each container's archive to it when it starts the guest."
SECTION = "containers"

require runx-source.inc

DEPENDS += "runx-tools-native"

SRC_URI += "file://runx-static-link"

inherit cargo features_check

REQUIRED_DISTRO_FEATURES = "xen"

CARGO_SRC_DIR = "runx/init"

# runx-init runs alone in the guest: it must be static. oe-core's Rust target specification does
# not honour -C target-feature=+crt-static, so link through a wrapper that links glibc, libgcc and
# libgcc_eh statically (do_compile checks the result). The binary is only packed into the cpio
# archive, never installed as a file, so let cargo strip it.
CARGO_RUST_TARGET_CCLD = "${WORKDIR}/runx-static-ccld"
export CARGO_PROFILE_RELEASE_STRIP = "true"

do_configure:append() {
    printf '#!/bin/sh\nexec %s %s "$@"\n' "${WORKDIR}/runx-static-link" "${RUST_TARGET_CCLD}" > ${WORKDIR}/runx-static-ccld
    chmod 0755 ${WORKDIR}/runx-static-link ${WORKDIR}/runx-static-ccld
}

do_compile:append() {
    init=${B}/target/${CARGO_TARGET_SUBDIR}/runx-init
    if ${READELF} -l $init | grep -q -e INTERP -e DYNAMIC; then
        bbfatal "runx-init is dynamically linked: it must run with nothing else in the guest"
    fi
    # Uncompressed on purpose: Xen's PV domain builder keeps only the first gzip member of a
    # ramdisk, which would drop the container archive runx appends (docs/guest.md).
    runx-tools guest-base --runx-init $init --output ${B}/initramfs.cpio
}

do_install() {
    install -d ${D}${nonarch_libdir}/runx
    install -m 0644 ${B}/initramfs.cpio ${D}${nonarch_libdir}/runx/initramfs.cpio
}

FILES:${PN} += "${nonarch_libdir}/runx/initramfs.cpio"
