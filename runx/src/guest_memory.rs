//! How much memory a guest needs for a root that it carries in RAM (`initramfs` mode). The guest
//! kernel unpacks the archive into its rootfs, which runx's command line makes a ramfs
//! (`rootfstype=ramfs`: a tmpfs rootfs would stop at half the guest's RAM), so the guest holds,
//! at the peak of its boot, the compressed archive and the unpacked files side by side, each file
//! rounded up to whole pages, and an inode and a dentry per entry.

use std::path::Path;

use runx_launch::MIN_MEMORY_MIB;
use runx_xl::DomainConfig;

const PAGE: u64 = 4096;
/// What ramfs spends on an entry besides its pages: an inode and a dentry, about 1 KiB.
const ENTRY_COST: u64 = 1024;
const MIB: u64 = 1 << 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the guest's {have} MiB cannot hold its root in RAM: {root} MiB ({files} MiB of files and a {archive} MiB \
     archive, side by side while the guest unpacks it) and {MIN_MEMORY_MIB} MiB to run need {need} MiB: give the \
     container at least {need} MiB (--memory-limit, io.runx.memory), or deliver the root on a disk \
     (io.runx.rootfs=disk)"
)]
pub struct TooSmall {
    pub have: u64,
    pub need: u64,
    pub root: u64,
    pub files: u64,
    pub archive: u64,
}

/// What a root costs the guest's RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootFootprint {
    /// The unpacked files, page-rounded, with their entries' cost.
    pub unpacked: u64,
    /// The compressed archive the guest boots with.
    pub archive: u64,
}

impl RootFootprint {
    pub fn measure(rootfs: &Path, archive: u64) -> Self {
        let unpacked = walkdir::WalkDir::new(rootfs)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.metadata().ok())
            .map(|m| if m.is_file() { m.len().div_ceil(PAGE) * PAGE } else { 0 } + ENTRY_COST)
            .sum();
        Self { unpacked, archive }
    }

    pub fn mib(&self) -> u64 {
        (self.unpacked + self.archive).div_ceil(MIB)
    }
}

/// Sizes the domain for its root: a default memory grows by the root's footprint; a memory the
/// container or the admin chose must hold it, or the container is refused before it boots.
pub fn fit(domain: &mut DomainConfig, memory_is_default: bool, root: RootFootprint) -> Result<(), TooSmall> {
    if memory_is_default {
        domain.memory_mib += root.mib();
        return Ok(());
    }
    let need = MIN_MEMORY_MIB + root.mib();
    if domain.memory_mib < need {
        return Err(TooSmall {
            have: domain.memory_mib,
            need,
            root: root.mib(),
            files: root.unpacked.div_ceil(MIB),
            archive: root.archive.div_ceil(MIB),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(memory_mib: u64) -> DomainConfig {
        DomainConfig::new("web", runx_xl::GuestType::Pv, "/k", memory_mib, 1)
    }

    #[test]
    fn counts_pages_and_entries_not_bytes() {
        let dir = std::env::temp_dir().join(format!("runx-guest-memory-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        for i in 0..100 {
            std::fs::write(dir.join(format!("etc/f{i}")), b"x").unwrap();
        }
        let root = RootFootprint::measure(&dir, 3 * MIB);
        // 100 one-byte files take 100 pages, and 102 entries (the root, etc, the files).
        assert_eq!(root.unpacked, 100 * PAGE + 102 * ENTRY_COST);
        assert_eq!(root.mib(), 4);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_default_grows_and_a_chosen_size_must_hold_the_root() {
        // Debian bookworm minbase as the security probe measured it: 115 MiB of files, 49 MiB packed.
        let debian = RootFootprint { unpacked: 135 * MIB, archive: 49 * MIB };
        let mut d = domain(64);
        fit(&mut d, true, debian).unwrap();
        assert_eq!(d.memory_mib, 64 + 184);
        let err = fit(&mut domain(128), false, debian).unwrap_err();
        assert_eq!((err.have, err.need), (128, 16 + 184));
        let text = err.to_string();
        assert!(text.contains("at least 200 MiB") && text.contains("io.runx.rootfs=disk"), "{text}");
        let busybox = RootFootprint { unpacked: 2 * MIB, archive: MIB };
        fit(&mut domain(32), false, busybox).unwrap();
    }
}
