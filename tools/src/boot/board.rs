//! Board profiles: data files (`tools/boards/*.toml`) that say where RAM is,
//! where boot.scr may load images, and the board's Xen and dom0 arguments.
//! A BSP vendor adds a board by writing one such file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::BootError;

const BUILTIN: &[(&str, &str)] = &[
    ("zcu102", include_str!("../../boards/zcu102.toml")),
    ("qemu-arm64", include_str!("../../boards/qemu-arm64.toml")),
];

/// A range of physical addresses, `[base, base + size)`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Region {
    pub base: u64,
    pub size: u64,
}

impl Region {
    pub fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// Where boot.scr may place images.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LoadWindow {
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceTreeSource {
    /// The firmware hands over a tree at `${fdt_addr}` (QEMU); otherwise the script loads a file.
    pub live: bool,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct XenArgs {
    pub bootargs: String,
    /// Added when the boot config asks for real-time settings.
    pub rt_bootargs: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Dom0Args {
    pub bootargs: String,
}

/// A device an admin may assign to a guest, in xl's terms.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Passthrough {
    pub description: String,
    /// xl `iomem` entries: `MFN,NR_PAGES[@GFN]`, hexadecimal.
    pub iomem: Vec<String>,
    pub irqs: Vec<u32>,
    /// The device's path in the host tree, for `dtdev` when it sits behind an IOMMU.
    pub dtdev: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub description: String,
    pub arch: String,
    pub memory: Vec<Region>,
    pub load: LoadWindow,
    pub devicetree: DeviceTreeSource,
    pub xen: XenArgs,
    pub dom0: Dom0Args,
    #[serde(default)]
    pub passthrough: BTreeMap<String, Passthrough>,
}

impl Board {
    /// The names of the boards that ship with runx-tools.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(name, _)| *name).collect()
    }

    /// A built-in board by name, or a board file when `name_or_path` names one.
    pub fn load(name_or_path: &str, relative_to: &Path) -> Result<Self, BootError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(name, _)| *name == name_or_path) {
            return Self::parse(text, name_or_path);
        }
        if name_or_path.ends_with(".toml") {
            let path = relative_to.join(name_or_path);
            let text =
                std::fs::read_to_string(&path).map_err(|source| BootError::Read { path: path.clone(), source })?;
            return Self::parse(&text, &path.display().to_string());
        }
        Err(BootError::UnknownBoard { name: name_or_path.to_owned(), known: Self::builtin_names().join(", ") })
    }

    fn parse(text: &str, origin: &str) -> Result<Self, BootError> {
        let board: Board =
            toml::from_str(text).map_err(|e| BootError::BadBoard { origin: origin.to_owned(), why: e.to_string() })?;
        board.validate(origin)?;
        Ok(board)
    }

    fn validate(&self, origin: &str) -> Result<(), BootError> {
        let bad = |why: String| BootError::BadBoard { origin: origin.to_owned(), why };
        if self.arch != "arm64" {
            return Err(bad(format!("arch {:?} is not supported: boot.scr for Xen is generated for arm64", self.arch)));
        }
        if self.load.start >= self.load.end {
            return Err(bad("the load window is empty: start must be below end".to_owned()));
        }
        let inside = self.memory.iter().any(|bank| bank.base <= self.load.start && self.load.end <= bank.end());
        if !inside {
            return Err(bad(format!(
                "the load window {:#x}..{:#x} is not inside one memory bank",
                self.load.start, self.load.end
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_boards_parse_and_describe_their_ram() {
        let zcu = Board::load("zcu102", Path::new(".")).unwrap();
        assert_eq!(
            zcu.memory,
            [Region { base: 0, size: 0x8000_0000 }, Region { base: 0x8_0000_0000, size: 0x8000_0000 }]
        );
        assert!(zcu.xen.bootargs.contains("dtuart=serial0"));
        assert!(zcu.dom0.bootargs.contains("clk_ignore_unused"));
        assert_eq!(zcu.passthrough["ttc0"].irqs, [68, 69, 70]);
        let qemu = Board::load("qemu-arm64", Path::new(".")).unwrap();
        assert!(qemu.devicetree.live);
        assert!(qemu.xen.bootargs.contains("dtuart=/pl011@9000000"));
    }

    #[test]
    fn unknown_boards_list_the_known_ones() {
        let err = Board::load("rpi5", Path::new(".")).unwrap_err().to_string();
        assert!(err.contains("rpi5") && err.contains("zcu102, qemu-arm64"), "{err}");
    }

    #[test]
    fn refuses_a_load_window_outside_ram() {
        let text = include_str!("../../boards/qemu-arm64.toml").replace("end = 0xb800_0000", "end = 0xd000_0000");
        let err = Board::parse(&text, "test").unwrap_err().to_string();
        assert!(err.contains("not inside one memory bank"), "{err}");
    }
}
