//! The lab's test guest: Debian's kernel with a busybox initramfs whose init
//! prints a line on its console and powers off, and its xl config rendered
//! by runx_xl.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use runx_image::cpio::{CpioWriter, Meta};
use runx_xl::{Action, DomainConfig, GuestType};

use super::cache::{Cache, Key};
use super::dom0::Dom0;
use crate::arch::Arch;

const INIT: &str = include_str!("assets/guest-init.sh");

/// Where dom0 finds the guest: the share's guest/ folder.
const IN_DOM0: &str = "/host/guest";

/// What the lab guest is made of.
pub struct Guest {
    pub kernel: PathBuf,
    pub ramdisk: PathBuf,
    /// Its xl config, with paths as dom0 sees them.
    pub xl_config: String,
    /// arm64 only: configs (file name, text) of the same guest told to read a device page, with
    /// and without an `iomem` grant for it.
    pub devmem_configs: Vec<(&'static str, String)>,
}

/// The marker the guest prints.
pub const HELLO: &str = "@@guest: hello from a lab guest";

/// The page of QEMU `virt`'s PL031 RTC (physical 0x09010000), granted to a guest at the same
/// address; xl's `iomem` takes "MFN,NR_PAGES[@GFN]" in hex. (Not the PL061 GPIO at 0x09030000:
/// when QEMU starts firmware, here u-boot, with ACPI, `virt` has an ACPI GED there instead.)
const PL031_IOMEM: &str = "0x9010,1";
/// The PL031's read-only PrimeCell PeriphID0 register: it reads 0x31.
const PL031_PERIPH_ID0: &str = "0x09010fe0";

pub fn build(cache: &Cache, dom0: &Dom0) -> Result<Guest> {
    let busybox = dom0.packages.join("bin/busybox");
    let mut key = Key::new("guest-v1");
    key.add(dom0.packages.as_os_str().as_encoded_bytes()).add(INIT);
    let dir = cache.get_or_build(&format!("guest-{}", dom0.arch.name()), &key, |out| {
        write_ramdisk(&busybox, &out.join("guest.cpio.gz"))?;
        fs::copy(&dom0.kernel, out.join("vmlinuz"))?;
        Ok(())
    })?;
    Ok(Guest {
        kernel: dir.join("vmlinuz"),
        ramdisk: dir.join("guest.cpio.gz"),
        xl_config: domain(dom0.arch, "lab-guest").render()?,
        devmem_configs: devmem_configs(dom0.arch)?,
    })
}

/// Debian's kernel runs PV on x86_64; arm64 guests are PVH.
fn domain(arch: Arch, name: &str) -> DomainConfig {
    let guest_type = match arch {
        Arch::X86_64 => GuestType::Pv,
        Arch::Arm64 => GuestType::Pvh,
    };
    // Debian's kernel unpacks to ~58 MiB: 160 MiB leaves room for the initramfs.
    let mut cfg = DomainConfig::new(name, guest_type, &format!("{IN_DOM0}/vmlinuz"), 160, 1);
    cfg.ramdisk = Some(format!("{IN_DOM0}/guest.cpio.gz"));
    cfg.cmdline = Some("console=hvc0 quiet".into());
    cfg.on_poweroff = Some(Action::Destroy);
    cfg.on_crash = Some(Action::Destroy);
    cfg
}

/// On arm64 (QEMU `virt`), the test guest told by `devmem=` to read the PL031's PeriphID0: once
/// with the PL031's page granted by `iomem` (`lab-iomem.cfg`), once without (`lab-noiomem.cfg`).
fn devmem_configs(arch: Arch) -> Result<Vec<(&'static str, String)>> {
    if arch != Arch::Arm64 {
        return Ok(Vec::new());
    }
    let mut configs = Vec::new();
    for (file, name, iomem) in [("lab-iomem.cfg", "lab-iomem", true), ("lab-noiomem.cfg", "lab-noiomem", false)] {
        let mut cfg = domain(arch, name);
        cfg.cmdline = Some(format!("console=hvc0 quiet devmem={PL031_PERIPH_ID0}"));
        if iomem {
            cfg.devices.iomem = vec![PL031_IOMEM.into()];
        }
        configs.push((file, cfg.render()?));
    }
    Ok(configs)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_arm64_reads_the_pl031_and_only_one_config_grants_it() {
        assert!(devmem_configs(Arch::X86_64).unwrap().is_empty());
        let configs = devmem_configs(Arch::Arm64).unwrap();
        let [(granted_file, granted), (control_file, control)] = &configs[..] else { panic!("{configs:?}") };
        assert_eq!((*granted_file, *control_file), ("lab-iomem.cfg", "lab-noiomem.cfg"));
        for text in [granted, control] {
            assert!(text.contains("extra = \"console=hvc0 quiet devmem=0x09010fe0\"\n"), "{text}");
        }
        assert!(
            granted.contains("name = \"lab-iomem\"\n") && granted.contains("iomem = [ \"0x9010,1\" ]\n"),
            "{granted}"
        );
        assert!(control.contains("name = \"lab-noiomem\"\n") && !control.contains("iomem ="), "{control}");
        // The plain test guest is unchanged.
        assert!(!domain(Arch::Arm64, "lab-guest").render().unwrap().contains("devmem"));
    }
}
