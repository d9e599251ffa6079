//! The images a boot config names, in load order: whose each one is, which
//! file kinds its slot accepts, and the checks that each file is one.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::board::Board;
use super::config::{BootCommand, BootConfig, DomU};
use super::probe::{self, Kind};
use super::BootError;

/// Which file kinds an image slot accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Xen, in the form the boot command starts.
    Xen(BootCommand),
    Kernel,
    GuestKernel,
    Ramdisk,
    DeviceTree,
}

impl Slot {
    fn accepts(self, kind: Kind) -> bool {
        let arm64_kernel_uimage =
            matches!(kind, Kind::UImage { arch: probe::UIMAGE_ARCH_ARM64, image_type: probe::UIMAGE_TYPE_KERNEL, .. });
        match self {
            Slot::Xen(BootCommand::Booti) => kind == Kind::Arm64Image,
            Slot::Xen(BootCommand::Bootm) => arm64_kernel_uimage,
            Slot::Kernel => kind == Kind::Arm64Image || kind == Kind::Compressed("gzip") || arm64_kernel_uimage,
            Slot::GuestKernel => {
                matches!(kind, Kind::Arm64Image | Kind::Arm32ZImage | Kind::Compressed("gzip")) || arm64_kernel_uimage
            }
            Slot::Ramdisk => matches!(kind, Kind::Compressed(_) | Kind::Cpio),
            Slot::DeviceTree => kind == Kind::DeviceTree,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Slot::Xen(BootCommand::Booti) => {
                "booti needs Xen as an arm64 Image (or set boot = \"bootm\" for a xen.ub uImage)"
            }
            Slot::Xen(BootCommand::Bootm) => "bootm needs Xen as an AArch64 kernel uImage: mkimage -A arm64 -T kernel (an ARM-typed xen.ub hangs the board)",
            Slot::Kernel => "an arm64 board needs an arm64 Image, Image.gz or AArch64 kernel uImage",
            Slot::GuestKernel => "a guest kernel must be an arm64 Image, Image.gz, 32-bit ARM zImage or AArch64 kernel uImage",
            Slot::Ramdisk => "a ramdisk must be a cpio archive, plain or gzip/zstd/xz/lz4-compressed",
            Slot::DeviceTree => "a device tree blob (.dtb) is needed here",
        }
    }
}

/// Whose image it is, which decides where the device tree describes it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// Xen itself and the board's device tree, which Xen reads.
    Xen,
    Dom0,
    /// The dom0less guest at this index of the config's `domu` list.
    DomU(usize),
}

pub(super) struct Input {
    /// What the image is for, e.g. "dom0 kernel", in messages and comments.
    pub role: String,
    pub path: PathBuf,
    pub owner: Owner,
    pub slot: Slot,
    pub pinned: Option<u64>,
}

impl Input {
    fn new(role: impl Into<String>, path: PathBuf, owner: Owner, slot: Slot) -> Self {
        Self { role: role.into(), path, owner, slot, pinned: None }
    }
}

/// The index of `owner`'s image in `slot`, if the config has one.
pub(super) fn find(inputs: &[Input], owner: Owner, slot: Slot) -> Option<usize> {
    inputs.iter().position(|i| i.owner == owner && i.slot == slot)
}

/// Every image `config` names, paths resolved against `base`: the device tree, Xen, dom0's,
/// then each dom0less guest's.
pub(super) fn inputs(config: &BootConfig, board: &Board, base: &Path) -> Result<Vec<Input>, BootError> {
    let mut inputs = Vec::new();
    inputs.extend(device_tree(config, board, base)?);
    inputs.push(xen(config, base));
    inputs.extend(dom0(config, base));
    for (index, domu) in config.domu.iter().enumerate() {
        check_domu(config, domu)?;
        inputs.extend(domu_images(index, domu, base));
    }
    Ok(inputs)
}

fn device_tree(config: &BootConfig, board: &Board, base: &Path) -> Result<Option<Input>, BootError> {
    match (&config.devicetree.file, board.devicetree.live) {
        (Some(file), _) => Ok(Some(Input::new("device tree", base.join(file), Owner::Xen, Slot::DeviceTree))),
        (None, true) => Ok(None),
        (None, false) => Err(BootError::Invalid(format!(
            "board {} has no device tree of its own in RAM: set [devicetree] file = \"system.dtb\"",
            board.name
        ))),
    }
}

