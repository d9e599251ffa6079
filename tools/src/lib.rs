//! runx-tools: what a board needs around the runtime: boot scripts for Xen
//! (`boot`, `uimage`), xl guest configs (`xl`), and the archive writers for
//! guest initramfs (`cpio`, reading trees through descriptors with `tree`) and OCI images
//! (`oci_archive`, `kernel_image`).

pub mod boot;
pub mod cpio;
pub mod guest;
pub mod hex;
pub mod kernel_image;
pub mod oci_archive;
pub mod tree;
pub mod uimage;
pub mod xl;
