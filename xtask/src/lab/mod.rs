//! The lab: real Xen 4.17 booted under QEMU (software emulation) with a
//! dom0 built from Debian packages, running test payloads handed in through
//! a 9p share and reporting results as structured lines.

pub mod baremetal;
pub mod cache;
pub mod cases;
pub mod debs;
pub mod dom0;
pub mod guest;
pub mod guest_kernel;
pub mod kernel_images;
pub mod payload;
pub mod progress;
pub mod qemu;
pub mod rootfs;
pub mod runx_guests;
pub mod runx_runtime;
pub mod uboot;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;

/// The two architectures the lab boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Arch {
    #[value(name = "x86_64")]
    X86_64,
    #[value(name = "arm64")]
    Arm64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

    /// Debian's name for the architecture.
    pub fn deb(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// The multiarch library folder name.
    pub fn triplet(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-linux-gnu",
            Arch::Arm64 => "aarch64-linux-gnu",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }
}

/// Puts `src` at `dest`, hard-linked when the file systems allow it, copied otherwise.
pub fn link_or_copy(src: &Path, dest: &Path) -> Result<()> {
    let _ = std::fs::remove_file(dest);
    if std::fs::hard_link(src, dest).is_err() {
        std::fs::copy(src, dest).with_context(|| format!("cannot copy {} to {}", src.display(), dest.display()))?;
    }
    Ok(())
}

/// Where the lab keeps downloads, images and run logs.
pub fn default_cache_root(workspace: &Path) -> PathBuf {
    std::env::var_os("RUNX_LAB_CACHE").map(PathBuf::from).unwrap_or_else(|| workspace.join("target/lab"))
}

/// The workspace root (the parent of xtask/).
pub fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).context("xtask lives inside the workspace")
}
