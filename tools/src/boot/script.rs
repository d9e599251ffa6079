//! Turns a boot config into u-boot commands: probe and size every image,
//! lay them out, and describe Xen's modules in /chosen.

use std::fmt::Write;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::board::Board;
use super::config::{BootCommand, BootConfig, Method};
use super::layout::{self, Claim, Request};
use super::probe::{self, Kind};
use super::BootError;

/// One image as the script loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedImage {
    pub role: String,
    /// The file's path on the host.
    pub path: PathBuf,
    /// Its name on the boot medium (prefix + file name).
    pub medium_name: String,
    pub address: u64,
    pub size: u64,
}

/// The generated commands and what they load where.
#[derive(Debug, Clone)]
pub struct Generated {
    pub board: Board,
    pub commands: String,
    pub images: Vec<PlacedImage>,
    /// Things the user should know (e.g. a real-time option the Xen build cannot honour).
    pub notes: Vec<String>,
}

/// Which file kinds an image slot accepts.
#[derive(Clone, Copy)]
enum Slot {
    XenImage,
    XenUImage,
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
            Slot::XenImage => kind == Kind::Arm64Image,
            Slot::XenUImage => arm64_kernel_uimage,
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
            Slot::XenImage => "booti needs Xen as an arm64 Image (or set boot = \"bootm\" for a xen.ub uImage)",
            Slot::XenUImage => "bootm needs Xen as an AArch64 kernel uImage: mkimage -A arm64 -T kernel (an ARM-typed xen.ub hangs the board)",
            Slot::Kernel => "an arm64 board needs an arm64 Image, Image.gz or AArch64 kernel uImage",
            Slot::GuestKernel => "a guest kernel must be an arm64 Image, Image.gz, 32-bit ARM zImage or AArch64 kernel uImage",
            Slot::Ramdisk => "a ramdisk must be a cpio archive, plain or gzip/zstd/xz/lz4-compressed",
            Slot::DeviceTree => "a device tree blob (.dtb) is needed here",
        }
    }
}

struct Input {
    role: String,
    path: PathBuf,
    slot: Slot,
    pinned: Option<u64>,
}

struct Probed {
    size: u64,
    kind: Kind,
}

fn probe_file(input: &Input) -> Result<Probed, BootError> {
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

/// Quotes a value for u-boot's hush shell inside double quotes.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn join_args(parts: &[&str]) -> String {
    parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
}

fn reg(address: u64, size: u64) -> String {
    format!("<{:#x} {:#x} {:#x} {:#x}>", address >> 32, address & 0xffff_ffff, size >> 32, size & 0xffff_ffff)
}

/// The scheduler a real-time setup should ask for, if this Xen build has one.
fn realtime_scheduler(xen: &Path) -> Result<Option<&'static str>, BootError> {
    let bytes = fs::read(xen).map_err(|source| BootError::Read { path: xen.to_owned(), source })?;
    let has = |name: &[u8]| bytes.windows(name.len()).any(|w| w == name);
    Ok(if has(b"null Scheduler") {
        Some("sched=null")
    } else if has(b"SMP RTDS Scheduler") {
        Some("sched=rtds")
    } else {
        None
    })
}

