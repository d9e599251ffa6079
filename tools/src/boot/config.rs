//! The boot config a user writes: which board, how images get into RAM, and
//! which images make up Xen, dom0 and any dom0less guests.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How u-boot brings the images into RAM.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// `tftpb` from the TFTP server u-boot's network setup names.
    Tftp,
    /// `load mmc ...` from an SD card or eMMC partition.
    Mmc,
    Usb,
    Virtio,
    Scsi,
    /// Already in RAM (JTAG, a previous stage): the script only describes them.
    Preloaded,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Tftp => "tftp",
            Method::Mmc => "mmc",
            Method::Usb => "usb",
            Method::Virtio => "virtio",
            Method::Scsi => "scsi",
            Method::Preloaded => "preloaded",
        }
    }
}

/// How u-boot starts Xen.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BootCommand {
    /// `booti`: Xen as an arm64 Image (Debian's `xen-4.17-arm64`, Yocto's `xen`).
    #[default]
    Booti,
    /// `bootm`: Xen wrapped as an AArch64 kernel uImage (`xen.ub`).
    Bootm,
}

impl BootCommand {
    /// The u-boot command itself.
    pub fn name(self) -> &'static str {
        match self {
            BootCommand::Booti => "booti",
            BootCommand::Bootm => "bootm",
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Load {
    pub method: Method,
    /// For block devices: `DEV:PART`; defaults to u-boot distro boot's `${devnum}:${distro_bootpart}`.
    pub device: Option<String>,
    /// A folder prefix on the medium or TFTP server, e.g. `zcu102/`.
    #[serde(default)]
    pub prefix: String,
}

/// One image file; `address` pins it, otherwise the layout chooses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Xen {
    pub image: PathBuf,
    pub address: Option<u64>,
    /// Appended to the board's Xen arguments.
    #[serde(default)]
    pub bootargs: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Dom0 {
    pub kernel: PathBuf,
    pub ramdisk: Option<PathBuf>,
    /// Appended to the board's dom0 arguments.
    #[serde(default)]
    pub bootargs: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceTree {
    /// A device tree blob to load; boards with a live tree use theirs when this is absent.
    pub file: Option<PathBuf>,
}

/// A guest Xen starts at boot from device-tree nodes alone (dom0less).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DomU {
    pub name: String,
    pub kernel: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramdisk: Option<PathBuf>,
    /// A partial device tree with the devices passed through to this guest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough_dtb: Option<PathBuf>,
    pub memory_mib: u64,
    #[serde(default = "one")]
    pub vcpus: u32,
    /// A virtual PL011 UART, so the guest prints on Xen's console.
    #[serde(default)]
    pub vpl011: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bootargs: String,
}

fn one() -> u32 {
    1
}

impl DomU {
    /// This guest as a `[[domu]]` block of a boot config.
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct Block<'a> {
            domu: [&'a DomU; 1],
        }
        toml::to_string(&Block { domu: [self] }).expect("a DomU always serializes")
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BootConfig {
    /// A built-in board name, or the path of a board file (`*.toml`).
    pub board: String,
    pub load: Load,
    #[serde(default)]
    pub boot: BootCommand,
    /// Add the board's real-time Xen arguments.
    #[serde(default)]
    pub realtime: bool,
    pub xen: Xen,
    pub dom0: Dom0,
    #[serde(default)]
    pub devicetree: DeviceTree,
    #[serde(default)]
    pub domu: Vec<DomU>,
}
