use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use runx_image::guest;
use runx_launch::LaunchSpec;
use runx_tools::boot::board::Board;
use runx_tools::boot::config::{DomU, Method};
use runx_tools::boot::{self, Generated};
use runx_tools::kernel_image::KernelImage;
use runx_tools::oci_archive;
use runx_tools::uimage::ScriptImage;
use runx_xl::{DomainConfig, GuestType};

/// runx-tools: boot scripts, xl configs and guest images for runx boards.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate boot.cmd and boot.scr that boot Xen, dom0 and dom0less guests from a boot config (TOML).
    BootScript {
        /// The boot config; image paths in it are relative to its folder.
        config: PathBuf,
        /// Folder to write boot.cmd and boot.scr into.
        #[arg(long, short, default_value = ".")]
        out: PathBuf,
        /// Override the config's board (a built-in name or a board file).
        #[arg(long)]
        board: Option<String>,
        /// Override the config's load method.
        #[arg(long, value_enum)]
        load: Option<Method>,
        /// Add the board's real-time Xen arguments.
        #[arg(long)]
        realtime: bool,
    },
    /// Pack a u-boot script (boot.cmd) as a script image, as `mkimage -T script` does.
    ScriptImage {
        input: PathBuf,
        output: PathBuf,
        /// Image name stored in the header (at most 32 bytes).
        #[arg(long, default_value = "boot script")]
        name: String,
    },
    /// Print an xl.cfg for a guest on a board (or, with --dom0less, the boot config [[domu]] block).
    XlConfig(XlConfigArgs),
    /// List the built-in boards and their assignable devices.
    Boards,
    /// Write a guest's base initramfs: runx-init as /init (uncompressed newc).
    GuestBase {
        /// The static runx-init binary.
        #[arg(long)]
        runx_init: PathBuf,
        /// Also add this static busybox as /bin/busybox and /bin/sh (boot with rdinit=/bin/sh to debug).
        #[arg(long)]
        busybox: Option<PathBuf>,
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Write a container archive (gzip newc): the launch spec and, in initramfs mode, the root.
    GuestArchive {
        /// The launch spec (JSON, see docs/launch-spec.md).
        #[arg(long)]
        spec: PathBuf,
        /// The container's root folder (initramfs mode).
        #[arg(long)]
        rootfs: Option<PathBuf>,
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Write an OCI image archive (for `ctr images import`) that carries a kernel runx boots directly.
    Image(ImageArgs),
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The image reference, with a tag: e.g. example.com/rtos/ttc-timer:1.0
    reference: String,
    /// The kernel (Linux Image/bzImage/vmlinux, an RTOS or baremetal ELF); placed in /boot.
    #[arg(long)]
    kernel: PathBuf,
    /// Its ramdisk; placed in /boot.
    #[arg(long)]
    ramdisk: Option<PathBuf>,
    /// A folder whose contents become the rest of the container's rootfs.
    #[arg(long)]
    rootfs: Option<PathBuf>,
    /// Image architecture (GOARCH spelling).
    #[arg(long, default_value = host_goarch(), value_parser = ["amd64", "arm64"])]
    arch: String,
    /// An extra image label KEY=VALUE; repeatable.
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    #[arg(long, short)]
    output: PathBuf,
    /// The default kernel command line (the image's Cmd; `ctr run IMAGE ID ARGS...` replaces it).
    #[arg(last = true)]
    args: Vec<String>,
}

fn host_goarch() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        "amd64"
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    text.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("{text:?} is not KEY=VALUE"))
}

#[derive(clap::Args)]
struct XlConfigArgs {
    /// A built-in board name or a board file.
    #[arg(long, default_value = "qemu-arm64")]
    board: String,
    #[arg(long)]
    name: String,
    /// The guest kernel's path in dom0.
    #[arg(long)]
    kernel: PathBuf,
    #[arg(long)]
    ramdisk: Option<PathBuf>,
    /// The guest kernel command line.
    #[arg(long)]
    cmdline: Option<String>,
    #[arg(long, default_value_t = 128)]
    memory_mib: u64,
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    /// Pin the vcpus to these physical CPUs (e.g. "3" or "2-3"): for real-time guests.
    #[arg(long)]
    pin: Option<String>,
    /// Run in this cpupool (create it first with `xl cpupool-create`).
    #[arg(long)]
    cpupool: Option<String>,
    /// Assign one of the board's devices (see `runx-tools boards`); repeatable.
    #[arg(long)]
    passthrough: Vec<String>,
    /// The guest's partial device tree for the assigned devices.
    #[arg(long)]
    device_tree: Option<PathBuf>,
    /// Also name the devices in `dtdev` (needed only behind an IOMMU).
    #[arg(long)]
    dtdev: bool,
    /// Give the guest a virtual UART on Xen's console.
    #[arg(long)]
    vuart: bool,
    /// Print the matching dom0less [[domu]] block for a boot config instead.
    #[arg(long)]
    dom0less: bool,
}

fn source_date_epoch() -> anyhow::Result<u32> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.parse().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")),
        Err(_) => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            Ok(u32::try_from(now.as_secs())?)
        }
    }
}

/// Writes `bytes` to `path` through a temporary file, so a failure leaves no partial file.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

