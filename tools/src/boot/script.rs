//! Turns a boot config into u-boot commands: probe and size every image, lay
//! them out, load them, describe Xen's modules in /chosen and start Xen.

use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use super::board::Board;
use super::chosen::{self, CommandLines};
use super::config::{BootConfig, Load, Method};
use super::images::{self, Input, Owner, Probed, Slot};
use super::layout::{self, Claim, Request};
use super::probe::Kind;
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

/// Generates the commands for `config`; image paths are relative to `base`.
pub fn generate(config: &BootConfig, base: &Path) -> Result<Generated, BootError> {
    let board = Board::load(&config.board, base)?;
    let inputs = images::inputs(config, &board, base)?;
    let probed: Vec<Probed> = inputs.iter().map(images::probe).collect::<Result<_, _>>()?;
    let medium_names = images::medium_names(&inputs, &config.load.prefix)?;
    let xen = images::find(&inputs, Owner::Xen, Slot::Xen(config.boot)).expect("xen is always an input");
    let (lines, notes) = command_lines(config, &board, &inputs[xen].path)?;

    let fdt_edits = |addresses: &[u64]| {
        let regions: Vec<(u64, u64)> = addresses.iter().zip(&probed).map(|(&a, p)| (a, p.size)).collect();
        chosen::commands(config, &inputs, &regions, &lines)
    };
    // Sized with placeholder addresses: the tree must grow before the images are placed.
    let fdt_growth = fdt_growth(&fdt_edits(&vec![u64::MAX; inputs.len()]));
    let addresses = place(&board, &inputs, &probed, xen, fdt_growth)?;
    let images: Vec<PlacedImage> = inputs
        .iter()
        .zip(&probed)
        .zip(&addresses)
        .zip(medium_names)
        .map(|(((input, p), &address), medium_name)| PlacedImage {
            role: input.role.clone(),
            path: input.path.clone(),
            medium_name,
            address,
            size: p.size,
        })
        .collect();
    let fdt = match images::find(&inputs, Owner::Xen, Slot::DeviceTree) {
        Some(dtb) => format!("{:#x}", addresses[dtb]),
        None => "${fdt_addr}".to_owned(),
    };

    let mut commands = header(config, &board, &images, &notes);
    let w = &mut commands;
    write_loads(w, &config.load, &images);
    let _ = writeln!(w, "fdt addr {fdt}");
    let _ = writeln!(w, "fdt resize {fdt_growth:#x}");
    w.push_str(&fdt_edits(&addresses));
    let _ = writeln!(w, "{} {:#x} - {fdt}", config.boot.name(), addresses[xen]);
    Ok(Generated { board, commands, images, notes })
}

/// Xen's and dom0's arguments: the board's (with its real-time ones when asked for), then the
/// config's; and a note when `xen_image` has no real-time scheduler to ask for.
fn command_lines(
    config: &BootConfig,
    board: &Board,
    xen_image: &Path,
) -> Result<(CommandLines, Vec<String>), BootError> {
    let mut notes = Vec::new();
    let mut xen = board.xen.bootargs.clone();
    if config.realtime {
        xen = join_args(&[&xen, &board.xen.rt_bootargs]);
        match realtime_scheduler(xen_image)? {
            Some(sched) => xen = join_args(&[&xen, sched]),
            None => notes.push(
                "this Xen build has neither the null nor the RTDS scheduler: no sched= option added (build Xen with CONFIG_SCHED_NULL for real-time pinning)"
                    .to_owned(),
            ),
        }
    }
    let xen = join_args(&[&xen, &config.xen.bootargs]);
    let dom0 = join_args(&[&board.dom0.bootargs, &config.dom0.bootargs]);
    Ok((CommandLines { xen, dom0 }, notes))
}

fn join_args(parts: &[&str]) -> String {
    parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
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

/// What `fdt resize` adds to the device tree for `fdt_edits`, in whole pages.
fn fdt_growth(fdt_edits: &str) -> u64 {
    // Every byte of a property name or value lands in the blob at most once, plus
    // 12 bytes of structure per property: twice the text is a safe bound.
    (2 * fdt_edits.len() as u64 + 1024).div_ceil(4096) * 4096
}

/// A load address for each input: the board's device tree with room for `fdt_growth`, and
/// clear of where bootm copies Xen (`inputs[xen]`).
fn place(
    board: &Board,
    inputs: &[Input],
    probed: &[Probed],
    xen: usize,
    fdt_growth: u64,
) -> Result<Vec<u64>, BootError> {
    let dtb = images::find(inputs, Owner::Xen, Slot::DeviceTree);
    let requests: Vec<Request> = inputs
        .iter()
        .zip(probed)
        .enumerate()
        .map(|(i, (input, p))| {
            let growth = if Some(i) == dtb { fdt_growth } else { 0 };
            Request { role: input.role.clone(), span: p.size + growth, pinned: input.pinned }
        })
        .collect();
    let mut claims = Vec::new();
    if let Kind::UImage { load, size, .. } = probed[xen].kind {
        let (start, end) = (u64::from(load), u64::from(load) + u64::from(size));
        if !board.memory.iter().any(|bank| bank.base <= start && end <= bank.end()) {
            return Err(BootError::Invalid(format!(
                "xen {} asks bootm to copy it to {start:#x}..{end:#x}, outside the board's RAM: rebuild it with mkimage -a inside RAM",
                inputs[xen].path.display()
            )));
        }
        claims.push(Claim { role: "the copy of xen that bootm makes".into(), start, end });
    }
    layout::place(&requests, board.load, &claims)
}

/// Comments for the reader: the board, the settings, where each image goes, and the notes.
fn header(config: &BootConfig, board: &Board, images: &[PlacedImage], notes: &[String]) -> String {
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
        config.boot.name(),
        if config.realtime { "yes" } else { "no" }
    );
    for image in images {
        let _ = writeln!(
            w,
            "# {:#010x}..{:#010x} {} ({})",
            image.address,
            image.address + image.size,
            image.role,
            image.medium_name
        );
    }
    for note in notes {
        let _ = writeln!(w, "# note: {note}");
    }
    out
}

/// A command per image that brings it into RAM, as `load` says.
fn write_loads(w: &mut String, load: &Load, images: &[PlacedImage]) {
    for image in images {
        let _ = match load.method {
            Method::Tftp => writeln!(w, "tftpb {:#x} {}", image.address, image.medium_name),
            Method::Preloaded => writeln!(w, "# preloaded: {} at {:#x}", image.medium_name, image.address),
            method => {
                let device = load.device.as_deref().unwrap_or("${devnum}:${distro_bootpart}");
                writeln!(w, "load {} {device} {:#x} {}", method.name(), image.address, image.medium_name)
            }
        };
    }
}
