//! runx-image: what a runx guest boots from, written on the host. `cpio` writes newc archives
//! from trees read through descriptors (`tree`), `guest` packs the base initramfs, the
//! per-container archive (launch spec and rootfs) and ext4 roots, with the packed-rootfs cache.
//! The runtime uses it at every `create`, `runx-tools` for boards and images.

pub mod cpio;
pub mod guest;
pub mod tree;