fn node_name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= 31 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Generates the commands for `config`; image paths are relative to `base`.
pub fn generate(config: &BootConfig, base: &Path) -> Result<Generated, BootError> {
    let board = Board::load(&config.board, base)?;
    let path = |p: &Path| base.join(p);
    let mut notes = Vec::new();

    let mut inputs = Vec::new();
    let dtb_file = config.devicetree.file.as_deref().map(path);
    match (&dtb_file, board.devicetree.live) {
        (Some(file), _) => {
            inputs.push(Input { role: "device tree".into(), path: file.clone(), slot: Slot::DeviceTree, pinned: None })
        }
        (None, true) => {}
        (None, false) => {
            return Err(BootError::Invalid(format!(
                "board {} has no device tree of its own in RAM: set [devicetree] file = \"system.dtb\"",
                board.name
            )))
        }
    }
    let xen_slot = match config.boot {
        BootCommand::Booti => Slot::XenImage,
        BootCommand::Bootm => Slot::XenUImage,
    };
    inputs.push(Input {
        role: "xen".into(),
        path: path(&config.xen.image),
        slot: xen_slot,
        pinned: config.xen.address,
    });
    inputs.push(Input {
        role: "dom0 kernel".into(),
        path: path(&config.dom0.kernel),
        slot: Slot::Kernel,
        pinned: None,
    });
    if let Some(ramdisk) = &config.dom0.ramdisk {
        inputs.push(Input { role: "dom0 ramdisk".into(), path: path(ramdisk), slot: Slot::Ramdisk, pinned: None });
    }
    for domu in &config.domu {
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
        let role = |what: &str| format!("domU {} {what}", domu.name);
        inputs.push(Input { role: role("kernel"), path: path(&domu.kernel), slot: Slot::GuestKernel, pinned: None });
        if let Some(ramdisk) = &domu.ramdisk {
            inputs.push(Input { role: role("ramdisk"), path: path(ramdisk), slot: Slot::Ramdisk, pinned: None });
        }
        if let Some(dtb) = &domu.passthrough_dtb {
            inputs.push(Input { role: role("passthrough dtb"), path: path(dtb), slot: Slot::DeviceTree, pinned: None });
        }
    }
    let probed: Vec<Probed> = inputs.iter().map(probe_file).collect::<Result<_, _>>()?;

    let mut medium_names: Vec<String> = Vec::new();
    for input in &inputs {
        let file_name = input.path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            BootError::Invalid(format!("{} {}: the file name must be UTF-8", input.role, input.path.display()))
        })?;
        let name = format!("{}{file_name}", config.load.prefix);
        let clash = inputs.iter().zip(&medium_names).find(|(other, n)| **n == name && other.path != input.path);
        if let Some((other, _)) = clash {
            return Err(BootError::Invalid(format!(
                "{} {} and {} {} have the same file name on the boot medium: rename one",
                other.role,
                other.path.display(),
                input.role,
                input.path.display()
            )));
        }
        medium_names.push(name);
    }

    let mut xen_args = board.xen.bootargs.clone();
    if config.realtime {
        xen_args = join_args(&[&xen_args, &board.xen.rt_bootargs]);
        match realtime_scheduler(&path(&config.xen.image))? {
            Some(sched) => xen_args = join_args(&[&xen_args, sched]),
            None => notes.push(
                "this Xen build has neither the null nor the RTDS scheduler: no sched= option added (build Xen with CONFIG_SCHED_NULL for real-time pinning)"
                    .to_owned(),
            ),
        }
    }
    let xen_args = join_args(&[&xen_args, &config.xen.bootargs]);
    let dom0_args = join_args(&[&board.dom0.bootargs, &config.dom0.bootargs]);

    // The device-tree edits, first with placeholder addresses to size `fdt resize`.
    let fdt_edits = |addresses: &[u64]| chosen_commands(config, &inputs, &probed, addresses, &xen_args, &dom0_args);
    let fdt_growth = {
        let text = fdt_edits(&vec![u64::MAX; inputs.len()]);
        // Every byte of a property name or value lands in the blob at most once, plus
        // 12 bytes of structure per property: twice the text is a safe bound.
        (2 * text.len() as u64 + 1024).div_ceil(4096) * 4096
    };

    let requests: Vec<Request> = inputs
        .iter()
        .zip(&probed)
        .map(|(input, p)| {
            let growth = if input.role == "device tree" { fdt_growth } else { 0 };
            Request { role: input.role.clone(), span: p.size + growth, pinned: input.pinned }
        })
        .collect();
    let mut claims = Vec::new();
    let xen_index = inputs.iter().position(|i| i.role == "xen").expect("xen is always an input");
    if let Kind::UImage { load, size, .. } = probed[xen_index].kind {
        let (start, end) = (u64::from(load), u64::from(load) + u64::from(size));
        if !board.memory.iter().any(|bank| bank.base <= start && end <= bank.end()) {
            return Err(BootError::Invalid(format!(
                "xen {} asks bootm to copy it to {start:#x}..{end:#x}, outside the board's RAM: rebuild it with mkimage -a inside RAM",
                path(&config.xen.image).display()
            )));
        }
        claims.push(Claim { role: "the copy of xen that bootm makes".into(), start, end });
    }
    let addresses = layout::place(&requests, board.load, &claims)?;

    let images: Vec<PlacedImage> = inputs
        .iter()
        .zip(&probed)
        .zip(&addresses)
        .zip(&medium_names)
        .map(|(((input, p), &address), name)| PlacedImage {
            role: input.role.clone(),
            path: input.path.clone(),
            medium_name: name.clone(),
            address,
            size: p.size,
        })
        .collect();

    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(
        w,
        "# boot.cmd for {} ({}), generated by runx-tools {}: edit the boot config, not this file.",
        board.name,
        board.description,
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        w,
        "# load: {}, boot: {}, realtime: {}",
        config.load.method.name(),
        match config.boot {
            BootCommand::Booti => "booti",
            BootCommand::Bootm => "bootm",
        },
        if config.realtime { "yes" } else { "no" }
    );
    for image in &images {
        let _ = writeln!(
            w,
            "# {:#010x}..{:#010x} {} ({})",
            image.address,
            image.address + image.size,
            image.role,
            image.medium_name
        );
    }
    for note in &notes {
        let _ = writeln!(w, "# note: {note}");
    }
    for image in &images {
        let _ = match config.load.method {
            Method::Tftp => writeln!(w, "tftpb {:#x} {}", image.address, image.medium_name),
            Method::Preloaded => writeln!(w, "# preloaded: {} at {:#x}", image.medium_name, image.address),
            method => {
                let device = config.load.device.as_deref().unwrap_or("${devnum}:${distro_bootpart}");
                writeln!(w, "load {} {device} {:#x} {}", method.name(), image.address, image.medium_name)
            }
        };
    }
    let fdt = match &dtb_file {
        Some(_) => format!("{:#x}", addresses[0]),
        None => "${fdt_addr}".to_owned(),
    };
    let _ = writeln!(w, "fdt addr {fdt}");
    let _ = writeln!(w, "fdt resize {fdt_growth:#x}");
    w.push_str(&fdt_edits(&addresses));
    let boot = match config.boot {
        BootCommand::Booti => "booti",
        BootCommand::Bootm => "bootm",
    };
    let _ = writeln!(w, "{boot} {:#x} - {fdt}", addresses[xen_index]);
    Ok(Generated { board, commands: out, images, notes })
}

