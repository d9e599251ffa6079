//! A baremetal x86_64 Xen PV guest kernel for lab tests: it prints its command
//! line on the PV console and shuts down with the reason the command line
//! names (`shutdown=poweroff|reboot|crash|watchdog`), so cases can check how
//! each shutdown reason and the console reach dom0 without booting Linux.
//! Built from assembly with the host's gcc and ld (no cross compiler).

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::Result;

use super::cache::{Cache, Key};
use crate::cmd;

const SOURCE: (&str, &str) = ("xen-pv-hello.S", include_str!("assets/baremetal/xen-pv-hello.S"));
const LINKER_SCRIPT: (&str, &str) = ("xen-pv-hello.ld", include_str!("assets/baremetal/xen-pv-hello.ld"));
const KERNEL: &str = "xen-pv-hello";

/// Builds (or reuses) the kernel; returns the ELF's path.
pub fn build(cache: &Cache) -> Result<PathBuf> {
    let mut key = Key::new("baremetal-v1");
    for (name, text) in [SOURCE, LINKER_SCRIPT] {
        key.add(name).add(text);
    }
    let dir = cache.get_or_build("baremetal-x86_64", &key, |out| {
        for (name, text) in [SOURCE, LINKER_SCRIPT] {
            fs::write(out.join(name), text)?;
        }
        let mut gcc = Command::new("gcc");
        gcc.args(["-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none,-z,noexecstack,-z,max-page-size=4096"])
            .args(["-T", LINKER_SCRIPT.0, "-o", KERNEL, SOURCE.0])
            .current_dir(out);
        cmd::output(&mut gcc).map(drop)
    })?;
    Ok(dir.join(KERNEL))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn u64_at(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// What the PV builder reads from an ELF64 image.
    struct Image {
        entry: u64,
        /// PT_LOAD segments: (paddr, memsz).
        loads: Vec<(u64, u64)>,
        /// The "Xen" notes by type.
        notes: HashMap<u32, Vec<u8>>,
    }

    fn parse(elf: &[u8]) -> Image {
        let (phoff, phentsize, phnum) = (u64_at(elf, 32) as usize, elf[54] as usize, elf[56] as usize);
        let (mut loads, mut notes) = (Vec::new(), HashMap::new());
        for ph in (0..phnum).map(|i| &elf[phoff + i * phentsize..]) {
            let (offset, size) = (u64_at(ph, 8) as usize, u64_at(ph, 32) as usize);
            match u32_at(ph, 0) {
                1 => loads.push((u64_at(ph, 24), u64_at(ph, 40))),
                4 => {
                    let mut at = offset;
                    while at < offset + size {
                        let (namesz, descsz) = (u32_at(elf, at) as usize, u32_at(elf, at + 4) as usize);
                        let name = &elf[at + 12..at + 12 + namesz];
                        let desc = at + 12 + namesz.next_multiple_of(4);
                        if name == b"Xen\0" {
                            notes.insert(u32_at(elf, at + 8), elf[desc..desc + descsz].to_vec());
                        }
                        at = desc + descsz.next_multiple_of(4);
                    }
                }
                _ => {}
            }
        }
        Image { entry: u64_at(elf, 24), loads, notes }
    }

    /// The checks libxenguest's PV builder makes before it loads a kernel (libelf's note and
    /// address checks, page-aligned segments), and the layout the kernel relies on: the image
    /// starts at VIRT_BASE, so pfn N is mapped at VIRT_BASE + N * 4096.
    #[test]
    fn the_kernel_passes_the_pv_builders_checks() {
        let dir = std::env::temp_dir().join(format!("runx-baremetal-{}", std::process::id()));
        let elf = fs::read(build(&Cache::new(dir.clone(), false)).unwrap()).unwrap();
        fs::remove_dir_all(dir).unwrap();
        let Image { entry, loads, notes } = parse(&elf);
        let num = |t: u32| u64::from_le_bytes(notes[&t].as_slice().try_into().expect("a 64-bit note"));
        assert_eq!(notes[&5], b"xen-3.0\0"); // XEN_VERSION
        assert_eq!(notes[&8], b"generic\0"); // LOADER
        let (virt_base, paddr_offset, hypercall_page) = (num(3), num(4), num(2));
        assert_eq!(num(1), entry); // ENTRY
        let kstart = loads.iter().map(|l| l.0).min().unwrap() + virt_base - paddr_offset;
        let kend = loads.iter().map(|l| l.0 + l.1).max().unwrap() + virt_base - paddr_offset;
        assert_eq!(kstart, virt_base);
        assert_eq!(kstart % 4096, 0);
        assert!((kstart..kend).contains(&entry));
        assert_eq!(hypercall_page % 4096, 0);
        assert!(hypercall_page >= kstart && hypercall_page + 4096 <= kend);
    }
}
