//! The lab's test guest: Debian's kernel with a busybox initramfs whose init
//! prints a line on the Xen console and powers off.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use runx_tools::cpio::{CpioWriter, Meta};

use super::cache::{Cache, Key};
use super::dom0::Dom0;

const INIT: &str = include_str!("assets/guest-init.sh");

/// What `xl create` needs for the test guest.
pub struct Guest {
    pub kernel: PathBuf,
    pub ramdisk: PathBuf,
}

pub fn build(cache: &Cache, dom0: &Dom0) -> Result<Guest> {
    let busybox = dom0.packages.join("bin/busybox");
    let mut key = Key::new("guest-v1");
    key.add(dom0.packages.as_os_str().as_encoded_bytes()).add(INIT);
    let dir = cache.get_or_build(&format!("guest-{}", dom0.arch.name()), &key, |out| {
        write_ramdisk(&busybox, &out.join("guest.cpio.gz"))?;
        fs::copy(&dom0.kernel, out.join("vmlinuz"))?;
        Ok(())
    })?;
    Ok(Guest { kernel: dir.join("vmlinuz"), ramdisk: dir.join("guest.cpio.gz") })
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