const LINUX_KERNEL: &str = "\"xen,linux-zimage\" \"xen,multiboot-module\" \"multiboot,module\"";
const LINUX_INITRD: &str = "\"xen,linux-initrd\" \"xen,multiboot-module\" \"multiboot,module\"";
const DOMU_KERNEL: &str = "\"multiboot,kernel\" \"multiboot,module\"";
const DOMU_RAMDISK: &str = "\"multiboot,ramdisk\" \"multiboot,module\"";
const DOMU_DTB: &str = "\"multiboot,device-tree\" \"multiboot,module\"";

/// A module node: where Xen finds one image.
fn write_module(w: &mut String, parent: &str, name: &str, compatible: &str, (address, size): (u64, u64)) {
    let _ = writeln!(w, "fdt mknod {parent} {name}");
    let _ = writeln!(w, "fdt set {parent}/{name} compatible {compatible}");
    let _ = writeln!(w, "fdt set {parent}/{name} reg {}", reg(address, size));
}

/// The `fdt` commands that describe Xen's arguments and modules in /chosen.
fn chosen_commands(
    config: &BootConfig,
    inputs: &[Input],
    probed: &[Probed],
    addresses: &[u64],
    xen_args: &str,
    dom0_args: &str,
) -> String {
    let find = |role: &str| inputs.iter().position(|i| i.role == role).map(|i| (addresses[i], probed[i].size));
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "fdt set /chosen \\#address-cells <0x2>");
    let _ = writeln!(w, "fdt set /chosen \\#size-cells <0x2>");
    let _ = writeln!(w, "fdt set /chosen xen,xen-bootargs {}", quote(xen_args));
    let _ = writeln!(w, "fdt set /chosen xen,dom0-bootargs {}", quote(dom0_args));
    write_module(w, "/chosen", "dom0", LINUX_KERNEL, find("dom0 kernel").expect("dom0 kernel is always an input"));
    if let Some(ramdisk) = find("dom0 ramdisk") {
        write_module(w, "/chosen", "dom0-ramdisk", LINUX_INITRD, ramdisk);
    }
    for domu in &config.domu {
        let node = format!("/chosen/{}", domu.name);
        let _ = writeln!(w, "fdt mknod /chosen {}", domu.name);
        let _ = writeln!(w, "fdt set {node} compatible \"xen,domain\"");
        let _ = writeln!(w, "fdt set {node} \\#address-cells <0x2>");
        let _ = writeln!(w, "fdt set {node} \\#size-cells <0x2>");
        let kib = domu.memory_mib * 1024;
        let _ = writeln!(w, "fdt set {node} memory <{:#x} {:#x}>", kib >> 32, kib & 0xffff_ffff);
        let _ = writeln!(w, "fdt set {node} cpus <{:#x}>", domu.vcpus);
        if domu.vpl011 {
            let _ = writeln!(w, "fdt set {node} vpl011");
        }
        for (what, compatible) in [("kernel", DOMU_KERNEL), ("ramdisk", DOMU_RAMDISK), ("passthrough dtb", DOMU_DTB)] {
            if let Some((address, size)) = find(&format!("domU {} {what}", domu.name)) {
                let name = format!("module@{address:x}");
                write_module(w, &node, &name, compatible, (address, size));
                if what == "kernel" && !domu.bootargs.is_empty() {
                    let _ = writeln!(w, "fdt set {node}/{name} bootargs {}", quote(&domu.bootargs));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_hush() {
        assert_eq!(quote(r#"a "b" $x \y"#), r#""a \"b\" \$x \\y""#);
    }

    #[test]
    fn reg_splits_64_bit_values_into_cells() {
        assert_eq!(reg(0x8_0020_0000, 0x1234), "<0x8 0x200000 0x0 0x1234>");
    }
}
