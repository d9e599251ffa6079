SUMMARY = "containerd runtime handler for runx"
DESCRIPTION = "Registers runx with containerd's CRI plugin as the runtime handler runx (a \
               Kubernetes RuntimeClass handler) in the drop-in /etc/containerd/conf.d/runx.toml. \
               containerd 2.0 reads drop-ins only when its main config imports them, and \
               meta-virtualization ships no /etc/containerd/config.toml: the -imports package \
               provides one that does."
HOMEPAGE = "https://github.com/runx-project/runx"
BUGTRACKER = "https://github.com/runx-project/runx/issues"
SECTION = "containers"
LICENSE = "Apache-2.0"
# Only this layer's own files: no upstream license file to point at.
# nooelint: oelint.var.licenseremotefile
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/Apache-2.0;md5=89aea4e17d99a7cacdbeed46a0096b10"

SRC_URI = "file://config.toml file://runx.toml"

S = "${WORKDIR}"

inherit allarch features_check

# runx, which the handler runs, needs Xen.
REQUIRED_DISTRO_FEATURES = "xen"

do_install() {
    install -d ${D}${sysconfdir}/containerd/conf.d
    install -m 0644 ${S}/config.toml ${D}${sysconfdir}/containerd/config.toml
    install -m 0644 ${S}/runx.toml ${D}${sysconfdir}/containerd/conf.d/runx.toml
}

PACKAGES =+ "${PN}-imports"

FILES:${PN}-imports += "${sysconfdir}/containerd/config.toml"

# An image with its own /etc/containerd/config.toml adds the imports line to it and leaves
# out the -imports package (BAD_RECOMMENDATIONS).
RDEPENDS:${PN} = "runx virtual-containerd"
RRECOMMENDS:${PN} = "${PN}-imports"

CONFFILES:${PN} = "${sysconfdir}/containerd/conf.d/runx.toml"
CONFFILES:${PN}-imports = "${sysconfdir}/containerd/config.toml"