fn xen(config: &BootConfig, base: &Path) -> Input {
    Input {
        pinned: config.xen.address,
        ..Input::new("xen", base.join(&config.xen.image), Owner::Xen, Slot::Xen(config.boot))
    }
}

fn dom0(config: &BootConfig, base: &Path) -> Vec<Input> {
    let kernel = Input::new("dom0 kernel", base.join(&config.dom0.kernel), Owner::Dom0, Slot::Kernel);
    let ramdisk =
        config.dom0.ramdisk.as_ref().map(|r| Input::new("dom0 ramdisk", base.join(r), Owner::Dom0, Slot::Ramdisk));
    [Some(kernel), ramdisk].into_iter().flatten().collect()
}

fn check_domu(config: &BootConfig, domu: &DomU) -> Result<(), BootError> {
    if !node_name_ok(&domu.name) {
        return Err(BootError::Invalid(format!(
            "domU name {:?} must be 1-31 letters, digits, '-' or '_' (it names a device-tree node)",
            domu.name
        )));
    }
    if config.domu.iter().filter(|d| d.name == domu.name).count() > 1 {
        return Err(BootError::Invalid(format!("two domUs are named {:?}: names must be unique", domu.name)));
    }
    if domu.memory_mib == 0 || domu.vcpus == 0 {
        return Err(BootError::Invalid(format!("domU {}: memory_mib and vcpus must be at least 1", domu.name)));
    }
    Ok(())
}

fn node_name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= 31 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A guest's kernel, then its ramdisk and passthrough tree when it has them.
fn domu_images(index: usize, domu: &DomU, base: &Path) -> Vec<Input> {
    let image = |what: &str, path: &Path, slot| {
        Input::new(format!("domU {} {what}", domu.name), base.join(path), Owner::DomU(index), slot)
    };
    let kernel = image("kernel", &domu.kernel, Slot::GuestKernel);
    let ramdisk = domu.ramdisk.as_deref().map(|r| image("ramdisk", r, Slot::Ramdisk));
    let dtb = domu.passthrough_dtb.as_deref().map(|d| image("passthrough dtb", d, Slot::DeviceTree));
    [Some(kernel), ramdisk, dtb].into_iter().flatten().collect()
}

/// What a file turned out to be.
pub(super) struct Probed {
    pub size: u64,
    pub kind: Kind,
}

/// Sizes `input`'s file and checks that its slot accepts it.
pub(super) fn probe(input: &Input) -> Result<Probed, BootError> {
    let read_err = |source| BootError::Read { path: input.path.clone(), source };
    let meta = match fs::metadata(&input.path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(BootError::MissingFile { role: input.role.clone(), path: input.path.clone() })
        }
        Err(e) => return Err(read_err(e)),
    };
    let mut head = Vec::with_capacity(4096);
    fs::File::open(&input.path).and_then(|f| f.take(4096).read_to_end(&mut head)).map_err(read_err)?;
    let kind = probe::identify(&head);
    if kind == Kind::X86Kernel {
        return Err(BootError::WrongType {
            role: input.role.clone(),
            path: input.path.clone(),
            found: kind,
            expected: "this board is arm64: build the kernel for arm64".to_owned(),
        });
    }
    if !input.slot.accepts(kind) {
        return Err(BootError::WrongType {
            role: input.role.clone(),
            path: input.path.clone(),
            found: kind,
            expected: input.slot.expected().to_owned(),
        });
    }
    Ok(Probed { size: meta.len(), kind })
}

/// Each input's name on the boot medium (`prefix` + file name); two different files may not share one.
pub(super) fn medium_names(inputs: &[Input], prefix: &str) -> Result<Vec<String>, BootError> {
    let mut names: Vec<String> = Vec::new();
    for input in inputs {
        let file_name = input.path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            BootError::Invalid(format!("{} {}: the file name must be UTF-8", input.role, input.path.display()))
        })?;
        let name = format!("{prefix}{file_name}");
        let clash = inputs.iter().zip(&names).find(|(other, n)| **n == name && other.path != input.path);
        if let Some((other, _)) = clash {
            return Err(BootError::Invalid(format!(
                "{} {} and {} {} have the same file name on the boot medium: rename one",
                other.role,
                other.path.display(),
                input.role,
                input.path.display()
            )));
        }
        names.push(name);
    }
    Ok(names)
}
