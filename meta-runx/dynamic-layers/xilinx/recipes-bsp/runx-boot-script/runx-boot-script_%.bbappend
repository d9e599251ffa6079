# The ZCU102 (meta-xilinx-tools' zcu102-zynqmp machine): boot.scr for the SD card's boot
# partition, with the board's device tree (system.dtb from meta-xilinx's device-tree recipe).
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"

COMPATIBLE_MACHINE:zcu102-zynqmp = "zcu102-zynqmp"
RUNX_BOOT_CONFIG:zcu102-zynqmp = "zcu102-zynqmp.toml"
RUNX_BOOT_DTB:zcu102-zynqmp = "${DEPLOY_DIR_IMAGE}/system.dtb"
RUNX_BOOT_DEPENDS:append:zcu102-zynqmp = " virtual/dtb:do_deploy"
