//! The lab's test guest: Debian's kernel with a busybox initramfs whose init
//! prints a line on its console and powers off, and its xl config rendered
//! by runx_tools::xl.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use runx_tools::cpio::{CpioWriter, Meta};
use runx_tools::xl::{Action, DomainConfig, GuestType};

use super::cache::{Cache, Key};
use super::dom0::Dom0;
use super::Arch;

const INIT: &str = include_str!("assets/guest-init.sh");

/// Where dom0 finds the guest: the share's guest/ folder.
const IN_DOM0: &str = "/host/guest";

/// What the lab guest is made of.
pub struct Guest {
    pub kernel: PathBuf,
    pub ramdisk: PathBuf,
    /// Its xl config, with paths as dom0 sees them.
    pub xl_config: String,
}

/// The marker the guest prints.
pub const HELLO: &str = "@@guest: hello from a lab guest";

pub fn build(cache: &Cache, dom0: &Dom0) -> Result<Guest> {
    let busybox = dom0.packages.join("bin/busybox");
    let mut key = Key::new("guest-v1");
    key.add(dom0.packages.as_os_str().as_encoded_bytes()).add(INIT);
    let dir = cache.get_or_build(&format!("guest-{}", dom0.arch.name()), &key, |out| {
        write_ramdisk(&busybox, &out.join("guest.cpio.gz"))?;
        fs::copy(&dom0.kernel, out.join("vmlinuz"))?;
        Ok(())
    })?;
    Ok(Guest { kernel: dir.join("vmlinuz"), ramdisk: dir.join("guest.cpio.gz"), xl_config: xl_config(dom0.arch)? })
}

/// Debian's kernel runs PV on x86_64; arm64 guests are PVH.
fn xl_config(arch: Arch) -> Result<String> {
    let guest_type = match arch {
        Arch::X86_64 => GuestType::Pv,
        Arch::Arm64 => GuestType::Pvh,
    };
    // Debian's kernel unpacks to ~58 MiB: 160 MiB leaves room for the initramfs.
    let mut cfg = DomainConfig::new("lab-guest", guest_type, &format!("{IN_DOM0}/vmlinuz"), 160, 1);
    cfg.ramdisk = Some(format!("{IN_DOM0}/guest.cpio.gz"));
    cfg.cmdline = Some("console=hvc0 quiet".into());
    cfg.on_poweroff = Some(Action::Destroy);
    cfg.on_crash = Some(Action::Destroy);
    Ok(cfg.render()?)
}

fn write_ramdisk(busybox: &Path, dest: &Path) -> Result<()> {
    let file = BufWriter::new(fs::File::create(dest)?);
    let mut cpio = CpioWriter::new(GzEncoder::new(file, flate2::Compression::best()));
    let dir = Meta::root(0o755, 0);
    cpio.append_dir("bin", dir)?;
    let binary = fs::File::open(busybox).with_context(|| format!("busybox missing at {}", busybox.display()))?;
    cpio.append_reader("bin/busybox", dir, binary.metadata()?.len(), binary)?;
    cpio.append_dir("dev", dir)?;
    cpio.append_char_device("dev/console", Meta::root(0o600, 0), 5, 1)?;
    cpio.append_file("init", dir, INIT.as_bytes())?;
    cpio.finish()?.finish()?;
    Ok(())
}
