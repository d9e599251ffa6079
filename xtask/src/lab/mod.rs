//! The lab: real Xen 4.17 booted under QEMU (software emulation) with a
//! dom0 built from Debian packages, running test payloads handed in through
//! a 9p share and reporting results as structured lines.

pub mod baremetal;
pub mod cache;
pub mod cases;
pub mod debian_image;
pub mod debs;
pub mod dom0;
pub mod guest;
pub mod guest_kernel;
pub mod kernel_images;
pub mod payload;
pub mod qemu;
pub mod rootfs;
pub mod runx_guests;
pub mod runx_runtime;
pub mod uboot;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

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