fn boot_script(
    config_path: &Path,
    out: &Path,
    board: Option<String>,
    load: Option<Method>,
    realtime: bool,
) -> anyhow::Result<()> {
    let mut config = boot::read_config(config_path)?;
    if let Some(board) = board {
        config.board = board;
    }
    if let Some(method) = load {
        config.load.method = method;
    }
    config.realtime |= realtime;
    let base = config_path.parent().unwrap_or(Path::new("."));
    let Generated { board, commands, images, notes } = boot::generate(&config, base)?;
    let image = ScriptImage {
        name: format!("runx boot: {}", board.name).chars().take(32).collect(),
        timestamp: source_date_epoch()?,
        text: commands.clone().into_bytes(),
    };
    let scr = image.to_bytes()?;
    fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    write_atomically(&out.join("boot.cmd"), commands.as_bytes())?;
    write_atomically(&out.join("boot.scr"), &scr)?;
    for image in &images {
        eprintln!("{:#012x} {:>10} bytes  {} ({})", image.address, image.size, image.role, image.medium_name);
    }
    for note in notes {
        eprintln!("note: {note}");
    }
    eprintln!("wrote {} and {}", out.join("boot.cmd").display(), out.join("boot.scr").display());
    Ok(())
}

fn xl_config(args: XlConfigArgs) -> anyhow::Result<()> {
    let board = Board::load(&args.board, Path::new("."))?;
    let path_text = |p: &Path| p.to_str().map(str::to_owned).context("paths must be UTF-8");
    let mut cfg = DomainConfig::new(&args.name, GuestType::Pvh, &path_text(&args.kernel)?, args.memory_mib, args.vcpus);
    cfg.ramdisk = args.ramdisk.as_deref().map(path_text).transpose()?;
    cfg.cmdline = args.cmdline.clone();
    cfg.placement.cpus = args.pin.clone();
    cfg.placement.cpupool = args.cpupool.clone();
    cfg.devices.device_tree = args.device_tree.as_deref().map(path_text).transpose()?;
    cfg.devices.vuart = args.vuart;
    for name in &args.passthrough {
        let Some(device) = board.passthrough.get(name) else {
            let known: Vec<&String> = board.passthrough.keys().collect();
            bail!("board {} has no assignable device {name:?}; it has {known:?}", board.name);
        };
        cfg.devices.iomem.extend(device.iomem.iter().cloned());
        cfg.devices.irqs.extend(device.irqs.iter().copied());
        if args.dtdev {
            cfg.devices.dtdev.extend(device.dtdev.iter().cloned());
        }
    }
    if !args.passthrough.is_empty() && cfg.devices.device_tree.is_none() {
        bail!("assigned devices need --device-tree: the guest's partial device tree describing them");
    }
    if args.dom0less {
        let domu = DomU {
            name: args.name.clone(),
            kernel: args.kernel.clone(),
            ramdisk: args.ramdisk.clone(),
            passthrough_dtb: args.device_tree.clone(),
            memory_mib: args.memory_mib,
            vcpus: args.vcpus,
            vpl011: args.vuart,
            bootargs: args.cmdline.clone().unwrap_or_default(),
        };
        print!("{}", domu.to_toml());
    } else {
        print!("{}", cfg.render()?);
    }
    Ok(())
}

fn kernel_image(args: ImageArgs) -> anyhow::Result<()> {
    let spec = KernelImage {
        reference: args.reference,
        architecture: args.arch,
        kernel: args.kernel,
        ramdisk: args.ramdisk,
        rootfs: args.rootfs,
        args: args.args,
        labels: args.labels.into_iter().collect(),
    };
    let image = spec.build()?;
    let mut out = Vec::new();
    oci_archive::write(&image, &mut out)?;
    write_atomically(&args.output, &out)?;
    eprintln!(
        "wrote {} ({}): import it with `ctr images import {}`",
        args.output.display(),
        image.reference,
        args.output.display()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::BootScript { config, out, board, load, realtime } => {
            boot_script(&config, &out, board, load, realtime)?
        }
        Command::ScriptImage { input, output, name } => {
            let text = fs::read(&input).with_context(|| format!("cannot read boot script {}", input.display()))?;
            let image = ScriptImage { name, timestamp: source_date_epoch()?, text };
            write_atomically(&output, &image.to_bytes()?)?;
        }
        Command::XlConfig(args) => xl_config(args)?,
        Command::Image(args) => kernel_image(args)?,
        Command::GuestBase { runx_init, busybox, output } => {
            let mut out = Vec::new();
            guest::write_base(&runx_init, busybox.as_deref(), source_date_epoch()?, &mut out)?;
            write_atomically(&output, &out)?;
        }
        Command::GuestArchive { spec, rootfs, output } => {
            let text = fs::read(&spec).with_context(|| format!("cannot read launch spec {}", spec.display()))?;
            let spec = LaunchSpec::from_json(&text).with_context(|| format!("launch spec {}", spec.display()))?;
            let tmp = output.with_extension("tmp");
            let file = fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
            if let Err(e) = guest::write_container(&spec, rootfs.as_deref(), source_date_epoch()?, BufWriter::new(file))
            {
                let _ = fs::remove_file(&tmp);
                return Err(e.into());
            }
            fs::rename(&tmp, &output).with_context(|| format!("cannot write {}", output.display()))?;
        }
        Command::Boards => {
            for name in Board::builtin_names() {
                let board = Board::load(name, Path::new("."))?;
                println!("{name}: {}", board.description);
                for (device, p) in &board.passthrough {
                    println!("  --passthrough {device}: {} (iomem {:?}, irqs {:?})", p.description, p.iomem, p.irqs);
                }
            }
        }
    }
    Ok(())
}
